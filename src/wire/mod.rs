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
use ipv6::{Ipv6Error, Ipv6Packet};
#[cfg(any(test, feature = "internals"))]
use segment::SegmentOut;
pub use segment::IpAddress;
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
    /// The EtherType is neither IPv4 nor IPv6 (ARP, a VLAN tag...).
    NotIp,
    /// The IP version field does not match the EtherType (4 for IPv4, 6 for IPv6).
    BadIpVersion,
    /// IHL below 5, or the IPv4 header runs past the frame.
    BadIpHeaderLength,
    /// IPv4 Total Length shorter than the header or longer than the frame; IPv6 Payload
    /// Length longer than the frame.
    BadIpTotalLength,
    /// The IPv4 header checksum does not verify.
    BadIpChecksum,
    /// A fragment (IPv4 MF set or non-zero offset, an IPv6 Fragment header): synack does not
    /// reassemble (the XDP program leaves IPv6 fragments to the kernel).
    Fragment,
    /// The IPv4 protocol, or the IPv6 header chain's last Next Header, is not TCP.
    NotTcp,
    /// An IPv6 extension header that cannot be skipped: truncated, a Routing header with
    /// Segments Left (RFC 8200 4.4), Hop-by-Hop anywhere but first (RFC 8200 4.1), or a chain
    /// longer than 8 headers.
    BadIpv6Extension,
    /// An IPv6 source or destination that is IPv4-mapped (`::ffff:0:0/96`) or multicast: not a
    /// TCP peer (Linux's tcp_v6_rcv and ip6_rcv_core drop them too).
    BadIpv6Address,
    /// An ICMP or ICMPv6 message that the XDP program steered here but that is not a usable
    /// path-MTU message: truncated, a bad checksum, a quote that is not one of our TCP segments.
    BadIcmp,
    /// TCP Data Offset below 5 or past the end of the IPv4 payload.
    BadTcpHeaderLength,
    /// The TCP checksum (with the pseudo-header) does not verify.
    BadTcpChecksum,
    /// The TCP options area cannot be parsed (see [`tcp::parse_options`]).
    BadTcpOptions,
}

