//! One AF_XDP socket bound to one NIC queue, with its own UMEM and four rings, presented to
//! the worker as a [`FrameIo`].
//!
//! Frame accounting: the UMEM's first `ring_size` frames serve reception: they cycle
//! fill ring -> kernel -> RX ring -> the worker's batch -> fill ring. The rest serve
//! transmission: TX free list -> written by the worker -> TX ring -> kernel -> completion
//! ring -> TX free list. A frame is always in exactly one of these places; the tests below
//! check it with a simulated kernel.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use super::XdpError;
use super::ring::{ConsumerRing, ProducerRing, RingMem};
use super::sys::{self, Mapping, MmapOffsets, SockaddrXdp, UmemReg, XdpDesc, XdpStatistics};
use super::umem::{OwnedFrame, Umem};
use crate::netdev::NetDev;
use crate::worker::{FrameIo, TxQueue};

/// Socket settings (from the command line).
#[derive(Clone, Debug)]
pub struct SocketConfig {
    pub frame_size: u32,
    pub frames: u32,
    pub ring_size: u32,
    pub zero_copy: bool,
    /// (SO_BUSY_POLL microseconds, SO_BUSY_POLL_BUDGET)
    pub busy_poll: Option<(u32, u32)>,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            frame_size: 2048,
            frames: 8192,
            ring_size: 2048,
            zero_copy: false,
            busy_poll: None,
        }
    }
}

/// Counters of our side of the rings.
#[derive(Clone, Copy, Debug, Default)]
pub struct RingCounters {
    pub rx_invalid_desc: u64,
    pub tx_ring_full: u64,
    pub tx_no_frame: u64,
    pub tx_kicks: u64,
    pub fill_wakeups: u64,
}

/// The rings and frames of a queue, without the socket: testable with a simulated kernel.
pub struct Rings {
    umem: Umem,
    fill: ProducerRing<u64>,
    comp: ConsumerRing<u64>,
    rx: ConsumerRing<XdpDesc>,
    tx: ProducerRing<XdpDesc>,
    tx_free: Vec<OwnedFrame>,
    rx_batch: Vec<XdpDesc>,
    /// RX frames waiting for room in the fill ring.
    recycle: Vec<OwnedFrame>,
    /// TX descriptors written but not yet submitted.
    tx_queued: u32,
    pub counters: RingCounters,
}

impl Rings {
    /// Stocks the fill ring with the first `fill.size()` frames; the rest are for TX.
    pub fn new(
        mut umem: Umem,
        fill: ProducerRing<u64>,
        comp: ConsumerRing<u64>,
        rx: ConsumerRing<XdpDesc>,
        tx: ProducerRing<XdpDesc>,
    ) -> Result<Rings, String> {
        let rx_frames = fill.size();
        if umem.frames() < rx_frames + tx.size() {
            return Err(format!(
                "{} frames cannot feed a fill ring of {} and a TX ring of {}",
                umem.frames(),
                rx_frames,
                tx.size()
            ));
        }
        let mut recycle = umem.take_frames();
        if recycle.len() != umem.frames() as usize {
            return Err("the UMEM's frames are already handed out".into());
        }
        let tx_free = recycle.drain(rx_frames as usize..).rev().collect();
        let mut r = Rings {
            tx_free,
            rx_batch: Vec::with_capacity(rx.size() as usize),
            recycle,
            umem,
            fill,
            comp,
            rx,
            tx,
            tx_queued: 0,
            counters: RingCounters::default(),
        };
        r.refill();
        Ok(r)
    }

    /// Gives recycled RX frames back to the kernel through the fill ring.
    fn refill(&mut self) {
        let n = self
            .fill
            .free(self.recycle.len() as u32)
            .min(self.recycle.len() as u32);
        if n == 0 {
            return;
        }
        let start = self.recycle.len() - n as usize;
        for (i, frame) in self.recycle.drain(start..).enumerate() {
            self.fill.write(i as u32, self.umem.to_kernel(frame));
        }
        self.fill.submit(n);
    }

    /// Moves completed TX frames back to the free list.
    fn reap(&mut self) {
        reap(&mut self.comp, &mut self.tx_free, &self.umem);
    }

