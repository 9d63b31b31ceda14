//! Byte-array tests of the wire formats, cross-checked against etherparse, and property tests.

use super::tcp::SackBlock;
use super::*;
use proptest::prelude::*;

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const CLIENT: u32 = u32::from_be_bytes([198, 18, 0, 2]);
const SERVER: u32 = u32::from_be_bytes([198, 18, 0, 1]);

/// A SYN as Linux 6.x sends it: MSS 1460, SACK-permitted, timestamps, NOP, window scale 7.
fn linux_syn() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&SERVER_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    // IPv4: 20 + 40 bytes, DF, TTL 64, TCP
    let ip = [
        0x45, 0x00, 0x00, 0x3c, 0x8e, 0x4a, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 198, 18, 0, 2, 198,
        18, 0, 1,
    ];
    f.extend_from_slice(&ip);
    let tcp = [
        0x9c, 0x40, 0x1f, 0x90, // ports 40000 -> 8080
        0x3b, 0x9a, 0xca, 0x00, // seq 1000000000
        0x00, 0x00, 0x00, 0x00, // ack 0
        0xa0, 0x02, 0xfa, 0xf0, // data offset 10, SYN, window 64240
        0x00, 0x00, 0x00, 0x00, // checksum, urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0a, 0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, // TS val 100 ecr 0
        0x01, // NOP
        0x03, 0x03, 0x07, // WS 7
    ];
    f.extend_from_slice(&tcp);
    fix_checksums(&mut f);
    f
}

