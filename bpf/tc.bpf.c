// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc.bpf.c - programs on each local pod's host-side veth.
 *
 *   sl_from_pod (tc ingress: packets the pod sends): anti-spoofing. The
 *     source address must be the pod's own (IPv6 also: :: for DAD, link-local
 *     for neighbour discovery); anything else is dropped and counted. UDP
 *     datagrams are remembered in sl_udpflow so their replies get in.
 *   sl_to_pod (tc egress: packets delivered to the pod): server-side L4
 *     authorization for traffic the client-side socket hooks never saw
 *     (another node, outside the mesh): a denied TCP SYN or UDP datagram is
 *     dropped and counted. Only SYNs are checked: an established connection
 *     was allowed when it began, and policy changes leave it alone.
 */
#include "lib/common.h"
#include "lib/pkt.h"
#include "lib/policy.h"
#include "lib/flow.h"
#include "lib/proxy.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TC_ACT_OK   0
#define TC_ACT_SHOT 2

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_UDPFLOW);
	__type(key, struct sl_udpflow_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_udpflow SEC(".maps");

static __always_inline bool addr_eq(const __be32 a[4], const __be32 b[4])
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

static __always_inline bool v6_src_ok(const struct sl_endpoint *ep, const struct pkt *p)
{
	/* DAD probes come from ::, neighbour discovery from link-local */
	if (!(p->saddr[0] | p->saddr[1] | p->saddr[2] | p->saddr[3]))
		return p->proto == 58;
	if ((p->saddr[0] & bpf_htonl(0xffc00000)) == bpf_htonl(0xfe800000))
		return p->proto == 58;
	return (ep->flags & SL_EP_HAS_V6) && addr_eq(p->saddr, ep->addr6);
}

SEC("tc")
int sl_from_pod(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct sl_endpoint *ep = bpf_map_lookup_elem(&sl_endpoints, &ifindex);
	struct pkt p;
	bool ok;

	if (!ep)
		return TC_ACT_OK;
	if (pkt_parse(skb, &p))
		goto drop;
	if (p.l3 == ETH_P_IP)
		ok = (ep->flags & SL_EP_HAS_V4) && p.saddr[3] == ep->addr4;
	else if (p.l3 == ETH_P_IPV6)
		ok = v6_src_ok(ep, &p);
	else
		return TC_ACT_OK; /* ARP and other non-IP: not routed by the node */
	if (!ok)
		goto drop;
	if (p.proto == IPPROTO_UDP && p.l4) {
		struct sl_udpflow_key k = {};
		__u8 one = 1;

		__builtin_memcpy(k.pod_addr, p.saddr, 16);
		__builtin_memcpy(k.peer_addr, p.daddr, 16);
		k.pod_port = p.sport;
		k.peer_port = p.dport;
		if (!bpf_map_lookup_elem(&sl_udpflow, &k))
			bpf_map_update_elem(&sl_udpflow, &k, &one, BPF_ANY);
	}
	return TC_ACT_OK;
drop:
	count_drop(SL_DROP_SPOOF);
	{
		struct sl_conn c = { .key = { .src_id = ep->identity, .proto = p.proto,
					      .reporter = SL_REPORTER_SOURCE } };

		__builtin_memcpy(c.saddr, p.saddr, 16);
		__builtin_memcpy(c.daddr, p.daddr, 16);
		c.sport = p.sport;
		c.dport = p.dport;
		c.key.dst_id = ipcache_identity(p.daddr);
		c.key.port = bpf_ntohs(p.dport);
		flow_deny(&c, SL_DENY_SPOOF);
	}
	return TC_ACT_SHOT;
}

/* Drop a packet into a local pod: counted, and reported as the
 * destination saw it. */
static __always_inline int ingress_deny(const struct pkt *p, const struct sl_endpoint *ep,
					__u32 drop, __u8 reason)
{
	struct sl_conn c = {};

	count_drop(drop);
	c.key.src_id = ipcache_identity(p->saddr);
	c.key.dst_id = ep->identity;
	c.key.port = bpf_ntohs(p->dport);
	c.key.proto = p->proto;
	c.key.reporter = SL_REPORTER_DESTINATION;
	__builtin_memcpy(c.saddr, p->saddr, 16);
	__builtin_memcpy(c.daddr, p->daddr, 16);
	c.sport = p->sport;
	c.dport = p->dport;
	flow_deny(&c, reason);
	return TC_ACT_SHOT;
}

SEC("tc")
int sl_to_pod(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex, mark = skb->mark;
	struct sl_endpoint *ep;
	struct pkt p;
	__u8 mode;

	if (pkt_parse(skb, &p) || !p.l4)
		return TC_ACT_OK;
	/* most packets: a TCP segment that is not a SYN, which looks
	 * nothing up */
	if (p.proto == IPPROTO_TCP && (p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return TC_ACT_OK;
	ep = bpf_map_lookup_elem(&sl_endpoints, &ifindex);
	if (!ep)
		return TC_ACT_OK;
	if (p.proto == IPPROTO_TCP) {
		/* the node proxy delivers what it authorized (the peer's
		 * certificate), marked with SO_MARK */
		if (mark == SL_PROXY_MARK) {
			proxy_delivery_seen(p.saddr, p.sport, p.daddr, p.dport);
			return TC_ACT_OK;
		}
		mode = mtls_port_mode(p.daddr, bpf_ntohs(p.dport));
		if ((mode ? mode == SL_MTLS_STRICT : (ep->flags & SL_EP_STRICT)) &&
		    !ipcache_is_local(p.saddr))
			return ingress_deny(&p, ep, SL_DROP_MTLS_STRICT, SL_DENY_MTLS_STRICT);
	} else if (p.proto == IPPROTO_UDP) {
		struct sl_udpflow_key k = {};

		__builtin_memcpy(k.pod_addr, p.daddr, 16);
		__builtin_memcpy(k.peer_addr, p.saddr, 16);
		k.pod_port = p.dport;
		k.peer_port = p.sport;
		if (bpf_map_lookup_elem(&sl_udpflow, &k))
			return TC_ACT_OK; /* a reply to the pod's own datagram */
	} else {
		return TC_ACT_OK;
	}
	if (policy_check(ipcache_identity(p.saddr), ep->identity, p.proto, bpf_ntohs(p.dport)) == 0)
		return TC_ACT_OK;
	return ingress_deny(&p, ep, SL_DROP_POLICY_INGRESS, SL_DENY_POLICY_INGRESS);
}
