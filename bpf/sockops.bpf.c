// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockops.bpf.c - TCP connection accounting on a node's pod sockets.
 *
 * Client sockets were recorded in sl_conns by the connect hook; server
 * sockets (a pod accepting a connection) are recorded here when they are
 * established. Both then ask for state callbacks, and at close the socket's
 * payload byte counts go into the per-CPU counters and a close event.
 *
 * Every TCP socket of the pods runs this program for every callback of
 * its life, both ends of a pod-to-pod connection (the accepted socket too,
 * and its request socket before it): TIMEOUT_INIT, RWND_INIT and NEEDS_ECN
 * twice per connection, whatever the flags, then a STATE_CB per state
 * change of each socket that asked for them. A connection pays each run,
 * so a run returns at once for what it does not handle, and the state
 * changes before the close look nothing up but for a socket in the
 * sockhash (its state, at FIN_WAIT1, for a half-close).
 *
 * Payload, not sequence space: bytes_acked counts the SYN on the active
 * side (it is 1 at ACTIVE_ESTABLISHED, so that value is the baseline) and
 * our FIN once acked (we queued one if we passed FIN_WAIT1 or LAST_ACK, which
 * the state the socket closes from tells: every state after those two is
 * one where our FIN was queued; and it is acked when snd_una reaches
 * write_seq, which counts the FIN);
 * bytes_received counts the peer's FIN if this socket processed it, which
 * tcp_fin() marks with SOCK_DONE. An orphaned socket may leave for
 * TIME_WAIT before the peer's FIN arrives: then SOCK_DONE is not set and
 * bytes_received has no FIN in it either.
 *
 * At PASSIVE_ESTABLISHED the program runs in softirq context: the current
 * cgroup is not the server's, so everything comes from the socket itself.
 * remote_port is network order in the upper 16 bits; local_port is host
 * order (see kernel-notes).
 */
#include "lib/common.h"
#include "lib/policy.h"
#include "lib/flow.h"
#include "lib/fast.h"
#include "lib/proxy.h"
#include "lib/traffic.h"

#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* sk_flags moved from struct sock to sock_common (skc_flags) in 6.x; CO-RE
 * picks whichever the running kernel has. */
struct sock___old {
	unsigned long sk_flags;
} __attribute__((preserve_access_index));

static __always_inline bool sk_done(struct tcp_sock *tp)
{
	struct sock *sk = (struct sock *)tp;
	unsigned long flags;

	if (bpf_core_field_exists(struct sock___old, sk_flags))
		flags = BPF_CORE_READ((struct sock___old *)sk, sk_flags);
	else
		flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	return flags & (1UL << SOCK_DONE);
}

static __always_inline void sk_addrs(struct bpf_sock_ops *skops, __be32 local[4],
				     __be32 remote[4])
{
	SL_CTX_ADDRS(skops, local, remote);
}

/* Same-node fast path: put a connection between two local workloads in
 * the sockhash (headers/sluice_fast.h), if the run-time switch is on.
 *
 * The active side (the client) goes in first, when the SYN-ACK arrives;
 * the passive side when the handshake's last ACK (or the first data
 * segment) does. In between the client may already have sent its first
 * message, which then went by TCP; a connection that started on TCP stays
 * there in both directions, because a socket whose own sends ride TCP must
 * not read through the sockhash (the ACKs of those sends wake a blocked
 * reader in tcp_bpf_recvmsg, which returns EAGAIN). So the passive side
 * decides under the client's lock: either the client has not sent yet,
 * and from now on it knows its peer is ready, or it has, and both leave.
 * Nothing was redirected to either of them yet, so leaving loses nothing. */
static __always_inline bool fast_insert(struct bpf_sock_ops *skops, const __be32 local[4],
					const __be32 remote[4], __u16 lport, __u16 rport,
					bool passive)
{
	struct sl_fast_state st = {}, *peer_st = NULL;
	struct sl_sock_key k = {}, peer = {};
	struct sl_config *cfg;
	__u32 zero = 0;
	__u8 path;

	cfg = bpf_map_lookup_elem(&sl_config, &zero);
	if (!cfg || !cfg->fastpath)
		return false;
	if (!ipcache_is_local(local) || !ipcache_is_local(remote))
		return false;
	__builtin_memcpy(k.local, local, 16);
	__builtin_memcpy(k.remote, remote, 16);
	k.lport = lport;
	k.rport = rport;
	if (passive) {
		sock_key_peer(&k, &peer);
		peer_st = bpf_map_lookup_elem(&sl_faststate, &peer);
		if (!peer_st)   /* the client is not in the sockhash */
			return false;
		st.peer_ready = 1;
	}
	if (bpf_map_update_elem(&sl_faststate, &k, &st, BPF_ANY))
		return false;
	if (bpf_sock_hash_update(skops, &sl_sockhash, &k, BPF_ANY)) {
		bpf_map_delete_elem(&sl_faststate, &k);
		return false;
	}
	if (!peer_st)
		return true;
	bpf_spin_lock(&peer_st->lock);
	path = peer_st->path;
	if (path != SL_PATH_TCP)
		peer_st->peer_ready = 1;
	bpf_spin_unlock(&peer_st->lock);
	if (path == SL_PATH_TCP) {
		bpf_map_delete_elem(&sl_sockhash, &k);
		bpf_map_delete_elem(&sl_faststate, &k);
		bpf_map_delete_elem(&sl_sockhash, &peer);
		return false;
	}
	return true;
}

