//! synack at scale over veth, with real Linux clients (root only): several workers on a
//! multi-queue veth, the statistics files (`--stats-out`), the Prometheus endpoint (`--metrics`),
//! the capture (`--pcap`), and a SYN flood from spoofed addresses while a real client is served.
//!
//! Every test makes its own pair of network namespaces with `scripts/testbed.sh` under a unique
//! prefix, runs the `synack` binary inside the server namespace, and removes the processes it
//! started (by PID) and the namespaces in `Drop` guards, also when an assertion fails. Traffic goes
//! only to the test's namespaces and to loopback. The tests pin CPUs and load both cores, so they
//! run one at a time behind a global lock. Without root, or without a tool a test needs, the test
//! fails if `SYNACK_VETH_REQUIRED` is set (scripts/test.sh sets it), and otherwise prints
//! `SKIP: test: reason` on stderr and returns (tests/testbed's check, as in tests/veth.rs).
//!
//! ```text
//! cargo test --release --test veth_scale -- --nocapture --test-threads=1
//! ```

mod testbed;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

const SYNACK: &str = env!("CARGO_BIN_EXE_synack");
const SRV_IP: &str = "198.18.0.1";
const CLI_IP: &str = "198.18.0.2";
/// The server's IPv6 address on the bed (scripts/testbed.sh); every server here serves it too.
const SRV_IP6: &str = "fd00:198:18::1";
const PORT: &str = "8080";
const BODY: &str = "hello";
const METRICS_ADDR: &str = "127.0.0.1:9100";
const READY_LINE: &str = "synack: serving";

/// One test at a time: they pin workers to both cores and load them.
static SERIAL: Mutex<()> = Mutex::new(());

fn url() -> String {
    format!("http://{SRV_IP}:{PORT}/")
}

// ------------------------------------------------------------------------------------------------
// Preconditions

/// Takes the global lock, or says why the test cannot run here (`None`: the test returns).
/// The check is tests/testbed's: with `SYNACK_VETH_REQUIRED` set, a missing command (`tools`,
/// looked up on `PATH`) or missing root fails the test and names it.
fn preflight(test: &str, tools: &[&str]) -> Option<MutexGuard<'static, ()>> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut all = vec!["curl"];
    all.extend_from_slice(tools);
    testbed::can_run(test, &all).then_some(guard)
}

// ------------------------------------------------------------------------------------------------
// Bounded commands

/// Runs `argv` under `timeout` (SIGTERM after `secs`, SIGKILL 2 s later) and collects its output.
fn run(secs: u64, argv: &[&str]) -> Output {
    Command::new("timeout")
        .args(["-k", "2", &secs.to_string()])
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"))
}

/// Runs `argv` inside network namespace `ns`, bounded by `secs`.
fn run_in(ns: &str, secs: u64, argv: &[&str]) -> Output {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(argv);
    run(secs, &v)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Sends a signal by name (TERM, USR1, KILL) to one process we started.
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits for `child` to exit, at most `limit`.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let t0 = Instant::now();
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if t0.elapsed() >= limit {
            return None;
        }
        sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------------------------------------
// Guards: namespaces, scratch directory, the server, the flood

fn testbed_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testbed.sh")
}

/// Two namespaces joined by a veth pair (scripts/testbed.sh); removed on drop.
struct Testbed {
    prefix: String,
}

