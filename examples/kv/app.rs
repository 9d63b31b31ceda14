//! The `kv` application: one [`Kv`] per worker, each owning the shard of keys that hash to it
//! ([`shard_of`]). A command for a key of another shard goes to its owner as a [`Msg`]; the
//! owner executes it and sends the outcome back; the connection's worker stores the outcome
//! and wakes the connection, which answers strictly in request order.
//!
//! Everything is bounded: a line ([`protocol::LINE_MAX`], [`protocol::GET_LINE_MAX`]), a value
//! (memcached's 1 MiB item), the answers a connection may have waiting ([`MAX_SLOTS`]) and
//! unsent ([`OUT_HIGH`]), its requests at other shards ([`MAX_INFLIGHT`]), and each worker's
//! requests at each other worker (the credit, [`Kv::credit_limit`]), so that no mailbox ever
//! overflows. A connection past a bound stops reading: its unread bytes close the window.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use synack::{App, AppIo, AppMetric, CloseReason, ConnId, ConnInfo, Instant, Wakeups};

use crate::protocol::{self, Command, StoreKind};
use crate::store::{Item, Store};

/// Answers a connection may have waiting for other shards or for send room; it stops
/// reading commands beyond.
pub const MAX_SLOTS: usize = 1024;
/// Bytes of answers a connection may hold beyond what the send queue took; it stops reading
/// commands beyond.
pub const OUT_HIGH: usize = 256 * 1024;
/// Requests a connection may have at other shards at once.
pub const MAX_INFLIGHT: usize = 64;
/// Values up to this size are copied into the answer's header buffer; larger ones are sent
/// without a copy (their own chunk).
const COPY_MAX: usize = 1024;
/// Messages queued into each worker at most (the server's mailbox capacity).
pub const MAILBOX_CAPACITY: usize = 4096;
/// A reply to a request that wanted none (`noreply`): only the credit comes back.
const NO_REPLY: u64 = u64::MAX;

/// The shard (worker) that owns `key`: FNV-1a, the same on every worker and every run.
pub fn shard_of(key: &[u8], shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % shards as u64) as usize
}

/// A hit, as an owner sends it back.
#[derive(Debug)]
pub struct Hit {
    flags: u32,
    cas: u64,
    data: Bytes,
}

impl From<&Item> for Hit {
    fn from(i: &Item) -> Hit {
        Hit {
            flags: i.flags,
            cas: i.cas,
            data: i.data.clone(),
        }
    }
}

/// What a worker asks of a key's owner.
#[derive(Debug)]
pub enum Op {
    /// Look these keys up (with their positions in the command).
    Get(Vec<(u32, Bytes)>),
    /// set or add.
    Store {
        /// `add` rather than `set`.
        add: bool,
        /// The key.
        key: Bytes,
        /// The data block (value and `\r\n`).
        data: Bytes,
        /// The client flags.
        flags: u32,
        /// When it expires (Unix seconds, 0 never).
        expires: u64,
    },
    /// delete.
    Delete(Bytes),
}

/// What the owner answers.
#[derive(Debug)]
pub enum Outcome {
    /// The hits of an [`Op::Get`], by position.
    Hits(Vec<(u32, Option<Hit>)>),
    /// Stored / deleted, or not.
    Done(bool),
}

/// A message between workers.
#[derive(Debug)]
pub enum Msg {
    /// A command for the receiver's shard.
    Request {
        /// The asking worker.
        from: usize,
        /// The connection that asked, on `from`.
        conn: ConnId,
        /// Which of the connection's answers it fills ([`NO_REPLY`]: none).
        seq: u64,
        /// The command.
        op: Op,
    },
    /// The outcome of a request.
    Reply {
        /// The owner that answers.
        from: usize,
        /// The connection that asked.
        conn: ConnId,
        /// Which answer it fills.
        seq: u64,
        /// The outcome.
        outcome: Outcome,
    },
}

