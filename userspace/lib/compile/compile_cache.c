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

/* One service's entries, compiled from `inputs`. */
struct centry {
	char *key;                 /* "Kind/ns/name" */
	uint64_t hash;
	json_t *inputs, *items, *keys;
	bool nd;
	unsigned int used;         /* the compile (gen) that last used it */
};

/* One item of the compile in progress: its key (the cache entry's
 * string) and its packed item. */
struct produced {
	const char *key;
	json_t *item;
};

/*
 * The services set (snapdelta.h: key -> packed item) of the compile in
 * progress, made as a change to `set`, the set of the last committed
 * compile, when that is cheaper and provably the same as building it
 * whole:
 * - an item whose key `set` maps to this very item is kept; a key not in
 *   `set` is new; a key `set` maps to an item of an entry replaced or
 *   dropped by this compile (same key, so same content) takes the new
 *   item; anything else (a key produced twice, an item of an entry the
 *   cache no longer knows) and the set is built whole;
 * - a key whose item is one of those replaced or dropped and that no item
 *   produced now has goes;
 * - and the sizes must agree: every produced key is in the result, so if
 *   it has as many keys as were produced, it has nothing else.
 */
struct pending {
	json_t *base;              /* c->set, the change's base; NULL: whole */
	json_t *whole;             /* the set built whole */
	json_t *add;               /* key -> item: keys not in base */
	json_t *repl;              /* key -> item: keys base maps to another item */
	json_t *gone;              /* [keys, items] of entries replaced or dropped */
	json_t *del;               /* keys that go */
	bool broken;               /* build whole */
	bool repeats;              /* the whole set has a key twice (KEY#2) */
	unsigned int gen;          /* the compile's */
	bool ready;                /* compiled, waiting for sl_svc_cache_commit() */
	struct produced *v;
	size_t n, cap;
};

/* Open addressing, linear probing; at most half full. Entries leave only
 * in svc_cache_end(), which rebuilds the table: no tombstones. */
struct sl_svc_cache {
	struct centry **tab;
	size_t cap, n;
	unsigned int gen;
	size_t hits, misses;
	json_t *set;               /* the services set last committed */
	unsigned int set_gen;      /* the compile it is of: its entries' items are in it */
	bool set_repeats;
	struct pending p;
};

static void centry_free(struct centry *e)
{
	if (!e)
		return;
	free(e->key);
	json_decref(e->inputs);
	json_decref(e->items);
	json_decref(e->keys);
	free(e);
}

struct sl_svc_cache *sl_svc_cache_new(void)
{
	return calloc(1, sizeof(struct sl_svc_cache));
}

static void pending_clear(struct pending *p)
{
	json_decref(p->whole);
	json_decref(p->add);
	json_decref(p->repl);
	json_decref(p->gone);
	json_decref(p->del);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

void sl_svc_cache_free(struct sl_svc_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->cap; i++)
		centry_free(c->tab[i]);
	free(c->tab);
	pending_clear(&c->p);
	json_decref(c->set);
	free(c);
}

/* An entry's keys and items leave the cache: candidates for deletion
 * from the base (struct pending). */
static int gone(struct sl_svc_cache *c, const struct centry *e)
{
	if (!c->p.base || c->p.broken)
		return 0;
	if (!c->p.gone)
		c->p.gone = json_array();
	return !c->p.gone || json_array_append_new(c->p.gone, json_pack("[O, O]", e->keys, e->items)) ?
		-ENOMEM : 0;
}

/* ---- inputs ---------------------------------------------------------------- */

/* A resource as an input: its stored text (the same document is the same
 * text; configs share a resource's, so a hit compares pointers). */
static int add_doc(json_t *a, const struct sl_resource *r)
{
	return json_array_append(a, r ? (json_t *)sl_resource_stored(r) : json_null());
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

/* Documents (their texts) and markers (counts, names, null) equal. A
 * marker name is a host, which no document's text (an object) equals. */
static bool same_inputs(const json_t *a, const json_t *b)
{
	if (json_array_size(a) != json_array_size(b))
		return false;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const json_t *x = json_array_get(a, i), *y = json_array_get(b, i);

		if (x != y && !json_equal(x, y))
			return false;
	}
	return true;
}

/* ---- the cache ----------------------------------------------------------------- */

/* "Kind/ns/name" into buf (len > 3 * SL_NAME_MAX), and its FNV-1a hash. */
static uint64_t entry_key(const struct sl_svc *s, char *buf, size_t len)
{
	const char *part[3] = { sl_resource_kind(s->r), sl_resource_namespace(s->r),
				sl_resource_name(s->r) };
	uint64_t h = 0xcbf29ce484222325ull;
	size_t n = 0;

	for (int i = 0; i < 3; i++) {
		size_t l = strlen(part[i]);

		if (n + l + 2 > len)
			l = len - n - 2;
		memcpy(buf + n, part[i], l);
		n += l;
		buf[n++] = i < 2 ? '/' : '\0';
	}
	for (size_t i = 0; buf[i]; i++)
		h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ull;
	return h;
}

