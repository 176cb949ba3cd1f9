//! The benchmark matrix. For each count of extra services, each competitor's rules or
//! programs are loaded once, and its paths are measured in rounds: every round
//! measures each path once, in a balanced order ([`order`]), each window preceded by
//! the same conntrack flush, settle time and warm-up, with the steal time of each
//! window recorded. Rates are reported as the median (and range) over the rounds, and
//! as ratios to a baseline measured in the same round (summarised with quartiles and a
//! confidence interval of the median in the table).
//!
//! | phase    | loaded                  | paths (the first is the round's baseline)          |
//! |----------|-------------------------|----------------------------------------------------|
//! | waggle   | `waggle proxy` running  | direct (client cgroup without hooks), direct (pod cgroup), ClusterIP |
//! | iptables | kube-proxy iptables     | direct, ClusterIP                                   |
//! | nftables | kube-proxy nftables     | direct, ClusterIP                                   |
//!
//! Plain "direct pod IP" is measured in the waggle phase between a client process and
//! a second nginx of the server pod that both run in a cgroup beside the node cgroup:
//! Waggle has nothing but cgroup hooks on this path, so those sockets see nothing
//! loaded, while the other two paths are measured in the same rounds under the same
//! conditions. Netfilter rules tax every flow through the node, so the kube-proxy
//! phases can only pair their ClusterIP with direct traffic under the same rules.

use std::{collections::BTreeMap, net::Ipv4Addr, time::Duration};

use anyhow::Context;

use crate::{
    bpf_stats::{self, StatsEnabled},
    env::{ClientCgroup, HTTP_PORT, Stage, UNATTACHED_HTTP_PORT},
    kube_proxy::{iptables, nftables},
    load::{SockperfReport, WrkReport},
    rounds::{Spread, order},
    services::{self, BenchService},
    steal::CpuTimes,
    waggle::WaggleProxy,
};

/// The ClusterIP of the benchmarked service.
pub const TARGET_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const CLUSTER_CIDR: &str = "10.244.0.0/16";

#[derive(Clone, Debug)]
pub struct Options {
    pub counts: Vec<usize>,
    /// Length of one measured wrk window.
    pub duration: Duration,
    /// Unmeasured wrk run on the same path right before each measured window.
    pub warmup: Duration,
    /// Rounds per phase (every path measured once per round, in [`order`]).
    pub rounds: usize,
    /// One-second windows per path with the BPF statistics on.
    pub stats_windows: usize,
    pub connections: u32,
    pub sockperf_seconds: u32,
    /// Pause after the conntrack flush before each window.
    pub settle: Duration,
    /// Longest a rules load (`iptables-restore`, `nft -f`) may take.
    pub load_limit: Duration,
    /// Which competitors to measure, in this order.
    pub competitors: Vec<Competitor>,
    /// Where to write a system-wide `perf record` of each BPF-statistics window.
    pub perf_dir: Option<std::path::PathBuf>,
    /// How a path is paired with its phase's baseline.
    pub pairing: Pairing,
}

/// How each path's same-round ratio to the baseline is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Pairing {
    /// Every path alone in its own window, in a balanced order within the round.
    Sequential,
    /// The path and the baseline at the same time, in one window, sharing the CPUs:
    /// the machine's slow moments hit both alike, so the ratio is their relative cost
    /// per connection even on a host with bursts of steal time.
    Concurrent,
}

/// One measured path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// Client → pod IP with nothing loaded.
    Direct,
    /// Client → pod IP while the named competitor's rules are loaded.
    DirectUnder(Competitor),
    /// Client → ClusterIP through the competitor.
    ClusterIp(Competitor),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Competitor {
    Waggle,
    Iptables,
    Nftables,
}

impl Competitor {
    pub fn label(self) -> &'static str {
        match self {
            Competitor::Waggle => "waggle eBPF",
            Competitor::Iptables => "kube-proxy iptables",
            Competitor::Nftables => "kube-proxy nftables",
        }
    }
}

impl PathKind {
    pub fn label(self) -> String {
        match self {
            PathKind::Direct => "direct pod IP".into(),
            PathKind::DirectUnder(c) => format!("direct pod IP, {} loaded", c.label()),
            PathKind::ClusterIp(c) => format!("ClusterIP via {}", c.label()),
        }
    }

