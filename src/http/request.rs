//! Requests: RFC 9112 (HTTP/1.1 message syntax and framing) with the field rules of RFC 9110.
//!
//! Parsing happens in three steps, none of which copies or allocates:
//! 1. [`HeadScanner`] finds where the head (request line + header fields + empty line) ends in
//!    the bytes received so far, resuming where it stopped on the previous read, and enforces
//!    the size limits (414, 431) and line endings before the head is complete.
//! 2. [`parse_head`] checks the complete head and extracts what the server acts on: method,
//!    target, version, persistence, body framing ([`RequestHead`]).
//! 3. [`BodyReader`] skips the body (Content-Length or chunked) as it streams in.
//!
//! [`request_path`] and [`normalize_path`] turn a target into a lookup key for
//! [`super::content::Content`].

use super::response::StatusCode;

/// Why a request was refused. Each has a status, and all of them end the connection: after
/// these the server cannot trust where the next request would begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestError {
    /// The method is not a token (RFC 9110 9.1), or the request line is empty.
    BadMethod,
    /// The request line is not `method SP target SP version` (RFC 9112 3).
    BadRequestLine,
    /// The target has a character outside VCHAR, a bad `%XX`, an encoded NUL, is not in origin
    /// or absolute form for GET/HEAD (RFC 9112 3.2), or climbs above the root with `..`.
    BadTarget,
    /// The version is not `HTTP/DIGIT.DIGIT` (RFC 9112 2.3).
    BadVersion,
    /// A major version other than 1 (RFC 9110 15.6.6): 505.
    VersionNotSupported,
    /// A line ends in LF without CR, or a CR is not followed by LF (RFC 9112 2.2).
    BadLineEnding,
    /// A header line without a colon, or a field name that is not a token (RFC 9112 5).
    BadHeaderName,
    /// Whitespace between the field name and the colon (RFC 9112 5.1: MUST reject with 400).
    WhitespaceBeforeColon,
    /// A header line that starts with whitespace (obs-fold, RFC 9112 5.2).
    ObsFold,
    /// A control character in a field value (RFC 9110 5.5).
    BadHeaderValue,
    /// Content-Length is not a decimal number, or not one that fits (RFC 9110 8.6).
    BadContentLength,
    /// Several different Content-Length values (RFC 9112 6.3 item 5).
    ConflictingContentLength,
    /// Both Transfer-Encoding and Content-Length (RFC 9112 6.1: a server MAY reject).
    TransferEncodingWithLength,
    /// Transfer-Encoding in an HTTP/1.0 request (RFC 9112 6.1: framing is faulty).
    TransferEncodingInHttp10,
    /// A transfer coding other than a single `chunked`, with chunked last (RFC 9112 6.1): 501.
    UnsupportedTransferEncoding,
    /// Transfer-Encoding whose final coding is not chunked (RFC 9112 6.3 item 4: the body's
    /// length cannot be known; MUST 400 and close).
    ChunkedNotLast,
    /// An HTTP/1.1 request without Host (RFC 9112 3.2: MUST 400).
    MissingHost,
    /// More than one Host field line, or an invalid Host value (RFC 9112 3.2: MUST 400).
    BadHost,
    /// Malformed chunked framing (RFC 9112 7.1).
    BadChunk,
    /// A body larger than the configured limit: 413.
    BodyTooLarge,
    /// A request line longer than the configured limit: 414.
    UriTooLong,
    /// A head larger than the configured limit (or than the receive buffer): 431.
    HeadTooLarge,
    /// The worker's memory for bodies being collected is used up
    /// ([`HttpConfig::max_body_memory`](super::HttpConfig::max_body_memory)): 503.
    BodyMemory,
}

impl RequestError {
    /// Number of reasons.
    pub const COUNT: usize = 23;
    /// Every reason, in [`RequestError::index`] order.
    pub const ALL: [RequestError; Self::COUNT] = [
        RequestError::BadMethod,
        RequestError::BadRequestLine,
        RequestError::BadTarget,
        RequestError::BadVersion,
        RequestError::VersionNotSupported,
        RequestError::BadLineEnding,
        RequestError::BadHeaderName,
        RequestError::WhitespaceBeforeColon,
        RequestError::ObsFold,
        RequestError::BadHeaderValue,
        RequestError::BadContentLength,
        RequestError::ConflictingContentLength,
        RequestError::TransferEncodingWithLength,
        RequestError::TransferEncodingInHttp10,
        RequestError::UnsupportedTransferEncoding,
        RequestError::ChunkedNotLast,
        RequestError::MissingHost,
        RequestError::BadHost,
        RequestError::BadChunk,
        RequestError::BodyTooLarge,
        RequestError::UriTooLong,
        RequestError::HeadTooLarge,
        RequestError::BodyMemory,
    ];

