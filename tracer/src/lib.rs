//! sigwho's library: everything but the command line's edge.
//!
//! Layers, each a folder (docs/architecture.md): `kernel` loads the eBPF programs and
//! reads what they produce; `model` is what sigwho knows of processes, clocks and
//! signals; `analysis` turns kernel records into reports; `render` prints them;
//! `store` keeps and exports them; `modes` drive all of it for each subcommand.

pub mod analysis;
pub mod cli;
pub mod error;
pub mod kernel;
pub mod model;
pub mod modes;
pub mod render;
pub mod store;
