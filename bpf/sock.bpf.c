// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sock.bpf.c - cgroup sock_addr programs: socket-layer service load balancing.
 *
 * connect and sendmsg rewrite a service VIP:port to a backend before the
 * socket ever routes a packet, so there is no per-packet NAT; getpeername and
 * recvmsg put the VIP back so the application sees the address it asked for.
 * Attached to a node's pod parent cgroup: they see every process in the pods
 * below it, whatever network namespace that process is in.
 *
 * They also authorize: the client's identity comes from its network
 * namespace, the destination's from the (translated) address, and a denied
 * connect()/sendmsg() fails with EACCES before any packet leaves. An
 * allowed connect() that must be mutual TLS goes to the node proxy instead
 * (lib/proxy.h), and getpeername still shows what the client asked for.
 *
 * Each ctx field is read once into a local: clang may otherwise merge loads
 * into a modified ctx pointer, which the verifier rejects.
 */
#include "lib/common.h"
#include "lib/lb.h"
#include "lib/policy.h"
#include "lib/flow.h"
#include "lib/proxy.h"
#include "lib/traffic.h"

/* The VM harness proves it fails when it should by building with
 * SLUICE_TEST_BROKEN (make BPF_TEST_BROKEN=1), which plants a construct the
 * verifier rejects. Never set in a normal build. */
#ifdef SLUICE_TEST_BROKEN
#include "lib/test_broken.h"
#else
#define SL_TEST_BROKEN(ctx) do { } while (0)
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent: false on kernels without SO_NETNS_COOKIE (before 5.14),
 * where it cannot fill sl_netns. connect() then cannot tell which pod is
 * calling, so it leaves the decision to tc at the destination's veth
 * (which knows the source by its address) instead of guessing. */
const volatile bool cfg_netns_ident = true;

/* Authorize the connection described by c->daddr/dport and fill in its
 * identities. 0, or -EACCES (counted and reported). */
static __always_inline int authorize(__u64 netns, struct sl_conn *c)
{
	int err;

	c->key.src_id = netns_identity(netns);
	c->key.dst_id = ipcache_identity(c->daddr);
	c->key.port = bpf_ntohs(c->dport);
	c->key.reporter = SL_REPORTER_SOURCE;
	if (!cfg_netns_ident)
		return 0;
	err = policy_check(c->key.src_id, c->key.dst_id, c->key.proto, c->key.port);
	if (err) {
		count_drop(SL_DROP_POLICY_CONNECT);
		flow_deny(c, SL_DENY_POLICY_CONNECT);
	}
	return err;
}

/* Remember an allowed TCP connect() for sockops (open/close accounting). */
static __always_inline void track(struct bpf_sock_addr *ctx, struct sl_conn *c)
{
	__u64 cookie;

	if (c->key.proto != IPPROTO_TCP)
		return;
	cookie = bpf_get_socket_cookie(ctx);
	c->start_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&sl_conns, &cookie, c, BPF_ANY);
}

/* Load-balance, authorize, admit (lib/traffic.h) and maybe capture a
 * connect()/sendmsg() to `key`. Returns the verdict; *rewrite says whether
 * to rewrite the address to *to (a backend, or the node proxy). */
static __always_inline int resolve(struct bpf_sock_addr *ctx, const struct sl_svc_key *key,
				   struct sl_backend *to, bool *rewrite, bool *via_conn, bool connect)
{
	__u64 netns = bpf_get_netns_cookie(ctx);
	struct tp_choice ch = {};
	struct sl_conn c = {};
	struct sl_backend *be;
	int err;

