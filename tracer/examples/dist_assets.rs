//! Writes sigwho's man pages and shell completions, generated from the clap definitions
//! in `tracer::cli`, into a directory: `dist-assets OUT_DIR` leaves
//! `OUT_DIR/man/sigwho*.1` and `OUT_DIR/completions/{sigwho.bash,_sigwho,sigwho.fish}`.
//! `cargo xtask dist` runs it and packages the result.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use tracer::cli::Cli;

fn main() -> Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: dist-assets OUT_DIR")?;
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let cmd = Cli::command();
    // One page for sigwho and one per subcommand (sigwho-record.1, ...), as git does.
    clap_mangen::generate_to(cmd.clone(), &man)
        .with_context(|| format!("cannot write man pages to {}", man.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = cmd.clone();
        clap_complete::generate_to(shell, &mut cmd, "sigwho", &completions).with_context(|| {
            format!(
                "cannot write {shell} completion to {}",
                completions.display()
            )
        })?;
    }
    list(&out)
}

/// What was written, for the log of `cargo xtask dist`.
fn list(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list(&path)?;
        } else {
            eprintln!("dist-assets: wrote {}", path.display());
        }
    }
    Ok(())
}
