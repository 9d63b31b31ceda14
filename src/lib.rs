//! synack: a kernel-bypass TCP server framework for Linux, over AF_XDP.
//!
//! A small XDP program steers the served addresses and ports into AF_XDP sockets, one per NIC
//! queue; a pinned worker per queue runs a sans-IO TCP engine and your application on it.
//! Start with [`Server`] and [`App`] (TCP level) or [`http::Handler`] (HTTP level); the guide
//! is `docs/LIBRARY.md`, the examples are in `examples/`.
//!
//! Inside, bottom up (see `docs/ARCHITECTURE.md`): `xdp` (XDP program, AF_XDP rings and UMEM,
//! the only `unsafe` code), `wire` (zero-copy views and builders for Ethernet, IPv4, TCP),
//! `tcp` (the engine, RFC 9293 and friends), `worker` (one core's loop), `server` (the
//! builder, workers and shutdown), `stats` (counters, histograms, metrics). These internals are
//! public only with the `internals` feature, which the crate's own tests and benchmarks use:
//! they are not part of the API.
#![deny(unsafe_code)]

/// Internal modules: `pub` (hidden from the docs) with the `internals` feature, for the
/// crate's own integration tests and benchmarks; private otherwise.
macro_rules! internal {
    ($($(#[$m:meta])* $name:ident;)*) => {
        $(
            $(#[$m])*
            #[cfg(feature = "internals")]
            #[doc(hidden)]
            pub mod $name;
            $(#[$m])*
            #[cfg(not(feature = "internals"))]
            mod $name;
        )*
    };
}

pub mod check;
pub mod cli;
pub mod config;
pub mod http;
pub mod load;
pub mod logging;
pub mod serve;
pub mod signals;

internal! {
    flows;
    instance;
    netdev;
    pcap;
    server;
    stats;
    tcp;
    time;
    watch;
    wire;
    worker;
    xdp;
}

/// The guide to building on synack (`docs/LIBRARY.md`); its example is compiled as a test.
#[doc = include_str!("../docs/LIBRARY.md")]
pub mod guide {}

pub use server::{
    Client, FinalStats, Mailbox, ServeError, Server, ServerHandle, Worker, XdpAttach,
};
pub use tcp::app::{
    App, AppIo, AppMetric, CloseReason, ConnId, ConnInfo, ConnectError, MetricKind, Opener, Wakeups,
};
pub use time::Instant;
