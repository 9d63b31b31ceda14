//! A hashed timer wheel for the deadlines of a whole connection table.
//!
//! Connections keep their deadlines as plain values (retransmission, delayed ACK, keepalive...).
//! The wheel only remembers *that* connection `slot` wants attention at some instant; it holds
//! `(slot, generation, tick)` entries and hands back the `(slot, generation)` pairs that are due.
//!
//! # Lazy cancellation: what the consumer must do
//! Entries are never cancelled or moved. When a connection's deadline changes, the engine simply
//! schedules a new entry (or none, if an earlier one is still pending and early enough); when a
//! connection is closed, its entries stay. So an expired entry may be stale, and the consumer
//! (the engine) checks each one:
//! 1. the slot's current generation ([`super::table::ConnTable::generation`]) must equal the
//!    entry's, otherwise the connection it was meant for is gone: ignore it;
//! 2. the connection's real earliest deadline must be `<= now`: then run its timers; if it is
//!    later (the deadline moved), schedule it again at the real deadline.
//!
//! A connection that reschedules often (say on every ACK) leaves stale entries behind; to keep
//! the wheel small the engine should schedule only when the new deadline is *earlier* than the
//! one it already has an entry for, and rely on step 2 for deadlines that moved later.
//!
//! # Precision
//! Time is cut into ticks of `granularity` (default 1 ms). An entry for deadline `d` is handed
//! out by the first [`expire`](TimerWheel::expire) call whose `now` is in a tick that is not
//! before `ceil(d / granularity)`: never before `d`, and at the latest by a call with
//! `now >= d + granularity`. A deadline already in the past when scheduled comes out at the next
//! `expire` call. Entries due in the same call come out in no particular order.
//!
//! # Cost
//! `schedule` is O(1) and does not allocate once the buckets have grown to their working size
//! (they keep their capacity). `expire` costs O(1) per elapsed tick, skipping empty buckets 64 at
//! a time through an occupancy bitmap, plus O(1) per entry looked at; entries further than one
//! rotation ahead (4.096 s by default) stay in their bucket and are looked at once per rotation.
//! If time jumps forward by more than a rotation (an idle server), `expire` sweeps every bucket
//! once instead of walking millions of ticks.

use std::time::Duration;

use crate::time::Instant;

/// Default tick length.
pub const DEFAULT_GRANULARITY: Duration = Duration::from_millis(1);
/// Default number of buckets (one rotation = 4.096 s at 1 ms).
pub const DEFAULT_BUCKETS: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct TimerEntry {
    /// `ceil(deadline / granularity)`: the first tick at which the entry may fire.
    tick: u64,
    slot: u32,
    generation: u32,
}

/// See the [module documentation](self).
#[derive(Debug)]
pub struct TimerWheel {
    buckets: Box<[Vec<TimerEntry>]>,
    /// Bit `b` set iff `buckets[b]` is not empty.
    occupied: Box<[u64]>,
    /// Entries scheduled for a tick already processed: handed out by the next `expire`.
    due: Vec<(u32, u32)>,
    granularity_us: u64,
    mask: u64,
    /// Every tick `<= current` has been processed; all entries in buckets have `tick > current`.
    current: u64,
    len: usize,
    #[cfg(test)]
    bucket_visits: u64,
}

impl TimerWheel {
    /// A wheel with 1 ms ticks and 4096 buckets, whose clock starts at `now`.
    pub fn new(now: Instant) -> Self {
        Self::with_config(DEFAULT_GRANULARITY, DEFAULT_BUCKETS, now)
    }

    /// A wheel with ticks of `granularity` (at least 1 µs) and `buckets` buckets (a power of two,
    /// at least 64).
    ///
    /// # Panics
    /// On a granularity below 1 µs or a bucket count that is not a power of two >= 64
    /// (configuration errors, checked at startup).
    pub fn with_config(granularity: Duration, buckets: usize, now: Instant) -> Self {
        let granularity_us = granularity.as_micros().min(u64::MAX as u128) as u64;
        assert!(granularity_us >= 1, "timer granularity below 1 µs");
        assert!(
            buckets >= 64 && buckets.is_power_of_two(),
            "timer bucket count {buckets} is not a power of two >= 64"
        );
        TimerWheel {
            buckets: (0..buckets).map(|_| Vec::new()).collect(),
            occupied: vec![0u64; buckets / 64].into_boxed_slice(),
            due: Vec::new(),
            granularity_us,
            mask: buckets as u64 - 1,
            current: now.as_micros() / granularity_us,
            len: 0,
            #[cfg(test)]
            bucket_visits: 0,
        }
    }

