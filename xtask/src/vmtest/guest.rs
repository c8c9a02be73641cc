//! Running a script in a qemu guest (or natively, for the host's own kernel) and getting
//! back its stdout, stderr and exit status.
//!
//! Why it is wired this way (../shared/KERNELS.md has the measurements):
//! - TCG with one thread: KVM cannot run the stock kernels on these machines, and
//!   thread=multi Oopses in 1-2 % of boots while the kernel patches its own text.
//! - The host's root over virtiofs, because cloud kernels have no 9p. It is exported as
//!   a read-only, non-recursive bind made in a private mount namespace: the guest can
//!   neither write to the host nor see the host's /proc, /sys and /dev.
//! - The script's stdout, stderr and status each on a serial port of its own, read on
//!   the host through FIFOs: qemu writes a chardev file from its own offset, so pointing
//!   it at our stdout would clobber output.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::initramfs::write_executable;
use super::kernels::Kernel;
use crate::cargo::show;

pub const QEMU: &str = "qemu-system-x86_64";
/// qemu 7.2's C virtiofsd (package qemu-system-common); the Rust one would need a
/// minute of `cargo install` and buys nothing here.
pub const VIRTIOFSD: &str = "/usr/lib/qemu/virtiofsd";
const ROOT_TAG: &str = "vmtest-root";

/// How a run's output reaches the terminal while it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Byte for byte, for `--exec` with one guest at a time.
    Raw,
    /// Line by line with `[label] ` in front: several guests at once.
    Prefixed,
    /// Not at all: shown by the caller when the run ends.
    Quiet,
}

/// Where a run happens.
pub enum Machine<'a> {
    Host,
    Guest(&'a Guest),
}

/// A guest's hardware and what it boots.
pub struct Guest {
    pub kernel: Kernel,
    pub initramfs: PathBuf,
    pub cpus: u32,
    pub memory_mib: u32,
    /// Host mount points besides `/` the guest must see (a workspace or target dir on
    /// another file system), outermost first.
    pub extra_mounts: Vec<PathBuf>,
}

pub struct Run<'a> {
    pub label: &'a str,
    /// target/vmtest/LABEL: logs, FIFOs, the export mount point.
    pub dir: &'a Path,
    /// The script to run, by its host path (the guest sees the host's root).
    pub script: &'a Path,
    pub timeout: Duration,
    pub echo: Echo,
    /// Writes DIR/boot.sh, which boots the same guest again by hand.
    pub keep: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The script ran to its end with this exit status.
    Exited(i32),
    /// The wall-clock limit passed; qemu (or the script) was killed.
    TimedOut,
    /// The guest stopped without reporting a status: a boot failure, a panic, an init
    /// that could not mount the root (console.log says which).
    NoStatus(String),
}

pub struct Outcome {
    pub end: End,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// From start to the moment the guest's init reported `up` (the script started).
    pub boot: Option<Duration>,
    pub total: Duration,
}

pub fn run(machine: &Machine<'_>, run: &Run<'_>) -> Result<Outcome> {
    fs::create_dir_all(run.dir)
        .with_context(|| format!("could not create {}", run.dir.display()))?;
    match machine {
        Machine::Host => run_host(run),
        Machine::Guest(guest) => run_guest(guest, run),
    }
}

