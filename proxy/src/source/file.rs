//! The file source: Services and EndpointSlices from a YAML file or a directory of
//! `*.yaml`/`*.yml`/`*.json` files (multi-document, `kind: List` accepted), re-read
//! when a file's mtime or size changes or files appear or vanish. Every read is a
//! relist, so an object removed from the files is deleted. Other kinds are ignored.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use serde::Deserialize;

use super::TrackerHandle;

/// A file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: document {index}: {source}")]
    Yaml {
        path: PathBuf,
        index: usize,
        #[source]
        source: serde_yaml::Error,
    },
}

/// The objects found in the files.
#[derive(Debug, Default)]
pub struct Objects {
    pub services: Vec<Service>,
    pub slices: Vec<EndpointSlice>,
}

/// Parses multi-document YAML (or JSON) text.
pub fn parse(text: &str, path: &Path) -> Result<Objects, FileSourceError> {
    let mut objects = Objects::default();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value =
            serde_yaml::Value::deserialize(document).map_err(|source| FileSourceError::Yaml {
                path: path.into(),
                index,
                source,
            })?;
        collect(value, &mut objects).map_err(|source| FileSourceError::Yaml {
            path: path.into(),
            index,
            source,
        })?;
    }
    Ok(objects)
}

fn collect(value: serde_yaml::Value, objects: &mut Objects) -> Result<(), serde_yaml::Error> {
    if value.is_null() {
        return Ok(());
    }
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_owned();
    match kind.as_str() {
        "Service" => objects.services.push(serde_yaml::from_value(value)?),
        "EndpointSlice" => objects.slices.push(serde_yaml::from_value(value)?),
        "List" | "ServiceList" | "EndpointSliceList" => {
            if let Some(serde_yaml::Value::Sequence(items)) = value.get("items").cloned() {
                for item in items {
                    collect(item, objects)?;
                }
            }
        }
        other => tracing::debug!(kind = other, "file source ignores this kind"),
    }
    Ok(())
}

/// The files to read under `path` (the file itself, or a directory's YAML/JSON files).
fn files(path: &Path) -> Result<Vec<PathBuf>, FileSourceError> {
    let io = |source| FileSourceError::Io {
        path: path.into(),
        source,
    };
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let p = entry.map_err(io)?.path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if p.is_file() && matches!(ext, "yaml" | "yml" | "json") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every object under `path`.
pub fn read(path: &Path) -> Result<Objects, FileSourceError> {
    let mut all = Objects::default();
    for file in files(path)? {
        let text = std::fs::read_to_string(&file).map_err(|source| FileSourceError::Io {
            path: file.clone(),
            source,
        })?;
        let objects = parse(&text, &file)?;
        all.services.extend(objects.services);
        all.slices.extend(objects.slices);
    }
    Ok(all)
}

type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn fingerprint(path: &Path) -> Result<Fingerprint, FileSourceError> {
    files(path).map(|files| {
        files
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(&f).ok();
                let mtime = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.map_or(0, |m| m.len());
                (f, mtime, len)
            })
            .collect()
    })
}

/// Loads `objects` into the tracker as one relist of both kinds.
pub fn relist(handle: &TrackerHandle, objects: Objects) {
    handle.update(|t| {
        t.services.begin_relist();
        for s in objects.services {
            t.services.apply(s);
        }
        t.services.end_relist();
        t.slices.begin_relist();
        for s in objects.slices {
            t.slices.apply(s);
        }
        t.slices.end_relist();
    });
}

/// Watches `path` forever, polling every `interval`. A read or parse error keeps the
/// last good state and is logged (and retried when the files change again).
pub async fn run(path: PathBuf, handle: TrackerHandle, interval: Duration) {
    let mut last: Option<Fingerprint> = None;
    loop {
        match fingerprint(&path) {
            Ok(print) if last.as_ref() != Some(&print) => {
                match read(&path) {
                    Ok(objects) => {
                        tracing::info!(
                            path = %path.display(),
                            services = objects.services.len(),
                            slices = objects.slices.len(),
                            "file source read"
                        );
                        relist(&handle, objects);
                    }
                    Err(error) => {
                        tracing::error!(%error, "file source: keeping the last good state")
                    }
                }
                last = Some(print);
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "file source"),
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multi_document_yaml_and_lists() {
        let text = r#"
apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}
---
apiVersion: v1
kind: List
items:
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: a-1, namespace: default, labels: {kubernetes.io/service-name: a}}
    addressType: IPv4
    endpoints: [{addresses: [10.0.0.1]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ignored}
"#;
        let objects = parse(text, Path::new("x.yaml")).unwrap();
        assert_eq!(objects.services.len(), 1);
        assert_eq!(objects.slices.len(), 1);
    }

    #[test]
    fn bad_document_names_file_and_index() {
        let text = "kind: Service\nmetadata: {name: a}\n---\nkind: Service\nspec: {ports: 7}\n";
        let err = parse(text, Path::new("x.yaml")).unwrap_err().to_string();
        assert!(err.starts_with("x.yaml: document 1:"), "{err}");
    }
}
