//! `synack serve`: checks the request, loads the XDP program, opens one AF_XDP socket per
//! queue, starts one pinned worker per socket and the collector, and shuts down in order on
//! SIGINT/SIGTERM: stop accepting, finish in-flight responses within the grace period, reset
//! the rest, print the final statistics, detach.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam::channel::{Sender, bounded};

use crate::cli::{ServeArgs, SynCookiesArg, XdpModeArg, parse_core_list};
use crate::http::content::LoadLimits;
use crate::http::{Content, HttpApp, HttpConfig, HttpStats};
use crate::netdev::NetDev;
use crate::stats::collector::{self, CollectorConfig, Message};
use crate::stats::{Latency, Metric, Report};
use crate::tcp::config::TcpConfig;
use crate::tcp::engine::{Engine, EngineConfig, SynCookieMode};
use crate::time::Instant;
use crate::worker::Datapath;
use crate::xdp::{self, XdpMode};

/// A failure to start, with what to do about it.
#[derive(Debug)]
pub struct ServeError(pub String);

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

impl From<xdp::XdpError> for ServeError {
    fn from(e: xdp::XdpError) -> Self {
        ServeError(e.to_string())
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ServeError> {
    Err(ServeError(msg.into()))
}

/// Phases of a worker's life, set by the main thread.
const RUNNING: u8 = 0;
const DRAINING: u8 = 1;

/// Random keys for ISNs, cookies and table hashes: from the OS, never fixed.
fn random_secret() -> Result<[u8; 48], ServeError> {
    EngineConfig::random_secret()
        .map_err(|e| ServeError(format!("cannot draw random secret keys from the OS: {e}")))
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Validates the arguments that clap cannot.
fn validate(a: &ServeArgs) -> Result<(), ServeError> {
    if a.body.is_none() && a.root.is_none() {
        return err("say what to serve: --body TEXT or --root DIR");
    }
    if a.queues == 0 {
        return err("--queues must be at least 1");
    }
    if !(a.frame_size == 2048 || a.frame_size == 4096) {
        return err("--frame-size must be 2048 or 4096");
    }
    if a.mtu < 576 || a.mtu as u32 + 14 > a.frame_size {
        return err(format!(
            "--mtu {} does not fit a {}-byte frame (576 to {})",
            a.mtu,
            a.frame_size,
            a.frame_size - 14
        ));
    }
    if !a.ring_size.is_power_of_two() || a.ring_size < 64 {
        return err("--ring-size must be a power of two, at least 64");
    }
    if a.frames < 2 * a.ring_size {
        return err(format!(
            "--frames must be at least twice --ring-size ({})",
            2 * a.ring_size
        ));
    }
    if !(0.0..=1.0).contains(&a.inject_drop) {
        return err("--inject-drop must be between 0 and 1");
    }
    if a.max_conns == 0 || a.max_conns > (1 << 24) {
        return err("--max-conns must be between 1 and 16777216");
    }
    if a.mem_limit < 64 * 1024 {
        return err("--mem-limit must be at least 65536");
    }
    if a.recv_buffer < 4096 || a.recv_buffer > (1 << 30) {
        return err("--recv-buffer must be between 4096 and 1073741824");
    }
    Ok(())
}

pub fn run(args: ServeArgs) -> Result<(), ServeError> {
    validate(&args)?;
    let content = match (&args.body, &args.root) {
        (Some(b), _) => Content::fixed(b.as_bytes().to_vec(), "text/plain"),
        (None, Some(dir)) => {
            let (c, report) = Content::load_dir(dir, LoadLimits::default())
                .map_err(|e| ServeError(format!("cannot load --root {}: {e}", dir.display())))?;
            eprintln!("synack: loaded {}: {report:?}", dir.display());
            c
        }
        (None, None) => return err("say what to serve: --body TEXT or --root DIR"),
    };
    let content = Arc::new(content);

    // Checks that need the system, each with what to do.
    let iface = NetDev::lookup(&args.iface).map_err(ServeError)?;
    if !iface.ipv4_addrs().contains(&args.ip) {
        return err(format!(
            "address {} is not configured on {}: add it with `ip addr add {}/24 dev {}` (the kernel \
             must own it to answer ARP)",
            args.ip, args.iface, args.ip, args.iface
        ));
    }
    let available = iface.queue_count();
    let driver = iface.driver().unwrap_or_default();
    let set_queues = |n: u32| {
        if driver == "veth" {
            format!("ethtool -L {} rx {n} tx {n}", args.iface)
        } else {
            format!("ethtool -L {} combined {n}", args.iface)
        }
    };
    if args.queues > available {
        return err(format!(
            "--queues {} asks for more queues than {} has ({}); use --queues {} or add queues ({})",
            args.queues,
            args.iface,
            available,
            available,
            set_queues(args.queues)
        ));
    }
    if args.queues < available {
        eprintln!(
            "synack: warning: {} has {} queues but only {} are served: connections hashed to the \
             other queues reach the kernel and are refused. Serve them all (--queues {}) or \
             reduce the queues ({}).",
            args.iface,
            available,
            args.queues,
            available,
            set_queues(args.queues)
        );
    }
    crate::check::privileges().map_err(ServeError)?;
    if let Some(p) = iface.attached_xdp() {
        return err(format!(
            "{p} is already attached to {}: detach it with `ip link set dev {} xdp off`",
            args.iface, args.iface
        ));
    }

    // The cores this process may run on (taskset, cgroups), by id.
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let cores: Vec<usize> = match &args.cores {
        Some(list) => parse_core_list(list).map_err(|e| ServeError(format!("--cores: {e}")))?,
        // Default: the last N allowed cores, leaving the first to the system and load generators.
        None => allowed
            .iter()
            .rev()
            .take(args.queues as usize)
            .rev()
            .copied()
            .collect(),
    };
    if cores.len() < args.queues as usize {
        return err(format!(
            "--cores lists {} core(s) for {} queues; give one core per queue",
            cores.len(),
            args.queues
        ));
    }
    for c in &cores {
        if !allowed.contains(c) {
            return err(format!(
                "core {c} in --cores is not available to this process (allowed: {allowed:?}; see taskset and cgroups)"
            ));
        }
    }

    // Signals are blocked before any thread starts, so only the signal thread takes them.
    crate::signals::block().map_err(|e| ServeError(format!("cannot block signals: {e}")))?;
    let signals = crate::signals::listen()
        .map_err(|e| ServeError(format!("cannot start signal thread: {e}")))?;

    let mode = match args.xdp_mode {
        XdpModeArg::Auto => XdpMode::Auto,
        XdpModeArg::Native => XdpMode::Native,
        XdpModeArg::Skb => XdpMode::Skb,
    };
    let mut program = xdp::Program::load_and_attach(&args.iface, args.ip, &args.port, mode)?;
    if let Some(w) = program.warning() {
        eprintln!("synack: warning: {w}");
    }

    let mut sockets = Vec::new();
    for q in 0..args.queues {
        let cfg = xdp::SocketConfig {
            frame_size: args.frame_size,
            frames: args.frames,
            ring_size: args.ring_size,
            zero_copy: args.zero_copy,
            busy_poll: args
                .busy_poll
                .then_some((args.busy_poll_usecs, args.busy_poll_budget)),
        };
        let sock = xdp::XskQueue::open(&iface, q, &cfg)?;
        program.register(q, &sock)?;
        if args.zero_copy && !sock.zero_copy() {
            eprintln!(
                "synack: warning: queue {q}: the driver has no zero-copy AF_XDP; using copy mode"
            );
        }
        sockets.push(sock);
    }

    let capture = match &args.pcap {
        Some(path) => Some(
            crate::pcap::CaptureWriter::start(path, args.pcap_max)
                .map_err(|e| ServeError(format!("cannot write --pcap {}: {e}", path.display())))?,
        ),
        None => None,
    };

    let metrics_text = args
        .metrics
        .map(|_| Arc::new(std::sync::Mutex::new(String::new())));
    let stop_metrics = Arc::new(AtomicBool::new(false));
    if let (Some(addr), Some(text)) = (args.metrics, &metrics_text) {
        let bound = crate::stats::metrics::serve(addr, text.clone(), stop_metrics.clone())
            .map_err(|e| ServeError(format!("cannot serve --metrics on {addr}: {e}")))?;
        eprintln!("synack: metrics on http://{bound}/metrics");
    }

    let (report_tx, report_rx) = bounded::<Message>(1024);
    let collector_cfg = CollectorConfig {
        quiet: args.quiet,
        stats_out: args.stats_out.clone(),
        metrics: metrics_text.clone(),
        workers: sockets.len(),
    };
    let collector = std::thread::Builder::new()
        .name("synack-collector".into())
        .spawn(move || collector::run(collector_cfg, report_rx))
        .map_err(|e| ServeError(format!("cannot start collector: {e}")))?;

    let phase = Arc::new(AtomicU8::new(RUNNING));
    let local_mac = iface.mac;
    // Several queues: frames of a connection that land on another worker's queue (RSS
    // changed) go to their owner over crossbeam channels.
    let mut steering = if sockets.len() > 1 {
        crate::worker::Steering::mesh(sockets.len(), 4096)
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None]
    };
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    for (i, sock) in sockets.into_iter().enumerate() {
        let core = cores[i];
        let engine_cfg = EngineConfig {
            tcp: TcpConfig {
                mss: TcpConfig::mss_for_mtu(args.mtu),
                recv_buffer: args.recv_buffer,
                msl: Duration::from_secs(args.msl),
                ..TcpConfig::default()
            },
            local_ip: u32::from(args.ip),
            ports: args.port.clone(),
            max_conns: args.max_conns,
            syn_backlog: args.syn_backlog,
            syn_cookies: match args.syn_cookies {
                SynCookiesArg::Auto => SynCookieMode::OnOverflow,
                SynCookiesArg::Always => SynCookieMode::Always,
                SynCookiesArg::Never => SynCookieMode::Never,
            },
            time_wait_capacity: args.max_time_wait,
            secret: random_secret()?,
            buffer_pool: 1024,
            mem_limit: args.mem_limit,
            recv_floor: EngineConfig::default().recv_floor,
        };
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
        let app = HttpApp::new(http_cfg, content.clone());
        let engine = Engine::new(engine_cfg, app);
        let mut dp = Datapath::new(engine, sock, local_mac, args.batch);
        dp.set_inject_drop(args.inject_drop, 0x5EED ^ (i as u64 + 1));
        dp.set_capture(capture.as_ref().map(|c| c.0.clone()));
        if let Some(st) = steering.get_mut(i).and_then(Option::take) {
            dp.set_steering(st);
        }
        let phase = phase.clone();
        let tx = report_tx.clone();
        let grace = Duration::from_secs(args.grace);
        let h = std::thread::Builder::new()
            .name(format!("synack-w{i}"))
            .spawn(move || {
                let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: core });
                if !pinned {
                    eprintln!("synack: warning: worker {i} could not be pinned to core {core}");
                }
                worker_loop(i, core, dp, phase, tx, grace);
            })
            .map_err(|e| ServeError(format!("cannot start worker {i}: {e}")))?;
        workers.push(h);
    }
    // The main thread keeps one sender for SIGUSR1 dumps.
    let dump_tx = report_tx;

