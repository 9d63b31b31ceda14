//! `synack serve`: the HTTP responder for files (`--root`) or a fixed body (`--body`), as one
//! application on the library's public API ([`Server`]); this module adds only what a binary
//! chooses: loading the content, the access log, and signals (SIGINT/SIGTERM stop gracefully,
//! SIGUSR1 writes the statistics files, SIGHUP reopens the access log and reads `--root` again).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{AccessLogFormatArg, ServeArgs};
use crate::http::{AccessLog, AccessLogFormat, AccessLogReopen, LoadLimits, StaticOptions};
use crate::http::{Content, HttpApp, HttpConfig, HttpTask, StaticFiles};
use crate::signals::Signal;
use crate::{Mailbox, ServeError, Server, ServerHandle};

/// What SIGHUP does, run in order on the signal relay thread (off the datapath, while the
/// workers keep serving). Each reloadable part adds a field and a step to [`Reload::run`].
#[derive(Default)]
pub(crate) struct Reload {
    /// Reopen the access log by its name (logrotate moved the file away).
    pub(crate) access_log: Option<AccessLogReopen>,
    /// Read `--root` again and hand the new content to every worker (shared with `--watch`).
    pub(crate) content: Option<Arc<ContentReload>>,
}

impl Reload {
    /// Runs every reload step.
    pub(crate) fn run(&self) {
        if let Some(log) = &self.access_log {
            log.reopen();
            log::info!("synack: SIGHUP: reopening the access log");
        }
        if let Some(content) = &self.content {
            content.run("SIGHUP");
        }
    }
}

/// Reloading `--root`: the new content is read here, on the relay thread, into a new
/// [`Content`]; each worker then swaps it in between two iterations of its loop (an
/// [`HttpTask`] through the workers' mailboxes). Responses in flight keep the bytes of the old
/// content; the old content is freed when the last of them is sent. A root that cannot be read
/// leaves every worker serving what it served.
pub(crate) struct ContentReload {
    root: PathBuf,
    limits: LoadLimits,
    options: StaticOptions,
    /// Worker 0's mailbox, sent by its factory once the workers exist.
    mailbox: crossbeam::channel::Receiver<Mailbox<HttpTask<StaticFiles>>>,
    known: std::sync::OnceLock<Mailbox<HttpTask<StaticFiles>>>,
    /// One reload at a time (SIGHUP and `--watch` may ask at once).
    running: std::sync::Mutex<()>,
}

impl ContentReload {
    /// Reloads, saying `why` (`SIGHUP`, `--watch`) in its log lines.
    fn run(&self, why: &str) {
        let _one = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mailbox) = self.known.get().or_else(|| {
            self.mailbox
                .try_recv()
                .ok()
                .map(|m| self.known.get_or_init(|| m))
        }) else {
            log::warn!("synack: {why}: the workers are not running yet; content not reloaded");
            return;
        };
        let started = std::time::Instant::now();
        let (content, report) = match Content::load_dir(&self.root, self.limits, &self.options) {
            Ok(c) => c,
            Err(e) => {
                log::error!(
                    "synack: {why}: cannot read --root {}: {e}; still serving the content loaded before",
                    self.root.display()
                );
                return;
            }
        };
        let content = Arc::new(content);
        let mut missed = 0;
        for worker in 0..mailbox.workers() {
            let mut task = swap_task(content.clone());
            // A full mailbox drains within a loop iteration; a stopped worker never will.
            let mut tries = 0;
            while let Err(back) = mailbox.send(worker, task) {
                tries += 1;
                if tries > 1000 {
                    missed += 1;
                    break;
                }
                task = back;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if missed > 0 {
            log::warn!(
                "synack: {why}: {missed} worker(s) did not take the new content (stopping?)"
            );
        }
        log::info!(
            "synack: {why}: reloaded {} in {} ms: {report:?}",
            self.root.display(),
            started.elapsed().as_millis()
        );
    }
}

/// The task that makes a worker serve `content`.
fn swap_task(content: Arc<Content>) -> HttpTask<StaticFiles> {
    Box::new(move |app: &mut HttpApp<StaticFiles>, _now| {
        app.handler_mut().replace(content);
        app.handler_changed();
    })
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
    let options = StaticOptions {
        precompressed: args.precompressed,
        cache_control: args.cache_control.clone(),
    };
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
            let (c, report) = Content::load_dir(dir, LoadLimits::default(), &options)
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
    if let Some(log) = &access_log {
        // The logger thread formats and writes every line: off the workers' cores when the
        // machine has another (on a busy worker's core it takes its time slices).
        let (allowed, workers) = crate::server::worker_cores(&args.server)?;
        if let Some(core) = allowed.iter().find(|c| !workers.contains(c)) {
            log.run_on_core(*core);
        }
    }
    let (mailbox_tx, mailbox_rx) = crossbeam::channel::bounded(1);
    let reload = Reload {
        access_log: access_log.as_ref().map(AccessLog::reopener),
        content: args
            .root
            .clone()
            .filter(|_| args.body.is_none())
            .map(|root| {
                Arc::new(ContentReload {
                    root,
                    limits: LoadLimits::default(),
                    options: options.clone(),
                    mailbox: mailbox_rx,
                    known: std::sync::OnceLock::new(),
                    running: std::sync::Mutex::new(()),
                })
            }),
    };
    let stop_watch = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = match (&reload.content, args.watch) {
        (Some(content), true) => {
            let content = content.clone();
            let root = content.root.clone();
            Some(
                crate::watch::spawn(root, stop_watch.clone(), move || content.run("--watch"))
                    .map_err(|e| ServeError(format!("cannot watch --root (--watch): {e}")))?,
            )
        }
        _ => None,
    };
    let signals = crate::signals::listen()
        .map_err(|e| ServeError(format!("cannot start signal thread: {e}")))?;
    let server = Server::from_args(args.server);
    let handle = server.handle();
    std::thread::Builder::new()
        .name("synack-signal-relay".into())
        .spawn(move || relay(signals, handle, reload))
        .map_err(|e| ServeError(format!("cannot start signal thread: {e}")))?;
    let result = server.run(|worker| {
        if worker.index() == 0 {
            // Any worker's mailbox reaches them all: the reload thread keeps one.
            let _ = mailbox_tx.try_send(worker.mailbox());
        }
        let app = HttpApp::new(http_cfg.clone(), StaticFiles::new(content.clone()));
        match &access_log {
            // The queue is allocated here, on the worker's thread before its loop starts.
            Some(log) => app.with_access_log(log.sink()),
            None => app,
        }
    });
    stop_watch.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(w) = watcher {
        let _ = w.join();
    }
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
