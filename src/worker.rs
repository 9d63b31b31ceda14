//! One core's loop: RX batch -> wire -> TCP engine -> application -> TX batch.
//!
//! The loop is written against [`FrameIo`], so the same code runs over an AF_XDP socket in the
//! server and over memory in tests. Each iteration:
//! 1. reads the clock once (`now`);
//! 2. resumes the connections that waited for transmit room (`Engine::on_tx_room`), now that
//!    the last flush recycled completed frames;
//! 3. takes a batch of received frames; each is parsed (`wire::parse_frame`), handed to the
//!    engine, and whatever the engine answers is written straight into free TX frames;
//! 4. lets the application open connections (`Engine::poll_app`), then runs the timers that
//!    are due (`Engine::on_tick`);
//! 5. submits the whole TX batch with one kick (`FrameIo::flush`).
//!
//! So all the SYN/ACKs and FIN/ACKs answering one RX batch leave in one TX batch.
//!
//! Backpressure: the sink reports its room ([`TxQueue::room`]: free TX frames and ring slots)
//! and the engine sends only what fits; the rest waits in the engine, not lost. Replies go to
//! the link-layer address the engine keeps per connection (`SegmentOut::link`).

use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender, TrySendError};

use crate::flows::FlowDirectory;
use crate::tcp::app::App;
use crate::tcp::engine::Engine;
use crate::tcp::segment::{PayloadSource, SegmentSink};
use crate::time::Instant;
use crate::wire::segment::SegmentOut;
use crate::wire::{self, DropReason, FrameSpec};

/// Free TX frames of a queue, written in place.
pub trait TxQueue {
    /// Frames that `frame` + `commit` will surely take now: free frames and free ring slots,
    /// whichever is fewer (a lower bound; it may reap completions to find out).
    fn room(&mut self) -> usize;
    /// A free frame to write into, or `None` when no frame or ring slot is free.
    fn frame(&mut self) -> Option<&mut [u8]>;
    /// Queues the frame last returned by `frame`, `len` bytes long.
    fn commit(&mut self, len: usize);
}

/// What a worker needs from its NIC queue.
pub trait FrameIo {
    /// Takes up to `max` received frames; `f` sees each one and may write replies to `tx`.
    /// Returns how many frames were taken.
    fn receive(&mut self, max: usize, f: &mut dyn FnMut(&[u8], &mut dyn TxQueue)) -> usize;
    /// TX access outside a receive (timers).
    fn transmit(&mut self, f: &mut dyn FnMut(&mut dyn TxQueue));
    /// Submits what was queued, kicks the kernel if it needs it, recycles completed frames
    /// and refills the fill ring.
    fn flush(&mut self);
}

/// Why the worker itself dropped a frame (beside the wire layer's reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerDrop {
    /// No free TX frame although the sink reported room (a `TxQueue` whose `room` is not
    /// honest): the segment was dropped. The engine normally waits for room instead.
    TxFull,
    /// A segment too large for a frame.
    TxTooBig,
    /// `--inject-drop` fault injection.
    Injected,
    /// The owner worker's inbox was full.
    ForwardFull,
}

impl WorkerDrop {
    pub const ALL: [WorkerDrop; 4] = [
        WorkerDrop::TxFull,
        WorkerDrop::TxTooBig,
        WorkerDrop::Injected,
        WorkerDrop::ForwardFull,
    ];
    pub const COUNT: usize = Self::ALL.len();
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkerDrop::TxFull => "tx_full",
            WorkerDrop::TxTooBig => "tx_too_big",
            WorkerDrop::Injected => "injected",
            WorkerDrop::ForwardFull => "forward_full",
        }
    }
}

/// Frame-level counters of one worker.
#[derive(Clone, Debug, Default)]
pub struct FrameCounters {
    pub rx_frames: u64,
    pub tx_frames: u64,
    /// Bytes of those frames (Ethernet header to the end of the payload).
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_batches: u64,
    /// Frames sent to the worker that owns their connection / received from another worker.
    pub forwarded_out: u64,
    pub forwarded_in: u64,
    pub wire_drops: [u64; DropReason::COUNT],
    pub worker_drops: [u64; WorkerDrop::COUNT],
}

/// Writes the engine's segments as Ethernet/IP/TCP frames into TX frames.
struct FrameSink<'a> {
    tx: &'a mut dyn TxQueue,
    addr: &'a mut Addressing,
    counters: &'a mut FrameCounters,
    capture: Option<(&'a crate::pcap::Capture, u64)>,
}

