// SPDX-License-Identifier: (MIT OR Apache-2.0)
// synack's XDP program. To the AF_XDP socket of the queue a frame arrived on it steers:
//   - TCP to a served address (IPv4 or IPv6) and a served port;
//   - TCP to one of our addresses from a peer port: the replies to connections we opened
//     (synack load, synack::Client), whatever our ephemeral port;
//   - ICMP "fragmentation needed" (type 3 code 4) and ICMPv6 "packet too big" (type 2) whose
//     quoted datagram is TCP from a served address and port: path MTU discovery for our
//     connections (RFC 1191, RFC 8201).
// Everything else goes to the kernel unchanged: ARP, neighbour discovery and the rest of
// ICMP/ICMPv6, other addresses and ports, SSH.
//
// IPv6 extension headers are walked as far as the kernel would deliver the packet to TCP:
// Hop-by-Hop Options (first only), Destination Options, Routing with Segments Left 0 and an
// atomic Fragment header (offset 0, M clear; RFC 6946) are skipped, at most MAX_EXT of them.
// Whatever else is in the chain (a real fragment, a Routing header with segments left,
// AH/ESP, an unknown header, a longer chain) is passed to the kernel, which handles it as Linux
// does. Options inside the skipped headers are not read here: synack's parser checks them as
// Linux's ip6_parse_tlv does and counts what Linux would drop (src/wire/ipv6.rs). The quote of
// a "packet too big" is steered only when its IPv6 header is directly followed by TCP.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_QUEUES 256
#define MAX_PORTS 8
#define MAX_ADDRS 1024
#define MAX_EXT 6

// ICMP (RFC 792) and ICMPv6 (RFC 4443) headers are the same 8 bytes; linux/icmp.h would pull
// in libc headers, so the few constants are here.
struct icmp8 {
    __u8 type;
    __u8 code;
    __u16 checksum;
    __u32 rest;
};
#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMPV6_PKT_TOOBIG 2

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60

// Keep in step with src/xdp/program.rs.
enum config_index {
    CFG_NADDR4 = 0, // how many IPv4 addresses addrs4 holds
    CFG_ADDR4 = 1,  // the IPv4 address when there is exactly one (network order): no lookup
    CFG_NPORTS = 2, // how many ports follow
    CFG_PORT0 = 3,  // ports, host byte order
    CFG_NPEER = CFG_PORT0 + MAX_PORTS, // how many peer ports follow (connections we open)
    CFG_PEER0 = CFG_NPEER + 1,         // peer ports, host byte order
    CFG_LEN = CFG_PEER0 + MAX_PORTS,
};

enum counter_index {
    CNT_STEERED = 0,      // redirected to an AF_XDP socket
    CNT_PASSED = 1,       // given to the kernel
    CNT_MALFORMED = 2,    // claimed IP/TCP but was truncated: passed
    CNT_NO_SOCKET = 3,    // ours, but no socket on this queue: passed
    CNT_ICMP_STEERED = 4, // a "too big" about one of our connections, redirected
    CNT_LEN = 5,
};

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, MAX_QUEUES);
    __type(key, __u32);
    __type(value, __u32);
} xsks_map SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, CFG_LEN);
    __type(key, __u32);
    __type(value, __u32);
} config SEC(".maps");

// Served IPv4 addresses, network byte order.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAX_ADDRS);
    __type(key, __u32);
    __type(value, __u8);
} addrs4 SEC(".maps");

struct addr6 {
    __u8 b[16];
};

// Served IPv6 addresses.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAX_ADDRS);
    __type(key, struct addr6);
    __type(value, __u8);
} addrs6 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, CNT_LEN);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which)
{
    __u64 *c = bpf_map_lookup_elem(&counters, &which);
    if (c)
        *c += 1;
}

static __always_inline __u32 cfg(__u32 index)
{
    __u32 *v = bpf_map_lookup_elem(&config, &index);
    return v ? *v : 0;
}

static __always_inline int pass(void)
{
    count(CNT_PASSED);
    return XDP_PASS;
}

static __always_inline int malformed(void)
{
    count(CNT_MALFORMED);
    return pass();
}

// A served port? `port` in network byte order.
static __always_inline int served_port(__u16 port)
{
    __u16 p = bpf_ntohs(port);
    __u32 nports = cfg(CFG_NPORTS);
    int ours = 0;
#pragma unroll
    for (int i = 0; i < MAX_PORTS; i++) {
        if (i < nports && p == cfg(CFG_PORT0 + i))
            ours = 1;
    }
    return ours;
}

// The remote port of connections we opened? `port` in network byte order.
static __always_inline int peer_port(__u16 port)
{
    __u32 npeer = cfg(CFG_NPEER);
    if (npeer == 0)
        return 0;
    __u16 p = bpf_ntohs(port);
    int ours = 0;
#pragma unroll
    for (int i = 0; i < MAX_PORTS; i++) {
        if (i < npeer && p == cfg(CFG_PEER0 + i))
            ours = 1;
    }
    return ours;
}

static __always_inline int served4(__u32 addr)
{
    // The common case, one IPv4 address, costs a compare as it always did.
    __u32 n = cfg(CFG_NADDR4);
    if (n == 1)
        return addr == cfg(CFG_ADDR4);
    return n != 0 && bpf_map_lookup_elem(&addrs4, &addr) != 0;
}

