//! IPv6 headers (RFC 8200 3) and the extension-header chain between the IPv6 header and the
//! upper-layer protocol (RFC 8200 4), as much of it as a TCP server needs: which protocol the
//! packet carries and where its header starts, or why the packet must not be taken as TCP.
//!
//! What is skipped and what is refused follows what Linux's receive path accepts for a local
//! TCP socket (`ipv6_rcv`, `ipv6_parse_hopopts`, `ipv6_destopt_rcv`, `ipv6_rthdr_rcv` and
//! `ip6_parse_tlv` in net/ipv6), so that a packet synack serves is one the kernel would have
//! delivered, and a packet it refuses is one the kernel would have dropped or treated as
//! something other than TCP. See [`Ipv6Packet::upper_layer`].


use super::ipv4::PROTO_TCP;

/// Length of the fixed IPv6 header (RFC 8200 3).
pub const HEADER_LEN: usize = 40;
/// Next Header value of ICMPv6 (RFC 4443 1).
pub const PROTO_ICMPV6: u8 = 58;
/// Next Header value of the Hop-by-Hop Options header (RFC 8200 4.3).
pub const NEXT_HOP_BY_HOP: u8 = 0;
/// Next Header value of the Routing header (RFC 8200 4.4).
pub const NEXT_ROUTING: u8 = 43;
/// Next Header value of the Fragment header (RFC 8200 4.5).
pub const NEXT_FRAGMENT: u8 = 44;
/// Next Header value of the Authentication Header (RFC 4302 2.1).
pub const NEXT_AUTH: u8 = 51;
/// "No Next Header" (RFC 8200 4.7).
#[cfg(any(test, feature = "internals"))]
pub const NEXT_NONE: u8 = 59;
/// Next Header value of the Destination Options header (RFC 8200 4.6).
pub const NEXT_DEST_OPTS: u8 = 60;
/// The most extension headers [`Ipv6Packet::upper_layer`] walks before giving up
/// ([`Ipv6Error::TooManyExtensionHeaders`]). RFC 8200 4.1 wants each kind at most once
/// (Destination Options twice), at most 6 headers with the Authentication Header; 8 leaves
/// some slack while keeping the walk bounded, as the XDP program's must be.
pub const MAX_EXTENSION_HEADERS: usize = 8;
/// The most options other than padding one Hop-by-Hop or Destination Options header may hold:
/// Linux's default `net.ipv6.max_hbh_opts_number` and `max_dst_opts_number`.
pub const MAX_OPTIONS: usize = 8;
/// The IPv6 minimum link MTU (RFC 8200 5).
pub const MIN_MTU: u32 = 1280;
/// The hop limit Linux uses by default (`net.ipv6.conf.*.hop_limit`).
#[cfg(any(test, feature = "internals"))]
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// Pad1 option type (RFC 8200 4.2).
const OPT_PAD1: u8 = 0;
/// PadN option type (RFC 8200 4.2).
const OPT_PADN: u8 = 1;
/// Router Alert option type (RFC 2711 2.1).
const OPT_ROUTER_ALERT: u8 = 5;
/// Routing Type of the RPL Source Route Header (RFC 6554 3).
const ROUTING_TYPE_RPL: u8 = 3;
/// Routing Type of the Segment Routing Header (RFC 8754 2).
const ROUTING_TYPE_SEGMENT: u8 = 4;

/// Why an IPv6 packet was refused. [`Ipv6Packet::new_checked`] returns the first three kinds,
/// [`Ipv6Packet::upper_layer`] the others. Counters can be arrays indexed by `kind as usize`
/// (see [`Ipv6Error::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Ipv6Error {
    /// Fewer than 40 bytes: no whole IPv6 header.
    TooShort,
    /// The version field is not 6.
    BadVersion,
    /// Payload Length runs past the end of the buffer.
    BadPayloadLength,
    /// An extension header runs past the end of the payload.
    TruncatedExtensionHeader,
    /// A Hop-by-Hop Options header anywhere but right after the IPv6 header (RFC 8200 4.1;
    /// Linux answers a Parameter Problem and drops).
    HopByHopNotFirst,
    /// The options of a Hop-by-Hop or Destination Options header are malformed, or hold an
    /// option the receiver must discard the packet for (RFC 8200 4.2); see
    /// [`Ipv6Packet::upper_layer`].
    BadOption,
    /// More than [`MAX_EXTENSION_HEADERS`] extension headers in a row.
    TooManyExtensionHeaders,
    /// A Fragment header of a real fragment (RFC 8200 4.5: offset or M not zero): synack
    /// does not reassemble.
    Fragment,
    /// A Routing header with Segments Left not zero (RFC 8200 4.4): the packet is not for this
    /// node yet (a host would forward it or drop it; it is never delivered here).
    RoutingSegmentsLeft,
    /// A Routing header of type 3 (RPL, RFC 6554) or 4 (Segment Routing, RFC 8754), which
    /// Linux drops unless told otherwise (`rpl_seg_enabled`, `seg6_enabled`).
    RoutingType,
}

impl Ipv6Error {
    /// Every kind, in discriminant order: `ALL[e as usize] == e`.
    #[cfg(any(test, feature = "internals"))]
    pub const ALL: [Ipv6Error; 10] = [
        Ipv6Error::TooShort,
        Ipv6Error::BadVersion,
        Ipv6Error::BadPayloadLength,
        Ipv6Error::TruncatedExtensionHeader,
        Ipv6Error::HopByHopNotFirst,
        Ipv6Error::BadOption,
        Ipv6Error::TooManyExtensionHeaders,
        Ipv6Error::Fragment,
        Ipv6Error::RoutingSegmentsLeft,
        Ipv6Error::RoutingType,
    ];
    /// Number of kinds.
    #[cfg(any(test, feature = "internals"))]
    pub const COUNT: usize = Self::ALL.len();