/// What every frame a worker sends needs besides the segment: our MAC and the IPv4
/// identification counter. The destination MAC comes with each segment (`SegmentOut::link`).
struct Addressing {
    local_mac: [u8; 6],
    ip_id: u16,
}

impl Addressing {
    /// A sink writing into `tx`'s free frames.
    fn sink<'a>(
        &'a mut self,
        tx: &'a mut dyn TxQueue,
        counters: &'a mut FrameCounters,
        capture: Option<(&'a crate::pcap::Capture, u64)>,
    ) -> FrameSink<'a> {
        FrameSink {
            tx,
            addr: self,
            counters,
            capture,
        }
    }
}

impl SegmentSink for FrameSink<'_> {
    #[inline]
    fn room(&mut self) -> usize {
        self.tx.room()
    }

    fn emit(&mut self, seg: &SegmentOut, payload: &dyn PayloadSource) {
        let spec = FrameSpec {
            src_mac: self.addr.local_mac,
            dst_mac: seg.link,
            src_ip: seg.tuple.local_ip,
            dst_ip: seg.tuple.remote_ip,
            ttl: 64,
            ip_id: self.addr.ip_id,
            src_port: seg.tuple.local_port,
            dst_port: seg.tuple.remote_port,
            seq: seg.seq.raw(),
            ack: seg.ack.raw(),
            flags: seg.flags,
            window: seg.window,
            options: seg.options,
        };
        self.addr.ip_id = self.addr.ip_id.wrapping_add(1);
        let Some(buf) = self.tx.frame() else {
            self.counters.worker_drops[WorkerDrop::TxFull as usize] += 1;
            return;
        };
        let hdr = wire::tcp_headers_len(seg.tuple.is_v4(), &seg.options);
        let len = payload.len();
        if hdr + len > buf.len() {
            self.counters.worker_drops[WorkerDrop::TxTooBig as usize] += 1;
            return;
        }
        payload.copy_to(&mut buf[hdr..hdr + len]);
        match wire::build_tcp_frame(buf, &spec, len) {
            Ok(n) => {
                if let Some((cap, ts)) = self.capture {
                    cap.frame(ts, &buf[..n]);
                }
                self.tx.commit(n);
                self.counters.tx_frames += 1;
                self.counters.tx_bytes += n as u64;
            }
            Err(_) => self.counters.worker_drops[WorkerDrop::TxTooBig as usize] += 1,
        }
    }
}

/// Deterministic fault injection (`--inject-drop`): xorshift, seeded per worker.
pub struct DropInjector {
    threshold: u64,
    state: u64,
}

impl DropInjector {
    pub fn new(probability: f64, seed: u64) -> Self {
        let p = probability.clamp(0.0, 1.0);
        DropInjector {
            threshold: (p * u64::MAX as f64) as u64,
            state: seed | 1,
        }
    }
    #[inline]
    fn drop_next(&mut self) -> bool {
        if self.threshold == 0 {
            return false;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state < self.threshold
    }
}

/// How workers hand each other frames of connections they do not own (multi-queue only).
pub struct Steering {
    pub me: u16,
    pub directory: Arc<FlowDirectory>,
    /// One sender per worker, indexed by worker number.
    pub peers: Vec<Sender<Box<[u8]>>>,
    pub inbox: Receiver<Box<[u8]>>,
}

impl Steering {
    /// A full mesh of `n` workers sharing one directory.
    pub fn mesh(n: usize, inbox_len: usize) -> Vec<Steering> {
        let directory = Arc::new(FlowDirectory::default());
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| crossbeam::channel::bounded(inbox_len))
            .unzip();
        rxs.into_iter()
            .enumerate()
            .map(|(i, inbox)| Steering {
                me: i as u16,
                directory: directory.clone(),
                peers: txs.clone(),
                inbox,
            })
            .collect()
    }
}

