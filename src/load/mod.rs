//! `synack load`: an HTTP/1.1 load generator on the library's runtime ([`Client`]), one more
//! [`App`](crate::App) on it. Its TCP is synack's engine (the active open), its frames go
//! through AF_XDP like the server's, so it saturates servers that wrk, on the kernel's
//! stack, cannot. Output in wrk's layout, plus what wrk does not give.

mod app;
mod report;
mod response;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};

use crate::server::Client;
use app::{LoadApp, LoadPlan, MAX_PIPELINE, Mode};

/// `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Connections stay open; each sends its next request when a response ends.
    Keepalive,
    /// One request per connection (`Connection: close`): a request is a connection.
    Close,
}

/// `synack load`: the flags.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// The URL to load: http://IP:PORT/PATH (an address, not a name; IPv6 in brackets).
    #[arg(value_name = "URL")]
    pub url: String,
    /// Interface to send from (the one that reaches the server).
    #[arg(long, value_name = "IF")]
    pub iface: String,
    /// Source addresses: an address or a prefix (ADDR/LEN), repeatable (default: the
    /// interface's address of the server's family). Addresses the interface does not have are
    /// answered for (ARP, neighbour discovery) while the run lasts; the server must reach them
    /// on the link or through a route to this host.
    #[arg(long = "src", value_name = "ADDR[/LEN]")]
    pub src: Vec<String>,
    /// Connections to keep open (in close mode: connections at once).
    #[arg(short = 'c', long, value_name = "N", default_value_t = 64)]
    pub connections: usize,
    /// Duration of the run, in seconds.
    #[arg(short = 'd', long, value_name = "SECS", default_value_t = 10)]
    pub duration: u64,
    /// keepalive: requests on open connections; close: a connection per request.
    #[arg(long, value_enum, default_value_t = ModeArg::Keepalive)]
    pub mode: ModeArg,
    /// Requests in flight per connection (keepalive).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub pipeline: usize,
    /// Open loop: this many requests (close mode: connections) per second in all, each timed
    /// from when it was due, not from when it could be sent (coordinated omission corrected,
    /// as wrk2).
    #[arg(short = 'R', long, value_name = "R")]
    pub rate: Option<f64>,
    /// NIC queues to use, one worker each.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub queues: u32,
    /// Cores to pin the workers to, e.g. "0" or "0,1" (default: the first N cores, leaving
    /// the last to a server on the same machine).
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
    /// A request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub header: Vec<String>,
    /// The request method (GET, HEAD, ...; a body is not sent).
    #[arg(long, value_name = "METHOD", default_value = "GET")]
    pub method: String,
    /// Seconds a request may wait for its response before it counts as a timeout.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub timeout: f64,
    /// SYN retransmissions (1 s, 2 s, ...) before a connect fails.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub syn_retries: u32,
    /// Check every response body against this file (length and CRC-32).
    #[arg(long, value_name = "FILE")]
    pub expect_body: Option<PathBuf>,
    /// Also write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the latency distribution to FILE (HdrHistogram's .hgrm, milliseconds).
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// The server's MAC (default: the kernel's neighbour table, resolved at start).
    #[arg(long, value_name = "MAC")]
    pub dst_mac: Option<String>,
    /// Source ports to use, FIRST-LAST (split between the workers).
    #[arg(long, value_name = "FIRST-LAST", default_value = "32768-60999")]
    pub ports: String,
}

/// A parsed `http://IP:PORT/PATH`.
fn parse_url(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: give an http:// URL (https is not supported)"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = authority
        .parse()
        .or_else(|_| {
            authority
                .parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, 80))
        })
        .or_else(|_| {
            authority
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, 80))
        })
        .map_err(|_| {
            format!(
                "{url}: the host must be an IP address (http://198.18.0.1:8080/ or \
                 http://[fd00::1]:8080/); synack load does not resolve names"
            )
        })?;
    if addr.port() == 0 {
        return Err(format!("{url}: port 0 cannot be connected to"));
    }
    Ok((addr, authority.to_string(), path.to_string()))
}

fn parse_src(s: &str) -> Result<(IpAddr, Option<u8>), String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            Some(
                l.parse::<u8>()
                    .map_err(|_| format!("--src {s}: the prefix length is not a number"))?,
            ),
        ),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("--src {s}: not an IP address or prefix (198.19.0.0/24)"))?;
    Ok((ip, len))
}

