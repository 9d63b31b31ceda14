//! The engine of one worker: a connection table, the listening port(s), TIME-WAIT records,
//! SYN cookies and the timer wheel. Sans-IO: segments and time in, segments and application
//! callbacks out.
//!
//! Call order: once per loop iteration, when connections wait for transmit room
//! (`tx_waiting() > 0`) and the sink has room again, `on_tx_room(now, sink)`; for every
//! received segment `on_segment(now, seg, sink)`; then `on_tick(now, sink)`;
//! `next_deadline()` says when the next timer is due.
//!
//! Transmit backpressure: every send asks the sink for room before it changes any state. A
//! connection that finds none keeps what it wanted to send (data stays unsent, an ACK stays
//! pending, a timer stays due) and joins a FIFO of waiting connections, preallocated for the
//! table's capacity; `on_tx_room` resumes them in order. Stateless answers (RST to no
//! connection, cookie SYN/ACK, TIME-WAIT ACK) are dropped and counted instead
//! (`TcpDrop::NoTxRoom`): the peer retransmits.
//!
//! RFC 9293 3.10.7.1 (no connection) and 3.10.7.2 (LISTEN) are here; the states after the
//! SYN are in `conn.rs`; TIME-WAIT (with RFC 6191's reuse rule, as Linux) is here because a
//! TIME-WAIT connection is only a record.

use std::collections::VecDeque;
use std::time::Duration;

use super::app::{App, ConnId, ConnectError, Connector, Opener, WakeQueue, Wakeups};
use super::buffer::{RecvBuf, RecvMemory, SendBuf};
use super::config::TcpConfig;
use super::conn::{Conn, Ctx, Next, PmtuVerdict, SynOptions, initial_window};
use super::counters::{TcpCounters, TcpDrop};
use super::isn::IsnGenerator;
use super::ports::PortAllocator;
use super::segment::{EMPTY, SegmentSink};
use super::state::State;
use super::syncookie::SynCookies;
use super::table::ConnTable;
use super::time_wait::{TimeWaitRecord, TimeWaitTable};
use super::timer::TimerWheel;
use crate::time::Instant;
use crate::wire::segment::{FourTuple, IpAddress, LinkAddr, SegmentIn, SegmentOut};
use crate::wire::seq::SeqNumber;
use crate::wire::tcp::{TcpFlags, TcpOptions};

/// The allocation a pooled receive buffer keeps.
const POOLED_RECV_ALLOC: usize = 2048;

/// When SYN cookies answer SYNs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynCookieMode {
    /// Only when the SYN queue or the table is full (Linux's default, tcp_syncookies=1).
    OnOverflow,
    /// For every SYN (tcp_syncookies=2); for tests.
    Always,
    /// Never: SYNs beyond the queue are dropped.
    Never,
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub tcp: TcpConfig,
    /// The addresses we serve (either family; a few at most: checked linearly).
    pub local_ips: Vec<IpAddress>,
    pub ports: Vec<u16>,
    /// Connection table capacity (SYN-RECEIVED to LAST-ACK).
    pub max_conns: usize,
    /// Half-open connections kept before SYN cookies take over.
    pub syn_backlog: usize,
    pub syn_cookies: SynCookieMode,
    /// TIME-WAIT records kept (Linux's tcp_max_tw_buckets).
    pub time_wait_capacity: usize,
    /// Secret keys: ISNs (RFC 6528), cookies, and the tables' hash. Drawn from the OS's RNG by
    /// [`EngineConfig::random_secret`] (also in `default()`), so no build of synack has
    /// predictable ISNs or cookies; tests that need to replay a run set a fixed one.
    pub secret: [u8; 48],
    /// Free buffers kept for reuse.
    pub buffer_pool: usize,
    /// Receive memory of this worker, in bytes (Linux's `tcp_mem` idea): what the receive
    /// buffers of all connections (in-order and out-of-order bytes) and the pool have
    /// allocated. At the limit new out-of-order data is dropped, windows stop growing, and a
    /// connection takes in-order data only up to `recv_floor`.
    pub mem_limit: usize,
    /// In-order bytes each connection may hold even when `mem_limit` is reached, so that it
    /// can still receive a request (Linux's `tcp_rmem[0]`).
    pub recv_floor: usize,
    /// Where the segments of connections we open go (the remote's MAC, or its gateway's):
    /// the runtime resolves it. Accepted connections answer the MAC their segments came from.
    pub next_hop: LinkAddr,
    /// The source ports of connections we open, inclusive (Linux's ip_local_port_range:
    /// 32768-60999); several workers get disjoint parts.
    pub ephemeral_ports: (u16, u16),
    /// A connection we open may reuse the 4-tuple of a TIME-WAIT record of ours when that
    /// connection had timestamps and is at least a second old (Linux's tcp_tw_reuse = 1):
    /// our newer timestamps tell its segments from the old ones (RFC 6191, RFC 7323 5).
    pub time_wait_reuse: bool,
}

impl EngineConfig {
    /// The default receive memory of a worker: 4 MiB. What it bounds is data received and
    /// not yet read (plus out-of-order data), which a server that reads what arrives keeps
    /// near zero; a client that pipelines requests it never reads the answers to, or leaves
    /// holes at the window's far edge, is what fills it. 4 MiB holds sixteen full 256 KiB
    /// windows of out-of-order data at once; beyond it every connection still takes
    /// `recv_floor` bytes in order, so none stalls. Services that take large uploads on many
    /// connections at once raise it (`--mem-limit`), as one raises Linux's `tcp_mem`.
    pub const DEFAULT_MEM_LIMIT: usize = 4 << 20;
}

impl EngineConfig {
    /// A fresh secret from the OS's random source (getrandom(2)). The only OS call in `tcp`: it
    /// is made when a configuration is built, never on the datapath.
    pub fn random_secret() -> Result<[u8; 48], getrandom::Error> {
        let mut s = [0u8; 48];
        getrandom::fill(&mut s)?;
        Ok(s)
    }
}

impl Default for EngineConfig {
    /// Defaults with a secret drawn from the OS.
    ///
    /// # Panics
    /// If the OS has no random source to give (getrandom(2) and /dev/urandom both fail); a
    /// caller that wants that as an error uses [`EngineConfig::random_secret`].
    fn default() -> Self {
        EngineConfig {
            tcp: TcpConfig::default(),
            local_ips: vec![IpAddress::v4(u32::from_be_bytes([198, 18, 0, 1]))],
            ports: vec![8080],
            max_conns: 65536,
            syn_backlog: 4096,
            syn_cookies: SynCookieMode::OnOverflow,
            time_wait_capacity: 262144,
            secret: Self::random_secret().expect("the OS gave no random bytes for the secret"),
            buffer_pool: 1024,
            mem_limit: EngineConfig::DEFAULT_MEM_LIMIT,
            recv_floor: 2048,
            next_hop: [0; 6],
            ephemeral_ports: (32768, 60999),
            time_wait_reuse: true,
        }
    }
}

/// Latency samples the engine leaves for the worker's histograms (microseconds).
#[derive(Default, Debug)]
pub struct EngineEvents {
    /// SYN received to final ACK received.
    pub handshake_us: Vec<u64>,
    /// SYN received to the connection's end (CLOSED or TIME-WAIT).
    pub lifetime_us: Vec<u64>,
    /// Request complete to the last response byte handed to the transmit ring.
    pub request_us: Vec<u64>,
    /// Tuples that entered / left the table, when flow tracking is on (several workers).
    pub opened: Vec<FourTuple>,
    pub closed: Vec<FourTuple>,
}

impl EngineEvents {
    const LIMIT: usize = 1 << 16;

    fn push(v: &mut Vec<u64>, d: Duration) {
        if v.len() < Self::LIMIT {
            v.push(d.as_micros() as u64);
        }
    }
}

