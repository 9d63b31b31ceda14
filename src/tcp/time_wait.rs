//! TIME-WAIT (RFC 9293 3.6, 3.10.7.4) kept as a small record instead of a full connection.
//!
//! A connection that closes first ends in TIME-WAIT for 2·MSL, during which it must still ACK a
//! retransmitted FIN (RFC 9293 3.10.7.4, TIME-WAIT: "acknowledge it, and restart the 2 MSL
//! timeout") and decide whether a new SYN for the same 4-tuple may reuse it (RFC 6191, using
//! the last timestamp or sequence number). A short-connection benchmark leaves hundreds of
//! thousands of these, so, like Linux's `tcp_timewait_sock`, we keep only what those two jobs
//! need: a [`TimeWaitRecord`] of 24 bytes.
//!
//! [`TimeWaitTable`] stores records in a [`ConnTable`] (fixed capacity, no allocation after
//! construction) and expires them through a FIFO of `(expires, slot, generation)`: every record
//! lives for the same 2·MSL, so insertion order is expiry order and expiry is O(1) amortized per
//! record. A restart pushes a new FIFO entry; the old one turns stale and is skipped when it
//! reaches the head (lazy validation: the slot's generation and the record's current deadline
//! must both match). When stale entries fill the FIFO (many restarts), it is compacted in place.
//!
//! When the table is full, [`TimeWaitTable::insert`] refuses: the caller then closes the
//! connection without TIME-WAIT and counts it, as Linux does past `tcp_max_tw_buckets`.

use std::collections::VecDeque;

use super::table::ConnTable;
use crate::time::Instant;
use crate::wire::segment::FourTuple;
use crate::wire::seq::SeqNumber;

/// What a connection in TIME-WAIT remembers. Plain data; the engine fills and reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeWaitRecord {
    /// SND.NXT: one past our FIN. The SEQ of the ACKs we send from TIME-WAIT.
    pub snd_nxt: SeqNumber,
    /// RCV.NXT: one past the peer's FIN. The ACK we send; RFC 6191 compares a new SYN's SEQ
    /// against it when timestamps are off.
    pub rcv_nxt: SeqNumber,
    /// TS.Recent: the peer's last TSval, if timestamps were agreed (RFC 7323 4.3 echoes it;
    /// RFC 6191 compares a new SYN's TSval against it).
    pub ts_recent: Option<u32>,
    /// Our TSval offset for this connection (RFC 7323 7.1), to stamp ACKs sent from TIME-WAIT.
    pub ts_offset: u32,
    /// The window field of our ACKs, already scaled down (a raw header value).
    pub window: u16,
    /// When (milliseconds, wrapping; 0 = never) we last sent a rate-limited ACK from
    /// TIME-WAIT (Linux's tw_last_oow_ack_time).
    pub last_ack_ms: u32,
}

/// A record with its current deadline, as stored in the table.
#[derive(Clone, Copy, Debug)]
struct Stored {
    rec: TimeWaitRecord,
    expires: Instant,
}

/// One FIFO entry: valid iff `slot` still holds generation `generation` with deadline `expires`.
#[derive(Clone, Copy, Debug)]
struct FifoEntry {
    expires: Instant,
    slot: u32,
    generation: u32,
}

/// TIME-WAIT records keyed by 4-tuple, with a fixed capacity. See the module documentation.
#[derive(Debug)]
pub struct TimeWaitTable {
    table: ConnTable<Stored>,
    fifo: VecDeque<FifoEntry>,
    /// The FIFO never grows past this (twice the capacity): no reallocation.
    fifo_limit: usize,
    /// The latest deadline pushed so far; later pushes are clamped to at least this, which
    /// keeps the FIFO sorted.
    last_expires: Instant,
}

