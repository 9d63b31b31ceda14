//! synack without root: as user `nobody` with exactly the capabilities dist/synack.service
//! grants (read from the unit, so the unit, the docs and this test cannot drift), started
//! through `setpriv` (ambient capabilities, as systemd gives them) in the server namespace.
//!
//! - With the whole set, `synack check` says ready and `synack serve` serves curl.
//! - With one capability removed at a time, `synack check` names it (and says not ready) and
//!   `synack serve` fails with a message naming it, no crash.
//! - RLIMIT_MEMLOCK (set with prlimit): without CAP_IPC_LOCK, a hard limit that covers the UMEM
//!   is enough (synack raises its soft limit at start); one that does not is named.
//! - The unit itself: its ExecStart (`--config`) under its capability set and memlock limit;
//!   `systemd-analyze verify`; and `systemd-run` where PID 1 is systemd.
//!
//! Needs root (to drop to nobody), setpriv and prlimit (util-linux), AF_XDP, veth, curl.
//!
//!     cargo build --release --bins && cargo test --release --test privileges -- --nocapture

mod testbed;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use testbed::{Bed, PORT, SRV_IP, Server, TempDir, ok, synack_bin, text};

const TOOLS: [&str; 3] = ["setpriv", "prlimit", "curl"];

/// The shipped unit.
fn unit_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/synack.service"))
        .expect("read dist/synack.service")
}

/// The value of `key=` in the unit (the last one, as systemd takes it).
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .unwrap_or_else(|| panic!("no {key}= in dist/synack.service"))
        .trim()
        .to_string()
}

/// The unit's ambient capabilities, checked equal to its bounding set: `CAP_NET_ADMIN`, ...
fn unit_caps() -> Vec<String> {
    let unit = unit_text();
    let ambient: Vec<String> = unit_value(&unit, "AmbientCapabilities")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut bounding: Vec<String> = unit_value(&unit, "CapabilityBoundingSet")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut a = ambient.clone();
    a.sort();
    bounding.sort();
    assert_eq!(a, bounding, "the unit's ambient and bounding sets differ");
    assert!(!ambient.is_empty());
    ambient
}

/// systemd's LimitMEMLOCK= value in bytes (K/M/G suffixes, 1024-based; "infinity").
fn systemd_bytes(v: &str) -> u64 {
    if v == "infinity" {
        return u64::MAX;
    }
    let (num, mult) = match v.chars().last() {
        Some('K') => (&v[..v.len() - 1], 1u64 << 10),
        Some('M') => (&v[..v.len() - 1], 1 << 20),
        Some('G') => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<u64>().expect("a LimitMEMLOCK number") * mult
}

/// The release binary copied where `nobody` may run it, with content it may read.
struct Fixture {
    dir: TempDir,
    bin: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new("op");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("synack");
        std::fs::copy(synack_bin(), &bin).expect("copy synack");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fixture { dir, bin }
    }
    fn bin(&self) -> &str {
        self.bin.to_str().unwrap()
    }
}

/// `prlimit --memlock=SOFT:HARD setpriv` as nobody with exactly `caps` (inheritable, ambient
/// and bounding sets), as argv entries to put before the command.
fn as_nobody(caps: &[String], memlock: (u64, u64)) -> Vec<String> {
    let list: Vec<String> = caps
        .iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_ascii_lowercase()))
        .collect();
    let set = format!(
        "-all{}",
        list.iter().map(|c| format!(",{c}")).collect::<String>()
    );
    let lim = |v: u64| {
        if v == u64::MAX {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        "prlimit".into(),
        format!("--memlock={}:{}", lim(memlock.0), lim(memlock.1)),
        "setpriv".into(),
        "--reuid=nobody".into(),
        "--regid=nogroup".into(),
        "--clear-groups".into(),
        format!("--inh-caps={set}"),
        format!("--ambient-caps={set}"),
        format!("--bounding-set={set}"),
        "--".into(),
    ]
}

/// The UMEM the tests ask for: 2048 frames of 2048 bytes (smaller than the default, so that
/// a hard memlock limit covers it where root may not raise the hard limit: a container
/// without CAP_SYS_RESOURCE).
const FRAMES: &str = "2048";
const UMEM: u64 = 2048 * 2048;
const UMEM_FLAGS: [&str; 4] = ["--frames", FRAMES, "--ring-size", "1024"];

