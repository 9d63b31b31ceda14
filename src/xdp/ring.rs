//! AF_XDP rings as cursors. A ring is a power-of-two array of descriptors shared with the
//! kernel, with a producer and a consumer index (free-running u32s) and a flags word.
//!
//! - [`ProducerRing`] (fill, TX): `free(n)` says how many slots we may write, `write(i, v)`
//!   writes slot `i` of them, `submit(n)` publishes `n` with a release store.
//! - [`ConsumerRing`] (RX, completion): `available(n)` says how many entries are ready (after
//!   an acquire load), `read(i)` reads one, `release(n)` hands `n` slots back.
//!
//! Cached copies of the other side's index keep shared-cache-line traffic to one load per
//! batch. The same types work over an anonymous mapping where a test plays the kernel.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::sys::{Mapping, RingOffset, XDP_RING_NEED_WAKEUP};

/// Where a ring's parts live inside its mapping.
#[derive(Clone)]
pub struct RingMem {
    /// Keeps the mapping alive as long as any view of the ring exists.
    _map: Arc<Mapping>,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut u8,
    size: u32,
}

// SAFETY: the pointers point into `map`, which the Arc keeps alive; each ring end is used by
// one thread at a time (the worker owns its socket), and the shared indexes are atomics.
unsafe impl Send for RingMem {}

impl RingMem {
    /// A ring inside `map` at the kernel's offsets, with `size` entries of `T`.
    ///
    /// Fails if the offsets do not fit the mapping, so that later accesses stay in bounds.
    pub fn new<T>(map: Arc<Mapping>, off: &RingOffset, size: u32) -> Result<RingMem, String> {
        if !size.is_power_of_two() {
            return Err(format!("ring size {size} is not a power of two"));
        }
        let need = |o: u64, n: usize| o as usize + n <= map.len();
        let fits = need(off.producer, 4)
            && need(off.consumer, 4)
            && need(off.flags, 4)
            && need(off.desc, size as usize * std::mem::size_of::<T>());
        let aligned = off.producer.is_multiple_of(4)
            && off.consumer.is_multiple_of(4)
            && off.flags.is_multiple_of(4)
            && off.desc.is_multiple_of(8);
        if !(fits && aligned) {
            return Err("ring offsets do not fit the mapping".into());
        }
        let base = map.as_ptr();
        // SAFETY: every offset was checked to lie within the mapping and to be aligned.
        unsafe {
            Ok(RingMem {
                producer: base.add(off.producer as usize) as *const AtomicU32,
                consumer: base.add(off.consumer as usize) as *const AtomicU32,
                flags: base.add(off.flags as usize) as *const AtomicU32,
                descs: base.add(off.desc as usize),
                size,
                _map: map,
            })
        }
    }

    /// A ring in fresh anonymous memory (tests, or a simulated kernel): the layout is
    /// producer, consumer, flags, then the descriptors at offset 64.
    #[cfg(any(test, feature = "internals"))]
    pub fn anonymous<T>(size: u32) -> Result<RingMem, String> {
        let len = 64 + size as usize * std::mem::size_of::<T>();
        let map = Arc::new(Mapping::anonymous(len).map_err(|e| e.to_string())?);
        let off = RingOffset {
            producer: 0,
            consumer: 4,
            flags: 8,
            desc: 64,
        };
        RingMem::new::<T>(map, &off, size)
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: checked in `new` to be an aligned u32 inside the live mapping.
        unsafe { &*self.producer }
    }
    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*self.consumer }
    }
    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { &*self.flags }
    }

    /// Reads descriptor `idx` (masked).
    fn read<T: Copy>(&self, idx: u32) -> T {
        let i = (idx & (self.size - 1)) as usize;
        // SAFETY: `i < size`, and `new` checked that `size` descriptors of T fit.
        unsafe { std::ptr::read_volatile((self.descs as *const T).add(i)) }
    }

    fn write<T: Copy>(&self, idx: u32, v: T) {
        let i = (idx & (self.size - 1)) as usize;
        // SAFETY: as in `read`; only the producer end writes, and only slots it owns.
        unsafe { std::ptr::write_volatile((self.descs as *mut T).add(i), v) }
    }
}

/// Our producing end (fill ring, TX ring).
pub struct ProducerRing<T> {
    mem: RingMem,
    cached_prod: u32,
    cached_cons: u32,
    _t: PhantomData<T>,
}

impl<T: Copy> ProducerRing<T> {
    pub fn new(mem: RingMem) -> Self {
        let prod = mem.producer().load(Ordering::Relaxed);
        let cons = mem.consumer().load(Ordering::Acquire);
        ProducerRing {
            cached_prod: prod,
            cached_cons: cons.wrapping_add(mem.size),
            mem,
            _t: PhantomData,
        }
    }

    pub fn size(&self) -> u32 {
        self.mem.size
    }

