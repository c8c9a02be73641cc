//! `sigwho doctor`: loads everything as the live view and as the recorder would, and
//! prints how each hook and kernel feature went.

use std::io::{self, Write};

use crate::{kernel::doctor, kernel::sys, render};

/// Prints the diagnosis (JSON or text) on stdout; true when sigwho can trace here.
///
/// # Errors
///
/// When stdout cannot be written.
pub fn run(json: bool) -> io::Result<bool> {
    let diagnosis = doctor::diagnose();
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &diagnosis).map_err(io::Error::from)?;
        writeln!(out)?;
    } else {
        let width = sys::stdout_columns().unwrap_or(100);
        render::doctor::write_text(&diagnosis, width, &mut out)?;
    }
    Ok(diagnosis.can_trace)
}
