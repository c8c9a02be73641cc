//! The rules' tests: building facts here, the cases by theme in the submodules.

use super::parse::is_kebab_case;
use super::*;
use crate::analysis::classify::{Origin, OriginClass, Relation, SignalResult};
use crate::model::signals::parse_signal;

// ---- building facts ----

fn process(comm: &str, exe: &str, argv: &[&str]) -> ProcFacts {
    ProcFacts {
        pid: 0,
        comm: comm.to_owned(),
        exe: (!exe.is_empty()).then(|| exe.to_owned()),
        argv: argv.iter().map(|&arg| arg.to_owned()).collect(),
    }
}

fn signo(name: &str) -> i32 {
    parse_signal(name).unwrap()
}

/// A signal sent by a process with kill(2).
fn sent(signal: &str, sender: ProcFacts, relation: Relation, target: ProcFacts) -> Facts {
    let own = relation == Relation::SelfSignal;
    Facts {
        signo: signo(signal),
        signal: signal.to_owned(),
        origin: Some(Origin::Kill),
        origin_class: Some(if own {
            OriginClass::SelfSent
        } else {
            OriginClass::Explicit
        }),
        code: "SI_USER".to_owned(),
        sender,
        target,
        relation,
        ..Facts::default()
    }
}

/// A signal the kernel made while `sender` was running.
fn by_kernel(
    signal: &str,
    class: OriginClass,
    sender: ProcFacts,
    relation: Relation,
    target: ProcFacts,
) -> Facts {
    Facts {
        origin: Some(Origin::Kernel),
        origin_class: Some(class),
        code: "SI_KERNEL".to_owned(),
        ..sent(signal, sender, relation, target)
    }
}

fn after(mut facts: Facts, previous: &[(&str, f64)]) -> Facts {
    facts.previous_from_sender = previous.iter().map(|&(s, t)| (signo(s), t)).collect();
    facts
}

fn caused(mut facts: Facts) -> Facts {
    facts.cause_depth = 1;
    facts
}

fn hint_ids(facts: &Facts) -> Vec<String> {
    Rules::builtin()
        .hints(facts)
        .into_iter()
        .map(|h| h.id)
        .collect()
}

#[track_caller]
fn fires(id: &str, facts: &Facts) {
    let ids = hint_ids(facts);
    assert!(
        ids.iter().any(|i| i == id),
        "{id} should fire, got {ids:?} for {facts:#?}"
    );
}

#[track_caller]
fn quiet(id: &str, facts: &Facts) {
    let ids = hint_ids(facts);
    assert!(
        !ids.iter().any(|i| i == id),
        "{id} should not fire, got {ids:?} for {facts:#?}"
    );
}

fn app() -> ProcFacts {
    process(
        "myapp",
        "/srv/app/bin/myapp",
        &["/srv/app/bin/myapp", "--port", "8080"],
    )
}

fn kworker() -> ProcFacts {
    process("kworker/u16:2", "", &[])
}

fn node() -> ProcFacts {
    process("node", "/usr/bin/node", &["node", "server.js"])
}

fn python() -> ProcFacts {
    process("python3", "/usr/bin/python3.12", &["python3", "build.py"])
}

fn timeout() -> ProcFacts {
    process(
        "timeout",
        "/usr/bin/timeout",
        &["timeout", "30", "./long-job"],
    )
}

fn systemd() -> ProcFacts {
    process(
        "systemd",
        "/usr/lib/systemd/systemd",
        &["/sbin/init", "splash"],
    )
}

fn runc(root: &str) -> ProcFacts {
    process(
        "runc",
        "/usr/bin/runc",
        &["runc", "--root", root, "kill", "4f2a9c", "15"],
    )
}

fn pm2_daemon() -> ProcFacts {
    process(
        "PM2 v5.3.1: God",
        "/usr/bin/node",
        &["node", "/usr/lib/node_modules/pm2/lib/Daemon.js"],
    )
}

fn supervisord() -> ProcFacts {
    process(
        "supervisord",
        "/usr/bin/python3.11",
        &[
            "/usr/bin/python3",
            "/usr/bin/supervisord",
            "-n",
            "-c",
            "/etc/supervisor/supervisord.conf",
        ],
    )
}

mod errors;
mod matching;
mod oncall;
mod shipped;
