//! The flight recorder's measurements (issue 6): `sigwho record` during a paced storm
//! (loss, CPU, memory), during a fork + exec storm, and on an idle machine. Its row in
//! the flat-out storm table is a configuration like the others (see sigwho.rs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::Env;
use super::configs::{Count, Names, Program, Ready, Sink, Tracer};
use super::load::{CLOCK_TICKS_PER_SEC, cpu_ticks};
use super::report::{float, median, percent, quote_all, si};
use super::running::{Running, run_quiet};
use super::storms::RemoveOnDrop;
use super::workloads::Storm;

/// The recorder's line on stderr once its programs are attached.
pub(super) const READY: &str = "sigwho: recording every signal";
/// The issue's paced storm: total signals per second across the senders.
pub(super) const SUSTAINED_RATE: u64 = 100_000;
/// Iterations of the fork + exec loop.
pub(super) const FORK_EXECS: u32 = 5_000;
/// The issue's targets.
pub(super) const CPU_TARGET: f64 = 0.25;
pub(super) const RSS_TARGET_KIB: u64 = 64 * 1024;
pub(super) const FORK_EXEC_TARGET: f64 = 0.90;
pub(super) const IDLE_TARGET: f64 = 0.005;

pub(super) fn record_args(journal: &str) -> Vec<String> {
    vec!["record".into(), "--journal".into(), journal.to_owned()]
}

pub(super) fn tracer() -> Tracer {
    Tracer {
        program: Program::Sigwho,
        args: |n| record_args(&n.out),
        env: &[],
        stdout: Sink::Null,
        ready: Ready::Stderr(READY),
        count: Count::Journal,
    }
}

/// The journal and its write-ahead log and shared-memory files.
pub(super) fn journal_files(journal: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", journal.display())))
        .collect()
}

/// The recorder's last line: "sigwho: recorded N events (S signals, E exits) into PATH;
/// dropped D ...".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Summary {
    pub signals: u64,
    pub exits: u64,
    pub dropped: u64,
}

pub(super) fn parse_summary(stderr: &[String]) -> Option<Summary> {
    let line = stderr
        .iter()
        .rev()
        .find_map(|line| line.strip_prefix("sigwho: recorded "))?;
    let number_after = |label: &str| -> Option<u64> {
        let (_, rest) = line.split_once(label)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .find(|w| !w.is_empty())?
            .parse()
            .ok()
    };
    Some(Summary {
        signals: number_after("(")?,
        exits: number_after("signals, ")?,
        dropped: number_after("; dropped ")?,
    })
}

/// What the journal holds, read with python3's sqlite3 module (xtask links no
/// database library, and python3 is on every machine the project supports).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct JournalCount {
    /// Signals to the given pid (a coalesced row counts for as many as it stands for).
    pub signals_to: u64,
    /// Stored rows of any kind.
    pub rows: u64,
    /// Events the gaps say were lost.
    pub dropped: u64,
    /// Database file size.
    pub bytes: u64,
}

const COUNT_SCRIPT: &str = r#"
import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
cols = [r[1] for r in db.execute("pragma table_info(events)")]
n = "coalesce(count, 1)" if "count" in cols else "1"
one = lambda q, *a: db.execute(q, a).fetchone()[0] or 0
print(one("select sum(" + n + ") from events where kind = 'signal' and target_pid = ?", int(sys.argv[2])),
      one("select count(*) from events"),
      one("select sum(count) from gaps"))
"#;

pub(super) fn count_journal(journal: &Path, pid: u32) -> Result<JournalCount> {
    let bytes = fs::metadata(journal).map_or(0, |m| m.len());
    let out = run_quiet(
        Command::new("python3")
            .args(["-c", COUNT_SCRIPT])
            .arg(journal)
            .arg(pid.to_string()),
    )?;
    let numbers: Vec<u64> = out
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("unexpected journal counts {out:?}"))?;
    let [signals_to, rows, dropped] = numbers[..] else {
        bail!("unexpected journal counts {out:?}");
    };
    Ok(JournalCount {
        signals_to,
        rows,
        dropped,
        bytes,
    })
}

