//! `--color auto|always|never` and `NO_COLOR`, on the text reports of the live view and of
//! `sigwho query`, with real signals recorded by the real eBPF programs. A terminal is
//! given by script(1) (util-linux), which runs sigwho on a pseudo-terminal.

#[path = "recording.rs"]
mod recording;

use std::process::Command;

use recording::{EVENT_TIMEOUT, Recording};
use sigwho_tests::{
    Sigwho, Target, Value, field_i64, is_signal, require_root, run, sigwho_bin, testproc,
};

const ESC: char = '\x1b';

/// `sigwho ARGS` on a pseudo-terminal (output with \r\n line ends), with `env` set.
fn on_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut line = shell_quote(&sigwho_bin().to_string_lossy());
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    let mut cmd = Command::new("script");
    // -e: script exits with sigwho's status; -q: no "Script started" lines.
    cmd.args(["-qec", &line, "/dev/null"])
        .env_remove("NO_COLOR")
        // A CI runner may say TERM=dumb, which turns auto colour off on purpose.
        .env("TERM", "xterm");
    for (key, value) in env {
        cmd.env(key, value);
    }
    run(cmd, EVENT_TIMEOUT).assert_success().stdout
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[test]
fn query_colours_a_terminal_unless_no_color_or_never() {
    let recording = Recording::start("color");
    let target = Target::spawn(&["--handle", "USR1"]);
    let pid = target.pid.to_string();
    let sender = testproc(&["kill", &pid, "USR1"]).assert_success();
    let query = ["--target-pid", pid.as_str()];
    recording.wait_recorded(&query, |ev| {
        is_signal("SIGUSR1")(ev) && field_i64(ev, "sender.pid") == Some(i64::from(sender.pid))
    });

    // Into a pipe: auto is plain, always colours (even with NO_COLOR: the flag wins).
    let plain = recording.query(&query).assert_success().stdout;
    assert!(plain.contains("SIGUSR1") && !plain.contains(ESC), "{plain}");
    let mut always = recording.query_cmd(&["--target-pid", &pid, "--color", "always"]);
    always.env("NO_COLOR", "1");
    let always = run(always, EVENT_TIMEOUT).assert_success().stdout;
    assert!(
        always.contains("\x1b[1m\x1b[31mSIGUSR1\x1b[0m"),
        "{always:?}"
    );
    assert!(always.contains("\x1b[36mwhy:\x1b[0m"), "{always:?}");
    assert_eq!(strip_escapes(&always), plain, "colour adds escapes only");

    // On a terminal: auto colours, unless NO_COLOR is set or --color never.
    let journal = recording::path_str(&recording.journal);
    let base = ["query", "--journal", journal, "--target-pid", pid.as_str()];
    let tty = on_terminal(&base, &[]);
    assert!(tty.contains("\x1b[1m\x1b[31mSIGUSR1\x1b[0m"), "{tty:?}");
    let no_color = on_terminal(&base, &[("NO_COLOR", "1")]);
    assert!(
        no_color.contains("SIGUSR1") && !no_color.contains(ESC),
        "{no_color:?}"
    );
    let mut never = base.to_vec();
    never.extend(["--color", "never"]);
    let never = on_terminal(&never, &[]);
    assert!(
        never.contains("SIGUSR1") && !never.contains(ESC),
        "{never:?}"
    );
    // An empty NO_COLOR counts as unset.
    let empty = on_terminal(&base, &[("NO_COLOR", "")]);
    assert!(empty.contains(ESC), "{empty:?}");
}

#[test]
fn live_view_colours_text_only_when_asked_and_never_json() {
    require_root();
    // (options, coloured, JSON); stdout is a pipe, so auto means plain.
    for (args, coloured, json) in [
        (&["--color", "always"][..], true, false),
        (&["--color", "never"][..], false, false),
        (&[][..], false, false),
        (&["--color", "always", "--json"][..], false, true),
    ] {
        let target = Target::spawn(&[]);
        let pid = target.pid.to_string();
        let mut cmd = Sigwho::command(&["--target-pid", &pid]);
        cmd.args(args);
        let mut sigwho = Sigwho::start_with(cmd);
        testproc(&["kill", &pid, "TERM"]).assert_success();
        let (status, _) = sigwho.wait_exit(EVENT_TIMEOUT);
        assert!(status.success(), "{args:?}: {status}\n{}", sigwho.report());
        let out = sigwho.report();
        let parsed = sigwho.all_events();
        assert_eq!(
            parsed.iter().all(Value::is_object),
            json,
            "{args:?}: JSON lines only with --json: {out}"
        );
        let lines = stdout_lines(&sigwho);
        let text = lines.join("\n");
        assert!(text.contains("SIGTERM"), "{args:?}: {out}");
        assert_eq!(text.contains(ESC), coloured, "{args:?}: {text:?}");
        drop(target);
    }
}

/// Every stdout line sigwho printed, JSON or not, as text.
fn stdout_lines(sigwho: &Sigwho) -> Vec<String> {
    sigwho
        .all_events()
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(ESC) {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('m').expect("escape ends with m");
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}
