//! Attaching the per-packet service programs (`ebpf/src/nodeport/`) to interfaces.
//!
//! | program               | attach point                        | needs                          |
//! |-----------------------|-------------------------------------|--------------------------------|
//! | `tc_nodeport_ingress` | tc ingress of the node's uplink     | see [`PROGRAM_NEEDS`]          |
//! | `tc_nodeport_egress`  | tc egress of the node's uplink      | same                           |
//! | `tc_pod_egress`       | tc ingress of a pod's host-side veth | same                           |
//!
//! (tc ingress of the host-side veth sees the traffic leaving the pod.) Each program
//! serves IPv4 and IPv6: the IPv6 path reads the same service maps' `_v6` variants,
//! tracks connections in `wg_ct6_v1` and SNATs to `NodeConfig::node_address_v6`, so a
//! node needs that address and its `wg_naddr6_v1` entries programmed. All three are
//! SCHED_CLS programs. They attach through TCX links (Linux 6.6) where the
//! kernel has them, else through a clsact qdisc and a direct-action filter (Linux 4.5;
//! aya picks by kernel version). Every call works on the interface *in the calling
//! thread's network namespace* (enter the node's namespace first).
//!
//! Two ways to attach, as for socket LB: [`Datapath::attach_per_packet`] owns the
//! attachment (dropping the returned [`TcAttachment`] detaches), and
//! [`Datapath::attach_per_packet_pinned`] pins the TCX link under
//! `<pin dir>/links/<program>@<interface>`, so the program stays attached while the
//! daemon restarts; a new daemon attaching again swaps its program into the pinned
//! link (`BPF_LINK_UPDATE`, atomic). [`detach_pinned`] removes a pin, which detaches.

use std::{
    ffi::CString,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use aya::programs::{
    SchedClassifier, TcAttachType,
    links::FdLink,
    tc::{self, SchedClassifierLink},
};
use waggle_ebpf_common::maps::LINKS_DIR;

use crate::{Datapath, DatapathError, link, load, socket_lb::AttachOutcome};

/// Kernel features the per-packet programs rely on, for error messages.
pub const PROGRAM_NEEDS: &str = "SCHED_CLS programs with bpf_skb_store_bytes and \
    bpf_l3/l4_csum_replace (Linux 4.1), bpf_fib_lookup (4.18), bpf_redirect_neigh (5.10), \
    bpf_ktime_get_boot_ns (5.8) and LRU hash maps (4.10)";
const ATTACH_NEEDS: &str = "TCX links (Linux 6.6), or a clsact qdisc (Linux 4.5) before that";

/// One of the per-packet programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PerPacketProgram {
    /// `tc_nodeport_ingress`, for the node's uplink (ingress): NodePort/externalIP
    /// traffic from outside and replies of remote backends.
    NodePortIngress,
    /// `tc_nodeport_egress`, for the node's uplink (egress): replies of local backends.
    NodePortEgress,
    /// `tc_pod_egress`, for a pod's host-side veth.
    PodEgress,
}

impl PerPacketProgram {
    /// The program's name in the BPF object.
    pub const fn name(self) -> &'static str {
        match self {
            PerPacketProgram::NodePortIngress => "tc_nodeport_ingress",
            PerPacketProgram::NodePortEgress => "tc_nodeport_egress",
            PerPacketProgram::PodEgress => "tc_pod_egress",
        }
    }

    /// The tc hook of the program's interface.
    pub const fn attach_type(self) -> TcAttachType {
        match self {
            PerPacketProgram::NodePortEgress => TcAttachType::Egress,
            PerPacketProgram::NodePortIngress | PerPacketProgram::PodEgress => {
                TcAttachType::Ingress
            }
        }
    }

    /// The two programs of a node's uplink.
    pub const UPLINK: [PerPacketProgram; 2] =
        [PerPacketProgram::NodePortIngress, PerPacketProgram::NodePortEgress];

    /// Where the link of this program on `interface` is pinned under `pin_dir`.
    pub fn pin_path(self, pin_dir: &Path, interface: &str) -> PathBuf {
        pin_dir.join(LINKS_DIR).join(format!("{}@{interface}", self.name()))
    }
}

/// A per-packet program attached to one interface.
///
/// An owned attachment detaches when dropped; a pinned one stays until
/// [`TcAttachment::detach`] or [`detach_pinned`] removes its pin.
#[derive(Debug)]
pub struct TcAttachment {
    program: PerPacketProgram,
    interface: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Owned(SchedClassifierLink),
    Pinned(PathBuf),
}

impl TcAttachment {
    pub fn program(&self) -> PerPacketProgram {
        self.program
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The pin of a pinned attachment.
    pub fn pin(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Owned(_) => None,
            Kind::Pinned(path) => Some(path),
        }
    }

    /// Detaches: drops an owned link, or removes the pin of a pinned one.
    pub fn detach(self) -> Result<(), DatapathError> {
        match self.kind {
            Kind::Owned(link) => {
                drop(link);
                Ok(())
            }
            Kind::Pinned(path) => remove_pin(&path),
        }
    }
}

impl Datapath {
    /// Attaches `program` to `interface` (in the calling thread's network namespace),
    /// owning the attachment: it detaches when the returned value is dropped.
    pub fn attach_per_packet(
        &mut self,
        program: PerPacketProgram,
        interface: &str,
    ) -> Result<TcAttachment, DatapathError> {
        ifindex(interface)?;
        let classifier = self.per_packet_program(program)?;
        let link = attach_new(classifier, program, interface)?;
        Ok(TcAttachment { program, interface: interface.to_owned(), kind: Kind::Owned(link) })
    }

