//! sigwho's subcommands, each driving the layers below for its job.

pub mod doctor;
pub mod live;
pub mod pipeline;
pub mod query;
pub mod record;
pub mod run;
pub mod signals;
pub mod watch;
