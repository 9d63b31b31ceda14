//! The sender's SACK scoreboard: RFC 6675 (conservative SACK-based loss recovery), with the
//! loss marks of RACK (RFC 8985, in `rack.rs`) and of a retransmission timeout (RFC 6675 5.1).
//!
//! The board keeps what the peer's SACK blocks (RFC 2018) say it holds above SND.UNA, as up to
//! [`MAX_RANGES`] disjoint ranges in sequence order, in a fixed array: no allocation per
//! segment. When more disjoint ranges than that are reported, the highest ones are forgotten:
//! their bytes look un-SACKed, which can only cause a retransmission the peer did not need (the
//! peer repeats its most recent blocks first, RFC 2018 4, so they come back as the holes below
//! them fill). The board never claims a byte is SACKed that the peer did not report.
//!
//! Loss is a watermark: every un-SACKed byte below [`Scoreboard::lost_below`] is lost. The
//! watermark is the higher of RFC 6675 IsLost (DupThresh discontiguous SACKed ranges, or more
//! than (DupThresh - 1) * SMSS SACKed bytes, above the byte) and the marks RACK or an RTO set.
//! IsLost is monotonic in the sequence number (a lower byte has at least as much SACKed above
//! it), and RACK marks segments in send order, which for first transmissions is sequence order,
//! so one watermark describes both exactly.

use crate::wire::seq::SeqNumber;

/// How many disjoint SACKed ranges the board keeps.
pub const MAX_RANGES: usize = 16;

/// RFC 6675 2: DupThresh.
pub const DUP_THRESH: u32 = 3;

/// What one ACK's SACK blocks changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackUpdate {
    /// Bytes the board shows SACKed now that it did not before.
    pub newly_sacked: u32,
    /// SND.UNA stopped at or inside data the peer had SACKed: the peer reneged (RFC 2018 8,
    /// RFC 6675 5.1) and the board was cleared.
    pub reneged: bool,
    /// The first block reported data below SND.UNA or already SACKed (RFC 2883 D-SACK).
    pub dsack: bool,
}

/// RFC 6675 4 NextSeg(): what to send next during recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextSeg {
    /// Retransmit `len` bytes at `seq` (rules 1 and 3); `rescue` for rule 4.
    Retransmit {
        seq: SeqNumber,
        len: u32,
        rescue: bool,
    },
    /// Rule 2: send new data.
    NewData,
    /// Nothing may be sent.
    Nothing,
}

/// RFC 6675 3: the scoreboard and its HighACK, HighRxt and RescueRxt.
#[derive(Clone, Copy, Debug)]
pub struct Scoreboard {
    /// SACKed ranges `[left, right)`, ascending, disjoint and not adjacent.
    ranges: [(SeqNumber, SeqNumber); MAX_RANGES],
    len: u8,
    /// RFC 6675 HighACK: the highest cumulative ACK seen (SND.UNA).
    high_ack: SeqNumber,
    /// RFC 6675 HighRxt, as an exclusive end: every byte below it was retransmitted.
    high_rxt: SeqNumber,
    /// RFC 6675 RescueRxt; `None` is "undefined".
    rescue_rxt: Option<SeqNumber>,
    /// Un-SACKed bytes below this were marked lost by RACK or by an RTO.
    marked_lost: SeqNumber,
}

impl Scoreboard {
    /// An empty board for a connection whose SND.UNA is `una`.
    pub fn new(una: SeqNumber) -> Self {
        Scoreboard {
            ranges: [(una, una); MAX_RANGES],
            len: 0,
            high_ack: una,
            high_rxt: una,
            rescue_rxt: None,
            marked_lost: una,
        }
    }

    /// Forgets the SACKed ranges and every mark (reneging, or nothing outstanding).
    pub fn clear(&mut self, una: SeqNumber) {
        *self = Scoreboard::new(una);
    }

    /// The SACKed ranges, ascending.
    pub fn ranges(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.ranges[..self.len as usize]
    }

    /// No SACKed range is known.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// RFC 6675 HighRxt (exclusive end).
    #[cfg(any(test, feature = "internals"))]
    pub fn high_rxt(&self) -> SeqNumber {
        self.high_rxt
    }

