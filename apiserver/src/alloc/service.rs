//! Filling a Service's `clusterIPs`, `ipFamilies` and `nodePort`s.

use std::net::IpAddr;

use serde_json::{Value, json};

use super::{Allocator, Cidr};
use crate::status::Cause;

/// What one request newly reserved; released if the write does not happen.
#[derive(Debug, Default)]
pub struct Reservation {
    ips: Vec<IpAddr>,
    ports: Vec<u16>,
}

impl Reservation {
    pub fn release(self, allocator: &Allocator) {
        for ip in self.ips {
            allocator.release_ip(ip);
        }
        for port in self.ports {
            allocator.release_port(port);
        }
    }
}

fn service_type(svc: &Value) -> &str {
    svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP")
}

/// The addresses a Service holds.
fn held_ips(svc: &Value) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = svc
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        ips.extend(svc.pointer("/spec/clusterIP").and_then(|v| v.as_str()?.parse::<IpAddr>().ok()));
    }
    ips
}

fn held_ports(svc: &Value) -> Vec<u16> {
    crate::validation::items(svc, "/spec/ports")
        .iter()
        .filter_map(|p| p.get("nodePort")?.as_u64())
        .filter(|p| *p != 0)
        .map(|p| p as u16)
        .collect()
}

impl Allocator {
    /// Records what a stored Service holds (at start-up).
    pub fn load(&self, svc: &Value) {
        for ip in held_ips(svc) {
            self.take_ip(ip);
        }
        for port in held_ports(svc) {
            self.take_port(port);
        }
    }

    /// Releases what `old` held and `new` (if any) no longer holds.
    pub fn release_dropped(&self, old: &Value, new: Option<&Value>) {
        let (keep_ips, keep_ports) = new.map(|n| (held_ips(n), held_ports(n))).unwrap_or_default();
        for ip in held_ips(old).into_iter().filter(|ip| !keep_ips.contains(ip)) {
            self.release_ip(ip);
        }
        for port in held_ports(old).into_iter().filter(|p| !keep_ports.contains(p)) {
            self.release_port(port);
        }
    }

    /// Allocates addresses and node ports for a Service being created (`old == None`)
    /// or updated. On error nothing stays reserved.
    pub fn allocate(&self, svc: &mut Value, old: Option<&Value>) -> Result<Reservation, Vec<Cause>> {
        let mut reservation = Reservation::default();
        let mut causes = Vec::new();
        self.allocate_ips(svc, old, &mut reservation, &mut causes);
        self.allocate_ports(svc, old, &mut reservation, &mut causes);
        if causes.is_empty() {
            Ok(reservation)
        } else {
            reservation.release(self);
            Err(causes)
        }
    }

    fn families(&self, spec: &Value, requested: &[String], causes: &mut Vec<Cause>) -> Vec<Cidr> {
        let policy = spec.get("ipFamilyPolicy").and_then(Value::as_str).unwrap_or("SingleStack");
        let mut families: Vec<String> = crate::validation::items(spec, "/ipFamilies")
            .iter()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
        if families.is_empty() {
            families = requested
                .iter()
                .filter_map(|ip| ip.parse::<IpAddr>().ok())
                .map(|ip| if ip.is_ipv4() { "IPv4" } else { "IPv6" }.to_owned())
                .collect();
        }
        let mut cidrs = Vec::new();
        for (i, family) in families.iter().enumerate() {
            match self.cidr_for(family) {
                Some(c) => cidrs.push(c),
                None => causes.push(Cause::invalid(
                    format!("spec.ipFamilies[{i}]"),
                    &Value::String(family.clone()),
                    "not configured on this cluster",
                )),
            }
        }
        if cidrs.is_empty() && causes.is_empty() {
            cidrs.push(self.cidrs()[0]);
        }
        let want = match policy {
            "SingleStack" => 1,
            _ => 2,
        };
        for c in self.cidrs() {
            if cidrs.len() < want && !cidrs.contains(c) {
                cidrs.push(*c);
            }
        }
        if policy == "RequireDualStack" && cidrs.len() < 2 {
            causes.push(Cause::invalid(
                "spec.ipFamilyPolicy",
                &Value::String(policy.into()),
                "this cluster is not configured for dual-stack services",
            ));
        }
        cidrs.truncate(want);
        cidrs
    }

