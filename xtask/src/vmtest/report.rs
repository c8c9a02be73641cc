//! What the runs produced: libtest's per-test lines, the doctor's JSON, and the tables
//! made of them (target/vmtest/summary.md, results.json, docs/kernels.md).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

/// Lines the suite script prints around the doctor's output, so that one stdout carries
/// both (the guest has one channel per stream, and its writes do not reach the host's
/// disk).
pub const DOCTOR_BEGIN: &str = "@@vmtest doctor-begin";
pub const DOCTOR_END: &str = "@@vmtest doctor-end";
pub const SUITE_BEGIN: &str = "@@vmtest suite-begin";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestResult {
    Ok,
    Failed,
    Ignored,
    NotRun,
}

impl TestResult {
    pub fn cell(self) -> &'static str {
        match self {
            TestResult::Ok => "ok",
            TestResult::Failed => "FAILED",
            TestResult::Ignored => "ignored",
            TestResult::NotRun => "not run",
        }
    }
}

/// One run of the suite script, as read from its stdout.
#[derive(Debug, Default, PartialEq)]
pub struct SuiteOutput {
    /// What `sigwho doctor --json` printed, and its exit status.
    pub doctor: Option<(String, i32)>,
    pub tests: BTreeMap<String, TestResult>,
    /// Tests that started and never reported (the guest died or timed out in them).
    pub unfinished: Vec<String>,
    /// libtest's `test result:` line was seen: the suite ran to its end.
    pub completed: bool,
}

pub fn parse_suite(stdout: &str) -> SuiteOutput {
    let mut parsed = SuiteOutput::default();
    let mut doctor: Option<String> = None;
    let mut pending: Option<String> = None;
    for line in stdout.lines() {
        if line == DOCTOR_BEGIN {
            doctor = Some(String::new());
            continue;
        }
        if let Some(rest) = line.strip_prefix(DOCTOR_END) {
            let code = rest.trim().parse().unwrap_or(-1);
            parsed.doctor = doctor.take().map(|text| (text.trim().to_owned(), code));
            continue;
        }
        if let Some(text) = &mut doctor {
            text.push_str(line);
            text.push('\n');
            continue;
        }
        if line.starts_with("test result: ") {
            parsed.completed = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, result)) = rest.split_once(" ... ")
        {
            match result_word(result) {
                Some(result) => {
                    parsed.tests.insert(name.to_owned(), result);
                }
                // With one test thread, libtest prints the name before running the test;
                // output the test did not capture may come before the result.
                None => pending = Some(name.to_owned()),
            }
            continue;
        }
        if let Some(name) = &pending
            && let Some(result) = result_word(line)
        {
            parsed.tests.insert(name.clone(), result);
            pending = None;
        }
    }
    if let Some(name) = pending
        && !parsed.tests.contains_key(&name)
    {
        parsed.tests.insert(name.clone(), TestResult::Failed);
        parsed.unfinished.push(name);
    }
    parsed
}

/// libtest's verdict at the end of a line: `ok`, `FAILED`, `ignored` or `ignored, REASON`.
fn result_word(text: &str) -> Option<TestResult> {
    let text = text.trim_end();
    if text.ends_with("ok") && (text == "ok" || text.ends_with(" ok")) {
        Some(TestResult::Ok)
    } else if text == "FAILED" || text.ends_with(" FAILED") {
        Some(TestResult::Failed)
    } else if text == "ignored" || text.starts_with("ignored,") {
        Some(TestResult::Ignored)
    } else {
        None
    }
}

