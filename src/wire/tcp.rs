//! TCP header view, options and builder (RFC 9293 3.1 header format and checksum, 3.2 options;
//! MSS RFC 9293 3.7.1 / RFC 6691; window scale and timestamps RFC 7323 2.2 and 3.2; SACK-permitted
//! and SACK RFC 2018 2 and 3).

use super::DropReason;
use super::checksum::{self, Checksum};
use super::ipv4::PROTO_TCP;

/// The TCP flags byte (plus the NS bit is ignored).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    #[cfg(any(test, feature = "internals"))]
    pub const URG: TcpFlags = TcpFlags(0x20);
    #[cfg(any(test, feature = "internals"))]
    pub const ECE: TcpFlags = TcpFlags(0x40);
    #[cfg(any(test, feature = "internals"))]
    pub const CWR: TcpFlags = TcpFlags(0x80);
    pub const NONE: TcpFlags = TcpFlags(0);

    #[cfg(any(test, feature = "internals"))]
    pub const fn bits(self) -> u8 {
        self.0
    }
    #[cfg(any(test, feature = "internals"))]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn fin(self) -> bool {
        self.0 & 0x01 != 0
    }
    pub const fn syn(self) -> bool {
        self.0 & 0x02 != 0
    }
    pub const fn rst(self) -> bool {
        self.0 & 0x04 != 0
    }
    pub const fn psh(self) -> bool {
        self.0 & 0x08 != 0
    }
    pub const fn ack(self) -> bool {
        self.0 & 0x10 != 0
    }
    pub const fn urg(self) -> bool {
        self.0 & 0x20 != 0
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl std::fmt::Debug for TcpFlags {
    /// Prints like tcpdump: `S.`, `F.`, `R`, `P.` ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        if self.fin() {
            s.push('F');
        }
        if self.syn() {
            s.push('S');
        }
        if self.rst() {
            s.push('R');
        }
        if self.psh() {
            s.push('P');
        }
        if self.urg() {
            s.push('U');
        }
        if self.ack() {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        f.write_str(&s)
    }
}

/// One SACK block: `[left, right)` as raw sequence numbers (RFC 2018 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SackBlock {
    pub left: u32,
    pub right: u32,
}

/// The TCP options synack understands. Parsing fills it from a header; building writes the
/// `Some`/`true` fields (in a fixed, Linux-like order) into a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), only meaningful on SYN.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), only meaningful on SYN. Parsed as sent (may be > 14).
    pub window_scale: Option<u8>,
    /// SACK-permitted (kind 4), only meaningful on SYN.
    pub sack_permitted: bool,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks (kind 5), at most 4 (3 when timestamps are present, when building).
    pub sack_blocks: [SackBlock; 4],
    pub sack_count: u8,
}

impl TcpOptions {
    pub fn sack(&self) -> &[SackBlock] {
        &self.sack_blocks[..self.sack_count as usize]
    }
}

/// Length of a TCP header without options (Data Offset = 5).
pub const HEADER_LEN: usize = 20;
/// The most option bytes a header can carry (Data Offset = 15).
pub const MAX_OPTIONS_LEN: usize = 40;

/// Option kinds (RFC 9293 3.2, RFC 7323, RFC 2018; IANA "TCP Option Kind Numbers").
pub mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// A read-only view of a TCP segment whose Data Offset has been checked against the IP payload.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegmentView<'a> {
    header: &'a [u8; HEADER_LEN],
    options: &'a [u8],
    payload: &'a [u8],
}

impl<'a> TcpSegmentView<'a> {
    /// Checks `segment` (the IPv4 payload): fewer than 20 bytes: `TooShort`; Data Offset < 5 or
    /// beyond the segment: `BadTcpHeaderLength` (RFC 9293 3.1, Data Offset). Neither the
    /// checksum nor the options are looked at here.
    #[inline]
    pub fn new_checked(segment: &'a [u8]) -> Result<Self, DropReason> {
        let Some((header, rest)) = segment.split_first_chunk::<HEADER_LEN>() else {
            return Err(DropReason::TooShort);
        };
        let header_len = ((header[12] >> 4) as usize) * 4;
        let Some(options_len) = header_len.checked_sub(HEADER_LEN) else {
            return Err(DropReason::BadTcpHeaderLength);
        };
        let Some((options, payload)) = rest.split_at_checked(options_len) else {
            return Err(DropReason::BadTcpHeaderLength);
        };
        Ok(TcpSegmentView {
            header,
            options,
            payload,
        })
    }

