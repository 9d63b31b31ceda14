//! Per-state tests of the TCP engine: every transition of RFC 9293's diagram for a passive
//! opener, RST in every state, RFC 5961 challenge ACKs, TIME-WAIT and RFC 6191 reuse.

use std::time::Duration;

use bytes::Bytes;
use synack::tcp::app::CloseReason;
use synack::tcp::engine::{Engine, EngineConfig, SynCookieMode};
use synack::tcp::state::State;
use synack::tcp::testkit::{CollectSink, OwnedSegment, TestApp, TestAppConfig, segment};
use synack::time::Instant;
use synack::wire::IpAddress;
use synack::wire::segment::FourTuple;
use synack::wire::tcp::{TcpFlags, TcpOptions};

const SERVER: u32 = u32::from_be_bytes([198, 18, 0, 1]);
const CLIENT: u32 = u32::from_be_bytes([198, 18, 0, 2]);
const C_ISS: u32 = 1_000_000;

const S: TcpFlags = TcpFlags::SYN;
const A: TcpFlags = TcpFlags::ACK;
const F: TcpFlags = TcpFlags::FIN;
const R: TcpFlags = TcpFlags::RST;
const P: TcpFlags = TcpFlags::PSH;

fn tuple(port: u16) -> FourTuple {
    FourTuple {
        remote_ip: IpAddress::v4(CLIENT),
        remote_port: port,
        local_ip: IpAddress::v4(SERVER),
        local_port: 8080,
    }
}

/// The test bench: an engine, its output and a clock.
struct Bench {
    e: Engine<TestApp>,
    out: CollectSink,
    now: Instant,
    t: FourTuple,
    /// The server's ISS once known.
    s_iss: u32,
    /// Client's next sequence number and what it has received.
    c_nxt: u32,
    s_nxt: u32,
    ts: bool,
}

fn config() -> EngineConfig {
    EngineConfig {
        syn_cookies: SynCookieMode::Never,
        ..EngineConfig::default()
    }
}

fn opts_syn(ts: bool) -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: ts.then_some((100, 0)),
        ..TcpOptions::default()
    }
}

impl Bench {
    fn new(app: TestAppConfig) -> Self {
        Self::with_config(config(), app)
    }

    fn with_config(cfg: EngineConfig, app: TestAppConfig) -> Self {
        Bench {
            e: Engine::new(cfg, TestApp::new(app)),
            out: CollectSink::default(),
            now: Instant::from_millis(1_000_000),
            t: tuple(40000),
            s_iss: 0,
            c_nxt: C_ISS,
            s_nxt: 0,
            ts: false,
        }
    }

    fn opts(&self) -> TcpOptions {
        TcpOptions {
            timestamps: self.ts.then_some((self.now.as_millis() as u32, 0)),
            ..TcpOptions::default()
        }
    }

    /// Sends a segment from the client; returns what the server answered.
    fn send(&mut self, seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]) -> Vec<OwnedSegment> {
        let o = self.opts();
        self.send_opts(seq, ack, flags, o, payload)
    }

    fn send_opts(
        &mut self,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        opts: TcpOptions,
        payload: &[u8],
    ) -> Vec<OwnedSegment> {
        let seg = segment(self.t, seq, ack, flags, 1000, opts, payload);
        self.e.on_segment(self.now, &seg, &mut self.out);
        self.out.take()
    }

    fn advance(&mut self, d: Duration) -> Vec<OwnedSegment> {
        let end = self.now + d;
        // Tick in 10 ms steps like a worker loop would (bounded).
        while self.now < end {
            self.now = (self.now + Duration::from_millis(10)).min(end);
            self.e.on_tick(self.now, &mut self.out);
        }
        self.out.take()
    }

    fn state(&self) -> Option<State> {
        self.e.connection(&self.t).map(|c| c.state())
    }

    /// LISTEN -> SYN-RECEIVED.
    fn syn(&mut self, ts: bool) -> OwnedSegment {
        self.ts = ts;
        let out = self.send_opts(C_ISS, 0, S, opts_syn(ts), &[]);
        assert_eq!(out.len(), 1, "one SYN/ACK");
        let sa = out[0].clone();
        assert_eq!(sa.flags(), S | A);
        assert_eq!(sa.ack().raw(), C_ISS + 1);
        self.s_iss = sa.seq().raw();
        self.c_nxt = C_ISS + 1;
        self.s_nxt = self.s_iss + 1;
        assert_eq!(self.state(), Some(State::SynReceived));
        sa
    }

    /// -> ESTABLISHED.
    fn established(&mut self) {
        self.syn(false);
        let out = self.send(self.c_nxt, self.s_nxt, A, &[]);
        assert!(out.is_empty(), "the final ACK needs no answer: {out:?}");
        assert_eq!(self.state(), Some(State::Established));
    }

    /// A request and its response; returns the response segments.
    fn request(&mut self, req: &[u8]) -> Vec<OwnedSegment> {
        let out = self.send(self.c_nxt, self.s_nxt, A | P, req);
        self.c_nxt += req.len() as u32;
        for s in &out {
            self.s_nxt = self
                .s_nxt
                .max(s.seq().raw() + s.payload.len() as u32 + s.flags().fin() as u32);
        }
        out
    }

    /// The client closes first: ESTABLISHED -> CLOSE-WAIT (the test app closes at once,
    /// so the server's FIN follows: LAST-ACK).
    fn client_fin(&mut self) -> Vec<OwnedSegment> {
        let out = self.send(self.c_nxt, self.s_nxt, F | A, &[]);
        self.c_nxt += 1;
        out
    }
}

fn only(out: &[OwnedSegment]) -> &OwnedSegment {
    assert_eq!(out.len(), 1, "expected exactly one segment, got {out:?}");
    &out[0]
}

// ---------------------------------------------------------------------------------------
// LISTEN and no connection (RFC 9293 3.10.7.1, 3.10.7.2)
// ---------------------------------------------------------------------------------------

