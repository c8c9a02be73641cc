//! sigwho under hostile conditions: capabilities dropped (the error names exactly what
//! is missing), each optional hook missing (a warning, and the rest still works),
//! signals aimed at sigwho itself (it keeps reporting).

use std::{path::PathBuf, process::Command, time::Duration};

use sigwho_tests::{
    Sigwho, Target, Value, field_i64, field_str, is_signal, require_root, sigwho_bin, testproc,
    testproc_bin,
};

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Capabilities

/// sigwho --target-pid PID as root with `drop` removed from the bounding set (so from
/// the capabilities it gets at exec): (status code, stderr).
fn without_capabilities(drop: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set", drop, "--"])
        .arg(sigwho_bin())
        .args(args);
    let run = sigwho_tests::run(cmd, EVENT_TIMEOUT);
    assert!(run.stdout.is_empty(), "{run}");
    (run.status.code(), run.stderr)
}

#[test]
fn dropped_capabilities_are_named_exactly() {
    require_root();
    let target = Target::spawn(&[]);
    let pid = target.pid.to_string();
    // CAP_SYS_ADMIN would stand in for both, so it goes too.
    for (drop, named, not_named) in [
        ("-sys_admin,-bpf", "capability CAP_BPF:", "CAP_PERFMON:"),
        ("-sys_admin,-perfmon", "capability CAP_PERFMON:", "CAP_BPF:"),
        (
            "-sys_admin,-bpf,-perfmon",
            "capabilities CAP_BPF and CAP_PERFMON:",
            "CAP_SYS_RESOURCE:",
        ),
    ] {
        for args in [
            &["--target-pid", pid.as_str()][..],
            &["record", "--journal", "/nonexistent/sigwho-test/journal"][..],
            &["run", "--", "true"][..],
        ] {
            let (code, stderr) = without_capabilities(drop, args);
            assert_eq!(code, Some(2), "{drop} {args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{drop} {args:?}: {stderr}");
            assert!(
                stderr.starts_with(&format!("sigwho: missing {named}")),
                "{drop} {args:?}: {stderr}"
            );
            assert!(!stderr.contains(not_named), "{drop} {args:?}: {stderr}");
        }
    }
}

#[test]
fn bpf_and_perfmon_without_sys_admin_are_enough() {
    require_root();
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set", "-sys_admin", "--"])
        .arg(sigwho_bin())
        .args(["--target-pid", &target.pid.to_string(), "--json"]);
    let sigwho = Sigwho::start_with(cmd);
    let sent = testproc(&["kill", &target.pid.to_string(), "USR1"]).assert_success();
    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_eq!(
        field_i64(&ev, "sender.pid"),
        Some(i64::from(sent.pid)),
        "{ev}"
    );
    target.ping();
}

// ---------------------------------------------------------------------------------------
// Missing hooks

const REQUIRED: [&str; 4] = [
    "signal/signal_generate",
    "sched/sched_process_fork",
    "sched/sched_process_exec",
    "sched/sched_process_exit",
];
const SYSCALLS: [&str; 6] = [
    "kill",
    "tkill",
    "tgkill",
    "pidfd_send_signal",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
];

/// A copy of this kernel's tracefs format files for every hook sigwho uses, except the
/// events in `missing`: a kernel without them. Removed on drop.
struct Tracefs(PathBuf);

