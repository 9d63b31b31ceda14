//! Responses: status codes (RFC 9110 section 15), what a [`Handler`](super::Handler) answers
//! ([`Response`], [`Body`], [`BodyStream`]), header blocks (RFC 9112 sections 4 and 5), heads
//! cached per second ([`HeadCache`]) and the IMF-fixdate of the `Date` header (RFC 9110 5.6.7).
//!
//! The framework writes every head itself: status line, `Server`, `Date`, `Content-Type`,
//! `Content-Length` (or `Transfer-Encoding: chunked`), the handler's fields, `Connection`. A
//! head is formatted into a per-worker arena and frozen, or taken from [`HeadCache`] when the
//! handler marked its response as one of a fixed set ([`Response::cache_head`]): then it is
//! built once per wall-clock second and `Connection` form, and every response is two `Bytes`
//! clones.

use bytes::{BufMut, Bytes};

/// An HTTP status code, 100 to 999 (RFC 9110 15: three digits), with its reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(u16);

impl StatusCode {
    /// 100 Continue (RFC 9110 15.2.1).
    pub const CONTINUE: StatusCode = StatusCode(100);
    /// 200 OK.
    pub const OK: StatusCode = StatusCode(200);
    /// 201 Created.
    pub const CREATED: StatusCode = StatusCode(201);
    /// 202 Accepted.
    pub const ACCEPTED: StatusCode = StatusCode(202);
    /// 204 No Content: sent without a body and without `Content-Length` (RFC 9110 8.6).
    pub const NO_CONTENT: StatusCode = StatusCode(204);
    /// 206 Partial Content (RFC 9110 15.3.7).
    pub const PARTIAL_CONTENT: StatusCode = StatusCode(206);
    /// 301 Moved Permanently.
    pub const MOVED_PERMANENTLY: StatusCode = StatusCode(301);
    /// 302 Found.
    pub const FOUND: StatusCode = StatusCode(302);
    /// 303 See Other.
    pub const SEE_OTHER: StatusCode = StatusCode(303);
    /// 304 Not Modified: sent without a body and without `Content-Length`.
    pub const NOT_MODIFIED: StatusCode = StatusCode(304);
    /// 307 Temporary Redirect.
    pub const TEMPORARY_REDIRECT: StatusCode = StatusCode(307);
    /// 308 Permanent Redirect.
    pub const PERMANENT_REDIRECT: StatusCode = StatusCode(308);
    /// 400 Bad Request.
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 401 Unauthorized.
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    /// 403 Forbidden.
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 404 Not Found.
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    /// 405 Method Not Allowed (send `Allow` with it, RFC 9110 15.5.6).
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    /// 408 Request Timeout.
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 409 Conflict.
    pub const CONFLICT: StatusCode = StatusCode(409);
    /// 412 Precondition Failed (RFC 9110 15.5.13).
    pub const PRECONDITION_FAILED: StatusCode = StatusCode(412);
    /// 413 Content Too Large.
    pub const CONTENT_TOO_LARGE: StatusCode = StatusCode(413);
    /// 414 URI Too Long.
    pub const URI_TOO_LONG: StatusCode = StatusCode(414);
    /// 416 Range Not Satisfiable (RFC 9110 15.5.17).
    pub const RANGE_NOT_SATISFIABLE: StatusCode = StatusCode(416);
    /// 422 Unprocessable Content.
    pub const UNPROCESSABLE_CONTENT: StatusCode = StatusCode(422);
    /// 429 Too Many Requests (RFC 6585 4).
    pub const TOO_MANY_REQUESTS: StatusCode = StatusCode(429);
    /// 431 Request Header Fields Too Large (RFC 6585 5).
    pub const HEADER_FIELDS_TOO_LARGE: StatusCode = StatusCode(431);
    /// 500 Internal Server Error.
    pub const INTERNAL_SERVER_ERROR: StatusCode = StatusCode(500);
    /// 501 Not Implemented.
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    /// 503 Service Unavailable.
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    /// 505 HTTP Version Not Supported.
    pub const VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);

    /// The status `code`, if it has three digits (100 to 999).
    pub const fn from_u16(code: u16) -> Option<StatusCode> {
        if code >= 100 && code <= 999 {
            Some(StatusCode(code))
        } else {
            None
        }
    }

    /// The number.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// The reason phrase of a code registered by RFC 9110 section 15 (429 and 431: RFC 6585);
    /// empty for others (RFC 9112 4: the reason phrase is optional).
    pub const fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            101 => "Switching Protocols",
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            203 => "Non-Authoritative Information",
            204 => "No Content",
            205 => "Reset Content",
            206 => "Partial Content",
            300 => "Multiple Choices",
            301 => "Moved Permanently",
            302 => "Found",
            303 => "See Other",
            304 => "Not Modified",
            307 => "Temporary Redirect",
            308 => "Permanent Redirect",
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Timeout",
            409 => "Conflict",
            410 => "Gone",
            411 => "Length Required",
            412 => "Precondition Failed",
            413 => "Content Too Large",
            414 => "URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Range Not Satisfiable",
            417 => "Expectation Failed",
            421 => "Misdirected Request",
            422 => "Unprocessable Content",
            426 => "Upgrade Required",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            505 => "HTTP Version Not Supported",
            _ => "",
        }
    }

    /// The class, 1 to 9 (the first digit of the code).
    pub const fn class(self) -> usize {
        (self.0 / 100) as usize
    }

    /// RFC 9112 6.3 (1): responses that never have content, whatever their fields say.
    pub(crate) const fn has_no_content(self) -> bool {
        self.0 < 200 || self.0 == 204 || self.0 == 304
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

impl From<StatusCode> for u16 {
    fn from(s: StatusCode) -> u16 {
        s.0
    }
}

/// The `Connection` header a response carries (RFC 9112 9.3 and 9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnHeader {
    /// None: HTTP/1.1 persistence is the default.
    Default = 0,
    /// `Connection: keep-alive`, for an HTTP/1.0 client that asked for it.
    KeepAlive = 1,
    /// `Connection: close`: the server closes after this response.
    Close = 2,
}