    /// Takes up to `max` received frames and runs `f` on each with TX access.
    pub fn receive(&mut self, max: usize, f: &mut dyn FnMut(&[u8], &mut dyn TxQueue)) -> usize {
        let n = self.rx.available(max.min(u32::MAX as usize) as u32);
        self.rx_batch.clear();
        for i in 0..n {
            self.rx_batch.push(self.rx.read(i));
        }
        self.rx.release(n);
        let Rings {
            umem,
            comp,
            tx,
            tx_free,
            rx_batch,
            recycle,
            tx_queued,
            counters,
            ..
        } = self;
        let mut txq = Tx {
            umem,
            tx,
            tx_free,
            comp,
            queued: tx_queued,
            current: None,
            counters,
        };
        for d in rx_batch.iter() {
            // SAFETY: `d` was read from the RX ring of the socket this UMEM is registered with:
            // the kernel returns a frame it took from the fill ring, once.
            let Some(frame) = (unsafe { txq.umem.reclaim(d.addr) }) else {
                txq.counters.rx_invalid_desc += 1;
                continue;
            };
            match txq.umem.frame(&frame, d.addr, d.len) {
                Some(bytes) => f(bytes, &mut txq),
                None => txq.counters.rx_invalid_desc += 1,
            }
            recycle.push(frame);
        }
        txq.finish();
        self.refill();
        n as usize
    }

    /// TX access outside a receive.
    pub fn transmit(&mut self, f: &mut dyn FnMut(&mut dyn TxQueue)) {
        let Rings {
            umem,
            comp,
            tx,
            tx_free,
            tx_queued,
            counters,
            ..
        } = self;
        let mut txq = Tx {
            umem,
            tx,
            tx_free,
            comp,
            queued: tx_queued,
            current: None,
            counters,
        };
        f(&mut txq);
        txq.finish();
    }

    /// Publishes queued TX descriptors; returns how many.
    pub fn submit_tx(&mut self) -> u32 {
        let n = self.tx_queued;
        if n > 0 {
            self.tx.submit(n);
            self.tx_queued = 0;
        }
        n
    }

    /// TX descriptors the kernel has not consumed yet.
    pub fn tx_outstanding(&self) -> u32 {
        self.tx.outstanding()
    }

    pub fn tx_needs_wakeup(&self) -> bool {
        self.tx.needs_wakeup()
    }

    pub fn fill_needs_wakeup(&self) -> bool {
        self.fill.needs_wakeup()
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn umem(&self) -> &Umem {
        &self.umem
    }

    /// Runs completions and refill (end of a loop iteration).
    pub fn housekeeping(&mut self) {
        self.reap();
        self.refill();
    }
}

fn reap(comp: &mut ConsumerRing<u64>, free: &mut Vec<OwnedFrame>, umem: &Umem) {
    let n = comp.available(u32::MAX);
    for i in 0..n {
        // SAFETY: read from the completion ring of the socket this UMEM is registered with:
        // the kernel returns a frame we posted on the TX ring, once.
        if let Some(frame) = unsafe { umem.reclaim(comp.read(i)) } {
            free.push(frame);
        }
    }
    comp.release(n);
}

/// TX access handed to the worker: free frames to write, the TX ring to queue them.
struct Tx<'a> {
    umem: &'a Umem,
    tx: &'a mut ProducerRing<XdpDesc>,
    tx_free: &'a mut Vec<OwnedFrame>,
    comp: &'a mut ConsumerRing<u64>,
    queued: &'a mut u32,
    /// The frame handed out by `frame` and not yet committed.
    current: Option<OwnedFrame>,
    counters: &'a mut RingCounters,
}

impl Tx<'_> {
    /// A frame taken but not committed goes back to the free list.
    fn finish(&mut self) {
        if let Some(frame) = self.current.take() {
            self.tx_free.push(frame);
        }
    }
}

