//! What pods request and nodes offer, and a node's account of the pods bound to it
//! (kube-scheduler's `NodeInfo`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;

/// What a container without a CPU request counts as when nodes are scored (millicores).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// What a container without a memory request counts as when nodes are scored (bytes).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Pods a node takes (only in a node's allocatable).
    pub pods: i64,
    /// Extended resources (`example.com/gpu`) and huge pages, by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// A resource list (`requests`, `limits`, `allocatable`, `overhead`).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resources {
        let mut resources = Resources::default();
        for (name, amount) in list {
            resources.set(name, amount);
        }
        resources
    }

    fn set(&mut self, name: &str, amount: &Quantity) {
        match name {
            "cpu" => self.milli_cpu = quantity::milli(amount).unwrap_or(0),
            "memory" => self.memory = quantity::value(amount).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = quantity::value(amount).unwrap_or(0),
            "pods" => self.pods = quantity::value(amount).unwrap_or(0),
            _ if is_scalar(name) => {
                self.scalar.insert(name.to_owned(), quantity::value(amount).unwrap_or(0));
            }
            _ => {}
        }
    }

    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (name, amount) in &other.scalar {
            *self.scalar.entry(name.clone()).or_default() += amount;
        }
    }

    pub fn subtract(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (name, amount) in &other.scalar {
            *self.scalar.entry(name.clone()).or_default() -= amount;
        }
    }

    fn max(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (name, amount) in &other.scalar {
            let mine = self.scalar.entry(name.clone()).or_default();
            *mine = (*mine).max(*amount);
        }
    }
}

/// Extended (domain-qualified: `example.com/gpu`) and prefixed native resources, and
/// huge pages.
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-") || name.contains('/')
}

/// A container's requests; a resource with a limit and no request requests its limit,
/// as the API server's defaulting makes it.
fn container_requests(container: &Container) -> BTreeMap<String, Quantity> {
    let resources = container.resources.clone().unwrap_or_default();
    let mut requests = resources.limits.unwrap_or_default();
    requests.extend(resources.requests.unwrap_or_default());
    requests
}

/// A pod's requests from its containers' (`per_container`): the sum of its containers
/// and sidecars, or the most any init container needs while the sidecars started
/// before it run, whichever is more; plus the pod's `overhead`.
fn aggregate(pod: &Pod, per_container: impl Fn(&Container) -> Resources) -> Resources {
    let Some(spec) = pod.spec.as_ref() else { return Resources::default() };
    let mut total = Resources::default();
    for container in &spec.containers {
        total.add(&per_container(container));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for container in spec.init_containers.iter().flatten() {
        let mut needs = per_container(container);
        if container.restart_policy.as_deref() == Some("Always") {
            total.add(&needs);
            sidecars.add(&needs);
            needs = sidecars.clone();
        } else {
            needs.add(&sidecars);
        }
        init_peak.max(&needs);
    }
    total.max(&init_peak);
    if let Some(overhead) = &spec.overhead {
        total.add(&Resources::from_list(overhead));
    }
    total
}

/// What the pod needs free on a node (NodeResourcesFit).
pub fn pod_requests(pod: &Pod) -> Resources {
    aggregate(pod, |c| Resources::from_list(&container_requests(c)))
}

/// CPU and memory as nodes are scored: a container without a request for one counts
/// [`DEFAULT_MILLI_CPU_REQUEST`] or [`DEFAULT_MEMORY_REQUEST`].
pub fn pod_non_zero_requests(pod: &Pod) -> Resources {
    aggregate(pod, |c| {
        let requests = container_requests(c);
        let mut resources = Resources::from_list(&requests);
        if !requests.contains_key("cpu") {
            resources.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !requests.contains_key("memory") {
            resources.memory = DEFAULT_MEMORY_REQUEST;
        }
        Resources { milli_cpu: resources.milli_cpu, memory: resources.memory, ..Resources::default() }
    })
}

/// A host port a pod's container claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// Empty and `0.0.0.0` mean every address.
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    pub fn conflicts(&self, other: &HostPort) -> bool {
        let any = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
        self.port == other.port
            && self.protocol == other.protocol
            && (any(&self.ip) || any(&other.ip) || self.ip == other.ip)
    }
}

/// The host ports of a pod's containers and sidecars.
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.is_some_and(|port| port > 0))
        .map(|p| HostPort {
            ip: p.host_ip.clone().unwrap_or_default(),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            port: p.host_port.unwrap_or_default(),
        })
        .collect()
}

/// A pod's priority (`spec.priority`, 0 when unset).
pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// What the scheduler keeps of a pod: for the pod it schedules and those on a node.
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub requests: Resources,
    pub non_zero: Resources,
    pub ports: Vec<HostPort>,
    pub priority: i32,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        PodInfo {
            requests: pod_requests(&pod),
            non_zero: pod_non_zero_requests(&pod),
            ports: host_ports(&pod),
            priority: priority(&pod),
            pod,
        }
    }
}

/// A node and what the pods bound to it take of it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub allocatable: Resources,
    pub requested: Resources,
    pub non_zero_requested: Resources,
    pub pods: Vec<PodInfo>,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let allocatable =
            node.status.as_ref().and_then(|s| s.allocatable.as_ref()).map(Resources::from_list).unwrap_or_default();
        NodeInfo {
            node,
            allocatable,
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            pods: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn add(&mut self, pod: PodInfo) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero);
        self.pods.push(pod);
    }

    /// This node without the pods `remove` picks.
    pub fn without(&self, remove: impl Fn(&PodInfo) -> bool) -> NodeInfo {
        let mut info = NodeInfo::new(self.node.clone());
        for pod in self.pods.iter().filter(|p| !remove(p)) {
            info.add(pod.clone());
        }
        info
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn requests_sum_containers_take_the_largest_init_container_and_add_overhead() {
        let p = pod(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "200m", "example.com/gpu": "1"}}},
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "1", "memory": "16Mi"}}},
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"name": "j", "resources": {"requests": {"cpu": "500m"}}},
            ],
            "overhead": {"cpu": "10m", "memory": "1Mi"},
        }));
        let requests = pod_requests(&p);
        // containers 300m + sidecar 50m = 350m; init i alone 1000m; j with the sidecar 550m.
        assert_eq!(requests.milli_cpu, 1000 + 10);
        assert_eq!(requests.memory, (64 << 20) + (1 << 20));
        assert_eq!(requests.scalar.get("example.com/gpu"), Some(&1));
        let non_zero = pod_non_zero_requests(&p);
        // b has no memory request: 200Mi; the sidecar none either.
        assert_eq!(non_zero.memory, (64 << 20) + DEFAULT_MEMORY_REQUEST + DEFAULT_MEMORY_REQUEST + (1 << 20));
    }

    #[test]
    fn host_ports_conflict_on_any_address() {
        let p = pod(json!({"containers": [{"name": "a", "ports": [
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"},
            {"containerPort": 90},
        ]}]}));
        let ports = host_ports(&p);
        assert_eq!(ports.len(), 2);
        let tcp = |ip: &str, port| HostPort { ip: ip.into(), protocol: "TCP".into(), port };
        assert!(ports[0].conflicts(&tcp("10.0.0.2", 8080)));
        assert!(!ports[0].conflicts(&tcp("", 8081)));
        let udp = |ip: &str| HostPort { ip: ip.into(), protocol: "UDP".into(), port: 53 };
        assert!(ports[1].conflicts(&udp("0.0.0.0")));
        assert!(!ports[1].conflicts(&udp("10.0.0.2")));
        assert!(!ports[1].conflicts(&tcp("10.0.0.1", 53)));
    }
}
