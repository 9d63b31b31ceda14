//! Per-connection byte buffers.
//!
//! [`RecvBuf`] is a bounded, linear buffer: in-order bytes at the front for the application,
//! out-of-order bytes kept at their place behind them (up to [`MAX_OOO_RANGES`] ranges), so the
//! advertised window is exactly the free space. Its memory grows on demand up to the capacity, so
//! an idle keep-alive connection holding a 200-byte request costs a few KiB, not the whole window. [`SendBuf`] is a queue of reference-counted
//! chunks ([`Bytes`]): a static response is referenced, never copied, and retransmission reads
//! the same chunks again.

use bytes::Bytes;
use std::collections::VecDeque;

use super::segment::PayloadSource;

/// How many disjoint out-of-order ranges a connection keeps (more are dropped, counted).
pub const MAX_OOO_RANGES: usize = 4;

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

pub struct RecvBuf {
    /// Backing store; grows (zero-filled) up to `cap` as bytes arrive.
    data: Vec<u8>,
    cap: usize,
    /// Readable bytes are `data[..len]`.
    len: usize,
    /// Out-of-order ranges, as offsets from the end of the readable bytes: `[start, end)`,
    /// sorted, disjoint, non-adjacent.
    ooo: [(usize, usize); MAX_OOO_RANGES],
    ooo_count: usize,
}

impl RecvBuf {
    pub fn new(capacity: usize) -> Self {
        RecvBuf {
            data: Vec::new(),
            cap: capacity,
            len: 0,
            ooo: [(0, 0); MAX_OOO_RANGES],
            ooo_count: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Bytes of memory held (for accounting).
    pub fn allocated(&self) -> usize {
        self.data.capacity()
    }
    /// In-order bytes waiting for the application.
    pub fn readable(&self) -> &[u8] {
        &self.data[..self.len]
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Free space behind the readable bytes: what the receive window may offer.
    pub fn window(&self) -> usize {
        self.cap - self.len
    }
    /// Out-of-order ranges as offsets from the next expected byte (RCV.NXT).
    pub fn ooo_ranges(&self) -> &[(usize, usize)] {
        &self.ooo[..self.ooo_count]
    }
    pub fn has_ooo(&self) -> bool {
        self.ooo_count > 0
    }

    /// Drops `n` bytes from the front (the application consumed them).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if n == 0 {
            return;
        }
        // Move what is left, in-order and parked out-of-order bytes alike, to the front.
        let tail_end = self.len + self.ooo[..self.ooo_count].last().map_or(0, |r| r.1);
        if tail_end > n {
            self.data.copy_within(n..tail_end, 0);
        }
        self.len -= n;
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
        let (start, end) = (offset, offset + take);
        let needed = self.len + end;
        if self.data.len() < needed {
            // Grow geometrically, never beyond the capacity the window promised.
            let target = needed.max(self.data.len() * 2).max(2048).min(self.cap);
            self.data.resize(target, 0);
        }
        if start > 0 {
            if !self.insert_range(start, end) {
                out.trimmed = true;
                return out;
            }
            self.data[self.len + start..self.len + end].copy_from_slice(&bytes[..take]);
            out.out_of_order = true;
            return out;
        }
        self.data[self.len..self.len + end].copy_from_slice(&bytes[..take]);
        // Join parked ranges that the new bytes reach.
        let mut reach = end;
        let mut drop = 0;
        for r in &self.ooo[..self.ooo_count] {
            if r.0 <= reach {
                reach = reach.max(r.1);
                drop += 1;
            } else {
                break;
            }
        }
        self.ooo.copy_within(drop..self.ooo_count, 0);
        self.ooo_count -= drop;
        for r in &mut self.ooo[..self.ooo_count] {
            r.0 -= reach;
            r.1 -= reach;
        }
        self.len += reach;
        out.advanced = reach;
        out
    }

    /// Merges `[start, end)` into the out-of-order ranges; false if there is no room.
    fn insert_range(&mut self, start: usize, end: usize) -> bool {
        let (mut s, mut e) = (start, end);
        let mut merged = [(0usize, 0usize); MAX_OOO_RANGES + 1];
        let mut n = 0;
        let mut placed = false;
        for &(rs, re) in &self.ooo[..self.ooo_count] {
            if re < s {
                merged[n] = (rs, re);
                n += 1;
            } else if e < rs {
                if !placed {
                    merged[n] = (s, e);
                    n += 1;
                    placed = true;
                }
                merged[n] = (rs, re);
                n += 1;
            } else {
                s = s.min(rs);
                e = e.max(re);
            }
        }
        if !placed {
            merged[n] = (s, e);
            n += 1;
        }
        if n > MAX_OOO_RANGES {
            return false;
        }
        self.ooo[..n].copy_from_slice(&merged[..n]);
        self.ooo_count = n;
        true
    }

    /// Forgets everything (the connection is being reused).
    pub fn clear(&mut self) {
        self.len = 0;
        self.ooo_count = 0;
    }

    /// Frees memory beyond `keep` bytes (when a buffer goes back to a pool).
    pub fn shrink_to(&mut self, keep: usize) {
        self.clear();
        if self.data.len() > keep {
            self.data.truncate(keep);
            self.data.shrink_to(keep);
        }
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
