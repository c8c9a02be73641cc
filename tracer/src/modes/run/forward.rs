//! SIGINT, SIGTERM and SIGHUP sent to sigwho during a run: passed on to the command, as
//! `timeout` and `tini` do, unless the terminal already sent them to it.

use crate::{
    kernel::sys,
    model::{procfs, signals::signal_label},
    modes::signals::Received,
    render::summary::Interrupt,
};

/// `si_code` of signals the kernel made, such as those a terminal sends its foreground
/// process group (^C, hangup).
const SI_KERNEL: i32 = 0x80;

/// Passes `received` on to the command (pid `cmd_pid`), unless the terminal sent it
/// there too or the command is done (only descendants are waited for: the signal ends
/// the wait); says what was done.
pub(super) fn pass_on(received: &Received, cmd_pid: u32, command_done: bool) -> Interrupt {
    if command_done {
        return interrupt(received, false, "stopped waiting for the descendants");
    }
    let forwarded = should_forward(received, cmd_pid);
    if forwarded {
        // Our child, not reaped yet: the pid is still its. Gone already, it needs
        // nothing passed on.
        let _ = sys::kill(cmd_pid, received.signo);
    }
    interrupt(
        received,
        forwarded,
        if forwarded {
            "passed it on to the command"
        } else {
            "the terminal sent it to the command too"
        },
    )
}

/// A terminal sends ^C and hangups to its whole foreground process group: the command
/// already got `received`, unless it moved to a group of its own.
fn should_forward(received: &Received, cmd_pid: u32) -> bool {
    if received.code != SI_KERNEL {
        return true;
    }
    let ours = sys::getpgrp();
    procfs::read_stat(cmd_pid).is_ok_and(|stat| stat.pgrp != ours)
}

/// What the summary says of `received`, and of what sigwho did about it.
fn interrupt(received: &Received, forwarded: bool, action: &'static str) -> Interrupt {
    Interrupt {
        signo: received.signo,
        sender_pid: received.pid,
        description: describe(received),
        forwarded,
        action,
    }
}

/// The signal and who sent it, in words.
fn describe(received: &Received) -> String {
    let name = signal_label(received.signo);
    match received.code {
        SI_KERNEL => format!("{name} from the kernel (terminal)"),
        _ if received.pid == 0 => name,
        _ => {
            let comm = procfs::read_stat(received.pid)
                .map(|s| format!(" ({})", s.comm))
                .unwrap_or_default();
            format!("{name} from pid {}{comm}", received.pid)
        }
    }
}
