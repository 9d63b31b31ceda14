//! [`Client`]: the runtime for applications that open connections (load generators, proxies'
//! upstream side, health checkers). The same workers, XDP program and AF_XDP sockets as a
//! [`Server`]; the program steers the replies to our source addresses from the remote's port,
//! and the application opens connections in [`App::on_poll`](crate::App::on_poll).

use std::net::{IpAddr, SocketAddr};

use super::{FinalStats, ServeError, Server, ServerHandle, Worker};
use crate::cli::ServerArgs;
use crate::tcp::app::App;

/// What makes a runtime a client (set by [`Client`], not a flag).
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientSide {
    /// Where connections go: the XDP program steers segments from these ports.
    pub remote: Option<SocketAddr>,
    /// Source prefixes besides `ServerArgs::ip` (compared in the XDP program).
    pub prefixes: Vec<(IpAddr, u8)>,
    /// The MAC the segments go to (the remote's, or its gateway's); resolved at start if none.
    pub next_hop: Option<[u8; 6]>,
    /// The ephemeral ports, split between the workers.
    pub ports: (u16, u16),
    /// SYN retransmissions before a connect fails.
    pub syn_retries: u32,
    /// Workers never sleep (a load generator measures better when it spins).
    pub spin: bool,
}

/// A runtime that opens connections to one remote address and port, from one or more local
/// addresses, on an interface.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use synack::{App, AppIo, Client, CloseReason, ConnId, ConnInfo, Instant, Opener};
///
/// /// Opens one connection, sends a line, prints what comes back.
/// struct Once { opened: bool }
///
/// impl App for Once {
///     type Session = ();
///     type Message = ();
///     fn on_poll(&mut self, opener: &mut Opener<'_>, _now: Instant) {
///         if !self.opened {
///             self.opened = opener.connect("198.18.0.1:7".parse().unwrap()).is_ok();
///         }
///     }
///     fn on_open(&mut self, _c: &ConnInfo, _now: Instant) -> Option<()> { Some(()) }
///     fn on_readable(&mut self, _s: &mut (), io: &mut AppIo<'_>, _now: Instant) {
///         if io.data().is_empty() && !io.peer_closed() {
///             io.send(b"hello\n");
///             return;
///         }
///         println!("{}", String::from_utf8_lossy(io.data()));
///         let n = io.data().len();
///         io.consume(n);
///         io.close();
///     }
///     fn on_close(&mut self, _s: (), _r: CloseReason, _now: Instant) {}
///     fn on_connect_failed(&mut self, _id: ConnId, r: CloseReason, _now: Instant) {
///         eprintln!("connect failed: {r:?}");
///     }
/// }
///
/// let remote: SocketAddr = "198.18.0.1:7".parse().unwrap();
/// let client = Client::new("veth0", remote).source("198.18.0.2".parse().unwrap());
/// let stop = client.handle();
/// std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_secs(2));
///     stop.stop();
/// });
/// client.run(|_| Once { opened: false }).unwrap();
/// ```
pub struct Client {
    server: Server,
}

impl Client {
    /// A client on `iface` for connections to `remote`, every other setting at its default.
    /// Without [`source`](Self::source), the interface's own addresses of the remote's family
    /// are the source addresses.
    pub fn new(iface: &str, remote: SocketAddr) -> Client {
        let mut server = Server::new(iface, remote.ip(), remote.port());
        server.args.ip.clear();
        server.args.port.clear();
        server.args.grace = 0;
        server.args.client = Some(ClientSide {
            remote: Some(remote),
            ports: (32768, 60999),
            syn_retries: 6,
            ..ClientSide::default()
        });
        Client { server }
    }

    /// A client configured by command-line flags (`--ip` are the source addresses; `--port`
    /// is not used).
    pub fn from_args(mut args: ServerArgs, remote: SocketAddr) -> Client {
        args.port.clear();
        args.client = Some(ClientSide {
            remote: Some(remote),
            ports: (32768, 60999),
            syn_retries: 6,
            ..ClientSide::default()
        });
        Client {
            server: Server::from_args(args),
        }
    }

    fn side(&mut self) -> &mut ClientSide {
        self.server
            .args
            .client
            .get_or_insert_with(ClientSide::default)
    }

    /// Opens connections from `ip` too (by default: the interface's address of the remote's
    /// family). It must be an address of this host (on the interface, or under a local route
    /// such as `ip route add local 198.19.0.0/24 dev lo`), so that the kernel answers ARP or
    /// neighbour discovery for it.
    pub fn source(mut self, ip: IpAddr) -> Self {
        if !self.server.args.ip.contains(&ip) {
            self.server.args.ip.push(ip);
        }
        self
    }

    /// Opens connections from the addresses of `prefix`/`len` too (at most 1024 of them, the
    /// first taken first): a local route must cover them (`ip route add local PREFIX dev lo`).
    pub fn source_prefix(mut self, prefix: IpAddr, len: u8) -> Self {
        self.side().prefixes.push((prefix, len));
        self
    }

    /// The MAC to send to (the remote's, or its gateway's); by default it is looked up in the
    /// kernel's neighbour table at start (the kernel resolves it first if needed).
    pub fn next_hop(mut self, mac: [u8; 6]) -> Self {
        self.side().next_hop = Some(mac);
        self
    }

    /// The source ports to use (inclusive; default Linux's 32768-60999), split between the
    /// workers.
    pub fn ports(mut self, first: u16, last: u16) -> Self {
        self.side().ports = (first.min(last), first.max(last));
        self
    }

    /// SYN retransmissions (1 s, then doubling) before a connect fails (default 6, Linux's
    /// tcp_syn_retries).
    pub fn syn_retries(mut self, n: u32) -> Self {
        self.side().syn_retries = n;
        self
    }

    /// Workers poll without sleeping when idle (default: they sleep until the next timer).
    pub fn spin(mut self, on: bool) -> Self {
        self.side().spin = on;
        self
    }

    /// The NIC queues to use, one worker each.
    pub fn queues(mut self, n: u32) -> Self {
        self.server = self.server.queues(n);
        self
    }

    /// The cores to pin the workers to, one per queue.
    pub fn cores(mut self, cores: &[usize]) -> Self {
        self.server = self.server.cores(cores);
        self
    }

    /// Connection table capacity per worker.
    pub fn max_conns(mut self, n: usize) -> Self {
        self.server = self.server.max_conns(n);
        self
    }

    /// Quiet: no live statistics line.
    pub fn quiet(mut self, on: bool) -> Self {
        self.server = self.server.quiet(on);
        self
    }

    /// A handle that stops the client from another thread.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Runs until [`ServerHandle::stop`]: `factory` makes each worker's application, which
    /// opens connections in [`App::on_poll`](crate::App::on_poll). Connections still open at
    /// the stop are reset.
    pub fn run<A, F>(self, factory: F) -> Result<FinalStats, ServeError>
    where
        A: App,
        F: Fn(&Worker<A::Message>) -> A + Sync,
    {
        self.server.run(factory)
    }
}
