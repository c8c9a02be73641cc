//! `cargo xtask bench`: what tracing signals costs the processes that send them, for sigwho
//! and for the usual tools, measured in one run on this machine (docs/performance.md).
//!
//! Each configuration is a tracer (or none) running while `sigwho-storm` has N senders (2)
//! call kill() flat out at a victim of its own; the figure is kill() calls per second.
//! Configurations alternate within each round, so that whatever drifts during the run
//! (frequency, other load) hits them all alike, and the table shows medians over rounds.
//!
//! Every process signalled here is one this module started and has not reaped, so its pid
//! cannot have been reused; nothing is signalled by name.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use crate::cargo::{Workspace, run_step, show};
use crate::setup;

mod auditd;
mod recorder;

/// Options of `cargo xtask bench`.
#[derive(Args)]
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
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Ok(secs),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
    }
}

/// Long enough for bpftrace to compile its program and for perf to write a large
/// perf.data on exit; only reached when something is wrong.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// The storm's signal; its victim ignores it.
const STORM_SIGNAL: &str = "USR1";

/// Signal numbers as on x86_64 and arm64 (xtask does without a libc dependency; std
/// links the C library, so `kill` itself is declared in `sys`).
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
const SIGUSR1: i32 = 10;
/// Ignored by default, so the idle `sleep` survives the probes sent to it.
const SIGWINCH: i32 = 28;

const STARTUP_RUNS: usize = 5;
const LATENCY_SIGNALS: u32 = 20;
const LATENCY_SPACING: Duration = Duration::from_millis(200);
/// Other load (in CPUs) under which a storm counts as having had the machine to itself:
/// quiet rounds here show 1-9%, rounds beside someone's build 30% and more.
const CLEAN_OTHER_LOAD: f64 = 0.15;
/// The issue's target for the in-kernel filter case, as a share of the untraced rate.
const FILTER_TARGET: f64 = 0.85;
/// The issue's target for the recorder in the flat-out storm.
const RECORDER_TARGET: f64 = 0.60;

pub fn run(ws: &Workspace, args: BenchArgs) -> Result<()> {
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
    let configs = configs();
    let results = storms(&env, &configs, rounds)?;
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
        configs: &configs,
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

// ---------------------------------------------------------------------------------------
// Configurations

/// One row of the table: a tracer running during the storm, or none.
struct Config {
    name: &'static str,
    role: Role,
    tracer: Option<Tracer>,
    /// The issue's target as a share of the untraced rate, reported (not asserted).
    target: Option<f64>,
}

/// What a row is for in the summary.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// The baseline every ratio is taken against (the first row).
    Untraced,
    /// sigwho's live view filtered on an unrelated process: the row compared with the
    /// hook floor.
    FilteredView,
    /// Any other tracer, sigwho or not.
    Tracer,
    /// A reference, not a tracer: programs that return at once on sigwho's hooks.
    Floor(Floor),
}

/// The hook-floor references: what the hooks sigwho's filtered live view needs cost on
/// this kernel before any program does anything.
#[derive(Clone, Copy, PartialEq)]
enum Floor {
    /// `signal_generate` alone: every generated signal.
    SignalGenerate,
    /// `signal_generate` plus the kill-family syscalls' exits (failed attempts): what the
    /// filtered view attaches on a kernel that refuses fexit.
    WithSyscallExits,
    /// The syscall exits alone.
    SyscallExits,
}

impl Floor {
    fn label(self) -> &'static str {
        match self {
            Floor::SignalGenerate => "(a)",
            Floor::WithSyscallExits => "(b)",
            Floor::SyscallExits => "(c)",
        }
    }
}

/// The kill-family syscalls whose `syscalls:sys_exit_*` tracepoints sigwho attaches when
/// the kernel refuses fexit (tracer/src/load.rs, `attach_syscalls`).
const KILL_FAMILY: [&str; 6] = [
    "kill",
    "tkill",
    "tgkill",
    "pidfd_send_signal",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
];

/// sigwho's switch (tracer/src/load.rs, `DISABLE_HOOKS`) that leaves out the hooks of
/// these syscalls: the filtered view with `signal_generate` alone, to tell what its
/// syscall-exit hooks cost from what `signal_generate` costs.
const DISABLE_SYSCALL_HOOKS: &str =
    "kill,tkill,tgkill,pidfd_send_signal,rt_sigqueueinfo,rt_tgsigqueueinfo";

/// bpftrace prints this on stderr once every probe is attached (its runtime tests wait
/// for it) when the variable is set; "Attaching N probes..." comes before attaching.
const BPFTRACE_ATTACHED: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED";

/// A bpftrace program whose probes have empty action blocks, one program per attach
/// point. Not quite "nothing": bpftrace 0.17 (Debian 12) compiles every tracepoint probe,
/// empty or filtered out, to `return 1`, which tells the kernel to go on and emit the
/// perf sample of the event bpftrace opened - work that a
/// program returning 0, as sigwho's do, spares. And it can hook `signal_generate` only as
/// a classic (perf) tracepoint, which fills a trace record first: it has no
/// `rawtracepoint` probes, and its `kfunc` probes are fentry, which this kernel refuses.
fn floor_program(floor: Floor) -> String {
    let signal = ["tracepoint:signal:signal_generate".to_owned()];
    let exits = KILL_FAMILY.map(|name| format!("tracepoint:syscalls:sys_exit_{name}"));
    let points: Vec<String> = match floor {
        Floor::SignalGenerate => signal.to_vec(),
        Floor::WithSyscallExits => signal.into_iter().chain(exits).collect(),
        Floor::SyscallExits => exits.to_vec(),
    };
    format!("{} {{ }}", points.join(","))
}

fn floor_config(name: &'static str, floor: Floor, args: fn(&Names) -> Vec<String>) -> Config {
    Config {
        name,
        role: Role::Floor(floor),
        tracer: Some(Tracer {
            program: Program::Tool(Tool::Bpftrace),
            args,
            env: &[(BPFTRACE_ATTACHED, "1")],
            stdout: Sink::Null,
            ready: Ready::Stderr(BPFTRACE_ATTACHED),
            count: Count::None,
        }),
        target: None,
    }
}

struct Tracer {
    program: Program,
    args: fn(&Names) -> Vec<String>,
    /// Environment variables set for it.
    env: &'static [(&'static str, &'static str)],
    stdout: Sink,
    ready: Ready,
    count: Count,
}

#[derive(Clone, Copy)]
enum Program {
    Sigwho,
    Tool(Tool),
}

/// Where a tracer's stdout goes.
#[derive(Clone, Copy, PartialEq)]
enum Sink {
    Null,
    /// `$OUT`, a scratch file deleted once counted.
    File,
}

