//! `synack check --iface IF`: a doctor. Each line says what was checked, whether it is ready,
//! and what to do when it is not.

use std::process::Command;

use crate::cli::CheckArgs;
use std::net::IpAddr;

use crate::netdev::{IfAddr, NetDev};

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Ready.
    Ok,
    /// Works, but not as well as it could (the detail says how to improve it).
    Warn,
    /// synack cannot run until this is fixed (the detail says how).
    Fail,
}

/// One line of the doctor's report.
pub struct Finding {
    /// How it came out.
    pub verdict: Verdict,
    /// What was checked.
    pub what: String,
    /// What was found, and what to do when it is not ready.
    pub detail: String,
}

fn finding(verdict: Verdict, what: &str, detail: impl Into<String>) -> Finding {
    Finding {
        verdict,
        what: what.to_string(),
        detail: detail.into(),
    }
}

/// Effective capabilities of this process, from /proc/self/status.
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;

/// One capability of the set synack needs, and what needs it.
#[derive(Clone, Copy, Debug)]
pub struct Capability {
    /// Its name as libcap and systemd spell it, e.g. `CAP_BPF`.
    pub name: &'static str,
    /// Its number (bit in CapEff).
    pub bit: u32,
    /// What synack does with it.
    pub why: &'static str,
}

/// The capabilities synack needs without root, the set README.md and dist/synack.service
/// document. CAP_IPC_LOCK may be replaced by an RLIMIT_MEMLOCK that covers the UMEMs.
pub const CAPABILITIES: [Capability; 5] = [
    Capability {
        name: "CAP_NET_ADMIN",
        bit: 12,
        why: "attaches the XDP program to the interface",
    },
    Capability {
        name: "CAP_NET_RAW",
        bit: 13,
        why: "opens AF_XDP sockets",
    },
    Capability {
        name: "CAP_BPF",
        bit: 39,
        why: "loads the XDP program and its maps",
    },
    Capability {
        name: "CAP_PERFMON",
        bit: 38,
        why: "lets the verifier accept the XDP program",
    },
    Capability {
        name: "CAP_IPC_LOCK",
        bit: CAP_IPC_LOCK,
        why: "locks the UMEM in memory (or an RLIMIT_MEMLOCK that covers it)",
    },
];

/// Bytes of locked memory the UMEMs of `queues` sockets take (what XDP_UMEM_REG charges
/// against RLIMIT_MEMLOCK without CAP_IPC_LOCK).
pub fn umem_bytes(queues: u32, frames: u32, frame_size: u32) -> u64 {
    u64::from(queues) * u64::from(frames) * u64::from(frame_size)
}

fn has(caps: u64, bit: u32) -> bool {
    caps & (1u64 << bit) != 0
}

/// Whether `caps` holds capability `c`; CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON,
/// as the kernel's bpf_capable() and perfmon_capable() allow.
fn holds(caps: u64, c: &Capability) -> bool {
    has(caps, c.bit) || (matches!(c.name, "CAP_BPF" | "CAP_PERFMON") && has(caps, CAP_SYS_ADMIN))
}

/// A byte count for people and for systemd's `LimitMEMLOCK=` (K, M, G suffixes, 1024-based).
fn bytes_text(b: u64) -> String {
    if b == u64::MAX {
        "unlimited".into()
    } else if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{}G", b >> 30)
    } else if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{}M", b >> 20)
    } else if b >= 1 << 10 && b.is_multiple_of(1 << 10) {
        format!("{}K", b >> 10)
    } else {
        b.to_string()
    }
}

/// What the memlock limit becomes at `synack serve` start: the soft limit raised to the hard
/// one, or both to `need` with CAP_SYS_RESOURCE.
fn reachable_memlock(caps: u64, soft: u64, hard: u64, need: u64) -> u64 {
    if has(caps, CAP_SYS_RESOURCE) {
        soft.max(need)
    } else {
        soft.max(hard)
    }
}

