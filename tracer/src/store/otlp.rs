//! Export of reports as OpenTelemetry log records (OTLP over HTTP, JSON encoding:
//! <https://opentelemetry.io/docs/specs/otlp/#otlphttp>), for teams that collect with an
//! OpenTelemetry Collector.
//!
//! Each report becomes one log record whose body is the report's JSON object (the same
//! text `--json` prints) and whose attributes carry the fields a pipeline filters on.
//! A thread of its own batches records (at most [`BATCH_MAX`], at least once per
//! [`FLUSH_INTERVAL`]) and POSTs them with a small HTTP/1.1 client on `std::net`: plain
//! HTTP, meant for a collector on the node (a `DaemonSet` agent or a sidecar). The queue
//! to it is bounded; what does not fit, or what the collector refuses, is counted and
//! reported on stderr, never silently lost and never blocking the recorder.

use std::{
    io::{BufRead, BufReader, Read as _, Write as _},
    net::{TcpStream, ToSocketAddrs},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{analysis::report::Report, model::clock};

/// Records per POST.
const BATCH_MAX: usize = 512;
/// Longest a record waits before its batch is sent.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Records queued for the exporter thread (bounded memory).
const QUEUE_CAPACITY: usize = 16_384;
/// Connect, write and read timeout of one POST.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one warning about failed exports per this long.
const WARN_INTERVAL: Duration = Duration::from_mins(1);

/// OTLP severity numbers (logs data model): INFO for signals, WARN for kills.
const SEVERITY_INFO: u8 = 9;
const SEVERITY_WARN: u8 = 13;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error(
        "--otlp-endpoint {0:?}: expected http://HOST:PORT[/PATH] (plain HTTP, e.g. http://localhost:4318)"
    )]
    Malformed(String),
}

/// Where the collector listens: `http://host:port/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    /// Parses `http://HOST[:PORT][/PATH]`; the port defaults to 4318 and the path to
    /// `/v1/logs`, as OTLP/HTTP specifies.
    ///
    /// # Errors
    ///
    /// When the URL is not `http://HOST:PORT[/PATH]`.
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        let bad = || EndpointError::Malformed(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                (host, port.parse().map_err(|_| bad())?)
            }
            _ => (authority, 4318),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 || host.contains(char::is_whitespace) {
            return Err(bad());
        }
        let path = match path {
            "" | "/" => "/v1/logs".to_owned(),
            path => path.to_owned(),
        };
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            path,
        })
    }

    #[must_use]
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            format!("http://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// What the exporter did, for the recorder's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub exported: u64,
    pub dropped: u64,
}

/// The handle the recorder keeps: queue reports, then `finish`.
pub struct Exporter {
    tx: Option<SyncSender<Value>>,
    queue_dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<ExportStats>>,
}

impl Exporter {
    /// Starts the exporter thread for `endpoint`; `host` names this machine in the
    /// records' resource.
    ///
    /// # Errors
    ///
    /// When the exporter thread cannot be started.
    pub fn start(endpoint: Endpoint, host: &str) -> std::io::Result<Exporter> {
        let (tx, rx) = sync_channel(QUEUE_CAPACITY);
        let resource = json!({
            "attributes": [
                attribute("service.name", &json!({"stringValue": "sigwho"})),
                attribute("service.version", &json!({"stringValue": env!("CARGO_PKG_VERSION")})),
                attribute("host.name", &json!({"stringValue": host})),
            ]
        });
        let queue_dropped = Arc::new(AtomicU64::new(0));
        let thread = std::thread::Builder::new()
            .name("sigwho-otlp".to_owned())
            .spawn(move || run(&endpoint, &resource, &rx))?;
        Ok(Exporter {
            tx: Some(tx),
            queue_dropped,
            thread: Some(thread),
        })
    }

