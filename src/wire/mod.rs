//! Wire formats: zero-copy views over received frames and in-place builders for frames to send.
//! Nothing here allocates, reads a clock or makes a syscall; every view checks lengths up front.
//!
//! RFCs: Ethernet II and IPv4 over Ethernet (RFC 894), IPv4 (RFC 791), TCP (RFC 9293) and its
//! options (RFC 7323, RFC 2018), the Internet checksum (RFC 1071, RFC 1624).
//!
//! Receive: [`parse_frame`] turns one Ethernet frame into a [`ParsedFrame`] or a [`DropReason`].
//! Transmit: the caller copies the payload to `buf[tcp_headers_len(&opts)..]`, then
//! [`build_tcp_frame`] writes the Ethernet, IPv4 and TCP headers in front of it, checksums
//! included, and returns the frame length.

pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod segment;
pub mod seq;
pub mod tcp;

use checksum::Checksum;
use ethernet::EthernetFrame;
use ipv4::Ipv4Packet;
#[cfg(any(test, feature = "internals"))]
use segment::SegmentOut;
use segment::{FourTuple, SegmentIn};
use seq::SeqNumber;
use tcp::{TcpFlags, TcpOptions, TcpSegmentView};

/// Why the wire layer dropped a received frame. Counters can be arrays indexed by
/// `reason as usize` (see [`DropReason::ALL`] and [`DropReason::COUNT`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than the fixed part of the Ethernet, IPv4 or TCP header.
    TooShort,
    /// The EtherType is not IPv4 (ARP, IPv6, a VLAN tag...).
    NotIpv4,
    /// IPv4 version field is not 4.
    BadIpVersion,
    /// IHL below 5, or the IPv4 header runs past the frame.
    BadIpHeaderLength,
    /// Total Length shorter than the header or longer than the frame.
    BadIpTotalLength,
    /// The IPv4 header checksum does not verify.
    BadIpChecksum,
    /// A fragment (MF set or non-zero offset): synack does not reassemble.
    Fragment,
    /// IPv4 protocol is not TCP.
    NotTcp,
    /// TCP Data Offset below 5 or past the end of the IPv4 payload.
    BadTcpHeaderLength,
    /// The TCP checksum (with the pseudo-header) does not verify.
    BadTcpChecksum,
    /// The TCP options area cannot be parsed (see [`tcp::parse_options`]).
    BadTcpOptions,
}

impl DropReason {
    /// Every reason, in discriminant order: `ALL[r as usize] == r`.
    pub const ALL: [DropReason; 11] = [
        DropReason::TooShort,
        DropReason::NotIpv4,
        DropReason::BadIpVersion,
        DropReason::BadIpHeaderLength,
        DropReason::BadIpTotalLength,
        DropReason::BadIpChecksum,
        DropReason::Fragment,
        DropReason::NotTcp,
        DropReason::BadTcpHeaderLength,
        DropReason::BadTcpChecksum,
        DropReason::BadTcpOptions,
    ];
    /// Number of reasons: the length of a per-reason counter array.
    pub const COUNT: usize = Self::ALL.len();

    /// A snake_case name for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::TooShort => "too_short",
            DropReason::NotIpv4 => "not_ipv4",
            DropReason::BadIpVersion => "bad_ip_version",
            DropReason::BadIpHeaderLength => "bad_ip_header_length",
            DropReason::BadIpTotalLength => "bad_ip_total_length",
            DropReason::BadIpChecksum => "bad_ip_checksum",
            DropReason::Fragment => "fragment",
            DropReason::NotTcp => "not_tcp",
            DropReason::BadTcpHeaderLength => "bad_tcp_header_length",
            DropReason::BadTcpChecksum => "bad_tcp_checksum",
            DropReason::BadTcpOptions => "bad_tcp_options",
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A received frame that passed every check of [`parse_frame`]: views of its three headers and
/// its parsed TCP options. All slices point into the frame (nothing is copied).
#[derive(Clone, Copy, Debug)]
pub struct ParsedFrame<'a> {
    pub eth: EthernetFrame<'a>,
    pub ip: Ipv4Packet<'a>,
    pub tcp: TcpSegmentView<'a>,
    pub options: TcpOptions,
}

