// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * snapshots.c - every node's snapshot (snapshots.h): compiled from the
 * config, installed, and pushed down the node's watch streams as a delta
 * or whole.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "control/snapshots.h"
#include "lib/compile/compile.h"
#include "lib/compile/compile_cache.h"
#include "lib/core/log.h"
#include "lib/core/loop.h"
#include "lib/wire/h2.h"
#include "lib/wire/snapdelta.h"

struct node_st *node_get(struct server *s, const char *name, bool create)
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

void compiled_free(struct compiled *cc, size_t n)
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
/* One node's snapshot, indexed: its items are shared with the other
 * nodes' through s->pool. 0, -EINVAL (errors in d) or -ENOMEM. */
int compile_one(struct server *s, const struct sl_mesh *mesh, const char *name,
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
int full_line(struct node_st *n)
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
char *delta_line(uint64_t version, uint64_t base, json_t *delta, size_t *len)
{
	char prefix[64], *body;
	size_t blen = 0;

	snprintf(prefix, sizeof(prefix), "\"base\":%llu,\"delta\":", (unsigned long long)base);
	body = sd_delta_text(delta, &blen);
	return wrap_line(version, prefix, body, blen, len);
}

/* Every node the config places workloads on, and every node we know.
 * model: cfg read already (taken), or NULL. */
int compile_all(struct server *s, const struct sl_config *cfg, struct sl_model *model,
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
unsigned int install(struct server *s, struct compiled *cc, size_t n, uint64_t version)
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
	/* the compile read documents' trees: they go with the next trim */
	s->trim_at = loop_now_ms() + TRIM_AFTER_MS;
	s->last_push_bytes = bytes;
	s->last_push_items = items;
	return changed;
}
