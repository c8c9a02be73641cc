//! sigwho's eBPF programs. Built only for the BPF target (by tracer/build.rs through
//! aya-build); on the host this binary is an empty stub so that the workspace builds.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod programs;

#[cfg(not(target_arch = "bpf"))]
fn main() {}
