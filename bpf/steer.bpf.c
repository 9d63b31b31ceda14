// SPDX-License-Identifier: (MIT OR Apache-2.0)
// synack's XDP program: IPv4 TCP for the served address and ports goes to the AF_XDP socket
// of the queue it arrived on; everything else (ARP, IPv6, ICMP, other ports, SSH) is passed
// to the kernel unchanged.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_QUEUES 256
#define MAX_PORTS 8

// Keep in step with src/xdp/program.rs.
enum config_index {
    CFG_ADDR = 0,   // served IPv4 address, network byte order
    CFG_NPORTS = 1, // how many ports follow
    CFG_PORT0 = 2,  // ports, host byte order
    CFG_LEN = CFG_PORT0 + MAX_PORTS,
};

enum counter_index {
    CNT_STEERED = 0,   // redirected to an AF_XDP socket
    CNT_PASSED = 1,    // given to the kernel
    CNT_MALFORMED = 2, // claimed IPv4/TCP but was truncated
    CNT_NO_SOCKET = 3, // ours, but no socket on this queue: passed
    CNT_LEN = 4,
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

SEC("xdp")
int steer(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return pass();
    if (eth->h_proto != bpf_htons(ETH_P_IP))
        return pass();

    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end) {
        count(CNT_MALFORMED);
        return pass();
    }
    if (ip->protocol != IPPROTO_TCP || ip->daddr != cfg(CFG_ADDR))
        return pass();
    __u32 ihl = ip->ihl * 4;
    if (ihl < sizeof(*ip)) {
        count(CNT_MALFORMED);
        return pass();
    }
    struct tcphdr *tcp = (void *)ip + ihl;
    if ((void *)(tcp + 1) > end) {
        count(CNT_MALFORMED);
        return pass();
    }
    __u16 dport = bpf_ntohs(tcp->dest);
    __u32 nports = cfg(CFG_NPORTS);
    int ours = 0;
#pragma unroll
    for (int i = 0; i < MAX_PORTS; i++) {
        if (i < nports && dport == cfg(CFG_PORT0 + i))
            ours = 1;
    }
    if (!ours)
        return pass();

    // Fragments and malformed segments still go to the socket: synack counts and drops them.
    __u32 queue = ctx->rx_queue_index;
    if (bpf_map_lookup_elem(&xsks_map, &queue)) {
        count(CNT_STEERED);
        return bpf_redirect_map(&xsks_map, queue, XDP_PASS);
    }
    count(CNT_NO_SOCKET);
    return pass();
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
