//! `cargo xtask setup`: installs what the build and the tests need and the machine
//! does not ship. Every step checks first and does nothing when already satisfied,
//! so a second run on a ready machine takes about a second.

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{Context, bail};

use crate::cmd;

/// Debian packages needed to build (LLVM 22 for bpf-linker; protoc and its well-known
/// types, google/protobuf/*.proto, for etcd-client and the CRI bindings).
const BUILD_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "clang-22",
    "protobuf-compiler",
    "libprotobuf-dev",
];

/// Debian packages the tests and benchmarks use: namespaces and links (iproute2),
/// the kube-proxy-style baselines (iptables, nftables, conntrack), etcd for the etcd
/// store, containerd/runc/CNI plugins for the node agent, traffic tools.
const TEST_PACKAGES: &[&str] = &[
    "iproute2",
    "iptables",
    "nftables",
    "conntrack",
    "etcd-server",
    "containerd",
    "runc",
    "containernetworking-plugins",
    "wrk",
    "sockperf",
    "nginx-light",
    "bpftool",
    "tcpdump",
    "iperf3",
    "busybox-static",
];

/// Python modules the API tests drive the server with (official Kubernetes client).
const PYTHON_PACKAGES: &[(&str, &str)] = &[("kubernetes", "kubernetes==31.0.0"), ("pytest", "pytest")];

pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    if !cmd::is_root() {
        bail!("cargo xtask setup installs Debian packages and needs root");
    }
    apt_packages()?;
    rust_src()?;
    bpf_linker()?;
    python_packages()?;
    eprintln!("setup: ready in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn apt_packages() -> anyhow::Result<()> {
    let wanted: Vec<&str> = BUILD_PACKAGES.iter().chain(TEST_PACKAGES).copied().collect();
    let missing = missing_packages(&wanted)?;
    if missing.is_empty() {
        eprintln!("setup: {} Debian packages present", wanted.len());
        return Ok(());
    }
    eprintln!("setup: installing Debian packages: {}", missing.join(" "));
    cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let still = missing_packages(&wanted)?;
    if !still.is_empty() {
        bail!("apt-get did not install: {}", still.join(" "));
    }
    Ok(())
}

/// Packages of `wanted` that dpkg does not list as installed (one dpkg-query call).
fn missing_packages(wanted: &[&str]) -> anyhow::Result<Vec<String>> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Status}\n"])
        .args(wanted)
        .output()
        .context("running dpkg-query")?;
    let listed = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = listed
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, status)| *status == "installed")
        .map(|(name, _)| name)
        .collect();
    Ok(wanted.iter().filter(|name| !installed.contains(name)).map(|name| name.to_string()).collect())
}

fn rust_src() -> anyhow::Result<()> {
    let sysroot = cmd::output(Command::new("rustc").args(["--print", "sysroot"]))?;
    let src = PathBuf::from(sysroot.trim()).join("lib/rustlib/src/rust/library/core");
    if src.exists() {
        eprintln!("setup: rust-src present");
        return Ok(());
    }
    eprintln!("setup: adding rust-src (needed for -Z build-std=core)");
    cmd::run(Command::new("rustup").args(["component", "add", "rust-src"]))
}

/// The cargo bin directory where `cargo install` puts bpf-linker.
fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

pub fn bpf_linker_path() -> PathBuf {
    cargo_bin_dir().join("bpf-linker")
}

fn bpf_linker() -> anyhow::Result<()> {
    if cmd::succeeds(Command::new(bpf_linker_path()).arg("--version")) {
        eprintln!("setup: bpf-linker present");
        return Ok(());
    }
    eprintln!("setup: building bpf-linker against LLVM 22 (about a minute)");
    let path = format!("/usr/lib/llvm-22/bin:{}", std::env::var("PATH").unwrap_or_default());
    cmd::run(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["install", "--locked", "bpf-linker", "--no-default-features", "--features", "llvm-22"])
            .env("LLVM_SYS_221_PREFIX", "/usr/lib/llvm-22")
            .env("PATH", path),
    )
}

fn python_packages() -> anyhow::Result<()> {
    // find_spec locates a module without importing it (importing `kubernetes` takes seconds).
    let missing: Vec<&str> = PYTHON_PACKAGES
        .iter()
        .filter(|(module, _)| {
            let probe = format!("import importlib.util, sys; sys.exit(importlib.util.find_spec('{module}') is None)");
            !cmd::succeeds(Command::new("python3").args(["-c", &probe]))
        })
        .map(|(_, requirement)| *requirement)
        .collect();
    if missing.is_empty() {
        eprintln!("setup: Python packages present");
        return Ok(());
    }
    eprintln!("setup: pip installing {}", missing.join(" "));
    cmd::run(
        Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--root-user-action=ignore"])
            .args(&missing),
    )
}
