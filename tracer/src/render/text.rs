//! Reports as text, as the live view prints them (and the journal stores them).

use std::fmt::Write as _;

use crate::analysis::report::{AncestorReport, ExitReport, ProcessReport, Report, SignalReport};

/// A report as the live view prints it: lines ending in newlines.
#[must_use]
pub fn report(report: &Report) -> String {
    match report {
        Report::Signal(r) => signal_text(r),
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

fn process_line(p: &ProcessReport) -> String {
    let mut line = format!("pid {} ({})", p.pid, p.comm);
    if p.tid != p.pid {
        let _ = write!(line, " thread {}", p.tid);
    }
    if let Some(uid) = p.uid {
        let _ = write!(line, " uid {uid}");
    }
    if let Some(exe) = &p.exe {
        let _ = write!(line, " exe {exe}");
    }
    line
}

fn ancestry_lines(out: &mut String, ancestry: &[AncestorReport]) {
    for (depth, a) in ancestry.iter().enumerate() {
        let indent = "  ".repeat(depth);
        let argv = if a.argv.is_empty() {
            String::new()
        } else {
            format!(": {}", shell_join(&a.argv))
        };
        let _ = writeln!(out, "      {indent}<- {} ({}){argv}", a.pid, a.comm);
    }
}

fn signal_text(r: &SignalReport) -> String {
    let mut out = String::new();
    let how = match (&r.call, r.origin) {
        (Some(call), _) => call.clone(),
        (None, origin) => origin.to_string(),
    };
    let result = match &r.errno {
        Some(errno) => format!("{} ({errno})", r.result),
        None => r.result.to_string(),
    };
    let _ = write!(
        out,
        "{} {} ({}) {} [{}] {}",
        r.time, r.signal, r.signo, how, r.code, result
    );
    // A storm's repeats of a report printed before: one line, `xN` (the exact count).
    if let Some(repeats) = &r.repeats {
        let target = r
            .target
            .as_ref()
            .map_or(String::new(), |t| format!(" -> pid {} ({})", t.pid, t.comm));
        let _ = writeln!(
            out,
            " x{} until {}: pid {} ({}){target}, as above",
            repeats.count, repeats.last_time, r.sender.pid, r.sender.comm
        );
        return out;
    }
    out.push('\n');
    if let Some(value) = r.value {
        let _ = writeln!(out, "  value:  {value}");
    }
    if let Some(addr) = &r.fault_addr {
        let _ = writeln!(out, "  fault address: {addr}");
    }
    let _ = writeln!(out, "  sender: {}", process_line(&r.sender));
    if !r.sender.argv.is_empty() {
        let _ = writeln!(out, "    argv: {}", shell_join(&r.sender.argv));
    }
    ancestry_lines(&mut out, &r.sender.ancestry);
    if let Some(target) = &r.target {
        let _ = writeln!(out, "  target: {}", process_line(target));
        if !target.argv.is_empty() {
            let _ = writeln!(out, "    argv: {}", shell_join(&target.argv));
        }
        ancestry_lines(&mut out, &target.ancestry);
    }
    let _ = writeln!(
        out,
        "  why:    {} (sender is the target's {})",
        r.origin_class, r.relation
    );
    if !r.cause.is_empty() {
        let _ = writeln!(out, "  cause chain (nearest first):");
        let _ = writeln!(
            out,
            "    {} ({}) <- {} from {} ({})",
            r.target.as_ref().map_or(0, |t| t.pid),
            r.target.as_ref().map_or("", |t| t.comm.as_str()),
            r.signal,
            r.sender.pid,
            r.sender.comm
        );
        for (depth, cause) in r.cause.iter().enumerate() {
            let argv = if cause.sender.argv.is_empty() {
                String::new()
            } else {
                format!(": {}", shell_join(&cause.sender.argv))
            };
            let _ = writeln!(
                out,
                "    {}  <- {} at {} from {} ({}){argv}",
                "  ".repeat(depth + 1),
                cause.signal,
                cause.time,
                cause.sender.pid,
                cause.sender.comm,
            );
        }
        let root = &r.root_sender;
        let _ = writeln!(
            out,
            "  root sender: {} ({}) {}",
            root.pid,
            root.comm,
            shell_join(&root.argv)
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
        assert!(text.contains(" x123456 until T9: pid 40 "), "{text}");
    }
}
