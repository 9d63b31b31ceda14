//! SYN cookies (RFC 4987 3.6): answer a SYN without keeping state, and rebuild the connection
//! from the final ACK of the handshake.
//!
//! Our ISN carries everything needed to validate that ACK later: a keyed MAC over the 4-tuple,
//! the client's ISN, a coarse time counter and an index into a small MSS table. The layout is
//! synack's own (the idea and the parameters follow Linux's `net/ipv4/syncookies.c`: 64-second
//! counter periods, cookies valid for up to two older periods, a 4-entry MSS table, options
//! carried in the low bits of our TSval):
//!
//! ```text
//!   plain = | age counter (2 bits) | MSS index (2 bits) | MAC (28 bits) |
//!   ISN   = plain + OFFSET(key, 4-tuple, client ISN)          (mod 2^32)
//! ```
//!
//! The offset hides the counter and MSS index from observers and makes ISNs of different
//! tuples unrelated. The MAC is `SipHash-1-3(key, 4-tuple, client ISN, full counter, MSS index)`
//! truncated to 28 bits, so a blind guess of the ACK number passes with probability about
//! `3/4 * 2^-28` (about 3 in a billion).
//!
//! Window scale and SACK-permitted cannot fit in the ISN. When the client sent timestamps, they
//! travel in the low 6 bits of our TSval (echoed back in TSecr), like Linux:
//! `| ts_clock bits 31..6 | ECN (bit 5, always 0 here) | SACK ok (bit 4) | wscale (bits 3..0, 0xf = none) |`.
//! Without timestamps the connection is rebuilt without window scaling and without SACK.
//!
//! Sans-IO: the key comes in at construction (drawn from the OS by the worker), time as `now`.

use siphasher::sip::SipHasher13;

use crate::time::Instant;
use crate::wire::segment::FourTuple;
use crate::wire::seq::SeqNumber;

/// MSS values a cookie can encode; the SYN's MSS is rounded down to one of these (a SYN with an
/// MSS below the smallest, or none, gets the smallest: 536 is the RFC 9293 3.7.1 default).
/// The same table as Linux, which picked values common on the Internet.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// The IPv6 table (Linux's `msstab` of syncookies.c for IPv6): the minimum MTU 1280, common
/// tunnel and Ethernet MTUs, and jumbo frames, each less 60 bytes of headers. A SYN without
/// MSS option gets 1220 (RFC 8200 5: every IPv6 link carries 1280).
pub const MSS_TABLE_V6: [u16; 4] = [1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60];

/// The table for a connection's family.
#[inline]
pub fn mss_table(v4: bool) -> &'static [u16; 4] {
    if v4 { &MSS_TABLE } else { &MSS_TABLE_V6 }
}

/// Length of one counter period, in microseconds (64 s, as Linux).
pub const COUNTER_PERIOD_US: u64 = 64_000_000;

/// A cookie made in counter period `c` is accepted in periods `c ..= c + MAX_AGE`,
/// i.e. for at least 128 s and at most 192 s.
pub const MAX_AGE: u32 = 2;

const MAC_BITS: u32 = 28;
const MAC_MASK: u32 = (1 << MAC_BITS) - 1;

/// Low bits of our TSval that carry options in a cookie SYN/ACK.
pub const TS_OPTION_BITS: u32 = 6;
const TS_OPTION_MASK: u32 = (1 << TS_OPTION_BITS) - 1;
const TS_WSCALE_MASK: u32 = 0xf;
const TS_WSCALE_NONE: u32 = 0xf;
const TS_SACK_OK: u32 = 1 << 4;
/// RFC 7323 2.3: the largest window shift.
const MAX_WSCALE: u8 = 14;

const TAG_OFFSET: u8 = 1;
const TAG_MAC: u8 = 2;

/// Makes and checks SYN cookies with one secret key.
#[derive(Clone)]
pub struct SynCookies {
    hasher: SipHasher13,
}

impl std::fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SynCookies { .. }")
    }
}

impl SynCookies {
    /// `key` must be secret and random (drawn from the OS once per process).
    pub fn new(key: [u8; 16]) -> Self {
        SynCookies {
            hasher: SipHasher13::new_with_key(&key),
        }
    }

