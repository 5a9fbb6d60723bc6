// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The per-node compiler (compile.h): identities, services (compiled in
 * compile_services.c, kept across changes by compile_cache.c), workloads
 * with their effective mTLS mode, CIDR identities and the policy entries,
 * as the snapshot JSON of docs/snapshot.md; what every node shares once
 * (sl_compile_mesh), then each node's part. What each Istio field becomes
 * is documented in docs/config.md; the AuthorizationPolicy part is in
 * compile_policy.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/compile/compile.h"
#include "lib/compile/compile_cache.h"
#include "lib/compile/compile_ctx.h"
#include "lib/compile/compile_policy.h"
#include "lib/compile/compile_services.h"
#include "lib/compile/compile_traffic.h"
#include "lib/compile/compile_universe.h"
#include "lib/core/addr.h"
#include "lib/node/snapshot.h"
#include "lib/wire/snapdelta.h"

/* ---- nodes ------------------------------------------------------------------- */

/* Sorted, unique names of the nodes that run a workload of model m. */
static json_t *model_nodes(const struct sl_model *m)
{
	json_t *a = json_array();

	if (!a)
		return NULL;
	for (size_t i = 0; i < m->nwl; i++) {
		const char *node = m->wl[i].node;
		bool seen = false;
		size_t k;
		json_t *x;

		if (!node)
			continue;
		json_array_foreach(a, k, x)
			seen |= !strcmp(json_string_value(x), node);
		if (!seen)
			json_array_append_new(a, json_string(node));
	}
	/* sorted: insertion sort of a short list */
	for (size_t i = 1; i < json_array_size(a); i++)
		for (size_t k = i; k > 0 && strcmp(json_string_value(json_array_get(a, k - 1)),
						   json_string_value(json_array_get(a, k))) > 0; k--) {
			json_t *t = json_incref(json_array_get(a, k));

			json_array_set(a, k, json_array_get(a, k - 1));
			json_array_set_new(a, k - 1, t);
		}
	return a;
}

json_t *sl_compile_nodes(const struct sl_config *c)
{
	struct sl_model m;
	json_t *a;

	if (sl_model_build(c, &m))
		return NULL;
	a = model_nodes(&m);
	sl_model_free(&m);
	return a;
}

/* The PeerAuthentications and AuthorizationPolicies, in config order. */
static int index_policies(struct sl_cctx *x)
{
	size_t n = sl_config_count(x->c);

	x->pas = calloc(n + 1, sizeof(*x->pas));
	x->aps = calloc(n + 1, sizeof(*x->aps));
	if (!x->pas || !x->aps)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct sl_resource *r = sl_config_at(x->c, i);

		if (!strcmp(sl_resource_kind(r), "PeerAuthentication"))
			x->pas[x->npas++] = r;
		else if (!strcmp(sl_resource_kind(r), "AuthorizationPolicy"))
			x->aps[x->naps++] = r;
	}
	return 0;
}

/* ---- workloads and their mTLS mode --------------------------------------------- */

static const char *pa_mode(const struct sl_resource *pa)
{
	const char *m = json_string_value(json_object_get(json_object_get(
		json_object_get(sl_resource_json(pa), "spec"), "mtls"), "mode"));

	return m && strcmp(m, "UNSET") ? m : NULL;
}

/*
 * Istio's precedence: the workload's own PeerAuthentication (selector),
 * then its namespace's, then the root namespace's; PERMISSIVE if none sets
 * a mode. portLevelMtls comes from the workload's own.
 */
static const char *effective_mtls(const struct sl_cctx *x, const struct sl_wl *w,
				  const struct sl_resource **own)
{
	const char *wl = NULL, *ns = NULL, *root = NULL;

	*own = NULL;
	for (size_t i = 0; i < x->npas; i++) {
		const struct sl_resource *r = x->pas[i];
		const json_t *sel = sl_policy_selector(r);

		if (!strcmp(sl_resource_namespace(r), w->ns) && json_object_size(sel) &&
		    sl_labels_match(sel, w->labels)) {
			*own = r;
			wl = pa_mode(r);
		} else if (!json_object_size(sel) && !strcmp(sl_resource_namespace(r), w->ns)) {
			ns = pa_mode(r);
		} else if (!json_object_size(sel) &&
			   !strcmp(sl_resource_namespace(r), SL_ROOT_NAMESPACE)) {
			root = pa_mode(r);
		}
	}
	return wl ?: ns ?: root ?: "PERMISSIVE";
}