/// The privileges synack has, against those it needs.
#[derive(Debug, Clone)]
pub struct Privileges {
    /// The capabilities of [`CAPABILITIES`] this process lacks. CAP_IPC_LOCK is listed only
    /// when the memlock limit does not cover the UMEMs either.
    pub missing: Vec<Capability>,
    /// RLIMIT_MEMLOCK (soft, hard), bytes.
    pub memlock: (u64, u64),
    /// Locked memory the UMEMs need, bytes.
    pub need: u64,
    /// Whether CAP_IPC_LOCK is held (then the memlock limit does not matter).
    pub ipc_lock: bool,
}

impl Privileges {
    /// This process's privileges for UMEMs of `need` bytes in all.
    pub fn probe(need: u64) -> Privileges {
        let caps = effective_caps();
        let memlock = crate::xdp::memlock_limit().unwrap_or((0, 0));
        Privileges::from_parts(caps, memlock, need)
    }

    fn from_parts(caps: u64, memlock: (u64, u64), need: u64) -> Privileges {
        let ipc_lock = has(caps, CAP_IPC_LOCK);
        let memlock_ok = reachable_memlock(caps, memlock.0, memlock.1, need) >= need;
        let missing = CAPABILITIES
            .iter()
            .filter(|c| !holds(caps, c))
            .filter(|c| c.bit != CAP_IPC_LOCK || !memlock_ok)
            .copied()
            .collect();
        Privileges {
            missing,
            memlock,
            need,
            ipc_lock,
        }
    }

    /// Nothing is missing.
    pub fn ready(&self) -> bool {
        self.missing.is_empty()
    }

    /// One line per missing capability (CAP_IPC_LOCK with the memlock figures).
    pub fn missing_lines(&self) -> Vec<String> {
        self.missing
            .iter()
            .map(|c| {
                if c.bit == CAP_IPC_LOCK {
                    format!(
                        "missing CAP_IPC_LOCK, and RLIMIT_MEMLOCK ({} soft, {} hard) is below the \
                         {} the UMEMs lock: grant CAP_IPC_LOCK or raise the limit to {}",
                        bytes_text(self.memlock.0),
                        bytes_text(self.memlock.1),
                        bytes_text(self.need),
                        bytes_text(self.need)
                    )
                } else {
                    format!("missing {}: synack {}", c.name, c.why)
                }
            })
            .collect()
    }

    /// The commands and unit lines that grant the whole documented set.
    pub fn fix(&self) -> String {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.to_str().map(str::to_string))
            .unwrap_or_else(|| "/usr/local/bin/synack".into());
        format!(
            "fix: run as root, or grant the set to the binary:\n    {}\n  or, under systemd \
             (dist/synack.service):\n    {}",
            setcap_line(&exe),
            systemd_lines(self.need).join("\n    ")
        )
    }
}

/// `setcap` granting [`CAPABILITIES`] to `exe` (setcap replaces the file's set, so all of
/// them are named).
pub fn setcap_line(exe: &str) -> String {
    let names: Vec<String> = CAPABILITIES
        .iter()
        .map(|c| c.name.to_ascii_lowercase())
        .collect();
    format!("sudo setcap {}+ep {exe}", names.join(","))
}

/// The systemd service lines granting [`CAPABILITIES`] and a memlock limit of `need`.
pub fn systemd_lines(need: u64) -> Vec<String> {
    let names: Vec<&str> = CAPABILITIES.iter().map(|c| c.name).collect();
    // Round up to whole MiB, the way a person would write it.
    let mib = need.div_ceil(1 << 20).max(1);
    vec![
        format!("AmbientCapabilities={}", names.join(" ")),
        format!("CapabilityBoundingSet={}", names.join(" ")),
        format!("LimitMEMLOCK={}", bytes_text(mib << 20)),
    ]
}

