//! TCP header view, options and builder (RFC 9293 3.1 header format and checksum, 3.2 options;
//! MSS RFC 9293 3.7.1 / RFC 6691; window scale and timestamps RFC 7323 2.2 and 3.2; SACK-permitted
//! and SACK RFC 2018 2 and 3).

use super::DropReason;
use super::checksum;
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
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);
    pub const NONE: TcpFlags = TcpFlags(0);

    pub const fn bits(self) -> u8 {
        self.0
    }
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
        let mut c = checksum::pseudo_header_v4(src, dst, PROTO_TCP, self.len() as u16);
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

    #[inline]
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.header[16], self.header[17]])
    }

    #[inline]
    pub fn urgent_pointer(&self) -> u16 {
        u16::from_be_bytes([self.header[18], self.header[19]])
    }

    /// The fixed 20 header bytes.
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
///   end of the options area makes the whole area unparseable: `Err(DropReason::BadTcpOptions)`
///   and the segment is dropped (RFC 9293 3.1 gives no way to find the next option);
/// - a known kind whose length is wrong but stays inside the area (MSS with length 3, a SACK
///   option of length 2 or 2+8k+r) is skipped by that length and ignored, like Linux does
///   (`tcp_parse_options` checks `opsize` per kind and ignores a mismatch): a SYN carrying one is
///   still answered, without that option (see ../shared/FIELD.md, "Bad option lengths in a SYN").
///   Note that Linux, unlike this parser, also keeps the options before a truncated one and
///   accepts the segment; we drop such a segment instead.
pub fn parse_options(mut bytes: &[u8]) -> Result<TcpOptions, DropReason> {
    let mut opts = TcpOptions::default();
    loop {
        let (kind, len) = match bytes {
            [] | [kind::EOL, ..] => return Ok(opts),
            [kind::NOP, rest @ ..] => {
                bytes = rest;
                continue;
            }
            [k, len, ..] => (*k, *len as usize),
            // A kind byte with no room for its length.
            [_] => return Err(DropReason::BadTcpOptions),
        };
        if len < 2 {
            return Err(DropReason::BadTcpOptions);
        }
        let Some((option, rest)) = bytes.split_at_checked(len) else {
            return Err(DropReason::BadTcpOptions);
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

/// Writes fixed-size pieces into a slice front to back; a piece that does not fit is dropped
/// (callers size the slice with [`options_len`], so that does not happen).
struct OptionWriter<'b> {
    rest: &'b mut [u8],
    written: usize,
}

impl OptionWriter<'_> {
    #[inline(always)]
    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        if self.rest.len() < N {
            return;
        }
        let rest = std::mem::take(&mut self.rest);
        if let Some((head, tail)) = rest.split_first_chunk_mut::<N>() {
            *head = bytes;
            self.rest = tail;
            self.written += N;
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
pub fn write_options(out: &mut [u8], opts: &TcpOptions) -> usize {
    let mut w = OptionWriter {
        rest: out,
        written: 0,
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
    w.written
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

/// Stores a checksum (host order) into a written header.
#[inline]
pub fn set_checksum(header: &mut [u8; HEADER_LEN], value: u16) {
    let [c0, c1] = value.to_be_bytes();
    header[16] = c0;
    header[17] = c1;
}
