//! The TCP engine: a sans-IO implementation of the server side of RFC 9293.
//!
//! Inputs are segments (`on_segment`) and the passage of time (`on_tick`); outputs are segments
//! written to a [`segment::SegmentSink`] and bytes handed to an [`app::App`].

pub mod app;
pub mod buffer;
pub mod config;
pub mod congestion;
pub mod conn;
pub mod counters;
pub mod engine;
pub mod isn;
pub(crate) mod ports;
pub mod rack;
pub mod rto;
pub mod scoreboard;
pub mod segment;
pub mod state;
pub mod syncookie;
pub mod table;
/// Test support (a collecting sink, a small application): for the crate's tests and benches.
#[cfg(any(test, feature = "internals"))]
pub mod testkit;
pub mod time_wait;
pub mod timer;
