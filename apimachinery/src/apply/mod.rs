//! Server-side apply and managed fields (`metadata.managedFields`), following
//! structured-merge-diff's semantics:
//!
//! * [`apply`] (`PATCH` with `Content-Type: application/apply-patch+yaml`): the applied
//!   configuration is merged into the live object; a field another manager owns with a
//!   different value is a conflict (409) unless `force`; fields the applier owned before
//!   but no longer applies are removed when nobody else owns them; the applier's
//!   `Apply` entry records exactly the applied fields.
//! * [`record_update`] (every create, update and non-apply patch): the `Update` entry of
//!   the request's field manager takes ownership of the fields the request changed, away
//!   from other managers, so that a later `apply --server-side` conflicts as upstream.
//!
//! `apiVersion`, `kind` and server-owned metadata (`name`, `uid`, `resourceVersion`, ...)
//! are never tracked, and `status` is tracked only for the `status` subresource of
//! resources that have one (upstream's reset fields).

pub mod fieldset;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::openapi::{self, navigate::Node, validate};
use crate::registry::{self, Resource};
use fieldset::{FieldSet, Path, display, key_value, of_value, remove_at, value_at};

/// What apply knows of an object's kind: where its schema comes from (list and map
/// types, undeclared fields) and whether `status` belongs to a subresource.
#[derive(Clone, Copy, Debug)]
pub enum Kind<'a> {
    /// A built-in kind: its OpenAPI schema, found by the object's `apiVersion` and `kind`.
    BuiltIn,
    /// A custom resource: its definition's structural schema, if it has one (lists
    /// without `x-kubernetes-list-type` are atomic, as upstream).
    Custom { schema: Option<&'a Value>, status_subresource: bool },
}

impl<'a> Kind<'a> {
    /// The kind of `resource`'s objects.
    pub fn of(resource: &'a Resource) -> Self {
        match resource.custom {
            Some(custom) => Kind::Custom {
                schema: custom.structural_schema(),
                status_subresource: resource.has_subresource("status"),
            },
            None => Kind::BuiltIn,
        }
    }

    fn root(&self, obj: &Value) -> Option<Node<'a>> {
        match *self {
            Kind::BuiltIn => schema_of(obj),
            Kind::Custom { schema, .. } => schema.map(Node::standalone),
        }
    }

    fn status_subresource(&self, obj: &Value) -> bool {
        match *self {
            Kind::BuiltIn => has_status_subresource(obj),
            Kind::Custom { status_subresource, .. } => status_subresource,
        }
    }

    /// The fields of `obj` its schema does not declare.
    fn unknown_fields(&self, obj: &Value) -> Vec<String> {
        match *self {
            Kind::BuiltIn => validate::unknown_fields(obj),
            Kind::Custom { schema, .. } => {
                schema.map(|s| crate::schema::prune(s, &mut obj.clone())).unwrap_or_default()
            }
        }
    }
}

/// One conflict: a manager owning a field with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// How upstream prints the manager: `"kubectl"` for appliers, `"kubectl-create" using apps/v1`
    /// for updaters.
    pub manager: String,
    /// `.spec.replicas`.
    pub field: String,
}

/// Why an apply was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    /// 409 Conflict; [`ApplyError::status`] is the `Status` to return.
    #[error("{message}")]
    Conflict { conflicts: Vec<Conflict>, message: String },
    /// 400 BadRequest: not an object, no `apiVersion`/`kind`, or fields the schema does
    /// not declare.
    #[error("{0}")]
    Invalid(String),
}

impl ApplyError {
    pub fn code(&self) -> u16 {
        match self {
            Self::Conflict { .. } => 409,
            Self::Invalid(_) => 400,
        }
    }

    /// The `metav1.Status` body upstream returns.
    pub fn status(&self) -> Value {
        match self {
            Self::Conflict { conflicts, message } => json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": "Conflict",
                "details": {"causes": conflicts.iter().map(|c| json!({
                    "type": "FieldManagerConflict",
                    "message": format!("conflict with {}", c.manager),
                    "field": c.field,
                })).collect::<Vec<_>>()},
                "code": 409,
            }),
            Self::Invalid(message) => json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": "BadRequest", "code": 400,
            }),
        }
    }
}

/// A parsed `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: String,
    set: FieldSet,
}

impl Entry {
    fn parse(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        Entry {
            manager: s("manager"),
            operation: s("operation"),
            api_version: s("apiVersion"),
            time: v.get("time").and_then(Value::as_str).map(str::to_owned),
            subresource: s("subresource"),
            set: v.get("fieldsV1").map(FieldSet::from_fields_v1).unwrap_or_default(),
        }
    }

    fn to_value(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        });
        if let Some(t) = &self.time {
            v["time"] = t.clone().into();
        }
        v["fieldsType"] = "FieldsV1".into();
        v["fieldsV1"] = self.set.to_fields_v1();
        if !self.subresource.is_empty() {
            v["subresource"] = self.subresource.clone().into();
        }
        v
    }

    /// Upstream's `printManager`.
    fn printed(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

fn entries_of(obj: Option<&Value>) -> Vec<Entry> {
    obj.and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(Entry::parse).collect())
        .unwrap_or_default()
}