    /// Destination (unspecified: the server pod's IP), HTTP port and client cgroup.
    fn destination(self) -> (Ipv4Addr, u16, ClientCgroup) {
        match self {
            PathKind::Direct => (
                Ipv4Addr::UNSPECIFIED,
                UNATTACHED_HTTP_PORT,
                ClientCgroup::Unattached,
            ),
            PathKind::DirectUnder(_) => (Ipv4Addr::UNSPECIFIED, HTTP_PORT, ClientCgroup::Pod),
            PathKind::ClusterIp(_) => (TARGET_VIP, HTTP_PORT, ClientCgroup::Pod),
        }
    }
}

/// One measured window.
#[derive(Clone, Debug)]
pub struct Window {
    pub wrk: WrkReport,
    /// SYN retransmits and PAWS rejects in the client and server pods.
    pub syn_trouble: u64,
    /// Share of the machine's CPU time stolen by the hypervisor during the window.
    pub steal: f64,
}

/// Every window of one path at one service count.
#[derive(Clone, Debug)]
pub struct PathResult {
    pub services: usize,
    pub path: PathKind,
    /// One window per round.
    pub windows: Vec<Window>,
    /// The path measured first in the phase, whose same-round rate `paired` divides by.
    pub baseline: Option<PathKind>,
    /// This path's rate over the baseline's, per round.
    pub paired: Vec<f64>,
    pub latency: SockperfReport,
    /// Time to load the rules or program the maps for this service count.
    pub program_time: Option<Duration>,
}

/// Per-connection cost of the socket-LB programs, from the kernel's BPF statistics.
#[derive(Clone, Debug)]
pub struct BpfCost {
    pub path: PathKind,
    /// Connections wrk completed in the windows.
    pub requests: u64,
    /// Per attached program with runs in the windows.
    pub programs: Vec<ProgCost>,
}

/// One program's runs and cost per run over the statistics windows.
#[derive(Clone, Debug)]
pub struct ProgCost {
    pub name: String,
    pub attach_type: String,
    pub runs: u64,
    /// Nanoseconds per run: median (and range) over the windows.
    pub ns_per_run: Spread,
}

/// Everything measured at one service count.
#[derive(Clone, Debug)]
pub struct CountResult {
    pub services: usize,
    pub paths: Vec<PathResult>,
    pub bpf: Vec<BpfCost>,
    /// CPU time the `waggle proxy` process used during the measured windows of its phase.
    pub daemon_cpu: Duration,
    pub daemon_windows: usize,
    /// tc/XDP programs found in the pod and node namespaces during the waggle phase.
    pub per_packet_programs: Vec<String>,
    /// `/proc/loadavg` at the start of each phase.
    pub load: Vec<(String, String)>,
}

