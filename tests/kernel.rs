//! Kernel conformance suite: one test per thing sigwho must do on every kernel it
//! supports. Its eBPF programs load and attach; `kill`, `tgkill` to one thread, a
//! process-group kill and `pidfd_send_signal` are reported with their sender, target
//! and request; a refused `kill` (EPERM) is reported as failed; a fault, a SIGPIPE and an
//! exit code are reported as such; a cause chain is captured; `sigwho record` + `sigwho
//! query` and `sigwho run` work end to end.
//!
//! Who runs it: `cargo xtask vmtest` boots each kernel of its matrix (Debian's 5.10,
//! 6.1, 6.12 and 7.x, under qemu's software emulation, with this machine's root file
//! system) and runs this executable inside it (`--test-threads=1`,
//! `SIGWHO_TEST_TIME_SCALE=10`, from the workspace root), and on the host; each test's
//! name is a row of its kernel × test table. `cargo xtask test -- --test kernel` runs it
//! natively, like every other test file.
//!
//! So every assertion here must hold on every kernel of the matrix: assert what sigwho
//! promises (docs/json-schema.md), never what one kernel happens to do. A kernel that
//! legitimately lacks a hook is listed in [`MISSING_FEATURES_ALLOWED`], not special-cased
//! in a test. The tests need only `target/debug/sigwho`, `target/debug/sigwho-testproc`
//! and a Debian base system (bash, coreutils, util-linux's setpriv): no python, network
//! or package installs. Each test is independent and starts its own sigwho (an eBPF load
//! costs seconds under emulation, so each test loads the programs once); every wait goes
//! through the harness's `scaled`, and nothing sleeps to synchronise: targets print a
//! ready line and answer `ping`, sigwho prints `sigwho: tracing`, and the tests wait for
//! sigwho's events.

use std::{os::unix::process::ExitStatusExt, path::Path, process::Command, time::Duration};

use sigwho_tests::{
    Run, SIGWHO_START_TIMEOUT, Sigwho, TARGET_TIMEOUT, Target, TempDir, Value, field, field_i64,
    field_str, hint_ids, is_exit, is_signal, require_root, run, scaled, sigwho_bin, strings,
    testproc, testproc_bin, wait_until,
};

/// Features `sigwho doctor --json` may report as `"missing"` without failing
/// [`programs_load`]: `(feature name, the kernels that lack it and why)`. Empty: every
/// kernel of the matrix must offer everything sigwho uses (or a fallback, status
/// `"fallback"`, which is fine). Add an entry only for a hook a supported kernel really
/// does not have (not for one sigwho fails to load), and say which kernels in the
/// second field.
const MISSING_FEATURES_ALLOWED: &[(&str, &str)] = &[];

/// Features that must be `"used"` (not a fallback) on every kernel of the matrix: what
/// sigwho cannot trace without, and the plain loads through BTF task pointers, whose
/// refusal by a verifier would otherwise pass unseen as a (slower) fallback.
const FEATURES_USED_EVERYWHERE: &[&str] = &[
    "btf",
    "ring_buffer",
    "helpers",
    "tp_btf",
    "direct_loads",
    "sched_process_free",
];

/// How long an event may take to show up after its cause (times the time scale).
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
const NOBODY: u32 = 65534;

fn event_timeout() -> Duration {
    scaled(EVENT_TIMEOUT)
}

/// A pid as `field_i64` returns one, to compare with it.
#[expect(
    clippy::unnecessary_wraps,
    reason = "compared with field_i64's Option, which is None when the field is missing"
)]
fn pid_of(pid: i32) -> Option<i64> {
    Some(i64::from(pid))
}

fn our_pid() -> i64 {
    i64::from(std::process::id())
}

/// `sigwho --target-pid PID --json`, once it is tracing.
fn watch(pid: i32) -> Sigwho {
    require_root();
    Sigwho::start(&["--target-pid", &pid.to_string(), "--json"])
}

fn ancestry_pids(ev: &Value, path: &str) -> Vec<i64> {
    field(ev, path)
        .as_array()
        .unwrap_or_else(|| panic!("{path} is not an array in {ev}"))
        .iter()
        .map(|a| a["pid"].as_i64().unwrap_or_default())
        .collect()
}

fn cause(ev: &Value) -> &Vec<Value> {
    field(ev, "cause")
        .as_array()
        .unwrap_or_else(|| panic!("cause is not an array in {ev}"))
}

/// What every signal report aimed at `target` (a `sigwho-testproc target` this test
/// started) carries, whatever its origin (as tests/live.rs checks).
fn assert_common_fields(ev: &Value, target: &Target) {
    let time = field_str(ev, "time").expect("time");
    assert!(
        time.ends_with('Z') && time.len() == 30,
        "RFC 3339 with ns: {time}"
    );
    assert_eq!(field_i64(ev, "target.pid"), pid_of(target.pid), "{ev}");
    // comm is the thread's name; the main thread keeps the program's.
    if field_i64(ev, "target.tid") == pid_of(target.pid) {
        assert_eq!(
            field_str(ev, "target.comm"),
            Some("sigwho-testproc"),
            "{ev}"
        );
    }
    assert_eq!(strings(ev, "target.argv")[1], "target", "{ev}");
    assert!(
        field_str(ev, "target.exe").is_some_and(|e| e.ends_with("sigwho-testproc")),
        "{ev}"
    );
    assert!(field_str(ev, "target.start_time").is_some(), "{ev}");
    assert_eq!(field_i64(ev, "target.uid"), Some(0), "{ev}");
    for who in ["sender", "target"] {
        for key in [
            "pid",
            "tid",
            "comm",
            "exe",
            "argv",
            "uid",
            "start_time",
            "ancestry",
        ] {
            assert!(ev[who].get(key).is_some(), "{who}.{key} missing in {ev}");
        }
        // Ancestry goes up to pid 1.
        assert_eq!(
            ancestry_pids(ev, &format!("{who}.ancestry")).last(),
            Some(&1),
            "{who} ancestry: {ev}"
        );
    }
    // The test process started the target, so it is the target's parent.
    assert_eq!(
        ancestry_pids(ev, "target.ancestry")[0],
        our_pid(),
        "target's parent: {ev}"
    );
    assert_why_fields(ev);
}

