// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxysup.c - the agent's side of the node proxy (proxysup.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent/proxyproc.h"
#include "agent/proxysup.h"
#include "lib/core/cli.h"
#include "lib/core/file.h"
#include "lib/core/log.h"
#include "lib/wire/pki.h"
#include "lib/wire/proxylink.h"

#define WAIT_RUNNING_MS 1500    /* for a running proxy to link, at start */
#define BACKOFF_MIN_MS  500
#define BACKOFF_MAX_MS  10000
#define STABLE_MS       10000   /* serving this long: the backoff resets */

enum pstate { P_STARTING, P_SERVING, P_DRAINING };

/* One proxy process: linked, or only started (fd -1) until its hello. */
struct pproc {
	struct loop_handler h;      /* the link */
	struct loop_handler ph;     /* its pidfd */
	struct psup *ps;
	int fd, pidfd;
	pid_t pid;
	bool child;                 /* ours to reap */
	enum pstate state;
	char version[64];
	uint64_t started_ms;        /* CLOCK_REALTIME, from its hello */
	uint64_t serving_since;     /* monotonic */
	struct pl_status st;
	struct pproc *next;
};

struct pcert_pem {
	uint32_t id;
	char spiffe[256];
	char *key, *cert;
};

struct psup {
	struct psup_opts o;
	char sock_path[PATH_MAX];
	int lfd;
	struct loop_handler lh;
	struct pproc *procs;
	int fds[PL_LS_MAX];         /* the listening sockets, from the serving proxy */
	bool started;               /* node credentials in hand */
	uint64_t spawn_due;         /* 0: none due */
	unsigned int backoff_ms;
	bool changed;
	char *ca, *node_cert, *node_key;
	struct pcert_pem *certs;
	size_t ncerts;
	int snap_fd;
	uint64_t snap_len, snap_version;
	const char *reasons[TM_PROXY_REASONS];   /* interned for telemetry */
};

static void pem_free(char *p)
{
	if (p)
		OPENSSL_cleanse(p, strlen(p));
	free(p);
}

/* ---- feeding a proxy --------------------------------------------------------- */

static int send_node(const struct psup *ps, int fd)
{
	struct pl_node b = { .ca_len = (uint32_t)strlen(ps->ca),
			     .cert_len = (uint32_t)strlen(ps->node_cert),
			     .key_len = (uint32_t)strlen(ps->node_key) };
	const void *t[3] = { ps->ca, ps->node_cert, ps->node_key };
	const size_t tl[3] = { b.ca_len, b.cert_len, b.key_len };

	return pl_send(fd, PL_NODE, &b, sizeof(b), t, tl, NULL, 0);
}

static int send_cert(int fd, const struct pcert_pem *c)
{
	struct pl_cert b = { .id = c->id, .key_len = (uint32_t)strlen(c->key),
			     .cert_len = (uint32_t)strlen(c->cert) };
	const void *t[3] = { c->key, c->cert, NULL };
	const size_t tl[3] = { b.key_len, b.cert_len, 0 };

	memcpy(b.spiffe, c->spiffe, sizeof(b.spiffe));
	return pl_send(fd, PL_CERT, &b, sizeof(b), t, tl, NULL, 0);
}

static int send_snapshot(const struct psup *ps, int fd)
{
	struct pl_snapshot b = { .version = ps->snap_version, .len = ps->snap_len };

	return pl_send(fd, PL_SNAPSHOT, &b, sizeof(b), NULL, NULL, &ps->snap_fd, 1);
}

static void proc_drop(struct pproc *p, const char *why);

/* Everything a proxy needs, in the order it needs it: it serves once
 * the node's credentials and a snapshot are in. */
static void feed(struct pproc *p)
{
	struct psup *ps = p->ps;
	int e = 0;

	if (p->fd < 0 || !ps->ca)
		return;
	e = send_node(ps, p->fd);
	for (size_t i = 0; !e && i < ps->ncerts; i++)
		e = send_cert(p->fd, &ps->certs[i]);
	if (!e && ps->snap_fd >= 0)
		e = send_snapshot(ps, p->fd);
	if (e)
		proc_drop(p, strerror(-e));
}

