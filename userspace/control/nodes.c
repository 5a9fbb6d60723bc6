// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * nodes.c - the control plane's side of its nodes (nodes.h): join, the
 * snapshots compiled per node, watch streams and the pushes down them,
 * ACK/NACK, and the config change path that feeds them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <malloc.h>

#include "control/nodes.h"
#include "control/request.h"
#include "lib/compile/compile.h"
#include "lib/compile/compile_cache.h"
#include "lib/config/config_check.h"
#include "lib/config/config_model.h"
#include "lib/core/addr.h"
#include "lib/core/cli.h"
#include "lib/core/file.h"
#include "lib/core/log.h"
#include "lib/core/loop.h"
#include "lib/wire/snapdelta.h"

struct node_st {
	char name[64];
	uint64_t version;          /* of its current snapshot; 0: none */
	json_t *idx;               /* the snapshot, indexed (lib/wire/snapdelta.h) */
	char *full;                /* its watch message, made when first needed */
	size_t full_len;
	unsigned int watchers;
	bool ever_connected;
	bool has_acked, has_nacked;
	uint64_t acked, nacked;
	char reason[1024];
	time_t since;              /* connected / disconnected at */
	char hbone[64];            /* its proxy's HBONE address, as it reported it */
};

struct watcher {
	struct conn *cn;
	int32_t id;
	struct node_st *node;
	uint64_t have;             /* the version its stream has been sent */
	struct watcher *next;
};

struct compiled {
	char name[64];
	json_t *idx;
};

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
	for (size_t i = 0; i < n; i++)
		json_decref(cc[i].idx);
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
		return a ? 0 : -ENOMEM;
	}
	return json_object_set_new(snap, "nodes", a) ? -ENOMEM : 0;
}

/* The nodes' HBONE addresses as they last reported them, from the store
 * (store_nodes_load: nodes.json in the state dir, or etcd), so that a
 * restarted control plane, or another replica, compiles the same
 * snapshots until an address really changes. */
int node_addrs_load(struct server *s, char *err, size_t errlen)
{
	const char *name;
	json_t *j = NULL, *v;
	int rc;

	rc = store_nodes_load(s->st, &j, err, errlen);
	if (rc)
		return rc;
	json_object_foreach(j, name, v) {
		struct node_st *n = json_is_string(v) && store_node_name_ok(name) ?
			node_get(s, name, true) : NULL;

		if (!n || addr_hostport_parse(json_string_value(v), NULL, NULL)) {
			snprintf(err, errlen, "stored node addresses: %s: not a node name and an "
				 "IP:PORT", name);
			json_decref(j);
			return -EINVAL;
		}
		snprintf(n->hbone, sizeof(n->hbone), "%s", json_string_value(v));
	}
	json_decref(j);
	return 0;
}

static int node_addrs_save(const struct server *s, char *err, size_t errlen)
{
	json_t *j = json_object();
	int rc;

	for (size_t i = 0; j && i < s->nnodes; i++)
		if (s->nodes[i]->hbone[0] &&
		    json_object_set_new(j, s->nodes[i]->name, json_string(s->nodes[i]->hbone)))
			break;
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = store_nodes_save(s->st, j, err, errlen);
	json_decref(j);
	return rc;
}

/* One node's snapshot, indexed: its items are shared with the other
 * nodes' through s->pool. 0, -EINVAL (errors in d) or -ENOMEM. */
static int compile_one(struct server *s, const struct sl_mesh *mesh, const char *name,
		       uint64_t version, struct compiled *out, struct sl_diags *d)
{
	size_t errors = d->nerrors;
	json_t *snap = sl_compile_node_in(mesh, name, version, d);

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	if (!s->pool)
		s->pool = json_object();
	if (!snap || !s->pool) {
		json_decref(snap);
		return d->nerrors > errors ? -EINVAL : -ENOMEM;
	}
	if (node_addrs(s, snap) == 0)
		out->idx = sd_index_with(snap, s->pool, sl_mesh_indexed(mesh));
	json_decref(snap);
	return out->idx ? 0 : -ENOMEM;
}

/* "{"version":V,PREFIX" + body (taken) + "}\n" in one buffer; *len its
 * length (the line has no NUL). NULL on allocation failure. */