    /// A snake_case name for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Ipv6Error::TooShort => "too_short",
            Ipv6Error::BadVersion => "bad_version",
            Ipv6Error::BadPayloadLength => "bad_payload_length",
            Ipv6Error::TruncatedExtensionHeader => "truncated_extension_header",
            Ipv6Error::HopByHopNotFirst => "hop_by_hop_not_first",
            Ipv6Error::BadOption => "bad_option",
            Ipv6Error::TooManyExtensionHeaders => "too_many_extension_headers",
            Ipv6Error::Fragment => "fragment",
            Ipv6Error::RoutingSegmentsLeft => "routing_segments_left",
            Ipv6Error::RoutingType => "routing_type",
        }
    }
}

impl std::fmt::Display for Ipv6Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Ipv6Error {}

/// The upper-layer protocol of a packet and its header and data, after the extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpperLayer<'a> {
    /// The protocol number: [`PROTO_TCP`], [`PROTO_ICMPV6`], [`NEXT_NONE`], or anything else
    /// the caller does not handle.
    pub protocol: u8,
    /// The upper-layer header and data. Its length is the "Upper-Layer Packet Length" of the
    /// pseudo-header (RFC 8200 8.1).
    pub payload: &'a [u8],
}

/// A read-only view of an IPv6 packet whose lengths have been checked: the fixed header lies
/// within the buffer and the payload is cut at the Payload Length, so padding that follows the
/// packet in an Ethernet frame is not part of it. Extension headers are part of the payload
/// until [`Ipv6Packet::upper_layer`] walks them.
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Packet<'a> {
    /// Version, traffic class, flow label, payload length, next header, hop limit.
    fixed: &'a [u8; 8],
    src: &'a [u8; 16],
    dst: &'a [u8; 16],
    payload: &'a [u8],
}

impl<'a> Ipv6Packet<'a> {
    /// Checks version and Payload Length against `buf` (the Ethernet payload).
    ///
    /// Refuses: fewer than 40 bytes: `TooShort`; version not 6: `BadVersion`; Payload Length
    /// past the end of `buf`: `BadPayloadLength`. Bytes beyond Payload Length are ignored
    /// (Ethernet padding). A Payload Length of zero gives an empty payload: jumbograms
    /// (RFC 2675) are not supported, and such a packet carries no TCP segment.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Ipv6Error> {
        let Some((fixed, rest)) = buf.split_first_chunk::<8>() else {
            return Err(Ipv6Error::TooShort);
        };
        let Some((src, rest)) = rest.split_first_chunk::<16>() else {
            return Err(Ipv6Error::TooShort);
        };
        let Some((dst, rest)) = rest.split_first_chunk::<16>() else {
            return Err(Ipv6Error::TooShort);
        };
        // RFC 8200 3: Version is 6.
        if fixed[0] >> 4 != 6 {
            return Err(Ipv6Error::BadVersion);
        }
        // RFC 8200 3: Payload Length counts everything after the fixed header, extension
        // headers included.
        let payload_len = u16::from_be_bytes([fixed[4], fixed[5]]) as usize;
        let Some(payload) = rest.get(..payload_len) else {
            return Err(Ipv6Error::BadPayloadLength);
        };
        Ok(Ipv6Packet {
            fixed,
            src,
            dst,
            payload,
        })
    }

    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn version(&self) -> u8 {
        self.fixed[0] >> 4
    }

    /// Traffic Class (DSCP and ECN).
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.fixed[0] << 4) | (self.fixed[1] >> 4)
    }

    /// The 20-bit Flow Label (RFC 6437).
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn flow_label(&self) -> u32 {
        u32::from_be_bytes([0, self.fixed[1] & 0x0f, self.fixed[2], self.fixed[3]])
    }

    /// Payload Length: the bytes after the fixed header, extension headers included.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn payload_len(&self) -> u16 {
        u16::from_be_bytes([self.fixed[4], self.fixed[5]])
    }

    /// The Next Header field of the fixed header: the first extension header or the
    /// upper-layer protocol.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.fixed[6]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.fixed[7]
    }

    /// Source address, network order.
    #[inline]
    pub fn src(&self) -> &'a [u8; 16] {
        self.src
    }

    /// Destination address, network order.
    #[inline]
    pub fn dst(&self) -> &'a [u8; 16] {
        self.dst
    }

    /// Everything after the fixed header, cut at Payload Length: extension headers, then the
    /// upper-layer header and data.
    #[cfg(any(test, feature = "internals"))]
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The upper-layer protocol and its bytes, after a bounded walk over at most
    /// [`MAX_EXTENSION_HEADERS`] extension headers (RFC 8200 4). A packet whose Next Header is
    /// TCP (the common case) returns at the first comparison.
    ///
    /// - Hop-by-Hop Options (0) is skipped only as the first header (RFC 8200 4.1; Linux
    ///   processes it in `ipv6_rcv` only there, and anywhere else it is an unknown protocol):
    ///   elsewhere `HopByHopNotFirst`.
    /// - Destination Options (60) is skipped wherever it is.
    /// - The options of both are checked as Linux's `ip6_parse_tlv` does (RFC 8200 4.2): each
    ///   option within the header (else `BadOption`); runs of Pad1/PadN at most 7 bytes and
    ///   PadN's bytes zero (RFC 4942 2.1.9.5); at most [`MAX_OPTIONS`] other options; an
    ///   option whose type's two high-order bits are not `00` ("discard the packet" when the
    ///   type is not recognized) is `BadOption`, and so is a Hop-by-Hop Router Alert whose
    ///   length is not 2 (RFC 2711 2.1). Other types with `00` (Router Alert, IOAM, Tunnel
    ///   Encapsulation Limit, unknown ones) are skipped. That refuses the Jumbo Payload and
    ///   Home Address options, which Linux may know but synack does not support.
    /// - Routing (43) with Segments Left 0 is skipped (RFC 8200 4.4), except types 3 (RPL)
    ///   and 4 (Segment Routing), which Linux drops by default: `RoutingType`. Segments Left
    ///   not 0: `RoutingSegmentsLeft`.
    /// - Fragment (44): an atomic fragment (offset 0, M 0) is skipped, as RFC 6946 4 asks
    ///   and Linux does; a real fragment is `Fragment` (no reassembly).
    /// - Anything else ends the walk and is returned as the protocol: TCP (6), ICMPv6 (58),
    ///   No Next Header (59) with whatever bytes follow, the Authentication Header (51: IPsec
    ///   is not supported) and unknown protocols, for the caller to refuse.
    ///
    /// An extension header that runs past the payload is `TruncatedExtensionHeader`; more
    /// than [`MAX_EXTENSION_HEADERS`] of them is `TooManyExtensionHeaders` (Linux has no such
    /// bound and would take 9 Destination Options headers; RFC 8200 4.1 allows at most two).
    ///
    /// Tested against Linux 6.18 with its default sysctls, case by case (the `linux_*` unit
    /// test, tests/data/linux_ipv6_exthdrs.sh). Addresses are not judged here.
    #[inline]
    pub fn upper_layer(&self) -> Result<UpperLayer<'a>, Ipv6Error> {
        let next = self.next_header();
        if next == PROTO_TCP {
            return Ok(UpperLayer {
                protocol: next,
                payload: self.payload,
            });
        }
        walk_extension_headers::<false>(next, self.payload)
    }
}

