//! Loss recovery of an ESTABLISHED connection whose peer does SACK: the RFC 8985 tail loss
//! probe, RFC 6675 recovery with several retransmissions per ACK, the scoreboard kept across
//! an RTO (RFC 6675 5.1), slow-start restart after idle (RFC 5681 4.1), and path MTU
//! discovery (RFC 1191, RFC 8201, checked as RFC 5927 asks) over both families.

use std::time::Duration;

use bytes::Bytes;
use synack::tcp::engine::{Engine, EngineConfig, SynCookieMode};
use synack::tcp::state::State;
use synack::tcp::testkit::{CollectSink, OwnedSegment, TestApp, TestAppConfig, segment};
use synack::time::Instant;
use synack::wire::IpAddress;
use synack::wire::segment::FourTuple;
use synack::wire::seq::SeqNumber;
use synack::wire::tcp::{SackBlock, TcpFlags, TcpOptions};

const SERVER: u32 = u32::from_be_bytes([198, 18, 0, 1]);
const CLIENT: u32 = u32::from_be_bytes([198, 18, 0, 2]);
const C_ISS: u32 = 1_000_000;
/// Payload bytes per segment: MSS 1460, no timestamps.
const SEG: u32 = 1460;
/// The handshake's round trip, which becomes SRTT.
const RTT: Duration = Duration::from_millis(10);

const S: TcpFlags = TcpFlags::SYN;
const A: TcpFlags = TcpFlags::ACK;
const P: TcpFlags = TcpFlags::PSH;

/// An engine with one ESTABLISHED connection that agreed on SACK and window scaling.
struct Bench {
    e: Engine<TestApp>,
    out: CollectSink,
    now: Instant,
    t: FourTuple,
    /// The server's first data sequence number (ISS + 1).
    base: u32,
    c_nxt: u32,
}

impl Bench {
    /// ESTABLISHED, SRTT = 10 ms, answering each request with `response_len` bytes.
    fn established(response_len: usize) -> Self {
        let t = FourTuple {
            remote_ip: IpAddress::v4(CLIENT),
            remote_port: 40000,
            local_ip: IpAddress::v4(SERVER),
            local_port: 8080,
        };
        Bench::established_on(t, response_len)
    }

    /// The same on the connection `t` (either family; its local address is served).
    fn established_on(t: FourTuple, response_len: usize) -> Self {
        let app = TestApp::new(TestAppConfig {
            response: Bytes::from(vec![b'r'; response_len]),
            ..TestAppConfig::default()
        });
        let cfg = EngineConfig {
            syn_cookies: SynCookieMode::Never,
            local_ips: vec![t.local_ip],
            ..EngineConfig::default()
        };
        let mut b = Bench {
            e: Engine::new(cfg, app),
            out: CollectSink::default(),
            now: Instant::from_millis(1_000_000),
            t,
            base: 0,
            c_nxt: C_ISS + 1,
        };
        let syn = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            ..TcpOptions::default()
        };
        let out = b.send_opts(C_ISS, 0, S, syn, &[]);
        assert_eq!(out.len(), 1);
        let ours = if t.is_v4() { 1460 } else { 1440 };
        assert_eq!(
            out[0].header.options.mss,
            Some(ours),
            "MTU 1500 less this family's headers"
        );
        b.base = out[0].seq().raw() + 1;
        b.now += RTT;
        assert!(b.ack(0, &[]).is_empty());
        assert_eq!(
            b.e.connection(&b.t).map(|c| c.state()),
            Some(State::Established)
        );
        b
    }

    fn send_opts(
        &mut self,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        opts: TcpOptions,
        payload: &[u8],
    ) -> Vec<OwnedSegment> {
        // Window 1000 << 7: 128000 bytes, never the limit here.
        let seg = segment(self.t, seq, ack, flags, 1000, opts, payload);
        self.e.on_segment(self.now, &seg, &mut self.out);
        self.out.take()
    }

    /// The client acknowledges `acked` response bytes, with SACK blocks given in response
    /// bytes (`[from, to)` offsets from the first data byte).
    fn ack(&mut self, acked: u32, sack: &[(u32, u32)]) -> Vec<OwnedSegment> {
        let mut o = TcpOptions::default();
        for (i, &(l, r)) in sack.iter().enumerate() {
            o.sack_blocks[i] = SackBlock {
                left: self.base + l,
                right: self.base + r,
            };
        }
        o.sack_count = sack.len() as u8;
        let (seq, ack) = (self.c_nxt, self.base + acked);
        self.send_opts(seq, ack, A, o, &[])
    }

    /// The client sends a request (acknowledging `acked` response bytes).
    fn request(&mut self, acked: u32) -> Vec<OwnedSegment> {
        let (seq, ack) = (self.c_nxt, self.base + acked);
        let out = self.send_opts(seq, ack, A | P, TcpOptions::default(), b"GET\n");
        self.c_nxt += 4;
        out
    }

    /// Runs the clock in 1 ms ticks; returns what was sent and when (ms from the start).
    fn advance(&mut self, d: Duration) -> Vec<(Duration, OwnedSegment)> {
        let start = self.now;
        let end = self.now + d;
        let mut sent = Vec::new();
        while self.now < end {
            self.now = (self.now + Duration::from_millis(1)).min(end);
            self.e.on_tick(self.now, &mut self.out);
            for s in self.out.take() {
                sent.push((self.now.saturating_since(start), s));
            }
        }
        sent
    }

    /// A response byte offset of a segment.
    fn off(&self, s: &OwnedSegment) -> u32 {
        s.seq().raw().wrapping_sub(self.base)
    }
}

