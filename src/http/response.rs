//! Responses: status codes (RFC 9110 section 15), header blocks (RFC 9112 section 4 and 5) built
//! once per resource and per second, and the IMF-fixdate of the `Date` header
//! (RFC 9110 5.6.7).
//!
//! A [`Resource`] is a complete response known at startup: status, content type, any extra
//! header lines and the body as [`Bytes`]. Per request the session sends two `Bytes` clones, a
//! cached head from [`HeadCache`] and the body. A cached head holds the `Date` of the second it
//! was built in; it is rebuilt lazily, on first use in a new second.

use bytes::Bytes;

/// The status codes this server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Continue,
    Ok,
    MovedPermanently,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    ContentTooLarge,
    UriTooLong,
    HeaderFieldsTooLarge,
    NotImplemented,
    VersionNotSupported,
}

impl Status {
    pub const fn code(self) -> u16 {
        match self {
            Status::Continue => 100,
            Status::Ok => 200,
            Status::MovedPermanently => 301,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::UriTooLong => 414,
            Status::HeaderFieldsTooLarge => 431,
            Status::NotImplemented => 501,
            Status::VersionNotSupported => 505,
        }
    }

    /// The reason phrase (RFC 9110 section 15; 431 from RFC 6585 section 5).
    pub const fn reason(self) -> &'static str {
        match self {
            Status::Continue => "Continue",
            Status::Ok => "OK",
            Status::MovedPermanently => "Moved Permanently",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::ContentTooLarge => "Content Too Large",
            Status::UriTooLong => "URI Too Long",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::NotImplemented => "Not Implemented",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    /// The class, 1 to 5 (the first digit of the code).
    pub const fn class(self) -> usize {
        (self.code() / 100) as usize
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.reason())
    }
}

/// The `Connection` header a response carries (RFC 9112 9.3 and 9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnHeader {
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
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A complete response prepared at startup.
#[derive(Clone, Debug)]
pub struct Resource {
    pub status: Status,
    pub content_type: &'static str,
    /// Extra header lines, each ending in CRLF (`Location: ...`, `Allow: ...`); often empty.
    pub extra_headers: Box<[u8]>,
    pub body: Bytes,
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

/// Writes a response head: status line, `Server`, `Date`, `Content-Type` (if any),
/// `Content-Length`, the extra lines, `Connection` (if needed) and the empty line.
/// The status line says HTTP/1.1 whatever the request's minor version (RFC 9110 6.2).
pub fn write_head(
    out: &mut Vec<u8>,
    status: Status,
    date: &[u8; IMF_FIXDATE_LEN],
    content_type: &str,
    content_length: u64,
    extra_headers: &[u8],
    conn: ConnHeader,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    let mut code = [0u8; 3];
    put_digits(&mut code, status.code() as u64);
    out.extend_from_slice(&code);
    out.push(b' ');
    out.extend_from_slice(status.reason().as_bytes());
    out.extend_from_slice(b"\r\nServer: synack\r\nDate: ");
    out.extend_from_slice(date);
    if !content_type.is_empty() {
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(content_type.as_bytes());
    }
    out.extend_from_slice(b"\r\nContent-Length: ");
    let mut digits = [0u8; 20];
    let n = decimal_len(content_length);
    put_digits(&mut digits[..n], content_length);
    out.extend_from_slice(&digits[..n]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(extra_headers);
    match conn {
        ConnHeader::Default => {}
        ConnHeader::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ConnHeader::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

fn decimal_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Prepared heads, one per (resource, `Connection` variant), each valid for the wall-clock
/// second it was built in. The same head serves GET and HEAD (RFC 9110 9.3.2: HEAD gets the
/// header fields GET would get, `Content-Length` included).
pub struct HeadCache {
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
    /// A cache for resources `0..resources`.
    pub fn new(resources: usize) -> Self {
        HeadCache {
            slots: vec![Default::default(); resources],
            rebuilds: 0,
        }
    }

    /// The head of resource `index` (described by `res`) for `conn` at `date`, built now if
    /// the cached one is from another second. `index` must be below the size given to `new`.
    pub fn head(
        &mut self,
        index: usize,
        res: &Resource,
        conn: ConnHeader,
        date: &HttpDate,
    ) -> &Bytes {
        let slot = &mut self.slots[index][conn as usize];
        if slot.second != Some(date.secs()) {
            let mut out =
                Vec::with_capacity(160 + res.content_type.len() + res.extra_headers.len());
            write_head(
                &mut out,
                res.status,
                date.as_bytes(),
                res.content_type,
                res.body.len() as u64,
                &res.extra_headers,
                conn,
            );
            slot.head = Bytes::from(out);
            slot.second = Some(date.secs());
            self.rebuilds += 1;
        }
        &slot.head
    }

    /// How many heads were built so far (a test of "once per second", and a statistic).
    pub fn rebuilds(&self) -> u64 {
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
        write_head(
            &mut out,
            Status::MethodNotAllowed,
            &imf_fixdate(0),
            "text/html",
            1234,
            b"Allow: GET, HEAD\r\n",
            ConnHeader::Close,
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nServer: synack\r\n\
             Date: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Type: text/html\r\n\
             Content-Length: 1234\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n"
        );
        out.clear();
        write_head(
            &mut out,
            Status::Ok,
            &imf_fixdate(0),
            "",
            0,
            b"",
            ConnHeader::Default,
        );
        assert!(out.ends_with(b"GMT\r\nContent-Length: 0\r\n\r\n"));
    }

    #[test]
    fn head_cache_rebuilds_once_per_second_and_variant() {
        let res = Resource {
            status: Status::Ok,
            content_type: "text/plain",
            extra_headers: Box::new([]),
            body: Bytes::from_static(b"hi"),
        };
        let mut cache = HeadCache::new(1);
        let mut d = HttpDate::new(100);
        let a = cache.head(0, &res, ConnHeader::Default, &d).clone();
        let b = cache.head(0, &res, ConnHeader::Default, &d).clone();
        assert_eq!(a.as_ptr(), b.as_ptr(), "same second: the same shared head");
        assert_eq!(cache.rebuilds(), 1);
        let c = cache.head(0, &res, ConnHeader::Close, &d).clone();
        assert!(c.ends_with(b"Connection: close\r\n\r\n"));
        assert_eq!(cache.rebuilds(), 2);
        d.set(101);
        let e = cache.head(0, &res, ConnHeader::Default, &d).clone();
        assert_ne!(a, e);
        assert!(e.windows(8).any(|w| w == b"00:01:41"));
        assert_eq!(cache.rebuilds(), 3);
    }
}