/// This process's hard RLIMIT_MEMLOCK: the most prlimit may set here.
fn hard_memlock() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))
        .unwrap();
    match line.split_whitespace().nth(4).unwrap() {
        "unlimited" => u64::MAX,
        v => v.parse().unwrap(),
    }
}

fn serve_args(bed: &Bed, body: &str) -> Vec<String> {
    [
        "serve",
        "--iface",
        &bed.srv_if,
        "--ip",
        SRV_IP,
        "--port",
        &PORT.to_string(),
        "--cores",
        testbed::SERVER_CORE,
        "--quiet",
        "--body",
        body,
        UMEM_FLAGS[0],
        UMEM_FLAGS[1],
        UMEM_FLAGS[2],
        UMEM_FLAGS[3],
    ]
    .map(str::to_string)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Starts synack serve as nobody with `caps` and waits for its ready line.
fn start_as_nobody(bed: &Bed, fx: &Fixture, caps: &[String], memlock: (u64, u64)) -> Server {
    let mut argv = as_nobody(caps, memlock);
    argv.push(fx.bin().into());
    argv.extend(serve_args(bed, "unprivileged"));
    Server::start_command(bed, &fx.bin, &strs(&argv))
}

/// Runs synack (check or serve) as nobody with `caps` to its end, at most `secs`.
fn run_as_nobody(
    bed: &Bed,
    fx: &Fixture,
    caps: &[String],
    memlock: (u64, u64),
    args: &[String],
) -> Output {
    let mut argv = as_nobody(caps, memlock);
    argv.push(fx.bin().into());
    argv.extend_from_slice(args);
    bed.server_ns(30, &strs(&argv))
}

fn check_args(bed: &Bed) -> Vec<String> {
    [
        "check",
        "--iface",
        &bed.srv_if,
        "--ip",
        SRV_IP,
        "--frames",
        FRAMES,
    ]
    .map(str::to_string)
    .to_vec()
}

/// The effective capabilities of a running process, by name, and its real uid.
fn caps_of(pid: u32) -> (u64, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k}"))
            .trim()
            .to_string()
    };
    let eff = u64::from_str_radix(&field("CapEff:"), 16).unwrap();
    let uid = field("Uid:")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (eff, uid)
}

fn cap_bit(name: &str) -> u32 {
    match name {
        "CAP_IPC_LOCK" => 14,
        "CAP_NET_ADMIN" => 12,
        "CAP_NET_RAW" => 13,
        "CAP_PERFMON" => 38,
        "CAP_BPF" => 39,
        other => panic!("a capability this test does not know: {other}"),
    }
}

fn assert_serves(bed: &Bed, body: &str) {
    let o = bed.curl(10, &[], "/");
    assert_eq!(ok(&o, "curl"), body);
}

#[test]
fn serves_as_nobody_with_exactly_the_documented_capabilities() {
    let Some(env) = testbed::setup_needing("op", 1, &TOOLS) else {
        return;
    };
    let bed = &env.bed;
    let fx = Fixture::new();
    let caps = unit_caps();
    // Memlock as low as an unprivileged user's default: CAP_IPC_LOCK must cover the UMEM.
    let low = (64 << 10, 64 << 10);
    let check = run_as_nobody(bed, &fx, &caps, low, &check_args(bed));
    let out = text(&check);
    assert!(check.status.success(), "synack check:\n{out}");
    assert!(out.contains("ready: synack can serve"), "{out}");
    for c in &caps {
        assert!(out.contains(&format!("ok   {c}")), "{c}:\n{out}");
    }

    let server = start_as_nobody(bed, &fx, &caps, low);
    let (eff, uid) = caps_of(server.pid());
    let want: u64 = caps.iter().map(|c| 1u64 << cap_bit(c)).sum();
    assert_eq!(eff, want, "CapEff of the server: {eff:x}");
    assert_eq!(uid, 65534, "the server runs as nobody");
    for _ in 0..3 {
        assert_serves(bed, "unprivileged");
    }
    let (st, log) = server.stop();
    assert!(st.success(), "{st:?}\n{log}");
}

