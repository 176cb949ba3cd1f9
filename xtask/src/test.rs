//! `cargo xtask test`: setup, the BPF build, the whole suite, then a check that the
//! tests left no namespace, pinned map or cgroup behind.

use std::{collections::BTreeSet, time::Instant};

use anyhow::bail;

use crate::{build, cmd, setup};

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo xtask setup` (when you know the machine is ready).
    #[arg(long)]
    pub no_setup: bool,
    /// Extra arguments for `cargo test` (e.g. `-p waggle-store`, or `-- filter`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    if !args.no_setup {
        setup::run()?;
    }
    if !cmd::is_root() {
        eprintln!("test: not running as root: the data-path tests will fail (they need CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)");
    }
    let object = build::build_bpf()?;
    // End-to-end tests start the real binaries (`waggle server`, `waggle proxy`).
    let release = args.cargo_args.iter().any(|arg| arg == "--release");
    build::build_userspace(&object, release, &[])?;
    let before = leftovers();
    let mut command = build::cargo_with_object(&object);
    command.args(["test", "--no-fail-fast"]).args(&args.cargo_args);
    let result = cmd::run(&mut command);
    let after = leftovers();
    let new: Vec<&String> = after.difference(&before).collect();
    eprintln!("test: finished in {:.0}s", started.elapsed().as_secs_f64());
    result?;
    if !new.is_empty() {
        bail!("the tests left these behind: {new:?}");
    }
    eprintln!("test: nothing left behind (network namespaces, /sys/fs/bpf, cgroup mounts, cgroups)");
    Ok(())
}

/// Test-made objects visible on the machine: network namespaces, pinned BPF objects,
/// cgroup2 mounts and cgroups.
fn leftovers() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        found.extend(entries.flatten().map(|e| format!("netns {}", e.file_name().to_string_lossy())));
    }
    if let Ok(entries) = std::fs::read_dir("/sys/fs/bpf") {
        found.extend(entries.flatten().map(|e| format!("bpffs {}", e.file_name().to_string_lossy())));
    }
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
        found.extend(
            mounts
                .lines()
                .filter(|line| line.split_whitespace().nth(2) == Some("cgroup2"))
                .filter_map(|line| line.split_whitespace().nth(1))
                .filter(|point| *point != "/sys/fs/cgroup/unified")
                .map(|point| format!("cgroup2 mount {point}")),
        );
        // Cgroups at the top of the machine's hierarchies (v1 ones included: runc
        // makes the bed pods' cgroups there on a hybrid host).
        let hierarchies =
            mounts.lines().filter(|line| matches!(line.split_whitespace().nth(2), Some("cgroup" | "cgroup2")));
        for point in hierarchies.filter_map(|line| line.split_whitespace().nth(1)) {
            if !point.starts_with("/sys/fs/cgroup") {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(point) else {
                continue;
            };
            let dirs = entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir()));
            found.extend(dirs.map(|e| format!("cgroup {point}/{}", e.file_name().to_string_lossy())));
        }
    }
    found
}
