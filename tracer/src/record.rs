//! Placeholder: being written.

use crate::{cli::RecordArgs, explain::Rules};

pub async fn run(_args: RecordArgs, _rules: &'static Rules) -> anyhow::Result<()> {
    anyhow::bail!("sigwho record is not implemented yet")
}
