//! The worker's datapath over memory: real Ethernet/IPv4/TCP frames from a small scripted client
//! go through `worker::Datapath::poll` (wire parser, TCP engine, HTTP responder, frame builder)
//! and the frames that come out are parsed back and checked: handshake, an HTTP GET and its
//! response, FIN teardown in both orders, MAC addresses (per connection, also for timer-driven
//! segments), per-reason drop counters, a full TX ring (output waits for room instead of being
//! lost: 8 x 1 MiB through a 64-descriptor ring without a retransmission), fault injection,
//! and "the SYN/ACKs of one RX batch leave in one TX batch".
//!
//! Run: `cargo test --release --test datapath`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use synack::http::{Content, HttpApp, HttpConfig};
use synack::tcp::engine::{Engine, EngineConfig};
use synack::tcp::state::State;
use synack::time::Instant;
use synack::wire::IpAddress;
use synack::wire::tcp::{TcpFlags, TcpOptions};
use synack::wire::{self, DropReason, FrameSpec};
use synack::worker::{Datapath, FrameIo, TxQueue, WorkerDrop};

const SERVER: IpAddress = IpAddress::v4(u32::from_be_bytes([198, 18, 0, 1]));
/// The server's IPv6 address (fd00:198:18::1), served beside `SERVER`.
const SERVER6: IpAddress =
    IpAddress::v6([0xfd, 0, 0x01, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const PORT: u16 = 8080;
const SERVER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// The UMEM frame size the server uses by default.
const FRAME_SIZE: usize = 2048;

// ---------------------------------------------------------------------------------------------
// A NIC queue in memory
// ---------------------------------------------------------------------------------------------

/// TX side: one scratch frame written in place; `commit` copies it out. `free` models the free
/// frames of the UMEM/TX ring: `None` is unlimited, `Some(n)` runs out after `n` commits.
struct MemTx {
    scratch: Vec<u8>,
    committed: Vec<Vec<u8>>,
    free: Option<usize>,
    /// `frame()` calls answered with `None`.
    refused: usize,
}

impl TxQueue for MemTx {
    fn room(&mut self) -> usize {
        self.free.unwrap_or(usize::MAX)
    }
    fn frame(&mut self) -> Option<&mut [u8]> {
        if self.free == Some(0) {
            self.refused += 1;
            return None;
        }
        // Stale bytes from the last frame must not matter: fill with garbage.
        self.scratch.fill(0xa5);
        Some(&mut self.scratch[..])
    }
    fn commit(&mut self, len: usize) {
        assert!(len <= self.scratch.len(), "commit of {len} bytes");
        self.committed.push(self.scratch[..len].to_vec());
        if let Some(n) = &mut self.free {
            *n -= 1;
        }
    }
}

struct MemIo {
    rx: VecDeque<Vec<u8>>,
    tx: MemTx,
    /// A TX ring of this many descriptors: `flush` hands the batch to the wire and frees
    /// them all again (the completions of a ring that drains between polls).
    ring: Option<usize>,
    /// The frames of each `flush()` call, in order (empty batches included).
    flushed: Vec<Vec<Vec<u8>>>,
}

impl MemIo {
    fn new() -> Self {
        MemIo {
            rx: VecDeque::new(),
            tx: MemTx {
                scratch: vec![0; FRAME_SIZE],
                committed: Vec::new(),
                free: None,
                refused: 0,
            },
            ring: None,
            flushed: Vec::new(),
        }
    }
}

impl FrameIo for MemIo {
    fn receive(&mut self, max: usize, f: &mut dyn FnMut(&[u8], &mut dyn TxQueue)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(frame) = self.rx.pop_front() else {
                break;
            };
            f(&frame, &mut self.tx);
            n += 1;
        }
        n
    }
    fn transmit(&mut self, f: &mut dyn FnMut(&mut dyn TxQueue)) {
        f(&mut self.tx);
    }
    fn flush(&mut self) {
        let batch = std::mem::take(&mut self.tx.committed);
        self.flushed.push(batch);
        if self.ring.is_some() {
            self.tx.free = self.ring;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A scripted client
// ---------------------------------------------------------------------------------------------

/// A frame the server sent, parsed (with `wire::parse_frame`, which checks both checksums, and
/// cross-checked with etherparse).
#[derive(Clone, Debug)]
struct Got {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: IpAddress,
    dst_ip: IpAddress,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    options: TcpOptions,
    payload: Vec<u8>,
    frame_len: usize,
}

fn parse(frame: &[u8]) -> Got {
    let p = wire::parse_frame(frame).unwrap_or_else(|e| panic!("a frame we sent: {e:?}"));
    // An independent implementation agrees on the checksums.
    let e = etherparse::SlicedPacket::from_ethernet(frame).expect("a frame for etherparse");
    let Some(etherparse::TransportSlice::Tcp(t)) = &e.transport else {
        panic!("etherparse sees no TCP");
    };
    match &e.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            assert!(p.src_ip().is_v4());
            assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
            assert_eq!(
                t.calc_checksum_ipv4(h.source(), h.destination()).unwrap(),
                t.checksum()
            );
        }
        Some(etherparse::NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            assert!(!p.src_ip().is_v4());
            assert_eq!(h.source(), *p.src_ip().octets());
            assert_eq!(h.payload_length() as usize, frame.len() - 14 - 40);
            assert_eq!(
                t.calc_checksum_ipv6(h.source(), h.destination()).unwrap(),
                t.checksum()
            );
        }
        other => panic!("etherparse sees no IP: {other:?}"),
    }
    Got {
        src_mac: p.src_mac(),
        dst_mac: p.dst_mac(),
        src_ip: p.src_ip(),
        dst_ip: p.dst_ip(),
        src_port: p.src_port(),
        dst_port: p.dst_port(),
        seq: p.seq(),
        ack: p.ack(),
        flags: p.flags(),
        options: p.options,
        payload: p.payload().to_vec(),
        frame_len: frame.len(),
    }
}

struct Client {
    mac: [u8; 6],
    ip: IpAddress,
    /// The server address this client talks to (of its own family).
    server: IpAddress,
    port: u16,
    iss: u32,
    snd_nxt: u32,
    rcv_nxt: u32,
    ip_id: u16,
    /// In-order bytes received.
    received: Vec<u8>,
    got_fin: bool,
}

impl Client {
    fn new(n: u8, port: u16) -> Self {
        Client {
            mac: [0x02, 0, 0, 0, 1, n],
            ip: IpAddress::v4(u32::from_be_bytes([198, 18, 1, n])),
            server: SERVER,
            port,
            iss: 1_000_000 * n as u32 + port as u32,
            snd_nxt: 0,
            rcv_nxt: 0,
            ip_id: 0,
            received: Vec::new(),
            got_fin: false,
        }
    }

    /// The same client over IPv6 (fd00:198:18::1:N).
    fn new_v6(n: u8, port: u16) -> Self {
        let mut c = Client::new(n, port);
        c.ip = IpAddress::v6([0xfd, 0, 0x01, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 1, 0, n]);
        c.server = SERVER6;
        c
    }

    /// One client of each family.
    fn both(n: u8, port: u16) -> [Client; 2] {
        [Client::new(n, port), Client::new_v6(n, port)]
    }

    /// The MSS the server announces to this client for a 1500-byte MTU.
    fn server_mss(&self) -> u16 {
        if self.ip.is_v4() { 1460 } else { 1440 }
    }

    fn frame(&mut self, seq: u32, flags: TcpFlags, options: TcpOptions, payload: &[u8]) -> Vec<u8> {
        let spec = FrameSpec {
            src_mac: self.mac,
            dst_mac: SERVER_MAC,
            src_ip: self.ip,
            dst_ip: self.server,
            ttl: 64,
            ip_id: self.ip_id,
            src_port: self.port,
            dst_port: PORT,
            seq,
            ack: if flags.ack() { self.rcv_nxt } else { 0 },
            flags,
            window: 65535,
            options,
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        let hdr = wire::tcp_headers_len(spec.src_ip.is_v4(), &options);
        let mut buf = vec![0u8; hdr + payload.len()];
        buf[hdr..].copy_from_slice(payload);
        let n = wire::build_tcp_frame(&mut buf, &spec, payload.len()).expect("frame fits");
        buf.truncate(n);
        buf
    }

    fn syn(&mut self) -> Vec<u8> {
        let o = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            ..TcpOptions::default()
        };
        self.snd_nxt = self.iss.wrapping_add(1);
        self.frame(self.iss, TcpFlags::SYN, o, &[])
    }

    fn ack(&mut self) -> Vec<u8> {
        self.frame(self.snd_nxt, TcpFlags::ACK, TcpOptions::default(), &[])
    }

    fn send(&mut self, data: &[u8]) -> Vec<u8> {
        let seq = self.snd_nxt;
        self.snd_nxt = seq.wrapping_add(data.len() as u32);
        self.frame(
            seq,
            TcpFlags::ACK | TcpFlags::PSH,
            TcpOptions::default(),
            data,
        )
    }

    fn fin(&mut self) -> Vec<u8> {
        let seq = self.snd_nxt;
        self.snd_nxt = seq.wrapping_add(1);
        self.frame(
            seq,
            TcpFlags::FIN | TcpFlags::ACK,
            TcpOptions::default(),
            &[],
        )
    }

    /// Takes the server's frames addressed to this client, checks their addressing, and
    /// follows the server's sequence space (in-order data, SYN, FIN).
    fn take(&mut self, frames: &[Vec<u8>]) -> Vec<Got> {
        let mut mine = Vec::new();
        for f in frames {
            let g = parse(f);
            if g.dst_port != self.port || g.dst_ip != self.ip {
                continue;
            }
            assert_eq!(g.src_mac, SERVER_MAC, "from the server's MAC");
            assert_eq!(
                g.dst_mac, self.mac,
                "to the MAC this client's frames came from"
            );
            assert_eq!(
                (g.src_ip, g.src_port),
                (self.server, PORT),
                "from the server's address"
            );
            assert!(g.frame_len <= 14 + 1500, "a frame of {} bytes", g.frame_len);
            if g.flags.syn() {
                self.rcv_nxt = g.seq.wrapping_add(1);
            } else if g.seq == self.rcv_nxt {
                self.received.extend_from_slice(&g.payload);
                self.rcv_nxt = self.rcv_nxt.wrapping_add(g.payload.len() as u32);
                if g.flags.fin() {
                    self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                    self.got_fin = true;
                }
            }
            mine.push(g);
        }
        mine
    }
}

// ---------------------------------------------------------------------------------------------
// The rig: a datapath with an HTTP responder, and a clock
// ---------------------------------------------------------------------------------------------

struct Rig {
    dp: Datapath<HttpApp, MemIo>,
    now: Instant,
}

impl Rig {
    fn new(body: &'static [u8], batch: usize) -> Self {
        let content = Arc::new(Content::fixed(body, "text/plain"));
        let app = HttpApp::new(
            HttpConfig::default(),
            synack::http::StaticFiles::new(content),
        );
        let cfg = EngineConfig {
            local_ips: vec![SERVER, SERVER6],
            ..EngineConfig::default()
        };
        let engine = Engine::new(cfg, app);
        Rig {
            dp: Datapath::new(engine, MemIo::new(), SERVER_MAC, batch),
            now: Instant::from_millis(10_000_000),
        }
    }

    /// Receives `frames` (one poll per RX batch) and returns every frame sent meanwhile.
    fn deliver(&mut self, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let before = self.dp.io.flushed.len();
        self.dp.io.rx.extend(frames);
        let mut polls = 0;
        while !self.dp.io.rx.is_empty() {
            self.dp.poll(self.now, 0);
            polls += 1;
            assert!(polls < 1000);
        }
        self.dp.io.flushed[before..].concat()
    }

    /// Lets time pass, runs one poll (timers) and returns what was sent.
    fn advance(&mut self, d: Duration) -> Vec<Vec<u8>> {
        self.now += d;
        self.dp.poll(self.now, 0);
        self.dp.io.flushed.last().cloned().unwrap_or_default()
    }

    fn wire_drops(&self, why: DropReason) -> u64 {
        self.dp.counters.wire_drops[why as usize]
    }

    fn worker_drops(&self, why: WorkerDrop) -> u64 {
        self.dp.counters.worker_drops[why as usize]
    }

    /// SYN, SYN/ACK, ACK: the connection is ESTABLISHED.
    fn handshake(&mut self, c: &mut Client) {
        let syn = c.syn();
        let out = self.deliver(vec![syn]);
        let got = c.take(&out);
        assert_eq!(got.len(), 1, "one SYN/ACK: {got:?}");
        let sa = &got[0];
        assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(sa.ack, c.iss.wrapping_add(1));
        assert_eq!(sa.options.mss, Some(c.server_mss()));
        assert_eq!(sa.options.window_scale, Some(3), "256 KiB needs shift 3");
        assert!(sa.options.sack_permitted);
        let ack = c.ack();
        let out = self.deliver(vec![ack]);
        assert!(c.take(&out).is_empty(), "the final ACK needs no answer");
        assert_eq!(self.state(c), Some(State::Established));
    }

    fn state(&self, c: &Client) -> Option<State> {
        let t = synack::wire::segment::FourTuple {
            remote_ip: c.ip,
            remote_port: c.port,
            local_ip: c.server,
            local_port: PORT,
        };
        self.dp.engine.connection(&t).map(|c| c.state())
    }
}

/// `n` bytes of a recognisable body.
fn body(n: usize) -> &'static [u8] {
    let v: Vec<u8> = (0..n).map(|i| b"0123456789abcdef"[i % 16]).collect();
    Box::leak(v.into_boxed_slice())
}

/// A head and `body_len` bytes after it have arrived.
fn response_complete(resp: &[u8], body_len: usize) -> bool {
    resp.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .is_some_and(|h| resp.len() >= h + 4 + body_len)
}

/// Splits a response into head and body, checking the status line and Content-Length.
fn check_response(resp: &[u8], body: &[u8], close: bool) {
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head")
        + 4;
    let head = std::str::from_utf8(&resp[..split]).expect("an ASCII head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
        "{head}"
    );
    assert!(lower.contains("\r\ncontent-type: text/plain"), "{head}");
    assert_eq!(lower.contains("\r\nconnection: close\r\n"), close, "{head}");
    assert_eq!(&resp[split..], body, "the body, byte for byte");
}

const GET: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: synack\r\n\r\n";
const GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: synack\r\nConnection: close\r\n\r\n";

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Handshake, a GET whose 3000-byte response takes three segments, then the client closes:
/// FIN, the server's FIN, the last ACK; the server ends in CLOSED (no TIME-WAIT on its side).
#[test]
fn http_get_then_client_closes() {
    for c in Client::both(2, 40000) {
        http_get_then_client_closes_for(c);
    }
}

fn http_get_then_client_closes_for(mut c: Client) {
    let b = body(3000);
    let mut rig = Rig::new(b, 64);
    rig.handshake(&mut c);

    let req = c.send(GET);
    let out = rig.deliver(vec![req]);
    let got = c.take(&out);
    assert_eq!(
        got.len(),
        3,
        "3000 bytes + head in MSS-sized segments: {got:?}"
    );
    for g in &got {
        assert!(g.payload.len() <= c.server_mss() as usize);
        assert!(g.flags.ack());
        assert_eq!(g.ack, c.snd_nxt, "the request is acknowledged");
    }
    check_response(&c.received, b, false);
    assert_eq!(rig.dp.engine.app().stats().responses, 1);

    // Acknowledge the response, then close.
    let ack = c.ack();
    assert!(c.take(&rig.deliver(vec![ack])).is_empty());
    let fin = c.fin();
    let got = c.take(&rig.deliver(vec![fin]));
    assert!(c.got_fin, "the server closes its side after ours: {got:?}");
    assert!(
        got.iter().all(|g| g.ack == c.snd_nxt),
        "our FIN is acknowledged"
    );
    assert_eq!(rig.state(&c), Some(State::LastAck));
    let last = c.ack();
    assert!(c.take(&rig.deliver(vec![last])).is_empty());
    assert_eq!(rig.state(&c), None);
    assert_eq!(rig.dp.engine.connections(), 0);
    assert_eq!(
        rig.dp.engine.time_wait_len(),
        0,
        "the passive closer keeps no TIME-WAIT"
    );
    assert_eq!(rig.dp.engine.app().stats().connections_closed, 1);

    let fc = &rig.dp.counters;
    assert_eq!(fc.rx_frames, 6);
    assert_eq!(
        fc.tx_frames as usize,
        rig.dp.io.flushed.iter().map(Vec::len).sum::<usize>()
    );
    assert_eq!(fc.wire_drops.iter().sum::<u64>(), 0);
    assert_eq!(fc.worker_drops.iter().sum::<u64>(), 0);
}

/// `Connection: close`: the response carries the header, the server's FIN follows it, and
/// the server (the active closer) keeps a TIME-WAIT record once the client's FIN arrives.
#[test]
fn http_get_connection_close_server_closes_first() {
    for c in Client::both(3, 40001) {
        http_get_connection_close_server_closes_first_for(c);
    }
}

fn http_get_connection_close_server_closes_first_for(mut c: Client) {
    let b = body(100);
    let mut rig = Rig::new(b, 64);
    rig.handshake(&mut c);
    let req = c.send(GET_CLOSE);
    let got = c.take(&rig.deliver(vec![req]));
    assert!(c.got_fin, "FIN after the response: {got:?}");
    check_response(&c.received, b, true);
    assert_eq!(rig.state(&c), Some(State::FinWait1));
    // ACK of data and FIN, and our own FIN, in one segment.
    let fin = c.fin();
    let got = c.take(&rig.deliver(vec![fin]));
    assert_eq!(got.len(), 1, "the ACK of our FIN: {got:?}");
    assert_eq!(got[0].flags, TcpFlags::ACK);
    assert_eq!(got[0].ack, c.snd_nxt);
    assert_eq!(rig.state(&c), None);
    assert_eq!(rig.dp.engine.time_wait_len(), 1);
    // TIME-WAIT ends after 2*MSL (60 s).
    rig.advance(Duration::from_secs(61));
    assert_eq!(rig.dp.engine.time_wait_len(), 0);
}

/// RFC 1191 / RFC 8201 through the whole frame path: a router between the client and the
/// server answers the first segments of a large response with "fragmentation needed" /
/// "packet too big" (MTU 1280), quoting the frames the server sent. The worker hands them to
/// the connection, which resends what was in flight in segments that fit; a message quoting a
/// segment that is not in flight (RFC 5927) or another connection changes nothing, and a
/// corrupted one is a counted drop.
#[test]
fn a_routers_packet_too_big_lowers_the_mss_of_its_connection() {
    for mut c in Client::both(9, 41000) {
        let b = body(20_000);
        let mut rig = Rig::new(b, 64);
        rig.handshake(&mut c);
        let req = c.send(GET);
        let first = rig.deliver(vec![req]);
        assert!(first.len() >= 10, "an initial window of full segments");
        let full = parse(&first[0]).payload.len();
        assert_eq!(full, c.server_mss() as usize);
        // Only the frames that fit 1280 bytes passed the router: none of them here.
        let router = [0x02, 0, 0, 0, 9, 9];
        let spec = |mtu: u32| synack::wire::icmp::IcmpFrameSpec {
            src_mac: router,
            dst_mac: SERVER_MAC,
            src_ip: if c.ip.is_v4() {
                *IpAddress::v4(u32::from_be_bytes([198, 18, 255, 1])).octets()
            } else {
                [0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 1]
            },
            dst_ip: *c.server.octets(),
            mtu,
        };
        let too_big = |frame: &[u8], mtu: u32| {
            let mut buf = vec![0u8; 2048];
            let n = if c.ip.is_v4() {
                synack::wire::icmp::build_frag_needed_frame(&mut buf, &spec(mtu), &frame[14..])
            } else {
                synack::wire::icmp::build_packet_too_big_frame(&mut buf, &spec(mtu), &frame[14..])
            }
            .unwrap();
            buf.truncate(n);
            buf
        };
        // A message quoting a sequence number beyond what was sent (RFC 5927) is ignored.
        let mut beyond = first[0].clone();
        let l4 = if c.ip.is_v4() { 14 + 20 } else { 14 + 40 };
        beyond[l4 + 4..l4 + 8].copy_from_slice(&(parse(&first[0]).seq + 1_000_000).to_be_bytes());
        assert!(rig.deliver(vec![too_big(&beyond, 1280)]).is_empty());
        assert_eq!(rig.dp.engine.counters().pmtu_ignored, 1);
        // A corrupted message is dropped and counted.
        let mut bad = too_big(&first[0], 1280);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(rig.deliver(vec![bad]).is_empty());
        assert_eq!(rig.wire_drops(DropReason::BadIcmp), 1);
        // The real one: everything in flight comes again, at most 1280 bytes a frame.
        let again = rig.deliver(vec![too_big(&first[0], 1280)]);
        assert!(!again.is_empty(), "resent at once");
        let got: Vec<Got> = again.iter().map(|f| parse(f)).collect();
        assert_eq!(got[0].seq, parse(&first[0]).seq, "from SND.UNA");
        for (f, g) in again.iter().zip(&got) {
            assert!(
                f.len() - 14 <= 1280,
                "an IP datagram of {} bytes",
                f.len() - 14
            );
            assert_eq!(g.dst_ip, c.ip);
        }
        let tcp = rig.dp.engine.counters().clone();
        assert_eq!(tcp.pmtu_lowered, 1);
        // The same message again (the MTU is no lower now) changes nothing.
        assert!(rig.deliver(vec![too_big(&first[0], 1280)]).is_empty());
        assert_eq!(rig.dp.engine.counters().pmtu_ignored, 2);
        // The client got none of the first frames (the router dropped them) and takes the
        // resends; the rest of the response fits the path too.
        c.take(&again);
        for _ in 0..20 {
            if c.received.len() >= b.len() {
                break;
            }
            let ack = c.ack();
            let out = rig.deliver(vec![ack]);
            for f in &out {
                assert!(f.len() - 14 <= 1280, "after the message every frame fits");
            }
            c.take(&out);
        }
        check_response(&c.received, b, false);
        assert_eq!(rig.dp.engine.counters().rto_expirations, 0);
    }
}

/// A frame whose TCP checksum is wrong never reaches the engine; a wrong IPv4 header
/// checksum is counted under its own reason.
#[test]
fn bad_checksums_are_dropped_and_counted() {
    let mut rig = Rig::new(body(10), 64);
    let mut c = Client::new(4, 40000);
    let mut syn = c.syn();
    let last = syn.len() - 1;
    syn[last] ^= 0x40; // a TCP option byte
    assert!(rig.deliver(vec![syn]).is_empty());
    assert_eq!(rig.wire_drops(DropReason::BadTcpChecksum), 1);
    assert_eq!(rig.dp.engine.counters().segments_in, 0);

    let mut syn = c.syn();
    syn[14 + 8] = 63; // the TTL, covered by the IPv4 header checksum
    assert!(rig.deliver(vec![syn]).is_empty());
    assert_eq!(rig.wire_drops(DropReason::BadIpChecksum), 1);
    assert_eq!(rig.dp.engine.counters().segments_in, 0);

    // The same SYN intact is answered.
    let syn = c.syn();
    assert_eq!(c.take(&rig.deliver(vec![syn])).len(), 1);
    assert_eq!(rig.dp.counters.rx_frames, 3);
}

/// ARP, VLAN-tagged, a broken IPv6 header and runt frames are counted, not answered.
#[test]
fn non_ip_frames_are_counted() {
    let mut rig = Rig::new(body(10), 64);
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 1, 9]);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.resize(60, 0);
    let mut ipv6 = arp.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let mut vlan = arp.clone();
    vlan[12..14].copy_from_slice(&[0x81, 0x00]);
    let runt = vec![0u8; 10];
    let out = rig.deliver(vec![arp, ipv6, vlan, runt]);
    assert!(out.is_empty());
    assert_eq!(rig.wire_drops(DropReason::NotIp), 2);
    assert_eq!(rig.wire_drops(DropReason::BadIpVersion), 1);
    assert_eq!(rig.wire_drops(DropReason::TooShort), 1);
    assert_eq!(rig.dp.counters.rx_frames, 4);
    assert_eq!(rig.dp.engine.counters().segments_in, 0);
}