#[test]
fn listen_answers_syn_with_syn_ack_and_only_offered_options() {
    let mut b = Bench::new(TestAppConfig::default());
    let sa = b.syn(true);
    let o = sa.header.options;
    assert_eq!(o.mss, Some(1460));
    assert!(o.window_scale.is_some());
    assert!(o.sack_permitted);
    // TSecr echoes the client's TSval.
    assert_eq!(o.timestamps.unwrap().1, 100);
    // Linux: 45 segments of 1448 bytes.
    assert_eq!(sa.header.window, 65160);

    let mut b = Bench::new(TestAppConfig::default());
    b.t = tuple(40001);
    let out = b.send_opts(
        C_ISS,
        0,
        S,
        TcpOptions {
            mss: Some(1400),
            ..TcpOptions::default()
        },
        &[],
    );
    let o = only(&out).header.options;
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, None);
    assert!(!o.sack_permitted);
    assert_eq!(o.timestamps, None);
    assert_eq!(only(&out).header.window, 64240); // 44 * 1460, like Linux
}

#[test]
fn listen_resets_a_bare_ack_with_seq_seg_ack() {
    let mut b = Bench::new(TestAppConfig::default());
    let out = b.send(5, 777, A, &[]);
    let r = only(&out);
    assert_eq!(r.flags(), R);
    assert_eq!(r.seq().raw(), 777);
}

#[test]
fn listen_ignores_rst_and_drops_syn_fin_and_flagless() {
    let mut b = Bench::new(TestAppConfig::default());
    assert!(b.send(5, 0, R, &[]).is_empty());
    assert!(b.send(5, 0, S | F, &[]).is_empty());
    assert!(b.send(5, 0, TcpFlags::NONE, b"x").is_empty());
    assert_eq!(b.e.connections(), 0);
}

#[test]
fn closed_port_gets_rst_ack_with_ack_isn_plus_one() {
    let mut b = Bench::new(TestAppConfig::default());
    b.t.local_port = 9; // not served
    let out = b.send(C_ISS, 0, S, &[]);
    let r = only(&out);
    assert_eq!(r.flags(), R | A);
    assert_eq!(r.seq().raw(), 0);
    assert_eq!(r.ack().raw(), C_ISS + 1);
}

// ---------------------------------------------------------------------------------------
// SYN-RECEIVED
// ---------------------------------------------------------------------------------------

#[test]
fn syn_received_duplicate_syn_gets_same_syn_ack() {
    let mut b = Bench::new(TestAppConfig::default());
    let first = b.syn(true);
    let out = b.send_opts(C_ISS, 0, S, opts_syn(true), &[]);
    let again = only(&out);
    assert_eq!(again.flags(), S | A);
    assert_eq!(again.seq(), first.seq(), "same ISN");
}

#[test]
fn syn_received_retransmits_syn_ack_at_1s_then_2s_then_gives_up() {
    let mut b = Bench::new(TestAppConfig::default());
    b.syn(false);
    assert!(b.advance(Duration::from_millis(990)).is_empty());
    let out = b.advance(Duration::from_millis(20));
    assert_eq!(only(&out).flags(), S | A);
    assert!(b.advance(Duration::from_millis(1980)).is_empty());
    assert_eq!(only(&b.advance(Duration::from_millis(30))).flags(), S | A);
    // 5 retries in all (1+2+4+8+16 s), then forgotten after 32 s more.
    let out = b.advance(Duration::from_secs(100));
    assert_eq!(out.len(), 3);
    assert_eq!(b.state(), None);
    assert_eq!(b.e.half_open(), 0);
}

#[test]
fn syn_received_rst_forgets_the_connection() {
    let mut b = Bench::new(TestAppConfig::default());
    b.syn(false);
    assert!(b.send(C_ISS + 1, 0, R, &[]).is_empty());
    assert_eq!(b.state(), None);
    assert_eq!(b.e.app().opened, 0);
}

#[test]
fn syn_received_bad_ack_gets_rst_and_connection_stays() {
    let mut b = Bench::new(TestAppConfig::default());
    b.syn(false);
    let out = b.send(C_ISS + 1, b.s_iss.wrapping_add(1000), A, &[]);
    let r = only(&out);
    assert_eq!(r.flags(), R);
    assert_eq!(r.seq().raw(), b.s_iss.wrapping_add(1000));
    assert_eq!(b.state(), Some(State::SynReceived));
}

#[test]
fn syn_received_final_ack_with_data_is_delivered() {
    let mut b = Bench::new(TestAppConfig::default());
    b.syn(false);
    let out = b.send(b.c_nxt, b.s_nxt, A | P, b"GET\n");
    assert_eq!(b.state(), Some(State::Established));
    // the response carries the ACK of the request
    let r = only(&out);
    assert_eq!(r.ack().raw(), C_ISS + 1 + 4);
    assert!(r.payload.ends_with(b"ok"));
}

// ---------------------------------------------------------------------------------------
// ESTABLISHED
// ---------------------------------------------------------------------------------------

#[test]
fn established_request_response() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    let out = b.request(b"hello\n");
    let r = only(&out);
    assert_eq!(r.seq().raw(), b.s_iss + 1);
    assert_eq!(r.ack().raw(), b.c_nxt);
    assert!(r.flags().contains(A | P));
}

#[test]
fn established_delayed_ack_when_no_response() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    // no newline: no response, so the ACK is delayed (40 ms)
    let out = b.request(b"partial");
    assert!(out.is_empty());
    let out = b.advance(Duration::from_millis(50));
    let a = only(&out);
    assert_eq!(a.flags(), A);
    assert_eq!(a.ack().raw(), b.c_nxt);
}

#[test]
fn established_out_of_order_gets_dup_ack_with_sack_then_fills() {
    let mut b = Bench::new(TestAppConfig::default());
    b.syn(false);
    b.send(b.c_nxt, b.s_nxt, A, &[]);
    let base = b.c_nxt;
    let out = b.send(base + 3, b.s_nxt, A, b"def");
    let d = only(&out);
    assert_eq!(d.ack().raw(), base, "duplicate ACK");
    let sack = d.header.options.sack();
    assert_eq!(sack.len(), 1);
    assert_eq!((sack[0].left, sack[0].right), (base + 3, base + 6));
    let out = b.send(base, b.s_nxt, A, b"abc");
    // hole filled: immediate ACK of everything
    let a = only(&out);
    assert_eq!(a.ack().raw(), base + 6);
}