/// The test names from `TEST_EXE --list` (`NAME: test` lines).
pub fn parse_list(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

/// How one kernel did.
#[derive(Debug)]
pub struct KernelReport {
    pub label: String,
    /// `uname -r` of the kernel (for the host, of the host).
    pub release: Option<String>,
    /// None when the kernel passed; else why not, in a few words.
    pub failure: Option<String>,
    pub tests: BTreeMap<String, TestResult>,
    pub boot: Option<Duration>,
    pub total: Option<Duration>,
    pub doctor: Option<Value>,
    /// Warnings, oopses and panics in the guest's kernel log: reported, not failed on (a
    /// test that passed despite one still shows it).
    pub kernel_log: Vec<String>,
}

fn seconds(d: Duration) -> String {
    format!("{:.0} s", d.as_secs_f64())
}

/// The headline of each kernel warning, oops or panic in a console log.
pub fn kernel_log_problems(console: &str) -> Vec<String> {
    const MARKS: &[&str] = &[
        "WARNING:",
        "BUG:",
        "Oops",
        "Kernel panic",
        "general protection fault",
        "stack-protector",
    ];
    let mut found: Vec<String> = Vec::new();
    for line in console.lines() {
        if MARKS.iter().any(|m| line.contains(m)) {
            let line = line.trim().to_owned();
            if !found.contains(&line) {
                found.push(line);
            }
        }
    }
    found
}

/// The markdown summary: one row per test, one column per kernel, then the verdict and
/// the time of each kernel.
pub fn summary_table(all_tests: &[String], kernels: &[KernelReport]) -> String {
    let mut names: BTreeSet<&str> = all_tests.iter().map(String::as_str).collect();
    for k in kernels {
        names.extend(k.tests.keys().map(String::as_str));
    }
    let mut w = String::new();
    let releases: Vec<String> = kernels
        .iter()
        .map(|k| format!("{} = {}", k.label, k.release.as_deref().unwrap_or("?")))
        .collect();
    let _ = writeln!(w, "Kernels: {}\n", releases.join(", "));
    row(&mut w, "test", kernels.iter().map(|k| k.label.clone()));
    row(&mut w, "---", kernels.iter().map(|_| "---".to_owned()));
    for name in names {
        row(
            &mut w,
            &format!("`{name}`"),
            kernels.iter().map(|k| {
                k.tests
                    .get(name)
                    .copied()
                    .unwrap_or(TestResult::NotRun)
                    .cell()
                    .to_owned()
            }),
        );
    }
    row(
        &mut w,
        "**result**",
        kernels.iter().map(|k| {
            let verdict = match &k.failure {
                None => "passed".to_owned(),
                Some(why) => format!("**FAILED**: {why}"),
            };
            match k.kernel_log.len() {
                0 => verdict,
                n => format!(
                    "{verdict} (kernel log: {n} warning/oops line{})",
                    if n == 1 { "" } else { "s" }
                ),
            }
        }),
    );
    row(
        &mut w,
        "**time** (boot + suite)",
        kernels.iter().map(|k| match (k.boot, k.total) {
            (Some(boot), Some(total)) => format!(
                "{} ({} + {})",
                seconds(total),
                seconds(boot),
                seconds(total.saturating_sub(boot))
            ),
            (None, Some(total)) => seconds(total),
            _ => "-".to_owned(),
        }),
    );
    w
}

fn row(w: &mut String, first: &str, cells: impl Iterator<Item = String>) {
    let cells: Vec<String> = cells.map(|c| escape(&c)).collect();
    let _ = writeln!(w, "| {} | {} |", first, cells.join(" | "));
}

fn escape(cell: &str) -> String {
    cell.replace('|', "\\|").replace('\n', " ")
}

pub fn results_json(generated: &str, kernels: &[KernelReport]) -> Value {
    json!({
        "generated": generated,
        "kernels": kernels.iter().map(|k| json!({
            "label": k.label,
            "release": k.release,
            "passed": k.failure.is_none(),
            "failure": k.failure,
            "boot_seconds": k.boot.map(|d| d.as_secs_f64()),
            "total_seconds": k.total.map(|d| d.as_secs_f64()),
            "kernel_log_problems": k.kernel_log,
            "tests": k.tests.iter().map(|(name, r)| (name.clone(), json!(r.cell())))
                .collect::<serde_json::Map<String, Value>>(),
        })).collect::<Vec<_>>(),
    })
}

/// docs/kernels.md from the doctor reports of each kernel (label, `sigwho doctor --json`):
/// one row per feature, one column per kernel. A pure function of its inputs, so that
/// the same reports always give the same file.
pub fn kernels_doc(date: &str, reports: &[(String, Value)]) -> String {
    let kernel = |doc: &Value| doc["kernel"].as_str().unwrap_or("?").to_owned();
    let mut features: Vec<String> = Vec::new();
    for (_, doc) in reports {
        for f in doc["features"].as_array().into_iter().flatten() {
            if let Some(name) = f["name"].as_str()
                && !features.iter().any(|n| n == name)
            {
                features.push(name.to_owned());
            }
        }
    }
    let mut w = String::new();
    let versions: Vec<String> = reports
        .iter()
        .map(|(label, doc)| format!("{label}: `{}`", kernel(doc)))
        .collect();
    let _ = writeln!(
        w,
        "<!-- Generated by `cargo xtask vmtest --write-docs` on {date}; do not edit by hand. -->\n\
         # Kernel support\n\n\
         What `sigwho doctor` reports on each kernel of the test matrix (`cargo xtask \
         vmtest`), generated on {date} from these kernels: {}.\n\n\
         A feature is `used` when sigwho relies on it, `fallback` when it works around its \
         absence (at the cost said below), `missing` when it does without.\n",
        versions.join(", ")
    );
    row(
        &mut w,
        "feature",
        reports
            .iter()
            .map(|(label, doc)| format!("{label} (`{}`)", kernel(doc))),
    );
    row(&mut w, "---", reports.iter().map(|_| "---".to_owned()));
    let mut costs: Vec<String> = Vec::new();
    for name in &features {
        row(
            &mut w,
            &format!("`{name}`"),
            reports.iter().map(|(label, doc)| {
                let Some(f) = doc["features"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|f| f["name"].as_str() == Some(name))
                else {
                    return "-".to_owned();
                };
                let status = f["status"].as_str().unwrap_or("?");
                let detail = f["detail"].as_str().unwrap_or("");
                let cost = f["cost"].as_str().unwrap_or("");
                if status != "used" && !cost.is_empty() {
                    costs.push(format!("- `{name}` on {label}: {cost}"));
                }
                if status == "used" || detail.is_empty() {
                    status.to_owned()
                } else {
                    format!("{status}: {detail}")
                }
            }),
        );
    }
    row(
        &mut w,
        "**can trace**",
        reports
            .iter()
            .map(|(_, doc)| match doc["can_trace"].as_bool() {
                Some(true) => "yes".to_owned(),
                Some(false) => "**no**".to_owned(),
                None => "?".to_owned(),
            }),
    );
    if !costs.is_empty() {
        let _ = writeln!(w, "\nWhat the fallbacks and missing features cost:\n");
        for cost in costs {
            let _ = writeln!(w, "{cost}");
        }
    }
    w
}

/// Each failed test's captured output from libtest's `failures:` section, cut before
/// the backtrace and at `max_lines`: why each test failed, in a few lines per test, where
/// the end of the output would show only the last failures.
pub fn failure_sections(stdout: &str, max_lines: usize) -> Vec<(String, String)> {
    let mut sections: Vec<(String, Vec<&str>, bool)> = Vec::new();
    for line in stdout.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            sections.push((name.to_owned(), Vec::new(), false));
            continue;
        }
        let Some((_, lines, done)) = sections.last_mut() else {
            continue;
        };
        // The list of names that closes the section, or the backtrace.
        if line == "failures:" || line.starts_with("stack backtrace:") {
            *done = true;
        }
        if !*done && lines.len() < max_lines {
            lines.push(line);
        }
    }
    sections
        .into_iter()
        .map(|(name, lines, _)| (name, lines.join("\n").trim().to_owned()))
        .collect()
}