/// No free TX frame: the SYN/ACK and later the rest of the response wait in the engine
/// (counted as deferred, not as dropped or sent) and leave at the first poll after frames are
/// free again, without any timer or retransmission. A stateless answer (a RST to no
/// connection) is dropped and counted instead: the peer retransmits.
#[test]
fn tx_full_defers_output_until_room_returns() {
    let b = body(5000);
    let mut rig = Rig::new(b, 64);
    let mut c = Client::new(5, 40000);

    rig.dp.io.tx.free = Some(0);
    let syn = c.syn();
    assert!(rig.deliver(vec![syn]).is_empty());
    assert_eq!(
        rig.state(&c),
        Some(State::SynReceived),
        "the connection exists anyway"
    );
    let tcp = rig.dp.engine.counters();
    assert_eq!((tcp.synacks_sent, tcp.segments_out), (0, 0), "nothing sent");
    assert_eq!(tcp.tx_deferred, 1);
    assert_eq!(rig.dp.engine.tx_waiting(), 1);
    // A segment for no connection: its RST cannot wait for room.
    let mut stranger = Client::new(5, 40001);
    let ack = stranger.ack();
    assert!(rig.deliver(vec![ack]).is_empty());
    assert_eq!(
        rig.dp
            .engine
            .counters()
            .dropped(synack::tcp::counters::TcpDrop::NoTxRoom),
        1
    );
    assert_eq!(rig.dp.io.tx.refused, 0, "nothing offered to a full ring");

    // Frames are free again: the SYN/ACK leaves at the next poll, as a first transmission.
    rig.dp.io.tx.free = None;
    let got = c.take(&rig.advance(Duration::from_millis(1)));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(rig.dp.engine.counters().synack_retransmits, 0);
    assert_eq!(rig.dp.engine.tx_waiting(), 0);
    let ack = c.ack();
    assert!(c.take(&rig.deliver(vec![ack])).is_empty());
    assert_eq!(rig.state(&c), Some(State::Established));

    // Room for one frame only: the first segment of the response leaves, the rest waits.
    rig.dp.io.tx.free = Some(1);
    let req = c.send(GET);
    let got = c.take(&rig.deliver(vec![req]));
    assert_eq!(got.len(), 1);
    assert_eq!(rig.dp.engine.tx_waiting(), 1);
    rig.dp.io.tx.free = None;
    let got = c.take(&rig.advance(Duration::from_millis(1)));
    assert_eq!(got.len(), 3, "the rest of the response at once: {got:?}");
    check_response(&c.received, b, false);
    let tcp = rig.dp.engine.counters();
    assert_eq!(tcp.retransmits, 0, "{tcp:?}");
    assert_eq!(tcp.tx_deferred, 2);
    assert_eq!(rig.worker_drops(WorkerDrop::TxFull), 0);
    assert_eq!(rig.dp.io.tx.refused, 0);
    assert_eq!(tcp.segments_out, rig.dp.counters.tx_frames);
}

