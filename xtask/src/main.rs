//! `cargo xtask`: everything around the Rust build that a developer or CI runs.
//!
//! - `setup`: installs what the build and the tests need (Debian packages, rust-src,
//!   bpf-linker against LLVM 22, the Python Kubernetes client); idempotent and fast
//!   when the machine is ready.
//! - `build`: builds the BPF object, then every binary with the object embedded.
//! - `test`: setup + build + the whole test suite, then checks nothing was left behind.
//! - `bench`: side-by-side benchmarks (not tests); they print tables.
//! - `up`: the main job: a local API server and its controllers on the embedded store.

mod build;
mod bench;
mod cmd;
mod setup;
mod test;
mod up;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Waggle's build, test and run orchestration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install everything the build and tests need (idempotent).
    Setup,
    /// Build the BPF object and all binaries (BPF object embedded).
    Build(build::Args),
    /// Run setup, build, and the full test suite (needs root).
    Test(test::Args),
    /// Run a benchmark and print its table.
    Bench(bench::Args),
    /// Start Waggle locally: the API server on the embedded store (foreground).
    Up(up::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup => setup::run(),
        Command::Build(args) => build::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Up(args) => up::run(&args),
    }
}
