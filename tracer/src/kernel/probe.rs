//! What this kernel offers sigwho's programs, probed before they load, and what each
//! hook and feature ended up as (`sigwho doctor`, docs/kernels.md).
//!
//! Kernels differ in which helpers exist (`bpf_get_current_task_btf` since 5.11,
//! `bpf_task_pt_regs` since 5.15), in what their verifiers accept, and in what lockdown
//! allows. Each difference has a fallback where one exists; a [`Feature`] records which
//! way each went and what it costs the reports.

use std::fmt;

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported, is_map_supported},
};
use serde::Serialize;

/// How a hook or kernel feature is used on this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Used as designed.
    Used,
    /// Replaced by something that costs more or sees less (see [`Feature::cost`]).
    Fallback,
    /// Not available and nothing stands in.
    Missing,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Used => "used",
            Status::Fallback => "fallback",
            Status::Missing => "missing",
        })
    }
}

/// One hook or kernel feature and how it is used here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Feature {
    /// Stable name (docs/kernels.md's rows): `tp_btf`, `task_pt_regs`, ...
    pub name: &'static str,
    pub status: Status,
    /// What is used, what stands in, or why it is missing.
    pub detail: String,
    /// What the fallback or the absence costs: reports that lack something, or work
    /// added to the machine. Empty when used.
    pub cost: String,
}

impl Feature {
    pub fn used(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Used,
            detail: detail.into(),
            cost: String::new(),
        }
    }

    pub fn fallback(
        name: &'static str,
        detail: impl Into<String>,
        cost: impl Into<String>,
    ) -> Self {
        Self {
            name,
            status: Status::Fallback,
            detail: detail.into(),
            cost: cost.into(),
        }
    }

    pub fn missing(name: &'static str, detail: impl Into<String>, cost: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Missing,
            detail: detail.into(),
            cost: cost.into(),
        }
    }
}

/// Helpers every program needs; without any of them sigwho cannot trace. Each
/// appeared in Linux 5.8 or earlier.
const REQUIRED_HELPERS: [(BpfHelper, &str); 8] = [
    (
        BpfHelper::BPF_FUNC_probe_read_kernel,
        "bpf_probe_read_kernel",
    ),
    (
        BpfHelper::BPF_FUNC_probe_read_kernel_str,
        "bpf_probe_read_kernel_str",
    ),
    (BpfHelper::BPF_FUNC_probe_read_user, "bpf_probe_read_user"),
    (
        BpfHelper::BPF_FUNC_ktime_get_boot_ns,
        "bpf_ktime_get_boot_ns",
    ),
    (BpfHelper::BPF_FUNC_jiffies64, "bpf_jiffies64"),
    (BpfHelper::BPF_FUNC_ringbuf_reserve, "bpf_ringbuf_reserve"),
    (BpfHelper::BPF_FUNC_ringbuf_query, "bpf_ringbuf_query"),
    (BpfHelper::BPF_FUNC_get_current_task, "bpf_get_current_task"),
];

/// What the kernel was found to offer before the programs load.
#[derive(Clone, Debug, Default)]
pub struct Probed {
    pub ring_buffer: bool,
    /// Required helpers this kernel lacks (names).
    pub missing_helpers: Vec<&'static str>,
    pub current_task_btf: bool,
    pub task_pt_regs: bool,
}

/// A helper is probed from a tracepoint program: the helpers sigwho uses are the
/// tracing ones (`kernel/trace/bpf_trace.c`, `bpf_tracing_func_proto`), which every
/// tracing program type may call.
fn helper(helper: BpfHelper) -> bool {
    is_helper_supported(ProgramType::TracePoint, helper).unwrap_or(false)
}