    /// Position in [`RequestError::ALL`] (for per-reason counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The status of the error answer.
    pub fn status(self) -> StatusCode {
        match self {
            RequestError::VersionNotSupported => StatusCode::VERSION_NOT_SUPPORTED,
            RequestError::UnsupportedTransferEncoding => StatusCode::NOT_IMPLEMENTED,
            RequestError::BodyTooLarge => StatusCode::CONTENT_TOO_LARGE,
            RequestError::UriTooLong => StatusCode::URI_TOO_LONG,
            RequestError::HeadTooLarge => StatusCode::HEADER_FIELDS_TOO_LARGE,
            RequestError::BodyMemory => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short name, for counters and logs (`bad-method`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RequestError::BadMethod => "bad-method",
            RequestError::BadRequestLine => "bad-request-line",
            RequestError::BadTarget => "bad-target",
            RequestError::BadVersion => "bad-version",
            RequestError::VersionNotSupported => "version-not-supported",
            RequestError::BadLineEnding => "bad-line-ending",
            RequestError::BadHeaderName => "bad-header-name",
            RequestError::WhitespaceBeforeColon => "whitespace-before-colon",
            RequestError::ObsFold => "obs-fold",
            RequestError::BadHeaderValue => "bad-header-value",
            RequestError::BadContentLength => "bad-content-length",
            RequestError::ConflictingContentLength => "conflicting-content-length",
            RequestError::TransferEncodingWithLength => "transfer-encoding-with-length",
            RequestError::TransferEncodingInHttp10 => "transfer-encoding-in-http10",
            RequestError::UnsupportedTransferEncoding => "unsupported-transfer-encoding",
            RequestError::ChunkedNotLast => "chunked-not-last",
            RequestError::MissingHost => "missing-host",
            RequestError::BadHost => "bad-host",
            RequestError::BadChunk => "bad-chunk",
            RequestError::BodyTooLarge => "body-too-large",
            RequestError::UriTooLong => "uri-too-long",
            RequestError::HeadTooLarge => "head-too-large",
            RequestError::BodyMemory => "body-memory",
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Character classes, one bit each, looked up in [`CLASSES`] (a per-byte table: these checks
/// run on every byte of every head).
const TCHAR: u8 = 1;
const FIELD_VALUE: u8 = 2;
const HOST: u8 = 4;

const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let alnum = c.is_ascii_alphanumeric();
        let mut class = 0;
        // RFC 9110 5.6.2: tchar.
        if alnum
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            )
        {
            class |= TCHAR;
        }
        // RFC 9110 5.5: field-vchar, SP, HTAB; obs-text (0x80-0xFF) accepted as opaque.
        if c == b'\t' || (c >= b' ' && c <= b'~') || c >= 0x80 {
            class |= FIELD_VALUE;
        }
        // RFC 3986 3.2.2 and 3.2.3: uri-host (reg-name, IP-literal) and port characters.
        if alnum
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
                    | b'%'
            )
        {
            class |= HOST;
        }
        t[b] = class;
        b += 1;
    }
    t
};

// Word-at-a-time byte tests (SWAR): eight bytes per step for the searches and checks that run
// over every byte of every head. Only the existence answers of these bit tricks are relied on;
// a hit is confirmed byte by byte.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Nonzero iff a byte of `x` is zero; the lowest set bit marks the first (lowest) zero byte.
const fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Nonzero iff a byte of `x` is below `n` (`n` <= 128).
const fn bytes_below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGHS
}

/// Position of the first `needle` in `hay`.
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    let pattern = ONES * needle as u64;
    let (words, rest) = hay.as_chunks::<8>();
    for (i, w) in words.iter().enumerate() {
        let hit = zero_bytes(u64::from_le_bytes(*w) ^ pattern);
        if hit != 0 {
            return Some(i * 8 + (hit.trailing_zeros() / 8) as usize);
        }
    }
    let base = words.len() * 8;
    rest.iter().position(|&b| b == needle).map(|p| base + p)
}

/// True if every byte of `s` may appear in a field value (see [`FIELD_VALUE`]).
fn all_field_value(s: &[u8]) -> bool {
    let (words, rest) = s.as_chunks::<8>();
    for w in words {
        let x = u64::from_le_bytes(*w);
        // Controls (below 0x20) and DEL need a closer look; HTAB is one of them and allowed.
        if (bytes_below(x, 0x20) | zero_bytes(x ^ (ONES * 0x7f))) != 0 && !all_in(w, FIELD_VALUE) {
            return false;
        }
    }
    all_in(rest, FIELD_VALUE)
}

fn all_in(s: &[u8], class: u8) -> bool {
    s.iter().all(|&b| CLASSES[b as usize] & class != 0)
}

/// tchar (RFC 9110 5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    CLASSES[b as usize] & TCHAR != 0
}

fn is_field_value_byte(b: u8) -> bool {
    CLASSES[b as usize] & FIELD_VALUE != 0
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Elements of a comma-separated list, trimmed, empty ones skipped (RFC 9110 5.6.1).
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Where the scan of a head stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadScan {
    /// The head is `data[start..end]` (from the request line through the empty line);
    /// `data[..start]` are empty lines sent before it (RFC 9112 2.2: ignored).
    Complete {
        start: usize,
        end: usize,
    },
    /// More bytes are needed.
    Partial,
    Error(RequestError),
}

/// Finds the end of a request head across reads without rescanning bytes already seen.
/// Offsets are relative to the start of the unconsumed data; call [`HeadScanner::reset`] after
/// consuming a head.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeadScanner {
    /// Next byte to look at.
    pos: usize,
    /// Start of the current line.
    line_start: usize,
    /// Start of the request line (after ignored empty lines).
    skip: usize,
    /// The request line's first space was seen (the method is checked byte by byte until then).
    method_done: bool,
}

impl HeadScanner {
    pub(crate) fn reset(&mut self) {
        *self = HeadScanner::default();
    }

    /// Scans `data` (all unconsumed bytes; what was scanned before must still be at its
    /// start). `max_line` bounds the request line (414), `max_head` the whole head including
    /// leading empty lines (431).
    pub(crate) fn scan(&mut self, data: &[u8], max_line: usize, max_head: usize) -> HeadScan {
        let end = data.len().min(max_head);
        while self.pos < end {
            if !self.method_done && self.line_start == self.skip {
                // Check the method as it arrives, so a client speaking another protocol gets
                // its 400 at once instead of after the header timeout.
                let b = data[self.pos];
                if b == b' ' {
                    if self.pos == self.line_start {
                        return HeadScan::Error(RequestError::BadMethod);
                    }
                    self.method_done = true;
                    self.pos += 1;
                    continue;
                }
                if is_tchar(b) {
                    self.pos += 1;
                    continue;
                }
                match b {
                    b'\r' => match data[..end].get(self.pos + 1) {
                        None => break, // look at this CR again when its next byte is here
                        Some(b'\n') => {}
                        Some(_) => return HeadScan::Error(RequestError::BadLineEnding),
                    },
                    b'\n' => {}
                    _ => return HeadScan::Error(RequestError::BadMethod),
                }
                // A line end: an empty line before the request line, or a request line without
                // spaces; the LF search below takes it and `parse_head` judges the line.
            }
            let Some(off) = find_byte(&data[self.pos..end], b'\n') else {
                self.pos = end;
                break;
            };
            let lf = self.pos + off;
            // RFC 9112 2.2: lines end in CRLF; a bare LF is refused.
            if lf == self.line_start || data[lf - 1] != b'\r' {
                return HeadScan::Error(RequestError::BadLineEnding);
            }
            let content = lf - 1 - self.line_start;
            let next = lf + 1;
            if content == 0 {
                if self.line_start == self.skip {
                    // RFC 9112 2.2: ignore empty lines before the request line.
                    self.skip = next;
                    self.line_start = next;
                    self.pos = next;
                    continue;
                }
                return HeadScan::Complete {
                    start: self.skip,
                    end: next,
                };
            }
            if self.line_start == self.skip {
                if content > max_line {
                    return HeadScan::Error(RequestError::UriTooLong);
                }
                // RFC 9112 3: a request line has two spaces (method SP target SP version).
                // Without them (HTTP/0.9's `GET /`) no header line can make it valid: refuse
                // now rather than wait for an empty line that an HTTP/0.9 client never sends.
                let line = &data[self.line_start..lf - 1];
                let two_spaces = find_byte(line, b' ')
                    .is_some_and(|sp1| find_byte(&line[sp1 + 1..], b' ').is_some());
                if !two_spaces {
                    return HeadScan::Error(RequestError::BadRequestLine);
                }
            }
            self.line_start = next;
            self.pos = next;
        }
        if self.line_start == self.skip && self.pos - self.line_start > max_line + 1 {
            return HeadScan::Error(RequestError::UriTooLong);
        }
        if data.len() >= max_head {
            return HeadScan::Error(RequestError::HeadTooLarge);
        }
        HeadScan::Partial
    }
}

