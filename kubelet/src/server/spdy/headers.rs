//! SPDY/3 name/value header blocks (draft 3.1, §2.6.10): a 32-bit count, then each
//! name and value prefixed with its 32-bit length, compressed with zlib seeded with the
//! protocol's dictionary. Each direction of a connection is one zlib stream: a block
//! continues the previous one and ends with a sync flush, so each side keeps one
//! compressor and one decompressor for the connection's lifetime.

use std::sync::LazyLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::Error;

/// A header block: lowercase names, each with its value (several values of one name
/// are joined with NUL, as on the wire).
pub type Headers = Vec<(String, String)>;

/// The largest decompressed block accepted; the streams' blocks hold one header.
const MAX_BLOCK: usize = 1 << 20;

/// The words that open the SPDY/3 dictionary (§2.6.10.1), each with its 32-bit length
/// before it in the dictionary.
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The text that closes the dictionary, as it is (no length prefixes).
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
    "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch",
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 zlib dictionary, byte for byte: both sides must seed zlib with the same.
pub(super) static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut dictionary = Vec::with_capacity(1423);
    for word in DICTIONARY_WORDS {
        dictionary.extend_from_slice(&(word.len() as u32).to_be_bytes());
        dictionary.extend_from_slice(word.as_bytes());
    }
    dictionary.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    dictionary
});

/// Compresses the blocks one side sends.
pub(super) struct Compressor {
    zlib: Compress,
}

impl Compressor {
    pub(super) fn new() -> Result<Compressor, Error> {
        let mut zlib = Compress::new(Compression::default(), true);
        zlib.set_dictionary(&DICTIONARY).map_err(|e| Error::Compression(e.to_string()))?;
        Ok(Compressor { zlib })
    }

    /// Appends `headers`, compressed and sync-flushed, to `out`.
    pub(super) fn compress(&mut self, headers: &[(String, String)], out: &mut Vec<u8>) -> Result<(), Error> {
        let block = encode_block(headers)?;
        let mut input = block.as_slice();
        loop {
            out.reserve(input.len() + 64);
            let before = self.zlib.total_in();
            self.zlib.compress_vec(input, out, FlushCompress::Sync).map_err(|e| Error::Compression(e.to_string()))?;
            input = &input[(self.zlib.total_in() - before) as usize..];
            // The flush is complete once zlib stops short of filling the output.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// Decompresses the blocks the other side sends.
pub(super) struct Decompressor {
    zlib: Decompress,
}

impl Decompressor {
    pub(super) fn new() -> Decompressor {
        Decompressor { zlib: Decompress::new(true) }
    }

    /// The headers of one compressed block.
    pub(super) fn decompress(&mut self, compressed: &[u8]) -> Result<Headers, Error> {
        let mut out = Vec::with_capacity(compressed.len() * 4 + 64);
        let mut input = compressed;
        loop {
            let (before_in, before_out) = (self.zlib.total_in(), self.zlib.total_out());
            let result = self.zlib.decompress_vec(input, &mut out, FlushDecompress::Sync);
            input = &input[(self.zlib.total_in() - before_in) as usize..];
            let progressed = self.zlib.total_in() != before_in || self.zlib.total_out() != before_out;
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) if input.is_empty() && out.len() < out.capacity() => break,
                Ok(_) if !progressed && out.len() < out.capacity() => {
                    return Err(Error::Compression("a truncated header block".into()));
                }
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib.set_dictionary(&DICTIONARY).map_err(|e| Error::Compression(e.to_string()))?;
                }
                Err(e) => return Err(Error::Compression(e.to_string())),
            }
            if out.len() == out.capacity() {
                if out.len() >= MAX_BLOCK {
                    return Err(Error::Compression(format!("a header block over {MAX_BLOCK} bytes")));
                }
                out.reserve(out.capacity());
            }
        }
        parse_block(&out)
    }
}

