//! The client side of a SPDY/3.1 connection, as much as a remote-command client needs:
//! it opens streams (odd ids, from 1), sends data and half-closes them, answers the
//! server's PINGs, and reports what the server sends. Writes go through one task, so
//! the reader and any number of [`Outgoing`] handles share the connection. Flow
//! control is not enforced: the runtime's server (moby/spdystream) neither sends nor
//! honours WINDOW_UPDATE.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::frame::{Codec, Frame, MAX_PAYLOAD};
use super::{Error, Headers};

/// What the server sent on a stream or the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The server accepted the stream; with `fin`, it will send nothing on it.
    Replied {
        stream: u32,
        fin: bool,
    },
    Data {
        stream: u32,
        data: Bytes,
        fin: bool,
    },
    Reset {
        stream: u32,
        status: u32,
    },
    /// The server takes no new streams; those up to `last_good` go on.
    GoAway {
        last_good: u32,
        status: u32,
    },
}

/// A handle that sends on the connection's streams.
#[derive(Clone)]
pub struct Outgoing(mpsc::Sender<Frame>);

impl Outgoing {
    /// Sends `data` on `stream`, half-closing it after with `fin`.
    pub async fn data(&self, stream: u32, data: Bytes, fin: bool) -> Result<(), Error> {
        let mut rest = data;
        loop {
            let chunk = rest.split_to(rest.len().min(MAX_PAYLOAD));
            let last = rest.is_empty();
            self.send(Frame::Data { stream, fin: fin && last, data: chunk }).await?;
            if last {
                return Ok(());
            }
        }
    }

    async fn send(&self, frame: Frame) -> Result<(), Error> {
        self.0.send(frame).await.map_err(|_| Error::Closed)
    }
}

/// A client connection over an upgraded transport.
pub struct Session<T> {
    frames: FramedRead<ReadHalf<T>, Codec>,
    outgoing: Outgoing,
    next_stream: u32,
}

impl<T: AsyncRead + AsyncWrite + Send + 'static> Session<T> {
    /// Starts the session on `io`; the writing task ends when the session and every
    /// [`Outgoing`] handle are gone, shutting the transport's write side.
    pub fn new(io: T) -> Result<Session<T>, Error> {
        let (read, write) = tokio::io::split(io);
        let (sender, mut queue) = mpsc::channel::<Frame>(16);
        let mut sink = FramedWrite::new(write, Codec::new()?);
        tokio::spawn(async move {
            while let Some(frame) = queue.recv().await {
                if let Err(e) = sink.send(frame).await {
                    tracing::debug!(error = %e, "writing to the SPDY connection");
                    return;
                }
            }
            let _ = sink.close().await;
        });
        Ok(Session { frames: FramedRead::new(read, Codec::new()?), outgoing: Outgoing(sender), next_stream: 1 })
    }
}

impl<T: AsyncRead> Session<T> {
    pub fn outgoing(&self) -> Outgoing {
        self.outgoing.clone()
    }

    /// Opens a stream with `headers` (SYN_STREAM) and returns its id; the server's
    /// answer comes as [`Event::Replied`] or [`Event::Reset`].
    pub async fn open(&mut self, headers: Headers) -> Result<u32, Error> {
        let stream = self.next_stream;
        if stream > 0x7fff_ffff {
            return Err(Error::StreamsExhausted);
        }
        self.next_stream += 2;
        let frame = Frame::SynStream { stream, associated: 0, priority: 0, fin: false, unidirectional: false, headers };
        self.outgoing.send(frame).await?;
        Ok(stream)
    }

