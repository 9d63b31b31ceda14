//! The `echo` example (examples/echo.rs) over the veth test hosts, with Python socket clients:
//! a thousand concurrent connections echoed byte-exact, and clients that never read do not
//! make the server buffer without bound. Needs root (see tests/veth.rs for the rules).

mod testbed;

use std::time::{Duration, Instant};

use testbed::{Server, ok};

/// N concurrent clients, each sends M bytes (its own window of a shared random buffer) and
/// reads the echo at the same time, then half-closes and reads until EOF. Prints
/// "ok N" when every byte came back in order, or what went wrong.
const ECHO_CLIENTS_SCRIPT: &str = r#"
import os, random, resource, selectors
n, m = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
base = memoryview(random.Random(7).randbytes(m + 65536))
sel = selectors.DefaultSelector()
state = {}
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(SRV)
    off = (i * 4099) % 65536
    state[s] = {"off": off, "sent": 0, "got": 0, "eof": False}
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
bad = []
left = n
deadline = time.monotonic() + 240
while left and time.monotonic() < deadline:
    for key, ev in sel.select(1):
        s = key.fileobj
        st = state[s]
        if ev & selectors.EVENT_WRITE and st["sent"] < m:
            try:
                k = s.send(base[st["off"] + st["sent"]: st["off"] + min(m, st["sent"] + 262144)])
                st["sent"] += k
            except (BlockingIOError, InterruptedError):
                pass
            if st["sent"] == m:
                s.shutdown(socket.SHUT_WR)
                sel.modify(s, selectors.EVENT_READ)
        if ev & selectors.EVENT_READ:
            try:
                d = s.recv(1 << 18)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionError as e:
                bad.append("reset after %d of %d: %s" % (st["got"], m, e))
                d = b""
            if d:
                lo = st["off"] + st["got"]
                if base[lo: lo + len(d)] != d:
                    bad.append("bytes differ at %d" % st["got"])
                st["got"] += len(d)
            if not d or bad:
                if not d and st["got"] != m:
                    bad.append("EOF after %d of %d bytes" % (st["got"], m))
                sel.unregister(s)
                s.close()
                left -= 1
    if bad:
        break
if left and not bad:
    bad.append("%d clients unfinished at the deadline" % left)
print("ok %d" % n if not bad else "FAIL %s" % bad[:5], flush=True)
"#;

/// Issue 8: 1,000 concurrent Python socket clients, 1 MiB each, echoed byte-exact.
#[test]
fn a_thousand_clients_are_echoed_byte_exact() {
    let Some(env) = testbed::setup("echo") else {
        return;
    };
    let bed = &env.bed;
    let server = Server::start_example(bed, "echo", &[]);
    let n = std::env::var("SYNACK_ECHO_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let t0 = Instant::now();
    let out = ok(
        &bed.python(
            300,
            ECHO_CLIENTS_SCRIPT,
            &[&n.to_string(), &(1 << 20).to_string()],
        ),
        "echo clients",
    );
    eprintln!("{n} x 1 MiB echoed in {:?}: {}", t0.elapsed(), out.trim());
    let (status, log) = server.stop();
    eprintln!("{log}");
    assert_eq!(out.trim(), format!("ok {n}"), "{log}");
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// K clients push S bytes each and read nothing until told; prints "stuck SENT" once no
/// client made progress for a second (the windows are shut), then, when `go_file` exists,
/// reads everything back and prints "drained GOT".
const NON_READERS_SCRIPT: &str = r#"
import os, selectors
k, size, go_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
chunk = bytes(range(256)) * 256
socks = []
for i in range(k):
    s = socket.create_connection(SRV, timeout=10)
    s.setblocking(False)
    socks.append(s)
sent = [0] * k
last_progress = time.monotonic()
deadline = time.monotonic() + 60
while time.monotonic() < deadline and time.monotonic() - last_progress < 1.0:
    moved = False
    for i, s in enumerate(socks):
        if sent[i] >= size:
            continue
        try:
            n = s.send(chunk)
            sent[i] += n
            moved = moved or n > 0
        except (BlockingIOError, InterruptedError):
            pass
    if moved:
        last_progress = time.monotonic()
    else:
        time.sleep(0.01)
print("stuck", sum(sent), flush=True)
while not os.path.exists(go_file) and time.monotonic() < deadline + 60:
    time.sleep(0.05)
# Now every client reads its echo at once (and half-closes: the server closes after the last
# byte). Bytes the server dropped under memory pressure come again by retransmission.
sel = selectors.DefaultSelector()
for s in socks:
    s.shutdown(socket.SHUT_WR)
    sel.register(s, selectors.EVENT_READ)
got, left, t0 = 0, len(socks), time.monotonic()
while left and time.monotonic() - t0 < 150:
    for key, _ in sel.select(1):
        s = key.fileobj
        try:
            d = s.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            continue
        got += len(d)
        if not d:
            sel.unregister(s)
            s.close()
            left -= 1
print("drained", got, "of", sum(sent), "in %.1f s" % (time.monotonic() - t0), flush=True)
"#;

/// Issue 8: clients that send and never read do not make the server buffer without bound:
/// each connection holds at most its send limit and its receive window, and then the
/// client's own send buffer fills. 40 clients offering 64 MiB each (2.5 GB) grow the
/// server's memory by less than 48 MB; once they read, every byte they sent comes back.
#[test]
fn clients_that_never_read_are_bounded() {
    let Some(env) = testbed::setup("ecnr") else {
        return;
    };
    let bed = &env.bed;
    let server = Server::start_example(bed, "echo", &[]);
    let before = testbed::settled_rss_kib(server.pid(), Duration::from_secs(10));
    let dir = testbed::TempDir::new("ecnr");
    let go = dir.join("go");
    let code = format!("{}\n{NON_READERS_SCRIPT}", testbed::PY_PRELUDE);
    let (k, size) = (40, 64 << 20);
    let mut child = bed.client_spawn(
        400,
        &[
            "python3",
            "-c",
            &code,
            &k.to_string(),
            &size.to_string(),
            go.to_str().unwrap(),
        ],
    );
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    let _ = stdout.read_line(&mut line);
    let after = testbed::rss_kib(server.pid());
    let grown = after.saturating_sub(before);
    let sent: u64 = line
        .trim()
        .strip_prefix("stuck ")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("client: {line:?}\n{}", server.log()));
    std::fs::write(&go, b"go").unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    let status = child.wait().unwrap();
    let (_, log) = server.stop();
    eprintln!(
        "{k} non-reading clients pushed {sent} bytes before stalling; VmRSS {before} -> {after} KiB (+{grown} KiB); {}",
        rest.trim()
    );
    assert!(status.success(), "client: {status:?} {rest}\n{log}");
    assert!(
        sent < (k * size) as u64 / 4,
        "the clients were never stopped: {sent} bytes"
    );
    assert!(
        grown < 48 * 1024,
        "{k} non-reading clients grew RSS by {grown} KiB"
    );
    assert!(
        rest.trim()
            .starts_with(&format!("drained {sent} of {sent} ")),
        "every byte comes back once they read: {rest}\n{log}"
    );
}
