// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * enroll.c - the agent's side of the CNI plugin (enroll.h): the socket,
 * the requests, the registrations and the list of enrolled containers.
 *
 * About 800 lines in one file: each section below (answers, the host's
 * view of a container, the control plane, commands, the socket) acts on
 * the one struct enroll and its clients, private to this file, and one
 * request goes through all of them in turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <jansson.h>

#include "agent/enroll.h"
#include "agent/podman.h"
#include "lib/core/file.h"
#include "lib/core/log.h"
#include "lib/core/loop.h"
#include "lib/core/sys.h"
#include "lib/node/tchook.h"
#include "sluice_policy.h"

#define ENROLL_MAGIC   0x656e726cu
#define REQ_MAX        (64u << 10)
#define MAX_CLIENTS    64
#define READ_MS        2000        /* a plugin writes its request at once */
#define ANSWER_MS      10000       /* control plane and snapshot, for ADD/DEL */
#define GC_MS          10000
#define STATE_MAX      (16u << 20)

/* CNI error codes (CNI spec, "Error"), and ours from 100 */
#define CNI_ERR_VERSION    1
#define CNI_ERR_CONTAINER  3
#define CNI_ERR_ENV        4
#define CNI_ERR_IO         5
#define CNI_ERR_DECODE     6
#define CNI_ERR_CONFIG     7
#define CNI_ERR_AGAIN      11
#define CNI_ERR_REFUSED    100     /* the control plane refused the registration */
#define CNI_ERR_DRIFT      101     /* CHECK: the container's enrollment drifted */

enum cstate { C_READ, C_WAIT_CP, C_WAIT_APPLY, C_DONE };

struct client {
	int fd;
	uint64_t serial;
	enum cstate st;
	uint64_t deadline_ms, t0_ms;
	uint64_t t_disp, t_post, t_reg; /* request read, registration sent, answered */
	char *buf;
	size_t len;
	json_t *req;
	char cmd[8], id[129];
	uint64_t want_version;     /* C_WAIT_APPLY: answer once this is applied */
	json_t *entry;             /* ADD: what goes into cni.json once applied */
	char workload[300];
};

struct ptok {
	struct enroll *e;
	uint64_t serial;
	char id[129];
};

struct enroll {
	uint32_t magic;
	struct enroll_opts o;
	char sock[PATH_MAX], state[PATH_MAX + 16], cgroup_rel[PATH_MAX];
	struct sync *sy;
	struct datapath *dp;
	int ep, lfd;
	uint64_t serial, next_gc_ms;
	struct client *cl[MAX_CLIENTS];
	json_t *enrolled;          /* container id -> {netns, interface, workload, ...} */
	json_t *pending_del;       /* container id -> true: deregistrations to retry */
	bool dereg_inflight;
};

static void check(const struct enroll *e)
{
	if (!e || e->magic != ENROLL_MAGIC) {
		log_err("enroll: bad object %p", (const void *)e);
		abort();
	}
}

static void save_state(struct enroll *e)
{
	json_t *j = json_pack("{s:O, s:O}", "enrolled", e->enrolled, "deregister", e->pending_del);
	char *text = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
	/* the run dir: a restarted agent reads it, a rebooted node has no
	 * containers left to know about (lib/core/file.h) */
	int rc = text ? file_write_replace(e->state, text, strlen(text), 0600) : -ENOMEM;

	if (rc)
		log_warn("cni: writing %s: %s", e->state, strerror(-rc));
	free(text);
	json_decref(j);
}

static void load_state(struct enroll *e)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *j;
	int rc = file_read(e->state, &buf, &len, STATE_MAX);

	if (rc) {
		if (rc != -ENOENT)
			log_warn("cni: %s: %s; starting with no enrolled containers", e->state, strerror(-rc));
		return;
	}
	j = json_loadb(buf, len, 0, NULL);
	if (json_is_object(json_object_get(j, "enrolled")))
		json_object_update(e->enrolled, json_object_get(j, "enrolled"));
	if (json_is_object(json_object_get(j, "deregister")))
		json_object_update(e->pending_del, json_object_get(j, "deregister"));
	if (!j)
		log_warn("cni: %s is not JSON; starting with no enrolled containers", e->state);
	json_decref(j);
	free(buf);
}

