//! JUnit XML, as CI systems (GitLab, Jenkins, GitHub test reporters, Azure, ...) read
//! it, through quick-junit (what cargo-nextest writes its reports with). Text that XML
//! 1.0 cannot carry is shown as escapes first, so that whatever a command line contains,
//! the file stays well-formed and says what was there.

use std::{collections::HashMap, fmt::Write as _};

use crate::{
    analysis::report::{Report, SignalReport},
    model::{lineage::ProcKey, signals::signal_label},
    render::{
        summary::{
            Killed, Outcome, RunView, SUMMARY_DETAILS, cause_chain, command_text, junit_text,
            name_of, process_brief_with_argv, sender_chain,
        },
        text,
    },
};

/// One `<testsuite>` inside a `<testsuites>` root.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Suite {
    pub name: String,
    /// `YYYY-MM-DDTHH:MM:SS` (UTC).
    pub timestamp: String,
    pub time_seconds: f64,
    pub properties: Vec<(String, String)>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Case {
    pub name: String,
    pub classname: String,
    pub time_seconds: f64,
    pub failure: Option<Failure>,
    pub system_out: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// One line: what CI systems show next to the test name.
    pub message: String,
    /// The failure's type attribute, e.g. the signal's name.
    pub kind: String,
    /// The details, shown when the test is opened.
    pub text: String,
}

impl Suite {
    #[must_use]
    pub fn failures(&self) -> usize {
        self.cases.iter().filter(|c| c.failure.is_some()).count()
    }

    /// The JUnit XML document (quick-junit, as cargo-nextest writes its reports).
    #[must_use]
    pub fn to_xml(&self) -> String {
        let time = duration(self.time_seconds);
        let mut suite = quick_junit::TestSuite::new(visible(&self.name));
        suite.set_time(time);
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(&self.timestamp, "%Y-%m-%dT%H:%M:%S")
        {
            suite.set_timestamp(at.and_utc().fixed_offset());
        }
        for (name, value) in &self.properties {
            suite.add_property(quick_junit::Property::new(visible(name), visible(value)));
        }
        for case in &self.cases {
            let status = match &case.failure {
                None => quick_junit::TestCaseStatus::success(),
                Some(failure) => {
                    let mut status = quick_junit::TestCaseStatus::non_success(
                        quick_junit::NonSuccessKind::Failure,
                    );
                    status
                        .set_message(visible(&failure.message))
                        .set_type(visible(&failure.kind))
                        .set_description(visible(&failure.text));
                    status
                }
            };
            let mut test_case = quick_junit::TestCase::new(visible(&case.name), status);
            test_case
                .set_classname(visible(&case.classname))
                .set_time(duration(case.time_seconds));
            if let Some(system_out) = &case.system_out {
                test_case.set_system_out(visible(system_out));
            }
            suite.add_test_case(test_case);
        }
        let mut report = quick_junit::Report::new("sigwho");
        report.set_time(time).add_test_suite(suite);
        // Writing into a String cannot fail.
        report.to_string().unwrap_or_default()
    }
}

fn duration(seconds: f64) -> std::time::Duration {
    if seconds.is_finite() && seconds > 0.0 {
        std::time::Duration::from_secs_f64(seconds)
    } else {
        std::time::Duration::ZERO
    }
}

/// Characters XML 1.0 allows at all (its `Char` production); Rust strings cannot hold
/// surrogates, so what is left to exclude is most C0 controls, U+FFFE and U+FFFF.
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// `value` with what XML 1.0 cannot carry shown as escapes (`\u{1b}`): quick-junit (and
/// quick-xml) escape markup, but would drop control characters and ANSI sequences
/// silently, and a command line that held them should still say so.
#[must_use]
pub fn visible(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if allowed(c) {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    out
}

/// A process a test case is about.
struct Entry<'r> {
    pid: u32,
    name: String,
    killed: Option<&'r Killed>,
    unexpected: Vec<&'r SignalReport>,
}