static char *wrap_line(uint64_t version, const char *prefix, char *body, size_t blen,
		       size_t *len)
{
	char head[96], *line;
	int h;

	if (!body)
		return NULL;
	h = snprintf(head, sizeof(head), "{\"version\":%llu,%s", (unsigned long long)version,
		     prefix);
	line = malloc((size_t)h + blen + 2);
	if (line) {
		memcpy(line, head, (size_t)h);
		memcpy(line + h, body, blen);
		memcpy(line + h + blen, "}\n", 2);
		*len = (size_t)h + blen + 2;
	}
	free(body);
	return line;
}

/* The node's whole snapshot as a watch message: {"version":V,"snapshot":
 * {...}}, the form a new stream starts with. */
static int full_line(struct node_st *n)
{
	size_t blen = 0;
	char *body;

	if (n->full)
		return 0;
	body = sd_text(n->idx, n->version, &blen);
	n->full = wrap_line(n->version, "\"snapshot\":", body, blen, &n->full_len);
	return n->full ? 0 : -ENOMEM;
}

/* A delta message {"version":V,"base":B,"delta":{...}}, '\n'-terminated. */
static char *delta_line(uint64_t version, uint64_t base, json_t *delta, size_t *len)
{
	char prefix[64], *body;
	size_t blen = 0;

	snprintf(prefix, sizeof(prefix), "\"base\":%llu,\"delta\":", (unsigned long long)base);
	body = sd_delta_text(delta, &blen);
	return wrap_line(version, prefix, body, blen, len);
}

/* Every node the config places workloads on, and every node we know.
 * model: cfg read already (taken), or NULL. */
static int compile_all(struct server *s, const struct sl_config *cfg, struct sl_model *model,
		       struct sl_ids *ids, uint64_t version, struct compiled **out, size_t *nout,
		       struct sl_diags *d)
{
	json_t *names = NULL;
	struct compiled *cc = NULL;
	struct sl_mesh *mesh = NULL;
	size_t hits, errors = d->nerrors, n = 0, i;
	int rc = -ENOMEM;

	if (!s->svc_cache)
		s->svc_cache = sl_svc_cache_new();
	mesh = sl_compile_mesh_with(cfg, model, ids, s->st->td, s->svc_cache, d);
	if (!mesh) {
		log_warn("compiling the mesh failed (%zu errors)", d->nerrors);
		rc = d->nerrors > errors ? -EINVAL : -ENOMEM;
		goto out;
	}
	names = sl_mesh_nodes(mesh);
	cc = calloc(json_array_size(names) + s->nnodes ?: 1, sizeof(*cc));
	if (!names || !cc)
		goto out;
	sl_mesh_cache_stats(mesh, &hits, &s->last_compiled);
	s->last_services = hits + s->last_compiled;
	for (i = 0; i < json_array_size(names) + s->nnodes; i++) {
		const char *name = i < json_array_size(names) ?
			json_string_value(json_array_get(names, i)) :
			s->nodes[i - json_array_size(names)]->name;
		bool dup = false;

		for (size_t k = 0; k < n && !dup; k++)
			dup = strcmp(cc[k].name, name) == 0;
		if (!name || dup || strlen(name) >= sizeof(cc[0].name))
			continue;
		rc = compile_one(s, mesh, name, version, &cc[n], d);
		if (rc) {
			log_warn("node %s: compiling its snapshot failed (%zu errors)", name, d->nerrors);
			n++;
			goto out;
		}
		n++;
	}
	rc = 0;
out:
	sl_mesh_free(mesh);
	json_decref(names);
	if (rc) {
		compiled_free(cc, n);
		return rc;
	}
	*out = cc;
	*nout = n;
	return 0;
}

static void send_line(struct watcher *w, const char *line, size_t len)
{
	if (h2_stream_write(w->cn->h, w->id, line, len)) {
		log_warn("node %s (%s): %s; cutting the connection off", w->node->name, w->cn->addr,
			 h2_conn_error(w->cn->h));
		w->cn->kill = true;
	}
	w->cn->dirty = true;
}

/*
 * Node n's snapshot changed from version `base` to n->version by `delta`
 * (NULL: no delta to give): each of its streams that has `base` gets the
 * delta, any other the whole snapshot. Returns the bytes sent in all.
 */
static size_t push(struct server *s, struct node_st *n, json_t *delta, uint64_t base)
{
	char *dline = NULL;
	size_t dlen = 0, sent = 0;

	if (delta && base && !s->o->push_full)
		dline = delta_line(n->version, base, delta, &dlen);
	for (struct watcher *w = s->watchers; w; w = w->next) {
		if (w->node != n || w->cn->kill)
			continue;
		if (dline && w->have == base) {
			send_line(w, dline, dlen);
			sent += dlen;
		} else if (full_line(n) == 0) {
			send_line(w, n->full, n->full_len);
			sent += n->full_len;
		} else {
			log_err("node %s: out of memory for its snapshot; cutting %s off", n->name,
				w->cn->addr);
			w->cn->kill = true;
			continue;
		}
		w->have = n->version;
	}
	free(dline);
	return sent;
}