/// (a) RFC 8985 7: the last segment of a response is lost. Once the others are acknowledged,
/// the tail loss probe resends it after 2*SRTT + 40 ms (one segment in flight), long before
/// the 200 ms RTO.
#[test]
fn lost_last_segment_is_probed_at_two_srtt_not_at_the_rto() {
    let mut b = Bench::established(3 * SEG as usize);
    let resp = b.request(0);
    assert_eq!(resp.len(), 3);
    // The third segment is lost; the client acknowledges the first two after one RTT.
    b.now += RTT;
    assert!(b.ack(2 * SEG, &[]).is_empty());
    let sent = b.advance(Duration::from_millis(150));
    assert!(
        !sent.is_empty(),
        "no probe within 150 ms: waits for the RTO"
    );
    let (at, probe) = &sent[0];
    assert_eq!(b.off(probe), 2 * SEG, "the probe resends the last segment");
    assert_eq!(probe.payload, resp[2].payload);
    // 2 * 10 ms + 40 ms after the ACK.
    assert_eq!(*at, Duration::from_millis(60));
    assert_eq!(sent.len(), 1);
    assert_eq!(b.e.counters().tlp_probes, 1);
    // The probe repaired the loss: the ACK ends it; the RTO (armed again) stays quiet.
    assert!(b.ack(3 * SEG, &[]).is_empty());
    assert!(b.advance(Duration::from_secs(2)).is_empty());
}

/// (a') With several segments in flight the probe comes at 2*SRTT (+2 ms, as Linux) and,
/// with nothing new to send, resends the last segment.
#[test]
fn whole_lost_tail_is_probed_at_two_srtt() {
    let mut b = Bench::established(4 * SEG as usize);
    let resp = b.request(0);
    assert_eq!(resp.len(), 4);
    let sent = b.advance(Duration::from_millis(150));
    let (at, probe) = &sent[0];
    assert_eq!(*at, Duration::from_millis(22));
    assert_eq!(b.off(probe), 3 * SEG);
    assert_eq!(sent.len(), 1);
}

/// (b) RFC 6675 5 (C): one ACK whose SACK blocks show three holes makes the first segment
/// lost (IsLost: DupThresh SACKed ranges above it) and retransmits every hole the
/// congestion window allows, not one per ACK.
#[test]
fn several_holes_are_retransmitted_on_one_ack() {
    let mut b = Bench::established(10 * SEG as usize);
    let resp = b.request(0);
    assert_eq!(resp.len(), 10, "the initial window: ten segments");
    // Segments 1, 3 and 5 are lost. The receiver's duplicate ACKs report what arrived.
    b.now += RTT;
    let s = |i: u32| i * SEG;
    assert!(b.ack(s(1), &[]).is_empty(), "segment 0 arrived");
    assert!(b.ack(s(1), &[(s(2), s(3))]).is_empty());
    assert!(b.ack(s(1), &[(s(4), s(5)), (s(2), s(3))]).is_empty());
    let out = b.ack(s(1), &[(s(6), s(10)), (s(4), s(5)), (s(2), s(3))]);
    let offs: Vec<u32> = out.iter().map(|o| b.off(o) / SEG).collect();
    assert_eq!(
        offs,
        vec![1, 3, 5],
        "each hole once, in order, on this one ACK"
    );
    for o in &out {
        let i = (b.off(o) / SEG) as usize;
        assert_eq!(o.payload, resp[i].payload);
    }
    // Holes filled: the ACK ends recovery, nothing more is resent.
    assert!(b.ack(s(10), &[]).is_empty());
    assert!(b.advance(Duration::from_secs(2)).is_empty());
}