/// `--inject-drop`: dropped frames are counted as Injected and never reach the engine.
#[test]
fn injected_drops_are_counted() {
    let mut rig = Rig::new(body(10), 64);
    rig.dp.set_inject_drop(1.0, 42);
    let mut clients: Vec<Client> = (0..5).map(|i| Client::new(6, 41000 + i)).collect();
    let syns = clients.iter_mut().map(|c| c.syn()).collect();
    assert!(rig.deliver(syns).is_empty());
    assert_eq!(rig.worker_drops(WorkerDrop::Injected), 5);
    assert_eq!(rig.dp.counters.rx_frames, 5);
    assert_eq!(rig.dp.engine.counters().segments_in, 0);
    rig.dp.set_inject_drop(0.0, 42);
    let syn = clients[0].syn();
    assert_eq!(clients[0].take(&rig.deliver(vec![syn])).len(), 1);
    assert_eq!(rig.worker_drops(WorkerDrop::Injected), 5);
}

/// 32 SYNs in one RX batch: their 32 SYN/ACKs are committed before the single flush of that
/// poll, so they leave in one TX batch (one kick).
#[test]
fn syn_acks_of_one_rx_batch_leave_in_one_tx_batch() {
    let mut rig = Rig::new(body(10), 64);
    let mut clients: Vec<Client> = (0..32).map(|i| Client::new(7, 42000 + i)).collect();
    for c in &mut clients {
        let syn = c.syn();
        rig.dp.io.rx.push_back(syn);
    }
    let flushes = rig.dp.io.flushed.len();
    let n = rig.dp.poll(rig.now, 0);
    assert_eq!(n, 32, "one RX batch");
    assert_eq!(rig.dp.io.flushed.len(), flushes + 1, "one flush per poll");
    let batch = rig.dp.io.flushed.last().unwrap().clone();
    assert_eq!(batch.len(), 32, "all 32 SYN/ACKs in that one TX batch");
    for c in &mut clients {
        let got = c.take(&batch);
        assert_eq!(got.len(), 1, "one SYN/ACK for port {}", c.port);
        assert_eq!(got[0].flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(got[0].ack, c.iss.wrapping_add(1));
    }
    assert_eq!(rig.dp.counters.rx_batches, 1);

    // With RX batches of 16, the same load takes two polls and two TX batches of 16.
    let mut rig = Rig::new(body(10), 16);
    for c in &mut clients {
        let syn = c.syn();
        rig.dp.io.rx.push_back(syn);
    }
    rig.dp.poll(rig.now, 0);
    rig.dp.poll(rig.now, 0);
    let sizes: Vec<usize> = rig.dp.io.flushed.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![16, 16]);
}

