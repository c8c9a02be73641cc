//! Failed attempts: a kill-family call the kernel refused generated no signal, so its
//! target is worked out from the request, here, for every mode: the process it names,
//! else the first watched process it reaches (a process group, kill(-1), a thread id).

use tracer_common::{Request, syscall};

use crate::model::{lineage::ProcKey, procfs::ProcInfo};

/// The process and thread a failed request was aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptTarget {
    pub pid: u32,
    pub tid: u32,
}

/// Where the failed `request` from `sender` was aimed: the process it names (which the
/// caller still has to accept as one it watches), else the first of `candidates` (the
/// watched processes, in order of preference) it reaches. /proc (`info`) tells process
/// groups and threads, read now: they change.
pub fn attempt_target(
    request: &Request,
    sender: Option<ProcKey>,
    candidates: &[u32],
    info: &dyn ProcInfo,
) -> Option<AttemptTarget> {
    let named = match request.syscall {
        syscall::KILL | syscall::RT_SIGQUEUEINFO if request.arg0 > 0 => Some(request.arg0),
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => Some(request.arg0),
        syscall::PIDFD_SEND_SIGNAL if request.pidfd_pid > 0 => Some(i64::from(request.pidfd_pid)),
        _ => None,
    };
    let pid = if let Some(pid) = named {
        u32::try_from(pid).ok()?
    } else {
        let sender_pgrp = sender
            .and_then(|key| info.process_if(key.pid, key.start_ticks))
            .map(|snap| snap.stat.pgrp);
        candidates.iter().copied().find(|&pid| {
            let watched = Watched {
                pid,
                pgrp: info.stat(pid).map_or(0, |s| s.pgrp),
                tids: if request.syscall == syscall::TKILL {
                    info.tids(pid)
                } else {
                    Vec::new()
                },
            };
            request_reaches(request, sender_pgrp, &watched)
        })?
    };
    let tid = match request.syscall {
        syscall::TKILL => u32::try_from(request.arg0).unwrap_or(pid),
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => u32::try_from(request.arg1).unwrap_or(pid),
        _ => pid,
    };
    Some(AttemptTarget { pid, tid })
}

/// A process a failed request may have been aimed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub pid: u32,
    pub pgrp: i32,
    pub tids: Vec<u32>,
}

/// Whether `request` (which failed, so the kernel generated nothing) was aimed at
/// `watched`. `sender_pgrp` is needed for kill(0, ...).
#[must_use]
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
    use crate::analysis::report::fixtures::request;

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

    #[test]
    fn an_attempt_names_its_target_or_reaches_a_watched_one() {
        use crate::{
            analysis::replay::{Lookup, Replayed},
            model::procfs::Stat,
        };
        let info = Replayed::new([
            Lookup::Stat {
                pid: 100,
                found: Some(Stat {
                    pid: 100,
                    comm: "t".into(),
                    ppid: 1,
                    pgrp: 90,
                    session: 90,
                    start_ticks: 5,
                }),
            },
            Lookup::Tids {
                pid: 100,
                found: vec![100, 101],
            },
        ]);
        let aim = |request: Request| attempt_target(&request, None, &[100], &info);
        let at = |pid, tid| Some(AttemptTarget { pid, tid });
        // Named: whoever it names, watched or not (the caller decides).
        assert_eq!(aim(request(syscall::KILL, 100, 0)), at(100, 100));
        assert_eq!(aim(request(syscall::KILL, 555, 0)), at(555, 555));
        assert_eq!(aim(request(syscall::TGKILL, 100, 101)), at(100, 101));
        let mut pidfd = request(syscall::PIDFD_SEND_SIGNAL, 3, 0);
        pidfd.pidfd_pid = 100;
        assert_eq!(aim(pidfd), at(100, 100));
        // Reached: a group, a thread id, every process.
        assert_eq!(aim(request(syscall::KILL, -90, 0)), at(100, 100));
        assert_eq!(aim(request(syscall::KILL, -91, 0)), None);
        assert_eq!(aim(request(syscall::TKILL, 101, 0)), at(100, 101));
        assert_eq!(aim(request(syscall::TKILL, 102, 0)), None);
        assert_eq!(aim(request(syscall::KILL, -1, 0)), at(100, 100));
        // A pidfd whose process was not read is aimed at nobody known.
        assert_eq!(aim(request(syscall::PIDFD_SEND_SIGNAL, 3, 0)), None);
    }
}