static json_t *services_of(const json_t *idx)
{
	return json_object_get(idx, "services");
}

/* May the waiting services change be made to its base in place? Only if
 * every reference to the base is the cache's or a snapshot's that this
 * install replaces with one holding the base too: then every node that
 * has the base gets the change as its delta. */
static bool in_place_ok(const struct server *s, const struct compiled *cc, size_t n,
			const json_t *base)
{
	size_t refs = 1;   /* the cache's */

	for (size_t i = 0; i < n; i++)
		refs += services_of(cc[i].idx) == base;
	for (size_t k = 0; k < s->nnodes; k++) {
		const struct node_st *nd = s->nodes[k];
		bool replaced = false;

		if (services_of(nd->idx) != base)
			continue;
		for (size_t i = 0; i < n && !replaced; i++)
			replaced = services_of(cc[i].idx) == base && strcmp(cc[i].name, nd->name) == 0;
		if (!replaced)
			return false;
		refs++;
	}
	return base->refcount == refs;
}

/*
 * The services set of the compile being installed, kept by the cache
 * (compile_cache.h): its change made in place, and the part every node
 * that had the base gets put in the memo, so that no two 10,000-key sets
 * are compared; or made to a copy, which the snapshots then hold.
 */
static int commit_services(struct server *s, struct compiled *cc, size_t n, struct sd_memo *memo)
{
	json_t *base = s->svc_cache ? sl_svc_cache_base(s->svc_cache) : NULL, *set, *part;
	bool in_place = base && in_place_ok(s, cc, n, base);
	size_t items;

	if (!s->svc_cache)
		return 0;
	if (sl_svc_cache_commit(s->svc_cache, in_place, &set, &part, &items))
		return -ENOMEM;
	if (part)
		sd_memo_put(memo, set, set, part, items);
	for (size_t i = 0; base && !in_place && i < n; i++)
		if (services_of(cc[i].idx) == base && json_object_set(cc[i].idx, "services", set))
			return -ENOMEM;
	json_decref(part);
	return 0;
}

/* Take the compiled snapshots in; push those that changed. */
static unsigned int install(struct server *s, struct compiled *cc, size_t n, uint64_t version)
{
	unsigned int changed = 0;
	size_t bytes = 0, items = 0;
	struct sd_memo memo = {};   /* nodes share their services' sets */

	if (commit_services(s, cc, n, &memo)) {
		/* the set is as it was, and so is every node: they get this
		 * version's services with the next change, which the cache
		 * then builds whole */
		log_err("version %llu: out of memory making the services set; no node snapshot "
			"changed", (unsigned long long)version);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct node_st *nd = node_get(s, cc[i].name, true);
		uint64_t base;
		json_t *delta;
		size_t k = 0;

		if (!nd)
			continue;
		base = nd->version;
		delta = nd->idx ? sd_delta_shared(nd->idx, cc[i].idx, &k, &memo) : NULL;
		if (nd->idx && delta && json_object_size(delta) == 0) {
			json_decref(delta);
			continue;
		}
		json_decref(nd->idx);
		nd->idx = cc[i].idx;
		cc[i].idx = NULL;
		free(nd->full);
		nd->full = NULL;
		nd->version = version;
		changed++;
		items += k;
		bytes += push(s, nd, delta, base);
		json_decref(delta);
	}
	/* on the wire before the frees below and the caller's reply: the
	 * agents apply while this process tidies up */
	for (struct watcher *w = s->watchers; w; w = w->next) {
		if (w->cn->dirty && !w->cn->kill && h2_conn_flush(w->cn->h)) {
			log_warn("node %s (%s): %s; cutting the connection off", w->node->name,
				 w->cn->addr, h2_conn_error(w->cn->h));
			w->cn->kill = true;
		}
	}
	sd_memo_free(&memo);
	sd_pool_prune(s->pool);
	s->last_push_bytes = bytes;
	s->last_push_items = items;
	return changed;
}

/*
 * The one way the config changes: `nc` (checked already) is compiled for
 * every node with fresh identities, persisted, swapped in and pushed. On
 * any failure nothing changes. Takes nc.
 */
