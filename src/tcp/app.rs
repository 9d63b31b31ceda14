//! The interface between the TCP engine and the application above it: what a service built on
//! synack implements ([`App`]) and what it may do to a connection ([`AppIo`]).
//!
//! Call order, per connection: [`App::on_open`] once when the handshake completes (returning
//! `None` refuses the connection: it is reset); then [`App::on_readable`] whenever new in-order
//! bytes arrive or the peer closes its side; [`App::on_writable`] when room opens in the send
//! queue after a `send` took less than it was offered (or below the mark set with
//! [`AppIo::writable_below`]); [`App::on_deadline`] when the deadline the application asked
//! for passes; [`App::on_wake`] after someone called `wake` with the connection's [`ConnId`];
//! [`App::on_close`] exactly once when a connection that was opened is gone, however it ended.
//! Outside any connection, [`App::on_message`] receives what other workers sent. Every callback
//! runs on the worker that owns the connection: no locks, no other thread.

use std::net::SocketAddr;

use bytes::Bytes;

use super::buffer::{RecvBuf, SendBuf};
use crate::time::Instant;
use crate::wire::segment::FourTuple;

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

/// One of an application's own metrics, as [`App::counters`] reports it: a sample of a family
/// that means one thing, exposed as `synack_<name>_total` (a counter) or `synack_<name>` (a
/// gauge) with the worker's label, and printed in the final statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppMetric {
    /// The family's name without the `synack_` prefix and the `_total` suffix, in
    /// `snake_case`, its unit last where it has one: `http_responses`, `http_response_bytes`.
    /// Prefix it with the application's name (`kv_items`): synack's own families (`requests`,
    /// `connections`, `drops`, ... listed in the README) are not to be named again.
    pub name: &'static str,
    /// One line saying what the family counts (the same for all its samples).
    pub help: &'static str,
    /// The label that tells the family's samples apart, if it has several:
    /// `("class", "2xx")`.
    pub label: Option<(&'static str, &'static str)>,
    /// A counter (monotonic) or a gauge (a level that goes up and down).
    pub kind: MetricKind,
    pub value: u64,
}

/// Whether an [`AppMetric`] only grows or goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic since the server started.
    Counter,
    /// A current level (items held, bytes used).
    Gauge,
}

impl AppMetric {
    /// A counter without a label.
    pub const fn counter(name: &'static str, help: &'static str, value: u64) -> Self {
        AppMetric {
            name,
            help,
            label: None,
            kind: MetricKind::Counter,
            value,
        }
    }
    /// A gauge without a label.
    pub const fn gauge(name: &'static str, help: &'static str, value: u64) -> Self {
        AppMetric {
            kind: MetricKind::Gauge,
            ..Self::counter(name, help, value)
        }
    }
    /// The same sample with the label `key="value"`.
    pub const fn with_label(self, key: &'static str, value: &'static str) -> Self {
        AppMetric {
            label: Some((key, value)),
            ..self
        }
    }
}

/// A connection's name on its worker, valid for as long as the connection lives: keep it to
/// reach the connection later ([`AppIo::wake`], [`Wakeups::wake`]). Once the connection is
/// gone its id never names another one (the slot's generation changes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// Who is on the other end of a new connection, for [`App::on_open`].
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    id: ConnId,
    tuple: FourTuple,
    outgoing: bool,
}

impl ConnInfo {
    pub(crate) fn new(id: ConnId, tuple: FourTuple, outgoing: bool) -> Self {
        ConnInfo {
            id,
            tuple,
            outgoing,
        }
    }
    /// Whether we opened the connection ([`Opener::connect`]) rather than accepted it.
    pub fn outgoing(&self) -> bool {
        self.outgoing
    }
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn tuple(&self) -> FourTuple {
        self.tuple
    }
    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }
    /// The other end's address and port (the client's, for a connection we accepted).
    pub fn peer(&self) -> SocketAddr {
        self.tuple.remote()
    }
    /// Our address and port (the one the client connected to, for a connection we accepted).
    pub fn local(&self) -> SocketAddr {
        self.tuple.local()
    }
}

/// A service on the bypass path: one value per worker (made by the factory given to
/// [`Server::run`](crate::Server::run)), never shared between threads, so its state is per core.
pub trait App {
    /// Per-connection state of the application.
    type Session;
    /// What other workers may send this one ([`Mailbox`](crate::Mailbox)); `()` if unused.
    type Message: Send + 'static;

