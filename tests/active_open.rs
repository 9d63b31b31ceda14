//! The active opener's side of RFC 9293 (3.5, 3.10.7.3): SYN-SENT and its segments, SYN
//! retransmission, simultaneous open, the client's TIME-WAIT, and RFC 6056 port choice with
//! Linux's TIME-WAIT reuse rule. The engine is driven segment by segment, as the server side
//! is in tests/tcp_states.rs.

use std::time::Duration;

use synack::tcp::app::{CloseReason, ConnectError};
use synack::tcp::engine::{Engine, EngineConfig};
use synack::tcp::state::State;
use synack::tcp::testkit::{CollectSink, OwnedSegment, TestApp, TestAppConfig, segment};
use synack::time::Instant;
use synack::wire::IpAddress;
use synack::wire::segment::FourTuple;
use synack::wire::tcp::{TcpFlags, TcpOptions};

const ME: u32 = u32::from_be_bytes([198, 18, 0, 2]);
const SERVER: u32 = u32::from_be_bytes([198, 18, 0, 1]);
const S_ISS: u32 = 7_000_000;

const S: TcpFlags = TcpFlags::SYN;
const A: TcpFlags = TcpFlags::ACK;
const F: TcpFlags = TcpFlags::FIN;
const R: TcpFlags = TcpFlags::RST;

fn config() -> EngineConfig {
    EngineConfig {
        local_ips: vec![IpAddress::v4(ME)],
        ports: vec![],
        ..EngineConfig::default()
    }
}

struct Client {
    e: Engine<TestApp>,
    out: CollectSink,
    now: Instant,
}

impl Client {
    fn new(cfg: EngineConfig, app: TestAppConfig) -> Self {
        Client {
            e: Engine::new(cfg, TestApp::new(app)),
            out: CollectSink::default(),
            now: Instant::from_millis(5_000_000),
        }
    }

    /// Opens a connection to the server's port 80; returns the SYN that left.
    fn connect(&mut self) -> OwnedSegment {
        self.e
            .connect(self.now, None, IpAddress::v4(SERVER), 80, &mut self.out)
            .expect("connect");
        let mut out = self.out.take();
        assert_eq!(out.len(), 1, "one SYN: {out:?}");
        out.remove(0)
    }

    /// A segment from the server on `t` (t as our engine sees it).
    fn recv(
        &mut self,
        t: FourTuple,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        opts: TcpOptions,
        data: &[u8],
    ) {
        self.e.on_segment(
            self.now,
            &segment(t, seq, ack, flags, 65535, opts, data),
            &mut self.out,
        );
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.e.on_tick(self.now, &mut self.out);
    }

    fn state(&self, t: &FourTuple) -> Option<State> {
        self.e.connection(t).map(|c| c.state())
    }
}

fn server_syn_opts(ts: bool) -> TcpOptions {
    TcpOptions {
        mss: Some(1400),
        window_scale: Some(9),
        sack_permitted: true,
        timestamps: ts.then_some((555, 0)),
        ..TcpOptions::default()
    }
}

/// Connects and completes the handshake; returns the tuple and our ISS.
fn established(c: &mut Client, ts: bool) -> (FourTuple, u32) {
    let syn = c.connect();
    let t = syn.header.tuple;
    let iss = syn.seq().raw();
    let mut o = server_syn_opts(ts);
    if let (Some(ours), true) = (syn.header.options.timestamps, ts) {
        o.timestamps = Some((555, ours.0));
    }
    c.recv(t, S_ISS, iss + 1, S | A, o, &[]);
    assert_eq!(c.state(&t), Some(State::Established));
    (t, iss)
}

