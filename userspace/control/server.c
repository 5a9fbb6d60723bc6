// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * server.c - the control plane's API server (server.h): listener, TLS,
 * epoll loop, and the route table that authorizes a request and hands it
 * to its handler (nodes.c, api_config.c, api_certs.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control/api_certs.h"
#include "control/api_config.h"
#include "control/nodes.h"
#include "control/request.h"
#include "control/server.h"
#include "control/server_state.h"
#include "lib/core/heap.h"
#include "lib/core/log.h"
#include "lib/core/loop.h"
#include "lib/core/sys.h"

#define MAX_CONNS 1024

/* ---- routes -------------------------------------------------------------- */

enum role { ROLE_NONE, ROLE_ADMIN, ROLE_NODE, ROLE_OTHER };

static enum role role_of(const struct server *s, struct h2_conn *c, const char **node)
{
	const char *p = h2_conn_peer(c);
	size_t pl = strlen(s->node_prefix);

	if (!p)
		return ROLE_NONE;
	if (strcmp(p, s->admin_uri) == 0)
		return ROLE_ADMIN;
	if (strncmp(p, s->node_prefix, pl) == 0 && store_node_name_ok(p + pl)) {
		*node = p + pl;
		return ROLE_NODE;
	}
	return ROLE_OTHER;
}

/* A handler answers the request on cn->h; `node` is the caller's node
 * name when its role is ROLE_NODE, NULL otherwise. */
typedef void route_fn(struct server *s, struct conn *cn, const struct h2_req *r,
		      const char *node);

static const struct route {
	const char *method, *path;
	route_fn *handler;
	enum role role;        /* who may call it; ROLE_NONE: anyone, no certificate */
} routes[] = {
	{ "POST", "/v1/join",      h_join,      ROLE_NONE },
	{ "GET",  "/v1/watch",     h_watch,     ROLE_NODE },
	{ "POST", "/v1/ack",       h_ack,       ROLE_NODE },
	{ "POST", "/v1/apply",     h_apply,     ROLE_ADMIN },
	{ "POST", "/v1/delete",    h_delete,    ROLE_ADMIN },
	{ "GET",  "/v1/resources", h_resources, ROLE_ADMIN },
	{ "GET",  "/v1/status",    h_status,    ROLE_ADMIN },
	{ "POST", "/v1/certs",     h_certs,     ROLE_NODE },
	{ "POST", "/v1/workloads", h_workloads, ROLE_NODE },
};

static void on_request(struct h2_conn *c, const struct h2_req *r, void *arg)
{
	struct conn *cn = h2_conn_user(c);
	struct server *s = arg;
	const char *node = NULL;
	enum role role = role_of(s, c, &node);
	const struct route *rt = NULL;

	log_debug("%s %s from %s (%s)", r->method, r->path, cn->addr, h2_conn_peer(c) ?: "no certificate");
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]) && !rt; i++)
		if (strcmp(r->path, routes[i].path) == 0)
			rt = &routes[i];
	if (!rt) {
		reply_err(c, r->stream_id, 404, "no such endpoint: %s", r->path);
		return;
	}
	if (strcmp(r->method, rt->method) != 0) {
		reply_err(c, r->stream_id, 405, "%s takes %s, not %s", r->path, rt->method, r->method);
		return;
	}
	if (rt->role != ROLE_NONE && role == ROLE_NONE) {
		reply_err(c, r->stream_id, 401, "%s needs a client certificate from this control "
			  "plane's CA", r->path);
		return;
	}
	if (rt->role != ROLE_NONE && role != rt->role) {
		reply_err(c, r->stream_id, 403, "%s is for %s; this certificate is %s", r->path,
			  rt->role == ROLE_ADMIN ? "the admin" : "nodes", h2_conn_peer(c));
		return;
	}
	rt->handler(s, cn, r, node);
}

static void on_stream_close(struct h2_conn *c, int32_t id, void *arg)
{
	watch_closed(arg, h2_conn_user(c), id);
}

static const struct h2_server_ops server_ops = { on_request, on_stream_close };