/* ---- answers ------------------------------------------------------------- */

static void client_free(struct enroll *e, struct client *c)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (e->cl[i] == c)
			e->cl[i] = NULL;
	if (c->fd >= 0) {
		epoll_ctl(e->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	json_decref(c->req);
	json_decref(c->entry);
	free(c->buf);
	free(c);
}

static void answer(struct enroll *e, struct client *c, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (text) {
		/* a short local answer into an empty socket buffer: one send */
		size_t n = strlen(text);

		text[n] = '\n';
		if (send(c->fd, text, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)(n + 1))
			log_warn("cni: %s %.12s: the plugin went away before the answer", c->cmd, c->id);
	}
	free(text);
	json_decref(j);
	client_free(e, c);
}

static void __attribute__((format(printf, 5, 6)))
fail(struct enroll *e, struct client *c, int code, const char *details, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("cni: %s %.12s refused: %s%s%s", c->cmd, c->id, msg, details ? ": " : "",
		 details ?: "");
	answer(e, c, json_pack("{s:b, s:i, s:s, s:s}", "ok", 0, "code", code, "msg", msg,
			       "details", details ?: ""));
}

static void succeed(struct enroll *e, struct client *c)
{
	log_info("cni: %s %.12s%s%s done in %llu ms", c->cmd, c->id, c->workload[0] ? " as " : "",
		 c->workload, (unsigned long long)(loop_now_ms() - c->t0_ms));
	if (c->t_reg)
		log_debug("cni: %s %.12s: request %llu ms, runtime record %llu ms, control plane "
			  "%llu ms, then apply %llu ms", c->cmd, c->id,
			  (unsigned long long)(c->t_disp - c->t0_ms),
			  (unsigned long long)(c->t_post - c->t_disp),
			  (unsigned long long)(c->t_reg - c->t_post),
			  (unsigned long long)(loop_now_ms() - c->t_reg));
	answer(e, c, json_pack("{s:b, s:s, s:I}", "ok", 1, "workload", c->workload,
			       "ms", (json_int_t)(loop_now_ms() - c->t0_ms)));
}

static struct client *by_serial(struct enroll *e, uint64_t serial)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (e->cl[i] && e->cl[i]->serial == serial)
			return e->cl[i];
	return NULL;
}

/* ---- the host's view of a container ------------------------------------ */

static bool is_dir(const char *p)
{
	struct stat st;

	return !stat(p, &st) && S_ISDIR(st.st_mode);
}