/* ---- processes --------------------------------------------------------------- */

static void changed(struct psup *ps) { ps->changed = true; }

static struct pproc *serving(const struct psup *ps)
{
	for (struct pproc *p = ps->procs; p; p = p->next)
		if (p->state == P_SERVING)
			return p;
	return NULL;
}

static struct pproc *starting(const struct psup *ps)
{
	for (struct pproc *p = ps->procs; p; p = p->next)
		if (p->state == P_STARTING)
			return p;
	return NULL;
}

static struct pproc *by_pid(const struct psup *ps, pid_t pid)
{
	for (struct pproc *p = ps->procs; p; p = p->next)
		if (p->pid == pid)
			return p;
	return NULL;
}

static void on_exit_event(struct loop_handler *h, uint32_t events);

static struct pproc *proc_new(struct psup *ps, pid_t pid, bool child)
{
	struct pproc *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->ps = ps;
	p->pid = pid;
	p->child = child;
	p->fd = -1;
	p->ph.fn = on_exit_event;
	p->pidfd = pidfd_open(pid, 0);
	if (p->pidfd < 0 || loop_add(ps->o.loop, p->pidfd, EPOLLIN, &p->ph)) {
		log_warn("proxy pid %d: cannot watch it: %s", (int)pid, strerror(errno));
		if (p->pidfd >= 0)
			close(p->pidfd);
		p->pidfd = -1;
	}
	p->next = ps->procs;
	ps->procs = p;
	return p;
}

/* Forget the link (the process may live on and link again). */
static void proc_drop(struct pproc *p, const char *why)
{
	if (p->fd < 0)
		return;
	log_info("proxy pid %d: link closed (%s)", (int)p->pid, why);
	loop_del(p->ps->o.loop, p->fd);
	close(p->fd);
	p->fd = -1;
}

