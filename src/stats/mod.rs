//! Statistics: what each worker counts and measures, and the collector thread that merges it,
//! prints it live, writes it to files and serves it as Prometheus metrics.
//!
//! Workers never share counters: each sends a [`Report`] once a second over a crossbeam
//! channel, with its counters (monotonic) and the latency it measured since its last report.

pub mod collector;
pub mod latency;
pub mod metrics;

use std::time::Instant as WallInstant;

use crate::tcp::counters::TcpCounters;
use crate::tcp::state::State;
use crate::worker::FrameCounters;

pub use latency::{Latency, Metric};

/// One worker's state, as sent to the collector.
#[derive(Clone, Debug)]
pub struct Report {
    pub worker: usize,
    pub queue: u32,
    pub core: Option<usize>,
    pub frames: FrameCounters,
    pub tcp: TcpCounters,
    /// The application's own counters and gauges (HTTP: responses by class, timeouts...).
    pub app: Vec<crate::tcp::app::AppMetric>,
    /// Kernel AF_XDP counters (XDP_STATISTICS) and ring counters, monotonic.
    pub xsk: Vec<(&'static str, u64)>,
    pub states: [usize; State::ALL.len()],
    /// Latency since the previous report.
    pub latency: Latency,
    /// Requests answered so far (for req/s).
    pub requests: u64,
    /// True in the last report of a worker.
    pub last: bool,
}

impl Report {
    /// Every drop of this worker, by layer and reason.
    pub fn drops(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut v = Vec::new();
        for r in crate::wire::DropReason::ALL {
            v.push(("wire", r.as_str(), self.frames.wire_drops[r as usize]));
        }
        for r in crate::worker::WorkerDrop::ALL {
            v.push(("worker", r.as_str(), self.frames.worker_drops[r as usize]));
        }
        for r in crate::tcp::counters::TcpDrop::ALL {
            v.push(("tcp", r.as_str(), self.tcp.drops[r as usize]));
        }
        v
    }

    pub fn total_drops(&self) -> u64 {
        self.drops().iter().map(|d| d.2).sum()
    }
}

/// The merged view of every worker's latest report: what the collector keeps, and what the
/// live line, the summary, the files and the Prometheus text are rendered from.
pub struct Totals {
    /// Each worker's latest report, by worker index (`None` before its first).
    pub last: Vec<Option<Report>>,
    /// Every latency measured since start, merged.
    pub cumulative: Latency,
    /// When the collector started (for rates and uptime).
    pub started: WallInstant,
}

impl Totals {
    fn sum<F: Fn(&Report) -> u64>(&self, f: F) -> u64 {
        self.last.iter().flatten().map(f).sum()
    }
    /// Connections established, all workers.
    pub fn established(&self) -> u64 {
        self.sum(|r| r.tcp.established)
    }
    /// Requests answered, all workers.
    pub fn requests(&self) -> u64 {
        self.sum(|r| r.requests)
    }
    /// Drops of every layer and reason, all workers.
    pub fn drops(&self) -> u64 {
        self.sum(|r| r.total_drops())
    }
    /// Connections in a state other than LISTEN and TIME-WAIT, all workers.
    pub fn active(&self) -> u64 {
        self.sum(|r| {
            r.states
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != State::Listen as usize && *i != State::TimeWait as usize)
                .map(|(_, n)| *n as u64)
                .sum()
        })
    }
}
