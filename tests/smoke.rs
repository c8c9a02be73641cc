//! Self-test of `sigwho-testproc` and the harness. Needs neither sigwho nor root.

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use sigwho_tests::{Sigwho, Target, Value, field, field_i64, field_str, testproc};

const T: Duration = Duration::from_secs(20);

#[track_caller]
fn assert_killed_by(status: ExitStatus, sig: i32) {
    assert_eq!(
        status.signal(),
        Some(sig),
        "expected death by signal {sig}: {status}"
    );
    assert!(!status.core_dumped(), "no core dumps wanted: {status}");
}

#[test]
fn ready_line_and_threads() {
    let mut t = Target::spawn(&["--threads", "2"]);
    assert_eq!(t.tids.len(), 3, "tids {:?}", t.tids);
    assert_eq!(
        t.tids.iter().collect::<HashSet<_>>().len(),
        3,
        "{:?}",
        t.tids
    );
    assert_eq!(t.tids[0], t.pid);
    // SAFETY: getpgid(2) takes an integer and touches no memory of ours.
    assert_eq!(t.pgid, unsafe { libc::getpgid(t.pid) });
    // Not its own group leader unless asked.
    // SAFETY: getpgrp(2) takes nothing and cannot fail.
    assert_eq!(t.pgid, unsafe { libc::getpgrp() });
    for tid in &t.tids {
        let task = format!("/proc/{}/task/{tid}", t.pid);
        assert!(std::path::Path::new(&task).exists(), "{task} missing");
    }
    t.ping();
    // EOF on stdin: exits 0 even with blocked threads.
    t.close_stdin();
    assert_eq!(t.wait(T).code(), Some(0));
}

#[test]
fn exit_code() {
    let mut t = Target::spawn(&[]);
    t.send("exit 3");
    assert_eq!(t.wait(T).code(), Some(3));
}

#[test]
fn segv_pipe_abort_raise() {
    let mut t = Target::spawn(&["--threads", "1"]);
    t.send("segv");
    assert_killed_by(t.wait(T), libc::SIGSEGV);

    // Even with SIGSEGV handled, `segv` kills (it resets the disposition first).
    let mut t = Target::spawn(&["--handle", "SEGV"]);
    t.send("segv");
    assert_killed_by(t.wait(T), libc::SIGSEGV);

    let mut t = Target::spawn(&["--ignore", "PIPE"]);
    t.send("pipe");
    assert_killed_by(t.wait(T), libc::SIGPIPE);

    let mut t = Target::spawn(&[]);
    t.send("abort");
    assert_killed_by(t.wait(T), libc::SIGABRT);

    let mut t = Target::spawn(&[]);
    t.send("raise SIGTERM");
    assert_killed_by(t.wait(T), libc::SIGTERM);

    let mut t = Target::spawn(&["--handle", "usr1"]);
    t.send("raise 10");
    t.ping();
}

#[test]
fn ignored_term_survives_kill() {
    let mut t = Target::spawn(&["--ignore", "TERM"]);
    let pid = t.pid.to_string();
    testproc(&["kill", &pid, "TERM"]).assert_success();
    t.ping();
    testproc(&["kill", &pid, "KILL"]).assert_success();
    assert_killed_by(t.wait(T), libc::SIGKILL);
}

#[test]
fn sigqueue_to_handled_signal() {
    let mut t = Target::spawn(&["--handle", "USR1", "--threads", "1"]);
    let pid = t.pid.to_string();
    let r = testproc(&["sigqueue", &pid, "USR1", "42"]).assert_success();
    assert!(r.stdout.is_empty() && r.stderr.is_empty(), "{r}");
    testproc(&["sigqueue", &pid, "SIGUSR1", "-7"]).assert_success();
    t.ping();
}

#[test]
fn thread_directed_senders() {
    let mut t = Target::spawn(&["--handle", "USR2", "--handle", "HUP", "--threads", "2"]);
    let (pid, tid) = (t.pid.to_string(), t.tids[2].to_string());
    testproc(&["tgkill", &pid, &tid, "USR2"]).assert_success();
    testproc(&["tkill", &tid, "HUP"]).assert_success();
    testproc(&["tkill", &pid, "HUP"]).assert_success();
    t.ping();
    // A thread of another process: tgkill refuses with ESRCH.
    let r = testproc(&["tgkill", "1", &tid, "USR2"]);
    assert_eq!(r.status.code(), Some(1), "{r}");
    assert_eq!(
        r.stderr.trim(),
        "error: tgkill: ESRCH (No such process)",
        "{r}"
    );
    t.ping();
}

#[test]
fn pidfd_send() {
    let mut t = Target::spawn(&["--handle", "INT"]);
    let pid = t.pid.to_string();
    let r = testproc(&["pidfd-send", &pid, "INT"]).assert_success();
    let fd: i32 = r
        .stdout
        .trim()
        .strip_prefix("pidfd=")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pidfd= line: {r}"));
    assert!(fd >= 3, "{r}");
    t.ping();
    testproc(&["pidfd-send", &pid, "QUIT"]).assert_success();
    assert_killed_by(t.wait(T), libc::SIGQUIT);
}