    /// The checksum verifies over the IPv4 pseudo-header, header and payload (RFC 9293 3.1).
    /// `src` and `dst` are the IPv4 addresses in host order.
    #[inline]
    pub fn checksum_ok(&self, src: u32, dst: u32) -> bool {
        self.checksum_ok_with(checksum::pseudo_header_v4(src, dst, PROTO_TCP, self.len() as u16))
    }

    /// The checksum verifies, given the sum of the pseudo-header (IPv4's or IPv6's).
    #[inline]
    pub fn checksum_ok_with(&self, pseudo_header: checksum::Checksum) -> bool {
        let mut c = pseudo_header;
        c.add_bytes(self.header);
        c.add_bytes(self.options);
        c.add_bytes(self.payload);
        c.is_valid()
    }

    /// Header plus payload length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        HEADER_LEN + self.options.len() + self.payload.len()
    }

    /// Never true: a view holds at least a 20-byte header.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes([self.header[0], self.header[1]])
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes([self.header[2], self.header[3]])
    }

    /// Sequence number, raw.
    #[inline]
    pub fn seq(&self) -> u32 {
        u32::from_be_bytes([
            self.header[4],
            self.header[5],
            self.header[6],
            self.header[7],
        ])
    }

    /// Acknowledgment number, raw.
    #[inline]
    pub fn ack(&self) -> u32 {
        u32::from_be_bytes([
            self.header[8],
            self.header[9],
            self.header[10],
            self.header[11],
        ])
    }

    /// Header length in bytes, options included (Data Offset * 4).
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// The eight flag bits CWR..FIN (the NS/AE bit in the byte before is ignored).
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.header[13])
    }

    /// The raw (unscaled) window field.
    #[inline]
    pub fn window(&self) -> u16 {
        u16::from_be_bytes([self.header[14], self.header[15]])
    }

    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.header[16], self.header[17]])
    }

    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn urgent_pointer(&self) -> u16 {
        u16::from_be_bytes([self.header[18], self.header[19]])
    }

    /// The fixed 20 header bytes.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn header(&self) -> &'a [u8; HEADER_LEN] {
        self.header
    }

    /// The raw options area (0 to 40 bytes); see [`parse_options`].
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        self.options
    }

    /// The segment's data: a slice of the received frame, not a copy.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Parses a TCP options area (RFC 9293 3.2, 3.1 "Options").
