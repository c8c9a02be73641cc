//! `sigwho-testproc`: the processes the integration tests signal, and the senders that
//! signal them through each kernel interface.
//!
//! ```text
//! sigwho-testproc target [--ignore SIG]... [--handle SIG]... [--threads N] [--setpgid] [--setsid]
//!                        [--relay SIG:PID]... [--pdeathsig SIG] [--cgroup-procs PATH] [--no-stdin]
//! sigwho-testproc parent [--] TARGET_ARGS...
//! sigwho-testproc kill PID SIG[,SIG...]   (PID may be negative: a process group)
//! sigwho-testproc tgkill TGID TID SIG
//! sigwho-testproc tkill TID SIG
//! sigwho-testproc pidfd-send PID SIG      (prints `pidfd=<fd>` before sending)
//! sigwho-testproc sigqueue PID SIG VALUE
//! sigwho-testproc fork-kill PID SIG       (a short-lived child sends; prints `child=<pid>`)
//! sigwho-testproc thread-kill PID SIG     (a second thread sends; prints `tid=<tid>` after)
//! sigwho-testproc kill-exec PID SIG [--] SUBCOMMAND ARGS...
//!                                         (sends, then execs `sigwho-testproc SUBCOMMAND ARGS...`)
//! sigwho-testproc at PID [--] SUBCOMMAND ARGS...
//!                                         (runs `sigwho-testproc SUBCOMMAND ARGS...` as a child
//!                                          created at pid PID with clone3 set_tid; needs root;
//!                                          waits for it and exits with its status)
//! ```
//!
//! `target` prints one line, `ready pid=<pid> pgid=<pgid> tids=<main>,<t1>,...`, then
//! executes commands read line by line from stdin: `segv`, `pipe`, `exit N`, `raise SIG`,
//! `abort`, `alloc MIB` (allocates and touches MIB MiB, then prints `allocated`), `alarm`
//! (dies of SIGALRM a second later), `cpu-limit` (spins under a 1 s `RLIMIT_CPU` until
//! SIGXCPU), `child-exit` (forks a child that exits at once, reaps it, prints
//! `reaped=<pid>`), `ping` (answers `pong`). It exits 0 on stdin EOF.
//!
//! Target options beyond signal dispositions: `--relay SIG:PID` handles SIG by sending SIG
//! to PID with kill(2) and exiting 0 (one relay per signal; several signals may relay);
//! `--pdeathsig SIG` asks for SIG when its parent dies (prctl `PR_SET_PDEATHSIG`, before the
//! ready line); `--cgroup-procs PATH` writes its pid to PATH (a cgroup's `cgroup.procs`)
//! before the ready line; `--no-stdin` ignores stdin and waits in `pause()` until a signal
//! ends it.
//!
//! `parent` prints `parent pid=<pid>`, then forks a child that execs
//! `sigwho-testproc target TARGET_ARGS...` with stdin from /dev/null (pass `--no-stdin`)
//! and stdout/stderr inherited, so the child's `ready` line follows on the same stdout.
//! The parent then reads its own stdin: `exit` makes it exit 0 at once without waiting
//! for the child (which is reparented); on EOF it SIGKILLs and reaps its child and exits 0.
//!
//! Senders exit 0 on success; on failure they print
//! `error: <syscall>: <ERRNO> (<strerror>)` to stderr and exit 1. Usage errors exit 2.
#![expect(
    clippy::similar_names,
    reason = "pid, tid, tgid, sig: the kernel's own names for what this program hands it"
)]

use std::ffi::{CStr, CString, c_int, c_void};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::exit;
use std::sync::atomic::{AtomicI32, Ordering};

const USAGE: &str = "\
usage: sigwho-testproc target [--ignore SIG]... [--handle SIG]... [--threads N] [--setpgid] [--setsid]
                              [--relay SIG:PID]... [--pdeathsig SIG] [--cgroup-procs PATH] [--no-stdin]
       sigwho-testproc parent [--] TARGET_ARGS...
       sigwho-testproc kill PID SIG[,SIG...]
       sigwho-testproc tgkill TGID TID SIG
       sigwho-testproc tkill TID SIG
       sigwho-testproc pidfd-send PID SIG
       sigwho-testproc sigqueue PID SIG VALUE
       sigwho-testproc fork-kill PID SIG
       sigwho-testproc thread-kill PID SIG
       sigwho-testproc kill-exec PID SIG [--] SUBCOMMAND ARGS...
       sigwho-testproc at PID [--] SUBCOMMAND ARGS...
