//! Congestion control: slow start and congestion avoidance (RFC 5681), an initial window of ten
//! segments (RFC 6928), and fast retransmit / fast recovery with NewReno's partial-ACK handling
//! (RFC 6582). Counted in bytes.

use super::seq::SeqNumber;

#[derive(Clone, Copy, Debug)]
pub struct Congestion {
    pub cwnd: u32,
    pub ssthresh: u32,
    /// Duplicate ACKs seen in a row (RFC 5681 2: same ACK, no data, no window change).
    pub dupacks: u32,
    /// RFC 6582: the highest sequence number sent when fast recovery began.
    pub recover: SeqNumber,
    pub in_recovery: bool,
    recover_valid: bool,
    mss: u32,
    /// Bytes acked during congestion avoidance not yet turned into cwnd growth.
    ca_acked: u32,
}

/// What the sender should do after an ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckAction {
    None,
    /// Retransmit the first unacknowledged segment now (fast retransmit, or a NewReno partial ACK).
    RetransmitFirst,
}

impl Congestion {
    pub fn new(mss: u32, iss: SeqNumber) -> Self {
        Congestion {
            // RFC 6928 2: IW = min(10*MSS, max(2*MSS, 14600)).
            cwnd: (10 * mss).min((2 * mss).max(14600)),
            // RFC 5681 3.1: ssthresh starts arbitrarily high.
            ssthresh: u32::MAX / 2,
            dupacks: 0,
            recover: iss,
            in_recovery: false,
            recover_valid: false,
            mss,
            ca_acked: 0,
        }
    }

    pub fn mss(&self) -> u32 {
        self.mss
    }

    /// An ACK that advanced SND.UNA by `acked` bytes; `ack` is SEG.ACK, `flight` what was
    /// outstanding before it.
    pub fn on_new_ack(&mut self, acked: u32, ack: SeqNumber, flight: u32) -> AckAction {
        self.dupacks = 0;
        if self.in_recovery {
            if ack.ge(self.recover) {
                // RFC 6582 3.2 (3): full acknowledgment; deflate the window.
                let after = flight.saturating_sub(acked);
                self.cwnd = self.ssthresh.min(after.max(self.mss) + self.mss);
                self.in_recovery = false;
                return AckAction::None;
            }
            // RFC 6582 3.2 (3): partial acknowledgment: retransmit the next hole, deflate by
            // the amount acked, add back one MSS if that was at least one MSS.
            self.cwnd = self.cwnd.saturating_sub(acked);
            if acked >= self.mss {
                self.cwnd += self.mss;
            }
            self.cwnd = self.cwnd.max(self.mss);
            return AckAction::RetransmitFirst;
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 3.1 (eq. 2), with RFC 3465's limit L = 2*SMSS per ACK.
            self.cwnd = self.cwnd.saturating_add(acked.min(2 * self.mss));
        } else {
            // RFC 5681 3.1 (eq. 3): about one SMSS per RTT, counted exactly in bytes.
            self.ca_acked = self.ca_acked.saturating_add(acked);
            if self.ca_acked >= self.cwnd {
                self.ca_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
        AckAction::None
    }

    /// A duplicate ACK (RFC 5681 2) while `flight` bytes are outstanding; `snd_max` is the
    /// highest sequence number sent. `una` is SND.UNA.
    /// `sack_evidence`: the peer's SACK blocks show data above a hole, which makes the loss
    /// certain and lifts RFC 6582's guard against a second reduction (RFC 6675 5).
    pub fn on_dup_ack(
        &mut self,
        una: SeqNumber,
        snd_max: SeqNumber,
        flight: u32,
        sack_evidence: bool,
    ) -> AckAction {
        self.dupacks += 1;
        if self.in_recovery {
            // RFC 5681 3.2 (4): inflate for each further duplicate.
            self.cwnd = self.cwnd.saturating_add(self.mss);
            return AckAction::None;
        }
        // RFC 6582 3.2 (2): enter recovery only if the ACK covers more than `recover`
        // (avoids a second reduction for losses of the same window).
        // Before any recovery or timeout `recover` is unset, so a loss of the very first
        // segment (SEG.ACK - 1 == ISS) still triggers fast retransmit.
        if self.dupacks == 3
            && (!self.recover_valid || sack_evidence || (una - 1u32).gt(self.recover))
        {
            self.enter_recovery(flight, snd_max);
            return AckAction::RetransmitFirst;
        }
        AckAction::None
    }

    fn enter_recovery(&mut self, flight: u32, snd_max: SeqNumber) {
        // RFC 5681 3.2 (eq. 4) and (3).
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh + 3 * self.mss;
        self.recover = snd_max;
        self.recover_valid = true;
        self.in_recovery = true;
        self.ca_acked = 0;
    }

    /// The retransmission timer expired (RFC 5681 3.1 eq. 4, and the loss window).
    pub fn on_timeout(&mut self, flight: u32, snd_max: SeqNumber) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.in_recovery = false;
        self.dupacks = 0;
        self.ca_acked = 0;
        // RFC 6582 3.2 (4): after a timeout, record the highest sequence number sent.
        self.recover = snd_max;
        self.recover_valid = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1448;

    #[test]
    fn initial_window_is_ten_segments() {
        let c = Congestion::new(MSS, SeqNumber::new(0));
        assert_eq!(c.cwnd, 10 * MSS);
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mut c = Congestion::new(MSS, SeqNumber::new(0));
        c.on_new_ack(MSS, SeqNumber::new(MSS), 10 * MSS);
        assert_eq!(c.cwnd, 11 * MSS);
        c.ssthresh = c.cwnd;
        let before = c.cwnd;
        for i in 0..11 {
            c.on_new_ack(MSS, SeqNumber::new(MSS * (i + 2)), before);
        }
        assert_eq!(c.cwnd, before + MSS);
    }

    #[test]
    fn three_dupacks_enter_newreno_recovery() {
        let mut c = Congestion::new(MSS, SeqNumber::new(0));
        let una = SeqNumber::new(1);
        let max = SeqNumber::new(1 + 10 * MSS);
        assert_eq!(c.on_dup_ack(una, max, 10 * MSS, false), AckAction::None);
        assert_eq!(c.on_dup_ack(una, max, 10 * MSS, false), AckAction::None);
        assert_eq!(
            c.on_dup_ack(una, max, 10 * MSS, false),
            AckAction::RetransmitFirst
        );
        assert!(c.in_recovery);
        assert_eq!(c.ssthresh, 5 * MSS);
        assert_eq!(c.cwnd, 8 * MSS);
        // a partial ACK retransmits the next hole and stays in recovery
        assert_eq!(
            c.on_new_ack(MSS, una + MSS, 10 * MSS),
            AckAction::RetransmitFirst
        );
        assert!(c.in_recovery);
        // the full ACK leaves recovery with cwnd <= ssthresh
        assert_eq!(c.on_new_ack(9 * MSS, max, 9 * MSS), AckAction::None);
        assert!(!c.in_recovery);
        assert!(c.cwnd <= c.ssthresh);
    }

    #[test]
    fn timeout_collapses_window() {
        let mut c = Congestion::new(MSS, SeqNumber::new(0));
        c.on_timeout(10 * MSS, SeqNumber::new(10 * MSS));
        assert_eq!(c.cwnd, MSS);
        assert_eq!(c.ssthresh, 5 * MSS);
    }
}
