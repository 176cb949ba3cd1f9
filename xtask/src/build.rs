//! `cargo xtask build`: the BPF object first, then every binary with it embedded.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, bail};

use crate::{cmd, setup};

#[derive(clap::Args)]
pub struct Args {
    /// Build userspace binaries with the release profile.
    #[arg(long)]
    pub release: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let object = build_bpf()?;
    build_userspace(&object, args.release, &[])
}

/// Builds `ebpf/` for `bpfel-unknown-none` and returns the object's path.
pub fn build_bpf() -> anyhow::Result<PathBuf> {
    let linker = setup::bpf_linker_path();
    if !linker.exists() {
        bail!("bpf-linker is not installed at {}: run `cargo xtask setup`", linker.display());
    }
    let bin_dir = linker.parent().expect("bpf-linker has a parent dir");
    let current = std::env::var("PATH").unwrap_or_default();
    let path = if std::env::split_paths(&current).any(|dir| dir == bin_dir) {
        current
    } else {
        format!("{}:{current}", bin_dir.display())
    };
    cmd::run(
        cmd::cargo()
            .args(["build", "--release", "--package", "waggle-ebpf", "--target", "bpfel-unknown-none"])
            .args(["-Z", "build-std=core"])
            // Stable rustc; build-std needs the unstable flag, as aya's own tooling does.
            .env("RUSTC_BOOTSTRAP", "1")
            // `.cargo/config.toml` gives the BPF target `-C debuginfo=2 -C link-arg=--btf`
            // (the socket-storage map needs the object's BTF); RUSTFLAGS would replace them.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env("PATH", path),
    )
    .context("building the BPF object (ebpf/)")?;
    let object = cmd::target_dir().join("bpfel-unknown-none/release/waggle-ebpf");
    if !object.exists() {
        bail!("the BPF build succeeded but {} is missing", object.display());
    }
    Ok(object)
}

/// A cargo command with the BPF object passed to `waggle-datapath`'s build script.
pub fn cargo_with_object(object: &PathBuf) -> Command {
    let mut command = cmd::cargo();
    command.env("WAGGLE_BPF_OBJECT", object);
    command
}

pub fn build_userspace(object: &PathBuf, release: bool, extra: &[&str]) -> anyhow::Result<()> {
    let mut command = cargo_with_object(object);
    // Default members: everything but the kernel crate, which only builds for BPF.
    command.args(["build", "--bins"]).args(extra);
    if release {
        command.arg("--release");
    }
    cmd::run(&mut command).context("building userspace binaries")
}