SIG is a number or a name such as TERM, SIGTERM, USR1, RTMIN+2.";

/// The address the `segv` command writes to. Below `vm.mmap_min_addr`, so never mapped:
/// the fault is `SEGV_MAPERR`. (Not null itself: Rust's debug-build precondition checks
/// would turn a volatile write through null into a panic/abort instead of a fault.)
const SEGV_ADDR: usize = 0x10;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        usage("missing subcommand");
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match cmd.as_str() {
        "target" => target(&rest),
        "parent" => parent(&rest),
        "-h" | "--help" | "help" => println!("{USAGE}"),
        sender => send(sender, &rest),
    }
    exit(0);
}

/// The sender subcommands: each sends one signal its own way (and some then go on).
fn send(cmd: &str, rest: &[&str]) {
    match cmd {
        "kill" => {
            let [pid, sigs] = positional(cmd, rest, ["PID", "SIG"]);
            let pid = parse_int(pid, "PID");
            // SIG,SIG...: back to back, as a process that escalates would send them.
            for sig in sigs.split(',').map(parse_signal) {
                // SAFETY: kill(2) takes two integers and touches no memory of ours.
                check("kill", i64::from(unsafe { libc::kill(pid, sig) }));
            }
        }
        "tgkill" => {
            let [tgid, tid, sig] = positional(cmd, rest, ["TGID", "TID", "SIG"]);
            let (tgid, tid, sig) = (
                parse_int(tgid, "TGID"),
                parse_int(tid, "TID"),
                parse_signal(sig),
            );
            // SAFETY: tgkill(2) takes three integers and touches no memory of ours.
            check("tgkill", unsafe {
                libc::syscall(libc::SYS_tgkill, tgid, tid, sig)
            });
        }
        "tkill" => {
            let [tid, sig] = positional(cmd, rest, ["TID", "SIG"]);
            let (tid, sig) = (parse_int(tid, "TID"), parse_signal(sig));
            // SAFETY: tkill(2) takes two integers and touches no memory of ours.
            check("tkill", unsafe { libc::syscall(libc::SYS_tkill, tid, sig) });
        }
        "pidfd-send" => {
            let [pid, sig] = positional(cmd, rest, ["PID", "SIG"]);
            let (pid, sig) = (parse_int(pid, "PID"), parse_signal(sig));
            // SAFETY: pidfd_open(2) takes two integers and returns a new descriptor.
            let fd = check("pidfd_open", unsafe {
                libc::syscall(libc::SYS_pidfd_open, pid, 0)
            });
            let fd = c_int::try_from(fd).expect("a descriptor fits in c_int");
            say(&format!("pidfd={fd}"));
            // SAFETY: pidfd_send_signal(2) takes integers, and a null siginfo, which makes
            // it fill in the same information kill(2) would.
            check("pidfd_send_signal", unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            });
        }
        "sigqueue" => {
            let [pid, sig, value] = positional(cmd, rest, ["PID", "SIG", "VALUE"]);
            let (pid, sig, value) = (
                parse_int(pid, "PID"),
                parse_signal(sig),
                parse_int(value, "VALUE"),
            );
            // union sigval { int sival_int; void *sival_ptr; }: on a 64-bit little-endian
            // machine sival_int is the low 32 bits of the pointer.
            let val = libc::sigval {
                sival_ptr: std::ptr::without_provenance_mut::<c_void>(
                    value.cast_unsigned() as usize
                ),
            };
            // SAFETY: sigqueue(3) passes the sigval to the kernel as a value: the pointer
            // in it is never dereferenced.
            check(
                "sigqueue",
                i64::from(unsafe { libc::sigqueue(pid, sig, val) }),
            );
        }
        "fork-kill" => {
            let [pid, sig] = positional(cmd, rest, ["PID", "SIG"]);
            let (pid, sig) = (parse_int(pid, "PID"), parse_signal(sig));
            fork_kill(pid, sig);
        }
        "thread-kill" => {
            let [pid, sig] = positional(cmd, rest, ["PID", "SIG"]);
            let (pid, sig) = (parse_int(pid, "PID"), parse_signal(sig));
            let sender = std::thread::spawn(move || {
                // SAFETY: kill(2) takes two integers and touches no memory of ours.
                let ret = unsafe { libc::kill(pid, sig) };
                // SAFETY: gettid(2) takes nothing and cannot fail.
                (unsafe { libc::gettid() }, ret, errno())
            });
            let (tid, ret, e) = sender.join().unwrap_or_else(|_| exit(1));
            say(&format!("tid={tid}"));
            if ret == -1 {
                fail("kill", e);
            }
        }
        "kill-exec" => {
            let Some((&[pid, sig], then)) = rest.split_first_chunk::<2>() else {
                usage("kill-exec takes PID SIG [--] SUBCOMMAND ARGS...")
            };
            let (pid, sig) = (parse_int(pid, "PID"), parse_signal(sig));
            let then = strip_dashes(then);
            // Prepared before the signal, so the exec follows it as closely as possible.
            let (exe, argv) = self_command(then);
            // SAFETY: kill(2) takes two integers and touches no memory of ours.
            check("kill", i64::from(unsafe { libc::kill(pid, sig) }));
            exec(&exe, &argv);
        }
        "at" => {
            let Some((&[pid], then)) = rest.split_first_chunk::<1>() else {
                usage("at takes PID [--] SUBCOMMAND ARGS...")
            };
            at(parse_int(pid, "PID"), strip_dashes(then));
        }
        other => usage(&format!("unknown subcommand {other:?}")),
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("sigwho-testproc: {msg}\n{USAGE}");
    exit(2);
}

