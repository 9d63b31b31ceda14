//! The access log (`--access-log FILE`): one line per response, in nginx's `combined` format
//! with the request time appended, or one JSON object per line.
//!
//! Workers never write: when a response has been handed whole to the send queue (nginx logs
//! when the last byte is written to the socket), [`HttpApp`](super::HttpApp) copies what the
//! line needs into a fixed-size [`Record`] (byte fields inline, truncated) of its own pool,
//! allocated when the worker starts, and passes the record's box to the logger through a
//! bounded lock-free queue (crossbeam's `ArrayQueue`); the logger hands it back through a
//! second one. With no box back yet the record is dropped and counted
//! (`access_log_dropped`); the datapath never blocks, locks or allocates for the log. One
//! logger thread (on a core the workers do not use, when there is one) drains every
//! queue, formats, and writes through a `BufWriter`, flushed when the queues run dry and at
//! least once a second. [`AccessLogReopen::reopen`] (SIGHUP in `synack serve`) makes it
//! reopen the file by name, as logrotate's `postrotate` expects.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as WallInstant};

use crossbeam::queue::ArrayQueue;

use super::handler::Request;
use super::request::Version;
use super::response::imf_fixdate;
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

/// Records each worker's queue holds by default (`--access-log-queue`).
pub const DEFAULT_QUEUE: u64 = 4096;

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

/// One access log line's worth of facts, fixed size (about 900 bytes): what a worker hands
/// to the logger thread. Fields longer than their room are cut (and marked with `...`).
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

/// A worker's pair of queues: records go to the logger in `full` and come back, written, in
/// `free`. Only boxes move through them (a pointer each), never the 900 bytes of a record:
/// the worker writes the bytes a request uses into a record it owns and the logger reads
/// just those, so a line costs a few cache lines between the two cores, not fifteen.
struct Queues {
    full: ArrayQueue<Box<Record>>,
    free: ArrayQueue<Box<Record>>,
}

/// One worker's side of the access log: its queues, the record being filled for the current
/// request, and the records of responses still being sent. Owned by the worker's `HttpApp`.
pub(crate) struct LogState {
    queues: Arc<Queues>,
    /// The request being answered (its fields set by `begin`); a box of the worker's pool.
    pub(crate) current: Box<Record>,
    parked: Vec<Record>,
    free: Vec<u32>,
    /// Records that did not fit in the queue.
    pub(crate) dropped: u64,
}

impl LogState {
    pub(crate) fn new(sink: AccessLogSink) -> LogState {
        LogState {
            current: sink
                .queues
                .free
                .pop()
                .unwrap_or_else(|| Box::new(Record::EMPTY)),
            queues: sink.queues,
            parked: vec![Record::EMPTY; PARKED],
            free: (0..PARKED as u32).rev().collect(),
            dropped: 0,
        }
    }

    /// Takes the request line and the logged header fields of `req` (or none: a request
    /// refused before it was understood).
    pub(crate) fn begin(&mut self, req: Option<&Request<'_>>) {
        let r = &mut self.current;
        r.referer.set(b"");
        r.agent.set(b"");
        let Some(req) = req else {
            r.method.set(b"");
            r.target.set(b"");
            r.version = None;
            return;
        };
        r.method.set(req.method().as_str().as_bytes());
        r.target.set(req.target().as_bytes());
        r.version = Some(req.version());
        let (mut referer, mut agent) = (false, false);
        for (name, value) in req.headers() {
            if !referer && name.eq_ignore_ascii_case("referer") {
                r.referer.set(value);
                referer = true;
            } else if !agent && name.eq_ignore_ascii_case("user-agent") {
                r.agent.set(value);
                agent = true;
            }
            if referer && agent {
                break;
            }
        }
    }

    /// The response to the current request is decided: its status, and `base`, the count of
    /// the connection's bytes handed to the send queue at which its body starts.
    pub(crate) fn respond(&mut self, peer: SocketAddr, status: u16, base: u64) {
        let r = &mut self.current;
        r.peer = peer;
        r.status = status;
        r.body_bytes = base;
    }

