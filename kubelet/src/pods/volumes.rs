//! A pod's volumes as directories on the node, and its containers' `volumeMounts` as
//! the runtime's bind mounts.
//!
//! Supported: `emptyDir`, `hostPath` (with its type checks), `configMap`, `secret`,
//! `downwardAPI` and `projected` (ConfigMaps, Secrets, the downward API and service
//! account tokens). Those are written with upstream's atomic writer when the pod's
//! containers are set up, and again whenever what they show changes (read every
//! `--sync-frequency`). Any other volume type is a configuration error that names it.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_cri::v1 as cri;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, KeyToPath, Pod, ServiceAccount, Volume};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use super::environment::{Addresses, ConfigError, Kind, Sources, field_value, required, resource_value};

/// The directory of one pod's volumes: `<root>/pods/<uid>/volumes`.
pub fn pod_volumes_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid).join("volumes")
}

/// The pod's volumes, set up: each name with its directory (or file) on the node,
/// and what was last written into the API-backed ones.
pub struct Prepared {
    volumes: HashMap<String, PreparedVolume>,
    tokens: Tokens,
    refreshed: Instant,
}

struct PreparedVolume {
    path: PathBuf,
    /// ConfigMap, Secret, downward API and projected volumes: their files as last
    /// written; such volumes are always mounted read-only, as upstream's.
    written: Option<Vec<VolumeFile>>,
}

impl Prepared {
    /// The container's mounts, `subPath` resolved inside its volume.
    pub fn mounts(&self, container: &Container) -> Result<Vec<cri::Mount>, ConfigError> {
        let mut mounts = Vec::new();
        for mount in container.volume_mounts.iter().flatten() {
            let Some(volume) = self.volumes.get(&mount.name) else {
                return Err(ConfigError(format!("cannot find volume \"{}\" to mount into container", mount.name)));
            };
            let mut host_path = volume.path.clone();
            if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
                if Path::new(sub).components().any(|c| !matches!(c, Component::Normal(_))) {
                    return Err(ConfigError(format!("subPath {sub:?} must be a relative path without '..'")));
                }
                host_path = volume.path.join(sub);
                if !host_path.exists() {
                    std::fs::create_dir_all(&host_path).map_err(|e| ConfigError(e.to_string()))?;
                }
            }
            mounts.push(cri::Mount {
                container_path: mount.mount_path.clone(),
                host_path: host_path.display().to_string(),
                readonly: mount.read_only.unwrap_or(false) || volume.written.is_some(),
                ..Default::default()
            });
        }
        Ok(mounts)
    }

    /// Whether the API-backed volumes are due to be read again.
    pub fn due(&self, every: Duration) -> bool {
        self.refreshed.elapsed() >= every
    }

    /// Reads the pod's ConfigMaps, Secrets and fields again and swaps in what
    /// changed; a container sees each volume change at once (not `subPath` mounts,
    /// which keep the file they were given, as upstream's).
    pub async fn refresh(
        &mut self,
        client: &kube::Client,
        pod: &Pod,
        addresses: Addresses<'_>,
        sources: &mut Sources,
    ) -> Result<(), ConfigError> {
        self.refreshed = Instant::now();
        for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let Some(prepared) = self.volumes.get_mut(&volume.name) else { continue };
            let Some(written) = &prepared.written else { continue };
            let Some((_, default_mode, files)) =
                payload(client, pod, volume, addresses, sources, &mut self.tokens).await?
            else {
                continue;
            };
            if &files != written {
                let io = |e: std::io::Error| ConfigError(format!("volume {:?}: {e}", volume.name));
                write_atomically(&prepared.path, &files, default_mode).map_err(io)?;
                prepared.written = Some(files);
            }
        }
        Ok(())
    }
}

