//! Container images made on this machine, so that pods run without pulling anything
//! (the bed never reaches a registry): an OCI image archive, as `ctr images import`
//! takes it, holding
//!
//! - [`BUSYBOX`]: the host's static busybox (Debian's `busybox-static`) with its
//!   applets as links (`sh`, `echo`, `cat`, `sleep`, `httpd`, `nc`, …), command `sh`;
//! - [`PAUSE`]: the same layer whose entrypoint sleeps forever: the sandbox image.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::TestBedError;

pub const BUSYBOX: &str = "waggle.local/busybox:1";
pub const PAUSE: &str = "waggle.local/pause:1";
/// Where the static busybox comes from.
pub const BUSYBOX_BINARY: &str = "/bin/busybox";

/// (No `wget`: Debian's static busybox crashes in it without the C library's
/// name-service files, which the image does not have; `nc` does the same job.)
const APPLETS: &[&str] = &[
    "sh", "ash", "echo", "cat", "sleep", "ls", "env", "hostname", "ip", "nc", "httpd", "ps",
    "date", "true", "false", "printf", "seq", "head", "tail", "grep", "wc", "id", "mkdir", "rm",
    "touch", "kill", "test", "[", "tr", "pwd", "tar",
];

/// A blob of the archive, with the descriptor that names it.
struct Blob {
    digest: String,
    bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Blob {
            digest: format!("sha256:{hex}"),
            bytes,
        }
    }

    fn descriptor(&self, media_type: &str) -> Value {
        json!({"mediaType": media_type, "digest": self.digest, "size": self.bytes.len()})
    }
}

/// Writes the archive of [`BUSYBOX`] and [`PAUSE`] to `path`.
pub fn write_archive(path: &Path) -> Result<(), TestBedError> {
    let busybox = std::fs::read(BUSYBOX_BINARY).map_err(|source| {
        TestBedError::io(
            "reading the static busybox (Debian package busybox-static)",
            BUSYBOX_BINARY,
            source,
        )
    })?;
    let layer = Blob::new(
        layer(&busybox).map_err(|source| TestBedError::io("building a layer", path, source))?,
    );
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    for (name, process) in [
        (BUSYBOX, json!({"Env": ["PATH=/bin"], "Cmd": ["sh"]})),
        (
            PAUSE,
            json!({"Env": ["PATH=/bin"], "Entrypoint": ["/bin/sleep", "2147483647"]}),
        ),
    ] {
        let config = Blob::new(
            serde_json::to_vec(&json!({
                "architecture": "amd64",
                "os": "linux",
                "config": process,
                "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
            }))
            .expect("JSON serializes"),
        );
        let manifest = Blob::new(
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config.descriptor("application/vnd.oci.image.config.v1+json"),
                "layers": [layer.descriptor("application/vnd.oci.image.layer.v1.tar")],
            }))
            .expect("JSON serializes"),
        );
        let mut descriptor = manifest.descriptor("application/vnd.oci.image.manifest.v1+json");
        let tag = name.rsplit(':').next().unwrap_or("latest");
        descriptor["annotations"] =
            json!({"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag});
        manifests.push(descriptor);
        blobs.push(config);
        blobs.push(manifest);
    }
    blobs.push(layer);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let file =
        std::fs::File::create(path).map_err(|source| TestBedError::io("creating", path, source))?;
    let mut archive = tar::Builder::new(file);
    let mut add = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, name, bytes)
    };
    let written = (|| -> std::io::Result<()> {
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add(
            "index.json",
            &serde_json::to_vec(&index).expect("JSON serializes"),
        )?;
        for blob in &blobs {
            add(
                &format!("blobs/sha256/{}", blob.digest.trim_start_matches("sha256:")),
                &blob.bytes,
            )?;
        }
        Ok(())
    })();
    written
        .and_then(|()| archive.into_inner()?.flush())
        .map_err(|source| TestBedError::io("writing", path, source))
}

/// The root filesystem: busybox, its applets, and the directories a container needs.
fn layer(busybox: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut layer = tar::Builder::new(Vec::new());
    for (dir, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(mode);
        header.set_size(0);
        header.set_cksum();
        layer.append_data(&mut header, dir, std::io::empty())?;
    }
    let mut header = tar::Header::new_ustar();
    header.set_size(busybox.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    layer.append_data(&mut header, "bin/busybox", busybox)?;
    for applet in APPLETS {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        layer.append_link(&mut header, format!("bin/{applet}"), "busybox")?;
    }
    layer.into_inner()
}