/// What the recorder said and the journal held after one run.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Recorded {
    pub summary: Option<Summary>,
    pub journal: JournalCount,
}

impl Recorded {
    pub(super) fn describe(&self) -> String {
        let said = self.summary.map_or("no summary line".to_owned(), |s| {
            format!(
                "recorder: {} signals + {} exits recorded, {} dropped",
                si(float(s.signals)),
                si(float(s.exits)),
                si(float(s.dropped))
            )
        });
        format!(
            "{said}; journal: {} rows, {} signals to the victim, {} dropped in gaps, {:.0} MB \
             ({:.3} B per signal to the victim)",
            si(float(self.journal.rows)),
            si(float(self.journal.signals_to)),
            si(float(self.journal.dropped)),
            float(self.journal.bytes) / 1e6,
            float(self.journal.bytes) / float(self.journal.signals_to.max(1))
        )
    }
}

/// Stops the recorder and reads what it recorded about signals to `victim`.
fn finish(running: Running, journal: &Path, victim: u32) -> Result<Recorded> {
    let stderr = running.stop()?;
    Ok(Recorded {
        summary: parse_summary(&stderr),
        journal: count_journal(journal, victim)?,
    })
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Context switches of all of a process's threads: how often it woke up.
fn context_switches(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        total += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Some(total)
}

fn start_recorder(env: &Env, journal: &Path) -> Result<Running> {
    let names = Names {
        victim: String::new(),
        idle: env.idle.to_string(),
        out: journal.display().to_string(),
        control: String::new(),
        audit_dir: String::new(),
    };
    Running::start(env, &tracer(), &names, journal, journal, None)
}

// ---------------------------------------------------------------------------------------
// Paced storm

pub(super) struct Sustained {
    pub duration: f64,
    pub calls: u64,
    pub rate: f64,
    /// The recorder's CPU over the storm, in CPUs.
    pub cpu: Option<f64>,
    /// Resident memory, sampled each second from start to end of the storm.
    pub rss_kib: Vec<u64>,
    pub recorded: Recorded,
}

pub(super) fn sustained(env: &Env, duration: f64) -> Result<Sustained> {
    eprintln!("bench: recorder, {SUSTAINED_RATE} signals/s for {duration} s");
    let journal = env.scratch.join("sustained.journal");
    let _scratch = RemoveOnDrop(journal_files(&journal));
    let per_sender = SUSTAINED_RATE / u64::from(env.senders);
    let storm = Storm::start_with(env, |env, pid_file| {
        Storm::paced_args(env.senders, duration, Some(per_sender), pid_file)
    })?;
    let victim = storm.victim;
    let running = start_recorder(env, &journal)?;
    let pid = running.child.id();
    let (stop, stopped) = mpsc::channel::<()>();
    let sampler = thread::spawn(move || {
        let mut samples = Vec::new();
        loop {
            if let Some(rss) = rss_kib(pid) {
                samples.push(rss);
            }
            match stopped.recv_timeout(Duration::from_secs(1)) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return samples,
            }
        }
    });
    let before = cpu_ticks(pid);
    let result = storm.run();
    let after = cpu_ticks(pid);
    let _ = stop.send(());
    let rss_kib = sampler.join().unwrap_or_default();
    let result = result?;
    let cpu = before
        .zip(after)
        .map(|(b, a)| float(a - b) / CLOCK_TICKS_PER_SEC / result.elapsed.max(1e-3));
    let recorded = finish(running, &journal, victim)?;
    Ok(Sustained {
        duration: result.elapsed,
        calls: result.calls,
        rate: result.rate,
        cpu,
        rss_kib,
        recorded,
    })
}

// ---------------------------------------------------------------------------------------
// Fork + exec storm