impl TxQueue for Tx<'_> {
    fn room(&mut self) -> usize {
        // Ring slots: what the cached consumer index allows beyond the descriptors written
        // and not yet submitted (a lower bound; reloaded when it says none).
        let slots = self.tx.free(*self.queued + 1).saturating_sub(*self.queued) as usize;
        if slots == 0 {
            self.counters.tx_ring_full += 1;
            return 0;
        }
        // Frames: the free list, refilled from the completion ring when empty. A frame handed
        // out by `frame` and not committed yet counts too: `frame` returns it again.
        if self.tx_free.is_empty() && self.current.is_none() {
            reap(self.comp, self.tx_free, self.umem);
        }
        let frames = self.tx_free.len() + self.current.is_some() as usize;
        if frames == 0 {
            self.counters.tx_no_frame += 1;
        }
        slots.min(frames)
    }

    fn frame(&mut self) -> Option<&mut [u8]> {
        if self.current.is_none() {
            if self.tx.free(*self.queued + 1) <= *self.queued {
                self.counters.tx_ring_full += 1;
                return None;
            }
            if self.tx_free.is_empty() {
                reap(self.comp, self.tx_free, self.umem);
            }
            let Some(frame) = self.tx_free.pop() else {
                self.counters.tx_no_frame += 1;
                return None;
            };
            self.current = Some(frame);
        }
        // The token, borrowed with `&mut self`, keeps this slice the only one over the frame
        // until `commit` gives the frame to the TX ring.
        let umem = self.umem;
        self.current.as_mut().map(|frame| umem.frame_mut(frame))
    }

    fn commit(&mut self, len: usize) {
        let Some(frame) = self.current.take() else {
            return;
        };
        let len = len.min(self.umem.frame_size() as usize) as u32;
        let addr = self.umem.to_kernel(frame);
        self.tx.write(
            *self.queued,
            XdpDesc {
                addr,
                len,
                options: 0,
            },
        );
        *self.queued += 1;
    }
}

/// An AF_XDP socket bound to one queue.
pub struct XskQueue {
    fd: OwnedFd,
    queue_id: u32,
    zero_copy: bool,
    busy_poll: bool,
    rings: Rings,
}

fn io_err(what: &str, e: io::Error) -> XdpError {
    XdpError::from_io(what, e)
}

