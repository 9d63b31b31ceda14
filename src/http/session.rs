//! The framework as an [`App`] of the TCP engine: [`HttpApp`] (one per worker: configuration,
//! the [`Handler`], cached heads, the date, statistics) and [`HttpSession`] (one connection's
//! progress through RFC 9112's message sequence).
//!
//! A connection moves between three phases:
//! - `Head`: waiting for (the rest of) a request head. With no byte of it yet, the connection
//!   is idle; the first byte starts the header timeout.
//! - `Body`: reading a request body (collected for the handler, or dropped if it declined);
//!   the handler is called once the body is complete.
//! - `Closed`: the server decided to close; later bytes are read and dropped, and the FIN
//!   follows once the last response has been handed to the send queue.
//!
//! A response is handed to the send queue as room allows (`AppIo::send_bytes` takes at most
//! the connection's send limit): what does not fit waits in the session, and a streamed body is
//! pulled only as room opens (`on_writable`). Until the response is all queued, no further
//! request is read. Pipelined requests (RFC 9112 9.3.2) are answered in order within one
//! `on_readable`, until the responses queued and not yet acknowledged exceed
//! `max_queued_bytes` or `max_queued_chunks`: then the connection stops reading (the requests
//! left unread fill the receive buffer and the window closes) and resumes when half of the
//! queue has drained. Every callback ends by setting the deadline of the phase it leaves the
//! connection in.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::access_log::{AccessLogSink, LogState, NO_SLOT};
use super::content::error_resource;
use super::handler::{Handler, Request};
use super::request::{
    BodyReader, Framing, HeadScan, HeadScanner, Method, RequestError, RequestHead, Version,
    normalize_path, parse_head, request_path,
};
use super::response::{
    Body, BodyStream, CONTINUE_100, ConnHeader, HeadCache, HeadLine, HttpDate, Resource, Response,
    StatusCode, chunk_overhead, head_len_bound, write_chunk_size, write_head,
};
use super::static_files::StaticFiles;
use crate::tcp::app::{App, AppIo, AppMetric, CloseReason, ConnInfo, Opener, Wakeups};
use crate::time::Instant;

/// Limits and timeouts. The defaults follow nginx where it has an equivalent.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Longest request line; longer gets 414. Default 8 KiB (nginx: large_client_header_buffers).
    pub max_request_line: usize,
    /// Largest head (request line + fields), and largest chunked trailer section; larger gets
    /// 431. Also capped by the receive buffer's capacity. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Largest request body; larger gets 413. Default 1 MiB (nginx: client_max_body_size).
    pub max_body: u64,
    /// Memory for request bodies being collected, all connections of the worker together
    /// (a body that arrives whole in one read is handed over in place and costs nothing
    /// here). A request whose body would go beyond gets 503 and the connection closes: many
    /// slow uploads cannot make the worker hold `max_body` per connection. Default 64 MiB.
    pub max_body_memory: usize,
    /// From the first byte of a head until the head is complete; also how long a new
    /// connection may stay silent. Default 10 s.
    pub header_timeout: Duration,
    /// From a response until the first byte of the next request. Default 60 s.
    pub keepalive_timeout: Duration,
    /// Longest pause while a request body streams in. Default 60 s.
    pub body_timeout: Duration,
    /// Longest time queued response bytes may go without the peer acknowledging any of them
    /// (nginx's send_timeout: between two successive writes that make progress); then the
    /// connection is reset. This is what bounds a client that never reads: TCP keeps a
    /// connection whose peer answers zero-window probes (RFC 1122 4.2.2.17). Default 60 s.
    pub send_timeout: Duration,
    /// Requests served on one connection; the last gets `Connection: close`. Default 1000
    /// (nginx: keepalive_requests).
    pub max_requests: u32,
    /// On a header or body timeout, send `408 Request Timeout` before closing (else close
    /// silently, as nginx does). Default true.
    pub send_408: bool,
    /// Back-pressure for pipelining: no further request is read while the connection's
    /// queued response bytes (sent or not, unacknowledged) reach this. Default 64 KiB.
    pub max_queued_bytes: usize,
    /// ... or while its queued chunks reach this (a response is one or two: the queue's own
    /// cost with many small responses). Default 32.
    pub max_queued_chunks: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_request_line: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_body: 1024 * 1024,
            max_body_memory: 64 << 20,
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            max_requests: 1000,
            send_408: true,
            max_queued_bytes: 64 * 1024,
            max_queued_chunks: 32,
        }
    }
}

