//! `--redact REGEX`: masks secrets in command lines before a report is printed or stored.
//!
//! Command lines carry tokens and passwords (`--password=...`, URLs with credentials).
//! Every field that comes from one, or from a program path or process name, is masked:
//! argv of the sender, the target, their exec histories, ancestries and cause chains,
//! the root sender, and exe and comm alongside. Each argument is matched on its own, so
//! a pattern never spans two arguments.

use std::borrow::Cow;

use regex::Regex;

use crate::analysis::report::{AncestorReport, ExecReport, ProcessReport, Report};

/// What a masked part is replaced with.
pub const MASK: &str = "[redacted]";

#[derive(Debug, thiserror::Error)]
#[error("--redact {pattern:?}: {reason}")]
pub struct RedactError {
    pattern: String,
    reason: String,
}

/// The patterns of every --redact; empty masks nothing.
#[derive(Debug, Clone, Default)]
pub struct Redaction {
    patterns: Vec<Regex>,
}

impl Redaction {
    /// The masks for `patterns` (regular expressions).
    ///
    /// # Errors
    ///
    /// When a pattern is empty or not a valid regular expression.
    pub fn new(patterns: &[String]) -> Result<Self, RedactError> {
        let patterns = patterns
            .iter()
            .map(|pattern| {
                if pattern.is_empty() {
                    return Err(RedactError {
                        pattern: pattern.clone(),
                        reason: "an empty pattern would match everywhere".to_owned(),
                    });
                }
                Regex::new(pattern).map_err(|error| RedactError {
                    pattern: pattern.clone(),
                    // The regex crate's message is several lines with a caret diagram;
                    // its last line says what is wrong.
                    reason: error
                        .to_string()
                        .lines()
                        .rev()
                        .find(|line| !line.trim().is_empty())
                        .unwrap_or("invalid regex")
                        .trim()
                        .trim_start_matches("error: ")
                        .to_owned(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `text` with every match of every pattern replaced by [`MASK`].
    #[must_use]
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for pattern in &self.patterns {
            if let Cow::Owned(replaced) = pattern.replace_all(&out, regex::NoExpand(MASK)) {
                out = Cow::Owned(replaced);
            }
        }
        out
    }

    fn field(&self, value: &mut String) {
        if let Cow::Owned(masked) = self.text(value) {
            *value = masked;
        }
    }

    fn argv(&self, argv: &mut [String]) {
        for arg in argv {
            self.field(arg);
        }
    }

    /// `argv` masked, for command lines taken from the process table directly.
    #[must_use]
    pub fn argv_owned(&self, mut argv: Vec<String>) -> Vec<String> {
        self.argv(&mut argv);
        argv
    }

    fn exe(&self, exe: &mut Option<String>) {
        if let Some(exe) = exe {
            self.field(exe);
        }
    }

    fn ancestor(&self, a: &mut AncestorReport) {
        self.field(&mut a.comm);
        self.exe(&mut a.exe);
        self.argv(&mut a.argv);
    }

    pub fn process(&self, p: &mut ProcessReport) {
        if self.is_empty() {
            return;
        }
        self.field(&mut p.comm);
        self.exe(&mut p.exe);
        self.argv(&mut p.argv);
        p.ancestry.iter_mut().for_each(|a| self.ancestor(a));
        for ExecReport { exe, argv, .. } in &mut p.execs {
            self.exe(exe);
            self.argv(argv);
        }
    }

    pub fn report(&self, report: &mut Report) {
        if self.is_empty() {
            return;
        }
        match report {
            Report::Signal(r) => {
                // Shared with the correlator's memo: masked on a copy of its own.
                self.process(std::sync::Arc::make_mut(&mut r.sender));
                if let Some(target) = &mut r.target {
                    self.process(std::sync::Arc::make_mut(target));
                }
                self.ancestor(&mut r.root_sender);
                for cause in &mut r.cause {
                    self.process(&mut cause.sender);
                    self.ancestor(&mut cause.target);
                }
            }
            Report::Exit(exit) => self.field(&mut exit.comm),
            Report::Lost(_) => {}
        }
    }

    /// A stored JSON report: every string under an `argv`, `exe` or `comm` key, at any
    /// depth. Unparsable text is returned as it is (the journal validated it on write).
    pub fn json<'a>(&self, json: &'a str) -> Cow<'a, str> {
        if self.is_empty() {
            return Cow::Borrowed(json);
        }
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(json) else {
            return self.text(json);
        };
        self.value(&mut value, false);
        serde_json::to_string(&value).map_or(Cow::Borrowed(json), Cow::Owned)
    }

    fn value(&self, value: &mut serde_json::Value, masked_key: bool) {
        match value {
            serde_json::Value::String(s) if masked_key => self.field(s),
            serde_json::Value::Array(items) => {
                for v in items {
                    self.value(v, masked_key);
                }
            }
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    self.value(v, matches!(key.as_str(), "argv" | "exe" | "comm"));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redaction(patterns: &[&str]) -> Redaction {
        Redaction::new(
            &patterns
                .iter()
                .map(std::string::ToString::to_string)
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn masks_only_what_matches() {
        let r = redaction(&["hunter[0-9]+", "token=[^&]*"]);
        assert_eq!(r.text("--password=hunter22"), "--password=[redacted]");
        assert_eq!(r.text("a?token=abc&b=1"), "a?[redacted]&b=1");
        assert!(matches!(r.text("plain"), Cow::Borrowed("plain")));
        // A mask is not a replacement template.
        assert_eq!(redaction(&["(x)"]).text("axb"), "a[redacted]b");
        assert_eq!(redaction(&["x"]).text("$1x"), "$1[redacted]");
    }

    #[test]
    fn invalid_and_empty_patterns_are_one_line_errors() {
        for bad in ["(unclosed", "[z-a]", "a{2,1}", ""] {
            let error = Redaction::new(&[bad.to_owned()]).unwrap_err().to_string();
            assert_eq!(error.lines().count(), 1, "{error}");
            assert!(error.starts_with("--redact "), "{error}");
        }
    }

    #[test]
    fn stored_json_is_masked_under_command_line_keys_only() {
        let r = redaction(&["s3cret"]);
        let json = r#"{"signal":"s3cret","sender":{"argv":["x","--pw=s3cret"],"exe":"/s3cret","comm":"s3cret","ancestry":[{"argv":["s3cret"]}]},"hints":[{"text":"s3cret"}]}"#;
        let out: serde_json::Value = serde_json::from_str(&r.json(json)).unwrap();
        assert_eq!(out["sender"]["argv"][1], "--pw=[redacted]");
        assert_eq!(out["sender"]["exe"], "/[redacted]");
        assert_eq!(out["sender"]["comm"], "[redacted]");
        assert_eq!(out["sender"]["ancestry"][0]["argv"][0], "[redacted]");
        assert_eq!(out["signal"], "s3cret");
        assert_eq!(out["hints"][0]["text"], "s3cret");
        assert_eq!(Redaction::default().json(json), json);
    }
}