fn run_host(run: &Run<'_>) -> Result<Outcome> {
    let start = Instant::now();
    let mut cmd = Command::new("bash");
    cmd.arg(run.script)
        .env_clear()
        .envs(base_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so that a timeout kills the test's children too.
        .process_group(0);
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| match die_with_parent() {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not run {}", show(&cmd)))?;
    let out = Reader::start(child.stdout.take(), run, Stream::Stdout)?;
    let err = Reader::start(child.stderr.take(), run, Stream::Stderr)?;
    let exited = wait_until(&mut child, start + run.timeout)?;
    // Whatever the script left behind (or everything, on a timeout) goes too: it would
    // hold the pipes open, and the next kernel's run should not meet it. The group
    // outlives the script only through such processes, so its id cannot have been reused.
    if let Ok(group) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) takes two integers and touches no memory of ours; the group is
        // the one created above (see why its id is still ours).
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    let end = if let Some(status) = exited {
        End::Exited(crate::cargo::shell_code(status).into())
    } else {
        let _ = child.wait();
        End::TimedOut
    };
    Ok(Outcome {
        end,
        stdout: out.finish(),
        stderr: err.finish(),
        boot: None,
        total: start.elapsed(),
    })
}

/// The environment a script starts with, on the host as in a guest (init passes the
/// same): nothing of the caller's, so that a run does not depend on who started it.
fn base_env() -> [(&'static str, &'static str); 4] {
    [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("HOME", "/root"),
        ("TERM", "dumb"),
        ("LANG", "C.UTF-8"),
    ]
}

fn run_guest(guest: &Guest, run: &Run<'_>) -> Result<Outcome> {
    let script = run.script.to_str().context("script path is not UTF-8")?;
    if script.contains(char::is_whitespace) {
        bail!(
            "the script's path has white space, which the kernel command line cannot carry: {script}"
        );
    }
    let dir = run.dir;
    let fifo = |name: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        let _ = fs::remove_file(&path);
        let c = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: mkfifo(3) on a NUL-terminated path.
        if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("could not create FIFO {}", path.display()));
        }
        Ok(path)
    };
    // Nothing of an earlier run may pass for this one's (qemu truncates console.log only
    // once it starts).
    for old in [
        "console.log",
        "qemu.log",
        "boot-stdout.log",
        "boot-stderr.log",
    ] {
        let _ = fs::remove_file(dir.join(old));
    }
    let stdout_fifo = fifo("stdout.fifo")?;
    let stderr_fifo = fifo("stderr.fifo")?;
    let status_fifo = fifo("status.fifo")?;
    let export = dir.join("export");
    fs::create_dir_all(&export)?;
    // A unix socket path is limited to 108 bytes; a workspace deep in a CI runner's tree
    // would pass it.
    let socket = std::env::temp_dir().join(format!(
        "sigwho-vmtest-{}-{}.sock",
        std::process::id(),
        run.label
    ));
    let _ = fs::remove_file(&socket);

    let start = Instant::now();
    let mut virtiofsd = VirtioFsd::start(guest, &export, &socket, dir)?;
    let mut qemu_cmd = qemu_command(
        guest,
        run,
        &socket,
        [&stdout_fifo, &stderr_fifo, &status_fifo],
    )?;
    if run.keep {
        let boot = boot_script(guest, run, &export, &socket)?;
        write_executable(&dir.join("boot.sh"), &boot)?;
    }
    // The readers open their FIFOs first; each open blocks until qemu opens the other
    // end, or until `unblock` does when qemu never gets that far.
    let out = Reader::start_fifo(&stdout_fifo, run, Stream::Stdout);
    let err = Reader::start_fifo(&stderr_fifo, run, Stream::Stderr);
    let status = Reader::start_fifo(&status_fifo, run, Stream::Status);
    let qemu = qemu_cmd
        .spawn()
        .with_context(|| format!("could not run {QEMU} (Debian package qemu-system-x86)"));
    let mut qemu = match qemu {
        Ok(qemu) => qemu,
        Err(err) => {
            virtiofsd.stop();
            for path in [&stdout_fifo, &stderr_fifo, &status_fifo] {
                unblock(path);
            }
            return Err(err);
        }
    };
    let exited = wait_until(&mut qemu, start + run.timeout)?;
    let timed_out = exited.is_none();
    if timed_out {
        let _ = qemu.kill();
        let _ = qemu.wait();
    }
    for path in [&stdout_fifo, &stderr_fifo, &status_fifo] {
        unblock(path);
    }
    virtiofsd.stop();
    let _ = fs::remove_file(&socket);
    let stdout = out.finish();
    let stderr = err.finish();
    let status_lines = status.finish_lines();
    for path in [&stdout_fifo, &stderr_fifo, &status_fifo] {
        let _ = fs::remove_file(path);
    }

    let boot = status_lines
        .iter()
        .find(|(_, line)| line == "up")
        .map(|(at, _)| at.duration_since(start));
    let code = status_lines
        .iter()
        .find_map(|(_, line)| line.strip_prefix("exit ")?.trim().parse::<i32>().ok());
    Ok(Outcome {
        end: guest_end(code, exited, boot.is_some(), &dir.join("console.log")),
        stdout,
        stderr,
        boot,
        total: start.elapsed(),
    })
}

