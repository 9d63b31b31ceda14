//! Prometheus metrics of the collector's totals, served over an ordinary kernel socket: the
//! management plane, not the bypass path.
//!
//! The workers count in plain integers and measure latency into fixed buckets (see
//! [`super::latency::Buckets`]); they send them once a second. The collector keeps the latest
//! of each worker in a [`Snapshot`], and a scrape encodes that snapshot with
//! `prometheus-client`'s Prometheus text encoder (format 0.0.4, which `promtool check metrics`
//! reads), through a custom [`Collector`]: the library's own metric types (atomics) are not
//! used. Latencies are histograms merged over the workers (cumulative buckets, `_sum`,
//! `_count`), so that they aggregate over time and across servers; every counter family means
//! one thing, labelled by worker and, where it has parts, by one more label.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::Totals;
use super::latency::{BUCKET_BOUNDS_NS, Buckets, Metric};
use crate::tcp::app::{AppMetric, MetricKind};
use crate::tcp::counters::TcpCounters;
use crate::tcp::state::State;
use crate::worker::FrameCounters;

/// The `Content-Type` of the text served.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// One worker's counters, as of its latest report.
#[derive(Clone, Debug)]
pub struct WorkerSample {
    pub worker: usize,
    pub frames: FrameCounters,
    pub tcp: TcpCounters,
    pub app: Vec<AppMetric>,
    pub xsk: Vec<(&'static str, u64)>,
    pub states: [usize; State::ALL.len()],
    pub requests: u64,
}

/// What a scrape encodes; the collector refreshes it with every report round (once a second).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub workers: Vec<WorkerSample>,
    /// Every latency since start, merged over the workers, by [`Metric`].
    pub latency: [Buckets; 4],
}

impl Snapshot {
    /// The counters of every worker that reported, and the merged latency buckets.
    pub fn of(t: &Totals) -> Self {
        let workers = t
            .last
            .iter()
            .flatten()
            .map(|r| WorkerSample {
                worker: r.worker,
                frames: r.frames.clone(),
                tcp: r.tcp.clone(),
                app: r.app.clone(),
                xsk: r.xsk.clone(),
                states: r.states,
                requests: r.requests,
            })
            .collect();
        Snapshot {
            workers,
            latency: t.cumulative.buckets,
        }
    }
}

/// The metrics of one server: a registry whose collector reads the latest [`Snapshot`].
pub struct Metrics {
    registry: Registry,
    snapshot: Arc<Mutex<Snapshot>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family, with no worker yet (each family's HELP and TYPE are served from the first
    /// scrape on).
    pub fn new() -> Self {
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Families {
            snapshot: snapshot.clone(),
            start_time: process_start_time(),
        }));
        Metrics { registry, snapshot }
    }

    /// Takes in the collector's latest totals.
    pub fn update(&self, t: &Totals) {
        let s = Snapshot::of(t);
        if let Ok(mut g) = self.snapshot.lock() {
            *g = s;
        }
    }

    /// The Prometheus text of every family, now.
    pub fn render(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut s, &self.registry);
        s
    }
}

/// When this process started, in seconds since the Unix epoch (`/proc/self/stat`'s start time
/// after boot plus `/proc/stat`'s boot time); now, if those cannot be read.
fn process_start_time() -> f64 {
    let read = || -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces): state is field 3, start time 22.
        let rest = &stat[stat.rfind(')')? + 2..];
        let ticks: f64 = rest.split(' ').nth(19)?.parse().ok()?;
        let boot: f64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        // USER_HZ: the kernel reports these ticks at 100 per second on every architecture
        // Linux's ABI has (sysconf(_SC_CLK_TCK)), whatever its internal HZ.
        Some(boot + ticks / 100.0)
    };
    read().unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    })
}

/// The collector registered in [`Metrics`]'s registry.
#[derive(Debug)]
struct Families {
    snapshot: Arc<Mutex<Snapshot>>,
    start_time: f64,
}

/// A per-worker counter family: name (without `_total`), help, and the value of a worker.
type WorkerCounter = (&'static str, &'static str, fn(&WorkerSample) -> u64);

