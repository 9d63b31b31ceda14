//! Scripted exchanges: packetdrill-like `.pkt` files under tests/scenarios/, run in-process
//! against the engine.
//!
//! Format, one event per line (`#` starts a comment):
//! ```text
//! config syn_cookies=never recv_buffer=65536     engine settings (before the first event)
//! app response_len=3000 close_after_response     the test application's behaviour
//! +0    < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
//! +0    > S. 0:0(0) ack 1 win 65160 <mss 1460,sackOK,TS val * ecr 100,nop,wscale 2>
//! +0.2  < . 1:1(0) ack 1 win 1000
//! +0    < P. 1:5(4) ack 1 win 1000               (PSH: the payload ends a request)
//! +0    > P. 1:41(40) ack 5 win *
//! +0    state ESTABLISHED                         the connection's state (or CLOSED)
//! +0    time_wait 1                               TIME-WAIT records
//! ```
//! `<` is a segment from the client (sequence numbers as written; `ack` relative to the
//! server's ISN), `>` a segment the server must send (its sequence numbers relative to its
//! ISN, `ack` as written). Times are `+seconds` after the previous line or absolute seconds.
//! A `>` line must match the next segment sent, at that time within 10 ms; a `<` line, the
//! end of a script and a `state` line all require that nothing unexpected was sent.
//! `*` matches any value. Options in a `>` line must match exactly, in any order.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use synack::tcp::engine::{Engine, EngineConfig, SynCookieMode};
use synack::tcp::state::State;
use synack::tcp::testkit::{CollectSink, OwnedSegment, TestApp, TestAppConfig, segment};
use synack::time::Instant;
use synack::wire::IpAddress;
use synack::wire::segment::FourTuple;
use synack::wire::tcp::{SackBlock, TcpFlags, TcpOptions};

const TOLERANCE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Val {
    Any,
    Is(u32),
}