impl Testbed {
    /// `tag`: a few letters naming the test; the prefix adds the PID (at most 13 characters).
    fn up(tag: &str, queues: u32) -> Testbed {
        let pid = std::process::id() % 100_000;
        let mut prefix = String::new();
        for i in 0..10u32 {
            let p = format!(
                "sk{tag}{pid}{}",
                if i == 0 { String::new() } else { i.to_string() }
            );
            let p: String = p.chars().take(13).collect();
            let used = |ns: String| Path::new("/run/netns").join(ns).exists();
            if !used(format!("{p}-srv")) && !used(format!("{p}-cli")) {
                prefix = p;
                break;
            }
        }
        assert!(!prefix.is_empty(), "no free namespace prefix for tag {tag}");
        // The guard exists before anything is made, so a failure below still cleans up.
        let tb = Testbed { prefix };
        let script = testbed_script();
        let out = run(
            30,
            &[
                "bash",
                script.to_str().unwrap(),
                "up",
                &tb.prefix,
                &queues.to_string(),
            ],
        );
        assert!(
            out.status.success(),
            "testbed.sh up {} {queues} failed: {}{}",
            tb.prefix,
            text(&out.stdout),
            text(&out.stderr)
        );
        if queues > 1 {
            // On veth the *sender* picks the queue (its TX queue is the peer's RX queue), from a
            // per-socket hash that Linux re-draws after a retransmission timeout. A NIC's RSS
            // hash of the 4-tuple never moves a flow; without this, a flow could change queue
            // (and so worker) in mid-connection, which synack rightly answers with RST.
            let _ = run_in(&tb.cli_ns(), 5, &["sysctl", "-qw", "net.core.txrehash=0"]);
        }
        tb
    }
    fn srv_ns(&self) -> String {
        format!("{}-srv", self.prefix)
    }
    fn cli_ns(&self) -> String {
        format!("{}-cli", self.prefix)
    }
    fn srv_if(&self) -> String {
        format!("{}s0", self.prefix)
    }
    fn cli_if(&self) -> String {
        format!("{}c0", self.prefix)
    }
    /// Frames the client's veth end has sent so far (its kernel counter).
    fn cli_tx_packets(&self) -> u64 {
        let file = format!("/sys/class/net/{}/statistics/tx_packets", self.cli_if());
        let out = run_in(&self.cli_ns(), 5, &["cat", &file]);
        text(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("cannot read {file}: {}", text(&out.stderr)))
    }
    /// Waits until the client's veth end has sent `n` frames more than `since`, polling, at
    /// most `limit`. Returns the counter, or `None` if it did not get there in time.
    fn await_cli_tx(&self, since: u64, n: u64, limit: Duration) -> Option<u64> {
        let t0 = Instant::now();
        loop {
            let now = self.cli_tx_packets();
            if now >= since + n {
                return Some(now);
            }
            if t0.elapsed() >= limit {
                return None;
            }
            sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let script = testbed_script();
        let out = run(
            30,
            &["bash", script.to_str().unwrap(), "down", &self.prefix],
        );
        if !out.status.success() {
            eprintln!(
                "warning: testbed.sh down {} failed: {}",
                self.prefix,
                text(&out.stderr)
            );
        }
    }
}

/// A directory for logs, statistics and captures; removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("synack-scale-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `synack serve` in the server namespace. Dropping it stops it (SIGTERM, then SIGKILL).
struct Server {
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Server {
    /// Starts synack with the common arguments plus `extra`, and waits (at most 20 s) for its
    /// ready line.
    fn start(tb: &Testbed, scratch: &Scratch, name: &str, extra: &[&str]) -> Server {
        let log = scratch.path(&format!("{name}.log"));
        let f = File::create(&log).expect("create server log");
        let child = Command::new("ip")
            .args(["netns", "exec", &tb.srv_ns(), SYNACK, "serve"])
            .args([
                "--iface",
                &tb.srv_if(),
                "--ip",
                SRV_IP,
                "--ip",
                SRV_IP6,
                "--port",
                PORT,
            ])
            .args(["--body", BODY, "--grace", "1"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("dup log"))
            .stderr(f)
            .spawn()
            .expect("spawn synack");
        let mut s = Server {
            child,
            log,
            exited: None,
        };
        let t0 = Instant::now();
        loop {
            if s.log_text().contains(READY_LINE) {
                break;
            }
            if let Ok(Some(st)) = s.child.try_wait() {
                s.exited = Some(st);
                panic!("synack exited ({st}) before serving:\n{}", s.log_text());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "synack printed no '{READY_LINE}' within 20 s:\n{}",
                s.log_text()
            );
            sleep(Duration::from_millis(50));
        }
        // `ip netns exec` execs the command, so the child is synack itself: signals reach it.
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", s.pid())).unwrap_or_default();
        assert_eq!(comm.trim(), "synack", "the child process is not synack");
        s
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.exited.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident memory of the server, in KiB (VmRSS of /proc/PID/status).
    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .expect("VmRSS of the server")
    }

    /// SIGTERM and wait (at most 20 s) for a graceful exit; returns the status and the log.
    fn stop(&mut self) -> (ExitStatus, String) {
        assert!(self.alive(), "synack died early:\n{}", self.log_text());
        signal(self.pid(), "TERM");
        let st = wait_bounded(&mut self.child, Duration::from_secs(20));
        let Some(st) = st else {
            panic!(
                "synack did not exit within 20 s of SIGTERM:\n{}",
                self.log_text()
            );
        };
        self.exited = Some(st);
        (st, self.log_text())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            signal(self.pid(), "TERM");
            if wait_bounded(&mut self.child, Duration::from_secs(8)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "--- synack log ({}):\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Background load processes (hping3); killed on drop if still running.
struct Background {
    children: Vec<Child>,
}

impl Background {
    fn running(&mut self) -> usize {
        self.children
            .iter_mut()
            .filter_map(|c| c.try_wait().ok())
            .filter(Option::is_none)
            .count()
    }
    /// Waits for all to end by themselves (at most `limit`), then kills what is left.
    /// Returns how many had to be killed.
    fn finish(&mut self, limit: Duration) -> usize {
        let t0 = Instant::now();
        while self.running() > 0 && t0.elapsed() < limit {
            sleep(Duration::from_millis(50));
        }
        let mut killed = 0;
        for c in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                killed += 1;
            }
            let _ = c.wait();
        }
        killed
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for c in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Clients

/// One GET with curl from the client namespace; true if it got status 200 and the body.
fn curl_ok(tb: &Testbed, max_secs: &str) -> Result<(), String> {
    curl_url_ok(tb, max_secs, &url())
}

/// [`curl_ok`] over IPv6.
fn curl6_ok(tb: &Testbed, max_secs: &str) -> Result<(), String> {
    curl_url_ok(tb, max_secs, &format!("http://[{SRV_IP6}]:{PORT}/"))
}

fn curl_url_ok(tb: &Testbed, max_secs: &str, url: &str) -> Result<(), String> {
    let out = run_in(
        &tb.cli_ns(),
        10,
        &["curl", "-sS", "-m", max_secs, "-w", "\n%{http_code}", url],
    );
    let body = text(&out.stdout);
    if out.status.success() && body == format!("{BODY}\n200") {
        Ok(())
    } else {
        Err(format!(
            "curl: status {}, output {body:?}, stderr {}",
            out.status,
            text(&out.stderr).trim()
        ))
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct WrkResult {
    requests: u64,
    rps: f64,
    errors: u64,
}

fn parse_wrk(out: &str) -> Option<WrkResult> {
    let mut r = WrkResult::default();
    let mut seen = false;
    for l in out.lines().map(str::trim) {
        if let Some((n, rest)) = l.split_once(" requests in ")
            && !rest.is_empty()
        {
            r.requests = n.trim().parse().ok()?;
            seen = true;
        } else if let Some(v) = l.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().ok()?;
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in v.split(',') {
                r.errors += part.split_whitespace().nth(1)?.parse::<u64>().ok()?;
            }
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            r.errors += v.trim().parse::<u64>().ok()?;
        }
    }
    seen.then_some(r)
}

/// wrk from the client namespace; `close` adds `Connection: close`. Panics if wrk fails.
fn wrk(tb: &Testbed, threads: u32, conns: u32, secs: u32, close: bool) -> WrkResult {
    let (t, c, d) = (
        format!("-t{threads}"),
        format!("-c{conns}"),
        format!("-d{secs}s"),
    );
    let mut argv = vec!["wrk", &t, &c, &d];
    if close {
        argv.extend_from_slice(&["-H", "Connection: close"]);
    }
    let u = url();
    argv.push(&u);
    let out = run_in(&tb.cli_ns(), secs as u64 + 20, &argv);
    let so = text(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed ({}): {so}{}",
        out.status,
        text(&out.stderr)
    );
    let r = parse_wrk(&so).unwrap_or_else(|| panic!("cannot read wrk's output:\n{so}"));
    println!(
        "  wrk -t{threads} -c{conns} -d{secs}s{}: {} requests, {:.0}/s, {} errors",
        if close { " (close)" } else { "" },
        r.requests,
        r.rps,
        r.errors
    );
    r
}

/// The metrics page, scraped with curl inside the server namespace: (response head, body).
fn scrape(tb: &Testbed) -> (String, String) {
    let out = run_in(
        &tb.srv_ns(),
        10,
        &[
            "curl",
            "-sS",
            "-i",
            "-m",
            "3",
            &format!("http://{METRICS_ADDR}/metrics"),
        ],
    );
    assert!(
        out.status.success(),
        "scraping the metrics failed: {}",
        text(&out.stderr)
    );
    let all = text(&out.stdout);
    let (head, body) = all
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in the metrics response: {all:?}"));
    (head.to_string(), body.to_string())
}

// ------------------------------------------------------------------------------------------------
// The final statistics ("  worker 0 (queue 0, core 1): rx N tx N frames, established N, ...")

#[derive(Debug, Clone, Copy, Default)]
struct WorkerLine {
    worker: u64,
    queue: u64,
    rx: u64,
    tx: u64,
    established: u64,
    resets_sent: u64,
    retransmits: u64,
    cookies_sent: u64,
    cookies_valid: u64,
}

fn parse_worker_lines(log: &str) -> Vec<WorkerLine> {
    let mut v = Vec::new();
    for l in log.lines().map(str::trim) {
        if !l.starts_with("worker ") || !l.contains("(sent/valid)") {
            continue;
        }
        let clean: String = l
            .chars()
            .map(|c| if "(),:/".contains(c) { ' ' } else { c })
            .collect();
        let t: Vec<&str> = clean.split_whitespace().collect();
        let after = |key: &str, skip: usize| -> u64 {
            let i = t
                .iter()
                .position(|w| *w == key)
                .unwrap_or_else(|| panic!("no '{key}' in worker line {l:?}"));
            t.get(i + skip)
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("no number after '{key}' in worker line {l:?}"))
        };
        v.push(WorkerLine {
            worker: after("worker", 1),
            queue: after("queue", 1),
            rx: after("rx", 1),
            tx: after("tx", 1),
            established: after("established", 1),
            resets_sent: after("resets", 2),
            retransmits: after("retransmits", 1),
            cookies_sent: after("cookies", 1),
            cookies_valid: after("cookies", 2),
        });
    }
    v
}

// ------------------------------------------------------------------------------------------------
// .hgrm (HdrHistogram percentile distribution text)

#[derive(Debug)]
struct Hgrm {
    /// (value, percentile, total count) per data line.
    rows: Vec<(f64, f64, u64)>,
    mean: f64,
    max: f64,
    total: u64,
}

fn footer_fields(line: &str) -> Result<Vec<(String, f64)>, String> {
    let inner = line
        .strip_prefix("#[")
        .and_then(|l| l.strip_suffix(']'))
        .ok_or_else(|| format!("footer line not #[...]: {line:?}"))?;
    inner
        .split(',')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("no '=' in {kv:?} of {line:?}"))?;
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("not a number: {v:?} in {line:?}"))?;
            Ok((k.trim().to_string(), v))
        })
        .collect()
}

fn parse_hgrm(s: &str) -> Result<Hgrm, String> {
    let mut lines = s.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    if header != ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"] {
        return Err(format!("bad header {header:?}"));
    }
    let mut rows: Vec<(f64, f64, u64)> = Vec::new();
    let mut footer = Vec::new();
    for l in lines {
        if l.trim().is_empty() {
            if !footer.is_empty() {
                return Err("empty line inside the footer".into());
            }
            continue;
        }
        if l.starts_with("#[") {
            footer.extend(footer_fields(l)?);
            continue;
        }
        if !footer.is_empty() {
            return Err(format!("data line after the footer: {l:?}"));
        }
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.len() != 3 && cols.len() != 4 {
            return Err(format!("data line with {} columns: {l:?}", cols.len()));
        }
        let value: f64 = cols[0].parse().map_err(|_| format!("bad value in {l:?}"))?;
        let pct: f64 = cols[1]
            .parse()
            .map_err(|_| format!("bad percentile in {l:?}"))?;
        let count: u64 = cols[2].parse().map_err(|_| format!("bad count in {l:?}"))?;
        if !(value.is_finite() && value >= 0.0 && (0.0..=1.0).contains(&pct)) {
            return Err(format!("value or percentile out of range: {l:?}"));
        }
        if cols.len() == 4 {
            let inv: f64 = cols[3]
                .parse()
                .map_err(|_| format!("bad 1/(1-p) in {l:?}"))?;
            let want = 1.0 / (1.0 - pct);
            if (inv - want).abs() > 0.01 * want.max(1.0) {
                return Err(format!(
                    "1/(1-Percentile) is {inv}, expected {want:.2}: {l:?}"
                ));
            }
        } else if pct < 1.0 {
            return Err(format!("3 columns before percentile 1.0: {l:?}"));
        }
        if let Some(&(pv, pp, pc)) = rows.last()
            && (value < pv || pct < pp || count < pc)
        {
            return Err(format!("not non-decreasing: ({pv}, {pp}, {pc}) then {l:?}"));
        }
        rows.push((value, pct, count));
    }
    let get = |k: &str| {
        footer
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("footer has no '{k}'"))
    };
    let h = Hgrm {
        mean: get("Mean")?,
        max: get("Max")?,
        total: get("Total count")? as u64,
        rows,
    };
    get("StdDeviation")?;
    if h.total > 0 {
        let last = h.rows.last().ok_or("total count > 0 but no data lines")?;
        if last.1 != 1.0 || last.2 != h.total {
            return Err(format!(
                "last line {last:?} does not reach percentile 1 and total count {}",
                h.total
            ));
        }
        if h.mean > h.max * 1.001 || h.mean <= 0.0 {
            return Err(format!("mean {} not in (0, max {}]", h.mean, h.max));
        }
    } else if !h.rows.is_empty() {
        return Err("data lines but total count 0".into());
    }
    Ok(h)
}