/// Upstream's order: by operation, time, manager, apiVersion, subresource.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        (&a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(&b.operation, &b.time, &b.manager, &b.api_version, &b.subresource))
    });
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(entries.iter().map(Entry::to_value).collect()));
        }
    }
}

const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
];

fn has_status_subresource(obj: &Value) -> bool {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    registry::find_kind(api_version, kind).is_some_and(|r| r.has_subresource("status"))
}

/// The tracked fields of `obj` as seen by an operation on `subresource`.
fn managed_set(kind: Kind<'_>, obj: &Value, subresource: &str) -> FieldSet {
    let node = kind.root(obj);
    let mut set = of_value(obj, node);
    set.member = false;
    set.children.remove("f:apiVersion");
    set.children.remove("f:kind");
    for f in SERVER_METADATA {
        set.remove_subtree(&["f:metadata".to_owned(), format!("f:{f}")]);
    }
    if kind.status_subresource(obj) {
        if subresource == "status" {
            set.children.retain(|k, _| k == "f:status");
        } else {
            set.children.remove("f:status");
        }
    }
    set
}

fn schema_of(obj: &Value) -> Option<Node<'static>> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    Node::for_kind(openapi::all_definitions(), api_version, kind)
}

/// A leaf: a path whose node in `set` has no children.
fn leaf_paths(set: &FieldSet) -> Vec<Path> {
    set.paths().into_iter().filter(|p| !p.is_empty() && node_at(set, p).is_some_and(|n| n.children.is_empty())).collect()
}

fn node_at<'a>(set: &'a FieldSet, path: &[String]) -> Option<&'a FieldSet> {
    match path.split_first() {
        None => Some(set),
        Some((first, rest)) => node_at(set.children.get(first)?, rest),
    }
}

fn owns_at_or_below(set: &FieldSet, path: &[String]) -> bool {
    node_at(set, path).is_some_and(|n| !n.is_empty())
}

