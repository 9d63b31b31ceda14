//! An HTTP/1.1 response parser for the load generator: incremental over the bytes a
//! connection has received (`AppIo::data()`), allocation-free, checking what a load generator
//! must to count a response as good: the status line, the body framing (Content-Length,
//! chunked, or the end of the connection; none for HEAD, 1xx, 204 and 304), and optionally
//! a CRC-32 of the body.

use memchr::memmem;

/// The longest response head taken (status line and fields), as nginx's default
/// `large_client_header_buffers` on the other side.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// The longest chunk-size line (with extensions).
const MAX_CHUNK_LINE: usize = 4096;

/// Why a response could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bad {
    StatusLine,
    Head,
    HeadTooLong,
    ContentLength,
    Chunk,
    /// The connection ended before the body did.
    Truncated,
}

impl Bad {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Bad::StatusLine => "bad status line",
            Bad::Head => "bad header field",
            Bad::HeadTooLong => "head longer than 16 KiB",
            Bad::ContentLength => "bad Content-Length",
            Bad::Chunk => "bad chunked encoding",
            Bad::Truncated => "connection closed inside a response",
        }
    }
}

/// A response read to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Done {
    pub status: u16,
    pub body_len: u64,
    /// CRC-32 (IEEE) of the body, when asked for.
    pub crc: Option<u32>,
    /// The server said `Connection: close` (or answered HTTP/1.0 without keep-alive).
    pub close: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Fixed(u64),
    /// Chunked: reading a size line.
    ChunkSize,
    /// Chunked: bytes left of the chunk.
    ChunkData(u64),
    /// Chunked: the CRLF after a chunk's data (bytes of it still expected).
    ChunkEnd(u8),
    /// Chunked: trailer fields, until an empty line.
    Trailers,
    /// The body ends when the connection does.
    UntilClose,
}

#[derive(Clone, Copy, Debug)]
enum State {
    Head,
    Body(Body),
}

/// One connection's parser state. `expect_head_response` marks the requests as HEAD (no body).
pub(crate) struct ResponseParser {
    state: State,
    /// Bytes of `data()` already searched for the end of the head.
    scanned: usize,
    status: u16,
    close: bool,
    body_len: u64,
    crc: Option<crc32fast::Hasher>,
    want_crc: bool,
    head_request: bool,
}

impl ResponseParser {
    pub(crate) fn new(head_request: bool, want_crc: bool) -> Self {
        ResponseParser {
            state: State::Head,
            scanned: 0,
            status: 0,
            close: false,
            body_len: 0,
            crc: None,
            want_crc,
            head_request,
        }
    }

    /// Whether a response has begun (bytes of it were taken).
    pub(crate) fn in_response(&self) -> bool {
        !matches!(self.state, State::Head) || self.scanned > 0
    }