    /// Attaches `program` to `interface` and pins its TCX link under
    /// `<pin dir>/links/<program>@<interface>`; needs a [`Datapath::load_pinned`]
    /// instance and TCX (Linux 6.6; links of the older clsact attachment cannot be pinned).
    ///
    /// A link pinned there by a previous daemon for the same interface gets this
    /// instance's program (atomic replace); a stale pin (its interface is gone or was
    /// re-created) is replaced by a new link.
    pub fn attach_per_packet_pinned(
        &mut self,
        program: PerPacketProgram,
        interface: &str,
    ) -> Result<(TcAttachment, AttachOutcome), DatapathError> {
        let pin_dir = self.pin_dir().ok_or_else(|| DatapathError::Pin {
            what: format!("link of `{}`", program.name()),
            path: PathBuf::new(),
            source: std::io::Error::other("the data path was loaded without a pin directory"),
        })?;
        let pin = program.pin_path(pin_dir, interface);
        if let Some(dir) = pin.parent() {
            load::prepare_pin_dir(dir)?;
        }
        let index = ifindex(interface)?;
        let classifier = self.per_packet_program(program)?;
        let attachment =
            |kind| TcAttachment { program, interface: interface.to_owned(), kind };

        if pin.exists() {
            let old = link::open_pinned(&pin)?;
            if link::tcx_ifindex_of(&old, &pin)? == index {
                let prog_fd = classifier
                    .fd()
                    .map_err(|source| DatapathError::Program {
                        name: program.name().to_owned(),
                        source,
                    })?
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|source| DatapathError::Io { path: pin.clone(), source })?;
                link::update(&old, prog_fd.as_fd(), &pin)?;
                return Ok((attachment(Kind::Pinned(pin)), AttachOutcome::Replaced));
            }
        }

        let link = attach_new(classifier, program, interface)?;
        let fd_link = FdLink::try_from(link).map_err(|e| DatapathError::Attach {
            program: program.name().to_owned(),
            target: format!("{interface} ({:?})", program.attach_type()),
            feature: "TCX links (Linux 6.6) to pin a tc attachment",
            source: aya::programs::ProgramError::IOError(std::io::Error::other(e.to_string())),
        })?;
        // The new link is attached before a stale pin is removed.
        remove_pin(&pin)?;
        fd_link.pin(&pin).map_err(|e| DatapathError::Pin {
            what: format!("link of `{}` on {interface}", program.name()),
            path: pin.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok((attachment(Kind::Pinned(pin)), AttachOutcome::Attached))
    }

    /// Attaches both uplink programs ([`PerPacketProgram::UPLINK`]) to `uplink`, pinned:
    /// what a node needs for NodePort/externalIP traffic from outside, to local and
    /// remote backends.
    pub fn attach_uplink_pinned(
        &mut self,
        uplink: &str,
    ) -> Result<Vec<(TcAttachment, AttachOutcome)>, DatapathError> {
        PerPacketProgram::UPLINK
            .iter()
            .map(|program| self.attach_per_packet_pinned(*program, uplink))
            .collect()
    }

    /// The loaded program, loading it on first use.
    fn per_packet_program(
        &mut self,
        program: PerPacketProgram,
    ) -> Result<&mut SchedClassifier, DatapathError> {
        let name = program.name();
        let classifier: &mut SchedClassifier = self
            .ebpf_mut()
            .program_mut(name)
            .ok_or_else(|| DatapathError::ProgramMissing { name: name.to_owned() })?
            .try_into()
            .map_err(|source| DatapathError::Program { name: name.to_owned(), source })?;
        if classifier.fd().is_err() {
            classifier.load().map_err(|source| DatapathError::ProgramLoad {
                name: name.to_owned(),
                needs: PROGRAM_NEEDS,
                source,
            })?;
        }
        Ok(classifier)
    }
}

/// Detaches `program` from `interface` by removing its pin under `pin_dir`.
/// A missing pin is fine: detaching twice succeeds.
pub fn detach_pinned(
    pin_dir: &Path,
    program: PerPacketProgram,
    interface: &str,
) -> Result<(), DatapathError> {
    remove_pin(&program.pin_path(pin_dir, interface))
}

fn attach_new(
    classifier: &mut SchedClassifier,
    program: PerPacketProgram,
    interface: &str,
) -> Result<SchedClassifierLink, DatapathError> {
    // Only the pre-TCX attachment (Linux < 6.6) uses the clsact qdisc; "already
    // exists" is fine, and a real failure shows up as the attach error below.
    let _ = tc::qdisc_add_clsact(interface);
    let id = classifier.attach(interface, program.attach_type()).map_err(|source| {
        DatapathError::Attach {
            program: program.name().to_owned(),
            target: format!("{interface} ({:?})", program.attach_type()),
            feature: ATTACH_NEEDS,
            source,
        }
    })?;
    classifier
        .take_link(id)
        .map_err(|source| DatapathError::Program { name: program.name().to_owned(), source })
}

fn ifindex(interface: &str) -> Result<u32, DatapathError> {
    let c_name = CString::new(interface)
        .map_err(|_| DatapathError::NoSuchInterface(interface.to_owned()))?;
    // SAFETY: c_name is a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(DatapathError::NoSuchInterface(interface.to_owned())),
        index => Ok(index),
    }
}

fn remove_pin(path: &Path) -> Result<(), DatapathError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DatapathError::PinnedLink { path: path.to_owned(), source }),
    }
}
