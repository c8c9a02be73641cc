//! The markdown report: the storm table (and its clean-rounds twin), the hook references'
//! summary, the commands as run, start-up and latency, then the recorder's section.
//! docs/performance.md quotes it and explains its columns.

use std::fmt::Write as _;
use std::time::Duration;

use super::Env;
use super::auditd;
use super::configs::{Kind, Names, Program, Ready, Sink};
use super::load::tally_comms;
use super::machine::machine;
use super::recorder;
use super::references::Floor;
use super::startup::{LATENCY_SIGNALS, LATENCY_SPACING};
use super::storms::{CLEAN_OTHER_LOAD, Results, Sample};
use super::sys::SIGTERM;
use super::tools::Tool;
use super::workloads::{Row, WORKLOADS, Workload};

pub(super) struct Report<'a> {
    pub(super) env: &'a Env<'a>,
    pub(super) rows: &'a [Row],
    pub(super) results: &'a Results,
    pub(super) rounds: u32,
    pub(super) processes: usize,
    pub(super) startup: &'a [Duration],
    pub(super) latency: &'a [Duration],
    pub(super) recorder: &'a recorder::Results,
    pub(super) reproduce: String,
}

impl<'a> Report<'a> {
    pub(super) fn render(&self) -> String {
        let env = self.env;
        let mut md = String::new();
        let w = &mut md;
        let _ = writeln!(w, "## Signal storm: kill() calls/s while tracing\n");
        let _ = writeln!(w, "Reproduce (as root): `{}`\n", self.reproduce);
        let _ = writeln!(w, "{}\n", machine(self.processes));
        let storms: Vec<String> = WORKLOADS
            .iter()
            .map(|workload| {
                let text = workload.describe(env.senders, env.duration);
                match workload.label {
                    Some(label) => format!("Rows \"{label}: ...\": {text}"),
                    None => text,
                }
            })
            .collect();
        let _ = writeln!(
            w,
            "{} Configurations alternate within each of {} round(s); figures are medians over \
             rounds. A row with a target also says \"by round\": the median of its rounds' \
             shares of the same round's untraced rate, and its floor's (verdicts take the \
             medians).\n",
            storms.join(" "),
            self.rounds
        );
        let skipped = self.storm_table(w, &|_| true);
        self.floor_summaries(w, &|_| true);
        self.perf_ceilings(w, &|_| true);
        let samples = || self.results.iter().flatten().flatten();
        let untraced_clean = self
            .rows
            .iter()
            .zip(self.results)
            .filter(|(row, _)| row.kind == Kind::Untraced)
            .all(|(_, result)| {
                result
                    .as_ref()
                    .is_ok_and(|samples| samples.iter().any(Sample::clean))
            });
        if untraced_clean && !samples().all(Sample::clean) {
            let _ = writeln!(
                w,
                "\nThe same over clean rounds only: no other tracer seen running and under {} \
                 other load (each configuration's own clean rounds; a tracer whose output \
                 makes the kernel work that hard has none).\n",
                percent(CLEAN_OTHER_LOAD)
            );
            self.storm_table(w, &Sample::clean);
            self.floor_summaries(w, &Sample::clean);
            self.perf_ceilings(w, &Sample::clean);
        }
        let _ = writeln!(
            w,
            "\n\"time per call\" is each sender's wall-clock time per kill() (senders / rate). \
             \"tracer CPU\" is the tracer's process (median, 100% = one CPU); its eBPF \
             programs run in the senders' context and show as fewer calls instead. \"signals \
             seen\" and \"lost\" add up the rounds in the table; seen + lost short of the \
             calls means signals the tool missed without saying so. \"other load\" is CPU used \
             during the storm by neither the storm's processes nor the tracer's (kernel work \
             for the tracer, such as writing its output, included), with any other tracer \
             found running: in the untraced and sigwho rows much of it means the round \
             competed with something else on the machine.\n"
        );
        if !skipped.is_empty() {
            let _ = writeln!(w, "Skipped:\n");
            for line in &skipped {
                let _ = writeln!(w, "- {line}");
            }
            let _ = writeln!(w);
        }
        self.commands(w);
        self.startup_and_latency(w);
        let details: std::collections::BTreeMap<u32, String> = self
            .results
            .iter()
            .flatten()
            .flatten()
            .filter_map(|s| Some((s.round, s.recorded.as_ref()?.describe())))
            .collect();
        recorder::render(w, self.recorder, &details);
        md
    }