fn positional<'a, const N: usize>(cmd: &str, args: &[&'a str], names: [&str; N]) -> [&'a str; N] {
    match <[&str; N]>::try_from(args) {
        Ok(a) => a,
        Err(_) => usage(&format!(
            "{cmd} takes {N} arguments ({}), got {}",
            names.join(" "),
            args.len()
        )),
    }
}

fn parse_int(s: &str, what: &str) -> i32 {
    s.parse()
        .unwrap_or_else(|_| usage(&format!("{what} must be an integer, got {s:?}")))
}

/// Signal numbers for names, with or without the SIG prefix, any case. Also RTMIN+N / RTMAX-N.
fn signal_number(s: &str) -> Option<c_int> {
    if let Ok(n) = s.parse::<c_int>() {
        return (0..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(off) = name.strip_prefix("RTMIN") {
        let off: c_int = if off.is_empty() {
            0
        } else {
            off.strip_prefix('+')?.parse().ok()?
        };
        let n = libc::SIGRTMIN() + off;
        return (n <= libc::SIGRTMAX()).then_some(n);
    }
    if let Some(off) = name.strip_prefix("RTMAX") {
        let off: c_int = if off.is_empty() {
            0
        } else {
            off.strip_prefix('-')?.parse().ok()?
        };
        let n = libc::SIGRTMAX() - off;
        return (n >= libc::SIGRTMIN()).then_some(n);
    }
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return None,
    };
    Some(n)
}

fn parse_signal(s: &str) -> c_int {
    signal_number(s).unwrap_or_else(|| usage(&format!("unknown signal {s:?}")))
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn errno_name(e: c_int) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::EPIPE => "EPIPE",
        libc::ENOSYS => "ENOSYS",
        _ => return e.to_string(),
    };
    name.to_string()
}

fn strerror(e: c_int) -> String {
    // SAFETY: strerror(3) takes an integer; it returns a pointer into a static buffer that
    // another thread's strerror could overwrite, and only single-threaded sender paths
    // call this.
    let p = unsafe { libc::strerror(e) };
    if p.is_null() {
        return format!("error {e}");
    }
    // SAFETY: not null, so a NUL-terminated string that nothing changes while it is
    // copied (single-threaded, as above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn fail(syscall: &str, e: c_int) -> ! {
    eprintln!("error: {syscall}: {} ({})", errno_name(e), strerror(e));
    exit(1);
}

/// fork(2), exiting 1 when it fails; 0 in the child, the child's pid in the parent.
///
/// # Safety
/// As fork: the caller's process must be single-threaded, or the child must call only
/// async-signal-safe functions until it execs or exits.
unsafe fn fork_checked() -> libc::pid_t {
    // SAFETY: the caller's promise, above.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        fail("fork", errno());
    }
    pid
}

