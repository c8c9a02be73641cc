//! `sigwho record --json-out` and `--otlp-endpoint`: a real signal, recorded, reaches a
//! JSON-lines file and an OpenTelemetry collector: a loopback OTLP/HTTP receiver played
//! by the test, on hyper, decoding what it receives with opentelemetry-proto (Debian
//! packages no OpenTelemetry Collector). It also serves TLS with a self-signed
//! certificate (rcgen), checks an auth header, takes gzip, and answers 503 to the first
//! POST to see the exporter retry.

use std::{
    io::Read as _,
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::{
    collector::logs::v1::ExportLogsServiceRequest,
    common::v1::{AnyValue, any_value::Value as Any},
    logs::v1::LogRecord,
};
use prost::Message as _;
use rustls_pki_types::pem::PemObject as _;
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

/// One POST as the collector saw it.
#[derive(Debug, Clone)]
struct Post {
    path: String,
    content_type: String,
    gzip: bool,
    authorization: Option<String>,
    /// `None` for the POSTs answered 503.
    request: Option<ExportLogsServiceRequest>,
}

/// How the receiver behaves.
#[derive(Default)]
struct Settings {
    /// Serve TLS with this certificate and key (PEM).
    tls: Option<(String, String)>,
    /// Answer this many POSTs with 503 before accepting.
    refuse_first: usize,
}

/// An OTLP/HTTP logs receiver on loopback, in a thread of its own with a tokio runtime.
struct Collector {
    port: u16,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Collector {
    fn start(settings: Settings) -> Collector {
        let posts = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&posts);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let acceptor = settings.tls.map(|(cert, key)| {
            let _ = rustls::crypto::CryptoProvider::install_default(
                #[expect(deprecated, reason = "the same provider sigwho uses (ring)")]
                rustls::crypto::ring::default_provider(),
            );
            let certs = rustls_pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("certificate");
            let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
            let config = rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("server config");
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let refuse_first = settings.refuse_first;
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                while let Ok((stream, _)) = listener.accept().await {
                    let posts = Arc::clone(&kept);
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            receive(request, Arc::clone(&posts), refuse_first)
                        });
                        match acceptor {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ = http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                }
                            }
                            None => {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    });
                }
            });
        });
        Collector { port, posts }
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().expect("lock").clone()
    }

    /// The log records received whose body is a signal to `pid`.
    fn records_for(&self, pid: i32) -> Vec<LogRecord> {
        self.posts()
            .into_iter()
            .filter_map(|post| post.request)
            .flat_map(|r| r.resource_logs)
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records)
            .filter(|record| {
                body_json(record).is_some_and(|ev| {
                    field_str(&ev, "event") == Some("signal")
                        && field_i64(&ev, "target.pid") == Some(i64::from(pid))
                })
            })
            .collect()
    }
}

async fn receive(
    request: Request<Incoming>,
    posts: Arc<Mutex<Vec<Post>>>,
    refuse_first: usize,
) -> Result<Response<Full<bytes::Bytes>>, hyper::Error> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = request.uri().path().to_owned();
    let content_type = header("content-type").unwrap_or_default();
    let gzip = header("content-encoding").as_deref() == Some("gzip");
    let authorization = header("authorization");
    let body = request.into_body().collect().await?.to_bytes();
    let mut post = Post {
        path,
        content_type,
        gzip,
        authorization,
        request: None,
    };
    let refuse = posts.lock().expect("lock").len() < refuse_first;
    if !refuse {
        let mut bytes = body.to_vec();
        if gzip {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .expect("gzip body");
            bytes = plain;
        }
        post.request = Some(ExportLogsServiceRequest::decode(&bytes[..]).expect("OTLP protobuf"));
    }
    posts.lock().expect("lock").push(post);
    let status = if refuse { 503 } else { 200 };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/x-protobuf")
        .body(Full::new(bytes::Bytes::new()))
        .expect("response"))
}

fn body_json(record: &LogRecord) -> Option<Value> {
    match record.body.as_ref()?.value.as_ref()? {
        Any::StringValue(s) => serde_json::from_str(s).ok(),
        _ => None,
    }
}

fn attribute<'a>(record: &'a LogRecord, key: &str) -> Option<&'a Any> {
    record
        .attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn resource_attribute(request: &ExportLogsServiceRequest, key: &str) -> Option<Any> {
    request.resource_logs[0]
        .resource
        .as_ref()?
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .clone()?
        .value
}

