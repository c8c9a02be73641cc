//! `sigwho` without `--target-pid`: every signal on the machine (as sigsnoop shows them),
//! or those to the processes the selectors name (`--target-comm`, `--target-exe`,
//! `--unit`, `--container`, `--pod`, `--cgroup`, with `--signal`), following new
//! matching processes (a worker restarted under a new pid) until ^C or `--timeout`.
//!
//! How processes get into the kernel's target filter: the ones running at start from
//! the /proc snapshot; those that exec later when userspace sees their exec record
//! (`--target-comm` is matched by the kernel itself at exec, before the new program runs
//! a single instruction); their forks by the kernel at fork (`follow_children`), which
//! also takes each out at exit, or here when the fork record shows a selected program
//! whose parent was not in the filter yet. Until userspace has read an exec record, the
//! kernel lets the process's signals through for [`EXEC_GRACE`] (tracer-ebpf's
//! select.rs), so that a signal in between (a supervisor's restart, then at once a
//! signal) is not missed. A process that execs into something the selectors do not
//! name leaves the filter. Reports are then checked against every selector here: those
//! to processes the grace let through that do not match are dropped, as the kernel
//! would have.

use std::{collections::HashSet, io::Write, time::Duration};

use tokio::time::Instant;

use crate::{
    analysis::{
        correlate::{Correlator, NewProcess},
        report::Report,
        select::Selectors,
    },
    kernel::{
        load::{Options, Tracer},
        stream::WAKEUP_BYTES,
    },
    model::lineage::ProcKey,
    modes::{
        live::LiveError,
        pipeline::{self, ExplainOptions, StreamOptions},
        signals::OwnSignals,
    },
    render::output::ReportWriter,
};

/// How long after its exec the kernel lets a process's signals through before userspace
/// has decided whether the selectors name it: far longer than reading an exec record
/// takes (milliseconds, seconds only on a machine stalled under load), short enough
/// that a storm at a process that just exec'd into something else costs little (and
/// it is folded into counts in the kernel meanwhile).
pub const EXEC_GRACE: Duration = Duration::from_secs(2);

/// What `sigwho [SELECTORS]` was asked.
pub struct WatchOptions {
    pub selectors: Selectors,
    pub json: bool,
    pub timeout: Option<Duration>,
    pub explain: ExplainOptions,
}

/// Reports the selected signals until ^C/SIGTERM (`signals`) or the timeout.
///
/// # Errors
///
/// When the tracer cannot be loaded, its target filter cannot be changed, or the ring
/// buffer or sigwho's own signals cannot be read.
pub async fn run(
    options: WatchOptions,
    signals: &mut OwnSignals,
    out: impl Write,
) -> Result<(), LiveError> {
    let selectors = options.selectors;
    let by_process = selectors.selects_processes();
    let grace = selectors.resolved_in_userspace();
    let loaded = pipeline::load(Options {
        filter_targets: by_process,
        wakeup_bytes: WAKEUP_BYTES,
        follow_children: by_process,
        fold_repeats: true,
        select: tracer_common::Select {
            signal_mask: selectors.signal_mask(),
            target_comm: selectors.kernel_comm(),
            exec_grace_ns: if grace {
                u64::try_from(EXEC_GRACE.as_nanos()).unwrap_or(u64::MAX)
            } else {
                0
            },
        },
    })?;
    let mut stream = loaded.start(&StreamOptions::view(&options.explain))?;
    let mut session = Session {
        selectors: &selectors,
        by_process,
        followed: HashSet::new(),
    };
    if by_process {
        let (correlator, tracer) = stream.parts_mut();
        correlator.log_new_processes();
        for key in correlator.live_processes() {
            if correlator.selects(&selectors, &key) {
                tracer.watch(key.pid)?;
                session.followed.insert(key);
            }
        }
        eprintln!(
            "sigwho: tracing signals to processes matching {} ({} running now, new ones followed); reports go to stdout until ^C or --timeout",
            selectors.describe(),
            session.followed.len()
        );
    } else if selectors.signals.is_empty() {
        eprintln!(
            "sigwho: tracing every signal on this machine; reports go to stdout until ^C or --timeout"
        );
    } else {
        let names: Vec<String> = selectors
            .signals
            .iter()
            .map(|&signo| crate::model::signals::signal_label(signo))
            .collect();
        eprintln!(
            "sigwho: tracing every {} on this machine; reports go to stdout until ^C or --timeout",
            names.join(", ")
        );
    }

    let mut output = ReportWriter::new(out, options.json);
    let deadline = options.timeout.map(|t| Instant::now() + t);
    let mut done = false;
    loop {
        tokio::select! {
            ready = stream.wait() => ready?,
            received = signals.recv() => {
                received.map_err(LiveError::Signals)?;
                done = true;
            }
            () = pipeline::sleep_until(deadline) => {
                eprintln!("sigwho: --timeout reached");
                done = true;
            }
        }
        let reports = stream.drain(done)?;
        if by_process {
            let (correlator, tracer) = stream.parts_mut();
            session.follow_new(correlator, tracer, grace)?;
        }
        for report in reports {
            if let Some(report) = session.filter(stream.correlator_mut(), report) {
                output.emit(&report);
            }
        }
        output.flush();
        if done || output.closed {
            return Ok(());
        }
    }
}

