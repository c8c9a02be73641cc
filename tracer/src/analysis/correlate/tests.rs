use tracer_common::{Request, SignalEvent, TaskRef, signal_flags, syscall};

use super::*;

fn storm_event(time_ns: u64, sig: i32) -> Event {
    let task = |pid: u32, ppid: u32, name: &[u8]| {
        let mut comm = [0u8; tracer_common::COMM_LEN];
        comm[..name.len()].copy_from_slice(name);
        TaskRef {
            pid,
            tid: pid,
            start_ns: 7_000_000_000,
            uid: 0,
            ppid,
            comm,
            ns_pid: pid,
            flags: 0,
        }
    };
    let mut ev = SignalEvent {
        sig,
        result: 1,
        sender: task(4_100_001, 4_100_000, b"sender"),
        target: task(4_100_002, 4_100_000, b"victim"),
        request: Request {
            syscall: syscall::KILL,
            sig,
            arg0: 4_100_002,
            ..Request::default()
        },
        ..SignalEvent::default()
    };
    ev.header.kind = tracer_common::kind::SIGNAL;
    // As the kernel sends repeats from a sender it has described before.
    ev.flags = signal_flags::ANCESTRY_CACHED;
    ev.header.time_ns = time_ns;
    Event::Signal(Box::new(ev))
}

fn json_of(correlator: &mut Correlator) -> Vec<String> {
    correlator
        .release(u64::MAX)
        .iter()
        .map(crate::render::json::report)
        .collect()
}

#[test]
fn a_repeated_signal_gets_the_report_it_would_get_without_the_memo() {
    let clock = crate::model::clock::BootClock::from_offset_ns(0);
    let mut with_memo = Correlator::new(ProcessTable::new(100), clock, 100);
    let mut without = Correlator::new(ProcessTable::new(100), clock, 100);
    let s = 1_000_000_000;
    // USR1 three times (the last two can reuse), then TERM and KILL (an escalation,
    // never reused), then USR1 again with TERM and KILL now earlier.
    let times_and_signals = [
        (10 * s, 10),
        (10 * s + 5, 10),
        (11 * s, 10),
        (12 * s, 15),
        (13 * s, 9),
        (14 * s, 10),
        (14 * s + 1, 10),
    ];
    for (time, sig) in times_and_signals {
        with_memo.apply(&storm_event(time, sig));
        without.memo.clear();
        without.apply(&storm_event(time, sig));
    }
    let (a, b) = (json_of(&mut with_memo), json_of(&mut without));
    assert_eq!(a.len(), times_and_signals.len());
    assert_eq!(a, b);
    // The third USR1 (the second had one earlier USR1 less) and the last one.
    assert_eq!(with_memo.memo.hits, 2);
}

/// 5.10 queues a signal sent to a process after a SIGKILL and reports it delivered;
/// newer kernels drop it. Either way it is reported as dropped because the target is
/// exiting, and a new process under the same pid is not taken for the killed one.
#[test]
fn a_signal_queued_to_a_killed_process_is_dropped_exiting() {
    let clock = crate::model::clock::BootClock::from_offset_ns(0);
    let mut correlator = Correlator::new(ProcessTable::new(100), clock, 100);
    let s = 1_000_000_000;
    let delivered = |time_ns: u64, sig: i32, start_ns: u64| {
        let mut event = storm_event(time_ns, sig);
        if let Event::Signal(ev) = &mut event {
            ev.result = 0;
            ev.target.start_ns = start_ns;
        }
        event
    };
    let first = 7_000_000_000;
    for event in [
        delivered(10 * s, 15, first),
        delivered(11 * s, 9, first),
        delivered(11 * s + 1, 15, first),
        delivered(11 * s + 2, 10, first),
        delivered(12 * s, 15, 8_000_000_000),
    ] {
        correlator.apply(&event);
    }
    let results: Vec<String> = json_of(&mut correlator)
        .iter()
        .map(|line| {
            let report: serde_json::Value = serde_json::from_str(line).unwrap();
            report["result"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        results,
        [
            "delivered",
            "delivered",
            "dropped_exiting",
            "dropped_exiting",
            "delivered"
        ]
    );
}
