//! The garbage collector's picture of the cluster: every watched object by uid with its
//! owner references, and for each owner uid the objects that name it. Each change to
//! the picture says which objects need a look ([`Work`]).
//!
//! An owner reference names an object by uid, but only within the dependent's reach: a
//! namespaced owner must live in the dependent's namespace (the reference carries no
//! namespace), and a cluster-scoped dependent can only have cluster-scoped owners.

use std::collections::{BTreeSet, HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::Work;

/// The finalizer of an object whose dependents go first (`propagationPolicy: Foreground`).
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of an object whose dependents are let go (`propagationPolicy: Orphan`).
pub const ORPHAN: &str = "orphan";

/// One watched object, as much of it as the collector needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The watch that saw it (see [`super::resources::Served::key`]).
    pub resource: String,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub owners: Vec<OwnerReference>,
    /// `deletionTimestamp` is set.
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Node {
    /// Being deleted in the foreground: waiting for its blocking dependents to go.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == FOREGROUND)
    }

    /// Being deleted with its dependents orphaned.
    pub fn orphaning(&self) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == ORPHAN)
    }

    /// `namespace/name` (or `name`) with the kind, for logs.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{} {namespace}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// Whether this object can be the owner a reference of an object in
    /// `dependent_namespace` names.
    fn may_own(&self, dependent_namespace: Option<&str>) -> bool {
        match self.namespace.as_deref() {
            None => true,
            Some(namespace) => dependent_namespace == Some(namespace),
        }
    }

    fn reference_to(&self, owner_uid: &str) -> Option<&OwnerReference> {
        self.owners.iter().find(|r| r.uid == owner_uid)
    }
}

/// Whether `reference` makes its owner wait in a foreground deletion.
pub fn blocks(reference: &OwnerReference) -> bool {
    reference.block_owner_deletion == Some(true)
}

