//! Differential test: `synack serve --root --precompressed --cache-control` against nginx on the
//! same files. One pair of test hosts; synack serves a generated root on its port through XDP,
//! nginx (the kernel's stack, its own configuration in a temporary directory) serves the same
//! root on another port of the server namespace with `gzip_static on; gzip_vary on;
//! if_modified_since before; add_header Cache-Control ...` and a `types` block made from
//! synack's own table. Every request of one matrix (files, HEAD, directories, redirects with a
//! query, 403, 404, validators weak and strong, dates in the three HTTP formats, ranges good,
//! odd and bad, If-Range, Accept-Encoding with q-values) goes to both over raw TCP from the
//! client namespace. The status codes, the semantic header fields and the bodies must be equal
//! (a multipart body after its boundary is normalized; redirect and error pages are each
//! server's own text, so their bodies and lengths are not compared).
//!
//! Where RFC 9110 and nginx disagree, synack follows the RFC; those requests are marked in the
//! matrix with the answer synack must give instead of nginx's (nginx's is printed).
//!
//! Needs root, AF_XDP, veth, python3 and nginx (CI installs it). A missing nginx fails the
//! test under SYNACK_VETH_REQUIRED=1, as the other prerequisites do.
//!
//!     cargo build --release --bins
//!     cargo test --release --test http_vs_nginx -- --nocapture

mod testbed;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use testbed::{PORT, SRV_IP, Server, TempDir, ok, seeded_bytes};

/// nginx's port in the server namespace (synack has [`PORT`]).
const NGINX_PORT: u16 = 8081;

/// 2024-01-02 03:04:05 UTC: the files' modification time.
const T: u64 = 1_704_164_645;
const T_IMF: &str = "Tue, 02 Jan 2024 03:04:05 GMT";
const T_850: &str = "Tuesday, 02-Jan-24 03:04:05 GMT";
const T_ASC: &str = "Tue Jan  2 03:04:05 2024";
const BEFORE_IMF: &str = "Mon, 01 Jan 2024 00:00:00 GMT";
const BEFORE_850: &str = "Monday, 01-Jan-24 00:00:00 GMT";
const BEFORE_ASC: &str = "Mon Jan  1 00:00:00 2024";
const AFTER_IMF: &str = "Wed, 01 Jan 2025 00:00:00 GMT";

const CACHE_CONTROL: &str = "public, max-age=60";

/// The fields compared (lower case).
const SEMANTIC: [&str; 10] = [
    "content-type",
    "content-length",
    "content-range",
    "etag",
    "last-modified",
    "accept-ranges",
    "content-encoding",
    "vary",
    "location",
    "cache-control",
];

/// One request of the matrix.
struct Case {
    method: &'static str,
    target: String,
    fields: Vec<String>,
    /// Where synack follows RFC 9110 and nginx does not: the status and `Content-Encoding`
    /// synack must answer with.
    rfc: Option<(u16, Option<&'static str>)>,
}

fn get(target: &str, fields: &[&str]) -> Case {
    Case {
        method: "GET",
        target: target.into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        rfc: None,
    }
}

fn head(target: &str, fields: &[&str]) -> Case {
    Case {
        method: "HEAD",
        ..get(target, fields)
    }
}

fn rfc(mut c: Case, status: u16, encoding: Option<&'static str>) -> Case {
    c.rfc = Some((status, encoding));
    c
}

/// The ETag both servers give a file: nginx's form.
fn etag(len: usize, mtime: u64) -> String {
    format!("\"{mtime:x}-{len:x}\"")
}

fn write_file(root: &Path, name: &str, body: &[u8], mtime: u64) {
    let p = root.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    let f = std::fs::File::options().write(true).open(&p).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
        .unwrap();
}

/// The text of a file: lines, so that ranges cut somewhere visible.
fn text_body(lines: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..lines {
        let _ = writeln!(s, "line {i:04} of a text file served by both servers");
    }
    s.into_bytes()
}

/// A parsed response.
#[derive(Debug)]
struct Answer {
    status: u16,
    fields: HashMap<String, String>,
    body: Vec<u8>,
}

fn parse(raw: &[u8]) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let mut fields = HashMap::new();
    for l in lines {
        let (n, v) = l.split_once(':').expect("a field line");
        let old = fields.insert(n.trim().to_ascii_lowercase(), v.trim().to_string());
        assert!(old.is_none(), "field {n} twice in {head}");
    }
    Answer {
        status,
        fields,
        body: raw[end + 4..].to_vec(),
    }
}

