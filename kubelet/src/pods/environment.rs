//! A container's environment as upstream's kubelet makes it: `envFrom` sources first,
//! then `env` in order, values expanded with `$(NAME)` references to earlier ones, and
//! `valueFrom` read from the pod's fields, ConfigMaps and Secrets; then the service
//! links (`KUBERNETES_SERVICE_HOST`, `<NAME>_SERVICE_PORT`, `<NAME>_PORT_…`) of the
//! `kubernetes` Service and, with `enableServiceLinks`, of the pod's namespace's
//! Services, for the names the container does not set itself.
//!
//! A missing ConfigMap, Secret or key that is not optional is a
//! `CreateContainerConfigError` whose message is upstream's.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVarSource, Pod, Secret, Service};
use kube::Api;
use kube::api::ListParams;

/// Why a container cannot be configured: the waiting reason's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

/// Reads ConfigMaps and Secrets of one namespace, each at most once per resolution.
pub struct Sources {
    client: kube::Client,
    namespace: String,
    config_maps: Api<ConfigMap>,
    secrets: Api<Secret>,
    read_config_maps: HashMap<String, Option<ConfigMap>>,
    read_secrets: HashMap<String, Option<Secret>>,
}

impl Sources {
    pub fn new(client: kube::Client, namespace: &str) -> Sources {
        Sources {
            client: client.clone(),
            namespace: namespace.to_owned(),
            config_maps: Api::namespaced(client.clone(), namespace),
            secrets: Api::namespaced(client, namespace),
            read_config_maps: HashMap::new(),
            read_secrets: HashMap::new(),
        }
    }

    /// A ConfigMap's data (binary data as bytes), or `None` when it does not exist.
    async fn config_map(&mut self, name: &str) -> Result<Option<HashMap<String, Vec<u8>>>, ConfigError> {
        if !self.read_config_maps.contains_key(name) {
            let read = self.config_maps.get_opt(name).await.map_err(|e| ConfigError(e.to_string()))?;
            self.read_config_maps.insert(name.to_owned(), read);
        }
        Ok(self.read_config_maps[name].as_ref().map(|cm| {
            let mut data: HashMap<String, Vec<u8>> =
                cm.data.iter().flatten().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
            data.extend(cm.binary_data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())));
            data
        }))
    }

    /// The service-link variables of the `kubernetes` Service in `default` and, when
    /// `links`, of every Service in the pod's namespace, as upstream's
    /// `getServiceEnvVarMap`: only Services with a cluster IP, by name.
    pub async fn service_links(&mut self, links: bool) -> Result<Vec<(String, String)>, ConfigError> {
        let failed = |e: kube::Error| ConfigError(format!("failed to list services: {e}"));
        let mut by_name: std::collections::BTreeMap<String, Service> = std::collections::BTreeMap::new();
        if links {
            let here: Api<Service> = Api::namespaced(self.client.clone(), &self.namespace);
            for service in here.list(&ListParams::default()).await.map_err(failed)? {
                by_name.insert(service.metadata.name.clone().unwrap_or_default(), service);
            }
        }
        if self.namespace != "default" || !links {
            let default: Api<Service> = Api::namespaced(self.client.clone(), "default");
            if let Some(master) = default.get_opt("kubernetes").await.map_err(failed)? {
                by_name.entry("kubernetes".into()).or_insert(master);
            }
        }
        Ok(by_name.values().flat_map(service_link_vars).collect())
    }

    /// The named source's data, or `None` when it does not exist.
    pub async fn data(&mut self, kind: Kind, name: &str) -> Result<Option<HashMap<String, Vec<u8>>>, ConfigError> {
        match kind {
            Kind::ConfigMap => self.config_map(name).await,
            Kind::Secret => self.secret(name).await,
        }
    }

    /// A Secret's data, or `None` when it does not exist.
    async fn secret(&mut self, name: &str) -> Result<Option<HashMap<String, Vec<u8>>>, ConfigError> {
        if !self.read_secrets.contains_key(name) {
            let read = self.secrets.get_opt(name).await.map_err(|e| ConfigError(e.to_string()))?;
            self.read_secrets.insert(name.to_owned(), read);
        }
        Ok(self.read_secrets[name].as_ref().map(|s| {
            let mut data: HashMap<String, Vec<u8>> =
                s.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
            data.extend(s.string_data.iter().flatten().map(|(k, v)| (k.clone(), v.clone().into_bytes())));
            data
        }))
    }
}

/// The node's and the pod's addresses, which the pod object may not show yet.
#[derive(Clone, Copy, Debug)]
pub struct Addresses<'a> {
    pub host_ip: &'a str,
    pub pod_ips: &'a [String],
}

