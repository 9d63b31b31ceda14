//! Latency distributions kept by each worker and merged by the collector: an hdrhistogram each
//! (percentiles for the live line, the summary and the `.hgrm` files) and fixed buckets with an
//! exact sum (the Prometheus histograms, which aggregate across workers and scrapes).

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
    /// Nanoseconds per recorded unit.
    pub const fn ns_per_unit(self) -> u64 {
        match self {
            Metric::Loop => 1,
            _ => 1_000,
        }
    }
}

/// Upper bounds of the Prometheus buckets, in nanoseconds: 1-2.5-5 steps from 250 ns (a loop
/// iteration) to 10 s, then 30 s and 60 s (connection lifetimes); above is `+Inf`.
pub const BUCKET_BOUNDS_NS: [u64; 26] = [
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// One distribution as Prometheus buckets: plain integers, so that recording is a comparison
/// search and two additions, without atomics, locks or allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buckets {
    /// Values per bucket (not cumulative): `counts[i]` holds values in
    /// `(BUCKET_BOUNDS_NS[i-1], BUCKET_BOUNDS_NS[i]]`, the last one those above every bound.
    pub counts: [u64; BUCKET_BOUNDS_NS.len() + 1],
    /// Sum of the values, in the metric's unit.
    pub sum: u64,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            counts: [0; BUCKET_BOUNDS_NS.len() + 1],
            sum: 0,
        }
    }
}

impl Buckets {
    /// Counts `value`, in units of `ns_per_unit` nanoseconds.
    #[inline]
    pub fn record(&mut self, value: u64, ns_per_unit: u64) {
        let ns = value.saturating_mul(ns_per_unit);
        self.counts[BUCKET_BOUNDS_NS.partition_point(|&b| b < ns)] += 1;
        self.sum = self.sum.saturating_add(value);
    }
    /// Values counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
    pub fn add(&mut self, other: &Buckets) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum = self.sum.saturating_add(other.sum);
    }
}

/// The four distributions of one worker (or merged).
#[derive(Clone, Debug)]
pub struct Latency {
    pub hist: [Histogram<u64>; 4],
    /// The same values in Prometheus buckets, by [`Metric`].
    pub buckets: [Buckets; 4],
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            hist: [new_hist(), new_hist(), new_hist(), new_hist()],
            buckets: [Buckets::default(); 4],
        }
    }
}

impl Latency {
    #[inline]
    pub fn record(&mut self, m: Metric, value: u64) {
        let v = value.clamp(1, MAX_US);
        self.hist[m as usize].saturating_record(v);
        self.buckets[m as usize].record(v, m.ns_per_unit());
    }
    /// The Prometheus buckets of `m`.
    #[cfg(any(test, feature = "internals"))]
    pub fn buckets(&self, m: Metric) -> &Buckets {
        &self.buckets[m as usize]
    }
    pub fn get(&self, m: Metric) -> &Histogram<u64> {
        &self.hist[m as usize]
    }
    pub fn add(&mut self, other: &Latency) {
        for (a, b) in self.hist.iter_mut().zip(&other.hist) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = a.add(b);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            a.add(b);
        }
    }
    pub fn reset(&mut self) {
        for h in &mut self.hist {
            h.reset();
        }
        self.buckets = [Buckets::default(); 4];
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

    /// A value on a bound counts in that bound's bucket (`le`), one above it in the next; loop
    /// times are nanoseconds, the others microseconds; the sum is exact.
    #[test]
    fn buckets_count_each_value_once_at_its_upper_bound() {
        let mut l = Latency::default();
        l.record(Metric::Request, 10); // 10 us = bound 10_000 ns
        l.record(Metric::Request, 11); // next bucket (25 us)
        l.record(Metric::Request, 0); // clamped to 1 us: the 1 us bucket
        l.record(Metric::Request, 90_000_000); // 90 s: +Inf
        l.record(Metric::Loop, 250); // 250 ns: the first bucket
        let b = l.buckets(Metric::Request);
        let at = |ns: u64| BUCKET_BOUNDS_NS.iter().position(|&x| x == ns).unwrap();
        assert_eq!(b.counts[at(10_000)], 1);
        assert_eq!(b.counts[at(25_000)], 1);
        assert_eq!(b.counts[at(1_000)], 1);
        assert_eq!(b.counts[BUCKET_BOUNDS_NS.len()], 1);
        assert_eq!(b.count(), 4);
        assert_eq!(b.sum, 10 + 11 + 1 + 90_000_000);
        assert_eq!(l.buckets(Metric::Loop).counts[0], 1);
        let mut m = Latency::default();
        m.add(&l);
        m.add(&l);
        assert_eq!(m.buckets(Metric::Request).count(), 8);
        assert_eq!(m.get(Metric::Request).len(), 8, "the hdrhistogram counts the same");
        m.reset();
        assert_eq!(m.buckets(Metric::Request).count(), 0);
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
