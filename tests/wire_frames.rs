//! Byte-array and property tests of src/wire: real frames captured from Linux 6.18 over a veth
//! pair (offloads off), hand-made variants, and cross-checks against etherparse and the
//! internet-checksum crate.

use etherparse::{
    LinkSlice, NetSlice, PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice,
};
use proptest::prelude::*;
use synack::wire::IpAddress;
use synack::wire::checksum::{self, Checksum};
use synack::wire::segment::SegmentOut;
use synack::wire::seq::SeqNumber;
use synack::wire::tcp::{SackBlock, TcpFlags, TcpOptions};
use synack::wire::{
    BuildError, DropReason, FrameSpec, build_tcp_frame, build_tcp_frame_with_payload_sum,
    parse_frame, tcp_headers_len,
};

const CLIENT_MAC: [u8; 6] = [0x9a, 0x02, 0x28, 0xa8, 0x29, 0x1d];
const SERVER_MAC: [u8; 6] = [0x42, 0xfb, 0x72, 0xaa, 0x57, 0x11];
const CLIENT_IP: u32 = 0xc612_0001; // 198.18.0.1
const SERVER_IP: u32 = 0xc612_0002; // 198.18.0.2

/// Linux 6.18 SYN: 198.18.0.1:58674 -> 198.18.0.2:8080, seq 145305895, win 64240,
/// options mss 1460, sackOK, TS val 3579331116 ecr 0, nop, wscale 10.
const LINUX_SYN: [u8; 74] = [
    0x42, 0xfb, 0x72, 0xaa, 0x57, 0x11, 0x9a, 0x02, 0x28, 0xa8, 0x29, 0x1d, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x3c, 0xdc, 0x12, 0x40, 0x00, 0x40, 0x06, 0xd2, 0x81, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12,
    0x00, 0x02, 0xe5, 0x32, 0x1f, 0x90, 0x08, 0xa9, 0x31, 0x27, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02,
    0xfa, 0xf0, 0x6a, 0xcc, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xd5, 0x58,
    0x42, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
];

/// Linux 6.18's answer: SYN/ACK seq 326382961 ack 145305896 win 65160, IP ID 0,
/// options mss 1460, sackOK, TS val 2796953761 ecr 3579331116, nop, wscale 10.
const LINUX_SYN_ACK: [u8; 74] = [
    0x9a, 0x02, 0x28, 0xa8, 0x29, 0x1d, 0x42, 0xfb, 0x72, 0xaa, 0x57, 0x11, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0xae, 0x94, 0xc6, 0x12, 0x00, 0x02, 0xc6, 0x12,
    0x00, 0x01, 0x1f, 0x90, 0xe5, 0x32, 0x13, 0x74, 0x35, 0x71, 0x08, 0xa9, 0x31, 0x28, 0xa0, 0x12,
    0xfe, 0x88, 0x56, 0xe6, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xa6, 0xb6,
    0x20, 0xa1, 0xd5, 0x58, 0x42, 0x2c, 0x01, 0x03, 0x03, 0x0a,
];

/// Linux client data: "GET" (odd payload length), PSH|ACK, TS.
const LINUX_GET: [u8; 69] = [
    0x42, 0xfb, 0x72, 0xaa, 0x57, 0x11, 0x9a, 0x02, 0x28, 0xa8, 0x29, 0x1d, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x37, 0xdc, 0x14, 0x40, 0x00, 0x40, 0x06, 0xd2, 0x84, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12,
    0x00, 0x02, 0xe5, 0x32, 0x1f, 0x90, 0x08, 0xa9, 0x31, 0x28, 0x13, 0x74, 0x35, 0x72, 0x80, 0x18,
    0x00, 0x3f, 0xe8, 0xae, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xd5, 0x58, 0x42, 0x2c, 0xa6, 0xb6,
    0x20, 0xa1, 0x47, 0x45, 0x54,
];

/// Linux server's bare ACK with timestamps (IP ID 22493).
const LINUX_ACK: [u8; 66] = [
    0x9a, 0x02, 0x28, 0xa8, 0x29, 0x1d, 0x42, 0xfb, 0x72, 0xaa, 0x57, 0x11, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x34, 0x57, 0xdd, 0x40, 0x00, 0x40, 0x06, 0x56, 0xbf, 0xc6, 0x12, 0x00, 0x02, 0xc6, 0x12,
    0x00, 0x01, 0x1f, 0x90, 0xe5, 0x32, 0x13, 0x74, 0x35, 0x72, 0x08, 0xa9, 0x31, 0x2b, 0x80, 0x10,
    0x00, 0x40, 0x83, 0xfb, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xa6, 0xb6, 0x20, 0xa1, 0xd5, 0x58,
    0x42, 0x2c,
];

/// Linux server's data "hi", PSH|ACK, TS.
const LINUX_HI: [u8; 68] = [
    0x9a, 0x02, 0x28, 0xa8, 0x29, 0x1d, 0x42, 0xfb, 0x72, 0xaa, 0x57, 0x11, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x36, 0x57, 0xde, 0x40, 0x00, 0x40, 0x06, 0x56, 0xbc, 0xc6, 0x12, 0x00, 0x02, 0xc6, 0x12,
    0x00, 0x01, 0x1f, 0x90, 0xe5, 0x32, 0x13, 0x74, 0x35, 0x72, 0x08, 0xa9, 0x31, 0x2b, 0x80, 0x18,
    0x00, 0x40, 0x1b, 0x88, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xa6, 0xb6, 0x20, 0xa1, 0xd5, 0x58,
    0x42, 0x2c, 0x68, 0x69,
];

