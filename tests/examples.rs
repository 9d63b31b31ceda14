//! The library's examples (`examples/`) over a veth pair, with real clients in a second
//! network namespace, as tests/veth.rs runs `synack serve`.
//!
//! The example binaries come from `cargo test` (which builds examples with the other targets)
//! or `cargo build --release --examples`; `testbed::example_bin` refuses a missing or stale
//! one and says how to build it. Needs root, AF_XDP, veth, curl, wrk and Python's `requests`
//! (scripts/setup.sh installs them); SYNACK_VETH_REQUIRED=1 makes a missing one a failure.
//!
//!     cargo build --release --examples
//!     SYNACK_VETH_REQUIRED=1 cargo test --release --test examples -- --test-threads=1

mod testbed;

use testbed::{Bed, PORT, SRV_IP, Server, ok, text};

/// The body hello_json answers for `path`, the `count`th request of worker 0.
fn hello(path: &str, count: u64) -> String {
    format!("{{\"worker\":0,\"path\":\"{path}\",\"count\":{count}}}\n")
}

/// wrk on the client core for 5 s with 64 connections; returns (requests, its output).
fn wrk(bed: &Bed, path: &str) -> (u64, String) {
    let url = format!("http://{SRV_IP}:{PORT}{path}");
    let out = ok(
        &bed.client(
            40,
            &[
                "taskset",
                "-c",
                testbed::CLIENT_CORE,
                "wrk",
                "-t1",
                "-c64",
                "-d5s",
                "--timeout",
                "5s",
                &url,
            ],
        ),
        "wrk",
    );
    let requests = out
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{out}"));
    (requests, out)
}

/// Python `requests` on one keep-alive session: GETs of several paths (the JSON checked),
/// a POST with a body, a HEAD. Prints the last count.
const REQUESTS_SCRIPT: &str = r#"
import sys, requests
base, first = sys.argv[1], int(sys.argv[2])
s = requests.Session()
count = first
for i in range(50):
    path = f"/py/{i}/x y" if i % 2 else f"/py/{i}"
    r = s.get(base + path, timeout=5)
    assert r.status_code == 200, r.status_code
    assert r.headers["Content-Type"] == "application/json", r.headers
    j = r.json()
    assert j == {"worker": 0, "path": path, "count": count}, (j, path, count)
    count += 1
r = s.post(base + "/post", json={"a": 1}, timeout=5)
assert r.status_code == 200 and r.json()["path"] == "/post" and r.json()["count"] == count, r.text
count += 1
r = s.head(base + "/head", timeout=5)
assert r.status_code == 200 and r.content == b"", r.content
assert int(r.headers["Content-Length"]) > 0, r.headers
count += 1
print(count)
"#;

#[test]
fn hello_json_answers_curl_requests_and_wrk() {
    let Some(env) = testbed::setup_needing("hj", 1, &["curl", "wrk"]) else {
        return;
    };
    let bed = &env.bed;
    let probe = bed.client(10, &["python3", "-c", "import requests"]);
    assert!(
        probe.status.success(),
        "Python's requests is missing (scripts/setup.sh installs it): {}",
        text(&probe)
    );
    let server = Server::start_example(bed, "hello_json", &[]);

    // curl: the whole response, then a path that needs decoding and JSON escaping.
    let out = ok(&bed.curl(10, &["-i"], "/hello/world?q=1"), "curl");
    let (head, body) = out.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        head.contains("\r\nContent-Type: application/json\r\n"),
        "{out}"
    );
    assert!(head.contains("\r\nServer: synack\r\n"), "{out}");
    assert_eq!(body, hello("/hello/world", 1));
    let out = ok(&bed.curl(10, &[], "/a/./b/../%22q%22%5C"), "curl");
    assert_eq!(out, hello("/a/\\\"q\\\"\\\\", 2));

    // Python requests, one keep-alive session.
    let base = format!("http://{SRV_IP}:{PORT}");
    let out = ok(
        &bed.client(60, &["python3", "-c", REQUESTS_SCRIPT, &base, "3"]),
        "python requests",
    );
    let next: u64 = out.trim().parse().expect("the last count");
    assert_eq!(next, 3 + 52);

    // wrk: no socket errors, no non-2xx answers; every request counted by the worker.
    let (requests, out) = wrk(bed, "/wrk");
    eprintln!("wrk:\n{out}");
    assert!(requests > 0, "{out}");
    assert!(!out.contains("Socket errors"), "socket errors:\n{out}");
    assert!(!out.contains("Non-2xx"), "non-2xx responses:\n{out}");
    let out = ok(&bed.curl(10, &[], "/after"), "curl");
    let count: u64 = out
        .split("\"count\":")
        .nth(1)
        .and_then(|c| c.trim().trim_end_matches('}').parse().ok())
        .unwrap_or_else(|| panic!("no count in {out}"));
    // wrk counts the responses it completed; the worker also answered those in flight when
    // wrk stopped.
    assert!(count > next + requests - 1, "count {count}, wrk {requests}");

    let (st, log) = server.stop();
    assert!(st.success(), "hello_json exit: {st:?}\n{log}");
}