/// How a worker sends another one a message (the server's `Mailbox::send`).
pub type SendFn = Box<dyn FnMut(usize, Msg) -> Result<(), Msg>>;

/// Unix time from the worker's wall clock and the engine's `now`.
struct WallClock {
    unix: u64,
    base: Option<Instant>,
}

impl WallClock {
    fn unix(&mut self, now: Instant) -> u64 {
        let base = *self.base.get_or_insert(now);
        self.unix + now.saturating_since(base).as_secs()
    }
}

/// One worker's kv service: its shard and the state that joins it to the others.
pub struct Kv {
    me: usize,
    workers: usize,
    send: SendFn,
    store: Store,
    clock: WallClock,
    /// Requests this worker has at each other worker, unanswered.
    outstanding: Vec<usize>,
    credit_limit: usize,
    /// Connections that stopped for want of credit: woken when a reply returns some.
    blocked: Vec<ConnId>,
    /// Outcomes that came back for each open connection, not yet taken.
    results: HashMap<ConnId, Vec<(u64, Outcome)>>,
    /// Messages a full mailbox gave back (not expected: the credit keeps mailboxes from
    /// filling), sent again at the next callback.
    retry: VecDeque<(usize, Msg)>,
    scratch: BytesMut,
    commands: u64,
    remote: u64,
}

/// Why a command waits.
struct Blocked;

/// What reading the input did.
enum Step {
    Progress,
    Stall,
}

/// An answer in request order.
enum Slot {
    /// Bytes to send.
    Ready(Bytes),
    /// A `get` some of whose keys live on other shards.
    Get(GetSlot),
    /// A set/add/delete on another shard: the answers for its outcome.
    Remote {
        yes: &'static [u8],
        no: &'static [u8],
    },
    /// Filled: these bytes.
    Answer(&'static [u8]),
}

struct GetSlot {
    cas: bool,
    keys: Vec<Bytes>,
    hits: Vec<Option<Hit>>,
    waiting: usize,
}

/// A set/add whose data block is arriving.
struct PendingStore {
    kind: StoreKind,
    key: Bytes,
    flags: u32,
    expires: u64,
    noreply: bool,
    len: usize,
    buf: BytesMut,
    /// The owner, if another worker (its credit is reserved).
    owner: Option<usize>,
}

enum Input {
    /// Reading a command line.
    Line,
    /// Reading a data block.
    Data(PendingStore),
    /// Discarding this many bytes (the data block of a refused set).
    Swallow(usize),
    /// Answer what is pending, then close; input is discarded.
    Closing,
}

/// One connection.
pub struct Session {
    id: ConnId,
    input: Input,
    /// A command line that arrived in pieces (or waits for credit), `\n` included once whole.
    line: Vec<u8>,
    slots: VecDeque<Slot>,
    /// The sequence number of `slots.front()`.
    first_seq: u64,
    out: VecDeque<Bytes>,
    out_bytes: usize,
    inflight: usize,
    blocked: bool,
}

impl Session {
    fn new(id: ConnId) -> Session {
        Session {
            id,
            input: Input::Line,
            line: Vec::new(),
            slots: VecDeque::new(),
            first_seq: 0,
            out: VecDeque::new(),
            out_bytes: 0,
            inflight: 0,
            blocked: false,
        }
    }

    /// Queues answer bytes after everything before them.
    fn emit(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        if self.slots.is_empty() {
            self.out_bytes += b.len();
            self.out.push_back(b);
        } else {
            self.slots.push_back(Slot::Ready(b));
        }
    }

    /// Queues answer bytes at the end of the output (the slots before them are done).
    fn push_out(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.out_bytes += b.len();
            self.out.push_back(b);
        }
    }

    fn emit_static(&mut self, text: &'static [u8]) {
        self.emit(Bytes::from_static(text));
    }

