//! Every map and read-only global the programs share, declared in one place, and the
//! accessors the programs read the globals through. Userspace finds them by name
//! (tracer/src/load.rs); the sizes it must agree on are in tracer-common.

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use tracer_common::{
    Cause, Config, ExecMark, FLOOR_ENTRIES, FOLD_ENTRIES, FoldKey, FoldPerCpu, FoldSlot,
    MAX_TARGETS, RING_BYTES, Request, SyscallLayout, SyscallLayouts, TARGET_HINT_SLOTS, fold_stats,
    program_mode, syscall,
};

use crate::floor::{FloorKey, FloorSlot};

#[unsafe(no_mangle)]
pub(crate) static CONFIG: Config = Config {
    filter_targets: 0,
    self_pid: 0,
    wakeup_bytes: 0,
    oom_pid_offset: u32::MAX,
    follow_children: 0,
    syscall_nrs: [-1; syscall::COUNT],
    fold_repeats: 0,
    features: 0,
    log: 0,
    program_mode: program_mode::FULL,
};

const NO_LAYOUT: SyscallLayout = SyscallLayout {
    arg0: SyscallLayout::ABSENT,
    arg1: SyscallLayout::ABSENT,
    sig: SyscallLayout::ABSENT,
    ret: SyscallLayout::ABSENT,
};

#[unsafe(no_mangle)]
static LAYOUTS: SyscallLayouts = SyscallLayouts([NO_LAYOUT; syscall::COUNT]);

/// One field of CONFIG, e.g. `config!(filter_targets)`. CONFIG lives in read-only data
/// that userspace fills in before load: the volatile read stops the compiler from
/// folding in the build-time default. One field at a time: a volatile copy of the whole
/// struct is a load of every field (and a stack slot for each) on every signal.
macro_rules! config {
    ($field:ident) => {
        // SAFETY: a field of a static, valid and aligned; CONFIG is never written while
        // the programs run (frozen read-only data).
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!($crate::maps::CONFIG.$field)) }
    };
}
pub(crate) use config;

/// Whether this kernel has `feature` (a [`tracer_common::features`] bit). A constant to
/// the verifier (CONFIG is frozen read-only data), so the other branch is never verified.
#[inline(always)]
pub(crate) fn has(feature: u32) -> bool {
    config!(features) & feature != 0
}

/// Whether userspace asked for the programs' diagnostics (`SIGWHO_LOG=debug`). A constant
/// to the verifier, as in [`has`]: with it off, every log call is dead code it never
/// walks, and the programs run as if there were none.
#[inline(always)]
pub(crate) fn logging() -> bool {
    config!(log) != 0
}

/// Whether every program is to return at once: the floors of `cargo xtask bench`
/// (`SIGWHO_DISABLE_HOOKS=programs` or `count-only`: the hooks attached, nothing done,
/// to measure what attaching them costs; see [`count_only`]). A constant to the
/// verifier, as in [`has`]: off, the test is gone from every program; on, the rest of
/// each program is dead code.
#[inline(always)]
pub(crate) fn hollow() -> bool {
    config!(program_mode) != program_mode::FULL
}

/// Whether signal_generate, hollow like every program, still counts each signal
/// (`SIGWHO_DISABLE_HOOKS=count-only`, floor.rs). A constant to the verifier.
#[inline(always)]
pub(crate) fn count_only() -> bool {
    config!(program_mode) == program_mode::COUNT_ONLY
}

/// Where kill-family syscall `which` keeps its arguments and `ret` in its `syscalls:*`
/// records (the fallback hooks read them).
#[inline(always)]
pub(crate) fn layout(which: u32) -> SyscallLayout {
    match LAYOUTS.0.get(which.wrapping_sub(1) as usize) {
        // SAFETY: an element of a static, valid and aligned; LAYOUTS is read-only data
        // filled in by userspace before load, read volatile (as CONFIG, config!) and
        // alone, not the whole table.
        Some(layout) => unsafe { read_volatile(layout) },
        None => NO_LAYOUT,
    }
}

#[map]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

/// Processes (by pid) whose signals are reported when `CONFIG.filter_targets` is set;
/// the value is the process's start time when the kernel added it (a fork or an exec),
/// 0 when userspace did. A pid leaves when its task is freed (sched.rs), and only if the
/// start time matches, so a process that took over the pid is not dropped.
#[map]
pub(crate) static TARGETS: HashMap<u32, u64> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// Senders whose ancestry chain was already sent (pid -> process start). Later signals
/// from the same process skip the chain walk, which is most of a record's cost.
#[map]
pub(crate) static SENDERS_SEEN: LruHashMap<u32, u64> = LruHashMap::with_max_entries(16384, 0);

/// The last meaningful signal each process received (by pid), for cause chains.
#[map]
pub(crate) static RECEIVED: LruHashMap<u32, Cause> = LruHashMap::with_max_entries(16384, 0);