void config_change(struct server *s, struct h2_conn *c, int32_t id, struct sl_config *nc,
		   struct sl_model *model, struct sl_diags *d, const char *what)
{
	uint64_t v = s->st->version + 1, t0 = loop_now_ms(), t1, t2;
	struct store *st = s->st;
	json_t *a = sl_config_to_json(st->cfg), *b = sl_config_to_json(nc);
	struct compiled *cc = NULL;
	struct sl_ids *ids = NULL;
	unsigned int pushed;
	size_t n = 0;
	char err[512];
	int rc;

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
	t1 = loop_now_ms();
	rc = compile_all(s, nc, model, ids, v, &cc, &n, d);
	model = NULL;
	if (rc) {
		reply(c, id, 422, json_pack("{s:s, s:o}", "error",
			"the configuration does not compile; nothing changed",
			"diagnostics", sl_diags_json(d)));
		goto out;
	}
	t2 = loop_now_ms();
	rc = store_save(st, nc, ids, v, err, sizeof(err));
	if (rc == -ESTALE) {
		/* another replica changed the config first: take its
		 * version in; the client applies again onto it */
		log_warn("%s: %s", what, err);
		reply_err(c, id, 409, "%s; nothing changed", err);
		node_store_changed(s);
		goto out;
	}
	if (rc) {
		log_err("%s: %s", what, err);
		/* -EINPROGRESS: etcd may still commit it (etcd.h) */
		reply_err(c, id, 500, "%s; %s", err, rc == -EINPROGRESS ?
			  "check with sluicectl get once etcd is back" : "nothing changed");
		goto out;
	}
	sl_config_free(st->cfg);
	sl_ids_free(st->ids);
	st->cfg = nc;
	st->ids = ids;
	st->version = v;
	nc = NULL;
	ids = NULL;
	/* this request's diagnostics are made: its positions are not needed */
	sl_config_forget_sources(st->cfg);
	pushed = install(s, cc, n, v);
	log_info("%s: config version %llu (%zu resources), %u of %zu node snapshots changed "
		 "(%zu items, %zu bytes pushed); compare %llu ms, compile %llu ms (%zu of %zu "
		 "services compiled), save and push %llu ms", what, (unsigned long long)v,
		 sl_config_count(st->cfg), pushed, n, s->last_push_items, s->last_push_bytes,
		 (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1), s->last_compiled,
		 s->last_services, (unsigned long long)(loop_now_ms() - t2));
	reply(c, id, 200, json_pack("{s:I, s:b, s:i, s:o}", "version", (json_int_t)v, "changed", 1,
				    "nodes_changed", (int)pushed, "diagnostics", sl_diags_json(d)));
out:
	if (model) {
		sl_model_free(model);
		free(model);
	}
	compiled_free(cc, n);
	sl_ids_free(ids);
	sl_config_free(nc);
	json_decref(a);
	json_decref(b);
	/* A change at 10,000 services frees tens of MB of small blocks. They
	 * go back to the system once changes pause (server.c, tick): trimmed
	 * at every change, the next one faults the same pages in again. */
	s->trim_at = loop_now_ms() + TRIM_AFTER_MS;
}

