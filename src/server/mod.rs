//! [`Server`]: synack as a library. A builder for the interface, addresses, queues, cores and
//! limits; [`Server::run`] takes a factory that makes one [`App`] per worker (on that worker's
//! thread, so state is per core and shared-nothing), serves until [`ServerHandle::stop`], and
//! returns the final statistics. Signal handling is the caller's choice.
//!
//! The parts, in the order `run` uses them: `plan` (flags checked, interface and cores),
//! `resources` (XDP program, AF_XDP sockets, capture, metrics, collector), `workers` (one
//! pinned loop per queue), `shutdown` (drain, stop, release).

pub(crate) mod access_log;
mod client;
mod plan;
mod resources;
mod shutdown;
mod workers;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::time::Duration;

use clap::Parser;
use crossbeam::channel::{Receiver, Sender, TrySendError, bounded, unbounded};

pub use access_log::{AccessLog, AccessLogReopen};
pub use client::Client;
pub(crate) use client::ClientSide;
pub use shutdown::ServerHandle;
pub(crate) use plan::worker_cores;

use crate::cli::{ServerArgs, XdpModeArg};
use crate::stats::Totals;
use crate::stats::collector;
use crate::tcp::app::App;
use crate::tcp::engine::Engine;
use crate::worker::Datapath;
use shutdown::{Control, RUNNING};
use workers::{WorkerEnv, worker_loop};

/// A failure to start, with what to do about it.
#[derive(Debug)]
pub struct ServeError(pub String);

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

impl From<crate::xdp::XdpError> for ServeError {
    fn from(e: crate::xdp::XdpError) -> Self {
        ServeError(e.to_string())
    }
}

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAttach {
    /// Native (driver) mode, falling back to generic (skb) mode with a warning.
    Auto,
    /// Native mode only.
    Native,
    /// Generic (skb) mode: works on any interface, slower.
    Generic,
}

/// Messages between workers: a bounded queue into each worker, read by its application's
/// [`App::on_message`]. Cheap to clone and `Send`, so an application may also hand it to
/// threads of its own.
pub struct Mailbox<M> {
    me: usize,
    peers: Arc<[Sender<M>]>,
}

impl<M> Clone for Mailbox<M> {
    fn clone(&self) -> Self {
        Mailbox {
            me: self.me,
            peers: self.peers.clone(),
        }
    }
}

impl<M> Mailbox<M> {
    /// The worker this mailbox belongs to.
    pub fn me(&self) -> usize {
        self.me
    }
    /// How many workers there are (valid destinations are `0..workers()`).
    pub fn workers(&self) -> usize {
        self.peers.len()
    }
    /// Messages each worker's queue holds at most: an application that bounds what it has in
    /// flight to each peer by this never sees a full queue.
    pub fn capacity(&self) -> usize {
        MAILBOX_CAPACITY
    }
    /// Queues `msg` for worker `to` without waiting. A full queue (the receiver is behind)
    /// or a worker that has stopped gives the message back.
    ///
    /// # Panics
    /// If `to` is not below [`workers`](Self::workers).
    pub fn send(&self, to: usize, msg: M) -> Result<(), M> {
        self.peers[to].try_send(msg).map_err(|e| match e {
            TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
        })
    }
}

/// What the factory given to [`Server::run`] learns about the worker it makes an application
/// for.
pub struct Worker<M> {
    index: usize,
    core: usize,
    mailbox: Mailbox<M>,
}

impl<M> Worker<M> {
    /// This worker's number, `0..workers()` (it serves NIC queue `index`).
    pub fn index(&self) -> usize {
        self.index
    }
    /// How many workers the server runs.
    pub fn workers(&self) -> usize {
        self.mailbox.workers()
    }
    /// The core this worker is pinned to.
    pub fn core(&self) -> usize {
        self.core
    }
    /// A mailbox to send other workers messages.
    pub fn mailbox(&self) -> Mailbox<M> {
        self.mailbox.clone()
    }
}

/// The statistics a server ends with.
pub struct FinalStats {
    totals: Totals,
}