impl XskQueue {
    /// Creates the socket, registers its UMEM, maps the rings and binds to `dev` queue `queue_id`.
    pub fn open(dev: &NetDev, queue_id: u32, cfg: &SocketConfig) -> Result<XskQueue, XdpError> {
        if !cfg.ring_size.is_power_of_two() {
            return Err(XdpError::Config(format!(
                "ring size {} must be a power of two",
                cfg.ring_size
            )));
        }
        let fd = sys::xdp_socket().map_err(|e| io_err("socket(AF_XDP)", e))?;
        let umem = Umem::new(cfg.frames, cfg.frame_size).map_err(XdpError::Config)?;
        let reg = UmemReg {
            addr: umem.base() as u64,
            len: umem.len() as u64,
            chunk_size: cfg.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        sys::setsockopt(&fd, sys::SOL_XDP, sys::XDP_UMEM_REG, &reg).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOBUFS) {
                // The kernel charges the UMEM to RLIMIT_MEMLOCK without CAP_IPC_LOCK.
                XdpError::Config(format!(
                    "the kernel refused to lock the {}-byte UMEM of queue {queue_id} \
                     (RLIMIT_MEMLOCK, counted for all of this user's processes): grant \
                     CAP_IPC_LOCK or raise the limit (systemd LimitMEMLOCK=, `ulimit -l`); \
                     `synack check` shows both",
                    umem.len()
                ))
            } else {
                io_err("XDP_UMEM_REG", e)
            }
        })?;
        let size = cfg.ring_size;
        for (opt, name) in [
            (sys::XDP_UMEM_FILL_RING, "XDP_UMEM_FILL_RING"),
            (sys::XDP_UMEM_COMPLETION_RING, "XDP_UMEM_COMPLETION_RING"),
            (sys::XDP_RX_RING, "XDP_RX_RING"),
            (sys::XDP_TX_RING, "XDP_TX_RING"),
        ] {
            sys::setsockopt(&fd, sys::SOL_XDP, opt, &size).map_err(|e| io_err(name, e))?;
        }
        let off: MmapOffsets = sys::getsockopt(&fd, sys::SOL_XDP, sys::XDP_MMAP_OFFSETS)
            .map_err(|e| io_err("XDP_MMAP_OFFSETS", e))?;
        let map = |o: &sys::RingOffset, entry: usize, pgoff| -> Result<Arc<Mapping>, XdpError> {
            let len = o.desc as usize + size as usize * entry;
            Mapping::ring(fd.as_raw_fd(), len, pgoff)
                .map(Arc::new)
                .map_err(|e| io_err("mmap of an AF_XDP ring", e))
        };
        let ring =
            |m: Arc<Mapping>, o: &sys::RingOffset, is_desc: bool| -> Result<RingMem, XdpError> {
                if is_desc {
                    RingMem::new::<XdpDesc>(m, o, size)
                } else {
                    RingMem::new::<u64>(m, o, size)
                }
                .map_err(XdpError::Config)
            };
        let fill = ProducerRing::new(ring(
            map(&off.fr, 8, sys::XDP_UMEM_PGOFF_FILL_RING)?,
            &off.fr,
            false,
        )?);
        let comp = ConsumerRing::new(ring(
            map(&off.cr, 8, sys::XDP_UMEM_PGOFF_COMPLETION_RING)?,
            &off.cr,
            false,
        )?);
        let rx = ConsumerRing::new(ring(
            map(&off.rx, 16, sys::XDP_PGOFF_RX_RING)?,
            &off.rx,
            true,
        )?);
        let tx = ProducerRing::new(ring(
            map(&off.tx, 16, sys::XDP_PGOFF_TX_RING)?,
            &off.tx,
            true,
        )?);
        let rings = Rings::new(umem, fill, comp, rx, tx).map_err(XdpError::Config)?;

        let mut addr = SockaddrXdp {
            family: sys::AF_XDP as u16,
            flags: sys::XDP_USE_NEED_WAKEUP
                | if cfg.zero_copy {
                    sys::XDP_ZEROCOPY
                } else {
                    sys::XDP_COPY
                },
            ifindex: dev.index,
            queue_id,
            shared_umem_fd: 0,
        };
        if let Err(e) = sys::bind(&fd, &addr) {
            let retry = cfg.zero_copy
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::EPROTONOSUPPORT)
                );
            if !retry {
                return Err(XdpError::Bind {
                    iface: dev.name.clone(),
                    queue: queue_id,
                    source: e,
                });
            }
            // The driver has no zero-copy: copy mode instead.
            addr.flags = sys::XDP_USE_NEED_WAKEUP | sys::XDP_COPY;
            sys::bind(&fd, &addr).map_err(|e| XdpError::Bind {
                iface: dev.name.clone(),
                queue: queue_id,
                source: e,
            })?;
        }
        let opts: u32 = sys::getsockopt(&fd, sys::SOL_XDP, sys::XDP_OPTIONS).unwrap_or(0);
        let zero_copy = opts & sys::XDP_OPTIONS_ZEROCOPY != 0;
        let mut busy = false;
        if let Some((usecs, budget)) = cfg.busy_poll {
            let one: libc::c_int = 1;
            let usecs = usecs as libc::c_int;
            let budget = budget as libc::c_int;
            sys::setsockopt(&fd, libc::SOL_SOCKET, sys::SO_PREFER_BUSY_POLL, &one)
                .and_then(|_| sys::setsockopt(&fd, libc::SOL_SOCKET, sys::SO_BUSY_POLL, &usecs))
                .and_then(|_| {
                    sys::setsockopt(&fd, libc::SOL_SOCKET, sys::SO_BUSY_POLL_BUDGET, &budget)
                })
                .map_err(|e| {
                    io_err(
                        "busy-poll socket options (SO_PREFER_BUSY_POLL needs Linux 5.11)",
                        e,
                    )
                })?;
            busy = true;
        }
        Ok(XskQueue {
            fd,
            queue_id,
            zero_copy,
            busy_poll: busy,
            rings,
        })
    }

    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    pub fn statistics(&self) -> XdpStatistics {
        sys::getsockopt(&self.fd, sys::SOL_XDP, sys::XDP_STATISTICS).unwrap_or_default()
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn rings(&self) -> &Rings {
        &self.rings
    }
}

impl AsFd for XskQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for XskQueue {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl FrameIo for XskQueue {
    fn receive(&mut self, max: usize, f: &mut dyn FnMut(&[u8], &mut dyn TxQueue)) -> usize {
        if self.busy_poll {
            // Preferred busy polling: the syscall runs the driver's NAPI poll on this core.
            sys::wake_rx(&self.fd);
        }
        let n = self.rings.receive(max, f);
        if self.rings.fill_needs_wakeup() {
            self.rings.counters.fill_wakeups += 1;
            sys::wake_rx(&self.fd);
        }
        n
    }

    fn transmit(&mut self, f: &mut dyn FnMut(&mut dyn TxQueue)) {
        self.rings.transmit(f)
    }

