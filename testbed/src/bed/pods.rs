//! Adding pods to a node and removing them.

use std::{fs, net::IpAddr, sync::Arc};

use super::{POD_IFACE, TestBed};
use crate::{
    TestBedError, cgroup, cmd,
    members::{Pod, PodInfo},
    names,
    netns::NetNs,
    sweep, topology as plan,
};

impl TestBed {
    /// Adds a pod named `name` on node `node` (names are unique within a bed).
    pub fn add_pod(&self, node: usize, name: &str) -> Result<Pod, TestBedError> {
        let node_ref = self.nodes.get(node).ok_or_else(|| {
            TestBedError::Invalid(format!(
                "node {node} does not exist (the bed has {})",
                self.nodes.len()
            ))
        })?;
        if name.is_empty() {
            return Err(TestBedError::Invalid("a pod needs a name".to_owned()));
        }
        if self.pod(name).is_some() {
            return Err(TestBedError::Invalid(format!("pod {name} already exists")));
        }
        let index = {
            let mut counters = self.pods_per_node.lock().unwrap_or_else(|p| p.into_inner());
            let index = counters[node];
            if index >= plan::MAX_PODS_PER_NODE {
                return Err(TestBedError::Invalid(format!(
                    "node {node} already had {} pods",
                    plan::MAX_PODS_PER_NODE
                )));
            }
            counters[node] += 1;
            index
        };
        let safe = names::sanitize(name);
        let netns = self.new_netns(&format!("n{node}-{safe}"))?;
        let (v4, v6) = (plan::pod_v4(node, index), plan::pod_v6(node, index));
        let host_veth = format!("wgp{index}");
        let (gw4, gw6) = (plan::GATEWAY_V4, plan::GATEWAY_V6);
        let (node4, node6) = (node_ref.address, node_ref.address_v6);
        cmd::ip_batch(
            Some(node_ref.netns.name()),
            &[
                format!(
                    "link add {host_veth} type veth peer name {POD_IFACE} netns {}",
                    netns.name()
                ),
                format!("addr add {gw4}/32 dev {host_veth} scope link"),
                format!("addr add {gw6}/64 dev {host_veth} nodad"),
                format!("link set {host_veth} up"),
                format!("route add {v4}/32 dev {host_veth} scope link src {node4}"),
                format!("route add {v6}/128 dev {host_veth} src {node6}"),
            ],
        )?;
        let (pods4, pods4_len) = plan::PODS_V4;
        let (pods6, pods6_len) = plan::PODS_V6;
        let (fab4, fab4_len) = plan::FABRIC_V4;
        let (fab6, fab6_len) = plan::FABRIC_V6;
        let mut lines = vec![
            format!("addr add {v4}/32 dev {POD_IFACE}"),
            format!("addr add {v6}/128 dev {POD_IFACE} nodad"),
            format!("link set {POD_IFACE} up"),
            format!("route add {gw4}/32 dev {POD_IFACE} scope link"),
            format!("route add {pods4}/{pods4_len} via {gw4} dev {POD_IFACE} src {v4}"),
            format!("route add {fab4}/{fab4_len} via {gw4} dev {POD_IFACE} src {v4}"),
            format!("route add {pods6}/{pods6_len} via {gw6} dev {POD_IFACE} src {v6}"),
            format!("route add {fab6}/{fab6_len} via {gw6} dev {POD_IFACE} src {v6}"),
        ];
        for (prefix, len) in &self.pod_routes {
            lines.push(match prefix {
                IpAddr::V4(_) => {
                    format!("route add {prefix}/{len} via {gw4} dev {POD_IFACE} src {v4}")
                }
                IpAddr::V6(_) => {
                    format!("route add {prefix}/{len} via {gw6} dev {POD_IFACE} src {v6}")
                }
            });
        }
        cmd::ip_batch(Some(netns.name()), &lines)?;
        let cgroup = node_ref.cgroup.join(&safe);
        cgroup::create(&cgroup)?;
        let pod = Pod {
            info: Arc::new(PodInfo {
                name: name.to_owned(),
                netns,
                address: v4,
                address_v6: v6,
                host_veth,
                cgroup,
                node,
            }),
        };
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pod.clone());
        Ok(pod)
    }

    /// Removes a pod: kills its processes, removes its cgroup and namespace (which
    /// removes its veth pair and the node's host route).
    pub fn remove_pod(&self, name: &str) -> Result<(), TestBedError> {
        let pod = {
            let mut pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
            let position = pods
                .iter()
                .position(|pod| pod.name() == name)
                .ok_or_else(|| TestBedError::Invalid(format!("pod {name} does not exist")))?;
            pods.remove(position)
        };
        cgroup::remove_tree(pod.cgroup())?;
        // Deleting the veth now (not when the kernel gets round to freeing the
        // namespace) makes the host side and its route disappear before we return.
        let node = &self.nodes[pod.node()];
        if let Err(error) = node.netns.ip(&["link", "del", pod.host_veth()])
            && node.netns.ip(&["link", "show", pod.host_veth()]).is_ok()
        {
            return Err(error);
        }
        let inode =
            fs::metadata(pod.netns().path()).map(|meta| std::os::unix::fs::MetadataExt::ino(&meta));
        if let Ok(inode) = inode {
            sweep::kill_in_namespaces(&[inode]);
        }
        NetNs::delete(pod.netns().name())?;
        self.resources
            .namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|other| other != pod.netns().name());
        Ok(())
    }
}