pub struct Engine<A: App> {
    cfg: EngineConfig,
    app: A,
    table: ConnTable<Conn<A::Session>>,
    timers: TimerWheel,
    time_wait: TimeWaitTable,
    isn: IsnGenerator,
    ports: PortAllocator,
    cookies: SynCookies,
    counters: TcpCounters,
    half_open: usize,
    last_cookie_sent: Option<Instant>,
    recv_pool: Vec<RecvBuf>,
    send_pool: Vec<SendBuf>,
    recv_mem: RecvMemory,
    fired: Vec<(u32, u32)>,
    /// Connections waiting for transmit room, oldest first: (slot, generation). Its capacity
    /// is the table's, so it never grows on the datapath (see `queue_for_tx`).
    tx_waiting: VecDeque<(u32, u32)>,
    /// Connections to call `App::on_wake` for.
    wakes: WakeQueue,
    accepting: bool,
    track_flows: bool,
    pub events: EngineEvents,
}

/// Builds the context a connection handler needs from the engine's disjoint fields.
macro_rules! ctx {
    ($self:ident, $now:expr, $sink:expr) => {
        Ctx {
            now: $now,
            cfg: &$self.cfg.tcp,
            app: &mut $self.app,
            sink: $sink,
            counters: &mut $self.counters,
            service_us: &mut $self.events.request_us,
            mem: &mut $self.recv_mem,
            wakes: &mut $self.wakes,
        }
    };
}

/// What became of an ACK that may complete a SYN cookie handshake.
enum CookieAck {
    /// The cookie checked out and the connection is in the table.
    Accepted,
    /// Not a cookie of ours (forged, stale, or a segment of a connection we no longer have).
    Invalid,
    /// A good cookie, but the connection table has no room.
    TableFull,
    /// A good cookie, but the server takes no new connections.
    ShuttingDown,
}

/// A record's answer to a segment, from Linux's tcp_timewait_state_process.
enum TimeWaitVerdict {
    Done,
    /// A new SYN may reuse the 4-tuple (RFC 6191), with this ISN.
    NewSyn(SeqNumber),
}

/// A 16-byte key derived from the secret under a label (SipHash-1-3, 128-bit, keyed by the
/// secret's first two thirds).
fn derive_key(secret: &[u8; 48], label: &[u8]) -> [u8; 16] {
    use siphasher::sip128::{Hasher128, SipHasher13};
    let mut key = [0u8; 16];
    for (i, b) in secret[..32].iter().enumerate() {
        key[i % 16] ^= b.rotate_left(i as u32 / 16);
    }
    let mut h = SipHasher13::new_with_key(&key);
    std::hash::Hasher::write(&mut h, label);
    h.finish128().as_bytes()
}

fn key16(secret: &[u8; 48], i: usize) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(&secret[i * 16..i * 16 + 16]);
    k
}

