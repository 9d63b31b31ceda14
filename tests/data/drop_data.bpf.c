// SPDX-License-Identifier: GPL-2.0
// A tc program (cls_bpf, direct action) for tests/veth.rs: on the client's ingress it drops about
// one in 20 frames that carry data (200 bytes or more), at random, so that synack must retransmit
// to a real Linux receiver. The handshake, ACKs and FINs pass, which keeps the test's duration
// bounded. This machine has no netem (../shared/TESTBED.md), hence a program of our own.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int drop_data(struct __sk_buff *skb)
{
	if (skb->len < 200)
		return TC_ACT_OK;
	return bpf_get_prandom_u32() % 20 == 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