    /// Entries held, stale ones included.
    #[cfg(any(test, feature = "internals"))]
    pub fn len(&self) -> usize {
        self.len + self.due.len()
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn granularity(&self) -> Duration {
        Duration::from_micros(self.granularity_us)
    }

    /// Asks for `(slot, generation)` to be handed out by [`expire`](Self::expire) once `at` has
    /// passed. `Instant::NEVER` schedules nothing.
    pub fn schedule(&mut self, slot: u32, generation: u32, at: Instant) {
        if at == Instant::NEVER {
            return;
        }
        let us = at.as_micros();
        let tick = us.div_ceil(self.granularity_us);
        if tick <= self.current {
            self.due.push((slot, generation));
            return;
        }
        let b = (tick & self.mask) as usize;
        self.buckets[b].push(TimerEntry {
            tick,
            slot,
            generation,
        });
        self.occupied[b / 64] |= 1 << (b % 64);
        self.len += 1;
    }

    /// Appends to `out` the `(slot, generation)` of every entry whose deadline has passed at
    /// `now`, and forgets them. The consumer validates each one (see the module documentation).
    /// A `now` earlier than a previous call's is treated as that earlier time.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<(u32, u32)>) {
        out.append(&mut self.due);
        let target = now.as_micros() / self.granularity_us;
        if target <= self.current {
            return;
        }
        if target - self.current > self.mask {
            // More than a rotation elapsed: every bucket's turn came at least once. One sweep.
            for b in 0..self.buckets.len() {
                if self.occupied[b / 64] & (1 << (b % 64)) != 0 {
                    self.fire_bucket(b, target, out);
                }
            }
        } else {
            let mut t = self.current + 1;
            while t <= target {
                let b = (t & self.mask) as usize;
                let bits = self.occupied[b / 64] >> (b % 64);
                if bits == 0 {
                    // Nothing left in this bitmap word: jump to the next word.
                    t += 64 - (b % 64) as u64;
                    continue;
                }
                let skip = bits.trailing_zeros() as u64;
                if skip > 0 {
                    t += skip;
                    continue;
                }
                // Only one tick of this bucket lies in (current, target]: this one. Entries with
                // a later tick are for a later rotation and stay.
                self.fire_bucket(b, target, out);
                t += 1;
            }
        }
        self.current = target;
    }

    /// Moves the entries of bucket `b` with `tick <= target` to `out`.
    fn fire_bucket(&mut self, b: usize, target: u64, out: &mut Vec<(u32, u32)>) {
        #[cfg(test)]
        {
            self.bucket_visits += 1;
        }
        let bucket = &mut self.buckets[b];
        let before = bucket.len();
        bucket.retain(|e| {
            if e.tick <= target {
                out.push((e.slot, e.generation));
                false
            } else {
                true
            }
        });
        self.len -= before - bucket.len();
        if bucket.is_empty() {
            self.occupied[b / 64] &= !(1 << (b % 64));
        }
    }

