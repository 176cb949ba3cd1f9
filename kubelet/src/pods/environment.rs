//! A container's environment as upstream's kubelet makes it: `envFrom` sources first,
//! then `env` in order, values expanded with `$(NAME)` references to earlier ones, and
//! `valueFrom` read from the pod's fields, ConfigMaps and Secrets.
//!
//! A missing ConfigMap, Secret or key that is not optional is a
//! `CreateContainerConfigError` whose message is upstream's.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::Api;

/// Why a container cannot be configured: the waiting reason's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

/// Reads ConfigMaps and Secrets of one namespace, each at most once per resolution.
pub struct Sources {
    config_maps: Api<ConfigMap>,
    secrets: Api<Secret>,
    read_config_maps: HashMap<String, Option<ConfigMap>>,
    read_secrets: HashMap<String, Option<Secret>>,
}

impl Sources {
    pub fn new(client: kube::Client, namespace: &str) -> Sources {
        Sources {
            config_maps: Api::namespaced(client.clone(), namespace),
            secrets: Api::namespaced(client, namespace),
            read_config_maps: HashMap::new(),
            read_secrets: HashMap::new(),
        }
    }

    /// A ConfigMap's data (binary data as bytes), or `None` when it does not exist.
    pub async fn config_map(&mut self, name: &str) -> Result<Option<HashMap<String, Vec<u8>>>, ConfigError> {
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

    /// A Secret's data, or `None` when it does not exist.
    pub async fn secret(&mut self, name: &str) -> Result<Option<HashMap<String, Vec<u8>>>, ConfigError> {
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
    let mut env: Vec<(String, String)> = Vec::new();
    let set =
        |env: &mut Vec<(String, String)>, key: String, value: String| match env.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => env.push((key, value)),
        };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(source) = &from.config_map_ref {
            match sources.config_map(&source.name).await? {
                Some(data) => {
                    for (key, value) in sorted(data) {
                        set(&mut env, format!("{prefix}{key}"), String::from_utf8_lossy(&value).into_owned());
                    }
                }
                None if source.optional == Some(true) => {}
                None => return Err(ConfigError(format!("configmap \"{}\" not found", source.name))),
            }
        }
        if let Some(source) = &from.secret_ref {
            match sources.secret(&source.name).await? {
                Some(data) => {
                    for (key, value) in sorted(data) {
                        set(&mut env, format!("{prefix}{key}"), String::from_utf8_lossy(&value).into_owned());
                    }
                }
                None if source.optional == Some(true) => {}
                None => return Err(ConfigError(format!("secret \"{}\" not found", source.name))),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(value) = &var.value {
            let known: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            expand(value, &known)
        } else if let Some(from) = &var.value_from {
            if let Some(field) = &from.field_ref {
                field_value(pod, &field.field_path, addresses)
                    .ok_or_else(|| ConfigError(format!("unsupported fieldPath: {}", field.field_path)))?
            } else if let Some(key) = &from.config_map_key_ref {
                match sources.config_map(&key.name).await? {
                    Some(data) => match data.get(&key.key) {
                        Some(value) => String::from_utf8_lossy(value).into_owned(),
                        None if key.optional == Some(true) => continue,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {} in ConfigMap {namespace}/{}",
                                key.key, key.name
                            )));
                        }
                    },
                    None if key.optional == Some(true) => continue,
                    None => return Err(ConfigError(format!("configmap \"{}\" not found", key.name))),
                }
            } else if let Some(key) = &from.secret_key_ref {
                match sources.secret(&key.name).await? {
                    Some(data) => match data.get(&key.key) {
                        Some(value) => String::from_utf8_lossy(value).into_owned(),
                        None if key.optional == Some(true) => continue,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {} in Secret {namespace}/{}",
                                key.key, key.name
                            )));
                        }
                    },
                    None if key.optional == Some(true) => continue,
                    None => return Err(ConfigError(format!("secret \"{}\" not found", key.name))),
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
    Ok(env)
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