#[test]
fn each_missing_capability_is_named() {
    let Some(env) = testbed::setup_needing("op", 1, &TOOLS) else {
        return;
    };
    let bed = &env.bed;
    let fx = Fixture::new();
    let caps = unit_caps();
    // Below one UMEM, soft and hard: without CAP_IPC_LOCK nothing can cover it.
    let low = (UMEM / 2, UMEM / 2);
    for gone in &caps {
        let rest: Vec<String> = caps.iter().filter(|c| *c != gone).cloned().collect();
        let check = run_as_nobody(bed, &fx, &rest, low, &check_args(bed));
        let out = text(&check);
        assert!(
            !check.status.success(),
            "without {gone}, check passed:\n{out}"
        );
        assert!(
            !out.contains("ready:"),
            "without {gone}, check said ready:\n{out}"
        );
        assert!(
            out.contains(&format!("FAIL {gone}")),
            "without {gone}:\n{out}"
        );
        assert!(
            out.contains("setcap ") && out.contains("AmbientCapabilities="),
            "{out}"
        );

        let serve = run_as_nobody(bed, &fx, &rest, low, &serve_args(bed, "x"));
        let out = text(&serve);
        assert_eq!(
            serve.status.code(),
            Some(1),
            "without {gone}, serve:\n{out}"
        );
        assert!(
            out.contains(&format!("missing {gone}")),
            "without {gone}:\n{out}"
        );
        assert!(
            out.contains("setcap "),
            "without {gone}: no fix given:\n{out}"
        );
        assert!(
            !out.contains("panicked") && !out.contains("serving"),
            "{out}"
        );
        // Nothing was left attached.
        assert!(
            !bed.srv_link_details().contains("prog/xdp"),
            "without {gone}"
        );
    }
}

/// `--stats-out` and `--pcap` where the service's user may not write: refused before anything
/// is attached, saying so.
#[test]
fn outputs_the_user_cannot_write_are_refused_at_start() {
    let Some(env) = testbed::setup_needing("op", 1, &TOOLS) else {
        return;
    };
    let bed = &env.bed;
    let fx = Fixture::new();
    // The fixture's directory belongs to root, mode 0755: nobody reads it, cannot write it.
    let dir = fx.dir.as_str().to_string();
    let pcap = fx.dir.join("c.pcap").to_str().unwrap().to_string();
    for (flag, value, says) in [
        ("--stats-out", dir.as_str(), "is not writable by this user"),
        ("--pcap", pcap.as_str(), "cannot write --pcap"),
    ] {
        let mut args = serve_args(bed, "x");
        args.extend([flag.to_string(), value.to_string()]);
        let o = run_as_nobody(bed, &fx, &unit_caps(), (UMEM, UMEM), &args);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{flag}: {out}");
        assert!(out.contains(says), "{flag}: {out}");
        assert!(!bed.srv_link_details().contains("prog/xdp"), "{flag}");
    }
}

#[test]
fn memlock_can_stand_in_for_ipc_lock() {
    let Some(env) = testbed::setup_needing("op", 1, &TOOLS) else {
        return;
    };
    let bed = &env.bed;
    let fx = Fixture::new();
    let rest: Vec<String> = unit_caps()
        .into_iter()
        .filter(|c| c != "CAP_IPC_LOCK")
        .collect();
    // The soft limit is low but the hard one covers the UMEM: synack raises it at start.
    let raisable = (64 << 10, hard_memlock().min(4 * UMEM));
    assert!(
        raisable.1 >= UMEM,
        "this machine's hard memlock limit is below {UMEM}"
    );
    let check = run_as_nobody(bed, &fx, &rest, raisable, &check_args(bed));
    let out = text(&check);
    assert!(check.status.success(), "{out}");
    assert!(
        out.contains("ok   CAP_IPC_LOCK not held, but RLIMIT_MEMLOCK"),
        "{out}"
    );
    let server = start_as_nobody(bed, &fx, &rest, raisable);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))
        .unwrap();
    let soft: u64 = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(soft >= UMEM, "the soft limit was not raised: {line}");
    assert_serves(bed, "unprivileged");
    drop(server);

    // The hard limit does not cover it: named, with the figures and the fix.
    let low = (UMEM / 2, UMEM / 2);
    let serve = run_as_nobody(bed, &fx, &rest, low, &serve_args(bed, "x"));
    let out = text(&serve);
    assert_eq!(serve.status.code(), Some(1), "{out}");
    assert!(
        out.contains("missing CAP_IPC_LOCK, and RLIMIT_MEMLOCK (2M soft, 2M hard) is below the 4M"),
        "{out}"
    );
    assert!(out.contains("LimitMEMLOCK=4M"), "{out}");
}