const CONN_VARIANTS: usize = 3;

/// The interim response sent before reading a body announced with `Expect: 100-continue`
/// (RFC 9110 10.1.1).
pub(crate) const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A complete response prepared at startup (the static responder's files and error pages).
#[derive(Clone, Debug)]
pub(crate) struct Resource {
    pub(crate) status: StatusCode,
    pub(crate) content_type: &'static str,
    /// Extra header lines, each ending in CRLF (`Location: ...`, `Allow: ...`); often empty.
    pub(crate) extra_headers: Bytes,
    pub(crate) body: Bytes,
}

impl Resource {
    /// This resource as a response whose head is cached under `key`.
    pub(crate) fn response(&self, key: u32) -> Response {
        let mut r = Response::new(self.status);
        r.content_type = Bytes::from_static(self.content_type.as_bytes());
        r.raw_fields = self.extra_headers.clone();
        r.body = Body::Bytes(self.body.clone());
        r.head_key = Some(key);
        r
    }
}

/// A `Content-Range` value (RFC 9110 14.4) of a representation `len` bytes long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentRange {
    /// `bytes FIRST-LAST/LEN` (206): bytes `first..=last`.
    Bytes { first: u64, last: u64, len: u64 },
    /// `bytes */LEN` (416).
    Unsatisfied { len: u64 },
}

/// Bytes a `Content-Range` line takes at most (name, three 20-digit numbers, CRLF).
const CONTENT_RANGE_MAX: usize = 100;

pub(crate) fn put_decimal(out: &mut impl BufMut, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

/// A response body that the framework pulls piece by piece, as room opens in the connection's
/// send queue: a large or generated body is never held in memory whole.
///
/// With a known [`length`](BodyStream::length) the response carries `Content-Length`; without
/// one it is sent with `Transfer-Encoding: chunked` to HTTP/1.1 clients, and to HTTP/1.0
/// clients until the connection closes (RFC 9112 6.3 (8)). A HEAD request never pulls.
pub trait BodyStream {
    /// The body's total length, if known before it is produced. The stream must then produce
    /// exactly that many bytes: a shorter stream makes the framework reset the connection (the
    /// client could not tell the body is cut short otherwise), bytes beyond are dropped; both
    /// count as `handler_errors`.
    fn length(&self) -> Option<u64> {
        None
    }
    /// The next piece of the body; `max` is how much the send queue takes now (never 0).
    /// Returning more is allowed (the rest is sent later, before the next pull); `None` or an
    /// empty piece ends the body.
    fn next_chunk(&mut self, max: usize) -> Option<Bytes>;
}

/// What a response carries after its head.
pub enum Body {
    /// No content (`Content-Length: 0`).
    Empty,
    /// The whole content, sent without copying (a clone of shared or static bytes).
    Bytes(Bytes),
    /// Content produced as it is sent (see [`BodyStream`]).
    Stream(Box<dyn BodyStream>),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Stream(s) => write!(f, "Stream(length {:?})", s.length()),
        }
    }
}

