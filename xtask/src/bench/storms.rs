//! The storm table's measurements: every row, round after round, each one a storm of its
//! workload with its tracer beside it, and what the tracer saw counted afterwards.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::Env;
use super::auditd;
use super::configs::{Count, Names, Program, Ready};
use super::count::count_events;
use super::load::{CLOCK_TICKS_PER_SEC, cpu_ticks, foreign_tracers};
use super::recorder;
use super::report::{float, percent, si};
use super::running::Running;
use super::workloads::{Background, Row, Storm};

/// Other load (in CPUs) under which a storm counts as having had the machine to itself:
/// quiet rounds here show 1-9%, rounds beside someone's build 30% and more.
pub(super) const CLEAN_OTHER_LOAD: f64 = 0.15;

/// One measurement of one row.
pub(super) struct Sample {
    pub(super) round: u32,
    pub(super) rate: f64,
    pub(super) calls: u64,
    /// Signals the tracer reported, when it can be counted.
    pub(super) seen: Option<u64>,
    /// Records the tracer itself says it lost.
    pub(super) lost: Option<u64>,
    /// CPU the tracer's process used during the storm, in CPUs (1.0: one CPU busy). Its
    /// eBPF programs run in the senders' context and count as theirs, not here.
    pub(super) tracer_cpu: Option<f64>,
    /// CPU used during the storm by neither the storm nor the tracer, in CPUs: other
    /// work on the machine, which competes with the senders and makes a round suspect.
    pub(super) others_cpu: Option<f64>,
    /// Tracers the bench did not start, seen running around the storm (`comm[pid]`):
    /// their hooks slow every `kill()` on the machine, so the round is not clean.
    pub(super) foreign: Vec<String>,
    /// The recorder's own account and its journal's, for the recorder's rows.
    pub(super) recorded: Option<recorder::Recorded>,
}

impl Sample {
    /// Whether the storm had the machine to itself, as far as the bench can tell.
    pub(super) fn clean(&self) -> bool {
        self.foreign.is_empty() && self.others_cpu.is_some_and(|load| load < CLEAN_OTHER_LOAD)
    }
}

/// Every row's samples, or why it was skipped.
pub(super) type Results = Vec<Result<Vec<Sample>, String>>;

pub(super) fn storms(env: &Env, rows: &[Row], rounds: u32) -> Result<Results> {
    let mut results: Results = rows
        .iter()
        .map(|row| match row.config.tracer.as_ref().map(|t| t.program) {
            Some(Program::Tool(tool)) => env
                .tools
                .get(tool)
                .map(|_| Vec::new())
                .map_err(str::to_owned),
            _ => Ok(Vec::new()),
        })
        .collect();
    for round in 1..=rounds {
        for (row, result) in rows.iter().zip(&mut results) {
            let Ok(samples) = result else { continue };
            eprintln!("bench: round {round}/{rounds}: {}", row.name());
            match measure(env, row, round) {
                Ok(sample) => {
                    eprintln!("bench:   {}", describe(&sample));
                    samples.push(sample);
                }
                // Without the baseline no ratio means anything.
                Err(err) if row.config.tracer.is_none() => return Err(err),
                Err(err) => {
                    eprintln!("bench:   failed, skipping it from now on: {err:#}");
                    *result = Err(format!("failed in round {round}: {err:#}"));
                }
            }
        }
    }
    Ok(results)
}

pub(super) fn describe(sample: &Sample) -> String {
    let mut text = format!("{} kill() calls/s", si(sample.rate));
    if let Some(seen) = sample.seen {
        let _ = write!(
            text,
            ", {} of {} signals seen",
            si(float(seen)),
            si(float(sample.calls))
        );
    }
    if let Some(lost) = sample.lost {
        let _ = write!(text, ", {} lost", si(float(lost)));
    }
    if let Some(cpu) = sample.tracer_cpu {
        let _ = write!(text, "; tracer CPU {}", percent(cpu));
    }
    if let Some(cpu) = sample.others_cpu {
        let _ = write!(text, "; other load {}", percent(cpu));
    }
    if let Some(recorded) = &sample.recorded {
        let _ = write!(text, "; {}", recorded.describe());
    }
    if !sample.foreign.is_empty() {
        let _ = write!(
            text,
            "; other tracers running: {}",
            sample.foreign.join(" ")
        );
    }
    text
}