impl<A: App> Engine<A> {
    pub fn new(cfg: EngineConfig, app: A) -> Self {
        let table_key = key16(&cfg.secret, 2);
        Engine {
            table: ConnTable::new(cfg.max_conns, table_key),
            timers: TimerWheel::new(Instant::ZERO),
            time_wait: TimeWaitTable::new(cfg.time_wait_capacity, table_key),
            isn: IsnGenerator::new(key16(&cfg.secret, 0)),
            // Keys of their own, derived from the ISN and cookie keys (RFC 6056 wants F and
            // G keyed independently of anything a peer sees).
            ports: PortAllocator::new(
                derive_key(&cfg.secret, b"synack/ports/F"),
                derive_key(&cfg.secret, b"synack/ports/G"),
            ),
            cookies: SynCookies::new(key16(&cfg.secret, 1)),
            counters: TcpCounters::default(),
            half_open: 0,
            last_cookie_sent: None,
            recv_pool: Vec::new(),
            send_pool: Vec::new(),
            recv_mem: RecvMemory::new(cfg.mem_limit, cfg.recv_floor),
            fired: Vec::new(),
            tx_waiting: VecDeque::with_capacity(cfg.max_conns),
            wakes: WakeQueue::new(cfg.max_conns),
            accepting: true,
            track_flows: false,
            events: EngineEvents::default(),
            cfg,
            app,
        }
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }
    pub fn app(&self) -> &A {
        &self.app
    }
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }
    pub fn counters(&self) -> &TcpCounters {
        &self.counters
    }
    /// Connections in the table (SYN-RECEIVED to LAST-ACK).
    pub fn connections(&self) -> usize {
        self.table.len()
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn time_wait_len(&self) -> usize {
        self.time_wait.len()
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn half_open(&self) -> usize {
        self.half_open
    }
    /// The connection with this tuple, for tests and diagnostics.
    #[cfg(any(test, feature = "internals"))]
    pub fn connection(&self, tuple: &FourTuple) -> Option<&Conn<A::Session>> {
        self.table.find(tuple).and_then(|s| self.table.get(s))
    }
    /// The TIME-WAIT record of a tuple, if any.
    #[cfg(any(test, feature = "internals"))]
    pub fn time_wait_record(&mut self, tuple: &FourTuple) -> Option<TimeWaitRecord> {
        self.time_wait.find_mut(tuple).map(|r| *r)
    }
    /// Connections per state, indexed by `State as usize` (TIME-WAIT from its records).
    pub fn state_counts(&self) -> [usize; State::ALL.len()] {
        let mut counts = [0usize; State::ALL.len()];
        for (_, _, c) in self.table.iter() {
            counts[c.state() as usize] += 1;
        }
        counts[State::TimeWait as usize] = self.time_wait.len();
        counts[State::Listen as usize] = self.cfg.ports.len();
        counts
    }
    /// The receive memory: bytes allocated by receive buffers (connections and pool), the
    /// limit and the peak.
    #[cfg(any(test, feature = "internals"))]
    pub fn recv_memory(&self) -> &RecvMemory {
        &self.recv_mem
    }
    /// Buffered bytes held by connections and pools (for leak checks).
    #[cfg(any(test, feature = "internals"))]
    pub fn buffered_bytes(&self) -> usize {
        self.table
            .iter()
            .map(|(_, _, c)| c.send_queued() + c.recv_queued())
            .sum()
    }

    /// Reports tuples entering and leaving the table in `events.opened` / `events.closed`
    /// (for the flow directory of a multi-queue server).
    pub fn set_track_flows(&mut self, on: bool) {
        self.track_flows = on;
    }

    /// Whether this engine has state for `tuple` (a connection or a TIME-WAIT record).
    pub fn knows(&self, tuple: &FourTuple) -> bool {
        self.table.find(tuple).is_some() || self.time_wait.find(tuple).is_some()
    }

    fn serves(&self, tuple: &FourTuple) -> bool {
        self.cfg.ports.contains(&tuple.local_port) && self.cfg.local_ips.contains(&tuple.local_ip)
    }

    /// Handles one received segment.
    pub fn on_segment<K: SegmentSink>(&mut self, now: Instant, seg: &SegmentIn<'_>, sink: &mut K) {
        self.counters.segments_in += 1;
        if let Some(slot) = self.table.find(&seg.tuple) {
            self.on_conn_segment(now, slot, seg, sink);
            return;
        }
        if !self.serves(&seg.tuple) {
            // The TIME-WAIT of a connection we opened (its local port is no served port).
            if self.time_wait.find(&seg.tuple).is_some() {
                if let TimeWaitVerdict::NewSyn(_) = self.on_time_wait_segment(now, seg, sink) {
                    // A SYN to our ephemeral port: nobody listens there.
                    self.counters.drop(TcpDrop::NotOurPort);
                    self.reset_for_no_connection(seg, sink);
                }
                return;
            }
            self.counters.drop(TcpDrop::NotOurPort);
            self.reset_for_no_connection(seg, sink);
            return;
        }
        let mut isn = None;
        if self.time_wait.find_mut(&seg.tuple).is_some() {
            match self.on_time_wait_segment(now, seg, sink) {
                TimeWaitVerdict::Done => return,
                TimeWaitVerdict::NewSyn(i) => isn = Some(i),
            }
        }
        self.on_listen_segment(now, seg, sink, isn);
    }

    fn on_conn_segment<K: SegmentSink>(
        &mut self,
        now: Instant,
        slot: u32,
        seg: &SegmentIn<'_>,
        sink: &mut K,
    ) {
        let Some(conn) = self.table.get_mut(slot) else {
            return;
        };
        let before = conn.state();
        let mut cx = ctx!(self, now, sink);
        let next = conn.on_segment(seg, &mut cx);
        self.after_event(now, slot, before, next);
    }

    /// Tells a connection just inserted at `slot` its id.
    fn set_id(&mut self, slot: u32) {
        let generation = self.table.generation(slot);
        if let Some(conn) = self.table.get_mut(slot) {
            conn.id = ConnId { slot, generation };
        }
    }

    /// Calls `App::on_wake` for the connections woken so far (and those the calls wake, up to
    /// one round per connection in the table): each sends what its application queued.
    fn run_wakes<K: SegmentSink>(&mut self, now: Instant, sink: &mut K) {
        let mut budget = self.wakes.len().max(self.table.len());
        while budget > 0 {
            budget -= 1;
            let Some(id) = self.wakes.pop() else {
                break;
            };
            if self.table.generation(id.slot) != id.generation {
                continue; // gone meanwhile
            }
            let Some(conn) = self.table.get_mut(id.slot) else {
                continue;
            };
            let before = conn.state();
            let next = {
                let mut cx = ctx!(self, now, sink);
                conn.on_wake(&mut cx)
            };
            self.after_event(now, id.slot, before, next);
        }
    }

    /// An ICMP "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC 8201) that
    /// quotes a segment of ours: `tuple` is the connection as this host sees it (the quoted
    /// datagram's source is our end), `quoted_seq` the quoted TCP sequence number, `mtu` the
    /// MTU the router reported. See [`Conn::on_path_mtu`] for what is believed.
    pub fn on_packet_too_big<K: SegmentSink>(
        &mut self,
        now: Instant,
        tuple: &FourTuple,
        quoted_seq: SeqNumber,
        mtu: u32,
        sink: &mut K,
    ) {
        let Some(slot) = self.table.find(tuple) else {
            self.counters.pmtu_ignored += 1;
            return;
        };
        let Some(conn) = self.table.get_mut(slot) else {
            self.counters.pmtu_ignored += 1;
            return;
        };
        let before = conn.state();
        let verdict = {
            let mut cx = ctx!(self, now, sink);
            conn.on_path_mtu(&mut cx, quoted_seq, mtu)
        };
        if verdict == PmtuVerdict::Lowered {
            self.counters.pmtu_lowered += 1;
        } else {
            self.counters.pmtu_ignored += 1;
        }
        self.after_event(now, slot, before, Next::Keep);
    }

    /// A message from another worker for the application (`App::on_message`); the
    /// connections it wakes run at once.
    pub fn on_message<K: SegmentSink>(&mut self, now: Instant, msg: A::Message, sink: &mut K) {
        let mut wakeups = Wakeups {
            queue: &mut self.wakes,
        };
        self.app.on_message(msg, &mut wakeups, now);
        self.run_wakes(now, sink);
    }

    /// Applies a connection's verdict: reschedule, move to TIME-WAIT, or free.
    fn after_event(&mut self, now: Instant, slot: u32, before: State, next: Next) {
        let generation = self.table.generation(slot);
        let Some(conn) = self.table.get_mut(slot) else {
            return;
        };
        if before == State::SynReceived && conn.state() != State::SynReceived && !conn.is_active()
        {
            self.half_open -= 1;
            if let Some(at) = conn.established_at
                && !conn.from_cookie
            {
                EngineEvents::push(&mut self.events.handshake_us, at - conn.syn_at);
            }
        }
        match next {
            Next::Keep => {
                if conn.wants_tx() && !conn.tx_queued {
                    conn.tx_queued = true;
                    self.queue_for_tx(slot, generation);
                }
                let Some(conn) = self.table.get_mut(slot) else {
                    return;
                };
                let due = conn.next_deadline();
                if due != Instant::NEVER && (due < conn.scheduled || conn.scheduled <= now) {
                    conn.scheduled = due;
                    self.timers.schedule(slot, generation, due);
                }
            }
            Next::TimeWait => {
                let record = TimeWaitRecord {
                    snd_nxt: conn.snd_max(),
                    rcv_nxt: conn.rcv_nxt(),
                    ts_recent: conn.ts_enabled().then_some(conn.ts_recent()),
                    ts_offset: conn.ts_offset(),
                    window: conn.window_field(),
                    last_ack_ms: 0,
                };
                let tuple = conn.tuple;
                let expires = now + self.cfg.tcp.time_wait_len();
                self.free(now, slot);
                if !self.time_wait.insert(tuple, record, expires) {
                    // Linux: "time wait bucket table overflow": close without TIME-WAIT.
                    self.counters.time_wait_overflow += 1;
                }
            }
            Next::Remove(_) => self.free(now, slot),
        }
    }

    fn free(&mut self, now: Instant, slot: u32) {
        if let Some((tuple, conn)) = self.table.remove(slot) {
            if self.track_flows && self.events.closed.len() < EngineEvents::LIMIT {
                self.events.closed.push(tuple);
            }
            if conn.state() == State::SynReceived && !conn.is_active() {
                self.half_open -= 1;
            }
            EngineEvents::push(&mut self.events.lifetime_us, now - conn.syn_at);
            let (mut r, mut s) = conn.into_buffers();
            let allocated = r.allocated();
            if self.recv_pool.len() < self.cfg.buffer_pool {
                // A pooled buffer keeps a small allocation: enough for a request.
                r.shrink_to(POOLED_RECV_ALLOC);
                self.recv_mem.update(allocated, r.allocated());
                self.recv_pool.push(r);
            } else {
                self.recv_mem.update(allocated, 0);
            }
            if self.send_pool.len() < self.cfg.buffer_pool {
                s.clear();
                self.send_pool.push(s);
            }
        }
    }

    /// Appends a connection to the transmit-room queue. Each live connection is in it at most
    /// once (`Conn::tx_queued`), so when it is full only entries of freed connections can be
    /// dropped to make room: done in place, without allocating.
    fn queue_for_tx(&mut self, slot: u32, generation: u32) {
        if self.tx_waiting.len() == self.tx_waiting.capacity() {
            let table = &self.table;
            self.tx_waiting.retain(|&(s, g)| {
                table.generation(s) == g && table.get(s).is_some_and(|c| c.tx_queued)
            });
        }
        self.tx_waiting.push_back((slot, generation));
    }

    /// Connections waiting for transmit room.
    pub fn tx_waiting(&self) -> usize {
        self.tx_waiting.len()
    }

    /// Transmit room is back: resumes waiting connections, oldest first, while the sink has
    /// room. One that fills the sink again goes to the back of the queue.
    pub fn on_tx_room<K: SegmentSink>(&mut self, now: Instant, sink: &mut K) {
        let mut budget = self.tx_waiting.len();
        while budget > 0 && sink.room() > 0 {
            budget -= 1;
            let Some((slot, generation)) = self.tx_waiting.pop_front() else {
                break;
            };
            if self.table.generation(slot) != generation {
                continue; // freed meanwhile
            }
            let Some(conn) = self.table.get_mut(slot) else {
                continue;
            };
            if !conn.tx_queued {
                continue;
            }
            conn.tx_queued = false;
            let before = conn.state();
            let next = {
                let mut cx = ctx!(self, now, sink);
                conn.on_tx_room(&mut cx)
            };
            self.after_event(now, slot, before, next);
        }
    }

    fn note_opened(&mut self, tuple: FourTuple) {
        if self.track_flows && self.events.opened.len() < EngineEvents::LIMIT {
            self.events.opened.push(tuple);
        }
    }

    fn buffers(&mut self) -> (RecvBuf, SendBuf) {
        let r = self
            .recv_pool
            .pop()
            .unwrap_or_else(|| RecvBuf::new(self.cfg.tcp.recv_buffer));
        let s = self.send_pool.pop().unwrap_or_default();
        (r, s)
    }

    /// RFC 9293 3.10.7.1: a segment for no connection gets a RST (unless it is one).
    fn reset_for_no_connection<K: SegmentSink>(&mut self, seg: &SegmentIn<'_>, sink: &mut K) {
        if seg.flags.rst() {
            return;
        }
        if sink.room() == 0 {
            self.counters.drop(TcpDrop::NoTxRoom);
            return;
        }
        let out = if seg.flags.ack() {
            // <SEQ=SEG.ACK><CTL=RST>
            SegmentOut {
                tuple: seg.tuple,
                link: seg.link,
                seq: seg.ack,
                ack: SeqNumber::new(0),
                flags: TcpFlags::RST,
                window: 0,
                options: TcpOptions::default(),
            }
        } else {
            // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
            SegmentOut {
                tuple: seg.tuple,
                link: seg.link,
                seq: SeqNumber::new(0),
                ack: seg.seq + seg.seg_len(),
                flags: TcpFlags::RST | TcpFlags::ACK,
                window: 0,
                options: TcpOptions::default(),
            }
        };
        self.counters.segments_out += 1;
        self.counters.resets_sent += 1;
        sink.emit(&out, EMPTY);
    }

    /// RFC 9293 3.10.7.2: the LISTEN state. `isn` is set when a SYN reuses a TIME-WAIT tuple.
    fn on_listen_segment<K: SegmentSink>(
        &mut self,
        now: Instant,
        seg: &SegmentIn<'_>,
        sink: &mut K,
        isn: Option<SeqNumber>,
    ) {
        let f = seg.flags;
        if f.rst() {
            // First: an incoming RST is ignored.
            self.counters.drop(TcpDrop::Rst);
            return;
        }
        if f.ack() {
            // Second: an ACK is bad in LISTEN, unless it completes a SYN cookie handshake.
            if !f.syn() && self.cookies_recently_sent(now) {
                match self.try_cookie(now, seg, sink) {
                    CookieAck::Accepted => return,
                    // A good cookie and no room: dropped without a RST, as Linux does when
                    // its accept queue overflows (tcp_abort_on_overflow = 0), so that the
                    // client's retransmission may get in once there is room.
                    CookieAck::TableFull => {
                        self.counters.drop(TcpDrop::TableFull);
                        return;
                    }
                    // A good cookie while shutting down: refused like a SYN would be.
                    CookieAck::ShuttingDown => {
                        self.counters.drop(TcpDrop::ShuttingDown);
                        self.reset_for_no_connection(seg, sink);
                        return;
                    }
                    CookieAck::Invalid => self.counters.syn_cookies_failed += 1,
                }
            }
            self.counters.drop(TcpDrop::NoAck);
            self.reset_for_no_connection(seg, sink);
            return;
        }
        if !f.syn() {
            // Any other segment is dropped.
            self.counters.drop(TcpDrop::NoAck);
            return;
        }
        if f.fin() {
            // Linux drops SYN+FIN.
            self.counters.drop(TcpDrop::BadFlags);
            return;
        }
        self.counters.syns_received += 1;
        if !self.accepting {
            self.counters.drop(TcpDrop::ShuttingDown);
            self.reset_for_no_connection(seg, sink);
            return;
        }
        let overflow = self.half_open >= self.cfg.syn_backlog || self.table.is_full();
        let use_cookie = match self.cfg.syn_cookies {
            SynCookieMode::Always => true,
            SynCookieMode::OnOverflow => overflow,
            SynCookieMode::Never => false,
        };
        if use_cookie {
            self.send_cookie_syn_ack(now, seg, sink);
            return;
        }
        if overflow {
            self.counters.drop(if self.table.is_full() {
                TcpDrop::TableFull
            } else {
                TcpDrop::SynQueueFull
            });
            return;
        }
        let iss = isn.unwrap_or_else(|| self.isn.isn(&seg.tuple, now));
        let ts_offset = self.isn.ts_offset(&seg.tuple);
        let (recv, send) = self.buffers();
        let conn = {
            let mut cx = ctx!(self, now, sink);
            Conn::syn_received(seg.tuple, seg, iss, ts_offset, recv, send, &mut cx)
        };
        match self.table.insert(seg.tuple, conn) {
            Ok(slot) => {
                self.set_id(slot);
                self.half_open += 1;
                self.note_opened(seg.tuple);
                self.after_event(now, slot, State::Listen, Next::Keep);
            }
            Err(conn) => {
                self.recv_mem.update(conn.recv_allocated(), 0);
                self.counters.drop(TcpDrop::TableFull);
            }
        }
    }

    fn cookies_recently_sent(&self, now: Instant) -> bool {
        // Linux checks cookies only if the listener overflowed lately (about two minutes).
        self.cfg.syn_cookies == SynCookieMode::Always
            || self
                .last_cookie_sent
                .is_some_and(|t| now.saturating_since(t) < Duration::from_secs(128))
    }

    /// RFC 4987 3.6: answer a SYN without keeping state; the options the connection needs
    /// later ride in the ISN (MSS) and in our TSval (window scale, SACK), as Linux does.
    fn send_cookie_syn_ack<K: SegmentSink>(
        &mut self,
        now: Instant,
        seg: &SegmentIn<'_>,
        sink: &mut K,
    ) {
        if sink.room() == 0 {
            // Stateless: nothing to resume later; the peer retransmits its SYN.
            self.counters.drop(TcpDrop::NoTxRoom);
            return;
        }
        let syn = SynOptions::from_segment(&seg.options);
        let (iss, _mss) = self.cookies.make(&seg.tuple, seg.seq, syn.mss, now);
        let mut o = TcpOptions {
            mss: Some(self.cfg.tcp.mss_for(seg.tuple.is_v4())),
            ..TcpOptions::default()
        };
        let ts = syn.tsval.is_some();
        if let Some(tsval) = syn.tsval {
            // Without timestamps the cookie cannot carry window scale or SACK: offer neither.
            let clock = (now.as_millis() as u32).wrapping_add(self.isn.ts_offset(&seg.tuple));
            let ours = SynCookies::encode_ts_options(clock, syn.window_scale, syn.sack_permitted);
            o.timestamps = Some((ours, tsval));
            if syn.window_scale.is_some() {
                o.window_scale = Some(self.cfg.tcp.window_scale());
            }
            o.sack_permitted = syn.sack_permitted;
        }
        let window = initial_window(&self.cfg.tcp, seg.tuple.is_v4(), ts);
        let out = SegmentOut {
            tuple: seg.tuple,
            link: seg.link,
            seq: iss,
            ack: seg.seq + 1u32,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window,
            options: o,
        };
        self.last_cookie_sent = Some(now);
        self.counters.syn_cookies_sent += 1;
        self.counters.synacks_sent += 1;
        self.counters.segments_out += 1;
        sink.emit(&out, EMPTY);
    }

    /// The final ACK of a cookie handshake: rebuild the connection if the cookie checks out.
    fn try_cookie<K: SegmentSink>(
        &mut self,
        now: Instant,
        seg: &SegmentIn<'_>,
        sink: &mut K,
    ) -> CookieAck {
        let Some(mss) = self.cookies.check(&seg.tuple, seg.ack, seg.seq, now) else {
            return CookieAck::Invalid;
        };
        if !self.accepting {
            return CookieAck::ShuttingDown;
        }
        if self.table.is_full() {
            return CookieAck::TableFull;
        }
        let mut syn = SynOptions {
            mss,
            ..SynOptions::default()
        };
        if let Some((tsval, tsecr)) = seg.options.timestamps {
            let (wscale, sack) = SynCookies::decode_ts_options(tsecr);
            syn.window_scale = wscale;
            syn.sack_permitted = sack;
            syn.tsval = Some(tsval);
        }
        self.counters.syn_cookies_validated += 1;
        let ts_offset = self.isn.ts_offset(&seg.tuple);
        let (recv, send) = self.buffers();
        let conn = {
            let mut cx = ctx!(self, now, sink);
            Conn::from_cookie(seg.tuple, seg, syn, ts_offset, recv, send, &mut cx)
        };
        match self.table.insert(seg.tuple, conn) {
            Ok(slot) => {
                self.set_id(slot);
                self.half_open += 1;
                self.note_opened(seg.tuple);
                self.on_conn_segment(now, slot, seg, sink);
                CookieAck::Accepted
            }
            Err(conn) => {
                self.recv_mem.update(conn.recv_allocated(), 0);
                CookieAck::TableFull
            }
        }
    }

    /// TIME-WAIT, as Linux's tcp_timewait_state_process (with tcp_rfc1337 = 0).
    fn on_time_wait_segment<K: SegmentSink>(
        &mut self,
        now: Instant,
        seg: &SegmentIn<'_>,
        sink: &mut K,
    ) -> TimeWaitVerdict {
        let tw_len = self.cfg.tcp.time_wait_len();
        let rate = self.cfg.tcp.ack_rate_limit;
        let Some(rec) = self.time_wait.find_mut(&seg.tuple) else {
            return TimeWaitVerdict::Done;
        };
        let f = seg.flags;
        let tsval = seg.options.timestamps.map(|t| t.0);
        // RFC 7323 5.3: PAWS with the last timestamp the peer sent.
        let paws_reject = match (rec.ts_recent, tsval) {
            (Some(recent), Some(v)) => !f.rst() && (v.wrapping_sub(recent) as i32) < 0,
            _ => false,
        };
        if !paws_reject && seg.seq == rec.rcv_nxt && (seg.seg_len() == 0 || f.rst()) {
            if f.rst() {
                // TIME-WAIT assassination (RFC 1337): Linux lets a RST end it.
                self.time_wait.remove(&seg.tuple);
                self.counters.drop(TcpDrop::Rst);
                return TimeWaitVerdict::Done;
            }
            // An in-window bare ACK: restart the 2*MSL timer.
            if let (Some(_), Some(v)) = (rec.ts_recent, tsval) {
                rec.ts_recent = Some(v);
            }
            self.time_wait.restart(&seg.tuple, now + tw_len);
            return TimeWaitVerdict::Done;
        }
        // RFC 6191: a SYN with a newer sequence number, or a newer timestamp, may reopen
        // the tuple. The new ISN lies beyond anything the old connection sent.
        let newer_ts = match (rec.ts_recent, tsval) {
            (Some(recent), Some(v)) => (recent.wrapping_sub(v) as i32) < 0,
            _ => false,
        };
        if f.syn() && !f.rst() && !f.ack() && !paws_reject && (seg.seq.gt(rec.rcv_nxt) || newer_ts)
        {
            let mut isn = rec.snd_nxt + 65535u32 + 2u32;
            if isn.raw() == 0 {
                isn += 1u32;
            }
            self.time_wait.remove(&seg.tuple);
            self.counters.time_wait_reused += 1;
            return TimeWaitVerdict::NewSyn(isn);
        }
        if f.rst() {
            self.counters.drop(TcpDrop::Rst);
            return TimeWaitVerdict::Done;
        }
        // Anything else (a retransmitted FIN above all) is acknowledged again, and the timer
        // restarts if it was an ACK or failed PAWS.
        let carries_data = !seg.payload.is_empty() || f.fin();
        let now_ms = now.as_millis() as u32;
        let limited = !carries_data
            && rec.last_ack_ms != 0
            && (now_ms.wrapping_sub(rec.last_ack_ms) as u64) < rate.as_millis() as u64;
        let out = SegmentOut {
            tuple: seg.tuple,
            link: seg.link,
            seq: rec.snd_nxt,
            ack: rec.rcv_nxt,
            flags: TcpFlags::ACK,
            window: rec.window,
            options: TcpOptions {
                timestamps: rec
                    .ts_recent
                    .map(|r| (now_ms.wrapping_add(rec.ts_offset), r)),
                ..TcpOptions::default()
            },
        };
        if !carries_data {
            rec.last_ack_ms = now_ms.max(1);
        }
        let restart = paws_reject || f.ack();
        if restart {
            self.time_wait.restart(&seg.tuple, now + tw_len);
        }
        if limited {
            self.counters.acks_rate_limited += 1;
        } else if sink.room() == 0 {
            self.counters.drop(TcpDrop::NoTxRoom);
        } else {
            self.counters.segments_out += 1;
            sink.emit(&out, EMPTY);
        }
        TimeWaitVerdict::Done
    }

    /// Calls [`App::on_poll`], where the application may open connections; their SYNs are
    /// sent at once where the sink has room (the others wait for room as any output does),
    /// and the connections it woke run. Call once per loop iteration, before `on_tick`.
    pub fn poll_app<K: SegmentSink>(&mut self, now: Instant, sink: &mut K) {
        let mut opened = 0usize;
        {
            let mut c = EngineOpener {
                now,
                cfg: &self.cfg,
                table: &mut self.table,
                time_wait: &mut self.time_wait,
                isn: &self.isn,
                ports: &mut self.ports,
                counters: &mut self.counters,
                recv_pool: &mut self.recv_pool,
                send_pool: &mut self.send_pool,
                tx_waiting: &mut self.tx_waiting,
                wakes: &mut self.wakes,
                events: &mut self.events,
                track_flows: self.track_flows,
                accepting: self.accepting,
                opened: &mut opened,
            };
            let mut opener = Opener { inner: &mut c };
            self.app.on_poll(&mut opener, now);
        }
        if opened > 0 {
            self.on_tx_room(now, sink);
        }
        if self.wakes.len() > 0 {
            self.run_wakes(now, sink);
        }
    }

    /// Opens a connection from `local` (or the first local address of the remote's family
    /// with a free port) to `remote_ip`:`remote_port`, as [`Opener::connect`] does; its SYN is
    /// sent now if the sink has room.
    #[cfg(any(test, feature = "internals"))]
    pub fn connect<K: SegmentSink>(
        &mut self,
        now: Instant,
        local: Option<IpAddress>,
        remote_ip: IpAddress,
        remote_port: u16,
        sink: &mut K,
    ) -> Result<ConnId, ConnectError> {
        let mut opened = 0usize;
        let id = {
            let mut c = EngineOpener {
                now,
                cfg: &self.cfg,
                table: &mut self.table,
                time_wait: &mut self.time_wait,
                isn: &self.isn,
                ports: &mut self.ports,
                counters: &mut self.counters,
                recv_pool: &mut self.recv_pool,
                send_pool: &mut self.send_pool,
                tx_waiting: &mut self.tx_waiting,
                wakes: &mut self.wakes,
                events: &mut self.events,
                track_flows: self.track_flows,
                accepting: self.accepting,
                opened: &mut opened,
            };
            c.connect(local, std::net::SocketAddr::new(remote_ip.to_std(), remote_port))?
        };
        self.on_tx_room(now, sink);
        Ok(id)
    }

    /// Runs every timer that is due. Call once per loop iteration.
    pub fn on_tick<K: SegmentSink>(&mut self, now: Instant, sink: &mut K) {
        self.time_wait.expire(now);
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.timers.expire(now, &mut fired);
        for &(slot, generation) in &fired {
            if self.table.generation(slot) != generation {
                continue; // the connection this entry was for is gone
            }
            let Some(conn) = self.table.get_mut(slot) else {
                continue;
            };
            if conn.scheduled <= now {
                conn.scheduled = Instant::NEVER;
            }
            let before = conn.state();
            let next = if conn.next_deadline() <= now {
                let mut cx = ctx!(self, now, sink);
                conn.on_timer(&mut cx)
            } else {
                Next::Keep
            };
            self.after_event(now, slot, before, next);
        }
        self.fired = fired;
        if self.wakes.len() > 0 {
            self.run_wakes(now, sink);
        }
    }

    /// When `on_tick` next has work (coarse).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Graceful shutdown, first step: take no new connections, and close the connections that
    /// have nothing in flight (their application is between requests).
    pub fn begin_shutdown<K: SegmentSink>(&mut self, now: Instant, sink: &mut K) {
        self.accepting = false;
        let slots: Vec<u32> = self.table.iter().map(|(s, _, _)| s).collect();
        for slot in slots {
            let Some(conn) = self.table.get_mut(slot) else {
                continue;
            };
            let before = conn.state();
            if matches!(before, State::Established | State::CloseWait) && conn.is_idle() {
                let mut cx = ctx!(self, now, sink);
                let next = conn.close(&mut cx);
                self.after_event(now, slot, before, next);
            }
        }
    }

    /// Graceful shutdown, last step: reset whatever is left.
    pub fn abort_all<K: SegmentSink>(&mut self, now: Instant, sink: &mut K) {
        let slots: Vec<u32> = self.table.iter().map(|(s, _, _)| s).collect();
        for slot in slots {
            let Some(conn) = self.table.get_mut(slot) else {
                continue;
            };
            let before = conn.state();
            let mut cx = ctx!(self, now, sink);
            let next = conn.shutdown_abort(&mut cx);
            self.after_event(now, slot, before, next);
        }
    }

}

/// The engine's fields an [`Opener`] needs, borrowed beside the application.
struct EngineOpener<'a, S> {
    now: Instant,
    cfg: &'a EngineConfig,
    table: &'a mut ConnTable<Conn<S>>,
    time_wait: &'a mut TimeWaitTable,
    isn: &'a IsnGenerator,
    ports: &'a mut PortAllocator,
    counters: &'a mut TcpCounters,
    recv_pool: &'a mut Vec<RecvBuf>,
    send_pool: &'a mut Vec<SendBuf>,
    tx_waiting: &'a mut VecDeque<(u32, u32)>,
    wakes: &'a mut WakeQueue,
    events: &'a mut EngineEvents,
    track_flows: bool,
    accepting: bool,
    opened: &'a mut usize,
}

