//! What `sigwho run` prints when the command is done: the summary on stderr, GitHub
//! Actions' `::warning` annotations, and the summary object that ends --report. What a
//! run saw comes in a [`RunView`], filled by the run mode.

use std::{fmt::Write as _, time::Duration};

use serde::Serialize;

use crate::{
    analysis::{
        classify::Relation,
        report::{AncestorReport, ExitReport, ProcessReport, Report, SignalReport},
    },
    model::{clock, lineage::ProcKey, signals::signal_label},
    render::text::{self, shell_join},
};

/// Unexpected signals the text summary details.
pub const SUMMARY_DETAILS: usize = 20;
/// `::warning` annotations at most (GitHub shows 10 per step).
const ANNOTATIONS: usize = 10;

/// What a run saw, as its outputs show it.
pub struct RunView<'a> {
    /// The command line, masked as reports are.
    pub command: &'a [String],
    /// When tracing began (RFC 3339).
    pub started_at: &'a str,
    /// The command's process, once started.
    pub cmd: Option<ProcKey>,
    /// The expected signals (--allow), by name.
    pub allowed: Vec<String>,
    pub signals_seen: u64,
    pub unexpected: u64,
    pub failed: u64,
    pub lost: u64,
    /// The first unexpected signals, and failed attempts, in full.
    pub unexpected_reports: &'a [SignalReport],
    pub failed_reports: &'a [SignalReport],
    /// The first processes of the tree that died of a signal, in full.
    pub killed: &'a [Killed],
    pub killed_count: u64,
    /// The signal that killed the command, when sigwho saw it.
    pub cmd_killer: Option<&'a SignalReport>,
    /// sigwho's own pid: ancestries are shown up to it (what is above is the CI
    /// runner's business).
    pub sigwho_pid: u32,
}

/// A process of the tree that a signal killed.
pub struct Killed {
    pub exit: ExitReport,
    pub argv: Vec<String>,
    /// The last signal of that number it received, when sigwho saw it.
    pub by: Option<SignalReport>,
    /// The fatal signal is in the allow list.
    pub expected: bool,
}

/// How the command ended, as a wait status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal, when one killed it.
    pub signo: Option<i32>,
    pub core: bool,
}

impl Status {
    #[must_use]
    pub fn code(&self) -> Option<i32> {
        self.exit_code
    }

    #[must_use]
    pub fn signal(&self) -> Option<i32> {
        self.signo
    }

    #[must_use]
    pub fn core_dumped(&self) -> bool {
        self.core
    }
}

/// A signal sigwho itself received during the run, and what it did about it.
pub struct Interrupt {
    pub signo: i32,
    pub sender_pid: u32,
    /// The signal and its sender in words (`SIGTERM from pid 7 (kill)`).
    pub description: String,
    pub forwarded: bool,
    pub action: &'static str,
}

/// How the run went.
pub struct Outcome {
    pub pid: Option<u32>,
    pub status: Option<Status>,
    /// sigwho's exit status before its own verdicts: the command's, as a shell shows it.
    pub exit_status: i32,
    pub duration: Duration,
    /// Why the command did not start.
    pub error: Option<String>,
    pub interrupted: Vec<Interrupt>,
    pub tracing_error: Option<String>,
}

