//! Moving pods from the old ReplicaSets to the new one: rolling update within the
//! fences, recreate (old pods gone before new ones start), proportional scaling when
//! the Deployment is resized mid-rollout or paused, and the revision history limit.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};

use super::replica_sets::{self, Writer, available_replicas, spec_replicas};
use super::strategy;
use crate::Error;
use crate::owners;

/// The replicas a new ReplicaSet should have now. Rolling: as many as the surge
/// allows on top of every ReplicaSet's pods, at most the Deployment's replicas.
/// Recreate: all of them (it starts once the old pods are gone).
pub fn new_set_replicas(d: &Deployment, sets: &[ReplicaSet], new: Option<&ReplicaSet>) -> i32 {
    let replicas = strategy::replicas(d);
    if strategy::is_recreate(d) {
        return replicas;
    }
    let current_new = new.map_or(0, spec_replicas);
    let current: i32 = sets.iter().map(spec_replicas).sum();
    let max_total = replicas + strategy::max_surge(d);
    if current >= max_total {
        return current_new;
    }
    current_new + (max_total - current).min(replicas - current_new).max(0)
}

/// Scales the new ReplicaSet toward the Deployment's replicas. Returns whether it scaled.
pub async fn reconcile_new(writer: &Writer<'_>, sets: &mut [ReplicaSet], new: usize) -> Result<bool, Error> {
    let d = writer.deployment;
    let replicas = strategy::replicas(d);
    let current = spec_replicas(&sets[new]);
    if current == replicas {
        return Ok(false);
    }
    let target = if current > replicas { replicas } else { new_set_replicas(d, sets, Some(&sets[new])) };
    writer.scale(&mut sets[new], target).await
}

/// Scales old ReplicaSets down as far as `maxUnavailable` allows: first their pods
/// that are not available (they serve nobody), then available ones beyond the minimum.
pub async fn reconcile_old(writer: &Writer<'_>, sets: &mut [ReplicaSet], new: usize) -> Result<bool, Error> {
    let d = writer.deployment;
    let mut old: Vec<usize> = (0..sets.len()).filter(|&i| i != new).collect();
    if old.iter().map(|&i| spec_replicas(&sets[i])).sum::<i32>() == 0 {
        return Ok(false);
    }
    old.sort_by_key(|&i| (sets[i].metadata.creation_timestamp.as_ref().map(|t| t.0), sets[i].name_any()));
    let all_pods: i32 = sets.iter().map(spec_replicas).sum();
    let min_available = strategy::replicas(d) - strategy::max_unavailable(d);
    let new_unavailable = spec_replicas(&sets[new]) - available_replicas(&sets[new]);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Ok(false);
    }

    let mut cleaned = 0;
    for &i in &old {
        if cleaned >= max_scaled_down {
            break;
        }
        let (replicas, available) = (spec_replicas(&sets[i]), available_replicas(&sets[i]));
        if replicas == 0 || replicas <= available {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(replicas - available);
        writer.scale(&mut sets[i], replicas - down).await?;
        cleaned += down;
    }

    let available: i32 = sets.iter().map(available_replicas).sum();
    let mut scaled = 0;
    if available > min_available {
        let total = available - min_available;
        for &i in &old {
            if scaled >= total {
                break;
            }
            let replicas = spec_replicas(&sets[i]);
            if replicas == 0 {
                continue;
            }
            let down = replicas.min(total - scaled);
            writer.scale(&mut sets[i], replicas - down).await?;
            scaled += down;
        }
    }
    Ok(cleaned + scaled > 0)
}

/// Whether any pod of the old ReplicaSets may still run (Recreate waits for none).
pub async fn old_pods_running(
    d: &Deployment,
    sets: &[ReplicaSet],
    new: Option<usize>,
    pods: &Api<Pod>,
) -> Result<bool, Error> {
    let old_uids: Vec<&str> = sets
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new)
        .filter_map(|(_, rs)| rs.metadata.uid.as_deref())
        .collect();
    if old_uids.is_empty() {
        return Ok(false);
    }
    let spec = d.spec.clone().unwrap_or_default();
    let selector = owners::selector(d, &spec.selector)?;
    let listed = pods.list(&ListParams::default().labels(&selector.to_string())).await?;
    Ok(listed.items.iter().any(|pod| {
        let owned = owners::controller_of(&pod.metadata).is_some_and(|r| old_uids.contains(&r.uid.as_str()));
        let finished = matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
        owned && !finished
    }))
}