impl<S> EngineOpener<'_, S> {
    /// The ephemeral port for `local` -> `remote`, if one is free: not in the table, and not
    /// in TIME-WAIT unless the record may be reused (then it is removed).
    fn port_for(&mut self, local: IpAddress, remote_ip: IpAddress, remote_port: u16) -> Option<u16> {
        let (table, time_wait) = (&*self.table, &mut *self.time_wait);
        let reuse = self.cfg.time_wait_reuse;
        let now = self.now;
        let tw_len = self.cfg.tcp.time_wait_len();
        let mut reused = false;
        let port = self.ports.choose(
            &local,
            &remote_ip,
            remote_port,
            self.cfg.ephemeral_ports,
            |port| {
                let tuple = FourTuple {
                    remote_ip,
                    remote_port,
                    local_ip: local,
                    local_port: port,
                };
                if table.find(&tuple).is_some() {
                    return false;
                }
                let Some(rec) = time_wait.find(&tuple) else {
                    return true;
                };
                // Linux's tcp_twsk_unique with tcp_tw_reuse = 1: the old connection had
                // timestamps and has been quiet for a second, so our TSvals are newer.
                let quiet = time_wait.expires_at(&tuple).is_some_and(|exp| {
                    let last = exp.as_micros().saturating_sub(tw_len.as_micros() as u64);
                    now.saturating_since(Instant::from_micros(last)) >= Duration::from_secs(1)
                });
                if reuse && rec.ts_recent.is_some() && quiet {
                    time_wait.remove(&tuple);
                    reused = true;
                    return true;
                }
                false
            },
        )?;
        if reused {
            self.counters.time_wait_reused += 1;
        }
        Some(port)
    }
}

