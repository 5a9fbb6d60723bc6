/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pkt.h - parse the headers tc needs: Ethernet, IPv4 or IPv6 (skipping up to
 * four extension headers), and the TCP/UDP ports. Addresses come out in the
 * 16-byte IPv4-mapped form the maps use.
 */
#ifndef SL_BPF_PKT_H
#define SL_BPF_PKT_H

#include "common.h"

#define ETH_P_IP   0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_ARP  0x0806
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

struct pkt {
	__u16 l3;           /* ETH_P_* (host order) */
	__u8 proto;         /* L4 protocol, 0 if not reached */
	__u8 tcp_flags;
	bool l4;            /* ports valid (not a later fragment) */
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
};

static __always_inline void map_v4(__be32 out[4], __be32 a)
{
	out[0] = 0;
	out[1] = 0;
	out[2] = bpf_htonl(0xffff);
	out[3] = a;
}

/* 0 on success, -1 on a truncated or malformed packet. */
static __always_inline int pkt_parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	void *l4;
	__u8 nh;

	__builtin_memset(p, 0, sizeof(*p));
	if ((void *)(eth + 1) > end)
		return -1;
	p->l3 = bpf_ntohs(eth->h_proto);
	if (p->l3 == ETH_P_IP) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return -1;
		map_v4(p->saddr, ip->saddr);
		map_v4(p->daddr, ip->daddr);
		nh = ip->protocol;
		/* a later fragment carries no ports */
		if (ip->frag_off & bpf_htons(0x1fff)) {
			p->proto = nh;
			return 0;
		}
		l4 = (void *)ip + ip->ihl * 4;
	} else if (p->l3 == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return -1;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		nh = ip6->nexthdr;
		l4 = ip6 + 1;
#pragma unroll
		for (int i = 0; i < 4; i++) {
			struct ipv6_opt_hdr *o = l4;

			if (nh != 0 && nh != 43 && nh != 60 && nh != 44)
				break;
			if ((void *)(o + 1) > end)
				return -1;
			if (nh == 44) { /* fragment: 8 bytes, offset in bits 3..15 */
				struct frag_hdr *f = l4;

				if ((void *)(f + 1) > end)
					return -1;
				if (f->frag_off & bpf_htons(0xfff8)) {
					p->proto = f->nexthdr;
					return 0;
				}
				nh = f->nexthdr;
				l4 += 8;
			} else {
				nh = o->nexthdr;
				l4 += (o->hdrlen + 1) * 8;
			}
		}
	} else {
		return 0;
	}
	p->proto = nh;
	if (nh == IPPROTO_TCP) {
		struct tcphdr *t = l4;

		if ((void *)(t + 1) > end)
			return -1;
		p->sport = t->source;
		p->dport = t->dest;
		p->tcp_flags = ((__u8 *)t)[13];
		p->l4 = true;
	} else if (nh == IPPROTO_UDP) {
		struct udphdr *u = l4;

		if ((void *)(u + 1) > end)
			return -1;
		p->sport = u->source;
		p->dport = u->dest;
		p->l4 = true;
	}
	return 0;
}

#endif /* SL_BPF_PKT_H */
