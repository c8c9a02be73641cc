//! Builds tracer-ebpf for the BPF target and leaves the object in `OUT_DIR`, where
//! src/kernel/load/mod.rs embeds it: the `sigwho` binary carries its programs and needs nothing
//! else on the machine it runs on. Also names that build for `sigwho --version`: the
//! object's SHA-256 and the git commit of the source, when known.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

fn main() -> anyhow::Result<()> {
    // Debian's rustc (linked as the rustup toolchain `debian` by `cargo xtask setup`)
    // ships core's sources but is a stable compiler; bootstrap mode lets it take
    // `-Z build-std=core`, which the BPF target needs. Only the nested build sees this.
    // SAFETY: build scripts are single-threaded at this point.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
    build_shared_object()?;
    describe_build()
}

/// The object's file name, as tracer-ebpf's binary target names it.
const OBJECT: &str = "sigwho-ebpf";

/// Builds the object once for every cargo invocation of the workspace and copies it into
/// this build's `OUT_DIR`.
///
/// Why not aya-build's own place: it builds under each build script's `OUT_DIR`, which
/// differs for every profile and tool (build, clippy, test, release, the matrix's suite),
/// so each of them rebuilt the object and `core` from scratch: six builds of 70-85 s in
/// one CI run. The object does not depend on the outer profile (the nested build is always
/// `--release` for the BPF target), so one build directory, `<target dir>/ebpf`, serves
/// them all; aya-build is pointed at it through `OUT_DIR`. A lock file held across the
/// build and the copy keeps two cargo invocations of the workspace that run at once (a
/// debug and a release build) from reading a half-written object: the nested cargo
/// serialises its own build, but aya-build's copy out of it is a plain write.
fn build_shared_object() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let shared = shared_dir(&out_dir);
    std::fs::create_dir_all(&shared)
        .with_context(|| format!("cannot create {}", shared.display()))?;
    let lock_path = shared.join("build.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    // SAFETY: build scripts are single-threaded at this point; aya-build reads OUT_DIR
    // once, before it starts any thread, and it is set back right after.
    unsafe { std::env::set_var("OUT_DIR", &shared) };
    let package = aya_build::Package {
        name: "tracer-ebpf",
        root_dir: "../tracer-ebpf",
        ..Default::default()
    };
    let built = aya_build::build_ebpf([package], aya_build::Toolchain::Custom("debian"));
    // SAFETY: as above.
    unsafe { std::env::set_var("OUT_DIR", &out_dir) };
    built?;
    let (from, to) = (shared.join(OBJECT), out_dir.join(OBJECT));
    std::fs::copy(&from, &to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    drop(lock);
    Ok(())
}

/// `<target dir>/ebpf`: the target directory is the nearest ancestor of `OUT_DIR` that
/// holds cargo's CACHEDIR.TAG (wherever `CARGO_TARGET_DIR`, `--target-dir` or `--target`
/// put it). Without one, `OUT_DIR` itself (aya-build's own place: correct, only slower).
fn shared_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map_or_else(|| out_dir.join("shared"), |target| target.join("ebpf"))
}

/// Sets `SIGWHO_EBPF_SHA256` and `SIGWHO_GIT_COMMIT` for src/cli.rs. A build without git
/// (a source tarball) says "unknown" rather than failing; `SIGWHO_GIT_COMMIT` in the
/// environment (a packager's) wins over asking git.
fn describe_build() -> anyhow::Result<()> {
    let out_dir = std::env::var("OUT_DIR")?;
    // The name src/kernel/load.rs embeds.
    let object = std::fs::read(Path::new(&out_dir).join(OBJECT))?;
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
