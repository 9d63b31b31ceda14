//! `synack load` on the test hosts: against nginx (the Linux kernel's TCP as the peer) and
//! against `synack serve`, in both modes and over both families; what `ss` shows on the
//! server side while it runs; what it counts when answers are wrong; and its open loop.
//!
//! Needs root, AF_XDP, veth and nginx (CI installs it). Run with
//!     cargo build --release --bins && cargo test --release --test load -- --nocapture

mod testbed;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testbed::{CLIENT_CORE, Family, Server, TempDir, ok, text};

/// nginx's port in the server namespace.
const NGINX_PORT: u16 = 8081;

/// nginx in the server namespace, one process, killed in `Drop`.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx on both families: `/` answers "hello from nginx", `/file` a 100000-byte file, anything
/// else 404. Keep-alive requests unlimited, so a run never sees a close it did not ask for.
fn start_nginx(bed: &testbed::Bed, dir: &TempDir) -> Nginx {
    let d = dir.as_str();
    std::fs::write(dir.join("file"), testbed::seeded_bytes(7, 100_000)).unwrap();
    let conf = format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  default_type text/plain;
  server {{
    listen {v4}:{NGINX_PORT};
    listen [{v6}]:{NGINX_PORT};
    root {d};
    location = / {{ return 200 "hello from nginx"; }}
    location = /file {{ }}
  }}
}}
"#,
        v4 = Family::V4.srv_ip(),
        v6 = Family::V6.srv_ip(),
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let check = bed.server_ns(30, &["nginx", "-t", "-q", "-c", path.to_str().unwrap()]);
    ok(&check, "nginx -t (the test's configuration)");
    let child = Command::new("ip")
        .args(["netns", "exec", &bed.srv_ns, "nginx", "-c"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let nginx = Nginx(child);
    // Wait until it listens (both families).
    for _ in 0..50 {
        let o = bed.server_ns(5, &["ss", "-Htln", &format!("sport = :{NGINX_PORT}")]);
        if text(&o).lines().count() >= 2 {
            return nginx;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nginx did not listen on port {NGINX_PORT}");
}

fn url(family: Family, port: u16, path: &str) -> String {
    format!("http://{}:{port}{path}", family.host())
}

/// `synack load` in the client namespace on the client core; its output (stdout and stderr).
fn load(bed: &testbed::Bed, args: &[&str]) -> (bool, String) {
    let mut argv = vec![
        testbed::synack_bin(),
        "load",
        "--iface",
        &bed.cli_if,
        "--cores",
        CLIENT_CORE,
    ];
    argv.extend_from_slice(args);
    let o = bed.client(60, &argv);
    (o.status.success(), text(&o))
}

fn spawn_load(bed: &testbed::Bed, args: &[&str]) -> Child {
    let mut argv = vec![
        testbed::synack_bin(),
        "load",
        "--iface",
        &bed.cli_if,
        "--cores",
        CLIENT_CORE,
    ];
    argv.extend_from_slice(args);
    bed.client_spawn(60, &argv)
}

/// A number after `label` in the report.
fn figure(out: &str, label: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{out}"));
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in {line:?}"))
}

/// The report of a run that must have gone without any error.
fn assert_clean(out: &str, what: &str) {
    assert!(
        !out.contains("Socket errors:") && !out.contains("Non-2xx or 3xx responses:"),
        "{what}: errors:\n{out}"
    );
    assert!(out.contains("Errors: 0  ("), "{what}:\n{out}");
    assert!(figure(out, "Requests/sec:") > 100.0, "{what}:\n{out}");
    // wrk's layout, line for line where scripts look.
    for l in [
        "  Thread Stats   Avg      Stdev     Max   +/- Stdev",
        "  Latency Distribution",
        "Transfer/sec:",
    ] {
        assert!(out.contains(l), "{what}: no {l:?} in:\n{out}");
    }
}

/// TCP sockets of the server namespace in `state` on `port`, as `ss` counts them.
fn ss_count(bed: &testbed::Bed, state: &str, port: u16) -> usize {
    let o = bed.server_ns(
        10,
        &[
            "ss",
            "-Htan",
            "state",
            state,
            &format!("( sport = :{port} )"),
        ],
    );
    // Only the socket lines (the output helper adds the status and stream headers).
    let local = format!(":{port} ");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(&local))
        .count()
}

#[test]
fn load_drives_nginx_over_both_families_in_both_modes() {
    let Some(env) = testbed::setup_needing("ld", 1, &["nginx", "ss"]) else {
        return;
    };
    let bed = &env.bed;
    let dir = TempDir::new("ld-nginx");
    let _nginx = start_nginx(bed, &dir);
    for family in Family::BOTH {
        let u = url(family, NGINX_PORT, "/");
        // Keep-alive: while it runs, nginx's side shows the 32 connections ESTABLISHED.
        let child = spawn_load(bed, &["-c", "32", "-d", "3", "--mode", "keepalive", &u]);
        std::thread::sleep(Duration::from_millis(1500));
        let established = ss_count(bed, "established", NGINX_PORT);
        let o = child.wait_with_output().unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "{} keepalive:\n{out}", family.name());
        assert_clean(&out, &format!("{} keepalive", family.name()));
        assert_eq!(
            established,
            32,
            "{}: nginx's ESTABLISHED sockets during the run:\n{out}",
            family.name()
        );
        println!("{} keepalive against nginx:\n{out}", family.name());

        // Close mode: a connection per request; nginx closes first (Connection: close), so
        // its side keeps the TIME-WAITs, one per completed connection at most.
        let before = ss_count(bed, "time-wait", NGINX_PORT);
        let (good, out) = load(bed, &["-c", "16", "-d", "2", "--mode", "close", &u]);
        assert!(good, "{} close:\n{out}", family.name());
        assert_clean(&out, &format!("{} close", family.name()));
        let conns = figure(&out, "Connections/sec:");
        assert!(conns > 100.0, "{}: {out}", family.name());
        let tw = ss_count(bed, "time-wait", NGINX_PORT);
        assert!(
            tw > before,
            "{}: no TIME-WAIT on nginx's side after close mode ({before} -> {tw})",
            family.name()
        );
        println!(
            "{} close against nginx: nginx TIME-WAIT {before} -> {tw}\n{out}",
            family.name()
        );
    }
}

#[test]
fn load_checks_answers_and_counts_what_is_wrong() {
    let Some(env) = testbed::setup_needing("lc", 1, &["nginx", "ss"]) else {
        return;
    };
    let bed = &env.bed;
    let dir = TempDir::new("lc-nginx");
    let _nginx = start_nginx(bed, &dir);
    let body = dir.join("file");
    let other = dir.join("other");
    std::fs::write(&other, b"not the file").unwrap();
    let u = url(Family::V4, NGINX_PORT, "/file");
    // The 100000-byte file, checked byte for byte (CRC-32), pipelined.
    let (good, out) = load(
        bed,
        &[
            "-c",
            "4",
            "-d",
            "2",
            "--pipeline",
            "4",
            "--expect-body",
            body.to_str().unwrap(),
            &u,
        ],
    );
    assert!(good, "{out}");
    assert_clean(&out, "pipelined file with --expect-body");
    // The same against the wrong expectation: every response counts as bad.
    let (_, out) = load(
        bed,
        &[
            "-c",
            "2",
            "-d",
            "1",
            "--expect-body",
            other.to_str().unwrap(),
            &u,
        ],
    );
    assert!(out.contains("  Socket errors: connect 0, read "), "{out}");
    assert!(!out.contains("bad bodies 0"), "{out}");
    // 404s are counted as wrk counts them.
    let (_, out) = load(
        bed,
        &[
            "-c",
            "2",
            "-d",
            "1",
            &url(Family::V4, NGINX_PORT, "/missing"),
        ],
    );
    assert!(out.contains("  Non-2xx or 3xx responses: "), "{out}");
    // Nobody listening on the port: the kernel refuses, counted as connect errors, and the
    // run says so.
    let (good, out) = load(bed, &["-c", "2", "-d", "1", &url(Family::V4, 9, "/")]);
    assert!(!good, "{out}");
    assert!(
        out.contains("no connection to 198.18.0.1:9 was established"),
        "{out}"
    );
    // A flag that makes no sense is refused before anything is attached.
    let (good, out) = load(bed, &["--mode", "close", "--pipeline", "2", &u]);
    assert!(
        !good && out.contains("--pipeline needs --mode keepalive"),
        "{out}"
    );
}

#[test]
fn load_drives_synack_serve_in_both_modes() {
    let Some(env) = testbed::setup("ls") else {
        return;
    };
    let bed = &env.bed;
    let server = Server::start(bed, &["--body", "hello"]);
    for family in Family::BOTH {
        let u = url(family, testbed::PORT, "/");
        let (good, out) = load(bed, &["-c", "32", "-d", "2", "--pipeline", "8", &u]);
        assert!(good, "{out}");
        assert_clean(&out, &format!("{} keepalive pipelined", family.name()));
        let (good, out) = load(bed, &["-c", "32", "-d", "2", "--mode", "close", &u]);
        assert!(good, "{out}");
        assert_clean(&out, &format!("{} close", family.name()));
        println!("{} close against synack serve:\n{out}", family.name());
    }
    let (status, log) = server.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn open_loop_keeps_its_rate_and_times_from_the_schedule() {
    let Some(env) = testbed::setup_needing("lr", 1, &["nginx", "ss"]) else {
        return;
    };
    let bed = &env.bed;
    let dir = TempDir::new("lr-nginx");
    let _nginx = start_nginx(bed, &dir);
    let u = url(Family::V4, NGINX_PORT, "/");
    let (good, out) = load(bed, &["-c", "8", "-d", "3", "--rate", "2000", &u]);
    assert!(good, "{out}");
    assert_clean(&out, "--rate 2000");
    let rps = figure(&out, "Requests/sec:");
    assert!(
        (1800.0..=2100.0).contains(&rps),
        "asked for 2000 requests/s, got {rps}:\n{out}"
    );
    println!("open loop at 2000/s against nginx:\n{out}");
    // One connection asked for far more than one connection can do: it falls behind its
    // schedule, and since each request is timed from when it was due, the median latency is
    // about half the run (a closed loop would say tens of microseconds).
    let (_, out) = load(bed, &["-c", "1", "-d", "2", "--rate", "500000", &u]);
    let p50 = latency_us(&out, "p50");
    assert!(p50 > 200_000.0, "p50 {p50} us behind schedule:\n{out}");
    assert!(figure(&out, "Requests/sec:") < 400_000.0, "{out}");
    println!("one connection asked for 500000/s:\n{out}");
}

/// A percentile from the `Latency: p50 ... p90 ...` line, in microseconds.
fn latency_us(out: &str, which: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("Latency: "))
        .unwrap_or_else(|| panic!("no Latency line:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| *w == which)
        .unwrap_or_else(|| panic!("no {which} in {line:?}"));
    let v = words[i + 1];
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e6)
    } else {
        panic!("unit of {v:?}")
    };
    num.parse::<f64>().unwrap() * scale
}

#[test]
fn sources_from_a_prefix_go_past_the_ports_of_one_address() {
    let Some(env) = testbed::setup_needing("lp", 1, &["nginx", "ss"]) else {
        return;
    };
    let bed = &env.bed;
    let dir = TempDir::new("lp-nginx");
    let _nginx = start_nginx(bed, &dir);
    // The server routes 198.19.89.0/24 through the client end (scripts/testbed.sh); a local
    // route makes the client's kernel own the prefix (and answer ARP for it, were it on-link).
    ok(
        &bed.client(
            10,
            &["ip", "route", "add", "local", "198.19.89.0/28", "dev", "lo"],
        ),
        "ip route add local",
    );
    let u = url(Family::V4, NGINX_PORT, "/");
    // Four ports per address: 24 connections need six addresses.
    let child = spawn_load(
        bed,
        &[
            "--src",
            "198.19.89.0/28",
            "--ports",
            "40000-40003",
            "-c",
            "24",
            "-d",
            "3",
            &u,
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let o = bed.server_ns(
        10,
        &[
            "ss",
            "-Htan",
            "state",
            "established",
            &format!("( sport = :{NGINX_PORT} )"),
        ],
    );
    let peers: std::collections::BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter_map(|p| p.rsplit_once(':').map(|(a, _)| a.to_string()))
        .collect();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_clean(&out, "--src prefix");
    assert!(peers.len() >= 6, "source addresses nginx saw: {peers:?}");
    assert!(
        peers.iter().all(|p| p.starts_with("198.19.89.")),
        "{peers:?}"
    );
    // An address the host does not own is refused, with what to do.
    let (good, out) = load(bed, &["--src", "198.19.90.7", "-d", "1", &u]);
    assert!(!good && out.contains("ip route add local"), "{out}");
}

#[test]
fn two_queues_two_workers_each_with_its_share() {
    let Some(env) = testbed::setup_needing("lq", 2, &["nginx", "ss"]) else {
        return;
    };
    let bed = &env.bed;
    let dir = TempDir::new("lq-nginx");
    let _nginx = start_nginx(bed, &dir);
    let u = url(Family::V4, NGINX_PORT, "/");
    // The answers to a worker's connections land on either queue (the server's transmit
    // queue picks it): the other worker hands them over, SYN/ACKs included.
    for mode in ["keepalive", "close"] {
        let mut argv = vec![
            testbed::synack_bin(),
            "load",
            "--iface",
            &bed.cli_if,
            "--queues",
            "2",
            "--cores",
            "0,1",
            "-c",
            "32",
            "-d",
            "2",
            "--mode",
            mode,
        ];
        argv.push(&u);
        let o = bed.client(60, &argv);
        let out = text(&o);
        assert!(o.status.success(), "{mode}:\n{out}");
        assert_clean(&out, mode);
        assert!(out.contains("  2 threads and 32 connections"), "{out}");
        if mode == "keepalive" {
            assert!(
                out.contains("(established 32, completed 0, opened 32;"),
                "every connection established:\n{out}"
            );
        }
        println!("two queues, {mode}:\n{out}");
    }
}
