//! Cause chains: the last meaningful signal each process received (RECEIVED), kept
//! from signal:signal_generate, and the chain copied into the record of a signal that
//! process sends next.
//!
//! include/trace/events/signal.h, TRACE_EVENT(signal_generate): the receiver is the
//! target task, the sender the current task, when __send_signal_locked()
//! (kernel/signal.c) generates the signal.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use aya_ebpf::helpers::generated::{bpf_jiffies64, bpf_ktime_get_boot_ns};
use tracer_common::{CAUSE_DEPTH, Cause};

use crate::{
    maps::{RECEIVED, RECEIVED_AT, RECEIVED_AT_SLOTS, ReceivedAt},
    request::current_request,
    siginfo::{
        SI_CODE, SI_KERNEL, SI_TIMER, SI_USER, SIGINFO_NONE, SIGINFO_PRIV, read_kernel,
        siginfo_kind,
    },
    task::{current_task, read_comm, sw_task_process_start, sw_task_tid, sw_task_uid},
    zero::zeroed_in,
};

/// How long (in jiffies: 10 to 100 ms) a storm of one signal from one thread leaves a
/// receiver's remembered cause as it is (see remember_received()).
pub(crate) const REFRESH_JIFFIES: u64 = 10;

/// Signals worth remembering as a possible cause of what the receiver does next: not
/// the notifications every process gets (SIGCHLD, SIGCONT, SIGURG, SIGWINCH), and only
/// ones that reached it (delivered, or merged with a pending one).
#[inline(always)]
pub(crate) fn is_meaningful(sig: i32, result: i32) -> bool {
    !matches!(sig, 17 | 18 | 23 | 28) && (result == 0 || result == 2)
}

/// alarm/setitimer (SIGALRM, SIGVTALRM, SIGPROF sent with SEND_SIG_PRIV from
/// kernel/time/itimer.c) and POSIX timers (SI_TIMER, kernel/time/posix-timers.c).
#[inline(always)]
fn is_own_timer(sig: i32, code: i32) -> bool {
    code == SI_TIMER || (code == SI_KERNEL && matches!(sig, 14 | 26 | 27))
}

/// Keeps the signal `target_pid` just received in RECEIVED, as the possible cause of
/// what it sends next. `pid_tgid` is the sender's (the current task's), as the caller
/// has it already.
#[inline(always)]
pub(crate) fn remember_received(
    sig: i32,
    info: u64,
    target_task: u64,
    target_pid: u32,
    pid_tgid: u64,
) {
    // A storm of one signal from one thread at this receiver: the cause it would
    // remember is the one already there, only a little newer. Refreshing it on every
    // signal (an LRU update and a dozen reads) would cost the senders more than all
    // the rest, so it is refreshed at most every REFRESH_JIFFIES. Several threads
    // storming one receiver take turns: each turn would be a refresh (measured: 307 ns
    // per signal of a two-sender storm at a handler, in the filtered view), so another
    // sender's signal refreshes it at most once a jiffy: the cause remembered is then at
    // most a jiffy older than the newest, and from one of the storm's senders.
    // SAFETY: a helper without arguments.
    let jiffies = unsafe { bpf_jiffies64() };
    let sender_tid = pid_tgid as u32;
    let sender_pid = (pid_tgid >> 32) as u32;
    if let Some(at) = RECEIVED_AT.get(target_pid % RECEIVED_AT_SLOTS) {
        // SAFETY: a map value, valid and aligned for the program's run, read whole.
        let at = unsafe { read_volatile(at) };
        let limit = if at.sender_tid == sender_tid {
            REFRESH_JIFFIES
        } else {
            1
        };
        if at.pid == target_pid && at.sig == sig && jiffies.wrapping_sub(at.jiffies) < limit {
            return;
        }
    }
    let sender_task = current_task();
    let mut slot = core::mem::MaybeUninit::<Cause>::uninit();
    // SAFETY: all zeros is a valid Cause (a Pod value).
    let cause = unsafe { zeroed_in(&mut slot) };
    // SAFETY: the tasks and the siginfo are read only through probe reads (any address
    // will do), si_code as an i32, which any four bytes are; read_comm() writes the
    // COMM_LEN bytes of `cause.sender_comm`.
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
        cause.syscall = current_request(sig, 0, target_task, target_pid).syscall;
        cause.sender_uid = sw_task_uid(sender_task);
        read_comm(cause.sender_comm.as_mut_ptr(), sender_task);
    }
    // A full map evicts the oldest entry (LRU); nothing to report.
    let _ = RECEIVED.insert(&target_pid, &*cause, 0);
    if let Some(at) = RECEIVED_AT.get_ptr_mut(target_pid % RECEIVED_AT_SLOTS) {
        // SAFETY: a map value, valid and aligned for the program's run; other CPUs
        // store to it too: a reader may see one's pid with another's time, which only
        // starts a new aggregation key (a full record), never a wrong count.
        unsafe {
            write_volatile(
                at,
                ReceivedAt {
                    pid: target_pid,
                    sender_tid,
                    sig,
                    _pad: 0,
                    jiffies,
                    time_ns: cause.time_ns,
                },
            );
        };
    }
}

/// Follows RECEIVED from the sender backwards: what it had received, what that signal's
/// sender had received, ... Stops at a pid whose entry belongs to an earlier process,
/// and at loops.
///
/// Safety: `dst` is valid for writing the whole array (it need not be initialised).
#[inline(always)]
pub(crate) unsafe fn write_causes(
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
        // SAFETY: copied out at once (the map keeps the entry's memory valid for the
        // program's run; a concurrent update can only mix two Causes, and any bytes
        // make a valid Cause).
        let Some(cause) = (unsafe { RECEIVED.get(&pid) }).copied() else {
            break;
        };
        if cause.receiver_start_ns != start {
            break;
        }
        // SAFETY: `link` < CAUSE_DEPTH, inside `dst` (valid: this function's contract).
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
