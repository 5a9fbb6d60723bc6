/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * policy.h - identities and the L4 authorization decision, shared by the
 * socket programs (client side) and the tc programs (server side).
 *
 * policy_check() does at most five hash lookups and no loop: the four
 * (exact|any source) x (exact|any port) entries, then the destination's
 * default-deny flag when no DENY matched.
 */
#ifndef SL_BPF_POLICY_H
#define SL_BPF_POLICY_H

#include "common.h"
#include "sluice_policy.h"

#ifndef EACCES
#define EACCES 13
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SL_MAX_IPCACHE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_ipcache_key);
	__type(value, struct sl_ipcache_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_LOCAL);
	__type(key, __u64);
	__type(value, struct sl_netns_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_netns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_MTLS_PORT);
	__type(key, struct sl_mtls_port_key);
	__type(value, __u8);   /* enum sl_mtls_mode */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_mtls_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_LOCAL);
	__type(key, __u32);
	__type(value, struct sl_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_POLICY);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_policy_key);
	__type(value, struct sl_policy_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_POLDST);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_poldst_key);
	__type(value, struct sl_poldst_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_poldst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SL_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_drops SEC(".maps");

static __always_inline void count_drop(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&sl_drops, &reason);

	if (c)
		*c += 1;
}

static __always_inline struct sl_ipcache_val *ipcache_lookup(const __be32 addr[4])
{
	struct sl_ipcache_key k = { .prefixlen = 128 };

	k.addr[0] = addr[0];
	k.addr[1] = addr[1];
	k.addr[2] = addr[2];
	k.addr[3] = addr[3];
	return bpf_map_lookup_elem(&sl_ipcache, &k);
}

/* Identity of an address: a workload's, or SL_ID_WORLD. */
static __always_inline __u32 ipcache_identity(const __be32 addr[4])
{
	struct sl_ipcache_val *v = ipcache_lookup(addr);

	return v ? v->identity : SL_ID_WORLD;
}

static __always_inline bool ipcache_is_local(const __be32 addr[4])
{
	struct sl_ipcache_val *v = ipcache_lookup(addr);

	return v && (v->flags & SL_IPC_LOCAL);
}

/* portLevelMtls: the mode of addr's port (host order), 0 if the workload's
 * own applies. */
static __always_inline __u8 mtls_port_mode(const __be32 addr[4], __u16 port)
{
	struct sl_mtls_port_key k = { .port = port };
	__u8 *m;

	k.addr[0] = addr[0];
	k.addr[1] = addr[1];
	k.addr[2] = addr[2];
	k.addr[3] = addr[3];
	m = bpf_map_lookup_elem(&sl_mtls_port, &k);
	return m ? *m : 0;
}

static __always_inline __u32 netns_identity(__u64 cookie)
{
	struct sl_netns_val *v = bpf_map_lookup_elem(&sl_netns, &cookie);

	return v ? v->identity : SL_ID_UNKNOWN;
}

static __always_inline void policy_acc(struct sl_policy_key *k, __u8 *deny, __u8 *allow)
{
	struct sl_policy_val *v = bpf_map_lookup_elem(&sl_policy, k);

	if (v) {
		*deny |= v->deny;
		*allow |= v->allow;
	}
}

/* 0: allowed; -EACCES: denied. Policies only name workloads: traffic to
 * anything else (world, host, unknown) is not this check's business. */
static __always_inline int policy_check(__u32 src, __u32 dst, __u8 proto, __u16 port)
{
	struct sl_policy_key k = {};
	struct sl_poldst_key dk = {};
	struct sl_poldst_val *pd;
	struct sl_config *cfg;
	__u32 zero = 0;
	__u8 deny = 0, allow = 0;

	if (dst < SL_ID_FIRST_WORKLOAD)
		return 0;
	cfg = bpf_map_lookup_elem(&sl_config, &zero);
	if (!cfg)
		return 0;
	k.gen = cfg->policy_gen;
	k.dst_id = dst;
	k.proto = proto;

	k.src_id = src;
	k.port = port;
	policy_acc(&k, &deny, &allow);
	k.port = 0;
	policy_acc(&k, &deny, &allow);
	k.src_id = SL_ID_ANY;
	policy_acc(&k, &deny, &allow);
	k.port = port;
	policy_acc(&k, &deny, &allow);
	if (deny)
		return -EACCES;
	if (allow)
		return 0;

	dk.gen = k.gen;
	dk.dst_id = dst;
	pd = bpf_map_lookup_elem(&sl_poldst, &dk);
	if (pd && (pd->flags & SL_PD_HAS_ALLOW))
		return -EACCES;
	return 0;
}

#endif /* SL_BPF_POLICY_H */
