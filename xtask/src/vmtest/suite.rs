//! The conformance suite's side of a matrix run: building it on the host, and reading
//! what each kernel's run printed into the table, results.json and docs/kernels.md.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

use super::guest::{End, Outcome};
use super::report::{self, KernelReport, TestResult};
use super::{Ctx, Job, Target};
use crate::cargo::{Workspace, show};

/// The suite's test target in sigwho-tests.
const SUITE_TARGET: &str = "kernel";

/// The suite as built on the host.
pub struct Suite {
    pub exe: PathBuf,
    /// Every test, from `EXE --list`: rows for kernels that never got to run them.
    pub tests: Vec<String>,
}

/// Builds the suite's test executable, the way `cargo test` would, and lists its tests.
pub fn build_suite(ws: &Workspace) -> Result<Suite> {
    let mut build = ws.cargo([
        "test",
        "-p",
        "sigwho-tests",
        "--test",
        SUITE_TARGET,
        "--no-run",
        "--message-format=json",
    ]);
    build.stdout(Stdio::piped()).stderr(Stdio::inherit());
    eprintln!("xtask: running {}", show(&build));
    let out = build
        .output()
        .with_context(|| format!("could not run {}", show(&build)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): the suite (test target `{SUITE_TARGET}` of sigwho-tests, \
             tests/kernel.rs) did not build, so no kernel can run it",
            show(&build),
            out.status
        );
    }
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == SUITE_TARGET)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .with_context(|| format!("{} named no test executable", show(&build)))?;
    let list = Command::new(&exe)
        .args(["--list", "--format=terse"])
        .output()
        .with_context(|| format!("could not run {} --list", exe.display()))?;
    let tests = report::parse_list(&String::from_utf8_lossy(&list.stdout));
    eprintln!("vmtest: suite: {} ({} tests)", exe.display(), tests.len());
    Ok(Suite { exe, tests })
}