pub fn summary_text(run: &RunView<'_>, outcome: &Outcome, fail_on_signal: bool) -> String {
    let mut out = String::new();
    if outcome.error.is_some() {
        // The command never ran; the error was printed already.
        return out;
    }
    let secs = outcome.duration.as_secs_f64();
    let ended = how_it_ended(run, outcome);
    let pid = outcome
        .pid
        .map_or_else(String::new, |p| format!(" (pid {p})"));
    let _ = writeln!(
        out,
        "sigwho: `{}`{pid} {ended} (traced for {secs:.2} s)",
        command_text(run)
    );
    for interrupt in &outcome.interrupted {
        let _ = writeln!(
            out,
            "sigwho: received {}; {}",
            interrupt.description, interrupt.action
        );
    }
    let allowed = run.allowed.clone();
    let allowed = if allowed.is_empty() {
        "self-sent".to_owned()
    } else {
        format!("{} and self-sent", allowed.join(", "))
    };
    let _ = writeln!(
        out,
        "sigwho: {} signal(s) to its processes, {} unexpected (expected: {allowed})",
        run.signals_seen, run.unexpected
    );
    for report in run.unexpected_reports.iter().take(SUMMARY_DETAILS) {
        describe_signal(run, &mut out, report);
    }
    if run.unexpected > SUMMARY_DETAILS as u64 {
        let _ = writeln!(
            out,
            "sigwho: ... and {} more unexpected signal(s) (all are in --report)",
            run.unexpected - SUMMARY_DETAILS as u64
        );
    }
    failed_and_killed(run, &mut out);
    if run.lost > 0 {
        let _ = writeln!(
            out,
            "sigwho: warning: {} record(s) lost (the ring buffer was full): some signals may be missing",
            run.lost
        );
    }
    if fail_on_signal {
        let _ = writeln!(
            out,
            "sigwho: exit status 1: unexpected signal(s) although the command succeeded (--fail-on-signal)"
        );
    }
    out
}

/// "exited with code 3", "was killed by SIGTERM from pid 7 (kill) (status 143)".
fn how_it_ended(run: &RunView<'_>, outcome: &Outcome) -> String {
    match (outcome.status, &outcome.error) {
        (_, Some(error)) => error.clone(),
        (Some(status), _) => {
            if let Some(code) = status.code() {
                format!("exited with code {code}")
            } else {
                let signo = status.signal().unwrap_or_default();
                let by = run.cmd_killer.as_ref().map_or_else(String::new, |r| {
                    format!(" from {}", process_brief(&r.sender))
                });
                let core = if status.core_dumped() {
                    ", core dumped"
                } else {
                    ""
                };
                format!(
                    "was killed by {}{by}{core} (status {})",
                    signal_label(signo),
                    outcome.exit_status
                )
            }
        }
        (None, None) => "ended in an unknown way".to_owned(),
    }
}

/// The failed attempts and the processes that died of a signal, for the summary.
fn failed_and_killed(run: &RunView<'_>, out: &mut String) {
    if run.failed > 0 {
        let _ = writeln!(
            out,
            "sigwho: {} failed attempt(s) to signal its processes:",
            run.failed
        );
        for report in run.failed_reports.iter().take(SUMMARY_DETAILS) {
            let _ = writeln!(
                out,
                "  {} by {}: {}",
                report.call.as_deref().unwrap_or(&report.signal),
                process_brief(&report.sender),
                report.errno.as_deref().unwrap_or("failed")
            );
        }
    }
    if run.killed_count > 0 {
        let _ = writeln!(
            out,
            "sigwho: {} process(es) died of a signal:",
            run.killed_count
        );
        for killed in run.killed.iter().take(SUMMARY_DETAILS) {
            let _ = writeln!(out, "  {}", killed_line(killed));
        }
        if run.killed_count > SUMMARY_DETAILS as u64 {
            let _ = writeln!(
                out,
                "  ... and {} more",
                run.killed_count - SUMMARY_DETAILS as u64
            );
        }
    }
}

/// One unexpected signal for the text summary: who to whom, the sender's chain,
/// the cause chain and hints.
pub fn describe_signal(run: &RunView<'_>, out: &mut String, r: &SignalReport) {
    let target = r
        .target
        .as_deref()
        .map_or_else(|| "an unknown process".to_owned(), process_brief_with_argv);
    let _ = writeln!(out, "sigwho: unexpected {} to {target}", r.signal);
    let how = r.call.clone().unwrap_or_else(|| r.origin.to_string());
    let relation = match r.relation {
        Relation::Unrelated => "unrelated sender".to_owned(),
        Relation::SelfSignal => "sent to itself".to_owned(),
        relation => format!("sender is its {relation}"),
    };
    let _ = writeln!(
        out,
        "  from {} [{how}, {}, {}, {relation}]",
        process_brief_with_argv(&r.sender),
        r.origin_class,
        r.result,
    );
    let chain = sender_chain(run, r);
    if !chain.is_empty() {
        let _ = writeln!(out, "  sender's parents: {chain}");
    }
    if !r.cause.is_empty() {
        let _ = writeln!(out, "  cause chain: {}", cause_chain(r));
    }
    for hint in &r.hints {
        let _ = writeln!(out, "  hint [{}]: {}", hint.id, hint.text);
    }
}