    /// The storm table over the samples `keep` keeps; the reasons of skipped
    /// configurations.
    fn storm_table(&self, w: &mut String, keep: &dyn Fn(&Sample) -> bool) -> Vec<String> {
        let env = self.env;
        let _ = writeln!(
            w,
            "| configuration | kill() calls/s (median) | vs untraced | time per call | each round | tracer CPU | signals seen | lost (per the tool) | other load, each round |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---|---:|---:|---:|---|");
        let pick = |samples: &'a [Sample]| -> Vec<&'a Sample> {
            samples.iter().filter(|s| keep(s)).collect()
        };
        let medians = self.medians(keep);
        let mut skipped = Vec::new();
        for (row, result) in self.rows.iter().zip(self.results) {
            let name = row.name();
            let samples = match result {
                Ok(samples) => pick(samples),
                Err(reason) => {
                    skipped.push(format!("{name}: {reason}"));
                    let _ = writeln!(w, "| {name} | skipped | | | | | | | |");
                    continue;
                }
            };
            if samples.is_empty() {
                let _ = writeln!(w, "| {name} | no clean round | | | | | | | |");
                continue;
            }
            let rate = median(samples.iter().map(|s| s.rate));
            let ratio = self.share_column(&medians, row, rate, keep);
            // Which rounds, when not all of them.
            let partial = samples.len() < self.rounds as usize;
            let each: Vec<String> = samples
                .iter()
                .map(|s| {
                    if partial {
                        format!("{} (round {})", si(s.rate), s.round)
                    } else {
                        si(s.rate)
                    }
                })
                .collect();
            let calls: u64 = samples.iter().map(|s| s.calls).sum();
            let seen = sum(samples.iter().map(|s| s.seen)).map_or("–".to_owned(), |seen| {
                format!(
                    "{:.1}% ({} of {})",
                    100.0 * float(seen) / float(calls.max(1)),
                    si(float(seen)),
                    si(float(calls))
                )
            });
            let lost =
                sum(samples.iter().map(|s| s.lost)).map_or("–".to_owned(), |l| si(float(l)));
            let tracer_cpu = if samples.iter().any(|s| s.tracer_cpu.is_some()) {
                percent(median(samples.iter().filter_map(|s| s.tracer_cpu)))
            } else {
                "–".to_owned()
            };
            let others: Vec<String> = samples
                .iter()
                .map(|s| {
                    let load = s.others_cpu.map_or("?".to_owned(), percent);
                    if s.foreign.is_empty() {
                        load
                    } else {
                        format!("{load} (also running: {})", tally_comms(&s.foreign))
                    }
                })
                .collect();
            let _ = writeln!(
                w,
                "| {name} | {} | {ratio} | {:.0} ns | {} | {tracer_cpu} | {seen} | {lost} | {} |",
                si(rate),
                f64::from(env.senders) / rate.max(1.0) * 1e9,
                each.join(", "),
                others.join(", ")
            );
        }
        skipped
    }

    /// The "vs untraced" column of `row` (median `rate`): its share of untraced, the
    /// verdict against its target naming its floor, and the shares by round.
    fn share_column(
        &self,
        medians: &[Option<f64>],
        row: &Row,
        rate: f64,
        keep: &dyn Fn(&Sample) -> bool,
    ) -> String {
        let baseline = self.rate_in(medians, row.workload, Kind::Untraced);
        // The recorder's own floor where the workload has it.
        let floor = match row.kind {
            Kind::Recorder => self
                .rate_in(medians, row.workload, Kind::CountOnly)
                .map(|rate| (COUNTING_FLOOR, Kind::CountOnly, rate)),
            _ => None,
        }
        .or_else(|| {
            self.rate_in(medians, row.workload, Kind::HooksOnly)
                .map(|rate| (HOOKS_FLOOR, Kind::HooksOnly, rate))
        });
        let mut ratio = match baseline {
            Some(base) if base > 0.0 => verdict(
                rate / base,
                row.config.target,
                floor.map(|(name, _, floor)| (name, floor / base)),
            ),
            _ => String::new(),
        };
        if row.config.target.is_some() {
            let paired = |kind| {
                let ratios = self.round_ratios(row.workload, kind, Kind::Untraced, keep);
                (!ratios.is_empty()).then(|| median(ratios.into_iter()))
            };
            ratio.push_str(&paired_shares(
                paired(row.kind),
                floor.and_then(|(name, kind, _)| Some((name, paired(kind)?))),
            ));
        }
        ratio
    }

