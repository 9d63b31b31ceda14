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
        let mut program = xdp::Program::load_and_attach(&a.iface, a.ip, &a.port, plan.mode)?;
        if let Some(w) = program.warning() {
            eprintln!("synack: warning: {w}");
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
                eprintln!(
                    "synack: warning: queue {q}: the driver has no zero-copy AF_XDP; using copy mode"
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

        let metrics_text = a
            .metrics
            .map(|_| Arc::new(std::sync::Mutex::new(String::new())));
        let stop_metrics = Arc::new(AtomicBool::new(false));
        if let (Some(addr), Some(text)) = (a.metrics, &metrics_text) {
            let bound = crate::stats::metrics::serve(addr, text.clone(), stop_metrics.clone())
                .map_err(|e| ServeError(format!("cannot serve --metrics on {addr}: {e}")))?;
            eprintln!("synack: metrics on http://{bound}/metrics");
        }

        let (reports, report_rx) = bounded::<Message>(1024);
        let collector_cfg = CollectorConfig {
            quiet: a.quiet,
            stats_out: a.stats_out.clone(),
            metrics: metrics_text,
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
                eprintln!("synack: pcap: {e}");
            }
        }
        program.detach();
        drop(pidfile);
        Ok(totals)
    }
}