// ------------------------------------------------------------------------------------------------
// A small strict JSON reader (RFC 8259), enough to check summary.json without a dependency.

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    /// The number at a dotted path ("latency.handshake.count").
    fn num(&self, path: &str) -> f64 {
        let mut j = self;
        for k in path.split('.') {
            j = j
                .get(k)
                .unwrap_or_else(|| panic!("summary.json has no {path:?} (at {k:?})"));
        }
        match j {
            Json::Num(n) => *n,
            other => panic!("{path} is not a number: {other:?}"),
        }
    }
}

struct JsonReader<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

fn parse_json(s: &str) -> Result<Json, String> {
    let mut r = JsonReader {
        b: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = r.value()?;
    r.ws();
    if r.i != r.b.len() {
        return Err(format!("trailing bytes at {}", r.i));
    }
    Ok(v)
}

impl JsonReader<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(&format!("expected '{}'", c as char))
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        self.depth += 1;
        if self.depth > 64 {
            return self.err("nested too deep");
        }
        let v = match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut kv = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let k = self.string()?;
                        if kv.iter().any(|(key, _)| *key == k) {
                            return self.err(&format!("duplicate key {k:?}"));
                        }
                        self.eat(b':')?;
                        let v = self.value()?;
                        kv.push((k, v));
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return self.err("expected ',' or '}'"),
                        }
                    }
                }
                Json::Obj(kv)
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        a.push(self.value()?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return self.err("expected ',' or ']'"),
                        }
                    }
                }
                Json::Arr(a)
            }
            Some(b'"') => Json::Str(self.string()?),
            Some(b't') => self.word("true", Json::Bool(true))?,
            Some(b'f') => self.word("false", Json::Bool(false))?,
            Some(b'n') => self.word("null", Json::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return self.err("expected a value"),
        };
        self.depth -= 1;
        Ok(v)
    }
    fn word(&mut self, w: &str, v: Json) -> Result<Json, String> {
        if self.b[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            self.err("bad literal")
        }
    }
    fn digits(&mut self) -> usize {
        let s = self.i;
        while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        self.i - s
    }
    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("bad number"),
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return self.err("no digits after '.'");
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return self.err("no digits in exponent");
            }
        }
        let s = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
        s.parse()
            .map(Json::Num)
            .map_err(|_| format!("bad number {s:?}"))
    }
    fn string(&mut self) -> Result<String, String> {
        if self.b.get(self.i) != Some(&b'"') {
            return self.err("expected a string");
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.b.get(self.i) {
                None => return self.err("unterminated string"),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = *self.b.get(self.i + 1).ok_or("bad escape")?;
                    self.i += 2;
                    match c {
                        b'"' | b'\\' | b'/' => out.push(c),
                        b'b' | b'f' | b'n' | b'r' | b't' => out.push(b' '),
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4).ok_or("bad \\u")?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return self.err("bad \\u escape");
                            }
                            self.i += 4;
                            out.push(b'?');
                        }
                        _ => return self.err("bad escape"),
                    }
                }
                Some(&c) if c < 0x20 => return self.err("control character in string"),
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}