/// Sets up every volume of the pod under `root`.
pub async fn prepare(
    client: &kube::Client,
    root: &Path,
    pod: &Pod,
    addresses: Addresses<'_>,
    sources: &mut Sources,
) -> Result<Prepared, ConfigError> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let base = pod_volumes_dir(root, uid);
    let mut prepared = Prepared { volumes: HashMap::new(), tokens: Tokens::default(), refreshed: Instant::now() };
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let one = prepare_one(client, &base, pod, volume, addresses, sources, &mut prepared.tokens).await?;
        prepared.volumes.insert(volume.name.clone(), one);
    }
    Ok(prepared)
}

async fn prepare_one(
    client: &kube::Client,
    base: &Path,
    pod: &Pod,
    volume: &Volume,
    addresses: Addresses<'_>,
    sources: &mut Sources,
    tokens: &mut Tokens,
) -> Result<PreparedVolume, ConfigError> {
    let io = |e: std::io::Error| ConfigError(format!("volume {:?}: {e}", volume.name));
    let dir = |plugin: &str| base.join(format!("kubernetes.io~{plugin}")).join(&volume.name);
    if let Some(empty) = &volume.empty_dir {
        let path = dir("empty-dir");
        std::fs::create_dir_all(&path).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).map_err(io)?;
        if empty.medium.as_deref() == Some("Memory") {
            // The limit is the tmpfs's size; upstream's default is the node's memory.
            let size = empty.size_limit.as_ref().and_then(waggle_scheduler::quantity::value);
            crate::mounts::mount_tmpfs(&path, size.map(|bytes| bytes.max(0) as u64)).map_err(io)?;
        }
        return Ok(PreparedVolume { path, written: None });
    }
    if let Some(host) = &volume.host_path {
        let path = PathBuf::from(&host.path);
        check_host_path(&path, host.type_.as_deref().unwrap_or("")).map_err(ConfigError)?;
        return Ok(PreparedVolume { path, written: None });
    }
    let Some((plugin, default_mode, files)) = payload(client, pod, volume, addresses, sources, tokens).await? else {
        return Err(ConfigError(format!(
            "volume {:?}: this volume type is not supported by waggle's kubelet \
             (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected)",
            volume.name
        )));
    };
    let path = dir(plugin);
    write_atomically(&path, &files, default_mode).map_err(io)?;
    Ok(PreparedVolume { path, written: Some(files) })
}

/// The files of an API-backed volume (its plugin's directory name, its default
/// mode, its files), or `None` for other kinds of volume.
async fn payload(
    client: &kube::Client,
    pod: &Pod,
    volume: &Volume,
    addresses: Addresses<'_>,
    sources: &mut Sources,
    tokens: &mut Tokens,
) -> Result<Option<(&'static str, Option<i32>, Vec<VolumeFile>)>, ConfigError> {
    let mut files: Vec<VolumeFile> = Vec::new();
    let (plugin, default_mode) = if let Some(source) = &volume.config_map {
        files.extend(project(sources, Kind::ConfigMap, &source.name, &source.items, source.optional).await?);
        ("configmap", source.default_mode)
    } else if let Some(source) = &volume.secret {
        let name = source.secret_name.clone().unwrap_or_default();
        files.extend(project(sources, Kind::Secret, &name, &source.items, source.optional).await?);
        ("secret", source.default_mode)
    } else if let Some(source) = &volume.downward_api {
        files.extend(downward(pod, source.items.iter().flatten(), addresses)?);
        ("downward-api", source.default_mode)
    } else if let Some(source) = &volume.projected {
        for projection in source.sources.iter().flatten() {
            if let Some(cm) = &projection.config_map {
                files.extend(project(sources, Kind::ConfigMap, &cm.name, &cm.items, cm.optional).await?);
            }
            if let Some(secret) = &projection.secret {
                files.extend(project(sources, Kind::Secret, &secret.name, &secret.items, secret.optional).await?);
            }
            if let Some(api) = &projection.downward_api {
                files.extend(downward(pod, api.items.iter().flatten(), addresses)?);
            }
            if let Some(token) = &projection.service_account_token {
                let minted = tokens.get(client, pod, token.audience.as_deref(), token.expiration_seconds).await?;
                files.push(VolumeFile { path: token.path.clone(), content: minted.into_bytes(), mode: None });
            }
        }
        ("projected", source.default_mode)
    } else {
        return Ok(None);
    };
    Ok(Some((plugin, default_mode, files)))
}

