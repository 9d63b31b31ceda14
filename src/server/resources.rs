//! What a running server holds: the attached XDP program, one AF_XDP socket per queue, the
//! pcap writer, the metrics endpoint and the statistics collector. Acquired in that order by
//! [`Resources::acquire`]; [`Resources::release`] gives them back in the reverse order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam::channel::{Sender, bounded};

use super::ServeError;
use super::plan::Plan;
use crate::cli::ServerArgs;
use crate::stats::Totals;
use crate::stats::collector::{self, CollectorConfig, Message};
use crate::xdp;

pub(crate) struct Resources {
    pub program: xdp::Program,
    /// /run/synack/IFACE.pid while the program is attached.
    pidfile: Option<crate::instance::PidFile>,
    pub sockets: Vec<xdp::XskQueue>,
    pub capture: Option<(crate::pcap::Capture, crate::pcap::CaptureWriter)>,
    stop_metrics: Arc<AtomicBool>,
    pub reports: Sender<Message>,
    collector: JoinHandle<Totals>,
}

impl Resources {
    pub fn acquire(a: &ServerArgs, plan: &Plan) -> Result<Resources, ServeError> {
        // A client steers the replies from the remote's port to all its source addresses.
        let (addrs, peers) = match &a.client {
            Some(side) => (
                plan.sources.clone(),
                side.remote.map(|r| vec![r.port()]).unwrap_or_default(),
            ),
            None => (a.ip.clone(), Vec::new()),
        };
        let mut program =
            xdp::Program::load_and_attach_with_peers(&a.iface, &addrs, &a.port, &peers, plan.mode)?;
        if let Some(w) = program.warning() {
            log::warn!("synack: {w}");
        }
        let pidfile = crate::instance::PidFile::create(&a.iface);
        let mut sockets = Vec::new();
        for q in 0..a.queues {
            let cfg = xdp::SocketConfig {
                frame_size: a.frame_size,
                frames: a.frames,
                ring_size: a.ring_size,
                zero_copy: a.zero_copy,
                busy_poll: a
                    .busy_poll
                    .then_some((a.busy_poll_usecs, a.busy_poll_budget)),
            };
            let sock = xdp::XskQueue::open(&plan.iface, q, &cfg)?;
            program.register(q, &sock)?;
            if a.zero_copy && !sock.zero_copy() {
                log::warn!(
                    "synack: queue {q}: the driver has no zero-copy AF_XDP; using copy mode"
                );
            }
            sockets.push(sock);
        }

        let capture =
            match &a.pcap {
                Some(path) => Some(crate::pcap::CaptureWriter::start(path, a.pcap_max).map_err(
                    |e| ServeError(format!("cannot write --pcap {}: {e}", path.display())),
                )?),
                None => None,
            };

        let metrics = a
            .metrics
            .map(|_| Arc::new(crate::stats::metrics::Metrics::new()));
        let stop_metrics = Arc::new(AtomicBool::new(false));
        if let (Some(addr), Some(m)) = (a.metrics, &metrics) {
            let m = m.clone();
            let render: crate::stats::metrics::Render = Arc::new(move || m.render());
            let bound = crate::stats::metrics::serve(addr, render, stop_metrics.clone())
                .map_err(|e| ServeError(format!("cannot serve --metrics on {addr}: {e}")))?;
            log::info!("synack: metrics on http://{bound}/metrics");
        }

        let (reports, report_rx) = bounded::<Message>(1024);
        let collector_cfg = CollectorConfig {
            live_interval: live_interval(a),
            stats_out: a.stats_out.clone(),
            metrics,
            workers: sockets.len(),
        };
        let collector = std::thread::Builder::new()
            .name("synack-collector".into())
            .spawn(move || collector::run(collector_cfg, report_rx))
            .map_err(|e| ServeError(format!("cannot start collector: {e}")))?;
        Ok(Resources {
            program,
            pidfile,
            sockets,
            capture,
            stop_metrics,
            reports,
            collector,
        })
    }

    /// After the workers have stopped: the collector's totals, then the metrics endpoint,
    /// the capture and the XDP program, in that order.
    pub fn release(self) -> Result<Totals, ServeError> {
        let Resources {
            mut program,
            pidfile,
            sockets,
            capture,
            stop_metrics,
            reports,
            collector,
        } = self;
        drop(sockets);
        drop(reports);
        let totals = collector
            .join()
            .map_err(|_| ServeError("the collector thread panicked".into()))?;
        stop_metrics.store(true, Ordering::Relaxed);
        if let Some((cap, writer)) = capture {
            drop(cap);
            if let Err(e) = writer.finish() {
                log::error!("synack: pcap: {e}");
            }
        }
        program.detach();
        drop(pidfile);
        Ok(totals)
    }
}

/// How often the collector logs its live line: `--stats-interval`, else every second when
/// stderr is a terminal (someone is watching) unless `--quiet`.
fn live_interval(a: &ServerArgs) -> Option<std::time::Duration> {
    use std::io::IsTerminal as _;
    match a.stats_interval {
        Some(secs) => Some(std::time::Duration::from_secs(secs.max(1))),
        None if !a.quiet && std::io::stderr().is_terminal() => {
            Some(std::time::Duration::from_secs(1))
        }
        None => None,
    }
}
