//! What the sender asked for: the kill-family call a signal came from.
//!
//! A signal a process sends is generated while it is still inside its kill-family
//! syscall, so the registers it entered the kernel with (bpf_task_pt_regs(), the
//! arch's struct pt_regs) say which syscall (its number, compared with CONFIG's) and
//! with which arguments (by ABI position, include/linux/syscalls.h):
//!   kill(pid, sig)  tkill(tid, sig)  tgkill(tgid, tid, sig)
//!   pidfd_send_signal(pidfd, sig, info, flags)  rt_sigqueueinfo(pid, sig, info)
//!   rt_tgsigqueueinfo(tgid, tid, sig, info)
//! This costs nothing on the syscall path itself: unlike syscalls:sys_enter_*, which
//! sends every syscall of every task through the tracing slow path. Kernels before 5.15
//! have no bpf_task_pt_regs(); there the sys_enter_* programs below keep the arguments
//! in INFLIGHT instead (features::TASK_PT_REGS).

use core::{
    mem::MaybeUninit,
    ptr::{addr_of, read_volatile},
};

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use tracer_common::{Request, SyscallLayout, features, syscall};

use crate::{
    maps::{CONFIG, INFLIGHT, has, hollow, layout, logging},
    task::{
        current_task, sw_btf_current_syscall, sw_current_syscall, sw_pidfd_pid, sw_task_ns_pid,
        sw_task_tid,
    },
};

/// The kill-family call the current task (`typed`, BTF-typed, or 0) is in, or the
/// default (syscall NONE) when it is in none: from its saved registers where the kernel
/// lets programs read them, else from what its sys_enter_* program kept.
///
/// Safety: `typed` is 0 or what [`crate::task::current_task_btf`] returned.
#[inline(always)]
unsafe fn asked_now(typed: u64) -> Request {
    if has(features::TASK_PT_REGS) {
        // SAFETY: under TASK_PT_REGS; `typed` as this function's contract says.
        let regs = unsafe { current_registers(typed) };
        let which = syscall_with_nr(regs[0]);
        if which == syscall::NONE {
            return Request::default();
        }
        request_from_args(which, current_task, |n| syscall_arg(&regs, n))
    } else {
        let tid = bpf_get_current_pid_tgid() as u32;
        // SAFETY: copied out at once (the map keeps the entry's memory valid for the
        // program's run; any bytes make a valid Request).
        unsafe { INFLIGHT.get(&tid) }.copied().unwrap_or_default()
    }
}

/// Which kill-family call the current task is in (`syscall`, NONE when none, or where
/// the kernel has no bpf_task_pt_regs()): the request kind of the count-only floor
/// (floor.rs), without the arguments or the check that they name the target.
///
/// Safety: `typed` is 0 or what [`crate::task::current_task_btf`] returned.
#[inline(always)]
pub(crate) unsafe fn current_request_kind(typed: u64) -> u32 {
    if !has(features::TASK_PT_REGS) {
        return syscall::NONE;
    }
    // SAFETY: under TASK_PT_REGS; `typed` as this function's contract says.
    syscall_with_nr(unsafe { current_registers(typed) }[0])
}

/// The current task's syscall number and arguments 0-3, through `typed` (the current
/// task BTF-typed) where it is non-zero: one helper call less.
///
/// Safety: only under TASK_PT_REGS; `typed` is 0 or what
/// [`crate::task::current_task_btf`] returned.
#[inline(always)]
unsafe fn current_registers(typed: u64) -> [i64; 5] {
    if typed != 0 {
        // SAFETY: under TASK_PT_REGS, and `typed` is the current task, BTF-typed (this
        // function's contract).
        unsafe { btf_current_syscall(typed) }
    } else {
        // SAFETY: under TASK_PT_REGS: this kernel has bpf_task_pt_regs().
        unsafe { current_syscall() }
    }
}

/// The current task's syscall number and arguments 0-3 (see sw_current_syscall).
///
/// Safety: only under TASK_PT_REGS: the shim calls bpf_task_pt_regs(), which a verifier
/// of an older kernel does not know.
#[inline(always)]
pub(crate) unsafe fn current_syscall() -> [i64; 5] {
    // Not zeroed first: a memset() call (zero.rs), and the shim writes every word.
    let mut regs = MaybeUninit::<[i64; 5]>::uninit();
    // SAFETY: the shim writes the five words of `regs`, a live local, first of all, so
    // they are initialised after it; TASK_PT_REGS holds (this function's contract), and
    // its direct loads run only under DIRECT_LOADS.
    unsafe {
        sw_current_syscall(regs.as_mut_ptr(), u32::from(has(features::DIRECT_LOADS)));
        regs.assume_init()
    }
}