/// Counters of one [`HttpApp`] (one worker). Plain integers: read them with
/// [`HttpApp::stats`] and sum across workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Connections accepted.
    pub connections_opened: u64,
    /// Connections gone (however they ended).
    pub connections_closed: u64,
    /// Final responses queued (errors included).
    pub responses: u64,
    /// Of those, answers to HEAD (no body sent).
    pub head_responses: u64,
    /// Responses by class: `[2]` = 2xx ... `[5]` = 5xx (and a handler's codes above 599);
    /// `[1]` counts the interim `100 Continue`; `[0]` is unused.
    pub responses_by_class: [u64; 6],
    /// Requests refused, by reason (index: [`RequestError::index`]).
    pub errors: [u64; RequestError::COUNT],
    /// Header timeouts (a head started and did not complete in time).
    pub timeouts_header: u64,
    /// Idle timeouts (no request began in time, on a new or a kept-alive connection).
    pub timeouts_idle: u64,
    /// Body timeouts (a request body stalled).
    pub timeouts_body: u64,
    /// Send timeouts (queued response bytes saw no progress for `send_timeout`).
    pub timeouts_send: u64,
    /// Connections closed because they reached `max_requests`.
    pub closed_max_requests: u64,
    /// Interim `100 Continue` responses sent.
    pub continues: u64,
    /// Bytes queued for sending (heads and bodies).
    pub bytes_queued: u64,
    /// Request body bytes read and dropped (the handler declined them).
    pub body_bytes_discarded: u64,
    /// Request body bytes collected for the handler (chunked bodies: decoded content).
    pub body_bytes_collected: u64,
    /// Handler answers replaced by a 500 (a refused header field, a 1xx status), and streamed
    /// bodies that did not match their announced length.
    pub handler_errors: u64,
    /// Cached response heads formatted (at most once per second per cache key and
    /// `Connection` form: error pages, and handlers' [`Response::cache_head`] responses).
    pub head_rebuilds: u64,
    /// Times a connection stopped reading because its queued responses reached the bound.
    pub read_pauses: u64,
}

impl HttpStats {
    /// Requests refused for reason `e`.
    pub fn error_count(&self, e: RequestError) -> u64 {
        self.errors[e.index()]
    }
}

/// The framework's own error answers, in the order of their head-cache slots.
const FRAMEWORK_ERRORS: [StatusCode; 9] = [
    StatusCode::BAD_REQUEST,
    StatusCode::REQUEST_TIMEOUT,
    StatusCode::CONTENT_TOO_LARGE,
    StatusCode::URI_TOO_LONG,
    StatusCode::HEADER_FIELDS_TOO_LARGE,
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::NOT_IMPLEMENTED,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::VERSION_NOT_SUPPORTED,
];

/// Heads formatted per response are written into a per-worker arena and split off: one
/// allocation per this many bytes of heads, none once the queued heads have been acknowledged
/// (the arena's buffer is then reused).
const ARENA_CHUNK: usize = 64 * 1024;

/// A collected body buffer larger than this is freed after its request (else kept for reuse).
const STASH_KEEP: usize = 64 * 1024;

/// The end of a chunked body: the last chunk, no trailers (RFC 9112 7.1).
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The HTTP/1.1 server of one worker, running handler `H` (by default the static responder).
/// It implements [`App`]: give it to the engine (or to [`Server::run`](crate::Server)'s
/// factory).
pub struct HttpApp<H = StaticFiles> {
    config: HttpConfig,
    handler: H,
    /// The framework's error pages (slot `i` of `heads` answers `FRAMEWORK_ERRORS[i]`).
    errors: Vec<Resource>,
    /// Cached heads: the error pages first, then the handler's keys.
    heads: HeadCache,
    date: HttpDate,
    stats: HttpStats,
    /// Reused buffers for path decoding and normalization, and the path handed to the handler.
    decoded: Vec<u8>,
    key: Vec<u8>,
    path: Vec<u8>,
    arena: BytesMut,
    /// Bytes the sessions' body buffers hold (their capacity), against `max_body_memory`.
    body_memory: usize,
    /// The access log's side of this worker, if there is one.
    log: Option<LogState>,
    /// The wall clock (seconds since the Unix epoch), for the access log.
    wall: u64,
}

/// One connection's state.
pub struct HttpSession {
    phase: Phase,
    scanner: HeadScanner,
    /// When the first byte of the head being received arrived.
    head_started: Option<Instant>,
    /// When the connection opened or the last response was queued.
    idle_since: Instant,
    /// When the body being read last made progress.
    body_progress: Instant,
    /// When the send queue last went from empty to not empty (the send timeout counts from
    /// here or from the peer's last acknowledgment, whichever is later).
    send_since: Instant,
    /// Final responses queued on this connection.
    requests: u32,
    /// Bytes of the current response the send queue has not taken yet (it takes at most the
    /// connection's send limit), in order; sent as room opens, before anything else.
    pending: [Bytes; 3],
    /// The streamed body being sent, pulled as room opens.
    stream: Option<StreamOut>,
    /// `io.close()` was called (the FIN follows what is queued).
    fin: bool,
    peer: SocketAddr,
    /// A request head and its collected body, while the body arrives over several reads.
    stash: Vec<u8>,
    /// Bytes handed to the send queue on this connection (for the access log).
    sent: u64,
    /// The access log record of the response being sent, parked until it is complete.
    log_slot: u32,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Head,
    Body {
        reader: BodyReader,
        /// The head is `stash[..head_len]`; a collected body follows it.
        head_len: usize,
        /// Collect the body for the handler (else drop it).
        collect: bool,
        /// When the request's first byte arrived (for the service time).
        started: Instant,
    },
    Closed,
}

/// A streamed body on its way out.
struct StreamOut {
    body: Box<dyn BodyStream>,
    /// Bytes still owed under `Content-Length`; `None`: chunked, or until close.
    remaining: Option<u64>,
    chunked: bool,
    /// What the stream gave beyond what fitted, sent before the next pull.
    leftover: Bytes,
}

/// How to frame the response to one request.
#[derive(Clone, Copy, Debug)]
struct ReplyTo {
    head_only: bool,
    conn: ConnHeader,
    version: Version,
    /// When the request's first byte arrived (for the service time).
    started: Instant,
}

