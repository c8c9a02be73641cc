//! Why loading failed, in one line, with a refused program's verifier log saved.

use std::{fs, path::PathBuf};

use crate::error::chain;
use crate::kernel::{probe, tracefs};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "missing {missing}: sigwho needs root, or CAP_BPF and CAP_PERFMON{memlock} (it loads eBPF programs and reads kernel tracepoints)"
    )]
    Privileges {
        /// "capability `CAP_X`" or "capabilities `CAP_X` and `CAP_Y`".
        missing: String,
        /// ", and `CAP_SYS_RESOURCE` on this kernel" when BPF memory counts against `RLIMIT_MEMLOCK`.
        memlock: &'static str,
    },
    #[error("{0}")]
    Tracefs(#[from] tracefs::TracefsError),
    #[error(
        "this kernel has no {what} tracepoint ({path}); sigwho needs CONFIG_TRACEPOINTS with signal and sched events"
    )]
    MissingTracepoint { what: String, path: String },
    #[error(
        "this kernel exposes no BTF (/sys/kernel/btf/vmlinux: {0}); sigwho needs CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf(String),
    #[error("cannot load sigwho's eBPF object: {0}")]
    Object(String),
    #[error("cannot load eBPF program {program}: {reason}{}", log_note(.log.as_deref()))]
    Program {
        program: String,
        /// The verifier's reason in a few words (its last meaningful line).
        reason: String,
        /// Where the whole verifier log was saved.
        log: Option<PathBuf>,
    },
    #[error("this kernel lacks {0}, which sigwho needs")]
    Unsupported(&'static str),
    #[error("this kernel lacks the eBPF helpers {0} (Linux 5.8 has them all)")]
    MissingHelpers(String),
    #[error("cannot attach eBPF program {program}: {reason}")]
    Attach { program: String, reason: String },
    #[error("eBPF map {0}: {1}")]
    Map(&'static str, String),
}

fn log_note(log: Option<&std::path::Path>) -> String {
    log.map(|path| {
        format!(
            " (verifier log: {}; SIGWHO_LOG=debug prints it)",
            path.display()
        )
    })
    .unwrap_or_default()
}

/// The one-line error for a program that will not load: the verifier's reason in a
/// few words, and where its whole log was saved (under [`runtime_dir`]).
pub(super) fn program_error(program: &str, error: &aya::programs::ProgramError) -> LoadError {
    program_error_in(&runtime_dir(), program, error)
}

fn program_error_in(
    dir: &std::path::Path,
    program: &str,
    error: &aya::programs::ProgramError,
) -> LoadError {
    let aya::programs::ProgramError::LoadError {
        io_error,
        verifier_log,
    } = error
    else {
        return LoadError::Program {
            program: program.to_owned(),
            reason: chain(error),
            log: None,
        };
    };
    let log = verifier_log.to_string();
    if verbose() {
        eprintln!("sigwho: verifier log of {program}:");
        eprintln!("{}", log.trim_end());
    }
    let reason = match probe::verifier_reason(&log) {
        Some(reason) => format!("{reason} ({io_error})"),
        None => io_error.to_string(),
    };
    LoadError::Program {
        program: program.to_owned(),
        reason,
        log: save_verifier_log(dir, program, &log),
    }
}

/// Where sigwho keeps files of the running instance: `$RUNTIME_DIRECTORY` under systemd,
/// else `$XDG_RUNTIME_DIR/sigwho`, else /run/sigwho.
pub fn runtime_dir() -> PathBuf {
    std::env::var_os("RUNTIME_DIRECTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("sigwho")))
        .unwrap_or_else(|| PathBuf::from("/run/sigwho"))
}

/// Writes a verifier log as `dir`/verifier-PROGRAM.log; None when it cannot.
fn save_verifier_log(dir: &std::path::Path, program: &str, log: &str) -> Option<PathBuf> {
    if log.trim().is_empty() {
        return None;
    }
    fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("verifier-{program}.log"));
    fs::write(&path, log).ok()?;
    Some(path)
}

/// Whether diagnostics are wanted in full (`-v`, or `SIGWHO_LOG=debug`).
pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
        || std::env::var("SIGWHO_LOG").is_ok_and(|level| level.eq_ignore_ascii_case("debug"))
}

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns full diagnostics on (`-v`).
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_program_is_one_line_with_its_log_saved() {
        let dir = std::env::temp_dir().join(format!("sigwho-load-test-{}", std::process::id()));
        let log = "0: R1=ctx() R10=fp0\n\
                   2: (79) r2 = *(u64 *)(r1 +8)\n\
                   func 'signal_generate' arg1 has btf_id 446 type STRUCT 'kernel_siginfo'\n\
                   R1 invalid mem access 'scalar'\n\
                   processed 40 insns (limit 1000000) max_states_per_insn 0\n"
            .to_string()
            + &"; filler line of a long log\n".repeat(500);
        let log = log + "R1 invalid mem access 'scalar'\nprocessed 40 insns (limit 1000000)\n";
        let error = aya::programs::ProgramError::LoadError {
            io_error: std::io::Error::from_raw_os_error(libc::EACCES),
            verifier_log: aya_obj::VerifierLog::new(log.clone()),
        };
        let message = program_error_in(&dir, "signal_generate", &error).to_string();
        let saved = dir.join("verifier-signal_generate.log");
        assert_eq!(
            message,
            format!(
                "cannot load eBPF program signal_generate: R1 invalid mem access 'scalar' (Permission denied (os error 13)) (verifier log: {}; SIGWHO_LOG=debug prints it)",
                saved.display()
            )
        );
        assert!(!message.contains('\n'));
        assert_eq!(std::fs::read_to_string(&saved).unwrap(), log);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
