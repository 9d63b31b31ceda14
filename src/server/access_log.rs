//! The access log's file and the thread that writes it ([`AccessLog`]). The workers' side
//! (records, formatting into buffers of their own, the queues) is `http::access_log`, which
//! makes no system call: this module owns the file, the thread, its core and its pace.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::http::access_log::{Queues, chunk_plan};
use crate::http::{AccessLogFormat, AccessLogSink};

/// What the logger thread and the handles share.
struct Shared {
    queues: Mutex<Vec<Arc<Queues>>>,
    reopen: AtomicBool,
    stop: AtomicBool,
    /// Each worker's buffers: how many, and the bytes of each.
    chunks: usize,
    chunk_bytes: usize,
    format: AccessLogFormat,
    /// A core the logger thread should move to (`usize::MAX`: none asked for).
    pin: AtomicUsize,
}

/// The access log: the file, the logger thread that writes it, and the workers' queues.
/// Start it before the server, give each worker a [`sink`](Self::sink), and
/// [`finish`](Self::finish) it after the server has stopped (it writes what is left).
pub struct AccessLog {
    shared: Arc<Shared>,
    thread: JoinHandle<io::Result<()>>,
}

/// Makes the logger thread reopen the access log file by its name (after logrotate moved
/// it). Cheap to clone; [`reopen`](Self::reopen) only sets a flag the thread looks at
/// within a few milliseconds.
#[derive(Clone)]
pub struct AccessLogReopen {
    shared: Arc<Shared>,
}

impl AccessLogReopen {
    /// Asks the logger thread to close and reopen the file (created if missing, else
    /// appended to). If that fails the thread logs why and keeps writing to the old file.
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Release);
    }
}

fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl AccessLog {
    /// Opens (creates or appends to) `path` and starts the logger thread. Each worker gets
    /// room for about `queue_lines` lines (at least two buffers of two of the longest lines;
    /// 128 bytes a line, in buffers of at most 64 KiB) waiting for the writer.
    pub fn open(path: &Path, format: AccessLogFormat, queue_lines: u64) -> io::Result<AccessLog> {
        let file = open_file(path)?;
        let (chunks, chunk_bytes) = chunk_plan(queue_lines);
        let shared = Arc::new(Shared {
            queues: Mutex::new(Vec::new()),
            reopen: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            chunks,
            chunk_bytes,
            format,
            pin: AtomicUsize::new(usize::MAX),
        });
        let path = path.to_path_buf();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("synack-access-log".into())
            .spawn(move || {
                let r = writer_loop(&s, &path, file);
                if let Err(e) = &r {
                    // The queues fill up from now on: lines are dropped and counted.
                    log::error!(
                        "synack: cannot write the access log {}: {e}; no more lines are written",
                        path.display()
                    );
                }
                r
            })?;
        Ok(AccessLog { shared, thread })
    }

    /// A new queue for one worker, with its buffers. Call it once per worker, off the
    /// datapath (in the server's factory, say): the buffers are allocated here.
    pub fn sink(&self) -> AccessLogSink {
        let (sink, queues) =
            AccessLogSink::new(self.shared.chunks, self.shared.chunk_bytes, self.shared.format);
        self.shared
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(queues);
        sink
    }

    /// Runs the logger thread on `core` from now on (`synack serve` gives it the first core
    /// it may use that is not in `--cores`, when there is one). It only writes buffers the
    /// workers filled: one `write(2)` per buffer (64 KiB by default): about 1,400 a second at
    /// 90 MB/s of lines.
    pub fn run_on_core(&self, core: usize) {
        self.shared.pin.store(core, Ordering::Release);
    }

    /// A handle that makes the logger reopen the file (for a signal thread).
    pub fn reopener(&self) -> AccessLogReopen {
        AccessLogReopen {
            shared: self.shared.clone(),
        }
    }

    /// Writes every buffer still queued and stops the logger thread. Call it once the
    /// workers have stopped (and their `HttpApp`s are dropped: each hands over its last
    /// buffer then).
    pub fn finish(self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| io::Error::other("the access log thread panicked"))?
    }
}