/// At `synack serve` start: raises RLIMIT_MEMLOCK where permitted (the soft limit up to the
/// hard one, or both to `need` with CAP_SYS_RESOURCE) so UMEMs of `need` bytes can be
/// registered without CAP_IPC_LOCK, then checks every capability. The error names each missing
/// one and the fix.
pub fn privileges(need: u64) -> Result<(), String> {
    let caps = effective_caps();
    if !has(caps, CAP_IPC_LOCK)
        && let Ok((soft, hard)) = crate::xdp::memlock_limit()
        && soft < need
    {
        let target = reachable_memlock(caps, soft, hard, need);
        let new_hard = hard.max(target);
        if let Err(e) = crate::xdp::set_memlock_limit(target, new_hard) {
            eprintln!(
                "synack: warning: cannot raise RLIMIT_MEMLOCK to {}: {e}",
                bytes_text(target)
            );
        }
    }
    let p = Privileges::probe(need);
    if p.ready() {
        return Ok(());
    }
    Err(format!("{}\n{}", p.missing_lines().join("\n"), p.fix()))
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn kernel_version(release: &str) -> (u32, u32) {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn bpffs_mounted() -> bool {
    std::fs::read_to_string("/proc/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(2) == Some("bpf"))
        })
        .unwrap_or(false)
}

fn ethtool_features(iface: &str) -> Option<String> {
    let out = Command::new("ethtool").args(["-k", iface]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

fn feature_on(text: &str, name: &str) -> Option<bool> {
    text.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim_start().starts_with("on"))
    })
}

