//! The command line (clap). `main.rs` only dispatches; the flags and their help live here.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The `synack` command line.
#[derive(Parser, Debug)]
#[command(
    name = "synack",
    version,
    about = "A kernel-bypass TCP/HTTP server: XDP steers one address and port into AF_XDP \
             sockets, and per-core workers serve HTTP/1.1 from user space.",
    long_about = None
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve HTTP on IP:PORT of an interface, bypassing the kernel's TCP stack.
    Serve(Box<ServeArgs>),
    /// Check that this machine and interface can run synack, and say what to fix.
    Check(CheckArgs),
    /// Load an HTTP server over AF_XDP (synack's own TCP, active open): wrk's output layout,
    /// keep-alive or a connection per request, pipelining, open-loop rates.
    Load(Box<crate::load::LoadArgs>),
}

/// `--xdp-mode`: how the XDP program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum XdpModeArg {
    /// Native (driver) mode, falling back to generic (skb) mode with a warning.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode: works on any interface, slower.
    Skb,
}

/// `--syn-cookies`: when SYNs are answered with SYN cookies (RFC 4987).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SynCookiesArg {
    /// When the SYN queue or the connection table is full (like Linux).
    Auto,
    /// For every SYN.
    Always,
    /// Never; SYNs beyond the queue are dropped.
    Never,
}

/// The flags of any server on synack: interface, addresses, queues and cores, TCP limits,
/// AF_XDP sizes, statistics. `synack serve` and the examples flatten them into their own
/// command lines (`#[command(flatten)]`) and hand them to [`Server::from_args`].
///
/// [`Server::from_args`]: crate::Server::from_args
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Interface to attach to (it must carry --ip).
    #[arg(long, value_name = "IF")]
    pub iface: String,
    /// Address to serve, IPv4 or IPv6; repeat for several (one server, both families, the same
    /// ports). Each must be configured on --iface, so that the kernel answers ARP and neighbour
    /// discovery for it (an IPv6 address must have finished DAD: add test addresses `nodad`).
    #[arg(long, value_name = "ADDR", required = true)]
    pub ip: Vec<IpAddr>,
    /// TCP port to serve (repeat for several).
    #[arg(long, value_name = "PORT", required = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Vec<u16>,

    /// Number of NIC queues to serve, one AF_XDP socket and one worker each.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub queues: u32,
    /// Cores to pin the workers to, e.g. "1" or "0,1" or "2-5" (default: the last N cores).
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
    /// How to attach the XDP program.
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    pub xdp_mode: XdpModeArg,
    /// Ask for zero-copy AF_XDP (falls back to copy mode where the driver lacks it).
    #[arg(long)]
    pub zero_copy: bool,
    /// Busy-poll the NIC queue (SO_PREFER_BUSY_POLL); pair with the interface's
    /// napi_defer_hard_irqs and gro_flush_timeout settings (see README).
    #[arg(long)]
    pub busy_poll: bool,
    /// Busy-poll time per poll, in microseconds.
    #[arg(long, value_name = "USECS", default_value_t = 20)]
    pub busy_poll_usecs: u32,
    /// Frames a busy poll may process.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub busy_poll_budget: u32,

    /// Connection table capacity per worker (TIME-WAIT is kept apart).
    #[arg(long, value_name = "N", default_value_t = 65536)]
    pub max_conns: usize,
    /// Half-open connections per worker before SYN cookies take over.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub syn_backlog: usize,
    /// When to answer SYNs with SYN cookies.
    #[arg(long, value_enum, default_value_t = SynCookiesArg::Auto)]
    pub syn_cookies: SynCookiesArg,
    /// TIME-WAIT records kept per worker; beyond it connections close without TIME-WAIT.
    #[arg(long, value_name = "N", default_value_t = 262144)]
    pub max_time_wait: usize,
    /// Maximum segment lifetime in seconds; TIME-WAIT lasts twice as long.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub msl: u64,
    /// Receive buffer (the largest receive window) per connection, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    pub recv_buffer: usize,
    /// Send limit per connection, in bytes: the most the application may have queued and
    /// not yet acknowledged (Linux's SO_SNDBUF).
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024)]
    pub send_buffer: usize,
    /// Receive memory per worker, in bytes: what receive buffers may hold in all (out-of-order
    /// data is dropped, windows stop growing, and each connection keeps only 2 KiB of unread
    /// data beyond it). Raise it for many large uploads at once.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub mem_limit: usize,
    /// MTU of the link (default: the interface's, read at start). The MSS announced is MTU - 40
    /// over IPv4 and MTU - 60 over IPv6; at most frame size - 14.
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<u16>,

    /// UMEM frame size (2048 or 4096).
    #[arg(long, value_name = "BYTES", default_value_t = 2048)]
    pub frame_size: u32,
    /// UMEM frames per socket.
    #[arg(long, value_name = "N", default_value_t = 8192)]
    pub frames: u32,
    /// Size of each AF_XDP ring (a power of two).
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub ring_size: u32,
    /// Frames taken from the RX ring per loop iteration.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub batch: usize,

    /// Seconds given to in-flight responses on SIGINT/SIGTERM before connections are reset.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub grace: u64,

    /// Do not print the live statistics line (printed every second when stderr is a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Log the live statistics line every SECS seconds, terminal or not (even with --quiet).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub stats_interval: Option<u64>,
    /// Write latency histograms (.hgrm) and a JSON summary here at exit and on SIGUSR1.
    #[arg(long, value_name = "DIR")]
    pub stats_out: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (an ordinary kernel socket).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Write the frames of the bypass path to this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Stop capturing after this many frames.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub pcap_max: u64,
    /// Fault injection for tests: drop this fraction (0..1) of received frames.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub inject_drop: f64,

    /// Set by [`Client`](crate::Client): the runtime opens connections. Not a flag.
    #[arg(skip)]
    pub(crate) client: Option<crate::server::ClientSide>,
}

