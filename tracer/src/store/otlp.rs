//! Export of reports as OpenTelemetry log records over OTLP/HTTP (protobuf), through the
//! opentelemetry crates: the SDK's batch processor (its own thread, a bounded queue) and
//! opentelemetry-otlp's HTTP exporter on a blocking reqwest client with rustls.
//!
//! What the exporter takes from the standard environment (the OpenTelemetry SDK
//! configuration spec): `OTEL_EXPORTER_OTLP_{,LOGS_}ENDPOINT`, `_HEADERS` (auth),
//! `_COMPRESSION` (`gzip`), `_TIMEOUT`, `_CERTIFICATE` (a PEM CA for a collector with a
//! private certificate), plus `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`. A failed
//! POST is retried with exponential backoff and jitter (opentelemetry-otlp's policy, which
//! honours `Retry-After`); what still fails is counted, warned about on stderr, and given
//! in the recorder's summary, never silently lost and never blocking the recorder.
//!
//! Each report becomes one log record whose body is the report's JSON object (the same
//! text `--json` prints) and whose attributes are read from that JSON through
//! [`ATTRIBUTES`], so a field that moves or disappears in the JSON only drops its
//! attribute.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use opentelemetry::{
    Key, KeyValue,
    logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity},
};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    logs::{
        BatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter, SdkLogger, SdkLoggerProvider,
    },
};
use serde_json::Value;

use crate::{analysis::report::Report, model::clock};

/// Records per POST.
const BATCH_MAX: usize = 512;
/// Longest a record waits before its batch is sent.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Records queued for the exporter thread (bounded memory).
const QUEUE_CAPACITY: usize = 16_384;
/// One POST, retries included, when `OTEL_EXPORTER_OTLP_TIMEOUT` does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one warning about failed exports per this long.
const WARN_INTERVAL: Duration = Duration::from_mins(1);
/// How long `finish` waits for the last batches.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// The attributes of a record: OpenTelemetry's names (semantic conventions) where there
/// is one, `sigwho.*` otherwise, each read at a JSON pointer of the report.
pub const ATTRIBUTES: &[(&str, &str)] = &[
    // `signal` or `exit`: what a backend filters on first (docs/fleet.md).
    ("sigwho.event", "/event"),
    ("signal.name", "/signal"),
    ("signal.number", "/signo"),
    ("signal.origin", "/origin"),
    ("signal.origin_class", "/origin_class"),
    ("signal.code", "/code"),
    ("signal.result", "/result"),
    ("signal.errno", "/errno"),
    ("signal.call", "/call"),
    ("signal.relation", "/relation"),
    ("sender.pid", "/sender/pid"),
    ("sender.comm", "/sender/comm"),
    ("sender.executable.path", "/sender/exe"),
    ("sender.start_time", "/sender/start_time"),
    ("sender.systemd_unit", "/sender/systemd_unit"),
    ("root_sender.pid", "/root_sender/pid"),
    ("root_sender.comm", "/root_sender/comm"),
    ("process.pid", "/target/pid"),
    ("process.command", "/target/comm"),
    ("process.executable.path", "/target/exe"),
    ("process.start_time", "/target/start_time"),
    ("process.owner.uid", "/target/uid"),
    ("container.id", "/target/container_id"),
    ("k8s.pod.uid", "/target/pod_uid"),
    ("k8s.pod.name", "/target/pod_name"),
    ("k8s.namespace.name", "/target/pod_namespace"),
    ("systemd.unit", "/target/systemd_unit"),
    // A storm's count, the same shape as the JSON's `repeats` (docs/json-schema.md).
    ("sigwho.repeats.count", "/repeats/count"),
    ("sigwho.repeats.first_time", "/repeats/first_time"),
    ("sigwho.repeats.last_time", "/repeats/last_time"),
    // Exit reports: the process is the report itself.
    ("process.pid", "/pid"),
    ("process.command", "/comm"),
    ("process.exit.code", "/exit_code"),
    ("sigwho.core_dumped", "/core_dumped"),
];

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error(
        "--otlp-endpoint {0:?}: expected http[s]://HOST[:PORT][/PATH] (e.g. http://localhost:4318)"
    )]
    Malformed(String),
    #[error("OTEL_EXPORTER_OTLP_CERTIFICATE {path}: {why}")]
    Certificate { path: String, why: String },
    #[error("OTLP exporter: {0}")]
    Build(String),
}