/// A bare ACK without options (54 bytes) padded with 6 zero bytes to the 60-byte minimum.
const PADDED_ACK: [u8; 60] = [
    0x42, 0xfb, 0x72, 0xaa, 0x57, 0x11, 0x9a, 0x02, 0x28, 0xa8, 0x29, 0x1d, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x28, 0xdc, 0x17, 0x40, 0x00, 0x40, 0x06, 0xd2, 0x90, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12,
    0x00, 0x02, 0xe5, 0x32, 0x1f, 0x90, 0x08, 0xa9, 0x31, 0x2b, 0x13, 0x74, 0x35, 0x74, 0x50, 0x10,
    0x00, 0x3f, 0x9b, 0xee, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// IHL 6 with a Router Alert option (94 04 00 00), then a TCP segment carrying 18 bytes.
const IP_OPTIONS_DATA: [u8; 76] = [
    0x42, 0xfb, 0x72, 0xaa, 0x57, 0x11, 0x9a, 0x02, 0x28, 0xa8, 0x29, 0x1d, 0x08, 0x00, 0x46, 0x00,
    0x00, 0x3e, 0xdc, 0x17, 0x40, 0x00, 0x40, 0x06, 0x3d, 0x76, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12,
    0x00, 0x02, 0x94, 0x04, 0x00, 0x00, 0xe5, 0x32, 0x1f, 0x90, 0x08, 0xa9, 0x31, 0x2b, 0x13, 0x74,
    0x35, 0x74, 0x50, 0x18, 0x00, 0x3f, 0xbd, 0x33, 0x00, 0x00, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x20,
    0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d, 0x0a, 0x0d, 0x0a,
];

/// Recomputes both checksums of an Ethernet/IPv4/TCP frame with the independent
/// internet-checksum crate, after a test edited some bytes.
fn fix_checksums(f: &mut [u8]) {
    let ihl = (f[14] & 0x0f) as usize * 4;
    let end = 14 + u16::from_be_bytes([f[16], f[17]]) as usize;
    f[24] = 0;
    f[25] = 0;
    let c = internet_checksum::checksum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&c);
    let tcp = 14 + ihl;
    f[tcp + 16] = 0;
    f[tcp + 17] = 0;
    let mut ck = internet_checksum::Checksum::new();
    ck.add_bytes(&f[26..34]);
    ck.add_bytes(&[0, 6]);
    ck.add_bytes(&((end - tcp) as u16).to_be_bytes());
    ck.add_bytes(&f[tcp..end]);
    f[tcp + 16..tcp + 18].copy_from_slice(&ck.checksum());
}

fn spec_of(frame: &[u8]) -> (FrameSpec, Vec<u8>) {
    let p = parse_frame(frame).unwrap();
    let spec = FrameSpec {
        src_mac: p.src_mac(),
        dst_mac: p.dst_mac(),
        src_ip: p.src_ip(),
        dst_ip: p.dst_ip(),
        ttl: p.ttl(),
        ip_id: p.ipv4.unwrap().ident(),
        src_port: p.src_port(),
        dst_port: p.dst_port(),
        seq: p.seq(),
        ack: p.ack(),
        flags: p.flags(),
        window: p.window(),
        options: p.options,
    };
    (spec, p.payload().to_vec())
}

fn build(spec: &FrameSpec, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let at = tcp_headers_len(spec.src_ip.is_v4(), &spec.options);
    buf[at..at + payload.len()].copy_from_slice(payload);
    let n = build_tcp_frame(&mut buf, spec, payload.len()).unwrap();
    buf.truncate(n);
    buf
}

// ---- receive: real and hand-made frames ----

#[test]
fn linux_syn_parses() {
    let p = parse_frame(&LINUX_SYN).unwrap();
    assert_eq!(p.src_mac(), CLIENT_MAC);
    assert_eq!(p.dst_mac(), SERVER_MAC);
    assert_eq!(p.src_ip(), IpAddress::v4(CLIENT_IP));
    assert_eq!(p.dst_ip(), IpAddress::v4(SERVER_IP));
    assert_eq!(p.ttl(), 64);
    assert_eq!(p.src_port(), 58674);
    assert_eq!(p.dst_port(), 8080);
    assert_eq!(p.seq(), 145305895);
    assert_eq!(p.ack(), 0);
    assert_eq!(p.flags(), TcpFlags::SYN);
    assert_eq!(p.window(), 64240);
    assert_eq!(
        p.options,
        TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            timestamps: Some((3579331116, 0)),
            ..TcpOptions::default()
        }
    );
    assert!(p.payload().is_empty());
    assert!(p.ipv4.unwrap().dont_fragment());
    assert_eq!(p.ipv4.unwrap().ident(), 0xdc12);
    assert_eq!(p.tcp.header_len(), 40);
}

#[test]
fn linux_syn_to_segment_in() {
    let p = parse_frame(&LINUX_SYN).unwrap();
    let s = p.to_segment_in();
    assert_eq!(s.tuple.remote_ip, IpAddress::v4(CLIENT_IP));
    assert_eq!(s.tuple.remote_port, 58674);
    assert_eq!(s.tuple.local_ip, IpAddress::v4(SERVER_IP));
    assert_eq!(s.tuple.local_port, 8080);
    assert_eq!(s.seq, SeqNumber::new(145305895));
    assert_eq!(s.ack, SeqNumber::new(0));
    assert_eq!(s.flags, TcpFlags::SYN);
    assert_eq!(s.window, 64240);
    assert_eq!(s.options, p.options);
    assert_eq!(s.seg_len(), 1);
}

#[test]
fn linux_data_with_odd_length_parses() {
    let p = parse_frame(&LINUX_GET).unwrap();
    assert_eq!(p.payload(), b"GET");
    assert_eq!(p.flags(), TcpFlags::PSH | TcpFlags::ACK);
    assert_eq!(p.options.timestamps, Some((3579331116, 2796953761)));
    assert_eq!(p.to_segment_in().seg_len(), 3);
    assert_eq!(parse_frame(&LINUX_HI).unwrap().payload(), b"hi");
    assert!(parse_frame(&LINUX_ACK).unwrap().payload().is_empty());
}

