//! The programs' diagnostics (aya-log), for `SIGWHO_LOG=debug`. Callers test
//! [`crate::maps::logging`] first, so that with logging off the verifier prunes the
//! calls. Each message is a function of its own that is never inlined: its buffer lives
//! in its own stack frame instead of growing the caller's (signal_generate's frame is
//! close to the 512-byte limit, and the log buffers would push it over).

use aya_log_ebpf::debug;

#[inline(never)]
pub(crate) fn request_from_registers(which: u32, target_pid: u32) {
    debug!(
        &(),
        "request: kill-family syscall {} for pid {}, read from the sender's saved registers",
        which,
        target_pid
    );
}

#[inline(never)]
pub(crate) fn request_from_sys_enter(which: u32, target_pid: u32) {
    debug!(
        &(),
        "request: kill-family syscall {} for pid {}, from its sys_enter record (fallback: no bpf_task_pt_regs)",
        which,
        target_pid
    );
}

#[inline(never)]
pub(crate) fn request_mismatch(which: u32, sig: i32) {
    debug!(
        &(),
        "request skipped: the sender is in kill-family syscall {} but asked for something other than signal {}",
        which,
        sig
    );
}

#[inline(never)]
pub(crate) fn own_signal(sig: i32, target_pid: u32) {
    debug!(
        &(),
        "signal {} to pid {} skipped: sigwho's own", sig, target_pid
    );
}

#[inline(never)]
pub(crate) fn record_dropped(record_kind: u32) {
    debug!(
        &(),
        "record of kind {} dropped: no room in the ring buffer", record_kind
    );
}