/// A request method (RFC 9110 section 9; PATCH from RFC 5789). Method names are
/// case-sensitive: `get` is [`Method::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method<'a> {
    /// GET (RFC 9110 9.3.1).
    Get,
    /// HEAD (RFC 9110 9.3.2): answered as GET, the framework sends no body.
    Head,
    /// POST (RFC 9110 9.3.3).
    Post,
    /// PUT (RFC 9110 9.3.4).
    Put,
    /// DELETE (RFC 9110 9.3.5).
    Delete,
    /// CONNECT (RFC 9110 9.3.6); its target is in authority form, its path empty.
    Connect,
    /// OPTIONS (RFC 9110 9.3.7); `OPTIONS *` has the path `*`.
    Options,
    /// TRACE (RFC 9110 9.3.8).
    Trace,
    /// PATCH (RFC 5789).
    Patch,
    /// Any other method token (RFC 9110 9.1: a server answers 501 to one it does not know).
    Other(&'a str),
}

impl<'a> Method<'a> {
    pub(crate) fn from_token(t: &'a [u8]) -> Method<'a> {
        match t {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"CONNECT" => Method::Connect,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            // A token is ASCII (checked by the parser before this).
            _ => Method::Other(std::str::from_utf8(t).unwrap_or_default()),
        }
    }

    /// The method's name as sent.
    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other(t) => t,
        }
    }
}

/// The request's protocol version. HTTP/1.x minor versions above 1 are handled as 1.1
/// (RFC 9110 6.2: a recipient can assume a higher minor version is backward compatible).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0: persistent only with `Connection: keep-alive` (RFC 9112 C.2.2); no chunked.
    Http10,
    /// HTTP/1.1 (or 1.x above).
    Http11,
}

/// How the request body is delimited (RFC 9112 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// What the server needs from a checked request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: Method<'a>,
    pub(crate) target: &'a [u8],
    pub(crate) version: Version,
    /// The header field lines, each ending in CRLF, then the empty line.
    pub(crate) fields: &'a [u8],
    /// `Connection: close` was sent (RFC 9112 9.6).
    pub(crate) close: bool,
    /// `Connection: keep-alive` was sent (HTTP/1.0 persistence, RFC 9112 C.2.2).
    pub(crate) keep_alive: bool,
    pub(crate) framing: Framing,
    /// `Expect: 100-continue` (RFC 9110 10.1.1).
    pub(crate) expect_continue: bool,
    /// The first `Referer` and `User-Agent` values (empty if none), for the access log: taken
    /// while the fields are checked, so that logging a request does not walk them again.
    pub(crate) referer: &'a [u8],
    pub(crate) user_agent: &'a [u8],
}

impl RequestHead<'_> {
    /// Whether the connection may stay open after the response (RFC 9112 9.3).
    pub(crate) fn persistent(&self) -> bool {
        match self.version {
            Version::Http11 => !self.close,
            Version::Http10 => self.keep_alive && !self.close,
        }
    }
}