/// Writes a volume's files as upstream's atomic writer does: into a new hidden
/// timestamped directory, then one `rename` of the `..data` link onto it, so a reader
/// sees the old set of files or the new one, never a mix. The volume's top-level
/// names are links through `..data`; names no longer in the payload go, and so
/// does the previous timestamped directory.
fn write_atomically(dir: &Path, files: &[VolumeFile], default_mode: Option<i32>) -> std::io::Result<()> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    std::fs::create_dir_all(dir)?;
    let stamp = format!("..{}", Timestamp::now().strftime("%Y_%m_%d_%H_%M_%S.%f"));
    let staged = dir.join(&stamp);
    std::fs::create_dir(&staged)?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))?;
    let mut tops = std::collections::BTreeSet::new();
    for file in files {
        let relative = Path::new(&file.path);
        if relative.components().any(|c| !matches!(c, Component::Normal(_)))
            || file.path.starts_with("..")
            || file.path.is_empty()
        {
            return Err(invalid(format!("invalid path {:?}", file.path)));
        }
        let target = staged.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, &file.content)?;
        let mode = file.mode.or(default_mode).unwrap_or(0o644) as u32;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
        if let Some(Component::Normal(top)) = relative.components().next() {
            tops.insert(top.to_owned());
        }
    }
    let swap = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&swap);
    std::os::unix::fs::symlink(&stamp, &swap)?;
    std::fs::rename(&swap, dir.join("..data"))?;
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(top), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let hidden = name.to_string_lossy().starts_with("..");
        if hidden && name != "..data" && name.as_os_str() != stamp.as_str() {
            std::fs::remove_dir_all(entry.path())?;
        } else if !hidden && !tops.contains(&name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Service account tokens minted for the pod's projected volumes, each kept until
/// 80% of its lifetime has passed, as upstream's token manager does.
#[derive(Default)]
struct Tokens {
    minted: HashMap<(Option<String>, Option<i64>), (String, Instant)>,
}

impl Tokens {
    async fn get(
        &mut self,
        client: &kube::Client,
        pod: &Pod,
        audience: Option<&str>,
        expiration_seconds: Option<i64>,
    ) -> Result<String, ConfigError> {
        let key = (audience.map(str::to_owned), expiration_seconds);
        if let Some((token, renew_at)) = self.minted.get(&key)
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let lifetime = Duration::from_secs(expiration_seconds.unwrap_or(3600).max(600) as u64);
        let token = service_account_token(client, pod, audience, expiration_seconds).await?;
        self.minted.insert(key, (token.clone(), Instant::now() + lifetime.mul_f64(0.8)));
        Ok(token)
    }
}

/// One file of a projected volume, `path` relative to the volume's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
struct VolumeFile {
    path: String,
    content: Vec<u8>,
    mode: Option<i32>,
}

/// The files of a ConfigMap or Secret: every key, or the listed items under their
/// paths; a missing source or item is an error unless optional.
async fn project(
    sources: &mut Sources,
    kind: Kind,
    name: &str,
    items: &Option<Vec<KeyToPath>>,
    optional: Option<bool>,
) -> Result<Vec<VolumeFile>, ConfigError> {
    let Some(data) = required(sources.data(kind, name).await?, kind, name, optional)? else { return Ok(Vec::new()) };
    match items {
        None => {
            let mut files: Vec<_> =
                data.into_iter().map(|(path, content)| VolumeFile { path, content, mode: None }).collect();
            files.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(files)
        }
        Some(items) => {
            let mut files = Vec::new();
            for item in items {
                match data.get(&item.key) {
                    Some(v) => files.push(VolumeFile { path: item.path.clone(), content: v.clone(), mode: item.mode }),
                    None if optional == Some(true) => {}
                    None => {
                        let (noun, what) =
                            (kind.noun(), if kind == Kind::Secret { "secret key" } else { "config key" });
                        return Err(ConfigError(format!("{noun} references non-existent {what}: {}", item.key)));
                    }
                }
            }
            Ok(files)
        }
    }
}

fn downward<'a>(
    pod: &Pod,
    items: impl Iterator<Item = &'a DownwardAPIVolumeFile>,
    addresses: Addresses<'_>,
) -> Result<Vec<VolumeFile>, ConfigError> {
    let mut files = Vec::new();
    for item in items {
        let value =
            if let Some(field) = &item.field_ref {
                field_value(pod, &field.field_path, addresses)
                    .ok_or_else(|| ConfigError(format!("unsupported fieldPath: {}", field.field_path)))?
            } else if let Some(resource) = &item.resource_field_ref {
                let wanted = resource.container_name.as_deref().unwrap_or_default();
                let container =
                    pod.spec.iter().flat_map(|s| s.containers.iter()).find(|c| c.name == wanted).ok_or_else(|| {
                        ConfigError(format!("downwardAPI item {:?}: no container {wanted:?}", item.path))
                    })?;
                resource_value(container, &resource.resource)
                    .ok_or_else(|| ConfigError(format!("unsupported container resource: {}", resource.resource)))?
            } else {
                return Err(ConfigError(format!(
                    "downwardAPI item {:?}: neither fieldRef nor resourceFieldRef",
                    item.path
                )));
            };
        files.push(VolumeFile { path: item.path.clone(), content: value.into_bytes(), mode: item.mode });
    }
    Ok(files)
}

