//! SPDY/3 framing (draft 3.1, §2.2): every frame has an 8-byte header. A control frame
//! starts with the control bit, the version (3) and its type; a data frame with its
//! stream; then 8 bits of flags and a 24-bit length, and the payload. [`Codec`] reads
//! and writes frames for tokio's `Framed`, compressing header blocks as it goes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::Error;
use super::headers::{Compressor, Decompressor, Headers};

pub const VERSION: u16 = 3;
/// The last frame on the stream from its sender (data and control frames alike).
const FLAG_FIN: u8 = 0x01;
/// SYN_STREAM: the receiver sends nothing on the stream.
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// SETTINGS: the receiver drops the settings it persisted.
const FLAG_CLEAR_SETTINGS: u8 = 0x01;
/// The largest payload a 24-bit length can carry.
pub const MAX_PAYLOAD: usize = (1 << 24) - 1;
const STREAM_MASK: u32 = 0x7fff_ffff;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// One SETTINGS entry: its flags, 24-bit id and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

/// A frame, its header blocks uncompressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Data { stream: u32, fin: bool, data: Bytes },
    SynStream { stream: u32, associated: u32, priority: u8, fin: bool, unidirectional: bool, headers: Headers },
    SynReply { stream: u32, fin: bool, headers: Headers },
    RstStream { stream: u32, status: u32 },
    Settings { clear: bool, entries: Vec<Setting> },
    Ping { id: u32 },
    GoAway { last_good: u32, status: u32 },
    Headers { stream: u32, fin: bool, headers: Headers },
    WindowUpdate { stream: u32, delta: u32 },
}

/// Reads and writes frames; one per direction of a connection is enough, as each keeps
/// the zlib stream of the header blocks it reads or writes.
pub struct Codec {
    compressor: Compressor,
    decompressor: Decompressor,
}

impl Codec {
    pub fn new() -> Result<Codec, Error> {
        Ok(Codec { compressor: Compressor::new()?, decompressor: Decompressor::new() })
    }

    fn header_block(&mut self, headers: &Headers) -> Result<Vec<u8>, Error> {
        let mut block = Vec::new();
        self.compressor.compress(headers, &mut block)?;
        Ok(block)
    }
}

impl Decoder for Codec {
    type Item = Frame;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        loop {
            if src.len() < 8 {
                return Ok(None);
            }
            let first = u32::from_be_bytes(src[..4].try_into().expect("four bytes"));
            let flags = src[4];
            let length = u32::from_be_bytes([0, src[5], src[6], src[7]]) as usize;
            if src.len() < 8 + length {
                src.reserve(8 + length - src.len());
                return Ok(None);
            }
            src.advance(8);
            let mut payload = src.split_to(length).freeze();
            if first & 0x8000_0000 == 0 {
                let stream = first & STREAM_MASK;
                return Ok(Some(Frame::Data { stream, fin: flags & FLAG_FIN != 0, data: payload }));
            }
            let version = ((first >> 16) & 0x7fff) as u16;
            if version != VERSION {
                return Err(Error::Version(version));
            }
            let kind = (first & 0xffff) as u16;
            if let Some(frame) = self.control(kind, flags, &mut payload)? {
                return Ok(Some(frame));
            }
            // An unknown control frame is ignored (§2.2.1).
            tracing::trace!(kind, "ignoring an unknown SPDY control frame");
        }
    }
}

