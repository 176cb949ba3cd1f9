//! Attaching the socket-LB programs (`ebpf/src/socket_lb.rs`) to a cgroup v2 directory.
//!
//! Every process in that cgroup (and its descendants) then has its connect()/sendmsg()
//! to a service address translated to a backend, and getpeername()/recvmsg() translated
//! back. Kernel features, per program:
//!
//! | program         | attach type              | needs                                   |
//! |-----------------|--------------------------|-----------------------------------------|
//! | `sock4_connect` | `BPF_CGROUP_INET4_CONNECT` | Linux 4.17; `bpf_set_retval` 5.18     |
//! | `sock6_connect` | `BPF_CGROUP_INET6_CONNECT` | Linux 4.17; `bpf_set_retval` 5.18     |
//! | `sock4_sendmsg` | `BPF_CGROUP_UDP4_SENDMSG`  | Linux 4.18; `bpf_set_retval` 5.18     |
//! | `sock6_sendmsg` | `BPF_CGROUP_UDP6_SENDMSG`  | Linux 4.18; `bpf_set_retval` 5.18     |
//! | `sock4_recvmsg` | `BPF_CGROUP_UDP4_RECVMSG`  | Linux 5.2                             |
//! | `sock6_recvmsg` | `BPF_CGROUP_UDP6_RECVMSG`  | Linux 5.2                             |
//! | `sock4_getpeer` | `BPF_CGROUP_INET4_GETPEERNAME` | Linux 5.8                         |
//! | `sock6_getpeer` | `BPF_CGROUP_INET6_GETPEERNAME` | Linux 5.8                         |
//!
//! All of them use `bpf_get_socket_cookie`/`bpf_get_netns_cookie` (5.7) and
//! `bpf_ktime_get_boot_ns` (5.8), and are attached through bpf_link (5.7) so that the
//! links can be pinned.
//!
//! Two ways to attach: [`Datapath::attach_socket_lb`] owns its links (dropping the
//! returned [`SocketLb`] detaches), and [`Datapath::attach_socket_lb_pinned`] pins one
//! link per program under `<pin dir>/links/`, so the programs stay attached while the
//! daemon restarts. A new daemon attaching again *replaces* the program inside each
//! pinned link (`BPF_LINK_UPDATE`, atomic), so there is no moment in which connects go
//! untranslated. [`detach_pinned`] detaches the links (`BPF_LINK_DETACH`, 5.9) and
//! removes their pins.