static void proc_free(struct psup *ps, struct pproc *p)
{
	for (struct pproc **pp = &ps->procs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	proc_drop(p, "exited");
	if (p->pidfd >= 0) {
		loop_del(ps->o.loop, p->pidfd);
		close(p->pidfd);
	}
	if (p->child)
		waitpid(p->pid, NULL, WNOHANG);
	free(p);
}

static void set_listeners(struct psup *ps, const int *fds, int nfds, uint32_t mask)
{
	int k = 0;

	for (int i = 0; i < PL_LS_MAX; i++) {
		if (ps->fds[i] >= 0)
			close(ps->fds[i]);
		ps->fds[i] = (mask & (1u << i)) && k < nfds ? fds[k++] : -1;
	}
	for (; k < nfds; k++)
		close(fds[k]);
}

static bool have_listeners(const struct psup *ps)
{
	return ps->fds[PL_LS_HBONE] >= 0 || ps->fds[PL_LS_OUT] >= 0;
}

/* Start a proxy: on the sockets held (a successor or a crash's
 * replacement), else binding its own. Its pid, or -errno. */
static pid_t spawn(struct psup *ps, const char *why)
{
	pid_t pid = proxyproc_spawn(&ps->o, ps->fds);

	if (pid < 0) {
		log_err("starting %s: %s", ps->o.bin, strerror((int)-pid));
		return pid;
	}
	log_info("proxy: started %s pid %d (%s)%s", ps->o.bin, (int)pid, why,
		 have_listeners(ps) ? " on the listening sockets held" : "");
	if (!proc_new(ps, pid, true))
		log_warn("proxy pid %d: out of memory to track it", (int)pid);
	changed(ps);
	return pid;
}

static void schedule_restart(struct psup *ps, const char *why)
{
	uint64_t now = loop_now_ms();

	ps->backoff_ms = ps->backoff_ms ? ps->backoff_ms * 2 : 0;
	if (ps->backoff_ms > BACKOFF_MAX_MS)
		ps->backoff_ms = BACKOFF_MAX_MS;
	if (!ps->backoff_ms) {
		spawn(ps, why);
		ps->backoff_ms = BACKOFF_MIN_MS / 2;   /* the next crash soon after waits */
	} else {
		log_warn("proxy: restarting in %u ms (%s)", ps->backoff_ms, why);
		ps->spawn_due = now + ps->backoff_ms;
	}
}

static void on_exit_event(struct loop_handler *h, uint32_t events)
{
	struct pproc *p = (struct pproc *)((char *)h - offsetof(struct pproc, ph));
	struct psup *ps = p->ps;
	enum pstate was = p->state;
	pid_t pid = p->pid;
	int status = 0;
	bool reaped = p->child && waitpid(pid, &status, WNOHANG) == pid;

	p->child = false;
	if (reaped && WIFSIGNALED(status))
		log_warn("proxy pid %d: killed by signal %d", (int)pid, WTERMSIG(status));
	else if (reaped && WEXITSTATUS(status))
		log_warn("proxy pid %d: exited with status %d", (int)pid, WEXITSTATUS(status));
	else
		log_info("proxy pid %d: exited", (int)pid);
	proc_free(ps, p);
	changed(ps);
	if (was == P_DRAINING || !ps->started)
		return;
	if (was == P_SERVING || !serving(ps)) {
		ps->o.tm->proxy_restarts[TM_RESTART_CRASH]++;
		if (!serving(ps) && !starting(ps))
			schedule_restart(ps, was == P_SERVING ? "the serving proxy died" :
					 "the starting proxy died");
	}
}

/* ---- the link ---------------------------------------------------------------- */

static const char *intern(struct psup *ps, const char *r)
{
	for (size_t i = 0; i < TM_PROXY_REASONS; i++) {
		if (!ps->reasons[i])
			ps->reasons[i] = strdup(r);
		if (ps->reasons[i] && !strcmp(ps->reasons[i], r))
			return ps->reasons[i];
	}
	return "other";
}

static void on_flow(struct psup *ps, const struct pl_flow *b)
{
	struct tm_proxy_flow f = { .reporter = b->reporter, .src_id = b->src_id,
				   .dst_id = b->dst_id, .sport = b->sport, .dport = b->dport,
				   .sent = b->sent, .received = b->received,
				   .duration_ms = b->duration_ms };
	char type[sizeof(b->type) + 1], sp[sizeof(b->src_principal) + 1];
	char dp[sizeof(b->dst_principal) + 1], reason[sizeof(b->reason) + 1];

	snprintf(type, sizeof(type), "%.*s", (int)sizeof(b->type), b->type);
	snprintf(sp, sizeof(sp), "%.*s", (int)sizeof(b->src_principal), b->src_principal);
	snprintf(dp, sizeof(dp), "%.*s", (int)sizeof(b->dst_principal), b->dst_principal);
	snprintf(reason, sizeof(reason), "%.*s", (int)sizeof(b->reason), b->reason);
	memcpy(f.saddr, b->saddr, sizeof(f.saddr));
	memcpy(f.daddr, b->daddr, sizeof(f.daddr));
	f.type = !strcmp(type, "open") ? "open" : !strcmp(type, "close") ? "close" : "deny";
	f.src_principal = sp[0] ? sp : NULL;
	f.dst_principal = dp[0] ? dp : NULL;
	f.reason = reason[0] ? reason : NULL;
	telemetry_proxy_event(ps->o.tm, &f);
	telemetry_proxy_count(ps->o.tm, &f, f.type[0] == 'o', f.type[0] == 'c', f.type[0] == 'd');
}

static void tunnels_gauge(struct psup *ps)
{
	uint64_t n = 0;

	for (struct pproc *p = ps->procs; p; p = p->next)
		n += p->st.tunnels;
	ps->o.tm->proxy_tunnels = n;
}

static void on_hello(struct pproc *p, const struct pl_hello *b, int *fds, int nfds)
{
	struct psup *ps = p->ps;
	struct pproc *cur = serving(ps);

	snprintf(p->version, sizeof(p->version), "%.*s", (int)sizeof(b->version), b->version);
	p->started_ms = b->started_ms;
	if (b->draining) {
		p->state = P_DRAINING;
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		changed(ps);
		return;
	}
	/* its sockets are the node's listeners from now on (a successor's
	 * are the same sockets) */
	set_listeners(ps, fds, nfds, b->fds);
	if (ps->o.on_listening)
		ps->o.on_listening(ps->o.arg);
	log_info("proxy pid %d linked: version %s%s", (int)p->pid, p->version,
		 cur && cur != p ? " (a successor)" : "");
	feed(p);
	changed(ps);
}

static void on_status(struct pproc *p, const struct pl_status *b)
{
	struct psup *ps = p->ps;
	struct pproc *old = serving(ps);

	p->st = *b;
	ps->o.tm->proxy_events_dropped = b->events_dropped;
	if (b->draining && p->state != P_DRAINING) {
		p->state = P_DRAINING;   /* SIGTERM by someone else */
		changed(ps);
	}
	if (b->ready && p->state == P_STARTING) {
		p->state = P_SERVING;
		p->serving_since = loop_now_ms();
		changed(ps);
		if (old && old != p && old->fd >= 0) {
			struct pl_drain d = { .drain_ms = ps->o.drain_ms };

			if (!pl_send(old->fd, PL_DRAIN, &d, sizeof(d), NULL, NULL, NULL, 0)) {
				old->state = P_DRAINING;
				ps->o.tm->proxy_drains++;
				log_info("proxy pid %d serves; pid %d drains", (int)p->pid, (int)old->pid);
			}
		} else if (old && old != p) {
			/* the old one cannot be told: it must not serve beside */
			kill(old->pid, SIGTERM);
			old->state = P_DRAINING;
			ps->o.tm->proxy_drains++;
		}
		/* one an earlier agent started may be of an older build: this
		 * agent's binary takes over (its own are that binary already) */
		if (!p->child && strcmp(p->version, sluice_version))
			psup_restart(ps, "the proxy's version is not the agent's");
		else if (!p->child && proxyproc_replaced(p->pid))
			psup_restart(ps, "the proxy's binary was replaced");
	}
	tunnels_gauge(ps);
}

static void on_link(struct loop_handler *h, uint32_t events)
{
	struct pproc *p = (struct pproc *)h;
	static char buf[PL_MAX_MSG] __attribute__((aligned(8)));

	while (p->fd >= 0) {
		int fds[PL_MAX_FDS], nfds;
		long n = pl_recv(p->fd, buf, fds, &nfds);
		const struct pl_hdr *m = (const void *)buf;
		const void *b;

		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			proc_drop(p, n ? strerror((int)-n) : "closed by the proxy");
			return;
		}
		if ((b = pl_body(m, n, PL_HELLO, sizeof(struct pl_hello)))) {
			on_hello(p, b, fds, nfds);
			continue;
		}
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		if ((b = pl_body(m, n, PL_STATUS, sizeof(struct pl_status))))
			on_status(p, b);
		else if ((b = pl_body(m, n, PL_FLOW, sizeof(struct pl_flow))))
			on_flow(p->ps, b);
		else if ((b = pl_body(m, n, PL_REFUSED, sizeof(struct pl_reason)))) {
			char r[sizeof(((struct pl_reason *)0)->reason) + 1];

			snprintf(r, sizeof(r), "%.*s", (int)sizeof(r) - 1, ((const struct pl_reason *)b)->reason);
			telemetry_proxy_refused(p->ps->o.tm, intern(p->ps, r));
		} else if (m->type == PL_MISMATCH)
			p->ps->o.tm->hbone_identity_mismatch++;
	}
}