impl HttpSession {
    fn new(now: Instant) -> Self {
        HttpSession {
            phase: Phase::Head,
            scanner: HeadScanner::default(),
            head_started: None,
            idle_since: now,
            body_progress: now,
            send_since: now,
            requests: 0,
            pending: Default::default(),
            stream: None,
            fin: false,
            peer: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            stash: Vec::new(),
            sent: 0,
            log_slot: NO_SLOT,
        }
    }
    /// Final responses queued on this connection so far.
    pub fn requests(&self) -> u32 {
        self.requests
    }
    /// True once the server has decided to close.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }
    /// Part of the current response is still to be handed to the send queue.
    fn busy(&self) -> bool {
        self.stream.is_some() || self.pending.iter().any(|p| !p.is_empty())
    }
    /// Called before queueing bytes: an empty queue starts the send timeout's clock.
    fn note_send(&mut self, io: &AppIo<'_>, now: Instant) {
        if io.send_queued() == 0 {
            self.send_since = now;
        }
    }
    /// Appends `b` to what waits for the send queue.
    fn push_pending(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        let last = self.pending.iter().rposition(|p| !p.is_empty());
        match last {
            None => self.pending[0] = b,
            Some(i) if i + 1 < self.pending.len() => self.pending[i + 1] = b,
            // Never expected (at most a 100 Continue, a head and a body wait together): join
            // by copy rather than lose bytes.
            Some(i) => {
                let mut both = BytesMut::with_capacity(self.pending[i].len() + b.len());
                both.extend_from_slice(&self.pending[i]);
                both.extend_from_slice(&b);
                self.pending[i] = both.freeze();
            }
        }
    }
}

/// The path handed to the handler for `h`, into `path`: `/`, the normalized segments, and `/`
/// for a directory (see [`Request::path`]).
fn request_path_into(
    h: &RequestHead<'_>,
    decoded: &mut Vec<u8>,
    key: &mut Vec<u8>,
    path: &mut Vec<u8>,
) -> Result<(), RequestError> {
    path.clear();
    match h.method {
        // RFC 9112 3.2.4: asterisk form, for OPTIONS only.
        Method::Options if h.target == b"*" => {
            path.push(b'*');
            return Ok(());
        }
        // RFC 9112 3.2.3: authority form, for CONNECT only: no path.
        Method::Connect if h.target.first() != Some(&b'/') => return Ok(()),
        _ => {}
    }
    let directory = normalize_path(request_path(h.target)?, decoded, key)?;
    path.push(b'/');
    path.extend_from_slice(key);
    if directory && !key.is_empty() {
        path.push(b'/');
    }
    Ok(())
}

fn request<'a>(
    h: &RequestHead<'a>,
    path: &'a [u8],
    body: &'a [u8],
    peer: SocketAddr,
) -> Request<'a> {
    Request {
        method: h.method,
        target: h.target,
        path,
        version: h.version,
        fields: h.fields,
        body,
        peer,
        referer: h.referer,
        user_agent: h.user_agent,
    }
}

impl<H: Handler> HttpApp<H> {
    /// The server of one worker, answering with `handler`.
    pub fn new(config: HttpConfig, handler: H) -> Self {
        let errors: Vec<Resource> = FRAMEWORK_ERRORS
            .iter()
            .map(|&s| error_resource(s, Bytes::new()))
            .collect();
        HttpApp {
            heads: HeadCache::new(errors.len() + handler.head_cache_slots()),
            errors,
            config,
            handler,
            date: HttpDate::new(0),
            stats: HttpStats::default(),
            decoded: Vec::with_capacity(256),
            key: Vec::with_capacity(256),
            path: Vec::with_capacity(256),
            arena: BytesMut::new(),
            body_memory: 0,
            log: None,
            wall: 0,
        }
    }

    /// Writes a record of every response into the access log through `sink` (one per
    /// worker: [`AccessLog::sink`](super::AccessLog::sink)). A record is made when the
    /// response has been handed whole to the send queue; if the queue is full it is dropped
    /// and counted (`access_log_dropped` in [`App::counters`]).
    pub fn with_access_log(mut self, sink: AccessLogSink) -> Self {
        self.log = Some(LogState::new(sink));
        self
    }

    /// Access log lines dropped because the writer had not given a buffer back yet.
    pub fn access_log_dropped(&self) -> u64 {
        self.log.as_ref().map_or(0, LogState::dropped)
    }

    /// The response whose record is parked on `s` is complete (or its connection ended):
    /// the record goes to the access log.
    fn log_complete(&mut self, s: &mut HttpSession, now: Instant) {
        if s.log_slot != NO_SLOT
            && let Some(l) = self.log.as_mut()
        {
            l.complete(s.log_slot, now, s.sent, self.wall);
            s.log_slot = NO_SLOT;
        }
    }

    /// Bytes held by the buffers of request bodies being collected (see
    /// [`HttpConfig::max_body_memory`]).
    pub fn body_memory(&self) -> usize {
        self.body_memory
    }

    /// Accounts for a change of `s.stash`'s capacity from `before`; false if it grew and the
    /// worker's body memory is now over its limit.
    fn charge_stash(&mut self, s: &HttpSession, before: usize) -> bool {
        let now = s.stash.capacity();
        self.body_memory = self.body_memory - before + now;
        now <= before || self.body_memory <= self.config.max_body_memory
    }

    /// The wall clock, in seconds since the Unix epoch, for the `Date` header. The worker calls
    /// this once per loop iteration (cheap when the second is unchanged) before any traffic;
    /// until then responses carry the epoch. Cached heads are reformatted lazily, at most once
    /// per second per key and `Connection` form.
    pub fn set_wall_clock(&mut self, unix_secs: u64) {
        self.wall = unix_secs;
        self.date.set(unix_secs);
    }

