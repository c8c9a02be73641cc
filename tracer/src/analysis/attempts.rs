//! Failed attempts: a kill-family call the kernel refused generated no signal, so its
//! target is worked out from the request.

use tracer_ebpf::{Request, syscall};

/// A process a failed request may have been aimed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub pid: u32,
    pub pgrp: i32,
    pub tids: Vec<u32>,
}

/// Whether `request` (which failed, so the kernel generated nothing) was aimed at
/// `watched`. `sender_pgrp` is needed for kill(0, ...).
pub fn request_reaches(request: &Request, sender_pgrp: Option<i32>, watched: &Watched) -> bool {
    let pid = i64::from(watched.pid);
    match request.syscall {
        syscall::KILL | syscall::RT_SIGQUEUEINFO => match request.arg0 {
            0 => sender_pgrp == Some(watched.pgrp),
            // kill(-1) reaches every process the sender may signal except init.
            -1 => watched.pid != 1,
            group if group < 0 => -group == i64::from(watched.pgrp),
            target => target == pid,
        },
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => request.arg0 == pid,
        syscall::TKILL => watched.tids.iter().any(|&t| i64::from(t) == request.arg0),
        syscall::PIDFD_SEND_SIGNAL => i64::from(request.pidfd_pid) == pid,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(syscall: u32, arg0: i64, arg1: i64) -> Request {
        Request {
            syscall,
            sig: 15,
            arg0,
            arg1,
            pidfd_pid: 0,
            _pad: 0,
        }
    }

    #[test]
    fn failed_requests_are_matched_to_the_watched_process() {
        let watched = Watched {
            pid: 100,
            pgrp: 90,
            tids: vec![100, 101],
        };
        assert!(request_reaches(
            &request(syscall::KILL, 100, 0),
            None,
            &watched
        ));
        assert!(!request_reaches(
            &request(syscall::KILL, 101, 0),
            None,
            &watched
        ));
        assert!(request_reaches(
            &request(syscall::KILL, -90, 0),
            None,
            &watched
        ));
        assert!(request_reaches(
            &request(syscall::KILL, -1, 0),
            None,
            &watched
        ));
        assert!(request_reaches(
            &request(syscall::KILL, 0, 0),
            Some(90),
            &watched
        ));
        assert!(!request_reaches(
            &request(syscall::KILL, 0, 0),
            Some(91),
            &watched
        ));
        assert!(request_reaches(
            &request(syscall::TKILL, 101, 0),
            None,
            &watched
        ));
        assert!(request_reaches(
            &request(syscall::TGKILL, 100, 101),
            None,
            &watched
        ));
        let mut pidfd = request(syscall::PIDFD_SEND_SIGNAL, 3, 0);
        pidfd.pidfd_pid = 100;
        assert!(request_reaches(&pidfd, None, &watched));
    }
}