/// [`current_syscall`] for a caller holding the current task BTF-typed (`typed`), which
/// saves the shim a helper call on the path of every signal.
///
/// Safety: only under TASK_PT_REGS, and `typed` is what
/// [`crate::task::current_task_btf`] returned, non-zero (so DIRECT_LOADS holds).
#[inline(always)]
unsafe fn btf_current_syscall(typed: u64) -> [i64; 5] {
    let mut regs = MaybeUninit::<[i64; 5]>::uninit();
    // SAFETY: as in current_syscall(); `typed` is what the shim needs (this function's
    // contract).
    unsafe {
        sw_btf_current_syscall(regs.as_mut_ptr(), typed);
        regs.assume_init()
    }
}

/// Argument `n` (0-3) of what [`current_syscall`] read.
#[inline(always)]
pub(crate) fn syscall_arg(regs: &[i64; 5], n: u32) -> i64 {
    regs[1 + (n & 3) as usize]
}

/// Which kill-family syscall has number `nr` on this machine; NONE for any other.
#[inline(always)]
fn syscall_with_nr(nr: i64) -> u32 {
    if nr < 0 {
        return syscall::NONE;
    }
    let mut i = 0;
    while i < syscall::COUNT {
        // SAFETY: an element of CONFIG's array (i < COUNT), valid and aligned; read
        // alone and volatile, as config! reads a field.
        let number = unsafe { read_volatile(addr_of!(CONFIG.syscall_nrs[i])) };
        if i64::from(number) == nr {
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

/// The request syscall `which` made, from its arguments (`arg(n)` reads argument n) and,
/// for pidfd_send_signal only, its caller's task (`task()`, an untyped address).
#[inline(always)]
pub(crate) fn request_from_args(
    which: u32,
    task: impl Fn() -> u64,
    arg: impl Fn(u32) -> i64,
) -> Request {
    let (arg0, arg1, sig) = match which {
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => {
            (int_arg(arg(0)), int_arg(arg(1)), int_arg(arg(2)))
        }
        _ => (int_arg(arg(0)), 0, int_arg(arg(1))),
    };
    let pidfd_pid = if which == syscall::PIDFD_SEND_SIGNAL {
        // SAFETY: probe reads, sound for any task address and any fd.
        unsafe { sw_pidfd_pid(task(), arg0 as i32) }
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
/// `sender_btf` is the sender (the current task) BTF-typed, or 0.
///
/// Safety: `sender_btf` is 0 or what [`crate::task::current_task_btf`] returned.
#[inline(always)]
pub(crate) unsafe fn current_request(
    sig: i32,
    sender_btf: u64,
    target_task: u64,
    target_pid: u32,
) -> Request {
    // SAFETY: this function's contract.
    let request = unsafe { asked_now(sender_btf) };
    let which = request.syscall;
    if which == syscall::NONE {
        return Request::default();
    }
    let pid = i64::from(target_pid);
    // A sender inside a pid namespace names the target by its pid there: the target's
    // innermost-level pid when both share the namespace (the usual container case).
    // SAFETY: a probe read, sound for any task address.
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
                // SAFETY: probe reads, sound for any task address.
                request.arg0 == i64::from(unsafe { sw_task_tid(target_task) })
                    // SAFETY: as above.
                    || unsafe { sw_task_ns_pid(current_task()) }
                        != (bpf_get_current_pid_tgid() >> 32) as u32
            }
            _ => true,
        };
    if consistent {
        if logging() {
            if has(features::TASK_PT_REGS) {
                crate::log::request_from_registers(which, target_pid);
            } else {
                crate::log::request_from_sys_enter(which, target_pid);
            }
        }
        request
    } else {
        if logging() {
            crate::log::request_mismatch(which, sig);
        }
        Request::default()
    }
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
    // SIGWHO_DISABLE_HOOKS=programs: attached, doing nothing (maps::hollow).
    if hollow() {
        return Ok(0);
    }
    let lay = layout(which);
    if lay.arg0 == SyscallLayout::ABSENT || lay.sig == SyscallLayout::ABSENT {
        return Ok(0);
    }
    // SAFETY: read_at() is a probe read, sound at any offset, into an i64, which any 8
    // bytes are.
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
    let request = request_from_args(which, current_task, |n| args[(n & 3) as usize]);
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
