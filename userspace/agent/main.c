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
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent/certs.h"
#include "agent/datapath.h"
#include "agent/enroll.h"
#include "agent/guard.h"
#include "agent/podman.h"
#include "agent/proxyproc.h"
#include "agent/proxysup.h"
#include "agent/sync.h"
#include "agent/telemetry.h"

#include <jansson.h>
#include "lib/addr.h"
#include "lib/cli.h"
#include "lib/file.h"
#include "lib/loop.h"
#include "lib/log.h"
#include "lib/snapshot.h"
#include "lib/sys.h"
#include "sluice_proxy.h"

struct agent_opts {
	const char *node;
	const char *cgroup;
	const char *snapshot;
	struct sync_opts control;  /* url == NULL: --snapshot mode */
	char pin_root[PATH_MAX];
	bool uninstall;
	bool once;
	const char *metrics_addr;
	const char *flow_log;
	uint64_t flow_log_max;
	enum sockmap_mode { SOCKMAP_OFF, SOCKMAP_ON, SOCKMAP_FORCE } sockmap;
	char run_dir[PATH_MAX];
	/* the node proxy (--control mode) */
	bool proxy;
	const char *hbone_addr, *outbound_addr;
	const char *capture_addr;    /* where pods reach the outbound listener: IPv4 */
	const char *capture_addr6;   /* and IPv6 */
	unsigned int hbone_handshake_ms;
	unsigned int proxy_drain_ms;
	const char *proxy_bin;
	const char *log_level;
	uint64_t started_ms;         /* CLOCK_REALTIME */
	struct enroll_opts cni;      /* --control mode: the CNI plugin's socket */
};

static const struct cli_opt agent_options[] = {
	{ "node", required_argument, 'n', "NAME",
	  "this node's name (default pin root " SL_PIN_BASE "/NAME)" },
	{ "cgroup", required_argument, 'c', "PATH",
	  "cgroup v2 directory whose descendants are the node's pods; absolute, or "
	  "relative to the cgroup2 mount" },
	{ "snapshot", required_argument, 's', "FILE",
	  "the node's desired state (JSON, docs/snapshot.md); watched" },
	{ "control", required_argument, 'C', "URL",
	  "take snapshots from sluice-control at https://HOST:PORT instead "
	  "(docs/control-plane.md)" },
	{ "ca-file", required_argument, 'A', "FILE", "the control plane's CA certificate" },
	{ "join-token", required_argument, 'J', "TOKEN",
	  "single-use token for the first join (sluice-control token create)" },
	{ "state-dir", required_argument, 'D', "DIR",
	  "node key, certificate, last good snapshot (default " SYNC_DEFAULT_STATE_BASE "/NAME)" },
	{ "pin-root", required_argument, 'p', "DIR",
	  "where maps and links are pinned (a bpffs directory)" },
	{ "once", no_argument, 'o', NULL,
	  "apply the snapshot and exit (programs stay attached)" },
	{ "metrics-addr", required_argument, 'm', "A:P",
	  "serve Prometheus metrics on http://A:P/metrics" },
	{ "flow-log", required_argument, 'f', "FILE",
	  "flow events as JSON lines: FILE, - (stdout) or none (default " SL_RUN_BASE
	  "/NAME/flows.jsonl; sluicectl observe reads it)" },
	{ "flow-log-max-bytes", required_argument, 'F', "N",
	  "rotate FILE to FILE.1 at N bytes (default 64 MiB)" },
	{ "sockmap", required_argument, 'S', "off|on|force",
	  "same-node fast path for new connections: off (default), on (unless the kernel "
	  "breaks half-close, which a probe checks at start) or force (even then); "
	  "`sluicectl fastpath on|off|force` flips it at run time" },
	{ "proxy", required_argument, 'P', "on|off",
	  "the node's mTLS proxy (--control mode only; default on)" },
	{ "hbone-addr", required_argument, 'H', "A:P",
	  "HBONE listener (default 0.0.0.0:15008); a specific address is also what other "
	  "nodes are told to dial, else the address this node reaches the control plane from" },
	{ "outbound-addr", required_argument, 'O', "A:P",
	  "listener for captured connections (default 0.0.0.0:15001)" },
	{ "capture-addr", required_argument, 'K', "IP",
	  "an address pods reach this node's outbound listener at (default: "
	  "--outbound-addr's, if specific); once for IPv4, once for IPv6 destinations; "
	  "capture of connections that must be mutual TLS is off for a family without one" },
	{ "hbone-handshake-timeout", required_argument, 'T', "MS",
	  "TLS handshake limit for HBONE (default 10000)" },
	{ "proxy-bin", required_argument, 'B', "FILE",
	  "the sluice-proxy to start (default: beside this program)" },
	{ "proxy-drain-timeout", required_argument, 'W', "MS",
	  "how long a proxy replaced by a successor (upgrade, SIGUSR2) lets its open "
	  "tunnels run (default 30000)" },
	{ "cni-socket", required_argument, 'N', "PATH",
	  "where the sluice CNI plugin hands containers over (--control mode; default "
	  SL_RUN_BASE "/NAME/cni.sock; docs/cni.md)" },
	{ "runtime-db", required_argument, 'R', "FILE",
	  "podman's state database, the record containers' identities are read from "
	  "(default " PODMAN_DEFAULT_DB ")" },
	{ "uninstall", no_argument, 'u', NULL,
	  "detach the programs and remove the pinned state" },
	{ "log-level", required_argument, 'l', "L", "error|warn|info|debug (default info)" },
	{ "version", no_argument, 'V', NULL, "print the version and exit" },
	{ "help", no_argument | CLI_SHORT, 'h', NULL, "print this help and exit" },
	{ "man", no_argument, 'M', NULL, NULL },
	{}
};