/* The slot of key k: its entry, or the empty slot where it would go. */
static struct centry **slot(const struct sl_svc_cache *c, const char *k, uint64_t h)
{
	size_t i = (size_t)h & (c->cap - 1);

	while (c->tab[i] && (c->tab[i]->hash != h || strcmp(c->tab[i]->key, k)))
		i = (i + 1) & (c->cap - 1);
	return &c->tab[i];
}

/* A table of cap slots (a power of two) with c's entries, or with only
 * those this compile used (the others are freed). 0 or -ENOMEM (c is
 * unchanged). */
static int rebuild(struct sl_svc_cache *c, size_t cap, bool only_used)
{
	struct sl_svc_cache next = { .cap = cap, .gen = c->gen };

	next.tab = calloc(cap, sizeof(*next.tab));
	if (!next.tab)
		return -ENOMEM;
	for (size_t i = 0; i < c->cap; i++) {
		struct centry *e = c->tab[i];

		if (!e)
			continue;
		if (only_used && e->used != c->gen) {
			if (gone(c, e))
				c->p.broken = true;   /* unknown deletions: build whole */
			centry_free(e);
			continue;
		}
		*slot(&next, e->key, e->hash) = e;
		next.n++;
	}
	free(c->tab);
	c->tab = next.tab;
	c->cap = cap;
	c->n = next.n;
	return 0;
}

const json_t *svc_cache_get(struct sl_svc_cache *c, const struct sl_svc *s,
			    const json_t *inputs, const json_t **keys, bool *node_dependent,
			    bool *in_set)
{
	char k[1024];
	uint64_t h = entry_key(s, k, sizeof(k));
	struct centry *e = c->cap ? *slot(c, k, h) : NULL;

	if (!e || !same_inputs(e->inputs, inputs)) {
		c->misses++;
		return NULL;
	}
	/* used by the compile the kept set is of: its items are there */
	*in_set = c->set && c->set_gen && e->used == c->set_gen && !c->set_repeats;
	e->used = c->gen;
	c->hits++;
	*keys = e->keys;
	*node_dependent = e->nd;
	return e->items;
}

int svc_cache_put(struct sl_svc_cache *c, const struct sl_svc *s, json_t *inputs,
		  const json_t *items, bool node_dependent, const json_t **keys,
		  const json_t **packed)
{
	json_t *ka = json_array(), *pa = json_array(), *item;
	char k[1024], key[SD_KEY_MAX];
	struct centry **at, *e = NULL;
	uint64_t h;
	size_t i;

	if (!ka || !pa)
		goto nomem;
	json_array_foreach(items, i, item) {
		json_t *one;

		if (sd_item_key_packed(item, key, &one) || json_array_append_new(pa, one) ||
		    json_array_append_new(ka, json_string_nocheck(key)))
			goto nomem;
	}
	if ((c->n + 1) * 2 > c->cap && rebuild(c, c->cap ? c->cap * 2 : 64, false))
		goto nomem;
	h = entry_key(s, k, sizeof(k));
	at = slot(c, k, h);
	e = *at ?: calloc(1, sizeof(*e));
	if (!e || (!*at && !(e->key = strdup(k)))) {
		if (!*at)
			free(e);
		goto nomem;
	}
	if (*at && gone(c, e))
		goto nomem;
	json_decref(e->inputs);
	json_decref(e->items);
	json_decref(e->keys);
	e->hash = h;
	e->inputs = json_incref(inputs);
	e->items = pa;
	e->keys = ka;
	e->nd = node_dependent;
	e->used = c->gen;
	if (!*at) {
		*at = e;
		c->n++;
	}
	*keys = ka;
	*packed = pa;
	return 0;
nomem:
	json_decref(ka);
	json_decref(pa);
	return -ENOMEM;
}

void svc_cache_begin(struct sl_svc_cache *c)
{
	c->hits = c->misses = 0;
	c->gen++;
	/* a compile never committed: its change is dropped; the base is
	 * still what the nodes have */
	pending_clear(&c->p);
	c->p.gen = c->gen;
	c->p.base = c->set;
	c->p.add = json_object();
	c->p.repl = json_object();
	if (!c->p.add || !c->p.repl)
		c->p.broken = true;
}

