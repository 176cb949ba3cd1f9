//! Printers of services, nodes, namespaces, config maps, secrets, service accounts,
//! events, endpoints, endpoint slices, network policies and leases.

use jiff::Timestamp;
use serde_json::Value;

use super::{AGE, Cells, Column, Description, NAME, Printer, age, arr, col, format_labels, i, name, none_if_empty, s, selector_string};

static SERVICE: &[Column] = &[
    NAME,
    col("Type", "string", 0, field!("core.v1.ServiceSpec", "type")),
    col("Cluster-IP", "string", 0, field!("core.v1.ServiceSpec", "clusterIP")),
    col("External-IP", "string", 0, field!("core.v1.ServiceSpec", "externalIPs")),
    col("Port(s)", "string", 0, field!("core.v1.ServiceSpec", "ports")),
    AGE,
    col("Selector", "string", 1, field!("core.v1.ServiceSpec", "selector")),
];

static NODE: &[Column] = &[
    NAME,
    col("Status", "string", 0, Description::Text("The status of the node")),
    col("Roles", "string", 0, Description::Text("The roles of the node")),
    AGE,
    col("Version", "string", 0, field!("core.v1.NodeSystemInfo", "kubeletVersion")),
    col("Internal-IP", "string", 1, field!("core.v1.NodeStatus", "addresses")),
    col("External-IP", "string", 1, field!("core.v1.NodeStatus", "addresses")),
    col("OS-Image", "string", 1, field!("core.v1.NodeSystemInfo", "osImage")),
    col("Kernel-Version", "string", 1, field!("core.v1.NodeSystemInfo", "kernelVersion")),
    col("Container-Runtime", "string", 1, field!("core.v1.NodeSystemInfo", "containerRuntimeVersion")),
];

static NAMESPACE: &[Column] = &[NAME, col("Status", "string", 0, Description::Text("The status of the namespace")), AGE];

static CONFIG_MAP: &[Column] = &[NAME, col("Data", "string", 0, field!("core.v1.ConfigMap", "data")), AGE];

static SECRET: &[Column] = &[
    NAME,
    col("Type", "string", 0, field!("core.v1.Secret", "type")),
    col("Data", "string", 0, field!("core.v1.Secret", "data")),
    AGE,
];

static SERVICE_ACCOUNT: &[Column] = &[NAME, col("Secrets", "string", 0, field!("core.v1.ServiceAccount", "secrets")), AGE];

static EVENT: &[Column] = &[
    col("Last Seen", "string", 0, field!("core.v1.Event", "lastTimestamp")),
    col("Type", "string", 0, field!("core.v1.Event", "type")),
    col("Reason", "string", 0, field!("core.v1.Event", "reason")),
    col("Object", "string", 0, field!("core.v1.Event", "involvedObject")),
    col("Subobject", "string", 1, field!("core.v1.ObjectReference", "fieldPath")),
    col("Source", "string", 1, field!("core.v1.Event", "source")),
    col("Message", "string", 0, field!("core.v1.Event", "message")),
    col("First Seen", "string", 1, field!("core.v1.Event", "firstTimestamp")),
    col("Count", "string", 1, field!("core.v1.Event", "count")),
    Column { priority: 1, ..NAME },
];

static ENDPOINTS: &[Column] = &[NAME, col("Endpoints", "string", 0, field!("core.v1.Endpoints", "subsets")), AGE];

static ENDPOINT_SLICE: &[Column] = &[
    NAME,
    col("AddressType", "string", 0, field!("discovery.v1.EndpointSlice", "addressType")),
    col("Ports", "string", 0, field!("discovery.v1.EndpointSlice", "ports")),
    col("Endpoints", "string", 0, field!("discovery.v1.EndpointSlice", "endpoints")),
    AGE,
];

static NETWORK_POLICY: &[Column] = &[
    NAME,
    col("Pod-Selector", "string", 0, field!("networking.v1.NetworkPolicySpec", "podSelector")),
    AGE,
];

static LEASE: &[Column] = &[NAME, col("Holder", "string", 0, field!("coordination.v1.LeaseSpec", "holderIdentity")), AGE];

