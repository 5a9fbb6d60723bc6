// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxy.c - the node's mTLS proxy (proxy.h): listeners, sl_origdst,
 * the outbound pool, inbound authorization, what it reports.
 *
 * About 800 lines in one file: every section below works on struct proxy
 * and its flows, which no other file sees the inside of, and the inbound
 * and outbound halves are the HBONE callbacks (hbone.h) of the same
 * proxy; the tunnel itself is hbone.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "lib/core/addr.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"
#include "lib/wire/pki.h"
#include "proxy/hbone.h"
#include "proxy/link.h"
#include "proxy/proxy.h"
#include "sluice_flow.h"
#include "sluice_proxy.h"

#define MAX_INBOUND 4096
/* Of those, in their TLS handshake (about 60 KiB each: TLS state, a
 * partial record, an HTTP/2 session); past it the oldest goes. A real
 * handshake takes milliseconds, so only peers that never finish one wait
 * long enough to be the oldest. */
#define MAX_HANDSHAKING 1024
/* SNI naming the destination workload's numeric identity: "42.id.sluice.internal"
 * (a DNS name; docs/architecture.md says why a number) */
#define SNI_SUFFIX ".id.sluice.internal"

struct listener {
	struct loop_handler h;
	struct proxy *p;
	int fd;
	bool inbound;
};

/* One pooled outbound connection: its server presented dst's certificate. */
struct pooled {
	uint32_t src, dst;
	char node[64];
	unsigned int gen;          /* of the certificate it was made with */
	struct hb_conn *c;
	struct pooled *next;
};

/* What a tunnel reports at its end. */
struct flow {
	struct pl_flow f;
};

struct proxy {
	struct proxy_opts o;
	struct hb_loop *l;
	struct listener ls[PL_LS_MAX];
	bool accepting;
	int origdst_fd;
	struct snapshot s;         /* identities, workloads, policies, nodes */
	struct pooled *pool;
	unsigned int inbound;      /* server connections open */
	uint64_t tunnels;          /* open now */
	uint64_t accepted;
	struct hb_limits lim;
};

static const struct hb_ops in_ops, out_ops;

/* ---- sl_origdst ------------------------------------------------------------ */

/* The map with BTF (bpftool dump prints fields), pinned by name, so the
 * capture programs (libbpf, LIBBPF_PIN_BY_NAME) reuse it: type, sizes and
 * max_entries are what their definition must say. */
static int origdst_open(const char *pin_root)
{
	char path[PATH_MAX];
	struct btf *btf = NULL;
	int fd, u16, u32, u64, a4, k, v, e;

	snprintf(path, sizeof(path), "%s/%s", pin_root, SL_MAP_ORIGDST);
	fd = bpf_obj_get(path);
	if (fd >= 0)
		return fd;
	btf = btf__new_empty();
	if (!btf)
		return -errno;
	u16 = btf__add_int(btf, "__u16", 2, 0);
	u32 = btf__add_int(btf, "__u32", 4, 0);
	u64 = btf__add_int(btf, "__u64", 8, 0);
	a4 = btf__add_array(btf, u32, u32, 4);
	k = btf__add_struct(btf, "sl_origdst_key", sizeof(struct sl_origdst_key));
	e = k < 0 ? k : btf__add_field(btf, "client", a4, 0, 0);
	e = e ?: btf__add_field(btf, "client_port", u16, 128, 0);
	e = e ?: btf__add_field(btf, "pad", u16, 144, 0);
	v = e ? e : btf__add_struct(btf, "sl_origdst_val", sizeof(struct sl_origdst_val));
	e = v < 0 ? v : btf__add_field(btf, "dst", a4, 0, 0);
	e = e ?: btf__add_field(btf, "dst_port", u16, 128, 0);
	e = e ?: btf__add_field(btf, "pad", u16, 144, 0);
	e = e ?: btf__add_field(btf, "src_identity", u32, 160, 0);
	e = e ?: btf__add_field(btf, "cookie", u64, 192, 0);
	if (u16 < 0 || u32 < 0 || u64 < 0 || a4 < 0 || e || btf__load_into_kernel(btf)) {
		e = -errno ?: -EINVAL;
		log_err("sl_origdst: building its BTF failed: %s", strerror(-e));
		btf__free(btf);
		return e;
	}
	{
		LIBBPF_OPTS(bpf_map_create_opts, mo, .btf_fd = btf__fd(btf),
			    .btf_key_type_id = (__u32)k, .btf_value_type_id = (__u32)v);

		fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, SL_MAP_ORIGDST,
				    sizeof(struct sl_origdst_key), sizeof(struct sl_origdst_val),
				    SL_MAX_ORIGDST, &mo);
	}
	btf__free(btf);
	if (fd < 0)
		return -errno;
	if (bpf_obj_pin(fd, path)) {
		e = -errno;
		close(fd);
		return e;
	}
	log_info("created and pinned %s", path);
	return fd;
}