    /// Free slots, at most `want`. Loads the consumer index only if the cache says too few.
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= want {
            return free;
        }
        self.cached_cons = self
            .mem
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.mem.size);
        self.cached_cons.wrapping_sub(self.cached_prod)
    }

    /// Writes the `i`-th slot after the last submitted one. `i` must be below `free()`.
    pub fn write(&mut self, i: u32, v: T) {
        debug_assert!(i < self.cached_cons.wrapping_sub(self.cached_prod));
        self.mem.write(self.cached_prod.wrapping_add(i), v);
    }

    /// Publishes `n` written slots (release: the descriptors are visible first).
    pub fn submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.mem
            .producer()
            .store(self.cached_prod, Ordering::Release);
    }

    /// Entries submitted and not yet consumed by the other side.
    pub fn outstanding(&self) -> u32 {
        self.cached_prod
            .wrapping_sub(self.mem.consumer().load(Ordering::Acquire))
    }

    /// Another view of the same ring memory (tests audit a ring from the other side).
    #[cfg(any(test, feature = "internals"))]
    pub fn mem_clone(&self) -> RingMem {
        self.mem.clone()
    }

    /// The kernel asked to be woken to process this ring.
    pub fn needs_wakeup(&self) -> bool {
        self.mem.flags().load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }
}

/// Our consuming end (RX ring, completion ring).
pub struct ConsumerRing<T> {
    mem: RingMem,
    cached_prod: u32,
    cached_cons: u32,
    _t: PhantomData<T>,
}

impl<T: Copy> ConsumerRing<T> {
    pub fn new(mem: RingMem) -> Self {
        let cons = mem.consumer().load(Ordering::Relaxed);
        let prod = mem.producer().load(Ordering::Acquire);
        ConsumerRing {
            cached_prod: prod,
            cached_cons: cons,
            mem,
            _t: PhantomData,
        }
    }

    pub fn size(&self) -> u32 {
        self.mem.size
    }

    /// Entries ready, at most `max`. Loads the producer index only if the cache has none.
    pub fn available(&mut self, max: u32) -> u32 {
        let mut n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n == 0 {
            self.cached_prod = self.mem.producer().load(Ordering::Acquire);
            n = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        n.min(max)
    }

    /// Reads the `i`-th ready entry. `i` must be below `available()`.
    pub fn read(&self, i: u32) -> T {
        debug_assert!(i < self.cached_prod.wrapping_sub(self.cached_cons));
        self.mem.read(self.cached_cons.wrapping_add(i))
    }

    /// Another view of the same ring memory (tests audit a ring from the other side).
    #[cfg(any(test, feature = "internals"))]
    pub fn mem_clone(&self) -> RingMem {
        self.mem.clone()
    }

    /// Hands `n` read slots back to the producer (release: our reads are done first).
    pub fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.mem
            .consumer()
            .store(self.cached_cons, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_and_consumer_pass_entries_in_order_and_wrap() {
        let mem = RingMem::anonymous::<u64>(8).unwrap();
        let mut p = ProducerRing::<u64>::new(mem.clone());
        let mut c = ConsumerRing::<u64>::new(mem);
        let mut next = 0u64;
        let mut expect = 0u64;
        for round in 0..100 {
            let want = (round % 7 + 1) as u32;
            let n = p.free(want).min(want);
            for i in 0..n {
                p.write(i, next);
                next += 1;
            }
            p.submit(n);
            let m = c.available(u32::MAX);
            assert!(m <= 8);
            for i in 0..m {
                assert_eq!(c.read(i), expect);
                expect += 1;
            }
            c.release(m);
        }
        assert_eq!(next, expect);
    }

    #[test]
    fn a_full_ring_refuses_more() {
        let mem = RingMem::anonymous::<u64>(4).unwrap();
        let mut p = ProducerRing::<u64>::new(mem.clone());
        let mut c = ConsumerRing::<u64>::new(mem);
        assert_eq!(p.free(10), 4);
        for i in 0..4 {
            p.write(i, i as u64);
        }
        p.submit(4);
        assert_eq!(p.free(1), 0);
        assert_eq!(c.available(2), 2);
        c.release(2);
        assert_eq!(p.free(1), 2);
    }

    #[test]
    fn bad_offsets_are_refused() {
        let map = Arc::new(Mapping::anonymous(4096).unwrap());
        let off = RingOffset {
            producer: 0,
            consumer: 4,
            flags: 8,
            desc: 64,
        };
        assert!(
            RingMem::new::<u64>(map.clone(), &off, 1024).is_err(),
            "8 KiB of descriptors in 4 KiB"
        );
        assert!(RingMem::new::<u64>(map.clone(), &off, 3).is_err());
        assert!(RingMem::new::<u64>(map, &off, 256).is_ok());
    }
}
