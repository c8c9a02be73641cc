//! Rule files that do not load, and what the errors say.

use super::*;

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
         origin_class, codes, results, relation, sender, sender_ancestor, target, target_ancestor, \
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
    let e =
        load_error(r#"{"rules": [{"id": "Bad_Id", "text": "t", "when": {"signals": "SIGTERM"}}]}"#);
    assert!(
        e.starts_with("hint rule #1: id: \"Bad_Id\" is not kebab-case"),
        "{e}"
    );
    let e =
        load_error(r#"{"rules": [{"id": "a", "text": "t\nu", "when": {"signals": "SIGTERM"}}]}"#);
    assert_eq!(
        e,
        "hint rule #1 `a`: text: must be one line (no control characters)"
    );
    let e = load_error(r#"{"rules": [{"id": "a", "text": " ", "when": {"signals": "SIGTERM"}}]}"#);
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
