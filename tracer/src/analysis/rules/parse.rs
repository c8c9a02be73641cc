//! Reading a rules file, strictly: every key known, every value checked, errors that
//! name the rule and key at fault.

use std::collections::{BTreeSet, HashSet};
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::{Condition, Conditions, Preceded, ProcessConditions, Rule, Rules, RulesError, Whose};
use crate::{
    analysis::classify::{Origin, OriginClass, Relation, SignalResult},
    model::signals::{parse_signal, si_code_name},
};

/// Keys of a condition block (`when`, and the blocks inside `any` and `not`).
const CONDITION_KEYS: &[&str] = &[
    "signals",
    "origins",
    "origin_class",
    "codes",
    "results",
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

fn rule_name(number: usize, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("#{number} `{id}`"),
        None => format!("#{number}"),
    }
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
pub(super) fn is_kebab_case(id: &str) -> bool {
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
            "origins" => Condition::Origins(each_string(value, &at, |s| {
                known(s, Origin::ALL, |o| o.as_str())
            })?),
            "origin_class" => Condition::OriginClass(each_string(value, &at, |s| {
                known(s, OriginClass::ALL, |c| c.as_str())
            })?),
            "codes" => Condition::Codes(each_string(value, &at, code_name)?),
            "results" => Condition::Results(each_string(value, &at, |s| {
                known(s, SignalResult::ALL, |r| r.as_str())
            })?),
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

fn known<T: Copy>(value: &str, all: &[T], name: impl Fn(&T) -> &'static str) -> Result<T, String> {
    all.iter()
        .find(|v| name(v) == value)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(name).collect();
            format!(
                "unknown value {value:?} (expected one of {})",
                names.join(", ")
            )
        })
}

fn relation(name: &str) -> Result<Relation, String> {
    serde_json::from_value(Value::String(name.to_owned())).map_err(|e| e.to_string())
}

/// `si_code` names as reports print them (`signals::si_code_name`); checked so that a typo
/// such as "`SI_USR`" fails to load instead of never matching.
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

impl Rules {
    /// Parses a rules file (format in docs/hints.md). Errors are one line naming the
    /// rule and key at fault.
    ///
    /// # Errors
    ///
    /// When the text is not JSON, or a rule or key is malformed (one line naming them).
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
}