// ------------------------------------------------------------------------------------------------
// Prometheus text exposition format 0.0.4

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses one sample line: `name value`, `name{k="v",...} value`, optional timestamp.
fn parse_sample(l: &str) -> Result<Sample, String> {
    let name_end = l.find(['{', ' ']).ok_or("no value")?;
    let name = &l[..name_end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &l[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or("label without '='")?;
            let k = &rest[..eq];
            if !is_label_name(k) {
                return Err(format!("bad label name {k:?}"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut v = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => v.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => v.push(c),
                        _ => return Err("bad escape in label value".into()),
                    },
                    Some((_, '\n')) => return Err("newline in label value".into()),
                    Some((_, c)) => v.push(c),
                }
            };
            if labels.iter().any(|(key, _): &(String, String)| key == k) {
                return Err(format!("label {k:?} twice"));
            }
            labels.push((k.to_string(), v));
            rest = &rest[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err("expected ',' or '}' after a label".into());
            }
        }
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or("no space before the value")?
        .trim_start();
    let mut parts = rest.split_whitespace();
    let v = parts.next().ok_or("no value")?;
    let value: f64 = match v {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ if v.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => {
            v.parse().map_err(|_| format!("bad value {v:?}"))?
        }
        _ => return Err(format!("bad value {v:?}")),
    };
    if let Some(ts) = parts.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if parts.next().is_some() {
        return Err("more than value and timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

struct Exposition {
    samples: Vec<Sample>,
    /// family name -> TYPE
    types: HashMap<String, String>,
    helps: HashSet<String>,
}

impl Exposition {
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .map(|s| s.value)
    }
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in the metrics"))
    }
    fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
}

/// Checks the whole text against the format: comments, TYPE before samples, one TYPE per
/// family, no duplicate series, finite values.
fn parse_exposition(body: &str) -> Result<Exposition, String> {
    let mut e = Exposition {
        samples: Vec::new(),
        types: HashMap::new(),
        helps: HashSet::new(),
    };
    let mut series = HashSet::new();
    let mut sampled_families = HashSet::new();
    if !body.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    for (n, l) in body.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {l:?}", n + 1);
        if l.is_empty() {
            continue;
        }
        if let Some(c) = l.strip_prefix('#') {
            let c = c.trim_start();
            let mut w = c.splitn(3, ' ');
            match (w.next(), w.next(), w.next()) {
                (Some("HELP"), Some(name), Some(_)) => {
                    let fresh = is_metric_name(name) && e.helps.insert(name.to_string());
                    if !fresh {
                        return Err(at("bad or repeated HELP".into()));
                    }
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if sampled_families.contains(name) {
                        return Err(at("TYPE after samples of the family".into()));
                    }
                    if e.types.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(at("TYPE repeated".into()));
                    }
                }
                (Some("HELP" | "TYPE"), _, _) => return Err(at("incomplete HELP/TYPE".into())),
                _ => {} // other comments are allowed
            }
            continue;
        }
        let s = parse_sample(l).map_err(at)?;
        if !s.value.is_finite() {
            return Err(at("value is not finite".into()));
        }
        // The family: for summaries and histograms, name_sum, name_count (and name_bucket)
        // belong to name.
        let family = [
            ("_sum", "summary"),
            ("_count", "summary"),
            ("_sum", "histogram"),
            ("_count", "histogram"),
            ("_bucket", "histogram"),
        ]
        .iter()
        .find_map(|(suffix, kind)| {
            let base = s.name.strip_suffix(suffix)?;
            (e.types.get(base).map(String::as_str) == Some(*kind)).then(|| base.to_string())
        })
        .unwrap_or_else(|| s.name.clone());
        let kind = e
            .types
            .get(&family)
            .ok_or_else(|| at(format!("no TYPE line for {family} before its samples")))?;
        if kind == "counter" && s.value < 0.0 {
            return Err(at("negative counter".into()));
        }
        if kind == "summary" && s.name == family && s.label("quantile").is_none() {
            return Err(at("summary sample without quantile".into()));
        }
        if kind == "histogram" && s.name == format!("{family}_bucket") && s.label("le").is_none() {
            return Err(at("histogram bucket without le".into()));
        }
        let mut key: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        key.sort();
        if !series.insert(format!("{}{{{}}}", s.name, key.join(","))) {
            return Err(at("duplicate series".into()));
        }
        sampled_families.insert(family);
        e.samples.push(s);
    }
    Ok(e)
}

/// Samples the metrics until `cond` holds (the text is refreshed once a second), at most 5 s.
fn scrape_until(tb: &Testbed, what: &str, cond: impl Fn(&Exposition) -> bool) -> Exposition {
    let t0 = Instant::now();
    loop {
        let (_, body) = scrape(tb);
        let e = parse_exposition(&body)
            .unwrap_or_else(|err| panic!("metrics are not valid exposition text: {err}\n{body}"));
        if cond(&e) {
            return e;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "metrics never showed {what} within 5 s:\n{body}"
        );
        sleep(Duration::from_millis(300));
    }
}

// ------------------------------------------------------------------------------------------------
// Tests

/// Two workers on a two-queue veth both serve: per-worker counters in the final statistics and
/// in the metrics. `--queues 3` on that veth is refused and names the two queues.
#[test]
fn two_workers_share_a_two_queue_veth() {
    let Some(_lock) = preflight("two_workers_share_a_two_queue_veth", &["wrk"]) else {
        return;
    };
    let tb = Testbed::up("q", 2);
    let scratch = Scratch::new("queues");

    // More queues than the interface has: a clear error, before anything is attached.
    let out = run_in(
        &tb.srv_ns(),
        20,
        &[
            SYNACK,
            "serve",
            "--iface",
            &tb.srv_if(),
            "--ip",
            SRV_IP,
            "--port",
            PORT,
            "--body",
            BODY,
            "--queues",
            "3",
            "--cores",
            "0,1,0",
        ],
    );
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "--queues 3 on 2 queues started:\n{err}"
    );
    assert!(
        err.contains("has (2)") && err.contains("--queues 3"),
        "the error does not name the queue count: {err}"
    );
    let link = run_in(
        &tb.srv_ns(),
        5,
        &["ip", "-d", "link", "show", "dev", &tb.srv_if()],
    );
    assert!(
        !text(&link.stdout).contains("prog/xdp"),
        "an XDP program stayed attached after the refusal"
    );
    println!("  --queues 3 refused: {}", err.trim());

    let mut srv = Server::start(
        &tb,
        &scratch,
        "synack",
        &[
            "--queues",
            "2",
            "--cores",
            "0,1",
            "--quiet",
            "--metrics",
            METRICS_ADDR,
        ],
    );
    assert!(
        srv.log_text().contains("2 queues"),
        "ready line does not say 2 queues:\n{}",
        srv.log_text()
    );
    curl_ok(&tb, "2").expect("first request");
    let ka = wrk(&tb, 2, 64, 3, false);
    let cl = wrk(&tb, 2, 64, 2, true);
    assert!(ka.requests > 0 && cl.requests > 0);
    assert_eq!(ka.errors, 0, "wrk keep-alive counted errors");
    assert_eq!(cl.errors, 0, "wrk Connection: close counted errors");

    // Metrics: both workers received frames and answered requests.
    let m = scrape_until(&tb, "traffic on both workers", |e| {
        ["0", "1"].iter().all(|w| {
            e.find("synack_rx_frames_total", &[("worker", w)])
                .is_some_and(|v| v > 0.0)
        })
    });
    for w in ["0", "1"] {
        let rx = m.get("synack_rx_frames_total", &[("worker", w)]);
        let tx = m.get("synack_tx_frames_total", &[("worker", w)]);
        let req = m.get("synack_requests_total", &[("worker", w)]);
        let est = m.get("synack_connections_established_total", &[("worker", w)]);
        println!("  metrics worker {w}: rx {rx} tx {tx} established {est} requests {req}");
        assert!(
            tx > 0.0 && req > 0.0 && est > 0.0,
            "worker {w} served nothing"
        );
    }

    let (st, log) = srv.stop();
    assert!(st.success(), "synack exited with {st}:\n{log}");
    let workers = parse_worker_lines(&log);
    assert_eq!(workers.len(), 2, "expected 2 worker lines:\n{log}");
    for (i, w) in workers.iter().enumerate() {
        println!("  final worker {}: {w:?}", w.worker);
        assert_eq!(
            (w.worker, w.queue),
            (i as u64, i as u64),
            "worker/queue pairing"
        );
        assert!(w.rx > 0 && w.tx > 0, "worker {i} moved no frames:\n{log}");
        assert!(w.established > 0, "worker {i} established nothing:\n{log}");
    }
    let est: u64 = workers.iter().map(|w| w.established).sum();
    // wrk's close run alone opened one connection per request.
    assert!(
        est >= cl.requests,
        "established {est} < close-mode requests {}",
        cl.requests
    );
}

