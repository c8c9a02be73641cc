//! Measurements beside the storms: sigwho's start-up time on a crowded machine and the
//! live view's latency; the idle process both watch.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use super::Env;
use super::count::json_event;
use super::load::count_processes;
use super::running::{LineReader, READY_TIMEOUT, STOP_TIMEOUT, stop_child};
use super::sigwho::TRACING;
use super::sys::{self, SIGINT, SIGUSR1};
use crate::cargo::show;

pub(super) const STARTUP_RUNS: usize = 5;
pub(super) const LATENCY_SIGNALS: u32 = 20;
pub(super) const LATENCY_SPACING: Duration = Duration::from_millis(200);

/// `sleep` started by the bench: the process nobody signals, watched by the in-kernel
/// filter configuration and the start-up measurement.
pub(super) struct Idle(Child);

impl Idle {
    pub(super) fn start() -> Result<Self> {
        let child = Command::new("sleep")
            .arg("infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("could not start `sleep infinity`")?;
        Ok(Self(child))
    }

    pub(super) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Processes on the machine while start-up is measured (the figure).
pub(super) const STARTUP_PROCESSES: usize = 1000;

/// Idle processes started to bring the machine to a process count; killed on drop.
pub(super) struct Crowd {
    _members: Vec<Idle>,
}

impl Crowd {
    pub(super) fn fill_to(total: usize) -> Result<Self> {
        let missing = total.saturating_sub(count_processes());
        eprintln!("bench: starting {missing} idle processes for the start-up measurement");
        let members = (0..missing)
            .map(|_| Idle::start())
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { _members: members })
    }
}

/// From just before exec to the `sigwho: tracing` line, sigwho watching the idle process.
pub(super) fn startup_times(env: &Env) -> Result<Vec<Duration>> {
    eprintln!("bench: sigwho start-up time, {STARTUP_RUNS} runs");
    (0..STARTUP_RUNS)
        .map(|_| startup_once(&env.bins.sigwho, env.idle))
        .collect()
}

/// One start of `sigwho` watching `idle`, until it says it is tracing.
fn startup_once(sigwho: &Path, idle: u32) -> Result<Duration> {
    let mut cmd = Command::new(sigwho);
    cmd.args(["--target-pid", &idle.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {}", show(&cmd)))?;
    let stderr = LineReader::start(child.stderr.take().context("sigwho stderr")?);
    let ready = stderr.wait_for(TRACING, READY_TIMEOUT);
    stop_child(&mut child, STOP_TIMEOUT, SIGINT)?;
    let at = ready.map_err(|why| anyhow!("sigwho did not start ({why}):\n{}", stderr.text()))?;
    Ok(at - started)
}

/// Runs per binary of `cargo xtask bench --startup-against`.
const COMPARE_RUNS: usize = 11;

/// `cargo xtask bench --startup-against BASELINE`: start-up with 1,000 processes on the
/// machine, the freshly built sigwho and `baseline` taking turns (so that other load on
/// the machine falls on both alike), medians and their ratio.
pub(super) fn compare(current: &Path, baseline: &Path, idle: u32) -> Result<()> {
    let crowd = Crowd::fill_to(STARTUP_PROCESSES)?;
    let processes = count_processes();
    eprintln!("bench: start-up, {COMPARE_RUNS} runs each, alternating");
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for _ in 0..COMPARE_RUNS {
        before.push(startup_once(baseline, idle)?);
        after.push(startup_once(current, idle)?);
    }
    drop(crowd);
    let median = |times: &mut Vec<Duration>| {
        times.sort_unstable();
        times[times.len() / 2]
    };
    let (b, a) = (median(&mut before), median(&mut after));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("start-up with {processes} processes, median of {COMPARE_RUNS} (min-max):");
    println!(
        "  baseline {}: {:.1} ms ({:.1}-{:.1})",
        baseline.display(),
        ms(b),
        ms(before[0]),
        ms(before[COMPARE_RUNS - 1])
    );
    println!(
        "  current  {}: {:.1} ms ({:.1}-{:.1})",
        current.display(),
        ms(a),
        ms(after[0]),
        ms(after[COMPARE_RUNS - 1])
    );
    println!("  current / baseline: {:.3}", ms(a) / ms(b));
    Ok(())
}

/// With sigwho watching a process, the time from just before `kill()` to its JSON line on
/// sigwho's stdout, for signals spaced out so that each one is reported on its own.
pub(super) fn live_latency(env: &Env) -> Result<Vec<Duration>> {
    eprintln!("bench: live-view latency, {LATENCY_SIGNALS} signals");
    // Handles SIGUSR1, so the signal is delivered (not dropped as the storm's are), and
    // exits when its stdin closes: no signal needed to end it.
    let mut target = Command::new(&env.bins.testproc)
        .args(["target", "--handle", "USR1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start sigwho-testproc target")?;
    let result = measure_latency(env, &mut target);
    drop(target.stdin.take());
    target.wait()?;
    result
}

pub(super) fn measure_latency(env: &Env, target: &mut Child) -> Result<Vec<Duration>> {
    let mut ready = String::new();
    BufReader::new(target.stdout.take().context("target stdout")?).read_line(&mut ready)?;
    let pid: u32 = ready
        .split_whitespace()
        .find_map(|word| word.strip_prefix("pid="))
        .and_then(|pid| pid.parse().ok())
        .with_context(|| format!("sigwho-testproc target said {ready:?}"))?;

    let mut cmd = Command::new(&env.bins.sigwho);
    cmd.args(["--target-pid", &pid.to_string(), "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut sigwho = cmd
        .spawn()
        .with_context(|| format!("could not start {}", show(&cmd)))?;
    let stderr = LineReader::start(sigwho.stderr.take().context("sigwho stderr")?);
    let stdout = LineReader::start(sigwho.stdout.take().context("sigwho stdout")?);
    let result = (|| {
        stderr
            .wait_for(TRACING, READY_TIMEOUT)
            .map_err(|why| anyhow!("sigwho did not start ({why}):\n{}", stderr.text()))?;
        let start = Instant::now();
        let mut latencies = Vec::new();
        for i in 0..LATENCY_SIGNALS {
            // Pacing, not synchronisation: one signal at a time, as a person would watch.
            let due = start + LATENCY_SPACING * i;
            thread::sleep(due.saturating_duration_since(Instant::now()));
            let sent = Instant::now();
            // The target is our child and not reaped: it exits only when its stdin closes.
            sys::signal_pid(pid, SIGUSR1)?;
            let (arrived, _) = stdout
                .wait_for_line(
                    |line| json_event(line.as_bytes()).as_deref() == Some("signal"),
                    Duration::from_secs(10),
                )
                .map_err(|why| {
                    anyhow!("no report for signal {} ({why}):\n{}", i + 1, stderr.text())
                })?;
            latencies.push(arrived - sent);
        }
        Ok(latencies)
    })();
    stop_child(&mut sigwho, STOP_TIMEOUT, SIGINT)?;
    result
}