impl Val {
    fn parse(s: &str) -> Result<Val, String> {
        if s == "*" {
            Ok(Val::Any)
        } else {
            s.parse::<u32>()
                .map(Val::Is)
                .map_err(|_| format!("bad number {s:?}"))
        }
    }
    fn matches(self, v: u32) -> bool {
        match self {
            Val::Any => true,
            Val::Is(x) => x == v,
        }
    }
    fn value(self) -> u32 {
        match self {
            Val::Any => 0,
            Val::Is(x) => x,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Opts {
    mss: Option<Val>,
    wscale: Option<Val>,
    sack_ok: bool,
    ts: Option<(Val, Val)>,
    sack: Vec<(u32, u32)>,
    /// `<...>` given at all (for `>` lines: options must then match exactly).
    given: bool,
}

#[derive(Debug, Clone)]
struct Seg {
    flags: TcpFlags,
    seq: Val,
    len: u32,
    ack: Option<Val>,
    win: Option<Val>,
    opts: Opts,
}

#[derive(Debug)]
enum Event {
    In(Seg),
    Out(Seg),
    State(Option<State>),
    TimeWait(usize),
}

fn parse_flags(s: &str) -> Result<TcpFlags, String> {
    let mut f = TcpFlags::NONE;
    for c in s.chars() {
        f |= match c {
            'S' => TcpFlags::SYN,
            'F' => TcpFlags::FIN,
            'R' => TcpFlags::RST,
            'P' => TcpFlags::PSH,
            '.' => TcpFlags::ACK,
            _ => return Err(format!("bad flag {c:?} in {s:?}")),
        };
    }
    Ok(f)
}

fn parse_opts(s: &str) -> Result<Opts, String> {
    let mut o = Opts {
        given: true,
        ..Opts::default()
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let w: Vec<&str> = part.split_whitespace().collect();
        match w.as_slice() {
            ["mss", v] => o.mss = Some(Val::parse(v)?),
            ["wscale", v] => o.wscale = Some(Val::parse(v)?),
            ["sackOK"] => o.sack_ok = true,
            ["nop"] | ["eol"] => {}
            ["TS", "val", v, "ecr", e] => o.ts = Some((Val::parse(v)?, Val::parse(e)?)),
            ["sack", blocks @ ..] => {
                for b in blocks {
                    let (l, r) = b.split_once(':').ok_or(format!("bad sack block {b:?}"))?;
                    o.sack.push((
                        l.parse().map_err(|_| format!("bad sack {b:?}"))?,
                        r.parse().map_err(|_| format!("bad sack {b:?}"))?,
                    ));
                }
            }
            _ => return Err(format!("unknown option {part:?}")),
        }
    }
    Ok(o)
}

fn parse_segment(rest: &str) -> Result<Seg, String> {
    let (main, opts) = match rest.find('<') {
        Some(i) => {
            let end = rest.rfind('>').ok_or("unclosed <options>")?;
            (&rest[..i], parse_opts(&rest[i + 1..end])?)
        }
        None => (rest, Opts::default()),
    };
    let w: Vec<&str> = main.split_whitespace().collect();
    let flags = parse_flags(w.first().ok_or("missing flags")?)?;
    let range = w.get(1).ok_or("missing seq range")?;
    let (seq, len) = if *range == "*" {
        (Val::Any, 0)
    } else {
        let (a, rest) = range
            .split_once(':')
            .ok_or(format!("bad range {range:?}"))?;
        let len = rest
            .split_once('(')
            .and_then(|(_, l)| l.strip_suffix(')'))
            .ok_or(format!("bad range {range:?}"))?;
        (
            Val::parse(a)?,
            len.parse().map_err(|_| format!("bad length {len:?}"))?,
        )
    };
    let mut seg = Seg {
        flags,
        seq,
        len,
        ack: None,
        win: None,
        opts,
    };
    let mut i = 2;
    while i < w.len() {
        match w[i] {
            "ack" => seg.ack = Some(Val::parse(w.get(i + 1).ok_or("ack needs a value")?)?),
            "win" => seg.win = Some(Val::parse(w.get(i + 1).ok_or("win needs a value")?)?),
            other => return Err(format!("unexpected {other:?}")),
        }
        i += 2;
    }
    Ok(seg)
}

struct Script {
    config: EngineConfig,
    app: TestAppConfig,
    events: Vec<(Duration, Event, usize)>,
}

fn parse_script(text: &str) -> Result<Script, String> {
    let mut config = EngineConfig {
        syn_cookies: SynCookieMode::Never,
        ..EngineConfig::default()
    };
    config.ports = vec![8080];
    let mut app = TestAppConfig::default();
    let mut events = Vec::new();
    let mut t = Duration::ZERO;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let err = |e: String| format!("line {}: {e}: {raw}", n + 1);
        let mut words = line.split_whitespace();
        let first = words.next().unwrap();
        if first == "config" || first == "app" {
            for kv in words {
                let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
                let num = || {
                    v.parse::<usize>()
                        .map_err(|_| err(format!("bad value {v:?}")))
                };
                match (first, k) {
                    ("config", "syn_cookies") => {
                        config.syn_cookies = match v {
                            "never" => SynCookieMode::Never,
                            "always" => SynCookieMode::Always,
                            _ => SynCookieMode::OnOverflow,
                        }
                    }
                    ("config", "recv_buffer") => config.tcp.recv_buffer = num()?,
                    ("config", "syn_backlog") => config.syn_backlog = num()?,
                    ("config", "max_retries") => config.tcp.max_retries = num()? as u32,
                    ("app", "response_len") => app.response = Bytes::from(vec![b'x'; num()?]),
                    ("app", "close_after_response") => app.close_after_response = true,
                    ("app", "stall_reading") => app.stall_reading = true,
                    _ => return Err(err(format!("unknown setting {k:?}"))),
                }
            }
            continue;
        }
        let (time, rest) = line
            .split_once(char::is_whitespace)
            .ok_or(err("no event".into()))?;
        let secs: f64 = time
            .trim_start_matches('+')
            .parse()
            .map_err(|_| err(format!("bad time {time:?}")))?;
        let d = Duration::from_secs_f64(secs);
        t = if time.starts_with('+') { t + d } else { d };
        let rest = rest.trim();
        let ev = if let Some(s) = rest.strip_prefix('<') {
            Event::In(parse_segment(s).map_err(err)?)
        } else if let Some(s) = rest.strip_prefix('>') {
            Event::Out(parse_segment(s).map_err(err)?)
        } else if let Some(s) = rest.strip_prefix("state") {
            let s = s.trim();
            Event::State(if s == "CLOSED" {
                None
            } else {
                Some(
                    *State::ALL
                        .iter()
                        .find(|st| st.name() == s)
                        .ok_or(err(format!("unknown state {s:?}")))?,
                )
            })
        } else if let Some(s) = rest.strip_prefix("time_wait") {
            Event::TimeWait(s.trim().parse().map_err(|_| err("bad count".into()))?)
        } else {
            return Err(err("unknown event".into()));
        };
        events.push((t, ev, n + 1));
    }
    Ok(Script {
        config,
        app,
        events,
    })
}

fn to_options(o: &Opts) -> TcpOptions {
    let mut t = TcpOptions {
        mss: o.mss.map(|v| v.value() as u16),
        window_scale: o.wscale.map(|v| v.value() as u8),
        sack_permitted: o.sack_ok,
        timestamps: o.ts.map(|(a, b)| (a.value(), b.value())),
        ..TcpOptions::default()
    };
    for (i, &(l, r)) in o.sack.iter().take(4).enumerate() {
        t.sack_blocks[i] = SackBlock { left: l, right: r };
        t.sack_count = i as u8 + 1;
    }
    t
}

fn run_script(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let script = parse_script(&text)?;
    let tuple = FourTuple {
        remote_ip: IpAddress::v4(u32::from_be_bytes([198, 18, 0, 2])),
        remote_port: 40000,
        local_ip: script.config.local_ips[0],
        local_port: 8080,
    };
    let mut engine = Engine::new(script.config, TestApp::new(script.app));
    let mut sink = CollectSink::default();
    let start = Instant::from_millis(10_000);
    let mut now = start;
    let mut sent: std::collections::VecDeque<(Instant, OwnedSegment)> = Default::default();
    let mut server_isn: Option<u32> = None;

    for (t, ev, line) in &script.events {
        let at = start + *t;
        let fail = |m: String| format!("{}:{line}: {m}", path.display());
        // Run the clock up to the event (1 ms ticks), keeping what the engine sends.
        let horizon = at
            + if matches!(ev, Event::Out(_)) {
                TOLERANCE
            } else {
                Duration::ZERO
            };
        while now < horizon {
            if matches!(ev, Event::Out(_)) && !sent.is_empty() {
                break;
            }
            now = (now + Duration::from_millis(1)).min(horizon);
            engine.on_tick(now, &mut sink);
            sent.extend(sink.take().into_iter().map(|s| (now, s)));
        }
        match ev {
            Event::In(s) => {
                if let Some((_, seg)) = sent.front() {
                    return Err(fail(format!(
                        "unexpected segment sent: {}",
                        show(seg, server_isn)
                    )));
                }
                let ack = s
                    .ack
                    .map_or(0, |a| a.value().wrapping_add(server_isn.unwrap_or(0)));
                // Payload bytes are 'a'; a segment with PSH ends a request with a newline, so
                // the test application answers it.
                let mut payload = vec![b'a'; s.len as usize];
                if s.flags.psh()
                    && let Some(last) = payload.last_mut()
                {
                    *last = b'\n';
                }
                let seg = segment(
                    tuple,
                    s.seq.value(),
                    ack,
                    s.flags,
                    s.win.map_or(65535, |w| w.value() as u16),
                    to_options(&s.opts),
                    &payload,
                );
                engine.on_segment(now, &seg, &mut sink);
                sent.extend(sink.take().into_iter().map(|s| (now, s)));
            }
            Event::Out(want) => {
                let Some((when, got)) = sent.pop_front() else {
                    return Err(fail(format!(
                        "expected a segment by {:?}, none was sent",
                        *t
                    )));
                };
                if got.flags().syn() && server_isn.is_none() {
                    server_isn = Some(got.seq().raw());
                }
                let early = at.saturating_since(when);
                if early > TOLERANCE {
                    return Err(fail(format!(
                        "segment sent {early:?} too early: {}",
                        show(&got, server_isn)
                    )));
                }
                check(want, &got, server_isn.unwrap_or(0))
                    .map_err(|m| fail(format!("{m}; got {}", show(&got, server_isn))))?;
            }
            Event::State(want) => {
                if let Some((_, seg)) = sent.front() {
                    return Err(fail(format!(
                        "unexpected segment sent: {}",
                        show(seg, server_isn)
                    )));
                }
                let got = engine.connection(&tuple).map(|c| c.state());
                if got != *want {
                    return Err(fail(format!("state is {got:?}, expected {want:?}")));
                }
            }
            Event::TimeWait(n) => {
                if engine.time_wait_len() != *n {
                    return Err(fail(format!(
                        "{} TIME-WAIT records, expected {n}",
                        engine.time_wait_len()
                    )));
                }
            }
        }
    }
    if let Some((_, seg)) = sent.front() {
        return Err(format!(
            "{}: unexpected segment at the end: {}",
            path.display(),
            show(seg, server_isn)
        ));
    }
    Ok(())
}

fn show(s: &OwnedSegment, isn: Option<u32>) -> String {
    let base = isn.unwrap_or(0);
    let seq = s.seq().raw().wrapping_sub(base);
    let o = &s.header.options;
    format!(
        "{:?} {}:{}({}) ack {} win {} <mss {:?} ws {:?} sackOK {} ts {:?} sack {:?}>",
        s.flags(),
        seq,
        seq.wrapping_add(s.payload.len() as u32),
        s.payload.len(),
        s.ack().raw(),
        s.header.window,
        o.mss,
        o.window_scale,
        o.sack_permitted,
        o.timestamps,
        o.sack()
    )
}

fn check(want: &Seg, got: &OwnedSegment, isn: u32) -> Result<(), String> {
    if want.flags != got.flags() {
        return Err(format!(
            "flags {:?}, expected {:?}",
            got.flags(),
            want.flags
        ));
    }
    let rel = got.seq().raw().wrapping_sub(isn);
    // A RST without ACK carries the sequence number it answers, not ours: compare raw.
    let seq_ok = want.seq.matches(rel) || (got.flags().rst() && want.seq.matches(got.seq().raw()));
    if !seq_ok {
        return Err(format!("seq {rel}, expected {:?}", want.seq));
    }
    if want.len != got.payload.len() as u32 {
        return Err(format!(
            "length {}, expected {}",
            got.payload.len(),
            want.len
        ));
    }
    if let Some(a) = want.ack
        && !a.matches(got.ack().raw())
    {
        return Err(format!("ack {}, expected {a:?}", got.ack().raw()));
    }
    if let Some(w) = want.win
        && !w.matches(got.header.window as u32)
    {
        return Err(format!("window {}, expected {w:?}", got.header.window));
    }
    let o = &got.header.options;
    let wo = &want.opts;
    if wo.given {
        let ok = match (wo.mss, o.mss) {
            (None, None) => true,
            (Some(v), Some(m)) => v.matches(m as u32),
            _ => false,
        } && match (wo.wscale, o.window_scale) {
            (None, None) => true,
            (Some(v), Some(m)) => v.matches(m as u32),
            _ => false,
        } && wo.sack_ok == o.sack_permitted
            && match (wo.ts, o.timestamps) {
                (None, None) => true,
                (Some((v, e)), Some((a, b))) => v.matches(a) && e.matches(b),
                _ => false,
            }
            && wo.sack.len() == o.sack().len()
            && wo
                .sack
                .iter()
                .zip(o.sack())
                .all(|(w, g)| w.0 == g.left && w.1 == g.right);
        if !ok {
            return Err("options differ".into());
        }
    }
    Ok(())
}

#[test]
fn scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/scenarios")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pkt"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "scenarios missing in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        match run_script(f) {
            Ok(()) => eprintln!("ok   {}", f.file_name().unwrap().to_string_lossy()),
            Err(e) => {
                eprintln!("FAIL {e}");
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn a_wrong_expectation_fails() {
    // The runner itself must be able to fail.
    let dir = std::env::temp_dir().join(format!("synack-pkt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("wrong.pkt");
    std::fs::write(
        &f,
        "+0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 2 win 64240 <mss 1460>\n",
    )
    .unwrap();
    assert!(run_script(&f).is_err());
    std::fs::write(&f, "+0 < S 0:0(0) win 65535 <mss 1460>\n").unwrap();
    assert!(
        run_script(&f).is_err(),
        "an unexpected SYN/ACK must fail the script"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
