//! The hooks. Each one cites the kernel tracepoint it relies on; field offsets are never
//! fixed at build time: BTF tracepoint arguments are type-checked by the kernel against
//! its BTF at load, struct fields are read through CO-RE accessors (shim/core.c), and
//! `syscalls:*` record offsets come from tracefs format files via the `LAYOUTS` global.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::bpf_get_current_pid_tgid,
    helpers::generated::{
        bpf_get_current_task, bpf_get_current_task_btf, bpf_get_smp_processor_id, bpf_jiffies64,
        bpf_ktime_get_boot_ns, bpf_probe_read_kernel, bpf_probe_read_kernel_str,
        bpf_probe_read_user,
    },
    macros::{btf_tracepoint, fexit, map, tracepoint},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf, ring_buf::RingBufEntry},
    programs::{BtfTracePointContext, FExitContext, TracePointContext},
};
use tracer_common::{
    ANCESTRY_DEPTH, ARGS_LEN, Ancestor, CAUSE_DEPTH, COMM_LEN, Cause, Config, EventHeader,
    ExecEvent, ExitEvent, FOLD_WAYS, FOLD_WINDOW_NS, FailedSendEvent, FoldKey, FoldSlot, ForkEvent,
    MAX_TARGETS, OomVictimEvent, PATH_LEN, RING_BYTES, RepeatsEvent, Request, SignalEvent,
    SyscallLayout, SyscallLayouts, TARGET_HINT_SLOTS, TaskRef, exec_flags, features, kind,
    signal_flags, syscall, task_flags,
};

unsafe extern "C" {
    fn sw_task_tgid(task: u64) -> u32;
    fn sw_task_cgroup_names(task: u64, dst: u64) -> u32;
    fn sw_task_tid(task: u64) -> u32;
    fn sw_task_real_parent(task: u64) -> u64;
    fn sw_task_process_start(task: u64) -> u64;
    fn sw_task_uid(task: u64) -> u32;
    fn sw_task_comm_offset() -> u32;
    fn sw_task_exit_code(task: u64) -> u32;
    fn sw_task_live_threads(task: u64) -> i32;
    fn sw_task_arg_start(task: u64) -> u64;
    fn sw_task_arg_end(task: u64) -> u64;
    fn sw_bprm_filename(bprm: u64) -> u64;
    fn sw_pidfd_pid(task: u64, fd: i32) -> i32;
    fn sw_task_exiting(task: u64) -> u32;
    fn sw_task_ns_pid(task: u64) -> u32;
    fn sw_btf_task_tgid(task: u64) -> u32;
    fn sw_btf_task_tid(task: u64) -> u32;
    fn sw_siginfo_words(info: u64, out: *mut [u64; 4]);
    fn sw_siginfo_kind(info: u64) -> u32;
    fn sw_btf_task_process_start(task: u64) -> u64;
    fn sw_btf_fill_task(dst: u64, task: u64);
    fn sw_current_syscall(out: *mut [i64; 5], direct: u32);
}

#[unsafe(no_mangle)]
static CONFIG: Config = Config {
    filter_targets: 0,
    self_pid: 0,
    wakeup_bytes: 0,
    oom_pid_offset: u32::MAX,
    follow_children: 0,
    syscall_nrs: [-1; syscall::COUNT],
    fold_repeats: 0,
    features: 0,
};

const NO_LAYOUT: SyscallLayout = SyscallLayout {
    arg0: SyscallLayout::ABSENT,
    arg1: SyscallLayout::ABSENT,
    sig: SyscallLayout::ABSENT,
    ret: SyscallLayout::ABSENT,
};

#[unsafe(no_mangle)]
static LAYOUTS: SyscallLayouts = SyscallLayouts([NO_LAYOUT; syscall::COUNT]);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

/// Processes (by pid) whose signals are reported when `CONFIG.filter_targets` is set.
#[map]
static TARGETS: HashMap<u32, u32> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// Senders whose ancestry chain was already sent (pid -> process start). Later signals
/// from the same process skip the chain walk, which is most of a record's cost.
#[map]
static SENDERS_SEEN: LruHashMap<u32, u64> = LruHashMap::with_max_entries(16384, 0);

/// The last meaningful signal each process received (by pid), for cause chains.
#[map]
static RECEIVED: LruHashMap<u32, Cause> = LruHashMap::with_max_entries(16384, 0);

/// When a process whose pid has these low bits last received a meaningful signal: the
/// fold key's cause, read with an array index instead of a RECEIVED lookup on every
/// signal of a storm. Sharing the slot with other pids only ends a fold early.
#[map]
static RECEIVED_AT: Array<u64> = Array::with_max_entries(RECEIVED_AT_SLOTS, 0);
const RECEIVED_AT_SLOTS: u32 = 256;

/// The recorder's folding of identical signals, per CPU (see FoldSlot).
#[map]
static FOLD: PerCpuArray<FoldSlot> = PerCpuArray::with_max_entries(FOLD_WAYS, 0);

/// The time of the latest exec or process exit: reports name command lines and ancestry, so
/// a signal after one is never folded into a record made before it.
#[map]
static GENERATION: Array<u64> = Array::with_max_entries(1, 0);

/// Records that did not fit in the ring buffer, per CPU, indexed by record kind.
#[map]
static DROPPED: PerCpuArray<u64> = PerCpuArray::with_max_entries(8, 0);

#[inline(always)]
fn config() -> Config {
    // SAFETY: CONFIG lives in read-only data that userspace fills in before load; the
    // volatile read stops the compiler from folding in the build-time defaults.
    unsafe { read_volatile(&CONFIG) }
}

/// Whether this kernel has `feature` (a [`features`] bit). A constant to the verifier
/// (CONFIG is frozen read-only data), so the other branch is never verified.
#[inline(always)]
fn has(feature: u32) -> bool {
    // SAFETY: as in config(); only the one field is read.
    let features = unsafe { read_volatile(core::ptr::addr_of!(CONFIG.features)) };
    features & feature != 0
}

/// Kill-family calls in progress (thread id -> what was asked), kept by the
/// `syscalls:sys_enter_*` programs on kernels without `bpf_task_pt_regs()` and taken out
/// when the call returns. LRU: an entry whose return was missed is evicted, never
/// piled up.
#[map]
static INFLIGHT: LruHashMap<u32, Request> = LruHashMap::with_max_entries(16384, 0);

/// Non-zero at `pid % TARGET_HINT_SLOTS` for every pid ever put in TARGETS (never
/// cleared: a stale mark only costs a TARGETS lookup). Most signals in a filtered view
/// are aimed elsewhere, and an array index is much cheaper than a hash lookup.
#[map]
static TARGET_HINTS: Array<u8> = Array::with_max_entries(TARGET_HINT_SLOTS, 0);

#[inline(always)]
fn is_target(pid: u32) -> bool {
    match TARGET_HINTS.get(pid % TARGET_HINT_SLOTS) {
        Some(&0) | None => false,
        // SAFETY: the value is not dereferenced.
        Some(_) => unsafe { TARGETS.get(&pid).is_some() },
    }
}

/// Adds `pid` to the filter (a full map only loses it; userspace checks the size).
#[inline(always)]
fn add_target(pid: u32) {
    if let Some(hint) = TARGET_HINTS.get_ptr_mut(pid % TARGET_HINT_SLOTS) {
        // SAFETY: a map value, valid for the program's run; a byte store is atomic.
        unsafe { write_volatile(hint, 1) };
    }
    let _ = TARGETS.insert(&pid, &1, 0);
}

