//! Which pods to create or delete next, as upstream's StatefulSet control decides:
//! replace failed pods and create missing ones in ordinal order, then remove condemned
//! pods (ordinals beyond the replicas) highest first, then roll stale pods over to the
//! update revision highest first, down to the partition. `OrderedReady` does one thing
//! at a time and waits for every earlier pod to be running and ready; `Parallel` does
//! what it can at once.

/// How the pod of one ordinal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// No pod (or one that is gone).
    Missing,
    /// Succeeded or failed: to be replaced.
    Finished,
    /// Being deleted.
    Terminating,
    /// Not running and ready.
    Unready,
    /// Running and ready, not yet for `minReadySeconds`.
    Ready,
    /// Running and ready for `minReadySeconds`.
    Available,
}

/// The pod of one ordinal as the plan sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub ordinal: i32,
    pub health: Health,
    /// The revision the pod was made from; empty when missing.
    pub revision: String,
}

/// How the set updates its pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Updates {
    /// Pods are replaced only when deleted by someone else.
    OnDelete,
    /// Stale pods from `partition` (an index into the replicas) up are replaced,
    /// highest first, with at most `max_unavailable` unavailable when that is set.
    Rolling { partition: usize, max_unavailable: Option<usize> },
}

/// Which revision a pod is created from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revision {
    Current,
    Update,
}

/// Why a pod is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// It finished (failed or succeeded) and is replaced.
    Finished,
    /// Its ordinal is beyond the replicas.
    ScaledDown,
    /// It is not at the update revision.
    Stale,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Create { ordinal: i32, revision: Revision },
    Delete { ordinal: i32, why: Why },
}