/// Returns `ret` if it is not -1, otherwise reports errno for `syscall` and exits 1.
fn check(syscall: &str, ret: i64) -> i64 {
    if ret == -1 {
        fail(syscall, errno());
    }
    ret
}

/// Prints one line to stdout and flushes it.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the test went away) is not worth dying over here.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn strip_dashes<'a, 'b>(args: &'a [&'b str]) -> &'a [&'b str] {
    let args = match args.first() {
        Some(&"--") => &args[1..],
        _ => args,
    };
    if args.is_empty() {
        usage("missing SUBCOMMAND");
    }
    args
}

/// This program and `sigwho-testproc ARGS...` as C strings, built before any fork so the
/// child only needs async-signal-safe calls.
fn self_command(args: &[&str]) -> (CString, Vec<CString>) {
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_else(|e| {
        eprintln!("error: readlink /proc/self/exe: {e}");
        exit(1)
    });
    let cstr = |s: &[u8]| {
        CString::new(s).unwrap_or_else(|_| usage("arguments must not contain NUL bytes"))
    };
    let exe = cstr(exe.as_os_str().as_bytes());
    let mut argv = vec![exe.clone()];
    argv.extend(args.iter().map(|a| cstr(a.as_bytes())));
    (exe, argv)
}

fn exec(exe: &CStr, argv: &[CString]) -> ! {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: execv(2) reads NUL-terminated strings from `exe` and `argv`, through a
    // null-terminated array of pointers to them, all alive for the call.
    unsafe { libc::execv(exe.as_ptr(), ptrs.as_ptr()) };
    fail("execv", errno());
}

/// struct `clone_args` (include/uapi/linux/sched.h), up to `set_tid_size` (`CLONE_ARGS_SIZE_VER1`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
}

/// `at PID SUBCOMMAND...`: a child created at pid PID (clone3 with `set_tid`: the way
/// checkpoint/restore recreates a pid; root in the init pid namespace may ask for any
/// free pid), which execs `sigwho-testproc SUBCOMMAND...`. Lets tests reuse a pid at once.
fn at(pid: libc::pid_t, args: &[&str]) -> ! {
    let (exe, argv) = self_command(args);
    let tid = pid;
    let mut clone = CloneArgs {
        exit_signal: u64::from(libc::SIGCHLD.unsigned_abs()),
        set_tid: std::ptr::from_ref(&tid) as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: clone3(2) reads `clone` (its size given) and `tid`, both alive for the call;
    // without CLONE_VM or a stack it behaves like fork, and this process is
    // single-threaded here, so the child may run anything (it execs at once).
    let child = check("clone3", unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::from_mut(&mut clone),
            std::mem::size_of::<CloneArgs>(),
        )
    });
    if child == 0 {
        exec(&exe, &argv);
    }
    let child = libc::pid_t::try_from(child).expect("a pid fits in pid_t");
    let mut status = 0;
    // SAFETY: waitpid(2) writes the status into `status`, which outlives the call.
    while unsafe { libc::waitpid(child, &raw mut status, 0) } == -1 {
        if errno() != libc::EINTR {
            fail("waitpid", errno());
        }
    }
    if libc::WIFEXITED(status) {
        exit(libc::WEXITSTATUS(status));
    }
    exit(128 + libc::WTERMSIG(status));
}

fn fork_kill(pid: i32, sig: c_int) {
    // SAFETY: this process is single-threaded here, so the child may run anything after
    // fork(2); it only calls kill and _exit.
    let child = unsafe { fork_checked() };
    if child == 0 {
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        let code = if unsafe { libc::kill(pid, sig) } == 0 {
            0
        } else {
            errno().clamp(1, 255)
        };
        // SAFETY: _exit(2) takes an integer and does not return; a forked child must not
        // run the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    loop {
        // SAFETY: waitpid(2) writes the status into `status`, which outlives the call.
        let r = unsafe { libc::waitpid(child, &raw mut status, 0) };
        if r == child {
            break;
        }
        if errno() != libc::EINTR {
            fail("waitpid", errno());
        }
    }
    say(&format!("child={child}"));
    if !libc::WIFEXITED(status) {
        eprintln!("error: fork-kill: child {child} did not exit normally (status {status:#x})");
        exit(1);
    }
    match libc::WEXITSTATUS(status) {
        0 => {}
        e => fail("kill", e),
    }
}

