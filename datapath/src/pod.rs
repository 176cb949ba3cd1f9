//! Attaching the per-packet program of a pod, `tc_pod_egress`, to the pod's
//! host-side veth (tc ingress there sees the traffic leaving the pod).
//!
//! A pod needs it when its cgroup has no socket-LB programs (the per-packet fallback:
//! ClusterIP/NodePort/externalIP DNAT with conntrack, reverse NAT of the replies,
//! hairpin to itself), and on every node whose pods serve NodePorts through a remote
//! node, so that their replies are translated back. These are thin names over
//! [`Datapath::attach_per_packet`] and friends in [`crate::nodeport`]; the interface
//! is looked up in the calling thread's network namespace (the node's).

use std::path::Path;

use crate::{
    Datapath, DatapathError,
    nodeport::{self, PerPacketProgram, TcAttachment},
    socket_lb::AttachOutcome,
};

impl Datapath {
    /// Attaches `tc_pod_egress` to the pod veth `ifname`, owning the attachment: it
    /// detaches when the returned value is dropped.
    pub fn attach_pod_egress(&mut self, ifname: &str) -> Result<TcAttachment, DatapathError> {
        self.attach_per_packet(PerPacketProgram::PodEgress, ifname)
    }

    /// Attaches `tc_pod_egress` to the pod veth `ifname` and pins its TCX link under
    /// `<pin dir>/links/tc_pod_egress@<ifname>`, so it stays attached while the daemon
    /// restarts (a new daemon's attach replaces the program in place). Needs a
    /// [`Datapath::load_pinned`] instance.
    pub fn attach_pod_egress_pinned(
        &mut self,
        ifname: &str,
    ) -> Result<(TcAttachment, AttachOutcome), DatapathError> {
        self.attach_per_packet_pinned(PerPacketProgram::PodEgress, ifname)
    }
}

/// Detaches the pinned `tc_pod_egress` of pod veth `ifname` (removes its pin under
/// `pin_dir`). A missing pin is fine, so a pod that is deleted twice is no error; a
/// veth that is already gone took its link with it.
pub fn detach_pod_egress_pinned(pin_dir: &Path, ifname: &str) -> Result<(), DatapathError> {
    nodeport::detach_pinned(pin_dir, PerPacketProgram::PodEgress, ifname)
}