    let ports: Vec<String> = args.port.iter().map(|p| p.to_string()).collect();
    eprintln!(
        "synack: serving http://{}:{} on {} ({} queue{}, XDP {} mode, cores {:?})",
        args.ip,
        ports.join(","),
        args.iface,
        workers.len(),
        if workers.len() == 1 { "" } else { "s" },
        program.mode_name(),
        &cores[..workers.len()]
    );

    // Wait for a stop signal; forward dumps to the collector.
    loop {
        match signals.recv() {
            Ok(crate::signals::Signal::Stop) | Err(_) => break,
            Ok(crate::signals::Signal::Dump) => {
                let _ = dump_tx.send(Message::Dump);
            }
        }
    }
    drop(dump_tx);
    eprintln!(
        "synack: stopping: no new connections, {} s for in-flight responses",
        args.grace
    );
    phase.store(DRAINING, Ordering::SeqCst);
    for w in workers {
        let _ = w.join();
    }
    let totals = collector
        .join()
        .map_err(|_| ServeError("the collector thread panicked".into()))?;
    stop_metrics.store(true, Ordering::Relaxed);
    if let Some((cap, writer)) = capture {
        drop(cap);
        let written = writer.finish();
        if let Err(e) = written {
            eprintln!("synack: pcap: {e}");
        }
    }
    program.detach();
    eprint!("{}", collector::summary(&totals));
    Ok(())
}

