#!/bin/bash
# Captures the ICMP "fragmentation needed" and ICMPv6 "packet too big" frames that a Linux
# router sends back for a too-big TCP segment, into linux-icmpv4-frag-needed.bin and
# linux-icmpv6-packet-too-big.bin (whole Ethernet frames), which src/wire/icmp.rs's tests parse.
# Needs root, tcpdump and scapy (/usr/bin/python3). Namespaces: i10wa (sender, "synack"),
# i10wr (router, 1280-byte link onwards), i10wb (receiver).
set -e
A=i10wa; R=i10wr; B=i10wb
OUT=$(cd "$(dirname "$0")" && pwd)
TMP=
cleanup() {
    ip netns del $A 2>/dev/null || true
    ip netns del $R 2>/dev/null || true
    ip netns del $B 2>/dev/null || true
    if [ -n "$TMP" ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT
cleanup
TMP=$(mktemp -d)
for n in $A $R $B; do ip netns add $n; ip -n $n link set lo up; done
ip link add i10wa0 netns $A type veth peer name i10wr0 netns $R
ip link add i10wr1 netns $R type veth peer name i10wb0 netns $B
ip -n $A link set i10wa0 address 02:00:00:00:00:01
ip -n $R link set i10wr0 address 02:00:00:00:00:fe
ip -n $R link set i10wr1 mtu 1280
for x in "$A i10wa0" "$R i10wr0" "$R i10wr1" "$B i10wb0"; do set -- $x; ip -n $1 link set $2 up; done
ip -n $A addr add 198.18.0.1/16 dev i10wa0
ip -n $A addr add fd00:198:18::1/64 dev i10wa0 nodad
ip -n $R addr add 198.18.0.254/16 dev i10wr0
ip -n $R addr add fd00:198:18::fe/64 dev i10wr0 nodad
ip -n $R addr add 198.19.0.254/16 dev i10wr1
ip -n $R addr add fd00:198:19::fe/64 dev i10wr1 nodad
ip -n $B addr add 198.19.0.2/16 dev i10wb0
ip -n $B addr add fd00:198:19::2/64 dev i10wb0 nodad
ip -n $A route add 198.19.0.0/16 via 198.18.0.254
ip -n $A -6 route add fd00:198:19::/64 via fd00:198:18::fe
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip netns exec $A tcpdump -i i10wa0 -w "$TMP/cap.pcap" -U "icmp or icmp6" 2>/dev/null &
TD=$!
sleep 1
ip netns exec $A /usr/bin/python3 - <<'PY'
from scapy.all import IP, IPv6, TCP, Raw, send, conf
conf.verb = 0
tcp = dict(sport=8080, dport=58674, seq=0x12345678, ack=0x9abcdef0, flags="PA", window=502)
send(IP(src="198.18.0.1", dst="198.19.0.2", flags="DF", id=0) / TCP(**tcp) / Raw(b"x" * 1460))
send(IPv6(src="fd00:198:18::1", dst="fd00:198:19::2") / TCP(**tcp) / Raw(b"y" * 1440))
PY
sleep 1
kill $TD; wait $TD || true
/usr/bin/python3 - "$TMP/cap.pcap" "$OUT" <<'PY'
import sys
from scapy.all import rdpcap, raw
for p in rdpcap(sys.argv[1]):
    b = raw(p)
    if b[12:14] == b"\x08\x00" and b[23] == 1 and b[34] == 3:
        open(sys.argv[2] + "/linux-icmpv4-frag-needed.bin", "wb").write(b)
    if b[12:14] == b"\x86\xdd" and b[20] == 58 and b[54] == 2:
        open(sys.argv[2] + "/linux-icmpv6-packet-too-big.bin", "wb").write(b)
PY
