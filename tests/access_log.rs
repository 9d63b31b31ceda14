//! The access log (`--access-log`) and stderr logging of `synack serve`, over a veth pair with
//! curl and wrk in the client namespace: combined and JSON lines with the right fields (a 404,
//! a HEAD, a quote and non-ASCII bytes in the User-Agent escaped), `mv log log.1; kill -HUP`
//! under load (new lines go to a new file, no request lost, none logged twice), a flood that
//! overflows a tiny queue (drops counted in the summary and the metrics, the clients never
//! slowed to an error), and stderr lines with a timestamp and a level.
//!
//! Needs root, AF_XDP, veth, curl and wrk (see tests/veth.rs for the skip rules).
//!
//!     cargo build --release --bins --examples
//!     cargo test --release --test access_log -- --nocapture --test-threads=1

mod testbed;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testbed::{Bed, CLI_IP, PORT, SRV_IP, Server, TempDir, ok};

const AGENT: &str = "probe \"q\" \u{e9}t\u{e9}";

fn site() -> TempDir {
    let root = TempDir::new("lgroot");
    std::fs::write(root.join("index.html"), b"<h1>home</h1>\n").unwrap();
    std::fs::write(root.join("a.txt"), b"0123456789").unwrap();
    root
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The three requests both format tests send: a GET with Referer and an odd User-Agent, a
/// 404, a HEAD.
fn three_requests(bed: &Bed) {
    let o = bed.curl(
        10,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-A",
            AGENT,
            "-e",
            "http://ref.example/x?y",
        ],
        "/a.txt",
    );
    assert_eq!(ok(&o, "curl /a.txt"), "200");
    let o = bed.curl(10, &["-o", "/dev/null", "-w", "%{http_code}"], "/missing");
    assert_eq!(ok(&o, "curl /missing"), "404");
    let o = bed.curl(
        10,
        &["-I", "-o", "/dev/null", "-w", "%{http_code}"],
        "/a.txt",
    );
    assert_eq!(ok(&o, "curl -I /a.txt"), "200");
}

/// Checks `rest` starts with `[dd/Mon/yyyy:hh:mm:ss +0000] ` and returns what follows.
fn after_time_local(rest: &str) -> &str {
    let b = rest.as_bytes();
    assert!(
        b.len() > 29 && b[0] == b'[' && b[3] == b'/' && b[7] == b'/' && b[12] == b':',
        "no [time_local] in {rest:?}"
    );
    assert_eq!(&rest[21..29], " +0000] ", "{rest:?}");
    &rest[29..]
}

/// Checks the line ends with ` S.mmm` (the request time) and returns what precedes it.
fn before_request_time(line: &str) -> &str {
    let (head, t) = line.rsplit_once(' ').unwrap();
    let (s, ms) = t
        .split_once('.')
        .unwrap_or_else(|| panic!("no request time: {line}"));
    assert!(
        s.parse::<u64>().is_ok() && ms.len() == 3 && ms.parse::<u64>().is_ok(),
        "bad request time in {line}"
    );
    head
}

#[test]
fn combined_lines_have_nginx_fields_and_escapes() {
    let Some(env) = testbed::setup("lg1") else {
        return;
    };
    let bed = &env.bed;
    let root = site();
    let dir = TempDir::new("lg1");
    let log = dir.join("access.log");
    let server = Server::start(
        bed,
        &[
            "--root",
            root.as_str(),
            "--access-log",
            log.to_str().unwrap(),
        ],
    );
    three_requests(bed);
    let (st, stderr) = server.stop();
    assert!(st.success(), "{stderr}");
    let got = lines(&log);
    assert_eq!(got.len(), 3, "{got:#?}");
    let prefix = format!("{CLI_IP} - - ");
    let want = [
        "\"GET /a.txt HTTP/1.1\" 200 10 \"http://ref.example/x?y\" \
         \"probe \\x22q\\x22 \\xC3\\xA9t\\xC3\\xA9\"",
        "\"GET /missing HTTP/1.1\" 404 ",
        "\"HEAD /a.txt HTTP/1.1\" 200 0 \"-\" \"curl/",
    ];
    for (line, want) in got.iter().zip(want) {
        let rest = line
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("not from {CLI_IP}: {line}"));
        let fields = before_request_time(after_time_local(rest));
        assert!(fields.starts_with(want), "{line}\n  wanted {want}");
    }
    // The 404's body length is what curl would have counted: some bytes, logged as sent.
    let n404: u64 = got[1]
        .split("\" 404 ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n404 > 0, "{}", got[1]);
}

