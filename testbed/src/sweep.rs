//! Removing the leftovers of crashed runs: objects whose owner pid is dead.
//!
//! Objects of live processes are never touched. Every step is best effort (another
//! process may sweep the same leftovers at the same time); failures are logged.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Mutex,
};

use crate::{cgroup, names, netns::NETNS_DIR};

/// Where each bed keeps its run directory (`/run/wgtb-<pid>-<n>`).
pub const RUN_ROOT: &str = "/run";
/// The file in a bed's run directory listing its registered pin directories.
pub const PINS_FILE: &str = "pins";

static SWEEPING: Mutex<()> = Mutex::new(());

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub namespaces: Vec<String>,
    pub cgroups: Vec<PathBuf>,
    pub mounts: Vec<PathBuf>,
    pub pin_dirs: Vec<PathBuf>,
    pub run_dirs: Vec<PathBuf>,
    pub killed: Vec<i32>,
}

fn dead_owner(name: &str) -> bool {
    names::owner_pid(name).is_some_and(|pid| !names::pid_alive(pid))
}

/// Sweeps leftovers of crashed runs. `cgroup_root` is the root of a cgroup2 mount to
/// look for per-bed cgroups in (the new bed's private mount).
pub fn sweep(cgroup_root: &Path) -> SweepReport {
    let _serial = SWEEPING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut report = SweepReport::default();

    // Cgroups first: killing their members releases the namespaces they hold. The
    // v1 hierarchies of a hybrid host hold what runc made there for a bed's pods.
    let v1 = cgroup::hierarchies()
        .into_iter()
        .filter(|h| h.v1)
        .map(|h| h.mount);
    for root in std::iter::once(cgroup_root.to_owned()).chain(v1) {
        for entry in list(&root) {
            if dead_owner(&entry) {
                let path = root.join(&entry);
                match cgroup::remove_tree(&path) {
                    Ok(()) => report.cgroups.push(path),
                    Err(error) => tracing::warn!(%error, "sweep: cgroup"),
                }
            }
        }
    }

    let namespaces: Vec<String> = list(Path::new(NETNS_DIR))
        .into_iter()
        .filter(|n| dead_owner(n))
        .collect();
    let inodes: Vec<u64> = namespaces
        .iter()
        .filter_map(|name| fs::metadata(Path::new(NETNS_DIR).join(name)).ok())
        .map(|meta| meta.ino())
        .collect();
    report.killed = kill_in_namespaces(&inodes);
    for name in namespaces {
        match crate::netns::NetNs::delete(&name) {
            Ok(()) => report.namespaces.push(name),
            Err(error) => tracing::warn!(%error, "sweep: netns"),
        }
    }

    for entry in list(Path::new(RUN_ROOT)) {
        if !dead_owner(&entry) {
            continue;
        }
        let run_dir = Path::new(RUN_ROOT).join(&entry);
        for pin in fs::read_to_string(run_dir.join(PINS_FILE))
            .unwrap_or_default()
            .lines()
        {
            let pin = PathBuf::from(pin);
            if pin.exists() && fs::remove_dir_all(&pin).is_ok() {
                report.pin_dirs.push(pin);
            }
        }
        for mount in mounts_under(&run_dir) {
            match cgroup::unmount(&mount) {
                Ok(()) => report.mounts.push(mount),
                Err(error) => tracing::warn!(%error, "sweep: mount"),
            }
        }
        match fs::remove_dir_all(&run_dir) {
            Ok(()) => report.run_dirs.push(run_dir),
            Err(error) => tracing::warn!(%error, dir = %run_dir.display(), "sweep: run dir"),
        }
    }
    if !report.namespaces.is_empty() || !report.cgroups.is_empty() || !report.run_dirs.is_empty() {
        tracing::info!(?report, "swept leftovers of crashed test beds");
    }
    report
}

fn list(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| name.starts_with(names::PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

/// Mount points at or below `dir`, deepest first (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|point| point.starts_with(dir))
        .collect();
    mounts.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    mounts.dedup();
    mounts
}

/// Kills (SIGKILL) every process whose network namespace has one of these inodes.
pub fn kill_in_namespaces(inodes: &[u64]) -> Vec<i32> {
    if inodes.is_empty() {
        return Vec::new();
    }
    let own = std::process::id() as i32;
    let mut killed = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let Ok(meta) = fs::metadata(entry.path().join("ns/net")) else {
            continue;
        };
        if inodes.contains(&meta.ino()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            killed.push(pid);
        }
    }
    killed
}