    /// The counters.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, to change it between callbacks. After a change that alters what its
    /// [`Response::cache_head`] keys stand for (new content), call
    /// [`handler_changed`](Self::handler_changed).
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Forgets the heads cached for the handler's keys and sizes the cache anew from
    /// [`Handler::head_cache_slots`]: the handler's keys now name other responses. Responses
    /// already queued are not affected (they hold their own bytes).
    pub fn handler_changed(&mut self) {
        self.heads = HeadCache::new(self.errors.len() + self.handler.head_cache_slots());
    }

    /// Answers every complete request in `io.data()`, in order, and reads bodies.
    ///
    /// Handled bytes are consumed once, at the end: consuming moves what is left to the front
    /// of the receive buffer, and doing that per pipelined request would copy the rest again
    /// and again. (Paths that close consume everything at once.)
    fn drive(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>, now: Instant) {
        // A head larger than the receive buffer could never complete: the buffer caps it.
        let max_head = self.config.max_header_bytes.min(io.recv.capacity()).max(1);
        // Bytes at the front of `io.data()` already handled.
        let mut done = 0;
        // The last response is still being queued: it goes first, and no request is read
        // meanwhile (`on_writable` comes back here).
        if !self.flush(s, io) {
            return;
        }
        self.log_complete(s, now);
        loop {
            match s.phase {
                Phase::Closed => break,
                Phase::Body {
                    mut reader,
                    head_len,
                    collect,
                    started,
                } => {
                    let data = &io.data()[done..];
                    if data.is_empty() {
                        if io.peer_closed() {
                            self.close(s, io);
                        }
                        break;
                    }
                    let (max_body, max_trailer) =
                        (self.config.max_body, self.config.max_header_bytes);
                    let (used, result) = if collect {
                        let stash = &mut s.stash;
                        let (before, capacity) = (stash.len(), stash.capacity());
                        let r = reader.feed_into(data, max_body, max_trailer, &mut |c| {
                            stash.extend_from_slice(c)
                        });
                        self.stats.body_bytes_collected += (stash.len() - before) as u64;
                        if !self.charge_stash(s, capacity) {
                            done += r.0;
                            self.refuse(s, io, RequestError::BodyMemory, now);
                            break;
                        }
                        r
                    } else {
                        let r = reader.feed(data, max_body, max_trailer);
                        self.stats.body_bytes_discarded += r.0 as u64;
                        r
                    };
                    done += used;
                    s.body_progress = now;
                    match result {
                        Ok(true) => {
                            s.phase = Phase::Head;
                            self.answer_stashed(s, io, head_len, started, now);
                        }
                        Ok(false) => {
                            s.phase = Phase::Body {
                                reader,
                                head_len,
                                collect,
                                started,
                            };
                            if io.peer_closed() {
                                self.close(s, io);
                            }
                            break;
                        }
                        Err(e) => {
                            self.refuse(s, io, e, now);
                            break;
                        }
                    }
                }
                Phase::Head => {
                    let data = &io.data()[done..];
                    if data.is_empty() {
                        if io.peer_closed() {
                            self.close(s, io);
                        }
                        break;
                    }
                    let busy = s.busy();
                    if busy
                        || (s.head_started.is_none()
                            && (io.send_queued() >= self.config.max_queued_bytes
                                || io.send_queued_chunks() >= self.config.max_queued_chunks))
                    {
                        // Back-pressure: the next request waits in the receive buffer until
                        // half of what is queued has been acknowledged (`on_writable`).
                        if !busy {
                            io.writable_below(io.send_queued() / 2);
                        }
                        self.stats.read_pauses += 1;
                        break;
                    }
                    let started = *s.head_started.get_or_insert(now);
                    let (start, end) =
                        match s.scanner.scan(data, self.config.max_request_line, max_head) {
                            HeadScan::Complete { start, end } => (start, end),
                            HeadScan::Partial => {
                                // RFC 9112 9.6 (and 8): a request cut short by the peer's close
                                // is not answered.
                                if io.peer_closed() {
                                    self.close(s, io);
                                }
                                break;
                            }
                            HeadScan::Error(e) => {
                                self.refuse(s, io, e, now);
                                break;
                            }
                        };
                    s.scanner.reset();
                    s.head_started = None;
                    match self.answer_head(s, io, done, start, end, started, now) {
                        Some(used) => done += used,
                        None => break,
                    }
                }
            }
        }
        if s.is_closed() {
            // `close` dropped what was there; this drops what came after it.
            let n = io.data().len();
            io.consume(n);
        } else {
            io.consume(done);
        }
    }

