//! Reports as text, as the live view prints them (and the journal stores them).

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicUsize, Ordering},
};

use crate::{
    analysis::{
        classify::Relation,
        report::{ExitReport, ProcessReport, Report, SignalReport},
    },
    render::tree,
};

/// Columns text reports on stdout may use; 0 for no limit (`--wide`).
static WIDTH: AtomicUsize = AtomicUsize::new(DEFAULT_WIDTH);

/// The width when stdout is not a terminal.
pub const DEFAULT_WIDTH: usize = 100;

/// Decides once, at start-up, how wide text reports on stdout may be: `None` for
/// `--wide` (whole lines), else the terminal's width.
pub fn init_width(width: Option<usize>) {
    WIDTH.store(width.unwrap_or(0), Ordering::Relaxed);
}

/// The width [`init_width`] set (100 columns unless told otherwise).
#[must_use]
pub fn width() -> Option<usize> {
    Some(WIDTH.load(Ordering::Relaxed)).filter(|&w| w > 0)
}

/// A report whole, as the journal stores it and `--wide` prints it: lines ending in
/// newlines, every ancestor, every argument.
#[must_use]
pub fn report(report: &Report) -> String {
    whole(report, true)
}

/// A report as a terminal `width` columns wide shows it (see [`fit`]); `None` is
/// [`report`].
#[must_use]
pub fn render(report: &Report, width: Option<usize>) -> String {
    match width {
        None => self::report(report),
        Some(_) => fit(&whole(report, false), width),
    }
}

