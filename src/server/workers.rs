//! One worker's life: pinned to its core, it makes its application with the factory, then
//! loops (receive, engine, timers, messages, transmit) and reports once a second, until the
//! shutdown phase tells it to drain and stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam::channel::Sender;

use super::shutdown::DRAINING;
use crate::stats::collector::Message;
use crate::stats::{Latency, Metric, Report};
use crate::tcp::app::App;
use crate::time::Instant;
use crate::worker::{Datapath, FrameIo};
use crate::xdp::QueueStats;

pub(crate) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What a worker thread needs besides its datapath.
pub(crate) struct WorkerEnv {
    pub index: usize,
    pub core: usize,
    pub phase: Arc<AtomicU8>,
    pub reports: Sender<Message>,
    pub grace: Duration,
    /// Other workers may send this one messages: look for them often when idle.
    pub has_peers: bool,
    /// Never wait when idle (a client that measures: its timers and open-loop schedule must
    /// not wait for a poll(2) to return).
    pub spin: bool,
}

pub(crate) fn worker_loop<A: App, IO: FrameIo + QueueStats>(
    env: WorkerEnv,
    mut dp: Datapath<A, IO>,
) {
    let WorkerEnv {
        index,
        core,
        phase,
        reports,
        grace,
        has_peers,
        spin,
    } = env;
    let epoch = std::time::Instant::now();
    let clock = || Instant::from_micros(epoch.elapsed().as_micros() as u64);
    // The wall clock is derived from the monotonic one, read once per iteration: a
    // clock_gettime costs 20-50 ns here (more in VMs), and a spinning worker iterates
    // millions of times a second. Re-based every second, with the report, so that it
    // follows the system clock's steps.
    let mut unix_base = unix_micros();
    let mut unix_base_at = Instant::ZERO;
    let mut latency = Latency::default();
    let mut last_report = Instant::ZERO;
    let mut drain_until: Option<Instant> = None;
    let mut last_sweep = Instant::ZERO;
    let mut iterations = 0u64;
    let idle_cap = if dp.has_steering() || has_peers {
        IDLE_WAIT_CAP_MESH
    } else {
        IDLE_WAIT_CAP
    };
    loop {
        let t0 = std::time::Instant::now();
        let now = Instant::from_micros(t0.duration_since(epoch).as_micros() as u64);
        let unix_now = unix_base + now.saturating_since(unix_base_at).as_micros() as u64;
        if iterations.is_multiple_of(64) {
            dp.engine.app_mut().on_wall_clock(unix_now / 1_000_000);
        }
        iterations += 1;
        let sent_before = dp.counters.tx_frames;
        let n = dp.poll(now, unix_now);
        // Only an iteration that did work is timed (an idle spin reads the clock once).
        let iteration = if n > 0 || !dp.engine.events.request_us.is_empty() {
            t0.elapsed()
        } else {
            Duration::ZERO
        };
        if n > 0 {
            latency.record(Metric::Loop, iteration.as_nanos() as u64);
        }
        for us in dp.engine.events.handshake_us.drain(..) {
            latency.record(Metric::Handshake, us);
        }
        for us in dp.engine.events.lifetime_us.drain(..) {
            latency.record(Metric::Lifetime, us);
        }
        // The engine measures in loop-iteration time (`now` is read once); the TX ring is
        // handed the batch at the end of the iteration, so that time is added.
        let flush_us = iteration.as_micros() as u64;
        for us in dp.engine.events.request_us.drain(..) {
            latency.record(Metric::Request, us + flush_us);
        }
        match phase.load(Ordering::Relaxed) {
            DRAINING if drain_until.is_none() => {
                drain_until = Some(now + grace);
                last_sweep = now;
                dp.with_sink(&mut |e, mut sink| e.begin_shutdown(now, &mut sink));
            }
            // Keep-alive connections that finish their response during the grace period are
            // closed as soon as they are idle (a sweep every 100 ms).
            DRAINING if now.saturating_since(last_sweep) >= Duration::from_millis(100) => {
                last_sweep = now;
                dp.with_sink(&mut |e, mut sink| e.begin_shutdown(now, &mut sink));
            }
            _ => {}
        }
        let done = match drain_until {
            Some(t) => dp.engine.connections() == 0 || now >= t,
            None => false,
        };
        if done {
            dp.with_sink(&mut |e, mut sink| e.abort_all(now, &mut sink));
            // Let the resets leave.
            for _ in 0..10 {
                dp.poll(clock(), unix_micros());
            }
        }
        if done || now.saturating_since(last_report) >= Duration::from_secs(1) {
            last_report = now;
            unix_base = unix_micros();
            unix_base_at = now;
            let app = dp.engine.app();
            let report = Report {
                worker: index,
                queue: dp.io.queue_id(),
                core: Some(core),
                frames: dp.counters.clone(),
                tcp: dp.engine.counters().clone(),
                app: app.counters(),
                xsk: dp.io.queue_counters(),
                states: dp.engine.state_counts(),
                latency: std::mem::take(&mut latency),
                requests: app.requests(),
                last: done,
            };
            let _ = reports.send(Message::Report(Box::new(report)));
        }
        if done {
            return;
        }
        // Idle: wait for frames, or until the engine's next timer (bounded). Only this path
        // reads the clock again and asks for the deadline; a busy loop never gets here.
        // Connections that wait for transmit room and got some this iteration go on at once;
        // if the ring gave none, the loop waits at most 1 ms (the kernel completes frames
        // meanwhile, and completions do not wake the wait) rather than spin.
        let tx_waiting = dp.engine.tx_waiting() > 0;
        let tx_progress = tx_waiting && dp.counters.tx_frames > sent_before;
        if n == 0 && !tx_progress && !spin {
            let cap = if tx_waiting {
                idle_cap.min(Duration::from_millis(1))
            } else {
                idle_cap
            };
            let wait = idle_timeout(clock(), dp.engine.next_deadline(), cap);
            dp.io.idle_wait(wait);
        }
    }
}

