//! The access log (`--access-log FILE`): one line per response, in nginx's `combined` format
//! with the request time appended, or one JSON object per line.
//!
//! Workers never make a system call for it: when a response has been handed whole to the
//! send queue (nginx logs when the last byte is written to the socket), [`HttpApp`](super::HttpApp)
//! formats its line into a buffer of the worker's own, from a fixed-size [`Record`] of what
//! the line needs (byte fields inline, truncated). A buffer that might not hold another line,
//! or whose first line is 20 ms old, goes to the logger thread through a bounded lock-free
//! queue (crossbeam's `ArrayQueue`), which writes it with one `write(2)` and hands it back
//! through a second queue. The buffers are allocated when the worker starts; with none back
//! the line is dropped and counted (`access_log_dropped`): the datapath never blocks, locks
//! or allocates for the log. What crosses cores is the bytes `write(2)` reads.
//!
//! This module is the workers' side and makes no system call. The file and the logger thread
//! (its pace, its core, reopening the file on SIGHUP for logrotate) are
//! `server::access_log`'s `AccessLog`.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use super::handler::Request;
use super::request::Version;
use super::response::{imf_fixdate, put_decimal};
use crate::time::Instant;

/// The line format of the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// nginx's `combined` plus `$request_time`:
    /// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
    /// "$http_referer" "$http_user_agent" $request_time`. Bytes outside printable ASCII, `"`
    /// and `\` are written `\xHH`, as nginx does; an absent value is `-`.
    #[default]
    Combined,
    /// One JSON object per line, keys named after nginx's variables (`time_iso8601`,
    /// `remote_addr`, `remote_port`, `request_method`, `request_uri`, `server_protocol`,
    /// `status`, `body_bytes_sent`, `http_referer`, `http_user_agent`, `request_time`).
    /// Strings are JSON-escaped; bytes that are not UTF-8 are written `\u00HH`.
    Json,
}

/// Lines of room each worker has by default for lines the writer has not written yet
/// (`--access-log-queue`): 1 MiB of buffers.
pub const DEFAULT_QUEUE: u64 = 8192;

/// A byte field of a [`Record`], inline and truncated to `N` bytes.
#[derive(Clone, Copy)]
struct Field<const N: usize> {
    len: u16,
    truncated: bool,
    bytes: [u8; N],
}

