//! Storms: in-kernel aggregation of repeated signals and failed attempts (FoldKey and
//! FoldSlot in tracer-common).
//!
//! A storm between one pair of threads would otherwise cost a full record (and the
//! reader's time) per signal. FOLDS is a hash map keyed by everything a report shows
//! (sender and target thread, process start and exec count, signal, siginfo, outcome,
//! request, cause): the first signal of a key goes to the ring in full and creates the
//! key's entry with that record's fold id; every later one only adds to the entry's
//! count. Nothing depends on signals being consecutive, so a handled signal that takes
//! turns between "delivered" and "already pending", or senders that interleave, still
//! count; an exec or exit elsewhere on the machine changes no key, while an exec of the
//! sender or the target changes its exec count and so starts a new key. Userspace reads
//! the counts (cumulative per entry) and removes idle entries (FOLD_IDLE_NS).
//!
//! In front of the hash, each CPU keeps the last FOLD_CACHE_WAYS (4) signal keys it
//! counted (the ways of its FOLD_CACHE value, `FoldCache` in tracer-common; four: a
//! handled signal takes turns between "delivered" and "already pending", and a kill()
//! of a group of two makes that two keys per member, so with two ways every repeat of
//! it missed the cache, docs/performance.md, session 8): a repeat of one of them on
//! the same CPU within the same jiffy only compares the key and adds to that way's
//! `pending`, without hashing 128 bytes (measured: the lookup was about a third of a repeat's
//! cost, docs/performance.md, session 5). `pending` moves into the entry when the way
//! takes another key and on the first repeat of each jiffy,
//! and userspace adds what is still pending to the entry's count when it reads; see
//! FoldCache for why a read counts each repeat at most once and how the reader's
//! removal of idle entries keeps pending repeats. Only signal_generate uses the cache;
//! failed attempts go to the hash directly.
//!
//! Per-CPU state (one FOLD_CACHE value, `FoldPerCpu`: the fold id sequence and clock
//! cache, `FoldCpu`, and the ways, looked up once per run) belongs to one run at a
//! time, taken with an atomic add on `FoldCpu::busy` ([`fold_enter`];
//! signal_generate, which nothing interrupts outside PREEMPT_RT, only checks it there,
//! [`generate_enter`]):
//! runs on one CPU can interleave (PREEMPT_RT, where signal_generate's siglock is a
//! sleeping lock; a timer's signal from an interrupt inside a syscall-exit program), and
//! a run that finds the state taken counts in the hash directly, or sends its record in
//! full, exact either way.
//!
//! The cache is enabled (features::FOLD_CACHE) on x86-64 only: its correctness needs the
//! kernel's store of `pending = 0` to be visible before the entry's count grows, and
//! BPF_XADD, the one atomic of every matrix kernel (the ordered, fetching forms need
//! 5.12), is a full barrier there (`lock add`) but unordered on arm64 (`stadd`).
//!
//! Counts are added atomically: a thread that moves to another CPU leaves its key in
//! the first CPU's cache (its pending repeats move into the entry when that way changes
//! key, or the reader adds them), while it counts on the second CPU, which caches the
//! same row: the reader adds the pending repeats of every way of every CPU that holds
//! a row. Times are plain stores (either writer's is a good time).

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use aya_ebpf::helpers::generated::{
    bpf_get_smp_processor_id, bpf_jiffies64, bpf_ktime_get_boot_ns,
};
use tracer_common::{
    FOLD_CACHE_WAYS, FoldCache, FoldCpu, FoldKey, FoldPerCpu, FoldSlot, Request, features,
    fold_kind, fold_stats,
};

use crate::{
    maps::{FOLD_CACHE, FOLD_STATS, FOLDS, RECEIVED_AT, RECEIVED_AT_SLOTS, has},
    siginfo::{SIGINFO_NONE, SIGINFO_PRIV, siginfo_kind},
    task::{
        btf_task_identity, btf_task_tid, current_task, process_start, sw_atomic_add,
        sw_siginfo_words, task_exec_id,
    },
};

