//! The records and settings sigwho's eBPF programs (tracer-ebpf) and its userspace
//! (tracer) share: `no_std`, so that both sides build the same definitions; userspace
//! turns on the `user` feature for `aya::Pod`.
//!
//! Every record the kernel side puts into the `EVENTS` ring buffer starts with an
//! [`EventHeader`]; its `kind` says which `#[repr(C)]` record follows (see [`kind`]).
//! Layouts are fixed-size and padding is explicit, so userspace can check a record's
//! length before it reads one (see `tracer::decode`).
#![no_std]
#![expect(
    clippy::pub_underscore_fields,
    reason = "explicit padding (`_pad`) stays public: the eBPF side writes every byte of a record, padding included, so that no kernel memory leaks through it"
)]

mod config;
mod events;
mod fold;

pub use config::*;
pub use events::*;
pub use fold::*;

// Sizes are part of the kernel/userspace contract; a change must be deliberate.
const _: () = assert!(core::mem::size_of::<TaskRef>() == 48);
const _: () = assert!(core::mem::size_of::<Cause>() == 64);
const _: () = assert!(core::mem::size_of::<Ancestor>() == 32);
const _: () = assert!(core::mem::size_of::<Request>() == 32);
const _: () =
    assert!(core::mem::size_of::<SignalEvent>() == 16 + 48 + 96 + 32 + 8 + 256 + 8 + 4 * 64 + 8);
const _: () = assert!(core::mem::size_of::<FoldKey>() == 16 + 32 + 8 + 32 + 32 + 8);
const _: () = assert!(core::mem::size_of::<RepeatsEvent>() == 48);
const _: () = assert!(core::mem::size_of::<ExitEvent>() == 72);
