//! `cargo xtask vmtest`: sigwho's kernel conformance suite (tests/kernel.rs) on real
//! Debian kernels, each booted in qemu with the host's root file system, and natively on
//! the host's own kernel. ../shared/KERNELS.md has the facts this is built on.
//!
//! One boot per kernel runs the whole suite (a boot costs 3-6 s under emulation, more
//! than most tests). Everything downloaded or built is cached under target/vmtest/, so
//! that a second run reaches the network at most once a day.

mod guest;
mod initramfs;
mod kernels;
mod report;
mod suite;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser};

use self::guest::{Echo, End, Guest, Machine, Outcome};
use self::kernels::Series;
use self::report::tail;
use self::suite::Suite;
use crate::cargo::{Workspace, run_step};
use crate::setup;

/// What the host needs to boot the guests: qemu and its virtiofsd, a static busybox for
/// the initramfs, kmod (depmod, modprobe -d to resolve module dependencies), cpio, and
/// the decompressors for modules.
const HOST_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "qemu-system-common",
    "busybox-static",
    "kmod",
    "cpio",
    "xz-utils",
    "zstd",
];

/// 2 GiB: the overlay's writes and /tmp live in guest memory.
const GUEST_MEMORY_MIB: u32 = 2048;
/// With thread=single both vCPUs share one host thread: a second vCPU costs little and
/// lets the suite see concurrency (a sender and a target on different CPUs).
const GUEST_CPUS: u32 = 2;
/// The suite's harness multiplies its timeouts by this in guests (`SIGWHO_TEST_TIME_SCALE`):
/// TCG runs the kernel 5-20 times slower than the host.
const GUEST_TIME_SCALE: u32 = 10;
/// Options of `cargo xtask vmtest`.
#[derive(Args, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "command-line switches, each independent of the others"
)]
pub struct VmtestArgs {
    /// A kernel to test: 5.10, 6.1, 6.12, 7 (the newest 7.x) or host (this machine's own
    /// kernel, natively, without a VM). Repeatable. Default: the four series and host.
    #[arg(long = "kernel", value_name = "SERIES", value_parser = parse_target)]
    kernels: Vec<Target>,
    /// Add the host's kernel to the kernels that --kernel picks.
    #[arg(long, conflicts_with = "no_host")]
    host: bool,
    /// Leave the host's kernel out (of the default selection, or of what --kernel picks).
    #[arg(long)]
    no_host: bool,
    /// Run this shell command (bash) in each kernel instead of the suite, as root from
    /// the workspace root, and print its stdout, stderr and exit status. With one kernel
    /// the exit status is passed on. E.g. --exec 'target/debug/sigwho --target-pid 1
    /// --timeout 1'.
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,
    /// Also write target/vmtest/KERNEL/boot.sh, which boots that guest again by hand
    /// (same kernel, initramfs and run.sh; output in files), to tinker with qemu's or the
    /// kernel's command line.
    #[arg(long)]
    keep: bool,
    /// Write docs/kernels.md from what `sigwho doctor --json` reported on each kernel.
    #[arg(long, conflicts_with = "exec")]
    write_docs: bool,
    /// Guests booted at the same time.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    jobs: u32,
    /// Wall-clock limit per kernel, boot and suite together (e.g. 600, 600s, 10m).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    timeout: Duration,
    /// Virtual CPUs per guest (all emulated by one host thread).
    #[arg(long, default_value_t = GUEST_CPUS, value_parser = clap::value_parser!(u32).range(1..=8))]
    cpus: u32,
    /// The suite's --test-threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    test_threads: u32,
}

impl VmtestArgs {
    /// The defaults, as `cargo xtask vmtest` alone would have them (for `cargo xtask
    /// test`).
    pub fn defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: VmtestArgs,
        }
        Only::parse_from(["vmtest"]).args
    }

    fn selection(&self) -> Vec<Target> {
        let mut picked: Vec<Target> = if self.kernels.is_empty() {
            Series::ALL
                .into_iter()
                .map(Target::Series)
                .chain([Target::Host])
                .collect()
        } else {
            self.kernels.clone()
        };
        if self.host {
            picked.push(Target::Host);
        }
        if self.no_host {
            picked.retain(|t| *t != Target::Host);
        }
        // Host first: it runs alone, before the guests load the machine.
        picked.sort();
        picked.dedup();
        picked
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Host,
    Series(Series),
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Host => "host",
            Target::Series(s) => s.label(),
        }
    }
}