    fn flush(&mut self) {
        let queued = self.rings.submit_tx();
        // Copy mode sends at most 32 frames per kick: kick until the ring drains (bounded).
        if queued > 0 || self.rings.tx_outstanding() > 0 {
            let mut tries = 0;
            while self.rings.tx_outstanding() > 0 && tries < 64 {
                if !self.zero_copy || self.rings.tx_needs_wakeup() {
                    self.rings.counters.tx_kicks += 1;
                    let _ = sys::kick_tx(&self.fd);
                } else {
                    break;
                }
                tries += 1;
            }
        }
        self.rings.housekeeping();
    }
}

impl super::QueueStats for XskQueue {
    fn queue_id(&self) -> u32 {
        self.queue_id
    }

    fn queue_counters(&self) -> Vec<(&'static str, u64)> {
        let s = self.statistics();
        let c = self.rings.counters;
        vec![
            ("rx_dropped", s.rx_dropped),
            ("rx_invalid_descs", s.rx_invalid_descs),
            ("tx_invalid_descs", s.tx_invalid_descs),
            ("rx_ring_full", s.rx_ring_full),
            ("rx_fill_ring_empty_descs", s.rx_fill_ring_empty_descs),
            ("tx_ring_empty_descs", s.tx_ring_empty_descs),
            ("rx_invalid_desc_ours", c.rx_invalid_desc),
            ("tx_ring_full", c.tx_ring_full),
            ("tx_no_frame", c.tx_no_frame),
            ("tx_kicks", c.tx_kicks),
            ("fill_wakeups", c.fill_wakeups),
        ]
    }

