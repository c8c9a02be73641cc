//! Reading tasks: the CO-RE accessors of shim/core.c and what the programs build
//! from them (a TaskRef, an ancestry chain).
//!
//! Two ways to read a task: plain loads through a pointer the verifier knows as a
//! task_struct (sw_btf_*, shim/core.c), or CO-RE bpf_probe_read_kernel() reads through
//! any task address (sw_task_*). The first is cheaper; verifiers have changed what they
//! allow through tracepoint arguments (6.13 retyped signal_generate's siginfo), so it is
//! used only under DIRECT_LOADS, which userspace clears when a verifier refuses it.
//! Proven on every kernel of `cargo xtask vmtest` (5.10, 6.1, 6.12, 7.x and the host's).

use core::ptr::addr_of_mut;

use aya_ebpf::helpers::generated::{
    bpf_get_current_task, bpf_get_current_task_btf, bpf_probe_read_kernel_str,
};
use tracer_common::{ANCESTRY_DEPTH, Ancestor, COMM_LEN, TaskRef, features, task_flags};

use crate::maps::{SENDERS_SEEN, has};

// shim/core.c's accessors (pointers travel as u64). What each asks of its caller:
// - sw_task_*, sw_bprm_filename, sw_pidfd_pid, sw_task_cgroup_names and
//   sw_siginfo_words read through bpf_probe_read_kernel(), which catches faults: any
//   address will do (a bad one reads as 0).
// - sw_btf_* (and sw_current_syscall with `direct`) load directly, through a pointer
//   the verifier must know as a task_struct: a BTF tracepoint's argument or
//   bpf_get_current_task_btf(). The verifier checks that at load, so a wrong pointer
//   refuses the program rather than running it; callers use them only under
//   features::DIRECT_LOADS, which userspace clears when a verifier refuses them.
// - sw_current_syscall calls bpf_task_pt_regs(): only under features::TASK_PT_REGS.
// - What they write (`dst`, `out`) must be valid for it: a TaskRef (sw_btf_fill_task),
//   CGROUP_LEVELS names of CGROUP_NAME_LEN bytes (sw_task_cgroup_names), the array.
// - sw_siginfo_kind and sw_task_comm_offset read no memory.
unsafe extern "C" {
    pub(crate) fn sw_atomic_add(p: *mut u64, v: u64);
    pub(crate) fn sw_task_tgid(task: u64) -> u32;
    pub(crate) fn sw_task_cgroup_names(task: u64, dst: u64) -> u32;
    pub(crate) fn sw_task_tid(task: u64) -> u32;
    pub(crate) fn sw_task_real_parent(task: u64) -> u64;
    pub(crate) fn sw_task_process_start(task: u64) -> u64;
    pub(crate) fn sw_task_uid(task: u64) -> u32;
    fn sw_task_comm_offset() -> u32;
    pub(crate) fn sw_task_exit_code(task: u64) -> u32;
    pub(crate) fn sw_task_live_threads(task: u64) -> i32;
    pub(crate) fn sw_task_arg_start(task: u64) -> u64;
    pub(crate) fn sw_task_arg_end(task: u64) -> u64;
    pub(crate) fn sw_bprm_filename(bprm: u64) -> u64;
    pub(crate) fn sw_pidfd_pid(task: u64, fd: i32) -> i32;
    fn sw_task_exiting(task: u64) -> u32;
    /// task_flags GROUP_EXITING, UNKILLABLE, HANDLER_IGNORE, HANDLER_DEFAULT of `task`
    /// for signal `sig` (probe reads; shim/core.c says from where).
    pub(crate) fn sw_task_signal_state(task: u64, sig: i32) -> u32;
    pub(crate) fn sw_task_ns_pid(task: u64) -> u32;
    fn sw_btf_task_tgid(task: u64) -> u32;
    fn sw_btf_task_tid(task: u64) -> u32;
    pub(crate) fn sw_siginfo_words(info: u64, out: *mut [u64; 4]);
    pub(crate) fn sw_siginfo_kind(info: u64) -> u32;
    fn sw_btf_task_process_start(task: u64) -> u64;
    fn sw_btf_task_exec_id(task: u64) -> u64;
    fn sw_task_exec_id(task: u64) -> u64;
    pub(crate) fn sw_btf_fill_task(dst: u64, task: u64);
    pub(crate) fn sw_current_syscall(out: *mut [i64; 5], direct: u32);
    pub(crate) fn sw_btf_current_syscall(out: *mut [i64; 5], task: u64);
}

