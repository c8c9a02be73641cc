//! `sigwho doctor`'s text: each hook and feature on a line, wrapped to the terminal.

use std::io::{self, Write};

use crate::kernel::{doctor::Diagnosis, probe::Status};

/// Prints `diagnosis` as text for a terminal `width` columns wide.
///
/// # Errors
///
/// When `out` cannot be written.
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::probe::Feature;

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
