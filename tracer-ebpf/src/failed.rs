//! Failed attempts: kill-family calls the kernel refused, so no signal was generated.
//!
//! A request the kernel refuses (EPERM, ESRCH, EINVAL) generates no signal. The syscall
//! functions' return values show those: fexit programs attached at load time to
//! __<arch>_sys_<name> (arch/x86/include/asm/syscall_wrapper.h, one argument: the
//! caller's struct pt_regs), found by name in the kernel's BTF. A successful call costs
//! one trampoline and a comparison.

use core::ptr::addr_of_mut;

use aya_ebpf::{
    EbpfContext as _,
    helpers::bpf_get_current_pid_tgid,
    macros::{fexit, tracepoint},
    programs::{FExitContext, TracePointContext},
};
use tracer_common::{
    FailedSendEvent, FoldKey, Request, SyscallLayout, features, fold_stats, kind, syscall,
};

use crate::{
    maps::{INFLIGHT, config, has, hollow, is_target, layout},
    record::{reserve, submit_flags, write_header},
    request::{current_syscall, request_from_args, syscall_arg},
    select::{in_exec_grace, signal_selected},
    storm::{count_repeat, fill_failed_key, new_row},
    task::{current_task, write_ancestry, write_task},
    zero::zeroed_in,
};

/// Whether a failed request could have been aimed at a watched process. Group,
/// broadcast and thread-id requests cannot be resolved here; userspace decides those.
fn failed_request_wanted(request: &Request) -> bool {
    let direct = |pid: i64| pid > 0 && (is_target(pid as u32) || in_exec_grace(pid as u32, 0));
    match request.syscall {
        syscall::KILL | syscall::RT_SIGQUEUEINFO => request.arg0 <= 0 || direct(request.arg0),
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => direct(request.arg0),
        syscall::PIDFD_SEND_SIGNAL => direct(i64::from(request.pidfd_pid)),
        _ => true,
    }
}

