// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * server.c - the control plane's API server (server.h): listener, epoll
 * loop, routing, authorization, and the config change path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <malloc.h>

#include "control/register.h"
#include "control/server.h"
#include "lib/compile/compile.h"
#include "lib/config/config_check.h"
#include "lib/core/addr.h"
#include "lib/core/cli.h"
#include "lib/core/file.h"
#include "lib/wire/h2.h"
#include "lib/core/log.h"

#define MAX_CONNS 1024

enum src_kind { SRC_LISTEN = 1, SRC_SIGNAL, SRC_CONN };

struct node_st {
	char name[64];
	uint64_t version;          /* of its current snapshot; 0: none */
	char *canon;               /* the snapshot without its version */
	char *line;                /* the watch message, '\n'-terminated */
	size_t line_len;
	unsigned int watchers;
	bool ever_connected;
	bool has_acked, has_nacked;
	uint64_t acked, nacked;
	char reason[1024];
	time_t since;              /* connected / disconnected at */
	char hbone[64];            /* its proxy's HBONE address, as it reported it */
};

struct conn {
	enum src_kind kind;
	struct server *srv;
	struct h2_conn *h;
	unsigned int events;
	bool dirty, kill;
	char addr[64];
	struct conn *prev, *next;
};

struct watcher {
	struct conn *cn;
	int32_t id;
	struct node_st *node;
	struct watcher *next;
};

struct compiled {
	char name[64];
	char *canon, *line;
	size_t line_len;
};

struct server {
	struct store *st;
	const struct server_opts *o;
	SSL_CTX *tls;
	struct h2_limits lim;
	int efd, lfd, sfd;
	enum src_kind lsrc, ssrc;
	struct node_st **nodes;
	size_t nnodes;
	struct watcher *watchers;
	struct conn *conns;
	size_t nconns;
	char admin_uri[512], node_prefix[512];
	time_t started;
};

/* ---- replies ------------------------------------------------------------- */

static void reply(struct h2_conn *c, int32_t id, int status, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	size_t n;

	json_decref(j);
	if (!text) {
		const char *oom = "{\"error\": \"out of memory\"}\n";

		h2_respond(c, id, 500, "application/json", oom, strlen(oom));
		return;
	}
	n = strlen(text);
	text[n] = '\n';  /* replaces the NUL; length n + 1 */
	h2_respond(c, id, status, "application/json", text, n + 1);
	free(text);
}

static void __attribute__((format(printf, 4, 5)))
reply_err(struct h2_conn *c, int32_t id, int status, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply(c, id, status, json_pack("{s:s}", "error", msg));
}

/* ---- nodes and snapshots ------------------------------------------------- */

static struct node_st *node_get(struct server *s, const char *name, bool create)
{
	struct node_st *n, **v;

	for (size_t i = 0; i < s->nnodes; i++)
		if (strcmp(s->nodes[i]->name, name) == 0)
			return s->nodes[i];
	if (!create)
		return NULL;
	v = realloc(s->nodes, (s->nnodes + 1) * sizeof(*v));
	if (!v)
		return NULL;
	s->nodes = v;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	snprintf(n->name, sizeof(n->name), "%s", name);
	s->nodes[s->nnodes++] = n;
	return n;
}

static void compiled_free(struct compiled *cc, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(cc[i].canon);
		free(cc[i].line);
	}
	free(cc);
}

/* The HBONE address of every node whose agent reported one (GET /v1/watch
 * with x-sluice-hbone), as the snapshot's nodes[], so that a proxy finds
 * the node of a remote workload (workloads[].node). */
static int node_addrs(struct server *s, json_t *snap)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < s->nnodes; i++)
		if (s->nodes[i]->hbone[0] &&
		    json_array_append_new(a, json_pack("{s:s, s:s}", "name", s->nodes[i]->name,
						       "hbone", s->nodes[i]->hbone)))
			break;
	if (!a || json_array_size(a) == 0) {
		json_decref(a);
		return a ? 0 : -1;
	}
	return json_object_set_new(snap, "nodes", a);
}

/* <state dir>/nodes.json: the nodes' HBONE addresses as they last reported
 * them, so that a restarted control plane compiles the same snapshots (and
 * keeps the config version) until an address really changes. */
static void node_addrs_path(const struct server *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s/nodes.json", s->st->dir);
}

static int node_addrs_load(struct server *s, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	json_error_t jerr;
	const char *name;
	json_t *j, *v;

	node_addrs_path(s, path, sizeof(path));
	if (access(path, F_OK))
		return 0;
	j = json_load_file(path, 0, &jerr);
	if (!json_is_object(j)) {
		snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column,
			 j ? "not an object" : jerr.text);
		json_decref(j);
		return -1;
	}
	json_object_foreach(j, name, v) {
		struct node_st *n = json_is_string(v) ? node_get(s, name, true) : NULL;

		if (!n || addr_hostport_parse(json_string_value(v), NULL, NULL)) {
			snprintf(err, errlen, "%s: %s: not an IP:PORT", path, name);
			json_decref(j);
			return -1;
		}
		snprintf(n->hbone, sizeof(n->hbone), "%s", json_string_value(v));
	}
	json_decref(j);
	return 0;
}