/* The request's interface in the host namespace that is not a bridge. */
static const char *host_iface(const json_t *ifaces, char *why, size_t wl)
{
	const char *found = NULL;
	size_t i, n = 0;
	json_t *x;

	json_array_foreach(ifaces, i, x) {
		const char *name = json_string_value(json_object_get(x, "name"));
		char p[128];

		if (!name || json_object_get(x, "sandbox") || !*name || strlen(name) >= IF_NAMESIZE ||
		    strchr(name, '/') || name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/class/net/%s/bridge", name);
		if (is_dir(p))
			continue;
		snprintf(p, sizeof(p), "/sys/class/net/%s", name);
		if (!is_dir(p))
			continue;
		found = name;
		n++;
	}
	if (n != 1)
		snprintf(why, wl, n ? "prevResult.interfaces: %zu host-side interfaces that are not "
			 "bridges; expected one veth" : "prevResult.interfaces: no host-side interface "
			 "(one without sandbox that exists on the host and is not a bridge)", n);
	return n == 1 ? found : NULL;
}

/* The first IPv4 address of ips[] without its prefix length: 0, or
 * -ENOENT if there is none. */
static int first_v4(const json_t *ips, char *out, size_t len)
{
	size_t i;
	json_t *x;

	json_array_foreach(ips, i, x) {
		const char *s = json_string_value(x);
		const char *slash = s ? strchr(s, '/') : NULL;
		size_t n = slash ? (size_t)(slash - s) : (s ? strlen(s) : 0);

		if (s && !strchr(s, ':') && n && n < len) {
			memcpy(out, s, n);
			out[n] = 0;
			return 0;
		}
	}
	return -ENOENT;
}

/* The runtime's record: namespace, service account, labels, cgroup. */
static int runtime_identity(struct enroll *e, struct client *c, json_t **labels,
			    const char **ns, const char **sa, char *cg, size_t cglen)
{
	char err[512];
	json_t *conf = NULL;
	const char *parent, *mgr;
	int rc = podman_container(e->o.podman_db, c->id, &conf, err, sizeof(err));

	if (rc) {
		fail(e, c, rc == -ENOENT ? CNI_ERR_CONTAINER : CNI_ERR_IO, NULL,
		     "the runtime's record of container %.12s: %s", c->id, err);
		return rc;
	}
	*labels = json_incref(json_object_get(conf, "labels"));
	if (!json_is_object(*labels)) {
		json_decref(*labels);
		*labels = json_object();
	}
	*ns = json_string_value(json_object_get(*labels, "sluice.io/namespace")) ?: "default";
	*sa = json_string_value(json_object_get(*labels, "sluice.io/service-account")) ?: "default";
	parent = json_string_value(json_object_get(conf, "cgroupParent")) ?: "";
	mgr = json_string_value(json_object_get(conf, "cgroupManager")) ?: "cgroupfs";
	snprintf(cg, cglen, "%s/libpod-%s%s", parent, c->id, strcmp(mgr, "systemd") ? "" : ".scope");
	json_decref(conf);
	return 0;
}

/* ---- the control plane ---------------------------------------------------- */

static void on_register(void *arg, int status, const char *body, size_t len)
{
	struct ptok *t = arg;
	struct enroll *e = t->e;
	struct client *c = by_serial(e, t->serial);
	json_t *j = status > 0 ? json_loadb(body, len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "error"));

	free(t);
	if (c)
		c->t_reg = loop_now_ms();
	if (c && status == 200) {
		c->want_version = (uint64_t)json_integer_value(json_object_get(j, "version"));
		c->st = C_WAIT_APPLY;
	} else if (c) {
		fail(e, c, status < 0 ? CNI_ERR_AGAIN : status == 403 ? CNI_ERR_REFUSED : CNI_ERR_CONFIG,
		     NULL, "%s", status < 0 ? "the connection to the control plane dropped; try again" :
		     msg ?: "the control plane refused the registration");
	}
	json_decref(j);
}

static int post(struct enroll *e, struct client *c, json_t *body, sync_resp_fn fn)
{
	struct ptok *t = calloc(1, sizeof(*t));
	char *text = json_dumps(body, JSON_COMPACT);
	int rc = -ENOMEM;

	if (t && text) {
		t->e = e;
		t->serial = c ? c->serial : 0;
		snprintf(t->id, sizeof(t->id), "%s", json_string_value(json_object_get(body, "container")) ?: "");
		rc = sync_post(e->sy, "/v1/workloads", text, fn, t);
	}
	if (rc)
		free(t);
	free(text);
	return rc;
}

/* ---- commands --------------------------------------------------------------- */

