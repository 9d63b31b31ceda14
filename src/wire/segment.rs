//! TCP segments as the engine sees them: a parsed segment in ([`SegmentIn`]), the header of a
//! segment to send out ([`SegmentOut`]), and the connection they belong to ([`FourTuple`]).
//!
//! These representations live in the wire layer, below the engine (as smoltcp's `TcpRepr`
//! does): [`crate::wire::parse_frame`] produces them and [`crate::wire::FrameSpec`] consumes
//! them, and `tcp` builds on them; nothing here depends on `tcp`.

use super::seq::SeqNumber;
use super::tcp::{TcpFlags, TcpOptions};

/// An IP address of either family, as the engine keys connections: 16 bytes in network order,
/// an IPv4 address stored IPv4-mapped (`::ffff:a.b.c.d`, RFC 4291 2.5.5.2). One tuple type
/// then serves both families and compares in one go. The wire layer drops IPv6 packets whose
/// addresses are IPv4-mapped (as Linux's `tcp_v6_rcv` does), so the two families never mix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpAddress([u8; 16]);

/// 0.0.0.0, the address of the zero tuple.
impl Default for IpAddress {
    fn default() -> Self {
        IpAddress::v4(0)
    }
}

impl IpAddress {
    /// An IPv4 address given in host order (`0xc0000201` is 192.0.2.1).
    #[inline]
    pub const fn v4(addr: u32) -> Self {
        let o = addr.to_be_bytes();
        IpAddress([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, o[0], o[1], o[2], o[3]])
    }

    /// An IPv6 address from its 16 bytes in network order. An IPv4-mapped address is the
    /// IPv4 address it maps.
    #[inline]
    pub const fn v6(octets: [u8; 16]) -> Self {
        IpAddress(octets)
    }

    /// The 16 bytes, network order (IPv4 as `::ffff:a.b.c.d`).
    #[inline]
    pub const fn octets(&self) -> &[u8; 16] {
        &self.0
    }

    /// Whether this is an IPv4 address.
    #[inline]
    pub fn is_v4(&self) -> bool {
        // Two loads and compares, not a 12-byte memcmp.
        let (hi, lo) = self.words();
        hi == 0 && (lo >> 32) == 0xffff
    }

    /// The IPv4 address in host order, if this is one.
    #[inline]
    pub fn to_v4(self) -> Option<u32> {
        self.is_v4().then(|| self.v4_bits())
    }

    /// The last four bytes in host order: the IPv4 address when [`Self::is_v4`] holds.
    #[inline]
    pub fn v4_bits(&self) -> u32 {
        u32::from_be_bytes([self.0[12], self.0[13], self.0[14], self.0[15]])
    }

    /// The address as two big-endian 64-bit words (high, low), for hashing.
    #[inline]
    pub(crate) fn words(&self) -> (u64, u64) {
        let (hi, lo) = self.0.split_at(8);
        (
            u64::from_be_bytes(hi.try_into().unwrap_or([0; 8])),
            u64::from_be_bytes(lo.try_into().unwrap_or([0; 8])),
        )
    }

    /// The standard library's form: `IpAddr::V4` for an IPv4 address, else `IpAddr::V6`.
    #[inline]
    pub fn to_std(self) -> std::net::IpAddr {
        match self.to_v4() {
            Some(a) => std::net::IpAddr::V4(std::net::Ipv4Addr::from(a)),
            None => std::net::IpAddr::V6(std::net::Ipv6Addr::from(self.0)),
        }
    }
}

impl From<std::net::Ipv4Addr> for IpAddress {
    fn from(a: std::net::Ipv4Addr) -> Self {
        IpAddress::v4(u32::from(a))
    }
}

impl From<std::net::Ipv6Addr> for IpAddress {
    fn from(a: std::net::Ipv6Addr) -> Self {
        IpAddress(a.octets())
    }
}

impl From<std::net::IpAddr> for IpAddress {
    fn from(a: std::net::IpAddr) -> Self {
        match a {
            std::net::IpAddr::V4(a) => a.into(),
            std::net::IpAddr::V6(a) => a.into(),
        }
    }
}

impl std::fmt::Display for IpAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_std().fmt(f)
    }
}

impl std::fmt::Debug for IpAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A connection's identity, for either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FourTuple {
    /// The peer's address.
    pub remote_ip: IpAddress,
    /// The peer's port.
    pub remote_port: u16,
    /// Our address (the segment's destination on receive).
    pub local_ip: IpAddress,
    /// Our port.
    pub local_port: u16,
}

