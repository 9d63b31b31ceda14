//! The Internet checksum: RFC 1071 (computation), RFC 1624 (incremental update), and the IPv4
//! and IPv6 pseudo-headers that TCP and ICMPv6 cover (RFC 9293 3.1 "Checksum", RFC 8200 8.1).
//!
//! The sum is accumulated over native-endian 64-bit words with end-around carry, 32 bytes per loop
//! step in two independent accumulators. RFC 1071 2(B) (byte-order independence) and 2(C)
//! (parallel summation) make that equal, after folding, to the sum of big-endian 16-bit words;
//! the byte order is fixed once, at the end. This is on the path of every byte sent and received.

/// A running one's-complement sum (RFC 1071). Add bytes and fields in wire order, then
/// [`finish`](Checksum::finish) to get the value to write into a header, or
/// [`fold`](Checksum::fold) to compare a received sum with `0xffff`.
///
/// Pieces may have any length: a piece that starts at an odd offset of the whole stream is
/// byte-swapped before it is added (RFC 1071 2(B)), so splitting the data anywhere gives the same
/// result as summing it at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    /// Native-endian 64-bit words summed with end-around carry: congruent modulo 2^16-1 to the
    /// one's-complement sum of native-endian 16-bit words.
    acc: u64,
    /// An odd number of bytes has been added so far.
    odd: bool,
}

/// `a + b` with end-around carry (one's-complement addition modulo 2^64-1).
#[inline(always)]
fn add_carry(a: u64, b: u64) -> u64 {
    let (s, c) = a.overflowing_add(b);
    // Cannot wrap: when c is 1, s <= 2^64 - 2.
    s.wrapping_add(c as u64)
}

/// The one's-complement sum of `data` as native-endian 64-bit words, the last partial word padded
/// with zeros at its end (RFC 1071 4.1: an odd trailing byte is padded with a zero byte).
#[inline]
fn sum_native(data: &[u8]) -> u64 {
    let (blocks, rest) = data.as_chunks::<32>();
    let (mut a, mut b) = (0u64, 0u64);
    for block in blocks {
        let (w, _) = block.as_chunks::<8>();
        // Two accumulators: the carry chains of `a` and `b` run in parallel (RFC 1071 2(C)).
        a = add_carry(a, u64::from_ne_bytes(w[0]));
        b = add_carry(b, u64::from_ne_bytes(w[1]));
        a = add_carry(a, u64::from_ne_bytes(w[2]));
        b = add_carry(b, u64::from_ne_bytes(w[3]));
    }
    let mut acc = add_carry(a, b);
    let (words, tail) = rest.as_chunks::<8>();
    for w in words {
        acc = add_carry(acc, u64::from_ne_bytes(*w));
    }
    // The last 0..=7 bytes, as 4-, 2- and 1-byte pieces. Each starts at an even offset, so it
    // can be summed as a narrower word without changing which half of a 16-bit word its bytes
    // land in. (Not a copy into a zeroed [u8; 8]: a variable-length copy becomes a memmove call.)
    let mut tail = tail;
    if let Some((w, rest)) = tail.split_first_chunk::<4>() {
        acc = add_carry(acc, u32::from_ne_bytes(*w) as u64);
        tail = rest;
    }
    if let Some((w, rest)) = tail.split_first_chunk::<2>() {
        acc = add_carry(acc, u16::from_ne_bytes(*w) as u64);
        tail = rest;
    }
    if let [b] = *tail {
        // RFC 1071 4.1: an odd last byte is padded with a zero byte after it.
        acc = add_carry(acc, u16::from_ne_bytes([b, 0]) as u64);
    }
    acc
}

