// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * nodes.c - the control plane's side of its nodes (nodes.h): their HBONE
 * addresses, watch streams, ACK/NACK and status, and the config change
 * path that feeds them. The snapshots themselves, compiled, installed and
 * pushed, are in snapshots.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "control/nodes.h"
#include "control/request.h"
#include "control/snapshots.h"
#include "lib/compile/compile.h"
#include "lib/compile/compile_cache.h"
#include "lib/config/config_model.h"
#include "lib/core/addr.h"
#include "lib/core/cli.h"
#include "lib/core/log.h"
#include "lib/core/loop.h"

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
	struct compiled *cc = NULL;
	struct sl_ids *ids = NULL;
	unsigned int pushed;
	size_t n = 0;
	char err[512];
	int rc;

	if (sl_config_same(st->cfg, nc)) {
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
	/* this request's diagnostics are made: its positions are not needed,
	 * nor the trees of documents whose parsed form the compile kept */
	sl_config_trim(st->cfg);
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
