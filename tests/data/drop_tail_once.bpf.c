// SPDX-License-Identifier: GPL-2.0
// A tc program (cls_bpf, direct action) for tests/veth.rs: it drops the first copy of every data
// segment with PSH that synack (source port 8080) sends, and lets every later copy of the same
// segment (same destination address and port, same sequence number) pass. synack sets PSH on
// the segment that ends what it has to send, so each response loses its tail once, and nothing
// the client sends afterwards can bring it back: only synack's timers (tail loss probe,
// retransmission timeout) can. This machine has no netem (../shared/TESTBED.md), hence a program
// of our own. Attached where every frame of the server passes exactly once (the server side of
// the bridge in the two-client test), so a copy sent to the wrong host is counted there.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// IPv4 and IPv6 alike: an IPv4 destination is kept IPv4-mapped (::ffff:a.b.c.d), so the two
// families never share a key. IPv6 segments are taken only without extension headers (synack
// sends none).
struct seg_key {
	__u8 daddr[16];
	__u32 seq;
	__u16 dport;
	__u16 pad;
};

// The segments dropped once; LRU so that a long test cannot fill it.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct seg_key);
	__type(value, __u8);
} seen SEC(".maps");

SEC("tc")
int drop_tail_once(struct __sk_buff *skb)
{
	struct ethhdr eth;
	struct tcphdr tcp;
	struct seg_key k = {};
	__u32 l4, payload;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
		return TC_ACT_OK;
	if (eth.h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		__u32 ihl;

		if (bpf_skb_load_bytes(skb, sizeof(eth), &ip, sizeof(ip)) < 0 ||
		    ip.protocol != IPPROTO_TCP)
			return TC_ACT_OK;
		ihl = ip.ihl * 4;
		if (ihl < sizeof(ip) || ihl > 60)
			return TC_ACT_OK;
		l4 = sizeof(eth) + ihl;
		if (bpf_skb_load_bytes(skb, l4, &tcp, sizeof(tcp)) < 0)
			return TC_ACT_OK;
		payload = bpf_ntohs(ip.tot_len) - ihl - tcp.doff * 4;
		k.daddr[10] = 0xff;
		k.daddr[11] = 0xff;
		__builtin_memcpy(&k.daddr[12], &ip.daddr, 4);
	} else if (eth.h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, sizeof(eth), &ip6, sizeof(ip6)) < 0 ||
		    ip6.nexthdr != IPPROTO_TCP)
			return TC_ACT_OK;
		l4 = sizeof(eth) + sizeof(ip6);
		if (bpf_skb_load_bytes(skb, l4, &tcp, sizeof(tcp)) < 0)
			return TC_ACT_OK;
		payload = bpf_ntohs(ip6.payload_len) - tcp.doff * 4;
		__builtin_memcpy(k.daddr, &ip6.daddr, 16);
	} else {
		return TC_ACT_OK;
	}
	if (tcp.source != bpf_htons(8080) || !tcp.psh)
		return TC_ACT_OK;
	if (payload == 0 || payload > 65535)
		return TC_ACT_OK;
	k.seq = tcp.seq;
	k.dport = tcp.dest;
	__u8 one = 1;
	// BPF_NOEXIST: only the first copy inserts, and only it is dropped.
	if (bpf_map_update_elem(&seen, &k, &one, BPF_NOEXIST) == 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
