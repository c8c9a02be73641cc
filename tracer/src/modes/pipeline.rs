//! What every tracing mode starts the same way.

use std::time::Duration;

use crate::analysis::{redact::Redaction, rules::Rules};

/// How reports explain a signal (cause chains, hints, masks); the same for every mode
/// that traces.
#[derive(Debug, Clone)]
pub struct ExplainOptions {
    /// How recent a signal the sender received must be to count as the cause of the one
    /// it sent.
    pub cause_window: Duration,
    pub rules: &'static Rules,
    /// --redact.
    pub redaction: Redaction,
}

impl ExplainOptions {
    pub fn cause_window_ns(&self) -> u64 {
        u64::try_from(self.cause_window.as_nanos()).unwrap_or(u64::MAX)
    }
}