/// The why-fields every signal report carries, well formed (as tests/explain.rs checks).
fn assert_why_fields(ev: &Value) {
    for key in ["origin_class", "relation"] {
        assert!(field_str(ev, key).is_some(), "{key} missing in {ev}");
    }
    for (i, link) in cause(ev).iter().enumerate() {
        for key in [
            "signal", "signo", "time", "origin", "code", "sender", "target",
        ] {
            assert!(link.get(key).is_some(), "cause.{i}.{key} missing in {ev}");
        }
        for key in [
            "pid",
            "tid",
            "comm",
            "exe",
            "argv",
            "uid",
            "start_time",
            "ancestry",
        ] {
            assert!(
                link["sender"].get(key).is_some(),
                "cause.{i}.sender.{key} missing in {ev}"
            );
        }
        for key in ["pid", "comm", "exe", "argv"] {
            assert!(
                link["target"].get(key).is_some(),
                "cause.{i}.target.{key} missing in {ev}"
            );
        }
    }
    for key in ["pid", "comm", "exe", "argv"] {
        assert!(
            field(ev, "root_sender").get(key).is_some(),
            "root_sender.{key} missing in {ev}"
        );
    }
    assert!(field(ev, "hints").is_array(), "hints missing in {ev}");
}

/// A signal with no cause: the sender started it all.
fn assert_no_cause(ev: &Value) {
    assert!(cause(ev).is_empty(), "no cause chain: {ev}");
    assert_eq!(
        field_i64(ev, "root_sender.pid"),
        field_i64(ev, "sender.pid"),
        "{ev}"
    );
}

/// The sender is a `sigwho-testproc ARGS...` run by this test (`run`).
fn assert_testproc_sender(ev: &Value, sender: &Run, args: &[&str]) {
    assert_eq!(field_i64(ev, "sender.pid"), pid_of(sender.pid), "{ev}");
    assert_eq!(field_i64(ev, "sender.tid"), pid_of(sender.pid), "{ev}");
    assert_eq!(
        field_str(ev, "sender.comm"),
        Some("sigwho-testproc"),
        "{ev}"
    );
    assert_eq!(strings(ev, "sender.argv")[1..], *args, "{ev}");
    assert!(
        field_str(ev, "sender.exe").is_some_and(|e| e.ends_with("sigwho-testproc")),
        "{ev}"
    );
    assert_eq!(
        ancestry_pids(ev, "sender.ancestry")[0],
        our_pid(),
        "the sender's parent is the test: {ev}"
    );
}

/// Waits for the exit record and checks who it is for.
#[track_caller]
fn exit_record(sigwho: &Sigwho, target: &Target) -> Value {
    let exit = sigwho.wait_for(is_exit, event_timeout());
    assert_eq!(field_i64(&exit, "pid"), pid_of(target.pid), "{exit}");
    assert_eq!(field_str(&exit, "comm"), Some("sigwho-testproc"), "{exit}");
    exit
}

// ---------------------------------------------------------------------------------------
// Loading

/// `sigwho doctor --json`'s report, if this sigwho has the subcommand: the JSON object
/// it prints. None (and the checks are skipped) when it prints none: a sigwho from
/// before `doctor` says "unrecognized subcommand" and exits 2. A doctor that prints its
/// report but exits non-zero (it may, when it cannot trace) is still checked: the
/// report's `can_trace` then fails the test with the report in the message.
/// `sigwho doctor --json`, which must say it can trace (exit 0).
fn doctor() -> Value {
    let mut cmd = Command::new(sigwho_bin());
    cmd.args(["doctor", "--json"]);
    let out = run(cmd, scaled(SIGWHO_START_TIMEOUT));
    let report: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("sigwho doctor --json: not JSON ({e}): {out}"));
    assert!(out.status.success(), "sigwho doctor --json exits 0: {out}");
    report
}

#[test]
fn programs_load() {
    require_root();
    let mut target = Target::spawn(&[]);
    let mut sigwho = watch(target.pid);
    // The target exits 0 on EOF; sigwho reports it and exits 0.
    target.close_stdin();
    let (status, rest) = sigwho.wait_exit(event_timeout());
    let report = sigwho.report();
    assert!(
        status.success(),
        "sigwho exits 0 after its target: {report}"
    );
    let exit = rest
        .iter()
        .find(|ev| is_exit(ev))
        .unwrap_or_else(|| panic!("exit record: {report}"));
    assert_eq!(field_i64(exit, "pid"), pid_of(target.pid), "{exit}");
    assert_eq!(field_i64(exit, "exit_code"), Some(0), "{exit}");
    assert_eq!(target.wait(event_timeout()).code(), Some(0));

    let stderr = sigwho.stderr();
    assert!(
        stderr
            .iter()
            .any(|l| l.starts_with(&format!("sigwho: tracing pid {}", target.pid))),
        "{report}"
    );
    for line in &stderr {
        // Shown with --nocapture, and in the vmtest logs: what this kernel lacks.
        if line.contains("warning:") || line.contains("note:") {
            eprintln!("{line}");
        }
        assert!(
            !line.contains("cannot load") && !line.contains("cannot attach"),
            "a program failed to load or attach: {line}\n{report}"
        );
        assert!(
            !line.contains("panicked"),
            "sigwho panicked: {line}\n{report}"
        );
    }

    let doctor = doctor();
    eprintln!("sigwho doctor --json: {doctor}");
    assert_eq!(
        doctor["can_trace"], true,
        "sigwho doctor says it cannot trace: {doctor}"
    );
    let features = doctor["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no features array: {doctor}"));
    let mut missing = Vec::new();
    for feature in features {
        let name = field_str(feature, "name").unwrap_or_else(|| panic!("unnamed: {doctor}"));
        let status = field_str(feature, "status").unwrap_or_default();
        assert!(
            ["used", "fallback", "missing"].contains(&status),
            "feature {name}: status {status:?}: {doctor}"
        );
        if status == "missing" && !MISSING_FEATURES_ALLOWED.iter().any(|(n, _)| *n == name) {
            missing.push(feature);
        }
    }
    for name in FEATURES_USED_EVERYWHERE {
        let feature = features
            .iter()
            .find(|f| f["name"] == *name)
            .unwrap_or_else(|| panic!("doctor does not report {name}: {doctor}"));
        assert_eq!(
            feature["status"], "used",
            "{name} on kernel {}: {feature}",
            doctor["kernel"]
        );
    }
    assert!(
        missing.is_empty(),
        "features missing on kernel {} that MISSING_FEATURES_ALLOWED does not list: {missing:#?}",
        doctor["kernel"]
    );
}

// ---------------------------------------------------------------------------------------
// Senders

