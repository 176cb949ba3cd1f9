//! `cargo xtask bench <name>`: benchmarks, each printing a side-by-side table measured
//! in one run. They are not tests; results and commands go to docs/benchmarks.md.

use anyhow::bail;

use crate::{build, cmd};

#[derive(clap::Args)]
pub struct Args {
    /// Which benchmark: `store` (embedded store vs etcd vs raw etcd puts).
    pub name: String,
    /// Extra arguments passed to the benchmark program.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub extra: Vec<String>,
}

/// (name, package, example, what it compares)
const BENCHES: &[(&str, &str, &str, &str)] = &[
    ("store", "waggle-store", "store_bench", "creates/s: SQLite store vs etcd store vs raw etcd puts"),
];

pub fn run(args: &Args) -> anyhow::Result<()> {
    let Some((_, package, example, _)) = BENCHES.iter().find(|(name, ..)| *name == args.name) else {
        let known: Vec<String> = BENCHES.iter().map(|(n, _, _, what)| format!("  {n}: {what}")).collect();
        bail!("unknown benchmark `{}`; known:\n{}", args.name, known.join("\n"));
    };
    let object = build::build_bpf()?;
    cmd::run(
        build::cargo_with_object(&object)
            .args(["run", "--release", "--package", package, "--example", example, "--"])
            .args(&args.extra),
    )
}
