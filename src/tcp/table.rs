//! The connection table: 4-tuple -> slot -> connection, with a capacity fixed at construction.
//!
//! - A slab of entries addressed by a `u32` slot. The slab's memory is reserved up front and
//!   filled on demand (a freed slot is reused before a new one is touched), so no operation
//!   allocates after [`ConnTable::new`] and an idle table does not commit its whole reservation.
//! - An open-addressing index (linear probing, load factor at most 1/2) of 8-byte cells, each
//!   holding a 32-bit hash tag and the slot. Lookups compare tags first, so a probe rarely
//!   touches a slab entry that is not the one sought.
//! - Removal uses backward-shift deletion, not tombstones: after any number of insert/remove
//!   cycles the index looks as if only the live keys had ever been inserted, so probe lengths
//!   do not creep up on a long-running server.
//! - The hash is keyed with a secret (given at construction, drawn from the OS by the worker) so
//!   that remote peers cannot aim many tuples at one probe run. It is a two-round
//!   multiply-fold mixer, not a cryptographic PRF: the same trade-off Linux makes with its keyed
//!   `jhash` for the established-socket hash. SipHash-1-3 was measured as the alternative (see
//!   the `timing` test and the report in the commit): the mixer is several times cheaper, and
//!   this runs for every packet.
//! - Every slot has a generation that increments on each removal, so a timer or any other
//!   outside reference `(slot, generation)` can tell that the connection it pointed at is gone
//!   (lazy cancellation, see [`super::timer`]).

use siphasher::sip::SipHasher13;

use crate::wire::segment::FourTuple;

/// Largest supported capacity (the index then has 2^29 cells, 4 GiB).
pub const MAX_CAPACITY: usize = 1 << 28;

/// One slab entry. `key` is meaningful only while `value` is `Some`.
#[derive(Debug)]
struct Entry<T> {
    key: FourTuple,
    generation: u32,
    value: Option<T>,
}

/// A fixed-capacity map from [`FourTuple`] to `T` with stable `u32` slots.
pub struct ConnTable<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    /// Cells: `tag << 32 | (slot + 1)`, 0 = empty (so the index starts as zeroed pages).
    index: Box<[u64]>,
    mask: usize,
    /// `32 - log2(index.len())`: a tag's top bits are its home cell.
    shift: u32,
    len: usize,
    capacity: usize,
    hash_keys: [u64; 4],
}

