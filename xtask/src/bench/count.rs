//! Counting what a tracer saw, from its output, once it has stopped: signals seen, and
//! what the tool itself says it lost.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::auditd;
use super::configs::Count;
use super::running::run_quiet;
use super::sys::SIGUSR1;
use super::tools::find_program;

/// Signals seen and lost, where the tool's output tells.
pub(super) fn count_events(
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
                // A storm's repeats: one object standing for `repeats.count` signals.
                Some("signal") => seen += repeats_in(line),
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

/// How many signals a sigwho signal object stands for: `repeats.count`, or 1. Parsed
/// only where the line has the field: the storm's first objects do not.
fn repeats_in(line: &[u8]) -> u64 {
    if !line.windows(10).any(|w| w == br#""repeats":"#) {
        return 1;
    }
    serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| {
            v.pointer("/repeats/count")
                .and_then(serde_json::Value::as_u64)
        })
        .unwrap_or(1)
}

pub(super) fn for_each_line(path: &Path, mut f: impl FnMut(&[u8])) -> Result<()> {
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
pub(super) fn json_event(line: &[u8]) -> Option<String> {
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
pub(super) fn names_both(line: &str, pid: &str, signo: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.contains(&pid) && words.contains(&signo)
}

/// bpftrace's "Lost N events" and libbpf-tools' "Lost N events on CPU #C!" (some
/// versions write "lost").
pub(super) fn lost_in(line: &str) -> u64 {
    line.strip_prefix("Lost ")
        .or_else(|| line.strip_prefix("lost "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(repeats_in(br#"{"event":"signal","signo":10}"#), 1);
        assert_eq!(
            repeats_in(
                br#"{"event":"signal","repeats":{"count":5000,"first_time":"a","last_time":"b"}}"#
            ),
            5000
        );
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
}
