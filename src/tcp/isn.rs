//! Initial sequence numbers (RFC 6528) and per-host-pair timestamp offsets (RFC 7323 7.1).
//!
//! RFC 6528 3: `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`, where `M` is a
//! timer that ticks every 4 microseconds and `F` is a keyed pseudorandom function. Here `F` is
//! SipHash-1-3 keyed with a 128-bit secret that the worker draws from the OS at startup; this
//! module never reads a clock or a random source.
//!
//! The result: ISNs of one 4-tuple advance with time (so a new incarnation of a connection starts
//! above the old one's sequence space, which is what lets a SYN reuse a TIME-WAIT tuple), while an
//! off-path attacker who does not know the key cannot predict the ISN of any other tuple.

use siphasher::sip::SipHasher13;
use siphasher::sip128::SipHasher13 as SipHasher13x128;

use crate::time::Instant;
use crate::wire::segment::FourTuple;
use crate::wire::seq::SeqNumber;

/// Label from which the timestamp-offset key is derived, so that the ISN key and the TSval key
/// are independent (knowing one offset tells nothing about `F`).
const TS_KEY_LABEL: &[u8] = b"synack/ts-offset/v1";

/// Computes ISNs and timestamp offsets. Cheap to share: immutable after construction.
#[derive(Clone)]
pub struct IsnGenerator {
    isn_hasher: SipHasher13,
    ts_hasher: SipHasher13,
}

impl std::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the keys.
        f.write_str("IsnGenerator { .. }")
    }
}

impl IsnGenerator {
    /// `key` must be secret and random (drawn from the OS once per process).
    pub fn new(key: [u8; 16]) -> Self {
        // The TSval key is a PRF of the master key under a fixed label: one secret to manage,
        // two independent functions.
        let ts_key = SipHasher13x128::new_with_key(&key)
            .hash(TS_KEY_LABEL)
            .as_bytes();
        IsnGenerator {
            isn_hasher: SipHasher13::new_with_key(&key),
            ts_hasher: SipHasher13::new_with_key(&ts_key),
        }
    }

    /// RFC 6528 3: the initial send sequence number for a connection on `tuple` opened at `now`.
    pub fn isn(&self, tuple: &FourTuple, now: Instant) -> SeqNumber {
        // RFC 6528 3: "M is the 4 microsecond timer"; it wraps every ~4.77 hours.
        let m = (now.as_micros() / 4) as u32;
        SeqNumber::new(m.wrapping_add(self.f(tuple)))
    }

    /// RFC 6528 3: F(localip, localport, remoteip, remoteport, secretkey).
    fn f(&self, tuple: &FourTuple) -> u32 {
        let (b, n) = tuple.key_bytes();
        self.isn_hasher.hash(&b[..n]) as u32
    }

    /// The offset added to our timestamp clock for every connection between our address and
    /// `tuple.remote_ip` (RFC 7323 7.1 allows a random per-connection offset; like Linux since
    /// 4.13 we key it on the address pair only, so TSvals toward one peer stay monotonic across
    /// connections, which keeps the peer's PAWS and TIME-WAIT reuse checks working). Ports are
    /// ignored.
    pub fn ts_offset(&self, tuple: &FourTuple) -> u32 {
        let (b, n) = tuple.address_pair_bytes();
        self.ts_hasher.hash(&b[..n]) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpAddress;
    use std::collections::HashSet;
    use std::time::Duration;

    const KEY: [u8; 16] = *b"0123456789abcdef";

    fn tuple(remote_port: u16) -> FourTuple {
        FourTuple {
            remote_ip: IpAddress::v4(0x0a00_0002),
            remote_port,
            local_ip: IpAddress::v4(0x0a00_0001),
            local_port: 80,
        }
    }

    #[test]
    fn ipv6_tuples_hash_every_byte() {
        let g = IsnGenerator::new(KEY);
        let now = Instant::from_micros(1_000_000);
        let mut base = [0u8; 16];
        base[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        let t = |r: [u8; 16]| FourTuple {
            remote_ip: IpAddress::v6(r),
            remote_port: 40000,
            local_ip: IpAddress::v6(base),
            local_port: 80,
        };
        let isn0 = g.isn(&t(base), now);
        let ts0 = g.ts_offset(&t(base));
        for i in 0..16 {
            let mut r = base;
            r[i] ^= 1;
            assert_ne!(g.isn(&t(r), now), isn0, "byte {i}");
            assert_ne!(g.ts_offset(&t(r)), ts0, "byte {i}");
        }
        // The IPv4 tuple with the same low bytes is not the IPv6 one.
        let mut v4 = t(base);
        v4.remote_ip = IpAddress::v4(v4.remote_ip.v4_bits());
        v4.local_ip = IpAddress::v4(v4.local_ip.v4_bits());
        assert_ne!(g.isn(&v4, now), isn0);
    }

    #[test]
    fn different_tuples_get_different_isns() {
        let g = IsnGenerator::new(KEY);
        let now = Instant::from_millis(1234);
        let isns: HashSet<u32> = (1000..11000).map(|p| g.isn(&tuple(p), now).raw()).collect();
        // 10k values drawn from 2^32: a collision has probability ~1%; allow a couple.
        assert!(isns.len() >= 9998, "only {} distinct ISNs", isns.len());
        // Neighbouring ports must not give neighbouring ISNs (F is not linear in the port).
        let a = g.isn(&tuple(1000), now);
        let b = g.isn(&tuple(1001), now);
        assert!((b - a).unsigned_abs() > 1 << 16, "{a} vs {b}");
    }

    #[test]
    fn same_tuple_advances_with_the_4us_clock() {
        let g = IsnGenerator::new(KEY);
        let t = tuple(40000);
        let t0 = Instant::from_micros(1_000_000);
        let i0 = g.isn(&t, t0);
        assert_eq!(g.isn(&t, t0 + Duration::from_micros(3)), i0);
        assert_eq!(g.isn(&t, t0 + Duration::from_micros(4)), i0 + 1u32);
        // One second later: 250000 ticks further, in sequence-space order.
        let i1 = g.isn(&t, t0 + Duration::from_secs(1));
        assert_eq!(i1 - i0, 250_000);
        assert!(i1.gt(i0));
    }

    #[test]
    fn deterministic_for_a_fixed_key_and_key_dependent() {
        let now = Instant::from_millis(77);
        let a = IsnGenerator::new(KEY);
        let b = IsnGenerator::new(KEY);
        let c = IsnGenerator::new(*b"fedcba9876543210");
        for p in 1..100 {
            assert_eq!(a.isn(&tuple(p), now), b.isn(&tuple(p), now));
            assert_eq!(a.ts_offset(&tuple(p)), b.ts_offset(&tuple(p)));
        }
        let differ = (1..100)
            .filter(|&p| a.isn(&tuple(p), now) != c.isn(&tuple(p), now))
            .count();
        assert!(differ >= 98);
    }

    #[test]
    fn ts_offset_depends_on_addresses_only_and_differs_from_f() {
        let g = IsnGenerator::new(KEY);
        let t1 = tuple(1000);
        let t2 = tuple(2000);
        assert_eq!(g.ts_offset(&t1), g.ts_offset(&t2));
        let other_host = FourTuple {
            remote_ip: IpAddress::v4(0x0a00_0003),
            ..t1
        };
        assert_ne!(g.ts_offset(&t1), g.ts_offset(&other_host));
        // Independent key: the TS offset is not the ISN hash.
        assert_ne!(g.ts_offset(&t1), g.isn(&t1, Instant::ZERO).raw());
    }
}