	*rewrite = false;
	*via_conn = false;
	be = tp_select(key, netns, &err, &ch);
	if (!be && err != -ENOENT)
		return sock_refuse(err);
	c.key.svc_id = ch.svc_id;
	c.key.proto = key->proto;
	__builtin_memcpy(c.daddr, be ? be->addr : key->addr, 16);
	c.dport = be ? be->port : key->port;
	if (!be)
		c.key.svc_id = 0;
	err = authorize(netns, &c);
	if (err)
		return sock_refuse(err);
	if (be && tp_admit(bpf_get_socket_cookie(ctx), &ch, connect)) {
		flow_deny(&c, SL_DENY_OVERFLOW);
		return sock_refuse(-ECONNREFUSED);
	}
	if (proxy_capture(&c, to)) {
		c.captured = 1;
		*rewrite = true;
	} else if (be) {
		*to = *be;
		*rewrite = true;
		/* getpeername() finds the VIP through sl_conns (sluice_lb.h) */
		*via_conn = connect && key->proto == IPPROTO_TCP && lb_vip_known(ch.svc_id, key);
	}
	track(ctx, &c);
	return SYS_PROCEED;
}

static __always_inline int xlate4(struct bpf_sock_addr *ctx, bool connect)
{
	__be32 ip = ctx->user_ip4;
	__be16 port = (__be16)ctx->user_port;
	__u8 proto = (__u8)ctx->protocol;
	struct sl_svc_key key;
	struct sl_backend to = {};
	bool rewrite, via_conn;
	int verdict;

	SL_TEST_BROKEN(ctx);
	lb_key_v4(&key, ip, port, proto);
	verdict = resolve(ctx, &key, &to, &rewrite, &via_conn, connect);
	if (verdict != SYS_PROCEED || !rewrite)
		return verdict;

	/* Backends of an IPv4 service are IPv4 (the agent enforces it), and
	 * so is the proxy's listener. */
	ctx->user_ip4 = to.addr[3];
	ctx->user_port = to.port;
	if (!via_conn)
		lb_revnat_save(bpf_get_socket_cookie(ctx), &key, &to);
	return SYS_PROCEED;
}

static __always_inline int xlate6(struct bpf_sock_addr *ctx, bool connect)
{
	__be32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1];
	__be32 a2 = ctx->user_ip6[2], a3 = ctx->user_ip6[3];
	__be16 port = (__be16)ctx->user_port;
	__u8 proto = (__u8)ctx->protocol;
	struct sl_svc_key key = {};
	struct sl_backend to = {};
	bool rewrite, via_conn;
	int verdict;

	key.addr[0] = a0;
	key.addr[1] = a1;
	key.addr[2] = a2;
	key.addr[3] = a3;
	key.port = port;
	key.proto = proto;
	verdict = resolve(ctx, &key, &to, &rewrite, &via_conn, connect);
	if (verdict != SYS_PROCEED || !rewrite)
		return verdict;

	/* An IPv4-mapped VIP has IPv4-mapped backends, and a captured
	 * connection to one goes to the proxy's IPv4-mapped address: the
	 * dual-stack socket keeps talking IPv4 underneath. An IPv6 destination
	 * goes to the proxy's IPv6 listener. */
	ctx->user_ip6[0] = to.addr[0];
	ctx->user_ip6[1] = to.addr[1];
	ctx->user_ip6[2] = to.addr[2];
	ctx->user_ip6[3] = to.addr[3];
	ctx->user_port = to.port;
	if (!via_conn)
		lb_revnat_save(bpf_get_socket_cookie(ctx), &key, &to);
	return SYS_PROCEED;
}

/* The VIP a TCP connection through a service was made to, from the
 * socket's sl_conns entry (connect() wrote no sl_revnat entry for it,
 * sluice_lb.h); NULL for any other socket, or a peer that is not the
 * backend it went to. */
static __always_inline struct sl_svc_key *conn_vip(__u64 cookie, const __be32 addr[4], __be16 port)
{
	struct sl_conn *c = bpf_map_lookup_elem(&sl_conns, &cookie);
	struct sl_svc_key *k;
	__u32 id;

	if (!c || !c->key.svc_id || c->captured || c->dport != port ||
	    c->daddr[0] != addr[0] || c->daddr[1] != addr[1] || c->daddr[2] != addr[2] ||
	    c->daddr[3] != addr[3])
		return NULL;
	id = c->key.svc_id;
	k = bpf_map_lookup_elem(&sl_svc_vip, &id);
	return k && k->port ? k : NULL;
}