fn parse_target(s: &str) -> Result<Target, String> {
    if s == "host" {
        return Ok(Target::Host);
    }
    Series::ALL
        .into_iter()
        .find(|series| series.label() == s)
        .map(Target::Series)
        .ok_or_else(|| format!("unknown kernel series {s:?}: expected 5.10, 6.1, 6.12, 7 or host"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.strip_suffix('m') {
        Some(n) => (n, 60),
        None => (s.strip_suffix('s').unwrap_or(s), 1),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n * unit)),
        _ => Err(format!(
            "expected a duration such as 600, 600s or 10m, got {s:?}"
        )),
    }
}

/// One kernel's run, ready to start.
struct Job {
    target: Target,
    release: Option<String>,
    machine: Result<Option<Guest>>,
}

struct Paths {
    root: PathBuf,
    target: PathBuf,
    vmtest: PathBuf,
}

pub fn run(ws: &Workspace, args: &VmtestArgs) -> Result<ExitCode> {
    if !setup::is_root()? {
        bail!(
            "cargo xtask vmtest must run as root (virtiofsd and its mount namespace, and the \
             suite loads eBPF programs)"
        );
    }
    let targets = args.selection();
    if targets.is_empty() {
        bail!("no kernel selected");
    }
    let series: Vec<Series> = targets
        .iter()
        .filter_map(|t| match t {
            Target::Series(s) => Some(*s),
            Target::Host => None,
        })
        .collect();
    setup::run()?;
    if !series.is_empty() {
        setup::ensure_packages("vmtest: host packages", HOST_PACKAGES)?;
    }
    let target_dir = ws.target_dir()?;
    let paths = Paths {
        root: ws.root().to_path_buf(),
        vmtest: target_dir.join("vmtest"),
        target: target_dir,
    };
    fs::create_dir_all(&paths.vmtest)?;
    run_step(&mut ws.cargo(["build", "--workspace", "--bins"]))?;
    let suite = match &args.exec {
        Some(_) => None,
        None => Some(suite::build_suite(ws)?),
    };

    // Unpacking, apt's lists and the initramfs are shared by every vmtest on this
    // checkout; each kernel's directory is locked by its run (run_job).
    let fetch_lock = lock(&paths.vmtest.join("fetch.lock"), "kernel downloads")?;
    let mut fetched: BTreeMap<Series, Result<kernels::Kernel>> =
        kernels::fetch(&paths.vmtest, &series).into_iter().collect();
    let extra_mounts = guest::extra_mounts(&[&paths.root, &paths.target]);
    let jobs: Vec<Job> = targets
        .iter()
        .map(|&target| match target {
            Target::Host => Job {
                target,
                release: host_release(),
                machine: Ok(None),
            },
            Target::Series(s) => {
                let kernel = fetched.remove(&s).expect("every series was fetched");
                let release = kernel.as_ref().ok().map(|k| k.release.clone());
                let machine = kernel.and_then(|kernel| {
                    let initramfs = initramfs::build(&kernel)?;
                    Ok(Some(Guest {
                        kernel,
                        initramfs,
                        cpus: args.cpus,
                        memory_mib: GUEST_MEMORY_MIB,
                        extra_mounts: extra_mounts.clone(),
                    }))
                });
                Job {
                    target,
                    release,
                    machine,
                }
            }
        })
        .collect();
    drop(fetch_lock);

    let guests = jobs.iter().filter(|j| j.target != Target::Host).count();
    let parallel = (args.jobs as usize).min(guests.max(1));
    let echo = match (&args.exec, parallel) {
        (Some(_), 1) => Echo::Raw,
        (Some(_), _) => Echo::Quiet,
        (None, _) => Echo::Prefixed,
    };
    let ctx = Ctx {
        args,
        paths: &paths,
        suite: suite.as_ref(),
        echo,
        print: Mutex::new(()),
    };
    let outcomes = run_jobs(&ctx, &jobs, parallel);

    if args.exec.is_some() {
        Ok(exec_exit_code(&jobs, &outcomes))
    } else {
        let suite = suite.as_ref().expect("suite built when not --exec");
        suite::report_suite(&ctx, suite, &jobs, outcomes)
    }
}