impl<'a> ParsedFrame<'a> {
    #[inline]
    pub fn src_mac(&self) -> [u8; 6] {
        self.eth.src_mac()
    }
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn dst_mac(&self) -> [u8; 6] {
        self.eth.dst_mac()
    }
    /// IPv4 source, host order.
    #[inline]
    pub fn src_ip(&self) -> u32 {
        self.ip.src()
    }
    /// IPv4 destination, host order.
    #[inline]
    pub fn dst_ip(&self) -> u32 {
        self.ip.dst()
    }
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.ip.ttl()
    }
    #[inline]
    pub fn src_port(&self) -> u16 {
        self.tcp.src_port()
    }
    #[inline]
    pub fn dst_port(&self) -> u16 {
        self.tcp.dst_port()
    }
    /// Raw sequence number.
    #[inline]
    pub fn seq(&self) -> u32 {
        self.tcp.seq()
    }
    /// Raw acknowledgment number.
    #[inline]
    pub fn ack(&self) -> u32 {
        self.tcp.ack()
    }
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        self.tcp.flags()
    }
    /// Raw (unscaled) window.
    #[inline]
    pub fn window(&self) -> u16 {
        self.tcp.window()
    }
    /// The TCP payload, a slice of the frame (Ethernet padding excluded).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.tcp.payload()
    }

    /// The connection this segment belongs to, seen from this host: remote = IPv4/TCP source,
    /// local = destination.
    #[inline]
    pub fn tuple(&self) -> FourTuple {
        FourTuple {
            remote_ip: self.src_ip(),
            remote_port: self.src_port(),
            local_ip: self.dst_ip(),
            local_port: self.dst_port(),
        }
    }

    /// The engine's input for this segment. The payload borrows the frame, not `self`.
    #[inline]
    pub fn to_segment_in(self) -> SegmentIn<'a> {
        SegmentIn {
            tuple: self.tuple(),
            link: self.src_mac(),
            seq: SeqNumber::new(self.seq()),
            ack: SeqNumber::new(self.ack()),
            flags: self.flags(),
            window: self.window(),
            options: self.options,
            payload: self.payload(),
        }
    }
}

/// Parses and validates one received Ethernet frame carrying IPv4/TCP, in one pass:
///
/// 1. Ethernet II header present (`TooShort`), EtherType IPv4 (`NotIpv4`; VLAN-tagged frames
///    are not supported and count here);
/// 2. IPv4 version (`BadIpVersion`), IHL (`BadIpHeaderLength`), Total Length (`BadIpTotalLength`);
///    bytes after Total Length (Ethernet padding of short frames) are ignored; IPv4 options are
///    skipped, not interpreted;
/// 3. IPv4 header checksum (`BadIpChecksum`), checked before the fields below so that a corrupt
///    header is counted as such;
/// 4. fragments, MF set or offset non-zero (`Fragment`); protocol TCP (`NotTcp`);
/// 5. TCP Data Offset (`TooShort` under 20 bytes, else `BadTcpHeaderLength`);
/// 6. TCP checksum over pseudo-header, header and payload (`BadTcpChecksum`), one pass;
/// 7. TCP options (`BadTcpOptions`, see [`tcp::parse_options`] for what is skipped and what
///    drops).
///
/// Addresses are not judged here (broadcast, martians, our own IP): that is the caller's policy.
#[inline]
pub fn parse_frame(frame: &[u8]) -> Result<ParsedFrame<'_>, DropReason> {
    let eth = EthernetFrame::new_checked(frame)?;
    if eth.ethertype() != ethernet::ETHERTYPE_IPV4 {
        return Err(DropReason::NotIpv4);
    }
    let ip = Ipv4Packet::new_checked(eth.payload())?;
    if !ip.checksum_ok() {
        return Err(DropReason::BadIpChecksum);
    }
    // RFC 791 3.2: a fragment would need reassembly, which synack does not do.
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    if ip.protocol() != ipv4::PROTO_TCP {
        return Err(DropReason::NotTcp);
    }
    let tcp = TcpSegmentView::new_checked(ip.payload())?;
    // RFC 9293 3.1 (Checksum): the segment length fits in 16 bits because it lies within an
    // IPv4 datagram whose Total Length does.
    if !tcp.checksum_ok(ip.src(), ip.dst()) {
        return Err(DropReason::BadTcpChecksum);
    }
    let options = tcp::parse_options(tcp.options())?;
    Ok(ParsedFrame {
        eth,
        ip,
        tcp,
        options,
    })
}