static const struct cli_prog agent_cli = {
	.name = "sluice-agent",
	.section = 8,
	.summary = "the sluice node agent: the eBPF data plane and its maps",
	.usage = (const char *const[]){
		"--node NAME --cgroup PATH --snapshot FILE [options]",
		"--node NAME --cgroup PATH --control URL --ca-file FILE [--join-token TOKEN] "
		"[--state-dir DIR] [options]",
		"--node NAME --uninstall [--pin-root DIR]",
		NULL },
	.description =
		"The node agent loads and attaches the data plane, pins its maps, and keeps "
		"them equal to the node's snapshot: a file (--snapshot) or what the control "
		"plane pushes (--control).\n\n"
		"The snapshot file is watched (inotify on its directory, so both in-place "
		"writes and atomic renames are seen); each change is parsed in full and only "
		"then reconciled into the maps, so an invalid file changes nothing. The "
		"agent can be stopped and started again without dropping a connection; "
		"--uninstall removes what it pinned.",
	.opts = agent_options,
};

/* Whether --sockmap turns the fast path on, given what the probes found. */
static bool fastpath_wanted(const struct agent_opts *o, const struct datapath *dp)
{
	if (!dp->has_fastpath || o->sockmap == SOCKMAP_OFF)
		return false;
	return o->sockmap == SOCKMAP_FORCE || !dp->fastpath_halfclose_bug;
}

/* <run dir>/status.json, for `sluicectl status` and `version`: this
 * agent's version, what it runs with on this kernel, what its probes
 * turned off and why, and the last applied snapshot. Written whole and
 * renamed into place. */