/// When a process last received a meaningful signal, at `pid % RECEIVED_AT_SLOTS`:
/// the aggregation key's cause, read with an array index instead of a RECEIVED lookup
/// on every signal of a storm. Tagged with the pid, so that a pid sharing the slot
/// (the victim of the storm, say) never changes another sender's key.
#[map]
pub(crate) static RECEIVED_AT: Array<ReceivedAt> = Array::with_max_entries(RECEIVED_AT_SLOTS, 0);
pub(crate) const RECEIVED_AT_SLOTS: u32 = 4096;

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct ReceivedAt {
    pub(crate) pid: u32,
    /// Who sent it and what: a storm of the same signal from the same thread refreshes
    /// RECEIVED at most every [`crate::cause::REFRESH_JIFFIES`].
    pub(crate) sender_tid: u32,
    pub(crate) sig: i32,
    pub(crate) _pad: u32,
    pub(crate) jiffies: u64,
    pub(crate) time_ns: u64,
}

/// In-kernel aggregation of storms (see storm.rs): counts per key, read and pruned by
/// userspace. Preallocated (flags 0), as tracing programs need on older kernels.
#[map]
pub(crate) static FOLDS: HashMap<FoldKey, FoldSlot> = HashMap::with_max_entries(FOLD_ENTRIES, 0);

/// `SIGWHO_DISABLE_HOOKS=count-only`: each signal's count under the least key
/// (floor.rs), per CPU, never read. Userspace sizes it to one entry otherwise.
/// Preallocated (flags 0), as tracing programs need on older kernels.
#[map]
pub(crate) static COUNT_FLOOR: PerCpuHashMap<FloorKey, FloorSlot> =
    PerCpuHashMap::with_max_entries(FLOOR_ENTRIES, 0);

/// Per CPU, one value (FoldPerCpu): the fold id sequence, the aggregation's clock cache
/// and who holds them (FoldCpu), and the last signal keys counted here with their
/// repeats not yet in FOLDS (the ways, FoldCache; see storm.rs).
#[map]
pub(crate) static FOLD_CACHE: PerCpuArray<FoldPerCpu> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU: what went out in full because FOLDS was full (`fold_stats`).
#[map]
pub(crate) static FOLD_STATS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(fold_stats::COUNT, 0);

/// Records that did not fit in the ring buffer, per CPU, indexed by record kind.
#[map]
pub(crate) static DROPPED: PerCpuArray<u64> = PerCpuArray::with_max_entries(8, 0);

/// Kill-family calls in progress (thread id -> what was asked), kept by the
/// `syscalls:sys_enter_*` programs on kernels without `bpf_task_pt_regs()` and taken out
/// when the call returns. LRU: an entry whose return was missed is evicted, never
/// piled up.
#[map]
pub(crate) static INFLIGHT: LruHashMap<u32, Request> = LruHashMap::with_max_entries(16384, 0);

/// Processes (by pid) that exec'd or were forked by one that had, while a selector only
/// userspace resolves is active (select.rs): they pass the target filter for
/// `Select::exec_grace_ns`, the time userspace takes to read the exec record and decide.
/// LRU: only a burst of more execs than this within the grace could evict one early.
#[map]
pub(crate) static EXECS: LruHashMap<u32, ExecMark> = LruHashMap::with_max_entries(16384, 0);

/// Execs userspace has read and found the selectors do not name (pid -> the exec's
/// `ExecMark::exec_ns`, its record's time): their grace ends there. By exec time, so
/// that a later exec of the same pid, which may match, keeps its own grace.
#[map]
pub(crate) static EXECS_DECIDED: LruHashMap<u32, u64> = LruHashMap::with_max_entries(16384, 0);

/// Non-zero at `pid % TARGET_HINT_SLOTS` for every pid ever put in TARGETS (never
/// cleared: a stale mark only costs a TARGETS lookup). Most signals in a filtered view
/// are aimed elsewhere, and an array index is much cheaper than a hash lookup.
#[map]
static TARGET_HINTS: Array<u8> = Array::with_max_entries(TARGET_HINT_SLOTS, 0);

#[inline(always)]
pub(crate) fn is_target(pid: u32) -> bool {
    match TARGET_HINTS.get(pid % TARGET_HINT_SLOTS) {
        Some(&0) | None => false,
        // SAFETY: the value is not dereferenced.
        Some(_) => unsafe { TARGETS.get(&pid).is_some() },
    }
}

/// Adds process `pid`, started at `start_ns`, to the filter (a full map only loses it;
/// userspace checks the size).
#[inline(always)]
pub(crate) fn add_target(pid: u32, start_ns: u64) {
    if let Some(hint) = TARGET_HINTS.get_ptr_mut(pid % TARGET_HINT_SLOTS) {
        // SAFETY: a map value, valid for the program's run; a byte store is atomic.
        unsafe { write_volatile(hint, 1) };
    }
    let _ = TARGETS.insert(&pid, &start_ns, 0);
}
