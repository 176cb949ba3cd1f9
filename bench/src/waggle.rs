//! Waggle's column: the real `waggle proxy` daemon, fed the same services as the
//! kube-proxy baselines through its file source, attached to the node's cgroup.

use std::{
    collections::BTreeMap,
    fmt::Write,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use waggle_testbed::Spawned;

use crate::{env::Stage, run::TARGET_VIP, services::BenchService};

pub struct WaggleProxy {
    process: Spawned,
    programmed_in: Duration,
    pin_dir: PathBuf,
}

impl WaggleProxy {
    /// Starts the proxy on node 0 and waits until the target ClusterIP answers.
    pub fn start(stage: &Stage, services: &[BenchService]) -> anyhow::Result<Self> {
        let run_dir = stage.bed.run_dir().join("waggle-proxy");
        std::fs::create_dir_all(&run_dir)?;
        let manifests = run_dir.join("services.yaml");
        std::fs::write(
            &manifests,
            manifests_yaml(services, stage.bed.node(0).name()),
        )?;
        let pin_dir = stage.bed.bpf_dir().join("waggle-proxy");
        let node = stage.bed.node(0);
        let mut command = node.netns().command(waggle_binary()?);
        command
            .arg("proxy")
            .args(["--node-name", node.name()])
            .arg("--from-files")
            .arg(&manifests)
            .arg("--cgroup")
            .arg(node.cgroup())
            .arg("--pin-dir")
            .arg(&pin_dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(run_dir.join("proxy.log"))?);
        let started = Instant::now();
        let process = stage.bed.spawn(command)?;
        let mut proxy = WaggleProxy {
            process,
            programmed_in: Duration::ZERO,
            pin_dir,
        };
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Some(status) = proxy.process.try_wait()? {
                let log = std::fs::read_to_string(run_dir.join("proxy.log")).unwrap_or_default();
                bail!("waggle proxy exited ({status}):\n{log}");
            }
            let serving = stage
                .client
                .command("bash")
                .args([
                    "-c",
                    &format!("exec 3<>/dev/tcp/{TARGET_VIP}/{}", crate::env::HTTP_PORT),
                ])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if serving {
                proxy.programmed_in = started.elapsed();
                return Ok(proxy);
            }
            if Instant::now() > deadline {
                bail!("the ClusterIP did not answer within 60s of starting waggle proxy");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// From process start to the ClusterIP answering (load, attach, parse, program).
    pub fn programmed_in(&self) -> Duration {
        self.programmed_in
    }

    /// User + system CPU time the daemon has used so far (`/proc/<pid>/stat`), to show
    /// that it stays idle while connections are measured.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let path = format!("/proc/{}/stat", self.process.id());
        let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        cpu_ticks(&stat)
            .map(|ticks| {
                // SAFETY: sysconf has no preconditions.
                let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
                Duration::from_nanos(ticks * 1_000_000_000 / hz)
            })
            .with_context(|| format!("{path}: unexpected format"))
    }

    /// Stops the daemon and removes its pinned programs and maps.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.process.kill()?;
        waggle_datapath::socket_lb::detach_pinned(&self.pin_dir).context("detaching socket LB")?;
        if self.pin_dir.exists() {
            std::fs::remove_dir_all(&self.pin_dir)?;
        }
        Ok(())
    }
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the command name in
/// parentheses may contain spaces, so fields are counted after its closing parenthesis.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": field 3 (state) is index 0, so field N is index N - 3.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The `waggle` binary built beside this one.
fn waggle_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("waggle");
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo xtask build --release`",
            path.display()
        );
    }
    Ok(path)
}

/// Service and EndpointSlice manifests for `services` (ports of one service grouped),
/// endpoints on `node`.
pub fn manifests_yaml(services: &[BenchService], node: &str) -> String {
    let mut grouped: BTreeMap<(&str, &str), Vec<&BenchService>> = BTreeMap::new();
    for svc in services {
        grouped
            .entry((&svc.namespace, &svc.name))
            .or_default()
            .push(svc);
    }
    let mut out = String::new();
    for ((namespace, name), ports) in grouped {
        let ip = ports[0].cluster_ip;
        let _ = write!(
            out,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  type: ClusterIP\n  clusterIP: {ip}\n  clusterIPs: [{ip}]\n  ipFamilies: [IPv4]\n  ports:\n"
        );
        for port in &ports {
            let target = port.endpoints.first().map(|(_, p)| *p).unwrap_or(port.port);
            let _ = writeln!(
                out,
                "  - {{name: {}, port: {}, protocol: TCP, targetPort: {target}}}",
                port.port_name, port.port
            );
        }
        let _ = write!(
            out,
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-slice\n  namespace: {namespace}\n  labels:\n    kubernetes.io/service-name: {name}\naddressType: IPv4\nports:\n"
        );
        for port in &ports {
            let target = port.endpoints.first().map(|(_, p)| *p).unwrap_or(port.port);
            let _ = writeln!(
                out,
                "- {{name: {}, port: {target}, protocol: TCP}}",
                port.port_name
            );
        }
        let _ = writeln!(out, "endpoints:");
        let mut addresses: Vec<_> = ports
            .iter()
            .flat_map(|p| p.endpoints.iter().map(|(ip, _)| *ip))
            .collect();
        addresses.sort();
        addresses.dedup();
        for address in addresses {
            let _ = writeln!(
                out,
                "- {{addresses: [\"{address}\"], conditions: {{ready: true}}, nodeName: {node}}}"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::synthetic;

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat =
            "4242 (waggle proxy) S 1 4242 4242 0 -1 4194560 900 0 0 0 17 5 0 0 20 0 4 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(22));
        assert_eq!(cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn manifests_have_a_service_and_a_slice_per_service() {
        let text = manifests_yaml(&synthetic(3), "node0");
        assert_eq!(text.matches("kind: Service\n").count(), 3);
        assert_eq!(text.matches("kind: EndpointSlice\n").count(), 3);
        assert_eq!(text.matches("conditions: {ready: true}").count(), 12);
        assert!(text.contains("kubernetes.io/service-name: svc-1"));
    }
}
