//! The few bpf(2) link commands aya 0.14 does not expose for cgroup links: opening a
//! pinned link, asking which cgroup it is attached to, and swapping its program
//! (`BPF_LINK_UPDATE`, Linux 5.7), which is what lets a restarted daemon take over
//! the socket-LB hooks without a window in which they are detached, and detaching a
//! link at once (`BPF_LINK_DETACH`, Linux 5.9).

use std::{
    ffi::CString,
    os::{
        fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
        unix::{ffi::OsStrExt as _, fs::MetadataExt as _},
    },
    path::Path,
};

use crate::DatapathError;

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_UPDATE: libc::c_long = 29;
const BPF_LINK_DETACH: libc::c_long = 34;

/// Mirrors `struct bpf_link_info` up to its cgroup member (`<linux/bpf.h>`).
#[repr(C)]
#[derive(Default)]
struct LinkInfoCgroup {
    link_type: u32,
    id: u32,
    prog_id: u32,
    _pad: u32,
    cgroup_id: u64,
    attach_type: u32,
    _pad2: u32,
}

/// Room for the whole `union bpf_attr` the commands below use.
#[repr(C, align(8))]
struct Attr([u8; 128]);

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> std::io::Result<libc::c_long> {
    // SAFETY: attr points to 128 valid bytes, more than each command reads.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>(),
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Opens the link pinned at `path` (`BPF_OBJ_GET`).
pub(crate) fn open_pinned(path: &Path) -> Result<OwnedFd, DatapathError> {
    let err = |source| DatapathError::PinnedLink {
        path: path.to_owned(),
        source,
    };
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| err(std::io::Error::other("path contains NUL")))?;
    let mut attr = Attr([0; 128]);
    attr.0[..8].copy_from_slice(&(c_path.as_ptr() as u64).to_ne_bytes());
    let fd = bpf(BPF_OBJ_GET, &mut attr).map_err(err)?;
    // SAFETY: BPF_OBJ_GET returned a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The id of the cgroup a cgroup link is attached to (`BPF_OBJ_GET_INFO_BY_FD`).
pub(crate) fn cgroup_of(link: &OwnedFd, path: &Path) -> Result<u64, DatapathError> {
    let mut info = LinkInfoCgroup::default();
    let mut attr = Attr([0; 128]);
    attr.0[..4].copy_from_slice(&(link.as_raw_fd() as u32).to_ne_bytes());
    attr.0[4..8].copy_from_slice(&(std::mem::size_of::<LinkInfoCgroup>() as u32).to_ne_bytes());
    attr.0[8..16].copy_from_slice(&(&mut info as *mut LinkInfoCgroup as u64).to_ne_bytes());
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map_err(|source| DatapathError::PinnedLink {
        path: path.to_owned(),
        source,
    })?;
    Ok(info.cgroup_id)
}

/// Replaces the program of `link` with `prog` (`BPF_LINK_UPDATE`), atomically.
pub(crate) fn update(
    link: &OwnedFd,
    prog: BorrowedFd<'_>,
    path: &Path,
) -> Result<(), DatapathError> {
    let mut attr = Attr([0; 128]);
    attr.0[..4].copy_from_slice(&(link.as_raw_fd() as u32).to_ne_bytes());
    attr.0[4..8].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    bpf(BPF_LINK_UPDATE, &mut attr)
        .map(|_| ())
        .map_err(|source| DatapathError::PinnedLink {
            path: path.to_owned(),
            source,
        })
}

/// Detaches `link` from its cgroup now (`BPF_LINK_DETACH`, Linux 5.9). Removing a pin
/// alone detaches only once the kernel frees the bpffs inode, after an RCU grace
/// period, so a caller that needs the hook gone *now* detaches first.
pub(crate) fn detach(link: &OwnedFd, path: &Path) -> Result<(), DatapathError> {
    let mut attr = Attr([0; 128]);
    attr.0[..4].copy_from_slice(&(link.as_raw_fd() as u32).to_ne_bytes());
    bpf(BPF_LINK_DETACH, &mut attr)
        .map(|_| ())
        .map_err(|source| DatapathError::PinnedLink {
            path: path.to_owned(),
            source,
        })
}

/// The id of a cgroup v2 directory: its inode number.
pub(crate) fn cgroup_id(cgroup: &Path) -> Result<u64, DatapathError> {
    std::fs::metadata(cgroup)
        .map(|m| m.ino())
        .map_err(|source| DatapathError::Io {
            path: cgroup.to_owned(),
            source,
        })
}

// --- Added for the per-packet path (`nodeport.rs`, TCX links). ---

/// Mirrors `struct bpf_link_info` up to its `tcx` member (`<linux/bpf.h>`).
#[repr(C)]
#[derive(Default)]
struct LinkInfoTcx {
    link_type: u32,
    id: u32,
    prog_id: u32,
    _pad: u32,
    ifindex: u32,
    attach_type: u32,
}

/// The interface index a TCX link is attached to (`BPF_OBJ_GET_INFO_BY_FD`, Linux 6.6);
/// 0 once the interface is gone (the link is then defunct).
pub(crate) fn tcx_ifindex_of(link: &OwnedFd, path: &Path) -> Result<u32, DatapathError> {
    let mut info = LinkInfoTcx::default();
    let mut attr = Attr([0; 128]);
    attr.0[..4].copy_from_slice(&(link.as_raw_fd() as u32).to_ne_bytes());
    attr.0[4..8].copy_from_slice(&(std::mem::size_of::<LinkInfoTcx>() as u32).to_ne_bytes());
    attr.0[8..16].copy_from_slice(&(&mut info as *mut LinkInfoTcx as u64).to_ne_bytes());
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map_err(|source| DatapathError::PinnedLink {
        path: path.to_owned(),
        source,
    })?;
    Ok(info.ifindex)
}
