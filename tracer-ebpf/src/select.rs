//! The live view's selectors in the kernel: `--signal` (a signal mask), `--target-comm`
//! (a process that execs under that name becomes a target at once), and the exec grace
//! for the selectors userspace resolves (exe, unit, container, pod, cgroup).
//!
//! Userspace puts the processes those select in TARGETS (maps.rs): from /proc at start,
//! and from exec records after. Reading an exec record takes milliseconds, and a
//! supervisor that restarts a worker can signal it sooner. So while such a selector is
//! active, every exec is marked in EXECS with the process's start time, and a process
//! that exec'd less than `Select::exec_grace_ns` ago passes the target filter even when
//! it is not (yet) in TARGETS; userspace then tests it against the selectors and drops
//! the signals of non-matches. Once userspace has read the exec, it adds a match to
//! TARGETS, and marks a non-match in EXECS_DECIDED, which ends its grace: a storm at a
//! process that just exec'd something else passes for milliseconds, not for the whole
//! grace. A process forked by one still in its grace inherits the mark (a restarted
//! master's first workers). With `follow_children` the forks of targets follow in the
//! kernel.

use core::ptr::{addr_of, read_volatile};

use aya_ebpf::helpers::generated::bpf_ktime_get_boot_ns;
use tracer_common::{COMM_LEN, ExecMark, Select};

use crate::{
    maps::{EXECS, EXECS_DECIDED, add_target},
    task::{sw_task_process_start, sw_task_tgid},
};

#[unsafe(no_mangle)]
static SELECT: Select = Select {
    signal_mask: 0,
    target_comm: [0; COMM_LEN],
    exec_grace_ns: 0,
};

/// Whether `--signal` lets signal `sig` through (every signal when no mask is set).
#[inline(always)]
pub(crate) fn signal_selected(sig: i32) -> bool {
    // SAFETY: a reference to a static is valid and aligned; SELECT is read-only data
    // userspace fills in before load, and the volatile read of one field stops the
    // compiler from folding in the build-time default.
    let mask = unsafe { read_volatile(addr_of!(SELECT.signal_mask)) };
    mask == 0 || (sig >= 1 && sig <= 64 && mask & (1u64 << ((sig - 1) as u32 & 63)) != 0)
}

/// The exec grace in ns; zero when no selector needs it. A constant to the verifier
/// (SELECT is frozen read-only data), so without it no EXECS code is walked.
#[inline(always)]
fn exec_grace_ns() -> u64 {
    // SAFETY: as in signal_selected().
    unsafe { read_volatile(addr_of!(SELECT.exec_grace_ns)) }
}

/// At exec (kernel/exec.c, exec_binprm(): the comm is already the new program's): makes
/// process `pid` a target when its new `comm` is `--target-comm`, and marks its exec for
/// the grace.
#[inline(always)]
pub(crate) fn select_exec(pid: u32, start_ns: u64, exec_ns: u64, comm: &[u8; COMM_LEN]) {
    if exec_grace_ns() != 0 {
        let _ = EXECS.insert(&pid, &ExecMark { start_ns, exec_ns }, 0);
    }
    // SAFETY: as in signal_selected().
    let wanted = unsafe { read_volatile(addr_of!(SELECT.target_comm)) };
    if wanted[0] == 0 {
        return;
    }
    let mut i = 0;
    while i < COMM_LEN {
        if wanted[i] != comm[i] {
            return;
        }
        if wanted[i] == 0 {
            break;
        }
        i += 1;
    }
    add_target(pid, start_ns);
}

/// At fork (sched_process_fork, before the child runs): a child of a process still in
/// its grace gets the rest of that grace, under its own start time. `forker` and
/// `child_task` are the tracepoint's tasks.
#[inline(always)]
pub(crate) fn select_fork(forker: u64, child: u32, child_task: u64) {
    if exec_grace_ns() == 0 {
        return;
    }
    // SAFETY: a probe read, sound for any task address.
    let parent = unsafe { sw_task_tgid(forker) };
    let exec_ns = grace_exec_ns(parent, forker);
    if exec_ns != 0 {
        let mark = ExecMark {
            // SAFETY: as above.
            start_ns: unsafe { sw_task_process_start(child_task) },
            exec_ns,
        };
        let _ = EXECS.insert(&child, &mark, 0);
    }
}

/// Whether process `pid` exec'd (or was forked by one that had) less than the grace
/// ago. `task`, when non-zero, is the process's task: its start time must be the marked
/// one, so that a pid reused since gets nothing. The failed-attempt and OOM paths know
/// only a pid (zero): a reused pid there costs one report userspace drops.
#[inline(always)]
pub(crate) fn in_exec_grace(pid: u32, task: u64) -> bool {
    grace_exec_ns(pid, task) != 0
}

/// The time of the exec whose grace process `pid` is in, zero when none (a plain u64,
/// not an Option: 5.10's verifier refuses reading a half-written one from the stack).
/// `task` as in [`in_exec_grace`].
#[inline(always)]
fn grace_exec_ns(pid: u32, task: u64) -> u64 {
    let grace = exec_grace_ns();
    if grace == 0 {
        return 0;
    }
    // SAFETY: the value is copied out at once; an LRU entry may be replaced meanwhile,
    // which only makes the copy stale (checked by start and time below).
    let Some(mark) = (unsafe { EXECS.get(&pid) }).copied() else {
        return 0;
    };
    // SAFETY: a probe read, sound for any task address.
    if task != 0 && unsafe { sw_task_process_start(task) } != mark.start_ns {
        return 0;
    }
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    if now.wrapping_sub(mark.exec_ns) >= grace {
        return 0;
    }
    // SAFETY: as above.
    if unsafe { EXECS_DECIDED.get(&pid) }.is_some_and(|&decided| decided == mark.exec_ns) {
        return 0;
    }
    mark.exec_ns
}
