//! The plan: the flags checked (each refusal says what to do), the interface looked up, the
//! cores chosen, and each worker's engine configuration. Nothing is started here.

use std::net::IpAddr;
use std::time::Duration;

use super::ServeError;
use crate::cli::{ServerArgs, SynCookiesArg, XdpModeArg, parse_core_list};
use crate::netdev::NetDev;
use crate::tcp::config::TcpConfig;
use crate::tcp::engine::{EngineConfig, SynCookieMode};
use crate::wire::IpAddress;
use crate::xdp::XdpMode;

/// The most addresses one server serves (the XDP program's maps and the engine's list).
pub(crate) const MAX_ADDRS: usize = 64;

fn err<T>(msg: impl Into<String>) -> Result<T, ServeError> {
    Err(ServeError(msg.into()))
}

/// What `run` will start.
pub(crate) struct Plan {
    pub iface: NetDev,
    pub cores: Vec<usize>,
    /// The MTU the MSS is derived from: --mtu, else the interface's.
    pub mtu: u16,
    pub mode: XdpMode,
}

/// Checks the flags that clap cannot.
pub(crate) fn validate(a: &ServerArgs) -> Result<(), ServeError> {
    if a.port.is_empty() {
        return err("give at least one port to serve (--port)");
    }
    if a.port.contains(&0) {
        return err("port 0 cannot be served; give ports from 1 to 65535");
    }
    if a.queues == 0 {
        return err("--queues must be at least 1");
    }
    if !(a.frame_size == 2048 || a.frame_size == 4096) {
        return err("--frame-size must be 2048 or 4096");
    }
    if let Some(mtu) = a.mtu
        && (mtu < 576 || mtu as u32 + 14 > a.frame_size)
    {
        return err(format!(
            "--mtu {} does not fit a {}-byte frame (576 to {})",
            mtu,
            a.frame_size,
            a.frame_size - 14
        ));
    }
    let mut seen = Vec::new();
    for ip in &a.ip {
        if seen.contains(ip) {
            return err(format!("--ip {ip} is given twice"));
        }
        seen.push(*ip);
        match ip {
            IpAddr::V4(v4) if v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() => {
                return err(format!(
                    "--ip {ip} cannot be served: give a unicast address configured on --iface"
                ));
            }
            IpAddr::V6(v6) if v6.is_unspecified() || v6.is_multicast() => {
                return err(format!(
                    "--ip {ip} cannot be served: give a unicast address configured on --iface"
                ));
            }
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                return err(format!(
                    "--ip {ip} is an IPv4-mapped IPv6 address: give the IPv4 address itself \
                     (--ip {})",
                    v6.to_ipv4_mapped().map(|v| v.to_string()).unwrap_or_default()
                ));
            }
            _ => {}
        }
    }
    if a.ip.len() > MAX_ADDRS {
        return err(format!("serve at most {MAX_ADDRS} addresses (--ip)"));
    }
    if !a.ring_size.is_power_of_two() || a.ring_size < 64 {
        return err("--ring-size must be a power of two, at least 64");
    }
    if a.frames < 2 * a.ring_size {
        return err(format!(
            "--frames must be at least twice --ring-size ({})",
            2 * a.ring_size
        ));
    }
    if !(0.0..=1.0).contains(&a.inject_drop) {
        return err("--inject-drop must be between 0 and 1");
    }
    if a.max_conns == 0 || a.max_conns > (1 << 24) {
        return err("--max-conns must be between 1 and 16777216");
    }
    if a.mem_limit < 64 * 1024 {
        return err("--mem-limit must be at least 65536");
    }
    if a.recv_buffer < 4096 || a.recv_buffer > (1 << 30) {
        return err("--recv-buffer must be between 4096 and 1073741824");
    }
    if a.send_buffer < 4096 || a.send_buffer > (1 << 30) {
        return err("--send-buffer must be between 4096 and 1073741824");
    }
    Ok(())
}

/// Checks that `--stats-out` is a writable directory (creating it if missing) and that
/// `--pcap` can be written, before anything is attached.
pub(crate) fn check_outputs(a: &ServerArgs) -> Result<(), ServeError> {
    if let Some(dir) = &a.stats_out {
        let d = dir.display();
        match std::fs::metadata(dir) {
            // Created as `mkdir -p` would (what earlier versions did when they first wrote).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    return err(format!(
                        "--stats-out {d}: cannot create the directory: {e}; give a directory \
                         this user may create or write"
                    ));
                }
            }
            Err(e) => return err(format!("--stats-out {d}: {e}")),
            Ok(m) if !m.is_dir() => {
                return err(format!("--stats-out {d} is not a directory; give a directory"));
            }
            Ok(_) => {}
        }
        // Only a write says whether this user may write there (modes, ACLs, read-only mounts).
        let probe = dir.join(format!(".synack-write-check.{}", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .map_err(|e| {
                ServeError(format!(
                    "--stats-out {d} is not writable by this user: {e}; give a directory it may \
                     write (under systemd: StateDirectory=synack, /var/lib/synack)"
                ))
            })?;
        let _ = std::fs::remove_file(&probe);
    }
    if let Some(file) = &a.pcap {
        let f = file.display();
        let parent = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        if !parent.is_dir() {
            return err(format!(
                "--pcap {f}: directory {} does not exist; create it (`mkdir -p {}`)",
                parent.display(),
                parent.display()
            ));
        }
        if file.is_dir() {
            return err(format!("--pcap {f} is a directory; give a file name"));
        }
        // Opened without truncating: the capture itself starts the file over.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(file)
            .map_err(|e| {
                ServeError(format!(
                    "cannot write --pcap {f}: {e}; give a file this user may write (under \
                     systemd: LogsDirectory=synack, /var/log/synack)"
                ))
            })?;
    }
    Ok(())
}

