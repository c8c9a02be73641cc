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

use anyhow::Context as _;

use crate::{analysis::report::Report, render::output::ReportWriter};

pub struct Exports {
    json: Option<ReportWriter<Box<dyn Write + Send>>>,
    json_name: String,
    #[cfg(feature = "otlp")]
    otlp: Option<(crate::store::otlp::Exporter, String)>,
}

impl Exports {
    /// Opens `--json-out` (appended to, created 0600: reports hold command lines) and
    /// starts the OTLP exporter. Bad values fail here, before anything is loaded.
    pub fn open(json_out: Option<&Path>, otlp_endpoint: Option<&str>) -> anyhow::Result<Self> {
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
                    .with_context(|| format!("--json-out {}", path.display()))?;
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
        let otlp = match otlp_endpoint {
            None => None,
            Some(url) => {
                let endpoint = crate::store::otlp::Endpoint::parse(url)?;
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_default();
                let url = endpoint.url();
                Some((crate::store::otlp::Exporter::start(endpoint, &host)?, url))
            }
        };
        #[cfg(not(feature = "otlp"))]
        if otlp_endpoint.is_some() {
            anyhow::bail!("--otlp-endpoint: this sigwho was built without the otlp feature");
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
