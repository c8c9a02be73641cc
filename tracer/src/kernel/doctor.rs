//! `sigwho doctor`: how sigwho traces on this kernel, hook by hook.

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
#[must_use]
pub fn diagnose() -> Diagnosis {
    let live = Options {
        filter_targets: true,
        wakeup_bytes: 0,
        // As `sigwho run` and the selectors load them: with the hook that keeps a
        // process watched until it is reaped.
        follow_children: true,
        fold_repeats: false,
        select: tracer_common::Select::default(),
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
