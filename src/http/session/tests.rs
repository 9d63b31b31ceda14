//! Session tests: a fake connection feeds bytes to an [`HttpApp`] through a real [`AppIo`] over
//! a [`RecvBuf`] and [`SendBuf`], as the engine would, and reads back what was queued.

use super::*;
use crate::http::Content;
use crate::tcp::app::{ConnId, WakeQueue};
use crate::tcp::buffer::{RecvBuf, SendBuf};
use crate::tcp::config::TcpConfig;
use crate::tcp::segment::PayloadSource;
use proptest::prelude::*;
use std::sync::Arc;

/// Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example date).
const WALL: u64 = 784_111_777;
const T0: Instant = Instant::from_millis(5_000_000);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn site() -> Arc<Content> {
    Arc::new(Content::from_files([
        ("index.html", Bytes::from_static(b"<h1>home</h1>")),
        ("style.css", Bytes::from_static(b"body { color: red }")),
        ("docs/index.html", Bytes::from_static(b"docs index")),
        ("docs/a b.txt", Bytes::from_static(b"spaced")),
        ("img/logo.png", Bytes::from_static(b"\x89PNG")),
        ("app.wasm", Bytes::from_static(b"\0asm")),
    ]))
}

fn app_with(config: HttpConfig) -> HttpApp {
    let mut app = HttpApp::new(config, StaticFiles::new(site()));
    app.set_wall_clock(WALL);
    app
}

fn app() -> HttpApp {
    app_with(HttpConfig::default())
}

/// One connection as the engine would drive it.
struct Conn {
    recv: RecvBuf,
    send: SendBuf,
    peer_closed: bool,
    deadline: Option<Instant>,
    closed: bool,
    session: HttpSession,
    out: Vec<u8>,
    wakes: WakeQueue,
    /// The per-connection send limit the engine would apply.
    send_limit: usize,
}

fn test_conn() -> ConnInfo {
    ConnInfo::new(
        ConnId {
            slot: 0,
            generation: 0,
        },
        Default::default(),
        false,
    )
}

impl Conn {
    fn open<H: Handler + 'static>(app: &mut HttpApp<H>, now: Instant) -> Conn {
        Conn::open_with_buffer(app, now, 64 * 1024)
    }

    fn open_with_buffer<H: Handler + 'static>(
        app: &mut HttpApp<H>,
        now: Instant,
        capacity: usize,
    ) -> Conn {
        Conn::open_with(app, now, capacity, TcpConfig::default().send_buffer)
    }

    fn open_with<H: Handler + 'static>(
        app: &mut HttpApp<H>,
        now: Instant,
        capacity: usize,
        send_limit: usize,
    ) -> Conn {
        let session = app.on_open(&test_conn(), now).unwrap();
        let mut c = Conn {
            recv: RecvBuf::new(capacity),
            send: SendBuf::new(),
            peer_closed: false,
            deadline: None,
            closed: false,
            session,
            out: Vec::new(),
            wakes: WakeQueue::new(1),
            send_limit,
        };
        // The engine calls on_readable once after on_open so the session arms its deadline.
        c.readable(app, now);
        c
    }

    /// Runs a callback, then acknowledges everything it queued at once; while it asks for
    /// `on_writable`, calls that too (as the engine does once room opens).
    fn with_io<H: Handler + 'static>(
        &mut self,
        app: &mut HttpApp<H>,
        now: Instant,
        f: impl FnOnce(&mut HttpApp<H>, &mut HttpSession, &mut AppIo<'_>),
    ) {
        let mut first = Some(f);
        loop {
            let mut io = AppIo::new(
                &mut self.recv,
                &mut self.send,
                self.peer_closed,
                self.deadline,
                &mut self.wakes,
            );
            io.send_limit = self.send_limit;
            let pushed = io.send.pushed();
            match first.take() {
                Some(f) => f(app, &mut self.session, &mut io),
                None => app.on_writable(&mut self.session, &mut io, now),
            }
            let (close, abort, deadline) = (io.close_requested, io.abort_requested, io.deadline);
            let writable = io.writable_below.is_some();
            assert!(!abort, "the responder never aborts");
            assert!(
                !(self.closed && self.send.pushed() > pushed),
                "nothing is sent after close"
            );
            assert!(
                self.send.len() <= self.send_limit,
                "{} bytes queued, over the send limit {}",
                self.send.len(),
                self.send_limit
            );
            self.closed |= close;
            self.deadline = deadline;
            let r = self.send.range(0, self.send.len());
            let mut bytes = vec![0u8; r.len()];
            r.copy_to(&mut bytes);
            self.send.ack(bytes.len());
            self.out.extend_from_slice(&bytes);
            if !writable {
                break;
            }
        }
    }

    fn readable<H: Handler + 'static>(&mut self, app: &mut HttpApp<H>, now: Instant) {
        self.with_io(app, now, |app, s, io| app.on_readable(s, io, now));
    }

    fn write<H: Handler + 'static>(&mut self, app: &mut HttpApp<H>, bytes: &[u8], now: Instant) {
        assert_eq!(
            self.recv.write_at(0, bytes).advanced,
            bytes.len(),
            "receive buffer full"
        );
        self.readable(app, now);
    }

    fn fin<H: Handler + 'static>(&mut self, app: &mut HttpApp<H>, now: Instant) {
        self.peer_closed = true;
        self.readable(app, now);
    }

    fn fire_deadline<H: Handler + 'static>(&mut self, app: &mut HttpApp<H>, now: Instant) {
        self.with_io(app, now, |app, s, io| app.on_deadline(s, io, now));
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = found.next();
        assert!(found.next().is_none(), "{name} twice");
        first
    }
}

/// Splits `out` into responses; `head_only[i]` says whether final response `i` answers a HEAD.
fn parse_responses(mut out: &[u8], head_only: &[bool]) -> Vec<Resp> {
    let mut v = Vec::new();
    let mut finals = 0;
    while !out.is_empty() {
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no head end in {:?}", String::from_utf8_lossy(out)))
            + 4;
        let head = std::str::from_utf8(&out[..end - 4]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status: u16 = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_string(), v.to_string())
            })
            .collect();
        out = &out[end..];
        let mut r = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if status >= 200 {
            let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
            if !head_only.get(finals).copied().unwrap_or(false) {
                r.body = out[..len].to_vec();
                out = &out[len..];
            }
            finals += 1;
        }
        v.push(r);
    }
    v
}

fn responses(out: &[u8]) -> Vec<Resp> {
    parse_responses(out, &[])
}