/// Folds a native 64-bit sum to 16 bits, still native-endian.
#[inline(always)]
fn fold_native(acc: u64) -> u16 {
    let s = (acc & 0xffff_ffff) + (acc >> 32);
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

impl Checksum {
    #[inline]
    pub const fn new() -> Self {
        Checksum { acc: 0, odd: false }
    }

    /// Adds a native partial sum of a piece that starts at the current stream position.
    #[inline(always)]
    fn add_native(&mut self, piece_sum: u64, piece_len: usize) {
        // RFC 1071 2(B): a piece that starts at an odd offset contributes its bytes swapped.
        // Rotating a 64-bit word by 8 multiplies it by 2^8 modulo 2^64-1, hence modulo 2^16-1
        // (a divisor), which is exactly the byte swap of the folded 16-bit sum.
        let s = if self.odd {
            piece_sum.rotate_left(8)
        } else {
            piece_sum
        };
        self.acc = add_carry(self.acc, s);
        self.odd ^= piece_len & 1 == 1;
    }

    /// Adds `data` (any length) at the current position.
    #[inline]
    pub fn add_bytes(&mut self, data: &[u8]) {
        self.add_native(sum_native(data), data.len());
    }

    /// Adds a 16-bit field given in host order (as it would be written big-endian on the wire).
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn add_u16(&mut self, v: u16) {
        self.add_native(u16::from_ne_bytes(v.to_be_bytes()) as u64, 2);
    }

    /// Adds a 32-bit field given in host order (as it would be written big-endian on the wire).
    #[inline]
    pub fn add_u32(&mut self, v: u32) {
        self.add_native(u32::from_ne_bytes(v.to_be_bytes()) as u64, 4);
    }

    /// Adds another sum as if its bytes followed the ones added so far.
    #[inline]
    pub fn add_checksum(&mut self, other: Checksum) {
        self.add_native(other.acc, other.odd as usize);
    }

    /// The folded one's-complement sum (not complemented), in host order. A received header
    /// whose checksum field was included is intact when this is `0xffff` (RFC 1071 1(3)).
    #[inline]
    pub fn fold(self) -> u16 {
        u16::from_be(fold_native(self.acc))
    }

    /// The checksum to put into a header: the complement of the folded sum, in host order
    /// (write it with `to_be_bytes`).
    #[inline]
    pub fn finish(self) -> u16 {
        !self.fold()
    }

    /// True when the data summed so far, checksum field included, verifies.
    #[inline]
    pub fn is_valid(self) -> bool {
        self.fold() == 0xffff
    }
}

/// The Internet checksum of `data`, in host order.
#[cfg(any(test, feature = "internals"))]
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_bytes(data);
    c.finish()
}

/// The sum of the IPv4 pseudo-header (RFC 9293 3.1: source, destination, zero, protocol,
/// TCP length). `src` and `dst` are host order; `len` is the TCP header plus payload length.
#[inline]
pub fn pseudo_header_v4(src: u32, dst: u32, protocol: u8, len: u16) -> Checksum {
    let mut c = Checksum::new();
    c.add_native(
        add_carry(
            add_carry(
                u32::from_ne_bytes(src.to_be_bytes()) as u64,
                u32::from_ne_bytes(dst.to_be_bytes()) as u64,
            ),
            // Zero byte, protocol byte, then the 16-bit length: one 32-bit big-endian word.
            u32::from_ne_bytes((((protocol as u32) << 16) | len as u32).to_be_bytes()) as u64,
        ),
        12,
    );
    c
}

/// The sum of the IPv6 pseudo-header (RFC 8200 8.1): source, destination, the 32-bit
/// upper-layer packet length, three zero bytes and the next-header value. `next_header` is the
/// upper-layer protocol (TCP 6, ICMPv6 58), not the IPv6 header's Next Header when extension
/// headers follow it; `upper_len` is the upper-layer header plus data (RFC 8200 8.1: the
/// Payload Length minus the extension headers). For a packet with a Routing header `dst` is
/// the final destination; synack neither sends nor accepts such packets with segments left.
///
/// Five native 64-bit words added with end-around carry: the same cost as the IPv4 one plus
/// three additions, no loop and no byte-order fix-up per field.
#[inline]
pub fn pseudo_header_v6(
    src: &[u8; 16],
    dst: &[u8; 16],
    next_header: u8,
    upper_len: u32,
) -> Checksum {
    // A 128-bit native load split into its two native 64-bit halves: which half is which
    // depends on the target's byte order, but the sum of the two does not.
    let s = u128::from_ne_bytes(*src);
    let d = u128::from_ne_bytes(*dst);
    let [l0, l1, l2, l3] = upper_len.to_be_bytes();
    // Length, then zero, zero, zero, next header: bytes 32..40 of the pseudo-header.
    let last = u64::from_ne_bytes([l0, l1, l2, l3, 0, 0, 0, next_header]);
    let acc = add_carry(
        add_carry(
            add_carry(s as u64, (s >> 64) as u64),
            add_carry(d as u64, (d >> 64) as u64),
        ),
        last,
    );
    let mut c = Checksum::new();
    c.add_native(acc, 40);
    c
}

