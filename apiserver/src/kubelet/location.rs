//! Where a pod's streams live: the container a request names (upstream's
//! `validateContainer`) and the kubelet of a node (upstream's `NodeConnectionInfoGetter`:
//! the first address of the preferred types, the port from `daemonEndpoints`).

use serde_json::Value;
use waggle_apimachinery::registry;

use super::dial::Backend;
use crate::handlers::get;
use crate::state::ApiState;
use crate::status::ApiError;
use crate::target::Target;

/// kube-apiserver's default `--kubelet-preferred-address-types`.
const PREFERRED_ADDRESS_TYPES: &[&str] = &[
    "Hostname",
    "InternalDNS",
    "InternalIP",
    "ExternalDNS",
    "ExternalIP",
];

/// kube-apiserver's default `--kubelet-port`, for nodes that report none.
const DEFAULT_KUBELET_PORT: u16 = 10250;

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The container a request addresses: the one named, else the only one.
pub fn container(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = crate::objects::name(pod);
    let containers = names(pod, "containers");
    match requested.filter(|c| !c.is_empty()) {
        Some(c) => {
            let known = ["containers", "initContainers", "ephemeralContainers"]
                .iter()
                .any(|list| names(pod, list).iter().any(|n| n == c));
            if known {
                Ok(c.to_owned())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            many => {
                let mut message = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    many.join(" ")
                );
                let init = names(pod, "initContainers");
                if !init.is_empty() {
                    message.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                Err(ApiError::bad_request(message))
            }
        },
    }
}

/// The node a pod is bound to (`None` before scheduling).
pub fn node_name(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

/// The kubelet of `node`: 404 if the node does not exist, upstream's error if it has no
/// usable address.
pub async fn kubelet(state: &ApiState, node: &str) -> Result<Backend, ApiError> {
    let nodes = registry::find("", "v1", "nodes").expect("nodes are served");
    let target = Target {
        resource: nodes,
        namespace: None,
        name: Some(node.to_owned()),
        subresource: None,
        watch_path: false,
    };
    let obj = get::read(state, &target).await?;
    let addresses: Vec<(&str, &str)> = obj
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|a| {
                    (
                        a.get("type").and_then(Value::as_str).unwrap_or_default(),
                        a.get("address").and_then(Value::as_str).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let host = PREFERRED_ADDRESS_TYPES.iter().find_map(|wanted| {
        addresses
            .iter()
            .find(|(kind, address)| kind == wanted && !address.is_empty())
            .map(|(_, a)| (*a).to_owned())
    });
    let Some(host) = host else {
        // Go's `%v` of []NodeAddress: `[{InternalIP 10.0.0.1} {Hostname n1}]`.
        let known: Vec<String> = addresses
            .iter()
            .map(|(kind, address)| format!("{{{kind} {address}}}"))
            .collect();
        return Err(ApiError::Unknown {
            message: format!(
                "no preferred addresses found; known addresses: [{}]",
                known.join(" ")
            ),
        });
    };
    let port = obj
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok(Backend { host, port })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn picks_the_named_or_only_container() {
        let one = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}], "initContainers": [{"name": "init"}]}});
        assert_eq!(container(&one, None).unwrap(), "app");
        assert_eq!(container(&one, Some("init")).unwrap(), "init");
        assert_eq!(
            container(&one, Some("x")).unwrap_err().to_string(),
            "container x is not valid for pod p"
        );
        let two = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            container(&two, None).unwrap_err().to_string(),
            "a container name must be specified for pod p, choose one of: [a b]"
        );
    }
}
