//! The services a benchmark programs: one real service in front of the nginx pod,
//! plus N synthetic ones with 4 endpoints each that exist only to load the tables.

use std::net::Ipv4Addr;

/// A ClusterIP service port with its endpoints, as a proxy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchService {
    pub namespace: String,
    pub name: String,
    pub port_name: String,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub endpoints: Vec<(Ipv4Addr, u16)>,
}

impl BenchService {
    /// kube-proxy's service port name, `namespace/name:port`.
    pub fn port_id(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.name, self.port_name)
    }
}

/// `count` synthetic TCP services: ClusterIPs from 10.96.0.0/12 starting at 10.96.1.0,
/// 4 endpoints each in 10.244.200.0/21 .. (addresses no pod has: the rules are only
/// walked, never matched, by the benchmark traffic).
pub fn synthetic(count: usize) -> Vec<BenchService> {
    (0..count)
        .map(|i| {
            let ip = u32::from(Ipv4Addr::new(10, 96, 1, 0)) + i as u32;
            let endpoints = (0..4u32)
                .map(|e| (Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 245, 0, 0)) + (i as u32) * 4 + e), 8080))
                .collect();
            BenchService {
                namespace: "bench".into(),
                name: format!("svc-{i}"),
                port_name: "http".into(),
                cluster_ip: Ipv4Addr::from(ip),
                port: 80,
                endpoints,
            }
        })
        .collect()
}

/// All services of a run: the synthetic ones with the real one placed in the middle,
/// the expected position of a service in kube-proxy's (unordered) chain.
pub fn with_target(target: BenchService, extra: usize) -> Vec<BenchService> {
    let mut services = synthetic(extra);
    services.insert(extra / 2, target);
    services
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_services_have_distinct_ips_and_four_endpoints() {
        let services = synthetic(10_000);
        let mut ips: Vec<_> = services.iter().map(|s| s.cluster_ip).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 10_000);
        assert!(services.iter().all(|s| s.endpoints.len() == 4));
        // Inside the service CIDR 10.96.0.0/12.
        assert!(services.iter().all(|s| (u32::from(s.cluster_ip) >> 20) == (u32::from(Ipv4Addr::new(10, 96, 0, 0)) >> 20)));
    }

    #[test]
    fn target_sits_in_the_middle() {
        let target = BenchService {
            namespace: "default".into(),
            name: "nginx".into(),
            port_name: "http".into(),
            cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
            port: 80,
            endpoints: vec![(Ipv4Addr::new(10, 244, 0, 3), 80)],
        };
        let all = with_target(target.clone(), 1000);
        assert_eq!(all.len(), 1001);
        assert_eq!(all[500], target);
    }
}
