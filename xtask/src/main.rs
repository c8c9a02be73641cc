//! `cargo xtask`: the project's developer tasks, so that a fresh machine needs nothing but
//! cargo to build, run and test sigwho (see ../shared/TOOLCHAIN.md for why the eBPF
//! toolchain is not the usual one).
//!
//! xtask's own messages go to stderr: stdout belongs to the programs it runs (sigwho's
//! output may be piped, and CI reads cargo test's summary lines).

mod bench;
mod cargo;
mod dist;
mod phases;
mod setup;
mod soak;
mod vmtest;

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

use crate::cargo::Workspace;

/// Developer tasks for sigwho.
#[derive(Parser)]
#[command(bin_name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what is missing to build the eBPF side (Debian packages, the `debian`
    /// rustup toolchain, bpf-linker). Does nothing slow when everything is present.
    Setup,
    /// Run setup, then build every binary of the workspace.
    Build {
        /// Build with the release profile.
        #[arg(long)]
        release: bool,
    },
    /// Run setup, build sigwho and run it with the given arguments.
    ///
    /// Exits with sigwho's exit status (128+N when it is killed by signal N).
    Run {
        /// Build and run the debug profile instead of release.
        #[arg(long)]
        debug: bool,
        /// Arguments for sigwho, after `--` (e.g. `-- --target-pid 1234`).
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Run setup, build every binary (debug) and the Debian package (as `dist` does; not
    /// when EXTRA picks other test files with --test), and run every test. Must run as
    /// root.
    ///
    /// Clippy checks the whole workspace after the build, warnings as errors, and the
    /// tests do not run if it fails (SIGWHO_CLIPPY=0 skips it).
    ///
    /// Then, unless EXTRA is given, the kernel matrix (`cargo xtask vmtest` with its
    /// defaults: the suite on Debian 5.10, 6.1, 6.12 and 7.x in qemu, and on the host).
    /// Fails if the host tests or the matrix fail.
    #[expect(
        clippy::doc_markdown,
        reason = "clap prints this comment as --help, where backticks would show"
    )]
    Test {
        /// Extra arguments for `cargo test`, after `--` (e.g. `-- --nocapture`).
        #[arg(last = true, value_name = "EXTRA")]
        extra: Vec<String>,
    },
    /// Run setup, build the release binaries and measure what tracing costs a signal
    /// storm, for sigwho and for perf, bpftrace and sigsnoop (installed with apt when
    /// missing), plus sigwho's start-up time and live-view latency. Must run as root.
    ///
    /// Prints a markdown table and writes it to target/bench/latest.md
    /// (docs/performance.md explains it). Targets are reported, not asserted.
    Bench(bench::BenchArgs),
    /// Run setup, build the release binaries, run a mixed signal workload (kills, group
    /// kills, forks, execs, crashes) for --minutes with `sigwho record` on, then check
    /// that the journal holds every signal the workload sent. Must run as root; not in
    /// CI. Output in target/soak/.
    Soak(soak::SoakArgs),
    /// Run setup, then build the release binary, its man pages and shell completions
    /// (bash, zsh, fish) and a Debian package with them and the recorder's systemd unit
    /// (installs cargo-deb from crates.io when missing). Writes target/dist/*.deb.
    Dist,
    /// Run setup, build the debug binaries and the kernel conformance suite
    /// (tests/kernel.rs), and run the suite on Debian's 5.10, 6.1, 6.12 and newest 7.x
    /// cloud kernels, each booted in qemu (TCG) on the host's root file system, and
    /// natively on the host's kernel. Must run as root.
    ///
    /// Kernels come from the Debian archive (apt-get download, cached in target/vmtest/).
    /// Prints a table of tests by kernel and writes target/vmtest/summary.md and
    /// results.json; each kernel's console log, output and `sigwho doctor --json` are in
    /// target/vmtest/KERNEL/. Fails if any kernel fails.
    Vmtest(vmtest::VmtestArgs),
    /// Runs the property tests of everything sigwho parses (records, rules, tracefs
    /// formats, /proc, times) with many cases; CI runs them with the default count.
    Fuzz {
        /// Cases per property.
        #[arg(long, default_value_t = 200_000)]
        cases: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> Result<ExitCode> {
    setup::put_cargo_bin_on_path();
    let ws = Workspace::locate()?;
    match command {
        Command::Setup => {
            setup::run()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { release } => {
            setup::run()?;
            let mut build = ws.cargo(["build", "--workspace", "--bins"]);
            if release {
                build.arg("--release");
            }
            cargo::run_step(&mut build)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { debug, args } => {
            setup::run()?;
            let profile = if debug { "debug" } else { "release" };
            let mut build = ws.cargo(["build", "-p", "tracer", "--bin", "sigwho"]);
            if !debug {
                build.arg("--release");
            }
            cargo::run_step(&mut build)?;
            let bin = ws.target_dir()?.join(profile).join("sigwho");
            let mut sigwho = std::process::Command::new(&bin);
            sigwho.args(&args);
            cargo::run_final(&mut sigwho)
        }
        Command::Test { extra } => test(&ws, &extra),
        Command::Vmtest(args) => vmtest::run(&ws, &args),
        Command::Dist => {
            setup::run()?;
            let deb = dist::run(&ws)?;
            println!("{}", deb.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            bench::run(&ws, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Soak(args) => {
            if !setup::is_root()? {
                bail!("cargo xtask soak must run as root (it loads eBPF programs)");
            }
            setup::run()?;
            soak::run(&ws, &args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Fuzz { cases } => {
            // The property tests in tracer/tests/fuzz.rs, with many more cases than CI's
            // default run; optimised, since the parsers are what is being exercised.
            let mut test = ws.cargo(["test", "--release", "-p", "tracer", "--test", "fuzz"]);
            test.env("PROPTEST_CASES", cases.to_string());
            cargo::run_final(&mut test)
        }
    }
}

/// `cargo xtask test`: setup, build, clippy, the package, the host tests, then the kernel
/// matrix, saying at the end how long each part took.
fn test(ws: &Workspace, extra: &[String]) -> Result<ExitCode> {
    // Checked before setup and the build, so a non-root run fails in a second
    // rather than after minutes of compiling.
    if !setup::is_root()? {
        bail!("cargo xtask test must run as root (the tests load eBPF programs)");
    }
    let mut phases = phases::Phases::new();
    phases.time("setup", || -> Result<()> {
        setup::run()?;
        setup::test_tools()
    })?;
    // The integration tests run the real binaries from target/debug, which
    // `cargo test` alone would not (re)build.
    phases.time("build", || {
        cargo::run_step(&mut ws.cargo(["build", "--workspace", "--bins"]))
    })?;
    if clippy_wanted() {
        phases.time("clippy", || {
            cargo::run_step(&mut ws.cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
    }
    // tests/dist.rs installs and removes the package, tests/container.rs builds an
    // image from it; they cannot build it themselves
    // while cargo test holds the target directory's lock. A run limited to other
    // test files skips the release build.
    let deb = if wants_package(extra) {
        Some(phases.time("package", || dist::run(ws))?)
    } else {
        None
    };
    let debug_dir = ws.target_dir()?.join("debug");
    let mut test = ws.cargo(["test", "--workspace"]);
    test.args(extra)
        .env("SIGWHO_BIN", debug_dir.join("sigwho"))
        .env("SIGWHO_TESTPROC", debug_dir.join("sigwho-testproc"));
    if let Some(deb) = deb {
        test.env("SIGWHO_DEB", deb);
    }
    let host = phases.time("host tests", || cargo::run_final(&mut test))?;
    // EXTRA narrows the run to some tests or changes how they run: a developer
    // iterating on them does not want the matrix's minutes on top.
    if !extra.is_empty() {
        return Ok(host);
    }
    let matrix = phases.time("kernel matrix", || {
        vmtest::run(ws, &vmtest::VmtestArgs::defaults())
    })?;
    Ok(if host == ExitCode::SUCCESS {
        matrix
    } else {
        host
    })
}

/// Whether `cargo xtask test` runs clippy by default: every crate is clippy-clean, and
/// CI keeps them so (`SIGWHO_CLIPPY=0` skips it).
const CLIPPY_BY_DEFAULT: bool = true;

/// `$SIGWHO_CLIPPY`: 1 runs clippy in `cargo xtask test`, 0 does not, anything else (or
/// nothing) leaves it to [`CLIPPY_BY_DEFAULT`].
fn clippy_wanted() -> bool {
    clippy_setting(std::env::var("SIGWHO_CLIPPY").ok().as_deref())
}

fn clippy_setting(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        Some("1") => true,
        Some("0") => false,
        _ => CLIPPY_BY_DEFAULT,
    }
}

/// The test files that install or containerise the Debian package (`$SIGWHO_DEB`).
const PACKAGE_TESTS: &[&str] = &["dist", "container"];

/// Whether `cargo test EXTRA` may run a test that needs the package (tests/dist.rs,
/// tests/container.rs): yes unless EXTRA picks test files with `--test NAME` and none of
/// them is one of those.
fn wants_package(extra: &[String]) -> bool {
    let mut picked = extra
        .windows(2)
        .filter(|pair| pair[0] == "--test")
        .map(|pair| pair[1].as_str())
        .peekable();
    picked.peek().is_none() || picked.any(|name| PACKAGE_TESTS.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::{CLIPPY_BY_DEFAULT, clippy_setting, wants_package};

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn the_package_is_built_unless_other_test_files_are_picked() {
        assert!(wants_package(&[]));
        assert!(wants_package(&args(&["--", "--nocapture"])));
        assert!(wants_package(&args(&["--test", "dist"])));
        assert!(wants_package(&args(&["--test", "live", "--test", "dist"])));
        assert!(wants_package(&args(&["--test", "container"])));
        assert!(!wants_package(&args(&["--test", "recorder"])));
        assert!(!wants_package(&args(&[
            "--test",
            "live",
            "--",
            "--nocapture"
        ])));
    }

    #[test]
    fn clippy_is_asked_for_with_1_and_0() {
        assert!(clippy_setting(Some("1")));
        assert!(!clippy_setting(Some("0")));
        assert_eq!(clippy_setting(None), CLIPPY_BY_DEFAULT);
        assert_eq!(clippy_setting(Some("yes")), CLIPPY_BY_DEFAULT);
    }
}
