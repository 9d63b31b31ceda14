//! One connection, from SYN-RECEIVED until it leaves for TIME-WAIT or CLOSED.
//!
//! RFC 9293 3.10.7.4 (segment arrives in a synchronized state) is followed step by step in
//! [`Conn::on_segment`], with RFC 5961 (RST, SYN and ACK checks), RFC 7323 (timestamps, PAWS,
//! window scaling), RFC 5681/6582 (congestion control, in `congestion.rs`), RFC 6298
//! (retransmission timer, in `rto.rs`), RFC 6675 (SACK loss recovery, in `scoreboard.rs`) and
//! RFC 8985 (RACK-TLP, in `rack.rs`). Where the RFCs leave a choice, Linux's is taken.
//!
//! Call order (the engine's contract): `on_segment` for each arriving segment, `on_timer` when
//! `next_deadline()` has passed; both end by sending what became sendable. The returned
//! [`Next`] tells the engine whether the connection lives on, moves to TIME-WAIT or is gone.

use std::time::Duration;

use super::app::{App, AppIo, CloseReason, ConnId, ConnInfo, WakeQueue};
use super::buffer::{RecvBuf, RecvMemory, SendBuf};
use super::config::TcpConfig;
use super::congestion::{AckAction, Congestion};
use super::counters::{TcpCounters, TcpDrop};
use super::rack::{Rack, TlpOutcome};
use super::rto::RttEstimator;
use super::scoreboard::{NextSeg, SackUpdate, Scoreboard};
use super::segment::{EMPTY, PayloadSource, SegmentSink};
use super::state::State;
use crate::time::Instant;
use crate::wire::segment::{FourTuple, LinkAddr, SegmentIn, SegmentOut};
use crate::wire::ipv6;
use crate::wire::seq::SeqNumber;
use crate::wire::tcp::{SackBlock, TcpFlags, TcpOptions};

/// RFC 7323 5.5: TS.Recent is not trusted after this long without an update (Linux's
/// TCP_PAWS_24DAYS: 24 days, below the 2^31 ms it takes a 1 ms clock to wrap its sign).
const PAWS_IDLE_LIMIT: Duration = Duration::from_secs(24 * 24 * 60 * 60);

/// Which application callback [`Conn::call_app`] runs.
#[derive(Clone, Copy)]
enum Callback {
    Readable,
    Writable,
    Deadline,
    Wake,
}

/// Everything a connection needs from its engine while it handles one event.
pub struct Ctx<'a, A: App, K: SegmentSink> {
    pub now: Instant,
    pub cfg: &'a TcpConfig,
    pub app: &'a mut A,
    pub sink: &'a mut K,
    pub counters: &'a mut TcpCounters,
    /// Service times measured by `AppIo::time_until_sent` markers, in microseconds.
    pub service_us: &'a mut Vec<u64>,
    /// The worker's receive memory: every change to a receive buffer's allocation is
    /// reported here, and new memory is taken only if it allows.
    pub mem: &'a mut RecvMemory,
    /// Connections the application asked to wake ([`AppIo::wake`]).
    pub(crate) wakes: &'a mut WakeQueue,
}

impl<A: App, K: SegmentSink> Ctx<'_, A, K> {
    /// Whether the sink takes one more segment now. Every send asks first, before it changes
    /// any state, so that a segment that cannot go is deferred, not counted as sent.
    #[inline]
    fn has_room(&mut self) -> bool {
        self.sink.room() > 0
    }

    /// Emits a segment the caller checked room for.
    fn emit(&mut self, seg: &SegmentOut, payload: &dyn PayloadSource) {
        self.counters.segments_out += 1;
        if seg.flags.rst() {
            self.counters.resets_sent += 1;
        }
        self.sink.emit(seg, payload);
    }
}

/// What the engine does with a connection after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Keep,
    /// Enter TIME-WAIT: keep only a small record (see `time_wait.rs`).
    TimeWait,
    /// The connection is gone; the application was told why.
    Remove(CloseReason),
}

/// The window of a SYN/ACK: unscaled (RFC 7323 2.2), a whole number of our own segments like
/// Linux (65160 with timestamps, 64240 without).
pub fn initial_window(cfg: &TcpConfig, v4: bool, timestamps: bool) -> u16 {
    let free = cfg.recv_buffer.min(65535) as u32;
    let seg = (cfg.mss_for(v4) as u32)
        .saturating_sub(if timestamps { 12 } else { 0 })
        .max(1);
    let w = (free / seg) * seg;
    (if w == 0 { free } else { w }) as u16
}

/// The payload bytes per segment for a peer MSS (RFC 9293 3.7.1: less our option space).
pub fn payload_mss(cfg: &TcpConfig, v4: bool, peer_mss: u16, timestamps: bool) -> u32 {
    let mss = (peer_mss.min(cfg.mss_for(v4)) as u32).saturating_sub(if timestamps { 12 } else { 0 });
    mss.max(64)
}

/// What [`Conn::on_path_mtu`] made of a path-MTU message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmtuVerdict {
    /// The MSS was lowered and what was in flight resent.
    Lowered,
    /// The quoted sequence number is not in flight (RFC 5927: possibly forged), or the
    /// connection sends no data in its state.
    NotInFlight,
    /// The MTU would not lower the MSS (already at or below it, or below the floor).
    NotSmaller,
}

/// What a SYN offered, kept to answer it (and its duplicates) the same way.
#[derive(Clone, Copy, Debug, Default)]
pub struct SynOptions {
    pub mss: u16,
    /// The peer's window scale (clamped to 14), if it offered one.
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// The peer's TSval, if it offered timestamps.
    pub tsval: Option<u32>,
}

impl SynOptions {
    /// Reads a SYN's options. RFC 9293 3.7.1: no MSS option means 536. RFC 7323 2.3: a shift
    /// above 14 is used as 14.
    pub fn from_segment(opts: &TcpOptions) -> Self {
        SynOptions {
            mss: match opts.mss {
                Some(m) if m > 0 => m,
                _ => 536,
            },
            window_scale: opts.window_scale.map(|s| s.min(14)),
            sack_permitted: opts.sack_permitted,
            tsval: opts.timestamps.map(|t| t.0),
        }
    }
}

/// The kind of pending acknowledgment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckDue {
    None,
    /// Delayed: send by `delack_at`, or with the next segment.
    Delayed,
    /// Send now (out-of-order data, FIN, window update, second full segment).
    Now,
}

pub struct Conn<S> {
    pub(crate) tuple: FourTuple,
    state: State,
    /// The link-layer address the peer's segments come from: every segment we send goes
    /// there. Set by the SYN, then updated by each acceptable segment (a neighbour entry).
    link: LinkAddr,
    /// Output waits for transmit room (the sink was full): the engine queues the connection
    /// and calls `on_tx_room` when room returns. Pending ACKs stay pending meanwhile.
    tx_wait: bool,
    /// The SYN/ACK has never gone out (no room when the SYN arrived).
    synack_due: bool,
    /// We opened this connection (SYN-SENT first): its failures before the handshake
    /// completes go to `App::on_connect_failed`, and it never counts as half-open.
    active: bool,
    /// Our SYN has never gone out (an active open waits for transmit room).
    syn_due: bool,
    /// The SYN was sent again at once after a RST that answered an old connection's ACK
    /// (done once per connection).
    syn_resent_early: bool,
    /// The engine's transmit-room queue holds this connection.
    pub(crate) tx_queued: bool,

    // Send sequence space (RFC 9293 3.3.1). SND.MAX is the highest sequence sent; SND.NXT falls
    // back to SND.UNA after a timeout (go-back-N).
    iss: SeqNumber,
    snd_una: SeqNumber,
    snd_nxt: SeqNumber,
    snd_max: SeqNumber,
    snd_wnd: u32,
    max_snd_wnd: u32,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    snd_wscale: u8,

    // Receive sequence space. RCV.ADV is the right edge of the window last advertised.
    irs: SeqNumber,
    rcv_nxt: SeqNumber,
    rcv_adv: SeqNumber,
    rcv_wscale: u8,

    /// Payload bytes per segment we send (MSS less option space).
    mss: u32,
    syn: SynOptions,
    ts_enabled: bool,
    ts_recent: u32,
    /// When TS.Recent was last set (RFC 7323 5.5; Linux's `ts_recent_stamp`).
    ts_recent_stamp: Instant,
    ts_offset: u32,
    sack_ok: bool,

    send: SendBuf,
    recv: RecvBuf,
    /// The application closed its side: a FIN follows the queued bytes.
    fin_queued: bool,
    /// Our FIN has been sent at least once (its sequence is `fin_seq()`).
    fin_sent: bool,
    /// We received the peer's FIN (RCV.NXT is past it).
    peer_fin: bool,
    /// The sequence number of a FIN that arrived ahead of a hole.
    ooo_fin: Option<SeqNumber>,

    cc: Congestion,
    rtt: RttEstimator,
    /// Karn's rule: the segment being timed (its end sequence) and when it was sent.
    rtt_probe: Option<(SeqNumber, Instant)>,
    /// Retransmissions since the last forward progress (not zero-window probes).
    retries: u32,
    /// Zero-window probes sent and not answered (Linux's `icsk_probes_out`): any acceptable
    /// ACK resets it, so a peer that answers keeps its connection (RFC 1122 4.2.2.17).
    probes_out: u32,
    /// When the peer last acknowledged new data (or the connection was created): the
    /// application's measure of send progress ([`AppIo::send_progress`]).
    acked_at: Instant,
    /// RFC 6675 scoreboard: what the peer's SACK blocks say it holds above SND.UNA.
    board: Scoreboard,
    /// RFC 8985 RACK-TLP: send times, the reordering timer and the tail loss probe.
    rack: Rack,

    rtx_at: Option<Instant>,
    /// The retransmit timer is a persist timer (zero window, nothing in flight).
    persist: bool,
    delack_at: Option<Instant>,
    ack_due: AckDue,
    /// Full-sized segments received since we last sent an ACK.
    segs_unacked: u32,
    /// Include SACK blocks in the next ACK (out-of-order arrival).
    sack_due: bool,
    /// The most in-order bytes the advertised window may reach while the worker's receive
    /// memory is under pressure (`usize::MAX` when it is not); set at each event.
    rcv_clamp: usize,
    /// The application asked for `on_writable` once the send queue holds at most this many
    /// bytes (`AppIo::writable_below`, or a `send` that took less than offered).
    writable_below: Option<usize>,
    app_deadline: Option<Instant>,
    /// FIN-WAIT-2 timeout.
    state_deadline: Option<Instant>,
    last_rate_limited_ack: Option<Instant>,