/// A frame that is not TCP: a path-MTU message about one of our connections (see
/// [`wire::parse_pmtu_frame`]) goes to the engine, or to the worker that owns the connection;
/// anything else is a counted drop.
#[cold]
fn on_icmp<A: App>(
    engine: &mut Engine<A>,
    steering: Option<&Steering>,
    frame: &[u8],
    now: Instant,
    sink: &mut FrameSink<'_>,
) {
    let msg = match wire::parse_pmtu_frame(frame) {
        Ok(m) => m,
        Err(why) => {
            sink.counters.wire_drops[why as usize] += 1;
            return;
        }
    };
    if let Some(st) = steering
        && !engine.knows(&msg.tuple)
        && let Some(owner) = st.directory.owner(&msg.tuple)
        && owner != st.me
    {
        match st.peers[owner as usize].try_send(frame.into()) {
            Ok(()) => sink.counters.forwarded_out += 1,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                sink.counters.worker_drops[WorkerDrop::ForwardFull as usize] += 1
            }
        }
        return;
    }
    engine.on_packet_too_big(now, &msg.tuple, msg.seq, msg.mtu, sink);
}

/// Frames taken from the inbox per loop iteration.
const INBOX_BATCH: usize = 256;

/// One worker's datapath state: its engine, its queue and its counters.
pub struct Datapath<A: App, IO: FrameIo> {
    pub engine: Engine<A>,
    pub io: IO,
    pub counters: FrameCounters,
    addr: Addressing,
    batch: usize,
    inject: DropInjector,
    capture: Option<crate::pcap::Capture>,
    steering: Option<Steering>,
    /// Messages other workers sent this one's application (`App::on_message`).
    inbox: Option<Receiver<A::Message>>,
}

impl<A: App, IO: FrameIo> Datapath<A, IO> {
    pub fn new(engine: Engine<A>, io: IO, local_mac: [u8; 6], batch: usize) -> Self {
        Datapath {
            engine,
            io,
            counters: FrameCounters::default(),
            addr: Addressing {
                local_mac,
                ip_id: 0,
            },
            batch: batch.max(1),
            inject: DropInjector::new(0.0, 1),
            capture: None,
            steering: None,
            inbox: None,
        }
    }

    /// Where the application's messages from other workers arrive.
    pub(crate) fn set_inbox(&mut self, inbox: Receiver<A::Message>) {
        self.inbox = Some(inbox);
    }

    /// Joins a mesh of workers: frames of connections owned elsewhere are forwarded there.
    pub fn set_steering(&mut self, s: Steering) {
        self.engine.set_track_flows(true);
        self.steering = Some(s);
    }

    /// Whether this worker is in a mesh (frames may also arrive from other workers).
    pub fn has_steering(&self) -> bool {
        self.steering.is_some()
    }

    pub fn set_inject_drop(&mut self, probability: f64, seed: u64) {
        self.inject = DropInjector::new(probability, seed);
    }

    pub fn set_capture(&mut self, capture: Option<crate::pcap::Capture>) {
        self.capture = capture;
    }

