//! IPv4 headers (RFC 791 3.1), their header checksum (RFC 791 3.1 "Header Checksum", computed as
//! in RFC 1071) and the DF/MF/fragment-offset fields (RFC 791 2.3, RFC 6864 for the ID of
//! atomic datagrams).

use super::DropReason;
use super::checksum::Checksum;

/// Length of an IPv4 header without options (IHL = 5).
pub const HEADER_LEN: usize = 20;
/// Longest IPv4 header: IHL = 15.
#[cfg(any(test, feature = "internals"))]
pub const MAX_HEADER_LEN: usize = 60;
/// Protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// Don't Fragment, in the flags/fragment-offset word.
pub const FLAG_DF: u16 = 0x4000;
/// More Fragments, in the flags/fragment-offset word.
pub const FLAG_MF: u16 = 0x2000;
/// The fragment offset bits of the flags/fragment-offset word (units of 8 bytes).
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A read-only view of an IPv4 packet whose lengths have been checked: the header (with its
/// options) lies within the buffer and the payload is cut at the Total Length, so padding that
/// follows the datagram in an Ethernet frame is not part of it.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<'a> {
    header: &'a [u8; HEADER_LEN],
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Ipv4Packet<'a> {
    /// Checks version, IHL and Total Length against `buf` (the Ethernet payload). Does not
    /// verify the checksum (see [`Ipv4Packet::checksum_ok`]) nor look at fragmentation.
    ///
    /// Drops: fewer than 20 bytes: `TooShort`; version not 4: `BadIpVersion`; IHL < 5 or the
    /// header longer than `buf`: `BadIpHeaderLength`; Total Length shorter than the header or
    /// longer than `buf`: `BadIpTotalLength`. Bytes beyond Total Length are ignored.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DropReason> {
        let Some((header, rest)) = buf.split_first_chunk::<HEADER_LEN>() else {
            return Err(DropReason::TooShort);
        };
        // RFC 791 3.1: Version is 4.
        if header[0] >> 4 != 4 {
            return Err(DropReason::BadIpVersion);
        }
        // RFC 791 3.1: IHL counts 32-bit words; the minimum value for a correct header is 5.
        let header_len = ((header[0] & 0x0f) as usize) * 4;
        if header_len < HEADER_LEN {
            return Err(DropReason::BadIpHeaderLength);
        }
        let Some((options, after_options)) = rest.split_at_checked(header_len - HEADER_LEN) else {
            return Err(DropReason::BadIpHeaderLength);
        };
        // RFC 791 3.1: Total Length covers header and data; link-layer padding follows it.
        let total_len = u16::from_be_bytes([header[2], header[3]]) as usize;
        let Some(payload_len) = total_len.checked_sub(header_len) else {
            return Err(DropReason::BadIpTotalLength);
        };
        let Some(payload) = after_options.get(..payload_len) else {
            return Err(DropReason::BadIpTotalLength);
        };
        Ok(Ipv4Packet {
            header,
            options,
            payload,
        })
    }

    /// The header checksum verifies (RFC 791 3.1, over the header including options).
    #[inline]
    pub fn checksum_ok(&self) -> bool {
        let mut c = Checksum::new();
        c.add_bytes(self.header);
        c.add_bytes(self.options);
        c.is_valid()
    }

    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn version(&self) -> u8 {
        self.header[0] >> 4
    }

    /// Header length in bytes, options included (IHL * 4).
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn total_len(&self) -> u16 {
        u16::from_be_bytes([self.header[2], self.header[3]])
    }

    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn ident(&self) -> u16 {
        u16::from_be_bytes([self.header[4], self.header[5]])
    }

    /// The flags and fragment-offset word.
    #[inline]
    pub fn flags_fragment(&self) -> u16 {
        u16::from_be_bytes([self.header[6], self.header[7]])
    }

    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        self.flags_fragment() & FLAG_DF != 0
    }

    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.flags_fragment() & FLAG_MF != 0
    }

    /// Part of a fragmented datagram: MF set or a non-zero offset (RFC 791 3.2).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_fragment() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.header[8]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.header[9]
    }

    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn header_checksum(&self) -> u16 {
        u16::from_be_bytes([self.header[10], self.header[11]])
    }

    /// Source address, host order.
    #[inline]
    pub fn src(&self) -> u32 {
        u32::from_be_bytes([
            self.header[12],
            self.header[13],
            self.header[14],
            self.header[15],
        ])
    }

    /// Destination address, host order.
    #[inline]
    pub fn dst(&self) -> u32 {
        u32::from_be_bytes([
            self.header[16],
            self.header[17],
            self.header[18],
            self.header[19],
        ])
    }

    /// The fixed 20 header bytes.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn header(&self) -> &'a [u8; HEADER_LEN] {
        self.header
    }

    /// IPv4 options (possibly empty); not interpreted.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        self.options
    }

    /// The datagram's payload, cut at Total Length.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// The fields of an IPv4 header synack sends: no options, DSCP/ECN 0, DF set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Fields {
    /// Source address, host order.
    pub src: u32,
    /// Destination address, host order.
    pub dst: u32,
    pub protocol: u8,
    pub ttl: u8,
    pub ident: u16,
    /// Header plus payload.
    pub total_len: u16,
}

/// Writes a 20-byte IPv4 header with DF set and its checksum, in place.
#[inline]
pub fn write_header(header: &mut [u8; HEADER_LEN], f: &Ipv4Fields) {
    let [l0, l1] = f.total_len.to_be_bytes();
    let [i0, i1] = f.ident.to_be_bytes();
    // RFC 791 3.1 / RFC 6864 4.1: DF is set; the ID then only needs to be distinct enough
    // for duplicate detection, not unique.
    let [g0, g1] = FLAG_DF.to_be_bytes();
    let [s0, s1, s2, s3] = f.src.to_be_bytes();
    let [d0, d1, d2, d3] = f.dst.to_be_bytes();
    // The checksum from the field values (RFC 791 3.1), not from bytes read back after storing.
    let mut c = Checksum::new();
    c.add_u32((0x4500 << 16) | f.total_len as u32);
    c.add_u32(((f.ident as u32) << 16) | FLAG_DF as u32);
    c.add_u32(((f.ttl as u32) << 24) | ((f.protocol as u32) << 16));
    c.add_u32(f.src);
    c.add_u32(f.dst);
    let [c0, c1] = c.finish().to_be_bytes();
    *header = [
        0x45, 0, l0, l1, i0, i1, g0, g1, f.ttl, f.protocol, c0, c1, s0, s1, s2, s3, d0, d1, d2, d3,
    ];
}
