//! Ephemeral ports for the connections we open: RFC 6056 3.3.4, Algorithm 4 ("double-hash
//! port selection"), as Linux's `__inet_hash_connect`. A keyed hash of (local address, remote
//! address, remote port) picks where in the range the search starts, and a table of counters,
//! indexed by a second keyed hash, moves that start on for every port handed out: ports toward
//! one remote advance in sequence (so a 4-tuple is not reused until the range has gone round),
//! while an observer cannot predict the ports used toward another remote.

use siphasher::sip::SipHasher13;

use crate::wire::IpAddress;

/// Counters of the perturbation table (RFC 6056 suggests a few hundred to a few thousand).
const TABLE: usize = 256;

pub(crate) struct PortAllocator {
    offset: SipHasher13,
    index: SipHasher13,
    table: Box<[u16; TABLE]>,
}

impl std::fmt::Debug for PortAllocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PortAllocator { .. }")
    }
}

fn key_bytes(local: &IpAddress, remote: &IpAddress, remote_port: u16) -> ([u8; 34], usize) {
    let mut b = [0u8; 34];
    if local.is_v4() && remote.is_v4() {
        b[..4].copy_from_slice(&local.octets()[12..]);
        b[4..8].copy_from_slice(&remote.octets()[12..]);
        b[8..10].copy_from_slice(&remote_port.to_be_bytes());
        (b, 10)
    } else {
        b[..16].copy_from_slice(local.octets());
        b[16..32].copy_from_slice(remote.octets());
        b[32..34].copy_from_slice(&remote_port.to_be_bytes());
        (b, 34)
    }
}

impl PortAllocator {
    /// Two secret keys: the offset function F and the table index function G.
    pub(crate) fn new(key_f: [u8; 16], key_g: [u8; 16]) -> Self {
        PortAllocator {
            offset: SipHasher13::new_with_key(&key_f),
            index: SipHasher13::new_with_key(&key_g),
            table: Box::new([0; TABLE]),
        }
    }

    /// A port in `first..=last` for a connection from `local` to `remote`:`remote_port`: the
    /// first one `suitable` accepts, probed in RFC 6056 Algorithm 4's order. `None` when the
    /// whole range was tried.
    pub(crate) fn choose(
        &mut self,
        local: &IpAddress,
        remote: &IpAddress,
        remote_port: u16,
        (first, last): (u16, u16),
        mut suitable: impl FnMut(u16) -> bool,
    ) -> Option<u16> {
        if first > last {
            return None;
        }
        let (b, n) = key_bytes(local, remote, remote_port);
        let offset = self.offset.hash(&b[..n]);
        let index = (self.index.hash(&b[..n]) % TABLE as u64) as usize;
        let count = (last - first) as u64 + 1;
        for _ in 0..count {
            let next = self.table[index];
            self.table[index] = next.wrapping_add(1);
            let port = first + ((offset.wrapping_add(next as u64)) % count) as u16;
            if suitable(port) {
                return Some(port);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> IpAddress {
        IpAddress::v4(u32::from_be_bytes([198, 18, 0, last]))
    }

    #[test]
    fn ports_toward_one_remote_advance_and_others_start_elsewhere() {
        let mut p = PortAllocator::new([1; 16], [2; 16]);
        let range = (32768, 60999);
        let a: Vec<u16> = (0..5)
            .map(|_| p.choose(&v4(2), &v4(1), 80, range, |_| true).unwrap())
            .collect();
        // Consecutive in the range (wrapping), not from its start.
        for w in a.windows(2) {
            assert!(w[1] == w[0] + 1 || (w[0] == 60999 && w[1] == 32768), "{a:?}");
        }
        assert_ne!(a[0], 32768);
        // Toward another remote (port or address) the search starts elsewhere.
        let b = p.choose(&v4(2), &v4(1), 8080, range, |_| true).unwrap();
        let c = p.choose(&v4(2), &v4(9), 80, range, |_| true).unwrap();
        assert!(!a.contains(&b) && !a.contains(&c) && b != c, "{a:?} {b} {c}");
        // Another key, other ports: the choice depends on the secret.
        let mut q = PortAllocator::new([3; 16], [4; 16]);
        assert_ne!(q.choose(&v4(2), &v4(1), 80, range, |_| true), Some(a[0]));
    }

    #[test]
    fn busy_ports_are_skipped_and_a_full_range_says_so() {
        let mut p = PortAllocator::new([5; 16], [6; 16]);
        let range = (40000, 40009);
        let mut taken = Vec::new();
        for _ in 0..10 {
            let port = p
                .choose(&v4(2), &v4(1), 80, range, |port| !taken.contains(&port))
                .unwrap();
            assert!((40000..=40009).contains(&port));
            taken.push(port);
        }
        taken.sort_unstable();
        assert_eq!(taken, (40000..=40009).collect::<Vec<_>>());
        assert_eq!(
            p.choose(&v4(2), &v4(1), 80, range, |port| !taken.contains(&port)),
            None
        );
        // IPv6 tuples hash all 16 bytes of each address.
        let a = IpAddress::from("fd00::1".parse::<std::net::Ipv6Addr>().unwrap());
        let b = IpAddress::from("fd00::2".parse::<std::net::Ipv6Addr>().unwrap());
        assert!(p.choose(&a, &b, 80, (1024, 65535), |_| true).is_some());
    }
}
