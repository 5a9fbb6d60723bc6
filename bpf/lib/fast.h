/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * fast.h - the sockhash and per-socket state of the same-node fast path
 * (headers/sluice_fast.h), shared by sockops and sk_msg.
 */
#ifndef SL_BPF_FAST_H
#define SL_BPF_FAST_H

#include "common.h"
#include "sluice_fast.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SL_MAX_FASTSOCKS);
	__type(key, struct sl_sock_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_sockhash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_FASTSOCKS);
	__type(key, struct sl_sock_key);
	__type(value, struct sl_fast_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_faststate SEC(".maps");

static __always_inline void sock_key_peer(const struct sl_sock_key *k, struct sl_sock_key *peer)
{
	__builtin_memcpy(peer->local, k->remote, 16);
	__builtin_memcpy(peer->remote, k->local, 16);
	peer->lport = k->rport;
	peer->rport = k->lport;
}

#endif /* SL_BPF_FAST_H */
