//! Loading Waggle's BPF object and attaching its programs.

use std::path::{Path, PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::PerCpuArray,
    programs::{SchedClassifier, TcAttachType, tc, tc::SchedClassifierLinkId},
};

use waggle_ebpf_common::maps;

use crate::{DatapathError, map_layout, object};

/// A loaded BPF object: programs not yet attached, maps live while this lives.
pub struct Datapath {
    ebpf: Ebpf,
    /// Where the maps (and socket-LB links) are pinned, for a pinned load.
    pin_dir: Option<PathBuf>,
}

impl Datapath {
    /// Loads the embedded object, checking privileges and kernel BTF first so the
    /// error names what is missing rather than a raw errno.
    ///
    /// The maps are private to this instance (nothing is pinned): for tests and tools.
    pub fn load() -> Result<Self, DatapathError> {
        let bytes = preflight()?;
        let ebpf = EbpfLoader::new()
            .load(bytes)
            .map_err(|source| DatapathError::Load { source })?;
        Ok(Self {
            ebpf,
            pin_dir: None,
        })
    }

    /// Loads the embedded object with every map of `waggle_ebpf_common::maps::PINNED`
    /// pinned by name under `pin_dir` (created if missing; it must be on a BPF
    /// filesystem). A map already pinned there is reused, so a restarted or upgraded
    /// daemon keeps the services, backends, affinity and socket reverse-NAT state.
    pub fn load_pinned(pin_dir: &Path) -> Result<Self, DatapathError> {
        let bytes = preflight()?;
        prepare_pin_dir(pin_dir)?;
        remove_retired_pins(pin_dir)?;
        map_layout::check_pins(pin_dir)?;
        let paths: Vec<(&'static str, PathBuf)> = maps::PINNED
            .iter()
            .map(|name| (*name, pin_dir.join(name)))
            .collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        let ebpf = loader
            .load(bytes)
            .map_err(|source| DatapathError::Load { source })?;
        Ok(Self {
            ebpf,
            pin_dir: Some(pin_dir.to_owned()),
        })
    }

    /// The pin directory of a [`Datapath::load_pinned`] instance.
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pin_dir.as_deref()
    }

    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Loads (if needed) and attaches the tc classifier `program` to `interface`.
    /// Uses TCX on kernels that have it (6.6+) and a clsact qdisc before that.
    pub fn attach_tc(
        &mut self,
        program: &str,
        interface: &str,
        direction: TcAttachType,
    ) -> Result<SchedClassifierLinkId, DatapathError> {
        let c_name = std::ffi::CString::new(interface)
            .map_err(|_| DatapathError::NoSuchInterface(interface.to_owned()))?;
        // SAFETY: c_name is a valid NUL-terminated string.
        if unsafe { libc::if_nametoindex(c_name.as_ptr()) } == 0 {
            return Err(DatapathError::NoSuchInterface(interface.to_owned()));
        }
        // Only the legacy (pre-TCX, Linux < 6.6) attach needs a clsact qdisc; on TCX
        // kernels aya does not use it, and "already exists" is fine either way.
        let _ = tc::qdisc_add_clsact(interface);
        let prog: &mut SchedClassifier = self
            .ebpf
            .program_mut(program)
            .ok_or_else(|| DatapathError::ProgramMissing {
                name: program.to_owned(),
            })?
            .try_into()
            .map_err(|source| DatapathError::Program {
                name: program.to_owned(),
                source,
            })?;
        if prog.fd().is_err() {
            prog.load().map_err(|source| DatapathError::Program {
                name: program.to_owned(),
                source,
            })?;
        }
        prog.attach(interface, direction)
            .map_err(|source| DatapathError::Attach {
                program: program.to_owned(),
                target: format!("{interface} ({direction:?})"),
                feature: "tc clsact or TCX (Linux 6.6) with SCHED_CLS programs",
                source,
            })
    }

    /// Sum over CPUs of the interface counters kept by `tc_count`.
    pub fn interface_counters(&self) -> Result<InterfaceCounters, DatapathError> {
        const NAME: &str = "wg_ifcount_v1";
        let map = self
            .ebpf
            .map(NAME)
            .ok_or_else(|| DatapathError::MapMissing {
                name: NAME.to_owned(),
            })?;
        let array = PerCpuArray::<_, u64>::try_from(map).map_err(|source| DatapathError::Map {
            name: NAME.to_owned(),
            source,
        })?;
        let sum = |index| -> Result<u64, DatapathError> {
            let values = array.get(&index, 0).map_err(|source| DatapathError::Map {
                name: NAME.to_owned(),
                source,
            })?;
            Ok(values.iter().sum())
        };
        Ok(InterfaceCounters {
            packets: sum(0)?,
            bytes: sum(1)?,
        })
    }
}

/// Packets and bytes counted by `tc_count`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub packets: u64,
    pub bytes: u64,
}

/// Checks what every load needs and returns the object bytes.
fn preflight() -> Result<&'static [u8], DatapathError> {
    let bytes = object::bytes()?;
    check_privileges()?;
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(DatapathError::NoKernelBtf {
            what: "BTF-relocated BPF programs",
        });
    }
    Ok(bytes)
}

/// `BPF_FS_MAGIC` from `<linux/magic.h>`.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Creates `dir` and checks that it is on a BPF filesystem, where pins can live.
pub(crate) fn prepare_pin_dir(dir: &Path) -> Result<(), DatapathError> {
    std::fs::create_dir_all(dir).map_err(|source| DatapathError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if fs_magic(dir)? != BPF_FS_MAGIC {
        return Err(DatapathError::NotBpfFs {
            path: dir.to_owned(),
        });
    }
    Ok(())
}

/// The `f_type` of the filesystem holding `path` (statfs(2)).
pub(crate) fn fs_magic(path: &Path) -> Result<i64, DatapathError> {
    use std::os::unix::ffi::OsStrExt as _;
    let io_err = |source| DatapathError::Io {
        path: path.to_owned(),
        source,
    };
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "path contains NUL",
        ))
    })?;
    // SAFETY: statfs is plain data; zeroed is a valid initial value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and st is a valid out pointer.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut st) } != 0 {
        return Err(io_err(std::io::Error::last_os_error()));
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

fn check_privileges() -> Result<(), DatapathError> {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("CapEff:"))?;
            u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
        })
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    if has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        Ok(())
    } else {
        Err(DatapathError::NotPrivileged { euid })
    }
}

/// Removes pins of retired map layouts (`maps::RETIRED`) from `pin_dir`; returns the
/// names it removed.
pub fn remove_retired_pins(pin_dir: &Path) -> Result<Vec<&'static str>, DatapathError> {
    let mut removed = Vec::new();
    for name in maps::RETIRED {
        let path = pin_dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(map = name, "removed the pin of a retired map layout");
                removed.push(*name);
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(DatapathError::Io { path, source }),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod retired_tests {
    use super::*;

    #[test]
    fn retired_pins_are_removed_and_current_ones_kept() {
        let dir = std::env::temp_dir().join(format!("wg-retired-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("wg_maglev_v1"), b"").unwrap();
        std::fs::write(dir.join(maps::MAGLEV), b"").unwrap();
        let removed = remove_retired_pins(&dir).unwrap();
        assert_eq!(removed, ["wg_maglev_v1"]);
        assert!(!dir.join("wg_maglev_v1").exists());
        assert!(dir.join(maps::MAGLEV).exists());
        assert!(remove_retired_pins(&dir).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
