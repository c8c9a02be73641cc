//! `sigwho --target-pid PID`: report every signal that reaches PID until it exits.

use std::{io::Write, time::Duration};

use tokio::{signal::unix::SignalKind, time::Instant};

use crate::{
    analysis::report::Report,
    analysis::{
        attempts::{Watched, request_reaches},
        correlate::Correlator,
    },
    kernel::load::{LoadError, Options, Tracer},
    kernel::stream::{EventStream, StreamError, WAKEUP_BYTES, recv, sleep_until},
    model::clock::{BootClock, ticks_per_second},
    model::lineage::{ProcKey, ProcessTable},
    model::procfs,
    modes::pipeline::ExplainOptions,
    render::output::ReportWriter,
};

/// What `sigwho --target-pid PID` was asked.
pub struct LiveOptions {
    pub target_pid: u32,
    pub json: bool,
    pub timeout: Option<Duration>,
    pub explain: ExplainOptions,
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

pub async fn run(options: LiveOptions, out: impl Write) -> Result<(), LiveError> {
    let pid = options.target_pid;
    let target = find_target(pid)?;
    let mut tracer = Tracer::load(&Options {
        filter_targets: true,
        wakeup_bytes: WAKEUP_BYTES,
        follow_children: false,
        fold_repeats: false,
    })?;
    tracer.watch(pid)?;
    // The process may have exited (and its pid been reused) while we attached.
    match procfs::read_stat(pid) {
        Ok(stat) if stat.start_ticks == target.key.start_ticks => {}
        _ => return Err(LiveError::ExitedEarly(pid)),
    }
    let tps = ticks_per_second();
    let correlator = Correlator::new(ProcessTable::from_proc(tps), BootClock::now(), tps)
        .with_cause_window(options.explain.cause_window_ns())
        .with_rules(options.explain.rules)
        .with_redaction(options.explain.redaction);
    for warning in &tracer.warnings {
        eprintln!("sigwho: warning: {warning}");
    }
    for note in &tracer.notes {
        eprintln!("sigwho: note: {note}");
    }
    let mut stream = EventStream::new(tracer, correlator)?;
    // Before the ready line: whoever waits for it may stop us at once, and a SIGINT
    // before tokio's handler would end sigwho without its last reports.
    let mut interrupt = tokio::signal::unix::signal(SignalKind::interrupt()).ok();
    let mut terminate = tokio::signal::unix::signal(SignalKind::terminate()).ok();
    eprintln!(
        "sigwho: tracing pid {pid} ({}); reports go to stdout until it exits",
        target.comm
    );

    let mut output = ReportWriter::new(out, options.json);
    let deadline = options.timeout.map(|t| Instant::now() + t);
    let mut session = Session {
        target: &target,
        watched: None,
        done: false,
    };
    loop {
        tokio::select! {
            ready = stream.wait() => ready?,
            _ = recv(&mut interrupt) => session.done = true,
            _ = recv(&mut terminate) => session.done = true,
            _ = sleep_until(deadline) => {
                eprintln!("sigwho: --timeout reached; pid {pid} is still running");
                session.done = true;
            }
        }
        // Everything already queued is reported, even when stopping. The target's exit
        // may sit behind a held report; the next tick releases it.
        for report in stream.drain(session.done)? {
            if let Some(report) = session.filter(stream.correlator_mut(), report) {
                output.emit(&report);
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
    /// Pid, process group and threads of the target, read when a failed send needs them.
    watched: Option<Watched>,
    done: bool,
}

impl Session<'_> {
    /// `report` if it concerns the target. The target's exit ends the session.
    fn filter(&mut self, correlator: &mut Correlator, report: Report) -> Option<Report> {
        match &report {
            Report::Exit(exit) if exit.key == Some(self.target.key) => {
                self.done = true;
                Some(report)
            }
            Report::Exit(_) => None,
            Report::Lost(_) => Some(report),
            Report::Signal(signal) if signal.target.is_some() => {
                (signal.keys.target == Some(self.target.key)).then_some(report)
            }
            Report::Signal(signal) => {
                let sender_pgrp = signal
                    .keys
                    .sender
                    .and_then(|key| procfs::read_process_if(key.pid, key.start_ticks))
                    .map(|snap| snap.stat.pgrp);
                let watched = self.watched(&signal.keys.request);
                if !request_reaches(&signal.keys.request, sender_pgrp, watched) {
                    return None;
                }
                let tid = match signal.keys.request.syscall {
                    tracer_ebpf::syscall::TKILL => signal.keys.request.arg0 as u32,
                    tracer_ebpf::syscall::TGKILL | tracer_ebpf::syscall::RT_TGSIGQUEUEINFO => {
                        signal.keys.request.arg1 as u32
                    }
                    _ => self.target.key.pid,
                };
                let Report::Signal(mut signal) = report else {
                    return None;
                };
                signal.target = correlator
                    .describe(&self.target.key, tid)
                    .map(std::sync::Arc::new);
                signal.keys.target = Some(self.target.key);
                Some(Report::Signal(signal))
            }
        }
    }

    fn watched(&mut self, request: &tracer_ebpf::Request) -> &Watched {
        let pid = self.target.key.pid;
        // Threads come and go; re-read them for thread-directed requests.
        if request.syscall == tracer_ebpf::syscall::TKILL {
            self.watched = None;
        }
        self.watched.get_or_insert_with(|| Watched {
            pid,
            pgrp: procfs::read_stat(pid).map(|s| s.pgrp).unwrap_or(0),
            tids: procfs::read_tids(pid),
        })
    }
}