static void do_add(struct enroll *e, struct client *c)
{
	const json_t *q = c->req;
	const char *netns = json_string_value(json_object_get(q, "netns"));
	const char *ns, *sa, *ifname;
	char why[256], addr[64], cg[PATH_MAX];
	json_t *labels = NULL, *body;
	size_t rl = strlen(e->cgroup_rel);

	if (!netns || netns[0] != '/' || access(netns, F_OK)) {
		fail(e, c, CNI_ERR_ENV, NULL, "CNI_NETNS \"%s\": no such network namespace", netns ?: "");
		return;
	}
	ifname = host_iface(json_object_get(q, "interfaces"), why, sizeof(why));
	if (!ifname) {
		fail(e, c, CNI_ERR_CONFIG, NULL, "%s", why);
		return;
	}
	if (first_v4(json_object_get(q, "ips"), addr, sizeof(addr))) {
		fail(e, c, CNI_ERR_CONFIG, NULL, "prevResult.ips: no IPv4 address for the container");
		return;
	}
	if (runtime_identity(e, c, &labels, &ns, &sa, cg, sizeof(cg)))
		return;
	if (strncmp(cg, e->cgroup_rel, rl) || (rl > 1 && cg[rl] != '/')) {
		fail(e, c, CNI_ERR_CONFIG, NULL, "container %.12s's cgroup %s is outside the agent's "
		     "cgroup %s, where the socket programs are attached; start containers with a "
		     "cgroup parent under it (podman --cgroup-parent) or the agent at a common parent",
		     c->id, cg, e->cgroup_rel);
		json_decref(labels);
		return;
	}
	snprintf(c->workload, sizeof(c->workload), "%s (service account %s)", ns, sa);
	c->entry = json_pack("{s:s, s:s, s:s, s:s, s:s}", "netns", netns, "interface", ifname,
			     "address", addr, "namespace", ns, "serviceAccount", sa);
	body = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:s, s:s}", "op", "register",
			 "container", c->id, "namespace", ns, "serviceAccount", sa, "labels", labels,
			 "address", addr, "netns", netns, "interface", ifname, "cgroup", cg);
	json_decref(labels);
	if (!sync_connected(e->sy)) {
		fail(e, c, CNI_ERR_AGAIN, NULL, "the agent is not connected to the control plane; "
		     "try again");
	} else if (!body || post(e, c, body, on_register)) {
		fail(e, c, CNI_ERR_IO, NULL, "sending the registration to the control plane failed");
	} else {
		c->st = C_WAIT_CP;
		c->deadline_ms = loop_now_ms() + ANSWER_MS;
		c->t_post = loop_now_ms();
	}
	json_decref(body);
}

static void on_deregister(void *arg, int status, const char *body, size_t len)
{
	struct ptok *t = arg;
	struct enroll *e = t->e;
	struct client *c = t->serial ? by_serial(e, t->serial) : NULL;
	json_t *j = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;

	(void)len;
	if (!t->serial)
		e->dereg_inflight = false;
	if (status == 200 || status == 403) {
		/* 403: the entry is another node's or an operator's; not ours to remove */
		json_object_del(e->pending_del, t->id);
		save_state(e);
		if (status == 403)
			log_warn("cni: deregistering %.12s: %.*s", t->id, (int)len, body ?: "");
	}
	if (c) {
		c->want_version = (uint64_t)json_integer_value(json_object_get(j, "version"));
		c->st = C_WAIT_APPLY;   /* the maps lose the entry with that snapshot */
	}
	json_decref(j);
	free(t);
}

static void do_del(struct enroll *e, struct client *c)
{
	json_t *ent = json_object_get(e->enrolled, c->id);
	const char *ifname = json_string_value(json_object_get(ent, "interface"));
	unsigned int ifindex = ifname ? if_nametoindex(ifname) : 0;
	json_t *body = json_pack("{s:s, s:s}", "op", "deregister", "container", c->id);

	snprintf(c->workload, sizeof(c->workload), "%s", ent ? "(enrolled)" : "(not enrolled)");
	if (ifindex) {
		tchook_detach(ifindex);
		datapath_tc_forget(e->dp, ifindex);
	}
	json_object_del(e->enrolled, c->id);
	json_object_set_new(e->pending_del, c->id, json_true());
	save_state(e);
	if (body && sync_connected(e->sy) && !post(e, c, body, on_deregister)) {
		c->st = C_WAIT_CP;
		c->deadline_ms = loop_now_ms() + ANSWER_MS;
	} else {
		/* DEL succeeds; the deregistration is retried when the control
		 * plane is back (enroll_tick) */
		log_warn("cni: DEL %.12s: control plane unreachable; deregistration queued", c->id);
		succeed(e, c);
	}
	json_decref(body);
}

