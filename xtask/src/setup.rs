//! `cargo xtask setup`: the steps of ../shared/TOOLCHAIN.md, each checked first so that a
//! machine that has everything pays only for three quick queries.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cargo::{run_step, show};

/// Debian's rustc ships core's sources (for `-Z build-std=core` on the BPF target) and
/// LLVM 22, which bpf-linker must link against; clang-22 and libbpf-dev build the CO-RE
/// shim in tracer-ebpf/shim.
const DEBIAN_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "llvm-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "libxml2-dev",
    "clang-22",
    "libbpf-dev",
];

/// Installed when this machine's apt sources have them, skipped with a note when not:
/// clippy for the `debian` toolchain (`cargo +debian clippy`, which can lint the eBPF
/// crate on the BPF target), packaged next to rustc-web.
const OPTIONAL_PACKAGES: &[&str] = &["rust-web-clippy"];

/// tracer/build.rs builds the eBPF crate with `cargo +debian`.
const TOOLCHAIN: &str = "debian";

pub fn run() -> Result<()> {
    debian_packages()?;
    optional_packages()?;
    rustup_toolchain()?;
    bpf_linker()?;
    Ok(())
}

/// Programs the integration tests run, and the Debian package that has each: node for
/// the Node.js incident reproduction, python3 to validate `JUnit` XML with a real parser,
/// unshare for the pid-namespace tests, setpriv to drop capabilities, script for a
/// terminal in the --color tests, dot for `sigwho query --format svg`, a Docker engine,
/// debootstrap (a base image without a registry) and the Kubernetes API's models (Debian's
/// python3 module, checked with Debian's python3) for the container test; nginx, Debian's
/// gunicorn and npm for the on-call hints' tests (tests/hints.rs). Each with a
/// command that succeeds when it is there (Graphviz's dot has no --version).
const TEST_TOOLS: &[(&str, &[&str], &str)] = &[
    ("node", &["--version"], "nodejs"),
    ("python3", &["--version"], "python3"),
    ("unshare", &["--version"], "util-linux"),
    ("setpriv", &["--version"], "util-linux"),
    ("script", &["--version"], "bsdutils"),
    ("dot", &["-V"], "graphviz"),
    ("dockerd", &["--version"], "docker.io"),
    ("debootstrap", &["--version"], "debootstrap"),
    (
        "/usr/bin/python3",
        &["-c", "import kubernetes"],
        "python3-kubernetes",
    ),
    ("/usr/sbin/nginx", &["-v"], "nginx"),
    ("/usr/bin/gunicorn", &["--version"], "gunicorn"),
    ("npm", &["--version"], "npm"),
];

/// Installs what the tests need beyond the build, when a tool is not on PATH (a tool
/// installed another way, e.g. a newer node, is left alone).
pub fn test_tools() -> Result<()> {
    let missing: Vec<&str> = TEST_TOOLS
        .iter()
        .filter(|(tool, probe, _)| {
            Command::new(tool)
                .args(*probe)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_or(true, |status| !status.success())
        })
        .map(|(_, _, package)| *package)
        .collect();
    if missing.is_empty() {
        eprintln!(
            "setup: test tools: node, python3, unshare, setpriv, script, dot, dockerd, debootstrap, \
             python3-kubernetes, nginx, gunicorn, npm present"
        );
        return Ok(());
    }
    eprintln!("setup: test tools: installing {}", missing.join(" "));
    apt_install(&missing)
}

fn debian_packages() -> Result<()> {
    ensure_packages("setup: Debian packages", DEBIAN_PACKAGES)
}

