//! sigwho under hostile conditions: capabilities dropped (the error names exactly what
//! is missing), each optional hook missing (a warning, and the rest still works),
//! signals aimed at sigwho itself (it keeps reporting).

use std::{path::PathBuf, process::Command, time::Duration};

use sigwho_tests::{
    Sigwho, Target, Value, field_i64, field_str, is_signal, require_root, sigwho_bin, testproc,
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
        let mut events: Vec<String> = REQUIRED.iter().map(|e| e.to_string()).collect();
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
        .filter(|l| l.starts_with("sigwho: warning: cannot see "))
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

#[test]
fn each_missing_syscall_hook_is_a_warning_and_the_rest_works() {
    for call in SYSCALLS {
        let mut target = Target::spawn(&["--handle", "USR1"]);
        let missing = [
            format!("syscalls/sys_enter_{call}"),
            format!("syscalls/sys_exit_{call}"),
        ];
        let sigwho = start_without(call, &missing, &target);
        let warned = warnings(&sigwho);
        assert_eq!(warned.len(), 1, "{call}: {}", sigwho.report());
        assert!(
            warned[0].starts_with(&format!("sigwho: warning: cannot see {call}: ")),
            "{call}: {warned:?}"
        );
        // The signal itself is still seen, only the syscall's detail is not.
        if call != "rt_tgsigqueueinfo" {
            let ev = send(&sigwho, &mut target, call);
            assert_eq!(field_str(&ev, "origin"), Some("user"), "{call}: {ev}");
        }
        // Another syscall is still seen in full.
        let other = if call == "kill" { "tgkill" } else { "kill" };
        let ev = send(&sigwho, &mut target, other);
        assert_eq!(field_str(&ev, "origin"), Some(other), "{call}: {ev}");
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
        Duration::from_secs(60),
    );
    assert_eq!(run.status.code(), Some(128 + libc::SIGUSR1), "{run}");
}
