//! The subresources kube-apiserver serves by proxying to a kubelet: `pods/log` (HTTP,
//! streamed), `pods/exec`, `pods/attach`, `pods/portforward` (connection upgrades, the
//! WebSocket or SPDY bytes spliced through untouched) and `nodes/proxy`.
//!
//! [`route`] recognises the paths, [`serve`] resolves the pod's container and node
//! ([`location`]) and forwards ([`dial`]). The errors before a kubelet is reached are
//! upstream's: a pod with no node has an empty log and cannot be exec'd into
//! (`pod x does not have a host assigned`), a missing node is a 404, a node without
//! addresses or a kubelet that does not answer is a 500 with Go's dial error.

mod dial;
pub mod location;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use waggle_apimachinery::registry;

use self::dial::Backend;
use crate::handlers::get;
use crate::params::Params;
use crate::state::ApiState;
use crate::status::ApiError;
use crate::target::Target;

/// A request that goes to a kubelet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `pods/NAME/{log,exec,attach,portforward}`.
    Pod {
        namespace: String,
        name: String,
        subresource: String,
    },
    /// `nodes/NAME/proxy[/PATH]`: `path` is what the kubelet is asked for.
    Node { name: String, path: String },
}

/// The kubelet-bound request a path names, if it names one.
pub fn route(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [
            "api",
            "v1",
            "namespaces",
            ns,
            "pods",
            name,
            sub @ ("log" | "exec" | "attach" | "portforward"),
        ] if !ns.is_empty() && !name.is_empty() => Some(Route::Pod {
            namespace: (*ns).to_owned(),
            name: (*name).to_owned(),
            subresource: (*sub).to_owned(),
        }),
        ["api", "v1", "nodes", name, "proxy", rest @ ..] if !name.is_empty() => Some(Route::Node {
            name: (*name).to_owned(),
            path: format!("/{}", rest.join("/")),
        }),
        _ => None,
    }
}

/// What the client sent, including its connection's upgrade handle.
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Body,
    pub upgrade: Option<OnUpgrade>,
}

/// Serves one kubelet-bound request.
pub async fn serve(
    state: &ApiState,
    route: Route,
    params: &Params,
    request: Request,
) -> Result<Response, ApiError> {
    match route {
        Route::Node { name, path } => {
            let backend = location::kubelet(state, &name).await?;
            let path_and_query = match request.uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            forward(&backend, path_and_query, request).await
        }
        Route::Pod {
            namespace,
            name,
            subresource,
        } => {
            let pods = registry::find("", "v1", "pods").expect("pods are served");
            let target = Target {
                resource: pods,
                namespace: Some(namespace.clone()),
                name: Some(name.clone()),
                subresource: None,
                watch_path: false,
            };
            let pod = get::read(state, &target).await?;
            if subresource == "log" {
                if request.method != Method::GET {
                    return Err(ApiError::MethodNotAllowed {
                        message: format!(
                            "the server does not allow this method on the requested resource ({})",
                            request.method
                        ),
                    });
                }
                return log(state, &pod, &namespace, &name, params).await;
            }
            let kubelet_path = if subresource == "portforward" {
                format!("/portForward/{namespace}/{name}")
            } else {
                let container = location::container(&pod, params.value("container"))?;
                format!("/{subresource}/{namespace}/{name}/{container}")
            };
            let node = location::node_name(&pod).ok_or_else(|| {
                ApiError::bad_request(format!("pod {name} does not have a host assigned"))
            })?;
            let backend = location::kubelet(state, node).await?;
            if !is_upgrade(&request.headers) {
                return Err(ApiError::bad_request("Upgrade request required"));
            }
            let query = without(request.uri.query(), "container");
            let path_and_query = if query.is_empty() {
                kubelet_path
            } else {
                format!("{kubelet_path}?{query}")
            };
            forward(&backend, path_and_query, request).await
        }
    }
}

