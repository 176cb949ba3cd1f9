//! RBAC enforcement over HTTPS: a service account's token is denied until a binding
//! grants it, per namespace and cluster-wide; the admin stays all-powerful; access,
//! subject-access and rules reviews answer from the same policy; impersonation needs
//! the `impersonate` verb; the default policy survives restarts; a second server on
//! the same store follows RBAC changes through its watch.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Backend, TestServer};

const BOT: &str = "system:serviceaccount:default:bot";

/// An HTTPS client trusting the cluster CA.
fn https(server: &TestServer) -> reqwest::Client {
    let ca = std::fs::read(server.dir.path().join("pki").join("ca.crt")).expect("cluster CA");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap()
}

/// Sends a request as the holder of `token` (the admin's, a service account's).
async fn call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Posts as the admin on the plain listener, expecting success.
async fn admin_post(server: &TestServer, path: &str, body: Value) -> Value {
    let response = server
        .raw()
        .post(format!("{}{path}", server.http))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let value: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

fn forbidden(message: &str, name: &str, group: &str, kind: &str) -> Value {
    let mut details = json!({"name": name, "kind": kind});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Forbidden", "details": details, "code": 403,
    })
}

/// Where SelfSubjectAccessReviews are posted.
const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

fn access_review(verb: &str, resource: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace}},
    })
}

fn binding(kind: &str, name: &str, role: &str, namespace: Option<&str>) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "default"}],
    })
}

/// Binds the bot to ClusterRole `role` in `default` with the RoleBinding `name`.
async fn bind_in_default(server: &TestServer, name: &str, role: &str) {
    admin_post(
        server,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        binding("RoleBinding", name, role, Some("default")),
    )
    .await;
}

