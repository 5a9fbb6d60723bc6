// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The compiler's service cache (lib/compile/compile_cache.h): over a random
 * walk of config changes (services, workloads moving between selectors,
 * subsets, routes, traffic policies applied, changed and deleted), the
 * snapshot compiled with the cache kept across changes is the snapshot
 * compiled from scratch, and so is its indexed services section (the
 * cached compile's entries packed, snapdelta.h, and read back here). From
 * scratch means from the config loaded anew from its storage form: no
 * resource shared with the walk's configs, so none of the parsed forms
 * the model keeps with each resource (config_model.c) either. The set is
 * committed at random in place, to a copy, or not at all (a refused
 * change), and a change made in place gives the delta's own part.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lib/compile/compile.h"
#include "lib/compile/compile_cache.h"
#include "lib/config/config_check.h"
#include "lib/wire/snapdelta.h"

#define WE(name, addr, labels) \
	"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: " name "\n" \
	"  namespace: shop\n  annotations: {sluice.io/node: n1, sluice.io/netns: /run/netns/" name \
	", sluice.io/interface: " name "}\nspec: {address: " addr ", labels: " labels \
	", serviceAccount: web}\n"

struct res {
	const char *kind, *name;
	const char *variant[4];   /* NULL-terminated */
};

static const struct res res[] = {
	{ "Service", "web", {
	  "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
	  "spec: {clusterIP: 10.96.0.10, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n",
	  "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
	  "spec: {clusterIP: 10.96.0.10, selector: {app: web}, ports: [{port: 80, targetPort: 9090}],"
	  " sessionAffinity: ClientIP}\n", NULL } },
	{ "Service", "api", {
	  "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\n"
	  "spec: {clusterIP: 10.96.0.11, selector: {app: api}, ports: [{port: 80}]}\n", NULL } },
	{ "WorkloadEntry", "web-1", {
	  WE("web-1", "10.1.0.1", "{app: web, version: v1}"),
	  WE("web-1", "10.1.0.1", "{app: web, version: v2}"),
	  WE("web-1", "10.1.0.5", "{app: api, version: v1}"), NULL } },
	{ "WorkloadEntry", "web-2", {
	  WE("web-2", "10.1.0.2", "{app: web, version: v2}"),
	  WE("web-2", "10.1.0.2", "{app: api}"), NULL } },
	{ "WorkloadEntry", "api-1", {
	  WE("api-1", "10.1.0.3", "{app: api}"),
	  WE("api-1", "10.1.0.4", "{app: api, version: v1}"), NULL } },
	{ "DestinationRule", "web", {
	  "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web, namespace: shop}\n"
	  "spec:\n  host: web\n  subsets:\n  - {name: v1, labels: {version: v1}}\n"
	  "  - {name: v2, labels: {version: v2}}\n",
	  "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web, namespace: shop}\n"
	  "spec:\n  host: web\n  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\n  subsets:\n"
	  "  - {name: v1, labels: {version: v2}}\n  - {name: v2, labels: {version: v1}}\n", NULL } },
	{ "DestinationRule", "api", {
	  "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: api, namespace: shop}\n"
	  "spec:\n  host: api\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 10}}}\n", NULL } },
	{ "VirtualService", "web", {
	  "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web, namespace: shop}\n"
	  "spec:\n  hosts: [web]\n  tcp:\n  - route:\n    - {destination: {host: web, subset: v1}, weight: 90}\n"
	  "    - {destination: {host: api}, weight: 10}\n",
	  "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web, namespace: shop}\n"
	  "spec:\n  hosts: [web]\n  tcp:\n  - route:\n"
	  "    - {destination: {host: legacy.example.com, port: {number: 80}}}\n",
	  "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web, namespace: shop}\n"
	  "spec:\n  hosts: [web]\n  tcp:\n  - route:\n    - {destination: {host: web, subset: v2}}\n", NULL } },
	{ "ServiceEntry", "legacy", {
	  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: legacy, namespace: shop}\n"
	  "spec:\n  hosts: [legacy.example.com]\n  addresses: [10.96.0.20]\n  resolution: STATIC\n"
	  "  ports: [{number: 80, name: tcp, protocol: TCP}]\n  endpoints: [{address: 10.9.0.1}]\n",
	  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: legacy, namespace: shop}\n"
	  "spec:\n  hosts: [legacy.example.com]\n  addresses: [10.96.0.20]\n  resolution: STATIC\n"
	  "  ports: [{number: 80, name: tcp, protocol: TCP}]\n  endpoints: [{address: 10.9.0.2}, "
	  "{address: 10.9.0.3, weight: 3}]\n", NULL } },
};