impl<S> Connector for EngineOpener<'_, S> {
    fn connect(
        &mut self,
        local: Option<IpAddress>,
        remote: std::net::SocketAddr,
    ) -> Result<ConnId, ConnectError> {
        if !self.accepting {
            return Err(ConnectError::ShuttingDown);
        }
        if self.table.is_full() {
            return Err(ConnectError::TableFull);
        }
        let remote_ip = IpAddress::from(remote.ip());
        let v4 = remote_ip.is_v4();
        let mut found_family = false;
        let mut chosen = None;
        for i in 0..self.cfg.local_ips.len() {
            let ip = self.cfg.local_ips[i];
            if ip.is_v4() != v4 || local.is_some_and(|l| l != ip) {
                continue;
            }
            found_family = true;
            if let Some(port) = self.port_for(ip, remote_ip, remote.port()) {
                chosen = Some((ip, port));
                break;
            }
        }
        let Some((local_ip, local_port)) = chosen else {
            return Err(if found_family {
                ConnectError::NoFreePort
            } else {
                ConnectError::NoLocalAddress
            });
        };
        let tuple = FourTuple {
            remote_ip,
            remote_port: remote.port(),
            local_ip,
            local_port,
        };
        let iss = self.isn.isn(&tuple, self.now);
        let ts_offset = self.isn.ts_offset(&tuple);
        let recv = self
            .recv_pool
            .pop()
            .unwrap_or_else(|| RecvBuf::new(self.cfg.tcp.recv_buffer));
        let send = self.send_pool.pop().unwrap_or_default();
        let conn = Conn::syn_sent(
            tuple,
            self.cfg.next_hop,
            iss,
            ts_offset,
            recv,
            send,
            &self.cfg.tcp,
            self.now,
        );
        let slot = match self.table.insert(tuple, conn) {
            Ok(slot) => slot,
            Err(conn) => {
                let (r, s) = conn.into_buffers();
                self.recv_pool.push(r);
                self.send_pool.push(s);
                return Err(ConnectError::TableFull);
            }
        };
        let generation = self.table.generation(slot);
        let id = ConnId { slot, generation };
        if let Some(c) = self.table.get_mut(slot) {
            c.id = id;
            c.tx_queued = true;
        }
        // The SYN goes out with the engine's transmit-room queue, right after on_poll.
        if self.tx_waiting.len() == self.tx_waiting.capacity() {
            let table = &*self.table;
            self.tx_waiting.retain(|&(s, g)| {
                table.generation(s) == g && table.get(s).is_some_and(|c| c.tx_queued)
            });
        }
        self.tx_waiting.push_back((slot, generation));
        if self.track_flows && self.events.opened.len() < EngineEvents::LIMIT {
            self.events.opened.push(tuple);
        }
        self.counters.active_opens += 1;
        *self.opened += 1;
        Ok(id)
    }

    fn connections(&self) -> usize {
        self.table.len()
    }

    fn wake(&mut self, id: ConnId) {
        self.wakes.push(id);
    }
}

