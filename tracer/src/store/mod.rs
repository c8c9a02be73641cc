//! Where reports go besides the terminal: the recorder's journal and its exports.

pub mod export;
pub mod journal;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod recorder;