/// Runs every check.
pub fn findings(args: &CheckArgs) -> Vec<Finding> {
    let mut v = Vec::new();
    let release = kernel_release();
    let (maj, min) = kernel_version(&release);
    if (maj, min) >= (5, 11) {
        v.push(finding(
            Verdict::Ok,
            "kernel",
            format!("{release}: AF_XDP, XDP through bpf_link, preferred busy polling"),
        ));
    } else if (maj, min) >= (5, 9) {
        v.push(finding(
            Verdict::Warn,
            "kernel",
            format!("{release}: works, but --busy-poll needs 5.11 or later"),
        ));
    } else {
        v.push(finding(
            Verdict::Fail,
            "kernel",
            format!(
                "{release}: synack needs Linux 5.9 or later (XDP bpf_link); upgrade the kernel"
            ),
        ));
    }
    match crate::xdp::af_xdp_available() {
        Ok(()) => v.push(finding(Verdict::Ok, "AF_XDP", "sockets can be created")),
        Err(e) => v.push(finding(Verdict::Fail, "AF_XDP", e)),
    }
    let need = umem_bytes(args.queues, args.frames, args.frame_size);
    let p = Privileges::probe(need);
    for c in &CAPABILITIES {
        if let Some(line) = p
            .missing
            .iter()
            .position(|m| m.bit == c.bit)
            .map(|i| p.missing_lines().swap_remove(i))
        {
            v.push(finding(Verdict::Fail, c.name, line));
        } else if c.bit == CAP_IPC_LOCK && !p.ipc_lock {
            v.push(finding(
                Verdict::Ok,
                c.name,
                format!(
                    "not held, but RLIMIT_MEMLOCK ({} soft, {} hard) covers the {} the UMEMs lock",
                    bytes_text(p.memlock.0),
                    bytes_text(p.memlock.1),
                    bytes_text(need)
                ),
            ));
        } else {
            v.push(finding(
                Verdict::Ok,
                c.name,
                format!("held: synack {}", c.why),
            ));
        }
    }
    if !p.ready() {
        v.push(finding(Verdict::Fail, "privileges", p.fix()));
    }
    if bpffs_mounted() {
        v.push(finding(
            Verdict::Ok,
            "bpffs",
            "mounted (not required: synack pins nothing)",
        ));
    } else {
        v.push(finding(
            Verdict::Warn,
            "bpffs",
            "not mounted; synack does not need it, bpftool does: `mount -t bpf bpf /sys/fs/bpf`",
        ));
    }
    let dev = match NetDev::lookup(&args.iface) {
        Ok(d) => d,
        Err(e) => {
            v.push(finding(Verdict::Fail, "interface", e));
            return v;
        }
    };
    let driver = dev.driver().unwrap_or_else(|| "unknown".into());
    v.push(finding(
        Verdict::Ok,
        "interface",
        format!(
            "{} (index {}, driver {driver}, MTU {}, {} queue(s))",
            dev.name,
            dev.index,
            dev.mtu,
            dev.queue_count()
        ),
    ));
    if dev.mtu > 4096 - 14 {
        v.push(finding(
            Verdict::Fail,
            "MTU",
            format!(
                "{} is larger than an AF_XDP frame allows: `ip link set dev {} mtu 1500`",
                dev.mtu, dev.name
            ),
        ));
    } else if dev.mtu > 2048 - 14 {
        v.push(finding(
            Verdict::Warn,
            "MTU",
            format!("{}: serve with --frame-size 4096", dev.mtu),
        ));
    }
    v.extend(address_findings(
        &dev.name,
        &args.ip,
        &dev.addrs(),
        ipv6_disabled(&dev.name),
    ));
    if let Some(p) = dev.attached_xdp() {
        v.push(finding(
            Verdict::Fail,
            "XDP",
            crate::instance::busy_message(&dev, &p),
        ));
    } else {
        match crate::xdp::probe_native_xdp(&dev.name) {
            Ok(()) => v.push(finding(Verdict::Ok, "XDP", format!("native (driver) mode attaches on {}", dev.name))),
            Err(e) => v.push(finding(
                Verdict::Warn,
                "XDP",
                format!("native mode refused ({e}); synack will fall back to skb mode (slower): --xdp-mode skb"),
            )),
        }
    }
    match ethtool_features(&dev.name) {
        Some(f) => {
            if feature_on(&f, "large-receive-offload") == Some(true) {
                v.push(finding(
                    Verdict::Fail,
                    "offloads",
                    format!(
                        "LRO is on and XDP cannot run with it: `ethtool -K {} lro off`",
                        dev.name
                    ),
                ));
            } else {
                v.push(finding(Verdict::Ok, "offloads", "LRO off"));
            }
            if driver == "veth" {
                v.push(finding(
                    Verdict::Warn,
                    "veth",
                    "the peer's kernel leaves TCP checksums partial unless its offloads are off: on the \
                     peer run `ethtool -K PEER tx off tso off gso off gro off`",
                ));
            }
        }
        None => v.push(finding(
            Verdict::Warn,
            "offloads",
            "ethtool not found: `apt-get install ethtool` to check LRO",
        )),
    }
    v
}

/// Whether IPv6 is off on `iface` (`/proc/sys/net/ipv6/conf/IF/disable_ipv6`, or no IPv6 in
/// the kernel at all).
fn ipv6_disabled(iface: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6"))
        .map(|s| s.trim() == "1")
        .unwrap_or(true)
}