#[test]
fn payload_is_a_slice_of_the_frame() {
    // Zero copy: the payload points into the received frame, at the right offset.
    let frame = LINUX_GET;
    let p = parse_frame(&frame).unwrap();
    let seg = p.to_segment_in();
    assert!(std::ptr::eq(seg.payload.as_ptr(), frame[66..].as_ptr()));
    assert!(std::ptr::eq(
        p.payload().as_ptr_range().end,
        frame.as_ptr_range().end
    ));
}

#[test]
fn padded_60_byte_frame_ignores_padding() {
    let p = parse_frame(&PADDED_ACK).unwrap();
    assert_eq!(p.ipv4.unwrap().total_len(), 40);
    assert!(p.payload().is_empty());
    assert_eq!(p.flags(), TcpFlags::ACK);
    assert_eq!(p.options, TcpOptions::default());
    assert_eq!(p.seq(), 0x08a9_312b);
    assert_eq!(p.ack(), 0x1374_3574);
    // Some NICs leave garbage in the padding: still ignored, checksums still good.
    let mut garbage = PADDED_ACK;
    garbage[54..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x55, 0xaa]);
    assert!(parse_frame(&garbage).unwrap().payload().is_empty());
    // Linux's data frame with a few padding bytes after it keeps its payload length.
    let mut padded = LINUX_GET.to_vec();
    padded.extend_from_slice(&[0xff; 7]);
    assert_eq!(parse_frame(&padded).unwrap().payload(), b"GET");
}

#[test]
fn ipv4_options_are_skipped() {
    let p = parse_frame(&IP_OPTIONS_DATA).unwrap();
    assert_eq!(p.ipv4.unwrap().header_len(), 24);
    assert_eq!(p.ipv4.unwrap().options(), &[0x94, 0x04, 0x00, 0x00]);
    assert_eq!(p.payload(), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(p.src_port(), 58674);
}

#[test]
fn fragments_are_dropped() {
    for (flags_frag, expect) in [
        (0x2000u16, Err(DropReason::Fragment)), // MF, offset 0: the first fragment
        (0x0001, Err(DropReason::Fragment)),    // offset 8 bytes, last fragment
        (0x2010, Err(DropReason::Fragment)),    // MF and an offset
        (0x0000, Ok(())),                       // neither DF nor MF: a whole datagram
        (0x4000, Ok(())),                       // DF
    ] {
        let mut f = LINUX_SYN;
        f[20..22].copy_from_slice(&flags_frag.to_be_bytes());
        fix_checksums(&mut f);
        assert_eq!(
            parse_frame(&f).map(|_| ()),
            expect,
            "flags/offset {flags_frag:04x}"
        );
    }
}

#[test]
fn bad_checksums_are_dropped() {
    let mut f = LINUX_SYN;
    f[24] ^= 0x01; // IPv4 header checksum
    assert_eq!(parse_frame(&f).err(), Some(DropReason::BadIpChecksum));
    let mut f = LINUX_SYN;
    f[22] = 63; // TTL changed, checksum not updated
    assert_eq!(parse_frame(&f).err(), Some(DropReason::BadIpChecksum));
    let mut f = LINUX_SYN;
    f[50] ^= 0x80; // TCP checksum
    assert_eq!(parse_frame(&f).err(), Some(DropReason::BadTcpChecksum));
    let mut f = LINUX_GET;
    f[68] ^= 0x01; // the odd last payload byte
    assert_eq!(parse_frame(&f).err(), Some(DropReason::BadTcpChecksum));
    // The destination address, with the IPv4 checksum fixed: only the pseudo-header catches it.
    let mut f = LINUX_SYN;
    f[30] = 10;
    f[24] = 0;
    f[25] = 0;
    let ip = internet_checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&ip);
    assert_eq!(parse_frame(&f).err(), Some(DropReason::BadTcpChecksum));
}

#[test]
fn every_header_check_has_its_reason() {
    let edit = |at: usize, v: u8, fix: bool| {
        let mut f = LINUX_SYN.to_vec();
        f[at] = v;
        if fix {
            fix_checksums(&mut f);
        }
        parse_frame(&f).err()
    };
    assert_eq!(
        parse_frame(&LINUX_SYN[..13]).err(),
        Some(DropReason::TooShort)
    );
    assert_eq!(
        parse_frame(&LINUX_SYN[..14 + 19]).err(),
        Some(DropReason::TooShort)
    );
    // ARP and an 802.1Q tag.
    assert_eq!(edit(13, 0x06, false), Some(DropReason::NotIp));
    let mut vlan = LINUX_SYN.to_vec();
    vlan.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    assert_eq!(parse_frame(&vlan).err(), Some(DropReason::NotIp));
    assert_eq!(edit(14, 0x65, false), Some(DropReason::BadIpVersion));
    assert_eq!(edit(14, 0x44, false), Some(DropReason::BadIpHeaderLength));
    assert_eq!(
        parse_frame(&[&LINUX_SYN[..14], &[0x4f; 40]].concat()).err(),
        Some(DropReason::BadIpHeaderLength)
    );
    // Total Length: longer than the frame, shorter than the header.
    assert_eq!(edit(17, 0x3d, false), Some(DropReason::BadIpTotalLength));
    assert_eq!(edit(17, 0x13, false), Some(DropReason::BadIpTotalLength));
    // UDP.
    assert_eq!(edit(23, 17, true), Some(DropReason::NotTcp));
    // TCP Data Offset 4 and 15 (beyond the 40-byte segment).
    assert_eq!(edit(46, 0x40, true), Some(DropReason::BadTcpHeaderLength));
    assert_eq!(edit(46, 0xf0, true), Some(DropReason::BadTcpHeaderLength));
    // An IP datagram too short for a TCP header.
    let mut f = LINUX_SYN.to_vec();
    f[16..18].copy_from_slice(&30u16.to_be_bytes());
    f.truncate(14 + 30);
    f[24] = 0;
    f[25] = 0;
    let c = internet_checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c);
    assert_eq!(parse_frame(&f).err(), Some(DropReason::TooShort));
}