fn one(out: &[u8]) -> Resp {
    let mut v = responses(out);
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

const GET_ROOT: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

// ---------------------------------------------------------------- basic requests

#[test]
fn simple_get() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    assert_eq!(c.deadline, Some(T0 + HttpConfig::default().header_timeout));
    c.write(&mut app, GET_ROOT, T0);
    let r = one(&c.take());
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<h1>home</h1>");
    assert_eq!(r.header("Server"), Some("synack"));
    assert_eq!(r.header("Date"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("Content-Length"), Some("13"));
    assert_eq!(r.header("Connection"), None);
    assert!(!c.closed);
    assert_eq!(c.recv.len(), 0);
    assert_eq!(
        c.deadline,
        Some(T0 + HttpConfig::default().keepalive_timeout)
    );
    assert_eq!(app.stats().responses, 1);
    assert_eq!(app.stats().responses_by_class[2], 1);
}

#[test]
fn head_has_get_headers_and_no_body() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n", T0);
    let get = one(&c.take());
    c.write(&mut app, b"HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n", T0);
    let out = c.take();
    assert!(out.ends_with(b"\r\n\r\n"), "nothing after the head");
    let head = parse_responses(&out, &[true]).remove(0);
    assert_eq!(head.headers, get.headers);
    assert_eq!(head.header("Content-Length"), Some("19"));
    assert_eq!(head.header("Content-Type"), Some("text/css; charset=utf-8"));
    assert!(head.body.is_empty());
    // HEAD of a missing path: a 404 head, no body
    c.write(&mut app, b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n", T0);
    let out = c.take();
    assert!(out.ends_with(b"\r\n\r\n"));
    assert_eq!(parse_responses(&out, &[true])[0].status, 404);
    assert_eq!(app.stats().head_responses, 2);
}

#[test]
fn not_found_keeps_the_connection() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"GET /missing.html HTTP/1.1\r\nHost: x\r\n\r\n",
        T0,
    );
    let r = one(&c.take());
    assert_eq!(r.status, 404);
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert!(!c.closed);
    c.write(&mut app, GET_ROOT, T0);
    assert_eq!(one(&c.take()).status, 200);
}

#[test]
fn other_methods_get_405_with_allow_and_bodies_are_skipped() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    for m in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"] {
        let req = format!("{m} / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        c.write(&mut app, req.as_bytes(), T0);
        let r = one(&c.take());
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
        assert!(!c.closed);
    }
    c.write(&mut app, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", T0);
    assert_eq!(one(&c.take()).status, 405);
    // an unknown method token: 501 (RFC 9110 9.1), connection kept
    c.write(&mut app, b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", T0);
    assert_eq!(one(&c.take()).status, 501);
    assert!(!c.closed);
    assert_eq!(app.stats().body_bytes_discarded, 30);
}

// ---------------------------------------------------------------- errors

fn assert_refused(req: &[u8], status: u16, reason: RequestError) {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, req, T0);
    let out = c.take();
    let r = one(&out);
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(req));
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.closed, "closed after {status}");
    // Only the send timeout is left, for the response still queued when it was decided.
    assert_eq!(c.deadline, Some(T0 + HttpConfig::default().send_timeout));
    assert_eq!(app.stats().error_count(reason), 1, "{reason}");
    assert_eq!(c.recv.len(), 0);
    // whatever comes later is dropped
    c.write(&mut app, GET_ROOT, T0);
    assert!(c.take().is_empty());
}

#[test]
fn malformed_requests_get_400_and_close() {
    use RequestError::*;
    for (req, reason) in [
        (&b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"[..], BadMethod),
        (b"GET/ HTTP/1.1\r\nHost: x\r\n\r\n", BadMethod),
        (b"GET /HTTP/1.1\r\nHost: x\r\n\r\n", BadRequestLine),
        (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", BadRequestLine),
        (b"GET x HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        (b"GET /a\"b\x01 HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        (b"GET / HTTP/1.x\r\nHost: x\r\n\r\n", BadVersion),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
            BadHeaderName,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
            BadHeaderName,
        ),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", WhitespaceBeforeColon),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n",
            ObsFold,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
            BadHeaderValue,
        ),
        (b"GET / HTTP/1.1\nHost: x\n\n", BadLineEnding),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            TransferEncodingWithLength,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            ConflictingContentLength,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3x\r\n\r\n",
            BadContentLength,
        ),
        (b"GET / HTTP/1.1\r\n\r\n", MissingHost),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", BadHost),
        (b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        (
            b"GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
            BadTarget,
        ),
        (
            b"GET /docs/..%2F..%2Fetc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
            BadTarget,
        ),
        (b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        (b"GET /a%00 HTTP/1.1\r\nHost: x\r\n\r\n", BadTarget),
        (
            b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            TransferEncodingInHttp10,
        ),
    ] {
        assert_refused(req, 400, reason);
    }
}

#[test]
fn other_refusals() {
    assert_refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n",
        413,
        RequestError::BodyTooLarge,
    );
    assert_refused(
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        505,
        RequestError::VersionNotSupported,
    );
    assert_refused(
        b"GET / HTTP/3.0\r\nHost: x\r\n\r\n",
        505,
        RequestError::VersionNotSupported,
    );
    assert_refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
        RequestError::UnsupportedTransferEncoding,
    );
    // RFC 9112 6.3 (4): chunked not last is 400, whatever the coding.
    assert_refused(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        400,
        RequestError::ChunkedNotLast,
    );
    let long_uri = [
        b"GET /".as_slice(),
        &[b'a'; 9000],
        b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    .concat();
    assert_refused(&long_uri, 414, RequestError::UriTooLong);
    let big_head = [
        b"GET / HTTP/1.1\r\nHost: x\r\nCookie: ".as_slice(),
        &[b'c'; 20_000],
        b"\r\n\r\n",
    ]
    .concat();
    assert_refused(&big_head, 431, RequestError::HeadTooLarge);
}

#[test]
fn http_1_2_is_served_as_1_1() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", T0);
    let r = one(&c.take());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), None);
}

#[test]
fn oversized_head_without_end_gets_431_before_the_timeout() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    while req.len() < 17_000 {
        req.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    // arrives in pieces; the 431 goes out as soon as the limit is crossed
    for part in req.chunks(1000) {
        c.write(&mut app, part, T0);
        if c.closed {
            break;
        }
    }
    assert!(c.closed);
    assert_eq!(one(&c.take()).status, 431);
}

#[test]
fn receive_buffer_smaller_than_the_head_limit_gets_431() {
    let mut app = app();
    let mut c = Conn::open_with_buffer(&mut app, T0, 1024);
    let mut req = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: ".to_vec();
    req.resize(1024, b'c');
    c.write(&mut app, &req, T0);
    assert!(c.closed, "a full buffer cannot wait for more bytes");
    assert_eq!(one(&c.take()).status, 431);
}

#[test]
fn garbage_is_refused_at_once() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    // a TLS ClientHello's first bytes: no need to wait for a line end
    c.write(
        &mut app,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        T0,
    );
    assert!(c.closed);
    assert_eq!(one(&c.take()).status, 400);
}

// ---------------------------------------------------------------- persistence

#[test]
fn http_1_0_closes_unless_keep_alive() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET / HTTP/1.0\r\n\r\n", T0);
    let r = one(&c.take());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.closed);

    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        T0,
    );
    let r = one(&c.take());
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    assert!(!c.closed);
    c.write(
        &mut app,
        b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        T0,
    );
    let r = parse_responses(&c.take(), &[true]).remove(0);
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    c.write(&mut app, b"GET / HTTP/1.0\r\n\r\n", T0);
    assert_eq!(one(&c.take()).header("Connection"), Some("close"));
    assert!(c.closed);
}

