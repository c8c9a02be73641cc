//! Hints: likely reasons for a signal, from rules matched against facts about it.
//!
//! A rule names a situation ("a Node.js parent sent SIGTERM to its child") by conditions
//! over [`Facts`]; every rule whose conditions hold contributes its text. The rules are
//! data (tracer/rules/hints.json, format in docs/hints.md) so that users can add their
//! own without rebuilding, which is also why loading them is strict: an unknown key or a
//! misspelt signal name is an error, never a rule that silently stops matching.

use std::{
    collections::{BTreeSet, HashSet},
    sync::OnceLock,
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::model::signals::{parse_signal, si_code_name};

/// The built-in rule set, as shipped in tracer/rules/hints.json.
pub const BUILTIN_RULES: &str = include_str!("../../rules/hints.json");

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

/// The sender as the target sees it. Names are the ones reports print, so that a rule
/// can be written from a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// The process signalled itself (or one of its own threads).
    #[serde(rename = "self", alias = "self_signal")]
    SelfSignal,
    /// The sender is the target's parent.
    Parent,
    /// The sender is the target's grandparent or further up.
    Ancestor,
    /// The sender is the target's child.
    Child,
    /// The sender is the target's grandchild or further down.
    Descendant,
    /// Same parent.
    Sibling,
    #[default]
    Unrelated,
}

/// What the rules match against: one signal, who sent it to whom, and what came before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// Conditions on signals compare numbers; `signal` is carried for display.
    pub signo: i32,
    /// "SIGTERM".
    pub signal: String,
    /// "kill", "tgkill", ..., "kernel", "user" (see [`ORIGINS`]).
    pub origin: String,
    /// "explicit", "self", "fault", ... (see [`ORIGIN_CLASSES`]).
    pub origin_class: String,
    /// si_code by name: "SI_USER", "SEGV_MAPERR", ...
    pub code: String,
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

/// Values of [`Facts::origin`] (correlate::signal_origin); rules naming others are
/// rejected as typos, so keep this in step with it.
pub const ORIGINS: &[&str] = &[
    "kill",
    "tkill",
    "tgkill",
    "pidfd_send_signal",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "kernel",
    "user",
];

/// Values of [`Facts::origin_class`] (correlate::origin_class and the OOM kill record);
/// rules naming others are rejected as typos, so keep this in step with them.
pub const ORIGIN_CLASSES: &[&str] = &[
    "explicit",
    "self",
    "fault",
    "broken_pipe",
    "timer",
    "rlimit",
    "oom_kill",
    "parent_death",
    "terminal",
    "seccomp",
    "child_state",
    "pid_namespace",
    "kernel_other",
];

/// Keys of a condition block (`when`, and the blocks inside `any` and `not`).
const CONDITION_KEYS: &[&str] = &[
    "signals",
    "origins",
    "origin_class",
    "codes",
    "relation",
    "sender",
    "sender_ancestor",
    "target",
    "target_ancestor",
    "preceded_by",
    "cause",
    "any",
    "not",
];
const PROCESS_KEYS: &[&str] = &["comm", "exe", "argv", "program"];
const PRECEDED_KEYS: &[&str] = &["signals", "within_seconds"];
const RULE_KEYS: &[&str] = &["id", "text", "when", "note"];
const FILE_KEYS: &[&str] = &["version", "rules"];
/// The only format so far; `version` lets a later format be told apart.
const FORMAT_VERSION: u64 = 1;

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

/// A problem at a key inside one rule; the rule is named when it is wrapped.
#[derive(Debug)]
struct KeyError {
    key: String,
    message: String,
}

impl KeyError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
        }
    }
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
    Origins(Vec<String>),
    OriginClass(Vec<String>),
    Codes(Vec<String>),
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

    /// Parses a rules file (format in docs/hints.md). Errors are one line naming the
    /// rule and key at fault.
    pub fn from_json(text: &str) -> Result<Rules, RulesError> {
        let value: Value = serde_json::from_str(text)?;
        let Value::Object(file) = value else {
            return Err(RulesError::File(format!(
                "expected an object with \"rules\", found {}",
                kind(&value)
            )));
        };
        if let Some(key) = file.keys().find(|k| !FILE_KEYS.contains(&k.as_str())) {
            return Err(RulesError::File(format!(
                "unknown key {key:?} (expected {})",
                FILE_KEYS.join(", ")
            )));
        }
        if let Some(version) = file.get("version")
            && version.as_u64() != Some(FORMAT_VERSION)
        {
            return Err(RulesError::File(format!(
                "unsupported version {version} (this sigwho reads version {FORMAT_VERSION})"
            )));
        }
        let Some(list) = file.get("rules") else {
            return Err(RulesError::File("missing \"rules\"".to_owned()));
        };
        let Value::Array(list) = list else {
            return Err(RulesError::File(format!(
                "\"rules\" must be a list, found {}",
                kind(list)
            )));
        };
        let mut rules = Vec::with_capacity(list.len());
        let mut seen = HashSet::new();
        for (index, value) in list.iter().enumerate() {
            let number = index + 1;
            let rule = parse_rule(value).map_err(|e| {
                // Name the rule by its id when that much is readable.
                let id = value
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| e.key != "id" && is_kebab_case(id));
                RulesError::Rule {
                    rule: rule_name(number, id),
                    key: e.key,
                    message: e.message,
                }
            })?;
            if !seen.insert(rule.id.clone()) {
                return Err(RulesError::Rule {
                    rule: rule_name(number, Some(&rule.id)),
                    key: "id".to_owned(),
                    message: "another rule already has this id".to_owned(),
                });
            }
            rules.push(rule);
        }
        Ok(Rules { rules })
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
                        blocks.iter().for_each(|block| collect(block, out));
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

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rule ids in file order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|rule| rule.id.as_str())
    }
}

fn rule_name(number: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("#{number} `{id}`"),
        None => format!("#{number}"),
    }
}

/// Shell-style glob: `*` matches any run of characters (`/` included), `?` any one
/// character, everything else itself, case-sensitively. There is no escaping: names of
/// programs and arguments practically never contain `*` or `?`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    // Rules are matched against every reported signal, so the common cases must not
    // allocate: a literal, and ASCII (where a byte is a character).
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    if pattern.is_ascii() && text.is_ascii() {
        return glob_match_units(pattern.as_bytes(), text.as_bytes(), b'*', b'?');
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    glob_match_units(&pattern, &text, '*', '?')
}

