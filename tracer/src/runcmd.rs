//! Placeholder: being written.

use crate::{cli::RunArgs, explain::Rules};

/// Returns the exit status sigwho should end with.
pub async fn run(_args: RunArgs, _rules: &'static Rules) -> anyhow::Result<i32> {
    anyhow::bail!("sigwho run is not implemented yet")
}
