//! `sigwho record` under systemd's notify protocol (the unit is Type=notify with a
//! watchdog): READY=1 once the programs are attached, then WATCHDOG=1 pings at half of
//! `$WATCHDOG_USEC`. The test plays systemd's side: the unix datagram socket that
//! `$NOTIFY_SOCKET` names, as `sd_notify(3)` describes it (systemd is not PID 1 here).

use std::{os::unix::net::UnixDatagram, time::Duration, time::Instant};

use sigwho_tests::{
    Sigwho, Target, TempDir, Value, field_i64, field_str, require_root, testproc, wait_until,
};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The next notification, or None after `timeout`.
fn next_message(socket: &UnixDatagram, timeout: Duration) -> Option<String> {
    socket.set_read_timeout(Some(timeout)).expect("timeout");
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn ready_after_attach_then_watchdog_pings() {
    require_root();
    let dir = TempDir::new("sigwho-systemd");
    let socket_path = dir.path("notify");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let json_out = dir.path("signals.jsonl");
    // systemd sets WATCHDOG_PID to the service's pid: the shell's, which exec keeps.
    let mut cmd = std::process::Command::new("bash");
    cmd.args([
        "-c",
        "export WATCHDOG_PID=$$; exec \"$0\" \"$@\"",
        sigwho_tests::sigwho_bin().to_str().expect("UTF-8"),
        "record",
        "--journal",
        dir.path("journal").to_str().expect("UTF-8"),
        "--json-out",
        json_out.to_str().expect("UTF-8"),
    ])
    .env("SIGWHO_JOURNAL", "/nonexistent/sigwho-tests/journal")
    .env("NOTIFY_SOCKET", &socket_path)
    .env("WATCHDOG_USEC", "400000");
    let mut recorder = Sigwho::start_waiting_for(cmd, "sigwho: recording");

    let ready = next_message(&socket, TIMEOUT).expect("no READY=1 from the recorder");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready
            .lines()
            .any(|l| l == format!("STATUS=recording (pid {})", recorder.pid())),
        "{ready:?}"
    );

    // Ready means recording: a signal sent right after READY=1 is in the export.
    let target = Target::spawn(&["--handle", "USR1"]);
    let sender = testproc(&["kill", &target.pid.to_string(), "USR1"]).assert_success();
    assert!(
        wait_until(
            || std::fs::read_to_string(&json_out)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|ev| field_str(&ev, "signal") == Some("SIGUSR1")
                    && field_i64(&ev, "target.pid") == Some(i64::from(target.pid))
                    && field_i64(&ev, "sender.pid") == Some(i64::from(sender.pid))),
            TIMEOUT
        ),
        "the signal sent after READY=1 was not recorded"
    );

    // Pings every 200 ms (half of WATCHDOG_USEC), an idle recorder included. Those
    // already queued are left out of the timing.
    while next_message(&socket, Duration::from_millis(1)).is_some() {}
    let started = Instant::now();
    let mut pings = 0;
    while pings < 5 {
        let message = next_message(&socket, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("only {pings} WATCHDOG=1 pings: {}", recorder.report()));
        if message.lines().any(|l| l == "WATCHDOG=1") {
            pings += 1;
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(5),
        "5 pings took {elapsed:?}"
    );

    assert!(recorder.signal(libc::SIGTERM));
    let (status, _) = recorder.wait_exit(TIMEOUT);
    assert!(status.success(), "{}", recorder.report());
}
