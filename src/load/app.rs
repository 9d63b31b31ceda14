//! The load generator's application: one per worker, on the library's runtime like any other
//! [`App`]. It opens its share of the connections in [`App::on_poll`], sends requests, reads
//! and checks the responses, and records each latency.
//!
//! Closed loop (no `--rate`): a connection sends `pipeline` requests and one more each time a
//! response ends; a request's latency runs from its send. Open loop (`--rate`): request `j` of
//! the worker is due at `start + j / rate`, due requests go round-robin over the connections,
//! and a request's latency runs from when it was due, not from when it could be sent, so a
//! server that stalls is charged for the requests it held back (coordinated omission
//! corrected, as wrk2 does). In close mode a request is a connection: opened when due (or
//! when a slot is free), latency from the SYN (or from when it was due) to the response's end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crossbeam::channel::Sender;
use hdrhistogram::Histogram;

use super::response::{Bad, Done, ResponseParser};
use crate::tcp::app::{App, AppIo, CloseReason, ConnId, ConnInfo, Opener};
use crate::time::Instant;

/// Requests one connection may have in flight at most (`--pipeline`).
pub(crate) const MAX_PIPELINE: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    KeepAlive,
    Close,
}

/// What every worker's generator does (the worker's share of connections and rate is
/// computed from it by [`LoadApp::new`]).
pub(crate) struct LoadPlan {
    pub remote: SocketAddr,
    /// One request, complete.
    pub request: Bytes,
    /// The method is HEAD: responses have no body.
    pub head: bool,
    pub mode: Mode,
    pub pipeline: usize,
    pub connections: usize,
    /// Requests (keepalive) or connections (close) per second, all workers together.
    pub rate: Option<f64>,
    pub duration: Duration,
    /// A request without its response after this long is a timeout.
    pub timeout: Duration,
    /// Every body must have this length and CRC-32.
    pub expect_body: Option<(u64, u32)>,
    pub workers: usize,
    /// The engine's table size (ids are below it).
    pub max_conns: usize,
}

/// The counters of one worker (summed over workers for the report).
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts {
    pub requests_sent: u64,
    /// Responses completed within the run.
    pub responses: u64,
    pub status_2xx_3xx: u64,
    pub non_2xx_3xx: u64,
    pub bytes_read: u64,
    pub connects: u64,
    pub established: u64,
    /// Connections that ended normally (close mode: requests done).
    pub completed: u64,
    pub connect_refused: u64,
    pub connect_timeouts: u64,
    /// connect() found no port or table room.
    pub connect_no_room: u64,
    /// Reset by the peer while a request was outstanding.
    pub resets: u64,
    /// The peer closed while a request was outstanding.
    pub closed_pending: u64,
    pub bad_responses: u64,
    /// Bodies whose length or CRC differed from --expect-body.
    pub bad_bodies: u64,
    pub timeouts: u64,
    pub first_bad: Option<&'static str>,
}

/// What a worker hands back when its run ends.
pub(crate) struct WorkerResult {
    pub counts: Counts,
    /// Request latency, microseconds.
    pub latency: Histogram<u64>,
    /// Requests per second of this worker, sampled every 100 ms (wrk's Req/Sec).
    pub rates: Histogram<u64>,
}

/// One connection's state.
pub(crate) struct Session {
    /// The connection's place in the round-robin of an open-loop run.
    index: usize,
    parser: ResponseParser,
    /// Start times of the requests in flight, oldest first (a ring).
    starts: [Instant; MAX_PIPELINE],
    first: usize,
    inflight: usize,
}

impl Session {
    fn push(&mut self, at: Instant) {
        let i = (self.first + self.inflight) % MAX_PIPELINE;
        self.starts[i] = at;
        self.inflight += 1;
    }
    fn pop(&mut self) -> Option<Instant> {
        if self.inflight == 0 {
            return None;
        }
        let at = self.starts[self.first];
        self.first = (self.first + 1) % MAX_PIPELINE;
        self.inflight -= 1;
        Some(at)
    }
    fn oldest(&self) -> Option<Instant> {
        (self.inflight > 0).then(|| self.starts[self.first])
    }
}

