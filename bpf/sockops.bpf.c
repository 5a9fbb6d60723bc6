// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockops.bpf.c - TCP connection accounting on a node's pod sockets.
 *
 * Client sockets were recorded in sl_conns by the connect hook; server
 * sockets (a pod accepting a connection) are recorded here when they are
 * established. Both then ask for state callbacks, and at close the socket's
 * payload byte counts go into the per-CPU counters and a close event.
 *
 * Payload, not sequence space: bytes_acked counts the SYN on the active
 * side (it is 1 at ACTIVE_ESTABLISHED, so that value is the baseline) and
 * our FIN once acked (we queued one if we passed FIN_WAIT1 or LAST_ACK, and
 * it is acked when snd_una reaches write_seq, which counts the FIN);
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

/* All address fields are loaded up front, unconditionally, and pinned in
 * registers: loaded inside the family branches, clang merges them into one
 * load through a computed ctx pointer, which the verifier rejects. */
static __always_inline void sk_addrs(struct bpf_sock_ops *skops, __be32 local[4],
				     __be32 remote[4])
{
	__u32 family = skops->family;
	__be32 l4 = skops->local_ip4, r4 = skops->remote_ip4;
	__be32 l0 = skops->local_ip6[0], l1 = skops->local_ip6[1];
	__be32 l2 = skops->local_ip6[2], l3 = skops->local_ip6[3];
	__be32 r0 = skops->remote_ip6[0], r1 = skops->remote_ip6[1];
	__be32 r2 = skops->remote_ip6[2], r3 = skops->remote_ip6[3];

	sl_barrier_var(l4);
	sl_barrier_var(r4);
	sl_barrier_var(l3);
	sl_barrier_var(r3);
	if (family == AF_INET) {
		l0 = r0 = 0;
		l1 = r1 = 0;
		l2 = r2 = bpf_htonl(0xffff);
		l3 = l4;
		r3 = r4;
	}
	/* AF_INET6 includes dual-stack sockets carrying IPv4-mapped
	 * addresses, which the maps store the same way */
	local[0] = l0;
	local[1] = l1;
	local[2] = l2;
	local[3] = l3;
	remote[0] = r0;
	remote[1] = r1;
	remote[2] = r2;
	remote[3] = r3;
}

static __always_inline void opened(struct bpf_sock_ops *skops, __u64 cookie,
				   struct sl_conn *c)
{
	struct sl_metric_val *v = metric(&c->key);

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
	__builtin_memcpy(c->saddr, local, 16);
	c->sport = bpf_htons((__u16)lport);
	opened(skops, cookie, c);
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
	c.key.src_id = ipcache_identity(remote);
	c.key.port = (__u16)lport;
	c.key.proto = IPPROTO_TCP;
	c.key.reporter = SL_REPORTER_DESTINATION;
	c.acked_base = (__u16)acked;
	c.start_ns = bpf_ktime_get_ns();
	__builtin_memcpy(c.saddr, remote, 16);
	__builtin_memcpy(c.daddr, local, 16);
	c.sport = bpf_htons((__u16)bpf_ntohl(rport));
	c.dport = bpf_htons((__u16)lport);
	bpf_map_update_elem(&sl_conns, &cookie, &c, BPF_ANY);
	opened(skops, cookie, &c);
}

static __always_inline void closed(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);
	__u64 acked = skops->bytes_acked, rcvd = skops->bytes_received;
	struct bpf_sock *bsk = skops->sk;
	struct sl_metric_val *v;
	struct tcp_sock *tp;
	struct sl_conn *c;
	__u64 sent, got;

	c = bpf_map_lookup_elem(&sl_conns, &cookie);
	if (!c)
		return;
	tp = bsk ? bpf_skc_to_tcp_sock(bsk) : NULL;
	if (tp) {
		if (sk_done(tp))
			rcvd -= rcvd ? 1 : 0;   /* the peer's FIN */
		if (c->fin_out && tp->snd_una == tp->write_seq)
			acked -= acked ? 1 : 0; /* our FIN, acked */
	}
	acked -= acked >= c->acked_base ? c->acked_base : acked;
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

	switch (op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		active(skops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		passive(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB: {
		__u32 state = skops->args[1];

		if (state == BPF_TCP_CLOSE) {
			closed(skops);
		} else if (state == BPF_TCP_FIN_WAIT1 || state == BPF_TCP_LAST_ACK) {
			__u64 cookie = bpf_get_socket_cookie(skops);
			struct sl_conn *c = bpf_map_lookup_elem(&sl_conns, &cookie);

			if (c)
				c->fin_out = 1;
		}
		break;
	}
	}
	return 1;
}
