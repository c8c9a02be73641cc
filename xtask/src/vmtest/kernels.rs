//! The Debian cloud kernels of the matrix, fetched with `apt-get download` through an apt
//! configuration of vmtest's own (../shared/KERNELS.md).
//!
//! Nothing is installed on the host: the packages are only unpacked under
//! target/vmtest/kernels/RELEASE. The host's apt state is never touched: vmtest's sources,
//! lists and caches live in target/vmtest/apt, so suites the host does not list
//! (bullseye, trixie-backports, sid) cannot leak into the host's own upgrades.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use crate::cargo::show;
use crate::setup;

/// The host's apt sources, where the mirror URIs come from: a machine behind its own
/// mirror or proxy reaches the archive only through the URIs it already uses.
const HOST_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const HOST_SOURCES_LIST: &str = "/etc/apt/sources.list";

/// Suites on the main archive and on the security archive: bullseye carries 5.10,
/// bookworm 6.1 and 6.12 (6.12.x+deb12), trixie-backports and sid the 7.x kernels.
const MAIN_SUITES: &[&str] = &["bullseye", "bookworm", "trixie-backports", "sid"];
const SECURITY_SUITES: &[&str] = &["bullseye-security", "bookworm-security"];

/// The package lists are refreshed at most this often: a second run the same day must
/// not touch the network at all.
const LISTS_MAX_AGE: Duration = Duration::from_hours(24);

/// A kernel series of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Series {
    V5_10,
    V6_1,
    V6_12,
    V7,
}

impl Series {
    pub const ALL: [Series; 4] = [Series::V5_10, Series::V6_1, Series::V6_12, Series::V7];

    pub fn label(self) -> &'static str {
        match self {
            Series::V5_10 => "5.10",
            Series::V6_1 => "6.1",
            Series::V6_12 => "6.12",
            Series::V7 => "7",
        }
    }

    /// The kernel release (`uname -r`) a package of this series installs, if `package`
    /// is this series' image package. Up to 6.12 the image is
    /// linux-image-RELEASE-unsigned; 7.x splits it into linux-binary-unsigned-RELEASE,
    /// linux-modules-RELEASE and linux-base-RELEASE.
    fn release_of(self, package: &str) -> Option<&str> {
        let release = match self {
            Series::V7 => package.strip_prefix("linux-binary-unsigned-")?,
            _ => package
                .strip_prefix("linux-image-")?
                .strip_suffix("-unsigned")?,
        };
        let version = release.strip_suffix("-cloud-amd64")?;
        let prefix = match self {
            Series::V5_10 => "5.10.",
            Series::V6_1 => "6.1.",
            Series::V6_12 => "6.12.",
            Series::V7 => "7.",
        };
        // Bullseye's backports of 6.1 (6.1.0-0.deb11.N) count too: they sort below
        // bookworm's own builds (version_key) and only serve as a fallback.
        version.starts_with(prefix).then_some(release)
    }

    /// The packages that make up one kernel of this series.
    fn packages(self, release: &str) -> Vec<String> {
        match self {
            Series::V7 => vec![
                format!("linux-binary-unsigned-{release}"),
                format!("linux-modules-{release}"),
                format!("linux-base-{release}"),
            ],
            _ => vec![format!("linux-image-{release}-unsigned")],
        }
    }

    /// What `apt-cache pkgnames` is asked for: every image package name starts so.
    fn name_prefix(self) -> &'static str {
        match self {
            Series::V7 => "linux-binary-unsigned-7.",
            Series::V5_10 => "linux-image-5.10.",
            Series::V6_1 => "linux-image-6.1.",
            Series::V6_12 => "linux-image-6.12.",
        }
    }
}

/// An unpacked kernel, ready to boot.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub series: Series,
    /// `uname -r` in the guest, e.g. 6.1.0-57-cloud-amd64.
    pub release: String,
    /// The unpacked packages, with the modules always at lib/modules/RELEASE (7.x ships
    /// them under usr/lib/modules) and modules.dep built.
    pub root: PathBuf,
    pub vmlinuz: PathBuf,
    pub config: Option<PathBuf>,
}

