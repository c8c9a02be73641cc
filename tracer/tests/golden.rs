//! Golden text reports: the replay fixture's reports (tests/fixtures/replay, recorded
//! from real processes) rendered as a terminal 80 and 120 columns wide shows them, byte
//! for byte against reports.80.txt and reports.120.txt, and the on-call view's limits
//! checked on every one of them: no line wider than the terminal, a typical report
//! within 15 lines.
//!
//! `SIGWHO_BLESS=1 cargo test -p tracer --test golden` writes the golden files again
//! (reports.txt and reports.jsonl too) when the output is meant to change; the change
//! is then reviewed in their diff.

mod common;

use std::path::{Path, PathBuf};

use tracer::{
    analysis::{
        replay::{self, Capture},
        report::Report,
    },
    render::text,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/replay")
        .join(name)
}

fn reports() -> Vec<Report> {
    let path = fixture("capture.jsonl");
    let capture = std::fs::read_to_string(&path).unwrap();
    let capture = Capture::parse(&capture).expect("the capture parses");
    replay::replay(&capture).expect("the capture replays")
}

fn bless() -> bool {
    std::env::var_os("SIGWHO_BLESS").is_some_and(|v| v == "1")
}

#[track_caller]
fn check(name: &str, got: &str) {
    let path = fixture(name);
    if bless() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if let Some((line, got, want)) = common::first_difference(got, &want) {
        panic!(
            "{name} differs at line {line} (SIGWHO_BLESS=1 writes it again):\n got: {got}\nwant: {want}"
        );
    }
}

#[test]
fn reports_at_80_and_120_columns_match_their_golden_files() {
    let reports = reports();
    for width in [80, 120] {
        let text: String = reports
            .iter()
            .map(|r| text::render(r, Some(width)))
            .collect();
        for line in text.lines() {
            assert!(line.chars().count() <= width, "wider than {width}: {line}");
        }
        check(&format!("reports.{width}.txt"), &text);
    }
    if bless() {
        let json: String = reports
            .iter()
            .map(|r| tracer::render::json::report(r) + "\n")
            .collect();
        std::fs::write(fixture("reports.jsonl"), json).unwrap();
        let whole: String = reports.iter().map(text::report).collect();
        std::fs::write(fixture("reports.txt"), whole).unwrap();
    }
}

/// A report fits a screen: a signal between two processes of a shell script is at most
/// 15 lines, with its tree of both lineages and why.
#[test]
fn a_typical_report_fits_a_screen() {
    let mut signals = 0;
    for report in reports() {
        let Report::Signal(signal) = &report else {
            continue;
        };
        signals += 1;
        let text = text::render(&report, Some(80));
        if let Some(repeats) = &signal.repeats {
            // A storm's count: one line pointing at the report printed before it, whose
            // count survives the cut to 80 columns.
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(text.contains(&format!(" x{} ", repeats.count)), "{text}");
            continue;
        }
        // Hints are sentences, wrapped rather than cut: not counted.
        let lines = text
            .lines()
            .take_while(|l| !l.starts_with("  hint ["))
            .count();
        assert!(lines <= 15, "{lines} lines:\n{text}");
        assert!(text.contains("why:"), "{text}");
        assert!(text.contains(" PID START"), "{text}");
        let header = text.lines().next().unwrap();
        assert!(header.contains(&signal.signal), "{header}");
        assert!(header.contains(&signal.sender.pid.to_string()), "{header}");
        // The sender's and target's lines are marked in the tree.
        assert!(text.contains("sender ") || text.contains("both "), "{text}");
        if signal.target.is_some() && signal.keys.sender != signal.keys.target {
            assert!(text.contains("target "), "{text}");
        }
    }
    assert!(signals > 10, "{signals} signal reports");
}

/// --wide keeps whole lines: the longest argv of the fixture appears unshortened.
#[test]
fn wide_keeps_every_argument() {
    let reports = reports();
    let longest = reports
        .iter()
        .filter_map(|r| match r {
            Report::Signal(s) => Some(text::shell_join(&s.sender.argv)),
            _ => None,
        })
        .max_by_key(String::len)
        .unwrap();
    assert!(longest.len() > 80, "{longest}");
    let wide: String = reports.iter().map(|r| text::render(r, None)).collect();
    assert!(wide.contains(&longest), "{longest}");
    let narrow: String = reports.iter().map(|r| text::render(r, Some(80))).collect();
    assert!(!narrow.contains(&longest));
    assert!(narrow.contains('…'));
}
