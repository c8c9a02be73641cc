//! Kernel-made signals are classified by what made them (`origin_class`), and a process in
//! its own pid namespace is named by both of its pids.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use sigwho_tests::{
    ProcId, Sigwho, Target, child_pid, descendants, field_i64, field_str, is_signal, require_root,
    testproc, testproc_bin, wait_until,
};

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// For an event that needs a second of one process's CPU time first.
const CPU_SECOND_TIMEOUT: Duration = Duration::from_secs(90);

fn watch(pid: i32) -> Sigwho {
    require_root();
    Sigwho::start(&["--target-pid", &pid.to_string(), "--json"])
}

#[test]
fn alarm_is_a_timer_signal() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(target.pid);
    target.send("alarm");
    let ev = sigwho.wait_for(is_signal("SIGALRM"), EVENT_TIMEOUT);
    assert_eq!(field_str(&ev, "origin"), Some("kernel"), "{ev}");
    assert_eq!(field_str(&ev, "origin_class"), Some("timer"), "{ev}");
    assert_eq!(field_str(&ev, "code"), Some("SI_KERNEL"), "{ev}");
    let _ = target.wait(EVENT_TIMEOUT);
}

#[test]
fn cpu_rlimit_is_an_rlimit_signal() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(target.pid);
    target.send("cpu-limit");
    // SIGXCPU comes after a second of the target's own CPU time, which a loaded 2-CPU
    // machine hands out over many seconds of wall-clock time.
    let ev = sigwho.wait_for(is_signal("SIGXCPU"), CPU_SECOND_TIMEOUT);
    assert_eq!(field_str(&ev, "origin"), Some("kernel"), "{ev}");
    assert_eq!(field_str(&ev, "origin_class"), Some("rlimit"), "{ev}");
    assert!(
        ev["hints"]
            .as_array()
            .is_some_and(|h| h.iter().any(|h| h["id"] == "resource-limit")),
        "{ev}"
    );
    let _ = target.wait(EVENT_TIMEOUT);
}

#[test]
fn child_exit_is_a_child_state_signal_from_the_child() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(target.pid);
    target.send("child-exit");
    let reaped: i64 = target
        .read_line(EVENT_TIMEOUT)
        .and_then(|l| {
            l.strip_prefix("reaped=")
                .and_then(|p| p.trim().parse().ok())
        })
        .expect("child-exit prints reaped=PID");
    let ev = sigwho.wait_for(is_signal("SIGCHLD"), EVENT_TIMEOUT);
    assert_eq!(field_str(&ev, "origin_class"), Some("child_state"), "{ev}");
    assert_eq!(field_str(&ev, "code"), Some("CLD_EXITED"), "{ev}");
    assert_eq!(field_i64(&ev, "sender.pid"), Some(reaped), "{ev}");
    assert_eq!(field_str(&ev, "relation"), Some("child"), "{ev}");
    target.ping();
}

/// `unshare --pid --fork bash -c 'TARGET & read'`: bash is the namespace's init (pid 1
/// there), the target its second process. Returns the unshare child, and the target's
/// host pid once it is ready.
fn target_in_pid_namespace() -> (std::process::Child, ProcId) {
    let script = format!("{} target --no-stdin & read line", testproc_bin().display());
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "bash", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare runs");
    let mut ready = String::new();
    BufReader::new(unshare.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready line");
    assert!(
        ready.starts_with("ready pid=2 "),
        "pid 2 inside the namespace: {ready}"
    );
    let root = child_pid(&unshare);
    let mut target = None;
    assert!(
        wait_until(
            || {
                target = descendants(root).into_iter().find(|p| {
                    std::fs::read(format!("/proc/{}/cmdline", p.pid))
                        .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"target"))
                });
                target.is_some()
            },
            EVENT_TIMEOUT
        ),
        "target process under unshare"
    );
    (unshare, target.expect("found"))
}

#[test]
fn process_in_a_pid_namespace_has_its_namespace_pid() {
    let (mut unshare, target) = target_in_pid_namespace();
    let sigwho = watch(target.pid);
    testproc(&["kill", &target.pid.to_string(), "USR1"]).assert_success();
    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_eq!(
        field_i64(&ev, "target.pid"),
        Some(i64::from(target.pid)),
        "{ev}"
    );
    assert_eq!(field_i64(&ev, "target.ns_pid"), Some(2), "{ev}");
    assert!(ev["sender"].get("ns_pid").is_none(), "host process: {ev}");
    drop(unshare.stdin.take());
    let _ = unshare.wait();
}

#[test]
fn namespace_init_exit_kills_the_rest() {
    let (mut unshare, target) = target_in_pid_namespace();
    let sigwho = watch(target.pid);
    // bash (the namespace's init) reads its line and exits: the kernel kills the rest.
    drop(unshare.stdin.take());
    let ev = sigwho.wait_for(is_signal("SIGKILL"), EVENT_TIMEOUT);
    assert_eq!(field_str(&ev, "origin"), Some("kernel"), "{ev}");
    assert_eq!(
        field_str(&ev, "origin_class"),
        Some("pid_namespace"),
        "{ev}"
    );
    assert_eq!(field_str(&ev, "sender.comm"), Some("bash"), "{ev}");
    assert_eq!(field_i64(&ev, "sender.ns_pid"), Some(1), "{ev}");
    let _ = unshare.wait();
    assert!(target.wait_gone(EVENT_TIMEOUT));
}