#[test]
fn fork_kill() {
    let mut t = Target::spawn(&[]);
    let r = testproc(&["fork-kill", &t.pid.to_string(), "TERM"]).assert_success();
    let child: i32 = r
        .stdout
        .trim()
        .strip_prefix("child=")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no child= line: {r}"));
    assert_ne!(child, r.pid);
    assert_killed_by(t.wait(T), libc::SIGTERM);

    let r = testproc(&["fork-kill", "2147483647", "TERM"]);
    assert_eq!(r.status.code(), Some(1), "{r}");
    assert_eq!(
        r.stderr.trim(),
        "error: kill: ESRCH (No such process)",
        "{r}"
    );
}

#[test]
fn process_groups_and_sessions() {
    let mut t = Target::spawn(&["--setpgid", "--threads", "1"]);
    assert_eq!(t.pgid, t.pid);
    let mut u = Target::spawn(&["--setsid"]);
    assert_eq!(u.pgid, u.pid);
    // SAFETY: getsid(2) takes an integer and touches no memory of ours.
    assert_eq!(unsafe { libc::getsid(u.pid) }, u.pid);
    let mut both = Target::spawn(&["--setsid", "--setpgid"]);
    assert_eq!(both.pgid, both.pid);

    testproc(&["kill", &format!("-{}", t.pgid), "TERM"]).assert_success();
    assert_killed_by(t.wait(T), libc::SIGTERM);
    u.ping();
    both.ping();
}

#[test]
fn sender_errors_and_usage() {
    let r = testproc(&["kill", "2147483647", "TERM"]);
    assert_eq!(r.status.code(), Some(1), "{r}");
    assert_eq!(
        r.stderr.trim(),
        "error: kill: ESRCH (No such process)",
        "{r}"
    );

    let r = testproc(&["pidfd-send", "2147483647", "TERM"]);
    assert_eq!(r.status.code(), Some(1), "{r}");
    assert!(r.stderr.starts_with("error: pidfd_open: "), "{r}");

    for args in [
        &[][..],
        &["bogus"],
        &["kill", "1"],
        &["kill", "x", "TERM"],
        &["kill", "1", "NOPE"],
        &["sigqueue", "1", "USR1"],
        &["target", "--threads"],
        &["target", "--ignore", "FOO"],
    ] {
        let r = testproc(args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {r}");
        assert!(r.stderr.contains("usage:"), "{args:?}: {r}");
    }
}

#[test]
fn field_paths() {
    let v: Value = serde_json::json!({
        "signal": 15,
        "sender": {"pid": 7, "comm": "kill", "ancestry": [{"pid": 1}, {"pid": 2}]},
    });
    assert_eq!(field_i64(&v, "signal"), Some(15));
    assert_eq!(field_i64(&v, "sender.pid"), Some(7));
    assert_eq!(field_str(&v, "sender.comm"), Some("kill"));
    assert_eq!(field_i64(&v, "sender.ancestry.1.pid"), Some(2));
    assert_eq!(field(&v, "sender.ancestry.2.pid"), &Value::Null);
    assert_eq!(field(&v, "sender.nope"), &Value::Null);
    assert_eq!(field(&v, "signal.x"), &Value::Null);
    assert_eq!(
        field(&v, "sender.ancestry").as_array().map(Vec::len),
        Some(2)
    );
}

/// The Sigwho machinery, against a shell script standing in for sigwho.
#[test]
fn sigwho_harness_with_fake() {
    let mut cmd = Command::new("sh");
    // `{"n":3}` is the fake's readiness line: it comes after the TERM trap is set, and
    // the test signals only once it has seen it (a SIGTERM before the trap would kill
    // sh with no `{"n":4}` and no status 7).
    cmd.arg("-c").arg(
        r#"echo "loading" >&2
           echo '{"n":1}'
           echo "sigwho: tracing (fake)" >&2
           echo '{"n":2}'
           echo 'plain text'
           trap 'echo "{\"n\":4}"; exit 7' TERM
           echo '{"n":3}'
           while :; do sleep 0.05; done"#,
    );
    let mut s = Sigwho::start_with(cmd);
    // Ready: the trap is in place.
    let v = s.wait_for(|v| field_i64(v, "n") == Some(3), T);
    assert_eq!(v["n"], 3);
    assert_eq!(s.seen().len(), 3, "{:?}", s.seen());
    assert_eq!(s.next_event(T).unwrap()["n"], 1);
    let v = s.wait_for(Value::is_string, T);
    assert_eq!(v, Value::String("plain text".into()));
    assert_eq!(s.all_events().len(), 4);
    assert_eq!(s.stderr(), ["loading", "sigwho: tracing (fake)"]);
    assert!(s.signal(libc::SIGTERM));
    let (status, rest) = s.wait_exit(T);
    assert_eq!(status.code(), Some(7));
    let ns: Vec<_> = rest.iter().map(|v| v["n"].clone()).collect();
    assert_eq!(ns, [2, 4]);
}

#[test]
#[should_panic(expected = "sigwho exited before printing")]
fn sigwho_harness_reports_early_exit() {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("echo 'sigwho: cannot load' >&2; exit 1");
    let _ = Sigwho::start_with(cmd);
}
