//! Custom resources: what CustomResourceDefinitions add to the served resources.
//!
//! [`Registry::from_definitions`] turns every established definition into one
//! [`Resource`] per served version. Those descriptors are `&'static`, as the built-in
//! table's are, so the rest of the server treats both alike: they are interned for the
//! life of the process, and an unchanged definition maps to the descriptors it had, so
//! memory grows only with definitions that really changed.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;

use super::{CRUD, RESOURCES, Resource, Scope};

/// The group CustomResourceDefinitions live in.
pub const GROUP: &str = "apiextensions.k8s.io";

/// The finalizer that keeps a definition until its objects are deleted.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// What a definition says of one served version of its resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Custom {
    /// The definition's name: `crontabs.stable.example.com`.
    pub definition: String,
    /// The version objects are stored in.
    pub storage_version: String,
    /// `spec.names.listKind`.
    pub list_kind: String,
    /// The version's `schema.openAPIV3Schema` (`Null` when it has none).
    pub schema: Value,
    /// `additionalPrinterColumns`, in order.
    pub columns: Vec<PrinterColumn>,
    /// `subresources.scale`, when served.
    pub scale: Option<ScalePaths>,
    /// `selectableFields`: the JSONPaths (`.spec.color`) a field selector may name,
    /// besides `metadata.name` and `metadata.namespace`.
    pub selectable_fields: Vec<String>,
    /// The definition is being deleted: no new objects are accepted.
    pub terminating: bool,
    /// The schema has `default`s, which upstream also applies to objects read from
    /// storage (written before a default was added).
    pub defaults_on_read: bool,
}

impl Custom {
    /// The schema objects are pruned, defaulted and validated with, if the version has one.
    pub fn structural_schema(&self) -> Option<&Value> {
        self.schema.is_object().then_some(&self.schema)
    }
}

/// One of a version's `additionalPrinterColumns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub kind: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    /// A simple JSONPath into the object: `.spec.replicas`.
    pub json_path: String,
}

/// Where the `scale` subresource reads and writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// `.spec.replicas`.
    pub spec_replicas: String,
    /// `.status.replicas`.
    pub status_replicas: String,
    /// `.status.selector`, when the definition names one.
    pub label_selector: Option<String>,
}

/// The resources one API server serves: the built-in table and its custom resources.
/// Cheap to clone: a snapshot that the server swaps when definitions change.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    custom: Arc<[&'static Resource]>,
}

impl Registry {
    /// The registry of the built-in resources and the served versions of every
    /// established definition in `definitions` (CustomResourceDefinition objects).
    /// A definition that would shadow a built-in group is left out.
    pub fn from_definitions<'a>(definitions: impl IntoIterator<Item = &'a Value>) -> Self {
        let mut custom: Vec<&'static Resource> = definitions
            .into_iter()
            .filter(|d| established(d))
            .flat_map(resources_of)
            .filter(|r| !RESOURCES.iter().any(|b| b.group == r.group))
            .map(intern_resource)
            .collect();
        custom.sort_by(|a, b| {
            (a.group, a.plural)
                .cmp(&(b.group, b.plural))
                .then_with(|| version_priority(a.version, b.version))
        });
        custom.dedup_by(|a, b| (a.group, a.version, a.plural) == (b.group, b.version, b.plural));
        Registry {
            custom: custom.into(),
        }
    }

    /// Every served resource: the built-in ones, then the custom ones.
    pub fn all(&self) -> impl Iterator<Item = &'static Resource> + '_ {
        RESOURCES.iter().chain(self.custom.iter().copied())
    }

    /// The custom resources alone.
    pub fn custom(&self) -> &[&'static Resource] {
        &self.custom
    }

    /// The resource served at `group`/`version`/`plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
        self.all()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// The resource of an `apiVersion` + `kind` pair, as found in an object body.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&'static Resource> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.all()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// Every served resource of one group/version, in registry order.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'static Resource> + 'a {
        self.all()
            .filter(move |r| r.group == group && r.version == version)
    }

    /// The served API groups other than core, each with its versions, preferred
    /// first: the built-in groups in discovery order, then the custom groups by name.
    pub fn groups(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for resource in self.all().filter(|r| !r.group.is_empty()) {
            match groups.iter_mut().find(|(name, _)| *name == resource.group) {
                Some((_, versions)) if !versions.contains(&resource.version) => {
                    versions.push(resource.version)
                }
                Some(_) => {}
                None => groups.push((resource.group, vec![resource.version])),
            }
        }
        for (group, versions) in &mut groups {
            if self.custom.iter().any(|r| r.group == *group) {
                versions.sort_by(|a, b| version_priority(a, b));
            }
        }
        groups
    }
}

