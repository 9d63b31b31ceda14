//! Ethernet II frames (IEEE 802.3 clause 3.2.6 "Length/Type", the DIX Ethernet II layout; RFC 894
//! for IPv4 over Ethernet). No 802.1Q tags: a tagged frame shows its TPID as the EtherType.

use super::DropReason;

/// Length of the Ethernet II header: destination, source, EtherType.
pub const HEADER_LEN: usize = 14;
/// EtherType of IPv4 (RFC 894).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6 (RFC 2464 3).
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType of ARP (RFC 826).
#[cfg(any(test, feature = "internals"))]
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// TPID of an 802.1Q VLAN tag.
#[cfg(any(test, feature = "internals"))]
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// The shortest frame on the wire without the FCS: shorter frames are padded up to this
/// (IEEE 802.3 minimum frame of 64 bytes including the 4-byte FCS).
#[cfg(any(test, feature = "internals"))]
pub const MIN_FRAME_LEN: usize = 60;

/// A read-only view of an Ethernet II frame. The header is a fixed-size array, so no accessor
/// can fail once [`EthernetFrame::new_checked`] has succeeded.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<'a> {
    header: &'a [u8; HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    /// Checks that `frame` holds a whole Ethernet II header.
    #[inline]
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, DropReason> {
        match frame.split_first_chunk::<HEADER_LEN>() {
            Some((header, payload)) => Ok(EthernetFrame { header, payload }),
            None => Err(DropReason::TooShort),
        }
    }

    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn dst_mac(&self) -> [u8; 6] {
        let h = self.header;
        [h[0], h[1], h[2], h[3], h[4], h[5]]
    }

    #[inline]
    pub fn src_mac(&self) -> [u8; 6] {
        let h = self.header;
        [h[6], h[7], h[8], h[9], h[10], h[11]]
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.header[12], self.header[13]])
    }

    /// The 14 header bytes.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn header(&self) -> &'a [u8; HEADER_LEN] {
        self.header
    }

    /// Everything after the header, including any padding to the minimum frame size.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Writes an Ethernet II header in place.
#[inline]
pub fn write_header(header: &mut [u8; HEADER_LEN], dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    let [d0, d1, d2, d3, d4, d5] = dst;
    let [s0, s1, s2, s3, s4, s5] = src;
    let [t0, t1] = ethertype.to_be_bytes();
    *header = [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5, t0, t1];
}