    /// The ISN for our SYN/ACK to a SYN on `tuple` with sequence number `client_isn` and MSS
    /// option `client_mss` (pass 536 if the SYN had none), and the MSS the connection will use
    /// (the largest table entry not above `client_mss`).
    pub fn make(
        &self,
        tuple: &FourTuple,
        client_isn: SeqNumber,
        client_mss: u16,
        now: Instant,
    ) -> (SeqNumber, u16) {
        let index = mss_index(client_mss, tuple.is_v4());
        let counter = counter(now);
        let plain = ((counter as u32 & 3) << 30)
            | ((index as u32) << MAC_BITS)
            | self.mac(tuple, client_isn, counter, index);
        let isn = plain.wrapping_add(self.offset(tuple, client_isn));
        (SeqNumber::new(isn), mss_table(tuple.is_v4())[index as usize])
    }

    /// Validates the final ACK of a handshake we answered with a cookie: `ack` is its SEG.ACK
    /// (our ISN + 1) and `seq` its SEG.SEQ (the client's ISN + 1). Returns the MSS encoded in
    /// the cookie, or `None` if the ACK does not carry a cookie of ours for this tuple that is at
    /// most [`MAX_AGE`] periods old.
    pub fn check(
        &self,
        tuple: &FourTuple,
        ack: SeqNumber,
        seq: SeqNumber,
        now: Instant,
    ) -> Option<u16> {
        let client_isn = seq - 1u32;
        let our_isn = (ack - 1u32).raw();
        let plain = our_isn.wrapping_sub(self.offset(tuple, client_isn));
        let low_counter = plain >> 30;
        let index = ((plain >> MAC_BITS) & 3) as u8;
        let now_counter = counter(now);
        // The 2 counter bits give the age modulo 4; ages 0..=MAX_AGE are accepted.
        let age = (now_counter as u32).wrapping_sub(low_counter) & 3;
        if age > MAX_AGE {
            return None;
        }
        // A counter before the epoch cannot have been issued.
        let made_counter = now_counter.checked_sub(age as u64)?;
        if plain & MAC_MASK != self.mac(tuple, client_isn, made_counter, index) {
            return None;
        }
        Some(mss_table(tuple.is_v4())[index as usize])
    }

    /// The part of the ISN that does not depend on time or MSS: hides the plain fields.
    fn offset(&self, tuple: &FourTuple, client_isn: SeqNumber) -> u32 {
        let (t, n) = tuple.key_bytes();
        let mut b = [0u8; 41];
        b[0] = TAG_OFFSET;
        b[1..1 + n].copy_from_slice(&t[..n]);
        b[1 + n..5 + n].copy_from_slice(&client_isn.raw().to_be_bytes());
        self.hasher.hash(&b[..5 + n]) as u32
    }

    fn mac(&self, tuple: &FourTuple, client_isn: SeqNumber, counter: u64, index: u8) -> u32 {
        let (t, n) = tuple.key_bytes();
        let mut b = [0u8; 50];
        b[0] = TAG_MAC;
        b[1..1 + n].copy_from_slice(&t[..n]);
        b[1 + n..5 + n].copy_from_slice(&client_isn.raw().to_be_bytes());
        b[5 + n..13 + n].copy_from_slice(&counter.to_be_bytes());
        b[13 + n] = index;
        self.hasher.hash(&b[..14 + n]) as u32 & MAC_MASK
    }

    /// Our TSval for a cookie SYN/ACK: `ts_clock` (the TSval the connection would send now,
    /// offset included) with its low 6 bits replaced by the client's window scale (`None` if
    /// the SYN had no window scale option; values above 14 are clamped to 14, RFC 7323 2.3) and
    /// SACK-permitted. The result is never above `ts_clock` (RFC 7323 5.4: TSvals must not go
    /// backwards, and later segments will use the real clock).
    pub fn encode_ts_options(ts_clock: u32, wscale: Option<u8>, sack_ok: bool) -> u32 {
        let ws = match wscale {
            Some(w) => w.min(MAX_WSCALE) as u32,
            None => TS_WSCALE_NONE,
        };
        let opts = ws | if sack_ok { TS_SACK_OK } else { 0 };
        let ts = (ts_clock & !TS_OPTION_MASK) | opts;
        if opts > ts_clock & TS_OPTION_MASK {
            // Step back one 64-tick block so the value is not in our own future.
            ts.wrapping_sub(1 << TS_OPTION_BITS)
        } else {
            ts
        }
    }