#[test]
fn kill() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(target.pid);
    let script = format!("kill -TERM {}", target.pid);
    let mut shell = Command::new("bash");
    shell.args(["-c", &script, "sigwho-test-shell"]);
    let shell = run(shell, scaled(TARGET_TIMEOUT)).assert_success();

    let ev = sigwho.wait_for(is_signal("SIGTERM"), event_timeout());
    assert_common_fields(&ev, &target);
    assert_eq!(field_i64(&ev, "signo"), Some(15), "{ev}");
    assert_eq!(field_str(&ev, "origin"), Some("kill"), "{ev}");
    assert_eq!(field_str(&ev, "code"), Some("SI_USER"), "{ev}");
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    assert_eq!(field_i64(&ev, "requested"), pid_of(target.pid), "{ev}");
    assert_eq!(field_str(&ev, "scope"), Some("process"), "{ev}");
    assert_eq!(
        field_str(&ev, "call"),
        Some(format!("kill({}, SIGTERM)", target.pid).as_str()),
        "{ev}"
    );
    assert_eq!(ev["group"], true, "{ev}");
    assert_eq!(field_i64(&ev, "target.tid"), pid_of(target.pid), "{ev}");
    assert_eq!(field_i64(&ev, "sender.pid"), pid_of(shell.pid), "{ev}");
    assert_eq!(field_str(&ev, "sender.comm"), Some("bash"), "{ev}");
    assert_eq!(
        strings(&ev, "sender.argv"),
        ["bash", "-c", &script, "sigwho-test-shell"],
        "{ev}"
    );
    assert_eq!(field_i64(&ev, "sender.uid"), Some(0), "{ev}");
    assert_eq!(ancestry_pids(&ev, "sender.ancestry")[0], our_pid(), "{ev}");
    assert_eq!(field_str(&ev, "origin_class"), Some("explicit"), "{ev}");
    // Both started by the test.
    assert_eq!(field_str(&ev, "relation"), Some("sibling"), "{ev}");
    assert_no_cause(&ev);

    let exit = exit_record(&sigwho, &target);
    assert_eq!(field_str(&exit, "signal"), Some("SIGTERM"), "{exit}");
    assert_eq!(field_i64(&exit, "signo"), Some(15), "{exit}");
    assert_eq!(exit["core_dumped"], false, "{exit}");
    assert!(exit.get("exit_code").is_none(), "{exit}");
    assert_eq!(target.wait(event_timeout()).signal(), Some(libc::SIGTERM));
}

/// A selector userspace resolves (`--target-exe`): the programs load with the exec grace
/// on (tracer-ebpf/src/select.rs: `EXECS` at exec and fork, looked up by the target
/// filter of `signal_generate`, the failed-attempt hooks and oom), a process that execs
/// after sigwho started and is signalled the moment it is ready is reported, whether or
/// not sigwho had read its exec by then, and one the selector does not name is not.
#[test]
fn exec_grace_selector() {
    require_root();
    let dir = TempDir::new("kgrace");
    let name = format!("kgrace{}", std::process::id() % 100_000);
    let path = dir.path(&name);
    std::os::unix::fs::symlink(testproc_bin(), &path).unwrap();
    let sigwho = Sigwho::start(&["--target-exe", &format!("{name}*"), "--json"]);
    let mut other = Target::spawn(&["--no-stdin"]);
    let mut cmd = Command::new(&path);
    cmd.args(["target", "--no-stdin"]);
    let mut target = Target::spawn_with(cmd);
    assert!(other.signal(libc::SIGTERM));
    assert!(target.signal(libc::SIGTERM));
    let ev = sigwho.wait_for(
        |ev| is_signal("SIGTERM")(ev) && field_i64(ev, "target.pid") == pid_of(target.pid),
        event_timeout(),
    );
    assert_eq!(field_i64(&ev, "sender.pid"), Some(our_pid()), "{ev}");
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    assert_eq!(
        strings(&ev, "target.argv"),
        [utf8(&path), "target", "--no-stdin"],
        "{ev}"
    );
    // Reaped first: do_exit() fires sched_process_exit before exit_notify(), so from
    // here the exit record is in the ring (or counted lost), and a target that would not
    // die fails here, with its /proc signal state, rather than as a missing event.
    assert_eq!(target.wait(event_timeout()).signal(), Some(libc::SIGTERM));
    let exit = sigwho.wait_for(is_exit, event_timeout());
    assert_eq!(field_i64(&exit, "pid"), pid_of(target.pid), "{exit}");
    assert_eq!(field_str(&exit, "comm"), Some(name.as_str()), "{exit}");
    assert_eq!(other.wait(event_timeout()).signal(), Some(libc::SIGTERM));
    assert!(
        !sigwho
            .all_events()
            .iter()
            .any(|ev| field_i64(ev, "target.pid") == pid_of(other.pid)
                || field_i64(ev, "pid") == pid_of(other.pid)),
        "a process the selector does not name was reported\n{}",
        sigwho.report()
    );
}

/// `SIGWHO_LOG=debug`: the programs load with their aya-log diagnostics switched on (the
/// verifier walks the log calls it prunes when they are off), the reports stay the same,
/// and the eBPF side's lines reach stderr: here, where the signal's request came from
/// (the sender's saved registers, or the `sys_enter` fallback before 5.15).
#[test]
fn ebpf_log_on_request() {
    require_root();
    let mut target = Target::spawn(&[]);
    let mut cmd = Sigwho::command(&["--target-pid", &target.pid.to_string(), "--json"]);
    cmd.env("SIGWHO_LOG", "debug");
    let sigwho = Sigwho::start_with(cmd);
    let script = format!("kill -TERM {}", target.pid);
    let mut shell = Command::new("bash");
    shell.args(["-c", &script, "sigwho-test-shell"]);
    let shell = run(shell, scaled(TARGET_TIMEOUT)).assert_success();

    let ev = sigwho.wait_for(is_signal("SIGTERM"), event_timeout());
    assert_eq!(field_i64(&ev, "sender.pid"), pid_of(shell.pid), "{ev}");
    assert_eq!(field_i64(&ev, "requested"), pid_of(target.pid), "{ev}");
    // syscall 1 is kill (tracer_common::syscall::KILL).
    let expected = format!(
        "sigwho: ebpf: debug: request: kill-family syscall 1 for pid {}, ",
        target.pid
    );
    let logged = |sigwho: &Sigwho| {
        sigwho
            .stderr()
            .iter()
            .any(|line| line.starts_with(&expected))
    };
    assert!(
        wait_until(|| logged(&sigwho), event_timeout()),
        "no eBPF log line on stderr:\n{}",
        sigwho.stderr().join("\n")
    );
    assert_eq!(target.wait(event_timeout()).signal(), Some(libc::SIGTERM));
}