/// Whether a definition's `Established` condition is true.
pub fn established(definition: &Value) -> bool {
    definition
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True")
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn strings_at(value: &Value, pointer: &str) -> Vec<&'static str> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(intern_str)
        .collect()
}

/// The resources (one per served version) a definition describes; none when it lacks
/// a group, plural or kind.
fn resources_of(definition: &Value) -> Vec<Resource> {
    let spec = &definition["spec"];
    let group = str_at(spec, "/group");
    let plural = str_at(spec, "/names/plural");
    let kind = str_at(spec, "/names/kind");
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let singular = match str_at(spec, "/names/singular") {
        "" => kind.to_ascii_lowercase(),
        s => s.to_owned(),
    };
    let list_kind = match str_at(spec, "/names/listKind") {
        "" => format!("{kind}List"),
        s => s.to_owned(),
    };
    let versions = spec["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"] == true)
        .map(|v| str_at(v, "/name"))
        .unwrap_or_default();
    let short_names = intern_list(strings_at(spec, "/names/shortNames"));
    let categories = intern_list(strings_at(spec, "/names/categories"));
    let scope = match str_at(spec, "/scope") {
        "Cluster" => Scope::Cluster,
        _ => Scope::Namespaced,
    };
    // Conversion webhooks are not called: such a definition serves its storage version
    // alone, rather than versions it could not convert to.
    let webhook = str_at(spec, "/conversion/strategy") == "Webhook";
    versions
        .iter()
        .filter(|v| v["served"] == true && !str_at(v, "/name").is_empty())
        .filter(|v| !webhook || v["storage"] == true)
        .map(|version| {
            let status = version
                .pointer("/subresources/status")
                .is_some_and(Value::is_object);
            let scale = version
                .pointer("/subresources/scale")
                .filter(|s| s.is_object())
                .map(|s| ScalePaths {
                    spec_replicas: str_at(s, "/specReplicasPath").to_owned(),
                    status_replicas: str_at(s, "/statusReplicasPath").to_owned(),
                    label_selector: s
                        .get("labelSelectorPath")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            let subresources: &'static [&'static str] = match (status, scale.is_some()) {
                (true, true) => &["status", "scale"],
                (true, false) => &["status"],
                (false, true) => &["scale"],
                (false, false) => &[],
            };
            let custom = Custom {
                definition: str_at(definition, "/metadata/name").to_owned(),
                storage_version: storage_version.to_owned(),
                list_kind: list_kind.clone(),
                schema: version
                    .pointer("/schema/openAPIV3Schema")
                    .cloned()
                    .unwrap_or(Value::Null),
                columns: printer_columns(version),
                scale,
                selectable_fields: version["selectableFields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| str_at(f, "/jsonPath").to_owned())
                    .filter(|path| !path.is_empty())
                    .collect(),
                terminating: definition.pointer("/metadata/deletionTimestamp").is_some(),
                defaults_on_read: version
                    .pointer("/schema/openAPIV3Schema")
                    .is_some_and(has_defaults),
            };
            Resource {
                group: intern_str(group),
                version: intern_str(str_at(version, "/name")),
                kind: intern_str(kind),
                plural: intern_str(plural),
                singular: intern_str(&singular),
                short_names,
                categories,
                scope,
                subresources,
                verbs: CRUD,
                custom: Some(intern_custom(custom)),
            }
        })
        .collect()
}

/// Whether a schema declares a `default` anywhere.
fn has_defaults(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map.contains_key("default") || map.values().any(has_defaults),
        Value::Array(items) => items.iter().any(has_defaults),
        _ => false,
    }
}