fn count_drop(record_kind: u32) {
    if let Some(counter) = DROPPED.get_ptr_mut(record_kind) {
        // SAFETY: per-CPU slot, so no other writer runs concurrently.
        unsafe { *counter += 1 };
    }
}

/// Wake the reader only when enough has piled up; a lone record waits for the reader's
/// next timer tick instead of costing a wakeup (and a context switch) per signal.
/// Room for a record of `T`, or None with the drop counted. A full ring is noticed
/// from its positions, without the ring's lock: in a flood most records are drops, and
/// taking a lock that every CPU wants only to learn that would cost the senders more.
#[inline(always)]
fn reserve<T>(record_kind: u32) -> Option<RingBufEntry<T>> {
    let entry = reserve_or_none::<T>();
    if entry.is_none() {
        count_drop(record_kind);
    }
    entry
}

/// [`reserve`] for a record whose contents are kept elsewhere when it does not fit.
#[inline(always)]
fn reserve_or_none<T>() -> Option<RingBufEntry<T>> {
    let unread = EVENTS.query(BPF_RB_AVAIL_DATA.into());
    if unread + record_bytes::<T>() > u64::from(RING_BYTES) {
        return None;
    }
    EVENTS.reserve::<T>(0)
}

/// Wake the reader only when the unread data crosses the fill level (or half the
/// ring), not on every record above it: a wakeup costs the sender far more than the
/// record itself, and during a flood every record is above the level while the reader
/// is already busy. A crossing two CPUs jump over together is caught by the reader's
/// own timer tick.
#[inline(always)]
fn submit_flags<T>() -> u64 {
    let wakeup_bytes = config().wakeup_bytes;
    if wakeup_bytes == 0 {
        return 0;
    }
    let unread = EVENTS.query(BPF_RB_AVAIL_DATA.into());
    // This record is already counted in `unread` (it is reserved).
    let band = 2 * record_bytes::<T>();
    let crossed = |level: u64| unread >= level && unread < level + band;
    if crossed(wakeup_bytes) || crossed(u64::from(RING_BYTES) / 2) {
        BPF_RB_FORCE_WAKEUP.into()
    } else {
        BPF_RB_NO_WAKEUP.into()
    }
}

/// Ring space a record of `T` takes: an 8-byte header, rounded up to 8.
#[inline(always)]
fn record_bytes<T>() -> u64 {
    (size_of::<T>() as u64 + 8 + 7) & !7
}

#[inline(always)]
unsafe fn write_header(header: *mut EventHeader, record_kind: u32) {
    unsafe {
        header.write(EventHeader {
            kind: record_kind,
            cpu: bpf_get_smp_processor_id(),
            time_ns: bpf_ktime_get_boot_ns(),
        });
    }
}

// --- task reads ----------------------------------------------------------------------
// Two ways to read a task: plain loads through a pointer the verifier knows as a
// task_struct (sw_btf_*, shim/core.c), or CO-RE bpf_probe_read_kernel() reads through
// any task address (sw_task_*). The first is cheaper; verifiers have changed what they
// allow through tracepoint arguments (6.13 retyped signal_generate's siginfo), so it is
// used only under DIRECT_LOADS, which userspace clears when a verifier refuses it.
// Proven on every kernel of `cargo xtask vmtest` (5.10, 6.1, 6.12, 7.x and the host's).

/// tgid of a BTF-typed task (a tracepoint argument).
#[inline(always)]
unsafe fn btf_task_tgid(task: u64) -> u32 {
    if has(features::DIRECT_LOADS) {
        unsafe { sw_btf_task_tgid(task) }
    } else {
        unsafe { sw_task_tgid(task) }
    }
}

/// Thread id of a BTF-typed task.
#[inline(always)]
unsafe fn btf_task_tid(task: u64) -> u32 {
    if has(features::DIRECT_LOADS) {
        unsafe { sw_btf_task_tid(task) }
    } else {
        unsafe { sw_task_tid(task) }
    }
}

/// The current task as a BTF-typed pointer, where this kernel has the helper and
/// direct loads are allowed; 0 otherwise (read `bpf_get_current_task()` with CO-RE).
/// Not an Option: rustc loads an Option's payload before testing it, and verifiers
/// before 5.12 refuse that read of a stack slot never written.
#[inline(always)]
fn current_task_btf() -> u64 {
    if has(features::CURRENT_TASK_BTF) && has(features::DIRECT_LOADS) {
        // SAFETY: a helper without arguments; the verifier checks it exists (the
        // branch is pruned where it does not).
        unsafe { bpf_get_current_task_btf() as u64 }
    } else {
        0
    }
}

/// Start of the process of `task` (an untyped address), or of `typed` (the same task,
/// BTF-typed) unless that is 0.
#[inline(always)]
unsafe fn process_start(task: u64, typed: u64) -> u64 {
    if typed != 0 {
        unsafe { sw_btf_task_process_start(typed) }
    } else {
        unsafe { sw_task_process_start(task) }
    }
}

/// [`write_task`] for a BTF-typed task (a tracepoint argument, the BTF current task):
/// plain loads under DIRECT_LOADS.
#[inline(always)]
unsafe fn write_btf_task(dst: *mut TaskRef, task: u64) {
    unsafe {
        if has(features::DIRECT_LOADS) {
            sw_btf_fill_task(dst as u64, task);
        } else {
            write_task(dst, task);
        }
    }
}

/// Fills `dst` with what the kernel knows about `task` now (CO-RE probe reads: any
/// task address will do).
#[inline(always)]
unsafe fn write_task(dst: *mut TaskRef, task: u64) {
    unsafe {
        addr_of_mut!((*dst).pid).write(sw_task_tgid(task));
        addr_of_mut!((*dst).tid).write(sw_task_tid(task));
        addr_of_mut!((*dst).start_ns).write(sw_task_process_start(task));
        addr_of_mut!((*dst).uid).write(sw_task_uid(task));
        let parent = sw_task_real_parent(task);
        addr_of_mut!((*dst).ppid).write(if parent == 0 { 0 } else { sw_task_tgid(parent) });
        read_comm(addr_of_mut!((*dst).comm).cast(), task);
        addr_of_mut!((*dst).ns_pid).write(sw_task_ns_pid(task));
        let flags = if sw_task_exiting(task) != 0 {
            task_flags::EXITING
        } else {
            0
        };
        addr_of_mut!((*dst).flags).write(flags);
    }
}

#[inline(always)]
unsafe fn read_comm(dst: *mut u8, task: u64) {
    unsafe {
        let src = (task + u64::from(sw_task_comm_offset())) as *const core::ffi::c_void;
        if bpf_probe_read_kernel_str(dst.cast(), COMM_LEN as u32, src) < 0 {
            dst.write(0);
        }
    }
}