/* ---- snapshot lookups ------------------------------------------------------ */

static const struct snap_workload *workload_at(const struct snapshot *s, const __be32 a[4])
{
	for (size_t i = 0; i < s->nworkloads; i++) {
		const struct snap_workload *w = &s->workloads[i];

		if ((w->has_v4 && !memcmp(w->addr4, a, 16)) || (w->has_v6 && !memcmp(w->addr6, a, 16)))
			return w;
	}
	return NULL;
}

static uint32_t identity_of(const struct snapshot *s, const char *spiffe)
{
	for (size_t i = 0; i < s->nidentities; i++)
		if (!strcmp(s->identities[i].spiffe, spiffe))
			return s->identities[i].id;
	return SL_ID_UNKNOWN;
}

/* The kernel's order (docs/snapshot.md): a matching DENY wins; if the
 * destination has any ALLOW, only a matching one allows. */
static bool authorized(const struct snapshot *s, uint32_t src, uint32_t dst, uint16_t port)
{
	bool any_allow = false, allow = false;

	for (size_t i = 0; i < s->npolicies; i++) {
		const struct snap_policy *p = &s->policies[i];
		bool m;

		if (p->dst != dst)
			continue;
		m = p->proto == IPPROTO_TCP && (p->src == SL_ID_ANY || p->src == src) &&
		    (!p->port || p->port == port);
		if (p->action == SNAP_DENY && m)
			return false;
		if (p->action == SNAP_ALLOW) {
			any_allow = true;
			allow |= m;
		}
	}
	return !any_allow || allow;
}

static void sockaddr_to(const struct sockaddr_storage *ss, __be32 a[4], uint16_t *port)
{
	memset(a, 0, 16);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *i = (const void *)ss;

		a[2] = htonl(0xffff);
		a[3] = i->sin_addr.s_addr;
		*port = ntohs(i->sin_port);
	} else {
		const struct sockaddr_in6 *i = (const void *)ss;

		memcpy(a, &i->sin6_addr, 16);
		*port = ntohs(i->sin6_port);
	}
}

/* mark: SO_MARK of the socket (SL_PROXY_MARK for deliveries to local
 * workloads: tc lets them through, the proxy authorized the peer); 0: none. */
static int connect_to(const __be32 a[4], uint16_t port, uint32_t mark)
{
	struct sockaddr_storage ss = {};
	socklen_t len;
	int fd;

	if (addr_is_v4(a)) {
		struct sockaddr_in *i = (void *)&ss;

		i->sin_family = AF_INET;
		i->sin_addr.s_addr = a[3];
		i->sin_port = htons(port);
		len = sizeof(*i);
	} else {
		struct sockaddr_in6 *i = (void *)&ss;

		i->sin6_family = AF_INET6;
		memcpy(&i->sin6_addr, a, 16);
		i->sin6_port = htons(port);
		len = sizeof(*i);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark))) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static void reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* A flow event of `type` (open, close, deny), which also counts. */
