//! `sigwho run -- CMD`: runs a command with its stdio untouched and reports every signal
//! its process tree received (from inside or outside the tree, sent or kernel-made) until
//! it exits, then a summary (stderr), JSON lines (--report), JUnit XML (--junit) and, on
//! GitHub Actions, `::warning` annotations. Exits with the command's status.
//!
//! The tracer is loaded first and the command is held between fork and exec until its
//! pid is in the kernel's target filter (`spawn`); from then on the kernel adds every
//! process a target forks (before it runs) and drops each at exit, so the tree is
//! followed without any race against userspace. `session` keeps what the reports say;
//! `policy` says what is expected; crate::render::summary and crate::render::junit
//! write it out.

mod forward;
mod policy;
mod session;
mod spawn;

use std::{
    ffi::c_int,
    fs::File,
    io,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::ExitStatus,
    time::Instant,
};

pub use policy::{Allow, DEFAULT_ALLOW, self_sent, shell_status};

use crate::{
    error::chain,
    kernel::{
        load::{Options, Tracer},
        stream::{EventStream, TICK, WAKEUP_BYTES},
        sys,
    },
    model::clock::boot_now_ns,
    modes::{
        pipeline::{self, ExplainOptions, Notices, StreamOptions},
        signals::OwnSignals,
    },
    render::{summary::Outcome, text::shell_join},
};
use policy::status_of;
use session::{JsonOut, Session};
use spawn::{SpawnError, Spawned, spawn_watched};

/// SIGINT, SIGTERM and SIGHUP are passed on to the command.
pub const SIGNALS: &[c_int] = &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// What `sigwho run` was asked.
pub struct RunOptions {
    /// The command and its arguments.
    pub command: Vec<String>,
    pub wait_descendants: bool,
    pub quiet: bool,
    pub fail_on_signal: bool,
    /// --allow, as given (comma-separated signals).
    pub allow: Option<String>,
    /// JSON lines, then a summary object.
    pub report: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub explain: ExplainOptions,
}

pub async fn run(args: RunOptions, signals: &mut OwnSignals) -> anyhow::Result<i32> {
    if args.command.is_empty() {
        anyhow::bail!("sigwho run needs a command: sigwho run [OPTIONS] -- CMD [ARGS...]");
    }
    let allow = Allow::parse(args.allow.as_deref()).map_err(anyhow::Error::msg)?;
    // Both files are created before the command runs, so that a bad path fails fast.
    let report = match &args.report {
        Some(path) => Some(JsonOut::create(path)?),
        None => None,
    };
    let junit_file = match &args.junit {
        Some(path) => Some((
            path.clone(),
            File::create(path)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
        )),
        None => None,
    };
    let loaded = pipeline::load(Options {
        filter_targets: true,
        wakeup_bytes: WAKEUP_BYTES,
        follow_children: true,
        fold_repeats: false,
    })?;
    let mut stream = loaded.start(&StreamOptions {
        explain: &args.explain,
        clock: None,
        // The command's stderr is ours: notes would be noise in its output.
        notices: if args.quiet {
            Notices::Nothing
        } else {
            Notices::Warnings
        },
        tick: None,
        raw: None,
    })?;

    let started = Instant::now();
    let started_at = stream.correlator().time(boot_now_ns());
    // The summary shows the command line too, so it is masked like the reports.
    let shown = stream
        .correlator()
        .redaction()
        .argv_owned(args.command.clone());
    let mut session = Session::new(&allow, report, shown, started_at);
    let spawned = match spawn_watched(&args.command, &mut stream.tracer, signals.original_mask()) {
        Ok(spawned) => spawned,
        Err(SpawnError::Setup(error)) => return Err(error),
        Err(SpawnError::Start(error)) => {
            let status = match error.kind() {
                io::ErrorKind::NotFound => 127,
                _ => 126,
            };
            let message = format!("cannot run {}: {error}", shell_join(&args.command[..1]));
            // An error: printed even with --quiet; the summary has nothing to add.
            eprintln!("sigwho: {message}");
            let outcome = Outcome {
                pid: None,
                status: None,
                exit_status: status,
                duration: started.elapsed(),
                error: Some(message),
                interrupted: Vec::new(),
                tracing_error: None,
            };
            return Ok(session.finish(&args, &outcome, junit_file));
        }
    };
    session.cmd = Some(spawned.key);
    session.tree.insert(spawned.key);

    let outcome = supervise(&args, &mut stream, &mut session, signals, spawned, started).await;
    Ok(session.finish(&args, &outcome, junit_file))
}

