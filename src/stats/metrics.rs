//! Prometheus text exposition (format 0.0.4) of the collector's totals, served over an
//! ordinary kernel socket: the management plane, not the bypass path.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::collector::Totals;
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

/// Serves `text` on `addr` until `stop` is set. Returns the bound address (port 0 picks one).
pub fn serve(
    addr: SocketAddr,
    text: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new().name("synack-metrics".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
                    // Read the request head (bounded); any path gets the metrics.
                    let mut buf = [0u8; 4096];
                    let mut got = 0;
                    while got < buf.len() {
                        match conn.read(&mut buf[got..]) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                got += n;
                                if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                                    break;
                                }
                            }
                        }
                    }
                    let body = text.lock().map(|g| g.clone()).unwrap_or_default();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes());
                    let _ = conn.write_all(body.as_bytes());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })?;
    Ok(bound)
}