impl Tracefs {
    fn without(name: &str, missing: &[String]) -> Tracefs {
        let real = std::path::Path::new("/sys/kernel/tracing/events");
        let root = std::env::temp_dir().join(format!("sigwho-hooks-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut events: Vec<String> = REQUIRED.iter().map(ToString::to_string).collect();
        events.push("oom/mark_victim".into());
        for call in SYSCALLS {
            events.push(format!("syscalls/sys_enter_{call}"));
            events.push(format!("syscalls/sys_exit_{call}"));
        }
        for event in events.iter().filter(|e| !missing.contains(e)) {
            let dir = root.join("events").join(event);
            std::fs::create_dir_all(&dir).expect("temp dir");
            std::fs::copy(real.join(event).join("format"), dir.join("format"))
                .expect("format copy");
        }
        Tracefs(root)
    }
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_without(name: &str, missing: &[String], target: &Target) -> Sigwho {
    require_root();
    let tracefs = Tracefs::without(name, missing);
    let mut cmd = Sigwho::command(&["--target-pid", &target.pid.to_string(), "--json"]);
    cmd.env("SIGWHO_TRACEFS", &tracefs.0);
    Sigwho::start_with(cmd)
}

fn warnings(sigwho: &Sigwho) -> Vec<String> {
    sigwho
        .stderr()
        .into_iter()
        .filter(|l| l.starts_with("sigwho: warning: "))
        .collect()
}

/// Sends USR1 to the target with `how` (a sigwho-testproc sender) and returns the report.
fn send(sigwho: &Sigwho, target: &mut Target, how: &str) -> Value {
    let t = target.pid.to_string();
    let args: Vec<&str> = match how {
        "kill" => vec!["kill", &t, "USR1"],
        "tkill" => vec!["tkill", &t, "USR1"],
        "tgkill" => vec!["tgkill", &t, &t, "USR1"],
        "pidfd_send_signal" => vec!["pidfd-send", &t, "USR1"],
        "rt_sigqueueinfo" => vec!["sigqueue", &t, "USR1", "5"],
        other => panic!("no sender for {other}"),
    };
    let sent = testproc(&args).assert_success();
    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_eq!(
        field_i64(&ev, "sender.pid"),
        Some(i64::from(sent.pid)),
        "{ev}"
    );
    // Handled before the next one is sent, so each is a new signal.
    target.ping();
    ev
}

/// A kernel without one of the kill-family syscalls (`pidfd_send_signal` before 5.1, say):
/// sigwho says so, a signal sent that way still shows (origin "user"), and the other
/// syscalls are seen in full.
#[test]
fn each_missing_syscall_is_a_warning_and_the_rest_works() {
    for call in SYSCALLS {
        require_root();
        let mut target = Target::spawn(&["--handle", "USR1"]);
        let mut cmd = Sigwho::command(&["--target-pid", &target.pid.to_string(), "--json"]);
        cmd.env("SIGWHO_DISABLE_HOOKS", call);
        let sigwho = Sigwho::start_with(cmd);
        let warned = warnings(&sigwho);
        assert_eq!(warned.len(), 1, "{call}: {}", sigwho.report());
        assert!(
            warned[0].starts_with(&format!(
                "sigwho: warning: {call}() disabled by SIGWHO_DISABLE_HOOKS"
            )),
            "{call}: {warned:?}"
        );
        if call != "rt_tgsigqueueinfo" {
            let ev = send(&sigwho, &mut target, call);
            assert_eq!(field_str(&ev, "origin"), Some("user"), "{call}: {ev}");
        }
        let other = if call == "kill" { "tgkill" } else { "kill" };
        let ev = send(&sigwho, &mut target, other);
        assert_eq!(field_str(&ev, "origin"), Some(other), "{call}: {ev}");
    }
}

/// `SIGWHO_DISABLE_HOOKS=programs`, the bench's floor: every hook attached, every program
/// returning at once. sigwho says so in one warning and reports nothing: neither a
/// signal the watched process gets (`kill()` has returned, so `signal_generate` has run)
/// nor a failed attempt at it.
#[test]
fn empty_programs_are_a_warning_and_report_nothing() {
    require_root();
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let pid = target.pid.to_string();
    let mut cmd = Sigwho::command(&["--target-pid", &pid, "--json"]);
    cmd.env("SIGWHO_DISABLE_HOOKS", "programs");
    let mut sigwho = Sigwho::start_with(cmd);
    let warned = warnings(&sigwho);
    assert_eq!(
        warned,
        [
            "sigwho: warning: every program disabled by SIGWHO_DISABLE_HOOKS: attached, each \
          returns at once; nothing is traced"
        ],
        "{}",
        sigwho.report()
    );
    testproc(&["kill", &pid, "USR1"]).assert_success();
    target.ping();
    let mut nobody = Command::new("setpriv");
    nobody
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(testproc_bin())
        .args(["kill", &pid, "USR1"]);
    let refused = sigwho_tests::run(nobody, EVENT_TIMEOUT);
    assert_eq!(
        refused.stderr.trim(),
        "error: kill: EPERM (Operation not permitted)",
        "{refused}"
    );
    assert!(sigwho.signal(libc::SIGINT));
    let (status, rest) = sigwho.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "{}", sigwho.report());
    let reported: Vec<&Value> = rest.iter().filter(|ev| ev.is_object()).collect();
    assert!(reported.is_empty(), "{}", sigwho.report());
}

/// A kernel that refuses fexit programs (as this one does) and lacks one syscall's
/// `sys_exit` tracepoint: failed attempts of that syscall cannot be seen, and sigwho
/// says so; what such a call asks for still comes from the sender's registers.
#[test]
fn each_missing_failure_hook_is_a_warning_and_the_rest_works() {
    for call in SYSCALLS {
        let mut target = Target::spawn(&["--handle", "USR1"]);
        let missing = [
            format!("syscalls/sys_enter_{call}"),
            format!("syscalls/sys_exit_{call}"),
        ];
        let tracefs = Tracefs::without(call, &missing);
        let mut cmd = Sigwho::command(&["--target-pid", &target.pid.to_string(), "--json"]);
        cmd.env("SIGWHO_TRACEFS", &tracefs.0)
            .env("SIGWHO_DISABLE_HOOKS", "syscall-fexit");
        require_root();
        let sigwho = Sigwho::start_with(cmd);
        let warned = warnings(&sigwho);
        assert_eq!(warned.len(), 1, "{call}: {}", sigwho.report());
        assert!(
            warned[0].starts_with(&format!(
                "sigwho: warning: cannot see failed {call}() attempts"
            )),
            "{call}: {warned:?}"
        );
        if call != "rt_tgsigqueueinfo" {
            let ev = send(&sigwho, &mut target, call);
            assert_eq!(field_str(&ev, "origin"), Some(call), "{call}: {ev}");
        }
    }
}

#[test]
fn missing_oom_hook_is_a_warning_and_the_rest_works() {
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let sigwho = start_without("oom", &["oom/mark_victim".to_owned()], &target);
    let warned = warnings(&sigwho);
    assert_eq!(warned.len(), 1, "{}", sigwho.report());
    assert!(
        warned[0].starts_with(
            "sigwho: warning: cannot see oom:mark_victim (OOM kills show as plain kernel SIGKILLs)"
        ),
        "{warned:?}"
    );
    let ev = send(&sigwho, &mut target, "kill");
    assert_eq!(field_str(&ev, "origin"), Some("kill"), "{ev}");
}

/// A kernel without BTF (`CONFIG_DEBUG_INFO_BTF` off): sigwho cannot attach its BTF
/// tracepoints nor relocate struct reads, and says so in one line.
#[test]
fn kernel_without_btf_is_a_one_line_error() {
    require_root();
    let target = Target::spawn(&[]);
    let mut cmd = Command::new(sigwho_bin());
    cmd.args(["--target-pid", &target.pid.to_string()])
        .env("SIGWHO_BTF", "/nonexistent/vmlinux");
    let run = sigwho_tests::run(cmd, EVENT_TIMEOUT);
    assert_eq!(run.status.code(), Some(2), "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(run.stderr.contains("BTF"), "{run}");
}

#[test]
fn each_missing_required_hook_is_a_one_line_error() {
    require_root();
    let target = Target::spawn(&[]);
    for event in REQUIRED {
        let tracefs = Tracefs::without(event.replace('/', "-").as_str(), &[event.to_owned()]);
        let mut cmd = Command::new(sigwho_bin());
        cmd.args(["--target-pid", &target.pid.to_string()])
            .env("SIGWHO_TRACEFS", &tracefs.0);
        let run = sigwho_tests::run(cmd, EVENT_TIMEOUT);
        assert_eq!(run.status.code(), Some(2), "{event}: {run}");
        assert_eq!(run.stderr.lines().count(), 1, "{event}: {run}");
        assert!(
            run.stderr.contains(&event.replace('/', ":")),
            "{event}: {run}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Signals at sigwho itself

/// Signals whose default action would end a process, that nothing should use to stop
/// sigwho (SIGINT/SIGTERM/SIGHUP/SIGQUIT do stop it, on purpose).
fn stray_signals() -> Vec<i32> {
    let mut all = vec![
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGSTKFLT,
    ];
    all.extend([libc::SIGRTMIN(), libc::SIGRTMIN() + 5, libc::SIGRTMAX()]);
    all
}

#[test]
fn signal_storm_at_sigwho_does_not_stop_its_reports() {
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let mut sigwho = Sigwho::start(&["--target-pid", &target.pid.to_string(), "--json"]);
    for round in 0..5 {
        for _ in 0..200 {
            for &sig in &stray_signals() {
                assert!(
                    sigwho.signal(sig),
                    "round {round}: sigwho ended after signal {sig}\n{}",
                    sigwho.report()
                );
            }
        }
        send(&sigwho, &mut target, "kill");
    }
    assert!(sigwho.try_wait().is_none(), "{}", sigwho.report());
    // SIGTERM still ends it cleanly.
    assert!(sigwho.signal(libc::SIGTERM));
    let (status, _) = sigwho.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "{status:?}\n{}", sigwho.report());
}

#[test]
fn stray_signals_do_not_stop_the_recorder_and_are_not_inherited_by_run() {
    require_root();
    let dir = std::env::temp_dir().join(format!("sigwho-hardening-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let journal = dir.join("journal");
    let mut recorder = Sigwho::start_waiting_for(
        Sigwho::command(&["record", "--journal", journal.to_str().expect("UTF-8")]),
        "sigwho: recording",
    );
    for _ in 0..100 {
        for &sig in &stray_signals() {
            assert!(recorder.signal(sig), "{}", recorder.report());
        }
    }
    assert!(recorder.try_wait().is_none(), "{}", recorder.report());
    assert!(recorder.signal(libc::SIGTERM));
    let (status, _) = recorder.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "{}", recorder.report());
    let _ = std::fs::remove_dir_all(&dir);

    // A command under `sigwho run` gets default dispositions: USR1 ends it.
    let run = sigwho_tests::run(
        {
            let mut cmd = Command::new(sigwho_bin());
            cmd.args([
                "run",
                "--quiet",
                "--",
                "bash",
                "-c",
                "kill -USR1 $$; exit 0",
            ]);
            cmd
        },
        Duration::from_mins(1),
    );
    assert_eq!(run.status.code(), Some(128 + libc::SIGUSR1), "{run}");
}

// ---------------------------------------------------------------------------------------
// --redact

const SECRET: &str = "s3cr3t-HUNTER";
const SECRET_RE: &str = "s3cr3t-[A-Z]+";

/// A shell that sends USR1 to `pid` with a secret on its command line.
fn secret_sender(pid: i32) -> Command {
    let mut cmd = Command::new("bash");
    cmd.args([
        "-c",
        &format!("kill -USR1 {pid}; : --token={SECRET}"),
        "sender",
        &format!("--password={SECRET}"),
    ]);
    cmd
}

fn assert_masked(ev: &Value) {
    let text = ev.to_string();
    assert!(!text.contains(SECRET), "secret left in {text}");
    let argv = sigwho_tests::strings(ev, "sender.argv");
    assert_eq!(argv[0], "bash", "{ev}");
    assert!(argv[2].ends_with("--token=[redacted]"), "{ev}");
    assert_eq!(argv[4], "--password=[redacted]", "{ev}");
}

#[test]
fn redact_masks_secrets_in_live_reports() {
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let sigwho = Sigwho::start(&[
        "--target-pid",
        &target.pid.to_string(),
        "--json",
        "--redact",
        SECRET_RE,
        "--redact",
        "never-matches",
    ]);
    let run = sigwho_tests::run(secret_sender(target.pid), EVENT_TIMEOUT).assert_success();
    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_eq!(
        field_i64(&ev, "sender.pid"),
        Some(i64::from(run.pid)),
        "{ev}"
    );
    assert_masked(&ev);
    target.ping();
}

#[test]
fn redact_keeps_secrets_out_of_the_journal_and_query_output() {
    require_root();
    let dir = std::env::temp_dir().join(format!("sigwho-hardening-redact-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A directory each: the journal is a file plus its -wal and -shm files.
    let masked = dir.join("masked").join("journal");
    let plain = dir.join("plain").join("journal");
    let start = |journal: &PathBuf, extra: &[&str]| {
        let mut cmd = Sigwho::command(&["record", "--journal", journal.to_str().expect("UTF-8")]);
        cmd.args(extra);
        Sigwho::start_waiting_for(cmd, "sigwho: recording")
    };
    let mut masked_rec = start(&masked, &["--redact", SECRET_RE]);
    let mut plain_rec = start(&plain, &[]);
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let sender = sigwho_tests::run(secret_sender(target.pid), EVENT_TIMEOUT).assert_success();
    target.ping();
    for recorder in [&mut masked_rec, &mut plain_rec] {
        assert!(recorder.signal(libc::SIGTERM));
        let (status, _) = recorder.wait_exit(EVENT_TIMEOUT);
        assert!(status.success(), "{}", recorder.report());
    }
    let query = |journal: &PathBuf, extra: &[&str]| -> Vec<Value> {
        let mut cmd = Command::new(sigwho_bin());
        cmd.args(["query", "--journal", journal.to_str().expect("UTF-8")])
            .args(["--sender-pid", &sender.pid.to_string(), "--json"])
            .args(extra);
        let run = sigwho_tests::run(cmd, EVENT_TIMEOUT).assert_success();
        run.stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .filter(|ev| is_signal("SIGUSR1")(ev))
            .collect()
    };
    // Recorded masked: neither the query nor the files hold the secret.
    let events = query(&masked, &[]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_masked(&events[0]);
    let files = std::fs::read_dir(masked.parent().expect("dir")).expect("journal dir");
    for entry in files.flatten() {
        let bytes = std::fs::read(entry.path()).expect("journal file");
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "secret in {}",
            entry.path().display()
        );
    }
    // Recorded plain: `query --redact` masks what it prints, JSON and text.
    let events = query(&plain, &[]);
    assert!(events[0].to_string().contains(SECRET), "{events:?}");
    let events = query(&plain, &["--redact", SECRET_RE]);
    assert_masked(&events[0]);
    let mut cmd = Command::new(sigwho_bin());
    cmd.args(["query", "--journal", plain.to_str().expect("UTF-8")])
        .args([
            "--sender-pid",
            &sender.pid.to_string(),
            "--redact",
            SECRET_RE,
        ]);
    let text = sigwho_tests::run(cmd, EVENT_TIMEOUT)
        .assert_success()
        .stdout;
    assert!(
        text.contains("[redacted]") && !text.contains(SECRET),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redact_masks_run_reports() {
    require_root();
    let dir = std::env::temp_dir().join(format!("sigwho-hardening-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let report = dir.join("report.jsonl");
    let mut cmd = Command::new(sigwho_bin());
    cmd.args(["run", "--quiet", "--redact", SECRET_RE, "--report"])
        .arg(&report)
        .args([
            "--",
            "bash",
            "-c",
            &format!("kill -USR1 $$; : --token={SECRET}"),
            "sender",
            &format!("--password={SECRET}"),
        ]);
    let run = sigwho_tests::run(cmd, Duration::from_mins(1));
    assert_eq!(run.status.code(), Some(128 + libc::SIGUSR1), "{run}");
    assert!(!run.stderr.contains(SECRET), "{run}");
    let text = std::fs::read_to_string(&report).expect("report file");
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("\"command\":[\"bash\""), "{text}");
    let ev: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|ev: &Value| is_signal("SIGUSR1")(ev))
        .unwrap_or_else(|| panic!("no SIGUSR1 report: {text}"));
    assert_masked(&ev);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_redact_pattern_is_a_one_line_error() {
    require_root();
    let target = Target::spawn(&[]);
    let pid = target.pid.to_string();
    for args in [
        &["--target-pid", pid.as_str(), "--redact", "(unclosed"][..],
        &[
            "record",
            "--journal",
            "/nonexistent/j",
            "--redact",
            "(unclosed",
        ][..],
        &["run", "--redact", "(unclosed", "--", "true"][..],
        &[
            "query",
            "--journal",
            "/nonexistent/j",
            "--redact",
            "(unclosed",
        ][..],
        &["--target-pid", pid.as_str(), "--redact", ""][..],
    ] {
        let (status, stdout, stderr) = sigwho_tests::run_sigwho(args, EVENT_TIMEOUT);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("sigwho: --redact "),
            "{args:?}: {stderr}"
        );
    }
}