static void __attribute__((format(printf, 4, 5)))
drift_add(char *buf, size_t cap, size_t *dl, const char *fmt, ...)
{
	va_list ap;

	if (*dl + 3 >= cap)
		return;
	if (*dl)
		*dl += (size_t)snprintf(buf + *dl, cap - *dl, "; ");
	va_start(ap, fmt);
	*dl += (size_t)vsnprintf(buf + *dl, cap - *dl, fmt, ap);
	va_end(ap);
	if (*dl >= cap)
		*dl = cap - 1;
}

static void do_check(struct enroll *e, struct client *c)
{
	json_t *ent = json_object_get(e->enrolled, c->id), *labels = NULL;
	const char *ifname = json_string_value(json_object_get(ent, "interface"));
	const char *netns = json_string_value(json_object_get(ent, "netns"));
	unsigned int ifindex = ifname ? if_nametoindex(ifname) : 0;
	const char *ns, *sa;
	struct sl_endpoint ep;
	char drift[1024] = "", cg[PATH_MAX];
	size_t dl = 0;

#define DRIFT(...) drift_add(drift, sizeof(drift), &dl, __VA_ARGS__)
	if (!ent) {
		fail(e, c, CNI_ERR_DRIFT, NULL, "container %.12s is not enrolled on this node", c->id);
		return;
	}
	if (access(netns, F_OK))
		DRIFT("network namespace %s is gone", netns);
	if (!ifindex)
		DRIFT("host interface %s is gone", ifname);
	else if (tchook_count(ifindex) < 2)
		DRIFT("tc programs missing on %s", ifname);
	else if (bpf_map_lookup_elem(e->dp->pol.ep_fd, &ifindex, &ep))
		DRIFT("no sl_endpoints entry for %s (ifindex %u)", ifname, ifindex);
	if (runtime_identity(e, c, &labels, &ns, &sa, cg, sizeof(cg)))
		return;
	if (strcmp(ns, json_string_value(json_object_get(ent, "namespace")) ?: "") ||
	    strcmp(sa, json_string_value(json_object_get(ent, "serviceAccount")) ?: ""))
		DRIFT("the runtime now says namespace %s, service account %s", ns, sa);
	json_decref(labels);
#undef DRIFT
	if (dl)
		fail(e, c, CNI_ERR_DRIFT, drift, "container %.12s has drifted", c->id);
	else
		succeed(e, c);
}

static bool hex_id(const char *s)
{
	size_t n = strlen(s);

	if (n < 12 || n > 128)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static void dispatch(struct enroll *e, struct client *c)
{
	json_error_t je;
	const char *cmd, *id;

	c->t_disp = loop_now_ms();
	c->req = json_loadb(c->buf, c->len, JSON_REJECT_DUPLICATES, &je);
	cmd = json_string_value(json_object_get(c->req, "command"));
	id = json_string_value(json_object_get(c->req, "containerId"));
	snprintf(c->cmd, sizeof(c->cmd), "%s", cmd ?: "?");
	snprintf(c->id, sizeof(c->id), "%s", id ?: "?");
	if (!json_is_object(c->req)) {
		fail(e, c, CNI_ERR_DECODE, NULL, "request: not a JSON object: %s", je.text);
	} else if (!id || !hex_id(id)) {
		fail(e, c, CNI_ERR_ENV, NULL, "CNI_CONTAINERID: \"%.80s\" is not a container id "
		     "(12 to 128 lowercase hex digits)", id ?: "");
	} else if (!strcmp(c->cmd, "ADD")) {
		do_add(e, c);
	} else if (!strcmp(c->cmd, "DEL")) {
		do_del(e, c);
	} else if (!strcmp(c->cmd, "CHECK")) {
		do_check(e, c);
	} else {
		fail(e, c, CNI_ERR_ENV, NULL, "command \"%s\": ADD, DEL or CHECK", c->cmd);
	}
}

/* ---- the socket ------------------------------------------------------------- */

static void accept_one(struct enroll *e)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct client *c;
	int fd = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), slot = -1;

	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
		if (!e->cl[i])
			slot = i;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) || cred.uid != 0 || slot < 0) {
		log_warn("cni: connection refused: %s", slot < 0 ? "too many at once" : "peer is not root");
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &(struct epoll_event){ .events = EPOLLIN,
			    .data.u64 = e->serial + 1 })) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->serial = ++e->serial;
	c->t0_ms = loop_now_ms();
	c->deadline_ms = c->t0_ms + READ_MS;
	e->cl[slot] = c;
}

