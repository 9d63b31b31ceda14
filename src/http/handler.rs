//! The HTTP application interface: a [`Handler`] answers each complete [`Request`] with a
//! [`Response`](super::Response); the framework ([`HttpApp`](super::HttpApp)) does the rest of
//! RFC 9112: parsing and limits, bodies, keep-alive and pipelining, timeouts, error answers.
//!
//! Call order, per connection: for each request in the order received, once its head is
//! complete and checked, [`Handler::wants_body`] (only if it has a body), then, once the body
//! is complete, [`Handler::handle`]. Requests on one connection are answered in order; the
//! next one is not read until the previous answer has been handed to the send queue (a
//! streamed body included).

use std::net::SocketAddr;

use super::request::{Method, Version};
use super::response::Response;
use crate::time::Instant;

/// An HTTP service: one value per worker (no locks; state is per core). See the module docs
/// for when each method is called.
///
/// ```
/// use synack::http::{Handler, Request, Response, StatusCode};
/// use synack::Instant;
///
/// struct Hello;
/// impl Handler for Hello {
///     fn handle(&mut self, req: &Request<'_>, _now: Instant) -> Response {
///         Response::new(StatusCode::OK)
///             .content_type("text/plain")
///             .body(format!("{} {}\n", req.method().as_str(), req.target()))
///     }
/// }
/// ```
pub trait Handler {
    /// Answers a complete request. `req.body()` holds its whole body (up to
    /// [`HttpConfig::max_body`](super::HttpConfig::max_body); larger gets 413 without a call),
    /// unless [`wants_body`](Self::wants_body) declined it. A HEAD request is answered as GET
    /// would be: the framework sends the head only.
    fn handle(&mut self, req: &Request<'_>, now: Instant) -> Response;

    /// Called when a request's head announces a body, before it is read: `false` has the
    /// framework read and drop the body (counted in `body_bytes_discarded`) and call
    /// [`handle`](Self::handle) with an empty one. The default collects every body.
    fn wants_body(&mut self, req: &Request<'_>) -> bool {
        let _ = req;
        true
    }

    /// How many keys [`Response::cache_head`](super::Response::cache_head) may use: the
    /// framework keeps that many cached heads (per `Connection` form). Default 0.
    fn head_cache_slots(&self) -> usize {
        0
    }
}

/// A complete, checked request (RFC 9112 syntax, RFC 9110 semantics). Everything borrows the
/// connection's receive buffer or the worker's scratch space: building one does not allocate.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub(crate) method: Method<'a>,
    pub(crate) target: &'a [u8],
    pub(crate) path: &'a [u8],
    pub(crate) version: Version,
    pub(crate) fields: &'a [u8],
    pub(crate) body: &'a [u8],
    pub(crate) peer: SocketAddr,
    /// The first `Referer` and `User-Agent` values, found by the parser (for the access log).
    pub(crate) referer: &'a [u8],
    pub(crate) user_agent: &'a [u8],
}

impl<'a> Request<'a> {
    /// The method.
    pub fn method(&self) -> Method<'a> {
        self.method
    }

    /// The request target as sent (RFC 9112 3.2): origin form (`/a/b?q`), absolute form
    /// (`http://host/a`), authority form (CONNECT) or `*` (OPTIONS).
    pub fn target(&self) -> &'a str {
        // Checked by the parser: visible ASCII only.
        std::str::from_utf8(self.target).unwrap_or_default()
    }

    /// The path, percent-decoded (RFC 3986 2.1) and normalized (RFC 3986 5.2.4: `.` and `..`
    /// resolved, empty segments dropped): it starts with `/`, ends with `/` when it names a
    /// directory, and never climbs above the root (such a target gets 400 before the handler
    /// sees it). Decoded bytes need not be UTF-8 (see [`path_str`](Self::path_str)). Empty for
    /// CONNECT, `*` for `OPTIONS *`.
    pub fn path(&self) -> &'a [u8] {
        self.path
    }

    /// The path if it is UTF-8.
    pub fn path_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.path).ok()
    }

    /// The query (after `?`, before any `#`), as sent: not decoded.
    pub fn query(&self) -> Option<&'a str> {
        super::request::request_query(self.target)
            .map(|q| std::str::from_utf8(q).unwrap_or_default())
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields in the order received, as (name, value) with the value's surrounding
    /// whitespace removed. Names are as sent (compare them ASCII case-insensitively); values may
    /// hold bytes above 0x7F (RFC 9110 5.5 obs-text).
    pub fn headers(&self) -> Headers<'a> {
        Headers { rest: self.fields }
    }

    /// The value of the first field named `name` (ASCII case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The body: Content-Length bytes, or the chunked body decoded (trailers dropped).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The client's address and port.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

/// The header fields of a [`Request`], in order.
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a [u8]);
    fn next(&mut self) -> Option<(&'a str, &'a [u8])> {
        // The parser checked every line: `name ":" OWS value OWS CRLF`, then an empty line.
        let lf = super::request::find_byte(self.rest, b'\n')?;
        let line = &self.rest[..lf.saturating_sub(1)];
        self.rest = &self.rest[lf + 1..];
        if line.is_empty() {
            self.rest = &[];
            return None;
        }
        let colon = super::request::find_byte(line, b':')?;
        let mut value = &line[colon + 1..];
        while let [b' ' | b'\t', rest @ ..] = value {
            value = rest;
        }
        while let [rest @ .., b' ' | b'\t'] = value {
            value = rest;
        }
        Some((
            std::str::from_utf8(&line[..colon]).unwrap_or_default(),
            value,
        ))
    }
}
