//! TCP header view, options and builder (RFC 9293 3.1; options RFC 7323, RFC 2018).

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

pub const MIN_HEADER_LEN: usize = 20;
/// The most option bytes a header can carry (data offset 15).
pub const MAX_OPTIONS_LEN: usize = 40;

const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_WSCALE: u8 = 3;
const OPT_SACK_PERM: u8 = 4;
const OPT_SACK: u8 = 5;
const OPT_TIMESTAMPS: u8 = 8;

/// Why a TCP header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpError {
    TooShort,
    HeaderLength,
    Options,
}

/// A view over a TCP segment (header and payload), length-checked once.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegmentView<'a> {
    buf: &'a [u8],
    header_len: usize,
}

impl<'a> TcpSegmentView<'a> {
    /// Checks that the data offset is at least 5 words and within `buf` (the IP payload).
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, TcpError> {
        if buf.len() < MIN_HEADER_LEN {
            return Err(TcpError::TooShort);
        }
        let header_len = ((buf[12] >> 4) as usize) * 4;
        if header_len < MIN_HEADER_LEN || header_len > buf.len() {
            return Err(TcpError::HeaderLength);
        }
        Ok(TcpSegmentView { buf, header_len })
    }
    #[inline]
    pub fn src_port(&self) -> u16 {
        u16::from_be_bytes([self.buf[0], self.buf[1]])
    }
    #[inline]
    pub fn dst_port(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }
    #[inline]
    pub fn seq(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }
    #[inline]
    pub fn ack(&self) -> u32 {
        u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
    }
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buf[13])
    }
    #[inline]
    pub fn window(&self) -> u16 {
        u16::from_be_bytes([self.buf[14], self.buf[15]])
    }
    #[inline]
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.buf[16], self.buf[17]])
    }
    #[inline]
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    #[inline]
    pub fn options_bytes(&self) -> &'a [u8] {
        &self.buf[MIN_HEADER_LEN..self.header_len]
    }
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..]
    }
    /// The whole segment (for the checksum).
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }
    /// Parses the options (see [`parse_options`]).
    #[inline]
    pub fn options(&self) -> Result<TcpOptions, TcpError> {
        parse_options(self.options_bytes())
    }
}

/// Parses TCP options (RFC 9293 3.1, RFC 7323, RFC 2018).
///
/// Like Linux: an option whose length is valid for the options area but wrong for its kind
/// (an MSS of length 3, say) is skipped and the segment kept, so a SYN with a malformed option
/// is still answered. An option whose length byte is missing, below 2 or runs past the end of
/// the options area makes the header unparseable, and the segment is refused.
/// Unknown kinds are skipped by their length; EOL ends the list.
pub fn parse_options(mut b: &[u8]) -> Result<TcpOptions, TcpError> {
    let mut o = TcpOptions::default();
    while let Some(&kind) = b.first() {
        match kind {
            OPT_EOL => break,
            OPT_NOP => {
                b = &b[1..];
                continue;
            }
            _ => {}
        }
        let len = *b.get(1).ok_or(TcpError::Options)? as usize;
        if len < 2 || len > b.len() {
            return Err(TcpError::Options);
        }
        let body = &b[2..len];
        match (kind, len) {
            (OPT_MSS, 4) => o.mss = Some(u16::from_be_bytes([body[0], body[1]])),
            (OPT_WSCALE, 3) => o.window_scale = Some(body[0]),
            (OPT_SACK_PERM, 2) => o.sack_permitted = true,
            (OPT_TIMESTAMPS, 10) => {
                o.timestamps = Some((
                    u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                    u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
                ))
            }
            (OPT_SACK, l) if l >= 10 && (l - 2) % 8 == 0 => {
                for (i, blk) in body.chunks_exact(8).take(4).enumerate() {
                    o.sack_blocks[i] = SackBlock {
                        left: u32::from_be_bytes([blk[0], blk[1], blk[2], blk[3]]),
                        right: u32::from_be_bytes([blk[4], blk[5], blk[6], blk[7]]),
                    };
                    o.sack_count = i as u8 + 1;
                }
            }
            // A known kind with a wrong length, or an unknown kind: skipped.
            _ => {}
        }
        b = &b[len..];
    }
    Ok(o)
}

/// Bytes the options take on the wire (padded to a multiple of 4), in the layout of
/// [`write_options`].
#[inline]
pub fn options_len(o: &TcpOptions) -> usize {
    let mut n = 0;
    if o.mss.is_some() {
        n += 4;
    }
    // SACK-permitted shares a word with timestamps, or takes NOP NOP SACKP.
    if o.sack_permitted || o.timestamps.is_some() {
        n += match (o.sack_permitted, o.timestamps.is_some()) {
            (true, true) => 12,
            (true, false) => 4,
            _ => 12,
        };
    }
    if o.window_scale.is_some() {
        n += 4;
    }
    let max_sack = if o.timestamps.is_some() { 3 } else { 4 };
    let blocks = (o.sack_count as usize).min(max_sack);
    if blocks > 0 && n + 4 + 8 * blocks <= MAX_OPTIONS_LEN {
        n += 4 + 8 * blocks;
    }
    n
}

/// Writes options in Linux's layout: `MSS`, `SACKP TS` (or `NOP NOP TS`, `NOP NOP SACKP`),
/// `NOP WS`, `NOP NOP SACK...`. Returns the bytes written (a multiple of 4). `buf` must hold
/// [`options_len`] bytes.
pub fn write_options(buf: &mut [u8], o: &TcpOptions) -> usize {
    let mut i = 0;
    if let Some(mss) = o.mss {
        buf[i..i + 4].copy_from_slice(&[OPT_MSS, 4, (mss >> 8) as u8, mss as u8]);
        i += 4;
    }
    match (o.sack_permitted, o.timestamps) {
        (sackp, Some((val, ecr))) => {
            if sackp {
                buf[i..i + 2].copy_from_slice(&[OPT_SACK_PERM, 2]);
            } else {
                buf[i..i + 2].copy_from_slice(&[OPT_NOP, OPT_NOP]);
            }
            buf[i + 2] = OPT_TIMESTAMPS;
            buf[i + 3] = 10;
            buf[i + 4..i + 8].copy_from_slice(&val.to_be_bytes());
            buf[i + 8..i + 12].copy_from_slice(&ecr.to_be_bytes());
            i += 12;
        }
        (true, None) => {
            buf[i..i + 4].copy_from_slice(&[OPT_NOP, OPT_NOP, OPT_SACK_PERM, 2]);
            i += 4;
        }
        (false, None) => {}
    }
    if let Some(ws) = o.window_scale {
        buf[i..i + 4].copy_from_slice(&[OPT_NOP, OPT_WSCALE, 3, ws]);
        i += 4;
    }
    let max_sack = if o.timestamps.is_some() { 3 } else { 4 };
    let blocks = (o.sack_count as usize).min(max_sack);
    if blocks > 0 && i + 4 + 8 * blocks <= MAX_OPTIONS_LEN {
        buf[i..i + 4].copy_from_slice(&[OPT_NOP, OPT_NOP, OPT_SACK, (2 + 8 * blocks) as u8]);
        i += 4;
        for b in &o.sack_blocks[..blocks] {
            buf[i..i + 4].copy_from_slice(&b.left.to_be_bytes());
            buf[i + 4..i + 8].copy_from_slice(&b.right.to_be_bytes());
            i += 8;
        }
    }
    i
}
