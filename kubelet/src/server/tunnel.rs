//! The stream tunnel, as upstream's API server has it for port-forward: kubectl (1.31
//! and later) speaks SPDY with `portforward.k8s.io` inside WebSocket binary messages,
//! offering the subprotocol `SPDY/3.1+portforward.k8s.io`. The tunnel upgrades to
//! SPDY/3.1 at the runtime's streaming server and copies the bytes both ways as they
//! are: each message's payload to the runtime, each read from the runtime as one
//! message. The SPDY session itself is kubectl's and the runtime's.

use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::spdy;

/// The WebSocket subprotocol kubectl offers for a tunneled port-forward.
pub(super) const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The stream protocol of the SPDY session inside.
const PORT_FORWARD: &str = "portforward.k8s.io";
const READ_BUFFER: usize = 32 * 1024;

/// Whether the request is a WebSocket upgrade offering the tunnel's subprotocol.
pub(super) fn wanted(headers: &HeaderMap) -> bool {
    super::websocket_offering(headers, &[PROTOCOL])
}

/// Accepts the WebSocket and tunnels it to the runtime's streaming `url`.
pub(super) async fn serve(request: Request, url: String) -> Response {
    let (mut parts, _) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade.protocols([PROTOCOL]),
        Err(rejection) => return rejection.into_response(),
    };
    upgrade
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "a port-forward's WebSocket upgrade failed"))
        .on_upgrade(move |socket| relay(socket, url))
}

async fn relay(socket: WebSocket, url: String) {
    let (mut to_client, mut from_client) = socket.split();
    let runtime = match spdy::connect(&url, PORT_FORWARD).await {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!(error = %e, "port-forward: reaching the runtime's streaming server");
            let reason = e.to_string().chars().take(120).collect::<String>();
            let close = CloseFrame { code: close_code::ERROR, reason: reason.into() };
            let _ = to_client.send(Message::Close(Some(close))).await;
            return;
        }
    };
    let (mut from_runtime, mut to_runtime) = tokio::io::split(runtime);
    let upstream = async {
        while let Some(Ok(message)) = from_client.next().await {
            match message {
                Message::Binary(data) if to_runtime.write_all(&data).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_runtime.shutdown().await;
    };
    let downstream = async {
        let mut buffer = vec![0; READ_BUFFER];
        loop {
            match from_runtime.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let data = bytes::Bytes::copy_from_slice(&buffer[..n]);
                    if to_client.send(Message::Binary(data)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let close = CloseFrame { code: close_code::NORMAL, reason: "".into() };
        let _ = to_client.send(Message::Close(Some(close))).await;
    };
    // The session ends when either side is done: kubectl closes the WebSocket when
    // it stops forwarding, the runtime closes when the sandbox goes.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_websocket_upgrades_offering_the_tunnel_are_tunneled() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(value).unwrap(),
                );
            }
            map
        };
        assert!(wanted(&headers(&[("upgrade", "websocket"), ("sec-websocket-protocol", PROTOCOL)])));
        assert!(wanted(&headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", "portforward.k8s.io, SPDY/3.1+portforward.k8s.io")
        ])));
        assert!(!wanted(&headers(&[("upgrade", "SPDY/3.1"), ("x-stream-protocol-version", PORT_FORWARD)])));
        assert!(!wanted(&headers(&[("upgrade", "websocket"), ("sec-websocket-protocol", "v5.channel.k8s.io")])));
    }
}