/// Recomputes the IPv4 and TCP checksums of a frame built by hand.
fn fix_checksums(f: &mut [u8]) {
    let ihl = ((f[14] & 0x0f) as usize) * 4;
    let total = u16::from_be_bytes([f[16], f[17]]) as usize;
    if ihl < 20 || 14 + total > f.len() || total < ihl + 20 {
        return; // lengths are broken on purpose: nothing to fix
    }
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let t = 14 + ihl;
    f[t + 16..t + 18].copy_from_slice(&[0, 0]);
    let src = u32::from_be_bytes([f[26], f[27], f[28], f[29]]);
    let dst = u32::from_be_bytes([f[30], f[31], f[32], f[33]]);
    let seg = &f[t..14 + total];
    let c = !checksum::fold(checksum::sum(
        seg,
        checksum::pseudo_header_sum(src, dst, 6, seg.len() as u16),
    ));
    f[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn parses_a_linux_syn() {
    let f = linux_syn();
    let p = parse_frame(&f).unwrap();
    assert_eq!(p.src_mac, CLIENT_MAC);
    assert_eq!(p.dst_mac, SERVER_MAC);
    assert_eq!((p.src_ip, p.dst_ip), (CLIENT, SERVER));
    assert_eq!((p.src_port, p.dst_port), (40000, 8080));
    assert_eq!(p.seq, 1_000_000_000);
    assert_eq!(p.flags, TcpFlags::SYN);
    assert_eq!(p.window, 64240);
    assert_eq!(p.options.mss, Some(1460));
    assert!(p.options.sack_permitted);
    assert_eq!(p.options.timestamps, Some((100, 0)));
    assert_eq!(p.options.window_scale, Some(7));
    assert!(p.payload.is_empty());
    let s = p.to_segment_in();
    assert_eq!(s.tuple.remote_port, 40000);
    assert_eq!(s.tuple.local_ip, SERVER);
    // etherparse agrees on the checksums
    let e = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
    if let Some(etherparse::TransportSlice::Tcp(t)) = e.transport {
        assert_eq!(
            t.calc_checksum_ipv4([198, 18, 0, 2], [198, 18, 0, 1])
                .unwrap(),
            t.checksum()
        );
    } else {
        panic!("etherparse saw no TCP");
    }
}

#[test]
fn builds_a_syn_ack_byte_for_byte() {
    let spec = FrameSpec {
        src_mac: SERVER_MAC,
        dst_mac: CLIENT_MAC,
        src_ip: SERVER,
        dst_ip: CLIENT,
        ttl: 64,
        ip_id: 0,
        src_port: 8080,
        dst_port: 40000,
        seq: 0x0102_0304,
        ack: 1_000_000_001,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 65160,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(3),
            sack_permitted: true,
            timestamps: Some((7, 100)),
            ..TcpOptions::default()
        },
    };
    let mut buf = [0u8; 128];
    let hdr = tcp_headers_len(&spec.options);
    assert_eq!(hdr, 14 + 20 + 40);
    let n = build_tcp_frame(&mut buf, &spec, 0).unwrap();
    assert_eq!(n, 74);
    let mut expected = Vec::new();
    expected.extend_from_slice(&CLIENT_MAC);
    expected.extend_from_slice(&SERVER_MAC);
    expected.extend_from_slice(&[0x08, 0x00]);
    expected.extend_from_slice(&[
        0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ]);
    expected.extend_from_slice(&[
        0x1f, 0x90, 0x9c, 0x40, 0x01, 0x02, 0x03, 0x04, 0x3b, 0x9a, 0xca, 0x01, 0xa0, 0x12, 0xfe,
        0x88, 0, 0, 0, 0, // Linux's layout: MSS, SACKP+TS, NOP+WS
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0, 0, 0, 7, 0, 0, 0, 100, 0x01, 0x03, 0x03,
        0x03,
    ]);
    fix_checksums(&mut expected);
    assert_eq!(&buf[..n], &expected[..]);
    // and it parses back
    let p = parse_frame(&buf[..n]).unwrap();
    assert_eq!(p.options, spec.options);
}

#[test]
fn option_layouts_follow_linux() {
    let mut b = [0u8; 40];
    let ts_only = TcpOptions {
        timestamps: Some((1, 2)),
        ..TcpOptions::default()
    };
    assert_eq!(write_options_len(&mut b, &ts_only), 12);
    assert_eq!(&b[..4], &[1, 1, 8, 10]);
    let mut sack = TcpOptions {
        timestamps: Some((1, 2)),
        sack_count: 1,
        ..TcpOptions::default()
    };
    sack.sack_blocks[0] = SackBlock {
        left: 10,
        right: 20,
    };
    assert_eq!(write_options_len(&mut b, &sack), 24);
    assert_eq!(&b[12..16], &[1, 1, 5, 10]);
    let sackp_only = TcpOptions {
        sack_permitted: true,
        ..TcpOptions::default()
    };
    assert_eq!(write_options_len(&mut b, &sackp_only), 4);
    assert_eq!(&b[..4], &[1, 1, 4, 2]);
    // at most 3 SACK blocks beside timestamps, 4 without
    let mut many = TcpOptions {
        sack_count: 4,
        ..TcpOptions::default()
    };
    assert_eq!(write_options_len(&mut b, &many), 36);
    many.timestamps = Some((0, 0));
    assert_eq!(write_options_len(&mut b, &many), 40);
}

fn write_options_len(b: &mut [u8; 40], o: &TcpOptions) -> usize {
    let n = tcp::write_options(b, o);
    assert_eq!(n, tcp::options_len(o));
    assert_eq!(n % 4, 0);
    n
}

#[test]
fn ethernet_padding_is_ignored() {
    // A bare ACK is 54 bytes; the sender pads it to 60. The padding must not count as payload
    // nor break the checksum.
    let spec = FrameSpec {
        src_mac: CLIENT_MAC,
        dst_mac: SERVER_MAC,
        src_ip: CLIENT,
        dst_ip: SERVER,
        ttl: 64,
        ip_id: 9,
        src_port: 40000,
        dst_port: 8080,
        seq: 5,
        ack: 6,
        flags: TcpFlags::ACK,
        window: 100,
        options: TcpOptions::default(),
    };
    let mut buf = [0xeeu8; 60];
    let n = build_tcp_frame(&mut buf, &spec, 0).unwrap();
    assert_eq!(n, 54);
    let p = parse_frame(&buf).unwrap();
    assert!(p.payload.is_empty());
    assert_eq!(p.ack, 6);
}

#[test]
fn ipv4_options_are_tolerated() {
    let mut f = linux_syn();
    // insert 4 bytes of IPv4 options (NOP NOP NOP EOL) after the 20-byte IP header
    f.splice(34..34, [1u8, 1, 1, 0]);
    f[14] = 0x46;
    let total = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_checksums(&mut f);
    let p = parse_frame(&f).unwrap();
    assert_eq!(p.options.mss, Some(1460));
}

#[test]
fn each_bad_input_has_its_reason() {
    let good = linux_syn();
    let check = |f: &[u8], why: DropReason| assert_eq!(parse_frame(f).unwrap_err(), why);
    check(&good[..10], DropReason::TooShort);
    let mut f = good.clone();
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    check(&f, DropReason::NotIpv4);
    let mut f = good.clone();
    f[14] = 0x65;
    check(&f, DropReason::BadIpVersion);
    let mut f = good.clone();
    f[14] = 0x44;
    check(&f, DropReason::BadIpHeaderLength);
    let mut f = good.clone();
    f[16..18].copy_from_slice(&2000u16.to_be_bytes());
    check(&f, DropReason::BadIpTotalLength);
    let mut f = good.clone();
    f[22] ^= 1; // TTL changed, checksum not
    check(&f, DropReason::BadIpChecksum);
    let mut f = good.clone();
    f[20] = 0x20; // MF
    fix_checksums(&mut f);
    check(&f, DropReason::Fragment);
    let mut f = good.clone();
    f[20..22].copy_from_slice(&[0x00, 0x10]); // offset 16
    fix_checksums(&mut f);
    check(&f, DropReason::Fragment);
    let mut f = good.clone();
    f[23] = 17;
    fix_checksums(&mut f);
    check(&f, DropReason::NotTcp);
    let mut f = good.clone();
    f[46] = 0x40; // data offset 4
    fix_checksums(&mut f);
    check(&f, DropReason::BadTcpHeaderLength);
    let mut f = good.clone();
    f[46] = 0xf0; // data offset 15 > segment
    fix_checksums(&mut f);
    check(&f, DropReason::BadTcpHeaderLength);
    let mut f = good.clone();
    f[40] ^= 0x55; // seq changed
    check(&f, DropReason::BadTcpChecksum);
    // option length running past the header
    let mut f = good.clone();
    f[55] = 40; // MSS length 40
    fix_checksums(&mut f);
    check(&f, DropReason::BadTcpOptions);
    // option length below 2
    let mut f = good.clone();
    f[55] = 1;
    fix_checksums(&mut f);
    check(&f, DropReason::BadTcpOptions);
}

#[test]
fn a_wrong_option_length_within_the_header_is_skipped_like_linux() {
    // MSS with length 3 followed by a NOP: the MSS is ignored, the SYN is kept.
    let o = tcp::parse_options(&[2, 3, 5, 1, 4, 2, 1, 1]).unwrap();
    assert_eq!(o.mss, None);
    assert!(o.sack_permitted);
    // unknown option kinds are skipped by their length
    let o = tcp::parse_options(&[30, 4, 0, 0, 3, 3, 9, 0]).unwrap();
    assert_eq!(o.window_scale, Some(9));
    // EOL ends the list
    let o = tcp::parse_options(&[0, 2, 4, 5, 0xb4]).unwrap();
    assert_eq!(o.mss, None);
    // a missing length byte is malformed
    assert!(tcp::parse_options(&[1, 2]).is_err());
}

#[test]
fn parsing_is_zero_copy() {
    let spec = FrameSpec {
        src_mac: CLIENT_MAC,
        dst_mac: SERVER_MAC,
        src_ip: CLIENT,
        dst_ip: SERVER,
        ttl: 64,
        ip_id: 1,
        src_port: 1,
        dst_port: 2,
        seq: 3,
        ack: 4,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 5,
        options: TcpOptions::default(),
    };
    let mut buf = [0u8; 200];
    let h = tcp_headers_len(&spec.options);
    buf[h..h + 5].copy_from_slice(b"hello");
    let n = build_tcp_frame(&mut buf, &spec, 5).unwrap();
    let p = parse_frame(&buf[..n]).unwrap();
    assert_eq!(p.payload, b"hello");
    assert_eq!(
        p.payload.as_ptr(),
        buf[h..].as_ptr(),
        "the payload is a view into the frame"
    );
}

#[test]
fn etherparse_frames_parse_and_ours_parse_in_etherparse() {
    let builder = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, SERVER_MAC)
        .ipv4([198, 18, 0, 2], [198, 18, 0, 1], 64)
        .tcp(40000, 8080, 77, 1000)
        .ack(88)
        .psh();
    let payload = b"GET / HTTP/1.1\r\n\r\n";
    let mut f = Vec::new();
    builder.write(&mut f, payload).unwrap();
    let p = parse_frame(&f).unwrap();
    assert_eq!(p.payload, payload);
    assert_eq!((p.seq, p.ack, p.window), (77, 88, 1000));
    assert!(p.flags.ack() && p.flags.psh());
}

