//! Loads the embedded eBPF object, attaches its hooks and hands out the ring buffer.

mod errors;
mod hooks;
mod privileges;

use std::path::PathBuf;

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::TracePoint,
};
use tracer_ebpf::{Config, FOLD_WAYS, FoldSlot, TARGET_HINT_SLOTS};

pub use errors::{LoadError, runtime_dir, set_verbose, verbose};
pub use privileges::check_privileges;

use crate::error::chain;
use crate::kernel::probe::{self, Feature};
use crate::kernel::tracefs;
use hooks::{
    attach_btf_hooks, attach_syscall_entries, attach_syscalls, load_btf_hooks, oom_pid_offset,
    program, take_map,
};
use privileges::raise_memlock_limit;

/// The eBPF object built by build.rs (aya-build), embedded so that the binary is all a
/// server needs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sigwho-ebpf"));

/// Size of the embedded object, for `--version`.
pub fn object_size() -> usize {
    EBPF_OBJECT.len()
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Report only signals aimed at processes added with [`Tracer::watch`].
    pub filter_targets: bool,
    /// See [`Config::wakeup_bytes`].
    pub wakeup_bytes: u64,
    /// See [`Config::follow_children`].
    pub follow_children: bool,
    /// See [`Config::fold_repeats`]: the recorder's storms become counts in the kernel.
    /// Views that print every signal leave it off.
    pub fold_repeats: bool,
}

pub struct Tracer {
    // Keeps programs and links alive.
    /// The programs and their links; `None` once [`Tracer::stop_producing`] detached them.
    ebpf: Option<Ebpf>,
    ring: Option<RingBuf<MapData>>,
    dropped: PerCpuArray<MapData, u64>,
    targets: HashMap<MapData, u32, u32>,
    target_hints: Array<MapData, u8>,
    fold: PerCpuArray<MapData, FoldSlot>,
    /// Hooks that could not be attached on this kernel, each with the reason.
    pub warnings: Vec<String>,
    /// How this kernel is traced where that is worth knowing but nothing is missing
    /// (a costlier fallback hook, say).
    pub notes: Vec<String>,
    /// How each hook and kernel feature is used on this kernel (`sigwho doctor`).
    pub features: Vec<Feature>,
}

/// Environment variable naming a directory to read tracepoint formats from instead of
/// the mounted tracefs (for tests of kernels with fewer hooks).
pub const TRACEFS_OVERRIDE: &str = "SIGWHO_TRACEFS";

/// Environment variable listing hooks (comma-separated) to treat as missing, to see
/// what sigwho does on a kernel without them: the name of a kill-family syscall
/// (`pidfd_send_signal`: neither its requests nor its failed attempts are recognised),
/// `syscall-fexit` (failed attempts come from the `syscalls:sys_exit_*` tracepoints
/// instead, as on kernels without BPF trampolines), `oom`, or a kernel feature:
/// `task-pt-regs` (requests from `syscalls:sys_enter_*`, as before 5.15),
/// `current-task-btf` (as before 5.11), `direct-loads` (as where a verifier refuses
/// them).
pub const DISABLE_HOOKS: &str = "SIGWHO_DISABLE_HOOKS";

