//! Path MTU over real paths, with the Linux kernel as client and router:
//!
//! - a router namespace between the client and the server whose link toward the client
//!   carries 1280 bytes (its end of that veth has MTU 1280, the client's end 1500, so the
//!   client offers MSS 1460 and the server's first segments do not fit). The router answers
//!   them as a real one does, with ICMP "fragmentation needed" or ICMPv6 "packet too big";
//!   synack's XDP program steers those to the socket and the connection lowers its MSS
//!   (RFC 1191, RFC 8201). 1 MiB downloads over both families must complete byte-exact, and
//!   the server must say it took the messages;
//! - an MTU mismatch on one link: the server's interface has MTU 1280, the client's 1500.
//!   synack announces the MSS of its own interface (1240 over IPv4, 1220 over IPv6), so a
//!   1 MiB upload from the client completes. With a fixed MSS of 1460 it stalls: the server's
//!   veth drops every full-sized segment.
//!
//! Needs root, AF_XDP, veth, curl, sha256sum (see tests/testbed). Run one at a time:
//!
//!     cargo test --release --test pmtu -- --nocapture --test-threads=1

mod testbed;

use std::process::Command;

use testbed::{Bed, PORT, SRV_IP, Server, TempDir, ok, sha256_file, text, write_seeded};

/// The bed's IPv6 addresses (scripts/testbed.sh): the client end becomes the router.
const SRV_IP6: &str = testbed::SRV_IP6;
const ROUTER_IP6: &str = testbed::CLI_IP6;
/// The client's link: behind the router.
const CLIENT_NET: &str = "203.0.113.0/24";
const CLIENT_IP: &str = "203.0.113.2";
const ROUTER_CLIENT_SIDE: &str = "203.0.113.1";
const CLIENT_NET6: &str = "fd00:203::/64";
const CLIENT_IP6: &str = "fd00:203::2";
const ROUTER_CLIENT_SIDE6: &str = "fd00:203::1";

fn run(args: &[&str]) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    ok(&o, &args.join(" "))
}

fn ns_sysctl(ns: &str, settings: &[&str]) {
    let mut args = vec!["ip", "netns", "exec", ns, "sysctl", "-qw"];
    args.extend_from_slice(settings);
    run(&args);
}

/// A client host behind the bed's client namespace, which becomes a router. Removed in `Drop`.
struct RoutedClient {
    ns: String,
}

impl RoutedClient {
    /// The bed's client end forwards between the server and a new client namespace; the
    /// router's end of the new link has MTU `router_mtu`, the client's 1500.
    fn behind(bed: &Bed, router_mtu: u32) -> RoutedClient {
        let ns = format!("{}-c2", bed.prefix);
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        run(&["ip", "netns", "add", &ns]);
        let me = RoutedClient { ns };
        let (r_if, c_if) = (format!("{}r1", bed.prefix), format!("{}c1", bed.prefix));
        run(&[
            "ip",
            "-n",
            &bed.cli_ns,
            "link",
            "add",
            &r_if,
            "type",
            "veth",
            "peer",
            "name",
            &c_if,
            "netns",
            &me.ns,
        ]);
        ns_sysctl(
            &bed.cli_ns,
            &[
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
                // A router that answers every packet it cannot forward: the test must not
                // depend on ICMP rate limits.
                "net.ipv4.icmp_ratelimit=0",
                "net.ipv6.icmp.ratelimit=0",
            ],
        );
        ns_sysctl(
            &me.ns,
            &[
                "net.ipv6.conf.all.disable_ipv6=0",
                "net.ipv6.conf.default.disable_ipv6=0",
            ],
        );
        run(&["ip", "-n", &me.ns, "link", "set", "lo", "up"]);
        for (ns, ifc) in [(&bed.cli_ns, &r_if), (&me.ns, &c_if)] {
            // Offloads off, as on the bed: segments are what they say on the wire.
            let _ = Command::new("ip")
                .args([
                    "netns", "exec", ns, "ethtool", "-K", ifc, "rx", "off", "tx", "off",
                ])
                .args(["tso", "off", "gso", "off", "gro", "off"])
                .output();
        }
        let mtu = router_mtu.to_string();
        run(&["ip", "-n", &bed.cli_ns, "link", "set", &r_if, "mtu", &mtu]);
        run(&[
            "ip",
            "-n",
            &bed.cli_ns,
            "addr",
            "add",
            &format!("{ROUTER_CLIENT_SIDE}/24"),
            "dev",
            &r_if,
        ]);
        run(&[
            "ip",
            "-n",
            &bed.cli_ns,
            "addr",
            "add",
            &format!("{ROUTER_CLIENT_SIDE6}/64"),
            "dev",
            &r_if,
            "nodad",
        ]);
        run(&[
            "ip",
            "-n",
            &me.ns,
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            &c_if,
        ]);
        run(&[
            "ip",
            "-n",
            &me.ns,
            "addr",
            "add",
            &format!("{CLIENT_IP6}/64"),
            "dev",
            &c_if,
            "nodad",
        ]);
        run(&["ip", "-n", &bed.cli_ns, "link", "set", &r_if, "up"]);
        run(&["ip", "-n", &me.ns, "link", "set", &c_if, "up"]);
        run(&[
            "ip",
            "-n",
            &me.ns,
            "route",
            "add",
            "default",
            "via",
            ROUTER_CLIENT_SIDE,
        ]);
        run(&[
            "ip",
            "-n",
            &me.ns,
            "-6",
            "route",
            "add",
            "default",
            "via",
            ROUTER_CLIENT_SIDE6,
        ]);
        run(&[
            "ip",
            "-n",
            &bed.srv_ns,
            "route",
            "add",
            CLIENT_NET,
            "via",
            testbed::CLI_IP,
        ]);
        run(&[
            "ip",
            "-n",
            &bed.srv_ns,
            "-6",
            "route",
            "add",
            CLIENT_NET6,
            "via",
            ROUTER_IP6,
        ]);
        me
    }