#[test]
fn established_exact_rst_aborts() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    assert!(b.send(b.c_nxt, 0, R, &[]).is_empty());
    assert_eq!(b.state(), None);
    assert_eq!(b.e.app().closed[0].1, CloseReason::Reset);
}

#[test]
fn established_inexact_rst_gets_challenge_ack_rate_limited() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    let out = b.send(b.c_nxt + 10, 0, R, &[]);
    let c = only(&out);
    assert_eq!(c.flags(), A);
    assert_eq!(c.seq().raw(), b.s_nxt);
    assert_eq!(c.ack().raw(), b.c_nxt);
    // a second one within 500 ms is not answered
    assert!(b.send(b.c_nxt + 20, 0, R, &[]).is_empty());
    b.advance(Duration::from_millis(600));
    assert_eq!(only(&b.send(b.c_nxt + 20, 0, R, &[])).flags(), A);
    assert_eq!(b.state(), Some(State::Established));
}

#[test]
fn established_out_of_window_rst_is_ignored() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    assert!(
        b.send(b.c_nxt.wrapping_add(10_000_000), 0, R, &[])
            .is_empty()
    );
    assert_eq!(b.state(), Some(State::Established));
}

#[test]
fn established_syn_gets_challenge_ack() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    let out = b.send(b.c_nxt + 5000, 0, S, &[]);
    let c = only(&out);
    assert_eq!(c.flags(), A);
    assert_eq!(c.seq().raw(), b.s_nxt);
    assert_eq!(c.ack().raw(), b.c_nxt);
    assert_eq!(b.state(), Some(State::Established));
}

#[test]
fn established_ack_of_unsent_data_is_challenged_and_dropped() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    let out = b.send(b.c_nxt, b.s_nxt + 1000, A | P, b"x\n");
    let c = only(&out);
    assert_eq!(c.flags(), A);
    assert_eq!(c.ack().raw(), b.c_nxt, "the data was not taken");
}

#[test]
fn established_out_of_window_data_gets_ack() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    let out = b.send(b.c_nxt.wrapping_sub(5000), b.s_nxt, A, b"old");
    let a = only(&out);
    assert_eq!(a.ack().raw(), b.c_nxt);
}

#[test]
fn established_data_retransmitted_after_rto_same_bytes() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    let first = b.request(b"x\n");
    let f = only(&first).clone();
    // The peer does SACK: a tail loss probe first (RFC 8985 7.2: 2*SRTT, ~0 here, plus 40 ms
    // for one segment in flight), the same bytes.
    assert!(b.advance(Duration::from_millis(30)).is_empty());
    let out = b.advance(Duration::from_millis(20));
    let p = only(&out);
    assert_eq!((p.seq(), &p.payload), (f.seq(), &f.payload));
    // first RTO, armed again by the probe: the handshake RTT was ~0, so 200 ms floor
    assert!(b.advance(Duration::from_millis(180)).is_empty());
    let out = b.advance(Duration::from_millis(30));
    let r = only(&out);
    assert_eq!(r.seq(), f.seq());
    assert_eq!(r.payload, f.payload);
    // then 400 ms later (at 240 + 400 ms; now is 260 ms)
    assert!(b.advance(Duration::from_millis(370)).is_empty());
    assert_eq!(only(&b.advance(Duration::from_millis(30))).seq(), f.seq());
}

#[test]
fn established_gives_up_after_bounded_retries_with_rst() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    b.request(b"x\n");
    let out = b.advance(Duration::from_secs(1200));
    assert_eq!(out.last().unwrap().flags(), R | A);
    assert_eq!(b.state(), None);
    assert_eq!(b.e.app().closed[0].1, CloseReason::TimedOut);
}

#[test]
fn established_zero_window_probes_then_resumes() {
    let mut b = Bench::new(TestAppConfig {
        response: Bytes::from(vec![b'z'; 3000]),
        ..TestAppConfig::default()
    });
    b.syn(false);
    // the client's final ACK announces a zero window
    let seg = segment(b.t, b.c_nxt, b.s_nxt, A, 0, TcpOptions::default(), &[]);
    b.e.on_segment(b.now, &seg, &mut b.out);
    let seg = segment(
        b.t,
        b.c_nxt,
        b.s_nxt,
        A | P,
        0,
        TcpOptions::default(),
        b"q\n",
    );
    b.e.on_segment(b.now, &seg, &mut b.out);
    b.c_nxt += 2;
    let out = b.out.take();
    // only the ACK of the request: no data into a zero window
    assert!(out.iter().all(|s| s.payload.is_empty()), "{out:?}");
    // the delayed ACK of the request comes first
    let acks = b.advance(Duration::from_millis(100));
    assert_eq!(only(&acks).seq().raw(), b.s_nxt);
    let probes = b.advance(Duration::from_millis(1000));
    assert!(!probes.is_empty());
    for p in &probes {
        assert_eq!(p.seq().raw(), b.s_nxt - 1, "probe at SND.UNA - 1");
        assert!(p.payload.is_empty());
    }
    // window opens: data at once
    let seg = segment(b.t, b.c_nxt, b.s_nxt, A, 0, TcpOptions::default(), &[]);
    b.e.on_segment(b.now, &seg, &mut b.out);
    assert!(
        b.out.take().is_empty(),
        "the window is still zero in this segment"
    );
    let seg = segment(b.t, b.c_nxt, b.s_nxt, A, 65535, TcpOptions::default(), &[]);
    b.e.on_segment(b.now, &seg, &mut b.out);
    let out = b.out.take();
    let bytes: usize = out.iter().map(|s| s.payload.len()).sum();
    assert_eq!(bytes, 3000);
}

#[test]
fn established_small_window_is_respected_without_runts() {
    let mut b = Bench::new(TestAppConfig {
        response: Bytes::from(vec![b'z'; 5000]),
        ..TestAppConfig::default()
    });
    b.syn(false);
    // window scale 7: a field of 16 is 2048 bytes
    let seg = segment(b.t, b.c_nxt, b.s_nxt, A, 16, TcpOptions::default(), &[]);
    b.e.on_segment(b.now, &seg, &mut b.out);
    let seg = segment(
        b.t,
        b.c_nxt,
        b.s_nxt,
        A | P,
        16,
        TcpOptions::default(),
        b"q\n",
    );
    b.e.on_segment(b.now, &seg, &mut b.out);
    let out = b.out.take();
    let sent: usize = out.iter().map(|s| s.payload.len()).sum();
    assert!(sent <= 2048, "never more in flight than the window");
    assert_eq!(
        out.iter().filter(|s| !s.payload.is_empty()).count(),
        1,
        "no runt: {out:?}"
    );
}

