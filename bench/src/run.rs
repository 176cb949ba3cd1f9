//! The benchmark matrix: for each count of extra services, every path measured back
//! to back on the same stage, then one table.

use std::{fmt::Write, net::Ipv4Addr, time::Duration};

use anyhow::Context;

use crate::{
    env::Stage,
    kube_proxy::{iptables, nftables},
    load::{SockperfReport, WrkReport},
    services::{self, BenchService},
    waggle::WaggleProxy,
};

/// The ClusterIP of the benchmarked service.
pub const TARGET_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const CLUSTER_CIDR: &str = "10.244.0.0/16";

#[derive(Clone, Debug)]
pub struct Options {
    pub counts: Vec<usize>,
    pub duration: Duration,
    pub connections: u32,
    pub sockperf_seconds: u32,
}

/// One measured path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// Client → pod IP with nothing else loaded.
    Direct,
    /// Client → pod IP while the named competitor's rules are loaded.
    DirectUnder(Competitor),
    /// Client → ClusterIP through the competitor.
    ClusterIp(Competitor),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Competitor {
    Waggle,
    Iptables,
    Nftables,
}

impl Competitor {
    fn label(self) -> &'static str {
        match self {
            Competitor::Waggle => "waggle eBPF",
            Competitor::Iptables => "kube-proxy iptables",
            Competitor::Nftables => "kube-proxy nftables",
        }
    }
}

impl PathKind {
    fn label(self) -> String {
        match self {
            PathKind::Direct => "direct pod IP".into(),
            PathKind::DirectUnder(c) => format!("direct pod IP, {} loaded", c.label()),
            PathKind::ClusterIp(c) => format!("ClusterIP via {}", c.label()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Row {
    pub services: usize,
    pub path: PathKind,
    pub wrk: WrkReport,
    pub latency: SockperfReport,
    pub syn_trouble: u64,
    /// Time to load the rules or program the maps for this service count.
    pub program_time: Option<Duration>,
}

pub fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    let stage = Stage::new()?;
    let target = BenchService {
        namespace: "default".into(),
        name: "nginx".into(),
        port_name: "http".into(),
        cluster_ip: TARGET_VIP,
        port: crate::env::HTTP_PORT,
        endpoints: vec![(stage.server.address(), crate::env::HTTP_PORT)],
    };
    let sockperf_target = BenchService {
        port_name: "sockperf".into(),
        port: crate::env::SOCKPERF_PORT,
        endpoints: vec![(stage.server.address(), crate::env::SOCKPERF_PORT)],
        ..target.clone()
    };
    let server_ip = stage.server.address();
    let mut rows = Vec::new();
    for &count in &options.counts {
        let mut all = services::with_target(target.clone(), count);
        all.push(sockperf_target.clone());
        eprintln!("bench: {count} extra services");
        rows.push(measure(&stage, options, count, PathKind::Direct, server_ip, None)?);

        let loaded = stage.node_stdin("iptables-restore", &[], &iptables::restore_input(&all, CLUSTER_CIDR))?;
        rows.push(measure(&stage, options, count, PathKind::DirectUnder(Competitor::Iptables), server_ip, None)?);
        rows.push(measure(&stage, options, count, PathKind::ClusterIp(Competitor::Iptables), TARGET_VIP, Some(loaded))?);
        stage.node_run("nft", &["flush", "ruleset"]).context("removing the iptables rules")?;

        let loaded = stage.node_stdin("nft", &["-f", "-"], &nftables::script(&all, CLUSTER_CIDR))?;
        rows.push(measure(&stage, options, count, PathKind::DirectUnder(Competitor::Nftables), server_ip, None)?);
        rows.push(measure(&stage, options, count, PathKind::ClusterIp(Competitor::Nftables), TARGET_VIP, Some(loaded))?);
        stage.node_run("nft", &["flush", "ruleset"]).context("removing the nftables rules")?;

        let proxy = WaggleProxy::start(&stage, &all).context("starting waggle proxy")?;
        let programmed = proxy.programmed_in();
        rows.push(measure(&stage, options, count, PathKind::DirectUnder(Competitor::Waggle), server_ip, None)?);
        rows.push(measure(&stage, options, count, PathKind::ClusterIp(Competitor::Waggle), TARGET_VIP, Some(programmed))?);
        proxy.stop()?;
    }
    Ok(rows)
}

fn measure(
    stage: &Stage,
    options: &Options,
    services: usize,
    path: PathKind,
    ip: Ipv4Addr,
    program_time: Option<Duration>,
) -> anyhow::Result<Row> {
    stage.reset_between_runs();
    let before = stage.syn_trouble_counters();
    let wrk = stage.wrk(ip, options.duration, options.connections).with_context(|| path.label())?;
    stage.reset_between_runs();
    let latency = stage.sockperf(ip, options.sockperf_seconds).with_context(|| path.label())?;
    let syn_trouble = stage.syn_trouble_counters().saturating_sub(before);
    eprintln!("bench:   {:<42} {:>9.0} conn/s", path.label(), wrk.requests_per_sec);
    Ok(Row { services, path, wrk, latency, syn_trouble, program_time })
}

/// The table: one line per path and service count, with the connection rate as a
/// ratio of the direct path measured in the same block.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| services | path | new conn/s | vs direct | wrk p50 | wrk p99 | rr p50 (us) | rr p99 (us) | errors | SYN retrans/PAWS | rules/maps programmed in |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let direct = rows
            .iter()
            .find(|r| r.services == row.services && r.path == PathKind::Direct)
            .map(|r| r.wrk.requests_per_sec)
            .unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2}x | {:.0?} | {:.0?} | {:.1} | {:.1} | {} | {} | {} |",
            row.services,
            row.path.label(),
            row.wrk.requests_per_sec,
            row.wrk.requests_per_sec / direct,
            row.wrk.latency_p50,
            row.wrk.latency_p99,
            row.latency.p50_us,
            row.latency.p99_us,
            row.wrk.socket_errors + row.wrk.non_2xx,
            row.syn_trouble,
            row.program_time.map(|d| format!("{:.0?}", d)).unwrap_or_default(),
        );
    }
    out
}
