//! Where the recorder sends what it records besides the journal: JSON lines for a log
//! shipper (`--json-out FILE|-`) and OpenTelemetry log records (`--otlp-endpoint URL`).
//! Both see every report as the reader produces it, before repeats are folded for the
//! journal, so each signal is one object, as `--json` prints it.

use std::{
    fs::OpenOptions,
    io::{self, Write},
    os::unix::fs::OpenOptionsExt as _,
    path::Path,
};

use crate::{analysis::report::Report, render::output::ReportWriter};

/// Why an export could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("--json-out {path}: {source}")]
    JsonOut {
        path: std::path::PathBuf,
        source: io::Error,
    },
    #[cfg(feature = "otlp")]
    #[error("{0}")]
    Otlp(#[from] crate::store::otlp::OtlpError),
    #[cfg(not(feature = "otlp"))]
    #[error("--otlp-endpoint: this sigwho was built without the otlp feature")]
    NoOtlp,
}

pub struct Exports {
    json: Option<ReportWriter<Box<dyn Write + Send>>>,
    json_name: String,
    #[cfg(feature = "otlp")]
    otlp: Option<(crate::store::otlp::Exporter, String)>,
}

impl Exports {
    /// Opens `--json-out` (appended to, created 0600: reports hold command lines) and
    /// starts the OTLP exporter. Bad values fail here, before anything is loaded.
    ///
    /// # Errors
    ///
    /// When the `--json-out` file cannot be opened or the OTLP endpoint is malformed.
    pub fn open(json_out: Option<&Path>, otlp_endpoint: Option<&str>) -> Result<Self, ExportError> {
        let json = match json_out {
            None => None,
            Some(path) if path == Path::new("-") => Some(ReportWriter::new(
                Box::new(io::stdout()) as Box<dyn Write + Send>,
                true,
            )),
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(|source| ExportError::JsonOut {
                        path: path.to_owned(),
                        source,
                    })?;
                Some(ReportWriter::new(
                    Box::new(file) as Box<dyn Write + Send>,
                    true,
                ))
            }
        };
        let json_name = json_out
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        #[cfg(feature = "otlp")]
        // --otlp-endpoint, else OTEL_EXPORTER_OTLP_{,LOGS_}ENDPOINT switches it on.
        let otlp = match otlp_endpoint {
            None if crate::store::otlp::endpoint_from_env().is_none() => None,
            endpoint => {
                let endpoint = endpoint.map(crate::store::otlp::endpoint_url).transpose()?;
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_default();
                let exporter = crate::store::otlp::Exporter::start(endpoint, &host)?;
                let url = exporter.url().to_owned();
                Some((exporter, url))
            }
        };
        #[cfg(not(feature = "otlp"))]
        if otlp_endpoint.is_some() {
            return Err(ExportError::NoOtlp);
        }
        Ok(Self {
            json,
            json_name,
            #[cfg(feature = "otlp")]
            otlp,
        })
    }

    /// One pass's reports.
    pub fn send(&mut self, reports: &[Report]) {
        if let Some(json) = &mut self.json {
            for report in reports {
                json.emit(report);
            }
            json.flush();
            if json.closed {
                eprintln!(
                    "sigwho: warning: --json-out {}: closed; no more JSON lines",
                    self.json_name
                );
                self.json = None;
            }
        }
        #[cfg(feature = "otlp")]
        if let Some((otlp, _)) = &self.otlp {
            for report in reports {
                otlp.send(report);
            }
        }
    }

    /// Flushes and stops; one line for the summary when something was exported.
    #[must_use]
    pub fn finish(self) -> Option<String> {
        #[cfg(feature = "otlp")]
        if let Some((otlp, url)) = self.otlp {
            let stats = otlp.finish();
            return Some(format!(
                "exported {} events to {url}; {} not exported",
                stats.exported, stats.dropped
            ));
        }
        None
    }
}
