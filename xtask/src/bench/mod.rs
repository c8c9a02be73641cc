//! `cargo xtask bench`: what tracing signals costs the processes that send them, for sigwho
//! and for the usual tools, measured in one run on this machine (docs/performance.md).
//!
//! Each configuration is a tracer (or none) running while `sigwho-storm` has N senders (2)
//! call `kill()` flat out at a victim of its own (the storms are listed in workloads.rs);
//! the figure is `kill()` calls per second. Configurations alternate within each round, so
//! that whatever drifts during the run (frequency, other load) hits them all alike, and
//! the table shows medians over rounds.
//!
//! Every process signalled here is one this module started and has not reaped, so its pid
//! cannot have been reused; nothing is signalled by name.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cargo::{Workspace, run_step};
use crate::setup;

use self::load::count_processes;
use self::report::Report;
use self::startup::{Crowd, Idle, STARTUP_PROCESSES, live_latency, startup_times};
use self::storms::storms;
use self::tools::Tools;
use self::workloads::rows;

mod auditd;
mod configs;
mod count;
mod load;
mod machine;
mod recorder;
mod references;
mod report;
mod running;
mod sigwho;
mod startup;
mod storms;
mod sys;
mod tools;
mod workloads;

/// Options of `cargo xtask bench`.
#[derive(Args)]
#[expect(
    clippy::doc_markdown,
    reason = "clap prints these comments as they are in --help, where backticks would show"
)]
pub struct BenchArgs {
    /// Seconds each storm runs.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_seconds)]
    duration: f64,
    /// How many times each configuration is measured (configurations alternate within a
    /// round).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Sender processes per storm, each calling kill() flat out.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=512))]
    senders: u32,
    /// A smoke run: one round of 2 s (instead of --duration and --rounds).
    #[arg(long, conflicts_with_all = ["duration", "rounds"])]
    quick: bool,
    /// Only start-up with 1,000 processes on the machine: the freshly built sigwho and
    /// the one at PATH (say main's release binary) take turns; prints both medians and
    /// their ratio.
    #[arg(long, value_name = "PATH", conflicts_with = "quick")]
    startup_against: Option<PathBuf>,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Ok(secs),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
    }
}

pub fn run(ws: &Workspace, args: &BenchArgs) -> Result<()> {
    let (duration, rounds) = if args.quick {
        (2.0, 1)
    } else {
        (args.duration, args.rounds)
    };
    if !setup::is_root()? {
        bail!("cargo xtask bench must run as root (it loads eBPF programs)");
    }
    setup::run()?;
    run_step(&mut ws.cargo([
        "build",
        "--release",
        "-p",
        "tracer",
        "--bin",
        "sigwho",
        "-p",
        "sigwho-tests",
        "--bin",
        "sigwho-storm",
        "--bin",
        "sigwho-testproc",
    ]))?;
    let target_dir = ws.target_dir()?;
    let release = target_dir.join("release");
    let bins = Bins {
        sigwho: release.join("sigwho"),
        storm: release.join("sigwho-storm"),
        testproc: release.join("sigwho-testproc"),
    };
    if let Some(baseline) = &args.startup_against {
        let idle = Idle::start()?;
        return startup::compare(&bins.sigwho, baseline, idle.pid());
    }
    let tools = Tools::prepare();

    let bench_dir = target_dir.join("bench");
    let scratch = bench_dir.join("run");
    // Left over from an interrupted run: perf.data files can be hundreds of MB.
    if scratch.exists() {
        fs::remove_dir_all(&scratch)
            .with_context(|| format!("could not remove {}", scratch.display()))?;
    }
    fs::create_dir_all(&scratch)
        .with_context(|| format!("could not create {}", scratch.display()))?;

    let idle = Idle::start()?;
    let env = Env {
        bins: &bins,
        tools: &tools,
        scratch: scratch.clone(),
        idle: idle.pid(),
        senders: args.senders,
        duration,
    };
    let rows = rows();
    let results = storms(&env, &rows, rounds)?;
    // The target is start-up with 1,000 processes on the machine: sigwho reads every one
    // of them in /proc before it says it is tracing.
    let crowd = Crowd::fill_to(STARTUP_PROCESSES)?;
    let processes = count_processes();
    let startup = startup_times(&env)?;
    drop(crowd);
    let latency = live_latency(&env)?;
    let (sustained_secs, idle_secs) = if args.quick { (5.0, 3.0) } else { (30.0, 10.0) };
    let recorder = recorder::Results {
        sustained: recorder::sustained(&env, sustained_secs).map_err(|e| format!("{e:#}")),
        fork_exec: recorder::fork_exec(&env, rounds).map_err(|e| format!("{e:#}")),
        idle: recorder::idle(&env, idle_secs).map_err(|e| format!("{e:#}")),
    };
    drop(idle);
    // Best effort: only scratch files, already emptied run by run.
    let _ = fs::remove_dir_all(&scratch);

    let reproduce = if args.quick {
        "cargo xtask bench --quick".to_owned()
    } else {
        format!(
            "cargo xtask bench --duration {duration} --rounds {rounds} --senders {}",
            args.senders
        )
    };
    let report = Report {
        env: &env,
        rows: &rows,
        results: &results,
        rounds,
        processes,
        startup: &startup,
        latency: &latency,
        recorder: &recorder,
        reproduce,
    }
    .render();
    print!("{report}");
    let latest = bench_dir.join("latest.md");
    fs::write(&latest, &report).with_context(|| format!("could not write {}", latest.display()))?;
    eprintln!("bench: wrote {}", latest.display());
    Ok(())
}

struct Bins {
    sigwho: PathBuf,
    storm: PathBuf,
    testproc: PathBuf,
}

/// What every measurement needs.
struct Env<'a> {
    bins: &'a Bins,
    tools: &'a Tools,
    scratch: PathBuf,
    /// The idle process the filtered configuration watches; also the receiver of the
    /// readiness probes.
    idle: u32,
    senders: u32,
    duration: f64,
}