/// One test case per process that died of a signal or received an unexpected one,
/// plus the command's own (passing when neither happened to it).
#[must_use]
pub fn suite(run: &RunView<'_>, outcome: &Outcome) -> Suite {
    let cmd_key = run.cmd.unwrap_or(ProcKey {
        pid: 0,
        start_ticks: 0,
    });
    let cases = entries(run, cmd_key)
        .into_iter()
        .map(|(key, entry)| case(run, outcome, &entry, key == cmd_key))
        .collect();
    Suite {
        name: format!("sigwho run: {}", command_text(run)),
        timestamp: run.started_at.chars().take(19).collect(),
        time_seconds: outcome.duration.as_secs_f64(),
        properties: vec![
            ("command".to_owned(), command_text(run)),
            ("exit_status".to_owned(), outcome.exit_status.to_string()),
            ("signals_seen".to_owned(), run.signals_seen.to_string()),
            ("unexpected".to_owned(), run.unexpected.to_string()),
            ("lost".to_owned(), run.lost.to_string()),
        ],
        cases,
    }
}

/// The processes with something to report, the command first, then in the order they
/// first appear.
fn entries<'r>(run: &RunView<'r>, cmd_key: ProcKey) -> Vec<(ProcKey, Entry<'r>)> {
    let mut order: Vec<ProcKey> = vec![cmd_key];
    let mut entries: HashMap<ProcKey, Entry> = HashMap::new();
    entries.insert(
        cmd_key,
        Entry {
            pid: cmd_key.pid,
            name: command_text(run),
            killed: None,
            unexpected: Vec::new(),
        },
    );
    for r in run.unexpected_reports {
        let (Some(key), Some(target)) = (r.keys.target, r.target.as_ref()) else {
            continue;
        };
        entries
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                Entry {
                    pid: target.pid,
                    name: name_of(&target.argv, &target.comm),
                    killed: None,
                    unexpected: Vec::new(),
                }
            })
            .unexpected
            .push(r);
    }
    for killed in run.killed {
        let Some(key) = killed.exit.key else { continue };
        entries
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                Entry {
                    pid: killed.exit.pid,
                    name: name_of(&killed.argv, &killed.exit.comm),
                    killed: None,
                    unexpected: Vec::new(),
                }
            })
            .killed = Some(killed);
    }
    order
        .into_iter()
        .filter_map(|key| entries.remove(&key).map(|entry| (key, entry)))
        .collect()
}

/// What a case says: its message parts, the failure's kind and its details.
#[derive(Default)]
struct Findings {
    message: Vec<String>,
    kind: String,
    text: String,
}

fn case(run: &RunView<'_>, outcome: &Outcome, entry: &Entry<'_>, is_cmd: bool) -> Case {
    let name = if entry.pid == 0 {
        entry.name.clone()
    } else {
        format!("{} (pid {})", entry.name, entry.pid)
    };
    let mut findings = Findings::default();
    let mut failed = !entry.unexpected.is_empty();
    if let Some(killed) = entry.killed {
        failed |= !killed.expected;
        death(run, killed, &mut findings);
    }
    let killer_time = entry
        .killed
        .and_then(|k| k.by.as_ref())
        .map(|r| r.keys.time_ns);
    let others: Vec<&SignalReport> = entry
        .unexpected
        .iter()
        .copied()
        .filter(|r| Some(r.keys.time_ns) != killer_time)
        .collect();
    unexpected(run, &others, &mut findings);
    let mut system_out = is_cmd.then(|| {
        format!(
            "{}; {} signal(s) to its processes, {} unexpected",
            command_status(outcome),
            run.signals_seen,
            run.unexpected
        )
    });
    let Findings {
        message,
        kind,
        text,
    } = findings;
    if !failed && !text.is_empty() {
        let note = format!("{}\n{text}", message.join("; "));
        system_out = Some(match system_out {
            Some(before) => format!("{before}\n{note}"),
            None => note,
        });
    }
    let failure = failed.then(|| Failure {
        message: message.join("; "),
        kind,
        text,
    });
    Case {
        name,
        classname: if is_cmd {
            "sigwho.command".to_owned()
        } else {
            "sigwho.process".to_owned()
        },
        time_seconds: 0.0,
        failure,
        system_out,
    }
}

/// A process that died of a signal: who sent it, why, and both reports.
fn death(run: &RunView<'_>, killed: &Killed, findings: &mut Findings) {
    let signal = killed.exit.signal.clone().unwrap_or_default();
    let mut part = format!("killed by {signal}");
    if let Some(by) = &killed.by {
        let _ = write!(part, " from {}", process_brief_with_argv(&by.sender));
        let chain = sender_chain(run, by);
        if !chain.is_empty() {
            let _ = write!(part, "; sender's parents: {chain}");
        }
        if !by.cause.is_empty() {
            let _ = write!(part, "; cause chain: {}", cause_chain(by));
        }
    }
    if killed.expected {
        part.push_str(" (an allowed signal)");
    }
    findings.message.push(part);
    findings.kind = signal;
    findings
        .text
        .push_str(&text::report(&Report::Exit(killed.exit.clone())));
    if let Some(by) = &killed.by {
        findings.text.push_str(&junit_text(run, by));
    }
}

