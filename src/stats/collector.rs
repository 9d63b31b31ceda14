//! The collector thread: merges the workers' reports every second, prints one live line,
//! keeps the cumulative distributions, and writes `.hgrm` files and a JSON summary at exit and
//! on request (SIGUSR1).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use crossbeam::channel::{Receiver, RecvTimeoutError};

use super::latency::{Latency, Metric, hgrm};
use super::{Report, Totals, metrics};

/// Messages to the collector.
pub enum Message {
    Report(Box<Report>),
    /// Write the statistics files now.
    Dump,
}

pub struct CollectorConfig {
    /// How often the live line is logged; `None`: never.
    pub live_interval: Option<Duration>,
    pub stats_out: Option<PathBuf>,
    /// The metrics served by `metrics::serve`, given the totals after every report round.
    pub metrics: Option<Arc<metrics::Metrics>>,
    pub workers: usize,
}

/// Runs until every worker sent its last report (or the channel closes). Returns the totals.
pub fn run(cfg: CollectorConfig, rx: Receiver<Message>) -> Totals {
    let mut totals = Totals {
        last: (0..cfg.workers).map(|_| None).collect(),
        cumulative: Latency::default(),
        started: WallInstant::now(),
    };
    let mut interval = Latency::default();
    let mut prev_conns = 0u64;
    let mut prev_reqs = 0u64;
    let mut tick = WallInstant::now();
    let mut line_tick = tick;
    let mut finished = 0usize;
    loop {
        let wait = Duration::from_secs(1).saturating_sub(tick.elapsed());
        match rx.recv_timeout(wait) {
            Ok(Message::Report(r)) => {
                interval.add(&r.latency);
                totals.cumulative.add(&r.latency);
                let w = r.worker;
                let last = r.last;
                if w < totals.last.len() {
                    totals.last[w] = Some(*r);
                }
                if last {
                    finished += 1;
                    if finished >= cfg.workers {
                        break;
                    }
                }
            }
            Ok(Message::Dump) => {
                if let Some(dir) = &cfg.stats_out
                    && let Err(e) = write_files(dir, &totals)
                {
                    log::error!("synack: cannot write statistics to {}: {e}", dir.display());
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if tick.elapsed() >= Duration::from_secs(1) {
            tick = WallInstant::now();
            if let Some(every) = cfg.live_interval
                && line_tick.elapsed() + Duration::from_millis(50) >= every
            {
                let secs = line_tick.elapsed().as_secs_f64();
                line_tick = WallInstant::now();
                let conns = totals.established();
                let reqs = totals.requests();
                log::info!(
                    target: "synack::stats",
                    "{}",
                    live_line(
                        &totals,
                        &interval,
                        secs,
                        (conns - prev_conns) as f64 / secs,
                        (reqs - prev_reqs) as f64 / secs
                    )
                );
                prev_conns = conns;
                prev_reqs = reqs;
                interval.reset();
            }
            if let Some(m) = &cfg.metrics {
                m.update(&totals);
            }
        }
    }
    if let Some(m) = &cfg.metrics {
        m.update(&totals);
    }
    if let Some(dir) = &cfg.stats_out
        && let Err(e) = write_files(dir, &totals)
    {
        log::error!("synack: cannot write statistics to {}: {e}", dir.display());
    }
    totals
}

fn pct(h: &hdrhistogram::Histogram<u64>, q: f64) -> String {
    if h.is_empty() {
        return "-".into();
    }
    fmt_us(h.value_at_quantile(q))
}

fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        format!("{us}us")
    }
}

/// The live line: what happened over the last `secs` (rates and percentiles), then what
/// accumulated since start (connections, requests, drops) and the connections open now.
pub fn live_line(
    t: &Totals,
    interval: &Latency,
    secs: f64,
    conn_rate: f64,
    req_rate: f64,
) -> String {
    let hs = interval.get(Metric::Handshake);
    let rq = interval.get(Metric::Request);
    format!(
        "synack: last {secs:.0} s: {conn_rate:.0} conn/s, {req_rate:.0} req/s, handshake p50 {} p99 {} p99.9 {}, request p50 {} p99 {} p99.9 {} | since start: {} connections, {} requests, {} drops | active {}",
        pct(hs, 0.5),
        pct(hs, 0.99),
        pct(hs, 0.999),
        pct(rq, 0.5),
        pct(rq, 0.99),
        pct(rq, 0.999),
        t.established(),
        t.requests(),
        t.drops(),
        t.active(),
    )
}

/// The final summary printed at exit.
pub fn summary(t: &Totals) -> String {
    let mut s = String::new();
    let secs = t.started.elapsed().as_secs_f64().max(1e-9);
    let _ = writeln!(s, "synack: final statistics after {secs:.1} s");
    let _ = writeln!(
        s,
        "  connections {} established, requests {} ({:.0}/s), drops {}",
        t.established(),
        t.requests(),
        t.requests() as f64 / secs,
        t.drops()
    );
    for r in t.last.iter().flatten() {
        let _ = writeln!(
            s,
            "  worker {} (queue {}, core {}): rx {} tx {} frames, established {}, resets sent {}, retransmits {}, syn cookies {}/{} (sent/valid), tx waits {}, rto expirations {}, tlp probes {}, path mtu lowered {}/{} (lowered/ignored)",
            r.worker,
            r.queue,
            r.core.map_or("-".to_string(), |c| c.to_string()),
            r.frames.rx_frames,
            r.frames.tx_frames,
            r.tcp.established,
            r.tcp.resets_sent,
            r.tcp.retransmits,
            r.tcp.syn_cookies_sent,
            r.tcp.syn_cookies_validated,
            r.tcp.tx_deferred,
            r.tcp.rto_expirations,
            r.tcp.tlp_probes,
            r.tcp.pmtu_lowered,
            r.tcp.pmtu_ignored,
        );
        let drops: Vec<String> = r
            .drops()
            .into_iter()
            .filter(|d| d.2 > 0)
            .map(|(layer, why, n)| format!("{layer}/{why} {n}"))
            .collect();
        if !drops.is_empty() {
            let _ = writeln!(s, "    drops: {}", drops.join(", "));
        }
        let app: Vec<String> = r
            .app
            .iter()
            .filter(|a| a.value > 0)
            .map(|a| match a.label {
                Some((k, v)) => format!("{}{{{k}={v}}} {}", a.name, a.value),
                None => format!("{} {}", a.name, a.value),
            })
            .collect();
        if !app.is_empty() {
            let _ = writeln!(s, "    app: {}", app.join(", "));
        }
    }
    for m in Metric::ALL {
        let h = t.cumulative.get(m);
        if h.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "  {:<9} n={:<9} p50 {}{u} p99 {}{u} p99.9 {}{u} max {}{u}",
            m.name(),
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            u = m.unit()
        );
    }
    s
}