/* The VIP behind peer addr:port of the socket, into vip/vport: from
 * sl_conns (conn: getpeername, where a TCP connection through a service
 * has no sl_revnat entry) or sl_revnat. false if it is not a peer we
 * translated. */
static __always_inline bool peer_vip(__u64 cookie, const __be32 addr[4], __be16 port, bool conn,
				     __be32 vip[4], __be16 *vport)
{
	struct sl_svc_key *k = conn ? conn_vip(cookie, addr, port) : NULL;
	struct sl_revnat_val *rv;

	if (k) {
		__builtin_memcpy(vip, k->addr, 16);
		*vport = k->port;
		return true;
	}
	rv = lb_revnat_find(cookie, addr, port);
	if (!rv)
		return false;
	__builtin_memcpy(vip, rv->addr, 16);
	*vport = rv->port;
	return true;
}

static __always_inline void revnat4(struct bpf_sock_addr *ctx, bool conn)
{
	__be32 ip = ctx->user_ip4;
	__be16 port = (__be16)ctx->user_port;
	__be32 addr[4] = { 0, 0, bpf_htonl(0xffff), ip };
	__be32 vip[4];
	__be16 vport;

	if (!peer_vip(bpf_get_socket_cookie(ctx), addr, port, conn, vip, &vport))
		return;
	ctx->user_ip4 = vip[3];
	ctx->user_port = vport;
}

static __always_inline void revnat6(struct bpf_sock_addr *ctx, bool conn)
{
	__be32 addr[4] = { ctx->user_ip6[0], ctx->user_ip6[1],
			   ctx->user_ip6[2], ctx->user_ip6[3] };
	__be16 port = (__be16)ctx->user_port;
	__be32 vip[4];
	__be16 vport;

	if (!peer_vip(bpf_get_socket_cookie(ctx), addr, port, conn, vip, &vport))
		return;
	ctx->user_ip6[0] = vip[0];
	ctx->user_ip6[1] = vip[1];
	ctx->user_ip6[2] = vip[2];
	ctx->user_ip6[3] = vip[3];
	ctx->user_port = vport;
}

SEC("cgroup/connect4")
int sl_connect4(struct bpf_sock_addr *ctx)
{
	return xlate4(ctx, true);
}

SEC("cgroup/connect6")
int sl_connect6(struct bpf_sock_addr *ctx)
{
	return xlate6(ctx, true);
}

SEC("cgroup/sendmsg4")
int sl_sendmsg4(struct bpf_sock_addr *ctx)
{
	return xlate4(ctx, false);
}

SEC("cgroup/sendmsg6")
int sl_sendmsg6(struct bpf_sock_addr *ctx)
{
	return xlate6(ctx, false);
}

SEC("cgroup/recvmsg4")
int sl_recvmsg4(struct bpf_sock_addr *ctx)
{
	revnat4(ctx, false);
	return SYS_PROCEED;
}

SEC("cgroup/recvmsg6")
int sl_recvmsg6(struct bpf_sock_addr *ctx)
{
	revnat6(ctx, false);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int sl_getpeername4(struct bpf_sock_addr *ctx)
{
	revnat4(ctx, true);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername6")
int sl_getpeername6(struct bpf_sock_addr *ctx)
{
	revnat6(ctx, true);
	return SYS_PROCEED;
}

/* A socket of a pod is released (closed by its application, or by the
 * kernel for a killed process): what it holds goes back to the pool
 * (lib/traffic.h). A connect the client gave up on is not counted against
 * the backend: its unanswered SYN already was, at the first RTO. */
SEC("cgroup/sock_release")
int sl_sock_release(struct bpf_sock *sk)
{
	if (tp_maybe_held())
		tp_release(bpf_get_socket_cookie(sk));
	return 1;
}
