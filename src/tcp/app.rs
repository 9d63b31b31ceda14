//! The interface between a connection and the application above it (the HTTP responder).
//!
//! Call order, per connection: `on_open` once when the handshake completes; then
//! `on_readable` whenever new in-order bytes arrive or the peer closes its side (and once more
//! when the send queue has drained below the mark set with `AppIo::resume_when_sent_below`,
//! which an application uses to stop reading while its responses pile up); `on_deadline`
//! when the deadline the application asked for passes; `on_close` exactly once when the
//! connection is gone, however it ended. The application acts only through [`AppIo`].

use bytes::Bytes;

use super::buffer::{RecvBuf, SendBuf};
use super::segment::FourTuple;
use crate::time::Instant;

/// Why a connection ended, as the application sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Both sides closed and everything sent was acknowledged.
    Normal,
    /// The peer sent an acceptable RST.
    Reset,
    /// Retransmissions ran out, or a zero window never opened.
    TimedOut,
    /// The application aborted it (`AppIo::abort`), or the server is shutting down.
    Aborted,
}

pub trait App {
    /// Per-connection state of the application.
    type Session;

    /// The three-way handshake completed.
    fn on_open(&mut self, tuple: &FourTuple, now: Instant) -> Self::Session;
    /// New in-order bytes are readable, or the peer has closed (`io.peer_closed()`).
    fn on_readable(&mut self, session: &mut Self::Session, io: &mut AppIo<'_>, now: Instant);
    /// The deadline set with `io.set_deadline` has passed.
    fn on_deadline(&mut self, session: &mut Self::Session, io: &mut AppIo<'_>, now: Instant);
    /// The connection is gone. Called once, also after an abort.
    fn on_close(&mut self, session: Self::Session, reason: CloseReason, now: Instant);
}

/// What the application may do to its connection during a callback.
pub struct AppIo<'a> {
    pub(crate) recv: &'a mut RecvBuf,
    pub(crate) send: &'a mut SendBuf,
    pub(crate) peer_closed: bool,
    pub(crate) close_requested: bool,
    pub(crate) abort_requested: bool,
    pub(crate) deadline: Option<Instant>,
    pub(crate) sent_any: bool,
    /// A latency marker: (stream offset of the last byte queued so far, start time).
    pub(crate) marker: Option<(u64, Instant)>,
    /// When the peer last acknowledged new data (see [`AppIo::send_progress`]).
    pub(crate) send_progress: Instant,
    /// Call `on_readable` again once the send queue holds at most this many bytes.
    pub(crate) resume_below: Option<usize>,
}

impl<'a> AppIo<'a> {
    pub(crate) fn new(
        recv: &'a mut RecvBuf,
        send: &'a mut SendBuf,
        peer_closed: bool,
        deadline: Option<Instant>,
    ) -> Self {
        AppIo {
            recv,
            send,
            peer_closed,
            close_requested: false,
            abort_requested: false,
            deadline,
            sent_any: false,
            marker: None,
            send_progress: Instant::ZERO,
            resume_below: None,
        }
    }

    /// In-order bytes received and not yet consumed.
    pub fn data(&self) -> &[u8] {
        self.recv.readable()
    }
    /// Marks `n` bytes as used; the receive window opens by as much.
    pub fn consume(&mut self, n: usize) {
        self.recv.consume(n)
    }
    /// The peer sent FIN: no more bytes will come after `data()`.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }
    /// Queues bytes to send. A `Bytes` of static or shared content is not copied.
    pub fn send(&mut self, bytes: Bytes) {
        self.sent_any |= !bytes.is_empty();
        self.send.push(bytes)
    }
    /// Bytes queued and not yet acknowledged by the peer.
    pub fn send_queued(&self) -> usize {
        self.send.len()
    }
    /// When the peer last acknowledged new bytes (or the connection opened, if it has not
    /// yet): how an application tells a slow reader from one that makes no progress at all.
    pub fn send_progress(&self) -> Instant {
        self.send_progress
    }
    /// Chunks queued (one per `send` of a non-empty `Bytes`): the queue's own cost, which
    /// matters when many small responses wait.
    pub fn send_queued_chunks(&self) -> usize {
        self.send.chunks()
    }
    /// Back-pressure: the application leaves bytes in `data()` unread because its send queue
    /// is long, and asks for `on_readable` again once the queue holds at most `bytes` (the
    /// peer acknowledged the rest), even if nothing new arrived. The request lasts until it
    /// fires or the next `on_readable`, which may make it again. Meanwhile unread bytes fill
    /// the receive buffer, so the window closes and the peer stops sending.
    pub fn resume_when_sent_below(&mut self, bytes: usize) {
        self.resume_below = Some(bytes);
    }
    /// Send FIN after everything queued (a graceful close).
    pub fn close(&mut self) {
        self.close_requested = true;
    }
    /// Measures service time: when the last byte queued so far is handed to the transmit ring,
    /// the time since `start` is recorded (the worker's request-service histogram).
    pub fn time_until_sent(&mut self, start: Instant) {
        self.marker = Some((self.send.pushed(), start));
    }

    /// Reset the connection now, dropping what is queued.
    pub fn abort(&mut self) {
        self.abort_requested = true;
    }
    /// Asks for `on_deadline` at `at` (replacing any earlier request); `None` cancels.
    pub fn set_deadline(&mut self, at: Option<Instant>) {
        self.deadline = at;
    }
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}