// ---------------------------------------------------------------------------------------
// target

extern "C" fn noop_handler(_sig: c_int) {}

/// `--relay`: where each signal is passed on to (0: not relayed). Read by `relay_handler`.
static RELAY_TO: [AtomicI32; 65] = [const { AtomicI32::new(0) }; 65];

/// Passes the signal on with kill(2), then exits 0 (both async-signal-safe).
extern "C" fn relay_handler(sig: c_int) {
    let to = usize::try_from(sig)
        .ok()
        .and_then(|i| RELAY_TO.get(i))
        .map_or(0, |p| p.load(Ordering::SeqCst));
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    let code = i32::from(to != 0 && unsafe { libc::kill(to, sig) } != 0);
    // SAFETY: _exit(2) takes an integer and does not return; it is async-signal-safe, as
    // a handler needs.
    unsafe { libc::_exit(code) };
}

fn set_disposition(sig: c_int, handler: libc::sighandler_t, flags: c_int, what: &str) {
    // SAFETY: all zeroes is a valid sigaction, filled in before use; sigemptyset and
    // sigaction get pointers to it while it lives, and sigaction takes a null pointer for
    // the old action it need not return. Every handler given here (SIG_DFL, SIG_IGN and
    // this file's extern "C" handlers) is one sigaction accepts.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = flags;
        libc::sigemptyset(&raw mut sa.sa_mask);
        if libc::sigaction(sig, &raw const sa, std::ptr::null_mut()) != 0 {
            fail(what, errno());
        }
    }
}

/// Every signal to its default action and unblocked, whatever the test's environment
/// left: ignored dispositions and the blocked mask survive exec, and a shell's background
/// job (`cmd &` without job control, as a CI step may be) ignores SIGINT and SIGQUIT, so a
/// target would outlive a SIGQUIT the test expects to kill it.
fn default_dispositions() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: all zeroes is a valid sigaction, SIG_DFL with an empty mask; sigaction
        // reads it while it lives and takes a null pointer for the old action. glibc
        // keeps two real-time signals for itself and refuses them (EINVAL): left as is.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&raw mut sa.sa_mask);
            libc::sigaction(sig, &raw const sa, std::ptr::null_mut());
        }
    }
    // SAFETY: all zeroes is a valid sigset_t, emptied before use; pthread_sigmask reads it
    // while it lives and takes a null pointer for the old mask.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &raw const none, std::ptr::null_mut());
    }
}

/// Default action for `sig`, and not blocked in this thread: the next one kills us.
fn make_fatal(sig: c_int) {
    set_disposition(sig, libc::SIG_DFL, 0, "sigaction");
    // SAFETY: all zeroes is a valid sigset_t, emptied before use; the calls get pointers
    // to it while it lives, and pthread_sigmask a null pointer for the old mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &raw const set, std::ptr::null_mut());
    }
}

struct TargetOpts {
    ignore: Vec<c_int>,
    handle: Vec<c_int>,
    threads: usize,
    setpgid: bool,
    setsid: bool,
    /// (signal, pid to pass it on to)
    relay: Vec<(c_int, libc::pid_t)>,
    pdeathsig: Option<c_int>,
    cgroup_procs: Option<String>,
    no_stdin: bool,
}

