//! IPv4 headers (RFC 791). Options are tolerated (skipped); fragments are refused by the caller.

use super::checksum;

pub const MIN_HEADER_LEN: usize = 20;
pub const PROTO_TCP: u8 = 6;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view over an IPv4 packet whose header length fields have been checked against the buffer.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<'a> {
    buf: &'a [u8],
    header_len: usize,
    total_len: usize,
}

/// Why an IPv4 header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv4Error {
    TooShort,
    Version,
    HeaderLength,
    TotalLength,
}

impl<'a> Ipv4Packet<'a> {
    /// Checks version, IHL and total length against `buf`. Bytes after the total length
    /// (Ethernet padding of short frames) are ignored.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Ipv4Error> {
        if buf.len() < MIN_HEADER_LEN {
            return Err(Ipv4Error::TooShort);
        }
        if buf[0] >> 4 != 4 {
            return Err(Ipv4Error::Version);
        }
        let header_len = ((buf[0] & 0x0f) as usize) * 4;
        if header_len < MIN_HEADER_LEN || header_len > buf.len() {
            return Err(Ipv4Error::HeaderLength);
        }
        let total_len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if total_len < header_len || total_len > buf.len() {
            return Err(Ipv4Error::TotalLength);
        }
        Ok(Ipv4Packet {
            buf,
            header_len,
            total_len,
        })
    }
    #[inline]
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    #[inline]
    pub fn total_len(&self) -> usize {
        self.total_len
    }
    #[inline]
    pub fn header(&self) -> &'a [u8] {
        &self.buf[..self.header_len]
    }
    #[inline]
    pub fn ident(&self) -> u16 {
        u16::from_be_bytes([self.buf[4], self.buf[5]])
    }
    #[inline]
    fn flags_offset(&self) -> u16 {
        u16::from_be_bytes([self.buf[6], self.buf[7]])
    }
    /// More-fragments set or a non-zero fragment offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buf[8]
    }
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buf[9]
    }
    #[inline]
    pub fn src(&self) -> u32 {
        u32::from_be_bytes([self.buf[12], self.buf[13], self.buf[14], self.buf[15]])
    }
    #[inline]
    pub fn dst(&self) -> u32 {
        u32::from_be_bytes([self.buf[16], self.buf[17], self.buf[18], self.buf[19]])
    }
    /// The header checksum verifies (sums to zero).
    #[inline]
    pub fn checksum_ok(&self) -> bool {
        checksum::checksum(self.header()) == 0
    }
    /// The payload, up to the total length (padding excluded).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..self.total_len]
    }
}

/// Writes a 20-byte header (no options) with DF set and its checksum.
#[inline]
pub fn write_header(
    buf: &mut [u8],
    total_len: u16,
    ident: u16,
    ttl: u8,
    protocol: u8,
    src: u32,
    dst: u32,
) {
    buf[0] = 0x45;
    buf[1] = 0;
    buf[2..4].copy_from_slice(&total_len.to_be_bytes());
    buf[4..6].copy_from_slice(&ident.to_be_bytes());
    buf[6..8].copy_from_slice(&FLAG_DF.to_be_bytes());
    buf[8] = ttl;
    buf[9] = protocol;
    buf[10..12].copy_from_slice(&[0, 0]);
    buf[12..16].copy_from_slice(&src.to_be_bytes());
    buf[16..20].copy_from_slice(&dst.to_be_bytes());
    let c = checksum::checksum(&buf[..20]);
    buf[10..12].copy_from_slice(&c.to_be_bytes());
}