    /// A complete head at `io.data()[at + start..at + end]`: checks it and answers it now, or
    /// moves to reading its body. Returns the bytes used from `at` on (head, and a body that
    /// was all there), or `None` when the connection was refused.
    #[allow(clippy::too_many_arguments)]
    fn answer_head(
        &mut self,
        s: &mut HttpSession,
        io: &mut AppIo<'_>,
        at: usize,
        start: usize,
        end: usize,
        started: Instant,
        now: Instant,
    ) -> Option<usize> {
        let data = &io.data()[at..];
        let head = &data[start..end];
        let h = match parse_head(head) {
            Ok(h) => h,
            Err(e) => {
                self.refuse(s, io, e, now);
                return None;
            }
        };
        if let Err(e) = request_path_into(&h, &mut self.decoded, &mut self.key, &mut self.path) {
            self.refuse(s, io, e, now);
            return None;
        }
        let reader = match h.framing {
            Framing::Length(n) if n > self.config.max_body => {
                self.refuse(s, io, RequestError::BodyTooLarge, now);
                return None;
            }
            f => BodyReader::new(f),
        };
        let to = self.reply_to(&h, s.requests, started);
        let Some(reader) = reader else {
            // No body: answer now.
            let req = request(&h, &self.path, &[], s.peer);
            if let Some(l) = self.log.as_mut() {
                l.begin(Some(&req));
            }
            let resp = self.handler.handle(&req, now);
            self.reply(s, io, resp, to, now);
            return Some(end);
        };
        let collect = self
            .handler
            .wants_body(&request(&h, &self.path, &[], s.peer));
        let waiting = &data[end..];
        if let Framing::Length(n) = h.framing
            && waiting.len() as u64 >= n
        {
            // The whole body is here: hand it over in place (or skip it).
            let n = n as usize;
            let body = if collect {
                self.stats.body_bytes_collected += n as u64;
                &waiting[..n]
            } else {
                self.stats.body_bytes_discarded += n as u64;
                &[]
            };
            let req = request(&h, &self.path, body, s.peer);
            if let Some(l) = self.log.as_mut() {
                l.begin(Some(&req));
            }
            let resp = self.handler.handle(&req, now);
            self.reply(s, io, resp, to, now);
            return Some(end + n);
        }
        // The body comes over several reads (or is chunked): keep the head meanwhile.
        let expect_continue = h.expect_continue && h.version == Version::Http11;
        let capacity = s.stash.capacity();
        s.stash.clear();
        s.stash.extend_from_slice(head);
        let head_len = head.len();
        if let Framing::Length(n) = h.framing
            && collect
        {
            // The whole body at once (max_body bounds it), rather than by doubling.
            s.stash.reserve(n as usize);
        }
        if !self.charge_stash(s, capacity) {
            self.refuse(s, io, RequestError::BodyMemory, now);
            return None;
        }
        // RFC 9110 10.1.1: answer 100-continue before reading the body, unless the client did
        // not wait for it.
        if expect_continue && waiting.is_empty() {
            s.note_send(io, now);
            s.push_pending(Bytes::from_static(CONTINUE_100));
            self.stats.continues += 1;
            self.stats.responses_by_class[1] += 1;
            self.flush(s, io);
        }
        s.body_progress = now;
        s.phase = Phase::Body {
            reader,
            head_len,
            collect,
            started,
        };
        Some(end)
    }

    /// The body of the request in `s.stash` is complete: answer it.
    fn answer_stashed(
        &mut self,
        s: &mut HttpSession,
        io: &mut AppIo<'_>,
        head_len: usize,
        started: Instant,
        now: Instant,
    ) {
        let (head, body) = s.stash.split_at(head_len);
        // Checked when it arrived: these cannot fail now.
        let checked = parse_head(head).and_then(|h| {
            request_path_into(&h, &mut self.decoded, &mut self.key, &mut self.path).map(|()| h)
        });
        let h = match checked {
            Ok(h) => h,
            Err(e) => {
                self.refuse(s, io, e, now);
                return;
            }
        };
        let to = self.reply_to(&h, s.requests, started);
        let req = request(&h, &self.path, body, s.peer);
        if let Some(l) = self.log.as_mut() {
            l.begin(Some(&req));
        }
        let resp = self.handler.handle(&req, now);
        let capacity = s.stash.capacity();
        if capacity > STASH_KEEP {
            s.stash = Vec::new();
        } else {
            s.stash.clear();
        }
        self.charge_stash(s, capacity);
        self.reply(s, io, resp, to, now);
    }

    /// How the response to `h` is framed: HEAD or not, the `Connection` form.
    fn reply_to(&self, h: &RequestHead<'_>, served: u32, started: Instant) -> ReplyTo {
        let last = served.saturating_add(1) >= self.config.max_requests;
        let conn = if !h.persistent() || last {
            ConnHeader::Close
        } else if h.version == Version::Http10 {
            // RFC 9112 C.2.2: an HTTP/1.0 client learns of persistence from this header.
            ConnHeader::KeepAlive
        } else {
            ConnHeader::Default
        };
        ReplyTo {
            head_only: h.method == Method::Head,
            conn,
            version: h.version,
            started,
        }
    }

    /// The framework's answer for an error status.
    fn error_response(&self, status: StatusCode) -> Response {
        let i = FRAMEWORK_ERRORS
            .iter()
            .position(|&s| s == status)
            .unwrap_or(0);
        self.errors[i].response(i as u32)
    }

    /// The head of `resp`: the cached one for its key, else formatted into the arena.
    fn head(&mut self, resp: &Response, line: HeadLine, slot: Option<usize>) -> Bytes {
        if let Some(k) = slot
            && let Some(head) = self.heads.get(k, line.conn, &self.date)
        {
            return head.clone();
        }
        let need = head_len_bound(resp);
        if self.arena.capacity() - self.arena.len() < need {
            self.arena.reserve(need.max(ARENA_CHUNK));
        }
        write_head(&mut self.arena, line, self.date.as_bytes(), resp);
        let head = self.arena.split().freeze();
        if let Some(k) = slot {
            self.heads.put(k, line.conn, &self.date, head.clone());
        }
        head
    }