pub async fn resolve(
    pod: &Pod,
    container: &Container,
    addresses: Addresses<'_>,
    sources: &mut Sources,
) -> Result<Vec<(String, String)>, ConfigError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
    let services = sources.service_links(links).await?;
    let mut env: Vec<(String, String)> = Vec::new();
    let set =
        |env: &mut Vec<(String, String)>, key: String, value: String| match env.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => env.push((key, value)),
        };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let refs = [
            from.config_map_ref.as_ref().map(|r| (Kind::ConfigMap, r.name.as_str(), r.optional)),
            from.secret_ref.as_ref().map(|r| (Kind::Secret, r.name.as_str(), r.optional)),
        ];
        for (kind, name, optional) in refs.into_iter().flatten() {
            let data = sources.data(kind, name).await?;
            for (key, value) in sorted(required(data, kind, name, optional)?.unwrap_or_default()) {
                set(&mut env, format!("{prefix}{key}"), String::from_utf8_lossy(&value).into_owned());
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(value) = &var.value {
            // The container's own variables first, then the service links.
            let known: HashMap<&str, &str> =
                services.iter().chain(env.iter()).map(|(k, v)| (k.as_str(), v.as_str())).collect();
            expand(value, &known)
        } else if let Some(from) = &var.value_from {
            if let Some(field) = &from.field_ref {
                field_value(pod, &field.field_path, addresses)
                    .ok_or_else(|| ConfigError(format!("unsupported fieldPath: {}", field.field_path)))?
            } else if let Some((kind, name, key, optional)) = key_ref(from) {
                let data = sources.data(kind, name).await?;
                let Some(data) = required(data, kind, name, optional)? else { continue };
                match data.get(key) {
                    Some(value) => String::from_utf8_lossy(value).into_owned(),
                    None if optional == Some(true) => continue,
                    None => {
                        let title = kind.title();
                        return Err(ConfigError(format!("couldn't find key {key} in {title} {namespace}/{name}")));
                    }
                }
            } else if let Some(resource) = &from.resource_field_ref {
                resource_value(container, &resource.resource)
                    .ok_or_else(|| ConfigError(format!("unsupported container resource: {}", resource.resource)))?
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(&mut env, var.name.clone(), value);
    }
    for (key, value) in services {
        if !env.iter().any(|(k, _)| *k == key) {
            env.push((key, value));
        }
    }
    Ok(env)
}

/// One Service's link variables, as upstream's `envvars.FromServices`.
fn service_link_vars(service: &Service) -> Vec<(String, String)> {
    let Some(spec) = &service.spec else { return Vec::new() };
    let ip = spec.cluster_ip.as_deref().unwrap_or_default();
    let Some(first) = spec.ports.iter().flatten().next() else { return Vec::new() };
    if ip.is_empty() || ip == "None" {
        return Vec::new();
    }
    let variable = |name: &str| name.to_ascii_uppercase().replace('-', "_");
    let prefix = variable(service.metadata.name.as_deref().unwrap_or_default());
    let mut vars = vec![
        (format!("{prefix}_SERVICE_HOST"), ip.to_owned()),
        (format!("{prefix}_SERVICE_PORT"), first.port.to_string()),
    ];
    for port in spec.ports.iter().flatten() {
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            vars.push((format!("{prefix}_SERVICE_PORT_{}", variable(name)), port.port.to_string()));
        }
    }
    let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_owned() };
    for (i, port) in spec.ports.iter().flatten().enumerate() {
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        let url = format!("{}://{host}:{}", protocol.to_ascii_lowercase(), port.port);
        if i == 0 {
            vars.push((format!("{prefix}_PORT"), url.clone()));
        }
        let link = format!("{prefix}_PORT_{}_{}", port.port, protocol.to_ascii_uppercase());
        vars.push((link.clone(), url));
        vars.push((format!("{link}_PROTO"), protocol.to_ascii_lowercase()));
        vars.push((format!("{link}_PORT"), port.port.to_string()));
        vars.push((format!("{link}_ADDR"), ip.to_owned()));
    }
    vars
}

/// The two sources of configuration data a pod refers to by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ConfigMap,
    Secret,
}

impl Kind {
    /// As upstream's messages name it in lower case (`configmap "x" not found`).
    pub fn noun(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmap",
            Kind::Secret => "secret",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
        }
    }
}

/// A source's data when it exists; a missing one is `None` if `optional`, else
/// upstream's error (`configmap "x" not found`).
pub fn required(
    data: Option<HashMap<String, Vec<u8>>>,
    kind: Kind,
    name: &str,
    optional: Option<bool>,
) -> Result<Option<HashMap<String, Vec<u8>>>, ConfigError> {
    match data {
        Some(data) => Ok(Some(data)),
        None if optional == Some(true) => Ok(None),
        None => Err(ConfigError(format!("{} \"{name}\" not found", kind.noun()))),
    }
}

