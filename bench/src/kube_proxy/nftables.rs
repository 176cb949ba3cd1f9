//! kube-proxy nftables mode, as an `nft -f` script (table `ip kube-proxy`).

use std::fmt::Write;

use super::chain_hash;
use crate::services::BenchService;

/// The table name kube-proxy's nftables mode uses for IPv4.
pub const TABLE: &str = "kube-proxy";

/// The `nft -f` script kube-proxy (nftables mode, `--cluster-cidr`) would apply for
/// `services`: base chains, the `service-ips` verdict map, one chain per service port
/// with a `numgen random` verdict map over per-endpoint chains.
pub fn script(services: &[BenchService], cluster_cidr: &str) -> String {
    let t = format!("ip {TABLE}");
    let mut out = format!("add table {t} {{ comment \"rules for kube-proxy\" ; }}\n");
    let base = [
        ("nat-prerouting", "type nat hook prerouting priority dstnat ;", "jump services"),
        ("nat-output", "type nat hook output priority -100 ;", "jump services"),
        ("nat-postrouting", "type nat hook postrouting priority srcnat ;", "jump masquerading"),
        ("filter-forward", "type filter hook forward priority -110 ;", "ct state new jump service-endpoints-check"),
        ("filter-output", "type filter hook output priority -110 ;", "ct state new jump service-endpoints-check"),
    ];
    for (name, hook, _) in base {
        let _ = writeln!(out, "add chain {t} {name} {{ {hook} }}");
    }
    for name in ["services", "masquerading", "mark-for-masquerade", "service-endpoints-check", "cluster-ips-check"] {
        let _ = writeln!(out, "add chain {t} {name}");
    }
    let _ = writeln!(out, "add set {t} cluster-ips {{ type ipv4_addr ; comment \"Active ClusterIPs\" ; }}");
    let _ = writeln!(out, "add set {t} nodeport-ips {{ type ipv4_addr ; comment \"IPs that accept NodePort traffic\" ; }}");
    let _ = writeln!(
        out,
        "add map {t} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }}"
    );
    let _ = writeln!(
        out,
        "add map {t} service-nodeports {{ type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }}"
    );
    let _ = writeln!(
        out,
        "add map {t} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }}"
    );
    for (name, _, rule) in base {
        let _ = writeln!(out, "add rule {t} {name} {rule}");
    }
    let _ = writeln!(out, "add rule {t} filter-forward ct state new jump cluster-ips-check");
    let _ = writeln!(out, "add rule {t} mark-for-masquerade mark set mark or 0x4000");
    let _ = writeln!(out, "add rule {t} masquerading mark and 0x4000 == 0 return");
    let _ = writeln!(out, "add rule {t} masquerading mark set mark xor 0x4000");
    let _ = writeln!(out, "add rule {t} masquerading masquerade fully-random");
    let _ = writeln!(out, "add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips");
    let _ = writeln!(
        out,
        "add rule {t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"
    );
    let _ = writeln!(out, "add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services");
    let _ = writeln!(
        out,
        "add rule {t} cluster-ips-check ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\""
    );

    for svc in services {
        let id = format!("{}/{}/tcp/{}", svc.namespace, svc.name, svc.port_name);
        let svc_chain = format!("service-{}-{id}", &chain_hash(&[&svc.port_id(), "tcp"])[..8]);
        let _ = writeln!(out, "add chain {t} {svc_chain}");
        let mut targets = Vec::new();
        for (i, (ip, port)) in svc.endpoints.iter().enumerate() {
            let ep_chain = format!(
                "endpoint-{}-{id}__{ip}/{port}",
                &chain_hash(&[&svc.port_id(), "tcp", &format!("{ip}:{port}")])[..8]
            );
            let _ = writeln!(out, "add chain {t} {ep_chain}");
            let _ = writeln!(out, "add rule {t} {ep_chain} ip saddr {ip} jump mark-for-masquerade");
            let _ = writeln!(out, "add rule {t} {ep_chain} meta l4proto tcp dnat to {ip}:{port}");
            targets.push(format!("{i} : goto {ep_chain}"));
        }
        let _ = writeln!(
            out,
            "add rule {t} {svc_chain} ip daddr {} tcp dport {} ip saddr != {cluster_cidr} jump mark-for-masquerade",
            svc.cluster_ip, svc.port
        );
        let _ = writeln!(
            out,
            "add rule {t} {svc_chain} numgen random mod {} vmap {{ {} }}",
            svc.endpoints.len(),
            targets.join(" , ")
        );
        let _ = writeln!(out, "add element {t} cluster-ips {{ {} }}", svc.cluster_ip);
        let _ = writeln!(
            out,
            "add element {t} service-ips {{ {} . tcp . {} : goto {svc_chain} }}",
            svc.cluster_ip, svc.port
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::synthetic;

    #[test]
    fn one_chain_per_service_and_endpoint_and_one_vmap_element_per_service() {
        let services = synthetic(2);
        let text = script(&services, "10.244.0.0/16");
        let chains = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix) && l.contains("/tcp/")).count();
        assert_eq!(chains("add chain ip kube-proxy service-"), 2);
        assert_eq!(chains("add chain ip kube-proxy endpoint-"), 8);
        assert_eq!(text.matches("add element ip kube-proxy service-ips").count(), 2);
        assert_eq!(text.matches("numgen random mod 4 vmap").count(), 2);
        assert!(text.contains("masquerade fully-random"));
        assert!(text.contains(&format!(
            "{} . tcp . 80 : goto service-",
            services[1].cluster_ip
        )));
    }
}