/// Replies go to the MAC address the peer's frames came from, also when a timer sends them
/// (a SYN/ACK retransmission has no received frame to copy the address from).
#[test]
fn replies_go_to_each_peers_mac() {
    let mut rig = Rig::new(body(10), 64);
    let mut a = Client::new(8, 43000);
    let mut b = Client::new(9, 43000);
    assert_ne!(a.mac, b.mac);
    let (sa, sb) = (a.syn(), b.syn());
    let out = rig.deliver(vec![sa, sb]);
    // `take` asserts the destination MAC of every frame to that client.
    assert_eq!(a.take(&out).len(), 1);
    assert_eq!(b.take(&out).len(), 1);
    // Nobody answers: both SYN/ACKs are retransmitted by the timer, each to its own MAC.
    let out = rig.advance(Duration::from_millis(1100));
    assert_eq!(a.take(&out).len(), 1);
    assert_eq!(b.take(&out).len(), 1);
    assert_eq!(rig.dp.engine.counters().synack_retransmits, 2);
}

/// A segment larger than a TX frame is dropped and counted as TxTooBig (not written past
/// the frame), while smaller ones still go.
#[test]
fn segments_too_big_for_a_frame_are_counted() {
    let b = body(3000);
    let mut rig = Rig::new(b, 64);
    let mut c = Client::new(10, 44000);
    rig.handshake(&mut c);
    // Frames of 1000 bytes: the 1460-byte segments of the response cannot fit.
    rig.dp.io.tx.scratch = vec![0; 1000];
    let req = c.send(GET);
    let got = c.take(&rig.deliver(vec![req]));
    assert!(
        got.iter().all(|g| g.frame_len <= 1000),
        "only what fits goes out"
    );
    assert!(
        got.len() <= 1,
        "at most the short tail of the response: {got:?}"
    );
    assert_eq!(
        rig.worker_drops(WorkerDrop::TxTooBig),
        2,
        "two full segments dropped"
    );
    assert_eq!(rig.worker_drops(WorkerDrop::TxFull), 0);
    // A bare ACK fits.
    let fin = c.fin();
    let got = c.take(&rig.deliver(vec![fin]));
    assert!(!got.is_empty());
    assert!(
        got.iter()
            .all(|g| g.payload.is_empty() && g.frame_len <= 1000)
    );
}

