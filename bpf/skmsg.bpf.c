// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * skmsg.bpf.c - sk_msg verdict on the sockhash: same-node pod-to-pod
 * redirection (headers/sluice_fast.h has the rules).
 *
 * Runs for every sendmsg() on a socket in sl_sockhash, under that socket's
 * lock, so its own state needs no atomics; the peer's bytes_in and
 * rx_closed are under the peer's bpf_spin_lock.
 */
#include "lib/common.h"
#include "lib/fast.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("sk_msg")
int sl_msg(struct sk_msg_md *msg)
{
	__u32 lport = msg->local_port, size = msg->size;
	__u16 rport = SL_CTX_RPORT(msg);
	struct sl_fast_state *st, *peer_st;
	struct sl_sock_key k = {}, peer = {};
	long verdict;
	__u8 closed, ready;

	SL_CTX_ADDRS(msg, k.local, k.remote);
	k.lport = (__u16)lport;
	k.rport = rport;
	st = bpf_map_lookup_elem(&sl_faststate, &k);
	if (!st || st->path == SL_PATH_TCP)
		return SK_PASS;
	if (st->path == SL_PATH_UNDECIDED) {
		/* The first message: redirect only if the peer is in the
		 * sockhash already; else TCP for good, in both directions
		 * (sockops fast_insert decides with us under this lock). */
		bpf_spin_lock(&st->lock);
		ready = st->peer_ready;
		if (!ready)
			st->path = SL_PATH_TCP;
		bpf_spin_unlock(&st->lock);
		if (!ready)
			return SK_PASS;
	}

	sock_key_peer(&k, &peer);
	peer_st = bpf_map_lookup_elem(&sl_faststate, &peer);
	if (!peer_st) {
		st->path = SL_PATH_TCP;
		return SK_PASS;
	}
	/* Claim the bytes before redirecting, unless the peer half-closed:
	 * then TCP from here on, which it reads after what was already
	 * redirected to it. Under the peer's lock, so that a peer leaving
	 * the sockhash (sockops) sees either this claim or none at all. */
	bpf_spin_lock(&peer_st->lock);
	closed = peer_st->rx_closed;
	if (!closed)
		peer_st->bytes_in += size;
	bpf_spin_unlock(&peer_st->lock);
	if (closed) {
		st->path = SL_PATH_TCP;
		return SK_PASS;
	}
	verdict = bpf_msg_redirect_hash(msg, &sl_sockhash, &peer, BPF_F_INGRESS);
	if (verdict != SK_PASS) {
		/* The peer is not in the sockhash: not yet (then nothing was
		 * redirected and this direction stays on TCP for good) or no
		 * more (redirect -> TCP is the safe switch). */
		bpf_spin_lock(&peer_st->lock);
		peer_st->bytes_in -= size;
		bpf_spin_unlock(&peer_st->lock);
		st->path = SL_PATH_TCP;
		return SK_PASS;
	}
	st->path = SL_PATH_REDIRECT;
	st->bytes_out += size;
	return SK_PASS;
}