    /// Queues the handler's answer: its cache key mapped past the error pages' slots, and a
    /// 500 instead of an answer the framework cannot send as it is.
    fn reply(
        &mut self,
        s: &mut HttpSession,
        io: &mut AppIo<'_>,
        resp: Response,
        to: ReplyTo,
        now: Instant,
    ) {
        let handler_slots = self.heads.len() - self.errors.len();
        let mut slot = resp
            .head_key
            .map(|k| k as usize)
            .filter(|&k| k < handler_slots)
            .map(|k| k + self.errors.len());
        let mut resp = resp;
        if resp.invalid || resp.status.code() < 200 {
            // A refused field or an interim status as the final answer: the handler's bug
            // must not become a malformed response.
            self.stats.handler_errors += 1;
            resp = self.error_response(StatusCode::INTERNAL_SERVER_ERROR);
            slot = resp.head_key.map(|k| k as usize);
        }
        self.send_response(s, io, resp, slot, to, now);
    }

    /// Queues a response (head-cache slot `slot`): its head, then its body as room allows;
    /// framing, `Connection`, HEAD and statistics.
    fn send_response(
        &mut self,
        s: &mut HttpSession,
        io: &mut AppIo<'_>,
        mut resp: Response,
        slot: Option<usize>,
        to: ReplyTo,
        now: Instant,
    ) {
        let mut conn = if resp.close {
            ConnHeader::Close
        } else {
            to.conn
        };
        let body = std::mem::replace(&mut resp.body, Body::Empty);
        let (mut length, mut chunked, mut slot) = (None, false, slot);
        match &body {
            Body::Empty => length = Some(0),
            Body::Bytes(b) => length = Some(b.len() as u64),
            Body::Stream(st) => {
                slot = None;
                match st.length() {
                    Some(n) => length = Some(n),
                    // RFC 9110 9.3.2: HEAD may omit what is only known while generating.
                    None if to.head_only => {}
                    // RFC 9112 7.1 (and 6.1: only to an HTTP/1.1 request).
                    None if to.version == Version::Http11 => chunked = true,
                    // RFC 9112 6.3 (8): HTTP/1.0: the body ends with the connection.
                    None => conn = ConnHeader::Close,
                }
            }
        }
        // RFC 9112 6.3 (1), RFC 9110 8.6: 204 and 304 have no content and no Content-Length.
        let no_content = resp.status.has_no_content();
        if no_content {
            length = None;
            chunked = false;
        }
        let line = HeadLine {
            status: resp.status,
            content_length: length,
            chunked,
            conn,
        };
        let head = self.head(&resp, line, slot);
        if let Some(l) = self.log.as_mut() {
            // The body starts after what waits already (a 100 Continue) and the head.
            let waiting: usize = s.pending.iter().map(Bytes::len).sum();
            let base = s.sent + (waiting + head.len()) as u64;
            l.respond(s.peer, resp.status.code(), base);
        }
        s.note_send(io, now);
        let mut queued = head.len();
        s.push_pending(head);
        if to.head_only {
            self.stats.head_responses += 1;
        }
        if !to.head_only && !no_content {
            match body {
                Body::Empty => {}
                Body::Bytes(b) => {
                    queued += b.len();
                    s.push_pending(b);
                }
                Body::Stream(st) => {
                    s.stream = Some(StreamOut {
                        remaining: length,
                        chunked,
                        body: st,
                        leftover: Bytes::new(),
                    });
                }
            }
        }
        self.stats.bytes_queued += queued as u64;
        self.flush(s, io);
        if let Some(l) = self.log.as_mut() {
            if s.log_slot != NO_SLOT {
                // Not expected (no request is read while a response is being sent).
                l.complete(s.log_slot, now, s.sent, self.wall);
                s.log_slot = NO_SLOT;
            }
            if s.busy() {
                s.log_slot = l.park(to.started, now, s.sent, self.wall);
            } else {
                l.complete_current(to.started, now, s.sent, self.wall);
            }
        }
        // The worker's request-service latency: from now (the request is complete) until the
        // response's last byte is handed to the transmit ring.
        io.time_until_sent(now);
        self.stats.head_rebuilds = self.heads.rebuilds();
        self.stats.responses += 1;
        self.stats.responses_by_class[resp.status.class().min(5)] += 1;
        s.requests = s.requests.saturating_add(1);
        s.idle_since = now;
        if conn == ConnHeader::Close {
            if s.requests >= self.config.max_requests {
                self.stats.closed_max_requests += 1;
            }
            self.close(s, io);
        }
    }