#[test]
fn connection_close_is_honoured() {
    for value in ["close", "Close", "keep-alive, CLOSE", "foo,close ,bar"] {
        let mut app = app();
        let mut c = Conn::open(&mut app, T0);
        let req = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: {value}\r\n\r\n{}",
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        c.write(&mut app, req.as_bytes(), T0);
        let r = one(&c.take());
        assert_eq!(r.header("Connection"), Some("close"), "{value}");
        assert!(c.closed, "{value}");
        assert_eq!(
            c.recv.len(),
            0,
            "the pipelined request after close is dropped"
        );
    }
    // other tokens do not close
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed, upgrade\r\n\r\n",
        T0,
    );
    assert_eq!(one(&c.take()).header("Connection"), None);
    assert!(!c.closed);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /img/logo.png HTTP/1.1\r\nHost: x\r\n\r\nGET /sty",
        T0,
    );
    let v = parse_responses(&c.take(), &[false, true, false, false]);
    let statuses: Vec<u16> = v.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 404, 200]);
    assert_eq!(v[1].header("Content-Type"), Some("text/css; charset=utf-8"));
    assert_eq!(v[3].header("Content-Type"), Some("image/png"));
    assert_eq!(v[3].body, b"\x89PNG");
    // the partial fifth request waits, under the header timeout
    assert_eq!(c.recv.readable(), b"GET /sty");
    assert_eq!(c.deadline, Some(T0 + HttpConfig::default().header_timeout));
    c.write(&mut app, b"le.css HTTP/1.1\r\nHost: x\r\n\r\n", T0 + ms(1));
    assert_eq!(one(&c.take()).body, b"body { color: red }");
}

#[test]
fn request_split_byte_by_byte() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    let req = b"\r\nGET /style.css?v=3 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    for (i, b) in req.iter().enumerate() {
        c.write(&mut app, &[*b], T0 + ms(i as u64));
        if i + 1 < req.len() {
            assert!(c.out.is_empty(), "answered early at byte {i}");
            // the header timeout runs from the first byte and is not pushed back
            assert_eq!(c.deadline, Some(T0 + HttpConfig::default().header_timeout));
        }
    }
    let r = one(&c.take());
    assert_eq!(r.body, b"body { color: red }");
}

#[test]
fn peer_close_after_complete_requests_answers_then_closes() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.recv.write_at(
        0,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /style.css HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    c.fin(&mut app, T0);
    assert_eq!(responses(&c.take()).len(), 2);
    assert!(c.closed);

    let mut c = Conn::open(&mut app, T0);
    c.recv.write_at(0, b"GET / HTTP/1.1\r\nHo");
    c.fin(&mut app, T0);
    assert!(c.closed);
    assert!(c.take().is_empty(), "a partial request is not answered");
}

#[test]
fn max_requests_per_connection() {
    let mut app = app_with(HttpConfig {
        max_requests: 3,
        ..HttpConfig::default()
    });
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, &GET_ROOT.repeat(4), T0);
    let v = responses(&c.take());
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].header("Connection"), None);
    assert_eq!(v[1].header("Connection"), None);
    assert_eq!(v[2].header("Connection"), Some("close"));
    assert!(c.closed);
    assert_eq!(c.session.requests(), 3);
    assert_eq!(app.stats().closed_max_requests, 1);
}

// ---------------------------------------------------------------- bodies

#[test]
fn content_length_body_spanning_reads() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n012",
        T0,
    );
    assert!(c.out.is_empty(), "answered once the body is read");
    assert_eq!(c.recv.len(), 0, "body bytes are consumed, not buffered");
    assert_eq!(c.deadline, Some(T0 + HttpConfig::default().body_timeout));
    c.write(&mut app, b"345", T0 + ms(1));
    assert_eq!(
        c.deadline,
        Some(T0 + ms(1) + HttpConfig::default().body_timeout)
    );
    c.write(
        &mut app,
        b"6789GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n",
        T0 + ms(2),
    );
    let v = responses(&c.take());
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].body, b"<h1>home</h1>");
    assert_eq!(v[1].body, b"body { color: red }");
    assert_eq!(app.stats().body_bytes_discarded, 10);
}

#[test]
fn chunked_body_spanning_reads() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    let req = b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                4\r\nWiki\r\n7;name=value\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n\
                GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    for b in req {
        c.write(&mut app, &[*b], T0);
    }
    let v = responses(&c.take());
    assert_eq!(v.iter().map(|r| r.status).collect::<Vec<_>>(), [405, 200]);
    assert!(!c.closed);
    assert_eq!(app.stats().body_bytes_discarded, 67);
}

#[test]
fn chunked_body_errors_close() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        T0,
    );
    assert_eq!(one(&c.take()).status, 400);
    assert!(c.closed);

    let mut app = app_with(HttpConfig {
        max_body: 10,
        ..HttpConfig::default()
    });
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n",
        T0,
    );
    assert!(c.out.is_empty());
    c.write(&mut app, b"8\r\n", T0);
    assert_eq!(one(&c.take()).status, 413);
    assert!(c.closed);
    assert_eq!(app.stats().error_count(RequestError::BodyTooLarge), 1);
}

#[test]
fn expect_100_continue() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        T0,
    );
    assert_eq!(c.take(), b"HTTP/1.1 100 Continue\r\n\r\n");
    c.write(&mut app, b"data", T0);
    assert_eq!(one(&c.take()).status, 405);
    // the body already came along: no 100
    c.write(
        &mut app,
        b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata",
        T0,
    );
    assert_eq!(one(&c.take()).status, 405);
    assert_eq!(app.stats().continues, 1);
}

#[test]
fn peer_close_inside_a_body_closes() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01",
        T0,
    );
    c.fin(&mut app, T0);
    assert!(c.closed);
    assert!(c.take().is_empty());
}

// ---------------------------------------------------------------- timeouts

#[test]
fn header_timeout_sends_408_and_closes() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET / HT", T0 + ms(100));
    let due = T0 + ms(100) + HttpConfig::default().header_timeout;
    assert_eq!(c.deadline, Some(due));
    // a client dribbling bytes does not push the deadline back
    c.write(&mut app, b"T", T0 + ms(5_000));
    assert_eq!(c.deadline, Some(due));
    // an early call (a timer wheel's coarse tick) changes nothing
    c.fire_deadline(&mut app, Instant::from_micros(due.as_micros() - 1));
    assert!(!c.closed);
    assert_eq!(c.deadline, Some(due));
    c.fire_deadline(&mut app, due);
    let r = one(&c.take());
    assert_eq!(r.status, 408);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(c.closed);
    assert_eq!(c.deadline, Some(due + HttpConfig::default().send_timeout));
    assert_eq!(app.stats().timeouts_header, 1);
}

#[test]
fn header_timeout_can_close_silently() {
    let mut app = app_with(HttpConfig {
        send_408: false,
        ..HttpConfig::default()
    });
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET", T0);
    c.fire_deadline(&mut app, T0 + HttpConfig::default().header_timeout);
    assert!(c.closed);
    assert!(c.take().is_empty());
    assert_eq!(app.stats().timeouts_header, 1);
}

#[test]
fn idle_timeouts_close_silently() {
    let config = HttpConfig {
        header_timeout: Duration::from_secs(5),
        keepalive_timeout: Duration::from_secs(30),
        ..HttpConfig::default()
    };
    let mut app = app_with(config);
    // a new connection that never sends: closed after the header timeout
    let mut c = Conn::open(&mut app, T0);
    assert_eq!(c.deadline, Some(T0 + Duration::from_secs(5)));
    c.fire_deadline(&mut app, T0 + Duration::from_secs(5));
    assert!(c.closed);
    assert!(c.take().is_empty());

    // after a response: the keep-alive timeout
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, GET_ROOT, T0 + ms(10));
    c.take();
    assert_eq!(c.deadline, Some(T0 + ms(10) + Duration::from_secs(30)));
    c.fire_deadline(&mut app, T0 + ms(10) + Duration::from_secs(30));
    assert!(c.closed);
    assert!(c.take().is_empty());
    assert_eq!(app.stats().timeouts_idle, 2);
    assert_eq!(app.stats().timeouts_header, 0);
}

