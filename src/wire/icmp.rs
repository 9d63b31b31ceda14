//! The two ICMP messages of Path MTU Discovery, parsed for the engine: ICMPv4 Destination
//! Unreachable "fragmentation needed and DF set" (RFC 792, RFC 1191 4) and ICMPv6 Packet Too
//! Big (RFC 4443 3.2, RFC 8201 4). Each quotes the start of a packet this host sent; what the
//! engine needs from the quote is the TCP connection and the sequence number (RFC 5927 4.1
//! asks for the sequence number to be checked against the data in flight, which is the
//! engine's part).
//!
//! Both parsers take the ICMP message (the IP payload, cut at the IP lengths) and check, in
//! this order: the 8-byte ICMP header is there (`Truncated`), the type and code
//! (`NotPmtu`: any other message is for the kernel), the ICMP checksum (`BadChecksum`), then
//! the quoted IP header (`QuotedBadHeader`, `Truncated`) and that it carries TCP with at least
//! the 8 bytes RFC 792 promises (`QuotedNotTcp`, `Truncated`). Policy (is the MTU plausible,
//! below the minimum, larger than the current one) is the caller's.


use super::checksum::{self, Checksum};
use super::ipv4::PROTO_TCP;
use super::ipv6::{self, PROTO_ICMPV6};

/// Length of the ICMP header, both versions: type, code, checksum, 4 type-specific bytes.
pub const HEADER_LEN: usize = 8;
/// ICMPv4 Destination Unreachable (RFC 792).
pub const ICMPV4_DEST_UNREACHABLE: u8 = 3;
/// ICMPv4 Destination Unreachable code "fragmentation needed and DF set" (RFC 792).
pub const ICMPV4_CODE_FRAG_NEEDED: u8 = 4;
/// ICMPv6 Packet Too Big (RFC 4443 3.2).
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;
/// IPv4 protocol number of ICMP (RFC 792).
pub const PROTO_ICMPV4: u8 = 1;
/// Bytes of the quoted datagram's transport header an ICMP error is sure to hold (RFC 792:
/// "the internet header plus the first 64 bits of the original datagram's data"): the TCP
/// ports and sequence number.
pub const QUOTED_TRANSPORT_LEN: usize = 8;
/// The plateau table of RFC 1191 7 (Table 7-1), largest first, used to estimate the MTU when
/// a router reports a next-hop MTU of zero.
pub const RFC1191_PLATEAUS: [u16; 11] = [
    65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68,
];

/// Why an ICMP message was not taken as a Path MTU message. Counters can be arrays indexed by
/// `kind as usize` (see [`IcmpError::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum IcmpError {
    /// Another type or code: not for the engine (the kernel may want it).
    NotPmtu,
    /// The ICMP header, the quoted IP header or the 8 quoted transport bytes are cut short.
    Truncated,
    /// The ICMP checksum does not verify.
    BadChecksum,
    /// The quoted IP header is not a valid header of the expected version (version field,
    /// IPv4 IHL below 5).
    QuotedBadHeader,
    /// The quoted datagram does not carry the start of a TCP segment: another protocol, an
    /// IPv4 fragment with a non-zero offset, an IPv6 Fragment header with a non-zero offset,
    /// or an extension-header chain that cannot be walked.
    QuotedNotTcp,
}

impl IcmpError {
    /// Every kind, in discriminant order: `ALL[e as usize] == e`.
    #[cfg(any(test, feature = "internals"))]
    pub const ALL: [IcmpError; 5] = [
        IcmpError::NotPmtu,
        IcmpError::Truncated,
        IcmpError::BadChecksum,
        IcmpError::QuotedBadHeader,
        IcmpError::QuotedNotTcp,
    ];
    /// Number of kinds.
    #[cfg(any(test, feature = "internals"))]
    pub const COUNT: usize = Self::ALL.len();

    /// A snake_case name for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            IcmpError::NotPmtu => "not_pmtu",
            IcmpError::Truncated => "truncated",
            IcmpError::BadChecksum => "bad_checksum",
            IcmpError::QuotedBadHeader => "quoted_bad_header",
            IcmpError::QuotedNotTcp => "quoted_not_tcp",
        }
    }
}

impl std::fmt::Display for IcmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for IcmpError {}

/// The TCP segment an ICMP error quotes, as this host sent it: `src` is this host's address
/// and port, `dst` the peer's. Addresses are 16 bytes in network order, IPv4 ones
/// IPv4-mapped (`::ffff:a.b.c.d`, RFC 4291 2.5.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuotedTcp {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    /// The quoted segment's sequence number, raw.
    pub seq: u32,
}

/// A Path MTU message: the MTU the sender reports and the segment it was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PmtuMessage {
    /// The next-hop MTU in bytes, as reported (ICMPv4: 16 bits; ICMPv6: 32 bits), not judged:
    /// it may be below the minimum (RFC 1191 and RFC 8201 say what to do then) or not below
    /// the size of the quoted packet. For an ICMPv4 message from a router older than
    /// RFC 1191, which leaves the field zero, the estimate of RFC 1191 7.1 (see
    /// [`rfc1191_plateau`]) and [`PmtuMessage::estimated`] is true.
    pub mtu: u32,
    /// `mtu` is an RFC 1191 plateau estimate, not a value the router sent.
    pub estimated: bool,
    /// The quoted segment.
    pub quoted: QuotedTcp,
}

/// `a.b.c.d` as `::ffff:a.b.c.d`.
#[inline]
const fn ipv4_mapped(v4: [u8; 4]) -> [u8; 16] {
    let [a, b, c, d] = v4;
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]
}

