//! The responder as an [`App`] of the TCP engine: [`HttpApp`] (shared by the connections of
//! one worker: configuration, content, cached heads, the date, statistics) and [`HttpSession`]
//! (one connection's progress through RFC 9112's message sequence).
//!
//! A connection moves between three phases:
//! - `Head`: waiting for (the rest of) a request head. With no byte of it yet, the connection
//!   is idle; the first byte starts the header timeout.
//! - `Body`: skipping a request body; its response is sent once the body is complete.
//! - `Closed`: the server called `io.close()`; later bytes are read and dropped.
//!
//! Pipelined requests (RFC 9112 9.3.2) are answered in order within one `on_readable`, until
//! the responses queued and not yet acknowledged exceed `max_queued_bytes` or
//! `max_queued_chunks`: then the connection stops reading (the requests left unread fill the
//! receive buffer and the window closes) and resumes when half of the queue has drained.
//! Every callback ends by setting the deadline of the phase it leaves the connection in.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::content::{Content, ResourceId};
use super::request::{
    BodyReader, Framing, HeadScan, HeadScanner, Method, RequestError, Version, normalize_path,
    parse_head, request_path,
};
use super::response::{CONTINUE_100, ConnHeader, HeadCache, HttpDate, Status};
use crate::tcp::app::{App, AppIo, CloseReason, ConnInfo};
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
    /// Request service times kept until [`HttpApp::drain_service_times`]; 0 keeps none.
    /// Default 4096.
    pub service_time_capacity: usize,
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
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            max_requests: 1000,
            send_408: true,
            service_time_capacity: 4096,
            max_queued_bytes: 64 * 1024,
            max_queued_chunks: 32,
        }
    }
}

/// Counters of one [`HttpApp`] (one worker). Plain integers: read them with
/// [`HttpApp::stats`] and sum across workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    pub connections_opened: u64,
    pub connections_closed: u64,
    /// Final responses queued (errors included).
    pub responses: u64,
    /// Of those, answers to HEAD (no body sent).
    pub head_responses: u64,
    /// Responses by class: `[2]` = 2xx ... `[5]` = 5xx; `[1]` counts the interim
    /// `100 Continue`; `[0]` is unused.
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
    /// Request body bytes read and dropped.
    pub body_bytes_discarded: u64,
    /// Response heads formatted (at most once per second per resource and `Connection` form).
    pub head_rebuilds: u64,
    /// Service times not kept because the buffer was full.
    pub service_times_dropped: u64,
    /// Times a connection stopped reading because its queued responses reached the bound.
    pub read_pauses: u64,
}

impl HttpStats {
    pub fn error_count(&self, e: RequestError) -> u64 {
        self.errors[e.index()]
    }
}

/// The HTTP responder of one worker.
pub struct HttpApp {
    config: HttpConfig,
    content: Arc<Content>,
    heads: HeadCache,
    date: HttpDate,
    stats: HttpStats,
    /// Reused buffers for path decoding and normalization.
    decoded: Vec<u8>,
    key: Vec<u8>,
    service_times: Vec<u32>,
}

/// One connection's state.
pub struct HttpSession {
    phase: Phase,
    scanner: HeadScanner,
    /// When the first byte of the head being received arrived.
    head_started: Option<Instant>,
    /// When the connection opened or the last response was queued.
    idle_since: Instant,
    /// When the body being skipped last made progress.
    body_progress: Instant,
    /// When the send queue last went from empty to not empty (the send timeout counts from
    /// here or from the peer's last acknowledgment, whichever is later).
    send_since: Instant,
    /// Final responses queued on this connection.
    requests: u32,
    /// The rest of a response body the send queue has not taken yet (it takes at most the
    /// connection's send limit); sent as room opens, before any further request is read.
    pending: Bytes,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Head,
    Body { reader: BodyReader, reply: Reply },
    Closed,
}

/// A response decided on and not yet queued.
#[derive(Clone, Copy, Debug)]
struct Reply {
    resource: ResourceId,
    head_only: bool,
    conn: ConnHeader,
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
            pending: Bytes::new(),
        }
    }
    /// Final responses queued on this connection so far.
    pub fn requests(&self) -> u32 {
        self.requests
    }
    /// True once the server has decided to close (after `io.close()`).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }
    /// Called before queueing bytes: an empty queue starts the send timeout's clock.
    fn note_send(&mut self, io: &AppIo<'_>, now: Instant) {
        if io.send_queued() == 0 {
            self.send_since = now;
        }
    }
}

impl HttpApp {
    pub fn new(config: HttpConfig, content: Arc<Content>) -> Self {
        HttpApp {
            heads: HeadCache::new(content.len()),
            service_times: Vec::with_capacity(config.service_time_capacity),
            config,
            content,
            date: HttpDate::new(0),
            stats: HttpStats::default(),
            decoded: Vec::with_capacity(256),
            key: Vec::with_capacity(256),
        }
    }