/// Resizes active ReplicaSets when the Deployment's replicas changed (or it is
/// paused): a single active ReplicaSet takes all; a saturated new one leaves the old
/// ones nothing; otherwise the difference is shared in proportion to their sizes.
pub async fn scale(writer: &Writer<'_>, sets: &mut [ReplicaSet], new: Option<usize>) -> Result<(), Error> {
    let d = writer.deployment;
    let replicas = strategy::replicas(d);
    let active: Vec<usize> = (0..sets.len()).filter(|&i| spec_replicas(&sets[i]) > 0).collect();
    let sole = match active.as_slice() {
        [only] => Some(*only),
        [] => new.or_else(|| newest(sets)),
        _ => None,
    };
    if let Some(i) = sole {
        writer.scale(&mut sets[i], replicas).await?;
        return Ok(());
    }
    if let Some(n) = new {
        let saturated = spec_replicas(&sets[n]) == replicas && available_replicas(&sets[n]) == replicas;
        if saturated {
            for i in active.into_iter().filter(|&i| i != n) {
                writer.scale(&mut sets[i], 0).await?;
            }
            return Ok(());
        }
    }
    if strategy::is_recreate(d) {
        return Ok(());
    }
    let allowed = replicas + strategy::max_surge(d);
    let current: i32 = active.iter().map(|&i| spec_replicas(&sets[i])).sum();
    let to_add = allowed - current;
    if to_add == 0 {
        return Ok(());
    }
    // Largest first; ties to the newer when adding, to the older when removing.
    let mut order = active;
    order.sort_by(|&a, &b| {
        let size = spec_replicas(&sets[b]).cmp(&spec_replicas(&sets[a]));
        let age = sets[a]
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&sets[b].metadata.creation_timestamp.as_ref().map(|t| t.0));
        size.then(if to_add > 0 { age.reverse() } else { age })
    });
    let mut sizes: Vec<i32> = order.iter().map(|&i| spec_replicas(&sets[i])).collect();
    let mut added = 0;
    for (slot, &i) in order.iter().enumerate() {
        let share = proportion(d, &sets[i], to_add, added);
        sizes[slot] += share;
        added += share;
    }
    if let Some(first) = sizes.first_mut() {
        *first += to_add - added;
        *first = (*first).max(0);
    }
    for (slot, &i) in order.iter().enumerate() {
        writer.scale(&mut sets[i], sizes[slot].max(0)).await?;
    }
    Ok(())
}

/// A ReplicaSet's share of `to_add`: its size scaled from the total it was sized for
/// (its max-replicas annotation) to the new total, capped by what is left to add.
fn proportion(d: &Deployment, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
    let replicas = strategy::replicas(d);
    let size = spec_replicas(rs);
    let fraction = if replicas == 0 {
        -size
    } else {
        let total = replicas + strategy::max_surge(d);
        let annotated = replicas_sets_sized_for(d, rs);
        if annotated == 0 {
            0
        } else {
            let scaled = f64::from(size) * f64::from(total) / f64::from(annotated);
            scaled.round() as i32 - size
        }
    };
    let left = to_add - added;
    if to_add > 0 { fraction.min(left).max(0) } else { fraction.max(left).min(0) }
}

fn replicas_sets_sized_for(d: &Deployment, rs: &ReplicaSet) -> i32 {
    replica_sets::max_replicas(rs).unwrap_or_else(|| d.status.as_ref().map_or(0, |s| s.replicas.unwrap_or(0)))
}

fn newest(sets: &[ReplicaSet]) -> Option<usize> {
    (0..sets.len()).max_by_key(|&i| (sets[i].metadata.creation_timestamp.as_ref().map(|t| t.0), sets[i].name_any()))
}

/// Deletes the oldest idle old ReplicaSets beyond `revisionHistoryLimit`.
pub async fn clean_up(
    d: &Deployment,
    sets: &[ReplicaSet],
    new: Option<usize>,
    api: &Api<ReplicaSet>,
) -> Result<(), Error> {
    let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else { return Ok(()) };
    let mut old: Vec<&ReplicaSet> = sets
        .iter()
        .enumerate()
        .filter(|(i, rs)| Some(*i) != new && rs.metadata.deletion_timestamp.is_none())
        .map(|(_, rs)| rs)
        .collect();
    let excess = old.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
    old.sort_by_key(|rs| (replica_sets::revision(rs), rs.metadata.creation_timestamp.as_ref().map(|t| t.0)));
    for rs in old.into_iter().take(excess) {
        let observed = rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
        let idle = spec_replicas(rs) == 0 && replica_sets::status_replicas(rs) == 0;
        if !idle || rs.metadata.generation.unwrap_or(0) > observed {
            continue;
        }
        match api.delete(&rs.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