/// What the exporter did, for the recorder's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub exported: u64,
    pub dropped: u64,
}

/// The collector's URL from `--otlp-endpoint`: `http[s]://HOST[:PORT][/PATH]`, the path
/// defaulting to `/v1/logs` as for `OTEL_EXPORTER_OTLP_ENDPOINT`.
///
/// # Errors
///
/// When the URL is not one.
pub fn endpoint_url(url: &str) -> Result<String, OtlpError> {
    let bad = || OtlpError::Malformed(url.to_owned());
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let uri: reqwest::Url = url.parse().map_err(|_| bad())?;
    if authority.is_empty()
        || authority.starts_with(':')
        || uri.host_str().is_none_or(str::is_empty)
        || uri.port() == Some(0)
        || authority.contains(char::is_whitespace)
    {
        return Err(bad());
    }
    Ok(match path {
        "" | "/" => format!("{}/v1/logs", url.trim_end_matches('/')),
        _ => url.to_owned(),
    })
}

/// Whether the environment names a collector (`OTEL_EXPORTER_OTLP_{,LOGS_}ENDPOINT`).
#[must_use]
pub fn endpoint_from_env() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

/// Outcomes of the exporter's POSTs, shared with the batch thread.
#[derive(Debug, Default)]
struct Counts {
    emitted: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

/// opentelemetry-otlp's exporter, counting what each batch came to.
#[derive(Debug)]
struct Counting {
    inner: opentelemetry_otlp::LogExporter,
    counts: Arc<Counts>,
    url: String,
}

impl LogExporter for Counting {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let records = batch.iter().count() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                self.counts.exported.fetch_add(records, Ordering::Relaxed);
            }
            Err(error) => {
                let failed = self.counts.failed.fetch_add(records, Ordering::Relaxed) + records;
                let mut last = self
                    .counts
                    .last_warning
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.is_none_or(|at| at.elapsed() >= WARN_INTERVAL) {
                    *last = Some(Instant::now());
                    eprintln!(
                        "sigwho: warning: OTLP export to {} failed: {error}; {failed} records not exported so far",
                        self.url
                    );
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The handle the recorder keeps: queue reports, then `finish`.
pub struct Exporter {
    provider: SdkLoggerProvider,
    logger: SdkLogger,
    counts: Arc<Counts>,
    url: String,
}

impl Exporter {
    /// Starts exporting to `endpoint` (from [`endpoint_url`]), else to what the
    /// environment names; `host` names this machine in the records' resource.
    ///
    /// # Errors
    ///
    /// When the TLS settings or the exporter cannot be set up.
    pub fn start(endpoint: Option<String>, host: &str) -> Result<Exporter, OtlpError> {
        let url = endpoint
            .clone()
            .or_else(endpoint_from_env)
            .unwrap_or_else(|| "http://localhost:4318/v1/logs".to_owned());
        let client = http_client()?;
        let mut builder = opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_http_client(client)
            .with_timeout(timeout());
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let inner = builder
            .build()
            .map_err(|e| OtlpError::Build(e.to_string()))?;
        let counts = Arc::new(Counts::default());
        let exporter = Counting {
            inner,
            counts: Arc::clone(&counts),
            url: url.clone(),
        };
        let processor = BatchLogProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(QUEUE_CAPACITY)
                    .with_max_export_batch_size(BATCH_MAX)
                    .with_scheduled_delay(FLUSH_INTERVAL)
                    .build(),
            )
            .build();
        // The builder's detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
        // without either, the SDK's "unknown_service" becomes "sigwho".
        let from_env = Resource::builder().build();
        let named = from_env
            .get(&Key::from_static_str("service.name"))
            .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
        let mut resource = Resource::builder();
        if !named {
            resource = resource.with_service_name("sigwho");
        }
        let resource = resource
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("host.name", host.to_owned()),
            ])
            .build();
        let provider = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_log_processor(processor)
            .build();
        let logger = provider.logger_with_scope(
            opentelemetry::InstrumentationScope::builder("sigwho")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        Ok(Exporter {
            provider,
            logger,
            counts,
            url,
        })
    }

    /// Where records go.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Queues a report; never waits. Reports that are not events (`lost`) are not
    /// exported: the recorder records them as gaps and its summary counts them.
    pub fn send(&self, report: &Report) {
        if matches!(report, Report::Lost(_)) {
            return;
        }
        let body = crate::render::json::report(report);
        let Ok(json) = serde_json::from_str::<Value>(&body) else {
            return;
        };
        let mut record = self.logger.create_log_record();
        let event = json["event"].as_str().unwrap_or("event");
        record.set_event_name(match event {
            "signal" => "sigwho.signal",
            "exit" => "sigwho.exit",
            _ => "sigwho.event",
        });
        let now = SystemTime::now();
        let time = json["time"]
            .as_str()
            .and_then(|t| clock::parse_time(t, 0).ok())
            .and_then(|ns| u64::try_from(ns).ok())
            .map_or(now, |ns| UNIX_EPOCH + Duration::from_nanos(ns));
        record.set_timestamp(time);
        record.set_observed_timestamp(now);
        let (number, text) = severity(&json);
        record.set_severity_number(number);
        record.set_severity_text(text);
        record.add_attributes(attributes(&json));
        record.set_body(AnyValue::String(body.into()));
        self.counts.emitted.fetch_add(1, Ordering::Relaxed);
        self.logger.emit(record);
    }

    /// Sends what is queued (retrying for up to the timeout) and stops.
    #[must_use]
    pub fn finish(self) -> ExportStats {
        // The processor's thread exports what it holds before it stops.
        let _ = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT);
        let emitted = self.counts.emitted.load(Ordering::Relaxed);
        let exported = self.counts.exported.load(Ordering::Relaxed);
        // What was refused, and what never left the queue (full, or still there when
        // the shutdown timed out).
        ExportStats {
            exported,
            dropped: emitted.saturating_sub(exported),
        }
    }
}