/// Looks up the interface and its queues, and chooses the cores.
pub(crate) fn plan(a: &ServerArgs) -> Result<Plan, ServeError> {
    validate(a)?;
    check_outputs(a)?;
    let iface = NetDev::lookup(&a.iface).map_err(ServeError)?;
    let configured = iface.addrs();
    for ip in &a.ip {
        let Some(found) = configured.iter().find(|c| c.addr == *ip) else {
            let (len, what) = if ip.is_ipv4() {
                ("24", "ARP")
            } else {
                ("64", "neighbour discovery")
            };
            return err(format!(
                "address {ip} is not configured on {}: add it with `ip addr add {ip}/{len} dev {}` \
                 (the kernel must own it to answer {what})",
                a.iface, a.iface
            ));
        };
        if found.dadfailed {
            return err(format!(
                "address {ip} failed duplicate address detection on {}: another host on the link \
                 has it; pick another address (`ip addr del {ip}/64 dev {}`)",
                a.iface, a.iface
            ));
        }
        if found.tentative {
            return err(format!(
                "address {ip} on {} is still tentative (duplicate address detection runs for a \
                 second or two and the kernel does not answer neighbour solicitations for it \
                 meanwhile): start synack once `ip addr show dev {}` no longer says tentative, \
                 or add the address with `nodad`",
                a.iface, a.iface
            ));
        }
    }
    let mtu = effective_mtu(a, &iface)?;
    let available = iface.queue_count();
    let driver = iface.driver().unwrap_or_default();
    let set_queues = |n: u32| {
        if driver == "veth" {
            format!("ethtool -L {} rx {n} tx {n}", a.iface)
        } else {
            format!("ethtool -L {} combined {n}", a.iface)
        }
    };
    if a.queues > available {
        return err(format!(
            "--queues {} asks for more queues than {} has ({}); use --queues {} or add queues ({})",
            a.queues,
            a.iface,
            available,
            available,
            set_queues(a.queues)
        ));
    }
    if a.queues < available {
        log::warn!(
            "synack: {} has {} queues but only {} are served: connections hashed to the \
             other queues reach the kernel and are refused. Serve them all (--queues {}) or \
             reduce the queues ({}).",
            a.iface,
            available,
            a.queues,
            available,
            set_queues(a.queues)
        );
    }
    let need = crate::check::umem_bytes(a.queues, a.frames, a.frame_size);
    crate::check::privileges(need).map_err(ServeError)?;
    if let Some(p) = iface.attached_xdp() {
        return err(crate::instance::busy_message(&iface, &p));
    }

    let (allowed, cores) = worker_cores(a)?;
    if cores.len() < a.queues as usize {
        return err(format!(
            "--cores lists {} core(s) for {} queues; give one core per queue",
            cores.len(),
            a.queues
        ));
    }
    for c in &cores {
        if !allowed.contains(c) {
            return err(format!(
                "core {c} in --cores is not available to this process (allowed: {allowed:?}; see taskset and cgroups)"
            ));
        }
    }
    let mode = match a.xdp_mode {
        XdpModeArg::Auto => XdpMode::Auto,
        XdpModeArg::Native => XdpMode::Native,
        XdpModeArg::Skb => XdpMode::Skb,
    };
    Ok(Plan {
        iface,
        cores,
        mode,
        mtu,
    })
}

/// The cores this process may run on (taskset, cgroups), and the workers' cores: `--cores`,
/// else the last N allowed cores, leaving the first to the system, load generators and the
/// server's own helper threads (the access log writer).
pub(crate) fn worker_cores(a: &ServerArgs) -> Result<(Vec<usize>, Vec<usize>), ServeError> {
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let cores: Vec<usize> = match &a.cores {
        Some(list) => parse_core_list(list).map_err(|e| ServeError(format!("--cores: {e}")))?,
        None => allowed
            .iter()
            .rev()
            .take(a.queues as usize)
            .rev()
            .copied()
            .collect(),
    };
    Ok((allowed, cores))
}