/// One round: seconds untraced, then with the recorder, and what it recorded.
pub(super) struct ForkExec {
    pub untraced: f64,
    pub recorded: f64,
    pub summary: Option<Summary>,
}

pub(super) fn fork_exec_script() -> String {
    format!("i=0; while [ $i -lt {FORK_EXECS} ]; do /bin/true; i=$((i+1)); done")
}

fn time_fork_exec() -> Result<f64> {
    let started = Instant::now();
    run_quiet(Command::new("sh").args(["-c", &fork_exec_script()]))?;
    Ok(started.elapsed().as_secs_f64())
}

pub(super) fn fork_exec(env: &Env, rounds: u32) -> Result<Vec<ForkExec>> {
    let journal = env.scratch.join("forkexec.journal");
    let mut results = Vec::new();
    for round in 1..=rounds {
        eprintln!("bench: round {round}/{rounds}: fork + exec storm, untraced and recorded");
        let _scratch = RemoveOnDrop(journal_files(&journal));
        let untraced = time_fork_exec()?;
        let running = start_recorder(env, &journal)?;
        let recorded = time_fork_exec();
        let stderr = running.stop()?;
        results.push(ForkExec {
            untraced,
            recorded: recorded?,
            summary: parse_summary(&stderr),
        });
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------
// Idle

pub(super) struct Idle {
    pub seconds: f64,
    /// CPU in CPUs.
    pub cpu: Option<f64>,
    /// Context switches per second, all threads.
    pub wakeups: Option<f64>,
    pub summary: Option<Summary>,
}

pub(super) fn idle(env: &Env, seconds: f64) -> Result<Idle> {
    eprintln!("bench: recorder on an idle machine for {seconds} s");
    let journal = env.scratch.join("idle.journal");
    let _scratch = RemoveOnDrop(journal_files(&journal));
    let running = start_recorder(env, &journal)?;
    let pid = running.child.id();
    // Start-up work (the /proc snapshot, the first commit) is not idle time.
    thread::sleep(Duration::from_secs(1));
    let (ticks, switches, started) = (cpu_ticks(pid), context_switches(pid), Instant::now());
    // Measuring an idle process is waiting: there is nothing to wait for instead.
    thread::sleep(Duration::from_secs_f64(seconds));
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = ticks
        .zip(cpu_ticks(pid))
        .map(|(b, a)| float(a - b) / CLOCK_TICKS_PER_SEC / elapsed);
    let wakeups = switches
        .zip(context_switches(pid))
        .map(|(b, a)| float(a - b) / elapsed);
    let stderr = running.stop()?;
    Ok(Idle {
        seconds: elapsed,
        cpu,
        wakeups,
        summary: parse_summary(&stderr),
    })
}

// ---------------------------------------------------------------------------------------
// Report

pub(super) struct Results {
    pub sustained: Result<Sustained, String>,
    pub fork_exec: Result<Vec<ForkExec>, String>,
    pub idle: Result<Idle, String>,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}

pub(super) fn render(w: &mut String, results: &Results, rounds_detail: &BTreeMap<u32, String>) {
    let _ = writeln!(w, "## Flight recorder (`sigwho record`)\n");
    if !rounds_detail.is_empty() {
        let _ = writeln!(
            w,
            "Flat-out storm (its row above), what the recorder said on exit and what its \
             journal held, each round:\n"
        );
        for (round, detail) in rounds_detail {
            let _ = writeln!(w, "- round {round}: {detail}");
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "| measurement | result | target |");
    let _ = writeln!(w, "|---|---|---|");
    match &results.sustained {
        Ok(s) => {
            let min = s.rss_kib.iter().copied().min().unwrap_or(0);
            let max = s.rss_kib.iter().copied().max().unwrap_or(0);
            let dropped = s.recorded.summary.map(|x| x.dropped);
            let _ = writeln!(
                w,
                "| paced storm: {} signals/s asked for {:.0} s | {} calls ({}/s); {}; recorder CPU {}; RSS {:.1}-{:.1} MiB over {} samples | 0 dropped: {}; CPU < {}: {}; RSS < 64 MiB and flat: {} |",
                si(float(SUSTAINED_RATE)),
                s.duration,
                si(float(s.calls)),
                si(s.rate),
                s.recorded.describe(),
                s.cpu.map_or("?".to_owned(), percent),
                float(min) / 1024.0,
                float(max) / 1024.0,
                s.rss_kib.len(),
                verdict(dropped == Some(0)),
                percent(CPU_TARGET),
                verdict(s.cpu.is_some_and(|c| c < CPU_TARGET)),
                verdict(max < RSS_TARGET_KIB && max.saturating_sub(min) < 8 * 1024),
            );
        }
        Err(why) => {
            let _ = writeln!(w, "| paced storm | failed: {why} | |");
        }
    }
    match &results.fork_exec {
        Ok(rounds) if !rounds.is_empty() => {
            let untraced = median(rounds.iter().map(|r| r.untraced));
            let recorded = median(rounds.iter().map(|r| r.recorded));
            let ratio = untraced / recorded;
            let each: Vec<String> = rounds
                .iter()
                .map(|r| format!("{:.2} s / {:.2} s", r.untraced, r.recorded))
                .collect();
            let exits: Vec<String> = rounds
                .iter()
                .map(|r| r.summary.map_or("?".to_owned(), |s| s.exits.to_string()))
                .collect();
            let _ = writeln!(
                w,
                "| fork + exec storm: `sh -c '{}'` | untraced {untraced:.2} s, recorded {recorded:.2} s (medians; each round untraced / recorded: {}): **{ratio:.2}** of untraced speed; exits recorded: {} | ≥ {FORK_EXEC_TARGET:.2}: {} |",
                fork_exec_script(),
                each.join(", "),
                exits.join(", "),
                verdict(ratio >= FORK_EXEC_TARGET),
            );
        }
        Ok(_) => {}
        Err(why) => {
            let _ = writeln!(w, "| fork + exec storm | failed: {why} | |");
        }
    }
    match &results.idle {
        Ok(idle) => {
            let _ = writeln!(
                w,
                "| idle: recorder on for {:.0} s | CPU {:.2}% of one CPU, {} wake-ups/s (context switches, all threads); events recorded meanwhile: {} | < {:.1}%: {} |",
                idle.seconds,
                idle.cpu.unwrap_or(f64::NAN) * 100.0,
                idle.wakeups.map_or("?".to_owned(), |x| format!("{x:.1}")),
                idle.summary
                    .map_or("?".to_owned(), |s| (s.signals + s.exits).to_string()),
                IDLE_TARGET * 100.0,
                verdict(idle.cpu.is_some_and(|c| c < IDLE_TARGET)),
            );
        }
        Err(why) => {
            let _ = writeln!(w, "| idle | failed: {why} | |");
        }
    }
    let _ = writeln!(
        w,
        "\nCommands: `sigwho record --journal $JOURNAL` (a scratch file under target/bench/run, \
         deleted after counting), ready at its `{READY}` line, stopped with SIGINT; counts from \
         its summary line and from the journal (python3 sqlite3). Paced storm: `sigwho-storm \
         {}` (rate per sender). CPU from /proc/PID/stat utime+stime, RSS from /proc/PID/status.\n",
        quote_all(&Storm::paced_args(
            2,
            30.0,
            Some(SUSTAINED_RATE / 2),
            "$PIDFILE"
        ))
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line() {
        let lines = vec![
            "sigwho: recording every signal into /x".to_owned(),
            "sigwho: recorded 1234 events (1200 signals, 34 exits) into /x; dropped 56 (ring buffer 56)"
                .to_owned(),
        ];
        assert_eq!(
            parse_summary(&lines),
            Some(Summary {
                signals: 1200,
                exits: 34,
                dropped: 56
            })
        );
        assert_eq!(parse_summary(&lines[..1]), None);
    }
}