static void write_status(const struct agent_opts *o, const struct datapath *dp,
			 const struct telemetry *tm, const struct psup *ps)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
	json_t *j, *off = json_array();
	struct utsname u;

	uname(&u);
	if (!dp->has_set_retval)
		json_array_append_new(off, json_pack("{s:s, s:s}", "feature", "ECONNREFUSED for empty services",
			"reason", "kernel lacks bpf_set_retval (5.18+): EPERM instead"));
	if (!dp->has_netns_cookie)
		json_array_append_new(off, json_pack("{s:s, s:s}", "feature", "policy decisions at connect()",
			"reason", "kernel lacks SO_NETNS_COOKIE (5.14+): tc at the destination decides"));
	if (!dp->has_fastpath)
		json_array_append_new(off, json_pack("{s:s, s:s}", "feature", "same-node fast path",
			"reason", dp->fastpath_reason ?: "unknown"));
	if (dp->has_fastpath && dp->fastpath_halfclose_bug)
		json_array_append_new(off, json_pack("{s:s, s:s}", "feature", "same-node fast path by default",
			"reason", dp->fastpath_unsafe_reason));
	j = json_pack("{s:s, s:s, s:i, s:I, s:s, s:s, s:s, s:{s:b, s:b, s:b, s:b, s:b}, s:o, s:{s:I}}",
		      "node", o->node, "version", sluice_version, "pid", (int)getpid(),
		      "started_ms", (json_int_t)o->started_ms,
		      "pin_root", o->pin_root,
		      "cgroup", o->cgroup, "kernel", u.release,
		      "features", "set_retval", dp->has_set_retval, "netns_cookie", dp->has_netns_cookie,
		      "fastpath_available", dp->has_fastpath, "fastpath_on", fastpath_wanted(o, dp),
		      "fastpath_halfclose_bug", dp->fastpath_halfclose_bug,
		      "disabled", off, "snapshot", "version", (json_int_t)tm->version);
	if (!j)
		return;
	if (ps)
		json_object_set_new(j, "proxies", psup_status(ps));
	snprintf(path, sizeof(path), "%s/status.json", o->run_dir);
	snprintf(tmp, sizeof(tmp), "%s/.status.json.tmp", o->run_dir);
	if (sys_mkdir_p(o->run_dir, 0755) == 0 && json_dump_file(j, tmp, JSON_INDENT(2)) == 0)
		rename(tmp, path);
	json_decref(j);
}

/* Identities and policy, then tc on the local pods' veths that do not
 * have it yet. */
static int apply_identity(struct datapath *dp, const struct snapshot *snap,
			  char *err, size_t errlen)
{
	struct pol_apply_stats ps;
	struct pol_endpoint *eps = NULL;
	size_t neps = 0;
	int rc;

	rc = polmap_apply(&dp->pol, snap, &eps, &neps, &ps, err, errlen);
	rc = rc ?: datapath_attach_local(dp, eps, neps, err, errlen);
	free(eps);
	if (!rc)
		log_info("identities: %zu workloads (%u local), %u policy entries%s, "
			 "ipcache +%u -%u", snap->nworkloads, ps.local_endpoints,
			 ps.policy_entries, ps.policy_flipped ? " (new generation)" : "",
			 ps.ids_written, ps.ids_removed);
	return rc;
}

/* Parse a snapshot and apply it: 0, or -1 with the reason in err (a
 * snapshot that does not parse changes nothing). The one apply path of
 * both --snapshot and --control. */
struct proxy_side {
	struct psup *ps;
	struct certs *certs;
	struct loop *loop;
};

/*
 * The agent runs one event loop (lib/loop.h): the proxy link's sockets
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

static int apply_text(struct datapath *dp, struct telemetry *tm, const char *buf, size_t len,
		      const char *src, char *err, size_t errlen, struct proxy_side *ps)
{
	struct lb_apply_stats st = {};
	struct snapshot snap;
	uint64_t t0 = loop_now_ms();
	int rc;

	rc = snapshot_parse(buf, len, src, &snap, err, errlen);
	if (rc) {
		log_err("snapshot refused, state unchanged: %s", err);
		return -1;
	}
	rc = apply_identity(dp, &snap, err, errlen);
	rc = rc ?: lbmap_apply(&dp->maps, &snap, &st, err, errlen);
	if (rc) {
		log_err("snapshot version=%llu not fully applied: %s",
			(unsigned long long)snap.version, err);
	} else {
		log_info("applied snapshot version=%llu services=%zu "
			 "(added %u, updated %u, removed %u, unchanged %u) "
			 "backends (added %u, removed %u) in %llu ms",
			 (unsigned long long)snap.version, snap.nservices,
			 st.svc_added, st.svc_updated, st.svc_removed, st.svc_unchanged,
			 st.be_added, st.be_removed, (unsigned long long)(loop_now_ms() - t0));
		telemetry_set_labels(tm, &snap);
		tm->ready = true;
		if (ps && ps->certs)
			certs_set_wanted(ps->certs, &snap);
		if (ps && ps->ps)
			psup_set_snapshot(ps->ps, buf, len, snap.version);
	}
	snapshot_free(&snap);
	return rc ? -1 : 0;
}

struct pushed_ctx {
	const struct agent_opts *o;
	struct datapath *dp;
	struct telemetry *tm;
	struct proxy_side ps;
};

/* sync.c's apply function: a snapshot pushed by the control plane. */
static int apply_pushed(void *arg, const char *text, size_t len, const char *src,
			char *err, size_t errlen)
{
	struct pushed_ctx *p = arg;
	int rc = apply_text(p->dp, p->tm, text, len, src, err, errlen, &p->ps);

	write_status(p->o, p->dp, p->tm, p->ps.ps);
	return rc;
}

