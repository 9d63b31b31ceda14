//! RACK-TLP (RFC 8985): loss detection by time, and the tail loss probe, following Linux
//! (net/ipv4/tcp_recovery.c, tcp_output.c `tcp_schedule_loss_probe`).
//!
//! RACK needs each outstanding segment's send time. A connection keeps them in [`SentRing`],
//! a fixed ring of [`RING`] entries (end sequence, send time, retransmitted and SACKed bits):
//! no allocation per segment. When more segments are in flight than the ring holds, the
//! newest entry grows to cover the new segment and takes its send time, so RACK may notice
//! the loss of the segments merged into it later than it could; RFC 6675 DupThresh (in
//! `scoreboard.rs`), the tail loss probe and the RTO still recover them.
//!
//! What RACK finds lost it reports as a watermark (the end of the highest lost segment),
//! which the scoreboard turns into retransmissions (RFC 6675 NextSeg).

use std::time::Duration;

use crate::time::Instant;
use crate::wire::seq::SeqNumber;

/// Segments whose send time a connection remembers.
pub const RING: usize = 32;

/// Send times of the outstanding segments, in sequence order.
#[derive(Clone, Copy, Debug)]
pub struct SentRing {
    ends: [SeqNumber; RING],
    times: [Instant; RING],
    /// Bit per slot: retransmitted since first sent.
    rexmit: u64,
    /// Bit per slot: SACKed.
    sacked: u64,
    head: u8,
    len: u8,
    /// The start of the first entry (SND.UNA once it has moved into it).
    start: SeqNumber,
}

impl SentRing {
    fn new(una: SeqNumber) -> Self {
        SentRing {
            ends: [una; RING],
            times: [Instant::ZERO; RING],
            rexmit: 0,
            sacked: 0,
            head: 0,
            len: 0,
            start: una,
        }
    }

    fn slot(&self, i: usize) -> usize {
        (self.head as usize + i) % RING
    }

    /// Entries: (start, end, send time, retransmitted, SACKed).
    fn entry(&self, i: usize) -> (SeqNumber, SeqNumber, Instant, bool, bool) {
        let s = self.slot(i);
        let start = if i == 0 {
            self.start
        } else {
            self.ends[self.slot(i - 1)]
        };
        (
            start,
            self.ends[s],
            self.times[s],
            self.rexmit & (1 << s) != 0,
            self.sacked & (1 << s) != 0,
        )
    }

    /// Outstanding segments recorded.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A first transmission ending at `end`.
    fn push(&mut self, end: SeqNumber, now: Instant) {
        if self.len as usize == RING {
            // Full: the newest entry covers the new segment too.
            let s = self.slot(RING - 1);
            self.ends[s] = end;
            self.times[s] = now;
            self.rexmit &= !(1 << s);
            self.sacked &= !(1 << s);
            return;
        }
        let s = self.slot(self.len as usize);
        self.ends[s] = end;
        self.times[s] = now;
        self.rexmit &= !(1 << s);
        self.sacked &= !(1 << s);
        self.len += 1;
    }

    /// A retransmission of `[seq, end)`: the entries it overlaps were sent again now.
    fn retransmitted(&mut self, seq: SeqNumber, end: SeqNumber, now: Instant) {
        for i in 0..self.len() {
            let (s, e, ..) = self.entry(i);
            if !e.gt(seq) {
                continue;
            }
            if !s.lt(end) {
                break;
            }
            let slot = self.slot(i);
            self.times[slot] = now;
            self.rexmit |= 1 << slot;
        }
    }

    /// Removes the entries SND.UNA passed; calls `f` for each (end, time, retransmitted,
    /// already SACKed).
    fn ack(&mut self, una: SeqNumber, mut f: impl FnMut(SeqNumber, Instant, bool, bool)) {
        while self.len > 0 {
            let (_, e, t, r, sk) = self.entry(0);
            if e.gt(una) {
                break;
            }
            f(e, t, r, sk);
            self.head = ((self.head as usize + 1) % RING) as u8;
            self.len -= 1;
            self.start = e;
        }
        if self.start.lt(una) {
            self.start = una;
        }
    }
}