static int node_addrs_save(const struct server *s)
{
	char path[PATH_MAX + 16], *text;
	json_t *j = json_object();
	int rc = -ENOMEM;

	for (size_t i = 0; j && i < s->nnodes; i++)
		if (s->nodes[i]->hbone[0])
			json_object_set_new(j, s->nodes[i]->name, json_string(s->nodes[i]->hbone));
	text = j ? json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;
	node_addrs_path(s, path, sizeof(path));
	if (text)
		rc = file_write_atomic(path, text, strlen(text), 0644);
	free(text);
	json_decref(j);
	return rc;
}

/* One node's snapshot as the canonical text (no version) and the watch line. */
static int compile_one(struct server *s, const struct sl_config *cfg, struct sl_ids *ids,
		       const char *name, uint64_t version, struct compiled *out, struct sl_diags *d)
{
	json_t *snap = sl_compile_node(cfg, ids, s->st->td, name, version, d);
	size_t cl;
	int n;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	if (!snap)
		return -1;
	if (node_addrs(s, snap)) {
		json_decref(snap);
		return -1;
	}
	json_object_del(snap, "version");
	out->canon = json_dumps(snap, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(snap);
	if (!out->canon || out->canon[0] != '{')
		goto fail;
	/* one dump serves both: the line is the canonical text with the
	 * version put in front, {"version":V,"snapshot":{"version":V,...}} */
	cl = strlen(out->canon);
	n = asprintf(&out->line, "{\"version\":%llu,\"snapshot\":{\"version\":%llu%s%s}\n",
		     (unsigned long long)version, (unsigned long long)version,
		     cl > 2 ? "," : "", out->canon + 1);
	if (n < 0) {
		out->line = NULL;
		goto fail;
	}
	out->line_len = (size_t)n;
	return 0;
fail:
	free(out->canon);
	out->canon = NULL;
	return -1;
}

/* Every node the config places workloads on, and every node we know. */
static int compile_all(struct server *s, const struct sl_config *cfg, struct sl_ids *ids,
		       uint64_t version, struct compiled **out, size_t *nout, struct sl_diags *d)
{
	json_t *names = sl_compile_nodes(cfg);
	size_t cap = json_array_size(names) + s->nnodes, n = 0, i;
	struct compiled *cc = calloc(cap ? cap : 1, sizeof(*cc));
	int rc = -1;

	if (!names || !cc)
		goto out;
	for (i = 0; i < json_array_size(names) + s->nnodes; i++) {
		const char *name = i < json_array_size(names) ?
			json_string_value(json_array_get(names, i)) :
			s->nodes[i - json_array_size(names)]->name;
		bool dup = false;

		for (size_t k = 0; k < n && !dup; k++)
			dup = strcmp(cc[k].name, name) == 0;
		if (!name || dup || strlen(name) >= sizeof(cc[0].name))
			continue;
		if (compile_one(s, cfg, ids, name, version, &cc[n], d)) {
			log_warn("node %s: compiling its snapshot failed (%zu errors)", name, d->nerrors);
			n++;
			goto out;
		}
		n++;
	}
	rc = 0;
out:
	json_decref(names);
	if (rc) {
		compiled_free(cc, n);
		return -1;
	}
	*out = cc;
	*nout = n;
	return 0;
}

static void push(struct server *s, struct node_st *n)
{
	for (struct watcher *w = s->watchers; w; w = w->next) {
		if (w->node != n || w->cn->kill)
			continue;
		if (h2_stream_write(w->cn->h, w->id, n->line, n->line_len)) {
			log_warn("node %s (%s): %s; cutting the connection off", n->name, w->cn->addr,
				 h2_conn_error(w->cn->h));
			w->cn->kill = true;
		}
		w->cn->dirty = true;
	}
}

/* Take the compiled snapshots in; push those that changed. */
static unsigned int install(struct server *s, struct compiled *cc, size_t n, uint64_t version)
{
	unsigned int changed = 0;

	for (size_t i = 0; i < n; i++) {
		struct node_st *nd = node_get(s, cc[i].name, true);

		if (!nd || (nd->canon && strcmp(nd->canon, cc[i].canon) == 0))
			continue;
		free(nd->canon);
		free(nd->line);
		nd->canon = cc[i].canon;
		nd->line = cc[i].line;
		nd->line_len = cc[i].line_len;
		nd->version = version;
		cc[i].canon = cc[i].line = NULL;
		changed++;
		push(s, nd);
	}
	return changed;
}

/*
 * The one way the config changes: `nc` (checked already) is compiled for
 * every node with fresh identities, persisted, swapped in and pushed. On
 * any failure nothing changes. Takes nc.
 */
static void change(struct server *s, struct h2_conn *c, int32_t id, struct sl_config *nc,
		   struct sl_diags *d, const char *what)
{
	uint64_t v = s->st->version + 1, t0 = h2_now_ms(), t1, t2;
	struct store *st = s->st;
	json_t *a = sl_config_to_json(st->cfg), *b = sl_config_to_json(nc);
	struct compiled *cc = NULL;
	struct sl_ids *ids = NULL;
	unsigned int pushed;
	size_t n = 0;
	char err[512];

	if (a && b && json_equal(a, b)) {
		reply(c, id, 200, json_pack("{s:I, s:b, s:o}", "version", (json_int_t)st->version,
					    "changed", 0, "diagnostics", sl_diags_json(d)));
		goto out;
	}
	ids = store_ids_copy(st->ids);
	if (!ids) {
		reply_err(c, id, 500, "out of memory; nothing changed");
		goto out;
	}
	t1 = h2_now_ms();
	if (compile_all(s, nc, ids, v, &cc, &n, d)) {
		reply(c, id, 422, json_pack("{s:s, s:o}", "error",
			"the configuration does not compile; nothing changed",
			"diagnostics", sl_diags_json(d)));
		goto out;
	}
	t2 = h2_now_ms();
	if (store_save(st, nc, ids, v, err, sizeof(err))) {
		log_err("%s: %s", what, err);
		reply_err(c, id, 500, "%s; nothing changed", err);
		goto out;
	}
	sl_config_free(st->cfg);
	sl_ids_free(st->ids);
	st->cfg = nc;
	st->ids = ids;
	st->version = v;
	nc = NULL;
	ids = NULL;
	pushed = install(s, cc, n, v);
	log_info("%s: config version %llu (%zu resources), %u of %zu node snapshots changed; "
		 "compare %llu ms, compile %llu ms, save %llu ms", what, (unsigned long long)v,
		 sl_config_count(st->cfg), pushed, n, (unsigned long long)(t1 - t0),
		 (unsigned long long)(t2 - t1), (unsigned long long)(h2_now_ms() - t2));
	reply(c, id, 200, json_pack("{s:I, s:b, s:i, s:o}", "version", (json_int_t)v, "changed", 1,
				    "nodes_changed", (int)pushed, "diagnostics", sl_diags_json(d)));
out:
	compiled_free(cc, n);
	sl_ids_free(ids);
	sl_config_free(nc);
	json_decref(a);
	json_decref(b);
	/* a change at 10,000 services frees hundreds of MB of small blocks */
	malloc_trim(0);
}

/* ---- request helpers ----------------------------------------------------- */

static const char *header(const struct h2_req *r, const char *name)
{
	for (size_t i = 0; i < r->nhdrs; i++)
		if (strcmp(r->hdrs[i].name, name) == 0)
			return r->hdrs[i].value;
	return NULL;
}

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
	       ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* The decoded value of `key` in a query string; -1 if absent or bad. */
static int qget(const char *q, const char *key, char *out, size_t len)
{
	size_t kl = strlen(key);

	while (*q) {
		const char *end = q + strcspn(q, "&");

		if ((size_t)(end - q) > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
			size_t o = 0;

			for (const char *p = q + kl + 1; p < end; p++) {
				int ch = *p;

				if (ch == '+') {
					ch = ' ';
				} else if (ch == '%') {
					if (end - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0)
						return -1;
					ch = hexval(p[1]) * 16 + hexval(p[2]);
					p += 2;
				}
				if (o + 1 >= len || ch == 0)
					return -1;
				out[o++] = (char)ch;
			}
			out[o] = '\0';
			return 0;
		}
		q = *end ? end + 1 : end;
	}
	return -1;
}

static const struct { const char *kind, *alias; } kinds[] = {
	{ "Service", "svc" }, { "ServiceEntry", "se" }, { "WorkloadEntry", "we" },
	{ "WorkloadGroup", "wg" },
	{ "DestinationRule", "dr" }, { "VirtualService", "vs" },
	{ "AuthorizationPolicy", "ap" }, { "PeerAuthentication", "pa" },
};

/* Kind, its plural (Services, AuthorizationPolicies), its alias, any
 * case -> the kind's own spelling. */
static const char *kind_canon(const char *k)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *kd = kinds[i].kind;
		size_t l = strlen(kd);
		bool y = kd[l - 1] == 'y';

		if (strcasecmp(k, kd) == 0 || strcasecmp(k, kinds[i].alias) == 0 ||
		    (strncasecmp(k, kd, l) == 0 && strcasecmp(k + l, "s") == 0) ||
		    (y && strncasecmp(k, kd, l - 1) == 0 && strcasecmp(k + l - 1, "ies") == 0))
			return kd;
	}
	return NULL;
}

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