/// A token for the `bot` service account in `default` (created here).
async fn bot_token(server: &TestServer) -> String {
    admin_post(
        server,
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"metadata": {"name": "bot"}}),
    )
    .await;
    let request =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}});
    let answer = admin_post(
        server,
        "/api/v1/namespaces/default/serviceaccounts/bot/token",
        request,
    )
    .await;
    answer["status"]["token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

both_backends!(
    service_account_is_denied_until_bound,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        admin_post(
            &server,
            "/api/v1/namespaces",
            json!({"metadata": {"name": "other"}}),
        )
        .await;
        let token = bot_token(&server).await;
        let (client, base) = (https(&server), server.running.url());
        let bot = |method: Method, path: &'static str, body: Option<Value>| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move { call(&client, &base, &token, method, path, body, &[]).await }
        };
        let bot_review = |verb: &str, resource: &str, namespace: &str| {
            bot(
                Method::POST,
                SSAR,
                Some(access_review(verb, resource, namespace)),
            )
        };

        // Nothing bound yet: every resource request is refused with upstream's Status.
        let (code, status) = bot(Method::GET, "/api/v1/namespaces/default/pods", None).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert_eq!(
            status,
            forbidden(
                &format!(
                    "pods is forbidden: User \"{BOT}\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
                ),
                "",
                "",
                "pods"
            )
        );
        let (_, status) = bot(
            Method::GET,
            "/api/v1/namespaces/default/pods?watch=true",
            None,
        )
        .await;
        assert_eq!(
            status["message"],
            format!(
                "pods is forbidden: User \"{BOT}\" cannot watch resource \"pods\" in API group \"\" in the namespace \"default\""
            )
        );
        let (_, status) = bot(Method::GET, "/api/v1/nodes/n1", None).await;
        assert_eq!(
            status,
            forbidden(
                &format!(
                    "nodes \"n1\" is forbidden: User \"{BOT}\" cannot get resource \"nodes\" in API group \"\" at the cluster scope"
                ),
                "n1",
                "",
                "nodes"
            )
        );
        let (_, status) = bot(
            Method::PATCH,
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
            Some(json!({})),
        )
        .await;
        assert_eq!(
            status["message"],
            format!(
                "deployments.apps \"web\" is forbidden: User \"{BOT}\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"default\""
            )
        );
        assert_eq!(
            status["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        let (code, status) = bot(Method::GET, "/metrics", None).await;
        assert_eq!(
            (code, status["message"].as_str()),
            (
                StatusCode::FORBIDDEN,
                Some(format!("forbidden: User \"{BOT}\" cannot get path \"/metrics\"").as_str())
            )
        );
        // Discovery, version and the reviews are every authenticated user's.
        for path in ["/version", "/api", "/apis/apps/v1", "/healthz"] {
            let (code, _) = bot(Method::GET, path, None).await;
            assert_eq!(code, StatusCode::OK, "{path}");
        }
        let (code, review) = bot_review("list", "pods", "default").await;
        assert_eq!(
            (code, &review["status"]),
            (StatusCode::CREATED, &json!({"allowed": false}))
        );

        // A RoleBinding to `edit` in `default`: allowed there at once, not in `other`.
        admin_post(
            &server,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            binding("RoleBinding", "bot-edit", "edit", Some("default")),
        )
        .await;
        let (code, _) = bot(Method::GET, "/api/v1/namespaces/default/pods", None).await;
        assert_eq!(code, StatusCode::OK);
        let (code, _) = bot(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            Some(json!({"metadata": {"name": "c"}})),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED);
        let (code, status) = bot(Method::GET, "/api/v1/namespaces/other/pods", None).await;
        assert_eq!((code, status["message"].as_str()), (StatusCode::FORBIDDEN, Some(format!("pods is forbidden: User \"{BOT}\" cannot list resource \"pods\" in API group \"\" in the namespace \"other\"").as_str())));
        let (_, review) = bot_review("create", "configmaps", "default").await;
        assert_eq!(
            review["status"],
            json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"bot-edit/default\" of ClusterRole \"edit\" to ServiceAccount \"bot/default\""})
        );

        // A ClusterRoleBinding to `view`: reads everywhere, still no writes in `other`.
        admin_post(
            &server,
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            binding("ClusterRoleBinding", "bot-view", "view", None),
        )
        .await;
        let (code, _) = bot(Method::GET, "/api/v1/namespaces/other/pods", None).await;
        assert_eq!(code, StatusCode::OK);
        let (code, _) = bot(Method::GET, "/api/v1/namespaces/other", None).await;
        assert_eq!(code, StatusCode::OK);
        let (code, status) = bot(
            Method::POST,
            "/api/v1/namespaces/other/configmaps",
            Some(json!({"metadata": {"name": "c"}})),
        )
        .await;
        assert_eq!((code, status["message"].as_str()), (StatusCode::FORBIDDEN, Some(format!("configmaps is forbidden: User \"{BOT}\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"other\"").as_str())));
        let (code, _) = bot(Method::GET, "/api/v1/namespaces/other/secrets", None).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "view does not read secrets");
        let (_, review) = bot_review("get", "pods", "other").await;
        assert_eq!(
            review["status"]["reason"],
            "RBAC: allowed by ClusterRoleBinding \"bot-view\" of ClusterRole \"view\" to ServiceAccount \"bot/default\""
        );

        // The bot may not ask about others, nor act as them.
        let about_bot = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": BOT, "groups": ["system:serviceaccounts"], "resourceAttributes": {"verb": "delete", "resource": "pods", "namespace": "other"}}});
        let (code, status) = bot(
            Method::POST,
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            Some(about_bot.clone()),
        )
        .await;
        assert_eq!((code, status["message"].as_str()), (StatusCode::FORBIDDEN, Some(format!("subjectaccessreviews.authorization.k8s.io is forbidden: User \"{BOT}\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope").as_str())));
        let (code, status) = call(
            &client,
            &base,
            &token,
            Method::GET,
            "/api/v1/namespaces/other/pods",
            None,
            &[("Impersonate-User", "admin")],
        )
        .await;
        assert_eq!((code, status["message"].as_str()), (StatusCode::FORBIDDEN, Some(format!("users \"admin\" is forbidden: User \"{BOT}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope").as_str())));
        // What the bot may do in `default`, as `kubectl auth can-i --list` asks.
        let rules_review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "default"}});
        let (code, rules) = bot(
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            Some(rules_review),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{rules}");
        let resource_rules = rules["status"]["resourceRules"].as_array().unwrap();
        assert!(
            resource_rules.iter().any(|r| r["resources"]
                .as_array()
                .unwrap()
                .contains(&json!("pods"))
                && r["verbs"].as_array().unwrap().contains(&json!("create"))),
            "{rules}"
        );
        assert!(
            rules["status"]["nonResourceRules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["nonResourceURLs"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("/version")))
        );

        // The admin (system:masters) may do anything, impersonate the bot and ask about it.
        let admin_token =
            std::fs::read_to_string(server.dir.path().join("pki").join("admin.token")).unwrap();
        let admin = |method: Method,
                     path: &'static str,
                     body: Option<Value>,
                     headers: &'static [(&'static str, &'static str)]| {
            let (client, base, token) = (client.clone(), base.clone(), admin_token.clone());
            async move { call(&client, &base, &token, method, path, body, headers).await }
        };
        for path in [
            "/api/v1/secrets",
            "/api/v1/nodes",
            "/metrics",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        ] {
            let (code, _) = admin(Method::GET, path, None, &[]).await;
            assert_eq!(code, StatusCode::OK, "{path}");
        }
        let (code, review) = admin(
            Method::POST,
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            Some(about_bot),
            &[],
        )
        .await;
        assert_eq!(
            (code, &review["status"]),
            (StatusCode::CREATED, &json!({"allowed": false}))
        );
        let (_, review) = admin(
            Method::POST,
            SSAR,
            Some(access_review("delete", "nodes", "")),
            &[],
        )
        .await;
        assert_eq!(review["status"], json!({"allowed": true}));
        let impersonating = &[("Impersonate-User", BOT)];
        let (code, _) = admin(
            Method::GET,
            "/api/v1/namespaces/other/pods",
            None,
            impersonating,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        let (code, status) = admin(
            Method::DELETE,
            "/api/v1/namespaces/other/pods/x",
            None,
            impersonating,
        )
        .await;
        assert_eq!((code, status["message"].as_str()), (StatusCode::FORBIDDEN, Some(format!("pods \"x\" is forbidden: User \"{BOT}\" cannot delete resource \"pods\" in API group \"\" in the namespace \"other\"").as_str())));

        // Removing the RoleBinding takes `edit` away again.
        let (code, _) = admin(
            Method::DELETE,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/bot-edit",
            None,
            &[],
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        let (code, _) = bot(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            Some(json!({"metadata": {"name": "d"}})),
        )
        .await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        // Anonymous callers see only public information.
        let anonymous = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(
                    &std::fs::read(server.dir.path().join("pki/ca.crt")).unwrap(),
                )
                .unwrap(),
            )
            .build()
            .unwrap();
        let version = anonymous
            .get(format!("{base}/version"))
            .send()
            .await
            .unwrap();
        assert_eq!(version.status(), StatusCode::OK);
        let apis: Value = anonymous
            .get(format!("{base}/apis"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            apis["message"],
            "forbidden: User \"system:anonymous\" cannot get path \"/apis\""
        );
    }
);

both_backends!(
    default_policy_survives_restarts_and_second_servers_follow_changes,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        let token = bot_token(&server).await;
        let list = |server: &TestServer| {
            let client = server.raw();
            let url = format!(
                "{}/apis/rbac.authorization.k8s.io/v1/clusterroles?labelSelector=kubernetes.io/bootstrapping%3Drbac-defaults",
                server.http
            );
            async move {
                client
                    .get(url)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let before = list(&server).await;
        let names: Vec<&str> = before["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["metadata"]["name"].as_str().unwrap())
            .collect();
        for wanted in [
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:basic-user",
            "system:discovery",
            "system:public-info-viewer",
        ] {
            assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
        }
        // The admin empties two default roles, opting one out of auto-update; a second
        // server on the same store restores the other's rules and keeps the opted-out one.
        let rules_of = |list: &Value, name: &str| -> usize {
            let role = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["metadata"]["name"] == name)
                .unwrap();
            role["rules"].as_array().map_or(0, Vec::len)
        };
        let edit_rules = rules_of(&before, "edit");
        assert!(edit_rules > 0);
        for (role, patch) in [
            (
                "view",
                json!({"metadata": {"annotations": {"rbac.authorization.k8s.io/autoupdate": "false"}}, "rules": []}),
            ),
            ("edit", json!({"rules": []})),
        ] {
            let response = server
                .raw()
                .patch(format!(
                    "{}/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}",
                    server.http
                ))
                .header("Content-Type", "application/merge-patch+json")
                .body(patch.to_string())
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{role}");
        }
        let mut config =
            waggle_apiserver::Config::new(server.dir.path().to_owned(), server.store.clone());
        config.bind = "127.0.0.1:0".parse().unwrap();
        let second = waggle_apiserver::start(config)
            .await
            .expect("a second server starts");
        let after = list(&server).await;
        assert_eq!(
            after["items"].as_array().unwrap().len(),
            before["items"].as_array().unwrap().len()
        );
        assert_eq!(rules_of(&after, "edit"), edit_rules, "edit was reconciled");
        assert_eq!(rules_of(&after, "view"), 0, "view opted out of reconciling");

        // A binding made through the first server reaches the second through its watch;
        // `view`, emptied, still grants what it aggregates.
        let client = https(&server);
        let base = second.url();
        let pods_on_second = || {
            call(
                &client,
                &base,
                &token,
                Method::GET,
                "/api/v1/namespaces/default/pods",
                None,
                &[],
            )
        };
        let (code, _) = pods_on_second().await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        admin_post(
            &server,
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            binding("ClusterRoleBinding", "bot-view", "view", None),
        )
        .await;
        let mut code = StatusCode::FORBIDDEN;
        for _ in 0..100 {
            (code, _) = pods_on_second().await;
            if code == StatusCode::OK {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            code,
            StatusCode::OK,
            "the second server never saw the binding"
        );
        second.shutdown().await;
    }
);

both_backends!(
    local_subject_access_reviews_stay_in_their_namespace,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        let token = bot_token(&server).await;
        let (client, base) = (https(&server), server.running.url());
        let path = "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews";
        let review = |namespace: &str| {
            json!({
                "apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
                "spec": {"user": BOT, "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": namespace}},
            })
        };
        // The namespace comes from the path; the answer is the policy's (no binding yet).
        let answer = admin_post(&server, path, review("default")).await;
        assert_eq!(answer["metadata"]["namespace"], "default");
        assert_eq!(answer["status"], json!({"allowed": false}));
        // Asking about another namespace is invalid, as upstream.
        let response = server
            .raw()
            .post(format!("{}{path}", server.http))
            .json(&review("kube-system"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let status: Value = response.json().await.unwrap();
        assert_eq!(
            status["message"],
            "LocalSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes.namespace: Invalid value: \"kube-system\": must match metadata.namespace"
        );
        // A namespace's `admin` may ask; `edit` may not.
        let ask = || {
            call(
                &client,
                &base,
                &token,
                Method::POST,
                path,
                Some(review("default")),
                &[],
            )
        };
        bind_in_default(&server, "bot-edit", "edit").await;
        let (code, status) = ask().await;
        assert_eq!((code, status["message"].as_str()), (StatusCode::FORBIDDEN, Some(format!("localsubjectaccessreviews.authorization.k8s.io is forbidden: User \"{BOT}\" cannot create resource \"localsubjectaccessreviews\" in API group \"authorization.k8s.io\" in the namespace \"default\"").as_str())));
        bind_in_default(&server, "bot-admin", "admin").await;
        let (code, answer) = ask().await;
        assert_eq!(code, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["status"]["allowed"], true, "{answer}");
    }
);

both_backends!(
    a_list_of_one_name_is_authorized_as_that_name,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        let token = bot_token(&server).await;
        let (client, base) = (https(&server), server.running.url());
        admin_post(
            &server,
            "/api/v1/namespaces/default/configmaps",
            json!({"metadata": {"name": "settings"}}),
        )
        .await;
        // A Role for one ConfigMap by name, as `kubectl create role --resource-name`.
        admin_post(
            &server,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            json!({"metadata": {"name": "one-map"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get", "list", "watch"]}]}),
        )
        .await;
        let mut bind = binding("RoleBinding", "bot-one-map", "one-map", Some("default"));
        bind["roleRef"]["kind"] = json!("Role");
        admin_post(
            &server,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            bind,
        )
        .await;
        let get = |path: &'static str| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move { call(&client, &base, &token, Method::GET, path, None, &[]).await }
        };
        let (code, list) =
            get("/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Dsettings")
                .await;
        assert_eq!(code, StatusCode::OK, "{list}");
        assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
        let (code, _) = get("/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3D%3Dsettings&watch=true&timeoutSeconds=1").await;
        assert_eq!(code, StatusCode::OK);
        let (code, status) = get("/api/v1/namespaces/default/configmaps").await;
        assert_eq!((code, status["message"].as_str()), (StatusCode::FORBIDDEN, Some(format!("configmaps is forbidden: User \"{BOT}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\"").as_str())));
        let (code, _) =
            get("/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Dother").await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        let (code, _) =
            get("/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%21%3Dsettings")
                .await;
        assert_eq!(code, StatusCode::FORBIDDEN, "a negated name pins nothing");
    }
);

both_backends!(
    a_request_for_an_unserved_resource_is_authorized_as_a_resource,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        let token = bot_token(&server).await;
        let (client, base) = (https(&server), server.running.url());
        let path = "/apis/example.com/v1/namespaces/default/widgets";
        let (code, status) = call(&client, &base, &token, Method::GET, path, None, &[]).await;
        assert_eq!((code, status["message"].as_str()), (StatusCode::FORBIDDEN, Some(format!("widgets.example.com is forbidden: User \"{BOT}\" cannot list resource \"widgets\" in API group \"example.com\" in the namespace \"default\"").as_str())));
        let (code, status) = call(
            &client,
            &base,
            &token,
            Method::DELETE,
            "/api/v1/gadgets/g1",
            None,
            &[],
        )
        .await;
        assert_eq!((code, status["message"].as_str()), (StatusCode::FORBIDDEN, Some(format!("gadgets \"g1\" is forbidden: User \"{BOT}\" cannot delete resource \"gadgets\" in API group \"\" at the cluster scope").as_str())));
        // Whoever may ask learns that it is not served.
        let response = server
            .raw()
            .get(format!("{}{path}", server.http))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
);

both_backends!(
    tokens_die_with_their_service_account,
    |backend: Backend| async move {
        let server = TestServer::start(backend).await;
        let token = bot_token(&server).await;
        let (client, base) = (https(&server), server.running.url());
        let bot = |method: Method, path: &'static str, body: Option<Value>| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move { call(&client, &base, &token, method, path, body, &[]).await }
        };
        let whoami = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
        let path = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
        let (code, review) = bot(Method::POST, path, Some(whoami.clone())).await;
        assert_eq!(code, StatusCode::CREATED, "{review}");
        // Service accounts may read the issuer's discovery documents; anonymous may not.
        let (code, config) = bot(Method::GET, "/.well-known/openid-configuration", None).await;
        assert_eq!(code, StatusCode::OK, "{config}");
        assert_eq!(
            config["issuer"],
            "https://kubernetes.default.svc.cluster.local"
        );
        let (code, jwks) = bot(Method::GET, "/openid/v1/jwks", None).await;
        assert_eq!(
            (code, jwks["keys"][0]["alg"].as_str()),
            (StatusCode::OK, Some("ES256")),
            "{jwks}"
        );
        let anonymous = client
            .get(format!("{base}/openid/v1/jwks"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::FORBIDDEN);
        let account = "/api/v1/namespaces/default/serviceaccounts/bot";
        let response = server
            .raw()
            .delete(format!("{}{account}", server.http))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let (code, status) = bot(Method::POST, path, Some(whoami.clone())).await;
        assert_eq!(
            (code, &status["reason"]),
            (StatusCode::UNAUTHORIZED, &json!("Unauthorized")),
            "{status}"
        );
        // The same name again is another account: the old token stays dead.
        admin_post(
            &server,
            "/api/v1/namespaces/default/serviceaccounts",
            json!({"metadata": {"name": "bot"}}),
        )
        .await;
        let (code, _) = bot(Method::POST, path, Some(whoami)).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED);
    }
);