    /// Median rate of each row over the samples `keep` keeps; None for a skipped row or
    /// one with no such sample.
    fn medians(&self, keep: &dyn Fn(&Sample) -> bool) -> Vec<Option<f64>> {
        self.results
            .iter()
            .map(|result| {
                let rates: Vec<f64> = result
                    .as_ref()
                    .ok()?
                    .iter()
                    .filter(|s| keep(s))
                    .map(|s| s.rate)
                    .collect();
                (!rates.is_empty()).then(|| median(rates.into_iter()))
            })
            .collect()
    }

    /// Where the row of `kind` beside `workload` is in `rows` (and in what is per row).
    fn row_index(&self, workload: &Workload, kind: Kind) -> Option<usize> {
        self.rows
            .iter()
            .position(|row| std::ptr::eq(row.workload, workload) && row.kind == kind)
    }

    /// The median rate (from `medians`) of the row of `kind` beside `workload`.
    fn rate_in(&self, medians: &[Option<f64>], workload: &Workload, kind: Kind) -> Option<f64> {
        medians
            .get(self.row_index(workload, kind)?)
            .copied()
            .flatten()
    }

    /// The samples of the row of `kind` beside `workload`, when it ran.
    fn samples_of(&self, workload: &Workload, kind: Kind) -> Option<&[Sample]> {
        self.results
            .get(self.row_index(workload, kind)?)?
            .as_deref()
            .ok()
    }

    /// Per round, the rate of `kind` ÷ the rate of `other` in the same round (both kept):
    /// the two run within seconds of each other, so a round that the machine made slow
    /// for both does not weigh on the ratio as it does on the medians of each.
    fn round_ratios(
        &self,
        workload: &Workload,
        kind: Kind,
        other: Kind,
        keep: &dyn Fn(&Sample) -> bool,
    ) -> Vec<f64> {
        let (Some(samples), Some(others)) = (
            self.samples_of(workload, kind),
            self.samples_of(workload, other),
        ) else {
            return Vec::new();
        };
        samples
            .iter()
            .filter(|s| keep(s))
            .filter_map(|s| {
                let o = others.iter().find(|o| o.round == s.round && keep(o))?;
                (o.rate > 0.0).then(|| s.rate / o.rate)
            })
            .collect()
    }

    /// Per workload, perf record's own share of untraced and the ceiling it puts on the
    /// issue's "recorder ≥ 1.3 × perf record" target: a recorder that cost nothing would
    /// run at untraced speed, so recorder ÷ perf can be at most 1 ÷ (perf ÷ untraced).
    /// Where that ceiling is under the target, the target cannot be met on this machine
    /// whatever the recorder does, and this says so from the same run's figures.
    fn perf_ceilings(&self, w: &mut String, keep: &dyn Fn(&Sample) -> bool) {
        let medians = self.medians(keep);
        let mut lines = Vec::new();
        for workload in WORKLOADS {
            let rate = |kind| self.rate_in(&medians, workload, kind);
            let (Some(base), Some(perf)) = (rate(Kind::Untraced), rate(Kind::Tool(Tool::Perf)))
            else {
                continue;
            };
            if base <= 0.0 || perf <= 0.0 {
                continue;
            }
            let mut line = perf_ceiling(
                workload.label.unwrap_or("ignored"),
                perf / base,
                rate(Kind::Recorder).map(|recorder| recorder / base),
                rate(Kind::CountOnly).map(|floor| floor / base),
            );
            line.push_str(&paired_rounds(&self.round_ratios(
                workload,
                Kind::Recorder,
                Kind::Tool(Tool::Perf),
                keep,
            )));
            lines.push(line);
        }
        if lines.is_empty() {
            return;
        }
        let _ = writeln!(
            w,
            "
Recorder ÷ perf record against the target ≥ {PERF_TARGET:.1}: perf record's own \
             share of untraced bounds it (a free recorder runs at untraced speed, so recorder \
             ÷ perf ≤ 1 ÷ that share).\n"
        );
        for line in lines {
            let _ = writeln!(w, "- {line}");
        }
    }