fn printer_columns(version: &Value) -> Vec<PrinterColumn> {
    version["additionalPrinterColumns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| PrinterColumn {
            name: str_at(c, "/name").to_owned(),
            kind: str_at(c, "/type").to_owned(),
            format: str_at(c, "/format").to_owned(),
            description: str_at(c, "/description").to_owned(),
            priority: c["priority"].as_i64().unwrap_or(0),
            json_path: str_at(c, "/jsonPath").to_owned(),
        })
        .collect()
}

/// Upstream's order of version names (`CompareKubeAwareVersionStrings`): GA before
/// beta before alpha, higher numbers first; other names after them, alphabetically.
pub fn version_priority(a: &str, b: &str) -> Ordering {
    match (kube_version(a), kube_version(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// `v2` → (stage 2, major 2, minor 0); `v1beta3` → (1, 1, 3); `v1alpha1` → (0, 1, 1).
fn kube_version(v: &str) -> Option<(u8, u64, u64)> {
    let rest = v.strip_prefix('v')?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (major, tail) = rest.split_at(digits);
    if major.is_empty() || major.starts_with('0') {
        return None;
    }
    let major = major.parse().ok()?;
    let (stage, minor) = if tail.is_empty() {
        return Some((2, major, 0));
    } else if let Some(n) = tail.strip_prefix("beta") {
        (1, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (0, n)
    } else {
        return None;
    };
    if minor.is_empty() || minor.starts_with('0') || !minor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stage, major, minor.parse().ok()?))
}

/// Every descriptor handed out, kept for the life of the process.
#[derive(Default)]
struct Interned {
    strs: HashSet<&'static str>,
    lists: HashSet<&'static [&'static str]>,
    customs: Vec<&'static Custom>,
    resources: Vec<&'static Resource>,
}

static INTERNED: LazyLock<Mutex<Interned>> = LazyLock::new(Mutex::default);

fn interned() -> std::sync::MutexGuard<'static, Interned> {
    INTERNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn intern_str(s: &str) -> &'static str {
    let mut interned = interned();
    if let Some(known) = interned.strs.get(s) {
        return known;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    interned.strs.insert(leaked);
    leaked
}

fn intern_list(list: Vec<&'static str>) -> &'static [&'static str] {
    if list.is_empty() {
        return &[];
    }
    let mut interned = interned();
    if let Some(known) = interned.lists.get(list.as_slice()) {
        return known;
    }
    let leaked: &'static [&'static str] = Box::leak(list.into_boxed_slice());
    interned.lists.insert(leaked);
    leaked
}

/// The value in `known` equal to `value`, or `value` leaked and added to them.
fn find_or_leak<T: PartialEq>(known: &mut Vec<&'static T>, value: T) -> &'static T {
    if let Some(found) = known.iter().find(|k| ***k == value) {
        return found;
    }
    let leaked: &'static T = Box::leak(Box::new(value));
    known.push(leaked);
    leaked
}

fn intern_custom(custom: Custom) -> &'static Custom {
    find_or_leak(&mut interned().customs, custom)
}

fn intern_resource(resource: Resource) -> &'static Resource {
    find_or_leak(&mut interned().resources, resource)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn crontab(versions: Value, established: bool) -> Value {
        json!({
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com",
                "scope": "Namespaced",
                "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"], "categories": ["all"]},
                "versions": versions,
            },
            "status": {"conditions": [{"type": "Established", "status": if established { "True" } else { "False" }}]},
        })
    }

    #[test]
    fn served_versions_of_established_definitions_become_resources() {
        let versions = json!([
            {"name": "v1beta1", "served": true, "storage": false},
            {"name": "v1", "served": true, "storage": true,
             "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
             "additionalPrinterColumns": [{"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}]},
            {"name": "v2alpha1", "served": false, "storage": false},
        ]);
        let registry = Registry::from_definitions([&crontab(versions.clone(), true)]);
        let v1 = registry
            .find("stable.example.com", "v1", "crontabs")
            .unwrap();
        assert_eq!(
            (v1.kind, v1.singular, v1.short_names, v1.categories),
            ("CronTab", "crontab", &["ct"][..], &["all"][..])
        );
        assert_eq!(v1.subresources, ["status", "scale"]);
        let custom = v1.custom.unwrap();
        assert_eq!(
            (custom.storage_version.as_str(), custom.list_kind.as_str()),
            ("v1", "CronTabList")
        );
        assert_eq!(custom.columns[0].json_path, ".spec.cronSpec");
        assert!(
            registry
                .find("stable.example.com", "v1beta1", "crontabs")
                .unwrap()
                .subresources
                .is_empty()
        );
        assert!(
            registry
                .find("stable.example.com", "v2alpha1", "crontabs")
                .is_none()
        );
        assert_eq!(
            registry.find_kind("stable.example.com/v1", "CronTab"),
            Some(v1)
        );
        assert_eq!(
            registry.groups().last().unwrap(),
            &("stable.example.com", vec!["v1", "v1beta1"])
        );
        assert!(
            Registry::from_definitions([&crontab(versions, false)])
                .custom()
                .is_empty()
        );
    }

    #[test]
    fn a_definition_converted_by_webhook_serves_its_storage_version_alone() {
        let mut d = crontab(
            json!([{"name": "v1beta1", "served": true, "storage": false}, {"name": "v1", "served": true, "storage": true}]),
            true,
        );
        d["spec"]["conversion"] = json!({"strategy": "Webhook"});
        let registry = Registry::from_definitions([&d]);
        let versions: Vec<&str> = registry.custom().iter().map(|r| r.version).collect();
        assert_eq!(versions, ["v1"]);
    }

    #[test]
    fn a_schema_with_defaults_is_applied_on_reads_too() {
        let plain = json!({"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}});
        let mut defaulted = plain.clone();
        defaulted["schema"]["openAPIV3Schema"]["properties"] = json!({"spec": {"type": "object", "properties": {"tz": {"type": "string", "default": "UTC"}}}});
        let custom = |version: &Value| {
            Registry::from_definitions([&crontab(json!([version]), true)]).custom()[0]
                .custom
                .unwrap()
        };
        assert!(!custom(&plain).defaults_on_read);
        assert!(custom(&defaulted).defaults_on_read);
    }

    #[test]
    fn unchanged_definitions_map_to_the_same_descriptors() {
        let versions = json!([{"name": "v1", "served": true, "storage": true}]);
        let a = Registry::from_definitions([&crontab(versions.clone(), true)]);
        let b = Registry::from_definitions([&crontab(versions, true)]);
        assert!(std::ptr::eq(a.custom()[0], b.custom()[0]));
    }

    #[test]
    fn built_in_groups_cannot_be_shadowed() {
        let mut d = crontab(
            json!([{"name": "v1", "served": true, "storage": true}]),
            true,
        );
        d["spec"]["group"] = json!("apps");
        assert!(Registry::from_definitions([&d]).custom().is_empty());
        assert_eq!(
            Registry::default()
                .find("apps", "v1", "deployments")
                .unwrap()
                .kind,
            "Deployment"
        );
    }

    #[test]
    fn versions_sort_as_upstream() {
        let mut versions = vec![
            "foo10",
            "v1alpha1",
            "v11alpha2",
            "v3beta1",
            "v1",
            "v10beta3",
            "v2",
            "foo1",
            "v10",
            "v11beta2",
            "v12alpha1",
        ];
        versions.sort_by(|a, b| version_priority(a, b));
        assert_eq!(
            versions,
            [
                "v10",
                "v2",
                "v1",
                "v11beta2",
                "v10beta3",
                "v3beta1",
                "v12alpha1",
                "v11alpha2",
                "v1alpha1",
                "foo1",
                "foo10"
            ]
        );
    }
}
