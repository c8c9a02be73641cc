//! The Debian package of `cargo xtask dist`: installed with dpkg it puts sigwho, its man
//! pages, shell completions and the recorder's systemd unit in place; removed, it takes
//! them all away. `cargo xtask test` builds the package first and names it in
//! `$SIGWHO_DEB` (building it here would wait on the cargo lock the test run holds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sigwho_tests::{Run, built_deb, require_root, run, wait_until};

const PACKAGE: &str = "sigwho";

/// Every file the package must install, with a line each must contain.
const INSTALLED: &[(&str, &str)] = &[
    ("/usr/bin/sigwho", ""),
    ("/usr/share/man/man1/sigwho.1", ".TH sigwho"),
    ("/usr/share/man/man1/sigwho-record.1", ".TH sigwho-record"),
    ("/usr/share/man/man1/sigwho-query.1", ".TH sigwho-query"),
    ("/usr/share/man/man1/sigwho-run.1", ".TH sigwho-run"),
    (
        "/usr/lib/systemd/system/sigwho-record.service",
        "ExecStart=/usr/bin/sigwho record",
    ),
    (
        "/usr/share/bash-completion/completions/sigwho",
        "complete -F _sigwho",
    ),
    (
        "/usr/share/zsh/vendor-completions/_sigwho",
        "#compdef sigwho",
    ),
    (
        "/usr/share/fish/vendor_completions.d/sigwho.fish",
        "complete -c sigwho",
    ),
];

fn dpkg(args: &[&str]) -> Run {
    let mut cmd = Command::new("dpkg");
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    run(cmd, Duration::from_mins(2))
}

/// dpkg, retried while another package manager on the machine holds dpkg's lock.
fn dpkg_locked(args: &[&str]) -> Run {
    let mut last = None;
    let done = wait_until(
        || {
            let r = dpkg(args);
            let locked = !r.status.success() && r.stderr.contains("lock");
            last = Some(r);
            !locked
        },
        Duration::from_mins(5),
    );
    let r = last.expect("dpkg ran at least once");
    assert!(done, "dpkg's lock stayed taken for 5 minutes: {r}");
    r
}

fn installed() -> bool {
    let mut cmd = Command::new("dpkg-query");
    cmd.args(["-W", "-f=${Status}", PACKAGE]);
    run(cmd, Duration::from_secs(30)).stdout.trim() == "install ok installed"
}

/// Man pages may be compressed by the packager: either form counts.
fn installed_path(path: &str) -> Option<PathBuf> {
    [path.to_owned(), format!("{path}.gz")]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn text_of(path: &Path) -> String {
    if path.extension().is_some_and(|e| e == "gz") {
        let mut cmd = Command::new("gzip");
        cmd.arg("-dc").arg(path);
        return run(cmd, Duration::from_secs(30)).assert_success().stdout;
    }
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Removes the package if the test installed it and then failed half-way.
struct Remove;

impl Drop for Remove {
    fn drop(&mut self) {
        if installed() {
            let _ = dpkg(&["--remove", PACKAGE]);
        }
    }
}

#[test]
fn deb_installs_and_removes_binary_man_pages_completions_and_unit() {
    require_root();
    let deb = built_deb();
    if installed() {
        // Someone's real installation: not ours to replace or remove.
        eprintln!("dist test skipped: the {PACKAGE} package is already installed on this machine");
        return;
    }

    let deb = deb.to_str().expect("package path is UTF-8");
    let guard = Remove;
    let install = dpkg_locked(&["--install", deb]);
    assert!(install.status.success(), "dpkg --install: {install}");
    assert!(
        installed(),
        "dpkg says {PACKAGE} is not installed after {install}"
    );

    let mut version = Command::new("/usr/bin/sigwho");
    version.arg("--version");
    let version = run(version, Duration::from_secs(30)).assert_success();
    assert!(
        version
            .stdout
            .starts_with(&format!("sigwho {}", env!("CARGO_PKG_VERSION")))
            && version.stdout.contains("eBPF object"),
        "unexpected version line: {version}"
    );

    let listed = dpkg(&["--listfiles", PACKAGE]).assert_success().stdout;
    for (path, needle) in INSTALLED {
        let found = installed_path(path).unwrap_or_else(|| panic!("{path} not installed"));
        assert!(
            listed.lines().any(|l| Path::new(l) == found),
            "{} is not owned by the package:\n{listed}",
            found.display()
        );
        if !needle.is_empty() {
            let text = text_of(&found);
            assert!(
                text.contains(needle),
                "{} lacks {needle:?}",
                found.display()
            );
        }
    }

    let remove = dpkg_locked(&["--remove", PACKAGE]);
    assert!(remove.status.success(), "dpkg --remove: {remove}");
    drop(guard);
    assert!(!installed(), "{PACKAGE} still installed after {remove}");
    for (path, _) in INSTALLED {
        assert!(
            installed_path(path).is_none(),
            "{path} left behind by dpkg --remove"
        );
    }
}