#[test]
fn request_service_time_ends_when_the_last_byte_is_sent() {
    let mut b = Bench::new(TestAppConfig {
        response: Bytes::from(vec![b'z'; 5000]),
        ..TestAppConfig::default()
    });
    b.syn(false);
    // window scale 7: a field of 16 is 2048 bytes, so the response needs three windows
    let seg = segment(b.t, b.c_nxt, b.s_nxt, A, 16, TcpOptions::default(), &[]);
    b.e.on_segment(b.now, &seg, &mut b.out);
    let seg = segment(
        b.t,
        b.c_nxt,
        b.s_nxt,
        A | P,
        16,
        TcpOptions::default(),
        b"q\n",
    );
    b.e.on_segment(b.now, &seg, &mut b.out);
    b.c_nxt += 2;
    let mut acked = b.s_nxt;
    for s in b.out.take() {
        acked = acked.max(s.seq().raw() + s.payload.len() as u32);
    }
    assert!(
        b.e.events.request_us.is_empty(),
        "the last byte is not sent yet"
    );
    let mut rounds = 0;
    while b.e.events.request_us.is_empty() && rounds < 10 {
        b.now += Duration::from_millis(3);
        let seg = segment(b.t, b.c_nxt, acked, A, 16, TcpOptions::default(), &[]);
        b.e.on_segment(b.now, &seg, &mut b.out);
        for s in b.out.take() {
            acked = acked.max(s.seq().raw() + s.payload.len() as u32);
        }
        rounds += 1;
    }
    assert_eq!(acked, b.s_nxt + 5000);
    assert_eq!(b.e.events.request_us.len(), 1);
    assert!(
        b.e.events.request_us[0] >= 3000,
        "{:?}",
        b.e.events.request_us
    );
}

#[test]
fn established_fast_retransmit_on_three_dup_acks() {
    let mut b = Bench::new(TestAppConfig {
        response: Bytes::from(vec![b'z'; 10 * 1460]),
        ..TestAppConfig::default()
    });
    b.syn(false);
    let seg = segment(b.t, b.c_nxt, b.s_nxt, A, 65535, TcpOptions::default(), &[]);
    b.e.on_segment(b.now, &seg, &mut b.out);
    let seg = segment(
        b.t,
        b.c_nxt,
        b.s_nxt,
        A | P,
        65535,
        TcpOptions::default(),
        b"q\n",
    );
    b.e.on_segment(b.now, &seg, &mut b.out);
    b.c_nxt += 2;
    let out = b.out.take();
    assert_eq!(out.len(), 10, "IW10");
    let first = out[0].seq().raw();
    for _ in 0..2 {
        let seg = segment(b.t, b.c_nxt, first, A, 65535, TcpOptions::default(), &[]);
        b.e.on_segment(b.now, &seg, &mut b.out);
        assert!(b.out.take().is_empty());
    }
    let seg = segment(b.t, b.c_nxt, first, A, 65535, TcpOptions::default(), &[]);
    b.e.on_segment(b.now, &seg, &mut b.out);
    let out = b.out.take();
    assert_eq!(
        out[0].seq().raw(),
        first,
        "fast retransmit of the first segment"
    );
    assert_eq!(b.e.counters().fast_retransmits, 1);
}

// ---------------------------------------------------------------------------------------
// Client closes first: CLOSE-WAIT, LAST-ACK, CLOSED
// ---------------------------------------------------------------------------------------

#[test]
fn client_first_close_wait_last_ack_closed() {
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    let out = b.client_fin();
    // the FIN is ACKed and, as the app closes at once, our FIN rides on the same segment
    let f = only(&out);
    assert_eq!(f.flags(), F | A);
    assert_eq!(f.ack().raw(), b.c_nxt);
    assert_eq!(b.state(), Some(State::LastAck));
    // LAST-ACK: FIN retransmitted on RTO
    let out = b.advance(Duration::from_millis(1100));
    assert!(out.iter().all(|s| s.flags() == F | A));
    assert!(!out.is_empty());
    assert!(b.send(b.c_nxt, b.s_nxt + 1, A, &[]).is_empty());
    assert_eq!(b.state(), None);
    assert_eq!(b.e.app().closed[0].1, CloseReason::Normal);
    assert_eq!(
        b.e.time_wait_len(),
        0,
        "the passive closer keeps no TIME-WAIT"
    );
}

#[test]
fn close_wait_while_the_app_still_sends() {
    // The app does not close on the peer's FIN until its request is answered.
    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    let out = b.send(b.c_nxt, b.s_nxt, A | P | F, b"req\n");
    // response, then FIN: may be one segment
    let fin = out.iter().find(|s| s.flags().fin()).expect("FIN");
    assert!(out.iter().any(|s| s.payload.ends_with(b"ok")));
    assert_eq!(fin.ack().raw(), b.c_nxt + 5);
    assert_eq!(b.state(), Some(State::LastAck));
}

#[test]
fn rst_in_close_wait_and_last_ack() {
    let mut b = Bench::new(TestAppConfig {
        stall_reading: true,
        ..TestAppConfig::default()
    });
    b.established();
    b.client_fin();
    assert_eq!(b.state(), Some(State::CloseWait));
    assert!(b.send(b.c_nxt, 0, R, &[]).is_empty());
    assert_eq!(b.state(), None);

    let mut b = Bench::new(TestAppConfig::default());
    b.established();
    b.client_fin();
    assert_eq!(b.state(), Some(State::LastAck));
    assert!(b.send(b.c_nxt, 0, R, &[]).is_empty());
    assert_eq!(b.state(), None);
}

// ---------------------------------------------------------------------------------------
// Server closes first: FIN-WAIT-1, FIN-WAIT-2 / CLOSING, TIME-WAIT
// ---------------------------------------------------------------------------------------

fn closer() -> TestAppConfig {
    TestAppConfig {
        close_after_response: true,
        ..TestAppConfig::default()
    }
}