    /// The current response is complete: its record goes to the queue.
    pub(crate) fn complete_current(
        &mut self,
        started: Instant,
        now: Instant,
        sent: u64,
        wall: u64,
    ) {
        finish(&mut self.current, started, now, sent, wall);
        // The filled box goes to the logger and a written one takes its place; with none
        // back yet (the logger is behind by the whole pool) the record is dropped, counted,
        // and its box filled again by the next request.
        match self.queues.free.pop() {
            Some(next) => {
                let full = std::mem::replace(&mut self.current, next);
                if let Err(back) = self.queues.full.push(full) {
                    self.dropped += 1;
                    let _ = self.queues.free.push(back);
                }
            }
            None => self.dropped += 1,
        }
    }

    /// The current response waits for room: its record is parked until [`complete`]
    /// (`Self::complete`). Returns the slot, or [`NO_SLOT`] if the slab is full (then the
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

    /// The parked response of `slot` is complete (or its connection ended): its record goes
    /// to the queue and the slot is free again.
    pub(crate) fn complete(&mut self, slot: u32, now: Instant, sent: u64, wall: u64) {
        let Some(r) = self.parked.get_mut(slot as usize) else {
            return;
        };
        let started = Instant::from_micros(r.request_us);
        finish(r, started, now, sent, wall);
        match self.queues.free.pop() {
            Some(mut b) => {
                *b = *r;
                if let Err(back) = self.queues.full.push(b) {
                    self.dropped += 1;
                    let _ = self.queues.free.push(back);
                }
            }
            None => self.dropped += 1,
        }
        self.free.push(slot);
    }
}

fn finish(r: &mut Record, started: Instant, now: Instant, sent: u64, wall: u64) {
    r.body_bytes = sent.saturating_sub(r.body_bytes);
    r.request_us = now.as_micros().saturating_sub(started.as_micros());
    r.unix_secs = wall;
}

/// One worker's queue into the access log ([`AccessLog::sink`]); give it to that worker's
/// [`HttpApp::with_access_log`](super::HttpApp::with_access_log).
pub struct AccessLogSink {
    queues: Arc<Queues>,
}

/// What the logger thread and the handles share.
struct Shared {
    queues: Mutex<Vec<Arc<Queues>>>,
    reopen: AtomicBool,
    stop: AtomicBool,
    capacity: usize,
    /// A core the logger thread should move to (`usize::MAX`: none asked for).
    pin: AtomicUsize,
}

/// The access log: the file, the logger thread that writes it, and the workers' queues.
/// Start it before the server, give each worker a [`sink`](Self::sink), and
/// [`finish`](Self::finish) it after the server has stopped (it writes what is left).
pub struct AccessLog {
    shared: Arc<Shared>,
    thread: JoinHandle<io::Result<()>>,
}

/// Makes the logger thread reopen the access log file by its name (after logrotate moved
/// it). Cheap to clone; [`reopen`](Self::reopen) only sets a flag the thread looks at
/// within a few milliseconds.
#[derive(Clone)]
pub struct AccessLogReopen {
    shared: Arc<Shared>,
}

impl AccessLogReopen {
    /// Asks the logger thread to flush, close and reopen the file (created if missing, else
    /// appended to). If that fails the thread logs why and keeps writing to the old file.
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Release);
    }
}

fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl AccessLog {
    /// Opens (creates or appends to) `path` and starts the logger thread. Each worker's queue
    /// holds `queue_capacity` records (at least 1).
    pub fn open(
        path: &Path,
        format: AccessLogFormat,
        queue_capacity: u64,
    ) -> io::Result<AccessLog> {
        let file = open_file(path)?;
        let shared = Arc::new(Shared {
            queues: Mutex::new(Vec::new()),
            reopen: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            capacity: usize::try_from(queue_capacity).unwrap_or(usize::MAX).max(1),
            pin: AtomicUsize::new(usize::MAX),
        });
        let path = path.to_path_buf();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("synack-access-log".into())
            .spawn(move || {
                let r = writer_loop(&s, &path, file, format);
                if let Err(e) = &r {
                    // The queues fill up from now on: records are dropped and counted.
                    log::error!(
                        "synack: cannot write the access log {}: {e}; no more lines are written",
                        path.display()
                    );
                }
                r
            })?;
        Ok(AccessLog { shared, thread })
    }

    /// A new queue for one worker. Call it once per worker, off the datapath (in the
    /// server's factory, say): the queue is allocated here.
    pub fn sink(&self) -> AccessLogSink {
        // One box is the worker's current record; the others circulate.
        let n = self.shared.capacity + 1;
        let queues = Arc::new(Queues {
            full: ArrayQueue::new(n),
            free: ArrayQueue::new(n),
        });
        for _ in 0..n {
            let _ = queues.free.push(Box::new(Record::EMPTY));
        }
        self.shared
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(queues.clone());
        AccessLogSink { queues }
    }

    /// Runs the logger thread on `core` from now on: one the workers do not use, so that
    /// formatting and writing the log never takes time from a worker (`synack serve` gives it
    /// the first core not in `--cores`, when there is one).
    pub fn run_on_core(&self, core: usize) {
        self.shared.pin.store(core, Ordering::Release);
    }

    /// A handle that makes the logger reopen the file (for a signal thread).
    pub fn reopener(&self) -> AccessLogReopen {
        AccessLogReopen {
            shared: self.shared.clone(),
        }
    }

    /// Writes every record still queued, flushes, and stops the logger thread. Call it once
    /// the workers have stopped.
    pub fn finish(self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| io::Error::other("the access log thread panicked"))?
    }
}