#[cfg(test)]
mod tx_room_tests {
    use super::*;
    use crate::tcp::testkit::{CollectSink, TestApp, TestAppConfig, segment};

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            remote_ip: IpAddress::v4(u32::from_be_bytes([198, 18, 0, 2])),
            remote_port: port,
            local_ip: IpAddress::v4(u32::from_be_bytes([198, 18, 0, 1])),
            local_port: 8080,
        }
    }

    /// Connections that wait for room and then go away leave stale entries in the queue; it
    /// stays within the table's capacity (compacted in place), and stale entries send nothing.
    #[test]
    fn the_tx_room_queue_stays_within_the_table_capacity() {
        let cfg = EngineConfig {
            max_conns: 2,
            ..EngineConfig::default()
        };
        let mut e = Engine::new(cfg, TestApp::new(TestAppConfig::default()));
        let now = Instant::from_millis(1000);
        let mut full = CollectSink::with_room(0);
        let syn_opts = TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        };
        for i in 0..10u16 {
            let t = tuple(40000 + i);
            e.on_segment(
                now,
                &segment(t, 100, 0, TcpFlags::SYN, 65535, syn_opts, &[]),
                &mut full,
            );
            assert_eq!(
                e.connections(),
                1,
                "the SYN/ACK waits, the connection exists"
            );
            // The peer gives up: its RST (at RCV.NXT) frees the connection.
            e.on_segment(
                now,
                &segment(t, 101, 0, TcpFlags::RST, 0, TcpOptions::default(), &[]),
                &mut full,
            );
            assert_eq!(e.connections(), 0);
            assert!(e.tx_waiting() <= 2, "{} entries", e.tx_waiting());
        }
        assert!(full.segments.is_empty());
        let mut open = CollectSink::default();
        e.on_tx_room(now, &mut open);
        assert!(open.segments.is_empty(), "{:?}", open.segments);
        assert_eq!(e.tx_waiting(), 0);
    }
}