    /// One loop iteration. `unix_us` stamps captured frames. Returns the frames received.
    pub fn poll(&mut self, now: Instant, unix_us: u64) -> usize {
        let Datapath {
            engine,
            io,
            counters,
            addr,
            batch,
            inject,
            capture,
            steering,
            inbox,
        } = self;
        let capture = capture.as_ref().map(|c| (c, unix_us));
        let steering = steering.as_ref();
        if engine.tx_waiting() > 0 {
            // The last flush recycled completed frames: connections that found the ring full
            // go first, before new input takes the room.
            io.transmit(&mut |tx| {
                let mut sink = addr.sink(tx, counters, capture);
                engine.on_tx_room(now, &mut sink);
            });
        }
        let n = io.receive(*batch, &mut |frame, tx| {
            counters.rx_frames += 1;
            counters.rx_bytes += frame.len() as u64;
            if let Some((cap, ts)) = capture {
                cap.frame(ts, frame);
            }
            if inject.drop_next() {
                counters.worker_drops[WorkerDrop::Injected as usize] += 1;
                return;
            }
            let parsed = match wire::parse_frame(frame) {
                Ok(p) => p,
                Err(DropReason::NotTcp) => {
                    // The XDP program steers ICMP only when it says "too big" about a segment
                    // of ours (RFC 1191, RFC 8201): the cold path.
                    let mut sink = addr.sink(tx, counters, capture);
                    on_icmp(engine, steering, frame, now, &mut sink);
                    return;
                }
                Err(why) => {
                    counters.wire_drops[why as usize] += 1;
                    return;
                }
            };
            let seg = parsed.to_segment_in();
            // A segment of a connection this worker does not know, which another worker
            // owns (RSS moved the flow, or the answer to a connection it opened came in
            // here): hand the frame to the owner. A bare SYN opens a connection where it
            // lands; a SYN/ACK answers one of ours.
            if let Some(st) = steering
                && (!seg.flags.syn() || seg.flags.ack())
                && !engine.knows(&seg.tuple)
                && let Some(owner) = st.directory.owner(&seg.tuple)
                && owner != st.me
            {
                match st.peers[owner as usize].try_send(frame.into()) {
                    Ok(()) => counters.forwarded_out += 1,
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                        counters.worker_drops[WorkerDrop::ForwardFull as usize] += 1
                    }
                }
                return;
            }
            let mut sink = addr.sink(tx, counters, capture);
            engine.on_segment(now, &seg, &mut sink);
        });
        if n > 0 {
            counters.rx_batches += 1;
        }
        io.transmit(&mut |tx| {
            // Frames other workers forwarded to us, then the timers.
            if let Some(st) = steering {
                for frame in st.inbox.try_iter().take(INBOX_BATCH) {
                    counters.forwarded_in += 1;
                    let mut sink = addr.sink(tx, counters, capture);
                    match wire::parse_frame(&frame) {
                        Ok(parsed) => engine.on_segment(now, &parsed.to_segment_in(), &mut sink),
                        Err(DropReason::NotTcp) => on_icmp(engine, None, &frame, now, &mut sink),
                        Err(_) => {}
                    }
                }
            }
            // Messages for the application, a bounded number per iteration.
            if let Some(inbox) = inbox {
                for msg in inbox.try_iter().take(INBOX_BATCH) {
                    let mut sink = addr.sink(tx, counters, capture);
                    engine.on_message(now, msg, &mut sink);
                }
            }
            let mut sink = addr.sink(tx, counters, capture);
            // The application's turn (connections it opens send their SYNs), then timers.
            engine.poll_app(now, &mut sink);
            engine.on_tick(now, &mut sink);
        });
        // The flow directory learns of new connections before their first segment leaves:
        // on veth the answer can come back within the kick, on another worker's queue, and
        // must find its owner there (a SYN/ACK to a connection we opened, an ACK to our
        // SYN/ACK). Departures first, so that a tuple closed and reopened in one iteration
        // stays claimed.
        if let Some(st) = steering {
            for t in engine.events.closed.drain(..) {
                st.directory.release(&t, st.me);
            }
            for t in engine.events.opened.drain(..) {
                st.directory.claim(t, st.me);
            }
        }
        io.flush();
        n
    }

    /// Runs `f` with a sink, for shutdown steps (`begin_shutdown`, `abort_all`).
    pub fn with_sink(&mut self, f: &mut dyn FnMut(&mut Engine<A>, &mut dyn SegmentSink)) {
        let Datapath {
            engine,
            io,
            counters,
            addr,
            capture,
            ..
        } = self;
        let capture = capture.as_ref().map(|c| (c, 0u64));
        io.transmit(&mut |tx| {
            let mut sink = addr.sink(tx, counters, capture);
            f(engine, &mut sink);
        });
        io.flush();
    }
}

