//! Every raw system call sigwho makes, each behind a safe function: the rest of the
//! crate has no `unsafe` (but for the run mode's code between fork and exec).

use std::ffi::{CStr, CString, c_int};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};

/// `PIDFS_MAGIC` (include/uapi/linux/magic.h): the file system pidfds live on since 6.9.
pub const PIDFS_MAGIC: i64 = 0x5049_4446;

/// The file system magic of a pidfd for this process: [`PIDFS_MAGIC`] on kernels with
/// pidfs, the anonymous-inode file system's before.
///
/// # Errors
///
/// When `pidfd_open` or `fstatfs` fail.
pub fn pidfd_fs_magic() -> io::Result<i64> {
    let fd = pidfd_open(std::process::id())?;
    // SAFETY: statfs is plain data; all-zero is a valid value to be overwritten.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a pointer to a writable statfs.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &raw mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stat.f_type)
}

/// Columns of the terminal on standard output, if it is one.
#[must_use]
pub fn stdout_columns() -> Option<usize> {
    // SAFETY: winsize is plain data; all-zero is a valid value to be overwritten.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through a valid pointer; it fails (and
    // writes nothing) when stdout is not a terminal.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// A set of signals (`sigset_t`).
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    pub fn of(signals: impl IntoIterator<Item = c_int>) -> Self {
        // SAFETY: sigset_t is plain data that sigemptyset initialises in full.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid, writable sigset_t.
        unsafe { libc::sigemptyset(&raw mut set) };
        for signo in signals {
            // SAFETY: as above; an invalid number is refused with EINVAL, nothing else.
            unsafe { libc::sigaddset(&raw mut set, signo) };
        }
        Self(set)
    }
}

impl std::fmt::Debug for SigSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigSet")
    }
}

/// Blocks `set` in the calling thread (and the threads it starts later); returns the
/// mask before.
///
/// # Errors
///
/// When `pthread_sigmask` fails.
pub fn block_signals(set: &SigSet) -> io::Result<SigSet> {
    let mut previous = SigSet::of([]);
    // SAFETY: valid pointers to initialised sigset_t values for the whole call.
    let rc =
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set.0, &raw mut previous.0) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(previous)
}

/// A non-blocking signalfd for `set` (which must be blocked to be read here).
///
/// # Errors
///
/// When signalfd fails (no descriptors left).
pub fn signalfd(set: &SigSet) -> io::Result<OwnedFd> {
    // SAFETY: -1 asks for a new descriptor; `set` is valid for the call.
    let fd =
        unsafe { libc::signalfd(-1, &raw const set.0, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just returned to us, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One signal read from a signalfd: its number, `si_code` and sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: c_int,
    pub code: i32,
    pub pid: u32,
}

/// The next signal queued on a signalfd; `WouldBlock` when there is none.
///
/// # Errors
///
/// `WouldBlock` when no signal is queued; others when read fails.
pub fn read_signalfd(fd: &impl AsRawFd) -> io::Result<SigInfo> {
    // SAFETY: signalfd_siginfo is plain data; all-zero is a valid value to overwrite.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: a valid descriptor and a writable buffer of `size` bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&raw mut info).cast(), size) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if usize::try_from(n).ok() != Some(size) {
        return Err(io::Error::other("short read from a signalfd"));
    }
    Ok(SigInfo {
        signo: c_int::try_from(info.ssi_signo).unwrap_or(0),
        code: info.ssi_code,
        pid: info.ssi_pid,
    })
}

/// `fd` registered with tokio's reactor for readability. Needs a runtime.
///
/// # Errors
///
/// When there is no runtime or the reactor refuses the descriptor.
pub fn async_fd(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the descriptor and keeps it open, the same one, until it
    // is dropped.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| io::Error::other(e.to_string()))
}

/// The ring buffer registered with tokio's reactor for readability. Needs a runtime.
///
/// # Errors
///
/// When there is no runtime or the reactor refuses the descriptor.
pub fn async_ring(ring: RingBuf<MapData>) -> io::Result<AsyncFd<RingBuf<MapData>>> {
    // SAFETY: RingBuf owns its map fd and keeps it open, unchanged, until dropped, and
    // the AsyncFd owns the RingBuf.
    unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| io::Error::other(e.to_string()))
}

/// aya-log's reader registered with tokio's reactor for readability. Needs a runtime.
///
/// # Errors
///
/// When there is no runtime or the reactor refuses the descriptor.
pub fn async_ebpf_log<T>(
    logger: aya_log::EbpfLogger<T>,
) -> io::Result<AsyncFd<aya_log::EbpfLogger<T>>> {
    // SAFETY: the logger owns its ring buffer's map fd and keeps it open, unchanged,
    // until dropped, and the AsyncFd owns the logger.
    unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) }
        .map_err(|e| io::Error::other(e.to_string()))
}

