//! `echo`: a TCP echo service on synack's bypass path (RFC 862 without UDP).
//!
//! ```text
//! target/release/examples/echo --iface IF --ip ADDR --port 7 [--cores LIST] [any synack serve
//! server flag: --queues, --max-conns, --send-buffer, ...]
//! ```
//!
//! Every byte received is sent back. Flow control runs both ways: the echo takes from the
//! receive buffer only what the send queue accepts (`AppIo::send` says how much), so a client
//! that sends without reading fills its connection's send limit, then its receive window,
//! and then waits: the server never buffers more than those two bounds per connection.

use clap::Parser;
use synack::cli::ServerArgs;
use synack::{App, AppIo, AppMetric, CloseReason, ConnInfo, Instant, Server};

#[derive(Parser)]
#[command(about = "TCP echo over synack's kernel bypass")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

/// One worker's echo service.
#[derive(Default)]
struct Echo {
    /// Bytes being copied from the receive buffer to the send queue.
    scratch: Vec<u8>,
    echoed: u64,
    connections: u64,
}

impl Echo {
    /// Moves what fits from the receive buffer to the send queue; closes once the peer has
    /// closed and everything it sent is on its way back.
    fn pump(&mut self, io: &mut AppIo<'_>) {
        let room = io.send_room();
        let n = io.data().len().min(room);
        // A sliver of room is not worth a call: consuming a little at a time moves the rest
        // of the receive buffer each time. Wait for `on_writable` (half the queue drained).
        let limit = room + io.send_queued();
        if n < io.data().len() && room < limit / 4 {
            io.writable_below(io.send_queued() / 2);
            return;
        }
        if n > 0 {
            self.scratch.clear();
            self.scratch.extend_from_slice(&io.data()[..n]);
            let took = io.send(&self.scratch);
            io.consume(took);
            self.echoed += took as u64;
        }
        if io.data().is_empty() && io.peer_closed() {
            io.close();
        } else if !io.data().is_empty() {
            // What is left waits for room; ask to be called when half the queue has drained.
            io.writable_below(io.send_queued() / 2);
        }
    }
}

impl App for Echo {
    type Session = ();
    type Message = ();

    fn on_open(&mut self, _conn: &ConnInfo, _now: Instant) -> Option<()> {
        self.connections += 1;
        Some(())
    }
    fn on_readable(&mut self, _s: &mut (), io: &mut AppIo<'_>, _now: Instant) {
        self.pump(io);
    }
    fn on_writable(&mut self, _s: &mut (), io: &mut AppIo<'_>, _now: Instant) {
        self.pump(io);
    }
    fn on_close(&mut self, _s: (), _reason: CloseReason, _now: Instant) {}
    fn counters(&self) -> Vec<AppMetric> {
        vec![
            AppMetric::counter("echo_bytes", "Bytes echoed back.", self.echoed),
            AppMetric::counter(
                "echo_connections",
                "Connections the echo service accepted.",
                self.connections,
            ),
        ]
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // The library logs through `log` (warnings, the ready line): timestamped on stderr.
    synack::logging::init();
    // SIGINT/SIGTERM stop the server gracefully: blocked here, before any thread starts, and
    // taken by one thread that relays them to the server's handle.
    if let Err(e) = synack::signals::block() {
        eprintln!("echo: cannot block signals: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let server = Server::from_args(args.server);
    let handle = server.handle();
    match synack::signals::listen() {
        Ok(signals) => {
            std::thread::spawn(move || {
                while let Ok(sig) = signals.recv() {
                    if sig == synack::signals::Signal::Stop {
                        handle.stop();
                        break;
                    }
                }
            });
        }
        Err(e) => {
            eprintln!("echo: cannot start the signal thread: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    match server.run(|_worker| Echo::default()) {
        Ok(stats) => {
            eprint!("{}", stats.summary());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("echo: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