fn arb_options() -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..15),
        any::<bool>(),
        proptest::option::of((any::<u32>(), any::<u32>())),
        0u8..5,
        any::<[u32; 8]>(),
    )
        .prop_map(|(mss, ws, sp, ts, n, b)| {
            let mut o = TcpOptions {
                mss,
                window_scale: ws,
                sack_permitted: sp,
                timestamps: ts,
                ..TcpOptions::default()
            };
            // SACK blocks only on segments without SYN options, as synack sends them
            if mss.is_none() && ws.is_none() {
                let max = if ts.is_some() { 3 } else { 4 };
                o.sack_count = n.min(max);
                for i in 0..o.sack_count as usize {
                    o.sack_blocks[i] = SackBlock {
                        left: b[2 * i],
                        right: b[2 * i + 1],
                    };
                }
            }
            o
        })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(f in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_frame(&f);
    }

    #[test]
    fn random_option_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = tcp::parse_options(&b);
    }

    #[test]
    fn mutated_valid_frames_never_panic(i in 0usize..74, v in any::<u8>()) {
        let mut f = linux_syn();
        let i = i % f.len();
        f[i] = v;
        let _ = parse_frame(&f);
        fix_checksums(&mut f);
        let _ = parse_frame(&f);
    }

    #[test]
    fn build_then_parse_round_trips(
        opts in arb_options(),
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
        seq in any::<u32>(), ack in any::<u32>(), window in any::<u16>(), flags in any::<u8>(),
        sport in any::<u16>(), dport in any::<u16>(),
    ) {
        let spec = FrameSpec {
            src_mac: SERVER_MAC, dst_mac: CLIENT_MAC, src_ip: SERVER, dst_ip: CLIENT, ttl: 64,
            ip_id: 7, src_port: sport, dst_port: dport, seq, ack, flags: TcpFlags(flags), window, options: opts,
        };
        let mut buf = vec![0u8; 2048];
        let h = tcp_headers_len(&opts);
        buf[h..h + payload.len()].copy_from_slice(&payload);
        let n = build_tcp_frame(&mut buf, &spec, payload.len()).unwrap();
        let p = parse_frame(&buf[..n]).unwrap();
        prop_assert_eq!(p.options, opts);
        prop_assert_eq!(p.payload, &payload[..]);
        prop_assert_eq!((p.seq, p.ack, p.window, p.flags.bits()), (seq, ack, window, flags));
        // etherparse validates our checksums independently
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&buf[14..n]).unwrap();
        let e = etherparse::SlicedPacket::from_ethernet(&buf[..n]).unwrap();
        let Some(etherparse::TransportSlice::Tcp(t)) = e.transport else { panic!("no tcp") };
        prop_assert_eq!(t.calc_checksum_ipv4(ip.source(), ip.destination()).unwrap(), t.checksum());
        prop_assert_eq!(ip.to_header().calc_header_checksum(), ip.header_checksum());
    }

    #[test]
    fn a_too_small_buffer_is_an_error_not_a_panic(len in 0usize..80, payload in 0usize..40) {
        let spec = FrameSpec {
            src_mac: SERVER_MAC, dst_mac: CLIENT_MAC, src_ip: SERVER, dst_ip: CLIENT, ttl: 64, ip_id: 0,
            src_port: 1, dst_port: 2, seq: 0, ack: 0, flags: TcpFlags::ACK, window: 0,
            options: TcpOptions { mss: Some(1), ..TcpOptions::default() },
        };
        let mut buf = vec![0u8; len];
        let r = build_tcp_frame(&mut buf, &spec, payload);
        prop_assert_eq!(r.is_ok(), len >= 58 + payload);
    }
}
