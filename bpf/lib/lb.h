/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb.h - socket-layer service load balancing: map definitions and the
 * lookup helpers the cgroup sock_addr programs share.
 *
 * Helpers return 0 or -errno; only the program entry points turn an error
 * into a verdict. The choice of a backend is tp_select() (traffic.h): a
 * service without a traffic policy costs one service lookup, one slot
 * lookup and one backend lookup, twice at most.
 */
#ifndef SL_BPF_LB_H
#define SL_BPF_LB_H

#include "common.h"
#include "sluice_lb.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, struct sl_svc_key);
	__type(value, struct sl_svc_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_SLOTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sl_slot_key);
	__type(value, struct sl_slot_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sl_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_REVNAT);
	__type(key, struct sl_revnat_key);
	__type(value, struct sl_revnat_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SL_MAX_SERVICES + 1);
	__type(key, __u32);
	__type(value, struct sl_svc_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svc_vip SEC(".maps");

/* Set by the agent before load after probing the kernel: bpf_set_retval()
 * (5.18+) lets a refused connect() fail with ECONNREFUSED instead of EPERM.
 * When false the verifier prunes the call, so older kernels load the
 * program too. */
const volatile bool cfg_has_set_retval = false;

static __always_inline void lb_key_v4(struct sl_svc_key *key, __be32 ip,
				      __be16 port, __u8 proto)
{
	key->addr[0] = 0;
	key->addr[1] = 0;
	key->addr[2] = bpf_htonl(0xffff);
	key->addr[3] = ip;
	key->port = port;
	key->proto = proto;
	key->pad = 0;
}

static __always_inline void lb_revnat_save(__u64 cookie,
					   const struct sl_svc_key *vip,
					   const struct sl_backend *be)
{
	struct sl_revnat_key rk = {};
	struct sl_revnat_val rv = {};

	rk.cookie = cookie;
	__builtin_memcpy(rk.addr, be->addr, sizeof(rk.addr));
	rk.port = be->port;
	__builtin_memcpy(rv.addr, vip->addr, sizeof(rv.addr));
	rv.port = vip->port;
	bpf_map_update_elem(&sl_revnat, &rk, &rv, BPF_ANY);
}

/* Is sl_svc_vip's entry for the service `key`'s? Then a TCP connection
 * through it needs no sl_revnat entry (sluice_lb.h). */
static __always_inline bool lb_vip_known(__u32 svc_id, const struct sl_svc_key *key)
{
	struct sl_svc_key *k = bpf_map_lookup_elem(&sl_svc_vip, &svc_id);

	return k && k->port == key->port && k->proto == key->proto &&
	       k->addr[0] == key->addr[0] && k->addr[1] == key->addr[1] &&
	       k->addr[2] == key->addr[2] && k->addr[3] == key->addr[3];
}

static __always_inline struct sl_revnat_val *
lb_revnat_find(__u64 cookie, const __be32 addr[4], __be16 port)
{
	struct sl_revnat_key rk = {};

	rk.cookie = cookie;
	rk.addr[0] = addr[0];
	rk.addr[1] = addr[1];
	rk.addr[2] = addr[2];
	rk.addr[3] = addr[3];
	rk.port = port;
	return bpf_map_lookup_elem(&sl_revnat, &rk);
}

/* Refuse a connect()/sendmsg() with `err` (-ECONNREFUSED, -EACCES) where
 * the kernel lets us choose the errno, EPERM elsewhere. */
static __always_inline int sock_refuse(int err)
{
	if (cfg_has_set_retval)
		bpf_set_retval(err);
	return SYS_REJECT;
}

#endif /* SL_BPF_LB_H */
