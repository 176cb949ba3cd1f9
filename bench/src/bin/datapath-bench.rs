//! `cargo xtask bench datapath`: Waggle's ClusterIP vs kube-proxy iptables/nftables vs
//! direct pod IP, measured in interleaved rounds; prints a Markdown table.

use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Extra service counts to measure at (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0,1000,10000")]
    counts: Vec<usize>,
    /// Seconds of each measured wrk window. Short windows, many rounds: on a shared
    /// VM the noise comes in bursts, which a median over many paired rounds resists
    /// better than a few long windows.
    #[arg(long, default_value_t = 2)]
    seconds: u64,
    /// Seconds of unmeasured wrk on the same path before each window (0: none).
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Rounds per phase; each round measures every path of the phase once. 12 is two
    /// full blocks of the balanced order for three paths (six for two paths); the
    /// 95% interval of the median of 12 ratios is [x(3), x(10)] (96.1% coverage).
    #[arg(long, default_value_t = 12)]
    rounds: usize,
    /// One-second windows per path with the kernel's BPF statistics on.
    #[arg(long, default_value_t = 5)]
    stats_windows: usize,
    /// Concurrent wrk connections.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Seconds of sockperf ping-pong per path.
    #[arg(long, default_value_t = 2)]
    sockperf_seconds: u32,
    /// Milliseconds to wait after the conntrack flush before each window.
    #[arg(long, default_value_t = 500)]
    settle_ms: u64,
    /// Seconds a rules load (iptables-restore, nft -f) may take before it is killed.
    #[arg(long, default_value_t = 600)]
    load_limit: u64,
    /// Competitors to measure (comma-separated), each in its own phase.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "waggle,iptables,nftables"
    )]
    competitors: Vec<waggle_bench::run::Competitor>,
    /// Also record `perf record -a -g` of the BPF-statistics windows into this directory.
    #[arg(long)]
    perf_dir: Option<std::path::PathBuf>,
    /// How each path is paired with its phase's baseline: `sequential` (each path alone
    /// in its window, balanced order) or `concurrent` (path and baseline in one shared
    /// window, so bursts of host noise hit both).
    #[arg(long, value_enum, default_value = "sequential")]
    pairing: waggle_bench::run::Pairing,
}

fn main() -> anyhow::Result<()> {
    // RUST_LOG=waggle_bench=debug shows every BPF-statistics window.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    anyhow::ensure!(
        args.rounds > 0 && args.seconds > 0 && args.stats_windows > 0,
        "--rounds, --seconds and --stats-windows must be at least 1"
    );
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let started = Instant::now();
    let before = load();
    eprintln!("bench: load average before the run: {before}");
    let options = waggle_bench::run::Options {
        counts: args.counts,
        duration: Duration::from_secs(args.seconds),
        warmup: Duration::from_secs(args.warmup),
        rounds: args.rounds,
        stats_windows: args.stats_windows,
        connections: args.connections,
        sockperf_seconds: args.sockperf_seconds,
        settle: Duration::from_millis(args.settle_ms),
        load_limit: Duration::from_secs(args.load_limit),
        competitors: args.competitors,
        perf_dir: args.perf_dir,
        pairing: args.pairing,
    };
    let results = waggle_bench::run::run(&options)?;
    let after = load();
    println!("{}", waggle_bench::table::table(&results));
    println!(
        "Load average before the run: `{before}`; after: `{after}`; took {:.0?}. {} rounds per phase ({:?} pairing), {} s windows after {} s of warm-up, {} wrk connections. Same-round ratios: median, [95% interval of the median from order statistics], (interquartile range).",
        started.elapsed(),
        options.rounds,
        options.pairing,
        args.seconds,
        args.warmup,
        options.connections
    );
    Ok(())
}