/// Longest idle wait of a worker that has a queue to itself: bounds how late it notices a
/// shutdown, sends its once-a-second report, or runs a timer the wheel reports late.
const IDLE_WAIT_CAP: Duration = Duration::from_millis(10);

/// Longest idle wait of a worker in a mesh or with a mailbox: frames and messages other
/// workers send it come through channels that poll(2) on the XSK cannot see, so it looks as
/// often as before.
const IDLE_WAIT_CAP_MESH: Duration = Duration::from_millis(1);

/// How long an idle worker waits for frames: until the engine's next deadline, at most `cap`.
/// Rounded up to whole milliseconds (poll(2)'s unit) so that it does not wake just before the
/// deadline and spin; zero when the deadline has come, so its timer runs at once.
fn idle_timeout(now: Instant, next_deadline: Option<Instant>, cap: Duration) -> Duration {
    let Some(deadline) = next_deadline else {
        return cap;
    };
    let until = deadline.saturating_since(now);
    let ms = until.as_micros().div_ceil(1000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_millis(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn idle_wait_lasts_until_the_next_deadline_within_the_cap() {
        let now = Instant::from_millis(5_000);
        // No timer: the cap.
        assert_eq!(idle_timeout(now, None, CAP), CAP);
        // A timer further than the cap: the cap.
        assert_eq!(idle_timeout(now, Some(now + ms(200)), CAP), CAP);
        // A timer within the cap: until it, in whole milliseconds rounded up.
        assert_eq!(idle_timeout(now, Some(now + ms(4)), CAP), ms(4));
        assert_eq!(
            idle_timeout(now, Some(now + Duration::from_micros(4_001)), CAP),
            ms(5)
        );
        assert_eq!(
            idle_timeout(now, Some(now + Duration::from_micros(1)), CAP),
            ms(1),
            "not a zero wait that spins before the deadline"
        );
        // A timer due now or overdue: no wait.
        assert_eq!(idle_timeout(now, Some(now), CAP), Duration::ZERO);
        assert_eq!(
            idle_timeout(now, Some(Instant::from_millis(4_000)), CAP),
            Duration::ZERO
        );
        assert_eq!(idle_timeout(now, Some(Instant::NEVER), CAP), CAP);
        // The mesh cap keeps the old 1 ms.
        assert_eq!(
            idle_timeout(now, Some(now + ms(40)), IDLE_WAIT_CAP_MESH),
            ms(1)
        );
    }
}
