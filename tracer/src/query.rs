//! Placeholder: being written.

use crate::cli::QueryArgs;

pub fn run(_args: QueryArgs, _out: impl std::io::Write) -> anyhow::Result<()> {
    anyhow::bail!("sigwho query is not implemented yet")
}
