// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluice-agent - the node agent: loads and attaches the data plane, pins its
 * maps, and keeps them equal to the node's snapshot.
 *
 *   sluice-agent --node NAME --cgroup PATH --snapshot FILE [--pin-root DIR]
 *   sluice-agent --node NAME --cgroup PATH --control URL --ca-file F [--join-token T]
 *   sluice-agent --node NAME --uninstall [--pin-root DIR]
 *
 * The snapshot file is watched (inotify on its directory, so both in-place
 * writes and atomic renames are seen); each change is parsed in full and
 * only then reconciled into the maps, so an invalid file changes nothing.
 *
 * This file is the agent's life: start, the event loop, signals, stop and
 * --uninstall. The command line is options.c; applying a snapshot is apply.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/apply.h"
#include "agent/certs.h"
#include "agent/datapath.h"
#include "agent/enroll.h"
#include "agent/guard.h"
#include "agent/options.h"
#include "agent/proxyproc.h"
#include "agent/proxysup.h"
#include "agent/sync.h"
#include "agent/telemetry.h"
#include "lib/core/addr.h"
#include "lib/core/heap.h"
#include "lib/core/log.h"
#include "lib/core/loop.h"
#include "lib/core/sys.h"
/*
 * The agent runs one event loop (lib/core/loop.h): the proxy link's sockets
 * are its handlers, and so are the fds below, whose events the loop body
 * in run() handles after each wait.
 */
struct watch {
	struct loop_handler h;
	int fd;
	uint32_t ev;
	unsigned int serial;
	short revents;          /* EPOLLIN etc. are POLLIN etc. */
};

static void watch_event(struct loop_handler *h, uint32_t events)
{
	((struct watch *)h)->revents |= (short)events;
}

static int watch_fd(struct loop *l, struct watch *w, int fd)
{
	*w = (struct watch){ .h.fn = watch_event, .fd = -1 };
	return fd < 0 ? 0 : loop_add(l, fd, EPOLLIN, &w->h);
}

/* The control plane connection: a dup of its fd is registered, so a
 * connection closed and made again with the same number is never taken
 * for the old one, and the number of one that is gone is never removed
 * from the set in place of an unrelated fd that took it. */
static void watch_sync(struct loop *l, struct watch *w, const struct sync *sy)
{
	int fd = sync_fd(sy);
	uint32_t want = (uint16_t)sync_events(sy);

	if (w->fd >= 0 && (fd < 0 || w->serial != sync_fd_serial(sy))) {
		loop_del(l, w->fd);
		close(w->fd);
		w->fd = -1;
	}
	if (fd >= 0 && w->fd < 0) {
		w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		w->serial = sync_fd_serial(sy);
		w->ev = want;
		if (w->fd < 0 || loop_add(l, w->fd, want, &w->h)) {
			log_warn("control plane connection: cannot watch it: %s", strerror(errno));
			if (w->fd >= 0)
				close(w->fd);
			w->fd = -1;
		}
	} else if (fd >= 0 && want != w->ev && !loop_mod(l, w->fd, want, &w->h)) {
		w->ev = want;
	}
}

/* The IPv6 capture's listener, "[ADDR]:PORT", when the outbound listener
 * is IPv4 (an IPv6 --outbound-addr takes both families itself). */
static const char *outbound6(const struct agent_opts *o, char *buf, size_t len)
{
	const char *colon = strrchr(o->outbound_addr, ':');

	if (!o->capture_addr6 || !colon || o->outbound_addr[0] == '[')
		return NULL;
	snprintf(buf, len, "[%s]:%s", o->capture_addr6, colon + 1);
	return buf;
}

/* The link to the node proxy, from the start: a running proxy links
 * while the agent joins or applies its last good snapshot. */
struct proxy_ctx {
	const struct agent_opts *o;
	struct datapath *dp;
	bool capture_on;
};

static void proxy_listening(void *arg)
{
	struct proxy_ctx *pc = arg;

	if (pc->capture_on)
		return;
	capture_set(pc->o, pc->dp, true);
	pc->capture_on = true;
}

static int proxy_link(const struct agent_opts *o, struct telemetry *tm, struct proxy_side *ps,
		      struct proxy_ctx *pctx)
{
	static char o6[SL_ADDRSTRLEN + 16];
	struct psup_opts po = { .node = o->node, .pin_root = o->pin_root, .run_dir = o->run_dir,
				.bin = o->proxy_bin, .hbone_addr = o->hbone_addr,
				.outbound_addr = o->outbound_addr,
				.outbound_addr6 = outbound6(o, o6, sizeof(o6)),
				.handshake_ms = o->hbone_handshake_ms, .drain_ms = o->proxy_drain_ms,
				.log_level = o->log_level, .tm = tm, .loop = ps->loop,
				.on_listening = proxy_listening, .arg = pctx };

