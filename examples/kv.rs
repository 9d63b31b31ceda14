//! `kv`: a memcached text-protocol subset on synack, with per-core shards.
//!
//! Serves `get`, `gets`, `set`, `add`, `delete` (and `noreply`), multi-key gets, and answers
//! everything else as memcached 1.6 does (`ERROR`, `CLIENT_ERROR ...`, `SERVER_ERROR object
//! too large for cache`), byte for byte (tests/kv.rs checks it against Debian's memcached).
//! Each worker owns the keys that hash to it; a command for a key of another worker's shard
//! goes there as a message and its answer comes back, in request order.
//!
//!     target/release/examples/kv --iface IF --ip ADDR --port 11211 [--queues 2 --cores 0,1]
//!
//! SIGINT/SIGTERM stop it gracefully.

#[path = "kv/app.rs"]
mod app;
#[path = "kv/protocol.rs"]
mod protocol;
#[path = "kv/store.rs"]
mod store;

use clap::Parser;
use synack::cli::ServerArgs;
use synack::{ServeError, Server};

use app::Kv;

/// A memcached text-protocol subset (get, gets, set, add, delete) over AF_XDP, one shard of
/// the keys per worker.
#[derive(Parser, Debug)]
#[command(name = "kv", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Memory for items, per worker, in MiB (beyond it, items are evicted).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    mem_mb: usize,
}

fn main() {
    let args = Args::parse();
    // The library logs through `log` (warnings, the ready line): timestamped on stderr.
    synack::logging::init();
    if let Err(e) = run(args) {
        eprintln!("kv: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), ServeError> {
    // Signals are blocked before any thread starts, so only the signal thread takes them.
    synack::signals::block().map_err(|e| ServeError(format!("cannot block signals: {e}")))?;
    let signals = synack::signals::listen()
        .map_err(|e| ServeError(format!("cannot start signal thread: {e}")))?;
    let server = Server::from_args(args.server);
    let handle = server.handle();
    std::thread::Builder::new()
        .name("kv-signals".into())
        .spawn(move || {
            while let Ok(sig) = signals.recv() {
                if let synack::signals::Signal::Stop = sig {
                    handle.stop();
                    break;
                }
            }
        })
        .map_err(|e| ServeError(format!("cannot start signal thread: {e}")))?;
    let mem = args.mem_mb << 20;
    let stats = server.run(|w| {
        let mailbox = w.mailbox();
        // The credits (Kv::credit_limit) are sized for this capacity.
        assert!(mailbox.capacity() >= app::MAILBOX_CAPACITY);
        Kv::new(
            w.index(),
            w.workers(),
            Box::new(move |to, msg| mailbox.send(to, msg)),
            mem,
        )
    })?;
    eprint!("{}", stats.summary());
    Ok(())
}