const WORKER_COUNTERS: &[WorkerCounter] = &[
    ("synack_rx_frames", "Frames received on the AF_XDP socket.", |w| w.frames.rx_frames),
    ("synack_tx_frames", "Frames queued for transmission.", |w| w.frames.tx_frames),
    ("synack_rx_bytes", "Bytes of the frames received (Ethernet header on).", |w| w.frames.rx_bytes),
    ("synack_tx_bytes", "Bytes of the frames queued for transmission (Ethernet header on).", |w| w.frames.tx_bytes),
    ("synack_forwarded_out_frames", "Frames handed to the worker that owns their connection.", |w| w.frames.forwarded_out),
    ("synack_forwarded_in_frames", "Frames received from another worker.", |w| w.frames.forwarded_in),
    ("synack_segments_in", "TCP segments handled by the engine.", |w| w.tcp.segments_in),
    ("synack_segments_out", "TCP segments sent by the engine.", |w| w.tcp.segments_out),
    ("synack_syns_received", "SYN segments received.", |w| w.tcp.syns_received),
    ("synack_synacks_sent", "SYN/ACK segments sent (retransmissions included).", |w| w.tcp.synacks_sent),
    ("synack_synack_retransmits", "SYN/ACK segments retransmitted.", |w| w.tcp.synack_retransmits),
    ("synack_active_opens", "Connections opened by this side (active open).", |w| w.tcp.active_opens),
    ("synack_syn_retransmits", "SYN segments of active opens retransmitted.", |w| w.tcp.syn_retransmits),
    ("synack_connect_failed", "Active opens that ended before the handshake completed (refused, timed out, aborted).", |w| w.tcp.connect_failed),
    ("synack_syn_cookies_sent", "SYN/ACKs sent with a SYN cookie.", |w| w.tcp.syn_cookies_sent),
    ("synack_syn_cookies_validated", "Connections opened from a valid SYN cookie.", |w| w.tcp.syn_cookies_validated),
    ("synack_syn_cookies_failed", "ACKs whose SYN cookie did not check out.", |w| w.tcp.syn_cookies_failed),
    ("synack_connections_established", "Handshakes completed (connections accepted).", |w| w.tcp.established),
    ("synack_resets_sent", "RST segments sent.", |w| w.tcp.resets_sent),
    ("synack_challenge_acks", "RFC 5961 challenge ACKs sent.", |w| w.tcp.challenge_acks),
    ("synack_acks_rate_limited", "ACKs not sent because of their rate limit.", |w| w.tcp.acks_rate_limited),
    ("synack_retransmits", "Segments retransmitted (timeout and fast retransmit).", |w| w.tcp.retransmits),
    ("synack_fast_retransmits", "Segments retransmitted on duplicate ACKs or RACK.", |w| w.tcp.fast_retransmits),
    ("synack_rto_expirations", "Retransmission timeouts that fired.", |w| w.tcp.rto_expirations),
    ("synack_tlp_probes", "RFC 8985 tail loss probes sent.", |w| w.tcp.tlp_probes),
    ("synack_rack_losses", "Segments RACK found lost.", |w| w.tcp.rack_losses),
    ("synack_out_of_order_segments", "Segments received out of order.", |w| w.tcp.out_of_order),
    ("synack_zero_window_probes", "Zero window probes sent.", |w| w.tcp.zero_window_probes),
    ("synack_ofo_prunes", "Times a connection's out-of-order data was pruned to make room.", |w| w.tcp.ofo_pruned),
    ("synack_time_wait_entered", "Connections that entered TIME-WAIT.", |w| w.tcp.time_wait_entered),
    ("synack_time_wait_reused", "TIME-WAIT records reused by a new SYN.", |w| w.tcp.time_wait_reused),
    ("synack_time_wait_overflow", "Connections closed without a TIME-WAIT record (table full).", |w| w.tcp.time_wait_overflow),
    ("synack_tx_deferred", "Times a connection's output waited for transmit room.", |w| w.tcp.tx_deferred),
    ("synack_pmtu_lowered", "ICMP fragmentation-needed / ICMPv6 packet-too-big messages that lowered a connection's MSS.", |w| w.tcp.pmtu_lowered),
    ("synack_pmtu_ignored", "Path-MTU messages ignored: no such connection, sequence number not in flight (RFC 5927), or no smaller MSS.", |w| w.tcp.pmtu_ignored),
    ("synack_requests", "Requests the application answered (HTTP: final responses).", |w| w.requests),
];

/// The latency histograms: metric, family name, help.
const HISTOGRAMS: [(Metric, &str, &str); 4] = [
    (Metric::Handshake, "synack_handshake_duration_seconds", "SYN received to the handshake's final ACK."),
    (Metric::Request, "synack_request_duration_seconds", "Request complete to its last response byte handed to the TX ring."),
    (Metric::Lifetime, "synack_connection_duration_seconds", "SYN received to the end of the connection."),
    (Metric::Loop, "synack_loop_duration_seconds", "One worker loop iteration that handled frames."),
];

