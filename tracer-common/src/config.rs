//! What userspace sets before load: the programs' read-only globals and the sizes of
//! the maps they share.

use crate::syscall;

/// Ring buffer size; a power of two and a multiple of the page size.
pub const RING_BYTES: u32 = 8 << 20;
/// Capacity of the target filter map.
pub const MAX_TARGETS: u32 = 4096;
/// Slots of the target filter's hint array (`TARGET_HINTS`, indexed by pid modulo this).
pub const TARGET_HINT_SLOTS: u32 = 65536;

/// Where one kill-family syscall keeps its arguments in its `syscalls:sys_enter_*`
/// record, read from tracefs format files at load time. `u32::MAX` marks an argument the
/// syscall does not have.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallLayout {
    pub arg0: u32,
    pub arg1: u32,
    pub sig: u32,
    /// Offset of `ret` in the matching `sys_exit_*` record.
    pub ret: u32,
}

impl SyscallLayout {
    pub const ABSENT: u32 = u32::MAX;
}

/// All syscall layouts, indexed by `syscall::X - 1`; set as a global before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallLayouts(pub [SyscallLayout; syscall::COUNT]);

/// Settings userspace writes into the program's read-only data before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Non-zero: only signals and failed sends aimed at a process in `TARGETS` are
    /// reported. Zero: everything.
    pub filter_targets: u32,
    /// sigwho's own pid: signals it sends or receives are not reported in
    /// unfiltered mode (its own shutdown would otherwise flood the view).
    pub self_pid: u32,
    /// Ring-buffer fill level (bytes) above which a submit wakes the reader; below it,
    /// records wait for the reader's next timer tick. Zero wakes the reader on every
    /// record.
    pub wakeup_bytes: u64,
    /// Offset of `pid` in the `oom:mark_victim` record (from its tracefs format file).
    pub oom_pid_offset: u32,
    /// Non-zero: a process forked by a target becomes a target too, and leaves the
    /// filter when it exits (`sigwho run` follows a whole process tree this way).
    pub follow_children: u32,
    /// This architecture's number of each kill-family syscall, indexed by
    /// `syscall::X - 1`; -1 disables recognising that syscall. `signal_generate` compares
    /// the number the sender entered the kernel with against these to learn what was
    /// asked (the arguments are read from the same saved registers).
    pub syscall_nrs: [i32; syscall::COUNT],
    /// Non-zero: identical signals are folded into counts in the kernel
    /// ([`crate::FoldSlot`]).
    pub fold_repeats: u32,
    /// Bits from [`features`]: what this kernel allows, as userspace probed it.
    pub features: u32,
    /// Non-zero: the programs write their diagnostics (why a record was skipped, which
    /// fallback they took) to aya-log's ring buffer (`SIGWHO_LOG=debug`). Zero, the
    /// default: read-only data frozen before load, so the verifier drops every log call
    /// and the hot path carries none of them.
    pub log: u32,
    /// What the programs do, from [`program_mode`]: all of their work (`FULL`, zero), or
    /// only what a floor measurement needs (`SIGWHO_DISABLE_HOOKS=programs` or
    /// `count-only`). Like `log`, frozen before load: `FULL`, the verifier drops the
    /// test from every program. Also keeps the struct free of implicit padding (it is
    /// copied into the object as bytes).
    pub program_mode: u32,
}

/// Values of [`Config::program_mode`]. The two floors are for measuring
/// (`cargo xtask bench`): with either, sigwho traces nothing.
pub mod program_mode {
    /// Every program does its work.
    pub const FULL: u32 = 0;
    /// Every hook attached, every program returning as soon as it runs
    /// (`SIGWHO_DISABLE_HOOKS=programs`): what the kernel charges for calling them, the
    /// floor under every mode's cost per signal.
    pub const EMPTY: u32 = 1;
    /// As `EMPTY`, except that `signal_generate` counts each signal in a per-CPU hash
    /// under the least key issue 15 asks for (sender and target thread with their start
    /// times, signal, `si_code`, result, request kind), with the first and last time, and
    /// reports nothing (`SIGWHO_DISABLE_HOOKS=count-only`): the floor under the
    /// recorder, which counts under a larger key and reports each key's first signal.
    pub const COUNT_ONLY: u32 = 2;
}

/// Entries of the count-only floor's per-CPU hash (`COUNT_FLOOR`) under
/// [`program_mode::COUNT_ONLY`]; userspace sizes it to one entry otherwise. A storm
/// makes a handful of keys; a full map only stops counting new ones.
pub const FLOOR_ENTRIES: u32 = 1024;