/// tgid of a BTF-typed task (a tracepoint argument).
///
/// Safety: `task` is a pointer the verifier knows as a task_struct.
#[inline(always)]
pub(crate) unsafe fn btf_task_tgid(task: u64) -> u32 {
    if has(features::DIRECT_LOADS) {
        // SAFETY: `task` is BTF-typed (this function's contract), as the direct load
        // needs; DIRECT_LOADS says this kernel's verifier allows it.
        unsafe { sw_btf_task_tgid(task) }
    } else {
        // SAFETY: a probe read, sound for any address.
        unsafe { sw_task_tgid(task) }
    }
}

/// Thread id of a BTF-typed task.
///
/// Safety: `task` is a pointer the verifier knows as a task_struct.
#[inline(always)]
pub(crate) unsafe fn btf_task_tid(task: u64) -> u32 {
    if has(features::DIRECT_LOADS) {
        // SAFETY: as in btf_task_tgid().
        unsafe { sw_btf_task_tid(task) }
    } else {
        // SAFETY: a probe read, sound for any address.
        unsafe { sw_task_tid(task) }
    }
}

/// The current task as a BTF-typed pointer, where this kernel has the helper and
/// direct loads are allowed; 0 otherwise (read `bpf_get_current_task()` with CO-RE).
/// Not an Option: rustc loads an Option's payload before testing it, and verifiers
/// before 5.12 refuse that read of a stack slot never written.
#[inline(always)]
pub(crate) fn current_task_btf() -> u64 {
    if has(features::CURRENT_TASK_BTF) && has(features::DIRECT_LOADS) {
        // SAFETY: a helper without arguments; the verifier checks it exists (the
        // branch is pruned where it does not).
        unsafe { bpf_get_current_task_btf() as u64 }
    } else {
        0
    }
}

/// The current task as an untyped address, for the probe-read accessors. Fetched
/// where it is used: on the path of every signal the BTF-typed pointer serves instead.
#[inline(always)]
pub(crate) fn current_task() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_get_current_task() }
}

/// The current task's pid_tgid (tgid above, thread id below): two loads through
/// `typed`, the current task BTF-typed, where it is non-zero; else the helper.
///
/// Safety: `typed` is 0 or what [`current_task_btf`] returned.
#[inline(always)]
pub(crate) unsafe fn current_pid_tgid(typed: u64) -> u64 {
    if typed != 0 {
        // SAFETY: a non-zero `typed` is BTF-typed and came under DIRECT_LOADS (this
        // function's contract), as the direct loads need.
        unsafe { (u64::from(sw_btf_task_tgid(typed)) << 32) | u64::from(sw_btf_task_tid(typed)) }
    } else {
        aya_ebpf::helpers::bpf_get_current_pid_tgid()
    }
}

/// Start of the process of `task` (an untyped address), or of `typed` (the same task,
/// BTF-typed) unless that is 0.
///
/// Safety: `typed` is 0 or a pointer the verifier knows as a task_struct, obtained
/// under DIRECT_LOADS ([`current_task_btf`] returns one so).
#[inline(always)]
pub(crate) unsafe fn process_start(task: u64, typed: u64) -> u64 {
    if typed != 0 {
        // SAFETY: a non-zero `typed` is BTF-typed (this function's contract).
        unsafe { sw_btf_task_process_start(typed) }
    } else {
        // SAFETY: a probe read, sound for any address.
        unsafe { sw_task_process_start(task) }
    }
}

/// How many execs the thread `task` (or `typed`, the same BTF-typed, unless 0) has
/// made: `task_struct.self_exec_id` (u64 since Linux 5.7, include/linux/sched.h),
/// which begin_new_exec() (fs/exec.c) increments. An exec changes what a report says
/// about the thread, so the aggregation key includes it.
///
/// Safety: as for [`process_start`].
#[inline(always)]
pub(crate) unsafe fn task_exec_id(task: u64, typed: u64) -> u64 {
    if typed != 0 {
        // SAFETY: a non-zero `typed` is BTF-typed (this function's contract).
        unsafe { sw_btf_task_exec_id(typed) }
    } else {
        // SAFETY: a probe read, sound for any address.
        unsafe { sw_task_exec_id(task) }
    }
}