    /// The three-way handshake completed (of a connection a client opened, or of one we
    /// opened: [`ConnInfo::outgoing`]). Return the connection's state, or `None` to refuse
    /// it (per-source limits, allow lists): the connection is reset, counted as
    /// `tcp/refused`, and `on_close` is not called for it. The application may send at once:
    /// [`App::on_readable`] follows with nothing to read yet.
    fn on_open(&mut self, conn: &ConnInfo, now: Instant) -> Option<Self::Session>;
    /// New in-order bytes are readable (`io.data()`), or the peer has closed
    /// (`io.peer_closed()`).
    fn on_readable(&mut self, session: &mut Self::Session, io: &mut AppIo<'_>, now: Instant);
    /// Room opened in the send queue: a `send` took less than it was offered and the peer
    /// has since acknowledged enough, or the queue fell to the mark set with
    /// [`AppIo::writable_below`].
    fn on_writable(&mut self, session: &mut Self::Session, io: &mut AppIo<'_>, now: Instant) {
        let _ = (session, io, now);
    }
    /// The deadline set with `io.set_deadline` has passed.
    fn on_deadline(&mut self, session: &mut Self::Session, io: &mut AppIo<'_>, now: Instant) {
        let _ = (session, io, now);
    }
    /// Someone woke this connection ([`AppIo::wake`], [`Wakeups::wake`]): the application acts
    /// on it outside the other callbacks, e.g. after a message from another worker.
    fn on_wake(&mut self, session: &mut Self::Session, io: &mut AppIo<'_>, now: Instant) {
        let _ = (session, io, now);
    }
    /// A message from another worker. Wake the connections it concerns with `wakeups`.
    fn on_message(&mut self, msg: Self::Message, wakeups: &mut Wakeups<'_>, now: Instant) {
        let _ = (msg, wakeups, now);
    }
    /// The connection is gone. Called once for every connection `on_open` accepted, also
    /// after an abort.
    fn on_close(&mut self, session: Self::Session, reason: CloseReason, now: Instant);

    /// Once per loop iteration, before the timers run: the place to open connections
    /// ([`Opener::connect`]) and to wake connections on a schedule of the application's own.
    /// The default does nothing; a server never needs it.
    fn on_poll(&mut self, opener: &mut Opener<'_>, now: Instant) {
        let _ = (opener, now);
    }
    /// A connection opened with [`Opener::connect`] ended before its handshake completed:
    /// [`CloseReason::Reset`] (the peer refused it: a RST that acknowledged our SYN),
    /// [`CloseReason::TimedOut`] (no answer to the SYN and its retransmissions), or
    /// [`CloseReason::Aborted`] (the runtime is stopping). `on_open` and `on_close` are not
    /// called for it.
    fn on_connect_failed(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        let _ = (id, reason, now);
    }

    /// The wall clock, in seconds since the Unix epoch: given before any traffic and then
    /// about every 64 loop iterations (the engine's `now` is monotonic and has no date). An
    /// HTTP server formats its `Date` header from it.
    fn on_wall_clock(&mut self, unix_secs: u64) {
        let _ = unix_secs;
    }
    /// Requests served so far: the live statistics show their rate, the metrics
    /// `synack_requests_total`. 0 where the notion does not apply.
    fn requests(&self) -> u64 {
        0
    }
    /// The application's own counters and gauges, for the statistics and the metrics (read
    /// once a second, off the fast path). Samples of one family come together, with the
    /// same help and kind, each with its own label value.
    fn counters(&self) -> Vec<AppMetric> {
        Vec::new()
    }
}

/// Connections to call [`App::on_wake`] for, each at most once per round, in the order woken.
/// Bounded by the connection table: waking never allocates.
pub(crate) struct WakeQueue {
    queued: Vec<bool>,
    list: std::collections::VecDeque<ConnId>,
}

impl WakeQueue {
    pub(crate) fn new(max_conns: usize) -> Self {
        WakeQueue {
            queued: vec![false; max_conns],
            list: std::collections::VecDeque::with_capacity(max_conns),
        }
    }
    pub(crate) fn push(&mut self, id: ConnId) {
        if let Some(q) = self.queued.get_mut(id.slot as usize)
            && !*q
        {
            *q = true;
            self.list.push_back(id);
        }
    }
    pub(crate) fn pop(&mut self) -> Option<ConnId> {
        let id = self.list.pop_front()?;
        self.queued[id.slot as usize] = false;
        Some(id)
    }
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}

/// Why [`Opener::connect`] could not start a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// No local address of the remote's family (or the address given is not one of ours).
    NoLocalAddress,
    /// Every ephemeral port of every local address is in use toward this remote address and
    /// port (by connections, or by TIME-WAIT records that may not be reused yet).
    NoFreePort,
    /// The connection table is full.
    TableFull,
    /// The runtime is stopping.
    ShuttingDown,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectError::NoLocalAddress => "no local address of the remote's family",
            ConnectError::NoFreePort => "no free ephemeral port toward this remote",
            ConnectError::TableFull => "the connection table is full",
            ConnectError::ShuttingDown => "shutting down",
        })
    }
}