/// Writes the key of a generated signal into `key`, every field in place (the siginfo
/// read straight into it: values carried in registers across the helper calls were
/// spilled to the stack and copied again). `sender` is the current task BTF-typed (or
/// 0 where there is none) and its pid_tgid.
///
/// Safety: `key` is valid for writing a FoldKey; `target_task` is signal_generate's
/// task argument (BTF-typed), and the sender's BTF-typed pointer is 0 or what
/// [`crate::task::current_task_btf`] returned.
#[inline(always)]
pub(crate) unsafe fn fill_signal_key(
    key: *mut FoldKey,
    (sig, info, group, result): (i32, u64, i32, i32),
    target_task: u64,
    (sender_btf, pid_tgid): (u64, u64),
    request: &Request,
) {
    // SAFETY: `key` is valid for writing (this function's contract), each field written
    // through addr_of_mut!; the task pointers are what btf_task_tid(),
    // btf_task_identity(), process_start() and task_exec_id() need (the same).
    unsafe {
        addr_of_mut!((*key).kind).write(fold_kind::SIGNAL);
        addr_of_mut!((*key).sender_tid).write(pid_tgid as u32);
        addr_of_mut!((*key).target_tid).write(btf_task_tid(target_task));
        addr_of_mut!((*key).sig).write(sig);
        // The untyped address only where there is no typed one.
        let sender_task = if sender_btf == 0 { current_task() } else { 0 };
        addr_of_mut!((*key).sender_start_ns).write(process_start(sender_task, sender_btf));
        let (target_start_ns, target_exec_id) = btf_task_identity(target_task);
        addr_of_mut!((*key).target_start_ns).write(target_start_ns);
        addr_of_mut!((*key).sender_exec_id).write(task_exec_id(sender_task, sender_btf));
        addr_of_mut!((*key).target_exec_id).write(target_exec_id);
        addr_of_mut!((*key).result).write(result);
        addr_of_mut!((*key).group).write(group);
        // One read for what the report takes from the siginfo.
        // Markers that cannot be a siginfo's first word (its si_signo is 1 to 64):
        // not `info` itself, which the verifier tracks as a pointer.
        let info_kind = siginfo_kind(info);
        let siginfo = addr_of_mut!((*key).siginfo);
        if info_kind == SIGINFO_NONE {
            siginfo.write([u64::MAX, 0, 0, 0]);
        } else if info_kind == SIGINFO_PRIV {
            siginfo.write([u64::MAX - 1, 0, 0, 0]);
        } else {
            sw_siginfo_words(info, siginfo);
        }
        addr_of_mut!((*key).request).write(*request);
        addr_of_mut!((*key).cause_ns).write(cause_ns((pid_tgid >> 32) as u32));
    }
}

/// Fills `key` (all zeros) for a failed attempt by the current task `task` (read
/// through probe reads), in place.
#[inline(always)]
pub(crate) fn fill_failed_key(
    key: &mut FoldKey,
    request: &Request,
    ret: i64,
    task: u64,
    pid_tgid: u64,
) {
    key.kind = fold_kind::FAILED;
    key.sender_tid = pid_tgid as u32;
    key.sig = request.sig;
    key.result = ret as i32;
    key.request = *request;
    // SAFETY: `task` is read only through probe reads (a zero `typed` pointer), sound
    // for any address.
    unsafe {
        key.sender_start_ns = process_start(task, 0);
        key.sender_exec_id = task_exec_id(task, 0);
    }
}

/// When `pid` last received a meaningful signal (the start of its cause chain), or 0
/// when its RECEIVED_AT slot belongs to another pid.
#[inline(always)]
fn cause_ns(pid: u32) -> u64 {
    match RECEIVED_AT.get_ptr(pid % RECEIVED_AT_SLOTS) {
        // SAFETY: a map value, valid and aligned for the program's run; the two fields
        // used, no more (remember_received() rewrites the slot field by field anyway).
        Some(at) => unsafe {
            let time_ns = read_volatile(addr_of!((*at).time_ns));
            if read_volatile(addr_of!((*at).pid)) == pid {
                time_ns
            } else {
                0
            }
        },
        None => 0,
    }
}