static void report(struct proxy *p, struct pl_flow *f, const char *type, const char *reason)
{
	snprintf(f->type, sizeof(f->type), "%s", type);
	snprintf(f->reason, sizeof(f->reason), "%s", reason ?: "");
	link_event(p->o.link, PL_FLOW, f, sizeof(*f));
}

/* A refusal: counter, and a deny flow event when we know who. */
static void refused(struct proxy *p, const char *reason, const struct pl_flow *f)
{
	struct pl_reason r = {};

	snprintf(r.reason, sizeof(r.reason), "%s", reason);
	link_event(p->o.link, PL_REFUSED, &r, sizeof(r));
	if (f) {
		struct pl_flow d = *f;

		report(p, &d, "deny", reason);
	}
}

/* ---- tunnels end ----------------------------------------------------------- */

static void on_tunnel_close(struct hb_conn *c, const struct hb_tunnel_stats *st, void *targ,
			    void *arg)
{
	struct proxy *p = arg;
	struct flow *fl = targ;

	if (!fl)
		return;
	if (st->established) {
		bool src_side = fl->f.reporter == SL_REPORTER_SOURCE;

		/* outbound: TCP is the client; inbound: TCP is the server */
		fl->f.sent = src_side ? st->bytes_from_tcp : st->bytes_to_tcp;
		fl->f.received = src_side ? st->bytes_to_tcp : st->bytes_from_tcp;
		fl->f.duration_ms = (double)(st->closed_ms - st->opened_ms);
		report(p, &fl->f, "close", st->reset ? "reset" : NULL);
		if (p->tunnels)
			p->tunnels--;
	} else {
		/* outbound: the peer refused (403: policy or not its workload,
		 * 503: unreachable) or the tunnel failed; inbound: the
		 * destination did not answer */
		if (p->tunnels)
			p->tunnels--;
		if (fl->f.reporter == SL_REPORTER_SOURCE)
			refused(p, hb_conn_why(c) == HB_CLOSE_PEER ? "identity_mismatch" :
				st->status == 403 ? "upstream_403" : st->status ? "upstream_refused" :
				"tunnel_failed", &fl->f);
		else
			refused(p, st->status == 504 ? "connect_timeout" : "connect_failed", &fl->f);
	}
	free(fl);
}

static void tunnel_opened(struct proxy *p, struct flow *fl)
{
	report(p, &fl->f, "open", NULL);
	p->tunnels++;
}

/* ---- secure naming ------------------------------------------------------------ */

/* A workload's SPIFFE ID of our trust domain (not a node's or the control
 * plane's). */
static bool workload_uri(const struct proxy *p, const char *uri)
{
	char pre[300];

	snprintf(pre, sizeof(pre), "spiffe://%s/ns/", p->o.certs->td);
	return !strncmp(uri, pre, strlen(pre)) && strstr(uri + strlen(pre), "/sa/");
}

/* The identity number an SNI names, or SL_ID_UNKNOWN. */
static uint32_t sni_identity(const char *sni)
{
	size_t n = strspn(sni, "0123456789");
	unsigned long v;

	if (!n || n > 10 || strcmp(sni + n, SNI_SUFFIX))
		return SL_ID_UNKNOWN;
	v = strtoul(sni, NULL, 10);
	return v <= UINT32_MAX ? (uint32_t)v : SL_ID_UNKNOWN;
}

/* Server: present the certificate of the identity the client names, if
 * this node holds it (the control plane signs it only for nodes that host
 * a workload of that identity). Otherwise the node's own certificate goes
 * out: a client that expects a workload identity refuses it, and the
 * refusal names both. */