/// The worker's receive memory as a hostile or stalled peer meets it: what a connection costs
/// for bytes at the far edge of its window, and the budget's drops, pruning and windows.
#[cfg(test)]
mod memory_tests {
    use super::*;
    use crate::tcp::testkit::{CollectSink, OwnedSegment, TestApp, TestAppConfig, segment};

    const CLIENT: u32 = u32::from_be_bytes([198, 18, 0, 2]);
    const C_ISS: u32 = 5_000_000;

    struct Peer {
        t: FourTuple,
        /// The server's next sequence number (what we acknowledge).
        s_nxt: u32,
    }

    fn engine(mem_limit: usize) -> Engine<TestApp> {
        let cfg = EngineConfig {
            syn_cookies: SynCookieMode::Never,
            mem_limit,
            ..EngineConfig::default()
        };
        let app = TestApp::new(TestAppConfig {
            stall_reading: true,
            ..TestAppConfig::default()
        });
        Engine::new(cfg, app)
    }

    fn open(e: &mut Engine<TestApp>, now: Instant, port: u16) -> Peer {
        let t = FourTuple {
            remote_ip: IpAddress::v4(CLIENT),
            remote_port: port,
            local_ip: e.config().local_ips[0],
            local_port: 8080,
        };
        let opts = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            ..TcpOptions::default()
        };
        let mut out = CollectSink::default();
        e.on_segment(
            now,
            &segment(t, C_ISS, 0, TcpFlags::SYN, 65535, opts, &[]),
            &mut out,
        );
        let s_nxt = out.take()[0].seq().raw() + 1;
        let ack = segment(
            t,
            C_ISS + 1,
            s_nxt,
            TcpFlags::ACK,
            65535,
            TcpOptions::default(),
            &[],
        );
        e.on_segment(now, &ack, &mut out);
        Peer { t, s_nxt }
    }

    /// Sends `payload` at stream offset `off` (0 = the first byte after the SYN).
    fn data(
        e: &mut Engine<TestApp>,
        now: Instant,
        p: &Peer,
        off: u32,
        payload: &[u8],
    ) -> Vec<OwnedSegment> {
        let mut out = CollectSink::default();
        let seg = segment(
            p.t,
            C_ISS + 1 + off,
            p.s_nxt,
            TcpFlags::ACK,
            65535,
            TcpOptions::default(),
            payload,
        );
        e.on_segment(now, &seg, &mut out);
        out.take()
    }

    /// Stream offsets the SACK blocks of `seg` claim.
    fn sacked(seg: &OwnedSegment) -> Vec<(u32, u32)> {
        seg.header
            .options
            .sack()
            .iter()
            .map(|b| (b.left - C_ISS - 1, b.right - C_ISS - 1))
            .collect()
    }

    fn right_edge(seg: &OwnedSegment) -> u32 {
        seg.ack().raw() - C_ISS - 1 + ((seg.header.window as u32) << 3)
    }

    #[test]
    fn a_byte_at_the_window_edge_costs_a_few_hundred_bytes() {
        let mut e = engine(EngineConfig::default().mem_limit);
        let mut now = Instant::from_millis(1_000_000);
        let peers: Vec<Peer> = (0..200).map(|i| open(&mut e, now, 20_000 + i)).collect();
        for p in &peers {
            data(&mut e, now, p, 0, b"G");
        }
        // The delayed ACK opens the window to the whole buffer.
        now += Duration::from_millis(100);
        let mut out = CollectSink::default();
        e.on_tick(now, &mut out);
        assert!(out.take().iter().all(|s| right_edge(s) >= 262_001));
        for p in &peers {
            let ack = data(&mut e, now, p, 262_000, b"x");
            assert_eq!(sacked(&ack[0]), vec![(262_000, 262_001)]);
        }
        let held = e.recv_memory().held();
        // 200 x 256 KiB (51 MiB) when the buffer was one contiguous allocation.
        assert!(
            held <= 200 * 1024,
            "receive memory {held} for 200 connections"
        );
        assert_eq!(e.counters().drops[TcpDrop::OfoMemory as usize], 0);
    }

    #[test]
    fn under_pressure_ofo_data_is_dropped_pruned_and_not_sacked() {
        let limit = 64 * 1024;
        let mut e = engine(limit);
        let now = Instant::from_millis(1_000_000);
        let a = open(&mut e, now, 30_001);
        let b = open(&mut e, now, 30_002);
        // A parks three ranges.
        for off in [20_000, 30_000, 40_000] {
            data(&mut e, now, &a, off, &[1; 1000]);
        }
        // B fills the budget with in-order bytes its application does not read.
        let mut off = 0;
        let mut edges = Vec::new();
        while e.counters().drops[TcpDrop::RecvMemory as usize] == 0 {
            let out = data(&mut e, now, &b, off, &[2; 1000]);
            off += 1000;
            edges.extend(out.iter().map(right_edge));
            assert!(off < 200_000, "the budget never bound");
        }
        let held = e.recv_memory().held();
        assert!(held <= limit + 4096, "held {held} over the limit {limit}");
        // The right edge never moved left, and stopped growing under pressure.
        assert!(edges.windows(2).all(|w| w[1] >= w[0]), "{edges:?}");
        // New out-of-order data is dropped; the SACK blocks show what is held.
        let out = data(&mut e, now, &a, 50_000, &[3; 1000]);
        assert_eq!(e.counters().drops[TcpDrop::OfoMemory as usize], 1);
        let blocks = sacked(&out[0]);
        assert!(!blocks.contains(&(50_000, 51_000)), "{blocks:?}");
        assert!(blocks.contains(&(40_000, 41_000)), "{blocks:?}");
        // In-order data that needs memory first takes back A's out-of-order memory, the
        // highest range first; SACK no longer claims what was pruned (RFC 2018 8).
        let mut off = 0;
        let mut last = Vec::new();
        while e.counters().ofo_pruned == 0 {
            last = data(&mut e, now, &a, off, &[0; 1000]);
            off += 1000;
            assert!(off < 20_000, "never pruned");
        }
        let blocks = sacked(last.last().unwrap());
        assert!(!blocks.contains(&(40_000, 41_000)), "{blocks:?}");
        assert!(e.recv_memory().held() <= limit + 4096);
        assert!(e.recv_memory().held() <= e.recv_memory().peak());
    }

    #[test]
    fn memory_comes_back_when_connections_end() {
        let mut e = engine(EngineConfig::default().mem_limit);
        let now = Instant::from_millis(1_000_000);
        let peers: Vec<Peer> = (0..50).map(|i| open(&mut e, now, 25_000 + i)).collect();
        for p in &peers {
            data(&mut e, now, p, 0, &[1; 5000]);
            data(&mut e, now, p, 9000, &[2; 1000]);
        }
        assert!(e.recv_memory().held() >= 50 * 6000);
        for p in &peers {
            let rst = segment(
                p.t,
                C_ISS + 1 + 5000,
                0,
                TcpFlags::RST,
                0,
                TcpOptions::default(),
                &[],
            );
            e.on_segment(now, &rst, &mut CollectSink::default());
        }
        assert_eq!(e.connections(), 0);
        // Only the pool's small buffers are left.
        let held = e.recv_memory().held();
        assert!(
            held <= 50 * POOLED_RECV_ALLOC,
            "{held} bytes held after all closed"
        );
    }

    #[test]
    fn closing_releases_the_receive_buffer() {
        let mut e = Engine::new(
            EngineConfig {
                syn_cookies: SynCookieMode::Never,
                ..EngineConfig::default()
            },
            TestApp::new(TestAppConfig {
                close_on_bang: true,
                ..TestAppConfig::default()
            }),
        );
        let now = Instant::from_millis(1_000_000);
        let p = open(&mut e, now, 40_000);
        data(&mut e, now, &p, 5000, &[7; 1400]);
        assert!(e.recv_memory().held() >= 1400);
        // The application answers and closes: FIN-WAIT-1 keeps no receive memory, and later
        // bytes are acknowledged without being stored.
        data(&mut e, now, &p, 0, b"bye!\n");
        assert_eq!(e.connection(&p.t).map(|c| c.state()), Some(State::FinWait1));
        assert_eq!(e.recv_memory().held(), 0);
        let out = data(&mut e, now, &p, 5, &[9; 1000]);
        assert_eq!(e.recv_memory().held(), 0);
        assert_eq!(
            e.connection(&p.t).unwrap().rcv_nxt().raw(),
            C_ISS + 1 + 1005
        );
        let _ = out;
    }
}