    /// Hands what waits of the current response to the send queue, as far as room allows,
    /// pulling a streamed body piece by piece. Returns true when all of it is queued (then a
    /// close decided earlier sends its FIN).
    fn flush(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>) -> bool {
        loop {
            for part in s.pending.iter_mut() {
                if !part.is_empty() {
                    let before = part.len();
                    io.send_bytes(part);
                    s.sent += (before - part.len()) as u64;
                    if !part.is_empty() {
                        // `send_bytes` asked for `on_writable` once half the queue drains.
                        return false;
                    }
                }
            }
            let Some(st) = s.stream.as_mut() else {
                break;
            };
            if st.remaining == Some(0) {
                if !st.leftover.is_empty() {
                    // More than the announced length: dropped (the framing stands).
                    self.stats.handler_errors += 1;
                }
                s.stream = None;
                continue;
            }
            let room = io.send_room();
            let framing = if st.chunked { chunk_overhead(room) } else { 0 };
            let mut max = room.saturating_sub(framing);
            if let Some(rem) = st.remaining {
                max = max.min(usize::try_from(rem).unwrap_or(usize::MAX));
            }
            if max == 0 {
                if io.send_queued() > 0 {
                    let limit = io.send_room() + io.send_queued();
                    io.writable_below(limit / 2);
                    return false;
                }
                // A send limit smaller than a chunk's framing: the frame waits in `pending`.
                max = 1;
            }
            let mut piece = if st.leftover.is_empty() {
                st.body.next_chunk(max).unwrap_or_default()
            } else {
                std::mem::take(&mut st.leftover)
            };
            if piece.is_empty() {
                // The end of the body.
                let (short, chunked) = (st.remaining.is_some_and(|r| r > 0), st.chunked);
                s.stream = None;
                if short {
                    // Fewer bytes than Content-Length announced: the client cannot tell a
                    // short body from a slow one, so the connection is reset.
                    self.stats.handler_errors += 1;
                    io.abort();
                    s.phase = Phase::Closed;
                    s.fin = true;
                    s.pending = Default::default();
                    return true;
                }
                if chunked {
                    s.push_pending(Bytes::from_static(LAST_CHUNK));
                    self.stats.bytes_queued += LAST_CHUNK.len() as u64;
                }
                continue;
            }
            if piece.len() > max {
                st.leftover = piece.split_off(max);
            }
            if let Some(rem) = st.remaining.as_mut() {
                *rem -= piece.len() as u64;
            }
            let mut queued = piece.len();
            if st.chunked {
                write_chunk_size(&mut self.arena, piece.len());
                let size_line = self.arena.split().freeze();
                queued += size_line.len() + 2;
                s.push_pending(size_line);
                s.push_pending(piece);
                s.push_pending(Bytes::from_static(b"\r\n"));
            } else {
                s.push_pending(piece);
            }
            self.stats.bytes_queued += queued as u64;
        }
        if s.is_closed() && !s.fin {
            io.close();
            s.fin = true;
        }
        true
    }

    /// Answers a request that cannot be served or framed, then closes (RFC 9112 9.6: the
    /// server cannot know where the next request would start).
    fn refuse(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>, e: RequestError, now: Instant) {
        self.stats.errors[e.index()] += 1;
        self.reply_and_close(s, io, e.status(), now);
    }

    fn reply_and_close(
        &mut self,
        s: &mut HttpSession,
        io: &mut AppIo<'_>,
        status: StatusCode,
        now: Instant,
    ) {
        let to = ReplyTo {
            head_only: false,
            conn: ConnHeader::Close,
            version: Version::Http11,
            started: s.head_started.take().unwrap_or(now),
        };
        s.phase = Phase::Head;
        if let Some(l) = self.log.as_mut() {
            l.begin(None);
        }
        let resp = self.error_response(status);
        let slot = resp.head_key.map(|k| k as usize);
        self.send_response(s, io, resp, slot, to, now);
    }

    /// Graceful close: the FIN follows the response being sent. Unread bytes are dropped,
    /// now and later.
    fn close(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>) {
        let n = io.data().len();
        io.consume(n);
        // No request will be read any more: its body buffer goes back at once.
        self.body_memory -= s.stash.capacity();
        s.stash = Vec::new();
        s.phase = Phase::Closed;
        s.head_started = None;
        if !s.busy() && !s.fin {
            io.close();
            s.fin = true;
        }
    }

