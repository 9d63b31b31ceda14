//! How the engine hands out segments: a [`SegmentSink`] takes each [`SegmentOut`] with its
//! payload, a [`PayloadSource`]. The segment representations themselves live in the wire layer
//! ([`crate::wire::segment`]).

use crate::wire::segment::SegmentOut;

/// Where the payload of an outgoing segment comes from. The sink calls `copy_to` once,
/// with a destination of exactly `len()` bytes, straight into the transmit frame.
pub trait PayloadSource {
    fn len(&self) -> usize;
    fn copy_to(&self, dst: &mut [u8]);
    #[cfg(any(test, feature = "internals"))]
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