/// `--stats-out`: SIGUSR1 writes the files while serving; SIGTERM writes them again at exit.
/// Every .hgrm parses as HdrHistogram text and summary.json as strict JSON with the right values.
#[test]
fn stats_files_parse() {
    let Some(_lock) = preflight("stats_files_parse", &["wrk"]) else {
        return;
    };
    let tb = Testbed::up("st", 2);
    let scratch = Scratch::new("stats");
    let dir = scratch.path("stats");
    let dir_s = dir.to_str().unwrap().to_string();
    let mut srv = Server::start(
        &tb,
        &scratch,
        "synack",
        &[
            "--queues",
            "2",
            "--cores",
            "0,1",
            "--quiet",
            "--stats-out",
            &dir_s,
        ],
    );
    let ka = wrk(&tb, 2, 64, 2, false);
    assert!(
        !dir.join("summary.json").exists(),
        "summary.json exists before SIGUSR1 or exit"
    );

    // SIGUSR1: the files appear while synack keeps serving.
    signal(srv.pid(), "USR1");
    let t0 = Instant::now();
    let dumped = loop {
        if let Ok(s) = std::fs::read_to_string(dir.join("summary.json"))
            && let Ok(j) = parse_json(&s)
        {
            break j;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "SIGUSR1 wrote no summary.json within 5 s:\n{}",
            srv.log_text()
        );
        sleep(Duration::from_millis(100));
    };
    assert!(
        srv.alive(),
        "synack exited after SIGUSR1:\n{}",
        srv.log_text()
    );
    for m in ["handshake", "request", "lifetime", "loop"] {
        let f = dir.join(format!("{m}.hgrm"));
        let t = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        parse_hgrm(&t).unwrap_or_else(|e| panic!("{m}.hgrm after SIGUSR1: {e}\n{t}"));
    }
    let dump_requests = dumped.num("requests");
    let dump_handshakes = dumped.num("latency.handshake.count");
    println!("  after SIGUSR1: requests {dump_requests}, handshakes {dump_handshakes}");
    assert!(dump_requests > 0.0 && dump_handshakes > 0.0);
    curl_ok(&tb, "2").expect("a request after SIGUSR1");

    let cl = wrk(&tb, 2, 64, 2, true);
    let (st, log) = srv.stop();
    assert!(st.success(), "synack exited with {st}:\n{log}");

    let mut counts = HashMap::new();
    for m in ["handshake", "request", "lifetime", "loop"] {
        let f = dir.join(format!("{m}.hgrm"));
        let t = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let h = parse_hgrm(&t).unwrap_or_else(|e| panic!("{m}.hgrm: {e}\n{t}"));
        println!(
            "  {m}.hgrm: {} lines, total {}, mean {}, max {}",
            h.rows.len(),
            h.total,
            h.mean,
            h.max
        );
        if m == "handshake" || m == "request" {
            assert!(h.total > 0, "{m}.hgrm has no samples:\n{t}");
        }
        counts.insert(m, h.total);
    }

    let s = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    let j = parse_json(&s).unwrap_or_else(|e| panic!("summary.json is not JSON: {e}\n{s}"));
    assert!(j.num("elapsed_seconds") > 0.0);
    let requests = j.num("requests");
    assert!(j.num("connections_established") > 0.0);
    assert!(j.num("drops") >= 0.0);
    // The server counts every response it queued; wrk only those that arrived before it stopped.
    let client_total = (ka.requests + cl.requests + 1) as f64;
    assert!(
        requests >= client_total,
        "summary says {requests} requests, the clients got {client_total}"
    );
    assert!(
        requests > dump_requests,
        "requests did not grow after the dump"
    );
    assert!(j.num("latency.handshake.count") > dump_handshakes);
    for m in ["handshake", "request", "lifetime", "loop"] {
        let p = |k: &str| j.num(&format!("latency.{m}.{k}"));
        let count = p("count");
        assert_eq!(
            count as u64, counts[m],
            "{m}: JSON count vs .hgrm total count"
        );
        let unit = j
            .get("latency")
            .and_then(|l| l.get(m))
            .and_then(|x| x.get("unit"));
        let want = if m == "loop" { "ns" } else { "us" };
        assert_eq!(unit, Some(&Json::Str(want.into())), "{m}: unit");
        if count > 0.0 {
            let q = [p("min"), p("p50"), p("p90"), p("p99"), p("p99_9"), p("max")];
            assert!(
                q.windows(2).all(|w| w[0] <= w[1]),
                "{m}: min <= p50 <= p90 <= p99 <= p99.9 <= max fails: {q:?}"
            );
            assert!(p("mean") >= p("min") && p("mean") <= p("max"), "{m}: mean");
        }
    }
    assert!(j.num("latency.handshake.count") > 0.0);
    let Some(Json::Arr(ws)) = j.get("workers") else {
        panic!("summary.json has no workers array:\n{s}");
    };
    assert_eq!(ws.len(), 2, "two workers in summary.json");
    let mut sum = 0.0;
    for (i, w) in ws.iter().enumerate() {
        assert_eq!(w.num("worker"), i as f64);
        assert_eq!(w.num("queue"), i as f64);
        assert!(
            w.num("rx_frames") > 0.0 && w.num("tx_frames") > 0.0,
            "worker {i}"
        );
        assert!(w.num("established") > 0.0, "worker {i} established");
        for k in ["retransmits", "drops", "requests"] {
            assert!(w.num(k) >= 0.0);
        }
        sum += w.num("requests");
    }
    assert_eq!(sum, requests, "per-worker requests add up to the total");
}