/// A pidfd for `pid` (`pidfd_open(2)`, Linux 5.3).
///
/// # Errors
///
/// When there is no such process, or the kernel has no `pidfd_open` (before 5.3).
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let raw = i32::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: just returned to us, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// kill(2).
///
/// # Errors
///
/// When kill fails (`ESRCH`, `EPERM`).
pub fn kill(pid: u32, signo: c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: plain system call on integers.
    if unsafe { libc::kill(pid, signo) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// This process's process group.
#[must_use]
pub fn getpgrp() -> i32 {
    // SAFETY: getpgrp has no preconditions and cannot fail.
    unsafe { libc::getpgrp() }
}

/// A pipe whose ends close on exec.
///
/// # Errors
///
/// When pipe2 fails (no descriptors left).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: a valid pointer to two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just opened and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

// What the run mode's child calls between fork and exec, where only async-signal-safe
// calls may be made and nothing allocated (std's pre_exec contract): each is one system
// call on a raw descriptor the child owns a copy of, or a retry of one.

/// close(2), for a forked child's copy of a descriptor.
pub fn close_in_child(fd: RawFd) {
    // SAFETY: the descriptor is the child's own copy; closing it affects nothing else.
    unsafe { libc::close(fd) };
}

/// Sets the calling thread's signal mask to `set` (sigprocmask(2)).
///
/// # Errors
///
/// When sigprocmask fails.
pub fn set_signal_mask(set: &SigSet) -> io::Result<()> {
    // SAFETY: a valid, initialised sigset_t; no old mask is asked for.
    if unsafe { libc::sigprocmask(libc::SIG_SETMASK, &raw const set.0, std::ptr::null_mut()) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes all of `bytes` to `fd`, again after EINTR.
///
/// # Errors
///
/// When write fails other than by `EINTR`.
pub fn write_all_in_child(fd: RawFd, bytes: &[u8]) -> io::Result<()> {
    let mut written = 0;
    while written < bytes.len() {
        let rest = &bytes[written..];
        // SAFETY: `rest` is valid for reads of its length for the whole call.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        match usize::try_from(n) {
            Ok(n) => written += n,
            Err(_) if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(io::Error::last_os_error()),
        }
    }
    Ok(())
}

/// Reads one byte from `fd`, again after EINTR; None at end of file.
///
/// # Errors
///
/// When read fails other than by `EINTR`.
pub fn read_byte_in_child(fd: RawFd) -> io::Result<Option<u8>> {
    let mut byte = 0u8;
    loop {
        // SAFETY: one writable byte for the whole call.
        match unsafe { libc::read(fd, (&raw mut byte).cast(), 1) } {
            1 => return Ok(Some(byte)),
            0 => return Ok(None),
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return Err(io::Error::last_os_error()),
        }
    }
}

/// `clock_gettime(2)` of `clock` in nanoseconds; None if the kernel has no such clock.
#[must_use]
pub fn clock_ns(clock: libc::clockid_t) -> Option<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(clock, &raw mut ts) };
    (rc == 0).then(|| i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
}

/// sysconf(_`SC_CLK_TCK)`: the clock ticks /proc counts times in (`USER_HZ`).
#[must_use]
pub fn clock_ticks() -> i64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }
}

/// Whether `RLIMIT_MEMLOCK`'s hard limit is unlimited.
#[must_use]
pub fn memlock_unlimited() -> bool {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a plain system call writing into a valid struct.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &raw mut limit) } == 0;
    ok && limit.rlim_max == libc::RLIM_INFINITY
}

/// Lifts `RLIMIT_MEMLOCK`. Failure only matters on the old kernels that charge BPF maps to
/// it, where the load error that follows says so.
pub fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a plain system call with a valid pointer.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const unlimited) };
}

/// Mounts tracefs at `target`.
///
/// # Errors
///
/// When mount fails (`EBUSY` included: the caller decides).
pub fn mount_tracefs(target: &CStr) -> io::Result<()> {
    const SOURCE: &CStr = c"nodev";
    const FSTYPE: &CStr = c"tracefs";
    // SAFETY: all strings are NUL-terminated and outlive the call; tracefs takes no data.
    let rc = unsafe {
        libc::mount(
            SOURCE.as_ptr(),
            target.as_ptr(),
            FSTYPE.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The effective uid.
#[must_use]
pub fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// An exclusive flock(2) on `file`, without waiting: false when another holds one.
///
/// # Errors
///
/// When flock fails other than because of another lock.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor `file` keeps open; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

/// (bytes available to unprivileged users, bytes in all) of the file system holding
/// `dir`.
#[must_use]
pub fn free_space(dir: &Path) -> Option<(u64, u64)> {
    let dir = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data; all zeroes is a valid value to overwrite.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is NUL-terminated and `stat` is writable, both for the whole call.
    if unsafe { libc::statvfs(dir.as_ptr(), &raw mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize;
    Some((
        stat.f_bavail.saturating_mul(block),
        stat.f_blocks.saturating_mul(block),
    ))
}

/// The kernel's records, as tracer-common lays them out: `#[repr(C)]`, made of integers
/// and byte arrays, padded with explicit fields, so every bit pattern of their size is
/// a valid value and every byte of one is initialised.
pub trait Record: Copy + private::Sealed {}

mod private {
    pub trait Sealed {}
}

macro_rules! records {
    ($($t:ty),+) => {
        $(impl private::Sealed for $t {} impl Record for $t {})+
    };
}

records!(
    tracer_common::EventHeader,
    tracer_common::SignalEvent,
    tracer_common::FailedSendEvent,
    tracer_common::ExecEvent,
    tracer_common::ForkEvent,
    tracer_common::ExitEvent,
    tracer_common::OomVictimEvent,
    tracer_common::RepeatsEvent
);

/// A `T` read from the start of `bytes`; None when `bytes` is shorter than one.
#[must_use]
pub fn read_record<T: Record>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: the length is checked above; any bit pattern is a valid `T` (see
    // [`Record`]); read_unaligned needs no alignment.
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// The bytes of a record, as the kernel would write it.
pub fn record_bytes<T: Record>(value: &T) -> Vec<u8> {
    // SAFETY: `value` is a valid reference for `size_of::<T>()` bytes, all of them
    // initialised (see [`Record`]).
    unsafe {
        std::slice::from_raw_parts(std::ptr::from_ref::<T>(value).cast::<u8>(), size_of::<T>())
    }
    .to_vec()
}