static void read_client(struct enroll *e, struct client *c)
{
	char tmp[8192];
	ssize_t n;

	while ((n = recv(c->fd, tmp, sizeof(tmp), 0)) > 0) {
		char *nb;

		if (c->len + (size_t)n > REQ_MAX) {
			fail(e, c, CNI_ERR_DECODE, NULL, "request larger than %u bytes", REQ_MAX);
			return;
		}
		nb = realloc(c->buf, c->len + (size_t)n + 1);
		if (!nb) {
			fail(e, c, CNI_ERR_IO, NULL, "out of memory");
			return;
		}
		c->buf = nb;
		memcpy(c->buf + c->len, tmp, (size_t)n);
		c->len += (size_t)n;
	}
	if (n == 0) {
		/* the plugin shut down its side: the request is whole */
		epoll_ctl(e->ep, EPOLL_CTL_DEL, c->fd, NULL);
		dispatch(e, c);
	} else if (errno != EAGAIN && errno != EINTR) {
		client_free(e, c);
	}
}

void enroll_handle(struct enroll *e)
{
	struct epoll_event ev[16];
	int n;

	check(e);
	n = epoll_wait(e->ep, ev, 16, 0);
	for (int i = 0; i < n; i++) {
		struct client *c;

		if (ev[i].data.u64 == 0) {
			accept_one(e);
			continue;
		}
		c = by_serial(e, ev[i].data.u64);
		if (c && c->st == C_READ)
			read_client(e, c);
	}
}

/* Containers whose network namespace is gone, and deregistrations the
 * control plane has not confirmed yet. */
static void gc(struct enroll *e)
{
	const char *id;
	json_t *v, *tmp;
	bool changed = false;

	json_object_foreach_safe(e->enrolled, tmp, id, v) {
		const char *netns = json_string_value(json_object_get(v, "netns"));

		if (netns && access(netns, F_OK) && errno == ENOENT) {
			log_info("cni: container %.12s: network namespace %s is gone; deregistering",
				 id, netns);
			json_object_set_new(e->pending_del, id, json_true());
			json_object_del(e->enrolled, id);
			changed = true;
		}
	}
	if (changed)
		save_state(e);
	if (e->dereg_inflight || !sync_connected(e->sy))
		return;
	json_object_foreach(e->pending_del, id, v) {
		json_t *body = json_pack("{s:s, s:s}", "op", "deregister", "container", id);

		if (body && !post(e, NULL, body, on_deregister))
			e->dereg_inflight = true;   /* one at a time */
		json_decref(body);
		break;
	}
}