	ps->ps = psup_new(&po);
	return ps->ps ? 0 : -ENOMEM;
}

static void cert_to_proxy(void *arg, uint32_t id, const char *spiffe, EVP_PKEY *key, X509 *cert)
{
	psup_set_cert(arg, id, spiffe, key, cert);
}

/* The certificates and the proxy, once the node has its certificate. */
static int proxy_start(const struct agent_opts *o, struct sync *sy, struct proxy_side *ps)
{
	if (!sync_node_cert(sy) || ps->certs)
		return 0;   /* after the join; once */
	ps->certs = certs_new(sy, o->run_dir, cert_to_proxy, ps->ps);
	if (!ps->certs)
		return -ENOMEM;
	psup_start(ps->ps, sync_ca(sy), sync_node_cert(sy), sync_node_key(sy));
	return 0;
}

/* What the fast path does in this run, and why, in the log. */
static void log_fastpath(const struct agent_opts *o, const struct datapath *dp)
{
	if (!dp->has_fastpath)
		log_info("same-node fast path: unavailable: %s", dp->fastpath_reason);
	else if (o->sockmap == SOCKMAP_OFF)
		log_info("same-node fast path: off (--sockmap off)");
	else if (dp->fastpath_halfclose_bug && o->sockmap == SOCKMAP_ON)
		log_warn("same-node fast path: off: %s; --sockmap force turns it on anyway "
			 "(docs/architecture.md)", dp->fastpath_unsafe_reason);
	else
		log_info("same-node fast path: on%s", dp->fastpath_halfclose_bug ?
			 " (forced: this kernel breaks half-close for sockets that were sent data)" : "");
}

/* SIGINT, SIGTERM, SIGHUP and SIGUSR2 blocked and read from a signalfd:
 * the fd, or -errno. */