/// The unit's ExecStart, capability set and memlock limit, with its config file read from a
/// temporary copy: what systemd would start, started by setpriv where PID 1 is not systemd.
#[test]
fn the_unit_starts_synack() {
    let Some(env) = testbed::setup_needing("op", 1, &TOOLS) else {
        return;
    };
    let bed = &env.bed;
    let fx = Fixture::new();
    let unit = unit_text();
    assert_eq!(unit_value(&unit, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(unit_value(&unit, "Restart"), "on-failure");
    let exec = unit_value(&unit, "ExecStart");
    let memlock = systemd_bytes(&unit_value(&unit, "LimitMEMLOCK"));
    assert!(
        memlock >= 8192 * 2048,
        "LimitMEMLOCK must cover one queue's default UMEM"
    );
    // Root without CAP_SYS_RESOURCE (a container) cannot raise the hard limit to the unit's.
    let memlock = memlock.min(hard_memlock());
    let config = fx.dir.join("synack.toml");
    std::fs::write(
        &config,
        format!(
            "iface = \"{}\"\nip = \"{SRV_IP}\"\nport = [{PORT}]\ncores = \"{}\"\nquiet = true\n\
             body = \"from the unit\"\n",
            bed.srv_if,
            testbed::SERVER_CORE
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exec = exec
        .replace("/usr/local/bin/synack", fx.bin())
        .replace("/etc/synack/synack.toml", config.to_str().unwrap());
    assert!(exec.contains("--config"), "{exec}");

    // systemd-analyze verify, with ExecStart pointing at a binary that exists.
    if testbed::find_on_path("systemd-analyze").is_some() {
        let copy = fx.dir.join("synack.service");
        std::fs::write(&copy, unit.replace("/usr/local/bin/synack", fx.bin())).unwrap();
        let o = Command::new("systemd-analyze")
            .args(["verify", copy.to_str().unwrap()])
            .output()
            .expect("systemd-analyze");
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "systemd-analyze verify: {}",
            text(&o)
        );
    }

    let mut argv = as_nobody(&unit_caps(), (memlock, memlock));
    argv.extend(exec.split_whitespace().map(str::to_string));
    let server = Server::start_command(bed, &fx.bin, &strs(&argv));
    assert_serves(bed, "from the unit");
    let (st, log) = server.stop();
    assert!(st.success(), "{st:?}\n{log}");

    systemd_run(bed, &fx, &unit, &config);
}

/// Where PID 1 is systemd: the unit's settings through `systemd-run` into the server
/// namespace. A machine without systemd prints why it skips this part.
fn systemd_run(bed: &Bed, fx: &Fixture, unit: &str, config: &Path) {
    let running = Command::new("systemctl")
        .arg("is-system-running")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !matches!(running.as_str(), "running" | "degraded") {
        eprintln!("the_unit_starts_synack: no systemd-run: PID 1 is not systemd ({running:?})");
        return;
    }
    let name = format!("synack-test-{}", bed.prefix);
    let mut props = vec![
        format!("NetworkNamespacePath=/run/netns/{}", bed.srv_ns),
        "DynamicUser=yes".to_string(),
        // DynamicUser gives the service a private /tmp, where the fixture is not: bind it in.
        format!("BindReadOnlyPaths={}", fx.dir.as_str()),
    ];
    for key in [
        "AmbientCapabilities",
        "CapabilityBoundingSet",
        "LimitMEMLOCK",
        "NoNewPrivileges",
    ] {
        props.push(format!("{key}={}", unit_value(unit, key)));
    }
    let mut cmd = Command::new("systemd-run");
    cmd.args(["--unit", &name, "--collect"]);
    for p in &props {
        cmd.args(["-p", p]);
    }
    cmd.arg(&fx.bin)
        .args(["serve", "--config", config.to_str().unwrap()]);
    let o = cmd.output().expect("systemd-run");
    assert!(o.status.success(), "systemd-run: {}", text(&o));
    let stop = || {
        let _ = Command::new("systemctl").args(["stop", &name]).output();
    };
    let mut served = false;
    for _ in 0..50 {
        let o = bed.curl(2, &[], "/");
        if o.status.success() && String::from_utf8_lossy(&o.stdout) == "from the unit" {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let journal = Command::new("journalctl")
        .args(["-u", &name, "--no-pager"])
        .output()
        .map(|o| text(&o))
        .unwrap_or_default();
    stop();
    assert!(served, "the systemd-run service did not serve:\n{journal}");
}
