//! Builds tracer-ebpf for the BPF target and leaves the object in `OUT_DIR`, where
//! src/kernel/load.rs embeds it: the `sigwho` binary carries its programs and needs nothing
//! else on the machine it runs on. Also names that build for `sigwho --version`: the
//! object's SHA-256 and the git commit of the source, when known.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

fn main() -> anyhow::Result<()> {
    // Debian's rustc (linked as the rustup toolchain `debian` by `cargo xtask setup`)
    // ships core's sources but is a stable compiler; bootstrap mode lets it take
    // `-Z build-std=core`, which the BPF target needs. Only the nested build sees this.
    // SAFETY: build scripts are single-threaded at this point.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
    let package = aya_build::Package {
        name: "tracer-ebpf",
        root_dir: "../tracer-ebpf",
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::Custom("debian"))?;
    describe_build()
}

/// Sets `SIGWHO_EBPF_SHA256` and `SIGWHO_GIT_COMMIT` for src/cli.rs. A build without git
/// (a source tarball) says "unknown" rather than failing; `SIGWHO_GIT_COMMIT` in the
/// environment (a packager's) wins over asking git.
fn describe_build() -> anyhow::Result<()> {
    let out_dir = std::env::var("OUT_DIR")?;
    // The name src/kernel/load.rs embeds.
    let object = std::fs::read(Path::new(&out_dir).join("sigwho-ebpf"))?;
    let digest: String = Sha256::digest(&object)
        .iter()
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
    println!("cargo:rustc-env=SIGWHO_EBPF_SHA256={digest}");

    println!("cargo:rerun-if-env-changed=SIGWHO_GIT_COMMIT");
    let commit = std::env::var("SIGWHO_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SIGWHO_GIT_COMMIT={commit}");
    Ok(())
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The commit checked out, and a rerun of this script when it moves. Only files that
/// exist are watched: cargo would rerun the script on every build for a missing one.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            // Relative paths are relative to this package, where the script runs.
            let path = std::fs::canonicalize(&path).unwrap_or_else(|_| path.into());
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(commit)
}
