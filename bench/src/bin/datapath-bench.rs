//! `cargo xtask bench datapath`: Waggle's ClusterIP vs kube-proxy iptables/nftables vs
//! direct pod IP, side by side in one run; prints a Markdown table.

use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Extra service counts to measure at (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0,1000,10000")]
    counts: Vec<usize>,
    /// Seconds of wrk per path.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent wrk connections.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Seconds of sockperf ping-pong per path.
    #[arg(long, default_value_t = 2)]
    sockperf_seconds: u32,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("bench: load average before the run: {}", load.trim());
    let options = waggle_bench::run::Options {
        counts: args.counts,
        duration: Duration::from_secs(args.seconds),
        connections: args.connections,
        sockperf_seconds: args.sockperf_seconds,
    };
    let rows = waggle_bench::run::run(&options)?;
    println!("{}", waggle_bench::run::table(&rows));
    Ok(())
}