/// (c) RFC 6675 5.1: after an RTO, what the peer SACKed is not sent again.
#[test]
fn sacked_data_is_not_resent_after_an_rto() {
    let mut b = Bench::established(10 * SEG as usize);
    let resp = b.request(0);
    assert_eq!(resp.len(), 10);
    let s = |i: u32| i * SEG;
    // Segments 0-4 are lost; 5-9 arrive and are SACKed.
    b.now += RTT;
    let out = b.ack(0, &[(s(5), s(10))]);
    // Recovery resends 0-4 at once (all lost by DupThresh); they are lost too.
    assert!(out.iter().all(|o| b.off(o) < s(5)), "{out:?}");
    // The RTO fires; from then on, only segments 0-4 may be sent again.
    let mut resent = Vec::new();
    let sent = b.advance(Duration::from_millis(400));
    assert!(b.e.counters().rto_expirations >= 1);
    resent.extend(sent.into_iter().map(|x| x.1));
    // The client acknowledges each retransmission as it comes, still SACKing 5-9.
    for _ in 0..20 {
        let Some(top) = resent
            .iter()
            .map(|o| b.off(o) + o.payload.len() as u32)
            .max()
        else {
            break;
        };
        let acked = top.min(s(5));
        let out = if acked == s(5) {
            b.ack(s(10), &[])
        } else {
            b.ack(acked, &[(s(5), s(10))])
        };
        let done = out.is_empty() && acked == s(5);
        resent.extend(out);
        if done {
            break;
        }
    }
    for o in &resent {
        let i = (b.off(o) / SEG) as usize;
        assert!(i < 5, "segment {i}, SACKed before the RTO, was sent again");
        assert_eq!(o.payload, resp[i].payload);
    }
    assert!(
        resent.iter().any(|o| b.off(o) == s(4)),
        "segment 4 was resent"
    );
    assert_eq!(b.e.connection(&b.t).unwrap().send_queued(), 0);
}

/// (d) RFC 5681 4.1: after more than an RTO without sending, cwnd restarts from at most the
/// initial window (Linux: tcp_slow_start_after_idle = 1).
#[test]
fn slow_start_restarts_after_idle() {
    let mut b = Bench::established(40 * SEG as usize);
    // The first response opens cwnd well past ten segments: acknowledge as it arrives.
    let mut got = b.request(0).len() as u32;
    let mut acked = 0;
    while acked < 40 * SEG {
        b.now += Duration::from_millis(1);
        acked = (acked + 2 * SEG).min(got * SEG);
        let more = b.ack(acked, &[]);
        got += more.len() as u32;
    }
    let cwnd = b.e.connection(&b.t).unwrap().cwnd();
    assert!(cwnd > 30 * SEG, "cwnd {cwnd}");
    // A keep-alive request after 1 s of silence (RTO 200 ms): at most ten segments at once.
    b.advance(Duration::from_secs(1));
    let burst = b.request(40 * SEG);
    assert_eq!(
        burst.len(),
        10,
        "a burst of {} segments after idle",
        burst.len()
    );
    // Without the idle period the window is used as it is.
    let mut b2 = Bench::established(40 * SEG as usize);
    let mut got = b2.request(0).len() as u32;
    let mut acked = 0;
    while acked < 40 * SEG {
        b2.now += Duration::from_millis(1);
        acked = (acked + 2 * SEG).min(got * SEG);
        got += b2.ack(acked, &[]).len() as u32;
    }
    b2.advance(Duration::from_millis(50));
    assert!(b2.request(40 * SEG).len() > 30);
}

/// The IPv6 connection of the path-MTU tests.
fn tuple6() -> FourTuple {
    let a = |last: u8| IpAddress::v6([0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, last]);
    FourTuple {
        remote_ip: a(2),
        remote_port: 40000,
        local_ip: a(1),
        local_port: 8080,
    }
}