#[test]
fn json_lines_have_the_fields() {
    let Some(env) = testbed::setup("lg2") else {
        return;
    };
    let bed = &env.bed;
    let root = site();
    let dir = TempDir::new("lg2");
    let log = dir.join("access.json");
    let server = Server::start(
        bed,
        &[
            "--root",
            root.as_str(),
            "--access-log",
            log.to_str().unwrap(),
            "--access-log-format",
            "json",
        ],
    );
    three_requests(bed);
    let (st, stderr) = server.stop();
    assert!(st.success(), "{stderr}");
    let got = lines(&log);
    assert_eq!(got.len(), 3, "{got:#?}");
    // Every line is a JSON object (Python's parser says so), with the fields of the request.
    let check = Command::new("python3")
        .args([
            "-c",
            "import json,sys\n\
             for l in open(sys.argv[1]):\n\
             \x20   o = json.loads(l)\n\
             \x20   print(o['request_method'], o['request_uri'], o['server_protocol'], o['status'],\n\
             \x20         o['body_bytes_sent'], repr(o['http_user_agent'][:8]), o['remote_addr'],\n\
             \x20         type(o['request_time']).__name__, o['time_iso8601'][-6:])",
            log.to_str().unwrap(),
        ])
        .output()
        .expect("python3");
    let out = ok(&check, "python3 json check");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(
        rows[0],
        format!("GET /a.txt HTTP/1.1 200 10 'probe \"q' {CLI_IP} float +00:00")
    );
    assert!(rows[1].starts_with("GET /missing HTTP/1.1 404 "), "{out}");
    assert!(
        rows[2].starts_with("HEAD /a.txt HTTP/1.1 200 0 'curl/"),
        "{out}"
    );
    assert!(
        got[0].contains(r#""http_user_agent":"probe \"q\" été""#),
        "{}",
        got[0]
    );
    assert!(
        got[0].contains(r#""http_referer":"http://ref.example/x?y""#),
        "{}",
        got[0]
    );
}

/// wrk in the client namespace for `secs`, `conns` connections; its output.
fn wrk_spawn(bed: &Bed, secs: u64, conns: u32) -> std::process::Child {
    let url = format!("http://{SRV_IP}:{PORT}/");
    let d = format!("{secs}s");
    let c = format!("-c{conns}");
    bed.client_spawn(
        secs + 30,
        &[
            "taskset",
            "-c",
            testbed::CLIENT_CORE,
            "wrk",
            "-t1",
            &c,
            "-d",
            &d,
            "--timeout",
            "5s",
            &url,
        ],
    )
}

/// wrk's output: requests, and its error lines if any.
fn wrk_result(child: std::process::Child) -> (u64, String) {
    let o = child.wait_with_output().expect("wait for wrk");
    let out = ok(&o, "wrk");
    let requests = out
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{out}"));
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
        .collect();
    (requests, errors.join("\n"))
}

/// The final summary's request count and `access_log_dropped` (0 when not printed).
fn summary_counts(stderr: &str) -> (u64, u64) {
    let requests = stderr
        .lines()
        .find(|l| l.contains(" established, requests "))
        .and_then(|l| l.split(" requests ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in the summary:\n{stderr}"));
    let dropped = stderr.split("access_log_dropped ").nth(1).map_or(0, |r| {
        r.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    });
    (requests, dropped)
}

#[test]
fn sighup_reopens_the_log_under_load() {
    let Some(env) = testbed::setup("lg3") else {
        return;
    };
    let bed = &env.bed;
    let root = site();
    let dir = TempDir::new("lg3");
    let log = dir.join("access.log");
    // A deep queue: this test counts lines against responses, so none may be dropped even if
    // the machine's load starves the logger thread for a while (drops have their own test).
    let server = Server::start(
        bed,
        &[
            "--root",
            root.as_str(),
            "--access-log",
            log.to_str().unwrap(),
            "--access-log-queue",
            "32768",
        ],
    );
    let wrk = wrk_spawn(bed, 6, 8);
    let mut rotated = Vec::new();
    for i in 1..=3 {
        std::thread::sleep(Duration::from_millis(1500));
        // logrotate: move the file away, then HUP (postrotate).
        let to = dir.join(&format!("access.log.{i}")[..]);
        std::fs::rename(&log, &to).unwrap();
        let st = Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        rotated.push(to);
    }
    let (requests, errors) = wrk_result(wrk);
    assert!(requests > 0);
    assert_eq!(errors, "", "wrk saw errors across the reopens");
    // The server survived every HUP and still answers.
    let o = bed.curl(10, &["-o", "/dev/null", "-w", "%{http_code}"], "/");
    assert_eq!(ok(&o, "curl after the HUPs"), "200");
    let (st, stderr) = server.stop();
    assert!(st.success(), "{stderr}");
    let (served, dropped) = summary_counts(&stderr);
    assert_eq!(dropped, 0, "{stderr}");
    let mut total = 0;
    for f in rotated.iter().chain([&log]) {
        let n = lines(f).len();
        // Each file got the lines of its period (the HUPs were 1.5 s apart, under load).
        assert!(n > 0, "{} is empty", f.display());
        total += n as u64;
    }
    assert!(
        stderr.matches("reopening the access log").count() == 3,
        "{stderr}"
    );
    // Every response logged exactly once, across the files.
    assert_eq!(
        total, served,
        "lines in all files vs responses in the summary"
    );
    assert!(served > requests, "wrk {requests}, served {served}");
}

#[test]
fn a_flood_over_a_tiny_queue_counts_drops() {
    let Some(env) = testbed::setup("lg4") else {
        return;
    };
    let bed = &env.bed;
    let root = site();
    let dir = TempDir::new("lg4");
    let log = dir.join("access.log");
    let server = Server::start(
        bed,
        &[
            "--root",
            root.as_str(),
            "--access-log",
            log.to_str().unwrap(),
            "--access-log-queue",
            "1",
            "--metrics",
            "127.0.0.1:9187",
        ],
    );
    let (requests, errors) = wrk_result(wrk_spawn(bed, 3, 32));
    assert_eq!(errors, "", "the log must not slow the clients to errors");
    // The metrics show the drops while running.
    std::thread::sleep(Duration::from_millis(1500));
    let m = bed.server_ns(
        10,
        &["curl", "-sS", "-m", "5", "http://127.0.0.1:9187/metrics"],
    );
    let metrics = ok(&m, "curl /metrics");
    let line = metrics
        .lines()
        .find(|l| l.contains("access_log_dropped") && !l.starts_with('#'))
        .unwrap_or_else(|| panic!("no access_log_dropped in the metrics:\n{metrics}"));
    let in_metrics: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let (st, stderr) = server.stop();
    assert!(st.success(), "{stderr}");
    let (served, dropped) = summary_counts(&stderr);
    assert!(
        dropped > 0,
        "a queue of 1 under wrk never overflowed?\n{stderr}"
    );
    assert!(in_metrics > 0 && in_metrics <= dropped, "{line}");
    // What was not dropped was written.
    let written = lines(&log).len() as u64;
    assert_eq!(written + dropped, served, "{stderr}");
    assert!(served >= requests);
    eprintln!("flood: {served} responses, {written} logged, {dropped} dropped");
}

/// `2026-12-03T06:54:19.123Z LEVEL ` at the start of `line`?
fn has_time_and_level(line: &str) -> bool {
    let b = line.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() > 25
        && digits(0..4)
        && b[4] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && b[24] == b' '
        && ["ERROR ", "WARN  ", "INFO  ", "DEBUG ", "TRACE "]
            .iter()
            .any(|l| line[25..].starts_with(l))
}

#[test]
fn stderr_lines_carry_a_timestamp_and_a_level() {
    let Some(env) = testbed::setup("lg5") else {
        return;
    };
    let bed = &env.bed;
    let server = Server::start(bed, &["--body", "hi", "--stats-interval", "1"]);
    let o = bed.curl(10, &["-o", "/dev/null", "-w", "%{http_code}"], "/");
    assert_eq!(ok(&o, "curl"), "200");
    std::thread::sleep(Duration::from_millis(2500));
    let (st, stderr) = server.stop();
    assert!(st.success(), "{stderr}");
    let (logged, summary) = stderr
        .split_once("synack: final statistics")
        .unwrap_or_else(|| panic!("no summary:\n{stderr}"));
    // The summary starts a line of its own, with no timestamp.
    assert!(
        logged.ends_with('\n'),
        "the summary is plain text:\n{stderr}"
    );
    let records: Vec<&str> = logged.lines().collect();
    for l in &records {
        assert!(
            has_time_and_level(l),
            "no timestamp and level: {l:?}\n{stderr}"
        );
    }
    let ready = records
        .iter()
        .find(|l| l.contains("synack: serving "))
        .unwrap();
    assert!(ready[25..].starts_with("INFO  synack: serving "), "{ready}");
    // The live line: per-second figures over the interval, then the cumulative ones.
    let live = records
        .iter()
        .find(|l| l.contains(" req/s") && l.contains("since start: "))
        .unwrap_or_else(|| panic!("no live line with --stats-interval 1:\n{stderr}"));
    assert!(live.contains("last 1 s: "), "{live}");
    assert!(live.contains(" requests"), "{live}");
    assert!(
        !summary.lines().skip(1).any(has_time_and_level),
        "{summary}"
    );
}