impl FinalStats {
    /// Connections established, all workers.
    pub fn established(&self) -> u64 {
        self.totals.established()
    }
    /// Requests served (as the applications counted them, [`App::requests`]).
    pub fn requests(&self) -> u64 {
        self.totals.requests()
    }
    /// Frames and segments dropped, all layers and reasons.
    pub fn drops(&self) -> u64 {
        self.totals.drops()
    }
    /// The final statistics as `synack serve` prints them.
    pub fn summary(&self) -> String {
        collector::summary(&self.totals)
    }
}

/// Messages queued into each worker at most.
const MAILBOX_CAPACITY: usize = 4096;

/// A kernel-bypass TCP server: a builder, then [`run`](Server::run).
///
/// ```no_run
/// use synack::{App, AppIo, CloseReason, ConnInfo, Instant, Server};
///
/// /// Answers every byte received with the same byte.
/// struct Echo;
///
/// impl App for Echo {
///     type Session = ();
///     type Message = ();
///     fn on_open(&mut self, _conn: &ConnInfo, _now: Instant) -> Option<()> {
///         Some(())
///     }
///     fn on_readable(&mut self, _s: &mut (), io: &mut AppIo<'_>, _now: Instant) {
///         let data = io.data().to_vec();
///         let took = io.send(&data);
///         io.consume(took); // the rest waits: the window closes until room opens
///         if io.peer_closed() && io.data().is_empty() {
///             io.close();
///         }
///     }
///     fn on_writable(&mut self, s: &mut (), io: &mut AppIo<'_>, now: Instant) {
///         self.on_readable(s, io, now)
///     }
///     fn on_close(&mut self, _s: (), _reason: CloseReason, _now: Instant) {}
/// }
///
/// let addr: std::net::IpAddr = "192.0.2.1".parse().unwrap(); // or an IPv6 address
/// let server = Server::new("eth0", addr, 7).queues(1);
/// let handle = server.handle(); // handle.stop() from another thread ends `run`
/// let stats = server.run(|_worker| Echo).expect("started");
/// eprint!("{}", stats.summary());
/// ```
pub struct Server {
    args: ServerArgs,
    control: (Sender<Control>, Receiver<Control>),
}

/// Parses the defaults of [`ServerArgs`] once, so the builder and the command line agree.
#[derive(Parser)]
struct DefaultsOnly {
    #[command(flatten)]
    args: ServerArgs,
}

impl Server {
    /// A server on `iface` for `ip:port` (IPv4 or IPv6), every other setting at its default
    /// (the defaults of `synack serve`'s flags).
    pub fn new(iface: &str, ip: impl Into<IpAddr>, port: u16) -> Server {
        let ip = ip.into().to_string();
        let port = port.to_string();
        let args = DefaultsOnly::try_parse_from([
            "synack", "--iface", iface, "--ip", &ip, "--port", &port,
        ])
        .map(|d| d.args)
        .unwrap_or_else(|e| panic!("the server flags' defaults do not parse: {e}"));
        Server::from_args(args)
    }

    /// A server configured by command-line flags ([`ServerArgs`], flattened into a program's
    /// own clap parser).
    pub fn from_args(args: ServerArgs) -> Server {
        Server {
            args,
            control: unbounded(),
        }
    }

    /// Serves one more address (either family) on the same ports.
    pub fn ip(mut self, ip: impl Into<IpAddr>) -> Self {
        self.args.ip.push(ip.into());
        self
    }

