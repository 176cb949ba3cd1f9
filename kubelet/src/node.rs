//! The Node object this kubelet registers and keeps alive: its addresses, capacity and
//! kubelet endpoint, a `Ready` condition refreshed every [`STATUS_PERIOD`], and the
//! node Lease in `kube-node-lease` renewed every [`LEASE_PERIOD`], as upstream's
//! kubelet does (the node lifecycle controller reads either).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::Options;
use crate::error::Error;

const STATUS_PERIOD: Duration = Duration::from_secs(10);
const LEASE_PERIOD: Duration = Duration::from_secs(10);
const LEASE_DURATION_SECONDS: i32 = 40;
const FIELD_MANAGER: &str = "kubelet";

/// What the Node reports about this machine and runtime.
pub struct NodeFacts {
    pub runtime_version: String,
    pub kernel_version: String,
    pub os_image: String,
    pub boot_id: String,
    pub machine_id: String,
    pub cpus: usize,
    pub memory_kib: u64,
}

impl NodeFacts {
    pub fn read(runtime_version: String) -> NodeFacts {
        let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default();
        let os_image = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned()))
            .unwrap_or_else(|| "Linux".into());
        let memory_kib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()))
            .unwrap_or(0);
        NodeFacts {
            runtime_version,
            kernel_version: read("/proc/sys/kernel/osrelease"),
            os_image,
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            machine_id: read("/etc/machine-id"),
            cpus: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            memory_kib,
        }
    }
}

/// Registers the Node (creating it, or taking over an existing one) with its status.
pub async fn register(nodes: &Api<Node>, options: &Options, facts: &NodeFacts) -> Result<(), Error> {
    let name = &options.node_name;
    let mut labels = json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
    });
    for (key, value) in &options.node_labels {
        labels[key] = json!(value);
    }
    let mut spec = json!({});
    if let Some(cidr) = &options.pod_cidr {
        spec = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
    }
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .expect("a Node built from valid JSON");
    match nodes.create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &node).await {
        Ok(_) => tracing::info!(node = %name, "registered the node"),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let patch = json!({"metadata": {"labels": node.metadata.labels}, "spec": spec});
            nodes.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            tracing::info!(node = %name, "the node was registered already: taking it over");
        }
        Err(e) => return Err(e.into()),
    }
    report_status(nodes, options, facts).await
}

/// Writes the Node's status: addresses, capacity, conditions with a fresh heartbeat.
pub async fn report_status(nodes: &Api<Node>, options: &Options, facts: &NodeFacts) -> Result<(), Error> {
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).map_err(|e| Error::Serve(e.to_string()))?.to_string();
    let existing = nodes.get_status(&options.node_name).await?;
    let conditions = existing.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    // lastTransitionTime moves only when a condition's status changes.
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        let since = conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == status)
            .map(|c| json!(c.last_transition_time))
            .unwrap_or_else(|| json!(now));
        json!({
            "type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": since,
        })
    };
    let capacity = json!({
        "cpu": facts.cpus.to_string(),
        "memory": format!("{}Ki", facts.memory_kib),
        "pods": options.max_pods.to_string(),
        "ephemeral-storage": "100Gi",
    });
    let status = json!({
        "status": {
            "addresses": [{"type": "InternalIP", "address": options.node_ip.to_string()}],
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": options.port}},
            "nodeInfo": {
                "machineID": facts.machine_id,
                "systemUUID": facts.machine_id,
                "bootID": facts.boot_id,
                "kernelVersion": facts.kernel_version,
                "osImage": facts.os_image,
                "containerRuntimeVersion": facts.runtime_version,
                "kubeletVersion": crate::KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            },
        }
    });
    nodes.patch_status(&options.node_name, &PatchParams::default(), &Patch::Merge(&status)).await?;
    Ok(())
}

/// Renews the node Lease and refreshes the Node's status until an API call fails for
/// good; transient failures are logged and retried on the next period.
pub async fn keep_alive(client: kube::Client, options: &Options, facts: &NodeFacts) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    let mut status_tick = tokio::time::interval(STATUS_PERIOD);
    let mut lease_tick = tokio::time::interval(LEASE_PERIOD);
    loop {
        tokio::select! {
            _ = status_tick.tick() => {
                if let Err(e) = report_status(&nodes, options, facts).await {
                    tracing::warn!(error = %e, "updating the node status");
                }
            }
            _ = lease_tick.tick() => {
                if let Err(e) = renew_lease(&leases, &nodes, &options.node_name).await {
                    tracing::warn!(error = %e, "renewing the node lease");
                }
            }
        }
    }
}

async fn renew_lease(leases: &Api<Lease>, nodes: &Api<Node>, node: &str) -> Result<(), Error> {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let spec = json!({"holderIdentity": node, "leaseDurationSeconds": LEASE_DURATION_SECONDS, "renewTime": now});
    match leases.patch(node, &PatchParams::default(), &Patch::Merge(&json!({"spec": spec}))).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            // The Lease is owned by the Node, so it goes when the Node goes.
            let owner = nodes.get(node).await?;
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {
                    "name": node,
                    "namespace": "kube-node-lease",
                    "ownerReferences": [{
                        "apiVersion": "v1", "kind": "Node", "name": node,
                        "uid": owner.metadata.uid.unwrap_or_default(),
                    }],
                },
                "spec": spec,
            }))
            .expect("a Lease built from valid JSON");
            leases.create(&PostParams::default(), &lease).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
