//! Builds tracer-ebpf for the BPF target and leaves the object in OUT_DIR, where
//! src/load.rs embeds it: the `sigwho` binary carries its programs and needs nothing
//! else on the machine it runs on.

fn main() -> anyhow::Result<()> {
    // Debian's rustc (linked as the rustup toolchain `debian` by `cargo xtask setup`)
    // ships core's sources but is a stable compiler; bootstrap mode lets it take
    // `-Z build-std=core`, which the BPF target needs. Only the nested build sees this.
    // SAFETY: build scripts are single-threaded at this point.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
    let package = aya_build::Package {
        name: "tracer-ebpf",
        root_dir: "../tracer-ebpf",
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::Custom("debian"))
}
