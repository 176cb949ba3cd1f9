//! `events.k8s.io/v1` Events as kube-rs's event `Recorder` writes them: stored as core
//! Events (so `kubectl get events` and `describe` show them), read back in either API,
//! selected by field, printed as tables and validated strictly.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event;
use kube::Resource;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event as Published, EventType, Recorder, Reporter};
use serde_json::{Value, json};
use support::{Backend, TestServer};

both_backends!(
    recorder_events_are_core_events_too,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        let configmaps: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
        let web: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "web"}})).unwrap();
        let web = configmaps
            .create(&PostParams::default(), &web)
            .await
            .unwrap();
        let reporter = Reporter {
            controller: "example.com/operator".into(),
            instance: Some("operator-0".into()),
        };
        let recorder = Recorder::new(server.client.clone(), reporter);
        let published = Published {
            type_: EventType::Normal,
            reason: "Synced".into(),
            note: Some("config synced".into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let reference = web.object_ref(&());
        recorder.publish(&published, &reference).await.unwrap();
        // A repeat becomes a series (a merge patch of the new API's object).
        recorder.publish(&published, &reference).await.unwrap();

        let core: Api<CoreEvent> = Api::namespaced(server.client.clone(), "default");
        let stored = core
            .list(&ListParams::default().fields("involvedObject.name=web"))
            .await
            .unwrap();
        assert_eq!(stored.items.len(), 1);
        let event = &stored.items[0];
        assert_eq!(event.message.as_deref(), Some("config synced"));
        assert_eq!(
            event.reporting_component.as_deref(),
            Some("example.com/operator")
        );
        assert_eq!(event.series.as_ref().and_then(|s| s.count), Some(2));

        let new_api: Api<Event> = Api::namespaced(server.client.clone(), "default");
        let selected = new_api
            .list(
                &ListParams::default()
                    .fields("regarding.name=web,reportingController=example.com/operator"),
            )
            .await
            .unwrap();
        assert_eq!(selected.items.len(), 1);
        let event = &selected.items[0];
        assert_eq!(event.note.as_deref(), Some("config synced"));
        assert_eq!(
            event.regarding.as_ref().and_then(|r| r.name.as_deref()),
            Some("web")
        );
        assert_eq!(event.deprecated_count, None);
        assert!(
            new_api
                .list(&ListParams::default().fields("regarding.name=other"))
                .await
                .unwrap()
                .items
                .is_empty()
        );

        // Printed as upstream prints Events, whichever API is asked.
        let table: Value = server
            .raw()
            .get(format!(
                "{}/apis/events.k8s.io/v1/namespaces/default/events",
                server.http
            ))
            .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(table["columnDefinitions"][0]["name"], "Last Seen");
        assert_eq!(table["rows"][0]["cells"][3], "configmap/web");
        assert_eq!(table["rows"][0]["cells"][6], "config synced");
        assert_eq!(table["rows"][0]["cells"][8], 2);

        // The new API validates strictly.
        let incomplete = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "bad", "namespace": "default"},
            "reason": "Synced", "type": "Normal", "deprecatedCount": 3,
        });
        let response = server
            .raw()
            .post(format!(
                "{}/apis/events.k8s.io/v1/namespaces/default/events",
                server.http
            ))
            .json(&incomplete)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 422);
        let status: Value = response.json().await.unwrap();
        assert_eq!(
            status["message"],
            "Event.events.k8s.io \"bad\" is invalid: [eventTime: Required value, deprecatedCount: Invalid value: \"\": needs to be unset]"
        );
    }
);