/// Writes `<metric>.hgrm` (values in milliseconds, microseconds for the loop) and
/// `summary.json` into `dir`.
pub fn write_files(dir: &Path, t: &Totals) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for m in Metric::ALL {
        // .hgrm convention: latencies in milliseconds.
        let scale = match m {
            Metric::Loop => 1000.0, // ns -> us
            _ => 1000.0,            // us -> ms
        };
        let path = dir.join(format!("{}.hgrm", m.name()));
        let mut f = std::fs::File::create(path)?;
        f.write_all(hgrm(t.cumulative.get(m), scale).as_bytes())?;
    }
    let mut f = std::fs::File::create(dir.join("summary.json"))?;
    f.write_all(json(t).as_bytes())?;
    Ok(())
}

/// The JSON summary (hand-written: a handful of numbers does not need a serializer).
pub fn json(t: &Totals) -> String {
    let mut s = String::from("{\n");
    let _ = writeln!(
        s,
        "  \"elapsed_seconds\": {:.3},",
        t.started.elapsed().as_secs_f64()
    );
    let _ = writeln!(s, "  \"connections_established\": {},", t.established());
    let _ = writeln!(s, "  \"requests\": {},", t.requests());
    let _ = writeln!(s, "  \"drops\": {},", t.drops());
    s.push_str("  \"latency\": {\n");
    let n = Metric::ALL.len();
    for (i, m) in Metric::ALL.iter().enumerate() {
        let h = t.cumulative.get(*m);
        let q = |x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        let _ = write!(
            s,
            "    \"{}\": {{\"unit\": \"{}\", \"count\": {}, \"min\": {}, \"mean\": {:.3}, \"p50\": {}, \"p90\": {}, \"p99\": {}, \"p99_9\": {}, \"max\": {}}}",
            m.name(),
            m.unit(),
            h.len(),
            if h.is_empty() { 0 } else { h.min() },
            if h.is_empty() { 0.0 } else { h.mean() },
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            h.max()
        );
        s.push_str(if i + 1 < n { ",\n" } else { "\n" });
    }
    s.push_str("  },\n  \"workers\": [\n");
    let workers: Vec<&Report> = t.last.iter().flatten().collect();
    for (i, r) in workers.iter().enumerate() {
        let _ = write!(
            s,
            "    {{\"worker\": {}, \"queue\": {}, \"rx_frames\": {}, \"tx_frames\": {}, \"established\": {}, \"retransmits\": {}, \"drops\": {}, \"requests\": {}}}",
            r.worker,
            r.queue,
            r.frames.rx_frames,
            r.frames.tx_frames,
            r.tcp.established,
            r.tcp.retransmits,
            r.total_drops(),
            r.requests
        );
        s.push_str(if i + 1 < workers.len() { ",\n" } else { "\n" });
    }
    s.push_str("  ]\n}\n");
    s
}