    /// The summary of the hook references of each workload that has them.
    fn floor_summaries(&self, w: &mut String, keep: &dyn Fn(&Sample) -> bool) {
        let medians = self.medians(keep);
        for workload in WORKLOADS {
            Self::floor_summary(w, workload, &|kind| self.rate_in(&medians, workload, kind));
        }
    }

    /// sigwho's floor beside its own rows, and the bpftrace references beside both.
    fn floor_summary(w: &mut String, workload: &Workload, rate_of: &dyn Fn(Kind) -> Option<f64>) {
        let Some(base) = rate_of(Kind::Untraced).filter(|&b| b > 0.0) else {
            return;
        };
        let share = |kind| rate_of(kind).map(|rate| rate / base);
        let label = workload
            .label
            .map_or(String::new(), |label| format!("{label}: "));
        let mut text = String::new();
        if let Some(floor) = share(Kind::HooksOnly).filter(|&f| f > 0.0) {
            let above: Vec<String> = [
                (Kind::Filtered, "the filtered view"),
                (Kind::Recorder, "the recorder"),
                (Kind::SigwhoJson, "--json on the victim"),
            ]
            .into_iter()
            .filter_map(|(kind, name)| {
                let of = share(kind)?;
                Some(format!("{name} {of:.2} ({:.2} of the floor)", of / floor))
            })
            .collect();
            let _ = write!(
                text,
                "Floor (sigwho's hooks attached as its views attach them, every program \
                 returning at once): {floor:.2} of untraced, what this kernel charges for \
                 calling them, which no sigwho row can beat; {}.",
                above.join(", ")
            );
        }
        if let Some(counting) = share(Kind::CountOnly).filter(|&f| f > 0.0) {
            let recorder = share(Kind::Recorder).map_or(String::new(), |of| {
                format!("; the recorder {of:.2} ({:.2} of it)", of / counting)
            });
            let _ = write!(
                text,
                "{}Counting floor (the same hooks, `signal_generate` counting each signal in \
                 a per-CPU hash under issue 15's key and doing nothing else): {counting:.2} of \
                 untraced, the least in-kernel aggregation costs here{recorder}.",
                if text.is_empty() { "" } else { " " },
            );
        }
        let references: Vec<String> = [Floor::SignalGenerate, Floor::WithSyscallExits]
            .into_iter()
            .filter_map(|floor| {
                Some(format!(
                    "{} {:.2}",
                    floor.label(),
                    share(Kind::Reference(floor))?
                ))
            })
            .collect();
        if !references.is_empty() {
            let _ = write!(
                text,
                "{}bpftrace's empty probes on the same hooks (rows marked \"reference, not \
                 sigwho\"): {}. Not sigwho's floor: bpftrace 0.17 compiles an empty tracepoint \
                 probe to `return 1`, so the kernel goes on to build the perf sample of the \
                 event bpftrace opened, and it can hook `signal_generate` only as a classic \
                 (perf) tracepoint, which fills a trace record before the program runs, where \
                 sigwho's BTF tracepoint (tp_btf) calls its program directly.",
                if text.is_empty() { "" } else { " " },
                references.join(", ")
            );
        }
        if !text.is_empty() {
            let _ = writeln!(w, "\n{label}{text}");
        }
    }