/// `--metrics`: Prometheus text with HELP/TYPE lines and the counters, gauges and histograms
/// the README promises; counters never go down between scrapes.
#[test]
fn metrics_endpoint_is_prometheus_text() {
    let Some(_lock) = preflight("metrics_endpoint_is_prometheus_text", &["wrk"]) else {
        return;
    };
    let tb = Testbed::up("m", 2);
    let scratch = Scratch::new("metrics");
    let mut srv = Server::start(
        &tb,
        &scratch,
        "synack",
        &[
            "--queues",
            "2",
            "--cores",
            "0,1",
            "--quiet",
            "--metrics",
            METRICS_ADDR,
        ],
    );
    let (head, _) = scrape(&tb);
    let status = head.lines().next().unwrap_or("");
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "metrics status: {status}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "metrics content type:\n{head}"
    );

    wrk(&tb, 2, 32, 2, false);
    wrk(&tb, 2, 32, 1, true);
    let first = scrape_until(&tb, "handshakes and requests", |e| {
        e.find("synack_handshake_duration_seconds_count", &[])
            .is_some_and(|v| v > 0.0)
            && e.find("synack_request_duration_seconds_count", &[])
                .is_some_and(|v| v > 0.0)
    });

    let families = [
        ("synack_rx_frames_total", "counter"),
        ("synack_tx_frames_total", "counter"),
        ("synack_drops_total", "counter"),
        ("synack_connections", "gauge"),
        ("synack_retransmits_total", "counter"),
        ("synack_syn_cookies_sent_total", "counter"),
        ("synack_syn_cookies_validated_total", "counter"),
        ("synack_connections_established_total", "counter"),
        ("synack_connections_closed_total", "counter"),
        ("synack_requests_total", "counter"),
        ("synack_rx_bytes_total", "counter"),
        ("synack_tx_bytes_total", "counter"),
        ("synack_http_responses_total", "counter"),
        ("synack_build_info", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("synack_handshake_duration_seconds", "histogram"),
        ("synack_request_duration_seconds", "histogram"),
        ("synack_connection_duration_seconds", "histogram"),
        ("synack_loop_duration_seconds", "histogram"),
    ];
    for (f, kind) in families {
        assert_eq!(
            first.types.get(f).map(String::as_str),
            Some(kind),
            "TYPE of {f}"
        );
        assert!(first.helps.contains(f), "no HELP for {f}");
    }
    for w in ["0", "1"] {
        for f in [
            "synack_rx_frames_total",
            "synack_tx_frames_total",
            "synack_requests_total",
        ] {
            assert!(first.get(f, &[("worker", w)]) > 0.0, "{f} of worker {w}");
        }
        for f in [
            "synack_retransmits_total",
            "synack_syn_cookies_sent_total",
            "synack_syn_cookies_validated_total",
        ] {
            assert!(first.get(f, &[("worker", w)]) >= 0.0);
        }
    }
    // Drops by layer and reason, connections by state.
    let drops = first.all("synack_drops_total");
    assert!(!drops.is_empty());
    assert!(
        drops.iter().all(|s| s.label("worker").is_some()
            && s.label("layer").is_some()
            && s.label("reason").is_some()),
        "a drop sample lacks worker/layer/reason"
    );
    let reasons: HashSet<&str> = drops.iter().filter_map(|s| s.label("reason")).collect();
    assert!(reasons.len() > 3, "few drop reasons: {reasons:?}");
    let states: HashSet<&str> = first
        .all("synack_connections")
        .iter()
        .filter_map(|s| s.label("state"))
        .collect();
    for st in [
        "SYN-RECEIVED",
        "ESTABLISHED",
        "TIME-WAIT",
        "CLOSE-WAIT",
        "LAST-ACK",
    ] {
        assert!(
            states.contains(st),
            "no synack_connections{{state=\"{st}\"}}: {states:?}"
        );
    }
    // Histograms: cumulative buckets in increasing `le`, the last `+Inf` equal to the count,
    // a positive sum of plausible seconds.
    for m in ["handshake", "request"] {
        let name = format!("synack_{m}_duration_seconds");
        let buckets: Vec<(f64, f64)> = first
            .all(&format!("{name}_bucket"))
            .iter()
            .map(|s| {
                let le = s.label("le").expect("le");
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le is a number")
                };
                (le, s.value)
            })
            .collect();
        let count = first.get(&format!("{name}_count"), &[]);
        let sum = first.get(&format!("{name}_sum"), &[]);
        println!("  {name}: count {count}, mean {:.6} s", sum / count);
        assert!(buckets.len() > 10, "{name}: {buckets:?}");
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{name} buckets not cumulative: {buckets:?}"
        );
        assert_eq!(buckets.last().copied(), Some((f64::INFINITY, count)));
        assert!(count > 0.0 && sum > 0.0 && sum / count < 10.0, "{name}");
    }

    // More traffic: every counter is monotonic.
    wrk(&tb, 2, 32, 1, false);
    let before_rx: f64 = first
        .all("synack_rx_frames_total")
        .iter()
        .map(|s| s.value)
        .sum();
    let second = scrape_until(&tb, "more frames", |e| {
        e.all("synack_rx_frames_total")
            .iter()
            .map(|s| s.value)
            .sum::<f64>()
            > before_rx
    });
    for s in &first.samples {
        if first.types.get(&s.name).map(String::as_str) != Some("counter") {
            continue;
        }
        let labels: Vec<(&str, &str)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let later = second.get(&s.name, &labels);
        assert!(
            later >= s.value,
            "counter {} {:?} went down: {} -> {later}",
            s.name,
            s.labels,
            s.value
        );
    }
    let (st, log) = srv.stop();
    assert!(st.success(), "synack exited with {st}:\n{log}");
}