#[test]
fn the_syn_offers_what_linux_offers_and_the_syn_ack_establishes() {
    let mut c = Client::new(config(), TestAppConfig::default());
    let syn = c.connect();
    let t = syn.header.tuple;
    assert_eq!(syn.flags(), S);
    assert_eq!((t.remote_port, t.local_ip), (80, IpAddress::v4(ME)));
    assert!((32768..=60999).contains(&t.local_port), "{t:?}");
    let o = syn.header.options;
    assert_eq!(o.mss, Some(1460));
    assert!(o.window_scale.is_some() && o.sack_permitted);
    let (tsval, tsecr) = o.timestamps.expect("timestamps offered");
    assert_eq!(tsecr, 0);
    assert_eq!(c.state(&t), Some(State::SynSent));
    // The SYN/ACK: ESTABLISHED, its options taken, our ACK of its SYN at once.
    let iss = syn.seq().raw();
    let mut so = server_syn_opts(true);
    so.timestamps = Some((555, tsval));
    c.recv(t, S_ISS, iss + 1, S | A, so, &[]);
    assert_eq!(c.state(&t), Some(State::Established));
    let out = c.out.take();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags(), A);
    assert_eq!(
        (out[0].seq().raw(), out[0].ack().raw()),
        (iss + 1, S_ISS + 1)
    );
    assert_eq!(out[0].header.options.timestamps.map(|t| t.1), Some(555));
    let conn = c.e.connection(&t).unwrap();
    assert_eq!(conn.window_scales().0, 9, "the peer's shift");
    assert!(conn.sack_ok() && conn.ts_enabled());
    // MSS 1400 less the 12 bytes of timestamps.
    assert_eq!(conn.mss(), 1388);
    assert_eq!((c.e.app().opened, c.e.app().outgoing), (1, 1));
    assert_eq!(c.e.counters().active_opens, 1);
}

#[test]
fn an_ack_that_does_not_acknowledge_our_syn_gets_a_reset() {
    let mut c = Client::new(config(), TestAppConfig::default());
    let syn = c.connect();
    let t = syn.header.tuple;
    let iss = syn.seq().raw();
    for (i, bad) in [iss, iss + 2, iss.wrapping_sub(1000)]
        .into_iter()
        .enumerate()
    {
        c.recv(t, S_ISS, bad, S | A, server_syn_opts(false), &[]);
        let out = c.out.take();
        assert_eq!(
            (out[0].flags(), out[0].seq().raw()),
            (R, bad),
            "<SEQ=SEG.ACK><CTL=RST>"
        );
        if i == 0 {
            // The first time (a TIME-WAIT of the peer's, ended by the RST), the SYN again
            // at once.
            assert_eq!(out.len(), 2, "{out:?}");
            assert_eq!((out[1].flags(), out[1].seq().raw()), (S, iss));
        } else {
            assert_eq!(out.len(), 1, "{out:?}");
        }
        assert_eq!(c.state(&t), Some(State::SynSent));
    }
    // A bare ACK (what Linux's TIME-WAIT answers a SYN it takes for old) likewise.
    c.recv(t, S_ISS, iss.wrapping_sub(7), A, TcpOptions::default(), &[]);
    assert_eq!(c.out.take().len(), 1);
    // A RST with a bad ACK is dropped silently (no RST for a RST).
    c.recv(t, 0, iss + 5, R | A, TcpOptions::default(), &[]);
    assert!(c.out.take().is_empty());
    assert_eq!(c.state(&t), Some(State::SynSent));
}

#[test]
fn a_reset_refuses_only_when_it_acknowledges_our_syn() {
    let mut c = Client::new(config(), TestAppConfig::default());
    let syn = c.connect();
    let t = syn.header.tuple;
    let iss = syn.seq().raw();
    // Without ACK: not acceptable in SYN-SENT, dropped.
    c.recv(t, 0, 0, R, TcpOptions::default(), &[]);
    assert_eq!(c.state(&t), Some(State::SynSent));
    assert!(c.e.app().connect_failed.is_empty());
    // RST,ACK of our SYN (what Linux answers on a closed port): refused.
    c.recv(t, 0, iss + 1, R | A, TcpOptions::default(), &[]);
    assert_eq!(c.state(&t), None);
    assert_eq!(c.e.app().connect_failed.len(), 1);
    assert_eq!(c.e.app().connect_failed[0].1, CloseReason::Reset);
    assert_eq!((c.e.app().opened, c.e.counters().connect_failed), (0, 1));
    assert!(c.out.take().is_empty());
}

