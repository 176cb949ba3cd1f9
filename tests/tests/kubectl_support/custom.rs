//! CustomResourceDefinitions and their custom resources: a definition becomes served
//! (discovery, OpenAPI for `explain`, printer columns), its objects take merge, JSON and
//! server-side apply patches (not strategic merge), `status` and `scale` subresources,
//! several versions, schema defaulting, pruning and validation; deleting the
//! definition deletes its objects.

use std::time::Duration;

use crate::asserts::{assert_contains, assert_line, has_line, json};
use crate::harness::{Cluster, columns};

const CRONTAB_DEFINITION: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the cron tab runs.
            x-kubernetes-validations:
            - rule: "!has(self.tags) || size(self.tags) <= 3"
              message: at most 3 tags
            properties:
              cronSpec:
                type: string
                description: The schedule, in cron format.
                pattern: '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'
              image:
                type: string
              replicas:
                type: integer
                minimum: 1
                maximum: 10
                default: 1
              tags:
                type: array
                items: {type: string}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
    selectableFields:
    - jsonPath: .spec.image
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    - name: Image
      type: string
      priority: 1
      jsonPath: .spec.image
"#;

const CRONTAB: &str = "apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: nightly
spec:
  cronSpec: '0 3 * * *'
  image: backup:1
";

const CRD_NAME: &str = "crontabs.stable.example.com";

/// A server with the CronTab definition, established.
fn with_crontabs() -> Cluster {
    let c = Cluster::start();
    assert_eq!(
        c.ok_stdin(&["apply", "-f", "-"], CRONTAB_DEFINITION).trim(),
        "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created"
    );
    let waited = c.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd",
        CRD_NAME,
    ]);
    assert_contains(&waited, "condition met");
    c
}

/// [`with_crontabs`] and the `nightly` CronTab.
fn with_nightly() -> Cluster {
    let c = with_crontabs();
    c.ok_stdin(&["apply", "-f", "-"], CRONTAB);
    c
}

#[test]
fn a_definition_serves_its_resource_with_discovery_columns_and_explain() {
    let c = with_crontabs();
    assert_line(&c.ok(&["get", "crd"]), &format!("{CRD_NAME} 20"));
    let established = json(&c.ok(&["get", "crd", CRD_NAME, "-o", "json"]));
    assert_eq!(
        established["status"]["acceptedNames"]["listKind"],
        "CronTabList"
    );
    assert_eq!(
        established["status"]["storedVersions"],
        serde_json::json!(["v1"])
    );

    let resources = c.ok(&["api-resources", "--api-group=stable.example.com"]);
    assert_line(&resources, "crontabs ct stable.example.com/v1 true CronTab");
    assert_line(&c.ok(&["api-versions"]), "stable.example.com/v1");

    assert_eq!(
        c.ok_stdin(&["apply", "-f", "-"], CRONTAB).trim(),
        "crontab.stable.example.com/nightly created"
    );
    let table = c.ok(&["get", "ct"]);
    assert_line(&table, "NAME SPEC REPLICAS AGE");
    assert_line(&table, "nightly 0 3 * * * 1 ");
    assert_line(
        &c.ok(&["get", "crontabs", "-o", "wide"]),
        "NAME SPEC REPLICAS AGE IMAGE",
    );
    assert_eq!(
        c.ok(&["get", "crontab.stable.example.com", "-o", "name"])
            .trim(),
        "crontab.stable.example.com/nightly"
    );
    let object = json(&c.ok(&["get", "ct", "nightly", "-o", "json"]));
    assert_eq!(object["apiVersion"], "stable.example.com/v1");
    assert_eq!(object["metadata"]["generation"], 1);
    assert!(
        object.get("status").is_none(),
        "status is written through its subresource: {object}"
    );
    let described = c.ok(&["describe", "ct", "nightly"]);
    assert_line(&described, "Cron Spec: 0 3 * * *");

    let explained = c.ok(&["explain", "crontabs.spec"]);
    assert_line(&explained, "GROUP: stable.example.com");
    assert_line(&explained, "KIND: CronTab");
    assert_contains(&explained, "What the cron tab runs.");
    assert_line(&explained, "cronSpec <string>");
    assert_contains(&explained, "The schedule, in cron format.");

    assert_eq!(
        c.ok(&["label", "ct", "nightly", "tier=backup"]).trim(),
        "crontab.stable.example.com/nightly labeled"
    );
    assert_line(
        &c.ok(&["get", "ct", "-l", "tier=backup", "-o", "name"]),
        "crontab.stable.example.com/nightly",
    );

    // The objects go with their definition.
    c.ok(&["delete", "crd", CRD_NAME, "--timeout=30s"]);
    // (kubectl's discovery cache still knows the resource; the server does not.)
    assert_contains(
        &c.fails(&["get", "ct"]),
        "Error from server (NotFound): Unable to list \"stable.example.com/v1, Resource=crontabs\": the server could not find the requested resource",
    );
    assert!(
        !c.ok(&["get", "--raw", "/apis"])
            .contains("stable.example.com")
    );
    c.ok_stdin(&["apply", "-f", "-"], CRONTAB_DEFINITION);
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd",
        CRD_NAME,
    ]);
    assert_contains(
        &c.run(&["get", "ct"]).stderr,
        "No resources found in default namespace.",
    );
}

