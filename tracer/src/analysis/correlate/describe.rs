//! Processes as reports show them: from the kernel's description of a task at the
//! moment of the signal, completed from the process table (program, command line,
//! ancestry, cgroup identity, exec history).

use tracer_common::TaskRef;

use crate::{
    analysis::report::{AncestorReport, ExecReport, ExitReport, ProcessReport},
    kernel::decode::c_string,
    model::{
        cgroup,
        clock::{BootClock, rfc3339_nanos},
        lineage::{ProcKey, ProcessTable, ProcessView},
        signals::signal_label,
    },
};

/// Turns the table's processes and the kernel's times into report fields.
pub struct Describer {
    clock: BootClock,
    ticks_per_second: u64,
}

impl Describer {
    pub fn new(clock: BootClock, ticks_per_second: u64) -> Self {
        Self {
            clock,
            ticks_per_second,
        }
    }

    /// A boot-clock time as reports print it.
    pub fn time(&self, boot_ns: u64) -> String {
        rfc3339_nanos(self.clock.unix_ns(boot_ns))
    }

    fn start_time(&self, view: &ProcessView) -> Option<String> {
        let boot_ns = view.start_ns.unwrap_or_else(|| {
            view.key.start_ticks * (1_000_000_000 / self.ticks_per_second.max(1))
        });
        (boot_ns > 0).then(|| self.time(boot_ns))
    }

    /// How a process ended; described before the table marks it gone (for its name).
    pub fn exit(
        &self,
        table: &ProcessTable,
        task: &TaskRef,
        status: u32,
        time_ns: u64,
    ) -> ExitReport {
        let key = table.key(task.pid, task.start_ns);
        let signo = i32::try_from(status & 0x7f).unwrap_or_default();
        let killed = signo != 0;
        ExitReport {
            event: "exit",
            time: self.time(time_ns),
            pid: task.pid,
            comm: table
                .get(&key)
                .map_or_else(|| c_string(&task.comm), |p| p.comm.clone()),
            exit_code: (!killed).then(|| i32::try_from((status >> 8) & 0xff).unwrap_or_default()),
            signal: killed.then(|| signal_label(signo)),
            signo: killed.then_some(signo),
            core_dumped: killed.then_some(status & 0x80 != 0),
            key: Some(key),
        }
    }

    /// The process `key` as the kernel named `task` at the moment of the signal.
    pub fn process(&self, table: &ProcessTable, key: &ProcKey, task: &TaskRef) -> ProcessReport {
        let view = table.view(key);
        let ancestry = table
            .ancestry(key)
            .into_iter()
            .map(|a| AncestorReport {
                pid: a.key.pid,
                start_time: self.start_time(&a),
                comm: a.comm,
                exe: a.exe,
                argv: a.argv,
            })
            .collect();
        ProcessReport {
            pid: task.pid,
            tid: task.tid,
            // The kernel's name at send time beats the table's, which may be older.
            comm: c_string(&task.comm),
            exe: view.as_ref().and_then(|v| v.exe.clone()),
            argv: view.as_ref().map(|v| v.argv.clone()).unwrap_or_default(),
            uid: Some(task.uid),
            start_time: view.as_ref().and_then(|v| self.start_time(v)),
            ancestry,
            ns_pid: view
                .as_ref()
                .and_then(|v| v.ns_pid)
                .or((task.ns_pid != 0).then_some(task.ns_pid))
                .filter(|&ns| ns != task.pid),
            identity: view
                .as_ref()
                .and_then(|v| v.cgroup.as_deref())
                .map(|path| cgroup::identity_with_pod(path, |uid| table.info().pod(uid)))
                .unwrap_or_default(),
            cgroup: view.and_then(|v| v.cgroup),
            execs: self.exec_history(table, key),
        }
    }

    /// A process the kernel did not describe (a failed attempt's target): what the table
    /// knows of it, as the thread `tid`.
    pub fn known(&self, table: &ProcessTable, key: &ProcKey, tid: u32) -> Option<ProcessReport> {
        let process = table.get(key)?;
        let task = TaskRef {
            pid: key.pid,
            tid,
            start_ns: process.start_ns.unwrap_or_default(),
            uid: process.uid.unwrap_or_default(),
            ppid: process.parent.map(|p| p.pid).unwrap_or_default(),
            ns_pid: process.ns_pid.unwrap_or_default(),
            flags: 0,
            comm: {
                let mut comm = [0u8; tracer_common::COMM_LEN];
                let bytes = process.comm.as_bytes();
                let n = bytes.len().min(comm.len());
                comm[..n].copy_from_slice(&bytes[..n]);
                comm
            },
        };
        let mut report = self.process(table, key, &task);
        report.uid = process.uid;
        Some(report)
    }

    fn exec_history(&self, table: &ProcessTable, key: &ProcKey) -> Vec<ExecReport> {
        let Some(process) = table.get(key) else {
            return Vec::new();
        };
        if process.execs.len() < 2 {
            return Vec::new();
        }
        process
            .execs
            .iter()
            .map(|exec| ExecReport {
                time: exec.time_ns.map(|ns| self.time(ns)),
                exe: exec.exe.clone(),
                argv: exec.argv.clone(),
            })
            .collect()
    }

    /// A process by key, as an ancestor line shows it.
    pub fn brief(&self, table: &ProcessTable, key: &ProcKey, comm: &str) -> AncestorReport {
        match table.view(key) {
            Some(view) => AncestorReport {
                pid: key.pid,
                start_time: self.start_time(&view),
                comm: view.comm,
                exe: view.exe,
                argv: view.argv,
            },
            None => AncestorReport {
                pid: key.pid,
                comm: comm.to_owned(),
                exe: None,
                argv: Vec::new(),
                start_time: None,
            },
        }
    }
}

/// A process report as an ancestor line shows it.
pub fn brief_of(p: &ProcessReport) -> AncestorReport {
    AncestorReport {
        pid: p.pid,
        comm: p.comm.clone(),
        exe: p.exe.clone(),
        argv: p.argv.clone(),
        start_time: p.start_time.clone(),
    }
}
