//! `sigwho run -- CMD`: runs a command with its stdio untouched and reports every signal
//! its process tree received (from inside or outside the tree, sent or kernel-made) until
//! it exits, then a summary (stderr), JSON lines (--report), JUnit XML (--junit) and, on
//! GitHub Actions, `::warning` annotations. Exits with the command's status.
//!
//! The tracer is loaded first and the command is held between fork and exec until its
//! pid is in the kernel's target filter (`spawn`); from then on the kernel adds every
//! process a target forks (before it runs) and drops each at exit, so the tree is
//! followed without any race against userspace. `session` keeps what the reports say;
//! `policy` says what is expected; `crate::render::summary` and `crate::render::junit`
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

/// Runs the command, traces its tree, writes the outputs; returns sigwho's exit
/// status (the command's, or 1 with `--fail-on-signal`, or 2 when sigwho failed).
///
/// # Errors
///
/// When an option or output file is bad or tracing cannot start; the command's own
/// failures are its exit status.
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
        fold_repeats: true,
        select: tracer_common::Select::default(),
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
        repeats_every: pipeline::VIEW_REPEATS_EVERY,
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
    let mut tracing = Tracing {
        on: true,
        error: None,
    };
    let mut interrupted = Vec::new();
    let mut told_waiting = false;
    let mut signals_ok = true;
    let mut warned_full = false;
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            ready = stream.wait(), if tracing.on => {
                if let Err(error) = ready {
                    tracing.stop(chain(&error));
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
                    // Once only descendants are left (--wait-descendants), a signal ends
                    // the wait.
                    let done = status.is_some();
                    interrupted.push(forward::pass_on(&received, pid, done));
                    if done {
                        break;
                    }
                }
                Err(error) => {
                    eprintln!("sigwho: error: reading signals: {error}; they are no longer passed on");
                    signals_ok = false;
                }
            },
            () = tokio::time::sleep(TICK), if !tracing.on => {}
        }
        tracing.drain(stream, session, false);
        ticks += 1;
        if !warned_full && ticks.is_multiple_of(50) {
            warned_full = warn_if_full(stream, args.quiet);
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
    tracing.drain(stream, session, true);
    let exit_status = status.map_or(2, shell_status);
    Outcome {
        pid: Some(pid),
        status: status.map(status_of),
        exit_status,
        duration: started.elapsed(),
        error: None,
        interrupted,
        tracing_error: tracing.error,
    }
}

/// Whether the ring buffer is still read, and why it no longer is. Tracing can fail
/// while the command runs on: sigwho keeps waiting for it, and says so.
struct Tracing {
    on: bool,
    error: Option<String>,
}

impl Tracing {
    fn stop(&mut self, message: String) {
        eprintln!(
            "sigwho: error: {message}; signals from now on are not traced (waiting for the command)"
        );
        self.on = false;
        self.error = Some(message);
    }

    /// A pass over the ring buffer (the last one releases everything), into `session`.
    fn drain(&mut self, stream: &mut EventStream, session: &mut Session<'_>, last: bool) {
        if !self.on {
            return;
        }
        match stream.drain(last) {
            Ok(reports) => session.take_all(reports, stream),
            Err(error) => self.stop(chain(&error)),
        }
    }
}

/// Says once that the tree outgrew the kernel's target filter; true once said.
fn warn_if_full(stream: &EventStream, quiet: bool) -> bool {
    let len = stream.tracer.targets().len();
    if len < tracer_common::MAX_TARGETS as usize {
        return false;
    }
    if !quiet {
        eprintln!(
            "sigwho: warning: the tree has {len} live processes, the most sigwho can follow; newer ones are not traced"
        );
    }
    true
}

/// Live processes of the tree other than the command itself.
fn descendants_left(tracer: &Tracer, cmd_pid: u32) -> usize {
    tracer
        .targets()
        .into_iter()
        .filter(|&pid| pid != cmd_pid && Path::new(&format!("/proc/{pid}")).exists())
        .count()
}