fn worker_loop<IO: crate::worker::FrameIo + xdp::QueueStats>(
    index: usize,
    core: usize,
    mut dp: Datapath<HttpApp, IO>,
    phase: Arc<AtomicU8>,
    tx: Sender<Message>,
    grace: Duration,
) {
    let epoch = std::time::Instant::now();
    let clock = || Instant::from_micros(epoch.elapsed().as_micros() as u64);
    let mut latency = Latency::default();
    let mut last_report = std::time::Instant::now();
    let mut drain_until: Option<Instant> = None;
    let mut last_sweep = Instant::ZERO;
    let mut iterations = 0u64;
    let idle_cap = if dp.has_steering() {
        IDLE_WAIT_CAP_MESH
    } else {
        IDLE_WAIT_CAP
    };
    loop {
        let t0 = std::time::Instant::now();
        let now = clock();
        if iterations.is_multiple_of(64) {
            dp.engine
                .app_mut()
                .set_wall_clock(unix_micros() / 1_000_000);
        }
        iterations += 1;
        let sent_before = dp.counters.tx_frames;
        let n = dp.poll(now, unix_micros());
        let iteration = t0.elapsed();
        if n > 0 {
            latency.record(Metric::Loop, iteration.as_nanos() as u64);
        }
        for us in dp.engine.events.handshake_us.drain(..) {
            latency.record(Metric::Handshake, us);
        }
        for us in dp.engine.events.lifetime_us.drain(..) {
            latency.record(Metric::Lifetime, us);
        }
        // The engine measures in loop-iteration time (`now` is read once); the TX ring is
        // handed the batch at the end of the iteration, so that time is added.
        let flush_us = iteration.as_micros() as u64;
        for us in dp.engine.events.request_us.drain(..) {
            latency.record(Metric::Request, us + flush_us);
        }
        match phase.load(Ordering::Relaxed) {
            DRAINING if drain_until.is_none() => {
                drain_until = Some(now + grace);
                last_sweep = now;
                dp.with_sink(&mut |e, mut sink| e.begin_shutdown(now, &mut sink));
            }
            // Keep-alive connections that finish their response during the grace period are
            // closed as soon as they are idle (a sweep every 100 ms).
            DRAINING if now.saturating_since(last_sweep) >= Duration::from_millis(100) => {
                last_sweep = now;
                dp.with_sink(&mut |e, mut sink| e.begin_shutdown(now, &mut sink));
            }
            _ => {}
        }
        let done = match drain_until {
            Some(t) => dp.engine.connections() == 0 || now >= t,
            None => false,
        };
        if done {
            dp.with_sink(&mut |e, mut sink| e.abort_all(now, &mut sink));
            // Let the resets leave.
            for _ in 0..10 {
                dp.poll(clock(), unix_micros());
            }
        }
        if done || last_report.elapsed() >= Duration::from_secs(1) {
            last_report = std::time::Instant::now();
            let report = Report {
                worker: index,
                queue: dp.io.queue_id(),
                core: Some(core),
                frames: dp.counters.clone(),
                tcp: dp.engine.counters().clone(),
                app: http_counters(dp.engine.app().stats()),
                xsk: dp.io.queue_counters(),
                states: dp.engine.state_counts(),
                latency: std::mem::take(&mut latency),
                requests: dp.engine.app().stats().responses,
                last: done,
            };
            let _ = tx.send(Message::Report(Box::new(report)));
        }
        if done {
            return;
        }
        // Idle: wait for frames, or until the engine's next timer (bounded). Only this path
        // reads the clock again and asks for the deadline; a busy loop never gets here.
        // Connections that wait for transmit room and got some this iteration go on at once;
        // if the ring gave none, the loop waits at most 1 ms (the kernel completes frames
        // meanwhile, and completions do not wake the wait) rather than spin.
        let tx_waiting = dp.engine.tx_waiting() > 0;
        let tx_progress = tx_waiting && dp.counters.tx_frames > sent_before;
        if n == 0 && !tx_progress {
            let cap = if tx_waiting {
                idle_cap.min(Duration::from_millis(1))
            } else {
                idle_cap
            };
            let wait = idle_timeout(clock(), dp.engine.next_deadline(), cap);
            dp.io.idle_wait(wait);
        }
    }
}