void enroll_tick(struct enroll *e)
{
	uint64_t now = loop_now_ms(), applied;

	check(e);
	applied = sync_version(e->sy);
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = e->cl[i];

		if (!c)
			continue;
		if (c->st == C_WAIT_APPLY && applied >= c->want_version) {
			if (c->entry) {
				json_object_set(e->enrolled, c->id, c->entry);
				save_state(e);
			}
			succeed(e, c);
		} else if (now >= c->deadline_ms) {
			if (!strcmp(c->cmd, "DEL"))
				succeed(e, c);   /* queued; the snapshot will follow */
			else
				fail(e, c, c->st == C_READ ? CNI_ERR_DECODE : CNI_ERR_AGAIN, NULL,
				     c->st == C_READ ? "no whole request within %d ms" :
				     "no applied snapshot with the registration within %d ms; try again",
				     c->st == C_READ ? READ_MS : ANSWER_MS);
		}
	}
	if (now >= e->next_gc_ms) {
		e->next_gc_ms = now + GC_MS;
		gc(e);
	}
}

int enroll_timeout_ms(const struct enroll *e)
{
	uint64_t now = loop_now_ms(), next = e->next_gc_ms;

	check(e);
	/* A client waiting for an apply needs no polling: snapshots are
	 * applied in sync_handle(), and enroll_tick() runs after it in the
	 * same turn of the loop. What is left is the deadlines. */
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (e->cl[i] && e->cl[i]->deadline_ms < next)
			next = e->cl[i]->deadline_ms;
	return next <= now ? 0 : next - now > 1000 ? 1000 : (int)(next - now);
}

int enroll_fd(const struct enroll *e)
{
	check(e);
	return e->ep;
}

struct enroll *enroll_new(const struct enroll_opts *o, struct sync *sy, struct datapath *dp)
{
	struct enroll *e = calloc(1, sizeof(*e));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char root[PATH_MAX];
	size_t rl;

	if (!e)
		return NULL;
	e->magic = ENROLL_MAGIC;
	e->o = *o;
	e->sy = sy;
	e->dp = dp;
	e->lfd = -1;
	e->ep = epoll_create1(EPOLL_CLOEXEC);
	e->enrolled = json_object();
	e->pending_del = json_object();
	snprintf(e->sock, sizeof(e->sock), "%s", o->socket);
	snprintf(e->state, sizeof(e->state), "%s/cni.json", o->run_dir);
	if (sys_cgroup2_root(root, sizeof(root))) {
		log_err("cni: no cgroup2 mount");
		goto fail;
	}
	rl = strlen(root);
	if (strncmp(o->cgroup, root, rl) || (o->cgroup[rl] && o->cgroup[rl] != '/')) {
		log_err("cni: the agent's cgroup %s is not under the cgroup2 mount %s", o->cgroup, root);
		goto fail;
	}
	snprintf(e->cgroup_rel, sizeof(e->cgroup_rel), "%s", o->cgroup[rl] ? o->cgroup + rl : "/");
	if (e->ep < 0 || !e->enrolled || !e->pending_del || strlen(o->socket) >= sizeof(sa.sun_path))
		goto fail;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", o->socket);
	e->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	unlink(o->socket);   /* left by an agent that was killed */
	if (e->lfd < 0 || sys_mkdir_p(o->run_dir, 0755) ||
	    bind(e->lfd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(o->socket, 0600) ||
	    listen(e->lfd, 64) ||
	    epoll_ctl(e->ep, EPOLL_CTL_ADD, e->lfd, &(struct epoll_event){ .events = EPOLLIN })) {
		log_err("cni: socket %s: %s", o->socket, strerror(errno));
		goto fail;
	}
	load_state(e);
	log_info("cni: listening on %s; %zu containers enrolled; runtime record %s; cgroup %s",
		 o->socket, json_object_size(e->enrolled), o->podman_db, e->cgroup_rel);
	return e;
fail:
	enroll_free(e);
	return NULL;
}

void enroll_free(struct enroll *e)
{
	if (!e)
		return;
	check(e);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (e->cl[i])
			client_free(e, e->cl[i]);
	if (e->lfd >= 0) {
		close(e->lfd);
		unlink(e->sock);
	}
	if (e->ep >= 0)
		close(e->ep);
	json_decref(e->enrolled);
	json_decref(e->pending_del);
	e->magic = 0;
	free(e);
}