impl std::error::Error for ConnectError {}

/// What [`Opener`] asks of the engine (implemented by the engine over its own fields).
pub(crate) trait Connector {
    fn connect(
        &mut self,
        local: Option<crate::wire::IpAddress>,
        remote: SocketAddr,
    ) -> Result<ConnId, ConnectError>;
    fn connections(&self) -> usize;
    fn wake(&mut self, id: ConnId);
}

/// Opens connections, in [`App::on_poll`].
pub struct Opener<'a> {
    pub(crate) inner: &'a mut dyn Connector,
}

impl Opener<'_> {
    /// Opens a connection to `remote` from the first of our addresses of its family with a
    /// free port (the source port chosen as RFC 6056 recommends, from the runtime's
    /// ephemeral range). The SYN (offering MSS, window scale, SACK and timestamps) leaves
    /// with this loop iteration's transmit batch, or as soon as there is transmit room; it
    /// is retransmitted after 1 s, then 2 s, 4 s... The id is the connection's:
    /// [`App::on_open`] later gets a [`ConnInfo`] with this id, or
    /// [`App::on_connect_failed`] is called with it.
    pub fn connect(&mut self, remote: SocketAddr) -> Result<ConnId, ConnectError> {
        self.inner.connect(None, remote)
    }
    /// As [`connect`](Self::connect), from `local` (one of our addresses).
    pub fn connect_from(
        &mut self,
        local: std::net::IpAddr,
        remote: SocketAddr,
    ) -> Result<ConnId, ConnectError> {
        self.inner.connect(Some(local.into()), remote)
    }
    /// Connections in the table now, opening, open or closing (to bound what one opens).
    pub fn connections(&self) -> usize {
        self.inner.connections()
    }
    /// Calls [`App::on_wake`] for `id` in this loop iteration (nothing if it is gone).
    pub fn wake(&mut self, id: ConnId) {
        self.inner.wake(id)
    }
}

/// Wakes connections from [`App::on_message`].
pub struct Wakeups<'a> {
    pub(crate) queue: &'a mut WakeQueue,
}

impl Wakeups<'_> {
    /// Calls [`App::on_wake`] for `id` soon, on this worker (in this loop iteration). Nothing
    /// happens if the connection is gone; several wakes before it runs make one call.
    pub fn wake(&mut self, id: ConnId) {
        self.queue.push(id)
    }
}

/// What the application may do to its connection during a callback.
pub struct AppIo<'a> {
    pub(crate) recv: &'a mut RecvBuf,
    pub(crate) send: &'a mut SendBuf,
    pub(crate) id: ConnId,
    pub(crate) peer_closed: bool,
    pub(crate) close_requested: bool,
    pub(crate) abort_requested: bool,
    pub(crate) deadline: Option<Instant>,
    /// The most bytes the send queue may hold ([`TcpConfig::send_buffer`]).
    ///
    /// [`TcpConfig::send_buffer`]: super::config::TcpConfig::send_buffer
    pub(crate) send_limit: usize,
    /// A latency marker: (stream offset of the last byte queued so far, start time).
    pub(crate) marker: Option<(u64, Instant)>,
    /// When the peer last acknowledged new data (see [`AppIo::send_progress`]).
    pub(crate) send_progress: Instant,
    /// Call `on_writable` once the send queue holds at most this many bytes.
    pub(crate) writable_below: Option<usize>,
    pub(crate) wakes: &'a mut WakeQueue,
}