fn glob_match_units<T: Copy + PartialEq>(
    pattern: &[T],
    text: &[T],
    any_run: T,
    any_one: T,
) -> bool {
    let (mut p, mut t) = (0, 0);
    // After a `*`: where the pattern resumes, and the text position that `*` ends at.
    // Retrying only from the latest `*` is enough (a later `*` can absorb whatever an
    // earlier one would have), which keeps this O(pattern * text) with no recursion.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(&c) if c == any_run => {
                p += 1;
                star = Some((p, t));
            }
            Some(&c) if c == any_one || Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((resume, end)) => {
                    p = resume;
                    t = end + 1;
                    star = Some((resume, end + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == any_run))
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
            Condition::Origins(origins) => origins.contains(&facts.origin),
            Condition::OriginClass(classes) => classes.contains(&facts.origin_class),
            Condition::Codes(codes) => codes.contains(&facts.code),
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
/// symlinks' names (python3 vs python3.12) and prctl(PR_SET_NAME) (PM2 renames node);
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

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Lower-case words of letters and digits joined by single dashes, starting with a letter.
fn is_kebab_case(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn object<'v>(value: &'v Value, key: &str) -> Result<&'v Map<String, Value>, KeyError> {
    value
        .as_object()
        .ok_or_else(|| KeyError::new(key, format!("expected an object, found {}", kind(value))))
}

fn unknown_key(key: &str, known: &[&str]) -> KeyError {
    KeyError::new(key, format!("unknown key (expected {})", known.join(", ")))
}

fn string<'v>(value: &'v Value, key: &str) -> Result<&'v str, KeyError> {
    value
        .as_str()
        .ok_or_else(|| KeyError::new(key, format!("expected a string, found {}", kind(value))))
}

fn parse_rule(value: &Value) -> Result<Rule, KeyError> {
    let rule = object(value, "rule")?;
    if let Some(key) = rule.keys().find(|k| !RULE_KEYS.contains(&k.as_str())) {
        return Err(unknown_key(key, RULE_KEYS));
    }
    let field = |key: &str| rule.get(key).ok_or_else(|| KeyError::new(key, "missing"));
    let id = string(field("id")?, "id")?;
    if !is_kebab_case(id) {
        return Err(KeyError::new(
            "id",
            format!("{id:?} is not kebab-case (lower-case letters, digits and single dashes)"),
        ));
    }
    let text = string(field("text")?, "text")?;
    if text.trim().is_empty() {
        return Err(KeyError::new("text", "empty"));
    }
    // Hints print on one line of the text report.
    if text.chars().any(char::is_control) {
        return Err(KeyError::new(
            "text",
            "must be one line (no control characters)",
        ));
    }
    if let Some(note) = rule.get("note") {
        string(note, "note")?;
    }
    let when = parse_conditions(field("when")?, "when")?;
    Ok(Rule {
        id: id.to_owned(),
        text: text.to_owned(),
        when,
    })
}

fn parse_conditions(value: &Value, path: &str) -> Result<Conditions, KeyError> {
    let block = object(value, path)?;
    if block.is_empty() {
        return Err(KeyError::new(
            path,
            "no conditions (would match every signal)",
        ));
    }
    let mut conditions = Vec::with_capacity(block.len());
    for (key, value) in block {
        let at = format!("{path}.{key}");
        conditions.push(match key.as_str() {
            "signals" => Condition::Signals(each_string(value, &at, signal_number)?),
            "origins" => Condition::Origins(each_string(value, &at, |s| known(s, ORIGINS))?),
            "origin_class" => {
                Condition::OriginClass(each_string(value, &at, |s| known(s, ORIGIN_CLASSES))?)
            }
            "codes" => Condition::Codes(each_string(value, &at, code_name)?),
            "relation" => Condition::Relation(each_string(value, &at, relation)?),
            "sender" => Condition::Process(Whose::Sender, parse_process(value, &at)?),
            "sender_ancestor" => {
                Condition::Process(Whose::SenderAncestor, parse_process(value, &at)?)
            }
            "target" => Condition::Process(Whose::Target, parse_process(value, &at)?),
            "target_ancestor" => {
                Condition::Process(Whose::TargetAncestor, parse_process(value, &at)?)
            }
            "preceded_by" => Condition::PrecededBy(parse_preceded(value, &at)?),
            "cause" => Condition::Cause(match string(value, &at)? {
                "some" => true,
                "none" => false,
                other => {
                    return Err(KeyError::new(
                        &at,
                        format!("{other:?} is neither \"some\" nor \"none\""),
                    ));
                }
            }),
            "any" => Condition::Any(parse_blocks(value, &at)?),
            "not" => Condition::Not(parse_blocks(value, &at)?),
            _ => return Err(unknown_key(&at, CONDITION_KEYS)),
        });
    }
    Ok(Conditions(conditions))
}

/// One block or a list of them (`any`: one must hold; `not`: none may).
fn parse_blocks(value: &Value, path: &str) -> Result<Vec<Conditions>, KeyError> {
    match value {
        Value::Array(list) if list.is_empty() => Err(KeyError::new(path, "empty list")),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, block)| parse_conditions(block, &format!("{path}[{i}]")))
            .collect(),
        _ => Ok(vec![parse_conditions(value, path)?]),
    }
}

fn parse_process(value: &Value, path: &str) -> Result<ProcessConditions, KeyError> {
    let block = object(value, path)?;
    if block.is_empty() {
        return Err(KeyError::new(path, "no conditions"));
    }
    let mut conditions = ProcessConditions::default();
    for (key, value) in block {
        let at = format!("{path}.{key}");
        let patterns = Some(each_string(value, &at, pattern)?);
        match key.as_str() {
            "comm" => conditions.comm = patterns,
            "exe" => conditions.exe = patterns,
            "argv" => conditions.argv = patterns,
            "program" => conditions.program = patterns,
            _ => return Err(unknown_key(&at, PROCESS_KEYS)),
        }
    }
    Ok(conditions)
}

fn parse_preceded(value: &Value, path: &str) -> Result<Preceded, KeyError> {
    let block = object(value, path)?;
    let mut preceded = Preceded {
        signals: None,
        within_seconds: None,
    };
    for (key, value) in block {
        let at = format!("{path}.{key}");
        match key.as_str() {
            "signals" => preceded.signals = Some(each_string(value, &at, signal_number)?),
            "within_seconds" => {
                let seconds = value.as_f64().filter(|s| s.is_finite() && *s >= 0.0);
                preceded.within_seconds = Some(seconds.ok_or_else(|| {
                    KeyError::new(
                        &at,
                        format!("expected a number of seconds >= 0, found {value}"),
                    )
                })?);
            }
            _ => return Err(unknown_key(&at, PRECEDED_KEYS)),
        }
    }
    Ok(preceded)
}

