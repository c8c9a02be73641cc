//! `sigwho record --json-out` and `--otlp-endpoint`: a real signal, recorded, reaches a
//! JSON-lines file and an OpenTelemetry collector (a small HTTP server on loopback,
//! played by the test).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use sigwho_tests::{
    Sigwho, Target, Value, field_i64, field_str, require_root, testproc, wait_until,
};

const TIMEOUT: Duration = Duration::from_secs(20);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sigwho-export-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Accepts OTLP/HTTP POSTs on loopback, answers 200, keeps each request's JSON body.
fn collector() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0usize;
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_ok()
                && request_line.starts_with("POST /v1/logs ")
                && let Ok(json) = serde_json::from_slice(&body)
            {
                kept.lock().expect("lock").push(json);
            }
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        }
    });
    (port, bodies)
}

/// The log records the collector received whose body is a signal to `pid`.
fn records_for(bodies: &Mutex<Vec<Value>>, pid: i32) -> Vec<Value> {
    let bodies = bodies.lock().expect("lock");
    bodies
        .iter()
        .flat_map(|b| {
            b["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|r| {
            r["body"]["stringValue"]
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .is_some_and(|ev| {
                    field_str(&ev, "event") == Some("signal")
                        && field_i64(&ev, "target.pid") == Some(i64::from(pid))
                })
        })
        .collect()
}

fn attribute<'a>(record: &'a Value, key: &str) -> Option<&'a Value> {
    record["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[test]
fn a_recorded_signal_reaches_the_json_file_and_the_collector() {
    require_root();
    let dir = scratch("both");
    let journal = dir.join("journal");
    let json_out = dir.join("signals.jsonl");
    let (port, bodies) = collector();
    let mut recorder = Sigwho::start_waiting_for(
        {
            let mut cmd = Sigwho::command(&["record", "--journal"]);
            cmd.arg(&journal)
                .arg("--json-out")
                .arg(&json_out)
                .args(["--otlp-endpoint", &format!("http://127.0.0.1:{port}")]);
            cmd
        },
        "sigwho: recording",
    );
    let target = Target::spawn(&["--handle", "USR1"]);
    let sender = testproc(&["kill", &target.pid.to_string(), "USR1"]).assert_success();

    // The JSON line, as --json prints it.
    let mut line = None;
    assert!(
        wait_until(
            || {
                line = std::fs::read_to_string(&json_out)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find(|ev| {
                        field_str(ev, "signal") == Some("SIGUSR1")
                            && field_i64(ev, "target.pid") == Some(i64::from(target.pid))
                    });
                line.is_some()
            },
            TIMEOUT
        ),
        "no SIGUSR1 line in {}",
        json_out.display()
    );
    let line = line.expect("found");
    assert_eq!(
        field_i64(&line, "sender.pid"),
        Some(i64::from(sender.pid)),
        "{line}"
    );
    let mode = std::fs::metadata(&json_out)
        .expect("file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "reports hold command lines");

    // The log record, with the attributes a pipeline filters on.
    assert!(
        wait_until(|| !records_for(&bodies, target.pid).is_empty(), TIMEOUT),
        "the collector got nothing for pid {}",
        target.pid
    );
    let record = records_for(&bodies, target.pid).remove(0);
    assert_eq!(
        attribute(&record, "signal.name"),
        Some(&serde_json::json!({"stringValue": "SIGUSR1"}))
    );
    assert_eq!(
        attribute(&record, "sender.pid"),
        Some(&serde_json::json!({"intValue": sender.pid.to_string()}))
    );
    assert_eq!(
        attribute(&record, "process.pid"),
        Some(&serde_json::json!({"intValue": target.pid.to_string()}))
    );
    assert!(
        record["timeUnixNano"]
            .as_str()
            .is_some_and(|t| t.len() >= 18),
        "{record}"
    );

    assert!(recorder.signal(libc::SIGTERM));
    let (status, _) = recorder.wait_exit(TIMEOUT);
    assert!(status.success(), "{}", recorder.report());
    let exported = recorder
        .stderr()
        .into_iter()
        .find(|l| l.starts_with("sigwho: exported "))
        .unwrap_or_default();
    assert!(
        exported.ends_with("; 0 not exported"),
        "{}",
        recorder.report()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_endpoint_is_a_one_line_error() {
    require_root();
    let dir = scratch("bad");
    for url in ["https://collector:4318", "localhost:4318", "http://:4318"] {
        let mut cmd = Sigwho::command(&["record", "--journal"]);
        cmd.arg(dir.join("journal")).args(["--otlp-endpoint", url]);
        let run = sigwho_tests::run(cmd, TIMEOUT);
        assert_eq!(run.status.code(), Some(2), "{url}: {run}");
        assert_eq!(run.stderr.lines().count(), 1, "{url}: {run}");
        assert!(run.stderr.contains("--otlp-endpoint"), "{url}: {run}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