/// How the bench knows a tracer is attached, so that the storm starts only then.
#[derive(Clone, Copy)]
enum Ready {
    /// A line on stderr starting with this, printed once attached.
    Stderr(&'static str),
    /// `perf record -D -1 --control fifo:$CONTROL` opens its events disabled and prints
    /// "Events disabled"; the bench then writes `enable` to the fifo, and perf prints
    /// "Events enabled" once the enabling ioctls are done.
    PerfControl,
    /// The tool prints one line per signal but nothing once attached (bpftrace's
    /// "Attaching 1 probe..." comes before it attaches; sigsnoop's header after, but in
    /// the same stream as the events). The bench sends the idle process SIGWINCH
    /// (harmless: ignored by default) until a line for it shows up in `$OUT`.
    ProbeSignal,
    /// auditd: once it has registered with the kernel the bench adds the rule, then
    /// probes as for [`Ready::ProbeSignal`] until the rule's record of the probe is in
    /// its log (`$OUT`). See bench/auditd.rs.
    AuditRule,
}

/// How the events a tracer saw are counted afterwards.
#[derive(Clone, Copy)]
enum Count {
    None,
    /// sigwho --json in `$OUT`: `signal` objects, plus the counts of `lost` objects.
    SigwhoJson,
    /// One line per signal in `$OUT`: lines naming both the victim and the storm's signal;
    /// `Lost N ...` lines (bpftrace, libbpf-tools) on stdout or stderr are losses.
    Lines,
    /// `perf report --stats -i $OUT`: the signal_generate samples and lost samples.
    PerfStats,
    /// `sigwho record --journal $OUT`: signal rows to the victim in the journal, and the
    /// events its gaps say were dropped.
    Journal,
    /// auditd's log in `$OUT`: the rule's SYSCALL records of calls aimed at the victim;
    /// losses from the kernel's `lost` counter (`auditctl -s`).
    AuditLog,
}

/// The words command lines are built from: real values when run, placeholders when shown.
struct Names {
    victim: String,
    idle: String,
    out: String,
    control: String,
    /// auditd's configuration directory.
    audit_dir: String,
}

const BPFTRACE_PROGRAM: &str =
    r#"tracepoint:signal:signal_generate { printf("%d %d %d\n", pid, args->pid, args->sig); }"#;

/// The table of configurations, in the order they run within a round.
fn configs() -> Vec<Config> {
    vec![
        Config {
            name: "untraced",
            role: Role::Untraced,
            tracer: None,
            target: None,
        },
        Config {
            name: "sigwho watching an idle process (in-kernel filter)",
            role: Role::FilteredView,
            tracer: Some(Tracer {
                program: Program::Sigwho,
                args: |n| vec!["--target-pid".into(), n.idle.clone()],
                env: &[],
                stdout: Sink::Null,
                ready: Ready::Stderr("sigwho: tracing"),
                count: Count::None,
            }),
            target: Some(FILTER_TARGET),
        },
        Config {
            name: "sigwho watching an idle process, failed-attempt hooks off (SIGWHO_DISABLE_HOOKS=<the 6 syscalls>; not for use: splits the cost)",
            role: Role::Tracer,
            tracer: Some(Tracer {
                program: Program::Sigwho,
                args: |n| vec!["--target-pid".into(), n.idle.clone()],
                env: &[("SIGWHO_DISABLE_HOOKS", DISABLE_SYSCALL_HOOKS)],
                stdout: Sink::Null,
                ready: Ready::Stderr("sigwho: tracing"),
                count: Count::None,
            }),
            target: None,
        },
        // Right after the filtered view, so that the rows compared run close together.
        floor_config(
            "reference, not sigwho: (a) bpftrace, empty probe on signal_generate (classic tracepoint, `return 1`; sigwho's is tp_btf, `return 0`)",
            Floor::SignalGenerate,
            |_| vec!["-e".into(), floor_program(Floor::SignalGenerate)],
        ),
        floor_config(
            "reference, not sigwho: (b) bpftrace, (a) + empty probes on the 6 kill-family syscalls:sys_exit_* (sigwho's hooks, but `return 1`)",
            Floor::WithSyscallExits,
            |_| vec!["-e".into(), floor_program(Floor::WithSyscallExits)],
        ),
        floor_config(
            "reference, not sigwho: (c) bpftrace, empty probes on the 6 kill-family syscalls:sys_exit_* only (`return 1`)",
            Floor::SyscallExits,
            |_| vec!["-e".into(), floor_program(Floor::SyscallExits)],
        ),
        Config {
            name: "sigwho --json watching the victim (every signal reported)",
            role: Role::Tracer,
            tracer: Some(Tracer {
                program: Program::Sigwho,
                args: |n| vec!["--target-pid".into(), n.victim.clone(), "--json".into()],
                env: &[],
                stdout: Sink::File,
                ready: Ready::Stderr("sigwho: tracing"),
                count: Count::SigwhoJson,
            }),
            target: None,
        },
        Config {
            name: "sigwho record (every signal on the machine, into the journal)",
            role: Role::Tracer,
            tracer: Some(Tracer {
                program: Program::Sigwho,
                args: |n| recorder::record_args(&n.out),
                env: &[],
                stdout: Sink::Null,
                ready: Ready::Stderr(recorder::READY),
                count: Count::Journal,
            }),
            target: Some(RECORDER_TARGET),
        },
        Config {
            name: "perf record -a signal:signal_generate",
            role: Role::Tracer,
            tracer: Some(Tracer {
                program: Program::Tool(Tool::Perf),
                args: |n| {
                    ["record", "-e", "signal:signal_generate", "-a", "-o", &n.out]
                        .into_iter()
                        .chain(["-D", "-1", "--control", &format!("fifo:{}", n.control)])
                        .map(String::from)
                        .collect()
                },
                env: &[],
                stdout: Sink::Null,
                ready: Ready::PerfControl,
                count: Count::PerfStats,
            }),
            target: None,
        },
        Config {
            name: "bpftrace, one line per signal",
            role: Role::Tracer,
            tracer: Some(Tracer {
                program: Program::Tool(Tool::Bpftrace),
                args: |_| vec!["-e".into(), BPFTRACE_PROGRAM.into()],
                env: &[],
                stdout: Sink::File,
                ready: Ready::ProbeSignal,
                count: Count::Lines,
            }),
            target: None,
        },
        Config {
            name: "auditd, a kill/tkill/tgkill rule",
            role: Role::Tracer,
            tracer: Some(Tracer {
                program: Program::Tool(Tool::Auditd),
                args: |n| vec!["-n".into(), "-c".into(), n.audit_dir.clone()],
                env: &[],
                stdout: Sink::Null,
                ready: Ready::AuditRule,
                count: Count::AuditLog,
            }),
            target: None,
        },
        Config {
            name: "sigsnoop (libbpf-tools)",
            role: Role::Tracer,
            tracer: Some(Tracer {
                program: Program::Tool(Tool::Sigsnoop),
                args: |_| Vec::new(),
                env: &[],
                stdout: Sink::File,
                ready: Ready::ProbeSignal,
                count: Count::Lines,
            }),
            target: None,
        },
    ]
}

// ---------------------------------------------------------------------------------------
// Comparison tools

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Tool {
    Perf,
    Bpftrace,
    Sigsnoop,
    Auditd,
}

impl Tool {
    const ALL: [Tool; 4] = [Tool::Perf, Tool::Bpftrace, Tool::Sigsnoop, Tool::Auditd];

    fn program(self) -> &'static str {
        match self {
            Tool::Perf => "perf",
            Tool::Bpftrace => "bpftrace",
            Tool::Sigsnoop => "sigsnoop",
            Tool::Auditd => "auditd",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Tool::Perf => "linux-perf",
            Tool::Bpftrace => "bpftrace",
            Tool::Sigsnoop => "libbpf-tools",
            Tool::Auditd => "auditd",
        }
    }

    /// The signal that stops it cleanly (auditd ignores SIGINT).
    fn stop_signal(self) -> i32 {
        match self {
            Tool::Auditd => SIGTERM,
            _ => SIGINT,
        }
    }
}

/// Each tool's path and version, or why it is skipped.
struct Tools {
    found: HashMap<Tool, Result<(PathBuf, String), String>>,
}

impl Tools {
    /// Installs what is missing with apt. A tool that cannot be had is skipped with the
    /// reason, not fatal: the sigwho rows are the point of the bench.
    fn prepare() -> Self {
        let mut updated = false;
        let found = Tool::ALL
            .into_iter()
            .map(|tool| (tool, prepare_tool(tool, &mut updated)))
            .collect();
        Self { found }
    }