/// A sample's labels: the worker's, then the family's own.
type Labels = Vec<(&'static str, String)>;

fn worker_label(w: &WorkerSample) -> Labels {
    vec![("worker", w.worker.to_string())]
}

fn counter(m: &mut MetricEncoder, labels: &Labels, v: u64) -> Result<(), std::fmt::Error> {
    ConstCounter::new(v).encode(m.encode_family(labels)?)
}

fn gauge(m: &mut MetricEncoder, labels: &Labels, v: i64) -> Result<(), std::fmt::Error> {
    ConstGauge::new(v).encode(m.encode_family(labels)?)
}

impl Collector for Families {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self
            .snapshot
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        let ws = &snap.workers;

        let mut info = enc.encode_descriptor(
            "synack_build_info",
            "The synack build serving: version and, when built with SYNACK_COMMIT set, commit.",
            None,
            MetricType::Gauge,
        )?;
        let mut labels: Labels = vec![("version", env!("CARGO_PKG_VERSION").to_string())];
        if let Some(c) = option_env!("SYNACK_COMMIT") {
            labels.push(("commit", c.to_string()));
        }
        gauge(&mut info, &labels, 1)?;
        ConstGauge::new(self.start_time).encode(enc.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            None,
            MetricType::Gauge,
        )?)?;

        for (name, help, f) in WORKER_COUNTERS {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for w in ws {
                counter(&mut m, &worker_label(w), f(w))?;
            }
        }

        let mut m = enc.encode_descriptor(
            "synack_connections_closed",
            "Connections ended, by how: normal (both sides closed), reset (by the peer), timeout (retransmissions ran out), aborted (by the server).",
            None,
            MetricType::Counter,
        )?;
        for w in ws {
            for (why, n) in [
                ("normal", w.tcp.closed_normal),
                ("reset", w.tcp.closed_reset),
                ("timeout", w.tcp.closed_timeout),
                ("aborted", w.tcp.closed_aborted),
            ] {
                let mut l = worker_label(w);
                l.push(("reason", why.to_string()));
                counter(&mut m, &l, n)?;
            }
        }

        let mut m = enc.encode_descriptor(
            "synack_drops",
            "Frames or segments dropped, by layer and reason.",
            None,
            MetricType::Counter,
        )?;
        for w in ws {
            for (layer, why, n) in drops(&w.frames, &w.tcp) {
                let mut l = worker_label(w);
                l.push(("layer", layer.to_string()));
                l.push(("reason", why.to_string()));
                counter(&mut m, &l, n)?;
            }
        }

        let mut m = enc.encode_descriptor(
            "synack_connections",
            "Connections by TCP state (TIME-WAIT counts records).",
            None,
            MetricType::Gauge,
        )?;
        for w in ws {
            for st in State::ALL {
                if st == State::Listen || st == State::Closed {
                    continue;
                }
                let mut l = worker_label(w);
                l.push(("state", st.name().to_string()));
                gauge(&mut m, &l, w.states[st as usize] as i64)?;
            }
        }

        // AF_XDP socket counters: each its own family (they count different things).
        if let Some(first) = ws.first() {
            for (i, (name, _)) in first.xsk.iter().enumerate() {
                let family = format!("synack_xsk_{name}");
                let help = format!("AF_XDP socket counter {name} (XDP_STATISTICS or the rings).");
                let mut m = enc.encode_descriptor(&family, &help, None, MetricType::Counter)?;
                for w in ws {
                    if let Some((_, n)) = w.xsk.get(i) {
                        counter(&mut m, &worker_label(w), *n)?;
                    }
                }
            }
        }

        // The application's families, in the order the first worker lists them.
        let mut done: Vec<&str> = Vec::new();
        for a in ws.iter().flat_map(|w| &w.app) {
            if done.contains(&a.name) {
                continue;
            }
            done.push(a.name);
            let family = format!("synack_{}", a.name);
            let kind = match a.kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
            };
            let mut m = enc.encode_descriptor(&family, a.help, None, kind)?;
            for w in ws {
                for s in w.app.iter().filter(|s| s.name == a.name) {
                    let mut l = worker_label(w);
                    if let Some((k, v)) = s.label {
                        l.push((k, v.to_string()));
                    }
                    match a.kind {
                        MetricKind::Counter => counter(&mut m, &l, s.value)?,
                        MetricKind::Gauge => {
                            gauge(&mut m, &l, i64::try_from(s.value).unwrap_or(i64::MAX))?
                        }
                    }
                }
            }
        }

        for (metric, name, help) in HISTOGRAMS {
            let b = &snap.latency[metric as usize];
            let bounds: Vec<(f64, u64)> = BUCKET_BOUNDS_NS
                .iter()
                .map(|&ns| ns as f64 / 1e9)
                .chain([f64::INFINITY])
                .zip(b.counts)
                .collect();
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
            m.encode_histogram(
                b.sum as f64 * metric.seconds_per_unit(),
                b.count(),
                &bounds,
                None::<&std::collections::HashMap<usize, Exemplar<Labels, f64>>>,
            )?;
        }
        Ok(())
    }
}

