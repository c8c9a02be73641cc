//! Reading signal_generate's `struct kernel_siginfo *`: which kind of pointer it is, and
//! its fields at their user-ABI offsets.

use aya_ebpf::helpers::generated::bpf_probe_read_kernel;

use core::mem::MaybeUninit;

use crate::task::{sw_siginfo_kind, sw_siginfo_words};

// siginfo's layout is user ABI (include/uapi/asm-generic/siginfo.h: si_signo, si_errno,
// si_code, then the union at offset 16 on 64-bit), and kernel_siginfo is its prefix, so
// these offsets are fixed by the ABI, not by one kernel build.
pub(crate) const SI_ERRNO: u64 = 4;
pub(crate) const SI_CODE: u64 = 8;
pub(crate) const SI_PID: u64 = 16;
pub(crate) const SI_UID: u64 = 20;
pub(crate) const SI_VALUE: u64 = 24;
pub(crate) const SI_ADDR: u64 = 16;
// include/linux/sched/signal.h: SEND_SIG_NOINFO and SEND_SIG_PRIV are the pointers 0, 1.
// The pointer is never compared in Rust: see sw_siginfo_kind (shim/core.c).
pub(crate) const SIGINFO_NONE: u32 = 10;
pub(crate) const SIGINFO_PRIV: u32 = 11;

/// Which of SEND_SIG_NOINFO, SEND_SIG_PRIV or a real siginfo `info` is, as
/// sw_siginfo_kind says it (SIGINFO_NONE, SIGINFO_PRIV or anything else).
#[inline(always)]
pub(crate) fn siginfo_kind(info: u64) -> u32 {
    // SAFETY: compares its argument with 0 and 1; reads nothing.
    unsafe { sw_siginfo_kind(info) }
}
pub(crate) const SI_USER: i32 = 0;
pub(crate) const SI_KERNEL: i32 = 0x80;
pub(crate) const SI_TIMER: i32 = -2;

/// A `T` read from kernel address `addr` with bpf_probe_read_kernel(); T's default
/// where it cannot be read.
///
/// Safety: every bit pattern is a valid `T` (the helper writes whatever bytes are there).
pub(crate) unsafe fn read_kernel<T: Default>(addr: u64) -> T {
    let mut value = T::default();
    // SAFETY: the helper writes at most size_of::<T>() bytes into `value`, a live local,
    // and they make a valid T (this function's contract); it reads `addr` through the
    // fault-catching helper, whatever the address.
    unsafe {
        bpf_probe_read_kernel(
            (&raw mut value).cast(),
            size_of::<T>() as u32,
            addr as *const core::ffi::c_void,
        );
    }
    value
}

/// signal_generate's siginfo (a real one: not SEND_SIG_NOINFO/PRIV) as four words.
#[inline(always)]
pub(crate) fn siginfo_words(info: u64) -> [u64; 4] {
    // Not zeroed first: a memset() call (zero.rs), and the shim writes every word.
    let mut words = MaybeUninit::<[u64; 4]>::uninit();
    // SAFETY: the shim writes the four words of `words`, a live local, on every path
    // (the read, or zeros where it fails), reading `info` with a probe read, whatever
    // the address; so they are initialised after it.
    unsafe {
        sw_siginfo_words(info, words.as_mut_ptr());
        words.assume_init()
    }
}

/// The 32-bit field at `offset` of a siginfo read as four words (offsets from 0 to 24;
/// BPF targets are little-endian, so the lower half of a word comes first).
#[inline(always)]
pub(crate) fn siginfo_field(words: &[u64; 4], offset: u64) -> u32 {
    let word = words[(offset / 8) as usize & 3];
    (word >> ((offset % 8) * 8)) as u32
}

pub(crate) fn is_fault(sig: i32) -> bool {
    // SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV: si_addr is the faulting address.
    matches!(sig, 4 | 5 | 7 | 8 | 11)
}