impl TimeWaitTable {
    /// Room for `capacity` records; `hash_key` is the secret for the 4-tuple hash.
    ///
    /// # Panics
    /// As [`ConnTable::new`]: if `capacity` is 0 or too large (a configuration error).
    pub fn new(capacity: usize, hash_key: [u8; 16]) -> Self {
        let fifo_limit = capacity * 2;
        TimeWaitTable {
            table: ConnTable::new(capacity, hash_key),
            fifo: VecDeque::with_capacity(fifo_limit),
            fifo_limit,
            last_expires: Instant::ZERO,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn is_full(&self) -> bool {
        self.table.is_full()
    }

    /// Enters TIME-WAIT for `key` until `expires` (normally now + 2·MSL). If `key` is already
    /// in TIME-WAIT its record is replaced and its timer restarted. Returns `false`, storing
    /// nothing, if the table is full: the caller closes the connection without TIME-WAIT.
    ///
    /// Deadlines are expected not to decrease from call to call (one duration, a monotonic
    /// clock); an earlier one is raised to the latest seen so far, so a record may outlive its
    /// deadline in that case, never expire before it.
    pub fn insert(&mut self, key: FourTuple, rec: TimeWaitRecord, expires: Instant) -> bool {
        if let Some(slot) = self.table.find(&key) {
            if let Some(stored) = self.table.get_mut(slot) {
                stored.rec = rec;
            }
            self.restart_slot(slot, expires);
            return true;
        }
        if self.table.is_full() {
            return false;
        }
        let expires = self.clamp(expires);
        let Ok(slot) = self.table.insert(key, Stored { rec, expires }) else {
            return false;
        };
        let generation = self.table.generation(slot);
        self.push(FifoEntry {
            expires,
            slot,
            generation,
        });
        true
    }

    pub fn find(&self, key: &FourTuple) -> Option<&TimeWaitRecord> {
        let slot = self.table.find(key)?;
        self.table.get(slot).map(|s| &s.rec)
    }

    pub fn find_mut(&mut self, key: &FourTuple) -> Option<&mut TimeWaitRecord> {
        let slot = self.table.find(key)?;
        self.table.get_mut(slot).map(|s| &mut s.rec)
    }

    /// The deadline of `key`'s record.
    pub fn expires_at(&self, key: &FourTuple) -> Option<Instant> {
        let slot = self.table.find(key)?;
        self.table.get(slot).map(|s| s.expires)
    }

    /// RFC 9293 3.10.7.4 (TIME-WAIT, FIN bit): "restart the 2 MSL timeout". Moves `key`'s
    /// deadline to `expires` (same clamping as [`insert`](Self::insert)). `false` if absent.
    pub fn restart(&mut self, key: &FourTuple, expires: Instant) -> bool {
        match self.table.find(key) {
            Some(slot) => {
                self.restart_slot(slot, expires);
                true
            }
            None => false,
        }
    }

    /// Leaves TIME-WAIT early (a SYN reused the tuple, RFC 6191; or an RST, RFC 1337 aside).
    pub fn remove(&mut self, key: &FourTuple) -> Option<TimeWaitRecord> {
        // The FIFO entry turns stale with the generation bump.
        self.table.remove_key(key).map(|(_, s)| s.rec)
    }

    /// Removes every record whose deadline is `<= now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        self.expire_at_most(now, usize::MAX)
    }

    /// As [`expire`](Self::expire), but removes at most `limit` records (to bound the work of
    /// one loop iteration); the rest go at the next call.
    pub fn expire_at_most(&mut self, now: Instant, limit: usize) -> usize {
        let mut removed = 0;
        while removed < limit {
            let Some(&head) = self.fifo.front() else {
                break;
            };
            if head.expires > now {
                break;
            }
            self.fifo.pop_front();
            if self.is_live(&head) {
                self.table.remove(head.slot);
                removed += 1;
            }
        }
        removed
    }

    /// The earliest deadline that may be pending (the FIFO head: possibly a stale entry, so a
    /// safe lower bound for how long the worker may sleep), or `None` if nothing is pending.
    #[cfg(any(test, feature = "internals"))]
    pub fn next_expiry(&self) -> Option<Instant> {
        self.fifo.front().map(|e| e.expires)
    }

    /// Memory per record when full: the table's slot (entry, free list, index) plus the FIFO's
    /// reservation of two entries per record.
    #[cfg(any(test, feature = "internals"))]
    pub fn bytes_per_record(&self) -> usize {
        self.table.bytes_per_slot() + 2 * std::mem::size_of::<FifoEntry>()
    }

    fn restart_slot(&mut self, slot: u32, expires: Instant) {
        let expires = self.clamp(expires);
        let generation = self.table.generation(slot);
        let Some(stored) = self.table.get_mut(slot) else {
            return;
        };
        if stored.expires == expires {
            return;
        }
        stored.expires = expires;
        // The old entry is stale from now on: its `expires` no longer matches.
        self.push(FifoEntry {
            expires,
            slot,
            generation,
        });
    }

    fn clamp(&mut self, expires: Instant) -> Instant {
        self.last_expires = self.last_expires.max(expires);
        self.last_expires
    }

    fn is_live(&self, e: &FifoEntry) -> bool {
        self.table.generation(e.slot) == e.generation
            && self
                .table
                .get(e.slot)
                .is_some_and(|s| s.expires == e.expires)
    }

    fn push(&mut self, e: FifoEntry) {
        if self.fifo.len() >= self.fifo_limit {
            // Only stale entries beyond one per record: drop them in place, order kept. At
            // most `capacity` survive, so this runs at most once per `capacity` pushes.
            let mut fifo = std::mem::take(&mut self.fifo);
            fifo.retain(|e| self.is_live(e));
            self.fifo = fifo;
        }
        self.fifo.push_back(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpAddress;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::time::Duration;

    const KEY: [u8; 16] = *b"time-wait-key-00";
    const TW: Duration = Duration::from_secs(60);

    fn t(n: u32) -> FourTuple {
        FourTuple {
            remote_ip: IpAddress::v4(0x0a00_0002),
            remote_port: n as u16,
            local_ip: IpAddress::v4(0x0a00_0001 + (n >> 16)),
            local_port: 80,
        }
    }

    fn rec(n: u32) -> TimeWaitRecord {
        TimeWaitRecord {
            snd_nxt: SeqNumber::new(n),
            rcv_nxt: SeqNumber::new(n.wrapping_mul(7)),
            ts_recent: Some(n),
            ts_offset: 3,
            window: 502,
            last_ack_ms: 0,
        }
    }

    fn s(n: u64) -> Instant {
        Instant::from_millis(n * 1000)
    }

    #[test]
    fn record_is_small() {
        // 28 bytes: the RFC 6191 fields plus the out-of-window ACK rate-limit clock.
        assert!(std::mem::size_of::<TimeWaitRecord>() <= 28);
        let tw = TimeWaitTable::new(1 << 16, KEY);
        // Slab entry 80 (the 36-byte tuple of either family, the record, the deadline) + free
        // list 4 + index 16 + FIFO 32.
        assert!(tw.bytes_per_record() <= 132, "{}", tw.bytes_per_record());
    }

    #[test]
    fn insert_find_expire() {
        let mut tw = TimeWaitTable::new(8, KEY);
        assert!(tw.insert(t(1), rec(1), s(60)));
        assert!(tw.insert(t(2), rec(2), s(61)));
        assert_eq!(tw.find(&t(1)), Some(&rec(1)));
        assert_eq!(tw.find(&t(3)), None);
        tw.find_mut(&t(2)).unwrap().ts_recent = Some(99);
        assert_eq!(tw.find(&t(2)).unwrap().ts_recent, Some(99));
        assert_eq!(tw.expires_at(&t(2)), Some(s(61)));
        assert_eq!(tw.next_expiry(), Some(s(60)));
        assert_eq!(tw.expire(s(59)), 0);
        assert_eq!(tw.expire(s(60)), 1);
        assert_eq!(tw.find(&t(1)), None);
        assert_eq!(tw.len(), 1);
        assert_eq!(tw.expire(s(100)), 1);
        assert!(tw.is_empty());
        assert_eq!(tw.next_expiry(), None);
    }

    #[test]
    fn restart_extends_life() {
        let mut tw = TimeWaitTable::new(8, KEY);
        tw.insert(t(1), rec(1), s(60));
        tw.insert(t(2), rec(2), s(60));
        // A retransmitted FIN at 30 s restarts the 2·MSL timer (RFC 9293 3.10.7.4).
        assert!(tw.restart(&t(1), s(90)));
        assert!(!tw.restart(&t(3), s(90)));
        assert_eq!(tw.expire(s(60)), 1);
        assert_eq!(tw.find(&t(2)), None);
        assert_eq!(tw.find(&t(1)), Some(&rec(1)));
        assert_eq!(tw.expire(s(89)), 0);
        assert_eq!(tw.expire(s(90)), 1);
        assert!(tw.is_empty());
    }

    #[test]
    fn reinsert_replaces_and_restarts() {
        let mut tw = TimeWaitTable::new(2, KEY);
        tw.insert(t(1), rec(1), s(60));
        assert!(tw.insert(t(1), rec(5), s(70)));
        assert_eq!(tw.len(), 1);
        assert_eq!(tw.find(&t(1)), Some(&rec(5)));
        assert_eq!(tw.expire(s(65)), 0);
        assert_eq!(tw.expire(s(70)), 1);
    }

    #[test]
    fn remove_early_leaves_a_stale_fifo_entry_that_is_skipped() {
        let mut tw = TimeWaitTable::new(2, KEY);
        tw.insert(t(1), rec(1), s(60));
        assert_eq!(tw.remove(&t(1)), Some(rec(1)));
        assert_eq!(tw.remove(&t(1)), None);
        // The slot is reused by another tuple with a later deadline: the old entry must not
        // expire it.
        tw.insert(t(2), rec(2), s(61));
        assert_eq!(tw.expire(s(60)), 0);
        assert_eq!(tw.find(&t(2)), Some(&rec(2)));
        assert_eq!(tw.expire(s(61)), 1);
    }

    #[test]
    fn full_table_refuses() {
        let mut tw = TimeWaitTable::new(3, KEY);
        for i in 0..3 {
            assert!(tw.insert(t(i), rec(i), s(60 + i as u64)));
        }
        assert!(tw.is_full());
        assert!(!tw.insert(t(9), rec(9), s(70)));
        assert_eq!(tw.find(&t(9)), None);
        // An existing key may still be refreshed when full.
        assert!(tw.insert(t(0), rec(0), s(70)));
        assert_eq!(tw.expire(s(61)), 1);
        assert!(tw.insert(t(9), rec(9), s(71)));
    }

    #[test]
    fn earlier_deadlines_are_clamped_never_shortened() {
        let mut tw = TimeWaitTable::new(4, KEY);
        tw.insert(t(1), rec(1), s(60));
        tw.insert(t(2), rec(2), s(30));
        assert_eq!(tw.expires_at(&t(2)), Some(s(60)));
        assert_eq!(tw.expire(s(59)), 0);
        assert_eq!(tw.expire(s(60)), 2);
    }

    #[test]
    fn many_restarts_keep_the_fifo_bounded() {
        let cap = 64;
        let mut tw = TimeWaitTable::new(cap, KEY);
        for i in 0..cap as u32 {
            tw.insert(t(i), rec(i), s(60));
        }
        let fifo_cap = tw.fifo.capacity();
        // A peer hammering retransmitted FINs: a restart every millisecond for 100 s.
        let mut now = s(0);
        for step in 0..100_000u32 {
            now += Duration::from_millis(1);
            assert!(tw.restart(&t(step % cap as u32), now + TW));
            assert!(tw.fifo.len() <= 2 * cap);
            tw.expire(now);
        }
        assert_eq!(tw.fifo.capacity(), fifo_cap, "the FIFO reallocated");
        assert_eq!(tw.len(), cap);
        assert_eq!(tw.expire(now + TW), cap);
        assert!(tw.is_empty());
    }

    #[test]
    fn expire_at_most_bounds_the_work() {
        let mut tw = TimeWaitTable::new(100, KEY);
        for i in 0..100 {
            tw.insert(t(i), rec(i), s(60));
        }
        assert_eq!(tw.expire_at_most(s(60), 30), 30);
        assert_eq!(tw.len(), 70);
        assert_eq!(tw.expire(s(60)), 70);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8),
        Restart(u8),
        Remove(u8),
        Find(u8),
        /// Advance by this many ms, then expire.
        Advance(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u8>().prop_map(Op::Insert),
            2 => any::<u8>().prop_map(Op::Restart),
            1 => any::<u8>().prop_map(Op::Remove),
            2 => any::<u8>().prop_map(Op::Find),
            3 => (0u32..20_000).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_model(cap in 1usize..40, ops in proptest::collection::vec(op(), 1..400)) {
            let mut tw = TimeWaitTable::new(cap, KEY);
            let mut model: HashMap<FourTuple, (TimeWaitRecord, Instant)> = HashMap::new();
            let mut now = s(1000);
            for (n, op) in ops.into_iter().enumerate() {
                let n = n as u32;
                match op {
                    Op::Insert(k) => {
                        let key = t(k as u32 % 64);
                        let ok = tw.insert(key, rec(n), now + TW);
                        let want = model.contains_key(&key) || model.len() < cap;
                        prop_assert_eq!(ok, want);
                        if want {
                            model.insert(key, (rec(n), now + TW));
                        }
                    }
                    Op::Restart(k) => {
                        let key = t(k as u32 % 64);
                        let ok = tw.restart(&key, now + TW);
                        prop_assert_eq!(ok, model.contains_key(&key));
                        if let Some(m) = model.get_mut(&key) {
                            m.1 = now + TW;
                        }
                    }
                    Op::Remove(k) => {
                        let key = t(k as u32 % 64);
                        prop_assert_eq!(tw.remove(&key), model.remove(&key).map(|m| m.0));
                    }
                    Op::Find(k) => {
                        let key = t(k as u32 % 64);
                        prop_assert_eq!(tw.find(&key), model.get(&key).map(|m| &m.0));
                        prop_assert_eq!(tw.expires_at(&key), model.get(&key).map(|m| m.1));
                    }
                    Op::Advance(ms) => {
                        now += Duration::from_millis(ms as u64);
                        let before = model.len();
                        model.retain(|_, m| m.1 > now);
                        prop_assert_eq!(tw.expire(now), before - model.len());
                    }
                }
                prop_assert_eq!(tw.len(), model.len());
                prop_assert!(tw.fifo.len() <= 2 * cap);
                if let Some(earliest) = model.values().map(|m| m.1).min() {
                    prop_assert!(tw.next_expiry().unwrap() <= earliest);
                }
            }
        }
    }
}