    /// A time by which the worker must call [`expire`](Self::expire) again, or `None` if the
    /// wheel is empty. Coarse but safe: never later than the earliest entry's firing tick, and
    /// possibly earlier (an entry found may be a rotation or more away, or stale).
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.due.is_empty() {
            return Some(self.tick_start(self.current));
        }
        if self.len == 0 {
            return None;
        }
        // First occupied bucket after `current`, scanning the bitmap cyclically.
        let n = self.buckets.len() as u64;
        let mut k = 1;
        while k <= n {
            let b = ((self.current + k) & self.mask) as usize;
            let bits = self.occupied[b / 64] >> (b % 64);
            if bits == 0 {
                k += 64 - (b % 64) as u64;
                continue;
            }
            let skip = bits.trailing_zeros() as u64;
            if skip == 0 {
                return Some(self.tick_start(self.current + k));
            }
            k += skip;
        }
        // Unreachable while `len > 0`: some bucket is occupied. Be safe anyway.
        Some(self.tick_start(self.current + 1))
    }

    fn tick_start(&self, tick: u64) -> Instant {
        Instant::from_micros(tick.saturating_mul(self.granularity_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashMap};

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn expire(w: &mut TimerWheel, now: Instant) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        w.expire(now, &mut out);
        out.sort();
        out
    }

    #[test]
    fn fires_at_or_after_the_deadline() {
        let mut w = TimerWheel::new(ms(0));
        w.schedule(1, 0, ms(10));
        w.schedule(2, 5, Instant::from_micros(10_500));
        w.schedule(3, 0, ms(3000));
        assert_eq!(w.len(), 3);
        assert_eq!(expire(&mut w, Instant::from_micros(9_999)), vec![]);
        assert_eq!(expire(&mut w, ms(10)), vec![(1, 0)]);
        // 10.5 ms rounds up to the 11 ms tick.
        assert_eq!(expire(&mut w, Instant::from_micros(10_999)), vec![]);
        assert_eq!(expire(&mut w, ms(11)), vec![(2, 5)]);
        assert_eq!(expire(&mut w, ms(2999)), vec![]);
        assert_eq!(expire(&mut w, ms(3000)), vec![(3, 0)]);
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn past_deadlines_fire_at_the_next_call() {
        let mut w = TimerWheel::new(ms(100));
        w.schedule(1, 0, ms(50));
        w.schedule(2, 0, ms(100));
        assert_eq!(w.next_deadline(), Some(ms(100)));
        assert_eq!(expire(&mut w, ms(100)), vec![(1, 0), (2, 0)]);
        w.schedule(3, 0, Instant::ZERO);
        assert_eq!(expire(&mut w, ms(100)), vec![(3, 0)]);
        w.schedule(4, 0, Instant::NEVER);
        assert!(w.is_empty());
    }

    #[test]
    fn entries_beyond_one_rotation_wait_their_turn() {
        // 64 buckets of 1 ms: a rotation is 64 ms.
        let mut w = TimerWheel::with_config(Duration::from_millis(1), 64, ms(0));
        w.schedule(1, 0, ms(5));
        w.schedule(2, 0, ms(5 + 64));
        w.schedule(3, 0, ms(5 + 640));
        assert_eq!(expire(&mut w, ms(5)), vec![(1, 0)]);
        for now in 6..69 {
            assert_eq!(expire(&mut w, ms(now)), vec![], "at {now}");
        }
        assert_eq!(expire(&mut w, ms(69)), vec![(2, 0)]);
        assert_eq!(expire(&mut w, ms(644)), vec![]);
        assert_eq!(expire(&mut w, ms(645)), vec![(3, 0)]);
    }

    #[test]
    fn a_long_idle_jump_sweeps_once() {
        let mut w = TimerWheel::new(ms(0));
        for i in 0..100_000u32 {
            // Spread over 10 minutes, many rotations.
            w.schedule(i, 1, ms(i as u64 * 6));
        }
        let before = w.bucket_visits;
        // An hour later: 3.6 million ticks, but only one pass over the 4096 buckets.
        let out = expire(&mut w, ms(3_600_000));
        assert_eq!(out.len(), 100_000);
        assert!(w.bucket_visits - before <= DEFAULT_BUCKETS as u64);
        assert!(w.is_empty());
        // An idle period shorter than a rotation skips empty buckets through the bitmap.
        w.schedule(7, 7, ms(3_600_000 + 4000));
        let before = w.bucket_visits;
        assert_eq!(expire(&mut w, ms(3_600_000 + 4095)), vec![(7, 7)]);
        assert_eq!(w.bucket_visits - before, 1);
    }

    #[test]
    fn next_deadline_is_a_safe_lower_bound() {
        let mut w = TimerWheel::new(ms(0));
        assert_eq!(w.next_deadline(), None);
        w.schedule(1, 0, Instant::from_micros(20_300));
        w.schedule(2, 0, ms(500));
        assert_eq!(w.next_deadline(), Some(ms(21)));
        assert_eq!(expire(&mut w, ms(21)), vec![(1, 0)]);
        assert_eq!(w.next_deadline(), Some(ms(500)));
        // Far away (beyond a rotation): the bound is the bucket's next turn, earlier than needed.
        let mut w = TimerWheel::new(ms(0));
        w.schedule(1, 0, ms(10_000));
        let nd = w.next_deadline().unwrap();
        assert!(nd <= ms(10_000));
        assert!(nd > ms(0));
    }

    #[test]
    fn coarse_granularity() {
        let mut w = TimerWheel::with_config(Duration::from_millis(10), 64, ms(0));
        w.schedule(1, 0, ms(1));
        assert_eq!(expire(&mut w, ms(9)), vec![]);
        assert_eq!(expire(&mut w, ms(10)), vec![(1, 0)]);
        assert_eq!(w.granularity(), Duration::from_millis(10));
    }

    #[test]
    fn steady_state_does_not_allocate() {
        // Every tick: 8 new entries 200 ms out. After warm-up the bucket vectors keep their
        // buffers: the same pointers and capacities afterwards.
        let mut w = TimerWheel::with_config(Duration::from_millis(1), 256, ms(0));
        let mut out = Vec::with_capacity(64);
        let mut now = 0;
        let run = |w: &mut TimerWheel, out: &mut Vec<(u32, u32)>, now: &mut u64, ticks: u64| {
            for _ in 0..ticks {
                *now += 1;
                out.clear();
                w.expire(ms(*now), out);
                for i in 0..8 {
                    w.schedule(i, 0, ms(*now + 200));
                }
            }
        };
        run(&mut w, &mut out, &mut now, 1000);
        let snapshot: Vec<(usize, usize)> = w
            .buckets
            .iter()
            .map(|b| (b.as_ptr() as usize, b.capacity()))
            .collect();
        let out_cap = out.capacity();
        run(&mut w, &mut out, &mut now, 5000);
        let after: Vec<(usize, usize)> = w
            .buckets
            .iter()
            .map(|b| (b.as_ptr() as usize, b.capacity()))
            .collect();
        assert_eq!(snapshot, after);
        assert_eq!(out.capacity(), out_cap);
        assert_eq!(w.len(), 8 * 200);
    }

    #[test]
    fn lazy_cancellation_pattern() {
        // How the engine uses the wheel: generation + real deadline checked on expiry.
        let mut w = TimerWheel::new(ms(0));
        let mut generation = [0u32; 2];
        let mut deadline = [ms(10), ms(10)];
        w.schedule(0, generation[0], deadline[0]);
        w.schedule(1, generation[1], deadline[1]);
        // Connection 0 closes (slot freed, generation bumped); connection 1's deadline moves.
        generation[0] += 1;
        deadline[1] = ms(30);
        let mut fired = Vec::new();
        for now in [ms(10), ms(20), ms(30)] {
            let mut out = Vec::new();
            w.expire(now, &mut out);
            for (slot, g) in out {
                let s = slot as usize;
                if g != generation[s] {
                    continue;
                }
                if deadline[s] > now {
                    w.schedule(slot, g, deadline[s]);
                    continue;
                }
                fired.push((slot, now));
            }
        }
        assert_eq!(fired, vec![(1, ms(30))]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Schedule at `now + offset_us - 5000` (some in the past).
        Schedule(u64),
        /// Advance the clock by this many µs and expire.
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..400_000).prop_map(Op::Schedule),
            1 => (0u64..30_000_000).prop_map(Op::Schedule),
            4 => (0u64..3_000).prop_map(Op::Advance),
            1 => (0u64..200_000).prop_map(Op::Advance),
            1 => (0u64..20_000_000).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_binary_heap_model(
            gran_us in prop_oneof![Just(1_000u64), Just(1u64), Just(250u64), Just(10_000u64)],
            buckets in prop_oneof![Just(64usize), Just(128), Just(4096)],
            start_us in 0u64..1_000_000_000,
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let g = gran_us;
            let mut now = start_us;
            let mut w = TimerWheel::with_config(Duration::from_micros(g), buckets, Instant::from_micros(now));
            let mut model: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
            let mut deadlines: HashMap<u32, u64> = HashMap::new();
            let mut fired: HashMap<u32, u64> = HashMap::new();
            let mut out = Vec::new();
            let mut next_id = 0u32;
            let mut check = |w: &mut TimerWheel, now: u64, model: &mut BinaryHeap<Reverse<(u64, u32)>>,
                             deadlines: &HashMap<u32, u64>, fired: &mut HashMap<u32, u64>| -> Result<(), TestCaseError> {
                out.clear();
                w.expire(Instant::from_micros(now), &mut out);
                for &(id, generation) in &out {
                    prop_assert_eq!(generation, id ^ 0xabcd);
                    let d = deadlines[&id];
                    prop_assert!(d <= now, "entry {} fired at {} before its deadline {}", id, now, d);
                    prop_assert!(fired.insert(id, now).is_none(), "entry {} fired twice", id);
                }
                // Everything whose deadline is a granularity or more in the past must be out.
                while let Some(&Reverse((d, id))) = model.peek() {
                    if fired.contains_key(&id) {
                        model.pop();
                        continue;
                    }
                    prop_assert!(d + g > now, "entry {} (deadline {}) late at {}", id, d, now);
                    // next_deadline is never later than the earliest pending entry's firing time.
                    let nd = w.next_deadline();
                    prop_assert!(nd.is_some());
                    prop_assert!(nd.unwrap().as_micros() <= d.max(now).div_ceil(g) * g);
                    break;
                }
                Ok(())
            };
            for op in ops {
                match op {
                    Op::Schedule(off) => {
                        let at = (now + off).saturating_sub(5_000);
                        w.schedule(next_id, next_id ^ 0xabcd, Instant::from_micros(at));
                        model.push(Reverse((at, next_id)));
                        deadlines.insert(next_id, at);
                        next_id += 1;
                    }
                    Op::Advance(d) => {
                        now += d;
                        check(&mut w, now, &mut model, &deadlines, &mut fired)?;
                    }
                }
            }
            // Far future: everything fires, nothing is lost.
            now += 100_000_000;
            check(&mut w, now, &mut model, &deadlines, &mut fired)?;
            prop_assert_eq!(fired.len(), next_id as usize);
            prop_assert!(w.is_empty());
            prop_assert_eq!(w.next_deadline(), None);
        }
    }
}