/// The lines of a head, without their line ends.
struct HeadLines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for HeadLines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match find_byte(self.rest, b'\n') {
            Some(lf) => (&self.rest[..lf], &self.rest[lf + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// Checks a complete head (request line through the empty line, every line ending in CRLF as
/// [`HeadScanner`] found it) and extracts a [`RequestHead`].
pub(crate) fn parse_head(head: &[u8]) -> Result<RequestHead<'_>, RequestError> {
    let mut lines = HeadLines { rest: head };
    let request_line = lines.next().unwrap_or_default();
    let fields = lines.rest;

    // RFC 9112 3: request-line = method SP request-target SP HTTP-version
    let Some(sp1) = request_line.iter().position(|&b| b == b' ') else {
        return Err(if all_in(request_line, TCHAR) {
            RequestError::BadRequestLine
        } else {
            RequestError::BadMethod
        });
    };
    let method_token = &request_line[..sp1];
    if method_token.is_empty() || !all_in(method_token, TCHAR) {
        return Err(RequestError::BadMethod);
    }
    let rest = &request_line[sp1 + 1..];
    let Some(sp2) = rest.iter().position(|&b| b == b' ') else {
        return Err(RequestError::BadRequestLine);
    };
    let target = &rest[..sp2];
    let version_text = &rest[sp2 + 1..];
    if target.is_empty() {
        return Err(RequestError::BadRequestLine);
    }
    // RFC 9112 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT (case-sensitive).
    let version = match version_text {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            match (major, minor) {
                (b'1', b'0') => Version::Http10,
                (b'1', _) => Version::Http11,
                _ => return Err(RequestError::VersionNotSupported),
            }
        }
        _ => {
            return Err(if version_text.contains(&b' ') {
                RequestError::BadRequestLine
            } else {
                RequestError::BadVersion
            });
        }
    };
    // RFC 9112 3.2: the target is made of URI characters: visible ASCII.
    if !target.iter().all(|&b| (b'!'..=b'~').contains(&b)) {
        return Err(RequestError::BadTarget);
    }
    let method = Method::from_token(method_token);

    let mut close = false;
    let mut keep_alive = false;
    let mut expect_continue = false;
    let mut hosts = 0u32;
    let mut content_length: Option<u64> = None;
    // Transfer-Encoding: seen at all, number of codings, whether the last one is "chunked".
    let mut te_seen = false;
    let mut te_codings = 0u32;
    let mut te_last_chunked = false;
    let (mut referer, mut user_agent): (Option<&[u8]>, Option<&[u8]>) = (None, None);

    for line in lines {
        if line.is_empty() {
            break; // the empty line that ends the head
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(RequestError::ObsFold);
        }
        let Some(colon) = find_byte(line, b':') else {
            return Err(RequestError::BadHeaderName);
        };
        let name = &line[..colon];
        if matches!(name.last(), Some(b' ' | b'\t')) {
            return Err(RequestError::WhitespaceBeforeColon);
        }
        if name.is_empty() || !all_in(name, TCHAR) {
            return Err(RequestError::BadHeaderName);
        }
        let value = trim_ows(&line[colon + 1..]);
        if !all_field_value(value) {
            return Err(RequestError::BadHeaderValue);
        }
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            // RFC 9112 3.2: exactly one Host line, with a valid uri-host[:port] (RFC 3986).
            if hosts > 1 || !all_in(value, HOST) {
                return Err(RequestError::BadHost);
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            // RFC 9112 9.6 and 9.3: connection options are case-insensitive tokens.
            for token in list_elements(value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // RFC 9110 8.6: 1*DIGIT; a list of identical values may be taken as one value.
            // (An empty value is one empty element, refused by parse_decimal.)
            for element in value.split(|&b| b == b',').map(trim_ows) {
                let n = parse_decimal(element).ok_or(RequestError::BadContentLength)?;
                if content_length.is_some_and(|old| old != n) {
                    return Err(RequestError::ConflictingContentLength);
                }
                content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te_seen = true;
            for coding in list_elements(value) {
                te_codings += 1;
                te_last_chunked = coding.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"referer") {
            referer.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            user_agent.get_or_insert(value);
        }
    }

    let framing = if te_seen {
        if version == Version::Http10 {
            return Err(RequestError::TransferEncodingInHttp10);
        }
        if content_length.is_some() {
            return Err(RequestError::TransferEncodingWithLength);
        }
        if te_codings == 0 {
            return Err(RequestError::BadHeaderValue);
        }
        // RFC 9112 6.3 (4): chunked not the final coding: the length cannot be determined
        // reliably; the server MUST respond 400 and close.
        if !te_last_chunked {
            return Err(RequestError::ChunkedNotLast);
        }
        // RFC 9112 6.1: only chunked is understood (501 for the others, RFC 9112 6.1), and
        // chunked must not be applied twice.
        if te_codings != 1 {
            return Err(RequestError::UnsupportedTransferEncoding);
        }
        Framing::Chunked
    } else {
        match content_length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    if version == Version::Http11 && hosts == 0 {
        return Err(RequestError::MissingHost);
    }
    Ok(RequestHead {
        method,
        target,
        version,
        fields,
        close,
        keep_alive,
        framing,
        expect_continue,
        referer: referer.unwrap_or_default(),
        user_agent: user_agent.unwrap_or_default(),
    })
}

/// 1*DIGIT that fits in a u64.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(n)
}

/// The path of a GET/HEAD target (RFC 9112 3.2.1 origin-form or 3.2.2 absolute-form), without
/// query or fragment. The absolute form's authority is ignored: there is one site.
pub(crate) fn request_path(target: &[u8]) -> Result<&[u8], RequestError> {
    let path = if target.first() == Some(&b'/') {
        target
    } else {
        let after_scheme = if target.len() >= 7 && target[..7].eq_ignore_ascii_case(b"http://") {
            &target[7..]
        } else if target.len() >= 8 && target[..8].eq_ignore_ascii_case(b"https://") {
            &target[8..]
        } else {
            return Err(RequestError::BadTarget);
        };
        match after_scheme
            .iter()
            .position(|&b| b == b'/' || b == b'?' || b == b'#')
        {
            Some(i) if after_scheme[i] == b'/' => &after_scheme[i..],
            _ => b"/",
        }
    };
    let end = path
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(path.len());
    Ok(&path[..end])
}

/// The query of a target (RFC 3986 3.4): after the first `?`, before any `#`.
pub(crate) fn request_query(target: &[u8]) -> Option<&[u8]> {
    let q = find_byte(target, b'?')?;
    let rest = &target[q + 1..];
    Some(&rest[..find_byte(rest, b'#').unwrap_or(rest.len())])
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `path` (RFC 3986 2.1) into `decoded`, then resolves `.` and `..` segments and
/// drops empty ones (RFC 3986 5.2.4) into `out`: segments joined by `/`, no leading slash, the
/// root being empty. Returns whether the path names a directory (ends in `/`, `.` or `..`).
/// A `..` above the root, a malformed `%XX` or an encoded NUL is [`RequestError::BadTarget`].
/// Decoding comes first, so `%2e%2e` and `%2f` cannot smuggle a climb past the check.
/// Both buffers are cleared first and reused across requests (no allocation once warm).
pub(crate) fn normalize_path(
    path: &[u8],
    decoded: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<bool, RequestError> {
    decoded.clear();
    out.clear();
    // Most paths have nothing encoded: then they are used as they are.
    let Some(first_escape) = find_byte(path, b'%') else {
        return resolve_segments(path, out);
    };
    decoded.extend_from_slice(&path[..first_escape]);
    let mut i = first_escape;
    while i < path.len() {
        let b = path[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                path.get(i + 1).copied().and_then(hex_value),
                path.get(i + 2).copied().and_then(hex_value),
            ) else {
                return Err(RequestError::BadTarget);
            };
            let v = hi << 4 | lo;
            if v == 0 {
                return Err(RequestError::BadTarget);
            }
            decoded.push(v);
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    resolve_segments(decoded, out)
}

/// The second half of [`normalize_path`]: `.`, `..` and empty segments of a decoded path.
fn resolve_segments(decoded: &[u8], out: &mut Vec<u8>) -> Result<bool, RequestError> {
    let mut directory = true;
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => directory = true,
            b".." => {
                if out.is_empty() {
                    return Err(RequestError::BadTarget);
                }
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
                directory = true;
            }
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(segment);
                directory = false;
            }
        }
    }
    Ok(directory)
}

/// Chunked body decoding state (RFC 9112 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Reading chunk-size hex digits; `digits` seen so far (saturating: only "none yet"
    /// matters, the size itself bounds the value).
    Size {
        digits: u8,
    },
    /// After the size: BWS and chunk extensions, up to CR.
    Extension,
    /// CR seen after the size line; LF expected.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    Trailer,
    TrailerLf,
    LastLf,
    Done,
}

/// Longest chunk-size line (size and extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Reads a request body as it streams in (RFC 9112 6.3), handing its content on or skipping it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyReader {
    /// Content-Length: bytes still to skip.
    Length {
        remaining: u64,
    },
    Chunked(ChunkedDecoder),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    /// Size of the current chunk, then data bytes still to skip in it.
    size: u64,
    /// Data bytes of all chunks so far.
    total: u64,
    /// Bytes in the current size line or in the trailer section.
    line_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size { digits: 0 },
            size: 0,
            total: 0,
            line_bytes: 0,
        }
    }
}