    /// Adds a slot that waits; its sequence number.
    fn push_slot(&mut self, slot: Slot) -> u64 {
        let seq = self.first_seq + self.slots.len() as u64;
        self.slots.push_back(slot);
        seq
    }

    /// An outcome from another shard.
    fn fill(&mut self, seq: u64, outcome: Outcome) {
        self.inflight -= 1;
        if seq == NO_REPLY || seq < self.first_seq {
            return;
        }
        let Some(slot) = self.slots.get_mut((seq - self.first_seq) as usize) else {
            return;
        };
        match outcome {
            Outcome::Hits(hits) => {
                if let Slot::Get(g) = slot {
                    for (i, hit) in hits {
                        if let Some(h) = g.hits.get_mut(i as usize) {
                            *h = hit;
                        }
                    }
                    g.waiting -= 1;
                }
            }
            Outcome::Done(done) => {
                if let Slot::Remote { yes, no } = *slot {
                    *slot = Slot::Answer(if done { yes } else { no });
                }
            }
        }
    }

    /// Moves the finished answers at the front to the output.
    fn promote(&mut self, scratch: &mut BytesMut) {
        while let Some(front) = self.slots.front() {
            let ready = match front {
                Slot::Ready(_) | Slot::Answer(_) => true,
                Slot::Get(g) => g.waiting == 0,
                Slot::Remote { .. } => false,
            };
            if !ready {
                break;
            }
            let slot = self.slots.pop_front().expect("front");
            self.first_seq += 1;
            match slot {
                Slot::Ready(b) => self.push_out(b),
                Slot::Answer(t) => self.push_out(Bytes::from_static(t)),
                Slot::Get(g) => {
                    for (key, hit) in g.keys.iter().zip(&g.hits) {
                        if let Some(h) = hit {
                            value_line(
                                self,
                                true,
                                scratch,
                                key,
                                h.flags,
                                &h.data,
                                g.cas.then_some(h.cas),
                            );
                        }
                    }
                    scratch.put_slice(protocol::END);
                    self.push_out(scratch.split().freeze());
                }
                Slot::Remote { .. } => unreachable!("not ready"),
            }
        }
    }

    /// Hands the send queue what it takes.
    fn flush(&mut self, io: &mut AppIo<'_>) {
        while let Some(front) = self.out.front_mut() {
            let took = io.send_bytes(front);
            self.out_bytes -= took;
            if !front.is_empty() {
                break;
            }
            self.out.pop_front();
        }
    }

    /// Reading more commands would exceed a bound.
    fn full(&self) -> bool {
        self.out_bytes >= OUT_HIGH || self.slots.len() >= MAX_SLOTS || self.inflight >= MAX_INFLIGHT
    }

    /// Nothing left to answer.
    fn idle(&self) -> bool {
        self.slots.is_empty() && self.out.is_empty() && self.inflight == 0
    }
}

/// Appends `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>` to `scratch`; a large value goes
/// out as its own chunk (no copy), after what `scratch` holds: straight to the output if
/// `promoted` (the answers before it are out), else after the pending ones.
fn value_line(
    s: &mut Session,
    promoted: bool,
    scratch: &mut BytesMut,
    key: &[u8],
    flags: u32,
    data: &Bytes,
    cas: Option<u64>,
) {
    use std::io::Write;
    scratch.put_slice(b"VALUE ");
    scratch.put_slice(key);
    let mut w = scratch.writer();
    let _ = write!(w, " {} {}", flags, data.len() - 2);
    if let Some(c) = cas {
        let _ = write!(w, " {c}");
    }
    let scratch = w.into_inner();
    scratch.put_slice(b"\r\n");
    if data.len() <= COPY_MAX {
        scratch.put_slice(data);
    } else if promoted {
        s.push_out(scratch.split().freeze());
        s.push_out(data.clone());
    } else {
        s.emit(scratch.split().freeze());
        s.emit(data.clone());
    }
}

