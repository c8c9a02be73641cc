//! Errors as sigwho prints them: one line, causes included.

use std::fmt::Write as _;

/// An error and its causes on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            let _ = write!(text, ": {message}");
        }
        source = cause.source();
    }
    // Some causes quote several lines (SQLite quotes a damaged journal's schema).
    if text.contains('\n') {
        text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    text
}
