//! Microbenchmarks of the TCP engine on one core, in nanoseconds per segment (or per
//! connection), with plain `std::time::Instant` timing loops (no external harness).
//!
//! Rows:
//! - handshake: a SYN in and its SYN/ACK out; the final ACK in (the connection opens, the
//!   application hears of it); the same with SYN cookies;
//! - data: a request segment in and its response segment out (TestApp), on 1024 established
//!   connections; bulk: a 1 MiB response, per data segment sent and acknowledged (the client
//!   acknowledges every second segment, as Linux does);
//! - teardown: the FIN exchange when the client closes first (FIN in, FIN out, last ACK in) and
//!   when the server closes first (ACK of our FIN in, the client's FIN in, ACK out, TIME-WAIT);
//! - frame path: `Datapath::poll` over memory, per frame in (`wire::parse_frame`, the engine,
//!   `wire::build_tcp_frame` for the reply), with TestApp and with the HTTP responder; and
//!   `parse_frame` and `build_tcp_frame` alone.
//!
//! Each row runs a warm-up round and then ROUNDS rounds, each with fresh state built outside
//! the timed part, and prints the median and the best round. The engine's `now` advances a
//! microsecond per segment, and `on_tick` runs once per 64 segments as in the worker loop.
//!
//! Run: `cargo bench --bench engine` (optional filter: `cargo bench --bench engine -- frame`).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant as Clock};

use bytes::Bytes;
use synack::http::{Content, HttpApp, HttpConfig};
use synack::tcp::app::App;
use synack::tcp::engine::{Engine, EngineConfig, SynCookieMode};
use synack::tcp::segment::{PayloadSource, SegmentSink};
use synack::tcp::state::State;
use synack::tcp::testkit::{TestApp, TestAppConfig};
use synack::time::Instant;
use synack::wire::IpAddress;
use synack::wire::segment::{FourTuple, SegmentIn, SegmentOut};
use synack::wire::seq::SeqNumber;
use synack::wire::tcp::{TcpFlags, TcpOptions};
use synack::wire::{self, FrameSpec};
use synack::worker::{Datapath, FrameIo, TxQueue};

const ROUNDS: usize = 9;
const SERVER: u32 = u32::from_be_bytes([198, 18, 0, 1]);
const PORT: u16 = 8080;
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
/// Segments per `on_tick`, as a worker's RX batch.
const BATCH: usize = 64;

// ---------------------------------------------------------------------------------------------
// Sinks, clients and the memory NIC
// ---------------------------------------------------------------------------------------------

/// A segment the engine emitted, without its payload.
#[derive(Clone, Copy)]
struct Out {
    seq: u32,
    flags: TcpFlags,
    len: u32,
}

/// Copies each payload into one frame-sized buffer (as the worker copies into a TX frame) and
/// keeps the headers of the segments since the last `clear`.
struct BenchSink {
    buf: Vec<u8>,
    out: Vec<Out>,
    segments: u64,
}

impl BenchSink {
    fn new() -> Self {
        BenchSink {
            buf: vec![0; 2048],
            out: Vec::with_capacity(1024),
            segments: 0,
        }
    }
}

impl SegmentSink for BenchSink {
    fn emit(&mut self, seg: &SegmentOut, payload: &dyn PayloadSource) {
        let n = payload.len();
        payload.copy_to(&mut self.buf[..n]);
        self.segments += 1;
        self.out.push(Out {
            seq: seg.seq.raw(),
            flags: seg.flags,
            len: n as u32,
        });
    }
}

