//! `exec`, `attach` and `portForward`: the runtime is asked for a streaming session
//! (CRI `Exec`, `Attach`, `PortForward` return a one-time URL on its streaming
//! server). A WebSocket exec or attach with `v5.channel.k8s.io` or `v4.channel.k8s.io`
//! goes through the [`translator`](super::translator), since containerd's streaming
//! server speaks those only over SPDY. Any other request, upgrade headers and all, is
//! sent to the runtime as it is; once both sides switch protocols the two connections
//! are spliced. Then the stream protocol (SPDY with `v4.channel.k8s.io`,
//! `portforward.k8s.io`, or an older WebSocket one) is the runtime streaming server's,
//! and a protocol it refuses comes back to the caller as its refusal. A port-forward
//! WebSocket that tunnels SPDY goes through the [`tunnel`](super::tunnel).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{StatusCode, Uri, header};
use hyper::client::conn::http1::SendRequest;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;

use super::translator::{self, Streams};
use super::tunnel;
use super::{Api, Failure, PathParams, QueryPairs, attempts, flag, param, sandbox};

pub(super) async fn exec(
    State(api): State<Api>,
    path: PathParams,
    query: QueryPairs,
    request: Request,
) -> Result<Response, Failure> {
    let command: Vec<String> = query.0.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect();
    if command.is_empty() {
        return Err(Failure(StatusCode::BAD_REQUEST, "you must specify at least 1 command".into()));
    }
    let id = running_container(&api, &path).await?;
    let session = cri::ExecRequest {
        container_id: id,
        cmd: command,
        tty: flag(&query, "tty"),
        stdin: flag(&query, "stdin") || flag(&query, "input"),
        stdout: flag(&query, "stdout") || flag(&query, "output"),
        stderr: flag(&query, "stderr") || flag(&query, "error"),
    };
    let streams = Streams { stdin: session.stdin, stdout: session.stdout, stderr: session.stderr, tty: session.tty };
    let url = api.runtime.exec(session).await?;
    if translator::wanted(request.headers()) {
        return Ok(translator::serve(request, url, streams).await);
    }
    splice(&url, request).await
}

pub(super) async fn attach(
    State(api): State<Api>,
    path: PathParams,
    query: QueryPairs,
    request: Request,
) -> Result<Response, Failure> {
    let id = running_container(&api, &path).await?;
    let session = cri::AttachRequest {
        container_id: id,
        stdin: flag(&query, "stdin") || flag(&query, "input"),
        tty: flag(&query, "tty"),
        stdout: flag(&query, "stdout") || flag(&query, "output"),
        stderr: flag(&query, "stderr") || flag(&query, "error"),
    };
    let streams = Streams { stdin: session.stdin, stdout: session.stdout, stderr: session.stderr, tty: session.tty };
    let url = api.runtime.attach(session).await?;
    if translator::wanted(request.headers()) {
        return Ok(translator::serve(request, url, streams).await);
    }
    splice(&url, request).await
}

pub(super) async fn port_forward(
    State(api): State<Api>,
    path: PathParams,
    request: Request,
) -> Result<Response, Failure> {
    let sandbox = sandbox(&api.runtime, param(&path, "namespace"), param(&path, "pod")).await?;
    let url = api.runtime.port_forward(&sandbox.id).await?;
    if tunnel::wanted(request.headers()) {
        return Ok(tunnel::serve(request, url).await);
    }
    splice(&url, request).await
}

/// The running attempt of the named container.
async fn running_container(api: &Api, path: &PathParams) -> Result<String, Failure> {
    let (namespace, pod, container) = (param(path, "namespace"), param(path, "pod"), param(path, "container"));
    let found = attempts(&api.runtime, namespace, pod, container).await?;
    found
        .into_iter()
        .find(|c| c.state == cri::ContainerState::ContainerRunning as i32)
        .map(|c| c.id)
        .ok_or_else(|| Failure(StatusCode::NOT_FOUND, format!("container not found (\"{container}\")")))
}

/// An HTTP/1.1 connection to the runtime's streaming server that `target` names.
pub(super) async fn dial(target: &Uri) -> Result<SendRequest<Body>, String> {
    let authority = target.authority().map(|a| a.to_string()).unwrap_or_default();
    let unreachable =
        |e: &dyn std::fmt::Display| format!("error dialing the runtime's streaming server {authority}: {e}");
    let tcp = tokio::net::TcpStream::connect(&authority).await.map_err(|e| unreachable(&e))?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "runtime streaming connection ended");
        }
    });
    Ok(sender)
}

/// Sends `request` to the runtime's streaming `url` and splices the upgraded
/// connections; any other answer is passed back as it came.
async fn splice(url: &str, mut request: Request) -> Result<Response, Failure> {
    let target: Uri = url
        .parse()
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, format!("runtime streaming URL {url:?}: {e}")))?;
    let authority = target.authority().map(|a| a.to_string()).unwrap_or_default();
    let mut sender = dial(&target).await.map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let inbound = request.extensions_mut().remove::<OnUpgrade>();
    let mut outgoing = http::Request::builder()
        .method(request.method().clone())
        .uri(target.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    for (name, value) in request.headers() {
        if name != header::HOST && name != header::AUTHORIZATION {
            outgoing = outgoing.header(name, value);
        }
    }
    let outgoing = outgoing
        .header(header::HOST, authority.as_str())
        .body(request.into_body())
        .map_err(|e| Failure(StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut response = sender.send_request(outgoing).await.map_err(|e| {
        Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error dialing the runtime's streaming server {authority}: {e}"),
        )
    })?;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(inbound) = inbound else {
            return Err(Failure(StatusCode::BAD_REQUEST, "Upgrade request required".into()));
        };
        let runtime_side = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            match (inbound.await, runtime_side.await) {
                (Ok(caller), Ok(runtime)) => {
                    let (mut caller, mut runtime) = (TokioIo::new(caller), TokioIo::new(runtime));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut caller, &mut runtime).await {
                        tracing::debug!(error = %e, "stream ended");
                    }
                }
                (Err(e), _) | (_, Err(e)) => tracing::debug!(error = %e, "a stream's upgrade failed"),
            }
        });
    }
    Ok(response.map(Body::new))
}