/// Header fields a handler added, two kept inline (no allocation for most responses).
#[derive(Clone, Debug, Default)]
pub(crate) struct Fields {
    inline: [(Bytes, Bytes); 2],
    len: usize,
    more: Vec<(Bytes, Bytes)>,
}

impl Fields {
    fn push(&mut self, name: Bytes, value: Bytes) {
        if self.len < self.inline.len() {
            self.inline[self.len] = (name, value);
        } else {
            self.more.push((name, value));
        }
        self.len += 1;
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.inline[..self.len.min(self.inline.len())]
            .iter()
            .chain(self.more.iter())
            .map(|(n, v)| (&n[..], &v[..]))
    }
    /// Bytes these fields take in a head (`name: value` CRLF each).
    fn head_len(&self) -> usize {
        self.iter().map(|(n, v)| n.len() + v.len() + 4).sum()
    }
}

/// Header names the framework writes itself (RFC 9112 6 and 9, RFC 9110 6.6): a handler that
/// sets one gets a 500 instead of a response whose framing could be wrong.
const RESERVED: [&[u8]; 6] = [
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"date",
    b"server",
    b"keep-alive",
];

/// A handler's answer: status, header fields, body. Build it with the methods below; the
/// framework adds `Server`, `Date`, `Content-Length` or `Transfer-Encoding`, and `Connection`.
///
/// ```
/// use synack::http::{Response, StatusCode};
/// let r = Response::new(StatusCode::OK)
///     .content_type("application/json")
///     .header("Cache-Control", "no-store")
///     .body(r#"{"ok":true}"#);
/// assert_eq!(r.status(), StatusCode::OK);
/// ```
#[derive(Debug)]
pub struct Response {
    pub(crate) status: StatusCode,
    /// Empty: no `Content-Type`.
    pub(crate) content_type: Bytes,
    pub(crate) fields: Fields,
    /// Header lines already formatted (name, colon, space, value, CRLF each): the static
    /// responder's prepared `Location` and `Allow`.
    pub(crate) raw_fields: Bytes,
    /// `Content-Range` (RFC 9110 14.4), formatted into the head: the static responder's 206
    /// and 416 answers carry it without allocating a value.
    pub(crate) content_range: Option<ContentRange>,
    pub(crate) body: Body,
    pub(crate) head_key: Option<u32>,
    pub(crate) close: bool,
    /// A field was refused (not a token, a control character, or a reserved name).
    pub(crate) invalid: bool,
}

