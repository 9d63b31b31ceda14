//! What an operator runs into at start and while synack runs: a second synack on the same
//! interface names the running one (pid file, /proc) with advice that works; `--stats-out` and
//! `--pcap` are checked before anything is attached; the capture is readable while synack runs;
//! `--config` on a real server.
//!
//! Needs root, AF_XDP, veth, curl and tcpdump (see tests/testbed).
//!
//!     cargo build --release --bins && cargo test --release --test ops -- --nocapture

mod testbed;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use testbed::{Bed, PORT, SRV_IP, Server, TempDir, ok, synack_bin, text};

fn pid_file(bed: &Bed) -> PathBuf {
    PathBuf::from(format!("/run/synack/{}.pid", bed.srv_if))
}

/// `synack serve` on the test bed's interface, run to its end (it is expected to refuse).
fn serve_to_end(bed: &Bed, args: &[&str]) -> std::process::Output {
    let port = PORT.to_string();
    let mut argv = vec![
        synack_bin(),
        "serve",
        "--iface",
        &bed.srv_if,
        "--ip",
        SRV_IP,
        "--port",
        &port,
        "--cores",
        testbed::SERVER_CORE,
        "--quiet",
    ];
    argv.extend_from_slice(args);
    bed.server_ns(30, &argv)
}

#[test]
fn a_second_synack_names_the_first() {
    let Some(env) = testbed::setup_needing("op", 1, &["curl"]) else {
        return;
    };
    let bed = &env.bed;
    let first = Server::start(bed, &["--body", "first"]);
    let pid = first.pid();
    assert_eq!(
        std::fs::read_to_string(pid_file(bed)).unwrap().trim(),
        pid.to_string(),
        "the pid file names the server"
    );

    let second = serve_to_end(bed, &["--body", "second"]);
    let out = text(&second);
    assert_eq!(second.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("served by synack (PID {pid};"))
            && out.contains(&format!("`kill {pid}`")),
        "the refusal names the running synack:\n{out}"
    );
    assert!(out.contains("another interface"), "{out}");
    // `synack check` says the same.
    let check = bed.server_ns(30, &[synack_bin(), "check", "--iface", &bed.srv_if]);
    assert!(
        text(&check).contains(&format!("(PID {pid};")),
        "{}",
        text(&check)
    );
    // Without the pid file, /proc still finds it (the process holding the program).
    std::fs::remove_file(pid_file(bed)).unwrap();
    let again = text(&serve_to_end(bed, &["--body", "second"]));
    assert!(again.contains(&format!("(PID {pid};")), "{again}");
    assert!(again.contains("holds XDP program"), "{again}");
    // The first still serves.
    assert_eq!(ok(&bed.curl(10, &[], "/"), "curl"), "first");

    // The advice works: stop it, and the second starts.
    let (st, log) = first.stop();
    assert!(st.success(), "{log}");
    let second = Server::start(bed, &["--body", "second"]);
    assert_eq!(ok(&bed.curl(10, &[], "/"), "curl"), "second");
    let pid2 = second.pid();
    assert_eq!(
        std::fs::read_to_string(pid_file(bed)).unwrap().trim(),
        pid2.to_string()
    );
    let (st, log) = second.stop();
    assert!(st.success(), "{log}");
    assert!(!pid_file(bed).exists(), "the pid file is removed at exit");
}

#[test]
fn outputs_are_checked_before_anything_is_attached() {
    let Some(env) = testbed::setup_needing("op", 1, &["curl"]) else {
        return;
    };
    let bed = &env.bed;
    let dir = TempDir::new("op");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let missing = dir.join("missing");
    let missing_pcap = dir.join("missing/c.pcap");
    let cases: [(&str, &str, &str); 3] = [
        (
            "--stats-out",
            missing.to_str().unwrap(),
            "no such directory",
        ),
        ("--stats-out", file.to_str().unwrap(), "not a directory"),
        ("--pcap", missing_pcap.to_str().unwrap(), "does not exist"),
    ];
    for (flag, value, says) in cases {
        let o = serve_to_end(bed, &["--body", "x", flag, value]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{flag} {value}: {out}");
        assert!(
            out.contains(flag) && out.contains(says),
            "{flag} {value}: {out}"
        );
        assert!(!out.contains("serving"), "{out}");
        assert!(
            !bed.srv_link_details().contains("prog/xdp"),
            "{flag}: something was attached"
        );
    }
}

/// Packets in the capture file while the server runs: `tcpdump -r` sees them.
#[test]
fn pcap_is_readable_while_running() {
    let Some(env) = testbed::setup_needing("op", 1, &["curl", "tcpdump"]) else {
        return;
    };
    let bed = &env.bed;
    let dir = TempDir::new("op");
    let pcap = dir.join("live.pcap");
    let server = Server::start(
        bed,
        &["--body", "captured", "--pcap", pcap.to_str().unwrap()],
    );
    for _ in 0..3 {
        assert_eq!(ok(&bed.curl(10, &[], "/"), "curl"), "captured");
    }
    // The writer flushes when its queue runs empty, at the latest each second.
    let t0 = Instant::now();
    let lines = loop {
        let o = std::process::Command::new("tcpdump")
            .args(["-nn", "-r", pcap.to_str().unwrap()])
            .output()
            .expect("tcpdump");
        let n = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains(&format!("{SRV_IP}.{PORT}")))
            .count();
        if n >= 10 || t0.elapsed() > Duration::from_secs(3) {
            break (n, text(&o));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(lines.0 >= 10, "tcpdump -r while running:\n{}", lines.1);
    // Still running: this was read from a live capture.
    assert_eq!(ok(&bed.curl(10, &[], "/"), "curl"), "captured");
    let (st, log) = server.stop();
    assert!(st.success(), "{log}");
}

/// `--config`: the file serves, and a flag on the command line wins over it.
#[test]
fn config_file_serves_and_flags_win() {
    let Some(env) = testbed::setup_needing("op", 1, &["curl"]) else {
        return;
    };
    let bed = &env.bed;
    let dir = TempDir::new("op");
    let config = dir.join("synack.toml");
    // Server::start gives --iface/--ip/--port/--cores/--quiet on the command line; the file
    // gives the rest, and a different port that the command line's must win over.
    std::fs::write(
        &config,
        "port = [9999]\nbody = \"from the file\"\nkeepalive-timeout = 1\n",
    )
    .unwrap();
    let server = Server::start(bed, &["--config", config.to_str().unwrap()]);
    assert_eq!(ok(&bed.curl(10, &[], "/"), "curl"), "from the file");
    drop(server);
    let server = Server::start(
        bed,
        &[
            "--config",
            config.to_str().unwrap(),
            "--body",
            "from the flag",
        ],
    );
    assert_eq!(ok(&bed.curl(10, &[], "/"), "curl"), "from the flag");
    drop(server);
    // A bad key stops it before anything starts, naming the key and the file.
    std::fs::write(&config, "bodyy = \"x\"\n").unwrap();
    let o = serve_to_end(bed, &["--config", config.to_str().unwrap()]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("unknown key `bodyy`") && out.contains(config.to_str().unwrap()),
        "{out}"
    );
}