/// Ethernet + IPv4 + TCP header bytes without options.
pub const MIN_HEADERS_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp::HEADER_LEN;

/// Everything [`build_tcp_frame`] needs to write the headers of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Host order.
    pub src_ip: u32,
    /// Host order.
    pub dst_ip: u32,
    pub ttl: u8,
    pub ip_id: u16,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Raw (already scaled-down) window.
    pub window: u16,
    pub options: TcpOptions,
}

impl FrameSpec {
    /// The TTL Linux uses by default (`net.ipv4.ip_default_ttl`).
    pub const DEFAULT_TTL: u8 = 64;

    /// The frame for a segment the engine emitted: from the tuple's local end to its remote end.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn for_segment(seg: &SegmentOut, src_mac: [u8; 6], dst_mac: [u8; 6], ip_id: u16) -> Self {
        FrameSpec {
            src_mac,
            dst_mac,
            src_ip: seg.tuple.local_ip,
            dst_ip: seg.tuple.remote_ip,
            ttl: Self::DEFAULT_TTL,
            ip_id,
            src_port: seg.tuple.local_port,
            dst_port: seg.tuple.remote_port,
            seq: seg.seq.raw(),
            ack: seg.ack.raw(),
            flags: seg.flags,
            window: seg.window,
            options: seg.options,
        }
    }
}

impl Default for FrameSpec {
    fn default() -> Self {
        FrameSpec {
            src_mac: [0; 6],
            dst_mac: [0; 6],
            src_ip: 0,
            dst_ip: 0,
            ttl: Self::DEFAULT_TTL,
            ip_id: 0,
            src_port: 0,
            dst_port: 0,
            seq: 0,
            ack: 0,
            flags: TcpFlags::NONE,
            window: 0,
            options: TcpOptions::default(),
        }
    }
}