/// How a guest run ended: the script's exit status when the guest reported it, else why
/// there is none (`exited`: qemu's status, None when it was killed at the timeout).
fn guest_end(
    code: Option<i32>,
    exited: Option<std::process::ExitStatus>,
    booted: bool,
    console: &Path,
) -> End {
    match (code, exited) {
        (Some(code), _) => End::Exited(code),
        (None, None) => End::TimedOut,
        (None, Some(status)) if booted => End::NoStatus(format!(
            "the guest stopped while the script ran, without its exit status (qemu: \
             {status}); see {}",
            console.display()
        )),
        (None, Some(status)) => End::NoStatus(format!(
            "the guest stopped before the script started (qemu: {status}); see {}",
            console.display()
        )),
    }
}

/// A script that boots the guest again as this run did, for a developer to tinker with
/// (another command line, a gdb stub, more logging): the same virtiofsd export made with
/// unshare(1) and mount(8), the same qemu, with the script's output in files.
fn boot_script(guest: &Guest, run: &Run<'_>, export: &Path, socket: &Path) -> Result<String> {
    let dir = run.dir;
    let files = ["boot-stdout.log", "boot-stderr.log", "boot-status.log"].map(|f| dir.join(f));
    let mut qemu = qemu_command(guest, run, socket, [&files[0], &files[1], &files[2]])?;
    qemu.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    let mut binds = vec![(PathBuf::from("/"), export.to_path_buf())];
    for mount in &guest.extra_mounts {
        binds.push((
            mount.clone(),
            export.join(mount.strip_prefix("/").unwrap_or(mount)),
        ));
    }
    let mounts: Vec<String> = binds
        .iter()
        .map(|(source, target)| {
            format!(
                "mount --bind {} {t} && mount -o remount,bind,ro {t}",
                sh_word(&source.display().to_string()),
                t = sh_word(&target.display().to_string())
            )
        })
        .collect();
    let virtiofsd = virtiofsd_command(export, socket);
    let inner = format!("{} && exec {}", mounts.join(" && "), sh_line(&virtiofsd));
    Ok(format!(
        "#!/bin/bash\n\
         # Written by cargo xtask vmtest --keep: boots the {label} guest again as the last run \
         did,\n\
         # running {script}; its stdout, stderr and status end up in {dir}/boot-*.log and the \
         kernel log in console.log.\n\
         set -eu\n\
         rm -f {socket}\n\
         unshare -m --propagation private sh -c {inner} &\n\
         trap 'kill $! 2>/dev/null || true' EXIT\n\
         while [ ! -S {socket} ]; do sleep 0.1; done\n\
         {qemu}\n",
        label = run.label,
        script = run.script.display(),
        dir = dir.display(),
        socket = sh_word(&socket.display().to_string()),
        inner = sh_word(&inner),
        qemu = sh_line(&qemu),
    ))
}