#[test]
fn the_syn_is_retransmitted_at_one_second_doubling_then_the_connect_fails() {
    let mut cfg = config();
    cfg.tcp.syn_retries = 3;
    let mut c = Client::new(cfg, TestAppConfig::default());
    let syn = c.connect();
    let t = syn.header.tuple;
    let start = c.now;
    let mut sent_at = Vec::new();
    // Walk time in 10 ms steps for 20 s.
    for _ in 0..2000 {
        c.advance(Duration::from_millis(10));
        for s in c.out.take() {
            assert_eq!((s.flags(), s.seq()), (S, syn.seq()), "the same SYN again");
            sent_at.push(c.now.saturating_since(start).as_millis());
        }
    }
    // 1 s, then +2 s, +4 s; the connect fails 8 s after the last one.
    let expect = [1000u128, 3000, 7000];
    assert_eq!(sent_at.len(), 3, "{sent_at:?}");
    for (got, want) in sent_at.iter().zip(expect) {
        assert!(
            got.abs_diff(want) <= 20,
            "retransmissions at {sent_at:?} ms"
        );
    }
    assert_eq!(c.state(&t), None);
    assert_eq!(c.e.app().connect_failed.len(), 1);
    assert_eq!(c.e.app().connect_failed[0].1, CloseReason::TimedOut);
    assert_eq!(c.e.counters().syn_retransmits, 3);
}

#[test]
fn simultaneous_open_goes_through_syn_received() {
    let mut c = Client::new(config(), TestAppConfig::default());
    let syn = c.connect();
    let t = syn.header.tuple;
    let iss = syn.seq().raw();
    // Their SYN crosses ours.
    c.recv(t, S_ISS, 0, S, server_syn_opts(false), &[]);
    assert_eq!(c.state(&t), Some(State::SynReceived));
    let out = c.out.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags(), S | A);
    assert_eq!((out[0].seq().raw(), out[0].ack().raw()), (iss, S_ISS + 1));
    // Their SYN/ACK (the answer to our SYN) completes it... as does a bare ACK.
    c.recv(t, S_ISS + 1, iss + 1, A, TcpOptions::default(), &[]);
    assert_eq!(c.state(&t), Some(State::Established));
    assert_eq!((c.e.app().opened, c.e.app().outgoing), (1, 1));
    // It never counted as half-open.
    assert_eq!(c.e.half_open(), 0);
}

#[test]
fn the_side_that_closes_first_keeps_time_wait() {
    // The application answers the server's first line and closes (FIN first).
    let app = TestAppConfig {
        close_after_response: true,
        ..TestAppConfig::default()
    };
    let mut c = Client::new(config(), app);
    let (t, iss) = established(&mut c, true);
    c.out.take();
    c.recv(
        t,
        S_ISS + 1,
        iss + 1,
        A,
        TcpOptions {
            timestamps: Some((600, 0)),
            ..TcpOptions::default()
        },
        b"hi\n",
    );
    let out = c.out.take();
    let reply_len: usize = out.iter().map(|s| s.payload.len()).sum();
    assert!(out.iter().any(|s| s.flags().fin()), "{out:?}");
    assert_eq!(c.state(&t), Some(State::FinWait1));
    let our_fin_end = iss + 1 + reply_len as u32 + 1;
    let o = TcpOptions {
        timestamps: Some((601, 0)),
        ..TcpOptions::default()
    };
    c.recv(t, S_ISS + 4, our_fin_end, A, o, &[]);
    assert_eq!(c.state(&t), Some(State::FinWait2));
    c.recv(t, S_ISS + 4, our_fin_end, F | A, o, &[]);
    assert_eq!(c.state(&t), None, "the connection left the table");
    assert!(c.e.time_wait_record(&t).is_some(), "TIME-WAIT on our side");
    let acks = c.out.take();
    assert_eq!(acks.last().map(|s| s.ack().raw()), Some(S_ISS + 5));
    // The server did not hear our ACK: its FIN again gets the same ACK, from the record.
    c.advance(Duration::from_millis(300));
    c.recv(
        t,
        S_ISS + 4,
        our_fin_end,
        F | A,
        TcpOptions {
            timestamps: Some((700, 0)),
            ..TcpOptions::default()
        },
        &[],
    );
    let again = c.out.take();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!((again[0].flags(), again[0].ack().raw()), (A, S_ISS + 5));
    assert_eq!(c.e.app().closed.len(), 1);
    assert_eq!(c.e.app().closed[0].1, CloseReason::Normal);
}

