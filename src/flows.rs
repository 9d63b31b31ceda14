//! Which worker owns which connection, for the rare segment that arrives on another worker's
//! queue (the NIC's RSS table or key changed under load). Consulted only when a segment meets
//! no connection on the worker that received it; updated by each worker after its loop
//! iteration. Sharded so that workers seldom touch the same lock.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use crate::wire::segment::FourTuple;

const SHARDS: usize = 64;

pub struct FlowDirectory {
    shards: Box<[Mutex<HashMap<FourTuple, u16>>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for FlowDirectory {
    fn default() -> Self {
        FlowDirectory {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl FlowDirectory {
    fn shard(&self, t: &FourTuple) -> &Mutex<HashMap<FourTuple, u16>> {
        &self.shards[self.hasher.hash_one(t) as usize % SHARDS]
    }

    /// `worker` now owns `t`.
    pub fn claim(&self, t: FourTuple, worker: u16) {
        if let Ok(mut m) = self.shard(&t).lock() {
            m.insert(t, worker);
        }
    }

    /// `worker` no longer owns `t` (another worker's later claim is kept).
    pub fn release(&self, t: &FourTuple, worker: u16) {
        if let Ok(mut m) = self.shard(t).lock()
            && m.get(t) == Some(&worker)
        {
            m.remove(t);
        }
    }

    pub fn owner(&self, t: &FourTuple) -> Option<u16> {
        self.shard(t).lock().ok().and_then(|m| m.get(t).copied())
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    #[cfg(any(test, feature = "internals"))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpAddress;

    #[test]
    fn claim_owner_release() {
        let d = FlowDirectory::default();
        let t = FourTuple {
            remote_ip: IpAddress::v4(1),
            remote_port: 2,
            local_ip: IpAddress::v4(3),
            local_port: 4,
        };
        assert_eq!(d.owner(&t), None);
        d.claim(t, 1);
        assert_eq!(d.owner(&t), Some(1));
        d.release(&t, 0); // not the owner: ignored
        assert_eq!(d.owner(&t), Some(1));
        d.release(&t, 1);
        assert_eq!(d.owner(&t), None);
        assert!(d.is_empty());
    }
}
