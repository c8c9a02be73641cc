//! Process lifecycle, include/trace/events/sched.h: sched_process_fork (lineage),
//! sched_process_exec (argv and cgroup of the new program), sched_process_exit (how a
//! process ended).

use core::ptr::addr_of_mut;

use aya_ebpf::{
    helpers::generated::{bpf_probe_read_kernel_str, bpf_probe_read_user},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use tracer_common::{
    ARGS_LEN, ExecEvent, ExitEvent, ForkEvent, PATH_LEN, exec_flags, features, kind,
};

use crate::{
    maps::{TARGETS, add_target, config, has, hollow, is_target},
    record::{reserve, submit_flags, write_header},
    select::{select_exec, select_fork},
    task::{
        sw_bprm_filename, sw_task_arg_end, sw_task_arg_start, sw_task_cgroup_names,
        sw_task_exit_code, sw_task_live_threads, sw_task_process_start, sw_task_real_parent,
        sw_task_tgid, sw_task_tid, write_task,
    },
};

// --- sched:sched_process_exec -----------------------------------------------------
// include/trace/events/sched.h, TRACE_EVENT(sched_process_exec,
//   TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm))
// Fired from exec_binprm() once the new program is mapped: current is `p`, and the new
// argv sits in its memory between mm->arg_start and mm->arg_end.

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> u32 {
    match try_sched_process_exec(&ctx) {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

fn try_sched_process_exec(ctx: &BtfTracePointContext) -> Result<u32, u32> {
    // SIGWHO_DISABLE_HOOKS=programs: attached, doing nothing (maps::hollow).
    if hollow() {
        return Ok(0);
    }
    let task: u64 = ctx.arg(0);
    let bprm: u64 = ctx.arg(2);
    let Some(mut entry) = reserve::<ExecEvent>(kind::EXEC) else {
        return Ok(0);
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` is the record just reserved: valid and aligned for a whole ExecEvent,
    // and this program's alone until it is submitted. Fields are written through
    // addr_of_mut! (the one read, `task`, after write_task() wrote it whole), each read
    // into one stays within it: at most PATH_LEN
    // bytes of `filename`, `len` <= ARGS_LEN bytes of `args`, and shim/core.c's
    // SW_CGROUP_LEVELS names of SW_CGROUP_NAME_LEN bytes (CGROUP_LEVELS and
    // CGROUP_NAME_LEN) of `cgroup_names`. Kernel and user memory are read through the
    // fault-catching helpers, whatever the addresses.
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
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the low half is the record's field: it holds the randomised bits"
        )]
        let arg_start_low = start as u32;
        addr_of_mut!((*ev).arg_start_low).write(arg_start_low);
        let levels = sw_task_cgroup_names(task, addr_of_mut!((*ev).cgroup_names) as u64);
        addr_of_mut!((*ev).cgroup_levels).write(levels);
        // `--target-comm`: the new program's name, written just above.
        let (pid, start_ns, exec_ns) = ((*ev).task.pid, (*ev).task.start_ns, (*ev).header.time_ns);
        select_exec(pid, start_ns, exec_ns, &(*ev).task.comm);
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
    match try_sched_process_fork(&ctx) {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

fn try_sched_process_fork(ctx: &BtfTracePointContext) -> Result<u32, u32> {
    // SIGWHO_DISABLE_HOOKS=programs: attached, doing nothing (maps::hollow).
    if hollow() {
        return Ok(0);
    }
    let forker: u64 = ctx.arg(0);
    let child: u64 = ctx.arg(1);
    // New threads do not change the process tree.
    // SAFETY: probe reads, sound for any task address (as below).
    let child_pid = unsafe { sw_task_tgid(child) };
    // SAFETY: as above.
    if child_pid != unsafe { sw_task_tid(child) } {
        return Ok(0);
    }
    // SAFETY: as above.
    if config!(follow_children) != 0 && is_target(unsafe { sw_task_tgid(forker) }) {
        // Before the child can run, so its first signal is already seen. A full map
        // only loses descendants; userspace checks the map size.
        // SAFETY: as above.
        add_target(child_pid, unsafe { sw_task_process_start(child) });
    }
    select_fork(forker, child_pid, child);
    let Some(mut entry) = reserve::<ForkEvent>(kind::FORK) else {
        return Ok(0);
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` is the record just reserved: valid and aligned for a whole ForkEvent,
    // and this program's alone until it is submitted; fields are written through
    // addr_of_mut!, and the tasks read through probe reads.
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
    match try_sched_process_exit(&ctx) {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

fn try_sched_process_exit(ctx: &BtfTracePointContext) -> Result<u32, u32> {
    // SIGWHO_DISABLE_HOOKS=programs: attached, doing nothing (maps::hollow).
    if hollow() {
        return Ok(0);
    }
    let task: u64 = ctx.arg(0);
    // SAFETY: probe reads, sound for any task address (as below).
    if unsafe { sw_task_live_threads(task) } != 0 {
        return Ok(0);
    }
    if config!(follow_children) != 0 && !has(features::FREE_HOOK) {
        // Without sched_process_free the pid leaves here, before it could be reused by
        // an unrelated process; a signal sent to the process from now until it is
        // reaped (a SIGTERM right after a SIGKILL: signal_generate reports it as
        // ignored) is then not seen.
        // SAFETY: as above.
        let _ = TARGETS.remove(&unsafe { sw_task_tgid(task) });
    }
    let Some(mut entry) = reserve::<ExitEvent>(kind::EXIT) else {
        return Ok(0);
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` is the record just reserved: valid and aligned for a whole ExitEvent,
    // and this program's alone until it is submitted; fields are written through
    // addr_of_mut!, and the task read through probe reads.
    unsafe {
        write_header(addr_of_mut!((*ev).header), kind::EXIT);
        write_task(addr_of_mut!((*ev).task), task);
        addr_of_mut!((*ev).exit_code).write(sw_task_exit_code(task));
        addr_of_mut!((*ev)._pad).write(0);
    }
    entry.submit(submit_flags::<ExitEvent>());
    Ok(0)
}

// --- sched:sched_process_free -----------------------------------------------------
// include/trace/events/sched.h, DEFINE_EVENT(sched_process_template, sched_process_free,
//   TP_PROTO(struct task_struct *p)). Fired from kernel/exit.c delayed_put_task_struct(),
// an RCU callback after release_task() has reaped the task and freed its pid: from here
// on the pid may name another process. Until here a signal to the process (exiting, or
// a zombie) still reaches signal_generate, so a target leaves TARGETS here rather than
// at sched_process_exit. Attached only with `follow_children`; userspace sets
// features::FREE_HOOK when it is.

#[btf_tracepoint(function = "sched_process_free")]
pub fn sched_process_free(ctx: BtfTracePointContext) -> u32 {
    match try_sched_process_free(&ctx) {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

fn try_sched_process_free(ctx: &BtfTracePointContext) -> Result<u32, u32> {
    // SIGWHO_DISABLE_HOOKS=programs: attached, doing nothing (maps::hollow).
    if hollow() {
        return Ok(0);
    }
    let task: u64 = ctx.arg(0);
    // SAFETY: probe reads, sound for any task address (as above).
    let (pid, tid) = unsafe { (sw_task_tgid(task), sw_task_tid(task)) };
    // Threads free one by one; the process is gone with its leader.
    if pid != tid || !is_target(pid) {
        return Ok(0);
    }
    // SAFETY: the value is copied out at once; a concurrent update only makes the
    // comparison below use the older or the newer start, both harmless.
    let Some(&start) = (unsafe { TARGETS.get(&pid) }) else {
        return Ok(0);
    };
    // 0: put there by userspace, which knows the pid only. Otherwise the pid is removed
    // only for the process that was added under it.
    // SAFETY: as above.
    if start == 0 || start == unsafe { sw_task_process_start(task) } {
        let _ = TARGETS.remove(&pid);
    }
    Ok(0)
}