/// The sender's ancestry up to the command (or sigwho) when it is in the tree, else
/// a few generations.
#[must_use]
pub fn sender_chain(run: &RunView<'_>, r: &SignalReport) -> String {
    let stop = [run.cmd.map(|k| k.pid), Some(run.sigwho_pid)];
    let mut parts = Vec::new();
    for ancestor in &r.sender.ancestry {
        parts.push(ancestor_brief(ancestor));
        if stop.contains(&Some(ancestor.pid)) || parts.len() >= 5 {
            break;
        }
    }
    parts.join(" <- ")
}

pub fn annotations(run: &RunView<'_>) -> String {
    let mut out = String::new();
    for r in run.unexpected_reports.iter().take(ANNOTATIONS) {
        let target = r
            .target
            .as_deref()
            .map_or_else(|| "?".to_owned(), process_brief);
        let mut message = format!(
            "{} to {target} from {}",
            r.signal,
            process_brief_with_argv(&r.sender)
        );
        let chain = sender_chain(run, r);
        if !chain.is_empty() {
            let _ = write!(message, "\nsender's parents: {chain}");
        }
        if !r.cause.is_empty() {
            let _ = write!(message, "\ncause chain: {}", cause_chain(r));
        }
        for hint in &r.hints {
            let _ = write!(message, "\nhint [{}]: {}", hint.id, hint.text);
        }
        let _ = writeln!(out, "::warning title=sigwho::{}", annotation_data(&message));
    }
    if run.unexpected > ANNOTATIONS as u64 {
        let _ = writeln!(
            out,
            "::warning title=sigwho::{}",
            annotation_data(&format!(
                "{} more unexpected signal(s); see the job log or the --report file",
                run.unexpected - ANNOTATIONS as u64
            ))
        );
    }
    out
}

pub fn summary_json(run: &RunView<'_>, outcome: &Outcome, code: i32) -> String {
    let status = outcome.status;
    let summary = SummaryJson {
        event: "summary",
        time: time_now(),
        started: run.started_at,
        command: run.command,
        pid: outcome.pid,
        exit_status: outcome.exit_status,
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()).map(signal_label),
        signo: status.and_then(|s| s.signal()),
        core_dumped: status
            .filter(|s| s.signal().is_some())
            .map(|s| s.core_dumped()),
        killed_by: run.cmd_killer.as_ref().map(|r| brief_process(&r.sender)),
        sigwho_exit_status: code,
        duration_seconds: outcome.duration.as_secs_f64(),
        signals_seen: run.signals_seen,
        unexpected: run.unexpected,
        failed_attempts: run.failed,
        killed_count: run.killed_count,
        killed: run
            .killed
            .iter()
            .map(|k| KilledJson {
                pid: k.exit.pid,
                comm: &k.exit.comm,
                argv: &k.argv,
                time: &k.exit.time,
                signal: k.exit.signal.clone().unwrap_or_default(),
                signo: k.exit.signo.unwrap_or_default(),
                core_dumped: k.exit.core_dumped.unwrap_or_default(),
                expected: k.expected,
                sender: k.by.as_ref().map(|r| brief_process(&r.sender)),
            })
            .collect(),
        lost: run.lost,
        allowed: run.allowed.clone(),
        interrupted: outcome
            .interrupted
            .iter()
            .map(|i| InterruptJson {
                signal: signal_label(i.signo),
                sender_pid: i.sender_pid,
                forwarded: i.forwarded,
            })
            .collect(),
        error: outcome
            .error
            .as_deref()
            .or(outcome.tracing_error.as_deref()),
    };
    serde_json::to_string(&summary).unwrap_or_default()
}

fn time_now() -> String {
    clock::rfc3339_nanos(clock::unix_now_ns())
}

#[must_use]
pub fn command_text(run: &RunView<'_>) -> String {
    shell_join(run.command)
}

