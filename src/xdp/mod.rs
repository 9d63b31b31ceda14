//! The XDP program loader and the in-house AF_XDP layer: the only place besides
//! `src/signals.rs` where synack uses `unsafe`, each block with its `// SAFETY:` reasoning.
//!
//! Life of a frame: the kernel takes a free frame address from the **fill ring**, DMAs (or, in
//! copy mode, copies) a received frame into the UMEM and posts its address on the **RX ring**;
//! the worker reads it in place, answers by writing new frames into free UMEM frames, posts
//! them on the **TX ring** and kicks the kernel; the kernel sends them and posts their
//! addresses on the **completion ring**; the worker puts the received frame back on the fill
//! ring and the completed ones on its TX free list. See `socket.rs` for the accounting.
#![allow(unsafe_code)]

pub mod program;
pub mod ring;
pub mod socket;
pub mod sys;
pub mod umem;

use std::fmt;
use std::time::Duration;

#[cfg(any(test, feature = "internals"))]
pub use program::ProgramCounters;
pub use program::{Program, probe_native_xdp};
pub use socket::{SocketConfig, XskQueue};
pub use sys::af_xdp_available;
pub(crate) use sys::{memlock_limit, set_memlock_limit};
#[cfg(any(test, feature = "internals"))]
pub use sys::{enter_netns, is_root};

/// How to attach the XDP program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// Native, else skb with a warning.
    Auto,
    Native,
    Skb,
}

/// Per-queue diagnostics the worker reports.
pub trait QueueStats {
    fn queue_id(&self) -> u32;
    fn queue_counters(&self) -> Vec<(&'static str, u64)>;
    /// Sleeps until traffic or `d` passes (not when busy polling).
    fn idle_wait(&mut self, d: Duration);
}

/// What went wrong, and what to do about it.
#[derive(Debug)]
pub enum XdpError {
    Privileges,
    NoAfXdp,
    Load(String),
    Attach {
        iface: String,
        reason: String,
    },
    Bind {
        iface: String,
        queue: u32,
        source: std::io::Error,
    },
    Config(String),
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl XdpError {
    pub fn from_io(what: &str, e: std::io::Error) -> XdpError {
        match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => XdpError::Privileges,
            Some(libc::EAFNOSUPPORT) => XdpError::NoAfXdp,
            _ => XdpError::Io {
                what: what.to_string(),
                source: e,
            },
        }
    }
}

impl fmt::Display for XdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XdpError::Privileges => f.write_str(
                "not permitted to load XDP programs or open AF_XDP sockets: run as root or with \
                 CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_PERFMON and CAP_IPC_LOCK (`synack check` \
                 says which are missing and how to grant them)",
            ),
            XdpError::NoAfXdp => f.write_str(
                "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS is off): use a kernel built with it",
            ),
            XdpError::Load(m) => write!(f, "cannot load the XDP program: {m}"),
            XdpError::Attach { iface, reason } => write!(f, "cannot attach XDP to {iface}: {reason}"),
            XdpError::Bind { iface, queue, source } => {
                write!(f, "cannot bind an AF_XDP socket to {iface} queue {queue}: {source}")?;
                match source.raw_os_error() {
                    Some(libc::EBUSY) => write!(f, " (another AF_XDP socket uses this queue)"),
                    Some(libc::EINVAL) => write!(f, " (does {iface} have queue {queue}? see `ethtool -l {iface}`)"),
                    _ => Ok(()),
                }
            }
            XdpError::Config(m) => f.write_str(m),
            XdpError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for XdpError {}
