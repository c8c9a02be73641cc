//! The live view's selectors (`--target-comm`, `--target-exe`, `--unit`, `--container`,
//! `--pod`, `--cgroup`, `--signal`): which processes and signals an on-call engineer
//! follows, across restarts. Every selector given must hold (they combine with "and").
//!
//! The kernel applies `--signal` and `--target-comm` itself (tracer-common's `Select`)
//! and keeps the processes userspace picked with the others in its target filter; the
//! exact test is here, on each process the table knows and on each report.

use crate::{
    analysis::{report::SignalReport, rules::glob_match},
    model::{cgroup::Identity, signals::parse_signal},
};

/// What the selectors look at in a process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub comm: &'a str,
    pub exe: Option<&'a str>,
    pub argv0: Option<&'a str>,
    pub cgroup: Option<&'a str>,
    pub identity: Option<&'a Identity>,
}

/// The selectors given; all `None` (and no signals) selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    /// Exact comm (compared as the kernel keeps it: at most 15 bytes).
    pub comm: Option<String>,
    /// Glob over the executable's path (over its file name when the pattern has no `/`).
    pub exe: Option<String>,
    /// A systemd unit: a component of the cgroup path (`nginx` means `nginx.service`).
    pub unit: Option<String>,
    /// A container id, or a prefix of one (as `docker ps` shows 12 digits).
    pub container: Option<String>,
    /// A pod's name, `namespace/name`, or uid.
    pub pod: Option<String>,
    /// A cgroup path (as /proc/PID/cgroup shows it): that cgroup and those below it.
    pub cgroup: Option<String>,
    /// Signal numbers; empty for all.
    pub signals: Vec<i32>,
}

/// A selector's value that cannot select anything.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    #[error("--signal: {0}")]
    Signal(String),
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