#[test]
fn syn_option_shapes() {
    // The SYN's 20 option bytes start at frame offset 54.
    let with_options = |opts: [u8; 20]| {
        let mut f = LINUX_SYN;
        f[54..74].copy_from_slice(&opts);
        fix_checksums(&mut f);
        parse_frame(&f).map(|p| p.options)
    };
    // MSS with length 3 (within the header): ignored, the SYN is accepted (Linux answers it).
    let o = with_options([2, 3, 5, 1, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 10]).unwrap();
    assert_eq!(o.mss, None);
    assert!(o.sack_permitted);
    assert_eq!(o.timestamps, Some((1, 0)));
    assert_eq!(o.window_scale, Some(10));
    // WS with length 4: ignored.
    let o = with_options([
        2, 4, 5, 0xb4, 3, 4, 0, 10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ])
    .unwrap();
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, None);
    // Timestamps with length 11 within the header: ignored.
    let o = with_options([8, 11, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(o.timestamps, None);
    assert!(o.sack_permitted);
    // Length 0, length 1, past the end, no room for the length byte: parsing stops there and
    // the segment is kept, like Linux (the SYN is answered).
    assert!(
        with_options([
            2, 4, 5, 0xb4, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ])
        .is_ok()
    );
    assert!(with_options([1, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_ok());
    assert!(with_options([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 8, 10, 0, 0]).is_ok());
    assert!(with_options([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]).is_ok());
    // SACK of 2 blocks needs 18 bytes but only 14 remain after an unknown option: dropped.
    assert!(
        with_options([
            0x1e, 4, 0, 0, 1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3
        ])
        .is_ok()
    );
    // An unknown kind skipped by its length, then one SACK block.
    let o = with_options([
        0x1e, 4, 0, 0, 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0,
    ])
    .unwrap();
    assert_eq!(o.sack(), &[SackBlock { left: 1, right: 2 }]);
}

// ---- transmit ----

#[test]
fn syn_ack_matches_linux_byte_for_byte() {
    // Written out by hand from the SYN; the expected bytes are what Linux 6.18 sent.
    let spec = FrameSpec {
        src_mac: SERVER_MAC,
        dst_mac: CLIENT_MAC,
        src_ip: IpAddress::v4(SERVER_IP),
        dst_ip: IpAddress::v4(CLIENT_IP),
        ttl: 64,
        ip_id: 0,
        src_port: 8080,
        dst_port: 58674,
        seq: 326382961,
        ack: 145305896,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 65160,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            timestamps: Some((2796953761, 3579331116)),
            ..TcpOptions::default()
        },
    };
    assert_eq!(tcp_headers_len(spec.src_ip.is_v4(), &spec.options), 74);
    assert_eq!(build(&spec, &[]), LINUX_SYN_ACK);
}

#[test]
fn linux_frames_rebuilt_byte_for_byte() {
    for frame in [
        &LINUX_SYN[..],
        &LINUX_SYN_ACK,
        &LINUX_ACK,
        &LINUX_HI,
        &LINUX_GET,
        &PADDED_ACK[..54],
    ] {
        let (spec, payload) = spec_of(frame);
        assert_eq!(build(&spec, &payload), frame);
    }
}

#[test]
fn frame_spec_for_an_engine_segment_reaches_the_remote_end() {
    // The SYN arrives; the engine answers on the same tuple; the frame goes back to the client.
    let syn = parse_frame(&LINUX_SYN).unwrap();
    let seg_in = syn.to_segment_in();
    let out = SegmentOut {
        tuple: seg_in.tuple,
        link: seg_in.link,
        seq: SeqNumber::new(326382961),
        ack: seg_in.seq + 1u32,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 65160,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            timestamps: Some((2796953761, 3579331116)),
            ..TcpOptions::default()
        },
    };
    let spec = FrameSpec::for_segment(&out, syn.dst_mac(), syn.src_mac(), 0);
    assert_eq!(spec.ttl, FrameSpec::DEFAULT_TTL);
    assert_eq!(build(&spec, &[]), LINUX_SYN_ACK);
}

#[test]
fn cached_payload_sum_gives_the_same_frame() {
    let (spec, payload) = spec_of(&LINUX_GET);
    let mut sum = Checksum::new();
    sum.add_bytes(&payload);
    let mut buf = [0u8; 128];
    buf[66..69].copy_from_slice(&payload);
    let n = build_tcp_frame_with_payload_sum(&mut buf, &spec, 3, sum).unwrap();
    assert_eq!(&buf[..n], LINUX_GET);
}

#[test]
fn build_errors_never_panic() {
    let (spec, payload) = spec_of(&LINUX_HI);
    let needed = 68;
    for len in 0..needed {
        let mut buf = vec![0u8; len];
        assert_eq!(
            build_tcp_frame(&mut buf, &spec, payload.len()),
            Err(BuildError::BufferTooSmall {
                needed,
                available: len
            })
        );
        assert!(buf.iter().all(|&b| b == 0), "nothing written on error");
    }
    let mut buf = vec![0u8; 70_000];
    let max_payload = 65535 - 20 - 32;
    assert_eq!(
        build_tcp_frame(&mut buf, &spec, max_payload),
        Ok(14 + 65535)
    );
    assert_eq!(
        build_tcp_frame(&mut buf, &spec, max_payload + 1),
        Err(BuildError::TooLong)
    );
    assert_eq!(
        build_tcp_frame(&mut buf, &spec, usize::MAX),
        Err(BuildError::TooLong)
    );
    assert_eq!(
        build_tcp_frame(&mut buf, &spec, usize::MAX - 60),
        Err(BuildError::TooLong)
    );
}

// ---- IPv6 ----

const CLIENT6: [u8; 16] = [0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const SERVER6: [u8; 16] = [0xfd, 0, 1, 0x98, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// A client's IPv6 SYN with MSS, SACK-permitted, timestamps and window scale, as Linux sends it.
fn syn6() -> Vec<u8> {
    let spec = FrameSpec {
        src_mac: CLIENT_MAC,
        dst_mac: SERVER_MAC,
        src_ip: IpAddress::v6(CLIENT6),
        dst_ip: IpAddress::v6(SERVER6),
        ttl: 64,
        src_port: 51000,
        dst_port: 8080,
        seq: 0x1234_5678,
        flags: TcpFlags::SYN,
        window: 64800,
        options: TcpOptions {
            mss: Some(1440),
            sack_permitted: true,
            timestamps: Some((1, 0)),
            window_scale: Some(7),
            ..TcpOptions::default()
        },
        ..FrameSpec::default()
    };
    build(&spec, &[])
}

/// `frame` (Ethernet + IPv6 + TCP, no extension headers) with `ext` inserted after the IPv6
/// header: `ext` holds the extension headers with their Next Header fields already chained to
/// end in TCP; `first` becomes the IPv6 header's Next Header.
fn with_extensions(frame: &[u8], first: u8, ext: &[u8]) -> Vec<u8> {
    let mut f = frame[..54].to_vec();
    f[20] = first;
    f.extend_from_slice(ext);
    f.extend_from_slice(&frame[54..]);
    let len = (f.len() - 54) as u16;
    f[18..20].copy_from_slice(&len.to_be_bytes());
    f
}

/// An 8-byte extension header (Hop-by-Hop or Destination Options with a PadN option) whose
/// Next Header is `next`.
fn opts_header(next: u8) -> [u8; 8] {
    [next, 0, 1, 4, 0, 0, 0, 0]
}

/// A Routing header of type 0 with `left` segments left and one address (types 3 and 4, RPL
/// and segment routing, Linux drops by default whatever Segments Left says).
fn routing_header(next: u8, left: u8) -> Vec<u8> {
    let mut h = vec![next, 2, 0, left, 0, 0, 0, 0];
    h.extend_from_slice(&SERVER6);
    h
}

#[test]
fn ipv6_syn_parses_and_matches_etherparse() {
    let f = syn6();
    assert_eq!(f.len(), 14 + 40 + 40);
    let p = parse_frame(&f).unwrap();
    assert!(p.ipv4.is_none());
    assert_eq!(p.src_ip(), IpAddress::v6(CLIENT6));
    assert_eq!(p.dst_ip(), IpAddress::v6(SERVER6));
    assert_eq!(p.src_ip().to_string(), "fd00:198:18::2");
    assert_eq!(p.ttl(), 64);
    assert_eq!(p.options.mss, Some(1440));
    let s = p.to_segment_in();
    assert!(!s.tuple.is_v4());
    assert_eq!(
        s.tuple.to_string(),
        "[fd00:198:18::2]:51000 -> [fd00:198:18::1]:8080"
    );
    // etherparse builds the same SYN from its own code.
    let builder = PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
        .ipv6(CLIENT6, SERVER6, 64)
        .tcp(51000, 8080, 0x1234_5678, 64800)
        .syn()
        .options(&[
            TcpOptionElement::MaximumSegmentSize(1440),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Timestamp(1, 0),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .unwrap();
    let mut theirs = Vec::new();
    builder.write(&mut theirs, &[]).unwrap();
    assert_eq!(theirs, f, "byte for byte");
}

#[test]
fn ipv6_extension_headers_are_walked_as_linux_does() {
    let syn = syn6();
    const HBH: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const DSTOPTS: u8 = 60;
    const TCP: u8 = 6;
    let served = |f: &[u8]| {
        let p = parse_frame(f).map_err(|e| e.as_str())?;
        assert_eq!(p.seq(), 0x1234_5678);
        assert_eq!(p.options.mss, Some(1440));
        Ok::<(), &str>(())
    };
    // Skipped: Hop-by-Hop first, Destination Options, Routing with no segments left, chained.
    assert_eq!(
        served(&with_extensions(&syn, HBH, &opts_header(TCP))),
        Ok(())
    );
    assert_eq!(
        served(&with_extensions(&syn, DSTOPTS, &opts_header(TCP))),
        Ok(())
    );
    assert_eq!(
        served(&with_extensions(&syn, ROUTING, &routing_header(TCP, 0))),
        Ok(())
    );
    let mut chain = opts_header(DSTOPTS).to_vec();
    chain.extend_from_slice(&opts_header(ROUTING));
    chain.extend_from_slice(&routing_header(DSTOPTS, 0));
    chain.extend_from_slice(&opts_header(TCP));
    assert_eq!(served(&with_extensions(&syn, HBH, &chain)), Ok(()));

    let dropped = |f: &[u8]| parse_frame(f).err();
    // RFC 8200 4.4: a Routing header with segments left would forward the packet.
    assert_eq!(
        dropped(&with_extensions(&syn, ROUTING, &routing_header(TCP, 1))),
        Some(DropReason::BadIpv6Extension)
    );
    // RFC 8200 4.1: Hop-by-Hop only right after the IPv6 header.
    let mut late_hbh = opts_header(HBH).to_vec();
    late_hbh.extend_from_slice(&opts_header(TCP));
    assert_eq!(
        dropped(&with_extensions(&syn, DSTOPTS, &late_hbh)),
        Some(DropReason::BadIpv6Extension)
    );
    // A fragment (M set): no reassembly. An atomic fragment (offset 0, M clear) is skipped,
    // as RFC 6946 4 asks and Linux does.
    let frag = [TCP, 0, 0, 1, 0, 0, 0, 1];
    assert_eq!(
        dropped(&with_extensions(&syn, FRAGMENT, &frag)),
        Some(DropReason::Fragment)
    );
    let atomic = [TCP, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(served(&with_extensions(&syn, FRAGMENT, &atomic)), Ok(()));
    // Segment routing (type 4), even with no segments left: dropped as Linux does.
    let mut srh = routing_header(TCP, 0);
    srh[2] = 4;
    assert_eq!(
        dropped(&with_extensions(&syn, ROUTING, &srh)),
        Some(DropReason::BadIpv6Extension)
    );
    // An option whose type says "discard if unknown" (high bits 01).
    let mut discard = opts_header(TCP);
    discard[2] = 0x40;
    assert_eq!(
        dropped(&with_extensions(&syn, DSTOPTS, &discard)),
        Some(DropReason::BadIpv6Extension)
    );
    // No Next Header, ICMPv6, UDP: not TCP.
    for nh in [59u8, 58, 17] {
        assert_eq!(
            dropped(&with_extensions(&syn, DSTOPTS, &opts_header(nh))),
            Some(DropReason::NotTcp),
            "next header {nh}"
        );
    }
    // An extension header running past the payload.
    let mut long = opts_header(TCP);
    long[1] = 200;
    assert_eq!(
        dropped(&with_extensions(&syn, DSTOPTS, &long)),
        Some(DropReason::BadIpv6Extension)
    );
    // A chain longer than 8 headers.
    let mut many = Vec::new();
    for _ in 0..8 {
        many.extend_from_slice(&opts_header(DSTOPTS));
    }
    many.extend_from_slice(&opts_header(TCP));
    assert_eq!(
        dropped(&with_extensions(&syn, DSTOPTS, &many)),
        Some(DropReason::BadIpv6Extension)
    );
    // Every truncation of a chained frame is dropped, never misread, never a panic.
    let full = with_extensions(&syn, HBH, &chain);
    for len in 0..full.len() {
        assert!(parse_frame(&full[..len]).is_err(), "{len} bytes");
    }
}

#[test]
fn ipv6_header_checks_have_their_reasons() {
    let syn = syn6();
    let edit = |at: usize, v: u8| {
        let mut f = syn.clone();
        f[at] = v;
        parse_frame(&f).err()
    };
    assert_eq!(edit(14, 0x40), Some(DropReason::BadIpVersion));
    // Payload Length past the frame.
    assert_eq!(edit(19, 41), Some(DropReason::BadIpTotalLength));
    // Payload Length short of the TCP header.
    assert_eq!(edit(19, 10), Some(DropReason::TooShort));
    // A multicast source or destination, an IPv4-mapped source.
    assert_eq!(edit(22, 0xff), Some(DropReason::BadIpv6Address));
    assert_eq!(edit(38, 0xff), Some(DropReason::BadIpv6Address));
    let mut mapped = syn.clone();
    mapped[22..38].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 2]);
    assert_eq!(parse_frame(&mapped).err(), Some(DropReason::BadIpv6Address));
    // A flipped address bit breaks the pseudo-header sum.
    assert_eq!(edit(53, 3), Some(DropReason::BadTcpChecksum));
    // Ethernet padding after the Payload Length is ignored.
    let mut padded = syn.clone();
    padded.extend_from_slice(&[0xa5; 6]);
    assert_eq!(parse_frame(&padded).unwrap().payload().len(), 0);
    // Mixed families are refused by the builder, not written.
    let spec = FrameSpec {
        src_ip: IpAddress::v6(SERVER6),
        dst_ip: IpAddress::v4(CLIENT_IP),
        ..FrameSpec::default()
    };
    let mut buf = [0u8; 128];
    assert_eq!(
        build_tcp_frame(&mut buf, &spec, 0),
        Err(BuildError::MixedFamilies)
    );
}

#[test]
fn drop_reasons_index_counters() {
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
    }
    assert_eq!(DropReason::COUNT, 14);
    assert_eq!(DropReason::BadTcpChecksum.as_str(), "bad_tcp_checksum");
    let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), DropReason::COUNT);
    assert!(names.iter().all(|n| {
        n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }));
}

// ---- property tests ----

fn arb_options() -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        proptest::option::of(any::<(u32, u32)>()),
        proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
    )
        .prop_map(|(mss, window_scale, sack_permitted, timestamps, blocks)| {
            let mut o = TcpOptions {
                mss,
                window_scale,
                sack_permitted,
                timestamps,
                ..TcpOptions::default()
            };
            for (slot, &(left, right)) in o.sack_blocks.iter_mut().zip(&blocks) {
                *slot = SackBlock { left, right };
            }
            o.sack_count = blocks.len() as u8;
            o
        })
}