/// Finds, downloads (when not cached) and unpacks the newest kernel of each series.
/// A series that cannot be had is an error of its own, not of the whole matrix.
pub fn fetch(vmtest_dir: &Path, series: &[Series]) -> Vec<(Series, Result<Kernel>)> {
    let store = Store {
        kernels: vmtest_dir.join("kernels"),
        debs: vmtest_dir.join("debs"),
    };
    let apt = match Apt::new(&vmtest_dir.join("apt")) {
        Ok(apt) => Some(apt),
        Err(err) => {
            eprintln!("vmtest: apt: {err:#}; only kernels already unpacked can run");
            None
        }
    };
    let mut updated = false;
    if let Some(apt) = &apt {
        match apt.lists_age() {
            Some(age) if age < LISTS_MAX_AGE => eprintln!(
                "vmtest: apt: package lists from {} min ago, not refreshed",
                age.as_secs() / 60
            ),
            _ => updated = apt.update_or_warn(),
        }
    }
    series
        .iter()
        .map(|&s| {
            let mut found = resolve(s, apt.as_ref(), &store);
            // A kernel may be missing because the lists are stale (the listed version
            // is gone from the mirror): refresh once and look again.
            if found.is_err()
                && !updated
                && let Some(apt) = &apt
            {
                updated = apt.update_or_warn();
                if updated {
                    found = resolve(s, Some(apt), &store);
                }
            }
            let found = found.or_else(|err| {
                // Offline, or the archive dropped the series: an older unpacked kernel
                // still tests something, and says so.
                match store.newest_cached(s) {
                    Some(kernel) => {
                        eprintln!(
                            "vmtest: {}: {err:#}; using the cached {}",
                            s.label(),
                            kernel.release
                        );
                        Ok(kernel)
                    }
                    None => Err(err),
                }
            });
            (s, found)
        })
        .collect()
}

fn resolve(series: Series, apt: Option<&Apt>, store: &Store) -> Result<Kernel> {
    let Some(apt) = apt else {
        bail!(
            "no apt configuration to look for a {} kernel",
            series.label()
        );
    };
    let mut releases: Vec<String> = apt
        .package_names(series.name_prefix())?
        .iter()
        .filter_map(|name| series.release_of(name).map(str::to_owned))
        .collect();
    releases.sort_by_key(|r| std::cmp::Reverse(version_key(r)));
    releases.dedup();
    if releases.is_empty() {
        bail!(
            "no {} cloud kernel in the package lists of {}",
            series.label(),
            apt.sources.display()
        );
    }
    let mut unavailable = apt.unavailable();
    let mut skipped = Vec::new();
    for release in &releases {
        if let Some(kernel) = store.cached(series, release) {
            return Ok(kernel);
        }
        let packages = series.packages(release);
        if packages.iter().any(|p| unavailable.contains(p)) {
            skipped.push(release.clone());
            continue;
        }
        match apt.download(&packages, &store.debs)? {
            Download::Done(debs) => {
                if !skipped.is_empty() {
                    eprintln!(
                        "vmtest: {}: {} listed but not downloadable; took {release}",
                        series.label(),
                        skipped.join(", ")
                    );
                }
                return store.unpack(series, release, &debs);
            }
            Download::NotFound(missing) => {
                eprintln!(
                    "vmtest: {}: {release} is listed but the mirror has no {} (404); trying \
                     the next one",
                    series.label(),
                    missing.join(" ")
                );
                apt.mark_unavailable(&missing)?;
                unavailable.extend(missing);
                skipped.push(release.clone());
            }
        }
    }
    bail!(
        "none of the listed {} cloud kernels can be downloaded ({} return 404)",
        series.label(),
        skipped.join(", ")
    )
}

/// Orders kernel releases by the numbers in them: 6.1.0-57 after 6.1.0-0.deb11.52,
/// 7.3.4+deb13 after 7.2.13+deb14, 5.10.0-43 after 5.10.0-9.
fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .map(|run| run.parse().unwrap_or(u64::MAX))
        .collect()
}

