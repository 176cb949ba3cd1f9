//! The BPF object embedded at build time (see `build.rs`).

use crate::DatapathError;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/waggle-ebpf.o"));

/// The ELF bytes of Waggle's kernel programs.
pub fn bytes() -> Result<&'static [u8], DatapathError> {
    if cfg!(waggle_bpf_embedded) && !OBJECT.is_empty() {
        Ok(OBJECT)
    } else {
        Err(DatapathError::ObjectMissing)
    }
}