static void on_accept(struct loop_handler *h, uint32_t events)
{
	struct psup *ps = (struct psup *)((char *)h - offsetof(struct psup, lh));

	for (;;) {
		struct ucred cr;
		socklen_t cl = sizeof(cr);
		struct pproc *p;
		int fd = accept4(ps->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) || cr.uid != 0) {
			close(fd);
			continue;
		}
		p = by_pid(ps, cr.pid);
		if (!p)
			p = proc_new(ps, cr.pid, false);   /* one an earlier agent started */
		if (!p) {
			close(fd);
			continue;
		}
		proc_drop(p, "linked again");
		p->fd = fd;
		p->h.fn = on_link;
		{
			int sz = 4 << 20;

			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		}
		if (loop_add(ps->o.loop, fd, EPOLLIN, &p->h)) {
			close(fd);
			p->fd = -1;
		}
		ps->spawn_due = 0;   /* a running proxy turned up */
	}
}

/* ---- API ----------------------------------------------------------------------- */

struct psup *psup_new(const struct psup_opts *o)
{
	struct psup *ps = calloc(1, sizeof(*ps));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (!ps)
		return NULL;
	ps->o = *o;
	ps->lfd = ps->snap_fd = -1;
	for (int i = 0; i < PL_LS_MAX; i++)
		ps->fds[i] = -1;
	ps->lh.fn = on_accept;
	snprintf(ps->sock_path, sizeof(ps->sock_path), "%s/" PL_SOCK_NAME, o->run_dir);
	if (strlen(ps->sock_path) >= sizeof(sa.sun_path)) {
		log_err("proxy link %s: path too long", ps->sock_path);
		goto fail;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ps->sock_path);
	unlink(ps->sock_path);   /* an earlier agent's: the node lock is ours */
	ps->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ps->lfd < 0 || fchmod(ps->lfd, 0600) ||
	    bind(ps->lfd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(ps->sock_path, 0600) ||
	    listen(ps->lfd, 16) || loop_add(o->loop, ps->lfd, EPOLLIN, &ps->lh)) {
		log_err("proxy link %s: %s", ps->sock_path, strerror(errno));
		goto fail;
	}
	return ps;
fail:
	psup_free(ps);
	return NULL;
}

