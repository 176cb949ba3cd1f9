//! The change tracker: event handlers record, per object, the state before the first
//! unsynced change and the latest state; a sync takes the accumulated pairs.
//!
//! This is kube-proxy's `ServiceChangeTracker`/`EndpointsChangeTracker` shape: a
//! burst of updates to one object collapses into one change, and an update that ends
//! where it started disappears. Relists (a watcher restart, a file re-read) are
//! handled here too: objects not seen again by the end of a relist are deleted.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kube::ResourceExt;

/// `namespace/name` of an object. Shared strings: the tracker holds one key in up to
/// three places (known, pending, relist) and hands it on to the syncer, so a clone
/// must not allocate, and dropping a clone must not free. (Copies freed by the ten
/// thousand at the end of a relist and of the sync after it left glibc's heap to be
/// consolidated by a later allocation: a ~10 ms stall on the next endpoint change.)
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl ObjectKey {
    pub fn of<T: ResourceExt>(obj: &T) -> Self {
        let meta = obj.meta();
        Self {
            namespace: meta.namespace.as_deref().unwrap_or("default").into(),
            name: meta
                .name
                .as_deref()
                .or(meta.generate_name.as_deref())
                .unwrap_or_default()
                .into(),
        }
    }
}

/// An object's state before the first unsynced change and now (`None`: absent).
#[derive(Clone, Debug)]
pub struct Change<T> {
    pub previous: Option<Arc<T>>,
    pub current: Option<Arc<T>>,
}

/// Known objects of one kind and their unsynced changes.
#[derive(Debug)]
pub struct KindTracker<T> {
    known: HashMap<ObjectKey, Arc<T>>,
    pending: HashMap<ObjectKey, Change<T>>,
    relist: Option<HashSet<ObjectKey>>,
    synced: bool,
}

impl<T> Default for KindTracker<T> {
    fn default() -> Self {
        Self {
            known: HashMap::new(),
            pending: HashMap::new(),
            relist: None,
            synced: false,
        }
    }
}

impl<T: PartialEq + ResourceExt> KindTracker<T> {
    /// Records that `obj` exists in this state.
    pub fn apply(&mut self, obj: T) {
        let key = self.shared_key(&obj);
        if let Some(seen) = &mut self.relist {
            seen.insert(key.clone());
        }
        self.record(key, Some(Arc::new(obj)));
    }

    /// Records that the object `key` is gone.
    pub fn delete(&mut self, key: ObjectKey) {
        self.record(key, None);
    }

    /// Starts a relist: objects not applied before [`Self::end_relist`] are deleted.
    pub fn begin_relist(&mut self) {
        self.relist = Some(HashSet::new());
    }

    /// Ends a relist; the kind counts as synced from now on.
    pub fn end_relist(&mut self) {
        if let Some(seen) = self.relist.take() {
            let gone: Vec<ObjectKey> = self
                .known
                .keys()
                .filter(|k| !seen.contains(k))
                .cloned()
                .collect();
            for key in gone {
                self.record(key, None);
            }
        }
        self.synced = true;
    }

    /// Whether the initial list has been seen.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Number of objects with unsynced changes.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The key of `obj`: the known object's key when there is one, so that a relist of
    /// known objects leaves no fresh keys in the relist set to free at its end.
    fn shared_key(&self, obj: &T) -> ObjectKey {
        let key = ObjectKey::of(obj);
        match self.known.get_key_value(&key) {
            Some((known, _)) => known.clone(),
            None => key,
        }
    }