/// RACK and TLP state of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Rack {
    ring: SentRing,
    /// RFC 8985 6.1 RACK.xmit_ts and RACK.end_seq: the most recently sent segment known
    /// delivered.
    xmit_time: Option<Instant>,
    end_seq: SeqNumber,
    /// RFC 8985 RACK.rtt: the RTT of that segment.
    rtt: Duration,
    /// The smallest RTT sampled (Linux keeps a windowed minimum; a connection here is short
    /// enough for the plain minimum).
    min_rtt: Option<Duration>,
    /// RFC 8985 RACK.fack: the highest end sequence delivered.
    fack: SeqNumber,
    /// RFC 8985 RACK.reordering_seen.
    reordering_seen: bool,
    /// What RACK marked lost so far (a watermark).
    lost_mark: SeqNumber,
    /// RFC 8985 6.3: the reordering timer.
    pub reo_at: Option<Instant>,
    /// RFC 8985 7.2: the probe timeout.
    pub pto_at: Option<Instant>,
    /// RFC 8985 7.3 TLP.end_seq: a probe is outstanding up to here.
    tlp_end: Option<SeqNumber>,
    /// The probe was a retransmission (TLPRxtOut).
    tlp_rexmit: bool,
}

/// What the ACK's processing says about the outstanding probe (RFC 8985 7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlpOutcome {
    /// No probe outstanding, or not decided yet.
    Pending,
    /// The episode ended without a loss (new data probe, or a D-SACK for the probe).
    NoLoss,
    /// The probe repaired a loss: reduce the congestion window once.
    Repaired,
}

impl Rack {
    pub fn new(una: SeqNumber) -> Self {
        Rack {
            ring: SentRing::new(una),
            xmit_time: None,
            end_seq: una,
            rtt: Duration::ZERO,
            min_rtt: None,
            fack: una,
            reordering_seen: false,
            lost_mark: una,
            reo_at: None,
            pto_at: None,
            tlp_end: None,
            tlp_rexmit: false,
        }
    }

    /// The send-time ring (for inspection).
    #[cfg(any(test, feature = "internals"))]
    pub fn ring(&self) -> &SentRing {
        &self.ring
    }

    /// The earliest of the two timers.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.reo_at, self.pto_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A segment `[seq, end)` went out now; `first` if it is new data.
    pub fn on_send(&mut self, seq: SeqNumber, end: SeqNumber, now: Instant, first: bool) {
        if first {
            if self.ring.is_empty() {
                self.ring.start = seq;
            }
            self.ring.push(end, now);
        } else {
            self.ring.retransmitted(seq, end, now);
        }
    }

    /// RFC 8985 6.2 step 2-3: a segment sent at `sent` and ending at `end` was delivered.
    fn delivered(&mut self, end: SeqNumber, sent: Instant, rexmit: bool, now: Instant) {
        let rtt = now.saturating_since(sent);
        // A retransmission acknowledged faster than any RTT seen was probably the original
        // arriving late (Linux's tcp_rack_sent_after check).
        if rexmit && self.min_rtt.is_some_and(|m| rtt < m) {
            return;
        }
        if !rexmit {
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
            if end.lt(self.fack) {
                self.reordering_seen = true;
            }
        }
        if end.gt(self.fack) {
            self.fack = end;
        }
        let newer = match self.xmit_time {
            None => true,
            Some(t) => sent > t || (sent == t && end.gt(self.end_seq)),
        };
        if newer {
            self.xmit_time = Some(sent);
            self.end_seq = end;
            self.rtt = rtt;
        }
    }

    /// An ACK arrived: SND.UNA is `una`, the segment's SACK blocks `blocks`.
    pub fn on_ack(
        &mut self,
        una: SeqNumber,
        blocks: impl Iterator<Item = (SeqNumber, SeqNumber)> + Clone,
        now: Instant,
    ) {
        let mut newest: Option<(SeqNumber, Instant, bool)> = None;
        self.ring.ack(una, |e, t, r, sk| {
            if !sk && newest.is_none_or(|n| t >= n.1) {
                newest = Some((e, t, r));
            }
        });
        if let Some(n) = newest {
            self.delivered(n.0, n.1, n.2, now);
        }
        if self.lost_mark.lt(una) {
            self.lost_mark = una;
        }
        if blocks.clone().next().is_none() {
            return;
        }
        for i in 0..self.ring.len() {
            let (s, e, t, r, sk) = self.ring.entry(i);
            if sk {
                continue;
            }
            if blocks.clone().any(|(l, rr)| l.le(s) && e.le(rr)) {
                let slot = self.ring.slot(i);
                self.ring.sacked |= 1 << slot;
                self.delivered(e, t, r, now);
            }
        }
    }

