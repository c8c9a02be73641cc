//! `cargo xtask soak`: a mixed signal workload against `sigwho record`, then a check that
//! the journal holds every signal the workload sent (sender pid, target pid, signal).
//!
//! Not run in CI: it takes minutes (10 by default). The workload, at a moderate rate,
//! cycles through plain kills, process-group kills, signals from a forked child, a
//! sender that execs into another sender, crashes (SIGSEGV, SIGABRT) and SIGKILLs of
//! long-lived targets from xtask itself. Every signal it causes is logged to
//! target/soak/sent.log as `unix_ns sender target signo`; afterwards `sigwho query
//! --json` must contain each (multiset: a triple sent twice must be there twice).
//!
//! The recorder traces the whole machine, so someone else's signal storm can overflow
//! its ring buffer. Such losses are counted and stored as gaps; a missing signal sent
//! shortly before a gap is reported as explained by it. Only unexplained (silent)
//! losses fail the soak, and any loss is printed.

use std::{
    collections::HashMap,
    fs::File,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::cargo::{self, Workspace};

#[derive(clap::Args)]
pub struct SoakArgs {
    /// How long the workload runs.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Pause between two workload steps (moderate rate: the point is duration and
    /// variety, not a storm; `cargo xtask bench` does storms).
    #[arg(long, default_value_t = 40)]
    pause_ms: u64,
    /// The journal's --max-size: large enough that retention trims nothing during the
    /// run (reports of processes with long ancestries take several KiB each).
    #[arg(long, default_value = "8GiB")]
    max_size: String,
}

/// A gap noticed this long after a send can explain its loss (the drop counters are
/// read every 20 ms; a busy recorder may be late).
const GAP_WINDOW_NS: i128 = 2_000_000_000;

const SIGABRT: i32 = 6;
const SIGKILL: i32 = 9;
const SIGUSR1: i32 = 10;
const SIGSEGV: i32 = 11;
const SIGUSR2: i32 = 12;
const SIGTERM: i32 = 15;
/// Long-lived targets the senders aim at.
const POOL: usize = 4;

/// (sender pid, target pid, signal number)
type Sent = (u32, u32, i32);

fn unix_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

struct Bins {
    sigwho: PathBuf,
    testproc: PathBuf,
}

pub fn run(ws: &Workspace, args: &SoakArgs) -> Result<()> {
    if args.minutes <= 0.0 || !args.minutes.is_finite() {
        bail!("--minutes must be a positive number");
    }
    cargo::run_step(&mut ws.cargo(["build", "--release", "--workspace", "--bins"]))?;
    let release = ws.target_dir()?.join("release");
    let bins = Bins {
        sigwho: release.join("sigwho"),
        testproc: release.join("sigwho-testproc"),
    };
    let out = ws.target_dir()?.join("soak");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let journal = out.join("journal").join("journal");

    let mut recorder = start_recorder(&bins, &journal, &args.max_size, &out)?;
    eprintln!(
        "soak: recorder pid {} on {}; workload for {} min",
        recorder.id(),
        journal.display(),
        args.minutes
    );
    let mut log = File::create(out.join("sent.log"))?;
    let mut sent: Vec<(i128, Sent)> = Vec::new();
    let result = workload(&bins, args, &mut sent, &mut log);
    // Stop the recorder whatever happened: it flushes on SIGTERM.
    signal(recorder.id(), SIGTERM)?;
    let status = recorder.wait()?;
    result?;
    if !status.success() {
        bail!("the recorder exited with {status} (see {})", out.display());
    }

    let journaled = query(&bins, &journal, &out)?;
    let mut have: HashMap<Sent, usize> = HashMap::new();
    for triple in &journaled.signals {
        *have.entry(*triple).or_default() += 1;
    }
    let mut explained = 0usize;
    let mut silent = Vec::new();
    for (at, triple) in &sent {
        match have.get_mut(triple) {
            Some(n) if *n > 0 => *n -= 1,
            _ if journaled
                .gaps
                .iter()
                .any(|&gap| (*at - 100_000_000..=*at + GAP_WINDOW_NS).contains(&gap)) =>
            {
                explained += 1;
            }
            _ => silent.push(*triple),
        }
    }
    eprintln!(
        "soak: sent {} signals; the journal holds {} signal reports and {} gaps ({} records lost); \
         missing: {} inside a reported gap, {} unexplained",
        sent.len(),
        journaled.signals.len(),
        journaled.gaps.len(),
        journaled.lost_records,
        explained,
        silent.len()
    );
    for (sender, target, signo) in silent.iter().take(20) {
        eprintln!("soak: missing: sender {sender} -> target {target}, signal {signo}");
    }
    if !silent.is_empty() {
        bail!(
            "{} of {} signals sent are not in the journal and no gap explains them (log: {})",
            silent.len(),
            sent.len(),
            out.join("sent.log").display()
        );
    }
    if explained == 0 {
        eprintln!("soak: every signal sent is in the journal");
    } else {
        eprintln!(
            "soak: every signal sent is in the journal or inside a gap it reports (another \
             process's signal storm overflowed the ring buffer)"
        );
    }
    Ok(())
}

fn start_recorder(bins: &Bins, journal: &Path, max_size: &str, out: &Path) -> Result<Child> {
    let mut child = Command::new(&bins.sigwho)
        .args(["record", "--max-size", max_size, "--journal"])
        .arg(journal)
        .stdin(Stdio::null())
        .stdout(File::create(out.join("recorder.out"))?)
        .stderr(Stdio::piped())
        .spawn()
        .context("start sigwho record")?;
    let stderr = child.stderr.take().context("recorder stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let status = child.wait()?;
            bail!("sigwho record ended before it was recording: {status}");
        };
        eprintln!("soak: recorder: {line}");
        if line.starts_with("sigwho: recording") {
            break;
        }
    }
    // Keep draining its stderr so that it never blocks on a full pipe.
    thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("soak: recorder: {line}");
        }
    });
    Ok(child)
}

