//! Stopping in order: [`ServerHandle::stop`] (from any thread; `synack serve` calls it on
//! SIGINT/SIGTERM) moves the workers to the draining phase: they take no new connections,
//! close idle ones, give in-flight responses the grace period, reset the rest and report a
//! last time. Then the resources are released and `run` returns the final statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crossbeam::channel::{Receiver, Sender};

use crate::stats::collector::Message;

/// Phases of a worker's life, set by the thread in `Server::run`.
pub(crate) const RUNNING: u8 = 0;
pub(crate) const DRAINING: u8 = 1;

/// What a handle asks of a running server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    Stop,
    Dump,
}

/// Stops a server (or asks it for its statistics files) from another thread. Cheap to clone;
/// it outlives the server harmlessly (a stop after the end does nothing).
#[derive(Clone, Debug)]
pub struct ServerHandle {
    pub(crate) tx: Sender<Control>,
}

impl ServerHandle {
    /// Begins the graceful shutdown: no new connections, in-flight responses get the grace
    /// period (`--grace`), then `run` returns.
    pub fn stop(&self) {
        let _ = self.tx.send(Control::Stop);
    }
    /// Writes the statistics files (`--stats-out`) now, as SIGUSR1 does for `synack serve`.
    pub fn dump_stats(&self) {
        let _ = self.tx.send(Control::Dump);
    }
}

/// Waits for a stop, forwarding dumps to the collector; then sets the draining phase.
pub(crate) fn wait_for_stop(
    control: &Receiver<Control>,
    reports: &Sender<Message>,
    phase: &Arc<AtomicU8>,
    grace_secs: u64,
) {
    loop {
        match control.recv() {
            Ok(Control::Stop) | Err(_) => break,
            Ok(Control::Dump) => {
                let _ = reports.send(Message::Dump);
            }
        }
    }
    log::info!("synack: stopping: no new connections, {grace_secs} s for in-flight responses");
    phase.store(DRAINING, Ordering::SeqCst);
}