/// This CPU's fold state (FOLD_CACHE's value: clock cache, ways), for this run alone:
/// `None` when another run on this CPU holds them (the caller then counts in FOLDS directly, or
/// sends a full record, exact either way). Release with [`fold_exit`].
///
/// Why a flag: a program runs with migration disabled but not always with preemption
/// or interrupts off. Under PREEMPT_RT the siglock that signal_generate runs under is a
/// sleeping lock, so a run can be preempted by another task's signal_generate on the
/// same CPU, and a priority-inheritance boost can switch back before the second run
/// ends: runs on one CPU interleave in any order. On every kernel an interrupt (a timer's
/// signal) can run signal_generate inside a failed-attempt program (syscall exit,
/// interrupts on). A plain test-then-set can be split by such a switch; the add below
/// is one instruction (BPF_XADD: `lock add` on x86, an exclusive-monitor loop or LSE
/// `stadd` on arm64, never torn by an interrupt), and only runs on this CPU touch this
/// word, so same-CPU atomicity is all it needs (no ordering with other CPUs). Of runs
/// that overlap, the one that reads back 1 after its own add owns the state: a later one
/// reads at least 2 until the owner's release; two that overlap may both read 2 and
/// both back off (both exact, only costlier).
#[inline(always)]
fn fold_enter() -> Option<*mut FoldCpu> {
    let cpu = this_cpu()?;
    // SAFETY: this CPU's value, valid and aligned for the program's run; `busy` is only
    // changed through the shim's atomic add (sw_atomic_add's contract: a u64 in a map
    // value).
    unsafe {
        let busy = addr_of_mut!((*cpu).busy);
        sw_atomic_add(busy, 1);
        if read_volatile(busy) == 1 {
            return Some(cpu);
        }
        sw_atomic_add(busy, u64::MAX);
    }
    None
}

/// This CPU's FoldCpu, the head of its FOLD_CACHE value (not yet held).
#[inline(always)]
fn this_cpu() -> Option<*mut FoldCpu> {
    let state = FOLD_CACHE.get_ptr_mut(0)?;
    // SAFETY: only an address is computed, of a field of a map value.
    Some(unsafe { addr_of_mut!((*state).cpu) })
}

/// The FOLD_CACHE value whose head is `cpu` (from [`this_cpu`]), for its ways.
#[inline(always)]
fn cache_of(cpu: *mut FoldCpu) -> *mut FoldPerCpu {
    // `cpu` is the first field of a repr(C) FoldPerCpu: the same address.
    cpu.cast::<FoldPerCpu>()
}

/// Releases what [`fold_enter`] gave.
#[inline(always)]
fn fold_exit(cpu: *mut FoldCpu) {
    // SAFETY: as in fold_enter().
    unsafe { sw_atomic_add(addr_of_mut!((*cpu).busy), u64::MAX) };
}

/// [`fold_enter`] for signal_generate: where features::SIGLOCK_IRQS_OFF says the
/// kernel is not PREEMPT_RT, a plain check that no failed-attempt program holds the
/// state, and nothing taken (two atomic adds less on every repeat of a storm; release
/// with [`generate_exit`]).
///
/// Why that is enough there: every trace_signal_generate() call (kernel/signal.c:
/// __send_signal_locked(), and send_sigqueue() / posixtimer_send_sigqueue() for POSIX
/// timers, before their unlock_task_sighand()) runs with the target's siglock held, and
/// the siglock is always taken with interrupts off (lock_task_sighand() and
/// spin_lock_irq*(): timers send signals from hard interrupts, so lockdep requires it);
/// NMIs send no signal. So once this
/// run has started, nothing else runs on its CPU until it returns, and only a
/// failed-attempt program that it interrupted (syscall exit, interrupts on) can hold
/// the state: `busy` is then non-zero, and this run backs off as after
/// [`fold_enter`]'s `None`. Under PREEMPT_RT the siglock is a sleeping lock taken with
/// interrupts on: the atomic protocol of [`fold_enter`].
#[inline(always)]
fn generate_enter() -> Option<*mut FoldCpu> {
    if !has(features::SIGLOCK_IRQS_OFF) {
        return fold_enter();
    }
    let cpu = this_cpu()?;
    // SAFETY: this CPU's value, valid and aligned for the program's run.
    if unsafe { read_volatile(addr_of!((*cpu).busy)) } == 0 {
        Some(cpu)
    } else {
        None
    }
}

/// Releases what [`generate_enter`] gave.
#[inline(always)]
fn generate_exit(cpu: *mut FoldCpu) {
    if !has(features::SIGLOCK_IRQS_OFF) {
        fold_exit(cpu);
    }
}

/// The boot clock, read at most once per jiffy and CPU (the clock costs a storm's
/// signal more than the rest of counting it); later repeats in the same jiffy reuse
/// that reading, so repeats' times are early by up to a jiffy. Without this CPU's
/// state (`cpu` is `None`, see [`fold_enter`]) the clock itself.
#[inline(always)]
fn fold_clock(cpu: Option<*mut FoldCpu>) -> u64 {
    let Some(cpu) = cpu else {
        // SAFETY: a helper without arguments.
        return unsafe { bpf_ktime_get_boot_ns() };
    };
    // SAFETY: this CPU's value, valid and aligned for the program's run, and this run's
    // alone (fold_enter()).
    unsafe {
        let jiffies = bpf_jiffies64();
        if jiffies == (*cpu).clock_jiffies {
            return (*cpu).clock_ns;
        }
        let now = bpf_ktime_get_boot_ns();
        (*cpu).clock_jiffies = jiffies;
        (*cpu).clock_ns = now;
        now
    }
}