static __always_inline void sock_key(struct bpf_sock_ops *skops, struct sl_sock_key *k)
{
	__u32 lport = skops->local_port;
	__u16 rport = SL_CTX_RPORT(skops);

	SL_CTX_ADDRS(skops, k->local, k->remote);
	k->lport = (__u16)lport;
	k->rport = rport;
}

/* This socket half-closed (shutdown(SHUT_WR), or close()): its peer
 * sends by TCP from now on (rx_closed), which is order-safe (redirected
 * data is read first). If the peer never redirected anything to it, it
 * also leaves the sockhash, so that a blocking recv() waits in plain TCP
 * and sees EOF instead of the kernel's spurious EAGAIN (sluice_fast.h).
 * Runs under the socket's lock, which every redirect into it also takes. */
static __always_inline void fast_half_close(struct bpf_sock_ops *skops)
{
	struct bpf_sock *bsk = skops->sk;
	struct sl_sock_key k = {};
	struct sl_fast_state *fs;
	struct tcp_sock *tp;
	__u64 claimed;

	/* A socket in a sockhash has its psock in sk_user_data (the kernel's
	 * sk_psock()), which no other pod socket uses: a read of the socket
	 * itself, where the state lookup costs a cold hash bucket for every
	 * socket that closes. */
	tp = bsk ? bpf_skc_to_tcp_sock(bsk) : NULL;
	if (tp && !BPF_CORE_READ((struct sock *)tp, sk_user_data))
		return;
	sock_key(skops, &k);
	fs = bpf_map_lookup_elem(&sl_faststate, &k);
	if (!fs)
		return;
	bpf_spin_lock(&fs->lock);
	fs->rx_closed = 1;
	claimed = fs->bytes_in;
	bpf_spin_unlock(&fs->lock);
	if (claimed == 0 && bpf_map_delete_elem(&sl_sockhash, &k) == 0)
		fs->left = 1;
}

static __always_inline void opened(struct bpf_sock_ops *skops, __u64 cookie,
				   struct sl_conn *c)
{
	struct sl_metric_val *v;

	if (c->captured)
		return; /* the proxy accounts for it (headers/sluice_proxy.h) */
	v = metric(&c->key);
	if (v)
		v->opened++;
	flow_event(SL_EV_OPEN, 0, cookie, c, 0, 0);
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void active(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);
	__u32 lport = skops->local_port;
	__u64 acked = skops->bytes_acked;
	__be32 local[4], remote[4];
	struct sl_conn *c;

	c = bpf_map_lookup_elem(&sl_conns, &cookie);
	if (!c)
		return; /* not a pod's connect() we authorized */
	c->acked_base = (__u16)acked;
	sk_addrs(skops, local, remote);
	if (c->key.src_id == SL_ID_UNKNOWN)
		c->key.src_id = ipcache_identity(local); /* kernels before 5.14 */
	__builtin_memcpy(c->saddr, local, 16);
	c->sport = bpf_htons((__u16)lport);
	/* before the handshake's last ACK leaves: the proxy's accept() sees
	 * the connection only after this */
	if (c->captured)
		proxy_handoff(c, cookie);
	opened(skops, cookie, c);
	if (fast_insert(skops, local, remote, (__u16)lport, bpf_ntohs(c->dport), false))
		c->flags |= SL_CONN_F_FAST;
}

static __always_inline void passive(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);
	__u32 lport = skops->local_port;
	__u32 rport = skops->remote_port;
	__u64 acked = skops->bytes_acked;
	struct sl_conn c = {};
	__be32 local[4], remote[4];

	sk_addrs(skops, local, remote);
	c.key.dst_id = ipcache_identity(local);
	if (c.key.dst_id < SL_ID_FIRST_WORKLOAD)
		return; /* not a mesh workload's socket */
	if (proxy_delivery_take(remote, SL_CTX_RPORT(skops), local, (__u16)lport))
		return; /* the node proxy's: it accounts for the connection */
	c.key.src_id = ipcache_identity(remote);
	c.key.port = (__u16)lport;
	c.key.proto = IPPROTO_TCP;
	c.key.reporter = SL_REPORTER_DESTINATION;
	c.acked_base = (__u16)acked;
	c.start_ns = bpf_ktime_get_ns();
	__builtin_memcpy(c.saddr, remote, 16);
	__builtin_memcpy(c.daddr, local, 16);
	c.sport = bpf_htons((__u16)bpf_ntohl(rport)); /* see SL_CTX_RPORT */
	c.dport = bpf_htons((__u16)lport);
	/* before it is recorded: one map write */
	if (fast_insert(skops, local, remote, (__u16)lport, bpf_ntohs(c.sport), true))
		c.flags |= SL_CONN_F_FAST;
	bpf_map_update_elem(&sl_conns, &cookie, &c, BPF_ANY);
	opened(skops, cookie, &c);
}