int svc_set_add(struct sl_svc_cache *c, const char *key, json_t *item, bool in_set)
{
	struct pending *p = &c->p;
	json_t *cur;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 1024;
		struct produced *v = realloc(p->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = (struct produced){ key, item };
	if (!p->base || p->broken || in_set)
		return 0;   /* in_set: kept, known without a look */
	cur = json_object_get(p->base, key);
	if (cur == item)
		return 0;   /* kept */
	if (json_object_get(p->add, key) || json_object_get(p->repl, key)) {
		p->broken = true;   /* produced twice: KEY#2 (sd_set_add) */
		return 0;
	}
	return json_object_set_nocheck(cur ? p->repl : p->add, key, item) ? -ENOMEM : 0;
}

/* Is `item` one of the items of the entries gone in this compile? */
static bool is_gone(const struct pending *p, const json_t *item)
{
	const json_t *g;
	size_t i, k;

	json_array_foreach(p->gone, i, g) {
		const json_t *items = json_array_get(g, 1);

		for (k = 0; k < json_array_size(items); k++)
			if (json_array_get(items, k) == item)
				return true;
	}
	return false;
}

/* The change to the base, if it is provably the compile's set (struct
 * pending); else false and the set is built whole. */
static bool as_change(struct pending *p)
{
	const char *key;
	json_t *item, *g;
	size_t i, k;

	if (!p->base || p->broken)
		return false;
	/* a replaced item's key must hold an item of a gone entry */
	json_object_foreach(p->repl, key, item)
		if (!is_gone(p, json_object_get(p->base, key)))
			return false;
	p->del = json_array();
	if (!p->del)
		return false;
	json_array_foreach(p->gone, i, g) {
		const json_t *keys = json_array_get(g, 0), *items = json_array_get(g, 1);

		for (k = 0; k < json_array_size(keys); k++) {
			key = json_string_value(json_array_get(keys, k));
			if (json_object_get(p->base, key) == json_array_get(items, k) &&
			    !json_object_get(p->repl, key) &&
			    json_array_append_new(p->del, json_string(key)))
				return false;
		}
	}
	return json_object_size(p->base) - json_array_size(p->del) + json_object_size(p->add) ==
	       p->n;
}

json_t *svc_set_done(struct sl_svc_cache *c)
{
	struct pending *p = &c->p;

	if (as_change(p)) {
		p->ready = true;
		return json_incref(p->base);
	}
	json_decref(p->del);
	p->del = NULL;
	p->base = NULL;
	p->whole = json_object();
	for (size_t i = 0; p->whole && i < p->n; i++) {
		p->repeats = p->repeats || json_object_get(p->whole, p->v[i].key);
		if (sd_set_add(p->whole, p->v[i].key, p->v[i].item)) {
			json_decref(p->whole);
			p->whole = NULL;
		}
	}
	p->ready = p->whole != NULL;
	return json_incref(p->whole);
}

json_t *sl_svc_cache_base(const struct sl_svc_cache *c)
{
	return c->p.ready ? c->p.base : NULL;
}

/* base + the change, in place: new keys first (the only step that
 * allocates, and undone on failure), then replaced items, then deletions. */
static int apply_change(json_t *set, const struct pending *p)
{
	const char *key;
	json_t *item, *k;
	size_t i;

	json_object_foreach(p->add, key, item) {
		if (json_object_set_nocheck(set, key, item)) {
			json_object_foreach(p->add, key, item)
				json_object_del(set, key);   /* those set so far */
			return -ENOMEM;
		}
	}
	json_object_foreach(p->repl, key, item)
		json_object_set_nocheck(set, key, item);   /* an existing key: no allocation */
	json_array_foreach(p->del, i, k)
		json_object_del(set, json_string_value(k));
	return 0;
}

int sl_svc_cache_commit(struct sl_svc_cache *c, bool in_place, json_t **set, json_t **part,
			size_t *items)
{
	struct pending *p = &c->p;
	json_t *target = NULL;
	int rc = -ENOMEM;

	*set = *part = NULL;
	*items = 0;
	if (!p->ready)
		return 0;
	if (!p->base) {
		target = json_incref(p->whole);
		goto done;
	}
	if (!in_place) {
		target = json_object();
		if (!target || json_object_update(target, p->base) || apply_change(target, p))
			goto fail;
		goto done;
	}
	/* the part a delta between the sets has (snapdelta.h): new keys and
	 * deletions; a replaced item has the same content (the same key) */
	*items = json_object_size(p->add) + json_array_size(p->del);
	*part = *items ? json_pack("{s:O, s:O}", "set", p->add, "del", p->del) : json_null();
	if (!*part || apply_change(p->base, p))
		goto fail;
	target = json_incref(p->base);
done:
	json_decref(c->set);
	c->set = target;
	c->set_gen = p->gen;
	c->set_repeats = p->repeats;
	*set = target;
	rc = 0;
fail:
	if (rc) {
		json_decref(target);
		json_decref(*part);
		*part = NULL;
		*items = 0;
	}
	pending_clear(p);
	return rc;
}

void svc_cache_end(struct sl_svc_cache *c, struct sl_svc_cache_stats *st)
{
	size_t used = c->hits + c->misses;

	/* what this compile did not use goes (entries it put are used); a
	 * table that cannot be rebuilt now keeps them until the next one */
	if (used < c->n) {
		size_t cap = 64;

		while (cap < used * 2 + 2)
			cap *= 2;
		rebuild(c, cap, true);
	}
	if (st)
		*st = (struct sl_svc_cache_stats){ c->hits, c->misses };
}