    fn get(&self, tool: Tool) -> Result<&(PathBuf, String), &str> {
        match self.found.get(&tool) {
            Some(Ok(found)) => Ok(found),
            Some(Err(reason)) => Err(reason),
            None => Err("not looked for"),
        }
    }
}

fn prepare_tool(tool: Tool, apt_updated: &mut bool) -> Result<(PathBuf, String), String> {
    let name = tool.program();
    if let Some(found) = working_tool(tool) {
        eprintln!("bench: {name}: present ({})", found.1);
        return Ok(found);
    }
    let package = tool.package();
    let candidate = apt_candidate(package)?;
    eprintln!("bench: {name}: installing Debian package {package} {candidate}");
    let install = || {
        run_step(apt_get().args(["install", "-y", "--no-install-recommends", package]))
            .map_err(|e| format!("could not install {package}: {e:#}"))
    };
    if let Err(err) = install() {
        // Stale package lists make installs fail on mirrors that dropped old versions:
        // update once (for all tools) and try again.
        if *apt_updated {
            return Err(err);
        }
        *apt_updated = true;
        run_step(apt_get().arg("update")).map_err(|e| format!("apt-get update failed: {e:#}"))?;
        install()?;
    }
    let found = working_tool(tool).ok_or_else(|| {
        format!("{package} is installed but `{name} --version` does not work here")
    })?;
    eprintln!("bench: {name}: installed ({})", found.1);
    Ok(found)
}

/// apt-get with its chatter on stderr: stdout carries the report.
fn apt_get() -> Command {
    let mut cmd = setup::apt_get();
    cmd.stdout(std::io::stderr());
    cmd
}