///
/// - EOL (0) ends the list; what follows is padding and is not read. NOP (1) is one byte.
/// - Every other option is `kind, length, data` with `length` counting the two first bytes.
/// - Known options: MSS (2, len 4), window scale (3, len 3; the shift is returned as sent, the
///   engine clamps it to 14 per RFC 7323 2.3), SACK-permitted (4, len 2), SACK (5, len 2+8k,
///   the first 4 blocks kept), timestamps (8, len 10). A later copy of an option replaces an
///   earlier one. Options are parsed whatever the flags; which ones count on a non-SYN segment
///   is the engine's decision.
/// - Unknown kinds are skipped by their length.
///
/// Malformed options, the choice made here:
/// - a length below 2, a kind with no room for its length byte, or a length that runs past the
///   end of the options area ends parsing there: the options before it are kept and the segment
///   is accepted, as Linux's `tcp_parse_options` does (RFC 9293 3.1 gives no way to find the
///   next option, and a SYN with such an option is answered by Linux; ../shared/FIELD.md). The
///   count of such segments is what `BadTcpOptions` counted before; see `options_truncated`;
/// - a known kind whose length is wrong but stays inside the area (MSS with length 3, a SACK
///   option of length 2 or 2+8k+r) is skipped by that length and ignored, like Linux does
///   (`tcp_parse_options` checks `opsize` per kind and ignores a mismatch): a SYN carrying one is
///   still answered, without that option (see ../shared/FIELD.md, "Bad option lengths in a SYN").
#[inline]
pub fn parse_options(bytes: &[u8]) -> Result<TcpOptions, DropReason> {
    match *bytes {
        [] => Ok(TcpOptions::default()),
        // The layout of nearly every segment after the handshake, NOP NOP TS (RFC 7323
        // Appendix A), decoded without the general loop (as Linux does in its fast path).
        [
            kind::NOP,
            kind::NOP,
            kind::TIMESTAMPS,
            10,
            v0,
            v1,
            v2,
            v3,
            e0,
            e1,
            e2,
            e3,
        ] => Ok(TcpOptions {
            timestamps: Some((
                u32::from_be_bytes([v0, v1, v2, v3]),
                u32::from_be_bytes([e0, e1, e2, e3]),
            )),
            ..TcpOptions::default()
        }),
        _ => parse_options_general(bytes),
    }
}

fn parse_options_general(mut bytes: &[u8]) -> Result<TcpOptions, DropReason> {
    let mut opts = TcpOptions::default();
    loop {
        let (kind, len) = match bytes {
            [] | [kind::EOL, ..] => return Ok(opts),
            [kind::NOP, rest @ ..] => {
                bytes = rest;
                continue;
            }
            [k, len, ..] => (*k, *len as usize),
            // A kind byte with no room for its length: stop, keep what was parsed (Linux).
            [_] => return Ok(opts),
        };
        if len < 2 {
            return Ok(opts);
        }
        let Some((option, rest)) = bytes.split_at_checked(len) else {
            return Ok(opts);
        };
        bytes = rest;
        match (kind, option) {
            (kind::MSS, &[_, _, a, b]) => opts.mss = Some(u16::from_be_bytes([a, b])),
            (kind::WINDOW_SCALE, &[_, _, shift]) => opts.window_scale = Some(shift),
            (kind::SACK_PERMITTED, &[_, _]) => opts.sack_permitted = true,
            (kind::TIMESTAMPS, &[_, _, v0, v1, v2, v3, e0, e1, e2, e3]) => {
                opts.timestamps = Some((
                    u32::from_be_bytes([v0, v1, v2, v3]),
                    u32::from_be_bytes([e0, e1, e2, e3]),
                ));
            }
            (kind::SACK, [_, _, blocks @ ..]) if !blocks.is_empty() && blocks.len() % 8 == 0 => {
                let (blocks, _) = blocks.as_chunks::<8>();
                let mut n = 0;
                for (slot, b) in opts.sack_blocks.iter_mut().zip(blocks) {
                    let [l0, l1, l2, l3, r0, r1, r2, r3] = *b;
                    *slot = SackBlock {
                        left: u32::from_be_bytes([l0, l1, l2, l3]),
                        right: u32::from_be_bytes([r0, r1, r2, r3]),
                    };
                    n += 1;
                }
                opts.sack_count = n;
            }
            // Unknown kind, or a known kind with a wrong length: skipped (see above).
            _ => {}
        }
    }
}

/// How many SACK blocks a header with `opts` carries: all of `opts.sack()` that fit into the 40
/// option bytes next to the other options (3 with timestamps, 4 without; RFC 2018 3).
#[inline]
fn sack_blocks_to_send(opts: &TcpOptions, other_len: usize) -> usize {
    let room = MAX_OPTIONS_LEN.saturating_sub(other_len + 4) / 8;
    (opts.sack_count as usize).min(4).min(room)
}

/// Length of the options other than SACK blocks, in the layout of [`write_options`].
#[inline]
fn fixed_options_len(opts: &TcpOptions) -> usize {
    let mut len = 0;
    if opts.mss.is_some() {
        len += 4;
    }
    if opts.timestamps.is_some() {
        len += 12;
    } else if opts.sack_permitted {
        len += 4;
    }
    if opts.window_scale.is_some() {
        len += 4;
    }
    len
}