/// The MTU to derive the MSS from: --mtu when given, else the interface's (as Linux derives
/// its advertised MSS from the route's device). An interface MTU above what one UMEM frame
/// holds is lowered to fit, with a warning: peers then send segments that fit a frame.
fn effective_mtu(a: &ServerArgs, iface: &NetDev) -> Result<u16, ServeError> {
    let fits = a.frame_size - 14;
    let mtu = match a.mtu {
        Some(m) => m,
        None => {
            let m = iface.mtu;
            if m > fits {
                log::warn!(
                    "{} has MTU {m}, more than a {}-byte UMEM frame holds: serving with MTU {fits} \
                     (peers send segments of at most MSS {}); use --frame-size 4096 for up to 4082",
                    a.iface,
                    a.frame_size,
                    fits - 40
                );
            }
            m.min(fits) as u16
        }
    };
    let v6 = a.ip.iter().any(|ip| ip.is_ipv6());
    if v6 && mtu < 1280 {
        return err(format!(
            "MTU {mtu} is below IPv6's minimum of 1280 (RFC 8200 5): raise the MTU of {} (or \
             --mtu), or serve only IPv4 addresses",
            a.iface
        ));
    }
    if mtu < 576 {
        return err(format!(
            "MTU {mtu} of {} is below 576, the least synack serves: raise it with `ip link set \
             dev {} mtu 1500`",
            a.iface, a.iface
        ));
    }
    Ok(mtu)
}

/// One worker's engine configuration, with its own secret from the OS.
pub(crate) fn engine_config(a: &ServerArgs, mtu: u16) -> Result<EngineConfig, ServeError> {
    Ok(EngineConfig {
        tcp: TcpConfig {
            mss: TcpConfig::mss_for_mtu(mtu),
            recv_buffer: a.recv_buffer,
            send_buffer: a.send_buffer,
            msl: Duration::from_secs(a.msl),
            ..TcpConfig::default()
        },
        local_ips: a.ip.iter().map(|ip| IpAddress::from(*ip)).collect(),
        ports: a.port.clone(),
        max_conns: a.max_conns,
        syn_backlog: a.syn_backlog,
        syn_cookies: match a.syn_cookies {
            SynCookiesArg::Auto => SynCookieMode::OnOverflow,
            SynCookiesArg::Always => SynCookieMode::Always,
            SynCookiesArg::Never => SynCookieMode::Never,
        },
        time_wait_capacity: a.max_time_wait,
        secret: random_secret()?,
        buffer_pool: 1024,
        mem_limit: a.mem_limit,
        recv_floor: EngineConfig::default().recv_floor,
    })
}

/// Random keys for ISNs, cookies and table hashes: from the OS, never fixed.
pub(crate) fn random_secret() -> Result<[u8; 48], ServeError> {
    EngineConfig::random_secret()
        .map_err(|e| ServeError(format!("cannot draw random secret keys from the OS: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        a: ServerArgs,
    }

    fn args(extra: &[&str]) -> ServerArgs {
        let mut argv = vec!["t", "--iface", "x", "--ip", "1.2.3.4", "--port", "80"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap().a
    }

    /// --stats-out and --pcap are checked before anything is attached, each error saying what
    /// to do.
    #[test]
    fn outputs_are_checked_at_start() {
        let dir = std::env::temp_dir().join(format!("synack-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap();
        assert!(check_outputs(&args(&["--stats-out", d])).is_ok());
        let missing = format!("{d}/made/deeper");
        assert!(check_outputs(&args(&["--stats-out", &missing])).is_ok());
        assert!(std::path::Path::new(&missing).is_dir(), "--stats-out was not created");
        let file = format!("{d}/f");
        std::fs::write(&file, "x").unwrap();
        let under_file = format!("{d}/f/sub");
        let e = check_outputs(&args(&["--stats-out", &under_file])).unwrap_err().0;
        assert!(e.contains("cannot create"), "{e}");
        let e = check_outputs(&args(&["--stats-out", &file])).unwrap_err().0;
        assert!(e.contains("not a directory"), "{e}");
        let pcap = format!("{d}/none/c.pcap");
        let e = check_outputs(&args(&["--pcap", &pcap])).unwrap_err().0;
        assert!(e.contains("does not exist"), "{e}");
        let e = check_outputs(&args(&["--pcap", d])).unwrap_err().0;
        assert!(e.contains("is a directory"), "{e}");
        let pcap = format!("{d}/c.pcap");
        assert!(check_outputs(&args(&["--pcap", &pcap])).is_ok());
        // The check leaves no probe behind.
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 3, "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The server's engines get their secret from the OS: never a constant, never shared.
    #[test]
    fn each_worker_secret_is_drawn_from_the_os() {
        let a = random_secret().unwrap();
        let b = random_secret().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [7; 48]);
        assert_ne!(a, [0; 48]);
    }
}
