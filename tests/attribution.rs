//! No false attributions: a reused pid, a thread id where a process id belongs, a sender
//! that exec'd between sending and the report, a sender in another pid namespace. Each
//! report must name the process as it was when it sent (or received) the signal.
//!
//! Pids are reused on purpose with `sigwho-testproc at PID ...` (clone3 with `set_tid`),
//! right after the first process with that pid was reaped.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use sigwho_tests::{
    Run, Sigwho, Target, TempDir, Value, child_pid, field_i64, field_str, is_signal, require_root,
    run, sigwho_bin, strings, testproc, testproc_bin,
};

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

fn watch(pid: i32) -> Sigwho {
    require_root();
    Sigwho::start(&["--target-pid", &pid.to_string(), "--json"])
}

fn sub_args(ev: &Value, who: &str) -> Vec<String> {
    strings(ev, &format!("{who}.argv")).split_off(1)
}

#[test]
fn sender_pid_reused_is_named_by_each_incarnation() {
    let mut target = Target::spawn(&["--handle", "USR1", "--handle", "USR2"]);
    let sigwho = watch(target.pid);
    let t = target.pid.to_string();

    // First sender: a plain kill, reaped by the harness before the second starts.
    let first = testproc(&["kill", &t, "USR1"]).assert_success();
    let ev1 = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    target.ping();
    // Second sender at the very same pid, another program line.
    let p = first.pid.to_string();
    testproc(&["at", &p, "--", "sigqueue", &t, "USR2", "7"]).assert_success();
    let ev2 = sigwho.wait_for(is_signal("SIGUSR2"), EVENT_TIMEOUT);

    for ev in [&ev1, &ev2] {
        assert_eq!(
            field_i64(ev, "sender.pid"),
            Some(i64::from(first.pid)),
            "{ev}"
        );
    }
    assert_eq!(sub_args(&ev1, "sender"), ["kill", &t, "USR1"], "{ev1}");
    assert_eq!(
        sub_args(&ev2, "sender"),
        ["sigqueue", &t, "USR2", "7"],
        "{ev2}"
    );
    assert_ne!(
        field_str(&ev1, "sender.start_time"),
        field_str(&ev2, "sender.start_time"),
        "two incarnations of pid {p}: {ev1}\n{ev2}"
    );
    // The second's parent is the `at` helper, the first's the test itself.
    let parent = |ev: &Value| field_i64(ev, "sender.ancestry.0.pid");
    assert_eq!(parent(&ev1), Some(i64::from(std::process::id())), "{ev1}");
    assert_ne!(parent(&ev2), parent(&ev1), "{ev2}");
    assert_eq!(
        strings(&ev2, "sender.ancestry.0.argv")
            .get(1)
            .map(String::as_str),
        Some("at"),
        "{ev2}"
    );
    target.ping();
}