#[test]
fn body_timeout() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01",
        T0,
    );
    c.fire_deadline(&mut app, T0 + HttpConfig::default().body_timeout);
    assert_eq!(one(&c.take()).status, 408);
    assert!(c.closed);
    assert_eq!(app.stats().timeouts_body, 1);
}

// ---------------------------------------------------------------- content

#[test]
fn directories_index_and_redirect() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET /docs HTTP/1.1\r\nHost: x\r\n\r\n", T0);
    let r = one(&c.take());
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/docs/"));
    for target in [
        "/docs/",
        "/docs/index.html",
        "/docs/?q=1",
        "/docs//",
        "/img/../docs/",
    ] {
        c.write(
            &mut app,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            T0,
        );
        let r = one(&c.take());
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"docs index"[..]),
            "{target}"
        );
    }
    // a directory without index.html (403, as nginx), a file with a trailing slash (404)
    for (target, status) in [("/img/", 403), ("/style.css/", 404)] {
        c.write(
            &mut app,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            T0,
        );
        assert_eq!(one(&c.take()).status, status, "{target}");
    }
    assert!(!c.closed);
}

#[test]
fn paths_are_decoded_and_normalized() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    for (target, body) in [
        ("/docs/a%20b.txt", &b"spaced"[..]),
        ("/docs/./a%20b.txt", b"spaced"),
        ("/%73tyle.css", b"body { color: red }"),
        ("/docs/%2e%2e/style.css", b"body { color: red }"),
        (
            "http://example.com/style.css?x#frag",
            b"body { color: red }",
        ),
        ("/", b"<h1>home</h1>"),
        ("http://example.com", b"<h1>home</h1>"),
    ] {
        c.write(
            &mut app,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            T0,
        );
        let r = one(&c.take());
        assert_eq!((r.status, r.body.as_slice()), (200, body), "{target}");
    }
    c.write(&mut app, b"GET /app.wasm HTTP/1.1\r\nHost: x\r\n\r\n", T0);
    assert_eq!(
        one(&c.take()).header("Content-Type"),
        Some("application/wasm")
    );
}

#[test]
fn fixed_body_mode_serves_every_path() {
    let content = Arc::new(Content::fixed(Bytes::from_static(b"hello"), "text/plain"));
    let mut app = HttpApp::new(HttpConfig::default(), StaticFiles::new(content));
    let mut c = Conn::open(&mut app, T0);
    for target in ["/", "/anything", "/a/b/c?d"] {
        c.write(
            &mut app,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            T0,
        );
        let r = one(&c.take());
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        // before set_wall_clock, the epoch
        assert_eq!(r.header("Date"), Some("Thu, 01 Jan 1970 00:00:00 GMT"));
    }
}

// ---------------------------------------------------------------- date and caching

#[test]
fn date_follows_the_wall_clock_and_heads_are_reused() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    for _ in 0..999 {
        c.write(&mut app, GET_ROOT, T0);
    }
    assert_eq!(responses(&c.take()).len(), 999);
    assert_eq!(
        app.stats().head_rebuilds,
        1,
        "one head for 999 responses in one second"
    );
    app.set_wall_clock(WALL + 1);
    c.write(&mut app, GET_ROOT, T0);
    assert_eq!(
        one(&c.take()).header("Date"),
        Some("Sun, 06 Nov 1994 08:49:38 GMT")
    );
    assert_eq!(app.stats().head_rebuilds, 2);
}

#[test]
fn closed_connections_drop_later_bytes_and_count() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET / HTTP/1.0\r\n\r\n", T0);
    assert!(c.closed);
    c.take();
    c.write(&mut app, b"more bytes", T0);
    assert_eq!(c.recv.len(), 0);
    assert!(c.take().is_empty());
    let session = std::mem::replace(&mut c.session, HttpSession::new(T0));
    app.on_close(session, CloseReason::Normal, T0);
    assert_eq!(app.stats().connections_opened, 1);
    assert_eq!(app.stats().connections_closed, 1);
}

// ---------------------------------------------------------------- properties

fn request_strategy() -> impl Strategy<Value = (Vec<u8>, bool)> {
    prop_oneof![
        Just((GET_ROOT.to_vec(), false)),
        Just((b"HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), true)),
        Just((b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), false)),
        Just((b"GET /docs HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), false)),
        Just((
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nabcdefg".to_vec(),
            false
        )),
        Just((
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: v\r\n\r\n"
                .to_vec(),
            false
        )),
        Just((b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec(), false)),
    ]
}

proptest! {
    /// However a stream of valid requests is cut into reads, the answers are the same.
    #[test]
    fn splitting_does_not_change_answers(
        reqs in proptest::collection::vec(request_strategy(), 1..8),
        cuts in proptest::collection::vec(1usize..40, 0..40),
    ) {
        let stream: Vec<u8> = reqs.iter().flat_map(|(r, _)| r.clone()).collect();
        let heads: Vec<bool> = reqs.iter().map(|(_, h)| *h).collect();

        let mut app1 = app();
        let mut whole = Conn::open(&mut app1, T0);
        whole.write(&mut app1, &stream, T0);
        let expected = parse_responses(&whole.take(), &heads);
        prop_assert_eq!(expected.len(), reqs.len());

        let mut app2 = app();
        let mut pieces = Conn::open(&mut app2, T0);
        let mut rest = &stream[..];
        let mut cuts = cuts.into_iter();
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
            pieces.write(&mut app2, &rest[..n], T0);
            rest = &rest[n..];
        }
        prop_assert_eq!(parse_responses(&pieces.take(), &heads), expected);
        prop_assert!(!pieces.closed);
        prop_assert_eq!(pieces.recv.len(), 0);
    }

    /// Random bytes in random reads: no panic, nothing held beyond one head, and the session
    /// either waits for more (with a deadline) or has closed.
    #[test]
    fn random_bytes_are_handled(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        cuts in proptest::collection::vec(1usize..300, 0..30),
        prefix in proptest::sample::select(vec![
            &b""[..], b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        ]),
        fin in any::<bool>(),
    ) {
        let mut app = app_with(HttpConfig { max_header_bytes: 1024, ..HttpConfig::default() });
        let mut c = Conn::open_with_buffer(&mut app, T0, 4096);
        let stream = [prefix, &data[..]].concat();
        let mut rest = &stream[..];
        let mut cuts = cuts.into_iter();
        let mut t = T0;
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).min(rest.len()).min(c.recv.window());
            prop_assert!(n > 0, "the responder left the receive buffer full");
            c.write(&mut app, &rest[..n], t);
            rest = &rest[n..];
            t += ms(1);
            prop_assert!(c.recv.len() <= 1024);
            prop_assert!(c.closed || c.deadline.is_some());
        }
        if fin {
            c.fin(&mut app, t);
            prop_assert!(c.closed);
        }
        if let Some(d) = c.deadline {
            c.fire_deadline(&mut app, d);
            prop_assert!(c.closed);
        }
        // every queued byte belongs to a well-formed response
        let out = c.take();
        let n = responses(&out).len() as u64;
        prop_assert_eq!(n, app.stats().responses + app.stats().continues);
    }
}

