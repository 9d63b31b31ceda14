//! The Internet checksum: RFC 1071 (one's-complement sum of 16-bit words), computed eight bytes
//! at a time, and RFC 1624 incremental update.

/// Adds `data` to a running (unfolded) one's-complement sum. Words are big-endian; an odd
/// trailing byte is padded with zero, as RFC 1071 says.
#[inline]
pub fn sum(data: &[u8], initial: u64) -> u64 {
    let mut acc: u128 = initial as u128;
    let mut chunks = data.chunks_exact(8);
    // Summing 64-bit big-endian words and folding later gives the same 16-bit result
    // (RFC 1071 2(B): byte order independence and deferred carries).
    for c in &mut chunks {
        acc += u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as u128;
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from_be_bytes(tail) as u128;
    // Fold 128 -> 64 bits with end-around carry.
    let folded = (acc as u64 as u128) + (acc >> 64);
    ((folded as u64) as u128 + (folded >> 64)) as u64
}

/// Folds a running sum to 16 bits (with end-around carries).
#[inline]
pub fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The checksum field value for `data`: the complement of the folded sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// The IPv4 pseudo-header of TCP/UDP (RFC 9293 3.1): addresses, protocol, length.
#[inline]
pub fn pseudo_header_sum(src: u32, dst: u32, protocol: u8, length: u16) -> u64 {
    src as u64 + dst as u64 + protocol as u64 + length as u64
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit field changed from `old` to `new`:
/// HC' = ~(~HC + ~m + m').
#[inline]
pub fn update(checksum: u16, old: u16, new: u16) -> u16 {
    let s = (!checksum) as u64 + (!old) as u64 + new as u64;
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn verifying_a_correct_checksum_gives_zero() {
        let mut data = vec![
            0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0, 0, 0xac, 0x10, 0x0a,
            0x63, 0xac, 0x10, 0x0a, 0x0c,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(c, 0xb1e6);
        assert_eq!(checksum(&data), 0);
    }

    proptest! {
        #[test]
        fn agrees_with_internet_checksum_crate(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let theirs = internet_checksum::checksum(&data);
            prop_assert_eq!(checksum(&data).to_be_bytes(), theirs);
        }

        #[test]
        fn split_sums_agree_at_even_boundaries(data in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..300) {
            let cut = (cut.min(data.len())) & !1;
            let whole = fold(sum(&data, 0));
            let parts = fold(sum(&data[cut..], sum(&data[..cut], 0)));
            prop_assert_eq!(whole, parts);
        }

        #[test]
        fn incremental_update_matches_recomputation(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            at in 0usize..100,
            new in any::<u16>(),
        ) {
            let at = (at % (data.len() / 2)) * 2;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let after = checksum(&data);
            let inc = update(before, old, new);
            // 0x0000 and 0xffff are both zero in one's complement.
            prop_assert!(inc == after || (inc == 0xffff && after == 0) || (inc == 0 && after == 0xffff));
        }
    }
}