#[test]
fn server_first_data_and_fin_in_one_segment_fin_wait_1() {
    let mut b = Bench::new(closer());
    b.established();
    let out = b.request(b"x\n");
    let r = only(&out);
    assert_eq!(r.flags(), F | A | P);
    assert!(r.payload.ends_with(b"ok"));
    assert_eq!(b.state(), Some(State::FinWait1));
}

#[test]
fn server_first_fin_wait_2_then_time_wait_then_closed() {
    let mut b = Bench::new(closer());
    b.established();
    b.request(b"x\n");
    assert!(b.send(b.c_nxt, b.s_nxt, A, &[]).is_empty());
    assert_eq!(b.state(), Some(State::FinWait2));
    let out = b.client_fin();
    let a = only(&out);
    assert_eq!(a.flags(), A);
    assert_eq!(a.ack().raw(), b.c_nxt);
    assert_eq!(b.state(), None);
    assert_eq!(b.e.time_wait_len(), 1);
    assert_eq!(
        b.e.connections(),
        0,
        "TIME-WAIT is a record, not a connection"
    );
    b.advance(Duration::from_secs(59));
    assert_eq!(b.e.time_wait_len(), 1);
    b.advance(Duration::from_secs(2));
    assert_eq!(b.e.time_wait_len(), 0, "CLOSED after 2*MSL = 60 s");
}

#[test]
fn server_first_fin_and_ack_together_go_to_time_wait() {
    let mut b = Bench::new(closer());
    b.established();
    b.request(b"x\n");
    let out = b.send(b.c_nxt, b.s_nxt, F | A, &[]);
    b.c_nxt += 1;
    assert_eq!(only(&out).ack().raw(), b.c_nxt);
    assert_eq!(b.e.time_wait_len(), 1);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut b = Bench::new(closer());
    b.established();
    b.request(b"x\n");
    // the client's FIN crosses ours: it does not ACK our FIN
    let out = b.send(b.c_nxt, b.s_nxt - 1, F | A, &[]);
    b.c_nxt += 1;
    assert_eq!(only(&out).ack().raw(), b.c_nxt);
    assert_eq!(b.state(), Some(State::Closing));
    // CLOSING retransmits its FIN
    let out = b.advance(Duration::from_millis(250));
    assert!(out.iter().any(|s| s.flags().fin()));
    assert!(b.send(b.c_nxt, b.s_nxt, A, &[]).is_empty());
    assert_eq!(b.state(), None);
    assert_eq!(b.e.time_wait_len(), 1);
}

#[test]
fn rst_in_fin_wait_states_and_closing() {
    for stage in 0..3 {
        let mut b = Bench::new(closer());
        b.established();
        b.request(b"x\n");
        match stage {
            0 => assert_eq!(b.state(), Some(State::FinWait1)),
            1 => {
                b.send(b.c_nxt, b.s_nxt, A, &[]);
                assert_eq!(b.state(), Some(State::FinWait2));
            }
            _ => {
                b.send(b.c_nxt, b.s_nxt - 1, F | A, &[]);
                b.c_nxt += 1;
                assert_eq!(b.state(), Some(State::Closing));
            }
        }
        assert!(b.send(b.c_nxt, 0, R, &[]).is_empty());
        assert_eq!(b.state(), None, "stage {stage}");
        assert_eq!(b.e.time_wait_len(), 0);
    }
}

#[test]
fn fin_wait_2_times_out() {
    let mut b = Bench::new(closer());
    b.established();
    b.request(b"x\n");
    b.send(b.c_nxt, b.s_nxt, A, &[]);
    assert_eq!(b.state(), Some(State::FinWait2));
    b.advance(Duration::from_secs(61));
    assert_eq!(b.state(), None);
}

/// Drives a connection into TIME-WAIT with timestamps on.
fn time_wait(b: &mut Bench) {
    b.syn(true);
    b.send(b.c_nxt, b.s_nxt, A, &[]);
    b.request(b"x\n");
    b.send(b.c_nxt, b.s_nxt, A, &[]);
    b.client_fin();
    assert_eq!(b.e.time_wait_len(), 1);
}

#[test]
fn time_wait_acks_retransmitted_fin_and_restarts_timer() {
    let mut b = Bench::new(closer());
    time_wait(&mut b);
    b.advance(Duration::from_secs(50));
    let out = b.send(b.c_nxt - 1, b.s_nxt, F | A, &[]);
    let a = only(&out);
    assert_eq!(a.flags(), A);
    assert_eq!(a.ack().raw(), b.c_nxt);
    assert_eq!(a.seq().raw(), b.s_nxt);
    b.advance(Duration::from_secs(50));
    assert_eq!(
        b.e.time_wait_len(),
        1,
        "restarted: 2*MSL from the retransmitted FIN"
    );
    b.advance(Duration::from_secs(11));
    assert_eq!(b.e.time_wait_len(), 0);
}

#[test]
fn time_wait_accepts_syn_with_newer_timestamp_rfc6191() {
    let mut b = Bench::new(closer());
    time_wait(&mut b);
    b.advance(Duration::from_secs(1));
    // an older sequence number but a newer timestamp
    let mut o = opts_syn(true);
    o.timestamps = Some((b.now.as_millis() as u32, 0));
    let out = b.send_opts(C_ISS - 100_000, 0, S, o, &[]);
    let sa = only(&out);
    assert_eq!(sa.flags(), S | A);
    assert_eq!(b.e.time_wait_len(), 0);
    assert_eq!(b.state(), Some(State::SynReceived));
    assert_eq!(b.e.counters().time_wait_reused, 1);
}

#[test]
fn time_wait_accepts_syn_with_higher_sequence_without_timestamps() {
    let mut b = Bench::new(closer());
    b.syn(false);
    b.send(b.c_nxt, b.s_nxt, A, &[]);
    b.request(b"x\n");
    b.send(b.c_nxt, b.s_nxt, A, &[]);
    b.client_fin();
    assert_eq!(b.e.time_wait_len(), 1);
    let out = b.send_opts(b.c_nxt + 1000, 0, S, TcpOptions::default(), &[]);
    assert_eq!(only(&out).flags(), S | A);
    // the new ISN lies beyond the old connection's sequence space (Linux: +65537)
    assert_eq!(only(&out).seq().raw(), b.s_nxt.wrapping_add(65537));
}