impl Kv {
    /// Worker `me` of `workers`, reaching the others with `send`, its shard holding at most
    /// `mem_limit` bytes.
    pub fn new(me: usize, workers: usize, send: SendFn, mem_limit: usize) -> Kv {
        Kv {
            me,
            workers,
            send,
            store: Store::new(me, workers, mem_limit),
            clock: WallClock {
                unix: 0,
                base: None,
            },
            outstanding: vec![0; workers],
            credit_limit: Kv::credit_limit(workers),
            blocked: Vec::new(),
            results: HashMap::new(),
            retry: VecDeque::new(),
            scratch: BytesMut::with_capacity(16 * 1024),
            commands: 0,
            remote: 0,
        }
    }

    /// Requests one worker may have at another at once: a worker's mailbox then holds at
    /// most the requests of the others and the replies to its own, never more than it takes.
    pub fn credit_limit(workers: usize) -> usize {
        MAILBOX_CAPACITY / (2 * workers.saturating_sub(1).max(1))
    }

    fn post(&mut self, to: usize, msg: Msg) {
        if let Err(msg) = (self.send)(to, msg) {
            self.retry.push_back((to, msg));
        }
    }

    fn retry_sends(&mut self) {
        for _ in 0..self.retry.len() {
            let Some((to, msg)) = self.retry.pop_front() else {
                break;
            };
            if let Err(msg) = (self.send)(to, msg) {
                self.retry.push_back((to, msg));
                break;
            }
        }
    }

    /// Reserves credit at each worker in `peers` (all or none).
    fn reserve(&mut self, peers: &[bool]) -> bool {
        let ok = peers
            .iter()
            .enumerate()
            .all(|(p, &want)| !want || self.outstanding[p] < self.credit_limit);
        if ok {
            for (p, &want) in peers.iter().enumerate() {
                if want {
                    self.outstanding[p] += 1;
                }
            }
        }
        ok
    }

    fn reserve_one(&mut self, peer: usize) -> bool {
        if self.outstanding[peer] < self.credit_limit {
            self.outstanding[peer] += 1;
            true
        } else {
            false
        }
    }

    fn block(&mut self, s: &mut Session) {
        if !s.blocked {
            s.blocked = true;
            self.blocked.push(s.id);
        }
    }

    /// Sends `op` to its owner for `s`; the answer fills slot `seq`.
    fn request(&mut self, s: &mut Session, to: usize, seq: u64, op: Op) {
        s.inflight += 1;
        self.remote += 1;
        let msg = Msg::Request {
            from: self.me,
            conn: s.id,
            seq,
            op,
        };
        self.post(to, msg);
    }

    /// Runs a request of another worker on this shard.
    fn execute(&mut self, op: Op, unix: u64) -> Outcome {
        match op {
            Op::Get(keys) => Outcome::Hits(
                keys.into_iter()
                    .map(|(i, k)| (i, self.store.get(&k, unix).map(Hit::from)))
                    .collect(),
            ),
            Op::Store {
                add,
                key,
                data,
                flags,
                expires,
            } => Outcome::Done(self.store.store(add, &key, data, flags, expires, unix)),
            Op::Delete(key) => Outcome::Done(self.store.delete(&key, unix)),
        }
    }

    /// Reads and answers what the connection allows, in order.
    fn drive(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        s.blocked = false;
        self.retry_sends();
        if let Some(list) = self.results.get_mut(&s.id) {
            for (seq, outcome) in std::mem::take(list) {
                s.fill(seq, outcome);
            }
        }
        s.promote(&mut self.scratch);
        s.flush(io);
        let unix = self.clock.unix(now);
        while !s.full() {
            match self.step(s, io, unix) {
                Step::Progress => s.promote(&mut self.scratch),
                Step::Stall => break,
            }
        }
        s.promote(&mut self.scratch);
        s.flush(io);
        if matches!(s.input, Input::Closing) {
            let n = io.data().len();
            io.consume(n);
            if s.idle() {
                io.close();
            }
        } else if io.peer_closed() && io.data().is_empty() && s.idle() {
            io.close();
        }
        if !self.retry.is_empty() {
            io.set_deadline(Some(now + Duration::from_millis(1)));
        }
    }

