//! Starting the command: held between fork and exec until its pid is in the kernel's
//! target filter, so that the tree is followed from its first instruction.

use std::{
    fs::File,
    io::{self, Read, Write},
    os::{
        fd::{AsRawFd, OwnedFd, RawFd},
        unix::process::CommandExt,
    },
    process::Child,
};

use tokio::io::unix::AsyncFd;

use crate::{
    kernel::{
        load::{LoadError, Tracer},
        sys::{self, SigSet},
    },
    model::{lineage::ProcKey, procfs},
};

// ---------------------------------------------------------------------------------------
// Starting the command

pub(super) struct Spawned {
    pub(super) child: Child,
    pub(super) pid: u32,
    pub(super) key: ProcKey,
    /// A pidfd: readable once the command exited (and is ours to reap).
    pub(super) exited: AsyncFd<OwnedFd>,
}

pub(super) enum SpawnError {
    /// The command could not be started (not found, not executable, ...).
    Start(io::Error),
    /// sigwho could not prepare tracing it.
    Setup(anyhow::Error),
}

impl From<LoadError> for SpawnError {
    fn from(error: LoadError) -> Self {
        SpawnError::Setup(error.into())
    }
}

/// The descriptors the child uses to wait between fork and exec.
#[derive(Clone, Copy)]
struct Gate {
    pid_read: RawFd,
    pid_write: RawFd,
    go_read: RawFd,
    go_write: RawFd,
    /// The signal mask sigwho started with, restored for the command.
    mask: SigSet,
}

impl Gate {
    /// Runs in the forked child before exec: async-signal-safe calls only, no allocation
    /// (see `kernel::sys`).
    fn hold(&self) -> io::Result<()> {
        // Without these the parent's side could not see EOF on its failures.
        sys::close_in_child(self.pid_read);
        sys::close_in_child(self.go_write);
        sys::set_signal_mask(&self.mask)?;
        sys::write_all_in_child(self.pid_write, &std::process::id().to_ne_bytes())?;
        sys::close_in_child(self.pid_write);
        if sys::read_byte_in_child(self.go_read)?.is_none() {
            // sigwho gave up on this command: do not run it untraced.
            return Err(io::Error::from_raw_os_error(libc::ECANCELED));
        }
        sys::close_in_child(self.go_read);
        Ok(())
    }
}

/// Starts `command` with sigwho's stdin, stdout and stderr, its pid in the kernel's
/// target filter before it runs a single instruction of its own.
///
/// std's spawn returns only once the child has exec'd, so it runs on a helper thread
/// while this one learns the child's pid from a pipe, adds it to the filter and lets
/// the child go on to exec.
pub(super) fn spawn_watched(
    command: &[String],
    tracer: &mut Tracer,
    mask: SigSet,
) -> Result<Spawned, SpawnError> {
    let setup = |what: &str, e: io::Error| SpawnError::Setup(anyhow::anyhow!("{what}: {e}"));
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| SpawnError::Setup(anyhow::anyhow!("no command")))?;
    let (pid_read, pid_write) = sys::pipe().map_err(|e| setup("pipe", e))?;
    let (go_read, go_write) = sys::pipe().map_err(|e| setup("pipe", e))?;
    let gate = Gate {
        pid_read: pid_read.as_raw_fd(),
        pid_write: pid_write.as_raw_fd(),
        go_read: go_read.as_raw_fd(),
        go_write: go_write.as_raw_fd(),
        mask,
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // async-signal-safe, allocation-free calls of Gate::hold; the descriptors it names
    // are open in the child (they close on exec, not before).
    unsafe { cmd.pre_exec(move || gate.hold()) };

    std::thread::scope(|scope| {
        let spawning = scope.spawn(move || {
            let result = cmd.spawn();
            // The child has its own copies; closing ours lets the reader below see EOF
            // when the child never got that far.
            drop(pid_write);
            drop(go_read);
            result
        });
        let mut pid_bytes = [0u8; 4];
        let prepared = File::from(pid_read)
            .read_exact(&mut pid_bytes)
            .ok()
            .map(|()| prepare(u32::from_ne_bytes(pid_bytes), tracer));
        let mut go = File::from(go_write);
        if let Some(Ok(_)) = &prepared {
            // A child killed meanwhile makes this fail; spawn then reports it.
            let _ = go.write_all(&[1]);
        }
        drop(go);
        let spawned = spawning
            .join()
            .map_err(|_| SpawnError::Setup(anyhow::anyhow!("the spawning thread panicked")))?;
        match (spawned, prepared) {
            (Ok(child), Some(Ok((pid, key, exited)))) => Ok(Spawned {
                child,
                pid,
                key,
                exited,
            }),
            (Ok(mut child), prepared) => {
                // Unreachable in practice: the child execs only after the go byte.
                let _ = child.kill();
                let _ = child.wait();
                Err(match prepared {
                    Some(Err(error)) => error,
                    _ => SpawnError::Setup(anyhow::anyhow!("lost track of the command's pid")),
                })
            }
            (Err(_), Some(Err(error))) => Err(error),
            (Err(error), _) => Err(SpawnError::Start(error)),
        }
    })
}

/// Puts the held child into the target filter; a pidfd tells when it exits.
fn prepare(pid: u32, tracer: &mut Tracer) -> Result<(u32, ProcKey, AsyncFd<OwnedFd>), SpawnError> {
    tracer.watch(pid)?;
    let stat = procfs::read_stat(pid)
        .map_err(|e| SpawnError::Setup(anyhow::anyhow!("reading /proc/{pid}/stat: {e}")))?;
    // The pid is our unreaped child: it cannot name another process meanwhile.
    let fd = sys::pidfd_open(pid).map_err(|error| {
        SpawnError::Setup(anyhow::anyhow!(
            "pidfd_open({pid}): {error} (sigwho run needs Linux 5.3 or newer)"
        ))
    })?;
    let exited = sys::async_fd(fd)
        .map_err(|e| SpawnError::Setup(anyhow::anyhow!("registering the pidfd: {e}")))?;
    Ok((
        pid,
        ProcKey {
            pid,
            start_ticks: stat.start_ticks,
        },
        exited,
    ))
}
