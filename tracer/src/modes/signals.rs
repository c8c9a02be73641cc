//! sigwho's own signals, one way in every mode.
//!
//! sigwho runs during incidents, next to whatever is sending signals around. A stray
//! SIGUSR1 or SIGALRM (default action: terminate) must not end the one tool that would
//! say who sent it; SIGINT and SIGTERM must let a mode flush and summarise; the run mode
//! must know who sent them, to pass them on and to say so. So at start, before any
//! thread exists, the signals the mode acts on and the stray ones are blocked (every
//! thread inherits the mask) and read from a signalfd, which names each sender: the
//! mode gets the ones it acts on from [`OwnSignals::recv`], the stray ones are read and
//! dropped. Dispositions are never changed, so a command under `sigwho run` (which gets
//! the mask sigwho started with) starts as it would have without sigwho. Signals a mode
//! does not act on and that are not stray (SIGHUP in the live view, SIGQUIT) keep their
//! default action.

use std::{ffi::c_int, io, os::fd::OwnedFd};

use tokio::io::unix::AsyncFd;

use crate::kernel::sys::{self, SigInfo, SigSet};

/// Signals whose default action would end sigwho although nothing asked it to stop.
fn stray() -> impl Iterator<Item = c_int> {
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

/// A signal sent to sigwho that its mode acts on.
pub type Received = SigInfo;

/// sigwho's signals, blocked and waiting on a signalfd.
pub struct OwnSignals {
    handled: Vec<c_int>,
    fd: Option<OwnedFd>,
    /// Registered with the runtime on the first [`OwnSignals::recv`].
    reader: Option<AsyncFd<OwnedFd>>,
    /// The mask sigwho started with.
    original: SigSet,
}

impl OwnSignals {
    /// Blocks `handled` and the stray signals. Call before any thread is started.
    ///
    /// # Errors
    ///
    /// When the mask cannot be set or the signalfd cannot be created.
    pub fn take(handled: &[c_int]) -> io::Result<Self> {
        let set = SigSet::of(handled.iter().copied().chain(stray()));
        let original = sys::block_signals(&set)?;
        let fd = sys::signalfd(&set)?;
        Ok(Self {
            handled: handled.to_vec(),
            fd: Some(fd),
            reader: None,
            original,
        })
    }

    /// The mask sigwho started with, for the commands it runs.
    #[must_use]
    pub fn original_mask(&self) -> SigSet {
        self.original
    }

    /// The next signal the mode acts on; stray ones are dropped on the way. Cancel-safe:
    /// a signal is read only once one is there. Needs a tokio runtime.
    ///
    /// # Errors
    ///
    /// When the signalfd cannot be registered or read.
    pub async fn recv(&mut self) -> io::Result<Received> {
        if let Some(fd) = self.fd.take() {
            self.reader = Some(sys::async_fd(fd)?);
        }
        let Some(reader) = &self.reader else {
            return Err(io::Error::other("the signalfd could not be registered"));
        };
        loop {
            let mut guard = reader.readable().await?;
            match guard.try_io(sys::read_signalfd) {
                Ok(Ok(info)) if self.handled.contains(&info.signo) => return Ok(info),
                Ok(Ok(_stray)) => {}
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_flush_signals_are_not_stray() {
        let list: Vec<c_int> = stray().collect();
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