/// A token for the pod's service account, bound to the pod (TokenRequest).
async fn service_account_token(
    client: &kube::Client,
    pod: &Pod,
    audience: Option<&str>,
    expiration_seconds: Option<i64>,
) -> Result<String, ConfigError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let account = pod.spec.as_ref().and_then(|s| s.service_account_name.clone()).unwrap_or_else(|| "default".into());
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": audience.map(|a| vec![a]).unwrap_or_default(),
            "expirationSeconds": expiration_seconds.unwrap_or(3600),
            "boundObjectRef": {
                "apiVersion": "v1", "kind": "Pod",
                "name": pod.metadata.name, "uid": pod.metadata.uid,
            },
        },
    }))
    .expect("a TokenRequest built from valid JSON");
    let minted: TokenRequest = accounts
        .create_token_request(&account, &PostParams::default(), &request)
        .await
        .map_err(|e| ConfigError(format!("failed to fetch token: {e}")))?;
    Ok(minted.status.map(|s| s.token).unwrap_or_default())
}

/// The `hostPath` types' checks (and `DirectoryOrCreate`/`FileOrCreate` creation).
fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    let meta = std::fs::metadata(path);
    let fail = |what: &str| Err(format!("hostPath type check failed: {} is not a {what}", path.display()));
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if !path.exists() {
                std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "FileOrCreate" => {
            if !path.exists() {
                std::fs::write(path, b"").map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "Directory" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            _ => fail("directory"),
        },
        "File" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => fail("file"),
        },
        "Socket" | "CharDevice" | "BlockDevice" => {
            use std::os::unix::fs::FileTypeExt;
            let ok = meta.map(|m| {
                let t = m.file_type();
                match kind {
                    "Socket" => t.is_socket(),
                    "CharDevice" => t.is_char_device(),
                    _ => t.is_block_device(),
                }
            });
            if ok.unwrap_or(false) { Ok(()) } else { fail(&kind.to_lowercase()) }
        }
        other => Err(format!("hostPath type {other:?} is not one of upstream's")),
    }
}