/// An HTTP/0.9 request line (`GET /`, no version) is answered at once (400, closed), not after
/// the header timeout: nothing that follows could make it a valid HTTP/1.x request. (nginx
/// answers it in HTTP/0.9, the bare body; synack serves only HTTP/1.x.)
#[test]
fn http_0_9_request_line_is_refused_at_once() {
    let mut app = app();
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET /\r\n", T0);
    assert!(c.closed, "waiting for a head that cannot come");
    let r = one(&c.take());
    assert_eq!(r.status, 400);
    assert_eq!(app.stats().error_count(RequestError::BadRequestLine), 1);
}

// ---------------------------------------------------------------- send timeout

/// A connection whose peer acknowledges only what the test says (unlike [`Conn`]).
struct SlowReader {
    recv: RecvBuf,
    send: SendBuf,
    session: HttpSession,
    deadline: Option<Instant>,
    /// When the peer last acknowledged new bytes, as the engine reports it.
    progress: Instant,
    closed: bool,
    aborted: bool,
}

impl SlowReader {
    fn open(app: &mut HttpApp, now: Instant) -> SlowReader {
        SlowReader {
            recv: RecvBuf::new(64 * 1024),
            send: SendBuf::new(),
            session: app.on_open(&test_conn(), now).unwrap(),
            deadline: None,
            progress: now,
            closed: false,
            aborted: false,
        }
    }