/// The package's install candidate, per `apt-cache policy`; an error saying why when
/// there is none (e.g. not in this release's archive).
fn apt_candidate(package: &str) -> Result<String, String> {
    let out = Command::new("apt-cache")
        .args(["policy", package])
        .output()
        .map_err(|e| format!("could not run apt-cache: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(str::trim)
    {
        Some(version) if version != "(none)" => Ok(version.to_owned()),
        _ => Err(format!(
            "Debian package {package} is not available from this machine's apt sources \
             (`apt-cache policy {package}` shows no candidate)"
        )),
    }
}

/// The tool's path and its `--version` line, if it runs.
fn working_tool(tool: Tool) -> Option<(PathBuf, String)> {
    let path = find_program(tool.program())?;
    if tool == Tool::Auditd {
        return Some((path, auditd::version()?));
    }
    let out = Command::new(&path).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.lines().next().unwrap_or_default().trim().to_owned();
    Some((path, version))
}

/// Searches PATH, and the sbin directories that a non-login root shell may lack
/// (libbpf-tools installs sigsnoop in /usr/sbin).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

// ---------------------------------------------------------------------------------------
// The storms

/// One measurement of one configuration.
struct Sample {
    round: u32,
    rate: f64,
    calls: u64,
    /// Signals the tracer reported, when it can be counted.
    seen: Option<u64>,
    /// Records the tracer itself says it lost.
    lost: Option<u64>,
    /// CPU the tracer's process used during the storm, in CPUs (1.0: one CPU busy). Its
    /// eBPF programs run in the senders' context and count as theirs, not here.
    tracer_cpu: Option<f64>,
    /// CPU used during the storm by neither the storm nor the tracer, in CPUs: other
    /// work on the machine, which competes with the senders and makes a round suspect.
    others_cpu: Option<f64>,
    /// Tracers the bench did not start, seen running around the storm (`comm[pid]`):
    /// their hooks slow every kill() on the machine, so the round is not clean.
    foreign: Vec<String>,
    /// The recorder's own account and its journal's, for the recorder's rows.
    recorded: Option<recorder::Recorded>,
}

impl Sample {
    /// Whether the storm had the machine to itself, as far as the bench can tell.
    fn clean(&self) -> bool {
        self.foreign.is_empty() && self.others_cpu.is_some_and(|load| load < CLEAN_OTHER_LOAD)
    }
}

/// Every configuration's samples, or why it was skipped.
type Results = Vec<Result<Vec<Sample>, String>>;

fn storms(env: &Env, configs: &[Config], rounds: u32) -> Result<Results> {
    let mut results: Results = configs
        .iter()
        .map(|config| match config.tracer.as_ref().map(|t| t.program) {
            Some(Program::Tool(tool)) => env
                .tools
                .get(tool)
                .map(|_| Vec::new())
                .map_err(str::to_owned),
            _ => Ok(Vec::new()),
        })
        .collect();
    for round in 1..=rounds {
        for (config, result) in configs.iter().zip(&mut results) {
            let Ok(samples) = result else { continue };
            eprintln!("bench: round {round}/{rounds}: {}", config.name);
            match measure(env, config, round) {
                Ok(sample) => {
                    eprintln!("bench:   {}", describe(&sample));
                    samples.push(sample);
                }
                // Without the baseline no ratio means anything.
                Err(err) if config.tracer.is_none() => return Err(err),
                Err(err) => {
                    eprintln!("bench:   failed, skipping it from now on: {err:#}");
                    *result = Err(format!("failed in round {round}: {err:#}"));
                }
            }
        }
    }
    Ok(results)
}

fn describe(sample: &Sample) -> String {
    let mut text = format!("{} kill() calls/s", si(sample.rate));
    if let Some(seen) = sample.seen {
        let _ = write!(
            text,
            ", {} of {} signals seen",
            si(seen as f64),
            si(sample.calls as f64)
        );
    }
    if let Some(lost) = sample.lost {
        let _ = write!(text, ", {} lost", si(lost as f64));
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

/// A share of one CPU: 0.45 -> "45%".
fn percent(cpus: f64) -> String {
    format!("{:.0}%", cpus * 100.0)
}

fn measure(env: &Env, config: &Config, round: u32) -> Result<Sample> {
    let out = env.scratch.join(format!("round{round}.out"));
    let control = env.scratch.join("perf.control");
    // perf.data and bpftrace output run to hundreds of MB per storm; gone on every path.
    let mut scratch = recorder::journal_files(&out);
    scratch.push(control.clone());
    let _scratch = RemoveOnDrop(scratch);
    let storm = Storm::start(env)?;
    let victim = storm.victim;
    let names = Names {
        victim: victim.to_string(),
        idle: env.idle.to_string(),
        out: out.display().to_string(),
        control: control.display().to_string(),
        audit_dir: env.scratch.join("auditd").display().to_string(),
    };
    let tracer = match &config.tracer {
        Some(tracer) => Some(Running::start(env, tracer, &names, &out, &control)?),
        None => None,
    };
    let ours = tracer.as_ref().map(|t| t.child.id());
    let mut foreign = foreign_tracers(ours);
    let tracer_before = tracer.as_ref().and_then(|t| cpu_ticks(t.child.id()));
    let storm = storm.run()?;
    foreign.extend(foreign_tracers(ours));
    foreign.sort();
    foreign.dedup();
    let tracer_ticks = match (&tracer, tracer_before) {
        (Some(t), Some(before)) => cpu_ticks(t.child.id()).map(|after| after - before),
        _ => None,
    };
    let cpus = |ticks: u64| ticks as f64 / CLOCK_TICKS_PER_SEC / storm.elapsed.max(1e-3);
    let others = storm.machine_ticks.map(|busy| {
        busy.saturating_sub(storm.storm_ticks.unwrap_or(0) + tracer_ticks.unwrap_or(0))
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
fn settle(out: &Path) {
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

struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            // Absent when the configuration does not write it.
            let _ = fs::remove_file(path);
        }
    }
}

struct StormResult {
    calls: u64,
    rate: f64,
    /// Seconds, as the storm measured them.
    elapsed: f64,
    /// CPU ticks of the storm's processes (its senders and victim, reaped by then).
    storm_ticks: Option<u64>,
    /// Busy CPU ticks of the whole machine over the storm.
    machine_ticks: Option<u64>,
}

/// `sigwho-storm` set up and waiting for its start line (see tests/storm.rs).
struct Storm {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    victim: u32,
}

impl Storm {
    fn storm_args(env: &Env, pid_file: &str) -> Vec<String> {
        Self::paced_args(env.senders, env.duration, None, pid_file)
    }

    /// `rate`: calls per second per sender, or flat out.
    fn paced_args(senders: u32, duration: f64, rate: Option<u64>, pid_file: &str) -> Vec<String> {
        let duration = duration.to_string();
        let senders = senders.to_string();
        let mut args: Vec<String> = ["--senders", &senders, "--duration", &duration]
            .into_iter()
            .chain(["--signal", STORM_SIGNAL, "--victim-pid-file", pid_file])
            .map(String::from)
            .collect();
        if let Some(rate) = rate {
            args.extend(["--rate".to_owned(), rate.to_string()]);
        }
        args
    }

    fn start(env: &Env) -> Result<Self> {
        Self::start_with(env, Self::storm_args)
    }

    /// Starts the storm with the arguments `args` makes from the victim's pid file.
    fn start_with(env: &Env, args: impl FnOnce(&Env, &str) -> Vec<String>) -> Result<Self> {
        let pid_file = env.scratch.join("victim.pid");
        let _ = fs::remove_file(&pid_file);
        let mut cmd = Command::new(&env.bins.storm);
        cmd.args(args(env, &pid_file.display().to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", show(&cmd)))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("storm stdout")?);
        let mut storm = Self {
            child,
            stdin,
            stdout,
            victim: 0,
        };
        let ready = storm.line()?;
        if !ready.starts_with("ready victim=") {
            bail!("sigwho-storm said {ready:?} instead of `ready victim=PID`");
        }
        // The pid file is the storm's interface for shells; its `ready` line says it is
        // written.
        let text = fs::read_to_string(&pid_file)
            .with_context(|| format!("could not read {}", pid_file.display()))?;
        storm.victim = text
            .trim()
            .parse()
            .with_context(|| format!("{} holds {text:?}, not a pid", pid_file.display()))?;
        Ok(storm)
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("sigwho-storm exited early ({})", self.child.wait()?);
        }
        Ok(line.trim_end().to_owned())
    }

    fn run(mut self) -> Result<StormResult> {
        let mut stdin = self.stdin.take().context("storm already started")?;
        let busy_before = machine_busy_ticks();
        stdin.write_all(b"start\n")?;
        drop(stdin);
        let line = self.line()?;
        let busy_after = machine_busy_ticks();
        // The storm prints its line after reaping its children, whose times are then in
        // its cutime/cstime; not reaped by us yet, so its /proc entry is still there.
        let storm_ticks = cpu_ticks(self.child.id());
        let status = self.child.wait()?;
        if !status.success() {
            bail!("sigwho-storm failed ({status}) after printing {line:?}");
        }
        let fields: HashMap<&str, &str> = line
            .strip_prefix("storm ")
            .with_context(|| format!("unexpected sigwho-storm output {line:?}"))?
            .split_whitespace()
            .filter_map(|word| word.split_once('='))
            .collect();
        let field = |name: &str| {
            fields
                .get(name)
                .with_context(|| format!("no {name}= in {line:?}"))
        };
        Ok(StormResult {
            calls: field("calls")?.parse()?,
            rate: field("rate")?.parse()?,
            elapsed: field("duration")?.parse()?,
            storm_ticks,
            machine_ticks: busy_before
                .zip(busy_after)
                .map(|(b, a)| a.saturating_sub(b)),
        })
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        // Not started yet (a tracer failed): stdin closing unread makes the storm clean up
        // its children and exit. Started: it ends at its deadline.
        self.stdin.take();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Tracers

/// A tracer started by the bench and not yet reaped.
struct Running {
    child: Child,
    stderr: LineReader,
    /// perf's control fifo, kept open while perf runs.
    _control: Option<File>,
    stopped: bool,
    stop_signal: i32,
    /// auditd's rule and the kernel state to restore.
    audit: Option<auditd::Session>,
}

impl Running {
    fn start(
        env: &Env,
        tracer: &Tracer,
        names: &Names,
        out: &Path,
        control: &Path,
    ) -> Result<Self> {
        let program = match tracer.program {
            Program::Sigwho => env.bins.sigwho.clone(),
            Program::Tool(tool) => env
                .tools
                .get(tool)
                .map_err(|reason| anyhow!("{}: {reason}", tool.program()))?
                .0
                .clone(),
        };
        let mut control_fifo = None;
        if let Ready::PerfControl = tracer.ready {
            control_fifo = Some(make_fifo(control)?);
        }
        let mut audit = None;
        if let Ready::AuditRule = tracer.ready {
            audit = Some(auditd::Session::before_start()?);
            auditd::write_config(Path::new(&names.audit_dir), out)?;
        }
        let stdout = match tracer.stdout {
            Sink::Null => Stdio::null(),
            Sink::File => File::create(out)
                .with_context(|| format!("could not create {}", out.display()))?
                .into(),
        };
        let mut cmd = Command::new(&program);
        cmd.args((tracer.args)(names))
            .envs(tracer.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", show(&cmd)))?;
        let stderr = LineReader::start(child.stderr.take().context("tracer stderr")?);
        let mut running = Self {
            child,
            stderr,
            _control: None,
            stopped: false,
            stop_signal: match tracer.program {
                Program::Tool(tool) => tool.stop_signal(),
                Program::Sigwho => SIGINT,
            },
            audit,
        };
        let what = show(&cmd);
        match tracer.ready {
            Ready::Stderr(prefix) => running.wait_for_stderr(prefix, &what)?,
            Ready::PerfControl => {
                let mut fifo = control_fifo.context("perf control fifo")?;
                running.wait_for_stderr("Events disabled", &what)?;
                fifo.write_all(b"enable\n")?;
                running.wait_for_stderr("Events enabled", &what)?;
                running._control = Some(fifo);
            }
            Ready::ProbeSignal => running.wait_for_probe(env, out, &what)?,
            Ready::AuditRule => {
                let pid = running.child.id();
                if let Some(audit) = &mut running.audit
                    && let Err(err) = audit.attach(pid, READY_TIMEOUT)
                {
                    return Err(running.not_ready(&what, &format!("{err:#}")));
                }
                running.wait_for_probe(env, out, &what)?;
            }
        }
        Ok(running)
    }

    fn wait_for_stderr(&mut self, prefix: &str, what: &str) -> Result<()> {
        self.stderr
            .wait_for(prefix, READY_TIMEOUT)
            .map(|_| ())
            .map_err(|why| self.not_ready(what, &why))
    }

    fn wait_for_probe(&mut self, env: &Env, out: &Path, what: &str) -> Result<()> {
        let idle = env.idle.to_string();
        let signo = SIGWINCH.to_string();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.child.try_wait()?.is_some() {
                return Err(self.not_ready(what, "it exited"));
            }
            if Instant::now() > deadline {
                return Err(self.not_ready(what, "no line for the probe signal"));
            }
            sys::signal_pid(env.idle, SIGWINCH)?;
            // Polled: the line lands in a file, and std has no inotify. Each round sends
            // one more probe, so a probe sent before the attach completed does not matter.
            thread::sleep(Duration::from_millis(20));
            let text = fs::read_to_string(out).unwrap_or_default();
            let probed = |line: &str| match self.audit {
                Some(_) => auditd::names_target(line, env.idle),
                None => names_both(line, &idle, &signo),
            };
            if text.lines().any(probed) {
                return Ok(());
            }
        }
    }

    fn not_ready(&mut self, what: &str, why: &str) -> anyhow::Error {
        let status = self.finish().ok();
        // Complete: the tracer has exited and its stderr reached EOF.
        let stderr = self.stderr.finish().join("\n");
        anyhow!(
            "{what} did not get ready ({why}; {}):\n{stderr}",
            status.map_or("still running".to_owned(), |s| s.to_string())
        )
    }

    /// Interrupts it (as ^C would) and waits; what it printed on stderr. For auditd, the
    /// rule goes first, and a `Lost N events` line carries the kernel's losses.
    fn stop(mut self) -> Result<Vec<String>> {
        let audit_lost = match &mut self.audit {
            Some(audit) => Some(audit.detach()?),
            None => None,
        };
        let status = self.finish()?;
        let mut lines = self.stderr.finish();
        // Tools either exit 0 on SIGINT or re-raise it.
        if !status.success() && status.signal() != Some(self.stop_signal) {
            bail!("tracer failed ({status}):\n{}", lines.join("\n"));
        }
        if let Some(lost) = audit_lost {
            lines.push(format!("Lost {lost} events (the kernel's audit backlog)"));
        }
        // The kernel's audit state as it was (after the daemon is gone).
        self.audit = None;
        Ok(lines)
    }

    fn finish(&mut self) -> Result<ExitStatus> {
        self.stopped = true;
        stop_child(&mut self.child, STOP_TIMEOUT, self.stop_signal)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = stop_child(&mut self.child, STOP_TIMEOUT, self.stop_signal);
        }
    }
}

/// `signal` (SIGINT: as ^C would), then SIGKILL if it is still there after `timeout`;
/// reaps it either way.
fn stop_child(child: &mut Child, timeout: Duration, signal: i32) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    // Not reaped (try_wait just said so), so the pid is still this child's.
    sys::signal_pid(child.id(), signal)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            bail!(
                "pid {} ignored SIGINT for {timeout:?}; killed it",
                child.id()
            );
        }
        // std offers no wait with a timeout; a tracer flushing its output takes seconds.
        thread::sleep(Duration::from_millis(10));
    }
}

/// Creates a fifo and opens it read-write: on Linux that does not wait for a reader,
/// and perf (which opens it read-write too) finds what we write whenever it looks.
fn make_fifo(path: &Path) -> Result<File> {
    let _ = fs::remove_file(path);
    run_quiet(Command::new("mkfifo").arg("-m").arg("600").arg(path))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("could not open {}", path.display()))
}

fn run_quiet(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("could not start {}", show(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Reads a child's output line by line on a thread, so that the child never blocks on a
/// full pipe, and timestamps each line as it arrives.
struct LineReader {
    rx: Receiver<(Instant, String)>,
    lines: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl LineReader {
    fn start(stream: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&lines);
        let thread = thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let at = Instant::now();
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                if let Ok(mut kept) = kept.lock() {
                    kept.push(line.clone());
                }
                // The receiver may be gone (nobody waits any more); keep draining.
                let _ = tx.send((at, line));
            }
        });
        Self {
            rx,
            lines,
            thread: Some(thread),
        }
    }

    /// When a line starting with `prefix` arrived; Err says why none did.
    fn wait_for(&self, prefix: &str, timeout: Duration) -> Result<Instant, String> {
        self.wait_for_line(|line| line.starts_with(prefix), timeout)
            .map(|(at, _)| at)
    }

    fn wait_for_line(
        &self,
        want: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<(Instant, String), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((at, line)) if want(&line) => return Ok((at, line)),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return Err(format!("nothing after {timeout:?}")),
                Err(RecvTimeoutError::Disconnected) => return Err("it closed its output".into()),
            }
        }
    }

    fn text(&self) -> String {
        self.lines.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Every line, once the stream has ended (the child exited).
    fn finish(&mut self) -> Vec<String> {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Programs that hook signals (or may), by the name the kernel shows for them.
const TRACER_COMMS: &[&str] = &["sigwho", "bpftrace", "perf", "sigsnoop", "bpftool"];

/// Tracers running on the machine other than ours (`comm[pid]`), read from /proc; on a
/// shared machine someone's test run may load sigwho's programs during a storm.
fn foreign_tracers(ours: Option<u32>) -> Vec<String> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| Some(pid) != ours)
        .filter_map(|pid| {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let comm = comm.trim();
            TRACER_COMMS
                .contains(&comm)
                .then(|| format!("{comm}[{pid}]"))
        })
        .collect()
}

/// `sigwho[12] sigwho[13] perf[14]` -> `sigwho ×2, perf`.
fn tally_comms(tracers: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for tracer in tracers {
        let comm = tracer.split('[').next().unwrap_or(tracer);
        match counts.iter_mut().find(|(c, _)| *c == comm) {
            Some((_, n)) => *n += 1,
            None => counts.push((comm, 1)),
        }
    }
    counts
        .iter()
        .map(|&(comm, n)| match n {
            1 => comm.to_owned(),
            n => format!("{comm} ×{n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// USER_HZ, the unit of /proc's CPU times: 100 on every architecture Linux builds for
/// with a stable ABI (sysconf(_SC_CLK_TCK) would say so, but xtask has no libc).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// utime + stime + cutime + cstime of a process (itself and its reaped children).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may itself contain spaces and parentheses:
    // state is field 3, utime 14 .. cstime 17.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum()
}

/// Ticks the machine's CPUs spent on anything but idle and I/O wait since boot.
fn machine_busy_ticks() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = cpu
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is
    // already in user, and steal is time the hypervisor gave to other machines.
    Some(ticks.iter().take(7).sum::<u64>() - ticks.get(3)? - ticks.get(4)?)
}

// ---------------------------------------------------------------------------------------
// Counting what the tracers saw

/// Signals seen and lost, where the tool's output tells.
fn count_events(
    count: Count,
    out: &Path,
    stderr: &[String],
    victim: u32,
) -> Result<(Option<u64>, Option<u64>)> {
    match count {
        // Counted from the journal by the caller.
        Count::None | Count::Journal => Ok((None, None)),
        Count::AuditLog => {
            let mut seen = 0;
            for_each_line(out, |line| {
                if auditd::names_target(&String::from_utf8_lossy(line), victim) {
                    seen += 1;
                }
            })?;
            let lost = stderr.iter().map(|line| lost_in(line)).sum::<u64>();
            Ok((Some(seen), Some(lost)))
        }
        Count::SigwhoJson => {
            let (mut seen, mut lost) = (0, 0);
            for_each_line(out, |line| match json_event(line).as_deref() {
                Some("signal") => seen += 1,
                Some("lost") => {
                    lost += serde_json::from_slice::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v["count"].as_u64())
                        .unwrap_or(0);
                }
                _ => {}
            })?;
            Ok((Some(seen), Some(lost)))
        }
        Count::Lines => {
            let victim = victim.to_string();
            let signo = SIGUSR1.to_string();
            let (mut seen, mut lost) = (0, 0);
            for_each_line(out, |line| {
                let line = String::from_utf8_lossy(line);
                if names_both(&line, &victim, &signo) {
                    seen += 1;
                }
                lost += lost_in(&line);
            })?;
            lost += stderr.iter().map(|line| lost_in(line)).sum::<u64>();
            Ok((Some(seen), Some(lost)))
        }
        Count::PerfStats => {
            let stats = run_quiet(
                Command::new(find_program("perf").context("perf")?)
                    .args(["report", "--stats", "-i"])
                    .arg(out),
            )?;
            // Per-event section: "signal:signal_generate stats:" then its SAMPLE and
            // LOST_SAMPLES lines (the aggregated section above counts every record kind).
            let section = stats
                .split_once("signal:signal_generate stats:")
                .map(|(_, rest)| rest)
                .context("no signal:signal_generate section in perf report --stats")?;
            let number = |label: &str| -> Option<u64> {
                section
                    .lines()
                    .take_while(|line| !line.trim_end().ends_with("stats:"))
                    .find_map(|line| line.trim().strip_prefix(label))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
            };
            Ok((
                number("SAMPLE events:"),
                Some(number("LOST_SAMPLES events:").unwrap_or(0)),
            ))
        }
    }
}

fn for_each_line(path: &Path, mut f: impl FnMut(&[u8])) -> Result<()> {
    let file = File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    while reader.read_until(b'\n', &mut buf)? > 0 {
        f(&buf);
        buf.clear();
    }
    Ok(())
}

/// The `event` of a sigwho JSON line. sigwho writes it first, so a look at the start of
/// the line spares parsing millions of objects; anything else is parsed in full.
fn json_event(line: &[u8]) -> Option<String> {
    const PREFIX: &[u8] = br#"{"event":""#;
    if let Some(rest) = line.strip_prefix(PREFIX) {
        let end = rest.iter().position(|&b| b == b'"')?;
        return Some(String::from_utf8_lossy(&rest[..end]).into_owned());
    }
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    value["event"].as_str().map(str::to_owned)
}

/// A line of a one-line-per-signal tool about a signal to `pid`: bpftrace prints
/// `sender target signo`, sigsnoop `time sender comm signo target result`.
fn names_both(line: &str, pid: &str, signo: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.contains(&pid) && words.contains(&signo)
}

/// bpftrace's "Lost N events" and libbpf-tools' "Lost N events on CPU #C!" (some
/// versions write "lost").
fn lost_in(line: &str) -> u64 {
    line.strip_prefix("Lost ")
        .or_else(|| line.strip_prefix("lost "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Start-up time and live-view latency

/// `sleep` started by the bench: the process nobody signals, watched by the in-kernel
/// filter configuration and the start-up measurement.
struct Idle(Child);

impl Idle {
    fn start() -> Result<Self> {
        let child = Command::new("sleep")
            .arg("infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("could not start `sleep infinity`")?;
        Ok(Self(child))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Processes on the machine while start-up is measured (the issue's figure).
const STARTUP_PROCESSES: usize = 1000;

/// Idle processes started to bring the machine to a process count; killed on drop.
struct Crowd {
    _members: Vec<Idle>,
}

impl Crowd {
    fn fill_to(total: usize) -> Result<Self> {
        let missing = total.saturating_sub(count_processes());
        eprintln!("bench: starting {missing} idle processes for the start-up measurement");
        let members = (0..missing)
            .map(|_| Idle::start())
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { _members: members })
    }
}

fn count_processes() -> usize {
    fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0)
}

/// From just before exec to the `sigwho: tracing` line, sigwho watching the idle process.
fn startup_times(env: &Env) -> Result<Vec<Duration>> {
    eprintln!("bench: sigwho start-up time, {STARTUP_RUNS} runs");
    let mut times = Vec::new();
    for _ in 0..STARTUP_RUNS {
        let mut cmd = Command::new(&env.bins.sigwho);
        cmd.args(["--target-pid", &env.idle.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", show(&cmd)))?;
        let stderr = LineReader::start(child.stderr.take().context("sigwho stderr")?);
        let ready = stderr.wait_for("sigwho: tracing", READY_TIMEOUT);
        stop_child(&mut child, STOP_TIMEOUT, SIGINT)?;
        let at =
            ready.map_err(|why| anyhow!("sigwho did not start ({why}):\n{}", stderr.text()))?;
        times.push(at - started);
    }
    Ok(times)
}

/// With sigwho watching a process, the time from just before kill() to its JSON line on
/// sigwho's stdout, for signals spaced out so that each one is reported on its own.
fn live_latency(env: &Env) -> Result<Vec<Duration>> {
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

fn measure_latency(env: &Env, target: &mut Child) -> Result<Vec<Duration>> {
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
            .wait_for("sigwho: tracing", READY_TIMEOUT)
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

// ---------------------------------------------------------------------------------------
// The report

struct Report<'a> {
    env: &'a Env<'a>,
    configs: &'a [Config],
    results: &'a Results,
    rounds: u32,
    processes: usize,
    startup: &'a [Duration],
    latency: &'a [Duration],
    recorder: &'a recorder::Results,
    reproduce: String,
}

impl<'a> Report<'a> {
    fn render(&self) -> String {
        let env = self.env;
        let mut md = String::new();
        let w = &mut md;
        let _ = writeln!(w, "## Signal storm: kill() calls/s while tracing\n");
        let _ = writeln!(w, "Reproduce (as root): `{}`\n", self.reproduce);
        let _ = writeln!(w, "{}\n", machine(self.processes));
        let _ = writeln!(
            w,
            "{} senders call `kill(victim, SIG{STORM_SIGNAL})` flat out for {} s; the victim \
             ignores the signal, so each call runs the kernel's send path (including the \
             `signal:signal_generate` tracepoint) and is dropped there. Configurations \
             alternate within each of {} round(s); figures are medians over rounds.\n",
            env.senders, env.duration, self.rounds
        );
        let skipped = self.storm_table(w, &|_| true);
        self.floor_summary(w, &|_| true);
        let samples = || self.results.iter().flatten().flatten();
        let untraced_clean = self.results[0]
            .as_ref()
            .is_ok_and(|samples| samples.iter().any(Sample::clean));
        if untraced_clean && !samples().all(Sample::clean) {
            let _ = writeln!(
                w,
                "\nThe same over clean rounds only: no other tracer seen running and under {} \
                 other load (each configuration's own clean rounds; a tracer whose output \
                 makes the kernel work that hard has none).\n",
                percent(CLEAN_OTHER_LOAD)
            );
            self.storm_table(w, &Sample::clean);
            self.floor_summary(w, &Sample::clean);
        }
        let _ = writeln!(
            w,
            "\n\"time per call\" is each sender's wall-clock time per kill() (senders / rate). \
             \"tracer CPU\" is the tracer's process (median, 100% = one CPU); its eBPF \
             programs run in the senders' context and show as fewer calls instead. \"signals \
             seen\" and \"lost\" add up the rounds in the table; seen + lost short of the \
             calls means signals the tool missed without saying so. \"other load\" is CPU used \
             during the storm by neither the storm's processes nor the tracer's (kernel work \
             for the tracer, such as writing its output, included), with any other tracer \
             found running: in the untraced and sigwho rows much of it means the round \
             competed with something else on the machine.\n"
        );
        if !skipped.is_empty() {
            let _ = writeln!(w, "Skipped:\n");
            for line in &skipped {
                let _ = writeln!(w, "- {line}");
            }
            let _ = writeln!(w);
        }
        self.commands(w);
        self.startup_and_latency(w);
        let details: std::collections::BTreeMap<u32, String> = self
            .results
            .iter()
            .flatten()
            .flatten()
            .filter_map(|s| Some((s.round, s.recorded.as_ref()?.describe())))
            .collect();
        recorder::render(w, self.recorder, &details);
        md
    }

    /// The storm table over the samples `keep` keeps; the reasons of skipped
    /// configurations.
    fn storm_table(&self, w: &mut String, keep: &dyn Fn(&Sample) -> bool) -> Vec<String> {
        let env = self.env;
        let _ = writeln!(
            w,
            "| configuration | kill() calls/s (median) | vs untraced | time per call | each round | tracer CPU | signals seen | lost (per the tool) | other load, each round |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---|---:|---:|---:|---|");
        let pick = |samples: &'a [Sample]| -> Vec<&'a Sample> {
            samples.iter().filter(|s| keep(s)).collect()
        };
        let baseline = self.results[0]
            .as_ref()
            .ok()
            .map(|samples| median(pick(samples).iter().map(|s| s.rate)));
        let mut skipped = Vec::new();
        for (config, result) in self.configs.iter().zip(self.results) {
            let samples = match result {
                Ok(samples) => pick(samples),
                Err(reason) => {
                    skipped.push(format!("{}: {reason}", config.name));
                    let _ = writeln!(w, "| {} | skipped | | | | | | | |", config.name);
                    continue;
                }
            };
            if samples.is_empty() {
                let _ = writeln!(w, "| {} | no clean round | | | | | | | |", config.name);
                continue;
            }
            let rate = median(samples.iter().map(|s| s.rate));
            let ratio = match baseline {
                Some(base) if base > 0.0 => {
                    let ratio = rate / base;
                    match config.target {
                        Some(target) => format!(
                            "{ratio:.2} (target ≥ {target:.2}: {})",
                            if ratio >= target { "met" } else { "missed" }
                        ),
                        None => format!("{ratio:.2}"),
                    }
                }
                _ => String::new(),
            };
            // Which rounds, when not all of them.
            let partial = samples.len() < self.rounds as usize;
            let each: Vec<String> = samples
                .iter()
                .map(|s| {
                    if partial {
                        format!("{} (round {})", si(s.rate), s.round)
                    } else {
                        si(s.rate)
                    }
                })
                .collect();
            let calls: u64 = samples.iter().map(|s| s.calls).sum();
            let seen = sum(samples.iter().map(|s| s.seen)).map_or("–".to_owned(), |seen| {
                format!(
                    "{:.1}% ({} of {})",
                    100.0 * seen as f64 / calls.max(1) as f64,
                    si(seen as f64),
                    si(calls as f64)
                )
            });
            let lost =
                sum(samples.iter().map(|s| s.lost)).map_or("–".to_owned(), |l| si(l as f64));
            let tracer_cpu = if samples.iter().any(|s| s.tracer_cpu.is_some()) {
                percent(median(samples.iter().filter_map(|s| s.tracer_cpu)))
            } else {
                "–".to_owned()
            };
            let others: Vec<String> = samples
                .iter()
                .map(|s| {
                    let load = s.others_cpu.map_or("?".to_owned(), percent);
                    if s.foreign.is_empty() {
                        load
                    } else {
                        format!("{load} (also running: {})", tally_comms(&s.foreign))
                    }
                })
                .collect();
            let _ = writeln!(
                w,
                "| {} | {} | {ratio} | {:.0} ns | {} | {tracer_cpu} | {seen} | {lost} | {} |",
                config.name,
                si(rate),
                f64::from(env.senders) / rate.max(1.0) * 1e9,
                each.join(", "),
                others.join(", ")
            );
        }
        skipped
    }

    /// Median rate of each configuration over the samples `keep` keeps; None for a
    /// skipped configuration or one with no such sample.
    fn medians(&self, keep: &dyn Fn(&Sample) -> bool) -> Vec<Option<f64>> {
        self.results
            .iter()
            .map(|result| {
                let rates: Vec<f64> = result
                    .as_ref()
                    .ok()?
                    .iter()
                    .filter(|s| keep(s))
                    .map(|s| s.rate)
                    .collect();
                (!rates.is_empty()).then(|| median(rates.into_iter()))
            })
            .collect()
    }

    /// The hook references next to the filtered view, and why they are no floor for it.
    fn floor_summary(&self, w: &mut String, keep: &dyn Fn(&Sample) -> bool) {
        let medians = self.medians(keep);
        let rate_of = |role: Role| {
            self.configs
                .iter()
                .zip(&medians)
                .find(|(config, _)| config.role == role)
                .and_then(|(_, rate)| *rate)
        };
        let Some(base) = rate_of(Role::Untraced).filter(|&b| b > 0.0) else {
            return;
        };
        let floors: Vec<String> = [
            Floor::SignalGenerate,
            Floor::WithSyscallExits,
            Floor::SyscallExits,
        ]
        .into_iter()
        .filter_map(|floor| {
            let rate = rate_of(Role::Floor(floor))?;
            Some(format!("{} {:.2}", floor.label(), rate / base))
        })
        .collect();
        if floors.is_empty() {
            return;
        }
        let _ = write!(
            w,
            "\nHook references (rows marked \"reference, not sigwho\": bpftrace probes with \
             empty bodies on sigwho's hooks, as a share of untraced): {}",
            floors.join(", ")
        );
        if let Some(filtered) = rate_of(Role::FilteredView) {
            let against: Vec<String> = [Floor::WithSyscallExits, Floor::SyscallExits]
                .into_iter()
                .filter_map(|floor| {
                    let floor_rate = rate_of(Role::Floor(floor))?;
                    Some(format!("{:.2} of {}", filtered / floor_rate, floor.label()))
                })
                .collect();
            if !against.is_empty() {
                let _ = write!(
                    w,
                    "; sigwho filtered {:.2} = {}",
                    filtered / base,
                    against.join(", ")
                );
            }
        }
        let _ = writeln!(
            w,
            ". They are no floor for sigwho: bpftrace 0.17 compiles an empty tracepoint probe \
             to `return 1`, so the kernel goes on to build the perf sample of the event bpftrace \
             opened, where sigwho's programs return 0; and it can hook `signal_generate` only \
             as a classic (perf) tracepoint, which fills a trace record before the program \
             runs, where sigwho's BTF tracepoint (tp_btf) calls its program directly. What \
             the hooks themselves cost sigwho shows in its own two rows (with and without \
             the failed-attempt hooks) and in docs/performance.md (\"Session 3: this \
             kernel's floor\").\n"
        );
    }

    fn commands(&self, w: &mut String) {
        let env = self.env;
        let names = Names {
            victim: "$VICTIM".into(),
            idle: "$IDLE".into(),
            out: "$OUT".into(),
            control: "$CONTROL".into(),
            audit_dir: "$AUDITD_DIR".into(),
        };
        let _ = writeln!(w, "Commands:\n");
        let storm: Vec<String> = Storm::storm_args(env, "$PIDFILE");
        let _ = writeln!(
            w,
            "- storm: `sigwho-storm {}`, then a line on its stdin once the tracer is ready",
            quote_all(&storm)
        );
        for config in self.configs {
            let Some(tracer) = &config.tracer else {
                continue;
            };
            let program = match tracer.program {
                Program::Sigwho => "sigwho",
                Program::Tool(tool) => tool.program(),
            };
            let redirect = match tracer.stdout {
                Sink::Null => "> /dev/null",
                Sink::File => "> $OUT",
            };
            let ready = match tracer.ready {
                Ready::Stderr(prefix) => format!("ready at the `{prefix}` line on stderr"),
                Ready::PerfControl => {
                    "ready at \"Events enabled\" on stderr after `enable` on $CONTROL".to_owned()
                }
                Ready::ProbeSignal => {
                    "ready when a SIGWINCH sent to $IDLE shows up in $OUT".to_owned()
                }
                Ready::AuditRule => format!(
                    "with $AUDITD_DIR/auditd.conf logging to $OUT (every disk action IGNORE); \
                     once it has registered, `auditctl -a always,exit -F arch=b64 -S \
                     kill,tkill,tgkill -k {}`, ready when a SIGWINCH sent to $IDLE shows up \
                     in $OUT; the rule is deleted before it stops",
                    auditd::KEY
                ),
            };
            let words: Vec<String> = tracer
                .env
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .chain(std::iter::once(program.to_owned()))
                .chain((tracer.args)(&names))
                .collect();
            let stop = match tracer.program {
                Program::Tool(tool) if tool.stop_signal() == SIGTERM => "SIGTERM",
                _ => "SIGINT",
            };
            let _ = writeln!(
                w,
                "- {}: `{} {redirect}`, {ready}; stopped with {stop}",
                config.name,
                quote_all(&words)
            );
        }
        let _ = writeln!(
            w,
            "\n$VICTIM is the storm's victim, $IDLE a `sleep infinity` the bench started, $OUT \
             a scratch file under target/bench/run (deleted once counted).\n"
        );
        let _ = writeln!(w, "Tools:\n");
        let _ = writeln!(w, "- sigwho: {}", env.bins.sigwho.display());
        for tool in Tool::ALL {
            match env.tools.get(tool) {
                Ok((path, version)) => {
                    let _ = writeln!(w, "- {}: {} ({version})", tool.program(), path.display());
                }
                Err(reason) => {
                    let _ = writeln!(w, "- {}: not available: {reason}", tool.program());
                }
            }
        }
        let _ = writeln!(w);
    }

    fn startup_and_latency(&self, w: &mut String) {
        let _ = writeln!(w, "## sigwho start-up and live-view latency\n");
        let _ = writeln!(w, "| measurement | median | max | runs |");
        let _ = writeln!(w, "|---|---:|---:|---|");
        let row = |w: &mut String, what: &str, times: &[Duration]| {
            let ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
            let max = ms.iter().copied().fold(0.0, f64::max);
            let each: Vec<String> = ms.iter().map(|m| format!("{m:.1}")).collect();
            let _ = writeln!(
                w,
                "| {what} | {:.1} ms | {max:.1} ms | {} |",
                median(ms.iter().copied()),
                each.join(", ")
            );
        };
        row(
            w,
            &format!(
                "start-up: exec to `sigwho: tracing` ({} processes on the machine)",
                self.processes
            ),
            self.startup,
        );
        row(
            w,
            &format!(
                "live view: kill() to the JSON line on stdout ({LATENCY_SIGNALS} SIGUSR1, {} ms apart)",
                LATENCY_SPACING.as_millis()
            ),
            self.latency,
        );
        let _ = writeln!(w);
    }
}

/// Kernel, CPUs, and the commit measured.
fn machine(processes: usize) -> String {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| {
        run_quiet(Command::new("git").arg("-C").arg(&root).args(args))
            .map(|out| out.trim().to_owned())
            .ok()
    };
    let commit = match (
        git(&["rev-parse", "--short", "HEAD"]),
        git(&["status", "--porcelain"]),
    ) {
        (Some(head), Some(status)) if !status.is_empty() => format!("{head} + uncommitted changes"),
        (Some(head), _) => head,
        _ => "unknown".into(),
    };
    let date = run_quiet(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|d| d.trim().to_owned())
        .unwrap_or_default();
    // When on, every eBPF program run is also timed (two clock reads and a per-CPU
    // update), which makes every traced row slower than it would be otherwise.
    let stats = match fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .map(|v| v.trim().to_owned())
        .as_deref()
    {
        Ok("0") => "off".to_owned(),
        Ok(value) => format!("ON ({value}): every eBPF program run is also timed"),
        Err(_) => "unknown".to_owned(),
    };
    format!(
        "Machine: Linux {}, {cpus} CPUs ({model}), {processes} processes; \
         kernel.bpf_stats_enabled {stats}; sigwho at {commit}; {date}.",
        kernel.trim()
    )
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// None when no sample has a value.
fn sum(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.fold(None, |acc, v| match (acc, v) {
        (acc, None) => acc,
        (None, Some(v)) => Some(v),
        (Some(acc), Some(v)) => Some(acc + v),
    })
}

/// 5.90 M, 812 k, 12.
fn si(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.0} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

/// Words as a shell would need them.
fn quote_all(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,$+".contains(c));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

mod sys {
    use anyhow::{Result, bail};

    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }

    /// Sends `signal` to a process this bench started and has not reaped (callers make
    /// sure), so the pid cannot belong to anyone else.
    pub fn signal_pid(pid: u32, signal: i32) -> Result<()> {
        let Ok(pid) = i32::try_from(pid) else {
            bail!("pid {pid} out of range");
        };
        if pid <= 0 {
            bail!("refusing to signal pid {pid}");
        }
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        if unsafe { kill(pid, signal) } != 0 {
            bail!("kill({pid}, {signal}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
    }

    #[test]
    fn sigwho_json_events() {
        assert_eq!(
            json_event(br#"{"event":"lost","count":3}"#).as_deref(),
            Some("lost")
        );
        assert_eq!(
            json_event(br#"{"time":"x","event":"signal"}"#).as_deref(),
            Some("signal")
        );
        assert_eq!(json_event(b"not json"), None);
    }

    #[test]
    fn one_line_per_signal_tools() {
        // bpftrace: sender target signo; sigsnoop: time sender comm signo target result.
        assert!(names_both("4242 777 10", "777", "10"));
        assert!(names_both(
            "18:23:55 4242    storm-sender     10        777     0",
            "777",
            "10"
        ));
        assert!(!names_both("4242 778 10", "777", "10"));
        assert_eq!(lost_in("Lost 123 events on CPU #1!"), 123);
        assert_eq!(lost_in("Lost 7 events"), 7);
        assert_eq!(lost_in("lost 8 events on CPU #0"), 8);
        assert_eq!(lost_in("4242 777 10"), 0);
    }

    #[test]
    fn other_tracers_are_tallied() {
        let seen = ["sigwho[12]", "sigwho[13]", "perf[14]"].map(String::from);
        assert_eq!(tally_comms(&seen), "sigwho ×2, perf");
    }

    #[test]
    fn hook_floor_programs_are_empty_and_hook_what_sigwho_hooks() {
        assert_eq!(
            floor_program(Floor::SignalGenerate),
            "tracepoint:signal:signal_generate { }"
        );
        let with_exits = floor_program(Floor::WithSyscallExits);
        let (points, body) = with_exits.split_once(' ').unwrap();
        assert_eq!(body, "{ }");
        let points: Vec<&str> = points.split(',').collect();
        assert_eq!(
            points,
            [
                "tracepoint:signal:signal_generate",
                "tracepoint:syscalls:sys_exit_kill",
                "tracepoint:syscalls:sys_exit_tkill",
                "tracepoint:syscalls:sys_exit_tgkill",
                "tracepoint:syscalls:sys_exit_pidfd_send_signal",
                "tracepoint:syscalls:sys_exit_rt_sigqueueinfo",
                "tracepoint:syscalls:sys_exit_rt_tgsigqueueinfo",
            ]
        );
        assert_eq!(DISABLE_SYSCALL_HOOKS, KILL_FAMILY.join(","));
        assert_eq!(
            floor_program(Floor::SyscallExits),
            format!("{} {{ }}", points[1..].join(","))
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            quote_all(&["-e".into(), "a { b; }".into(), "fifo:$X".into()]),
            "-e 'a { b; }' fifo:$X"
        );
    }
}
