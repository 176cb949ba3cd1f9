//! The in-memory index the authorizer and the authenticator read: the stored Roles,
//! ClusterRoles and their bindings (rebuilt into a policy [`Snapshot`] on every
//! change) and the ServiceAccounts (whose tokens are valid only while they exist),
//! followed through store watches, so a request costs no store read.
//!
//! Each key keeps the revision it was last seen at; an older report never replaces a
//! newer one. Besides the watches, [`Index::refresh`] re-lists one kind right after
//! this server wrote it, so a client sees its own RBAC changes on its next request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use waggle_apimachinery::registry::{self, Resource};
use waggle_store::{ListResult, Revision, Store, StoreError, WatchEvent};

use super::policy::Snapshot;
use crate::keys;

pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The kinds followed, as (group, plural): the four RBAC kinds of the policy, in the
/// order [`Snapshot::build`] takes them, then ServiceAccounts.
const KINDS: [(&str, &str); 5] = [
    (RBAC_GROUP, "clusterroles"),
    (RBAC_GROUP, "roles"),
    (RBAC_GROUP, "clusterrolebindings"),
    (RBAC_GROUP, "rolebindings"),
    ("", "serviceaccounts"),
];

/// The index of ServiceAccounts in [`KINDS`]; the ones before it make the policy.
const SERVICE_ACCOUNTS: usize = 4;

/// A key's last known state: its revision and the object (`None`: deleted).
struct Entry {
    revision: Revision,
    object: Option<Value>,
}

/// See the module docs.
pub struct Index {
    store: Arc<dyn Store>,
    /// Per kind (as [`KINDS`]): key → entry.
    objects: Mutex<[HashMap<String, Entry>; 5]>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// ServiceAccount uids by `namespace/name`.
    accounts: RwLock<Arc<HashMap<String, String>>>,
}

fn resource(kind: usize) -> &'static Resource {
    let (group, plural) = KINDS[kind];
    registry::find(group, "v1", plural).expect("followed kinds are served")
}

fn prefix(kind: usize) -> String {
    keys::collection_prefix(resource(kind), None)
}

impl Index {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Index {
            store,
            objects: Mutex::default(),
            snapshot: RwLock::default(),
            accounts: RwLock::default(),
        }
    }

    /// The current policy.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().clone()
    }

    /// Loads every followed object (call before serving).
    pub async fn load(&self) -> Result<[Revision; 5], StoreError> {
        let mut revisions = [0; 5];
        for (kind, revision) in revisions.iter_mut().enumerate() {
            *revision = self.relist(kind).await?;
        }
        Ok(revisions)
    }

    /// Re-reads the kind of `group`/`plural` if it is followed (after this server
    /// wrote one of its objects).
    pub async fn refresh(&self, group: &str, plural: &str) -> Result<(), StoreError> {
        if let Some(kind) = KINDS.iter().position(|k| *k == (group, plural)) {
            self.relist(kind).await?;
        }
        Ok(())
    }

    async fn relist(&self, kind: usize) -> Result<Revision, StoreError> {
        let ListResult {
            items, revision, ..
        } = waggle_store::list_prefix(self.store.as_ref(), &prefix(kind)).await?;
        {
            let mut objects = self.objects.lock();
            let entries = &mut objects[kind];
            let listed: std::collections::HashSet<&str> =
                items.iter().map(|kv| kv.key.as_str()).collect();
            for (key, entry) in entries.iter_mut() {
                if !listed.contains(key.as_str()) && entry.revision <= revision {
                    *entry = Entry {
                        revision,
                        object: None,
                    };
                }
            }
            for kv in &items {
                put(
                    entries,
                    &kv.key,
                    kv.mod_revision,
                    serde_json::from_slice(&kv.value).ok(),
                );
            }
        }
        self.rebuild(kind);
        Ok(revision)
    }

    fn apply(&self, kind: usize, event: WatchEvent) {
        {
            let mut objects = self.objects.lock();
            match event {
                WatchEvent::Put { kv, .. } => put(
                    &mut objects[kind],
                    &kv.key,
                    kv.mod_revision,
                    serde_json::from_slice(&kv.value).ok(),
                ),
                WatchEvent::Delete { prev, revision } => {
                    put(&mut objects[kind], &prev.key, revision, None)
                }
                WatchEvent::Progress { .. } => return,
            }
        }
        self.rebuild(kind);
    }

    /// Rebuilds what `kind` feeds: the account uids, or the policy.
    fn rebuild(&self, kind: usize) {
        if kind == SERVICE_ACCOUNTS {
            let accounts: HashMap<String, String> = self.objects.lock()[SERVICE_ACCOUNTS]
                .values()
                .filter_map(|e| {
                    let meta = e.object.as_ref()?.get("metadata")?;
                    let field = |name: &str| meta.get(name).and_then(Value::as_str);
                    Some((
                        format!("{}/{}", field("namespace")?, field("name")?),
                        field("uid")?.to_owned(),
                    ))
                })
                .collect();
            *self.accounts.write() = Arc::new(accounts);
            return;
        }
        let snapshot = {
            let objects = self.objects.lock();
            let live = |kind: usize| -> Vec<&Value> {
                objects[kind]
                    .values()
                    .filter_map(|e| e.object.as_ref())
                    .collect()
            };
            Snapshot::build(&live(0), &live(1), &live(2), &live(3))
        };
        *self.snapshot.write() = Arc::new(snapshot);
    }

    /// Follows the store from `after` (as [`Index::load`] returned) until aborted,
    /// re-listing a kind whose watch fails.
    pub fn follow(self: Arc<Self>, after: [Revision; 5]) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let watches = (0..KINDS.len()).map(|kind| self.clone().follow_kind(kind, after[kind]));
            futures::future::join_all(watches).await;
        })
    }

    async fn follow_kind(self: Arc<Self>, kind: usize, mut after: Revision) {
        loop {
            match self.store.watch(&prefix(kind), after).await {
                Ok(mut stream) => {
                    while let Some(event) = stream.next().await {
                        match event {
                            Ok(event) => {
                                after = after.max(event.revision());
                                self.apply(kind, event);
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, kind = KINDS[kind].1, "index watch ended");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, kind = KINDS[kind].1, "index watch failed"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.relist(kind).await {
                Ok(revision) => after = revision,
                Err(e) => {
                    tracing::warn!(error = %e, kind = KINDS[kind].1, "re-listing indexed objects failed")
                }
            }
        }
    }
}

impl crate::authn::ServiceAccounts for Index {
    fn uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.accounts
            .read()
            .get(&format!("{namespace}/{name}"))
            .cloned()
    }
}

fn put(entries: &mut HashMap<String, Entry>, key: &str, revision: Revision, object: Option<Value>) {
    match entries.get_mut(key) {
        Some(entry) if entry.revision >= revision => {}
        Some(entry) => *entry = Entry { revision, object },
        None => {
            entries.insert(key.to_owned(), Entry { revision, object });
        }
    }
}