#[test]
fn ports_are_not_reused_while_busy_and_time_wait_is_reused_only_as_linux_does() {
    let mut cfg = config();
    cfg.ephemeral_ports = (50000, 50000);
    let app = TestAppConfig {
        close_after_response: true,
        ..TestAppConfig::default()
    };
    let mut c = Client::new(cfg, app);
    let (t, iss) = established(&mut c, true);
    // The only port is taken.
    assert_eq!(
        c.e.connect(c.now, None, IpAddress::v4(SERVER), 80, &mut c.out),
        Err(ConnectError::NoFreePort)
    );
    // Another remote port is another 4-tuple.
    assert!(
        c.e.connect(c.now, None, IpAddress::v4(SERVER), 81, &mut c.out)
            .is_ok()
    );
    c.out.take();
    // Close it from our side into TIME-WAIT (as the test above).
    let o = TcpOptions {
        timestamps: Some((600, 0)),
        ..TcpOptions::default()
    };
    c.recv(t, S_ISS + 1, iss + 1, A, o, b"hi\n");
    let reply_len: usize = c.out.take().iter().map(|s| s.payload.len()).sum();
    let fin_end = iss + 1 + reply_len as u32 + 1;
    c.recv(t, S_ISS + 4, fin_end, F | A, o, &[]);
    assert!(c.e.time_wait_record(&t).is_some());
    // Under a second later: still not reusable.
    c.advance(Duration::from_millis(500));
    assert_eq!(
        c.e.connect(c.now, None, IpAddress::v4(SERVER), 80, &mut c.out),
        Err(ConnectError::NoFreePort)
    );
    // After a second of quiet, with timestamps: reused, the record gone.
    c.advance(Duration::from_millis(600));
    c.e.connect(c.now, None, IpAddress::v4(SERVER), 80, &mut c.out)
        .expect("TIME-WAIT reuse");
    assert!(c.e.time_wait_record(&t).is_none());
    assert_eq!(c.e.counters().time_wait_reused, 1);
    // Without timestamps the record holds for its whole 2*MSL.
    let mut cfg = config();
    cfg.ephemeral_ports = (50000, 50000);
    let mut c = Client::new(
        cfg,
        TestAppConfig {
            close_after_response: true,
            ..TestAppConfig::default()
        },
    );
    let (t, iss) = established(&mut c, false);
    c.recv(t, S_ISS + 1, iss + 1, A, TcpOptions::default(), b"hi\n");
    let reply_len: usize = c.out.take().iter().map(|s| s.payload.len()).sum();
    c.recv(
        t,
        S_ISS + 4,
        iss + 1 + reply_len as u32 + 1,
        F | A,
        TcpOptions::default(),
        &[],
    );
    assert!(c.e.time_wait_record(&t).is_some());
    c.advance(Duration::from_secs(5));
    assert_eq!(
        c.e.connect(c.now, None, IpAddress::v4(SERVER), 80, &mut c.out),
        Err(ConnectError::NoFreePort)
    );
}

#[test]
fn no_local_address_of_the_family_is_said() {
    let mut c = Client::new(config(), TestAppConfig::default());
    let v6 = IpAddress::from("fd00::1".parse::<std::net::Ipv6Addr>().unwrap());
    assert_eq!(
        c.e.connect(c.now, None, v6, 80, &mut c.out),
        Err(ConnectError::NoLocalAddress)
    );
}
