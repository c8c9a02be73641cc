//! How `when` clauses match facts.

use super::*;

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
        origin: Some(Origin::Tgkill),
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