fn parse_target_opts(args: &[&str]) -> TargetOpts {
    let mut o = TargetOpts {
        ignore: Vec::new(),
        handle: Vec::new(),
        threads: 0,
        setpgid: false,
        setsid: false,
        relay: Vec::new(),
        pdeathsig: None,
        cgroup_procs: None,
        no_stdin: false,
    };
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        let mut value = |flag: &str| -> &str {
            it.next()
                .copied()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match a {
            "--ignore" => o.ignore.push(parse_signal(value(a))),
            "--handle" => o.handle.push(parse_signal(value(a))),
            "--threads" => {
                let v = value(a);
                o.threads = v.parse().unwrap_or_else(|_| {
                    usage(&format!(
                        "--threads needs a non-negative integer, got {v:?}"
                    ))
                });
            }
            "--setpgid" => o.setpgid = true,
            "--setsid" => o.setsid = true,
            "--relay" => {
                let v = value(a);
                let Some((sig, pid)) = v.split_once(':') else {
                    usage(&format!("--relay needs SIG:PID, got {v:?}"))
                };
                let (sig, pid) = (parse_signal(sig), parse_int(pid, "--relay PID"));
                if sig == 0 || sig == libc::SIGKILL || sig == libc::SIGSTOP {
                    usage(&format!("--relay: signal {sig} cannot be handled"));
                }
                if o.relay.iter().any(|&(s, _)| s == sig) {
                    usage(&format!("--relay: signal {sig} given twice"));
                }
                o.relay.push((sig, pid));
            }
            "--pdeathsig" => o.pdeathsig = Some(parse_signal(value(a))),
            "--cgroup-procs" => o.cgroup_procs = Some(value(a).to_string()),
            "--no-stdin" => o.no_stdin = true,
            other => usage(&format!("unknown target option {other:?}")),
        }
    }
    o
}

fn target(args: &[&str]) -> ! {
    let opts = parse_target_opts(args);
    default_dispositions();

    // Deaths by SIGSEGV/SIGABRT/SIGQUIT must not write or pipe out core dumps: no core
    // file size, and not dumpable at all (a `|helper` core_pattern ignores RLIMIT_CORE).
    // SAFETY: setrlimit(2) reads `zero`, alive for the call; prctl takes integers.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::setrlimit(libc::RLIMIT_CORE, &raw const zero) != 0 {
            fail("setrlimit", errno());
        }
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            fail("prctl", errno());
        }
    }

    for &sig in &opts.ignore {
        set_disposition(sig, libc::SIG_IGN, 0, "sigaction");
    }
    for &sig in &opts.handle {
        let handler = noop_handler as extern "C" fn(c_int) as libc::sighandler_t;
        set_disposition(sig, handler, libc::SA_RESTART, "sigaction");
    }
    for &(sig, to) in &opts.relay {
        let slot = usize::try_from(sig).expect("parse_signal gives no negative signal");
        RELAY_TO[slot].store(to, Ordering::SeqCst);
        let handler = relay_handler as extern "C" fn(c_int) as libc::sighandler_t;
        set_disposition(sig, handler, libc::SA_RESTART, "sigaction");
    }
    if let Some(sig) = opts.pdeathsig {
        let sig = libc::c_ulong::from(sig.unsigned_abs());
        // SAFETY: prctl(2) with integer arguments touches no memory of ours.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0) } != 0 {
            fail("prctl", errno());
        }
    }
    if let Some(path) = &opts.cgroup_procs {
        // SAFETY: getpid(2) takes nothing and cannot fail.
        let pid = unsafe { libc::getpid() };
        // One write(2) of the pid: what cgroup.procs expects.
        if let Err(e) = std::fs::write(path, format!("{pid}\n")) {
            eprintln!("error: write {path}: {e}");
            exit(1);
        }
    }
    if opts.setsid {
        // setsid also makes us a process-group leader (and setpgid would then fail).
        // SAFETY: setsid(2) takes nothing.
        if unsafe { libc::setsid() } == -1 {
            fail("setsid", errno());
        }
    // SAFETY: setpgid(2) takes two integers.
    } else if opts.setpgid && unsafe { libc::setpgid(0, 0) } != 0 {
        fail("setpgid", errno());
    }

    // SAFETY: gettid(2) takes nothing and cannot fail.
    let mut tids = vec![unsafe { libc::gettid() }];
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..opts.threads {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("blocker-{i}"))
            .spawn(move || {
                // SAFETY: gettid(2) takes nothing and cannot fail.
                tx.send(unsafe { libc::gettid() }).unwrap();
                drop(tx);
                loop {
                    // Returns only when a handled signal interrupts it.
                    // SAFETY: pause(2) takes nothing.
                    unsafe { libc::pause() };
                }
            })
            .unwrap_or_else(|e| {
                eprintln!("error: pthread_create: {e}");
                exit(1)
            });
    }
    drop(tx);
    tids.extend(rx.iter());
    let tids: Vec<String> = tids.iter().map(ToString::to_string).collect();
    // SAFETY: getpid(2) and getpgrp(2) take nothing and cannot fail.
    let (pid, pgid) = unsafe { (libc::getpid(), libc::getpgrp()) };
    say(&format!(
        "ready pid={pid} pgid={pgid} tids={}",
        tids.join(",")
    ));

    if opts.no_stdin {
        loop {
            // Returns only when a handled signal interrupts it.
            // SAFETY: pause(2) takes nothing.
            unsafe { libc::pause() };
        }
    }
    let mut stdin = LineReader::default();
    while let Some(line) = stdin.next_line() {
        run_command(line.trim());
    }
    exit(0);
}