impl<T> std::fmt::Debug for ConnTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnTable")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .field("index_cells", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl<T> ConnTable<T> {
    /// A table for up to `capacity` connections, hashing with the secret `hash_key`.
    ///
    /// # Panics
    /// If `capacity` is 0 or above [`MAX_CAPACITY`] (a configuration error, checked at startup).
    pub fn new(capacity: usize, hash_key: [u8; 16]) -> Self {
        assert!(
            capacity > 0 && capacity <= MAX_CAPACITY,
            "ConnTable capacity {capacity} out of range 1..={MAX_CAPACITY}"
        );
        // Load factor <= 1/2, at least 8 cells.
        let cells = (capacity * 2).next_power_of_two().max(8);
        let sip = SipHasher13::new_with_key(&hash_key);
        let hash_keys = [0u8, 1, 2, 3].map(|i| sip.hash(&[b't', b'b', b'l', i]));
        ConnTable {
            entries: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            index: vec![0u64; cells].into_boxed_slice(),
            mask: cells - 1,
            shift: 32 - cells.trailing_zeros(),
            len: 0,
            capacity,
            // The last key multiplies: keep it odd so it is invertible (no bits lost).
            hash_keys: [hash_keys[0], hash_keys[1], hash_keys[2], hash_keys[3] | 1],
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// The slot holding `key`, if any.
    #[inline]
    pub fn find(&self, key: &FourTuple) -> Option<u32> {
        let tag = self.tag(key);
        let mut pos = self.home(tag);
        loop {
            let cell = self.index[pos];
            if cell == 0 {
                return None;
            }
            if (cell >> 32) as u32 == tag {
                let slot = cell_slot(cell);
                if self.entries[slot as usize].key == *key {
                    return Some(slot);
                }
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// Stores `value` under `key` and returns its slot. Gives `value` back if the table is
    /// full ([`is_full`](Self::is_full)) or if `key` is already present (the caller is
    /// expected to [`find`](Self::find) first; a duplicate is refused, never stored twice).
    pub fn insert(&mut self, key: FourTuple, value: T) -> Result<u32, T> {
        if self.is_full() {
            return Err(value);
        }
        let tag = self.tag(&key);
        let mut pos = self.home(tag);
        loop {
            let cell = self.index[pos];
            if cell == 0 {
                break;
            }
            if (cell >> 32) as u32 == tag && self.entries[cell_slot(cell) as usize].key == key {
                return Err(value);
            }
            pos = (pos + 1) & self.mask;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                let e = &mut self.entries[slot as usize];
                e.key = key;
                e.value = Some(value);
                slot
            }
            None => {
                // Within the reserved capacity: never reallocates.
                let slot = self.entries.len() as u32;
                self.entries.push(Entry {
                    key,
                    generation: 0,
                    value: Some(value),
                });
                slot
            }
        };
        self.index[pos] = ((tag as u64) << 32) | (slot as u64 + 1);
        self.len += 1;
        Ok(slot)
    }

    /// Removes the connection in `slot`, returning its key and value; bumps the slot's
    /// generation. `None` if the slot is empty.
    pub fn remove(&mut self, slot: u32) -> Option<(FourTuple, T)> {
        let entry = self.entries.get_mut(slot as usize)?;
        let value = entry.value.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        let key = entry.key;
        let tag = self.tag(&key);
        let mut pos = self.home(tag);
        // The cell exists: every occupied slot is indexed.
        while cell_slot(self.index[pos]) != slot {
            pos = (pos + 1) & self.mask;
        }
        self.delete_cell(pos);
        self.free.push(slot);
        self.len -= 1;
        Some((key, value))
    }

    /// Removes `key` if present: its slot and value.
    pub fn remove_key(&mut self, key: &FourTuple) -> Option<(u32, T)> {
        let slot = self.find(key)?;
        self.remove(slot).map(|(_, v)| (slot, v))
    }

    /// Backward-shift deletion: empties cell `hole`, then walks the probe run after it and
    /// moves back every cell whose home allows it, so no run is ever broken by a gap.
    fn delete_cell(&mut self, mut hole: usize) {
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let cell = self.index[j];
            if cell == 0 {
                break;
            }
            let home = self.home((cell >> 32) as u32);
            // The cell at j may move to `hole` iff `hole` lies in its probe path [home, j).
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.index[hole] = cell;
                hole = j;
            }
        }
        self.index[hole] = 0;
    }

    pub fn get(&self, slot: u32) -> Option<&T> {
        self.entries.get(slot as usize)?.value.as_ref()
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.entries.get_mut(slot as usize)?.value.as_mut()
    }

    /// The key of an occupied slot.
    #[cfg(any(test, feature = "internals"))]
    pub fn key(&self, slot: u32) -> Option<&FourTuple> {
        let e = self.entries.get(slot as usize)?;
        e.value.as_ref().map(|_| &e.key)
    }

    /// Incremented (wrapping) every time `slot` is vacated; 0 for a slot never used.
    pub fn generation(&self, slot: u32) -> u32 {
        self.entries.get(slot as usize).map_or(0, |e| e.generation)
    }

    /// Occupied slots in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &FourTuple, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.value.as_ref().map(|v| (i as u32, &e.key, v)))
    }

    /// Occupied slots in slot order, values mutable.
    #[cfg(any(test, feature = "internals"))]
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &FourTuple, &mut T)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(i, e)| e.value.as_mut().map(|v| (i as u32, &e.key, v)))
    }

    /// Bytes of memory per connection slot when the table is full, excluding what `T` itself
    /// points to: one slab entry, one free-list cell, and the index cells divided by capacity.
    #[cfg(any(test, feature = "internals"))]
    pub fn bytes_per_slot(&self) -> usize {
        std::mem::size_of::<Entry<T>>()
            + std::mem::size_of::<u32>()
            + self.index.len() * std::mem::size_of::<u64>() / self.capacity
    }

    #[inline]
    fn home(&self, tag: u32) -> usize {
        (tag >> self.shift) as usize
    }

    /// The keyed hash, truncated to the 32-bit tag kept in the index.
    #[inline]
    fn tag(&self, t: &FourTuple) -> u32 {
        let k = &self.hash_keys;
        // The peer's address and port are the attacker's to choose: each is its own keyed
        // operand, so no choice of one cancels another (an IPv4 peer has `rh` == 0 and `rl`
        // holding ::ffff:a.b.c.d). Our address is one of a few we serve: folded in with the ports.
        let (rh, rl) = t.remote_ip.words();
        let (lh, ll) = t.local_ip.words();
        let ports = ((t.remote_port as u64) << 16) | t.local_port as u64;
        let h = folded_multiply(rl ^ k[0], rh ^ k[1]);
        let h = folded_multiply(h ^ ports ^ k[2], (lh ^ ll) ^ k[3]);
        (h >> 32) as u32 ^ h as u32
    }

    /// Longest distance of any cell from its home (tests and diagnostics).
    #[cfg(test)]
    fn max_displacement(&self) -> usize {
        self.index
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0)
            .map(|(pos, c)| pos.wrapping_sub(self.home((c >> 32) as u32)) & self.mask)
            .max()
            .unwrap_or(0)
    }
}