/// The RFC 1191 7.1 estimate of the path MTU when a "fragmentation needed" message reports a
/// next-hop MTU of zero: the largest plateau of [`RFC1191_PLATEAUS`] below the quoted Total
/// Length, and 68 (the IPv4 minimum, RFC 791) when none is.
#[inline]
pub fn rfc1191_plateau(quoted_total_len: u16) -> u16 {
    let mut estimate = 68;
    for p in RFC1191_PLATEAUS {
        if p < quoted_total_len {
            estimate = p;
            break;
        }
    }
    estimate
}

/// The ports and sequence number at the start of a quoted TCP header.
#[inline]
fn quoted_tcp(src: [u8; 16], dst: [u8; 16], transport: &[u8]) -> Result<QuotedTcp, IcmpError> {
    let Some(&[s0, s1, d0, d1, q0, q1, q2, q3]) = transport.first_chunk::<QUOTED_TRANSPORT_LEN>()
    else {
        return Err(IcmpError::Truncated);
    };
    Ok(QuotedTcp {
        src,
        dst,
        src_port: u16::from_be_bytes([s0, s1]),
        dst_port: u16::from_be_bytes([d0, d1]),
        seq: u32::from_be_bytes([q0, q1, q2, q3]),
    })
}

/// Parses an ICMPv4 "fragmentation needed and DF set" message: type 3 code 4 (RFC 792), the
/// next-hop MTU in bytes 6..8 (RFC 1191 4; zero from older routers: then the estimate, see
/// [`PmtuMessage::mtu`]), the checksum over the whole message (RFC 792, computed as in
/// RFC 1071), then the quoted IPv4 header, its options skipped by IHL, which must carry TCP
/// (not a fragment with a non-zero offset) followed by at least 8 bytes.
///
/// `icmp` is the IPv4 payload, cut at Total Length. The quoted header's checksum and Total
/// Length are not checked: routers may quote a header they already changed, and the quote is
/// cut short by design.
#[inline]
pub fn parse_icmpv4_pmtu(icmp: &[u8]) -> Result<PmtuMessage, IcmpError> {
    let Some((header, quoted)) = icmp.split_first_chunk::<HEADER_LEN>() else {
        return Err(IcmpError::Truncated);
    };
    if header[0] != ICMPV4_DEST_UNREACHABLE || header[1] != ICMPV4_CODE_FRAG_NEEDED {
        return Err(IcmpError::NotPmtu);
    }
    let mut c = Checksum::new();
    c.add_bytes(icmp);
    if !c.is_valid() {
        return Err(IcmpError::BadChecksum);
    }
    let Some((ip, _)) = quoted.split_first_chunk::<20>() else {
        return Err(IcmpError::Truncated);
    };
    let ihl = (ip[0] & 0x0f) as usize * 4;
    if ip[0] >> 4 != 4 || ihl < 20 {
        return Err(IcmpError::QuotedBadHeader);
    }
    let Some(transport) = quoted.get(ihl..) else {
        return Err(IcmpError::Truncated);
    };
    // RFC 791 3.1: with a non-zero fragment offset, the data is not the start of the segment.
    let offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    if ip[9] != PROTO_TCP || offset != 0 {
        return Err(IcmpError::QuotedNotTcp);
    }
    let src = ipv4_mapped([ip[12], ip[13], ip[14], ip[15]]);
    let dst = ipv4_mapped([ip[16], ip[17], ip[18], ip[19]]);
    let quoted = quoted_tcp(src, dst, transport)?;
    let mtu = u16::from_be_bytes([header[6], header[7]]);
    let (mtu, estimated) = if mtu == 0 {
        (rfc1191_plateau(u16::from_be_bytes([ip[2], ip[3]])), true)
    } else {
        (mtu, false)
    };
    Ok(PmtuMessage {
        mtu: mtu as u32,
        estimated,
        quoted,
    })
}

/// Parses an ICMPv6 Packet Too Big message (RFC 4443 3.2): type 2 (the code is ignored, as
/// RFC 4443 3.2 says the receiver does), the MTU in bytes 4..8, the checksum over the IPv6
/// pseudo-header (RFC 4443 2.3, RFC 8200 8.1, upper-layer length `icmp.len()`) and the
/// message, then the quoted IPv6 header, whose extension headers are skipped as Linux's
/// `ipv6_skip_exthdr` does (Hop-by-Hop, Destination Options, Routing, Authentication, a first
/// fragment; at most [`ipv6::MAX_EXTENSION_HEADERS`]), and which must carry TCP followed by at
/// least 8 bytes.
///
/// `icmp` is the upper-layer payload of the outer packet (after its extension headers, see
/// [`ipv6::Ipv6Packet::upper_layer`]); `src` and `dst` are the outer packet's addresses. The
/// quoted Payload Length is not checked against the quote, which is cut short by design.
#[inline]
pub fn parse_icmpv6_pmtu(
    icmp: &[u8],
    src: &[u8; 16],
    dst: &[u8; 16],
) -> Result<PmtuMessage, IcmpError> {
    let Some((header, quoted)) = icmp.split_first_chunk::<HEADER_LEN>() else {
        return Err(IcmpError::Truncated);
    };
    if header[0] != ICMPV6_PACKET_TOO_BIG {
        return Err(IcmpError::NotPmtu);
    }
    let mut c = checksum::pseudo_header_v6(src, dst, PROTO_ICMPV6, icmp.len() as u32);
    c.add_bytes(icmp);
    if !c.is_valid() {
        return Err(IcmpError::BadChecksum);
    }
    let Some((fixed, rest)) = quoted.split_first_chunk::<8>() else {
        return Err(IcmpError::Truncated);
    };
    let Some((inner_src, rest)) = rest.split_first_chunk::<16>() else {
        return Err(IcmpError::Truncated);
    };
    let Some((inner_dst, rest)) = rest.split_first_chunk::<16>() else {
        return Err(IcmpError::Truncated);
    };
    if fixed[0] >> 4 != 6 {
        return Err(IcmpError::QuotedBadHeader);
    }
    let upper = match ipv6::walk_extension_headers::<true>(fixed[6], rest) {
        Ok(u) => u,
        Err(ipv6::Ipv6Error::TruncatedExtensionHeader) => return Err(IcmpError::Truncated),
        Err(_) => return Err(IcmpError::QuotedNotTcp),
    };
    if upper.protocol != PROTO_TCP {
        return Err(IcmpError::QuotedNotTcp);
    }
    let quoted = quoted_tcp(*inner_src, *inner_dst, upper.payload)?;
    Ok(PmtuMessage {
        mtu: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
        estimated: false,
        quoted,
    })
}