/// Walks the real-parent chain of `task` as it is at this instant; returns how many
/// generations were written (parent first, stopping after pid 1).
#[inline(always)]
unsafe fn write_ancestry(dst: *mut [Ancestor; ANCESTRY_DEPTH], task: u64) -> u32 {
    let mut written = 0u32;
    unsafe {
        let mut current = task;
        let mut generation = 0usize;
        while generation < ANCESTRY_DEPTH {
            let parent = sw_task_real_parent(current);
            if parent == 0 || parent == current {
                break;
            }
            let pid = sw_task_tgid(parent);
            if pid == 0 {
                break;
            }
            let entry = addr_of_mut!((*dst)[generation]);
            addr_of_mut!((*entry).pid).write(pid);
            addr_of_mut!((*entry)._pad).write(0);
            addr_of_mut!((*entry).start_ns).write(sw_task_process_start(parent));
            read_comm(addr_of_mut!((*entry).comm).cast(), parent);
            written += 1;
            if pid == 1 {
                break;
            }
            current = parent;
            generation += 1;
        }
    }
    written
}

/// The chain is sent once per sender process; later records say ANCESTRY_CACHED.
#[inline(always)]
unsafe fn write_sender_ancestry(
    dst: *mut [Ancestor; ANCESTRY_DEPTH],
    task: u64,
    pid: u32,
    start_ns: u64,
) -> (u32, bool) {
    // SAFETY: the value is copied out at once.
    if let Some(seen) = unsafe { SENDERS_SEEN.get(&pid) }
        && *seen == start_ns
    {
        return (0, true);
    }
    let written = unsafe { write_ancestry(dst, task) };
    // A full map only costs a repeated chain later; nothing to report.
    let _ = SENDERS_SEEN.insert(&pid, &start_ns, 0);
    (written, false)
}

// --- signal:signal_generate -------------------------------------------------------
// include/trace/events/signal.h, TRACE_EVENT(signal_generate,
//   TP_PROTO(int sig, struct kernel_siginfo *info, struct task_struct *task,
//            int group, int result))
// Called from __send_signal_locked() (kernel/signal.c) for every signal the kernel
// generates: kill-family syscalls, faults, SIGPIPE, timers, SIGCHLD, OOM kills,
// pdeath_signal, tty signals.

// siginfo's layout is user ABI (include/uapi/asm-generic/siginfo.h: si_signo, si_errno,
// si_code, then the union at offset 16 on 64-bit), and kernel_siginfo is its prefix, so
// these offsets are fixed by the ABI, not by one kernel build.
const SI_ERRNO: u64 = 4;
const SI_CODE: u64 = 8;
const SI_PID: u64 = 16;
const SI_UID: u64 = 20;
const SI_VALUE: u64 = 24;
const SI_ADDR: u64 = 16;
// include/linux/sched/signal.h: SEND_SIG_NOINFO and SEND_SIG_PRIV are the pointers 0, 1.
// The pointer is never compared in Rust: see sw_siginfo_kind (shim/core.c).
const SIGINFO_NONE: u32 = 10;
const SIGINFO_PRIV: u32 = 11;

/// Which of SEND_SIG_NOINFO, SEND_SIG_PRIV or a real siginfo `info` is, as
/// sw_siginfo_kind says it (SIGINFO_NONE, SIGINFO_PRIV or anything else).
#[inline(always)]
fn siginfo_kind(info: u64) -> u32 {
    // SAFETY: compares its argument with 0 and 1; reads nothing.
    unsafe { sw_siginfo_kind(info) }
}
const SI_USER: i32 = 0;
const SI_KERNEL: i32 = 0x80;
const SI_TIMER: i32 = -2;

unsafe fn read_kernel<T: Default>(addr: u64) -> T {
    let mut value = T::default();
    unsafe {
        bpf_probe_read_kernel(
            (&raw mut value).cast(),
            size_of::<T>() as u32,
            addr as *const core::ffi::c_void,
        );
    }
    value
}

/// signal_generate's siginfo (a real one: not SEND_SIG_NOINFO/PRIV) as four words.
#[inline(always)]
unsafe fn siginfo_words(info: u64) -> [u64; 4] {
    let mut words = [0u64; 4];
    unsafe { sw_siginfo_words(info, &raw mut words) };
    words
}

/// The 32-bit field at `offset` of a siginfo read as four words (offsets from 0 to 24;
/// BPF targets are little-endian, so the lower half of a word comes first).
#[inline(always)]
fn siginfo_field(words: &[u64; 4], offset: u64) -> u32 {
    let word = words[(offset / 8) as usize & 3];
    (word >> ((offset % 8) * 8)) as u32
}

fn is_fault(sig: i32) -> bool {
    // SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV: si_addr is the faulting address.
    matches!(sig, 4 | 5 | 7 | 8 | 11)
}