pub(super) fn printer(kind: &str, group: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], Cells) = match (group, kind) {
        ("", "Service") => (SERVICE, service),
        ("", "Node") => (NODE, node),
        ("", "Namespace") => (NAMESPACE, namespace),
        ("", "ConfigMap") => (CONFIG_MAP, config_map),
        ("", "Secret") => (SECRET, secret),
        ("", "ServiceAccount") => (SERVICE_ACCOUNT, service_account),
        ("", "Event") => (EVENT, event),
        ("", "Endpoints") => (ENDPOINTS, endpoints),
        ("discovery.k8s.io", "EndpointSlice") => (ENDPOINT_SLICE, endpoint_slice),
        ("networking.k8s.io", "NetworkPolicy") => (NETWORK_POLICY, network_policy),
        ("coordination.k8s.io", "Lease") => (LEASE, lease),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

fn count(obj: &Value, pointer: &str) -> usize {
    obj.pointer(pointer).and_then(Value::as_object).map_or(0, |m| m.len())
}

fn strings(obj: &Value, pointer: &str) -> Vec<String> {
    arr(obj, pointer).iter().filter_map(Value::as_str).map(str::to_owned).collect()
}

fn service(obj: &Value, now: Timestamp) -> Vec<Value> {
    let kind = s(obj, "/spec/type");
    let cluster_ip = arr(obj, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or(s(obj, "/spec/clusterIP"));
    let external_ips = strings(obj, "/spec/externalIPs");
    let external = match kind {
        "ClusterIP" | "NodePort" | "" if external_ips.is_empty() => "<none>".to_owned(),
        "ClusterIP" | "NodePort" | "" => external_ips.join(","),
        "LoadBalancer" => {
            let lb: Vec<String> = arr(obj, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|ing| [s(ing, "/ip"), s(ing, "/hostname")].into_iter().find(|v| !v.is_empty()))
                .map(str::to_owned)
                .collect();
            let all: Vec<String> = lb.into_iter().chain(external_ips).collect();
            if all.is_empty() { "<pending>".to_owned() } else { all.join(",") }
        }
        "ExternalName" => s(obj, "/spec/externalName").to_owned(),
        _ => "<unknown>".to_owned(),
    };
    let ports: Vec<String> = arr(obj, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = if s(p, "/protocol").is_empty() { "TCP" } else { s(p, "/protocol") };
            match i(p, "/nodePort") {
                n if n > 0 => format!("{}:{n}/{protocol}", i(p, "/port")),
                _ => format!("{}/{protocol}", i(p, "/port")),
            }
        })
        .collect();
    vec![
        name(obj).into(),
        kind.into(),
        none_if_empty(cluster_ip.to_owned()).into(),
        external.into(),
        none_if_empty(ports.join(",")).into(),
        age(obj, now),
        format_labels(obj.pointer("/spec/selector")).into(),
    ]
}

fn node(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut status: Vec<String> = arr(obj, "/status/conditions")
        .iter()
        .filter(|c| s(c, "/type") == "Ready")
        .take(1)
        .map(|c| if s(c, "/status") == "True" { "Ready".to_owned() } else { "NotReady".to_owned() })
        .collect();
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: Vec<String> = Vec::new();
    for (k, v) in obj.pointer("/metadata/labels").and_then(Value::as_object).into_iter().flatten() {
        let role = if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
            r.to_owned()
        } else if k == "kubernetes.io/role" {
            v.as_str().unwrap_or_default().to_owned()
        } else {
            continue;
        };
        if !role.is_empty() && !roles.contains(&role) {
            roles.push(role);
        }
    }
    roles.sort();
    let address = |kind: &str| {
        arr(obj, "/status/addresses")
            .iter()
            .find(|a| s(a, "/type") == kind)
            .map(|a| s(a, "/address").to_owned())
            .unwrap_or_else(|| "<none>".into())
    };
    let info = |f: &str| {
        let v = s(obj, &format!("/status/nodeInfo/{f}"));
        if v.is_empty() { "<unknown>".to_owned() } else { v.to_owned() }
    };
    vec![
        name(obj).into(),
        status.join(",").into(),
        none_if_empty(roles.join(",")).into(),
        age(obj, now),
        s(obj, "/status/nodeInfo/kubeletVersion").into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

fn namespace(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj).into(), s(obj, "/status/phase").into(), age(obj, now)]
}

