//! The load generator's report: wrk's summary layout (so that scripts written for wrk read it),
//! then the figures wrk does not give, a JSON summary and a `.hgrm` file.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::app::{Counts, Mode, WorkerResult};

/// All workers' results together.
pub(crate) struct Summary {
    pub counts: Counts,
    pub latency: Histogram<u64>,
    pub rates: Histogram<u64>,
    pub workers: usize,
    pub duration: Duration,
}

impl Summary {
    pub(crate) fn merge(results: Vec<WorkerResult>, duration: Duration) -> Summary {
        let mut s = Summary {
            counts: Counts::default(),
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds"),
            rates: Histogram::new_with_bounds(1, 100_000_000, 3).expect("bounds"),
            workers: results.len(),
            duration,
        };
        for r in results {
            let c = &mut s.counts;
            let o = r.counts;
            c.requests_sent += o.requests_sent;
            c.responses += o.responses;
            c.status_2xx_3xx += o.status_2xx_3xx;
            c.non_2xx_3xx += o.non_2xx_3xx;
            c.bytes_read += o.bytes_read;
            c.connects += o.connects;
            c.established += o.established;
            c.completed += o.completed;
            c.connect_refused += o.connect_refused;
            c.connect_timeouts += o.connect_timeouts;
            c.connect_no_room += o.connect_no_room;
            c.resets += o.resets;
            c.closed_pending += o.closed_pending;
            c.bad_responses += o.bad_responses;
            c.bad_bodies += o.bad_bodies;
            c.timeouts += o.timeouts;
            if c.first_bad.is_none() {
                c.first_bad = o.first_bad;
            }
            let _ = s.latency.add(&r.latency);
            let _ = s.rates.add(&r.rates);
        }
        s
    }

    fn secs(&self) -> f64 {
        self.duration.as_secs_f64().max(1e-9)
    }

    /// wrk's socket error classes: connect, read (resets, early closes, bad responses),
    /// write (none: sends never fail here), timeout.
    pub(crate) fn socket_errors(&self) -> (u64, u64, u64, u64) {
        let c = &self.counts;
        (
            c.connect_refused + c.connect_timeouts,
            c.resets + c.closed_pending + c.bad_responses + c.bad_bodies,
            0,
            c.timeouts,
        )
    }

    pub(crate) fn errors(&self) -> u64 {
        let (a, b, c, d) = self.socket_errors();
        a + b + c + d + self.counts.non_2xx_3xx
    }
}

/// wrk's time units: the value in microseconds.
fn time_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.2}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else if us < 60_000_000.0 {
        format!("{:.2}s", us / 1e6)
    } else {
        format!("{:.2}m", us / 60e6)
    }
}

/// wrk's metric units (k, M, G).
fn metric(v: f64) -> String {
    if v < 1000.0 {
        format!("{v:.2}")
    } else if v < 1e6 {
        format!("{:.2}k", v / 1e3)
    } else if v < 1e9 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.2}G", v / 1e9)
    }
}

/// wrk's byte units (KB, MB, GB of 1024).
fn bytes(v: f64) -> String {
    if v < 1024.0 {
        format!("{v:.2}B")
    } else if v < 1024.0 * 1024.0 {
        format!("{:.2}KB", v / 1024.0)
    } else if v < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}MB", v / 1024.0 / 1024.0)
    } else {
        format!("{:.2}GB", v / 1024.0 / 1024.0 / 1024.0)
    }
}

/// The share of recorded values within one standard deviation of the mean (wrk's
/// "+/- Stdev").
fn within_stdev(h: &Histogram<u64>) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    let (mean, sd) = (h.mean(), h.stdev());
    let (lo, hi) = (mean - sd, mean + sd);
    let inside: u64 = h
        .iter_recorded()
        .filter(|v| {
            let x = v.value_iterated_to() as f64;
            x >= lo && x <= hi
        })
        .map(|v| v.count_at_value())
        .sum();
    100.0 * inside as f64 / h.len() as f64
}

