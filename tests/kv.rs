//! examples/kv, the memcached text-protocol subset: its parser and shard store in memory, then
//! over a veth pair against Debian's memcached with the same command script (answers byte-equal),
//! with pymemcache as a second client, and with a client that never reads.
//!
//! The veth tests need root, AF_XDP, veth, `memcached` and Python's `pymemcache`
//! (scripts/setup.sh installs them). With SYNACK_VETH_REQUIRED=1 a missing one fails the test;
//! otherwise the test prints "SKIP: test: reason" and passes. They run one at a time, on the
//! example a whole `cargo test` builds:
//!
//!     cargo build --release --examples && cargo test --release --test kv -- --test-threads=1

mod testbed;

// The example's modules, compiled into this test too, for their unit tests.
#[allow(dead_code)]
#[path = "../examples/kv/app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../examples/kv/protocol.rs"]
mod protocol;
#[allow(dead_code)]
#[path = "../examples/kv/store.rs"]
mod store;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use protocol::Command as Cmd;
use testbed::{Bed, PORT, SRV_IP, ok, text};

// ---- the parser ----

fn reply(text: &'static [u8], noreply: bool) -> Cmd<'static> {
    Cmd::Reply { text, noreply }
}

#[test]
fn lines_end_as_memcached_ends_them() {
    assert_eq!(
        protocol::split_line(b"get a\r\nx"),
        Some((&b"get a"[..], 7))
    );
    assert_eq!(protocol::split_line(b"get a\nx"), Some((&b"get a"[..], 6)));
    // A lone "\r" before "\n" stays (memcached drops it only from longer lines).
    assert_eq!(protocol::split_line(b"\r\n"), Some((&b"\r"[..], 2)));
    assert_eq!(
        protocol::split_line(b"get a\r\r\n"),
        Some((&b"get a\r"[..], 8))
    );
    // A NUL ends the line.
    assert_eq!(
        protocol::split_line(b"get a\0b\r\n"),
        Some((&b"get a"[..], 9))
    );
    assert_eq!(protocol::split_line(b"get a"), None);
    assert!(protocol::partial_line_ok(&[b'x'; 2048]));
    assert!(!protocol::partial_line_ok(&[b'x'; 2049]));
    let mut get = b"  get ".to_vec();
    get.resize(4000, b'k');
    assert!(protocol::partial_line_ok(&get));
    get.resize(protocol::GET_LINE_MAX + 1, b'k');
    assert!(!protocol::partial_line_ok(&get), "bounded");
}

#[test]
fn commands_parse_as_memcached_reads_them() {
    use protocol::*;
    assert_eq!(
        parse(b"set k 5 0 3"),
        Cmd::Store {
            kind: StoreKind::Set,
            key: b"k",
            flags: 5,
            exptime: 0,
            len: 5,
            noreply: false
        }
    );
    assert_eq!(
        parse(b"add  k  0 -1 0 noreply"),
        Cmd::Store {
            kind: StoreKind::Add,
            key: b"k",
            flags: 0,
            exptime: -1,
            len: 2,
            noreply: true
        }
    );
    // Any other sixth token is ignored; a seventh is an ERROR.
    assert!(matches!(
        parse(b"set k 0 0 1 norepl"),
        Cmd::Store { noreply: false, .. }
    ));
    assert_eq!(parse(b"set k 0 0 1 noreply x"), reply(ERROR, false));
    assert_eq!(parse(b"set k 0 0"), reply(ERROR, false));
    assert_eq!(parse(b"set k 0 0 x noreply"), reply(BAD_FORMAT, true));
    assert_eq!(parse(b"set k 0 0 -1"), reply(BAD_FORMAT, false));
    assert_eq!(parse(b"set k 0 0 2147483646"), reply(BAD_FORMAT, false));
    // C's strtoul: 2^32 wraps to 0; a negative is refused.
    assert!(matches!(
        parse(b"set k 4294967296 0 1"),
        Cmd::Store { flags: 0, .. }
    ));
    assert_eq!(parse(b"set k -1 0 1"), reply(BAD_FORMAT, false));
    // The item limit counts the header: 1048516 bytes fit a 1-byte key without flags.
    assert!(matches!(parse(b"set k 0 0 1048516"), Cmd::Store { .. }));
    assert_eq!(
        parse(b"set k 0 0 1048517"),
        Cmd::TooLarge {
            kind: StoreKind::Set,
            key: b"k",
            swallow: 1048519,
            noreply: false
        }
    );
    assert!(matches!(parse(b"set k 1 0 1048513"), Cmd::TooLarge { .. }));
    let long = [b'k'; 251];
    let mut line = b"get a ".to_vec();
    line.extend_from_slice(&long);
    assert_eq!(parse(&line), reply(BAD_FORMAT, false));
    assert_eq!(
        parse(b"gets a  b"),
        Cmd::Get {
            cas: true,
            keys: b" a  b"
        }
    );
    assert_eq!(parse(b"get"), reply(ERROR, false));
    assert_eq!(
        parse(b"delete k"),
        Cmd::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert_eq!(
        parse(b"delete k 0 noreply"),
        Cmd::Delete {
            key: b"k",
            noreply: true
        }
    );
    assert_eq!(parse(b"delete k 1"), reply(BAD_DELETE, false));
    assert_eq!(parse(b"delete k 1 noreply"), reply(BAD_DELETE, true));
    assert_eq!(parse(b"quit"), Cmd::Close);
    assert_eq!(parse(b"GET / HTTP/1.1"), Cmd::Close);
    assert_eq!(parse(b"GET /"), reply(ERROR, false));
    assert_eq!(parse(b"x"), reply(ERROR, false));
    assert_eq!(parse(b"incr k 1"), reply(ERROR, false));
}

#[test]
fn numbers_are_read_as_c_reads_them() {
    use protocol::{strtol32, strtoul32};
    assert_eq!(strtol32(b"+5"), Some(5));
    assert_eq!(strtol32(b"-0"), Some(0));
    assert_eq!(strtol32(b"\t7\r"), Some(7), "blanks around");
    assert_eq!(
        strtol32(b"4294967297"),
        Some(1),
        "a long truncated to 32 bits"
    );
    assert_eq!(strtol32(b"99999999999999999999"), None, "ERANGE");
    assert_eq!(strtol32(b"1x"), None);
    assert_eq!(strtol32(b"-"), None);
    assert_eq!(strtoul32(b"4294967295"), Some(u32::MAX));
    assert_eq!(strtoul32(b"-5"), None);
    assert_eq!(strtoul32(b"-18446744073709551615"), Some(1), "C negates");
    assert_eq!(protocol::expiry(0, 1000), 0);
    assert_eq!(protocol::expiry(-1, 1000), 1);
    assert_eq!(protocol::expiry(60, 1000), 1060);
    assert_eq!(protocol::expiry(2_592_001, 5_000_000), 2_592_001);
}

// ---- the shard store ----

#[test]
fn store_numbers_cas_as_memcached_with_one_shard_and_uniquely_with_more() {
    let mut s = store::Store::new(0, 1, 1 << 20);
    let v = || Bytes::from_static(b"v\r\n");
    assert!(s.store(false, b"a", v(), 0, 0, 100));
    assert!(!s.store(true, b"a", v(), 0, 0, 100), "add on a live key");
    assert!(s.store(false, b"b", v(), 0, 0, 100));
    assert_eq!(s.get(b"a", 100).unwrap().cas, 1);
    assert_eq!(
        s.get(b"b", 100).unwrap().cas,
        2,
        "a refused add takes no cas"
    );
    let (mut s0, mut s1) = (
        store::Store::new(0, 2, 1 << 20),
        store::Store::new(1, 2, 1 << 20),
    );
    let mut seen = std::collections::HashSet::new();
    for i in 0..10u8 {
        s0.store(false, &[i], v(), 0, 0, 100);
        s1.store(false, &[i], v(), 0, 0, 100);
        assert!(seen.insert(s0.get(&[i], 100).unwrap().cas));
        assert!(seen.insert(s1.get(&[i], 100).unwrap().cas));
    }
}

#[test]
fn store_expires_items_and_stays_within_its_memory() {
    let mut s = store::Store::new(0, 1, 64 * 1024);
    assert!(s.store(false, b"t", Bytes::from_static(b"v\r\n"), 0, 150, 100));
    assert!(s.get(b"t", 149).is_some());
    assert!(s.get(b"t", 150).is_none(), "expired at its second");
    assert!(
        s.store(true, b"t", Bytes::from_static(b"w\r\n"), 0, 0, 150),
        "add over an expired item"
    );
    assert!(!s.delete(b"nope", 150));
    assert!(s.delete(b"t", 150));
    let big = Bytes::from(vec![b'x'; 10_000]);
    for i in 0..100u32 {
        s.store(false, &i.to_be_bytes(), big.clone(), 0, 0, 150);
        assert!(s.bytes() <= 64 * 1024, "{} bytes held", s.bytes());
    }
    assert!(s.evictions() > 0);
    assert!(s.len() < 10);
    // The oldest go first: the last stored are all there.
    assert!(s.get(&99u32.to_be_bytes(), 150).is_some());
    assert!(s.get(&98u32.to_be_bytes(), 150).is_some());
    assert!(s.get(&0u32.to_be_bytes(), 150).is_none());
}

#[test]
fn shards_are_fixed_and_spread() {
    // The same on every worker and every run (the cross-shard messages depend on it).
    assert_eq!(app::shard_of(b"a", 2), 0);
    assert_eq!(app::shard_of(b"b", 2), 1);
    let on_one = (0..1000)
        .filter(|i| app::shard_of(format!("key{i}").as_bytes(), 2) == 1)
        .count();
    assert!((400..600).contains(&on_one), "{on_one} of 1000 on shard 1");
    // Credit keeps every mailbox (4096 messages) from filling: the requests of the others
    // and the replies to this worker's own.
    for w in 2..8 {
        assert!(2 * (w - 1) * app::Kv::credit_limit(w) <= 4096);
    }
}

// ---- the application on two engines in memory ----

mod in_memory {
    use std::cell::RefCell;

    use std::collections::VecDeque;
    use std::rc::Rc;
    use synack::wire::IpAddress;

    use synack::Instant;
    use synack::tcp::engine::{Engine, EngineConfig, SynCookieMode};
    use synack::tcp::testkit::{CollectSink, segment};
    use synack::wire::segment::FourTuple;
    use synack::wire::tcp::{TcpFlags, TcpOptions};

    use crate::app::{Kv, Msg, shard_of};

    type Queue = Rc<RefCell<VecDeque<(usize, Msg)>>>;

    const C_ISS: u32 = 1_000;

    /// Two workers' engines whose mailboxes are one queue the test delivers by hand.
    fn workers() -> (Vec<Engine<Kv>>, Queue) {
        let q: Queue = Rc::default();
        let engines = (0..2)
            .map(|i| {
                let q = q.clone();
                let cfg = EngineConfig {
                    syn_cookies: SynCookieMode::Never,
                    ..EngineConfig::default()
                };
                let send = Box::new(move |to, m| {
                    q.borrow_mut().push_back((to, m));
                    Ok(())
                });
                Engine::new(cfg, Kv::new(i, 2, send, 1 << 20))
            })
            .collect();
        (engines, q)
    }

    /// Opens a connection to `e`; its tuple and the server's next sequence number.
    fn open(e: &mut Engine<Kv>, now: Instant) -> (FourTuple, u32) {
        let t = FourTuple {
            remote_ip: IpAddress::v4(u32::from_be_bytes([198, 18, 0, 2])),
            remote_port: 40_000,
            local_ip: e.config().local_ips[0],
            local_port: 8080,
        };
        let mut out = CollectSink::default();
        let opts = TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        };
        e.on_segment(
            now,
            &segment(t, C_ISS, 0, TcpFlags::SYN, 65535, opts, &[]),
            &mut out,
        );
        let s_iss = out.take()[0].seq().raw();
        let ack = segment(
            t,
            C_ISS + 1,
            s_iss + 1,
            TcpFlags::ACK,
            65535,
            TcpOptions::default(),
            &[],
        );
        e.on_segment(now, &ack, &mut out);
        (t, s_iss + 1)
    }

    /// Pipelined commands on worker 0 for keys of both shards: the answers wait for the other
    /// shard, then come in request order (a multi-key get assembled in key order).
    #[test]
    fn answers_keep_request_order_across_shards() {
        assert_eq!((shard_of(b"a", 2), shard_of(b"b", 2)), (0, 1));
        let (mut w, q) = workers();
        let now = Instant::from_millis(1000);
        let (t, s_nxt) = open(&mut w[0], now);
        let req: &[u8] = b"set b 0 0 1\r\nB\r\nset a 0 0 1 noreply\r\nA\r\nget a b a\r\n\
            delete b noreply\r\nget b a\r\nadd b 0 0 2\r\nBB\r\ngets b\r\ndelete a\r\n";
        let mut out = CollectSink::default();
        let data = segment(
            t,
            C_ISS + 1,
            s_nxt,
            TcpFlags::ACK,
            65535,
            TcpOptions::default(),
            req,
        );
        w[0].on_segment(now, &data, &mut out);
        let early: Vec<u8> = out.take().into_iter().flat_map(|s| s.payload).collect();
        assert!(
            early.is_empty(),
            "answered before shard 1: {:?}",
            String::from_utf8_lossy(&early)
        );
        let mut got = Vec::new();
        for _ in 0..1000 {
            let Some((to, msg)) = q.borrow_mut().pop_front() else {
                break;
            };
            w[to].on_message(now, msg, &mut out);
            got.extend(out.take().into_iter().flat_map(|s| s.payload));
        }
        let want: &[u8] =
            b"STORED\r\nVALUE a 0 1\r\nA\r\nVALUE b 0 1\r\nB\r\nVALUE a 0 1\r\nA\r\nEND\r\n\
            VALUE a 0 1\r\nA\r\nEND\r\nSTORED\r\nVALUE b 0 2 4\r\nBB\r\nEND\r\nDELETED\r\n";
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
        assert!(q.borrow().is_empty());
    }
}

// ---- over veth ----

/// The example's binary (built by a whole `cargo test`, or `cargo build --release --examples`).
fn kv_bin() -> PathBuf {
    testbed::example_bin("kv")
}

/// Whether Python can import `module`; if not, a skip (or with SYNACK_VETH_REQUIRED a
/// failure) naming what to install.
fn python_has(test: &str, module: &str) -> bool {
    let o = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output();
    if o.map(|o| o.status.success()).unwrap_or(false) {
        return true;
    }
    let reason =
        format!("python3 cannot import {module} (scripts/setup.sh --deps-only installs it)");
    if std::env::var_os(testbed::REQUIRE_ENV).is_some() {
        panic!("{test}: {reason} ({} is set)", testbed::REQUIRE_ENV);
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP: {test}: {reason}");
    false
}

/// The test hosts, if this machine can run the test (with these commands and modules).
fn bed(tag: &str, queues: u32, tools: &[&str], modules: &[&str]) -> Option<testbed::Env> {
    let env = testbed::setup_needing(tag, queues, tools)?;
    let test = std::thread::current().name().unwrap_or(tag).to_string();
    modules.iter().all(|m| python_has(&test, m)).then_some(env)
}

/// A process in the server namespace, stopped (SIGTERM, then SIGKILL, by its PID) in `Drop`.
struct Daemon {
    name: &'static str,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `args` in the server namespace pinned to `cores`; with `ready`, waits (bounded)
    /// for a stderr line starting with it.
    fn start(
        bed: &Bed,
        name: &'static str,
        cores: &str,
        args: &[&str],
        ready: Option<&str>,
    ) -> Daemon {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &bed.srv_ns, "taskset", "-c", cores])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stderr = child.stderr.take().expect("piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<()>();
        let want = ready.map(str::to_string);
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stderr);
                let mut line = String::new();
                while lines.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    if want.as_deref().is_some_and(|w| line.contains(w)) {
                        let _ = tx.send(());
                    }
                    log.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&line);
                    line.clear();
                }
            });
        }
        let d = Daemon {
            name,
            child: Some(child),
            log,
        };
        if ready.is_some() {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(()) => {}
                Err(_) => panic!("{name} did not get ready:\n{}", d.log()),
            }
        }
        if ready.is_some() {
            d.check_comm();
        }
        d
    }

    /// `ip netns exec` and `taskset` exec the program: once it runs, the child is it.
    fn check_comm(&self) {
        let comm =
            std::fs::read_to_string(format!("/proc/{}/comm", self.pid())).unwrap_or_default();
        assert_eq!(
            comm.trim(),
            self.name,
            "the child process is not {}",
            self.name
        );
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// SIGTERM and a bounded wait; the exit status and the log.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let st = self
            .terminate()
            .unwrap_or_else(|| panic!("{} did not exit", self.name));
        // The reader thread ends at EOF; give it a moment to take the last lines.
        std::thread::sleep(Duration::from_millis(100));
        (st, self.log())
    }

    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.terminate();
            if std::thread::panicking() {
                eprintln!("--- {} stderr\n{}", self.name, self.log());
            }
        }
    }
}

