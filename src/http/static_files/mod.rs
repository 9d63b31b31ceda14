//! The static responder's request path: [`StaticFiles`], the [`Handler`] of `synack serve`,
//! over a [`Content`] prepared at load (`super::content`), and the parsers of the request
//! fields it reads (`parse`).
//!
//! Per request, a file costs a scan of the request's fields and no allocation, except a
//! `multipart/byteranges` answer (its part heads and the list of parts) and a redirect whose
//! target keeps a query (its `Location`). The fixed (`--body`) mode returns its prepared answer
//! before any field is looked at.

mod parse;

pub(crate) use parse::etag;

use std::sync::Arc;

use bytes::Bytes;

use super::content::{Content, FileRef, Rep};
use super::handler::{Handler, Request};
use super::request::Method;
use super::response::{BodyStream, ContentRange, Response, StatusCode};
use crate::time::Instant;
use parse::{Ranges, coding_quality, etag_matches, http_date, parse_ranges};

/// The request fields a file answer depends on.
#[derive(Default)]
struct FileFields<'a> {
    if_match: Option<&'a [u8]>,
    if_none_match: Option<&'a [u8]>,
    if_modified_since: Option<&'a [u8]>,
    if_unmodified_since: Option<&'a [u8]>,
    range: Option<&'a [u8]>,
    if_range: Option<&'a [u8]>,
    accept_encoding: Option<&'a [u8]>,
}