#[test]
fn time_wait_refuses_old_syn() {
    let mut b = Bench::new(closer());
    time_wait(&mut b);
    // older timestamp and lower sequence: not a new incarnation. ACKed, not accepted.
    let mut o = opts_syn(true);
    o.timestamps = Some((5, 0));
    let out = b.send_opts(C_ISS - 100_000, 0, S, o, &[]);
    let a = only(&out);
    assert_eq!(a.flags(), A);
    assert_eq!(b.e.time_wait_len(), 1);
    assert_eq!(b.state(), None);
}

#[test]
fn time_wait_rst_ends_it() {
    let mut b = Bench::new(closer());
    time_wait(&mut b);
    let o = TcpOptions {
        timestamps: Some((b.now.as_millis() as u32, 0)),
        ..TcpOptions::default()
    };
    assert!(b.send_opts(b.c_nxt, 0, R, o, &[]).is_empty());
    assert_eq!(b.e.time_wait_len(), 0);
}

// ---------------------------------------------------------------------------------------
// SYN cookies (RFC 4987)
// ---------------------------------------------------------------------------------------

#[test]
fn syn_cookies_take_over_when_backlog_is_full() {
    let cfg = EngineConfig {
        syn_backlog: 1,
        syn_cookies: SynCookieMode::OnOverflow,
        ..EngineConfig::default()
    };
    let mut b = Bench::with_config(cfg, TestAppConfig::default());
    b.syn(true);
    // second client: the backlog is full, so it gets a cookie
    b.t = tuple(40002);
    let out = b.send_opts(C_ISS, 0, S, opts_syn(true), &[]);
    let sa = only(&out).clone();
    assert_eq!(b.e.counters().syn_cookies_sent, 1);
    assert_eq!(b.state(), None, "no state kept");
    let tsval = sa.header.options.timestamps.unwrap().0;
    let o = TcpOptions {
        timestamps: Some((200, tsval)),
        ..TcpOptions::default()
    };
    let out = b.send_opts(C_ISS + 1, sa.seq().raw() + 1, A | P, o, b"get\n");
    assert_eq!(b.e.counters().syn_cookies_validated, 1);
    assert_eq!(b.state(), Some(State::Established));
    assert!(
        b.e.events.handshake_us.is_empty(),
        "the SYN's time of a cookie connection is unknown: no handshake sample"
    );
    assert!(only(&out).payload.ends_with(b"ok"));
    let c = b.e.connection(&b.t).unwrap();
    assert!(
        c.sack_ok(),
        "SACK-permitted came back through the timestamp"
    );
    assert_eq!(
        c.window_scales().0,
        7,
        "the client's window scale came back too"
    );
    // a forged ACK gets a RST
    b.t = tuple(40003);
    let out = b.send(C_ISS + 1, 12345, A, &[]);
    assert_eq!(only(&out).flags(), R);
}

/// A good cookie ACK that finds the table full is a full table, not a failed cookie: counted as
/// `TableFull` only, and dropped silently as Linux does when its accept queue overflows
/// (`tcp_abort_on_overflow = 0`), so that the client's retransmission can still get in.
#[test]
fn a_good_cookie_ack_refused_by_a_full_table_is_counted_as_table_full() {
    use synack::tcp::counters::TcpDrop;
    let cfg = EngineConfig {
        max_conns: 1,
        syn_cookies: SynCookieMode::Always,
        ..EngineConfig::default()
    };
    let mut b = Bench::with_config(cfg, TestAppConfig::default());
    // The first client fills the table (through a cookie: every SYN gets one).
    let sa = only(&b.send_opts(C_ISS, 0, S, opts_syn(false), &[])).clone();
    assert!(b.send(C_ISS + 1, sa.seq().raw() + 1, A, &[]).is_empty());
    assert_eq!(b.state(), Some(State::Established));
    // The second one's cookie is good, but there is no room.
    b.t = tuple(40002);
    let sa = only(&b.send_opts(C_ISS, 0, S, opts_syn(false), &[])).clone();
    let out = b.send(C_ISS + 1, sa.seq().raw() + 1, A | P, b"get\n");
    assert!(out.is_empty(), "dropped silently: {out:?}");
    assert_eq!(b.state(), None);
    let c = b.e.counters();
    assert_eq!(c.dropped(TcpDrop::TableFull), 1);
    assert_eq!(c.syn_cookies_failed, 0, "the cookie was good");
    assert_eq!(c.dropped(TcpDrop::NoAck), 0);
    assert_eq!(c.resets_sent, 0);
    // Once the first connection is gone, the client's retransmission gets in.
    b.t = tuple(40000);
    assert!(b.send(C_ISS + 1, 0, R, &[]).is_empty());
    assert_eq!(b.e.connections(), 0);
    b.t = tuple(40002);
    let out = b.send(C_ISS + 1, sa.seq().raw() + 1, A | P, b"get\n");
    assert_eq!(b.state(), Some(State::Established));
    assert!(only(&out).payload.ends_with(b"ok"));
    assert_eq!(b.e.counters().syn_cookies_validated, 2);
}

// ---------------------------------------------------------------------------------------
// Secrets (RFC 6528, RFC 4987)
// ---------------------------------------------------------------------------------------

/// No build of synack has a fixed secret: every default configuration draws its own from the
/// OS, so two engines give the same client different ISNs.
#[test]
fn default_configs_draw_their_own_secret() {
    let a = EngineConfig::default().secret;
    let b = EngineConfig::default().secret;
    assert_ne!(a, b, "two default secrets are equal");
    assert_ne!(a, [7; 48]);
    assert_ne!(
        EngineConfig::random_secret().unwrap(),
        EngineConfig::random_secret().unwrap()
    );
    let iss = |cfg: EngineConfig| {
        let mut b = Bench::with_config(cfg, TestAppConfig::default());
        b.syn(false).seq().raw()
    };
    // 2^-32 odds of a false alarm per pair: three pairs make it negligible.
    let same = (0..3).all(|_| iss(config()) == iss(config()));
    assert!(!same, "the ISN of a default engine is predictable");
}

// ---------------------------------------------------------------------------------------
// Zero-window persist and the silly-window override (RFC 9293 3.8.6, RFC 1122 4.2.2.17)
// ---------------------------------------------------------------------------------------