/// The optional packages that are missing and to be had, installed; the others skipped.
/// Never updates the package lists for them: that would make every setup slow (and need
/// the network) on a machine whose sources simply lack them.
fn optional_packages() -> Result<()> {
    let what = "setup: optional Debian packages";
    let missing = missing_packages(OPTIONAL_PACKAGES)?;
    if missing.is_empty() {
        eprintln!("{what}: all {} present", OPTIONAL_PACKAGES.len());
        return Ok(());
    }
    let mut available = Vec::new();
    for package in missing {
        match apt_candidate(package) {
            Ok(_) => available.push(package),
            Err(why) => eprintln!("{what}: skipping {package}: {why}"),
        }
    }
    if available.is_empty() {
        return Ok(());
    }
    if !is_root()? {
        eprintln!(
            "{what}: skipping {}: not root, so cannot install",
            available.join(" ")
        );
        return Ok(());
    }
    ensure_packages(what, &available)
}

/// Installs those of `packages` that are not installed (as root); `what` names them in
/// the messages.
pub fn ensure_packages(what: &str, packages: &[&'static str]) -> Result<()> {
    let missing = missing_packages(packages)?;
    if missing.is_empty() {
        eprintln!("{what}: all {} present", packages.len());
        return Ok(());
    }
    if !is_root()? {
        bail!(
            "Debian packages missing: {}; run as root so that setup can install them",
            missing.join(" ")
        );
    }
    eprintln!("{what}: installing {}", missing.join(" "));
    apt_install(&missing)?;
    eprintln!("{what}: installed {}", missing.join(" "));
    Ok(())
}

fn missing_packages(packages: &[&'static str]) -> Result<Vec<&'static str>> {
    // One dpkg-query for all packages; it exits non-zero when any is unknown, so its
    // status says nothing and only the printed lines count.
    let mut query = Command::new("dpkg-query");
    query
        .args(["-W", "-f=${Package} ${Status}\\n"])
        .args(packages)
        .stderr(Stdio::null());
    let out = query.output().with_context(|| {
        format!(
            "could not run {} (the build recipe needs Debian 12 with apt)",
            show(&query)
        )
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let installed: HashSet<&str> = stdout
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, status)| *status == "install ok installed")
        .map(|(package, _)| package)
        .collect();
    Ok(packages
        .iter()
        .copied()
        .filter(|package| !installed.contains(package))
        .collect())
}

/// Refreshes the package lists, then installs `packages`.
fn apt_install(packages: &[&str]) -> Result<()> {
    run_step(apt_get().arg("update"))?;
    let _no_services = NoServiceStarts::install()?;
    run_step(
        apt_get()
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages),
    )
}

/// Debian starts a package's service when it is installed (nginx would listen on port 80
/// of every interface) unless /usr/sbin/policy-rc.d says no. Packages are installed here
/// for tests, which start what they need on loopback themselves: where the machine has
/// no such policy, one that refuses every start is put in place for the install and
/// taken away after it.
struct NoServiceStarts {
    placed: Option<&'static str>,
}

impl NoServiceStarts {
    const PATH: &'static str = "/usr/sbin/policy-rc.d";

    fn install() -> Result<Self> {
        if std::path::Path::new(Self::PATH).exists() {
            return Ok(Self { placed: None });
        }
        std::fs::write(
            Self::PATH,
            "#!/bin/sh\n# cargo xtask setup: no service starts while it installs\nexit 101\n",
        )
        .with_context(|| format!("writing {}", Self::PATH))?;
        std::fs::set_permissions(
            Self::PATH,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .with_context(|| format!("making {} executable", Self::PATH))?;
        Ok(Self {
            placed: Some(Self::PATH),
        })
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if let Some(path) = self.placed {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// apt-get, never asking questions: every apt call of xtask starts here.
pub fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

/// The package's install candidate, per `apt-cache policy`; an error saying why when
/// there is none (e.g. not in this release's archive).
pub fn apt_candidate(package: &str) -> Result<String, String> {
    let out = Command::new("apt-cache")
        .args(["policy", package])
        .output()
        .map_err(|e| format!("could not run apt-cache: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(str::trim)
    {
        Some(version) if version != "(none)" => Ok(version.to_owned()),
        _ => Err(format!(
            "Debian package {package} is not available from this machine's apt sources \
             (`apt-cache policy {package}` shows no candidate)"
        )),
    }
}

fn rustup_toolchain() -> Result<()> {
    let mut list = Command::new("rustup");
    list.args(["toolchain", "list"]);
    let out = list
        .output()
        .with_context(|| format!("could not run {} (is rustup installed?)", show(&list)))?;
    if !out.status.success() {
        bail!("{} failed ({})", show(&list), out.status);
    }
    // Lines read `NAME [(active, default)] [PATH]`: compare the whole first word, so a
    // toolchain such as `debian-old` does not count.
    let linked = String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|line| line.split_whitespace().next() == Some(TOOLCHAIN));
    if linked {
        eprintln!("setup: rustup toolchain `{TOOLCHAIN}`: already linked");
        return Ok(());
    }
    run_step(Command::new("rustup").args(["toolchain", "link", TOOLCHAIN, "/usr"]))?;
    eprintln!("setup: rustup toolchain `{TOOLCHAIN}`: linked to /usr");
    Ok(())
}

/// `cargo install ARGS` for a host tool: built with the default rustup toolchain, not
/// the one this xtask happens to run under, nor in bootstrap mode, and outside the
/// workspace, so that its .cargo/config.toml cannot reach the build.
pub fn cargo_install(args: &[&str]) -> Command {
    let mut install = Command::new("cargo");
    install
        .arg("install")
        .args(args)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTC_BOOTSTRAP")
        .current_dir(std::env::temp_dir());
    install
}

fn bpf_linker() -> Result<()> {
    if let Some(version) = bpf_linker_version() {
        eprintln!("setup: bpf-linker: already installed ({version})");
        return Ok(());
    }
    eprintln!("setup: bpf-linker: installing from crates.io (takes a minute or two)");
    let mut install = cargo_install(&["bpf-linker", "--no-default-features"]);
    install
        .args(["--features", "llvm-22"])
        // Without it bpf-linker's build looks for LLVM in /usr/lib64 and fails with
        // "unable to find library -lLLVM".
        .env("LLVM_PREFIX", "/usr/lib/llvm-22");
    run_step(&mut install)?;
    let version = bpf_linker_version()
        .context("bpf-linker was installed but `bpf-linker --version` still fails")?;
    eprintln!("setup: bpf-linker: installed ({version})");
    Ok(())
}

fn bpf_linker_version() -> Option<String> {
    tool_version(Command::new("bpf-linker").arg("--version"))
}

/// What a tool's version command prints, if it runs and succeeds: the check that an
/// installed host tool works.
pub fn tool_version(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Puts cargo's bin directory (where `cargo install` puts bpf-linker) on PATH for every
/// child: rustc finds bpf-linker only through PATH, and a fresh shell that has not
/// sourced ~/.cargo/env would not have it.
pub fn put_cargo_bin_on_path() {
    let Some(cargo_bin) = cargo_home().map(|home| home.join("bin")) else {
        return;
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir == cargo_bin) {
        return;
    }
    let joined =
        std::env::join_paths(std::iter::once(cargo_bin).chain(std::env::split_paths(&path)));
    if let Ok(joined) = joined {
        // SAFETY: called at the start of main, before xtask starts any thread.
        unsafe { std::env::set_var("PATH", joined) };
    }
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
}

/// The effective uid, read from /proc so that xtask needs no libc binding for one call.
pub fn is_root() -> Result<bool> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("could not read /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .context("no effective uid in /proc/self/status")?;
    Ok(euid == "0")
}

#[cfg(test)]
mod tests {
    use super::apt_candidate;

    #[test]
    fn a_package_the_archive_lacks_has_no_candidate() {
        let why = apt_candidate("sigwho-no-such-package").unwrap_err();
        assert!(why.contains("not available"), "{why}");
    }
}