/// The unexpected signals a process got (its killer apart): the first in the message,
/// the first few in full.
fn unexpected(run: &RunView<'_>, others: &[&SignalReport], findings: &mut Findings) {
    let Some(first) = others.first() else {
        return;
    };
    let mut part = format!(
        "unexpected {} from {}",
        first.signal,
        process_brief_with_argv(&first.sender)
    );
    let chain = sender_chain(run, first);
    if !chain.is_empty() {
        let _ = write!(part, "; sender's parents: {chain}");
    }
    if !first.cause.is_empty() {
        let _ = write!(part, "; cause chain: {}", cause_chain(first));
    }
    if others.len() > 1 {
        let _ = write!(part, " (+{} more unexpected)", others.len() - 1);
    }
    findings.message.push(part);
    if findings.kind.is_empty() {
        findings.kind.clone_from(&first.signal);
    }
    for r in others.iter().take(SUMMARY_DETAILS) {
        findings.text.push_str(&junit_text(run, r));
    }
}

/// How the command ended, for its test case.
fn command_status(outcome: &Outcome) -> String {
    match (outcome.status, &outcome.error) {
        (_, Some(error)) => error.clone(),
        (Some(status), _) => match status.code() {
            Some(code) => format!("exited with code {code}"),
            None => format!(
                "killed by {}",
                signal_label(status.signal().unwrap_or_default())
            ),
        },
        (None, None) => "ended in an unknown way".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_stay_visible_and_markup_is_escaped() {
        assert_eq!(
            visible("esc\u{1b}[0m bell\u{7} nul\0"),
            "esc\\u{1b}[0m bell\\u{7} nul\\u{0}"
        );
        assert_eq!(
            visible("\u{fffe}\u{ffff}\u{fffd}é😀\t\n"),
            "\\u{fffe}\\u{ffff}\u{fffd}é😀\t\n"
        );
        let suite = Suite {
            name: "a<b>&\"c\" 'd'".into(),
            cases: vec![Case {
                name: "x]]>y \u{1b}[31mred".into(),
                classname: "sigwho".into(),
                ..Case::default()
            }],
            ..Suite::default()
        };
        let xml = suite.to_xml();
        assert!(
            xml.contains("name=\"a&lt;b&gt;&amp;&quot;c&quot; &apos;d&apos;\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"x]]&gt;y \\u{1b}[31mred\""), "{xml}");
    }

    #[test]
    fn counts_failures_and_closes_every_element() {
        let suite = Suite {
            name: "sigwho run: make <test>".into(),
            timestamp: "2026-01-02T03:04:05".into(),
            time_seconds: 1.5,
            properties: vec![("exit_status".into(), "143".into())],
            cases: vec![
                Case {
                    name: "make test".into(),
                    classname: "sigwho".into(),
                    ..Case::default()
                },
                Case {
                    name: "sleep 30 (pid 7)".into(),
                    classname: "sigwho".into(),
                    failure: Some(Failure {
                        message: "killed by SIGTERM".into(),
                        kind: "SIGTERM".into(),
                        text: "details & more".into(),
                    }),
                    system_out: Some("out".into()),
                    ..Case::default()
                },
            ],
        };
        let xml = suite.to_xml();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains("name=\"sigwho run: make &lt;test&gt;\""),
            "{xml}"
        );
        assert!(xml.contains("<testcase name=\"make test\" classname=\"sigwho\" time=\"0.000\">"));
        assert!(
            xml.contains("timestamp=\"2026-01-02T03:04:05.000+00:00\""),
            "{xml}"
        );
        assert!(xml.contains(
            "<failure message=\"killed by SIGTERM\" type=\"SIGTERM\">details &amp; more</failure>"
        ));
        assert!(xml.contains("time=\"1.500\""));
        assert!(
            xml.trim_end().ends_with("</testsuite>\n</testsuites>"),
            "{xml}"
        );
        assert_eq!(xml.matches("<testcase").count(), 2);
        assert_eq!(xml.matches("</testcase>").count(), 2);
    }
}