static int signals_fd(void)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	fd = signalfd(-1, &mask, SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* How long the loop may sleep: the soonest of sync's, the proxy's (its
 * restarts and certificate renewals: 100 ms), enrollment's and the
 * telemetry ring's; -1: until an event. *ring_ms: the ring's. */
static int loop_timeout(struct sync *sy, const struct proxy_side *ps, const struct enroll *en,
			const struct telemetry *tm, int *ring_ms)
{
	int timeout = sy ? sync_timeout_ms(sy) : -1;

	if (ps->ps && (timeout < 0 || timeout > 100))
		timeout = 100;
	if (en && (timeout < 0 || timeout > enroll_timeout_ms(en)))
		timeout = enroll_timeout_ms(en);
	*ring_ms = telemetry_ring_timeout_ms(tm);
	if (*ring_ms >= 0 && (timeout < 0 || timeout > *ring_ms))
		timeout = *ring_ms;
	return timeout;
}

/* Whether the inotify events waiting on ifd name the file `name`. */
static bool snapshot_touched(int ifd, const char *name)
{
	char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	ssize_t n;

	while ((n = read(ifd, evbuf, sizeof(evbuf))) > 0) {
		for (char *p = evbuf; p < evbuf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if (ev->len && strcmp(ev->name, name) == 0)
				hit = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return hit;
}

/* A signal read from sfd: SIGUSR2 restarts the proxy, SIGHUP applies the
 * snapshot again (the last good one from the control plane, or the file
 * in full); true for the others: exit. */
static bool on_signal(const struct agent_opts *o, int sfd, struct datapath *dp,
		      struct telemetry *tm, struct psup *ps, struct sync *sy, char **last,
		      size_t *last_len)
{
	struct signalfd_siginfo si;

	if (read(sfd, &si, sizeof(si)) != sizeof(si))
		return false;
	if (si.ssi_signo == SIGUSR2) {
		int e = ps ? psup_restart(ps, "SIGUSR2") : -ENOTCONN;

		if (e)
			log_warn("SIGUSR2: no proxy restart: %s", e == -EAGAIN ?
				 "no proxy serves, or one is starting" : strerror(-e));
		return false;
	}
	if (si.ssi_signo == SIGHUP && sy) {
		datapath_tc_forget(dp, 0);   /* tc on every veth again */
		sync_start(sy);  /* the last good snapshot, again */
		return false;
	}
	if (si.ssi_signo == SIGHUP) {
		free(*last);
		*last = NULL; /* force a full re-apply */
		datapath_tc_forget(dp, 0);
		apply_file(dp, tm, o->snapshot, last, last_len);
		write_status(o, dp, tm, ps);
		return false;
	}
	log_info("signal %u: exiting; programs, maps and the node proxy stay in place",
		 si.ssi_signo);
	return true;
}

static int run(const struct agent_opts *o)
{
	char cgpath[PATH_MAX], dir[PATH_MAX], base[PATH_MAX];
	struct datapath dp;
	struct telemetry tm = { .listen_fd = -1 };
	struct watch w_ino, w_sig, w_ring, w_http, w_cni = {}, w_sync = { .h.fn = watch_event, .fd = -1 };
	struct enroll_opts cni = o->cni;
	struct enroll *en = NULL;
	struct pushed_ctx pc = { o, &dp, &tm, {}, {} };
	struct proxy_ctx pctx = { o, &dp, false };
	struct loop loop = { .efd = -1 };
	struct sync *sy = NULL;
	char *last = NULL;
	size_t last_len = 0;
	int ifd = -1, sfd = -1, err;
	struct guard guard;
	char gerr[PATH_MAX + 256];

	err = sys_cgroup_path(o->cgroup, cgpath, sizeof(cgpath));
	if (err) {
		log_err("cgroup %s: %s", o->cgroup, strerror(-err));
		return 1;
	}
	if (guard_outside(cgpath, gerr, sizeof(gerr)) ||
	    guard_lock(&guard, o->node, o->run_dir, gerr, sizeof(gerr))) {
		log_err("%s", gerr);
		return 1;
	}
	err = datapath_open(&dp, o->pin_root, cgpath, o->flow_log != NULL);
	if (err) {
		guard_unlock(&guard);
		return 1;
	}
	dp.tc_mode = tchook_resolve(o->tc_attach);
	log_info("node %s: %u programs attached, %u adopted, on cgroup %s, pinned under %s; "
		 "tc programs by %s", o->node, dp.attached, dp.adopted, cgpath, o->pin_root,
		 tchook_mode_name(dp.tc_mode));
	/* no proxy in this run: nothing may be sent to one an earlier agent ran
	 * (with a proxy, capture goes on when the proxy is up) */
	if (!o->control.url || !o->proxy)
		capture_set(o, &dp, false);
	err = datapath_set_fastpath(&dp, fastpath_wanted(o, &dp));
	if (err) {
		log_err("setting the fast path switch: %s", strerror(-err));
		goto out;
	}
	log_fastpath(o, &dp);
	err = telemetry_init(&tm, &dp, o->flow_log, o->flow_log_max, o->metrics_addr);
	if (err)
		goto out;
	err = loop_init(&loop);
	if (err) {
		log_err("event loop: %s", strerror(-err));
		goto out;
	}
	pc.ps.loop = &loop;
	if (o->control.url && o->proxy && proxy_link(o, &tm, &pc.ps, &pctx)) {
		err = -EINVAL;
		goto out;
	}

	if (o->control.url) {
		sy = sync_new(&o->control, apply_pushed, &pc);
		if (!sy) {
			err = -EINVAL;
			goto out;
		}
		if (o->proxy && proxy_start(o, sy, &pc.ps)) {
			err = -EINVAL;
			goto out;
		}
		sync_start(sy);
		cni.cgroup = cgpath;
		/* without its socket the node still runs; the plugin's ADDs fail */
		en = enroll_new(&cni, sy, &dp);
		if (!en)
			log_warn("cni: containers cannot be enrolled on this node (above)");
		else if ((err = watch_fd(pc.ps.loop, &w_cni, enroll_fd(en))))
			goto out;
	} else {
		apply_file(&dp, &tm, o->snapshot, &last, &last_len);
	}
	write_status(o, &dp, &tm, pc.ps.ps);
	if (o->once)
		goto out;

	snprintf(dir, sizeof(dir), "%s", o->snapshot ?: "");
	snprintf(base, sizeof(base), "%s", o->snapshot ?: "");
	ifd = sy ? -1 : inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (!sy && (ifd < 0 || inotify_add_watch(ifd, dirname(dir),
						 IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0)) {
		log_err("watching %s: %s", dir, strerror(errno));
		err = -errno;
		goto out;
	}
	sfd = signals_fd();
	if (sfd < 0) {
		err = sfd;
		goto out;
	}
	if ((err = watch_fd(pc.ps.loop, &w_ino, ifd)) || (err = watch_fd(pc.ps.loop, &w_sig, sfd)) ||
	    (err = watch_fd(pc.ps.loop, &w_ring, telemetry_ring_fd(&tm))) ||
	    (err = watch_fd(pc.ps.loop, &w_http, tm.listen_fd))) {
		log_err("event loop: %s", strerror(-err));
		goto out;
	}

	for (;;) {
		int timeout, ring_ms;

		if (sy && pc.ps.ps && !pc.ps.certs && sync_node_cert(sy)) {
			/* joined just now: the proxy needs the node certificate */
			if (proxy_start(o, sy, &pc.ps)) {
				err = -EINVAL;
				break;
			}
		}
		timeout = loop_timeout(sy, &pc.ps, en, &tm, &ring_ms);
		if (sy)
			watch_sync(pc.ps.loop, &w_sync, sy);
		w_ino.revents = w_sig.revents = w_ring.revents = w_http.revents = w_sync.revents = 0;
		w_cni.revents = 0;
		/* the proxy link's events are handled inside, the rest below */
		err = loop_wait(&loop, timeout);
		if (err < 0) {
			log_err("event loop: %s", strerror(-err));
			break;
		}
		err = 0;
		heap_huge();
		if (pc.ps.ps && psup_tick(pc.ps.ps))
			write_status(o, &dp, &tm, pc.ps.ps);
		if (sy) {
			sync_handle(sy, w_sync.revents);
			if (sync_fatal(sy)) {
				err = -EACCES;
				break;
			}
		}
		if (pc.ps.certs)
			certs_tick(pc.ps.certs);
		if (en && w_cni.revents)
			enroll_handle(en);
		if (en)
			enroll_tick(en);
		if (sy)
			sync_persist_due(sy);
		/* also without a wakeup: one comes only once a batch waits */
		if (w_ring.revents || ring_ms >= 0)
			telemetry_poll_ring(&tm);
		if (w_http.revents)
			telemetry_serve(&tm);
		if (w_sig.revents) {
			if (on_signal(o, sfd, &dp, &tm, pc.ps.ps, sy, &last, &last_len))
				break;
			continue;
		}
		if (w_ino.revents && snapshot_touched(ifd, basename(base))) {
			apply_file(&dp, &tm, o->snapshot, &last, &last_len);
			write_status(o, &dp, &tm, pc.ps.ps);
		}
	}
out:
	psup_free(pc.ps.ps);
	if (w_sync.fd >= 0)
		close(w_sync.fd);
	loop_fini(&loop);
	sync_free(sy);   /* before certs: it answers their requests with -1 */
	enroll_free(en); /* after sync, for the same reason */
	certs_free(pc.ps.certs);
	snap_cache_free(&pc.cache);
	if (ifd >= 0)
		close(ifd);
	if (sfd >= 0)
		close(sfd);
	free(last);
	telemetry_poll_ring(&tm);
	telemetry_fini(&tm);
	datapath_close(&dp);
	guard_unlock(&guard);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct agent_opts o;
	int err = options_parse(&o, argc, argv);

	if (err >= 0)
		return err;
	if (o.uninstall) {
		proxyproc_stop(o.run_dir);
		err = datapath_uninstall(o.pin_root);
		if (!err) {
			char f[PATH_MAX + 16];

			snprintf(f, sizeof(f), "%s/flows.jsonl", o.run_dir);
			unlink(f);
			snprintf(f, sizeof(f), "%s/flows.jsonl.1", o.run_dir);
			unlink(f);
			snprintf(f, sizeof(f), "%s/status.json", o.run_dir);
			unlink(f);
			snprintf(f, sizeof(f), "%s/certs.json", o.run_dir);
			unlink(f);
			rmdir(o.run_dir);
		}
		if (err) {
			log_err("uninstall %s: %s", o.pin_root, strerror(-err));
			return 1;
		}
		log_info("node %s: programs detached, %s removed", o.node, o.pin_root);
		return 0;
	}
	err = options_proxy_bin(&o);
	if (err)
		return err;
	{
		struct timespec rt;

		clock_gettime(CLOCK_REALTIME, &rt);
		o.started_ms = (uint64_t)rt.tv_sec * 1000 + (uint64_t)rt.tv_nsec / 1000000;
	}
	/* A snapshot's text and a watch message (megabytes at 10,000
	 * services) live for one change. They come from the heap, in huge
	 * pages (heap.h), not from mappings of their own that fault in anew,
	 * 4 KiB at a time, at every change (a fifth of the agent's CPU to
	 * load 10,000 services); what they leave free goes back once changes
	 * pause (sync_handle's malloc_trim). Set, the threshold also stays
	 * put: glibc would move it after the first free of a mapped block. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	/* A delta's parse makes and frees a tree of small blocks per service:
	 * without fast bins they merge as they are freed, not in one walk of
	 * them all at the next large request (sluice-control does the same) */
	mallopt(M_MXFAST, 0);
	heap_huge_init();
	return run(&o);
}