    fn call(&mut self, f: impl FnOnce(&mut HttpSession, &mut AppIo<'_>)) {
        let mut wakes = WakeQueue::new(1);
        let mut io = AppIo::new(
            &mut self.recv,
            &mut self.send,
            false,
            self.deadline,
            &mut wakes,
        );
        io.send_progress = self.progress;
        f(&mut self.session, &mut io);
        self.deadline = io.deadline;
        self.closed |= io.close_requested;
        self.aborted |= io.abort_requested;
    }

    fn request(&mut self, app: &mut HttpApp, req: &[u8], now: Instant) {
        self.recv.write_at(0, req);
        self.call(|s, io| app.on_readable(s, io, now));
    }

    fn fire(&mut self, app: &mut HttpApp, now: Instant) {
        self.call(|s, io| app.on_deadline(s, io, now));
    }

    /// The peer acknowledges `n` bytes at `now`.
    fn ack(&mut self, n: usize, now: Instant) {
        self.send.ack(n);
        self.progress = now;
    }
}

#[test]
fn send_timeout_resets_a_response_without_progress() {
    let secs = Duration::from_secs;
    let mut app = app_with(HttpConfig {
        keepalive_timeout: secs(75),
        ..HttpConfig::default()
    });
    let mut c = SlowReader::open(&mut app, T0);
    c.request(&mut app, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", T0);
    assert!(c.send.len() > 100);
    // The send timeout comes before the keep-alive period.
    assert_eq!(c.deadline, Some(T0 + secs(60)));
    // Progress at 30 s: the next check is 60 s after it.
    c.ack(100, T0 + secs(30));
    c.fire(&mut app, T0 + secs(60));
    assert!(!c.aborted, "progress 30 s ago");
    // (the keep-alive check in between sees a response still going, and waits on)
    assert_eq!(c.deadline, Some(T0 + secs(75)));
    c.fire(&mut app, T0 + secs(75));
    assert!(!c.aborted);
    assert_eq!(c.deadline, Some(T0 + secs(90)));
    c.fire(&mut app, T0 + secs(90));
    assert!(c.aborted, "60 s without progress");
    assert_eq!(app.stats().timeouts_send, 1);
    assert_eq!(app.stats().timeouts_idle, 0);
}

#[test]
fn send_timeout_applies_after_the_server_closed() {
    let secs = Duration::from_secs;
    let mut app = app();
    let mut c = SlowReader::open(&mut app, T0);
    c.request(
        &mut app,
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        T0 + secs(1),
    );
    assert!(c.closed && !c.send.is_empty());
    // Nothing else can end it (the FIN waits behind the response): the send timeout does.
    assert_eq!(c.deadline, Some(T0 + secs(61)));
    c.fire(&mut app, T0 + secs(61));
    assert!(c.aborted);
    assert_eq!(app.stats().timeouts_send, 1);
    // Once all is acknowledged, no deadline is left.
    let mut c = SlowReader::open(&mut app, T0);
    c.request(
        &mut app,
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        T0,
    );
    let n = c.send.len();
    c.ack(n, T0 + secs(2));
    c.fire(&mut app, T0 + secs(60));
    assert!(!c.aborted);
    assert_eq!(c.deadline, None);
}

/// Pipelined requests from a peer that does not read: the session stops reading once its
/// queued responses reach the bound, asks to be woken when half has drained, and answers every
/// request in order as the peer acknowledges (a session that answered all 1000 at once queued
/// 2000 chunks).
#[test]
fn pipelining_stops_reading_while_responses_pile_up() {
    let mut app = app();
    let now = T0;
    let mut recv = RecvBuf::new(64 * 1024);
    let mut send = SendBuf::new();
    let mut session = app.on_open(&test_conn(), now).unwrap();
    let req = b"GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n";
    let all: Vec<u8> = req.repeat(1000);
    assert_eq!(recv.write_at(0, &all).advanced, all.len());
    let (max_chunks, max_bytes) = (
        app.config().max_queued_chunks,
        app.config().max_queued_bytes,
    );
    let mut out = Vec::new();
    let mut wakes = 0;
    let mut wakes_done = 0;
    loop {
        let mut wq = WakeQueue::new(1);
        let mut io = AppIo::new(&mut recv, &mut send, false, None, &mut wq);
        if wakes_done == 0 {
            app.on_readable(&mut session, &mut io, now);
        } else {
            app.on_writable(&mut session, &mut io, now);
        }
        wakes_done += 1;
        let resume = io.writable_below;
        assert!(
            send.chunks() <= max_chunks + 2 && send.len() <= max_bytes + 1024,
            "queued {} chunks, {} bytes",
            send.chunks(),
            send.len()
        );
        let Some(mark) = resume else {
            break;
        };
        wakes += 1;
        assert!(!recv.is_empty(), "paused with nothing left to read");
        assert!(mark < send.len(), "the mark {mark} must need a drain");
        // The peer acknowledges just enough to reach the mark; the engine then calls again.
        let n = send.len() - mark;
        let r = send.range(0, n);
        let mut bytes = vec![0u8; r.len()];
        r.copy_to(&mut bytes);
        out.extend_from_slice(&bytes);
        send.ack(n);
        assert!(wakes < 10_000, "no progress");
    }
    assert!(recv.is_empty(), "{} request bytes left unread", recv.len());
    let r = send.range(0, send.len());
    let mut bytes = vec![0u8; r.len()];
    r.copy_to(&mut bytes);
    out.extend_from_slice(&bytes);
    let rs = responses(&out);
    assert_eq!(rs.len(), 1000);
    assert!(
        rs.iter()
            .all(|r| r.status == 200 && r.body == b"body { color: red }")
    );
    assert!(wakes > 10, "paused only {wakes} times");
    assert_eq!(app.stats().read_pauses, wakes);
}

// ---------------------------------------------------------------- handlers

/// A dynamic handler: echoes what it was given, as text, one line per item.
#[derive(Default)]
struct Echo {
    calls: u32,
    /// Bodies over this many bytes are declined (`wants_body`).
    decline_over: Option<usize>,
}

impl Handler for Echo {
    fn handle(&mut self, req: &Request<'_>, _now: Instant) -> Response {
        self.calls += 1;
        let mut text = format!(
            "{} {} target={} query={} {:?}\n",
            req.method().as_str(),
            String::from_utf8_lossy(req.path()),
            req.target(),
            req.query().unwrap_or("-"),
            req.version(),
        );
        for (name, value) in req.headers() {
            text += &format!("{name}={}\n", String::from_utf8_lossy(value));
        }
        if let Some(v) = req.header("x-ECHO") {
            text += &format!("x-echo lookup={}\n", String::from_utf8_lossy(v));
        }
        text += &format!("body={}", String::from_utf8_lossy(req.body()));
        Response::new(StatusCode::OK)
            .content_type("text/plain")
            .header("X-Calls", self.calls.to_string())
            .body(text)
    }

    fn wants_body(&mut self, req: &Request<'_>) -> bool {
        match (self.decline_over, req.header("content-length")) {
            (Some(max), Some(len)) => {
                std::str::from_utf8(len).unwrap().parse::<usize>().unwrap() <= max
            }
            _ => true,
        }
    }
}

fn echo_app(config: HttpConfig) -> HttpApp<Echo> {
    let mut app = HttpApp::new(config, Echo::default());
    app.set_wall_clock(WALL);
    app
}

fn body_text(r: &Resp) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

#[test]
fn dynamic_handler_sees_method_path_headers_and_body() {
    let mut app = echo_app(HttpConfig::default());
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"POST /a/./b/../c%20d?x=1&y=%41#frag HTTP/1.1\r\nHost: h\r\nX-Echo:  one \r\n\
          x-echo: two\r\nContent-Length: 5\r\n\r\nhello",
        T0,
    );
    let r = one(&c.take());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert_eq!(r.header("X-Calls"), Some("1"));
    assert_eq!(r.header("Server"), Some("synack"));
    assert_eq!(r.header("Date"), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    assert_eq!(
        body_text(&r),
        "POST /a/c d target=/a/./b/../c%20d?x=1&y=%41#frag query=x=1&y=%41 Http11\n\
         Host=h\nX-Echo=one\nx-echo=two\nContent-Length=5\n\
         x-echo lookup=one\nbody=hello"
    );
    // Directories end in '/', the root is "/", HTTP/1.0 is told apart.
    c.write(
        &mut app,
        b"GET /docs/.. HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        T0,
    );
    let r = one(&c.take());
    assert!(body_text(&r).starts_with("GET / target=/docs/.. query=- Http10\n"));
    assert_eq!(r.header("Connection"), Some("keep-alive"));
    c.write(&mut app, b"DELETE /x/y/ HTTP/1.1\r\nHost: h\r\n\r\n", T0);
    assert!(body_text(&one(&c.take())).starts_with("DELETE /x/y/ target=/x/y/ "));
    c.write(&mut app, b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", T0);
    assert!(body_text(&one(&c.take())).starts_with("OPTIONS * target=* "));
    c.write(&mut app, b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", T0);
    assert!(body_text(&one(&c.take())).starts_with("BREW /pot "));
    assert!(!c.closed);
    assert_eq!(app.stats().body_bytes_collected, 5);
    assert_eq!(app.stats().body_bytes_discarded, 0);
}

#[test]
fn bodies_are_collected_across_reads_and_chunked_bodies_decoded() {
    let mut app = echo_app(HttpConfig::default());
    let mut c = Conn::open(&mut app, T0);
    let req = b"PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                4\r\nWiki\r\n7;name=value\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n\
                PUT /two HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
    for b in req {
        c.write(&mut app, &[*b], T0);
    }
    assert_eq!(c.recv.len(), 0);
    let v = responses(&c.take());
    assert_eq!(v.len(), 2);
    assert!(body_text(&v[0]).ends_with("body=Wikipedia in \r\nchunks."));
    assert!(body_text(&v[1]).starts_with("PUT /two "));
    assert!(body_text(&v[1]).ends_with("body=0123456789"));
    assert_eq!(app.stats().body_bytes_collected, 22 + 10);
    // A declined body is read and dropped; the handler sees an empty one.
    let mut app = HttpApp::new(
        HttpConfig::default(),
        Echo {
            decline_over: Some(3),
            ..Echo::default()
        },
    );
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab",
        T0,
    );
    c.write(&mut app, b"cd", T0);
    assert!(body_text(&one(&c.take())).ends_with("body="));
    assert_eq!(app.stats().body_bytes_discarded, 4);
    assert_eq!(app.stats().body_bytes_collected, 0);
}

#[test]
fn a_body_over_max_body_gets_413_without_calling_the_handler() {
    let config = HttpConfig {
        max_body: 8,
        ..HttpConfig::default()
    };
    let mut app = echo_app(config.clone());
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n12345678",
        T0,
    );
    assert_eq!(one(&c.take()).status, 200, "max_body itself is fine");
    c.write(
        &mut app,
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n123456789",
        T0,
    );
    let r = one(&c.take());
    assert_eq!((r.status, r.header("Connection")), (413, Some("close")));
    assert!(c.closed);
    assert_eq!(app.handler().calls, 1);

    // Chunked: refused when the chunk sizes announce more than max_body.
    let mut app = echo_app(config);
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n",
        T0,
    );
    assert!(c.out.is_empty());
    c.write(&mut app, b"4\r\n", T0);
    assert_eq!(one(&c.take()).status, 413);
    assert!(c.closed);
    assert_eq!(app.handler().calls, 0);
    assert_eq!(app.stats().error_count(RequestError::BodyTooLarge), 1);
}

#[test]
fn pipelined_dynamic_requests_are_answered_in_order() {
    let mut stream = Vec::new();
    for i in 0..20 {
        let req = match i % 3 {
            0 => format!("GET /r{i} HTTP/1.1\r\nHost: h\r\n\r\n"),
            1 => format!("POST /r{i} HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nb{i:02}"),
            _ => format!(
                "PUT /r{i} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nc{i:02}\r\n0\r\n\r\n"
            ),
        };
        stream.extend_from_slice(req.as_bytes());
    }
    // In one read, and cut into pieces that split heads and bodies.
    for cut in [stream.len(), 7] {
        let mut app = echo_app(HttpConfig::default());
        let mut c = Conn::open(&mut app, T0);
        for part in stream.chunks(cut) {
            c.write(&mut app, part, T0);
        }
        let v = responses(&c.take());
        assert_eq!(v.len(), 20, "cut {cut}");
        for (i, r) in v.iter().enumerate() {
            let text = body_text(r);
            assert!(text.contains(&format!(" /r{i} ")), "{i}: {text}");
            assert_eq!(r.header("X-Calls"), Some((i + 1).to_string().as_str()));
            match i % 3 {
                0 => assert!(text.ends_with("body=")),
                1 => assert!(text.ends_with(&format!("body=b{i:02}"))),
                _ => assert!(text.ends_with(&format!("body=c{i:02}"))),
            }
        }
        assert!(!c.closed);
        assert_eq!(c.recv.len(), 0);
    }
}

/// A body produced piece by piece: byte `i` of the body is `i % 251`.
struct Pattern {
    total: usize,
    sent: usize,
    /// Largest piece it hands out, whatever it is offered.
    piece: usize,
    /// Announce the length (Content-Length) rather than chunk.
    announce: bool,
    /// The largest `max` offered so far, shared with the test.
    offered: std::rc::Rc<std::cell::Cell<usize>>,
}

impl BodyStream for Pattern {
    fn length(&self) -> Option<u64> {
        self.announce.then_some(self.total as u64)
    }
    fn next_chunk(&mut self, max: usize) -> Option<Bytes> {
        assert!(max > 0);
        self.offered.set(self.offered.get().max(max));
        let n = self.piece.min(self.total - self.sent);
        let b: Vec<u8> = (self.sent..self.sent + n)
            .map(|i| (i % 251) as u8)
            .collect();
        self.sent += n;
        (n > 0).then(|| Bytes::from(b))
    }
}

fn pattern(total: usize) -> Vec<u8> {
    (0..total).map(|i| (i % 251) as u8).collect()
}

/// Serves `/N` as N pattern bytes; `/len/N` announces the length; `?piece=P` caps the pieces
/// the stream hands out (else it hands out all that is left, more than it is offered).
#[derive(Default)]
struct Streams {
    offered: std::rc::Rc<std::cell::Cell<usize>>,
}

impl Handler for Streams {
    fn handle(&mut self, req: &Request<'_>, _now: Instant) -> Response {
        let path = req.path_str().unwrap();
        let (announce, n) = match path.strip_prefix("/len/") {
            Some(n) => (true, n),
            None => (false, &path[1..]),
        };
        let piece = req
            .query()
            .and_then(|q| q.strip_prefix("piece="))
            .map_or(usize::MAX, |p| p.parse().unwrap());
        Response::new(StatusCode::OK).stream(Pattern {
            total: n.parse().unwrap(),
            sent: 0,
            piece,
            announce,
            offered: self.offered.clone(),
        })
    }
}

/// Decodes a chunked body (RFC 9112 7.1) at the front of `b`; returns it and the rest.
fn dechunk(mut b: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut body = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap(), 16).unwrap();
        b = &b[eol + 2..];
        if size == 0 {
            assert!(b.starts_with(b"\r\n"), "no trailers, then the end");
            return (body, &b[2..]);
        }
        body.extend_from_slice(&b[..size]);
        assert_eq!(&b[size..size + 2], b"\r\n");
        b = &b[size + 2..];
    }
}

