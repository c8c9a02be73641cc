//! The layout's rules (docs/architecture.md, "Layers"), checked on tracer/src:
//!
//! - `analysis/`, `model/` and `render/` use none of tokio, aya, rusqlite or
//!   `std::process`: what they do can be tested and replayed without a kernel, a runtime,
//!   a journal or child processes;
//! - only `kernel/` uses aya;
//! - only `main.rs` and `modes/` use `cli` (clap's types stay at the edge);
//! - only `main.rs` uses `modes`;
//! - `unsafe` appears only in `kernel/sys.rs` and the run mode's spawn gate
//!   (`modes/run/spawn.rs`), and libc functions are called only in `kernel/sys.rs`;
//! - no file has more than 800 lines of production code (before its tests).
//!
//! Production code is what comes before a file's `#[cfg(test)]`; `tests.rs` files are
//! test modules.
//!
//! The scanner reads paths from the source with comments and literals removed: each
//! `use` tree expanded, and every qualified path (`a::b::c`) in the code, with `crate`,
//! `self` and `super` resolved against the file's module. The unit tests at the end show
//! it catches what the rules forbid.

use std::path::{Path, PathBuf};

/// Folders whose code must run without a kernel, a runtime, a database or children.
const PURE: &[&str] = &["analysis", "model", "render"];
const IMPURE_CRATES: &[&str] = &["tokio", "aya", "rusqlite"];
/// Files that may hold `unsafe`.
const UNSAFE_ALLOWED: &[&str] = &["kernel/sys.rs", "modes/run/spawn.rs"];
const MAX_PRODUCTION_LINES: usize = 800;

#[test]
fn tracer_src_follows_the_layout_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    let mut files = 0;
    for path in rust_files(&root) {
        let relative = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        problems.extend(check(&relative, &text));
        files += 1;
    }
    assert!(
        files > 40,
        "found only {files} files under {}",
        root.display()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every rule the file at `relative` (to tracer/src) breaks, one line each. Only
/// production code counts: tests may spawn processes or read their own pid.
fn check(relative: &str, text: &str) -> Vec<String> {
    let module = module_of(relative);
    let top = module.first().map_or("", String::as_str);
    let production: String = if is_test_file(relative) {
        String::new()
    } else {
        text.lines()
            .take_while(|line| line.trim() != "#[cfg(test)]")
            .flat_map(|line| [line, "\n"])
            .collect()
    };
    let code = strip(&production);
    let tokens = tokenize(&code);
    let mut problems = Vec::new();
    for path in paths(&tokens) {
        let resolved = resolve(&path, &module, relative == "main.rs");
        let first = resolved.first().map_or("", String::as_str);
        let shown = resolved.join("::");
        let is_std_process = resolved.len() >= 2 && first == "std" && resolved[1] == "process";
        if PURE.contains(&top) && (IMPURE_CRATES.contains(&first) || is_std_process) {
            problems.push(format!("{relative}: {top}/ uses {shown}"));
        }
        if first == "aya" && top != "kernel" && !PURE.contains(&top) {
            problems.push(format!("{relative}: only kernel/ may use {shown}"));
        }
        let internal = first == "crate";
        let second = resolved.get(1).map_or("", String::as_str);
        if internal && second == "cli" && relative != "main.rs" && top != "modes" && top != "cli.rs"
        {
            problems.push(format!(
                "{relative}: only main.rs and modes/ may use {shown}"
            ));
        }
        if internal && second == "modes" && relative != "main.rs" && top != "modes" {
            problems.push(format!("{relative}: only main.rs may use {shown}"));
        }
    }
    if tokens.iter().any(|t| t == "unsafe") && !UNSAFE_ALLOWED.contains(&relative) {
        problems.push(format!(
            "{relative}: `unsafe` outside kernel/sys.rs and the spawn gate"
        ));
    }
    if relative != "kernel/sys.rs" {
        for call in libc_calls(&tokens) {
            problems.push(format!(
                "{relative}: calls libc::{call} (raw calls belong in kernel/sys.rs)"
            ));
        }
    }
    let production = production_lines(relative, text);
    if production > MAX_PRODUCTION_LINES {
        problems.push(format!(
            "{relative}: {production} lines of production code (at most {MAX_PRODUCTION_LINES})"
        ));
    }
    problems
}

/// The module path of a file: `analysis/correlate/mod.rs` is `analysis::correlate`.
/// `main.rs` and `lib.rs` are crate roots; `cli.rs` is the module cli (reported as
/// "cli.rs" for its own rule).
fn module_of(relative: &str) -> Vec<String> {
    let without = relative.trim_end_matches(".rs");
    let mut parts: Vec<String> = without.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    match relative {
        "main.rs" | "lib.rs" => Vec::new(),
        "cli.rs" => vec!["cli.rs".to_owned()],
        _ => parts,
    }
}

/// A file that holds a test module (`#[cfg(test)] mod tests;`).
fn is_test_file(relative: &str) -> bool {
    relative.ends_with("/tests.rs") || relative == "tests.rs"
}

/// Lines before the first `#[cfg(test)]`; none for a file of tests.
fn production_lines(relative: &str, text: &str) -> usize {
    if is_test_file(relative) {
        return 0;
    }
    text.lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .count()
}

/// `text` with comments, string, byte and char literals replaced by spaces (newlines
/// kept), so that only code remains.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"..", r#".."#, br".."
            i += hashes.0;
            let closing: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes.1))
                .collect();
            let closing: Vec<char> = closing.chars().collect();
            while i < chars.len() && !chars[i..].starts_with(&closing) {
                blank(&mut out, chars[i]);
                i += 1;
            }
            i += closing.len();
            out.push(' ');
        } else if c == '"' || (c == 'b' && next == Some('"') && !ident_before(&chars, i)) {
            i += if c == 'b' { 2 } else { 1 };
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    blank(&mut out, c);
                }
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' {
            // A char literal ('a', '\n', '\''), or a lifetime ('a), which stays.
            let literal_len = match (next, chars.get(i + 2), chars.get(i + 3)) {
                (Some('\\'), _, _) => chars[i + 2..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map(|end| end + 3),
                (Some(_), Some('\''), _) => Some(3),
                _ => None,
            };
            if let Some(len) = literal_len {
                out.push(' ');
                i += len;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// At a raw string's start: (characters before its text, number of `#`).
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if ident_before(chars, i) {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some((j + hashes + 1 - i, hashes))
}

/// Identifiers and the punctuation paths are made of; everything else as itself.
fn tokenize(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".to_owned());
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            tokens.push(c.to_string());
            i += 1;
        }
    }
    tokens
}