    /// Queues a report; never waits. Reports that are not events (`lost`) are not
    /// exported: the recorder records them as gaps and its summary counts them.
    pub fn send(&self, report: &Report) {
        let Some(record) = log_record(report) else {
            return;
        };
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(record)
        {
            self.queue_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends what is queued (waiting up to a few seconds for the collector) and stops.
    #[must_use]
    pub fn finish(mut self) -> ExportStats {
        drop(self.tx.take());
        let mut stats = self
            .thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();
        stats.dropped += self.queue_dropped.load(Ordering::Relaxed);
        stats
    }
}

fn attribute(key: &str, value: &Value) -> Value {
    json!({"key": key, "value": value})
}

fn string(key: &str, value: &str) -> Value {
    attribute(key, &json!({ "stringValue": value }))
}

/// OTLP's JSON encoding carries 64-bit integers as strings.
fn int(key: &str, value: i64) -> Value {
    attribute(key, &json!({ "intValue": value.to_string() }))
}

/// One OTLP log record for a report: the report's JSON as the body, the fields people
/// filter on as attributes (names after OpenTelemetry's process.* conventions where
/// there is one).
#[must_use]
pub fn log_record(report: &Report) -> Option<Value> {
    let (time, severity, mut attributes) = match report {
        Report::Signal(r) => {
            let mut attributes = vec![
                string("event.name", "sigwho.signal"),
                string("signal.name", &r.signal),
                int("signal.number", i64::from(r.signo)),
                string("signal.origin", r.origin.as_str()),
                string("signal.origin_class", r.origin_class.as_str()),
                string("signal.result", r.result.as_str()),
                int("sender.pid", i64::from(r.sender.pid)),
                string("sender.comm", &r.sender.comm),
                int("root_sender.pid", i64::from(r.root_sender.pid)),
            ];
            if let Some(target) = &r.target {
                attributes.push(int("process.pid", i64::from(target.pid)));
                attributes.push(string("process.command", &target.comm));
                if let Some(exe) = &target.exe {
                    attributes.push(string("process.executable.path", exe));
                }
                if let Some(id) = &target.identity.container_id {
                    attributes.push(string("container.id", id));
                }
                if let Some(uid) = &target.identity.pod_uid {
                    attributes.push(string("k8s.pod.uid", uid));
                }
            }
            for hint in &r.hints {
                attributes.push(string("sigwho.hint", &hint.id));
            }
            if let Some(repeats) = &r.repeats {
                attributes.push(int(
                    "sigwho.repeats.count",
                    i64::try_from(repeats.count).unwrap_or(i64::MAX),
                ));
                // The same shape as the JSON's `repeats` (docs/json-schema.md).
                attributes.push(string("sigwho.repeats.first_time", &repeats.first_time));
                attributes.push(string("sigwho.repeats.last_time", &repeats.last_time));
            }
            let severity = if matches!(r.signo, 9 | 15) {
                SEVERITY_WARN
            } else {
                SEVERITY_INFO
            };
            (&r.time, severity, attributes)
        }
        Report::Exit(r) => {
            let mut attributes = vec![
                string("event.name", "sigwho.exit"),
                int("process.pid", i64::from(r.pid)),
                string("process.command", &r.comm),
            ];
            if let Some(code) = r.exit_code {
                attributes.push(int("process.exit.code", i64::from(code)));
            }
            if let Some(signal) = &r.signal {
                attributes.push(string("signal.name", signal));
            }
            let severity = if r.signal.is_some() {
                SEVERITY_WARN
            } else {
                SEVERITY_INFO
            };
            (&r.time, severity, attributes)
        }
        Report::Lost(_) => return None,
    };
    let time_ns = clock::parse_time(time, 0).unwrap_or_else(|_| clock::unix_now_ns());
    attributes.retain(|a| a["value"] != json!({"stringValue": ""}));
    Some(json!({
        "timeUnixNano": time_ns.max(0).to_string(),
        "observedTimeUnixNano": clock::unix_now_ns().max(0).to_string(),
        "severityNumber": severity,
        "severityText": if severity == SEVERITY_WARN { "WARN" } else { "INFO" },
        "body": { "stringValue": crate::render::json::report(report) },
        "attributes": attributes,
    }))
}

/// The request body for a batch of log records.
#[must_use]
pub fn request_body(resource: &Value, records: &[Value]) -> Value {
    json!({
        "resourceLogs": [{
            "resource": resource,
            "scopeLogs": [{
                "scope": { "name": "sigwho", "version": env!("CARGO_PKG_VERSION") },
                "logRecords": records,
            }],
        }],
    })
}

fn run(endpoint: &Endpoint, resource: &Value, rx: &Receiver<Value>) -> ExportStats {
    let mut stats = ExportStats::default();
    let mut last_warning: Option<Instant> = None;
    let mut closed = false;
    while !closed {
        let mut batch = Vec::new();
        let deadline = Instant::now() + FLUSH_INTERVAL;
        while batch.len() < BATCH_MAX {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(record) => batch.push(record),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        let count = batch.len() as u64;
        match post(endpoint, &request_body(resource, &batch)) {
            Ok(()) => stats.exported += count,
            Err(error) => {
                stats.dropped += count;
                if last_warning.is_none_or(|at| at.elapsed() >= WARN_INTERVAL) {
                    last_warning = Some(Instant::now());
                    eprintln!(
                        "sigwho: warning: OTLP export to {} failed: {error}; {} records not exported so far",
                        endpoint.url(),
                        stats.dropped
                    );
                }
            }
        }
    }
    stats
}

/// One POST; any status but 2xx is an error (OTLP/HTTP answers 200 with a partial
/// success body, or 4xx/5xx).
fn post(endpoint: &Endpoint, body: &Value) -> std::io::Result<()> {
    let body = body.to_string();
    let address = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{} does not resolve", endpoint.host)))?;
    let mut stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let host = if endpoint.host.contains(':') {
        format!("[{}]:{}", endpoint.host, endpoint.port)
    } else {
        format!("{}:{}", endpoint.host, endpoint.port)
    };
    write!(
        stream,
        "POST {} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: sigwho/{}\r\n\r\n",
        endpoint.path,
        body.len(),
        env!("CARGO_PKG_VERSION")
    )?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {status_line:?}")))?;
    // Drain the rest so that the collector is not reset mid-answer.
    let _ = reader.read_to_end(&mut Vec::new());
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "the collector answered {}",
            status_line.trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn endpoints_parse_with_otlp_defaults() {
        let e = Endpoint::parse("http://localhost:4318").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("localhost", 4318, "/v1/logs")
        );
        let e = Endpoint::parse("http://collector/custom/logs").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("collector", 4318, "/custom/logs")
        );
        let e = Endpoint::parse("http://[::1]:9000/").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9000));
        assert_eq!(e.url(), "http://[::1]:9000/v1/logs");
        for bad in [
            "",
            "https://x:4318",
            "http://",
            "http://:80",
            "http://x:notaport",
            "http://x:0",
            "localhost:4318",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    /// A collector on loopback that answers `status` to one request and hands back the
    /// request's head and body.
    fn one_shot_collector(status: &'static str) -> (u16, JoinHandle<(String, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0u8; length];
            std::io::Read::read_exact(&mut reader, &mut body).unwrap();
            let mut stream = stream;
            write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\n{{}}").unwrap();
            (head, String::from_utf8(body).unwrap())
        });
        (port, thread)
    }

    #[test]
    fn posts_json_to_the_collector_and_reads_its_status() {
        let (port, collector) = one_shot_collector("200 OK");
        let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let body = request_body(
            &json!({"attributes": []}),
            &[json!({"body": {"stringValue": "x"}})],
        );
        post(&endpoint, &body).unwrap();
        let (head, received) = collector.join().unwrap();
        assert!(head.starts_with("POST /v1/logs HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("Content-Type: application/json"), "{head}");
        let received: Value = serde_json::from_str(&received).unwrap();
        assert_eq!(
            received["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"]["stringValue"],
            "x"
        );

        let (port, collector) = one_shot_collector("400 Bad Request");
        let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let error = post(&endpoint, &body).unwrap_err();
        assert!(error.to_string().contains("400"), "{error}");
        collector.join().unwrap();
    }

    #[test]
    fn a_collector_that_is_not_there_counts_as_not_exported() {
        // A port nothing listens on: bind, note it, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let exporter = Exporter::start(endpoint, "test").unwrap();
        let exit = Report::Exit(crate::analysis::report::ExitReport {
            event: "exit",
            time: "2026-11-26T10:00:00Z".to_owned(),
            pid: 42,
            comm: "x".to_owned(),
            exit_code: Some(3),
            signal: None,
            signo: None,
            core_dumped: None,
            key: None,
        });
        exporter.send(&exit);
        exporter.send(&exit);
        let stats = exporter.finish();
        assert_eq!(
            stats,
            ExportStats {
                exported: 0,
                dropped: 2
            }
        );
    }
}