/* ---- connections and the loop -------------------------------------------- */

static void conn_close(struct server *s, struct conn *cn, const char *why)
{
	log_debug("connection from %s closed: %s", cn->addr, why);
	epoll_ctl(s->efd, EPOLL_CTL_DEL, h2_conn_fd(cn->h), NULL);
	h2_conn_free(cn->h);   /* reports open streams: watchers go */
	if (cn->prev)
		cn->prev->next = cn->next;
	else
		s->conns = cn->next;
	if (cn->next)
		cn->next->prev = cn->prev;
	s->nconns--;
	free(cn);
}

static void conn_update(struct server *s, struct conn *cn)
{
	unsigned int ev = h2_conn_events(cn->h);

	if (ev != cn->events) {
		struct epoll_event e = { .events = ev, .data.ptr = cn };

		epoll_ctl(s->efd, EPOLL_CTL_MOD, h2_conn_fd(cn->h), &e);
		cn->events = ev;
	}
}

/* At MAX_CONNS, the connection that has waited longest in its TLS
 * handshake goes, so that peers that never finish one (slowloris) cannot
 * keep a new client out until their handshakes time out. It is closed by
 * settle(), after the batch that may still hold an event for it. */
static bool evict_handshaking(struct server *s)
{
	struct conn *old = NULL;

	/* newest first: the last one found has waited longest */
	for (struct conn *cn = s->conns; cn; cn = cn->next)
		if (!cn->kill && !h2_conn_established(cn->h))
			old = cn;
	if (!old)
		return false;
	log_debug("connection from %s: TLS handshake unfinished at the connection limit", old->addr);
	old->kill = true;
	return true;
}

/* At most 64 a call: connections evicted meanwhile are freed by settle()
 * after the batch, so a flood of them is never all in memory at once
 * (the listener is level-triggered: the rest come next time). */
static void accept_all(struct server *s)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char host[INET6_ADDRSTRLEN] = "?", serv[8] = "?";
		struct epoll_event e;
		struct conn *cn;
		int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (s->nconns >= MAX_CONNS && !evict_handshaking(s)) {
			log_warn("refusing a connection: %d connections open", MAX_CONNS);
			close(fd);
			continue;
		}
		getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		cn = calloc(1, sizeof(*cn));
		if (!cn) {
			close(fd);
			continue;
		}
		cn->kind = SRC_CONN;
		cn->srv = s;
		snprintf(cn->addr, sizeof(cn->addr), "%s:%s", host, serv);
		cn->h = h2_server_conn(fd, s->tls, &s->lim, &server_ops, s);
		if (!cn->h) {
			free(cn);
			continue;
		}
		h2_conn_set_user(cn->h, cn);
		cn->events = h2_conn_events(cn->h);
		e = (struct epoll_event){ .events = cn->events, .data.ptr = cn };
		if (epoll_ctl(s->efd, EPOLL_CTL_ADD, fd, &e)) {
			h2_conn_free(cn->h);
			free(cn);
			continue;
		}
		cn->next = s->conns;
		if (s->conns)
			s->conns->prev = cn;
		s->conns = cn;
		s->nconns++;
	}
}

/* HOST:PORT or [HOST]:PORT: 0 or -EINVAL. */
static int split_hostport(const char *in, char *host, size_t hl, char *port, size_t pl)
{
	const char *colon = strrchr(in, ':');
	size_t n;

	if (!colon || !colon[1] || strlen(colon + 1) >= pl)
		return -EINVAL;
	n = (size_t)(colon - in);
	if (in[0] == '[') {
		if (n < 2 || in[n - 1] != ']')
			return -EINVAL;
		in++;
		n -= 2;
	}
	if (n >= hl)
		return -EINVAL;
	memcpy(host, in, n);
	host[n] = '\0';
	snprintf(port, pl, "%s", colon + 1);
	return 0;
}

