// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * compile_cache.c - compiled services kept across compiles
 * (compile_cache.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/compile/compile_cache.h"
#include "lib/wire/snapdelta.h"

struct sl_svc_cache {
	json_t *map;               /* "Kind/ns/name" -> {inputs, items, keys, nd, used} */
	size_t hits, misses;
};

struct sl_svc_cache *sl_svc_cache_new(void)
{
	struct sl_svc_cache *c = calloc(1, sizeof(*c));

	if (c && !(c->map = json_object())) {
		free(c);
		c = NULL;
	}
	return c;
}

void sl_svc_cache_free(struct sl_svc_cache *c)
{
	if (!c)
		return;
	json_decref(c->map);
	free(c);
}

/* ---- inputs ---------------------------------------------------------------- */

static int add_doc(json_t *a, const struct sl_resource *r)
{
	return json_array_append(a, r ? (json_t *)sl_resource_json(r) : json_null());
}

/* A service's own inputs: itself, its DestinationRule, the workloads its
 * selector picks (their count first, so that lists cannot run together). */
static int add_svc(json_t *a, const struct sl_cctx *x, const struct sl_svc *s)
{
	const struct sl_wl **sel = NULL;
	long k = 0;
	int rc;

	if (s->selector) {
		k = sl_model_select(&x->m, sl_resource_namespace(s->r), s->selector, &sel);
		if (k < 0)
			return -ENOMEM;
	}
	rc = add_doc(a, s->r) || add_doc(a, s->dr) ||
		json_array_append_new(a, json_integer(k)) ? -ENOMEM : 0;
	for (long i = 0; !rc && i < k; i++)
		rc = add_doc(a, sel[i]->r) ? -ENOMEM : 0;
	free(sel);
	return rc;
}

/* Every destination.host anywhere in the VirtualService's spec: the
 * service it names (or the name, if there is none). */
static int add_destinations(json_t *a, const struct sl_cctx *x, const struct sl_resource *vs,
			    const json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			if (add_destinations(a, x, vs, v))
				return -ENOMEM;
		return 0;
	}
	json_object_foreach((json_t *)j, k, v) {
		const char *host = json_string_value(json_object_get(v, "host"));
		int rc;

		if (strcmp(k, "destination") == 0 && host) {
			const struct sl_svc *ds;
			char fqdn[512];

			sl_host_fqdn(host, sl_resource_namespace(vs), fqdn, sizeof(fqdn));
			ds = sl_model_host(&x->m, fqdn);
			rc = ds ? add_svc(a, x, ds) : json_array_append_new(a, json_string(fqdn));
		} else {
			rc = add_destinations(a, x, vs, v);
		}
		if (rc)
			return -ENOMEM;
	}
	return 0;
}

json_t *svc_inputs(const struct sl_cctx *x, const struct sl_svc *s)
{
	json_t *a = json_array();

	if (!a || add_svc(a, x, s) || add_doc(a, s->vs) ||
	    (s->vs && add_destinations(a, x, s->vs,
				       json_object_get(sl_resource_json(s->vs), "spec")))) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* Documents are the same object; markers (counts, names, null) equal. */
static bool same_inputs(const json_t *a, const json_t *b)
{
	if (json_array_size(a) != json_array_size(b))
		return false;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const json_t *x = json_array_get(a, i), *y = json_array_get(b, i);

		if (x != y && (json_is_object(x) || json_is_object(y) || !json_equal(x, y)))
			return false;
	}
	return true;
}

/* ---- the cache ----------------------------------------------------------------- */

static void entry_key(const struct sl_svc *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/%s", sl_resource_kind(s->r), sl_resource_namespace(s->r),
		 sl_resource_name(s->r));
}

const json_t *svc_cache_get(struct sl_svc_cache *c, const struct sl_svc *s,
			    const json_t *inputs, const json_t **keys, bool *node_dependent)
{
	char k[1024];
	json_t *e;

	entry_key(s, k, sizeof(k));
	e = json_object_get(c->map, k);
	if (!e || !same_inputs(json_object_get(e, "inputs"), inputs)) {
		c->misses++;
		return NULL;
	}
	json_object_set_new(e, "used", json_true());
	c->hits++;
	*keys = json_object_get(e, "keys");
	*node_dependent = json_is_true(json_object_get(e, "nd"));
	return json_object_get(e, "items");
}

int svc_cache_put(struct sl_svc_cache *c, const struct sl_svc *s, json_t *inputs,
		  json_t *items, bool node_dependent, const json_t **keys)
{
	json_t *ka = json_array(), *item, *e;
	char k[1024], key[SD_KEY_MAX];
	size_t i;

	if (!ka)
		return -ENOMEM;
	json_array_foreach(items, i, item)
		if (sd_item_key(item, key) || json_array_append_new(ka, json_string(key))) {
			json_decref(ka);
			return -ENOMEM;
		}
	e = json_pack("{s:O, s:O, s:o, s:b, s:b}", "inputs", inputs, "items", items, "keys", ka,
		      "nd", node_dependent, "used", 1);
	entry_key(s, k, sizeof(k));
	if (!e || json_object_set_new(c->map, k, e))
		return -ENOMEM;
	*keys = json_object_get(e, "keys");
	return 0;
}

void svc_cache_begin(struct sl_svc_cache *c)
{
	const char *k;
	json_t *e;

	c->hits = c->misses = 0;
	json_object_foreach(c->map, k, e)
		json_object_set_new(e, "used", json_false());
}

void svc_cache_end(struct sl_svc_cache *c, struct sl_svc_cache_stats *st)
{
	const char *k;
	json_t *e;
	void *tmp;

	json_object_foreach_safe(c->map, tmp, k, e)
		if (!json_is_true(json_object_get(e, "used")))
			json_object_del(c->map, k);
	if (st)
		*st = (struct sl_svc_cache_stats){ c->hits, c->misses };
}
