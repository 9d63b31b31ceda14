//! Per-state tests of the TCP engine: every transition of RFC 9293's diagram for a passive
//! opener, RST in every state, RFC 5961 challenge ACKs, TIME-WAIT and RFC 6191 reuse.

use std::time::Duration;

use bytes::Bytes;
use synack::tcp::app::CloseReason;
use synack::tcp::engine::{Engine, EngineConfig, SynCookieMode};
use synack::tcp::segment::{FourTuple, TcpFlags, TcpOptions};
use synack::tcp::state::State;
use synack::tcp::testkit::{CollectSink, OwnedSegment, TestApp, TestAppConfig, segment};
use synack::time::Instant;

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
        remote_ip: CLIENT,
        remote_port: port,
        local_ip: SERVER,
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