#[test]
fn tgkill_to_a_thread() {
    let mut target = Target::spawn(&["--threads", "2", "--handle", "USR2"]);
    // One of the two extra threads (blocker-0 or blocker-1: they report their tids in
    // whichever order they start), by the name the kernel knows it by.
    let thread = target.tids[2];
    assert_ne!(thread, target.pid);
    let comm_path = format!("/proc/{}/task/{thread}/comm", target.pid);
    let thread_comm = std::fs::read_to_string(&comm_path)
        .unwrap_or_else(|e| panic!("{comm_path}: {e}"))
        .trim()
        .to_owned();
    assert!(
        thread_comm.starts_with("blocker-"),
        "{comm_path}: {thread_comm}"
    );
    let sigwho = watch(target.pid);
    let (pid, tid) = (target.pid.to_string(), thread.to_string());
    let sender = testproc(&["tgkill", &pid, &tid, "USR2"]).assert_success();

    let ev = sigwho.wait_for(is_signal("SIGUSR2"), event_timeout());
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "origin"), Some("tgkill"), "{ev}");
    assert_eq!(field_str(&ev, "code"), Some("SI_TKILL"), "{ev}");
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    assert_eq!(field_i64(&ev, "target.tid"), pid_of(thread), "{ev}");
    assert_eq!(
        field_str(&ev, "target.comm"),
        Some(thread_comm.as_str()),
        "the thread's own name: {ev}"
    );
    assert_eq!(field_i64(&ev, "requested"), pid_of(target.pid), "{ev}");
    assert_eq!(field_i64(&ev, "requested_tid"), pid_of(thread), "{ev}");
    assert_eq!(field_str(&ev, "scope"), Some("thread"), "{ev}");
    assert_eq!(
        field_str(&ev, "call"),
        Some(format!("tgkill({pid}, {tid}, SIGUSR2)").as_str()),
        "{ev}"
    );
    assert_eq!(ev["group"], false, "{ev}");
    assert_testproc_sender(&ev, &sender, &["tgkill", &pid, &tid, "USR2"]);
    assert_eq!(field_str(&ev, "origin_class"), Some("explicit"), "{ev}");
    assert_eq!(field_str(&ev, "relation"), Some("sibling"), "{ev}");
    assert_no_cause(&ev);
    // Handled: the target lives on.
    target.ping();
}

#[test]
fn group_kill() {
    let mut target = Target::spawn(&["--setpgid"]);
    assert_eq!(target.pgid, target.pid);
    let sigwho = watch(target.pid);
    let group = format!("-{}", target.pgid);
    let sender = testproc(&["kill", &group, "TERM"]).assert_success();

    let ev = sigwho.wait_for(is_signal("SIGTERM"), event_timeout());
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "origin"), Some("kill"), "{ev}");
    assert_eq!(field_str(&ev, "code"), Some("SI_USER"), "{ev}");
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    assert_eq!(
        field_i64(&ev, "requested"),
        Some(-i64::from(target.pgid)),
        "{ev}"
    );
    assert_eq!(field_str(&ev, "scope"), Some("process_group"), "{ev}");
    assert_eq!(
        field_str(&ev, "call"),
        Some(format!("kill({group}, SIGTERM)").as_str()),
        "{ev}"
    );
    assert_eq!(ev["group"], true, "{ev}");
    assert_testproc_sender(&ev, &sender, &["kill", &group, "TERM"]);
    assert_eq!(field_str(&ev, "origin_class"), Some("explicit"), "{ev}");
    assert_no_cause(&ev);

    let exit = exit_record(&sigwho, &target);
    assert_eq!(field_str(&exit, "signal"), Some("SIGTERM"), "{exit}");
    assert_eq!(target.wait(event_timeout()).signal(), Some(libc::SIGTERM));
}

#[test]
fn pidfd_send_signal() {
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let sigwho = watch(target.pid);
    let pid = target.pid.to_string();
    let sender = testproc(&["pidfd-send", &pid, "USR1"]).assert_success();
    let fd: i64 = sender
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pidfd="))
        .and_then(|fd| fd.trim().parse().ok())
        .unwrap_or_else(|| panic!("pidfd-send prints pidfd=FD: {sender}"));

    let ev = sigwho.wait_for(is_signal("SIGUSR1"), event_timeout());
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "origin"), Some("pidfd_send_signal"), "{ev}");
    // A null siginfo: the kernel fills it in as for kill(2).
    assert_eq!(field_str(&ev, "code"), Some("SI_USER"), "{ev}");
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    assert_eq!(field_i64(&ev, "requested"), Some(fd), "{ev}");
    assert_eq!(field_i64(&ev, "requested_pid"), pid_of(target.pid), "{ev}");
    assert_eq!(field_str(&ev, "scope"), Some("pidfd"), "{ev}");
    assert_eq!(
        field_str(&ev, "call"),
        Some(format!("pidfd_send_signal({fd} -> pid {pid}, SIGUSR1)").as_str()),
        "{ev}"
    );
    assert_eq!(ev["group"], true, "{ev}");
    assert_testproc_sender(&ev, &sender, &["pidfd-send", &pid, "USR1"]);
    assert_eq!(field_str(&ev, "origin_class"), Some("explicit"), "{ev}");
    assert_no_cause(&ev);
    target.ping();
}

#[test]
fn failed_kill_eperm() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(target.pid);
    let pid = target.pid.to_string();
    // setpriv execs the sender in its own place: the same pid, as nobody.
    let mut setpriv = Command::new("setpriv");
    setpriv
        .args([
            "--reuid",
            &NOBODY.to_string(),
            "--regid",
            &NOBODY.to_string(),
        ])
        .arg("--clear-groups")
        .arg(testproc_bin())
        .args(["kill", &pid, "TERM"]);
    let sender = run(setpriv, scaled(TARGET_TIMEOUT));
    assert_eq!(
        sender.status.code(),
        Some(1),
        "kill as nobody must fail: {sender}"
    );
    assert_eq!(
        sender.stderr.trim(),
        "error: kill: EPERM (Operation not permitted)",
        "{sender}"
    );

    let ev = sigwho.wait_for(is_signal("SIGTERM"), event_timeout());
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "result"), Some("failed"), "{ev}");
    assert_eq!(field_str(&ev, "errno"), Some("EPERM"), "{ev}");
    assert_eq!(field_str(&ev, "origin"), Some("kill"), "{ev}");
    assert_eq!(field_i64(&ev, "requested"), pid_of(target.pid), "{ev}");
    assert_eq!(field_str(&ev, "scope"), Some("process"), "{ev}");
    assert_eq!(
        field_str(&ev, "call"),
        Some(format!("kill({pid}, SIGTERM)").as_str()),
        "{ev}"
    );
    assert_eq!(
        field_i64(&ev, "sender.uid"),
        Some(i64::from(NOBODY)),
        "{ev}"
    );
    assert_testproc_sender(&ev, &sender, &["kill", &pid, "TERM"]);
    // Refused: the target lives on, and no exit is reported.
    target.ping();
    assert!(
        !sigwho.all_events().iter().any(is_exit),
        "{}",
        sigwho.report()
    );
}

