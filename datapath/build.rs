//! Embeds the BPF object built by `cargo xtask build` into this crate.
//!
//! Looks at `$WAGGLE_BPF_OBJECT`, then at the workspace's
//! `target/bpfel-unknown-none/release/waggle-ebpf`. Without either, the crate still
//! builds (so userspace can be built without the BPF toolchain) and loading returns
//! `DatapathError::ObjectMissing`, which says how to build it.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(waggle_bpf_embedded)");
    println!("cargo::rerun-if-env-changed=WAGGLE_BPF_OBJECT");
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let default = manifest_dir.join("../target/bpfel-unknown-none/release/waggle-ebpf");
    let source = env::var_os("WAGGLE_BPF_OBJECT").map(PathBuf::from).unwrap_or(default);
    println!("cargo::rerun-if-changed={}", source.display());

    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("waggle-ebpf.o");
    match fs::read(&source) {
        Ok(bytes) if !bytes.is_empty() => {
            fs::write(&out, bytes).expect("write embedded BPF object");
            println!("cargo::rustc-cfg=waggle_bpf_embedded");
        }
        _ => {
            fs::write(&out, []).expect("write empty BPF object placeholder");
            println!(
                "cargo::warning=BPF object not found at {} : this build cannot load Waggle's eBPF programs; run `cargo xtask build`",
                source.display()
            );
        }
    }
}
