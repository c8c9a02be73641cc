//! sigwho's eBPF programs. Built only for the BPF target (by tracer/build.rs through
//! aya-build); on the host this binary is an empty stub so that the workspace builds.
//!
//! Each hook cites the kernel tracepoint it relies on; field offsets are never
//! fixed at build time: BTF tracepoint arguments are type-checked by the kernel against
//! its BTF at load, struct fields are read through CO-RE accessors (shim/core.c), and
//! `syscalls:*` record offsets come from tracefs format files via the `LAYOUTS` global.
//!
//! One module per hook family (signal, request, failed, sched, oom), with what they share
//! in maps (every map and global), log (aya-log diagnostics), record (ring-buffer records), task (the CO-RE shim's
//! accessors), siginfo, cause (cause chains), storm (the recorder's folding), floor (the
//! bench's count-only floor) and zero (zeroing without the byte-wise memset).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(
    target_arch = "bpf",
    expect(
        clippy::needless_borrows_for_generic_args,
        reason = "aya's map methods take keys and values as impl Borrow; passed by value \
                  they are copied to new stack slots, which changes the programs every \
                  verifier of the kernel matrix has passed (signal_generate grows by 26 \
                  instructions)"
    )
)]

#[cfg(target_arch = "bpf")]
mod cause;
#[cfg(target_arch = "bpf")]
mod failed;
#[cfg(target_arch = "bpf")]
mod floor;
#[cfg(target_arch = "bpf")]
mod log;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod oom;
#[cfg(target_arch = "bpf")]
mod record;
#[cfg(target_arch = "bpf")]
mod request;
#[cfg(target_arch = "bpf")]
mod sched;
#[cfg(target_arch = "bpf")]
mod select;
#[cfg(target_arch = "bpf")]
mod siginfo;
#[cfg(target_arch = "bpf")]
mod signal;
#[cfg(target_arch = "bpf")]
mod storm;
#[cfg(target_arch = "bpf")]
mod task;
#[cfg(target_arch = "bpf")]
mod zero;

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(all(target_arch = "bpf", not(test)))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