/// Turns each run into a kernel report, prints the failures' output and the table, and
/// writes summary.md, results.json and (with --write-docs) docs/kernels.md.
pub fn report_suite(
    ctx: &Ctx<'_>,
    suite: &Suite,
    jobs: &[Job],
    outcomes: Vec<Result<Outcome>>,
) -> Result<ExitCode> {
    let mut reports = Vec::new();
    for (job, outcome) in jobs.iter().zip(outcomes) {
        let label = job.target.label();
        let dir = ctx.paths.vmtest.join(label);
        let _ = fs::remove_file(dir.join("doctor.json"));
        let mut report = KernelReport {
            label: label.to_owned(),
            release: job.release.clone(),
            failure: None,
            tests: BTreeMap::new(),
            boot: None,
            total: None,
            doctor: None,
            kernel_log: Vec::new(),
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                eprintln!("vmtest: {label}: {err:#}");
                report.failure = Some(format!("{err:#}"));
                reports.push(report);
                continue;
            }
        };
        report.boot = outcome.boot;
        report.total = Some(outcome.total);
        let stdout = String::from_utf8_lossy(&outcome.stdout);
        let parsed = report::parse_suite(&stdout);
        report.tests = parsed.tests.clone();
        report.doctor = doctor_json(label, &dir, parsed.doctor.as_ref())?;
        let failed = parsed
            .tests
            .values()
            .filter(|r| **r == TestResult::Failed)
            .count();
        report.failure = match &outcome.end {
            End::TimedOut => Some(format!("timed out after {} s", ctx.args.timeout.as_secs())),
            End::NoStatus(why) => Some(why.clone()),
            End::Exited(code) if !parsed.completed => Some(format!(
                "the suite did not run to its end (exit status {code})"
            )),
            End::Exited(_) if failed > 0 => Some(format!(
                "{failed} test{} failed",
                if failed == 1 { "" } else { "s" }
            )),
            End::Exited(0) => None,
            End::Exited(code) => Some(format!("exit status {code}")),
        };
        if job.target != Target::Host {
            let console = fs::read_to_string(dir.join("console.log")).unwrap_or_default();
            report.kernel_log = report::kernel_log_problems(&console);
            for line in &report.kernel_log {
                eprintln!("vmtest: {label}: kernel log: {line}");
            }
        }
        if let Some(why) = &report.failure {
            print_failure(label, why, &dir, &outcome, &parsed.unfinished);
        }
        reports.push(report);
    }

    let table = report::summary_table(&suite.tests, &reports);
    println!("\n{table}");
    fs::write(ctx.paths.vmtest.join("summary.md"), &table)?;
    let results = report::results_json(&report::today(), &reports);
    fs::write(
        ctx.paths.vmtest.join("results.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    eprintln!(
        "vmtest: wrote {} and results.json",
        ctx.paths.vmtest.join("summary.md").display()
    );
    if ctx.args.write_docs {
        write_docs(&ctx.paths.root, &reports)?;
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| r.failure.is_some())
        .map(|r| r.label.as_str())
        .collect();
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("vmtest: FAILED on {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// Saves the doctor's report as DIR/doctor.json when it printed one. A sigwho without a
/// `doctor` subcommand (or one that failed) prints none, which is noted, not fatal.
fn doctor_json(
    label: &str,
    dir: &Path,
    doctor: Option<&(String, i32)>,
) -> Result<Option<serde_json::Value>> {
    let Some((text, code)) = doctor else {
        eprintln!("vmtest: {label}: the doctor did not run");
        return Ok(None);
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) if value.is_object() => {
            fs::write(
                dir.join("doctor.json"),
                serde_json::to_string_pretty(&value)? + "\n",
            )?;
            Ok(Some(value))
        }
        _ => {
            eprintln!(
                "vmtest: {label}: `sigwho doctor --json` printed no JSON report (exit status \
                 {code}; its stderr is in {})",
                dir.join("stderr.log").display()
            );
            Ok(None)
        }
    }
}

/// What CI logs need to show why a kernel failed: the end of the suite's output, and of
/// the kernel's log when the guest itself went wrong.
fn print_failure(label: &str, why: &str, dir: &Path, outcome: &Outcome, unfinished: &[String]) {
    let mut w = std::io::stderr().lock();
    let _ = writeln!(w, "\n==== vmtest: {label}: FAILED: {why} ====");
    for name in unfinished {
        let _ = writeln!(w, "(test {name} started and never finished)");
    }
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    let sections = report::failure_sections(&stdout, 25);
    for (name, text) in &sections {
        let _ = writeln!(w, "---- {label}: {name} ----\n{text}");
    }
    // Without libtest's failure report (a crash, a timeout, a suite that did not start),
    // the end of the output says the most.
    if sections.is_empty() {
        let _ = writeln!(
            w,
            "---- {label}: end of stdout ----\n{}",
            report::tail(&stdout, 80)
        );
    }
    let _ = writeln!(
        w,
        "(the whole output: {})",
        dir.join("stdout.log").display()
    );
    let _ = writeln!(
        w,
        "---- {label}: end of stderr ----\n{}",
        report::tail(&stderr, 30)
    );
    if !matches!(outcome.end, End::Exited(_)) {
        let console = fs::read_to_string(dir.join("console.log")).unwrap_or_default();
        let _ = writeln!(
            w,
            "---- {label}: end of the kernel log ({}) ----\n{}",
            dir.join("console.log").display(),
            report::tail(&console, 40)
        );
    }
    let _ = writeln!(w, "==== vmtest: {label}: end ====\n");
}

fn write_docs(root: &Path, reports: &[KernelReport]) -> Result<()> {
    let doctors: Vec<(String, serde_json::Value)> = reports
        .iter()
        .filter_map(|r| Some((r.label.clone(), r.doctor.clone()?)))
        .collect();
    if doctors.is_empty() {
        bail!("--write-docs: no kernel produced a `sigwho doctor --json` report");
    }
    let path = root.join("docs/kernels.md");
    fs::write(&path, report::kernels_doc(&report::today(), &doctors))
        .with_context(|| format!("could not write {}", path.display()))?;
    eprintln!("vmtest: wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-vmtest-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("docs")).unwrap();
        dir
    }

    #[test]
    fn doctor_reports_become_docs() {
        let dir = scratch("docs");
        let text = r#"{"kernel":"6.1.0-57-cloud-amd64","can_trace":true,"features":[
            {"name":"tp_btf","status":"used","detail":"","cost":""}]}"#;
        let doctor = doctor_json("6.1", &dir, Some(&(text.to_owned(), 0))).unwrap();
        assert!(dir.join("doctor.json").is_file());
        // A sigwho without the subcommand prints nothing on stdout: no report, no error.
        assert!(
            doctor_json("5.10", &dir, Some(&(String::new(), 2)))
                .unwrap()
                .is_none()
        );
        let report = |label: &str, doctor| KernelReport {
            label: label.to_owned(),
            release: None,
            failure: None,
            tests: BTreeMap::new(),
            boot: None,
            total: None,
            doctor,
            kernel_log: Vec::new(),
        };
        write_docs(&dir, &[report("5.10", None), report("6.1", doctor)]).unwrap();
        let written = fs::read_to_string(dir.join("docs/kernels.md")).unwrap();
        assert!(written.contains("| `tp_btf` | used |"), "{written}");
        assert!(write_docs(&dir, &[report("5.10", None)]).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