#[test]
fn custom_resources_take_merge_and_apply_patches_but_not_strategic_ones() {
    let c = with_nightly();
    // Client-side apply of custom resources sends merge patches.
    let updated = CRONTAB.replace("backup:1", "backup:2");
    assert_eq!(
        c.ok_stdin(&["apply", "-f", "-"], &updated).trim(),
        "crontab.stable.example.com/nightly configured"
    );
    assert_eq!(
        c.ok(&["get", "ct", "nightly", "-o", "jsonpath={.spec.image}"]),
        "backup:2"
    );
    // The definition's selectable field.
    assert_eq!(
        c.ok(&[
            "get",
            "ct",
            "--field-selector",
            "spec.image=backup:2",
            "-o",
            "name"
        ])
        .trim(),
        "crontab.stable.example.com/nightly"
    );
    assert_contains(
        &c.run(&["get", "ct", "--field-selector", "spec.image!=backup:2"])
            .stderr,
        "No resources found",
    );
    assert_contains(
        &c.fails(&["get", "ct", "--field-selector", "spec.cronSpec=x"]),
        "field label not supported: spec.cronSpec",
    );

    c.ok(&[
        "patch",
        "ct",
        "nightly",
        "--type=merge",
        "-p",
        r#"{"spec":{"tags":["a","b"]}}"#,
    ]);
    c.ok(&[
        "patch",
        "ct",
        "nightly",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/tags/-","value":"c"}]"#,
    ]);
    assert_eq!(
        c.ok(&["get", "ct", "nightly", "-o", "jsonpath={.spec.tags}"]),
        r#"["a","b","c"]"#
    );
    assert_eq!(
        c.ok(&[
            "get",
            "ct",
            "nightly",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "4"
    );
    let refused = c.fails(&["patch", "ct", "nightly", "-p", r#"{"spec":{"image":"x"}}"#]);
    assert_contains(
        &refused,
        "application/strategic-merge-patch+json is not supported by stable.example.com/v1, Kind=CronTab",
    );

    // Server-side apply: a field another manager set is a conflict until forced.
    let conflict = c.fails_stdin(&["apply", "--server-side", "-f", "-"], CRONTAB);
    assert_contains(
        &conflict,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using stable.example.com/v1: .spec.image",
    );
    c.ok_stdin(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        CRONTAB,
    );
    assert_eq!(
        c.ok(&["get", "ct", "nightly", "-o", "jsonpath={.spec.image}"]),
        "backup:1"
    );
    // An applied field the schema does not declare.
    let colored = CRONTAB.replace("image: backup:1", "image: backup:1\n  color: red");
    let undeclared = c.fails_stdin(&["apply", "--server-side", "-f", "-"], &colored);
    assert_contains(
        &undeclared,
        "failed to create typed patch object (default/nightly; stable.example.com/v1, Kind=CronTab): .spec.color: field not declared in schema",
    );
}

#[test]
fn status_and_scale_subresources_follow_the_definition() {
    let c = with_nightly();
    // The main resource ignores status; the subresource writes only status.
    c.ok(&[
        "patch",
        "ct",
        "nightly",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":7}}"#,
    ]);
    assert_eq!(
        c.ok(&["get", "ct", "nightly", "-o", "jsonpath={.status}"]),
        ""
    );
    c.ok(&[
        "patch",
        "ct",
        "nightly",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":2,"selector":"app=cron"},"spec":{"image":"ignored"}}"#,
    ]);
    let object = json(&c.ok(&["get", "ct", "nightly", "-o", "json"]));
    assert_eq!(
        (
            object["status"]["replicas"].as_i64(),
            object["spec"]["image"].as_str()
        ),
        (Some(2), Some("backup:1"))
    );
    assert_eq!(
        object["metadata"]["generation"], 1,
        "status writes leave the generation"
    );

    assert_eq!(
        c.ok(&["scale", "ct", "nightly", "--replicas=3"]).trim(),
        "crontab.stable.example.com/nightly scaled"
    );
    let scale = json(&c.ok(&["get", "ct", "nightly", "--subresource=scale", "-o", "json"]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(
        scale["status"],
        serde_json::json!({"replicas": 2, "selector": "app=cron"})
    );
    assert_line(&c.ok(&["get", "ct"]), "nightly 0 3 * * * 3 ");

    // Deleting a namespace deletes the custom resources in it.
    c.ok(&["create", "namespace", "jobs"]);
    c.ok_stdin(&["apply", "-n", "jobs", "-f", "-"], CRONTAB);
    c.ok(&["delete", "namespace", "jobs", "--timeout=30s"]);
    assert_contains(
        &c.run(&["get", "ct", "-n", "jobs"]).stderr,
        "No resources found in jobs namespace.",
    );
}

const TWO_VERSIONS: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {plural: widgets, singular: widget, kind: Widget, categories: [all]}
  versions:
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

#[test]
fn a_resource_in_two_versions_is_stored_once_and_read_in_either() {
    let c = Cluster::start();
    c.ok_stdin(&["apply", "-f", "-"], TWO_VERSIONS);
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd",
        "widgets.example.com",
    ]);
    let old = "apiVersion: example.com/v1beta1\nkind: Widget\nmetadata:\n  name: w1\nsize: 3\n";
    assert_eq!(
        c.ok_stdin(&["create", "-f", "-"], old).trim(),
        "widget.example.com/w1 created"
    );
    // kubectl prefers the highest version; the object reads the same in both.
    let preferred = json(&c.ok(&["get", "widget", "w1", "-o", "json"]));
    assert_eq!(
        (preferred["apiVersion"].as_str(), preferred["size"].as_i64()),
        (Some("example.com/v1"), Some(3))
    );
    let beta = json(&c.ok(&["get", "widgets.v1beta1.example.com", "w1", "-o", "json"]));
    assert_eq!(beta["apiVersion"], "example.com/v1beta1");
    assert_eq!(beta["metadata"]["uid"], preferred["metadata"]["uid"]);
    // Cluster-scoped, in the `all` category, printed with NAME and AGE.
    let all = c.ok(&["get", "all"]);
    assert_line(&all, "NAME AGE");
    assert_line(&all, "widget.example.com/w1 ");
    assert!(columns(&c.ok(&["get", "widgets", "-A"]))[0].starts_with("NAME AGE"));

    // A watch sees the object listed, then changed.
    let watch = c.spawn(&["get", "widgets", "-w", "-o", "name"]);
    watch.wait_for(Duration::from_secs(20), |t| {
        has_line(t, "widget.example.com/w1")
    });
    c.ok(&["label", "widget", "w1", "seen=yes"]);
    let seen = watch.wait_for(Duration::from_secs(20), |t| t.lines().count() >= 2);
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        ["widget.example.com/w1"; 2]
    );
}

#[test]
fn a_terminating_definition_refuses_new_objects_until_its_last_one_is_gone() {
    let c = with_crontabs();
    let held = CRONTAB.replace(
        "name: nightly",
        "name: held\n  finalizers: [example.com/hold]",
    );
    c.ok_stdin(&["apply", "-f", "-"], &held);
    c.ok(&["delete", "crd", CRD_NAME, "--wait=false"]);
    let crd = json(&c.ok(&["get", "crd", CRD_NAME, "-o", "json"]));
    assert_eq!(
        crd["metadata"]["finalizers"],
        serde_json::json!(["customresourcecleanup.apiextensions.k8s.io"])
    );
    let terminating = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Terminating")
        .cloned();
    assert_eq!(terminating.unwrap()["reason"], "InstanceDeletionInProgress");
    // The object waits for its own finalizer; no new object may join it.
    let held_object = json(&c.ok(&["get", "ct", "held", "-o", "json"]));
    assert!(
        held_object["metadata"]["deletionTimestamp"].is_string(),
        "{held_object}"
    );
    let refused = c.fails_stdin(&["create", "-f", "-"], CRONTAB);
    assert_contains(
        &refused,
        "Error from server (MethodNotAllowed): error when creating \"STDIN\": create not allowed while custom resource definition is terminating",
    );
    c.ok(&[
        "patch",
        "ct",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    c.ok(&["wait", "--for=delete", "--timeout=30s", "crd", CRD_NAME]);
}

#[test]
fn the_schema_defaults_prunes_and_validates_custom_resources() {
    let c = with_crontabs();
    let colored = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: colored\nspec:\n  cronSpec: '0 3 * * *'\n  color: red\n";
    // kubectl validates strictly by default: an undeclared field is refused...
    let strict = c.fails_stdin(&["create", "-f", "-"], colored);
    assert_contains(
        &strict,
        "Error from server (BadRequest): error when creating \"STDIN\": CronTab in version \"v1\" cannot be handled as a CronTab: strict decoding error: unknown field \"spec.color\"",
    );
    // ...a warning when asked, and the field is pruned either way; defaults fill in.
    let warned = c.run_stdin(&["create", "--validate=warn", "-f", "-"], colored);
    assert_eq!(warned.code, Some(0), "{}", warned.stderr);
    assert_contains(&warned.stderr, "Warning: unknown field \"spec.color\"");
    assert_eq!(
        c.ok(&["get", "ct", "colored", "-o", "jsonpath={.spec}"]),
        r#"{"cronSpec":"0 3 * * *","replicas":1}"#
    );
    // A default added to the schema later shows on objects stored before it.
    c.ok(&[
        "patch",
        "crd",
        CRD_NAME,
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/timeZone","value":{"type":"string","default":"UTC"}}]"#,
    ]);
    assert_eq!(
        c.ok(&["get", "ct", "colored", "-o", "jsonpath={.spec.timeZone}"]),
        "UTC"
    );

    let invalid = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: invalid\nspec:\n  cronSpec: every day\n  replicas: 20\n  tags: [1]\n";
    let refused = c.fails_stdin(&["create", "-f", "-"], invalid);
    assert_eq!(
        refused.trim(),
        "The CronTab \"invalid\" is invalid: \n\
         * spec.cronSpec: Invalid value: \"every day\": spec.cronSpec in body should match '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'\n\
         * spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10\n\
         * spec.tags[0]: Invalid value: \"integer\": spec.tags[0] in body must be of type string: \"integer\""
    );
    let patched = c.fails(&[
        "patch",
        "ct",
        "colored",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":0}}"#,
    ]);
    assert_contains(
        &patched,
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
    );

    // The schema's CEL rules hold once the schema does.
    let tagged = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: tagged\nspec:\n  cronSpec: '0 3 * * *'\n  tags: [a, b, c, d]\n";
    assert_eq!(
        c.fails_stdin(&["create", "-f", "-"], tagged).trim(),
        "The CronTab \"tagged\" is invalid: spec: Invalid value: \"object\": at most 3 tags"
    );

    // A definition is validated too.
    let misnamed =
        CRONTAB_DEFINITION.replace("name: crontabs.stable.example.com", "name: crontabs");
    let refused = c.fails_stdin(&["create", "-f", "-"], &misnamed);
    assert_contains(
        &refused,
        "The CustomResourceDefinition \"crontabs\" is invalid: metadata.name: Invalid value: \"crontabs\": must be spec.names.plural+\".\"+spec.group",
    );
}

#[test]
fn a_definition_converted_by_webhook_is_served_in_its_storage_version_with_a_warning() {
    let c = Cluster::start();
    let webhook = TWO_VERSIONS.replace("widgets", "gadgets").replace("Widget", "Gadget").replace("widget", "gadget").replace(
        "  scope: Cluster\n",
        "  scope: Cluster\n  conversion:\n    strategy: Webhook\n    webhook:\n      conversionReviewVersions: [v1]\n      clientConfig:\n        url: https://127.0.0.1:9443/convert\n",
    );
    let created = c.run_stdin(&["apply", "-f", "-"], &webhook);
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    assert_contains(
        &created.stderr,
        "Warning: conversion webhooks are not called by this API server: only the storage version is served",
    );
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd",
        "gadgets.example.com",
    ]);
    let versions = c.ok(&["api-versions"]);
    assert_line(&versions, "example.com/v1");
    assert!(!has_line(&versions, "example.com/v1beta1"), "{versions}");
}

#[test]
fn a_definition_whose_names_are_taken_is_not_served() {
    let c = with_crontabs();
    // Another resource of the group claiming the kind and a short name already in use.
    let copy = CRONTAB_DEFINITION
        .replace(
            "name: crontabs.stable.example.com",
            "name: crontabcopies.stable.example.com",
        )
        .replace("plural: crontabs", "plural: crontabcopies")
        .replace("singular: crontab", "singular: crontabcopy");
    c.ok_stdin(&["create", "-f", "-"], &copy);
    let conditions = c.ok(&[
        "get",
        "crd",
        "crontabcopies.stable.example.com",
        "-o",
        r#"jsonpath={range .status.conditions[*]}{.type}={.status}/{.reason}: {.message};{end}"#,
    ]);
    assert_eq!(
        conditions,
        "NamesAccepted=False/ShortNamesConflict: \"ct\" is already in use;Established=False/NotAccepted: not all names are accepted;"
    );
    let served = c.ok(&["get", "--raw", "/apis/stable.example.com/v1"]);
    assert!(
        served.contains("\"crontabs\"") && !served.contains("crontabcopies"),
        "{served}"
    );
}
