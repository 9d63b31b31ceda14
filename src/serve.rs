//! `synack serve`: the HTTP responder for files (`--root`) or a fixed body (`--body`), as one
//! application on the library's public API ([`Server`]); this module adds only what a binary
//! chooses: loading the content, and signals (SIGINT/SIGTERM stop gracefully, SIGUSR1 writes
//! the statistics files).

use std::sync::Arc;
use std::time::Duration;

use crate::cli::ServeArgs;
use crate::http::{Content, HttpApp, HttpConfig, StaticFiles};
use crate::http::{LoadLimits, StaticOptions};
use crate::{ServeError, Server};

/// Runs `synack serve` until SIGINT or SIGTERM, then prints the final statistics.
pub fn run(args: ServeArgs) -> Result<(), ServeError> {
    let content = match (&args.body, &args.root) {
        (Some(b), _) => Content::fixed(b.as_bytes().to_vec(), "text/plain"),
        (None, Some(dir)) => {
            if let Some(v) = &args.cache_control
                && v.bytes().any(|b| b != b'\t' && (b < b' ' || b == 0x7f))
            {
                return Err(ServeError(
                    "--cache-control: the value has control characters".into(),
                ));
            }
            let options = StaticOptions {
                precompressed: args.precompressed,
                cache_control: args.cache_control.clone(),
            };
            let (c, report) = Content::load_dir(dir, LoadLimits::default(), &options)
                .map_err(|e| ServeError(format!("cannot load --root {}: {e}", dir.display())))?;
            eprintln!("synack: loaded {}: {report:?}", dir.display());
            c
        }
        (None, None) => {
            return Err(ServeError(
                "say what to serve: --body TEXT or --root DIR".into(),
            ));
        }
    };
    let content = Arc::new(content);
    let http_cfg = HttpConfig {
        header_timeout: Duration::from_secs(args.header_timeout),
        keepalive_timeout: Duration::from_secs(args.keepalive_timeout),
        send_timeout: Duration::from_secs(args.send_timeout),
        max_requests: args.max_requests,
        max_body: args.max_body,
        // Request latency comes from the engine's send markers instead.
        service_time_capacity: 0,
        ..HttpConfig::default()
    };

    // Signals are blocked before any thread starts, so only the signal thread takes them.
    crate::signals::block().map_err(|e| ServeError(format!("cannot block signals: {e}")))?;
    let signals = crate::signals::listen()
        .map_err(|e| ServeError(format!("cannot start signal thread: {e}")))?;
    let server = Server::from_args(args.server);
    let handle = server.handle();
    std::thread::Builder::new()
        .name("synack-signal-relay".into())
        .spawn(move || {
            while let Ok(sig) = signals.recv() {
                match sig {
                    crate::signals::Signal::Stop => {
                        handle.stop();
                        break;
                    }
                    crate::signals::Signal::Dump => handle.dump_stats(),
                }
            }
        })
        .map_err(|e| ServeError(format!("cannot start signal thread: {e}")))?;
    let stats =
        server.run(|_| HttpApp::new(http_cfg.clone(), StaticFiles::new(content.clone())))?;
    eprint!("{}", stats.summary());
    Ok(())
}