/// A `sigwho-testproc target` the workload started, after its ready line.
struct Target {
    child: Child,
    pid: u32,
}

impl Target {
    fn spawn(bins: &Bins, args: &[&str], stdin: bool) -> Result<Target> {
        let mut child = Command::new(&bins.testproc)
            .arg("target")
            .args(args)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .spawn()
            .context("start sigwho-testproc target")?;
        let pid = child.id();
        let stdout: ChildStdout = child.stdout.take().context("target stdout")?;
        let mut ready = String::new();
        BufReader::new(stdout).read_line(&mut ready)?;
        if !ready.starts_with(&format!("ready pid={pid} ")) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("target {pid}: no ready line ({ready:?})");
        }
        Ok(Target { child, pid })
    }
}

fn pool_target(bins: &Bins) -> Result<Target> {
    Target::spawn(
        bins,
        &[
            "--handle",
            "USR1",
            "--handle",
            "USR2",
            "--setpgid",
            "--no-stdin",
        ],
        false,
    )
}

/// Runs `sigwho-testproc ARGS` to completion; returns its pid and stdout.
fn sender(bins: &Bins, args: &[&str]) -> Result<(u32, String)> {
    let child = Command::new(&bins.testproc)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("start a sender")?;
    let pid = child.id();
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("sender {args:?} (pid {pid}) failed: {}", output.status);
    }
    Ok((pid, String::from_utf8_lossy(&output.stdout).into_owned()))
}