    /// RFC 6675 HighACK.
    #[cfg(any(test, feature = "internals"))]
    pub fn high_ack(&self) -> SeqNumber {
        self.high_ack
    }

    /// SACKed bytes in total.
    pub fn sacked_bytes(&self) -> u32 {
        self.ranges().iter().map(|&(l, r)| r.distance_from(l)).sum()
    }

    /// The end of the highest SACKed range.
    pub fn highest_sacked(&self) -> Option<SeqNumber> {
        self.ranges().last().map(|r| r.1)
    }

    /// If `seq` lies in a SACKed range, that range's end.
    pub fn sacked_end_at(&self, seq: SeqNumber) -> Option<SeqNumber> {
        self.ranges()
            .iter()
            .find(|&&(l, r)| seq.ge(l) && seq.lt(r))
            .map(|r| r.1)
    }

    /// The start of the first SACKed range above `seq`.
    pub fn next_sacked_after(&self, seq: SeqNumber) -> Option<SeqNumber> {
        self.ranges().iter().find(|r| r.0.gt(seq)).map(|r| r.0)
    }

    /// Applies an ACK: SND.UNA is now `una`, `snd_max` the highest sequence sent, `blocks` the
    /// segment's SACK blocks (RFC 2018), first block first. Blocks outside (SND.UNA,
    /// SND.MAX] are ignored (D-SACKs among them, RFC 2883).
    pub fn on_ack(
        &mut self,
        una: SeqNumber,
        snd_max: SeqNumber,
        blocks: impl Iterator<Item = (SeqNumber, SeqNumber)>,
    ) -> SackUpdate {
        let mut up = SackUpdate::default();
        let before = self.sacked_bytes();
        if una.gt(self.high_ack) {
            self.high_ack = una;
        }
        if self.high_rxt.lt(una) {
            self.high_rxt = una;
        }
        if self.marked_lost.lt(una) {
            self.marked_lost = una;
        }
        if let Some(r) = self.rescue_rxt
            && una.gt(r)
        {
            // RFC 6675 4 rule 4: a rescue is allowed again once HighACK passed it.
            self.rescue_rxt = None;
        }
        // Drop what SND.UNA has passed.
        let n = self.len as usize;
        let gone = self.ranges[..n].iter().take_while(|r| r.1.le(una)).count();
        self.ranges.copy_within(gone..n, 0);
        self.len = (n - gone) as u8;
        // RFC 6675 5.1 / RFC 2018 8: SND.UNA at or inside a SACKed range means the peer
        // discarded data it had SACKed (Linux's tcp_check_sack_reneging): forget the board.
        if self.ranges().first().is_some_and(|r| r.0.le(una)) {
            self.clear(una);
            up.reneged = true;
            return up;
        }
        let mut first = true;
        for (l, r) in blocks {
            let is_first = std::mem::replace(&mut first, false);
            if !l.lt(r) {
                continue;
            }
            if r.le(una) || (is_first && self.covers(l, r)) {
                // RFC 2883: a first block below SND.UNA or inside a SACKed range is a D-SACK.
                up.dsack |= is_first;
                continue;
            }
            if l.le(una) || r.gt(snd_max) {
                continue;
            }
            self.insert(l, r);
        }
        up.newly_sacked = self.sacked_bytes().saturating_sub(before);
        up
    }

    /// `[l, r)` lies within one SACKed range.
    fn covers(&self, l: SeqNumber, r: SeqNumber) -> bool {
        self.ranges().iter().any(|&(a, b)| l.ge(a) && r.le(b))
    }

    /// Merges `[l, r)` into the ranges; if they would exceed [`MAX_RANGES`], the highest range
    /// is forgotten.
    fn insert(&mut self, mut l: SeqNumber, mut r: SeqNumber) {
        let n = self.len as usize;
        // First range that ends at or after `l` (it may touch or overlap the new one).
        let lo = self.ranges[..n].iter().position(|x| x.1.ge(l)).unwrap_or(n);
        // First range that starts after `r` (it stays apart).
        let hi = self.ranges[lo..n]
            .iter()
            .position(|x| x.0.gt(r))
            .map_or(n, |p| lo + p);
        if lo < hi {
            l = l.min(self.ranges[lo].0);
            r = r.max(self.ranges[hi - 1].1);
        }
        // Replace ranges[lo..hi] by the one merged range.
        let removed = hi - lo;
        if removed == 0 {
            if n == MAX_RANGES {
                if lo == n {
                    return; // the new range would be the highest: it is the one forgotten
                }
                self.ranges.copy_within(lo..n - 1, lo + 1);
            } else {
                self.ranges.copy_within(lo..n, lo + 1);
                self.len += 1;
            }
        } else {
            self.ranges.copy_within(hi..n, lo + 1);
            self.len -= (removed - 1) as u8;
        }
        self.ranges[lo] = (l, r);
    }