    /// Reads one command or one piece of a data block.
    fn step(&mut self, s: &mut Session, io: &mut AppIo<'_>, unix: u64) -> Step {
        match &mut s.input {
            Input::Closing => Step::Stall,
            Input::Swallow(n) => {
                let take = (*n).min(io.data().len());
                if take == 0 {
                    return Step::Stall;
                }
                io.consume(take);
                *n -= take;
                if *n == 0 {
                    s.input = Input::Line;
                }
                Step::Progress
            }
            Input::Data(p) => {
                let data = io.data();
                let take = (p.len - p.buf.len()).min(data.len());
                if take == 0 {
                    return Step::Stall;
                }
                p.buf.extend_from_slice(&data[..take]);
                io.consume(take);
                if p.buf.len() == p.len {
                    let Input::Data(p) = std::mem::replace(&mut s.input, Input::Line) else {
                        unreachable!()
                    };
                    self.finish_store(s, p, unix);
                }
                Step::Progress
            }
            Input::Line if s.line.is_empty() => {
                let data = io.data();
                if data.is_empty() {
                    return Step::Stall;
                }
                match protocol::split_line(data) {
                    Some((line, used)) => match self.command(s, line, unix) {
                        Ok(()) => {
                            io.consume(used);
                            Step::Progress
                        }
                        Err(Blocked) => {
                            self.block(s);
                            Step::Stall
                        }
                    },
                    None => {
                        let n = data.len();
                        s.line.extend_from_slice(data);
                        io.consume(n);
                        if !protocol::partial_line_ok(&s.line) {
                            s.line.clear();
                            s.input = Input::Closing;
                        }
                        Step::Progress
                    }
                }
            }
            Input::Line => {
                if s.line.last() != Some(&b'\n') {
                    let data = io.data();
                    match data.iter().position(|&b| b == b'\n') {
                        Some(nl) => {
                            s.line.extend_from_slice(&data[..=nl]);
                            io.consume(nl + 1);
                        }
                        None if data.is_empty() => return Step::Stall,
                        None => {
                            let n = data.len();
                            s.line.extend_from_slice(data);
                            io.consume(n);
                            if !protocol::partial_line_ok(&s.line) {
                                s.line.clear();
                                s.input = Input::Closing;
                            }
                            return Step::Progress;
                        }
                    }
                }
                let mut spill = std::mem::take(&mut s.line);
                let line = protocol::clean_line(&spill[..spill.len() - 1]);
                let r = self.command(s, line, unix);
                match r {
                    Ok(()) => {
                        spill.clear();
                        s.line = spill;
                        Step::Progress
                    }
                    Err(Blocked) => {
                        s.line = spill;
                        self.block(s);
                        Step::Stall
                    }
                }
            }
        }
    }