enum Download {
    Done(Vec<PathBuf>),
    /// The mirror answered 404 for these packages (listed but gone).
    NotFound(Vec<String>),
}

/// vmtest's own apt configuration: sources, lists and cache under target/vmtest/apt.
struct Apt {
    dir: PathBuf,
    sources: PathBuf,
}

impl Apt {
    fn new(dir: &Path) -> Result<Self> {
        let sources = dir.join("vmtest.sources");
        for sub in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("could not create {}", dir.join(sub).display()))?;
        }
        let text = sources_file(&host_mirrors()?);
        // Rewritten only when it changes, so that its mtime says when the mirrors moved.
        if fs::read_to_string(&sources).ok().as_deref() != Some(text.as_str()) {
            fs::write(&sources, text)
                .with_context(|| format!("could not write {}", sources.display()))?;
            // New sources make old lists meaningless.
            let _ = fs::remove_file(dir.join("updated"));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            sources,
        })
    }

    /// apt-get on vmtest's configuration only, its chatter on stderr (stdout may carry
    /// a guest's output).
    fn apt_get(&self) -> Command {
        let mut cmd = setup::apt_get();
        cmd.stdout(std::io::stderr());
        self.configure(cmd)
    }

    fn apt_cache(&self) -> Command {
        self.configure(Command::new("apt-cache"))
    }

    /// The sandbox user would be _apt, which cannot write into the workspace. The cache
    /// files are vmtest's own too.
    fn configure(&self, mut cmd: Command) -> Command {
        let opt = |key: &str, value: &Path| format!("{key}={}", value.display());
        cmd.arg("-o")
            .arg(opt("Dir::Etc::sourcelist", &self.sources))
            .args(["-o", "Dir::Etc::sourceparts=-"])
            .arg("-o")
            .arg(opt("Dir::State::Lists", &self.dir.join("lists")))
            .arg("-o")
            .arg(opt("Dir::Cache", &self.dir.join("cache")))
            // Docker-style images set these to "" (no cache), which costs each apt-cache
            // call a second and a half of parsing the lists again.
            .args(["-o", "Dir::Cache::pkgcache=pkgcache.bin"])
            .args(["-o", "Dir::Cache::srcpkgcache=srcpkgcache.bin"])
            .args(["-o", "APT::Sandbox::User=root"]);
        cmd
    }

    fn stamp(&self) -> PathBuf {
        self.dir.join("updated")
    }

    fn lists_age(&self) -> Option<Duration> {
        let modified = fs::metadata(self.stamp()).ok()?.modified().ok()?;
        SystemTime::now().duration_since(modified).ok()
    }

    /// `apt-get update`; on failure the old lists (if any) are kept and used.
    fn update_or_warn(&self) -> bool {
        eprintln!("vmtest: apt: refreshing vmtest's package lists");
        let mut update = self.apt_get();
        update.arg("update");
        let ok = match update.status() {
            Ok(status) if status.success() => true,
            Ok(status) => {
                eprintln!("vmtest: apt: {} failed ({status})", show(&update));
                false
            }
            Err(err) => {
                eprintln!("vmtest: apt: could not run {}: {err}", show(&update));
                false
            }
        };
        if ok {
            let _ = fs::write(self.stamp(), "");
            // Packages that were gone may be back, or replaced, with the new lists.
            let _ = fs::remove_file(self.dir.join("unavailable"));
        }
        ok
    }

    fn package_names(&self, prefix: &str) -> Result<Vec<String>> {
        let mut cmd = self.apt_cache();
        cmd.args(["pkgnames", prefix]).stderr(Stdio::inherit());
        let out = cmd
            .output()
            .with_context(|| format!("could not run {}", show(&cmd)))?;
        if !out.status.success() {
            bail!("{} failed ({})", show(&cmd), out.status);
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Packages that returned 404 since the last `apt-get update`: not asked again
    /// until the lists change, so a cached run makes no request at all.
    fn unavailable(&self) -> BTreeSet<String> {
        fs::read_to_string(self.dir.join("unavailable"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn mark_unavailable(&self, packages: &[String]) -> Result<()> {
        let mut all = self.unavailable();
        all.extend(packages.iter().cloned());
        let text = all.iter().fold(String::new(), |mut text, package| {
            text.push_str(package);
            text.push('\n');
            text
        });
        fs::write(self.dir.join("unavailable"), text).context("could not record 404s")
    }

    fn download(&self, packages: &[String], dest: &Path) -> Result<Download> {
        fs::create_dir_all(dest).with_context(|| format!("could not create {}", dest.display()))?;
        eprintln!("vmtest: apt: downloading {}", packages.join(" "));
        let mut cmd = self.apt_get();
        cmd.arg("download")
            .args(packages)
            .current_dir(dest)
            .stderr(Stdio::piped());
        let out = cmd
            .output()
            .with_context(|| format!("could not run {}", show(&cmd)))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let missing: Vec<String> = packages
                .iter()
                .filter(|p| {
                    stderr
                        .lines()
                        .any(|l| l.contains("404") && l.contains(&format!("/{p}_")))
                })
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Ok(Download::NotFound(missing));
            }
            bail!("{} failed ({}):\n{}", show(&cmd), out.status, stderr.trim());
        }
        packages
            .iter()
            .map(|p| find_deb(dest, p))
            .collect::<Result<_>>()
            .map(Download::Done)
    }
}

/// The .deb that `apt-get download PACKAGE` left in `dir` (named `PACKAGE_VERSION_ARCH`).
fn find_deb(dir: &Path, package: &str) -> Result<PathBuf> {
    let prefix = format!("{package}_");
    let mut found: Vec<(SystemTime, PathBuf)> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".deb")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    found.sort();
    found.pop().map(|(_, path)| path).with_context(|| {
        format!(
            "apt-get download left no {prefix}*.deb in {}",
            dir.display()
        )
    })
}

/// The mirrors the host uses: the main archive and the security archive, each with the
/// keyring its stanza names.
#[derive(Debug, PartialEq, Eq)]
struct Mirrors {
    main: String,
    security: String,
    signed_by: Option<String>,
}

fn host_mirrors() -> Result<Mirrors> {
    let deb822 = fs::read_to_string(HOST_SOURCES).unwrap_or_default();
    let one_line = fs::read_to_string(HOST_SOURCES_LIST).unwrap_or_default();
    parse_mirrors(&deb822, &one_line).with_context(|| {
        format!(
            "could not find the Debian archive and security mirrors in {HOST_SOURCES} or \
             {HOST_SOURCES_LIST}"
        )
    })
}

/// Reads (uri, suite, signed-by) entries from a deb822 sources file and a one-line
/// sources.list, and picks the archive of a plain suite and of a -security suite.
fn parse_mirrors(deb822: &str, one_line: &str) -> Option<Mirrors> {
    let mut entries: Vec<(String, String, Option<String>)> = Vec::new();
    for stanza in deb822.split("\n\n") {
        let mut uris = Vec::new();
        let mut suites = Vec::new();
        let mut signed_by = None;
        let mut is_deb = false;
        for line in stanza.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let words = value.split_whitespace().map(str::to_owned);
            match key.trim().to_ascii_lowercase().as_str() {
                "types" => is_deb = value.split_whitespace().any(|t| t == "deb"),
                "uris" => uris.extend(words),
                "suites" => suites.extend(words),
                "signed-by" => signed_by = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        if is_deb {
            for uri in &uris {
                for suite in &suites {
                    entries.push((uri.clone(), suite.clone(), signed_by.clone()));
                }
            }
        }
    }
    for line in one_line.lines() {
        if line.split_whitespace().next() != Some("deb") {
            continue;
        }
        // Past the `[option=value ...]` block, if any.
        let rest: Vec<&str> = line
            .split_whitespace()
            .skip(1)
            .scan(false, |in_options, w| {
                let skip = *in_options || w.starts_with('[');
                *in_options = skip && !w.ends_with(']');
                Some((skip, w))
            })
            .filter(|(skip, _)| !skip)
            .map(|(_, w)| w)
            .collect();
        if let [uri, suite, ..] = rest.as_slice() {
            entries.push(((*uri).to_owned(), (*suite).to_owned(), None));
        }
    }
    let pick = |security: bool| {
        entries
            .iter()
            .find(|(_, suite, _)| suite.ends_with("-security") == security)
    };
    let (main, _, signed_by) = pick(false)?;
    let (security, _, _) = pick(true)?;
    Some(Mirrors {
        main: main.trim_end_matches('/').to_owned(),
        security: security.trim_end_matches('/').to_owned(),
        signed_by: signed_by.clone(),
    })
}

/// vmtest's sources, in deb822 form. Only the Packages indices: no translations nor
/// `AppStream` metadata, which are half of what a plain update fetches.
fn sources_file(mirrors: &Mirrors) -> String {
    let stanza = |uri: &str, suites: &[&str]| {
        let mut s = format!(
            "Types: deb\nURIs: {uri}\nSuites: {}\nComponents: main\nTargets: Packages\n",
            suites.join(" ")
        );
        if let Some(keyring) = &mirrors.signed_by {
            let _ = writeln!(s, "Signed-By: {keyring}");
        }
        s
    };
    format!(
        "# Written by cargo xtask vmtest from the host's mirrors; used only by vmtest.\n\n{}\n{}",
        stanza(&mirrors.main, MAIN_SUITES),
        stanza(&mirrors.security, SECURITY_SUITES)
    )
}

/// Unpacked kernels under target/vmtest/kernels, and the downloaded .debs.
struct Store {
    kernels: PathBuf,
    debs: PathBuf,
}

impl Store {
    fn dir(&self, release: &str) -> PathBuf {
        self.kernels.join(release)
    }

    /// A kernel unpacked by an earlier run: its directory only exists once complete
    /// (it is renamed into place).
    fn cached(&self, series: Series, release: &str) -> Option<Kernel> {
        let root = self.dir(release);
        root.is_dir().then_some(())?;
        locate(series, release, &root).ok()
    }

    fn newest_cached(&self, series: Series) -> Option<Kernel> {
        let mut releases: Vec<String> = fs::read_dir(&self.kernels)
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| !name.ends_with(".partial"))
            .filter(|name| {
                series
                    .packages(name)
                    .first()
                    .is_some_and(|p| series.release_of(p) == Some(name.as_str()))
            })
            .collect();
        releases.sort_by_key(|r| std::cmp::Reverse(version_key(r)));
        releases
            .iter()
            .find_map(|release| self.cached(series, release))
    }

    fn unpack(&self, series: Series, release: &str, debs: &[PathBuf]) -> Result<Kernel> {
        let dir = self.dir(release);
        let partial = self.kernels.join(format!("{release}.partial"));
        if partial.exists() {
            fs::remove_dir_all(&partial)
                .with_context(|| format!("could not remove {}", partial.display()))?;
        }
        fs::create_dir_all(&partial)
            .with_context(|| format!("could not create {}", partial.display()))?;
        for deb in debs {
            let mut cmd = Command::new("dpkg-deb");
            cmd.arg("-x").arg(deb).arg(&partial);
            run_quiet(&mut cmd)?;
        }
        // 7.x keeps its modules (and image and config) under usr/lib/modules: move them
        // where depmod and modprobe -d look, so every series has one layout.
        let usr_modules = partial.join("usr/lib/modules").join(release);
        let modules = partial.join("lib/modules").join(release);
        if usr_modules.is_dir() {
            fs::create_dir_all(&modules)?;
            for entry in fs::read_dir(&usr_modules)? {
                let entry = entry?;
                fs::rename(entry.path(), modules.join(entry.file_name()))?;
            }
        }
        let mut depmod = Command::new("depmod");
        depmod.arg("-b").arg(&partial).arg(release);
        run_quiet(&mut depmod)?;
        // Checked before the rename: a tree without an image never counts as cached.
        locate(series, release, &partial)?;
        fs::rename(&partial, &dir)
            .with_context(|| format!("could not rename {} into place", partial.display()))?;
        eprintln!("vmtest: {}: unpacked {release}", series.label());
        locate(series, release, &dir)
    }
}

/// The image and config of an unpacked kernel, wherever its packaging put them.
fn locate(series: Series, release: &str, root: &Path) -> Result<Kernel> {
    let modules = root.join("lib/modules").join(release);
    let first = |candidates: [PathBuf; 2]| candidates.into_iter().find(|p| p.is_file());
    let vmlinuz = first([
        root.join("boot").join(format!("vmlinuz-{release}")),
        modules.join("vmlinuz.unsigned"),
    ])
    .with_context(|| format!("no kernel image for {release} in {}", root.display()))?;
    if !modules.join("modules.dep").is_file() {
        bail!("no modules.dep for {release} in {}", root.display());
    }
    let config = first([
        root.join("boot").join(format!("config-{release}")),
        modules.join("config"),
    ]);
    Ok(Kernel {
        series,
        release: release.to_owned(),
        root: root.to_path_buf(),
        vmlinuz,
        config,
    })
}

/// Runs a helper whose output only matters when it fails.
pub fn run_quiet(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("could not run {}", show(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}):\n{}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_of_each_series() {
        let s = Series::V6_1;
        assert_eq!(
            s.release_of("linux-image-6.1.0-57-cloud-amd64-unsigned"),
            Some("6.1.0-57-cloud-amd64")
        );
        assert_eq!(s.release_of("linux-image-6.1.0-57-amd64-unsigned"), None);
        assert_eq!(s.release_of("linux-image-6.1.0-57-cloud-amd64"), None);
        assert_eq!(
            s.release_of("linux-image-6.12.118+deb12-cloud-amd64-unsigned"),
            None
        );
        assert_eq!(
            Series::V6_12.release_of("linux-image-6.12.118+deb12-cloud-amd64-unsigned"),
            Some("6.12.118+deb12-cloud-amd64")
        );
        assert_eq!(
            Series::V7.release_of("linux-binary-unsigned-7.3.4+deb13-cloud-amd64"),
            Some("7.3.4+deb13-cloud-amd64")
        );
        assert_eq!(
            Series::V7.release_of("linux-binary-unsigned-7.3.4+deb13-rt-amd64"),
            None
        );
        assert_eq!(
            Series::V7.packages("7.3.4+deb13-cloud-amd64")[1],
            "linux-modules-7.3.4+deb13-cloud-amd64"
        );
    }

    #[test]
    fn newest_release_first() {
        let mut releases = vec![
            "6.1.0-0.deb11.52-cloud-amd64",
            "6.1.0-57-cloud-amd64",
            "6.1.0-9-cloud-amd64",
            "7.2.13+deb14-cloud-amd64",
            "7.3.4+deb13-cloud-amd64",
        ];
        releases.sort_by_key(|r| std::cmp::Reverse(version_key(r)));
        assert_eq!(
            releases,
            [
                "7.3.4+deb13-cloud-amd64",
                "7.2.13+deb14-cloud-amd64",
                "6.1.0-57-cloud-amd64",
                "6.1.0-9-cloud-amd64",
                "6.1.0-0.deb11.52-cloud-amd64",
            ]
        );
    }

    #[test]
    fn mirrors_from_host_sources() {
        let deb822 = "Types: deb\n# http://snapshot.debian.org/archive/debian/2025\n\
                      URIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\
                      Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                      Types: deb\nURIs: http://deb.debian.org/debian-security/\n\
                      Suites: bookworm-security\nComponents: main\n";
        let mirrors = parse_mirrors(deb822, "").unwrap();
        assert_eq!(
            mirrors,
            Mirrors {
                main: "http://deb.debian.org/debian".into(),
                security: "http://deb.debian.org/debian-security".into(),
                signed_by: Some("/usr/share/keyrings/debian-archive-keyring.gpg".into()),
            }
        );
        let one_line = "deb [arch=amd64] http://m.example/debian bookworm main\n\
                        deb http://m.example/debian-security bookworm-security main\n";
        let mirrors = parse_mirrors("", one_line).unwrap();
        assert_eq!(mirrors.main, "http://m.example/debian");
        assert_eq!(mirrors.security, "http://m.example/debian-security");
        assert!(parse_mirrors("", "").is_none());
    }
}