/* a snapshot file larger than this is refused (10,000 services: 6 MB) */
#define SNAPSHOT_FILE_MAX (512u << 20)

/* Apply the snapshot file if its content changed since the last apply. */
static void sync_snapshot(struct datapath *dp, struct telemetry *tm, const char *path,
			  char **last, size_t *last_len)
{
	char err[512];
	char *buf = NULL;
	size_t len = 0;
	int rc;

	rc = file_read(path, &buf, &len, SNAPSHOT_FILE_MAX);
	if (rc) {
		log_warn("snapshot %s: %s; keeping the current state", path, strerror(-rc));
		return;
	}
	if (*last && *last_len == len && memcmp(*last, buf, len) == 0) {
		free(buf);
		return;
	}

	if (apply_text(dp, tm, buf, len, path, err, sizeof(err), NULL)) {
		free(buf);
	} else {
		free(*last);
		*last = buf;
		*last_len = len;
	}
}

/*
 * Capture (bpf/lib/proxy.h) sends a pod's connection that must be mutual
 * TLS to the outbound listener, at an address pods reach this node by, one
 * per family: --capture-addr, else the outbound listener's own address if
 * it is a specific one. A family with neither is not captured, and the log
 * says so.
 */
static void capture_set(const struct agent_opts *o, struct datapath *dp, bool on)
{
	static const __be32 any6[4];
	const __be32 any4[4] = { 0, 0, htonl(0xffff), 0 };
	const char *spec[2] = { o->capture_addr, o->capture_addr6 };
	__be32 out[4] = {}, a[2][4] = {};
	bool want[2] = {}, specific = false;
	uint16_t port = 0;
	char s[SL_ADDRSTRLEN];

	if (on && !addr_hostport_parse(o->outbound_addr, out, &port))
		specific = memcmp(out, any4, 16) && memcmp(out, any6, 16);
	for (int f = SL_PROXY_V4; on && port && f <= SL_PROXY_V6; f++) {
		if (spec[f])
			want[f] = !addr_parse(spec[f], a[f]) && addr_is_v4(a[f]) == (f == SL_PROXY_V4);
		else if (specific && addr_is_v4(out) == (f == SL_PROXY_V4)) {
			memcpy(a[f], out, 16);
			want[f] = true;
		}
		if (spec[f] && !want[f])
			log_warn("capture off for IPv%c: --capture-addr %s is not an address",
				 f == SL_PROXY_V4 ? '4' : '6', spec[f]);
	}
	if (on && !want[SL_PROXY_V4] && !want[SL_PROXY_V6])
		log_warn("capture off: the outbound listener is %s and no --capture-addr "
			 "says where pods reach it", o->outbound_addr);
	for (int f = SL_PROXY_V4; f <= SL_PROXY_V6; f++) {
		int err = datapath_set_proxy(dp, (__u32)f, a[f], port, want[f]);

		if (err)
			log_err("setting capture: %s", strerror(-err));
		else if (want[f])
			log_info(f == SL_PROXY_V4 ?
				 "capture on: connections that must be mutual TLS go to %s:%u" :
				 "capture on: IPv6 connections that must be mutual TLS go to [%s]:%u",
				 addr_fmt(a[f], s), port);
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
	return ps->ps ? 0 : -1;
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
		return -1;
	psup_start(ps->ps, sync_ca(sy), sync_node_cert(sy), sync_node_key(sy));
	return 0;
}

static int run(const struct agent_opts *o)
{
	char cgpath[PATH_MAX], dir[PATH_MAX], base[PATH_MAX];
	struct datapath dp;
	struct telemetry tm = { .listen_fd = -1 };
	struct watch w_ino, w_sig, w_ring, w_http, w_cni = {}, w_sync = { .h.fn = watch_event, .fd = -1 };
	struct enroll_opts cni = o->cni;
	struct enroll *en = NULL;
	struct pushed_ctx pc = { o, &dp, &tm, {} };
	struct proxy_ctx pctx = { o, &dp, false };
	struct loop loop = { .efd = -1 };
	struct sync *sy = NULL;
	sigset_t mask;
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
	err = datapath_open(&dp, o->pin_root, cgpath);
	if (err) {
		guard_unlock(&guard);
		return 1;
	}
	log_info("node %s: %u programs attached, %u adopted, on cgroup %s, pinned under %s",
		 o->node, dp.attached, dp.adopted, cgpath, o->pin_root);
	/* no proxy in this run: nothing may be sent to one an earlier agent ran
	 * (with a proxy, capture goes on when the proxy is up) */
	if (!o->control.url || !o->proxy)
		capture_set(o, &dp, false);
	err = datapath_set_fastpath(&dp, fastpath_wanted(o, &dp));
	if (err) {
		log_err("setting the fast path switch: %s", strerror(-err));
		goto out;
	}
	if (!dp.has_fastpath)
		log_info("same-node fast path: unavailable: %s", dp.fastpath_reason);
	else if (o->sockmap == SOCKMAP_OFF)
		log_info("same-node fast path: off (--sockmap off)");
	else if (dp.fastpath_halfclose_bug && o->sockmap == SOCKMAP_ON)
		log_warn("same-node fast path: off: %s; --sockmap force turns it on anyway "
			 "(docs/architecture.md)", dp.fastpath_unsafe_reason);
	else
		log_info("same-node fast path: on%s", dp.fastpath_halfclose_bug ?
			 " (forced: this kernel breaks half-close for sockets that were sent data)" : "");
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
		sync_snapshot(&dp, &tm, o->snapshot, &last, &last_len);
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
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		err = -errno;
		goto out;
	}
	if ((err = watch_fd(pc.ps.loop, &w_ino, ifd)) || (err = watch_fd(pc.ps.loop, &w_sig, sfd)) ||
	    (err = watch_fd(pc.ps.loop, &w_ring, telemetry_ring_fd(&tm))) ||
	    (err = watch_fd(pc.ps.loop, &w_http, tm.listen_fd))) {
		log_err("event loop: %s", strerror(-err));
		goto out;
	}

	for (;;) {
		int timeout = sy ? sync_timeout_ms(sy) : -1;

		if (sy && pc.ps.ps && !pc.ps.certs && sync_node_cert(sy)) {
			/* joined just now: the proxy needs the node certificate */
			if (proxy_start(o, sy, &pc.ps)) {
				err = -EINVAL;
				break;
			}
		}
		if (pc.ps.ps && (timeout < 0 || timeout > 100))
			timeout = 100;   /* the proxy's restarts, certificate renewals */
		if (en && (timeout < 0 || timeout > enroll_timeout_ms(en)))
			timeout = enroll_timeout_ms(en);
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
			sync_persist(sy);
		if (w_ring.revents)
			telemetry_poll_ring(&tm);
		if (w_http.revents)
			telemetry_serve(&tm);
		if (w_sig.revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGUSR2) {
				int e = pc.ps.ps ? psup_restart(pc.ps.ps, "SIGUSR2") : -ENOTCONN;

				if (e)
					log_warn("SIGUSR2: no proxy restart: %s", e == -EAGAIN ?
						 "no proxy serves, or one is starting" : strerror(-e));
				continue;
			}
			if (si.ssi_signo == SIGHUP && sy) {
				datapath_tc_forget(&dp, 0);   /* tc on every veth again */
				sync_start(sy);  /* the last good snapshot, again */
				continue;
			}
			if (si.ssi_signo == SIGHUP) {
				free(last);
				last = NULL; /* force a full re-apply */
				datapath_tc_forget(&dp, 0);
				sync_snapshot(&dp, &tm, o->snapshot, &last, &last_len);
				write_status(o, &dp, &tm, pc.ps.ps);
				continue;
			}
			log_info("signal %u: exiting; programs, maps and the node proxy stay in place",
				 si.ssi_signo);
			break;
		}
		if (w_ino.revents) {
			char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
			const char *name = basename(base);
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
			if (hit) {
				sync_snapshot(&dp, &tm, o->snapshot, &last, &last_len);
				write_status(o, &dp, &tm, pc.ps.ps);
			}
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
	struct agent_opts o = { .flow_log_max = 64ull << 20, .sockmap = SOCKMAP_OFF, .proxy = true,
				.proxy_drain_ms = 30000,
				.hbone_addr = "0.0.0.0:15008", .outbound_addr = "0.0.0.0:15001" };
	enum log_level level = LOG_INFO;
	const char *pin_root = NULL;
	char run_dir[PATH_MAX], default_flow[PATH_MAX + 16];
	struct cli_getopt g;
	int c, err;

	if (cli_getopt_init(&g, agent_options, ""))
		return 2;
	while ((c = cli_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'n': o.node = optarg; break;
		case 'c': o.cgroup = optarg; break;
		case 's': o.snapshot = optarg; break;
		case 'p': pin_root = optarg; break;
		case 'u': o.uninstall = true; break;
		case 'o': o.once = true; break;
		case 'm': o.metrics_addr = optarg; break;
		case 'C': o.control.url = optarg; break;
		case 'A': o.control.ca_file = optarg; break;
		case 'J': o.control.token = optarg; break;
		case 'D': o.control.state_dir = optarg; break;
		case 'P':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "sluice-agent: --proxy: on or off\n");
				return 2;
			}
			o.proxy = !strcmp(optarg, "on");
			break;
		case 'H': o.hbone_addr = optarg; break;
		case 'B': o.proxy_bin = optarg; break;
		case 'W': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || !v || v > 3600000) {
				fprintf(stderr, "sluice-agent: --proxy-drain-timeout: milliseconds, 1 to 3600000\n");
				return 2;
			}
			o.proxy_drain_ms = (unsigned int)v;
			break;
		}
		case 'N': o.cni.socket = optarg; break;
		case 'R': o.cni.podman_db = optarg; break;
		case 'O': o.outbound_addr = optarg; break;
		case 'K':
			if (strchr(optarg, ':'))
				o.capture_addr6 = optarg;
			else
				o.capture_addr = optarg;
			break;
		case 'T':
			o.hbone_handshake_ms = (unsigned int)strtoul(optarg, NULL, 10);
			if (!o.hbone_handshake_ms) {
				fprintf(stderr, "sluice-agent: --hbone-handshake-timeout: milliseconds > 0\n");
				return 2;
			}
			break;
		case 'S':
			if (!strcmp(optarg, "off")) {
				o.sockmap = SOCKMAP_OFF;
			} else if (!strcmp(optarg, "on")) {
				o.sockmap = SOCKMAP_ON;
			} else if (!strcmp(optarg, "force")) {
				o.sockmap = SOCKMAP_FORCE;
			} else {
				fprintf(stderr, "sluice-agent: --sockmap: off, on or force\n");
				return 2;
			}
			break;
		case 'f': o.flow_log = optarg; break;
		case 'F': {
			char *end;

			o.flow_log_max = strtoull(optarg, &end, 10);
			if (*end || !o.flow_log_max) {
				fprintf(stderr, "sluice-agent: --flow-log-max-bytes: '%s' is not a positive number\n", optarg);
				return 2;
			}
			break;
		}
		case 'l':
			o.log_level = optarg;
			if (log_level_parse(optarg, &level)) {
				fprintf(stderr, "sluice-agent: --log-level: unknown level '%s'\n", optarg);
				return 2;
			}
			break;
		case 'V': printf("sluice-agent %s\n", sluice_version); return 0;
		case 'h': cli_help(stdout, &agent_cli); return 0;
		case 'M': cli_man(stdout, &agent_cli); return 0;
		default: cli_help(stderr, &agent_cli); return 2;
		}
	}
	log_init("sluice-agent", level);
	log_hook_libbpf();
	if (!o.node || (!o.uninstall && (!o.cgroup || !o.snapshot == !o.control.url))) {
		cli_help(stderr, &agent_cli);
		return 2;
	}
	if (strchr(o.node, '/') || o.node[0] == '.') {
		log_err("--node: '%s' is not a valid node name", o.node);
		return 2;
	}
	if (o.control.url && (!o.control.ca_file || o.once)) {
		log_err("--control needs --ca-file (the control plane's CA) and cannot go with --once");
		return 2;
	}
	o.control.node = o.node;
	if (o.control.url && o.proxy) {
		__be32 a[4];
		uint16_t port;

		if (addr_hostport_parse(o.hbone_addr, a, &port)) {
			log_err("--hbone-addr '%s': not IP:PORT or [IPv6]:PORT", o.hbone_addr);
			return 2;
		}
		o.control.hbone_port = port;
		if (a[0] | a[1] | (a[2] != htonl(0xffff) ? a[2] : 0) | a[3]) {
			/* a specific address: that is what peers dial */
			static char host[64];
			const char *colon = strrchr(o.hbone_addr, ':');

			snprintf(host, sizeof(host), "%.*s", (int)(colon - o.hbone_addr), o.hbone_addr);
			o.control.hbone_host = host;
		}
	}
	if (!o.control.state_dir) {
		static char sd[PATH_MAX];

		snprintf(sd, sizeof(sd), SYNC_DEFAULT_STATE_BASE "/%s", o.node);
		o.control.state_dir = sd;
	}
	if (pin_root)
		snprintf(o.pin_root, sizeof(o.pin_root), "%s", pin_root);
	else
		snprintf(o.pin_root, sizeof(o.pin_root), SL_PIN_BASE "/%s", o.node);
	if (sys_run_dir(o.pin_root, o.run_dir, sizeof(o.run_dir))) {
		log_err("--pin-root %s: no directory name to derive the run directory from", o.pin_root);
		return 2;
	}
	snprintf(run_dir, sizeof(run_dir), "%s", o.run_dir);
	if (!o.cni.socket) {
		static char sock[PATH_MAX + 16];

		snprintf(sock, sizeof(sock), "%s/cni.sock", run_dir);
		o.cni.socket = sock;
	}
	o.cni.node = o.node;
	o.cni.run_dir = o.run_dir;
	o.cni.podman_db = o.cni.podman_db ?: PODMAN_DEFAULT_DB;
	if (!o.flow_log) {
		snprintf(default_flow, sizeof(default_flow), "%s/flows.jsonl", run_dir);
		o.flow_log = default_flow;
	} else if (strcmp(o.flow_log, "none") == 0) {
		o.flow_log = NULL;
	}

	if (o.uninstall) {
		proxyproc_stop(run_dir);
		err = datapath_uninstall(o.pin_root);
		if (!err) {
			char f[PATH_MAX + 16];

			snprintf(f, sizeof(f), "%s/flows.jsonl", run_dir);
			unlink(f);
			snprintf(f, sizeof(f), "%s/flows.jsonl.1", run_dir);
			unlink(f);
			snprintf(f, sizeof(f), "%s/status.json", run_dir);
			unlink(f);
			snprintf(f, sizeof(f), "%s/certs.json", run_dir);
			unlink(f);
			rmdir(run_dir);
		}
		if (err) {
			log_err("uninstall %s: %s", o.pin_root, strerror(-err));
			return 1;
		}
		log_info("node %s: programs detached, %s removed", o.node, o.pin_root);
		return 0;
	}
	if (!o.proxy_bin) {
		static char bin[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", bin, sizeof(bin) - 32);
		char *slash = n > 0 ? memrchr(bin, '/', (size_t)n) : NULL;

		if (!slash) {
			log_err("cannot tell where this program is; give --proxy-bin");
			return 2;
		}
		strcpy(slash + 1, "sluice-proxy");
		o.proxy_bin = bin;
	}
	{
		struct timespec rt;

		clock_gettime(CLOCK_REALTIME, &rt);
		o.started_ms = (uint64_t)rt.tv_sec * 1000 + (uint64_t)rt.tv_nsec / 1000000;
	}
	return run(&o);
}