/// `synack serve`: the server's flags and what to serve over HTTP.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// The server's flags (interface, address, ports, queues, limits...).
    #[command(flatten)]
    pub server: ServerArgs,

    /// Serve this fixed body for every GET path (the benchmark mode).
    #[arg(long, value_name = "TEXT", conflicts_with = "root")]
    pub body: Option<String>,
    /// Serve the files under DIR, loaded into memory at start.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Reload --root when files under it change (inotify), as SIGHUP does: once the tree has
    /// been quiet for 200 ms after a change.
    #[arg(long, conflicts_with = "body")]
    pub watch: bool,
    /// With --root: serve NAME.gz / NAME.br, when present, for NAME to clients whose
    /// Accept-Encoding takes them (Content-Encoding, Vary: Accept-Encoding), as nginx's
    /// gzip_static.
    #[arg(long, conflicts_with = "body")]
    pub precompressed: bool,
    /// With --root: a Cache-Control value for file answers and directory redirects.
    #[arg(long, value_name = "VALUE", conflicts_with = "body")]
    pub cache_control: Option<String>,

    /// Seconds a client may take to send a request's headers.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds an idle keep-alive connection is kept.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub keepalive_timeout: u64,
    /// Seconds a response may go without the client acknowledging any of it before the
    /// connection is reset (nginx's send_timeout).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub send_timeout: u64,
    /// Requests served on one connection before it is closed.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_requests: u32,
    /// Largest request body accepted (it is read and discarded), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub max_body: u64,

    /// Write an access log to FILE (appended to; SIGHUP reopens it, for logrotate).
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
    /// The access log's line format: nginx's combined plus the request time, or JSON.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = AccessLogFormatArg::Combined)]
    pub access_log_format: AccessLogFormatArg,
    /// Access log lines each worker may have waiting for the writer (128 bytes of buffer
    /// each, allocated at start); lines that find no room are dropped and counted
    /// (access_log_dropped).
    #[arg(long, value_name = "N", default_value_t = crate::http::ACCESS_LOG_QUEUE,
          value_parser = clap::value_parser!(u64).range(1..1 << 24))]
    pub access_log_queue: u64,
    /// Read flags from this TOML file: its keys are the long flags' names (`iface = "eth0"`,
    /// `port = [80, 8080]`); flags on the command line win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `--access-log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AccessLogFormatArg {
    /// nginx's `combined`, then the request time in seconds (nginx's `$request_time`).
    Combined,
    /// One JSON object per line, keys named after nginx's variables.
    Json,
}

/// `synack check`: the doctor's flags.
#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Interface to check.
    #[arg(long, value_name = "IF")]
    pub iface: String,
    /// Also check that this address (IPv4 or IPv6; repeat for several) is configured on the
    /// interface, and for IPv6 that it is usable (DAD done, IPv6 enabled).
    #[arg(long, value_name = "ADDR")]
    pub ip: Vec<IpAddr>,
    /// Queues `synack serve` will serve (for the locked memory their UMEMs need).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub queues: u32,
    /// UMEM frames per socket, as `synack serve --frames`.
    #[arg(long, value_name = "N", default_value_t = 8192)]
    pub frames: u32,
    /// UMEM frame size, as `synack serve --frame-size`.
    #[arg(long, value_name = "BYTES", default_value_t = 2048)]
    pub frame_size: u32,
}

/// Parses a core list like "1", "0,2", "2-5" or "0,2-3".
pub fn parse_core_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a
                .trim()
                .parse()
                .map_err(|_| format!("bad core number in {part:?}"))?;
            let b: usize = b
                .trim()
                .parse()
                .map_err(|_| format!("bad core number in {part:?}"))?;
            if b < a || b - a > 4096 {
                return Err(format!("bad core range {part:?}"));
            }
            out.extend(a..=b);
        } else {
            out.push(
                part.parse()
                    .map_err(|_| format!("bad core number {part:?}"))?,
            );
        }
    }
    if out.is_empty() {
        return Err("empty core list".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn core_lists() {
        assert_eq!(parse_core_list("1").unwrap(), vec![1]);
        assert_eq!(parse_core_list("0,2-4").unwrap(), vec![0, 2, 3, 4]);
        assert!(parse_core_list("x").is_err());
        assert!(parse_core_list("4-2").is_err());
    }

    #[test]
    fn port_zero_is_refused() {
        let r = Cli::try_parse_from([
            "synack", "serve", "--iface", "x", "--ip", "1.2.3.4", "--port", "0",
        ]);
        assert!(r.is_err());
    }
}