    fn commands(&self, w: &mut String) {
        let env = self.env;
        let names = Names {
            victim: "$VICTIM".into(),
            idle: "$IDLE".into(),
            out: "$OUT".into(),
            control: "$CONTROL".into(),
            audit_dir: "$AUDITD_DIR".into(),
        };
        let _ = writeln!(w, "Commands:\n");
        for workload in WORKLOADS {
            let storm = workload.storm_args(env.senders, env.duration, "$PIDFILE");
            let _ = write!(
                w,
                "- storm{}: `sigwho-storm {}`, then a line on its stdin once the tracer is ready",
                workload
                    .label
                    .map_or(String::new(), |label| format!(" ({label})")),
                quote_all(&storm)
            );
            if let Some(command) = workload.background {
                let _ = write!(w, "; meanwhile `sh -c 'while ...; do {command}; done'`");
            }
            let _ = writeln!(w);
        }
        let mut shown: Vec<Kind> = Vec::new();
        for row in self.rows {
            // Each configuration once, however many workloads it runs beside.
            if shown.contains(&row.kind) {
                continue;
            }
            shown.push(row.kind);
            let config = &row.config;
            let Some(tracer) = &config.tracer else {
                continue;
            };
            let program = match tracer.program {
                Program::Sigwho => "sigwho",
                Program::Tool(tool) => tool.program(),
            };
            let redirect = match tracer.stdout {
                Sink::Null => "> /dev/null",
                Sink::File => "> $OUT",
            };
            let ready = match tracer.ready {
                Ready::Stderr(prefix) => format!("ready at the `{prefix}` line on stderr"),
                Ready::PerfControl => {
                    "ready at \"Events enabled\" on stderr after `enable` on $CONTROL".to_owned()
                }
                Ready::ProbeSignal => {
                    "ready when a SIGWINCH sent to $IDLE shows up in $OUT".to_owned()
                }
                Ready::AuditRule => format!(
                    "with $AUDITD_DIR/auditd.conf logging to $OUT (every disk action IGNORE); \
                     once it has registered, `auditctl -a always,exit -F arch=b64 -S \
                     kill,tkill,tgkill -k {}`, ready when a SIGWINCH sent to $IDLE shows up \
                     in $OUT; the rule is deleted before it stops",
                    auditd::KEY
                ),
            };
            let words: Vec<String> = tracer
                .env
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .chain(std::iter::once(program.to_owned()))
                .chain((tracer.args)(&names))
                .collect();
            let stop = match tracer.program {
                Program::Tool(tool) if tool.stop_signal() == SIGTERM => "SIGTERM",
                _ => "SIGINT",
            };
            let _ = writeln!(
                w,
                "- {}: `{} {redirect}`, {ready}; stopped with {stop}",
                config.name,
                quote_all(&words)
            );
        }
        let _ = writeln!(
            w,
            "\n$VICTIM is the storm's victim, $IDLE a `sleep infinity` the bench started, $OUT \
             a scratch file under target/bench/run (deleted once counted).\n"
        );
        let _ = writeln!(w, "Tools:\n");
        let _ = writeln!(w, "- sigwho: {}", env.bins.sigwho.display());
        for tool in Tool::ALL {
            match env.tools.get(tool) {
                Ok((path, version)) => {
                    let _ = writeln!(w, "- {}: {} ({version})", tool.program(), path.display());
                }
                Err(reason) => {
                    let _ = writeln!(w, "- {}: not available: {reason}", tool.program());
                }
            }
        }
        let _ = writeln!(w);
    }

    fn startup_and_latency(&self, w: &mut String) {
        let _ = writeln!(w, "## sigwho start-up and live-view latency\n");
        let _ = writeln!(w, "| measurement | median | max | runs |");
        let _ = writeln!(w, "|---|---:|---:|---|");
        let row = |w: &mut String, what: &str, times: &[Duration]| {
            let ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e3).collect();
            let max = ms.iter().copied().fold(0.0, f64::max);
            let each: Vec<String> = ms.iter().map(|m| format!("{m:.1}")).collect();
            let _ = writeln!(
                w,
                "| {what} | {:.1} ms | {max:.1} ms | {} |",
                median(ms.iter().copied()),
                each.join(", ")
            );
        };
        row(
            w,
            &format!(
                "start-up: exec to `sigwho: tracing` ({} processes on the machine)",
                self.processes
            ),
            self.startup,
        );
        row(
            w,
            &format!(
                "live view: kill() to the JSON line on stdout ({LATENCY_SIGNALS} SIGUSR1, {} ms apart)",
                LATENCY_SPACING.as_millis()
            ),
            self.latency,
        );
        let _ = writeln!(w);
    }
}