/// `--pcap`: tcpdump reads the file and sees one curl's handshake and the response;
/// `--pcap-max N` bounds the capture even with two workers writing.
#[test]
fn pcap_shows_the_handshake_and_is_bounded() {
    let Some(_lock) = preflight(
        "pcap_shows_the_handshake_and_is_bounded",
        &["tcpdump", "wrk"],
    ) else {
        return;
    };
    let tb = Testbed::up("p", 2);
    let scratch = Scratch::new("pcap");
    // tcpdump's AppArmor profile (where enforced) lets it read files named *.pcap.
    let file = scratch.path("one.pcap");
    let file_s = file.to_str().unwrap().to_string();
    let mut srv = Server::start(
        &tb,
        &scratch,
        "one",
        &[
            "--queues", "2", "--cores", "0,1", "--quiet", "--pcap", &file_s,
        ],
    );
    curl_ok(&tb, "2").expect("the request");
    let (st, log) = srv.stop();
    assert!(st.success(), "synack exited with {st}:\n{log}");

    let out = run(20, &["tcpdump", "-nr", &file_s]);
    assert!(
        out.status.success(),
        "tcpdump -r failed: {}",
        text(&out.stderr)
    );
    let dump = text(&out.stdout);
    println!("  tcpdump -nr:\n{dump}");
    let lines: Vec<&str> = dump.lines().collect();
    let to_srv = format!("> {SRV_IP}.{PORT}:");
    let syn = lines
        .iter()
        .position(|l| {
            l.contains(&to_srv) && l.contains(&format!("IP {CLI_IP}.")) && l.contains("Flags [S],")
        })
        .unwrap_or_else(|| panic!("no SYN to {SRV_IP}.{PORT}:\n{dump}"));
    // The client's port, from "IP 198.18.0.2.PORT > ...".
    let cport = lines[syn]
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{CLI_IP}.")))
        .unwrap_or_else(|| panic!("no client port in {}", lines[syn]))
        .to_string();
    let cli = format!("{CLI_IP}.{cport}");
    let synack = lines[syn + 1..]
        .iter()
        .position(|l| {
            l.contains(&format!("IP {SRV_IP}.{PORT} > {cli}:")) && l.contains("Flags [S.],")
        })
        .map(|i| i + syn + 1)
        .unwrap_or_else(|| panic!("no SYN/ACK after the SYN:\n{dump}"));
    lines[synack + 1..]
        .iter()
        .find(|l| l.contains(&format!("IP {cli} > {SRV_IP}.{PORT}:")) && l.contains("Flags [.],"))
        .unwrap_or_else(|| panic!("no ACK after the SYN/ACK:\n{dump}"));

    let out = run(20, &["tcpdump", "-A", "-nr", &file_s]);
    assert!(out.status.success());
    let ascii = text(&out.stdout);
    assert!(
        ascii.contains("GET / HTTP/1.1"),
        "no request in the capture"
    );
    assert!(
        ascii.contains("HTTP/1.1 200"),
        "no response in the capture:\n{ascii}"
    );
    assert!(ascii.contains(BODY), "no body in the capture");

    // --pcap-max: many more frames than the budget, from both workers.
    let max = 50u64;
    let file2 = scratch.path("bounded.pcap");
    let file2_s = file2.to_str().unwrap().to_string();
    let mut srv = Server::start(
        &tb,
        &scratch,
        "bounded",
        &[
            "--queues",
            "2",
            "--cores",
            "0,1",
            "--quiet",
            "--pcap",
            &file2_s,
            "--pcap-max",
            &max.to_string(),
        ],
    );
    let r = wrk(&tb, 2, 16, 1, true);
    assert!(r.requests > max, "too little traffic to test the bound");
    let (st, log) = srv.stop();
    assert!(st.success(), "synack exited with {st}:\n{log}");
    let out = run(20, &["tcpdump", "-nr", &file2_s]);
    assert!(
        out.status.success(),
        "tcpdump -r failed: {}",
        text(&out.stderr)
    );
    let n = text(&out.stdout).lines().count() as u64;
    println!("  --pcap-max {max}: {n} frames in the file");
    assert!(
        n > 0 && n <= max,
        "{n} frames captured with --pcap-max {max}"
    );
}

/// A SYN flood from spoofed addresses of the test subnet: with a small SYN backlog synack
/// answers with SYN cookies, a real client is still served within 1 s every time, and the
/// server's memory stays bounded.
#[test]
fn syn_flood_is_absorbed_by_cookies() {
    let Some(_lock) = preflight("syn_flood_is_absorbed_by_cookies", &["hping3", "taskset"]) else {
        return;
    };
    let tb = Testbed::up("f", 1);
    let scratch = Scratch::new("flood");
    let mut srv = Server::start(
        &tb,
        &scratch,
        "synack",
        &[
            "--queues",
            "1",
            "--cores",
            "1",
            "--quiet",
            "--syn-backlog",
            "64",
            "--metrics",
            METRICS_ADDR,
        ],
    );
    curl_ok(&tb, "2").expect("a request before the flood");
    let rss0 = srv.rss_kib();

    // Four hping3 processes, each from one spoofed address of 198.18.0.0/24 (not .1 or .2),
    // source ports counting up, 30,000 SYNs each at most 10,000/s. synack answers the spoofed
    // addresses at the client veth's MAC; the client kernel drops what is not for its address.
    let mut flood = Background {
        children: Vec::new(),
    };
    let cli_ns = tb.cli_ns();
    let tx0 = tb.cli_tx_packets();
    for a in 10..14 {
        let src = format!("198.18.0.{a}");
        let child = Command::new("ip")
            .args([
                "netns", "exec", &cli_ns, "taskset", "-c", "0", "hping3", "-q", "-S",
            ])
            .args(["-p", PORT, "-a", &src, "-i", "u100", "-c", "30000", SRV_IP])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn hping3");
        flood.children.push(child);
    }

    // Each request goes out after the flood has sent another FLOOD_STEP SYNs (the client veth's
    // frame counter), so the six are spread over the flood, whatever its rate.
    const FLOOD_STEP: u64 = 3_000;
    let mut max_rss = rss0;
    let mut times = Vec::new();
    let mut tx = tx0;
    for i in 0..6 {
        tx = tb
            .await_cli_tx(tx, FLOOD_STEP, Duration::from_secs(10))
            .unwrap_or_else(|| {
                panic!("the flood sent fewer than {FLOOD_STEP} frames in 10 s before request {i}")
            });
        assert!(flood.running() > 0, "the flood ended before request {i}");
        let t = Instant::now();
        if let Err(e) = curl_ok(&tb, "1") {
            panic!("request {i} during the flood failed: {e}");
        }
        times.push(t.elapsed());
        max_rss = max_rss.max(srv.rss_kib());
    }
    let during = scrape_until(&tb, "SYN cookies sent", |e| {
        e.find("synack_syn_cookies_sent_total", &[("worker", "0")])
            .is_some_and(|v| v > 0.0)
    });
    let still = flood.running();
    max_rss = max_rss.max(srv.rss_kib());
    let killed = flood.finish(Duration::from_secs(15));
    println!(
        "  requests during the flood took {:?}; {still} hping3 still running after them; {killed} killed at the end",
        times
    );
    println!(
        "  metrics during the flood: cookies sent {}, validated {}",
        during.get("synack_syn_cookies_sent_total", &[("worker", "0")]),
        during.get("synack_syn_cookies_validated_total", &[("worker", "0")])
    );
    assert!(still > 0, "the flood was over before the last check");
    assert!(
        curl_ok(&tb, "1").is_ok(),
        "a request after the flood failed"
    );

    // The same over IPv6. hping3 speaks IPv4 only: a Python sender writes SYN frames from
    // 256 spoofed addresses of fd00:198:18::/64 straight onto the client's veth (AF_PACKET),
    // at most 20,000 per second, 60,000 in all, while IPv6 requests must still be served.
    let cookies_v4 = scrape(&tb).1;
    let cookies_before = parse_exposition(&cookies_v4)
        .ok()
        .and_then(|e| e.find("synack_syn_cookies_sent_total", &[("worker", "0")]))
        .unwrap_or(0.0);
    let srv_mac = text(
        &run_in(
            &tb.srv_ns(),
            5,
            &["cat", &format!("/sys/class/net/{}/address", tb.srv_if())],
        )
        .stdout,
    )
    .trim()
    .to_string();
    let flood6 = Command::new("ip")
        .args([
            "netns", "exec", &cli_ns, "taskset", "-c", "0", "python3", "-c", SYN_FLOOD6,
        ])
        .args([&tb.cli_if(), &srv_mac, SRV_IP6, PORT, "60000", "20000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the IPv6 SYN sender");
    let mut flood = Background {
        children: vec![flood6],
    };
    let mut times6 = Vec::new();
    let mut tx = tb.cli_tx_packets();
    for i in 0..4 {
        tx = tb
            .await_cli_tx(tx, FLOOD_STEP, Duration::from_secs(10))
            .unwrap_or_else(|| {
                panic!("the IPv6 flood sent fewer than {FLOOD_STEP} frames in 10 s")
            });
        assert!(
            flood.running() > 0,
            "the IPv6 flood ended before request {i}"
        );
        let t = Instant::now();
        if let Err(e) = curl6_ok(&tb, "1") {
            panic!("IPv6 request {i} during the IPv6 flood failed: {e}");
        }
        times6.push(t.elapsed());
        max_rss = max_rss.max(srv.rss_kib());
    }
    let during6 = scrape_until(&tb, "IPv6 SYN cookies sent", |e| {
        e.find("synack_syn_cookies_sent_total", &[("worker", "0")])
            .is_some_and(|v| v > cookies_before + 1000.0)
    });
    let killed6 = flood.finish(Duration::from_secs(15));
    println!(
        "  IPv6: requests during the flood took {times6:?}; cookies sent {} in all; {killed6} killed at the end",
        during6.get("synack_syn_cookies_sent_total", &[("worker", "0")])
    );
    assert!(
        curl6_ok(&tb, "1").is_ok(),
        "an IPv6 request after the flood failed"
    );

    let (st, log) = srv.stop();
    assert!(st.success(), "synack exited with {st}:\n{log}");
    let w = parse_worker_lines(&log);
    assert_eq!(w.len(), 1, "one worker line:\n{log}");
    let w = w[0];
    println!(
        "  final: rx {} tx {} established {} cookies {}/{} (sent/valid); RSS {rss0} KiB before, at most {max_rss} KiB during",
        w.rx, w.tx, w.established, w.cookies_sent, w.cookies_valid
    );
    assert!(w.rx > 10_000, "the flood did not reach synack: rx {}", w.rx);
    assert!(w.cookies_sent > 1_000, "few SYN cookies sent: {w:?}");
    // The requests during the flood met a full SYN backlog: they were opened by cookies.
    assert!(
        w.cookies_valid >= 1,
        "no connection opened from a SYN cookie: {w:?}"
    );
    assert!(
        w.established >= 13,
        "the 13 requests (8 IPv4, 5 IPv6) were not all established: {w:?}"
    );
    assert!(
        max_rss <= rss0 + 64 * 1024,
        "RSS grew from {rss0} KiB to {max_rss} KiB during the flood"
    );
}

/// SYN frames over IPv6 from spoofed addresses, written to an AF_PACKET socket:
/// argv = IF DST_MAC DST_IP6 PORT COUNT RATE.
const SYN_FLOOD6: &str = r#"
import socket, struct, sys, time
ifc, mac, dst, port, count, rate = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
dmac = bytes(int(x, 16) for x in mac.split(":"))
dip = socket.inet_pton(socket.AF_INET6, dst)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifc, 0))
smac = s.getsockname()[4][:6]
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
frames = []
for i in range(256):
    sip = socket.inet_pton(socket.AF_INET6, "fd00:198:18::%x:%x" % (0x100 + i, i + 1))
    for sport in range(20000, 20000 + 64):
        opts = struct.pack("!BBH", 2, 4, 1440)
        tcp = struct.pack("!HHIIBBHHH", sport, port, i * 7919 + sport, 0, (6 << 4), 0x02, 64800, 0, 0) + opts
        c = csum(sip + dip + struct.pack("!IxxxB", len(tcp), 6) + tcp)
        tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
        ip6 = struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + sip + dip
        frames.append(dmac + smac + b"\x86\xdd" + ip6 + tcp)
