//! TCP segments as the engine sees them: a parsed segment in ([`SegmentIn`]), the header of a
//! segment to send out ([`SegmentOut`]), and the connection they belong to ([`FourTuple`]).
//!
//! These representations live in the wire layer, below the engine (as smoltcp's `TcpRepr`
//! does): [`crate::wire::parse_frame`] produces them and [`crate::wire::FrameSpec`] consumes
//! them, and `tcp` builds on them; nothing here depends on `tcp`.

use super::seq::SeqNumber;
use super::tcp::{TcpFlags, TcpOptions};

/// A connection's identity. Addresses are IPv4 in host byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FourTuple {
    /// The peer's address.
    pub remote_ip: u32,
    /// The peer's port.
    pub remote_port: u16,
    /// Our address (the segment's destination on receive).
    pub local_ip: u32,
    /// Our port.
    pub local_port: u16,
}

impl std::fmt::Display for FourTuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.remote_ip.to_be_bytes();
        let l = self.local_ip.to_be_bytes();
        write!(
            f,
            "{}.{}.{}.{}:{} -> {}.{}.{}.{}:{}",
            r[0], r[1], r[2], r[3], self.remote_port, l[0], l[1], l[2], l[3], self.local_port
        )
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