fn workload(
    bins: &Bins,
    args: &SoakArgs,
    sent: &mut Vec<(i128, Sent)>,
    log: &mut File,
) -> Result<()> {
    // Logged once the sender is done: the signal was sent shortly before.
    let mut record = |triple: Sent, sent: &mut Vec<(i128, Sent)>| -> Result<()> {
        let at = unix_ns();
        writeln!(log, "{at} {} {} {}", triple.0, triple.1, triple.2)?;
        sent.push((at, triple));
        Ok(())
    };
    let me = std::process::id();
    let mut pool: Vec<Target> = (0..POOL)
        .map(|_| pool_target(bins))
        .collect::<Result<_>>()?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    let pause = Duration::from_millis(args.pause_ms);
    let mut step: usize = 0;
    let result = (|| -> Result<()> {
        while Instant::now() < deadline {
            let slot = step % POOL;
            let t = pool[slot].pid;
            let ts = t.to_string();
            match step % 7 {
                0 => {
                    let (pid, _) = sender(bins, &["kill", &ts, "USR1"])?;
                    record((pid, t, SIGUSR1), sent)?;
                }
                1 => {
                    // Its own group, so the group is just the target.
                    let (pid, _) = sender(bins, &["kill", &format!("-{t}"), "USR2"])?;
                    record((pid, t, SIGUSR2), sent)?;
                }
                2 => {
                    let (_, out) = sender(bins, &["fork-kill", &ts, "USR1"])?;
                    let child: u32 = out
                        .trim()
                        .strip_prefix("child=")
                        .and_then(|p| p.parse().ok())
                        .with_context(|| format!("fork-kill printed {out:?}"))?;
                    record((child, t, SIGUSR1), sent)?;
                }
                3 => {
                    // Sends USR1, execs into a sender of USR2: one pid, two programs.
                    let (pid, _) =
                        sender(bins, &["kill-exec", &ts, "USR1", "--", "kill", &ts, "USR2"])?;
                    record((pid, t, SIGUSR1), sent)?;
                    record((pid, t, SIGUSR2), sent)?;
                }
                4 | 5 => {
                    let (command, signo) = if step % 7 == 4 {
                        ("segv", SIGSEGV)
                    } else {
                        ("abort", SIGABRT)
                    };
                    let mut crash = Target::spawn(bins, &[], true)?;
                    let mut stdin = crash.child.stdin.take().context("stdin")?;
                    writeln!(stdin, "{command}")?;
                    drop(stdin);
                    let status = crash.child.wait()?;
                    if std::os::unix::process::ExitStatusExt::signal(&status) != Some(signo) {
                        bail!("crash target {}: {status}", crash.pid);
                    }
                    record((crash.pid, crash.pid, signo), sent)?;
                }
                _ => {
                    // A pool target goes (SIGKILL from xtask) and a new one takes its
                    // place. Not reaped yet, so the pid is still the one we started.
                    let mut old = std::mem::replace(&mut pool[slot], pool_target(bins)?);
                    old.child.kill()?;
                    old.child.wait()?;
                    record((me, old.pid, SIGKILL), sent)?;
                }
            }
            step += 1;
            if step.is_multiple_of(500) {
                eprintln!("soak: {step} steps, {} signals sent", sent.len());
            }
            thread::sleep(pause);
        }
        Ok(())
    })();
    for mut target in pool {
        // Not reaped yet, so the pid is still this target's.
        if target.child.kill().is_ok() {
            record((me, target.pid, SIGKILL), sent)?;
        }
        let _ = target.child.wait();
    }
    result
}

struct Recorded {
    signals: Vec<Sent>,
    /// When each gap was noticed (Unix ns).
    gaps: Vec<i128>,
    lost_records: u64,
}

fn query(bins: &Bins, journal: &Path, out: &Path) -> Result<Recorded> {
    let path = out.join("journal.jsonl");
    let status = Command::new(&bins.sigwho)
        .args(["query", "--json", "--journal"])
        .arg(journal)
        .stdout(File::create(&path)?)
        .status()
        .context("run sigwho query")?;
    if !status.success() {
        bail!("sigwho query failed: {status}");
    }
    let mut recorded = Recorded {
        signals: Vec::new(),
        gaps: Vec::new(),
        lost_records: 0,
    };
    for line in BufReader::new(File::open(&path)?).lines() {
        let line = line?;
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            bail!("sigwho query printed a line that is not JSON: {line}");
        };
        match event["event"].as_str() {
            Some("signal") => {
                let pid = |who: &str| {
                    event[who]["pid"]
                        .as_u64()
                        .and_then(|p| u32::try_from(p).ok())
                };
                if let (Some(sender), Some(target), Some(signo)) =
                    (pid("sender"), pid("target"), event["signo"].as_i64())
                {
                    recorded
                        .signals
                        .push((sender, target, i32::try_from(signo).unwrap_or(-1)));
                }
            }
            Some("lost" | "gap") => {
                recorded.lost_records += event["count"].as_u64().unwrap_or(0);
                let time = event["time"].as_str().unwrap_or_default();
                recorded.gaps.push(parse_rfc3339_ns(time).with_context(|| {
                    format!("sigwho query printed a gap without a time: {line}")
                })?);
            }
            _ => {}
        }
    }
    Ok(recorded)
}

/// `2026-11-26T22:52:44.212609866Z` (sigwho's own format: UTC, nanoseconds) to Unix ns.
fn parse_rfc3339_ns(text: &str) -> Option<i128> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, min, sec) = (hms.next()??, hms.next()??, hms.next()??);
    let nanos: i64 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}

fn signal(pid: u32, signo: i32) -> Result<()> {
    let pid = i32::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) with two integers; the pid is our unreaped child's.
    if unsafe { libc::kill(pid, signo) } != 0 {
        bail!("kill({pid}, {signo}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00.000000000Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns("2023-11-14T22:13:20.000000001Z"),
            Some(1_700_000_000_000_000_001)
        );
        assert_eq!(parse_rfc3339_ns("garbage"), None);
    }
}