/// `alloc MIB`: maps and touches MIB MiB, 1 MiB at a time (every page written), and
/// keeps it. In a small memory cgroup the OOM killer ends the process part way.
fn alloc(mib: usize) {
    const MIB: usize = 1 << 20;
    // SAFETY: sysconf(3) takes an integer.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(4096);
    for _ in 0..mib {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing
        // replaces nothing of ours.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MIB,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            fail("mmap", errno());
        }
        let p = p.cast::<u8>();
        for off in (0..MIB).step_by(page) {
            // SAFETY: `off` is below MIB, the length of the writable mapping at `p`, which
            // nothing else refers to.
            unsafe { std::ptr::write_volatile(p.add(off), 0xa5) };
        }
    }
    say("allocated");
}

fn run_command(line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [] => {}
        ["ping"] => say("pong"),
        ["exit", code] => {
            let code = code
                .parse()
                .unwrap_or_else(|_| usage(&format!("exit needs an integer, got {code:?}")));
            exit(code);
        }
        ["raise", sig] => {
            let sig = parse_signal(sig);
            // SAFETY: raise(3) takes an integer; dying of the signal is the point.
            if unsafe { libc::raise(sig) } != 0 {
                fail("raise", errno());
            }
        }
        ["alloc", mib] => {
            let mib = mib
                .parse()
                .unwrap_or_else(|_| usage(&format!("alloc needs a MiB count, got {mib:?}")));
            alloc(mib);
        }
        ["alarm"] => {
            // setitimer's kernel timer sends SIGALRM in about a second; default: die.
            make_fatal(libc::SIGALRM);
            // SAFETY: alarm(2) takes an integer.
            unsafe { libc::alarm(1) };
        }
        ["cpu-limit"] => {
            // RLIMIT_CPU soft limit of 1 s: the kernel sends SIGXCPU once it is used up.
            make_fatal(libc::SIGXCPU);
            let limit = libc::rlimit {
                rlim_cur: 1,
                rlim_max: 10,
            };
            // SAFETY: setrlimit(2) reads `limit`, alive for the call.
            if unsafe { libc::setrlimit(libc::RLIMIT_CPU, &raw const limit) } != 0 {
                fail("setrlimit", errno());
            }
            let mut spin = 0u64;
            loop {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
        }
        ["child-exit"] => {
            // A child that exits at once: the kernel sends this process SIGCHLD.
            // SAFETY: the child only calls _exit, which is async-signal-safe, whatever
            // threads this process has.
            match unsafe { fork_checked() } {
                // SAFETY: _exit(2) takes an integer and does not return.
                0 => unsafe { libc::_exit(0) },
                child => {
                    let mut status = 0;
                    // SAFETY: waitpid(2) writes the status into `status`, a live local.
                    unsafe { libc::waitpid(child, &raw mut status, 0) };
                    say(&format!("reaped={child}"));
                }
            }
        }
        ["abort"] => {
            make_fatal(libc::SIGABRT);
            // SAFETY: abort(3) takes nothing and does not return; dying is the point.
            unsafe { libc::abort() }
        }
        ["segv"] => {
            make_fatal(libc::SIGSEGV);
            let p = std::ptr::with_exposed_provenance_mut::<u64>(SEGV_ADDR);
            // SAFETY: the write is meant to fault, not to store: SEGV_ADDR is below
            // vm.mmap_min_addr, never mapped, so the CPU traps before any memory changes,
            // and SIGSEGV's default action (made fatal above) ends the process there.
            unsafe { std::ptr::write_volatile(p, 0xdead) };
            eprintln!("error: segv: the write to {SEGV_ADDR:#x} did not fault");
            exit(1);
        }
        ["pipe"] => {
            // The Rust runtime starts with SIGPIPE ignored; restore the default action.
            make_fatal(libc::SIGPIPE);
            let mut fds: [c_int; 2] = [0; 2];
            // SAFETY: pipe(2) writes two descriptors into `fds`, an array of two.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                fail("pipe", errno());
            }
            // SAFETY: closes the read end pipe(2) just returned, which nothing else owns.
            unsafe { libc::close(fds[0]) };
            let byte = b"x";
            // SAFETY: write(2) reads one byte from `byte`, which is one byte long.
            let r = unsafe { libc::write(fds[1], byte.as_ptr().cast(), 1) };
            let e = errno();
            eprintln!("error: pipe: write returned {r} without SIGPIPE");
            fail("write", e);
        }
        _ => {
            eprintln!("sigwho-testproc: unknown target command {line:?}");
            exit(2);
        }
    }
}

