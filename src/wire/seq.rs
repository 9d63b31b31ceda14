//! Sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 3.4, RFC 1982 style).
//! All arithmetic on sequence space in synack goes through [`SeqNumber`]. It lives in the wire
//! layer because the segment representations ([`super::segment`]) carry it.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A TCP sequence or acknowledgment number; comparisons and distances wrap modulo 2^32.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(u32);

impl SeqNumber {
    pub const fn new(raw: u32) -> Self {
        SeqNumber(raw)
    }
    /// The value to put on the wire.
    pub const fn raw(self) -> u32 {
        self.0
    }
    /// `self < other` in sequence space.
    pub fn lt(self, other: SeqNumber) -> bool {
        (self.0.wrapping_sub(other.0) as i32) < 0
    }
    pub fn le(self, other: SeqNumber) -> bool {
        (self.0.wrapping_sub(other.0) as i32) <= 0
    }
    pub fn gt(self, other: SeqNumber) -> bool {
        other.lt(self)
    }
    pub fn ge(self, other: SeqNumber) -> bool {
        other.le(self)
    }
    /// `lo <= self < hi` in sequence space.
    pub fn in_range(self, lo: SeqNumber, hi: SeqNumber) -> bool {
        lo.le(self) && self.lt(hi)
    }
    /// The later of two sequence numbers.
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self.lt(other) { other } else { self }
    }
    /// The earlier of two sequence numbers.
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self.lt(other) { self } else { other }
    }
    /// Bytes from `earlier` to `self`, or 0 if `self` is not after `earlier`.
    pub fn distance_from(self, earlier: SeqNumber) -> u32 {
        if self.lt(earlier) {
            0
        } else {
            self.0.wrapping_sub(earlier.0)
        }
    }
}

impl Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, n: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n as u32))
    }
}

impl AddAssign<u32> for SeqNumber {
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }
}

impl AddAssign<usize> for SeqNumber {
    fn add_assign(&mut self, n: usize) {
        self.0 = self.0.wrapping_add(n as u32);
    }
}

impl Sub<u32> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(n))
    }
}

/// `a - b` as a signed distance in sequence space.
impl Sub<SeqNumber> for SeqNumber {
    type Output = i32;
    fn sub(self, rhs: SeqNumber) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around() {
        let a = SeqNumber::new(u32::MAX - 10);
        let b = a + 20u32;
        assert_eq!(b.raw(), 9);
        assert!(a.lt(b));
        assert!(b.gt(a));
        assert_eq!(b - a, 20);
        assert_eq!(a - b, -20);
        assert_eq!(b.distance_from(a), 20);
        assert_eq!(a.distance_from(b), 0);
        assert!(SeqNumber::new(u32::MAX).in_range(a, b));
        assert!(!b.in_range(a, b));
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
    }
}