/// The hooks named in [`DISABLE_HOOKS`].
fn disabled_hooks() -> Vec<String> {
    std::env::var(DISABLE_HOOKS)
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

/// This architecture's syscall numbers (its ABI, fixed for all kernels), in the order
/// of [`tracefs::SYSCALLS`].
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYSCALL_NRS: [i64; 6] = [
    libc::SYS_kill,
    libc::SYS_tkill,
    libc::SYS_tgkill,
    libc::SYS_pidfd_send_signal,
    libc::SYS_rt_sigqueueinfo,
    libc::SYS_rt_tgsigqueueinfo,
];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYSCALL_NRS: [i64; 6] = [-1; 6];

/// Prefix of the syscall functions' names (arch/*/include/asm/syscall_wrapper.h); they
/// take the caller's struct pt_regs, which the fexit programs expect.
#[cfg(target_arch = "x86_64")]
const SYSCALL_PREFIX: Option<&str> = Some("__x64_sys_");
#[cfg(target_arch = "aarch64")]
const SYSCALL_PREFIX: Option<&str> = Some("__arm64_sys_");
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYSCALL_PREFIX: Option<&str> = None;

/// Environment variable naming the kernel BTF file to use instead of
/// /sys/kernel/btf/vmlinux.
pub const BTF_OVERRIDE: &str = "SIGWHO_BTF";

/// BTF tracepoints the tracer cannot work without.
const BTF_HOOKS: [(&str, &str); 4] = [
    ("signal_generate", "signal"),
    ("sched_process_fork", "sched"),
    ("sched_process_exec", "sched"),
    ("sched_process_exit", "sched"),
];

impl Tracer {
    pub fn load(options: &Options) -> Result<Self, LoadError> {
        Self::load_noting(options, &mut Vec::new())
    }

    /// [`Tracer::load`], noting in `features` how each hook and kernel feature is used,
    /// also those decided before a failure (`sigwho doctor` shows them either way).
    pub fn load_noting(options: &Options, features: &mut Vec<Feature>) -> Result<Self, LoadError> {
        check_privileges()?;
        raise_memlock_limit();
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
        // Where sigwho looks for tracepoints and their formats. Tests point this at a
        // trimmed copy to play a kernel that lacks some hooks; attaching still goes
        // through the real tracefs.
        let tracefs_root = std::env::var_os(TRACEFS_OVERRIDE)
            .map(PathBuf::from)
            .unwrap_or(mounted);
        for (event, group) in BTF_HOOKS {
            let path: PathBuf = tracefs_root.join("events").join(group).join(event);
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
        // The kernel's type information, which the BTF tracepoints and CO-RE need. A
        // test (or a kernel that keeps it elsewhere) may name another file.
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

        let disabled = disabled_hooks();
        let is_disabled = |name: &str| disabled.iter().any(|d| d == name);
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
        if probed.current_task_btf && !is_disabled("current-task-btf") {
            kernel_features |= tracer_ebpf::features::CURRENT_TASK_BTF;
            features.push(Feature::used(
                "current_task_btf",
                "bpf_get_current_task_btf(): the sender read by plain loads",
            ));
        } else {
            let why = if is_disabled("current-task-btf") {
                format!("disabled by {DISABLE_HOOKS}")
            } else {
                "no bpf_get_current_task_btf() (Linux 5.11)".to_owned()
            };
            features.push(Feature::fallback(
                "current_task_btf",
                format!("{why}: the sender read with bpf_probe_read_kernel()"),
                "a few nanoseconds more per signal",
            ));
        }
        let task_pt_regs = probed.task_pt_regs && !is_disabled("task-pt-regs");
        if task_pt_regs {
            kernel_features |= tracer_ebpf::features::TASK_PT_REGS;
        }
        // Format problems matter only if the fallback hooks are needed; then the
        // warning about them says so.
        let (layouts, layout_problems) = tracefs::syscall_layouts(&tracefs_root);
        let mut warnings = Vec::new();
        let mut syscall_nrs = [-1i32; 6];
        for (slot, ((_, name), nr)) in syscall_nrs
            .iter_mut()
            .zip(tracefs::SYSCALLS.iter().zip(SYSCALL_NRS))
        {
            if !is_disabled(name) {
                *slot = i32::try_from(nr).unwrap_or(-1);
            }
        }
        let mut config = Config {
            filter_targets: u32::from(options.filter_targets),
            self_pid: std::process::id(),
            wakeup_bytes: options.wakeup_bytes,
            oom_pid_offset: oom_pid_offset(&tracefs_root, &mut warnings),
            follow_children: u32::from(options.follow_children),
            syscall_nrs,
            fold_repeats: u32::from(options.fold_repeats),
            features: kernel_features,
        };
        if !is_disabled("direct-loads") {
            config.features |= tracer_ebpf::features::DIRECT_LOADS;
        }
        // Plain loads through BTF task pointers first; if this kernel's verifier refuses
        // them, everything loads again with probe reads (the object's read-only CONFIG
        // is fixed at load, so the retry is a new object).
        let mut refused = None;
        let mut ebpf = loop {
            let mut ebpf = EbpfLoader::new()
                .btf(Some(&btf))
                .override_global("CONFIG", &config, true)
                .override_global("LAYOUTS", &layouts, true)
                .load(EBPF_OBJECT)
                .map_err(|e| LoadError::Object(chain(&e)))?;
            match load_btf_hooks(&mut ebpf, &btf) {
                Ok(()) => break ebpf,
                Err(error)
                    if config.features & tracer_ebpf::features::DIRECT_LOADS != 0
                        && matches!(error, LoadError::Program { .. }) =>
                {
                    refused = Some(error);
                    config.features &= !tracer_ebpf::features::DIRECT_LOADS;
                }
                Err(error) => {
                    features.push(Feature::missing(
                        "tp_btf",
                        error.to_string(),
                        "nothing can be traced",
                    ));
                    return Err(error);
                }
            }
        };
        features.push(Feature::used(
            "tp_btf",
            "signal:signal_generate, sched:sched_process_{fork,exec,exit}",
        ));
        features.push(match refused {
            None if config.features & tracer_ebpf::features::DIRECT_LOADS != 0 => {
                Feature::used("direct_loads", "plain loads through BTF task pointers")
            }
            None => Feature::fallback(
                "direct_loads",
                format!("disabled by {DISABLE_HOOKS}: bpf_probe_read_kernel() instead"),
                "a few nanoseconds more per signal",
            ),
            Some(error) => Feature::fallback(
                "direct_loads",
                format!("the verifier refused them ({error}): bpf_probe_read_kernel() instead"),
                "a few nanoseconds more per signal",
            ),
        });
        attach_btf_hooks(&mut ebpf)?;

        features.push(if task_pt_regs {
            Feature::used(
                "task_pt_regs",
                "bpf_task_pt_regs(): requests from the sender's saved registers",
            )
        } else {
            attach_syscall_entries(&mut ebpf, &layouts, &disabled, is_disabled("task-pt-regs"))
        });
        let mut notes = Vec::new();
        features.push(attach_syscalls(
            &mut ebpf,
            &btf,
            &layouts,
            &layout_problems,
            &disabled,
            &mut warnings,
            &mut notes,
        )?);
        if is_disabled("oom") {
            warnings.push(format!(
                "cannot see oom:mark_victim (disabled by {DISABLE_HOOKS}): OOM kills show as plain kernel SIGKILLs"
            ));
        } else if config.oom_pid_offset != u32::MAX {
            let program: &mut TracePoint = program(&mut ebpf, "mark_victim")?;
            let result = program
                .load()
                .map_err(|e| chain(&e))
                .and_then(|()| program.attach("oom", "mark_victim").map_err(|e| chain(&e)));
            if let Err(reason) = result {
                warnings.push(format!(
                    "cannot see oom:mark_victim (OOM kills show as plain kernel SIGKILLs): {reason}"
                ));
            }
        }
        features.push(
            match warnings.iter().find(|w| w.contains("oom:mark_victim")) {
                None => Feature::used("oom_mark_victim", "oom:mark_victim names OOM kills"),
                Some(warning) => Feature::missing(
                    "oom_mark_victim",
                    warning
                        .trim_start_matches("cannot see oom:mark_victim ")
                        .to_owned(),
                    "OOM kills show as plain kernel SIGKILLs",
                ),
            },
        );
        features.push(probe::pidfd_backing());
        features.push(probe::cgroup_v2());

        let ring = take_map(&mut ebpf, "EVENTS")?;
        let dropped = take_map(&mut ebpf, "DROPPED")?;
        let targets = take_map(&mut ebpf, "TARGETS")?;
        let target_hints = take_map(&mut ebpf, "TARGET_HINTS")?;
        let fold = take_map(&mut ebpf, "FOLD")?;
        Ok(Self {
            ebpf: Some(ebpf),
            ring: Some(ring),
            dropped,
            targets,
            target_hints,
            fold,
            warnings,
            notes,
            features: features.clone(),
        })
    }

    /// Detaches every program, so that nothing more enters the ring buffer: the final
    /// drain then ends even while a storm goes on. The maps taken out of the object
    /// (ring buffer, drop counters, targets) stay readable.
    pub fn stop_producing(&mut self) {
        self.ebpf = None;
    }

    /// The ring buffer records arrive in; the reader owns it (once).
    pub fn take_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.ring.take()
    }

    /// Adds a process to the in-kernel target filter.
    pub fn watch(&mut self, pid: u32) -> Result<(), LoadError> {
        // The hint first: the kernel looks in TARGETS only where one is set.
        self.target_hints
            .set(pid % TARGET_HINT_SLOTS, 1, 0)
            .map_err(|e| LoadError::Map("TARGET_HINTS", chain(&e)))?;
        self.targets
            .insert(pid, 1, 0)
            .map_err(|e| LoadError::Map("TARGETS", chain(&e)))
    }

    /// Pids in the in-kernel target filter. With `follow_children` the kernel adds every
    /// process a target forks and removes each at exit, so these are the traced tree's
    /// live processes.
    pub fn targets(&self) -> Vec<u32> {
        self.targets.keys().filter_map(Result::ok).collect()
    }

    /// Every fold slot as it is now, each CPU's of the first way, then of the next,
    /// always in the same order (see [`FoldSlot`] for how to read them safely while
    /// programs run).
    pub fn fold_slots(&self) -> Result<Vec<FoldSlot>, LoadError> {
        let mut slots = Vec::new();
        for way in 0..FOLD_WAYS {
            let values = self
                .fold
                .get(&way, 0)
                .map_err(|e| LoadError::Map("FOLD", chain(&e)))?;
            slots.extend(values.iter().copied());
        }
        Ok(slots)
    }

    /// Records dropped so far, summed over CPUs, indexed by record kind.
    pub fn dropped(&self) -> Result<[u64; 8], LoadError> {
        let mut totals = [0u64; 8];
        for (index, total) in totals.iter_mut().enumerate() {
            let values = self
                .dropped
                .get(&(index as u32), 0)
                .map_err(|e| LoadError::Map("DROPPED", chain(&e)))?;
            *total = values.iter().sum();
        }
        Ok(totals)
    }
}