// ---------------------------------------------------------------------------------------
// Kernel-made signals and exits

#[test]
fn fault_sigsegv() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(target.pid);
    target.send("segv");

    let ev = sigwho.wait_for(is_signal("SIGSEGV"), event_timeout());
    assert_common_fields(&ev, &target);
    assert_eq!(field_i64(&ev, "signo"), Some(11), "{ev}");
    assert_eq!(field_str(&ev, "origin"), Some("kernel"), "{ev}");
    assert_eq!(field_str(&ev, "code"), Some("SEGV_MAPERR"), "{ev}");
    assert_eq!(field_str(&ev, "fault_addr"), Some("0x10"), "{ev}");
    // Forced on the faulting thread.
    assert_eq!(ev["group"], false, "{ev}");
    assert_eq!(field_i64(&ev, "target.tid"), pid_of(target.pid), "{ev}");
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    assert_eq!(field_str(&ev, "origin_class"), Some("fault"), "{ev}");
    assert_eq!(field_str(&ev, "relation"), Some("self"), "{ev}");
    assert_eq!(field_i64(&ev, "sender.pid"), pid_of(target.pid), "{ev}");
    for absent in ["requested", "scope", "call", "errno"] {
        assert!(ev.get(absent).is_none(), "no {absent} for a fault: {ev}");
    }
    assert_no_cause(&ev);

    let exit = exit_record(&sigwho, &target);
    assert_eq!(field_str(&exit, "signal"), Some("SIGSEGV"), "{exit}");
    assert_eq!(exit["core_dumped"], false, "the target disables core dumps");
    assert_eq!(target.wait(event_timeout()).signal(), Some(libc::SIGSEGV));
}

#[test]
fn sigpipe() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(target.pid);
    target.send("pipe");

    let ev = sigwho.wait_for(is_signal("SIGPIPE"), event_timeout());
    assert_common_fields(&ev, &target);
    assert_eq!(field_i64(&ev, "signo"), Some(13), "{ev}");
    assert_eq!(field_str(&ev, "origin"), Some("kernel"), "{ev}");
    // The kernel sends it with no siginfo (send_sig), to the writing thread.
    assert_eq!(field_str(&ev, "code"), Some("SI_USER"), "{ev}");
    assert_eq!(ev["group"], false, "{ev}");
    assert_eq!(field_str(&ev, "origin_class"), Some("broken_pipe"), "{ev}");
    assert_eq!(field_str(&ev, "relation"), Some("self"), "{ev}");
    assert_eq!(field_i64(&ev, "sender.pid"), pid_of(target.pid), "{ev}");
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    for absent in ["requested", "scope", "call", "errno"] {
        assert!(ev.get(absent).is_none(), "no {absent} for SIGPIPE: {ev}");
    }
    assert_no_cause(&ev);

    let exit = exit_record(&sigwho, &target);
    assert_eq!(field_str(&exit, "signal"), Some("SIGPIPE"), "{exit}");
    assert_eq!(target.wait(event_timeout()).signal(), Some(libc::SIGPIPE));
}

#[test]
fn exit_code() {
    let mut target = Target::spawn(&[]);
    let mut sigwho = watch(target.pid);
    target.send("exit 42");
    let (status, events) = sigwho.wait_exit(event_timeout());
    assert!(status.success(), "sigwho exits 0: {}", sigwho.report());
    let exit = events
        .iter()
        .find(|ev| is_exit(ev))
        .unwrap_or_else(|| panic!("exit record: {}", sigwho.report()));
    assert_eq!(field_i64(exit, "exit_code"), Some(42), "{exit}");
    assert_eq!(field_i64(exit, "pid"), pid_of(target.pid), "{exit}");
    assert_eq!(field_str(exit, "comm"), Some("sigwho-testproc"), "{exit}");
    assert!(exit.get("signal").is_none(), "{exit}");
    // Nothing signalled it: no signal reports.
    assert!(
        !sigwho
            .all_events()
            .iter()
            .any(|e| field_str(e, "event") == Some("signal")),
        "{}",
        sigwho.report()
    );
    assert_eq!(target.wait(event_timeout()).code(), Some(42));
}

// ---------------------------------------------------------------------------------------
// Why

