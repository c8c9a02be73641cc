//! Report output for a terminal, a pipe or a file, one write per pass.

use std::io::Write;

use crate::{
    analysis::report::Report,
    render::{color, json, text},
};

/// Report output that ends quietly when the reader goes away (`sigwho ... | head -1`).
pub struct ReportWriter<W: Write> {
    out: W,
    json: bool,
    /// Reports of the current pass, written out together by [`ReportWriter::flush`]:
    /// one write per pass instead of one per report.
    pending: Vec<u8>,
    pub closed: bool,
}

impl<W: Write> ReportWriter<W> {
    pub fn new(out: W, json: bool) -> Self {
        Self {
            out,
            json,
            pending: Vec::new(),
            closed: false,
        }
    }

    /// Queues a report; call [`ReportWriter::flush`] at the end of the pass.
    pub fn emit(&mut self, report: &Report) {
        if self.closed {
            return;
        }
        if self.json {
            self.pending
                .extend_from_slice(json::report(report).as_bytes());
            self.pending.push(b'\n');
        } else {
            self.pending.extend_from_slice(
                color::for_stdout(&text::render(report, text::width())).as_bytes(),
            );
        }
        // Bounded: a huge pass goes out in pieces.
        if self.pending.len() >= 1 << 20 {
            self.flush();
        }
    }

    /// Writes what the pass queued. A closed output (a reader that went away) marks
    /// the writer closed; the caller ends quietly.
    pub fn flush(&mut self) {
        if self.closed || self.pending.is_empty() {
            self.pending.clear();
            return;
        }
        if self
            .out
            .write_all(&self.pending)
            .and_then(|()| self.out.flush())
            .is_err()
        {
            self.closed = true;
        }
        self.pending.clear();
    }
}
