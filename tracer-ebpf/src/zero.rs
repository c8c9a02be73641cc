//! Zeroing without memset().
//!
//! The BPF target has no memset of its own: LLVM calls one for any zeroing of 32 bytes
//! or more (a `Default` struct, `[0u64; 4]`, four adjacent stores), and the one linked
//! in (aya-ebpf's) stores a byte at a time, five instructions per byte. On the path
//! every signal of a storm takes that was 256 bytes, about 1,300 instructions
//! (docs/performance.md, session 8). Volatile word stores cannot be merged back into
//! a memset() call.

use core::{mem::MaybeUninit, ptr::write_volatile};

/// Zeroes `slot` a word at a time and gives it back initialised, in place. Not a
/// function returning the value: copied out, a zeroed value is known to LLVM as
/// zeros and the copy becomes a memset() call again, and a 128-byte key would take a
/// second stack slot (the verifier allows 512 bytes for all frames of a call chain).
///
/// Safety: all zeros is a valid `T` (a Pod record or key, an integer array).
#[inline(always)]
pub(crate) unsafe fn zeroed_in<T>(slot: &mut MaybeUninit<T>) -> &mut T {
    const {
        assert!(size_of::<T>() % 8 == 0 && align_of::<T>() >= 8);
    }
    let words = slot.as_mut_ptr().cast::<u64>();
    let mut i = 0;
    while i < size_of::<T>() / 8 {
        // SAFETY: word `i` is inside `value` (its size is a multiple of 8, checked
        // above) and aligned (T's alignment is at least 8).
        unsafe { write_volatile(words.add(i), 0) };
        i += 1;
    }
    // SAFETY: every byte was written, and all zeros is a valid T (this function's
    // contract).
    unsafe { slot.assume_init_mut() }
}
