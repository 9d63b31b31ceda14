//! Shared machinery for the tests that run synack over a veth pair with real Linux clients:
//! prerequisites (and the reason to skip), a global lock that runs these tests one at a time,
//! test hosts from `scripts/testbed.sh` as a guard, the server as a guard, client commands in the
//! client namespace with time limits, seeded files and sha256 digests; several client hosts
//! behind a bridge ([`Bed::bridged_clients`]) where a test needs a shared L2 segment.
//!
//! Every guard cleans up in `Drop`, also when the test panics: the server gets SIGTERM and, if
//! it does not exit in time, SIGKILL (by its PID only); the namespaces are removed; temporary
//! directories are deleted. Declare a test's `Server` after its `Bed` so that it drops first.

#![allow(dead_code)] // each test crate uses a different part of this module

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The server's and the client's addresses in every test bed (scripts/testbed.sh).
pub const SRV_IP: &str = "198.18.0.1";
pub const CLI_IP: &str = "198.18.0.2";
/// The same hosts' IPv6 addresses (no duplicate address detection: usable at once).
pub const SRV_IP6: &str = "fd00:198:18::1";
pub const CLI_IP6: &str = "fd00:198:18::2";

/// The address family a client uses. [`Server::start`] serves both at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Both, IPv4 first: what the tests loop over.
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    /// The server's address.
    pub fn srv_ip(self) -> &'static str {
        match self {
            Family::V4 => SRV_IP,
            Family::V6 => SRV_IP6,
        }
    }

    /// The client's address.
    pub fn cli_ip(self) -> &'static str {
        match self {
            Family::V4 => CLI_IP,
            Family::V6 => CLI_IP6,
        }
    }

    /// The server's address as a URL host: `198.18.0.1` or `[fd00:198:18::1]`.
    pub fn host(self) -> String {
        match self {
            Family::V4 => SRV_IP.to_string(),
            Family::V6 => format!("[{SRV_IP6}]"),
        }
    }

    /// `http://HOST:PORT` + `path`.
    pub fn url(self, path: &str) -> String {
        format!("http://{}:{PORT}{path}", self.host())
    }

    /// "IPv4" or "IPv6", for messages.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}
/// The port the tests serve.
pub const PORT: u16 = 8080;
/// Cores: the server on one, the load generator on the other (TESTBED.md).
pub const SERVER_CORE: &str = "1";
pub const CLIENT_CORE: &str = "0";

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM (its grace period is 5 s by default).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Set this variable to make a missing prerequisite fail the test instead of skipping it.
pub const REQUIRE_ENV: &str = "SYNACK_VETH_REQUIRED";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The release (or debug) binary cargo built for this test run.
pub fn synack_bin() -> &'static str {
    env!("CARGO_BIN_EXE_synack")
}

/// The binary of cargo example `name`, built beside synack's by `cargo test`.
pub fn example_bin(name: &str) -> PathBuf {
    let bin = Path::new(synack_bin())
        .parent()
        .expect("synack's directory")
        .join("examples")
        .join(name);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // The newest source the example is built from.
    fn newest(dir: &Path, out: &mut Option<std::time::SystemTime>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                newest(&p, out);
            } else if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                *out = (*out).max(Some(t));
            }
        }
    }
    let mut source = modified(&repo_root().join("Cargo.toml"));
    newest(&repo_root().join("src"), &mut source);
    newest(&repo_root().join("examples"), &mut source);
    match (modified(&bin), source) {
        (None, _) => panic!(
            "example {name} is not built at {}: a whole `cargo test` builds examples; for one \
             test file, run `cargo build --release --examples` first",
            bin.display()
        ),
        (Some(e), Some(s)) if e < s => panic!(
            "example {name} at {} is older than its sources: `cargo test --test FILE` does not \
             rebuild examples; run `cargo build --release --examples` first",
            bin.display()
        ),
        _ => bin,
    }
}

/// The commands every veth test needs: scripts/testbed.sh's (`ip`, `ethtool`, `sysctl`) and the
/// ones the guards and helpers of this module run.
pub const BED_TOOLS: [&str; 8] = [
    "ip", "ethtool", "sysctl", "bash", "timeout", "taskset", "kill", "python3",
];

/// The commands the tests of tests/veth.rs call besides [`BED_TOOLS`].
const VETH_TOOLS: [&str; 6] = ["tc", "clang", "curl", "wrk", "ab", "sha256sum"];