impl FourTuple {
    /// Whether the connection is over IPv4.
    #[inline]
    pub fn is_v4(&self) -> bool {
        self.local_ip.is_v4()
    }

    /// The peer as a socket address.
    pub fn remote(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.remote_ip.to_std(), self.remote_port)
    }

    /// Our end as a socket address.
    pub fn local(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.local_ip.to_std(), self.local_port)
    }

    /// The tuple's bytes in the order RFC 6528 names them (local address, local port, remote
    /// address, remote port), for keyed hashes: the first 12 bytes for IPv4 (4-byte
    /// addresses), all 36 for IPv6. Returns the buffer and the length used.
    #[inline]
    pub(crate) fn key_bytes(&self) -> ([u8; 36], usize) {
        let mut b = [0u8; 36];
        if self.is_v4() {
            b[0..4].copy_from_slice(&self.local_ip.v4_bits().to_be_bytes());
            b[4..6].copy_from_slice(&self.local_port.to_be_bytes());
            b[6..10].copy_from_slice(&self.remote_ip.v4_bits().to_be_bytes());
            b[10..12].copy_from_slice(&self.remote_port.to_be_bytes());
            (b, 12)
        } else {
            b[0..16].copy_from_slice(self.local_ip.octets());
            b[16..18].copy_from_slice(&self.local_port.to_be_bytes());
            b[18..34].copy_from_slice(self.remote_ip.octets());
            b[34..36].copy_from_slice(&self.remote_port.to_be_bytes());
            (b, 36)
        }
    }

    /// The address pair (local, remote) as bytes for keyed hashes: 8 bytes for IPv4, 32 for
    /// IPv6. Returns the buffer and the length used.
    #[inline]
    pub(crate) fn address_pair_bytes(&self) -> ([u8; 32], usize) {
        let mut b = [0u8; 32];
        if self.is_v4() {
            b[..4].copy_from_slice(&self.local_ip.v4_bits().to_be_bytes());
            b[4..8].copy_from_slice(&self.remote_ip.v4_bits().to_be_bytes());
            (b, 8)
        } else {
            b[..16].copy_from_slice(self.local_ip.octets());
            b[16..].copy_from_slice(self.remote_ip.octets());
            (b, 32)
        }
    }
}

impl std::fmt::Display for FourTuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.remote(), self.local())
    }
}

/// A link-layer address (an Ethernet MAC in the worker). Opaque to the engine: it only keeps
/// the one a connection's segments come from and hands it back with every segment it sends.
pub type LinkAddr = [u8; 6];

/// A received segment, already checked (checksum, lengths) by the wire layer.
#[derive(Clone, Copy, Debug)]
pub struct SegmentIn<'a> {
    /// The connection, seen from this host.
    pub tuple: FourTuple,
    /// The link-layer address the segment came from.
    pub link: LinkAddr,
    /// SEG.SEQ.
    pub seq: SeqNumber,
    /// SEG.ACK (meaningful only with ACK set).
    pub ack: SeqNumber,
    /// The control bits.
    pub flags: TcpFlags,
    /// The raw (unscaled) window field.
    pub window: u16,
    /// The parsed options.
    pub options: TcpOptions,
    /// The payload, borrowed from the received frame.
    pub payload: &'a [u8],
}

impl SegmentIn<'_> {
    /// SEG.LEN: payload plus one for each of SYN and FIN (RFC 9293 3.4).
    pub fn seg_len(&self) -> u32 {
        self.payload.len() as u32 + self.flags.syn() as u32 + self.flags.fin() as u32
    }
}

/// The header of a segment the engine wants sent; the payload comes separately.
/// `tuple` is the connection's tuple (remote = destination of this segment).
#[derive(Clone, Copy, Debug)]
pub struct SegmentOut {
    /// The connection (remote = destination).
    pub tuple: FourTuple,
    /// The link-layer address to send to: the one the connection's segments come from (kept
    /// per connection, as a neighbour entry), or the incoming segment's for a stateless answer.
    pub link: LinkAddr,
    /// SEG.SEQ.
    pub seq: SeqNumber,
    /// SEG.ACK.
    pub ack: SeqNumber,
    /// The control bits.
    pub flags: TcpFlags,
    /// The raw (already scaled-down) window field.
    pub window: u16,
    /// The options to write.
    pub options: TcpOptions,
}
