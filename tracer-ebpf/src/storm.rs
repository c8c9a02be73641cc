//! Storms: the recorder's in-kernel folding of identical signals (FoldSlot in
//! tracer-common).
//!
//! A storm of one signal between one pair of threads would otherwise cost a full record
//! (and the reader's time) per signal. The recorder stores identical repeats as one
//! journal row with a count anyway, so the kernel counts them instead: two identical
//! full records in a row arm the CPU's FoldSlot, further identical signals only count,
//! and the count is sent as a RepeatsEvent when something else comes or the window ends.
//! Only signals of one CPU are compared, in the order that CPU generated them.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use aya_ebpf::helpers::generated::{
    bpf_get_smp_processor_id, bpf_jiffies64, bpf_ktime_get_boot_ns,
};
use tracer_common::{
    FOLD_WAYS, FOLD_WINDOW_NS, FoldKey, FoldSlot, RepeatsEvent, Request, features, kind,
};

use crate::{
    maps::{GENERATION, RECEIVED_AT, RECEIVED_AT_SLOTS, config, has},
    record::{reserve_or_none, submit_flags, write_header},
    siginfo::{SIGINFO_NONE, SIGINFO_PRIV, siginfo_kind, siginfo_words},
    task::{btf_task_tid, process_start},
};

// The slot functions below take this CPU's FOLD slot as a raw pointer, from
// get_ptr_mut(): valid and aligned for the program's run. Only signal_generate uses the
// slots, and the kernel generates signals under the target's siglock with interrupts
// off (kernel/signal.c), so no other program writes a CPU's slot while one does;
// userspace only reads them, trusting a count only when `row` says so (FoldSlot).

/// Everything but the time that makes a signal's report (see FoldKey). `sender` is
/// the current task, the same BTF-typed where there is one, and its pid_tgid.
///
/// Safety: `target_task` is signal_generate's task argument (BTF-typed), and the
/// sender's BTF-typed pointer is 0 or what [`crate::task::current_task_btf`] returned.
#[inline(always)]
pub(crate) unsafe fn fold_key(
    sig: i32,
    info: u64,
    group: i32,
    result: i32,
    target_task: u64,
    (sender_task, sender_btf, pid_tgid): (u64, u64, u64),
    request: &Request,
) -> FoldKey {
    // SAFETY: the task pointers are what btf_task_tid() and process_start() need (this
    // function's contract); the map values are valid, aligned u64s for the program's
    // run, read whole.
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
///
/// Safety: `slot` is this CPU's FOLD slot (see above).
#[inline(always)]
pub(crate) unsafe fn fold_clock(slot: *mut FoldSlot) -> u64 {
    // SAFETY: `slot` is valid and only this program writes it (this function's
    // contract); the helpers take no arguments.
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
///
/// Safety: `slot` is this CPU's FOLD slot (see above).
#[inline(always)]
pub(crate) unsafe fn fold_into(
    slot: *mut FoldSlot,
    key: &FoldKey,
    now: u64,
    in_window: bool,
) -> bool {
    // SAFETY: `slot` is valid and only this program writes it (this function's
    // contract); userspace reads it, hence the volatile accesses.
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
///
/// Safety: `slot` is this CPU's FOLD slot (see above).
#[inline(always)]
pub(crate) unsafe fn close_window(slot: *mut FoldSlot) -> bool {
    // SAFETY: `slot` is valid and only this program writes it (this function's
    // contract). `ev` is the record just reserved: valid and aligned for a whole
    // RepeatsEvent, and this program's alone until it is submitted; its fields are
    // written through addr_of_mut!.
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
///
/// Safety: `slot` is this CPU's FOLD slot (see above).
#[inline(always)]
pub(crate) unsafe fn next_fold_id(slot: *mut FoldSlot, way: u32) -> u64 {
    // SAFETY: `slot` is valid and only this program writes it (this function's
    // contract); the helper takes no arguments.
    unsafe {
        let seq = ((*slot).seq + 1) & ((1 << 46) - 1);
        (*slot).seq = seq;
        (u64::from(bpf_get_smp_processor_id()) << 48) | (u64::from(way & 3) << 46) | seq
    }
}

/// Which of the CPU's slots a signal uses: by sender and target thread, so that a
/// sender taking turns between a few targets (a process group, say) still folds.
#[inline(always)]
pub(crate) fn fold_way(key: &FoldKey) -> u32 {
    ((key.sender_tid ^ key.target_tid).wrapping_mul(0x9e37_79b1) >> 30) & (FOLD_WAYS - 1)
}

/// After a full record: the second identical one in a row within the window arms the
/// slot (the first one's report may differ from the rest: it has no earlier signal
/// from the same sender), any other one becomes the signal to compare with.
///
/// Safety: `slot` is this CPU's FOLD slot (see above).
#[inline(always)]
pub(crate) unsafe fn after_full_record(slot: *mut FoldSlot, key: &FoldKey, now: u64, fold_id: u64) {
    // SAFETY: `slot` is valid and only this program writes it (this function's
    // contract); `row` is stored last, so a reader that sees it sees the rest.
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
pub(crate) fn bump_generation() {
    if config().fold_repeats == 0 {
        return;
    }
    if let Some(generation) = GENERATION.get_ptr_mut(0) {
        // A time, not a count: BPF has no atomic increment here, and two CPUs storing
        // a count at once could store the value a fold slot already holds, while two
        // times differ (so every exec and exit changes the value slots compare).
        // SAFETY: a map value, valid and aligned for the program's run; other CPUs
        // store to it too, and an aligned 8-byte store reaches them whole.
        unsafe { write_volatile(generation, bpf_ktime_get_boot_ns()) };
    }
}
