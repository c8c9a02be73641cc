//! The capabilities loading needs, checked first so that a missing one is named, and
//! the locked-memory limit old kernels charge BPF maps to.

use std::fs;

use super::LoadError;
use crate::kernel::sys;

// Capability bits (include/uapi/linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Checks the effective capabilities before anything is attempted, so that the error
/// names what is missing instead of a raw EPERM from the kernel.
///
/// # Errors
///
/// Naming the capabilities that are missing.
pub fn check_privileges() -> Result<(), LoadError> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let memlock = memlock_counts() && !sys::memlock_unlimited();
    let missing = missing_capabilities(effective, memlock);
    if missing.is_empty() {
        return Ok(());
    }
    let noun = if missing.len() == 1 {
        "capability"
    } else {
        "capabilities"
    };
    Err(LoadError::Privileges {
        missing: format!("{noun} {}", missing.join(" and ")),
        memlock: if memlock {
            ", and CAP_SYS_RESOURCE on this kernel"
        } else {
            ""
        },
    })
}

/// The capabilities missing from `effective` (a `CapEff` mask). `CAP_SYS_ADMIN` covers BPF
/// and perf events; `CAP_SYS_RESOURCE` matters only when `memlock` (BPF memory charged to
/// a limited `RLIMIT_MEMLOCK`, which only it may raise).
fn missing_capabilities(effective: u64, memlock: bool) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_SYS_ADMIN) {
        for (cap, name) in [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")] {
            if !has(cap) {
                missing.push(name);
            }
        }
    }
    if memlock && !has(CAP_SYS_RESOURCE) {
        missing.push("CAP_SYS_RESOURCE");
    }
    missing
}

/// Kernels before 5.11 charge BPF maps to `RLIMIT_MEMLOCK` (later ones to the memory cgroup).
fn memlock_counts() -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    kernel_before_5_11(&release)
}

fn kernel_before_5_11(release: &str) -> bool {
    let mut numbers = release
        .trim()
        .split(['.', '-', '+'])
        .map(|part| part.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) < (5, 11),
        // Unreadable: assume a new kernel; the load error would say more.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn caps(list: &[u32]) -> u64 {
        let mut mask = 0;
        let mut i = 0;
        while i < list.len() {
            mask |= 1 << list[i];
            i += 1;
        }
        mask
    }

    #[test]
    fn missing_capabilities_are_named_exactly() {
        assert!(missing_capabilities(caps(&[CAP_SYS_ADMIN]), false).is_empty());
        assert!(missing_capabilities(caps(&[CAP_BPF, CAP_PERFMON]), false).is_empty());
        assert_eq!(
            missing_capabilities(caps(&[CAP_PERFMON]), false),
            ["CAP_BPF"]
        );
        assert_eq!(
            missing_capabilities(caps(&[CAP_BPF]), false),
            ["CAP_PERFMON"]
        );
        assert_eq!(missing_capabilities(0, false), ["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(
            missing_capabilities(caps(&[CAP_SYS_ADMIN]), true),
            ["CAP_SYS_RESOURCE"]
        );
        assert!(
            missing_capabilities(caps(&[CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE]), true).is_empty()
        );
    }

    #[test]
    fn kernel_release_parsing() {
        assert!(kernel_before_5_11("5.10.0-28-amd64\n"));
        assert!(kernel_before_5_11("4.19.0"));
        assert!(!kernel_before_5_11("5.11.0"));
        assert!(!kernel_before_5_11("6.12.48+deb13-amd64"));
        assert!(!kernel_before_5_11(""));
        assert!(!kernel_before_5_11("garbage"));
    }
}
