//! Raw system calls that neither std nor aya wraps.

use std::io;
use std::os::fd::{FromRawFd as _, OwnedFd};

/// `PIDFS_MAGIC` (include/uapi/linux/magic.h): the file system pidfds live on since 6.9.
pub const PIDFS_MAGIC: i64 = 0x5049_4446;

/// The file system magic of a pidfd for this process: [`PIDFS_MAGIC`] on kernels with
/// pidfs, the anonymous-inode file system's before.
pub fn pidfd_fs_magic() -> io::Result<i64> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let raw = i32::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: the descriptor was just returned to us and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: statfs is plain data; all-zero is a valid value to be overwritten.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a pointer to a writable statfs.
    if unsafe { libc::fstatfs(std::os::fd::AsRawFd::as_raw_fd(&fd), &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stat.f_type)
}

/// Columns of the terminal on standard output, if it is one.
pub fn stdout_columns() -> Option<usize> {
    // SAFETY: winsize is plain data; all-zero is a valid value to be overwritten.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through a valid pointer; it fails (and
    // writes nothing) when stdout is not a terminal.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}
