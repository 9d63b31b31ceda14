//! Per-connection byte buffers, and the receive memory a worker holds.
//!
//! [`RecvBuf`] costs what it holds, as Linux charges a socket for the buffers it keeps
//! (`truesize`): in-order bytes for the application sit in a buffer that grows only as in-order
//! bytes arrive; out-of-order bytes (up to [`MAX_OOO_RANGES`] ranges) are packed one after the
//! other in a second buffer, so a byte parked at the far edge of the window costs one byte, not
//! the window. The advertised window is the free space up to the capacity; memory is taken only
//! for bytes that arrive, and [`RecvMemory`] (the worker's budget, Linux's `tcp_mem`) says
//! whether it may be. Both buffers keep their allocation while the connection lives, so the
//! datapath does not allocate per segment once a connection has warmed up.
//!
//! [`SendBuf`] is a queue of reference-counted chunks ([`Bytes`]): a static response is
//! referenced, never copied, and retransmission reads the same chunks again.

use bytes::Bytes;
use std::collections::VecDeque;

use super::segment::PayloadSource;

/// How many disjoint out-of-order ranges a connection keeps (more are dropped, counted).
pub const MAX_OOO_RANGES: usize = 4;

/// The smallest allocation of a buffer.
const MIN_ALLOC: usize = 512;
/// The most a buffer grows by at once beyond doubling's small sizes, so that a refusal under
/// the budget comes near its limit, not half-way.
const MAX_GROWTH: usize = 16 * 1024;

/// What became of bytes offered to [`RecvBuf::write_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    /// Bytes that became readable in order by this write (including parked bytes it joined).
    pub advanced: usize,
    /// True if the bytes (or some of them) were stored out of order.
    pub out_of_order: bool,
    /// True if some bytes were outside the window or there was no room for another range.
    pub trimmed: bool,
}

/// The receive memory of one worker (Linux's `tcp_mem` idea): bytes allocated by the receive
/// buffers of its connections and its buffer pool, and the limit beyond which new memory is
/// refused. Connections change `held` as their buffers grow and shrink; the engine when
/// connections come and go.
#[derive(Clone, Debug)]
pub struct RecvMemory {
    held: usize,
    limit: usize,
    floor: usize,
    peak: usize,
    pressure: bool,
}

impl RecvMemory {
    /// A budget of `limit` bytes; every connection may still hold `floor` bytes of in-order
    /// data beyond it (Linux's `tcp_rmem[0]`: a socket under pressure can still make progress).
    pub fn new(limit: usize, floor: usize) -> Self {
        RecvMemory {
            held: 0,
            limit,
            floor,
            peak: 0,
            pressure: false,
        }
    }
    /// Bytes allocated now.
    #[cfg(any(test, feature = "internals"))]
    pub fn held(&self) -> usize {
        self.held
    }
    /// The most ever allocated at once.
    #[cfg(any(test, feature = "internals"))]
    pub fn peak(&self) -> usize {
        self.peak
    }
    #[cfg(any(test, feature = "internals"))]
    pub fn limit(&self) -> usize {
        self.limit
    }
    /// In-order bytes a connection may hold whatever the pressure.
    pub fn floor(&self) -> usize {
        self.floor
    }
    /// True from when the limit is reached (or memory was refused) until what is held falls
    /// below three quarters of it (Linux's `tcp_mem[1]` and `tcp_mem[0]`): meanwhile new
    /// out-of-order data is dropped and windows stop growing beyond the floor.
    pub fn under_pressure(&self) -> bool {
        self.pressure
    }
    /// Memory was refused: enter pressure.
    pub fn refused(&mut self) {
        self.pressure = true;
    }
    /// Whether `extra` more bytes may be allocated.
    pub fn allows(&self, extra: usize) -> bool {
        extra == 0 || self.held.saturating_add(extra) <= self.limit
    }
    /// A buffer's allocation changed from `before` to `after` bytes.
    pub fn update(&mut self, before: usize, after: usize) {
        self.held = (self.held + after).saturating_sub(before);
        self.peak = self.peak.max(self.held);
        if self.held >= self.limit {
            self.pressure = true;
        } else if self.held < self.limit / 4 * 3 {
            self.pressure = false;
        }
    }
}