static json_t *mtls_ports(const struct sl_resource *own, const char *mode)
{
	const json_t *plm = json_object_get(json_object_get(sl_resource_json(own), "spec"),
					    "portLevelMtls");
	json_t *a = json_array(), *v;
	const char *k;

	json_object_foreach((json_t *)plm, k, v) {
		const char *m = json_string_value(json_object_get(v, "mode"));

		json_array_append_new(a, json_pack("{s:i, s:s}", "port", atoi(k), "mode",
						   m && strcmp(m, "UNSET") ? m : mode));
	}
	return a;
}

static json_t *workload_json(const struct sl_cctx *x, size_t i)
{
	const struct sl_wl *w = &x->m.wl[i];
	const struct sl_resource *own;
	const char *mode = effective_mtls(x, w, &own);
	char buf[SL_ADDRSTRLEN];
	json_t *j = json_pack("{s:s, s:s, s:I, s:s}", "name", w->name, "namespace", w->ns,
			      "identity", (json_int_t)x->wl_id[i], "mtls", mode);

	if (!j)
		return NULL;
	if (w->has4)
		json_object_set_new(j, "ipv4", json_string(addr_fmt(w->addr4, buf)));
	if (w->has6)
		json_object_set_new(j, "ipv6", json_string(addr_fmt(w->addr6, buf)));
	if (w->node)
		json_object_set_new(j, "node", json_string(w->node));
	if (w->node && !strcmp(w->node, x->node)) {
		json_object_set_new(j, "netns", json_string(w->netns));
		json_object_set_new(j, "interface", json_string(w->ifname));
		if (w->cgroup)
			json_object_set_new(j, "cgroup", json_string(w->cgroup));
	}
	if (own && json_object_get(json_object_get(sl_resource_json(own), "spec"), "portLevelMtls"))
		json_object_set_new(j, "mtls_ports", mtls_ports(own, mode));
	return j;
}

static json_t *identities_json(const struct sl_cctx *x)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < x->nuni; i++) {
		const struct sl_idinfo *u = &x->uni[i];
		char spiffe[600];

		if (!u->principal)
			continue;
		snprintf(spiffe, sizeof(spiffe), "spiffe://%s", u->principal);
		json_array_append_new(a, json_pack("{s:I, s:s}", "id", (json_int_t)u->id,
						   "spiffe", spiffe));
	}
	return a;
}

/* ---- the node -------------------------------------------------------------------- */

static void cctx_free(struct sl_cctx *x)
{
	for (size_t i = 0; x->principals && i < x->m.nwl; i++)
		free(x->principals[i]);
	free(x->principals);
	free(x->wl_id);
	free(x->uni);
	free(x->pas);
	free(x->aps);
	json_decref(x->cidrs);
	sl_model_free(&x->m);
}

/* Decode what we built with the agent's own decoder (snapshot_from_json,
 * what it runs on every snapshot after the JSON text is parsed): a
 * snapshot the agent would refuse is never handed out. */
static int self_check(json_t *snap, const char *node, struct sl_diags *d)
{
	struct snapshot s;
	char err[512];
	int rc;

	rc = snapshot_from_json(snap, "snapshot", &s, err, sizeof(err));
	if (rc) {
		sl_diag_add(d, SL_DIAG_ERROR, "%s%s: the compiled snapshot is refused: %s",
			    *node ? "node " : "", *node ? node : "every node", err);
		return rc;
	}
	snapshot_free(&s);
	return 0;
}

struct sl_mesh {
	struct sl_cctx x;          /* node "": what no node changes */
	json_t *svcs;              /* every node's services[]; NULL: they differ by node */
	json_t *indexed;           /* {"services": svcs indexed}, with svcs */
	json_t *identities;
	struct sl_svc_cache_stats cache;
};

void sl_mesh_free(struct sl_mesh *m)
{
	if (!m)
		return;
	json_decref(m->svcs);
	json_decref(m->indexed);
	json_decref(m->identities);
	cctx_free(&m->x);
	free(m);
}

const json_t *sl_mesh_indexed(const struct sl_mesh *m)
{
	return m->indexed;
}

