//! SPDY/3 header blocks: a count of name/value pairs, each name and value prefixed by its
//! 32-bit length (a value's several parts joined by NUL), compressed with zlib primed with the
//! dictionary of the specification, one compression context per direction for the whole
//! session, each block ending on a sync flush.

use std::sync::LazyLock;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The most a decompressed header block may hold (spdystream's own bound).
const MAX_BLOCK_LEN: usize = 32 << 10;

/// A header block that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("SPDY header block does not inflate: {0}")]
    Inflate(String),
    #[error("SPDY header block is larger than {MAX_BLOCK_LEN} bytes")]
    TooLarge,
    #[error("SPDY header block is malformed")]
    Malformed,
}

/// Header names and values, names lowercase as SPDY sends them.
pub type Headers = Vec<(String, String)>;

/// The reading side's context.
pub struct Decoder {
    inflate: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            inflate: Decompress::new(true),
        }
    }
}

impl Decoder {
    /// Inflates the next block of the session and reads its pairs.
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, HeaderError> {
        let mut out = Vec::with_capacity(4 * block.len() + 64);
        let mut input = block;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_BLOCK_LEN {
                    return Err(HeaderError::TooLarge);
                }
                out.reserve(out.len());
            }
            let (before, written) = (self.inflate.total_in(), out.len());
            let result = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let consumed = usize::try_from(self.inflate.total_in() - before).expect("fits");
            input = &input[consumed..];
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) if input.is_empty() && out.len() < out.capacity() => break,
                Ok(_) if consumed == 0 && out.len() == written && out.len() < out.capacity() => {
                    return Err(HeaderError::Inflate("the block stops short".into()))
                }
                Ok(_) => {}
                Err(err) if err.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&DICTIONARY)
                        .map_err(|e| HeaderError::Inflate(e.to_string()))?;
                }
                Err(err) => return Err(HeaderError::Inflate(err.to_string())),
            }
        }
        parse_pairs(Bytes::from(out))
    }
}

fn parse_pairs(mut block: Bytes) -> Result<Headers, HeaderError> {
    let take = |block: &mut Bytes| -> Result<String, HeaderError> {
        if block.remaining() < 4 {
            return Err(HeaderError::Malformed);
        }
        let len = block.get_u32() as usize;
        if block.remaining() < len {
            return Err(HeaderError::Malformed);
        }
        String::from_utf8(block.split_to(len).to_vec()).map_err(|_| HeaderError::Malformed)
    };
    if block.remaining() < 4 {
        return Err(HeaderError::Malformed);
    }
    let count = block.get_u32();
    let mut headers = Vec::new();
    for _ in 0..count {
        let name = take(&mut block)?;
        let value = take(&mut block)?;
        headers.extend(value.split('\0').map(|v| (name.clone(), v.to_string())));
    }
    Ok(headers)
}

/// The writing side's context.
pub struct Encoder {
    deflate: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        deflate
            .set_dictionary(&DICTIONARY)
            .expect("a fresh deflate stream takes a dictionary");
        Encoder { deflate }
    }
}

impl Encoder {
    /// The next compressed block of the session, holding `headers`.
    pub fn encode(&mut self, headers: &[(&str, &str)]) -> Bytes {
        let mut plain = BytesMut::new();
        plain.put_u32(u32::try_from(headers.len()).expect("few headers"));
        for (name, value) in headers {
            for part in [name, value] {
                plain.put_u32(u32::try_from(part.len()).expect("short headers"));
                plain.put_slice(part.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut input = &plain[..];
        loop {
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate into memory");
            let consumed = usize::try_from(self.deflate.total_in() - before).expect("fits");
            input = &input[consumed..];
            // A sync flush is complete once it stops short of the output's end.
            if input.is_empty() && out.len() < out.capacity() {
                return Bytes::from(out);
            }
            out.reserve(out.capacity().max(64));
        }
    }
}

/// SPDY/3's zlib dictionary: length-prefixed header names and values, then common strings.
static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut dictionary = Vec::with_capacity(1423);
    for word in DICTIONARY_WORDS {
        dictionary.extend_from_slice(&u32::try_from(word.len()).expect("short").to_be_bytes());
        dictionary.extend_from_slice(word.as_bytes());
    }
    dictionary.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    dictionary
});

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

const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
    "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch",
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_the_specifications() {
        // Its length and Adler-32, which a zlib stream primed with it names in its header
        // (FDICT), as Go's and Chromium's SPDY stacks compute them.
        assert_eq!(DICTIONARY.len(), 1423);
        let block = Encoder::default().encode(&[]);
        assert_eq!(block[1] & 0x20, 0x20, "FDICT set");
        assert_eq!(&block[2..6], &0xe3c6_a7c2_u32.to_be_bytes());
    }

    #[test]
    fn blocks_of_one_session_decode_in_order() {
        let (mut encoder, mut decoder) = (Encoder::default(), Decoder::default());
        let first = encoder.encode(&[("streamtype", "error"), ("port", "7000")]);
        let second = encoder.encode(&[("streamtype", "data"), ("requestid", "0")]);
        let third = encoder.encode(&[]);
        assert_eq!(
            decoder.decode(&first).expect("first"),
            vec![
                ("streamtype".to_string(), "error".to_string()),
                ("port".into(), "7000".into())
            ]
        );
        assert_eq!(
            decoder.decode(&second).expect("second"),
            vec![
                ("streamtype".to_string(), "data".to_string()),
                ("requestid".into(), "0".into())
            ]
        );
        assert_eq!(decoder.decode(&third).expect("third"), vec![]);
    }

    #[test]
    fn a_value_of_several_parts_is_split_on_nul_and_garbage_is_an_error() {
        let mut plain = BytesMut::new();
        plain.put_u32(1);
        plain.put_u32(1);
        plain.put_slice(b"a");
        plain.put_u32(3);
        plain.put_slice(b"x\0y");
        assert_eq!(
            parse_pairs(plain.freeze()).expect("pairs"),
            vec![("a".to_string(), "x".to_string()), ("a".into(), "y".into())]
        );
        assert!(parse_pairs(Bytes::from_static(&[0, 0, 0, 2, 0, 0])).is_err());
        assert!(Decoder::default().decode(b"not zlib at all").is_err());
    }
}