/// Process start and exec count of a BTF-typed task (a tracepoint argument): plain
/// loads under DIRECT_LOADS. Two calls per branch, not one call with a chosen
/// pointer: LLVM turns `if has(..) { task } else { 0 }` into a mask, which the
/// verifier refuses on a pointer.
///
/// Safety: `task` is a pointer the verifier knows as a task_struct.
#[inline(always)]
pub(crate) unsafe fn btf_task_identity(task: u64) -> (u64, u64) {
    if has(features::DIRECT_LOADS) {
        // SAFETY: as in btf_task_tgid().
        unsafe { (sw_btf_task_process_start(task), sw_btf_task_exec_id(task)) }
    } else {
        // SAFETY: probe reads, sound for any address.
        unsafe { (sw_task_process_start(task), sw_task_exec_id(task)) }
    }
}

/// [`write_task`] for a BTF-typed task (a tracepoint argument, the BTF current task):
/// plain loads under DIRECT_LOADS.
///
/// Safety: `dst` is valid for writing a TaskRef; `task` is a pointer the verifier knows
/// as a task_struct.
#[inline(always)]
pub(crate) unsafe fn write_btf_task(dst: *mut TaskRef, task: u64) {
    // SAFETY: `dst` and `task` are what both functions need (this function's contract);
    // the direct loads run only where DIRECT_LOADS says the verifier allows them.
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
///
/// Safety: `dst` is valid for writing a TaskRef (it need not be initialised).
#[inline(always)]
pub(crate) unsafe fn write_task(dst: *mut TaskRef, task: u64) {
    // SAFETY: the shim's reads are probe reads; every write is to a field of `dst`,
    // through addr_of_mut!, so no reference to memory not yet written is made.
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

/// Copies the name of `task` into `dst`, NUL-terminated; an empty name when it cannot be
/// read.
///
/// Safety: `dst` is valid for writing COMM_LEN bytes.
#[inline(always)]
pub(crate) unsafe fn read_comm(dst: *mut u8, task: u64) {
    // SAFETY: bpf_probe_read_kernel_str() writes at most COMM_LEN bytes to `dst`, which
    // has room for them (this function's contract), and reads `task`'s comm through the
    // fault-catching helper, whatever the address.
    unsafe {
        let src = (task + u64::from(sw_task_comm_offset())) as *const core::ffi::c_void;
        if bpf_probe_read_kernel_str(dst.cast(), COMM_LEN as u32, src) < 0 {
            dst.write(0);
        }
    }
}

/// Walks the real-parent chain of `task` as it is at this instant; returns how many
/// generations were written (parent first, stopping after pid 1).
///
/// Safety: `dst` is valid for writing the whole array (it need not be initialised).
#[inline(always)]
pub(crate) unsafe fn write_ancestry(dst: *mut [Ancestor; ANCESTRY_DEPTH], task: u64) -> u32 {
    let mut written = 0u32;
    // SAFETY: the shim's reads are probe reads; `generation` stays below ANCESTRY_DEPTH,
    // so every entry written is inside `dst`, through addr_of_mut! (no reference to
    // memory not yet written), and read_comm() gets the entry's COMM_LEN bytes.
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
///
/// Safety: `dst` is valid for writing the whole array.
#[inline(always)]
pub(crate) unsafe fn write_sender_ancestry(
    dst: *mut [Ancestor; ANCESTRY_DEPTH],
    task: u64,
    pid: u32,
    start_ns: u64,
) -> (u32, bool) {
    // SAFETY: the value is copied out at once (the map keeps its memory valid for the
    // program's run; any bit pattern is a valid u64).
    if let Some(seen) = unsafe { SENDERS_SEEN.get(&pid) }
        && *seen == start_ns
    {
        return (0, true);
    }
    // SAFETY: `dst` is valid for the whole array (this function's contract).
    let written = unsafe { write_ancestry(dst, task) };
    // A full map only costs a repeated chain later; nothing to report.
    let _ = SENDERS_SEEN.insert(&pid, &start_ns, 0);
    (written, false)
}