/// The port memcached serves on the server's kernel stack (kv serves [`PORT`] on the bypass).
const MC_PORT: u16 = 11211;

fn start_kv(bed: &Bed, cores: &str, queues: u32, extra: &[&str]) -> Daemon {
    let bin = kv_bin();
    let port = PORT.to_string();
    let q = queues.to_string();
    let mut args = vec![
        bin.to_str().expect("utf-8 path"),
        "--iface",
        &bed.srv_if,
        "--ip",
        SRV_IP,
        "--port",
        &port,
        "--cores",
        cores,
        "--queues",
        &q,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    Daemon::start(bed, "kv", cores, &args, Some("synack: serving "))
}

/// memcached with one thread on the server namespace's kernel stack, ready to take
/// connections.
fn start_memcached(bed: &Bed) -> Daemon {
    let port = MC_PORT.to_string();
    let d = Daemon::start(
        bed,
        "memcached",
        testbed::SERVER_CORE,
        &[
            "memcached",
            "-U",
            "0",
            "-p",
            &port,
            "-l",
            SRV_IP,
            "-u",
            "root",
            "-t",
            "1",
        ],
        None,
    );
    let wait = format!(
        "import socket, time\n\
         for i in range(200):\n    try:\n        socket.create_connection(('{SRV_IP}', {MC_PORT}), 1).close(); break\n    \
         except OSError: time.sleep(0.05)\n\
         else: raise SystemExit('memcached does not accept connections')"
    );
    ok(
        &bed.client(30, &["python3", "-c", &wait]),
        "wait for memcached",
    );
    d
}

fn script_path() -> String {
    format!("{}/tests/data/kv_script.py", env!("CARGO_MANIFEST_DIR"))
}

/// The differential script against both servers; panics with the first difference.
fn run_script(bed: &Bed, normalise_cas: bool) {
    let (mc, kv) = (MC_PORT.to_string(), PORT.to_string());
    let norm = if normalise_cas { "1" } else { "0" };
    let script = script_path();
    let o = bed.client(600, &["python3", &script, SRV_IP, &mc, &kv, norm]);
    let out = ok(&o, "kv_script.py");
    assert!(out.starts_with("SAME "), "{}", text(&o));
}

/// (a) The command script (every command, noreply, errors, exptimes, values of up to 1 MiB,
/// pipelining, one byte per segment) gets byte-equal answers from memcached 1.6 (one thread)
/// and from kv on one core, cas uniques included.
#[test]
fn script_answers_equal_memcached_one_core() {
    let Some(env) = bed("kv1", 1, &["memcached"], &[]) else {
        return;
    };
    let bed = &env.bed;
    let _mc = start_memcached(bed);
    let kv = start_kv(bed, testbed::SERVER_CORE, 1, &[]);
    run_script(bed, false);
    let (st, log) = kv.stop();
    assert!(st.success(), "kv exit {st:?}\n{log}");
}

/// (a) The same with two workers: keys on both shards, so multi-key gets span them and half
/// the commands travel between workers. Answers byte-equal but for the cas field of `gets`
/// (normalised: kv numbers cas per shard, uniquely but not as memcached's single counter).
#[test]
fn script_answers_equal_memcached_two_cores() {
    let Some(env) = bed("kv2", 2, &["memcached"], &[]) else {
        return;
    };
    let bed = &env.bed;
    let _mc = start_memcached(bed);
    let kv = start_kv(bed, "0,1", 2, &[]);
    run_script(bed, true);
    let (st, log) = kv.stop();
    assert!(st.success(), "kv exit {st:?}\n{log}");
    // Both workers sent requests to the other's shard.
    let remote: Vec<u64> = log
        .lines()
        .filter_map(|l| l.split("kv_remote_requests ").nth(1))
        .filter_map(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect();
    assert!(
        remote.len() == 2 && remote.iter().all(|&n| n > 0),
        "remote requests per worker {remote:?}\n{log}"
    );
}

const PYMEMCACHE_SCRIPT: &str = r#"
import sys
from pymemcache.client.base import Client
c = Client((sys.argv[1], int(sys.argv[2])), connect_timeout=5, timeout=20)
p = sys.argv[3]  # this run's key prefix
assert c.set(p + "k1", b"v1", noreply=False) is True
assert c.get(p + "k1") == b"v1"
assert c.add(p + "k1", b"other", noreply=False) is False
assert c.add(p + "k2", b"v2", noreply=False) is True
assert c.get(p + "k2") == b"v2"
c.set(p + "quiet", b"q")  # noreply by default
assert c.get(p + "quiet") == b"q"
big = bytes(range(256)) * 4000
assert c.set(p + "big", big, noreply=False) is True
assert c.get(p + "big") == big
keys = [p + "key%d" % i for i in range(100)]
for k in keys:
    c.set(k, k.encode() * 3, noreply=False)
many = c.get_many(keys + [p + "k1", p + "nothere", p + "big"])
assert len(many) == 102, len(many)
assert all(many[k] == k.encode() * 3 for k in keys)
assert many[p + "big"] == big and p + "nothere" not in many
v, cas = c.gets(p + "k2")
assert v == b"v2" and int(cas) > 0
assert c.delete(p + "k1", noreply=False) is True
assert c.delete(p + "k1", noreply=False) is False
assert c.get(p + "k1") is None
assert c.delete_many(keys[:10]) is True
assert c.get_many(keys[:10]) == {}
c.set(p + "gone", b"x", expire=-1, noreply=False)
assert c.get(p + "gone") is None
print("OK")
"#;

/// (b) pymemcache, a real client: set, get, add, delete, get_many (across both shards), gets,
/// a 1 MB value, noreply.
#[test]
fn pymemcache_talks_to_kv() {
    let Some(env) = bed("kvpy", 2, &[], &["pymemcache"]) else {
        return;
    };
    let bed = &env.bed;
    let kv = start_kv(bed, "0,1", 2, &[]);
    let port = PORT.to_string();
    for run in 0..4 {
        // Several connections, so that both workers take some.
        let prefix = format!("r{run}-");
        let args = ["python3", "-c", PYMEMCACHE_SCRIPT, SRV_IP, &port, &prefix];
        let o = bed.client(60, &args);
        assert!(ok(&o, "pymemcache").starts_with("OK"), "{}", text(&o));
    }
    let (st, log) = kv.stop();
    assert!(st.success(), "kv exit {st:?}\n{log}");
}

const NEVER_READS: &str = r#"
import socket, sys, time
srv = (sys.argv[1], int(sys.argv[2]))
c = socket.create_connection(srv, timeout=10)
value = b"v" * 100000
c.sendall(b"set big 0 0 %d\r\n%s\r\n" % (len(value), value))
r = b""
while not r.endswith(b"STORED\r\n"):
    r += c.recv(100)
c.close()
# Gets of the 100 kB value, never reading the answers, until the server stops taking them.
s = socket.create_connection(srv, timeout=10)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.setblocking(False)
req = b"get big\r\n" * 1000
sent, idle_since, t0 = 0, None, time.monotonic()
while time.monotonic() - t0 < 60:
    try:
        sent += s.send(req)
        idle_since = None
    except BlockingIOError:
        if idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > 3:
            break
        time.sleep(0.01)
print("SENT %d" % sent, flush=True)
# Hold the connection (unread) while the server's memory is measured.
sys.stdin.readline()
s.close()
"#;

/// (c) A client that sends gets for a 100 kB value and never reads: kv stops reading its
/// commands once the answers back up (the window closes), so the answers it would owe
/// (gigabytes) are never made: it executes only a handful of the gets, its memory stays put,
/// and it serves others meanwhile.
#[test]
fn a_client_that_never_reads_does_not_grow_the_server() {
    let Some(env) = bed("kvnr", 1, &[], &[]) else {
        return;
    };
    let bed = &env.bed;
    let kv = start_kv(bed, testbed::SERVER_CORE, 1, &[]);
    let before = testbed::settled_rss_kib(kv.pid(), Duration::from_secs(10));
    let port = PORT.to_string();
    let mut client = Command::new("timeout")
        .args(["-k", "5", "120", "ip", "netns", "exec", &bed.cli_ns])
        .args(["python3", "-c", NEVER_READS, SRV_IP, &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    let mut out = BufReader::new(client.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line).expect("client output");
    let Some(sent) = line
        .strip_prefix("SENT ")
        .and_then(|n| n.trim().parse::<u64>().ok())
    else {
        let _ = client.kill();
        let o = client.wait_with_output().expect("client");
        panic!("client printed {line:?}: {}", text(&o));
    };
    let after = testbed::rss_kib(kv.pid());
    // Others are served meanwhile.
    let check = format!(
        "import socket\ns = socket.create_connection(('{SRV_IP}', {PORT}), timeout=10)\n\
         s.sendall(b'set x 0 0 1\\r\\ny\\r\\nget x\\r\\n')\nr = b''\n\
         while not r.endswith(b'END\\r\\n'):\n    r += s.recv(100)\nprint(r)"
    );
    let o = bed.client(30, &["python3", "-c", &check]);
    let served = ok(&o, "another client");
    drop(client.stdin.take()); // the client closes its connection and exits
    let _ = client.wait();
    let gets = sent / 9;
    assert!(
        gets * 100_000 > 1 << 28,
        "the client sent only {sent} bytes: the answers owed ({} MB) do not test the bound",
        (gets * 100_000) >> 20
    );
    let grown = after.saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "RSS grew by {grown} KiB ({before} -> {after}) for {gets} unread gets"
    );
    assert!(served.contains("VALUE x 0 1"), "{served}");
    eprintln!("kv: {gets} gets unread, RSS {before} -> {after} KiB; another client: {served}");
    let (st, log) = kv.stop();
    assert!(st.success(), "kv exit {st:?}\n{log}");
    // kv read only the gets whose answers fit its bounds (256 KiB unsent per connection
    // beyond the send queue's 256 KiB: a handful of 100 kB answers), not what was sent.
    let commands: u64 = log
        .lines()
        .find_map(|l| l.split(" established, requests ").nth(1))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no request count in the final statistics:\n{log}"));
    assert!(
        commands < 100,
        "kv executed {commands} commands of {gets} gets nobody reads\n{log}"
    );
}