    /// The deadline to ask for: the phase's, or the send timeout's if that comes first.
    fn deadline(&self, s: &HttpSession, io: &AppIo<'_>) -> Option<Instant> {
        match (self.phase_deadline(s), self.send_deadline(s, io)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// While response bytes are queued: the last progress (the peer's last acknowledgment
    /// of new bytes, or the queue's start) plus `send_timeout`. It applies in every phase,
    /// also after the server closed (the FIN waits behind those bytes).
    fn send_deadline(&self, s: &HttpSession, io: &AppIo<'_>) -> Option<Instant> {
        (io.send_queued() > 0)
            .then(|| io.send_progress().max(s.send_since) + self.config.send_timeout)
    }

    /// The deadline of the phase the connection is in.
    fn phase_deadline(&self, s: &HttpSession) -> Option<Instant> {
        match s.phase {
            Phase::Closed => None,
            Phase::Body { .. } => Some(s.body_progress + self.config.body_timeout),
            Phase::Head => Some(match s.head_started {
                Some(t) => t + self.config.header_timeout,
                None if s.requests == 0 => s.idle_since + self.config.header_timeout,
                None => s.idle_since + self.config.keepalive_timeout,
            }),
        }
    }

    fn timed_out(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>, now: Instant) {
        if self.config.send_408 {
            // RFC 9110 15.5.9: 408, and the server closes.
            self.reply_and_close(s, io, StatusCode::REQUEST_TIMEOUT, now);
        } else {
            self.close(s, io);
        }
    }
}

/// Work for an [`HttpApp`] on its own worker, sent from another thread or worker through a
/// [`Mailbox`](crate::Mailbox) (the app's [`App::Message`]): it runs between two iterations of
/// the worker's loop, with the app (and so its handler) in hand. `synack serve` reloads its
/// content this way. Boxed, so meant for control work (a reload, a setting), not per request.
pub type HttpTask<H> = Box<dyn FnOnce(&mut HttpApp<H>, Instant) + Send>;

impl<H: Handler + 'static> App for HttpApp<H> {
    type Session = HttpSession;
    type Message = HttpTask<H>;

    fn on_open(&mut self, conn: &ConnInfo, now: Instant) -> Option<HttpSession> {
        self.stats.connections_opened += 1;
        let mut s = HttpSession::new(now);
        s.peer = conn.peer();
        Some(s)
    }

    fn on_readable(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>, now: Instant) {
        self.drive(s, io, now);
        io.set_deadline(self.deadline(s, io));
    }

    fn on_message(&mut self, task: HttpTask<H>, _wakeups: &mut Wakeups<'_>, now: Instant) {
        task(self, now);
    }

    /// Room in the send queue: the rest of the response goes on, then pipelined requests
    /// left unread are read again.
    fn on_writable(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>, now: Instant) {
        self.drive(s, io, now);
        io.set_deadline(self.deadline(s, io));
    }

    fn on_deadline(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>, now: Instant) {
        if self.send_deadline(s, io).is_some_and(|due| now >= due) {
            // nginx closes the connection when send_timeout expires. Nothing queued was
            // acknowledged for that long, so a FIN would only wait behind bytes that do not
            // drain (Linux would then keep the orphan until its probes ran out): reset now,
            // as nginx's `reset_timedout_connection on` does, and free the connection.
            self.stats.timeouts_send += 1;
            io.abort();
            return;
        }
        match self.phase_deadline(s) {
            Some(due) if now >= due => match s.phase {
                Phase::Head if s.head_started.is_some() => {
                    self.stats.timeouts_header += 1;
                    self.timed_out(s, io, now);
                }
                // A response still being sent (a slow reader, a small window) is not idleness:
                // the keep-alive period starts again from now.
                Phase::Head if io.send_queued() > 0 => s.idle_since = now,
                Phase::Head => {
                    self.stats.timeouts_idle += 1;
                    self.close(s, io);
                }
                Phase::Body { .. } => {
                    self.stats.timeouts_body += 1;
                    self.timed_out(s, io, now);
                }
                Phase::Closed => {}
            },
            _ => {}
        }
        io.set_deadline(self.deadline(s, io));
    }

    fn on_close(&mut self, mut s: HttpSession, _reason: CloseReason, now: Instant) {
        // A response cut short is logged with the bytes it got to send, as nginx does.
        self.log_complete(&mut s, now);
        self.body_memory -= s.stash.capacity();
        self.stats.connections_closed += 1;
    }

    fn on_wall_clock(&mut self, unix_secs: u64) {
        self.set_wall_clock(unix_secs);
    }

    fn on_poll(&mut self, _opener: &mut Opener<'_>, now: Instant) {
        // A log buffer whose first line has waited long enough goes to the writer.
        if let Some(l) = self.log.as_mut() {
            l.poll(now);
        }
    }

    fn requests(&self) -> u64 {
        self.stats.responses
    }

    fn counters(&self) -> Vec<AppMetric> {
        let s = &self.stats;
        const RESPONSES: &str = "HTTP responses queued, by status class (1xx: 100 Continue).";
        const TIMEOUTS: &str = "HTTP connections closed by a timeout, by which.";
        const ERRORS: &str = "HTTP requests refused as malformed or too large, by reason.";
        const BODY: &str = "HTTP request body bytes read, collected for the handler or discarded.";
        let mut v = Vec::with_capacity(16 + RequestError::COUNT);
        for (class, i) in [("1xx", 1), ("2xx", 2), ("3xx", 3), ("4xx", 4), ("5xx", 5)] {
            let n = s.responses_by_class[i];
            v.push(AppMetric::counter("http_responses", RESPONSES, n).with_label("class", class));
        }
        v.push(AppMetric::counter(
            "http_head_responses",
            "HTTP responses to HEAD requests (no body sent).",
            s.head_responses,
        ));
        v.push(AppMetric::counter(
            "http_response_bytes",
            "HTTP response bytes queued for sending (heads and bodies).",
            s.bytes_queued,
        ));
        v.push(
            AppMetric::counter("http_request_body_bytes", BODY, s.body_bytes_collected)
                .with_label("fate", "collected"),
        );
        v.push(
            AppMetric::counter("http_request_body_bytes", BODY, s.body_bytes_discarded)
                .with_label("fate", "discarded"),
        );
        for (kind, n) in [
            ("header", s.timeouts_header),
            ("idle", s.timeouts_idle),
            ("body", s.timeouts_body),
            ("send", s.timeouts_send),
        ] {
            v.push(AppMetric::counter("http_timeouts", TIMEOUTS, n).with_label("kind", kind));
        }
        for e in RequestError::ALL {
            v.push(
                AppMetric::counter("http_request_errors", ERRORS, s.errors[e.index()])
                    .with_label("reason", e.name()),
            );
        }
        v.push(AppMetric::counter(
            "http_max_requests_closes",
            "HTTP connections closed because they reached the most requests a connection may make.",
            s.closed_max_requests,
        ));
        v.push(AppMetric::counter(
            "http_handler_errors",
            "Handler answers replaced by a 500, and streamed bodies that did not match their length.",
            s.handler_errors,
        ));
        v.push(AppMetric::counter(
            "http_access_log_dropped",
            "Access log records dropped because the access log thread's queue was full.",
            self.access_log_dropped(),
        ));
        v
    }
}

#[cfg(test)]
mod tests;
