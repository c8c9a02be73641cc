//! The guest's initramfs: a static busybox, the few modules needed to reach the host's
//! root over virtiofs, and an /init that runs one script and powers off.
//!
//! A distribution initramfs would probe hardware, start udev and wait for devices: 3-5 s
//! more per boot under emulation, and nothing the matrix needs.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::kernels::{Kernel, run_quiet};
use crate::cargo::show;

/// busybox-static's binary: the initramfs has no libc to link against.
pub const BUSYBOX: &str = "/bin/busybox";

/// What the guest needs before the root is mounted: virtio PCI and virtiofs for the
/// host's root, overlay for a writable layer over it. Built in on 6.12 and later.
const MODULES: &[&str] = &["virtio_pci", "virtiofs", "overlay"];

/// The serial ports, as the host wires them (see guest.rs): ttyS0 the kernel console,
/// ttyS1 the script's stdout, ttyS2 its stderr, ttyS3 the status channel, on which the
/// guest writes `up` when the script starts and `exit N` when it ends.
///
/// Each port is opened once and kept open, set raw so that output crosses byte for byte
/// (no \n to \r\n). `stty` after the script waits for the port to drain (busybox applies
/// settings with TCSADRAIN), so that poweroff cannot cut the end of the output.
///
/// The host's root is shared read-only; the overlay on a tmpfs makes the guest's view
/// writable (the suite writes in /tmp and target/) and throws the writes away. /run and
/// /dev/shm are tmpfs of their own, empty as on a fresh boot; /tmp is not, because the
/// workspace itself may live there (a CI clone in /tmp must stay visible).
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /bin
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
fail() { echo "vmtest-init: $*"; poweroff -f; sleep 60; }
while read -r m; do insmod "/modules/$m" || fail "insmod $m failed"; done </modules/order
script=
for word in $(cat /proc/cmdline); do
    case "$word" in vmtest.script=*) script=${word#vmtest.script=} ;; esac
done
[ -n "$script" ] || fail "no vmtest.script= on the kernel command line"
mkdir -p /lower /rw /newroot
mount -t virtiofs -o ro vmtest-root /lower || fail "cannot mount the host's root (virtiofs)"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
    fail "cannot mount the overlay"
n=/newroot
mount -t proc proc $n/proc
mount -t sysfs sysfs $n/sys
mount -t devtmpfs devtmpfs $n/dev
mkdir -p $n/dev/pts $n/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts $n/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $n/dev/shm
mount -t tmpfs -o mode=0755 tmpfs $n/run
mount -t tracefs tracefs $n/sys/kernel/tracing || fail "cannot mount tracefs"
mount -t debugfs debugfs $n/sys/kernel/debug
mount -t bpf bpf $n/sys/fs/bpf || fail "cannot mount bpffs"
mount -t cgroup2 cgroup2 $n/sys/fs/cgroup || fail "cannot mount cgroup2"
# Tools that read the running kernel's config (bpftool feature, sigwho doctor) find it.
[ -f /config ] && [ -d $n/boot ] && cp /config "$n/boot/config-$(uname -r)"
hostname vmtest
ip link set lo up
exec 5<>/dev/ttyS1 6<>/dev/ttyS2 7<>/dev/ttyS3
for fd in 5 6 7; do stty raw -echo <&$fd || fail "stty on fd $fd"; done
# The script writes into pipes, as on the host: on a tty, programs would switch to line
# buffering, columns and colours.
mkfifo /out /err
cat /out >&5 &
out=$!
cat /err >&6 &
err=$!
echo up >&7
# A session of its own, as a service or a login shell would have: children of pid 1 are
# otherwise in process group 0, which no real process is.
chroot $n /usr/bin/setsid --wait /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb LANG=C.UTF-8 /bin/bash "$script" >/out 2>/err </dev/null 5>&- 6>&- 7>&-
rc=$?
# A background process the script left behind may hold the pipes open: the copies get 2 s
# to reach the end of what was written, then stop.
(sleep 2; kill $out $err 2>/dev/null) &
wait $out $err
stty raw -echo <&5
stty raw -echo <&6
echo "exit $rc" >&7
stty raw -echo <&7
echo "vmtest-init: script exited with $rc; full kernel log follows"
dmesg
poweroff -f
"#;

/// The initramfs for `kernel`, built once and kept next to the unpacked kernel; rebuilt
/// when /init or busybox change.
pub fn build(kernel: &Kernel) -> Result<PathBuf> {
    let image = kernel.root.join("vmtest-initramfs.cpio");
    let key_file = kernel.root.join("vmtest-initramfs.key");
    let busybox = fs::metadata(BUSYBOX)
        .with_context(|| format!("{BUSYBOX} is missing (Debian package busybox-static)"))?;
    let key = format!("{INIT}\nbusybox {} {}\n", busybox.len(), busybox.mtime());
    if image.is_file() && fs::read_to_string(&key_file).ok().as_deref() == Some(key.as_str()) {
        return Ok(image);
    }
    let staging = kernel.root.join("vmtest-initramfs.d");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    for dir in ["bin", "modules", "proc", "sys", "dev"] {
        fs::create_dir_all(staging.join(dir))?;
    }
    fs::copy(BUSYBOX, staging.join("bin/busybox")).context("could not copy busybox")?;
    write_executable(&staging.join("init"), INIT)?;
    if let Some(config) = &kernel.config {
        fs::copy(config, staging.join("config"))?;
    }
    let mut order = String::new();
    for module in module_files(kernel)? {
        let name = decompress_into(&module, &staging.join("modules"))?;
        order.push_str(&name);
        order.push('\n');
    }
    fs::write(staging.join("modules/order"), order)?;

    let partial = image.with_extension("cpio.partial");
    pack(&staging, &partial)?;
    fs::rename(&partial, &image)?;
    fs::write(&key_file, key)?;
    fs::remove_dir_all(&staging)?;
    eprintln!(
        "vmtest: {}: initramfs built ({} KiB)",
        kernel.series.label(),
        fs::metadata(&image)?.len() / 1024
    );
    Ok(image)
}

pub fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The module files to load, dependencies first, as modprobe resolves them against the
/// unpacked tree (built-in modules print as `builtin NAME` and need nothing).
fn module_files(kernel: &Kernel) -> Result<Vec<PathBuf>> {
    let mut modprobe = Command::new("modprobe");
    modprobe
        .arg("-d")
        .arg(&kernel.root)
        .args(["-S", &kernel.release, "-a", "--show-depends"])
        .args(MODULES);
    let out = run_quiet(&mut modprobe)?;
    let mut files: Vec<PathBuf> = Vec::new();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("insmod"), Some(path)) => {
                let path = PathBuf::from(path);
                if !files.contains(&path) {
                    files.push(path);
                }
            }
            (Some("builtin"), _) => {}
            _ => bail!("unexpected line from {}: {line}", show(&modprobe)),
        }
    }
    Ok(files)
}