#define NRES (sizeof(res) / sizeof(res[0]))

/* c loaded anew from its storage form: the same documents, new resources. */
static struct sl_config *reloaded(const struct sl_config *c)
{
	struct sl_config *x = sl_config_new();
	json_t *docs = sl_config_to_json(c);
	struct sl_diags d = {};

	cr_assert(x && docs);
	cr_assert_eq(sl_config_from_json(x, "reloaded", docs, &d), 0, "%s", d.n ? d.v[0].msg : "");
	json_decref(docs);
	sl_diags_free(&d);
	return x;
}

/* One change to c, or -1 if the config refuses it (c unchanged then). */
static int change(struct sl_config **c, unsigned int *seed)
{
	const struct res *r = &res[rand_r(seed) % NRES];
	struct sl_config *nc = sl_config_dup(*c);
	struct sl_diags d = {};
	size_t nv = 0;
	int rc;

	cr_assert_not_null(nc);
	while (r->variant[nv])
		nv++;
	if (rand_r(seed) % 4 == 0) {
		sl_config_remove(nc, r->kind, "shop", r->name);
	} else {
		const char *doc = r->variant[rand_r(seed) % nv];

		cr_assert_eq(sl_config_parse(nc, "t.yaml", doc, strlen(doc), &d), 0,
			     "%s", d.n ? d.v[0].msg : "");
	}
	rc = sl_config_check(nc, &d);
	sl_diags_free(&d);
	if (rc) {
		sl_config_free(nc);
		return -1;
	}
	sl_config_free(*c);
	*c = nc;
	return 0;
}

/* v (an array, or an indexed set) with its packed items (strings) parsed
 * back: the cached compile packs services, the one from scratch does not */
static json_t *unpacked(const json_t *v)
{
	json_t *out = json_is_array(v) ? json_array() : json_object(), *item;
	const char *k;
	size_t i;

	if (json_is_array(v))
		json_array_foreach(v, i, item)
			json_array_append_new(out, json_is_string(item) ?
					      json_loads(json_string_value(item), 0, NULL) :
					      json_incref(item));
	else
		json_object_foreach((json_t *)v, k, item)
			json_object_set_new(out, k, json_is_string(item) ?
					    json_loads(json_string_value(item), 0, NULL) :
					    json_incref(item));
	return out;
}

/* A delta's del list as a set: {key: true}. */
static json_t *key_set(const json_t *del)
{
	json_t *o = json_object(), *k;
	size_t i;

	json_array_foreach(del, i, k)
		json_object_set_new(o, json_string_value(k), json_true());
	return o;
}

/* The part sl_svc_cache_commit() gave for a change in place is the part
 * of the delta between the sets before (a copy) and after. */
static void check_part(int step, json_t *before, json_t *after, const json_t *part, size_t items)
{
	json_t *a = json_pack("{s:O}", "services", before), *b = json_pack("{s:O}", "services", after);
	json_t *d = sd_delta(a, b, NULL), *want = json_object_get(d, "services");

	if (!want) {
		cr_assert(json_is_null(part), "step %d: a part for no change: %s", step,
			  json_dumps(part, JSON_COMPACT));
		cr_assert_eq(items, 0);
	} else {
		json_t *x = key_set(json_object_get(want, "del")), *y = key_set(json_object_get(part, "del"));

		cr_assert(json_equal(json_object_get(want, "set"), json_object_get(part, "set")),
			  "step %d: the part sets %s, the delta %s", step,
			  json_dumps(json_object_get(part, "set"), JSON_COMPACT),
			  json_dumps(json_object_get(want, "set"), JSON_COMPACT));
		cr_assert(json_equal(x, y), "step %d: the part deletes %s, the delta %s", step,
			  json_dumps(y, JSON_COMPACT), json_dumps(x, JSON_COMPACT));
		cr_assert_eq(items, json_object_size(json_object_get(want, "set")) +
			     json_array_size(json_object_get(want, "del")));
		json_decref(x);
		json_decref(y);
	}
	json_decref(a);
	json_decref(b);
	json_decref(d);
}

