//! The Markdown report of a run: one table line per path and service count, then the
//! per-count notes (load averages, the daemon's CPU time, BPF program cost).

use std::{fmt::Write, time::Duration};

use crate::{
    rounds::{RatioSummary, Spread, Verdict},
    run::{Competitor, CountResult, PathKind, PathResult},
};

/// Issue #3's target: Waggle's ClusterIP at >= 0.95x the new-connection rate of direct
/// pod IP, read from the same-round ratios.
pub const TARGET_RATIO: f64 = 0.95;

/// The table and the notes under it.
pub fn table(results: &[CountResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| services | path | new conn/s: median (min–max) | vs direct (medians) | vs same-round baseline: median [95% CI] (IQR) | steal: median (max) | wrk p50 | wrk p99 | rr p50 (µs) | rr p99 (µs) | errors | SYN retrans/PAWS | rules/maps programmed in |"
    );
    let _ = writeln!(
        out,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for count in results {
        let direct = count
            .paths
            .iter()
            .find(|p| p.path == PathKind::Direct)
            .and_then(rate)
            .map_or(f64::NAN, |s| s.median);
        for path in &count.paths {
            let _ = writeln!(out, "{}", line(path, direct));
        }
    }
    let _ = writeln!(out);
    for count in results {
        let _ = writeln!(out, "{}", notes(count));
    }
    out
}

fn rate(path: &PathResult) -> Option<Spread> {
    Spread::of(path.windows.iter().map(|w| w.wrk.requests_per_sec))
}

fn median_duration(values: impl IntoIterator<Item = Duration>) -> Duration {
    Spread::of(values.into_iter().map(|d| d.as_secs_f64()))
        .map_or(Duration::ZERO, |s| Duration::from_secs_f64(s.median))
}

fn line(path: &PathResult, direct: f64) -> String {
    let rate = rate(path);
    let rate_cell = rate.map_or("-".into(), |s| {
        format!("{:.0} ({:.0}–{:.0})", s.median, s.min, s.max)
    });
    let ratio = rate.map_or("-".into(), |s| format!("{:.2}x", s.median / direct));
    let paired = match (path.baseline, RatioSummary::of(path.paired.iter().copied())) {
        (Some(baseline), Some(s)) => format!(
            "{:.2}x [{:.2}–{:.2}] ({:.2}–{:.2}) of {}",
            s.median,
            s.ci_low,
            s.ci_high,
            s.q1,
            s.q3,
            short(baseline)
        ),
        _ => String::new(),
    };
    let steal = Spread::of(path.windows.iter().map(|w| w.steal * 100.0))
        .map_or("-".into(), |s| format!("{:.1}% ({:.1}%)", s.median, s.max));
    format!(
        "| {} | {} | {} | {} | {} | {} | {:.0?} | {:.0?} | {:.1} | {:.1} | {} | {} | {} |",
        path.services,
        path.path.label(),
        rate_cell,
        ratio,
        paired,
        steal,
        median_duration(path.windows.iter().map(|w| w.wrk.latency_p50)),
        median_duration(path.windows.iter().map(|w| w.wrk.latency_p99)),
        path.latency.p50_us,
        path.latency.p99_us,
        path.windows
            .iter()
            .map(|w| w.wrk.socket_errors + w.wrk.non_2xx)
            .sum::<u64>(),
        path.windows.iter().map(|w| w.syn_trouble).sum::<u64>(),
        path.program_time
            .map(|d| format!("{d:.0?}"))
            .unwrap_or_default(),
    )
}

fn short(path: PathKind) -> &'static str {
    match path {
        PathKind::Direct => "direct",
        PathKind::DirectUnder(_) => "direct (rules loaded)",
        PathKind::ClusterIp(_) => "ClusterIP",
    }
}

