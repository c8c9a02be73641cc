//! From kernel records to reports: correlation, classification, cause chains,
//! escalations, hints, redaction, storms. Pure code: replayable without a kernel.

pub mod attempts;
pub mod classify;
pub mod correlate;
pub mod fold;
pub mod pass;
pub mod redact;
pub mod replay;
pub mod report;
pub mod rules;
pub mod select;