/// Rows run over IPv6 while this is set (the `..., IPv6` rows); IPv4 otherwise.
static V6: AtomicBool = AtomicBool::new(false);
/// The server's IPv6 address (fd00:198:18::1), served beside `SERVER`.
const SERVER6: IpAddress = IpAddress::v6([0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

fn server_ip() -> IpAddress {
    if V6.load(Ordering::Relaxed) {
        SERVER6
    } else {
        IpAddress::v4(SERVER)
    }
}

/// Runs `f` with the rows' connections over IPv6.
fn over_v6(f: impl Fn() -> Round) -> impl Fn() -> Round {
    move || {
        V6.store(true, Ordering::Relaxed);
        let r = f();
        V6.store(false, Ordering::Relaxed);
        r
    }
}

fn tuple(i: usize) -> FourTuple {
    let host = 0x0a00_0000 | (i as u32 / 50_000);
    let remote_ip = if V6.load(Ordering::Relaxed) {
        let mut a = [0xfd, 0, 1, 0x98, 0, 0x19, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        a[12..].copy_from_slice(&host.to_be_bytes());
        IpAddress::v6(a)
    } else {
        IpAddress::v4(host)
    };
    FourTuple {
        remote_ip,
        remote_port: 10_000 + (i % 50_000) as u16,
        local_ip: server_ip(),
        local_port: PORT,
    }
}

fn seg(t: FourTuple, seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]) -> SegmentIn<'_> {
    SegmentIn {
        tuple: t,
        link: CLIENT_MAC,
        seq: SeqNumber::new(seq),
        ack: SeqNumber::new(ack),
        flags,
        window: 65535,
        options: TcpOptions::default(),
        payload,
    }
}

fn syn_options() -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        ..TcpOptions::default()
    }
}

const C_ISN: u32 = 1_000_000;
/// Tuples from here on are used to warm tables up.
const WARM: usize = 1_000_000;

/// Client-side sequence state of one connection.
#[derive(Clone, Copy, Default)]
struct Peer {
    /// Next sequence number the client sends.
    c_nxt: u32,
    /// Next sequence number the client expects (what it acknowledges).
    s_nxt: u32,
}

/// An engine and its clock.
struct Rig<A: App> {
    e: Engine<A>,
    sink: BenchSink,
    now: Instant,
    since_tick: usize,
}

impl<A: App> Rig<A> {
    fn new(cfg: EngineConfig, app: A) -> Self {
        Rig {
            e: Engine::new(cfg, app),
            sink: BenchSink::new(),
            now: Instant::from_millis(1_000_000),
            since_tick: 0,
        }
    }

    /// One segment in, as the worker would: the clock moves on, timers run once per batch.
    #[inline]
    fn input(&mut self, s: &SegmentIn<'_>) {
        self.now += Duration::from_micros(1);
        self.e.on_segment(self.now, s, &mut self.sink);
        self.since_tick += 1;
        if self.since_tick == BATCH {
            self.since_tick = 0;
            self.e.on_tick(self.now, &mut self.sink);
        }
    }

    fn syn(&mut self, i: usize) -> Peer {
        let mut s = seg(tuple(i), C_ISN, 0, TcpFlags::SYN, &[]);
        s.options = syn_options();
        self.sink.out.clear();
        self.input(&s);
        let sa = self.sink.out.last().copied().expect("a SYN/ACK");
        assert!(sa.flags.syn() && sa.flags.ack());
        Peer {
            c_nxt: C_ISN + 1,
            s_nxt: sa.seq.wrapping_add(1),
        }
    }

    fn ack(&mut self, i: usize, p: &Peer) {
        self.input(&seg(tuple(i), p.c_nxt, p.s_nxt, TcpFlags::ACK, &[]));
    }

    fn establish(&mut self, n: usize) -> Vec<Peer> {
        let peers: Vec<Peer> = (0..n).map(|i| self.syn(i)).collect();
        for (i, p) in peers.iter().enumerate() {
            self.ack(i, p);
        }
        assert_eq!(self.e.state_counts()[State::Established as usize], n);
        self.sink.out.clear();
        peers
    }

    /// Touches the connection table as a server that has been running would have: opens and
    /// aborts `n` connections on other tuples (the first use of the table's memory
    /// costs page faults that a running server does not pay per connection).
    fn warm_table(&mut self, n: usize) {
        for i in 0..n {
            // With cookies the connection only exists after the ACK.
            let p = self.syn(WARM + i);
            self.ack(WARM + i, &p);
        }
        self.e.abort_all(self.now, &mut self.sink);
        self.sink.out.clear();
        self.sink.segments = 0;
        assert_eq!(self.e.connections(), 0);
    }

