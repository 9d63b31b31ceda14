//! `synack check --iface IF`: a doctor. Each line says what was checked, whether it is ready,
//! and what to do when it is not.

use std::process::Command;

use crate::cli::CheckArgs;
use crate::netdev::NetDev;

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

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Whether the process may load BPF and open AF_XDP sockets; the error says what to do.
pub fn privileges() -> Result<(), String> {
    let caps = effective_caps();
    let has = |c: u32| caps & (1u64 << c) != 0;
    let bpf = has(CAP_BPF) || has(CAP_SYS_ADMIN);
    let net = has(CAP_NET_ADMIN);
    let raw = has(CAP_NET_RAW);
    if bpf && net && raw {
        return Ok(());
    }
    let mut missing = Vec::new();
    if !net {
        missing.push("CAP_NET_ADMIN");
    }
    if !bpf {
        missing.push("CAP_BPF");
    }
    if !raw {
        missing.push("CAP_NET_RAW");
    }
    Err(format!(
        "missing {}: run as root or with CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF \
         (e.g. `sudo setcap cap_net_admin,cap_net_raw,cap_bpf,cap_sys_admin+ep $(which synack)`)",
        missing.join(", ")
    ))
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
    match privileges() {
        Ok(()) => v.push(finding(
            Verdict::Ok,
            "privileges",
            "CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF present",
        )),
        Err(e) => v.push(finding(Verdict::Fail, "privileges", e)),
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
    if let Some(ip) = args.ip {
        let addrs = dev.ipv4_addrs();
        if addrs.contains(&ip) {
            v.push(finding(
                Verdict::Ok,
                "address",
                format!("{ip} is configured on {}", dev.name),
            ));
        } else {
            v.push(finding(
                Verdict::Fail,
                "address",
                format!(
                    "{ip} is not on {}: `ip addr add {ip}/24 dev {}`",
                    dev.name, dev.name
                ),
            ));
        }
    }
    if let Some(p) = dev.attached_xdp() {
        v.push(finding(
            Verdict::Fail,
            "XDP",
            format!(
                "{p} is already attached to {}: detach it with `ip link set dev {} xdp off`",
                dev.name, dev.name
            ),
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
    fn versions_and_features_parse() {
        assert_eq!(kernel_version("6.18.0-rc1+"), (6, 18));
        assert_eq!(kernel_version("5.4.0-150-generic"), (5, 4));
        let f = "Features for eth0:\nlarge-receive-offload: off [fixed]\ntx-checksumming: on\n";
        assert_eq!(feature_on(f, "large-receive-offload"), Some(false));
        assert_eq!(feature_on(f, "tx-checksumming"), Some(true));
    }
}
