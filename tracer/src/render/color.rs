//! `--color auto|always|never` for text reports on stdout. Reports are written as plain
//! text (the journal stores them so), and colour is laid over the finished text, line by
//! line, just before it is printed: the labels of report.rs's layout, signal names,
//! EXIT/LOST/GAP markers and hints. JSON is never coloured. The styles are anstyle's
//! and `auto` is anstream's terminal and environment check (the crates under clap).

use std::{
    borrow::Cow,
    ffi::OsStr,
    fmt::Write as _,
    sync::atomic::{AtomicBool, Ordering},
};

use anstyle::{AnsiColor, Reset, Style};

/// When text output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// When stdout is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always, even into a pipe or with `NO_COLOR` set.
    Always,
    /// Never.
    Never,
}

/// Whether to colour: an explicit choice beats `NO_COLOR` (no-color.org: command-line
/// arguments override it); `auto` colours only a terminal, and only without a non-empty
/// `NO_COLOR` or with TERM=dumb. [`init`] asks anstream for `auto` (the same rules, plus
/// `CLICOLOR`/`CLICOLOR_FORCE`); this is that rule for a given environment.
#[must_use]
pub fn decide(
    choice: ColorChoice,
    no_color: Option<&OsStr>,
    term: Option<&OsStr>,
    is_tty: bool,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let no_color = no_color.is_some_and(|v| !v.is_empty());
            let dumb = term.is_some_and(|t| t == "dumb");
            is_tty && !no_color && !dumb
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Decides once, at start-up, for stdout.
pub fn init(choice: ColorChoice) {
    let enabled = match choice {
        ColorChoice::Auto => !matches!(
            anstream::AutoStream::choice(&std::io::stdout()),
            anstream::ColorChoice::Never
        ),
        explicit => decide(explicit, None, None, false),
    };
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Report text as it should reach stdout: coloured when `init` said so.
pub fn for_stdout(text: &str) -> Cow<'_, str> {
    if ENABLED.load(Ordering::Relaxed) {
        Cow::Owned(paint(text))
    } else {
        Cow::Borrowed(text)
    }
}

const RESET: Reset = Reset;
const BOLD: Style = Style::new().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const MAGENTA: Style = AnsiColor::Magenta.on_default().bold();
const CYAN: Style = AnsiColor::Cyan.on_default();
const DIM: Style = Style::new().dimmed();

/// Labels of report.rs's signal layout, as they start a line (after the indent).
const LABELS: &[&str] = &[
    "sender:",
    "target:",
    "why:",
    "where:",
    "cause:",
    "value:",
    "fault address:",
    "cause chain (nearest first):",
    "root sender:",
    "escalation:",
    "argv:",
];

/// Colours a block of report text; lines it does not recognise pass unchanged.
#[must_use]
pub fn paint(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        paint_line(&mut out, body);
        out.push_str(newline);
    }
    out
}

fn paint_line(out: &mut String, line: &str) {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    if indent.is_empty() {
        // "TIME SIGNAL (N) ...", "TIME EXIT ...", "TIME LOST ...", "TIME GAP ...", or a
        // query's "pid N started ...: K signals" header.
        if line.starts_with("pid ") {
            let _ = write!(out, "{BOLD}{line}{RESET}");
            return;
        }
        let mut words = line.splitn(3, ' ');
        if let (Some(time), Some(second)) = (words.next(), words.next()) {
            let rest = words.next();
            let colour = match second {
                "EXIT" => Some(MAGENTA),
                "LOST" | "GAP" => Some(RED),
                s if s.starts_with("SIG") => Some(RED),
                _ => None,
            };
            if let Some(colour) = colour {
                let _ = write!(out, "{DIM}{time}{RESET} {colour}{second}{RESET}");
                if let Some(rest) = rest {
                    out.push(' ');
                    out.push_str(rest);
                }
                return;
            }
        }
        out.push_str(line);
        return;
    }
    if trimmed.starts_with("hint [") {
        let _ = write!(out, "{indent}{YELLOW}{trimmed}{RESET}");
        return;
    }
    if let Some(label) = LABELS.iter().find(|l| trimmed.starts_with(**l)) {
        let _ = write!(
            out,
            "{indent}{CYAN}{label}{RESET}{}",
            &trimmed[label.len()..]
        );
        return;
    }
    out.push_str(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str =
        "2026-11-26T10:00:00.000000000Z SIGTERM (15) kill(42, SIGTERM) [SI_USER] delivered
  sender: pid 7 (sh) uid 0 exe /bin/sh
    argv: sh -c 'kill 42'
      <- 1 (init)
  target: pid 42 (node)
  why:    explicit (sender is the target's parent)
  hint [systemd-stop]: the unit was stopped
2026-11-26T10:00:01.000000000Z EXIT pid 42 (node) was killed by SIGTERM (15)
";

    fn strip(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find('\x1b') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('m').expect("escape ends with m");
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn colour_only_adds_escapes() {
        let painted = paint(REPORT);
        assert_ne!(painted, REPORT);
        assert_eq!(strip(&painted), REPORT);
        assert_eq!(painted.lines().count(), REPORT.lines().count());
    }

    #[test]
    fn marks_signal_labels_hints_and_exit() {
        let painted = paint(REPORT);
        let lines: Vec<&str> = painted.lines().collect();
        assert!(
            lines[0].contains(&format!("{RED}SIGTERM{RESET}")),
            "{}",
            lines[0]
        );
        assert!(lines[1].starts_with(&format!("  {CYAN}sender:{RESET} pid 7")));
        assert!(lines[3].ends_with("<- 1 (init)") && !lines[3].contains('\x1b'));
        assert!(lines[6].contains(&YELLOW.to_string()), "{}", lines[6]);
        assert!(
            lines[7].contains(&format!("{MAGENTA}EXIT{RESET}")),
            "{}",
            lines[7]
        );
        assert_eq!(paint("plain words\n"), "plain words\n");
        assert_eq!(paint(""), "");
    }

    #[test]
    fn explicit_choice_beats_no_color_and_auto_needs_a_terminal() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        let xterm = Some(OsStr::new("xterm-256color"));
        assert!(decide(ColorChoice::Always, set, xterm, false));
        assert!(!decide(ColorChoice::Never, None, xterm, true));
        assert!(decide(ColorChoice::Auto, None, xterm, true));
        assert!(
            decide(ColorChoice::Auto, empty, xterm, true),
            "empty NO_COLOR is unset"
        );
        assert!(!decide(ColorChoice::Auto, set, xterm, true));
        assert!(!decide(ColorChoice::Auto, None, xterm, false));
        assert!(!decide(
            ColorChoice::Auto,
            None,
            Some(OsStr::new("dumb")),
            true
        ));
    }
}