    /// RFC 8985 6.2 step 4 (Linux's tcp_rack_reo_wnd): the reordering window.
    fn reo_wnd(&self, srtt: Duration, in_recovery: bool, sacked_segs: u32) -> Duration {
        if !self.reordering_seen && (in_recovery || sacked_segs >= super::scoreboard::DUP_THRESH) {
            return Duration::ZERO;
        }
        (self.min_rtt.unwrap_or(srtt) / 4).min(srtt)
    }

    /// RFC 8985 6.2 step 5 (RACK_detect_loss): returns the end of the highest segment now
    /// found lost and how many segments were newly marked; arms the reordering timer for
    /// segments that may still arrive.
    pub fn detect_loss(
        &mut self,
        now: Instant,
        srtt: Duration,
        in_recovery: bool,
        sacked_segs: u32,
    ) -> Option<(SeqNumber, u32)> {
        self.reo_at = None;
        let xmit = self.xmit_time?;
        let reo = self.reo_wnd(srtt, in_recovery, sacked_segs);
        let mut lost: Option<SeqNumber> = None;
        let mut count = 0;
        for i in 0..self.ring.len() {
            let (_, e, t, r, sk) = self.ring.entry(i);
            if sk || r {
                // SACKed, or retransmitted (a lost retransmission is left to the RTO).
                continue;
            }
            let before = t < xmit || (t == xmit && e.lt(self.end_seq));
            if !before {
                break;
            }
            let at = t + self.rtt + reo;
            if at <= now {
                if e.gt(self.lost_mark) {
                    count += 1;
                }
                lost = Some(e);
            } else {
                self.reo_at = Some(self.reo_at.map_or(at, |x| x.min(at)));
            }
        }
        let lost = lost.filter(|e| e.gt(self.lost_mark))?;
        self.lost_mark = lost;
        Some((lost, count))
    }

    /// RFC 8985 7.2 (Linux's tcp_schedule_loss_probe): arms the probe timeout at 2*SRTT,
    /// plus `ack_delay` (WCDelAckT) when only one segment is in flight, plus 2 ms as Linux
    /// (TCP_TIMEOUT_MIN) otherwise; never later than the RTO.
    pub fn arm_pto(
        &mut self,
        now: Instant,
        srtt: Duration,
        one_segment: bool,
        ack_delay: Duration,
        rto_at: Option<Instant>,
    ) {
        if self.tlp_end.is_some() {
            // One probe per episode (RFC 8985 7.3).
            self.pto_at = None;
            return;
        }
        let extra = if one_segment {
            ack_delay
        } else {
            Duration::from_millis(2)
        };
        let at = now + srtt * 2 + extra;
        self.pto_at = Some(match rto_at {
            Some(r) => at.min(r),
            None => at,
        });
    }

    /// Stops the probe timer.
    pub fn cancel_pto(&mut self) {
        self.pto_at = None;
    }

    /// A probe was sent (RFC 8985 7.3): `snd_max` is TLP.end_seq, `rexmit` whether it resent
    /// data.
    pub fn on_probe_sent(&mut self, snd_max: SeqNumber, rexmit: bool) {
        self.pto_at = None;
        self.tlp_end = Some(snd_max);
        self.tlp_rexmit = rexmit;
    }

    /// A probe episode is open.
    pub fn probe_outstanding(&self) -> bool {
        self.tlp_end.is_some()
    }

    /// RFC 8985 7.4 (Linux's tcp_process_tlp_ack): did the probe repair a loss?
    /// `advanced`: SND.UNA moved; `dupack`: a pure duplicate ACK; `dsack`: it carried a D-SACK.
    pub fn on_ack_for_probe(
        &mut self,
        ack: SeqNumber,
        advanced: bool,
        dupack: bool,
        dsack: bool,
    ) -> TlpOutcome {
        let Some(end) = self.tlp_end else {
            return TlpOutcome::Pending;
        };
        if ack.lt(end) {
            return TlpOutcome::Pending;
        }
        if !self.tlp_rexmit || dsack {
            // New data probed, or both the original and the probe arrived.
            self.tlp_end = None;
            return TlpOutcome::NoLoss;
        }
        if ack.gt(end) {
            // Only the probe arrived: it repaired a loss.
            self.tlp_end = None;
            return TlpOutcome::Repaired;
        }
        if dupack && !advanced {
            self.tlp_end = None;
            return TlpOutcome::NoLoss;
        }
        TlpOutcome::Pending
    }