json_t *sl_mesh_nodes(const struct sl_mesh *m)
{
	return model_nodes(&m->x.m);
}

void sl_mesh_cache_stats(const struct sl_mesh *m, size_t *hits, size_t *misses)
{
	*hits = m->cache.hits;
	*misses = m->cache.misses;
}

/*
 * Every node's services, each service's entries taken from the cache when
 * its inputs are those it was compiled from, else compiled (and cached):
 * into `out`, indexed (snapdelta.h) into `set` or, with a cache, into the
 * cache's (svc_set_add), the compiled ones also into `fresh` (for the
 * self-check). cache may be NULL; with one, the entries in out and its
 * set are packed (the cache's).
 */
static int mesh_services(struct sl_cctx *x, struct sl_svc_cache *cache, json_t *out,
			 json_t *set, json_t *fresh)
{
	for (size_t i = 0; i < x->m.nsvc; i++) {
		const struct sl_svc *s = &x->m.svc[i];
		json_t *inputs = cache ? svc_inputs(x, s) : NULL, *mine = NULL;
		const json_t *items = NULL, *keys = NULL, *item;
		char key[SD_KEY_MAX];
		bool nd = false, before = x->node_dependent, in_set = false;
		size_t k;
		int rc = 0;

		if (cache && !inputs)
			return -ENOMEM;
		if (cache)
			items = svc_cache_get(cache, s, inputs, &keys, &nd, &in_set);
		if (!items) {
			struct sl_model one = x->m;

			/* sl_compile_services() over s alone */
			mine = json_array();
			one.svc = (struct sl_svc *)s;
			one.nsvc = 1;
			x->node_dependent = false;
			rc = mine ? 0 : -ENOMEM;
			if (!rc) {
				struct sl_cctx y = *x;

				y.m = one;
				rc = sl_compile_services(&y, mine);
				nd = y.node_dependent;
			}
			if (!rc && cache)
				rc = svc_cache_put(cache, s, inputs, mine, nd, &keys, &items);
			if (!cache)
				items = mine;
		}
		x->node_dependent = before || nd;
		json_array_foreach(items, k, item) {
			/* the cached key as it is, or the item's own */
			const char *kp = keys ? json_string_value(json_array_get(keys, k)) : key;

			if (!rc && !keys)
				rc = sd_item_key(item, key);
			rc = rc ?: kp ? 0 : -EINVAL;
			rc = rc ?: json_array_append(out, (json_t *)item) ? -ENOMEM : 0;
			rc = rc ?: cache ? svc_set_add(cache, kp, (json_t *)item, in_set && !mine) :
				sd_set_add(set, kp, (json_t *)item);
			/* what is checked is the object, not its packed text */
			if (!rc && mine)
				rc = json_array_append(fresh, json_array_get(mine, k)) ? -ENOMEM : 0;
		}
		json_decref(mine);
		json_decref(inputs);
		if (rc)
			return rc;
	}
	return 0;
}

struct sl_mesh *sl_compile_mesh(const struct sl_config *c, struct sl_ids *ids,
				const char *trust_domain, struct sl_svc_cache *cache,
				struct sl_diags *d)
{
	return sl_compile_mesh_with(c, NULL, ids, trust_domain, cache, d);
}

struct sl_mesh *sl_compile_mesh_with(const struct sl_config *c, struct sl_model *model,
				     struct sl_ids *ids, const char *trust_domain,
				     struct sl_svc_cache *cache, struct sl_diags *d)
{
	struct sl_mesh *m = calloc(1, sizeof(*m));
	size_t errors = d->nerrors;
	json_t *only = NULL, *set = json_object(), *fresh = json_array();
	bool given = model != NULL;
	int rc = -ENOMEM;