impl<'a> AppIo<'a> {
    /// An `AppIo` over bare buffers, for the application's unit tests.
    #[cfg(test)]
    pub(crate) fn new(
        recv: &'a mut RecvBuf,
        send: &'a mut SendBuf,
        peer_closed: bool,
        deadline: Option<Instant>,
        wakes: &'a mut WakeQueue,
    ) -> Self {
        AppIo {
            recv,
            send,
            id: ConnId {
                slot: 0,
                generation: 0,
            },
            peer_closed,
            close_requested: false,
            abort_requested: false,
            deadline,
            send_limit: super::config::TcpConfig::default().send_buffer,
            marker: None,
            send_progress: Instant::ZERO,
            writable_below: None,
            wakes,
        }
    }

    /// In-order bytes received and not yet consumed.
    pub fn data(&self) -> &[u8] {
        self.recv.readable()
    }
    /// Marks `n` bytes of `data()` as used; the receive window opens by as much. Bytes left
    /// unconsumed stay (and keep the window shut by as much): that is how an application
    /// that cannot keep up slows its peer down.
    pub fn consume(&mut self, n: usize) {
        self.recv.consume(n)
    }
    /// The peer sent FIN: no more bytes will come after `data()`.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }
    /// This connection's id, to reach it later with `wake`.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Bytes the send queue takes now: the per-connection send limit less what is queued.
    pub fn send_room(&self) -> usize {
        self.send_limit.saturating_sub(self.send.len())
    }
    /// Copies as much of `data` as the send queue takes ([`send_room`](Self::send_room)) and
    /// returns how much that was. If it was not all, [`App::on_writable`] follows once the
    /// peer has acknowledged half of the queue.
    pub fn send(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.send_room());
        if n > 0 {
            self.send.push(Bytes::copy_from_slice(&data[..n]));
        }
        self.note_partial(n, data.len());
        n
    }
    /// As [`send`](Self::send), without copying: takes what fits from the front of `data`
    /// (a `Bytes` of static or shared content is never copied) and leaves the rest in it.
    pub fn send_bytes(&mut self, data: &mut Bytes) -> usize {
        let offered = data.len();
        let n = offered.min(self.send_room());
        if n == offered {
            self.send.push(std::mem::take(data));
        } else if n > 0 {
            self.send.push(data.split_to(n));
        }
        self.note_partial(n, offered);
        n
    }
    fn note_partial(&mut self, took: usize, offered: usize) {
        if took < offered {
            let mark = self.send_limit / 2;
            self.writable_below = Some(self.writable_below.map_or(mark, |m| m.max(mark)));
        }
    }
    /// Bytes queued and not yet acknowledged by the peer.
    pub fn send_queued(&self) -> usize {
        self.send.len()
    }
    /// Chunks queued (one per `send` call that took bytes): the queue's own cost, which
    /// matters when many small responses wait.
    pub fn send_queued_chunks(&self) -> usize {
        self.send.chunks()
    }
    /// When the peer last acknowledged new bytes (or the connection opened, if it has not
    /// yet): how an application tells a slow reader from one that makes no progress at all.
    pub fn send_progress(&self) -> Instant {
        self.send_progress
    }
    /// Asks for [`App::on_writable`] once the send queue holds at most `bytes` (the peer
    /// acknowledged the rest). An application that leaves requests unread while its answers
    /// pile up uses it to resume; meanwhile the unread bytes close the window and the peer
    /// stops sending. The request lasts until it fires.
    pub fn writable_below(&mut self, bytes: usize) {
        self.writable_below = Some(bytes);
    }
    /// Sends FIN after everything queued (a graceful close). Bytes that arrive later are
    /// acknowledged and discarded.
    pub fn close(&mut self) {
        self.close_requested = true;
    }
    /// Resets the connection now, dropping what is queued.
    pub fn abort(&mut self) {
        self.abort_requested = true;
    }
    /// Asks for `on_deadline` at `at` (replacing any earlier request); `None` cancels.
    pub fn set_deadline(&mut self, at: Option<Instant>) {
        self.deadline = at;
    }
    /// The deadline asked for, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
    /// Calls [`App::on_wake`] for another connection of this worker (or this one) soon.
    pub fn wake(&mut self, id: ConnId) {
        self.wakes.push(id)
    }
    /// Measures service time: when the last byte queued so far is handed to the transmit ring,
    /// the time since `start` is recorded (the worker's request-service histogram).
    pub fn time_until_sent(&mut self, start: Instant) {
        self.marker = Some((self.send.pushed(), start));
    }
}