/// The number of option bytes [`write_options`] writes for `opts`: a multiple of 4, at most 40.
#[inline]
pub fn options_len(opts: &TcpOptions) -> usize {
    let fixed = fixed_options_len(opts);
    match sack_blocks_to_send(opts, fixed) {
        0 => fixed,
        n => fixed + 4 + 8 * n,
    }
}

/// Writes 4-byte words into a slice front to back, summing them as it goes (from registers: no
/// reading back of bytes just stored, which would stall on store-to-load forwarding). A word
/// that does not fit is dropped; callers size the slice with [`options_len`].
struct OptionWriter<'b> {
    rest: &'b mut [u8],
    written: usize,
    sum: Checksum,
}

impl OptionWriter<'_> {
    #[inline(always)]
    fn put(&mut self, bytes: [u8; 4]) {
        if self.rest.len() < 4 {
            return;
        }
        let rest = std::mem::take(&mut self.rest);
        if let Some((head, tail)) = rest.split_first_chunk_mut::<4>() {
            *head = bytes;
            self.rest = tail;
            self.written += 4;
            self.sum.add_u32(u32::from_be_bytes(bytes));
        }
    }

    #[inline(always)]
    fn put_u32(&mut self, v: u32) {
        self.put(v.to_be_bytes());
    }
}

/// Writes `opts` into `out` in the order and 4-byte alignment Linux uses (`tcp_options_write`):
/// MSS `02 04 mm mm`; timestamps as `04 02 08 0a` (SACK-permitted sharing the word) or
/// `01 01 08 0a`, then TSval and TSecr; SACK-permitted without timestamps `01 01 04 02`;
/// window scale `01 03 03 ws`; SACK blocks `01 01 05 len` then the blocks (as many as fit, see
/// [`options_len`]). Returns the bytes written, which is `options_len(opts)` when `out` is at
/// least that long.
#[cfg(any(test, feature = "internals"))]
#[inline]
pub fn write_options(out: &mut [u8], opts: &TcpOptions) -> usize {
    write_options_summed(out, opts).0
}

/// [`write_options`], also returning the checksum of the bytes written.
#[inline]
pub fn write_options_summed(out: &mut [u8], opts: &TcpOptions) -> (usize, Checksum) {
    let mut w = OptionWriter {
        rest: out,
        written: 0,
        sum: Checksum::new(),
    };
    if let Some(mss) = opts.mss {
        let [m0, m1] = mss.to_be_bytes();
        w.put([kind::MSS, 4, m0, m1]);
    }
    if let Some((tsval, tsecr)) = opts.timestamps {
        if opts.sack_permitted {
            w.put([kind::SACK_PERMITTED, 2, kind::TIMESTAMPS, 10]);
        } else {
            w.put([kind::NOP, kind::NOP, kind::TIMESTAMPS, 10]);
        }
        w.put_u32(tsval);
        w.put_u32(tsecr);
    } else if opts.sack_permitted {
        w.put([kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]);
    }
    if let Some(shift) = opts.window_scale {
        w.put([kind::NOP, kind::WINDOW_SCALE, 3, shift]);
    }
    let n = sack_blocks_to_send(opts, fixed_options_len(opts));
    if n > 0 {
        w.put([kind::NOP, kind::NOP, kind::SACK, (2 + 8 * n) as u8]);
        for b in opts.sack_blocks.iter().take(n) {
            w.put_u32(b.left);
            w.put_u32(b.right);
        }
    }
    (w.written, w.sum)
}

/// The fields of a TCP header to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHeaderFields {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
}

