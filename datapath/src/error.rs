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
    #[error("the kernel has no BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF), needed for {what}")]
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
    #[error("interface `{0}` does not exist")]
    NoSuchInterface(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