/// Every drop of a worker, by layer and reason.
fn drops(
    frames: &FrameCounters,
    tcp: &TcpCounters,
) -> impl Iterator<Item = (&'static str, &'static str, u64)> {
    let wire = crate::wire::DropReason::ALL
        .into_iter()
        .map(|r| ("wire", r.as_str(), frames.wire_drops[r as usize]));
    let worker = crate::worker::WorkerDrop::ALL
        .into_iter()
        .map(|r| ("worker", r.as_str(), frames.worker_drops[r as usize]));
    let tcp = crate::tcp::counters::TcpDrop::ALL
        .into_iter()
        .map(|r| ("tcp", r.as_str(), tcp.drops[r as usize]));
    wire.chain(worker).chain(tcp).collect::<Vec<_>>().into_iter()
}

/// One deadline for a whole exchange: reading the request head and writing the answer. A
/// scrape takes milliseconds; a client slower than this is closed, however it trickles.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// Scrapes served at once. A connection beyond this is closed at once, not queued.
pub const MAX_CONNS: usize = 16;

/// What a scrape answers: the text, encoded when asked.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves what `render` returns on `addr` until `stop` is set. Returns the bound address (port 0 picks one).
///
/// Each connection has its own thread (at most [`MAX_CONNS`]) and one [`DEADLINE`] for the whole
/// exchange, so a slow client delays nobody but itself. A thread per connection rather than an
/// HTTP crate: the endpoint answers one fixed text to any path, and this bounded form is a few
/// lines with no new dependency.
pub fn serve(
    addr: SocketAddr,
    render: Render,
    stop: Arc<AtomicBool>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("synack-metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        // Over the bound: the connection is dropped (closed) here.
                        if active.load(Ordering::Acquire) >= MAX_CONNS {
                            continue;
                        }
                        active.fetch_add(1, Ordering::AcqRel);
                        let guard = ActiveGuard(active.clone());
                        let render = render.clone();
                        let spawned = std::thread::Builder::new()
                            .name("synack-metrics-conn".into())
                            .spawn(move || {
                                let _guard = guard;
                                answer(conn, &*render, std::time::Instant::now() + DEADLINE);
                            });
                        // On failure the closure, with the guard and the connection, is dropped.
                        drop(spawned);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })?;
    Ok(bound)
}

/// Counts a connection being served for as long as it lives.
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Time left before `end`, or `None` once it has passed (a zero timeout is not allowed).
fn left(end: std::time::Instant) -> Option<Duration> {
    Some(end.saturating_duration_since(std::time::Instant::now())).filter(|d| !d.is_zero())
}

