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
    /// Our addresses: `--ip`, and a client's source prefixes spelled out.
    pub sources: Vec<IpAddr>,
}

/// Checks the flags that clap cannot.
pub(crate) fn validate(a: &ServerArgs) -> Result<(), ServeError> {
    if a.port.is_empty() && a.client.is_none() {
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
        let found = configured.iter().find(|c| c.addr == *ip);
        if found.is_none() && a.client.is_some() {
            check_local_source(*ip, &a.iface)?;
            continue;
        }
        let Some(found) = found else {
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
    let mut sources = a.ip.clone();
    if let Some(side) = &a.client {
        for (net, len) in &side.prefixes {
            for ip in prefix_addrs(*net, *len, MAX_PREFIX_SOURCES) {
                if !sources.contains(&ip) {
                    sources.push(ip);
                }
            }
            // The kernel must answer ARP / neighbour discovery for every address of it.
            if let Some(first) = sources.last() {
                check_local_source(*first, &a.iface)?;
            }
        }
        if sources.len() > crate::xdp::program::MAX_ADDRS {
            return err(format!(
                "at most {} source addresses (prefixes included)",
                crate::xdp::program::MAX_ADDRS
            ));
        }
    }
    Ok(Plan {
        iface,
        cores,
        mode,
        mtu,
        sources,
    })
}

/// A client's source address the interface does not carry must still be one the kernel
/// takes as its own (an AnyIP route: `ip route add local PREFIX dev lo`), so that it answers
/// ARP and neighbour discovery for it and the server's replies reach this host.
fn check_local_source(ip: IpAddr, iface: &str) -> Result<(), ServeError> {
    if crate::netdev::is_local(ip) {
        return Ok(());
    }
    let (len, what) = if ip.is_ipv4() {
        ("32", "ARP")
    } else {
        ("128", "neighbour discovery")
    };
    err(format!(
        "source address {ip} is not an address of this host: add it (`ip addr add {ip}/{len} dev \
         {iface}`), or for a prefix a local route (`ip route add local PREFIX dev lo`), so that the \
         kernel answers {what} for it"
    ))
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

/// A client's settings completed before the plan: the source addresses (the interface's
/// of the remote's family when none were given), whether the workers must answer neighbour
/// discovery for them, and the MAC of the next hop (the kernel's neighbour table, after
/// making the kernel resolve it).
pub(crate) fn client_setup(a: &mut ServerArgs) -> Result<(), ServeError> {
    let Some(side) = a.client.as_mut() else {
        return Ok(());
    };
    let Some(remote) = side.remote else {
        return err("a client needs the remote address and port to connect to");
    };
    let iface = NetDev::lookup(&a.iface).map_err(ServeError)?;
    let configured = iface.addrs();
    if a.ip.is_empty() && side.prefixes.is_empty() {
        a.ip = configured
            .iter()
            .filter(|c| c.addr.is_ipv4() == remote.is_ipv4() && !c.tentative && !c.dadfailed)
            .filter(|c| !matches!(c.addr, IpAddr::V6(v6) if v6.is_unicast_link_local()))
            .map(|c| c.addr)
            .take(1)
            .collect();
        if a.ip.is_empty() {
            return err(format!(
                "{} has no {} address to connect from: add one (`ip addr add ... dev {}`) or \
                 give source addresses (--src)",
                a.iface,
                if remote.is_ipv4() { "IPv4" } else { "IPv6" },
                a.iface
            ));
        }
    }
    for (net, len) in &side.prefixes {
        let max = if net.is_ipv4() { 32 } else { 128 };
        if *len > max || *len < max.saturating_sub(24) {
            return err(format!(
                "source prefix {net}/{len}: give a prefix length from {} to {max}",
                max - 24
            ));
        }
    }
    if a.ip.iter().any(|ip| ip.is_ipv4() != remote.is_ipv4())
        || side.prefixes.iter().any(|(n, _)| n.is_ipv4() != remote.is_ipv4())
    {
        return err(format!(
            "the source addresses must be of the remote's family ({remote} is {})",
            if remote.is_ipv4() { "IPv4" } else { "IPv6" }
        ));
    }
    if side.next_hop.is_none() {
        let mac = crate::netdev::resolve_next_hop(
            &a.iface,
            remote.ip(),
            Duration::from_secs(3),
        )
        .map_err(ServeError)?;
        side.next_hop = Some(mac);
    }
    Ok(())
}

/// The most source addresses a worker's engine is given from prefixes.
const MAX_PREFIX_SOURCES: usize = 1024;

/// The addresses of `net`/`len`, in order, at most `max` (IPv4: without the network and
/// broadcast addresses of prefixes shorter than /31).
pub(crate) fn prefix_addrs(net: IpAddr, len: u8, max: usize) -> Vec<IpAddr> {
    match net {
        IpAddr::V4(v4) => {
            let host_bits = 32 - len.min(32) as u32;
            let base = u32::from(v4) & !((1u64 << host_bits) as u32).wrapping_sub(1);
            let count = 1u64 << host_bits;
            let (first, last) = if host_bits >= 2 { (1, count - 2) } else { (0, count - 1) };
            (first..=last)
                .take(max)
                .map(|i| IpAddr::V4((base.wrapping_add(i as u32)).into()))
                .collect()
        }
        IpAddr::V6(v6) => {
            let host_bits = 128 - len.min(128) as u32;
            let mask = if host_bits >= 128 { 0 } else { !0u128 << host_bits };
            let base = u128::from(v6) & mask;
            let count = if host_bits >= 64 { u64::MAX } else { 1u64 << host_bits };
            // Skip the subnet-router anycast address (all host bits zero).
            (1..count)
                .take(max)
                .map(|i| IpAddr::V6((base + i as u128).into()))
                .collect()
        }
    }
}

/// One worker's engine configuration, with its own secret from the OS. `worker` of
/// `workers`: a client's workers get disjoint parts of the ephemeral port range.
pub(crate) fn engine_config(
    a: &ServerArgs,
    plan: &Plan,
    worker: usize,
    workers: usize,
) -> Result<EngineConfig, ServeError> {
    let mut cfg = server_engine_config(a, plan.mtu)?;
    if let Some(side) = &a.client {
        cfg.local_ips = plan.sources.iter().map(|ip| IpAddress::from(*ip)).collect();
        let (lo, hi) = side.ports;
        let span = (hi as usize - lo as usize + 1) / workers.max(1);
        let first = lo as usize + worker * span;
        let last = if worker + 1 == workers {
            hi as usize
        } else {
            first + span - 1
        };
        cfg.ephemeral_ports = (first as u16, last as u16);
        cfg.next_hop = side.next_hop.unwrap_or_default();
        cfg.tcp.syn_retries = side.syn_retries;
    }
    Ok(cfg)
}

fn server_engine_config(a: &ServerArgs, mtu: u16) -> Result<EngineConfig, ServeError> {
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
        ..EngineConfig::default()
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