    fn idle_wait(&mut self, d: Duration) {
        if !self.busy_poll {
            sys::poll_readable(&self.fd, d.as_millis().clamp(0, 1000) as i32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// The kernel's side of the four rings, over the same anonymous memory.
    struct FakeKernel {
        fill: ConsumerRing<u64>,
        comp: ProducerRing<u64>,
        rx: ProducerRing<XdpDesc>,
        tx: ConsumerRing<XdpDesc>,
        /// Frames the "NIC" holds: taken from the fill ring, not yet received.
        nic: Vec<u64>,
        /// TX frames sent, waiting for completion.
        sent: Vec<u64>,
    }

    fn setup(frames: u32, ring: u32) -> (Rings, FakeKernel) {
        let fm = RingMem::anonymous::<u64>(ring).unwrap();
        let cm = RingMem::anonymous::<u64>(ring).unwrap();
        let rm = RingMem::anonymous::<XdpDesc>(ring).unwrap();
        let tm = RingMem::anonymous::<XdpDesc>(ring).unwrap();
        let umem = Umem::new(frames, 2048).unwrap();
        let rings = Rings::new(
            umem,
            ProducerRing::new(fm.clone()),
            ConsumerRing::new(cm.clone()),
            ConsumerRing::new(rm.clone()),
            ProducerRing::new(tm.clone()),
        )
        .unwrap();
        let k = FakeKernel {
            fill: ConsumerRing::new(fm),
            comp: ProducerRing::new(cm),
            rx: ProducerRing::new(rm),
            tx: ConsumerRing::new(tm),
            nic: Vec::new(),
            sent: Vec::new(),
        };
        (rings, k)
    }

    impl FakeKernel {
        fn take_fill(&mut self) {
            let n = self.fill.available(u32::MAX);
            for i in 0..n {
                self.nic.push(self.fill.read(i));
            }
            self.fill.release(n);
        }
        fn deliver(&mut self, n: u32) -> u32 {
            let n = n.min(self.nic.len() as u32).min(self.rx.free(n));
            for i in 0..n {
                let addr = self.nic.pop().unwrap();
                self.rx.write(
                    i,
                    XdpDesc {
                        addr,
                        len: 60,
                        options: 0,
                    },
                );
            }
            self.rx.submit(n);
            n
        }
        fn send(&mut self, n: u32) {
            let m = self.tx.available(n);
            for i in 0..m {
                let d = self.tx.read(i);
                assert!(d.len > 0 && d.len <= 2048);
                self.sent.push(d.addr);
            }
            self.tx.release(m);
        }
        fn complete(&mut self, n: u32) {
            let n = n.min(self.sent.len() as u32).min(self.comp.free(n));
            for i in 0..n {
                let a = self.sent.remove(0);
                self.comp.write(i, a);
            }
            self.comp.submit(n);
        }
    }

    /// Every frame is in exactly one place.
    fn audit(r: &Rings, k: &FakeKernel, frames: u32) {
        let mut seen = HashSet::new();
        let mut add =
            |a: u64, place: &str| assert!(seen.insert(a), "frame {a} twice (again in {place})");
        for f in &r.tx_free {
            add(r.umem.addr_of(f.index()), "tx_free");
        }
        for f in &r.recycle {
            add(r.umem.addr_of(f.index()), "recycle");
        }
        for &a in &k.nic {
            add(a, "nic");
        }
        for &a in &k.sent {
            add(a, "sent");
        }
        // entries still inside the rings
        let fill_q = r.fill.outstanding();
        let mut fill = ConsumerRing::<u64>::new(k.fill.mem_clone());
        for i in 0..fill.available(fill_q) {
            add(fill.read(i), "fill ring");
        }
        let tx_q = r.tx.outstanding();
        let mut tx = ConsumerRing::<XdpDesc>::new(k.tx.mem_clone());
        for i in 0..tx.available(tx_q) {
            add(tx.read(i).addr, "tx ring");
        }
        let mut rx = ConsumerRing::<XdpDesc>::new(r.rx.mem_clone());
        for i in 0..rx.available(u32::MAX) {
            add(rx.read(i).addr, "rx ring");
        }
        let mut comp = ConsumerRing::<u64>::new(r.comp.mem_clone());
        for i in 0..comp.available(u32::MAX) {
            add(comp.read(i), "completion ring");
        }
        assert_eq!(seen.len(), frames as usize, "frames lost");
    }

    #[derive(Debug, Clone)]
    enum Step {
        KernelTakesFill,
        Deliver(u32),
        Receive { max: usize, replies: u8 },
        Transmit(u8),
        Flush,
        KernelSends(u32),
        KernelCompletes(u32),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::KernelTakesFill),
            (1u32..40).prop_map(Step::Deliver),
            (1usize..64, 0u8..4).prop_map(|(max, replies)| Step::Receive { max, replies }),
            (0u8..40).prop_map(Step::Transmit),
            Just(Step::Flush),
            (1u32..64).prop_map(Step::KernelSends),
            (1u32..64).prop_map(Step::KernelCompletes),
        ]
    }

    proptest! {
        #[test]
        fn no_frame_is_lost_or_handed_out_twice(steps in proptest::collection::vec(step(), 1..200)) {
            let (frames, ring) = (96u32, 32u32);
            let (mut r, mut k) = setup(frames, ring);
            audit(&r, &k, frames);
            for s in steps {
                match s {
                    Step::KernelTakesFill => k.take_fill(),
                    Step::Deliver(n) => { k.deliver(n); }
                    Step::Receive { max, replies } => {
                        r.receive(max, &mut |frame, tx| {
                            assert_eq!(frame.len(), 60);
                            for _ in 0..replies {
                                if let Some(buf) = tx.frame() {
                                    buf[0] = 1;
                                    tx.commit(64);
                                }
                            }
                        });
                    }
                    Step::Transmit(n) => r.transmit(&mut |tx| {
                        for i in 0..n {
                            // every third frame is taken and not committed
                            if let Some(buf) = tx.frame() {
                                buf[1] = 2;
                                if i % 3 != 0 {
                                    tx.commit(100);
                                }
                            }
                        }
                    }),
                    Step::Flush => { r.submit_tx(); r.housekeeping(); }
                    Step::KernelSends(n) => k.send(n),
                    Step::KernelCompletes(n) => k.complete(n),
                }
                // queued-but-unsubmitted descriptors are only between transmit and flush; make
                // them visible to the audit by submitting first
                r.submit_tx();
                audit(&r, &k, frames);
            }
        }
    }

    #[test]
    fn too_few_frames_are_refused() {
        let m = || RingMem::anonymous::<u64>(32).unwrap();
        let d = || RingMem::anonymous::<XdpDesc>(32).unwrap();
        let r = Rings::new(
            Umem::new(40, 2048).unwrap(),
            ProducerRing::new(m()),
            ConsumerRing::new(m()),
            ConsumerRing::new(d()),
            ProducerRing::new(d()),
        );
        assert!(r.is_err());
    }
}
