//! The one system call the bench makes itself: kill(2), to processes it started.

use anyhow::{Result, bail};

/// Signal numbers as on `x86_64` and arm64 (xtask does without a libc dependency; std
/// links the C library, so `kill` itself is declared here).
pub(super) const SIGINT: i32 = 2;
pub(super) const SIGTERM: i32 = 15;
pub(super) const SIGUSR1: i32 = 10;
/// Ignored by default, so the idle `sleep` survives the probes sent to it.
pub(super) const SIGWINCH: i32 = 28;

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Sends `signal` to a process this bench started and has not reaped (callers make
/// sure), so the pid cannot belong to anyone else.
pub(super) fn signal_pid(pid: u32, signal: i32) -> Result<()> {
    let Ok(pid) = i32::try_from(pid) else {
        bail!("pid {pid} out of range");
    };
    if pid <= 0 {
        bail!("refusing to signal pid {pid}");
    }
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { kill(pid, signal) } != 0 {
        bail!("kill({pid}, {signal}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}