struct Ctx<'a> {
    args: &'a VmtestArgs,
    paths: &'a Paths,
    suite: Option<&'a Suite>,
    echo: Echo,
    /// Held while a finished run's output is printed, so that runs do not interleave.
    print: Mutex<()>,
}

/// Runs the host first and alone (its timings are native ones), then the guests
/// `parallel` at a time.
fn run_jobs(ctx: &Ctx<'_>, jobs: &[Job], parallel: usize) -> Vec<Result<Outcome>> {
    let results: Vec<Mutex<Option<Result<Outcome>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    for (i, job) in jobs.iter().enumerate() {
        if job.target == Target::Host {
            *results[i].lock().unwrap() = Some(run_job(ctx, job));
        }
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else { break };
                    if job.target != Target::Host {
                        let outcome = run_job(ctx, job);
                        *results[i].lock().unwrap() = Some(outcome);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().unwrap().expect("every job ran"))
        .collect()
}

fn run_job(ctx: &Ctx<'_>, job: &Job) -> Result<Outcome> {
    let label = job.target.label();
    let guest = match &job.machine {
        Ok(guest) => guest.as_ref(),
        Err(err) => bail!("{err:#}"),
    };
    let dir = ctx.paths.vmtest.join(label);
    fs::create_dir_all(&dir)?;
    let _lock = lock(&dir.join(".lock"), &format!("target/vmtest/{label}"))?;
    let script = dir.join("run.sh");
    fs::write(&script, script_text(ctx, guest.is_some())?)?;
    eprintln!(
        "vmtest: {label}: {} {}",
        if guest.is_some() {
            "booting"
        } else {
            "running natively on"
        },
        job.release.as_deref().unwrap_or("?")
    );
    // The host runs alone: its output can stream even when guests will not.
    let echo = match (guest, ctx.echo) {
        (None, Echo::Quiet) => Echo::Raw,
        (_, echo) => echo,
    };
    let machine = match guest {
        Some(guest) => Machine::Guest(guest),
        None => Machine::Host,
    };
    let outcome = guest::run(
        &machine,
        &guest::Run {
            label,
            dir: &dir,
            script: &script,
            timeout: ctx.args.timeout,
            echo,
            keep: ctx.args.keep,
        },
    )?;
    let _print = ctx.print.lock().unwrap();
    if echo == Echo::Quiet && !(outcome.stdout.is_empty() && outcome.stderr.is_empty()) {
        eprintln!("==== vmtest: {label}: output ====");
        let _ = std::io::stdout().write_all(&outcome.stdout);
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().write_all(&outcome.stderr);
    }
    eprintln!(
        "vmtest: {label}: {} ({})",
        describe_end(&outcome.end),
        timing(&outcome)
    );
    // The suite's report prints this for failed kernels; a lone command has no report.
    if ctx.args.exec.is_some() && guest.is_some() && !matches!(outcome.end, End::Exited(_)) {
        let console = fs::read_to_string(dir.join("console.log")).unwrap_or_default();
        eprintln!(
            "---- {label}: end of the kernel log ----\n{}",
            tail(&console, 30)
        );
    }
    Ok(outcome)
}

/// An exclusive flock(2) on `path`, held until the file is dropped: another vmtest on
/// the same checkout (a developer's --exec while CI's matrix runs) waits its turn rather
/// than sharing FIFOs and logs.
fn lock(path: &Path, what: &str) -> Result<fs::File> {
    use std::os::fd::AsRawFd;
    let file =
        fs::File::create(path).with_context(|| format!("could not create {}", path.display()))?;
    // SAFETY: flock(2) on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        eprintln!("vmtest: waiting for another cargo xtask vmtest to finish with {what}");
        // SAFETY: as above.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("could not lock {}", path.display()));
        }
    }
    Ok(file)
}

