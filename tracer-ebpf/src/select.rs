//! The live view's selectors that the programs apply themselves: `--signal` (a signal
//! mask) and `--target-comm` (a process that execs under that name becomes a target at
//! once). The other selectors (exe, unit, container, pod, cgroup) are resolved by
//! userspace, which puts matching processes in TARGETS (maps.rs) from /proc at start and
//! from exec records after; with `follow_children` their forks follow in the kernel.

use core::ptr::{addr_of, read_volatile};

use tracer_common::{COMM_LEN, Select};

use crate::maps::add_target;

#[unsafe(no_mangle)]
static SELECT: Select = Select {
    signal_mask: 0,
    target_comm: [0; COMM_LEN],
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

/// At exec (kernel/exec.c, exec_binprm(): the comm is already the new program's): makes
/// process `pid` (started at `start_ns`) a target when its new `comm` is `--target-comm`.
#[inline(always)]
pub(crate) fn select_exec(pid: u32, start_ns: u64, comm: &[u8; COMM_LEN]) {
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