/// `sigwho record` with `args`, once it records.
fn recorder(journal: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Sigwho {
    let mut cmd = Sigwho::command(&["record", "--journal"]);
    cmd.arg(journal).args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    Sigwho::start_waiting_for(cmd, "sigwho: recording")
}

/// Stops the recorder and returns its summary line about the export.
fn stop(mut recorder: Sigwho) -> String {
    assert!(recorder.signal(libc::SIGTERM));
    let (status, _) = recorder.wait_exit(TIMEOUT);
    assert!(status.success(), "{}", recorder.report());
    recorder
        .stderr()
        .into_iter()
        .find(|l| l.starts_with("sigwho: exported "))
        .unwrap_or_else(|| panic!("no export summary: {}", recorder.report()))
}

#[test]
fn a_recorded_signal_reaches_the_json_file_and_the_collector() {
    require_root();
    let dir = scratch("both");
    let journal = dir.join("journal");
    let json_out = dir.join("signals.jsonl");
    let collector = Collector::start(Settings::default());
    let recorder = recorder(
        &journal,
        &[
            "--json-out",
            json_out.to_str().expect("UTF-8"),
            "--otlp-endpoint",
            &format!("http://127.0.0.1:{}", collector.port),
        ],
        &[],
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
        wait_until(|| !collector.records_for(target.pid).is_empty(), TIMEOUT),
        "the collector got nothing for pid {}: {:?}",
        target.pid,
        collector.posts()
    );
    let record = collector.records_for(target.pid).remove(0);
    assert_eq!(
        attribute(&record, "signal.name"),
        Some(&Any::StringValue("SIGUSR1".to_owned()))
    );
    assert_eq!(
        attribute(&record, "sender.pid"),
        Some(&Any::IntValue(i64::from(sender.pid)))
    );
    assert_eq!(
        attribute(&record, "process.pid"),
        Some(&Any::IntValue(i64::from(target.pid)))
    );
    assert_eq!(record.event_name, "sigwho.signal");
    assert_eq!(record.severity_text, "INFO");
    assert!(
        record.time_unix_nano > 1_700_000_000_000_000_000,
        "{record:?}"
    );
    let post = collector.posts().remove(0);
    assert_eq!(post.path, "/v1/logs");
    assert_eq!(post.content_type, "application/x-protobuf");
    let request = post.request.expect("accepted");
    assert_eq!(
        resource_attribute(&request, "service.name"),
        Some(Any::StringValue("sigwho".to_owned()))
    );

    let exported = stop(recorder);
    assert!(exported.ends_with("; 0 not exported"), "{exported}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The standard environment configures TLS (a private CA), an auth header and gzip;
/// the collector refuses the first POST with 503 and the exporter tries again.
#[test]
fn tls_headers_gzip_and_a_retry_from_the_environment() {
    require_root();
    let dir = scratch("tls");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("self-signed certificate");
    let ca = dir.join("collector.pem");
    std::fs::write(&ca, certified.cert.pem()).expect("write the certificate");
    let collector = Collector::start(Settings {
        tls: Some((certified.cert.pem(), certified.signing_key.serialize_pem())),
        refuse_first: 1,
    });
    let endpoint = format!("https://localhost:{}", collector.port);
    let recorder = recorder(
        &dir.join("journal"),
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            (
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
                ca.to_str().expect("UTF-8"),
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20s3cret",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_SERVICE_NAME", "sigwho-node-7"),
        ],
    );
    let target = Target::spawn(&["--handle", "USR1"]);
    let sender = testproc(&["kill", &target.pid.to_string(), "USR1"]).assert_success();
    assert!(
        wait_until(|| !collector.records_for(target.pid).is_empty(), TIMEOUT),
        "the collector got nothing for pid {}: {:?}",
        target.pid,
        collector.posts()
    );
    let record = collector.records_for(target.pid).remove(0);
    assert_eq!(
        attribute(&record, "sender.pid"),
        Some(&Any::IntValue(i64::from(sender.pid)))
    );
    let posts = collector.posts();
    assert!(posts[0].request.is_none(), "the first POST was refused");
    for post in &posts {
        assert_eq!(post.path, "/v1/logs", "{post:?}");
        assert!(post.gzip, "{post:?}");
        assert_eq!(
            post.authorization.as_deref(),
            Some("Bearer s3cret"),
            "{post:?}"
        );
    }
    // What was refused came again: the first accepted POST holds it.
    let accepted = posts[1].request.as_ref().expect("second POST accepted");
    assert_eq!(
        resource_attribute(accepted, "service.name"),
        Some(Any::StringValue("sigwho-node-7".to_owned()))
    );

    let exported = stop(recorder);
    assert!(exported.ends_with("; 0 not exported"), "{exported}");
    assert!(exported.contains(&endpoint), "{exported}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_endpoint_is_a_one_line_error() {
    require_root();
    let dir = scratch("bad");
    for url in ["ftp://collector:4318", "localhost:4318", "http://:4318"] {
        let mut cmd = Sigwho::command(&["record", "--journal"]);
        cmd.arg(dir.join("journal")).args(["--otlp-endpoint", url]);
        let run = sigwho_tests::run(cmd, TIMEOUT);
        assert_eq!(run.status.code(), Some(2), "{url}: {run}");
        assert_eq!(run.stderr.lines().count(), 1, "{url}: {run}");
        assert!(run.stderr.contains("--otlp-endpoint"), "{url}: {run}");
    }
    // A CA file that is not there.
    let mut cmd = Sigwho::command(&["record", "--journal"]);
    cmd.arg(dir.join("journal"))
        .args(["--otlp-endpoint", "https://localhost:4318"])
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", dir.join("missing.pem"));
    let run = sigwho_tests::run(cmd, TIMEOUT);
    assert!(!run.status.success(), "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(
        run.stderr.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"),
        "{run}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