/// Counts a repeat of `key` in its FOLDS entry when there is one; false when there is
/// none (the caller sends a full record and calls [`new_row`]). Needs no per-CPU state
/// but the clock cache, which it takes only when it is free.
#[inline(always)]
pub(crate) fn count_repeat(key: &FoldKey) -> bool {
    let Some(entry) = FOLDS.get_ptr_mut(key) else {
        return false;
    };
    let cpu = fold_enter();
    add_repeats(entry, 1, cpu);
    if let Some(cpu) = cpu {
        fold_exit(cpu);
    }
    true
}

/// Adds `repeats` to the entry at `entry` and makes now its last time.
#[inline(always)]
fn add_repeats(entry: *mut FoldSlot, repeats: u64, cpu: Option<*mut FoldCpu>) {
    let now = fold_clock(cpu);
    // SAFETY: a FOLDS value, valid and aligned for the program's run; concurrent
    // writers only add to the count atomically and store times (see the module's
    // comment); userspace reads it, hence the volatile accesses; the shim adds
    // through a pointer into it.
    unsafe {
        if read_volatile(addr_of!((*entry).first_ns)) == 0 {
            write_volatile(addr_of_mut!((*entry).first_ns), now);
        }
        write_volatile(addr_of_mut!((*entry).last_ns), now);
        // Last, and a full barrier on x86-64 (`lock add`), the only architecture the
        // cache is enabled on (features::FOLD_CACHE): every store before it, a cache
        // way's `pending = 0` included, is visible before the count grows (FoldCache).
        sw_atomic_add(addr_of_mut!((*entry).count), repeats);
    }
}