use std::{
    fs::File,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use aya::programs::{CgroupAttachMode, CgroupSockAddr, links::FdLink};
use waggle_ebpf_common::maps::LINKS_DIR;

use crate::{Datapath, DatapathError, link, load};

/// One socket-LB program and what it needs from the kernel.
#[derive(Clone, Copy, Debug)]
pub struct SocketLbProgram {
    /// Program (function) name in the BPF object.
    pub name: &'static str,
    /// Attach point (section `cgroup/<hook>`), for messages.
    pub hook: &'static str,
    /// Kernel features the program needs, for error messages.
    pub needs: &'static str,
}

const FORWARD_NEEDS: &str = "cgroup sock_addr connect/sendmsg hooks (Linux 4.17/4.18), \
    bpf_get_socket_cookie and bpf_get_netns_cookie in sock_addr programs (5.7), \
    bpf_ktime_get_boot_ns (5.8) and bpf_set_retval (5.18)";
const RECVMSG_NEEDS: &str = "the cgroup recvmsg hooks (Linux 5.2) and \
    bpf_get_socket_cookie in sock_addr programs (5.7)";
const GETPEER_NEEDS: &str = "the cgroup getpeername hooks (Linux 5.8)";

/// Every socket-LB program, in attach order (reverse hooks first, so that a
/// translated socket always finds its reverse translation in place).
pub const PROGRAMS: [SocketLbProgram; 8] = [
    SocketLbProgram {
        name: "sock4_recvmsg",
        hook: "recvmsg4",
        needs: RECVMSG_NEEDS,
    },
    SocketLbProgram {
        name: "sock6_recvmsg",
        hook: "recvmsg6",
        needs: RECVMSG_NEEDS,
    },
    SocketLbProgram {
        name: "sock4_getpeer",
        hook: "getpeername4",
        needs: GETPEER_NEEDS,
    },
    SocketLbProgram {
        name: "sock6_getpeer",
        hook: "getpeername6",
        needs: GETPEER_NEEDS,
    },
    SocketLbProgram {
        name: "sock4_connect",
        hook: "connect4",
        needs: FORWARD_NEEDS,
    },
    SocketLbProgram {
        name: "sock6_connect",
        hook: "connect6",
        needs: FORWARD_NEEDS,
    },
    SocketLbProgram {
        name: "sock4_sendmsg",
        hook: "sendmsg4",
        needs: FORWARD_NEEDS,
    },
    SocketLbProgram {
        name: "sock6_sendmsg",
        hook: "sendmsg6",
        needs: FORWARD_NEEDS,
    },
];

/// `CGROUP2_SUPER_MAGIC` from `<linux/magic.h>`.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The socket-LB programs attached to one cgroup.
///
/// Owned links (from [`Datapath::attach_socket_lb`]) detach when this is dropped;
/// pinned ones (from [`Datapath::attach_socket_lb_pinned`]) stay attached until
/// [`SocketLb::detach`] or [`detach_pinned`] removes their pins.
#[derive(Debug)]
pub struct SocketLb {
    cgroup: PathBuf,
    links: Links,
}

#[derive(Debug)]
enum Links {
    Owned(Vec<FdLink>),
    Pinned { dir: PathBuf },
}

/// Per program name, how a pinned attach went.
pub type AttachOutcomes = Vec<(&'static str, AttachOutcome)>;

/// How a pinned attach went for one program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachOutcome {
    /// A new link was created and pinned.
    Attached,
    /// The pinned link of a previous daemon now runs this instance's program.
    Replaced,
}

impl SocketLb {
    /// The cgroup the programs are attached to.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }

    /// Where the links are pinned, for a pinned attachment.
    pub fn links_dir(&self) -> Option<&Path> {
        match &self.links {
            Links::Owned(_) => None,
            Links::Pinned { dir } => Some(dir),
        }
    }

    /// Detaches the programs: drops owned links, or removes the pins.
    pub fn detach(self) -> Result<(), DatapathError> {
        match self.links {
            Links::Owned(links) => {
                drop(links);
                Ok(())
            }
            Links::Pinned { dir } => remove_link_pins(&dir),
        }
    }
}

impl Datapath {
    /// Attaches every socket-LB program to the cgroup v2 directory `cgroup`, owning the
    /// links: they detach when the returned [`SocketLb`] is dropped.
    pub fn attach_socket_lb(&mut self, cgroup: &Path) -> Result<SocketLb, DatapathError> {
        let cgroup_file = open_cgroup(cgroup)?;
        let mut links = Vec::with_capacity(PROGRAMS.len());
        for spec in &PROGRAMS {
            let program = self.socket_lb_program(spec)?;
            let link_id = program
                .attach(cgroup_file.as_fd(), CgroupAttachMode::Single)
                .map_err(|source| attach_error(spec, cgroup, source))?;
            let owned = program
                .take_link(link_id)
                .map_err(|source| DatapathError::Program {
                    name: spec.name.to_owned(),
                    source,
                })?;
            let fd_link = FdLink::try_from(owned).map_err(|e| DatapathError::Attach {
                program: spec.name.to_owned(),
                target: cgroup.display().to_string(),
                feature: "bpf_link for cgroup programs (Linux 5.7)",
                source: aya::programs::ProgramError::IOError(std::io::Error::other(e.to_string())),
            })?;
            links.push(fd_link);
        }
        Ok(SocketLb {
            cgroup: cgroup.to_owned(),
            links: Links::Owned(links),
        })
    }

    /// Attaches every socket-LB program to `cgroup` and pins the links under
    /// `<pin dir>/links/<program>`; needs a [`Datapath::load_pinned`] instance.
    ///
    /// Where a previous daemon's link is already pinned for the same cgroup, its program
    /// is replaced in place (atomic, no untranslated window); a link pinned for another
    /// cgroup is replaced by a new link (the new one attaches before the old pin goes).
    pub fn attach_socket_lb_pinned(
        &mut self,
        cgroup: &Path,
    ) -> Result<(SocketLb, AttachOutcomes), DatapathError> {
        let pin_dir = self.pin_dir().ok_or_else(|| DatapathError::Pin {
            what: "socket-LB links".to_owned(),
            path: PathBuf::new(),
            source: std::io::Error::other("the data path was loaded without a pin directory"),
        })?;
        let dir = pin_dir.join(LINKS_DIR);
        load::prepare_pin_dir(&dir)?;
        let cgroup_file = open_cgroup(cgroup)?;
        let cgroup_id = link::cgroup_id(cgroup)?;
        let mut outcomes = Vec::with_capacity(PROGRAMS.len());
        for spec in &PROGRAMS {
            let pin = dir.join(spec.name);
            let program = self.socket_lb_program(spec)?;
            let prog_fd = program
                .fd()
                .map_err(|source| DatapathError::Program {
                    name: spec.name.to_owned(),
                    source,
                })?
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| DatapathError::Io {
                    path: pin.clone(),
                    source,
                })?;
            if pin.exists() {
                let old = link::open_pinned(&pin)?;
                if link::cgroup_of(&old, &pin)? == cgroup_id {
                    link::update(&old, prog_fd.as_fd(), &pin)?;
                    outcomes.push((spec.name, AttachOutcome::Replaced));
                    continue;
                }
            }
            let link_id = program
                .attach(cgroup_file.as_fd(), CgroupAttachMode::Single)
                .map_err(|source| attach_error(spec, cgroup, source))?;
            let owned = program
                .take_link(link_id)
                .map_err(|source| DatapathError::Program {
                    name: spec.name.to_owned(),
                    source,
                })?;
            let fd_link = FdLink::try_from(owned).map_err(|e| DatapathError::Attach {
                program: spec.name.to_owned(),
                target: cgroup.display().to_string(),
                feature: "bpf_link for cgroup programs (Linux 5.7)",
                source: aya::programs::ProgramError::IOError(std::io::Error::other(e.to_string())),
            })?;
            // The new link runs before the old one (another cgroup's) goes.
            if pin.exists() {
                remove_link_pin(&pin)?;
            }
            fd_link.pin(&pin).map_err(|e| DatapathError::Pin {
                what: format!("link of `{}`", spec.name),
                path: pin.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            outcomes.push((spec.name, AttachOutcome::Attached));
        }
        Ok((
            SocketLb {
                cgroup: cgroup.to_owned(),
                links: Links::Pinned { dir },
            },
            outcomes,
        ))
    }

    /// The loaded socket-LB program `spec`, loading it on first use.
    fn socket_lb_program(
        &mut self,
        spec: &SocketLbProgram,
    ) -> Result<&mut CgroupSockAddr, DatapathError> {
        let program: &mut CgroupSockAddr = self
            .ebpf_mut()
            .program_mut(spec.name)
            .ok_or_else(|| DatapathError::ProgramMissing {
                name: spec.name.to_owned(),
            })?
            .try_into()
            .map_err(|source| DatapathError::Program {
                name: spec.name.to_owned(),
                source,
            })?;
        if program.fd().is_err() {
            program
                .load()
                .map_err(|source| DatapathError::ProgramLoad {
                    name: spec.name.to_owned(),
                    needs: spec.needs,
                    source,
                })?;
        }
        Ok(program)
    }
}

/// Detaches the socket-LB programs pinned under `pin_dir` by removing their link pins
/// (and the links directory). Missing pins are fine: detaching twice succeeds.
pub fn detach_pinned(pin_dir: &Path) -> Result<(), DatapathError> {
    remove_link_pins(&pin_dir.join(LINKS_DIR))
}

fn remove_link_pins(dir: &Path) -> Result<(), DatapathError> {
    for spec in &PROGRAMS {
        let pin = dir.join(spec.name);
        if pin.exists() {
            remove_link_pin(&pin)?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DatapathError::Io {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Detaches the link pinned at `pin` at once, then removes the pin.
fn remove_link_pin(pin: &Path) -> Result<(), DatapathError> {
    let link = link::open_pinned(pin)?;
    link::detach(&link, pin)?;
    std::fs::remove_file(pin).map_err(|source| DatapathError::PinnedLink {
        path: pin.to_owned(),
        source,
    })
}

/// Opens `path` after checking it is a cgroup v2 directory.
fn open_cgroup(path: &Path) -> Result<File, DatapathError> {
    let magic = load::fs_magic(path)?;
    if magic != CGROUP2_SUPER_MAGIC || !path.is_dir() {
        return Err(DatapathError::NotCgroup2 {
            path: path.to_owned(),
        });
    }
    File::open(path).map_err(|source| DatapathError::Io {
        path: path.to_owned(),
        source,
    })
}

fn attach_error(
    spec: &SocketLbProgram,
    cgroup: &Path,
    source: aya::programs::ProgramError,
) -> DatapathError {
    DatapathError::Attach {
        program: spec.name.to_owned(),
        target: format!("cgroup {} ({})", cgroup.display(), spec.hook),
        feature: spec.needs,
        source,
    }
}