/// The kernel's comm: the first 15 bytes (`TASK_COMM_LEN` 16 with the NUL).
fn kernel_comm(name: &str) -> &str {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl Selectors {
    /// Checks the values and parses `--signal SIG[,SIG]`.
    ///
    /// # Errors
    ///
    /// An empty value, or a signal name that names no signal.
    pub fn new(mut self, signals: Option<&str>) -> Result<Self, SelectError> {
        for (name, value) in self.by_flag() {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(SelectError::Empty(name));
            }
        }
        if let Some(list) = signals {
            self.signals = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| parse_signal(s).map_err(|e| SelectError::Signal(e.to_string())))
                .collect::<Result<_, _>>()?;
            if self.signals.is_empty() {
                return Err(SelectError::Empty("--signal"));
            }
        }
        if let Some(cgroup) = &mut self.cgroup
            && cgroup.len() > 1
        {
            *cgroup = format!("/{}", cgroup.trim_matches('/'));
        }
        Ok(self)
    }

    /// Whether any selector names processes (not only signals).
    #[must_use]
    pub fn selects_processes(&self) -> bool {
        self.comm.is_some() || self.resolved_in_userspace()
    }

    /// Whether a selector only userspace can test is given (`--target-exe`, `--unit`,
    /// `--container`, `--pod`, `--cgroup`): the kernel then gives every process that
    /// execs a grace until userspace has decided (`Select::exec_grace_ns`).
    #[must_use]
    pub fn resolved_in_userspace(&self) -> bool {
        self.exe.is_some()
            || self.unit.is_some()
            || self.container.is_some()
            || self.pod.is_some()
            || self.cgroup.is_some()
    }

    /// The kernel's signal mask (`Select::signal_mask`): bit N-1 for signal N.
    #[must_use]
    pub fn signal_mask(&self) -> u64 {
        self.signals
            .iter()
            .filter(|&&s| (1..=64).contains(&s))
            .fold(0, |mask, &s| mask | 1u64 << (s - 1))
    }

    /// `--target-comm` as the kernel compares it (`Select::target_comm`), NUL-padded.
    #[must_use]
    pub fn kernel_comm(&self) -> [u8; tracer_common::COMM_LEN] {
        let mut out = [0; tracer_common::COMM_LEN];
        if let Some(comm) = &self.comm {
            let comm = kernel_comm(comm).as_bytes();
            out[..comm.len()].copy_from_slice(comm);
        }
        out
    }

    #[must_use]
    pub fn signal_selected(&self, signo: i32) -> bool {
        self.signals.is_empty() || self.signals.contains(&signo)
    }

    /// Whether process `p` is one the selectors follow.
    #[must_use]
    pub fn selects(&self, p: &Candidate<'_>) -> bool {
        let comm = self
            .comm
            .as_deref()
            .is_none_or(|want| kernel_comm(want) == p.comm);
        let exe = self.exe.as_deref().is_none_or(|pattern| {
            let exe = p.exe.map(|e| e.strip_suffix(" (deleted)").unwrap_or(e));
            if pattern.contains('/') {
                exe.is_some_and(|e| glob_match(pattern, e))
            } else {
                exe.into_iter()
                    .chain(p.argv0)
                    .any(|path| glob_match(pattern, path.rsplit('/').next().unwrap_or(path)))
            }
        });
        let components = || p.cgroup.unwrap_or("").split('/').filter(|c| !c.is_empty());
        let unit = self.unit.as_deref().is_none_or(|unit| {
            components().any(|c| c == unit || c.strip_suffix(".service") == Some(unit))
        });
        let identity = p.identity;
        let container = self.container.as_deref().is_none_or(|id| {
            identity
                .and_then(|i| i.container_id.as_deref())
                .is_some_and(|found| found.starts_with(id))
        });
        let pod = self.pod.as_deref().is_none_or(|pod| {
            identity.is_some_and(|i| {
                i.pod_uid.as_deref() == Some(pod)
                    || i.pod_name.as_deref() == Some(pod)
                    || match (&i.pod_namespace, &i.pod_name) {
                        (Some(ns), Some(name)) => pod == format!("{ns}/{name}"),
                        _ => false,
                    }
            })
        });
        let cgroup = self.cgroup.as_deref().is_none_or(|want| {
            p.cgroup.is_some_and(|path| {
                want == "/"
                    || path == want
                    || path
                        .strip_prefix(want)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        });
        comm && exe && unit && container && pod && cgroup
    }

    /// Whether a report is one to show: its signal selected, and its target (or, for a
    /// failed attempt with no target, nothing to test) selected.
    #[must_use]
    pub fn selects_report(&self, r: &SignalReport) -> bool {
        if !self.signal_selected(r.signo) {
            return false;
        }
        let Some(target) = r.target.as_deref() else {
            return true;
        };
        self.selects(&Candidate {
            comm: &target.comm,
            exe: target.exe.as_deref(),
            argv0: target.argv.first().map(String::as_str),
            cgroup: target.cgroup.as_deref(),
            identity: Some(&target.identity),
        })
    }

    /// Each process selector with its command-line flag.
    fn by_flag(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("--target-comm", &self.comm),
            ("--target-exe", &self.exe),
            ("--unit", &self.unit),
            ("--container", &self.container),
            ("--pod", &self.pod),
            ("--cgroup", &self.cgroup),
        ]
    }

    /// The selectors as a user would have typed them, for sigwho's start-up line.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (flag, value) in self.by_flag() {
            if let Some(value) = value {
                parts.push(format!("{flag} {value}"));
            }
        }
        if !self.signals.is_empty() {
            let names: Vec<String> = self
                .signals
                .iter()
                .map(|&s| crate::model::signals::signal_label(s))
                .collect();
            parts.push(format!("--signal {}", names.join(",")));
        }
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process<'a>(
        comm: &'a str,
        exe: &'a str,
        cgroup: &'a str,
        id: &'a Identity,
    ) -> Candidate<'a> {
        Candidate {
            comm,
            exe: Some(exe),
            argv0: None,
            cgroup: Some(cgroup),
            identity: Some(id),
        }
    }

    #[test]
    fn every_selector_must_hold() {
        let id = crate::model::cgroup::identity(
            "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
        );
        let worker = process(
            "gunicorn",
            "/usr/bin/python3.11",
            "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
            &id,
        );
        let select = |s: Selectors| s.new(None).unwrap().selects(&worker);
        assert!(select(Selectors::default()));
        assert!(select(Selectors {
            comm: Some("gunicorn".into()),
            ..Selectors::default()
        }));
        assert!(!select(Selectors {
            comm: Some("gunicor".into()),
            ..Selectors::default()
        }));
        assert!(select(Selectors {
            exe: Some("python3*".into()),
            container: Some("0123456789ab".into()),
            ..Selectors::default()
        }));
        assert!(!select(Selectors {
            exe: Some("/usr/bin/node".into()),
            container: Some("0123456789ab".into()),
            ..Selectors::default()
        }));
        assert!(select(Selectors {
            cgroup: Some("system.slice/".into()),
            ..Selectors::default()
        }));
        assert!(!select(Selectors {
            cgroup: Some("/system.sl".into()),
            ..Selectors::default()
        }));
        assert!(!select(Selectors {
            unit: Some("nginx".into()),
            ..Selectors::default()
        }));
        let unit_id = Identity::default();
        let nginx = process(
            "nginx",
            "/usr/sbin/nginx",
            "/system.slice/nginx.service",
            &unit_id,
        );
        for unit in ["nginx", "nginx.service"] {
            let s = Selectors {
                unit: Some(unit.into()),
                ..Selectors::default()
            };
            assert!(s.selects(&nginx), "{unit}");
        }
    }

    #[test]
    fn long_names_compare_as_the_kernel_keeps_them() {
        let id = Identity::default();
        let p = process("sigwho-testproc", "/x/sigwho-testproc", "/", &id);
        let s = Selectors {
            comm: Some("sigwho-testprocess".into()),
            ..Selectors::default()
        };
        assert!(s.selects(&p));
        assert_eq!(&s.kernel_comm()[..16], b"sigwho-testproc\0");
    }

    #[test]
    fn signals_parse_into_a_mask() {
        let s = Selectors::default().new(Some("TERM, sigkill,10")).unwrap();
        assert_eq!(s.signals, [15, 9, 10]);
        assert_eq!(s.signal_mask(), (1 << 14) | (1 << 8) | (1 << 9));
        assert!(s.signal_selected(9) && !s.signal_selected(2));
        assert!(Selectors::default().new(Some("NOPE")).is_err());
        assert_eq!(
            Selectors::default().new(Some(",")),
            Err(SelectError::Empty("--signal"))
        );
        assert_eq!(
            Selectors {
                unit: Some(" ".into()),
                ..Selectors::default()
            }
            .new(None),
            Err(SelectError::Empty("--unit"))
        );
        assert_eq!(Selectors::default().signal_mask(), 0);
    }

    #[test]
    fn pods_by_name_namespace_or_uid() {
        let id = Identity {
            pod_uid: Some("1b4e28ba-2fa1-11d2-883f-0016d3cca427".into()),
            pod_name: Some("web-1".into()),
            pod_namespace: Some("shop".into()),
            ..Identity::default()
        };
        let p = process("node", "/usr/bin/node", "/kubepods/x", &id);
        for pod in [
            "web-1",
            "shop/web-1",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        ] {
            let s = Selectors {
                pod: Some(pod.into()),
                ..Selectors::default()
            };
            assert!(s.selects(&p), "{pod}");
        }
        let s = Selectors {
            pod: Some("web-2".into()),
            ..Selectors::default()
        };
        assert!(!s.selects(&p));
    }
}