/* The store's config changed (another replica): reload and push. */
void node_store_changed(struct server *s)
{
	uint64_t was = s->st->version;
	char err[1024];
	bool changed;

	if (store_reload(s->st, &changed, err, sizeof(err))) {
		log_err("store: reloading the config: %s", err);
		return;
	}
	if (!changed)
		return;
	log_info("store: config version %llu from another replica (was %llu)",
		 (unsigned long long)s->st->version, (unsigned long long)was);
	if (node_addrs_load(s, err, sizeof(err)) || startup_compile(s, err, sizeof(err)))
		log_err("store: %s", err);
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
	int rc = -ENOMEM;

	if (!ids)
		goto out;
	rc = compile_all(s, st->cfg, NULL, ids, v, &cc, &n, &d);
	if (rc)
		goto out;
	rc = store_save(st, st->cfg, ids, v, err, sizeof(err));
	if (rc) {
		/* -ESTALE: another replica's version comes in through the
		 * store's watch, compiled with these addresses */
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

/* GET /v1/watch: the node's snapshot now and at every change, one JSON line each. */
void h_watch(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
{
	struct node_st *n = node_get(s, node, true);
	struct watcher *w = calloc(1, sizeof(*w));
	const char *hb = req_header(r, "x-sluice-hbone"), *have;
	struct sl_diags d = {};
	struct compiled cc = {};
	bool resumed = false;
	char *line = NULL;
	size_t len = 0;
	char err[512];
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
		if (node_addrs_save(s, err, sizeof(err)))
			log_err("saving the nodes' HBONE addresses: %s (a restart learns them again)",
				err);
	}
	if (!n->idx) {
		/* a node with no workloads yet: it still needs every service */
		struct sl_mesh *mesh = sl_compile_mesh(s->st->cfg, s->st->ids, s->st->td,
						       s->svc_cache, &d);

		rc = mesh ? compile_one(s, mesh, node, s->st->version, &cc, &d) : -EINVAL;
		sl_mesh_free(mesh);
		if (rc) {
			char *first = d.n ? d.v[0].msg : "out of memory";

			reply_err(cn->h, r->stream_id, 500, "compiling node %s's snapshot: %s", node, first);
			sl_diags_free(&d);
			json_decref(cc.idx);
			free(w);
			return;
		}
		install(s, &cc, 1, s->st->version);
		json_decref(cc.idx);
	}
	sl_diags_free(&d);
	/* an agent that has this very version (it reconnected) gets an empty
	 * delta, which it ACKs; any other the whole snapshot */
	have = req_header(r, "x-sluice-have");
	if (have && !s->o->push_full && n->version && strtoull(have, NULL, 10) == n->version) {
		json_t *none = json_object();

		line = none ? delta_line(n->version, n->version, none, &len) : NULL;
		json_decref(none);
		resumed = true;
	} else if (full_line(n) == 0) {
		line = n->full;
		len = n->full_len;
	}
	if (!line || h2_respond_stream(cn->h, r->stream_id, 200, "application/x-ndjson") ||
	    h2_stream_write(cn->h, r->stream_id, line, len)) {
		if (resumed)
			free(line);
		free(w);
		cn->kill = true;
		return;
	}
	if (resumed)
		free(line);
	w->have = n->version;
	w->cn = cn;
	w->id = r->stream_id;
	w->node = n;
	w->next = s->watchers;
	s->watchers = w;
	n->watchers++;
	n->ever_connected = true;
	n->since = time(NULL);
	log_info("node %s watching from %s; sent version %llu%s", node, cn->addr,
		 (unsigned long long)n->version, resumed ? " (it has it: resumed)" : "");
}

/* A watch stream ended (closed by the node, or its connection went). */
void watch_closed(struct server *s, struct conn *cn, int32_t id)
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
bool node_runs(struct server *s, const char *node, const char *uri)
{
	struct node_st *n = node_get(s, node, false);
	json_t *ids;
	const char *k;
	json_t *w;
	json_int_t want = -1;
	bool yes = false;

	if (!n || !n->idx)
		return false;
	ids = json_object_get(n->idx, "identities");
	json_object_foreach(ids, k, w)
		if (!strcmp(json_string_value(json_object_get(w, "spiffe")) ?: "", uri))
			want = json_integer_value(json_object_get(w, "id"));
	json_object_foreach(json_object_get(n->idx, "workloads"), k, w)
		if (json_object_get(w, "netns") &&
		    json_integer_value(json_object_get(w, "identity")) == want)
			yes = true;
	return yes;
}

/* POST /v1/ack {version, status, error}: whether a node applied a snapshot. */
void h_ack(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
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

/* GET /v1/status: the config version and every node's sync state. */
void h_status(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
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

/* The stored config compiled for every node, before the first request. */
int startup_compile(struct server *s, char *err, size_t errlen)
{
	struct sl_diags d = {};
	struct compiled *cc = NULL;
	size_t n = 0;
	int rc = compile_all(s, s->st->cfg, NULL, s->st->ids, s->st->version, &cc, &n, &d);

	if (rc)
		snprintf(err, errlen, "the stored config (version %llu) does not compile: %s",
			 (unsigned long long)s->st->version, d.n ? d.v[0].msg : "?");
	else
		install(s, cc, n, s->st->version);
	compiled_free(cc, n);
	sl_diags_free(&d);
	return rc;
}

void nodes_free(struct server *s)
{
	for (size_t i = 0; i < s->nnodes; i++) {
		json_decref(s->nodes[i]->idx);
		free(s->nodes[i]->full);
		free(s->nodes[i]);
	}
	free(s->nodes);
	s->nodes = NULL;
	s->nnodes = 0;
	json_decref(s->pool);
	s->pool = NULL;
	sl_svc_cache_free(s->svc_cache);
	s->svc_cache = NULL;
}