impl Response {
    /// A response with `status`, no fields and an empty body.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            content_type: Bytes::new(),
            fields: Fields::default(),
            raw_fields: Bytes::new(),
            content_range: None,
            body: Body::Empty,
            head_key: None,
            close: false,
            invalid: false,
        }
    }

    /// Sets `Content-Type` (written before `Content-Length`). A `&'static str` is not copied.
    pub fn content_type(mut self, value: impl Into<Bytes>) -> Response {
        let value = value.into();
        self.invalid |= !valid_value(&value);
        self.content_type = value;
        self
    }

    /// Adds a header field (written in the order added, after `Content-Length`). Names are
    /// tokens (RFC 9110 5.1) and values visible text (RFC 9110 5.5: no CR, LF or NUL); names the
    /// framework writes itself (`Content-Length`, `Transfer-Encoding`, `Connection`, `Date`,
    /// `Server`, `Keep-Alive`) are refused. A refused field turns the response into a 500,
    /// counted in `handler_errors`. `Content-Type` is the same as [`content_type`](Self::content_type).
    pub fn header(mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> Response {
        let (name, value) = (name.into(), value.into());
        if name.eq_ignore_ascii_case(b"content-type") {
            return self.content_type(value);
        }
        let token = !name.is_empty() && name.iter().all(|&b| super::request::is_tchar(b));
        let reserved = RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r));
        if !token || reserved || !valid_value(&value) {
            self.invalid = true;
            return self;
        }
        self.fields.push(name, value);
        self
    }

    /// The whole body at once (`Content-Length` is its length). `&'static str`, `Vec<u8>`,
    /// `String` and `Bytes` convert without copying.
    pub fn body(mut self, body: impl Into<Bytes>) -> Response {
        self.body = Body::Bytes(body.into());
        self
    }

    /// A body pulled under flow control (see [`BodyStream`]).
    pub fn stream(mut self, stream: impl BodyStream + 'static) -> Response {
        self.body = Body::Stream(Box::new(stream));
        self
    }

    /// Closes the connection after this response (`Connection: close`).
    pub fn close_connection(mut self) -> Response {
        self.close = true;
        self
    }

    /// Declares this response one of a fixed set, numbered `key` below
    /// [`Handler::head_cache_slots`](super::Handler::head_cache_slots): every response given
    /// the same key has the same status, fields and body length. The framework then formats
    /// its head at most once per wall-clock second and `Connection` form and reuses it. Ignored
    /// for streamed bodies and for keys out of range.
    pub fn cache_head(mut self, key: u32) -> Response {
        self.head_key = Some(key);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body.
    pub fn body_ref(&self) -> &Body {
        &self.body
    }
}

/// RFC 9110 5.5: field-value characters (visible, SP, HTAB, obs-text); no CR, LF or NUL.
fn valid_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f))
}

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;

const DAY_NAMES: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Formats seconds since the Unix epoch as an IMF-fixdate (RFC 9110 5.6.7). Times after
/// 9999-12-31 23:59:59 are shown as that moment (the format has four year digits).
pub fn imf_fixdate(unix_secs: u64) -> [u8; IMF_FIXDATE_LEN] {
    const LAST: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let secs = unix_secs.min(LAST);
    let mut days = secs / 86_400;
    let in_day = secs % 86_400;
    // 1970-01-01 was a Thursday.
    let weekday = ((days + 4) % 7) as usize;

    // Whole 400-year cycles (146 097 days each) first, then years one by one (at most 400).
    const CYCLE_DAYS: u64 = 146_097;
    let mut year = 1970 + 400 * (days / CYCLE_DAYS);
    days %= CYCLE_DAYS;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let month_lengths = [
        31,
        if is_leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= month_lengths[month] {
        days -= month_lengths[month];
        month += 1;
    }
    let day = days + 1;

    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[0..3].copy_from_slice(DAY_NAMES[weekday]);
    put_digits(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTH_NAMES[month]);
    put_digits(&mut out[12..16], year);
    put_digits(&mut out[17..19], in_day / 3600);
    put_digits(&mut out[20..22], in_day / 60 % 60);
    put_digits(&mut out[23..25], in_day % 60);
    out
}

/// Writes `value` as decimal into `dst`, zero-padded on the left, keeping the low digits.
fn put_digits(dst: &mut [u8], mut value: u64) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The wall-clock second and its formatted `Date`, formatted only when the second changes.
#[derive(Clone, Debug)]
pub struct HttpDate {
    secs: u64,
    text: [u8; IMF_FIXDATE_LEN],
}

impl HttpDate {
    pub fn new(unix_secs: u64) -> Self {
        HttpDate {
            secs: unix_secs,
            text: imf_fixdate(unix_secs),
        }
    }
    /// Moves to `unix_secs`; true if the second changed (and the text was formatted again).
    pub fn set(&mut self, unix_secs: u64) -> bool {
        if unix_secs == self.secs {
            return false;
        }
        self.secs = unix_secs;
        self.text = imf_fixdate(unix_secs);
        true
    }
    pub fn secs(&self) -> u64 {
        self.secs
    }
    pub fn as_bytes(&self) -> &[u8; IMF_FIXDATE_LEN] {
        &self.text
    }
}

/// What a head says besides its fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadLine {
    pub(crate) status: StatusCode,
    /// `Content-Length`, if sent.
    pub(crate) content_length: Option<u64>,
    /// `Transfer-Encoding: chunked` (RFC 9112 7.1).
    pub(crate) chunked: bool,
    pub(crate) conn: ConnHeader,
}