/// RFC 1624 3, eqn. 3: the new checksum `HC' = ~(~HC + ~m + m')` after a 16-bit field changes
/// from `old` (m) to `new` (m'). All values in host order.
#[cfg(any(test, feature = "internals"))]
#[inline]
pub fn update_u16(hc: u16, old: u16, new: u16) -> u16 {
    let s = (!hc as u32) + (!old as u32) + new as u32;
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// [`update_u16`] for a 32-bit field (an address or a sequence number): both halves at once.
#[cfg(any(test, feature = "internals"))]
#[inline]
pub fn update_u32(hc: u16, old: u32, new: u32) -> u16 {
    let s = (!hc as u32)
        + (!(old >> 16) as u16 as u32)
        + (!(old as u16) as u32)
        + (new >> 16)
        + (new & 0xffff);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: big-endian 16-bit words summed one at a time, as RFC 1071 4.1 writes it.
    fn naive_sum(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for pair in data.chunks(2) {
            let w = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            s += w as u32;
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let mut c = Checksum::new();
        c.add_bytes(&data);
        assert_eq!(c.fold(), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn linux_ipv4_header() {
        // The IPv4 header of a SYN/ACK Linux 6.18 sent (checksum ae94).
        let mut h = [
            0x45, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0xae, 0x94, 0xc6, 0x12,
            0x00, 0x02, 0xc6, 0x12, 0x00, 0x01,
        ];
        let mut c = Checksum::new();
        c.add_bytes(&h);
        assert!(c.is_valid());
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xae94);
    }

    #[test]
    fn empty_and_odd() {
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(checksum(&[0xab]), !0xab00);
        // abcd + ef00 = 1_9acd, end-around carry: 9ace.
        assert_eq!(checksum(&[0xab, 0xcd, 0xef]), !0x9ace);
    }

    #[test]
    fn carries_fold_everywhere() {
        // All-ones data makes every adder carry: the sum of n words of ffff is ffff.
        for len in [2, 8, 30, 32, 34, 64, 1000, 1460, 9000] {
            let data = vec![0xffu8; len];
            let mut c = Checksum::new();
            c.add_bytes(&data);
            assert_eq!(c.fold(), 0xffff, "len {len}");
        }
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let (src, dst, len) = (0xc612_0001u32, 0xc612_0002u32, 40u16);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.to_be_bytes());
        bytes.extend_from_slice(&dst.to_be_bytes());
        bytes.extend_from_slice(&[0, 6]);
        bytes.extend_from_slice(&len.to_be_bytes());
        assert_eq!(pseudo_header_v4(src, dst, 6, len).fold(), naive_sum(&bytes));
    }

    /// The pseudo-header of RFC 8200 8.1 laid out byte by byte.
    fn pseudo_v6_bytes(src: &[u8; 16], dst: &[u8; 16], nh: u8, len: u32) -> Vec<u8> {
        let mut b = Vec::with_capacity(40);
        b.extend_from_slice(src);
        b.extend_from_slice(dst);
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, nh]);
        b
    }

    #[test]
    fn pseudo_header_v6_matches_bytes() {
        let src = [
            0xfd, 0x00, 0x01, 0x98, 0x00, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        ];
        let dst = [
            0xfd, 0x00, 0x01, 0x98, 0x00, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ];
        for (nh, len) in [(6u8, 40u32), (58, 1240), (6, 0), (255, u32::MAX), (0, 0x1_0000)] {
            let bytes = pseudo_v6_bytes(&src, &dst, nh, len);
            assert_eq!(
                pseudo_header_v6(&src, &dst, nh, len).fold(),
                naive_sum(&bytes),
                "nh {nh} len {len}"
            );
        }
        // All ones: every adder carries.
        let ones = [0xff; 16];
        let bytes = pseudo_v6_bytes(&ones, &ones, 0xff, u32::MAX);
        assert_eq!(pseudo_header_v6(&ones, &ones, 0xff, u32::MAX).fold(), naive_sum(&bytes));
    }

    #[test]
    fn pseudo_header_v6_is_not_v4_mapped_sum() {
        // A change in any byte of either address must change the sum (no half is dropped).
        let base = pseudo_header_v6(&[0; 16], &[0; 16], 6, 20).fold();
        for i in 0..16 {
            let mut a = [0u8; 16];
            a[i] = 1;
            assert_ne!(pseudo_header_v6(&a, &[0; 16], 6, 20).fold(), base, "src byte {i}");
            assert_ne!(pseudo_header_v6(&[0; 16], &a, 6, 20).fold(), base, "dst byte {i}");
        }
    }

    #[test]
    fn rfc1624_update_examples() {
        // RFC 1624 4: HC = dd2f, m = 5555 -> m' = 3285 gives HC' = 0000 by eqn. 3
        // (eqn. 2 would give ffff there: the -0 case that RFC 1624 was written to fix).
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
        // RFC 1624 errata 4782/5864: an unchanged field leaves a checksum of 0000 alone, and
        // 5555 -> 5556 under 0000 folds the carry twice.
        assert_eq!(update_u16(0x0000, 0x5555, 0x5555), 0x0000);
        assert_eq!(update_u16(0x0000, 0x5555, 0x5556), 0xfffe);
        assert_eq!(update_u32(0x0000, 0x5555_5555, 0x5555_5555), 0x0000);
    }

    proptest! {
        #[test]
        fn agrees_with_internet_checksum_crate(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let theirs = u16::from_be_bytes(internet_checksum::checksum(&data));
            prop_assert_eq!(checksum(&data), theirs);
            prop_assert_eq!(!checksum(&data), naive_sum(&data));
        }

        #[test]
        fn pseudo_header_v6_agrees_with_bytes_and_crates(
            src in any::<[u8; 16]>(),
            dst in any::<[u8; 16]>(),
            nh in any::<u8>(),
            len in any::<u32>(),
            odd_prefix in any::<bool>(),
        ) {
            let bytes = pseudo_v6_bytes(&src, &dst, nh, len);
            prop_assert_eq!(pseudo_header_v6(&src, &dst, nh, len).fold(), naive_sum(&bytes));
            let theirs = u16::from_be_bytes(internet_checksum::checksum(&bytes));
            prop_assert_eq!(pseudo_header_v6(&src, &dst, nh, len).finish(), theirs);
            // Added after an odd number of bytes it must follow the byte-swap rule like any
            // other piece.
            if odd_prefix {
                let mut c = Checksum::new();
                c.add_bytes(&[0xa5]);
                c.add_checksum(pseudo_header_v6(&src, &dst, nh, len));
                let mut joined = vec![0xa5];
                joined.extend_from_slice(&bytes);
                prop_assert_eq!(c.finish(), checksum(&joined));
            }
        }

        #[test]
        fn pseudo_header_v6_tcp_checksum_agrees_with_etherparse(
            src in any::<[u8; 16]>(),
            dst in any::<[u8; 16]>(),
            sport in any::<u16>(),
            dport in any::<u16>(),
            seq in any::<u32>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let tcp = etherparse::TcpHeader::new(sport, dport, seq, 1000);
            let theirs = tcp.calc_checksum_ipv6_raw(src, dst, &payload).unwrap();
            let mut header = tcp.to_bytes();
            header[16] = 0;
            header[17] = 0;
            let len = (header.len() + payload.len()) as u32;
            let mut c = pseudo_header_v6(&src, &dst, 6, len);
            c.add_bytes(&header);
            c.add_bytes(&payload);
            prop_assert_eq!(c.finish(), theirs);
        }

        #[test]
        fn split_anywhere_gives_same_sum(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            cuts.sort_unstable();
            let mut c = Checksum::new();
            let mut start = 0;
            for cut in cuts {
                c.add_bytes(&data[start..cut]);
                start = cut;
            }
            c.add_bytes(&data[start..]);
            prop_assert_eq!(c.finish(), checksum(&data));
        }

        #[test]
        fn fields_equal_their_bytes(a in any::<u8>(), v16 in any::<u16>(), v32 in any::<u32>()) {
            // Start at an odd offset on purpose: fields must follow the byte-swap rule too.
            let mut bytes = vec![a];
            bytes.extend_from_slice(&v16.to_be_bytes());
            bytes.extend_from_slice(&v32.to_be_bytes());
            let mut c = Checksum::new();
            c.add_bytes(&[a]);
            c.add_u16(v16);
            c.add_u32(v32);
            prop_assert_eq!(c.finish(), checksum(&bytes));
        }

        #[test]
        fn add_checksum_concatenates(a in proptest::collection::vec(any::<u8>(), 0..100),
                                     b in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut ca = Checksum::new();
            ca.add_bytes(&a);
            let mut cb = Checksum::new();
            cb.add_bytes(&b);
            ca.add_checksum(cb);
            let joined: Vec<u8> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(ca.finish(), checksum(&joined));
        }

        #[test]
        fn incremental_update_matches_recompute(
            words in proptest::collection::vec(any::<u16>(), 1..40),
            at in any::<prop::sample::Index>(),
            new16 in any::<u16>(),
            new32 in any::<u32>(),
        ) {
            let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let hc = checksum(&bytes);
            let i = at.index(words.len()) * 2;
            let old16 = u16::from_be_bytes([bytes[i], bytes[i + 1]]);
            bytes[i..i + 2].copy_from_slice(&new16.to_be_bytes());
            let updated = update_u16(hc, old16, new16);
            // RFC 1624 3: eqn. 3 gives exactly what a full recomputation gives.
            prop_assert_eq!(updated, checksum(&bytes));
            let theirs = internet_checksum::update(
                hc.to_be_bytes(), &old16.to_be_bytes(), &new16.to_be_bytes());
            prop_assert_eq!(updated, u16::from_be_bytes(theirs));

            if words.len() >= 2 {
                let j = at.index(words.len() - 1) * 2;
                let old32 = u32::from_be_bytes([bytes[j], bytes[j + 1], bytes[j + 2], bytes[j + 3]]);
                let hc = checksum(&bytes);
                bytes[j..j + 4].copy_from_slice(&new32.to_be_bytes());
                let updated = update_u32(hc, old32, new32);
                let full = checksum(&bytes);
                prop_assert_eq!(updated, full);
            }
        }
    }
}
