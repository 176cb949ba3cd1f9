//! A pod's spec as the runtime's configuration: the sandbox (the pod's namespaces,
//! network, DNS, log directory and cgroup parent) and each container (image, command,
//! environment, mounts, resources and security context), as upstream's kubelet builds
//! them for the CRI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod, PodSpec, SecurityContext};

use crate::runtime::labels;

/// Where the node keeps what it hands the runtime.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Pods' log directories live under this (`/var/log/pods`).
    pub log_dir: PathBuf,
    /// The cgroup every pod's cgroup is placed under (`/kubepods`).
    pub cgroup_root: String,
    /// Name servers of the cluster DNS (`--cluster-dns`); empty without one.
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    /// The node's own resolver configuration, for `dnsPolicy: Default` and for
    /// `ClusterFirst` without a cluster DNS (as upstream falls back).
    pub host_resolv_conf: PathBuf,
}

/// The pod's identity as the runtime's metadata and labels carry it.
pub struct PodRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

impl<'a> PodRef<'a> {
    pub fn of(pod: &'a Pod) -> PodRef<'a> {
        PodRef {
            namespace: pod.metadata.namespace.as_deref().unwrap_or("default"),
            name: pod.metadata.name.as_deref().unwrap_or_default(),
            uid: pod.metadata.uid.as_deref().unwrap_or_default(),
        }
    }

    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (labels::POD_NAME.to_owned(), self.name.to_owned()),
            (labels::POD_NAMESPACE.to_owned(), self.namespace.to_owned()),
            (labels::POD_UID.to_owned(), self.uid.to_owned()),
        ])
    }

    /// `namespace/name`, for logs and errors.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The directory the pod's container logs go to: upstream's
/// `/var/log/pods/<namespace>_<name>_<uid>`.
pub fn log_directory(layout: &Layout, pod: &PodRef) -> PathBuf {
    layout.log_dir.join(format!("{}_{}_{}", pod.namespace, pod.name, pod.uid))
}

/// The pod's cgroup, below the node's cgroup root.
pub fn cgroup_parent(layout: &Layout, pod: &PodRef) -> String {
    format!("{}/pod{}", layout.cgroup_root.trim_end_matches('/'), pod.uid)
}

pub fn sandbox_config(layout: &Layout, pod: &Pod, attempt: u32) -> cri::PodSandboxConfig {
    let identity = PodRef::of(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let mut labels = identity.labels();
    for (key, value) in pod.metadata.labels.iter().flatten() {
        labels.entry(key.clone()).or_insert_with(|| value.clone());
    }
    let annotations: HashMap<String, String> =
        pod.metadata.annotations.clone().unwrap_or_default().into_iter().collect();
    let hostname = if host_network {
        String::new()
    } else {
        let base = spec.hostname.clone().unwrap_or_else(|| identity.name.to_owned());
        // A hostname is one DNS label: at most 63 characters, as upstream truncates.
        base.chars().take(63).collect::<String>().trim_end_matches(['-', '.']).to_owned()
    };
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| cri::PortMapping {
            protocol: protocol(p.protocol.as_deref()) as i32,
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let pod_security = spec.security_context.clone().unwrap_or_default();
    let security = cri::LinuxSandboxSecurityContext {
        namespace_options: Some(namespace_options(&spec)),
        run_as_user: pod_security.run_as_user.map(|value| cri::Int64Value { value }),
        run_as_group: pod_security.run_as_group.map(|value| cri::Int64Value { value }),
        supplemental_groups: pod_security.supplemental_groups.clone().unwrap_or_default(),
        ..Default::default()
    };
    let sysctls = pod_security.sysctls.iter().flatten().map(|s| (s.name.clone(), s.value.clone())).collect();
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: identity.name.to_owned(),
            uid: identity.uid.to_owned(),
            namespace: identity.namespace.to_owned(),
            attempt,
        }),
        hostname,
        log_directory: log_directory(layout, &identity).display().to_string(),
        dns_config: Some(dns_config(layout, pod)),
        port_mappings,
        labels,
        annotations,
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent(layout, &identity),
            security_context: Some(security),
            sysctls,
            ..Default::default()
        }),
        windows: None,
    }
}

fn protocol(name: Option<&str>) -> cri::Protocol {
    match name {
        Some("UDP") => cri::Protocol::Udp,
        Some("SCTP") => cri::Protocol::Sctp,
        _ => cri::Protocol::Tcp,
    }
}