    /// An RTO ends any probe episode (RFC 8985 7.3) and stops both timers.
    pub fn on_timeout(&mut self) {
        self.tlp_end = None;
        self.pto_at = None;
        self.reo_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber::new(n)
    }
    fn t(ms: u64) -> Instant {
        Instant::from_millis(1000 + ms)
    }
    const SRTT: Duration = Duration::from_millis(10);

    #[test]
    fn a_segment_sent_before_a_delivered_one_is_lost_after_rtt_plus_reo_wnd() {
        let mut r = Rack::new(s(0));
        for i in 0..4u32 {
            r.on_send(s(i * 100), s(i * 100 + 100), t(i as u64), true);
        }
        // Segment 3 (sent at 3 ms) is SACKed at 13 ms: rtt 10 ms.
        r.on_ack(s(0), [(s(300), s(400))].into_iter(), t(13));
        // reo_wnd = min_rtt/4 = 2.5 ms: segment 0 (sent at 0) is lost at 12.5 ms, already.
        // Segments 1 and 2 (sent at 1 and 2 ms) are lost at 13.5 and 14.5 ms.
        let lost = r.detect_loss(t(13), SRTT, false, 1);
        assert_eq!(lost, Some((s(100), 1)));
        assert_eq!(r.reo_at, Some(t(13) + Duration::from_micros(500)));
        let lost = r.detect_loss(t(15), SRTT, false, 1);
        assert_eq!(lost, Some((s(300), 2)));
        assert_eq!(r.reo_at, None);
    }

    #[test]
    fn retransmitted_and_cumulatively_acked_segments_are_not_lost() {
        let mut r = Rack::new(s(0));
        for i in 0..3u32 {
            r.on_send(s(i * 100), s(i * 100 + 100), t(i as u64), true);
        }
        r.on_send(s(0), s(100), t(5), false);
        r.on_ack(s(100), std::iter::empty(), t(6));
        assert_eq!(r.ring().len(), 2);
        // The retransmission arrived after 1 ms: faster than no RTT seen yet, so it counts.
        assert_eq!(r.detect_loss(t(100), SRTT, false, 0), Some((s(300), 2)));
    }

    #[test]
    fn a_full_ring_merges_into_the_newest_entry() {
        let mut r = Rack::new(s(0));
        for i in 0..(RING as u32 + 10) {
            r.on_send(s(i * 10), s(i * 10 + 10), t(i as u64), true);
        }
        assert_eq!(r.ring().len(), RING);
        let (start, end, time, ..) = r.ring().entry(RING - 1);
        assert_eq!(start, s((RING as u32 - 1) * 10));
        assert_eq!(end, s((RING as u32 + 10) * 10));
        assert_eq!(time, t(RING as u64 + 9));
    }

    #[test]
    fn pto_is_two_srtt_capped_by_the_rto() {
        let mut r = Rack::new(s(0));
        let delay = Duration::from_millis(40);
        r.arm_pto(t(0), SRTT, false, delay, Some(t(200)));
        assert_eq!(r.pto_at, Some(t(22)));
        r.arm_pto(t(0), SRTT, true, delay, Some(t(200)));
        assert_eq!(r.pto_at, Some(t(60)));
        r.arm_pto(t(0), SRTT, true, delay, Some(t(30)));
        assert_eq!(r.pto_at, Some(t(30)));
    }

    #[test]
    fn probe_outcomes() {
        let mut r = Rack::new(s(0));
        r.on_probe_sent(s(1000), true);
        assert_eq!(
            r.on_ack_for_probe(s(900), true, false, false),
            TlpOutcome::Pending
        );
        assert_eq!(
            r.on_ack_for_probe(s(1000), true, false, false),
            TlpOutcome::Pending
        );
        assert_eq!(
            r.on_ack_for_probe(s(1000), false, true, true),
            TlpOutcome::NoLoss
        );
        assert!(!r.probe_outstanding());
        r.on_probe_sent(s(1000), true);
        assert_eq!(
            r.on_ack_for_probe(s(1100), true, false, false),
            TlpOutcome::Repaired
        );
        r.on_probe_sent(s(1000), false);
        assert_eq!(
            r.on_ack_for_probe(s(1000), true, false, false),
            TlpOutcome::NoLoss
        );
    }
}
