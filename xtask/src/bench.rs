//! `cargo xtask bench <name>`: benchmarks, each printing a side-by-side table measured
//! in one run. They are not tests; results and commands go to docs/benchmarks.md.

use anyhow::bail;

use crate::{build, cmd};

#[derive(clap::Args)]
pub struct Args {
    /// Which benchmark (run without a valid name to list them).
    pub name: String,
    /// Extra arguments passed to the benchmark program.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub extra: Vec<String>,
}

/// How a benchmark program is built.
enum Target {
    /// A `[[bin]]` of the package, run from target/release beside the other binaries.
    Bin(&'static str),
    /// An example of the package.
    Example(&'static str),
}

struct Bench {
    name: &'static str,
    package: &'static str,
    target: Target,
    what: &'static str,
}

const BENCHES: &[Bench] = &[
    Bench {
        name: "datapath",
        package: "waggle-bench",
        target: Target::Bin("datapath-bench"),
        what: "new connections/s (median of interleaved rounds) and latency: direct pod IP vs Waggle ClusterIP vs kube-proxy iptables/nftables, at 0/1,000/10,000 services, with the socket-LB programs' ns per connect",
    },
    Bench {
        name: "store",
        package: "waggle-store",
        target: Target::Example("store_bench"),
        what: "creates/s: SQLite store vs etcd store vs raw etcd puts",
    },
    Bench {
        name: "api",
        package: "waggle-apiserver",
        target: Target::Example("api_bench"),
        what: "API server over HTTP: creates/s, gets/s, watch delivery latency (100 and 1,000 watchers), list of 10,000 pods, RSS",
    },
];

pub fn run(args: &Args) -> anyhow::Result<()> {
    let Some(bench) = BENCHES.iter().find(|b| b.name == args.name) else {
        let known: Vec<String> = BENCHES
            .iter()
            .map(|b| format!("  {}: {}", b.name, b.what))
            .collect();
        bail!(
            "unknown benchmark `{}`; known:\n{}",
            args.name,
            known.join("\n")
        );
    };
    let object = build::build_bpf()?;
    match bench.target {
        Target::Bin(bin) => {
            // The benchmark starts other binaries of the workspace (e.g. `waggle proxy`).
            build::build_userspace(&object, true, &[])?;
            cmd::run(
                std::process::Command::new(cmd::target_dir().join("release").join(bin))
                    .args(&args.extra),
            )
        }
        Target::Example(example) => cmd::run(
            build::cargo_with_object(&object)
                .args([
                    "run",
                    "--release",
                    "--package",
                    bench.package,
                    "--example",
                    example,
                    "--",
                ])
                .args(&args.extra),
        ),
    }
}
