//! Loads the embedded eBPF object, attaches its hooks and hands out the ring buffer.

mod ebpf_log;
mod environment;
mod errors;
mod hooks;
mod privileges;

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
};
use std::{
    collections::HashSet,
    sync::atomic::{Ordering, fence},
};

use tracer_common::{
    Config, FOLD_IDLE_NS, FoldCache, FoldKey, FoldPerCpu, FoldSlot, TARGET_HINT_SLOTS, fold_stats,
    program_mode,
};

pub use ebpf_log::LOG_ENV;
pub use errors::{LoadError, runtime_dir, set_verbose, verbose};
pub use privileges::check_privileges;

use crate::error::chain;
use crate::kernel::probe::{self, Feature};
use crate::kernel::{sys, tracefs};
use hooks::{
    attach_btf_hooks, attach_oom, attach_syscall_entries, attach_syscalls, load_object,
    oom_pid_offset, take_map,
};

/// The eBPF object built by build.rs (aya-build), embedded so that the binary is all a
/// server needs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sigwho-ebpf"));

/// Size of the embedded object, for `--version`.
#[must_use]
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
    /// See [`Config::fold_repeats`]: storms become counts in the kernel (FOLDS).
    pub fold_repeats: bool,
    /// The selectors the programs apply themselves (`--signal`, `--target-comm`).
    pub select: tracer_common::Select,
}

pub struct Tracer {
    // Keeps programs and links alive.
    /// The programs and their links; `None` once [`Tracer::stop_producing`] detached them.
    ebpf: Option<Ebpf>,
    ring: Option<RingBuf<MapData>>,
    dropped: PerCpuArray<MapData, u64>,
    targets: HashMap<MapData, u32, u64>,
    target_hints: Array<MapData, u8>,
    /// Execs the selectors do not name (pid -> exec time), which ends their exec grace
    /// (tracer-ebpf/src/select.rs).
    execs_decided: HashMap<MapData, u32, u64>,
    folds: HashMap<MapData, FoldKey, FoldSlot>,
    fold_stats: PerCpuArray<MapData, u64>,
    fold_cache: PerCpuArray<MapData, FoldPerCpu>,
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
/// them); or `programs`: every hook attached as usual, every program returning as
/// soon as it runs (nothing is traced: what attaching sigwho's hooks costs, the floor
/// under each mode's cost per signal, which `cargo xtask bench` measures); or
/// `count-only`: the same, except that `signal_generate` counts each signal in the
/// kernel under issue 15's least key and reports nothing (the recorder's floor in the
/// bench).
pub const DISABLE_HOOKS: &str = "SIGWHO_DISABLE_HOOKS";

/// The name in [`DISABLE_HOOKS`] that empties every program
/// (`program_mode::EMPTY`).
const EMPTY_PROGRAMS: &str = "programs";

/// The name in [`DISABLE_HOOKS`] that empties every program but `signal_generate`'s
/// count (`program_mode::COUNT_ONLY`).
const COUNT_ONLY: &str = "count-only";

/// What the programs are to do, from [`DISABLE_HOOKS`], and the warning a floor gets
/// (sigwho then traces nothing, which the user must not miss).
fn program_mode(is_disabled: &impl Fn(&str) -> bool) -> (u32, Option<String>) {
    if is_disabled(EMPTY_PROGRAMS) {
        (
            program_mode::EMPTY,
            Some(format!(
                "every program disabled by {DISABLE_HOOKS}: attached, each returns at once; nothing is traced"
            )),
        )
    } else if is_disabled(COUNT_ONLY) {
        (
            program_mode::COUNT_ONLY,
            Some(format!(
                "every program disabled by {DISABLE_HOOKS} but a count: attached, each returns at once, signal_generate after counting the signal in the kernel; nothing is reported"
            )),
        )
    } else {
        (program_mode::FULL, None)
    }
}

/// This architecture's numbers of the kill-family syscalls, -1 for those disabled.
fn syscall_nrs(is_disabled: &impl Fn(&str) -> bool) -> [i32; 6] {
    let mut nrs = [-1i32; 6];
    for (slot, ((_, name), nr)) in nrs
        .iter_mut()
        .zip(tracefs::SYSCALLS.iter().zip(SYSCALL_NRS))
    {
        if !is_disabled(name) {
            *slot = i32::try_from(nr).unwrap_or(-1);
        }
    }
    nrs
}

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

/// Prefix of the syscall functions' names (arch/*/`include/asm/syscall_wrapper.h`); they
/// take the caller's struct `pt_regs`, which the fexit programs expect.
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
    /// Loads the embedded object and attaches its hooks as `options` configure them.
    ///
    /// # Errors
    ///
    /// When privileges, tracefs, BTF, the ring buffer or a required hook are missing,
    /// or a program is refused.
    pub fn load(options: &Options) -> Result<Self, LoadError> {
        Self::load_noting(options, &mut Vec::new())
    }

