//! kube-proxy iptables mode, as `iptables-restore` input for the nat and filter tables.

use std::fmt::Write;

use super::chain_hash;
use crate::services::BenchService;

/// The `iptables-restore` input kube-proxy (iptables mode, `--cluster-cidr`) would
/// write for `services`. `cluster_cidr` is the pod CIDR: traffic from outside it to a
/// ClusterIP is marked for masquerade, pod traffic is not.
pub fn restore_input(services: &[BenchService], cluster_cidr: &str) -> String {
    let mut chains = String::new();
    let mut rules = String::new();
    for svc in services {
        let id = svc.port_id();
        let svc_chain = format!("KUBE-SVC-{}", chain_hash(&[&id, "tcp"]));
        let _ = writeln!(chains, ":{svc_chain} - [0:0]");
        let comment = format!("{id} cluster IP");
        let _ = writeln!(
            rules,
            "-A KUBE-SERVICES -d {}/32 -p tcp -m comment --comment \"{comment}\" -m tcp --dport {} -j {svc_chain}",
            svc.cluster_ip, svc.port
        );
        let _ = writeln!(
            rules,
            "-A {svc_chain} ! -s {cluster_cidr} -d {}/32 -p tcp -m comment --comment \"{comment}\" -m tcp --dport {} -j KUBE-MARK-MASQ",
            svc.cluster_ip, svc.port
        );
        let n = svc.endpoints.len();
        for (i, (ip, port)) in svc.endpoints.iter().enumerate() {
            let sep_chain = format!(
                "KUBE-SEP-{}",
                chain_hash(&[&id, "tcp", &format!("{ip}:{port}")])
            );
            let _ = writeln!(chains, ":{sep_chain} - [0:0]");
            let remaining = n - i;
            let to = format!("-m comment --comment \"{id} -> {ip}:{port}\"");
            if remaining > 1 {
                let probability = 1.0 / remaining as f64;
                let _ = writeln!(
                    rules,
                    "-A {svc_chain} {to} -m statistic --mode random --probability {probability:.11} -j {sep_chain}"
                );
            } else {
                let _ = writeln!(rules, "-A {svc_chain} {to} -j {sep_chain}");
            }
            let _ = writeln!(
                rules,
                "-A {sep_chain} -s {ip}/32 -m comment --comment \"{id}\" -j KUBE-MARK-MASQ"
            );
            let _ = writeln!(
                rules,
                "-A {sep_chain} -p tcp -m comment --comment \"{id}\" -m tcp -j DNAT --to-destination {ip}:{port}"
            );
        }
    }
    let mut out = String::new();
    out.push_str("*filter\n");
    for chain in [
        "KUBE-SERVICES",
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-FORWARD",
        "KUBE-NODEPORTS",
        "KUBE-PROXY-FIREWALL",
    ] {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    out.push_str(
        "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n\
         -A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS\n\
         -A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n\
         -A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n\
         -A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n\
         -A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n\
         -A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n\
         -A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n\
         -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n\
         -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         COMMIT\n",
    );
    out.push_str("*nat\n");
    for chain in [
        "KUBE-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-MARK-MASQ",
    ] {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    out.push_str(&chains);
    out.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n\
         -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n\
         -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n\
         -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n\
         -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n",
    );
    out.push_str(&rules);
    out.push_str(
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n\
         COMMIT\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::services::synthetic;

    #[test]
    fn one_svc_chain_per_service_one_sep_chain_per_endpoint() {
        let services = synthetic(3);
        let text = restore_input(&services, "10.244.0.0/16");
        assert_eq!(text.matches("\n:KUBE-SVC-").count(), 3);
        assert_eq!(text.matches("\n:KUBE-SEP-").count(), 12);
        assert_eq!(text.matches("-j DNAT --to-destination").count(), 12);
        assert_eq!(text.matches("COMMIT").count(), 2);
        // Probabilities 1/4, 1/3, 1/2 then an unconditional jump, as kube-proxy writes them.
        assert!(text.contains("--probability 0.25000000000"));
        assert!(text.contains("--probability 0.33333333333"));
        assert!(text.contains("--probability 0.50000000000"));
        // The nodeports jump is the last rule of KUBE-SERVICES.
        let last_services_rule = text
            .lines()
            .rfind(|l| l.starts_with("-A KUBE-SERVICES"))
            .unwrap();
        assert!(last_services_rule.contains("addrtype --dst-type LOCAL -j KUBE-NODEPORTS"));
        let first = &services[0];
        assert!(text.contains(&format!("-d {}/32 -p tcp", first.cluster_ip)));
        assert!(text.contains(&format!(
            "DNAT --to-destination {}:8080",
            first.endpoints[0].0
        )));
        assert_eq!(first.endpoints[0].0, Ipv4Addr::new(10, 245, 0, 0));
    }
}