fn whole(report: &Report, wide: bool) -> String {
    match report {
        Report::Signal(r) => signal_text_with(r, wide),
        Report::Exit(r) => exit_text(r),
        Report::Lost(r) => format!(
            "{} LOST {} record(s): the ring buffer was full ({})\n",
            r.time,
            r.count,
            r.by_kind
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Shell-like quoting so that an argv reads unambiguously on one line.
#[must_use]
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text reports fitted to a terminal: each line at most `width` characters, long
/// command lines cut with `…`, hints wrapped (they are sentences); `None` keeps every
/// line whole (`--wide`). The journal stores reports whole; this runs as they are
/// printed.
#[must_use]
pub fn fit(text: &str, width: Option<usize>) -> String {
    let Some(width) = width.map(|w| w.max(20)) else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        if body.chars().count() <= width {
            out.push_str(body);
        } else if body.trim_start().starts_with("hint [") {
            wrap(&mut out, body, width);
        } else {
            out.extend(body.chars().take(width - 1));
            out.push('…');
        }
        out.push_str(newline);
    }
    out
}

/// Word-wraps `line` at `width`, continuation lines indented under the text.
fn wrap(out: &mut String, line: &str, width: usize) {
    const INDENT: &str = "      ";
    let lead = line.len() - line.trim_start().len();
    out.push_str(&line[..lead]);
    let mut used = lead;
    let mut first = true;
    for word in line[lead..].split(' ').filter(|w| !w.is_empty()) {
        let len = word.chars().count();
        if !first && used + 1 + len > width {
            out.push('\n');
            out.push_str(INDENT);
            used = INDENT.len();
        } else if !first {
            out.push(' ');
            used += 1;
        }
        first = false;
        let room = width.saturating_sub(used).max(2);
        if len > room {
            out.extend(word.chars().take(room - 1));
            out.push('…');
            used = width;
        } else {
            out.push_str(word);
            used += len;
        }
    }
}

/// `comm pid` (and the thread, when it is not the main one): how the header names a
/// process.
fn short(p: &ProcessReport) -> String {
    if p.tid == p.pid {
        format!("{} {}", p.comm, p.pid)
    } else {
        format!("{} {} thread {}", p.comm, p.pid, p.tid)
    }
}

/// `HH:MM:SS.mmm` of an RFC 3339 time (the whole text when it is not one).
fn clock_time(time: &str) -> &str {
    time.get(11..23).unwrap_or(time)
}

/// What the text shows of a process's place: namespace pid, container, unit, pod; the
/// cgroup path when it names none of them. `None` when nothing is known.
fn placement(p: &ProcessReport) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(ns_pid) = p.ns_pid {
        parts.push(format!("ns pid {ns_pid}"));
    }
    let id = &p.identity;
    if let Some(container) = &id.container_id {
        parts.push(format!(
            "container {}",
            container.get(..12).unwrap_or(container)
        ));
    }
    match (&id.pod_namespace, &id.pod_name, &id.pod_uid) {
        (Some(ns), Some(name), _) => parts.push(format!("pod {ns}/{name}")),
        (None, Some(name), _) => parts.push(format!("pod {name}")),
        (_, None, Some(uid)) => parts.push(format!("pod uid {uid}")),
        _ => {}
    }
    if let Some(unit) = &id.systemd_unit {
        parts.push(format!("unit {unit}"));
    }
    let named = id.container_id.is_some() || id.systemd_unit.is_some() || id.pod_uid.is_some();
    if !named && let Some(cgroup) = &p.cgroup {
        parts.push(format!("cgroup {cgroup}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// "an unrelated process", "its parent", ...: the sender as the target sees it.
fn sender_is(relation: Relation) -> &'static str {
    match relation {
        Relation::SelfSignal => "the target itself",
        Relation::Parent => "its parent",
        Relation::Ancestor => "an ancestor",
        Relation::Child => "its child",
        Relation::Descendant => "a descendant",
        Relation::Sibling => "a sibling (same parent)",
        Relation::Unrelated => "an unrelated process",
    }
}

/// The first line: time, signal, result, sender → target, then the call (who and whom
/// first: a narrow terminal cuts the call, never them). A storm's repeats of a report
/// printed before are that one line, with the exact count before the call.
fn header(r: &SignalReport) -> String {
    let how = match (&r.call, r.origin) {
        (Some(call), _) => call.clone(),
        (None, origin) => origin.to_string(),
    };
    let result = match &r.errno {
        Some(errno) => format!("{} ({errno})", r.result),
        None => r.result.to_string(),
    };
    let target = match &r.target {
        Some(target) => short(target),
        None => r
            .requested
            .map_or_else(|| "?".to_owned(), |pid| format!("pid {pid}")),
    };
    let code = if r.call.is_some() && matches!(r.code.as_str(), "SI_USER" | "SI_TKILL" | "SI_QUEUE")
    {
        String::new()
    } else {
        format!(" [{}]", r.code)
    };
    let who = format!(
        "{} {} {}: {} → {}",
        clock_time(&r.time),
        r.signal,
        result,
        short(&r.sender),
        target
    );
    match &r.repeats {
        Some(repeats) => format!(
            "{who} x{} until {}, as above: {how}{code}",
            repeats.count,
            clock_time(&repeats.last_time)
        ),
        None => format!("{who} by {how}{code}"),
    }
}

/// A signal report; `wide` keeps every common ancestor in the tree.
fn signal_text_with(r: &SignalReport, wide: bool) -> String {
    let mut out = header(r);
    out.push('\n');
    if r.repeats.is_some() {
        return out;
    }
    if let Some(value) = r.value {
        let _ = writeln!(out, "  value:  {value}");
    }
    if let Some(addr) = &r.fault_addr {
        let _ = writeln!(out, "  fault address: {addr}");
    }
    for line in tree::lines(r, wide) {
        let _ = writeln!(out, "{line}");
    }
    let sender_place = placement(&r.sender);
    let target_place = r.target.as_deref().and_then(placement);
    if sender_place.is_some() && sender_place == target_place {
        let _ = writeln!(out, "  where:  {} (both)", sender_place.unwrap_or_default());
    } else {
        if let Some(place) = sender_place {
            let _ = writeln!(out, "  sender: {place}");
        }
        if let Some(place) = target_place {
            let _ = writeln!(out, "  target: {place}");
        }
    }
    let _ = writeln!(
        out,
        "  why:    {}, sent by {}",
        r.origin_class,
        sender_is(r.relation)
    );
    for (n, cause) in r.cause.iter().enumerate() {
        let label = if n == 0 { "cause: " } else { "       " };
        let _ = writeln!(
            out,
            "  {label} {} {} got {} at {} from {} {}: {}",
            cause.target.comm,
            cause.target.pid,
            cause.signal,
            clock_time(&cause.time),
            cause.sender.comm,
            cause.sender.pid,
            tree::command_line(&cause.sender.comm, &cause.sender.argv),
        );
    }
    if !r.cause.is_empty() {
        let root = &r.root_sender;
        let _ = writeln!(
            out,
            "  root sender: {} {}: {}",
            root.comm,
            root.pid,
            tree::command_line(&root.comm, &root.argv)
        );
    }
    if let Some(e) = &r.escalation {
        let _ = writeln!(
            out,
            "  escalation: {} from the same sender {:.1}s earlier",
            e.previous_signal, e.after_seconds
        );
    }
    for hint in &r.hints {
        let _ = writeln!(out, "  hint [{}]: {}", hint.id, hint.text);
    }
    out
}

fn exit_text(r: &ExitReport) -> String {
    match (r.exit_code, &r.signal) {
        (Some(code), _) => format!(
            "{} EXIT pid {} ({}) exited with code {code}\n",
            r.time, r.pid, r.comm
        ),
        (None, Some(signal)) => format!(
            "{} EXIT pid {} ({}) was killed by {signal} ({}){}\n",
            r.time,
            r.pid,
            r.comm,
            r.signo.unwrap_or_default(),
            if r.core_dumped == Some(true) {
                ", core dumped"
            } else {
                ""
            }
        ),
        (None, None) => format!("{} EXIT pid {} ({})\n", r.time, r.pid, r.comm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        let argv: Vec<String> = ["kill", "-TERM", "-4242", "a b", "it's", ""]
            .map(String::from)
            .to_vec();
        assert_eq!(shell_join(&argv), r"kill -TERM -4242 'a b' 'it'\''s' ''");
    }

    #[test]
    fn exit_text_names_signal_and_core() {
        let report = ExitReport {
            event: "exit",
            time: "T".into(),
            pid: 7,
            comm: "x".into(),
            exit_code: None,
            signal: Some("SIGSEGV".into()),
            signo: Some(11),
            core_dumped: Some(true),
            key: None,
        };
        assert_eq!(
            self::report(&Report::Exit(report.clone())),
            "T EXIT pid 7 (x) was killed by SIGSEGV (11), core dumped\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&crate::render::json::report(&Report::Exit(report))).unwrap();
        assert_eq!(json["event"], "exit");
        assert_eq!(json["signal"], "SIGSEGV");
        assert_eq!(json["core_dumped"], true);
        assert!(json.get("exit_code").is_none());
    }

    #[test]
    fn repeats_are_one_line_with_their_exact_count() {
        let mut signal = crate::analysis::report::fixtures::signal(
            10,
            40,
            50,
            crate::analysis::classify::OriginClass::Explicit,
        );
        signal.repeats = Some(crate::analysis::report::Repeated {
            count: 123_456,
            first_time: "T".into(),
            last_time: "T9".into(),
            last_ns: 9,
        });
        let text = self::report(&Report::Signal(Box::new(signal)));
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(" x123456 until T9, as above: "), "{text}");
        // Who sent to whom stays on the line, as in the report it repeats.
        assert!(text.contains("40") && text.contains(" → "), "{text}");
    }
}