fn notes(count: &CountResult) -> String {
    let mut out = format!(
        "- {} services: load average at the start of each phase:",
        count.services
    );
    for (phase, load) in &count.load {
        let _ = write!(out, " {phase} `{load}`;");
    }
    let _ = write!(
        out,
        " `waggle proxy` used {:.0?} of CPU during its phase's {} measured windows;",
        count.daemon_cpu, count.daemon_windows
    );
    if count.per_packet_programs.is_empty() {
        out.push_str(" no tc/XDP program in the client, server or node namespace.");
    } else {
        let _ = write!(
            out,
            " tc/XDP programs on the path: {}.",
            count.per_packet_programs.join(", ")
        );
    }
    if let Some(verdict) = target_verdict(count) {
        let _ = write!(out, "\n  - {verdict}");
    }
    for cost in &count.bpf {
        let _ = write!(
            out,
            "\n  - BPF statistics, {} ({} connections):",
            cost.path.label(),
            cost.requests
        );
        if cost.programs.is_empty() {
            out.push_str(" no socket-LB program ran.");
        }
        for p in &cost.programs {
            let _ = write!(
                out,
                " `{}` ({}) {} runs, {:.0} ns/run ({:.0}–{:.0});",
                p.name,
                p.attach_type,
                p.runs,
                p.ns_per_run.median,
                p.ns_per_run.min,
                p.ns_per_run.max
            );
        }
    }
    out
}

/// Issue #3's verdict at this count, from the 95% interval of Waggle's same-round
/// ClusterIP/direct ratios; `None` when Waggle was not measured.
fn target_verdict(count: &CountResult) -> Option<String> {
    let path = count
        .paths
        .iter()
        .find(|p| p.path == PathKind::ClusterIp(Competitor::Waggle))?;
    let s = RatioSummary::of(path.paired.iter().copied())?;
    let reading = match s.verdict(TARGET_RATIO) {
        Verdict::Met => "met: the whole interval is at or above it",
        Verdict::Missed => "missed: the whole interval is below it",
        Verdict::Undecided if s.confidence < 0.95 => {
            "not decided by this run: too few rounds for a 95% interval"
        }
        Verdict::Undecided => "not decided by this run: the interval contains it",
    };
    Some(format!(
        "Target ClusterIP via waggle eBPF >= {TARGET_RATIO:.2}x of direct (same-round ratios, {} rounds, median {:.2}x, {:.1}% interval {:.2}–{:.2}): {reading}.",
        s.rounds,
        s.median,
        s.confidence * 100.0,
        s.ci_low,
        s.ci_high
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        load::{SockperfReport, WrkReport},
        run::{Competitor, Window},
    };

    fn path(
        path: PathKind,
        rates: &[f64],
        baseline: Option<PathKind>,
        paired: &[f64],
    ) -> PathResult {
        PathResult {
            services: 0,
            path,
            windows: rates
                .iter()
                .map(|&r| Window {
                    wrk: WrkReport {
                        requests_per_sec: r,
                        latency_p50: Duration::from_micros(500),
                        ..Default::default()
                    },
                    syn_trouble: 0,
                    steal: 0.01,
                })
                .collect(),
            baseline,
            paired: paired.to_vec(),
            latency: SockperfReport {
                p50_us: 60.0,
                p99_us: 90.0,
            },
            program_time: None,
        }
    }

    #[test]
    fn ratios_use_medians_and_same_round_pairs() {
        let result = CountResult {
            services: 0,
            paths: vec![
                path(PathKind::Direct, &[1000.0, 900.0, 1100.0], None, &[]),
                path(
                    PathKind::ClusterIp(Competitor::Waggle),
                    &[950.0, 880.0, 1000.0],
                    Some(PathKind::Direct),
                    &[0.95, 0.98, 0.91],
                ),
            ],
            bpf: vec![],
            daemon_cpu: Duration::from_millis(3),
            daemon_windows: 6,
            per_packet_programs: vec![],
            load: vec![("waggle".into(), "0.50 0.40 0.30 1/90 1".into())],
        };
        let text = table(&[result]);
        assert!(
            text.contains("| 0 | direct pod IP | 1000 (900–1100) | 1.00x |  |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| 950 (880–1000) | 0.95x | 0.95x [0.91–0.98] (0.93–0.96) of direct | 1.0% (1.0%) |"
            ),
            "{text}"
        );
        assert!(
            text.contains("3 rounds, median 0.95x, 75.0% interval 0.91–0.98): not decided by this run: too few rounds"),
            "{text}"
        );
        assert!(text.contains("waggle `0.50 0.40 0.30 1/90 1`"), "{text}");
        assert!(text.contains("no tc/XDP program"), "{text}");
    }
}