/// The words of a FoldKey in the order [`same_key`] compares them: the target and
/// signal (word 1) and the outcome (word 6) first, the words that tell apart the keys
/// of one sender's storm (a handled group of two is four keys: two targets, each
/// "delivered" or "already pending"), so that a way holding another of them is left
/// after two comparisons instead of seven.
const KEY_WORD_ORDER: [usize; 16] = [1, 6, 0, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const _: () = assert!(size_of::<FoldKey>() == 16 * 8);

/// Whether `cached` (map memory) holds the same key as `key`, compared a word at a time
/// in [`KEY_WORD_ORDER`], leaving at the first difference.
///
/// Safety: `cached` is valid for reading a FoldKey.
#[inline(always)]
unsafe fn same_key(cached: *const FoldKey, key: &FoldKey) -> bool {
    let a = cached.cast::<u64>();
    let b = core::ptr::from_ref(key).cast::<u64>();
    let mut i = 0;
    while i < KEY_WORD_ORDER.len() {
        let word = KEY_WORD_ORDER[i];
        // SAFETY: both are valid for a FoldKey, sixteen u64s (asserted above), 8-aligned;
        // `word` < 16.
        if unsafe { *a.add(word) != *b.add(word) } {
            return false;
        }
        i += 1;
    }
    true
}

/// Counts a repeat of the signal `key` (signal_generate only, see the module's
/// comment): in this CPU's FOLD_CACHE when one of its ways holds the key, else in its
/// FOLDS entry, which this CPU then caches. False when the key has no entry (the caller
/// sends a full record and calls [`new_signal_row`]). Without the cache
/// (features::FOLD_CACHE) or while another run on this CPU holds it, the entry directly.
#[inline(always)]
pub(crate) fn count_signal_repeat(key: &FoldKey) -> bool {
    if !has(features::FOLD_CACHE) {
        return count_repeat(key);
    }
    let Some(cpu) = generate_enter() else {
        return count_repeat(key);
    };
    let counted = count_in_cache(key, cpu);
    generate_exit(cpu);
    counted
}

/// [`count_signal_repeat`] for the run that holds this CPU's state (`cpu`).
#[inline(always)]
fn count_in_cache(key: &FoldKey, cpu: *mut FoldCpu) -> bool {
    let set = cache_of(cpu);
    let found = find_way(set, key);
    if found < FOLD_CACHE_WAYS {
        // SAFETY: this CPU's value, valid and aligned for the program's run, and this
        // run's alone (generate_enter()); `found` is one of its ways.
        return unsafe { count_cached(way_at(set, found), key, cpu) };
    }
    let Some(entry) = FOLDS.get_ptr_mut(key) else {
        return false;
    };
    add_repeats(entry, 1, Some(cpu));
    // SAFETY: a FOLDS value, valid for the program's run.
    let row = unsafe { (*entry).row };
    cache_key(set, key, row, cpu);
    true
}

/// Way `i` (below FOLD_CACHE_WAYS; masked, for the verifier) of this CPU's cache `set`.
#[inline(always)]
fn way_at(set: *mut FoldPerCpu, i: u32) -> *mut FoldCache {
    let i = (i % FOLD_CACHE_WAYS) as usize;
    // SAFETY: `i` is below the array's length; only an address is computed.
    unsafe { addr_of_mut!((*set).ways).cast::<FoldCache>().add(i) }
}

/// Which way of this CPU's cache `set` holds `key`; FOLD_CACHE_WAYS when none. A
/// subprogram of its own, and the key reread through a volatile slot on every way:
/// inlined and unrolled, LLVM loaded the key's sixteen words once and kept them in
/// stack slots, 128 bytes that 5.10's 512-byte limit for a call chain does not have.
#[inline(never)]
fn find_way(set: *mut FoldPerCpu, key: &FoldKey) -> u32 {
    let key_slot: *const FoldKey = key;
    let mut i = 0u32;
    while i < FOLD_CACHE_WAYS {
        let way = way_at(set, i);
        // SAFETY: a way of this CPU's value, valid and aligned for the program's run;
        // only the run that holds this CPU's state calls this. `key_slot` is a live
        // local holding `key`, valid for a FoldKey.
        unsafe {
            let key = &*read_volatile(&raw const key_slot);
            if (*way).row != 0 && same_key(addr_of!((*way).key), key) {
                return i;
            }
        }
        i += 1;
    }
    FOLD_CACHE_WAYS
}

/// Caches `key` (its FOLDS entry's `row`) on this CPU, in the way of `set` whose turn
/// it is (`FoldCpu::next_way`).
#[inline(always)]
fn cache_key(set: *mut FoldPerCpu, key: &FoldKey, row: u64, cpu: *mut FoldCpu) {
    // SAFETY: this CPU's value, valid for the program's run, this run's alone
    // (generate_enter()).
    let turn = unsafe {
        let turn = (*cpu).next_way % u64::from(FOLD_CACHE_WAYS);
        (*cpu).next_way = turn + 1;
        turn as u32
    };
    // SAFETY: as above; a way of this CPU's value.
    unsafe { set_key(way_at(set, turn), key, row, cpu) };
}

/// Counts a repeat of the key cached in `way`: pending within the jiffy of its last
/// move into FOLDS, else moved there now, this repeat included. False when its entry
/// has gone (the caller starts the key again).
///
/// Safety: as for [`set_key`].
#[inline(always)]
unsafe fn count_cached(way: *mut FoldCache, key: &FoldKey, cpu: *mut FoldCpu) -> bool {
    // SAFETY: this function's contract; userspace copies the value, hence the volatile
    // accesses where it looks.
    unsafe {
        let jiffies = bpf_jiffies64();
        let pending = read_volatile(addr_of!((*way).pending));
        if jiffies == (*way).jiffies {
            // Same row, more pending: any copy the reader takes pairs this row with a
            // pending count of it (FoldCache).
            write_volatile(addr_of_mut!((*way).pending), pending + 1);
            return true;
        }
        // Zeroed before the add (which orders it, add_repeats()): a reader that sees
        // these repeats in the entry sees them gone here.
        write_volatile(addr_of_mut!((*way).pending), 0);
        (*way).jiffies = jiffies;
        if let Some(entry) = FOLDS.get_ptr_mut(key) {
            let row = (*entry).row;
            if row == (*way).row {
                add_repeats(entry, pending + 1, Some(cpu));
                return true;
            }
            // The entry was removed idle and the key started again elsewhere. The
            // reader removes an entry only while no way holds pending repeats of it,
            // so `pending` is 0 here: only this repeat is new.
            add_repeats(entry, 1, Some(cpu));
            set_key(way, key, row, cpu);
            return true;
        }
        // Removed idle, as above, and not started again: this one starts it.
        set_key(way, key, 0, cpu);
        false
    }
}

/// Creates the entry of the signal `key` for the full record about to be submitted and
/// returns its fold id (as [`new_row`]), and makes the key one of this CPU's cached
/// keys, in the way moved into FOLDS least recently.
#[inline(always)]
pub(crate) fn new_signal_row(key: &FoldKey) -> u64 {
    let Some(cpu) = generate_enter() else {
        return 0;
    };
    let row = new_row_held(key, fold_stats::FULL_SIGNALS, cpu);
    if row != 0 && has(features::FOLD_CACHE) {
        cache_key(cache_of(cpu), key, row, cpu);
    }
    generate_exit(cpu);
    row
}

/// Replaces the key cached in `cache` (a way of FOLD_CACHE) with `key` (row 0: none),
/// first moving what is pending of the old one into its entry, inside the write side of
/// the way's seqlock (`begun` .. `ended`, see FoldCache).
///
/// Safety: `cache` is one of the ways of this CPU's FOLD_CACHE value, and the caller
/// holds this CPU's state (`cpu`, from [`fold_enter`]).
#[inline(always)]
unsafe fn set_key(cache: *mut FoldCache, key: &FoldKey, row: u64, cpu: *mut FoldCpu) {
    // SAFETY: this function's contract.
    unsafe {
        // Volatile stores stay in program order (compiler), and x86-64 makes stores
        // visible in program order (TSO; the cache runs nowhere else): `begun`, then the
        // row and pending, then `ended`.
        let seq = read_volatile(addr_of!((*cache).ended)) + 1;
        write_volatile(addr_of_mut!((*cache).begun), seq);
        let pending = read_volatile(addr_of!((*cache).pending));
        if pending != 0 {
            write_volatile(addr_of_mut!((*cache).pending), 0);
            // A missing entry, or one of another row, was removed idle: the reader
            // removes none while a way holds pending repeats of it, so this does not
            // happen with `pending` non-zero; dropped if it did rather than counted in
            // another key.
            if let Some(entry) = FOLDS.get_ptr_mut(&*addr_of!((*cache).key))
                && (*entry).row == read_volatile(addr_of!((*cache).row))
            {
                add_repeats(entry, pending, Some(cpu));
            }
        }
        // Word by word: a struct copy would take a stack slot of its own.
        let to = addr_of_mut!((*cache).key).cast::<u64>();
        let from = core::ptr::from_ref(key).cast::<u64>();
        let mut i = 0;
        while i < size_of::<FoldKey>() / 8 {
            *to.add(i) = *from.add(i);
            i += 1;
        }
        write_volatile(addr_of_mut!((*cache).row), row);
        write_volatile(addr_of_mut!((*cache).jiffies), bpf_jiffies64());
        write_volatile(addr_of_mut!((*cache).ended), seq);
    }
}

/// Creates `key`'s entry for the full record about to be submitted and returns that
/// record's fold id; 0 when the map is full (the record is then not aggregated, and
/// every later signal of the key is sent in full too: exact, only costlier), counted
/// in FOLD_STATS at `full_stat`, or when another run on this CPU holds its state
/// ([`fold_enter`]; rare: not aggregated either).
#[inline(always)]
pub(crate) fn new_row(key: &FoldKey, full_stat: u32) -> u64 {
    let Some(cpu) = fold_enter() else {
        return 0;
    };
    let row = new_row_held(key, full_stat, cpu);
    fold_exit(cpu);
    row
}

/// [`new_row`] for the run that holds this CPU's state (`cpu`): its fold id sequence is
/// this run's alone, so no two entries get one row.
#[inline(always)]
fn new_row_held(key: &FoldKey, full_stat: u32, cpu: *mut FoldCpu) -> u64 {
    // SAFETY: this CPU's value, valid for the program's run, this run's alone
    // (fold_enter()); the helper takes no arguments.
    let row = unsafe {
        let seq = ((*cpu).seq + 1) & ((1 << 48) - 1);
        (*cpu).seq = seq;
        (u64::from(bpf_get_smp_processor_id()) << 48) | seq
    };
    // `last_ns` is the full record's time until a repeat comes: userspace prunes
    // entries idle since then too.
    let value = FoldSlot {
        count: 0,
        first_ns: 0,
        last_ns: fold_clock(Some(cpu)),
        row,
    };
    if FOLDS.insert(key, &value, 0).is_err() {
        if let Some(full) = FOLD_STATS.get_ptr_mut(full_stat) {
            // SAFETY: this CPU's counter, valid and aligned for the program's run;
            // FOLD_STATS is not part of the state fold_enter() guards, hence the atomic
            // add.
            unsafe { sw_atomic_add(full, 1) };
        }
        return 0;
    }
    row
}