/// A connection's received bytes: readable in-order bytes and parked out-of-order ranges.
pub struct RecvBuf {
    /// The in-order bytes for the application: `data[..]`, never more than `cap`.
    data: Vec<u8>,
    cap: usize,
    /// Out-of-order ranges, as offsets from the end of the readable bytes: `[start, end)`,
    /// sorted, disjoint, non-adjacent.
    ooo: [(usize, usize); MAX_OOO_RANGES],
    ooo_count: usize,
    /// The bytes of the out-of-order ranges, packed in order (range i starts after the
    /// bytes of ranges 0..i).
    ooo_bytes: Vec<u8>,
}

/// The allocation to grow to for `needed` bytes: doubling from `MIN_ALLOC`, then by
/// `MAX_GROWTH` at a time, at most `cap`.
fn grown(current: usize, needed: usize, cap: usize) -> usize {
    needed
        .max(current.saturating_mul(2).min(current + MAX_GROWTH))
        .max(MIN_ALLOC)
        .min(cap.max(needed))
}

impl RecvBuf {
    pub fn new(capacity: usize) -> Self {
        RecvBuf {
            data: Vec::new(),
            cap: capacity,
            ooo: [(0, 0); MAX_OOO_RANGES],
            ooo_count: 0,
            ooo_bytes: Vec::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Bytes of memory held (for accounting): both buffers' allocations.
    pub fn allocated(&self) -> usize {
        self.data.capacity() + self.ooo_bytes.capacity()
    }
    /// In-order bytes waiting for the application.
    pub fn readable(&self) -> &[u8] {
        &self.data
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Free space behind the readable bytes: what the receive window may offer.
    pub fn window(&self) -> usize {
        self.cap - self.data.len()
    }
    /// Out-of-order ranges as offsets from the next expected byte (RCV.NXT).
    pub fn ooo_ranges(&self) -> &[(usize, usize)] {
        &self.ooo[..self.ooo_count]
    }
    pub fn has_ooo(&self) -> bool {
        self.ooo_count > 0
    }
    /// Out-of-order bytes held.
    #[cfg(any(test, feature = "internals"))]
    pub fn ooo_len(&self) -> usize {
        self.ooo_bytes.len()
    }

    /// Drops `n` bytes from the front (the application consumed them).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.data.len());
        if n == self.data.len() {
            self.data.clear();
        } else if n > 0 {
            self.data.copy_within(n.., 0);
            self.data.truncate(self.data.len() - n);
        }
    }

    /// The bytes of allocation that writing `len` bytes at `offset` may take (0 if they fit in
    /// what is allocated). An upper bound: overlaps with bytes already held are not subtracted.
    pub fn extra_for(&self, offset: usize, len: usize) -> usize {
        let room = self.window();
        if offset >= room || len == 0 {
            return 0;
        }
        let end = offset + len.min(room - offset);
        if offset > 0 {
            let needed = self.ooo_bytes.len() + (end - offset);
            let have = self.ooo_bytes.capacity();
            return if needed > have {
                grown(have, needed, self.cap) - have
            } else {
                0
            };
        }
        // In order: these bytes and the parked ranges they reach join the readable bytes.
        let mut reach = end;
        for r in self.ooo_ranges() {
            if r.0 > reach {
                break;
            }
            reach = reach.max(r.1);
        }
        let needed = self.data.len() + reach;
        let have = self.data.capacity();
        if needed > have {
            grown(have, needed, self.cap) - have
        } else {
            0
        }
    }

    /// Stores `bytes` that start `offset` bytes after RCV.NXT. Bytes beyond the window are cut.
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) -> WriteOutcome {
        let mut out = WriteOutcome::default();
        let room = self.window();
        if offset >= room {
            out.trimmed = !bytes.is_empty();
            return out;
        }
        let take = bytes.len().min(room - offset);
        out.trimmed = take < bytes.len();
        if take == 0 {
            return out;
        }
        let bytes = &bytes[..take];
        if offset > 0 {
            if !self.insert_range(offset, bytes) {
                out.trimmed = true;
                return out;
            }
            out.out_of_order = true;
            return out;
        }
        self.append(bytes);
        // Join the parked ranges that the new bytes reach, moving their bytes over.
        let mut reach = take;
        let mut joined = 0; // ranges joined
        let mut used = 0; // their packed bytes
        for &(s, e) in &self.ooo[..self.ooo_count] {
            if s > reach {
                break;
            }
            if e > reach {
                // The part of the range beyond what is already readable.
                let from = used + (reach - s);
                let to = used + (e - s);
                let (lo, hi) = (from, to);
                let extra = hi - lo;
                if self.data.len() + extra > self.data.capacity() {
                    let target = grown(self.data.capacity(), self.data.len() + extra, self.cap);
                    self.data.reserve_exact(target - self.data.len());
                }
                self.data.extend_from_slice(&self.ooo_bytes[lo..hi]);
                reach = e;
            }
            used += e - s;
            joined += 1;
        }
        if joined > 0 {
            self.ooo_bytes.copy_within(used.., 0);
            self.ooo_bytes.truncate(self.ooo_bytes.len() - used);
            self.ooo.copy_within(joined..self.ooo_count, 0);
            self.ooo_count -= joined;
        }
        for r in &mut self.ooo[..self.ooo_count] {
            r.0 -= reach;
            r.1 -= reach;
        }
        out.advanced = reach;
        out
    }

    /// Appends in-order bytes, growing the allocation geometrically up to the capacity.
    fn append(&mut self, bytes: &[u8]) {
        let needed = self.data.len() + bytes.len();
        if needed > self.data.capacity() {
            let target = grown(self.data.capacity(), needed, self.cap);
            self.data.reserve_exact(target - self.data.len());
        }
        self.data.extend_from_slice(bytes);
    }

    /// Merges `bytes` at `[start, start + len)` into the parked ranges; false if that would
    /// make more than [`MAX_OOO_RANGES`] ranges. New bytes replace parked ones where they
    /// overlap (RFC 9293 allows either copy; they are the same bytes).
    fn insert_range(&mut self, start: usize, bytes: &[u8]) -> bool {
        let end = start + bytes.len();
        let ranges = &self.ooo[..self.ooo_count];
        // Ranges before the new one (not touching it), and those it overlaps or touches.
        let first = ranges.iter().take_while(|r| r.1 < start).count();
        let last = first + ranges[first..].iter().take_while(|r| r.0 <= end).count();
        if first == last && self.ooo_count == MAX_OOO_RANGES {
            return false;
        }
        let pos = ranges[..first].iter().map(|r| r.1 - r.0).sum::<usize>();
        let old_span = ranges[first..last].iter().map(|r| r.1 - r.0).sum::<usize>();
        let (s, e, prefix, suffix) = if first < last {
            let (fs, le) = (ranges[first].0, ranges[last - 1].1);
            (
                fs.min(start),
                le.max(end),
                start.saturating_sub(fs),
                le.saturating_sub(end),
            )
        } else {
            (start, end, 0, 0)
        };
        // Replace the old span's bytes by prefix (kept in place), the new bytes, and suffix
        // (the end of the old span, moved with everything after it).
        let new_span = e - s;
        let old_len = self.ooo_bytes.len();
        let tail_from = pos + old_span - suffix;
        let tail_to = pos + prefix + bytes.len();
        if new_span > old_span {
            let grow = new_span - old_span;
            if old_len + grow > self.ooo_bytes.capacity() {
                let target = grown(self.ooo_bytes.capacity(), old_len + grow, self.cap);
                self.ooo_bytes.reserve_exact(target - old_len);
            }
            self.ooo_bytes.resize(old_len + grow, 0);
            self.ooo_bytes.copy_within(tail_from..old_len, tail_to);
        } else if new_span < old_span {
            self.ooo_bytes.copy_within(tail_from..old_len, tail_to);
            self.ooo_bytes.truncate(old_len - (old_span - new_span));
        }
        self.ooo_bytes[pos + prefix..tail_to].copy_from_slice(bytes);
        // The range list: [..first], (s, e), [last..].
        let removed = last - first;
        if removed == 0 {
            self.ooo.copy_within(first..self.ooo_count, first + 1);
            self.ooo_count += 1;
        } else if removed > 1 {
            self.ooo.copy_within(last..self.ooo_count, first + 1);
            self.ooo_count -= removed - 1;
        }
        self.ooo[first] = (s, e);
        true
    }

    /// Linux's `tcp_prune_ofo_queue`: drops parked ranges from the highest down until at least
    /// `want` bytes of allocation are freed (or none are left), and gives their memory back.
    /// Returns the bytes of allocation freed. The SACK blocks we send come from the ranges
    /// kept, so they never claim what was dropped (a legal renege, RFC 2018 8).
    pub fn prune_ooo(&mut self, want: usize) -> usize {
        let before = self.ooo_bytes.capacity();
        let mut kept = self.ooo_bytes.len();
        while self.ooo_count > 0 && before - kept < want {
            let (s, e) = self.ooo[self.ooo_count - 1];
            kept -= e - s;
            self.ooo_count -= 1;
        }
        self.ooo_bytes.truncate(kept);
        if kept == 0 {
            self.ooo_bytes = Vec::new();
        } else {
            self.ooo_bytes.shrink_to_fit();
        }
        before - self.ooo_bytes.capacity()
    }

    /// Forgets everything (the connection is being reused); keeps the allocation.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ooo_count = 0;
        self.ooo_bytes.clear();
    }

