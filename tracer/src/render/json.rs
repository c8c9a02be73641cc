//! Reports as JSON lines (docs/json-schema.md).

use std::fmt::Write as _;

use crate::analysis::report::{Report, SignalReport};

/// A report as one JSON line (no newline), as `--json` prints it.
#[must_use]
pub fn report(report: &Report) -> String {
    let json = match report {
        Report::Signal(r) => serde_json::to_string(r),
        Report::Exit(r) => serde_json::to_string(r),
        Report::Lost(r) => serde_json::to_string(r),
    };
    // Serializing these plain structs cannot fail.
    json.unwrap_or_default()
}

/// A signal report as a JSON line with `"unexpected"` added (after the live view's
/// fields, which keep their order).
#[must_use]
pub fn with_unexpected(report: &SignalReport, unexpected: bool) -> String {
    let mut line = serde_json::to_string(report).unwrap_or_default();
    if line.ends_with('}') {
        line.pop();
        let _ = write!(line, ",\"unexpected\":{unexpected}}}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::report::fixtures::signal;

    #[test]
    fn unexpected_flag_is_appended_to_the_live_schema() {
        let line = with_unexpected(
            &signal(15, 10, 20, crate::analysis::classify::OriginClass::Explicit),
            true,
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["unexpected"], true);
        assert_eq!(value["signal"], "SIGTERM");
        assert!(line.starts_with("{\"event\":\"signal\""), "{line}");
    }
}