/// Graceful shutdown through `Datapath::with_sink`: idle connections are closed with a FIN,
/// new SYNs are refused with a RST, and `abort_all` resets what is left.
#[test]
fn shutdown_closes_idle_connections_then_resets_the_rest() {
    let b = body(50_000);
    let mut rig = Rig::new(b, 64);
    let mut idle = Client::new(11, 45000);
    let mut busy = Client::new(11, 45001);
    rig.handshake(&mut idle);
    rig.handshake(&mut busy);
    // The busy one has a response in flight (not acknowledged).
    let req = busy.send(GET);
    assert!(!busy.take(&rig.deliver(vec![req])).is_empty());

    let flushes = rig.dp.io.flushed.len();
    let now = rig.now;
    rig.dp
        .with_sink(&mut |e, mut sink| e.begin_shutdown(now, &mut sink));
    assert_eq!(rig.dp.io.flushed.len(), flushes + 1, "one TX batch");
    let out = rig.dp.io.flushed.last().unwrap().clone();
    let got = idle.take(&out);
    assert_eq!(got.len(), 1);
    assert!(got[0].flags.fin(), "the idle connection is closed: {got:?}");
    assert!(busy.take(&out).is_empty(), "the busy one is left to finish");
    assert_eq!(rig.state(&idle), Some(State::FinWait1));

    let mut late = Client::new(12, 46000);
    let syn = late.syn();
    let got = late.take(&rig.deliver(vec![syn]));
    assert_eq!(got.len(), 1);
    assert!(
        got[0].flags.rst(),
        "no new connections while shutting down: {got:?}"
    );

    rig.dp
        .with_sink(&mut |e, mut sink| e.abort_all(now, &mut sink));
    let out = rig.dp.io.flushed.last().unwrap().clone();
    assert!(busy.take(&out).iter().any(|g| g.flags.rst()));
    assert!(idle.take(&out).iter().any(|g| g.flags.rst()));
    assert_eq!(rig.dp.engine.connections(), 0);
}

