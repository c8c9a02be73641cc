//! SIGINT, SIGTERM and SIGHUP sent to sigwho during a run: passed on to the command.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use tokio::io::{Interest, unix::AsyncFd};

use crate::{
    model::{procfs, signals::signal_label},
    render::summary::Interrupt,
};

/// Signals sigwho passes on to the command, as `timeout` and `tini` do.
const FORWARDED: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// si_code of signals the kernel made, such as those a terminal sends its foreground
/// process group (^C, hangup).
const SI_KERNEL: i32 = 0x80;

// ---------------------------------------------------------------------------------------
// Signals sigwho itself receives

/// SIGINT, SIGTERM and SIGHUP, blocked and read from a signalfd, which (unlike a
/// handler) tells who sent each one.
pub(super) struct SignalInbox {
    fd: AsyncFd<OwnedFd>,
    /// The mask before sigwho blocked them, for the command.
    pub(super) original: libc::sigset_t,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Received {
    pub(super) signo: i32,
    code: i32,
    sender_pid: u32,
}

impl SignalInbox {
    pub(super) fn new() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data that sigemptyset initialises; the calls get
        // valid pointers.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signo in FORWARDED {
                libc::sigaddset(&mut set, signo);
            }
            let mut original: libc::sigset_t = std::mem::zeroed();
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut original);
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                let error = io::Error::last_os_error();
                libc::pthread_sigmask(libc::SIG_SETMASK, &original, std::ptr::null_mut());
                return Err(error);
            }
            // The AsyncFd owns the descriptor and keeps it open until dropped.
            let fd = AsyncFd::register_with_interest(OwnedFd::from_raw_fd(fd), Interest::READABLE)
                .map_err(|e| io::Error::other(e.to_string()))?;
            Ok(Self { fd, original })
        }
    }

    /// The next signal. Cancel-safe: reading happens only once one is there.
    pub(super) async fn recv(&self) -> io::Result<Received> {
        loop {
            let mut guard = self.fd.readable().await?;
            let result = guard.try_io(|fd| {
                // SAFETY: signalfd_siginfo is plain data; read fills at most its size.
                let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
                let size = std::mem::size_of::<libc::signalfd_siginfo>();
                let n = unsafe { libc::read(fd.as_raw_fd(), (&raw mut info).cast(), size) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(Received {
                    signo: info.ssi_signo as i32,
                    code: info.ssi_code,
                    sender_pid: info.ssi_pid,
                })
            });
            match result {
                Ok(received) => return received,
                Err(_would_block) => continue,
            }
        }
    }
}

impl Received {
    /// What the summary says of this signal, and of what sigwho did about it.
    pub(super) fn interrupt(&self, forwarded: bool, action: &'static str) -> Interrupt {
        Interrupt {
            signo: self.signo,
            sender_pid: self.sender_pid,
            description: self.describe(),
            forwarded,
            action,
        }
    }

    /// A terminal sends ^C and hangups to its whole foreground process group: the
    /// command already got it, unless it moved to a group of its own.
    pub(super) fn should_forward(&self, cmd_pid: u32) -> bool {
        if self.code != SI_KERNEL {
            return true;
        }
        // SAFETY: plain syscall.
        let ours = unsafe { libc::getpgrp() };
        procfs::read_stat(cmd_pid).is_ok_and(|stat| stat.pgrp != ours)
    }

    pub(super) fn describe(&self) -> String {
        let name = signal_label(self.signo);
        match self.code {
            SI_KERNEL => format!("{name} from the kernel (terminal)"),
            _ if self.sender_pid == 0 => name,
            _ => {
                let comm = procfs::read_stat(self.sender_pid)
                    .map(|s| format!(" ({})", s.comm))
                    .unwrap_or_default();
                format!("{name} from pid {}{comm}", self.sender_pid)
            }
        }
    }
}
