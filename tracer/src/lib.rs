//! sigwho's library: everything but the command line's edge.
//!
//! Data flows load (eBPF, ring buffer) -> decode (records) -> correlate (process table
//! from lineage, reports) -> report (text, JSON); live drives it for one target,
//! runcmd for a command's whole process tree (with junit for CI systems).

pub mod analyze;
pub mod cgroup;
pub mod cli;
pub mod clock;
pub mod color;
pub mod correlate;
pub mod decode;
pub mod doctor;
pub mod explain;
pub mod export;
pub mod fold;
pub mod graph;
pub mod journal;
pub mod junit;
pub mod kubelet;
pub mod lineage;
pub mod live;
pub mod load;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod ownsignals;
pub mod probe;
pub mod procfs;
pub mod query;
pub mod record;
pub mod redact;
pub mod replay;
pub mod report;
pub mod runcmd;
pub mod signals;
pub mod stream;
pub mod sys;
pub mod tracefs;
