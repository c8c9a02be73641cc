//! Hints: likely reasons for a signal, from rules matched against facts about it.
//!
//! A rule names a situation ("a Node.js parent sent SIGTERM to its child") by conditions
//! over [`Facts`]; every rule whose conditions hold contributes its text. The rules are
//! data (tracer/rules/hints.json, format in docs/hints.md) so that users can add their
//! own without rebuilding, which is also why loading them is strict (`parse`): an
//! unknown key or a misspelt signal name is an error, never a rule that silently stops
//! matching.

mod glob;
mod parse;

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use glob::glob_match;

use crate::analysis::classify::{Origin, OriginClass, Relation, SignalResult};

/// The built-in rule set, as shipped in tracer/rules/hints.json.
pub const BUILTIN_RULES: &str = include_str!("../../../rules/hints.json");

/// A process as the rules see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcFacts {
    /// Carried for callers; no condition looks at pids, which mean nothing across runs.
    pub pid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub argv: Vec<String>,
}

/// What the rules match against: one signal, who sent it to whom, and what came before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// Conditions on signals compare numbers; `signal` is carried for display.
    pub signo: i32,
    /// "SIGTERM".
    pub signal: String,
    /// How it was asked for; None matches no `origins` condition.
    pub origin: Option<Origin>,
    /// Why it was sent; None matches no `origin_class` condition.
    pub origin_class: Option<OriginClass>,
    /// `si_code` by name: "`SI_USER`", "`SEGV_MAPERR`", ...
    pub code: String,
    /// What became of it; None matches no `results` condition.
    pub result: Option<SignalResult>,
    pub sender: ProcFacts,
    /// Parent first.
    pub sender_ancestors: Vec<ProcFacts>,
    pub target: ProcFacts,
    /// Parent first.
    pub target_ancestors: Vec<ProcFacts>,
    pub relation: Relation,
    /// Earlier signals from the same sender to the same target (same incarnations),
    /// oldest first: (signo, seconds before this one).
    pub previous_from_sender: Vec<(i32, f64)>,
    /// Length of the cause chain (0: the sender received no signal shortly before).
    pub cause_depth: usize,
}

/// One rule that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hint {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Error)]
pub enum RulesError {
    #[error("hint rules are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The file's outer structure (not one rule) is wrong.
    #[error("hint rules: {0}")]
    File(String),
    /// `rule` is "#N `id`" (N counts from 1), or "#N" when the id itself is at fault;
    /// `key` is a path such as `when.sender.program[1]`.
    #[error("hint rule {rule}: {key}: {message}")]
    Rule {
        rule: String,
        key: String,
        message: String,
    },
}

/// A parsed rule set, in file order.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    text: String,
    when: Conditions,
}

/// Conditions that must all hold.
#[derive(Debug, Clone)]
struct Conditions(Vec<Condition>);

#[derive(Debug, Clone)]
enum Condition {
    Signals(Vec<i32>),
    Origins(Vec<Origin>),
    OriginClass(Vec<OriginClass>),
    Codes(Vec<String>),
    Results(Vec<SignalResult>),
    Relation(Vec<Relation>),
    Process(Whose, ProcessConditions),
    PrecededBy(Preceded),
    /// `true`: the sender received a signal shortly before (there is a cause chain).
    Cause(bool),
    /// At least one block holds.
    Any(Vec<Conditions>),
    /// No block holds.
    Not(Vec<Conditions>),
}

#[derive(Debug, Clone, Copy)]
enum Whose {
    Sender,
    SenderAncestor,
    Target,
    TargetAncestor,
}

/// Glob patterns over one process; each present list must have a matching pattern.
#[derive(Debug, Clone, Default)]
struct ProcessConditions {
    comm: Option<Vec<String>>,
    exe: Option<Vec<String>>,
    argv: Option<Vec<String>>,
    program: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct Preceded {
    signals: Option<Vec<i32>>,
    within_seconds: Option<f64>,
}

impl Rules {
    /// The rules shipped in tracer/rules/hints.json, parsed on first use.
    pub fn builtin() -> &'static Rules {
        static BUILTIN: OnceLock<Rules> = OnceLock::new();
        // A unit test parses the embedded file, so this cannot fail in a tested build;
        // were it to, tracing without hints beats aborting a trace.
        BUILTIN.get_or_init(|| Rules::from_json(BUILTIN_RULES).unwrap_or_default())
    }

    /// Adds `other`'s rules: one with the id of a rule already here replaces it in
    /// place (so a user file can amend a built-in rule), the others go at the end.
    pub fn extend(&mut self, other: Rules) {
        for rule in other.rules {
            match self.rules.iter_mut().find(|r| r.id == rule.id) {
                Some(existing) => *existing = rule,
                None => self.rules.push(rule),
            }
        }
    }