/// A command as bash would read it back.
fn sh_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|w| sh_word(&w.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn sh_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/.,:=_+-@%".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// qemu's option syntax takes `,` as a separator; a literal one is doubled.
fn qemu_path(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

fn qemu_command(
    guest: &Guest,
    run: &Run<'_>,
    socket: &Path,
    [stdout, stderr, status]: [&PathBuf; 3],
) -> Result<Command> {
    let dir = run.dir;
    let mem = format!("{}M", guest.memory_mib);
    let mut cmd = Command::new(QEMU);
    cmd.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ])
    .args(["-accel", "tcg,thread=single", "-cpu", "max"])
    .args(["-smp", &guest.cpus.to_string(), "-m", &mem])
    // vhost-user needs the guest's memory in a shared memfd.
    .arg("-object")
    .arg(format!("memory-backend-memfd,id=mem,size={mem},share=on"))
    .args(["-machine", "pc,memory-backend=mem"])
    .arg("-chardev")
    .arg(format!("socket,id=vfs,path={}", qemu_path(socket)))
    .arg("-device")
    .arg(format!("vhost-user-fs-pci,chardev=vfs,tag={ROOT_TAG}"))
    .arg("-kernel")
    .arg(&guest.kernel.vmlinuz)
    .arg("-initrd")
    .arg(&guest.initramfs)
    .arg("-append")
    .arg(format!(
        // panic=-1 and -no-reboot: a panic ends qemu instead of hanging until the
        // timeout. edd=off skips a BIOS probe. random.trust_cpu: 5.10 and 6.1 would
        // otherwise wait for entropy in early getrandom() callers. no_timer_check: on a
        // loaded host, emulation can be too slow for the boot-time check that the IO-APIC
        // timer ticks, and the kernel panics ("IO-APIC + timer doesn't work", seen on
        // 6.12); the check is pointless in a VM.
        "console=ttyS0 loglevel=4 panic=-1 rdinit=/init mitigations=off edd=off \
             random.trust_cpu=on no_timer_check vmtest.script={}",
        run.script.display()
    ));
    let ports: [(&str, PathBuf); 4] = [
        ("ttyS0", dir.join("console.log")),
        ("ttyS1", stdout.clone()),
        ("ttyS2", stderr.clone()),
        ("ttyS3", status.clone()),
    ];
    for (id, path) in &ports {
        cmd.arg("-chardev")
            .arg(format!("file,id={id},path={}", qemu_path(path)))
            .arg("-serial")
            .arg(format!("chardev:{id}"));
    }
    let log = File::create(dir.join("qemu.log"))?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| match die_with_parent() {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        });
    }
    Ok(cmd)
}

/// cache=always: the export is a read-only snapshot for the run's length (overlayfs
/// forbids a lower layer that changes anyway), so the guest may keep what it read. With
/// cache=auto every open drops the file's pages and every exec reads its binary and
/// libraries again through virtiofs: 200 ms per /bin/true instead of 50 ms, a quarter of
/// the suite's time.
fn virtiofsd_command(export: &Path, socket: &Path) -> Command {
    let mut cmd = Command::new(VIRTIOFSD);
    cmd.arg(format!("--socket-path={}", socket.display()))
        .arg("-o")
        .arg(format!("source={},cache=always", export.display()))
        .args(["-o", "log_level=warn"]);
    cmd
}

struct VirtioFsd {
    child: Option<Child>,
}

impl VirtioFsd {
    fn start(guest: &Guest, export: &Path, socket: &Path, dir: &Path) -> Result<Self> {
        let mut binds = vec![(c"/".to_owned(), cstring(export)?)];
        for mount in &guest.extra_mounts {
            let inside = export.join(mount.strip_prefix("/").unwrap_or(mount));
            binds.push((cstring(mount)?, cstring(&inside)?));
        }
        let log = File::create(dir.join("virtiofsd.log"))?;
        let mut cmd = virtiofsd_command(export, socket);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: only async-signal-safe system calls between fork and exec, on strings
        // allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let check = |rc: libc::c_int| {
                    if rc == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                };
                check(die_with_parent())?;
                check(libc::unshare(libc::CLONE_NEWNS))?;
                // Nothing mounted from here on may reach the host's namespace.
                check(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                for (source, target) in &binds {
                    check(libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ))?;
                    check(libc::mount(
                        std::ptr::null(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        std::ptr::null(),
                    ))?;
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().with_context(|| {
            format!("could not run {VIRTIOFSD} (Debian package qemu-system-common)")
        })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "virtiofsd exited ({status}) before creating its socket: {}",
                    fs::read_to_string(dir.join("virtiofsd.log"))
                        .unwrap_or_default()
                        .trim()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("virtiofsd did not create {} within 10 s", socket.display());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(Self { child: Some(child) })
    }

    /// virtiofsd exits by itself when qemu hangs up; killed if it lingers.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for VirtioFsd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `PR_SET_PDEATHSIG`: a child that outlives xtask (killed by CI's own timeout) would run
/// on for up to the whole --timeout, holding a CPU that the next job needs.
///
/// # Safety
/// Only between fork and exec, in the child (prctl is async-signal-safe).
unsafe fn die_with_parent() -> libc::c_int {
    // SAFETY: prctl(2) with integer arguments touches no memory of ours, and is a plain
    // system call, async-signal-safe, so it may run between fork and exec.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) }
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).context("path with a NUL byte")
}

/// Waits for `child` until `deadline`; None when it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Lets a reader blocked in `open()` of a FIFO go: opening the write end (without
/// blocking) and closing it gives the reader an end of file. Fails harmlessly (ENXIO)
/// when no reader is waiting any more.
fn unblock(fifo: &Path) {
    let _ = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo);
}