static int in_sni(struct hb_conn *c, SSL *ssl, const char *sni, void *arg)
{
	struct proxy *p = arg;
	uint32_t id;
	const struct pcert *wc;

	if (!sni)
		return 0;
	id = sni_identity(sni);
	wc = id != SL_ID_UNKNOWN ? pcerts_get(p->o.certs, id) : NULL;
	if (!wc) {
		/* debug: the client is not authenticated yet, and the client
		 * that refuses us logs both identities */
		log_debug("HBONE from %s asks for %.80s: this node holds no such workload "
			  "certificate; presenting the node's", hb_conn_addr(c), sni);
		return 0;
	}
	if (SSL_use_cert_and_key(ssl, wc->cert, wc->key, NULL, 1) != 1) {
		pki_log_errors("presenting a workload certificate", NULL, 0);
		return -EIO;
	}
	return 0;
}

/* ---- inbound ---------------------------------------------------------------- */

static int in_peer(struct hb_conn *c, const char *uri, void *arg)
{
	struct proxy *p = arg;

	if (!workload_uri(p, uri)) {
		log_info("HBONE from %s refused: %s is not a workload of trust domain %s",
			 hb_conn_addr(c), uri, p->o.certs->td);
		return -EACCES;
	}
	return 0;
}

static int in_connect(struct hb_conn *c, int32_t sid, const char *authority, void **targ,
		      void *arg)
{
	struct proxy *p = arg;
	const struct snap_workload *w;
	struct flow *fl = calloc(1, sizeof(*fl));
	__be32 dst[4];
	uint16_t port;
	int fd;

	if (!fl)
		return -503;
	snprintf(fl->f.src_principal, sizeof(fl->f.src_principal), "%s", hb_conn_peer(c));
	fl->f.reporter = SL_REPORTER_DESTINATION;
	fl->f.src_id = identity_of(&p->s, fl->f.src_principal);
	{
		/* the peer's address: its node; the client pod's is not known */
		__be32 a[4];
		uint16_t pp;

		if (!addr_hostport_parse(hb_conn_addr(c), a, &pp)) {
			memcpy(fl->f.saddr, a, 16);
			fl->f.sport = pp;
		}
	}
	if (addr_hostport_parse(authority, dst, &port)) {
		refused(p, "bad_authority", &fl->f);
		free(fl);
		return -400;
	}
	memcpy(fl->f.daddr, dst, 16);
	fl->f.dport = port;
	w = workload_at(&p->s, dst);
	if (!w || !w->local) {
		log_info("HBONE CONNECT %s from %s (%s) refused: not a workload of this node",
			 authority, hb_conn_addr(c), fl->f.src_principal);
		refused(p, "not_local", &fl->f);
		free(fl);
		return -403;
	}
	fl->f.dst_id = w->identity;
	{
		const struct snap_identity *si = snapshot_identity(&p->s, w->identity);

		snprintf(fl->f.dst_principal, sizeof(fl->f.dst_principal), "%s",
			 si ? si->spiffe : "unknown");
	}
	/* a connection on which we presented a workload's certificate carries
	 * tunnels to that identity's workloads only: the client verified it */
	if (hb_conn_local(c) && workload_uri(p, hb_conn_local(c)) && strcmp(hb_conn_local(c), fl->f.dst_principal)) {
		log_info("HBONE CONNECT %s from %s refused: it is %s, the connection was made for %s",
			 authority, fl->f.src_principal, fl->f.dst_principal, hb_conn_local(c));
		refused(p, "wrong_identity", &fl->f);
		free(fl);
		return -403;
	}
	if (!authorized(&p->s, fl->f.src_id, w->identity, port)) {
		log_info("HBONE CONNECT %s from %s refused by policy", authority, fl->f.src_principal);
		refused(p, "policy", &fl->f);
		free(fl);
		return -403;
	}
	fd = connect_to(dst, port, SL_PROXY_MARK);
	if (fd < 0) {
		refused(p, "connect_failed", &fl->f);
		free(fl);
		return -503;
	}
	*targ = fl;
	tunnel_opened(p, fl);
	return fd;
}

