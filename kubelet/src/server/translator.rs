//! The stream translator, as upstream's API server has it: a client's WebSocket session
//! with `v5.channel.k8s.io` (or `v4.channel.k8s.io`) becomes a SPDY session with
//! `v4.channel.k8s.io` to the runtime's streaming server, which speaks no v5.
//!
//! Each WebSocket message carries a channel byte, then the channel's bytes: 0 stdin,
//! 1 stdout, 2 stderr, 3 error (the command's v1 `Status`), 4 resize (terminal sizes as
//! JSON); v5 adds 255, whose payload names a channel the client has finished sending
//! on. Each channel is a SPDY stream (`streamtype` header); a finished stdin is a
//! half-closed (FIN) stdin stream. The runtime's status is passed on as it came, or a
//! `Status` is made for a session that ended without one, as upstream's does.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use http::HeaderMap;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;

use super::spdy::{self, Event, Outgoing, Session};

pub(super) const V5: &str = "v5.channel.k8s.io";
pub(super) const V4: &str = "v4.channel.k8s.io";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: the client has finished sending on the channel the payload names.
const CLOSE: u8 = 255;

/// How long the runtime has to accept the streams (its own wait for them is 30 s).
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the client has to read the rest and close once the status is sent: the
/// server leaves the closing to the client, since closing first can reset the
/// connection and lose output the client has not read yet (upstream's reasoning).
const FINISH_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The streams the caller asked for.
#[derive(Clone, Copy, Debug)]
pub(super) struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Whether the request is a WebSocket upgrade offering a protocol translated here;
/// others go to the runtime as they are.
pub(super) fn wanted(headers: &HeaderMap) -> bool {
    super::websocket_offering(headers, &[V5, V4])
}

/// Accepts the WebSocket and relays it to the runtime's streaming `url`.
pub(super) async fn serve(request: Request, url: String, streams: Streams) -> Response {
    let (mut parts, _) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade.protocols([V5, V4]),
        Err(rejection) => return rejection.into_response(),
    };
    let v5 = upgrade.selected_protocol().is_some_and(|p| p == V5);
    upgrade
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "a stream's WebSocket upgrade failed"))
        .on_upgrade(move |socket| relay(socket, url, streams, v5))
}

/// The runtime's stream for each channel.
#[derive(Clone, Copy, Debug, Default)]
struct Ids {
    error: u32,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

impl Ids {
    /// The opened streams, with their `streamtype`.
    fn named(&self) -> Vec<(u32, &'static str)> {
        let all = [
            (Some(self.error), "error"),
            (self.stdin, "stdin"),
            (self.stdout, "stdout"),
            (self.stderr, "stderr"),
            (self.resize, "resize"),
        ];
        all.into_iter().filter_map(|(id, kind)| Some((id?, kind))).collect()
    }

