//! Ethernet II frames (IEEE 802.3 with an EtherType). No VLAN tags: a tagged frame is not IPv4
//! here and is passed to the kernel by the XDP program anyway.

pub const HEADER_LEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;

/// A view over a received frame, length-checked once.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<'a> {
    buf: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    /// `None` if the frame is shorter than an Ethernet header.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Option<Self> {
        (buf.len() >= HEADER_LEN).then_some(EthernetFrame { buf })
    }
    #[inline]
    pub fn dst(&self) -> [u8; 6] {
        [
            self.buf[0],
            self.buf[1],
            self.buf[2],
            self.buf[3],
            self.buf[4],
            self.buf[5],
        ]
    }
    #[inline]
    pub fn src(&self) -> [u8; 6] {
        [
            self.buf[6],
            self.buf[7],
            self.buf[8],
            self.buf[9],
            self.buf[10],
            self.buf[11],
        ]
    }
    #[inline]
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes([self.buf[12], self.buf[13]])
    }
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }
}

/// Writes an Ethernet header at the start of `buf` (at least 14 bytes).
#[inline]
pub fn write_header(buf: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    buf[0..6].copy_from_slice(&dst);
    buf[6..12].copy_from_slice(&src);
    buf[12..14].copy_from_slice(&ethertype.to_be_bytes());
}