    /// RFC 6675 4 IsLost, as a watermark: un-SACKed bytes below the returned sequence have
    /// DupThresh SACKed ranges, or more than (DupThresh - 1) * `mss` SACKed bytes, above them.
    fn dupthresh_lost_below(&self, una: SeqNumber, mss: u32) -> SeqNumber {
        let mut bytes = 0u32;
        for (count, &(l, r)) in self.ranges().iter().rev().enumerate() {
            bytes = bytes.saturating_add(r.distance_from(l));
            if count as u32 + 1 >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss {
                return l;
            }
        }
        una
    }

    /// Every un-SACKed byte below this sequence is lost (IsLost, RACK, RTO).
    pub fn lost_below(&self, mss: u32) -> SeqNumber {
        self.dupthresh_lost_below(self.high_ack, mss)
            .max(self.marked_lost)
    }

    /// RFC 6675 4 IsLost(seq), with the RACK and RTO marks.
    pub fn is_lost(&self, seq: SeqNumber, mss: u32) -> bool {
        seq.lt(self.lost_below(mss)) && self.sacked_end_at(seq).is_none()
    }

    /// RACK (RFC 8985 6.2) or an RTO (RFC 6675 5.1) found every un-SACKed byte below `seq`
    /// lost.
    pub fn mark_lost_below(&mut self, seq: SeqNumber) {
        if seq.gt(self.marked_lost) {
            self.marked_lost = seq;
        }
    }

    /// An RTO (RFC 6675 5.1): everything sent and not SACKed is lost and may be sent again,
    /// from SND.UNA; what the peer SACKed stays on the board and is not resent.
    pub fn on_timeout(&mut self, una: SeqNumber, snd_max: SeqNumber) {
        self.high_rxt = una;
        self.rescue_rxt = None;
        self.mark_lost_below(snd_max);
    }

    /// Un-SACKed bytes in `[a, b)`.
    fn unsacked_between(&self, a: SeqNumber, b: SeqNumber) -> u32 {
        if !a.lt(b) {
            return 0;
        }
        let mut n = b.distance_from(a);
        for &(l, r) in self.ranges() {
            let (l, r) = (l.max(a), r.min(b));
            if l.lt(r) {
                n -= r.distance_from(l);
            }
        }
        n
    }

    /// RFC 6675 4 SetPipe: bytes believed in the network between SND.UNA and `snd_max`. An
    /// un-SACKed byte counts once unless it is lost, and once more if it was retransmitted.
    pub fn pipe(&self, una: SeqNumber, snd_max: SeqNumber, mss: u32) -> u32 {
        let lost = self.lost_below(mss).min(snd_max).max(una);
        let rxt = self.high_rxt.min(snd_max).max(una);
        self.unsacked_between(una, snd_max) - self.unsacked_between(una, lost)
            + self.unsacked_between(una, rxt)
    }

    /// The first un-SACKed byte at or after `seq`, below `end`, and the length of the hole
    /// there (to the next SACKed range or `end`).
    fn hole_at(&self, mut seq: SeqNumber, end: SeqNumber) -> Option<(SeqNumber, u32)> {
        if let Some(e) = self.sacked_end_at(seq) {
            seq = e;
        }
        if !seq.lt(end) {
            return None;
        }
        let stop = self.next_sacked_after(seq).map_or(end, |s| s.min(end));
        Some((seq, stop.distance_from(seq)))
    }