/// The client's handshake-completing ACK and a request, both with window `win` (unscaled if
/// the SYN carried no window scale).
fn request_into_window(b: &mut Bench, win: u16) -> Vec<OwnedSegment> {
    let seg = segment(b.t, b.c_nxt, b.s_nxt, A, win, TcpOptions::default(), &[]);
    b.e.on_segment(b.now, &seg, &mut b.out);
    let seg = segment(
        b.t,
        b.c_nxt,
        b.s_nxt,
        A | P,
        win,
        TcpOptions::default(),
        b"q\n",
    );
    b.e.on_segment(b.now, &seg, &mut b.out);
    b.c_nxt += 2;
    b.out.take()
}

/// A zero-window probe: a bare ACK at SND.UNA - 1.
fn is_probe(b: &Bench, s: &OwnedSegment) -> bool {
    s.payload.is_empty() && s.flags() == A && s.seq().raw() == b.s_nxt.wrapping_sub(1)
}

#[test]
fn persist_keeps_a_peer_that_answers_probes_and_backs_off_to_120s() {
    let mut b = Bench::new(TestAppConfig {
        response: Bytes::from(vec![b'z'; 3000]),
        ..TestAppConfig::default()
    });
    b.syn(false);
    let out = request_into_window(&mut b, 0);
    assert!(out.iter().all(|s| s.payload.is_empty()), "{out:?}");
    // 30 minutes at window 0, every probe answered at once (the old code reset it after
    // 10 probes, about 5 minutes).
    let start = b.now;
    let mut probes: Vec<Instant> = Vec::new();
    while b.now < start + Duration::from_secs(30 * 60) {
        for s in b.advance(Duration::from_millis(10)) {
            assert!(
                !s.flags().rst(),
                "reset after {:?} and {} answered probes",
                b.now - start,
                probes.len()
            );
            if is_probe(&b, &s) {
                probes.push(b.now);
                let ack = segment(b.t, b.c_nxt, b.s_nxt, A, 0, TcpOptions::default(), &[]);
                b.e.on_segment(b.now, &ack, &mut b.out);
                assert!(b.out.take().is_empty(), "nothing into a zero window");
            }
        }
    }
    assert_eq!(b.state(), Some(State::Established));
    let gaps: Vec<Duration> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    // Exponential backoff, capped at TCP_RTO_MAX (120 s) like Linux's tcp_probe0_when.
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
    assert_eq!(*gaps.last().unwrap(), Duration::from_secs(120), "{gaps:?}");
    assert!(probes.len() >= 20, "{} probes", probes.len());
    // The peer falls silent: only unanswered probes count, 10 of them, then a reset.
    let out = b.advance(Duration::from_secs(11 * 120 + 10));
    let silent = out.iter().filter(|s| is_probe(&b, s)).count();
    assert_eq!(silent, 10, "{out:?}");
    assert_eq!(out.last().unwrap().flags(), R | A);
    assert_eq!(b.state(), None);
    assert_eq!(b.e.app().closed[0].1, CloseReason::TimedOut);
}

#[test]
fn sws_override_sends_what_a_small_window_allows() {
    // A Linux client with a 2 KiB receive buffer: no window scaling, and once the first
    // segment is in, a 12-byte window. The override timeout must send those 12 bytes, not
    // probe the window forever.
    let mut b = Bench::new(TestAppConfig {
        response: Bytes::from(vec![b'z'; 5000]),
        ..TestAppConfig::default()
    });
    let syn = TcpOptions {
        mss: Some(1460),
        sack_permitted: true,
        ..TcpOptions::default()
    };
    let out = b.send_opts(C_ISS, 0, S, syn, &[]);
    b.s_iss = only(&out).seq().raw();
    b.c_nxt = C_ISS + 1;
    b.s_nxt = b.s_iss + 1;
    let out = request_into_window(&mut b, 2000);
    let data: Vec<_> = out.iter().filter(|s| !s.payload.is_empty()).collect();
    assert_eq!(
        data.len(),
        1,
        "one full segment, the rest held back: {out:?}"
    );
    let mut got = data[0].payload.clone();
    let mut una = b.s_nxt.wrapping_add(got.len() as u32);
    // Acknowledged with a 12-byte window, twice over.
    for round in 0..3 {
        let ack = segment(b.t, b.c_nxt, una, A, 12, TcpOptions::default(), &[]);
        b.e.on_segment(b.now, &ack, &mut b.out);
        assert!(b.out.take().iter().all(|s| s.payload.is_empty()));
        // The override timeout (the RTO, 200 ms here) passes; answered at once.
        let mut out = Vec::new();
        let until = b.now + Duration::from_millis(1500);
        while out.is_empty() && b.now < until {
            out = b.advance(Duration::from_millis(10));
        }
        assert!(
            !out.iter()
                .any(|s| is_probe(&b, s) || s.seq().raw() == una.wrapping_sub(1)),
            "round {round}: a probe instead of data ({} segments, none with data)",
            out.len()
        );
        assert_eq!(out.len(), 1, "round {round}");
        let s = &out[0];
        assert_eq!(s.seq().raw(), una, "round {round}");
        assert_eq!(s.payload.len(), 12, "round {round}: what the window allows");
        got.extend_from_slice(&s.payload);
        una = una.wrapping_add(12);
    }
    // The window opens: the rest at once, byte-exact.
    let ack = segment(b.t, b.c_nxt, una, A, 65535, TcpOptions::default(), &[]);
    b.e.on_segment(b.now, &ack, &mut b.out);
    for s in b.out.take() {
        got.extend_from_slice(&s.payload);
    }
    assert_eq!(got, vec![b'z'; 5000]);
}

// ---------------------------------------------------------------------------------------
// RFC 7323 5.5: TS.Recent expires after 24 days idle
// ---------------------------------------------------------------------------------------