/// (e) RFC 1191 / RFC 8201: a router on the path says "1280 bytes at most" quoting the first
/// segment of a response. The MSS falls to 1240 (IPv4) or 1220 (IPv6), everything in flight
/// is resent from SND.UNA at the new size at once (no RTO wait), cwnd is not cut, and the
/// data that follows uses the new size.
#[test]
fn packet_too_big_lowers_the_mss_and_resends_what_was_in_flight() {
    for t in [None, Some(tuple6())] {
        let mut b = match t {
            None => Bench::established(10 * SEG as usize),
            Some(t) => Bench::established_on(t, 10 * SEG as usize),
        };
        let first_mss = if b.t.is_v4() { 1460 } else { 1440 };
        let resp = b.request(0);
        assert!(resp.iter().all(|s| s.payload.len() == first_mss));
        let total: usize = resp.iter().map(|s| s.payload.len()).sum();
        let cwnd = b.e.connection(&b.t).unwrap().cwnd();
        b.now += Duration::from_millis(1);
        let quoted = resp[0].seq();
        b.e.on_packet_too_big(b.now, &b.t, quoted, 1280, &mut b.out);
        let again = b.out.take();
        let new_mss = if b.t.is_v4() { 1240 } else { 1220 };
        assert_eq!(b.e.connection(&b.t).unwrap().mss(), new_mss as u32);
        assert_eq!(b.e.counters().pmtu_lowered, 1);
        assert!(!again.is_empty(), "resent at once");
        assert_eq!(b.off(&again[0]), 0, "from SND.UNA");
        assert!(
            again.iter().all(|s| s.payload.len() <= new_mss),
            "every resend fits the path"
        );
        let resent: usize = again.iter().map(|s| s.payload.len()).sum();
        // The whole window in smaller pieces, less a last piece that sender-side silly
        // window avoidance holds back (RFC 9293 3.8.6.2.1).
        assert!(
            resent <= cwnd as usize && resent + new_mss > total.min(cwnd as usize),
            "{resent} of {total}"
        );
        assert_eq!(b.e.connection(&b.t).unwrap().cwnd(), cwnd, "not congestion");
        // The client gets it all and acknowledges; the next response uses the new size.
        b.now += RTT;
        b.ack(total as u32, &[]);
        let next = b.request(total as u32);
        assert!(!next.is_empty());
        assert!(next.iter().all(|s| s.payload.len() <= new_mss));
        assert_eq!(b.e.counters().rto_expirations, 0);
    }
}

/// (f) RFC 5927 4.1: a message quoting a sequence number that is not in flight may be forged
/// by someone off the path and is ignored; so is one that would not lower the MSS. The MTU is
/// never taken below the family's floor (IPv4 552 as Linux's min_pmtu, IPv6 1280).
#[test]
fn packet_too_big_is_believed_only_for_data_in_flight_and_above_the_floor() {
    for t in [None, Some(tuple6())] {
        let mut b = match t {
            None => Bench::established(4 * SEG as usize),
            Some(t) => Bench::established_on(t, 4 * SEG as usize),
        };
        let mss0 = b.e.connection(&b.t).unwrap().mss();
        // Nothing in flight yet: ignored.
        b.e.on_packet_too_big(b.now, &b.t, SeqNumber::new(b.base), 1280, &mut b.out);
        assert!(b.out.take().is_empty());
        let resp = b.request(0);
        let end = resp.last().unwrap().seq().raw() + resp.last().unwrap().payload.len() as u32;
        // Before SND.UNA, at SND.MAX, far away: ignored.
        for seq in [b.base.wrapping_sub(1), end, end.wrapping_add(1 << 30)] {
            b.e.on_packet_too_big(b.now, &b.t, SeqNumber::new(seq), 1280, &mut b.out);
            assert!(b.out.take().is_empty(), "seq {seq}");
        }
        // Another connection's tuple: ignored.
        let mut other = b.t;
        other.remote_port += 1;
        b.e.on_packet_too_big(b.now, &other, resp[1].seq(), 1280, &mut b.out);
        // Not smaller than the MSS in use: ignored.
        b.e.on_packet_too_big(b.now, &b.t, resp[1].seq(), 9000, &mut b.out);
        assert!(b.out.take().is_empty());
        assert_eq!(b.e.connection(&b.t).unwrap().mss(), mss0);
        assert_eq!(b.e.counters().pmtu_ignored, 6);
        assert_eq!(b.e.counters().pmtu_lowered, 0);
        // An absurd MTU stops at the floor.
        b.e.on_packet_too_big(b.now, &b.t, resp[3].seq(), 68, &mut b.out);
        let floor = if b.t.is_v4() { 552 - 40 } else { 1280 - 60 };
        assert_eq!(b.e.connection(&b.t).unwrap().mss(), floor);
        assert!(
            b.out
                .take()
                .iter()
                .all(|s| s.payload.len() <= floor as usize)
        );
        // A second message with the same MTU changes nothing.
        b.e.on_packet_too_big(b.now, &b.t, resp[3].seq(), 68, &mut b.out);
        assert!(b.out.take().is_empty());
        assert_eq!(b.e.counters().pmtu_lowered, 1);
    }
}