    /// The options [`encode_ts_options`](Self::encode_ts_options) stored, read back from the
    /// TSecr of the final ACK: (client's window scale, SACK permitted).
    pub fn decode_ts_options(tsecr: u32) -> (Option<u8>, bool) {
        let ws = tsecr & TS_WSCALE_MASK;
        let wscale = if ws == TS_WSCALE_NONE {
            None
        } else {
            Some((ws as u8).min(MAX_WSCALE))
        };
        (wscale, tsecr & TS_SACK_OK != 0)
    }
}

/// The index of the largest entry of the family's MSS table not above `mss` (0 if `mss` is
/// below them all).
pub fn mss_index(mss: u16, v4: bool) -> u8 {
    mss_table(v4).iter().rposition(|&m| m <= mss).unwrap_or(0) as u8
}

fn counter(now: Instant) -> u64 {
    now.as_micros() / COUNTER_PERIOD_US
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpAddress;
    use proptest::prelude::*;
    use std::time::Duration;

    const KEY: [u8; 16] = *b"syncookie-test-k";

    fn tuple() -> FourTuple {
        FourTuple {
            remote_ip: IpAddress::v4(0xc0a8_0102),
            remote_port: 51234,
            local_ip: IpAddress::v4(0xc0a8_0101),
            local_port: 8080,
        }
    }

    fn tuple6() -> FourTuple {
        let mut r = [0u8; 16];
        r[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        r[15] = 2;
        let mut l = r;
        l[15] = 1;
        FourTuple {
            remote_ip: IpAddress::v6(r),
            remote_port: 51234,
            local_ip: IpAddress::v6(l),
            local_port: 8080,
        }
    }

    fn t0() -> Instant {
        // Well past the epoch, in the middle of a counter period.
        Instant::from_micros(1000 * COUNTER_PERIOD_US + COUNTER_PERIOD_US / 2)
    }

    #[test]
    fn mss_rounds_down_to_the_table() {
        assert_eq!(mss_index(0, true), 0);
        assert_eq!(mss_index(535, true), 0);
        assert_eq!(mss_index(536, true), 0);
        assert_eq!(mss_index(1299, true), 0);
        assert_eq!(mss_index(1300, true), 1);
        assert_eq!(mss_index(1459, true), 2);
        assert_eq!(mss_index(1460, true), 3);
        assert_eq!(mss_index(9000, true), 3);
        assert_eq!(mss_index(536, false), 0);
        assert_eq!(mss_index(1440, false), 2);
        assert_eq!(mss_index(9000, false), 3);
        assert_eq!(MSS_TABLE_V6[mss_index(1460, false) as usize], 1440);
    }

    #[test]
    fn ipv6_cookies_use_the_ipv6_table_and_the_whole_tuple() {
        let c = SynCookies::new(KEY);
        let client_isn = SeqNumber::new(0x0102_0304);
        for (client_mss, want) in [(536, 1220), (1220, 1220), (1440, 1440), (1460, 1440), (9000, 8940)] {
            let (isn, mss) = c.make(&tuple6(), client_isn, client_mss, t0());
            assert_eq!(mss, want, "client MSS {client_mss}");
            assert_eq!(
                c.check(&tuple6(), isn + 1u32, client_isn + 1u32, t0()),
                Some(want)
            );
        }
        let (isn, _) = c.make(&tuple6(), client_isn, 1440, t0());
        // Any byte of either address matters, not only the last four.
        for i in 0..16 {
            let mut t = tuple6();
            let mut r = *t.remote_ip.octets();
            r[i] ^= 0x40;
            t.remote_ip = IpAddress::v6(r);
            assert_eq!(c.check(&t, isn + 1u32, client_isn + 1u32, t0()), None, "byte {i}");
            let mut t = tuple6();
            let mut l = *t.local_ip.octets();
            l[i] ^= 0x40;
            t.local_ip = IpAddress::v6(l);
            assert_eq!(c.check(&t, isn + 1u32, client_isn + 1u32, t0()), None, "byte {i}");
        }
        // An IPv4 tuple with the same last four bytes is another tuple.
        let mut t = tuple6();
        t.remote_ip = IpAddress::v4(t.remote_ip.v4_bits());
        t.local_ip = IpAddress::v4(t.local_ip.v4_bits());
        assert_eq!(c.check(&t, isn + 1u32, client_isn + 1u32, t0()), None);
    }

    #[test]
    fn round_trip_for_each_mss() {
        let c = SynCookies::new(KEY);
        let client_isn = SeqNumber::new(0xdead_beef);
        for (client_mss, want) in [(536, 536), (1300, 1300), (1440, 1440), (1460, 1460)] {
            let (isn, mss) = c.make(&tuple(), client_isn, client_mss, t0());
            assert_eq!(mss, want);
            let got = c.check(&tuple(), isn + 1u32, client_isn + 1u32, t0());
            assert_eq!(got, Some(want));
        }
        // A client that asked for less than 536 is told 536, and the check agrees.
        let (isn, mss) = c.make(&tuple(), client_isn, 100, t0());
        assert_eq!(mss, 536);
        assert_eq!(
            c.check(&tuple(), isn + 1u32, client_isn + 1u32, t0()),
            Some(536)
        );
    }

    #[test]
    fn wrong_tuple_seq_or_ack_is_rejected() {
        let c = SynCookies::new(KEY);
        let client_isn = SeqNumber::new(7);
        let (isn, _) = c.make(&tuple(), client_isn, 1460, t0());
        let ack = isn + 1u32;
        let seq = client_isn + 1u32;
        assert!(c.check(&tuple(), ack, seq, t0()).is_some());
        // Off by one in either number.
        assert_eq!(c.check(&tuple(), ack + 1u32, seq, t0()), None);
        assert_eq!(c.check(&tuple(), ack - 1u32, seq, t0()), None);
        assert_eq!(c.check(&tuple(), ack, seq + 1u32, t0()), None);
        // Any field of the tuple changed.
        let mut t = tuple();
        t.remote_port += 1;
        assert_eq!(c.check(&t, ack, seq, t0()), None);
        let mut t = tuple();
        t.remote_ip = IpAddress::v4(t.remote_ip.v4_bits() ^ 1);
        assert_eq!(c.check(&t, ack, seq, t0()), None);
        let mut t = tuple();
        t.local_port = 80;
        assert_eq!(c.check(&t, ack, seq, t0()), None);
        // Another key.
        let other = SynCookies::new(*b"another-key-0000");
        assert_eq!(other.check(&tuple(), ack, seq, t0()), None);
    }

    #[test]
    fn expires_after_max_age_periods() {
        let c = SynCookies::new(KEY);
        let client_isn = SeqNumber::new(123_456);
        // Made at the very end of a period: valid for 2 more full periods.
        let made = Instant::from_micros(1001 * COUNTER_PERIOD_US - 1);
        let (isn, _) = c.make(&tuple(), client_isn, 1440, made);
        let check = |at: Instant| c.check(&tuple(), isn + 1u32, client_isn + 1u32, at);
        assert_eq!(check(made), Some(1440));
        let d = Duration::from_micros(COUNTER_PERIOD_US);
        assert_eq!(check(made + d), Some(1440));
        assert_eq!(check(made + d * 2), Some(1440));
        // Three periods later: too old.
        assert_eq!(check(made + d * 3), None);
        // Four periods later the 2 counter bits wrap to "age 0", but the MAC binds the full
        // counter, so it is still rejected.
        assert_eq!(check(made + d * 4), None);
        assert_eq!(check(made + d * 5), None);
        // A cookie from the future (clock went backwards, or forged) is rejected.
        assert_eq!(
            check(Instant::from_micros(made.as_micros() - COUNTER_PERIOD_US)),
            None
        );
    }

    #[test]
    fn near_epoch_does_not_underflow() {
        let c = SynCookies::new(KEY);
        let (isn, _) = c.make(&tuple(), SeqNumber::new(1), 1460, Instant::ZERO);
        assert_eq!(
            c.check(&tuple(), isn + 1u32, SeqNumber::new(2), Instant::ZERO),
            Some(1460)
        );
        // Random ACKs at time zero never panic.
        for a in 0..1000u32 {
            let _ = c.check(
                &tuple(),
                SeqNumber::new(a.wrapping_mul(0x9e37_79b9)),
                SeqNumber::new(2),
                Instant::ZERO,
            );
        }
    }

    #[test]
    fn random_acks_are_rejected() {
        let c = SynCookies::new(KEY);
        let seq = SeqNumber::new(1000);
        // A simple deterministic generator (xorshift) for 200k guesses.
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut accepted = 0;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if c.check(&tuple(), SeqNumber::new(x as u32), seq, t0())
                .is_some()
            {
                accepted += 1;
            }
        }
        // Expected false positives: 200k * 3/4 * 2^-28 ~ 0.0006.
        assert_eq!(accepted, 0);
    }

    #[test]
    fn plain_fields_are_hidden_by_the_offset() {
        // Same time, same MSS, many tuples: without the offset every ISN would share its top
        // 4 bits (counter and MSS index). With it, all 16 values show up.
        let c = SynCookies::new(KEY);
        let mut seen = [false; 16];
        for port in 0..1000u16 {
            let mut t = tuple();
            t.remote_port = port;
            let (isn, _) = c.make(&t, SeqNumber::new(1), 1460, t0());
            seen[(isn.raw() >> 28) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn ts_options_round_trip() {
        for ts_clock in [0u32, 1, 63, 64, 0x1234_5678, u32::MAX, 0x8000_0000] {
            for wscale in [None, Some(0), Some(7), Some(14)] {
                for sack in [false, true] {
                    let ts = SynCookies::encode_ts_options(ts_clock, wscale, sack);
                    assert_eq!(SynCookies::decode_ts_options(ts), (wscale, sack));
                    // Not in the future, and at most two 64-tick blocks behind.
                    assert!(ts_clock.wrapping_sub(ts) < 128, "{ts_clock} -> {ts}");
                }
            }
        }
        // Linux layout: wscale in bits 0..3, SACK in bit 4, ECN bit 5 left clear.
        assert_eq!(
            SynCookies::encode_ts_options(0x1000, Some(7), true),
            0x1000 - 64 + 0x17
        );
        assert_eq!(SynCookies::encode_ts_options(0x103f, None, false), 0x100f);
        // Out of range window scale is clamped (RFC 7323 2.3).
        let ts = SynCookies::encode_ts_options(0xffff, Some(200), false);
        assert_eq!(SynCookies::decode_ts_options(ts), (Some(14), false));
        assert_eq!(SynCookies::decode_ts_options(0x0e), (Some(14), false));
    }

    proptest! {
        #[test]
        fn any_cookie_round_trips_within_age(
            rip in any::<u32>(), rport in any::<u16>(), lip in any::<u32>(), lport in any::<u16>(),
            client_isn in any::<u32>(), mss in any::<u16>(),
            made_us in 0u64..(1u64 << 50), later_us in 0u64..(3 * COUNTER_PERIOD_US),
        ) {
            let c = SynCookies::new(KEY);
            let t = FourTuple { remote_ip: IpAddress::v4(rip), remote_port: rport, local_ip: IpAddress::v4(lip), local_port: lport };
            let made = Instant::from_micros(made_us);
            let (isn, used) = c.make(&t, SeqNumber::new(client_isn), mss, made);
            prop_assert_eq!(used, MSS_TABLE[mss_index(mss, true) as usize]);
            let at = Instant::from_micros(made_us + later_us);
            let age = at.as_micros() / COUNTER_PERIOD_US - made_us / COUNTER_PERIOD_US;
            let got = c.check(&t, isn + 1u32, SeqNumber::new(client_isn) + 1u32, at);
            if age <= MAX_AGE as u64 {
                prop_assert_eq!(got, Some(used));
            } else {
                prop_assert_eq!(got, None);
            }
        }

        #[test]
        fn ts_options_round_trip_any(ts_clock in any::<u32>(), ws in proptest::option::of(0u8..=14), sack in any::<bool>()) {
            let ts = SynCookies::encode_ts_options(ts_clock, ws, sack);
            prop_assert_eq!(SynCookies::decode_ts_options(ts), (ws, sack));
            prop_assert!(ts_clock.wrapping_sub(ts) < 128);
        }
    }
}