/// Longest idle wait of a worker that has a queue to itself: bounds how late it notices a
/// shutdown, sends its once-a-second report, or runs a timer the wheel reports late.
const IDLE_WAIT_CAP: Duration = Duration::from_millis(10);

/// Longest idle wait of a worker in a mesh: frames other workers forward to it come through a
/// channel that poll(2) on the XSK cannot see, so it looks as often as before.
const IDLE_WAIT_CAP_MESH: Duration = Duration::from_millis(1);

/// How long an idle worker waits for frames: until the engine's next deadline, at most `cap`.
/// Rounded up to whole milliseconds (poll(2)'s unit) so that it does not wake just before the
/// deadline and spin; zero when the deadline has come, so its timer runs at once.
fn idle_timeout(now: Instant, next_deadline: Option<Instant>, cap: Duration) -> Duration {
    let Some(deadline) = next_deadline else {
        return cap;
    };
    let until = deadline.saturating_since(now);
    let ms = until.as_micros().div_ceil(1000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)).min(cap)
}

/// The HTTP responder's counters, named for reports and metrics.
fn http_counters(s: &HttpStats) -> Vec<(&'static str, u64)> {
    vec![
        ("responses", s.responses),
        ("responses_1xx", s.responses_by_class[1]),
        ("responses_2xx", s.responses_by_class[2]),
        ("responses_3xx", s.responses_by_class[3]),
        ("responses_4xx", s.responses_by_class[4]),
        ("responses_5xx", s.responses_by_class[5]),
        ("head_responses", s.head_responses),
        ("timeouts_header", s.timeouts_header),
        ("timeouts_idle", s.timeouts_idle),
        ("timeouts_body", s.timeouts_body),
        ("timeouts_send", s.timeouts_send),
        ("closed_max_requests", s.closed_max_requests),
        ("connections_opened", s.connections_opened),
        ("connections_closed", s.connections_closed),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_millis(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The server's engines get their secret from the OS: never a constant, never shared.
    #[test]
    fn each_worker_secret_is_drawn_from_the_os() {
        let a = random_secret().unwrap();
        let b = random_secret().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [7; 48]);
        assert_ne!(a, [0; 48]);
    }

    #[test]
    fn idle_wait_lasts_until_the_next_deadline_within_the_cap() {
        let now = Instant::from_millis(5_000);
        // No timer: the cap.
        assert_eq!(idle_timeout(now, None, CAP), CAP);
        // A timer further than the cap: the cap.
        assert_eq!(idle_timeout(now, Some(now + ms(200)), CAP), CAP);
        // A timer within the cap: until it, in whole milliseconds rounded up.
        assert_eq!(idle_timeout(now, Some(now + ms(4)), CAP), ms(4));
        assert_eq!(
            idle_timeout(now, Some(now + Duration::from_micros(4_001)), CAP),
            ms(5)
        );
        assert_eq!(
            idle_timeout(now, Some(now + Duration::from_micros(1)), CAP),
            ms(1),
            "not a zero wait that spins before the deadline"
        );
        // A timer due now or overdue: no wait.
        assert_eq!(idle_timeout(now, Some(now), CAP), Duration::ZERO);
        assert_eq!(
            idle_timeout(now, Some(Instant::from_millis(4_000)), CAP),
            Duration::ZERO
        );
        assert_eq!(idle_timeout(now, Some(Instant::NEVER), CAP), CAP);
        // The mesh cap keeps the old 1 ms.
        assert_eq!(
            idle_timeout(now, Some(now + ms(40)), IDLE_WAIT_CAP_MESH),
            ms(1)
        );
    }
}