/// WARN for the signals that end processes (TERM, KILL) and for deaths by signal,
/// INFO otherwise.
fn severity(json: &Value) -> (Severity, &'static str) {
    let killing = match json["event"].as_str() {
        Some("signal") => matches!(json["signo"].as_i64(), Some(9 | 15)),
        Some("exit") => json.get("signal").is_some_and(|s| !s.is_null()),
        _ => false,
    };
    if killing {
        (Severity::Warn, "WARN")
    } else {
        (Severity::Info, "INFO")
    }
}

/// The record's attributes, read from the report's JSON through [`ATTRIBUTES`] (the first
/// pointer that is there wins for a name), plus `sigwho.hint` (every hint id) and
/// `sigwho.repeats.count` wherever the report keeps a repeat count.
#[must_use]
pub fn attributes(json: &Value) -> Vec<(Key, AnyValue)> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for &(name, pointer) in ATTRIBUTES {
        if seen.contains(name) {
            continue;
        }
        if let Some(value) = json.pointer(pointer).and_then(any_value) {
            seen.insert(name);
            out.push((Key::from_static_str(name), value));
        }
    }
    if let Some(hints) = json["hints"].as_array() {
        let ids: Vec<AnyValue> = hints
            .iter()
            .filter_map(|h| h["id"].as_str())
            .map(|id| AnyValue::String(id.to_owned().into()))
            .collect();
        if !ids.is_empty() {
            out.push((
                Key::from_static_str("sigwho.hint"),
                AnyValue::ListAny(Box::new(ids)),
            ));
        }
    }
    if let Some(count) = ["/repeats/count", "/repeats", "/count"]
        .iter()
        .find_map(|p| json.pointer(p)?.as_i64())
    {
        out.push((
            Key::from_static_str("sigwho.repeats.count"),
            AnyValue::Int(count),
        ));
    }
    out
}

/// Scalars only; empty strings and nulls are left out.
fn any_value(value: &Value) -> Option<AnyValue> {
    match value {
        Value::String(s) if !s.is_empty() => Some(AnyValue::String(s.clone().into())),
        Value::Number(n) => n.as_i64().map(AnyValue::Int),
        Value::Bool(b) => Some(AnyValue::Boolean(*b)),
        _ => None,
    }
}

/// `OTEL_EXPORTER_OTLP_{LOGS_,}TIMEOUT` in milliseconds.
fn timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|var| std::env::var(var).ok()?.trim().parse().ok())
    .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
}

