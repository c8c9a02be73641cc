//! `sigwho --target-pid PID`: report every signal that reaches PID until it exits.

use std::{ffi::c_int, io::Write, time::Duration};

use tokio::time::Instant;

use crate::{
    analysis::select::Selectors,
    analysis::{correlate::Correlator, report::Report},
    kernel::{
        load::{LoadError, Options},
        stream::{StreamError, WAKEUP_BYTES},
    },
    model::{lineage::ProcKey, procfs},
    modes::{
        pipeline::{self, ExplainOptions, PipelineError, StreamOptions},
        signals::OwnSignals,
    },
    render::output::ReportWriter,
};

/// The signals that end the live view (with its last reports); SIGHUP keeps its default.
pub const SIGNALS: &[c_int] = &[libc::SIGINT, libc::SIGTERM];

/// What `sigwho --target-pid PID` was asked.
pub struct LiveOptions {
    pub target_pid: u32,
    pub json: bool,
    pub timeout: Option<Duration>,
    pub explain: ExplainOptions,
    /// `--signal` (the process selectors go with [`run_selected`] instead).
    pub selectors: Selectors,
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "no process with pid {0} is running (sigwho watches live processes; to learn later who signalled a process that is gone, a recorder must have been running: `sigwho record`, then `sigwho query --target-pid {0}`)"
    )]
    NotRunning(u32),
    #[error("pid {tid} is a thread of process {pid}; use --target-pid {pid}")]
    Thread { tid: u32, pid: u32 },
    #[error("process {0} exited before tracing began")]
    ExitedEarly(u32),
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("{0}")]
    Start(#[from] PipelineError),
    #[error("reading sigwho's own signals: {0}")]
    Signals(std::io::Error),
}

/// What we know of the watched process.
struct Target {
    key: ProcKey,
    comm: String,
}

fn find_target(pid: u32) -> Result<Target, LiveError> {
    let stat = procfs::read_stat(pid).map_err(|_| LiveError::NotRunning(pid))?;
    match procfs::read_tgid(pid) {
        Some(tgid) if tgid != pid => {
            return Err(LiveError::Thread {
                tid: pid,
                pid: tgid,
            });
        }
        _ => {}
    }
    Ok(Target {
        key: ProcKey {
            pid,
            start_ticks: stat.start_ticks,
        },
        comm: stat.comm,
    })
}

/// Reports every signal that reaches the target until it exits, the timeout passes or
/// SIGINT/SIGTERM come (`signals`).
///
/// # Errors
///
/// When the pid is not running (or is a thread) or exits while the tracer attaches,
/// when the tracer cannot be loaded, and when the ring buffer or sigwho's own signals
/// cannot be read.
pub async fn run(
    options: LiveOptions,
    signals: &mut OwnSignals,
    out: impl Write,
) -> Result<(), LiveError> {
    let pid = options.target_pid;
    let target = find_target(pid)?;
    let mut loaded = pipeline::load(Options {
        filter_targets: true,
        wakeup_bytes: WAKEUP_BYTES,
        follow_children: false,
        fold_repeats: true,
        select: tracer_common::Select {
            signal_mask: options.selectors.signal_mask(),
            ..tracer_common::Select::default()
        },
    })?;
    loaded.tracer.watch(pid)?;
    // The process may have exited (and its pid been reused) while we attached.
    match procfs::read_stat(pid) {
        Ok(stat) if stat.start_ticks == target.key.start_ticks => {}
        _ => return Err(LiveError::ExitedEarly(pid)),
    }
    let mut stream = loaded.start(&StreamOptions::view(&options.explain))?;
    eprintln!(
        "sigwho: tracing pid {pid} ({}); reports go to stdout until it exits",
        target.comm
    );

    let mut output = ReportWriter::new(out, options.json);
    let deadline = options.timeout.map(|t| Instant::now() + t);
    let mut session = Session {
        target: &target,
        done: false,
    };
    loop {
        tokio::select! {
            ready = stream.wait() => ready?,
            received = signals.recv() => {
                received.map_err(LiveError::Signals)?;
                session.done = true;
            }
            () = pipeline::sleep_until(deadline) => {
                eprintln!("sigwho: --timeout reached; pid {pid} is still running");
                session.done = true;
            }
        }
        // Everything already queued is reported, even when stopping. The target's exit
        // may sit behind a held report; the next tick releases it.
        let last = session.done;
        for report in stream.drain(last)? {
            if let Some(report) = session.filter(stream.correlator_mut(), report) {
                output.emit(&report);
            }
        }
        if session.done && !last && !output.closed {
            // The target exited in this pass: its storms' counts are final now.
            for report in stream.drain(true)? {
                if let Some(report) = session.filter(stream.correlator_mut(), report) {
                    output.emit(&report);
                }
            }
        }
        output.flush();
        if session.done || output.closed {
            return Ok(());
        }
    }
}

struct Session<'a> {
    target: &'a Target,
    done: bool,
}

impl Session<'_> {
    /// `report` if it concerns the target. The target's exit ends the session.
    fn filter(&mut self, correlator: &mut Correlator, report: Report) -> Option<Report> {
        match report {
            Report::Exit(exit) if exit.key == Some(self.target.key) => {
                self.done = true;
                Some(Report::Exit(exit))
            }
            Report::Exit(_) => None,
            Report::Lost(_) => Some(report),
            Report::Signal(signal) if signal.target.is_some() => {
                (signal.keys.target == Some(self.target.key)).then_some(Report::Signal(signal))
            }
            // A failed attempt: was it aimed at the target?
            Report::Signal(mut signal) => {
                let key = self.target.key;
                let aimed = correlator.attempt_target(&signal, &[key.pid])?;
                if aimed.pid != key.pid {
                    return None;
                }
                correlator.attribute(&mut signal, key, aimed.tid);
                Some(Report::Signal(signal))
            }
        }
    }
}
