//! `synack serve`: the HTTP responder for files (`--root`) or a fixed body (`--body`), as one
//! application on the library's public API ([`Server`]); this module adds only what a binary
//! chooses: loading the content, the access log, and signals (SIGINT/SIGTERM stop gracefully,
//! SIGUSR1 writes the statistics files, SIGHUP reloads: see [`Reload`]).

use std::sync::Arc;
use std::time::Duration;

use crate::cli::{AccessLogFormatArg, ServeArgs};
use crate::http::{AccessLog, AccessLogFormat, AccessLogReopen, LoadLimits};
use crate::http::{Content, HttpApp, HttpConfig, StaticFiles};
use crate::signals::Signal;
use crate::{ServeError, Server, ServerHandle};

/// What SIGHUP does, run in order on the signal relay thread (off the datapath, while the
/// workers keep serving). Each reloadable part adds a field and a step to [`Reload::run`].
#[derive(Default)]
pub struct Reload {
    /// Reopen the access log by its name (logrotate moved the file away).
    pub access_log: Option<AccessLogReopen>,
}

impl Reload {
    /// Runs every reload step.
    pub fn run(&self) {
        if let Some(log) = &self.access_log {
            log.reopen();
            log::info!("synack: SIGHUP: reopening the access log");
        }
    }
}

/// Relays the signal thread's signals to the server until a stop: SIGINT/SIGTERM stop it,
/// SIGUSR1 writes the statistics files, SIGHUP runs `reload`.
fn relay(signals: crossbeam::channel::Receiver<Signal>, handle: ServerHandle, reload: Reload) {
    while let Ok(sig) = signals.recv() {
        match sig {
            Signal::Stop => {
                handle.stop();
                break;
            }
            Signal::Dump => handle.dump_stats(),
            Signal::Reload => reload.run(),
        }
    }
}

/// Runs `synack serve` until SIGINT or SIGTERM, then prints the final statistics.
pub fn run(args: ServeArgs) -> Result<(), ServeError> {
    let content = match (&args.body, &args.root) {
        (Some(b), _) => Content::fixed(b.as_bytes().to_vec(), "text/plain"),
        (None, Some(dir)) => {
            let (c, report) = Content::load_dir(dir, LoadLimits::default())
                .map_err(|e| ServeError(format!("cannot load --root {}: {e}", dir.display())))?;
            log::info!("synack: loaded {}: {report:?}", dir.display());
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
    let access_log = match &args.access_log {
        Some(path) => {
            let format = match args.access_log_format {
                AccessLogFormatArg::Combined => AccessLogFormat::Combined,
                AccessLogFormatArg::Json => AccessLogFormat::Json,
            };
            Some(
                AccessLog::open(path, format, args.access_log_queue).map_err(|e| {
                    ServeError(format!("cannot open --access-log {}: {e}", path.display()))
                })?,
            )
        }
        None => None,
    };
    let reload = Reload {
        access_log: access_log.as_ref().map(AccessLog::reopener),
    };
    let signals = crate::signals::listen()
        .map_err(|e| ServeError(format!("cannot start signal thread: {e}")))?;
    let server = Server::from_args(args.server);
    let handle = server.handle();
    std::thread::Builder::new()
        .name("synack-signal-relay".into())
        .spawn(move || relay(signals, handle, reload))
        .map_err(|e| ServeError(format!("cannot start signal thread: {e}")))?;
    let result = server.run(|_| {
        let app = HttpApp::new(http_cfg.clone(), StaticFiles::new(content.clone()));
        match &access_log {
            // The queue is allocated here, on the worker's thread before its loop starts.
            Some(log) => app.with_access_log(log.sink()),
            None => app,
        }
    });
    // The workers have stopped: what they queued is written before the summary.
    if let Some(log) = access_log
        && let Err(e) = log.finish()
    {
        log::error!("synack: access log: {e}");
    }
    let stats = result?;
    eprint!("{}", stats.summary());
    Ok(())
}
