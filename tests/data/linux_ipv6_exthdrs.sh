#!/bin/bash
# Sends SYNs with IPv6 extension-header chains to Linux (two namespaces over a veth pair, the
# kernel's default sysctls, no listener: a SYN the kernel delivers to TCP is answered with a
# RST) and prints which ones it answered. The cases and Linux 6.18's answers are copied into
# src/wire/ipv6.rs's test `linux_6_18_takes_the_same_packets`; rerun after a kernel change.
# Needs root and scapy (/usr/bin/python3). Namespaces: i10wc (client), i10ws (Linux).
set -e
C=i10wc; S=i10ws
cleanup() { ip netns del $C 2>/dev/null || true; ip netns del $S 2>/dev/null || true; }
trap cleanup EXIT
cleanup
for n in $C $S; do ip netns add $n; ip -n $n link set lo up; done
ip link add i10wc0 netns $C type veth peer name i10ws0 netns $S
ip -n $C link set i10wc0 address 02:00:00:00:00:02 up
ip -n $S link set i10ws0 address 02:00:00:00:00:01 up
ip -n $C addr add fd00:198:18::2/64 dev i10wc0 nodad
ip -n $S addr add fd00:198:18::1/64 dev i10ws0 nodad
ip -n $C neigh add fd00:198:18::1 lladdr 02:00:00:00:00:01 dev i10wc0
ip -n $S neigh add fd00:198:18::2 lladdr 02:00:00:00:00:02 dev i10ws0
uname -r
ip netns exec $C /usr/bin/python3 - <<'PY'
import json
from scapy.all import IPv6, TCP, Raw, Ether, sendp, AsyncSniffer, conf
import time
conf.verb = 0
SRC, DST = "fd00:198:18::2", "fd00:198:18::1"
SERVER = bytes.fromhex("fd000198001800000000000000000001")

def opts_hdr(nxt, opts):
    h = bytes([nxt, 0]) + bytes(opts)
    pad = (8 - len(h) % 8) % 8
    if pad == 1: h += b"\x00"
    elif pad > 1: h += bytes([1, pad - 2]) + bytes(pad - 2)
    return bytes([h[0], len(h) // 8 - 1]) + h[2:]

def rt(nxt, typ, sl):
    return bytes([nxt, 2, typ, sl, 0, 0, 0, 0]) + SERVER

def frag(nxt, off, m):
    v = (off << 3) | m
    return bytes([nxt, 0, v >> 8, v & 255, 0, 0, 0x12, 0x34])

T, H, D, R, F, A = 6, 0, 60, 43, 44, 51
cases = [
    ("plain", T, b""),
    ("hbh", H, opts_hdr(T, [])),
    ("dst", D, opts_hdr(T, [])),
    ("hbh dst rt0", H, opts_hdr(D, []) + opts_hdr(R, [5, 2, 0, 0]) + rt(T, 0, 0)),
    ("dst rt4 dst", D, opts_hdr(R, []) + rt(D, 4, 0) + opts_hdr(T, [0x31, 0])),
    ("dst hbh", D, opts_hdr(H, []) + opts_hdr(T, [])),
    ("atomic fragment", F, frag(T, 0, 0)),
    ("first fragment", F, frag(T, 0, 1)),
    ("rt0 sl1", R, rt(T, 0, 1)),
    ("rt0 sl0", R, rt(T, 0, 0)),
    ("rt2 sl0", R, rt(T, 2, 0)),
    ("rt3 sl0", R, rt(T, 3, 0)),
    ("rt4 sl0", R, rt(T, 4, 0)),
    ("rt253 sl0", R, rt(T, 253, 0)),
    ("dst unknown 01", D, opts_hdr(T, [0x7e, 0])),
    ("dst unknown 10", D, opts_hdr(T, [0xbe, 0])),
    ("dst unknown 00", D, opts_hdr(T, [0x3e, 3, 1, 2, 3])),
    ("dst ra", D, opts_hdr(T, [5, 2, 0, 0])),
    ("hbh ra len2", H, opts_hdr(T, [5, 2, 0, 0])),
    ("hbh ra len4", H, opts_hdr(T, [5, 4, 0, 0, 0, 0])),
    ("hbh jumbo", H, opts_hdr(T, [0xc2, 4, 0, 1, 0, 0])),
    ("8 options", D, opts_hdr(T, [0x3e, 0] * 8)),
    ("9 options", D, opts_hdr(T, [0x3e, 0] * 9)),
    ("pad 7", D, bytes([T, 1, 1, 5, 0, 0, 0, 0, 0, 0x3e, 0, 1, 3, 0, 0, 0])),
    ("pad1 x8", D, bytes([T, 1, 0x3e, 0]) + bytes(8) + bytes([1, 2, 0, 0])),
    ("padn 12", D, bytes([T, 1, 1, 12]) + bytes(12)),
    ("padn nonzero", D, bytes([T, 0, 1, 4, 0, 0, 1, 0])),
    ("option past end", D, bytes([T, 0, 0x3e, 5, 0, 0, 0, 0])),
    ("8 dst", D, b"".join(opts_hdr(D if i < 7 else T, []) for i in range(8))),
    ("9 dst", D, b"".join(opts_hdr(D if i < 8 else T, []) for i in range(9))),
    ("ah", A, bytes([T, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2])),
]
sn = AsyncSniffer(iface="i10wc0", filter="ip6 and tcp and src port 8080")
sn.start()
time.sleep(0.5)
for i, (name, first, exts) in enumerate(cases):
    sport = 40000 + i
    tcp = bytes(IPv6(src=SRC, dst=DST) / TCP(sport=sport, dport=8080, flags="S", seq=1000))[40:]
    pkt = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / IPv6(src=SRC, dst=DST, nh=first) / Raw(exts + tcp)
    sendp(pkt, iface="i10wc0")
time.sleep(1)
got = {p[TCP].dport for p in sn.stop()}
for i, (name, first, exts) in enumerate(cases):
    print(f"{name:20} {'ANSWERED' if 40000 + i in got else 'dropped'}")
PY
