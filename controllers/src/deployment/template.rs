//! A Deployment's pod template and its ReplicaSets': the `pod-template-hash` that
//! names a template, and template equality ignoring that label.

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// The label that tells a Deployment's ReplicaSets (and their pods) apart.
pub const HASH_LABEL: &str = "pod-template-hash";

/// The characters the hash is spelled in: no vowels (no words), no look-alikes.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A stable, DNS-label-safe hash of a template and the Deployment's collision count.
/// A collision (a ReplicaSet of that name with another template) bumps the count and
/// so the name.
pub fn hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(&without_hash(template)).expect("a pod template serializes");
    if let Some(count) = collision_count {
        bytes.extend_from_slice(&count.to_le_bytes());
    }
    // FNV-1a, 32 bits.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string().bytes().map(|digit| char::from(ALPHABET[usize::from(digit) % ALPHABET.len()])).collect()
}

/// The template without the hash label (and no empty label map left behind).
pub fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut copy = template.clone();
    if let Some(meta) = copy.metadata.as_mut()
        && let Some(labels) = meta.labels.as_mut()
    {
        labels.remove(HASH_LABEL);
        if labels.is_empty() {
            meta.labels = None;
        }
    }
    copy
}

/// Whether two templates are the same once the hash label is ignored.
pub fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    serde_json::to_value(without_hash(a)).ok() == serde_json::to_value(without_hash(b)).ok()
}

/// `template` with the hash label added.
pub fn with_hash(template: &PodTemplateSpec, hash: &str) -> PodTemplateSpec {
    let mut copy = template.clone();
    copy.metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert(HASH_LABEL.into(), hash.into());
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]}
        }))
        .unwrap()
    }

    #[test]
    fn hash_is_stable_safe_and_ignores_its_own_label() {
        let a = hash(&template("nginx:1"), None);
        assert_eq!(a, hash(&template("nginx:1"), None));
        assert!(a.chars().all(|c| ALPHABET.contains(&(c as u8))), "{a}");
        assert_ne!(a, hash(&template("nginx:2"), None));
        assert_ne!(a, hash(&template("nginx:1"), Some(1)));
        let labelled = with_hash(&template("nginx:1"), &a);
        assert_eq!(hash(&labelled, None), a);
        assert!(equal_ignoring_hash(&labelled, &template("nginx:1")));
        assert!(!equal_ignoring_hash(&labelled, &template("nginx:2")));
    }
}
