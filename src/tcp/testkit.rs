//! Test support shared by unit tests, scripted exchanges, the simulator and benchmarks:
//! a sink that keeps segments, owned segments, and a small configurable application.
//! Nothing here runs in the server's datapath.

use bytes::Bytes;

use super::app::{App, AppIo, CloseReason, ConnId, ConnInfo};
use super::segment::{PayloadSource, SegmentSink};
use crate::time::Instant;
use crate::wire::segment::{FourTuple, LinkAddr, SegmentIn, SegmentOut};
use crate::wire::seq::SeqNumber;
use crate::wire::tcp::{TcpFlags, TcpOptions};

/// A segment with its payload copied out.
#[derive(Clone, Debug)]
pub struct OwnedSegment {
    pub header: SegmentOut,
    pub payload: Vec<u8>,
}

impl OwnedSegment {
    pub fn flags(&self) -> TcpFlags {
        self.header.flags
    }
    pub fn seq(&self) -> SeqNumber {
        self.header.seq
    }
    pub fn ack(&self) -> SeqNumber {
        self.header.ack
    }
}

/// Keeps every emitted segment. `room` limits how many it takes (a full transmit ring):
/// `None` is unlimited, `Some(n)` takes `n` more; each emit uses one.
#[derive(Default)]
pub struct CollectSink {
    pub segments: Vec<OwnedSegment>,
    pub room: Option<usize>,
}

impl CollectSink {
    pub fn take(&mut self) -> Vec<OwnedSegment> {
        std::mem::take(&mut self.segments)
    }

    /// A sink that takes `n` segments, then has no room until `room` is raised.
    pub fn with_room(n: usize) -> Self {
        CollectSink {
            segments: Vec::new(),
            room: Some(n),
        }
    }
}

impl SegmentSink for CollectSink {
    fn room(&mut self) -> usize {
        self.room.unwrap_or(usize::MAX)
    }

    fn emit(&mut self, seg: &SegmentOut, payload: &dyn PayloadSource) {
        match &mut self.room {
            Some(0) => panic!("emit without room: {seg:?}"),
            Some(n) => *n -= 1,
            None => {}
        }
        let mut p = vec![0u8; payload.len()];
        payload.copy_to(&mut p);
        self.segments.push(OwnedSegment {
            header: *seg,
            payload: p,
        });
    }
}

/// The link-layer address of the peer in segments built by [`segment`].
pub const PEER_LINK: LinkAddr = [0x02, 0, 0, 0, 0, 0x02];

/// Builds a segment as a client would send it.
pub fn segment<'a>(
    tuple: FourTuple,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    options: TcpOptions,
    payload: &'a [u8],
) -> SegmentIn<'a> {
    SegmentIn {
        tuple,
        link: PEER_LINK,
        seq: SeqNumber::new(seq),
        ack: SeqNumber::new(ack),
        flags,
        window,
        options,
        payload,
    }
}

/// How [`TestApp`] answers.
#[derive(Clone, Debug)]
pub struct TestAppConfig {
    /// A request ends with this byte; each complete request is answered with `response`.
    pub request_end: u8,
    pub response: Bytes,
    /// Close our side after answering (like `Connection: close`).
    pub close_after_response: bool,
    /// Do not read: leave bytes in the receive buffer (to fill the window).
    pub stall_reading: bool,
    /// A request containing `!` is answered and then the connection closed.
    pub close_on_bang: bool,
}

impl Default for TestAppConfig {
    fn default() -> Self {
        TestAppConfig {
            request_end: b'\n',
            response: Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            close_after_response: false,
            stall_reading: false,
            close_on_bang: false,
        }
    }
}

#[derive(Default, Debug)]
pub struct TestSession {
    pub received: Vec<u8>,
    pub requests: usize,
    pub deadlines: usize,
    /// The application will close once its pending response is queued.
    pub close_pending: bool,
}

/// A request/response application for tests: answers each `request_end`-terminated request.
#[derive(Default)]
pub struct TestApp {
    pub cfg: TestAppConfig,
    pub opened: usize,
    /// Of `opened`, the connections we opened (`ConnInfo::outgoing`).
    pub outgoing: usize,
    /// Active opens that failed before their handshake completed.
    pub connect_failed: Vec<(ConnId, CloseReason)>,
    pub closed: Vec<(FourTuple, CloseReason, usize)>,
    pub tuples: Vec<FourTuple>,
    /// Bytes received by connections that have closed, in close order.
    pub finished: Vec<Vec<u8>>,
}

impl TestApp {
    pub fn new(cfg: TestAppConfig) -> Self {
        TestApp {
            cfg,
            ..TestApp::default()
        }
    }
}

pub struct TestAppSession {
    pub tuple: FourTuple,
    pub state: TestSession,
    /// Response bytes the send queue has not taken yet (its limit), sent on `on_writable`.
    pending: std::collections::VecDeque<Bytes>,
}

impl TestAppSession {
    fn flush(&mut self, io: &mut AppIo<'_>) {
        while let Some(b) = self.pending.front_mut() {
            io.send_bytes(b);
            if !b.is_empty() {
                return;
            }
            self.pending.pop_front();
        }
    }
}

impl App for TestApp {
    type Session = TestAppSession;
    type Message = ();

    fn on_open(&mut self, conn: &ConnInfo, _now: Instant) -> Option<TestAppSession> {
        self.opened += 1;
        self.outgoing += usize::from(conn.outgoing());
        let tuple = conn.tuple();
        self.tuples.push(tuple);
        Some(TestAppSession {
            tuple,
            state: TestSession::default(),
            pending: Default::default(),
        })
    }

    fn on_writable(&mut self, s: &mut TestAppSession, io: &mut AppIo<'_>, _now: Instant) {
        s.flush(io);
        if s.pending.is_empty() && s.state.close_pending {
            io.close();
        }
    }

    fn on_readable(&mut self, s: &mut TestAppSession, io: &mut AppIo<'_>, now: Instant) {
        if self.cfg.stall_reading {
            return;
        }
        let data = io.data();
        let n = data.len();
        let ends = data.iter().filter(|&&b| b == self.cfg.request_end).count();
        let bang = self.cfg.close_on_bang && data.contains(&b'!');
        s.state.received.extend_from_slice(data);
        io.consume(n);
        for _ in 0..ends {
            s.state.requests += 1;
            s.pending.push_back(self.cfg.response.clone());
            s.flush(io);
            io.time_until_sent(now);
        }
        if (ends > 0 && (self.cfg.close_after_response || bang)) || io.peer_closed() {
            if s.pending.is_empty() {
                io.close();
            } else {
                s.state.close_pending = true;
            }
        }
    }

    fn on_deadline(&mut self, s: &mut TestAppSession, _io: &mut AppIo<'_>, _now: Instant) {
        s.state.deadlines += 1;
    }

    fn on_close(&mut self, s: TestAppSession, reason: CloseReason, _now: Instant) {
        self.closed.push((s.tuple, reason, s.state.requests));
        self.finished.push(s.state.received);
    }

    fn on_connect_failed(&mut self, id: ConnId, reason: CloseReason, _now: Instant) {
        self.connect_failed.push((id, reason));
    }
}