prop_compose! {
    fn arb_spec()(
        src_mac in any::<[u8; 6]>(), dst_mac in any::<[u8; 6]>(),
        src_ip in any::<u32>(), dst_ip in any::<u32>(), ttl in any::<u8>(), ip_id in any::<u16>(),
        src_port in any::<u16>(), dst_port in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(),
        flags in any::<u8>(), window in any::<u16>(), options in arb_options(),
        v6 in any::<bool>(), mut src6 in any::<[u8; 16]>(), mut dst6 in any::<[u8; 16]>(),
    ) -> FrameSpec {
        // Global unicast (2000::/4): never multicast, never IPv4-mapped.
        src6[0] = 0x20 | (src6[0] & 0x0f);
        dst6[0] = 0x20 | (dst6[0] & 0x0f);
        let (src_ip, dst_ip) = if v6 {
            (IpAddress::v6(src6), IpAddress::v6(dst6))
        } else {
            (IpAddress::v4(src_ip), IpAddress::v4(dst_ip))
        };
        FrameSpec { src_mac, dst_mac, src_ip, dst_ip,
                    ttl, ip_id, src_port, dst_port, seq, ack,
                    flags: TcpFlags(flags), window, options }
    }
}

/// The SACK blocks a frame can carry beside the other options (RFC 2018 3: 40 bytes in all).
fn sack_that_fits(o: &TcpOptions) -> &[SackBlock] {
    let fixed = o.mss.map_or(0, |_| 4)
        + if o.timestamps.is_some() {
            12
        } else if o.sack_permitted {
            4
        } else {
            0
        }
        + o.window_scale.map_or(0, |_| 4);
    let fit = (40 - fixed - 4) / 8;
    &o.sack()[..o.sack().len().min(fit)]
}

