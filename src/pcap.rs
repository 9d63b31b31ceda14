//! Packet capture of the bypass path (`--pcap FILE`): tcpdump cannot see frames that XDP
//! redirects, so the workers copy what they receive and send to a writer thread.
//!
//! Classic libpcap format (magic 0xa1b2c3d4, version 2.4, LINKTYPE_ETHERNET), readable by
//! `tcpdump -r` and Wireshark. Capture is bounded by a frame count; frames that would block a
//! worker (the writer lags) are dropped and counted instead.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

/// The longest a captured frame waits in the writer's buffer.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

const SNAPLEN: u32 = 65535;
const LINKTYPE_ETHERNET: u32 = 1;

/// Writes the global header; returns the writer.
pub fn write_header<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?; // thiszone
    w.write_all(&0u32.to_le_bytes())?; // sigfigs
    w.write_all(&SNAPLEN.to_le_bytes())?;
    w.write_all(&LINKTYPE_ETHERNET.to_le_bytes())
}

/// Writes one record: `unix_us` is the capture time in microseconds since the epoch.
pub fn write_record<W: Write>(w: &mut W, unix_us: u64, frame: &[u8]) -> io::Result<()> {
    let caplen = frame.len().min(SNAPLEN as usize);
    w.write_all(&((unix_us / 1_000_000) as u32).to_le_bytes())?;
    w.write_all(&((unix_us % 1_000_000) as u32).to_le_bytes())?;
    w.write_all(&(caplen as u32).to_le_bytes())?;
    w.write_all(&(frame.len() as u32).to_le_bytes())?;
    w.write_all(&frame[..caplen])
}

/// Shared capture counters.
#[derive(Default, Debug)]
pub struct CaptureStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
}

/// The workers' handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Capture {
    tx: Sender<(u64, Vec<u8>)>,
    remaining: Arc<AtomicU64>,
    stats: Arc<CaptureStats>,
}

impl Capture {
    /// Copies a frame for the writer, if the budget allows and the queue has room.
    pub fn frame(&self, unix_us: u64, frame: &[u8]) {
        // Take one frame from the budget, atomically across workers.
        let took = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if took.is_err() {
            return;
        }
        match self.tx.try_send((unix_us, frame.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }
}

/// The writer thread; dropping every `Capture` ends it, `finish` waits for it.
pub struct CaptureWriter {
    handle: Option<JoinHandle<io::Result<()>>>,
}

impl CaptureWriter {
    /// Creates `path` and starts the writer. At most `max_frames` frames are written.
    pub fn start(path: &Path, max_frames: u64) -> io::Result<(Capture, CaptureWriter)> {
        let file = File::create(path)?;
        let mut w = BufWriter::new(file);
        write_header(&mut w)?;
        w.flush()?;
        let (tx, rx) = bounded::<(u64, Vec<u8>)>(16384);
        let stats = Arc::new(CaptureStats::default());
        let s2 = stats.clone();
        let handle = std::thread::Builder::new()
            .name("synack-pcap".into())
            .spawn(move || run(rx, w, s2))?;
        Ok((
            Capture {
                tx,
                remaining: Arc::new(AtomicU64::new(max_frames)),
                stats,
            },
            CaptureWriter {
                handle: Some(handle),
            },
        ))
    }

    /// Waits for the writer to drain (all `Capture`s must be dropped first).
    pub fn finish(mut self) -> io::Result<()> {
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("pcap writer panicked")),
            None => Ok(()),
        }
    }
}

fn run(
    rx: Receiver<(u64, Vec<u8>)>,
    mut w: BufWriter<File>,
    stats: Arc<CaptureStats>,
) -> io::Result<()> {
    // Flushed whenever the queue runs empty (a batch written), so the file is readable with
    // `tcpdump -r` while synack runs; a busy capture is flushed at least every second.
    let mut flushed = Instant::now();
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok((ts, frame)) => {
                write_record(&mut w, ts, &frame)?;
                stats.written.fetch_add(1, Ordering::Relaxed);
                if rx.is_empty() || flushed.elapsed() >= FLUSH_EVERY {
                    w.flush()?;
                    flushed = Instant::now();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut v = Vec::new();
        write_header(&mut v).unwrap();
        assert_eq!(v.len(), 24);
        assert_eq!(&v[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        write_record(&mut v, 1_500_000, &[1, 2, 3]).unwrap();
        assert_eq!(v.len(), 24 + 16 + 3);
        assert_eq!(&v[24..28], &1u32.to_le_bytes());
        assert_eq!(&v[28..32], &500_000u32.to_le_bytes());
        assert_eq!(&v[32..36], &3u32.to_le_bytes());
    }

    /// What was captured is in the file while the capture still runs.
    #[test]
    fn capture_is_flushed_as_it_goes() {
        let dir = std::env::temp_dir().join(format!("synack-pcap-f-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pcap");
        let (cap, writer) = CaptureWriter::start(&path, 100).unwrap();
        cap.frame(1, &[7; 60]);
        let want = 24 + 16 + 60;
        let t0 = Instant::now();
        while std::fs::metadata(&path).unwrap().len() < want && t0.elapsed() < FLUSH_EVERY * 3 {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), want);
        drop(cap);
        writer.finish().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn capture_is_bounded() {
        let dir = std::env::temp_dir().join(format!("synack-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pcap");
        let (cap, writer) = CaptureWriter::start(&path, 3).unwrap();
        for i in 0..10u8 {
            cap.frame(1, &[i; 60]);
        }
        drop(cap);
        writer.finish().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len, 24 + 3 * (16 + 60));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