/// The pod's resolver: the cluster DNS with the namespace's search path for
/// `ClusterFirst`, the node's for `Default` (and `ClusterFirst` without a cluster
/// DNS), none but `dnsConfig` for `None`; `dnsConfig` is merged in as upstream does.
fn dns_config(layout: &Layout, pod: &Pod) -> cri::DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host_network = spec.host_network.unwrap_or(false);
    let cluster_first = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let mut config = if policy == "None" {
        cri::DnsConfig::default()
    } else if cluster_first && !layout.cluster_dns.is_empty() {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let domain = &layout.cluster_domain;
        let mut searches = vec![format!("{namespace}.svc.{domain}"), format!("svc.{domain}"), domain.clone()];
        searches.extend(host_resolver(&layout.host_resolv_conf).searches);
        cri::DnsConfig { servers: layout.cluster_dns.clone(), searches, options: vec!["ndots:5".into()] }
    } else {
        host_resolver(&layout.host_resolv_conf)
    };
    if let Some(extra) = spec.dns_config {
        for server in extra.nameservers.into_iter().flatten() {
            if !config.servers.contains(&server) {
                config.servers.push(server);
            }
        }
        for search in extra.searches.into_iter().flatten() {
            if !config.searches.contains(&search) {
                config.searches.push(search);
            }
        }
        for option in extra.options.into_iter().flatten() {
            let rendered = match &option.value {
                Some(value) => format!("{}:{value}", option.name.clone().unwrap_or_default()),
                None => option.name.clone().unwrap_or_default(),
            };
            let name = option.name.unwrap_or_default();
            config.options.retain(|o| o.split(':').next() != Some(name.as_str()));
            config.options.push(rendered);
        }
    }
    config
}

/// The servers, search path and options of a resolv.conf; empty when unreadable.
fn host_resolver(path: &Path) -> cri::DnsConfig {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut config = cri::DnsConfig::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => config.servers.extend(words.next().map(str::to_owned)),
            Some("search") | Some("domain") => config.searches = words.map(str::to_owned).collect(),
            Some("options") => config.options.extend(words.map(str::to_owned)),
            _ => {}
        }
    }
    config
}

/// The log file of a container attempt, relative to the pod's log directory.
pub fn container_log_path(container: &str, attempt: u32) -> String {
    format!("{container}/{attempt}.log")
}

/// What a container's configuration is made of besides its spec: the resolved
/// environment and the mounts of its volumes.
pub struct Resolved {
    pub envs: Vec<(String, String)>,
    pub mounts: Vec<cri::Mount>,
}

/// The namespaces the pod's sandbox and containers share or not, as upstream's: the
/// node's when `hostNetwork`/`hostPID`/`hostIPC`, else the pod's network and IPC, and
/// each container its own PIDs unless `shareProcessNamespace`.
fn namespace_options(spec: &PodSpec) -> cri::NamespaceOption {
    let namespace_mode = |node: bool| if node { cri::NamespaceMode::Node } else { cri::NamespaceMode::Pod } as i32;
    cri::NamespaceOption {
        network: namespace_mode(spec.host_network.unwrap_or(false)),
        pid: if spec.host_pid.unwrap_or(false) {
            cri::NamespaceMode::Node as i32
        } else if spec.share_process_namespace.unwrap_or(false) {
            cri::NamespaceMode::Pod as i32
        } else {
            cri::NamespaceMode::Container as i32
        },
        ipc: namespace_mode(spec.host_ipc.unwrap_or(false)),
        ..Default::default()
    }
}

/// An ephemeral container as the container it runs as (the fields they share).
pub fn ephemeral_as_container(ephemeral: &EphemeralContainer) -> Container {
    let value = serde_json::to_value(ephemeral).unwrap_or_default();
    serde_json::from_value(value).unwrap_or_else(|_| Container { name: ephemeral.name.clone(), ..Default::default() })
}

/// `container`'s config; `pid_target` is the runtime id of the container whose PID
/// namespace it joins (an ephemeral container's `targetContainerName`).
pub fn container_config(
    pod: &Pod,
    container: &Container,
    attempt: u32,
    resolved: Resolved,
    pid_target: Option<String>,
) -> cri::ContainerConfig {
    let identity = PodRef::of(pod);
    let mut labels = identity.labels();
    labels.insert(labels::CONTAINER_NAME.into(), container.name.clone());
    let annotations = HashMap::from([("io.kubernetes.container.restartCount".to_owned(), attempt.to_string())]);
    let pod_security = pod.spec.as_ref().and_then(|s| s.security_context.clone()).unwrap_or_default();
    let security = container.security_context.clone().unwrap_or_default();
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata { name: container.name.clone(), attempt }),
        image: Some(crate::runtime::image_spec(container.image.as_deref().unwrap_or_default())),
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: resolved.envs.into_iter().map(|(key, value)| cri::KeyValue { key, value }).collect(),
        mounts: resolved.mounts,
        labels,
        annotations,
        log_path: container_log_path(&container.name, attempt),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(resources(container)),
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(match pid_target {
                    Some(target_id) => cri::NamespaceOption {
                        pid: cri::NamespaceMode::Target as i32,
                        target_id,
                        ..namespace_options(&pod.spec.clone().unwrap_or_default())
                    },
                    None => namespace_options(&pod.spec.clone().unwrap_or_default()),
                }),
                ..security_context(&security, &pod_security)
            }),
        }),
        ..Default::default()
    }
}

