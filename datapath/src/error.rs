use std::path::PathBuf;

/// Why the data path could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(
        "this binary was built without Waggle's BPF object (looked for it at build time); \
         build it with `cargo xtask build`"
    )]
    ObjectMissing,
    #[error("loading BPF programs needs root or CAP_BPF + CAP_NET_ADMIN (effective uid {euid})")]
    NotPrivileged { euid: u32 },
    #[error(
        "the kernel has no BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF), needed for {what}"
    )]
    NoKernelBtf { what: &'static str },
    #[error("loading the BPF object failed: {source}")]
    Load {
        #[source]
        source: aya::EbpfError,
    },
    #[error("program `{name}` is not in the BPF object")]
    ProgramMissing { name: String },
    #[error("map `{name}` is not in the BPF object")]
    MapMissing { name: String },
    #[error("program `{name}`: {source}")]
    Program {
        name: String,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("map `{name}`: {source}")]
    Map {
        name: String,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("attaching `{program}` to {target} needs {feature}: {source}")]
    Attach {
        program: String,
        target: String,
        /// The kernel feature this attachment relies on, e.g. "tc clsact (Linux 4.5)".
        feature: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("loading program `{name}` failed; it needs {needs}: {source}")]
    ProgramLoad {
        name: String,
        /// The kernel features the program relies on (hook and helpers, with versions).
        needs: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("{path} is not a cgroup v2 directory (mount one with `mount -t cgroup2 none <dir>`)")]
    NotCgroup2 { path: PathBuf },
    #[error(
        "pin directory {path} is not on a BPF filesystem (mount one with `mount -t bpf bpf /sys/fs/bpf`)"
    )]
    NotBpfFs { path: PathBuf },
    #[error(
        "pinned map {path} has key/value sizes {found:?}, this version needs {expected:?}: \
         a layout change needs a new map name; remove the stale pin to start afresh"
    )]
    StalePin {
        path: PathBuf,
        found: (u32, u32),
        expected: (u32, u32),
    },
    #[error("pinning {what} at {path}: {source}")]
    Pin {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pinned link {path}: {source}")]
    PinnedLink {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("interface `{0}` does not exist")]
    NoSuchInterface(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