/// Writes the fixed 20 bytes of a TCP header in place, with the checksum and urgent pointer
/// zero. `header_len` is the header length with options (a multiple of 4, 20..=60).
#[inline]
pub fn write_header(header: &mut [u8; HEADER_LEN], f: &TcpHeaderFields, header_len: usize) {
    let [s0, s1] = f.src_port.to_be_bytes();
    let [d0, d1] = f.dst_port.to_be_bytes();
    let [q0, q1, q2, q3] = f.seq.to_be_bytes();
    let [a0, a1, a2, a3] = f.ack.to_be_bytes();
    let [w0, w1] = f.window.to_be_bytes();
    let data_offset = ((header_len / 4) as u8) << 4;
    *header = [
        s0,
        s1,
        d0,
        d1,
        q0,
        q1,
        q2,
        q3,
        a0,
        a1,
        a2,
        a3,
        data_offset,
        f.flags.0,
        w0,
        w1,
        0,
        0,
        0,
        0,
    ];
}

/// The checksum of the fixed 20 bytes [`write_header`] writes (checksum and urgent pointer
/// zero), computed from the field values rather than read back from memory.
#[inline]
pub fn header_sum(f: &TcpHeaderFields, header_len: usize) -> Checksum {
    let mut c = Checksum::new();
    c.add_u32(((f.src_port as u32) << 16) | f.dst_port as u32);
    c.add_u32(f.seq);
    c.add_u32(f.ack);
    c.add_u32(((header_len as u32 / 4) << 28) | ((f.flags.0 as u32) << 16) | f.window as u32);
    c
}