    /// RFC 6675 4 NextSeg(). `data_end` is the end of the data sent so far (retransmissions
    /// carry only data), `new_data` whether rule 2 may send new data now, `mss` the segment
    /// size, `recovery_point` RFC 6675's RecoveryPoint for rule 4.
    pub fn next_seg(
        &self,
        una: SeqNumber,
        data_end: SeqNumber,
        mss: u32,
        new_data: bool,
        recovery_point: SeqNumber,
    ) -> NextSeg {
        let start = self.high_rxt.max(una);
        let hole = self.hole_at(start, data_end);
        // Rule 1: the first un-SACKed byte above HighRxt that is lost (below the highest
        // SACKed byte, or marked lost by RACK or an RTO).
        if let Some((seq, len)) = hole
            && self.is_lost(seq, mss)
        {
            let len = len
                .min(mss)
                .min(self.lost_below(mss).distance_from(seq).max(1));
            return NextSeg::Retransmit {
                seq,
                len,
                rescue: false,
            };
        }
        // Rule 2: new data.
        if new_data {
            return NextSeg::NewData;
        }
        // Rule 3: an un-SACKed byte above HighRxt below the highest SACKed byte, lost or not.
        if let (Some((seq, len)), Some(top)) = (hole, self.highest_sacked())
            && seq.lt(top)
        {
            return NextSeg::Retransmit {
                seq,
                len: len.min(mss),
                rescue: false,
            };
        }
        // Rule 4: once per recovery, the segment holding the highest un-SACKed byte.
        if self.rescue_rxt.is_none() {
            let top = match self.ranges().last() {
                Some(&(l, r)) if r.ge(data_end) => l,
                _ => data_end,
            };
            // Only if that byte was not retransmitted already.
            if top.gt(una) && top.gt(self.high_rxt) {
                let seq = (top - mss).max(una);
                let seq = match self.ranges().iter().rev().find(|r| r.1.le(top)) {
                    Some(&(_, r)) => seq.max(r),
                    None => seq,
                };
                if seq.lt(top) && seq.ge(una) && !recovery_point.lt(top) {
                    return NextSeg::Retransmit {
                        seq,
                        len: top.distance_from(seq),
                        rescue: true,
                    };
                }
            }
        }
        NextSeg::Nothing
    }

    /// Records a retransmission chosen by [`Scoreboard::next_seg`] (RFC 6675 4: HighRxt, or
    /// RescueRxt for rule 4, which leaves HighRxt alone).
    pub fn on_retransmit(
        &mut self,
        seq: SeqNumber,
        len: u32,
        rescue: bool,
        recovery_point: SeqNumber,
    ) {
        if rescue {
            self.rescue_rxt = Some(recovery_point);
        } else if (seq + len).gt(self.high_rxt) {
            self.high_rxt = seq + len;
        }
    }

