//! What synack needs to know about a network interface, read from sysfs and `ip` at start-up
//! (never on the datapath): index, MAC, MTU, queue count, addresses of both families, attached XDP.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use std::process::Command;

#[derive(Clone, Debug)]
pub struct NetDev {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub rx_queues: u32,
    pub tx_queues: u32,
}

fn sys(name: &str, file: &str) -> PathBuf {
    PathBuf::from("/sys/class/net").join(name).join(file)
}

fn read_trim(p: PathBuf) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn count_queues(name: &str, prefix: &str) -> u32 {
    std::fs::read_dir(sys(name, "queues"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .count() as u32
        })
        .unwrap_or(0)
}

/// Parses "aa:bb:cc:dd:ee:ff".
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

impl NetDev {
    /// Looks an interface up by name: "interface eth9 not found" when it does not exist.
    pub fn lookup(name: &str) -> Result<NetDev, String> {
        if name.is_empty() || name.len() > 15 || name.contains('/') || name.contains("..") {
            return Err(format!("interface name {name:?} is not valid"));
        }
        let Some(index) = read_trim(sys(name, "ifindex")).and_then(|s| s.parse().ok()) else {
            return Err(format!(
                "interface {name} not found (see `ip link`; in a network namespace, run synack inside it with `ip netns exec`)"
            ));
        };
        let mac = read_trim(sys(name, "address"))
            .and_then(|s| parse_mac(&s))
            .unwrap_or([0; 6]);
        let mtu = read_trim(sys(name, "mtu"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(1500);
        Ok(NetDev {
            name: name.to_string(),
            index,
            mac,
            mtu,
            rx_queues: count_queues(name, "rx-").max(1),
            tx_queues: count_queues(name, "tx-").max(1),
        })
    }

    /// Queues an AF_XDP socket can bind: each needs an RX and a TX queue.
    pub fn queue_count(&self) -> u32 {
        self.rx_queues.min(self.tx_queues)
    }

    /// The addresses of both families configured on the interface (from `ip -o addr show`),
    /// with what `ip` says of an IPv6 address's state.
    pub fn addrs(&self) -> Vec<IfAddr> {
        let out = Command::new("ip")
            .args(["-o", "addr", "show", "dev", &self.name])
            .output();
        let Ok(out) = out else {
            return Vec::new();
        };
        parse_ip_addrs(&String::from_utf8_lossy(&out.stdout))
    }

    /// The name of an XDP program already attached, if `ip link` shows one.
    pub fn attached_xdp(&self) -> Option<String> {
        let out = Command::new("ip")
            .args(["-d", "link", "show", "dev", &self.name])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find(|l| l.trim_start().starts_with("prog/xdp"))
            .map(|l| l.trim().to_string())
            .or_else(|| text.contains(" xdp").then(|| "an XDP program".to_string()))
    }

    /// The driver name (`ethtool -i`), e.g. "veth", "ixgbe", "mlx5_core".
    pub fn driver(&self) -> Option<String> {
        if let Ok(p) = std::fs::read_link(sys(&self.name, "device/driver")) {
            return p.file_name().map(|s| s.to_string_lossy().to_string());
        }
        let out = Command::new("ethtool")
            .args(["-i", &self.name])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("driver: ").map(|s| s.trim().to_string()))
    }
}

/// An address configured on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: std::net::IpAddr,
    /// IPv6 duplicate address detection still running: the kernel neither uses the address
    /// nor answers neighbour solicitations for it.
    pub tentative: bool,
    /// IPv6 duplicate address detection found another host with the address.
    pub dadfailed: bool,
}

/// Parses the `inet ADDR/N` and `inet6 ADDR/N ... [tentative] [dadfailed]` lines of
/// `ip -o addr show` output.
pub fn parse_ip_addrs(text: &str) -> Vec<IfAddr> {
    let mut v = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if (*w == "inet" || *w == "inet6")
                && let Some(a) = words.get(i + 1).and_then(|a| a.split('/').next())
                && let Ok(addr) = a.parse()
            {
                let rest = &words[i + 2..];
                v.push(IfAddr {
                    addr,
                    tentative: rest.contains(&"tentative"),
                    dadfailed: rest.contains(&"dadfailed"),
                });
            }
        }
    }
    v
}