/// The steps to take now. `replicas` holds the ordinals the set should have, in
/// order; `condemned` the pods beyond them.
pub fn plan(replicas: &[Slot], condemned: &[Slot], parallel: bool, updates: Updates, update: &str) -> Vec<Step> {
    let monotonic = !parallel;
    let mut steps = Vec::new();
    let mut replicas = replicas.to_vec();

    for (index, slot) in replicas.iter_mut().enumerate() {
        match slot.health {
            Health::Finished => {
                steps.push(Step::Delete { ordinal: slot.ordinal, why: Why::Finished });
                if monotonic {
                    return steps;
                }
                slot.health = Health::Terminating;
            }
            Health::Missing => {
                let revision = match updates {
                    Updates::Rolling { partition, .. } if index < partition => Revision::Current,
                    _ => Revision::Update,
                };
                steps.push(Step::Create { ordinal: slot.ordinal, revision });
                if monotonic {
                    return steps;
                }
                slot.health = Health::Unready;
                slot.revision = match revision {
                    Revision::Current => String::new(),
                    Revision::Update => update.to_owned(),
                };
            }
            Health::Terminating | Health::Unready | Health::Ready if monotonic => return steps,
            _ => {}
        }
    }

    let mut condemned = condemned.to_vec();
    condemned.sort_by_key(|s| s.ordinal);
    // The first pod not available, the replicas' before the condemned, each in ordinal
    // order: in OrderedReady the only unavailable pod that may be deleted.
    let first_unhealthy = replicas.iter().chain(&condemned).find(|s| s.health != Health::Available).map(|s| s.ordinal);
    condemned.reverse();
    for slot in &condemned {
        if slot.health == Health::Terminating {
            if monotonic {
                return steps;
            }
            continue;
        }
        if monotonic && slot.health != Health::Available && first_unhealthy != Some(slot.ordinal) {
            return steps;
        }
        steps.push(Step::Delete { ordinal: slot.ordinal, why: Why::ScaledDown });
        if monotonic {
            return steps;
        }
    }

    let Updates::Rolling { partition, max_unavailable } = updates else { return steps };
    let healthy = |s: &Slot| s.health == Health::Available;
    let stale = |s: &Slot| {
        s.revision != update && !matches!(s.health, Health::Terminating | Health::Missing | Health::Finished)
    };
    let min = partition.min(replicas.len());
    match max_unavailable {
        None => {
            for slot in replicas[min..].iter().rev() {
                if stale(slot) {
                    steps.push(Step::Delete { ordinal: slot.ordinal, why: Why::Stale });
                    return steps;
                }
                if !healthy(slot) {
                    return steps;
                }
            }
        }
        Some(most) => {
            let unavailable = replicas.iter().filter(|s| !healthy(s)).count();
            let budget = most.max(1).saturating_sub(unavailable);
            let doomed = replicas[min..].iter().rev().filter(|s| stale(s)).take(budget);
            steps.extend(doomed.map(|s| Step::Delete { ordinal: s.ordinal, why: Why::Stale }));
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::*;

    fn slots(start: i32, states: &[(Health, &str)]) -> Vec<Slot> {
        states
            .iter()
            .zip(start..)
            .map(|((health, revision), ordinal)| Slot { ordinal, health: *health, revision: revision.to_string() })
            .collect()
    }

    const ROLLING: Updates = Updates::Rolling { partition: 0, max_unavailable: None };

    fn create(ordinal: i32) -> Step {
        Step::Create { ordinal, revision: Revision::Update }
    }

    fn delete(ordinal: i32, why: Why) -> Step {
        Step::Delete { ordinal, why }
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time_after_readiness() {
        let empty = slots(0, &[(Missing, ""), (Missing, ""), (Missing, "")]);
        assert_eq!(plan(&empty, &[], false, ROLLING, "b"), [create(0)]);
        let first_unready = slots(0, &[(Unready, "b"), (Missing, ""), (Missing, "")]);
        assert_eq!(plan(&first_unready, &[], false, ROLLING, "b"), []);
        // Ready is not enough while minReadySeconds have not passed.
        let first_ready = slots(0, &[(Ready, "b"), (Missing, ""), (Missing, "")]);
        assert_eq!(plan(&first_ready, &[], false, ROLLING, "b"), []);
        let first_available = slots(0, &[(Available, "b"), (Missing, ""), (Missing, "")]);
        assert_eq!(plan(&first_available, &[], false, ROLLING, "b"), [create(1)]);
        let from_three = slots(3, &[(Available, "b"), (Missing, "")]);
        assert_eq!(plan(&from_three, &[], false, ROLLING, "b"), [create(4)]);
        // A hole below the highest pod is filled first.
        let hole = slots(0, &[(Available, "b"), (Missing, ""), (Available, "b")]);
        assert_eq!(plan(&hole, &[], false, ROLLING, "b"), [create(1)]);
    }

    #[test]
    fn parallel_creates_and_deletes_at_once() {
        let empty = slots(0, &[(Missing, ""), (Unready, "b"), (Missing, "")]);
        assert_eq!(plan(&empty, &[], true, ROLLING, "b"), [create(0), create(2)]);
        let condemned = slots(3, &[(Unready, "b"), (Available, "b")]);
        let full = slots(0, &[(Available, "b"), (Available, "b"), (Available, "b")]);
        assert_eq!(
            plan(&full, &condemned, true, ROLLING, "b"),
            [delete(4, Why::ScaledDown), delete(3, Why::ScaledDown)]
        );
    }

    #[test]
    fn ordered_ready_scales_down_highest_first_one_at_a_time() {
        let full = slots(0, &[(Available, "b")]);
        let condemned = slots(1, &[(Available, "b"), (Available, "b")]);
        assert_eq!(plan(&full, &condemned, false, ROLLING, "b"), [delete(2, Why::ScaledDown)]);
        let going = slots(1, &[(Available, "b"), (Terminating, "b")]);
        assert_eq!(plan(&full, &going, false, ROLLING, "b"), []);
        // An unhealthy condemned pod waits unless it is the first unhealthy one.
        let broken = slots(1, &[(Unready, "b"), (Unready, "b")]);
        assert_eq!(plan(&full, &broken, false, ROLLING, "b"), []);
        let one_broken = slots(1, &[(Unready, "b"), (Available, "b")]);
        assert_eq!(plan(&full, &one_broken, false, ROLLING, "b"), [delete(2, Why::ScaledDown)]);
        let only = slots(1, &[(Unready, "b")]);
        assert_eq!(plan(&full, &only, false, ROLLING, "b"), [delete(1, Why::ScaledDown)]);
    }

    #[test]
    fn finished_pods_are_replaced() {
        let failed = slots(0, &[(Available, "b"), (Finished, "b")]);
        assert_eq!(plan(&failed, &[], false, ROLLING, "b"), [delete(1, Why::Finished)]);
        let gone = slots(0, &[(Available, "b"), (Terminating, "b")]);
        assert_eq!(plan(&gone, &[], false, ROLLING, "b"), []);
    }

    #[test]
    fn rolling_update_goes_in_reverse_and_waits_for_health() {
        let stale = slots(0, &[(Available, "a"), (Available, "a"), (Available, "a")]);
        assert_eq!(plan(&stale, &[], false, ROLLING, "b"), [delete(2, Why::Stale)]);
        let recreated = slots(0, &[(Available, "a"), (Available, "a"), (Missing, "")]);
        assert_eq!(plan(&recreated, &[], false, ROLLING, "b"), [create(2)]);
        let starting = slots(0, &[(Available, "a"), (Available, "a"), (Ready, "b")]);
        assert_eq!(plan(&starting, &[], true, ROLLING, "b"), []);
        let next = slots(0, &[(Available, "a"), (Available, "a"), (Available, "b")]);
        assert_eq!(plan(&next, &[], false, ROLLING, "b"), [delete(1, Why::Stale)]);
        let done = slots(0, &[(Available, "b"), (Available, "b"), (Available, "b")]);
        assert_eq!(plan(&done, &[], false, ROLLING, "b"), []);
        assert_eq!(plan(&stale, &[], false, Updates::OnDelete, "b"), []);
    }

    #[test]
    fn partition_holds_lower_ordinals_back() {
        let partitioned = Updates::Rolling { partition: 2, max_unavailable: None };
        let stale = slots(0, &[(Available, "a"), (Available, "a"), (Available, "b")]);
        assert_eq!(plan(&stale, &[], false, partitioned, "b"), []);
        // Below the partition pods are recreated from the current revision.
        let missing = slots(0, &[(Available, "a"), (Missing, ""), (Available, "b")]);
        assert_eq!(
            plan(&missing, &[], false, partitioned, "b"),
            [Step::Create { ordinal: 1, revision: Revision::Current }]
        );
    }

    #[test]
    fn max_unavailable_updates_several_at_once() {
        let two = Updates::Rolling { partition: 0, max_unavailable: Some(2) };
        let stale = slots(0, &[(Available, "a"), (Available, "a"), (Available, "a")]);
        assert_eq!(plan(&stale, &[], true, two, "b"), [delete(2, Why::Stale), delete(1, Why::Stale)]);
        let one_down = slots(0, &[(Available, "a"), (Available, "a"), (Unready, "b")]);
        assert_eq!(plan(&one_down, &[], true, two, "b"), [delete(1, Why::Stale)]);
    }
}