/// Probes the maps and helpers the programs use (BTF tracepoints are probed by
/// loading them: aya's tracing-program probe loads an fentry program, which lockdown
/// refuses even where `tp_btf` programs load). Each probe loads a
/// two-instruction program or creates a small map (`aya::sys`, after libbpf's probes).
#[must_use]
pub fn probe() -> Probed {
    Probed {
        ring_buffer: is_map_supported(MapType::RingBuf).unwrap_or(false),
        missing_helpers: REQUIRED_HELPERS
            .iter()
            .filter(|(id, _)| !helper(*id))
            .map(|(_, name)| *name)
            .collect(),
        current_task_btf: helper(BpfHelper::BPF_FUNC_get_current_task_btf),
        task_pt_regs: helper(BpfHelper::BPF_FUNC_task_pt_regs),
    }
}

/// How a pidfd names its process on this kernel: pidfs since 6.9 keeps the struct pid
/// in the inode (fs/pidfs.c), older kernels in the file (kernel/pid.c). The programs
/// read both; this says which one serves here.
#[must_use]
pub fn pidfd_backing() -> Feature {
    const NAME: &str = "pidfs";
    match crate::kernel::sys::pidfd_fs_magic() {
        Ok(magic) if magic == crate::kernel::sys::PIDFS_MAGIC => Feature::used(
            NAME,
            "pidfds live on pidfs (the target is read from the inode)",
        ),
        Ok(_) => Feature::used(
            NAME,
            "no pidfs: pidfds are anonymous inodes (the target is read from the file)",
        ),
        Err(error) => Feature::missing(
            NAME,
            format!("pidfd_open failed: {error}"),
            "pidfd_send_signal() requests name the fd, not the process",
        ),
    }
}

/// The unified cgroup hierarchy, whose path exec records carry (a container's or
/// unit's identity for a process gone before userspace could read /proc).
#[must_use]
pub fn cgroup_v2() -> Feature {
    const NAME: &str = "cgroup_v2";
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    match mounts
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&"cgroup2"))
    {
        Some(fields) => Feature::used(
            NAME,
            format!("unified hierarchy at {}", fields.get(1).unwrap_or(&"?")),
        ),
        None => Feature::missing(
            NAME,
            "no cgroup2 mount",
            "container and unit ids come from /proc only: none for processes gone before they are read",
        ),
    }
}

/// The kernel's lockdown mode (security/lockdown), which decides whether trampolines
/// (fexit) may load; None where the LSM is absent.
#[must_use]
pub fn lockdown() -> Option<String> {
    let text = std::fs::read_to_string("/sys/kernel/security/lockdown").ok()?;
    // "none [integrity] confidentiality": the bracketed word is the mode.
    let mode = text.split_whitespace().find(|w| w.starts_with('['))?;
    Some(mode.trim_matches(['[', ']']).to_owned())
}

/// The kernel release (`uname -r`).
#[must_use]
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |text| text.trim().to_owned())
}

/// The meaningful part of a verifier log: its last line that is not a statistic
/// (`processed N insns`, `verification time`, `stack depth`), in a few words.
pub fn verifier_reason(log: &str) -> Option<String> {
    /// Characters of the reason kept: a line of an error message.
    const LIMIT: usize = 160;
    const STATISTICS: [&str; 6] = [
        "processed ",
        "verification time",
        "stack depth",
        "max_states_per_insn",
        "peak_states",
        "mark_read",
    ];
    let line = log
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .rfind(|line| !STATISTICS.iter().any(|s| line.starts_with(s)))?;
    Some(if line.chars().count() > LIMIT {
        let cut: String = line.chars().take(LIMIT - 1).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_last_line_before_the_statistics() {
        let log = "0: R1=ctx() R10=fp0\n\
                   12: (61) r1 = *(u32 *)(r1 +0)\n\
                   R1 invalid mem access 'scalar'\n\
                   processed 13 insns (limit 1000000) max_states_per_insn 0 total_states 1\n\
                   \n";
        assert_eq!(
            verifier_reason(log).as_deref(),
            Some("R1 invalid mem access 'scalar'")
        );
        assert_eq!(verifier_reason(""), None);
        assert_eq!(verifier_reason("processed 1 insns\n"), None);
        let overlong = "x".repeat(500);
        let reason = verifier_reason(&overlong).unwrap();
        assert_eq!(reason.chars().count(), 160);
        assert!(reason.ends_with('…'));
    }
}