    /// curl in the client namespace: (HTTP status, sha256 of what it wrote to `out`).
    fn download(&self, url: &str, out: &std::path::Path) -> (String, String) {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.ns, "timeout", "-k", "5", "40"])
            .args(["curl", "-sS", "-m", "30", "-o"])
            .arg(out)
            .args(["-w", "%{http_code}", url])
            .output()
            .expect("run curl");
        let code = ok(&o, &format!("curl {url}"));
        (code, sha256_file(out))
    }
}

impl Drop for RoutedClient {
    fn drop(&mut self) {
        // The router's end of the link goes with the namespace's veth peer.
        let o = Command::new("ip").args(["netns", "del", &self.ns]).output();
        if let Ok(o) = o
            && !o.status.success()
        {
            eprintln!("warning: ip netns del {}: {}", self.ns, text(&o));
        }
    }
}

/// From the final statistics: (lowered, ignored) summed over the worker lines.
fn pmtu_counts(log: &str) -> (u64, u64) {
    let mut sum = (0, 0);
    for l in log.lines() {
        if let Some(rest) = l.split("path mtu lowered ").nth(1)
            && let Some((a, b)) = rest.split(' ').next().and_then(|p| p.split_once('/'))
        {
            sum.0 += a.parse::<u64>().unwrap_or(0);
            sum.1 += b.parse::<u64>().unwrap_or(0);
        }
    }
    sum
}

#[test]
fn downloads_cross_a_1280_byte_link_over_both_families() {
    let Some(env) = testbed::setup("pm") else {
        return;
    };
    let bed = &env.bed;
    let client = RoutedClient::behind(bed, 1280);
    let root = TempDir::new("pmtu-root");
    let outs = TempDir::new("pmtu-out");
    let digest = sha256_file(&write_seeded(&root, "big.bin", 1 << 20, 1280));
    let server = Server::start(bed, &["--root", root.as_str()]);
    for (i, host) in [SRV_IP.to_string(), format!("[{SRV_IP6}]")]
        .iter()
        .enumerate()
    {
        let out = outs.join(&format!("got{i}"));
        let url = format!("http://{host}:{PORT}/big.bin");
        let (code, got) = client.download(&url, &out);
        assert_eq!(code, "200", "{url}");
        assert_eq!(got, digest, "{url}: 1 MiB byte-exact");
    }
    let (st, log) = server.stop();
    assert!(st.success(), "synack exit: {st:?}\n{log}");
    let (lowered, _ignored) = pmtu_counts(&log);
    assert_eq!(
        lowered, 2,
        "each connection took the router's message once:\n{log}"
    );
    assert!(
        log.contains("rto expirations 0"),
        "the messages, not timeouts, repaired the losses:\n{log}"
    );
    drop(client);
}

#[test]
fn an_upload_completes_when_the_server_link_has_the_smaller_mtu() {
    let Some(env) = testbed::setup("pmu") else {
        return;
    };
    let bed = &env.bed;
    // The server's end carries 1280 bytes, the client's 1500: only the MSS synack announces
    // keeps the client's segments small enough.
    run(&[
        "ip",
        "-n",
        &bed.srv_ns,
        "link",
        "set",
        &bed.srv_if,
        "mtu",
        "1280",
    ]);
    let files = TempDir::new("pmtu-up");
    let body = write_seeded(&files, "up.bin", 1 << 20, 1200);
    let root = TempDir::new("pmtu-root2");
    std::fs::write(root.join("index.html"), "up\n").unwrap();
    let server = Server::start(bed, &["--root", root.as_str(), "--max-body", "2097152"]);
    for host in [SRV_IP.to_string(), format!("[{SRV_IP6}]")] {
        let url = format!("http://{host}:{PORT}/");
        let data = format!("@{}", body.display());
        let o = bed.client(
            40,
            &[
                "curl",
                "-sS",
                "-m",
                "30",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{size_upload}",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &data,
                &url,
            ],
        );
        let out = ok(&o, &format!("upload to {url}"));
        let (code, sent) = out.split_once(' ').expect("code and size");
        assert!(
            code.starts_with('2') || code.starts_with('4'),
            "{url}: an answer after the whole body, got {out}"
        );
        assert_eq!(
            sent,
            (1u64 << 20).to_string(),
            "{url}: all of the body went"
        );
    }
    let (st, log) = server.stop();
    assert!(st.success(), "synack exit: {st:?}\n{log}");
    assert!(
        log.contains("(MTU 1280,"),
        "the MTU comes from the interface:\n{log}"
    );
}