static json_t *parse_body(struct h2_conn *c, const struct h2_req *r)
{
	json_error_t e;
	json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);

	if (!j)
		reply_err(c, r->stream_id, 400, "body: line %d column %d: %s", e.line, e.column, e.text);
	else if (!json_is_object(j)) {
		reply_err(c, r->stream_id, 400, "body: a JSON object is expected");
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* ---- handlers ------------------------------------------------------------ */

static void h_join(struct server *s, struct conn *cn, const struct h2_req *r)
{
	struct h2_conn *c = cn->h;
	const char *node, *token, *csr;
	char err[512], uri[512];
	struct pki_names names = { .uri = uri };
	char *cert_pem = NULL, *ca_pem = NULL;
	X509 *cert = NULL;
	json_t *j = parse_body(c, r);

	if (!j)
		return;
	node = json_string_value(json_object_get(j, "node"));
	token = json_string_value(json_object_get(j, "token"));
	csr = json_string_value(json_object_get(j, "csr"));
	if (!node || !token || !csr) {
		reply_err(c, r->stream_id, 400, "body: node, token and csr (strings) are required");
		goto out;
	}
	if (!store_node_name_ok(node)) {
		reply_err(c, r->stream_id, 400, "node: '%s' is not a node name "
			  "(1..63 of a-z, 0-9, '.', '-', '_')", node);
		goto out;
	}
	if (store_token_use(s->st->dir, node, token, false, err, sizeof(err))) {
		log_warn("join from %s as node %s refused: %s", cn->addr, node, err);
		reply_err(c, r->stream_id, 401, "%s", err);
		goto out;
	}
	store_role_uri(s->st, "node/", uri, sizeof(uri));
	snprintf(uri + strlen(uri), sizeof(uri) - strlen(uri), "%s", node);
	names.cn = node;
	cert = pki_sign_csr(&s->st->ca, csr, strlen(csr), &names, PKI_LEAF_SECONDS, err, sizeof(err));
	if (!cert) {
		reply_err(c, r->stream_id, 400, "%s", err);
		goto out;
	}
	if (store_token_use(s->st->dir, node, token, true, err, sizeof(err))) {
		reply_err(c, r->stream_id, 401, "%s", err);
		goto out;
	}
	cert_pem = pki_cert_pem(cert);
	ca_pem = pki_cert_pem(s->st->ca.cert);
	if (!cert_pem || !ca_pem) {
		reply_err(c, r->stream_id, 500, "encoding the certificate failed");
		goto out;
	}
	log_info("node %s joined from %s: certificate for %s issued", node, cn->addr, uri);
	reply(c, r->stream_id, 200, json_pack("{s:s, s:s}", "certificate", cert_pem, "ca", ca_pem));
out:
	free(cert_pem);
	free(ca_pem);
	X509_free(cert);
	json_decref(j);
}

/* A node's HBONE address changed: every node's snapshot names it, so all
 * are recompiled at a new config version, persisted like any change. */
static int renode(struct server *s)
{
	struct store *st = s->st;
	uint64_t v = st->version + 1;
	struct sl_ids *ids = store_ids_copy(st->ids);
	struct compiled *cc = NULL;
	struct sl_diags d = {};
	size_t n = 0;
	char err[512];
	int rc = -1;

	if (!ids || compile_all(s, st->cfg, ids, v, &cc, &n, &d))
		goto out;
	if (store_save(st, st->cfg, ids, v, err, sizeof(err))) {
		log_err("node addresses changed: %s", err);
		goto out;
	}
	sl_ids_free(st->ids);
	st->ids = ids;
	ids = NULL;
	st->version = v;
	log_info("node addresses changed: config version %llu, %u of %zu node snapshots changed",
		 (unsigned long long)v, install(s, cc, n, v), n);
	rc = 0;
out:
	compiled_free(cc, n);
	sl_ids_free(ids);
	sl_diags_free(&d);
	return rc;
}

static void h_watch(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
{
	struct node_st *n = node_get(s, node, true);
	struct watcher *w = calloc(1, sizeof(*w));
	const char *hb = header(r, "x-sluice-hbone");
	struct sl_diags d = {};
	struct compiled cc;
	int rc;

	if (!n || !w) {
		free(w);
		reply_err(cn->h, r->stream_id, 500, "out of memory");
		return;
	}
	if (hb && addr_hostport_parse(hb, NULL, NULL)) {
		free(w);
		reply_err(cn->h, r->stream_id, 400, "x-sluice-hbone: '%s' is not IP:PORT", hb);
		return;
	}
	if (hb && strcmp(hb, n->hbone) != 0) {
		char old[sizeof(n->hbone)];

		snprintf(old, sizeof(old), "%s", n->hbone);
		snprintf(n->hbone, sizeof(n->hbone), "%s", hb);
		log_info("node %s: HBONE address %s", node, hb);
		if (renode(s)) {
			snprintf(n->hbone, sizeof(n->hbone), "%s", old);
			free(w);
			reply_err(cn->h, r->stream_id, 500, "recompiling with node %s's address failed", node);
			return;
		}
		rc = node_addrs_save(s);
		if (rc)
			log_err("saving the nodes' HBONE addresses: %s (a restart learns them again)",
				strerror(-rc));
	}
	if (!n->line) {
		/* a node with no workloads yet: it still needs every service */
		if (compile_one(s, s->st->cfg, s->st->ids, node, s->st->version, &cc, &d)) {
			char *first = d.n ? d.v[0].msg : "out of memory";

			reply_err(cn->h, r->stream_id, 500, "compiling node %s's snapshot: %s", node, first);
			sl_diags_free(&d);
			free(w);
			return;
		}
		install(s, &cc, 1, s->st->version);
		free(cc.canon);
		free(cc.line);
	}
	sl_diags_free(&d);
	if (h2_respond_stream(cn->h, r->stream_id, 200, "application/x-ndjson") ||
	    h2_stream_write(cn->h, r->stream_id, n->line, n->line_len)) {
		free(w);
		cn->kill = true;
		return;
	}
	w->cn = cn;
	w->id = r->stream_id;
	w->node = n;
	w->next = s->watchers;
	s->watchers = w;
	n->watchers++;
	n->ever_connected = true;
	n->since = time(NULL);
	log_info("node %s watching from %s; sent version %llu", node, cn->addr,
		 (unsigned long long)n->version);
}

static void watch_closed(struct server *s, struct conn *cn, int32_t id)
{
	for (struct watcher **pp = &s->watchers; *pp; pp = &(*pp)->next) {
		struct watcher *w = *pp;

		if (w->cn != cn || w->id != id)
			continue;
		*pp = w->next;
		w->node->watchers--;
		w->node->since = time(NULL);
		log_info("node %s stopped watching (%s)", w->node->name, cn->addr);
		free(w);
		return;
	}
}

/* Is `uri` the identity of a workload the current config places on `node`?
 * Read from the node's compiled snapshot: local workloads carry netns. */
static bool node_runs(struct server *s, const char *node, const char *uri)
{
	struct node_st *n = node_get(s, node, false);
	json_t *j, *w, *ids;
	json_int_t want = -1;
	size_t i;
	bool yes = false;

	if (!n || !n->canon)
		return false;
	j = json_loads(n->canon, 0, NULL);
	ids = json_object_get(j, "identities");
	json_array_foreach(ids, i, w)
		if (!strcmp(json_string_value(json_object_get(w, "spiffe")) ?: "", uri))
			want = json_integer_value(json_object_get(w, "id"));
	json_array_foreach(json_object_get(j, "workloads"), i, w)
		if (json_object_get(w, "netns") &&
		    json_integer_value(json_object_get(w, "identity")) == want)
			yes = true;
	json_decref(j);
	return yes;
}

/*
 * POST /v1/certs {csr}: a workload certificate for a node's proxy. The
 * CSR's URI SAN names the identity; it must be one of a workload the
 * config places on the calling node (the node comes from its certificate).
 */
static void h_certs(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
{
	struct h2_conn *c = cn->h;
	char uri[600], prefix[600], err[512], serial[80];
	struct pki_names names = { .cn = node, .uri = uri };
	const char *csr;
	char *pem = NULL, *ca = NULL;
	X509 *cert = NULL;
	json_t *j = parse_body(c, r);

	if (!j)
		return;
	csr = json_string_value(json_object_get(j, "csr"));
	if (!csr) {
		reply_err(c, r->stream_id, 400, "body: csr (a PEM string) is required");
		goto out;
	}
	if (pki_csr_uri(csr, strlen(csr), uri, sizeof(uri))) {
		reply_err(c, r->stream_id, 400, "csr: no URI SAN naming the workload identity "
			  "(spiffe://%s/ns/NS/sa/SA)", s->st->td);
		goto out;
	}
	snprintf(prefix, sizeof(prefix), "spiffe://%s/ns/", s->st->td);
	if (strncmp(uri, prefix, strlen(prefix)) != 0 || !strstr(uri + strlen(prefix), "/sa/")) {
		reply_err(c, r->stream_id, 400, "csr: %s is not a workload identity of trust domain "
			  "%s (spiffe://%s/ns/NS/sa/SA)", uri, s->st->td, s->st->td);
		goto out;
	}
	if (!node_runs(s, node, uri)) {
		log_warn("node %s (%s) asked for a certificate for %s, which has no workload on it",
			 node, cn->addr, uri);
		reply_err(c, r->stream_id, 403, "node %s runs no workload with identity %s in config "
			  "version %llu; only the identities of its own workloads are signed for it",
			  node, uri, (unsigned long long)s->st->version);
		goto out;
	}
	cert = pki_sign_csr(&s->st->ca, csr, strlen(csr), &names,
			    s->o->workload_cert_ttl > 0 ? s->o->workload_cert_ttl : 24 * 3600,
			    err, sizeof(err));
	if (!cert) {
		reply_err(c, r->stream_id, 400, "%s", err);
		goto out;
	}
	pem = pki_cert_pem(cert);
	ca = pki_cert_pem(s->st->ca.cert);
	if (!pem || !ca || pki_cert_serial(cert, serial, sizeof(serial))) {
		reply_err(c, r->stream_id, 500, "encoding the certificate failed");
		goto out;
	}
	log_info("node %s: workload certificate for %s issued (serial %s, %ld s)", node, uri,
		 serial, s->o->workload_cert_ttl);
	reply(c, r->stream_id, 200, json_pack("{s:s, s:s, s:s, s:I}", "certificate", pem, "ca", ca,
					      "serial", serial,
					      "not_after", (json_int_t)pki_cert_not_after(cert)));
out:
	free(pem);
	free(ca);
	X509_free(cert);
	json_decref(j);
}

/* POST /v1/workloads: a node registers or deregisters a container
 * (control/register.h); a change goes the way of every change. */
static void h_workloads(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
{
	struct sl_config *nc = NULL;
	struct sl_diags d = {};
	char name[300], err[1024], what[400];
	json_t *j = parse_body(cn->h, r);
	const char *op;
	int st;

	if (!j)
		return;
	op = json_string_value(json_object_get(j, "op")) ?: "?";
	st = reg_change(s->st->cfg, node, j, &nc, name, sizeof(name), err, sizeof(err));
	if (st != 200) {
		log_warn("node %s: %s refused: %s", node, op, err);
		reply_err(cn->h, r->stream_id, st, "%s", err);
	} else if (!nc) {
		reply(cn->h, r->stream_id, 200, json_pack("{s:I, s:b}", "version",
			(json_int_t)s->st->version, "changed", 0));
	} else {
		snprintf(what, sizeof(what), "node %s: %s %s", node, op, name);
		change(s, cn->h, r->stream_id, nc, &d, what);
	}
	sl_diags_free(&d);
	json_decref(j);
}

static void h_ack(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
{
	json_t *j = parse_body(cn->h, r), *v;
	struct node_st *n;
	const char *status, *error;

	if (!j)
		return;
	v = json_object_get(j, "version");
	status = json_string_value(json_object_get(j, "status"));
	error = json_string_value(json_object_get(j, "error"));
	if (!json_is_integer(v) || json_integer_value(v) < 0 || !status ||
	    (strcmp(status, "ACK") && strcmp(status, "NACK"))) {
		reply_err(cn->h, r->stream_id, 400,
			  "body: version (integer >= 0) and status (ACK or NACK) are required");
		goto out;
	}
	n = node_get(s, node, true);
	if (!n) {
		reply_err(cn->h, r->stream_id, 500, "out of memory");
		goto out;
	}
	if (strcmp(status, "ACK") == 0) {
		n->has_acked = true;
		n->acked = (uint64_t)json_integer_value(v);
		log_info("node %s: ACK version %llu", node, (unsigned long long)n->acked);
	} else {
		n->has_nacked = true;
		n->nacked = (uint64_t)json_integer_value(v);
		snprintf(n->reason, sizeof(n->reason), "%s", error ?: "(no reason given)");
		log_warn("node %s: NACK version %llu: %s", node, (unsigned long long)n->nacked, n->reason);
	}
	reply(cn->h, r->stream_id, 200, json_object());
out:
	json_decref(j);
}

/* The request's files into nc: a JSON {"files": [{"name", "content"}]}
 * body (sluicectl; one change from many files), or the YAML itself named
 * by x-sluice-file. -1 after replying (400) or with errors in d. */
static int parse_files(struct conn *cn, const struct h2_req *r, struct sl_config *nc,
		       struct sl_diags *d, char *file, size_t flen)
{
	json_t *j, *files;
	int rc = 0;

	snprintf(file, flen, "%s", header(r, "x-sluice-file") ?: "request");
	if (strncmp(r->content_type, "application/json", 16) != 0)
		return sl_config_parse(nc, file, r->body, r->body_len, d);
	j = parse_body(cn->h, r);
	if (!j)
		return -2;
	files = json_object_get(j, "files");
	if (!json_is_array(files) || !json_array_size(files)) {
		reply_err(cn->h, r->stream_id, 400, "body: files (a non-empty array of {name, content}) "
			  "is required");
		json_decref(j);
		return -2;
	}
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		const char *name = json_string_value(json_object_get(f, "name"));
		json_t *content = json_object_get(f, "content");

		if (!name || !json_is_string(content)) {
			reply_err(cn->h, r->stream_id, 400, "body: files[%zu]: name and content "
				  "(strings) are required", i);
			json_decref(j);
			return -2;
		}
		if (sl_config_parse(nc, name, json_string_value(content), json_string_length(content), d))
			rc = -1;
	}
	snprintf(file, flen, "%s", json_array_size(files) == 1 ?
		 json_string_value(json_object_get(json_array_get(files, 0), "name")) : "several files");
	json_decref(j);
	return rc;
}

static void h_apply(struct server *s, struct conn *cn, const struct h2_req *r)
{
	struct sl_config *nc = sl_config_dup(s->st->cfg);
	struct sl_diags d = {};
	char file[256];
	uint64_t t0;
	int prc;

	if (!nc) {
		reply_err(cn->h, r->stream_id, 500, "out of memory; nothing changed");
		return;
	}
	t0 = h2_now_ms();
	prc = parse_files(cn, r, nc, &d, file, sizeof(file));
	if (prc == -2) {
		sl_config_free(nc);
	} else if (prc || sl_config_check(nc, &d)) {
		log_info("apply of %s refused: %zu errors", file, d.nerrors);
		reply(cn->h, r->stream_id, 422, json_pack("{s:s, s:o}", "error",
			"the configuration is invalid; nothing changed", "diagnostics", sl_diags_json(&d)));
		sl_config_free(nc);
	} else {
		char what[400];

		snprintf(what, sizeof(what), "apply %s (parse and check %llu ms)", file,
			 (unsigned long long)(h2_now_ms() - t0));
		change(s, cn->h, r->stream_id, nc, &d, what);
	}
	sl_diags_free(&d);
}

static void h_delete(struct server *s, struct conn *cn, const struct h2_req *r)
{
	const char *file = header(r, "x-sluice-file") ?: "request";
	struct sl_config *nc = sl_config_dup(s->st->cfg), *del = NULL;
	char kind[128], ns[256] = "default", name[256], missing[1024] = "";
	struct sl_diags d = {};

	if (!nc)
		goto oom;
	if (qget(r->query, "kind", kind, sizeof(kind)) == 0) {
		const char *k = kind_canon(kind);

		if (!k || qget(r->query, "name", name, sizeof(name))) {
			reply_err(cn->h, r->stream_id, 400, k ? "name is required with kind" :
				  "unknown kind '%s'", kind);
			goto out;
		}
		qget(r->query, "namespace", ns, sizeof(ns));
		if (sl_config_remove(nc, k, ns, name)) {
			reply_err(cn->h, r->stream_id, 404, "%s %s/%s not found; nothing changed", k, ns, name);
			goto out;
		}
	} else {
		del = sl_config_new();
		if (!del)
			goto oom;
		if (sl_config_parse(del, file, r->body, r->body_len, &d)) {
			reply(cn->h, r->stream_id, 422, json_pack("{s:s, s:o}", "error",
				"the file to delete by is invalid; nothing changed", "diagnostics",
				sl_diags_json(&d)));
			goto out;
		}
		for (size_t i = 0; i < sl_config_count(del); i++) {
			const struct sl_resource *x = sl_config_at(del, i);

			if (sl_config_remove(nc, sl_resource_kind(x), sl_resource_namespace(x),
					     sl_resource_name(x)))
				snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
					 "%s%s %s/%s", missing[0] ? ", " : "", sl_resource_kind(x),
					 sl_resource_namespace(x), sl_resource_name(x));
		}
		if (missing[0]) {
			reply_err(cn->h, r->stream_id, 404, "not found: %s; nothing changed", missing);
			goto out;
		}
		sl_diags_free(&d);
	}
	if (sl_config_check(nc, &d)) {
		reply(cn->h, r->stream_id, 422, json_pack("{s:s, s:o}", "error",
			"the configuration without them is invalid; nothing changed",
			"diagnostics", sl_diags_json(&d)));
		goto out;
	}
	change(s, cn->h, r->stream_id, nc, &d, "delete");
	nc = NULL;
	goto out;
oom:
	reply_err(cn->h, r->stream_id, 500, "out of memory; nothing changed");
out:
	sl_diags_free(&d);
	sl_config_free(nc);
	sl_config_free(del);
}

static void h_resources(struct server *s, struct conn *cn, const struct h2_req *r)
{
	char kind[128], ns[256], name[256];
	bool has_ns = qget(r->query, "namespace", ns, sizeof(ns)) == 0;
	bool has_name = qget(r->query, "name", name, sizeof(name)) == 0;
	const char *k = NULL;
	json_t *items = json_array();

	if (qget(r->query, "kind", kind, sizeof(kind)) == 0 && strcasecmp(kind, "all") != 0) {
		k = kind_canon(kind);
		if (!k) {
			reply_err(cn->h, r->stream_id, 400, "unknown kind '%s' (Service, ServiceEntry, "
				  "WorkloadEntry, WorkloadGroup, DestinationRule, VirtualService, AuthorizationPolicy, "
				  "PeerAuthentication)", kind);
			json_decref(items);
			return;
		}
	}
	for (size_t i = 0; i < sl_config_count(s->st->cfg); i++) {
		const struct sl_resource *x = sl_config_at(s->st->cfg, i);

		if ((k && strcmp(sl_resource_kind(x), k)) ||
		    (has_ns && strcmp(sl_resource_namespace(x), ns)) ||
		    (has_name && strcmp(sl_resource_name(x), name)))
			continue;
		json_array_append(items, (json_t *)sl_resource_json(x));
	}
	if (has_name && !json_array_size(items)) {
		reply_err(cn->h, r->stream_id, 404, "%s %s/%s not found", k ?: "resource",
			  has_ns ? ns : "*", name);
		json_decref(items);
		return;
	}
	reply(cn->h, r->stream_id, 200, json_pack("{s:I, s:o}", "version",
						  (json_int_t)s->st->version, "items", items));
}

static void h_status(struct server *s, struct conn *cn, const struct h2_req *r)
{
	json_t *agents = json_array();

	for (size_t i = 0; i < s->nnodes; i++) {
		struct node_st *n = s->nodes[i];
		json_t *a = json_pack("{s:s, s:b, s:I, s:b}", "node", n->name,
				      "connected", n->watchers > 0, "version", (json_int_t)n->version,
				      "in_sync", n->has_acked && n->acked == n->version);

		if (n->has_acked)
			json_object_set_new(a, "acked", json_integer((json_int_t)n->acked));
		if (n->has_nacked) {
			json_object_set_new(a, "nacked", json_integer((json_int_t)n->nacked));
			json_object_set_new(a, "nack_reason", json_string(n->reason));
		}
		if (n->ever_connected)
			json_object_set_new(a, n->watchers ? "connected_since" : "disconnected_since",
					    json_integer((json_int_t)n->since));
		json_array_append_new(agents, a);
	}
	reply(cn->h, r->stream_id, 200, json_pack("{s:s, s:i, s:I, s:s, s:I, s:i, s:o}",
		"control_plane_version", sluice_version, "pid", (int)getpid(),
		"uptime_seconds", (json_int_t)(time(NULL) - s->started), "trust_domain", s->st->td,
		"config_version", (json_int_t)s->st->version, "resources",
		(int)sl_config_count(s->st->cfg), "agents", agents));
}

static void on_request(struct h2_conn *c, const struct h2_req *r, void *arg)
{
	struct conn *cn = h2_conn_user(c);
	struct server *s = arg;
	const char *node = NULL;
	enum role role = role_of(s, c, &node);
	static const struct { const char *path, *method; enum role role; } routes[] = {
		{ "/v1/join", "POST", ROLE_NONE }, { "/v1/watch", "GET", ROLE_NODE },
		{ "/v1/ack", "POST", ROLE_NODE }, { "/v1/apply", "POST", ROLE_ADMIN },
		{ "/v1/delete", "POST", ROLE_ADMIN }, { "/v1/resources", "GET", ROLE_ADMIN },
		{ "/v1/status", "GET", ROLE_ADMIN }, { "/v1/certs", "POST", ROLE_NODE },
		{ "/v1/workloads", "POST", ROLE_NODE },
	};
	size_t i;

	log_debug("%s %s from %s (%s)", r->method, r->path, cn->addr, h2_conn_peer(c) ?: "no certificate");
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(r->path, routes[i].path) == 0)
			break;
	if (i == sizeof(routes) / sizeof(routes[0])) {
		reply_err(c, r->stream_id, 404, "no such endpoint: %s", r->path);
		return;
	}
	if (strcmp(r->method, routes[i].method) != 0) {
		reply_err(c, r->stream_id, 405, "%s takes %s, not %s", r->path, routes[i].method, r->method);
		return;
	}
	if (routes[i].role != ROLE_NONE && role == ROLE_NONE) {
		reply_err(c, r->stream_id, 401, "%s needs a client certificate from this control "
			  "plane's CA", r->path);
		return;
	}
	if (routes[i].role != ROLE_NONE && role != routes[i].role) {
		reply_err(c, r->stream_id, 403, "%s is for %s; this certificate is %s", r->path,
			  routes[i].role == ROLE_ADMIN ? "the admin" : "nodes", h2_conn_peer(c));
		return;
	}
	switch (i) {
	case 0: h_join(s, cn, r); break;
	case 1: h_watch(s, cn, r, node); break;
	case 2: h_ack(s, cn, r, node); break;
	case 3: h_apply(s, cn, r); break;
	case 4: h_delete(s, cn, r); break;
	case 5: h_resources(s, cn, r); break;
	case 6: h_status(s, cn, r); break;
	case 7: h_certs(s, cn, r, node); break;
	default: h_workloads(s, cn, r, node); break;
	}
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

static int split_hostport(const char *in, char *host, size_t hl, char *port, size_t pl)
{
	const char *colon = strrchr(in, ':');
	size_t n;

	if (!colon || !colon[1] || strlen(colon + 1) >= pl)
		return -1;
	n = (size_t)(colon - in);
	if (in[0] == '[') {
		if (n < 2 || in[n - 1] != ']')
			return -1;
		in++;
		n -= 2;
	}
	if (n >= hl)
		return -1;
	memcpy(host, in, n);
	host[n] = '\0';
	snprintf(port, pl, "%s", colon + 1);
	return 0;
}

static int listen_on(const char *addr, char *host, size_t hl, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char port[16];
	int fd = -1, one = 1, rc;

	if (split_hostport(addr, host, hl, port, sizeof(port))) {
		snprintf(err, errlen, "--listen %s: not ADDRESS:PORT ([ADDRESS]:PORT for IPv6)", addr);
		return -1;
	}
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "--listen %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, SOMAXCONN)) {
		snprintf(err, errlen, "--listen %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
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

static int startup_compile(struct server *s, char *err, size_t errlen)
{
	struct sl_diags d = {};
	struct compiled *cc = NULL;
	size_t n = 0;
	int rc = compile_all(s, s->st->cfg, s->st->ids, s->st->version, &cc, &n, &d);

	if (rc)
		snprintf(err, errlen, "the stored config (version %llu) does not compile: %s",
			 (unsigned long long)s->st->version, d.n ? d.v[0].msg : "?");
	else
		install(s, cc, n, s->st->version);
	compiled_free(cc, n);
	sl_diags_free(&d);
	return rc;
}

int server_run(struct store *st, const struct server_opts *o)
{
	struct server s = { .st = st, .o = o, .lfd = -1, .sfd = -1, .efd = -1,
			    .lsrc = SRC_LISTEN, .ssrc = SRC_SIGNAL };
	char err[1024], host[256];
	struct epoll_event e;
	sigset_t mask;
	int rc = 1;

	s.started = time(NULL);
	s.lim = h2_default_limits;
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
	if (h2_raise_fd_limit() < MAX_CONNS + 64)
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
	log_info("listening on %s (trust domain %s, config version %llu, %zu resources, %zu nodes)",
		 o->listen, st->td, (unsigned long long)st->version, sl_config_count(st->cfg), s.nnodes);

	for (uint64_t last_tick = h2_now_ms();;) {
		struct epoll_event ev[64];
		int n = epoll_wait(s.efd, ev, 64, 1000);

		if (n < 0 && errno != EINTR) {
			snprintf(err, sizeof(err), "epoll_wait: %s", strerror(errno));
			goto fail;
		}
		for (int i = 0; i < n; i++) {
			enum src_kind *k = ev[i].data.ptr;

			if (*k == SRC_LISTEN) {
				accept_all(&s);
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
		if (h2_now_ms() - last_tick >= 1000) {
			last_tick = h2_now_ms();
			tick(&s);
		}
	}
fail:
	log_err("%s", err);
out:
	while (s.conns)
		conn_close(&s, s.conns, "shutting down");
	for (size_t i = 0; i < s.nnodes; i++) {
		free(s.nodes[i]->canon);
		free(s.nodes[i]->line);
		free(s.nodes[i]);
	}
	free(s.nodes);
	SSL_CTX_free(s.tls);
	if (s.lfd >= 0)
		close(s.lfd);
	if (s.sfd >= 0)
		close(s.sfd);
	if (s.efd >= 0)
		close(s.efd);
	return rc;
}