/// The last `lines` lines of `text`, for failure output in CI logs.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Today's date (UTC) as YYYY-MM-DD, without a date library: days since the epoch to a
/// civil date (Howard Hinnant's algorithm).
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(secs / 86_400)
}

fn civil_date(days: u64) -> String {
    let z = i64::try_from(days).expect("days since 1970 fit in i64") + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_lines_become_results() {
        let out = format!(
            "{DOCTOR_BEGIN}\n{{\"kernel\":\"6.1.0-57-cloud-amd64\"}}\n\n{DOCTOR_END} 0\n\
             {SUITE_BEGIN}\n\nrunning 5 tests\n\
             test a::passes ... ok\n\
             test b ... FAILED\n\
             test c ... ignored\n\
             test d ... ignored, needs a 6.x kernel\n\
             test e ... stray output of a child\n\
             ok\n\
             test f ... \n\n\
             failures:\n\n---- b stdout ----\nthread 'b' panicked\n"
        );
        let parsed = parse_suite(&out);
        assert_eq!(
            parsed.doctor,
            Some(("{\"kernel\":\"6.1.0-57-cloud-amd64\"}".to_owned(), 0))
        );
        let results: Vec<(&str, TestResult)> =
            parsed.tests.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        assert_eq!(
            results,
            [
                ("a::passes", TestResult::Ok),
                ("b", TestResult::Failed),
                ("c", TestResult::Ignored),
                ("d", TestResult::Ignored),
                ("e", TestResult::Ok),
                ("f", TestResult::Failed),
            ]
        );
        assert_eq!(parsed.unfinished, ["f"]);
        assert!(!parsed.completed);
        assert!(parse_suite("test result: ok. 1 passed; 0 failed\n").completed);
    }

    #[test]
    fn kernel_log_problems_are_headlines() {
        let log = "[    1.0] ok\n[    2.0] WARNING: CPU: 0 PID: 1 at kernel/x.c:1 f+0x1\n\
                   [    2.1] Call Trace:\n[    3.0] BUG: kernel NULL pointer dereference\n";
        assert_eq!(
            kernel_log_problems(log),
            [
                "[    2.0] WARNING: CPU: 0 PID: 1 at kernel/x.c:1 f+0x1",
                "[    3.0] BUG: kernel NULL pointer dereference"
            ]
        );
    }

    #[test]
    fn failures_without_backtraces() {
        let out = "test a ... FAILED\n\nfailures:\n\n---- a stdout ----\n\
                   thread 'a' panicked at x.rs:1:1:\nbad ready line\nstack backtrace:\n\
                   \x20 0: f\n\n---- b stdout ----\nline 1\nline 2\nline 3\n\n\
                   failures:\n    a\n    b\n\ntest result: FAILED.\n";
        assert_eq!(
            failure_sections(out, 2),
            [
                (
                    "a".to_owned(),
                    "thread 'a' panicked at x.rs:1:1:\nbad ready line".to_owned()
                ),
                ("b".to_owned(), "line 1\nline 2".to_owned()),
            ]
        );
    }

    #[test]
    fn test_list() {
        let list = "a::b: test\nc: test\n\n2 tests, 0 benchmarks\n";
        assert_eq!(parse_list(list), ["a::b", "c"]);
    }

    #[test]
    fn summary_has_a_column_per_kernel() {
        let kernel = |label: &str, result, failure: Option<&str>| KernelReport {
            label: label.to_owned(),
            release: Some(format!("{label}.0")),
            failure: failure.map(str::to_owned),
            tests: [("t".to_owned(), result)].into(),
            boot: Some(Duration::from_secs(4)),
            total: Some(Duration::from_secs(64)),
            doctor: None,
            kernel_log: Vec::new(),
        };
        let table = summary_table(
            &["t".to_owned(), "u".to_owned()],
            &[
                kernel("5.10", TestResult::Failed, Some("1 test failed")),
                kernel("6.1", TestResult::Ok, None),
            ],
        );
        assert!(table.contains("| test | 5.10 | 6.1 |"), "{table}");
        assert!(table.contains("| `t` | FAILED | ok |"), "{table}");
        assert!(table.contains("| `u` | not run | not run |"), "{table}");
        assert!(table.contains("| **result** | **FAILED**: 1 test failed | passed |"));
        assert!(table.contains("| **time** (boot + suite) | 64 s (4 s + 60 s) |"));
    }

    #[test]
    fn kernels_doc_has_a_row_per_feature() {
        let doc = |kernel: &str, tp_btf: &str, can_trace: bool| {
            serde_json::from_str::<Value>(&format!(
                r#"{{"kernel":"{kernel}","can_trace":{can_trace},"features":[
                    {{"name":"tp_btf","status":"{tp_btf}","detail":"arg#0 not a struct",
                      "cost":"one more copy per signal"}},
                    {{"name":"ringbuf","status":"used","detail":"","cost":""}}]}}"#
            ))
            .unwrap()
        };
        let text = kernels_doc(
            "2026-12-05",
            &[
                (
                    "5.10".to_owned(),
                    doc("5.10.0-43-cloud-amd64", "fallback", false),
                ),
                ("6.1".to_owned(), doc("6.1.0-57-cloud-amd64", "used", true)),
            ],
        );
        assert!(
            text.starts_with("<!-- Generated by `cargo xtask vmtest --write-docs` on 2026-12-05")
        );
        assert!(text.contains("5.10: `5.10.0-43-cloud-amd64`, 6.1: `6.1.0-57-cloud-amd64`"));
        assert!(text.contains(
            "| feature | 5.10 (`5.10.0-43-cloud-amd64`) | 6.1 (`6.1.0-57-cloud-amd64`) |"
        ));
        assert!(
            text.contains("| `tp_btf` | fallback: arg#0 not a struct | used |"),
            "{text}"
        );
        assert!(text.contains("| `ringbuf` | used | used |"));
        assert!(text.contains("| **can trace** | **no** | yes |"));
        assert!(text.contains("- `tp_btf` on 5.10: one more copy per signal"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_427), "2025-12-05");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}