/* A listening socket on addr: the fd, or -errno with the reason in err. */
static int listen_on(const char *addr, char *host, size_t hl, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char port[16];
	int fd = -1, one = 1, rc;

	if (split_hostport(addr, host, hl, port, sizeof(port))) {
		snprintf(err, errlen, "--listen %s: not ADDRESS:PORT ([ADDRESS]:PORT for IPv6)", addr);
		return -EINVAL;
	}
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		int e = rc == EAI_SYSTEM ? -errno : rc == EAI_MEMORY ? -ENOMEM : -EINVAL;

		snprintf(err, errlen, "--listen %s: %s", addr, gai_strerror(rc));
		return e;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN)) {
		rc = -errno;
		snprintf(err, errlen, "--listen %s: %s", addr, strerror(-rc));
		if (fd >= 0)
			close(fd);
		fd = rc;
	}
	freeaddrinfo(ai);
	return fd;
}

/* The API's certificate: every name it may be reached by. */
static SSL_CTX *server_tls(struct server *s, const char *listen_host, char *err, size_t errlen)
{
	const char *dns[16], *ips[16];
	char uri[512], hostname[256] = "", cp[PATH_MAX + 16], kp[PATH_MAX + 16];
	struct pki_names n = { .cn = "sluice-control", .uri = uri, .dns = dns, .ips = ips };
	struct pki_tls_opts to = { .server = true, .ca = s->st->ca.cert, .alpn = "h2" };
	unsigned char tmp[16];
	size_t nd = 0, ni = 0;
	EVP_PKEY *key = pki_key_new();
	X509 *cert = NULL;
	SSL_CTX *ctx = NULL;

	store_role_uri(s->st, "control", uri, sizeof(uri));
	dns[nd++] = "localhost";
	if (gethostname(hostname, sizeof(hostname) - 1) == 0 && hostname[0] && !strchr(hostname, ','))
		dns[nd++] = hostname;
	ips[ni++] = "127.0.0.1";
	ips[ni++] = "::1";
	if (strcmp(listen_host, "0.0.0.0") && strcmp(listen_host, "::") &&
	    strcmp(listen_host, "127.0.0.1") && strcmp(listen_host, "::1"))
		ips[ni++] = listen_host;
	for (const char *const *x = s->o->sans; x && *x && nd < 15 && ni < 15; x++) {
		if (inet_pton(AF_INET, *x, tmp) == 1 || inet_pton(AF_INET6, *x, tmp) == 1)
			ips[ni++] = *x;
		else
			dns[nd++] = *x;
	}
	dns[nd] = NULL;
	ips[ni] = NULL;
	if (key)
		cert = pki_issue(&s->st->ca, key, &n, PKI_LEAF_SECONDS, err, errlen);
	if (!cert)
		goto out;
	snprintf(cp, sizeof(cp), "%s/server.crt", s->st->dir);
	snprintf(kp, sizeof(kp), "%s/server.key", s->st->dir);
	if (pki_key_save(kp, key) || pki_cert_save(cp, cert)) {
		snprintf(err, errlen, "saving %s failed", cp);
		goto out;
	}
	to.cert = cert;
	to.key = key;
	ctx = pki_tls_ctx(&to);
	if (!ctx)
		snprintf(err, errlen, "creating the TLS context failed");
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return ctx;
}

static void tick(struct server *s)
{
	if (s->trim_at && loop_now_ms() >= s->trim_at) {
		s->trim_at = 0;
		sl_config_trim(s->st->cfg);
		malloc_trim(0);
	}
	for (struct conn *cn = s->conns, *next; cn; cn = next) {
		next = cn->next;
		if (h2_conn_tick(cn->h)) {
			log_info("connection from %s: %s", cn->addr, h2_conn_error(cn->h));
			conn_close(s, cn, h2_conn_error(cn->h));
		}
	}
}

/* Flush what requests queued on other connections; drop the killed. */
static void settle(struct server *s)
{
	for (struct conn *cn = s->conns, *next; cn; cn = next) {
		next = cn->next;
		if (cn->kill) {
			conn_close(s, cn, "cut off");
			continue;
		}
		if (cn->dirty) {
			cn->dirty = false;
			if (h2_conn_io(cn->h, 0)) {
				conn_close(s, cn, h2_conn_error(cn->h));
				continue;
			}
		}
		conn_update(s, cn);
	}
}