/// The text report. `what` is the URL, `mode` and `pipeline` as given.
pub(crate) fn text(s: &Summary, url: &str, mode: Mode, pipeline: usize, conns: usize) -> String {
    let mut o = String::new();
    let c = &s.counts;
    let _ = writeln!(o, "Running {}s test @ {url}", s.duration.as_secs());
    let _ = writeln!(o, "  {} threads and {conns} connections", s.workers);
    let _ = writeln!(o, "  Thread Stats   Avg      Stdev     Max   +/- Stdev");
    let l = &s.latency;
    let _ = writeln!(
        o,
        "    Latency {:>9} {:>9} {:>9} {:>8.2}%",
        time_us(l.mean()),
        time_us(l.stdev()),
        time_us(l.max() as f64),
        within_stdev(l)
    );
    let r = &s.rates;
    let _ = writeln!(
        o,
        "    Req/Sec {:>9} {:>9} {:>9} {:>8.2}%",
        metric(r.mean()),
        metric(r.stdev()),
        metric(r.max() as f64),
        within_stdev(r)
    );
    let _ = writeln!(o, "  Latency Distribution");
    for p in [50.0, 75.0, 90.0, 99.0] {
        let _ = writeln!(
            o,
            "{:>7.0}% {:>9}",
            p,
            time_us(l.value_at_quantile(p / 100.0) as f64)
        );
    }
    let _ = writeln!(
        o,
        "  {} requests in {:.2}s, {} read",
        c.responses,
        s.secs(),
        bytes(c.bytes_read as f64)
    );
    let (ce, re, we, te) = s.socket_errors();
    if ce + re + we + te > 0 {
        let _ = writeln!(
            o,
            "  Socket errors: connect {ce}, read {re}, write {we}, timeout {te}"
        );
    }
    if c.non_2xx_3xx > 0 {
        let _ = writeln!(o, "  Non-2xx or 3xx responses: {}", c.non_2xx_3xx);
    }
    let _ = writeln!(o, "Requests/sec: {:>10.2}", c.responses as f64 / s.secs());
    let _ = writeln!(
        o,
        "Transfer/sec: {:>10}",
        bytes(c.bytes_read as f64 / s.secs())
    );
    // What wrk does not print.
    let _ = writeln!(
        o,
        "Connections/sec: {:.2}  (established {}, completed {}, opened {}; mode {}, pipeline {pipeline})",
        c.completed as f64 / s.secs(),
        c.established,
        c.completed,
        c.connects,
        match mode {
            Mode::KeepAlive => "keepalive",
            Mode::Close => "close",
        }
    );
    let q = |p: f64| time_us(l.value_at_quantile(p) as f64);
    let _ = writeln!(
        o,
        "Latency: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        time_us(l.max() as f64),
        l.len()
    );
    let _ = writeln!(
        o,
        "Errors: {}  (connect refused {}, connect timeouts {}, resets {}, closed with requests pending {}, bad responses {}, bad bodies {}, timeouts {}, non-2xx/3xx {}){}",
        s.errors(),
        c.connect_refused,
        c.connect_timeouts,
        c.resets,
        c.closed_pending,
        c.bad_responses,
        c.bad_bodies,
        c.timeouts,
        c.non_2xx_3xx,
        c.first_bad
            .map(|w| format!("; first bad response: {w}"))
            .unwrap_or_default()
    );
    o
}

/// The JSON summary (a flat object of numbers; hand-written as the server's is).
pub(crate) fn json(s: &Summary, url: &str, mode: Mode, pipeline: usize, conns: usize) -> String {
    let c = &s.counts;
    let l = &s.latency;
    let (ce, re, we, te) = s.socket_errors();
    let mut o = String::from("{\n");
    let mut field = |k: &str, v: String| {
        let _ = writeln!(o, "  \"{k}\": {v},");
    };
    field("url", format!("\"{}\"", url.replace('"', "\\\"")));
    field(
        "mode",
        format!(
            "\"{}\"",
            match mode {
                Mode::KeepAlive => "keepalive",
                Mode::Close => "close",
            }
        ),
    );
    field("pipeline", pipeline.to_string());
    field("connections", conns.to_string());
    field("threads", s.workers.to_string());
    field("duration_s", format!("{:.3}", s.secs()));
    field("requests", c.responses.to_string());
    field(
        "requests_per_sec",
        format!("{:.2}", c.responses as f64 / s.secs()),
    );
    field(
        "connections_per_sec",
        format!("{:.2}", c.completed as f64 / s.secs()),
    );
    field("bytes_read", c.bytes_read.to_string());
    field("requests_sent", c.requests_sent.to_string());
    field("established", c.established.to_string());
    field("completed", c.completed.to_string());
    for (k, p) in [
        ("latency_p50_us", 0.5),
        ("latency_p90_us", 0.9),
        ("latency_p99_us", 0.99),
        ("latency_p999_us", 0.999),
    ] {
        field(k, l.value_at_quantile(p).to_string());
    }
    field("latency_max_us", l.max().to_string());
    field("latency_mean_us", format!("{:.2}", l.mean()));
    field("errors", s.errors().to_string());
    field("socket_errors_connect", ce.to_string());
    field("socket_errors_read", re.to_string());
    field("socket_errors_write", we.to_string());
    field("socket_errors_timeout", te.to_string());
    field("connect_refused", c.connect_refused.to_string());
    field("connect_timeouts", c.connect_timeouts.to_string());
    field("resets", c.resets.to_string());
    field("closed_with_requests_pending", c.closed_pending.to_string());
    field("bad_responses", c.bad_responses.to_string());
    field("bad_bodies", c.bad_bodies.to_string());
    field("timeouts", c.timeouts.to_string());
    let _ = writeln!(o, "  \"non_2xx_3xx\": {}\n}}", c.non_2xx_3xx);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_as_wrk_prints_them() {
        assert_eq!(time_us(635.914), "635.91us");
        assert_eq!(time_us(12_920.0), "12.92ms");
        assert_eq!(time_us(2_500_000.0), "2.50s");
        assert_eq!(metric(56_200.0), "56.20k");
        assert_eq!(bytes(132.31 * 1024.0 * 1024.0), "132.31MB");
    }

    #[test]
    fn error_lines_only_when_there_are_errors() {
        let mut s = Summary::merge(Vec::new(), Duration::from_secs(2));
        s.counts.responses = 200;
        s.latency.record(100).unwrap();
        let t = text(&s, "http://x/", Mode::KeepAlive, 1, 4);
        assert!(t.contains("Requests/sec:     100.00"), "{t}");
        assert!(
            !t.contains("Socket errors") && !t.contains("Non-2xx"),
            "{t}"
        );
        s.counts.timeouts = 3;
        s.counts.non_2xx_3xx = 5;
        let t = text(&s, "http://x/", Mode::KeepAlive, 1, 4);
        assert!(
            t.contains("  Socket errors: connect 0, read 0, write 0, timeout 3\n"),
            "{t}"
        );
        assert!(t.contains("  Non-2xx or 3xx responses: 5\n"), "{t}");
        assert!(json(&s, "http://x/", Mode::Close, 1, 4).contains("\"timeouts\": 3,"));
    }
}