/// Copies a module into `dir`, uncompressed: busybox's insmod cannot read .ko.xz/.ko.zst,
/// and the guest has no decompressor for them.
fn decompress_into(module: &Path, dir: &Path) -> Result<String> {
    let name = module
        .file_name()
        .context("module path without a file name")?
        .to_string_lossy()
        .into_owned();
    let (plain, tool): (&str, Option<[&str; 2]>) = if let Some(stem) = name.strip_suffix(".xz") {
        (stem, Some(["xz", "-dc"]))
    } else if let Some(stem) = name.strip_suffix(".zst") {
        (stem, Some(["zstd", "-qdc"]))
    } else if let Some(stem) = name.strip_suffix(".gz") {
        (stem, Some(["gzip", "-dc"]))
    } else {
        (name.as_str(), None)
    };
    let dest = dir.join(plain);
    match tool {
        None => {
            fs::copy(module, &dest)?;
        }
        Some([program, flag]) => {
            let out = fs::File::create(&dest)?;
            let mut cmd = Command::new(program);
            cmd.arg(flag).arg(module).stdout(out);
            let status = cmd
                .status()
                .with_context(|| format!("could not run {}", show(&cmd)))?;
            if !status.success() {
                bail!("{} failed ({status})", show(&cmd));
            }
        }
    }
    Ok(plain.to_owned())
}

/// A newc cpio archive of `dir`, as the kernel unpacks an initramfs.
fn pack(dir: &Path, dest: &Path) -> Result<()> {
    let mut names = Vec::new();
    walk(dir, Path::new("."), &mut names)?;
    let out = fs::File::create(dest)?;
    let mut cpio = Command::new("cpio");
    cpio.args(["-o", "-H", "newc", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(out);
    let mut child = cpio
        .spawn()
        .with_context(|| format!("could not run {} (Debian package cpio)", show(&cpio)))?;
    let mut stdin = child.stdin.take().context("cpio has no stdin")?;
    for name in &names {
        writeln!(stdin, "{}", name.display())?;
    }
    drop(stdin);
    let status = child.wait()?;
    if !status.success() {
        bail!("{} failed ({status})", show(&cpio));
    }
    Ok(())
}

fn walk(root: &Path, rel: &Path, names: &mut Vec<PathBuf>) -> Result<()> {
    names.push(rel.to_path_buf());
    let dir = root.join(rel);
    if !fs::symlink_metadata(&dir)?.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<_> = fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for name in entries {
        walk(root, &rel.join(name), names)?;
    }
    Ok(())
}