/// A string or a non-empty list of strings, each checked by `check`. Lists mean any-of;
/// an empty one could never match, which is never what the author meant.
fn each_string<T>(
    value: &Value,
    path: &str,
    check: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, KeyError> {
    match value {
        Value::String(s) => Ok(vec![check(s).map_err(|m| KeyError::new(path, m))?]),
        Value::Array(list) if list.is_empty() => Err(KeyError::new(path, "empty list")),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("{path}[{i}]");
                check(string(item, &at)?).map_err(|m| KeyError::new(&at, m))
            })
            .collect(),
        other => Err(KeyError::new(
            path,
            format!(
                "expected a string or a list of strings, found {}",
                kind(other)
            ),
        )),
    }
}

/// Signal names, with or without SIG, in any case. Numbers are refused: several differ
/// between architectures (SIGUSR1 is 10 on x86 and 16 on MIPS), names do not.
fn signal_number(name: &str) -> Result<i32, String> {
    let trimmed = name.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{name:?}: write signals by name (SIGTERM), not number"
        ));
    }
    parse_signal(name).map_err(|e| e.to_string())
}

fn known(value: &str, names: &[&str]) -> Result<String, String> {
    if names.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "unknown value {value:?} (expected one of {})",
            names.join(", ")
        ))
    }
}

fn relation(name: &str) -> Result<Relation, String> {
    serde_json::from_value(Value::String(name.to_owned())).map_err(|e| e.to_string())
}

/// si_code names as reports print them (signals::si_code_name); checked so that a typo
/// such as "SI_USR" fails to load instead of never matching.
fn code_name(name: &str) -> Result<String, String> {
    static NAMES: OnceLock<BTreeSet<String>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        // Generic codes are 0, 0x80 and small negatives; signal-specific ones are small
        // positives: this range covers every named one.
        (1..=64)
            .flat_map(|signo| (-64..=0x80).map(move |code| si_code_name(signo, code)))
            .filter(|name| !name.starts_with("code "))
            .collect()
    });
    if names.contains(name) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "unknown si_code {name:?} (expected a name like SI_USER or SEGV_MAPERR)"
        ))
    }
}

