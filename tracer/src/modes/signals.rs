//! What sigwho does with signals aimed at itself that it has no use for.
//!
//! sigwho runs during incidents, next to whatever is sending signals around. A stray
//! SIGUSR1 or SIGALRM (default action: terminate) must not end the one tool that would
//! say who sent it, so those are caught and dropped. SIGINT/SIGTERM (flush and
//! summarise), SIGHUP and SIGPIPE keep the handling the modes give them.

use std::ffi::c_int;

/// Signals whose default action would end sigwho although nothing asked it to stop.
fn shrugged_off() -> impl Iterator<Item = c_int> {
    [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGSTKFLT,
    ]
    .into_iter()
    .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
}

extern "C" fn drop_signal(_signo: c_int) {}

/// Installs a handler that does nothing for each [`shrugged_off`] signal. A handler, not
/// SIG_IGN: handlers go back to the default at exec, so a command under `sigwho run`
/// starts with the dispositions it would have had without sigwho. Call before the modes
/// install their own handlers (tokio's replace these for the signals they take).
pub fn shrug_off() {
    for signo in shrugged_off() {
        // SAFETY: sigaction with a zeroed struct, an empty mask and a handler that touches
        // nothing (async-signal-safe).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = drop_signal as extern "C" fn(c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signo, &action, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_flush_signals_are_left_alone() {
        let list: Vec<c_int> = shrugged_off().collect();
        for kept in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGPIPE,
            libc::SIGQUIT,
            libc::SIGCHLD,
        ] {
            assert!(!list.contains(&kept), "{kept}");
        }
        assert!(list.contains(&libc::SIGUSR1) && list.contains(&libc::SIGRTMAX()));
    }
}