/// CPU shares from the request, CFS quota from the limit, the memory limit: the cgroup
/// settings upstream derives from a container's resources.
fn resources(container: &Container) -> cri::LinuxContainerResources {
    const PERIOD: i64 = 100_000;
    let resources = container.resources.clone().unwrap_or_default();
    let get = |list: &Option<std::collections::BTreeMap<String, _>>, name: &str| {
        list.as_ref().and_then(|l| l.get(name)).cloned()
    };
    let cpu_limit = get(&resources.limits, "cpu").and_then(|q| waggle_scheduler::quantity::milli(&q));
    let cpu_request = get(&resources.requests, "cpu").and_then(|q| waggle_scheduler::quantity::milli(&q)).or(cpu_limit);
    let memory_limit = get(&resources.limits, "memory").and_then(|q| waggle_scheduler::quantity::value(&q));
    cri::LinuxContainerResources {
        cpu_shares: cpu_request.map(|m| (m * 1024 / 1000).max(2)).unwrap_or(2),
        cpu_period: if cpu_limit.is_some() { PERIOD } else { 0 },
        cpu_quota: cpu_limit.map(|m| (m * PERIOD / 1000).max(1000)).unwrap_or(0),
        memory_limit_in_bytes: memory_limit.unwrap_or(0),
        ..Default::default()
    }
}

fn security_context(
    container: &SecurityContext,
    pod: &k8s_openapi::api::core::v1::PodSecurityContext,
) -> cri::LinuxContainerSecurityContext {
    let capabilities = container.capabilities.clone().unwrap_or_default();
    cri::LinuxContainerSecurityContext {
        capabilities: Some(cri::Capability {
            add_capabilities: capabilities.add.unwrap_or_default(),
            drop_capabilities: capabilities.drop.unwrap_or_default(),
            ..Default::default()
        }),
        privileged: container.privileged.unwrap_or(false),
        run_as_user: container.run_as_user.or(pod.run_as_user).map(|value| cri::Int64Value { value }),
        run_as_group: container.run_as_group.or(pod.run_as_group).map(|value| cri::Int64Value { value }),
        readonly_rootfs: container.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: pod.supplemental_groups.clone().unwrap_or_default(),
        no_new_privs: container.allow_privilege_escalation == Some(false),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layout(resolv: &Path) -> Layout {
        Layout {
            log_dir: "/var/log/pods".into(),
            cgroup_root: "/kubepods".into(),
            cluster_dns: vec!["10.96.0.10".into()],
            cluster_domain: "cluster.local".into(),
            host_resolv_conf: resolv.to_owned(),
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn the_sandbox_carries_identity_logs_cgroup_and_cluster_dns() {
        let resolv = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(resolv.path(), "nameserver 1.1.1.1\nsearch corp.example\n").unwrap();
        let pod = pod(json!({"containers": [{"name": "app", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}));
        let config = sandbox_config(&layout(resolv.path()), &pod, 2);
        let metadata = config.metadata.unwrap();
        assert_eq!((metadata.name.as_str(), metadata.namespace.as_str(), metadata.attempt), ("web", "shop", 2));
        assert_eq!(config.log_directory, "/var/log/pods/shop_web_u-1");
        assert_eq!(config.linux.unwrap().cgroup_parent, "/kubepods/podu-1");
        assert_eq!(config.labels["app"], "web");
        assert_eq!(config.labels[labels::POD_UID], "u-1");
        let dns = config.dns_config.unwrap();
        assert_eq!(dns.servers, ["10.96.0.10"]);
        assert_eq!(dns.searches, ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"]);
        assert_eq!(dns.options, ["ndots:5"]);
        assert_eq!(config.port_mappings.len(), 1);
        assert_eq!(config.port_mappings[0].host_port, 8080);
    }

    #[test]
    fn default_dns_policy_uses_the_node_resolver_and_dns_config_merges() {
        let resolv = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(resolv.path(), "nameserver 1.1.1.1\noptions ndots:1 edns0\n").unwrap();
        let pod = pod(json!({
            "dnsPolicy": "Default",
            "dnsConfig": {"nameservers": ["9.9.9.9"], "options": [{"name": "ndots", "value": "2"}]},
            "containers": [{"name": "app"}],
        }));
        let dns = sandbox_config(&layout(resolv.path()), &pod, 0).dns_config.unwrap();
        assert_eq!(dns.servers, ["1.1.1.1", "9.9.9.9"]);
        assert_eq!(dns.options, ["edns0", "ndots:2"]);
    }

    #[test]
    fn container_resources_become_cgroup_settings() {
        let pod = pod(json!({"containers": [{
            "name": "app", "image": "busybox:1", "command": ["sh"], "args": ["-c", "true"], "tty": true,
            "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "64Mi"}},
        }]}));
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let config = container_config(
            &pod,
            container,
            3,
            Resolved { envs: vec![("A".into(), "1".into())], mounts: vec![] },
            None,
        );
        assert_eq!(config.log_path, "app/3.log");
        assert_eq!(config.command, ["sh"]);
        assert!(config.tty);
        assert_eq!(config.envs[0].key, "A");
        let resources = config.linux.unwrap().resources.unwrap();
        assert_eq!(resources.cpu_shares, 256);
        assert_eq!((resources.cpu_quota, resources.cpu_period), (50_000, 100_000));
        assert_eq!(resources.memory_limit_in_bytes, 64 << 20);
    }
}