static __always_inline int served6(const struct in6_addr *a)
{
    struct addr6 key;
    __builtin_memcpy(key.b, a, 16);
    return bpf_map_lookup_elem(&addrs6, &key) != 0;
}

static __always_inline int redirect(struct xdp_md *ctx, __u32 counter)
{
    __u32 queue = ctx->rx_queue_index;
    if (bpf_map_lookup_elem(&xsks_map, &queue)) {
        count(counter);
        return bpf_redirect_map(&xsks_map, queue, XDP_PASS);
    }
    count(CNT_NO_SOCKET);
    return pass();
}

static __always_inline int steer_v4(struct xdp_md *ctx, void *l3, void *end)
{
    struct iphdr *ip = l3;
    if ((void *)(ip + 1) > end)
        return malformed();
    __u32 ihl = ip->ihl * 4;
    if (ihl < sizeof(*ip))
        return malformed();
    if (ip->protocol == IPPROTO_TCP) {
        if (!served4(ip->daddr))
            return pass();
        struct tcphdr *tcp = l3 + ihl;
        if ((void *)(tcp + 1) > end)
            return malformed();
        if (!served_port(tcp->dest) && !peer_port(tcp->source))
            return pass();
        // Fragments and malformed segments still go to the socket: synack counts and drops
        // them.
        return redirect(ctx, CNT_STEERED);
    }
    if (ip->protocol != IPPROTO_ICMP || !served4(ip->daddr))
        return pass();
    struct icmp8 *icmp = l3 + ihl;
    if ((void *)(icmp + 1) > end)
        return pass();
    if (icmp->type != ICMP_DEST_UNREACH || icmp->code != ICMP_FRAG_NEEDED)
        return pass();
    // The quoted datagram: one we sent, so its source is served and its source port too.
    struct iphdr *inner = (void *)(icmp + 1);
    if ((void *)(inner + 1) > end)
        return pass();
    __u32 inner_ihl = inner->ihl * 4;
    if (inner_ihl < sizeof(*inner) || inner->protocol != IPPROTO_TCP || !served4(inner->saddr))
        return pass();
    __u16 *ports = (void *)inner + inner_ihl;
    if ((void *)(ports + 2) > end)
        return pass();
    if (!served_port(ports[0]) && !peer_port(ports[1]))
        return pass();
    return redirect(ctx, CNT_ICMP_STEERED);
}

static __always_inline int steer_v6(struct xdp_md *ctx, void *l3, void *end)
{
    struct ipv6hdr *ip6 = l3;
    if ((void *)(ip6 + 1) > end)
        return malformed();
    // Neither our TCP nor a message about it unless addressed to us.
    if (!served6(&ip6->daddr))
        return pass();
    __u8 next = ip6->nexthdr;
    void *at = (void *)(ip6 + 1);
#pragma unroll
    for (int i = 0; i < MAX_EXT; i++) {
        if (next == IPPROTO_TCP || next == IPPROTO_ICMPV6)
            break;
        __u8 *h = at;
        if ((void *)(h + 8) > end)
            return malformed();
        if (next == NEXTHDR_HOP && i != 0)
            return pass();
        if (next == NEXTHDR_ROUTING && h[3] != 0)
            return pass();
        if (next == NEXTHDR_FRAGMENT) {
            // Offset (13 bits) and M: an atomic fragment has all of them zero.
            if ((h[2] | (h[3] & 0xf9)) != 0)
                return pass();
            next = h[0];
            at = h + 8;
            continue;
        }
        if (next != NEXTHDR_HOP && next != NEXTHDR_DEST && next != NEXTHDR_ROUTING)
            return pass();
        next = h[0];
        at = h + (((__u32)h[1] + 1) * 8);
    }
    if (next == IPPROTO_TCP) {
        struct tcphdr *tcp = at;
        if ((void *)(tcp + 1) > end)
            return malformed();
        if (!served_port(tcp->dest) && !peer_port(tcp->source))
            return pass();
        return redirect(ctx, CNT_STEERED);
    }
    if (next != IPPROTO_ICMPV6)
        return pass();
    struct icmp8 *icmp = at;
    if ((void *)(icmp + 1) > end)
        return pass();
    if (icmp->type != ICMPV6_PKT_TOOBIG)
        return pass();
    struct ipv6hdr *inner = (void *)(icmp + 1);
    if ((void *)(inner + 1) > end)
        return pass();
    if (inner->nexthdr != IPPROTO_TCP || !served6(&inner->saddr))
        return pass();
    __u16 *ports = (void *)(inner + 1);
    if ((void *)(ports + 2) > end)
        return pass();
    if (!served_port(ports[0]) && !peer_port(ports[1]))
        return pass();
    return redirect(ctx, CNT_ICMP_STEERED);
}

SEC("xdp")
int steer(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return pass();
    if (eth->h_proto == bpf_htons(ETH_P_IP))
        return steer_v4(ctx, (void *)(eth + 1), end);
    if (eth->h_proto == bpf_htons(ETH_P_IPV6))
        return steer_v6(ctx, (void *)(eth + 1), end);
    return pass();
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