impl<const N: usize> Field<N> {
    const EMPTY: Self = Field {
        len: 0,
        truncated: false,
        bytes: [0; N],
    };
    fn set(&mut self, b: &[u8]) {
        let n = b.len().min(N);
        self.bytes[..n].copy_from_slice(&b[..n]);
        self.len = n as u16;
        self.truncated = b.len() > N;
    }
    fn get(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// One access log line's worth of facts, fixed size (about 900 bytes), kept by the worker
/// until the response is complete and the line is formatted. Fields longer than their room
/// are cut (and marked with `...`).
#[derive(Clone, Copy)]
pub(crate) struct Record {
    peer: SocketAddr,
    /// Wall clock when the response was complete, seconds since the Unix epoch.
    unix_secs: u64,
    /// From the request's first byte to its response complete, in microseconds.
    request_us: u64,
    /// Response body bytes handed to the send queue (chunk framing included, as nginx).
    body_bytes: u64,
    status: u16,
    /// `None`: no request line was understood (a refused or timed-out request).
    version: Option<Version>,
    method: Field<16>,
    target: Field<384>,
    referer: Field<192>,
    agent: Field<256>,
}

impl Record {
    const EMPTY: Record = Record {
        peer: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        unix_secs: 0,
        request_us: 0,
        body_bytes: 0,
        status: 0,
        version: None,
        method: Field::EMPTY,
        target: Field::EMPTY,
        referer: Field::EMPTY,
        agent: Field::EMPTY,
    };
}

/// Responses whose last bytes wait for room in the send queue, per worker: their records
/// wait in a slab of this many (beyond it, such a record is written at once, its figures
/// as they stand when the response was decided).
const PARKED: usize = 64;

/// Slot of no parked record.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// The longest line a [`Record`] can make, in either format: every byte field escaped at
/// its widest (`\u00HH`, six bytes for one) plus the fixed text and numbers. A buffer is
/// handed to the writer when less than this is left in it, so formatting never grows one.
const MAX_LINE: usize = 6 * (16 + 384 + 192 + 256) + 512;

/// Bytes of room a line is counted for when `--access-log-queue` is turned into buffers.
const LINE_ROOM: usize = 128;

/// Largest and smallest log buffer.
const MAX_CHUNK: usize = 64 * 1024;
const MIN_CHUNK: usize = 2 * MAX_LINE;

/// A buffer with lines in it goes to the writer at the latest this long after its first
/// line, so that a quiet server's lines reach the file within a few tens of milliseconds.
const HAND_OFF_AFTER_US: u64 = 20_000;

/// A worker's pair of queues: buffers of formatted lines go to the writer in `full` and
/// come back, written and emptied, in `free`. The worker formats each line into a buffer of
/// its own (the bytes the writer passes to `write(2)` are all that crosses cores), so the
/// writer thread does no more than one system call per buffer.
pub(crate) struct Queues {
    full: ArrayQueue<Vec<u8>>,
    free: ArrayQueue<Vec<u8>>,
}

/// One worker's side of the access log: the record being filled for the current request,
/// the records of responses still being sent, and the lines being written. Owned by the
/// worker's `HttpApp`.
pub(crate) struct LogState {
    /// The request being answered (its fields set by `begin`).
    pub(crate) current: Box<Record>,
    parked: Vec<Record>,
    free: Vec<u32>,
    lines: Lines,
}

/// A worker's formatted lines: the buffer being filled and the queues to the writer.
struct Lines {
    queues: Arc<Queues>,
    format: AccessLogFormat,
    /// The buffer lines are formatted into (`None`: none was free).
    chunk: Option<Vec<u8>>,
    /// When the first line went into `chunk`.
    since: Instant,
    clock: TimeText,
    /// Lines that found no buffer free.
    dropped: u64,
}

impl LogState {
    pub(crate) fn new(sink: AccessLogSink) -> LogState {
        LogState {
            current: Box::new(Record::EMPTY),
            parked: vec![Record::EMPTY; PARKED],
            free: (0..PARKED as u32).rev().collect(),
            lines: Lines {
                chunk: sink.queues.free.pop(),
                queues: sink.queues,
                format: sink.format,
                since: Instant::from_micros(0),
                clock: TimeText::new(),
                dropped: 0,
            },
        }
    }

    /// Lines dropped because no buffer was free.
    pub(crate) fn dropped(&self) -> u64 {
        self.lines.dropped
    }

    /// Takes the request line and the logged header fields of `req` (or none: a request
    /// refused before it was understood).
    pub(crate) fn begin(&mut self, req: Option<&Request<'_>>) {
        let r = &mut self.current;
        let Some(req) = req else {
            r.method.set(b"");
            r.target.set(b"");
            r.version = None;
            r.referer.set(b"");
            r.agent.set(b"");
            return;
        };
        r.method.set(req.method().as_str().as_bytes());
        r.target.set(req.target().as_bytes());
        r.version = Some(req.version());
        r.referer.set(req.referer);
        r.agent.set(req.user_agent);
    }

    /// The response to the current request is decided: its status, and `base`, the count of
    /// the connection's bytes handed to the send queue at which its body starts.
    pub(crate) fn respond(&mut self, peer: SocketAddr, status: u16, base: u64) {
        let r = &mut self.current;
        r.peer = peer;
        r.status = status;
        r.body_bytes = base;
    }

    /// The current response is complete: its line is written into the buffer.
    pub(crate) fn complete_current(
        &mut self,
        started: Instant,
        now: Instant,
        sent: u64,
        wall: u64,
    ) {
        finish(&mut self.current, started, now, sent, wall);
        self.lines.write(&self.current, now);
    }

    /// The current response waits for room: its record is parked until
    /// [`complete`](Self::complete). Returns the slot, or [`NO_SLOT`] if the slab is full (then the
    /// record is written now).
    pub(crate) fn park(&mut self, started: Instant, now: Instant, sent: u64, wall: u64) -> u32 {
        match self.free.pop() {
            Some(i) => {
                let r = &mut self.parked[i as usize];
                *r = *self.current;
                // Until then, `request_us` holds the request's start.
                r.request_us = started.as_micros();
                i
            }
            None => {
                self.complete_current(started, now, sent, wall);
                NO_SLOT
            }
        }
    }

    /// The parked response of `slot` is complete (or its connection ended): its line is
    /// written into the buffer and the slot is free again.
    pub(crate) fn complete(&mut self, slot: u32, now: Instant, sent: u64, wall: u64) {
        let Some(r) = self.parked.get_mut(slot as usize) else {
            return;
        };
        let started = Instant::from_micros(r.request_us);
        finish(r, started, now, sent, wall);
        self.lines.write(r, now);
        self.free.push(slot);
    }

    /// Once per loop iteration: a buffer whose first line has waited long enough goes to
    /// the writer, full or not; a worker that had none free takes one back.
    pub(crate) fn poll(&mut self, now: Instant) {
        let l = &mut self.lines;
        match &l.chunk {
            Some(c) if !c.is_empty() => {
                if now.as_micros().saturating_sub(l.since.as_micros()) >= HAND_OFF_AFTER_US {
                    l.hand_off();
                }
            }
            Some(_) => {}
            None => l.chunk = l.queues.free.pop(),
        }
    }
}

impl Lines {
    /// Formats `r` into the buffer (taking a free one if there is none), and hands the
    /// buffer over once another line might not fit. No buffer free: the line is dropped and
    /// counted.
    fn write(&mut self, r: &Record, now: Instant) {
        if self.chunk.is_none() {
            self.chunk = self.queues.free.pop();
        }
        let Some(c) = self.chunk.as_mut() else {
            self.dropped += 1;
            return;
        };
        if c.is_empty() {
            self.since = now;
        }
        match self.format {
            AccessLogFormat::Combined => combined(c, r, &mut self.clock),
            AccessLogFormat::Json => json(c, r, &mut self.clock),
        }
        if c.capacity() - c.len() < MAX_LINE {
            self.hand_off();
        }
    }

    /// Passes the buffer to the writer and takes an empty one (if any is back).
    fn hand_off(&mut self) {
        if let Some(c) = self.chunk.take() {
            // Never full: the queue holds every buffer of the pool.
            let _ = self.queues.full.push(c);
        }
        self.chunk = self.queues.free.pop();
    }
}

impl Drop for Lines {
    /// The worker stops: what its buffer holds goes to the writer, which writes it before
    /// [`AccessLog::finish`](super::AccessLog::finish) returns.
    fn drop(&mut self) {
        if self.chunk.as_ref().is_some_and(|c| !c.is_empty()) {
            self.hand_off();
        }
    }
}

fn finish(r: &mut Record, started: Instant, now: Instant, sent: u64, wall: u64) {
    r.body_bytes = sent.saturating_sub(r.body_bytes);
    r.request_us = now.as_micros().saturating_sub(started.as_micros());
    r.unix_secs = wall;
}

/// One worker's queue into the access log ([`AccessLog::sink`](super::AccessLog::sink)); give it to that worker's
/// [`HttpApp::with_access_log`](super::HttpApp::with_access_log).
pub struct AccessLogSink {
    queues: Arc<Queues>,
    format: AccessLogFormat,
}

/// The buffers that give a worker room for about `lines` lines: (how many, bytes each).
pub(crate) fn chunk_plan(lines: u64) -> (usize, usize) {
    let total = usize::try_from(lines)
        .unwrap_or(usize::MAX)
        .saturating_mul(LINE_ROOM);
    let bytes = (total / 2).clamp(MIN_CHUNK, MAX_CHUNK);
    (total.div_ceil(bytes).max(2), bytes)
}

impl AccessLogSink {
    /// A worker's queues with `chunks` empty buffers of `chunk_bytes` each (allocated here, off
    /// the datapath), and the writer's end of them.
    pub(crate) fn new(
        chunks: usize,
        chunk_bytes: usize,
        format: AccessLogFormat,
    ) -> (AccessLogSink, Arc<Queues>) {
        let queues = Arc::new(Queues {
            full: ArrayQueue::new(chunks),
            free: ArrayQueue::new(chunks),
        });
        for _ in 0..chunks {
            let _ = queues.free.push(Vec::with_capacity(chunk_bytes));
        }
        let sink = AccessLogSink {
            queues: queues.clone(),
            format,
        };
        (sink, queues)
    }
}

impl Queues {
    /// The writer's side: passes each buffer the worker handed over to `write`, in the order
    /// they were filled, and gives it back empty (also when `write` fails, which stops the
    /// round). Returns how many it passed.
    pub(crate) fn drain(
        &self,
        mut write: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<usize> {
        let mut n = 0;
        while let Some(mut c) = self.full.pop() {
            let r = write(&c);
            c.clear();
            let _ = self.free.push(c);
            r?;
            n += 1;
        }
        Ok(n)
    }
}

/// The last second formatted, both ways (most records of a busy second share it).
struct TimeText {
    secs: Option<u64>,
    /// `03/Dec/2026:06:54:19 +0000`
    local: Vec<u8>,
    /// `2026-12-03T06:54:19+00:00`
    iso: Vec<u8>,
    /// The last peer address formatted (a client's requests come in runs: keep-alive,
    /// pipelining), so `Display` for an address runs once per change, not per line.
    peer: Option<std::net::IpAddr>,
    peer_text: Vec<u8>,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl TimeText {
    /// With room for the longest texts, so that formatting never allocates.
    fn new() -> TimeText {
        TimeText {
            secs: None,
            local: Vec::with_capacity(32),
            iso: Vec::with_capacity(32),
            peer: None,
            peer_text: Vec::with_capacity(48),
        }
    }

    /// The text of `ip`, formatted once per change of address.
    fn peer(&mut self, ip: std::net::IpAddr) -> &[u8] {
        if self.peer != Some(ip) {
            self.peer = Some(ip);
            self.peer_text.clear();
            match ip {
                // Many clients take turns (close mode, many sources): four `put_decimal`s
                // rather than `Display`'s formatting machinery.
                std::net::IpAddr::V4(v4) => {
                    for (i, o) in v4.octets().into_iter().enumerate() {
                        if i > 0 {
                            self.peer_text.push(b'.');
                        }
                        put_decimal(&mut self.peer_text, o as u64);
                    }
                }
                std::net::IpAddr::V6(_) => {
                    let _ = write!(self.peer_text, "{ip}");
                }
            }
        }
        &self.peer_text
    }

    fn set(&mut self, secs: u64) {
        if self.secs == Some(secs) {
            return;
        }
        self.secs = Some(secs);
        // "Thu, 03 Dec 2026 06:54:19 GMT"
        let d = imf_fixdate(secs);
        let (day, mon, year, hms) = (&d[5..7], &d[8..11], &d[12..16], &d[17..25]);
        let month = MONTHS.iter().position(|m| &m[..] == mon).unwrap_or(0) + 1;
        self.local.clear();
        for part in [day, b"/", mon, b"/", year, b":", hms, b" +0000"] {
            self.local.extend_from_slice(part);
        }
        self.iso.clear();
        self.iso.extend_from_slice(year);
        let _ = write!(self.iso, "-{month:02}-");
        for part in [day, b"T", hms, b"+00:00"] {
            self.iso.extend_from_slice(part);
        }
    }
}

/// Appends `b` as nginx escapes logged values: `"`, `\`, control bytes and bytes from 0x7F
/// on as `\xHH`.
fn escape_nginx(out: &mut Vec<u8>, mut b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // Runs of bytes that need no escape (all of a field, nearly always) in one copy.
    while let Some(i) = b
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c))
    {
        let c = b[i];
        out.extend_from_slice(&b[..i]);
        out.extend_from_slice(&[b'\\', b'x', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
        b = &b[i + 1..];
    }
    out.extend_from_slice(b);
}

/// A byte field for the combined format: `-` when empty, `...` after a truncated one.
fn field_nginx<const N: usize>(out: &mut Vec<u8>, f: &Field<N>) {
    if f.len == 0 {
        out.push(b'-');
    } else {
        escape_nginx(out, f.get());
        if f.truncated {
            out.extend_from_slice(b"...");
        }
    }
}

fn version_text(v: Option<Version>) -> &'static [u8] {
    match v {
        Some(Version::Http10) => b"HTTP/1.0",
        Some(Version::Http11) => b"HTTP/1.1",
        None => b"",
    }
}

/// `$request_time`: seconds with milliseconds, `1.234`.
fn seconds(out: &mut Vec<u8>, us: u64) {
    put_decimal(out, us / 1_000_000);
    let ms = (us / 1000 % 1000) as u16;
    out.extend_from_slice(&[
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
    ]);
}

/// nginx's `combined`, then `$request_time`.
fn combined(out: &mut Vec<u8>, r: &Record, clock: &mut TimeText) {
    clock.set(r.unix_secs);
    out.extend_from_slice(clock.peer(r.peer.ip()));
    out.extend_from_slice(b" - - [");
    out.extend_from_slice(&clock.local);
    out.extend_from_slice(b"] \"");
    if r.version.is_none() && r.method.len == 0 {
        out.push(b'-');
    } else {
        escape_nginx(out, r.method.get());
        out.push(b' ');
        field_nginx(out, &r.target);
        out.push(b' ');
        out.extend_from_slice(version_text(r.version));
    }
    out.extend_from_slice(b"\" ");
    put_decimal(out, r.status as u64);
    out.push(b' ');
    put_decimal(out, r.body_bytes);
    out.extend_from_slice(b" \"");
    field_nginx(out, &r.referer);
    out.extend_from_slice(b"\" \"");
    field_nginx(out, &r.agent);
    out.extend_from_slice(b"\" ");
    seconds(out, r.request_us);
    out.push(b'\n');
}

/// Appends `b` as the inside of a JSON string: `"`, `\` and control bytes escaped, UTF-8
/// as is, other bytes `\u00HH`.
fn escape_json(out: &mut Vec<u8>, b: &[u8]) {
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().bytes() {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                c if c < 0x20 || c == 0x7f => {
                    let _ = write!(out, "\\u{c:04x}");
                }
                c => out.push(c),
            }
        }
        for &c in chunk.invalid() {
            let _ = write!(out, "\\u{c:04x}");
        }
    }
}

fn field_json<const N: usize>(out: &mut Vec<u8>, key: &str, f: &Field<N>) {
    let _ = write!(out, ",\"{key}\":\"");
    escape_json(out, f.get());
    if f.truncated {
        out.extend_from_slice(b"...");
    }
    out.push(b'"');
}

/// One JSON object, keys named after nginx's variables.
fn json(out: &mut Vec<u8>, r: &Record, clock: &mut TimeText) {
    clock.set(r.unix_secs);
    out.extend_from_slice(b"{\"time_iso8601\":\"");
    out.extend_from_slice(&clock.iso);
    out.extend_from_slice(b"\",\"remote_addr\":\"");
    out.extend_from_slice(clock.peer(r.peer.ip()));
    out.extend_from_slice(b"\",\"remote_port\":");
    put_decimal(out, r.peer.port() as u64);
    field_json(out, "request_method", &r.method);
    field_json(out, "request_uri", &r.target);
    out.extend_from_slice(b",\"server_protocol\":\"");
    out.extend_from_slice(version_text(r.version));
    out.extend_from_slice(b"\",\"status\":");
    put_decimal(out, r.status as u64);
    out.extend_from_slice(b",\"body_bytes_sent\":");
    put_decimal(out, r.body_bytes);
    field_json(out, "http_referer", &r.referer);
    field_json(out, "http_user_agent", &r.agent);
    out.extend_from_slice(b",\"request_time\":");
    seconds(out, r.request_us);
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record() -> Record {
        let mut r = Record::EMPTY;
        r.peer = "10.0.0.2:40000".parse().unwrap();
        r.unix_secs = 1_796_280_859; // 2026-12-03T06:54:19Z
        r.request_us = 1_234_567;
        r.body_bytes = 5;
        r.status = 200;
        r.version = Some(Version::Http11);
        r.method.set(b"GET");
        r.target.set(b"/a?b=c");
        r.agent.set("x\"y \\ \u{e9}\n".as_bytes());
        r
    }

    #[test]
    fn decimals_and_cached_peers_read_as_display_does() {
        for n in [0u64, 7, 10, 200, 304, 65535, 1 << 40, u64::MAX] {
            let mut out = Vec::new();
            put_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        let mut t = TimeText::new();
        let a: std::net::IpAddr = "fd00:198:18::2".parse().unwrap();
        let b: std::net::IpAddr = "198.18.0.2".parse().unwrap();
        assert_eq!(t.peer(a), b"fd00:198:18::2");
        assert_eq!(t.peer(b), b"198.18.0.2");
        assert_eq!(t.peer(a), b"fd00:198:18::2");
        for v4 in ["0.0.0.0", "255.255.255.255", "10.0.100.9", "1.2.3.4"] {
            let ip: std::net::IpAddr = v4.parse().unwrap();
            assert_eq!(t.peer(ip), v4.as_bytes());
        }
    }

    fn two_small_buffers() -> (Arc<Queues>, LogState) {
        let queues = Arc::new(Queues {
            full: ArrayQueue::new(2),
            free: ArrayQueue::new(2),
        });
        for _ in 0..2 {
            assert!(queues.free.push(Vec::with_capacity(MIN_CHUNK)).is_ok());
        }
        let st = LogState::new(AccessLogSink {
            queues: queues.clone(),
            format: AccessLogFormat::Combined,
        });
        (queues, st)
    }

    fn respond(st: &mut LogState, status: u16, at: Instant) {
        let peer: SocketAddr = "198.18.0.2:40000".parse().unwrap();
        st.begin(None);
        st.respond(peer, status, 0);
        st.complete_current(at, at, 10, 1);
    }

    fn statuses(c: &[u8]) -> Vec<u16> {
        std::str::from_utf8(c)
            .unwrap()
            .lines()
            .map(|l| l.split("\"-\" ").nth(1).unwrap()[..3].parse().unwrap())
            .collect()
    }

    #[test]
    fn buffers_circulate_and_lines_without_one_are_counted() {
        let (queues, mut st) = two_small_buffers();
        let t0 = Instant::from_micros(1_000);
        // A buffer goes over once another of the longest lines might not fit.
        let per_buffer = (MIN_CHUNK - MAX_LINE) / 60 + 1;
        for i in 0..3 * per_buffer {
            respond(&mut st, 200 + (i % 100) as u16, t0);
        }
        // Two buffers went to the writer; the writer returned none, so the rest was dropped.
        assert_eq!(queues.full.len(), 2);
        let first = queues.full.pop().unwrap();
        let second = queues.full.pop().unwrap();
        let written = statuses(&first).len() + statuses(&second).len();
        assert_eq!(written as u64 + st.dropped(), 3 * per_buffer as u64);
        assert!(st.dropped() > 0);
        assert_eq!(statuses(&first)[..2], [200, 201]);
        // One comes back: the next line goes into it, and waits there until the buffer is
        // old enough (or the worker stops).
        let mut back = first;
        back.clear();
        assert!(queues.free.push(back).is_ok());
        let dropped = st.dropped();
        respond(&mut st, 299, t0 + Duration::from_millis(1));
        assert_eq!(st.dropped(), dropped);
        st.poll(t0 + Duration::from_millis(5));
        assert!(queues.full.is_empty());
        st.poll(t0 + Duration::from_millis(1) + Duration::from_micros(HAND_OFF_AFTER_US));
        assert_eq!(statuses(&queues.full.pop().unwrap()), [299]);
        // The worker stops: its buffer goes over as it is.
        let mut back = second;
        back.clear();
        assert!(queues.free.push(back).is_ok());
        st.poll(t0 + Duration::from_secs(1));
        respond(&mut st, 204, t0 + Duration::from_secs(1));
        drop(st);
        assert_eq!(statuses(&queues.full.pop().unwrap()), [204]);
    }

    #[test]
    fn queue_lines_make_buffers() {
        assert_eq!(chunk_plan(1), (2, MIN_CHUNK));
        assert_eq!(chunk_plan(4096), (8, MAX_CHUNK));
        let (n, bytes) = chunk_plan(1000);
        assert!(n >= 2 && n * bytes >= 1000 * LINE_ROOM && bytes >= MIN_CHUNK);
    }

    #[test]
    fn the_longest_lines_fit_their_bound() {
        let mut r = record();
        r.peer = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535"
            .parse()
            .unwrap();
        r.unix_secs = 253_402_300_799; // 9999-12-31T23:59:59Z
        r.request_us = u64::MAX;
        r.body_bytes = u64::MAX;
        r.status = 999;
        r.method.set(&[0xff; 100]);
        r.target.set(&[0xff; 1000]);
        r.referer.set(&[0x01; 1000]);
        r.agent.set(&[0xff; 1000]);
        for f in [combined, json] {
            let mut out = Vec::new();
            f(&mut out, &r, &mut TimeText::new());
            assert!(out.len() <= MAX_LINE, "{} > {MAX_LINE}", out.len());
        }
    }

    #[test]
    fn combined_line_escapes_as_nginx() {
        let mut out = Vec::new();
        combined(&mut out, &record(), &mut TimeText::new());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "10.0.0.2 - - [03/Dec/2026:06:54:19 +0000] \"GET /a?b=c HTTP/1.1\" 200 5 \"-\" \
             \"x\\x22y \\x5C \\xC3\\xA9\\x0A\" 1.234\n"
        );
    }

    #[test]
    fn combined_line_without_request_line() {
        let mut r = record();
        r.version = None;
        r.method.set(b"");
        r.target.set(b"");
        r.status = 408;
        let mut out = Vec::new();
        combined(&mut out, &r, &mut TimeText::new());
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("] \"-\" 408 5 "), "{s}");
    }

    #[test]
    fn json_line() {
        let mut r = record();
        r.agent.set(b"a\"b \xff \xc3\xa9");
        let mut out = Vec::new();
        json(&mut out, &r, &mut TimeText::new());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"time_iso8601\":\"2026-12-03T06:54:19+00:00\",\"remote_addr\":\"10.0.0.2\",\
             \"remote_port\":40000,\"request_method\":\"GET\",\"request_uri\":\"/a?b=c\",\
             \"server_protocol\":\"HTTP/1.1\",\"status\":200,\"body_bytes_sent\":5,\
             \"http_referer\":\"\",\"http_user_agent\":\"a\\\"b \\u00ff \u{e9}\",\
             \"request_time\":1.234}\n"
        );
    }

    #[test]
    fn fields_truncate() {
        let mut f = Field::<4>::EMPTY;
        f.set(b"abcdef");
        assert_eq!(f.get(), b"abcd");
        assert!(f.truncated);
        let mut out = Vec::new();
        field_nginx(&mut out, &f);
        assert_eq!(out, b"abcd...");
    }

    #[test]
    fn record_is_small_enough_to_copy() {
        assert!(std::mem::size_of::<Record>() <= 1024);
    }
}