    /// [`Tracer::load`], noting in `features` how each hook and kernel feature is used,
    /// also those decided before a failure (`sigwho doctor` shows them either way).
    ///
    /// # Errors
    ///
    /// As [`Tracer::load`].
    pub fn load_noting(options: &Options, features: &mut Vec<Feature>) -> Result<Self, LoadError> {
        check_privileges()?;
        sys::raise_memlock_limit();
        let tracefs_root = environment::tracefs_root(features)?;
        let btf = environment::kernel_btf(features)?;
        let disabled = disabled_hooks();
        let is_disabled = |name: &str| disabled.iter().any(|d| d == name);
        let kernel_features = environment::probe_kernel(features, &is_disabled)?;
        let task_pt_regs = kernel_features & tracer_common::features::TASK_PT_REGS != 0;
        // Format problems matter only if the fallback hooks are needed; then the
        // warning about them says so.
        let (layouts, layout_problems) = tracefs::syscall_layouts(&tracefs_root);
        let mut warnings = Vec::new();
        let (mode, mode_warning) = program_mode(&is_disabled);
        let mut config = Config {
            filter_targets: u32::from(options.filter_targets),
            self_pid: std::process::id(),
            wakeup_bytes: options.wakeup_bytes,
            oom_pid_offset: oom_pid_offset(&tracefs_root, &mut warnings),
            follow_children: u32::from(options.follow_children),
            syscall_nrs: syscall_nrs(&is_disabled),
            fold_repeats: u32::from(options.fold_repeats),
            features: kernel_features,
            log: u32::from(ebpf_log::requested()),
            program_mode: mode,
        };
        warnings.extend(mode_warning);
        if !is_disabled("direct-loads") {
            config.features |= tracer_common::features::DIRECT_LOADS;
        }
        if options.follow_children
            && !is_disabled(hooks::FREE_HOOK)
            && tracefs_root
                .join("events/sched")
                .join(hooks::FREE_HOOK)
                .exists()
        {
            config.features |= tracer_common::features::FREE_HOOK;
        }
        let mut ebpf = load_object(&mut config, &options.select, &layouts, &btf, features)?;
        attach_btf_hooks(&mut ebpf, &config)?;
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
        features.push(attach_oom(
            &mut ebpf,
            &config,
            is_disabled("oom"),
            &mut warnings,
        )?);
        features.push(probe::pidfd_backing());
        features.push(probe::cgroup_v2());

        if config.log != 0 {
            ebpf_log::start(&mut ebpf, &mut warnings);
        }
        let ring = take_map(&mut ebpf, "EVENTS")?;
        let dropped = take_map(&mut ebpf, "DROPPED")?;
        let targets = take_map(&mut ebpf, "TARGETS")?;
        let target_hints = take_map(&mut ebpf, "TARGET_HINTS")?;
        let execs_decided = take_map(&mut ebpf, "EXECS_DECIDED")?;
        let folds = take_map(&mut ebpf, "FOLDS")?;
        let fold_stats = take_map(&mut ebpf, "FOLD_STATS")?;
        let fold_cache = take_map(&mut ebpf, "FOLD_CACHE")?;
        Ok(Self {
            ebpf: Some(ebpf),
            ring: Some(ring),
            dropped,
            targets,
            target_hints,
            execs_decided,
            folds,
            fold_stats,
            fold_cache,
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
    ///
    /// # Errors
    ///
    /// When the filter maps cannot be written.
    pub fn watch(&mut self, pid: u32) -> Result<(), LoadError> {
        // The hint first: the kernel looks in TARGETS only where one is set.
        self.target_hints
            .set(pid % TARGET_HINT_SLOTS, 1, 0)
            .map_err(|e| LoadError::Map("TARGET_HINTS", chain(&e)))?;
        // 0: the start time is not known here; the kernel then removes the pid when the
        // task under it is freed, whoever it is.
        self.targets
            .insert(pid, 0, 0)
            .map_err(|e| LoadError::Map("TARGETS", chain(&e)))
    }

    /// Whether `pid` is in the in-kernel target filter.
    #[must_use]
    pub fn is_watched(&self, pid: u32) -> bool {
        self.targets.get(&pid, 0).is_ok()
    }

    /// Takes `pid` out of the in-kernel target filter (its hint stays: a stale hint only
    /// costs a lookup). Not there is not an error.
    pub fn unwatch(&mut self, pid: u32) {
        let _ = self.targets.remove(&pid);
    }

    /// Ends the exec grace of process `pid`'s exec at `exec_ns` (its record's time): the
    /// selectors do not name what it runs. A later exec of the pid keeps its own.
    ///
    /// # Errors
    ///
    /// When the map cannot be written.
    pub fn exec_decided(&mut self, pid: u32, exec_ns: u64) -> Result<(), LoadError> {
        self.execs_decided
            .insert(pid, exec_ns, 0)
            .map_err(|e| LoadError::Map("EXECS_DECIDED", chain(&e)))
    }

    /// Pids in the in-kernel target filter. With `follow_children` the kernel adds every
    /// process a target forks and removes each once it is reaped (at exit without
    /// `sched_process_free`), so these are the traced tree's processes.
    pub fn targets(&self) -> Vec<u32> {
        self.targets.keys().filter_map(Result::ok).collect()
    }

    /// Every count in FOLDS as it is now (see [`FoldSlot`]), and removes the entries
    /// idle for [`FOLD_IDLE_NS`] before `now_ns` (boot clock): their counts here are
    /// final, and a later identical signal starts a new entry with a full record. An
    /// entry's count only grows while it lives, so readers take differences.
    ///
    /// The one window where a count can be missed: a new repeat counted in the instants
    /// between the second read of an entry idle for two seconds and its removal. The
    /// kernel's programs add through the pointer they looked up, so not even
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (5.14) would close it. Repeats pending in a
    /// CPU's cache are never in that window (see [`FoldCache`]).
    ///
    /// # Errors
    ///
    /// When the `FOLDS` map cannot be read.
    pub fn fold_counts(&mut self, now_ns: u64, prune: bool) -> Result<Vec<FoldSlot>, LoadError> {
        let mut counts = Vec::new();
        let mut idle = Vec::new();
        for entry in &self.folds {
            let (key, value) = match entry {
                Ok(entry) => entry,
                // The entry went between listing the keys and reading it: pruned by us.
                Err(aya::maps::MapError::KeyNotFound) => continue,
                Err(e) => return Err(LoadError::Map("FOLDS", chain(&e))),
            };
            // last_ns: the latest repeat's time, or the full record's until one.
            if prune && value.last_ns != 0 && now_ns.saturating_sub(value.last_ns) >= FOLD_IDLE_NS {
                idle.push((key, value));
            }
            counts.push(value);
        }
        // What each CPU counted of its cached keys but has not moved into the entries
        // (FoldCache), read after the entries: the kernel zeroes a way's pending count
        // before the (fully ordered) add that moves it, so no repeat is counted twice;
        // one moved in between is read next time. Each way is copied three times, each
        // copy a syscall of its own after a fence: `ended` from the first, the data from
        // the second, `begun` from the third (FoldCache's seqlock).
        fence(Ordering::SeqCst);
        let before = self.fold_cache_ways()?;
        fence(Ordering::SeqCst);
        let data = self.fold_cache_ways()?;
        fence(Ordering::SeqCst);
        let after = self.fold_cache_ways()?;
        fence(Ordering::SeqCst);
        let mut torn = false;
        let mut pending_rows = HashSet::new();
        for ((before, way), after) in before.iter().zip(&data).zip(&after) {
            if after.begun != before.ended {
                torn = true;
                continue;
            }
            if way.row == 0 || way.pending == 0 {
                continue;
            }
            pending_rows.insert(way.row);
            // A row not among the entries was removed, which the pruning below does only
            // once no way holds pending repeats of it: not reached then.
            if let Some(slot) = counts.iter_mut().find(|slot| slot.row == way.row) {
                slot.count += way.pending;
                if slot.first_ns == 0 {
                    slot.first_ns = slot.last_ns;
                }
            }
        }
        // An idle entry goes only if nothing can still move into it: no way holds
        // pending repeats of it (a torn way might: none goes then), and it has not
        // changed since the read above (a move or a repeat in between).
        if !torn {
            for (key, value) in idle {
                if pending_rows.contains(&value.row) {
                    continue;
                }
                match self.folds.get(&key, 0) {
                    Ok(now) if now == value => {}
                    _ => continue,
                }
                // The key may have gone meanwhile; nothing to count then.
                let _ = self.folds.remove(&key);
            }
        }
        Ok(counts)
    }

    /// Every CPU's `FOLD_CACHE` ways (one copy of every CPU's value, one system call),
    /// CPU by CPU.
    fn fold_cache_ways(&self) -> Result<Vec<FoldCache>, LoadError> {
        let values = self
            .fold_cache
            .get(&0, 0)
            .map_err(|e| LoadError::Map("FOLD_CACHE", chain(&e)))?;
        Ok(values.iter().flat_map(|set| set.ways).collect())
    }

    /// Signals and failed attempts sent in full because FOLDS was full, summed over CPUs
    /// ([`fold_stats`]).
    ///
    /// # Errors
    ///
    /// When the `FOLD_STATS` map cannot be read.
    pub fn fold_full(&self) -> Result<[u64; fold_stats::COUNT as usize], LoadError> {
        let mut totals = [0; fold_stats::COUNT as usize];
        for (index, total) in (0..fold_stats::COUNT).zip(totals.iter_mut()) {
            let values = self
                .fold_stats
                .get(&index, 0)
                .map_err(|e| LoadError::Map("FOLD_STATS", chain(&e)))?;
            *total = values.iter().sum();
        }
        Ok(totals)
    }

    /// Records dropped so far, summed over CPUs, indexed by record kind.
    ///
    /// # Errors
    ///
    /// When the `DROPPED` map cannot be read.
    pub fn dropped(&self) -> Result<[u64; 8], LoadError> {
        let mut totals = [0u64; 8];
        for (index, total) in totals.iter_mut().enumerate() {
            let values = self
                .dropped
                .get(&u32::try_from(index).unwrap_or(u32::MAX), 0)
                .map_err(|e| LoadError::Map("DROPPED", chain(&e)))?;
            *total = values.iter().sum();
        }
        Ok(totals)
    }
}