int server_run(struct store *st, const struct server_opts *o)
{
	struct server s = { .st = st, .o = o, .lfd = -1, .sfd = -1, .efd = -1,
			    .lsrc = SRC_LISTEN, .ssrc = SRC_SIGNAL, .wsrc = SRC_STORE };
	char err[1024], host[256];
	struct epoll_event e;
	sigset_t mask;
	int rc = 1;

	s.started = time(NULL);
	s.lim = h2_default_limits;
	s.lim.max_body_peer = H2_CONTROL_BODY_MAX;
	if (o->stall_ms)
		s.lim.stall_ms = o->stall_ms;
	store_role_uri(st, "admin", s.admin_uri, sizeof(s.admin_uri));
	store_role_uri(st, "node/", s.node_prefix, sizeof(s.node_prefix));
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if (node_addrs_load(&s, err, sizeof(err)) || startup_compile(&s, err, sizeof(err)))
		goto fail;
	s.lfd = listen_on(o->listen, host, sizeof(host), err, sizeof(err));
	if (s.lfd < 0)
		goto fail;
	if (sys_raise_fd_limit() < MAX_CONNS + 64)
		log_warn("the open-file limit is below the %d connections this server takes and "
			 "its own files (LimitNOFILE)", MAX_CONNS + 64);
	s.tls = server_tls(&s, host, err, sizeof(err));
	if (!s.tls)
		goto fail;
	s.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	s.efd = epoll_create1(EPOLL_CLOEXEC);
	if (s.sfd < 0 || s.efd < 0) {
		snprintf(err, sizeof(err), "signalfd/epoll: %s", strerror(errno));
		goto fail;
	}
	e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &s.lsrc };
	epoll_ctl(s.efd, EPOLL_CTL_ADD, s.lfd, &e);
	e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &s.ssrc };
	epoll_ctl(s.efd, EPOLL_CTL_ADD, s.sfd, &e);
	if (store_watch_fd(st) >= 0) {
		e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &s.wsrc };
		epoll_ctl(s.efd, EPOLL_CTL_ADD, store_watch_fd(st), &e);
	}
	log_info("listening on %s (trust domain %s, config version %llu, %zu resources, %zu nodes)",
		 o->listen, st->td, (unsigned long long)st->version, sl_config_count(st->cfg), s.nnodes);

	for (uint64_t last_tick = loop_now_ms();;) {
		struct epoll_event ev[64];
		int n = epoll_wait(s.efd, ev, 64, 1000);

		heap_huge();
		if (n < 0 && errno != EINTR) {
			snprintf(err, sizeof(err), "epoll_wait: %s", strerror(errno));
			goto fail;
		}
		for (int i = 0; i < n; i++) {
			enum src_kind *k = ev[i].data.ptr;

			if (*k == SRC_LISTEN) {
				accept_all(&s);
			} else if (*k == SRC_STORE) {
				node_store_changed(&s);
			} else if (*k == SRC_SIGNAL) {
				struct signalfd_siginfo si;

				if (read(s.sfd, &si, sizeof(si)) == sizeof(si)) {
					log_info("signal %u: stopping", si.ssi_signo);
					rc = 0;
					goto out;
				}
			} else {
				struct conn *cn = (struct conn *)k;

				if (cn->kill)
					continue;
				if (h2_conn_io(cn->h, ev[i].events))
					cn->kill = true;
			}
		}
		settle(&s);
		if (loop_now_ms() - last_tick >= 1000) {
			last_tick = loop_now_ms();
			tick(&s);
		}
	}
fail:
	log_err("%s", err);
out:
	while (s.conns)
		conn_close(&s, s.conns, "shutting down");
	nodes_free(&s);
	SSL_CTX_free(s.tls);
	if (s.lfd >= 0)
		close(s.lfd);
	if (s.sfd >= 0)
		close(s.sfd);
	if (s.efd >= 0)
		close(s.efd);
	return rc;
}