#[test]
fn cause_chain_two_links() {
    // A (a `kill` sender) -> B (relays TERM) -> C (watched).
    let mut c = Target::spawn(&[]);
    let mut b = Target::spawn(&["--relay", &format!("TERM:{}", c.pid)]);
    let sigwho = watch(c.pid);
    let a = testproc(&["kill", &b.pid.to_string(), "TERM"]).assert_success();

    let ev = sigwho.wait_for(is_signal("SIGTERM"), event_timeout());
    assert_common_fields(&ev, &c);
    assert_eq!(field_i64(&ev, "sender.pid"), pid_of(b.pid), "{ev}");
    assert_eq!(strings(&ev, "sender.argv")[1], "target", "{ev}");
    assert_eq!(field_str(&ev, "origin"), Some("kill"), "{ev}");
    assert_eq!(field_str(&ev, "code"), Some("SI_USER"), "{ev}");
    assert_eq!(field_i64(&ev, "requested"), pid_of(c.pid), "{ev}");
    assert_eq!(field_str(&ev, "origin_class"), Some("explicit"), "{ev}");
    // B and C were both started by the test process.
    assert_eq!(field_str(&ev, "relation"), Some("sibling"), "{ev}");
    // The chain: this report is B -> C, its one cause link A -> B.
    assert_eq!(cause(&ev).len(), 1, "one link, B <- A: {ev}");
    assert_eq!(field_str(&ev, "cause.0.signal"), Some("SIGTERM"), "{ev}");
    assert_eq!(field_i64(&ev, "cause.0.signo"), Some(15), "{ev}");
    assert_eq!(field_str(&ev, "cause.0.origin"), Some("kill"), "{ev}");
    assert_eq!(field_str(&ev, "cause.0.code"), Some("SI_USER"), "{ev}");
    assert_eq!(field_i64(&ev, "cause.0.sender.pid"), pid_of(a.pid), "{ev}");
    assert_eq!(strings(&ev, "cause.0.sender.argv")[1], "kill", "{ev}");
    assert_eq!(
        ancestry_pids(&ev, "cause.0.sender.ancestry")[0],
        our_pid(),
        "{ev}"
    );
    assert_eq!(field_i64(&ev, "cause.0.target.pid"), pid_of(b.pid), "{ev}");
    assert_eq!(strings(&ev, "cause.0.target.argv")[1], "target", "{ev}");
    assert_eq!(field_i64(&ev, "root_sender.pid"), pid_of(a.pid), "{ev}");
    assert_eq!(strings(&ev, "root_sender.argv")[1], "kill", "{ev}");
    let t0 = field_str(&ev, "cause.0.time").unwrap_or_default();
    let t = field_str(&ev, "time").unwrap_or_default();
    // Same-length RFC 3339 UTC strings compare like the times they name.
    assert!(t0 <= t, "the cause comes first: {ev}");

    let exit = exit_record(&sigwho, &c);
    assert_eq!(field_str(&exit, "signal"), Some("SIGTERM"), "{exit}");
    assert!(b.wait(event_timeout()).success(), "B relays and exits 0");
    assert_eq!(c.wait(event_timeout()).signal(), Some(libc::SIGTERM));
}

// ---------------------------------------------------------------------------------------
// sigwho record + sigwho query

fn utf8(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// `sigwho query --journal J ARGS --json`, parsed, without gap records; panics unless it
/// exits 0. The recorder records the whole machine, so anything else running (a storm, a
/// benchmark) can overflow its ring buffer: the journal says so with gaps, which a query
/// shows whatever its filters. The tests look for their own signals, whose loss would
/// fail them anyway.
fn query_json(journal: &Path, args: &[&str]) -> Vec<Value> {
    let mut cmd = Command::new(sigwho_bin());
    cmd.args(["query", "--journal", utf8(journal)])
        .args(args)
        .arg("--json");
    let out = run(cmd, event_timeout()).assert_success();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .filter(|e: &Value| e["event"] != "gap")
        .collect()
}

/// Queries until the journal has an event for `pid` that `pred` accepts (the recorder
/// has no signal for "written"; each query is a fresh process, no sleeping beyond the
/// harness's poll).
#[track_caller]
fn wait_recorded(journal: &Path, pid: i32, pred: impl Fn(&Value) -> bool) -> Value {
    let pid = pid.to_string();
    let mut found = None;
    let mut last = Vec::new();
    let ok = wait_until(
        || {
            last = query_json(journal, &["--target-pid", &pid]);
            found = last.iter().find(|e| pred(e)).cloned();
            found.is_some()
        },
        event_timeout(),
    );
    assert!(
        ok,
        "no matching event for pid {pid} in the journal: {last:#?}"
    );
    found.unwrap()
}

#[test]
fn record_and_query() {
    require_root();
    let dir = TempDir::new("kernel-record");
    let journal = dir.path("journal");
    let mut recorder = Sigwho::start_waiting_for(
        Sigwho::command(&["record", "--journal", utf8(&journal)]),
        "sigwho: recording",
    );
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let pid = target.pid.to_string();
    let sender = testproc(&["kill", &pid, "USR1"]).assert_success();

    let ev = wait_recorded(&journal, target.pid, |ev| {
        is_signal("SIGUSR1")(ev) && field_i64(ev, "sender.pid") == pid_of(sender.pid)
    });
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "origin"), Some("kill"), "{ev}");
    assert_eq!(field_str(&ev, "code"), Some("SI_USER"), "{ev}");
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    assert_eq!(field_i64(&ev, "requested"), pid_of(target.pid), "{ev}");
    assert_eq!(
        field_str(&ev, "call"),
        Some(format!("kill({pid}, SIGUSR1)").as_str()),
        "{ev}"
    );
    assert_testproc_sender(&ev, &sender, &["kill", &pid, "USR1"]);
    assert_eq!(field_str(&ev, "origin_class"), Some("explicit"), "{ev}");
    assert_no_cause(&ev);

    // How it ended, too: EOF makes it exit 0.
    target.ping();
    target.close_stdin();
    assert_eq!(target.wait(event_timeout()).code(), Some(0));
    let exit = wait_recorded(&journal, target.pid, is_exit);
    assert_eq!(field_i64(&exit, "exit_code"), Some(0), "{exit}");

    // Filters: by sender, and by signal.
    let by_sender = query_json(
        &journal,
        &[
            "--target-pid",
            &pid,
            "--sender-pid",
            &sender.pid.to_string(),
        ],
    );
    assert_eq!(by_sender.len(), 1, "{by_sender:#?}");
    assert_eq!(field_i64(&by_sender[0], "sender.pid"), pid_of(sender.pid));
    let by_signal = query_json(&journal, &["--target-pid", &pid, "--signal", "USR1"]);
    assert_eq!(by_signal.len(), 1, "{by_signal:#?}");

    assert!(recorder.signal(libc::SIGTERM));
    let (status, _) = recorder.wait_exit(event_timeout());
    assert!(status.success(), "SIGTERM: exit 0\n{}", recorder.report());
    for line in recorder.stderr() {
        assert!(
            !line.contains("cannot load") && !line.contains("cannot attach"),
            "{line}\n{}",
            recorder.report()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Fallbacks

/// Every fallback a kernel may need, forced at once (`SIGWHO_DISABLE_HOOKS`): the sender
/// read without `bpf_get_current_task_btf()`, requests from `syscalls:sys_enter_*` instead of
/// `bpf_task_pt_regs()`, probe reads instead of direct loads, failed attempts from
/// `sys_exit_*` tracepoints instead of fexit. The recorder (which folds storms in the
/// kernel) and the live view still name sender, target and request, on every kernel.
#[test]
fn fallback_paths() {
    const FALLBACKS: &str =
        "current-task-btf,task-pt-regs,direct-loads,syscall-fexit,siglock-irqs-off";
    require_root();
    let dir = TempDir::new("kernel-fallback");
    let journal = dir.path("journal");
    let mut record = Sigwho::command(&["record", "--journal", utf8(&journal)]);
    record.env("SIGWHO_DISABLE_HOOKS", FALLBACKS);
    let mut recorder = Sigwho::start_waiting_for(record, "sigwho: recording");
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let pid = target.pid.to_string();
    let mut live = Sigwho::command(&["--target-pid", &pid, "--json"]);
    live.env("SIGWHO_DISABLE_HOOKS", FALLBACKS);
    let live = Sigwho::start_with(live);

    let sender = testproc(&["tgkill", &pid, &pid, "USR1"]).assert_success();
    let check = |ev: &Value, target: &Target| {
        assert_common_fields(ev, target);
        assert_eq!(field_str(ev, "origin"), Some("tgkill"), "{ev}");
        assert_eq!(field_str(ev, "code"), Some("SI_TKILL"), "{ev}");
        assert_eq!(
            field_str(ev, "call"),
            Some(format!("tgkill({pid}, {pid}, SIGUSR1)").as_str()),
            "{ev}"
        );
        assert_testproc_sender(ev, &sender, &["tgkill", &pid, &pid, "USR1"]);
    };
    let ev = live.wait_for(is_signal("SIGUSR1"), event_timeout());
    check(&ev, &target);
    target.ping();
    let ev = wait_recorded(&journal, target.pid, |ev| {
        is_signal("SIGUSR1")(ev) && field_i64(ev, "sender.pid") == pid_of(sender.pid)
    });
    check(&ev, &target);

    // A refused request, seen through sys_exit_kill with its arguments from
    // sys_enter_kill.
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        &NOBODY.to_string(),
        "--regid",
        &NOBODY.to_string(),
        "--clear-groups",
    ])
    .arg(testproc_bin())
    .args(["kill", &pid, "TERM"]);
    let refused = run(cmd, scaled(TARGET_TIMEOUT));
    assert!(!refused.status.success(), "{refused}");
    let ev = live.wait_for(
        |ev| is_signal("SIGTERM")(ev) && field_str(ev, "result") == Some("failed"),
        event_timeout(),
    );
    assert_eq!(field_str(&ev, "errno"), Some("EPERM"), "{ev}");
    assert_eq!(
        field_str(&ev, "call"),
        Some(format!("kill({pid}, SIGTERM)").as_str()),
        "{ev}"
    );
    assert_eq!(field_i64(&ev, "sender.pid"), pid_of(refused.pid), "{ev}");

    assert!(recorder.signal(libc::SIGTERM));
    let (status, _) = recorder.wait_exit(event_timeout());
    assert!(status.success(), "SIGTERM: exit 0\n{}", recorder.report());
    for line in recorder.stderr().iter().chain(live.stderr().iter()) {
        assert!(
            !line.contains("cannot load") && !line.contains("cannot attach"),
            "{line}"
        );
    }
}