	if (m && model) {
		m->x.m = *model;   /* taken: freed with the mesh */
		free(model);
		model = NULL;
	}
	if (!m || !set || !fresh)
		goto out;
	m->x.c = c;
	m->x.ids = ids;
	m->x.td = trust_domain;
	m->x.node = "";
	m->x.d = d;
	if ((!given && sl_model_build(c, &m->x.m)) || index_policies(&m->x) ||
	    sl_compile_universe(&m->x))
		goto out;
	m->identities = identities_json(&m->x);
	m->svcs = json_array();
	if (!m->identities || !m->svcs)
		goto out;
	if (cache)
		svc_cache_begin(cache);
	rc = mesh_services(&m->x, cache, m->svcs, set, fresh);
	if (cache)
		svc_cache_end(cache, rc ? NULL : &m->cache);
	if (!rc && cache && !m->x.node_dependent) {
		json_decref(set);
		set = svc_set_done(cache);
		rc = set ? 0 : -ENOMEM;
	}
	if (rc)
		goto out;
	if (m->x.node_dependent) {
		/* compiled again for each node, with its workloads as sources */
		json_decref(m->svcs);
		m->svcs = NULL;
	} else if (json_array_size(m->svcs) > SL_MAX_SERVICES) {
		only = json_pack("{s:I, s:O}", "version", (json_int_t)1, "services", m->svcs);
		rc = only ? self_check(only, "", d) : -ENOMEM;   /* says why */
	} else {
		/* what was compiled now is checked here (what came from the
		 * cache was checked when it was compiled); each node's own
		 * sections are checked with its snapshot */
		only = json_pack("{s:I, s:O}", "version", (json_int_t)1, "services", fresh);
		rc = only ? self_check(only, "", d) : -ENOMEM;
		m->indexed = rc ? NULL : json_pack("{s:O}", "services", set);
		if (!rc && !m->indexed)
			rc = -ENOMEM;
	}
out:
	if (model) {
		sl_model_free(model);
		free(model);
	}
	json_decref(only);
	json_decref(set);
	json_decref(fresh);
	if (rc == -ENOMEM)
		sl_diag_add(d, SL_DIAG_ERROR, "compiling the mesh: out of memory");
	else if (rc && d->nerrors == errors)
		sl_diag_add(d, SL_DIAG_ERROR, "compiling the mesh: %s", strerror(-rc));
	if (rc) {
		sl_mesh_free(m);
		m = NULL;
	}
	return m;
}

json_t *sl_compile_node_in(const struct sl_mesh *m, const char *node, uint64_t version,
			   struct sl_diags *d)
{
	struct sl_cctx x = m->x;   /* shared, read only: never freed here */
	json_t *snap = NULL, *svcs = NULL, *wls = NULL, *pols = NULL, *check;
	size_t errors = d->nerrors;
	int rc = -ENOMEM;

	x.node = node;
	x.d = d;
	svcs = m->svcs ? json_incref(m->svcs) : json_array();
	wls = json_array();
	if (!svcs || !wls)
		goto out;
	if (!m->svcs) {
		rc = sl_compile_services(&x, svcs);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < x.m.nwl; i++) {
		if (json_array_append_new(wls, workload_json(&x, i))) {
			rc = -ENOMEM;
			goto out;
		}
	}
	pols = sl_compile_policies(&x);
	if (!pols) {
		rc = d->nerrors > errors ? -EINVAL : -ENOMEM;
		goto out;
	}
	snap = json_pack("{s:I, s:O, s:O, s:O, s:O, s:O}", "version", (json_int_t)version,
			 "services", svcs, "identities", m->identities, "cidrs", x.cidrs,
			 "workloads", wls, "policies", pols);
	if (!snap) {
		rc = -ENOMEM;
		goto out;
	}
	/* services shared by every node were checked by sl_compile_mesh() */
	check = m->svcs ? json_copy(snap) : json_incref(snap);
	if (check && m->svcs)
		json_object_set_new(check, "services", json_array());
	rc = check ? self_check(check, node, d) : -ENOMEM;
	json_decref(check);
out:
	if (rc == -ENOMEM)
		sl_diag_add(d, SL_DIAG_ERROR, "node %s: out of memory", node);
	else if (rc && d->nerrors == errors)
		sl_diag_add(d, SL_DIAG_ERROR, "node %s: %s", node, strerror(-rc));
	if (rc) {
		json_decref(snap);
		snap = NULL;
	}
	json_decref(svcs);
	json_decref(wls);
	json_decref(pols);
	return snap;
}

json_t *sl_compile_node(const struct sl_config *c, struct sl_ids *ids,
			const char *trust_domain, const char *node,
			uint64_t version, struct sl_diags *d)
{
	struct sl_mesh *m = sl_compile_mesh(c, ids, trust_domain, NULL, d);
	json_t *snap = m ? sl_compile_node_in(m, node, version, d) : NULL;

	sl_mesh_free(m);
	return snap;
}