#[btf_tracepoint(function = "signal_generate")]
pub fn signal_generate(ctx: BtfTracePointContext) -> u32 {
    match unsafe { try_signal_generate(&ctx) } {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

unsafe fn try_signal_generate(ctx: &BtfTracePointContext) -> Result<u32, u32> {
    let sig: i32 = ctx.arg(0);
    let info: u64 = ctx.arg(1);
    let target_task: u64 = ctx.arg(2);
    let group: i32 = ctx.arg(3);
    let result: i32 = ctx.arg(4);
    let cfg = config();

    let target_pid = unsafe { btf_task_tgid(target_task) };
    let wanted = cfg.filter_targets == 0 || is_target(target_pid);
    let meaningful = is_meaningful(sig, result);
    // Storms of signals that are ignored, or aimed elsewhere, stop here.
    if !wanted && !meaningful {
        return Ok(0);
    }
    let sender_task = unsafe { bpf_get_current_task() };
    // The helper is cheaper than a CO-RE read of current->tgid.
    let pid_tgid = bpf_get_current_pid_tgid();
    let sender_pid = (pid_tgid >> 32) as u32;
    if meaningful && sender_pid != target_pid {
        unsafe { remember_received(sig, info, target_task, target_pid, sender_task, sender_pid) };
    }
    if !wanted {
        return Ok(0);
    }
    if cfg.filter_targets == 0 && (target_pid == cfg.self_pid || sender_pid == cfg.self_pid) {
        return Ok(0);
    }

    let request = unsafe { current_request(sig, sender_task, target_task, target_pid) };
    // The recorder folds a storm of identical signals into counts (see FoldSlot).
    let mut fold_slot: *mut FoldSlot = core::ptr::null_mut();
    let mut key = FoldKey::default();
    let mut now = 0;
    let mut way = 0;
    let sender_btf = current_task_btf();
    if cfg.fold_repeats != 0 {
        unsafe {
            let sender = (sender_task, sender_btf, pid_tgid);
            key = fold_key(sig, info, group, result, target_task, sender, &request);
        }
        way = fold_way(&key);
    }
    if cfg.fold_repeats != 0
        && let Some(slot) = FOLD.get_ptr_mut(way)
    {
        unsafe {
            now = fold_clock(slot);
            if fold_into(slot, &key, now, true) {
                return Ok(0);
            }
            // The count so far must reach the ring before the slot takes another
            // signal. While it cannot, the window stays open: an identical signal still
            // joins it, another one is dropped (and counted).
            if !close_window(slot) {
                if !fold_into(slot, &key, now, false) {
                    count_drop(kind::SIGNAL);
                }
                return Ok(0);
            }
        }
        fold_slot = slot;
    }

    let Some(mut entry) = reserve::<SignalEvent>(kind::SIGNAL) else {
        return Ok(0);
    };
    let info_kind = siginfo_kind(info);
    let ev = entry.as_mut_ptr();
    let fold_id = if fold_slot.is_null() {
        0
    } else {
        unsafe { next_fold_id(fold_slot, way) }
    };
    unsafe {
        addr_of_mut!((*ev).fold_id).write(fold_id);
        write_header(addr_of_mut!((*ev).header), kind::SIGNAL);
        addr_of_mut!((*ev).sig).write(sig);
        addr_of_mut!((*ev).group).write(group);
        addr_of_mut!((*ev).result).write(result);
        addr_of_mut!((*ev)._pad).write(0);

        let mut flags = 0u32;
        if info_kind == SIGINFO_NONE || info_kind == SIGINFO_PRIV {
            flags |= signal_flags::NO_SIGINFO;
            addr_of_mut!((*ev).code).write(if info_kind == SIGINFO_NONE {
                SI_USER
            } else {
                SI_KERNEL
            });
            addr_of_mut!((*ev).errno).write(0);
            addr_of_mut!((*ev).si_pid).write(0);
            addr_of_mut!((*ev).si_uid).write(0);
            addr_of_mut!((*ev).si_value).write(0);
            addr_of_mut!((*ev).si_addr).write(0);
        } else {
            let words = if fold_slot.is_null() {
                siginfo_words(info)
            } else {
                key.siginfo
            };
            let at = |offset: u64| siginfo_field(&words, offset);
            addr_of_mut!((*ev).code).write(at(SI_CODE) as i32);
            addr_of_mut!((*ev).errno).write(at(SI_ERRNO) as i32);
            addr_of_mut!((*ev).si_pid).write(at(SI_PID) as i32);
            addr_of_mut!((*ev).si_uid).write(at(SI_UID) as u32);
            addr_of_mut!((*ev).si_value).write(words[(SI_VALUE / 8) as usize]);
            let addr = if is_fault(sig) {
                words[(SI_ADDR / 8) as usize]
            } else {
                0
            };
            addr_of_mut!((*ev).si_addr).write(addr);
        }

        if sender_btf != 0 {
            sw_btf_fill_task(addr_of_mut!((*ev).sender) as u64, sender_btf);
        } else {
            write_task(addr_of_mut!((*ev).sender), sender_task);
        }
        write_btf_task(addr_of_mut!((*ev).target), target_task);

        addr_of_mut!((*ev).request).write(request);

        let sender_start = (*ev).sender.start_ns;
        let (len, cached) = write_sender_ancestry(
            addr_of_mut!((*ev).sender_ancestry),
            sender_task,
            sender_pid,
            sender_start,
        );
        if cached {
            flags |= signal_flags::ANCESTRY_CACHED;
        }
        addr_of_mut!((*ev).ancestry_len).write(len);
        addr_of_mut!((*ev).flags).write(flags);
        addr_of_mut!((*ev)._pad2).write(0);
        let causes = write_causes(
            addr_of_mut!((*ev).causes),
            sender_pid,
            sender_start,
            target_pid,
        );
        addr_of_mut!((*ev).cause_len).write(causes);
    }
    entry.submit(submit_flags::<SignalEvent>());
    if !fold_slot.is_null() {
        unsafe { after_full_record(fold_slot, &key, now, fold_id) };
    }
    Ok(0)
}

// --- folding identical signals (recorder) ------------------------------------------
// A storm of one signal between one pair of threads would otherwise cost a full record
// (and the reader's time) per signal. The recorder stores identical repeats as one
// journal row with a count anyway, so the kernel counts them instead: two identical
// full records in a row arm the CPU's FoldSlot, further identical signals only count,
// and the count is sent as a RepeatsEvent when something else comes or the window ends.
// Only signals of one CPU are compared, in the order that CPU generated them.

/// Everything but the time that makes a signal's report (see FoldKey). `sender` is
/// the current task, the same BTF-typed where there is one, and its pid_tgid.
#[inline(always)]
unsafe fn fold_key(
    sig: i32,
    info: u64,
    group: i32,
    result: i32,
    target_task: u64,
    (sender_task, sender_btf, pid_tgid): (u64, u64, u64),
    request: &Request,
) -> FoldKey {
    unsafe {
        // One read for what the report takes from the siginfo.
        // Markers that cannot be a siginfo's first word (its si_signo is 1 to 64):
        // not `info` itself, which the verifier tracks as a pointer.
        let info_kind = siginfo_kind(info);
        let siginfo = if info_kind == SIGINFO_NONE {
            [u64::MAX, 0, 0, 0]
        } else if info_kind == SIGINFO_PRIV {
            [u64::MAX - 1, 0, 0, 0]
        } else {
            siginfo_words(info)
        };
        let sender_pid = (pid_tgid >> 32) as u32;
        // The cause chain starts at what the sender last received.
        let cause_ns = match RECEIVED_AT.get(sender_pid % RECEIVED_AT_SLOTS) {
            Some(at) => read_volatile(at),
            None => 0,
        };
        let generation = match GENERATION.get(0) {
            Some(generation) => read_volatile(generation),
            None => 0,
        };
        FoldKey {
            sender_tid: pid_tgid as u32,
            target_tid: btf_task_tid(target_task),
            sender_start_ns: process_start(sender_task, sender_btf),
            target_start_ns: process_start(
                target_task,
                if has(features::DIRECT_LOADS) {
                    target_task
                } else {
                    0
                },
            ),
            sig,
            result,
            group,
            _pad: 0,
            siginfo,
            request: *request,
            cause_ns,
            generation,
        }
    }
}

/// Word by word: a derived comparison becomes a byte-wise memcmp, slower and refused
/// by the verifier for the key on the stack.
#[inline(always)]
fn same_key(a: &FoldKey, b: &FoldKey) -> bool {
    const WORDS: usize = size_of::<FoldKey>() / 8;
    // SAFETY: FoldKey is repr(C), a multiple of 8 bytes with explicit padding, aligned
    // to 8; every bit pattern is a valid [u64; WORDS].
    let (a, b) = unsafe {
        (
            &*(a as *const FoldKey).cast::<[u64; WORDS]>(),
            &*(b as *const FoldKey).cast::<[u64; WORDS]>(),
        )
    };
    let mut i = 0;
    while i < WORDS {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The time for folding: the boot clock, read at most once per jiffy and slot (the
/// clock costs a storm's signal more than the rest of counting it); later signals in
/// the same jiffy reuse that reading, so repeats' times are early by up to a jiffy.
#[inline(always)]
unsafe fn fold_clock(slot: *mut FoldSlot) -> u64 {
    unsafe {
        let jiffies = bpf_jiffies64();
        if jiffies == (*slot).clock_jiffies {
            return (*slot).clock_ns;
        }
        let now = bpf_ktime_get_boot_ns();
        (*slot).clock_jiffies = jiffies;
        (*slot).clock_ns = now;
        now
    }
}

/// Counts the signal when the slot is folding and it repeats the folded one; with
/// `in_window`, only within the window's time.
#[inline(always)]
unsafe fn fold_into(slot: *mut FoldSlot, key: &FoldKey, now: u64, in_window: bool) -> bool {
    unsafe {
        let row = read_volatile(addr_of_mut!((*slot).row));
        if row == 0
            || (in_window && now.wrapping_sub((*slot).window_start_ns) >= FOLD_WINDOW_NS)
            || !same_key(&(*slot).key, key)
        {
            return false;
        }
        let count = (*slot).count;
        if count == 0 {
            write_volatile(addr_of_mut!((*slot).first_ns), now);
        }
        write_volatile(addr_of_mut!((*slot).last_ns), now);
        write_volatile(addr_of_mut!((*slot).count), count + 1);
    }
    true
}

/// Ends folding on this CPU, sending the count if there is one. False when the ring
/// has no room for it: the slot is left as it is, nothing is lost.
#[inline(always)]
unsafe fn close_window(slot: *mut FoldSlot) -> bool {
    unsafe {
        let row = read_volatile(addr_of_mut!((*slot).row));
        if row == 0 {
            return true;
        }
        let count = (*slot).count;
        if count > 0 {
            let Some(mut entry) = reserve_or_none::<RepeatsEvent>() else {
                return false;
            };
            let ev = entry.as_mut_ptr();
            write_header(addr_of_mut!((*ev).header), kind::REPEATS);
            addr_of_mut!((*ev).row).write(row);
            addr_of_mut!((*ev).count).write(count);
            addr_of_mut!((*ev).first_ns).write((*slot).first_ns);
            addr_of_mut!((*ev).last_ns).write((*slot).last_ns);
            entry.submit(submit_flags::<RepeatsEvent>());
        }
        // `row` first: a reader that sees it non-zero sees the count that goes with it.
        write_volatile(addr_of_mut!((*slot).row), 0);
        write_volatile(addr_of_mut!((*slot).count), 0);
    }
    true
}

/// A new fold id: this CPU in the top 16 bits, the slot in the next 2, its sequence
/// below.
#[inline(always)]
unsafe fn next_fold_id(slot: *mut FoldSlot, way: u32) -> u64 {
    unsafe {
        let seq = ((*slot).seq + 1) & ((1 << 46) - 1);
        (*slot).seq = seq;
        (u64::from(bpf_get_smp_processor_id()) << 48) | (u64::from(way & 3) << 46) | seq
    }
}

/// Which of the CPU's slots a signal uses: by sender and target thread, so that a
/// sender taking turns between a few targets (a process group, say) still folds.
#[inline(always)]
fn fold_way(key: &FoldKey) -> u32 {
    ((key.sender_tid ^ key.target_tid).wrapping_mul(0x9e37_79b1) >> 30) & (FOLD_WAYS - 1)
}

/// After a full record: the second identical one in a row within the window arms the
/// slot (the first one's report may differ from the rest: it has no earlier signal
/// from the same sender), any other one becomes the signal to compare with.
#[inline(always)]
unsafe fn after_full_record(slot: *mut FoldSlot, key: &FoldKey, now: u64, fold_id: u64) {
    unsafe {
        let seen = (*slot).seen_ns;
        if seen != 0 && now.wrapping_sub(seen) < FOLD_WINDOW_NS && same_key(&(*slot).key, key) {
            write_volatile(addr_of_mut!((*slot).count), 0);
            write_volatile(addr_of_mut!((*slot).first_ns), 0);
            write_volatile(addr_of_mut!((*slot).last_ns), 0);
            write_volatile(addr_of_mut!((*slot).window_start_ns), now);
            write_volatile(addr_of_mut!((*slot).seen_ns), now);
            write_volatile(addr_of_mut!((*slot).row), fold_id);
        } else {
            (*slot).key = *key;
            (*slot).seen_ns = now;
        }
    }
}

/// Folding must not join signals across an exec or exit anywhere (see GENERATION).
#[inline(always)]
fn bump_generation() {
    if config().fold_repeats == 0 {
        return;
    }
    if let Some(generation) = GENERATION.get_ptr_mut(0) {
        // A time, not a count: BPF has no atomic increment here, and two CPUs storing
        // a count at once could store the value a fold slot already holds, while two
        // times differ (so every exec and exit changes the value slots compare).
        // SAFETY: a map value, valid and aligned for the program's run.
        unsafe { write_volatile(generation, bpf_ktime_get_boot_ns()) };
    }
}

/// Signals worth remembering as a possible cause of what the receiver does next: not
/// the notifications every process gets (SIGCHLD, SIGCONT, SIGURG, SIGWINCH), and only
/// ones that reached it (delivered, or merged with a pending one).
#[inline(always)]
fn is_meaningful(sig: i32, result: i32) -> bool {
    !matches!(sig, 17 | 18 | 23 | 28) && (result == 0 || result == 2)
}

/// alarm/setitimer (SIGALRM, SIGVTALRM, SIGPROF sent with SEND_SIG_PRIV from
/// kernel/time/itimer.c) and POSIX timers (SI_TIMER, kernel/time/posix-timers.c).
#[inline(always)]
fn is_own_timer(sig: i32, code: i32) -> bool {
    code == SI_TIMER || (code == SI_KERNEL && matches!(sig, 14 | 26 | 27))
}

#[inline(always)]
unsafe fn remember_received(
    sig: i32,
    info: u64,
    target_task: u64,
    target_pid: u32,
    sender_task: u64,
    sender_pid: u32,
) {
    let mut cause = Cause::default();
    unsafe {
        cause.time_ns = bpf_ktime_get_boot_ns();
        cause.receiver_start_ns = sw_task_process_start(target_task);
        cause.sender_pid = sender_pid;
        cause.sender_tid = sw_task_tid(sender_task);
        cause.sender_start_ns = sw_task_process_start(sender_task);
        cause.sig = sig;
        let info_kind = siginfo_kind(info);
        cause.code = if info_kind == SIGINFO_NONE {
            SI_USER
        } else if info_kind == SIGINFO_PRIV {
            SI_KERNEL
        } else {
            read_kernel::<i32>(info + SI_CODE)
        };
        // A timer the process armed itself is its own doing, not someone else's, and
        // its "sender" is whatever task the timer interrupt happened to hit.
        if is_own_timer(sig, cause.code) {
            return;
        }
        cause.syscall = current_request(sig, sender_task, target_task, target_pid).syscall;
        cause.sender_uid = sw_task_uid(sender_task);
        read_comm(cause.sender_comm.as_mut_ptr(), sender_task);
    }
    // A full map evicts the oldest entry (LRU); nothing to report.
    let _ = RECEIVED.insert(&target_pid, &cause, 0);
    if let Some(at) = RECEIVED_AT.get_ptr_mut(target_pid % RECEIVED_AT_SLOTS) {
        // SAFETY: a map value, valid for the program's run.
        unsafe { write_volatile(at, cause.time_ns) };
    }
}

/// Follows RECEIVED from the sender backwards: what it had received, what that signal's
/// sender had received, ... Stops at a pid whose entry belongs to an earlier process,
/// and at loops.
#[inline(always)]
unsafe fn write_causes(
    dst: *mut [Cause; CAUSE_DEPTH],
    sender_pid: u32,
    sender_start: u64,
    target_pid: u32,
) -> u32 {
    let mut pid = sender_pid;
    let mut start = sender_start;
    let mut written = 0u32;
    let mut link = 0usize;
    while link < CAUSE_DEPTH {
        // SAFETY: copied out at once.
        let Some(cause) = (unsafe { RECEIVED.get(&pid) }).copied() else {
            break;
        };
        if cause.receiver_start_ns != start {
            break;
        }
        unsafe { addr_of_mut!((*dst)[link]).write(cause) };
        written += 1;
        if cause.sender_pid == target_pid || cause.sender_pid == pid {
            break;
        }
        pid = cause.sender_pid;
        start = cause.sender_start_ns;
        link += 1;
    }
    written
}

// --- what the sender asked for -----------------------------------------------------
// A signal a process sends is generated while it is still inside its kill-family
// syscall, so the registers it entered the kernel with (bpf_task_pt_regs(), the
// arch's struct pt_regs) say which syscall (its number, compared with CONFIG's) and
// with which arguments (by ABI position, include/linux/syscalls.h):
//   kill(pid, sig)  tkill(tid, sig)  tgkill(tgid, tid, sig)
//   pidfd_send_signal(pidfd, sig, info, flags)  rt_sigqueueinfo(pid, sig, info)
//   rt_tgsigqueueinfo(tgid, tid, sig, info)
// This costs nothing on the syscall path itself: unlike syscalls:sys_enter_*, which
// sends every syscall of every task through the tracing slow path. Kernels before 5.15
// have no bpf_task_pt_regs(); there the sys_enter_* programs below keep the arguments
// in INFLIGHT instead (features::TASK_PT_REGS).

/// The kill-family call the current task (`task`) is in, or the default (syscall NONE)
/// when it is in none: from its saved registers where the kernel lets programs read
/// them, else from what its sys_enter_* program kept.
#[inline(always)]
unsafe fn asked_now(task: u64) -> Request {
    if has(features::TASK_PT_REGS) {
        let regs = unsafe { current_syscall() };
        let which = syscall_with_nr(regs[0]);
        if which == syscall::NONE {
            return Request::default();
        }
        unsafe { request_from_args(which, task, |n| syscall_arg(&regs, n)) }
    } else {
        let tid = bpf_get_current_pid_tgid() as u32;
        // SAFETY: copied out at once.
        unsafe { INFLIGHT.get(&tid) }.copied().unwrap_or_default()
    }
}

/// The current task's syscall number and arguments 0-3 (see sw_current_syscall).
#[inline(always)]
unsafe fn current_syscall() -> [i64; 5] {
    let mut regs = [0i64; 5];
    unsafe { sw_current_syscall(&raw mut regs, u32::from(has(features::DIRECT_LOADS))) };
    regs
}

/// Argument `n` (0-3) of what [`current_syscall`] read.
#[inline(always)]
fn syscall_arg(regs: &[i64; 5], n: u32) -> i64 {
    regs[1 + (n & 3) as usize]
}

/// Which kill-family syscall has number `nr` on this machine; NONE for any other.
#[inline(always)]
fn syscall_with_nr(nr: i64) -> u32 {
    if nr < 0 {
        return syscall::NONE;
    }
    let nrs = config().syscall_nrs;
    let mut i = 0;
    while i < syscall::COUNT {
        if i64::from(nrs[i]) == nr {
            return i as u32 + 1;
        }
        i += 1;
    }
    syscall::NONE
}

/// int/pid_t arguments arrive in 64-bit registers whose upper half may hold garbage.
#[inline(always)]
fn int_arg(raw: i64) -> i64 {
    i64::from(raw as u32 as i32)
}

/// The request syscall `which` made, from its arguments (`arg(n)` reads argument n).
#[inline(always)]
unsafe fn request_from_args(which: u32, task: u64, arg: impl Fn(u32) -> i64) -> Request {
    let (arg0, arg1, sig) = match which {
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => {
            (int_arg(arg(0)), int_arg(arg(1)), int_arg(arg(2)))
        }
        _ => (int_arg(arg(0)), 0, int_arg(arg(1))),
    };
    let pidfd_pid = if which == syscall::PIDFD_SEND_SIGNAL {
        unsafe { sw_pidfd_pid(task, arg0 as i32) }
    } else {
        0
    };
    Request {
        syscall: which,
        sig: sig as i32,
        arg0,
        arg1,
        pidfd_pid,
        _pad: 0,
    }
}

/// What the sender asked for when it generated signal `sig` for `target_task`, or the
/// default (syscall NONE) when it is in no kill-family syscall. A signal the kernel
/// makes while the current task happens to be in one (a timer interrupt, say) is told
/// apart by the signal and, where the request names one process, by the target.
#[inline(always)]
unsafe fn current_request(
    sig: i32,
    sender_task: u64,
    target_task: u64,
    target_pid: u32,
) -> Request {
    let request = unsafe { asked_now(sender_task) };
    let which = request.syscall;
    if which == syscall::NONE {
        return Request::default();
    }
    let pid = i64::from(target_pid);
    // A sender inside a pid namespace names the target by its pid there: the target's
    // innermost-level pid when both share the namespace (the usual container case).
    let names_target =
        |asked: i64| asked == pid || asked == i64::from(unsafe { sw_task_ns_pid(target_task) });
    let consistent = request.sig == sig
        && match which {
            syscall::KILL | syscall::RT_SIGQUEUEINFO => {
                request.arg0 <= 0 || names_target(request.arg0)
            }
            syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => names_target(request.arg0),
            // Thread ids in a namespace are not worth a walk here; the signal matched.
            syscall::TKILL => {
                request.arg0 == i64::from(unsafe { sw_task_tid(target_task) })
                    || unsafe { sw_task_ns_pid(sender_task) }
                        != (bpf_get_current_pid_tgid() >> 32) as u32
            }
            _ => true,
        };
    if consistent {
        request
    } else {
        Request::default()
    }
}

// --- failed attempts: fexit of the syscall functions -------------------------------
// A request the kernel refuses (EPERM, ESRCH, EINVAL) generates no signal. The syscall
// functions' return values show those: fexit programs attached at load time to
// __<arch>_sys_<name> (arch/x86/include/asm/syscall_wrapper.h, one argument: the
// caller's struct pt_regs), found by name in the kernel's BTF. A successful call costs
// one trampoline and a comparison.

/// Whether a failed request could have been aimed at a watched process. Group,
/// broadcast and thread-id requests cannot be resolved here; userspace decides those.
fn failed_request_wanted(request: &Request) -> bool {
    let direct = |pid: i64| pid > 0 && is_target(pid as u32);
    match request.syscall {
        syscall::KILL | syscall::RT_SIGQUEUEINFO => request.arg0 <= 0 || direct(request.arg0),
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => direct(request.arg0),
        syscall::PIDFD_SEND_SIGNAL => direct(i64::from(request.pidfd_pid)),
        _ => true,
    }
}

/// Reports a failed request, if one was wanted.
#[inline(always)]
unsafe fn report_failure(request: &Request, ret: i64, task: u64) {
    let cfg = config();
    if cfg.filter_targets != 0 && !failed_request_wanted(request) {
        return;
    }
    let Some(mut entry) = reserve::<FailedSendEvent>(kind::FAILED_SEND) else {
        return;
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        write_header(addr_of_mut!((*ev).header), kind::FAILED_SEND);
        addr_of_mut!((*ev).request).write(*request);
        addr_of_mut!((*ev).ret).write(ret);
        write_task(addr_of_mut!((*ev).sender), task);
        addr_of_mut!((*ev)._pad).write(0);
        // A failed attempt is rare and worth a full chain every time.
        let len = write_ancestry(addr_of_mut!((*ev).sender_ancestry), task);
        addr_of_mut!((*ev).ancestry_len).write(len);
    }
    entry.submit(submit_flags::<FailedSendEvent>());
}

unsafe fn on_syscall_return(ctx: &FExitContext, which: u32) -> Result<u32, u32> {
    let ret: i64 = ctx.arg(1);
    unsafe { on_return(which, ret) }
}

/// A kill-family syscall `which` of the current task returns `ret`: reports it if it
/// failed. The arguments are still in the registers the task entered the kernel with.
#[inline(always)]
unsafe fn on_return(which: u32, ret: i64) -> Result<u32, u32> {
    let task = unsafe { bpf_get_current_task() };
    let request = if has(features::TASK_PT_REGS) {
        if ret >= 0 {
            return Ok(0);
        }
        let regs = unsafe { current_syscall() };
        unsafe { request_from_args(which, task, |n| syscall_arg(&regs, n)) }
    } else {
        // The call is over either way: its entry goes.
        let tid = bpf_get_current_pid_tgid() as u32;
        // SAFETY: copied out at once.
        let kept = unsafe { INFLIGHT.get(&tid) }.copied();
        let _ = INFLIGHT.remove(&tid);
        match kept {
            Some(request) if ret < 0 && request.syscall == which => request,
            _ => return Ok(0),
        }
    };
    // Signal 0 only checks that a process exists; nothing is sent.
    if request.sig == 0 {
        return Ok(0);
    }
    unsafe { report_failure(&request, ret, task) };
    Ok(0)
}

macro_rules! syscall_return_hooks {
    ($($name:ident => $which:expr;)*) => {$(
        // The function named here is x86-64's; userspace attaches each program to this
        // machine's name for the syscall.
        #[fexit(function = "__x64_sys_kill")]
        pub fn $name(ctx: FExitContext) -> u32 {
            match unsafe { on_syscall_return(&ctx, $which) } {
                Ok(ret) => ret,
                Err(ret) => ret,
            }
        }
    )*};
}

syscall_return_hooks! {
    kill_return => syscall::KILL;
    tkill_return => syscall::TKILL;
    tgkill_return => syscall::TGKILL;
    pidfd_send_signal_return => syscall::PIDFD_SEND_SIGNAL;
    rt_sigqueueinfo_return => syscall::RT_SIGQUEUEINFO;
    rt_tgsigqueueinfo_return => syscall::RT_TGSIGQUEUEINFO;
}

// --- syscalls:sys_enter_* of the kill family (kernels before 5.15) -----------------
// Where bpf_task_pt_regs() is missing, what each kill-family call asked for is kept
// from its entry record until it returns (INFLIGHT). Records described by
// /sys/kernel/tracing/events/syscalls/sys_enter_<name>/format (include/linux/
// syscalls.h SYSCALL_DEFINEx, one 8-byte field per argument, named as in the kernel's
// definition); userspace passes the offsets of the fields sigwho reads in LAYOUTS.
// Attached only on those kernels: every syscall of every task then takes the tracing
// slow path.

fn on_sys_enter(ctx: &TracePointContext, which: u32) -> Result<u32, u32> {
    let lay = layout(which);
    if lay.arg0 == SyscallLayout::ABSENT || lay.sig == SyscallLayout::ABSENT {
        return Ok(0);
    }
    // SAFETY: the verifier bounds-checks tracepoint context reads.
    let read = |offset: u32| unsafe { ctx.read_at::<i64>(offset as usize) }.unwrap_or(0);
    // By ABI position, as request_from_args reads them: the target, then the thread
    // for the tgkill pair, then the signal.
    let mut args = [read(lay.arg0), 0i64, 0i64, 0i64];
    match which {
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => {
            if lay.arg1 != SyscallLayout::ABSENT {
                args[1] = read(lay.arg1);
            }
            args[2] = read(lay.sig);
        }
        _ => args[1] = read(lay.sig),
    }
    let task = unsafe { bpf_get_current_task() };
    let request = unsafe { request_from_args(which, task, |n| args[(n & 3) as usize]) };
    let tid = bpf_get_current_pid_tgid() as u32;
    // A full map evicts the oldest entry (LRU): at worst one request is not named.
    let _ = INFLIGHT.insert(&tid, &request, 0);
    Ok(0)
}

macro_rules! syscall_enter_hooks {
    ($($enter:ident => $which:expr;)*) => {$(
        #[tracepoint]
        pub fn $enter(ctx: TracePointContext) -> u32 {
            match on_sys_enter(&ctx, $which) {
                Ok(ret) => ret,
                Err(ret) => ret,
            }
        }
    )*};
}

syscall_enter_hooks! {
    sys_enter_kill => syscall::KILL;
    sys_enter_tkill => syscall::TKILL;
    sys_enter_tgkill => syscall::TGKILL;
    sys_enter_pidfd_send_signal => syscall::PIDFD_SEND_SIGNAL;
    sys_enter_rt_sigqueueinfo => syscall::RT_SIGQUEUEINFO;
    sys_enter_rt_tgsigqueueinfo => syscall::RT_TGSIGQUEUEINFO;
}

// --- syscalls:sys_exit_* of the kill family (fallback) -----------------------------
// Used for failed attempts only when the fexit programs cannot be loaded: kernels
// without BPF trampolines, or in lockdown "integrity" mode, which refuses them. Records
// described by /sys/kernel/tracing/events/syscalls/sys_exit_<name>/format (generated by
// include/linux/syscalls.h SYSCALL_DEFINEx); userspace parses the offset of `ret` and
// passes it in LAYOUTS. Enabling any of these sends every syscall of every task through
// the tracing slow path, which is why fexit comes first.

#[inline(always)]
fn layout(which: u32) -> SyscallLayout {
    // SAFETY: LAYOUTS is read-only data filled in by userspace before load.
    let layouts = unsafe { read_volatile(&LAYOUTS) };
    layouts.0[(which - 1) as usize]
}

/// Where `ret` sits in the `syscalls:sys_exit_*` records of every kernel seen so far
/// (events/syscalls/sys_exit_kill/format: `field:long ret; offset:16; size:8;`).
const SYS_EXIT_RET_OFFSET: u32 = 16;

fn on_sys_exit(ctx: &TracePointContext, which: u32) -> Result<u32, u32> {
    let lay = layout(which);
    if lay.ret == SyscallLayout::ABSENT {
        return Ok(0);
    }
    // Every kernel so far puts `ret` at 16 (after the common fields and __syscall_nr):
    // then a plain load, which the verifier allows at a constant offset, instead of a
    // helper call on every kill() of the machine. Other layouts take the helper.
    let ret: i64 = if lay.ret == SYS_EXIT_RET_OFFSET {
        // SAFETY: a constant, aligned offset inside the record; the verifier checks it.
        unsafe {
            *(ctx.as_ptr() as *const u8)
                .add(SYS_EXIT_RET_OFFSET as usize)
                .cast::<i64>()
        }
    } else {
        // SAFETY: the verifier bounds-checks tracepoint context reads.
        unsafe { ctx.read_at(lay.ret as usize) }.map_err(|_| 0u32)?
    };
    unsafe { on_return(which, ret) }
}

macro_rules! syscall_exit_hooks {
    ($($exit:ident => $which:expr;)*) => {$(
        #[tracepoint]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            match on_sys_exit(&ctx, $which) {
                Ok(ret) => ret,
                Err(ret) => ret,
            }
        }
    )*};
}

syscall_exit_hooks! {
    sys_exit_kill => syscall::KILL;
    sys_exit_tkill => syscall::TKILL;
    sys_exit_tgkill => syscall::TGKILL;
    sys_exit_pidfd_send_signal => syscall::PIDFD_SEND_SIGNAL;
    sys_exit_rt_sigqueueinfo => syscall::RT_SIGQUEUEINFO;
    sys_exit_rt_tgsigqueueinfo => syscall::RT_TGSIGQUEUEINFO;
}

// --- sched:sched_process_exec -----------------------------------------------------
// include/trace/events/sched.h, TRACE_EVENT(sched_process_exec,
//   TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm))
// Fired from exec_binprm() once the new program is mapped: current is `p`, and the new
// argv sits in its memory between mm->arg_start and mm->arg_end.

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> u32 {
    match unsafe { try_sched_process_exec(&ctx) } {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

unsafe fn try_sched_process_exec(ctx: &BtfTracePointContext) -> Result<u32, u32> {
    let task: u64 = ctx.arg(0);
    let bprm: u64 = ctx.arg(2);
    bump_generation();
    let Some(mut entry) = reserve::<ExecEvent>(kind::EXEC) else {
        return Ok(0);
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        write_header(addr_of_mut!((*ev).header), kind::EXEC);
        write_task(addr_of_mut!((*ev).task), task);
        let filename = sw_bprm_filename(bprm) as *const core::ffi::c_void;
        let path = addr_of_mut!((*ev).filename).cast::<u8>();
        if bpf_probe_read_kernel_str(path.cast(), PATH_LEN as u32, filename) < 0 {
            path.write(0);
        }

        let start = sw_task_arg_start(task);
        let end = sw_task_arg_end(task);
        let mut flags = 0u32;
        let mut len = end.saturating_sub(start);
        if len > ARGS_LEN as u64 {
            len = ARGS_LEN as u64;
            flags |= exec_flags::ARGS_TRUNCATED;
        }
        let args = addr_of_mut!((*ev).args).cast::<core::ffi::c_void>();
        // The mask restates the bound above in a form the verifier tracks.
        let len = (len as u32) & (2 * ARGS_LEN as u32 - 1);
        let len = if len > ARGS_LEN as u32 {
            ARGS_LEN as u32
        } else {
            len
        };
        if len > 0 && bpf_probe_read_user(args, len, start as *const core::ffi::c_void) < 0 {
            flags |= exec_flags::ARGS_UNREADABLE;
            addr_of_mut!((*ev).args_len).write(0);
        } else {
            addr_of_mut!((*ev).args_len).write(len);
        }
        addr_of_mut!((*ev).flags).write(flags);
        addr_of_mut!((*ev)._pad).write(0);
        let levels = sw_task_cgroup_names(task, addr_of_mut!((*ev).cgroup_names) as u64);
        addr_of_mut!((*ev).cgroup_levels).write(levels);
    }
    entry.submit(submit_flags::<ExecEvent>());
    Ok(0)
}

// --- sched:sched_process_fork -----------------------------------------------------
// include/trace/events/sched.h, TRACE_EVENT(sched_process_fork,
//   TP_PROTO(struct task_struct *parent, struct task_struct *child))
// Fired from kernel_clone() after copy_process() for processes and threads alike.

#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> u32 {
    match unsafe { try_sched_process_fork(&ctx) } {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

unsafe fn try_sched_process_fork(ctx: &BtfTracePointContext) -> Result<u32, u32> {
    let forker: u64 = ctx.arg(0);
    let child: u64 = ctx.arg(1);
    // New threads do not change the process tree.
    let child_pid = unsafe { sw_task_tgid(child) };
    if child_pid != unsafe { sw_task_tid(child) } {
        return Ok(0);
    }
    let cfg = config();
    if cfg.follow_children != 0 && is_target(unsafe { sw_task_tgid(forker) }) {
        // Before the child can run, so its first signal is already seen. A full map
        // only loses descendants; userspace checks the map size.
        add_target(child_pid);
    }
    let Some(mut entry) = reserve::<ForkEvent>(kind::FORK) else {
        return Ok(0);
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        write_header(addr_of_mut!((*ev).header), kind::FORK);
        write_task(addr_of_mut!((*ev).child), child);
        write_task(addr_of_mut!((*ev).forker), forker);
        let parent = sw_task_real_parent(child);
        let parent_start = if parent == 0 {
            0
        } else {
            sw_task_process_start(parent)
        };
        addr_of_mut!((*ev).parent_start_ns).write(parent_start);
    }
    entry.submit(submit_flags::<ForkEvent>());
    Ok(0)
}

// --- sched:sched_process_exit -----------------------------------------------------
// include/trace/events/sched.h, TRACE_EVENT(sched_process_exit,
//   TP_PROTO(struct task_struct *p, ...)) (6.16+ adds `bool group_dead`; it is not used
// so that older kernels work). Fired from do_exit() for every thread after
// tsk->exit_code is set and signal->live was decremented.

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> u32 {
    match unsafe { try_sched_process_exit(&ctx) } {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

unsafe fn try_sched_process_exit(ctx: &BtfTracePointContext) -> Result<u32, u32> {
    let task: u64 = ctx.arg(0);
    if unsafe { sw_task_live_threads(task) } != 0 {
        return Ok(0);
    }
    bump_generation();
    if config().follow_children != 0 {
        // The pid may be reused by an unrelated process.
        let _ = TARGETS.remove(&unsafe { sw_task_tgid(task) });
    }
    let Some(mut entry) = reserve::<ExitEvent>(kind::EXIT) else {
        return Ok(0);
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        write_header(addr_of_mut!((*ev).header), kind::EXIT);
        write_task(addr_of_mut!((*ev).task), task);
        addr_of_mut!((*ev).exit_code).write(sw_task_exit_code(task));
        addr_of_mut!((*ev)._pad).write(0);
    }
    entry.submit(submit_flags::<ExitEvent>());
    Ok(0)
}

// --- oom:mark_victim ---------------------------------------------------------------
// include/trace/events/oom.h, TRACE_EVENT(mark_victim): fired by mark_oom_victim()
// right after __oom_kill_process() sent SIGKILL to the victim. The classic tracepoint
// is used because its prototype changed in 6.8 while the record's `pid` field did not;
// its offset comes from the format file (CONFIG.oom_pid_offset).

#[tracepoint]
pub fn mark_victim(ctx: TracePointContext) -> u32 {
    match try_mark_victim(&ctx) {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

fn try_mark_victim(ctx: &TracePointContext) -> Result<u32, u32> {
    let cfg = config();
    if cfg.oom_pid_offset == u32::MAX {
        return Ok(0);
    }
    // SAFETY: the verifier bounds-checks tracepoint context reads.
    let pid: i32 = unsafe { ctx.read_at(cfg.oom_pid_offset as usize) }.map_err(|_| 0u32)?;
    let pid = pid as u32;
    if cfg.filter_targets != 0 && !is_target(pid) {
        return Ok(0);
    }
    let Some(mut entry) = reserve::<OomVictimEvent>(kind::OOM_VICTIM) else {
        return Ok(0);
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        write_header(addr_of_mut!((*ev).header), kind::OOM_VICTIM);
        addr_of_mut!((*ev).pid).write(pid);
        addr_of_mut!((*ev)._pad).write(0);
    }
    entry.submit(submit_flags::<OomVictimEvent>());
    Ok(0)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