#[test]
fn paws_trusts_ts_recent_no_longer_than_24_days_idle() {
    for (days, trusted) in [(23u64, true), (25, false)] {
        let mut b = Bench::new(TestAppConfig::default());
        b.syn(true);
        assert!(b.send(b.c_nxt, b.s_nxt, A, &[]).is_empty());
        assert_eq!(b.state(), Some(State::Established));
        let recent = b.e.connection(&b.t).unwrap().ts_recent();
        b.now += Duration::from_secs(days * 24 * 3600);
        b.e.on_tick(b.now, &mut b.out);
        assert!(b.out.take().is_empty());
        // The peer's 1 ms clock ran past TS.Recent's sign bit meanwhile: by the wrapping
        // comparison its TSval now looks older.
        let tsval = recent.wrapping_add(0x8000_0000 + 1000);
        let o = TcpOptions {
            timestamps: Some((tsval, 0)),
            ..TcpOptions::default()
        };
        let out = b.send_opts(b.c_nxt, b.s_nxt, A | P, o, b"x\n");
        let c = b.e.connection(&b.t).unwrap();
        if trusted {
            // Still within 24 days: PAWS drops it and answers with a duplicate ACK.
            assert_eq!(only(&out).ack().raw(), b.c_nxt, "{days} days");
            assert_eq!(c.ts_recent(), recent);
            assert_eq!(
                b.e.counters().dropped(synack::tcp::counters::TcpDrop::Paws),
                1
            );
        } else {
            // Not rejected, and TS.Recent is replaced (Linux: TCP_PAWS_24DAYS).
            assert_eq!(c.ts_recent(), tsval, "{days} days");
            assert!(
                out.iter().any(|s| s.ack().raw() == b.c_nxt + 2),
                "{days} days: the request was taken: {out:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP's send timeout bounds a reader that never reads (nginx's send_timeout)
// ---------------------------------------------------------------------------------------

/// An engine with the HTTP responder; a client whose window is 0 from the handshake on has
/// sent `req`. Returns (engine, sink, now, tuple, client's next seq, server's SND.UNA).
fn http_zero_window_request(
    req: &[u8],
) -> (
    Engine<synack::http::HttpApp>,
    CollectSink,
    Instant,
    FourTuple,
    u32,
    u32,
) {
    use std::sync::Arc;
    use synack::http::Content;
    use synack::http::{HttpApp, HttpConfig};

    let content = Arc::new(Content::fixed(vec![b'b'; 5000], "text/plain"));
    let app = HttpApp::new(
        HttpConfig::default(),
        synack::http::StaticFiles::new(content),
    );
    let mut e = Engine::new(config(), app);
    let mut out = CollectSink::default();
    let t = tuple(40100);
    let now = Instant::from_millis(1_000_000);
    let syn = TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    };
    e.on_segment(now, &segment(t, C_ISS, 0, S, 0, syn, &[]), &mut out);
    let s_iss = only(&out.take()).seq().raw();
    let (c_nxt, una) = (C_ISS + 1, s_iss.wrapping_add(1));
    let no = TcpOptions::default();
    e.on_segment(now, &segment(t, c_nxt, una, A, 0, no, &[]), &mut out);
    e.on_segment(now, &segment(t, c_nxt, una, A | P, 0, no, req), &mut out);
    assert!(out.take().iter().all(|s| s.payload.is_empty()));
    (e, out, now, t, c_nxt + req.len() as u32, una)
}

/// Runs the clock for `d` in 10 ms steps, answering every zero-window probe with window 0;
/// returns the time of the first RST, if one was sent.
fn run_answering_probes(
    e: &mut Engine<synack::http::HttpApp>,
    out: &mut CollectSink,
    now: &mut Instant,
    (t, c_nxt, una): (FourTuple, u32, u32),
    d: Duration,
) -> Option<Instant> {
    let end = *now + d;
    while *now < end {
        *now += Duration::from_millis(10);
        e.on_tick(*now, out);
        for s in out.take() {
            if s.flags().rst() {
                return Some(*now);
            }
            if s.payload.is_empty() && s.seq().raw() == una.wrapping_sub(1) {
                let ack = segment(t, c_nxt, una, A, 0, TcpOptions::default(), &[]);
                e.on_segment(*now, &ack, out);
            }
        }
    }
    None
}

#[test]
fn http_send_timeout_ends_a_zero_window_reader_after_60s_without_progress() {
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let (mut e, mut out, mut now, t, c_nxt, mut una) = http_zero_window_request(req);
    let no = TcpOptions::default();
    // 50 s at window 0, then the reader takes 1000 bytes and shuts its window again: progress.
    let d = Duration::from_secs(50);
    assert_eq!(
        run_answering_probes(&mut e, &mut out, &mut now, (t, c_nxt, una), d),
        None
    );
    e.on_segment(now, &segment(t, c_nxt, una, A, 1000, no, &[]), &mut out);
    let sent: usize = out.take().iter().map(|s| s.payload.len()).sum();
    assert_eq!(sent, 1000);
    una = una.wrapping_add(1000);
    now += Duration::from_millis(100);
    e.on_segment(now, &segment(t, c_nxt, una, A, 0, no, &[]), &mut out);
    let progress = now;
    // No progress from here on: reset 60 s after the last acknowledgment, not before.
    let d = Duration::from_secs(30 * 60);
    let rst = run_answering_probes(&mut e, &mut out, &mut now, (t, c_nxt, una), d);
    let rst = rst.expect("the send timeout must end the connection");
    let after = rst - progress;
    assert!(
        after >= Duration::from_secs(60) && after < Duration::from_secs(61),
        "reset {after:?} after the last progress"
    );
    assert!(e.connection(&t).is_none());
    assert_eq!(e.app().stats().timeouts_send, 1);
    assert_eq!(e.app().stats().connections_closed, 1);
}

#[test]
fn http_send_timeout_also_ends_a_closed_response_that_never_drains() {
    // `Connection: close`: the responder has closed (FIN queued behind the response) before
    // the window ever opens; the send timeout still applies.
    let req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (mut e, mut out, mut now, t, c_nxt, una) = http_zero_window_request(req);
    let start = now;
    assert_eq!(e.connection(&t).map(|c| c.state()), Some(State::FinWait1));
    let d = Duration::from_secs(30 * 60);
    let rst = run_answering_probes(&mut e, &mut out, &mut now, (t, c_nxt, una), d);
    let after = rst.expect("the send timeout must end the connection") - start;
    assert!(
        after >= Duration::from_secs(60) && after < Duration::from_secs(61),
        "reset {after:?} after the response was queued"
    );
    assert_eq!(e.app().stats().timeouts_send, 1);
}