impl Codec {
    fn control(&mut self, kind: u16, flags: u8, payload: &mut Bytes) -> Result<Option<Frame>, Error> {
        let fin = flags & FLAG_FIN != 0;
        let frame = match kind {
            SYN_STREAM => {
                need(payload, 10, "SYN_STREAM")?;
                let stream = payload.get_u32() & STREAM_MASK;
                let associated = payload.get_u32() & STREAM_MASK;
                let priority = payload.get_u8() >> 5;
                let _slot = payload.get_u8();
                let headers = self.decompressor.decompress(payload)?;
                let unidirectional = flags & FLAG_UNIDIRECTIONAL != 0;
                Frame::SynStream { stream, associated, priority, fin, unidirectional, headers }
            }
            SYN_REPLY => {
                need(payload, 4, "SYN_REPLY")?;
                let stream = payload.get_u32() & STREAM_MASK;
                Frame::SynReply { stream, fin, headers: self.decompressor.decompress(payload)? }
            }
            HEADERS => {
                need(payload, 4, "HEADERS")?;
                let stream = payload.get_u32() & STREAM_MASK;
                Frame::Headers { stream, fin, headers: self.decompressor.decompress(payload)? }
            }
            RST_STREAM => {
                exactly(payload, 8, "RST_STREAM")?;
                Frame::RstStream { stream: payload.get_u32() & STREAM_MASK, status: payload.get_u32() }
            }
            SETTINGS => {
                need(payload, 4, "SETTINGS")?;
                let count = payload.get_u32() as usize;
                exactly(payload, count.saturating_mul(8), "SETTINGS")?;
                let entries = (0..count)
                    .map(|_| {
                        let word = payload.get_u32();
                        Setting { flags: (word >> 24) as u8, id: word & 0x00ff_ffff, value: payload.get_u32() }
                    })
                    .collect();
                Frame::Settings { clear: flags & FLAG_CLEAR_SETTINGS != 0, entries }
            }
            PING => {
                exactly(payload, 4, "PING")?;
                Frame::Ping { id: payload.get_u32() }
            }
            GOAWAY => {
                exactly(payload, 8, "GOAWAY")?;
                Frame::GoAway { last_good: payload.get_u32() & STREAM_MASK, status: payload.get_u32() }
            }
            WINDOW_UPDATE => {
                exactly(payload, 8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate { stream: payload.get_u32() & STREAM_MASK, delta: payload.get_u32() & STREAM_MASK }
            }
            _ => return Ok(None),
        };
        Ok(Some(frame))
    }
}

fn need(payload: &Bytes, length: usize, frame: &'static str) -> Result<(), Error> {
    if payload.len() < length {
        return Err(Error::Malformed { frame, reason: "shorter than its fixed fields" });
    }
    Ok(())
}

fn exactly(payload: &Bytes, length: usize, frame: &'static str) -> Result<(), Error> {
    if payload.len() != length {
        return Err(Error::Malformed { frame, reason: "a length that does not match its fields" });
    }
    Ok(())
}

impl Encoder<Frame> for Codec {
    type Error = Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), Error> {
        let flag = |set: bool, bit: u8| if set { bit } else { 0 };
        let (kind, flags, payload) = match frame {
            Frame::Data { stream, fin, data } => {
                if data.len() > MAX_PAYLOAD {
                    return Err(Error::Malformed { frame: "DATA", reason: "a payload over 16 MiB" });
                }
                dst.reserve(8 + data.len());
                dst.put_u32(stream & STREAM_MASK);
                dst.put_u8(flag(fin, FLAG_FIN));
                put_length(dst, data.len());
                dst.put_slice(&data);
                return Ok(());
            }
            Frame::SynStream { stream, associated, priority, fin, unidirectional, headers } => {
                let mut payload = Vec::new();
                payload.put_u32(stream & STREAM_MASK);
                payload.put_u32(associated & STREAM_MASK);
                payload.put_u8((priority & 0x07) << 5);
                payload.put_u8(0);
                payload.extend(self.header_block(&headers)?);
                (SYN_STREAM, flag(fin, FLAG_FIN) | flag(unidirectional, FLAG_UNIDIRECTIONAL), payload)
            }
            Frame::SynReply { stream, fin, headers } => {
                let mut payload = (stream & STREAM_MASK).to_be_bytes().to_vec();
                payload.extend(self.header_block(&headers)?);
                (SYN_REPLY, flag(fin, FLAG_FIN), payload)
            }
            Frame::Headers { stream, fin, headers } => {
                let mut payload = (stream & STREAM_MASK).to_be_bytes().to_vec();
                payload.extend(self.header_block(&headers)?);
                (HEADERS, flag(fin, FLAG_FIN), payload)
            }
            Frame::RstStream { stream, status } => (RST_STREAM, 0, words(&[stream & STREAM_MASK, status])),
            Frame::Settings { clear, entries } => {
                let mut payload = (entries.len() as u32).to_be_bytes().to_vec();
                for entry in entries {
                    payload.put_u32(u32::from(entry.flags) << 24 | (entry.id & 0x00ff_ffff));
                    payload.put_u32(entry.value);
                }
                (SETTINGS, flag(clear, FLAG_CLEAR_SETTINGS), payload)
            }
            Frame::Ping { id } => (PING, 0, words(&[id])),
            Frame::GoAway { last_good, status } => (GOAWAY, 0, words(&[last_good & STREAM_MASK, status])),
            Frame::WindowUpdate { stream, delta } => {
                (WINDOW_UPDATE, 0, words(&[stream & STREAM_MASK, delta & STREAM_MASK]))
            }
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::Malformed { frame: "control", reason: "a payload over 16 MiB" });
        }
        dst.reserve(8 + payload.len());
        dst.put_u16(0x8000 | VERSION);
        dst.put_u16(kind);
        dst.put_u8(flags);
        put_length(dst, payload.len());
        dst.put_slice(&payload);
        Ok(())
    }
}