/// The logger thread: writes the buffers the workers hand over, in the order each worker
/// filled them, and returns them; reopens on request; drains once more and ends on stop.
fn writer_loop(shared: &Shared, path: &Path, mut file: File) -> io::Result<()> {
    let mut pace = Pace::new(shared.chunks);
    loop {
        // Read before draining: the workers had stopped when it was set, so this drain
        // sees everything they pushed.
        let stopping = shared.stop.load(Ordering::Acquire);
        let core = shared.pin.swap(usize::MAX, Ordering::AcqRel);
        if core != usize::MAX && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
        {
            log::warn!("synack: the access log thread could not move to core {core}");
        }
        if shared.reopen.swap(false, Ordering::AcqRel) {
            match open_file(path) {
                Ok(f) => file = f,
                Err(e) => log::error!(
                    "synack: cannot reopen access log {}: {e}; still writing to the old file",
                    path.display()
                ),
            }
        }
        // The most buffers one worker had waiting.
        let mut most = 0usize;
        {
            let queues = shared.queues.lock().unwrap_or_else(|e| e.into_inner());
            for q in queues.iter() {
                most = most.max(q.drain(|c| file.write_all(c))?);
            }
        }
        if stopping && most == 0 {
            return Ok(());
        }
        std::thread::sleep(pace.next(most, std::time::Instant::now()));
    }
}

/// How long the logger sleeps between rounds. It shares a core with busy workers when there
/// is no other, and every wake-up preempts one: so it wakes about when a quarter of a worker's
/// buffers will have filled at the rate of the last round (each wake then writes several
/// buffers), between 1 and 8 ms; idle, every 5 ms. It sleeps 8 ms only at rates where a
/// worker's buffers would last four times that, and the default 1 MiB of them lasts 8 ms up
/// to 128 MB/s of lines (a worker formats at most about 90 MB/s).
struct Pace {
    /// Buffers to find waiting at each wake-up.
    target: u32,
    last: std::time::Instant,
}

impl Pace {
    const MIN: Duration = Duration::from_millis(1);
    const MAX: Duration = Duration::from_millis(8);
    const IDLE: Duration = Duration::from_millis(5);

    fn new(chunks: usize) -> Pace {
        Pace {
            target: (chunks / 4).max(1) as u32,
            last: std::time::Instant::now(),
        }
    }

    /// The sleep after a round that found at most `found` buffers waiting at one worker.
    fn next(&mut self, found: usize, now: std::time::Instant) -> Duration {
        let since = now.saturating_duration_since(self.last);
        self.last = now;
        if found == 0 {
            return Self::IDLE;
        }
        // `found` buffers filled in `since` (plus this round's own time, ignored).
        (since * self.target / found.min(u32::MAX as usize) as u32).clamp(Self::MIN, Self::MAX)
    }
}


#[cfg(test)]
mod tests {
    #[test]
    fn the_logger_wakes_when_a_quarter_of_the_buffers_is_full() {
        use std::time::Duration as D;
        let t0 = std::time::Instant::now();
        let mut p = super::Pace::new(16);
        p.last = t0;
        // 4 buffers (a quarter) in 3 ms: again in 3 ms.
        assert_eq!(p.next(4, t0 + D::from_millis(3)), D::from_millis(3));
        // 8 in 3 ms: half the time.
        let t1 = t0 + D::from_millis(6);
        assert_eq!(p.next(8, t1), D::from_micros(1500));
        // Slow: at most 8 ms; very fast: at least 1 ms; idle: 5 ms.
        assert_eq!(p.next(1, t1 + D::from_millis(5)), D::from_millis(8));
        assert_eq!(p.next(16, t1 + D::from_millis(6)), D::from_millis(1));
        assert_eq!(p.next(0, t1 + D::from_millis(7)), D::from_millis(5));
        // Two buffers in all: one at each wake-up.
        assert_eq!(super::Pace::new(2).target, 1);
    }

}