void psup_free(struct psup *ps)
{
	if (!ps)
		return;
	while (ps->procs) {
		struct pproc *p = ps->procs;

		p->child = false;   /* it runs on: not ours to wait for */
		proc_free(ps, p);
	}
	if (ps->lfd >= 0) {
		loop_del(ps->o.loop, ps->lfd);
		close(ps->lfd);
		unlink(ps->sock_path);
	}
	for (int i = 0; i < PL_LS_MAX; i++)
		if (ps->fds[i] >= 0)
			close(ps->fds[i]);
	for (size_t i = 0; i < ps->ncerts; i++) {
		pem_free(ps->certs[i].key);
		free(ps->certs[i].cert);
	}
	free(ps->certs);
	free(ps->ca);
	free(ps->node_cert);
	pem_free(ps->node_key);
	if (ps->snap_fd >= 0)
		close(ps->snap_fd);
	for (size_t i = 0; i < TM_PROXY_REASONS; i++)
		free((char *)ps->reasons[i]);
	free(ps);
}

static pid_t running_proxy(const struct psup *ps)
{
	return proxyproc_running(ps->o.run_dir);
}

void psup_start(struct psup *ps, X509 *ca, X509 *node_cert, EVP_PKEY *node_key)
{
	pid_t pid;

	if (ps->started)
		return;
	ps->ca = pki_cert_pem(ca);
	ps->node_cert = pki_cert_pem(node_cert);
	ps->node_key = pki_key_pem(node_key);
	if (!ps->ca || !ps->node_cert || !ps->node_key) {
		log_err("proxy: cannot encode the node's credentials");
		return;
	}
	ps->started = true;
	for (struct pproc *p = ps->procs; p; p = p->next)
		feed(p);
	if (ps->procs)
		return;
	pid = running_proxy(ps);
	if (pid) {
		log_info("proxy pid %d runs: waiting for it to link", (int)pid);
		ps->spawn_due = loop_now_ms() + WAIT_RUNNING_MS;
	} else {
		spawn(ps, "none running");
	}
}