    fn clean(&self) {
        let c = self.e.counters();
        assert_eq!(c.drops.iter().sum::<u64>(), 0, "segments dropped: {c:?}");
        assert_eq!(c.retransmits, 0, "retransmissions: {c:?}");
    }
}

fn config(cookies: SynCookieMode) -> EngineConfig {
    EngineConfig {
        syn_cookies: cookies,
        max_conns: 1 << 17,
        syn_backlog: 1 << 17,
        local_ips: vec![IpAddress::v4(SERVER), SERVER6],
        ..EngineConfig::default()
    }
}

fn test_app(response: Bytes, close_after_response: bool) -> TestApp {
    TestApp::new(TestAppConfig {
        response,
        close_after_response,
        ..TestAppConfig::default()
    })
}

fn small_app() -> TestApp {
    test_app(
        Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        false,
    )
}

/// TX frames are written in place into one buffer and counted; `keep` copies them out (only
/// while setting up, to read the server's ISNs).
struct BenchTx {
    buf: Vec<u8>,
    count: u64,
    keep: bool,
    kept: Vec<Vec<u8>>,
}

impl TxQueue for BenchTx {
    fn room(&mut self) -> usize {
        usize::MAX
    }
    fn frame(&mut self) -> Option<&mut [u8]> {
        Some(&mut self.buf[..])
    }
    fn commit(&mut self, len: usize) {
        self.count += 1;
        if self.keep {
            self.kept.push(self.buf[..len].to_vec());
        }
    }
}

struct BenchIo {
    rx: Vec<Vec<u8>>,
    pos: usize,
    tx: BenchTx,
}

impl FrameIo for BenchIo {
    fn receive(&mut self, max: usize, f: &mut dyn FnMut(&[u8], &mut dyn TxQueue)) -> usize {
        let mut n = 0;
        while n < max && self.pos < self.rx.len() {
            f(&self.rx[self.pos], &mut self.tx);
            self.pos += 1;
            n += 1;
        }
        n
    }
    fn transmit(&mut self, f: &mut dyn FnMut(&mut dyn TxQueue)) {
        f(&mut self.tx);
    }
    fn flush(&mut self) {}
}

fn client_frame(
    i: usize,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    opts: TcpOptions,
    data: &[u8],
) -> Vec<u8> {
    let t = tuple(i);
    let spec = FrameSpec {
        src_mac: CLIENT_MAC,
        dst_mac: SERVER_MAC,
        src_ip: t.remote_ip,
        dst_ip: server_ip(),
        ttl: 64,
        ip_id: 0,
        src_port: t.remote_port,
        dst_port: PORT,
        seq,
        ack,
        flags,
        window: 65535,
        options: opts,
    };
    let h = wire::tcp_headers_len(spec.src_ip.is_v4(), &opts);
    let mut buf = vec![0u8; h + data.len()];
    buf[h..].copy_from_slice(data);
    let n = wire::build_tcp_frame(&mut buf, &spec, data.len()).unwrap();
    buf.truncate(n);
    buf
}

/// A datapath with `n` established connections (handshakes done with frames).
fn datapath<A: App>(app: A, n: usize) -> (Datapath<A, BenchIo>, Vec<Peer>, Instant) {
    let io = BenchIo {
        rx: Vec::new(),
        pos: 0,
        tx: BenchTx {
            buf: vec![0; 2048],
            count: 0,
            keep: true,
            kept: Vec::new(),
        },
    };
    let mut dp = Datapath::new(
        Engine::new(config(SynCookieMode::Never), app),
        io,
        SERVER_MAC,
        BATCH,
    );
    let now = Instant::from_millis(1_000_000);
    dp.io.rx = (0..n)
        .map(|i| client_frame(i, C_ISN, 0, TcpFlags::SYN, syn_options(), &[]))
        .collect();
    while dp.poll(now, 0) > 0 {}
    let mut peers = vec![Peer::default(); n];
    for f in &dp.io.tx.kept {
        let p = wire::parse_frame(f).unwrap();
        let i =
            (p.dst_ip().v4_bits() & 0xffff) as usize * 50_000 + (p.dst_port() - 10_000) as usize;
        peers[i] = Peer {
            c_nxt: C_ISN + 1,
            s_nxt: p.seq().wrapping_add(1),
        };
    }
    dp.io.tx.kept.clear();
    dp.io.rx = (0..n)
        .map(|i| {
            client_frame(
                i,
                peers[i].c_nxt,
                peers[i].s_nxt,
                TcpFlags::ACK,
                TcpOptions::default(),
                &[],
            )
        })
        .collect();
    dp.io.pos = 0;
    while dp.poll(now, 0) > 0 {}
    assert_eq!(dp.engine.state_counts()[State::Established as usize], n);
    (dp, peers, now)
}