pub(super) fn measure(env: &Env, row: &Row, round: u32) -> Result<Sample> {
    let config = &row.config;
    let out = env.scratch.join(format!("round{round}.out"));
    let control = env.scratch.join("perf.control");
    // perf.data and bpftrace output run to hundreds of MB per storm; gone on every path.
    let mut scratch = recorder::journal_files(&out);
    scratch.push(control.clone());
    let _scratch = RemoveOnDrop(scratch);
    // auditd's kernel side before the storm forks its senders: see
    // auditd::Session::before_start.
    let audit = match &config.tracer {
        Some(tracer) if matches!(tracer.ready, Ready::AuditRule) => {
            Some(auditd::Session::before_start()?)
        }
        _ => None,
    };
    let storm = Storm::start(env, row.workload)?;
    let victim = storm.victim;
    let background = row.workload.background.map(Background::start).transpose()?;
    let names = Names {
        victim: victim.to_string(),
        idle: env.idle.to_string(),
        out: out.display().to_string(),
        control: control.display().to_string(),
        audit_dir: env.scratch.join("auditd").display().to_string(),
    };
    let tracer = match &config.tracer {
        Some(tracer) => Some(Running::start(env, tracer, &names, &out, &control, audit)?),
        None => None,
    };
    let ours = tracer.as_ref().map(|t| t.child.id());
    let mut foreign = foreign_tracers(ours);
    let tracer_before = tracer.as_ref().and_then(|t| cpu_ticks(t.child.id()));
    let background_before = background.as_ref().and_then(|b| cpu_ticks(b.pid()));
    let storm = storm.run()?;
    let background_ticks = match (&background, background_before) {
        (Some(b), Some(before)) => cpu_ticks(b.pid()).map(|after| after - before),
        _ => None,
    };
    drop(background);
    foreign.extend(foreign_tracers(ours));
    foreign.sort();
    foreign.dedup();
    let tracer_ticks = match (&tracer, tracer_before) {
        (Some(t), Some(before)) => cpu_ticks(t.child.id()).map(|after| after - before),
        _ => None,
    };
    let cpus = |ticks: u64| float(ticks) / CLOCK_TICKS_PER_SEC / storm.elapsed.max(1e-3);
    let others = storm.machine_ticks.map(|busy| {
        busy.saturating_sub(
            storm.storm_ticks.unwrap_or(0)
                + tracer_ticks.unwrap_or(0)
                + background_ticks.unwrap_or(0),
        )
    });
    let mut sample = Sample {
        round,
        rate: storm.rate,
        calls: storm.calls,
        seen: None,
        lost: None,
        tracer_cpu: tracer_ticks.map(cpus),
        others_cpu: others.map(cpus),
        foreign,
        recorded: None,
    };
    if let (Some(running), Some(tracer)) = (tracer, &config.tracer) {
        settle(&out);
        let stderr = running.stop()?;
        if let Count::Journal = tracer.count {
            let recorded = recorder::Recorded {
                summary: recorder::parse_summary(&stderr),
                journal: recorder::count_journal(&out, victim)?,
            };
            sample.seen = Some(recorded.journal.signals_to);
            sample.lost = Some(recorded.journal.dropped);
            sample.recorded = Some(recorded);
        } else {
            (sample.seen, sample.lost) = count_events(tracer.count, &out, &stderr, victim)?;
        }
    }
    Ok(sample)
}

/// Gives a tracer that is behind the time to write out what it has buffered before it is
/// interrupted: not every tool drains its buffers on SIGINT (sigsnoop does not), and
/// what it loses then would count against it as missed. Waits until `out` (when the
/// tracer writes one) has stopped growing.
pub(super) fn settle(out: &Path) {
    const QUIET: Duration = Duration::from_millis(300);
    const MAX: Duration = Duration::from_secs(30);
    let size = || fs::metadata(out).map(|m| m.len()).ok();
    let Some(mut last) = size() else { return };
    let started = Instant::now();
    let mut quiet_since = Instant::now();
    while started.elapsed() < MAX && quiet_since.elapsed() < QUIET {
        // Polled: there is no event for "a file stopped growing".
        thread::sleep(Duration::from_millis(50));
        let now = size().unwrap_or(last);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
}

pub(super) struct RemoveOnDrop(pub(super) Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            // Absent when the configuration does not write it.
            let _ = fs::remove_file(path);
        }
    }
}