/// One finding per address asked about: configured on the interface, and for IPv6 enabled on
/// it and past duplicate address detection (the kernel answers neighbour solicitations for
/// it only then).
fn address_findings(
    iface: &str,
    asked: &[IpAddr],
    configured: &[IfAddr],
    v6_disabled: bool,
) -> Vec<Finding> {
    let mut v = Vec::new();
    for ip in asked {
        let found = configured.iter().find(|c| c.addr == *ip);
        let f = match (ip, found) {
            (IpAddr::V6(_), _) if v6_disabled => finding(
                Verdict::Fail,
                "address",
                format!(
                    "IPv6 is disabled on {iface}: `sysctl -w net.ipv6.conf.{iface}.disable_ipv6=0`, \
                     then `ip addr add {ip}/64 dev {iface}`"
                ),
            ),
            (_, None) => {
                let (len, what) = if ip.is_ipv4() {
                    ("24", "ARP")
                } else {
                    ("64", "neighbour discovery")
                };
                finding(
                    Verdict::Fail,
                    "address",
                    format!(
                        "{ip} is not on {iface}: `ip addr add {ip}/{len} dev {iface}` (the kernel \
                         answers {what} for it)"
                    ),
                )
            }
            (_, Some(c)) if c.dadfailed => finding(
                Verdict::Fail,
                "address",
                format!(
                    "{ip} failed duplicate address detection on {iface}: another host has it; \
                     pick another (`ip addr del {ip}/64 dev {iface}`)"
                ),
            ),
            (_, Some(c)) if c.tentative => finding(
                Verdict::Fail,
                "address",
                format!(
                    "{ip} on {iface} is tentative: duplicate address detection is still running \
                     (a second or two) and the kernel does not answer neighbour solicitations for \
                     it yet; check again, or add it with `nodad`"
                ),
            ),
            (IpAddr::V6(_), Some(_)) => finding(
                Verdict::Ok,
                "address",
                format!("{ip} is configured on {iface}, past duplicate address detection"),
            ),
            (IpAddr::V4(_), Some(_)) => finding(
                Verdict::Ok,
                "address",
                format!("{ip} is configured on {iface}"),
            ),
        };
        v.push(f);
    }
    v
}