/// Splits a head off the front of `out`.
fn split_head(out: &[u8]) -> (Resp, &[u8]) {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = std::str::from_utf8(&out[..end - 4]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_string(), v.to_string())
        })
        .collect();
    let r = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    (r, &out[end..])
}

#[test]
fn streamed_bodies_are_pulled_under_a_small_send_limit() {
    for limit in [64usize, 100, 1000] {
        let mut app = HttpApp::new(HttpConfig::default(), Streams::default());
        let mut c = Conn::open_with(&mut app, T0, 64 * 1024, limit);
        // Chunked (unknown length), then a known length, then a stream that hands out pieces
        // of its own size, pipelined: every byte in order, never over the limit (the harness
        // checks the queue after every callback).
        c.write(
            &mut app,
            b"GET /5000 HTTP/1.1\r\nHost: h\r\n\r\nGET /len/3000 HTTP/1.1\r\nHost: h\r\n\r\n\
              GET /2000?piece=700 HTTP/1.1\r\nHost: h\r\n\r\n",
            T0,
        );
        let out = c.take();
        let (r, rest) = split_head(&out);
        assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
        assert_eq!(r.header("Content-Length"), None);
        let (body, rest) = dechunk(rest);
        assert_eq!(body, pattern(5000), "limit {limit}");
        let (r, rest) = split_head(rest);
        assert_eq!(r.header("Content-Length"), Some("3000"));
        assert_eq!(r.header("Transfer-Encoding"), None);
        assert_eq!(&rest[..3000], pattern(3000));
        let (r, rest) = split_head(&rest[3000..]);
        assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
        let (body, rest) = dechunk(rest);
        assert_eq!(body, pattern(2000));
        assert!(rest.is_empty());
        assert!(!c.closed);
        assert!(
            app.handler().offered.get() <= limit,
            "offered more than fits"
        );
        assert_eq!(app.stats().handler_errors, 0);
        assert_eq!(app.stats().bytes_queued, out.len() as u64);
    }
}

#[test]
fn a_stream_to_http_1_0_ends_with_the_connection() {
    let mut app = HttpApp::new(HttpConfig::default(), Streams::default());
    let mut c = Conn::open_with(&mut app, T0, 64 * 1024, 512);
    c.write(
        &mut app,
        b"GET /4000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /1 HTTP/1.0\r\n\r\n",
        T0,
    );
    assert!(c.closed);
    let out = c.take();
    let (r, rest) = split_head(&out);
    // RFC 9112 6.3 (8): no length, no chunked for 1.0: the close ends the body.
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(r.header("Transfer-Encoding"), None);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(rest, pattern(4000));
}

