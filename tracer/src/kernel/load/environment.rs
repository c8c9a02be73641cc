//! What the kernel must offer before anything loads: tracefs with the required
//! tracepoints, BTF, the ring buffer and the helpers; and which optional helpers it has.

use std::path::PathBuf;

use aya::Btf;

use super::{BTF_HOOKS, BTF_OVERRIDE, DISABLE_HOOKS, LoadError, TRACEFS_OVERRIDE};
use crate::error::chain;
use crate::kernel::probe::{self, Feature};
use crate::kernel::tracefs;

/// Where sigwho looks for tracepoints and their formats, checked to have the required
/// ones. Tests point [`TRACEFS_OVERRIDE`] at a trimmed copy to play a kernel that lacks
/// some hooks; attaching still goes through the real tracefs.
pub(super) fn tracefs_root(features: &mut Vec<Feature>) -> Result<PathBuf, LoadError> {
    let mounted = tracefs::ensure_mounted().inspect_err(|error| {
        features.push(Feature::missing(
            "tracefs",
            error.to_string(),
            "nothing can be traced",
        ));
    })?;
    features.push(Feature::used(
        "tracefs",
        format!("mounted at {}", mounted.display()),
    ));
    let root = std::env::var_os(TRACEFS_OVERRIDE)
        .map(PathBuf::from)
        .unwrap_or(mounted);
    for (event, group) in BTF_HOOKS {
        let path: PathBuf = root.join("events").join(group).join(event);
        if !path.exists() {
            features.push(Feature::missing(
                "tp_btf",
                format!("no {group}:{event} tracepoint"),
                "nothing can be traced",
            ));
            return Err(LoadError::MissingTracepoint {
                what: format!("{group}:{event}"),
                path: path.display().to_string(),
            });
        }
    }
    Ok(root)
}

/// The kernel's type information, which the BTF tracepoints and CO-RE need. A test (or
/// a kernel that keeps it elsewhere) may name another file.
pub(super) fn kernel_btf(features: &mut Vec<Feature>) -> Result<Btf, LoadError> {
    let btf = match std::env::var_os(BTF_OVERRIDE) {
        Some(path) => Btf::parse_file(&path, aya::Endianness::default()),
        None => Btf::from_sys_fs(),
    }
    .map_err(|e| LoadError::NoBtf(chain(&e)))
    .inspect_err(|error| {
        features.push(Feature::missing(
            "btf",
            error.to_string(),
            "nothing can be traced",
        ));
    })?;
    features.push(Feature::used(
        "btf",
        std::env::var(BTF_OVERRIDE).unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".to_owned()),
    ));
    Ok(btf)
}

/// The ring buffer and the helpers every program calls, required; the optional helpers,
/// as `CONFIG.features` bits (unless disabled).
pub(super) fn probe_kernel(
    features: &mut Vec<Feature>,
    is_disabled: &impl Fn(&str) -> bool,
) -> Result<u32, LoadError> {
    let probed = probe::probe();
    if !probed.ring_buffer {
        features.push(Feature::missing(
            "ring_buffer",
            "BPF ring buffer maps need Linux 5.8",
            "nothing can be traced",
        ));
        return Err(LoadError::Unsupported("the BPF ring buffer (Linux 5.8)"));
    }
    features.push(Feature::used("ring_buffer", "BPF_MAP_TYPE_RINGBUF"));
    if !probed.missing_helpers.is_empty() {
        let missing = probed.missing_helpers.join(", ");
        features.push(Feature::missing(
            "helpers",
            format!("this kernel lacks {missing}"),
            "nothing can be traced",
        ));
        return Err(LoadError::MissingHelpers(missing));
    }
    features.push(Feature::used(
        "helpers",
        "every helper the programs call (Linux 5.8)",
    ));
    let mut kernel_features = 0;
    // Why a feature falls back: the tests' switch, or this kernel's own reason.
    let why = |name: &str, reason: &str| {
        if is_disabled(name) {
            format!("disabled by {DISABLE_HOOKS}")
        } else {
            reason.to_owned()
        }
    };
    if probed.current_task_btf && !is_disabled("current-task-btf") {
        kernel_features |= tracer_common::features::CURRENT_TASK_BTF;
        features.push(Feature::used(
            "current_task_btf",
            "bpf_get_current_task_btf(): the sender read by plain loads",
        ));
    } else {
        let why = why(
            "current-task-btf",
            "no bpf_get_current_task_btf() (Linux 5.11)",
        );
        features.push(Feature::fallback(
            "current_task_btf",
            format!("{why}: the sender read with bpf_probe_read_kernel()"),
            "a few nanoseconds more per signal",
        ));
    }
    if probed.task_pt_regs && !is_disabled("task-pt-regs") {
        kernel_features |= tracer_common::features::TASK_PT_REGS;
    }
    // The cache's hand-over to the hash needs BPF_XADD to be a full barrier, which it is
    // on x86-64 only (tracer-ebpf/src/storm.rs).
    if cfg!(target_arch = "x86_64") && !is_disabled("fold-cache") {
        kernel_features |= tracer_common::features::FOLD_CACHE;
    } else {
        let why = why(
            "fold-cache",
            "BPF_XADD is not a full barrier on this architecture",
        );
        features.push(Feature::fallback(
            "fold_cache",
            format!("{why}: every repeat of a storm counted in the FOLDS hash"),
            "about 55 ns more per repeated signal",
        ));
    }
    // Under PREEMPT_RT the siglock is a sleeping lock, taken with interrupts on.
    if !preempt_rt() && !is_disabled("siglock-irqs-off") {
        kernel_features |= tracer_common::features::SIGLOCK_IRQS_OFF;
    } else {
        let why = why(
            "siglock-irqs-off",
            "a PREEMPT_RT kernel: signal_generate may run with interrupts on",
        );
        features.push(Feature::fallback(
            "siglock_irqs_off",
            format!("{why}: it takes the per-CPU storm state with atomic adds"),
            "about 10 ns more per repeated signal",
        ));
    }
    Ok(kernel_features)
}

/// Whether this is a `PREEMPT_RT` kernel: /sys/kernel/realtime says 1 there
/// (kernel/ksysfs.c, `CONFIG_PREEMPT_RT`) and is absent elsewhere.
fn preempt_rt() -> bool {
    std::fs::read_to_string("/sys/kernel/realtime").is_ok_and(|text| text.trim() == "1")
}