/// A report as the live view prints it, for a JUnit failure's details: ancestries end
/// at sigwho (what is above it is the CI runner's business), or after a few generations
/// for processes outside the tree.
#[must_use]
pub fn junit_text(run: &RunView<'_>, report: &SignalReport) -> String {
    let mut report = report.clone();
    let me = run.sigwho_pid;
    for process in std::iter::once(&mut report.sender).chain(report.target.as_mut()) {
        let keep = process
            .ancestry
            .iter()
            .position(|a| a.pid == me)
            .map_or(5, |i| i + 1);
        std::sync::Arc::make_mut(process).ancestry.truncate(keep);
    }
    text::report(&Report::Signal(Box::new(report)))
}

/// A workflow command's message: `%`, CR and LF encoded as the runner expects.
#[must_use]
pub fn annotation_data(message: &str) -> String {
    message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A test case's name: the command line, shortened, else the process name.
pub(crate) fn name_of(argv: &[String], comm: &str) -> String {
    let name = if argv.is_empty() {
        comm.to_owned()
    } else {
        shell_join(argv)
    };
    shorten(&name, 200)
}

pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max_chars - 3).collect();
    short.push_str("...");
    short
}

pub(crate) fn process_brief(p: &ProcessReport) -> String {
    format!("pid {} ({})", p.pid, p.comm)
}

pub(crate) fn process_brief_with_argv(p: &ProcessReport) -> String {
    if p.argv.is_empty() {
        process_brief(p)
    } else {
        format!(
            "pid {} ({}) {}",
            p.pid,
            p.comm,
            shorten(&shell_join(&p.argv), 160)
        )
    }
}

fn ancestor_brief(a: &AncestorReport) -> String {
    format!("{} ({})", a.pid, a.comm)
}

pub(crate) fn cause_chain(r: &SignalReport) -> String {
    r.cause
        .iter()
        .map(|c| {
            let argv = if c.sender.argv.is_empty() {
                String::new()
            } else {
                format!(" {}", shorten(&shell_join(&c.sender.argv), 80))
            };
            format!(
                "it got {} from pid {} ({}){argv}",
                c.signal, c.sender.pid, c.sender.comm
            )
        })
        .collect::<Vec<_>>()
        .join(" <- ")
}

fn killed_line(killed: &Killed) -> String {
    let exit = &killed.exit;
    let mut line = format!("pid {} ({})", exit.pid, exit.comm);
    if !killed.argv.is_empty() {
        let _ = write!(line, " {}", shorten(&shell_join(&killed.argv), 120));
    }
    let _ = write!(line, ": {}", exit.signal.as_deref().unwrap_or("a signal"));
    if exit.core_dumped == Some(true) {
        line.push_str(" (core dumped)");
    }
    match &killed.by {
        Some(by) => {
            let _ = write!(line, " from {}", process_brief(&by.sender));
        }
        None => line.push_str(" (sender not seen)"),
    }
    if killed.expected {
        line.push_str(" [allowed]");
    }
    line
}

fn brief_process(p: &ProcessReport) -> BriefJson {
    BriefJson {
        pid: p.pid,
        comm: p.comm.clone(),
        exe: p.exe.clone(),
        argv: p.argv.clone(),
    }
}

#[derive(Serialize)]
struct BriefJson {
    pid: u32,
    comm: String,
    exe: Option<String>,
    argv: Vec<String>,
}

#[derive(Serialize)]
struct KilledJson<'a> {
    pid: u32,
    comm: &'a str,
    argv: &'a [String],
    time: &'a str,
    signal: String,
    signo: i32,
    core_dumped: bool,
    /// The fatal signal is in the allow list.
    expected: bool,
    sender: Option<BriefJson>,
}

#[derive(Serialize)]
struct InterruptJson {
    signal: String,
    sender_pid: u32,
    forwarded: bool,
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    event: &'static str,
    time: String,
    started: &'a str,
    command: &'a [String],
    pid: Option<u32>,
    exit_status: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signo: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    core_dumped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    killed_by: Option<BriefJson>,
    sigwho_exit_status: i32,
    duration_seconds: f64,
    signals_seen: u64,
    unexpected: u64,
    failed_attempts: u64,
    killed_count: u64,
    killed: Vec<KilledJson<'a>>,
    lost: u64,
    allowed: Vec<String>,
    interrupted: Vec<InterruptJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_encode_what_the_runner_would_read_as_syntax() {
        assert_eq!(annotation_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
    }
}
