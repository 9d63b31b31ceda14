//! `hello_json`: a dynamic HTTP handler on synack. For any path it answers
//! `{"worker":W,"path":"/the/path","count":N}` (Content-Type `application/json`): the worker
//! (core) that served the request, the request's normalized path, and how many requests that
//! worker has answered so far. Each worker has its own handler and count: no locks, no shared
//! state.
//!
//! ```text
//! target/release/examples/hello_json --iface veth0 --ip 198.18.0.1 --port 8080 [--cores 1]
//! curl http://198.18.0.1:8080/hello
//! ```
//! SIGINT or SIGTERM stops it gracefully.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};
use clap::Parser;
use synack::http::{Handler, HttpApp, HttpConfig, Request, Response, StatusCode};
use synack::{Instant, Server};

/// A JSON "hello" from the worker that serves the request.
#[derive(Parser, Debug)]
#[command(name = "hello_json")]
struct Args {
    /// The same server flags as `synack serve` (--iface, --ip, --port, --cores, ...).
    #[command(flatten)]
    server: synack::cli::ServerArgs,
}

/// One worker's handler.
struct HelloJson {
    worker: usize,
    count: u64,
    /// Bodies are written here and split off: one allocation per 64 KiB of bodies, not one
    /// per response.
    out: BytesMut,
}

impl HelloJson {
    fn new(worker: usize) -> HelloJson {
        HelloJson {
            worker,
            count: 0,
            out: BytesMut::new(),
        }
    }
}

impl Handler for HelloJson {
    fn handle(&mut self, req: &Request<'_>, _now: Instant) -> Response {
        self.count += 1;
        let path = req.path();
        // Worst case: every path byte escaped as \u00XX.
        let need = 64 + 6 * path.len();
        if self.out.capacity() - self.out.len() < need {
            self.out.reserve(need.max(64 * 1024));
        }
        // Numbers are written straight into the buffer (fmt::Write on BytesMut): no String.
        let _ = write!(self.out, "{{\"worker\":{}", self.worker);
        self.out.put_slice(b",\"path\":\"");
        json_escape(&String::from_utf8_lossy(path), &mut self.out);
        let _ = writeln!(self.out, "\",\"count\":{}}}", self.count);
        Response::new(StatusCode::OK)
            .content_type("application/json")
            .body(self.out.split().freeze())
    }

    /// Request bodies play no part in the answer.
    fn wants_body(&mut self, _req: &Request<'_>) -> bool {
        false
    }
}

/// Writes `s` as the inside of a JSON string (RFC 8259 7).
fn json_escape(s: &str, out: &mut BytesMut) {
    for c in s.chars() {
        match c {
            '"' => out.put_slice(b"\\\""),
            '\\' => out.put_slice(b"\\\\"),
            c if (c as u32) < 0x20 => out.put_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut b = [0u8; 4];
                out.put_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

fn main() {
    let args = Args::parse();
    // The library logs through `log` (warnings, the ready line): timestamped on stderr.
    synack::logging::init();
    // Signals are blocked before any thread starts, so only the signal thread takes them.
    synack::signals::block().expect("block signals");
    let signals = synack::signals::listen().expect("signal thread");
    let server = Server::from_args(args.server);
    let handle = server.handle();
    std::thread::spawn(move || {
        while let Ok(sig) = signals.recv() {
            if let synack::signals::Signal::Stop = sig {
                handle.stop();
                break;
            }
        }
    });
    match server.run(|w| HttpApp::new(HttpConfig::default(), HelloJson::new(w.index()))) {
        Ok(stats) => eprint!("{}", stats.summary()),
        Err(e) => {
            eprintln!("hello_json: {e}");
            std::process::exit(1);
        }
    }
}
