//! A kube-rs operator's view of custom resources: the definition `#[derive(CustomResource)]`
//! generates (schemars schema), typed CRUD, server-side apply, the status subresource and
//! a `watcher` stream, on SQLite and on etcd.

mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::{Backend, TestServer};

#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "waggle.example.com",
    version = "v1",
    kind = "Backup",
    namespaced
)]
#[kube(
    status = "BackupStatus",
    shortname = "bk",
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#
)]
pub struct BackupSpec {
    schedule: String,
    retain: Option<u32>,
    targets: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct BackupStatus {
    last_run: Option<String>,
    runs: u32,
}

both_backends!(
    a_kube_rs_operator_manages_its_custom_resources,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        let definitions: Api<CustomResourceDefinition> = Api::all(server.client.clone());
        definitions
            .create(&PostParams::default(), &Backup::crd())
            .await
            .unwrap();
        let established = tokio::time::timeout(
            Duration::from_secs(20),
            kube::runtime::wait::await_condition(
                definitions.clone(),
                "backups.waggle.example.com",
                kube::runtime::wait::conditions::is_crd_established(),
            ),
        )
        .await
        .expect("established in time")
        .unwrap();
        assert!(established.is_some());

        let backups: Api<Backup> = Api::namespaced(server.client.clone(), "default");
        let mut events = watcher(backups.clone(), watcher::Config::default())
            .applied_objects()
            .boxed();
        let nightly = Backup::new(
            "nightly",
            BackupSpec {
                schedule: "0 3 * * *".into(),
                retain: Some(7),
                targets: vec!["db".into()],
            },
        );
        let created = backups
            .create(&PostParams::default(), &nightly)
            .await
            .unwrap();
        assert_eq!(created.spec.retain, Some(7));
        let seen = tokio::time::timeout(Duration::from_secs(20), events.try_next())
            .await
            .expect("watched in time")
            .unwrap()
            .unwrap();
        assert_eq!(seen.metadata.name.as_deref(), Some("nightly"));

        // Server-side apply by the operator's field manager, then a status update.
        let applied = json!({
            "apiVersion": "waggle.example.com/v1", "kind": "Backup",
            "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 4 * * *", "targets": ["db", "files"]},
        });
        let patched = backups
            .patch(
                "nightly",
                &PatchParams::apply("backup-operator").force(),
                &Patch::Apply(&applied),
            )
            .await
            .unwrap();
        assert_eq!(patched.spec.schedule, "0 4 * * *");
        assert_eq!(patched.spec.targets, ["db", "files"]);
        let status = json!({"status": {"runs": 1, "last_run": "2026-01-01T04:00:00Z"}});
        let with_status = backups
            .patch_status("nightly", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        assert_eq!(with_status.status.as_ref().map(|s| s.runs), Some(1));
        assert_eq!(
            with_status.metadata.generation,
            Some(2),
            "status does not count as a change of generation"
        );

        // The schema the derive generated is enforced: `runs` is an unsigned integer.
        let invalid = json!({"status": {"runs": -1}});
        let err = backups
            .patch_status("nightly", &PatchParams::default(), &Patch::Merge(&invalid))
            .await
            .unwrap_err();
        match err {
            kube::Error::Api(status) => {
                assert_eq!(status.code, 422);
                assert!(status.message.contains("status.runs"), "{}", status.message);
            }
            other => panic!("expected a 422, got {other:?}"),
        }

        let listed = backups.list(&ListParams::default()).await.unwrap();
        assert_eq!(listed.items.len(), 1);
        backups
            .delete("nightly", &Default::default())
            .await
            .unwrap();
        definitions
            .delete("backups.waggle.example.com", &Default::default())
            .await
            .unwrap();
    }
);
