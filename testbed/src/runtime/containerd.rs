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
use crate::{cgroup, sweep};

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

fn cgroup_members(relative: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = cgroup::hierarchies()
        .iter()
        .flat_map(|h| cgroup::members_recursive(&h.mount.join(relative.trim_start_matches('/'))))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn remove_cgroups(relative: &str) {
    // Everything below the node's cgroup that containerd's pods made, in every
    // hierarchy. In cgroup2 the node's cgroup and those above it are the bed's; in a
    // hybrid host's v1 hierarchies runc made them for the pods, so they go too, as far
    // up as they are empty (the bed's other nodes may still use the top one).
    let relative = Path::new(relative.trim_start_matches('/'));
    for hierarchy in cgroup::hierarchies() {
        let pods = hierarchy.mount.join(relative);
        if let Err(e) = cgroup::remove_tree(&pods) {
            tracing::warn!(error = %e, "removing the pods' cgroups");
        }
        if hierarchy.v1 {
            let above = pods
                .ancestors()
                .skip(1)
                .take_while(|dir| *dir != hierarchy.mount);
            for dir in above {
                if std::fs::remove_dir(dir).is_err() {
                    break;
                }
            }
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
    for point in sweep::mounts_under(dir) {
        let _ = cgroup::unmount(&point);
    }
}
