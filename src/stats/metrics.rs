//! Prometheus text exposition (format 0.0.4) of the collector's totals, served over an
//! ordinary kernel socket: the management plane, not the bypass path.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Totals;
use super::latency::Metric;
use crate::tcp::state::State;

fn family(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
}

/// Renders every metric, per worker.
pub fn render(t: &Totals) -> String {
    let mut s = String::new();
    let reports: Vec<_> = t.last.iter().flatten().collect();
    let per_worker =
        |s: &mut String, name: &str, kind: &str, help: &str, f: &dyn Fn(&super::Report) -> u64| {
            family(s, name, kind, help);
            for r in &reports {
                let _ = writeln!(s, "{name}{{worker=\"{}\"}} {}", r.worker, f(r));
            }
        };
    per_worker(
        &mut s,
        "synack_rx_frames_total",
        "counter",
        "Frames received on the AF_XDP socket.",
        &|r| r.frames.rx_frames,
    );
    per_worker(
        &mut s,
        "synack_tx_frames_total",
        "counter",
        "Frames queued for transmission.",
        &|r| r.frames.tx_frames,
    );
    per_worker(
        &mut s,
        "synack_segments_in_total",
        "counter",
        "TCP segments handled by the engine.",
        &|r| r.tcp.segments_in,
    );
    per_worker(
        &mut s,
        "synack_segments_out_total",
        "counter",
        "TCP segments sent by the engine.",
        &|r| r.tcp.segments_out,
    );
    per_worker(
        &mut s,
        "synack_connections_established_total",
        "counter",
        "Handshakes completed.",
        &|r| r.tcp.established,
    );
    per_worker(
        &mut s,
        "synack_retransmits_total",
        "counter",
        "Segments retransmitted (timeout and fast retransmit).",
        &|r| r.tcp.retransmits,
    );
    per_worker(
        &mut s,
        "synack_resets_sent_total",
        "counter",
        "RST segments sent.",
        &|r| r.tcp.resets_sent,
    );
    per_worker(
        &mut s,
        "synack_challenge_acks_total",
        "counter",
        "RFC 5961 challenge ACKs sent.",
        &|r| r.tcp.challenge_acks,
    );
    per_worker(
        &mut s,
        "synack_syn_cookies_sent_total",
        "counter",
        "SYN/ACKs sent with a SYN cookie.",
        &|r| r.tcp.syn_cookies_sent,
    );
    per_worker(
        &mut s,
        "synack_syn_cookies_validated_total",
        "counter",
        "Connections opened from a valid SYN cookie.",
        &|r| r.tcp.syn_cookies_validated,
    );
    per_worker(
        &mut s,
        "synack_syn_cookies_failed_total",
        "counter",
        "ACKs whose SYN cookie did not check out.",
        &|r| r.tcp.syn_cookies_failed,
    );
    per_worker(
        &mut s,
        "synack_http_requests_total",
        "counter",
        "HTTP requests answered.",
        &|r| r.requests,
    );

    family(
        &mut s,
        "synack_drops_total",
        "counter",
        "Frames or segments dropped, by layer and reason.",
    );
    for r in &reports {
        for (layer, why, n) in r.drops() {
            let _ = writeln!(
                s,
                "synack_drops_total{{worker=\"{}\",layer=\"{layer}\",reason=\"{why}\"}} {n}",
                r.worker
            );
        }
    }
    family(
        &mut s,
        "synack_connections",
        "gauge",
        "Connections by TCP state (TIME-WAIT counts records).",
    );
    for r in &reports {
        for st in State::ALL {
            if st == State::Listen || st == State::Closed {
                continue;
            }
            let _ = writeln!(
                s,
                "synack_connections{{worker=\"{}\",state=\"{}\"}} {}",
                r.worker,
                st.name(),
                r.states[st as usize]
            );
        }
    }
    family(
        &mut s,
        "synack_http_events_total",
        "counter",
        "HTTP responder events.",
    );
    for r in &reports {
        for (k, v) in &r.app {
            let _ = writeln!(
                s,
                "synack_http_events_total{{worker=\"{}\",event=\"{k}\"}} {v}",
                r.worker
            );
        }
    }
    family(
        &mut s,
        "synack_xsk_total",
        "counter",
        "AF_XDP socket counters (XDP_STATISTICS and rings).",
    );
    for r in &reports {
        for (k, v) in &r.xsk {
            let _ = writeln!(
                s,
                "synack_xsk_total{{worker=\"{}\",counter=\"{k}\"}} {v}",
                r.worker
            );
        }
    }
    for m in Metric::ALL {
        let name = format!("synack_{}_seconds", m.name());
        family(
            &mut s,
            &name,
            "summary",
            &format!("Latency of {} since start.", m.name()),
        );
        let h = t.cumulative.get(m);
        for q in [0.5, 0.9, 0.99, 0.999] {
            let v = if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            };
            let _ = writeln!(
                s,
                "{name}{{quantile=\"{q}\"}} {:e}",
                v as f64 * m.seconds_per_unit()
            );
        }
        let sum = h.mean() * h.len() as f64 * m.seconds_per_unit();
        let _ = writeln!(s, "{name}_sum {sum:e}");
        let _ = writeln!(s, "{name}_count {}", h.len());
    }
    s
}

/// One deadline for a whole exchange: reading the request head and writing the answer. A
/// scrape takes milliseconds; a client slower than this is closed, however it trickles.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// Scrapes served at once. A connection beyond this is closed at once, not queued.
pub const MAX_CONNS: usize = 16;

/// Serves `text` on `addr` until `stop` is set. Returns the bound address (port 0 picks one).
///
/// Each connection has its own thread (at most [`MAX_CONNS`]) and one [`DEADLINE`] for the whole
/// exchange, so a slow client delays nobody but itself. A thread per connection rather than an
/// HTTP crate: the endpoint answers one fixed text to any path, and this bounded form is a few
/// lines with no new dependency.
pub fn serve(
    addr: SocketAddr,
    text: Arc<Mutex<String>>,
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
                        let text = text.clone();
                        let spawned = std::thread::Builder::new()
                            .name("synack-metrics-conn".into())
                            .spawn(move || {
                                let _guard = guard;
                                answer(conn, &text, std::time::Instant::now() + DEADLINE);
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
fn answer(mut conn: TcpStream, text: &Mutex<String>, end: std::time::Instant) {
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
    let body = text.lock().map(|g| g.clone()).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
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
    use std::time::Instant;

    fn start() -> (SocketAddr, Arc<AtomicBool>) {
        let text = Arc::new(Mutex::new("synack_up 1\n".to_string()));
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0".parse().unwrap(), text, stop.clone()).unwrap();
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