impl<'a> FileFields<'a> {
    /// One pass over the fields; the first of each name counts.
    fn of(req: &Request<'a>) -> FileFields<'a> {
        let mut f = FileFields::default();
        for (name, value) in req.headers() {
            let slot = match name.len() {
                5 if name.eq_ignore_ascii_case("range") => &mut f.range,
                8 if name.eq_ignore_ascii_case("if-match") => &mut f.if_match,
                8 if name.eq_ignore_ascii_case("if-range") => &mut f.if_range,
                13 if name.eq_ignore_ascii_case("if-none-match") => &mut f.if_none_match,
                15 if name.eq_ignore_ascii_case("accept-encoding") => &mut f.accept_encoding,
                17 if name.eq_ignore_ascii_case("if-modified-since") => &mut f.if_modified_since,
                19 if name.eq_ignore_ascii_case("if-unmodified-since") => {
                    &mut f.if_unmodified_since
                }
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        f
    }
}

/// The static responder as a [`Handler`]: GET and HEAD of [`Content`] (a directory loaded at
/// startup, or one fixed body), 405 with `Allow: GET, HEAD` for the other methods of RFC 9110,
/// 501 for unknown ones. Request bodies are read and dropped. Whole answers are prepared, so
/// their heads are cached ([`Response::cache_head`]): answering is two `Bytes` clones; a 206 is
/// a slice of the file's `Bytes`.
pub struct StaticFiles {
    content: Arc<Content>,
    /// Numbers the `multipart/byteranges` boundaries, as nginx does.
    boundaries: u64,
}

impl StaticFiles {
    /// A responder over `content` (shared by the workers).
    pub fn new(content: Arc<Content>) -> StaticFiles {
        StaticFiles {
            content,
            boundaries: 0,
        }
    }

    /// What it serves.
    pub fn content(&self) -> &Arc<Content> {
        &self.content
    }

    /// Serves `content` from now on (a reload). Responses already queued keep the old bytes.
    /// Its [`HttpApp`](super::HttpApp) must then forget its cached heads
    /// ([`HttpApp::handler_changed`](super::HttpApp::handler_changed)).
    pub fn replace(&mut self, content: Arc<Content>) {
        self.content = content;
    }

    /// The answer for a file, RFC 9110 13.2.2's order: the representation the client accepts,
    /// then If-Match (else If-Unmodified-Since), If-None-Match (else If-Modified-Since), then
    /// Range with If-Range (GET only).
    fn file(&mut self, file: FileRef, req: &Request<'_>) -> Response {
        let c = &*self.content;
        let f = FileFields::of(req);
        let mut rep = file.identity;
        if let Some(ae) = f.accept_encoding {
            let mut best = 0;
            for (variant, coding) in [(file.br, &b"br"[..]), (file.gzip, b"gzip")] {
                if let Some(v) = variant {
                    let q = coding_quality(ae, coding);
                    if q > best {
                        (best, rep) = (q, v);
                    }
                }
            }
        }
        let rep = &c.reps[rep as usize];
        let failed = || {
            let mut r = c.answer(c.error(StatusCode::PRECONDITION_FAILED));
            r.raw_fields = rep.failed_fields.clone();
            r.head_key = None;
            r
        };
        // RFC 9110 13.1.1 (strong comparison), 13.1.4 (ignored with If-Match, or not a date).
        if let Some(v) = f.if_match {
            if !etag_matches(v, &rep.etag, false) {
                return failed();
            }
        } else if let Some(date) = f.if_unmodified_since.and_then(http_date)
            && rep.mtime > date
        {
            return failed();
        }
        // RFC 9110 13.1.2 (weak comparison), 13.1.3 (ignored with If-None-Match).
        if let Some(v) = f.if_none_match {
            if etag_matches(v, &rep.etag, true) {
                return c.answer(rep.not_modified);
            }
        } else if let Some(date) = f.if_modified_since.and_then(http_date)
            && rep.mtime <= date
        {
            return c.answer(rep.not_modified);
        }
        // RFC 9110 14.2: ranges for GET only; 13.1.5: If-Range, an exact match of the strong
        // ETag or of the Last-Modified date.
        if let (Method::Get, Some(range), true) = (req.method(), f.range, rep.ranges) {
            let fresh = match f.if_range {
                None => true,
                Some(v) if v.ends_with(b"\"") => *v == *rep.etag,
                Some(v) => http_date(v) == Some(rep.mtime),
            };
            if fresh {
                let len = rep.body.len() as u64;
                match parse_ranges(range, len, |_, _| {}) {
                    Ranges::Ignore => {}
                    Ranges::Unsatisfiable => {
                        let mut r = c.answer(c.error(StatusCode::RANGE_NOT_SATISFIABLE));
                        r.raw_fields = rep.range_fields.clone();
                        r.content_range = Some(ContentRange::Unsatisfied { len });
                        r.head_key = None;
                        return r;
                    }
                    Ranges::Satisfiable {
                        count: 1,
                        first: (start, end),
                    } => {
                        let mut r = Response::new(StatusCode::PARTIAL_CONTENT)
                            .content_type(rep.content_type)
                            .body(rep.body.slice(start as usize..end as usize));
                        r.raw_fields = rep.part_fields.clone();
                        r.content_range = Some(ContentRange::Bytes {
                            first: start,
                            last: end - 1,
                            len,
                        });
                        return r;
                    }
                    Ranges::Satisfiable { .. } => {
                        self.boundaries += 1;
                        return multipart(rep, range, self.boundaries);
                    }
                }
            }
        }
        c.answer(rep.ok)
    }
}

/// A `multipart/byteranges` answer (RFC 9110 14.6) laid out as nginx lays it out: each part
/// `CRLF --BOUNDARY CRLF Content-Type CRLF Content-Range CRLF CRLF data`, then
/// `CRLF --BOUNDARY-- CRLF`; the boundary is a 20-digit number. The data are slices of the
/// file's `Bytes`; the part heads and the list of parts are this answer's allocations.
fn multipart(rep: &Rep, range: &[u8], boundary: u64) -> Response {
    let len = rep.body.len() as u64;
    let mut parts = Vec::new();
    parse_ranges(range, len, |start, end| {
        parts.push(Bytes::from(format!(
            "\r\n--{boundary:020}\r\nContent-Type: {}\r\nContent-Range: bytes {start}-{}/{len}\r\n\r\n",
            rep.content_type,
            end - 1
        )));
        parts.push(rep.body.slice(start as usize..end as usize));
    });
    parts.push(Bytes::from(format!("\r\n--{boundary:020}--\r\n")));
    let total = parts.iter().map(|p| p.len() as u64).sum();
    let mut r = Response::new(StatusCode::PARTIAL_CONTENT)
        .content_type(format!("multipart/byteranges; boundary={boundary:020}"))
        .stream(Parts {
            parts: parts.into_iter(),
            total,
        });
    r.raw_fields = rep.part_fields.clone();
    r
}

/// A body made of several `Bytes`, sent one after the other.
struct Parts {
    parts: std::vec::IntoIter<Bytes>,
    total: u64,
}

impl BodyStream for Parts {
    fn length(&self) -> Option<u64> {
        Some(self.total)
    }
    fn next_chunk(&mut self, _max: usize) -> Option<Bytes> {
        self.parts.next()
    }
}

impl Handler for StaticFiles {
    fn handle(&mut self, req: &Request<'_>, _now: Instant) -> Response {
        let c = &self.content;
        match req.method() {
            Method::Get | Method::Head => {}
            // RFC 9110 9.1: an unrecognized method: 501.
            Method::Other(_) => return c.answer(c.error(StatusCode::NOT_IMPLEMENTED)),
            // RFC 9110 15.5.6: a method known but not allowed here: 405 with Allow.
            _ => return c.answer(c.error(StatusCode::METHOD_NOT_ALLOWED)),
        }
        // The benchmark mode: the same prepared answer whatever the request says.
        if let Some(id) = c.fixed {
            return c.answer(id);
        }
        // The framework's path: `/`, then the normalized segments, then `/` for a
        // directory; the lookup key has neither slash.
        let path = req.path();
        let directory = path.ends_with(b"/");
        let key = path.strip_prefix(b"/").unwrap_or(path);
        let key = key.strip_suffix(b"/").unwrap_or(key);
        match c.lookup(key, directory) {
            Ok(file) => self.file(file, req),
            Err(id) => {
                let r = c.answer(id);
                match req.query() {
                    Some(q) if r.status == StatusCode::MOVED_PERMANENTLY => with_query(r, q),
                    _ => r,
                }
            }
        }
    }

    fn wants_body(&mut self, _req: &Request<'_>) -> bool {
        false
    }

    fn head_cache_slots(&self) -> usize {
        self.content.len()
    }
}

/// A prepared redirect whose `Location` (its first field line) gets `?query` (as nginx keeps
/// the query). The one allocation of a redirect.
fn with_query(mut r: Response, query: &str) -> Response {
    let fields = &r.raw_fields;
    let eol = fields
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(fields.len());
    let mut v = Vec::with_capacity(fields.len() + query.len() + 1);
    v.extend_from_slice(&fields[..eol]);
    v.push(b'?');
    v.extend_from_slice(query.as_bytes());
    v.extend_from_slice(&fields[eol..]);
    r.raw_fields = Bytes::from(v);
    r.head_key = None;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::StaticOptions;

    fn site() -> Content {
        Content::from_files([
            ("index.html", Bytes::from_static(b"<h1>home</h1>")),
            ("docs/index.html", Bytes::from_static(b"docs")),
            ("nodex/y.png", Bytes::from_static(b"png")),
        ])
    }

    /// `StaticFiles::handle` of `method path` with `fields` (lines `Name: value\r\n`).
    fn ask(h: &mut StaticFiles, method: Method<'_>, path: &str, fields: &str) -> Response {
        let fields = format!("{fields}\r\n");
        let (path, query) = match path.split_once('?') {
            Some((p, _)) => (p, path),
            None => (path, path),
        };
        let req = Request {
            method,
            target: query.as_bytes(),
            path: path.as_bytes(),
            version: super::super::request::Version::Http11,
            fields: fields.as_bytes(),
            body: b"",
            peer: "192.0.2.1:1234".parse().unwrap(),
            referer: b"",
            user_agent: b"",
        };
        h.handle(&req, Instant::from_millis(0))
    }

    fn body_of(r: &Response) -> Bytes {
        match &r.body {
            super::super::response::Body::Bytes(b) => b.clone(),
            super::super::response::Body::Empty => Bytes::new(),
            super::super::response::Body::Stream(_) => panic!("a stream"),
        }
    }

    fn files() -> StaticFiles {
        let options = StaticOptions {
            precompressed: true,
            cache_control: Some("max-age=5".into()),
        };
        StaticFiles::new(Arc::new(Content::from_files_with(
            [
                ("a.txt", Bytes::from_static(b"0123456789"), 0x10),
                ("a.txt.gz", Bytes::from_static(b"GZ"), 0x20),
                ("a.txt.br", Bytes::from_static(b"BR"), 0x30),
            ],
            &options,
        )))
    }

    #[test]
    fn fixed_mode_ignores_conditionals_and_ranges() {
        let mut h = StaticFiles::new(Arc::new(Content::fixed(&b"hello"[..], "text/plain")));
        let plain = ask(&mut h, Method::Get, "/x", "");
        let odd = ask(
            &mut h,
            Method::Get,
            "/x",
            "Range: bytes=0-1\r\nIf-None-Match: *\r\nAccept-Encoding: gzip\r\n",
        );
        for r in [&plain, &odd] {
            assert_eq!(r.status, StatusCode::OK);
            assert!(r.raw_fields.is_empty() && r.content_range.is_none());
            assert_eq!(body_of(r), "hello");
            assert_eq!(r.head_key, plain.head_key);
        }
    }

    #[test]
    fn file_answers_validators_ranges_and_encodings() {
        let mut h = files();
        let ok = ask(&mut h, Method::Get, "/a.txt", "");
        assert_eq!(ok.status, StatusCode::OK);
        assert!(ok.head_key.is_some(), "a whole file's head is cached");
        assert_eq!(
            &ok.raw_fields[..],
            b"Last-Modified: Thu, 01 Jan 1970 00:00:16 GMT\r\nETag: \"10-a\"\r\n\
              Vary: Accept-Encoding\r\nAccept-Ranges: bytes\r\nCache-Control: max-age=5\r\n"
        );
        let st = |r: &Response| r.status.code();
        // conditionals, RFC 9110 13.2.2's order
        assert_eq!(
            st(&ask(
                &mut h,
                Method::Get,
                "/a.txt",
                "If-None-Match: W/\"10-a\"\r\n"
            )),
            304
        );
        assert_eq!(
            st(&ask(
                &mut h,
                Method::Head,
                "/a.txt",
                "If-None-Match: \"x\"\r\n"
            )),
            200
        );
        assert_eq!(
            st(&ask(
                &mut h,
                Method::Get,
                "/a.txt",
                "If-Match: W/\"10-a\"\r\n"
            )),
            412
        );
        assert_eq!(
            st(&ask(
                &mut h,
                Method::Get,
                "/a.txt",
                "If-Match: \"10-a\"\r\nIf-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
            )),
            200
        );
        assert_eq!(
            st(&ask(
                &mut h,
                Method::Get,
                "/a.txt",
                "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:15 GMT\r\n"
            )),
            412
        );
        assert_eq!(
            st(&ask(
                &mut h,
                Method::Get,
                "/a.txt",
                "If-Modified-Since: Thursday, 01-Jan-70 00:00:16 GMT\r\n"
            )),
            304
        );
        let nm = ask(
            &mut h,
            Method::Get,
            "/a.txt",
            "If-Modified-Since: Thu Jan  1 00:00:17 1970\r\n",
        );
        assert_eq!(st(&nm), 304);
        assert!(nm.content_type.is_empty());
        // a range is a slice of the file's Bytes, not a copy
        let file = body_of(&ok);
        let part = ask(&mut h, Method::Get, "/a.txt", "Range: bytes=2-4\r\n");
        assert_eq!(st(&part), 206);
        assert_eq!(
            part.content_range,
            Some(ContentRange::Bytes {
                first: 2,
                last: 4,
                len: 10
            })
        );
        let slice = body_of(&part);
        assert_eq!(slice, "234");
        assert_eq!(slice.as_ptr(), file[2..].as_ptr());
        assert!(part.head_key.is_none());
        // If-Range: a miss answers whole; HEAD never gets a range
        assert_eq!(
            st(&ask(
                &mut h,
                Method::Get,
                "/a.txt",
                "Range: bytes=2-4\r\nIf-Range: \"x\"\r\n"
            )),
            200
        );
        assert_eq!(
            st(&ask(&mut h, Method::Head, "/a.txt", "Range: bytes=2-4\r\n")),
            200
        );
        let bad = ask(&mut h, Method::Get, "/a.txt", "Range: bytes=20-\r\n");
        assert_eq!(st(&bad), 416);
        assert_eq!(
            bad.content_range,
            Some(ContentRange::Unsatisfied { len: 10 })
        );
        // several ranges: multipart, nginx's layout
        let mut multi = ask(&mut h, Method::Get, "/a.txt", "Range: bytes=0-1,-2\r\n");
        assert_eq!(st(&multi), 206);
        assert_eq!(
            &multi.content_type[..],
            b"multipart/byteranges; boundary=00000000000000000001"
        );
        let super::super::response::Body::Stream(s) = &mut multi.body else {
            panic!("a stream")
        };
        let mut all = Vec::new();
        while let Some(c) = s.next_chunk(1000) {
            all.extend_from_slice(&c);
        }
        let b = "--00000000000000000001";
        let ct = "Content-Type: text/plain; charset=utf-8";
        assert_eq!(
            String::from_utf8(all.clone()).unwrap(),
            format!(
                "\r\n{b}\r\n{ct}\r\nContent-Range: bytes 0-1/10\r\n\r\n01\
                     \r\n{b}\r\n{ct}\r\nContent-Range: bytes 8-9/10\r\n\r\n89\r\n{b}--\r\n"
            )
        );
        assert_eq!(s.length(), Some(all.len() as u64));
        // precompressed siblings: q-values, their own validators, no ranges
        let enc = |h: &mut StaticFiles, ae: &str| {
            let r = ask(
                h,
                Method::Get,
                "/a.txt",
                &format!("Accept-Encoding: {ae}\r\nRange: bytes=0-0\r\n"),
            );
            (r.status.code(), body_of(&r))
        };
        assert_eq!(enc(&mut h, "gzip"), (200, Bytes::from_static(b"GZ")));
        assert_eq!(enc(&mut h, "gzip, br"), (200, Bytes::from_static(b"BR")));
        assert_eq!(
            enc(&mut h, "gzip, br;q=0.9"),
            (200, Bytes::from_static(b"GZ"))
        );
        assert_eq!(enc(&mut h, "br;q=0, *"), (200, Bytes::from_static(b"GZ")));
        assert_eq!(
            enc(&mut h, "gzip;q=0, br;q=0"),
            (206, Bytes::from_static(b"0"))
        );
        let gz = ask(&mut h, Method::Get, "/a.txt", "Accept-Encoding: gzip\r\n");
        assert!(String::from_utf8_lossy(&gz.raw_fields).contains(
            "ETag: \"20-2\"\r\nContent-Encoding: gzip\r\nVary: Accept-Encoding\r\nCache"
        ));
        assert_eq!(
            st(&ask(
                &mut h,
                Method::Get,
                "/a.txt",
                "Accept-Encoding: gzip\r\nIf-None-Match: \"20-2\"\r\n"
            )),
            304
        );
    }

    #[test]
    fn directories_forbidden_and_redirects_keep_the_query() {
        let c = site();
        let mut h = StaticFiles::new(Arc::new(c));
        assert_eq!(
            ask(&mut h, Method::Get, "/nodex/", "").status,
            StatusCode::FORBIDDEN
        );
        let r = ask(&mut h, Method::Get, "/docs?a=1&b", "");
        assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(&r.raw_fields[..], b"Location: /docs/?a=1&b\r\n");
        assert_eq!(
            ask(&mut h, Method::Post, "/docs", "").status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