/// Mount points the guest must see besides `/`: those on the way to each of `paths` (a
/// workspace or target directory on a file system of its own), outermost first. The
/// export binds `/` without its submounts.
pub fn extra_mounts(paths: &[&Path]) -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount_point(p)))
        .filter(|p| p != Path::new("/"))
        .collect();
    let mut needed: Vec<PathBuf> = points
        .into_iter()
        .filter(|p| {
            paths
                .iter()
                .any(|path| path.canonicalize().is_ok_and(|path| path.starts_with(p)))
        })
        .collect();
    needed.sort_by_key(|p| p.components().count());
    needed.dedup();
    needed
}

/// /proc/self/mountinfo writes space, tab, newline and backslash in octal (`\040`).
fn unescape_mount_point(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(b);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
    Status,
}

/// Copies one of the script's streams into memory, a log file in the run's directory,
/// and (per Echo) the terminal.
struct Reader {
    thread: JoinHandle<Vec<u8>>,
    /// For the status channel: each line with the moment it arrived.
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Reader {
    fn start(
        source: Option<impl Read + Send + 'static>,
        run: &Run<'_>,
        stream: Stream,
    ) -> Result<Self> {
        let source = source.context("child without a pipe")?;
        Ok(Self::spawn(move || Ok(source), run, stream))
    }

    fn start_fifo(path: &Path, run: &Run<'_>, stream: Stream) -> Self {
        let path = path.to_path_buf();
        Self::spawn(move || File::open(path), run, stream)
    }

    fn spawn<R: Read>(
        open: impl FnOnce() -> std::io::Result<R> + Send + 'static,
        run: &Run<'_>,
        stream: Stream,
    ) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let lines_in = Arc::clone(&lines);
        let echo = if stream == Stream::Status {
            Echo::Quiet
        } else {
            run.echo
        };
        let prefix = format!("[{}] ", run.label);
        let log_name = match stream {
            Stream::Stdout => "stdout.log",
            Stream::Stderr => "stderr.log",
            Stream::Status => "status.log",
        };
        let log_path = run.dir.join(log_name);
        let thread = thread::spawn(move || {
            let mut all = Vec::new();
            let Ok(mut source) = open() else {
                return all;
            };
            let mut log = File::create(log_path).ok();
            let mut pending = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                let n = match source.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let chunk = &buf[..n];
                let now = Instant::now();
                all.extend_from_slice(chunk);
                if let Some(log) = &mut log {
                    let _ = log.write_all(chunk);
                }
                match echo {
                    Echo::Raw => write_to(stream, chunk),
                    Echo::Prefixed => {
                        pending.extend_from_slice(chunk);
                        while let Some(at) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=at).collect();
                            write_to(stream, &[prefix.as_bytes(), &line].concat());
                        }
                    }
                    Echo::Quiet => {}
                }
                if stream == Stream::Status {
                    pending.extend_from_slice(chunk);
                    while let Some(at) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=at).collect();
                        let text = String::from_utf8_lossy(&line).trim().to_owned();
                        lines_in.lock().unwrap().push((now, text));
                    }
                }
            }
            if echo == Echo::Prefixed && !pending.is_empty() {
                pending.push(b'\n');
                write_to(stream, &[prefix.as_bytes(), &pending].concat());
            }
            all
        });
        Self { thread, lines }
    }

    fn finish(self) -> Vec<u8> {
        self.thread.join().unwrap_or_default()
    }

    fn finish_lines(self) -> Vec<(Instant, String)> {
        let _ = self.thread.join();
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

fn write_to(stream: Stream, bytes: &[u8]) {
    let _ = match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        _ => std::io::stderr().lock().write_all(bytes),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_unescaped() {
        assert_eq!(unescape_mount_point(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape_mount_point("/plain"), "/plain");
    }
}