/// The bench's floors (`SIGWHO_DISABLE_HOOKS=programs`, and `count-only` also on its
/// fallback paths: the sender without `bpf_get_current_task_btf()`, no saved registers,
/// probe reads) pass this kernel's verifier: the recorder with each says so in one
/// warning, attaches every hook, and records nothing of a signal sent while it runs.
#[test]
fn bench_floors_load() {
    require_root();
    for mode in [
        "programs",
        "count-only",
        "count-only,current-task-btf,task-pt-regs,direct-loads",
    ] {
        let dir = TempDir::new("kernel-floor");
        let journal = dir.path("journal");
        let mut record = Sigwho::command(&["record", "--journal", utf8(&journal)]);
        record.env("SIGWHO_DISABLE_HOOKS", mode);
        let mut recorder = Sigwho::start_waiting_for(record, "sigwho: recording");
        let mut target = Target::spawn(&["--handle", "USR1"]);
        let pid = target.pid.to_string();
        testproc(&["kill", &pid, "USR1"]).assert_success();
        target.ping();
        assert!(recorder.signal(libc::SIGTERM));
        let (status, _) = recorder.wait_exit(event_timeout());
        let report = recorder.report();
        assert!(status.success(), "{mode}: {report}");
        let stderr = recorder.stderr();
        let warned = stderr
            .iter()
            .filter(|l| {
                l.starts_with("sigwho: warning: every program disabled by SIGWHO_DISABLE_HOOKS")
            })
            .count();
        assert_eq!(warned, 1, "{mode}: {report}");
        assert!(
            stderr
                .iter()
                .any(|l| l.starts_with("sigwho: recorded 0 events (0 signals, 0 exits)")),
            "{mode}: {report}"
        );
        for line in &stderr {
            assert!(
                !line.contains("cannot load") && !line.contains("cannot attach"),
                "{mode}: {line}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// sigwho run -- CMD

/// `sigwho run [ARGS] --report FILE -- bash -c SCRIPT` in `dir`: the run, then the
/// report's JSON lines and their text.
fn sigwho_run(dir: &TempDir, args: &[&str], script: &str) -> (Run, Vec<Value>, String) {
    let report_path = dir.path("report.json");
    let mut cmd = Command::new(sigwho_bin());
    cmd.arg("run")
        .args(args)
        .args(["--report", utf8(&report_path), "--", "bash", "-c", script])
        .env_remove("GITHUB_ACTIONS");
    let out = run(cmd, scaled(SIGWHO_START_TIMEOUT + EVENT_TIMEOUT));
    let text = std::fs::read_to_string(&report_path)
        .unwrap_or_else(|e| panic!("read {}: {e}\n{out}", report_path.display()));
    let report = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect();
    (out, report, text)
}

#[test]
fn run_command() {
    require_root();
    let dir = TempDir::new("kernel-run");
    let testproc = testproc_bin();
    let testproc = utf8(&testproc);
    assert!(!testproc.contains('\''), "{testproc}");
    // A target in the command's tree, killed by a sibling once it is ready; the command
    // then exits 3.
    let read_timeout = scaled(TARGET_TIMEOUT).as_secs().max(1);
    let script = format!(
        r#"coproc T {{ exec '{testproc}' target --no-stdin; }}
read -r -t {read_timeout} ready <&"${{T[0]}}" && [[ $ready == ready* ]] || exit 99
bash -c "kill -TERM $T_PID"
wait $T_PID
exit 3"#
    );
    let (out, report, text) = sigwho_run(&dir, &[], &script);
    assert_eq!(out.status.code(), Some(3), "the command's status: {out}");
    assert!(
        out.stdout.is_empty(),
        "sigwho writes nothing to stdout: {out}"
    );
    let context = format!("{text}\n{out}");

    let ev = report
        .iter()
        .find(|e| is_signal("SIGTERM")(e) && field_str(e, "target.comm") == Some("sigwho-testproc"))
        .unwrap_or_else(|| panic!("no SIGTERM to the target:\n{context}"));
    let target_pid = field_i64(ev, "target.pid").expect("target.pid");
    let sender_pid = field_i64(ev, "sender.pid").expect("sender.pid");
    assert_eq!(
        strings(ev, "target.argv")[1..],
        ["target", "--no-stdin"],
        "{ev}"
    );
    assert_eq!(field_str(ev, "origin"), Some("kill"), "{ev}");
    assert_eq!(field_str(ev, "code"), Some("SI_USER"), "{ev}");
    assert_eq!(field_str(ev, "result"), Some("delivered"), "{ev}");
    assert_eq!(field_i64(ev, "requested"), Some(target_pid), "{ev}");
    assert_eq!(field_str(ev, "sender.comm"), Some("bash"), "{ev}");
    assert_eq!(
        strings(ev, "sender.argv"),
        ["bash", "-c", &format!("kill -TERM {target_pid}")],
        "the inner bash sent it: {ev}"
    );
    assert_eq!(field_str(ev, "origin_class"), Some("explicit"), "{ev}");
    assert_eq!(field_str(ev, "relation"), Some("sibling"), "{ev}");
    assert_eq!(ev["unexpected"], true, "{ev}");
    // The command (the outer bash) is the parent of both.
    let cmd_pid = field_i64(ev, "sender.ancestry.0.pid").expect("sender's parent");
    assert_eq!(
        strings(ev, "sender.ancestry.0.argv"),
        ["bash", "-c", &script],
        "{ev}"
    );
    assert_eq!(
        field_i64(ev, "target.ancestry.0.pid"),
        Some(cmd_pid),
        "{ev}"
    );
    assert_eq!(
        ancestry_pids(ev, "sender.ancestry").last(),
        Some(&1),
        "{ev}"
    );

    let exit = report
        .iter()
        .find(|e| is_exit(e) && field_i64(e, "pid") == Some(target_pid))
        .unwrap_or_else(|| panic!("no exit record for the target:\n{context}"));
    assert_eq!(field_str(exit, "signal"), Some("SIGTERM"), "{exit}");

    let summary = report.last().expect("report has lines");
    assert_eq!(field_str(summary, "event"), Some("summary"), "{context}");
    assert_eq!(field_i64(summary, "pid"), Some(cmd_pid), "{summary}");
    assert_eq!(field_i64(summary, "exit_status"), Some(3), "{summary}");
    assert_eq!(field_i64(summary, "exit_code"), Some(3), "{summary}");
    assert_eq!(strings(summary, "command"), ["bash", "-c", &script]);
    assert_eq!(field_i64(summary, "lost"), Some(0), "{summary}");
    assert!(
        field_i64(summary, "unexpected").unwrap_or(0) >= 1,
        "{summary}"
    );
    let killed = summary["killed"]
        .as_array()
        .unwrap_or_else(|| panic!("killed list: {summary}"));
    let killed_target = killed
        .iter()
        .find(|k| field_i64(k, "pid") == Some(target_pid))
        .unwrap_or_else(|| panic!("the target is not among the killed: {summary}"));
    assert_eq!(field_str(killed_target, "signal"), Some("SIGTERM"));
    assert_eq!(field_i64(killed_target, "sender.pid"), Some(sender_pid));

    // The summary on stderr names the signal, its target and its sender.
    assert!(
        out.stderr.contains(&format!(
            "unexpected SIGTERM to pid {target_pid} (sigwho-testproc)"
        )),
        "{out}"
    );
    assert!(
        out.stderr
            .contains(&format!("SIGTERM from pid {sender_pid} (bash)")),
        "{out}"
    );
}

/// SIGKILL puts the target in group exit at once (kernel/signal.c, `complete_signal()`);
/// a SIGTERM right after is dropped (`prepare_signal()`), and may come after the target's
/// `sched_process_exit` (which 6.16+ fires before the memory is torn down): `sigwho run`
/// keeps the target watched until it is reaped, reports the SIGTERM as dropped because
/// the target is exiting, and does not count it as unexpected.
#[test]
fn signal_to_an_exiting_target() {
    require_root();
    let dir = TempDir::new("kernel-exiting");
    let testproc = testproc_bin();
    let testproc = utf8(&testproc);
    assert!(!testproc.contains('\''), "{testproc}");
    let read_timeout = scaled(TARGET_TIMEOUT).as_secs().max(1);
    // Memory to tear down makes the exit take a while. One process sends both signals
    // back to back (with bash's builtin kill, bash could reap the target in between).
    let script = format!(
        r#"coproc T {{ exec '{testproc}' target; }}
read -r -t {read_timeout} ready <&"${{T[0]}}" && [[ $ready == ready* ]] || exit 99
echo "alloc 64" >&"${{T[1]}}"
read -r -t {read_timeout} done <&"${{T[0]}}" && [[ $done == allocated ]] || exit 98
pid=$T_PID
"{testproc}" kill $pid KILL,TERM
wait $pid
echo $pid"#
    );
    let (out, report, text) = sigwho_run(&dir, &["--quiet"], &script);
    assert_eq!(out.status.code(), Some(0), "the command's status: {out}");
    let target: i64 = out
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("pid: {out}"));
    let to_target = |sig: &'static str| {
        report
            .iter()
            .find(|ev| is_signal(sig)(ev) && field_i64(ev, "target.pid") == Some(target))
            .unwrap_or_else(|| panic!("no {sig} to {target}:\n{text}\n{out}"))
    };
    let kill = to_target("SIGKILL");
    assert_eq!(field_str(kill, "result"), Some("delivered"), "{kill}");
    assert_eq!(kill["unexpected"], true, "{kill}");
    let term = to_target("SIGTERM");
    assert_eq!(field_str(term, "result"), Some("dropped_exiting"), "{term}");
    assert_eq!(term["unexpected"], false, "{term}");
    assert!(
        hint_ids(term).contains(&"target-exiting".to_owned()),
        "{term}"
    );
    assert_eq!(
        field_i64(term, "sender.pid"),
        field_i64(kill, "sender.pid"),
        "{term}"
    );
    let summary = report.last().expect("report has lines");
    assert_eq!(field_str(summary, "event"), Some("summary"), "{text}");
    assert_eq!(field_i64(summary, "unexpected"), Some(1), "{summary}");
}