#[test]
fn sender_pid_reused_before_the_report_is_made() {
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let mut sigwho = watch(target.pid);
    let t = target.pid.to_string();
    // sigwho is stopped while A sends and exits and B takes A's pid: when it reads the
    // record, /proc already shows B at that pid.
    assert!(sigwho.signal(libc::SIGSTOP));
    let a = testproc(&["kill", &t, "USR1"]).assert_success();
    let p = a.pid.to_string();
    let mut at = Command::new(testproc_bin())
        .args(["at", &p, "--", "target", "--no-stdin", "--setsid"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("at runs");
    let mut ready = String::new();
    BufReader::new(at.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready line");
    assert!(ready.starts_with(&format!("ready pid={p} ")), "{ready}");
    let b = sigwho_tests::ProcId::of(a.pid).expect("B runs at A's pid");
    assert!(sigwho.signal(libc::SIGCONT));

    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_eq!(field_i64(&ev, "sender.pid"), Some(i64::from(a.pid)), "{ev}");
    assert_eq!(
        sub_args(&ev, "sender"),
        ["kill", &t, "USR1"],
        "A, not B: {ev}"
    );
    assert_eq!(
        field_i64(&ev, "sender.ancestry.0.pid"),
        Some(i64::from(std::process::id())),
        "A's parent (the test), not B's (the at helper): {ev}"
    );
    assert!(b.signal(libc::SIGKILL));
    let _ = at.wait();
    target.ping();
}

/// `sigwho query --journal J ARGS --json`, parsed, without gap records: the recorder
/// records the whole machine, and a storm elsewhere can overflow its ring buffer, which a
/// query shows as gaps whatever its filters. A lost signal of the test's own fails it
/// anyway.
fn query_json(journal: &Path, args: &[&str]) -> Vec<Value> {
    let mut cmd = Command::new(sigwho_bin());
    cmd.args(["query", "--journal", journal.to_str().expect("UTF-8")])
        .args(args)
        .arg("--json");
    let r: Run = run(cmd, EVENT_TIMEOUT).assert_success();
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .filter(|e: &Value| e["event"] != "gap")
        .collect()
}

#[test]
fn target_pid_reused_while_recording_keeps_incarnations_apart() {
    require_root();
    let dir = TempDir::new("reuse");
    let journal = dir.path("journal");
    let mut cmd = Sigwho::command(&["record", "--journal", journal.to_str().expect("UTF-8")]);
    cmd.stdout(Stdio::null());
    let mut recorder = Sigwho::start_waiting_for(cmd, "sigwho: recording");

    // A: started by the test, killed by TERM, reaped.
    let mut a = Target::spawn(&[]);
    let pid = a.pid;
    let p = pid.to_string();
    testproc(&["kill", &p, "TERM"]).assert_success();
    let status = a.wait(EVENT_TIMEOUT);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
    drop(a);

    // B: at the same pid, another command line and another parent; USR1 ends it.
    let mut b = Command::new(testproc_bin());
    b.args(["at", &p, "--", "target", "--no-stdin", "--setpgid"])
        .stdout(Stdio::piped());
    let mut b = b.spawn().expect("at runs");
    let mut ready = String::new();
    BufReader::new(b.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready line");
    assert!(ready.starts_with(&format!("ready pid={pid} ")), "{ready}");
    testproc(&["kill", &p, "USR1"]).assert_success();
    let status = b.wait().expect("at exits");
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGUSR1),
        "B died of SIGUSR1"
    );

    // Flushes and stops the recorder.
    assert!(recorder.signal(libc::SIGTERM));
    let (status, _) = recorder.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "{}", recorder.report());

    let reports: Vec<Value> = query_json(&journal, &["--target-pid", &p])
        .into_iter()
        .filter(|ev| field_str(ev, "event") == Some("signal"))
        .collect();
    let term = reports
        .iter()
        .find(|ev| is_signal("SIGTERM")(ev))
        .unwrap_or_else(|| panic!("A's SIGTERM: {reports:?}"));
    let usr1 = reports
        .iter()
        .find(|ev| is_signal("SIGUSR1")(ev))
        .unwrap_or_else(|| panic!("B's SIGUSR1: {reports:?}"));
    assert_eq!(sub_args(term, "target"), ["target"], "{term}");
    assert_eq!(
        sub_args(usr1, "target"),
        ["target", "--no-stdin", "--setpgid"],
        "{usr1}"
    );
    assert_ne!(
        field_str(term, "target.start_time"),
        field_str(usr1, "target.start_time"),
        "{term}\n{usr1}"
    );
    let parent = |ev: &Value| field_i64(ev, "target.ancestry.0.pid");
    assert_eq!(parent(term), Some(i64::from(std::process::id())), "{term}");
    assert_eq!(
        strings(usr1, "target.ancestry.0.argv")
            .get(1)
            .map(String::as_str),
        Some("at"),
        "B's parent is the at helper, not A's: {usr1}"
    );
}

#[test]
fn sender_thread_is_named_by_its_process() {
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let sigwho = watch(target.pid);
    let t = target.pid.to_string();
    let sent = testproc(&["thread-kill", &t, "USR1"]).assert_success();
    let tid: i64 = sent
        .stdout
        .trim()
        .strip_prefix("tid=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("tid line: {sent}"));
    assert_ne!(
        tid,
        i64::from(sent.pid),
        "the sender is not the main thread"
    );
    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_eq!(
        field_i64(&ev, "sender.pid"),
        Some(i64::from(sent.pid)),
        "{ev}"
    );
    assert_eq!(field_i64(&ev, "sender.tid"), Some(tid), "{ev}");
    assert_eq!(sub_args(&ev, "sender"), ["thread-kill", &t, "USR1"], "{ev}");
    assert_eq!(
        field_i64(&ev, "sender.ancestry.0.pid"),
        Some(i64::from(std::process::id())),
        "{ev}"
    );
    target.ping();
}

#[test]
fn sender_that_execs_after_sending_is_named_as_it_was() {
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let sigwho = watch(target.pid);
    let t = target.pid.to_string();
    // It sends, then becomes a long-running target; its ready line comes after the exec.
    let sender = Target::spawn_with({
        let mut cmd = Command::new(testproc_bin());
        cmd.args(["kill-exec", &t, "USR1", "--", "target", "--setsid"]);
        cmd
    });
    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_eq!(
        field_i64(&ev, "sender.pid"),
        Some(i64::from(sender.pid)),
        "{ev}"
    );
    assert_eq!(
        sub_args(&ev, "sender"),
        ["kill-exec", &t, "USR1", "--", "target", "--setsid"],
        "what it was when it sent: {ev}"
    );
    target.ping();
    drop(sender);
}

#[test]
fn sender_in_another_pid_namespace_has_host_and_namespace_pids() {
    require_root();
    // Inside the namespace: bash is pid 1, the target pid 2, the sender pid 3; the sender
    // asks for pid 2, the target's pid there.
    let script = format!(
        "{tp} target --no-stdin & read line; {tp} kill $! USR1; wait",
        tp = testproc_bin().display()
    );
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "bash", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare runs");
    let mut ready = String::new();
    BufReader::new(unshare.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready line");
    assert!(ready.starts_with("ready pid=2 "), "{ready}");
    let root = child_pid(&unshare);
    let mut target = None;
    assert!(
        sigwho_tests::wait_until(
            || {
                target = sigwho_tests::descendants(root).into_iter().find(|p| {
                    std::fs::read(format!("/proc/{}/cmdline", p.pid))
                        .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"target"))
                });
                target.is_some()
            },
            EVENT_TIMEOUT
        ),
        "target process under unshare"
    );
    let target = target.expect("found");
    let sigwho = watch(target.pid);
    // bash reads its line and runs the sender.
    let mut stdin = unshare.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, b"go\n").expect("write");
    drop(stdin);
    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_eq!(
        field_i64(&ev, "target.pid"),
        Some(i64::from(target.pid)),
        "{ev}"
    );
    assert_eq!(field_i64(&ev, "target.ns_pid"), Some(2), "{ev}");
    assert_eq!(field_i64(&ev, "sender.ns_pid"), Some(3), "{ev}");
    let sender_pid = field_i64(&ev, "sender.pid").expect("sender.pid");
    assert!(
        sender_pid > 3 && sender_pid != i64::from(target.pid),
        "host pid: {ev}"
    );
    // What the sender asked for is in its own namespace's numbers.
    assert_eq!(field_i64(&ev, "requested"), Some(2), "{ev}");
    assert_eq!(sub_args(&ev, "sender"), ["kill", "2", "USR1"], "{ev}");
    let _ = unshare.wait();
}