pub(crate) struct LoadApp {
    plan: Arc<LoadPlan>,
    results: Sender<WorkerResult>,
    /// This worker's connections and rate.
    conns: usize,
    /// Microseconds between due requests of this worker (open loop).
    interval_us: Option<f64>,
    start: Option<Instant>,
    end: Instant,
    /// Connections open or opening.
    open: usize,
    /// Per connection index: its id while it is established (open loop).
    ids: Vec<Option<ConnId>>,
    /// Per connection index: requests started on it (open loop: request m of index k is the
    /// worker's request k + m * conns).
    started: Vec<u64>,
    /// Indexes without a connection, to give to the next one opened.
    free_index: Vec<usize>,
    /// Per table slot: when the connection was opened (close mode latency) and its index.
    opened_at: Vec<(Instant, u32)>,
    /// Open loop: the next request (keepalive) or connection (close) due, by number.
    next_due: u64,
    counts: Counts,
    latency: Histogram<u64>,
    rates: Histogram<u64>,
    window_start: Instant,
    window_count: u64,
    finished: bool,
}

impl LoadApp {
    pub(crate) fn new(plan: Arc<LoadPlan>, worker: usize, results: Sender<WorkerResult>) -> Self {
        let n = plan.workers.max(1);
        let conns = plan.connections / n + usize::from(worker < plan.connections % n);
        let interval_us = plan.rate.map(|r| 1e6 / (r / n as f64).max(1e-3));
        LoadApp {
            conns,
            interval_us,
            start: None,
            end: Instant::NEVER,
            open: 0,
            ids: vec![None; conns],
            started: vec![0; conns],
            free_index: (0..conns).rev().collect(),
            opened_at: vec![(Instant::ZERO, 0); plan.max_conns],
            next_due: 0,
            counts: Counts::default(),
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds"),
            rates: Histogram::new_with_bounds(1, 100_000_000, 3).expect("histogram bounds"),
            window_start: Instant::ZERO,
            window_count: 0,
            finished: false,
            plan,
            results,
        }
    }

    fn running(&self, now: Instant) -> bool {
        now < self.end
    }

    /// When request or connection `j` of this worker is due (open loop).
    fn due(&self, j: u64) -> Option<Instant> {
        let start = self.start?;
        self.interval_us
            .map(|us| start + Duration::from_micros((j as f64 * us) as u64))
    }

    fn note_bad(&mut self, why: &'static str) {
        self.counts.bad_responses += 1;
        self.counts.first_bad.get_or_insert(why);
    }

    fn record(&mut self, now: Instant, start: Instant, done: &Done) {
        if !self.running(now) {
            return;
        }
        self.counts.responses += 1;
        self.window_count += 1;
        if (200..400).contains(&done.status) {
            self.counts.status_2xx_3xx += 1;
        } else {
            self.counts.non_2xx_3xx += 1;
        }
        if let Some((len, crc)) = self.plan.expect_body
            && (done.body_len != len || done.crc != Some(crc))
        {
            self.counts.bad_bodies += 1;
        }
        let us = now.saturating_since(start).as_micros() as u64;
        self.latency.saturating_record(us.max(1));
    }