/// Upper bound of the bytes [`write_head`] writes for `resp` (for the arena's reservation).
pub(crate) fn head_len_bound(resp: &Response) -> usize {
    // Status line (with the longest reason), Server, Date, Content-Length with 20 digits,
    // Transfer-Encoding, Connection, CRLFs.
    200 + resp.content_type.len()
        + resp.fields.head_len()
        + resp.raw_fields.len()
        + if resp.content_range.is_some() {
            CONTENT_RANGE_MAX
        } else {
            0
        }
}

/// Writes a response head: status line, `Server`, `Date`, `Content-Type` (if any),
/// `Content-Length` (if known), the handler's fields, the preformatted lines,
/// `Transfer-Encoding: chunked` (if chunked), `Connection` (if needed) and the empty line.
/// The status line says HTTP/1.1 whatever the request's minor version (RFC 9110 6.2).
pub(crate) fn write_head(
    out: &mut impl BufMut,
    line: HeadLine,
    date: &[u8; IMF_FIXDATE_LEN],
    resp: &Response,
) {
    out.put_slice(b"HTTP/1.1 ");
    let mut code = [0u8; 3];
    put_digits(&mut code, line.status.code() as u64);
    out.put_slice(&code);
    // RFC 9112 4: the SP stays even when the reason phrase is empty.
    out.put_u8(b' ');
    out.put_slice(line.status.reason().as_bytes());
    out.put_slice(b"\r\nServer: synack\r\nDate: ");
    out.put_slice(date);
    if !resp.content_type.is_empty() {
        out.put_slice(b"\r\nContent-Type: ");
        out.put_slice(&resp.content_type);
    }
    if let Some(len) = line.content_length {
        out.put_slice(b"\r\nContent-Length: ");
        put_decimal(out, len);
    }
    out.put_slice(b"\r\n");
    for (name, value) in resp.fields.iter() {
        out.put_slice(name);
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
    out.put_slice(&resp.raw_fields);
    match resp.content_range {
        None => {}
        Some(ContentRange::Bytes { first, last, len }) => {
            out.put_slice(b"Content-Range: bytes ");
            put_decimal(out, first);
            out.put_u8(b'-');
            put_decimal(out, last);
            out.put_u8(b'/');
            put_decimal(out, len);
            out.put_slice(b"\r\n");
        }
        Some(ContentRange::Unsatisfied { len }) => {
            out.put_slice(b"Content-Range: bytes */");
            put_decimal(out, len);
            out.put_slice(b"\r\n");
        }
    }
    if line.chunked {
        out.put_slice(b"Transfer-Encoding: chunked\r\n");
    }
    match line.conn {
        ConnHeader::Default => {}
        ConnHeader::KeepAlive => out.put_slice(b"Connection: keep-alive\r\n"),
        ConnHeader::Close => out.put_slice(b"Connection: close\r\n"),
    }
    out.put_slice(b"\r\n");
}

/// Writes the size line of a chunk of `len` bytes (RFC 9112 7.1: hex size, CRLF).
pub(crate) fn write_chunk_size(out: &mut impl BufMut, len: usize) {
    let mut hex = [0u8; 16];
    let mut n = 0;
    let mut v = len;
    loop {
        hex[15 - n] = b"0123456789abcdef"[v & 15];
        n += 1;
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.put_slice(&hex[16 - n..]);
    out.put_slice(b"\r\n");
}

/// Bytes a chunk of `len` data bytes takes on the wire besides the data (size line, CRLF).
pub(crate) fn chunk_overhead(len: usize) -> usize {
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    digits + 4
}

/// Prepared heads, one per (key, `Connection` variant), each valid for the wall-clock second
/// it was built in. The same head serves GET and HEAD (RFC 9110 9.3.2: HEAD gets the header
/// fields GET would get, `Content-Length` included).
pub(crate) struct HeadCache {
    slots: Vec<[Slot; CONN_VARIANTS]>,
    rebuilds: u64,
}

#[derive(Clone, Default)]
struct Slot {
    /// The wall-clock second the head was built for; `None` before the first build.
    second: Option<u64>,
    head: Bytes,
}

impl HeadCache {
    /// A cache for keys `0..keys`.
    pub(crate) fn new(keys: usize) -> Self {
        HeadCache {
            slots: vec![Default::default(); keys],
            rebuilds: 0,
        }
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The head cached for `key` and `conn` in the second of `date`, if any. `key` must be
    /// below [`len`](Self::len).
    pub(crate) fn get(&self, key: usize, conn: ConnHeader, date: &HttpDate) -> Option<&Bytes> {
        let slot = &self.slots[key][conn as usize];
        (slot.second == Some(date.secs())).then_some(&slot.head)
    }

    /// Keeps `head` for `key` and `conn` until the second of `date` ends.
    pub(crate) fn put(&mut self, key: usize, conn: ConnHeader, date: &HttpDate, head: Bytes) {
        let slot = &mut self.slots[key][conn as usize];
        slot.head = head;
        slot.second = Some(date.secs());
        self.rebuilds += 1;
    }

    /// How many heads were built so far (a test of "once per second", and a statistic).
    pub(crate) fn rebuilds(&self) -> u64 {
        self.rebuilds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(secs: u64) -> String {
        String::from_utf8(imf_fixdate(secs).to_vec()).unwrap()
    }

    #[test]
    fn imf_fixdate_known_times() {
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 9110 5.6.7's example.
        assert_eq!(date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(date(978_307_199), "Sun, 31 Dec 2000 23:59:59 GMT");
        assert_eq!(date(1_709_208_000), "Thu, 29 Feb 2024 12:00:00 GMT");
        assert_eq!(date(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(date(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(date(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn imf_fixdate_matches_a_day_count_walk() {
        // Independent check: walk day by day from the epoch over 60 years.
        let (mut y, mut m, mut d, mut wd) = (1970u64, 0usize, 1u64, 4usize);
        for day in 0..(60 * 366) {
            let s = date(day * 86_400 + 3_723);
            let expect = format!(
                "{}, {:02} {} {} 01:02:03 GMT",
                std::str::from_utf8(DAY_NAMES[wd]).unwrap(),
                d,
                std::str::from_utf8(MONTH_NAMES[m]).unwrap(),
                y
            );
            assert_eq!(s, expect);
            let mlen = [
                31,
                if is_leap(y) { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][m];
            wd = (wd + 1) % 7;
            d += 1;
            if d > mlen {
                d = 1;
                m += 1;
                if m == 12 {
                    m = 0;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn http_date_formats_only_on_change() {
        let mut d = HttpDate::new(0);
        assert!(!d.set(0));
        assert!(d.set(1));
        assert_eq!(d.as_bytes(), b"Thu, 01 Jan 1970 00:00:01 GMT");
    }

    #[test]
    fn head_layout() {
        let mut out = Vec::new();
        let resp = Response {
            raw_fields: Bytes::from_static(b"Allow: GET, HEAD\r\n"),
            ..Response::new(StatusCode::METHOD_NOT_ALLOWED).content_type("text/html")
        };
        let line = HeadLine {
            status: resp.status,
            content_length: Some(1234),
            chunked: false,
            conn: ConnHeader::Close,
        };
        write_head(&mut out, line, &imf_fixdate(0), &resp);
        assert!(out.len() <= head_len_bound(&resp));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nServer: synack\r\n\
             Date: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Type: text/html\r\n\
             Content-Length: 1234\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n"
        );
        out.clear();
        let line = HeadLine {
            status: StatusCode::OK,
            content_length: Some(0),
            chunked: false,
            conn: ConnHeader::Default,
        };
        write_head(
            &mut out,
            line,
            &imf_fixdate(0),
            &Response::new(StatusCode::OK),
        );
        assert!(out.ends_with(b"GMT\r\nContent-Length: 0\r\n\r\n"));
    }

    #[test]
    fn content_range_is_formatted_into_the_head() {
        for (range, line) in [
            (
                ContentRange::Bytes {
                    first: 0,
                    last: u64::MAX - 1,
                    len: u64::MAX,
                },
                "Content-Range: bytes 0-18446744073709551614/18446744073709551615\r\n",
            ),
            (
                ContentRange::Unsatisfied { len: 49 },
                "Content-Range: bytes */49\r\n",
            ),
        ] {
            let mut resp = Response::new(StatusCode::PARTIAL_CONTENT);
            resp.content_range = Some(range);
            let line_of = HeadLine {
                status: resp.status,
                content_length: Some(u64::MAX),
                chunked: false,
                conn: ConnHeader::Close,
            };
            let mut out = Vec::new();
            write_head(&mut out, line_of, &imf_fixdate(0), &resp);
            assert!(out.len() <= head_len_bound(&resp));
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains(line), "{text}");
        }
    }

    #[test]
    fn dynamic_head_layout() {
        let resp = Response::new(StatusCode::from_u16(299).unwrap())
            .header("X-One", "1")
            .content_type(String::from("application/json"))
            .header("x-two", Bytes::from(vec![b'2'; 3]))
            .header("X-Three", "3");
        assert!(!resp.invalid);
        let line = HeadLine {
            status: resp.status,
            content_length: None,
            chunked: true,
            conn: ConnHeader::KeepAlive,
        };
        let mut out = bytes::BytesMut::new();
        write_head(&mut out, line, &imf_fixdate(0), &resp);
        assert!(out.len() <= head_len_bound(&resp));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 299 \r\nServer: synack\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\
             Content-Type: application/json\r\nX-One: 1\r\nx-two: 222\r\nX-Three: 3\r\n\
             Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn fields_that_would_break_framing_are_refused() {
        for (name, value) in [
            ("Content-Length", "5"),
            ("transfer-encoding", "chunked"),
            ("Connection", "close"),
            ("Date", "x"),
            ("Server", "x"),
            ("Bad Name", "x"),
            ("", "x"),
            ("X-Split", "a\r\nSet-Cookie: b"),
            ("X-Nul", "a\0b"),
        ] {
            assert!(
                Response::new(StatusCode::OK).header(name, value).invalid,
                "{name}: {value:?}"
            );
        }
        assert!(Response::new(StatusCode::OK).content_type("a\nb").invalid);
        assert!(
            !Response::new(StatusCode::OK)
                .header("X-Ok", "a\tb \u{e9}")
                .invalid
        );
    }

    #[test]
    fn status_codes() {
        assert_eq!(StatusCode::from_u16(99), None);
        assert_eq!(StatusCode::from_u16(1000), None);
        assert_eq!(StatusCode::from_u16(418).unwrap().reason(), "");
        assert_eq!(
            StatusCode::HEADER_FIELDS_TOO_LARGE.to_string(),
            "431 Request Header Fields Too Large"
        );
        assert_eq!(StatusCode::NOT_FOUND.class(), 4);
        assert!(
            StatusCode::NO_CONTENT.has_no_content() && StatusCode::NOT_MODIFIED.has_no_content()
        );
        assert!(!StatusCode::OK.has_no_content());
    }

    #[test]
    fn chunk_size_lines() {
        for len in [0usize, 1, 15, 16, 255, 256, 4095, 65536, usize::MAX] {
            let mut out = Vec::new();
            write_chunk_size(&mut out, len);
            assert_eq!(out, format!("{len:x}\r\n").into_bytes());
            assert_eq!(chunk_overhead(len), out.len() + 2, "{len}");
        }
    }

    #[test]
    fn head_cache_rebuilds_once_per_second_and_variant() {
        let mut cache = HeadCache::new(1);
        let mut d = HttpDate::new(100);
        assert!(cache.get(0, ConnHeader::Default, &d).is_none());
        cache.put(0, ConnHeader::Default, &d, Bytes::from_static(b"a"));
        assert_eq!(cache.get(0, ConnHeader::Default, &d).unwrap(), "a");
        assert!(cache.get(0, ConnHeader::Close, &d).is_none());
        assert_eq!(cache.rebuilds(), 1);
        d.set(101);
        assert!(cache.get(0, ConnHeader::Default, &d).is_none());
    }
}