fn format_time(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn describe_object(obj: &Value) -> String {
    let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let gv = if api_version.contains('/') { api_version.to_owned() } else { format!("/{api_version}") };
    let nn = if ns.is_empty() { name.to_owned() } else { format!("{ns}/{name}") };
    format!("{nn}; {gv}, Kind={kind}")
}

/// Server-side apply of `applied` (the parsed `application/apply-patch+yaml` body) by
/// field manager `manager` onto `live` (`None`: the object does not exist yet, the
/// apply creates it). Returns the new object with `metadata.managedFields` updated.
pub fn apply(kind: Kind<'_>, live: Option<&Value>, applied: &Value, manager: &str, force: bool, now: Timestamp) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::Invalid("error decoding YAML: the applied configuration must be an object".into()));
    }
    for field in ["apiVersion", "kind"] {
        if applied.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(ApplyError::Invalid(format!("{field} must be set in the applied configuration")));
        }
    }
    let unknown = kind.unknown_fields(applied);
    if !unknown.is_empty() {
        return Err(ApplyError::Invalid(format!(
            "failed to create typed patch object ({}): {}",
            describe_object(applied),
            validate::apply_schema_errors(&unknown).join("\n")
        )));
    }
    let mut applied = applied.clone();
    if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    let node = kind.root(&applied);
    let applied_set = managed_set(kind, &applied, "");
    let mut entries = entries_of(live);
    let empty = json!({});
    let live_value = live.unwrap_or(&empty);

    let mut conflicts = Vec::new();
    let leaves = leaf_paths(&applied_set);
    for entry in entries.iter_mut() {
        if entry.manager == manager && entry.operation == "Apply" {
            continue;
        }
        let mut lost = Vec::new();
        for path in &leaves {
            if entry.set.has(path) && value_at(live_value, path) != value_at(&applied, path) {
                conflicts.push(Conflict { manager: entry.printed(), field: display(path) });
                lost.push(path.clone());
            }
        }
        if force {
            for p in lost {
                entry.set.remove(&p);
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(conflicts));
    }

    let mut merged = match live {
        Some(l) => l.clone(),
        None => json!({}),
    };
    merge_applied(&mut merged, &applied, node);

    let previous = entries
        .iter()
        .position(|e| e.manager == manager && e.operation == "Apply" && e.subresource.is_empty())
        .map(|i| entries.remove(i));
    if let Some(prev) = previous {
        let mut removed: Vec<Path> = prev.set.paths().into_iter().filter(|p| !p.is_empty() && !applied_set.has(p)).collect();
        removed.retain(|p| !owns_at_or_below(&applied_set, p) && !entries.iter().any(|e| owns_at_or_below(&e.set, p)));
        // Shallowest first: removing a list item removes its fields (and the key fields
        // that find it) with it.
        removed.sort_by_key(Vec::len);
        let mut done: Vec<Path> = Vec::new();
        for p in removed {
            if !done.iter().any(|d| p.starts_with(d)) {
                remove_at(&mut merged, &p);
                done.push(p);
            }
        }
    }
    entries.push(Entry {
        manager: manager.to_owned(),
        operation: "Apply".into(),
        api_version: applied["apiVersion"].as_str().unwrap_or_default().to_owned(),
        time: Some(format_time(now)),
        subresource: String::new(),
        set: applied_set,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

fn conflict_error(conflicts: Vec<Conflict>) -> ApplyError {
    let n = conflicts.len();
    let body = if n == 1 {
        format!("conflict with {}: {}", conflicts[0].manager, conflicts[0].field)
    } else {
        let mut managers: Vec<&String> = conflicts.iter().map(|c| &c.manager).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(conflicts.iter().filter(|c| &c.manager == m).map(|c| format!("- {}", c.field)));
        }
        lines.join("\n")
    };
    let message = format!("Apply failed with {n} conflict{}: {body}", if n == 1 { "" } else { "s" });
    ApplyError::Conflict { conflicts, message }
}

/// Merges an applied configuration into `target` per the schema: structs and maps
/// recursively, associative lists by key, sets as unions, everything else replaced.
fn merge_applied(target: &mut Value, applied: &Value, node: Option<Node<'_>>) {
    let (Some(t), Some(a)) = (target.as_object_mut(), applied.as_object()) else {
        *target = applied.clone();
        return;
    };
    let atomic = node.is_some_and(|n| n.schema().get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"));
    if atomic {
        *target = applied.clone();
        return;
    }
    for (k, v) in a {
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let (child, meta) = match node {
            Some(n) if n.properties().is_some() => match n.field(k) {
                Some(f) => (Some(f.node), Some(f.meta)),
                None => (None, None),
            },
            Some(n) => (n.map_values(), None),
            None => (None, None),
        };
        match (t.get_mut(k), v) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => merge_applied(existing, v, child),
            (Some(Value::Array(existing)), Value::Array(items)) if meta.is_some() => {
                let meta = meta.expect("checked");
                let keys = meta.associative_keys();
                if !keys.is_empty() && items.iter().all(Value::is_object) {
                    let item_node = child.and_then(|c| c.items());
                    for item in items {
                        let same = |e: &&mut Value| keys.iter().all(|key| key_value(e, key) == key_value(item, key));
                        match existing.iter_mut().find(same) {
                            Some(e) => merge_applied(e, item, item_node),
                            None => existing.push(item.clone()),
                        }
                    }
                } else if meta.is_set() {
                    for item in items {
                        if !existing.contains(item) {
                            existing.push(item.clone());
                        }
                    }
                } else {
                    *existing = items.clone();
                }
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Records an ordinary write (create, update, JSON/merge/strategic patch) by field manager
/// `manager` (the `fieldManager` query parameter, else the user agent's program name):
/// `old` is the stored object (`None` on create), `new` the object about to be stored.
/// Returns `new` with `metadata.managedFields` updated. `subresource` is `"status"` for
/// writes to `/status`, `""` otherwise.
pub fn record_update(kind: Kind<'_>, old: Option<&Value>, new: &Value, manager: &str, subresource: &str, now: Timestamp) -> Value {
    let mut out = new.clone();
    let new_set = managed_set(kind, new, subresource);
    let empty = json!({});
    let old_value = old.unwrap_or(&empty);
    let changed: Vec<Path> = new_set
        .paths()
        .into_iter()
        .filter(|p| {
            let leaf = node_at(&new_set, p).is_some_and(|n| n.children.is_empty());
            !p.is_empty() && if leaf { value_at(old_value, p) != value_at(new, p) } else { value_at(old_value, p).is_none() }
        })
        .collect();
    let mut entries = match old {
        Some(_) => entries_of(old),
        None => entries_of(Some(new)),
    };
    let api_version = new.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
    for entry in entries.iter_mut() {
        for p in entry.set.paths() {
            if !p.is_empty() && value_at(new, &p).is_none() {
                entry.set.remove(&p);
            }
        }
        let own = entry.manager == manager && entry.operation == "Update" && entry.subresource == subresource && entry.api_version == api_version;
        if !own {
            for p in &changed {
                if node_at(&entry.set, p).is_some_and(|n| n.children.is_empty()) {
                    entry.set.remove(p);
                }
            }
        }
    }
    if !changed.is_empty() {
        let mut mine = entries
            .iter()
            .position(|e| e.manager == manager && e.operation == "Update" && e.subresource == subresource && e.api_version == api_version)
            .map(|i| entries.remove(i))
            .unwrap_or_else(|| Entry {
                manager: manager.to_owned(),
                operation: "Update".into(),
                api_version: api_version.clone(),
                time: None,
                subresource: subresource.to_owned(),
                set: FieldSet::default(),
            });
        for p in &changed {
            mine.set.insert(p);
        }
        mine.time = Some(format_time(now));
        entries.push(mine);
    }
    write_entries(&mut out, entries);
    out
}

/// The field manager of a request without `fieldManager`: upstream uses the user agent's
/// program name (`kubectl/v1.32.4 (linux/amd64) ...` → `kubectl`).
pub fn default_manager(user_agent: &str) -> String {
    let program = user_agent.split('/').next().unwrap_or_default();
    if program.is_empty() { "unknown".into() } else { program.to_owned() }
}

#[cfg(test)]
mod tests;