/// A multipart answer with its boundary replaced by a fixed word (in the type and the body).
fn normalize_boundary(a: &mut Answer) {
    let Some(ct) = a.fields.get("content-type").cloned() else {
        return;
    };
    let Some(b) = ct.strip_prefix("multipart/byteranges; boundary=") else {
        return;
    };
    let word = "B".repeat(b.len());
    a.fields.insert(
        "content-type".into(),
        format!("multipart/byteranges; boundary={word}"),
    );
    // Byte by byte: the parts' data may be binary.
    let (from, to) = (b.as_bytes(), word.as_bytes());
    let mut out = Vec::with_capacity(a.body.len());
    let mut i = 0;
    while i < a.body.len() {
        if a.body[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(a.body[i]);
            i += 1;
        }
    }
    a.body = out;
}

/// Sends every request to both servers from the client namespace, each on a new connection
/// read to its end; returns (synack's, nginx's) raw answers.
fn exchange(bed: &testbed::Bed, dir: &TempDir, requests: &[Vec<u8>]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let reqs = dir.join("requests.hex");
    let outs = dir.join("answers.hex");
    let lines: Vec<String> = requests.iter().map(|r| hex(r)).collect();
    std::fs::write(&reqs, lines.join("\n")).unwrap();
    let script = r#"
import socket, sys, time
reqs = [bytes.fromhex(l) for l in open(sys.argv[1]).read().split("\n") if l]
def ask(port, req):
    deadline = time.time() + 10
    while True:
        try:
            s = socket.create_connection(("198.18.0.1", port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    s.sendall(req)
    out = b""
    while True:
        d = s.recv(1 << 16)
        if not d:
            break
        out += d
    s.close()
    return out
with open(sys.argv[2], "w") as f:
    for r in reqs:
        a = ask(int(sys.argv[3]), r)
        b = ask(int(sys.argv[4]), r)
        f.write(a.hex() + " " + b.hex() + "\n")
"#;
    let out = bed.client(
        300,
        &[
            "python3",
            "-c",
            script,
            reqs.to_str().unwrap(),
            outs.to_str().unwrap(),
            &PORT.to_string(),
            &NGINX_PORT.to_string(),
        ],
    );
    ok(&out, "the requests");
    std::fs::read_to_string(&outs)
        .unwrap()
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap_or((l, ""));
            (unhex(a), unhex(b))
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// nginx in the server namespace, one process (`master_process off`), killed in `Drop`.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nginx(bed: &testbed::Bed, dir: &TempDir, root: &Path, exts: &[&str]) -> Nginx {
    let mut types = String::new();
    for ext in exts {
        let t = synack::http::mime_type(format!("x.{ext}").as_bytes());
        let _ = writeln!(types, "    \"{t}\" {ext};");
    }
    let d = dir.as_str();
    let conf = format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  types {{
{types}  }}
  default_type application/octet-stream;
  server {{
    listen {SRV_IP}:{NGINX_PORT};
    root {root};
    absolute_redirect off;
    gzip_static on;
    gzip_vary on;
    if_modified_since before;
    add_header Cache-Control "{CACHE_CONTROL}";
  }}
}}
"#,
        root = root.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    // A configuration this nginx cannot run (no gzip_static module...) fails here, named.
    let check = bed.server_ns(30, &["nginx", "-t", "-q", "-c", path.to_str().unwrap()]);
    ok(&check, "nginx -t (the test's configuration)");
    let child = Command::new("ip")
        .args(["netns", "exec", &bed.srv_ns, "nginx", "-c"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    Nginx(child)
}

#[test]
fn static_files_answer_as_nginx_does() {
    let Some(env) = testbed::setup_needing("sf", 1, &["nginx", "python3"]) else {
        return;
    };
    let bed = &env.bed;
    let dir = TempDir::new("sf");
    let root_dir = TempDir::new("sfroot");
    let root = root_dir.path();

    let a = text_body(30);
    let big = seeded_bytes(9, 100_000);
    let b = text_body(20);
    let b_gz = seeded_bytes(10, 300);
    let b_br = seeded_bytes(11, 200);
    let c = text_body(10);
    let c_gz = seeded_bytes(12, 150);
    write_file(root, "a.txt", &a, T);
    write_file(root, "big.bin", &big, T);
    write_file(root, "v.mp4", &seeded_bytes(13, 3000), T);
    write_file(root, "s.mp3", &seeded_bytes(14, 500), T + 1);
    write_file(root, "style.css", b"body { color: red }\n", T + 2);
    write_file(root, "app.js", b"console.log(1)\n", T + 3);
    write_file(root, "data.json", b"{\"a\":1}\n", T + 4);
    write_file(root, "img.png", &seeded_bytes(15, 700), T + 5);
    write_file(root, "empty.txt", b"", T);
    write_file(root, "b.txt", &b, T);
    write_file(root, "b.txt.gz", &b_gz, T + 10);
    write_file(root, "b.txt.br", &b_br, T + 20);
    write_file(root, "c.txt", &c, T);
    write_file(root, "c.txt.gz", &c_gz, T + 30);
    write_file(root, "index.html", b"<h1>home</h1>\n", T);
    write_file(root, "sub/index.html", b"<h1>sub</h1>\n", T);
    write_file(root, "nodex/y.txt", b"y\n", T);
    let exts = [
        "txt", "bin", "mp4", "mp3", "css", "js", "json", "png", "html", "gz", "br",
    ];
    // The extensions where nginx's and synack's tables are made the same: synack's own.
    assert_eq!(synack::http::mime_type(b"v.mp4"), "video/mp4");
    assert_eq!(synack::http::mime_type(b"s.mp3"), "audio/mpeg");

    let a_tag = etag(a.len(), T);
    let b_gz_tag = etag(b_gz.len(), T + 10);
    let weak_a = format!("W/{a_tag}");
    let inm = |v: &str| format!("If-None-Match: {v}");
    let im = |v: &str| format!("If-Match: {v}");
    let ims = |v: &str| format!("If-Modified-Since: {v}");
    let ius = |v: &str| format!("If-Unmodified-Since: {v}");
    let range = |v: &str| format!("Range: {v}");
    let if_range = |v: &str| format!("If-Range: {v}");
    let ae = |v: &str| format!("Accept-Encoding: {v}");
    let g = |target: &str, fields: &[String]| Case {
        method: "GET",
        target: target.into(),
        fields: fields.to_vec(),
        rfc: None,
    };

    let mut cases = vec![
        // Files, types, HEAD, directories.
        get("/", &[]),
        get("/index.html", &[]),
        get("/a.txt", &[]),
        get("/big.bin", &[]),
        get("/v.mp4", &[]),
        get("/s.mp3", &[]),
        get("/style.css", &[]),
        get("/app.js", &[]),
        get("/data.json", &[]),
        get("/img.png", &[]),
        get("/empty.txt", &[]),
        get("/b.txt.gz", &[]),
        head("/a.txt", &[]),
        head("/big.bin", &[]),
        get("/sub", &[]),
        get("/sub?x=1&y=%41", &[]),
        get("/sub/", &[]),
        get("/sub/?q", &[]),
        get("/nodex/", &[]),
        get("/nodex", &[]),
        get("/missing", &[]),
        get("/a.txt/", &[]),
        get("/sub/missing.html", &[]),
        // Validators: strong and weak tags, lists, *, dates in three formats.
        g("/a.txt", &[inm(&a_tag)]),
        g("/a.txt", &[inm(&weak_a)]),
        g("/a.txt", &[inm("\"nope\"")]),
        g("/a.txt", &[inm(&format!("\"x\", {a_tag}"))]),
        g("/a.txt", &[inm("*")]),
        Case {
            method: "HEAD",
            ..g("/a.txt", &[inm(&a_tag)])
        },
        g("/a.txt", &[im(&a_tag)]),
        g("/a.txt", &[im("\"nope\"")]),
        g("/a.txt", &[im(&weak_a)]),
        g("/a.txt", &[im("*")]),
        g("/a.txt", &[ims(T_IMF)]),
        g("/a.txt", &[ims(T_850)]),
        g("/a.txt", &[ims(T_ASC)]),
        g("/a.txt", &[ims(BEFORE_IMF)]),
        g("/a.txt", &[ims(BEFORE_850)]),
        g("/a.txt", &[ims(BEFORE_ASC)]),
        g("/a.txt", &[ims(AFTER_IMF)]),
        g("/a.txt", &[ims("not a date")]),
        g("/a.txt", &[ius(T_IMF)]),
        g("/a.txt", &[ius(T_850)]),
        g("/a.txt", &[ius(T_ASC)]),
        g("/a.txt", &[ius(BEFORE_IMF)]),
        g("/a.txt", &[ius(BEFORE_850)]),
        g("/a.txt", &[ius(BEFORE_ASC)]),
        g("/a.txt", &[ius(AFTER_IMF)]),
        g("/a.txt", &[inm("\"nope\""), ims(AFTER_IMF)]),
        g("/a.txt", &[im("\"nope\""), ius(AFTER_IMF)]),
        // Ranges: single, open, suffix, clamped, several, overlapping, odd and bad.
        g("/a.txt", &[range("bytes=0-99")]),
        g("/a.txt", &[range("bytes=100-")]),
        g("/a.txt", &[range("bytes=-50")]),
        g("/a.txt", &[range("bytes=0-0")]),
        g("/a.txt", &[range("bytes=-5000")]),
        g("/a.txt", &[range("bytes=1400-99999")]),
        g("/a.txt", &[range("bytes=0-9,20-29,-5")]),
        g("/a.txt", &[range("bytes=0-9, 5-14")]),
        g("/a.txt", &[range("bytes=10-19,0-4")]),
        g("/a.txt", &[range("bytes=0-1000,100-1400")]),
        g("/a.txt", &[range("bytes=5000-,0-3")]),
        g("/a.txt", &[range("bytes=abc")]),
        g("/a.txt", &[range("bytes=5-2")]),
        g("/a.txt", &[range("bytes=5000-")]),
        g("/a.txt", &[range("bytes=-0")]),
        g("/a.txt", &[range("bytes=1-2;x")]),
        g("/a.txt", &[range("items=0-1")]),
        g("/a.txt", &[range("bytes=")]),
        g("/a.txt", &[range("BYTES= 3 - 7")]),
        g("/empty.txt", &[range("bytes=-5")]),
        g("/empty.txt", &[range("bytes=0-")]),
        g("/big.bin", &[range("bytes=1000-60999")]),
        g("/big.bin", &[range("bytes=0-30000,40000-99999")]),
        g("/big.bin", &[range("bytes=-1,0-0,50000-50099")]),
        // If-Range: tag and date, hit and miss; with conditionals.
        g("/a.txt", &[range("bytes=0-9"), if_range(&a_tag)]),
        g("/a.txt", &[range("bytes=0-9"), if_range("\"nope\"")]),
        g("/a.txt", &[range("bytes=0-9"), if_range(&weak_a)]),
        g("/a.txt", &[range("bytes=0-9"), if_range(T_IMF)]),
        g("/a.txt", &[range("bytes=0-9"), if_range(T_850)]),
        g("/a.txt", &[range("bytes=0-9"), if_range(BEFORE_IMF)]),
        g("/a.txt", &[range("bytes=0-9,-3"), if_range(&a_tag)]),
        g("/a.txt", &[range("bytes=0-9"), inm(&a_tag)]),
        g("/a.txt", &[range("bytes=0-9"), im("\"nope\"")]),
        g("/a.txt", &[range("bytes=5000-"), ims(AFTER_IMF)]),
        // Precompressed siblings: q-values, q=0, their own validators, no ranges on them.
        g("/b.txt", &[]),
        g("/b.txt", &[ae("gzip")]),
        g("/b.txt", &[ae("gzip, deflate")]),
        g("/b.txt", &[ae("deflate, gzip;q=0.5")]),
        g("/b.txt", &[ae("gzip;q=0")]),
        g("/b.txt", &[ae("deflate")]),
        g("/b.txt", &[ae("gzip"), inm(&b_gz_tag)]),
        g("/b.txt", &[ae("gzip"), ims(AFTER_IMF)]),
        g("/b.txt", &[ae("gzip"), range("bytes=0-9")]),
        g("/b.txt", &[ae("gzip;q=0"), range("bytes=0-9")]),
        g("/b.txt", &[range("bytes=0-9,20-29")]),
        g("/b.txt", &[range("bytes=9999-")]),
        g("/b.txt", &[im("\"nope\"")]),
        Case {
            method: "HEAD",
            ..g("/b.txt", &[ae("gzip")])
        },
        g("/c.txt", &[ae("gzip")]),
        g("/c.txt", &[ae("identity")]),
        // RFC 9110 where nginx differs.
        // 13.2.2: If-Modified-Since is not evaluated beside If-None-Match (nginx: both).
        rfc(g("/a.txt", &[inm(&a_tag), ims(BEFORE_IMF)]), 304, None),
        // 13.2.2: If-Unmodified-Since is not evaluated beside If-Match (nginx: both).
        rfc(g("/a.txt", &[im(&a_tag), ius(BEFORE_IMF)]), 200, None),
        // 13.1.4: an invalid date is ignored (nginx: 412).
        rfc(g("/a.txt", &[ius("not a date")]), 200, None),
        // 14.2: Range is defined for GET only (nginx: 206 to HEAD).
        rfc(head("/a.txt", &["Range: bytes=0-9"]), 200, None),
        // 12.5.3: `*` takes the codings not listed (nginx serves identity), br is served
        // (nginx has no brotli here), and br wins a tie.
        rfc(g("/c.txt", &[ae("*")]), 200, Some("gzip")),
        rfc(g("/b.txt", &[ae("br")]), 200, Some("br")),
        rfc(g("/b.txt", &[ae("gzip, br")]), 200, Some("br")),
        rfc(g("/b.txt", &[ae("gzip, br;q=0.5")]), 200, Some("gzip")),
    ];
    // Every request closes its connection: each answer is read to the end.
    let requests: Vec<Vec<u8>> = cases
        .iter_mut()
        .map(|c| {
            let mut r = format!("{} {} HTTP/1.1\r\nHost: test\r\n", c.method, c.target);
            for f in &c.fields {
                r.push_str(f);
                r.push_str("\r\n");
            }
            r.push_str("Connection: close\r\n\r\n");
            r.into_bytes()
        })
        .collect();

    let server = Server::start(
        bed,
        &[
            "--root",
            root_dir.as_str(),
            "--precompressed",
            "--cache-control",
            CACHE_CONTROL,
        ],
    );
    let _nginx = start_nginx(bed, &dir, root, &exts);
    let answers = exchange(bed, &dir, &requests);
    assert_eq!(answers.len(), cases.len(), "an answer per request");

    let mut failures = Vec::new();
    let mut compared = 0;
    let mut seen = std::collections::BTreeSet::new();
    for (case, (s_raw, n_raw)) in cases.iter().zip(&answers) {
        let what = format!("{} {} {:?}", case.method, case.target, case.fields);
        let (mut s, mut n) = (parse(s_raw), parse(n_raw));
        if let Some((status, encoding)) = case.rfc {
            let got = (
                s.status,
                s.fields.get("content-encoding").map(String::as_str),
            );
            println!(
                "RFC over nginx: {what}: synack {got:?}, nginx {} {:?}",
                n.status,
                n.fields.get("content-encoding")
            );
            if got != (status, encoding) {
                failures.push(format!(
                    "{what}: synack {got:?}, RFC 9110: {status} {encoding:?}"
                ));
            }
            continue;
        }
        compared += 1;
        seen.insert(n.status);
        if n.fields.contains_key("content-encoding") {
            seen.insert(1);
        }
        if n.fields
            .get("content-type")
            .is_some_and(|t| t.starts_with("multipart/"))
        {
            seen.insert(2);
        }
        normalize_boundary(&mut s);
        normalize_boundary(&mut n);
        let mut diffs = Vec::new();
        if s.status != n.status {
            diffs.push(format!("status {} vs nginx {}", s.status, n.status));
        }
        // Redirect and error pages are each server's own text.
        let error = n.status >= 300;
        for name in SEMANTIC {
            if error && name == "content-length" {
                continue;
            }
            let (sv, nv) = (s.fields.get(name), n.fields.get(name));
            if sv != nv {
                diffs.push(format!("{name}: {sv:?} vs nginx {nv:?}"));
            }
        }
        if !error && s.body != n.body {
            diffs.push(format!(
                "body ({} bytes) differs from nginx's ({} bytes)",
                s.body.len(),
                n.body.len()
            ));
        }
        if !diffs.is_empty() {
            failures.push(format!("{what}:\n    {}", diffs.join("\n    ")));
        }
    }
    drop(server);
    println!(
        "{compared} requests compared with nginx, {} checked against RFC 9110, {} differ",
        cases.len() - compared,
        failures.len()
    );
    // The matrix reached every kind of answer (1: a compressed sibling, 2: multipart): two
    // servers agreeing on 200s alone would prove little.
    for want in [1, 2, 200, 206, 301, 304, 403, 404, 412, 416] {
        assert!(
            seen.contains(&want),
            "no {want} among nginx's answers: {seen:?}"
        );
    }
    assert!(
        failures.is_empty(),
        "synack and nginx differ:\n{}",
        failures.join("\n")
    );
}