/// Reads the request head (bounded) and answers the metrics to any path, all before `end`;
/// past it the connection is closed without an answer.
fn answer(mut conn: TcpStream, render: &(dyn Fn() -> String + Send + Sync), end: std::time::Instant) {
    if conn.set_nonblocking(false).is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    let mut got = 0;
    while got < buf.len() {
        let Some(d) = left(end) else { return };
        if conn.set_read_timeout(Some(d)).is_err() {
            return;
        }
        match conn.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
    let body = render();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    let mut sent = 0;
    while sent < out.len() {
        let Some(d) = left(end) else { return };
        if conn.set_write_timeout(Some(d)).is_err() {
            return;
        }
        match conn.write(&out[sent..]) {
            Ok(0) => return,
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Latency, Report};
    use std::time::Instant;

    /// Two workers' reports: requests, responses by class, latencies, a drop.
    fn totals() -> Totals {
        let report = |worker: usize, requests: u64| {
            let mut latency = Latency::default();
            for us in [3, 40, 40, 700, 2_000_000] {
                latency.record(Metric::Request, us);
            }
            latency.record(Metric::Loop, 800);
            let frames = FrameCounters {
                rx_frames: 10 + worker as u64,
                rx_bytes: 1000,
                ..Default::default()
            };
            let mut tcp = TcpCounters {
                closed_reset: 2,
                ..Default::default()
            };
            tcp.drops[crate::tcp::counters::TcpDrop::Paws as usize] = 1;
            Report {
                worker,
                queue: worker as u32,
                core: None,
                frames,
                tcp,
                app: vec![
                    AppMetric::counter("http_responses", "By class.", requests - 1)
                        .with_label("class", "2xx"),
                    AppMetric::counter("http_responses", "By class.", 1).with_label("class", "4xx"),
                    AppMetric::gauge("kv_items", "Items.", 7),
                ],
                xsk: vec![("rx_dropped", 0)],
                states: [0; State::ALL.len()],
                latency,
                requests,
                last: false,
            }
        };
        let mut t = Totals {
            last: vec![Some(report(0, 5)), Some(report(1, 6))],
            cumulative: Latency::default(),
            started: Instant::now(),
        };
        for r in t.last.iter().flatten() {
            let l = r.latency.clone();
            t.cumulative.add(&l);
        }
        t
    }

    fn lines_of(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(String::from)
            .collect()
    }

    /// Histograms merged over the workers with cumulative buckets; counters per worker with
    /// HELP and TYPE under their `_total` name; one label per family's parts; gauges; the
    /// build and start time.
    #[test]
    fn families_render_as_prometheus_text() {
        let m = Metrics::new();
        m.update(&totals());
        let text = m.render();
        for l in [
            "# TYPE synack_rx_frames_total counter",
            "synack_rx_frames_total{worker=\"0\"} 10",
            "synack_rx_frames_total{worker=\"1\"} 11",
            "synack_rx_bytes_total{worker=\"1\"} 1000",
            "synack_requests_total{worker=\"1\"} 6",
            "synack_connections_closed_total{worker=\"0\",reason=\"reset\"} 2",
            "synack_drops_total{worker=\"0\",layer=\"tcp\",reason=\"paws\"} 1",
            "# TYPE synack_http_responses_total counter",
            "synack_http_responses_total{worker=\"0\",class=\"2xx\"} 4",
            "synack_http_responses_total{worker=\"1\",class=\"4xx\"} 1",
            "# TYPE synack_kv_items gauge",
            "synack_kv_items{worker=\"1\"} 7",
            "# TYPE synack_request_duration_seconds histogram",
            // 3 us twice (one per worker), then 40 us four times...
            "synack_request_duration_seconds_bucket{le=\"5e-06\"} 2",
            "synack_request_duration_seconds_bucket{le=\"5e-05\"} 6",
            "synack_request_duration_seconds_bucket{le=\"0.001\"} 8",
            "synack_request_duration_seconds_bucket{le=\"2.5\"} 10",
            "synack_request_duration_seconds_bucket{le=\"+Inf\"} 10",
            "synack_request_duration_seconds_count 10",
            "synack_loop_duration_seconds_bucket{le=\"1e-06\"} 2",
            "synack_handshake_duration_seconds_count 0",
            "# TYPE process_start_time_seconds gauge",
        ] {
            assert!(text.lines().any(|x| x == l), "no line {l:?} in\n{text}");
        }
        let sum = lines_of(&text, "synack_request_duration_seconds_sum ");
        let v: f64 = sum[0].rsplit(' ').next().unwrap().parse().unwrap();
        assert!((v - 2.0 * 2.000783).abs() < 1e-9, "{sum:?}");
        let build = lines_of(&text, "synack_build_info{");
        assert_eq!(build.len(), 1, "{text}");
        assert!(build[0].contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))));
        assert!(build[0].ends_with("} 1"));
        let start = lines_of(&text, "process_start_time_seconds ");
        let start: f64 = start[0].rsplit(' ').next().unwrap().parse().unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(start <= now + 1.0 && start > now - 24.0 * 3600.0 * 365.0, "{start}");
        // Buckets are cumulative, in order.
        let counts: Vec<u64> = lines_of(&text, "synack_request_duration_seconds_bucket")
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(counts.len(), BUCKET_BOUNDS_NS.len() + 1);
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        // No family of mixed meanings is left.
        assert!(!text.contains("events_total"), "{text}");
    }

    /// `promtool check metrics` (Debian's prometheus package) finds nothing to say, with and
    /// without workers. Skipped where promtool is missing: tests/metrics.rs requires it.
    #[test]
    fn promtool_finds_no_problem() {
        let empty = Metrics::new().render();
        let m = Metrics::new();
        m.update(&totals());
        for text in [empty, m.render()] {
            let child = std::process::Command::new("promtool")
                .args(["check", "metrics"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn();
            let Ok(mut child) = child else {
                eprintln!("SKIP: promtool is not installed");
                return;
            };
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
                "promtool: {}{}\n{text}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn start() -> (SocketAddr, Arc<AtomicBool>) {
        let stop = Arc::new(AtomicBool::new(false));
        let render: Render = Arc::new(|| "synack_up 1\n".to_string());
        let addr = serve("127.0.0.1:0".parse().unwrap(), render, stop.clone()).unwrap();
        (addr, stop)
    }

    /// One full scrape; `Err` if it does not end within `wait`.
    fn scrape(addr: SocketAddr, wait: Duration) -> std::io::Result<String> {
        let mut c = TcpStream::connect(addr)?;
        c.set_read_timeout(Some(wait))?;
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut out = Vec::new();
        c.read_to_end(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Whether the server closed `c` (EOF or reset) within `wait`; `false` if it still holds it.
    fn closed_by_server(c: &mut TcpStream, wait: Duration) -> bool {
        c.set_read_timeout(Some(wait)).unwrap();
        let mut b = [0u8; 1];
        match c.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    /// A client trickling its request a byte every 200 ms neither delays a concurrent scrape nor
    /// holds its connection past the one deadline a request has.
    #[test]
    fn a_slow_client_neither_delays_a_scrape_nor_outlives_its_deadline() {
        let (addr, stop) = start();
        let sent = Arc::new(AtomicUsize::new(0));
        let slow = {
            let sent = sent.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_nonblocking(true).unwrap();
                // A head that would take 40 s at this pace: it never completes.
                let head = format!("GET /metrics HTTP/1.1\r\nX-Pad: {}", "a".repeat(200));
                for b in head.bytes() {
                    if c.write_all(&[b]).is_err() {
                        return Some(start.elapsed());
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    let mut r = [0u8; 64];
                    match c.read(&mut r) {
                        Ok(0) => return Some(start.elapsed()),
                        Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                            return Some(start.elapsed());
                        }
                        _ => {}
                    }
                    if start.elapsed() > Duration::from_secs(20) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                None
            })
        };
        // The slow client is connected and talking.
        let t = Instant::now();
        while sent.load(Ordering::SeqCst) < 3 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "slow client never sent"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let answer = scrape(addr, Duration::from_secs(10))
            .expect("a scrape must not wait for the slow client");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("synack_up 1\n"), "{answer}");
        assert!(
            !slow.is_finished(),
            "the scrape was served only after the slow client was gone"
        );
        let dropped = slow
            .join()
            .unwrap()
            .expect("the slow client was never dropped");
        assert!(
            dropped <= DEADLINE + Duration::from_secs(3),
            "slow client held for {dropped:?}"
        );
        assert!(
            dropped >= DEADLINE,
            "dropped at {dropped:?}, before its deadline"
        );
        stop.store(true, Ordering::Relaxed);
    }

    /// Beyond the bound, a connection is closed at once rather than queued; those within it are
    /// still served.
    #[test]
    fn connections_beyond_the_bound_are_closed_not_queued() {
        let (addr, stop) = start();
        let mut held: Vec<TcpStream> = (0..MAX_CONNS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let mut extra = TcpStream::connect(addr).unwrap();
        assert!(
            closed_by_server(&mut extra, DEADLINE / 2),
            "connection {} was queued, not closed",
            MAX_CONNS + 1
        );
        let first = &mut held[0];
        first.set_read_timeout(Some(DEADLINE)).unwrap();
        first
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        first.read_to_end(&mut out).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        drop(held);
        // Once they are gone, new scrapes are served again.
        let t = Instant::now();
        loop {
            match scrape(addr, DEADLINE) {
                Ok(a) if a.starts_with("HTTP/1.1 200 OK\r\n") => break,
                _ => assert!(t.elapsed() < 2 * DEADLINE, "no scrape served"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
    }
}