    /// Sends what the connection may send now; returns whether it sent anything.
    fn send_requests(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        if !self.running(now) {
            return;
        }
        let plan = &self.plan;
        let want = match plan.mode {
            Mode::Close => usize::from(s.inflight == 0 && self.started[s.index] == 0),
            Mode::KeepAlive => plan.pipeline - s.inflight,
        };
        for _ in 0..want {
            let start = match self.interval_us {
                None => now,
                Some(_) if plan.mode == Mode::Close => self.opened_at[io.id().slot as usize].0,
                Some(_) => {
                    // Request m of index k is the worker's request k + m * conns.
                    let j = s.index as u64 + self.started[s.index] * self.conns as u64;
                    match self.due(j) {
                        Some(t) if t <= now => t,
                        _ => break,
                    }
                }
            };
            if io.send_room() < plan.request.len() {
                io.writable_below(0);
                break;
            }
            io.send(&plan.request);
            if plan.mode == Mode::Close && self.interval_us.is_none() {
                // A request is a connection: timed from the SYN.
                s.push(self.opened_at[io.id().slot as usize].0);
            } else {
                s.push(start);
            }
            self.started[s.index] += 1;
            self.counts.requests_sent += 1;
        }
        self.arm(s, io);
    }

    /// The request timeout of the oldest request in flight.
    fn arm(&self, s: &Session, io: &mut AppIo<'_>) {
        io.set_deadline(s.oldest().map(|t| t + self.plan.timeout));
    }

    fn read(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        loop {
            let data = io.data();
            if data.is_empty() {
                break;
            }
            match s.parser.feed(data) {
                Ok((used, done)) => {
                    if self.running(now) {
                        self.counts.bytes_read += used as u64;
                    }
                    io.consume(used);
                    if let Some(d) = done {
                        match s.pop() {
                            Some(start) => self.record(now, start, &d),
                            None => {
                                self.note_bad("a response nobody asked for");
                                io.abort();
                                return;
                            }
                        }
                        if d.close || self.plan.mode == Mode::Close {
                            // No more requests on this connection: the server closes it
                            // (close mode asked it to), we close our side once it has.
                            if io.peer_closed() {
                                io.close();
                            }
                            continue;
                        }
                    } else if used == 0 {
                        break;
                    }
                }
                Err(why) => {
                    self.note_bad(why.as_str());
                    io.abort();
                    return;
                }
            }
        }
        if io.peer_closed() {
            match s.parser.at_eof() {
                Ok(Some(d)) => {
                    if let Some(start) = s.pop() {
                        self.record(now, start, &d);
                    }
                }
                Ok(None) => {}
                Err(Bad::Truncated) if s.inflight > 0 => {
                    // Counted in on_close as closed with requests pending.
                }
                Err(why) => self.note_bad(why.as_str()),
            }
            io.close();
            return;
        }
        if self.plan.mode == Mode::KeepAlive {
            self.send_requests(s, io, now);
        } else {
            self.arm(s, io);
        }
    }

    fn sample_rate(&mut self, now: Instant) {
        if now.saturating_since(self.window_start) >= Duration::from_millis(100) {
            if self.running(now) && self.window_start != Instant::ZERO {
                let secs = now.saturating_since(self.window_start).as_secs_f64();
                self.rates
                    .saturating_record(((self.window_count as f64 / secs) as u64).max(1));
            }
            self.window_start = now;
            self.window_count = 0;
        }
    }
}

impl App for LoadApp {
    type Session = Session;
    type Message = ();

    fn on_poll(&mut self, opener: &mut Opener<'_>, now: Instant) {
        let start = *self.start.get_or_insert(now);
        if self.end == Instant::NEVER {
            self.end = start + self.plan.duration;
            self.window_start = now;
        }
        if !self.running(now) {
            return;
        }
        self.sample_rate(now);
        match (self.plan.mode, self.interval_us) {
            (Mode::KeepAlive, Some(_)) => {
                // Wake the connections whose next request came due.
                while let Some(t) = self.due(self.next_due)
                    && t <= now
                {
                    let k = (self.next_due % self.conns.max(1) as u64) as usize;
                    if let Some(Some(id)) = self.ids.get(k) {
                        opener.wake(*id);
                    }
                    self.next_due += 1;
                }
            }
            (Mode::Close, Some(_)) => {
                // Open the connections that came due, as far as slots allow; the ones held
                // back keep their due time.
                while self.open < self.conns
                    && let Some(t) = self.due(self.next_due)
                    && t <= now
                {
                    if !self.connect(opener, t) {
                        break;
                    }
                    self.next_due += 1;
                }
                return;
            }
            _ => {}
        }
        while self.open < self.conns {
            if !self.connect(opener, now) {
                break;
            }
        }
    }