fn config_map(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj).into(), (count(obj, "/data") + count(obj, "/binaryData")).into(), age(obj, now)]
}

fn secret(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj).into(), s(obj, "/type").into(), count(obj, "/data").into(), age(obj, now)]
}

fn service_account(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj).into(), arr(obj, "/secrets").len().into(), age(obj, now)]
}

fn event(obj: &Value, now: Timestamp) -> Vec<Value> {
    let micro = |p: &str| super::age::since(obj.pointer(p), now);
    let first = if obj.pointer("/firstTimestamp").is_some_and(|v| !v.is_null()) { micro("/firstTimestamp") } else { micro("/eventTime") };
    let mut last = if obj.pointer("/lastTimestamp").is_some_and(|v| !v.is_null()) { micro("/lastTimestamp") } else { first.clone() };
    let mut count = i(obj, "/count");
    if obj.pointer("/series").is_some_and(|v| !v.is_null()) {
        last = micro("/series/lastObservedTime");
        count = i(obj, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = s(obj, "/involvedObject/kind").to_lowercase();
    let target = match s(obj, "/involvedObject/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let source = match (s(obj, "/source/component"), s(obj, "/source/host")) {
        ("", _) => {
            let controller = s(obj, "/reportingComponent");
            match s(obj, "/reportingInstance") {
                "" => controller.to_owned(),
                inst => format!("{controller}, {inst}"),
            }
        }
        (c, "") => c.to_owned(),
        (c, h) => format!("{c}, {h}"),
    };
    vec![
        last.into(),
        s(obj, "/type").into(),
        s(obj, "/reason").into(),
        target.into(),
        s(obj, "/involvedObject/fieldPath").into(),
        source.into(),
        s(obj, "/message").trim().into(),
        first.into(),
        count.into(),
        name(obj).into(),
    ]
}

fn with_more(list: &[String], count: usize, max: usize, empty: &str) -> String {
    let joined = list.join(",");
    if count > max {
        format!("{joined} + {} more...", count - max)
    } else if joined.is_empty() {
        empty.to_owned()
    } else {
        joined
    }
}

fn endpoints(obj: &Value, now: Timestamp) -> Vec<Value> {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut count = 0;
    for subset in arr(obj, "/subsets") {
        let addresses = arr(subset, "/addresses");
        let ports = arr(subset, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| s(a, "/ip").to_owned()));
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                let ip = s(a, "/ip");
                let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_owned() };
                list.push(format!("{host}:{}", i(port, "/port")));
            }
        }
    }
    list.truncate(MAX);
    vec![name(obj).into(), with_more(&list, count, MAX, "<none>").into(), age(obj, now)]
}

fn endpoint_slice(obj: &Value, now: Timestamp) -> Vec<Value> {
    const MAX: usize = 3;
    let ports = arr(obj, "/ports");
    let port_list: Vec<String> = ports
        .iter()
        .take(MAX)
        .map(|p| match p.get("port").and_then(Value::as_i64) {
            Some(n) => n.to_string(),
            None => p.get("name").and_then(Value::as_str).unwrap_or("*").to_owned(),
        })
        .collect();
    let addresses: Vec<String> = arr(obj, "/endpoints").iter().flat_map(|e| strings(e, "/addresses")).collect();
    let shown: Vec<String> = addresses.iter().take(MAX).cloned().collect();
    vec![
        name(obj).into(),
        s(obj, "/addressType").into(),
        with_more(&port_list, ports.len(), MAX, "<unset>").into(),
        with_more(&shown, addresses.len(), MAX, "<unset>").into(),
        age(obj, now),
    ]
}

fn network_policy(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj).into(), none_if_empty(selector_string(obj.pointer("/spec/podSelector"))).into(), age(obj, now)]
}

fn lease(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj).into(), s(obj, "/spec/holderIdentity").into(), age(obj, now)]
}