sent = 0
t0 = time.monotonic()
while sent < count:
    s.send(frames[sent % len(frames)])
    sent += 1
    if sent % 100 == 0:
        ahead = sent / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
print("sent", sent)
"#;

// ------------------------------------------------------------------------------------------------
// The parsers themselves (no root needed): they must reject what they are there to catch.

#[test]
fn parsers_reject_bad_input() {
    let good = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
        \x20      0.010 0.000000000000          1           1.00\n\
        \x20      0.020 0.500000000000          2           2.00\n\
        \x20      0.030 1.000000000000          3\n\
        #[Mean    =        0.020, StdDeviation   =        0.008]\n\
        #[Max     =        0.030, Total count    =            3]\n\
        #[Buckets =           22, SubBuckets     =         2048]\n";
    let h = parse_hgrm(good).expect("good hgrm");
    assert_eq!((h.rows.len(), h.total), (3, 3));
    assert!(
        parse_hgrm(&good.replace("0.020 0.5", "0.005 0.5")).is_err(),
        "decreasing value"
    );
    assert!(
        parse_hgrm(&good.replace("=            3]", "=            4]")).is_err(),
        "count"
    );
    assert!(parse_hgrm(&good.replace("          2           2.00", "          2")).is_err());
    assert!(parse_hgrm(&good.replace("Value", "Valeur")).is_err());

    assert!(parse_json(r#"{"a": [1, -2.5e3, true, null, "x\"y"], "b": {}}"#).is_ok());
    for bad in [
        r#"{"a": 1,}"#,
        r#"{"a": NaN}"#,
        r#"{"a": 01}"#,
        r#"{"a": 1} x"#,
        r#"{"a": 1, "a": 2}"#,
        r#"{"a": .5}"#,
        "[1, 2",
    ] {
        assert!(parse_json(bad).is_err(), "accepted {bad}");
    }

    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{w=\"0\"} 1\n\
        # TYPE s summary\ns{quantile=\"0.5\"} 1e-3\ns_sum 2\ns_count 3\n";
    let e = parse_exposition(ok).expect("good exposition");
    assert_eq!(e.get("a_total", &[("w", "0")]), 1.0);
    assert_eq!(e.get("s_count", &[]), 3.0);
    for bad in [
        "a_total 1\n",                                    // no TYPE
        "# TYPE a counter\na{w=0} 1\n",                   // unquoted label
        "# TYPE a counter\na 1 2 3\n",                    // extra fields
        "# TYPE a counter\na one\n",                      // not a number
        "# TYPE a counter\na -1\n",                       // negative counter
        "# TYPE a counter\na{w=\"0\"} 1\na{w=\"0\"} 2\n", // duplicate series
        "# TYPE a gauge\na NaN\n",                        // not finite
        "# TYPE a counter\na 1",                          // no final newline
        "# TYPE s summary\ns 1\n",                        // summary without quantile
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }

    let line = "  worker 1 (queue 1, core 0): rx 10 tx 9 frames, established 3, resets sent 2, retransmits 1, syn cookies 7/6 (sent/valid)";
    let w = parse_worker_lines(line);
    assert_eq!(w.len(), 1);
    let w = w[0];
    assert_eq!(
        (w.worker, w.queue, w.rx, w.tx, w.established),
        (1, 1, 10, 9, 3)
    );
    assert_eq!(
        (
            w.resets_sent,
            w.retransmits,
            w.cookies_sent,
            w.cookies_valid
        ),
        (2, 1, 7, 6)
    );
    let wrk_out = "  10 requests in 1.00s, 1KB read\n  Socket errors: connect 1, read 2, write 0, timeout 3\n\
        \x20 Non-2xx or 3xx responses: 4\nRequests/sec:     10.00\n";
    let r = parse_wrk(wrk_out).expect("wrk output");
    assert_eq!((r.requests, r.errors), (10, 10));
}