    fn record(&mut self, key: ObjectKey, current: Option<Arc<T>>) {
        let previous = match &current {
            Some(obj) => self.known.insert(key.clone(), obj.clone()),
            None => self.known.remove(&key),
        };
        let change = self.pending.entry(key.clone()).or_insert(Change {
            previous,
            current: None,
        });
        change.current = current;
        let unchanged = match (&change.previous, &change.current) {
            (None, None) => true,
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        if unchanged {
            self.pending.remove(&key);
        }
    }

    fn take(&mut self) -> Vec<(ObjectKey, Change<T>)> {
        self.pending.drain().collect()
    }
}

/// Accumulated changes handed to one sync.
#[derive(Debug, Default)]
pub struct Changes {
    pub services: Vec<(ObjectKey, Change<Service>)>,
    pub slices: Vec<(ObjectKey, Change<EndpointSlice>)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.slices.is_empty()
    }
}

/// Services and EndpointSlices.
#[derive(Debug, Default)]
pub struct ChangeTracker {
    pub services: KindTracker<Service>,
    pub slices: KindTracker<EndpointSlice>,
}

impl ChangeTracker {
    /// Both initial lists were seen: programming may start.
    pub fn is_synced(&self) -> bool {
        self.services.is_synced() && self.slices.is_synced()
    }

    /// Takes every recorded change.
    pub fn take(&mut self) -> Changes {
        Changes {
            services: self.services.take(),
            slices: self.slices.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ServiceSpec;

    use super::*;

    fn svc(name: &str, ip: &str) -> Service {
        let mut s = Service::default();
        s.metadata.name = Some(name.into());
        s.metadata.namespace = Some("default".into());
        s.spec = Some(ServiceSpec {
            cluster_ip: Some(ip.into()),
            ..Default::default()
        });
        s
    }

    #[test]
    fn updates_collapse_to_first_previous_and_last_current() {
        let mut t = KindTracker::default();
        t.apply(svc("a", "10.0.0.1"));
        t.take();
        t.apply(svc("a", "10.0.0.2"));
        t.apply(svc("a", "10.0.0.3"));
        let changes = t.take();
        assert_eq!(changes.len(), 1);
        let c = &changes[0].1;
        assert_eq!(
            c.previous
                .as_ref()
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .cluster_ip
                .as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            c.current
                .as_ref()
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .cluster_ip
                .as_deref(),
            Some("10.0.0.3")
        );
    }

    #[test]
    fn a_change_undone_before_sync_vanishes() {
        let mut t = KindTracker::default();
        t.apply(svc("a", "10.0.0.1"));
        t.take();
        t.apply(svc("a", "10.0.0.2"));
        t.apply(svc("a", "10.0.0.1"));
        assert_eq!(t.pending(), 0);
        t.apply(svc("b", "10.0.0.9"));
        t.delete(ObjectKey {
            namespace: "default".into(),
            name: "b".into(),
        });
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn relist_deletes_what_was_not_seen_and_marks_synced() {
        let mut t = KindTracker::default();
        assert!(!t.is_synced());
        t.begin_relist();
        t.apply(svc("a", "10.0.0.1"));
        t.apply(svc("b", "10.0.0.2"));
        t.end_relist();
        assert!(t.is_synced());
        t.take();
        t.begin_relist();
        t.apply(svc("a", "10.0.0.1"));
        t.end_relist();
        let changes = t.take();
        assert_eq!(changes.len(), 1);
        assert_eq!(&*changes[0].0.name, "b");
        assert!(changes[0].1.current.is_none());
    }

    #[test]
    fn keys_are_shared_not_copied() {
        let mut t = KindTracker::default();
        t.begin_relist();
        t.apply(svc("a", "10.0.0.1"));
        t.end_relist();
        let first = t.take().remove(0).0;
        // The change handed on and the known object share one key.
        assert_eq!(Arc::strong_count(&first.name), 2);
        // Relisting and updating the known object reuse its key.
        t.begin_relist();
        t.apply(svc("a", "10.0.0.1"));
        t.end_relist();
        t.apply(svc("a", "10.0.0.2"));
        let second = t.take().remove(0).0;
        assert!(Arc::ptr_eq(&first.name, &second.name));
        assert!(Arc::ptr_eq(&first.namespace, &second.namespace));
    }
}