// ---------------------------------------------------------------------------------------------
// The rows
// ---------------------------------------------------------------------------------------------

/// One timed round: (operations, time).
type Round = (u64, Duration);

const CONNS: usize = 20_000;

fn handshake_syn(cookies: SynCookieMode, cold: bool) -> Round {
    let mut r = Rig::new(config(cookies), small_app());
    if !cold {
        r.warm_table(CONNS);
    }
    let mut s = seg(tuple(0), C_ISN, 0, TcpFlags::SYN, &[]);
    s.options = syn_options();
    let t0 = Clock::now();
    for i in 0..CONNS {
        s.tuple = tuple(i);
        r.input(black_box(&s));
    }
    let d = t0.elapsed();
    assert_eq!(r.sink.segments, CONNS as u64);
    (CONNS as u64, d)
}

fn handshake_ack(cookies: SynCookieMode) -> Round {
    let mut r = Rig::new(config(cookies), small_app());
    r.warm_table(CONNS);
    let opened = r.e.app().opened;
    let peers: Vec<Peer> = (0..CONNS).map(|i| r.syn(i)).collect();
    let t0 = Clock::now();
    for (i, p) in peers.iter().enumerate() {
        r.ack(i, p);
    }
    let d = t0.elapsed();
    assert_eq!(r.e.connections(), CONNS);
    assert_eq!(r.e.app().opened - opened, CONNS);
    r.clean();
    (CONNS as u64, d)
}

const DATA_CONNS: usize = 1024;
const SWEEPS: usize = 20;

fn request_response() -> Round {
    let mut r = Rig::new(config(SynCookieMode::Never), small_app());
    let mut peers = r.establish(DATA_CONNS);
    let req = b"GET / HTTP/1.1\r\n\r\n\n";
    let t0 = Clock::now();
    for _ in 0..SWEEPS {
        for (i, p) in peers.iter_mut().enumerate() {
            r.sink.out.clear();
            r.input(&seg(
                tuple(i),
                p.c_nxt,
                p.s_nxt,
                TcpFlags::ACK | TcpFlags::PSH,
                req,
            ));
            p.c_nxt = p.c_nxt.wrapping_add(req.len() as u32);
            let o = r.sink.out[0];
            p.s_nxt = o.seq.wrapping_add(o.len);
        }
    }
    let d = t0.elapsed();
    let ops = (SWEEPS * DATA_CONNS) as u64;
    assert_eq!(r.e.app().closed.len(), 0);
    r.clean();
    (ops, d)
}

const BULK: usize = 1 << 20;
const BULK_CONNS: usize = 8;

/// A 1 MiB response per connection; the client acknowledges every second segment. Returns
/// data segments sent.
fn bulk() -> Round {
    let body = Bytes::from(vec![b'x'; BULK]);
    let mut r = Rig::new(config(SynCookieMode::Never), test_app(body, false));
    let mut peers = r.establish(BULK_CONNS);
    let mut data_segments = 0u64;
    let t0 = Clock::now();
    for (i, p) in peers.iter_mut().enumerate() {
        r.sink.out.clear();
        r.input(&seg(
            tuple(i),
            p.c_nxt,
            p.s_nxt,
            TcpFlags::ACK | TcpFlags::PSH,
            b"\n",
        ));
        p.c_nxt += 1;
        let end = p.s_nxt.wrapping_add(BULK as u32);
        let mut pending = Vec::with_capacity(1024);
        let mut rounds = 0;
        while p.s_nxt != end {
            pending.clear();
            pending.append(&mut r.sink.out);
            assert!(!pending.is_empty(), "stalled at {} of {end}", p.s_nxt);
            for pair in pending.chunks(2) {
                for o in pair {
                    if o.len > 0 {
                        data_segments += 1;
                    }
                    debug_assert_eq!(o.seq, p.s_nxt);
                    p.s_nxt = o.seq.wrapping_add(o.len);
                }
                r.ack(i, p);
            }
            rounds += 1;
            assert!(rounds < 10_000);
        }
    }
    let d = t0.elapsed();
    r.clean();
    // Full segments, but for a partial one where the application's send limit (256 KiB)
    // ends what is queued at the time: a few per connection at most.
    let full = BULK_CONNS * BULK.div_ceil(1460);
    assert!(
        (full..full + 4 * BULK_CONNS).contains(&(data_segments as usize)),
        "{data_segments} data segments for {full} full ones"
    );
    (data_segments, d)
}