void psup_set_cert(struct psup *ps, uint32_t id, const char *spiffe, EVP_PKEY *key, X509 *cert)
{
	struct pcert_pem *c = NULL;
	size_t i;

	for (i = 0; i < ps->ncerts && ps->certs[i].id != id; i++)
		;
	if (!cert) {
		if (i == ps->ncerts)
			return;
		pem_free(ps->certs[i].key);
		free(ps->certs[i].cert);
		ps->certs[i] = ps->certs[--ps->ncerts];
		for (struct pproc *p = ps->procs; p; p = p->next) {
			struct pl_forget f = { .id = id };

			if (p->fd >= 0 && pl_send(p->fd, PL_FORGET, &f, sizeof(f), NULL, NULL, NULL, 0))
				proc_drop(p, "send failed");
		}
		return;
	}
	if (i == ps->ncerts) {
		struct pcert_pem *nv = realloc(ps->certs, (ps->ncerts + 1) * sizeof(*nv));

		if (!nv)
			return;
		ps->certs = nv;
		memset(&nv[i], 0, sizeof(nv[i]));
		ps->ncerts++;
	}
	c = &ps->certs[i];
	pem_free(c->key);
	free(c->cert);
	c->id = id;
	snprintf(c->spiffe, sizeof(c->spiffe), "%s", spiffe);
	c->key = pki_key_pem(key);
	c->cert = pki_cert_pem(cert);
	if (!c->key || !c->cert) {
		pem_free(c->key);
		free(c->cert);
		*c = ps->certs[--ps->ncerts];
		return;
	}
	for (struct pproc *p = ps->procs; p; p = p->next)
		if (p->fd >= 0 && send_cert(p->fd, c))
			proc_drop(p, "send failed");
}

void psup_set_snapshot(struct psup *ps, const char *text, size_t len, uint64_t version)
{
	int fd = memfd_create("sluice-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t off = 0;

	while (fd >= 0 && off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n <= 0) {
			close(fd);
			fd = -1;
			break;
		}
		off += (size_t)n;
	}
	if (fd < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) {
		log_err("proxy: the snapshot cannot be handed over: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (ps->snap_fd >= 0)
		close(ps->snap_fd);
	ps->snap_fd = fd;
	ps->snap_len = len;
	ps->snap_version = version;
	for (struct pproc *p = ps->procs; p; p = p->next)
		if (p->fd >= 0 && ps->ca && send_snapshot(ps, p->fd))
			proc_drop(p, "send failed");
}

int psup_restart(struct psup *ps, const char *why)
{
	struct pproc *cur = serving(ps);

	if (!cur || starting(ps) || !have_listeners(ps))
		return -EAGAIN;
	ps->o.tm->proxy_restarts[TM_RESTART_UPGRADE]++;
	log_info("proxy: hot restart of pid %d: %s", (int)cur->pid, why);
	return spawn(ps, why) > 0 ? 0 : -ECHILD;
}

bool psup_tick(struct psup *ps)
{
	uint64_t now = loop_now_ms();
	struct pproc *cur = serving(ps);
	bool c;

	if (ps->spawn_due && now >= ps->spawn_due) {
		ps->spawn_due = 0;
		if (!serving(ps) && !starting(ps))
			spawn(ps, ps->procs ? "restart after backoff" : "the running proxy did not link");
	}
	if (cur && ps->backoff_ms && now - cur->serving_since >= STABLE_MS)
		ps->backoff_ms = 0;
	c = ps->changed;
	ps->changed = false;
	return c;
}

json_t *psup_status(const struct psup *ps)
{
	static const char *const state[] = { "starting", "serving", "draining" };
	json_t *a = json_array();

	for (const struct pproc *p = ps->procs; a && p; p = p->next) {
		json_array_append_new(a, json_pack("{s:i, s:s, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:i}",
			"pid", (int)p->pid, "version", p->version,
			"started_ms", (json_int_t)p->started_ms, "state", state[p->state],
			"linked", p->fd >= 0, "tunnels", (json_int_t)p->st.tunnels,
			"inbound", (json_int_t)p->st.inbound, "outbound", (json_int_t)p->st.outbound,
			"accepted", (json_int_t)p->st.accepted, "certificates", (int)p->st.certs));
	}
	return a;
}
