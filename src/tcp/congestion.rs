//! Congestion control: slow start and congestion avoidance (RFC 5681), an initial window of ten
//! segments (RFC 6928), and fast retransmit / fast recovery with NewReno's partial-ACK handling
//! (RFC 6582) for peers without SACK; with SACK, recovery is RFC 6675's: cwnd = ssthresh and
//! the scoreboard's pipe decides what may be sent. Slow-start restart after idle (RFC 5681
//! 4.1, Linux's tcp_cwnd_restart). Counted in bytes.

use std::time::Duration;

use crate::time::Instant;
use crate::wire::seq::SeqNumber;

#[derive(Clone, Copy, Debug)]
pub struct Congestion {
    pub cwnd: u32,
    pub ssthresh: u32,
    /// Duplicate ACKs seen in a row (RFC 5681 2: same ACK, no data, no window change).
    pub dupacks: u32,
    /// RFC 6582: the highest sequence number sent when fast recovery began.
    pub recover: SeqNumber,
    pub in_recovery: bool,
    /// After an RTO until SND.UNA passes `recover` (Linux's Loss state): go-back-N resends,
    /// and fast recovery is not entered (RFC 6675 5.1, RFC 6582 3.2 (4)).
    pub in_loss: bool,
    recover_valid: bool,
    mss: u32,
    /// Bytes acked during congestion avoidance not yet turned into cwnd growth.
    ca_acked: u32,
    /// The peer sends SACK: recovery follows RFC 6675 (no window inflation).
    pub sack: bool,
    /// When new data was last sent (Linux's lsndtime), for slow-start restart.
    last_send: Option<Instant>,
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
            in_loss: false,
            recover_valid: false,
            mss,
            ca_acked: 0,
            sack: false,
            last_send: None,
        }
    }

    /// RFC 6928 2: the initial (and restart) window.
    pub fn initial_window(&self) -> u32 {
        (10 * self.mss).min((2 * self.mss).max(14600))
    }

    /// New data went out now.
    pub fn on_data_sent(&mut self, now: Instant) {
        self.last_send = Some(now);
    }

    /// RFC 5681 4.1 (Linux's tcp_slow_start_after_idle, tcp_cwnd_restart): about to send with
    /// nothing in flight after more than an RTO without sending: cwnd is halved for each RTO
    /// of idleness, down to the restart window min(IW, cwnd); ssthresh keeps 3/4 of the old
    /// cwnd (tcp_current_ssthresh).
    pub fn restart_after_idle(&mut self, now: Instant, rto: Duration) {
        let Some(last) = self.last_send else {
            return;
        };
        let idle = now.saturating_since(last);
        if idle <= rto || rto.is_zero() || self.in_recovery {
            return;
        }
        self.ssthresh = self.ssthresh.max(self.cwnd / 4 * 3);
        let restart = self.initial_window().min(self.cwnd);
        let mut cwnd = self.cwnd;
        let mut left = idle;
        while left > rto && cwnd > restart {
            left -= rto;
            cwnd >>= 1;
        }
        self.cwnd = cwnd.max(restart);
        self.ca_acked = 0;
        // Restarted once per idle period.
        self.last_send = Some(now);
    }

    /// RFC 8985 7.4: a tail loss probe repaired a loss; reduce the window once, as Linux's
    /// CWR state does (ssthresh = cwnd / 2, cwnd = ssthresh).
    pub fn on_probe_repaired_loss(&mut self) {
        self.ssthresh = (self.cwnd / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh;
        self.ca_acked = 0;
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn mss(&self) -> u32 {
        self.mss
    }

    /// An ACK that advanced SND.UNA by `acked` bytes; `ack` is SEG.ACK, `flight` what was
    /// outstanding before it.
    pub fn on_new_ack(&mut self, acked: u32, ack: SeqNumber, flight: u32) -> AckAction {
        self.dupacks = 0;
        if self.in_loss && ack.ge(self.recover) {
            self.in_loss = false;
        }
        if self.in_recovery {
            if ack.ge(self.recover) {
                // RFC 6582 3.2 (3): full acknowledgment; deflate the window.
                let after = flight.saturating_sub(acked);
                self.cwnd = self.ssthresh.min(after.max(self.mss) + self.mss);
                self.in_recovery = false;
                return AckAction::None;
            }
            if self.sack {
                // RFC 6675 5: cwnd stays at ssthresh; the scoreboard's pipe and NextSeg send.
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
        if self.in_recovery && self.sack {
            // RFC 6675 5: no inflation; SACKed bytes leave the pipe instead.
            return AckAction::None;
        }
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
            && !self.in_loss
            && (!self.recover_valid || sack_evidence || (una - 1u32).gt(self.recover))
        {
            self.enter_recovery(flight, snd_max);
            return AckAction::RetransmitFirst;
        }
        AckAction::None
    }

    /// Enters fast recovery: three duplicate ACKs, or (with SACK) the scoreboard or RACK
    /// found the first segment lost (RFC 6675 5, RFC 8985 6.2).
    pub fn enter_recovery(&mut self, flight: u32, snd_max: SeqNumber) {
        // RFC 5681 3.2 (eq. 4) and (3); RFC 6675 5 (4.2): cwnd = ssthresh with SACK.
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = if self.sack {
            self.ssthresh
        } else {
            self.ssthresh + 3 * self.mss
        };
        self.recover = snd_max;
        self.recover_valid = true;
        self.in_recovery = true;
        self.ca_acked = 0;
    }

    /// The path MTU fell (RFC 1191, RFC 8201): segments are now `mss` bytes. What was in flight
    /// at the old size is presumed dropped and is resent from SND.UNA (Linux's
    /// tcp_simple_retransmit): the Loss state until SND.UNA passes `snd_max`, so the resends'
    /// ACKs do not look like fast-recovery evidence. cwnd and ssthresh keep their bytes: this
    /// is not congestion.
    pub fn on_path_mtu_drop(&mut self, mss: u32, snd_max: SeqNumber) {
        self.mss = mss;
        if !self.in_loss {
            self.in_recovery = false;
            self.in_loss = true;
            self.dupacks = 0;
            self.recover = snd_max;
            self.recover_valid = true;
        }
    }

    /// The retransmission timer expired (RFC 5681 3.1 eq. 4, and the loss window).
    pub fn on_timeout(&mut self, flight: u32, snd_max: SeqNumber) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.in_recovery = false;
        self.in_loss = true;
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
    fn sack_recovery_does_not_inflate() {
        let mut c = Congestion::new(MSS, SeqNumber::new(0));
        c.sack = true;
        let una = SeqNumber::new(1);
        let max = SeqNumber::new(1 + 10 * MSS);
        for _ in 0..3 {
            c.on_dup_ack(una, max, 10 * MSS, true);
        }
        assert!(c.in_recovery);
        assert_eq!(c.cwnd, 5 * MSS);
        c.on_dup_ack(una, max, 10 * MSS, true);
        assert_eq!(c.cwnd, 5 * MSS);
        assert_eq!(c.on_new_ack(MSS, una + MSS, 10 * MSS), AckAction::None);
        assert_eq!(c.cwnd, 5 * MSS);
    }

    #[test]
    fn slow_start_restarts_after_idle() {
        let rto = Duration::from_millis(200);
        let t0 = Instant::from_millis(1000);
        let mut c = Congestion::new(MSS, SeqNumber::new(0));
        c.cwnd = 100 * MSS;
        c.on_data_sent(t0);
        // Idle for less than an RTO: nothing changes.
        c.restart_after_idle(t0 + Duration::from_millis(150), rto);
        assert_eq!(c.cwnd, 100 * MSS);
        // Idle for 2.5 RTOs: halved twice.
        c.restart_after_idle(t0 + Duration::from_millis(500), rto);
        assert_eq!(c.cwnd, 25 * MSS);
        assert_eq!(c.ssthresh, u32::MAX / 2);
        // Long idle: down to the initial window, never below.
        c.restart_after_idle(t0 + Duration::from_secs(60), rto);
        assert_eq!(c.cwnd, 10 * MSS);
    }

    #[test]
    fn timeout_collapses_window() {
        let mut c = Congestion::new(MSS, SeqNumber::new(0));
        c.on_timeout(10 * MSS, SeqNumber::new(10 * MSS));
        assert_eq!(c.cwnd, MSS);
        assert_eq!(c.ssthresh, 5 * MSS);
    }
}