/// Client closes first: FIN in -> FIN/ACK out -> last ACK in -> CLOSED. Per connection.
fn teardown_client_first() -> Round {
    let mut r = Rig::new(config(SynCookieMode::Never), small_app());
    let peers = r.establish(CONNS);
    let t0 = Clock::now();
    for (i, p) in peers.iter().enumerate() {
        r.sink.out.clear();
        r.input(&seg(
            tuple(i),
            p.c_nxt,
            p.s_nxt,
            TcpFlags::FIN | TcpFlags::ACK,
            &[],
        ));
        // The server's FIN (the TestApp closes when the peer does) acknowledges ours.
        let fin = r.sink.out.last().copied().expect("FIN");
        debug_assert!(fin.flags.fin());
        r.input(&seg(
            tuple(i),
            p.c_nxt + 1,
            fin.seq.wrapping_add(1),
            TcpFlags::ACK,
            &[],
        ));
    }
    let d = t0.elapsed();
    assert_eq!(r.e.connections(), 0);
    assert_eq!(r.e.time_wait_len(), 0);
    r.clean();
    (CONNS as u64, d)
}

/// Server closes first (after a response, as with `Connection: close`): the ACK of its FIN
/// in, the client's FIN in, ACK out, TIME-WAIT. Per connection.
fn teardown_server_first() -> Round {
    let mut r = Rig::new(
        config(SynCookieMode::Never),
        test_app(Bytes::from_static(b"bye"), true),
    );
    // Warm-up on other tuples, untimed: fills the TIME-WAIT table once, then lets it expire.
    let warm = server_closes(&mut r, WARM);
    close_after_server(&mut r, WARM, &warm);
    r.now += Duration::from_secs(121);
    r.e.on_tick(r.now, &mut r.sink);
    assert_eq!(r.e.time_wait_len(), 0);
    let peers = server_closes(&mut r, 0);
    let t0 = Clock::now();
    close_after_server(&mut r, 0, &peers);
    let d = t0.elapsed();
    assert_eq!(r.e.connections(), 0);
    assert_eq!(r.e.time_wait_len(), CONNS);
    r.clean();
    (CONNS as u64, d)
}

/// Establishes CONNS connections from tuple `base` on; each gets a request whose response
/// carries the server's FIN.
fn server_closes(r: &mut Rig<TestApp>, base: usize) -> Vec<Peer> {
    let mut peers: Vec<Peer> = (0..CONNS).map(|i| r.syn(base + i)).collect();
    for (i, p) in peers.iter().enumerate() {
        r.ack(base + i, p);
    }
    for (i, p) in peers.iter_mut().enumerate() {
        r.sink.out.clear();
        r.input(&seg(
            tuple(base + i),
            p.c_nxt,
            p.s_nxt,
            TcpFlags::ACK | TcpFlags::PSH,
            b"\n",
        ));
        p.c_nxt += 1;
        let o = r.sink.out.last().copied().expect("response");
        assert!(o.flags.fin());
        p.s_nxt = o.seq.wrapping_add(o.len + 1);
    }
    r.sink.out.clear();
    peers
}

