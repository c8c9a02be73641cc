//! `SIGWHO_DISABLE_HOOKS=count-only` (`program_mode::COUNT_ONLY`): the recorder's floor
//! for `cargo xtask bench`. Every program returns at once (maps::hollow), except that
//! signal_generate counts each signal, and does nothing else: the least in-kernel
//! aggregation can do per signal as issue 15 describes it, held against the recorder
//! in the same run. Nothing is reported; userspace never reads COUNT_FLOOR.
//!
//! The key is the issue's: sender thread and its process's start time, target thread
//! and its process's start time, signal, si_code, result and request kind; the value a
//! count and the first and last time. It leaves out what the recorder's key adds for
//! its reports (the exec counts, the whole siginfo, the request's arguments, the cause
//! time) and the full record of each key's first signal. The time is jiffies (a load
//! the verifier inlines) rather than a clock read, and the count a plain add (a per-CPU
//! value, and signal_generate runs with the siglock's interrupts off): the cheapest of
//! each, as a floor should be.

use aya_ebpf::helpers::generated::bpf_jiffies64;

use crate::{
    maps::COUNT_FLOOR,
    request::current_request_kind,
    siginfo::{SI_CODE, SI_KERNEL, SI_USER, SIGINFO_NONE, SIGINFO_PRIV, read_kernel, siginfo_kind},
    task::{
        btf_task_identity, btf_task_tid, current_pid_tgid, current_task, current_task_btf,
        process_start,
    },
};

/// COUNT_FLOOR's key. No implicit padding: hashed as bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct FloorKey {
    sender_start_ns: u64,
    target_start_ns: u64,
    sender_tid: u32,
    target_tid: u32,
    sig: i32,
    code: i32,
    result: i32,
    /// `tracer_common::syscall`: the kill-family call the sender is in, or NONE.
    request: u32,
}

/// COUNT_FLOOR's value (per CPU).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct FloorSlot {
    count: u64,
    first_jiffies: u64,
    last_jiffies: u64,
}

/// Counts signal `sig` for `target_task` (signal_generate's arguments).
///
/// Safety: `target_task` is signal_generate's BTF-typed task argument.
#[inline(always)]
pub(crate) unsafe fn count(sig: i32, info: u64, target_task: u64, result: i32) {
    let sender_btf = current_task_btf();
    // SAFETY: `sender_btf` came from current_task_btf().
    let pid_tgid = unsafe { current_pid_tgid(sender_btf) };
    // The untyped address only where there is no typed one.
    let sender_task = if sender_btf == 0 { current_task() } else { 0 };
    let info_kind = siginfo_kind(info);
    let code = if info_kind == SIGINFO_NONE {
        SI_USER
    } else if info_kind == SIGINFO_PRIV {
        SI_KERNEL
    } else {
        // SAFETY: any four bytes are an i32; a probe read, sound for any address.
        unsafe { read_kernel::<i32>(info + SI_CODE) }
    };
    // SAFETY: the task pointers are what these accessors need: `target_task` BTF-typed
    // (this function's contract), `sender_btf` from current_task_btf() or 0 with
    // `sender_task` the untyped current task.
    let key = unsafe {
        FloorKey {
            sender_start_ns: process_start(sender_task, sender_btf),
            target_start_ns: btf_task_identity(target_task).0,
            sender_tid: pid_tgid as u32,
            target_tid: btf_task_tid(target_task),
            sig,
            code,
            result,
            request: current_request_kind(sender_btf),
        }
    };
    // SAFETY: a helper without arguments (the verifier inlines it).
    let now = unsafe { bpf_jiffies64() };
    match COUNT_FLOOR.get_ptr_mut(&key) {
        // SAFETY: this CPU's value, valid and aligned for the program's run, and only
        // this program writes it (with interrupts off: see the module's comment).
        // Another CPU's insert gives this CPU's value as zeros.
        Some(slot) => unsafe {
            if (*slot).count == 0 {
                (*slot).first_jiffies = now;
            }
            (*slot).count += 1;
            (*slot).last_jiffies = now;
        },
        None => {
            let slot = FloorSlot {
                count: 1,
                first_jiffies: now,
                last_jiffies: now,
            };
            let _ = COUNT_FLOOR.insert(&key, &slot, 0);
        }
    }
}