/// Bits of [`Config::features`]. The programs test them against read-only data that is
/// frozen before load, so the verifier knows each bit and never walks the branch this
/// kernel cannot take (a helper it lacks, a load it refuses).
pub mod features {
    /// `bpf_get_current_task_btf()` exists (Linux 5.11).
    pub const CURRENT_TASK_BTF: u32 = 1;
    /// `bpf_task_pt_regs()` exists (5.15): requests come from the sender's saved
    /// registers. Without it the `syscalls:sys_enter_*` programs keep each kill-family
    /// call's arguments in `INFLIGHT` while it runs.
    pub const TASK_PT_REGS: u32 = 2;
    /// Plain loads through BTF-typed task pointers (tracepoint arguments, the current
    /// task) instead of `bpf_probe_read_kernel()`: cheaper on the path every signal
    /// takes, but a verifier may refuse them; userspace then loads again without.
    pub const DIRECT_LOADS: u32 = 4;
    /// `sched:sched_process_free` is attached (with `follow_children`): a target leaves
    /// the filter when its task is freed, so signals sent while it exits or lies a
    /// zombie are still seen; without it, at `sched_process_exit`.
    pub const FREE_HOOK: u32 = 8;
    /// `signal_generate` counts a storm's repeats in a per-CPU cache of recent keys before
    /// the `FOLDS` hash (tracer-ebpf/src/storm.rs). Set on x86-64 only: the cache's
    /// hand-over to the hash relies on `BPF_XADD` being a full barrier (`lock add`).
    pub const FOLD_CACHE: u32 = 16;
    /// The kernel is not `PREEMPT_RT`, so `signal_generate` runs with interrupts off (under
    /// the siglock, which is always taken so) and nothing else on its CPU runs until it
    /// returns: it uses this CPU's storm state after a plain check of `busy` instead of
    /// taking it with atomic adds (tracer-ebpf/src/storm.rs).
    pub const SIGLOCK_IRQS_OFF: u32 = 32;
}

/// The live view's selectors that the programs apply themselves (`--signal`,
/// `--target-comm`); userspace writes them into the read-only global `SELECT` before
/// load. Zero: no selection.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Select {
    /// Non-zero: only these signals are reported (bit N-1 for signal N), by
    /// `signal_generate` and the failed-attempt hooks.
    pub signal_mask: u64,
    /// Non-empty (NUL-padded): a process whose comm is this after exec becomes a target,
    /// so that a restarted process is watched from its first instruction, before
    /// userspace hears of it (with `follow_children` its forks follow).
    pub target_comm: [u8; crate::COMM_LEN],
    /// Non-zero, when a selector only userspace can resolve is given (`--target-exe`,
    /// `--unit`, `--container`, `--pod`, `--cgroup`): how long (ns) after its exec a
    /// process that is not in `TARGETS` still passes the target filter. Userspace reads
    /// the exec record and adds a match to `TARGETS` within milliseconds; until then its
    /// signals pass and userspace drops those of non-matches. The forks it makes in that
    /// time get the same grace from its exec.
    pub exec_grace_ns: u64,
}

/// A process's last exec, kept by the kernel while [`Select::exec_grace_ns`] is set
/// (map `EXECS`, by pid).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecMark {
    /// The process's start time (ns since boot), so that a reused pid gets no grace.
    pub start_ns: u64,
    /// When it exec'd (`bpf_ktime_get_boot_ns`).
    pub exec_ns: u64,
}

#[cfg(feature = "user")]
// SAFETY: repr(C) and Copy, a u64, 16 bytes, a u64: no padding (the assertion below),
// and every bit pattern is a valid Select.
unsafe impl aya::Pod for Select {}
const _: () = assert!(size_of::<Select>() == 8 + crate::COMM_LEN + 8);

#[cfg(feature = "user")]
// SAFETY: repr(C) and Copy, an array of structs of four u32s: no padding, and every bit
// pattern is a valid SyscallLayouts.
unsafe impl aya::Pod for SyscallLayouts {}

#[cfg(feature = "user")]
// SAFETY: repr(C) and Copy, only integers and an integer array, each at an offset its
// alignment divides with nothing left between them or at the end (the assertion below):
// no byte is uninitialised and every bit pattern is a valid Config.
unsafe impl aya::Pod for Config {}
const _: () = assert!(size_of::<Config>() == 2 * 4 + 8 + 2 * 4 + 4 * syscall::COUNT + 4 * 4);