proptest! {
    // 512 cases unless PROPTEST_CASES asks for another number.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_frame(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(
        base in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        fix in any::<bool>(),
    ) {
        // Random bytes rarely get past the EtherType: start from real frames instead.
        let mut f = [&LINUX_SYN[..], &LINUX_GET, &PADDED_ACK, &IP_OPTIONS_DATA][base].to_vec();
        for (at, v) in edits {
            let i = at.index(f.len());
            f[i] = v;
        }
        if fix && f[12..14] == [8, 0] && f[14] >> 4 == 4 {
            let ihl = (f[14] & 0xf) as usize * 4;
            let total = u16::from_be_bytes([f[16], f[17]]) as usize;
            if ihl >= 20 && total >= ihl + 20 && 14 + total <= f.len() {
                fix_checksums(&mut f);
            }
        }
        let len = cut.index(f.len() + 1);
        if let Ok(p) = parse_frame(&f[..len]) {
            let s = p.to_segment_in();
            prop_assert!(s.payload.len() <= len);
            prop_assert!(s.options.sack_count <= 4);
        }
    }

    #[test]
    fn build_then_parse_round_trips(
        spec in arb_spec(),
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        let frame = build(&spec, &payload);
        prop_assert_eq!(frame.len(), tcp_headers_len(spec.src_ip.is_v4(), &spec.options) + payload.len());
        let p = parse_frame(&frame).unwrap();
        prop_assert_eq!(p.src_mac(), spec.src_mac);
        prop_assert_eq!(p.dst_mac(), spec.dst_mac);
        prop_assert_eq!(p.src_ip(), spec.src_ip);
        prop_assert_eq!(p.dst_ip(), spec.dst_ip);
        prop_assert_eq!(p.ttl(), spec.ttl);
        prop_assert_eq!(p.ipv4.is_some(), spec.src_ip.is_v4());
        if let Some(ip) = p.ipv4 {
            prop_assert_eq!(ip.ident(), spec.ip_id);
            prop_assert!(ip.dont_fragment());
        }
        prop_assert_eq!(p.src_port(), spec.src_port);
        prop_assert_eq!(p.dst_port(), spec.dst_port);
        prop_assert_eq!(p.seq(), spec.seq);
        prop_assert_eq!(p.ack(), spec.ack);
        prop_assert_eq!(p.flags(), spec.flags);
        prop_assert_eq!(p.window(), spec.window);
        prop_assert_eq!(p.options.mss, spec.options.mss);
        prop_assert_eq!(p.options.window_scale, spec.options.window_scale);
        prop_assert_eq!(p.options.sack_permitted, spec.options.sack_permitted);
        prop_assert_eq!(p.options.timestamps, spec.options.timestamps);
        prop_assert_eq!(p.options.sack(), sack_that_fits(&spec.options));
        prop_assert_eq!(p.payload(), &payload[..]);

        // The same frame padded to 60 bytes parses the same.
        if frame.len() < 60 {
            let mut padded = frame.clone();
            padded.resize(60, 0xa5);
            prop_assert_eq!(parse_frame(&padded).unwrap().payload(), &payload[..]);
        }
    }

    #[test]
    fn etherparse_reads_what_we_build(
        spec in arb_spec(),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let frame = build(&spec, &payload);
        let sliced = SlicedPacket::from_ethernet(&frame).unwrap();
        let Some(LinkSlice::Ethernet2(eth)) = &sliced.link else { panic!("no ethernet") };
        prop_assert_eq!(eth.source(), spec.src_mac);
        prop_assert_eq!(eth.destination(), spec.dst_mac);
        let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else { panic!("no tcp") };
        match &sliced.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                prop_assert!(spec.src_ip.is_v4());
                prop_assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
                prop_assert_eq!(u32::from_be_bytes(h.source()), spec.src_ip.v4_bits());
                prop_assert_eq!(u32::from_be_bytes(h.destination()), spec.dst_ip.v4_bits());
                prop_assert!(h.dont_fragment() && !h.more_fragments());
                prop_assert_eq!(h.identification(), spec.ip_id);
                prop_assert_eq!(h.ttl(), spec.ttl);
                prop_assert_eq!(
                    tcp.checksum(),
                    tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap()
                );
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                prop_assert!(!spec.src_ip.is_v4());
                prop_assert_eq!(&h.source(), spec.src_ip.octets());
                prop_assert_eq!(&h.destination(), spec.dst_ip.octets());
                prop_assert_eq!(h.hop_limit(), spec.ttl);
                prop_assert_eq!(h.traffic_class(), 0);
                prop_assert_eq!(h.next_header(), etherparse::IpNumber::TCP);
                prop_assert_eq!(h.payload_length() as usize, frame.len() - 14 - 40);
                prop_assert_eq!(
                    tcp.checksum(),
                    tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap()
                );
            }
            other => panic!("no IP: {other:?}"),
        }
        prop_assert_eq!(tcp.sequence_number(), spec.seq);
        prop_assert_eq!(tcp.acknowledgment_number(), spec.ack);
        prop_assert_eq!(tcp.window_size(), spec.window);
        prop_assert_eq!(tcp.payload(), &payload[..]);
        let mut o = TcpOptions::default();
        for e in tcp.options_iterator() {
            match e.unwrap() {
                TcpOptionElement::Noop => {}
                TcpOptionElement::MaximumSegmentSize(m) => o.mss = Some(m),
                TcpOptionElement::WindowScale(w) => o.window_scale = Some(w),
                TcpOptionElement::SelectiveAcknowledgementPermitted => o.sack_permitted = true,
                TcpOptionElement::Timestamp(v, e) => o.timestamps = Some((v, e)),
                TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
                    for (i, b) in std::iter::once(Some(first)).chain(rest).flatten().enumerate() {
                        o.sack_blocks[i] = SackBlock { left: b.0, right: b.1 };
                        o.sack_count = i as u8 + 1;
                    }
                }
            }
        }
        prop_assert_eq!(o.mss, spec.options.mss);
        prop_assert_eq!(o.window_scale, spec.options.window_scale);
        prop_assert_eq!(o.sack_permitted, spec.options.sack_permitted);
        prop_assert_eq!(o.timestamps, spec.options.timestamps);
        prop_assert_eq!(o.sack(), sack_that_fits(&spec.options));
    }

    #[test]
    fn we_read_what_etherparse_builds(
        spec in arb_spec(),
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        pad_to_60 in any::<bool>(),
    ) {
        let o = &spec.options;
        let mut elements = Vec::new();
        if let Some(m) = o.mss {
            elements.push(TcpOptionElement::MaximumSegmentSize(m));
        }
        if let Some(w) = o.window_scale {
            elements.push(TcpOptionElement::WindowScale(w));
        }
        if o.sack_permitted {
            elements.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
        }
        if let Some((v, e)) = o.timestamps {
            elements.push(TcpOptionElement::Timestamp(v, e));
        }
        let sack = sack_that_fits(o);
        if let Some((first, rest)) = sack.split_first() {
            let mut more = [None; 3];
            for (slot, b) in more.iter_mut().zip(rest) {
                *slot = Some((b.left, b.right));
            }
            elements.push(TcpOptionElement::SelectiveAcknowledgement((first.left, first.right), more));
        }
        let eth = PacketBuilder::ethernet2(spec.src_mac, spec.dst_mac);
        let ip = if spec.src_ip.is_v4() {
            eth.ipv4(spec.src_ip.v4_bits().to_be_bytes(), spec.dst_ip.v4_bits().to_be_bytes(), spec.ttl)
        } else {
            eth.ipv6(*spec.src_ip.octets(), *spec.dst_ip.octets(), spec.ttl)
        };
        let mut b = ip.tcp(spec.src_port, spec.dst_port, spec.seq, spec.window);
        let f = spec.flags;
        if f.ack() {
            b = b.ack(spec.ack);
        }
        if f.syn() {
            b = b.syn();
        }
        if f.fin() {
            b = b.fin();
        }
        if f.rst() {
            b = b.rst();
        }
        if f.psh() {
            b = b.psh();
        }
        let b = b.options(&elements).unwrap();
        let mut frame = Vec::new();
        b.write(&mut frame, &payload).unwrap();
        if pad_to_60 && frame.len() < 60 {
            frame.resize(60, 0);
        }
        let p = parse_frame(&frame).unwrap();
        prop_assert_eq!(p.src_mac(), spec.src_mac);
        prop_assert_eq!(p.dst_mac(), spec.dst_mac);
        prop_assert_eq!(p.src_ip(), spec.src_ip);
        prop_assert_eq!(p.dst_ip(), spec.dst_ip);
        prop_assert_eq!(p.ttl(), spec.ttl);
        prop_assert_eq!(p.src_port(), spec.src_port);
        prop_assert_eq!(p.dst_port(), spec.dst_port);
        prop_assert_eq!(p.seq(), spec.seq);
        prop_assert_eq!(p.ack(), if f.ack() { spec.ack } else { 0 });
        prop_assert_eq!(p.flags().bits() & 0x1f, f.bits() & 0x1f);
        prop_assert_eq!(p.window(), spec.window);
        prop_assert_eq!(p.options.mss, o.mss);
        prop_assert_eq!(p.options.window_scale, o.window_scale);
        prop_assert_eq!(p.options.sack_permitted, o.sack_permitted);
        prop_assert_eq!(p.options.timestamps, o.timestamps);
        prop_assert_eq!(p.options.sack(), sack);
        prop_assert_eq!(p.payload(), &payload[..]);

        // One flipped bit in the last payload byte (before any padding) fails the TCP checksum.
        if !payload.is_empty() {
            let end = if spec.src_ip.is_v4() {
                14 + u16::from_be_bytes([frame[16], frame[17]]) as usize
            } else {
                14 + 40 + u16::from_be_bytes([frame[18], frame[19]]) as usize
            };
            frame[end - 1] ^= 0x10;
            prop_assert_eq!(parse_frame(&frame).err(), Some(DropReason::BadTcpChecksum));
        }
    }

    #[test]
    fn frame_checksum_agrees_with_internet_checksum(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        prop_assert_eq!(
            checksum::checksum(&bytes).to_be_bytes(),
            internet_checksum::checksum(&bytes)
        );
    }
}