static void in_close(struct hb_conn *c, enum hb_close why, const char *msg, void *arg)
{
	struct proxy *p = arg;

	p->inbound--;
	if (why == HB_CLOSE_NORMAL || why == HB_CLOSE_IO)
		return;
	log_info("HBONE connection from %s cut off: %s", hb_conn_addr(c), msg);
	{
		struct pl_flow f = { .reporter = SL_REPORTER_DESTINATION };
		__be32 a[4];

		snprintf(f.src_principal, sizeof(f.src_principal), "%s", hb_conn_peer(c) ?: "");
		uint16_t pp;

		if (!addr_hostport_parse(hb_conn_addr(c), a, &pp)) {
			memcpy(f.saddr, a, 16);
			f.sport = pp;
		}
		refused(p, hb_close_name(why), &f);
	}
}

static const struct hb_ops in_ops = { in_peer, in_connect, on_tunnel_close, in_close, in_sni };

/* ---- outbound --------------------------------------------------------------- */

static void out_close(struct hb_conn *c, enum hb_close why, const char *msg, void *arg)
{
	struct proxy *p = arg;
	struct pooled *pc = hb_conn_user(c);

	for (struct pooled **pp = &p->pool; pc && *pp; pp = &(*pp)->next) {
		if (*pp == pc) {
			*pp = pc->next;
			free(pc);
			break;
		}
	}
	if (why == HB_CLOSE_PEER) {
		log_warn("HBONE to %s refused: not the destination's identity: %s", hb_conn_addr(c), msg);
		link_event(p->o.link, PL_MISMATCH, NULL, 0);
		return;
	}
	if (why != HB_CLOSE_NORMAL)
		log_warn("HBONE connection to %s closed: %s", hb_conn_addr(c), msg);
	if (why == HB_CLOSE_TLS)
		refused(p, "upstream_tls", NULL);
}

static const struct hb_ops out_ops = { NULL, NULL, on_tunnel_close, out_close, NULL };

/* A connection from wc's identity to `node` on which the server presented
 * dst's certificate (secure naming): the SNI names dst, and nothing but
 * dst's SPIFFE ID is accepted. */
static struct hb_conn *pool_get(struct proxy *p, const struct pcert *wc, const char *node,
				const char *hbone, const struct snap_identity *dst)
{
	const char *expect[] = { dst->spiffe, NULL };
	char sni[32];
	__be32 a[4];
	uint16_t port;
	struct pooled *pc, *next;
	int fd;

	/* next first: retiring an idle connection frees pc (out_close) */
	for (pc = p->pool; pc; pc = next) {
		next = pc->next;
		if (pc->src != wc->id || pc->dst != dst->id || strcmp(pc->node, node))
			continue;
		if (pc->gen != wc->gen) {
			hb_conn_retire(pc->c);   /* an older certificate: let it drain */
			continue;
		}
		if (hb_conn_usable(pc->c))
			return pc->c;
	}
	if (addr_hostport_parse(hbone, a, &port))
		return NULL;
	fd = connect_to(a, port, 0);
	if (fd < 0)
		return NULL;
	pc = calloc(1, sizeof(*pc));
	if (!pc) {
		close(fd);
		return NULL;
	}
	snprintf(sni, sizeof(sni), "%u" SNI_SUFFIX, dst->id);
	pc->c = hb_client_conn(p->l, fd, wc->ctx, &p->lim, sni, expect, &out_ops, p);
	if (!pc->c) {
		free(pc);
		return NULL;
	}
	pc->src = wc->id;
	pc->dst = dst->id;
	pc->gen = wc->gen;
	snprintf(pc->node, sizeof(pc->node), "%s", node);
	hb_conn_set_user(pc->c, pc);
	pc->next = p->pool;
	p->pool = pc;
	return pc->c;
}