Test(compile_cache, cached_compile_is_the_compile_from_scratch)
{
	struct sl_svc_cache *cache = sl_svc_cache_new();
	struct sl_config *c = sl_config_new();
	size_t hits = 0, misses = 0, compiled = 0, changes = 0, in_place = 0;
	unsigned int seed = 42;
	json_t *kept = NULL;   /* a copy of the set last committed */

	for (int step = 0; step < 400; step++) {
		struct sl_ids *ids1 = sl_ids_new(), *ids2 = sl_ids_new();
		struct sl_diags d1 = {}, d2 = {};
		struct sl_config *fresh;
		struct sl_mesh *m;
		json_t *a, *b, *ib;
		size_t h, k;

		if (change(&c, &seed))
			continue;
		m = sl_compile_mesh(c, ids1, "cluster.local", cache, &d1);
		fresh = reloaded(c);
		b = sl_compile_node(fresh, ids2, "cluster.local", "n1", 1, &d2);
		sl_config_free(fresh);
		cr_assert_eq(m == NULL, b == NULL, "step %d: one compiled, one did not", step);
		if (!m) {
			sl_diags_free(&d1);
			sl_diags_free(&d2);
			sl_ids_free(ids1);
			sl_ids_free(ids2);
			continue;
		}
		a = sl_compile_node_in(m, "n1", 1, &d1);
		cr_assert_not_null(a);
		json_object_set_new(a, "services", unpacked(json_object_get(a, "services")));
		cr_assert(json_equal(a, b), "step %d: the cached compile differs:\n%s\nvs\n%s", step,
			  json_dumps(a, JSON_COMPACT), json_dumps(b, JSON_COMPACT));
		ib = sd_index(b, NULL);
		if (sl_mesh_indexed(m)) {
			/* committed (in place, to a copy) or not (its config was
			 * refused): the next compile starts from what was kept */
			int how = rand_r(&seed) % 4;
			json_t *set = NULL, *part = NULL, *u;
			size_t items = 0;

			if (sl_svc_cache_base(cache))
				changes++;
			if (how) {
				cr_assert_eq(sl_svc_cache_commit(cache, how > 1, &set, &part, &items), 0);
				cr_assert_not_null(set);
				if (part) {
					in_place++;
					cr_assert_not_null(kept, "step %d: a change with no base", step);
					check_part(step, kept, set, part, items);
				}
				json_decref(kept);
				kept = json_copy(set);
			} else if (!sl_svc_cache_base(cache)) {
				set = json_object_get(sl_mesh_indexed(m), "services");   /* whole */
			}
			if (set) {
				u = unpacked(set);
				cr_assert(json_equal(u, json_object_get(ib, "services")),
					  "step %d: index (%s)", step, how > 1 ? "in place" :
					  how ? "a copy" : "not committed");
				json_decref(u);
			}
			json_decref(part);
		}
		sl_mesh_cache_stats(m, &h, &k);
		hits += h;
		misses += k;
		compiled++;
		json_decref(ib);
		json_decref(a);
		json_decref(b);
		sl_mesh_free(m);
		sl_diags_free(&d1);
		sl_diags_free(&d2);
		sl_ids_free(ids1);
		sl_ids_free(ids2);
	}
	/* the walk did reuse and did recompile */
	cr_assert_gt(compiled, 100);
	cr_assert_gt(hits, 100, "%zu hits", hits);
	cr_assert_gt(misses, 50, "%zu misses", misses);
	/* and made most sets as a change, some of them in place */
	cr_assert_gt(changes, compiled / 2, "%zu of %zu sets made as a change", changes, compiled);
	cr_assert_gt(in_place, 50, "%zu changes made in place", in_place);
	json_decref(kept);
	sl_config_free(c);
	sl_svc_cache_free(cache);
}