#[test]
fn head_on_a_dynamic_handler_sends_the_get_head_only() {
    let mut app = echo_app(HttpConfig::default());
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n", T0);
    let get = one(&c.take());
    c.write(&mut app, b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", T0);
    let out = c.take();
    let (head, rest) = split_head(&out);
    assert!(rest.is_empty(), "no body after a HEAD response");
    assert_eq!(head.status, 200);
    // The echo's body says HEAD instead of GET (one byte longer); the other fields are GET's.
    let fields = |r: &Resp| {
        r.headers
            .iter()
            .filter(|(n, _)| n != "X-Calls" && n != "Content-Length")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(fields(&head)[..], fields(&get)[..]);
    let length = |r: &Resp| {
        r.header("Content-Length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    assert_eq!(length(&head), get.body.len() + 1);
    assert_eq!(app.stats().head_responses, 1);

    // A stream is not pulled for HEAD: known length announced, unknown omitted.
    let mut app = HttpApp::new(HttpConfig::default(), Streams::default());
    let mut c = Conn::open(&mut app, T0);
    c.write(
        &mut app,
        b"HEAD /len/300 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /300 HTTP/1.1\r\nHost: h\r\n\r\n",
        T0,
    );
    let out = c.take();
    let (a, rest) = split_head(&out);
    let (b, rest) = split_head(rest);
    assert!(rest.is_empty());
    assert_eq!(a.header("Content-Length"), Some("300"));
    assert_eq!(b.header("Content-Length"), None);
    assert_eq!(b.header("Transfer-Encoding"), None);
    assert_eq!(app.handler().offered.get(), 0, "nothing pulled");
    assert!(!c.closed);
}

/// Answers by path: `/204`, `/bad-header`, `/reserved`, `/interim`, `/close`; else an
/// empty 404.
struct Odd;

impl Handler for Odd {
    fn handle(&mut self, req: &Request<'_>, _now: Instant) -> Response {
        match req.path() {
            b"/204" => Response::new(StatusCode::NO_CONTENT).body("ignored"),
            b"/bad-header" => Response::new(StatusCode::OK).header("X-Split", "a\r\nb: c"),
            b"/reserved" => Response::new(StatusCode::OK).header("content-length", "1"),
            b"/interim" => Response::new(StatusCode::CONTINUE),
            b"/close" => Response::new(StatusCode::OK).body("bye").close_connection(),
            _ => Response::new(StatusCode::NOT_FOUND),
        }
    }
}

#[test]
fn framework_rules_apply_to_handler_answers() {
    let mut app = HttpApp::new(HttpConfig::default(), Odd);
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET /204 HTTP/1.1\r\nHost: h\r\n\r\n", T0);
    let out = c.take();
    let (r, rest) = split_head(&out);
    assert_eq!((r.status, r.header("Content-Length")), (204, None));
    assert!(rest.is_empty(), "204 has no content");
    for path in ["/bad-header", "/reserved", "/interim"] {
        c.write(
            &mut app,
            format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
            T0,
        );
        let r = one(&c.take());
        assert_eq!(r.status, 500, "{path}");
        assert_eq!(r.header("X-Split"), None);
    }
    assert_eq!(app.stats().handler_errors, 3);
    assert!(!c.closed, "a 500 keeps the connection");
    c.write(&mut app, b"GET /nothing HTTP/1.1\r\nHost: h\r\n\r\n", T0);
    assert_eq!(one(&c.take()).header("Content-Length"), Some("0"));
    c.write(&mut app, b"GET /close HTTP/1.1\r\nHost: h\r\n\r\n", T0);
    let r = one(&c.take());
    assert_eq!(
        (r.header("Connection"), r.body.as_slice()),
        (Some("close"), &b"bye"[..])
    );
    assert!(c.closed);
}

/// A response larger than the send limit on a connection that closes after it: the FIN waits
/// until the whole body is queued. (Before, `close` came with the head and the rest of the
/// body was offered to a send queue that was already closed: the body was cut short.)
#[test]
fn a_large_response_then_close_is_sent_whole() {
    let big = Bytes::from(pattern(300 * 1024));
    let content = Arc::new(Content::from_files([("big.bin", big.clone())]));
    let mut app = HttpApp::new(HttpConfig::default(), StaticFiles::new(content));
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, b"GET /big.bin HTTP/1.0\r\n\r\n", T0);
    assert!(c.closed);
    let r = one(&c.take());
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.body.len(), big.len());
    assert!(r.body == big);
}

/// Responses marked with a cache key share one head per second and `Connection` form.
#[test]
fn keyed_responses_reuse_their_head() {
    struct Keyed;
    impl Handler for Keyed {
        fn handle(&mut self, _req: &Request<'_>, _now: Instant) -> Response {
            Response::new(StatusCode::OK)
                .content_type("text/plain")
                .body("same")
                .cache_head(0)
        }
        fn head_cache_slots(&self) -> usize {
            1
        }
    }
    let mut app = HttpApp::new(HttpConfig::default(), Keyed);
    app.set_wall_clock(WALL);
    let mut c = Conn::open(&mut app, T0);
    c.write(&mut app, &GET_ROOT.repeat(50), T0);
    let v = responses(&c.take());
    assert_eq!(v.len(), 50);
    assert!(
        v.iter()
            .all(|r| r.body == b"same" && r.headers == v[0].headers)
    );
    assert_eq!(app.stats().head_rebuilds, 1);
}

/// Bodies collected over several reads share the worker's budget: a connection whose body
/// would go beyond it gets 503; the memory comes back when a request or a connection ends.
#[test]
fn collected_bodies_are_bounded_per_worker() {
    let mut app = echo_app(HttpConfig {
        max_body_memory: 4096,
        ..HttpConfig::default()
    });
    let post = |n: usize| format!("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: {n}\r\n\r\nab");
    let mut a = Conn::open(&mut app, T0);
    a.write(&mut app, post(3000).as_bytes(), T0);
    assert!(a.out.is_empty(), "waiting for the body");
    let held = app.body_memory();
    assert!((3000..4096).contains(&held), "{held}");
    // A second slow upload does not fit beside it.
    let mut b = Conn::open(&mut app, T0);
    b.write(&mut app, post(2000).as_bytes(), T0);
    let r = one(&b.take());
    assert_eq!((r.status, r.header("Connection")), (503, Some("close")));
    assert!(b.closed);
    assert_eq!(app.stats().error_count(RequestError::BodyMemory), 1);
    assert_eq!(app.handler().calls, 0);
    assert_eq!(
        app.body_memory(),
        held,
        "the refused connection's buffer is freed"
    );
    // A body that arrives whole is handed over in place: no budget needed.
    let mut c = Conn::open(&mut app, T0);
    let whole = [post(2000).as_bytes(), &vec![b'w'; 1998]].concat();
    c.write(&mut app, &whole, T0);
    assert_eq!(one(&c.take()).status, 200);
    // The first upload completes; its buffer is kept (small) and counted until it closes.
    a.write(&mut app, &vec![b'x'; 2998], T0);
    let text = body_text(&one(&a.take()));
    assert!(
        text.ends_with(&"x".repeat(2998)),
        "{}",
        &text[..200.min(text.len())]
    );
    assert_eq!(app.body_memory(), held);
    let session = std::mem::replace(&mut a.session, HttpSession::new(T0));
    app.on_close(session, CloseReason::Normal, T0);
    assert_eq!(app.body_memory(), 0);
}

#[test]
fn access_log_records_each_response_once_complete() {
    use crate::http::{AccessLog, AccessLogFormat};
    let path = std::env::temp_dir().join(format!("synack-unit-access-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let log = AccessLog::open(&path, AccessLogFormat::Combined, 64).unwrap();
    let mut app =
        HttpApp::new(HttpConfig::default(), Streams::default()).with_access_log(log.sink());
    app.set_wall_clock(WALL);
    // A send limit of 100 bytes: the 3000-byte body is pulled over many `on_writable`s, and
    // its record waits until the last byte is queued.
    let mut c = Conn::open_with(&mut app, T0, 64 * 1024, 100);
    c.write(&mut app, b"GET /len/3000 HTTP/1.1\r\nHost: h\r\n", T0);
    c.write(
        &mut app,
        b"User-Agent: t\"\xc3\xa9\r\nReferer: http://r/\r\n\r\nHEAD /len/10 HTTP/1.1\r\nHost: h\r\n\r\n\
          GET /100 HTTP/1.1\r\nHost: h\r\n\r\n",
        T0 + ms(250),
    );
    c.write(&mut app, b"BLAH\r\n\r\n", T0 + ms(300));
    assert!(c.closed);
    let out = c.take();
    assert_eq!(app.access_log_dropped(), 0);
    drop(app);
    log.finish().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let at = "0.0.0.0 - - [06/Nov/1994:08:49:37 +0000]";
    assert_eq!(
        lines[0],
        format!(
            "{at} \"GET /len/3000 HTTP/1.1\" 200 3000 \"http://r/\" \"t\\x22\\xC3\\xA9\" 0.250"
        )
    );
    assert_eq!(
        lines[1],
        format!("{at} \"HEAD /len/10 HTTP/1.1\" 200 0 \"-\" \"-\" 0.000")
    );
    // Chunked: the body bytes count the chunk framing, as nginx's $body_bytes_sent does.
    let chunked: u64 = lines[2]
        .strip_prefix(&format!("{at} \"GET /100 HTTP/1.1\" 200 "))
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(chunked > 100 + 5, "{}", lines[2]);
    let at400 = out.windows(12).position(|w| w == b"HTTP/1.1 400").unwrap();
    let last = one(&out[at400..]);
    assert_eq!(
        lines[3],
        format!("{at} \"-\" 400 {} \"-\" \"-\" 0.000", last.body.len())
    );
}