static void outbound(struct proxy *p, int fd)
{
	struct sockaddr_storage ss = {};
	socklen_t sl = sizeof(ss);
	struct sl_origdst_key k = {};
	struct sl_origdst_val v;
	const struct snap_workload *w;
	const struct snap_identity *si = NULL;
	const struct snap_node *n = NULL;
	const struct pcert *wc;
	struct flow *fl = NULL;
	struct hb_conn *c;
	char auth[SL_ADDRSTRLEN + 8], a[SL_ADDRSTRLEN];
	struct pl_flow f = { .reporter = SL_REPORTER_SOURCE };

	if (getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		close(fd);
		return;
	}
	sockaddr_to(&ss, k.client, &k.client_port);
	memcpy(f.saddr, k.client, 16);
	f.sport = k.client_port;
	if (bpf_map_lookup_elem(p->origdst_fd, &k, &v)) {
		addr_fmt(k.client, a);
		log_info("outbound connection from %s port %u has no sl_origdst entry: reset", a,
			 k.client_port);
		refused(p, "no_origdst", NULL);
		reset_close(fd);
		return;
	}
	memcpy(f.daddr, v.dst, 16);
	f.dport = v.dst_port;
	f.src_id = v.src_identity;
	w = workload_at(&p->s, v.dst);
	if (w)
		f.dst_id = w->identity;
	wc = pcerts_get(p->o.certs, v.src_identity);
	if (!wc) {
		refused(p, "no_certificate", &f);
		reset_close(fd);
		return;
	}
	if (!w || !w->node[0] || !(n = snapshot_node(&p->s, w->node)) ||
	    !(si = snapshot_identity(&p->s, w->identity))) {
		addr_fmt(v.dst, a);
		log_info("outbound to %s: %s", a, !w ? "not a mesh workload" :
			 !si && n ? "its identity is not in the snapshot" :
			 "its node has no HBONE address in the snapshot");
		refused(p, "no_route", &f);
		reset_close(fd);
		return;
	}
	c = pool_get(p, wc, w->node, n->hbone, si);
	fl = calloc(1, sizeof(*fl));
	if (!c || !fl) {
		free(fl);
		refused(p, "upstream_connect", &f);
		reset_close(fd);
		return;
	}
	fl->f = f;
	snprintf(fl->f.src_principal, sizeof(fl->f.src_principal), "%s", wc->spiffe);
	/* the only identity the connection's server may have presented */
	snprintf(fl->f.dst_principal, sizeof(fl->f.dst_principal), "%s", si->spiffe);
	addr_fmt(v.dst, a);
	snprintf(auth, sizeof(auth), addr_is_v4(v.dst) ? "%s:%u" : "[%s]:%u", a, v.dst_port);
	tunnel_opened(p, fl);
	if (hb_tunnel_open(c, auth, fd, fl)) {
		/* nothing will report it: undo the open */
		if (p->tunnels)
			p->tunnels--;
		refused(p, "upstream_connect", &fl->f);
		free(fl);
	}
}

/* ---- listeners ---------------------------------------------------------------- */

static void on_accept(struct loop_handler *h, uint32_t events)
{
	struct listener *ls = (struct listener *)h;
	struct proxy *p = ls->p;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		p->accepted++;
		if (!ls->inbound) {
			outbound(p, fd);
			continue;
		}
		if ((p->inbound >= MAX_INBOUND || hb_loop_handshaking(p->l) >= MAX_HANDSHAKING) &&
		    !hb_loop_evict_handshaking(p->l)) {
			refused(p, "too_many_connections", NULL);
			reset_close(fd);
			continue;
		}
		if (hb_server_conn(p->l, fd, p->o.certs->server_ctx, &p->lim, &in_ops, p))
			p->inbound++;
	}
}

/* ---- life cycle --------------------------------------------------------------- */

struct proxy *proxy_new(const struct proxy_opts *o)
{
	struct proxy *p = calloc(1, sizeof(*p));
	int e;