#[inline]
fn cell_slot(cell: u64) -> u32 {
    (cell as u32).wrapping_sub(1)
}

/// Full 64x64->128 multiply, halves folded together with xor.
#[inline]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let p = (x as u128) * (y as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpAddress;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const KEY: [u8; 16] = *b"conn-table-key-0";

    fn t(n: u32) -> FourTuple {
        FourTuple {
            remote_ip: IpAddress::v4(0x0a00_0000 | (n >> 16)),
            remote_port: n as u16,
            local_ip: IpAddress::v4(0x0a00_0001),
            local_port: 80,
        }
    }

    #[test]
    fn insert_find_remove() {
        let mut tb = ConnTable::new(4, KEY);
        assert!(tb.is_empty());
        let s1 = tb.insert(t(1), "one").unwrap();
        let s2 = tb.insert(t(2), "two").unwrap();
        assert_ne!(s1, s2);
        assert_eq!(tb.find(&t(1)), Some(s1));
        assert_eq!(tb.find(&t(2)), Some(s2));
        assert_eq!(tb.find(&t(3)), None);
        assert_eq!(tb.get(s1), Some(&"one"));
        assert_eq!(tb.key(s2), Some(&t(2)));
        *tb.get_mut(s2).unwrap() = "deux";
        assert_eq!(tb.len(), 2);

        let g = tb.generation(s1);
        assert_eq!(tb.remove(s1), Some((t(1), "one")));
        assert_eq!(tb.generation(s1), g + 1);
        assert_eq!(tb.remove(s1), None, "double remove");
        assert_eq!(tb.generation(s1), g + 1);
        assert_eq!(tb.get(s1), None);
        assert_eq!(tb.key(s1), None);
        assert_eq!(tb.find(&t(1)), None);
        assert_eq!(tb.remove_key(&t(2)), Some((s2, "deux")));
        assert!(tb.is_empty());
        // Out-of-range slots are simply empty.
        assert_eq!(tb.get(1000), None);
        assert_eq!(tb.remove(1000), None);
        assert_eq!(tb.generation(1000), 0);
    }

    #[test]
    fn duplicate_key_is_refused() {
        let mut tb = ConnTable::new(4, KEY);
        let s = tb.insert(t(1), 1).unwrap();
        assert_eq!(tb.insert(t(1), 2), Err(2));
        assert_eq!(tb.get(s), Some(&1));
        assert_eq!(tb.len(), 1);
    }

    #[test]
    fn full_table_refuses_then_accepts_after_remove() {
        let cap = 100;
        let mut tb = ConnTable::new(cap, KEY);
        let slots: Vec<u32> = (0..cap as u32)
            .map(|i| tb.insert(t(i), i).unwrap())
            .collect();
        assert!(tb.is_full());
        assert_eq!(tb.insert(t(1000), 1000), Err(1000));
        // Slots are dense 0..cap.
        let mut sorted = slots.clone();
        sorted.sort();
        assert_eq!(sorted, (0..cap as u32).collect::<Vec<_>>());
        tb.remove(slots[17]).unwrap();
        assert!(!tb.is_full());
        // The freed slot is reused.
        assert_eq!(tb.insert(t(1000), 1000), Ok(slots[17]));
        assert_eq!(tb.find(&t(1000)), Some(slots[17]));
        for i in (0..cap as u32).filter(|&i| i != 17) {
            assert_eq!(tb.get(tb.find(&t(i)).unwrap()), Some(&i));
        }
        assert_eq!(tb.iter().count(), cap);
    }

    #[test]
    fn no_reallocation_after_construction() {
        let cap = 1000;
        let mut tb = ConnTable::new(cap, KEY);
        let entries_ptr = tb.entries.as_ptr();
        let free_ptr = tb.free.as_ptr();
        for round in 0..5u32 {
            for i in 0..cap as u32 {
                tb.insert(t(i + round * 7), i).unwrap();
            }
            for i in 0..cap as u32 {
                tb.remove_key(&t(i + round * 7)).unwrap();
            }
        }
        assert_eq!(tb.entries.as_ptr(), entries_ptr);
        assert_eq!(tb.free.as_ptr(), free_ptr);
        assert_eq!(tb.entries.capacity(), cap);
    }

    #[test]
    fn many_cycles_do_not_degrade_probes() {
        // A table kept 90% full while 2M insert/remove pairs churn through it.
        let cap = 4096;
        let mut tb = ConnTable::new(cap, KEY);
        let mut live: Vec<u32> = Vec::new();
        let mut next = 0u32;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut worst = 0;
        for _ in 0..2_000_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if live.len() < cap * 9 / 10 {
                tb.insert(t(next), next).unwrap();
                live.push(next);
                next += 1;
            } else {
                let i = (x as usize) % live.len();
                let k = live.swap_remove(i);
                assert_eq!(tb.remove_key(&t(k)).map(|(_, v)| v), Some(k));
            }
            if next.is_multiple_of(65536) {
                worst = worst.max(tb.max_displacement());
            }
        }
        assert_eq!(tb.len(), live.len());
        for &k in &live {
            assert_eq!(tb.get(tb.find(&t(k)).unwrap()), Some(&k));
        }
        // Linear probing at load 0.45 with a good hash: runs stay short (tens at worst).
        // With tombstones this would grow without bound.
        worst = worst.max(tb.max_displacement());
        assert!(worst < 64, "max displacement {worst}");
    }

    #[test]
    fn sequential_ports_spread_over_the_index() {
        // A client host opening connections from consecutive ports to one server port: the
        // pattern of a benchmark. The hash must not cluster them.
        let cap = 1 << 16;
        let mut tb = ConnTable::new(cap, KEY);
        for p in 0..cap as u32 {
            let k = FourTuple {
                remote_ip: IpAddress::v4(0x0a00_0002),
                remote_port: p as u16,
                local_ip: IpAddress::v4(0x0a00_0001),
                local_port: 80,
            };
            tb.insert(k, ()).unwrap();
        }
        assert!(tb.max_displacement() < 64, "{}", tb.max_displacement());
    }

    #[test]
    fn hash_depends_on_the_key() {
        let a = ConnTable::<()>::new(16, KEY);
        let b = ConnTable::<()>::new(16, *b"another-key-0000");
        let differ = (0..100).filter(|&i| a.tag(&t(i)) != b.tag(&t(i))).count();
        assert!(differ >= 99);
    }

    #[test]
    fn memory_per_slot() {
        let tb = ConnTable::<[u8; 64]>::new(1 << 16, KEY);
        // Entry: 36 (key: two 16-byte addresses, two ports) + 4 (generation) + 1 (Option
        // tag) + 64, padded to 108 or so; + 4 free list + 16 index.
        let b = tb.bytes_per_slot();
        assert!(b <= 108 + 4 + 16, "{b}");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8),
        Remove(u8),
        RemoveSlot(u8),
        Find(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<u8>().prop_map(Op::Insert),
            2 => any::<u8>().prop_map(Op::Remove),
            1 => any::<u8>().prop_map(Op::RemoveSlot),
            2 => any::<u8>().prop_map(Op::Find),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_hashmap_model(cap in 1usize..80, ops in proptest::collection::vec(op(), 1..400)) {
            let mut tb = ConnTable::new(cap, KEY);
            let mut model: HashMap<FourTuple, (u32, u32)> = HashMap::new(); // key -> (slot, value)
            let mut gens: HashMap<u32, u32> = HashMap::new();
            for (n, op) in ops.into_iter().enumerate() {
                let n = n as u32;
                match op {
                    Op::Insert(k) => {
                        let key = t(k as u32 * 977);
                        let r = tb.insert(key, n);
                        if model.contains_key(&key) || model.len() == cap {
                            prop_assert_eq!(r, Err(n));
                        } else {
                            let slot = r.unwrap();
                            prop_assert!((slot as usize) < cap);
                            prop_assert!(model.values().all(|&(s, _)| s != slot));
                            model.insert(key, (slot, n));
                        }
                    }
                    Op::Remove(k) => {
                        let key = t(k as u32 * 977);
                        let r = tb.remove_key(&key);
                        let m = model.remove(&key);
                        prop_assert_eq!(r, m);
                        if let Some((slot, _)) = m {
                            *gens.entry(slot).or_default() += 1;
                        }
                    }
                    Op::RemoveSlot(s) => {
                        let slot = s as u32 % (cap as u32 + 2);
                        let r = tb.remove(slot);
                        let m = model.iter().find(|(_, v)| v.0 == slot).map(|(k, v)| (*k, v.1));
                        prop_assert_eq!(r, m);
                        if let Some((k, _)) = m {
                            model.remove(&k);
                            *gens.entry(slot).or_default() += 1;
                        }
                    }
                    Op::Find(k) => {
                        let key = t(k as u32 * 977);
                        prop_assert_eq!(tb.find(&key), model.get(&key).map(|v| v.0));
                    }
                }
                prop_assert_eq!(tb.len(), model.len());
                prop_assert_eq!(tb.is_full(), model.len() == cap);
            }
            for (key, (slot, v)) in &model {
                prop_assert_eq!(tb.find(key), Some(*slot));
                prop_assert_eq!(tb.get(*slot), Some(v));
            }
            for (slot, g) in &gens {
                prop_assert_eq!(tb.generation(*slot), *g);
            }
            let mut seen: Vec<u32> = tb.iter().map(|(s, _, _)| s).collect();
            seen.sort();
            let mut want: Vec<u32> = model.values().map(|v| v.0).collect();
            want.sort();
            prop_assert_eq!(seen, want);
        }
    }
}