    /// Reads from `data` (the unconsumed received bytes). Returns how many bytes to consume and
    /// the response that ended, if one did; call again with the rest while both are nonzero.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<Done>), Bad> {
        match self.state {
            State::Head => self.head(data),
            State::Body(b) => self.body(b, data),
        }
    }

    /// The peer closed: a body delimited by the close ends here; anything else begun is cut.
    pub(crate) fn at_eof(&mut self) -> Result<Option<Done>, Bad> {
        match self.state {
            State::Body(Body::UntilClose) => Ok(Some(self.finish())),
            State::Head if self.scanned == 0 => Ok(None),
            _ => Err(Bad::Truncated),
        }
    }

    fn finish(&mut self) -> Done {
        let d = Done {
            status: self.status,
            body_len: self.body_len,
            crc: self.crc.take().map(|h| h.finalize()),
            close: self.close,
        };
        self.state = State::Head;
        self.scanned = 0;
        self.body_len = 0;
        d
    }

    fn head(&mut self, data: &[u8]) -> Result<(usize, Option<Done>), Bad> {
        let from = self.scanned.saturating_sub(3);
        let Some(at) = memmem::find(&data[from..], b"\r\n\r\n") else {
            self.scanned = data.len();
            if data.len() > MAX_HEAD {
                return Err(Bad::HeadTooLong);
            }
            return Ok((0, None));
        };
        let end = from + at + 4;
        if end > MAX_HEAD {
            return Err(Bad::HeadTooLong);
        }
        let head = &data[..end - 4];
        let mut lines = head.split(|&b| b == b'\n');
        let status_line = lines.next().unwrap_or_default();
        let status_line = status_line.strip_suffix(b"\r").unwrap_or(status_line);
        // "HTTP/1.1 200 OK": version, space, three digits, then a space or the end.
        if status_line.len() < 12
            || !status_line.starts_with(b"HTTP/1.")
            || status_line[8] != b' '
            || (status_line.len() > 12 && status_line[12] != b' ')
            || !status_line[9..12].iter().all(u8::is_ascii_digit)
        {
            return Err(Bad::StatusLine);
        }
        let minor = status_line[7];
        let status = status_line[9..12]
            .iter()
            .fold(0u16, |a, d| a * 10 + (d - b'0') as u16);
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut close = minor == b'0';
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(Bad::Head);
            };
            let name = &line[..colon];
            if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
                return Err(Bad::Head);
            }
            let value = line[colon + 1..].trim_ascii();
            if name.eq_ignore_ascii_case(b"content-length") {
                if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                    return Err(Bad::ContentLength);
                }
                let n = value.iter().fold(0u64, |a, d| a * 10 + (d - b'0') as u64);
                if length.is_some_and(|l| l != n) {
                    return Err(Bad::ContentLength);
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                // The last coding decides (RFC 9112 6.3).
                let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
                chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in value.split(|&b| b == b',') {
                    let t = token.trim_ascii();
                    if t.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") && minor == b'0' {
                        close = false;
                    }
                }
            }
        }
        self.scanned = 0;
        if (100..200).contains(&status) && status != 101 {
            // An interim response: the final one follows.
            return Ok((end, None));
        }
        self.status = status;
        self.close = close;
        self.body_len = 0;
        self.crc = self.want_crc.then(crc32fast::Hasher::new);
        let no_body = self.head_request || status == 204 || status == 304 || status == 101;
        let body = if no_body {
            Body::Fixed(0)
        } else if chunked {
            Body::ChunkSize
        } else if let Some(n) = length {
            Body::Fixed(n)
        } else {
            self.close = true;
            Body::UntilClose
        };
        if body == Body::Fixed(0) {
            return Ok((end, Some(self.finish())));
        }
        self.state = State::Body(body);
        Ok((end, None))
    }

    fn take(&mut self, bytes: &[u8]) {
        self.body_len += bytes.len() as u64;
        if let Some(h) = &mut self.crc {
            h.update(bytes);
        }
    }

    fn body(&mut self, b: Body, data: &[u8]) -> Result<(usize, Option<Done>), Bad> {
        match b {
            Body::Fixed(left) => {
                let n = (left.min(data.len() as u64)) as usize;
                self.take(&data[..n]);
                if n as u64 == left {
                    return Ok((n, Some(self.finish())));
                }
                self.state = State::Body(Body::Fixed(left - n as u64));
                Ok((n, None))
            }
            Body::UntilClose => {
                self.take(data);
                Ok((data.len(), None))
            }
            Body::ChunkSize => {
                let Some(nl) = memchr::memchr(b'\n', data) else {
                    if data.len() > MAX_CHUNK_LINE {
                        return Err(Bad::Chunk);
                    }
                    return Ok((0, None));
                };
                let line = &data[..nl];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let digits = line
                    .iter()
                    .position(|&b| b == b';' || b == b' ' || b == b'\t')
                    .map_or(line, |i| &line[..i]);
                if digits.is_empty() || digits.len() > 15 {
                    return Err(Bad::Chunk);
                }
                let mut size = 0u64;
                for &d in digits {
                    let v = (d as char).to_digit(16).ok_or(Bad::Chunk)?;
                    size = size * 16 + v as u64;
                }
                self.state = State::Body(if size == 0 {
                    Body::Trailers
                } else {
                    Body::ChunkData(size)
                });
                Ok((nl + 1, None))
            }
            Body::ChunkData(left) => {
                let n = (left.min(data.len() as u64)) as usize;
                self.take(&data[..n]);
                self.state = State::Body(if n as u64 == left {
                    Body::ChunkEnd(2)
                } else {
                    Body::ChunkData(left - n as u64)
                });
                Ok((n, None))
            }
            Body::ChunkEnd(left) => {
                let mut used = 0;
                let mut left = left;
                while left > 0 && used < data.len() {
                    let want = if left == 2 { b'\r' } else { b'\n' };
                    if data[used] != want {
                        return Err(Bad::Chunk);
                    }
                    used += 1;
                    left -= 1;
                }
                self.state = State::Body(if left == 0 {
                    Body::ChunkSize
                } else {
                    Body::ChunkEnd(left)
                });
                Ok((used, None))
            }
            Body::Trailers => {
                let Some(nl) = memchr::memchr(b'\n', data) else {
                    if data.len() > MAX_HEAD {
                        return Err(Bad::Chunk);
                    }
                    return Ok((0, None));
                };
                let line = &data[..nl];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    return Ok((nl + 1, Some(self.finish())));
                }
                Ok((nl + 1, None))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes, as segments would bring it, and returns the
    /// responses read.
    fn run(input: &[u8], step: usize, head: bool, crc: bool) -> Result<Vec<Done>, Bad> {
        let mut p = ResponseParser::new(head, crc);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                let (used, done) = p.feed(&buf)?;
                buf.drain(..used);
                if let Some(d) = done {
                    out.push(d);
                }
                if used == 0 || buf.is_empty() {
                    break;
                }
            }
        }
        if let Some(d) = p.at_eof()? {
            out.push(d);
        }
        Ok(out)
    }

    #[test]
    fn content_length_pipelined_in_any_split() {
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
        let mut input = Vec::new();
        for _ in 0..3 {
            input.extend_from_slice(one);
        }
        for step in [1, 2, 7, 50, 1000] {
            let out = run(&input, step, false, true).unwrap();
            assert_eq!(out.len(), 3, "step {step}");
            for d in out {
                assert_eq!((d.status, d.body_len, d.close), (200, 5, false));
                assert_eq!(d.crc, Some(crc32fast::hash(b"hello")));
            }
        }
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
                      5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n\
                      HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        for step in [1, 3, 1000] {
            let out = run(input, step, false, true).unwrap();
            assert_eq!(out.len(), 2);
            assert_eq!(out[0].body_len, 11);
            assert_eq!(out[0].crc, Some(crc32fast::hash(b"hello world")));
            assert_eq!(out[1].status, 404);
        }
    }

    #[test]
    fn interim_no_body_and_close_delimited() {
        let input =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n\
                      HTTP/1.1 204 No Content\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil the end";
        let out = run(input, 4, false, false).unwrap();
        assert_eq!(
            out.iter()
                .map(|d| (d.status, d.body_len))
                .collect::<Vec<_>>(),
            vec![(304, 0), (204, 0), (200, 13)]
        );
        assert!(out[2].close);
        // HEAD: no body whatever Content-Length says.
        let out = run(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            5,
            true,
            false,
        )
        .unwrap();
        assert_eq!((out[0].status, out[0].body_len), (200, 0));
        // Connection: close is reported.
        let out = run(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
            100,
            false,
            false,
        )
        .unwrap();
        assert!(out[0].close);
    }

    #[test]
    fn bad_responses_are_named() {
        let cases: [(&[u8], Bad); 6] = [
            (b"HTTP/2 200 OK\r\n\r\n", Bad::StatusLine),
            (b"HTTP/1.1 2x0 OK\r\n\r\n", Bad::StatusLine),
            (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", Bad::Head),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                Bad::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                Bad::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                Bad::Chunk,
            ),
        ];
        for (input, why) in cases {
            assert_eq!(
                run(input, 1000, false, false).unwrap_err(),
                why,
                "{input:?}"
            );
        }
        assert_eq!(
            run(
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                1000,
                false,
                false
            )
            .unwrap_err(),
            Bad::Truncated
        );
        let long = [b'a'; MAX_HEAD + 10];
        assert_eq!(
            run(&long, 4096, false, false).unwrap_err(),
            Bad::HeadTooLong
        );
    }
}