    /// Forgets everything and frees the memory (the application has closed: nothing more
    /// will be read).
    pub fn release(&mut self) {
        self.clear();
        self.data = Vec::new();
        self.ooo_bytes = Vec::new();
    }

    /// Forgets everything and frees memory beyond `keep` bytes of in-order buffer (when a
    /// buffer goes back to a pool).
    pub fn shrink_to(&mut self, keep: usize) {
        self.clear();
        self.ooo_bytes = Vec::new();
        self.data.shrink_to(keep);
    }
}

/// Bytes queued for sending. Offsets are counted from the oldest unacknowledged byte.
#[derive(Default)]
pub struct SendBuf {
    chunks: VecDeque<Bytes>,
    /// Bytes of `chunks[0]` already acknowledged.
    head_skip: usize,
    len: usize,
    /// Bytes ever queued (for latency markers).
    pushed: u64,
}

impl SendBuf {
    #[cfg(any(test, feature = "internals"))]
    pub fn new() -> Self {
        SendBuf::default()
    }
    /// Unacknowledged plus unsent bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn push(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        self.len += b.len();
        self.pushed += b.len() as u64;
        self.chunks.push_back(b);
    }
    /// Drops `n` acknowledged bytes from the front.
    pub fn ack(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let first = self.chunks.front().map_or(0, |c| c.len()) - self.head_skip;
            if n >= first {
                n -= first;
                self.chunks.pop_front();
                self.head_skip = 0;
            } else {
                self.head_skip += n;
                n = 0;
            }
        }
    }
    /// The bytes `[offset, offset + len)` as a payload source (clamped to what is queued).
    pub fn range(&self, offset: usize, len: usize) -> SendRange<'_> {
        let len = len.min(self.len.saturating_sub(offset));
        SendRange {
            buf: self,
            offset,
            len,
        }
    }
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.head_skip = 0;
        self.len = 0;
        self.pushed = 0;
    }

    /// Chunks queued (each `push` adds one): what the queue itself costs, beside the bytes.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes ever queued since the connection began.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }
}

