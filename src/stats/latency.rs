//! Latency distributions kept by each worker (hdrhistogram) and merged by the collector.

use hdrhistogram::Histogram;

/// Highest value tracked: one hour in microseconds (values above are clamped).
const MAX_US: u64 = 3_600_000_000;

/// Which distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// (a) SYN received to final ACK received, microseconds.
    Handshake,
    /// (b) request complete to the last response byte handed to the TX ring, microseconds.
    Request,
    /// (c) SYN received to the end of the connection, microseconds.
    Lifetime,
    /// (d) one loop iteration (a batch), nanoseconds.
    Loop,
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Metric::Handshake,
        Metric::Request,
        Metric::Lifetime,
        Metric::Loop,
    ];
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Handshake => "handshake",
            Metric::Request => "request",
            Metric::Lifetime => "lifetime",
            Metric::Loop => "loop",
        }
    }
    /// The unit values are recorded in.
    pub const fn unit(self) -> &'static str {
        match self {
            Metric::Loop => "ns",
            _ => "us",
        }
    }
    /// Seconds per recorded unit (for Prometheus, which wants seconds).
    pub const fn seconds_per_unit(self) -> f64 {
        match self {
            Metric::Loop => 1e-9,
            _ => 1e-6,
        }
    }
}

/// The four distributions of one worker (or merged).
#[derive(Clone, Debug)]
pub struct Latency {
    pub hist: [Histogram<u64>; 4],
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            hist: [new_hist(), new_hist(), new_hist(), new_hist()],
        }
    }
}

impl Latency {
    #[inline]
    pub fn record(&mut self, m: Metric, value: u64) {
        self.hist[m as usize].saturating_record(value.clamp(1, MAX_US));
    }
    pub fn get(&self, m: Metric) -> &Histogram<u64> {
        &self.hist[m as usize]
    }
    pub fn add(&mut self, other: &Latency) {
        for (a, b) in self.hist.iter_mut().zip(&other.hist) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = a.add(b);
        }
    }
    pub fn reset(&mut self) {
        for h in &mut self.hist {
            h.reset();
        }
    }
}

/// HdrHistogram's percentile text format (`.hgrm`), as written by its `outputPercentileDistribution`,
/// with values divided by `scale` (e.g. 1000 to print microseconds as milliseconds).
pub fn hgrm(h: &Histogram<u64>, scale: f64) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / scale;
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        s,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_merge_and_percentiles() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        for v in 1..=1000 {
            a.record(Metric::Request, v);
        }
        b.record(Metric::Request, 1_000_000);
        a.add(&b);
        let h = a.get(Metric::Request);
        assert_eq!(h.len(), 1001);
        assert!((495..=505).contains(&h.value_at_quantile(0.5)));
        assert!(h.max() >= 999_000);
    }

    #[test]
    fn hgrm_text_has_the_standard_shape() {
        let mut l = Latency::default();
        for v in 1..=100 {
            l.record(Metric::Handshake, v * 10);
        }
        let t = hgrm(l.get(Metric::Handshake), 1000.0);
        assert!(t.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
        assert!(t.contains("#[Mean    ="));
        assert!(t.contains("Total count    =          100]"));
        // every data line has 3 or 4 numeric columns
        let data: Vec<&str> = t
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .collect();
        assert!(data.len() > 5);
        for l in data {
            let cols: Vec<f64> = l.split_whitespace().map(|c| c.parse().unwrap()).collect();
            assert!(cols.len() == 3 || cols.len() == 4, "{l}");
        }
    }
}