/// A floor a missed target is held against: its name in the report and its share of
/// untraced.
type NamedFloor = (&'static str, f64);

/// The name of sigwho's hooks' floor (every program returning at once) in verdicts.
const HOOKS_FLOOR: &str = "floor";
/// The name of the recorder's floor (its hooks, `signal_generate` only counting) in
/// verdicts.
const COUNTING_FLOOR: &str = "counting floor";

/// A row's share of untraced (`ratio`), against its target when it has one; a missed
/// target names the floor under the row in the same workload (sigwho's hooks with every
/// program returning at once, or for the recorder the same with `signal_generate`
/// counting) and, when the floor itself is under the target, says the target cannot be
/// met on this kernel.
fn verdict(ratio: f64, target: Option<f64>, floor: Option<NamedFloor>) -> String {
    let Some(target) = target else {
        return format!("{ratio:.2}");
    };
    if ratio >= target {
        return format!("{ratio:.2} (target ≥ {target:.2}: met)");
    }
    match floor {
        Some((name, floor)) if floor < target => format!(
            "{ratio:.2} (target ≥ {target:.2}: missed; {name} {floor:.2}: unreachable here)"
        ),
        Some((name, floor)) => {
            format!("{ratio:.2} (target ≥ {target:.2}: missed; {name} {floor:.2})")
        }
        None => format!("{ratio:.2} (target ≥ {target:.2}: missed)"),
    }
}

/// Issue 15's target for the recorder against perf record (a ratio of rates).
const PERF_TARGET: f64 = 1.3;

/// One workload's line of [`Report::perf_ceilings`]: `perf`, `recorder` and
/// `counting_floor` (the recorder's floor) are shares of untraced. A miss names the
/// floor against perf, unreachable when that is under the target too.
fn perf_ceiling(
    label: &str,
    perf: f64,
    recorder: Option<f64>,
    counting_floor: Option<f64>,
) -> String {
    let ceiling = 1.0 / perf;
    let reachable = if ceiling >= PERF_TARGET {
        "reachable"
    } else {
        "unreachable by measurement"
    };
    let recorder = recorder.map_or(String::new(), |r| {
        let vs = r / perf;
        let outcome = match counting_floor {
            _ if vs >= PERF_TARGET => "met".to_owned(),
            Some(floor) => {
                let floor_vs = floor / perf;
                format!(
                    "missed; {COUNTING_FLOOR} {floor:.2} of untraced = {floor_vs:.2} × perf{}",
                    if floor_vs < PERF_TARGET {
                        ": unreachable here"
                    } else {
                        ""
                    }
                )
            }
            None => "missed".to_owned(),
        };
        format!("; recorder {r:.2} of untraced = {vs:.2} × perf ({outcome})")
    });
    format!(
        "{label}: perf record {perf:.2} of untraced, so recorder ÷ perf ≤ {ceiling:.2} \
         (target {PERF_TARGET:.1}: {reachable}){recorder}"
    )
}

/// The tail of a [`perf_ceiling`] line: recorder ÷ perf round by round (each round's
/// two rates, measured seconds apart) and their median; empty without a paired round.
fn paired_rounds(ratios: &[f64]) -> String {
    if ratios.is_empty() {
        return String::new();
    }
    let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    format!(
        "; round by round, recorder ÷ perf of the same round: {} (median {:.2})",
        each.join(", "),
        median(ratios.iter().copied())
    )
}

/// The clause a row with a target gets after its verdict: its share of untraced and its
/// floor's, each the median of its rounds' shares of the same round's untraced rate.
/// The verdict takes the median rates of each row; where a few rounds of the untraced
/// storm ran fast (the group storm's rounds varied by a fifth in session 12) this says
/// what the rounds themselves measured. Informative only: the verdict is not changed.
fn paired_shares(share: Option<f64>, floor: Option<NamedFloor>) -> String {
    let Some(share) = share else {
        return String::new();
    };
    match floor {
        Some((name, floor)) => {
            format!("; by round {share:.2}, {name} {floor:.2}")
        }
        None => format!("; by round {share:.2}"),
    }
}

/// A count (signals, CPU ticks, bytes) as a float, for rates, shares and display.
#[expect(
    clippy::cast_precision_loss,
    reason = "the counts here stay far below 2^53, under which f64 holds every integer"
)]
pub(super) fn float(count: u64) -> f64 {
    count as f64
}

