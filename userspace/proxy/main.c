// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * main.c - sluice-proxy: the node's mTLS proxy as its own process.
 *
 * The agent starts it (agent/proxy.c) and feeds it over the link; it runs
 * on when the agent goes away. Its life:
 * - start: take the listening sockets given (--listen-fd, a predecessor's)
 *   or bind them; link to the agent; accept nothing until the node's
 *   credentials and a snapshot have arrived (connections wait in the
 *   backlog meanwhile);
 * - serve: the event loop of hbone.h, a status to the agent every second;
 * - drain (the agent's PL_DRAIN for a successor, or SIGTERM): stop
 *   accepting, close the listeners, GOAWAY to HBONE peers, and exit once
 *   no tunnel is open (at least a second after, for streams already on
 *   their way) or at the drain timeout;
 * - SIGINT, or the run directory removed (the node uninstalled): exit now.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/addr.h"
#include "lib/core/cli.h"
#include "lib/core/file.h"
#include "lib/core/log.h"
#include "lib/node/snapshot.h"
#include "lib/core/sys.h"
#include "proxy/hbone.h"
#include "proxy/link.h"
#include "proxy/proxy.h"

#define DRAIN_MIN_MS 1000   /* streams sent before the GOAWAY still arrive */
/* How long a starting proxy waits for the certificates of the snapshot's
 * local workloads before it serves without them (the agent may be asking
 * a control plane that is down): meanwhile connections wait in the
 * backlog, and a predecessor, if any, goes on serving. */
#define CERT_WAIT_MS 5000

static const struct cli_opt proxy_options[] = {
	{ "node", required_argument, 'n', "NAME", "this node's name" },
	{ "pin-root", required_argument, 'p', "DIR",
	  "the node's bpffs pin root (sl_origdst); the run directory derives from it" },
	{ "hbone-addr", required_argument, 'H', "A:P", "HBONE listener (default 0.0.0.0:15008)" },
	{ "outbound-addr", required_argument, 'O', "A:P",
	  "listener for captured connections (default 0.0.0.0:15001)" },
	{ "outbound-addr6", required_argument, '6', "[A]:P",
	  "a second listener for captured IPv6 connections" },
	{ "listen-fd", required_argument, 'L', "ROLE=FD",
	  "take an inherited listening socket instead of binding one: ROLE hbone, out or "
	  "out6 (how the agent hands a predecessor's sockets to a successor)" },
	{ "hbone-handshake-timeout", required_argument, 'T', "MS",
	  "TLS handshake limit for HBONE (default 10000)" },
	{ "drain-timeout", required_argument, 'd', "MS",
	  "how long a draining proxy lets open tunnels run before it exits (default 30000)" },
	{ "log-level", required_argument, 'l', "L", "error|warn|info|debug (default info)" },
	{ "version", no_argument, 'V', NULL, "print the version and exit" },
	{ "help", no_argument | CLI_SHORT, 'h', NULL, "print this help and exit" },
	{ "man", no_argument, 'M', NULL, NULL },
	{}
};

static const struct cli_prog proxy_cli = {
	.name = "sluice-proxy",
	.section = 8,
	.summary = "the sluice node proxy: HBONE (mutual TLS) for the node's workloads",
	.usage = (const char *const[]){ "--node NAME --pin-root DIR [options]", NULL },
	.description =
		"The node proxy carries the node's connections that must be mutual TLS as "
		"HBONE: HTTP/2 CONNECT over TLS 1.3 to the destination node's proxy. "
		"sluice-agent starts it and gives it the node's and the workloads' "
		"certificates and the snapshot over <run dir>/proxy.sock; it runs on "
		"while the agent restarts.\n\n"
		"SIGTERM drains it: it stops accepting, tells HBONE peers to go elsewhere, "
		"and exits once its tunnels have ended or at --drain-timeout. An upgrade "
		"starts the new proxy on the same listening sockets before the old one "
		"drains, so no connection is refused. SIGINT stops it at once.",
	.opts = proxy_options,
};

struct pctx {
	const char *node;
	char pin_root[PATH_MAX];
	char run_dir[PATH_MAX];
	unsigned int drain_ms;
	struct hb_loop *l;
	struct proxy *px;
	struct pcerts certs;
	struct link link;
	bool have_node, have_snap, serving, draining, done;
	uint64_t drain_start, drain_end, last_status, last_check;
	uint64_t cert_wait_end;     /* 0: not waiting yet */
	struct pl_hello hello;
	int fds[PL_LS_MAX];
};

static void say_hello(struct pctx *c)
{
	c->hello.draining = c->draining;
	link_set_hello(&c->link, &c->hello, c->fds);
}

static void send_status(struct pctx *c)
{
	struct pl_status st = { .ready = c->serving, .draining = c->draining,
				.certs = (uint32_t)c->certs.n };

	proxy_stats(c->px, &st);
	link_status(&c->link, &st);
	c->last_status = loop_now_ms();
}

static void write_pid(const struct pctx *c)
{
	char path[PATH_MAX + 16], pid[32];

	snprintf(path, sizeof(path), "%s/proxy.pid", c->run_dir);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (file_write_atomic(path, pid, strlen(pid), 0644))
		log_warn("proxy: writing %s failed", path);
}

static void drain(struct pctx *c, const char *why)
{
	if (c->draining)
		return;
	c->draining = true;
	c->drain_start = loop_now_ms();
	c->drain_end = c->drain_start + c->drain_ms;
	proxy_drain(c->px);
	for (int i = 0; i < PL_LS_MAX; i++)
		c->fds[i] = -1;   /* closed by proxy_drain */
	say_hello(c);
	log_info("proxy: draining (%s): no new connections; open tunnels have %u ms", why,
		 c->drain_ms);
	send_status(c);
}

static void maybe_serve(struct pctx *c)
{
	size_t missing;
	int e;

	if (c->serving || c->draining || !c->have_node || !c->have_snap)
		return;
	missing = proxy_certs_missing(c->px);
	if (!c->cert_wait_end)
		c->cert_wait_end = loop_now_ms() + CERT_WAIT_MS;
	if (missing && loop_now_ms() < c->cert_wait_end)
		return;
	if (missing)
		log_warn("proxy: serving without the certificates of %zu local workloads after %d ms: "
			 "their outbound connections are refused until they arrive", missing,
			 CERT_WAIT_MS);
	e = proxy_accept(c->px, true);
	if (e) {
		log_err("proxy: cannot accept: %s", strerror(-e));
		return;
	}
	c->serving = true;
	write_pid(c);
	log_info("proxy: serving (pid %d): credentials, %zu workload certificates and a "
		 "snapshot in hand", (int)getpid(), c->certs.n);
	send_status(c);
}

static void on_snapshot(struct pctx *c, const struct pl_snapshot *b, int fd)
{
	char err[512], *text = NULL;
	struct snapshot s;
	ssize_t n = -1;

	if (b->len && b->len < (512ull << 20) && (text = malloc(b->len)))
		n = pread(fd, text, b->len, 0);
	if (n < 0 || (uint64_t)n != b->len) {
		log_err("proxy: the snapshot from the agent cannot be read; keeping the current one");
		free(text);
		return;
	}
	if (snapshot_parse(text, b->len, "agent", &s, err, sizeof(err))) {
		log_err("proxy: the snapshot from the agent does not parse (%s); keeping the current one",
			err);
		free(text);
		return;
	}
	proxy_set_snapshot(c->px, &s);
	log_debug("proxy: snapshot version=%llu", (unsigned long long)s.version);
	snapshot_free(&s);
	free(text);
	c->have_snap = true;
}

/* The variable part of a message: `n` parts of the lengths given, after
 * a body of `body` bytes; false if the message is not exactly that. */
static bool parts(const struct pl_hdr *m, long len, size_t body, const char **p, size_t n,
		  const uint32_t *lens)
{
	size_t off = sizeof(*m) + body;

	for (size_t i = 0; i < n; i++) {
		p[i] = (const char *)m + off;
		off += lens[i];
	}
	return off == (size_t)len;
}

static void on_msg(void *arg, const struct pl_hdr *m, long len, int *fds, int nfds)
{
	struct pctx *c = arg;
	const char *p[3];

	switch (m->type) {
	case PL_NODE: {
		const struct pl_node *b = pl_body(m, len, PL_NODE, sizeof(*b));
		uint32_t l[3];

		if (!b)
			break;
		l[0] = b->ca_len, l[1] = b->cert_len, l[2] = b->key_len;
		if (parts(m, len, sizeof(*b), p, 3, l) &&
		    !pcerts_set_node(&c->certs, p[0], l[0], p[1], l[1], p[2], l[2]))
			c->have_node = true;
		break;
	}
	case PL_CERT: {
		const struct pl_cert *b = pl_body(m, len, PL_CERT, sizeof(*b));
		uint32_t l[2];
		char spiffe[sizeof(b->spiffe) + 1];

		if (!b || !c->certs.ca)
			break;
		l[0] = b->key_len, l[1] = b->cert_len;
		snprintf(spiffe, sizeof(spiffe), "%.*s", (int)sizeof(b->spiffe), b->spiffe);
		if (parts(m, len, sizeof(*b), p, 2, l) &&
		    !pcerts_set(&c->certs, b->id, spiffe, p[0], l[0], p[1], l[1]))
			log_debug("proxy: workload certificate for %s", spiffe);
		break;
	}
	case PL_FORGET: {
		const struct pl_forget *b = pl_body(m, len, PL_FORGET, sizeof(*b));

		if (b)
			pcerts_forget(&c->certs, b->id);
		break;
	}
	case PL_SNAPSHOT: {
		const struct pl_snapshot *b = pl_body(m, len, PL_SNAPSHOT, sizeof(*b));

		if (b && nfds == 1)
			on_snapshot(c, b, fds[0]);
		break;
	}
	case PL_DRAIN: {
		const struct pl_drain *b = pl_body(m, len, PL_DRAIN, sizeof(*b));

		if (b && b->drain_ms)
			c->drain_ms = b->drain_ms;
		drain(c, "a successor took the listeners");
		break;
	}
	default:
		break;   /* a newer agent's: not ours to know */
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	maybe_serve(c);
}

struct sig {
	struct loop_handler h;
	int fd;
	struct pctx *c;
};

static void on_signal(struct loop_handler *h, uint32_t events)
{
	struct sig *s = (struct sig *)h;
	struct signalfd_siginfo si;

	while (read(s->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM) {
			drain(s->c, "SIGTERM");
		} else if (si.ssi_signo == SIGINT) {
			log_info("proxy: SIGINT: exiting now");
			s->c->done = true;
		}
	}
}

/* --listen-fd ROLE=FD: 0 or -EINVAL. */
static int listen_fd_arg(const char *arg, int fds[PL_LS_MAX])
{
	static const char *const roles[PL_LS_MAX] = { "hbone", "out", "out6" };
	const char *eq = strchr(arg, '=');
	char *end;
	long fd;

	for (int i = 0; eq && i < PL_LS_MAX; i++) {
		if (strlen(roles[i]) != (size_t)(eq - arg) || strncmp(arg, roles[i], (size_t)(eq - arg)))
			continue;
		fd = strtol(eq + 1, &end, 10);
		if (*end || fd < 3 || fcntl((int)fd, F_GETFD) < 0)
			return -EINVAL;
		fcntl((int)fd, F_SETFD, FD_CLOEXEC);
		fds[i] = (int)fd;
		return 0;
	}
	return -EINVAL;
}

/* A socket for each address given and not inherited: 0 or -errno. */
static int bind_listeners(int fds[PL_LS_MAX], const char *const addrs[PL_LS_MAX])
{
	static const char *const flag[PL_LS_MAX] = { "--hbone-addr", "--outbound-addr",
						     "--outbound-addr6" };

	for (int i = 0; i < PL_LS_MAX; i++) {
		if (fds[i] >= 0 || !addrs[i])
			continue;
		/* the kernel's largest accept queue: a burst of connections that
		 * never finish a handshake does not make a new peer's SYN wait */
		fds[i] = addr_listen(addrs[i], SOMAXCONN);
		if (fds[i] < 0) {
			log_err("%s %s: %s", flag[i], addrs[i],
				fds[i] == -EINVAL ? "not ADDRESS:PORT" : strerror(-fds[i]));
			return fds[i];
		}
	}
	return 0;
}

static int run(struct pctx *c, const char *const addrs[PL_LS_MAX], unsigned int handshake_ms)
{
	struct proxy_opts po = { .node = c->node, .pin_root = c->pin_root,
				 .handshake_ms = handshake_ms, .certs = &c->certs, .link = &c->link };
	struct sig sg = { .h.fn = on_signal, .fd = -1, .c = c };
	struct timespec rt;
	sigset_t mask;
	int rc = 1;

	if (bind_listeners(c->fds, addrs))
		goto out;
	c->l = hb_loop_new();
	if (!c->l || link_init(&c->link, c->run_dir, hb_loop_base(c->l), on_msg, c)) {
		log_err("proxy: event loop: %s", strerror(errno));
		goto out;
	}
	po.loop = c->l;
	memcpy(po.fds, c->fds, sizeof(po.fds));
	c->px = proxy_new(&po);
	if (!c->px)
		goto out;
	for (int i = 0; i < PL_LS_MAX; i++)
		c->fds[i] = po.fds[i];   /* the proxy owns them; hello hands them on */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sg.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sg.fd < 0 || loop_add(hb_loop_base(c->l), sg.fd, EPOLLIN, &sg.h)) {
		log_err("proxy: signals: %s", strerror(errno));
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	c->hello = (struct pl_hello){ .pid = getpid(),
				      .started_ms = (uint64_t)rt.tv_sec * 1000 + (uint64_t)rt.tv_nsec / 1000000 };
	snprintf(c->hello.version, sizeof(c->hello.version), "%s", sluice_version);
	say_hello(c);
	log_info("proxy: node %s, version %s, pid %d; HBONE %s, outbound %s%s%s", c->node,
		 sluice_version, (int)getpid(), addrs[PL_LS_HBONE] ?: "on an inherited socket",
		 addrs[PL_LS_OUT] ?: "on an inherited socket", addrs[PL_LS_OUT6] ? " and " : "",
		 addrs[PL_LS_OUT6] ?: "");
	while (!c->done) {
		uint64_t now;
		int err;

		link_tick(&c->link);
		err = hb_loop_run(c->l, 100);
		if (err < 0) {
			log_err("proxy: event loop: %s", strerror(-err));
			goto out;
		}
		now = loop_now_ms();
		maybe_serve(c);   /* the certificate wait may be over */
		if (now - c->last_status >= 1000)
			send_status(c);
		if (now - c->last_check >= 1000) {
			struct stat st;

			c->last_check = now;
			if (stat(c->run_dir, &st) && errno == ENOENT) {
				log_info("proxy: %s is gone (the node was uninstalled): exiting", c->run_dir);
				break;
			}
		}
		if (c->draining) {
			struct pl_status ps = {};

			proxy_stats(c->px, &ps);
			if (!ps.tunnels && now - c->drain_start >= DRAIN_MIN_MS) {
				log_info("proxy: drained: no tunnel open; exiting");
				break;
			}
			if (now >= c->drain_end) {
				log_warn("proxy: drain timeout: %llu tunnels still open are cut",
					 (unsigned long long)ps.tunnels);
				break;
			}
		}
	}
	rc = 0;
out:
	if (c->serving && !c->draining) {
		/* the pid file is the serving proxy's: a successor wrote its own */
		char path[PATH_MAX + 16], *buf = NULL;
		size_t n;

		snprintf(path, sizeof(path), "%s/proxy.pid", c->run_dir);
		if (!file_read(path, &buf, &n, 64) && atoi(buf) == getpid())
			unlink(path);
		free(buf);
	}
	proxy_free(c->px);
	link_fini(&c->link);
	hb_loop_free(c->l);
	pcerts_free(&c->certs);
	if (sg.fd >= 0)
		close(sg.fd);
	return rc;
}

int main(int argc, char **argv)
{
	struct pctx c = { .drain_ms = 30000, .fds = { -1, -1, -1 } };
	const char *addrs[PL_LS_MAX] = { "0.0.0.0:15008", "0.0.0.0:15001", NULL };
	enum log_level level = LOG_INFO;
	unsigned int handshake_ms = 0;
	const char *pin_root = NULL;
	struct cli_getopt g;
	int o;

	if (cli_getopt_init(&g, proxy_options, ""))
		return 2;
	while ((o = cli_getopt(&g, argc, argv)) != -1) {
		switch (o) {
		case 'n': c.node = optarg; break;
		case 'p': pin_root = optarg; break;
		case 'H': addrs[PL_LS_HBONE] = optarg; break;
		case 'O': addrs[PL_LS_OUT] = optarg; break;
		case '6': addrs[PL_LS_OUT6] = optarg; break;
		case 'L':
			if (listen_fd_arg(optarg, c.fds)) {
				fprintf(stderr, "sluice-proxy: --listen-fd %s: not ROLE=FD with ROLE "
					"hbone, out or out6 and FD an open descriptor\n", optarg);
				return 2;
			}
			break;
		case 'T':
		case 'd': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || !v || v > 3600000) {
				fprintf(stderr, "sluice-proxy: --%s: milliseconds, 1 to 3600000\n",
					o == 'T' ? "hbone-handshake-timeout" : "drain-timeout");
				return 2;
			}
			*(o == 'T' ? &handshake_ms : &c.drain_ms) = (unsigned int)v;
			break;
		}
		case 'l':
			if (log_level_parse(optarg, &level)) {
				fprintf(stderr, "sluice-proxy: --log-level: unknown level '%s'\n", optarg);
				return 2;
			}
			break;
		case 'V': printf("sluice-proxy %s\n", sluice_version); return 0;
		case 'h': cli_help(stdout, &proxy_cli); return 0;
		case 'M': cli_man(stdout, &proxy_cli); return 0;
		default: cli_help(stderr, &proxy_cli); return 2;
		}
	}
	log_init("sluice-proxy", level);
	if (!c.node || !pin_root) {
		cli_help(stderr, &proxy_cli);
		return 2;
	}
	snprintf(c.pin_root, sizeof(c.pin_root), "%s", pin_root);
	if (sys_run_dir(c.pin_root, c.run_dir, sizeof(c.run_dir))) {
		log_err("--pin-root %s: no directory name to derive the run directory from", pin_root);
		return 2;
	}
	for (int i = 0; i < PL_LS_MAX; i++)
		if (c.fds[i] >= 0)
			addrs[i] = NULL;   /* inherited, not bound */
	return run(&c, addrs, handshake_ms);
}
