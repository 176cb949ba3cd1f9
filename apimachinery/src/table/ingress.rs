//! Printers of ingresses and ingress classes.

use jiff::Timestamp;
use serde_json::Value;

use super::{AGE, Cells, Column, Description, NAME, Printer, age, arr, col, name, s};

static INGRESS: &[Column] = &[
    NAME,
    col("Class", "string", 0, Description::Text("The name of the IngressClass resource that should be used for additional configuration")),
    col("Hosts", "string", 0, Description::Text("Hosts that incoming requests are matched against before the ingress rule")),
    col("Address", "string", 0, Description::Text("Address is a list containing ingress points for the load-balancer")),
    col("Ports", "string", 0, Description::Text("Ports of TLS configurations that open")),
    AGE,
];

static INGRESS_CLASS: &[Column] = &[
    NAME,
    col("Controller", "string", 0, Description::Text("Controller that is responsible for handling this class")),
    col("Parameters", "string", 0, Description::Text("A reference to a resource with additional parameters")),
    AGE,
];

pub(super) fn printer(kind: &str, group: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], Cells) = match (group, kind) {
        ("networking.k8s.io", "Ingress") => (INGRESS, ingress),
        ("networking.k8s.io", "IngressClass") => (INGRESS_CLASS, ingress_class),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

/// At most three hosts, then `+ N more...`; `*` when no rule names a host.
fn hosts(rules: &[Value]) -> String {
    let hosts: Vec<&str> = rules.iter().map(|r| s(r, "/host")).filter(|h| !h.is_empty()).collect();
    match hosts.len() {
        0 => "*".to_owned(),
        n if n > 3 => format!("{} + {} more...", hosts[..3].join(","), n - 3),
        _ => hosts.join(","),
    }
}

/// The load balancer's IPs and host names, uncut: the server prints rows wide.
fn address(obj: &Value) -> String {
    arr(obj, "/status/loadBalancer/ingress")
        .iter()
        .flat_map(|i| [s(i, "/ip"), s(i, "/hostname")])
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

fn ingress(obj: &Value, now: Timestamp) -> Vec<Value> {
    let class = obj.pointer("/spec/ingressClassName").and_then(Value::as_str).unwrap_or("<none>");
    let ports = if arr(obj, "/spec/tls").is_empty() { "80" } else { "80, 443" };
    vec![name(obj).into(), class.into(), hosts(arr(obj, "/spec/rules")).into(), address(obj).into(), ports.into(), age(obj, now)]
}

fn ingress_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let parameters = match obj.pointer("/spec/parameters") {
        Some(p) if p.is_object() => {
            let kind = match p.get("apiGroup").and_then(Value::as_str) {
                Some(group) => format!("{}.{group}", s(p, "/kind")),
                None => s(p, "/kind").to_owned(),
            };
            format!("{kind}/{}", s(p, "/name"))
        }
        _ => "<none>".to_owned(),
    };
    vec![name(obj).into(), s(obj, "/spec/controller").into(), parameters.into(), age(obj, now)]
}