/// Follows the command until it (and with --wait-descendants its descendants) exited.
async fn supervise(
    args: &RunOptions,
    stream: &mut EventStream,
    session: &mut Session<'_>,
    signals: &mut OwnSignals,
    spawned: Spawned,
    started: Instant,
) -> Outcome {
    let Spawned {
        mut child,
        pid,
        exited,
        ..
    } = spawned;
    let mut status: Option<ExitStatus> = None;
    let mut tracing = true;
    let mut tracing_error: Option<String> = None;
    let mut interrupted = Vec::new();
    let mut told_waiting = false;
    let mut signals_ok = true;
    let mut warned_full = false;
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            ready = stream.wait(), if tracing => {
                if let Err(error) = ready {
                    stop_tracing(&mut tracing, &mut tracing_error, chain(&error));
                }
            }
            guard = exited.readable(), if status.is_none() => {
                match child.try_wait() {
                    Ok(Some(done)) => status = Some(done),
                    Ok(None) => {
                        if let Ok(mut guard) = guard {
                            guard.clear_ready();
                        }
                    }
                    Err(error) => {
                        // Cannot happen for our own unreaped child; do not spin.
                        eprintln!("sigwho: error: waiting for pid {pid}: {error}");
                        status = Some(ExitStatus::from_raw(2 << 8));
                    }
                }
            }
            received = signals.recv(), if signals_ok => match received {
                Ok(received) => {
                    if status.is_some() {
                        // Only descendants are left (--wait-descendants): stop waiting.
                        interrupted.push(forward::interrupt(
                            &received,
                            false,
                            "stopped waiting for the descendants",
                        ));
                        break;
                    }
                    let forwarded = forward::should_forward(&received, pid);
                    if forwarded {
                        // Our child, not reaped yet: the pid is still its. Gone already,
                        // it needs nothing passed on.
                        let _ = sys::kill(pid, received.signo);
                    }
                    interrupted.push(forward::interrupt(
                        &received,
                        forwarded,
                        if forwarded {
                            "passed it on to the command"
                        } else {
                            "the terminal sent it to the command too"
                        },
                    ));
                }
                Err(error) => {
                    eprintln!("sigwho: error: reading signals: {error}; they are no longer passed on");
                    signals_ok = false;
                }
            },
            _ = tokio::time::sleep(TICK), if !tracing => {}
        }
        if tracing {
            match stream.drain(false) {
                Ok(reports) => session.take_all(reports, stream),
                Err(error) => stop_tracing(&mut tracing, &mut tracing_error, chain(&error)),
            }
        }
        ticks += 1;
        if !warned_full && ticks.is_multiple_of(50) {
            let len = stream.tracer.targets().len();
            if len >= tracer_ebpf::MAX_TARGETS as usize {
                warned_full = true;
                if !args.quiet {
                    eprintln!(
                        "sigwho: warning: the tree has {len} live processes, the most sigwho can follow; newer ones are not traced"
                    );
                }
            }
        }
        if status.is_some() {
            if !args.wait_descendants {
                break;
            }
            let left = descendants_left(&stream.tracer, pid);
            if left == 0 {
                break;
            }
            if !told_waiting && !args.quiet {
                told_waiting = true;
                eprintln!(
                    "sigwho: the command exited; waiting for {left} descendant process(es) (--wait-descendants)"
                );
            }
        }
    }
    if tracing {
        match stream.drain(true) {
            Ok(reports) => session.take_all(reports, stream),
            Err(error) => stop_tracing(&mut tracing, &mut tracing_error, chain(&error)),
        }
    }
    let exit_status = status.map_or(2, shell_status);
    Outcome {
        pid: Some(pid),
        status: status.map(status_of),
        exit_status,
        duration: started.elapsed(),
        error: None,
        interrupted,
        tracing_error,
    }
}

fn stop_tracing(tracing: &mut bool, error: &mut Option<String>, message: String) {
    eprintln!(
        "sigwho: error: {message}; signals from now on are not traced (waiting for the command)"
    );
    *tracing = false;
    *error = Some(message);
}

/// Live processes of the tree other than the command itself.
fn descendants_left(tracer: &Tracer, cmd_pid: u32) -> usize {
    tracer
        .targets()
        .into_iter()
        .filter(|&pid| pid != cmd_pid && Path::new(&format!("/proc/{pid}")).exists())
        .count()
}