/// The extension-header walk of [`Ipv6Packet::upper_layer`] from Next Header value `next` over
/// `bytes` (what follows the header that named it).
///
/// With `QUOTED`, the walk over a packet quoted in an ICMPv6 error (one this host sent, cut
/// short), done as Linux's `ipv6_skip_exthdr` does: Hop-by-Hop, Destination Options, Routing
/// (whatever Segments Left says) and Authentication headers are skipped wherever they are and
/// their options are not read; a Fragment header with offset zero is skipped (the first
/// fragment holds the transport header) and one with a non-zero offset ends the walk with
/// protocol [`NEXT_FRAGMENT`], as no transport header follows it.
#[inline]
pub(super) fn walk_extension_headers<const QUOTED: bool>(
    first: u8,
    bytes: &[u8],
) -> Result<UpperLayer<'_>, Ipv6Error> {
    let mut next = first;
    let mut rest = bytes;
    let mut walked = 0;
    loop {
        let len = match next {
            NEXT_HOP_BY_HOP | NEXT_DEST_OPTS | NEXT_ROUTING => {
                // RFC 8200 4.3, 4.4, 4.6: Hdr Ext Len counts 8-octet units after the first 8.
                let Some(&[_, units]) = rest.first_chunk::<2>() else {
                    return Err(Ipv6Error::TruncatedExtensionHeader);
                };
                (units as usize + 1) * 8
            }
            NEXT_AUTH if QUOTED => {
                // RFC 4302 2.2: Payload Len counts 4-octet units, minus 2.
                let Some(&[_, units]) = rest.first_chunk::<2>() else {
                    return Err(Ipv6Error::TruncatedExtensionHeader);
                };
                (units as usize + 2) * 4
            }
            NEXT_FRAGMENT => {
                // RFC 8200 4.5: the offset is the high 13 bits of bytes 2..4, M the lowest.
                let Some(&[_, _, o0, o1]) = rest.first_chunk::<4>() else {
                    return Err(Ipv6Error::TruncatedExtensionHeader);
                };
                let offset_and_m = u16::from_be_bytes([o0, o1]) & !6;
                if QUOTED {
                    if offset_and_m & !1 != 0 {
                        return Ok(UpperLayer {
                            protocol: next,
                            payload: rest,
                        });
                    }
                } else if offset_and_m != 0 {
                    return Err(Ipv6Error::Fragment);
                }
                // An atomic fragment (offset 0, M 0) is a whole packet (RFC 6946 4), or the
                // quoted first fragment holds the transport header.
                8
            }
            _ => {
                return Ok(UpperLayer {
                    protocol: next,
                    payload: rest,
                });
            }
        };
        if walked == MAX_EXTENSION_HEADERS {
            return Err(Ipv6Error::TooManyExtensionHeaders);
        }
        let Some((header, after)) = rest.split_at_checked(len) else {
            return Err(Ipv6Error::TruncatedExtensionHeader);
        };
        if !QUOTED {
            match (next, header) {
                (NEXT_HOP_BY_HOP, _) if walked != 0 => return Err(Ipv6Error::HopByHopNotFirst),
                (NEXT_HOP_BY_HOP | NEXT_DEST_OPTS, [_, _, options @ ..]) => {
                    check_options(options, next == NEXT_HOP_BY_HOP)?
                }
                (NEXT_ROUTING, [_, _, routing_type, segments_left, ..]) => {
                    if *segments_left != 0 {
                        return Err(Ipv6Error::RoutingSegmentsLeft);
                    }
                    // Linux drops RPL (RFC 6554) and Segment Routing (RFC 8754) headers unless
                    // `rpl_seg_enabled` / `seg6_enabled` is set, which it is not by default.
                    if matches!(*routing_type, ROUTING_TYPE_RPL | ROUTING_TYPE_SEGMENT) {
                        return Err(Ipv6Error::RoutingType);
                    }
                }
                _ => {}
            }
        }
        // Every extension header starts with its Next Header byte.
        let Some(&nh) = header.first() else {
            return Err(Ipv6Error::TruncatedExtensionHeader);
        };
        next = nh;
        rest = after;
        walked += 1;
    }
}