    /// The next event, or `None` once the server closed the connection.
    pub async fn next(&mut self) -> Result<Option<Event>, Error> {
        loop {
            let Some(frame) = self.frames.next().await.transpose()? else {
                return Ok(None);
            };
            let event = match frame {
                Frame::SynReply { stream, fin, .. } => Event::Replied { stream, fin },
                Frame::Data { stream, fin, data } => Event::Data { stream, data, fin },
                Frame::RstStream { stream, status } => Event::Reset { stream, status },
                Frame::GoAway { last_good, status } => Event::GoAway { last_good, status },
                // Even ids are the server's pings, echoed back; odd ones would answer ours.
                Frame::Ping { id } if id % 2 == 0 => {
                    self.outgoing.send(Frame::Ping { id }).await?;
                    continue;
                }
                // A client is never pushed streams (§3.3): refuse them.
                Frame::SynStream { stream, .. } => {
                    self.outgoing.send(Frame::RstStream { stream, status: REFUSED_STREAM }).await?;
                    continue;
                }
                other => {
                    tracing::trace!(frame = ?other, "ignoring a SPDY frame");
                    continue;
                }
            };
            return Ok(Some(event));
        }
    }
}

/// RST_STREAM's REFUSED_STREAM status.
const REFUSED_STREAM: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's side of the connection, spoken with the same codec.
    fn server(io: tokio::io::DuplexStream) -> tokio_util::codec::Framed<tokio::io::DuplexStream, Codec> {
        tokio_util::codec::Framed::new(io, Codec::new().unwrap())
    }

    #[tokio::test]
    async fn streams_open_carry_data_both_ways_and_half_close() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let mut session = Session::new(client_io).unwrap();
        let mut server = server(server_io);

        let stdin = session.open(vec![("streamtype".into(), "stdin".into())]).await.unwrap();
        let stdout = session.open(vec![("streamtype".into(), "stdout".into())]).await.unwrap();
        assert_eq!((stdin, stdout), (1, 3));
        for (id, kind) in [(1, "stdin"), (3, "stdout")] {
            let Some(Ok(Frame::SynStream { stream, headers, .. })) = server.next().await else {
                panic!("a SYN_STREAM")
            };
            assert_eq!((stream, headers), (id, vec![("streamtype".to_owned(), kind.to_owned())]));
            server.send(Frame::SynReply { stream, fin: false, headers: Vec::new() }).await.unwrap();
        }
        assert_eq!(session.next().await.unwrap(), Some(Event::Replied { stream: 1, fin: false }));
        assert_eq!(session.next().await.unwrap(), Some(Event::Replied { stream: 3, fin: false }));

        session.outgoing().data(stdin, Bytes::from_static(b"input"), true).await.unwrap();
        let frame = server.next().await.unwrap().unwrap();
        assert_eq!(frame, Frame::Data { stream: 1, fin: true, data: Bytes::from_static(b"input") });

        // The server's ping is answered, not reported; its data and reset are.
        server.send(Frame::Ping { id: 2 }).await.unwrap();
        server.send(Frame::Data { stream: 3, fin: true, data: Bytes::from_static(b"output") }).await.unwrap();
        server.send(Frame::RstStream { stream: 1, status: 5 }).await.unwrap();
        let data = Event::Data { stream: 3, data: Bytes::from_static(b"output"), fin: true };
        assert_eq!(session.next().await.unwrap(), Some(data));
        assert_eq!(server.next().await.unwrap().unwrap(), Frame::Ping { id: 2 });
        assert_eq!(session.next().await.unwrap(), Some(Event::Reset { stream: 1, status: 5 }));

        drop(server);
        assert_eq!(session.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_pushed_stream_is_refused() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let mut session = Session::new(client_io).unwrap();
        let mut server = server(server_io);
        let push = Frame::SynStream {
            stream: 2,
            associated: 0,
            priority: 0,
            fin: false,
            unidirectional: true,
            headers: vec![],
        };
        server.send(push).await.unwrap();
        server.send(Frame::GoAway { last_good: 0, status: 0 }).await.unwrap();
        assert_eq!(session.next().await.unwrap(), Some(Event::GoAway { last_good: 0, status: 0 }));
        assert_eq!(server.next().await.unwrap().unwrap(), Frame::RstStream { stream: 2, status: REFUSED_STREAM });
    }
}
