//! SPDY/3.1, the client side: what the kubelet speaks to the runtime's streaming server
//! (containerd's, which knows remote-command streams only over SPDY with
//! `v4.channel.k8s.io`) when it translates a WebSocket session for it.
//!
//! - [`connect`]: the HTTP/1.1 upgrade (`Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version`);
//! - [`Session`]: streams opened, data sent and half-closed, the server's frames as
//!   [`Event`]s;
//! - `frame`: the framing, `headers`: the zlib-compressed name/value blocks.

mod frame;
mod headers;
mod session;

use axum::body::Body;
use http::{StatusCode, Uri, header};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;

pub use self::headers::Headers;
pub use self::session::{Event, Outgoing, Session};

/// The header that offers and names the stream protocol on the upgrade.
pub const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("SPDY version {0} (only 3 is spoken)")]
    Version(u16),
    #[error("a malformed SPDY {frame} frame: {reason}")]
    Malformed { frame: &'static str, reason: &'static str },
    #[error("SPDY header compression: {0}")]
    Compression(String),
    #[error("the SPDY connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the SPDY connection is closed")]
    Closed,
    #[error("no stream ids left on the SPDY connection")]
    StreamsExhausted,
    #[error("runtime streaming URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("{0}")]
    Dial(String),
    #[error("upgrading to SPDY/3.1: {0}")]
    Upgrade(String),
    #[error("the streaming server answered {status}: {message}")]
    Refused { status: StatusCode, message: String },
    #[error("the streaming server chose stream protocol {chosen:?}, not {offered}")]
    Protocol { offered: &'static str, chosen: String },
}

/// Dials the runtime's streaming server at `url` and upgrades the connection to
/// SPDY/3.1 with the stream protocol `protocol`, which the server must choose. The
/// connection is returned as it is: a [`Session`] over it, or a tunnel's own client.
pub async fn connect(url: &str, protocol: &'static str) -> Result<TokioIo<Upgraded>, Error> {
    let target: Uri =
        url.parse().map_err(|e: http::uri::InvalidUri| Error::Url { url: url.to_owned(), message: e.to_string() })?;
    let mut sender = super::streams::dial(&target).await.map_err(Error::Dial)?;
    let authority = target.authority().map(|a| a.as_str()).unwrap_or_default();
    let request = http::Request::post(target.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(header::HOST, authority)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header(PROTOCOL_HEADER, protocol)
        .body(Body::empty())
        .map_err(|e| Error::Upgrade(e.to_string()))?;
    let mut response = sender.send_request(request).await.map_err(|e| Error::Upgrade(e.to_string()))?;
    let status = response.status();
    if status != StatusCode::SWITCHING_PROTOCOLS {
        let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 16).await.unwrap_or_default();
        return Err(Error::Refused { status, message: String::from_utf8_lossy(&body).trim().to_owned() });
    }
    let chosen = response.headers().get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if chosen != protocol {
        return Err(Error::Protocol { offered: protocol, chosen: chosen.to_owned() });
    }
    let upgraded = hyper::upgrade::on(&mut response).await.map_err(|e| Error::Upgrade(e.to_string()))?;
    Ok(TokioIo::new(upgraded))
}