    /// A new recovery episode begins (RFC 6675 5): HighRxt starts at HighACK and the rescue is
    /// allowed again.
    pub fn on_recovery_start(&mut self, una: SeqNumber) {
        self.high_rxt = una;
        self.rescue_rxt = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 100;

    fn s(n: u32) -> SeqNumber {
        SeqNumber::new(n)
    }

    fn ack(b: &mut Scoreboard, una: u32, max: u32, blocks: &[(u32, u32)]) -> SackUpdate {
        b.on_ack(s(una), s(max), blocks.iter().map(|&(l, r)| (s(l), s(r))))
    }

    fn ranges(b: &Scoreboard) -> Vec<(u32, u32)> {
        b.ranges().iter().map(|r| (r.0.raw(), r.1.raw())).collect()
    }

    #[test]
    fn blocks_merge_and_prune() {
        let mut b = Scoreboard::new(s(0));
        ack(&mut b, 0, 1000, &[(200, 300)]);
        ack(&mut b, 0, 1000, &[(400, 500), (200, 300)]);
        ack(&mut b, 0, 1000, &[(300, 400)]);
        assert_eq!(ranges(&b), vec![(200, 500)]);
        let up = ack(&mut b, 0, 1000, &[(600, 700), (800, 1100)]);
        // Beyond SND.MAX: ignored.
        assert_eq!(ranges(&b), vec![(200, 500), (600, 700)]);
        assert_eq!(up.newly_sacked, 100);
        ack(&mut b, 100, 1000, &[]);
        assert_eq!(ranges(&b), vec![(200, 500), (600, 700)]);
        let up = ack(&mut b, 500, 1000, &[]);
        assert!(!up.reneged);
        assert_eq!(ranges(&b), vec![(600, 700)]);
    }

    #[test]
    fn many_holes_up_to_the_limit_then_the_highest_are_forgotten() {
        let mut b = Scoreboard::new(s(0));
        // 40 holes: every other segment SACKed, reported four blocks at a time.
        let blocks: Vec<(u32, u32)> = (0..40).map(|i| (200 * i + 100, 200 * i + 200)).collect();
        for chunk in blocks.chunks(4) {
            ack(&mut b, 0, 10_000, chunk);
        }
        assert_eq!(b.ranges().len(), MAX_RANGES);
        assert_eq!(ranges(&b)[..], blocks[..MAX_RANGES]);
        // A block inside the kept span still merges.
        ack(&mut b, 0, 10_000, &[(200, 300)]);
        assert_eq!(ranges(&b)[0], (100, 400));
        assert_eq!(b.ranges().len(), MAX_RANGES - 1);
        // Full again: a new lower range pushes the highest out.
        ack(&mut b, 0, 10_000, &blocks[MAX_RANGES..MAX_RANGES + 1]);
        assert_eq!(b.ranges().len(), MAX_RANGES);
        ack(&mut b, 0, 10_000, &[(20, 50)]);
        assert_eq!(b.ranges().len(), MAX_RANGES);
        assert_eq!(ranges(&b)[0], (20, 50));
        assert_eq!(ranges(&b)[MAX_RANGES - 1], blocks[MAX_RANGES - 1]);
        // Filling the holes one by one walks the board down.
        for i in 1..MAX_RANGES as u32 {
            ack(&mut b, 200 * i + 200, 10_000, &[]);
        }
        assert!(b.is_empty());
    }

    #[test]
    fn dsack_is_recognised_and_not_stored() {
        let mut b = Scoreboard::new(s(0));
        ack(&mut b, 300, 1000, &[(500, 600)]);
        let up = ack(&mut b, 300, 1000, &[(100, 200), (500, 600)]);
        assert!(up.dsack);
        let up = ack(&mut b, 300, 1000, &[(500, 550)]);
        assert!(up.dsack);
        assert_eq!(ranges(&b), vec![(500, 600)]);
    }

    #[test]
    fn renege_clears_the_board() {
        let mut b = Scoreboard::new(s(0));
        ack(&mut b, 0, 1000, &[(200, 400)]);
        // The hole fills but the ACK stops where SACKed data begins: the peer dropped it.
        let up = ack(&mut b, 200, 1000, &[]);
        assert!(up.reneged);
        assert!(b.is_empty());
        // Inside a range counts too.
        ack(&mut b, 200, 1000, &[(500, 700)]);
        let up = ack(&mut b, 600, 1000, &[]);
        assert!(up.reneged);
        assert!(b.is_empty());
    }

    #[test]
    fn is_lost_by_dupthresh() {
        let mut b = Scoreboard::new(s(0));
        ack(&mut b, 0, 1000, &[(100, 200)]);
        assert!(!b.is_lost(s(0), MSS));
        ack(&mut b, 0, 1000, &[(300, 400)]);
        assert!(!b.is_lost(s(0), MSS));
        // Three discontiguous ranges above byte 0: lost; 200 has two above it.
        ack(&mut b, 0, 1000, &[(500, 600)]);
        assert!(b.is_lost(s(0), MSS));
        assert!(!b.is_lost(s(250), MSS));
        assert!(!b.is_lost(s(150), MSS), "SACKed bytes are never lost");
        ack(&mut b, 0, 1000, &[(700, 800)]);
        assert!(b.is_lost(s(250), MSS));
        assert!(!b.is_lost(s(450), MSS));
        // Or more than 2*MSS SACKed bytes above, in one range.
        let mut b = Scoreboard::new(s(0));
        ack(&mut b, 0, 1000, &[(100, 301)]);
        assert!(b.is_lost(s(0), MSS));
        assert!(!b.is_lost(s(301), MSS));
    }

    #[test]
    fn pipe_counts_outstanding_lost_and_retransmitted() {
        let mut b = Scoreboard::new(s(0));
        // 10 segments out; 1, 3, 5 SACKed.
        ack(&mut b, 0, 1000, &[(100, 200), (300, 400), (500, 600)]);
        // Lost: 0 (three ranges above it); 200, 400 and 600.. are not lost.
        // Un-SACKed: 0, 200, 400, 600..1000 = 700 bytes; lost 100 -> pipe 600.
        assert_eq!(b.pipe(s(0), s(1000), MSS), 600);
        b.on_retransmit(s(0), 100, false, s(1000));
        assert_eq!(b.high_rxt(), s(100));
        assert_eq!(b.pipe(s(0), s(1000), MSS), 700);
        // Rule 3 retransmissions of bytes not lost count twice.
        b.on_retransmit(s(200), 100, false, s(1000));
        assert_eq!(b.pipe(s(0), s(1000), MSS), 800);
        // An RTO marks all un-SACKed lost: only retransmissions count.
        b.on_timeout(s(0), s(1000));
        assert_eq!(b.pipe(s(0), s(1000), MSS), 0);
        b.on_retransmit(s(0), 100, false, s(1000));
        assert_eq!(b.pipe(s(0), s(1000), MSS), 100);
    }

    #[test]
    fn next_seg_rules_one_to_four() {
        let mut b = Scoreboard::new(s(0));
        let rp = s(1000);
        ack(&mut b, 0, 1000, &[(100, 200), (300, 400), (500, 600)]);
        // Rule 1: the lost holes in order, then new data.
        let n = b.next_seg(s(0), s(1000), MSS, true, rp);
        assert_eq!(
            n,
            NextSeg::Retransmit {
                seq: s(0),
                len: 100,
                rescue: false
            }
        );
        b.on_retransmit(s(0), 100, false, rp);
        // Rule 2: 200 is not lost (two ranges above it), so new data goes first.
        assert_eq!(b.next_seg(s(0), s(1000), MSS, true, rp), NextSeg::NewData);
        // Rule 3: no new data; 200, then 400, are below the highest SACKed byte.
        let n = b.next_seg(s(0), s(1000), MSS, false, rp);
        assert_eq!(
            n,
            NextSeg::Retransmit {
                seq: s(200),
                len: 100,
                rescue: false
            }
        );
        b.on_retransmit(s(200), 100, false, rp);
        let n = b.next_seg(s(0), s(1000), MSS, false, rp);
        assert_eq!(
            n,
            NextSeg::Retransmit {
                seq: s(400),
                len: 100,
                rescue: false
            }
        );
        b.on_retransmit(s(400), 100, false, rp);
        // Rule 4: the segment with the highest un-SACKed byte, once.
        let n = b.next_seg(s(0), s(1000), MSS, false, rp);
        assert_eq!(
            n,
            NextSeg::Retransmit {
                seq: s(900),
                len: 100,
                rescue: true
            }
        );
        b.on_retransmit(s(900), 100, true, rp);
        assert_eq!(b.next_seg(s(0), s(1000), MSS, false, rp), NextSeg::Nothing);
        assert_eq!(b.high_rxt(), s(500), "a rescue leaves HighRxt alone");
    }

    #[test]
    fn after_a_timeout_sacked_data_is_skipped() {
        let mut b = Scoreboard::new(s(0));
        ack(&mut b, 0, 1000, &[(100, 500)]);
        b.on_timeout(s(0), s(1000));
        let mut sent = Vec::new();
        while let NextSeg::Retransmit { seq, len, rescue } =
            b.next_seg(s(0), s(1000), MSS, false, s(1000))
        {
            assert!(!rescue, "nothing left to rescue");
            sent.push((seq.raw(), len));
            b.on_retransmit(seq, len, rescue, s(1000));
        }
        assert_eq!(
            sent,
            vec![
                (0, 100),
                (500, 100),
                (600, 100),
                (700, 100),
                (800, 100),
                (900, 100)
            ]
        );
    }

    #[test]
    fn marks_are_a_watermark() {
        let mut b = Scoreboard::new(s(0));
        ack(&mut b, 0, 1000, &[(300, 400)]);
        assert!(!b.is_lost(s(0), MSS));
        b.mark_lost_below(s(300));
        assert!(b.is_lost(s(0), MSS) && b.is_lost(s(200), MSS));
        assert!(!b.is_lost(s(400), MSS));
        // A renege clears marks too.
        ack(&mut b, 300, 1000, &[]);
        assert!(b.is_empty());
        assert!(!b.is_lost(s(400), MSS));
    }
}