/// Stores a checksum (host order) into a written header.
#[inline]
pub fn set_checksum(header: &mut [u8; HEADER_LEN], value: u16) {
    let [c0, c1] = value.to_be_bytes();
    header[16] = c0;
    header[17] = c1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with_ts(tsval: u32, tsecr: u32) -> TcpOptions {
        TcpOptions {
            timestamps: Some((tsval, tsecr)),
            ..TcpOptions::default()
        }
    }

    fn sack(blocks: &[(u32, u32)]) -> TcpOptions {
        let mut o = TcpOptions::default();
        for (slot, &(left, right)) in o.sack_blocks.iter_mut().zip(blocks) {
            *slot = SackBlock { left, right };
        }
        o.sack_count = blocks.len() as u8;
        o
    }

    fn written(opts: &TcpOptions) -> Vec<u8> {
        let mut out = [0u8; MAX_OPTIONS_LEN];
        let n = write_options(&mut out, opts);
        assert_eq!(n, options_len(opts));
        out[..n].to_vec()
    }

    // ---- parsing ----

    #[test]
    fn parses_linux_syn_options() {
        // Options of a SYN from Linux 6.18: MSS 1460, SACK-permitted, TS, NOP, WS 10.
        let bytes = [
            0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xd5, 0x58, 0x42, 0x2c, 0x00, 0x00,
            0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
        ];
        let o = parse_options(&bytes).unwrap();
        assert_eq!(o.mss, Some(1460));
        assert!(o.sack_permitted);
        assert_eq!(o.timestamps, Some((0xd558_422c, 0)));
        assert_eq!(o.window_scale, Some(10));
        assert_eq!(o.sack_count, 0);
    }

    #[test]
    fn parses_sack_blocks() {
        let mut bytes = vec![0x01, 0x01, 0x05, 2 + 8 * 4];
        for i in 0..4u32 {
            bytes.extend_from_slice(&(i * 100).to_be_bytes());
            bytes.extend_from_slice(&(i * 100 + 50).to_be_bytes());
        }
        let o = parse_options(&bytes).unwrap();
        assert_eq!(o.sack_count, 4);
        assert_eq!(
            o.sack()[3],
            SackBlock {
                left: 300,
                right: 350
            }
        );
    }

    #[test]
    fn eol_ends_parsing_and_garbage_after_it_is_ignored() {
        let o = parse_options(&[0x02, 0x04, 0x05, 0xb4, 0x00, 0xff, 0x00, 0x03]).unwrap();
        assert_eq!(o.mss, Some(1460));
        assert_eq!(parse_options(&[]).unwrap(), TcpOptions::default());
        assert_eq!(parse_options(&[1, 1, 1, 1]).unwrap(), TcpOptions::default());
    }

    #[test]
    fn unknown_options_are_skipped_by_length() {
        // kind 30 (MPTCP) of length 6, then WS 7, then kind 254 (experimental) of length 2.
        let bytes = [30, 6, 1, 2, 3, 4, 3, 3, 7, 254, 2, 0];
        let o = parse_options(&bytes).unwrap();
        assert_eq!(o.window_scale, Some(7));
    }

    #[test]
    fn wrong_fixed_length_within_area_is_ignored() {
        // MSS with length 3, then a good WS: the MSS is ignored, the WS kept (Linux does so).
        let o = parse_options(&[2, 3, 0x05, 3, 3, 9, 0, 0]).unwrap();
        assert_eq!(o.mss, None);
        assert_eq!(o.window_scale, Some(9));
        // WS with length 4.
        assert_eq!(parse_options(&[3, 4, 1, 2]).unwrap().window_scale, None);
        // SACK-permitted with length 3.
        assert!(!parse_options(&[4, 3, 0, 0]).unwrap().sack_permitted);
        // Timestamps with length 8.
        assert_eq!(
            parse_options(&[8, 8, 0, 0, 0, 1, 0, 0]).unwrap().timestamps,
            None
        );
        // MSS with length 6, followed by SACK-permitted.
        let o = parse_options(&[2, 6, 5, 0xb4, 0, 0, 4, 2]).unwrap();
        assert_eq!(o.mss, None);
        assert!(o.sack_permitted);
        // SACK whose length is not 2+8k, or has no block.
        assert_eq!(
            parse_options(&[5, 9, 0, 0, 0, 1, 0, 0, 0])
                .unwrap()
                .sack_count,
            0
        );
        assert_eq!(parse_options(&[5, 2, 1, 1]).unwrap().sack_count, 0);
    }

    #[test]
    fn bad_lengths_end_parsing_like_linux() {
        // Length 0 and 1: parsing stops, the segment is kept.
        assert_eq!(parse_options(&[2, 0, 0, 0]), Ok(TcpOptions::default()));
        assert_eq!(parse_options(&[30, 1, 0, 0]), Ok(TcpOptions::default()));
        // A length running past the area.
        assert_eq!(
            parse_options(&[1, 2, 5, 5, 0xb4]),
            Ok(TcpOptions::default())
        );
        assert_eq!(
            parse_options(&[8, 10, 0, 0, 0, 0]),
            Ok(TcpOptions::default())
        );
        // A kind with no room for its length byte.
        assert_eq!(parse_options(&[1, 1, 1, 2]), Ok(TcpOptions::default()));
        // Options before the trouble are kept.
        let o = parse_options(&[2, 4, 5, 0xb4, 3, 0, 0, 0]).unwrap();
        assert_eq!(o.mss, Some(1460));
        assert_eq!(o.window_scale, None);
    }

    #[test]
    fn later_copy_wins() {
        let o = parse_options(&[2, 4, 0, 100, 2, 4, 0, 200]).unwrap();
        assert_eq!(o.mss, Some(200));
    }

    // ---- writing: Linux's layout (tcp_options_write) ----

    #[test]
    fn syn_ack_with_everything() {
        let o = TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            timestamps: Some((0xa6b6_20a1, 0xd558_422c)),
            ..TcpOptions::default()
        };
        // Bytes of a SYN/ACK sent by Linux 6.18.
        assert_eq!(
            written(&o),
            [
                0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xa6, 0xb6, 0x20, 0xa1, 0xd5, 0x58,
                0x42, 0x2c, 0x01, 0x03, 0x03, 0x0a
            ]
        );
    }

    #[test]
    fn syn_ack_without_timestamps() {
        let o = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            ..TcpOptions::default()
        };
        assert_eq!(written(&o), [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7]);
        let o = TcpOptions {
            mss: Some(536),
            ..TcpOptions::default()
        };
        assert_eq!(written(&o), [2, 4, 0x02, 0x18]);
    }

    #[test]
    fn timestamps_alone() {
        assert_eq!(
            written(&with_ts(1, 2)),
            [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]
        );
    }

    #[test]
    fn sack_blocks_alone_and_with_timestamps() {
        assert_eq!(
            written(&sack(&[(10, 20)])),
            [1, 1, 5, 10, 0, 0, 0, 10, 0, 0, 0, 20]
        );
        let mut o = sack(&[(10, 20), (30, 40)]);
        o.timestamps = Some((7, 8));
        assert_eq!(
            written(&o),
            [
                1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 8, 1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0,
                0, 30, 0, 0, 0, 40
            ]
        );
    }

    #[test]
    fn sack_blocks_are_limited_to_what_fits() {
        let four = [(1, 2), (3, 4), (5, 6), (7, 8)];
        // Without timestamps all four fit: 4 + 32 = 36 bytes.
        assert_eq!(options_len(&sack(&four)), 36);
        // With timestamps only three: 12 + 4 + 24 = 40.
        let mut o = sack(&four);
        o.timestamps = Some((1, 1));
        assert_eq!(options_len(&o), 40);
        let parsed = parse_options(&written(&o)).unwrap();
        assert_eq!(parsed.sack(), &o.sack()[..3]);
        // A corrupt count above 4 is treated as 4.
        let mut o = sack(&four);
        o.sack_count = 200;
        assert_eq!(options_len(&o), 36);
    }

    #[test]
    fn short_output_writes_only_whole_pieces() {
        let o = with_ts(1, 2);
        let mut out = [0u8; 6];
        assert_eq!(write_options(&mut out, &o), 4);
    }

    fn arb_options() -> impl Strategy<Value = TcpOptions> {
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u8>()),
            any::<bool>(),
            proptest::option::of(any::<(u32, u32)>()),
            proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
        )
            .prop_map(|(mss, ws, sackp, ts, blocks)| {
                let mut o = sack(&blocks);
                o.mss = mss;
                o.window_scale = ws;
                o.sack_permitted = sackp;
                o.timestamps = ts;
                o
            })
    }

    proptest! {
        #[test]
        fn parse_options_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            let _ = parse_options(&bytes);
        }

        #[test]
        fn fast_path_agrees_with_general_loop(tsval in any::<u32>(), tsecr in any::<u32>(),
                                              other in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut bytes = vec![1, 1, 8, 10];
            bytes.extend_from_slice(&tsval.to_be_bytes());
            bytes.extend_from_slice(&tsecr.to_be_bytes());
            prop_assert_eq!(parse_options(&bytes), parse_options_general(&bytes));
            prop_assert_eq!(parse_options(&bytes).unwrap().timestamps, Some((tsval, tsecr)));
            prop_assert_eq!(parse_options(&other), parse_options_general(&other));
        }

        #[test]
        fn written_options_parse_back(o in arb_options()) {
            let bytes = written(&o);
            prop_assert!(bytes.len() <= MAX_OPTIONS_LEN);
            prop_assert_eq!(bytes.len() % 4, 0);
            let p = parse_options(&bytes).unwrap();
            prop_assert_eq!(p.mss, o.mss);
            prop_assert_eq!(p.window_scale, o.window_scale);
            prop_assert_eq!(p.sack_permitted, o.sack_permitted);
            prop_assert_eq!(p.timestamps, o.timestamps);
            // SACK blocks: as many as fit beside the other options.
            let fit = (MAX_OPTIONS_LEN - fixed_options_len(&o)).saturating_sub(4) / 8;
            prop_assert_eq!(p.sack(), &o.sack()[..o.sack().len().min(fit)]);
        }

        #[test]
        fn view_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(v) = TcpSegmentView::new_checked(&bytes) {
                prop_assert_eq!(v.len(), bytes.len());
                prop_assert!(v.header_len() >= HEADER_LEN && v.header_len() <= 60);
                let _ = (v.src_port(), v.dst_port(), v.seq(), v.ack(), v.flags(), v.window(),
                         v.checksum(), v.urgent_pointer(), v.checksum_ok(1, 2));
            }
        }
    }
}