    session: Option<S>,
    /// The connection's id in its engine's table (set when it is inserted).
    pub(crate) id: ConnId,
    /// Payload bytes handed to the sink for the first time (stream offset of SND.MAX).
    sent_bytes: u64,
    /// Pending latency markers: (stream offset, start), oldest first.
    markers: [(u64, Instant); 4],
    marker_count: u8,
    /// When the SYN arrived (handshake latency).
    pub(crate) syn_at: Instant,
    /// When the handshake completed.
    pub(crate) established_at: Option<Instant>,
    /// Rebuilt from a SYN cookie: the SYN's time is unknown.
    pub(crate) from_cookie: bool,
    /// The deadline the engine's timer wheel holds for this connection.
    pub(crate) scheduled: Instant,
}

impl<S> Conn<S> {
    /// A new connection in SYN-RECEIVED for `syn`, answered at once with a SYN/ACK.
    #[allow(clippy::too_many_arguments)]
    pub fn syn_received<A: App<Session = S>, K: SegmentSink>(
        tuple: FourTuple,
        syn: &SegmentIn<'_>,
        iss: SeqNumber,
        ts_offset: u32,
        recv: RecvBuf,
        send: SendBuf,
        cx: &mut Ctx<'_, A, K>,
    ) -> Self {
        let opts = SynOptions::from_segment(&syn.options);
        let mut c = Conn::new(
            tuple, iss, syn.seq, opts, ts_offset, recv, send, cx.cfg, cx.now,
        );
        c.state = State::SynReceived;
        c.link = syn.link;
        if c.send_syn_ack(cx) {
            c.rtx_at = Some(cx.now + c.rtt.rto(&cx.cfg.rto));
        } else {
            // No room: the SYN/ACK waits for it (`output`); its timer starts when it leaves.
            c.synack_due = true;
            c.defer(cx);
        }
        c
    }

    /// A connection rebuilt from a valid SYN cookie: straight to ESTABLISHED (RFC 4987 3.6).
    /// `ack` is the handshake-completing segment; the caller then passes it to `on_segment`
    /// so that data riding on it is taken.
    #[allow(clippy::too_many_arguments)]
    pub fn from_cookie<A: App<Session = S>, K: SegmentSink>(
        tuple: FourTuple,
        ack: &SegmentIn<'_>,
        opts: SynOptions,
        ts_offset: u32,
        recv: RecvBuf,
        send: SendBuf,
        cx: &mut Ctx<'_, A, K>,
    ) -> Self {
        let iss = ack.ack - 1u32;
        let irs = ack.seq - 1u32;
        let mut c = Conn::new(tuple, iss, irs, opts, ts_offset, recv, send, cx.cfg, cx.now);
        // The SYN/ACK we sent advertised the unscaled initial window.
        c.rcv_adv = c.rcv_nxt + c.initial_window(cx.cfg) as u32;
        c.state = State::SynReceived;
        c.link = ack.link;
        c.from_cookie = true;
        c
    }