	if (!p)
		return NULL;
	p->o = *o;
	p->origdst_fd = -1;
	p->l = o->loop;
	p->lim = hb_default_limits;
	if (o->handshake_ms)
		p->lim.handshake_ms = o->handshake_ms;
	for (int i = 0; i < PL_LS_MAX; i++) {
		p->ls[i] = (struct listener){ .h.fn = on_accept, .p = p, .fd = o->fds[i],
					      .inbound = i == PL_LS_HBONE };
	}
	e = origdst_open(o->pin_root);
	if (e < 0) {
		log_err("proxy: %s/%s: %s", o->pin_root, SL_MAP_ORIGDST, strerror(-e));
		proxy_free(p);
		return NULL;
	}
	p->origdst_fd = e;
	{
		/* a descriptor per connection, and two per tunnel */
		unsigned long fds = sys_raise_fd_limit();

		if (fds < 3 * MAX_INBOUND)
			log_warn("proxy: the open-file limit is %lu, below the %d its %d inbound "
				 "connections may need (LimitNOFILE)", fds, 3 * MAX_INBOUND, MAX_INBOUND);
	}
	return p;
}

int proxy_accept(struct proxy *p, bool on)
{
	if (on == p->accepting)
		return 0;
	for (int i = 0; i < PL_LS_MAX; i++) {
		struct listener *ls = &p->ls[i];

		if (ls->fd < 0)
			continue;
		if (!on) {
			loop_del(hb_loop_base(p->l), ls->fd);
		} else {
			int e = loop_add(hb_loop_base(p->l), ls->fd, EPOLLIN, &ls->h);

			if (e)
				return e;
		}
	}
	p->accepting = on;
	return 0;
}

void proxy_drain(struct proxy *p)
{
	proxy_accept(p, false);
	for (int i = 0; i < PL_LS_MAX; i++) {
		if (p->ls[i].fd >= 0)
			close(p->ls[i].fd);
		p->ls[i].fd = -1;
	}
	hb_loop_drain(p->l);
}

size_t proxy_certs_missing(const struct proxy *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->s.nworkloads; i++)
		if (p->s.workloads[i].local && !pcerts_get(p->o.certs, p->s.workloads[i].identity))
			n++;
	return n;
}

void proxy_stats(const struct proxy *p, struct pl_status *st)
{
	size_t pooled = 0;

	for (const struct pooled *pc = p->pool; pc; pc = pc->next)
		pooled++;
	st->tunnels = p->tunnels;
	st->inbound = p->inbound;
	st->outbound = pooled;
	st->accepted = p->accepted;
	st->snapshot_version = p->s.version;
}

void proxy_free(struct proxy *p)
{
	if (!p)
		return;
	if (p->l)
		hb_loop_close_conns(p->l);   /* reports every tunnel: flows are freed */
	while (p->pool) {
		struct pooled *n = p->pool->next;

		free(p->pool);
		p->pool = n;
	}
	proxy_accept(p, false);
	for (int i = 0; i < PL_LS_MAX; i++)
		if (p->ls[i].fd >= 0)
			close(p->ls[i].fd);
	if (p->origdst_fd >= 0)
		close(p->origdst_fd);
	snapshot_free(&p->s);
	free(p);
}

#define DUP(dst, src, n) \
	((dst) = calloc((n) ?: 1, sizeof(*(src))), (dst) ? memcpy((dst), (src), (n) * sizeof(*(src))) : NULL)

void proxy_set_snapshot(struct proxy *p, const struct snapshot *s)
{
	struct snapshot c = { .version = s->version, .nidentities = s->nidentities,
			      .nworkloads = s->nworkloads, .npolicies = s->npolicies,
			      .nnodes = s->nnodes };

	DUP(c.identities, s->identities, s->nidentities);
	DUP(c.workloads, s->workloads, s->nworkloads);
	DUP(c.policies, s->policies, s->npolicies);
	DUP(c.nodes, s->nodes, s->nnodes);
	if (!c.identities || !c.workloads || !c.policies || !c.nodes) {
		log_err("proxy: out of memory for the snapshot; keeping the previous one");
		free(c.identities);
		free(c.workloads);
		free(c.policies);
		free(c.nodes);
		return;
	}
	for (size_t i = 0; i < c.nworkloads; i++) {
		c.workloads[i].mtls_ports = NULL;   /* not ours */
		c.workloads[i].nmtls_ports = 0;
	}
	snapshot_free(&p->s);
	p->s = c;
}