/// Reports a failed request, if one was wanted.
#[inline(always)]
fn report_failure(request: &Request, ret: i64, task: u64) {
    if config!(filter_targets) != 0 && !failed_request_wanted(request) {
        return;
    }
    if !signal_selected(request.sig) {
        return;
    }
    // A storm of refused calls is aggregated like one of signals (storm.rs).
    let aggregate = config!(fold_repeats) != 0;
    // One key on the stack, filled in place: the fallback tracepoints' programs are
    // near 5.10's 512-byte stack limit, and a second FoldKey would cross it.
    let mut slot = core::mem::MaybeUninit::<FoldKey>::uninit();
    // SAFETY: all zeros is a valid FoldKey (a Pod key).
    let key = unsafe { zeroed_in(&mut slot) };
    if aggregate {
        fill_failed_key(key, request, ret, task, bpf_get_current_pid_tgid());
        if count_repeat(&key) {
            return;
        }
    }
    let Some(mut entry) = reserve::<FailedSendEvent>(kind::FAILED_SEND) else {
        return;
    };
    let fold_id = if aggregate {
        new_row(&key, fold_stats::FULL_FAILED)
    } else {
        0
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` is the record just reserved: valid and aligned for a whole
    // FailedSendEvent, and this program's alone until it is submitted. Fields are written
    // through addr_of_mut! (none is read before it is written), and the helpers get
    // fields of it to fill; `task` is read only through probe reads.
    unsafe {
        write_header(addr_of_mut!((*ev).header), kind::FAILED_SEND);
        addr_of_mut!((*ev).request).write(*request);
        addr_of_mut!((*ev).ret).write(ret);
        write_task(addr_of_mut!((*ev).sender), task);
        addr_of_mut!((*ev)._pad).write(0);
        // A failed attempt is rare and worth a full chain every time.
        let len = write_ancestry(addr_of_mut!((*ev).sender_ancestry), task);
        addr_of_mut!((*ev).ancestry_len).write(len);
        addr_of_mut!((*ev).fold_id).write(fold_id);
    }
    entry.submit(submit_flags::<FailedSendEvent>());
}

fn on_syscall_return(ctx: &FExitContext, which: u32) -> Result<u32, u32> {
    // SIGWHO_DISABLE_HOOKS=programs: attached, doing nothing (maps::hollow).
    if hollow() {
        return Ok(0);
    }
    let ret: i64 = ctx.arg(1);
    on_return(which, ret)
}

/// A kill-family syscall `which` of the current task returns `ret`: reports it if it
/// failed. The arguments are still in the registers the task entered the kernel with.
#[inline(always)]
fn on_return(which: u32, ret: i64) -> Result<u32, u32> {
    let request = if has(features::TASK_PT_REGS) {
        if ret >= 0 {
            return Ok(0);
        }
        // SAFETY: under TASK_PT_REGS: this kernel has bpf_task_pt_regs().
        let regs = unsafe { current_syscall() };
        request_from_args(which, current_task, |n| syscall_arg(&regs, n))
    } else {
        // The call is over either way: its entry goes.
        let tid = bpf_get_current_pid_tgid() as u32;
        // SAFETY: copied out at once (the map keeps the entry's memory valid for the
        // program's run; any bytes make a valid Request).
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
    report_failure(&request, ret, current_task());
    Ok(0)
}

macro_rules! syscall_return_hooks {
    ($($name:ident => $which:expr;)*) => {$(
        // The function named here is x86-64's; userspace attaches each program to this
        // machine's name for the syscall.
        #[fexit(function = "__x64_sys_kill")]
        pub fn $name(ctx: FExitContext) -> u32 {
            match on_syscall_return(&ctx, $which) {
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

// --- syscalls:sys_exit_* of the kill family (fallback) -----------------------------
// Used for failed attempts only when the fexit programs cannot be loaded: kernels
// without BPF trampolines, or in lockdown "integrity" mode, which refuses them. Records
// described by /sys/kernel/tracing/events/syscalls/sys_exit_<name>/format (generated by
// include/linux/syscalls.h SYSCALL_DEFINEx); userspace parses the offset of `ret` and
// passes it in LAYOUTS. Enabling any of these sends every syscall of every task through
// the tracing slow path, which is why fexit comes first.

/// Where `ret` sits in the `syscalls:sys_exit_*` records of every kernel seen so far
/// (events/syscalls/sys_exit_kill/format: `field:long ret; offset:16; size:8;`).
const SYS_EXIT_RET_OFFSET: u32 = 16;

fn on_sys_exit(ctx: &TracePointContext, which: u32) -> Result<u32, u32> {
    // SIGWHO_DISABLE_HOOKS=programs: attached, doing nothing (maps::hollow).
    if hollow() {
        return Ok(0);
    }
    let lay = layout(which);
    if lay.ret == SyscallLayout::ABSENT {
        return Ok(0);
    }
    // Every kernel so far puts `ret` at 16 (after the common fields and __syscall_nr):
    // then a plain load, which the verifier allows at a constant offset, instead of a
    // helper call on every kill() of the machine. Other layouts take the helper.
    let ret: i64 = if lay.ret == SYS_EXIT_RET_OFFSET {
        // SAFETY: `ret` is at this offset of this kernel's record (its format file says
        // so: lay.ret), 8-aligned like the record; and the kernel refuses to attach a
        // program whose context loads go past its tracepoint's record.
        unsafe {
            *(ctx.as_ptr() as *const u8)
                .add(SYS_EXIT_RET_OFFSET as usize)
                .cast::<i64>()
        }
    } else {
        // SAFETY: read_at() is a probe read, sound at any offset, into an i64, which
        // any 8 bytes are.
        unsafe { ctx.read_at(lay.ret as usize) }.map_err(|_| 0u32)?
    };
    on_return(which, ret)
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