/// A `configMapKeyRef` or `secretKeyRef`: its kind, source name, key and optional.
fn key_ref(from: &EnvVarSource) -> Option<(Kind, &str, &str, Option<bool>)> {
    if let Some(r) = &from.config_map_key_ref {
        return Some((Kind::ConfigMap, r.name.as_str(), r.key.as_str(), r.optional));
    }
    let r = from.secret_key_ref.as_ref()?;
    Some((Kind::Secret, r.name.as_str(), r.key.as_str(), r.optional))
}

fn sorted(data: HashMap<String, Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<_> = data.into_iter().collect();
    entries.sort();
    entries
}

/// Expands `$(NAME)` with earlier variables; `$$(NAME)` is a literal `$(NAME)`, and
/// an unknown name stays as written, as upstream's expansion does.
pub fn expand(value: &str, known: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('(')
            && let Some(close) = tail.find(')')
        {
            let name = &tail[..close];
            match known.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &tail[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The downward API's fields.
pub fn field_value(pod: &Pod, path: &str, addresses: Addresses<'_>) -> Option<String> {
    let meta = &pod.metadata;
    let bracketed = |prefix: &str| -> Option<String> {
        path.strip_prefix(prefix)?.strip_prefix("['")?.strip_suffix("']").map(str::to_owned)
    };
    Some(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => pod.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => addresses.host_ip.to_owned(),
        "status.podIP" => addresses.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => addresses.pod_ips.join(","),
        "metadata.labels" | "metadata.annotations" => {
            let map = if path == "metadata.labels" { &meta.labels } else { &meta.annotations };
            map.iter().flatten().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join("\n")
        }
        _ => {
            if let Some(key) = bracketed("metadata.labels") {
                meta.labels.as_ref().and_then(|l| l.get(&key)).cloned().unwrap_or_default()
            } else if let Some(key) = bracketed("metadata.annotations") {
                meta.annotations.as_ref().and_then(|a| a.get(&key)).cloned().unwrap_or_default()
            } else {
                return None;
            }
        }
    })
}

/// `limits.cpu` (whole cores, rounded up), `limits.memory`, `requests.*` in units.
pub fn resource_value(container: &Container, resource: &str) -> Option<String> {
    let (list, name) = resource.split_once('.')?;
    let resources = container.resources.clone().unwrap_or_default();
    let quantities = if list == "limits" { resources.limits } else { resources.requests };
    let quantity = quantities.and_then(|q| q.get(name).cloned())?;
    if name == "cpu" {
        let milli = waggle_scheduler::quantity::milli(&quantity)?;
        return Some(((milli + 999) / 1000).to_string());
    }
    waggle_scheduler::quantity::value(&quantity).map(|v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_links_are_upstreams() {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "my-db"},
            "spec": {"clusterIP": "10.96.0.20", "ports": [
                {"name": "sql", "port": 5432, "protocol": "TCP"},
                {"port": 53, "protocol": "UDP"}]}
        }))
        .unwrap();
        let vars = service_link_vars(&service);
        let get = |k: &str| vars.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MY_DB_SERVICE_HOST"), Some("10.96.0.20"));
        assert_eq!(get("MY_DB_SERVICE_PORT"), Some("5432"));
        assert_eq!(get("MY_DB_SERVICE_PORT_SQL"), Some("5432"));
        assert_eq!(get("MY_DB_PORT"), Some("tcp://10.96.0.20:5432"));
        assert_eq!(get("MY_DB_PORT_53_UDP"), Some("udp://10.96.0.20:53"));
        assert_eq!(get("MY_DB_PORT_53_UDP_PROTO"), Some("udp"));
        assert_eq!(get("MY_DB_PORT_53_UDP_PORT"), Some("53"));
        assert_eq!(get("MY_DB_PORT_53_UDP_ADDR"), Some("10.96.0.20"));
        assert_eq!(vars.len(), 12);
        let headless: Service = serde_json::from_value(json!({
            "metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }))
        .unwrap();
        assert!(service_link_vars(&headless).is_empty());
    }

    #[test]
    fn expansion_follows_upstream() {
        let known = HashMap::from([("A", "x"), ("B", "y")]);
        assert_eq!(expand("$(A)-$(B)", &known), "x-y");
        assert_eq!(expand("$$(A)", &known), "$(A)");
        assert_eq!(expand("$(C) $", &known), "$(C) $");
    }

    #[test]
    fn downward_fields() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "n", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-0", "containers": []},
        }))
        .unwrap();
        let pod_ips = ["10.244.0.5".to_owned()];
        let at = Addresses { host_ip: "10.250.0.1", pod_ips: &pod_ips };
        assert_eq!(field_value(&pod, "metadata.labels['app']", at).as_deref(), Some("web"));
        assert_eq!(field_value(&pod, "spec.nodeName", at).as_deref(), Some("node-0"));
        assert_eq!(field_value(&pod, "status.hostIP", at).as_deref(), Some("10.250.0.1"));
        assert_eq!(field_value(&pod, "status.podIP", at).as_deref(), Some("10.244.0.5"));
        assert_eq!(field_value(&pod, "spec.nope", at), None);
    }
}