struct Session<'a> {
    selectors: &'a Selectors,
    by_process: bool,
    /// Selected processes (running at start or exec'd since) whose exit is reported.
    followed: HashSet<ProcKey>,
}

impl Session<'_> {
    /// Puts the processes that exec'd or were forked since the last pass in the
    /// kernel's target filter or out of it, as the selectors say, and ends the exec
    /// grace of those they do not name (`grace`: a selector only userspace resolves).
    fn follow_new(
        &mut self,
        correlator: &mut Correlator,
        tracer: &mut Tracer,
        grace: bool,
    ) -> Result<(), LiveError> {
        for NewProcess { key, exec, time_ns } in correlator.take_new_processes() {
            if !exec {
                // A fork runs its parent's program: one the kernel did not follow
                // (forked before userspace added its parent) joins here. Never taken
                // out here: the kernel's follow_children decides for forks.
                if correlator.selects(self.selectors, &key) && !tracer.is_watched(key.pid) {
                    tracer.watch(key.pid)?;
                }
                continue;
            }
            if correlator.selects(self.selectors, &key) {
                tracer.watch(key.pid)?;
                self.followed.insert(key);
                continue;
            }
            if grace {
                // Not one to follow: the kernel stops letting its signals through.
                tracer.exec_decided(key.pid, time_ns)?;
            }
            if self.followed.remove(&key) || tracer.is_watched(key.pid) {
                // It runs something else now (a shell a worker started, say).
                tracer.unwatch(key.pid);
            }
        }
        Ok(())
    }

    fn filter(&mut self, correlator: &mut Correlator, report: Report) -> Option<Report> {
        match report {
            Report::Lost(_) => Some(report),
            // How a followed process ended is part of the story (a worker killed, then
            // restarted); other exits would drown the signals.
            Report::Exit(exit) => {
                let followed = exit.key.is_some_and(|key| self.followed.remove(&key));
                followed.then_some(Report::Exit(exit))
            }
            Report::Signal(signal) if signal.target.is_some() => self
                .selectors
                .selects_report(&signal)
                .then_some(Report::Signal(signal)),
            // A failed attempt: aimed at a followed process?
            Report::Signal(mut signal) => {
                if !self.selectors.signal_selected(signal.signo) {
                    return None;
                }
                if !self.by_process {
                    return Some(Report::Signal(signal));
                }
                let pids: Vec<u32> = self.followed.iter().map(|k| k.pid).collect();
                let aimed = correlator.attempt_target(&signal, &pids)?;
                let key = self.followed.iter().find(|k| k.pid == aimed.pid).copied()?;
                correlator.attribute(&mut signal, key, aimed.tid);
                Some(Report::Signal(signal))
            }
        }
    }
}
