//! Wire formats: zero-copy views over received frames and in-place builders for frames to send.
//! Nothing here allocates, reads a clock or makes a syscall; every view checks lengths up front,
//! after which no accessor can panic.
//!
//! [`parse_frame`] turns a received Ethernet/IPv4/TCP frame into a [`ParsedFrame`] (or a
//! [`DropReason`]); [`build_tcp_frame`] writes the headers of a frame to send around a payload
//! already in place.

pub mod checksum;
pub mod ethernet;
pub mod ipv4;
pub mod tcp;

use crate::tcp::segment::{FourTuple, SegmentIn};
use crate::tcp::seq::SeqNumber;
use ethernet::EthernetFrame;
use ipv4::{Ipv4Error, Ipv4Packet};
use tcp::{TcpError, TcpFlags, TcpOptions, TcpSegmentView};

/// Why a received frame was dropped before reaching the TCP engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    TooShort,
    NotIpv4,
    BadIpVersion,
    BadIpHeaderLength,
    BadIpTotalLength,
    BadIpChecksum,
    Fragment,
    NotTcp,
    BadTcpHeaderLength,
    BadTcpChecksum,
    BadTcpOptions,
}

impl DropReason {
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
    pub const COUNT: usize = Self::ALL.len();

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

/// A received frame, checked and parsed. `payload` points into the frame (zero-copy).
#[derive(Clone, Copy, Debug)]
pub struct ParsedFrame<'a> {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: u32,
    pub dst_ip: u32,
    pub ttl: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

impl<'a> ParsedFrame<'a> {
    /// The engine's view: the remote end is the sender.
    #[inline]
    pub fn to_segment_in(&self) -> SegmentIn<'a> {
        SegmentIn {
            tuple: FourTuple {
                remote_ip: self.src_ip,
                remote_port: self.src_port,
                local_ip: self.dst_ip,
                local_port: self.dst_port,
            },
            seq: SeqNumber::new(self.seq),
            ack: SeqNumber::new(self.ack),
            flags: self.flags,
            window: self.window,
            options: self.options,
            payload: self.payload,
        }
    }
}

/// Checks and parses an Ethernet II / IPv4 / TCP frame: lengths, the IPv4 header checksum,
/// fragments, the TCP checksum over the pseudo-header (RFC 9293 3.1), and the options.
pub fn parse_frame(frame: &[u8]) -> Result<ParsedFrame<'_>, DropReason> {
    let eth = EthernetFrame::new_checked(frame).ok_or(DropReason::TooShort)?;
    if eth.ethertype() != ethernet::ETHERTYPE_IPV4 {
        return Err(DropReason::NotIpv4);
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|e| match e {
        Ipv4Error::TooShort => DropReason::TooShort,
        Ipv4Error::Version => DropReason::BadIpVersion,
        Ipv4Error::HeaderLength => DropReason::BadIpHeaderLength,
        Ipv4Error::TotalLength => DropReason::BadIpTotalLength,
    })?;
    if !ip.checksum_ok() {
        return Err(DropReason::BadIpChecksum);
    }
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    if ip.protocol() != ipv4::PROTO_TCP {
        return Err(DropReason::NotTcp);
    }
    let seg_bytes = ip.payload();
    let tcp = TcpSegmentView::new_checked(seg_bytes).map_err(|e| match e {
        TcpError::TooShort | TcpError::HeaderLength => DropReason::BadTcpHeaderLength,
        TcpError::Options => DropReason::BadTcpOptions,
    })?;
    let pseudo =
        checksum::pseudo_header_sum(ip.src(), ip.dst(), ipv4::PROTO_TCP, seg_bytes.len() as u16);
    if checksum::fold(checksum::sum(seg_bytes, pseudo)) != 0xffff {
        return Err(DropReason::BadTcpChecksum);
    }
    let options = tcp.options().map_err(|_| DropReason::BadTcpOptions)?;
    Ok(ParsedFrame {
        src_mac: eth.src(),
        dst_mac: eth.dst(),
        src_ip: ip.src(),
        dst_ip: ip.dst(),
        ttl: ip.ttl(),
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        seq: tcp.seq(),
        ack: tcp.ack(),
        flags: tcp.flags(),
        window: tcp.window(),
        options,
        payload: tcp.payload(),
    })
}

/// Everything about a frame to send except its payload.
#[derive(Clone, Copy, Debug)]
pub struct FrameSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: u32,
    pub dst_ip: u32,
    pub ttl: u8,
    pub ip_id: u16,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The buffer cannot hold the headers and the payload.
    TooSmall,
}

/// Ethernet + IPv4 (no options) + TCP header with `opts`: where the payload starts.
#[inline]
pub fn tcp_headers_len(opts: &TcpOptions) -> usize {
    ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN + tcp::MIN_HEADER_LEN + tcp::options_len(opts)
}

/// Writes the headers of a frame whose `payload_len` payload bytes are already at
/// `buf[tcp_headers_len(&spec.options)..]`, with full IPv4 and TCP checksums (nothing is left
/// to offloads). Returns the frame length.
pub fn build_tcp_frame(
    buf: &mut [u8],
    spec: &FrameSpec,
    payload_len: usize,
) -> Result<usize, BuildError> {
    let opt_len = tcp::options_len(&spec.options);
    let tcp_len = tcp::MIN_HEADER_LEN + opt_len;
    let ip_start = ethernet::HEADER_LEN;
    let tcp_start = ip_start + ipv4::MIN_HEADER_LEN;
    let total = tcp_start + tcp_len + payload_len;
    if buf.len() < total || ipv4::MIN_HEADER_LEN + tcp_len + payload_len > u16::MAX as usize {
        return Err(BuildError::TooSmall);
    }
    ethernet::write_header(buf, spec.dst_mac, spec.src_mac, ethernet::ETHERTYPE_IPV4);
    let ip_total = (ipv4::MIN_HEADER_LEN + tcp_len + payload_len) as u16;
    ipv4::write_header(
        &mut buf[ip_start..tcp_start],
        ip_total,
        spec.ip_id,
        spec.ttl,
        ipv4::PROTO_TCP,
        spec.src_ip,
        spec.dst_ip,
    );
    let t = &mut buf[tcp_start..total];
    t[0..2].copy_from_slice(&spec.src_port.to_be_bytes());
    t[2..4].copy_from_slice(&spec.dst_port.to_be_bytes());
    t[4..8].copy_from_slice(&spec.seq.to_be_bytes());
    t[8..12].copy_from_slice(&spec.ack.to_be_bytes());
    t[12] = ((tcp_len / 4) as u8) << 4;
    t[13] = spec.flags.bits();
    t[14..16].copy_from_slice(&spec.window.to_be_bytes());
    t[16..18].copy_from_slice(&[0, 0]);
    t[18..20].copy_from_slice(&[0, 0]);
    let written = tcp::write_options(&mut t[20..20 + opt_len], &spec.options);
    debug_assert_eq!(written, opt_len);
    let pseudo =
        checksum::pseudo_header_sum(spec.src_ip, spec.dst_ip, ipv4::PROTO_TCP, t.len() as u16);
    let c = !checksum::fold(checksum::sum(t, pseudo));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    Ok(total)
}

#[cfg(test)]
mod tests;