/// The application interface as a service sees it: refusing a connection, a bounded send
/// queue with `on_writable`, and acting on a connection later (`wake`, messages).
#[cfg(test)]
mod app_api_tests {
    use super::*;
    use crate::tcp::app::{AppIo, CloseReason, ConnInfo, Wakeups};
    use crate::tcp::testkit::{CollectSink, OwnedSegment, segment};
    use bytes::Bytes;

    const CLIENT: u32 = u32::from_be_bytes([198, 18, 0, 2]);
    const C_ISS: u32 = 7_000_000;
    /// Connections from this port are refused.
    const REFUSED_PORT: u16 = 40_666;

    /// Sends `body` (a shared `Bytes`) on every connection as soon as it opens, under the send
    /// limit; remembers each connection's id; a message names a connection to wake, which
    /// then sends "woken".
    struct ApiApp {
        body: Bytes,
        ids: Vec<ConnId>,
        writable_calls: usize,
        closed: usize,
    }

    struct Session {
        rest: Bytes,
    }

    impl App for ApiApp {
        type Session = Session;
        type Message = usize;

        fn on_open(&mut self, conn: &ConnInfo, _now: Instant) -> Option<Session> {
            if conn.peer().port() == REFUSED_PORT {
                return None;
            }
            self.ids.push(conn.id());
            Some(Session {
                rest: self.body.clone(),
            })
        }
        fn on_readable(&mut self, s: &mut Session, io: &mut AppIo<'_>, _now: Instant) {
            let n = io.data().len();
            io.consume(n);
            io.send_bytes(&mut s.rest);
        }
        fn on_writable(&mut self, s: &mut Session, io: &mut AppIo<'_>, _now: Instant) {
            self.writable_calls += 1;
            let room = io.send_room();
            let took = io.send_bytes(&mut s.rest);
            assert_eq!(took, room.min(took + s.rest.len()), "send takes what fits");
        }
        fn on_wake(&mut self, _s: &mut Session, io: &mut AppIo<'_>, _now: Instant) {
            assert_eq!(io.send(b"woken"), 5);
        }
        fn on_message(&mut self, msg: usize, wakeups: &mut Wakeups<'_>, _now: Instant) {
            wakeups.wake(self.ids[msg]);
        }
        fn on_close(&mut self, _s: Session, _reason: CloseReason, _now: Instant) {
            self.closed += 1;
        }
    }

    fn engine(body: Bytes) -> Engine<ApiApp> {
        let cfg = EngineConfig {
            syn_cookies: SynCookieMode::Never,
            ..EngineConfig::default()
        };
        Engine::new(
            cfg,
            ApiApp {
                body,
                ids: Vec::new(),
                writable_calls: 0,
                closed: 0,
            },
        )
    }

    fn tuple(e: &Engine<ApiApp>, port: u16) -> FourTuple {
        FourTuple {
            remote_ip: IpAddress::v4(CLIENT),
            remote_port: port,
            local_ip: e.config().local_ips[0],
            local_port: 8080,
        }
    }

    /// The handshake; returns what the server sent after the final ACK and its next seq.
    fn open(e: &mut Engine<ApiApp>, now: Instant, port: u16) -> (Vec<OwnedSegment>, u32) {
        let t = tuple(e, port);
        let opts = TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            ..TcpOptions::default()
        };
        let mut out = CollectSink::default();
        e.on_segment(
            now,
            &segment(t, C_ISS, 0, TcpFlags::SYN, 65535, opts, &[]),
            &mut out,
        );
        let s_iss = out.take()[0].seq().raw();
        let ack = segment(
            t,
            C_ISS + 1,
            s_iss + 1,
            TcpFlags::ACK,
            65535,
            TcpOptions::default(),
            &[],
        );
        e.on_segment(now, &ack, &mut out);
        (out.take(), s_iss + 1)
    }

    #[test]
    fn a_refused_connection_is_reset_and_counted() {
        let mut e = engine(Bytes::new());
        let now = Instant::from_millis(1000);
        let (out, _) = open(&mut e, now, REFUSED_PORT);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].flags().rst());
        assert_eq!(e.connections(), 0);
        assert_eq!(e.half_open(), 0);
        assert_eq!(e.counters().dropped(TcpDrop::Refused), 1);
        assert_eq!(e.app().closed, 0, "no on_close for a refused connection");
        // Others are served.
        let (out, _) = open(&mut e, now, 40_001);
        assert!(out.iter().all(|s| !s.flags().rst()));
        assert_eq!(e.connections(), 1);
    }

    /// A 1 MiB response from a 256 KiB send limit: the queue never holds more than the limit,
    /// `on_writable` refills it as the peer acknowledges, and every byte arrives in order.
    #[test]
    fn send_takes_what_fits_and_on_writable_refills() {
        let body: Bytes = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        let mut e = engine(body.clone());
        let limit = e.config().tcp.send_buffer;
        let mut now = Instant::from_millis(1000);
        let (_, s_nxt) = open(&mut e, now, 40_001);
        let t = tuple(&e, 40_001);
        // The request: the session starts sending.
        let mut out = CollectSink::default();
        e.on_segment(
            now,
            &segment(
                t,
                C_ISS + 1,
                s_nxt,
                TcpFlags::ACK,
                65535,
                TcpOptions::default(),
                b"go",
            ),
            &mut out,
        );
        let mut got = Vec::new();
        for _ in 0..10_000 {
            let c = e.connection(&t).unwrap();
            assert!(c.send_queued() <= limit, "{} queued", c.send_queued());
            let segs = out.take();
            for s in &segs {
                if s.seq().raw().wrapping_sub(s_nxt) as usize == got.len() {
                    got.extend_from_slice(&s.payload);
                }
            }
            if got.len() == body.len() {
                break;
            }
            now += Duration::from_millis(1);
            // The peer acknowledges everything received so far.
            let ack = segment(
                t,
                C_ISS + 3,
                s_nxt.wrapping_add(got.len() as u32),
                TcpFlags::ACK,
                65535,
                TcpOptions::default(),
                &[],
            );
            e.on_segment(now, &ack, &mut out);
            e.on_tick(now, &mut out);
        }
        assert_eq!(got.len(), body.len());
        assert!(got == body[..], "bytes differ");
        assert!(e.app().writable_calls >= 3, "{}", e.app().writable_calls);
    }

    #[test]
    fn a_message_wakes_a_connection_which_sends() {
        let mut e = engine(Bytes::new());
        let now = Instant::from_millis(1000);
        let (_, s0) = open(&mut e, now, 40_001);
        let (_, _s1) = open(&mut e, now, 40_002);
        let mut out = CollectSink::default();
        e.on_message(now, 0, &mut out);
        let segs = out.take();
        assert_eq!(segs.len(), 1, "{segs:?}");
        assert_eq!(segs[0].payload, b"woken");
        assert_eq!(segs[0].header.tuple.remote_port, 40_001);
        assert_eq!(segs[0].seq().raw(), s0);
        // A connection that is gone is not woken, and its id names no other connection.
        let t = tuple(&e, 40_001);
        e.on_segment(
            now,
            &segment(
                t,
                C_ISS + 1,
                s0 + 5,
                TcpFlags::RST,
                0,
                TcpOptions::default(),
                &[],
            ),
            &mut out,
        );
        assert_eq!(e.connections(), 1);
        let (_, _s2) = open(&mut e, now, 40_003); // may take the freed slot
        out.take();
        e.on_message(now, 0, &mut out);
        assert!(out.take().is_empty(), "a stale id woke someone");
    }
}