impl BodyReader {
    pub(crate) fn new(framing: Framing) -> Option<BodyReader> {
        match framing {
            Framing::None => None,
            Framing::Length(n) => Some(BodyReader::Length { remaining: n }),
            Framing::Chunked => Some(BodyReader::Chunked(ChunkedDecoder::default())),
        }
    }

    /// Skips what it can of the body in `data`. Returns the bytes used (never more than
    /// `data.len()`) and whether the body is complete; bytes after the body are left alone.
    /// `max_body` bounds the chunked data total (413); `max_trailer` the trailer section (431).
    pub(crate) fn feed(
        &mut self,
        data: &[u8],
        max_body: u64,
        max_trailer: usize,
    ) -> (usize, Result<bool, RequestError>) {
        self.feed_into(data, max_body, max_trailer, &mut |_| {})
    }

    /// As [`feed`](Self::feed), and hands the body's content (without chunk framing) to
    /// `content`, in order, in pieces.
    pub(crate) fn feed_into(
        &mut self,
        data: &[u8],
        max_body: u64,
        max_trailer: usize,
        content: &mut impl FnMut(&[u8]),
    ) -> (usize, Result<bool, RequestError>) {
        match self {
            BodyReader::Length { remaining } => {
                let n = (*remaining).min(data.len() as u64);
                *remaining -= n;
                content(&data[..n as usize]);
                (n as usize, Ok(*remaining == 0))
            }
            BodyReader::Chunked(d) => d.feed(data, max_body, max_trailer, content),
        }
    }
}