/// Transmit backpressure (issue 7): a TX ring of 64 descriptors that drains only between
/// polls, 8 connections each fetching 1 MiB over a lossless link. The server sends more than
/// 64 segments per poll whenever its windows allow, so the ring is full again and again; what
/// does not fit must wait in the engine, not be dropped and recovered as a loss: every body
/// arrives byte-exact, nothing is retransmitted and no frame is refused.
#[test]
fn a_full_tx_ring_defers_output_without_loss() {
    const RING: usize = 64;
    const CLIENTS: u16 = 8;
    let b = body(1 << 20);
    let mut rig = Rig::new(b, 64);
    let mut clients: Vec<Client> = (0..CLIENTS).map(|i| Client::new(13, 47000 + i)).collect();
    for c in &mut clients {
        rig.handshake(c);
    }
    rig.dp.io.ring = Some(RING);
    rig.dp.io.tx.free = Some(RING);
    let reqs = clients.iter_mut().map(|c| c.send(GET)).collect::<Vec<_>>();
    rig.dp.io.rx.extend(reqs);
    let mut polls = 0;
    while !clients
        .iter()
        .all(|c| response_complete(&c.received, b.len()))
    {
        rig.now += Duration::from_micros(500);
        rig.dp.poll(rig.now, 0);
        let batch = rig.dp.io.flushed.last().unwrap().clone();
        assert!(batch.len() <= RING, "a batch of {} frames", batch.len());
        // Each client acknowledges what it got in this batch (lossless, in order).
        for c in &mut clients {
            if !c.take(&batch).is_empty() {
                let ack = c.ack();
                rig.dp.io.rx.push_back(ack);
            }
        }
        polls += 1;
        assert!(
            polls < 20_000,
            "stalled: {:?} bytes, {:?}",
            clients.iter().map(|c| c.received.len()).collect::<Vec<_>>(),
            rig.dp.engine.counters()
        );
    }
    for c in &clients {
        check_response(&c.received, b, false);
    }
    let tcp = rig.dp.engine.counters();
    assert_eq!(tcp.retransmits, 0, "{tcp:?}");
    assert_eq!(tcp.rto_expirations, 0, "{tcp:?}");
    assert_eq!(rig.worker_drops(WorkerDrop::TxFull), 0);
    assert_eq!(rig.dp.io.tx.refused, 0, "nothing offered to a full ring");
    assert!(tcp.tx_deferred > 0, "the ring was full at times: {tcp:?}");
    assert_eq!(
        tcp.segments_out, rig.dp.counters.tx_frames,
        "every segment counted as sent is a frame"
    );
}

