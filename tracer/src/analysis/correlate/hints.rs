//! Hints: the rules (`crate::analysis::rules`) asked about a signal and about each link of
//! its cause chain.

use crate::{
    analysis::{
        classify::{Origin, OriginClass, Relation, relation},
        report::{AncestorReport, CauseReport, SignalReport},
        rules::{Facts, Hint, ProcFacts, Rules},
    },
    model::lineage::{ProcKey, ProcessTable},
};

pub struct Hinter {
    pub rules: &'static Rules,
}

impl Hinter {
    /// Hints for the signal itself, then for each link of its cause chain: the reason a
    /// worker died is often why its master was told to stop.
    pub fn for_signal(&self, table: &ProcessTable, report: &SignalReport) -> Vec<Hint> {
        let mut hints = self.rules.hints(&facts_of(report));
        for (link, cause) in report.cause.iter().enumerate() {
            let facts = cause_facts(table, cause, report.cause.len() - link - 1);
            for hint in self.rules.hints(&facts) {
                if hints.iter().all(|h| h.id != hint.id) {
                    hints.push(hint);
                }
            }
        }
        hints
    }

    /// `report` was reclassified (an OOM kill): the hints its new facts bring go first.
    pub fn reclassified(&self, report: &mut SignalReport) {
        let mut hints = self.rules.hints(&facts_of(report));
        hints.retain(|h| report.hints.iter().all(|old| old.id != h.id));
        report.hints.splice(0..0, hints);
    }
}

fn cause_facts(table: &ProcessTable, cause: &CauseReport, cause_depth: usize) -> Facts {
    let sender_key = table.latest(cause.sender.pid).map(|p| p.key);
    let target_key = table.latest(cause.target.pid).map(|p| p.key);
    let relation = match (sender_key, target_key) {
        (Some(s), Some(t)) => relation(table, &s, &t),
        _ => Relation::Unrelated,
    };
    let by_process = cause.origin != Origin::Kernel;
    let views = |key: Option<ProcKey>| -> Vec<ProcFacts> {
        key.map(|k| table.ancestry(&k))
            .unwrap_or_default()
            .iter()
            .map(|a| proc_facts(a.key.pid, &a.comm, a.exe.as_deref(), &a.argv))
            .collect()
    };
    Facts {
        signo: cause.signo,
        signal: cause.signal.clone(),
        origin: Some(cause.origin),
        origin_class: Some(match (by_process, relation) {
            (true, Relation::SelfSignal) => OriginClass::SelfSent,
            (true, _) => OriginClass::Explicit,
            (false, _) => OriginClass::KernelOther,
        }),
        code: cause.code.clone(),
        // Links are signals that reached their receiver.
        result: None,
        sender: proc_facts(
            cause.sender.pid,
            &cause.sender.comm,
            cause.sender.exe.as_deref(),
            &cause.sender.argv,
        ),
        sender_ancestors: views(sender_key),
        target: proc_facts(
            cause.target.pid,
            &cause.target.comm,
            cause.target.exe.as_deref(),
            &cause.target.argv,
        ),
        target_ancestors: views(target_key),
        relation,
        previous_from_sender: Vec::new(),
        cause_depth,
    }
}

fn proc_facts(pid: u32, comm: &str, exe: Option<&str>, argv: &[String]) -> ProcFacts {
    ProcFacts {
        pid,
        comm: comm.to_owned(),
        exe: exe.map(str::to_owned),
        argv: argv.to_vec(),
    }
}

/// What the hint rules look at.
#[must_use]
pub fn facts_of(r: &SignalReport) -> Facts {
    let ancestors = |list: &[AncestorReport]| {
        list.iter()
            .map(|a| proc_facts(a.pid, &a.comm, a.exe.as_deref(), &a.argv))
            .collect()
    };
    let target = r.target.as_ref();
    Facts {
        signo: r.signo,
        signal: r.signal.clone(),
        origin: Some(r.origin),
        origin_class: Some(r.origin_class),
        code: r.code.clone(),
        result: Some(r.result),
        sender: proc_facts(
            r.sender.pid,
            &r.sender.comm,
            r.sender.exe.as_deref(),
            &r.sender.argv,
        ),
        sender_ancestors: ancestors(&r.sender.ancestry),
        target: target
            .map(|t| proc_facts(t.pid, &t.comm, t.exe.as_deref(), &t.argv))
            .unwrap_or_default(),
        target_ancestors: target.map(|t| ancestors(&t.ancestry)).unwrap_or_default(),
        relation: r.relation,
        previous_from_sender: r.keys.previous_from_sender.clone(),
        cause_depth: r.cause.len(),
    }
}