    /// The wall clock, in seconds since the Unix epoch, for the `Date` header. The worker calls
    /// this once per loop iteration (cheap when the second is unchanged) before any traffic;
    /// until then responses carry the epoch. Heads are reformatted lazily, at most once per
    /// second per resource and `Connection` form.
    pub fn set_wall_clock(&mut self, unix_secs: u64) {
        self.date.set(unix_secs);
    }

    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    pub fn content(&self) -> &Arc<Content> {
        &self.content
    }

    /// Service times in microseconds (first byte of a request to its response queued) since
    /// the last drain, in order. Bounded by `service_time_capacity`; the worker drains it.
    pub fn drain_service_times(&mut self) -> std::vec::Drain<'_, u32> {
        self.service_times.drain(..)
    }

    /// Answers every complete request in `io.data()`, in order, and skips bodies.
    ///
    /// Handled bytes are consumed once, at the end: consuming moves what is left to the front
    /// of the receive buffer, and doing that per pipelined request would copy the rest again
    /// and again. (Paths that close consume everything at once.)
    fn drive(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>, now: Instant) {
        // A head larger than the receive buffer could never complete: the buffer caps it.
        let max_head = self.config.max_header_bytes.min(io.recv.capacity()).max(1);
        // Bytes at the front of `io.data()` already handled.
        let mut done = 0;
        if !s.pending.is_empty() {
            // The last response is still being queued: it goes first, and no request is read
            // meanwhile (`on_writable` comes back here).
            io.send_bytes(&mut s.pending);
            if !s.pending.is_empty() {
                return;
            }
        }
        loop {
            match s.phase {
                Phase::Closed => break,
                Phase::Body { mut reader, reply } => {
                    let data = &io.data()[done..];
                    if data.is_empty() {
                        if io.peer_closed() {
                            self.close(s, io);
                        }
                        break;
                    }
                    let (used, result) =
                        reader.feed(data, self.config.max_body, self.config.max_header_bytes);
                    done += used;
                    self.stats.body_bytes_discarded += used as u64;
                    s.body_progress = now;
                    match result {
                        Ok(true) => {
                            s.phase = Phase::Head;
                            self.reply(s, io, reply, now);
                        }
                        Ok(false) => {
                            s.phase = Phase::Body { reader, reply };
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
                    if !s.pending.is_empty()
                        || (s.head_started.is_none()
                            && (io.send_queued() >= self.config.max_queued_bytes
                                || io.send_queued_chunks() >= self.config.max_queued_chunks))
                    {
                        // Back-pressure: the next request waits in the receive buffer until
                        // half of what is queued has been acknowledged (`on_writable`).
                        if s.pending.is_empty() {
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
                    let body_bytes_waiting = data.len() > end;
                    let plan = self.plan(&data[start..end], s.requests, started);
                    done += end;
                    s.scanner.reset();
                    s.head_started = None;
                    let (reply, body, expect_continue) = match plan {
                        Ok(p) => p,
                        Err(e) => {
                            self.refuse(s, io, e, now);
                            break;
                        }
                    };
                    match body {
                        None => self.reply(s, io, reply, now),
                        Some(reader) => {
                            // RFC 9110 10.1.1: answer 100-continue before reading the body,
                            // unless the client did not wait for it.
                            if expect_continue && !body_bytes_waiting {
                                s.note_send(io, now);
                                io.send_bytes(&mut Bytes::from_static(CONTINUE_100));
                                self.stats.continues += 1;
                                self.stats.responses_by_class[1] += 1;
                            }
                            s.body_progress = now;
                            s.phase = Phase::Body { reader, reply };
                        }
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

    /// Decides the response to a complete head: the resource, the `Connection` form, and the
    /// body to skip first (with whether to send 100 Continue).
    fn plan(
        &mut self,
        head: &[u8],
        served: u32,
        started: Instant,
    ) -> Result<(Reply, Option<BodyReader>, bool), RequestError> {
        let h = parse_head(head)?;
        let resource = match h.method {
            Method::Get | Method::Head => {
                let path = request_path(h.target)?;
                let directory = normalize_path(path, &mut self.decoded, &mut self.key)?;
                self.content.resolve(&self.key, directory)
            }
            // RFC 9110 15.5.6: a method known but not allowed here: 405 with Allow.
            Method::NotAllowed => self.content.error(Status::MethodNotAllowed),
            // RFC 9110 9.1: an unrecognized method: 501.
            Method::Unknown => self.content.error(Status::NotImplemented),
        };
        let body = match h.framing {
            Framing::Length(n) if n > self.config.max_body => {
                return Err(RequestError::BodyTooLarge);
            }
            f => BodyReader::new(f),
        };
        let last = served.saturating_add(1) >= self.config.max_requests;
        let conn = if !h.persistent() || last {
            ConnHeader::Close
        } else if h.version == Version::Http10 {
            // RFC 9112 C.2.2: an HTTP/1.0 client learns of persistence from this header.
            ConnHeader::KeepAlive
        } else {
            ConnHeader::Default
        };
        let reply = Reply {
            resource,
            head_only: h.method == Method::Head,
            conn,
            started,
        };
        let expect_continue = h.expect_continue && h.version == Version::Http11;
        Ok((reply, body, expect_continue))
    }

    /// Queues a response: the cached head and the body, two `Bytes` clones.
    fn reply(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>, reply: Reply, now: Instant) {
        let res = self.content.resource(reply.resource);
        let head = self
            .heads
            .head(reply.resource.0 as usize, res, reply.conn, &self.date);
        s.note_send(io, now);
        let mut queued = head.len();
        s.pending = head.clone();
        io.send_bytes(&mut s.pending);
        if reply.head_only {
            self.stats.head_responses += 1;
        } else {
            queued += res.body.len();
            if s.pending.is_empty() {
                s.pending = res.body.clone();
                io.send_bytes(&mut s.pending);
            } else {
                // The head itself did not fit (a send limit below a head's size): the body
                // follows it. Rare enough that joining them by copy is fine.
                let mut both = bytes::BytesMut::with_capacity(s.pending.len() + res.body.len());
                both.extend_from_slice(&s.pending);
                both.extend_from_slice(&res.body);
                s.pending = both.freeze();
            }
        }
        // The worker's request-service latency: from now (the request is complete) until the
        // response's last byte is handed to the transmit ring.
        io.time_until_sent(now);
        self.stats.head_rebuilds = self.heads.rebuilds();
        self.stats.responses += 1;
        self.stats.responses_by_class[res.status.class()] += 1;
        self.stats.bytes_queued += queued as u64;
        if self.config.service_time_capacity > 0 {
            if self.service_times.len() < self.config.service_time_capacity {
                let us = now.as_micros().saturating_sub(reply.started.as_micros());
                self.service_times.push(us.min(u32::MAX as u64) as u32);
            } else {
                self.stats.service_times_dropped += 1;
            }
        }
        s.requests = s.requests.saturating_add(1);
        s.idle_since = now;
        if reply.conn == ConnHeader::Close {
            if s.requests >= self.config.max_requests {
                self.stats.closed_max_requests += 1;
            }
            self.close(s, io);
        }
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
        status: Status,
        now: Instant,
    ) {
        let reply = Reply {
            resource: self.content.error(status),
            head_only: false,
            conn: ConnHeader::Close,
            started: s.head_started.take().unwrap_or(now),
        };
        s.phase = Phase::Head;
        self.reply(s, io, reply, now);
    }

    /// Graceful close (FIN after what is queued). Unread bytes are dropped, now and later.
    fn close(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>) {
        io.close();
        let n = io.data().len();
        io.consume(n);
        s.phase = Phase::Closed;
        s.head_started = None;
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
            self.reply_and_close(s, io, Status::RequestTimeout, now);
        } else {
            self.close(s, io);
        }
    }
}

impl App for HttpApp {
    type Session = HttpSession;
    type Message = ();

    fn on_open(&mut self, _conn: &ConnInfo, now: Instant) -> Option<HttpSession> {
        self.stats.connections_opened += 1;
        Some(HttpSession::new(now))
    }

    fn on_readable(&mut self, s: &mut HttpSession, io: &mut AppIo<'_>, now: Instant) {
        self.drive(s, io, now);
        io.set_deadline(self.deadline(s, io));
    }

    /// Room in the send queue: the rest of a large body goes on, then pipelined requests
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

    fn on_close(&mut self, _s: HttpSession, _reason: CloseReason, _now: Instant) {
        self.stats.connections_closed += 1;
    }

    fn on_wall_clock(&mut self, unix_secs: u64) {
        self.set_wall_clock(unix_secs);
    }

    fn requests(&self) -> u64 {
        self.stats.responses
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let s = &self.stats;
        vec![
            ("responses", s.responses),
            ("responses_1xx", s.responses_by_class[1]),
            ("responses_2xx", s.responses_by_class[2]),
            ("responses_3xx", s.responses_by_class[3]),
            ("responses_4xx", s.responses_by_class[4]),
            ("responses_5xx", s.responses_by_class[5]),
            ("head_responses", s.head_responses),
            ("timeouts_header", s.timeouts_header),
            ("timeouts_idle", s.timeouts_idle),
            ("timeouts_body", s.timeouts_body),
            ("timeouts_send", s.timeouts_send),
            ("closed_max_requests", s.closed_max_requests),
            ("connections_opened", s.connections_opened),
            ("connections_closed", s.connections_closed),
        ]
    }
}

#[cfg(test)]
mod tests;