/// Per-connection destination MAC (issue 7): two clients on one L2 segment whose IPv4
/// addresses fell into the same slot of the old direct-mapped MAC cache. The SYN/ACK that a
/// timer retransmits, and a data segment the retransmission timer resends, go to the MAC of
/// their own connection's frames, not to the other host's (the MAC seen last).
#[test]
fn timer_driven_segments_go_to_their_connections_mac() {
    let mut rig = Rig::new(body(3000), 64);
    let mut a = Client::new(14, 48000);
    let mut b = Client::new(15, 48000);
    // Same slot in the old 4096-entry cache: ((ip * 0x9E3779B1) >> 8) & 4095 == 3291.
    a.ip = IpAddress::v4(u32::from_be_bytes([198, 18, 2, 1]));
    b.ip = IpAddress::v4(u32::from_be_bytes([198, 18, 31, 64]));
    assert_ne!(a.mac, b.mac);
    let sa = a.syn();
    let got = a.take(&rig.deliver(vec![sa]));
    assert_eq!(got.len(), 1);
    // B's SYN arrives last: the old cache's slot and its "last MAC seen" are B's.
    let sb = b.syn();
    let got = b.take(&rig.deliver(vec![sb]));
    assert_eq!(got.len(), 1);
    // Nobody answers: both SYN/ACKs are retransmitted by the timer, each to its own MAC
    // (`take` asserts the destination MAC of every frame addressed to that client).
    let out = rig.advance(Duration::from_millis(1100));
    assert_eq!(a.take(&out).len(), 1, "A's SYN/ACK again");
    assert_eq!(b.take(&out).len(), 1, "B's SYN/ACK again");
    assert_eq!(rig.dp.engine.counters().synack_retransmits, 2);
    let (ka, kb) = (a.ack(), b.ack());
    rig.deliver(vec![ka, kb]);
    assert_eq!(rig.state(&a), Some(State::Established));
    // A asks for the body, B speaks last again; A's response is lost on the way.
    let req = a.send(GET);
    let lost = rig.deliver(vec![req]);
    assert!(!lost.is_empty());
    let kb = b.ack();
    rig.deliver(vec![kb]);
    // The retransmission timer resends A's first segment, to A's MAC.
    let mut resent = Vec::new();
    for _ in 0..30 {
        resent = a.take(&rig.advance(Duration::from_millis(200)));
        if !resent.is_empty() {
            break;
        }
    }
    assert!(!resent.is_empty(), "no retransmission");
    assert!(rig.dp.engine.counters().retransmits >= 1);
    // A's frames now come from another MAC (a new router, a moved VM): once an acceptable
    // segment shows it, replies follow it, as a neighbour entry would.
    a.mac = [0x02, 0, 0, 0, 2, 14];
    let fin = a.fin();
    let got = a.take(&rig.deliver(vec![fin]));
    assert!(!got.is_empty(), "the FIN is answered, at the new MAC");
}