/// Reads stdin (fd 0) line by line with read(2), retrying when a handled signal
/// interrupts it.
#[derive(Default)]
struct LineReader {
    buf: Vec<u8>,
    eof: bool,
}

impl LineReader {
    fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return Some(String::from_utf8_lossy(&line[..nl]).into_owned());
            }
            if self.eof {
                if self.buf.is_empty() {
                    return None;
                }
                let line = std::mem::take(&mut self.buf);
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            let mut chunk = [0u8; 4096];
            // SAFETY: read(2) writes at most chunk.len() bytes into `chunk`.
            let n = unsafe { libc::read(0, chunk.as_mut_ptr().cast(), chunk.len()) };
            match usize::try_from(n) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => match errno() {
                    libc::EINTR => {}
                    e => fail("read", e),
                },
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// parent

/// `parent [--] TARGET_ARGS...`: see the module documentation.
fn parent(args: &[&str]) -> ! {
    let target_args = match args.first() {
        Some(&"--") => &args[1..],
        _ => args,
    };
    // Everything the child needs is prepared before fork: it only calls async-signal-safe
    // functions (open, dup2, execv, _exit).
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_else(|e| {
        eprintln!("error: readlink /proc/self/exe: {e}");
        exit(1)
    });
    let cstr = |s: &[u8]| {
        CString::new(s).unwrap_or_else(|_| usage("arguments must not contain NUL bytes"))
    };
    let exe = cstr(exe.as_os_str().as_bytes());
    let mut argv: Vec<CString> = vec![exe.clone(), cstr(b"target")];
    argv.extend(target_args.iter().map(|a| cstr(a.as_bytes())));
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let dev_null = c"/dev/null";

    // The parent's line comes first: the child's ready line follows on the same stdout.
    // SAFETY: getpid(2) takes nothing and cannot fail.
    say(&format!("parent pid={}", unsafe { libc::getpid() }));
    // SAFETY: single-threaded here, so the child may run anything after fork(2); it only
    // makes async-signal-safe calls anyway, on what was prepared above.
    let child = unsafe { fork_checked() };
    if child == 0 {
        // SAFETY: open(2) and execv(2) get NUL-terminated strings (and execv a
        // null-terminated array of them) prepared before the fork and alive here; the
        // other calls take integers.
        unsafe {
            let fd = libc::open(dev_null.as_ptr(), libc::O_RDONLY);
            if fd < 0 || libc::dup2(fd, 0) < 0 {
                libc::_exit(126);
            }
            if fd != 0 {
                libc::close(fd);
            }
            libc::execv(exe.as_ptr(), argv_ptrs.as_ptr());
            libc::_exit(127);
        }
    }

    let mut stdin = LineReader::default();
    while let Some(line) = stdin.next_line() {
        match line.trim() {
            "" => {}
            // Leave at once; the child is reparented (and gets its --pdeathsig signal).
            "exit" => exit(0),
            other => {
                eprintln!("sigwho-testproc: unknown parent command {other:?}");
            }
        }
    }
    // EOF: take the child along.
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    unsafe { libc::kill(child, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: waitpid(2) writes the status into `status`, which outlives the call.
    while unsafe { libc::waitpid(child, &raw mut status, 0) } == -1 && errno() == libc::EINTR {}
    exit(0);
}
