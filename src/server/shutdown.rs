//! Stopping in order: [`ServerHandle::stop`] (from any thread; `synack serve` calls it on
//! SIGINT/SIGTERM) moves the workers to the draining phase: they take no new connections,
//! close idle ones, give in-flight responses the grace period, reset the rest and report a
//! last time. Then the resources are released and `run` returns the final statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};

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
    mtu: &mut MtuWatch,
) {
    loop {
        match control.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Control::Dump) => {
                let _ = reports.send(Message::Dump);
            }
            Err(RecvTimeoutError::Timeout) => {
                mtu.check();
            }
        }
    }
    log::info!("synack: stopping: no new connections, {grace_secs} s for in-flight responses");
    phase.store(DRAINING, Ordering::SeqCst);
}

/// Watches the interface's MTU while serving (once a second, off the datapath): the MSS the
/// engines announce was derived from it at start, so a change is logged with what to do.
pub(crate) struct MtuWatch {
    iface: String,
    /// The MTU the MSS was derived from.
    serving: u16,
    /// The interface's MTU when last read.
    seen: Option<u32>,
    read: fn(&str) -> Option<u32>,
}

impl MtuWatch {
    pub(crate) fn new(iface: &str, serving: u16, at_start: u32) -> Self {
        MtuWatch {
            iface: iface.to_string(),
            serving,
            seen: Some(at_start),
            read: |iface| {
                std::fs::read_to_string(format!("/sys/class/net/{iface}/mtu"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            },
        }
    }

    /// Reads the MTU; logs a warning when it changed since the last read. Returns the warning.
    pub(crate) fn check(&mut self) -> Option<String> {
        let now = (self.read)(&self.iface);
        if now == self.seen {
            return None;
        }
        let before = self.seen;
        self.seen = now;
        let (Some(before), Some(now)) = (before, now) else {
            return None;
        };
        let text = if now < self.serving as u32 {
            format!(
                "the MTU of {} fell from {before} to {now} while serving: synack still announces \
                 an MSS for MTU {}, so peers may send segments the interface drops (uploads \
                 stall); restart synack to serve with MTU {now}",
                self.iface, self.serving
            )
        } else {
            format!(
                "the MTU of {} changed from {before} to {now} while serving; synack keeps \
                 announcing an MSS for MTU {} until it is restarted",
                self.iface, self.serving
            )
        };
        log::warn!("synack: {text}");
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    static MTU: AtomicU32 = AtomicU32::new(1500);

    #[test]
    fn mtu_changes_are_reported_once_each() {
        let mut w = MtuWatch::new("test0", 1500, 1500);
        w.read = |_| Some(MTU.load(Ordering::SeqCst));
        assert_eq!(w.check(), None);
        MTU.store(1280, Ordering::SeqCst);
        let t = w.check().expect("a fall is reported");
        assert!(t.contains("fell from 1500 to 1280") && t.contains("restart"), "{t}");
        assert_eq!(w.check(), None, "once");
        MTU.store(9000, Ordering::SeqCst);
        let t = w.check().expect("a rise is reported");
        assert!(t.contains("changed from 1280 to 9000"), "{t}");
    }
}