pub fn run(options: &Options) -> anyhow::Result<Vec<CountResult>> {
    let stage = Stage::new()?;
    let server_ip = stage.server.address();
    let target = BenchService {
        namespace: "default".into(),
        name: "nginx".into(),
        port_name: "http".into(),
        cluster_ip: TARGET_VIP,
        port: crate::env::HTTP_PORT,
        endpoints: vec![(server_ip, crate::env::HTTP_PORT)],
    };
    let sockperf_target = BenchService {
        port_name: "sockperf".into(),
        port: crate::env::SOCKPERF_PORT,
        endpoints: vec![(server_ip, crate::env::SOCKPERF_PORT)],
        ..target.clone()
    };
    let mut results = Vec::new();
    for &count in &options.counts {
        let mut all = services::with_target(target.clone(), count);
        all.push(sockperf_target.clone());
        eprintln!("bench: {count} extra services");
        results.push(measure_count(&stage, options, count, &all)?);
    }
    Ok(results)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn measure_count(
    stage: &Stage,
    options: &Options,
    count: usize,
    all: &[BenchService],
) -> anyhow::Result<CountResult> {
    let mut result = CountResult {
        services: count,
        paths: Vec::new(),
        bpf: Vec::new(),
        daemon_cpu: Duration::ZERO,
        daemon_windows: 0,
        per_packet_programs: Vec::new(),
        load: Vec::new(),
    };
    for &competitor in &options.competitors {
        result.load.push((competitor.label().to_owned(), loadavg()));
        match competitor {
            Competitor::Waggle => waggle_phase(stage, options, all, &mut result)?,
            Competitor::Iptables => {
                let rules = iptables::restore_input(all, CLUSTER_CIDR);
                let loaded =
                    stage.node_stdin("iptables-restore", &[], &rules, options.load_limit)?;
                rules_phase(stage, options, competitor, loaded, &mut result)?;
            }
            Competitor::Nftables => {
                let rules = nftables::script(all, CLUSTER_CIDR);
                let loaded = stage.node_stdin("nft", &["-f", "-"], &rules, options.load_limit)?;
                rules_phase(stage, options, competitor, loaded, &mut result)?;
            }
        }
    }
    Ok(result)
}

/// Waggle's phase: the daemon runs through all its rounds and the statistics windows.
fn waggle_phase(
    stage: &Stage,
    options: &Options,
    all: &[BenchService],
    result: &mut CountResult,
) -> anyhow::Result<()> {
    let proxy = WaggleProxy::start(stage, all).context("starting waggle proxy")?;
    let programmed = proxy.programmed_in();
    result.per_packet_programs = per_packet_programs(stage)?;
    let cpu_before = proxy.cpu_time()?;
    let paths = [
        PathKind::Direct,
        PathKind::DirectUnder(Competitor::Waggle),
        PathKind::ClusterIp(Competitor::Waggle),
    ];
    let mut phase = measure_phase(stage, options, result.services, &paths)?;
    result.daemon_cpu = proxy.cpu_time()?.saturating_sub(cpu_before);
    result.daemon_windows = match options.pairing {
        Pairing::Sequential => options.rounds * paths.len(),
        Pairing::Concurrent => options.rounds * (paths.len() - 1),
    };
    phase[2].program_time = Some(programmed);
    result.paths.extend(phase);
    result.bpf = bpf_cost(stage, options, &paths)?;
    proxy.stop()
}

/// A kube-proxy phase: the rules are loaded; measure, then remove them.
fn rules_phase(
    stage: &Stage,
    options: &Options,
    competitor: Competitor,
    loaded: Duration,
    result: &mut CountResult,
) -> anyhow::Result<()> {
    let paths = [
        PathKind::DirectUnder(competitor),
        PathKind::ClusterIp(competitor),
    ];
    let measured = measure_phase(stage, options, result.services, &paths);
    // Remove the rules even when a window failed.
    let removed = stage.node_run("nft", &["flush", "ruleset"]);
    let mut phase = measured?;
    removed.with_context(|| format!("removing the {} rules", competitor.label()))?;
    phase[1].program_time = Some(loaded);
    result.paths.extend(phase);
    Ok(())
}

/// `options.rounds` rounds over `paths` (see [`Pairing`]), then one latency run per path.
fn measure_phase(
    stage: &Stage,
    options: &Options,
    services: usize,
    paths: &[PathKind],
) -> anyhow::Result<Vec<PathResult>> {
    let (mut windows, mut paired) = match options.pairing {
        Pairing::Sequential => sequential_rounds(stage, options, paths)?,
        Pairing::Concurrent => concurrent_rounds(stage, options, paths)?,
    };
    let mut out = Vec::new();
    for (index, &path) in paths.iter().enumerate() {
        let (ip, _, cgroup) = resolve(stage, path);
        stage.reset_between_runs(options.settle);
        let latency = stage
            .sockperf(cgroup, ip, options.sockperf_seconds)
            .with_context(|| path.label())?;
        out.push(PathResult {
            services,
            path,
            windows: std::mem::take(&mut windows[index]),
            baseline: (index > 0).then_some(paths[0]),
            paired: std::mem::take(&mut paired[index]),
            latency,
            program_time: None,
        });
    }
    Ok(out)
}

/// Windows per path and same-round ratios per path (none for the baseline).
type Rounds = (Vec<Vec<Window>>, Vec<Vec<f64>>);

/// Every round measures each path alone, in [`order`].
fn sequential_rounds(
    stage: &Stage,
    options: &Options,
    paths: &[PathKind],
) -> anyhow::Result<Rounds> {
    let mut windows: Vec<Vec<Window>> = vec![Vec::new(); paths.len()];
    for round in 0..options.rounds {
        for index in order(paths.len(), round) {
            let window = measure_window(stage, options, paths[index])?;
            report_window(round, paths[index], &window);
            windows[index].push(window);
        }
    }
    let paired = paired_ratios(&windows);
    Ok((windows, paired))
}

/// Every round measures each path other than the baseline together with the
/// baseline, in one shared window; the baseline keeps a window per pairing.
fn concurrent_rounds(
    stage: &Stage,
    options: &Options,
    paths: &[PathKind],
) -> anyhow::Result<Rounds> {
    let mut windows: Vec<Vec<Window>> = vec![Vec::new(); paths.len()];
    let mut paired: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    for round in 0..options.rounds {
        // Alternate which of the pairs goes first, as the sequential order does.
        let mut others: Vec<usize> = (1..paths.len()).collect();
        if round % 2 == 1 {
            others.reverse();
        }
        for index in others {
            let [base, own] = measure_pair(stage, options, [paths[0], paths[index]])?;
            report_window(round, paths[0], &base);
            report_window(round, paths[index], &own);
            paired[index].push(own.wrk.requests_per_sec / base.wrk.requests_per_sec);
            windows[0].push(base);
            windows[index].push(own);
        }
    }
    Ok((windows, paired))
}

fn report_window(round: usize, path: PathKind, window: &Window) {
    eprintln!(
        "bench:   round {:>2} {:<44} {:>9.0} conn/s  steal {:>4.1}%{}",
        round + 1,
        path.label(),
        window.wrk.requests_per_sec,
        window.steal * 100.0,
        if window.syn_trouble > 0 {
            format!("  ({} SYN retransmits/PAWS)", window.syn_trouble)
        } else {
            String::new()
        }
    );
}

/// Per path, its rate over the first path's rate in the same round (none for the first).
fn paired_ratios(windows: &[Vec<Window>]) -> Vec<Vec<f64>> {
    let Some(baseline) = windows.first() else {
        return Vec::new();
    };
    windows
        .iter()
        .enumerate()
        .map(|(index, own)| {
            if index == 0 {
                return Vec::new();
            }
            own.iter()
                .zip(baseline)
                .map(|(w, b)| w.wrk.requests_per_sec / b.wrk.requests_per_sec)
                .collect()
        })
        .collect()
}

fn resolve(stage: &Stage, path: PathKind) -> (Ipv4Addr, u16, ClientCgroup) {
    let (ip, port, cgroup) = path.destination();
    (
        if ip.is_unspecified() {
            stage.server.address()
        } else {
            ip
        },
        port,
        cgroup,
    )
}

/// Conntrack flush, settle, warm-up, then the measured window.
fn measure_window(stage: &Stage, options: &Options, path: PathKind) -> anyhow::Result<Window> {
    let (ip, port, cgroup) = resolve(stage, path);
    let (wrk, steal, syn_trouble) = window(stage, options, &path.label(), |length| {
        stage.wrk(cgroup, ip, port, length, options.connections)
    })?;
    Ok(Window {
        wrk,
        syn_trouble,
        steal,
    })
}

/// As [`measure_window`] for two paths at once (warm-up included). Both windows get
/// the window's steal time and its SYN trouble, which the two runs share.
fn measure_pair(
    stage: &Stage,
    options: &Options,
    paths: [PathKind; 2],
) -> anyhow::Result<[Window; 2]> {
    let targets = paths.map(|path| {
        let (ip, port, cgroup) = resolve(stage, path);
        (cgroup, ip, port)
    });
    let label = format!("{} with {}", paths[1].label(), paths[0].label());
    let (reports, steal, syn_trouble) = window(stage, options, &label, |length| {
        stage.wrk_pair(targets, length, options.connections)
    })?;
    Ok(reports.map(|wrk| Window {
        wrk,
        syn_trouble,
        steal,
    }))
}

/// The hygiene of every measured window: conntrack flush and settle, `load` for the
/// warm-up, then `load` for the window itself, with the steal time and the SYN
/// retransmits/PAWS rejects counted across it.
fn window<T>(
    stage: &Stage,
    options: &Options,
    label: &str,
    load: impl Fn(Duration) -> anyhow::Result<T>,
) -> anyhow::Result<(T, f64, u64)> {
    stage.reset_between_runs(options.settle);
    if !options.warmup.is_zero() {
        load(options.warmup).with_context(|| format!("{label} (warm-up)"))?;
    }
    let before = stage.syn_trouble_counters();
    let cpu = CpuTimes::now();
    let measured = load(options.duration).with_context(|| label.to_owned())?;
    let steal = cpu.steal_until(CpuTimes::now());
    let syn_trouble = stage.syn_trouble_counters().saturating_sub(before);
    Ok((measured, steal, syn_trouble))
}

/// With the kernel's BPF statistics on, `options.stats_windows` one-second windows per path
/// (statistics read from the programs attached to the node cgroup between windows):
/// the cost per run is reported as the median over the windows, which a vCPU stall
/// in one window cannot move.
fn bpf_cost(stage: &Stage, options: &Options, paths: &[PathKind]) -> anyhow::Result<Vec<BpfCost>> {
    let cgroup = stage.bed.node(0).cgroup();
    let second = Duration::from_secs(1);
    let mut out = Vec::new();
    for &path in paths {
        let (ip, port, client) = resolve(stage, path);
        stage.reset_between_runs(options.settle);
        let enabled = StatsEnabled::new()?;
        let perf = match &options.perf_dir {
            Some(dir) => Some(start_perf(dir, path)?),
            None => None,
        };
        let mut requests = 0;
        let mut samples: BTreeMap<(String, String), Vec<(u64, u64)>> = BTreeMap::new();
        for _ in 0..options.stats_windows {
            let before = bpf_stats::attached(cgroup)?;
            let wrk = stage
                .wrk(client, ip, port, second, options.connections)
                .with_context(|| path.label())?;
            let after = bpf_stats::attached(cgroup)?;
            requests += wrk.requests;
            for p in bpf_stats::delta(&before, &after)
                .into_iter()
                .filter(|p| p.run_cnt > 0)
            {
                tracing::debug!(
                    path = %path.label(),
                    program = %p.name,
                    runs = p.run_cnt,
                    ns_per_run = p.run_time_ns / p.run_cnt,
                    "BPF statistics window"
                );
                samples
                    .entry((p.name, p.attach_type))
                    .or_default()
                    .push((p.run_time_ns, p.run_cnt));
            }
        }
        drop(enabled);
        if let Some(perf) = perf {
            stop_perf(perf)?;
        }
        let programs: Vec<ProgCost> = samples
            .into_iter()
            .map(|((name, attach_type), windows)| ProgCost {
                name,
                attach_type,
                runs: windows.iter().map(|(_, runs)| runs).sum(),
                ns_per_run: Spread::of(windows.iter().map(|&(ns, runs)| ns as f64 / runs as f64))
                    .expect("only programs with runs are kept"),
            })
            .collect();
        for p in &programs {
            eprintln!(
                "bench:   BPF {:<44} {} ({}): {} runs, {:.0} ns/run ({:.0}–{:.0}), {} connections",
                path.label(),
                p.name,
                p.attach_type,
                p.runs,
                p.ns_per_run.median,
                p.ns_per_run.min,
                p.ns_per_run.max,
                requests
            );
        }
        out.push(BpfCost {
            path,
            requests,
            programs,
        });
    }
    Ok(out)
}

/// `perf record` of both CPUs (call graphs, cpu-clock sampling) into
/// `dir/<path>.perf.data`, until [`stop_perf`].
fn start_perf(
    dir: &std::path::Path,
    path: PathKind,
) -> anyhow::Result<(std::process::Child, std::path::PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let slug: String = path
        .label()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let file = dir.join(format!("{slug}.perf.data"));
    let _ = std::fs::remove_file(&file);
    let child = std::process::Command::new("perf")
        .args(["record", "-a", "-g", "-e", "cpu-clock", "-q", "-o"])
        .arg(&file)
        .args(["--", "sleep", "3600"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting perf record")?;
    Ok((child, file))
}

/// Ends a [`start_perf`] recording: SIGINT makes perf write its file and exit (it
/// then re-raises a signal, so its exit status says nothing); the file must exist.
fn stop_perf((mut perf, file): (std::process::Child, std::path::PathBuf)) -> anyhow::Result<()> {
    // SAFETY: signals our own child, which has not been waited for yet.
    unsafe { libc::kill(perf.id() as i32, libc::SIGINT) };
    perf.wait().context("waiting for perf record")?;
    let written = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    anyhow::ensure!(
        written > 0,
        "perf record wrote nothing to {}",
        file.display()
    );
    eprintln!("bench:   perf record: {}", file.display());
    Ok(())
}

/// tc/XDP programs in the client, server and node namespaces.
fn per_packet_programs(stage: &Stage) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (label, netns) in [
        ("client", stage.client.netns()),
        ("server", stage.server.netns()),
        ("node", stage.bed.node(0).netns()),
    ] {
        for program in bpf_stats::per_packet_programs(netns.command("bpftool"))? {
            out.push(format!("{label}: {program}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(rates: &[f64]) -> Vec<Window> {
        rates
            .iter()
            .map(|&r| Window {
                wrk: WrkReport {
                    requests_per_sec: r,
                    ..Default::default()
                },
                syn_trouble: 0,
                steal: 0.0,
            })
            .collect()
    }

    #[test]
    fn pairs_each_round_with_the_baseline_of_that_round() {
        let paired = paired_ratios(&[
            windows(&[1000.0, 500.0]),
            windows(&[900.0, 500.0]),
            windows(&[1000.0, 250.0]),
        ]);
        assert_eq!(paired, vec![vec![], vec![0.9, 1.0], vec![1.0, 0.5]]);
        assert!(paired_ratios(&[]).is_empty());
    }
}