impl ChunkedDecoder {
    fn feed(
        &mut self,
        data: &[u8],
        max_body: u64,
        max_trailer: usize,
        content: &mut impl FnMut(&[u8]),
    ) -> (usize, Result<bool, RequestError>) {
        let mut i = 0;
        while i < data.len() {
            if self.state == ChunkState::Done {
                break;
            }
            if self.state == ChunkState::Data {
                let n = self.size.min((data.len() - i) as u64);
                self.size -= n;
                content(&data[i..i + n as usize]);
                i += n as usize;
                if self.size == 0 {
                    self.state = ChunkState::DataCr;
                }
                continue;
            }
            let b = data[i];
            i += 1;
            let next = match self.state {
                ChunkState::Size { digits } => {
                    self.line_bytes += 1;
                    if let Some(v) = hex_value(b) {
                        // RFC 9112 7.1: chunk-size = 1*HEXDIG, leading zeros included. Refused:
                        // a size that does not fit a u64, or a line longer than the limit.
                        if self.size >> 60 != 0 || self.line_bytes > MAX_CHUNK_LINE {
                            return (i, Err(RequestError::BadChunk));
                        }
                        self.size = self.size << 4 | v as u64;
                        ChunkState::Size {
                            digits: digits.saturating_add(1),
                        }
                    } else if digits == 0 {
                        return (i, Err(RequestError::BadChunk));
                    } else if b == b'\r' {
                        ChunkState::SizeLf
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        ChunkState::Extension
                    } else {
                        return (i, Err(RequestError::BadChunk));
                    }
                }
                ChunkState::Extension => {
                    self.line_bytes += 1;
                    if self.line_bytes > MAX_CHUNK_LINE {
                        return (i, Err(RequestError::BadChunk));
                    }
                    if b == b'\r' {
                        ChunkState::SizeLf
                    } else if is_field_value_byte(b) {
                        ChunkState::Extension
                    } else {
                        return (i, Err(RequestError::BadChunk));
                    }
                }
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return (i, Err(RequestError::BadChunk));
                    }
                    self.line_bytes = 0;
                    if self.size == 0 {
                        ChunkState::TrailerStart
                    } else {
                        self.total = self.total.saturating_add(self.size);
                        if self.total > max_body {
                            return (i, Err(RequestError::BodyTooLarge));
                        }
                        ChunkState::Data
                    }
                }
                ChunkState::Data => unreachable!("handled above"),
                ChunkState::DataCr if b == b'\r' => ChunkState::DataLf,
                ChunkState::DataLf if b == b'\n' => ChunkState::Size { digits: 0 },
                ChunkState::DataCr | ChunkState::DataLf => {
                    return (i, Err(RequestError::BadChunk));
                }
                ChunkState::TrailerStart | ChunkState::Trailer => {
                    // RFC 9112 7.1.2: trailer fields are read and discarded.
                    self.line_bytes += 1;
                    if self.line_bytes > max_trailer {
                        return (i, Err(RequestError::HeadTooLarge));
                    }
                    let at_start = self.state == ChunkState::TrailerStart;
                    if b == b'\r' {
                        if at_start {
                            ChunkState::LastLf
                        } else {
                            ChunkState::TrailerLf
                        }
                    } else if at_start && (b == b' ' || b == b'\t') {
                        return (i, Err(RequestError::ObsFold));
                    } else if is_field_value_byte(b) {
                        ChunkState::Trailer
                    } else {
                        return (i, Err(RequestError::BadChunk));
                    }
                }
                ChunkState::TrailerLf if b == b'\n' => ChunkState::TrailerStart,
                ChunkState::LastLf if b == b'\n' => ChunkState::Done,
                ChunkState::TrailerLf | ChunkState::LastLf => {
                    return (i, Err(RequestError::BadChunk));
                }
                ChunkState::Done => unreachable!("checked above"),
            };
            self.state = next;
        }
        (i, Ok(self.state == ChunkState::Done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan_all(data: &[u8]) -> HeadScan {
        HeadScanner::default().scan(data, 8192, 16384)
    }

    fn parse(data: &[u8]) -> Result<RequestHead<'_>, RequestError> {
        match scan_all(data) {
            HeadScan::Complete { start, end } => parse_head(&data[start..end]),
            HeadScan::Error(e) => Err(e),
            HeadScan::Partial => panic!("partial: {:?}", String::from_utf8_lossy(data)),
        }
    }

    #[test]
    fn simple_get() {
        let h = parse(b"GET /index.html?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.target, b"/index.html?x=1");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.framing, Framing::None);
        assert!(h.persistent());
    }

    #[test]
    fn referer_and_user_agent_are_the_first_of_each() {
        let h = parse(
            b"GET / HTTP/1.1\r\nuser-AGENT:  curl/8 \t\r\nHost: a\r\nREFERER: http://r/\r\n\
              Referer: http://second/\r\nUser-Agent: second\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.referer, b"http://r/");
        assert_eq!(h.user_agent, b"curl/8");
        let h = parse(b"GET / HTTP/1.1\r\nHost: a\r\nReferer:\r\n\r\n").unwrap();
        assert_eq!((h.referer, h.user_agent), (&b""[..], &b""[..]));
    }

    #[test]
    fn scanner_resumes_and_skips_leading_empty_lines() {
        let req = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET";
        let mut s = HeadScanner::default();
        for n in 0..req.len() - 3 {
            let r = s.scan(&req[..n], 8192, 16384);
            assert_eq!(r, HeadScan::Partial, "at {n}");
        }
        assert_eq!(
            s.scan(req, 8192, 16384),
            HeadScan::Complete {
                start: 4,
                end: req.len() - 3
            }
        );
    }

    #[test]
    fn scanner_limits_and_line_endings() {
        assert_eq!(
            scan_all(b"GET / HTTP/1.1\nHost: a\n\n"),
            HeadScan::Error(RequestError::BadLineEnding)
        );
        assert_eq!(
            scan_all(b"GET / HTTP/1.1\r\nHost: a\r\n\n"),
            HeadScan::Error(RequestError::BadLineEnding)
        );
        // a CR at the end of the data is judged once its next byte is known, the same way
        // whether the bytes came together or not
        let mut s = HeadScanner::default();
        assert_eq!(s.scan(b"\r", 8192, 16384), HeadScan::Partial);
        assert_eq!(
            s.scan(b"\r\0", 8192, 16384),
            HeadScan::Error(RequestError::BadLineEnding)
        );
        assert_eq!(
            scan_all(b"\r\0"),
            HeadScan::Error(RequestError::BadLineEnding)
        );
        assert_eq!(
            scan_all(b"GET\rX"),
            HeadScan::Error(RequestError::BadLineEnding)
        );
        // the method is checked before the line is complete
        assert_eq!(
            scan_all(b"\x16\x03\x01"),
            HeadScan::Error(RequestError::BadMethod)
        );
        assert_eq!(
            scan_all(b" / HTTP/1.1"),
            HeadScan::Error(RequestError::BadMethod)
        );
        let mut s = HeadScanner::default();
        let long = [b"GET /".as_slice(), &[b'a'; 100]].concat();
        assert_eq!(
            s.scan(&long, 50, 1000),
            HeadScan::Error(RequestError::UriTooLong)
        );
        let mut s = HeadScanner::default();
        let line = [b"GET /".as_slice(), &[b'a'; 60], b" HTTP/1.1\r\n\r\n"].concat();
        assert_eq!(
            s.scan(&line, 50, 1000),
            HeadScan::Error(RequestError::UriTooLong)
        );
        let mut s = HeadScanner::default();
        let big = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 100]].concat();
        assert_eq!(
            s.scan(&big, 50, 100),
            HeadScan::Error(RequestError::HeadTooLarge)
        );
        let mut s = HeadScanner::default();
        assert_eq!(
            s.scan(&big, 50, 101),
            HeadScan::Error(RequestError::HeadTooLarge)
        );
        let mut s = HeadScanner::default();
        assert_eq!(s.scan(&big, 50, 200), HeadScan::Partial);
    }

    #[test]
    fn request_line_errors() {
        use RequestError::*;
        for (req, err) in [
            (&b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n"[..], BadMethod),
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine),
            (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", BadRequestLine),
            (b"GET /HTTP/1.1\r\nHost: a\r\n\r\n", BadRequestLine),
            (b"GET\r\nHost: a\r\n\r\n", BadRequestLine),
            (b"GET / http/1.1\r\nHost: a\r\n\r\n", BadVersion),
            (b"GET / HTTP/1\r\nHost: a\r\n\r\n", BadVersion),
            (b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", BadVersion),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", VersionNotSupported),
            (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", VersionNotSupported),
            (b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
            (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
            (b"GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", BadTarget),
        ] {
            assert_eq!(parse(req), Err(err), "{:?}", String::from_utf8_lossy(req));
        }
        // HTTP/1.2 is taken as 1.1 (like nginx)
        assert_eq!(
            parse(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n").unwrap().version,
            Version::Http11
        );
    }

    #[test]
    fn header_errors() {
        use RequestError::*;
        for (req, err) in [
            (&b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"[..], BadHeaderName),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", WhitespaceBeforeColon),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", WhitespaceBeforeColon),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", ObsFold),
            (b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", BadHeaderName),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", BadHeaderValue),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", BadHeaderValue),
            (b"GET / HTTP/1.1\r\n\r\n", MissingHost),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", BadHost),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", BadContentLength),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", BadContentLength),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", BadContentLength),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", BadContentLength),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
                BadContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ConflictingContentLength,
            ),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n", ConflictingContentLength),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                TransferEncodingWithLength,
            ),
            (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingInHttp10),
            (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", ChunkedNotLast),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                UnsupportedTransferEncoding,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                UnsupportedTransferEncoding,
            ),
        ] {
            assert_eq!(parse(req), Err(err), "{:?}", String::from_utf8_lossy(req));
        }
    }

    #[test]
    fn header_fields_that_matter() {
        let h = parse(
            b"POST / HTTP/1.1\r\nhOsT: [::1]:80\r\nconnection: Upgrade, CLOSE\r\n\
              Content-Length: 5 , 5\r\ncontent-length: 5\r\nEXPECT: 100-Continue\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.method, Method::Post);
        assert!(h.close && !h.persistent());
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.expect_continue);
        let h = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert!(h.persistent());
        let h = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!h.persistent());
        let h = parse(b"GET / HTTP/1.1\r\nHost:\r\nTransfer-Encoding:  Chunked \r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = parse(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::None);
        assert_eq!(
            parse(b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap().method,
            Method::Other("FOO")
        );
        assert_eq!(
            parse(b"get / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap().method,
            Method::Other("get")
        );
        assert_eq!(
            parse(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap().method,
            Method::Head
        );
        // value bytes above 0x7F are opaque, allowed
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n").is_ok());
    }

    #[test]
    fn paths() {
        assert_eq!(request_path(b"/a/b?q=1#f"), Ok(&b"/a/b"[..]));
        assert_eq!(request_path(b"http://h:80/x?y"), Ok(&b"/x"[..]));
        assert_eq!(request_path(b"HTTPS://h"), Ok(&b"/"[..]));
        assert_eq!(request_path(b"http://h?q"), Ok(&b"/"[..]));
        assert_eq!(request_path(b"*"), Err(RequestError::BadTarget));
        assert_eq!(request_path(b"h:443"), Err(RequestError::BadTarget));
        let (mut d, mut o) = (Vec::new(), Vec::new());
        let mut norm = |p: &[u8]| normalize_path(p, &mut d, &mut o).map(|dir| (o.clone(), dir));
        assert_eq!(norm(b"/"), Ok((b"".to_vec(), true)));
        assert_eq!(norm(b"/a//b/./c"), Ok((b"a/b/c".to_vec(), false)));
        assert_eq!(norm(b"/a/b/../c/"), Ok((b"a/c".to_vec(), true)));
        assert_eq!(norm(b"/a/.."), Ok((b"".to_vec(), true)));
        assert_eq!(
            norm(b"/my%20file.txt"),
            Ok((b"my file.txt".to_vec(), false))
        );
        assert_eq!(norm(b"/a%2Fb"), Ok((b"a/b".to_vec(), false)));
        assert_eq!(norm(b"/a/%2e%2e/b"), Ok((b"b".to_vec(), false)));
        for bad in [
            &b"/.."[..],
            b"/../etc/passwd",
            b"/a/../../etc/passwd",
            b"/%2e%2e/etc/passwd",
            b"/%2E%2E%2Fetc/passwd",
            b"/a/..%2f..%2fetc",
            b"/%",
            b"/%4",
            b"/%zz",
            b"/a%00b",
        ] {
            assert_eq!(
                norm(bad),
                Err(RequestError::BadTarget),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn chunked(body: &[u8], split: usize) -> (usize, Result<bool, RequestError>) {
        let mut r = BodyReader::new(Framing::Chunked).unwrap();
        let mut used = 0;
        for part in body.chunks(split.max(1)) {
            let mut off = 0;
            // the caller keeps unused bytes; emulate by feeding the rest again
            let (n, res) = r.feed(&part[off..], 1 << 20, 1024);
            off += n;
            used += n;
            if res != Ok(false) || off < part.len() {
                return (used, res);
            }
        }
        (used, Ok(false))
    }

    #[test]
    fn chunked_bodies() {
        let body = b"5\r\nhello\r\n6;ext=1;x=\"y\"\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET";
        for split in [1, 2, 3, 7, 100] {
            assert_eq!(
                chunked(body, split),
                (body.len() - 3, Ok(true)),
                "split {split}"
            );
        }
        assert_eq!(chunked(b"0\r\n\r\n", 1), (5, Ok(true)));
        assert_eq!(chunked(b"A\r\n0123456789\r\n0\r\n\r\n", 4).1, Ok(true));
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX",
            b"5\nhello\r\n",
            b"5\r\nhello\r\n0\r\n\n",
            b"11111111111111111\r\n",
            b"0\r\nX: a\r\n b\r\n\r\n",
        ] {
            assert!(
                chunked(bad, 1).1.is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut r = BodyReader::new(Framing::Chunked).unwrap();
        assert_eq!(
            r.feed(b"10\r\n", 15, 100).1,
            Err(RequestError::BodyTooLarge)
        );
        let mut r = BodyReader::new(Framing::Chunked).unwrap();
        assert_eq!(
            r.feed(b"0\r\nX: aaaaaaaaaaaaaaaaaaaaaa\r\n", 100, 10).1,
            Err(RequestError::HeadTooLarge)
        );
    }

    #[test]
    fn length_bodies() {
        let mut r = BodyReader::new(Framing::Length(5)).unwrap();
        assert_eq!(r.feed(b"abc", 0, 0), (3, Ok(false)));
        assert_eq!(r.feed(b"deGET", 0, 0), (2, Ok(true)));
        assert_eq!(BodyReader::new(Framing::None), None);
    }

    /// RFC 9112 6.3 (4): chunked that is not the final coding leaves the body's length unknown:
    /// 400 and close. nginx answers 501 to any coding but a lone `chunked`; the RFC's MUST wins.
    /// Chunked last after a coding we do not know stays 501 (RFC 9112 6.1).
    #[test]
    fn chunked_not_last_is_400() {
        for te in [
            &b"Transfer-Encoding: chunked, identity\r\n"[..],
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            b"Transfer-Encoding: gzip\r\n",
        ] {
            let req = [b"GET / HTTP/1.1\r\nHost: a\r\n", te, b"\r\n"].concat();
            let e = parse(&req).unwrap_err();
            assert_eq!(e.status().code(), 400, "{}", String::from_utf8_lossy(te));
        }
        let e = parse(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
            .unwrap_err();
        assert_eq!(e.status().code(), 501);
    }

    /// RFC 9112 7.1: chunk-size = 1*HEXDIG, so leading zeros are allowed, however many (up to
    /// the line limit); only a value that does not fit is refused.
    #[test]
    fn chunk_sizes_with_leading_zeros() {
        assert_eq!(chunked(b"0005\r\nhello\r\n0\r\n\r\n", 1), (18, Ok(true)));
        let zeros = [&[b'0'; 40][..], b"5\r\nhello\r\n000\r\n\r\n"].concat();
        assert_eq!(chunked(&zeros, 3), (zeros.len(), Ok(true)));
        assert_eq!(
            chunked(b"0ffffffffffffffff\r\n", 1).1,
            Err(RequestError::BodyTooLarge),
            "16 significant digits fit"
        );
        assert!(chunked(b"10000000000000000\r\n", 1).1.is_err());
        let endless = vec![b'0'; MAX_CHUNK_LINE + 1];
        assert_eq!(chunked(&endless, 7).1, Err(RequestError::BadChunk));
    }

    /// A request line without a version (HTTP/0.9's `GET /`) cannot become a valid request
    /// whatever follows: refused when its line ends, not after the header timeout.
    #[test]
    fn request_line_without_version_is_refused_at_its_end() {
        let mut s = HeadScanner::default();
        assert_eq!(
            s.scan(b"GET /", 8192, 16384),
            HeadScan::Partial,
            "the version may still come"
        );
        assert_eq!(
            s.scan(b"GET /\r\n", 8192, 16384),
            HeadScan::Error(RequestError::BadRequestLine)
        );
        let mut s = HeadScanner::default();
        assert_eq!(
            s.scan(b"\r\nGET\r\n", 8192, 16384),
            HeadScan::Error(RequestError::BadRequestLine)
        );
    }

    #[test]
    fn error_table_is_consistent() {
        for (i, e) in RequestError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i, "{e}");
            assert_eq!(
                RequestError::ALL
                    .iter()
                    .filter(|o| o.name() == e.name())
                    .count(),
                1
            );
        }
        assert_eq!(RequestError::HeadTooLarge.status().code(), 431);
        assert_eq!(
            RequestError::UnsupportedTransferEncoding.status().code(),
            501
        );
        assert_eq!(RequestError::MissingHost.status().code(), 400);
    }

    #[test]
    fn word_at_a_time_helpers() {
        assert_eq!(find_byte(b"", b'\n'), None);
        assert_eq!(find_byte(b"abcdefgh\nxyz", b'\n'), Some(8));
        assert_eq!(find_byte(b"\n", b'\n'), Some(0));
        assert_eq!(find_byte(b"abcdefghijklmnop:", b':'), Some(16));
        assert_eq!(find_byte(b"abc:efgh:", b':'), Some(3));
        assert_eq!(
            find_byte(&[0x80, 0xff, 0x0a, 0x0b, 0, 0, 0, 0, 0x0a], 0x0a),
            Some(2)
        );
        assert!(all_field_value(
            b"Mozilla/5.0 (X11; Linux x86_64)\tok \x80\xff"
        ));
        assert!(!all_field_value(b"Mozilla/5.0 (X11; Linux\x7f x86_64)"));
        assert!(!all_field_value(b"abcdefgh\x00"));
        assert!(!all_field_value(b"abcdefg\x1f"));
    }

    proptest! {
        #[test]
        fn word_at_a_time_matches_bytewise(data in proptest::collection::vec(
            proptest::sample::select(vec![0u8, 9, 10, 13, 31, 32, 58, 65, 126, 127, 128, 255]), 0..40),
            needle in proptest::sample::select(vec![0u8, 10, 58, 127, 255])) {
            prop_assert_eq!(find_byte(&data, needle), data.iter().position(|&b| b == needle));
            prop_assert_eq!(all_field_value(&data), data.iter().all(|&b| is_field_value_byte(b)));
        }

        #[test]
        fn scanner_and_parser_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600),
                                          cut in 0usize..600) {
            let fresh = HeadScanner::default().scan(&data, 64, 300);
            let mut s = HeadScanner::default();
            let cut = cut.min(data.len());
            if s.scan(&data[..cut], 64, 300) == HeadScan::Partial {
                // resuming after a partial scan finds what one scan of everything finds
                prop_assert_eq!(s.scan(&data, 64, 300), fresh);
            }
            match fresh {
                HeadScan::Complete { start, end } => {
                    prop_assert!(start < end && end <= data.len());
                    if let Ok(h) = parse_head(&data[start..end])
                        && let Ok(p) = request_path(h.target)
                    {
                        let _ = normalize_path(p, &mut Vec::new(), &mut Vec::new());
                    }
                }
                HeadScan::Partial => prop_assert!(data.len() < 300),
                HeadScan::Error(_) => {}
            }
            // parse_head on arbitrary bytes too
            let _ = parse_head(&data);
        }

        #[test]
        fn header_like_bytes_scan_the_same_in_pieces(
            first in proptest::string::string_regex("[\r\n]{0,4}[A-Z]{0,5}[ \r\n]?[/a-z ]{0,8}( HTTP/1.1)?").unwrap(),
            lines in proptest::collection::vec(
                proptest::string::string_regex("[A-Za-z: \t,\r\n0-9;=-]{0,30}").unwrap(), 0..8),
            step in 1usize..20,
        ) {
            let mut req = first.into_bytes();
            req.extend_from_slice(b"\r\n");
            for l in &lines {
                req.extend_from_slice(l.as_bytes());
                req.extend_from_slice(b"\r\n");
            }
            req.extend_from_slice(b"\r\n");
            let fresh = scan_all(&req);
            let mut s = HeadScanner::default();
            let mut resumed = HeadScan::Partial;
            for n in (step..req.len()).step_by(step).chain([req.len()]) {
                resumed = s.scan(&req[..n], 8192, 16384);
                if resumed != HeadScan::Partial {
                    break;
                }
            }
            match fresh {
                HeadScan::Complete { start, end } => {
                    // a complete head found early stays the answer when more bytes follow
                    prop_assert_eq!(resumed, fresh);
                    let _ = parse_head(&req[start..end]);
                }
                HeadScan::Error(_) => prop_assert_eq!(resumed, fresh),
                HeadScan::Partial => prop_assert_eq!(resumed, HeadScan::Partial),
            }
        }

        #[test]
        fn body_readers_never_overrun(data in proptest::collection::vec(any::<u8>(), 0..400),
                                      len in 0u64..500) {
            for framing in [Framing::Chunked, Framing::Length(len)] {
                let mut r = BodyReader::new(framing).unwrap_or(BodyReader::Length { remaining: 0 });
                let mut off = 0;
                for part in data.chunks(7) {
                    let (n, res) = r.feed(part, 1000, 100);
                    prop_assert!(n <= part.len());
                    off += n;
                    if res != Ok(false) {
                        break;
                    }
                }
                prop_assert!(off <= data.len());
            }
        }

        #[test]
        fn normalized_paths_stay_inside(path in "(/|\\.|\\.\\.|%2e|%2f|a|%)*") {
            let (mut d, mut o) = (Vec::new(), Vec::new());
            if normalize_path(path.as_bytes(), &mut d, &mut o).is_ok() {
                prop_assert!(!o.starts_with(b"/"));
                prop_assert!(o.split(|&b| b == b'/').all(|s| s != b".." && s != b"." ));
            }
        }
    }
}
