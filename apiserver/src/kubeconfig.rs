//! The admin kubeconfig the server writes at start.

use base64::Engine;
use serde_json::json;

use crate::admin_cert::ClientCredential;

/// A kubeconfig (YAML) for `server` trusting `ca_pem`, user `admin` with its client
/// certificate (signed by the cluster CA) and a bearer token (which the auth gate will
/// check once authentication lands).
pub fn admin(server: &str, ca_pem: &str, token: &str, client: &ClientCredential) -> String {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let ca = b64(ca_pem);
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "waggle", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": "admin", "user": {"token": token, "client-certificate-data": b64(&client.cert), "client-key-data": b64(&client.key)}}],
        "contexts": [{"name": "waggle", "context": {"cluster": "waggle", "user": "admin", "namespace": "default"}}],
        "current-context": "waggle",
        "preferences": {},
    });
    serde_yaml::to_string(&config).expect("kubeconfig serializes")
}