/// The first executable file named `tool` in a directory of `PATH`, the way `Command` and
/// `ip netns exec` will look for it (so `PATH=... cargo test` can hide a tool).
pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Why a veth test cannot run here.
#[derive(Clone, Debug)]
enum Missing {
    /// This machine is not set up for the tests (not root, a command missing): with
    /// [`REQUIRE_ENV`] set, a failure.
    Setup(String),
    /// The kernel lacks a feature the tests cannot do without (AF_XDP sockets, veth): always a
    /// skip, printed.
    Kernel(String),
}

fn is_root() -> bool {
    // The effective UID is the second field of "Uid:" in /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Whether this kernel has AF_XDP sockets; checked once per process (needs python3).
fn af_xdp_missing() -> Option<Missing> {
    static REASON: OnceLock<Option<Missing>> = OnceLock::new();
    REASON
        .get_or_init(|| {
            // AF_XDP: address family 44. EAFNOSUPPORT means CONFIG_XDP_SOCKETS is off.
            let probe = Command::new("python3")
                .args([
                    "-c",
                    "import socket,sys\n\
                     try:\n    socket.socket(44, socket.SOCK_RAW, 0).close()\n\
                     except OSError as e:\n    print(e); sys.exit(1)",
                ])
                .output();
            match probe {
                Ok(o) if o.status.success() => None,
                Ok(o) if String::from_utf8_lossy(&o.stdout).contains("not supported") => {
                    Some(Missing::Kernel(format!(
                        "the kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS): {}",
                        String::from_utf8_lossy(&o.stdout).trim()
                    )))
                }
                Ok(o) => Some(Missing::Setup(format!(
                    "cannot open an AF_XDP socket: {}{}",
                    String::from_utf8_lossy(&o.stdout).trim(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ))),
                Err(e) => Some(Missing::Setup(format!("cannot run python3: {e}"))),
            }
        })
        .clone()
}

/// What keeps a test that runs `tools` (besides [`BED_TOOLS`]) from running here, if anything.
fn missing_prerequisite(tools: &[&str]) -> Option<Missing> {
    if !is_root() {
        return Some(Missing::Setup(
            "not root (network namespaces, veth and XDP need root)".into(),
        ));
    }
    let mut missing: Vec<&str> = Vec::new();
    for &t in BED_TOOLS.iter().chain(tools) {
        if !missing.contains(&t) && find_on_path(t).is_none() {
            missing.push(t);
        }
    }
    if !missing.is_empty() {
        return Some(Missing::Setup(format!(
            "missing command{} on PATH: {} (install with scripts/setup.sh --deps-only)",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    af_xdp_missing()
}

/// Says on the test's stderr, past the harness's capture, that `test` is skipped and why.
fn print_skip(test: &str, reason: &str) {
    use std::io::Write;
    // eprintln! goes to the harness's capture, which it shows only for failed tests.
    let _ = writeln!(std::io::stderr(), "SKIP: {test}: {reason}");
}

/// Decides for `what`: panics if it may not be skipped, else prints the skip.
fn skip(test: &str, what: Missing) {
    match what {
        Missing::Setup(reason) if std::env::var_os(REQUIRE_ENV).is_some() => {
            panic!("{test}: {reason} ({REQUIRE_ENV} is set: the veth tests must run)")
        }
        Missing::Setup(reason) => print_skip(
            test,
            &format!("{reason} (set {REQUIRE_ENV}=1 to make this a failure)"),
        ),
        Missing::Kernel(reason) => print_skip(test, &reason),
    }
}

/// The name of the running test (libtest names its thread after it), else `fallback`.
fn test_name(fallback: &str) -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or(fallback)
        .to_string()
}

/// Whether `test`, which runs `tools` besides [`BED_TOOLS`], can run here: root, every command
/// on `PATH`, AF_XDP sockets in the kernel. If not: with [`REQUIRE_ENV`] set, a missing command
/// or missing root panics with the reason (what is missing, and `scripts/setup.sh
/// --deps-only`); a kernel without AF_XDP is skipped. Without it, every reason is a skip. A skip
/// prints `SKIP: test: reason` on stderr, where the harness does not hide it, and returns false.
pub fn can_run(test: &str, tools: &[&str]) -> bool {
    match missing_prerequisite(tools) {
        None => true,
        Some(m) => {
            skip(test, m);
            false
        }
    }
}

/// Serializes the tests of this process: they pin the server and the clients to the same cores.
fn global_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that panicked while holding the lock poisons it; its guards have cleaned up.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// One test's environment: the lock and the test hosts. Fields drop in order: hosts, then lock.
pub struct Env {
    pub bed: Bed,
    _lock: MutexGuard<'static, ()>,
}

/// Takes the lock, checks the prerequisites ([`can_run`] with the commands of tests/veth.rs)
/// and brings up test hosts named after `tag` (1-4 characters [a-z0-9]). `None` (after printing
/// "SKIP: test: reason") if this machine cannot run the test and may skip it.
pub fn setup(tag: &str) -> Option<Env> {
    setup_with_queues(tag, 1)
}

/// Like [`setup`], with `queues` TX/RX queues on each end of the veth pair.
pub fn setup_with_queues(tag: &str, queues: u32) -> Option<Env> {
    setup_needing(tag, queues, &VETH_TOOLS)
}

/// Like [`setup_with_queues`] for a test that runs `tools` (besides [`BED_TOOLS`]).
pub fn setup_needing(tag: &str, queues: u32, tools: &[&str]) -> Option<Env> {
    let lock = global_lock();
    let test = test_name(tag);
    if !can_run(&test, tools) {
        return None;
    }
    bring_up(&test, tag, queues).map(|bed| Env { bed, _lock: lock })
}

/// `Bed::up`, or `None` (a skip) if the kernel cannot make veth pairs; panics on other errors.
fn bring_up(test: &str, tag: &str, queues: u32) -> Option<Bed> {
    match Bed::up(tag, queues) {
        Ok(bed) => Some(bed),
        Err(e) if e.contains("Unknown device type") || e.contains("not supported") => {
            skip(
                test,
                Missing::Kernel(format!("the kernel cannot make veth pairs: {e}")),
            );
            None
        }
        Err(e) => panic!("scripts/testbed.sh up failed: {e}"),
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// Test hosts: PREFIX-srv (veth PREFIXs0, 198.18.0.1/24) and PREFIX-cli (PREFIXc0, 198.18.0.2/24).
/// Removed in `Drop`.
pub struct Bed {
    pub prefix: String,
    pub srv_ns: String,
    pub cli_ns: String,
    pub srv_if: String,
    pub cli_if: String,
}

fn testbed_sh(args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["-k", "5", "60"])
        .arg(repo_root().join("scripts/testbed.sh"))
        .args(args)
        .output()
        .expect("run scripts/testbed.sh")
}

impl Bed {
    /// A unique prefix: "t", the tag, the PID and a counter (base 36), at most 13 characters.
    fn unique_prefix(tag: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        assert!(
            (1..=4).contains(&tag.len())
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "tag {tag:?}: 1-4 characters [a-z0-9]"
        );
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = format!(
            "t{tag}{}{}",
            base36(u64::from(std::process::id())),
            base36(u64::from(n))
        );
        assert!(p.len() <= 13, "prefix {p:?} is too long");
        p
    }

    /// Test hosts with `queues` TX/RX queues on each end of the veth pair.
    pub fn up(tag: &str, queues: u32) -> Result<Bed, String> {
        let prefix = Bed::unique_prefix(tag);
        let bed = Bed {
            srv_ns: format!("{prefix}-srv"),
            cli_ns: format!("{prefix}-cli"),
            srv_if: format!("{prefix}s0"),
            cli_if: format!("{prefix}c0"),
            prefix,
        };
        // A namespace of this name can only be left over from an earlier process with our PID.
        let _ = testbed_sh(&["down", &bed.prefix]);
        let out = testbed_sh(&["up", &bed.prefix, &queues.to_string()]);
        if !out.status.success() {
            // testbed.sh removes what it made when a step fails; `bed` drops and downs it again.
            return Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(bed)
    }

    /// `timeout -k 5 SECS ip netns exec NS ARGS...`, with its output.
    pub fn run_in(&self, ns: &str, secs: u64, args: &[&str]) -> Output {
        Command::new("timeout")
            .args(["-k", "5", &secs.to_string(), "ip", "netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {ns}: {e}"))
    }

    /// A command in the client namespace, with a time limit.
    pub fn client(&self, secs: u64, args: &[&str]) -> Output {
        self.run_in(&self.cli_ns, secs, args)
    }

    /// A command in the client namespace, started in the background with a time limit; its
    /// stdout and stderr are piped. The caller waits for it.
    pub fn client_spawn(&self, secs: u64, args: &[&str]) -> Child {
        spawn_in(&self.cli_ns, secs, args)
    }

    /// A command in the server namespace, with a time limit.
    pub fn server_ns(&self, secs: u64, args: &[&str]) -> Output {
        self.run_in(&self.srv_ns, secs, args)
    }

    /// A Python script (the HTTP helpers of [`PY_PRELUDE`] come first) in the client namespace.
    pub fn python(&self, secs: u64, script: &str, args: &[&str]) -> Output {
        self.python_on(Family::V4, secs, script, args)
    }

    /// [`Bed::python`] with the prelude's `SRV` the server's address of `family`.
    pub fn python_on(&self, family: Family, secs: u64, script: &str, args: &[&str]) -> Output {
        let code = format!(
            "{PY_PRELUDE}\nSRV = ({:?}, {PORT})\n{script}",
            family.srv_ip()
        );
        let mut all = vec!["python3", "-c", &code];
        all.extend_from_slice(args);
        self.client(secs, &all)
    }

    /// `curl -sS` in the client namespace with a `-m` limit, the arguments, then the URL of
    /// `path` on the server. Its `-w` output (if asked) is in stdout.
    pub fn curl(&self, max_secs: u64, args: &[&str], path: &str) -> Output {
        self.curl_on(Family::V4, max_secs, args, path)
    }

    /// [`Bed::curl`] to the server's address of `family`.
    pub fn curl_on(&self, family: Family, max_secs: u64, args: &[&str], path: &str) -> Output {
        let url = family.url(path);
        let m = max_secs.to_string();
        let mut all = vec!["curl", "-sS", "-m", &m];
        all.extend_from_slice(args);
        all.push(&url);
        self.client(max_secs + 10, &all)
    }

    /// The client kernel's count of retransmitted TCP segments (`Tcp: RetransSegs` of
    /// /proc/net/snmp in the client namespace).
    pub fn client_retransmits(&self) -> u64 {
        self.snmp_counter(&self.cli_ns, "Tcp", "RetransSegs")
    }

    /// The counter `name` of the `proto` lines ("Ip", "Tcp", ...) of /proc/net/snmp in `ns`.
    pub fn snmp_counter(&self, ns: &str, proto: &str, name: &str) -> u64 {
        let snmp = ok(
            &self.run_in(ns, 10, &["cat", "/proc/net/snmp"]),
            "read /proc/net/snmp",
        );
        let head = format!("{proto}:");
        let mut lines = snmp.lines().filter(|l| l.starts_with(&head));
        let (names, values) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no {proto} {name} in /proc/net/snmp of {ns}:\n{snmp}"))
    }

    /// Attaches the tc program in `obj` (section "tc", direct action) to the ingress of the
    /// client's veth end, for frames of both families. It goes away with the namespaces.
    pub fn client_ingress_filter(&self, obj: &Path) {
        let obj = obj.to_str().expect("utf-8 path");
        ok(
            &self.client(10, &["tc", "qdisc", "add", "dev", &self.cli_if, "clsact"]),
            "tc qdisc add clsact",
        );
        ok(
            &self.client(
                10,
                &[
                    "tc",
                    "filter",
                    "add",
                    "dev",
                    &self.cli_if,
                    "ingress",
                    // Both families: with "protocol ip" the program never saw IPv6.
                    "protocol",
                    "all",
                    "bpf",
                    "da",
                    "obj",
                    obj,
                    "sec",
                    "tc",
                ],
            ),
            "tc filter add bpf",
        );
    }

    /// The server interface as `ip -d link show` prints it.
    pub fn srv_link_details(&self) -> String {
        let o = self.server_ns(10, &["ip", "-d", "link", "show", "dev", &self.srv_if]);
        assert!(o.status.success(), "ip link show: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let out = testbed_sh(&["down", &self.prefix]);
        if !out.status.success() {
            eprintln!(
                "warning: scripts/testbed.sh down {} failed: {}",
                self.prefix,
                text(&out)
            );
        }
    }
}

/// `timeout -k 5 SECS ip netns exec NS ARGS...` started in the background; its stdout and
/// stderr are piped. The caller waits for it.
pub fn spawn_in(ns: &str, secs: u64, args: &[&str]) -> Child {
    Command::new("timeout")
        .args(["-k", "5", &secs.to_string(), "ip", "netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {args:?} in {ns}: {e}"))
}

/// Runs `ip ARGS...` (in the root namespace; use `-n NS`), panicking with its output on failure.
fn ip(args: &[&str]) {
    let o = Command::new("timeout")
        .args(["-k", "5", "20", "ip"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"));
    ok(&o, &format!("ip {}", args.join(" ")));
}

/// Client hosts that share one L2 segment with the server: the client namespace of a [`Bed`]
/// becomes a switch (a Linux bridge, PREFIXbr, with the bed's client veth end as one port), and
/// each client is a namespace of its own, PREFIX-cN, joined to the bridge by a veth pair (PREFIXpN
/// on the bridge, PREFIXhN in the client, offloads off as in scripts/testbed.sh) with its
/// address in 198.18.0.0/16. The bed's client address goes away; the server namespace gets a
/// route to the /16. The client namespaces are removed in `Drop` (also when the test panics);
/// the bridge goes with the bed. Make it with [`Bed::bridged_clients`].
pub struct BridgedClients {
    /// The client namespaces, in the order of the addresses given.
    pub ns: Vec<String>,
    /// Each client's IPv4 address.
    pub ips: Vec<String>,
}

impl Bed {
    /// Moves the client side of this bed behind a bridge and puts one client host per address
    /// of `ips` (in 198.18.0.0/16, not the server's) on it. Panics if a step fails (the
    /// returned guard's namespaces are removed all the same). Waits, bounded, until every
    /// bridge port forwards.
    pub fn bridged_clients(&self, ips: &[&str]) -> BridgedClients {
        let br = format!("{}br", self.prefix);
        let mut clients = BridgedClients {
            ns: Vec::new(),
            ips: ips.iter().map(|s| s.to_string()).collect(),
        };
        let cli = self.cli_ns.as_str();
        ip(&["-n", cli, "addr", "flush", "dev", &self.cli_if]);
        ip(&["-n", cli, "link", "add", &br, "type", "bridge"]);
        ip(&["-n", cli, "link", "set", &self.cli_if, "master", &br]);
        ip(&["-n", cli, "link", "set", &br, "up"]);
        ip(&[
            "-n",
            &self.srv_ns,
            "route",
            "replace",
            "198.18.0.0/16",
            "dev",
            &self.srv_if,
        ]);
        let mut ports = vec![self.cli_if.clone()];
        for (i, addr) in ips.iter().enumerate() {
            let ns = format!("{}-c{i}", self.prefix);
            let (port, host) = (
                format!("{}p{i}", self.prefix),
                format!("{}h{i}", self.prefix),
            );
            // A namespace of this name can only be left over from an earlier process with our PID.
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            ip(&["netns", "add", &ns]);
            clients.ns.push(ns.clone());
            ip(&[
                "-n", cli, "link", "add", &port, "type", "veth", "peer", "name", &host, "netns",
                &ns,
            ]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            // No IPv6: nothing but the test's own traffic on the segment.
            let _ = self.run_in(
                &ns,
                10,
                &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
            );
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/16"),
                "dev",
                &host,
            ]);
            for (n, dev) in [(cli, port.as_str()), (ns.as_str(), host.as_str())] {
                ok(
                    &self.run_in(
                        n,
                        10,
                        &[
                            "ethtool", "-K", dev, "rx", "off", "tx", "off", "tso", "off", "gso",
                            "off", "gro", "off",
                        ],
                    ),
                    &format!("ethtool -K {dev} ... off"),
                );
            }
            ip(&["-n", cli, "link", "set", &port, "master", &br, "up"]);
            ip(&["-n", &ns, "link", "set", &host, "up"]);
            ports.push(port);
        }
        let t0 = Instant::now();
        for port in &ports {
            loop {
                let o = self.run_in(cli, 10, &["ip", "-d", "link", "show", "dev", port]);
                let s = ok(&o, "ip -d link show");
                if s.contains("LOWER_UP") && s.contains("state forwarding") {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "bridge port {port} does not forward after 10 s:\n{s}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        clients
    }
}

impl BridgedClients {
    /// A command in client `i`'s namespace, started in the background with a time limit (see
    /// [`spawn_in`]).
    pub fn spawn(&self, i: usize, secs: u64, args: &[&str]) -> Child {
        spawn_in(&self.ns[i], secs, args)
    }
}

impl Drop for BridgedClients {
    fn drop(&mut self) {
        for ns in &self.ns {
            let o = Command::new("ip").args(["netns", "del", ns]).output();
            if !o.as_ref().is_ok_and(|o| o.status.success()) {
                eprintln!("warning: ip netns del {ns} failed: {o:?}");
            }
        }
    }
}

/// stdout and stderr of a command, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Panics with the command's output unless it succeeded; returns its stdout.
pub fn ok(o: &Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed: {}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A process's resident memory (VmRSS of /proc/PID/status), in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A process's resident memory once it has settled: sampled every half second until it grew by
/// at most 256 KiB over the last two seconds (or `limit` passed), in KiB. A server that just
/// printed its ready line is still touching memory it will hold anyway (per-thread arenas, its
/// statistics thread's histograms: synack takes about 2 MB more over its first 3 s, in steps
/// a second apart): a baseline taken at once would charge that to what a test then does.
pub fn settled_rss_kib(pid: u32, limit: Duration) -> u64 {
    let t0 = Instant::now();
    let mut samples = std::collections::VecDeque::from([rss_kib(pid)]);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = rss_kib(pid);
        samples.push_back(now);
        if samples.len() > 5 {
            samples.pop_front();
        }
        let oldest = samples[0];
        if (samples.len() == 5 && now <= oldest + 256) || t0.elapsed() > limit {
            return samples.iter().copied().max().unwrap_or(now);
        }
    }
}

/// synack serving in the server namespace, pinned to [`SERVER_CORE`]. Stopped in `Drop`.
pub struct Server {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `synack serve --iface SRV_IF --ip SRV_IP --ip SRV_IP6 --port PORT --cores 1 --quiet
    /// ARGS...` (both families)
    /// (pinned with taskset to core 1 as well)
    /// and waits (bounded) for its ready line. Panics with its stderr if it does not get ready.
    pub fn start(bed: &Bed, args: &[&str]) -> Server {
        Server::start_on(bed, SERVER_CORE, args)
    }

    /// Like [`Server::start`], pinned (taskset and `--cores`) to `cores`, e.g. "0,1".
    pub fn start_on(bed: &Bed, cores: &str, args: &[&str]) -> Server {
        Server::start_program(bed, cores, Path::new(synack_bin()), Some("serve"), args)
    }

    /// Starts cargo example `name` the way [`Server::start`] starts `synack serve`: the same
    /// `--iface --ip --port --cores --quiet` flags, then `args`.
    pub fn start_example(bed: &Bed, name: &str, args: &[&str]) -> Server {
        Server::start_program(bed, SERVER_CORE, &example_bin(name), None, args)
    }

    fn start_program(
        bed: &Bed,
        cores: &str,
        bin: &Path,
        subcommand: Option<&str>,
        args: &[&str],
    ) -> Server {
        let port = PORT.to_string();
        let child = Command::new("ip")
            .args(["netns", "exec", &bed.srv_ns, "taskset", "-c", cores])
            .arg(bin)
            .args(subcommand)
            .args([
                "--iface",
                &bed.srv_if,
                "--ip",
                SRV_IP,
                "--ip",
                SRV_IP6,
                "--port",
                &port,
            ])
            .args(["--cores", cores, "--quiet"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn synack");
        Server::wait_ready(child, bin)
    }

    /// Runs `argv` (a full command line, e.g. a wrapper such as `setpriv ... synack serve ...`
    /// that execs `bin` in the end) in the server namespace and waits for `bin`'s ready line,
    /// as [`Server::start`] does.
    pub fn start_command(bed: &Bed, bin: &Path, argv: &[&str]) -> Server {
        let child = Command::new("ip")
            .args(["netns", "exec", &bed.srv_ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn synack");
        Server::wait_ready(child, bin)
    }

    fn wait_ready(mut child: Child, bin: &Path) -> Server {
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let reader = {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stderr);
                let mut line = String::new();
                // Ends at EOF, when the server exits.
                while lines.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    if line.contains("synack: serving ") {
                        let _ = ready_tx.send(());
                    }
                    log.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&line);
                    line.clear();
                }
            })
        };
        let mut server = Server {
            child: Some(child),
            log,
            reader: Some(reader),
        };
        let t0 = Instant::now();
        loop {
            match ready_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let st = server.wait_exit(Duration::from_secs(5));
                    panic!(
                        "synack exited before it was ready ({st:?}):\n{}",
                        server.log()
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) if t0.elapsed() > READY_TIMEOUT => {
                    panic!(
                        "synack printed no ready line within {READY_TIMEOUT:?}:\n{}",
                        server.log()
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        // `ip netns exec` and `taskset` exec the next command: the child is synack itself, so
        // signals by this PID reach it.
        let comm =
            std::fs::read_to_string(format!("/proc/{}/comm", server.pid())).unwrap_or_default();
        let name = bin.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(
            comm.trim(),
            &name[..name.len().min(15)],
            "the child process is not {name}"
        );
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What the server printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    /// Waits up to `limit` for the server to exit; its status, or `None` if it still runs.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let t0 = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(st)) => {
                    self.child = None;
                    if let Some(r) = self.reader.take() {
                        let _ = r.join();
                    }
                    return Some(st);
                }
                Ok(None) if t0.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
                _ => return None,
            }
        }
    }

    /// Sends SIGTERM and returns at once.
    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// Waits up to `limit` for the exit (panics after). Returns the status and all of stderr.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, String) {
        let st = self
            .wait_exit(limit)
            .unwrap_or_else(|| panic!("synack did not exit within {limit:?}"));
        (st, self.log())
    }

    /// SIGTERM, then waits (bounded) for the exit. Returns the status and all of stderr.
    pub fn stop(self) -> (ExitStatus, String) {
        self.sigterm();
        self.wait(STOP_TIMEOUT)
    }

    /// SIGKILL, and waits for the exit.
    pub fn kill9(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL synack");
        let st = child.wait().expect("wait for synack");
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        st
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        self.signal("-TERM");
        if self.wait_exit(STOP_TIMEOUT).is_none()
            && let Some(mut c) = self.child.take()
        {
            eprintln!("synack ignored SIGTERM for {STOP_TIMEOUT:?}: SIGKILL");
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- synack stderr\n{}", self.log());
        }
    }
}

/// A temporary directory, removed in `Drop`.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("synack-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` pseudo-random bytes from `seed` (splitmix64): the same seed, the same bytes.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a seeded random file of `len` bytes as `dir/name`.
pub fn write_seeded(dir: &TempDir, name: &str, len: usize, seed: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, seeded_bytes(seed, len)).expect("write test file");
    p
}

/// Compiles the BPF C program tests/data/`name` with clang into `dir`; returns the object's path.
pub fn compile_bpf(name: &str, dir: &TempDir) -> PathBuf {
    let src = repo_root().join("tests/data").join(name);
    let obj = dir.join(&format!("{name}.o"));
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let o = Command::new(&clang)
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-I/usr/include/x86_64-linux-gnu",
            "-c",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {clang}: {e}"));
    ok(&o, &format!("{clang} {}", src.display()));
    obj
}

/// The sha256 of a file, in hex, from coreutils' `sha256sum`.
pub fn sha256_file(path: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    let out = ok(&o, "sha256sum");
    let digest = out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(digest.len(), 64, "sha256sum printed {out:?}");
    digest
}

/// Python helpers for raw-socket clients, placed before every script of [`Bed::python`].
/// `Reader(sock).response(head=False)` returns (status line, headers with lower-case names,
/// body); it reads exactly one response (Content-Length framing), keeping what follows.
pub const PY_PRELUDE: &str = r#"
import hashlib, socket, sys, time
SRV = ("198.18.0.1", 8080)

class Reader:
    def __init__(self, sock):
        self.s = sock
        self.buf = b""
    def fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise EOFError("connection closed with %d bytes unparsed" % len(self.buf))
        self.buf += d
    def response(self, head=False):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        h, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = h.decode("latin-1").split("\r\n")
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = 0 if head else int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self.fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return lines[0], headers, body
    def rest_until_eof(self, limit=10.0):
        """Everything after the parsed responses until the peer closes; None on timeout."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                d = self.s.recv(1 << 20)
            except socket.timeout:
                return None
            if not d:
                return self.buf
            self.buf += d
        return None

def sha(b):
    return hashlib.sha256(b).hexdigest()
"#;