/// A `SegmentSink` behind a `dyn`, so engine methods generic over the sink accept it.
impl SegmentSink for &mut dyn SegmentSink {
    fn room(&mut self) -> usize {
        (**self).room()
    }
    fn emit(&mut self, seg: &SegmentOut, payload: &dyn PayloadSource) {
        (**self).emit(seg, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injector_rate_is_close_to_asked() {
        let mut d = DropInjector::new(0.05, 42);
        let dropped = (0..100_000).filter(|_| d.drop_next()).count();
        assert!((4000..6000).contains(&dropped), "{dropped}");
        let mut none = DropInjector::new(0.0, 42);
        assert!((0..1000).all(|_| !none.drop_next()));
    }
}

#[cfg(test)]
mod steering_tests {
    use super::*;
    use crate::wire::IpAddress;
    use crate::tcp::engine::EngineConfig;
    use crate::tcp::testkit::{TestApp, TestAppConfig};
    use crate::wire::tcp::{TcpFlags, TcpOptions};
    use std::collections::VecDeque;

    /// Frames in memory: `rx` to receive, `tx` what was sent.
    #[derive(Default)]
    struct MemIo {
        rx: VecDeque<Vec<u8>>,
        tx: Vec<Vec<u8>>,
        frame: Vec<u8>,
    }

    impl TxQueue for MemIo {
        fn room(&mut self) -> usize {
            usize::MAX
        }
        fn frame(&mut self) -> Option<&mut [u8]> {
            self.frame = vec![0u8; 2048];
            Some(&mut self.frame)
        }
        fn commit(&mut self, len: usize) {
            self.tx.push(self.frame[..len].to_vec());
        }
    }

    impl FrameIo for MemIo {
        fn receive(&mut self, max: usize, f: &mut dyn FnMut(&[u8], &mut dyn TxQueue)) -> usize {
            let mut n = 0;
            while n < max {
                let Some(frame) = self.rx.pop_front() else {
                    break;
                };
                f(&frame, self);
                n += 1;
            }
            n
        }
        fn transmit(&mut self, f: &mut dyn FnMut(&mut dyn TxQueue)) {
            f(self)
        }
        fn flush(&mut self) {}
    }

    const CLIENT: u32 = u32::from_be_bytes([198, 18, 0, 2]);
    const SERVER: u32 = u32::from_be_bytes([198, 18, 0, 1]);

    fn frame(seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
        frame_from(40000, seq, ack, flags, payload)
    }

    fn frame_from(port: u16, seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
        let spec = FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_ip: IpAddress::v4(CLIENT),
            dst_ip: IpAddress::v4(SERVER),
            ttl: 64,
            ip_id: 1,
            src_port: port,
            dst_port: 8080,
            seq,
            ack,
            flags,
            window: 65535,
            options: TcpOptions {
                mss: flags.syn().then_some(1460),
                ..TcpOptions::default()
            },
        };
        let mut buf = vec![0u8; 2048];
        let h = wire::tcp_headers_len(spec.src_ip.is_v4(), &spec.options);
        buf[h..h + payload.len()].copy_from_slice(payload);
        let n = wire::build_tcp_frame(&mut buf, &spec, payload.len()).unwrap();
        buf.truncate(n);
        buf
    }

    fn worker() -> Datapath<TestApp, MemIo> {
        let cfg = EngineConfig {
            local_ips: vec![IpAddress::v4(SERVER)],
            ports: vec![8080],
            ..EngineConfig::default()
        };
        Datapath::new(
            Engine::new(cfg, TestApp::new(TestAppConfig::default())),
            MemIo::default(),
            [2, 0, 0, 0, 0, 1],
            64,
        )
    }

    #[test]
    fn a_segment_on_the_wrong_queue_reaches_its_owner() {
        let mut mesh = Steering::mesh(2, 64);
        let (mut w0, mut w1) = (worker(), worker());
        let s1 = mesh.pop().unwrap();
        w0.set_steering(mesh.pop().unwrap());
        w1.set_steering(s1);
        let now = Instant::from_millis(1000);
        // The SYN arrives on queue 0: worker 0 owns the connection.
        w0.io.rx.push_back(frame(100, 0, TcpFlags::SYN, &[]));
        w0.poll(now, 0);
        assert_eq!(
            w0.io.tx.len(),
            1,
            "{:?} {:?}",
            w0.counters,
            w0.engine.counters()
        );
        let synack = wire::parse_frame(&w0.io.tx[0]).unwrap();
        assert!(synack.flags().syn() && synack.flags().ack());
        let iss = synack.seq();
        w1.poll(now, 0); // w1 has nothing yet
        // RSS moved the flow: the final ACK and the request arrive on queue 1.
        w1.io.rx.push_back(frame(101, iss + 1, TcpFlags::ACK, &[]));
        w1.io
            .rx
            .push_back(frame(101, iss + 1, TcpFlags::ACK | TcpFlags::PSH, b"GET\n"));
        w1.poll(now, 0);
        assert!(
            w1.io.tx.is_empty(),
            "worker 1 must not answer (no RST): {:?}",
            w1.io.tx.len()
        );
        assert_eq!(w1.counters.forwarded_out, 2);
        w0.poll(now, 0);
        assert_eq!(w0.counters.forwarded_in, 2);
        let resp = wire::parse_frame(w0.io.tx.last().unwrap()).unwrap();
        assert!(
            resp.payload().ends_with(b"ok"),
            "worker 0 answers the request"
        );
        assert_eq!(resp.ack(), 105);
        // A segment for a connection nobody has is answered with RST by the worker that got it.
        w1.io
            .rx
            .push_back(frame_from(40001, 7, 7, TcpFlags::ACK, &[]));
        w1.poll(now, 0);
        assert!(wire::parse_frame(&w1.io.tx[0]).unwrap().flags().rst());
    }
}
