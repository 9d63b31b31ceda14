//! The Prometheus metrics of `synack serve --metrics`, over a veth pair with real clients: the
//! scraped text passes `promtool check metrics` (Debian's `prometheus` package), and its values
//! say what the clients did: requests, responses by status class, a latency histogram that
//! counts every request, bytes, connections closed.
//!
//! Needs root, AF_XDP, veth, curl and promtool. A missing promtool fails the test (CI installs
//! it with scripts/setup.sh); the rest is tests/testbed's check (see tests/veth.rs).
//!
//!     cargo test --release --test metrics -- --nocapture --test-threads=1

mod testbed;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testbed::{Server, TempDir, find_on_path, ok, text};

/// Where the server namespace serves the metrics (its own loopback).
const METRICS_ADDR: &str = "127.0.0.1:9109";

/// One sample of the exposition text.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// The samples of the Prometheus text `body` (comments skipped).
fn samples(body: &str) -> Vec<Sample> {
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => {
                    let inner = rest.strip_suffix('}').expect("closing brace");
                    let labels = inner
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let (k, v) = p.split_once("=\"").expect("label=\"value\"");
                            (k.to_string(), v.trim_end_matches('"').to_string())
                        })
                        .collect();
                    (n.to_string(), labels)
                }
                None => (series.to_string(), Vec::new()),
            };
            Sample {
                name,
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// Sum of the samples named `name` whose labels include all of `labels` (0 if none).
fn sum(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    s.iter()
        .filter(|x| x.name == name)
        .filter(|x| {
            labels
                .iter()
                .all(|(k, v)| x.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|x| x.value)
        .sum()
}

/// Runs `promtool check metrics` on `body`: (success, what it printed).
fn promtool(body: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool's output");
    let said = format!("{}{}", text_of(&out.stdout), text_of(&out.stderr));
    (out.status.success() && said.trim().is_empty(), said)
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// 20 files and 5 misses over one keep-alive connection, one more file on a connection the
/// client closes with `Connection: close`; then the metrics are scraped with curl in the server
/// namespace, checked by promtool, and read.
#[test]
fn metrics_pass_promtool_and_count_what_the_clients_did() {
    assert!(
        find_on_path("promtool").is_some(),
        "promtool is not installed: it comes with Debian's prometheus package \
         (scripts/setup.sh --deps-only installs it)"
    );
    let Some(env) = testbed::setup_needing("mx", 1, &["curl"]) else {
        return;
    };
    let bed = &env.bed;
    let root = TempDir::new("mxroot");
    std::fs::write(root.join("a.txt"), "metrics test body\n").unwrap();
    let server = Server::start(bed, &["--root", root.as_str(), "--metrics", METRICS_ADDR]);

    let scrape = || {
        let out = bed.server_ns(
            10,
            &[
                "curl",
                "-sS",
                "-m",
                "3",
                "-D",
                "/dev/stderr",
                &format!("http://{METRICS_ADDR}/metrics"),
            ],
        );
        assert!(out.status.success(), "scrape failed: {}", text(&out));
        (text_of(&out.stdout), text_of(&out.stderr))
    };

    // Before any traffic: every family is there, and promtool finds nothing to say.
    let (empty, head) = scrape();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let (clean, said) = promtool(&empty);
    assert!(
        clean,
        "promtool on the metrics before traffic: {said}\n{empty}"
    );

    // One keep-alive connection: 20 files and 5 misses.
    let url = |p: &str| format!("http://{}:{}{p}", testbed::SRV_IP, testbed::PORT);
    let mut args: Vec<String> = [
        "curl",
        "-sS",
        "-m",
        "20",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}\\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..25 {
        if i > 0 {
            args.extend(["-o".into(), "/dev/null".into()]);
        }
        args.push(if i % 5 == 4 {
            url(&format!("/missing-{i}"))
        } else {
            url("/a.txt")
        });
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let codes = ok(&bed.client(30, &argv), "keep-alive requests");
    let codes: Vec<&str> = codes.lines().collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "200").count(),
        20,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "404").count(),
        5,
        "{codes:?}"
    );
    // One request on a connection the client asks to close.
    let code = ok(
        &bed.curl(
            10,
            &[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "Connection: close",
            ],
            "/a.txt",
        ),
        "closing request",
    );
    assert_eq!(code, "200");

    // The collector takes the workers' reports once a second: scrape until they are in.
    let t0 = Instant::now();
    let body = loop {
        let (body, _) = scrape();
        let s = samples(&body);
        if sum(&s, "synack_requests_total", &[]) >= 26.0
            && sum(&s, "synack_connections_closed_total", &[]) >= 2.0
        {
            break body;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the metrics never counted 26 requests and 2 closed connections:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let (clean, said) = promtool(&body);
    assert!(
        clean,
        "promtool on the metrics after traffic: {said}\n{body}"
    );

    let s = samples(&body);
    let get = |name: &str, labels: &[(&str, &str)]| sum(&s, name, labels);
    assert_eq!(get("synack_requests_total", &[]), 26.0, "{body}");
    assert_eq!(
        get("synack_http_responses_total", &[("class", "2xx")]),
        21.0
    );
    assert_eq!(get("synack_http_responses_total", &[("class", "4xx")]), 5.0);
    for class in ["1xx", "3xx", "5xx"] {
        assert_eq!(get("synack_http_responses_total", &[("class", class)]), 0.0);
    }
    // The request latency histogram counts every request, in cumulative buckets.
    let count = get("synack_request_duration_seconds_count", &[]);
    assert_eq!(count, 26.0, "{body}");
    assert_eq!(
        get("synack_request_duration_seconds_bucket", &[("le", "+Inf")]),
        count
    );
    let buckets: Vec<f64> = s
        .iter()
        .filter(|x| x.name == "synack_request_duration_seconds_bucket")
        .map(|x| x.value)
        .collect();
    assert!(buckets.len() > 10, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(get("synack_request_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(get("synack_handshake_duration_seconds_count", &[]), 2.0);
    // Bytes both ways, at the frame level and of the HTTP responses.
    assert!(get("synack_rx_bytes_total", &[]) > 0.0);
    assert!(get("synack_tx_bytes_total", &[]) > get("synack_rx_bytes_total", &[]) / 10.0);
    assert!(get("synack_http_response_bytes_total", &[]) > 21.0 * 18.0);
    assert_eq!(get("synack_connections_established_total", &[]), 2.0);
    assert_eq!(get("synack_connections_closed_total", &[]), 2.0);
    // The build and the process.
    let build: Vec<&Sample> = s.iter().filter(|x| x.name == "synack_build_info").collect();
    assert_eq!(build.len(), 1, "{body}");
    assert_eq!(build[0].value, 1.0);
    assert!(
        build[0]
            .labels
            .iter()
            .any(|(k, v)| k == "version" && v == env!("CARGO_PKG_VERSION")),
        "{:?}",
        build[0]
    );
    let start = get("process_start_time_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        start > now - 600.0 && start <= now + 1.0,
        "start {start}, now {now}"
    );
    // No family mixes meanings any more.
    assert!(!body.contains("events_total"), "{body}");

    let (st, log) = server.stop();
    assert!(st.success(), "synack exit {st:?}\n{log}");
    // The final summary still reports the application's counters.
    assert!(log.contains("http_responses{class=4xx} 5"), "{log}");
}