/// A pending ACK is not lost to a full ring: the delayed-ACK timer fires while there is no
/// room, the ACK stays pending, and it leaves (acknowledging everything) at the first poll
/// with room.
#[test]
fn a_pending_ack_waits_for_room() {
    let mut rig = Rig::new(body(10), 64);
    let mut c = Client::new(16, 49000);
    rig.handshake(&mut c);
    rig.dp.io.tx.free = Some(0);
    // Half a request: nothing to answer yet, only a delayed ACK.
    let part = c.send(b"GET / HTTP/1.1\r\n");
    assert!(rig.deliver(vec![part]).is_empty());
    assert!(rig.advance(Duration::from_millis(50)).is_empty(), "no room");
    assert!(
        rig.advance(Duration::from_millis(50)).is_empty(),
        "still none"
    );
    assert_eq!(rig.dp.engine.tx_waiting(), 1);
    rig.dp.io.tx.free = None;
    let got = c.take(&rig.advance(Duration::from_millis(1)));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].flags, TcpFlags::ACK);
    assert_eq!(got[0].ack, c.snd_nxt, "everything received is acknowledged");
    assert!(got[0].payload.is_empty());
    assert_eq!(rig.dp.engine.tx_waiting(), 0);
    assert_eq!(rig.dp.io.tx.refused, 0);
}