    /// Executes one command line, or leaves it (`Blocked`) for want of credit.
    fn command(&mut self, s: &mut Session, line: &[u8], unix: u64) -> Result<(), Blocked> {
        let cmd = protocol::parse(line);
        match cmd {
            Command::Reply { text, noreply } => {
                if !noreply {
                    s.emit_static(text);
                }
            }
            Command::Close => s.input = Input::Closing,
            Command::Get { cas, keys } => self.get(s, cas, keys, unix)?,
            Command::Store {
                kind,
                key,
                flags,
                exptime,
                len,
                noreply,
            } => {
                let owner = self.owner(key);
                if let Some(o) = owner
                    && !self.reserve_one(o)
                {
                    return Err(Blocked);
                }
                s.input = Input::Data(PendingStore {
                    kind,
                    key: Bytes::copy_from_slice(key),
                    flags,
                    expires: protocol::expiry(exptime, unix),
                    noreply,
                    len,
                    buf: BytesMut::with_capacity(len),
                    owner,
                });
            }
            Command::TooLarge {
                kind,
                key,
                swallow,
                noreply,
            } => {
                if kind == StoreKind::Set {
                    // memcached removes the old item: no stale value after a failed set.
                    match self.owner(key) {
                        None => {
                            self.store.delete(key, unix);
                        }
                        Some(o) => {
                            if !self.reserve_one(o) {
                                return Err(Blocked);
                            }
                            let op = Op::Delete(Bytes::copy_from_slice(key));
                            self.request(s, o, NO_REPLY, op);
                        }
                    }
                }
                if !noreply {
                    s.emit_static(protocol::TOO_LARGE);
                }
                s.input = Input::Swallow(swallow);
            }
            Command::Delete { key, noreply } => match self.owner(key) {
                None => {
                    let done = self.store.delete(key, unix);
                    if !noreply {
                        s.emit_static(if done {
                            protocol::DELETED
                        } else {
                            protocol::NOT_FOUND
                        });
                    }
                }
                Some(o) => {
                    if !self.reserve_one(o) {
                        return Err(Blocked);
                    }
                    let seq = if noreply {
                        NO_REPLY
                    } else {
                        s.push_slot(Slot::Remote {
                            yes: protocol::DELETED,
                            no: protocol::NOT_FOUND,
                        })
                    };
                    self.request(s, o, seq, Op::Delete(Bytes::copy_from_slice(key)));
                }
            },
        }
        self.commands += 1;
        Ok(())
    }

    /// The worker owning `key` if it is not this one.
    fn owner(&self, key: &[u8]) -> Option<usize> {
        if self.workers == 1 {
            return None;
        }
        let o = shard_of(key, self.workers);
        (o != self.me).then_some(o)
    }

    fn get(&mut self, s: &mut Session, cas: bool, keys: &[u8], unix: u64) -> Result<(), Blocked> {
        let mut peers = vec![false; self.workers];
        let mut remote = false;
        for k in protocol::tokens(keys) {
            if let Some(o) = self.owner(k) {
                peers[o] = true;
                remote = true;
            }
        }
        if !remote {
            // Every key is here: answer at once.
            let mut scratch = std::mem::take(&mut self.scratch);
            for k in protocol::tokens(keys) {
                if let Some(item) = self.store.get(k, unix) {
                    let (flags, data, c) = (item.flags, item.data.clone(), item.cas);
                    value_line(s, false, &mut scratch, k, flags, &data, cas.then_some(c));
                }
            }
            scratch.put_slice(protocol::END);
            s.emit(scratch.split().freeze());
            self.scratch = scratch;
            return Ok(());
        }
        if !self.reserve(&peers) {
            return Err(Blocked);
        }
        let mut slot = GetSlot {
            cas,
            keys: Vec::new(),
            hits: Vec::new(),
            waiting: 0,
        };
        let mut asks: Vec<Vec<(u32, Bytes)>> = (0..self.workers).map(|_| Vec::new()).collect();
        for (i, k) in protocol::tokens(keys).enumerate() {
            let key = Bytes::copy_from_slice(k);
            match self.owner(k) {
                None => slot.hits.push(self.store.get(k, unix).map(Hit::from)),
                Some(o) => {
                    slot.hits.push(None);
                    asks[o].push((i as u32, key.clone()));
                }
            }
            slot.keys.push(key);
        }
        slot.waiting = peers.iter().filter(|&&p| p).count();
        let seq = s.push_slot(Slot::Get(slot));
        for (o, ask) in asks.into_iter().enumerate() {
            if !ask.is_empty() {
                self.request(s, o, seq, Op::Get(ask));
            }
        }
        Ok(())
    }