/// Every path in the code: each `use` tree expanded (`use a::{b, c::d}` is `a::b` and
/// `a::c::d`), and each qualified path elsewhere.
fn paths(tokens: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "use" && (i == 0 || tokens[i - 1] != "::") {
            let end = tokens[i..]
                .iter()
                .position(|t| t == ";")
                .map_or(tokens.len(), |p| i + p);
            use_tree(&tokens[i + 1..end], &mut Vec::new(), &mut out);
            i = end;
            continue;
        }
        let is_ident = |t: &str| {
            t.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        };
        if is_ident(&tokens[i])
            && tokens.get(i + 1).is_some_and(|t| t == "::")
            && (i == 0 || tokens[i - 1] != "::")
        {
            let mut path = vec![tokens[i].clone()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|t| t == "::")
                && tokens.get(j + 1).is_some_and(|t| is_ident(t))
            {
                path.push(tokens[j + 1].clone());
                j += 2;
            }
            out.push(path);
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// Expands one `use` tree (the tokens after `use`, before `;`) under `prefix`.
fn use_tree(tokens: &[String], prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix.clone();
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "::" => i += 1,
            "{" => {
                // Split the group's items at its top-level commas.
                let mut depth = 0;
                let mut start = i + 1;
                for j in i + 1..tokens.len() {
                    match tokens[j].as_str() {
                        "{" => depth += 1,
                        "}" if depth == 0 => {
                            use_tree(&tokens[start..j], &mut path.clone(), out);
                            return;
                        }
                        "}" => depth -= 1,
                        "," if depth == 0 => {
                            use_tree(&tokens[start..j], &mut path.clone(), out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                return;
            }
            "as" => break,
            "*" | "self" if !path.is_empty() => break,
            token => {
                path.push(token.to_owned());
                i += 1;
            }
        }
    }
    if !path.is_empty() && path != *prefix {
        out.push(path);
    }
}

/// `path` from the crate root (`crate::...`) when it is relative to the module (`self`,
/// `super`) or names the library from the binary (`tracer::...`); as it is otherwise.
fn resolve(path: &[String], module: &[String], in_binary: bool) -> Vec<String> {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("tracer") if in_binary => {
            let mut resolved = vec!["crate".to_owned()];
            resolved.extend(path[1..].iter().cloned());
            return resolved;
        }
        Some("self") => rest = &path[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => return path.to_vec(),
    }
    let mut resolved = vec!["crate".to_owned()];
    resolved.extend(base);
    resolved.extend(rest.iter().cloned());
    resolved
}

/// libc functions called (`libc::name(`, lower-case: constants and types are upper-case
/// or not followed by a call; `SIGRTMIN()` and the like are safe functions).
fn libc_calls(tokens: &[String]) -> Vec<String> {
    tokens
        .windows(4)
        .filter(|w| {
            w[0] == "libc"
                && w[1] == "::"
                && w[3] == "("
                && w[2].chars().next().is_some_and(char::is_lowercase)
        })
        .map(|w| w[2].clone())
        .collect()
}

#[test]
fn the_scanner_catches_what_the_rules_forbid() {
    let broken = |relative: &str, text: &str| !check(relative, text).is_empty();
    // Impure crates and child processes in the pure layers, however written.
    assert!(broken("render/x.rs", "use std::{fs, process::Command};\n"));
    assert!(broken(
        "analysis/x.rs",
        "fn f() -> u32 { std::process::id() }\n"
    ));
    assert!(broken("model/x.rs", "use tokio::time::sleep;\n"));
    assert!(broken("analysis/x.rs", "#[tokio::test]\nasync fn t() {}\n"));
    assert!(broken("render/x.rs", "use rusqlite as sql;\n"));
    // aya outside kernel/.
    assert!(broken("store/x.rs", "use aya::maps::RingBuf;\n"));
    assert!(!broken("kernel/load/x.rs", "use aya::{Btf, Ebpf};\n"));
    // cli and modes, from where they may not be used.
    assert!(broken("render/x.rs", "use crate::cli::ColorArg;\n"));
    assert!(!broken("modes/x.rs", "use crate::cli::ColorArg;\n"));
    assert!(broken("store/x.rs", "use crate::modes::live;\n"));
    assert!(broken("render/x.rs", "use super::super::modes::run;\n"));
    assert!(!broken("render/deep/x.rs", "use super::super::output;\n"));
    assert!(broken(
        "store/x.rs",
        "use crate::{kernel::sys, modes::{self, live}};\n"
    ));
    assert!(!broken("main.rs", "use tracer::{cli::Cli, modes::live};\n"));
    // unsafe and raw libc calls outside kernel/sys.rs.
    assert!(broken("render/x.rs", "fn f() { unsafe { g() } }\n"));
    assert!(broken(
        "modes/x.rs",
        "fn f() { let _ = libc::kill(1, libc::SIGTERM); }\n"
    ));
    assert!(!broken("modes/x.rs", "const S: i32 = libc::SIGTERM;\n"));
    // Comments and literals are not code.
    let quiet = "// use aya::Ebpf;\n/* unsafe { std::process::exit(1) } */\n\
                 const A: &str = \"tokio::spawn unsafe\";\n\
                 const B: &str = r#\"use std::process;\"#;\n\
                 fn f<'a>(c: char) -> bool { c == '\"' || c == '\\'' }\n";
    assert_eq!(check("analysis/x.rs", quiet), Vec::<String>::new());
    // Tests are not production code.
    assert!(!broken(
        "model/x.rs",
        "fn f() {}\n#[cfg(test)]\nmod tests { fn t() { std::process::id(); } }\n"
    ));
    assert!(!broken("model/tests.rs", "fn t() { unsafe { g() } }\n"));
    // Production code beyond 800 lines, tests not counted.
    let long = "fn f() {}\n".repeat(801);
    assert!(broken("model/x.rs", &long));
    assert!(!broken("model/x.rs", &format!("#[cfg(test)]\n{long}")));
}