fn encode_block(headers: &[(String, String)]) -> Result<Vec<u8>, Error> {
    let length = |s: &str| {
        u32::try_from(s.len()).map(u32::to_be_bytes).map_err(|_| Error::Compression("a header over 4 GiB".into()))
    };
    let mut block = Vec::new();
    block.extend_from_slice(&length_of(headers.len())?.to_be_bytes());
    for (name, value) in headers {
        block.extend_from_slice(&length(name)?);
        block.extend_from_slice(name.as_bytes());
        block.extend_from_slice(&length(value)?);
        block.extend_from_slice(value.as_bytes());
    }
    Ok(block)
}

fn length_of(count: usize) -> Result<u32, Error> {
    u32::try_from(count).map_err(|_| Error::Compression("too many headers".into()))
}

fn parse_block(block: &[u8]) -> Result<Headers, Error> {
    let mut cursor = Cursor(block);
    let count = cursor.length()?;
    let mut headers = Headers::new();
    for _ in 0..count {
        let name = cursor.word()?;
        let value = cursor.word()?;
        headers.push((name, value));
    }
    Ok(headers)
}

/// Reads a decompressed block front to back.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.0.len() < n {
            return Err(Error::Compression("a header block shorter than its lengths".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn length(&mut self) -> Result<usize, Error> {
        let bytes: [u8; 4] = self.take(4)?.try_into().expect("four bytes");
        Ok(u32::from_be_bytes(bytes) as usize)
    }

    fn word(&mut self) -> Result<String, Error> {
        let length = self.length()?;
        String::from_utf8(self.take(length)?.to_vec())
            .map_err(|_| Error::Compression("a header that is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_dictionary_is_the_specs() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert_eq!(&DICTIONARY[..11], b"\0\0\0\x07options");
        // The Adler-32 every SPDY/3 header stream names its dictionary by.
        let adler = Compress::new(Compression::default(), true).set_dictionary(&DICTIONARY).unwrap();
        assert_eq!(adler, 0xe3c6a7c2);
        assert!(DICTIONARY.ends_with(b"utf-,*,enq=0."));
    }

    #[test]
    fn blocks_round_trip_through_one_zlib_stream() {
        let (mut compressor, mut decompressor) = (Compressor::new().unwrap(), Decompressor::new());
        let blocks = [
            headers(&[("streamtype", "error")]),
            headers(&[("streamtype", "stdin")]),
            headers(&[]),
            headers(&[("streamtype", "stdout"), ("x-many", "a\0b")]),
        ];
        for block in &blocks {
            let mut wire = Vec::new();
            compressor.compress(block, &mut wire).unwrap();
            assert_eq!(&decompressor.decompress(&wire).unwrap(), block);
        }
    }

    #[test]
    fn a_large_block_round_trips() {
        let value: String = (0..200_000).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
        let block = headers(&[("x-large", &value)]);
        let mut wire = Vec::new();
        Compressor::new().unwrap().compress(&block, &mut wire).unwrap();
        assert_eq!(Decompressor::new().decompress(&wire).unwrap(), block);
    }

    #[test]
    fn blocks_from_another_zlib_decode() {
        // Made with CPython's zlib (the C library), not this module:
        // c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, zdict), then
        // c.compress(block) + c.flush(zlib.Z_SYNC_FLUSH) for each block. The header names the
        // dictionary by its Adler-32, 0xe3c6a7c2.
        let first = [
            0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xa6, 0x23, 0x46, 0x70, 0x3a, 0x2b, 0x29, 0x4a, 0x4d, 0xcc, 0x85,
            0x16, 0x25, 0xac, 0xa9, 0xa0, 0x80, 0x06, 0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let second = [0xc2, 0x2e, 0x55, 0x5c, 0x02, 0xcc, 0x2e, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff];
        let mut decompressor = Decompressor::new();
        assert_eq!(decompressor.decompress(&first).unwrap(), headers(&[("streamtype", "error")]));
        assert_eq!(decompressor.decompress(&second).unwrap(), headers(&[("streamtype", "stdin")]));
    }

    #[test]
    fn a_corrupt_block_is_an_error() {
        let mut wire = Vec::new();
        Compressor::new().unwrap().compress(&headers(&[("streamtype", "stdout")]), &mut wire).unwrap();
        wire[8] ^= 0xff;
        assert!(Decompressor::new().decompress(&wire).is_err());
    }
}