/// `pods/log`: the kubelet's `containerLogs` with the log options passed on; an empty
/// log for a pod no node runs yet (upstream's empty location).
async fn log(
    state: &ApiState,
    pod: &serde_json::Value,
    namespace: &str,
    name: &str,
    params: &Params,
) -> Result<Response, ApiError> {
    let container = location::container(pod, params.value("container"))?;
    let Some(node) = location::node_name(pod) else {
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            Body::empty(),
        )
            .into_response());
    };
    let backend = location::kubelet(state, node).await?;
    let mut query: Vec<(&str, String)> = Vec::new();
    for flag in ["follow", "previous", "timestamps"] {
        if params.flag(flag) {
            query.push((flag, "true".into()));
        }
    }
    for option in ["sinceSeconds", "sinceTime", "tailLines", "limitBytes"] {
        if let Some(v) = params.value(option) {
            query.push((option, v.to_owned()));
        }
    }
    // Go's url.Values.Encode sorts by key.
    query.sort_by(|a, b| a.0.cmp(b.0));
    let encoded: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", escape(v)))
        .collect();
    let mut path = format!("/containerLogs/{namespace}/{name}/{container}");
    if !encoded.is_empty() {
        path = format!("{path}?{}", encoded.join("&"));
    }
    let request = http::Request::get(path.as_str())
        .header(header::HOST, backend.authority())
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let response = dial::send(&backend, request)
        .await
        .map_err(|e| ApiError::Unknown {
            message: format!("Get \"https://{}{path}\": {e}", backend.authority()),
        })?;
    let status = response.status();
    if !(200..=206).contains(&status.as_u16()) {
        // Upstream's GenericHttpResponseChecker: the kubelet's words become the error.
        let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 16)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).trim().to_owned();
        return Err(match status {
            StatusCode::BAD_REQUEST => ApiError::bad_request(text),
            StatusCode::NOT_FOUND => ApiError::NotFound {
                message: text,
                kind: "pods".into(),
                name: name.into(),
            },
            _ => ApiError::internal(format!("Internal error occurred: {text}")),
        });
    }
    Ok(response.map(Body::new))
}

/// Sends the client's request on to the kubelet; when both sides upgrade, splices the
/// two connections together.
async fn forward(
    backend: &Backend,
    path_and_query: String,
    request: Request,
) -> Result<Response, ApiError> {
    let upgrading = is_upgrade(&request.headers);
    let mut outgoing = http::Request::builder()
        .method(request.method)
        .uri(path_and_query);
    for (name, value) in &request.headers {
        if name != header::HOST && name != header::AUTHORIZATION {
            outgoing = outgoing.header(name, value);
        }
    }
    let outgoing = outgoing
        .header(header::HOST, backend.authority())
        .body(request.body)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut response = dial::send(backend, outgoing).await.map_err(|e| {
        let message = if upgrading {
            format!("error dialing backend: {e}")
        } else {
            e.to_string()
        };
        ApiError::Unknown { message }
    })?;
    if upgrading && response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client) = request.upgrade else {
            return Err(ApiError::bad_request("Upgrade request required"));
        };
        let kubelet = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            match (client.await, kubelet.await) {
                (Ok(client), Ok(kubelet)) => {
                    let (mut client, mut kubelet) = (TokioIo::new(client), TokioIo::new(kubelet));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await {
                        tracing::debug!(error = %e, "kubelet stream ended");
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(error = %e, "upgrade to the kubelet failed")
                }
            }
        });
    }
    Ok(response.map(Body::new))
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"))
        && headers.contains_key(header::UPGRADE)
}

/// `query` without the parameter `name`.
fn without(query: Option<&str>, name: &str) -> String {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(name))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go's `url.QueryEscape` for the characters log options contain.
fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_pod_streams_and_node_proxy() {
        assert_eq!(
            route("/api/v1/namespaces/default/pods/web/log"),
            Some(Route::Pod {
                namespace: "default".into(),
                name: "web".into(),
                subresource: "log".into()
            })
        );
        assert_eq!(
            route("/api/v1/nodes/n1/proxy/stats/summary"),
            Some(Route::Node {
                name: "n1".into(),
                path: "/stats/summary".into()
            })
        );
        assert_eq!(
            route("/api/v1/nodes/n1/proxy"),
            Some(Route::Node {
                name: "n1".into(),
                path: "/".into()
            })
        );
        assert_eq!(route("/api/v1/namespaces/default/pods/web/status"), None);
        assert_eq!(route("/api/v1/nodes/n1/status"), None);
    }

    #[test]
    fn queries_are_rewritten_as_upstream() {
        assert_eq!(
            without(Some("command=ls&container=app&stdout=true"), "container"),
            "command=ls&stdout=true"
        );
        assert_eq!(escape("2024-01-01T00:00:00Z"), "2024-01-01T00%3A00%3A00Z");
    }
}