fn describe_end(end: &End) -> String {
    match end {
        End::Exited(code) => format!("exit status {code}"),
        End::TimedOut => "timed out".to_owned(),
        End::NoStatus(why) => why.clone(),
    }
}

fn timing(outcome: &Outcome) -> String {
    match outcome.boot {
        Some(boot) => format!(
            "boot {:.1} s, total {:.1} s",
            boot.as_secs_f64(),
            outcome.total.as_secs_f64()
        ),
        None => format!("{:.1} s", outcome.total.as_secs_f64()),
    }
}

/// The script a run executes (bash, as root): from the workspace root, with the same
/// environment in guests as on the host but for the time scale.
fn script_text(ctx: &Ctx<'_>, in_guest: bool) -> Result<String> {
    let debug = ctx.paths.target.join("debug");
    let sigwho = debug.join("sigwho");
    let mut s = format!(
        "#!/bin/bash\n# Written by cargo xtask vmtest; run as root by the guest's init (or \
         natively, for host).\ncd {} || exit 125\nexport SIGWHO_BIN={} SIGWHO_TESTPROC={} \
         RUST_BACKTRACE=1\n",
        quote(&ctx.paths.root),
        quote(&sigwho),
        quote(&debug.join("sigwho-testproc")),
    );
    if in_guest {
        let _ = writeln!(s, "export SIGWHO_TEST_TIME_SCALE={GUEST_TIME_SCALE}");
    }
    match (&ctx.args.exec, ctx.suite) {
        (Some(cmd), _) => {
            s.push_str(cmd);
            s.push('\n');
        }
        (None, Some(suite)) => {
            // The doctor's JSON travels on stdout between markers: the guest's writes do
            // not reach the host's disk. A sigwho without `doctor` just leaves it empty.
            let _ = write!(
                s,
                "echo '{}'\n{} doctor --json\nrc=$?\necho\necho \"{} $rc\"\necho '{}'\nexec {} \
                 --test-threads={}\n",
                report::DOCTOR_BEGIN,
                quote(&sigwho),
                report::DOCTOR_END,
                report::SUITE_BEGIN,
                quote(&suite.exe),
                ctx.args.test_threads
            );
        }
        (None, None) => bail!("neither --exec nor a suite"),
    }
    Ok(s)
}

/// A word for bash, in single quotes.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn host_release() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// With one kernel, its command's exit status (as a shell would pass it on); with more,
/// failure unless every command exited 0.
fn exec_exit_code(jobs: &[Job], outcomes: &[Result<Outcome>]) -> ExitCode {
    let mut all_ok = true;
    for (job, outcome) in jobs.iter().zip(outcomes) {
        if let Err(err) = outcome {
            eprintln!("vmtest: {}: {err:#}", job.target.label());
            all_ok = false;
        }
    }
    match outcomes {
        [
            Ok(Outcome {
                end: End::Exited(code),
                ..
            }),
        ] => ExitCode::from(u8::try_from(*code).unwrap_or(1)),
        _ if all_ok
            && outcomes.iter().all(|o| {
                matches!(
                    o,
                    Ok(Outcome {
                        end: End::Exited(0),
                        ..
                    })
                )
            }) =>
        {
            ExitCode::SUCCESS
        }
        _ => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_selection() {
        let args = |words: &[&str]| {
            #[derive(Parser)]
            struct Only {
                #[command(flatten)]
                args: VmtestArgs,
            }
            Only::parse_from(std::iter::once("vmtest").chain(words.iter().copied()))
                .args
                .selection()
                .iter()
                .map(|t| t.label())
                .collect::<Vec<_>>()
        };
        assert_eq!(args(&[]), ["host", "5.10", "6.1", "6.12", "7"]);
        assert_eq!(args(&["--no-host"]), ["5.10", "6.1", "6.12", "7"]);
        assert_eq!(args(&["--kernel", "6.1"]), ["6.1"]);
        assert_eq!(
            args(&["--kernel", "7", "--kernel", "5.10", "--host"]),
            ["host", "5.10", "7"]
        );
        assert_eq!(args(&["--kernel", "host"]), ["host"]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("600"), Ok(Duration::from_mins(10)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_mins(10)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn script_words_quoted() {
        assert_eq!(quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
