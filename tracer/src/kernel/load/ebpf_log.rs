//! The programs' diagnostics through aya-log: why a record was skipped, which fallback a
//! program took. Off unless `SIGWHO_LOG` asks for debug (or trace) messages: the
//! programs then carry `Config::log` set, and a thread of its own prints what they
//! write, as `sigwho: ebpf: LEVEL: message` lines on stderr.

use std::io::Write as _;

use aya::Ebpf;
use aya_log::EbpfLogger;

/// The environment variable, an `env_logger` filter (`debug`, `trace`, or per module:
/// `sigwho_ebpf::request=debug`).
pub const LOG_ENV: &str = "SIGWHO_LOG";

/// Whether `SIGWHO_LOG` asks for the eBPF side's debug messages.
#[must_use]
pub fn requested() -> bool {
    std::env::var(LOG_ENV).is_ok_and(|filter| {
        filter.split(',').any(|part| {
            part.rsplit('=').next().is_some_and(|level| {
                level.trim().eq_ignore_ascii_case("debug")
                    || level.trim().eq_ignore_ascii_case("trace")
            })
        })
    })
}

/// Takes the log ring buffer out of `ebpf` and prints what arrives in it until the
/// process ends. A failure is a warning: the tracer works without its diagnostics.
pub(super) fn start(ebpf: &mut Ebpf, warnings: &mut Vec<String>) {
    let _ = env_logger::Builder::new()
        .parse_env(env_logger::Env::new().filter(LOG_ENV))
        .format(|out, record| {
            writeln!(
                out,
                "sigwho: ebpf: {}: {}",
                record.level().as_str().to_ascii_lowercase(),
                record.args()
            )
        })
        .try_init();
    let logger = match EbpfLogger::init(ebpf) {
        Ok(logger) => logger,
        Err(e) => {
            warnings.push(format!("{LOG_ENV}: the eBPF log cannot be read: {e}"));
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("sigwho-ebpf-log".to_owned())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(mut fd) = crate::kernel::sys::async_ebpf_log(logger) else {
                    return;
                };
                while let Ok(mut ready) = fd.readable_mut().await {
                    ready.get_inner_mut().flush();
                    ready.clear_ready();
                }
            });
        });
    if let Err(e) = spawned {
        warnings.push(format!("{LOG_ENV}: cannot start the eBPF log reader: {e}"));
    }
}
