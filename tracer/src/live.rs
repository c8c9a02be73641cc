//! `sigwho --target-pid PID`: report every signal that reaches PID until it exits.

use std::{
    collections::BTreeMap,
    io::{self, Write},
    time::Duration,
};

use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::SignalKind,
    time::Instant,
};

use crate::{
    clock::{BootClock, boot_now_ns, ticks_per_second},
    correlate::{Correlator, Watched, request_reaches},
    decode,
    explain::Rules,
    lineage::{ProcKey, ProcessTable},
    load::{self, LoadError, Options, Tracer},
    procfs,
    report::{LostReport, Report},
};

pub struct LiveOptions {
    pub target_pid: u32,
    pub json: bool,
    pub timeout: Option<Duration>,
    pub cause_window: Duration,
    pub rules: &'static Rules,
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
    #[error("reading the ring buffer: {0}")]
    Ring(io::Error),
}

/// How often the ring buffer is drained even without a wakeup: records below the
/// wakeup threshold wait at most this long.
const TICK: Duration = Duration::from_millis(20);
/// Fill level that wakes the reader at once (storms).
const WAKEUP_BYTES: u64 = 256 * 1024;

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

/// Output that ends quietly when the reader goes away (`sigwho ... | head -1`).
struct Output<W: Write> {
    out: W,
    json: bool,
    closed: bool,
}

impl<W: Write> Output<W> {
    fn emit(&mut self, report: &Report) {
        if self.closed {
            return;
        }
        let text = if self.json {
            let mut line = report.to_json();
            line.push('\n');
            line
        } else {
            report.to_text()
        };
        if self
            .out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .is_err()
        {
            self.closed = true;
        }
    }
}

pub async fn run(options: LiveOptions, out: impl Write) -> Result<(), LiveError> {
    let pid = options.target_pid;
    let target = find_target(pid)?;
    let mut tracer = Tracer::load(&Options {
        filter_targets: true,
        wakeup_bytes: WAKEUP_BYTES,
    })?;
    tracer.watch(pid)?;
    // The process may have exited (and its pid been reused) while we attached.
    match procfs::read_stat(pid) {
        Ok(stat) if stat.start_ticks == target.key.start_ticks => {}
        _ => return Err(LiveError::ExitedEarly(pid)),
    }
    let tps = ticks_per_second();
    let mut correlator = Correlator::new(ProcessTable::from_proc(tps), BootClock::now(), tps)
        .with_cause_window(u64::try_from(options.cause_window.as_nanos()).unwrap_or(u64::MAX))
        .with_rules(options.rules);
    for warning in &tracer.warnings {
        eprintln!("sigwho: warning: cannot see {warning}");
    }
    eprintln!(
        "sigwho: tracing pid {pid} ({}); reports go to stdout until it exits",
        target.comm
    );

    let mut output = Output {
        out,
        json: options.json,
        closed: false,
    };
    let deadline = options.timeout.map(|t| Instant::now() + t);
    let mut interrupt = tokio::signal::unix::signal(SignalKind::interrupt()).ok();
    let mut terminate = tokio::signal::unix::signal(SignalKind::terminate()).ok();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dropped_seen = [0u64; 8];

    let ring = tracer
        .take_ring()
        .ok_or_else(|| LiveError::Ring(io::Error::other("ring buffer already taken")))?;
    // SAFETY: RingBuf owns its map fd and keeps it open, unchanged, until dropped, and
    // the AsyncFd owns the RingBuf.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| LiveError::Ring(io::Error::other(e.to_string())))?;
    let mut session = Session {
        target: &target,
        watched: None,
        done: false,
    };
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(LiveError::Ring)?;
                guard.clear_ready();
            }
            _ = ticker.tick() => {}
            _ = recv(&mut interrupt) => session.done = true,
            _ = recv(&mut terminate) => session.done = true,
            _ = sleep_until(deadline) => {
                eprintln!("sigwho: --timeout reached; pid {pid} is still running");
                session.done = true;
            }
        }
        // Everything already queued is reported, even when stopping.
        while let Some(item) = ring.get_mut().next() {
            match decode::decode(&item) {
                Ok(event) => correlator.apply(&event),
                Err(error) => eprintln!("sigwho: skipping a bad record: {error}"),
            }
        }
        let now = if session.done {
            u64::MAX
        } else {
            boot_now_ns()
        };
        for report in correlator.release(now) {
            if let Some(report) = session.filter(&mut correlator, report) {
                output.emit(&report);
            }
        }
        // The target's exit may still sit behind a held report; the next tick has it.
        if let Some(lost) = lost_report(&mut dropped_seen, &correlator, tracer.dropped()?) {
            output.emit(&Report::Lost(lost));
        }
        if session.done || output.closed {
            return Ok(());
        }
    }
}

async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A lost report when the kernel's drop counters moved since the last look.
fn lost_report(seen: &mut [u64; 8], correlator: &Correlator, now: [u64; 8]) -> Option<LostReport> {
    let mut by_kind = BTreeMap::new();
    let mut count = 0;
    for (index, (seen, now)) in seen.iter_mut().zip(now).enumerate() {
        let delta = now.saturating_sub(*seen);
        *seen = now;
        if delta > 0 {
            *by_kind.entry(load::kind_name(index)).or_insert(0) += delta;
            count += delta;
        }
    }
    (count > 0).then(|| LostReport {
        event: "lost",
        time: correlator.time(boot_now_ns()),
        count,
        by_kind,
    })
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
            Report::Exit(_) | Report::Lost(_) => None,
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
                signal.target = correlator.describe(&self.target.key, tid);
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