    fn on_open(&mut self, conn: &ConnInfo, now: Instant) -> Option<Session> {
        self.counts.established += 1;
        let index = self.opened_at[conn.id().slot as usize].1 as usize;
        if self.plan.mode == Mode::KeepAlive {
            self.ids[index] = Some(conn.id());
        }
        let _ = now;
        Some(Session {
            index,
            parser: ResponseParser::new(self.plan.head, self.plan.expect_body.is_some()),
            starts: [Instant::ZERO; MAX_PIPELINE],
            first: 0,
            inflight: 0,
        })
    }

    fn on_readable(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        if s.inflight == 0 && !s.parser.in_response() && io.data().is_empty() && !io.peer_closed() {
            // Just opened: the first requests.
            self.send_requests(s, io, now);
            return;
        }
        self.read(s, io, now);
    }

    fn on_writable(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        if self.plan.mode == Mode::KeepAlive {
            self.send_requests(s, io, now);
        }
    }

    fn on_wake(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        if self.plan.mode == Mode::KeepAlive && !io.peer_closed() {
            self.send_requests(s, io, now);
        }
    }

    fn on_deadline(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        if s.inflight > 0 {
            if self.running(now) {
                self.counts.timeouts += 1;
            }
            s.inflight = 0;
            io.abort();
        } else if io.peer_closed() {
            io.close();
        }
    }

    fn on_close(&mut self, s: Session, reason: CloseReason, now: Instant) {
        self.open -= 1;
        self.free_index.push(s.index);
        if let Some(slot) = self.ids.get_mut(s.index) {
            *slot = None;
        }
        if !self.running(now) {
            return;
        }
        match reason {
            CloseReason::Normal if s.inflight == 0 => self.counts.completed += 1,
            CloseReason::Normal => self.counts.closed_pending += 1,
            CloseReason::Reset if s.inflight > 0 => self.counts.resets += 1,
            CloseReason::Reset => {
                // A RST after the last response (a server that resets instead of closing):
                // not an error, as xgen counts it.
                self.counts.completed += 1;
            }
            CloseReason::TimedOut => self.counts.timeouts += 1,
            CloseReason::Aborted => {}
        }
    }

    fn on_connect_failed(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        self.open -= 1;
        let index = self.opened_at[id.slot as usize].1 as usize;
        self.free_index.push(index);
        if !self.running(now) {
            return;
        }
        match reason {
            CloseReason::Reset => self.counts.connect_refused += 1,
            CloseReason::TimedOut => self.counts.connect_timeouts += 1,
            _ => {}
        }
    }

    fn requests(&self) -> u64 {
        self.counts.responses
    }
}

impl LoadApp {
    /// Opens one connection, due at `due`; false when none could be opened now.
    fn connect(&mut self, opener: &mut Opener<'_>, due: Instant) -> bool {
        let Some(index) = self.free_index.pop() else {
            return false;
        };
        match opener.connect(self.plan.remote) {
            Ok(id) => {
                self.open += 1;
                self.counts.connects += 1;
                if let Some(slot) = self.opened_at.get_mut(id.slot as usize) {
                    *slot = (due, index as u32);
                }
                if self.plan.mode == Mode::Close {
                    self.started[index] = 0;
                }
                true
            }
            Err(_) => {
                self.free_index.push(index);
                self.counts.connect_no_room += 1;
                false
            }
        }
    }
}

impl Drop for LoadApp {
    /// The worker is done: hand the results to the runner.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let _ = self.results.send(WorkerResult {
            counts: std::mem::take(&mut self.counts),
            latency: self.latency.clone(),
            rates: self.rates.clone(),
        });
    }
}