/* Did the socket queue its FIN, given the state it closes from? */
static __always_inline bool fin_queued(__u32 from)
{
	return from == BPF_TCP_FIN_WAIT1 || from == BPF_TCP_FIN_WAIT2 || from == BPF_TCP_CLOSING ||
	       from == BPF_TCP_LAST_ACK || from == BPF_TCP_TIME_WAIT;
}

static __always_inline void closed(struct bpf_sock_ops *skops, __u64 cookie, struct sl_conn *c,
				   __u32 from)
{
	__u64 acked = skops->bytes_acked, rcvd = skops->bytes_received;
	struct bpf_sock *bsk = skops->sk;
	struct sl_metric_val *v;
	struct tcp_sock *tp;
	__u64 sent, got;

	if (c->captured) {
		/* the proxy accounts for it (headers/sluice_proxy.h); it went
		 * to the node proxy, never into the sockhash */
		proxy_handoff_done(c);
		bpf_map_delete_elem(&sl_conns, &cookie);
		return;
	}
	tp = bsk ? bpf_skc_to_tcp_sock(bsk) : NULL;
	if (tp) {
		if (sk_done(tp))
			rcvd -= rcvd ? 1 : 0;   /* the peer's FIN */
		if (fin_queued(from) && tp->snd_una == tp->write_seq)
			acked -= acked ? 1 : 0; /* our FIN, acked */
	}
	acked -= acked >= c->acked_base ? c->acked_base : acked;
	if (c->flags & SL_CONN_F_FAST) {
		/* bytes that went through the sockhash never touched TCP */
		struct sl_sock_key k = {};
		struct sl_fast_state *fs;

		sock_key(skops, &k);
		fs = bpf_map_lookup_elem(&sl_faststate, &k);
		if (fs) {
			acked += fs->bytes_out;
			rcvd += fs->bytes_in;
			bpf_map_delete_elem(&sl_faststate, &k);
		}
	}
	/* from the client's point of view (headers/sluice_flow.h) */
	if (c->key.reporter == SL_REPORTER_SOURCE) {
		sent = acked;
		got = rcvd;
	} else {
		sent = rcvd;
		got = acked;
	}
	v = metric(&c->key);
	if (v) {
		v->closed++;
		v->bytes_sent += sent;
		v->bytes_received += got;
	}
	flow_event(SL_EV_CLOSE, 0, cookie, c, sent, got);
	bpf_map_delete_elem(&sl_conns, &cookie);
}

SEC("sockops")
int sl_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;

	/* first: most runs are callbacks nobody here handles */
	if (op != BPF_SOCK_OPS_STATE_CB && op != BPF_SOCK_OPS_TCP_CONNECT_CB &&
	    op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB &&
	    op != BPF_SOCK_OPS_RTO_CB)
		return 1;

	switch (op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		/* a socket holding a slot (lib/traffic.h) reports how its
		 * handshake ends: RTO for an unanswered SYN, STATE for an RST
		 * or the end of the connection */
		if (tp_maybe_held() &&
		    bpf_map_lookup_elem(&sl_held, &(__u64){ bpf_get_socket_cookie(skops) }))
			bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG |
						  BPF_SOCK_OPS_RTO_CB_FLAG);
		break;
	case BPF_SOCK_OPS_RTO_CB: {
		__u32 state = skops->state;

		if (state == BPF_TCP_SYN_SENT)
			tp_failed(bpf_get_socket_cookie(skops));
		break;
	}
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		if (tp_established(bpf_get_socket_cookie(skops)))
			bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
		active(skops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		passive(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB: {
		__u32 from = skops->args[0];
		__u32 state = skops->args[1];
		__u64 cookie;
		struct sl_conn *c;

		if (state == BPF_TCP_FIN_WAIT1) {
			fast_half_close(skops);
			break;
		}
		if (state != BPF_TCP_CLOSE)
			break;
		cookie = bpf_get_socket_cookie(skops);
		c = bpf_map_lookup_elem(&sl_conns, &cookie);
		/* a server's socket holds no slot (lib/traffic.h) */
		if (!c || c->key.reporter != SL_REPORTER_DESTINATION) {
			/* an RST to the SYN, or the SYN retries exhausted */
			if (from == BPF_TCP_SYN_SENT)
				tp_failed(cookie);
			tp_release(cookie);
		}
		if (c)
			closed(skops, cookie, c, from);
		break;
	}
	}
	return 1;
}