/// The client acknowledges the server's FIN, then sends its own: TIME-WAIT on the server.
fn close_after_server(r: &mut Rig<TestApp>, base: usize, peers: &[Peer]) {
    for (i, p) in peers.iter().enumerate() {
        r.ack(base + i, p);
        r.input(&seg(
            tuple(base + i),
            p.c_nxt,
            p.s_nxt,
            TcpFlags::FIN | TcpFlags::ACK,
            &[],
        ));
    }
}

/// Requests as frames through `Datapath::poll`; per frame in (one response frame out each).
fn frame_path<A: App>(app: A, req: &[u8]) -> Round {
    let (mut dp, mut peers, mut now) = datapath(app, DATA_CONNS);
    // Learn the response length with one untimed request per connection.
    dp.io.rx = peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            client_frame(
                i,
                p.c_nxt,
                p.s_nxt,
                TcpFlags::ACK | TcpFlags::PSH,
                TcpOptions::default(),
                req,
            )
        })
        .collect();
    dp.io.pos = 0;
    while dp.poll(now, 0) > 0 {}
    let resp = wire::parse_frame(dp.io.tx.kept.last().unwrap())
        .unwrap()
        .payload()
        .len() as u32;
    assert_eq!(
        dp.io.tx.kept.len(),
        DATA_CONNS,
        "one response segment per request"
    );
    dp.io.tx.keep = false;
    for p in &mut peers {
        p.c_nxt += req.len() as u32;
        p.s_nxt += resp;
    }
    // Untimed: all the frames of the round.
    let mut frames = Vec::with_capacity(SWEEPS * DATA_CONNS);
    for _ in 0..SWEEPS {
        for (i, p) in peers.iter_mut().enumerate() {
            frames.push(client_frame(
                i,
                p.c_nxt,
                p.s_nxt,
                TcpFlags::ACK | TcpFlags::PSH,
                TcpOptions::default(),
                req,
            ));
            p.c_nxt += req.len() as u32;
            p.s_nxt += resp;
        }
    }
    dp.io.rx = frames;
    dp.io.pos = 0;
    let sent = dp.io.tx.count;
    let t0 = Clock::now();
    loop {
        now += Duration::from_micros(BATCH as u64);
        if dp.poll(now, 0) == 0 {
            break;
        }
    }
    let d = t0.elapsed();
    let ops = (SWEEPS * DATA_CONNS) as u64;
    assert_eq!(
        dp.io.tx.count - sent,
        ops,
        "one response frame per request frame"
    );
    let c = dp.engine.counters();
    assert_eq!(c.drops.iter().sum::<u64>(), 0, "{c:?}");
    assert_eq!(dp.counters.wire_drops.iter().sum::<u64>(), 0);
    (ops, d)
}

fn parse_only() -> Round {
    let frames: Vec<Vec<u8>> = (0..1024)
        .map(|i| {
            client_frame(
                i,
                7,
                9,
                TcpFlags::ACK | TcpFlags::PSH,
                TcpOptions::default(),
                b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n",
            )
        })
        .collect();
    let n = 200;
    let t0 = Clock::now();
    let mut sum = 0u64;
    for _ in 0..n {
        for f in &frames {
            let p = wire::parse_frame(black_box(f)).unwrap();
            sum += p.payload().len() as u64;
        }
    }
    let d = t0.elapsed();
    black_box(sum);
    ((n * frames.len()) as u64, d)
}

fn build_only() -> Round {
    let payload = vec![
        b'x';
        if V6.load(Ordering::Relaxed) {
            1440
        } else {
            1460
        }
    ];
    let mut buf = vec![0u8; 2048];
    let mut spec = FrameSpec {
        src_mac: SERVER_MAC,
        dst_mac: CLIENT_MAC,
        src_ip: server_ip(),
        dst_ip: tuple(0).remote_ip,
        ttl: 64,
        ip_id: 0,
        src_port: PORT,
        dst_port: 10_000,
        seq: 1,
        ack: 1,
        flags: TcpFlags::ACK,
        window: 1000,
        options: TcpOptions::default(),
    };
    let h = wire::tcp_headers_len(spec.src_ip.is_v4(), &spec.options);
    let n = 200_000u64;
    let t0 = Clock::now();
    for i in 0..n {
        // The payload copy is part of the cost, as in the worker's sink.
        buf[h..h + payload.len()].copy_from_slice(&payload);
        spec.seq = i as u32;
        let len = wire::build_tcp_frame(black_box(&mut buf), &spec, payload.len()).unwrap();
        black_box(len);
    }
    (n, t0.elapsed())
}

