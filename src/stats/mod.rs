//! Statistics: what each worker counts and measures, and the collector thread that merges it,
//! prints it live, writes it to files and serves it as Prometheus metrics.
//!
//! Workers never share counters: each sends a [`Report`] once a second over a crossbeam
//! channel, with its counters (monotonic) and the latency it measured since its last report.

pub mod collector;
pub mod latency;
pub mod metrics;

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
    /// Application counters (HTTP), monotonic.
    pub app: Vec<(&'static str, u64)>,
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