/// The objects and who owns whom.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner uid to the uids of the objects whose references name it (whether or not an
    /// object with that uid is known).
    dependents: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the owner `reference` of `dependent` names an object in the graph.
    pub fn owner_observed(&self, dependent: &Node, reference: &OwnerReference) -> bool {
        self.nodes.get(&reference.uid).is_some_and(|owner| owner.may_own(dependent.namespace.as_deref()))
    }

    /// The objects whose owner references name `owner`.
    pub fn dependents(&self, owner: &Node) -> Vec<&Node> {
        self.dependents
            .get(&owner.uid)
            .into_iter()
            .flatten()
            .filter_map(|uid| self.nodes.get(uid))
            .filter(|dependent| owner.may_own(dependent.namespace.as_deref()))
            .collect()
    }

    /// The dependents of `owner` that block its foreground deletion.
    pub fn blocking_dependents(&self, owner: &Node) -> Vec<&Node> {
        self.dependents(owner).into_iter().filter(|d| d.reference_to(&owner.uid).is_some_and(blocks)).collect()
    }

    /// Records an added or changed object; returns what needs a look.
    pub fn observe(&mut self, node: Node) -> Vec<Work> {
        let mut work = Vec::new();
        let old_owners = self.nodes.remove(&node.uid).map(|old| old.owners).unwrap_or_default();
        for old in &old_owners {
            if node.reference_to(&old.uid).is_none() {
                self.unindex(&old.uid, &node.uid);
            }
            // An owner waiting for this object is waiting no more once the reference
            // goes or stops blocking.
            let still_blocks = node.reference_to(&old.uid).is_some_and(blocks);
            if blocks(old) && !still_blocks && self.nodes.get(&old.uid).is_some_and(Node::deleting_dependents) {
                work.push(Work::AttemptToDelete(old.uid.clone()));
            }
        }
        for owner in &node.owners {
            self.dependents.entry(owner.uid.clone()).or_default().insert(node.uid.clone());
        }
        // A new reference to an object not seen (yet): the owner may be gone.
        let unseen = node
            .owners
            .iter()
            .any(|r| !old_owners.iter().any(|old| old.uid == r.uid) && !self.owner_observed(&node, r));
        if unseen {
            work.push(Work::AttemptToDelete(node.uid.clone()));
        }
        if node.orphaning() {
            work.push(Work::Orphan(node.uid.clone()));
        }
        if node.deleting_dependents() {
            work.push(Work::AttemptToDelete(node.uid.clone()));
            work.extend(self.dependents(&node).into_iter().map(|d| Work::AttemptToDelete(d.uid.clone())));
        }
        self.nodes.insert(node.uid.clone(), node);
        work
    }

    /// Records that the object `uid` is gone; returns what needs a look: its dependents,
    /// and its owners that wait for their dependents.
    pub fn forget(&mut self, uid: &str) -> Vec<Work> {
        let Some(node) = self.nodes.remove(uid) else { return Vec::new() };
        let mut work = Vec::new();
        for owner in &node.owners {
            self.unindex(&owner.uid, uid);
            if self.nodes.get(&owner.uid).is_some_and(Node::deleting_dependents) {
                work.push(Work::AttemptToDelete(owner.uid.clone()));
            }
        }
        work.extend(self.dependents.get(uid).into_iter().flatten().map(|d| Work::AttemptToDelete(d.clone())));
        work
    }

    /// After a (re)list of `resource`: forgets its objects that were not listed.
    pub fn resync(&mut self, resource: &str, listed: &HashSet<String>) -> Vec<Work> {
        let gone: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.resource == resource && !listed.contains(&n.uid))
            .map(|n| n.uid.clone())
            .collect();
        gone.iter().flat_map(|uid| self.forget(uid)).collect()
    }

    fn unindex(&mut self, owner: &str, dependent: &str) {
        if let Some(set) = self.dependents.get_mut(owner) {
            set.remove(dependent);
            if set.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("cm-{uid}"),
            uid: uid.into(),
            controller: None,
            block_owner_deletion: Some(block),
        }
    }

    fn node(uid: &str, namespace: Option<&str>, owners: Vec<OwnerReference>) -> Node {
        Node {
            resource: "v1/configmaps".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: namespace.map(str::to_owned),
            name: format!("cm-{uid}"),
            uid: uid.into(),
            owners,
            deleting: false,
            finalizers: Vec::new(),
        }
    }

    fn deleting(mut node: Node, finalizer: &str) -> Node {
        node.deleting = true;
        node.finalizers = vec![finalizer.into()];
        node
    }

    #[test]
    fn unseen_owners_ask_for_a_look() {
        let mut graph = Graph::default();
        assert_eq!(graph.observe(node("owner", Some("a"), vec![])), vec![]);
        // Its owner is known: nothing to do.
        assert_eq!(graph.observe(node("d1", Some("a"), vec![reference("owner", true)])), vec![]);
        // An unknown owner, or a known one in another namespace, may be gone.
        assert_eq!(
            graph.observe(node("d2", Some("a"), vec![reference("nobody", false)])),
            vec![Work::AttemptToDelete("d2".into())]
        );
        assert_eq!(
            graph.observe(node("d3", Some("b"), vec![reference("owner", false)])),
            vec![Work::AttemptToDelete("d3".into())]
        );
        // A cluster-scoped owner may own namespaced objects.
        assert_eq!(graph.observe(node("cluster", None, vec![])), vec![]);
        assert_eq!(graph.observe(node("d4", Some("b"), vec![reference("cluster", false)])), vec![]);
        let owner = graph.get("owner").unwrap().clone();
        let dependents: Vec<&str> = graph.dependents(&owner).iter().map(|n| n.uid.as_str()).collect();
        assert_eq!(dependents, ["d1"]);
    }

    #[test]
    fn deleting_an_owner_wakes_its_dependents() {
        let mut graph = Graph::default();
        graph.observe(node("owner", Some("a"), vec![]));
        graph.observe(node("d1", Some("a"), vec![reference("owner", false)]));
        assert_eq!(graph.forget("owner"), vec![Work::AttemptToDelete("d1".into())]);
        assert!(graph.get("owner").is_none());
        // A relist without d1 forgets it too.
        assert_eq!(graph.resync("v1/configmaps", &HashSet::new()), vec![]);
        assert_eq!(graph.len(), 0);
    }

    #[test]
    fn foreground_deletion_waits_for_blocking_dependents() {
        let mut graph = Graph::default();
        graph.observe(node("owner", Some("a"), vec![]));
        graph.observe(node("blocker", Some("a"), vec![reference("owner", true)]));
        graph.observe(node("loose", Some("a"), vec![reference("owner", false)]));
        let work = graph.observe(deleting(node("owner", Some("a"), vec![]), FOREGROUND));
        assert_eq!(
            work,
            vec![
                Work::AttemptToDelete("owner".into()),
                Work::AttemptToDelete("blocker".into()),
                Work::AttemptToDelete("loose".into()),
            ]
        );
        let owner = graph.get("owner").unwrap().clone();
        let blocking: Vec<&str> = graph.blocking_dependents(&owner).iter().map(|n| n.uid.as_str()).collect();
        assert_eq!(blocking, ["blocker"]);
        // The blocker stops blocking: the owner gets another look.
        assert_eq!(
            graph.observe(node("blocker", Some("a"), vec![reference("owner", false)])),
            vec![Work::AttemptToDelete("owner".into())]
        );
        // A dependent going away does too.
        assert_eq!(graph.forget("loose"), vec![Work::AttemptToDelete("owner".into())]);
    }

    #[test]
    fn orphaning_is_queued() {
        let mut graph = Graph::default();
        assert_eq!(graph.observe(deleting(node("owner", None, vec![]), ORPHAN)), vec![Work::Orphan("owner".into())]);
    }
}
