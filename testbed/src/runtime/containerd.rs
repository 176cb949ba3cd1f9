//! A containerd (Debian's package) for one bed node: its CRI plugin serves the node's
//! kubelet, runs pods with runc, and wires them with the reference CNI plugins
//! (`bridge` + `host-local` on the upper half of the node's podCIDR, so they never
//! take the addresses the bed gives its own pods).
//!
//! Everything it keeps is under one directory of the bed's run directory: its root
//! and state (image store, snapshots, pod network namespaces), the CNI configuration
//! and IP allocations, runc's state, its socket and its log. Pods' cgroups go under
//! `<node cgroup>/kubepods` (the bed's cgroup tree, in every hierarchy on a hybrid
//! host). Dropping it kills the pods' processes, the shims and containerd, unmounts
//! what they mounted and removes those cgroups and the directory, also after a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::members::Node;
use crate::process::Spawned;
use crate::{TestBed, TestBedError};

use super::images;

const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Containerd {
    dir: PathBuf,
    socket: PathBuf,
    cgroup_root: String,
    process: Option<Spawned>,
}

impl Containerd {
    /// Starts containerd in `node`'s namespace and loads the local images.
    pub fn start(bed: &TestBed, node: &Node) -> Result<Containerd, TestBedError> {
        let dir = bed.run_dir().join("containerd").join(node.name());
        for sub in ["root", "state", "cni", "cni-data", "runc"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path)
                .map_err(|source| TestBedError::io("creating", &path, source))?;
        }
        let relative = node
            .cgroup()
            .strip_prefix(bed.cgroup_mount())
            .map_err(|_| {
                TestBedError::Invalid(format!(
                    "node cgroup {} is outside the bed's mount",
                    node.cgroup().display()
                ))
            })?;
        let cgroup_root = format!("/{}/kubepods", relative.display());
        let socket = dir.join("containerd.sock");
        write(&dir.join("config.toml"), &config(&dir, &socket))?;
        let (network, prefix) = node.pod_cidr();
        write(
            &dir.join("cni/10-waggle.conflist"),
            &cni_config(&dir, network, prefix),
        )?;
        let log = dir.join("containerd.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|source| TestBedError::io("creating", &log, source))?;
        let mut command = node.netns().command("containerd");
        command
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(
                log_file
                    .try_clone()
                    .map_err(|source| TestBedError::io("opening", &log, source))?,
            )
            .stderr(log_file);
        let mut containerd = Containerd {
            dir: dir.clone(),
            socket: socket.clone(),
            cgroup_root,
            process: Some(bed.spawn(command)?),
        };
        let started = Instant::now();
        while !containerd
            .ctr(&["version"])
            .is_ok_and(|o| o.status.success())
        {
            if let Some(process) = containerd.process.as_mut()
                && let Ok(Some(status)) = process.try_wait()
            {
                return Err(TestBedError::Invalid(format!(
                    "containerd exited ({status}): {}",
                    containerd.log()
                )));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(TestBedError::Invalid(format!(
                    "containerd did not answer within {START_TIMEOUT:?}: {}",
                    containerd.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let archive = dir.join("images.tar");
        images::write_archive(&archive)?;
        let imported = containerd
            .ctr(&[
                "-n",
                "k8s.io",
                "images",
                "import",
                &archive.display().to_string(),
            ])
            .map_err(|source| TestBedError::io("running ctr", "ctr", source))?;
        if !imported.status.success() {
            return Err(TestBedError::Invalid(format!(
                "ctr images import failed: {}",
                String::from_utf8_lossy(&imported.stderr)
            )));
        }
        Ok(containerd)
    }

    /// The CRI socket the node's kubelet connects to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The cgroup (relative to each hierarchy's root) the kubelet puts pods under.
    pub fn cgroup_root(&self) -> &str {
        &self.cgroup_root
    }

    /// containerd's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .output()
    }

    fn clean_up(&mut self) {
        // The pods' processes first (they outlive their shims), then the shims, which
        // outlive containerd.
        for _ in 0..3 {
            let pods = cgroup_members(&self.cgroup_root);
            for &pid in &pods {
                kill(pid);
            }
            if pods.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for pid in shims_of(&self.socket) {
            kill(pid);
        }
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
        }
        unmount_below(&self.dir);
        remove_cgroups(&self.cgroup_root);
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, dir = %self.dir.display(), "removing containerd's directory");
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.clean_up();
    }
}

fn write(path: &Path, text: &str) -> Result<(), TestBedError> {
    std::fs::write(path, text).map_err(|source| TestBedError::io("writing", path, source))
}

fn config(dir: &Path, socket: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  netns_mounts_under_state_dir = true
  # Sandboxes ask for oom_score_adj -998, which needs CAP_SYS_RESOURCE; machines
  # (such as CI's) that withhold it would fail every sandbox. Clamping to containerd's
  # own score keeps pods startable everywhere and changes nothing else the bed tests.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{d}/runc"
"#,
        socket = socket.display(),
        pause = images::PAUSE,
    )
}

/// A bridge on the node with host-local addresses from the upper half of its podCIDR.
fn cni_config(dir: &Path, network: std::net::Ipv4Addr, prefix: u8) -> String {
    let [a, b, c, _] = network.octets();
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "waggle-bed",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": dir.join("cni-data"),
                    "ranges": [[{
                        "subnet": format!("{network}/{prefix}"),
                        "rangeStart": format!("{a}.{b}.{c}.128"),
                        "rangeEnd": format!("{a}.{b}.{c}.254"),
                    }]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "loopback"},
        ],
    })
    .to_string()
}

/// Where cgroup hierarchies are mounted.
fn cgroup_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fs_type = right.split_whitespace().next()?;
            (fs_type == "cgroup" || fs_type == "cgroup2")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .collect()
}

fn cgroup_members(relative: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for mount in cgroup_mounts() {
        collect_members(&mount.join(relative.trim_start_matches('/')), &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn collect_members(dir: &Path, pids: &mut Vec<i32>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_members(&entry.path(), pids);
        }
    }
}

fn remove_cgroups(relative: &str) {
    // Everything below the node's cgroup that containerd's pods made, in every
    // hierarchy; the node cgroup itself (v2) is the bed's.
    for mount in cgroup_mounts() {
        remove_tree(&mount.join(relative.trim_start_matches('/')));
    }
}

fn remove_tree(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path());
        }
    }
    for _ in 0..20 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            // Busy while its killed processes are reaped.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Shims started for this containerd: their command line names its socket.
fn shims_of(socket: &Path) -> Vec<i32> {
    let wanted = socket.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let text = String::from_utf8_lossy(&cmdline);
            text.contains("containerd-shim") && text.contains(&wanted)
        })
        .collect()
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
}

/// Unmounts every mount below `dir`, deepest first (what a killed kubelet or
/// containerd left mounted there).
pub fn unmount_below(dir: &Path) {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4).map(PathBuf::from))
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
    }
}