/// Prints the findings; fails if any check failed.
pub fn run(args: &CheckArgs) -> Result<(), String> {
    let f = findings(args);
    let mut failed = 0;
    for x in &f {
        let tag = match x.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => {
                failed += 1;
                "FAIL"
            }
        };
        println!("{tag} {:<11} {}", x.what, x.detail);
    }
    if failed > 0 {
        return Err(format!(
            "{failed} check(s) failed; fix them and run `synack check` again"
        ));
    }
    println!("ready: synack can serve on {}", args.iface);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_both_families_are_judged() {
        let a = |t: &str, tentative, dadfailed| IfAddr {
            addr: t.parse().unwrap(),
            tentative,
            dadfailed,
        };
        let configured = [
            a("192.0.2.1", false, false),
            a("2001:db8::1", false, false),
            a("2001:db8::2", true, false),
            a("2001:db8::3", true, true),
        ];
        let ask = |t: &[&str], off| {
            let asked: Vec<IpAddr> = t.iter().map(|s| s.parse().unwrap()).collect();
            address_findings("eth1", &asked, &configured, off)
        };
        let f = ask(&["192.0.2.1", "2001:db8::1"], false);
        assert!(f.iter().all(|f| f.verdict == Verdict::Ok));
        let f = &ask(&["2001:db8::2"], false)[0];
        assert_eq!(f.verdict, Verdict::Fail);
        assert!(
            f.detail.contains("tentative") && f.detail.contains("nodad"),
            "{}",
            f.detail
        );
        let f = &ask(&["2001:db8::3"], false)[0];
        assert!(
            f.detail.contains("failed duplicate address detection"),
            "{}",
            f.detail
        );
        let f = &ask(&["2001:db8::9"], false)[0];
        assert!(
            f.detail.contains("`ip addr add 2001:db8::9/64 dev eth1`"),
            "{}",
            f.detail
        );
        let f = &ask(&["192.0.2.9"], false)[0];
        assert!(
            f.detail.contains("`ip addr add 192.0.2.9/24 dev eth1`"),
            "{}",
            f.detail
        );
        let f = &ask(&["2001:db8::1"], true)[0];
        assert_eq!(f.verdict, Verdict::Fail);
        assert!(f.detail.contains("disable_ipv6=0"), "{}", f.detail);
        // IPv4 does not care whether IPv6 is on.
        assert_eq!(ask(&["192.0.2.1"], true)[0].verdict, Verdict::Ok);
    }

    #[test]
    fn versions_and_features_parse() {
        assert_eq!(kernel_version("6.18.0-rc1+"), (6, 18));
        assert_eq!(kernel_version("5.4.0-150-generic"), (5, 4));
        let f = "Features for eth0:\nlarge-receive-offload: off [fixed]\ntx-checksumming: on\n";
        assert_eq!(feature_on(f, "large-receive-offload"), Some(false));
        assert_eq!(feature_on(f, "tx-checksumming"), Some(true));
    }

    fn bits(names: &[&str]) -> u64 {
        names
            .iter()
            .map(|n| 1u64 << CAPABILITIES.iter().find(|c| c.name == *n).unwrap().bit)
            .sum()
    }

    const ALL: [&str; 5] = [
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_IPC_LOCK",
    ];

    #[test]
    fn every_missing_capability_is_named() {
        let need = umem_bytes(1, 8192, 2048);
        assert!(Privileges::from_parts(bits(&ALL), (0, 0), need).ready());
        for gone in ALL {
            let rest: Vec<&str> = ALL.iter().copied().filter(|n| *n != gone).collect();
            let p = Privileges::from_parts(bits(&rest), (8 << 20, 8 << 20), need);
            let names: Vec<&str> = p.missing.iter().map(|c| c.name).collect();
            assert_eq!(names, [gone], "without {gone}");
            let lines = p.missing_lines().join("\n");
            assert!(lines.contains(gone), "{lines}");
        }
        // CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON.
        let p = Privileges::from_parts(
            bits(&["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK"]) | 1 << CAP_SYS_ADMIN,
            (0, 0),
            need,
        );
        assert!(p.ready());
    }

    #[test]
    fn memlock_replaces_ipc_lock() {
        let need = umem_bytes(2, 8192, 2048);
        let caps = bits(&ALL[..4]);
        // The soft limit can be raised to a hard limit that covers the UMEMs.
        assert!(Privileges::from_parts(caps, (64 << 10, 64 << 20), need).ready());
        assert!(Privileges::from_parts(caps, (u64::MAX, u64::MAX), need).ready());
        // The hard limit is too low, and nothing may raise it.
        let p = Privileges::from_parts(caps, (8 << 20, 8 << 20), need);
        assert!(!p.ready());
        let line = p.missing_lines().join("");
        assert!(line.contains("8M soft") && line.contains("32M"), "{line}");
        // CAP_SYS_RESOURCE may raise the hard limit.
        assert!(Privileges::from_parts(caps | 1 << CAP_SYS_RESOURCE, (0, 0), need).ready());
    }

    #[test]
    fn the_fix_grants_the_whole_set() {
        assert_eq!(
            setcap_line("/usr/bin/synack"),
            "sudo setcap cap_net_admin,cap_net_raw,cap_bpf,cap_perfmon,cap_ipc_lock+ep /usr/bin/synack"
        );
        let lines = systemd_lines(16 << 20);
        assert_eq!(
            lines[0],
            "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON CAP_IPC_LOCK"
        );
        assert_eq!(lines[2], "LimitMEMLOCK=16M");
        assert_eq!(systemd_lines(16 << 20 | 1)[2], "LimitMEMLOCK=17M");
    }

    /// The unit shipped in dist/ grants exactly the set this module checks.
    #[test]
    fn the_unit_grants_the_documented_set() {
        let unit = include_str!("../dist/synack.service");
        let names: Vec<&str> = CAPABILITIES.iter().map(|c| c.name).collect();
        for key in ["AmbientCapabilities=", "CapabilityBoundingSet="] {
            let line = unit
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in dist/synack.service"));
            let mut got: Vec<&str> = line.split_whitespace().collect();
            let mut want = names.clone();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{key}");
        }
        let readme = include_str!("../README.md");
        for n in names {
            assert!(readme.contains(n), "README.md does not document {n}");
        }
    }
}
