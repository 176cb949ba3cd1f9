//! ResourceQuota and LimitRange as stored kinds (`kubectl create quota`, `get`,
//! `describe namespace`). Nothing enforces them and no controller fills in a quota's
//! `status` yet: they are stored and shown, as a cluster without the quota controller
//! and admission plugins would.

use crate::asserts::{assert_contains, assert_line};
use crate::harness::{Cluster, columns};

const LIMITS: &str = "apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
spec:
  limits:
  - type: Container
    default: {cpu: 500m}
    defaultRequest: {cpu: 250m}
";

#[test]
fn describe_namespace_reports_quotas_and_limits() {
    let c = Cluster::start();
    let bare = c.ok(&["describe", "namespace", "default"]);
    assert_contains(
        &bare,
        "Status:       Active\n\nNo resource quota.\n\nNo LimitRange resource.\n",
    );

    assert_eq!(
        c.ok(&["create", "quota", "q", "--hard=pods=10,cpu=1,limits.cpu=2"])
            .trim(),
        "resourcequota/q created"
    );
    let listed = columns(&c.ok(&["get", "quota"]));
    assert_eq!(listed[0], "NAME AGE REQUEST LIMIT");
    // Upstream's printer shows `status.used`/`status.hard`, which only the quota
    // controller fills in: without it both are empty (zero).
    assert!(
        listed[1].starts_with("q ") && listed[1].ends_with(" cpu: 0/0, pods: 0/0 limits.cpu: 0/0"),
        "{listed:?}"
    );
    assert_eq!(
        c.ok(&["get", "resourcequota", "q", "-o", "jsonpath={.spec.hard}"]),
        r#"{"cpu":"1","limits.cpu":"2","pods":"10"}"#
    );

    c.ok_stdin(&["create", "-f", "-"], LIMITS);
    let limits = columns(&c.ok(&["get", "limits"]));
    assert_eq!(limits[0], "NAME CREATED AT");
    assert!(limits[1].starts_with("defaults "), "{limits:?}");

    let described = c.ok(&["describe", "namespace", "default"]);
    assert_line(&described, "Resource Quotas");
    assert_line(&described, "Name: q");
    assert_line(&described, "Resource Limits");
    assert_line(&described, "Container cpu - - 250m 500m -");

    assert_eq!(
        c.ok(&["delete", "quota", "q"]).trim(),
        "resourcequota \"q\" deleted"
    );
    assert_eq!(
        c.ok(&["delete", "limitrange", "defaults"]).trim(),
        "limitrange \"defaults\" deleted"
    );
    assert_contains(
        &c.ok(&["describe", "namespace", "default"]),
        "No resource quota.\n\nNo LimitRange resource.\n",
    );
}