fn pattern(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("empty pattern".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            origin: "kill".to_owned(),
            origin_class: if own { "self" } else { "explicit" }.to_owned(),
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
        class: &str,
        sender: ProcFacts,
        relation: Relation,
        target: ProcFacts,
    ) -> Facts {
        Facts {
            origin: "kernel".to_owned(),
            origin_class: class.to_owned(),
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

    // ---- the shipped rules ----

    #[test]
    fn builtin_rules_parse() {
        let parsed = Rules::from_json(BUILTIN_RULES).unwrap();
        assert_eq!(Rules::builtin().len(), parsed.len());
        assert!(Rules::builtin().len() >= 30);
        assert!(!Rules::builtin().is_empty());
    }

    #[test]
    fn docs_list_every_shipped_rule() {
        let docs = include_str!("../../../docs/hints.md");
        for id in Rules::builtin().ids() {
            assert!(
                docs.contains(&format!("`{id}`")),
                "docs/hints.md does not list {id}"
            );
        }
    }

    #[test]
    fn node_exec_maxbuffer_timeout() {
        let id = "node-exec-maxbuffer-timeout";
        let shell = process("sh", "/usr/bin/dash", &["/bin/sh", "-c", "git log --all"]);
        let exec = sent("SIGTERM", node(), Relation::Parent, shell.clone());
        fires(id, &exec);
        // node installed by nvm, and node renamed through process.title.
        let nvm = process(
            "node",
            "/home/u/.nvm/versions/node/v20.11.0/bin/node",
            &["node", "a.js"],
        );
        fires(id, &sent("SIGTERM", nvm, Relation::Parent, shell.clone()));
        let titled = process("my-api", "/usr/bin/node", &["my-api"]);
        fires(
            id,
            &sent("SIGTERM", titled, Relation::Parent, shell.clone()),
        );

        quiet(
            id,
            &sent("SIGKILL", node(), Relation::Parent, shell.clone()),
        );
        quiet(
            id,
            &sent("SIGTERM", node(), Relation::Ancestor, shell.clone()),
        );
        quiet(
            id,
            &sent("SIGTERM", python(), Relation::Parent, shell.clone()),
        );
        // npm passing on the SIGTERM it got, and process managers written in node.
        let npm = process("npm run start", "/usr/bin/node", &["npm", "run", "start"]);
        quiet(
            id,
            &caused(sent("SIGTERM", npm, Relation::Parent, shell.clone())),
        );
        quiet(id, &sent("SIGTERM", pm2_daemon(), Relation::Parent, node()));
        let nodemon = process(
            "node",
            "/usr/bin/node",
            &["node", "/usr/lib/node_modules/nodemon/bin/nodemon.js"],
        );
        quiet(id, &sent("SIGTERM", nodemon, Relation::Parent, node()));
    }

    #[test]
    fn python_subprocess_timeout() {
        let id = "python-subprocess-timeout";
        let make = process("make", "/usr/bin/make", &["make", "-j8"]);
        fires(
            id,
            &sent("SIGKILL", python(), Relation::Parent, make.clone()),
        );
        let versioned = process(
            "python3.11",
            "/usr/bin/python3.11",
            &["/usr/bin/python3.11", "ci.py"],
        );
        fires(
            id,
            &sent("SIGKILL", versioned, Relation::Parent, make.clone()),
        );

        // Popen.terminate(), terminate() then kill(), and supervisord (a python program).
        quiet(
            id,
            &sent("SIGTERM", python(), Relation::Parent, make.clone()),
        );
        quiet(
            id,
            &after(
                sent("SIGKILL", python(), Relation::Parent, make.clone()),
                &[("SIGTERM", 5.0)],
            ),
        );
        quiet(id, &sent("SIGKILL", supervisord(), Relation::Parent, app()));
        quiet(
            id,
            &sent("SIGKILL", python(), Relation::Unrelated, make.clone()),
        );
    }

    #[test]
    fn coreutils_timeout() {
        let job = process("long-job", "/home/u/long-job", &["./long-job"]);
        let first = sent("SIGTERM", timeout(), Relation::Parent, job.clone());
        fires("coreutils-timeout", &first);
        quiet("coreutils-timeout-kill-after", &first);
        // The same signal to the process group reaches grandchildren.
        fires(
            "coreutils-timeout",
            &sent("SIGTERM", timeout(), Relation::Ancestor, job.clone()),
        );
        // timeout -s INT.
        fires(
            "coreutils-timeout",
            &sent("SIGINT", timeout(), Relation::Parent, job.clone()),
        );
        // timeout -s KILL: the first SIGKILL is the timeout itself.
        fires(
            "coreutils-timeout",
            &sent("SIGKILL", timeout(), Relation::Parent, job.clone()),
        );

        // The SIGCONT after the signal is not another timeout.
        let cont = after(
            sent("SIGCONT", timeout(), Relation::Parent, job.clone()),
            &[("SIGTERM", 0.0)],
        );
        quiet("coreutils-timeout", &cont);
        // Not somebody else's timeout, nor a signal timeout only passed on.
        quiet(
            "coreutils-timeout",
            &sent("SIGTERM", timeout(), Relation::Unrelated, job.clone()),
        );
        let forwarded = caused(sent("SIGTERM", timeout(), Relation::Parent, job.clone()));
        quiet("coreutils-timeout", &forwarded);
        fires("coreutils-timeout-forward", &forwarded);
        quiet("coreutils-timeout-forward", &first);
    }

    #[test]
    fn coreutils_timeout_kill_after() {
        let id = "coreutils-timeout-kill-after";
        let job = process("long-job", "/home/u/long-job", &["./long-job"]);
        let history = [
            ("SIGTERM", 5.0),
            ("SIGTERM", 5.0),
            ("SIGCONT", 5.0),
            ("SIGCONT", 5.0),
        ];
        let kill = after(
            sent("SIGKILL", timeout(), Relation::Parent, job.clone()),
            &history,
        );
        fires(id, &kill);
        quiet("coreutils-timeout", &kill);

        // A first SIGKILL (-s KILL) and its repeat to the process group.
        quiet(
            id,
            &sent("SIGKILL", timeout(), Relation::Parent, job.clone()),
        );
        let repeat = after(
            sent("SIGKILL", timeout(), Relation::Parent, job.clone()),
            &[("SIGKILL", 0.0)],
        );
        quiet(id, &repeat);
        // SIGKILL after SIGTERM from something that is not timeout.
        quiet(
            id,
            &after(
                sent("SIGKILL", app(), Relation::Parent, job.clone()),
                &[("SIGTERM", 5.0)],
            ),
        );
    }

    #[test]
    fn systemd_stop() {
        let id = "systemd-stop";
        let nginx = process(
            "nginx",
            "/usr/sbin/nginx",
            &["nginx: master process /usr/sbin/nginx"],
        );
        fires(
            id,
            &sent("SIGTERM", systemd(), Relation::Parent, nginx.clone()),
        );
        // A user manager, and a worker reached through KillMode=control-group.
        let user = process(
            "systemd",
            "/usr/lib/systemd/systemd",
            &["/usr/lib/systemd/systemd", "--user"],
        );
        fires(id, &sent("SIGTERM", user, Relation::Parent, app()));
        fires(
            id,
            &sent("SIGTERM", systemd(), Relation::Ancestor, nginx.clone()),
        );

        quiet(
            id,
            &sent("SIGHUP", systemd(), Relation::Parent, nginx.clone()),
        );
        let logind = process(
            "systemd-logind",
            "/usr/lib/systemd/systemd-logind",
            &["/usr/lib/systemd/systemd-logind"],
        );
        quiet(
            id,
            &sent("SIGTERM", logind, Relation::Unrelated, nginx.clone()),
        );
    }

    #[test]
    fn systemd_stop_timeout() {
        let id = "systemd-stop-timeout";
        let kill = after(
            sent("SIGKILL", systemd(), Relation::Parent, app()),
            &[("SIGTERM", 90.0), ("SIGCONT", 90.0)],
        );
        fires(id, &kill);
        fires("escalation", &kill);
        // systemctl kill -s KILL: no SIGTERM first.
        quiet(id, &sent("SIGKILL", systemd(), Relation::Parent, app()));
    }

    #[test]
    fn systemd_watchdog() {
        let id = "systemd-watchdog";
        fires(id, &sent("SIGABRT", systemd(), Relation::Parent, app()));
        quiet(id, &sent("SIGABRT", app(), Relation::SelfSignal, app()));
    }

    #[test]
    fn systemd_shutdown() {
        let id = "systemd-shutdown";
        let shutdown = process(
            "systemd-shutdow",
            "/usr/lib/systemd/systemd-shutdown",
            &[
                "/usr/lib/systemd/systemd-shutdown",
                "reboot",
                "--timeout",
                "90000000us",
            ],
        );
        fires(id, &sent("SIGTERM", shutdown, Relation::Unrelated, app()));
        quiet(id, &sent("SIGTERM", systemd(), Relation::Parent, app()));
    }

    #[test]
    fn container_stop() {
        let id = "container-stop";
        // docker stop: runc kill from containerd's moby namespace; runc and the
        // container's init are both children of the shim.
        let docker = sent(
            "SIGTERM",
            runc("/var/run/docker/runtime-runc/moby"),
            Relation::Sibling,
            app(),
        );
        fires(id, &docker);
        quiet("kubernetes-pod-stop", &docker);
        let shim = process(
            "containerd-shim",
            "/usr/bin/containerd-shim-runc-v2",
            &[
                "/usr/bin/containerd-shim-runc-v2",
                "-namespace",
                "moby",
                "-id",
                "4f2a9c",
            ],
        );
        fires(id, &sent("SIGKILL", shim, Relation::Parent, app()));
        // docker run --init: docker-init passes the signal on.
        let init = process(
            "docker-init",
            "/sbin/docker-init",
            &["/sbin/docker-init", "--", "node", "app.js"],
        );
        fires(id, &caused(sent("SIGTERM", init, Relation::Parent, node())));
        fires(
            id,
            &sent(
                "SIGTERM",
                process("crun", "/usr/bin/crun", &["crun", "kill", "c1", "TERM"]),
                Relation::Unrelated,
                app(),
            ),
        );

        quiet(
            id,
            &sent(
                "SIGTERM",
                process(
                    "runc-helper",
                    "/usr/local/bin/runc-helper",
                    &["runc-helper"],
                ),
                Relation::Parent,
                app(),
            ),
        );
        quiet(
            id,
            &sent(
                "SIGTERM",
                process("docker", "/usr/bin/docker", &["docker", "stop", "web"]),
                Relation::Unrelated,
                app(),
            ),
        );
    }

    #[test]
    fn kubernetes_pod_stop() {
        let id = "kubernetes-pod-stop";
        // containerd's CRI plugin: runc's --root carries the k8s.io namespace.
        fires(
            id,
            &sent(
                "SIGTERM",
                runc("/run/containerd/runc/k8s.io"),
                Relation::Sibling,
                app(),
            ),
        );
        // CRI-O runs runc itself.
        let mut crio_runc = process(
            "runc",
            "/usr/bin/runc",
            &["/usr/bin/runc", "--root=/run/runc", "kill", "4f2a9c", "15"],
        );
        crio_runc.pid = 4242;
        let mut by_crio = sent("SIGTERM", crio_runc.clone(), Relation::Unrelated, app());
        by_crio.sender_ancestors = vec![
            process("crio", "/usr/bin/crio", &["/usr/bin/crio"]),
            process("systemd", "/usr/lib/systemd/systemd", &["/sbin/init"]),
        ];
        fires(id, &by_crio);
        fires(
            id,
            &sent(
                "SIGKILL",
                process(
                    "kubelet",
                    "/usr/bin/kubelet",
                    &["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"],
                ),
                Relation::Unrelated,
                app(),
            ),
        );

        // runc under plain docker, and a non-runtime that mentions k8s.io.
        quiet(id, &sent("SIGTERM", crio_runc, Relation::Unrelated, app()));
        let kubectl = process(
            "kubectl",
            "/usr/bin/kubectl",
            &["kubectl", "run", "--image=registry.k8s.io/pause"],
        );
        quiet(id, &sent("SIGTERM", kubectl, Relation::Parent, app()));
    }

    #[test]
    fn pm2() {
        let id = "pm2";
        let stop = sent("SIGINT", pm2_daemon(), Relation::Parent, node());
        fires(id, &stop);
        // kill_signal: 'SIGTERM' must not look like child_process.exec.
        let term = sent("SIGTERM", pm2_daemon(), Relation::Parent, node());
        fires(id, &term);
        quiet("node-exec-maxbuffer-timeout", &term);
        // A daemon older than sigwho: argv from /proc, rewritten by process.title.
        let old = process(
            "PM2 v5.3.1: God",
            "/usr/bin/node",
            &["PM2 v5.3.1: God Daemon (/root/.pm2)"],
        );
        fires(id, &sent("SIGKILL", old, Relation::Parent, node()));

        quiet(id, &sent("SIGINT", node(), Relation::Parent, app()));
    }

    #[test]
    fn supervisord_rule() {
        let id = "supervisord";
        fires(id, &sent("SIGTERM", supervisord(), Relation::Parent, app()));
        let kill = after(
            sent("SIGKILL", supervisord(), Relation::Parent, app()),
            &[("SIGTERM", 10.0)],
        );
        fires(id, &kill);
        quiet("python-subprocess-timeout", &kill);

        quiet(id, &sent("SIGTERM", python(), Relation::Parent, app()));
    }

    #[test]
    fn oom_killer() {
        let id = "oom-killer";
        fires(
            id,
            &by_kernel("SIGKILL", "oom_kill", app(), Relation::SelfSignal, app()),
        );
        fires(
            id,
            &by_kernel("SIGKILL", "oom_kill", python(), Relation::Unrelated, app()),
        );
        quiet(id, &sent("SIGKILL", app(), Relation::Unrelated, node()));
        quiet(
            "self-signal",
            &by_kernel("SIGKILL", "oom_kill", app(), Relation::SelfSignal, app()),
        );
    }

    #[test]
    fn userspace_oom_killer() {
        let id = "userspace-oom-killer";
        let oomd = process(
            "systemd-oomd",
            "/usr/lib/systemd/systemd-oomd",
            &["/usr/lib/systemd/systemd-oomd"],
        );
        fires(id, &sent("SIGKILL", oomd, Relation::Unrelated, app()));
        let earlyoom = process(
            "earlyoom",
            "/usr/bin/earlyoom",
            &["/usr/bin/earlyoom", "-r", "3600"],
        );
        fires(id, &sent("SIGTERM", earlyoom, Relation::Unrelated, app()));
        quiet(id, &sent("SIGKILL", systemd(), Relation::Parent, app()));
    }

    #[test]
    fn terminal_keys() {
        let shell = process("bash", "/usr/bin/bash", &["-bash"]);
        let key = |signal| by_kernel(signal, "terminal", kworker(), Relation::Unrelated, app());
        fires("shell-ctrl-c", &key("SIGINT"));
        fires("shell-ctrl-backslash", &key("SIGQUIT"));
        fires("shell-ctrl-z", &key("SIGTSTP"));
        fires("terminal-hangup", &key("SIGHUP"));
        fires("terminal-background-io", &key("SIGTTIN"));
        fires("terminal-background-io", &key("SIGTTOU"));
        assert_eq!(hint_ids(&key("SIGINT")), ["shell-ctrl-c"]);

        // kill -INT from a shell is not ^C; SIGCONT and SIGWINCH from the tty say nothing.
        quiet(
            "shell-ctrl-c",
            &sent("SIGINT", shell, Relation::Parent, app()),
        );
        quiet("shell-ctrl-c", &key("SIGQUIT"));
        assert!(hint_ids(&key("SIGCONT")).is_empty());
        assert!(hint_ids(&key("SIGWINCH")).is_empty());
    }

    #[test]
    fn shell_hangup_jobs() {
        let id = "shell-hangup-jobs";
        let shell = process("bash", "/usr/bin/bash", &["-bash"]);
        fires(
            id,
            &caused(sent("SIGHUP", shell.clone(), Relation::Parent, app())),
        );
        let zsh = process("zsh", "/usr/bin/zsh", &["-zsh"]);
        fires(id, &sent("SIGHUP", zsh, Relation::Parent, app()));
        quiet(id, &sent("SIGTERM", shell, Relation::Parent, app()));
        quiet(id, &sent("SIGHUP", systemd(), Relation::Parent, app()));
    }

    #[test]
    fn parent_death() {
        let id = "parent-death";
        let child = by_kernel("SIGKILL", "parent_death", node(), Relation::Parent, app());
        fires(id, &child);
        quiet(id, &sent("SIGKILL", node(), Relation::Parent, app()));
    }

    #[test]
    fn pid_namespace_init_exit() {
        let id = "pid-namespace-init-exit";
        let init = process(
            "entrypoint.sh",
            "/usr/bin/bash",
            &["/bin/bash", "/entrypoint.sh"],
        );
        fires(
            id,
            &by_kernel("SIGKILL", "pid_namespace", init, Relation::Parent, app()),
        );
        quiet(
            id,
            &by_kernel("SIGKILL", "oom_kill", app(), Relation::SelfSignal, app()),
        );
    }

    #[test]
    fn kernel_classes() {
        let own = |signal, class| by_kernel(signal, class, app(), Relation::SelfSignal, app());
        fires("broken-pipe", &own("SIGPIPE", "broken_pipe"));
        fires("resource-limit", &own("SIGXCPU", "rlimit"));
        fires("resource-limit", &own("SIGXFSZ", "rlimit"));
        fires("seccomp", &own("SIGSYS", "seccomp"));
        fires("timer", &own("SIGALRM", "timer"));
        fires("cpu-fault", &own("SIGSEGV", "fault"));
        fires("cpu-fault", &own("SIGBUS", "fault"));
        // The kernel's own signals to the process are not "signalled itself".
        quiet("self-signal", &own("SIGSEGV", "fault"));
        quiet("self-signal", &own("SIGPIPE", "broken_pipe"));

        // The same signal numbers sent with kill(1) are not those situations.
        for (signal, id) in [
            ("SIGPIPE", "broken-pipe"),
            ("SIGXCPU", "resource-limit"),
            ("SIGSYS", "seccomp"),
            ("SIGALRM", "timer"),
            ("SIGSEGV", "cpu-fault"),
        ] {
            quiet(id, &sent(signal, python(), Relation::Parent, app()));
        }
        assert!(hint_ids(&own("SIGCHLD", "child_state")).is_empty());
    }

    #[test]
    fn self_signal_and_abort() {
        let mut abort = sent("SIGABRT", app(), Relation::SelfSignal, app());
        abort.origin = "tgkill".to_owned();
        abort.code = "SI_TKILL".to_owned();
        fires("self-abort", &abort);
        quiet("self-signal", &abort);

        let raise = sent("SIGTERM", app(), Relation::SelfSignal, app());
        fires("self-signal", &raise);
        quiet("self-abort", &raise);
        // The origin is "user" when the syscall hook is missing: still the process.
        let mut unhooked = raise.clone();
        unhooked.origin = "user".to_owned();
        fires("self-signal", &unhooked);

        quiet(
            "self-signal",
            &sent("SIGTERM", python(), Relation::Parent, app()),
        );
        quiet(
            "self-abort",
            &sent("SIGABRT", python(), Relation::Parent, app()),
        );
    }

    #[test]
    fn escalation() {
        let id = "escalation";
        let shell = process("bash", "/usr/bin/bash", &["bash"]);
        fires(
            id,
            &after(
                sent("SIGKILL", shell.clone(), Relation::Parent, app()),
                &[("SIGTERM", 10.0)],
            ),
        );
        // Too long ago, the wrong first signal, or no first signal at all.
        quiet(
            id,
            &after(
                sent("SIGKILL", shell.clone(), Relation::Parent, app()),
                &[("SIGTERM", 400.0)],
            ),
        );
        quiet(
            id,
            &after(
                sent("SIGKILL", shell.clone(), Relation::Parent, app()),
                &[("SIGINT", 10.0)],
            ),
        );
        quiet(id, &sent("SIGKILL", shell.clone(), Relation::Parent, app()));
        quiet(
            id,
            &after(
                sent("SIGTERM", shell, Relation::Parent, app()),
                &[("SIGTERM", 10.0)],
            ),
        );
    }

    #[test]
    fn plain_kill_from_an_unknown_program_has_no_hint() {
        let shell = process("bash", "/usr/bin/bash", &["bash"]);
        assert!(hint_ids(&sent("SIGTERM", shell, Relation::Parent, app())).is_empty());
    }

    // ---- matching ----

    #[test]
    fn glob_basics() {
        assert!(glob_match("node", "node"));
        assert!(!glob_match("node", "nodejs"));
        assert!(!glob_match("node", "Node"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything/at all"));
        assert!(glob_match("*/node", "/usr/bin/node"));
        assert!(!glob_match("*/node", "/usr/bin/node.old"));
        assert!(glob_match(
            "*node*",
            "/home/u/.nvm/versions/node/v20/bin/node"
        ));
        assert!(glob_match("PM2*", "PM2 v5.3.1: God"));
        assert!(glob_match("python3.??", "python3.12"));
        assert!(!glob_match("python3.??", "python3.9"));
        assert!(glob_match("?", "é"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("*a*b", "xaxb"));
        assert!(glob_match("**x", "x"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("", ""));
        assert!(!glob_match("x", ""));
        assert!(!glob_match("?", ""));
    }

    #[test]
    fn glob_does_not_blow_up() {
        let text = "a".repeat(10_000);
        assert!(!glob_match("*a*a*a*a*a*a*b", &text));
        assert!(glob_match("*a*a*a*a*a*a", &text));
    }

    fn one_rule(when: &str) -> Rules {
        let json = format!(r#"{{"rules": [{{"id": "r", "text": "t", "when": {when}}}]}}"#);
        Rules::from_json(&json).unwrap_or_else(|e| panic!("{when}: {e}"))
    }

    fn matches(when: &str, facts: &Facts) -> bool {
        !one_rule(when).hints(facts).is_empty()
    }

    #[test]
    fn program_is_comm_or_exe_or_argv0_file_name() {
        let when = r#"{"sender": {"program": "python3.12"}}"#;
        let by_exe = process("python3", "/usr/bin/python3.12", &["python3"]);
        let by_argv0 = process("build.py", "", &["/opt/py/bin/python3.12", "build.py"]);
        let by_comm = process("python3.12", "", &[]);
        let upgraded = process("python3", "/usr/bin/python3.12 (deleted)", &["python3"]);
        let none = process("python3", "/usr/bin/python3.11", &["python3", "python3.12"]);
        for (who, expected) in [
            (by_exe, true),
            (by_argv0, true),
            (by_comm, true),
            (upgraded, true),
            (none, false),
        ] {
            let facts = Facts {
                sender: who.clone(),
                ..Facts::default()
            };
            assert_eq!(matches(when, &facts), expected, "{who:?}");
        }
    }

    #[test]
    fn process_keys_all_hold_and_ancestors_match_as_one() {
        let facts = Facts {
            sender: process("sh", "/usr/bin/dash", &["sh", "-c", "make"]),
            sender_ancestors: vec![
                process("make", "/usr/bin/make", &["make", "-j8"]),
                process("bash", "/usr/bin/bash", &["bash", "ci.sh"]),
            ],
            target: process("cc1", "/usr/lib/gcc/cc1", &["cc1", "x.c"]),
            target_ancestors: vec![process("gcc", "/usr/bin/gcc", &["gcc", "x.c"])],
            ..Facts::default()
        };
        assert!(matches(
            r#"{"sender": {"comm": "sh", "argv": "-c"}}"#,
            &facts
        ));
        assert!(!matches(
            r#"{"sender": {"comm": "sh", "argv": "-j8"}}"#,
            &facts
        ));
        assert!(matches(
            r#"{"sender_ancestor": {"comm": "make", "argv": "-j*"}}"#,
            &facts
        ));
        // Each key met by a different ancestor is not one ancestor meeting both.
        assert!(!matches(
            r#"{"sender_ancestor": {"comm": "make", "argv": "ci.sh"}}"#,
            &facts
        ));
        assert!(matches(
            r#"{"target": {"exe": "*/cc1"}, "target_ancestor": {"program": "gcc"}}"#,
            &facts
        ));
        assert!(!matches(
            r#"{"target_ancestor": {"program": "make"}}"#,
            &facts
        ));
        // A process whose exe is unknown matches no exe pattern, not even "*".
        let no_exe = Facts {
            sender: process("x", "", &[]),
            ..Facts::default()
        };
        assert!(!matches(r#"{"sender": {"exe": "*"}}"#, &no_exe));
    }

    #[test]
    fn lists_are_any_of_and_strings_are_lists_of_one() {
        let facts = Facts {
            signo: 15,
            origin: "tgkill".into(),
            ..Facts::default()
        };
        assert!(matches(r#"{"signals": "sigterm"}"#, &facts));
        assert!(matches(r#"{"signals": ["SIGINT", "TERM"]}"#, &facts));
        assert!(!matches(r#"{"signals": ["SIGINT", "SIGKILL"]}"#, &facts));
        assert!(matches(r#"{"origins": ["kill", "tgkill"]}"#, &facts));
        assert!(!matches(r#"{"origins": "kill"}"#, &facts));
    }

    #[test]
    fn codes_relation_and_cause() {
        let facts = Facts {
            code: "SI_TKILL".into(),
            relation: Relation::SelfSignal,
            cause_depth: 2,
            ..Facts::default()
        };
        assert!(matches(r#"{"codes": ["SI_QUEUE", "SI_TKILL"]}"#, &facts));
        assert!(!matches(r#"{"codes": "SI_USER"}"#, &facts));
        assert!(matches(r#"{"relation": "self"}"#, &facts));
        assert!(matches(r#"{"relation": "self_signal"}"#, &facts));
        assert!(!matches(r#"{"relation": ["parent", "ancestor"]}"#, &facts));
        assert!(matches(r#"{"cause": "some"}"#, &facts));
        assert!(!matches(r#"{"cause": "none"}"#, &facts));
    }

    #[test]
    fn preceded_by_signals_and_window() {
        let facts = Facts {
            signo: 9,
            previous_from_sender: vec![(15, 120.0), (18, 119.5)],
            ..Facts::default()
        };
        assert!(matches(r#"{"preceded_by": {}}"#, &facts));
        assert!(matches(
            r#"{"preceded_by": {"signals": "SIGTERM"}}"#,
            &facts
        ));
        assert!(matches(
            r#"{"preceded_by": {"signals": "SIGTERM", "within_seconds": 120}}"#,
            &facts
        ));
        assert!(!matches(
            r#"{"preceded_by": {"signals": "SIGTERM", "within_seconds": 60}}"#,
            &facts
        ));
        assert!(matches(
            r#"{"preceded_by": {"within_seconds": 119.5}}"#,
            &facts
        ));
        assert!(!matches(
            r#"{"preceded_by": {"signals": "SIGINT"}}"#,
            &facts
        ));
        assert!(!matches(r#"{"preceded_by": {}}"#, &Facts::default()));
    }

    #[test]
    fn any_and_not() {
        let facts = Facts {
            signo: 15,
            cause_depth: 0,
            ..Facts::default()
        };
        assert!(matches(
            r#"{"any": [{"signals": "SIGINT"}, {"signals": "SIGTERM"}]}"#,
            &facts
        ));
        assert!(!matches(
            r#"{"any": [{"signals": "SIGINT"}, {"cause": "some"}]}"#,
            &facts
        ));
        assert!(matches(r#"{"not": {"signals": "SIGINT"}}"#, &facts));
        assert!(!matches(
            r#"{"not": [{"signals": "SIGINT"}, {"signals": "SIGTERM"}]}"#,
            &facts
        ));
        // Inside a block, conditions still all have to hold.
        assert!(matches(
            r#"{"not": {"signals": "SIGTERM", "cause": "some"}}"#,
            &facts
        ));
    }

    #[test]
    fn hints_come_in_file_order() {
        let json = r#"{"rules": [
            {"id": "b", "text": "second", "when": {"signals": "SIGTERM"}},
            {"id": "a", "text": "first", "when": {"relation": "parent"}},
            {"id": "c", "text": "never", "when": {"signals": "SIGINT"}}
        ]}"#;
        let rules = Rules::from_json(json).unwrap();
        let facts = Facts {
            signo: 15,
            relation: Relation::Parent,
            ..Facts::default()
        };
        let hints = rules.hints(&facts);
        assert_eq!(
            hints,
            [
                Hint {
                    id: "b".into(),
                    text: "second".into()
                },
                Hint {
                    id: "a".into(),
                    text: "first".into()
                },
            ]
        );
        assert_eq!(rules.ids().collect::<Vec<_>>(), ["b", "a", "c"]);
        assert_eq!(rules.len(), 3);
    }

    #[test]
    fn extend_replaces_same_ids_in_place() {
        let mut rules = Rules::from_json(
            r#"{"rules": [{"id": "a", "text": "old", "when": {"signals": "SIGTERM"}},
                          {"id": "b", "text": "b", "when": {"signals": "SIGTERM"}}]}"#,
        )
        .unwrap();
        let user = Rules::from_json(
            r#"{"rules": [{"id": "c", "text": "c", "when": {"signals": "SIGTERM"}},
                          {"id": "a", "text": "new", "when": {"signals": "SIGTERM"}}]}"#,
        )
        .unwrap();
        rules.extend(user);
        let facts = Facts {
            signo: 15,
            ..Facts::default()
        };
        let texts: Vec<String> = rules.hints(&facts).into_iter().map(|h| h.text).collect();
        assert_eq!(texts, ["new", "b", "c"]);
    }

    #[test]
    fn hints_and_facts_serialize() {
        let hint = Hint {
            id: "x".into(),
            text: "y".into(),
        };
        assert_eq!(
            serde_json::to_string(&hint).unwrap(),
            r#"{"id":"x","text":"y"}"#
        );
        assert_eq!(serde_json::to_value(Relation::SelfSignal).unwrap(), "self");
        assert_eq!(serde_json::to_value(Relation::Parent).unwrap(), "parent");
        // Facts read back with defaults, e.g. from a file to try rules against.
        let facts: Facts = serde_json::from_str(
            r#"{"signo": 9, "relation": "parent", "sender": {"comm": "node"}, "previous_from_sender": [[15, 3.5]]}"#,
        )
        .unwrap();
        assert_eq!(facts.relation, Relation::Parent);
        assert_eq!(facts.sender.comm, "node");
        assert_eq!(facts.previous_from_sender, [(15, 3.5)]);
        assert_eq!(facts.target, ProcFacts::default());
    }

    #[test]
    fn origins_are_those_reports_use() {
        use tracer_ebpf::syscall;
        for which in 1..=syscall::COUNT as u32 {
            let name = crate::analysis::classify::syscall_name(which);
            assert!(ORIGINS.contains(&name), "{name}");
        }
        assert!(ORIGINS.contains(&crate::analysis::classify::syscall_name(syscall::NONE)));
    }

    // ---- errors ----

    #[track_caller]
    fn load_error(json: &str) -> String {
        let message = match Rules::from_json(json) {
            Ok(_) => panic!("loaded: {json}"),
            Err(e) => e.to_string(),
        };
        assert!(!message.contains('\n'), "not one line: {message}");
        message
    }

    #[track_caller]
    fn rule_error(when: &str) -> String {
        load_error(&format!(
            r#"{{"rules": [{{"id": "my-rule", "text": "t", "when": {when}}}]}}"#
        ))
    }

    #[test]
    fn file_structure_errors() {
        assert!(load_error("{").starts_with("hint rules are not valid JSON: "));
        assert!(load_error("[]").contains("expected an object"));
        assert!(load_error("{}").contains("missing \"rules\""));
        assert!(load_error(r#"{"rules": {}}"#).contains("must be a list"));
        assert!(load_error(r#"{"rule": []}"#).contains(r#"unknown key "rule""#));
        assert!(load_error(r#"{"version": 2, "rules": []}"#).contains("unsupported version 2"));
        assert_eq!(
            Rules::from_json(r#"{"version": 1, "rules": []}"#)
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn rule_errors_name_the_rule_and_key() {
        assert_eq!(
            rule_error(r#"{"sigals": "SIGTERM"}"#),
            "hint rule #1 `my-rule`: when.sigals: unknown key (expected signals, origins, \
             origin_class, codes, relation, sender, sender_ancestor, target, target_ancestor, \
             preceded_by, cause, any, not)"
        );
        let e = rule_error(r#"{"signals": ["SIGTERM", "SIGTREM"]}"#);
        assert!(
            e.starts_with("hint rule #1 `my-rule`: when.signals[1]: unknown signal"),
            "{e}"
        );
        let e = rule_error(r#"{"signals": "15"}"#);
        assert!(
            e.contains("when.signals: \"15\": write signals by name"),
            "{e}"
        );
        let e = rule_error(r#"{"origin_class": "oom"}"#);
        assert!(
            e.contains("when.origin_class: unknown value \"oom\""),
            "{e}"
        );
        let e = rule_error(r#"{"origins": "kil"}"#);
        assert!(e.contains("when.origins: unknown value \"kil\""), "{e}");
        let e = rule_error(r#"{"codes": "SI_USR"}"#);
        assert!(e.contains("when.codes: unknown si_code \"SI_USR\""), "{e}");
        let e = rule_error(r#"{"relation": "parnet"}"#);
        assert!(e.contains("when.relation: unknown variant `parnet`"), "{e}");
        let e = rule_error(r#"{"cause": "yes"}"#);
        assert!(e.contains("when.cause: \"yes\" is neither"), "{e}");
        let e = rule_error(r#"{"any": [{"signals": "SIGINT"}, {"sender": {"com": "x"}}]}"#);
        assert!(
            e.contains("when.any[1].sender.com: unknown key (expected comm, exe, argv, program)"),
            "{e}"
        );
        let e = rule_error(r#"{"preceded_by": {"signal": "SIGTERM"}}"#);
        assert!(e.contains("when.preceded_by.signal: unknown key"), "{e}");
        let e = rule_error(r#"{"preceded_by": {"within_seconds": -1}}"#);
        assert!(
            e.contains("when.preceded_by.within_seconds: expected a number of seconds"),
            "{e}"
        );
        let e = rule_error(r#"{"signals": []}"#);
        assert!(e.contains("when.signals: empty list"), "{e}");
        let e = rule_error(r#"{"signals": 15}"#);
        assert!(
            e.contains("when.signals: expected a string or a list of strings, found a number"),
            "{e}"
        );
        let e = rule_error(r#"{"sender": {"argv": ["x", 1]}}"#);
        assert!(
            e.contains("when.sender.argv[1]: expected a string, found a number"),
            "{e}"
        );
        let e = rule_error(r#"{"sender": {"comm": ""}}"#);
        assert!(e.contains("when.sender.comm: empty pattern"), "{e}");
        let e = rule_error("{}");
        assert!(e.contains("when: no conditions"), "{e}");
        let e = rule_error(r#"{"not": []}"#);
        assert!(e.contains("when.not: empty list"), "{e}");
        let e = rule_error(r#"{"sender": {}}"#);
        assert!(e.contains("when.sender: no conditions"), "{e}");
        let e = rule_error(r#"["signals"]"#);
        assert!(e.contains("when: expected an object, found a list"), "{e}");
    }

    #[test]
    fn rule_field_errors() {
        let e = load_error(r#"{"rules": [{"text": "t", "when": {"signals": "SIGTERM"}}]}"#);
        assert_eq!(e, "hint rule #1: id: missing");
        let e = load_error(
            r#"{"rules": [{"id": "Bad_Id", "text": "t", "when": {"signals": "SIGTERM"}}]}"#,
        );
        assert!(
            e.starts_with("hint rule #1: id: \"Bad_Id\" is not kebab-case"),
            "{e}"
        );
        let e = load_error(
            r#"{"rules": [{"id": "a", "text": "t\nu", "when": {"signals": "SIGTERM"}}]}"#,
        );
        assert_eq!(
            e,
            "hint rule #1 `a`: text: must be one line (no control characters)"
        );
        let e =
            load_error(r#"{"rules": [{"id": "a", "text": " ", "when": {"signals": "SIGTERM"}}]}"#);
        assert_eq!(e, "hint rule #1 `a`: text: empty");
        let e = load_error(r#"{"rules": [{"id": "a", "text": "t"}]}"#);
        assert_eq!(e, "hint rule #1 `a`: when: missing");
        let e = load_error(r#"{"rules": [{"id": "a", "text": "t", "wen": {}}]}"#);
        assert_eq!(
            e,
            "hint rule #1 `a`: wen: unknown key (expected id, text, when, note)"
        );
        let e = load_error(
            r#"{"rules": [{"id": "a", "text": "t", "note": 3, "when": {"signals": "SIGTERM"}}]}"#,
        );
        assert_eq!(
            e,
            "hint rule #1 `a`: note: expected a string, found a number"
        );
        let e = load_error(r#"{"rules": [7]}"#);
        assert_eq!(e, "hint rule #1: rule: expected an object, found a number");
        let e = load_error(
            r#"{"rules": [{"id": "a", "text": "t", "when": {"signals": "SIGTERM"}},
                          {"id": "a", "text": "u", "when": {"signals": "SIGINT"}}]}"#,
        );
        assert_eq!(e, "hint rule #2 `a`: id: another rule already has this id");
    }

    #[test]
    fn kebab_case() {
        for good in ["a", "node-exec", "oom-killer-2", "x1"] {
            assert!(is_kebab_case(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "1a", "a b", "é"] {
            assert!(!is_kebab_case(bad), "{bad}");
        }
    }
}
