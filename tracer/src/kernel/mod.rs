//! The kernel side: loading and attaching the eBPF programs, probing what the kernel
//! offers, reading the ring buffer and decoding its records, and every raw system call.

pub mod decode;
pub mod doctor;
pub mod load;
pub mod probe;
pub mod stream;
pub mod sys;
pub mod tracefs;