    /// Serves one more port on the same address.
    pub fn port(mut self, port: u16) -> Self {
        if !self.args.port.contains(&port) {
            self.args.port.push(port);
        }
        self
    }
    /// NIC queues to serve: one AF_XDP socket and one worker each (default 1).
    pub fn queues(mut self, n: u32) -> Self {
        self.args.queues = n;
        self
    }
    /// Cores to pin the workers to, one per queue (default: the last cores allowed).
    pub fn cores(mut self, cores: &[usize]) -> Self {
        let list: Vec<String> = cores.iter().map(|c| c.to_string()).collect();
        self.args.cores = Some(list.join(","));
        self
    }
    /// How to attach the XDP program.
    pub fn xdp_attach(mut self, mode: XdpAttach) -> Self {
        self.args.xdp_mode = match mode {
            XdpAttach::Auto => XdpModeArg::Auto,
            XdpAttach::Native => XdpModeArg::Native,
            XdpAttach::Generic => XdpModeArg::Skb,
        };
        self
    }
    /// Asks for zero-copy AF_XDP (copy mode where the driver lacks it).
    pub fn zero_copy(mut self, on: bool) -> Self {
        self.args.zero_copy = on;
        self
    }
    /// Busy-polls the NIC queues: time per poll and frames per poll.
    pub fn busy_poll(mut self, usecs: u32, budget: u32) -> Self {
        self.args.busy_poll = true;
        self.args.busy_poll_usecs = usecs;
        self.args.busy_poll_budget = budget;
        self
    }
    /// Connection table capacity per worker.
    pub fn max_conns(mut self, n: usize) -> Self {
        self.args.max_conns = n;
        self
    }
    /// Receive buffer per connection (the largest receive window), in bytes.
    pub fn recv_buffer(mut self, bytes: usize) -> Self {
        self.args.recv_buffer = bytes;
        self
    }
    /// Send limit per connection, in bytes ([`AppIo::send`](crate::AppIo::send) takes at
    /// most what fits).
    pub fn send_buffer(mut self, bytes: usize) -> Self {
        self.args.send_buffer = bytes;
        self
    }
    /// Receive memory per worker, in bytes.
    pub fn mem_limit(mut self, bytes: usize) -> Self {
        self.args.mem_limit = bytes;
        self
    }
    /// The link MTU (default: the interface's). The MSS announced is MTU - 40 over IPv4 and
    /// MTU - 60 over IPv6.
    pub fn mtu(mut self, mtu: u16) -> Self {
        self.args.mtu = Some(mtu);
        self
    }
    /// How long in-flight connections get at shutdown before they are reset.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.args.grace = grace.as_secs();
        self
    }
    /// Prints no live statistics line on a terminal (an explicit
    /// [`stats_interval`](Self::stats_interval) still prints it).
    pub fn quiet(mut self, on: bool) -> Self {
        self.args.quiet = on;
        self
    }
    /// Logs the live statistics line every `every` (rounded to whole seconds, at least 1),
    /// whether or not stderr is a terminal.
    pub fn stats_interval(mut self, every: Duration) -> Self {
        self.args.stats_interval = Some(every.as_secs().max(1));
        self
    }
    /// Writes latency histograms and a JSON summary to `dir` at exit.
    pub fn stats_out(mut self, dir: PathBuf) -> Self {
        self.args.stats_out = Some(dir);
        self
    }
    /// Serves Prometheus metrics on `addr` (an ordinary kernel socket).
    pub fn metrics(mut self, addr: SocketAddr) -> Self {
        self.args.metrics = Some(addr);
        self
    }
    /// Writes the frames of the bypass path to a pcap file (at most `max_frames`).
    pub fn pcap(mut self, path: PathBuf, max_frames: u64) -> Self {
        self.args.pcap = Some(path);
        self.args.pcap_max = max_frames;
        self
    }

    /// A handle that stops the server from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            tx: self.control.0.clone(),
        }
    }

    /// Serves until [`ServerHandle::stop`]: checks the configuration and the machine (each
    /// refusal says what to do), attaches the XDP program, opens one AF_XDP socket per queue
    /// and starts one pinned worker per socket. `factory` runs on each worker's thread and
    /// makes that worker's application. Returns the final statistics once every worker has
    /// drained and the program is detached.
    pub fn run<A, F>(self, factory: F) -> Result<FinalStats, ServeError>
    where
        A: App,
        F: Fn(&Worker<A::Message>) -> A + Sync,
    {
        let Server { mut args, control } = self;
        plan::client_setup(&mut args)?;
        let plan = plan::plan(&args)?;
        let mut engine_cfgs = Vec::new();
        for i in 0..args.queues as usize {
            engine_cfgs.push(plan::engine_config(
                &args,
                &plan,
                i,
                args.queues as usize,
            )?);
        }
        let mut res = resources::Resources::acquire(&args, &plan)?;
        let phase = Arc::new(AtomicU8::new(RUNNING));
        let n = res.sockets.len();
        // Several queues: frames of a connection that land on another worker's queue (RSS
        // changed) go to their owner over crossbeam channels.
        let mut steering: Vec<Option<crate::worker::Steering>> = if n > 1 {
            crate::worker::Steering::mesh(n, 4096)
                .into_iter()
                .map(Some)
                .collect()
        } else {
            vec![None]
        };
        let (senders, inboxes): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| bounded::<A::Message>(MAILBOX_CAPACITY))
            .unzip();
        let peers: Arc<[Sender<A::Message>]> = senders.into();
        let capture = res.capture.as_ref().map(|c| c.0.clone());
        let sockets = std::mem::take(&mut res.sockets);
        let factory = &factory;
        let result = std::thread::scope(|scope| -> Result<(), ServeError> {
            let mut started = 0;
            let mut failure = None;
            for ((i, sock), (inbox, (engine_cfg, st))) in sockets.into_iter().enumerate().zip(
                inboxes.into_iter().zip(
                    engine_cfgs
                        .into_iter()
                        .zip(steering.iter_mut().map(Option::take)),
                ),
            ) {
                let core = plan.cores[i];
                let worker = Worker {
                    index: i,
                    core,
                    mailbox: Mailbox {
                        me: i,
                        peers: peers.clone(),
                    },
                };
                let env = WorkerEnv {
                    index: i,
                    core,
                    phase: phase.clone(),
                    reports: res.reports.clone(),
                    grace: Duration::from_secs(args.grace),
                    has_peers: n > 1,
                    spin: args.client.as_ref().is_some_and(|c| c.spin),
                };
                let capture = capture.clone();
                let (local_mac, batch, inject) = (plan.iface.mac, args.batch, args.inject_drop);
                let spawned = std::thread::Builder::new()
                    .name(format!("synack-w{i}"))
                    .spawn_scoped(scope, move || {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                            log::warn!(
                                "synack: worker {i} could not be pinned to core {core}"
                            );
                        }
                        let app = factory(&worker);
                        let mut dp =
                            Datapath::new(Engine::new(engine_cfg, app), sock, local_mac, batch);
                        dp.set_inject_drop(inject, 0x5EED ^ (i as u64 + 1));
                        dp.set_capture(capture);
                        if let Some(st) = st {
                            dp.set_steering(st);
                        }
                        dp.set_inbox(inbox);
                        worker_loop(env, dp);
                    });
                match spawned {
                    Ok(_) => started += 1,
                    Err(e) => {
                        failure = Some(ServeError(format!("cannot start worker {i}: {e}")));
                        break;
                    }
                }
            }
            if let Some(e) = failure {
                // Stop the workers that did start; the scope joins them.
                phase.store(shutdown::DRAINING, std::sync::atomic::Ordering::SeqCst);
                return Err(e);
            }
            let ports: Vec<String> = args.port.iter().map(|p| p.to_string()).collect();
            let addrs: Vec<String> = args
                .ip
                .iter()
                .map(|ip| match ip {
                    IpAddr::V4(a) => a.to_string(),
                    IpAddr::V6(a) => format!("[{a}]"),
                })
                .collect();
            let what = match args.client.as_ref().and_then(|c| c.remote) {
                Some(remote) => format!(
                    "connecting to {remote} from {}{}",
                    addrs.join(" "),
                    args.client
                        .as_ref()
                        .map(|c| c
                            .prefixes
                            .iter()
                            .map(|(n, l)| format!(" {n}/{l}"))
                            .collect::<String>())
                        .unwrap_or_default()
                ),
                None => format!("serving {} port {}", addrs.join(" "), ports.join(",")),
            };
            log::info!(
                "synack: {what} on {} (MTU {}, {} queue{}, XDP {} mode, cores {:?})",
                args.iface,
                plan.mtu,
                started,
                if started == 1 { "" } else { "s" },
                res.program.mode_name(),
                &plan.cores[..started]
            );
            let mut mtu = shutdown::MtuWatch::new(&args.iface, plan.mtu, plan.iface.mtu);
            shutdown::wait_for_stop(&control.1, &res.reports, &phase, args.grace, &mut mtu);
            Ok(())
        });
        // The workers have returned (the scope joined them). The writer of the capture
        // finishes once the last handle on it is gone.
        drop(capture);
        drop(control);
        let totals = res.release()?;
        result?;
        Ok(FinalStats { totals })
    }
}
