//! Reports as JSON lines (docs/json-schema.md).

use crate::analysis::report::Report;

/// A report as one JSON line (no newline), as `--json` prints it.
pub fn report(report: &Report) -> String {
    let json = match report {
        Report::Signal(r) => serde_json::to_string(r),
        Report::Exit(r) => serde_json::to_string(r),
        Report::Lost(r) => serde_json::to_string(r),
    };
    // Serializing these plain structs cannot fail.
    json.unwrap_or_default()
}