/// The logger thread: drains the queues, formats, writes; flushes when the queues are empty
/// and at least every second; reopens on request; drains once more and ends on stop.
fn writer_loop(
    shared: &Shared,
    path: &Path,
    file: File,
    format: AccessLogFormat,
) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    let mut line = Vec::with_capacity(2048);
    let mut clock = TimeText::default();
    let mut last_flush = WallInstant::now();
    let mut dirty = false;
    loop {
        // Read before draining: the workers had stopped when it was set, so this drain
        // sees everything they pushed.
        let stopping = shared.stop.load(Ordering::Acquire);
        let core = shared.pin.swap(usize::MAX, Ordering::AcqRel);
        if core != usize::MAX && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
        {
            log::warn!("synack: the access log thread could not move to core {core}");
        }
        if shared.reopen.swap(false, Ordering::AcqRel) {
            out.flush()?;
            match open_file(path) {
                Ok(f) => out = BufWriter::with_capacity(64 * 1024, f),
                Err(e) => log::error!(
                    "synack: cannot reopen access log {}: {e}; still writing to the old file",
                    path.display()
                ),
            }
        }
        let mut n = 0usize;
        {
            let queues = shared.queues.lock().unwrap_or_else(|e| e.into_inner());
            for q in queues.iter() {
                while let Some(r) = q.full.pop() {
                    line.clear();
                    match format {
                        AccessLogFormat::Combined => combined(&mut line, &r, &mut clock),
                        AccessLogFormat::Json => json(&mut line, &r, &mut clock),
                    }
                    let _ = q.free.push(r);
                    out.write_all(&line)?;
                    n += 1;
                }
            }
        }
        dirty |= n > 0;
        if dirty && (n == 0 || last_flush.elapsed() >= Duration::from_secs(1)) {
            out.flush()?;
            dirty = false;
            last_flush = WallInstant::now();
        }
        if stopping && n == 0 {
            return out.flush();
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The last second formatted, both ways (most records of a busy second share it).
#[derive(Default)]
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
    /// The text of `ip`, formatted once per change of address.
    fn peer(&mut self, ip: std::net::IpAddr) -> &[u8] {
        if self.peer != Some(ip) {
            self.peer = Some(ip);
            self.peer_text.clear();
            match ip {
                // Many clients take turns (close mode, many sources): four `decimal`s
                // rather than `Display`'s formatting machinery.
                std::net::IpAddr::V4(v4) => {
                    for (i, o) in v4.octets().into_iter().enumerate() {
                        if i > 0 {
                            self.peer_text.push(b'.');
                        }
                        decimal(&mut self.peer_text, o as u64);
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

/// Appends `n` in decimal (what `write!` does, without its formatting machinery: two fields
/// of every line).
fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `b` as nginx escapes logged values: `"`, `\`, control bytes and bytes from 0x7F
/// on as `\xHH`.
fn escape_nginx(out: &mut Vec<u8>, b: &[u8]) {
    for &c in b {
        if c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c) {
            let _ = write!(out, "\\x{c:02X}");
        } else {
            out.push(c);
        }
    }
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

fn seconds(out: &mut Vec<u8>, us: u64) {
    let _ = write!(out, "{}.{:03}", us / 1_000_000, us / 1000 % 1000);
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
    decimal(out, r.status as u64);
    out.push(b' ');
    decimal(out, r.body_bytes);
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
    let _ = write!(
        out,
        "\",\"remote_addr\":\"{}\",\"remote_port\":{}",
        r.peer.ip(),
        r.peer.port()
    );
    field_json(out, "request_method", &r.method);
    field_json(out, "request_uri", &r.target);
    out.extend_from_slice(b",\"server_protocol\":\"");
    out.extend_from_slice(version_text(r.version));
    let _ = write!(
        out,
        "\",\"status\":{},\"body_bytes_sent\":{}",
        r.status, r.body_bytes
    );
    field_json(out, "http_referer", &r.referer);
    field_json(out, "http_user_agent", &r.agent);
    out.extend_from_slice(b",\"request_time\":");
    seconds(out, r.request_us);
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

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
            decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        let mut t = TimeText::default();
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

    #[test]
    fn records_circulate_and_those_without_a_box_are_counted() {
        // A pool of three boxes: the current record and two in flight.
        let queues = Arc::new(Queues {
            full: ArrayQueue::new(3),
            free: ArrayQueue::new(3),
        });
        for _ in 0..3 {
            assert!(queues.free.push(Box::new(Record::EMPTY)).is_ok());
        }
        let mut st = LogState::new(AccessLogSink {
            queues: queues.clone(),
        });
        let t0 = Instant::from_micros(1_000);
        let peer: SocketAddr = "198.18.0.2:40000".parse().unwrap();
        for status in [200, 201, 202, 203] {
            st.begin(None);
            st.respond(peer, status, 0);
            st.complete_current(t0, t0, 10, 1);
        }
        // Two went to the logger; the logger returned none, so the other two were dropped.
        assert_eq!((queues.full.len(), st.dropped), (2, 2));
        let first = queues.full.pop().unwrap();
        assert_eq!((first.status, first.body_bytes), (200, 10));
        assert!(queues.free.push(first).is_ok());
        st.begin(None);
        st.respond(peer, 204, 0);
        st.complete_current(t0, t0, 0, 1);
        assert_eq!(st.dropped, 2);
        let statuses: Vec<u16> = std::iter::from_fn(|| queues.full.pop())
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, [201, 204]);
    }

    #[test]
    fn combined_line_escapes_as_nginx() {
        let mut out = Vec::new();
        combined(&mut out, &record(), &mut TimeText::default());
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
        combined(&mut out, &r, &mut TimeText::default());
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("] \"-\" 408 5 "), "{s}");
    }

    #[test]
    fn json_line() {
        let mut r = record();
        r.agent.set(b"a\"b \xff \xc3\xa9");
        let mut out = Vec::new();
        json(&mut out, &r, &mut TimeText::default());
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