/// The checks Linux's `ip6_parse_tlv` makes on the options area of a Hop-by-Hop or Destination
/// Options header (RFC 8200 4.2); see [`Ipv6Packet::upper_layer`].
fn check_options(mut options: &[u8], hop_by_hop: bool) -> Result<(), Ipv6Error> {
    let mut padding = 0usize;
    let mut count = 0usize;
    while let Some((&kind, rest)) = options.split_first() {
        if kind == OPT_PAD1 {
            padding += 1;
            if padding > 7 {
                return Err(Ipv6Error::BadOption);
            }
            options = rest;
            continue;
        }
        let Some((&len, rest)) = rest.split_first() else {
            return Err(Ipv6Error::BadOption);
        };
        let Some((data, rest)) = rest.split_at_checked(len as usize) else {
            return Err(Ipv6Error::BadOption);
        };
        if kind == OPT_PADN {
            // RFC 4942 2.1.9.5: padding only aligns to 8 octets, and should be zeros.
            padding += 2 + len as usize;
            if padding > 7 || data.iter().any(|&b| b != 0) {
                return Err(Ipv6Error::BadOption);
            }
        } else {
            padding = 0;
            count += 1;
            // RFC 8200 4.2: the two high-order bits say what to do with an option the node does
            // not recognize; anything but 00 ("skip over this option") discards the packet.
            if count > MAX_OPTIONS || kind >> 6 != 0 {
                return Err(Ipv6Error::BadOption);
            }
            // RFC 2711 2.1: Router Alert's length is 2 (Linux's `ipv6_hop_ra` drops others).
            if hop_by_hop && kind == OPT_ROUTER_ALERT && len != 2 {
                return Err(Ipv6Error::BadOption);
            }
        }
        options = rest;
    }
    Ok(())
}

