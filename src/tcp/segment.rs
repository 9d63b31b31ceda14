//! Segments as the engine sees them: parsed headers in, header descriptions out.

use super::seq::SeqNumber;
pub use crate::wire::tcp::{SackBlock, TcpFlags, TcpOptions};

/// A connection's identity. Addresses are IPv4 in host byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FourTuple {
    pub remote_ip: u32,
    pub remote_port: u16,
    pub local_ip: u32,
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
    pub tuple: FourTuple,
    /// The link-layer address the segment came from.
    pub link: LinkAddr,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub flags: TcpFlags,
    /// The raw (unscaled) window field.
    pub window: u16,
    pub options: TcpOptions,
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
    pub tuple: FourTuple,
    /// The link-layer address to send to: the one the connection's segments come from (kept
    /// per connection, as a neighbour entry), or the incoming segment's for a stateless answer.
    pub link: LinkAddr,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub flags: TcpFlags,
    /// The raw (already scaled-down) window field.
    pub window: u16,
    pub options: TcpOptions,
}

/// Where the payload of an outgoing segment comes from. The sink calls `copy_to` once,
/// with a destination of exactly `len()` bytes, straight into the transmit frame.
pub trait PayloadSource {
    fn len(&self) -> usize;
    fn copy_to(&self, dst: &mut [u8]);
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PayloadSource for &[u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn copy_to(&self, dst: &mut [u8]) {
        dst.copy_from_slice(self)
    }
}

/// The payload of a segment without data.
pub struct NoPayload;

impl PayloadSource for NoPayload {
    fn len(&self) -> usize {
        0
    }
    fn copy_to(&self, _dst: &mut [u8]) {}
}

/// No payload.
pub const EMPTY: &NoPayload = &NoPayload;

/// Takes segments out of the engine. The worker's sink writes them into TX frames; tests
/// collect them.
///
/// Backpressure: the engine asks [`room`](SegmentSink::room) before it commits a segment to
/// its state (SND.NXT, counters, timers), and emits only when there is room, so that nothing
/// is counted as sent that was not. A connection that finds no room is left wanting to
/// transmit, and the engine resumes it in `Engine::on_tx_room` once room returns.
pub trait SegmentSink {
    /// Segments the sink will surely take now (a lower bound: free transmit frames and ring
    /// slots). A sink without a limit keeps the default.
    fn room(&mut self) -> usize {
        usize::MAX
    }
    /// Writes one segment. Called only after `room()` said there is room for it.
    fn emit(&mut self, seg: &SegmentOut, payload: &dyn PayloadSource);
}
