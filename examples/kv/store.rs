//! One shard of the cache: the items whose keys hash to this worker. Items expire lazily (a
//! lookup finds them dead and removes them); the shard's memory is bounded, and an item that
//! would exceed the bound evicts the oldest stored ones (first in, first out: memcached evicts
//! the least recently used, which for a cache filled and then read is close).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// Bytes charged per item besides its key and value (the map's entry and the item's fields).
const ITEM_OVERHEAD: usize = 64;

/// A stored value.
#[derive(Clone, Debug)]
pub struct Item {
    /// The data block: the value and its trailing `\r\n`, sent as is.
    pub data: Bytes,
    /// The client's flags.
    pub flags: u32,
    /// When it expires, in seconds since the epoch; 0 for never.
    pub expires: u64,
    /// The cas unique.
    pub cas: u64,
}

impl Item {
    fn live(&self, now_unix: u64) -> bool {
        self.expires == 0 || now_unix < self.expires
    }
}

/// A shard: items by key, the memory they take, and the cas numbering.
pub struct Store {
    items: HashMap<Box<[u8]>, Item>,
    bytes: usize,
    limit: usize,
    /// cas uniques: `stores * step + offset` for the n-th store, so that shards never give the
    /// same one; with one shard, 1, 2, 3... as memcached numbers them.
    stores: u64,
    step: u64,
    offset: u64,
    evictions: u64,
    /// (key, cas) in the order stored: the eviction order. Entries whose item was replaced or
    /// removed since are skipped, and dropped when they outnumber the items.
    order: VecDeque<(Box<[u8]>, u64)>,
}

impl Store {
    /// The shard `index` of `shards`, holding at most `limit` bytes.
    pub fn new(index: usize, shards: usize, limit: usize) -> Store {
        Store {
            items: HashMap::new(),
            bytes: 0,
            limit,
            stores: 0,
            step: shards as u64,
            offset: index as u64 + 1,
            evictions: 0,
            order: VecDeque::new(),
        }
    }

    fn cost(key: &[u8], item: &Item) -> usize {
        key.len() + item.data.len() + ITEM_OVERHEAD
    }

    /// The live item under `key` (an expired one is removed).
    pub fn get(&mut self, key: &[u8], now_unix: u64) -> Option<&Item> {
        let live = self.items.get(key)?.live(now_unix);
        if !live {
            self.remove(key);
            return None;
        }
        self.items.get(key)
    }

    fn remove(&mut self, key: &[u8]) -> bool {
        match self.items.remove_entry(key) {
            Some((k, item)) => {
                self.bytes -= Self::cost(&k, &item);
                true
            }
            None => false,
        }
    }

    /// Stores `data` under `key` (`add`: only if no live item is there). Whether it stored.
    pub fn store(
        &mut self,
        add: bool,
        key: &[u8],
        data: Bytes,
        flags: u32,
        expires: u64,
        now_unix: u64,
    ) -> bool {
        if add && self.get(key, now_unix).is_some() {
            return false;
        }
        self.remove(key);
        self.stores += 1;
        let item = Item {
            data,
            flags,
            expires,
            cas: (self.stores - 1) * self.step + self.offset,
        };
        let cost = Self::cost(key, &item);
        while self.bytes + cost > self.limit {
            let Some((victim, cas)) = self.order.pop_front() else {
                break;
            };
            if self.items.get(&victim).is_some_and(|i| i.cas == cas) {
                self.remove(&victim);
                self.evictions += 1;
            }
        }
        self.order.push_back((key.into(), item.cas));
        self.bytes += cost;
        self.items.insert(key.into(), item);
        if self.order.len() > 2 * self.items.len() + 1024 {
            let items = &self.items;
            self.order
                .retain(|(k, cas)| items.get(k).is_some_and(|i| i.cas == *cas));
        }
        true
    }

    /// Removes the live item under `key`; whether there was one.
    pub fn delete(&mut self, key: &[u8], now_unix: u64) -> bool {
        self.get(key, now_unix).is_some() && self.remove(key)
    }

    /// Items held (expired ones not yet found included).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Bytes charged for the items held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Items evicted to stay within the limit.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}