/// A window onto a [`SendBuf`] that copies itself into a transmit frame.
pub struct SendRange<'a> {
    buf: &'a SendBuf,
    offset: usize,
    len: usize,
}

impl PayloadSource for SendRange<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn copy_to(&self, dst: &mut [u8]) {
        let mut skip = self.offset + self.buf.head_skip;
        let mut written = 0;
        let want = self.len.min(dst.len());
        for c in &self.buf.chunks {
            if written == want {
                break;
            }
            if skip >= c.len() {
                skip -= c.len();
                continue;
            }
            let n = (c.len() - skip).min(want - written);
            dst[written..written + n].copy_from_slice(&c[skip..skip + n]);
            written += n;
            skip = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_then_consume() {
        let mut r = RecvBuf::new(8);
        assert_eq!(r.write_at(0, b"abc").advanced, 3);
        assert_eq!(r.readable(), b"abc");
        assert_eq!(r.window(), 5);
        r.consume(2);
        assert_eq!(r.readable(), b"c");
        assert_eq!(r.window(), 7);
    }

    #[test]
    fn out_of_order_fills_hole() {
        let mut r = RecvBuf::new(16);
        let o = r.write_at(3, b"def");
        assert!(o.out_of_order);
        assert_eq!(o.advanced, 0);
        assert_eq!(r.ooo_ranges(), &[(3, 6)]);
        let o = r.write_at(8, b"ij");
        assert_eq!(r.ooo_ranges(), &[(3, 6), (8, 10)]);
        assert!(o.out_of_order);
        assert_eq!(r.write_at(0, b"abc").advanced, 6);
        assert_eq!(r.readable(), b"abcdef");
        assert_eq!(r.ooo_ranges(), &[(2, 4)]);
        r.consume(6);
        assert_eq!(r.ooo_ranges(), &[(2, 4)]);
        assert_eq!(r.write_at(0, b"gh").advanced, 4);
        assert_eq!(r.readable(), b"ghij");
        assert!(!r.has_ooo());
    }

    #[test]
    fn window_is_enforced() {
        let mut r = RecvBuf::new(4);
        let o = r.write_at(0, b"abcdef");
        assert_eq!(o.advanced, 4);
        assert!(o.trimmed);
        assert_eq!(r.window(), 0);
        assert!(r.write_at(0, b"x").trimmed);
    }

    #[test]
    fn too_many_ranges_are_refused() {
        let mut r = RecvBuf::new(64);
        for i in 0..MAX_OOO_RANGES {
            r.write_at(2 + i * 3, b"x");
        }
        assert!(r.write_at(40, b"y").trimmed);
        assert_eq!(r.ooo_ranges().len(), MAX_OOO_RANGES);
        // a range that merges with an existing one is still fine
        assert!(!r.write_at(3, b"z").trimmed);
    }

    #[test]
    fn a_byte_at_the_far_edge_costs_what_it_holds() {
        // One in-order byte and one at the window's far edge: a few hundred bytes, not the
        // 256 KiB window (the whole window was allocated when the buffer was one Vec).
        let mut r = RecvBuf::new(256 * 1024);
        assert_eq!(r.write_at(0, b"G").advanced, 1);
        assert!(r.write_at(262_000, b"x").out_of_order);
        assert_eq!(r.ooo_ranges(), &[(262_000, 262_001)]);
        assert!(r.allocated() <= 1024, "allocated {}", r.allocated());
        assert_eq!(r.ooo_len(), 1);
        // What was asked ahead says so too.
        assert!(r.extra_for(200_000, 1) <= MIN_ALLOC);
    }

    #[test]
    fn pruning_drops_the_highest_ranges_and_frees_them() {
        let mut r = RecvBuf::new(64 * 1024);
        r.write_at(100, &[1; 1000]);
        r.write_at(5000, &[2; 1000]);
        r.write_at(9000, &[3; 3000]);
        assert_eq!(r.ooo_ranges().len(), 3);
        let before = r.allocated();
        let freed = r.prune_ooo(2000);
        assert!(freed >= 2000, "freed {freed}");
        assert_eq!(r.allocated(), before - freed);
        // The highest range went first; the lower ones are kept, bytes intact.
        assert_eq!(r.ooo_ranges(), &[(100, 1100), (5000, 6000)]);
        assert_eq!(r.write_at(0, &[0; 100]).advanced, 1100);
        assert_eq!(&r.readable()[100..], &[1; 1000][..]);
        r.consume(1100);
        assert_eq!(r.ooo_ranges(), &[(3900, 4900)]);
        assert!(r.prune_ooo(usize::MAX) > 0);
        assert!(!r.has_ooo());
        assert_eq!(r.ooo_len(), 0);
    }

    #[test]
    fn release_frees_everything() {
        let mut r = RecvBuf::new(64 * 1024);
        r.write_at(0, &[1; 3000]);
        r.write_at(5000, &[2; 10]);
        assert!(r.allocated() >= 3010);
        r.release();
        assert_eq!(r.allocated(), 0);
        assert!(r.is_empty() && !r.has_ooo());
    }

    #[test]
    fn the_budget_counts_and_refuses() {
        let mut m = RecvMemory::new(10_000, 2048);
        assert!(m.allows(10_000) && !m.allows(10_001) && m.allows(0));
        m.update(0, 9_000);
        assert!(!m.under_pressure() && !m.allows(1_001));
        m.update(0, 1_000);
        assert!(m.under_pressure());
        m.update(2_000, 0);
        assert!(m.under_pressure(), "pressure lasts down to three quarters");
        m.update(2_000, 0);
        assert!(!m.under_pressure());
        assert_eq!((m.held(), m.peak()), (6_000, 10_000));
        m.refused();
        assert!(m.under_pressure());
    }

    /// Random writes (in order, out of order, overlapping, beyond the window) and consumes
    /// against a model of the stream: the readable bytes are always the stream's, the ranges
    /// are exactly the bytes parked, and memory follows what is held.
    #[test]
    fn matches_a_model_under_random_writes() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let stream = |from: usize, to: usize| -> Vec<u8> {
            (from..to).map(|i| (i * 7 + i / 251) as u8).collect()
        };
        let cap = 4096;
        let mut r = RecvBuf::new(cap);
        // Model: stream offset of RCV.NXT, of the first unconsumed byte, and which bytes
        // beyond RCV.NXT are held.
        let (mut nxt, mut head) = (0usize, 0usize);
        let mut held = vec![false; cap];
        for _ in 0..30_000 {
            if rnd(4) == 0 {
                let n = rnd(r.len() + 1);
                r.consume(n);
                head += n;
            } else {
                let off = rnd(cap + 200);
                let len = 1 + rnd(1500);
                let start = nxt + off;
                let o = r.write_at(off, &stream(start, start + len));
                let room = cap - (nxt - head);
                let end = (off + len).min(room);
                if off < room && !o.trimmed || (o.trimmed && o.advanced > 0) || o.out_of_order {
                    for h in &mut held[off..end] {
                        *h = true;
                    }
                }
                let adv = held.iter().take_while(|h| **h).count();
                assert_eq!(o.advanced, adv);
                held.drain(..adv);
                held.resize(cap, false);
                nxt += adv;
            }
            assert_eq!(r.readable(), &stream(head, nxt)[..]);
            let mut ranges = Vec::new();
            let mut i = 0;
            while i < cap {
                if held[i] {
                    let s = i;
                    while i < cap && held[i] {
                        i += 1;
                    }
                    ranges.push((s, i));
                } else {
                    i += 1;
                }
            }
            assert_eq!(r.ooo_ranges(), &ranges[..]);
            assert_eq!(r.ooo_len(), held.iter().filter(|h| **h).count());
            assert!(r.allocated() <= 2 * cap);
            if rnd(50) == 0 {
                // Pruning is a model step too: the highest ranges go.
                r.prune_ooo(1 + rnd(3000));
                let keep: usize = r.ooo_ranges().last().map_or(0, |x| x.1);
                for h in &mut held[keep..] {
                    *h = false;
                }
            }
        }
    }

    #[test]
    fn send_ranges_span_chunks() {
        let mut s = SendBuf::new();
        s.push(Bytes::from_static(b"hello "));
        s.push(Bytes::from_static(b"world"));
        let mut out = [0u8; 7];
        let r = s.range(3, 7);
        assert_eq!(r.len(), 7);
        r.copy_to(&mut out);
        assert_eq!(&out, b"lo worl");
        s.ack(4);
        assert_eq!(s.len(), 7);
        let r = s.range(0, 100);
        assert_eq!(r.len(), 7);
        let mut out = [0u8; 7];
        r.copy_to(&mut out);
        assert_eq!(&out, b"o world");
        s.ack(7);
        assert!(s.is_empty());
    }
}
