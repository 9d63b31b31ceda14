//! Diagnostics on stderr. The library reports through the [`log`] facade (warnings, the ready
//! line, shutdown progress; the live statistics line at `info` under the target
//! `synack::stats`); a program picks the backend. [`init`] installs the one `synack serve` and
//! the examples use: one line per record, an RFC 3339 UTC timestamp and the level first, e.g.
//!
//! ```text
//! 2026-12-03T06:54:19.123Z INFO  synack: serving 10.0.0.1:80 on eth0 (1 queue, XDP native mode, cores [1])
//! ```
//!
//! `RUST_LOG` filters as env_logger documents (default `info`; `RUST_LOG=warn` hides the ready
//! and live lines). The final statistics summary is not a log record: it stays plain text.

use std::io::Write as _;

/// Installs the stderr logger (env_logger: timestamp in UTC with milliseconds, level,
/// message). Call once, early in `main`; a second call (or another logger installed first)
/// is ignored.
pub fn init() {
    let _ = env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .parse_default_env()
        .format(|buf, record| {
            writeln!(
                buf,
                "{} {:<5} {}",
                buf.timestamp_millis(),
                record.level(),
                record.args()
            )
        })
        .target(env_logger::Target::Stderr)
        .try_init();
}