/// Writes the 40-byte IPv6 header in place (RFC 8200 3): version 6, traffic class 0 (DSCP 0,
/// not ECN-capable), the low 20 bits of `flow_label` (RFC 6437: 0 means no label),
/// `payload_len` bytes after the header. Addresses in network order. No extension headers:
/// `next_header` is the upper-layer protocol.
#[inline]
pub fn write_header(
    buf: &mut [u8; HEADER_LEN],
    src: &[u8; 16],
    dst: &[u8; 16],
    next_header: u8,
    hop_limit: u8,
    payload_len: u16,
    flow_label: u32,
) {
    let first = (6u32 << 28) | (flow_label & 0x000f_ffff);
    let [v0, v1, v2, v3] = first.to_be_bytes();
    let [l0, l1] = payload_len.to_be_bytes();
    buf[..8].copy_from_slice(&[v0, v1, v2, v3, l0, l1, next_header, hop_limit]);
    buf[8..24].copy_from_slice(src);
    buf[24..].copy_from_slice(dst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SERVER: [u8; 16] = [
        0xfd, 0x00, 0x01, 0x98, 0x00, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    const CLIENT: [u8; 16] = [
        0xfd, 0x00, 0x01, 0x98, 0x00, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];

    /// A packet: header with `first` as Next Header, then `exts` and `upper` as its payload.
    fn packet(first: u8, exts: &[u8], upper: &[u8]) -> Vec<u8> {
        let mut h = [0u8; HEADER_LEN];
        let len = (exts.len() + upper.len()) as u16;
        write_header(&mut h, &CLIENT, &SERVER, first, 64, len, 0);
        let mut p = h.to_vec();
        p.extend_from_slice(exts);
        p.extend_from_slice(upper);
        p
    }

    /// An options header (Hop-by-Hop or Destination Options) holding `options`, padded with
    /// PadN/Pad1 to a multiple of 8.
    fn options_header(next: u8, options: &[u8]) -> Vec<u8> {
        let mut h = vec![next, 0];
        h.extend_from_slice(options);
        let pad = (8 - h.len() % 8) % 8;
        match pad {
            0 => {}
            1 => h.push(OPT_PAD1),
            n => {
                h.push(OPT_PADN);
                h.push((n - 2) as u8);
                h.extend(std::iter::repeat_n(0, n - 2));
            }
        }
        h[1] = (h.len() / 8 - 1) as u8;
        h
    }

    fn routing_header(next: u8, routing_type: u8, segments_left: u8) -> Vec<u8> {
        // Type 0 layout: 4 reserved bytes then one address (Hdr Ext Len 2).
        let mut h = vec![next, 2, routing_type, segments_left, 0, 0, 0, 0];
        h.extend_from_slice(&SERVER);
        h
    }

    fn fragment_header(next: u8, offset: u16, more: bool) -> Vec<u8> {
        let [o0, o1] = ((offset << 3) | more as u16).to_be_bytes();
        vec![next, 0, o0, o1, 0, 0, 0x12, 0x34]
    }

    const TCP_BYTES: [u8; 20] = [
        0x1f, 0x90, 0xe5, 0x32, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ];

    #[test]
    fn header_round_trip() {
        let mut h = [0u8; HEADER_LEN];
        write_header(&mut h, &CLIENT, &SERVER, PROTO_TCP, 63, 20, 0xabcde);
        let mut buf = h.to_vec();
        buf.extend_from_slice(&TCP_BYTES);
        // Ethernet padding after the packet is not part of it.
        buf.extend_from_slice(&[0xee; 6]);
        let p = Ipv6Packet::new_checked(&buf).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0xabcde);
        assert_eq!(p.payload_len(), 20);
        assert_eq!(p.next_header(), PROTO_TCP);
        assert_eq!(p.hop_limit(), 63);
        assert_eq!(p.src(), &CLIENT);
        assert_eq!(p.dst(), &SERVER);
        assert_eq!(p.payload(), &TCP_BYTES);
        let u = p.upper_layer().unwrap();
        assert_eq!(u.protocol, PROTO_TCP);
        assert_eq!(u.payload, &TCP_BYTES);
        // Only the low 20 bits of the flow label are written.
        write_header(&mut h, &CLIENT, &SERVER, PROTO_TCP, 63, 20, 0xfff0_0001);
        assert_eq!(&h[..4], &[0x60, 0x00, 0x00, 0x01]);
    }

    #[test]
    fn written_header_matches_etherparse() {
        let mut h = [0u8; HEADER_LEN];
        write_header(&mut h, &CLIENT, &SERVER, PROTO_ICMPV6, 255, 1234, 0x12345);
        let theirs = etherparse::Ipv6Header {
            traffic_class: 0,
            flow_label: etherparse::Ipv6FlowLabel::try_new(0x12345).unwrap(),
            payload_length: 1234,
            next_header: etherparse::IpNumber(PROTO_ICMPV6),
            hop_limit: 255,
            source: CLIENT,
            destination: SERVER,
        };
        assert_eq!(h, theirs.to_bytes());
    }

    #[test]
    fn fixed_header_errors() {
        let p = packet(PROTO_TCP, &[], &TCP_BYTES);
        for len in 0..HEADER_LEN {
            assert_eq!(
                Ipv6Packet::new_checked(&p[..len]).unwrap_err(),
                Ipv6Error::TooShort,
                "len {len}"
            );
        }
        for len in HEADER_LEN..p.len() {
            assert_eq!(
                Ipv6Packet::new_checked(&p[..len]).unwrap_err(),
                Ipv6Error::BadPayloadLength,
                "len {len}"
            );
        }
        for version in [0u8, 4, 5, 7, 15] {
            let mut q = p.clone();
            q[0] = (version << 4) | (q[0] & 0x0f);
            assert_eq!(
                Ipv6Packet::new_checked(&q).unwrap_err(),
                Ipv6Error::BadVersion
            );
        }
        // Payload Length 0: an empty payload (no jumbograms), whatever follows.
        let mut q = p.clone();
        q[4] = 0;
        q[5] = 0;
        let v = Ipv6Packet::new_checked(&q).unwrap();
        assert!(v.payload().is_empty());
    }

    #[test]
    fn extension_headers_skipped() {
        let hbh = options_header(NEXT_DEST_OPTS, &[]);
        // Router Alert (type 5, action bits 00) is skipped.
        let dst = options_header(NEXT_ROUTING, &[5, 2, 0, 0]);
        let rt = routing_header(PROTO_TCP, 0, 0);
        let exts: Vec<u8> = [hbh, dst, rt].concat();
        let p = packet(NEXT_HOP_BY_HOP, &exts, &TCP_BYTES);
        let v = Ipv6Packet::new_checked(&p).unwrap();
        let u = v.upper_layer().unwrap();
        assert_eq!(u.protocol, PROTO_TCP);
        assert_eq!(u.payload, &TCP_BYTES);

        // Destination options twice (before and after routing, RFC 8200 4.1), an atomic
        // fragment, then ICMPv6.
        let exts: Vec<u8> = [
            options_header(NEXT_ROUTING, &[]),
            routing_header(NEXT_FRAGMENT, 0, 0),
            fragment_header(NEXT_DEST_OPTS, 0, false),
            options_header(PROTO_ICMPV6, &[0x31, 0]),
        ]
        .concat();
        let p = packet(NEXT_DEST_OPTS, &exts, b"icmp");
        let u = Ipv6Packet::new_checked(&p).unwrap().upper_layer().unwrap();
        assert_eq!((u.protocol, u.payload), (PROTO_ICMPV6, &b"icmp"[..]));

        // No Next Header, AH and unknown protocols end the walk.
        for proto in [NEXT_NONE, NEXT_AUTH, 17, 253] {
            let p = packet(NEXT_DEST_OPTS, &options_header(proto, &[]), b"xyz");
            let u = Ipv6Packet::new_checked(&p).unwrap().upper_layer().unwrap();
            assert_eq!((u.protocol, u.payload), (proto, &b"xyz"[..]));
        }
    }

    #[test]
    fn extension_header_errors() {
        let cases: Vec<(&str, u8, Vec<u8>, Ipv6Error)> = vec![
            (
                "fragment",
                NEXT_FRAGMENT,
                fragment_header(PROTO_TCP, 0, true),
                Ipv6Error::Fragment,
            ),
            (
                "later fragment",
                NEXT_DEST_OPTS,
                [
                    options_header(NEXT_FRAGMENT, &[]),
                    fragment_header(PROTO_TCP, 185, false),
                ]
                .concat(),
                Ipv6Error::Fragment,
            ),
            (
                "routing type 4",
                NEXT_ROUTING,
                routing_header(PROTO_TCP, 4, 0),
                Ipv6Error::RoutingType,
            ),
            (
                "router alert length 4",
                NEXT_HOP_BY_HOP,
                options_header(PROTO_TCP, &[5, 4, 0, 0, 0, 0]),
                Ipv6Error::BadOption,
            ),
            (
                "segments left",
                NEXT_ROUTING,
                routing_header(PROTO_TCP, 0, 1),
                Ipv6Error::RoutingSegmentsLeft,
            ),
            (
                "hbh second",
                NEXT_DEST_OPTS,
                [
                    options_header(NEXT_HOP_BY_HOP, &[]),
                    options_header(PROTO_TCP, &[]),
                ]
                .concat(),
                Ipv6Error::HopByHopNotFirst,
            ),
            (
                "unknown option, discard",
                NEXT_DEST_OPTS,
                options_header(PROTO_TCP, &[0x7e, 0]),
                Ipv6Error::BadOption,
            ),
            (
                "jumbo payload",
                NEXT_HOP_BY_HOP,
                options_header(PROTO_TCP, &[0xc2, 4, 0, 1, 0, 0]),
                Ipv6Error::BadOption,
            ),
            (
                "option past the header",
                NEXT_DEST_OPTS,
                vec![PROTO_TCP, 0, 5, 5, 0, 0, 0, 0],
                Ipv6Error::BadOption,
            ),
            (
                "option length byte missing",
                NEXT_DEST_OPTS,
                vec![PROTO_TCP, 0, 1, 3, 0, 0, 0, 0x05],
                Ipv6Error::BadOption,
            ),
            (
                "padding over 7 bytes",
                NEXT_DEST_OPTS,
                vec![PROTO_TCP, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                Ipv6Error::BadOption,
            ),
            (
                "eight Pad1",
                NEXT_DEST_OPTS,
                [
                    vec![PROTO_TCP, 1, 5, 0],
                    vec![OPT_PAD1; 8],
                    vec![1, 2, 0, 0],
                ]
                .concat(),
                Ipv6Error::BadOption,
            ),
            (
                "non-zero PadN",
                NEXT_DEST_OPTS,
                vec![PROTO_TCP, 0, 1, 4, 0, 0, 1, 0],
                Ipv6Error::BadOption,
            ),
            (
                "nine options",
                NEXT_DEST_OPTS,
                options_header(PROTO_TCP, &[5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0]),
                Ipv6Error::BadOption,
            ),
            (
                "too many",
                NEXT_DEST_OPTS,
                (0..MAX_EXTENSION_HEADERS)
                    .flat_map(|_| options_header(NEXT_DEST_OPTS, &[]))
                    .collect(),
                Ipv6Error::TooManyExtensionHeaders,
            ),
            (
                "truncated",
                NEXT_DEST_OPTS,
                vec![PROTO_TCP, 10, 1, 4, 0, 0, 0, 0],
                Ipv6Error::TruncatedExtensionHeader,
            ),
            (
                "no length byte",
                NEXT_ROUTING,
                vec![PROTO_TCP],
                Ipv6Error::TruncatedExtensionHeader,
            ),
        ];
        for (name, first, exts, want) in cases {
            let p = packet(first, &exts, &TCP_BYTES);
            let v = Ipv6Packet::new_checked(&p).unwrap();
            assert_eq!(v.upper_layer().unwrap_err(), want, "{name}");
        }
        // Eight options and seven bytes of padding are fine.
        let p = packet(
            NEXT_DEST_OPTS,
            &options_header(PROTO_TCP, &[5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0, 5, 0]),
            &TCP_BYTES,
        );
        let u = Ipv6Packet::new_checked(&p).unwrap().upper_layer().unwrap();
        assert_eq!(u.payload, &TCP_BYTES);
        let p = packet(
            NEXT_DEST_OPTS,
            &[PROTO_TCP, 1, 1, 5, 0, 0, 0, 0, 0, 5, 0, 1, 3, 0, 0, 0],
            &TCP_BYTES,
        );
        assert!(Ipv6Packet::new_checked(&p).unwrap().upper_layer().is_ok());
        // Exactly MAX_EXTENSION_HEADERS headers are walked.
        let exts: Vec<u8> = (0..MAX_EXTENSION_HEADERS)
            .flat_map(|i| {
                let last = i + 1 == MAX_EXTENSION_HEADERS;
                options_header(if last { PROTO_TCP } else { NEXT_DEST_OPTS }, &[])
            })
            .collect();
        let p = packet(NEXT_DEST_OPTS, &exts, &TCP_BYTES);
        assert!(Ipv6Packet::new_checked(&p).unwrap().upper_layer().is_ok());
    }

    /// SYNs with these extension headers were sent to Linux 6.18 (default sysctls, no
    /// listener: a delivered SYN is answered with a RST) by tests/data/linux_ipv6_exthdrs.sh;
    /// `true` where Linux answered. `upper_layer` must find TCP exactly there, but for the
    /// bound on the number of headers.
    #[test]
    fn linux_6_18_takes_the_same_packets() {
        const T: u8 = PROTO_TCP;
        const H: u8 = NEXT_HOP_BY_HOP;
        const D: u8 = NEXT_DEST_OPTS;
        const R: u8 = NEXT_ROUTING;
        const F: u8 = NEXT_FRAGMENT;
        let dst_chain = |n: usize| -> Vec<u8> {
            (0..n)
                .flat_map(|i| options_header(if i + 1 < n { D } else { T }, &[]))
                .collect()
        };
        let cases: Vec<(&str, u8, Vec<u8>, bool)> = vec![
            ("plain", T, vec![], true),
            ("hbh", H, options_header(T, &[]), true),
            ("dst", D, options_header(T, &[]), true),
            (
                "hbh dst rt0",
                H,
                [
                    options_header(D, &[]),
                    options_header(R, &[5, 2, 0, 0]),
                    routing_header(T, 0, 0),
                ]
                .concat(),
                true,
            ),
            (
                "dst rt4 dst",
                D,
                [
                    options_header(R, &[]),
                    routing_header(D, 4, 0),
                    options_header(T, &[0x31, 0]),
                ]
                .concat(),
                false,
            ),
            (
                "dst hbh",
                D,
                [options_header(H, &[]), options_header(T, &[])].concat(),
                false,
            ),
            ("atomic fragment", F, fragment_header(T, 0, false), true),
            ("first fragment", F, fragment_header(T, 0, true), false),
            ("rt0 sl1", R, routing_header(T, 0, 1), false),
            ("rt0 sl0", R, routing_header(T, 0, 0), true),
            ("rt2 sl0", R, routing_header(T, 2, 0), true),
            ("rt3 sl0", R, routing_header(T, 3, 0), false),
            ("rt4 sl0", R, routing_header(T, 4, 0), false),
            ("rt253 sl0", R, routing_header(T, 253, 0), true),
            ("dst unknown 01", D, options_header(T, &[0x7e, 0]), false),
            ("dst unknown 10", D, options_header(T, &[0xbe, 0]), false),
            ("dst unknown 00", D, options_header(T, &[0x3e, 3, 1, 2, 3]), true),
            ("dst ra", D, options_header(T, &[5, 2, 0, 0]), true),
            ("hbh ra len2", H, options_header(T, &[5, 2, 0, 0]), true),
            ("hbh ra len4", H, options_header(T, &[5, 4, 0, 0, 0, 0]), false),
            ("hbh jumbo", H, options_header(T, &[0xc2, 4, 0, 1, 0, 0]), false),
            ("8 options", D, options_header(T, &[0x3e, 0].repeat(8)), true),
            ("9 options", D, options_header(T, &[0x3e, 0].repeat(9)), false),
            (
                "pad 7",
                D,
                vec![T, 1, 1, 5, 0, 0, 0, 0, 0, 0x3e, 0, 1, 3, 0, 0, 0],
                true,
            ),
            (
                "pad1 x8",
                D,
                [vec![T, 1, 0x3e, 0], vec![0; 8], vec![1, 2, 0, 0]].concat(),
                false,
            ),
            ("padn 12", D, [vec![T, 1, 1, 12], vec![0; 12]].concat(), false),
            ("padn nonzero", D, vec![T, 0, 1, 4, 0, 0, 1, 0], false),
            ("option past end", D, vec![T, 0, 0x3e, 5, 0, 0, 0, 0], false),
            ("8 dst", D, dst_chain(8), true),
            (
                "ah",
                NEXT_AUTH,
                vec![T, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2],
                false,
            ),
        ];
        for (name, first, exts, linux) in cases {
            let p = packet(first, &exts, &TCP_BYTES);
            let ours = Ipv6Packet::new_checked(&p).unwrap().upper_layer();
            let tcp = matches!(ours, Ok(u) if u.protocol == PROTO_TCP && u.payload == TCP_BYTES);
            assert_eq!(tcp, linux, "{name}: {ours:?}");
        }
        // The one difference: Linux walks any number of headers; this walk stops at 8.
        let p = packet(D, &dst_chain(9), &TCP_BYTES);
        assert_eq!(
            Ipv6Packet::new_checked(&p).unwrap().upper_layer(),
            Err(Ipv6Error::TooManyExtensionHeaders)
        );
    }

    #[test]
    fn error_kinds_are_named() {
        for (i, e) in Ipv6Error::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
            assert!(!e.as_str().is_empty());
            assert_eq!(e.to_string(), e.as_str());
        }
        let mut names: Vec<_> = Ipv6Error::ALL.iter().map(|e| e.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), Ipv6Error::COUNT);
    }

    #[test]
    fn quoted_walk() {
        // Quoted packets: HBH anywhere, routing with segments left, AH and a first fragment
        // are skipped; a later fragment has no transport header.
        let ah = vec![PROTO_TCP, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        let exts: Vec<u8> = [
            options_header(NEXT_HOP_BY_HOP, &[]),
            options_header(NEXT_ROUTING, &[0x7e, 0]),
            routing_header(NEXT_FRAGMENT, 0, 3),
            fragment_header(NEXT_AUTH, 0, true),
            ah,
        ]
        .concat();
        let mut bytes = exts.clone();
        bytes.extend_from_slice(&TCP_BYTES[..8]);
        let u = walk_extension_headers::<true>(NEXT_DEST_OPTS, &bytes).unwrap();
        assert_eq!((u.protocol, u.payload), (PROTO_TCP, &TCP_BYTES[..8]));
        let later = fragment_header(PROTO_TCP, 185, false);
        let u = walk_extension_headers::<true>(NEXT_FRAGMENT, &later).unwrap();
        assert_eq!(u.protocol, NEXT_FRAGMENT);
        for len in 0..exts.len() {
            let r = walk_extension_headers::<true>(NEXT_DEST_OPTS, &exts[..len]);
            assert!(
                matches!(r, Err(Ipv6Error::TruncatedExtensionHeader)),
                "len {len}: {r:?}"
            );
        }
    }

    #[test]
    fn truncation_at_every_length() {
        let exts: Vec<u8> = [
            options_header(NEXT_DEST_OPTS, &[5, 2, 0, 0]),
            options_header(NEXT_ROUTING, &[]),
            routing_header(PROTO_TCP, 0, 0),
        ]
        .concat();
        let p = packet(NEXT_HOP_BY_HOP, &exts, &TCP_BYTES);
        for len in 0..p.len() {
            let mut q = p[..len].to_vec();
            // As received (Payload Length too long) and with Payload Length fixed to match.
            assert!(Ipv6Packet::new_checked(&q).is_err(), "len {len}");
            if len >= HEADER_LEN {
                let [a, b] = ((len - HEADER_LEN) as u16).to_be_bytes();
                q[4] = a;
                q[5] = b;
                let v = Ipv6Packet::new_checked(&q).unwrap();
                match v.upper_layer() {
                    Ok(u) => assert_eq!(u.payload, &q[HEADER_LEN + exts.len()..]),
                    Err(e) => assert_eq!(e, Ipv6Error::TruncatedExtensionHeader, "len {len}"),
                }
            }
        }
    }

    /// An extension header chain for the property tests: any mix of Destination Options
    /// (with random skippable options) and Routing headers with Segments Left 0, after an
    /// optional Hop-by-Hop header.
    fn chain_strategy() -> impl Strategy<Value = (bool, Vec<(bool, Vec<u8>)>)> {
        let opt = prop_oneof![
            Just(vec![5u8, 2, 0, 0]),
            Just(vec![0x31u8, 0]),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(|d| {
                let mut o = vec![0x3e, d.len() as u8];
                o.extend(d);
                o
            }),
        ];
        (
            any::<bool>(),
            proptest::collection::vec(
                (
                    any::<bool>(),
                    proptest::collection::vec(opt, 0..3).prop_map(|v| v.concat()),
                ),
                0..5,
            ),
        )
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
            first in any::<u8>(),
            fix_header in any::<bool>(),
        ) {
            // Half the cases get a version and Payload Length that pass, to reach the walk.
            if fix_header && bytes.len() >= HEADER_LEN {
                bytes[0] = 0x60 | (bytes[0] & 0x0f);
                let [a, b] = ((bytes.len() - HEADER_LEN) as u16).to_be_bytes();
                bytes[4] = a;
                bytes[5] = b;
                prop_assert!(Ipv6Packet::new_checked(&bytes).is_ok());
            }
            if let Ok(p) = Ipv6Packet::new_checked(&bytes) {
                let _ = p.upper_layer();
            }
            let _ = walk_extension_headers::<false>(first, &bytes);
            let _ = walk_extension_headers::<true>(first, &bytes);
        }

        #[test]
        fn never_panics_on_mangled_chains(
            (hbh, chain) in chain_strategy(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let (_, mut p) = build_chain(hbh, &chain);
            for (at, v) in flips {
                let i = at.index(p.len());
                p[i] = v;
            }
            if let Ok(v) = Ipv6Packet::new_checked(&p) {
                let _ = v.upper_layer();
            }
        }

        #[test]
        fn agrees_with_etherparse(
            (hbh, chain) in chain_strategy(),
            hop_limit in any::<u8>(),
            flow in 0u32..0x10_0000,
            src in any::<[u8; 16]>(),
            dst in any::<[u8; 16]>(),
        ) {
            let (_, mut p) = build_chain(hbh, &chain);
            p[7] = hop_limit;
            p[1] = (p[1] & 0xf0) | (flow >> 16) as u8;
            p[2] = (flow >> 8) as u8;
            p[3] = flow as u8;
            p[8..24].copy_from_slice(&src);
            p[24..40].copy_from_slice(&dst);
            let ours = Ipv6Packet::new_checked(&p).unwrap();
            let theirs = etherparse::Ipv6Slice::from_slice(&p).unwrap();
            let h = theirs.header();
            prop_assert_eq!(ours.hop_limit(), h.hop_limit());
            prop_assert_eq!(ours.flow_label(), h.flow_label().value());
            prop_assert_eq!(ours.traffic_class(), h.traffic_class());
            prop_assert_eq!(ours.payload_len(), h.payload_length());
            prop_assert_eq!(ours.next_header(), h.next_header().0);
            prop_assert_eq!(ours.src(), &h.source());
            prop_assert_eq!(ours.dst(), &h.destination());
            let u = ours.upper_layer().unwrap();
            prop_assert_eq!(u.protocol, theirs.payload().ip_number.0);
            prop_assert_eq!(u.payload, theirs.payload().payload);
            prop_assert_eq!(u.payload, &TCP_BYTES[..]);
        }
    }

    /// The packet for [`chain_strategy`]'s output, ending in TCP; and its first Next Header.
    fn build_chain(hbh: bool, chain: &[(bool, Vec<u8>)]) -> (u8, Vec<u8>) {
        let kinds: Vec<u8> = hbh
            .then_some(NEXT_HOP_BY_HOP)
            .into_iter()
            .chain(chain.iter().map(|(routing, _)| {
                if *routing {
                    NEXT_ROUTING
                } else {
                    NEXT_DEST_OPTS
                }
            }))
            .collect();
        let mut exts = Vec::new();
        let options = std::iter::once(&[][..])
            .filter(|_| hbh)
            .chain(chain.iter().map(|(_, o)| &o[..]));
        for (i, (kind, opts)) in kinds.iter().zip(options).enumerate() {
            let next = kinds.get(i + 1).copied().unwrap_or(PROTO_TCP);
            if *kind == NEXT_ROUTING {
                exts.extend(routing_header(next, 0, 0));
            } else {
                exts.extend(options_header(next, opts));
            }
        }
        let first = kinds.first().copied().unwrap_or(PROTO_TCP);
        (first, packet(first, &exts, &TCP_BYTES))
    }
}
