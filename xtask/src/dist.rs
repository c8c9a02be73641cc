//! `cargo xtask dist`: the release binary, its man pages and shell completions (generated
//! from the clap definitions by `tracer/examples/dist_assets.rs`) and a Debian package of
//! them all plus the recorder's systemd unit, built by cargo-deb from the
//! `[package.metadata.deb]` table of tracer/Cargo.toml.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cargo::{Workspace, run_step, show};

/// Where `dist_assets` writes man/ and completions/: under target/release so that
/// cargo-deb's `target/release/...` asset paths find them wherever the target dir is.
const ASSETS_DIR: &str = "dist";

/// Builds everything and returns the path of the .deb.
pub fn run(ws: &Workspace) -> Result<PathBuf> {
    cargo_deb()?;
    run_step(&mut ws.cargo(["build", "--release", "-p", "tracer", "--bin", "sigwho"]))?;
    let release = ws.target_dir()?.join("release");
    let assets = release.join(ASSETS_DIR);
    // Stale pages (a removed subcommand) must not reach the package.
    if assets.exists() {
        std::fs::remove_dir_all(&assets)
            .with_context(|| format!("cannot remove {}", assets.display()))?;
    }
    let mut generate = ws.cargo([
        "run",
        "--release",
        "-p",
        "tracer",
        "--example",
        "dist-assets",
    ]);
    generate.arg("--").arg(&assets);
    run_step(&mut generate)?;

    let out_dir = ws.target_dir()?.join("dist");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    // --no-build: the binary was just built above, with the workspace's own settings.
    let mut deb = ws.cargo(["deb", "-p", "tracer", "--no-build", "--output"]);
    deb.arg(&out_dir).stdout(Stdio::piped());
    eprintln!("xtask: running {}", show(&deb));
    let out = deb
        .spawn()
        .and_then(std::process::Child::wait_with_output)
        .with_context(|| format!("could not start {}", show(&deb)))?;
    if !out.status.success() {
        bail!("{} failed ({})", show(&deb), out.status);
    }
    // cargo-deb prints the package's path as its only line on stdout.
    let printed = String::from_utf8_lossy(&out.stdout);
    let path = printed
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| Path::new(line).extension().is_some_and(|ext| ext == "deb"))
        .map(PathBuf::from)
        .with_context(|| format!("{} did not print a .deb path: {printed}", show(&deb)))?;
    eprintln!("dist: binary {}", release.join("sigwho").display());
    eprintln!("dist: man pages and completions in {}", assets.display());
    eprintln!("dist: Debian package {}", path.display());
    Ok(path)
}

/// Installs cargo-deb from crates.io unless `cargo deb --version` already works.
fn cargo_deb() -> Result<()> {
    if let Some(version) = cargo_deb_version() {
        eprintln!("setup: cargo-deb: already installed ({version})");
        return Ok(());
    }
    eprintln!("setup: cargo-deb: installing from crates.io (takes a few minutes)");
    run_step(&mut crate::setup::cargo_install(&["--locked", "cargo-deb"]))?;
    let version = cargo_deb_version()
        .context("cargo-deb was installed but `cargo deb --version` still fails")?;
    eprintln!("setup: cargo-deb: installed ({version})");
    Ok(())
}

fn cargo_deb_version() -> Option<String> {
    crate::setup::tool_version(Command::new("cargo").args(["deb", "--version"]))
}
