//! The JSON lines netprobe prints, one object per line.

use std::{collections::BTreeMap, net::SocketAddr};

use serde::{Deserialize, Serialize};

/// First line of `netprobe serve`: where it listens (printed once all sockets are bound).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listening {
    pub id: String,
    pub tcp: Option<String>,
    pub udp: Option<String>,
}

/// Wrapper so the first line reads `{"listening":{...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListeningLine {
    pub listening: Listening,
}

/// What the server sends to each TCP connection and each UDP datagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Greeting {
    pub id: String,
    /// The client's address as the server saw it.
    pub peer: String,
    /// The server's local address of the connection / datagram.
    pub local: String,
    pub proto: String,
}

/// One client attempt (`netprobe tcp` / `netprobe udp`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub seq: u32,
    pub ok: bool,
    pub proto: String,
    /// The server's `--id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// getpeername() of the client socket (TCP, or connected UDP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_name: Option<String>,
    /// getsockname() of the client socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// UDP: the reply's source address as reported by recvfrom().
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The client address the server saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_saw: Option<String>,
    /// The server's local address for this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_local: Option<String>,
    /// Errno name (`ECONNREFUSED`, `ENETUNREACH`, `ETIMEDOUT`, ...) when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_us: u64,
}

/// How many attempts reached each server id (`--id`); panics on a failed attempt,
/// naming `context` and the attempt.
pub fn spread(attempts: &[Attempt], context: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for attempt in attempts {
        assert!(attempt.ok, "{context}: an attempt failed: {attempt:#?}");
        let id = attempt.id.clone().expect("a reply names its server");
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

impl Attempt {
    pub(crate) fn failed(seq: u32, proto: &str, error: String, elapsed_us: u64) -> Self {
        Self {
            seq,
            ok: false,
            proto: proto.to_owned(),
            error: Some(error),
            elapsed_us,
            ..Self::default()
        }
    }

    /// `server_saw` parsed as a socket address.
    pub fn server_saw_addr(&self) -> Option<SocketAddr> {
        self.server_saw.as_deref()?.parse().ok()
    }

    /// `peer_name` parsed as a socket address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_name.as_deref()?.parse().ok()
    }

    /// `from` parsed as a socket address.
    pub fn from_addr(&self) -> Option<SocketAddr> {
        self.from.as_deref()?.parse().ok()
    }
}

/// Formats an address the way netprobe prints it: IPv4-mapped IPv6 as plain IPv4.
pub fn show(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())).to_string(),
            None => addr.to_string(),
        },
        SocketAddr::V4(_) => addr.to_string(),
    }
}

/// The errno name of a failed read with a timeout: `ETIMEDOUT` when the timeout
/// expired (the kernel says `EAGAIN`), else as [`errno_name`].
pub fn read_error_name(error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::WouldBlock {
        "ETIMEDOUT".to_owned()
    } else {
        errno_name(error)
    }
}

/// The errno name of an I/O error (`ETIMEDOUT` for std's own connect timeout).
pub fn errno_name(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => format!("{:?}", nix::errno::Errno::from_raw(code)),
        None if error.kind() == std::io::ErrorKind::TimedOut => "ETIMEDOUT".to_owned(),
        None if error.kind() == std::io::ErrorKind::WouldBlock => "ETIMEDOUT".to_owned(),
        None => format!("{:?}", error.kind()),
    }
}
