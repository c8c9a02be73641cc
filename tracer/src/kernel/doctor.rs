//! `sigwho doctor`: how sigwho traces on this kernel, hook by hook.

use std::io::{self, Write};

use serde::Serialize;

use crate::error::chain;
use crate::kernel::load::{Options, Tracer};
use crate::kernel::probe::{self, Feature, Status};

/// What `sigwho doctor --json` prints (docs/json-schema.md, "doctor").
#[derive(Debug, Serialize)]
pub struct Diagnosis {
    /// `uname -r`.
    pub kernel: String,
    pub arch: &'static str,
    /// Whether sigwho can trace signals here (its programs load and attach).
    pub can_trace: bool,
    /// Why it cannot, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub features: Vec<Feature>,
}

/// Loads and attaches every program twice, as the live view (filtering on no process,
/// so nothing is reported) and as the recorder (every signal, storms folded in the
/// kernel) configure them: the verifier sees different code in each. Notes how each
/// hook went, the worse of the two where they differ, and detaches.
pub fn diagnose() -> Diagnosis {
    let live = Options {
        filter_targets: true,
        wakeup_bytes: 0,
        follow_children: false,
        fold_repeats: false,
    };
    let recorder = Options {
        filter_targets: false,
        fold_repeats: true,
        ..live
    };
    let mut features = Vec::new();
    let mut error = None;
    for options in [live, recorder] {
        let mut noted = Vec::new();
        if let Err(failure) = Tracer::load_noting(&options, &mut noted) {
            error.get_or_insert_with(|| chain(&failure));
        }
        merge(&mut features, noted);
        if error.is_some() {
            break;
        }
    }
    Diagnosis {
        kernel: probe::kernel_release(),
        arch: std::env::consts::ARCH,
        can_trace: error.is_none(),
        error,
        features,
    }
}

/// Adds `noted` to `features`: a feature already there is replaced when `noted` says
/// worse of it.
fn merge(features: &mut Vec<Feature>, noted: Vec<Feature>) {
    let rank = |status: Status| match status {
        Status::Used => 0,
        Status::Fallback => 1,
        Status::Missing => 2,
    };
    for feature in noted {
        match features.iter_mut().find(|f| f.name == feature.name) {
            Some(known) if rank(feature.status) > rank(known.status) => *known = feature,
            Some(_) => {}
            None => features.push(feature),
        }
    }
}

/// Prints `diagnosis` as text for a terminal `width` columns wide.
pub fn write_text(diagnosis: &Diagnosis, width: usize, mut out: impl Write) -> io::Result<()> {
    writeln!(
        out,
        "sigwho doctor: Linux {} ({})",
        diagnosis.kernel, diagnosis.arch
    )?;
    let name_width = diagnosis
        .features
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(0);
    let indent = name_width + 2 + "fallback".len() + 2;
    for feature in &diagnosis.features {
        let head = format!(
            "{:name_width$}  {:8}  ",
            feature.name,
            feature.status.to_string()
        );
        write_wrapped(&mut out, &head, indent, &feature.detail, width)?;
        if !feature.cost.is_empty() {
            write_wrapped(
                &mut out,
                &" ".repeat(indent),
                indent,
                &format!("costs: {}", feature.cost),
                width,
            )?;
        }
    }
    let count = |status: Status| {
        diagnosis
            .features
            .iter()
            .filter(|f| f.status == status)
            .count()
    };
    let (fallbacks, missing) = (count(Status::Fallback), count(Status::Missing));
    match &diagnosis.error {
        None => writeln!(
            out,
            "sigwho can trace on this kernel: {fallbacks} fallback{}, {missing} missing.",
            plural(fallbacks)
        ),
        Some(error) => write_wrapped(
            &mut out,
            "sigwho cannot trace on this kernel: ",
            2,
            error,
            width,
        ),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Writes `head` then `text`, words wrapped at `width` with later lines indented by
/// `indent` (a word longer than a line stands alone).
fn write_wrapped(
    out: &mut impl Write,
    head: &str,
    indent: usize,
    text: &str,
    width: usize,
) -> io::Result<()> {
    let mut line = head.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > width {
            writeln!(out, "{}", line.trim_end())?;
            line = " ".repeat(indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    writeln!(out, "{}", line.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fits_the_width_and_sums_up() {
        let diagnosis = Diagnosis {
            kernel: "5.10.0-43-cloud-amd64".to_owned(),
            arch: "x86_64",
            can_trace: true,
            error: None,
            features: vec![
                Feature::used(
                    "tp_btf",
                    "signal:signal_generate, sched:sched_process_{fork,exec,exit}",
                ),
                Feature::fallback(
                    "task_pt_regs",
                    "no bpf_task_pt_regs() (Linux 5.15): requests from syscalls:sys_enter_* tracepoints",
                    "every syscall on the machine takes the tracing slow path while sigwho runs",
                ),
            ],
        };
        let mut out = Vec::new();
        write_text(&diagnosis, 60, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.chars().count() <= 60), "{text}");
        assert!(
            text.contains("task_pt_regs  fallback  no bpf_task_pt_regs()"),
            "{text}"
        );
        assert!(
            text.ends_with("sigwho can trace on this kernel: 1 fallback, 0 missing.\n"),
            "{text}"
        );
    }
}
