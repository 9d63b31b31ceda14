//! SIGHUP reloads `--root` while serving (issue 9): the new content is read off the datapath
//! and swapped into the workers; requests under load see no error, every reload shows, and a
//! root that cannot be read leaves the old content served.
//!
//! Needs root, veth and wrk, as tests/veth.rs.

mod testbed;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testbed::{Bed, PORT, SRV_IP, Server, TempDir, ok};

/// The index page of version `v`: its length changes with `v`, so a head cached from an older
/// version would announce the wrong Content-Length.
fn page(v: u32) -> String {
    format!(
        "<h1>version {v}</h1>\n{}\n",
        "x".repeat((v as usize * 37) % 300)
    )
}

/// Replaces `root/index.html` in one step (write a sibling, rename over), as deploy tools do.
fn publish(root: &Path, v: u32) {
    let tmp = root.join(".index.html.tmp");
    std::fs::write(&tmp, page(v)).unwrap();
    std::fs::rename(&tmp, root.join("index.html")).unwrap();
}

fn hup(server: &Server) {
    let st = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Fetches `/` until it is `want` (bounded): the reload reaches the worker between two loop
/// iterations, just after the signal.
fn wait_for_page(bed: &Bed, want: &str) {
    let t0 = Instant::now();
    loop {
        let o = bed.curl(5, &[], "/");
        let body = ok(&o, "curl /");
        if body == want {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "still serving {body:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wrk_spawn(bed: &Bed, secs: u64, conns: u32) -> std::process::Child {
    let url = format!("http://{SRV_IP}:{PORT}/");
    let d = format!("{secs}s");
    let c = format!("-c{conns}");
    bed.client_spawn(
        secs + 30,
        &[
            "taskset",
            "-c",
            testbed::CLIENT_CORE,
            "wrk",
            "-t1",
            &c,
            "-d",
            &d,
            "--timeout",
            "5s",
            &url,
        ],
    )
}

#[test]
fn sighup_reloads_the_root_under_wrk_without_an_error() {
    let Some(env) = testbed::setup("rl1") else {
        return;
    };
    let bed = &env.bed;
    let root = TempDir::new("rl1root");
    publish(root.path(), 0);
    std::fs::write(root.join("a.txt"), b"0123456789").unwrap();
    let server = Server::start(bed, &["--root", root.as_str()]);
    wait_for_page(bed, &page(0));

    let wrk = wrk_spawn(bed, 10, 16);
    let t0 = Instant::now();
    for v in 1..=20 {
        publish(root.path(), v);
        hup(&server);
        wait_for_page(bed, &page(v));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the 20 reloads did not fit in wrk's 10 s ({:?}): the test proves less than it says",
        t0.elapsed()
    );
    let o = wrk.wait_with_output().expect("wait for wrk");
    let out = ok(&o, "wrk");
    assert!(
        !out.contains("Socket errors") && !out.contains("Non-2xx"),
        "wrk saw errors across the reloads:\n{out}"
    );
    let requests: u64 = out
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{out}"));
    assert!(requests > 1000, "wrk made only {requests} requests:\n{out}");

    // After the last reload: the new page, whole, with a length that matches it (a stale
    // cached head would make curl see a short or long body), on a fresh and on a kept-alive
    // connection (two URLs on one curl).
    let url = format!("http://{SRV_IP}:{PORT}/");
    let o = bed.curl(5, &["-o", "/dev/null", "-w", "%{size_download} "], "/");
    assert_eq!(ok(&o, "curl"), format!("{} ", page(20).len()));
    let o = bed.curl(5, &[&url], "/a.txt");
    assert_eq!(
        ok(&o, "curl / and /a.txt"),
        format!("{}0123456789", page(20))
    );

    let (st, stderr) = server.stop();
    assert!(st.success(), "{stderr}");
    assert_eq!(
        stderr.matches("SIGHUP: reloaded").count(),
        20,
        "one reload per HUP:\n{stderr}"
    );
}

#[test]
fn a_root_that_cannot_be_read_keeps_the_old_content() {
    let Some(env) = testbed::setup("rl2") else {
        return;
    };
    let bed = &env.bed;
    let parent = TempDir::new("rl2");
    let root = parent.join("site");
    std::fs::create_dir(&root).unwrap();
    publish(&root, 1);
    let server = Server::start(bed, &["--root", root.to_str().unwrap()]);
    wait_for_page(bed, &page(1));

    // The root is gone: the reload fails, says why, and the old page is still served.
    let away = parent.join("site.away");
    std::fs::rename(&root, &away).unwrap();
    hup(&server);
    let t0 = Instant::now();
    while !server.log().contains("cannot read --root") {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no error logged:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = bed.curl(5, &[], "/");
    assert_eq!(ok(&o, "curl / after a failed reload"), page(1));

    // Back, with a new page: the next HUP serves it.
    std::fs::rename(&away, &root).unwrap();
    publish(&root, 2);
    hup(&server);
    wait_for_page(bed, &page(2));

    let (st, stderr) = server.stop();
    assert!(st.success(), "{stderr}");
    assert!(
        stderr.contains("still serving the content loaded before"),
        "{stderr}"
    );
}