/// Why a frame could not be built. Nothing was written when this is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The frame needs `needed` bytes but the buffer has `available`.
    BufferTooSmall { needed: usize, available: usize },
    /// The IPv4 datagram would exceed 65535 bytes.
    TooLong,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::BufferTooSmall { needed, available } => {
                write!(f, "frame needs {needed} bytes, buffer has {available}")
            }
            BuildError::TooLong => f.write_str("IPv4 datagram longer than 65535 bytes"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Bytes of Ethernet, IPv4 and TCP headers (options included, see [`tcp::options_len`]) that
/// [`build_tcp_frame`] writes for `opts`: where the payload starts in the frame.
#[inline]
pub fn tcp_headers_len(opts: &TcpOptions) -> usize {
    MIN_HEADERS_LEN + tcp::options_len(opts)
}

/// Writes the Ethernet II, IPv4 (20 bytes, DF set, header checksum) and TCP (options laid out
/// like Linux, see [`tcp::write_options`], full checksum) headers into `buf`, in front of the
/// `payload_len` payload bytes the caller already placed at `buf[tcp_headers_len(&spec.options)..]`.
/// Returns the frame length. Never panics; on error nothing is written.
#[inline]
pub fn build_tcp_frame(
    buf: &mut [u8],
    spec: &FrameSpec,
    payload_len: usize,
) -> Result<usize, BuildError> {
    build(buf, spec, payload_len, None)
}

/// [`build_tcp_frame`] for a payload whose sum the caller already knows (the same static body
/// sent again and again, a retransmission): `payload_sum` must be the [`Checksum`] of exactly
/// the `payload_len` bytes at the payload position; the payload is then not read at all.
#[cfg(any(test, feature = "internals"))]
#[inline]
pub fn build_tcp_frame_with_payload_sum(
    buf: &mut [u8],
    spec: &FrameSpec,
    payload_len: usize,
    payload_sum: Checksum,
) -> Result<usize, BuildError> {
    build(buf, spec, payload_len, Some(payload_sum))
}

#[inline(always)]
fn build(
    buf: &mut [u8],
    spec: &FrameSpec,
    payload_len: usize,
    payload_sum: Option<Checksum>,
) -> Result<usize, BuildError> {
    let options_len = tcp::options_len(&spec.options);
    let headers_len = MIN_HEADERS_LEN + options_len;
    let frame_len = headers_len
        .checked_add(payload_len)
        .ok_or(BuildError::TooLong)?;
    let ip_total = frame_len - ethernet::HEADER_LEN;
    if ip_total > u16::MAX as usize {
        return Err(BuildError::TooLong);
    }
    let too_small = BuildError::BufferTooSmall {
        needed: frame_len,
        available: buf.len(),
    };
    let frame = buf.get_mut(..frame_len).ok_or(too_small)?;
    let (eth_h, rest) = frame
        .split_first_chunk_mut::<{ ethernet::HEADER_LEN }>()
        .ok_or(too_small)?;
    let (ip_h, rest) = rest
        .split_first_chunk_mut::<{ ipv4::HEADER_LEN }>()
        .ok_or(too_small)?;
    let (tcp_h, rest) = rest
        .split_first_chunk_mut::<{ tcp::HEADER_LEN }>()
        .ok_or(too_small)?;
    let (opts, payload) = rest.split_at_mut_checked(options_len).ok_or(too_small)?;

    ethernet::write_header(eth_h, spec.dst_mac, spec.src_mac, ethernet::ETHERTYPE_IPV4);
    ipv4::write_header(
        ip_h,
        &ipv4::Ipv4Fields {
            src: spec.src_ip,
            dst: spec.dst_ip,
            protocol: ipv4::PROTO_TCP,
            ttl: spec.ttl,
            ident: spec.ip_id,
            total_len: ip_total as u16,
        },
    );
    let fields = tcp::TcpHeaderFields {
        src_port: spec.src_port,
        dst_port: spec.dst_port,
        seq: spec.seq,
        ack: spec.ack,
        flags: spec.flags,
        window: spec.window,
    };
    let tcp_header_len = tcp::HEADER_LEN + options_len;
    tcp::write_header(tcp_h, &fields, tcp_header_len);
    let (_, options_sum) = tcp::write_options_summed(opts, &spec.options);

    // RFC 9293 3.1 (Checksum): pseudo-header, header (checksum field zero) and payload. The
    // header and option sums come from the values just written (reading the bytes back would
    // stall on store forwarding); the payload is read once, or not at all when its sum is known.
    let tcp_len = (ip_total - ipv4::HEADER_LEN) as u16;
    let mut sum = checksum::pseudo_header_v4(spec.src_ip, spec.dst_ip, ipv4::PROTO_TCP, tcp_len);
    sum.add_checksum(tcp::header_sum(&fields, tcp_header_len));
    sum.add_checksum(options_sum);
    match payload_sum {
        Some(s) => sum.add_checksum(s),
        None => sum.add_bytes(payload),
    }
    tcp::set_checksum(tcp_h, sum.finish());
    Ok(frame_len)
}