impl DropReason {
    /// Every reason, in discriminant order: `ALL[r as usize] == r`.
    pub const ALL: [DropReason; 14] = [
        DropReason::TooShort,
        DropReason::NotIp,
        DropReason::BadIpVersion,
        DropReason::BadIpHeaderLength,
        DropReason::BadIpTotalLength,
        DropReason::BadIpChecksum,
        DropReason::Fragment,
        DropReason::NotTcp,
        DropReason::BadIpv6Extension,
        DropReason::BadIpv6Address,
        DropReason::BadIcmp,
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
            DropReason::NotIp => "not_ip",
            DropReason::BadIpVersion => "bad_ip_version",
            DropReason::BadIpHeaderLength => "bad_ip_header_length",
            DropReason::BadIpTotalLength => "bad_ip_total_length",
            DropReason::BadIpChecksum => "bad_ip_checksum",
            DropReason::Fragment => "fragment",
            DropReason::NotTcp => "not_tcp",
            DropReason::BadIpv6Extension => "bad_ipv6_extension",
            DropReason::BadIpv6Address => "bad_ipv6_address",
            DropReason::BadIcmp => "bad_icmp",
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

/// A received frame that passed every check of [`parse_frame`]: views of its Ethernet and TCP
/// headers, the IP addresses, and the parsed TCP options. All slices point into the frame
/// (nothing is copied).
#[derive(Clone, Copy, Debug)]
pub struct ParsedFrame<'a> {
    pub eth: EthernetFrame<'a>,
    /// The IPv4 header, for an IPv4 frame (`None` for IPv6).
    #[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
    pub ipv4: Option<Ipv4Packet<'a>>,
    /// The IP source (IPv4-mapped for IPv4).
    pub src: IpAddress,
    /// The IP destination (IPv4-mapped for IPv4).
    pub dst: IpAddress,
    /// IPv4 TTL or IPv6 Hop Limit.
    #[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
    pub hop_limit: u8,
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
    /// IP source.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn src_ip(&self) -> IpAddress {
        self.src
    }
    /// IP destination.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn dst_ip(&self) -> IpAddress {
        self.dst
    }
    /// IPv4 TTL or IPv6 Hop Limit.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.hop_limit
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

    /// The connection this segment belongs to, seen from this host: remote = IP/TCP source,
    /// local = destination.
    #[inline]
    pub fn tuple(&self) -> FourTuple {
        FourTuple {
            remote_ip: self.src,
            remote_port: self.src_port(),
            local_ip: self.dst,
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

/// Parses and validates one received Ethernet frame carrying TCP over IPv4 or IPv6, in one
/// pass:
///
/// 1. Ethernet II header present (`TooShort`), EtherType IPv4 or IPv6 (`NotIp`; VLAN-tagged
///    frames are not supported and count here);
/// 2. IPv4: version (`BadIpVersion`), IHL (`BadIpHeaderLength`), Total Length
///    (`BadIpTotalLength`); bytes after Total Length (Ethernet padding of short frames) are
///    ignored; IPv4 options are skipped, not interpreted; the header checksum (`BadIpChecksum`),
///    checked before the fields below so that a corrupt header is counted as such; fragments,
///    MF set or offset non-zero (`Fragment`); protocol TCP (`NotTcp`);
/// 3. IPv6 (see [`ipv6_upper_layer`]): version (`BadIpVersion`), Payload Length
///    (`BadIpTotalLength`), addresses neither IPv4-mapped nor multicast (`BadIpv6Address`),
///    extension headers skipped as Linux accepts them (`BadIpv6Extension`, `Fragment`), last
///    Next Header TCP (`NotTcp`);
/// 4. TCP Data Offset (`TooShort` under 20 bytes, else `BadTcpHeaderLength`);
/// 5. TCP checksum over pseudo-header, header and payload (`BadTcpChecksum`), one pass;
/// 6. TCP options (`BadTcpOptions`, see [`tcp::parse_options`] for what is skipped and what
///    drops).
///
/// Addresses are not judged here beyond that (broadcast, martians, our own IP): that is the
/// caller's policy.
#[inline]
pub fn parse_frame(frame: &[u8]) -> Result<ParsedFrame<'_>, DropReason> {
    let eth = EthernetFrame::new_checked(frame)?;
    let ethertype = eth.ethertype();
    if ethertype == ethernet::ETHERTYPE_IPV4 {
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
        // RFC 9293 3.1 (Checksum): the segment length fits in 16 bits because it lies within
        // an IPv4 datagram whose Total Length does.
        if !tcp.checksum_ok(ip.src(), ip.dst()) {
            return Err(DropReason::BadTcpChecksum);
        }
        let options = tcp::parse_options(tcp.options())?;
        Ok(ParsedFrame {
            eth,
            src: IpAddress::v4(ip.src()),
            dst: IpAddress::v4(ip.dst()),
            hop_limit: ip.ttl(),
            ipv4: Some(ip),
            tcp,
            options,
        })
    } else if ethertype == ethernet::ETHERTYPE_IPV6 {
        parse_ipv6(eth)
    } else {
        Err(DropReason::NotIp)
    }
}

/// The IPv6 half of [`parse_frame`], out of line so the IPv4 path stays small.
#[inline(never)]
fn parse_ipv6(eth: EthernetFrame<'_>) -> Result<ParsedFrame<'_>, DropReason> {
    let v6 = Ipv6Packet::new_checked(eth.payload()).map_err(DropReason::from)?;
    check_ipv6_addresses(v6.src(), v6.dst())?;
    let upper = v6.upper_layer().map_err(DropReason::from)?;
    if upper.protocol != ipv4::PROTO_TCP {
        return Err(DropReason::NotTcp);
    }
    let tcp = TcpSegmentView::new_checked(upper.payload)?;
    // RFC 8200 8.1: the pseudo-header's Upper-Layer Packet Length is the TCP length (here at
    // most 65535: it lies within the Payload Length).
    let pseudo = checksum::pseudo_header_v6(v6.src(), v6.dst(), ipv4::PROTO_TCP, tcp.len() as u32);
    if !tcp.checksum_ok_with(pseudo) {
        return Err(DropReason::BadTcpChecksum);
    }
    let options = tcp::parse_options(tcp.options())?;
    Ok(ParsedFrame {
        eth,
        ipv4: None,
        src: IpAddress::v6(*v6.src()),
        dst: IpAddress::v6(*v6.dst()),
        hop_limit: v6.hop_limit(),
        tcp,
        options,
    })
}

/// Multicast (ff00::/8) is never a TCP peer; IPv4-mapped addresses would alias IPv4
/// connections in the tuple (Linux's tcp_v6_rcv drops them).
#[inline]
fn check_ipv6_addresses(src: &[u8; 16], dst: &[u8; 16]) -> Result<(), DropReason> {
    for a in [src, dst] {
        if a[0] == 0xff || IpAddress::v6(*a).is_v4() {
            return Err(DropReason::BadIpv6Address);
        }
    }
    Ok(())
}

impl From<Ipv6Error> for DropReason {
    fn from(e: Ipv6Error) -> Self {
        match e {
            Ipv6Error::TooShort => DropReason::TooShort,
            Ipv6Error::BadVersion => DropReason::BadIpVersion,
            Ipv6Error::BadPayloadLength => DropReason::BadIpTotalLength,
            Ipv6Error::Fragment => DropReason::Fragment,
            Ipv6Error::TruncatedExtensionHeader
            | Ipv6Error::HopByHopNotFirst
            | Ipv6Error::BadOption
            | Ipv6Error::TooManyExtensionHeaders
            | Ipv6Error::RoutingSegmentsLeft
            | Ipv6Error::RoutingType => DropReason::BadIpv6Extension,
        }
    }
}

/// An ICMP "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC 8201) about a
/// TCP segment this host sent, as [`parse_pmtu_frame`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmtuFrame {
    /// The connection as this host sees it: local = the quoted source (us), remote = the
    /// quoted destination.
    pub tuple: FourTuple,
    /// The quoted segment's sequence number.
    pub seq: SeqNumber,
    /// The MTU the router reported (or RFC 1191's estimate, see [`icmp::PmtuMessage`]).
    pub mtu: u32,
}

/// Parses a frame that [`parse_frame`] found not to be TCP as a path-MTU message: Ethernet,
/// an IPv4 header (checked as for TCP) carrying ICMP type 3 code 4, or an IPv6 header
/// (extension headers walked as for TCP) carrying ICMPv6 type 2, each with a valid checksum
/// and quoting a TCP segment whose source is the outer destination (this host sent it).
/// Anything else is `BadIcmp`, or the reason `parse_frame` would give.
pub fn parse_pmtu_frame(frame: &[u8]) -> Result<PmtuFrame, DropReason> {
    let eth = EthernetFrame::new_checked(frame)?;
    let (msg, outer_dst) = match eth.ethertype() {
        ethernet::ETHERTYPE_IPV4 => {
            let ip = Ipv4Packet::new_checked(eth.payload())?;
            if !ip.checksum_ok() {
                return Err(DropReason::BadIpChecksum);
            }
            if ip.is_fragment() {
                return Err(DropReason::Fragment);
            }
            if ip.protocol() != icmp::PROTO_ICMPV4 {
                return Err(DropReason::NotTcp);
            }
            let msg = icmp::parse_icmpv4_pmtu(ip.payload()).map_err(|_| DropReason::BadIcmp)?;
            (msg, IpAddress::v4(ip.dst()))
        }
        ethernet::ETHERTYPE_IPV6 => {
            let v6 = Ipv6Packet::new_checked(eth.payload()).map_err(DropReason::from)?;
            check_ipv6_addresses(v6.src(), v6.dst())?;
            let upper = v6.upper_layer().map_err(DropReason::from)?;
            if upper.protocol != ipv6::PROTO_ICMPV6 {
                return Err(DropReason::NotTcp);
            }
            let msg = icmp::parse_icmpv6_pmtu(upper.payload, v6.src(), v6.dst())
                .map_err(|_| DropReason::BadIcmp)?;
            (msg, IpAddress::v6(*v6.dst()))
        }
        _ => return Err(DropReason::NotIp),
    };
    let q = msg.quoted;
    let local = IpAddress::v6(q.src);
    // RFC 5927 4: the quote must be of a datagram this host sent to where it says.
    if local != outer_dst || local.is_v4() != IpAddress::v6(q.dst).is_v4() {
        return Err(DropReason::BadIcmp);
    }
    Ok(PmtuFrame {
        tuple: FourTuple {
            remote_ip: IpAddress::v6(q.dst),
            remote_port: q.dst_port,
            local_ip: local,
            local_port: q.src_port,
        },
        seq: SeqNumber::new(q.seq),
        mtu: msg.mtu,
    })
}

/// Ethernet + IPv4 + TCP header bytes without options.
pub const MIN_HEADERS_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp::HEADER_LEN;
/// Ethernet + IPv6 + TCP header bytes without options (no extension headers).
pub const MIN_HEADERS_LEN_V6: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + tcp::HEADER_LEN;

/// Everything [`build_tcp_frame`] needs to write the headers of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// The family of `src_ip` decides the frame's: IPv4 when it is IPv4(-mapped).
    pub src_ip: IpAddress,
    /// Same family as `src_ip`.
    pub dst_ip: IpAddress,
    /// IPv4 TTL or IPv6 Hop Limit.
    pub ttl: u8,
    /// IPv4 Identification (unused for IPv6).
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
    /// The TTL Linux uses by default (`net.ipv4.ip_default_ttl`; IPv6's hop limit,
    /// [`ipv6::DEFAULT_HOP_LIMIT`], is the same).
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
            src_ip: IpAddress::v4(0),
            dst_ip: IpAddress::v4(0),
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
    /// The IPv4 datagram or the IPv6 payload would exceed 65535 bytes.
    TooLong,
    /// Source and destination are of different families.
    MixedFamilies,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::BufferTooSmall { needed, available } => {
                write!(f, "frame needs {needed} bytes, buffer has {available}")
            }
            BuildError::TooLong => f.write_str("IP datagram longer than 65535 bytes"),
            BuildError::MixedFamilies => f.write_str("an IPv4 and an IPv6 address in one frame"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Bytes of Ethernet, IP (IPv4 when `v4`, else IPv6) and TCP headers (options included, see
/// [`tcp::options_len`]) that [`build_tcp_frame`] writes for `opts`: where the payload starts
/// in the frame.
#[inline]
pub fn tcp_headers_len(v4: bool, opts: &TcpOptions) -> usize {
    (if v4 { MIN_HEADERS_LEN } else { MIN_HEADERS_LEN_V6 }) + tcp::options_len(opts)
}

/// Writes the Ethernet II, IP (IPv4: 20 bytes, DF set, header checksum; IPv6: 40 bytes, no
/// extension headers, flow label 0) and TCP (options laid out like Linux, see
/// [`tcp::write_options`], full checksum) headers into `buf`, in front of the `payload_len`
/// payload bytes the caller already placed at
/// `buf[tcp_headers_len(spec.src_ip.is_v4(), &spec.options)..]`.
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
    if spec.src_ip.is_v4() {
        if !spec.dst_ip.is_v4() {
            return Err(BuildError::MixedFamilies);
        }
        build_v4(buf, spec, payload_len, payload_sum)
    } else {
        if spec.dst_ip.is_v4() {
            return Err(BuildError::MixedFamilies);
        }
        build_v6(buf, spec, payload_len, payload_sum)
    }
}

#[inline(always)]
fn build_v4(
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

    let (src, dst) = (spec.src_ip.v4_bits(), spec.dst_ip.v4_bits());
    ethernet::write_header(eth_h, spec.dst_mac, spec.src_mac, ethernet::ETHERTYPE_IPV4);
    ipv4::write_header(
        ip_h,
        &ipv4::Ipv4Fields {
            src,
            dst,
            protocol: ipv4::PROTO_TCP,
            ttl: spec.ttl,
            ident: spec.ip_id,
            total_len: ip_total as u16,
        },
    );
    let tcp_len = (ip_total - ipv4::HEADER_LEN) as u16;
    let pseudo = checksum::pseudo_header_v4(src, dst, ipv4::PROTO_TCP, tcp_len);
    write_tcp(tcp_h, opts, payload, spec, options_len, pseudo, payload_sum);
    Ok(frame_len)
}

#[inline(never)]
fn build_v6(
    buf: &mut [u8],
    spec: &FrameSpec,
    payload_len: usize,
    payload_sum: Option<Checksum>,
) -> Result<usize, BuildError> {
    let options_len = tcp::options_len(&spec.options);
    let headers_len = MIN_HEADERS_LEN_V6 + options_len;
    let frame_len = headers_len
        .checked_add(payload_len)
        .ok_or(BuildError::TooLong)?;
    let tcp_len = frame_len - MIN_HEADERS_LEN_V6 + tcp::HEADER_LEN;
    if tcp_len > u16::MAX as usize {
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
        .split_first_chunk_mut::<{ ipv6::HEADER_LEN }>()
        .ok_or(too_small)?;
    let (tcp_h, rest) = rest
        .split_first_chunk_mut::<{ tcp::HEADER_LEN }>()
        .ok_or(too_small)?;
    let (opts, payload) = rest.split_at_mut_checked(options_len).ok_or(too_small)?;

    ethernet::write_header(eth_h, spec.dst_mac, spec.src_mac, ethernet::ETHERTYPE_IPV6);
    // RFC 8200 3: traffic class 0, flow label 0 (RFC 6437 allows it), no extension headers.
    ipv6::write_header(
        ip_h,
        spec.src_ip.octets(),
        spec.dst_ip.octets(),
        ipv4::PROTO_TCP,
        spec.ttl,
        tcp_len as u16,
        0,
    );
    let pseudo = checksum::pseudo_header_v6(
        spec.src_ip.octets(),
        spec.dst_ip.octets(),
        ipv4::PROTO_TCP,
        tcp_len as u32,
    );
    write_tcp(tcp_h, opts, payload, spec, options_len, pseudo, payload_sum);
    Ok(frame_len)
}

/// Writes the TCP header and options and the checksum over `pseudo`, header and payload.
#[inline(always)]
fn write_tcp(
    tcp_h: &mut [u8; tcp::HEADER_LEN],
    opts: &mut [u8],
    payload: &[u8],
    spec: &FrameSpec,
    options_len: usize,
    pseudo: Checksum,
    payload_sum: Option<Checksum>,
) {
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
    let mut sum = pseudo;
    sum.add_checksum(tcp::header_sum(&fields, tcp_header_len));
    sum.add_checksum(options_sum);
    match payload_sum {
        Some(s) => sum.add_checksum(s),
        None => sum.add_bytes(payload),
    }
    tcp::set_checksum(tcp_h, sum.finish());
}
