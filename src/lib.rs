//! synack: a kernel-bypass TCP/HTTP server over AF_XDP.
//!
//! Layers, bottom up (see `docs/ARCHITECTURE.md`):
//! - [`xdp`]: the XDP program loader and the AF_XDP rings/UMEM (the only `unsafe` code);
//! - [`wire`]: zero-copy views and in-place builders for Ethernet, IPv4 and TCP;
//! - [`tcp`]: the sans-IO TCP engine (RFC 9293 and friends);
//! - [`http`]: the HTTP/1.1 responder that plugs into the engine;
//! - [`worker`]: one core's loop joining them; [`stats`]: counters and latency histograms.
#![deny(unsafe_code)]

pub mod check;
pub mod cli;
pub mod flows;
pub mod http;
pub mod netdev;
pub mod pcap;
pub mod serve;
pub mod server;
pub mod signals;
pub mod stats;
pub mod tcp;
pub mod time;
pub mod wire;
pub mod worker;
pub mod xdp;

pub use server::{FinalStats, Mailbox, ServeError, Server, ServerHandle, Worker, XdpAttach};
pub use tcp::app::{App, AppIo, CloseReason, ConnId, ConnInfo, Wakeups};
pub use time::Instant;
