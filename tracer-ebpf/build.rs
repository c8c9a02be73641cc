//! Compiles the CO-RE shim (shim/core.c) to LLVM bitcode that bpf-linker links into the
//! eBPF object. Only the BPF build needs it; on the host this crate is an empty stub.

use std::{env, path::PathBuf, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=shim/core.c");
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("bpf") {
        return;
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out_dir.join("core.bc");
    let clang = env::var("SIGWHO_CLANG").unwrap_or_else(|_| "clang-22".to_owned());
    let multiarch = format!("-I/usr/include/{}-linux-gnu", host_arch());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-emit-llvm", "-c"])
        .arg(&multiarch)
        .arg(format!("-D__TARGET_ARCH_{}", kernel_arch()))
        .arg("shim/core.c")
        .arg("-o")
        .arg(&object)
        .status()
        .unwrap_or_else(|error| panic!("cannot run {clang} (run `cargo xtask setup`): {error}"));
    assert!(status.success(), "{clang} failed to compile shim/core.c");
    println!("cargo:rustc-link-arg={}", object.display());
}

/// The kernel's name for the architecture the programs will run on (the host's), which
/// selects the `pt_regs` layout in shim/core.c.
fn kernel_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86"
    }
}

/// Debian keeps asm/types.h under the host's multiarch directory.
fn host_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else {
        "x86_64"
    }
}