/// The request every connection sends.
fn request(method: &str, host: &str, path: &str, headers: &[String], close: bool) -> Bytes {
    let mut r = format!("{method} {path} HTTP/1.1\r\n");
    let has = |name: &str| {
        headers.iter().any(|h| {
            h.split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
    };
    if !has("host") {
        r.push_str(&format!("Host: {host}\r\n"));
    }
    for h in headers {
        r.push_str(h.trim());
        r.push_str("\r\n");
    }
    if close && !has("connection") {
        r.push_str("Connection: close\r\n");
    }
    r.push_str("\r\n");
    Bytes::from(r)
}

/// Runs `synack load` and prints its report.
pub fn run(a: LoadArgs) -> Result<(), String> {
    let (remote, host, path) = parse_url(&a.url)?;
    if a.connections == 0 {
        return Err("-c must be at least 1".into());
    }
    if a.duration == 0 || a.duration > 3600 {
        return Err("-d must be from 1 to 3600 seconds".into());
    }
    if a.pipeline == 0 || a.pipeline > MAX_PIPELINE {
        return Err(format!("--pipeline must be from 1 to {MAX_PIPELINE}"));
    }
    if a.mode == ModeArg::Close && a.pipeline > 1 {
        return Err(
            "--pipeline needs --mode keepalive (close mode sends one request per connection)"
                .into(),
        );
    }
    if let Some(r) = a.rate
        && !(r.is_finite() && r > 0.0)
    {
        return Err("--rate must be a positive number of requests per second".into());
    }
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    if a.method.is_empty() || !a.method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "--method {}: give an HTTP method in capitals (GET, HEAD)",
            a.method
        ));
    }
    for h in &a.header {
        if !h.contains(':') || h.contains('\r') || h.contains('\n') {
            return Err(format!("--header {h:?}: give \"Name: value\""));
        }
    }
    let (first_port, last_port) = a
        .ports
        .split_once('-')
        .and_then(|(f, l)| Some((f.parse::<u16>().ok()?, l.parse::<u16>().ok()?)))
        .filter(|(f, l)| *f >= 1 && f <= l)
        .ok_or_else(|| format!("--ports {}: give FIRST-LAST, e.g. 32768-60999", a.ports))?;
    let expect_body = match &a.expect_body {
        Some(p) => {
            let body =
                std::fs::read(p).map_err(|e| format!("--expect-body {}: {e}", p.display()))?;
            Some((body.len() as u64, crc32fast::hash(&body)))
        }
        None => None,
    };
    for out in [&a.json, &a.hgrm].into_iter().flatten() {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }

    let mode = match a.mode {
        ModeArg::Keepalive => Mode::KeepAlive,
        ModeArg::Close => Mode::Close,
    };
    let max_conns = (a.connections * 2).max(1024);
    let mut client = Client::new(&a.iface, remote)
        .ports(first_port, last_port)
        .syn_retries(a.syn_retries)
        .spin(true)
        .queues(a.queues)
        .max_conns(max_conns)
        .quiet(true);
    for s in &a.src {
        let (ip, len) = parse_src(s)?;
        client = match len {
            Some(l) => client.source_prefix(ip, l),
            None => client.source(ip),
        };
    }
    if let Some(mac) = &a.dst_mac {
        let mac = crate::netdev::parse_mac(mac)
            .ok_or_else(|| format!("--dst-mac {mac}: give six hex bytes, aa:bb:cc:dd:ee:ff"))?;
        client = client.next_hop(mac);
    }
    let cores: Vec<usize> = match &a.cores {
        Some(list) => crate::cli::parse_core_list(list).map_err(|e| format!("--cores: {e}"))?,
        None => (0..a.queues as usize).collect(),
    };
    client = client.cores(&cores);

    let plan = Arc::new(LoadPlan {
        remote,
        request: request(&a.method, &host, &path, &a.header, mode == Mode::Close),
        head: a.method == "HEAD",
        mode,
        pipeline: a.pipeline,
        connections: a.connections,
        rate: a.rate,
        duration: Duration::from_secs(a.duration),
        timeout: Duration::from_secs_f64(a.timeout),
        expect_body,
        workers: a.queues as usize,
        max_conns,
    });
    let (tx, rx) = crossbeam::channel::unbounded();
    let stop = client.handle();
    let run_for = plan.duration + Duration::from_millis(50);
    let timer = std::thread::Builder::new()
        .name("synack-load-timer".into())
        .spawn(move || {
            // Started before the workers: they each time their own run from their first
            // loop iteration, so this waits a little longer than the run.
            std::thread::sleep(run_for + Duration::from_millis(200));
            stop.stop();
        })
        .map_err(|e| format!("cannot start the timer thread: {e}"))?;
    let factory_plan = plan.clone();
    let result = client.run(move |w| LoadApp::new(factory_plan.clone(), w.index(), tx.clone()));
    let _ = timer.join();
    result.map_err(|e| e.to_string())?;
    let results: Vec<_> = rx.try_iter().collect();
    if results.is_empty() {
        return Err("no worker reported results".into());
    }
    let summary = report::Summary::merge(results, plan.duration);
    print!(
        "{}",
        report::text(&summary, &a.url, mode, a.pipeline, a.connections)
    );
    if let Some(p) = &a.json {
        std::fs::write(
            p,
            report::json(&summary, &a.url, mode, a.pipeline, a.connections),
        )
        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    if let Some(p) = &a.hgrm {
        std::fs::write(p, crate::stats::latency::hgrm(&summary.latency, 1000.0))
            .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    if summary.counts.established == 0 {
        return Err(format!(
            "no connection to {remote} was established: is the server up, and does it reach \
             the source addresses (a route to them through {}, or on the link)?",
            a.iface
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_requests() {
        let (a, host, path) = parse_url("http://198.18.0.1:8080/x?y=1").unwrap();
        assert_eq!(
            (a.to_string().as_str(), host.as_str(), path.as_str()),
            ("198.18.0.1:8080", "198.18.0.1:8080", "/x?y=1")
        );
        let (a, _, path) = parse_url("http://[fd00::1]:81").unwrap();
        assert_eq!(
            (a.to_string().as_str(), path.as_str()),
            ("[fd00::1]:81", "/")
        );
        assert_eq!(parse_url("http://198.18.0.1/").unwrap().0.port(), 80);
        assert!(
            parse_url("https://198.18.0.1/")
                .unwrap_err()
                .contains("https")
        );
        assert!(
            parse_url("http://example.com/")
                .unwrap_err()
                .contains("IP address")
        );
        let r = request("GET", "h:1", "/p", &["X-A: b".into()], true);
        assert_eq!(
            &r[..],
            b"GET /p HTTP/1.1\r\nHost: h:1\r\nX-A: b\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            parse_src("198.19.0.0/24").unwrap(),
            ("198.19.0.0".parse().unwrap(), Some(24))
        );
        assert!(parse_src("nope").is_err());
    }
}
