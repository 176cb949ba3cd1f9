//! Printers of persistent volumes, persistent volume claims and storage classes.

use jiff::Timestamp;
use serde_json::Value;

use super::{AGE, Cells, Column, Description, NAME, Printer, age, arr, col, name, s};

static PERSISTENT_VOLUME: &[Column] = &[
    NAME,
    col("Capacity", "string", 0, field!("core.v1.PersistentVolumeSpec", "capacity")),
    col("Access Modes", "string", 0, field!("core.v1.PersistentVolumeSpec", "accessModes")),
    col("Reclaim Policy", "string", 0, field!("core.v1.PersistentVolumeSpec", "persistentVolumeReclaimPolicy")),
    col("Status", "string", 0, field!("core.v1.PersistentVolumeStatus", "phase")),
    col("Claim", "string", 0, field!("core.v1.PersistentVolumeSpec", "claimRef")),
    col("StorageClass", "string", 0, Description::Text("StorageClass of the pv")),
    col("VolumeAttributesClass", "string", 0, Description::Text("VolumeAttributesClass of the pv")),
    col("Reason", "string", 0, field!("core.v1.PersistentVolumeStatus", "reason")),
    AGE,
    col("VolumeMode", "string", 1, field!("core.v1.PersistentVolumeSpec", "volumeMode")),
];

static PERSISTENT_VOLUME_CLAIM: &[Column] = &[
    NAME,
    col("Status", "string", 0, field!("core.v1.PersistentVolumeClaimStatus", "phase")),
    col("Volume", "string", 0, field!("core.v1.PersistentVolumeClaimSpec", "volumeName")),
    col("Capacity", "string", 0, field!("core.v1.PersistentVolumeClaimStatus", "capacity")),
    col("Access Modes", "string", 0, field!("core.v1.PersistentVolumeClaimStatus", "accessModes")),
    col("StorageClass", "string", 0, Description::Text("StorageClass of the pvc")),
    col("VolumeAttributesClass", "string", 0, Description::Text("VolumeAttributesClass of the pvc")),
    AGE,
    col("VolumeMode", "string", 1, field!("core.v1.PersistentVolumeClaimSpec", "volumeMode")),
];

static STORAGE_CLASS: &[Column] = &[
    NAME,
    col("Provisioner", "string", 0, field!("storage.v1.StorageClass", "provisioner")),
    col("ReclaimPolicy", "string", 0, field!("storage.v1.StorageClass", "reclaimPolicy")),
    col("VolumeBindingMode", "string", 0, field!("storage.v1.StorageClass", "volumeBindingMode")),
    col("AllowVolumeExpansion", "string", 0, field!("storage.v1.StorageClass", "allowVolumeExpansion")),
    AGE,
];

pub(super) fn printer(kind: &str, group: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], Cells) = match (group, kind) {
        ("", "PersistentVolume") => (PERSISTENT_VOLUME, persistent_volume),
        ("", "PersistentVolumeClaim") => (PERSISTENT_VOLUME_CLAIM, persistent_volume_claim),
        ("storage.k8s.io", "StorageClass") => (STORAGE_CLASS, storage_class),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

/// `GetAccessModesAsString`: the short forms in upstream's fixed order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")]
        .iter()
        .filter(|(long, _)| has(long))
        .map(|(_, short)| *short)
        .collect::<Vec<_>>()
        .join(",")
}

/// `spec.storageClassName`, or the beta annotation that preceded it.
fn class_name(obj: &Value) -> String {
    match obj.pointer("/spec/storageClassName").and_then(Value::as_str) {
        Some(class) => class.to_owned(),
        None => s(obj, "/metadata/annotations/volume.beta.kubernetes.io~1storage-class").to_owned(),
    }
}

fn or_unset(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("<unset>").to_owned()
}

/// The phase, or `Terminating` once deletion has begun.
fn phase(obj: &Value) -> String {
    if obj.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
        "Terminating".to_owned()
    } else {
        s(obj, "/status/phase").to_owned()
    }
}

fn persistent_volume(obj: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match obj.pointer("/spec/claimRef") {
        Some(r) if r.is_object() => format!("{}/{}", s(r, "/namespace"), s(r, "/name")),
        _ => String::new(),
    };
    vec![
        name(obj).into(),
        s(obj, "/spec/capacity/storage").into(),
        access_modes(arr(obj, "/spec/accessModes")).into(),
        s(obj, "/spec/persistentVolumeReclaimPolicy").into(),
        phase(obj).into(),
        claim.into(),
        class_name(obj).into(),
        or_unset(obj, "/spec/volumeAttributesClassName").into(),
        s(obj, "/status/reason").into(),
        age(obj, now),
        or_unset(obj, "/spec/volumeMode").into(),
    ]
}

fn persistent_volume_claim(obj: &Value, now: Timestamp) -> Vec<Value> {
    let bound = !s(obj, "/spec/volumeName").is_empty();
    let (capacity, modes) = if bound {
        (s(obj, "/status/capacity/storage").to_owned(), access_modes(arr(obj, "/status/accessModes")))
    } else {
        (String::new(), String::new())
    };
    vec![
        name(obj).into(),
        phase(obj).into(),
        s(obj, "/spec/volumeName").into(),
        capacity.into(),
        modes.into(),
        class_name(obj).into(),
        or_unset(obj, "/status/currentVolumeAttributesClassName").into(),
        age(obj, now),
        or_unset(obj, "/spec/volumeMode").into(),
    ]
}

fn storage_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let annotations = obj.pointer("/metadata/annotations");
    let default = ["storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"]
        .iter()
        .any(|a| annotations.and_then(|m| m.get(*a)).and_then(Value::as_str) == Some("true"));
    let shown = if default { format!("{} (default)", name(obj)) } else { name(obj).to_owned() };
    let reclaim = obj.pointer("/reclaimPolicy").and_then(Value::as_str).unwrap_or("Delete");
    let binding = obj.pointer("/volumeBindingMode").and_then(Value::as_str).unwrap_or("Immediate");
    let expansion = obj.pointer("/allowVolumeExpansion").and_then(Value::as_bool).unwrap_or(false);
    vec![shown.into(), s(obj, "/provisioner").into(), reclaim.into(), binding.into(), expansion.into(), age(obj, now)]
}