/// A share of one CPU: 0.45 -> "45%".
pub(super) fn percent(cpus: f64) -> String {
    format!("{:.0}%", cpus * 100.0)
}

pub(super) fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// None when no sample has a value.
pub(super) fn sum(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.fold(None, |acc, v| match (acc, v) {
        (acc, None) => acc,
        (None, Some(v)) => Some(v),
        (Some(acc), Some(v)) => Some(acc + v),
    })
}

/// 5.90 M, 812 k, 12.
pub(super) fn si(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.0} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

/// Words as a shell would need them.
pub(super) fn quote_all(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,$+".contains(c));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::super::Bins;
    use super::super::tools::Tools;
    use super::super::workloads::rows;
    use super::*;

    #[test]
    fn the_storm_table_has_a_line_per_row_in_order() {
        let bins = Bins {
            sigwho: PathBuf::from("sigwho"),
            storm: PathBuf::from("sigwho-storm"),
            testproc: PathBuf::from("sigwho-testproc"),
        };
        let tools = Tools {
            found: HashMap::new(),
        };
        let env = Env {
            bins: &bins,
            tools: &tools,
            scratch: PathBuf::new(),
            idle: 1,
            senders: 2,
            duration: 2.0,
        };
        let rows = rows();
        let results: Results = (1..=u32::try_from(rows.len()).unwrap())
            .map(|i| {
                Ok(vec![Sample {
                    round: 1,
                    rate: 1e6 * f64::from(i),
                    calls: 2_000_000,
                    seen: None,
                    lost: None,
                    tracer_cpu: None,
                    others_cpu: Some(0.01),
                    foreign: Vec::new(),
                    recorded: None,
                }])
            })
            .collect();
        let recorder = recorder::Results {
            sustained: Err("not run".into()),
            fork_exec: Err("not run".into()),
            idle: Err("not run".into()),
        };
        let report = Report {
            env: &env,
            rows: &rows,
            results: &results,
            rounds: 1,
            processes: 100,
            startup: &[],
            latency: &[],
            recorder: &recorder,
            reproduce: "cargo xtask bench --quick".into(),
        }
        .render();
        let table: Vec<&str> = report
            .lines()
            .skip_while(|line| !line.starts_with("| configuration |"))
            .take_while(|line| line.starts_with('|'))
            .collect();
        assert_eq!(table.len(), 2 + rows.len());
        for (line, row) in table[2..].iter().zip(&rows) {
            assert!(line.starts_with(&format!("| {} | ", row.name())), "{line}");
        }
        assert!(table[2].starts_with("| untraced | 1.00 M | 1.00 | 2000 ns |"));
        assert!(table[3].contains("| 2.00 (target ≥ 0.85: met); by round 2.00, floor 3.00 |"));
        // The first workload's rows run 1 M, 2 M, ... in the order of Kind::ALL: perf
        // record is the tenth, the recorder the ninth, its counting floor the fourth.
        assert!(
            report.contains(
                "- ignored: perf record 10.00 of untraced, so recorder ÷ perf ≤ 0.10 (target \
                 1.3: unreachable by measurement); recorder 9.00 of untraced = 0.90 × perf \
                 (missed; counting floor 4.00 of untraced = 0.40 × perf: unreachable here); \
                 round by round, recorder ÷ perf of the same round: 0.90 (median 0.90)"
            ),
            "{report}"
        );
        assert!(report.contains(
            "2 senders call `kill(victim, SIGUSR1)` flat out for 2 s; the victim ignores the \
             signal, so each call runs the kernel's send path (including the \
             `signal:signal_generate` tracepoint) and is dropped there. Rows \"handled: ...\": \
             2 senders call `kill(victim, SIGUSR1)` flat out for 2 s; the victim runs an \
             empty handler"
        ));
        assert!(report.contains(
            "Configurations alternate within each of 1 round(s); figures are medians over \
             rounds. A row with a target also says \"by round\""
        ));
    }

    #[test]
    fn a_missed_target_names_its_floor() {
        assert_eq!(verdict(0.5, None, Some((HOOKS_FLOOR, 0.9))), "0.50");
        assert_eq!(
            verdict(0.86, Some(0.85), Some((HOOKS_FLOOR, 0.9))),
            "0.86 (target ≥ 0.85: met)"
        );
        assert_eq!(
            verdict(0.82, Some(0.85), Some((HOOKS_FLOOR, 0.9))),
            "0.82 (target ≥ 0.85: missed; floor 0.90)"
        );
        assert_eq!(
            verdict(0.82, Some(0.85), Some((HOOKS_FLOOR, 0.84))),
            "0.82 (target ≥ 0.85: missed; floor 0.84: unreachable here)"
        );
        assert_eq!(
            verdict(0.6, Some(0.7), Some((COUNTING_FLOOR, 0.65))),
            "0.60 (target ≥ 0.70: missed; counting floor 0.65: unreachable here)"
        );
        assert_eq!(
            verdict(0.6, Some(0.7), None),
            "0.60 (target ≥ 0.70: missed)"
        );
    }

    #[test]
    fn perf_ceiling_says_where_the_target_is_unreachable() {
        assert_eq!(
            perf_ceiling("handled", 0.5, Some(0.7), Some(0.6)),
            "handled: perf record 0.50 of untraced, so recorder ÷ perf ≤ 2.00 (target 1.3: \
             reachable); recorder 0.70 of untraced = 1.40 × perf (met)"
        );
        assert_eq!(
            perf_ceiling("group", 0.5, Some(0.6), Some(0.6)),
            "group: perf record 0.50 of untraced, so recorder ÷ perf ≤ 2.00 (target 1.3: \
             reachable); recorder 0.60 of untraced = 1.20 × perf (missed; counting floor \
             0.60 of untraced = 1.20 × perf: unreachable here)"
        );
        assert_eq!(
            perf_ceiling("group", 0.5, Some(0.6), Some(0.7)),
            "group: perf record 0.50 of untraced, so recorder ÷ perf ≤ 2.00 (target 1.3: \
             reachable); recorder 0.60 of untraced = 1.20 × perf (missed; counting floor \
             0.70 of untraced = 1.40 × perf)"
        );
        assert_eq!(
            perf_ceiling("tgkill", 0.8, None, None),
            "tgkill: perf record 0.80 of untraced, so recorder ÷ perf ≤ 1.25 (target 1.3: \
             unreachable by measurement)"
        );
    }

    #[test]
    fn paired_shares_follow_the_verdict() {
        assert_eq!(paired_shares(None, Some((COUNTING_FLOOR, 0.64))), "");
        assert_eq!(paired_shares(Some(0.594), None), "; by round 0.59");
        assert_eq!(
            paired_shares(Some(0.594), Some((COUNTING_FLOOR, 0.641))),
            "; by round 0.59, counting floor 0.64"
        );
    }

    #[test]
    fn paired_rounds_lists_each_round_and_the_median() {
        assert_eq!(paired_rounds(&[]), "");
        assert_eq!(
            paired_rounds(&[1.25, 1.5, 1.125]),
            "; round by round, recorder ÷ perf of the same round: 1.25, 1.50, 1.12 (median \
             1.25)"
        );
    }

    #[test]
    #[expect(
        clippy::float_cmp,
        reason = "the median of a few small integers is exact"
    )]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            quote_all(&["-e".into(), "a { b; }".into(), "fifo:$X".into()]),
            "-e 'a { b; }' fifo:$X"
        );
    }
}