/// A blocking reqwest client on rustls (ring), trusting the system's roots and the PEM
/// CA of `OTEL_EXPORTER_OTLP_{LOGS_,}CERTIFICATE`.
fn http_client() -> Result<reqwest::blocking::Client, OtlpError> {
    // Only the first call installs it; later ones find it there.
    #[expect(
        deprecated,
        reason = "ring rather than aws-lc-rs: no C toolchain (cmake, NASM) in the build and a \
                  smaller binary; post-quantum key exchange is not needed to ship logs to \
                  a collector"
    )]
    let provider = rustls::crypto::ring::default_provider();
    let _ = provider.install_default();
    let mut extra = Vec::new();
    if let Some(path) = [
        "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    ]
    .iter()
    .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
    {
        let bad = |why: String| OtlpError::Certificate {
            path: path.clone(),
            why,
        };
        let pem = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
        extra = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
        if extra.is_empty() {
            return Err(bad("no PEM certificate in it".to_owned()));
        }
    }
    let timeout = timeout();
    // A blocking client builds (and drops) a runtime of its own: not on the recorder's.
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .tls_certs_merge(extra)
            .build()
    })
    .join()
    .map_err(|_| OtlpError::Build("the HTTP client could not be built".to_owned()))?
    .map_err(|e| OtlpError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoints_get_the_otlp_path() {
        assert_eq!(
            endpoint_url("http://localhost:4318").unwrap(),
            "http://localhost:4318/v1/logs"
        );
        assert_eq!(
            endpoint_url("https://collector/").unwrap(),
            "https://collector/v1/logs"
        );
        assert_eq!(
            endpoint_url("http://[::1]:9000/custom/logs").unwrap(),
            "http://[::1]:9000/custom/logs"
        );
        for bad in [
            "",
            "ftp://x:4318",
            "http://",
            "http://:80",
            "http://x:notaport",
            "http://x:0",
            "localhost:4318",
        ] {
            assert!(endpoint_url(bad).is_err(), "{bad}");
        }
    }

    fn get<'a>(attrs: &'a [(Key, AnyValue)], name: &str) -> Option<&'a AnyValue> {
        attrs
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| v)
    }

    #[test]
    fn attributes_come_from_the_json_and_skip_what_is_not_there() {
        let signal = json!({
            "event": "signal", "time": "2026-11-26T10:00:00Z", "signal": "SIGTERM", "signo": 15,
            "origin": "kill", "result": "delivered", "errno": null,
            "sender": {"pid": 10, "comm": "bash", "exe": ""},
            "target": {"pid": 20, "comm": "node", "pod_uid": "u-1"},
            "hints": [{"id": "a"}, {"id": "b"}],
            "repeats": {"count": 7},
        });
        let attrs = attributes(&signal);
        assert_eq!(
            get(&attrs, "signal.name"),
            Some(&AnyValue::String("SIGTERM".into()))
        );
        assert_eq!(get(&attrs, "signal.number"), Some(&AnyValue::Int(15)));
        assert_eq!(
            get(&attrs, "process.command"),
            Some(&AnyValue::String("node".into()))
        );
        assert_eq!(get(&attrs, "process.pid"), Some(&AnyValue::Int(20)));
        assert_eq!(
            get(&attrs, "k8s.pod.uid"),
            Some(&AnyValue::String("u-1".into()))
        );
        assert_eq!(get(&attrs, "sigwho.repeats.count"), Some(&AnyValue::Int(7)));
        assert!(get(&attrs, "signal.errno").is_none());
        assert!(get(&attrs, "sender.executable.path").is_none());
        assert_eq!(
            attrs
                .iter()
                .filter(|(k, _)| k.as_str() == "process.pid")
                .count(),
            1
        );
        assert_eq!(severity(&signal), (Severity::Warn, "WARN"));

        let exit = json!({"event": "exit", "pid": 5, "comm": "x", "exit_code": 3});
        let attrs = attributes(&exit);
        assert_eq!(get(&attrs, "process.pid"), Some(&AnyValue::Int(5)));
        assert_eq!(get(&attrs, "process.exit.code"), Some(&AnyValue::Int(3)));
        assert_eq!(severity(&exit), (Severity::Info, "INFO"));
    }
}
