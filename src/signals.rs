//! Process signals as messages. SIGINT, SIGTERM, SIGUSR1 and SIGHUP are blocked in every thread (call
//! [`block`] before spawning any) and taken by one thread with sigwait(2), which forwards them
//! over a channel. No async-signal-safety puzzles: the handler is an ordinary thread.
#![allow(unsafe_code)]

use crossbeam::channel::{Receiver, unbounded};

/// A signal, as the signal thread reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT or SIGTERM: shut down gracefully.
    Stop,
    /// SIGUSR1: write statistics files now.
    Dump,
    /// SIGHUP: reload (`synack serve` reopens its access log, for logrotate's `postrotate`).
    /// A program that ignores it keeps serving: once [`block`]ed, SIGHUP no longer ends the
    /// process.
    Reload,
}

fn set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialize and fill a sigset_t we own; zeroed memory is a
    // valid starting value for it.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        libc::sigaddset(&mut s, libc::SIGINT);
        libc::sigaddset(&mut s, libc::SIGTERM);
        libc::sigaddset(&mut s, libc::SIGUSR1);
        libc::sigaddset(&mut s, libc::SIGHUP);
        s
    }
}

/// Blocks the signals in the calling thread; threads spawned afterwards inherit the mask.
pub fn block() -> std::io::Result<()> {
    let s = set();
    // SAFETY: `s` is a valid, initialized signal set; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &s, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Starts the signal thread; signals arrive on the returned channel.
pub fn listen() -> std::io::Result<Receiver<Signal>> {
    let (tx, rx) = unbounded();
    std::thread::Builder::new()
        .name("synack-signals".into())
        .spawn(move || {
            let s = set();
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: `s` is a valid signal set blocked in this thread (inherited), and
                // `sig` is a valid place for the result.
                let rc = unsafe { libc::sigwait(&s, &mut sig) };
                if rc != 0 {
                    continue;
                }
                let msg = match sig {
                    libc::SIGUSR1 => Signal::Dump,
                    libc::SIGHUP => Signal::Reload,
                    _ => Signal::Stop,
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
        })?;
    Ok(rx)
}