    /// Every rule whose conditions hold, in file order.
    /// The `within_seconds` limits the rules use, ascending. Two lists of earlier
    /// signals that agree on which signals came within which of these limits give the
    /// same hints, which lets a caller reuse hints it computed for a repeated signal.
    pub fn time_limits(&self) -> Vec<f64> {
        fn collect(conditions: &Conditions, out: &mut Vec<f64>) {
            for condition in &conditions.0 {
                match condition {
                    Condition::PrecededBy(Preceded {
                        within_seconds: Some(limit),
                        ..
                    }) => out.push(*limit),
                    Condition::Any(blocks) | Condition::Not(blocks) => {
                        for block in blocks {
                            collect(block, out);
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut limits = Vec::new();
        for rule in &self.rules {
            collect(&rule.when, &mut limits);
        }
        limits.sort_by(f64::total_cmp);
        limits.dedup();
        limits
    }

    #[must_use]
    pub fn hints(&self, facts: &Facts) -> Vec<Hint> {
        self.rules
            .iter()
            .filter(|rule| rule.when.hold(facts))
            .map(|rule| Hint {
                id: rule.id.clone(),
                text: rule.text.clone(),
            })
            .collect()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rule ids in file order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|rule| rule.id.as_str())
    }
}

impl Conditions {
    fn hold(&self, facts: &Facts) -> bool {
        self.0.iter().all(|condition| condition.holds(facts))
    }
}

impl Condition {
    fn holds(&self, facts: &Facts) -> bool {
        match self {
            Condition::Signals(signals) => signals.contains(&facts.signo),
            Condition::Origins(origins) => facts.origin.is_some_and(|o| origins.contains(&o)),
            Condition::OriginClass(classes) => {
                facts.origin_class.is_some_and(|c| classes.contains(&c))
            }
            Condition::Codes(codes) => codes.contains(&facts.code),
            Condition::Results(results) => facts.result.is_some_and(|r| results.contains(&r)),
            Condition::Relation(relations) => relations.contains(&facts.relation),
            Condition::Process(whose, conditions) => match whose {
                Whose::Sender => conditions.hold(&facts.sender),
                Whose::Target => conditions.hold(&facts.target),
                // One ancestor must meet the whole block, so that `{comm, argv}` means
                // "an ancestor with this comm and this argument".
                Whose::SenderAncestor => facts.sender_ancestors.iter().any(|p| conditions.hold(p)),
                Whose::TargetAncestor => facts.target_ancestors.iter().any(|p| conditions.hold(p)),
            },
            Condition::PrecededBy(preceded) => {
                facts
                    .previous_from_sender
                    .iter()
                    .any(|&(signo, seconds_before)| {
                        preceded.signals.as_ref().is_none_or(|s| s.contains(&signo))
                            && preceded
                                .within_seconds
                                .is_none_or(|within| seconds_before <= within)
                    })
            }
            Condition::Cause(some) => (facts.cause_depth > 0) == *some,
            Condition::Any(blocks) => blocks.iter().any(|block| block.hold(facts)),
            Condition::Not(blocks) => !blocks.iter().any(|block| block.hold(facts)),
        }
    }
}

impl ProcessConditions {
    fn hold(&self, process: &ProcFacts) -> bool {
        let any = |patterns: &[String], text: &str| patterns.iter().any(|p| glob_match(p, text));
        let comm = self.comm.as_deref().is_none_or(|p| any(p, &process.comm));
        let exe = self
            .exe
            .as_deref()
            .is_none_or(|p| process.exe.as_deref().is_some_and(|exe| any(p, exe)));
        let argv = self
            .argv
            .as_deref()
            .is_none_or(|p| process.argv.iter().any(|arg| any(p, arg)));
        let program = self
            .program
            .as_deref()
            .is_none_or(|p| program_names(process).any(|name| any(p, name)));
        comm && exe && argv && program
    }
}

/// The names a program goes by: its comm, and the file names of its executable and of
/// argv[0]. They differ often enough to matter: comm is cut to 15 bytes and follows
/// symlinks' names (python3 vs python3.12) and `prctl(PR_SET_NAME)` (PM2 renames node);
/// exe is the resolved file; argv[0] is whatever the caller passed.
fn program_names(process: &ProcFacts) -> impl Iterator<Item = &str> {
    // readlink(/proc/PID/exe) says "(deleted)" once the file was replaced, which package
    // upgrades do to every long-running daemon.
    let exe = process
        .exe
        .as_deref()
        .map(|exe| file_name(exe.strip_suffix(" (deleted)").unwrap_or(exe)));
    let argv0 = process.argv.first().map(|arg| file_name(arg));
    std::iter::once(process.comm.as_str())
        .chain(exe)
        .chain(argv0)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests;