    /// A connection we open (RFC 9293 3.5): SYN-SENT, its SYN sent by the next `output`
    /// (the engine queues it for transmit room at once). The peer's options are learnt from
    /// its SYN/ACK.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn syn_sent(
        tuple: FourTuple,
        link: LinkAddr,
        iss: SeqNumber,
        ts_offset: u32,
        recv: RecvBuf,
        send: SendBuf,
        cfg: &TcpConfig,
        now: Instant,
    ) -> Self {
        let mut c = Conn::new(
            tuple,
            iss,
            SeqNumber::new(0),
            SynOptions::default(),
            ts_offset,
            recv,
            send,
            cfg,
            now,
        );
        c.state = State::SynSent;
        c.link = link;
        c.active = true;
        c.syn_due = true;
        c.tx_wait = true;
        c
    }

    /// Whether we opened this connection.
    pub(crate) fn is_active(&self) -> bool {
        self.active
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        tuple: FourTuple,
        iss: SeqNumber,
        irs: SeqNumber,
        syn: SynOptions,
        ts_offset: u32,
        mut recv: RecvBuf,
        mut send: SendBuf,
        cfg: &TcpConfig,
        now: Instant,
    ) -> Self {
        recv.clear();
        send.clear();
        let ts_enabled = syn.tsval.is_some();
        // RFC 7323 2.2: window scaling only if both sides send the option.
        let (snd_wscale, rcv_wscale) = match syn.window_scale {
            Some(s) => (s, cfg.window_scale()),
            None => (0, 0),
        };
        let mss = payload_mss(cfg, tuple.is_v4(), syn.mss, ts_enabled);
        Conn {
            tuple,
            state: State::SynReceived,
            link: [0; 6],
            tx_wait: false,
            synack_due: false,
            active: false,
            syn_due: false,
            syn_resent_early: false,
            tx_queued: false,
            iss,
            snd_una: iss,
            snd_nxt: iss + 1u32,
            snd_max: iss + 1u32,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: irs,
            snd_wl2: iss,
            snd_wscale,
            irs,
            rcv_nxt: irs + 1u32,
            rcv_adv: irs + 1u32,
            rcv_wscale,
            mss,
            syn,
            ts_enabled,
            ts_recent: syn.tsval.unwrap_or(0),
            ts_recent_stamp: now,
            ts_offset,
            sack_ok: syn.sack_permitted,
            send,
            recv,
            fin_queued: false,
            fin_sent: false,
            peer_fin: false,
            ooo_fin: None,
            cc: {
                let mut cc = Congestion::new(mss, iss);
                cc.sack = syn.sack_permitted;
                cc
            },
            rtt: RttEstimator::new(&cfg.rto),
            rtt_probe: None,
            retries: 0,
            probes_out: 0,
            acked_at: now,
            board: Scoreboard::new(iss),
            rack: Rack::new(iss),
            rtx_at: None,
            persist: false,
            delack_at: None,
            ack_due: AckDue::None,
            segs_unacked: 0,
            sack_due: false,
            rcv_clamp: usize::MAX,
            writable_below: None,
            app_deadline: None,
            state_deadline: None,
            last_rate_limited_ack: None,
            session: None,
            id: ConnId {
                slot: 0,
                generation: 0,
            },
            sent_bytes: 0,
            markers: [(0, Instant::ZERO); 4],
            marker_count: 0,
            syn_at: now,
            established_at: None,
            from_cookie: false,
            scheduled: Instant::NEVER,
        }
    }

    /// When the SYN arrived (for a connection rebuilt from a SYN cookie: when the ACK did).
    #[cfg(any(test, feature = "internals"))]
    pub fn syn_at(&self) -> Instant {
        self.syn_at
    }

    pub fn state(&self) -> State {
        self.state
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn iss(&self) -> SeqNumber {
        self.iss
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn irs(&self) -> SeqNumber {
        self.irs
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn snd_una(&self) -> SeqNumber {
        self.snd_una
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn snd_nxt(&self) -> SeqNumber {
        self.snd_nxt
    }
    pub fn snd_max(&self) -> SeqNumber {
        self.snd_max
    }
    pub fn rcv_nxt(&self) -> SeqNumber {
        self.rcv_nxt
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn snd_wnd(&self) -> u32 {
        self.snd_wnd
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn mss(&self) -> u32 {
        self.mss
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn rto(&self, cfg: &TcpConfig) -> Duration {
        self.rtt.rto(&cfg.rto)
    }
    pub fn ts_enabled(&self) -> bool {
        self.ts_enabled
    }
    pub fn ts_recent(&self) -> u32 {
        self.ts_recent
    }
    pub fn ts_offset(&self) -> u32 {
        self.ts_offset
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn sack_ok(&self) -> bool {
        self.sack_ok
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn window_scales(&self) -> (u8, u8) {
        (self.snd_wscale, self.rcv_wscale)
    }
    /// Bytes queued and not yet acknowledged.
    #[cfg(any(test, feature = "internals"))]
    pub fn send_queued(&self) -> usize {
        self.send.len()
    }
    /// In-order bytes received and not yet read by the application.
    #[cfg(any(test, feature = "internals"))]
    pub fn recv_queued(&self) -> usize {
        self.recv.len()
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn session(&self) -> Option<&S> {
        self.session.as_ref()
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn last_rate_limited_ack(&self) -> Option<Instant> {
        self.last_rate_limited_ack
    }
    /// The raw window field we would advertise now (for the TIME-WAIT record).
    pub fn window_field(&self) -> u16 {
        let wnd = self.rcv_adv.distance_from(self.rcv_nxt);
        (wnd >> self.rcv_wscale).min(65535) as u16
    }

    /// Bytes the receive buffer has allocated (charged to the worker's receive memory).
    pub fn recv_allocated(&self) -> usize {
        self.recv.allocated()
    }

    /// Gives back the buffers (for the engine's pools) once the connection is gone.
    pub fn into_buffers(self) -> (RecvBuf, SendBuf) {
        (self.recv, self.send)
    }

    /// The earliest time `on_timer` must run.
    pub fn next_deadline(&self) -> Instant {
        let mut t = Instant::NEVER;
        for d in [
            self.rtx_at,
            self.delack_at,
            self.app_deadline,
            self.state_deadline,
            self.rack.deadline(),
        ]
        .into_iter()
        .flatten()
        {
            t = t.min(d);
        }
        t
    }

    fn fin_acked(&self) -> bool {
        self.fin_sent && self.snd_una.gt(self.fin_seq_sent())
    }

    /// Once the FIN is sent, nothing is queued behind it, so its sequence is fixed.
    fn fin_seq_sent(&self) -> SeqNumber {
        self.snd_max - 1u32
    }

    /// RFC 7323 4.3 (3): our TSval; the clock ticks in milliseconds, offset per connection.
    fn tsval(&self, now: Instant) -> u32 {
        (now.as_millis() as u32).wrapping_add(self.ts_offset)
    }

    fn initial_window(&self, cfg: &TcpConfig) -> u16 {
        initial_window(cfg, self.tuple.is_v4(), self.ts_enabled)
    }

    /// The window to advertise now, as the raw field. RFC 9293 3.8.6.2.2: the right edge never
    /// moves left, and (receiver silly-window avoidance) it moves right only by at least
    /// min(buffer/2, MSS).
    fn window_to_advertise(&mut self) -> u16 {
        // Under memory pressure the window offers no more than the guaranteed share (and,
        // below, never retracts what was offered: the right edge stays put).
        let free = self
            .recv
            .window()
            .min(self.rcv_clamp.saturating_sub(self.recv.len())) as u32;
        let edge_now = self.rcv_nxt + free;
        let step = (self.recv.capacity() as u32 / 2).min(self.mss);
        let edge = if edge_now.ge(self.rcv_adv + step) || edge_now.gt(self.rcv_adv) && free >= step
        {
            edge_now
        } else {
            self.rcv_adv.max(self.rcv_nxt)
        };
        let wnd = edge.distance_from(self.rcv_nxt);
        // Rounded up, as Linux's tcp_select_window aligns it: rounding down would move the
        // right edge left by up to 2^scale - 1 bytes whenever RCV.NXT moves by an odd amount.
        let unit = (1u32 << self.rcv_wscale) - 1;
        let field = (wnd.saturating_add(unit) >> self.rcv_wscale).min(65535);
        let advertised = self.rcv_nxt + (field << self.rcv_wscale);
        if advertised.gt(self.rcv_adv) {
            self.rcv_adv = advertised;
        }
        field as u16
    }

    /// The receive window used in the acceptability test: what was last advertised.
    fn rcv_wnd(&self) -> u32 {
        self.rcv_adv.distance_from(self.rcv_nxt)
    }

    fn options_for_data(&self, now: Instant, with_sack: bool) -> TcpOptions {
        let mut o = TcpOptions::default();
        if self.ts_enabled {
            o.timestamps = Some((self.tsval(now), self.ts_recent));
        }
        if with_sack && self.sack_ok {
            // RFC 2018 4: the first block is the one that changed most recently; we report
            // the parked ranges in order, which includes it.
            let limit = if self.ts_enabled { 3 } else { 4 };
            for (i, &(s, e)) in self.recv.ooo_ranges().iter().take(limit).enumerate() {
                o.sack_blocks[i] = SackBlock {
                    left: (self.rcv_nxt + s).raw(),
                    right: (self.rcv_nxt + e).raw(),
                };
                o.sack_count = i as u8 + 1;
            }
        }
        o
    }

    /// Data bytes a segment may carry now: the MSS less the SACK blocks the next segment will
    /// carry (RFC 6691, RFC 9293 3.7.1: options come out of the data; timestamps are already
    /// taken off `mss`).
    fn data_mss(&self) -> u32 {
        if !(self.sack_due && self.sack_ok) {
            return self.mss;
        }
        let limit = if self.ts_enabled { 3 } else { 4 };
        let blocks = self.recv.ooo_ranges().len().min(limit) as u32;
        let extra = if blocks > 0 { 4 + 8 * blocks } else { 0 };
        self.mss.saturating_sub(extra).max(1)
    }

    fn header(&mut self, seq: SeqNumber, flags: TcpFlags, now: Instant) -> SegmentOut {
        let window = self.window_to_advertise();
        let with_sack = self.sack_due;
        SegmentOut {
            tuple: self.tuple,
            link: self.link,
            seq,
            ack: self.rcv_nxt,
            flags,
            window,
            options: self.options_for_data(now, with_sack),
        }
    }

    /// Whether output waits for transmit room.
    pub fn wants_tx(&self) -> bool {
        self.tx_wait
    }

    /// A send found no room: wait for it (the engine queues the connection).
    fn defer<A: App, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) {
        if !self.tx_wait {
            self.tx_wait = true;
            cx.counters.tx_deferred += 1;
        }
    }

    /// Transmit room is back: send what waited (the SYN/ACK, data, FIN, a pending ACK, a
    /// retransmission whose timer stayed due). Called by the engine's transmit-room queue.
    pub fn on_tx_room<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
    ) -> Next {
        self.tx_wait = false;
        if self.next_deadline() <= cx.now {
            return self.on_timer(cx);
        }
        // A recovery that stopped for want of room goes on where NextSeg says.
        if self.sack_ok && self.cc.in_recovery && self.snd_max.gt(self.snd_una) && !self.persist {
            self.sack_recovery(cx, false);
        }
        self.output(cx)
    }

    /// Any segment with ACK set acknowledges everything received.
    fn acked_now(&mut self) {
        self.ack_due = AckDue::None;
        self.delack_at = None;
        self.segs_unacked = 0;
        self.sack_due = false;
    }

    /// Sends the SYN/ACK; false (and nothing changed) when there is no transmit room.
    fn send_syn_ack<A: App, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) -> bool {
        if !cx.has_room() {
            return false;
        }
        let mut o = TcpOptions {
            mss: Some(cx.cfg.mss_for(self.tuple.is_v4())),
            ..TcpOptions::default()
        };
        // RFC 7323 / RFC 2018: answer only the options the client offered.
        if self.syn.window_scale.is_some() {
            o.window_scale = Some(self.rcv_wscale);
        }
        o.sack_permitted = self.syn.sack_permitted;
        if self.ts_enabled {
            o.timestamps = Some((self.tsval(cx.now), self.ts_recent));
        }
        let window = self.initial_window(cx.cfg);
        self.rcv_adv = self.rcv_nxt + window as u32;
        let seg = SegmentOut {
            tuple: self.tuple,
            link: self.link,
            seq: self.iss,
            ack: self.rcv_nxt,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window,
            options: o,
        };
        cx.counters.synacks_sent += 1;
        cx.emit(&seg, EMPTY);
        true
    }

    /// Sends our SYN (RFC 9293 3.5), offering what Linux offers: MSS, window scale, SACK and
    /// timestamps; false (and nothing changed) when there is no transmit room.
    fn send_syn<A: App, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) -> bool {
        if !cx.has_room() {
            return false;
        }
        let v4 = self.tuple.is_v4();
        let o = TcpOptions {
            mss: Some(cx.cfg.mss_for(v4)),
            window_scale: Some(cx.cfg.window_scale()),
            sack_permitted: true,
            timestamps: Some((self.tsval(cx.now), 0)),
            ..TcpOptions::default()
        };
        let seg = SegmentOut {
            tuple: self.tuple,
            link: self.link,
            seq: self.iss,
            ack: SeqNumber::new(0),
            flags: TcpFlags::SYN,
            window: initial_window(cx.cfg, v4, true),
            options: o,
        };
        cx.emit(&seg, EMPTY);
        true
    }

    /// Takes the options of the peer's SYN (or SYN/ACK) after we sent ours: what both
    /// offered is used (RFC 7323 2.2, RFC 2018, RFC 9293 3.7.1).
    fn adopt_peer_syn(&mut self, seg: &SegmentIn<'_>, cfg: &TcpConfig) {
        let opts = SynOptions::from_segment(&seg.options);
        self.syn = opts;
        self.ts_enabled = opts.tsval.is_some();
        self.ts_recent = opts.tsval.unwrap_or(0);
        (self.snd_wscale, self.rcv_wscale) = match opts.window_scale {
            Some(s) => (s, cfg.window_scale()),
            None => (0, 0),
        };
        self.sack_ok = opts.sack_permitted;
        self.mss = payload_mss(cfg, self.tuple.is_v4(), opts.mss, self.ts_enabled);
        self.cc = Congestion::new(self.mss, self.iss);
        self.cc.sack = opts.sack_permitted;
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1u32;
        // Our SYN offered the initial window, unscaled.
        self.rcv_adv = self.rcv_nxt + initial_window(cfg, self.tuple.is_v4(), true) as u32;
        self.snd_wl1 = seg.seq;
    }

    /// A bare ACK `<SEQ=SND.NXT><ACK=RCV.NXT>`. Without transmit room the ACK stays pending
    /// (sent when room returns), not lost.
    fn send_ack<A: App, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) {
        if !cx.has_room() {
            self.ack_due = AckDue::Now;
            self.defer(cx);
            return;
        }
        let seg = self.header(self.snd_nxt, TcpFlags::ACK, cx.now);
        self.acked_now();
        cx.emit(&seg, EMPTY);
    }

    /// An ACK answering an unacceptable segment, a challenge ACK (RFC 5961), or a PAWS reject:
    /// at most one per `ack_rate_limit`, except for segments that carry data or FIN, which
    /// are always answered (Linux's tcp_oow_rate_limited).
    fn send_rate_limited_ack<A: App, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        seg: &SegmentIn<'_>,
        challenge: bool,
    ) {
        let carries_data = (!seg.payload.is_empty() || seg.flags.fin()) && !seg.flags.syn();
        if challenge || !carries_data {
            if let Some(last) = self.last_rate_limited_ack
                && cx.now.saturating_since(last) < cx.cfg.ack_rate_limit
            {
                cx.counters.acks_rate_limited += 1;
                return;
            }
            self.last_rate_limited_ack = Some(cx.now);
        }
        if challenge {
            cx.counters.challenge_acks += 1;
        }
        if self.state == State::SynReceived {
            // Not synchronized yet: the peer still waits for our SYN/ACK. Without room this
            // answer is dropped (the peer retransmits).
            if !self.send_syn_ack(cx) {
                cx.counters.drop(TcpDrop::NoTxRoom);
            }
        } else {
            self.send_ack(cx);
        }
    }

    /// Sends `<SEQ=SND.NXT><CTL=RST,ACK>` and gives up the connection.
    fn abort<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        reason: CloseReason,
    ) -> Next {
        if cx.has_room() {
            let seg = self.header(self.snd_nxt, TcpFlags::RST | TcpFlags::ACK, cx.now);
            cx.emit(&seg, EMPTY);
        } else {
            // The connection is gone either way; the peer's next segment meets a RST.
            cx.counters.drop(TcpDrop::NoTxRoom);
        }
        self.closed(cx, reason)
    }

    /// The connection is over: tell the application once.
    fn closed<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        reason: CloseReason,
    ) -> Next {
        match reason {
            CloseReason::Normal => cx.counters.closed_normal += 1,
            CloseReason::Reset => cx.counters.closed_reset += 1,
            CloseReason::TimedOut => cx.counters.closed_timeout += 1,
            CloseReason::Aborted => cx.counters.closed_aborted += 1,
        }
        self.state = State::Closed;
        if self.active && self.session.is_none() && self.established_at.is_none() {
            // An active open that never completed: the application hears of it by its id.
            cx.counters.connect_failed += 1;
            cx.app.on_connect_failed(self.id, reason, cx.now);
            return Next::Remove(reason);
        }
        self.release_session(cx, reason);
        Next::Remove(reason)
    }

    fn release_session<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        reason: CloseReason,
    ) {
        if let Some(s) = self.session.take() {
            cx.app.on_close(s, reason, cx.now);
        }
    }

    /// RFC 9293 3.10.7.4, first check: is the segment acceptable for the receive window?
    fn acceptable(&self, seg: &SegmentIn<'_>) -> bool {
        let len = seg.seg_len();
        let wnd = self.rcv_wnd();
        let nxt = self.rcv_nxt;
        match (len, wnd) {
            (0, 0) => seg.seq == nxt,
            (0, _) => seg.seq.in_range(nxt, nxt + wnd),
            (_, 0) => false,
            (_, _) => {
                seg.seq.in_range(nxt, nxt + wnd) || (seg.seq + (len - 1)).in_range(nxt, nxt + wnd)
            }
        }
    }

    /// Handles one arriving segment.
    pub fn on_segment<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        seg: &SegmentIn<'_>,
        cx: &mut Ctx<'_, A, K>,
    ) -> Next {
        self.note_memory(cx);
        if self.state == State::SynSent {
            return self.on_segment_syn_sent(seg, cx);
        }
        let mut just_opened = false;
        if self.state == State::SynReceived {
            // `None`: the handshake completed; go on with the same segment.
            if let Some(next) = self.on_segment_syn_received(seg, cx) {
                return next;
            }
            // The application hears from a new connection at once (even without data), so
            // that it can set its first deadline.
            just_opened = true;
        } else {
            // RFC 7323 5.3 (R1): PAWS, before the window check.
            if self.paws_rejects(seg, cx.now) {
                cx.counters.drop(TcpDrop::Paws);
                if !seg.flags.rst() {
                    self.send_rate_limited_ack(cx, seg, false);
                }
                return Next::Keep;
            }
            // First: sequence number.
            if !self.acceptable(seg) {
                cx.counters.drop(TcpDrop::OutOfWindow);
                if !seg.flags.rst() {
                    // RFC 9293: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, then drop.
                    self.send_rate_limited_ack(cx, seg, false);
                }
                return Next::Keep;
            }
            // Second: RST (RFC 5961 3.2).
            if seg.flags.rst() {
                // Linux also accepts RCV.NXT - 1 once the peer's FIN was taken.
                let exact =
                    seg.seq == self.rcv_nxt || (self.peer_fin && seg.seq == self.rcv_nxt - 1u32);
                if exact {
                    cx.counters.drop(TcpDrop::Rst);
                    // RFC 9293: CLOSING, LAST-ACK, TIME-WAIT just close; the others tell the
                    // user "connection reset".
                    return self.closed(cx, CloseReason::Reset);
                }
                self.send_rate_limited_ack(cx, seg, true);
                cx.counters.drop(TcpDrop::Rst);
                return Next::Keep;
            }
            // Fourth: SYN in a synchronized state gets a challenge ACK (RFC 5961 4.2).
            if seg.flags.syn() {
                self.send_rate_limited_ack(cx, seg, true);
                cx.counters.drop(TcpDrop::BadFlags);
                return Next::Keep;
            }
        }

        // Fifth: the ACK field.
        if !seg.flags.ack() {
            cx.counters.drop(TcpDrop::NoAck);
            return Next::Keep;
        }
        // RFC 5961 5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT].
        if seg.ack.gt(self.snd_max) || seg.ack.lt(self.snd_una - self.max_snd_wnd.max(1)) {
            cx.counters.drop(TcpDrop::BadAck);
            self.send_rate_limited_ack(cx, seg, true);
            return Next::Keep;
        }
        // An acceptable segment: replies go where it came from (a neighbour entry's update).
        self.link = seg.link;
        self.update_ts_recent(seg, cx.now);
        self.process_ack(seg, cx);
        match self.state {
            State::FinWait1 if self.fin_acked() => {
                // Our FIN is acknowledged.
                self.state = State::FinWait2;
                self.state_deadline = Some(cx.now + cx.cfg.fin_wait_2_timeout);
            }
            State::Closing if self.fin_acked() => {
                self.state = State::TimeWait;
                return self.enter_time_wait(cx);
            }
            State::LastAck if self.fin_acked() => {
                return self.closed(cx, CloseReason::Normal);
            }
            _ => {}
        }

        // Seventh: segment text. Sixth (URG) is not supported: the pointer is ignored.
        let mut readable = self.take_text(seg, cx) | just_opened;
        // The application waits for room in its send queue: call it once there is.
        let writable = self
            .writable_below
            .is_some_and(|mark| self.send.len() <= mark);
        if writable {
            self.writable_below = None;
        }

        // Eighth: FIN.
        if seg.flags.fin() {
            let fin_seq = seg.seq + seg.payload.len();
            if fin_seq == self.rcv_nxt && self.state.can_receive() {
                readable |= self.take_fin(cx);
            } else if fin_seq.gt(self.rcv_nxt) && self.state.can_receive() {
                // FIN behind a hole: remember it until the hole fills.
                self.ooo_fin = Some(fin_seq);
            }
        }
        if let Some(f) = self.ooo_fin
            && f == self.rcv_nxt
            && self.state.can_receive()
        {
            readable |= self.take_fin(cx);
        }
        if self.state == State::TimeWait {
            self.deliver(cx, readable);
            return self.enter_time_wait(cx);
        }
        if readable && let Some(next) = self.deliver(cx, true) {
            return next;
        }
        if writable
            && !self.fin_queued
            && let Some(next) = self.call_app(cx, Callback::Writable)
        {
            return next;
        }
        self.output(cx)
    }

    /// SYN-RECEIVED (RFC 9293 3.10.7.4, Linux's tcp_check_req). Returns `None` when the
    /// handshake completed and the segment should be processed further as ESTABLISHED.
    fn on_segment_syn_received<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        seg: &SegmentIn<'_>,
        cx: &mut Ctx<'_, A, K>,
    ) -> Option<Next> {
        // A retransmitted SYN: the same SYN/ACK again, same ISN (rate-limited like Linux).
        if seg.flags.syn() && !seg.flags.ack() && !seg.flags.rst() && seg.seq == self.irs {
            if let Some(last) = self.last_rate_limited_ack
                && cx.now.saturating_since(last) < cx.cfg.ack_rate_limit
            {
                cx.counters.acks_rate_limited += 1;
                return Some(Next::Keep);
            }
            self.last_rate_limited_ack = Some(cx.now);
            if !self.send_syn_ack(cx) {
                cx.counters.drop(TcpDrop::NoTxRoom);
            } else if self.synack_due {
                // The first SYN/ACK, which waited for room.
                self.synack_due = false;
                self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
            } else {
                cx.counters.synack_retransmits += 1;
            }
            return Some(Next::Keep);
        }
        if self.paws_rejects(seg, cx.now) {
            cx.counters.drop(TcpDrop::Paws);
            if !seg.flags.rst() {
                self.send_rate_limited_ack(cx, seg, false);
            }
            return Some(Next::Keep);
        }
        if !self.acceptable(seg) {
            cx.counters.drop(TcpDrop::OutOfWindow);
            if !seg.flags.rst() {
                self.send_rate_limited_ack(cx, seg, false);
            }
            return Some(Next::Keep);
        }
        if seg.flags.rst() {
            // Passive open: back to LISTEN, i.e. forget the half-open connection.
            cx.counters.drop(TcpDrop::Rst);
            return Some(self.closed(cx, CloseReason::Reset));
        }
        if seg.flags.syn() {
            // RFC 9293: a SYN in SYN-RECEIVED of a passive open returns to LISTEN.
            cx.counters.drop(TcpDrop::BadFlags);
            return Some(self.closed(cx, CloseReason::Reset));
        }
        if !seg.flags.ack() {
            cx.counters.drop(TcpDrop::NoAck);
            return Some(Next::Keep);
        }
        if seg.ack != self.iss + 1u32 {
            // RFC 9293: an unacceptable ACK in SYN-RECEIVED gets <SEQ=SEG.ACK><CTL=RST>.
            cx.counters.drop(TcpDrop::BadAck);
            let rst = SegmentOut {
                tuple: self.tuple,
                link: seg.link,
                seq: seg.ack,
                ack: SeqNumber::new(0),
                flags: TcpFlags::RST,
                window: 0,
                options: TcpOptions::default(),
            };
            if cx.has_room() {
                cx.emit(&rst, EMPTY);
            } else {
                cx.counters.drop(TcpDrop::NoTxRoom);
            }
            return Some(Next::Keep);
        }
        self.establish(seg, cx)
    }

    /// SYN-SENT (RFC 9293 3.10.7.3; Linux's tcp_rcv_synsent_state_process).
    fn on_segment_syn_sent<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        seg: &SegmentIn<'_>,
        cx: &mut Ctx<'_, A, K>,
    ) -> Next {
        let f = seg.flags;
        // First: the ACK. One that does not acknowledge our SYN gets <SEQ=SEG.ACK><CTL=RST>
        // (unless it is a RST itself) and is dropped.
        let ack_ok = f.ack() && seg.ack.gt(self.iss) && !seg.ack.gt(self.snd_max);
        if f.ack() && !ack_ok {
            cx.counters.drop(TcpDrop::BadAck);
            if !f.rst() {
                if cx.has_room() {
                    let rst = SegmentOut {
                        tuple: self.tuple,
                        link: seg.link,
                        seq: seg.ack,
                        ack: SeqNumber::new(0),
                        flags: TcpFlags::RST,
                        window: 0,
                        options: TcpOptions::default(),
                    };
                    cx.counters.resets_sent += 1;
                    cx.emit(&rst, EMPTY);
                    // Such an ACK is most often the peer's TIME-WAIT of an earlier connection
                    // on this 4-tuple, whose PAWS check took our SYN for an old duplicate
                    // (another stack's, or an earlier run's, timestamps): our RST ends that
                    // TIME-WAIT (RFC 1337's assassination, which Linux allows), so the SYN
                    // goes again at once instead of after the 1 s RTO. Once per connection,
                    // so a peer that keeps answering so (tcp_rfc1337 = 1) waits for the timer.
                    if !self.syn_resent_early && cx.has_room() {
                        self.syn_resent_early = true;
                        cx.counters.syn_retransmits += 1;
                        self.send_syn(cx);
                    }
                } else {
                    cx.counters.drop(TcpDrop::NoTxRoom);
                }
            }
            return Next::Keep;
        }
        // Second: a RST is acceptable only with an ACK of our SYN: the peer refused us.
        if f.rst() {
            cx.counters.drop(TcpDrop::Rst);
            if ack_ok {
                return self.closed(cx, CloseReason::Reset);
            }
            return Next::Keep;
        }
        if !f.syn() {
            // Neither SYN nor RST: dropped.
            cx.counters.drop(TcpDrop::NoAck);
            return Next::Keep;
        }
        self.adopt_peer_syn(seg, cx.cfg);
        self.link = seg.link;
        if !ack_ok {
            // Simultaneous open: SYN-RECEIVED, and our SYN again with the ACK of theirs.
            // Data on the SYN is not taken (the peer sends it again once synchronized).
            self.state = State::SynReceived;
            self.rtx_at = None;
            self.retries = 0;
            if self.send_syn_ack(cx) {
                self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
            } else {
                self.synack_due = true;
                self.defer(cx);
            }
            return Next::Keep;
        }
        // Our SYN is acknowledged: ESTABLISHED. SND.WND from the SYN/ACK's window, unscaled
        // (RFC 7323 2.2).
        self.state = State::Established;
        self.snd_una = seg.ack;
        self.snd_wnd = seg.window as u32;
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl2 = seg.ack;
        self.rtx_at = None;
        if self.retries == 0 {
            // Karn: the SYN went once, so the handshake is an RTT sample.
            let rtt = cx.now.saturating_since(self.syn_at);
            self.rtt.sample(rtt, &cx.cfg.rto);
        } else {
            self.rtt.reset_backoff();
        }
        self.retries = 0;
        self.acked_at = cx.now;
        self.established_at = Some(cx.now);
        cx.counters.established += 1;
        // The ACK of their SYN goes out now, on the first data if the application sends at
        // once. Data riding on the SYN/ACK is not taken (no TCP Fast Open): the peer resends.
        self.ack_due = AckDue::Now;
        match cx
            .app
            .on_open(&ConnInfo::new(self.id, self.tuple, true), cx.now)
        {
            Some(session) => self.session = Some(session),
            None => {
                cx.counters.drop(TcpDrop::Refused);
                return self.abort(cx, CloseReason::Aborted);
            }
        }
        if let Some(next) = self.deliver(cx, true) {
            return next;
        }
        self.output(cx)
    }

    /// SYN-RECEIVED -> ESTABLISHED: the final ACK of the handshake arrived.
    fn establish<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        seg: &SegmentIn<'_>,
        cx: &mut Ctx<'_, A, K>,
    ) -> Option<Next> {
        self.state = State::Established;
        self.snd_una = self.iss + 1u32;
        // RFC 9293: SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ, SND.WL2 <- SEG.ACK.
        self.snd_wnd = (seg.window as u32) << self.snd_wscale;
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        self.rtx_at = None;
        self.retries = 0;
        if self.from_cookie {
            // No state was kept for the SYN/ACK: no RTT sample (Linux takes none either).
        } else if self.rtt.backoffs() == 0 {
            // RFC 6298 (2): the SYN/ACK went once, so the handshake is a valid RTT sample.
            let rtt = cx.now.saturating_since(self.syn_at);
            self.rtt.sample(rtt, &cx.cfg.rto);
        } else {
            // RFC 6298 5.7: the SYN/ACK was retransmitted; start data at 3 s... Linux
            // resets to the initial RTO instead. So do we.
            self.rtt.reset_backoff();
        }
        self.established_at = Some(cx.now);
        cx.counters.established += 1;
        match cx
            .app
            .on_open(&ConnInfo::new(self.id, self.tuple, self.active), cx.now)
        {
            Some(session) => {
                self.session = Some(session);
                None
            }
            None => {
                // The application refused it: reset, as Linux does for a connection an
                // accept filter rejects; no session, so no `on_close`.
                cx.counters.drop(TcpDrop::Refused);
                if cx.has_room() {
                    let rst = self.header(self.snd_nxt, TcpFlags::RST | TcpFlags::ACK, cx.now);
                    cx.emit(&rst, EMPTY);
                }
                self.state = State::Closed;
                Some(Next::Remove(CloseReason::Aborted))
            }
        }
    }

    /// RFC 7323 5.3: reject a segment whose TSval is older than TS.Recent (RST excepted by
    /// the caller's checks: PAWS applies to RSTs too, Linux answers none).
    fn paws_rejects(&self, seg: &SegmentIn<'_>, now: Instant) -> bool {
        if !self.ts_enabled || seg.flags.rst() {
            return false;
        }
        match seg.options.timestamps {
            Some((tsval, _)) => {
                (tsval.wrapping_sub(self.ts_recent) as i32) < 0 && !self.ts_recent_expired(now)
            }
            None => false,
        }
    }

    /// RFC 7323 5.5: after an idle time longer than 24 days the peer's timestamp clock may
    /// have wrapped past TS.Recent's sign bit, so TS.Recent is no longer trusted (Linux's
    /// TCP_PAWS_24DAYS, measured from `ts_recent_stamp`).
    fn ts_recent_expired(&self, now: Instant) -> bool {
        now.saturating_since(self.ts_recent_stamp) >= PAWS_IDLE_LIMIT
    }

    /// RFC 7323 4.3 (2): TS.Recent <- SEG.TSval if SEG.SEQ <= Last.ACK.sent; an older TSval
    /// replaces it too once TS.Recent has expired (RFC 7323 5.5, Linux's tcp_paws_check).
    fn update_ts_recent(&mut self, seg: &SegmentIn<'_>, now: Instant) {
        if !self.ts_enabled {
            return;
        }
        if let Some((tsval, _)) = seg.options.timestamps
            && seg.seq.le(self.rcv_nxt)
            && ((tsval.wrapping_sub(self.ts_recent) as i32) >= 0 || self.ts_recent_expired(now))
        {
            self.ts_recent = tsval;
            self.ts_recent_stamp = now;
        }
    }

    /// RFC 9293 3.10.7.4, fifth check, ESTABLISHED and later: advance SND.UNA, update the
    /// window, feed congestion control, the RTT estimate, the SACK scoreboard (RFC 6675) and
    /// RACK-TLP (RFC 8985).
    fn process_ack<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        seg: &SegmentIn<'_>,
        cx: &mut Ctx<'_, A, K>,
    ) {
        let ack = seg.ack;
        let new_wnd = if seg.flags.syn() {
            seg.window as u32
        } else {
            (seg.window as u32) << self.snd_wscale
        };
        let window_changed = new_wnd != self.snd_wnd;
        let mut sack = SackUpdate::default();
        if self.sack_ok && ack.ge(self.snd_una) {
            let blocks = seg
                .options
                .sack()
                .iter()
                .map(|b| (SeqNumber::new(b.left), SeqNumber::new(b.right)));
            sack = self.board.on_ack(ack, self.snd_max, blocks.clone());
            self.rack.on_ack(ack, blocks, cx.now);
        }
        let advanced = ack.gt(self.snd_una);
        let mut dupack = false;
        let mut entered = false;
        if advanced {
            self.acked_at = cx.now;
            let acked = ack - self.snd_una;
            let acked = acked as u32;
            let flight = self.snd_max.distance_from(self.snd_una);
            // The FIN takes one sequence number but no byte of the buffer.
            let fin_in = self.fin_sent && ack.gt(self.fin_seq_sent());
            let data = acked - fin_in as u32;
            self.send.ack(data as usize);
            self.snd_una = ack;
            if self.snd_nxt.lt(ack) {
                self.snd_nxt = ack;
            }
            // RFC 6298 (Karn): only segments sent once are timed.
            if let Some((end, sent)) = self.rtt_probe
                && ack.ge(end)
            {
                self.rtt.sample(cx.now.saturating_since(sent), &cx.cfg.rto);
                self.rtt_probe = None;
            }
            self.rtt.reset_backoff();
            self.retries = 0;
            if self.cc.on_new_ack(acked, ack, flight) == AckAction::RetransmitFirst {
                // NewReno partial ACK (no SACK): the next hole.
                self.retransmit_first(cx);
            }
            // RFC 6298 (5.2, 5.3): stop the timer when all is acked, else restart it.
            self.persist = false;
            self.rtx_at = if self.snd_una == self.snd_max {
                None
            } else {
                Some(cx.now + self.rtt.rto(&cx.cfg.rto))
            };
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.flags.fin()
            && !window_changed
            && self.snd_max.gt(self.snd_una)
        {
            // RFC 5681 2: a duplicate acknowledgment.
            dupack = true;
            let flight = self.snd_max.distance_from(self.snd_una);
            // With SACK, duplicate ACKs that report new blocks show a new loss unambiguously,
            // so RFC 6582's `recover` guard is not needed (RFC 6675).
            let sack_evidence = self.sack_ok && !self.board.is_empty();
            if self
                .cc
                .on_dup_ack(self.snd_una, self.snd_max, flight, sack_evidence)
                == AckAction::RetransmitFirst
            {
                cx.counters.fast_retransmits += 1;
                if self.sack_ok {
                    entered = true;
                } else {
                    self.retransmit_first(cx);
                }
            }
        }
        if self.sack_ok {
            // RFC 8985 7.4: did a tail loss probe repair a loss?
            if self
                .rack
                .on_ack_for_probe(ack, advanced, dupack, sack.dsack)
                == TlpOutcome::Repaired
                && !self.cc.in_recovery
            {
                self.cc.on_probe_repaired_loss();
            }
        }
        // RFC 9293 3.10.7.4: update the send window if the segment is not older than the one
        // that last set it.
        if ack.ge(self.snd_una) {
            // Linux's tcp_ack: any acceptable ACK answers the zero-window probes sent so far.
            self.probes_out = 0;
        }
        if ack.ge(self.snd_una)
            && (self.snd_wl1.lt(seg.seq) || (self.snd_wl1 == seg.seq && self.snd_wl2.le(ack)))
        {
            let opened = new_wnd > self.snd_wnd;
            self.snd_wnd = new_wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            self.max_snd_wnd = self.max_snd_wnd.max(new_wnd);
            if opened && self.persist {
                // The window grew: data resumes at once if it now may (output() runs next),
                // else transmit() arms the persist timer again from the base timeout
                // (Linux's tcp_ack_probe).
                self.persist = false;
                self.rtx_at = None;
                self.rtt.reset_backoff();
            }
        }
        // Without SACKed data nothing can be found lost (a cumulative ACK delivers all below
        // it), so the common in-order ACK skips recovery entirely.
        if self.sack_ok
            && self.snd_max.gt(self.snd_una)
            && !self.persist
            && (entered || self.cc.in_recovery || !self.board.is_empty())
        {
            self.sack_recovery(cx, entered);
        }
        self.arm_probe(cx);
    }

    /// RFC 6675 5 and RFC 8985 6.2: runs RACK's loss detection, enters recovery when the
    /// first segment is lost, then sends what the scoreboard's pipe allows (step (C)):
    /// several retransmissions per ACK as cwnd allows, new data when nothing is lost.
    fn sack_recovery<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        mut entered: bool,
    ) {
        let mss = self.mss;
        let srtt = self.rtt.srtt().unwrap_or(cx.cfg.rto.initial);
        let sacked_segs = self.board.sacked_bytes() / mss.max(1);
        if let Some((lost, n)) =
            self.rack
                .detect_loss(cx.now, srtt, self.cc.in_recovery, sacked_segs)
        {
            cx.counters.rack_losses += n as u64;
            self.board.mark_lost_below(lost);
        }
        if !self.cc.in_recovery && !self.cc.in_loss && self.board.is_lost(self.snd_una, mss) {
            // RFC 6675 5: IsLost(HighACK + 1) (DupThresh SACKed above it, or RACK).
            let flight = self.snd_max.distance_from(self.snd_una);
            self.cc.enter_recovery(flight, self.snd_max);
            cx.counters.fast_retransmits += 1;
            entered = true;
        }
        if !self.cc.in_recovery || !self.cc.sack {
            return;
        }
        let recover = self.cc.recover;
        if entered {
            // RFC 6675 5 (4.3): retransmit the first segment presumed dropped.
            self.rack.cancel_pto();
            self.board.on_recovery_start(self.snd_una);
            let gap = self
                .board
                .next_sacked_after(self.snd_una)
                .map_or(u32::MAX, |s| s.distance_from(self.snd_una));
            let n = self.resend(cx, 0, gap.min(self.data_mss()) as usize);
            self.board.on_retransmit(self.snd_una, n, false, recover);
        }
        // RFC 6675 5 (C): while cwnd - pipe >= 1 SMSS, send what NextSeg() says (bounded).
        for _ in 0..64 {
            let una = self.snd_una;
            let pipe = self.board.pipe(una, self.snd_max, mss);
            if pipe.saturating_add(mss) > self.cc.cwnd {
                break;
            }
            let outstanding = self.snd_max.distance_from(una) as usize;
            let sent_data = outstanding.min(self.send.len());
            let new_data = self.snd_nxt == self.snd_max && self.new_data_room() > 0;
            match self
                .board
                .next_seg(una, una + sent_data, self.data_mss(), new_data, recover)
            {
                NextSeg::Retransmit { seq, len, rescue } => {
                    let offset = seq.distance_from(una) as usize;
                    let n = self.resend(cx, offset, len as usize);
                    if n == 0 {
                        break;
                    }
                    self.board.on_retransmit(seq, n, rescue, recover);
                }
                NextSeg::NewData => {
                    let room = self.new_data_room();
                    let offset = outstanding;
                    let avail = self.send.len() - offset;
                    let len = room.min(self.data_mss() as usize);
                    let fin = self.fin_queued && len == avail;
                    self.send_data(cx, offset, len, fin);
                }
                NextSeg::Nothing => break,
            }
        }
    }

    /// New bytes the peer's window allows beyond SND.MAX now (0 once the FIN is sent).
    fn new_data_room(&self) -> usize {
        if self.fin_sent {
            return 0;
        }
        let outstanding = self.snd_max.distance_from(self.snd_una) as usize;
        let avail = self.send.len().saturating_sub(outstanding);
        let wnd = (self.snd_wnd as usize).saturating_sub(outstanding);
        avail.min(wnd)
    }

    /// RFC 8985 7.2: (re)arms the tail loss probe after sending new data or on an ACK, when
    /// the peer does SACK, data is outstanding, and neither recovery nor an RTO is under way.
    fn arm_probe<A: App<Session = S>, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) {
        let srtt = self.rtt.srtt();
        let armable = self.sack_ok
            && !self.persist
            && !self.cc.in_recovery
            && !self.cc.in_loss
            && self.retries == 0
            && self.snd_max.gt(self.snd_una)
            && !matches!(self.state, State::SynReceived);
        match srtt {
            Some(srtt) if armable => {
                let one_segment = self.snd_max.distance_from(self.snd_una) <= self.mss + 1;
                self.rack
                    .arm_pto(cx.now, srtt, one_segment, cx.cfg.tlp_ack_delay, self.rtx_at);
            }
            _ => self.rack.cancel_pto(),
        }
    }

    /// RFC 8985 7.3: the probe timeout fired. Send one new segment if there is one and the
    /// peer's window allows it, else retransmit the last segment; then arm the RTO.
    fn on_probe_timeout<A: App<Session = S>, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) {
        if self.snd_una == self.snd_max || self.persist || self.cc.in_recovery {
            return;
        }
        let outstanding = self.snd_max.distance_from(self.snd_una) as usize;
        let room = self.new_data_room();
        if room > 0 && self.snd_nxt == self.snd_max {
            let avail = self.send.len() - outstanding;
            let len = room.min(self.data_mss() as usize);
            let fin = self.fin_queued && len == avail;
            self.send_data(cx, outstanding, len, fin);
            self.rack.on_probe_sent(self.snd_max, false);
        } else {
            let data = outstanding.min(self.send.len());
            let len = data.min(self.data_mss() as usize);
            self.resend(cx, data - len, len);
            self.rack.on_probe_sent(self.snd_max, true);
        }
        cx.counters.tlp_probes += 1;
        self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
    }

    /// Resends `len` bytes at `offset` from SND.UNA (never past what was sent), with the FIN
    /// if they end where it was sent. Returns the data bytes sent.
    fn resend<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        offset: usize,
        len: usize,
    ) -> u32 {
        let outstanding = self.snd_max.distance_from(self.snd_una) as usize;
        let data = outstanding.min(self.send.len());
        let len = len
            .min(data.saturating_sub(offset))
            .min(self.data_mss() as usize);
        let fin = self.fin_sent && offset + len == data && outstanding > data;
        if len == 0 && !fin {
            return 0;
        }
        if !cx.has_room() {
            self.defer(cx);
            return 0;
        }
        let mut flags = TcpFlags::ACK;
        if fin {
            flags |= TcpFlags::FIN;
        }
        if len > 0 && offset + len == data {
            flags |= TcpFlags::PSH;
        }
        let seq = self.snd_una + offset;
        let hdr = self.header(seq, flags, cx.now);
        self.acked_now();
        cx.emit(&hdr, &self.send.range(offset, len));
        cx.counters.retransmits += 1;
        let end = seq + len + fin as usize;
        self.rack.on_send(seq, end, cx.now, false);
        // Karn: the timed segment may have been resent.
        if let Some((e, _)) = self.rtt_probe
            && e.gt(seq)
        {
            self.rtt_probe = None;
        }
        len as u32
    }

    /// Resends the first unacknowledged segment (fast retransmit, NewReno partial ACK).
    fn retransmit_first<A: App<Session = S>, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) {
        let len = self.data_mss() as usize;
        self.resend(cx, 0, len);
    }

    /// Seventh check: place the segment's bytes. Returns true if new bytes became readable.
    fn take_text<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        seg: &SegmentIn<'_>,
        cx: &mut Ctx<'_, A, K>,
    ) -> bool {
        if seg.payload.is_empty() {
            return false;
        }
        if !self.state.can_receive() {
            // RFC 9293: text after the peer's FIN is ignored.
            cx.counters.drop(TcpDrop::AfterFin);
            return false;
        }
        // Trim what we already have (RFC 9293 3.10.7.4: start with RCV.NXT).
        let (offset, bytes) = if seg.seq.lt(self.rcv_nxt) {
            let skip = (self.rcv_nxt - seg.seq) as usize;
            if skip >= seg.payload.len() {
                // Entirely old: a duplicate. Ack it at once (it may be a lost-ACK symptom).
                self.ack_due = AckDue::Now;
                return false;
            }
            (0usize, &seg.payload[skip..])
        } else {
            ((seg.seq - self.rcv_nxt) as usize, seg.payload)
        };
        let had_holes = self.recv.has_ooo();
        if self.fin_queued {
            // The application has closed and reads no more: in-order bytes are acknowledged
            // and dropped without being stored, out-of-order ones are not kept.
            return self.discard_text(offset, bytes, cx);
        }
        if !self.admit_text(offset, bytes.len(), cx) {
            // The peer retransmits; tell it at once where we are (and what we hold).
            self.ack_due = AckDue::Now;
            self.sack_due = self.recv.has_ooo();
            return false;
        }
        let allocated = self.recv.allocated();
        let out = self.recv.write_at(offset, bytes);
        cx.mem.update(allocated, self.recv.allocated());
        if out.advanced > 0 {
            self.rcv_nxt += out.advanced;
        }
        if out.trimmed {
            cx.counters.drop(TcpDrop::NoRoom);
        }
        if out.out_of_order || offset > 0 {
            // RFC 5681 4.2 / RFC 9293 3.10.7.4: an out-of-order segment gets an immediate
            // (duplicate) ACK, with SACK blocks when agreed (RFC 2018).
            cx.counters.out_of_order += 1;
            self.ack_due = AckDue::Now;
            self.sack_due = self.recv.has_ooo();
        } else if had_holes || out.trimmed {
            // Filling a hole is acknowledged at once too (RFC 5681 4.2).
            self.ack_due = AckDue::Now;
            self.sack_due = self.recv.has_ooo();
        } else if out.advanced > 0 {
            // RFC 1122 4.2.3.2 / RFC 9293 3.8.6.3: ACK at least every second full-sized
            // segment; otherwise within the delayed-ACK time.
            if bytes.len() >= self.mss as usize {
                self.segs_unacked += 1;
            }
            if self.segs_unacked >= 2 {
                self.ack_due = AckDue::Now;
            } else if self.ack_due == AckDue::None {
                self.ack_due = AckDue::Delayed;
                self.delack_at = Some(cx.now + cx.cfg.delayed_ack);
            }
        }
        out.advanced > 0
    }

    /// Whether the worker's receive memory lets `len` bytes at `offset` be stored (Linux's
    /// tcp_try_rmem_schedule). Out-of-order bytes need memory to spare and no pressure;
    /// in-order bytes may
    /// first take back this connection's out-of-order memory (tcp_prune_ofo_queue: the highest
    /// ranges go first), and a connection holding less than the floor may always take in-order
    /// bytes up to it, so that it can make progress under pressure.
    fn admit_text<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        offset: usize,
        len: usize,
        cx: &mut Ctx<'_, A, K>,
    ) -> bool {
        let extra = self.recv.extra_for(offset, len);
        if offset > 0 {
            // Under pressure no new out-of-order data is kept, even in memory already taken.
            if cx.mem.under_pressure() || !cx.mem.allows(extra) {
                cx.mem.refused();
                cx.counters.drop(TcpDrop::OfoMemory);
                return false;
            }
            return true;
        }
        if cx.mem.allows(extra) {
            return true;
        }
        if self.recv.has_ooo() {
            let before = self.recv.allocated();
            self.recv.prune_ooo(extra);
            cx.mem.update(before, self.recv.allocated());
            cx.counters.ofo_pruned += 1;
            let extra = self.recv.extra_for(offset, len);
            if cx.mem.allows(extra) {
                return true;
            }
        }
        cx.mem.refused();
        if self.recv.len() + len <= cx.mem.floor() {
            return true;
        }
        cx.counters.drop(TcpDrop::RecvMemory);
        false
    }

    /// Takes text after the application closed: in-order bytes move RCV.NXT (within the
    /// window) and are dropped; nothing is stored.
    fn discard_text<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        offset: usize,
        bytes: &[u8],
        cx: &mut Ctx<'_, A, K>,
    ) -> bool {
        if offset > 0 {
            cx.counters.out_of_order += 1;
            self.ack_due = AckDue::Now;
            return false;
        }
        let take = bytes.len().min(self.rcv_wnd() as usize);
        if take < bytes.len() {
            cx.counters.drop(TcpDrop::NoRoom);
        }
        self.rcv_nxt += take;
        if self.ack_due == AckDue::None {
            self.ack_due = AckDue::Delayed;
            self.delack_at = Some(cx.now + cx.cfg.delayed_ack);
        }
        false
    }

    /// Reads the worker's memory pressure for the windows this event advertises: under it,
    /// a window offers at most the guaranteed share (Linux clamps rcv_ssthresh likewise).
    fn note_memory<A: App<Session = S>, K: SegmentSink>(&mut self, cx: &Ctx<'_, A, K>) {
        self.rcv_clamp = if cx.mem.under_pressure() {
            cx.mem.floor()
        } else {
            usize::MAX
        };
    }

    /// Gives back the receive buffer's memory: the application has closed and reads no more.
    fn release_recv<A: App<Session = S>, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) {
        let before = self.recv.allocated();
        self.recv.release();
        cx.mem.update(before, 0);
    }

    /// Eighth check: the peer's FIN is next in sequence.
    fn take_fin<A: App<Session = S>, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) -> bool {
        self.rcv_nxt += 1u32;
        self.ooo_fin = None;
        self.peer_fin = true;
        self.ack_due = AckDue::Now;
        self.state = match self.state {
            State::SynReceived | State::Established => State::CloseWait,
            // Simultaneous close: our FIN is not acknowledged yet.
            State::FinWait1 if !self.fin_acked() => State::Closing,
            State::FinWait1 | State::FinWait2 => {
                self.state_deadline = None;
                State::TimeWait
            }
            other => other,
        };
        let _ = cx;
        true
    }

    /// Calls the application with what is readable; applies what it asked for. Returns a
    /// verdict when the application aborted the connection.
    fn deliver<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        readable: bool,
    ) -> Option<Next> {
        if !readable || self.session.is_none() {
            return None;
        }
        if self.fin_queued {
            // The application has closed its side and reads no more: take and discard.
            let n = self.recv.len();
            self.recv.consume(n);
            return None;
        }
        self.call_app(cx, Callback::Readable)
    }

    /// Runs one application callback with an [`AppIo`] on this connection and applies what
    /// the application asked for. Returns a verdict when it aborted the connection.
    fn call_app<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        which: Callback,
    ) -> Option<Next> {
        let session = self.session.as_mut()?;
        let before = self.recv.window();
        let mut io = AppIo {
            recv: &mut self.recv,
            send: &mut self.send,
            id: self.id,
            peer_closed: self.peer_fin,
            close_requested: false,
            abort_requested: false,
            deadline: self.app_deadline,
            send_limit: if self.fin_queued {
                0
            } else {
                cx.cfg.send_buffer
            },
            marker: None,
            send_progress: self.acked_at,
            writable_below: self.writable_below,
            wakes: &mut *cx.wakes,
        };
        match which {
            Callback::Readable => cx.app.on_readable(session, &mut io, cx.now),
            Callback::Writable => cx.app.on_writable(session, &mut io, cx.now),
            Callback::Deadline => cx.app.on_deadline(session, &mut io, cx.now),
            Callback::Wake => cx.app.on_wake(session, &mut io, cx.now),
        }
        let (close, abort, deadline) = (io.close_requested, io.abort_requested, io.deadline);
        self.writable_below = io.writable_below;
        if let Some(m) = io.marker {
            self.add_marker(m);
        }
        self.after_app(cx, before, close, abort, deadline)
    }

    /// An ICMP "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC 8201) quoted
    /// one of this connection's segments, starting at `quoted_seq`, and says the path carries
    /// datagrams of at most `mtu` bytes. RFC 5927 4.1: believed only if `quoted_seq` is in
    /// flight (SND.UNA <= seq < SND.NXT), since an off-path attacker does not know it. The MTU
    /// is taken no lower than the family's floor (IPv4: 552, Linux's min_pmtu; IPv6: 1280,
    /// RFC 8200 5), and only a smaller MSS is taken. Then everything in flight is resent from
    /// SND.UNA at the new size, as Linux's tcp_simple_retransmit does.
    pub fn on_path_mtu<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        quoted_seq: SeqNumber,
        mtu: u32,
    ) -> PmtuVerdict {
        if !matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait1 | State::Closing | State::LastAck
        ) || quoted_seq.lt(self.snd_una)
            || !quoted_seq.lt(self.snd_max)
        {
            return PmtuVerdict::NotInFlight;
        }
        let v4 = self.tuple.is_v4();
        let (floor, headers) = if v4 { (552, 40) } else { (ipv6::MIN_MTU, 60) };
        let options = if self.ts_enabled { 12 } else { 0 };
        let mss = mtu.max(floor) - headers - options;
        if mss >= self.mss {
            return PmtuVerdict::NotSmaller;
        }
        self.mss = mss;
        self.cc.on_path_mtu_drop(mss, self.snd_max);
        self.rack.on_timeout();
        self.rtt_probe = None;
        self.snd_nxt = self.snd_una;
        self.transmit(cx);
        PmtuVerdict::Lowered
    }

    /// Someone woke this connection ([`AppIo::wake`]): call the application, then send what
    /// it queued.
    pub fn on_wake<A: App<Session = S>, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) -> Next {
        self.note_memory(cx);
        if !self.fin_queued
            && let Some(next) = self.call_app(cx, Callback::Wake)
        {
            return next;
        }
        self.output(cx)
    }

    fn after_app<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        window_before: usize,
        close: bool,
        abort: bool,
        deadline: Option<Instant>,
    ) -> Option<Next> {
        self.app_deadline = deadline;
        if abort {
            return Some(self.abort(cx, CloseReason::Aborted));
        }
        if close {
            self.close_send_side();
            self.release_recv(cx);
        }
        // A window that opened by a lot is announced at once (RFC 9293 3.8.6.2.2).
        let opened = self.recv.window().saturating_sub(window_before);
        if opened > 0 {
            let advertised = self.rcv_wnd() as usize;
            let step = (self.recv.capacity() / 2).min(self.mss as usize);
            if advertised < step && self.recv.window() >= step {
                self.ack_due = AckDue::Now;
            }
        }
        None
    }

    fn add_marker(&mut self, m: (u64, Instant)) {
        if (self.marker_count as usize) < self.markers.len() {
            self.markers[self.marker_count as usize] = m;
            self.marker_count += 1;
        }
    }

    /// Records the service time of every marker whose last byte has now been sent.
    fn settle_markers(&mut self, now: Instant, out: &mut Vec<u64>) {
        let mut done = 0;
        while done < self.marker_count as usize && self.markers[done].0 <= self.sent_bytes {
            if out.len() < 1 << 16 {
                out.push(now.saturating_since(self.markers[done].1).as_micros() as u64);
            }
            done += 1;
        }
        if done > 0 {
            self.markers
                .copy_within(done..self.marker_count as usize, 0);
            self.marker_count -= done as u8;
        }
    }

    /// The application closed: FIN after the queued bytes. Linux changes state at close().
    fn close_send_side(&mut self) {
        if self.fin_queued {
            return;
        }
        self.fin_queued = true;
        // The application's deadline stays: it may bound how long its last bytes take to
        // drain (HTTP's send timeout). It hears of no more received bytes.
        self.state = match self.state {
            State::Established => State::FinWait1,
            State::CloseWait => State::LastAck,
            s => s,
        };
    }

    fn enter_time_wait<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
    ) -> Next {
        // The ACK of the peer's FIN goes out now; TIME-WAIT answers retransmissions (so
        // without transmit room it is dropped: the peer's retransmitted FIN gets it).
        if self.ack_due != AckDue::None {
            if cx.has_room() {
                self.send_ack(cx);
            } else {
                cx.counters.drop(TcpDrop::NoTxRoom);
            }
        }
        cx.counters.closed_normal += 1;
        cx.counters.time_wait_entered += 1;
        self.release_session(cx, CloseReason::Normal);
        Next::TimeWait
    }

    /// Sends what the windows allow, the FIN when due, and a pending ACK.
    fn output<A: App<Session = S>, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) -> Next {
        if self.syn_due {
            if !self.send_syn(cx) {
                self.defer(cx);
                return Next::Keep;
            }
            self.syn_due = false;
            self.syn_at = cx.now;
            self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
            return Next::Keep;
        }
        if self.synack_due {
            if !self.send_syn_ack(cx) {
                self.defer(cx);
                return Next::Keep;
            }
            self.synack_due = false;
            self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
        }
        if matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        ) {
            self.transmit(cx);
        }
        if self.ack_due == AckDue::Now {
            self.send_ack(cx);
        }
        Next::Keep
    }

    fn transmit<A: App<Session = S>, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) {
        if self.snd_una == self.snd_max {
            // RFC 5681 4.1: slow-start restart after an idle period.
            self.cc
                .restart_after_idle(cx.now, self.rtt.rto(&cx.cfg.rto));
        }
        loop {
            // After an RTO, what the peer SACKed is not sent again (RFC 6675 5.1).
            if self.snd_nxt.lt(self.snd_max)
                && let Some(end) = self.board.sacked_end_at(self.snd_nxt)
            {
                self.snd_nxt = end.min(self.snd_max);
                continue;
            }
            let wnd = self.snd_wnd.min(self.cc.cwnd);
            let in_flight = self.snd_nxt.distance_from(self.snd_una);
            let usable = wnd.saturating_sub(in_flight) as usize;
            let offset = in_flight as usize;
            let avail = self.send.len().saturating_sub(offset);
            let seg_mss = self.data_mss() as usize;
            let fin_now = self.fin_queued && avail <= usable.min(seg_mss);
            if avail == 0 {
                // A bare FIN, if it is due and not yet sent at this point.
                if self.fin_queued && !(self.fin_sent && self.snd_nxt == self.snd_max) && usable > 0
                {
                    if !self.send_data(cx, offset, 0, true) {
                        break; // no transmit room: resumed by `on_tx_room`
                    }
                    continue;
                }
                if self.fin_queued && usable == 0 && self.snd_wnd == 0 {
                    self.arm_persist(cx, in_flight);
                }
                break;
            }
            let mut len = avail.min(seg_mss).min(usable);
            if self.snd_nxt.lt(self.snd_max)
                && let Some(s) = self.board.next_sacked_after(self.snd_nxt)
            {
                len = len.min(s.distance_from(self.snd_nxt) as usize);
            }
            if len == 0 {
                self.arm_persist(cx, in_flight);
                break;
            }
            // RFC 9293 3.8.6.2.1: sender silly-window avoidance. Send a full segment, or all
            // that is queued, or at least half the largest window the peer offered.
            if len < seg_mss && len < avail && (len as u32) < self.max_snd_wnd / 2 {
                self.arm_persist(cx, in_flight);
                break;
            }
            let fin = fin_now && len == avail;
            if !self.send_data(cx, offset, len, fin) {
                break; // no transmit room: resumed by `on_tx_room`
            }
        }
    }

    /// The zero-window case: nothing in flight and nothing allowed, so probe later
    /// (RFC 9293 3.8.6.1).
    fn arm_persist<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        in_flight: u32,
    ) {
        if in_flight == 0 && self.rtx_at.is_none() {
            self.persist = true;
            self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
        }
    }

    /// Sends `len` bytes at `offset` from SND.UNA (and the FIN after them if `fin`). Without
    /// transmit room nothing is sent or changed (SND.NXT, counters, timers, markers): returns
    /// false and the connection waits for room.
    fn send_data<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
        offset: usize,
        len: usize,
        fin: bool,
    ) -> bool {
        if !cx.has_room() {
            self.defer(cx);
            return false;
        }
        let seq = self.snd_una + offset;
        let mut flags = TcpFlags::ACK;
        if len > 0 && offset + len == self.send.len() {
            flags |= TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
        }
        let hdr = self.header(seq, flags, cx.now);
        self.acked_now();
        cx.emit(&hdr, &self.send.range(offset, len));
        let end = seq + len + fin as usize;
        let first = !seq.lt(self.snd_max);
        if !first {
            cx.counters.retransmits += 1;
        } else if self.rtt_probe.is_none() {
            self.rtt_probe = Some((end, cx.now));
        }
        self.rack.on_send(seq, end, cx.now, first);
        if first {
            self.cc.on_data_sent(cx.now);
        }
        let data_end = seq + len;
        if data_end.gt(self.snd_max) {
            self.sent_bytes += data_end.distance_from(self.snd_max) as u64;
            if self.marker_count > 0 {
                self.settle_markers(cx.now, cx.service_us);
            }
        }
        if fin {
            self.fin_sent = true;
        }
        self.snd_nxt = end;
        if end.gt(self.snd_max) {
            self.snd_max = end;
        }
        if self.rtx_at.is_none() || self.persist {
            self.persist = false;
            self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
        }
        if first && !self.rack.probe_outstanding() {
            self.arm_probe(cx);
        }
        true
    }

    /// Runs the timers whose time has come.
    pub fn on_timer<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
    ) -> Next {
        let now = cx.now;
        self.note_memory(cx);
        if self.state_deadline.is_some_and(|t| t <= now) {
            // FIN-WAIT-2 timed out (Linux's tcp_fin_timeout): forget the connection.
            self.state_deadline = None;
            return self.closed(cx, CloseReason::TimedOut);
        }
        if self.rack.reo_at.is_some_and(|t| t <= now) {
            // RFC 8985 6.3: the reordering window of a segment ran out.
            self.rack.reo_at = None;
            if self.sack_ok && self.snd_max.gt(self.snd_una) && !self.persist {
                self.sack_recovery(cx, false);
            }
        }
        if self.rack.pto_at.is_some_and(|t| t <= now) {
            if !cx.has_room() {
                // No transmit room: the probe stays due and runs when room returns.
                self.defer(cx);
            } else {
                self.rack.pto_at = None;
                self.on_probe_timeout(cx);
            }
        }
        if self.rtx_at.is_some_and(|t| t <= now) {
            if !cx.has_room() {
                // No transmit room: the timer stays due and runs when room returns (nothing
                // counted, no backoff).
                self.defer(cx);
            } else {
                self.rtx_at = None;
                if let Some(next) = self.on_retransmit_timer(cx) {
                    return next;
                }
            }
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            if self.ack_due != AckDue::None {
                self.ack_due = AckDue::Now;
            }
        }
        if self.app_deadline.is_some_and(|t| t <= now) {
            self.app_deadline = None;
            if let Some(next) = self.call_app(cx, Callback::Deadline) {
                return next;
            }
        }
        self.output(cx)
    }

    fn on_retransmit_timer<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
    ) -> Option<Next> {
        if self.state == State::SynSent {
            // RFC 6298 5.7 / Linux tcp_syn_retries: the SYN again, the timer doubled.
            if self.retries >= cx.cfg.syn_retries {
                return Some(self.closed(cx, CloseReason::TimedOut));
            }
            self.retries += 1;
            self.rtt.backoff();
            cx.counters.syn_retransmits += 1;
            self.send_syn(cx);
            self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
            return None;
        }
        if self.state == State::SynReceived {
            if self.retries >= cx.cfg.synack_retries {
                // Linux forgets a half-open connection silently.
                return Some(self.closed(cx, CloseReason::TimedOut));
            }
            self.retries += 1;
            self.rtt.backoff();
            cx.counters.synack_retransmits += 1;
            self.send_syn_ack(cx);
            self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
            return None;
        }
        if self.persist {
            return self.on_persist_timer(cx);
        }
        self.retries += 1;
        if self.retries > cx.cfg.max_retries {
            return Some(self.abort(cx, CloseReason::TimedOut));
        }
        self.rtt.backoff();
        // RFC 6298 (5.4-5.6) and RFC 5681 (eq. 4): retransmit from SND.UNA, back off,
        // collapse the window to one segment; go-back-N resends the rest as ACKs return,
        // skipping what the peer SACKed (RFC 6675 5.1: the scoreboard is kept).
        cx.counters.rto_expirations += 1;
        let flight = self.snd_max.distance_from(self.snd_una);
        self.cc.on_timeout(flight, self.snd_max);
        self.board.on_timeout(self.snd_una, self.snd_max);
        self.rack.on_timeout();
        self.rtt_probe = None;
        self.snd_nxt = self.snd_una;
        if self.snd_una == self.snd_max {
            return None;
        }
        // Retransmit even into a closed window: the peer may have shrunk it.
        let gap = self
            .board
            .next_sacked_after(self.snd_una)
            .map_or(usize::MAX, |s| s.distance_from(self.snd_una) as usize);
        let len = self.send.len().min(self.data_mss() as usize).min(gap);
        let fin = self.fin_sent && len == self.send.len();
        self.send_data(cx, 0, len, fin);
        self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
        None
    }

    /// The persist timer fired: nothing is in flight and the peer's window holds data back
    /// (Linux's tcp_probe_timer and tcp_write_wakeup).
    fn on_persist_timer<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
    ) -> Option<Next> {
        let in_flight = self.snd_nxt.distance_from(self.snd_una) as usize;
        let avail = self.send.len().saturating_sub(in_flight);
        let usable = (self.snd_wnd as usize).saturating_sub(in_flight);
        if usable > 0 && avail > 0 {
            // RFC 9293 3.8.6.2.1: the override timeout of sender silly-window avoidance. Send
            // what the window allows, even less than a segment (Linux sends a window-sized
            // piece of its send head). From now on it is data in flight, under the RTO.
            let len = avail.min(usable).min(self.data_mss() as usize);
            let fin = self.fin_queued && len == avail;
            self.persist = false;
            self.probes_out = 0;
            self.send_data(cx, in_flight, len, fin);
            return None;
        }
        // RFC 9293 3.8.6.1, RFC 1122 4.2.2.17: the window is zero. The connection stays open
        // for as long as the peer answers probes; only unanswered ones count toward the limit
        // (every acceptable ACK resets `probes_out`). Bounding a reader that never reads is
        // the application's business (HTTP's send timeout).
        if self.probes_out >= cx.cfg.max_probes {
            return Some(self.abort(cx, CloseReason::TimedOut));
        }
        self.probes_out += 1;
        cx.counters.zero_window_probes += 1;
        // Linux sends a bare ACK with an old sequence number (SND.UNA - 1), which the peer
        // must answer with its window (RFC 9293 3.10.7.4).
        let hdr = self.header(self.snd_una - 1u32, TcpFlags::ACK, cx.now);
        cx.emit(&hdr, EMPTY);
        // Exponential backoff capped at the RTO ceiling (Linux's tcp_probe0_when with
        // TCP_RTO_MAX); an answer that leaves the window shut does not reset it.
        self.rtt.backoff();
        self.rtx_at = Some(cx.now + self.rtt.rto(&cx.cfg.rto));
        None
    }

    /// The server is stopping: reset at once (used after the shutdown grace period).
    pub fn shutdown_abort<A: App<Session = S>, K: SegmentSink>(
        &mut self,
        cx: &mut Ctx<'_, A, K>,
    ) -> Next {
        if matches!(self.state, State::SynReceived | State::SynSent) {
            return self.closed(cx, CloseReason::Aborted);
        }
        self.abort(cx, CloseReason::Aborted)
    }

    /// The server is stopping gracefully: ask the application to finish (close after the
    /// current response). Returns true if the connection is idle and was closed.
    pub fn is_idle(&self) -> bool {
        self.send.is_empty() && self.recv.is_empty()
    }

    /// Closes the sending side as the application would (graceful shutdown).
    pub fn close<A: App<Session = S>, K: SegmentSink>(&mut self, cx: &mut Ctx<'_, A, K>) -> Next {
        self.close_send_side();
        self.release_recv(cx);
        self.output(cx)
    }

}