#[cfg(any(test, feature = "internals"))]
pub use builders::*;

/// Frame builders for tests (the crate's own and the fuzz tests): Path MTU messages as a
/// router would send them, quoting a packet synack sent.
#[cfg(any(test, feature = "internals"))]
mod builders {
    use super::*;
    use crate::wire::{BuildError, ethernet, ipv4};

    /// RFC 1812 4.3.2.3: an ICMPv4 error holds as much of the original datagram as fits in
    /// 576 bytes.
    pub const ICMPV4_MAX_LEN: usize = 576;

    /// The outer headers of an ICMP frame to build: from a router (`src_*`) to this host
    /// (`dst_*`). Addresses are 16 bytes; for ICMPv4 only the last 4 are used (pass them
    /// IPv4-mapped).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct IcmpFrameSpec {
        pub src_mac: [u8; 6],
        pub dst_mac: [u8; 6],
        pub src_ip: [u8; 16],
        pub dst_ip: [u8; 16],
        /// The next-hop MTU to report (ICMPv4: its low 16 bits).
        pub mtu: u32,
    }

    fn v4(a: &[u8; 16]) -> u32 {
        u32::from_be_bytes([a[12], a[13], a[14], a[15]])
    }

    /// Writes an Ethernet + IPv4 + ICMPv4 "fragmentation needed and DF set" frame quoting
    /// `datagram` (an IPv4 datagram from its header on, as this host sent it; cut to what
    /// fits in 576 bytes, RFC 1812 4.3.2.3). Returns the frame length.
    pub fn build_frag_needed_frame(
        buf: &mut [u8],
        spec: &IcmpFrameSpec,
        datagram: &[u8],
    ) -> Result<usize, BuildError> {
        let quote_len = datagram
            .len()
            .min(ICMPV4_MAX_LEN - ipv4::HEADER_LEN - HEADER_LEN);
        let icmp_len = HEADER_LEN + quote_len;
        let frame_len = ethernet::HEADER_LEN + ipv4::HEADER_LEN + icmp_len;
        let too_small = BuildError::BufferTooSmall {
            needed: frame_len,
            available: buf.len(),
        };
        let frame = buf.get_mut(..frame_len).ok_or(too_small)?;
        let (eth, rest) = frame
            .split_first_chunk_mut::<{ ethernet::HEADER_LEN }>()
            .ok_or(too_small)?;
        let (ip, icmp) = rest
            .split_first_chunk_mut::<{ ipv4::HEADER_LEN }>()
            .ok_or(too_small)?;
        ethernet::write_header(eth, spec.dst_mac, spec.src_mac, ethernet::ETHERTYPE_IPV4);
        ipv4::write_header(
            ip,
            &ipv4::Ipv4Fields {
                src: v4(&spec.src_ip),
                dst: v4(&spec.dst_ip),
                protocol: PROTO_ICMPV4,
                ttl: 64,
                ident: 0,
                total_len: (ipv4::HEADER_LEN + icmp_len) as u16,
            },
        );
        let [m0, m1] = (spec.mtu as u16).to_be_bytes();
        icmp[..HEADER_LEN].copy_from_slice(&[
            ICMPV4_DEST_UNREACHABLE,
            ICMPV4_CODE_FRAG_NEEDED,
            0,
            0,
            0,
            0,
            m0,
            m1,
        ]);
        icmp[HEADER_LEN..].copy_from_slice(&datagram[..quote_len]);
        let [c0, c1] = checksum::checksum(icmp).to_be_bytes();
        icmp[2] = c0;
        icmp[3] = c1;
        Ok(frame_len)
    }

    /// Writes an Ethernet + IPv6 + ICMPv6 Packet Too Big frame quoting `packet` (an IPv6
    /// packet from its header on, as this host sent it; cut so the ICMPv6 packet fits in the
    /// minimum MTU, RFC 4443 3.2). Returns the frame length.
    pub fn build_packet_too_big_frame(
        buf: &mut [u8],
        spec: &IcmpFrameSpec,
        packet: &[u8],
    ) -> Result<usize, BuildError> {
        let quote_len = packet
            .len()
            .min(ipv6::MIN_MTU as usize - ipv6::HEADER_LEN - HEADER_LEN);
        let icmp_len = HEADER_LEN + quote_len;
        let frame_len = ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmp_len;
        let too_small = BuildError::BufferTooSmall {
            needed: frame_len,
            available: buf.len(),
        };
        let frame = buf.get_mut(..frame_len).ok_or(too_small)?;
        let (eth, rest) = frame
            .split_first_chunk_mut::<{ ethernet::HEADER_LEN }>()
            .ok_or(too_small)?;
        let (ip, icmp) = rest
            .split_first_chunk_mut::<{ ipv6::HEADER_LEN }>()
            .ok_or(too_small)?;
        ethernet::write_header(eth, spec.dst_mac, spec.src_mac, ethernet::ETHERTYPE_IPV6);
        ipv6::write_header(
            ip,
            &spec.src_ip,
            &spec.dst_ip,
            PROTO_ICMPV6,
            64,
            icmp_len as u16,
            0,
        );
        let [m0, m1, m2, m3] = spec.mtu.to_be_bytes();
        icmp[..HEADER_LEN].copy_from_slice(&[ICMPV6_PACKET_TOO_BIG, 0, 0, 0, m0, m1, m2, m3]);
        icmp[HEADER_LEN..].copy_from_slice(&packet[..quote_len]);
        let mut c = checksum::pseudo_header_v6(
            &spec.src_ip,
            &spec.dst_ip,
            PROTO_ICMPV6,
            icmp_len as u32,
        );
        c.add_bytes(icmp);
        let [c0, c1] = c.finish().to_be_bytes();
        icmp[2] = c0;
        icmp[3] = c1;
        Ok(frame_len)
    }

    /// An IP datagram carrying a TCP segment as this host would send it, for quoting: IPv4
    /// (DF set) when `q.src` is IPv4-mapped, else IPv6; an ACK with `payload_len` zero bytes of
    /// data; checksums filled in. The ICMP builders quote it.
    pub fn tcp_datagram(q: &QuotedTcp, payload_len: usize) -> Vec<u8> {
        use crate::wire::tcp;
        let fields = tcp::TcpHeaderFields {
            src_port: q.src_port,
            dst_port: q.dst_port,
            seq: q.seq,
            ack: 1,
            flags: tcp::TcpFlags::ACK,
            window: 502,
        };
        let mut th = [0u8; tcp::HEADER_LEN];
        tcp::write_header(&mut th, &fields, tcp::HEADER_LEN);
        let mut segment = th.to_vec();
        segment.resize(tcp::HEADER_LEN + payload_len, 0);
        let is_v4 = q.src[..12] == ipv4_mapped([0; 4])[..12];
        let mut sum = if is_v4 {
            checksum::pseudo_header_v4(v4(&q.src), v4(&q.dst), PROTO_TCP, segment.len() as u16)
        } else {
            checksum::pseudo_header_v6(&q.src, &q.dst, PROTO_TCP, segment.len() as u32)
        };
        sum.add_bytes(&segment);
        let [c0, c1] = sum.finish().to_be_bytes();
        segment[16] = c0;
        segment[17] = c1;
        let mut out = if is_v4 {
            let mut h = [0u8; ipv4::HEADER_LEN];
            ipv4::write_header(
                &mut h,
                &ipv4::Ipv4Fields {
                    src: v4(&q.src),
                    dst: v4(&q.dst),
                    protocol: PROTO_TCP,
                    ttl: 64,
                    ident: 0,
                    total_len: (ipv4::HEADER_LEN + segment.len()) as u16,
                },
            );
            h.to_vec()
        } else {
            let mut h = [0u8; ipv6::HEADER_LEN];
            ipv6::write_header(
                &mut h,
                &q.src,
                &q.dst,
                PROTO_TCP,
                64,
                segment.len() as u16,
                0,
            );
            h.to_vec()
        };
        out.extend_from_slice(&segment);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet;
    use proptest::prelude::*;

    const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
    const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const SERVER6: [u8; 16] = [
        0xfd, 0x00, 0x01, 0x98, 0x00, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    const CLIENT6: [u8; 16] = [
        0xfd, 0x00, 0x01, 0x98, 0x00, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];
    const ROUTER6: [u8; 16] = [
        0xfd, 0x00, 0x01, 0x98, 0x00, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe,
    ];
    const SERVER4: [u8; 16] = ipv4_mapped([198, 18, 0, 1]);
    const CLIENT4: [u8; 16] = ipv4_mapped([198, 18, 0, 2]);
    const ROUTER4: [u8; 16] = ipv4_mapped([198, 18, 0, 254]);

    fn quoted(src: [u8; 16], dst: [u8; 16]) -> QuotedTcp {
        QuotedTcp {
            src,
            dst,
            src_port: 8080,
            dst_port: 58674,
            seq: 0xdead_beef,
        }
    }

    fn spec(v6: bool, mtu: u32) -> IcmpFrameSpec {
        IcmpFrameSpec {
            src_mac: ROUTER_MAC,
            dst_mac: SERVER_MAC,
            src_ip: if v6 { ROUTER6 } else { ROUTER4 },
            dst_ip: if v6 { SERVER6 } else { SERVER4 },
            mtu,
        }
    }

    fn v4_frame(mtu: u32, datagram: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let n = build_frag_needed_frame(&mut buf, &spec(false, mtu), datagram).unwrap();
        buf.truncate(n);
        buf
    }

    fn v6_frame(mtu: u32, packet: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let n = build_packet_too_big_frame(&mut buf, &spec(true, mtu), packet).unwrap();
        buf.truncate(n);
        buf
    }

    /// The ICMP message of an IPv4 frame (the IPv4 payload).
    fn icmpv4_of(frame: &[u8]) -> &[u8] {
        &frame[ethernet::HEADER_LEN + 20..]
    }

    fn icmpv6_of(frame: &[u8]) -> &[u8] {
        &frame[ethernet::HEADER_LEN + ipv6::HEADER_LEN..]
    }

    fn fix_v4_checksum(icmp: &mut [u8]) {
        icmp[2] = 0;
        icmp[3] = 0;
        let [a, b] = checksum::checksum(icmp).to_be_bytes();
        icmp[2] = a;
        icmp[3] = b;
    }

    fn fix_v6_checksum(icmp: &mut [u8]) {
        icmp[2] = 0;
        icmp[3] = 0;
        let mut c = checksum::pseudo_header_v6(&ROUTER6, &SERVER6, PROTO_ICMPV6, icmp.len() as u32);
        c.add_bytes(icmp);
        let [a, b] = c.finish().to_be_bytes();
        icmp[2] = a;
        icmp[3] = b;
    }

    /// What a Linux 6.18 router (ip_forward on, 1280-byte MTU on the next hop) sent back for a
    /// 1500-byte segment 198.18.0.1:8080 -> 198.19.0.2:58674 seq 0x12345678 with DF, and for
    /// the same from fd00:198:18::1 to fd00:198:19::2: whole Ethernet frames, captured with
    /// tests/data/capture_icmp_pmtu.sh.
    const LINUX_FRAG_NEEDED: &[u8] =
        include_bytes!("../../tests/data/linux-icmpv4-frag-needed.bin");
    const LINUX_PACKET_TOO_BIG: &[u8] =
        include_bytes!("../../tests/data/linux-icmpv6-packet-too-big.bin");

    fn linux_quoted(v6: bool) -> QuotedTcp {
        let (src, dst) = if v6 {
            let mut dst = CLIENT6;
            dst[5] = 0x19;
            (SERVER6, dst)
        } else {
            (SERVER4, ipv4_mapped([198, 19, 0, 2]))
        };
        QuotedTcp {
            src,
            dst,
            src_port: 8080,
            dst_port: 58674,
            seq: 0x1234_5678,
        }
    }

    #[test]
    fn parses_linux_frag_needed() {
        let eth = ethernet::EthernetFrame::new_checked(LINUX_FRAG_NEEDED).unwrap();
        assert_eq!(eth.ethertype(), ethernet::ETHERTYPE_IPV4);
        let ip = crate::wire::ipv4::Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.checksum_ok());
        assert_eq!(ip.protocol(), PROTO_ICMPV4);
        // Linux quotes up to 576 bytes in all (RFC 1812 4.3.2.3).
        assert_eq!(ip.total_len(), 576);
        let m = parse_icmpv4_pmtu(ip.payload()).unwrap();
        assert_eq!(
            m,
            PmtuMessage {
                mtu: 1280,
                estimated: false,
                quoted: linux_quoted(false)
            }
        );
        // Our builder lays the message out as Linux does: same ICMP bytes, checksum included,
        // when given the same quote.
        let quote = &ip.payload()[HEADER_LEN..];
        let ours = v4_frame(1280, quote);
        assert_eq!(icmpv4_of(&ours), ip.payload());
        // A zero MTU (a pre-RFC 1191 router) on the same message: the plateau below 1500.
        let mut old = ip.payload().to_vec();
        old[6] = 0;
        old[7] = 0;
        fix_v4_checksum(&mut old);
        let m = parse_icmpv4_pmtu(&old).unwrap();
        assert_eq!((m.mtu, m.estimated), (1492, true));
    }

    #[test]
    fn parses_linux_packet_too_big() {
        let eth = ethernet::EthernetFrame::new_checked(LINUX_PACKET_TOO_BIG).unwrap();
        assert_eq!(eth.ethertype(), ethernet::ETHERTYPE_IPV6);
        let ip = ipv6::Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(ip.src(), &ROUTER6);
        assert_eq!(ip.dst(), &SERVER6);
        // Linux fills the packet up to the minimum MTU (RFC 4443 3.2).
        assert_eq!(ip.payload_len() as u32 + ipv6::HEADER_LEN as u32, ipv6::MIN_MTU);
        let u = ip.upper_layer().unwrap();
        assert_eq!(u.protocol, PROTO_ICMPV6);
        let m = parse_icmpv6_pmtu(u.payload, ip.src(), ip.dst()).unwrap();
        assert_eq!(
            m,
            PmtuMessage {
                mtu: 1280,
                estimated: false,
                quoted: linux_quoted(true)
            }
        );
        let quote = &u.payload[HEADER_LEN..];
        let ours = v6_frame(1280, quote);
        assert_eq!(icmpv6_of(&ours), u.payload);
        // And etherparse agrees that Linux's checksum is right.
        let sliced = etherparse::Icmpv6Slice::from_slice(u.payload).unwrap();
        assert!(sliced.is_checksum_valid(*ip.src(), *ip.dst()));
    }

    #[test]
    fn icmpv4_round_trip() {
        let q = quoted(SERVER4, CLIENT4);
        let datagram = tcp_datagram(&q, 1400);
        let frame = v4_frame(1280, &datagram);
        // RFC 1812 4.3.2.3: the whole error fits in 576 bytes.
        assert_eq!(frame.len(), ethernet::HEADER_LEN + 576);
        let ip = crate::wire::ipv4::Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.checksum_ok());
        assert_eq!(ip.protocol(), PROTO_ICMPV4);
        let m = parse_icmpv4_pmtu(ip.payload()).unwrap();
        assert_eq!(
            m,
            PmtuMessage {
                mtu: 1280,
                estimated: false,
                quoted: q
            }
        );
    }

    #[test]
    fn icmpv6_round_trip() {
        let q = quoted(SERVER6, CLIENT6);
        let packet = tcp_datagram(&q, 1400);
        let frame = v6_frame(1280, &packet);
        // RFC 4443 3.2: the ICMPv6 packet does not exceed the minimum MTU.
        assert_eq!(frame.len(), ethernet::HEADER_LEN + 1280);
        let ip = ipv6::Ipv6Packet::new_checked(&frame[14..]).unwrap();
        let u = ip.upper_layer().unwrap();
        assert_eq!(u.protocol, PROTO_ICMPV6);
        let m = parse_icmpv6_pmtu(u.payload, ip.src(), ip.dst()).unwrap();
        assert_eq!(
            m,
            PmtuMessage {
                mtu: 1280,
                estimated: false,
                quoted: q
            }
        );
        // An MTU above 16 bits survives (jumbo links).
        let frame = v6_frame(70_000, &packet);
        let m = parse_icmpv6_pmtu(icmpv6_of(&frame), &ROUTER6, &SERVER6).unwrap();
        assert_eq!(m.mtu, 70_000);
    }

    #[test]
    fn short_quotes_are_enough() {
        // RFC 792: the header plus 8 bytes; the quoted Total Length/Payload Length says more.
        let q4 = quoted(SERVER4, CLIENT4);
        let d = tcp_datagram(&q4, 100);
        let frame = v4_frame(1000, &d[..28]);
        assert_eq!(parse_icmpv4_pmtu(icmpv4_of(&frame)).unwrap().quoted, q4);
        let q6 = quoted(SERVER6, CLIENT6);
        let p = tcp_datagram(&q6, 100);
        let frame = v6_frame(1280, &p[..48]);
        let m = parse_icmpv6_pmtu(icmpv6_of(&frame), &ROUTER6, &SERVER6).unwrap();
        assert_eq!(m.quoted, q6);
    }

    #[test]
    fn zero_mtu_uses_rfc1191_plateau() {
        let q = quoted(SERVER4, CLIENT4);
        // Total Length 1500 -> 1492; 1492 -> 1006 (strictly below); 60 -> 68.
        for (payload, want) in [(1460, 1492), (1452, 1006), (20, 68), (2000, 2002)] {
            let frame = v4_frame(0, &tcp_datagram(&q, payload));
            let m = parse_icmpv4_pmtu(icmpv4_of(&frame)).unwrap();
            assert_eq!((m.mtu, m.estimated), (want, true), "payload {payload}");
        }
        assert_eq!(rfc1191_plateau(0), 68);
        assert_eq!(rfc1191_plateau(68), 68);
        assert_eq!(rfc1191_plateau(69), 68);
        assert_eq!(rfc1191_plateau(297), 296);
        assert_eq!(rfc1191_plateau(u16::MAX), 32000);
    }

    #[test]
    fn ipv4_options_in_quote_are_skipped() {
        let q = quoted(SERVER4, CLIENT4);
        let d = tcp_datagram(&q, 10);
        // Insert 8 bytes of options (NOPs and EOL): IHL 7.
        let mut with_opts = d[..20].to_vec();
        with_opts[0] = 0x47;
        with_opts.extend_from_slice(&[1, 1, 1, 1, 1, 1, 1, 0]);
        with_opts.extend_from_slice(&d[20..]);
        let frame = v4_frame(1400, &with_opts);
        assert_eq!(parse_icmpv4_pmtu(icmpv4_of(&frame)).unwrap().quoted, q);
    }

    #[test]
    fn ipv6_extension_headers_in_quote_are_skipped() {
        let q = quoted(SERVER6, CLIENT6);
        let p = tcp_datagram(&q, 10);
        let mut with_exts = p[..40].to_vec();
        with_exts[6] = ipv6::NEXT_HOP_BY_HOP;
        // Hop-by-Hop (PadN), then a first fragment, then TCP.
        with_exts.extend_from_slice(&[ipv6::NEXT_FRAGMENT, 0, 1, 4, 0, 0, 0, 0]);
        with_exts.extend_from_slice(&[PROTO_TCP, 0, 0, 1, 0, 0, 0, 7]);
        with_exts.extend_from_slice(&p[40..]);
        let frame = v6_frame(1280, &with_exts);
        let m = parse_icmpv6_pmtu(icmpv6_of(&frame), &ROUTER6, &SERVER6).unwrap();
        assert_eq!(m.quoted, q);
        // A later fragment quotes no TCP header.
        with_exts[50] = 0x05;
        let frame = v6_frame(1280, &with_exts);
        assert_eq!(
            parse_icmpv6_pmtu(icmpv6_of(&frame), &ROUTER6, &SERVER6),
            Err(IcmpError::QuotedNotTcp)
        );
    }

    #[test]
    fn every_icmpv4_error() {
        let q = quoted(SERVER4, CLIENT4);
        let d = tcp_datagram(&q, 100);
        let good = v4_frame(1400, &d);
        let good = icmpv4_of(&good).to_vec();
        assert!(parse_icmpv4_pmtu(&good).is_ok());

        // Other types and codes: port unreachable, host unreachable, echo reply, time exceeded.
        for (t, c) in [(3u8, 3u8), (3, 1), (0, 0), (11, 0), (3, 5), (4, 4)] {
            let mut m = good.clone();
            m[0] = t;
            m[1] = c;
            fix_v4_checksum(&mut m);
            assert_eq!(parse_icmpv4_pmtu(&m), Err(IcmpError::NotPmtu), "{t}/{c}");
        }
        let mut m = good.clone();
        m[40] ^= 1;
        assert_eq!(parse_icmpv4_pmtu(&m), Err(IcmpError::BadChecksum));
        // Quoted header: version, IHL.
        for first in [0x65u8, 0x44, 0x40] {
            let mut m = good.clone();
            m[8] = first;
            fix_v4_checksum(&mut m);
            assert_eq!(parse_icmpv4_pmtu(&m), Err(IcmpError::QuotedBadHeader), "{first:x}");
        }
        // Quoted protocol UDP, and a non-first fragment.
        let mut m = good.clone();
        m[8 + 9] = 17;
        fix_v4_checksum(&mut m);
        assert_eq!(parse_icmpv4_pmtu(&m), Err(IcmpError::QuotedNotTcp));
        let mut m = good.clone();
        m[8 + 7] = 1;
        fix_v4_checksum(&mut m);
        assert_eq!(parse_icmpv4_pmtu(&m), Err(IcmpError::QuotedNotTcp));
        // A first fragment (MF set, offset 0) still quotes the TCP header.
        let mut m = good.clone();
        m[8 + 6] |= 0x20;
        fix_v4_checksum(&mut m);
        assert!(parse_icmpv4_pmtu(&m).is_ok());
        // IHL 15 past the quote's end.
        let mut m = good[..8 + 40].to_vec();
        m[8] = 0x4f;
        fix_v4_checksum(&mut m);
        assert_eq!(parse_icmpv4_pmtu(&m), Err(IcmpError::Truncated));
    }

    #[test]
    fn every_icmpv6_error() {
        let q = quoted(SERVER6, CLIENT6);
        let p = tcp_datagram(&q, 100);
        let good = v6_frame(1400, &p);
        let good = icmpv6_of(&good).to_vec();
        assert!(parse_icmpv6_pmtu(&good, &ROUTER6, &SERVER6).is_ok());

        // Other types: destination unreachable, time exceeded, parameter problem, echo, NS.
        for t in [1u8, 3, 4, 128, 129, 135] {
            let mut m = good.clone();
            m[0] = t;
            fix_v6_checksum(&mut m);
            let r = parse_icmpv6_pmtu(&m, &ROUTER6, &SERVER6);
            assert_eq!(r, Err(IcmpError::NotPmtu), "type {t}");
        }
        // The code is ignored (RFC 4443 3.2).
        let mut m = good.clone();
        m[1] = 9;
        fix_v6_checksum(&mut m);
        assert!(parse_icmpv6_pmtu(&m, &ROUTER6, &SERVER6).is_ok());
        // The checksum covers the pseudo-header: other addresses fail.
        assert_eq!(
            parse_icmpv6_pmtu(&good, &CLIENT6, &SERVER6),
            Err(IcmpError::BadChecksum)
        );
        let mut m = good.clone();
        m[60] ^= 0x80;
        assert_eq!(
            parse_icmpv6_pmtu(&m, &ROUTER6, &SERVER6),
            Err(IcmpError::BadChecksum)
        );
        let mut m = good.clone();
        m[8] = 0x45;
        fix_v6_checksum(&mut m);
        assert_eq!(
            parse_icmpv6_pmtu(&m, &ROUTER6, &SERVER6),
            Err(IcmpError::QuotedBadHeader)
        );
        for nh in [17u8, PROTO_ICMPV6, ipv6::NEXT_NONE] {
            let mut m = good.clone();
            m[8 + 6] = nh;
            fix_v6_checksum(&mut m);
            let r = parse_icmpv6_pmtu(&m, &ROUTER6, &SERVER6);
            assert_eq!(r, Err(IcmpError::QuotedNotTcp), "next header {nh}");
        }
        // Nine Destination Options headers: the bounded walk gives up.
        let mut long = p[..40].to_vec();
        long[6] = ipv6::NEXT_DEST_OPTS;
        for i in 0..9 {
            let next = if i == 8 { PROTO_TCP } else { ipv6::NEXT_DEST_OPTS };
            long.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        long.extend_from_slice(&p[40..]);
        let frame = v6_frame(1280, &long);
        assert_eq!(
            parse_icmpv6_pmtu(icmpv6_of(&frame), &ROUTER6, &SERVER6),
            Err(IcmpError::QuotedNotTcp)
        );
    }

    #[test]
    fn errors_are_named() {
        for (i, e) in IcmpError::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
            assert_eq!(e.to_string(), e.as_str());
        }
    }

    #[test]
    fn truncation_at_every_length() {
        let q4 = quoted(SERVER4, CLIENT4);
        let d = tcp_datagram(&q4, 0);
        let full = v4_frame(1400, &d[..28]);
        let full = icmpv4_of(&full).to_vec();
        for len in 0..full.len() {
            let mut m = full[..len].to_vec();
            // Cut with a wrong checksum, and with the checksum fixed for the cut message.
            let _ = parse_icmpv4_pmtu(&m);
            if len >= HEADER_LEN {
                fix_v4_checksum(&mut m);
                assert_eq!(parse_icmpv4_pmtu(&m), Err(IcmpError::Truncated), "len {len}");
            } else {
                assert_eq!(parse_icmpv4_pmtu(&m), Err(IcmpError::Truncated), "len {len}");
            }
        }
        let q6 = quoted(SERVER6, CLIENT6);
        let p = tcp_datagram(&q6, 0);
        let full = v6_frame(1280, &p[..48]);
        let full = icmpv6_of(&full).to_vec();
        for len in 0..full.len() {
            let mut m = full[..len].to_vec();
            let _ = parse_icmpv6_pmtu(&m, &ROUTER6, &SERVER6);
            if len >= HEADER_LEN {
                fix_v6_checksum(&mut m);
            }
            let r = parse_icmpv6_pmtu(&m, &ROUTER6, &SERVER6);
            assert_eq!(r, Err(IcmpError::Truncated), "len {len}");
        }
    }

    #[test]
    fn builders_refuse_small_buffers() {
        let d = tcp_datagram(&quoted(SERVER4, CLIENT4), 10);
        for len in 0..14 + 20 + 8 + d.len() {
            let mut buf = vec![0u8; len];
            assert!(build_frag_needed_frame(&mut buf, &spec(false, 1280), &d).is_err());
        }
        let p = tcp_datagram(&quoted(SERVER6, CLIENT6), 10);
        for len in 0..14 + 40 + 8 + p.len() {
            let mut buf = vec![0u8; len];
            assert!(build_packet_too_big_frame(&mut buf, &spec(true, 1280), &p).is_err());
        }
    }

    #[test]
    fn icmpv6_agrees_with_etherparse() {
        // etherparse builds a Packet Too Big; ours parses it; and ours passes its checksum.
        let q = quoted(SERVER6, CLIENT6);
        let p = tcp_datagram(&q, 200);
        let builder = etherparse::PacketBuilder::ethernet2(ROUTER_MAC, SERVER_MAC)
            .ipv6(ROUTER6, SERVER6, 64)
            .icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 });
        let mut theirs = Vec::new();
        builder.write(&mut theirs, &p).unwrap();
        let m = parse_icmpv6_pmtu(icmpv6_of(&theirs), &ROUTER6, &SERVER6).unwrap();
        assert_eq!((m.mtu, m.quoted), (1280, q));

        let ours = v6_frame(1280, &p);
        let sliced = etherparse::Icmpv6Slice::from_slice(icmpv6_of(&ours)).unwrap();
        assert!(sliced.is_checksum_valid(ROUTER6, SERVER6));
        assert_eq!(
            sliced.icmp_type(),
            etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 }
        );
    }

    #[test]
    fn icmpv4_agrees_with_etherparse() {
        let q = quoted(SERVER4, CLIENT4);
        let d = tcp_datagram(&q, 200);
        let frag_needed = etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1280 },
        );
        let builder = etherparse::PacketBuilder::ethernet2(ROUTER_MAC, SERVER_MAC)
            .ipv4([198, 18, 0, 254], [198, 18, 0, 1], 64)
            .icmpv4(frag_needed.clone());
        let mut theirs = Vec::new();
        builder.write(&mut theirs, &d).unwrap();
        let m = parse_icmpv4_pmtu(icmpv4_of(&theirs)).unwrap();
        assert_eq!((m.mtu, m.quoted), (1280, q));

        let ours = v4_frame(1280, &d);
        let sliced = etherparse::Icmpv4Slice::from_slice(icmpv4_of(&ours)).unwrap();
        assert_eq!(sliced.icmp_type(), frag_needed);
        let (header, payload) = etherparse::Icmpv4Header::from_slice(icmpv4_of(&ours)).unwrap();
        assert_eq!(header.checksum, frag_needed.calc_checksum(payload));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            src in any::<[u8; 16]>(),
        ) {
            let _ = parse_icmpv4_pmtu(&bytes);
            let _ = parse_icmpv6_pmtu(&bytes, &src, &SERVER6);
        }

        #[test]
        fn never_panics_on_mangled_messages(
            v6 in any::<bool>(),
            payload in 0usize..300,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            // Valid messages with bytes changed and the checksum fixed, so that the parsing
            // after the checksum is reached.
            let q = if v6 { quoted(SERVER6, CLIENT6) } else { quoted(SERVER4, CLIENT4) };
            let d = tcp_datagram(&q, payload);
            let frame = if v6 { v6_frame(1280, &d) } else { v4_frame(1280, &d) };
            let mut m = if v6 { icmpv6_of(&frame) } else { icmpv4_of(&frame) }.to_vec();
            for (at, v) in flips {
                let i = at.index(m.len());
                m[i] = v;
            }
            m.truncate(cut.index(m.len() + 1).max(HEADER_LEN));
            m[0] = if v6 { ICMPV6_PACKET_TOO_BIG } else { ICMPV4_DEST_UNREACHABLE };
            if v6 {
                fix_v6_checksum(&mut m);
                let r = parse_icmpv6_pmtu(&m, &ROUTER6, &SERVER6);
                prop_assert!(r != Err(IcmpError::BadChecksum) && r != Err(IcmpError::NotPmtu));
            } else {
                m[1] = ICMPV4_CODE_FRAG_NEEDED;
                fix_v4_checksum(&mut m);
                let r = parse_icmpv4_pmtu(&m);
                prop_assert!(r != Err(IcmpError::BadChecksum) && r != Err(IcmpError::NotPmtu));
            }
        }

        #[test]
        fn round_trips(
            v6 in any::<bool>(),
            src_port in any::<u16>(),
            dst_port in any::<u16>(),
            seq in any::<u32>(),
            mtu in 1u32..=65535,
            payload in 0usize..1500,
            peer in any::<[u8; 16]>(),
        ) {
            let q = QuotedTcp {
                src: if v6 { SERVER6 } else { SERVER4 },
                dst: if v6 { peer } else { ipv4_mapped([peer[0], peer[1], peer[2], peer[3]]) },
                src_port,
                dst_port,
                seq,
            };
            let d = tcp_datagram(&q, payload);
            let m = if v6 {
                parse_icmpv6_pmtu(icmpv6_of(&v6_frame(mtu, &d)), &ROUTER6, &SERVER6)
            } else {
                parse_icmpv4_pmtu(icmpv4_of(&v4_frame(mtu, &d)))
            }
            .unwrap();
            prop_assert_eq!(m, PmtuMessage { mtu, estimated: false, quoted: q });
        }
    }
}