/// The next hop toward `dst` on `iface` (the route's gateway, or `dst` itself when it is on
/// the link), from `ip route get`.
fn next_hop(iface: &str, dst: IpAddr) -> Result<IpAddr, String> {
    let out = Command::new("ip")
        .args(["route", "get", &dst.to_string(), "oif", iface])
        .output()
        .map_err(|e| format!("cannot run `ip route get` (iproute2): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.trim().is_empty() {
        return Err(format!(
            "no route to {dst} through {iface} ({}): add one (`ip route add {dst} dev {iface}`) or \
             send from the interface that reaches it",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    if let Some(i) = words.iter().position(|w| *w == "via") {
        // `via inet6 fe80::1` (a gateway of the other family) or `via 10.0.0.1`.
        let gw = words
            .get(i + 1)
            .filter(|w| !w.starts_with("inet"))
            .or_else(|| words.get(i + 2));
        if let Some(ip) = gw.and_then(|w| w.parse().ok()) {
            return Ok(ip);
        }
    }
    Ok(dst)
}

/// The MAC of `hop` in the kernel's neighbour table on `iface`, if it is usable.
fn neighbour(iface: &str, hop: IpAddr) -> Option<[u8; 6]> {
    let out = Command::new("ip")
        .args(["neigh", "show", "to", &hop.to_string(), "dev", iface])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    let state = *words.last()?;
    if matches!(state, "FAILED" | "INCOMPLETE") {
        return None;
    }
    let i = words.iter().position(|w| *w == "lladdr")?;
    parse_mac(words.get(i + 1)?)
}

/// The MAC address frames to `dst` go to from `iface`: the route's gateway's or `dst`'s own,
/// from the kernel's neighbour table. When the table has no usable entry, the kernel is made to
/// resolve it (ARP or neighbour discovery: a UDP datagram to `dst`'s discard port) and the
/// table is read again until `timeout`. At start-up only.
pub fn resolve_next_hop(iface: &str, dst: IpAddr, timeout: Duration) -> Result<[u8; 6], String> {
    let hop = next_hop(iface, dst)?;
    if let Some(mac) = neighbour(iface, hop) {
        return Ok(mac);
    }
    let bind: SocketAddr = if dst.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let started = Instant::now();
    let mut last_probe = None::<Instant>;
    loop {
        if last_probe.is_none_or(|t| t.elapsed() >= Duration::from_millis(300)) {
            last_probe = Some(Instant::now());
            if let Ok(sock) = UdpSocket::bind(bind) {
                let _ = sock.send_to(b"", SocketAddr::new(dst, 9));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
        if let Some(mac) = neighbour(iface, hop) {
            return Ok(mac);
        }
        if started.elapsed() >= timeout {
            let what = if hop == dst {
                dst.to_string()
            } else {
                format!("the gateway {hop} toward {dst}")
            };
            return Err(format!(
                "{what} did not answer {} on {iface} within {} ms: is it up and on this link? \
                 (`ip neigh show dev {iface}`; or give its MAC)",
                if hop.is_ipv4() { "ARP" } else { "neighbour discovery" },
                timeout.as_millis()
            ));
        }
    }
}

/// Whether the kernel takes `ip` as one of this host's addresses (`ip route get` says
/// `local`): configured on an interface, or under a local (AnyIP) route.
pub fn is_local(ip: IpAddr) -> bool {
    Command::new("ip")
        .args(["route", "get", &ip.to_string()])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("local "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_and_dad_states_parse() {
        let text = "2: veth0    inet 198.18.0.1/16 scope global veth0\\       valid_lft forever preferred_lft forever
2: veth0    inet6 fd00:198:18::1/64 scope global nodad \\       valid_lft forever preferred_lft forever
2: veth0    inet6 fd00:198:18::3/64 scope global tentative \\       valid_lft forever preferred_lft forever
2: veth0    inet6 fd00:198:18::4/64 scope global dadfailed tentative \\       valid_lft forever preferred_lft forever
2: veth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever
";
        let a = parse_ip_addrs(text);
        assert_eq!(a.len(), 5);
        assert_eq!(a[0].addr.to_string(), "198.18.0.1");
        assert!(!a[0].tentative && !a[1].tentative && !a[1].dadfailed);
        assert_eq!(a[1].addr.to_string(), "fd00:198:18::1");
        assert!(a[2].tentative && !a[2].dadfailed);
        assert!(a[3].tentative && a[3].dadfailed);
        assert_eq!(a[4].addr.to_string(), "fe80::1");
    }

    #[test]
    fn macs_and_addresses_parse() {
        assert_eq!(
            parse_mac("0a:1b:2c:3d:4e:5f"),
            Some([0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f])
        );
        assert_eq!(parse_mac("0a:1b"), None);
        let out = "2: eth0    inet 198.18.0.1/24 brd 198.18.0.255 scope global eth0\\       valid_lft forever\n";
        let a = parse_ip_addrs(out);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].addr.to_string(), "198.18.0.1");
    }

    #[test]
    fn missing_interface_says_so() {
        let e = NetDev::lookup("eth9nosuch").unwrap_err();
        assert!(e.contains("interface eth9nosuch not found"), "{e}");
        assert!(NetDev::lookup("lo").is_ok());
    }
}
