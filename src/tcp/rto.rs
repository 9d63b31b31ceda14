//! Retransmission timeout: RFC 6298, with Karn's rule (samples only from segments sent once)
//! and exponential backoff. Bounds follow Linux: 200 ms floor, 120 s ceiling, 1 s initial.

use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub struct RtoConfig {
    pub initial: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Default for RtoConfig {
    fn default() -> Self {
        RtoConfig {
            // RFC 6298 (2.1): initial RTO of 1 second.
            initial: Duration::from_secs(1),
            // Linux's TCP_RTO_MIN (RFC 6298 (2.4) says 1 s; Linux and every fast stack use 200 ms).
            min: Duration::from_millis(200),
            // RFC 6298 (2.5): a maximum of at least 60 s; Linux uses 120 s.
            max: Duration::from_secs(120),
        }
    }
}

/// Smoothed round-trip estimate and the timeout derived from it.
#[derive(Clone, Copy, Debug)]
pub struct RttEstimator {
    /// Smoothed RTT and variance in microseconds; `None` before the first sample.
    srtt_us: Option<u64>,
    rttvar_us: u64,
    /// The base RTO (without backoff).
    rto: Duration,
    /// How many times the timer has backed off since the last new acknowledgment.
    backoff: u32,
}

impl RttEstimator {
    pub fn new(cfg: &RtoConfig) -> Self {
        RttEstimator {
            srtt_us: None,
            rttvar_us: 0,
            rto: cfg.initial,
            backoff: 0,
        }
    }

    /// Feeds one RTT measurement (RFC 6298 2.2 and 2.3).
    pub fn sample(&mut self, rtt: Duration, cfg: &RtoConfig) {
        let r = rtt.as_micros().min(u64::MAX as u128) as u64;
        match self.srtt_us {
            None => {
                // RFC 6298 (2.2): SRTT <- R, RTTVAR <- R/2.
                self.srtt_us = Some(r);
                self.rttvar_us = r / 2;
            }
            Some(srtt) => {
                // RFC 6298 (2.3): beta = 1/4, alpha = 1/8.
                let delta = srtt.abs_diff(r);
                self.rttvar_us = (3 * self.rttvar_us + delta) / 4;
                self.srtt_us = Some((7 * srtt + r) / 8);
            }
        }
        // RTO <- SRTT + max(G, K*RTTVAR), K = 4, G = 1 ms here.
        let srtt = self.srtt_us.unwrap_or(r);
        let rto = Duration::from_micros(srtt + (4 * self.rttvar_us).max(1000));
        self.rto = rto.clamp(cfg.min, cfg.max);
    }

    /// The current timeout including backoff (RFC 6298 5.5: doubles per expiry).
    pub fn rto(&self, cfg: &RtoConfig) -> Duration {
        let factor = 1u32 << self.backoff.min(16);
        self.rto.saturating_mul(factor).min(cfg.max)
    }

    pub fn backoff(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// New data was acknowledged: forget the backoff (RFC 6298 5.7 recomputes from SRTT).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    pub fn backoffs(&self) -> u32 {
        self.backoff
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_us.map(Duration::from_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_and_smoothing() {
        let cfg = RtoConfig::default();
        let mut e = RttEstimator::new(&cfg);
        assert_eq!(e.rto(&cfg), Duration::from_secs(1));
        e.sample(Duration::from_millis(100), &cfg);
        // 100 + 4*50 = 300 ms
        assert_eq!(e.rto(&cfg), Duration::from_millis(300));
        for _ in 0..50 {
            e.sample(Duration::from_millis(1), &cfg);
        }
        // converges to the 200 ms floor
        assert_eq!(e.rto(&cfg), Duration::from_millis(200));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let cfg = RtoConfig::default();
        let mut e = RttEstimator::new(&cfg);
        e.backoff();
        assert_eq!(e.rto(&cfg), Duration::from_secs(2));
        for _ in 0..20 {
            e.backoff();
        }
        assert_eq!(e.rto(&cfg), Duration::from_secs(120));
        e.reset_backoff();
        assert_eq!(e.rto(&cfg), Duration::from_secs(1));
    }
}