// ---------------------------------------------------------------------------------------------
// Runner
// ---------------------------------------------------------------------------------------------

struct Row {
    name: &'static str,
    unit: &'static str,
    run: Box<dyn Fn() -> Round>,
}

fn row(name: &'static str, unit: &'static str, run: impl Fn() -> Round + 'static) -> Row {
    Row {
        name,
        unit,
        run: Box::new(run),
    }
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let http_req: &'static [u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    let rows = [
        row("handshake: SYN in, SYN/ACK out", "SYN", || {
            handshake_syn(SynCookieMode::Never, false)
        }),
        row("handshake: SYN in, SYN/ACK out (cold table)", "SYN", || {
            handshake_syn(SynCookieMode::Never, true)
        }),
        row("handshake: final ACK in (ESTABLISHED)", "ACK", || {
            handshake_ack(SynCookieMode::Never)
        }),
        row("handshake: SYN in, cookie SYN/ACK out", "SYN", || {
            handshake_syn(SynCookieMode::Always, false)
        }),
        row("handshake: cookie ACK in (ESTABLISHED)", "ACK", || {
            handshake_ack(SynCookieMode::Always)
        }),
        row(
            "data: request in, response out (TestApp)",
            "request",
            request_response,
        ),
        row(
            "data: bulk 1 MiB, per data segment + 1/2 ACK",
            "segment",
            bulk,
        ),
        row(
            "teardown: client FIN first (2 in, 1 out)",
            "conn",
            teardown_client_first,
        ),
        row(
            "teardown: server FIN first (2 in, 1 out)",
            "conn",
            teardown_server_first,
        ),
        row("frame path: request frame (TestApp)", "frame", || {
            frame_path(small_app(), b"GET / HTTP/1.1\r\n\r\n\n")
        }),
        row("frame path: HTTP GET frame (HttpApp)", "frame", move || {
            let content = Arc::new(Content::fixed(&b"hello, world\n"[..], "text/plain"));
            frame_path(
                HttpApp::new(
                    HttpConfig::default(),
                    synack::http::StaticFiles::new(content),
                ),
                http_req,
            )
        }),
        row(
            "wire: parse_frame (IPv4+TCP checksums)",
            "frame",
            parse_only,
        ),
        row("wire: build_tcp_frame, 1460 B payload", "frame", build_only),
        row(
            "frame path: HTTP GET frame (HttpApp), IPv6",
            "frame",
            over_v6(move || {
                let content = Arc::new(Content::fixed(&b"hello, world\n"[..], "text/plain"));
                frame_path(
                    HttpApp::new(
                        HttpConfig::default(),
                        synack::http::StaticFiles::new(content),
                    ),
                    http_req,
                )
            }),
        ),
        row(
            "wire: parse_frame (IPv6+TCP checksum)",
            "frame",
            over_v6(parse_only),
        ),
        row(
            "wire: build_tcp_frame IPv6, 1440 B payload",
            "frame",
            over_v6(build_only),
        ),
    ];
    println!("synack engine microbenchmarks: {ROUNDS} rounds after a warm-up, one core");
    println!(
        "{:<48} {:>9} {:>10} {:>12} {:>10}",
        "benchmark", "per", "ops/round", "median ns", "best ns"
    );
    for row in &rows {
        if !filter.is_empty() && !filter.iter().any(|f| row.name.contains(f.as_str())) {
            continue;
        }
        let _ = (row.run)();
        let mut ns: Vec<f64> = Vec::with_capacity(ROUNDS);
        let mut ops = 0;
        for _ in 0..ROUNDS {
            let (n, d) = (row.run)();
            ops = n;
            ns.push(d.as_nanos() as f64 / n as f64);
        }
        ns.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{:<48} {:>9} {:>10} {:>12.1} {:>10.1}",
            row.name,
            row.unit,
            ops,
            ns[ns.len() / 2],
            ns[0]
        );
    }
}