    fn allocate_ips(&self, svc: &mut Value, old: Option<&Value>, res: &mut Reservation, causes: &mut Vec<Cause>) {
        let spec = svc.get("spec").cloned().unwrap_or(Value::Null);
        if service_type(svc) == "ExternalName" {
            if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                    spec.remove(field);
                }
            }
            return;
        }
        // An existing allocation carries over unchanged.
        if let Some(old) = old.filter(|o| service_type(o) != "ExternalName") {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if let Some(value) = old.pointer(&format!("/spec/{field}")) {
                    svc["spec"][field] = value.clone();
                }
            }
            return;
        }
        let mut requested: Vec<String> = crate::validation::items(&spec, "/clusterIPs")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        if let Some(ip) = spec.get("clusterIP").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            if requested.is_empty() {
                requested.push(ip.to_owned());
            } else if requested[0] != ip {
                causes.push(Cause::invalid("spec.clusterIPs", &json!(requested), "must have the same first element as spec.clusterIP"));
                return;
            }
        }
        if requested.first().is_some_and(|ip| ip == "None") {
            let families = self.families(&spec, &[], causes);
            svc["spec"]["clusterIP"] = json!("None");
            svc["spec"]["clusterIPs"] = json!(["None"]);
            svc["spec"]["ipFamilies"] = json!(families.iter().map(Cidr::family).collect::<Vec<_>>());
            set_default_policy(svc);
            return;
        }
        let families = self.families(&spec, &requested, causes);
        if !causes.is_empty() {
            return;
        }
        let mut ips = Vec::new();
        for (i, cidr) in families.iter().enumerate() {
            let field = format!("spec.clusterIPs[{i}]");
            match requested.get(i) {
                Some(text) => {
                    let Ok(ip) = text.parse::<IpAddr>() else { continue };
                    if !cidr.is_usable(ip) {
                        causes.push(Cause::invalid(field, &json!(text), format!(
                            "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {cidr}"
                        )));
                    } else if !self.take_ip(ip) {
                        causes.push(Cause::invalid(field, &json!(text), format!("failed to allocate IP {ip}: provided IP is already allocated")));
                    } else {
                        res.ips.push(ip);
                        ips.push(ip);
                    }
                }
                None => match self.next_ip(cidr) {
                    Some(ip) => {
                        res.ips.push(ip);
                        ips.push(ip);
                    }
                    None => causes.push(Cause::invalid(field, &json!(""), format!("failed to allocate a serviceIP: range is full ({cidr})"))),
                },
            }
        }
        svc["spec"]["clusterIP"] = json!(ips.first().map(ToString::to_string));
        svc["spec"]["clusterIPs"] = json!(ips.iter().map(ToString::to_string).collect::<Vec<_>>());
        svc["spec"]["ipFamilies"] = json!(families.iter().map(Cidr::family).collect::<Vec<_>>());
        set_default_policy(svc);
    }

    fn allocate_ports(&self, svc: &mut Value, old: Option<&Value>, res: &mut Reservation, causes: &mut Vec<Cause>) {
        let wants_ports = matches!(service_type(svc), "NodePort" | "LoadBalancer");
        let old_ports: Vec<Value> = old
            .filter(|o| matches!(service_type(o), "NodePort" | "LoadBalancer"))
            .map(|o| crate::validation::items(o, "/spec/ports").to_vec())
            .unwrap_or_default();
        let range = self.node_port_range().clone();
        let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else { return };
        for (i, port) in ports.iter_mut().enumerate() {
            let Some(port) = port.as_object_mut() else { continue };
            if !wants_ports {
                port.remove("nodePort");
                continue;
            }
            let requested = port.get("nodePort").and_then(Value::as_u64).filter(|p| *p != 0);
            let previous = old_ports
                .iter()
                .find(|o| o.get("port") == port.get("port") && o.get("protocol") == port.get("protocol"))
                .and_then(|o| o.get("nodePort")?.as_u64());
            let held_before = |p: u64| old_ports.iter().any(|o| o.get("nodePort").and_then(Value::as_u64) == Some(p));
            match requested.or(previous) {
                Some(p) if held_before(p) => {
                    port.insert("nodePort".into(), json!(p));
                }
                Some(p) if res.ports.contains(&(p as u16)) => {}
                Some(p) => {
                    let field = format!("spec.ports[{i}].nodePort");
                    if p > u64::from(u16::MAX) || !range.contains(&(p as u16)) {
                        causes.push(Cause::invalid(field, &json!(p), format!(
                            "provided port is not in the valid range. The range of valid ports is {}-{}",
                            range.start(),
                            range.end()
                        )));
                    } else if !self.take_port(p as u16) {
                        causes.push(Cause::invalid(field, &json!(p), "provided port is already allocated"));
                    } else {
                        res.ports.push(p as u16);
                    }
                }
                None => match self.next_port() {
                    Some(p) => {
                        res.ports.push(p);
                        port.insert("nodePort".into(), json!(p));
                    }
                    None => causes.push(Cause::invalid(format!("spec.ports[{i}].nodePort"), &json!(0), "range is full")),
                },
            }
        }
    }
}

fn set_default_policy(svc: &mut Value) {
    if svc.pointer("/spec/ipFamilyPolicy").is_none_or(Value::is_null) {
        svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocator() -> Allocator {
        Allocator::new(vec![Cidr::parse("10.96.0.0/24").unwrap()], 30000..=30002)
    }

    #[test]
    fn allocates_and_detects_conflicts() {
        let a = allocator();
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}});
        a.allocate(&mut svc, None).unwrap();
        let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_owned();
        assert!(ip.starts_with("10.96.0."));
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
        let port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=30002).contains(&port));

        let mut again = json!({"spec": {"clusterIP": ip, "type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "nodePort": port}]}});
        let causes = a.allocate(&mut again, None).unwrap_err();
        assert_eq!(causes.len(), 2);
        assert!(causes[0].message.contains("provided IP is already allocated"), "{causes:?}");
        assert!(causes[1].message.contains("provided port is already allocated"));

        a.release_dropped(&svc, None);
        let mut again = json!({"spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
        a.allocate(&mut again, None).unwrap();
    }

    #[test]
    fn out_of_range_and_unconfigured_family() {
        let a = allocator();
        let mut svc = json!({"spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}});
        let causes = a.allocate(&mut svc, None).unwrap_err();
        assert!(causes[0].message.contains("not in the valid range"));
        let mut v6 = json!({"spec": {"ipFamilies": ["IPv6"], "ports": [{"port": 80}]}});
        assert!(a.allocate(&mut v6, None).is_err());
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        a.allocate(&mut headless, None).unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    }

    #[test]
    fn type_change_to_cluster_ip_drops_node_ports() {
        let a = allocator();
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}});
        a.allocate(&mut svc, None).unwrap();
        let mut updated = svc.clone();
        updated["spec"]["type"] = json!("ClusterIP");
        a.allocate(&mut updated, Some(&svc)).unwrap();
        assert!(updated["spec"]["ports"][0].get("nodePort").is_none());
        a.release_dropped(&svc, Some(&updated));
        for _ in 0..3 {
            assert!(a.next_port().is_some());
        }
    }
}