    /// A data block is complete: check its end, then store (here or at the owner).
    fn finish_store(&mut self, s: &mut Session, p: PendingStore, unix: u64) {
        let data = p.buf.freeze();
        let add = p.kind == StoreKind::Add;
        if !data.ends_with(b"\r\n") {
            if let Some(o) = p.owner {
                self.give_back(o);
            }
            if !p.noreply {
                s.emit_static(protocol::BAD_DATA_CHUNK);
            }
            return;
        }
        match p.owner {
            None => {
                let stored = self
                    .store
                    .store(add, &p.key, data, p.flags, p.expires, unix);
                if !p.noreply {
                    s.emit_static(if stored {
                        protocol::STORED
                    } else {
                        protocol::NOT_STORED
                    });
                }
            }
            Some(o) => {
                let seq = if p.noreply {
                    NO_REPLY
                } else {
                    s.push_slot(Slot::Remote {
                        yes: protocol::STORED,
                        no: protocol::NOT_STORED,
                    })
                };
                let op = Op::Store {
                    add,
                    key: p.key,
                    data,
                    flags: p.flags,
                    expires: p.expires,
                };
                self.request(s, o, seq, op);
            }
        }
    }

    /// Returns credit at `peer` that a request did not use.
    fn give_back(&mut self, peer: usize) {
        self.outstanding[peer] -= 1;
    }
}

impl App for Kv {
    type Session = Session;
    type Message = Msg;

    fn on_open(&mut self, conn: &ConnInfo, _now: Instant) -> Option<Session> {
        self.results.insert(conn.id(), Vec::new());
        Some(Session::new(conn.id()))
    }

    fn on_readable(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        self.drive(s, io, now);
    }

    fn on_writable(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        self.drive(s, io, now);
    }

    fn on_deadline(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        io.set_deadline(None);
        self.drive(s, io, now);
    }

    fn on_wake(&mut self, s: &mut Session, io: &mut AppIo<'_>, now: Instant) {
        self.drive(s, io, now);
    }

    fn on_message(&mut self, msg: Msg, wakeups: &mut Wakeups<'_>, now: Instant) {
        self.retry_sends();
        match msg {
            Msg::Request {
                from,
                conn,
                seq,
                op,
            } => {
                let unix = self.clock.unix(now);
                let outcome = self.execute(op, unix);
                let reply = Msg::Reply {
                    from: self.me,
                    conn,
                    seq,
                    outcome,
                };
                self.post(from, reply);
            }
            Msg::Reply {
                from,
                conn,
                seq,
                outcome,
            } => {
                self.give_back(from);
                for id in self.blocked.drain(..) {
                    wakeups.wake(id);
                }
                if let Some(list) = self.results.get_mut(&conn) {
                    list.push((seq, outcome));
                    wakeups.wake(conn);
                }
            }
        }
    }

    fn on_close(&mut self, s: Session, _reason: CloseReason, _now: Instant) {
        self.results.remove(&s.id);
        // A data block cut short: the credit it reserved comes back.
        if let Input::Data(PendingStore { owner: Some(o), .. }) = s.input {
            self.give_back(o);
        }
    }

    fn on_wall_clock(&mut self, unix_secs: u64) {
        self.clock = WallClock {
            unix: unix_secs,
            base: None,
        };
    }

    fn requests(&self) -> u64 {
        self.commands
    }

    fn counters(&self) -> Vec<AppMetric> {
        vec![
            AppMetric::gauge(
                "kv_items",
                "Items in this worker's store.",
                self.store.len() as u64,
            ),
            AppMetric::gauge(
                "kv_stored_bytes",
                "Bytes of keys and values in this worker's store.",
                self.store.bytes() as u64,
            ),
            AppMetric::counter(
                "kv_evictions",
                "Items evicted to make room.",
                self.store.evictions(),
            ),
            AppMetric::counter(
                "kv_remote_requests",
                "Commands handed to the worker that owns their key.",
                self.remote,
            ),
        ]
    }
}
