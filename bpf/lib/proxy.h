/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxy.h - capture of connections that must be mutual TLS, and their
 * hand-off to the node proxy (headers/sluice_proxy.h).
 */
#ifndef SL_BPF_PROXY_H
#define SL_BPF_PROXY_H

#include "common.h"
#include "policy.h"
#include "sluice_lb.h"
#include "sluice_flow.h"
#include "sluice_proxy.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_ORIGDST);
	__type(key, struct sl_origdst_key);
	__type(value, struct sl_origdst_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_origdst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_proxy_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_proxy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_proxy_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_proxy6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_PROXIED);
	__type(key, struct sl_proxied_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_proxied SEC(".maps");

/*
 * Should this authorized connect() go through the node proxies? A TCP
 * connection from a mesh workload (its identity known from its netns) to
 * a mesh workload on another node whose PeerAuthentication is not DISABLE
 * (for that port, if portLevelMtls names it),
 * while the agent runs a proxy. Same-node connections never are. Fills
 * `to` with the proxy's outbound listener of the destination's family (an
 * IPv6 socket's IPv4-mapped destination goes to the IPv4 one, which it
 * reaches IPv4-mapped); a family without one is not captured.
 */
static __always_inline bool proxy_capture(const struct sl_conn *c, struct sl_backend *to)
{
	const struct sl_ipcache_val *v;
	const struct sl_proxy_cfg *p;
	__u32 zero = 0;
	__u8 mode;

	if (c->key.proto != IPPROTO_TCP || c->key.src_id < SL_ID_FIRST_WORKLOAD)
		return false;
	if (!c->daddr[0] && !c->daddr[1] && c->daddr[2] == bpf_htonl(0xffff))
		p = bpf_map_lookup_elem(&sl_proxy, &zero);
	else
		p = bpf_map_lookup_elem(&sl_proxy6, &zero);
	if (!p || !p->enabled)
		return false;
	v = ipcache_lookup(c->daddr);
	if (!v || (v->flags & SL_IPC_LOCAL))
		return false;
	mode = mtls_port_mode(c->daddr, bpf_ntohs(c->dport));
	if (mode ? mode == SL_MTLS_DISABLE : !(v->flags & SL_IPC_MTLS))
		return false;
	__builtin_memcpy(to->addr, p->addr, 16);
	to->port = bpf_htons(p->port);
	to->proto = IPPROTO_TCP;
	return true;
}

/* sockops, once the client socket has its own address and port: tell the
 * proxy where a captured connection was going and who is calling. */
static __always_inline void proxy_handoff(const struct sl_conn *c, __u64 cookie)
{
	struct sl_origdst_key k = {};
	struct sl_origdst_val v = {};

	__builtin_memcpy(k.client, c->saddr, 16);
	k.client_port = bpf_ntohs(c->sport);
	__builtin_memcpy(v.dst, c->daddr, 16);
	v.dst_port = bpf_ntohs(c->dport);
	v.src_identity = c->key.src_id;
	v.cookie = cookie;
	bpf_map_update_elem(&sl_origdst, &k, &v, BPF_ANY);
}

static __always_inline void proxy_handoff_done(const struct sl_conn *c)
{
	struct sl_origdst_key k = {};

	__builtin_memcpy(k.client, c->saddr, 16);
	k.client_port = bpf_ntohs(c->sport);
	bpf_map_delete_elem(&sl_origdst, &k);
}

/* tc: the proxy's SYN into a local workload (proxy -> workload). */
static __always_inline void proxy_delivery_seen(const __be32 proxy[4], __be16 proxy_port,
						const __be32 workload[4], __be16 workload_port)
{
	struct sl_proxied_key k = {};
	__u8 one = 1;

	__builtin_memcpy(k.proxy, proxy, 16);
	__builtin_memcpy(k.workload, workload, 16);
	k.proxy_port = bpf_ntohs(proxy_port);
	k.workload_port = bpf_ntohs(workload_port);
	bpf_map_update_elem(&sl_proxied, &k, &one, BPF_ANY);
}

/* sockops, the workload's side established: was it the proxy's delivery?
 * (then the proxy accounts for it). Takes the entry out. */
static __always_inline bool proxy_delivery_take(const __be32 remote[4], __u16 rport,
						const __be32 local[4], __u16 lport)
{
	struct sl_proxied_key k = {};

	__builtin_memcpy(k.proxy, remote, 16);
	__builtin_memcpy(k.workload, local, 16);
	k.proxy_port = rport;
	k.workload_port = lport;
	return bpf_map_delete_elem(&sl_proxied, &k) == 0;
}

#endif /* SL_BPF_PROXY_H */