fn put_length(dst: &mut BytesMut, length: usize) {
    dst.put_slice(&(length as u32).to_be_bytes()[1..]);
}

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frames: Vec<Frame>) {
        let (mut writer, mut reader) = (Codec::new().unwrap(), Codec::new().unwrap());
        let mut wire = BytesMut::new();
        for frame in frames.clone() {
            writer.encode(frame, &mut wire).unwrap();
        }
        // Fed a byte at a time, the reader waits for whole frames.
        let mut input = BytesMut::new();
        let mut decoded = Vec::new();
        for byte in wire {
            input.put_u8(byte);
            while let Some(frame) = reader.decode(&mut input).unwrap() {
                decoded.push(frame);
            }
        }
        assert!(input.is_empty());
        assert_eq!(decoded, frames);
    }

    fn stream_type(kind: &str) -> Headers {
        vec![("streamtype".to_owned(), kind.to_owned())]
    }

    #[test]
    fn every_frame_round_trips() {
        round_trip(vec![
            Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: stream_type("error"),
            },
            Frame::SynStream {
                stream: 3,
                associated: 1,
                priority: 7,
                fin: true,
                unidirectional: true,
                headers: stream_type("stdin"),
            },
            Frame::SynReply { stream: 1, fin: false, headers: Vec::new() },
            Frame::Headers { stream: 3, fin: true, headers: stream_type("stdout") },
            Frame::Data { stream: 3, fin: false, data: Bytes::from_static(b"hello\n") },
            Frame::Data { stream: 3, fin: true, data: Bytes::new() },
            Frame::RstStream { stream: 5, status: 5 },
            Frame::Settings {
                clear: true,
                entries: vec![Setting { flags: 1, id: 7, value: 65536 }, Setting { flags: 0, id: 4, value: 100 }],
            },
            Frame::Ping { id: 2 },
            Frame::GoAway { last_good: 3, status: 0 },
            Frame::WindowUpdate { stream: 1, delta: 1 << 20 },
        ]);
    }

    #[test]
    fn frames_built_from_the_spec_decode() {
        let mut codec = Codec::new().unwrap();
        // DATA on stream 5 with FIN: no control bit, stream, flags 0x01, length 2, payload.
        let mut wire = BytesMut::from(&[0, 0, 0, 5, 0x01, 0, 0, 2, b'o', b'k'][..]);
        // PING 7: control bit, version 3, type 6, no flags, length 4, id.
        wire.put_slice(&[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 7]);
        // RST_STREAM on stream 3, CANCEL (5).
        wire.put_slice(&[0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 5]);
        // A CREDENTIAL frame (type 10), which this codec does not model, is skipped.
        wire.put_slice(&[0x80, 0x03, 0x00, 0x0a, 0, 0, 0, 2, 0xaa, 0xbb]);
        // GOAWAY, last good stream 1, status OK.
        wire.put_slice(&[0x80, 0x03, 0x00, 0x07, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0]);
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut wire).unwrap() {
            frames.push(frame);
        }
        assert_eq!(
            frames,
            vec![
                Frame::Data { stream: 5, fin: true, data: Bytes::from_static(b"ok") },
                Frame::Ping { id: 7 },
                Frame::RstStream { stream: 3, status: 5 },
                Frame::GoAway { last_good: 1, status: 0 },
            ]
        );
    }

    #[test]
    fn a_syn_reply_from_containerd_decodes() {
        // containerd 1.6's streaming server (moby/spdystream) replying to the first stream
        // of an exec: SYN_REPLY, stream 1, no flags, an empty header block that opens
        // the server's zlib stream.
        let mut wire = BytesMut::from(&CONTAINERD_SYN_REPLY[..]);
        let frame = Codec::new().unwrap().decode(&mut wire).unwrap();
        assert_eq!(frame, Some(Frame::SynReply { stream: 1, fin: false, headers: Vec::new() }));
    }

    /// Captured from containerd 1.6.20 (Debian 12) answering `waggle kubelet`: the zlib
    /// header (0x78 0xf9) names the SPDY/3 dictionary by its Adler-32, 0xe3c6a7c2.
    const CONTAINERD_SYN_REPLY: [u8; 28] = [
        0x80, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x01, 0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2,
        0x62, 0x60, 0x60, 0x60, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    ];

    #[test]
    fn other_versions_are_refused() {
        let mut wire = BytesMut::from(&[0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(matches!(Codec::new().unwrap().decode(&mut wire), Err(Error::Version(2))));
    }

    #[test]
    fn a_short_fixed_field_is_malformed() {
        let mut wire = BytesMut::from(&[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 2, 0, 1][..]);
        assert!(matches!(Codec::new().unwrap().decode(&mut wire), Err(Error::Malformed { frame: "PING", .. })));
    }
}