    fn output_channel(&self, stream: u32) -> Option<u8> {
        if Some(stream) == self.stdout {
            Some(STDOUT)
        } else if Some(stream) == self.stderr {
            Some(STDERR)
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error(transparent)]
    Spdy(#[from] spdy::Error),
    #[error("the runtime refused the {0} stream")]
    Refused(&'static str),
    #[error("the runtime sent data before accepting every stream")]
    Early,
    #[error("the runtime did not accept the streams within {0:?}")]
    Timeout(Duration),
}

type Runtime = Session<TokioIo<Upgraded>>;
type ToClient = SplitSink<WebSocket, Message>;

async fn relay(socket: WebSocket, url: String, streams: Streams, v5: bool) {
    let (mut to_client, from_client) = socket.split();
    // An empty message on the lowest channel the client reads tells it the session is up.
    let first = if streams.stdout {
        STDOUT
    } else if streams.stderr {
        STDERR
    } else {
        ERROR
    };
    if to_client.send(binary(first, &[])).await.is_err() {
        return;
    }
    let (runtime, ids) = match open(&url, streams).await {
        Ok(opened) => opened,
        Err(e) => {
            tracing::info!(error = %e, "opening the runtime's streams");
            if finish(&mut to_client, internal_error(&e.to_string())).await.is_ok() {
                let _ = tokio::time::timeout(FINISH_TIMEOUT, upstream(from_client, None, v5)).await;
            }
            return;
        }
    };
    let up = upstream(from_client, Some((runtime.outgoing(), ids)), v5);
    let down = downstream(runtime, ids, &mut to_client);
    tokio::pin!(up, down);
    tokio::select! {
        sent = &mut down => {
            if let Err(e) = sent {
                tracing::debug!(error = %e, "writing to the stream's client");
                return;
            }
            if tokio::time::timeout(FINISH_TIMEOUT, up).await.is_err() {
                tracing::debug!("the stream's client did not close within {FINISH_TIMEOUT:?}");
            }
        }
        () = &mut up => tracing::debug!("the stream's client left before the command ended"),
    }
}

/// Upgrades to SPDY at `url` and opens the streams, in upstream's client's order.
async fn open(url: &str, streams: Streams) -> Result<(Runtime, Ids), OpenError> {
    let mut runtime = Session::new(spdy::connect(url, V4).await?)?;
    let stream_type = |kind: &str| vec![("streamtype".to_owned(), kind.to_owned())];
    let mut ids = Ids { error: runtime.open(stream_type("error")).await?, ..Ids::default() };
    let wanted = [
        (streams.stdin, "stdin", &mut ids.stdin),
        (streams.stdout, "stdout", &mut ids.stdout),
        (streams.stderr && !streams.tty, "stderr", &mut ids.stderr),
        (streams.tty, "resize", &mut ids.resize),
    ];
    for (_, kind, id) in wanted.into_iter().filter(|(on, ..)| *on) {
        *id = Some(runtime.open(stream_type(kind)).await?);
    }
    let accepted = async {
        let mut waiting = ids.named();
        while !waiting.is_empty() {
            let refused = |stream: u32| {
                let kind = waiting.iter().find(|(id, _)| *id == stream).map_or("unknown", |(_, kind)| *kind);
                OpenError::Refused(kind)
            };
            match runtime.next().await? {
                Some(Event::Replied { stream, fin: false }) => waiting.retain(|(id, _)| *id != stream),
                Some(Event::Replied { stream, fin: true } | Event::Reset { stream, .. }) => {
                    return Err(refused(stream));
                }
                Some(Event::GoAway { .. }) => {}
                Some(Event::Data { .. }) => return Err(OpenError::Early),
                None => return Err(spdy::Error::Closed.into()),
            }
        }
        Ok(())
    };
    tokio::time::timeout(ACCEPT_TIMEOUT, accepted).await.map_err(|_| OpenError::Timeout(ACCEPT_TIMEOUT))??;
    Ok((runtime, ids))
}

/// The runtime's output to the client until its output and error streams end, then
/// the status and the WebSocket close.
async fn downstream(mut runtime: Runtime, ids: Ids, to_client: &mut ToClient) -> Result<(), axum::Error> {
    let mut open: Vec<u32> = [Some(ids.error), ids.stdout, ids.stderr].into_iter().flatten().collect();
    let mut status = BytesMut::new();
    let mut status_complete = false;
    let mut failure = None;
    while !open.is_empty() {
        match runtime.next().await {
            Ok(Some(Event::Data { stream, data, fin })) => {
                if stream == ids.error {
                    status.extend_from_slice(&data);
                    status_complete |= fin;
                } else if let Some(channel) = ids.output_channel(stream)
                    && !data.is_empty()
                {
                    to_client.send(binary(channel, &data)).await?;
                }
                if fin {
                    open.retain(|s| *s != stream);
                }
            }
            Ok(Some(Event::Reset { stream, status })) => {
                tracing::debug!(stream, status, "the runtime reset a stream");
                open.retain(|s| *s != stream);
            }
            Ok(Some(Event::Replied { .. } | Event::GoAway { .. })) => {}
            Ok(None) => break,
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let status = if !status.is_empty() {
        status.freeze()
    } else if status_complete {
        success()
    } else {
        let why = failure.unwrap_or_else(|| "the runtime ended the session without the command's status".into());
        internal_error(&why)
    };
    finish(to_client, status).await
}

/// The client's input to the runtime until the client closes the WebSocket; with no
/// runtime, the input is read and dropped.
async fn upstream(mut from_client: SplitStream<WebSocket>, runtime: Option<(Outgoing, Ids)>, v5: bool) {
    let mut finished: Vec<u32> = Vec::new();
    while let Some(message) = from_client.next().await {
        let data = match message {
            Ok(Message::Binary(data)) => data,
            Ok(Message::Close(_)) | Err(_) => return,
            Ok(_) => continue,
        };
        let Some((outgoing, ids)) = &runtime else { continue };
        let Some(&channel) = data.first() else { continue };
        let payload = data.slice(1..);
        let (stream, fin) = match channel {
            STDIN => (ids.stdin, false),
            RESIZE => (ids.resize, false),
            CLOSE if v5 => match payload.first() {
                Some(&STDIN) => (ids.stdin, true),
                Some(&RESIZE) => (ids.resize, true),
                _ => (None, false),
            },
            _ => (None, false),
        };
        let Some(stream) = stream else {
            tracing::trace!(channel, "ignoring a message on a channel with no stream");
            continue;
        };
        if finished.contains(&stream) || (!fin && payload.is_empty()) {
            continue;
        }
        let payload = if fin { Bytes::new() } else { payload };
        if fin {
            finished.push(stream);
        }
        if let Err(e) = outgoing.data(stream, payload, fin).await {
            // The runtime's side is gone; the downstream half reports it.
            tracing::debug!(error = %e, "relaying the client's input");
        }
    }
}

async fn finish(to_client: &mut ToClient, status: Bytes) -> Result<(), axum::Error> {
    to_client.send(binary(ERROR, &status)).await?;
    let close = CloseFrame { code: close_code::NORMAL, reason: Utf8Bytes::from_static("") };
    to_client.send(Message::Close(Some(close))).await
}

fn binary(channel: u8, data: &[u8]) -> Message {
    let mut message = BytesMut::with_capacity(1 + data.len());
    message.extend_from_slice(&[channel]);
    message.extend_from_slice(data);
    Message::Binary(message.freeze())
}

/// A successful command's `Status`, as upstream encodes it.
fn success() -> Bytes {
    Bytes::from_static(br#"{"metadata":{},"status":"Success"}"#)
}

/// Upstream's `InternalError` `Status` for a session that failed outside the command.
fn internal_error(message: &str) -> Bytes {
    let status = serde_json::json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    });
    Bytes::from(status.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn websocket_upgrades_offering_v5_or_v4_are_translated() {
        let ws = ("upgrade", "websocket");
        assert!(wanted(&headers(&[ws, ("sec-websocket-protocol", V5)])));
        assert!(wanted(&headers(&[ws, ("sec-websocket-protocol", "channel.k8s.io, v4.channel.k8s.io")])));
        assert!(!wanted(&headers(&[ws, ("sec-websocket-protocol", "channel.k8s.io, base64.channel.k8s.io")])));
        assert!(!wanted(&headers(&[("upgrade", "SPDY/3.1"), ("x-stream-protocol-version", V4)])));
    }

    #[test]
    fn statuses_are_upstreams() {
        let error: serde_json::Value = serde_json::from_slice(&internal_error("boom")).unwrap();
        assert_eq!(error["message"], "Internal error occurred: boom");
        assert_eq!((error["reason"].as_str(), error["code"].as_i64()), (Some("InternalError"), Some(500)));
        assert_eq!(&success()[..], br#"{"metadata":{},"status":"Success"}"#);
    }
}
