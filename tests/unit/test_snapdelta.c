// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Snapshots as item sets and the deltas between them (lib/wire/snapdelta.h):
 * a delta from A to B applied to A gives B, its undo gives A back, a delta
 * that does not fit changes nothing, and equal items of several nodes are
 * one object in the pool.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lib/node/snapshot.h"
#include "lib/wire/snapdelta.h"

/* Service i with backend b, as compile.c writes them. */
static json_t *svc(int i, int b)
{
	char vip[32], be[32], name[32];

	snprintf(vip, sizeof(vip), "10.96.%d.%d", i / 256, i % 256);
	snprintf(be, sizeof(be), "10.244.%d.%d", b / 256, b % 256);
	snprintf(name, sizeof(name), "default/s%d", i);
	return json_pack("{s:s, s:s, s:i, s:s, s:[{s:s, s:i, s:i}]}", "name", name, "vip", vip,
			 "port", 80, "protocol", "TCP", "backends", "address", be, "port", 8080,
			 "weight", 1);
}

/* A random snapshot: some of services 0..63, random backends, sometimes a
 * nodes list, sometimes a repeated policy entry. */
static json_t *random_snap(unsigned int *seed)
{
	json_t *s = json_pack("{s:i, s:[], s:[]}", "version", 1, "services", "policies");

	for (int i = 0; i < 64; i++)
		if (rand_r(seed) % 3)
			json_array_append_new(json_object_get(s, "services"),
					      svc(i, (int)(rand_r(seed) % 4)));
	if (rand_r(seed) % 2)
		json_object_set_new(s, "nodes", json_pack("[{s:s, s:s}]", "name", "n1", "hbone",
							  rand_r(seed) % 2 ? "192.0.2.1:15008" :
							  "192.0.2.2:15008"));
	for (int k = (int)(rand_r(seed) % 3); k > 0; k--)   /* repeats: KEY#2, KEY#3 */
		json_array_append_new(json_object_get(s, "policies"),
				      json_pack("{s:s, s:i}", "action", "DENY", "port", 22));
	return s;
}

Test(snapdelta, delta_applies_and_undoes)
{
	unsigned int seed = 7;
	char err[256];

	for (int round = 0; round < 300; round++) {
		json_t *a = random_snap(&seed), *b = random_snap(&seed);
		json_t *ia = sd_index(a, NULL), *ib = sd_index(b, NULL), *orig, *d, *undo;
		size_t items;

		cr_assert(ia && ib);
		orig = json_deep_copy(ia);
		d = sd_delta(ia, ib, &items);
		cr_assert(d);
		cr_assert_eq(json_object_size(d) == 0, json_equal(ia, ib));
		cr_assert_eq(sd_apply(ia, d, &undo, err, sizeof(err)), 0, "%s", err);
		cr_assert(json_equal(ia, ib), "round %d: A + delta(A, B) != B", round);
		cr_assert_eq(sd_apply(ia, undo, NULL, err, sizeof(err)), 0, "%s", err);
		cr_assert(json_equal(ia, orig), "round %d: undo did not give A back", round);
		json_decref(undo);
		json_decref(d);
		json_decref(orig);
		json_decref(ia);
		json_decref(ib);
		json_decref(a);
		json_decref(b);
	}
}

Test(snapdelta, one_change_is_one_item)
{
	json_t *a = json_pack("{s:i, s:[]}", "version", 1, "services"), *b, *ia, *ib, *d;
	size_t items;

	for (int i = 0; i < 1000; i++)
		json_array_append_new(json_object_get(a, "services"), svc(i, i));
	b = json_deep_copy(a);
	json_array_set_new(json_object_get(b, "services"), 500, svc(500, 9999));
	ia = sd_index(a, NULL);
	ib = sd_index(b, NULL);
	d = sd_delta(ia, ib, &items);
	cr_assert_eq(items, 2);   /* the new item set, the old one deleted */
	cr_assert_eq(json_object_size(json_object_get(json_object_get(d, "services"), "set")), 1);
	cr_assert_eq(json_array_size(json_object_get(json_object_get(d, "services"), "del")), 1);
	json_decref(d);
	json_decref(ia);
	json_decref(ib);
	json_decref(a);
	json_decref(b);
}

Test(snapdelta, round_trip_through_snapshot)
{
	unsigned int seed = 11;
	json_t *a = random_snap(&seed), *ia = sd_index(a, NULL);
	json_t *back = sd_snapshot(ia, 42), *ib = sd_index(back, NULL);

	cr_assert_eq(json_integer_value(json_object_get(back, "version")), 42);
	cr_assert(json_equal(ia, ib));
	cr_assert_eq(json_array_size(json_object_get(back, "policies")),
		     json_array_size(json_object_get(a, "policies")));
	json_decref(a);
	json_decref(ia);
	json_decref(back);
	json_decref(ib);
}

Test(snapdelta, misfit_changes_nothing)
{
	json_t *a = json_pack("{s:[o, o]}", "services", svc(1, 1), svc(2, 2));
	json_t *ia = sd_index(a, NULL), *orig = json_deep_copy(ia), *undo = NULL;
	char err[256], key[SD_KEY_MAX];
	const char *k0 = NULL, *k;
	json_t *v, *bad;

	json_object_foreach(json_object_get(ia, "services"), k, v)
		k0 = k0 ? k0 : k;
	snprintf(key, sizeof(key), "%s", k0);
	/* a valid part first, then a delete of a key that is not there */
	bad = json_pack("{s:{s:[], s:{}}, s:{s:{}, s:[s]}}", "policies", "del", "set",
			"services", "set", "del", "00000000000000000000000000000000");
	cr_assert_lt(sd_apply(ia, bad, &undo, err, sizeof(err)), 0);
	cr_assert(strstr(err, "services.del[0]"), "%s", err);
	cr_assert(json_equal(ia, orig));
	cr_assert_null(undo);
	json_decref(bad);
	/* setting an item that is there already */
	bad = json_pack("{s:{s:{s:o}, s:[]}}", "services", "set", key, svc(1, 1), "del");
	cr_assert_lt(sd_apply(ia, bad, NULL, err, sizeof(err)), 0);
	cr_assert(strstr(err, "already"), "%s", err);
	cr_assert(json_equal(ia, orig));
	json_decref(bad);
	/* not a delta's shape */
	bad = json_pack("{s:i}", "services", 3);
	cr_assert_lt(sd_apply(ia, bad, NULL, err, sizeof(err)), 0);
	cr_assert(json_equal(ia, orig));
	json_decref(bad);
	json_decref(orig);
	json_decref(ia);
	json_decref(a);
}

Test(snapdelta, pool_shares_equal_items)
{
	json_t *pool = json_object();
	json_t *a = json_pack("{s:[o, o]}", "services", svc(1, 1), svc(2, 2));
	json_t *b = json_pack("{s:[o, o]}", "services", svc(1, 1), svc(3, 3));
	json_t *ia = sd_index(a, pool), *ib = sd_index(b, pool);
	const char *k;
	json_t *v;
	int shared = 0;

	cr_assert_eq(json_object_size(pool), 3);
	json_object_foreach(json_object_get(ia, "services"), k, v)
		shared += json_object_get(json_object_get(ib, "services"), k) == v;
	cr_assert_eq(shared, 1);
	json_decref(a);
	json_decref(b);
	json_decref(ib);
	sd_pool_prune(pool);
	cr_assert_eq(json_object_size(pool), 2);   /* svc 3 was only b's */
	json_decref(ia);
	sd_pool_prune(pool);
	cr_assert_eq(json_object_size(pool), 0);
	json_decref(pool);
}

Test(snapdelta, object_section_refused)
{
	json_t *a = json_pack("{s:{}}", "services");

	cr_assert_null(sd_index(a, NULL));
	json_decref(a);
}

/* A packed index (items kept as their text) takes packed deltas and gives
 * the same snapshot text as the unpacked one: what the agent keeps. */
Test(snapdelta, packed_index_applies_deltas_and_writes_the_same_text)
{
	unsigned int seed = 13;
	char err[256];

	for (int round = 0; round < 200; round++) {
		json_t *a = random_snap(&seed), *b = random_snap(&seed);
		json_t *ia = sd_index(a, NULL), *ib = sd_index(b, NULL), *d, *pd, *back, *iback, *want;
		char *text, *wtext;
		size_t len, items;

		d = sd_delta(ia, ib, &items);
		pd = json_deep_copy(d);
		cr_assert_eq(sd_pack(ia), 0);
		cr_assert_eq(sd_pack_delta(pd), 0);
		cr_assert_eq(sd_apply(ia, pd, NULL, err, sizeof(err)), 0, "%s", err);
		text = sd_text(ia, 9, &len);
		cr_assert(text);
		cr_assert_eq(strlen(text), len);
		want = sd_snapshot(ib, 9);
		wtext = json_dumps(want, JSON_COMPACT);
		back = json_loads(text, 0, NULL);
		cr_assert(back, "round %d: sd_text is not JSON: %s", round, text);
		/* item order carries no meaning: compare as sets */
		iback = sd_index(back, NULL);
		cr_assert(json_equal(iback, ib), "round %d: %s\n!= %s", round, text, wtext);
		cr_assert_eq(json_integer_value(json_object_get(back, "version")), 9);
		json_decref(iback);
		free(text);
		free(wtext);
		json_decref(back);
		json_decref(want);
		json_decref(pd);
		json_decref(d);
		json_decref(ia);
		json_decref(ib);
		json_decref(a);
		json_decref(b);
	}
}

/* The delta walks both sets side by side; sets whose common items come
 * in another order (shuffled, or reversed) still give the exact delta. */
Test(snapdelta, delta_of_sets_in_another_order)
{
	unsigned int seed = 41;
	char err[256];

	for (int round = 0; round < 300; round++) {
		json_t *a = random_snap(&seed), *b = random_snap(&seed), *ia, *ib, *d;
		json_t *arr = json_object_get(b, "services");
		size_t n = json_array_size(arr);

		for (size_t i = n; i > 1; i--) {   /* even rounds: each last item to the front */
			size_t j = round % 2 ? (size_t)rand_r(&seed) % i : 0;
			json_t *x = json_incref(json_array_get(arr, i - 1));

			json_array_set(arr, i - 1, json_array_get(arr, j));
			json_array_set_new(arr, j, x);
		}
		ia = sd_index(a, NULL);
		ib = sd_index(b, NULL);
		d = sd_delta(ia, ib, NULL);
		cr_assert(d);
		cr_assert_eq(sd_apply(ia, d, NULL, err, sizeof(err)), 0, "%s", err);
		cr_assert(json_equal(ia, ib), "round %d: A + delta(A, B) != B", round);
		json_decref(d);
		json_decref(ia);
		json_decref(ib);
		json_decref(a);
		json_decref(b);
	}
}

/* A delta's text with its items packed is the JSON of the delta itself:
 * what sluice-control sends from its packed services. */
Test(snapdelta, packed_delta_text_is_the_delta)
{
	unsigned int seed = 29;

	for (int round = 0; round < 200; round++) {
		json_t *a = random_snap(&seed), *b = random_snap(&seed);
		json_t *ia = sd_index(a, NULL), *ib = sd_index(b, NULL), *d, *pd, *back;
		char *text;
		size_t len;

		d = sd_delta(round % 3 ? ia : NULL, ib, NULL);
		pd = json_deep_copy(d);
		cr_assert_eq(sd_pack_delta(pd), 0);
		text = sd_delta_text(round % 2 ? pd : d, &len);
		cr_assert(text);
		cr_assert_eq(strlen(text), len);
		back = json_loads(text, 0, NULL);
		cr_assert(back, "round %d: not JSON: %s", round, text);
		cr_assert(json_equal(back, d), "round %d: %s", round, text);
		free(text);
		json_decref(back);
		json_decref(pd);
		json_decref(d);
		json_decref(ia);
		json_decref(ib);
		json_decref(a);
		json_decref(b);
	}
}

/* The data plane's decoder reads packed items as it reads objects; text
 * that is not JSON is refused as an item that is not an object. */
Test(snapdelta, packed_items_decode_like_objects)
{
	json_t *a = json_pack("{s:i, s:[]}", "version", 3, "services"), *ia, *packed;
	struct snapshot s1, s2;
	char err[256];

	for (int i = 0; i < 100; i++)
		json_array_append_new(json_object_get(a, "services"), svc(i, 1000 + i));
	ia = sd_index(a, NULL);
	cr_assert_eq(sd_pack(ia), 0);
	packed = sd_snapshot(ia, 3);
	cr_assert(json_is_string(json_array_get(json_object_get(packed, "services"), 0)));
	cr_assert_eq(snapshot_from_json(a, "objects", &s1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(snapshot_from_json(packed, "packed", &s2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s1.nservices, s2.nservices);
	for (size_t i = 0; i < s1.nservices; i++) {
		const struct snap_service *x = &s1.services[i], *y = NULL;

		for (size_t k = 0; k < s2.nservices && !y; k++)
			if (!memcmp(&s2.services[k].key, &x->key, sizeof(x->key)))
				y = &s2.services[k];
		cr_assert(y, "service %s missing from the packed decode", x->name);
		cr_assert_str_eq(y->name, x->name);
		cr_assert_eq(y->nbackends, x->nbackends);
		cr_assert(!memcmp(y->backends, x->backends, x->nbackends * sizeof(*x->backends)));
	}
	snapshot_free(&s1);
	snapshot_free(&s2);
	json_array_set_new(json_object_get(packed, "services"), 0, json_string("{\"name\":"));
	cr_assert_eq(snapshot_from_json(packed, "broken", &s2, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "services[0]") && strstr(err, "must be an object"), "%s", err);
	json_decref(packed);
	json_decref(ia);
	json_decref(a);
}

/* The same services, in any order (name, key, backends, traffic). */
static void assert_same_services(const struct snapshot *x, const struct snapshot *y, int round)
{
	cr_assert_eq(x->nservices, y->nservices, "round %d: %zu services, want %zu", round,
		     x->nservices, y->nservices);
	for (size_t i = 0; i < y->nservices; i++) {
		const struct snap_service *w = &y->services[i], *g = NULL;

		for (size_t k = 0; k < x->nservices && !g; k++)
			if (!memcmp(&x->services[k].key, &w->key, sizeof(w->key)))
				g = &x->services[k];
		cr_assert(g, "round %d: service %s missing", round, w->name);
		cr_assert_str_eq(g->name, w->name);
		cr_assert_eq(g->nbackends, w->nbackends, "round %d: %s", round, w->name);
		cr_assert(!memcmp(g->backends, w->backends, w->nbackends * sizeof(*w->backends)),
			  "round %d: %s: other backends", round, w->name);
		cr_assert_eq(g->has_traffic, w->has_traffic);
	}
}

/* The agent's path: deltas applied to a packed index, each result decoded
 * with the cache of the one before, decode as the uncached whole; the
 * cache then holds exactly the services of the snapshot; a refused
 * snapshot empties it and the next decode parses everything again. */
Test(snapdelta, cached_decode_is_the_uncached_decode)
{
	unsigned int seed = 29;
	json_t *a = random_snap(&seed), *idx;
	struct snap_cache cache = {};
	struct snapshot got, want;
	char err[256];

	json_object_del(a, "policies");   /* random_snap's are not valid ones */
	idx = sd_index(a, NULL);
	cr_assert_eq(sd_pack(idx), 0);
	for (int round = 0; round < 300; round++) {
		json_t *b = random_snap(&seed), *ib, *d, *doc;
		size_t items;

		json_object_del(b, "policies");
		ib = sd_index(b, NULL);

		d = sd_delta(idx, ib, &items);
		cr_assert_eq(sd_pack_delta(d), 0);
		cr_assert_eq(sd_apply(idx, d, NULL, err, sizeof(err)), 0, "%s", err);
		doc = sd_snapshot(idx, (uint64_t)round);
		if (round % 50 == 49) {
			/* a duplicate VIP: refused, cache emptied */
			json_t *svcs = json_object_get(doc, "services");

			json_array_append_new(svcs, svc(1000, 1));
			json_array_append_new(svcs, svc(1000, 2));
			cr_assert_eq(snapshot_from_json_cached(doc, "bad", &got, &cache, err,
							       sizeof(err)), -EINVAL);
			cr_assert_eq(cache.n, 0);
			json_array_remove(svcs, json_array_size(svcs) - 1);
			json_array_remove(svcs, json_array_size(svcs) - 1);
		}
		cr_assert_eq(snapshot_from_json_cached(doc, "cached", &got, &cache, err, sizeof(err)),
			     0, "%s", err);
		cr_assert_eq(snapshot_from_json(b, "whole", &want, err, sizeof(err)), 0, "%s", err);
		assert_same_services(&got, &want, round);
		cr_assert_eq(cache.n, got.nservices, "round %d: cache holds %zu of %zu", round,
			     cache.n, got.nservices);
		for (size_t i = 1; i < cache.n; i++)
			cr_assert((uintptr_t)cache.e[i - 1].item <= (uintptr_t)cache.e[i].item);
		snapshot_free(&got);
		snapshot_free(&want);
		json_decref(doc);
		json_decref(d);
		json_decref(ib);
		json_decref(b);
	}
	snap_cache_free(&cache);
	cr_assert_eq(cache.n, 0);
	json_decref(idx);
	json_decref(a);
}

/* Items the caller still has as objects (snap_cache.fresh: a delta's,
 * before packing) are parsed from those objects, not decoded from their
 * text; other items are decoded as before; the hint is for one call. */
Test(snapdelta, fresh_items_are_parsed_from_their_objects)
{
	json_t *doc = json_pack("{s:i, s:[]}", "version", 1, "services"), *objs[3];
	struct snap_cache cache = {};
	struct snap_fresh fresh[2];
	struct snapshot got;
	char err[256];

	for (int i = 0; i < 3; i++) {
		objs[i] = svc(i, i + 1);
		json_array_append_new(json_object_get(doc, "services"), sd_packed(objs[i]));
	}
	/* service 0's object says otherwise than its text: proof of which
	 * was parsed; service 1's is its own; service 2 has no hint and is
	 * decoded from its text */
	json_object_set_new(objs[0], "name", json_string("default/from-the-object"));
	fresh[0] = (struct snap_fresh){ json_array_get(json_object_get(doc, "services"), 0), objs[0] };
	fresh[1] = (struct snap_fresh){ json_array_get(json_object_get(doc, "services"), 1), objs[1] };
	snap_fresh_sort(fresh, 2);
	cache.fresh = fresh;
	cache.nfresh = 2;
	cr_assert_eq(snapshot_from_json_cached(doc, "fresh", &got, &cache, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(got.services[0].name, "default/from-the-object");
	cr_assert_str_eq(got.services[1].name, "default/s1");
	cr_assert_str_eq(got.services[2].name, "default/s2");
	cr_assert_eq(got.services[1].backends[0].be.addr[3], htonl(0x0af40002));   /* 10.244.0.2 */
	cr_assert_null(cache.fresh, "the hint is for that call only");
	snapshot_free(&got);
	/* cached now: the next call takes its parse, whatever the hint */
	cr_assert_eq(snapshot_from_json_cached(doc, "again", &got, &cache, err, sizeof(err)), 0);
	cr_assert_str_eq(got.services[0].name, "default/from-the-object");
	snapshot_free(&got);
	snap_cache_free(&cache);
	for (int i = 0; i < 3; i++)
		json_decref(objs[i]);
	json_decref(doc);
}

/* A snapshot with every section, compact and "version" first: as sd_text()
 * writes it from its index, byte for byte (the saved last good snapshot). */
static const char every_section[] =
	"{\"version\":7,"
	"\"services\":[{\"name\":\"default/web\",\"vip\":\"10.96.0.10\",\"port\":80,"
	"\"protocol\":\"TCP\",\"backends\":[{\"address\":\"10.244.1.2\",\"port\":8080,"
	"\"weight\":1},{\"address\":\"10.244.2.3\",\"port\":8080,\"weight\":2}]},"
	"{\"name\":\"default/dns\",\"vip\":\"10.96.0.53\",\"port\":53,\"protocol\":\"UDP\","
	"\"backends\":[{\"address\":\"10.244.2.3\",\"port\":5353,\"weight\":1}]},"
	"{\"name\":\"default/web6\",\"vip\":\"fd00:96::10\",\"port\":80,\"protocol\":\"TCP\","
	"\"backends\":[{\"address\":\"fd00:244:1::2\",\"port\":8080,\"weight\":1}]}],"
	"\"identities\":[{\"id\":256,\"spiffe\":\"spiffe://cluster.local/ns/default/sa/web\"},"
	"{\"id\":257,\"spiffe\":\"spiffe://cluster.local/ns/shop/sa/db\"}],"
	"\"cidrs\":[{\"cidr\":\"203.0.113.0/24\",\"identity\":259}],"
	"\"workloads\":[{\"name\":\"web-1\",\"namespace\":\"default\",\"identity\":256,"
	"\"ipv4\":\"10.244.1.2\",\"ipv6\":\"fd00:244:1::2\",\"netns\":\"/run/netns/web-1\","
	"\"interface\":\"p1\",\"node\":\"node1\"},{\"name\":\"db-1\",\"namespace\":\"shop\","
	"\"identity\":257,\"ipv4\":\"10.244.2.3\",\"node\":\"node2\",\"mtls\":\"STRICT\","
	"\"mtls_ports\":[{\"port\":9000,\"mode\":\"DISABLE\"}]}],"
	"\"policies\":[{\"action\":\"ALLOW\",\"source\":256,\"destination\":257,"
	"\"protocol\":\"TCP\",\"port\":9000},{\"action\":\"ALLOW\",\"source\":259,"
	"\"destination\":256,\"port\":8080},{\"action\":\"DENY\",\"source\":\"*\","
	"\"destination\":257,\"protocol\":\"UDP\"}],"
	"\"nodes\":[{\"name\":\"node1\",\"hbone\":\"192.168.77.1:15008\"},{\"name\":\"node2\","
	"\"hbone\":\"192.168.77.2:15008\"}]}";

/* n elements at x and at y are the same bytes (none: NULL allowed). */
static bool same(const void *x, const void *y, size_t n, size_t size)
{
	return n == 0 || !memcmp(x, y, n * size);
}

/* The same identities, CIDRs, workloads, policies and nodes, decoded. */
static void assert_same_but_services(const struct snapshot *x, const struct snapshot *y)
{
	cr_assert_eq(x->version, y->version);
	cr_assert_eq(x->nidentities, y->nidentities);
	cr_assert(same(x->identities, y->identities, x->nidentities, sizeof(*x->identities)));
	cr_assert_eq(x->ncidrs, y->ncidrs);
	cr_assert(same(x->cidrs, y->cidrs, x->ncidrs, sizeof(*x->cidrs)));
	cr_assert_eq(x->npolicies, y->npolicies);
	cr_assert(same(x->policies, y->policies, x->npolicies, sizeof(*x->policies)));
	cr_assert_eq(x->nnodes, y->nnodes);
	cr_assert(same(x->nodes, y->nodes, x->nnodes, sizeof(*x->nodes)));
	cr_assert_eq(x->nworkloads, y->nworkloads);
	for (size_t i = 0; i < x->nworkloads; i++) {
		struct snap_workload a, b;

		/* bytes, padding included: the parser callocs them */
		memcpy(&a, &x->workloads[i], sizeof(a));
		memcpy(&b, &y->workloads[i], sizeof(b));
		cr_assert_eq(a.nmtls_ports, b.nmtls_ports, "workloads[%zu]", i);
		cr_assert(same(a.mtls_ports, b.mtls_ports, a.nmtls_ports, sizeof(*a.mtls_ports)));
		a.mtls_ports = b.mtls_ports = NULL;
		cr_assert(!memcmp(&a, &b, sizeof(a)), "workloads[%zu] decodes otherwise", i);
	}
}

/* The node proxy's text: the snapshot with "services":[] and every other
 * section as it is, which the proxy's parser takes; the whole text stays
 * what it was. Packed or not. */
Test(snapdelta, text_without_services_keeps_the_rest)
{
	static const char *const skip[] = { "services", NULL };

	for (int packed = 0; packed < 2; packed++) {
		json_t *a = json_loads(every_section, 0, NULL), *idx = sd_index(a, NULL);
		struct snapshot whole, px;
		char *full, *ptext, *want, err[256];
		size_t flen, plen;

		cr_assert(idx);
		cr_assert_eq(packed ? sd_pack(idx) : 0, 0);
		full = sd_text(idx, 7, &flen);
		cr_assert_str_eq(full, every_section, "packed %d", packed);
		cr_assert_eq(flen, strlen(full));
		ptext = sd_text_without(idx, 7, skip, &plen);
		cr_assert(ptext);
		cr_assert_eq(plen, strlen(ptext));
		json_object_set_new(a, "services", json_array());   /* keeps its place */
		want = json_dumps(a, JSON_COMPACT);
		cr_assert_str_eq(ptext, want, "packed %d", packed);
		cr_assert_eq(snapshot_parse(full, flen, "whole", &whole, err, sizeof(err)), 0, "%s",
			     err);
		cr_assert_eq(snapshot_parse(ptext, plen, "proxy", &px, err, sizeof(err)), 0, "%s",
			     err);
		cr_assert_eq(whole.nservices, 3);
		cr_assert_eq(px.nservices, 0);
		cr_assert(whole.nworkloads && whole.nidentities && whole.npolicies && whole.nnodes &&
			  whole.ncidrs);
		assert_same_but_services(&whole, &px);
		snapshot_free(&whole);
		snapshot_free(&px);
		free(want);
		free(ptext);
		free(full);
		json_decref(idx);
		json_decref(a);
	}
}

/* Over random snapshots, packed or not: sd_text() is the compact dump of
 * sd_snapshot() (of the unpacked index), and sd_text_without() that dump
 * with the named sections (those there) emptied; a named section that is
 * not there stays absent. */
Test(snapdelta, text_without_is_the_dump_with_sections_emptied)
{
	static const char *const skip[] = { "services", "nodes", "absent", NULL };
	unsigned int seed = 37;

	for (int round = 0; round < 200; round++) {
		json_t *a = random_snap(&seed), *idx = sd_index(a, NULL), *doc;
		char *text, *want, *ptext, *pwant;

		/* the dumps of the unpacked form; then packed in odd rounds */
		doc = sd_snapshot(idx, (uint64_t)round);
		want = json_dumps(doc, JSON_COMPACT);
		cr_assert_eq(round % 2 ? sd_pack(idx) : 0, 0);
		text = sd_text(idx, (uint64_t)round, NULL);
		cr_assert_str_eq(text, want, "round %d", round);
		for (const char *const *k = skip; *k; k++)
			if (json_object_get(doc, *k))
				json_object_set_new(doc, *k, json_array());
		ptext = sd_text_without(idx, (uint64_t)round, skip, NULL);
		pwant = json_dumps(doc, JSON_COMPACT);
		cr_assert_str_eq(ptext, pwant, "round %d", round);
		cr_assert_null(strstr(ptext, "absent"));
		free(pwant);
		free(ptext);
		free(want);
		free(text);
		json_decref(doc);
		json_decref(idx);
		json_decref(a);
	}
}

/* Nodes whose indexes share the services' sets (the control plane's
 * node-independent services) and hold their other sections alone get,
 * through one memo, deltas equal to sd_delta's; the services part is
 * compared once for all twelve, however many sections of their own the
 * nodes between bring. */
Test(snapdelta, shared_sets_are_compared_once)
{
	unsigned int seed = 11;

	for (int round = 0; round < 100; round++) {
		json_t *a = random_snap(&seed), *b = random_snap(&seed);
		json_t *ga = sd_index(a, NULL), *gb = sd_index(b, NULL);
		json_t *sa = json_pack("{s:O}", "services", json_object_get(ga, "services"));
		json_t *sb = json_pack("{s:O}", "services", json_object_get(gb, "services"));
		json_t *first = NULL;
		struct sd_memo memo = {};

		for (int node = 0; node < 12; node++) {
			json_t *na = sd_index_with(a, NULL, sa), *nb = sd_index_with(b, NULL, sb);
			json_t *d, *want;
			size_t items, want_items;

			d = sd_delta_shared(na, nb, &items, &memo);
			want = sd_delta(na, nb, &want_items);
			cr_assert(d && want);
			cr_assert(json_equal(d, want), "round %d node %d: a memo changed a delta",
				  round, node);
			cr_assert_eq(items, want_items, "round %d node %d: items", round, node);
			if (node == 0)
				first = json_incref(json_object_get(d, "services"));
			else
				cr_assert_eq(json_object_get(d, "services"), first,
					     "round %d node %d: the shared sets were compared again",
					     round, node);
			json_decref(d);
			json_decref(want);
			json_decref(na);
			json_decref(nb);
		}
		sd_memo_free(&memo);
		json_decref(first);
		json_decref(sa);
		json_decref(sb);
		json_decref(ga);
		json_decref(gb);
		json_decref(a);
		json_decref(b);
	}
}

/* Keys and packed texts are written without jansson's writer: they must be
 * its bytes (keys are hashes of the text, compared with those of other
 * versions' control planes and journals). Items of every JSON type, keys
 * out of order and more than 16 of them, escapes and reals. */
Test(snapdelta, keys_and_packed_texts_are_janssons)
{
	static const char *const items[] = {
		"{\"vip\":\"10.96.0.1\",\"name\":\"a/b\",\"port\":80,\"backends\":[{\"weight\":3,"
		"\"address\":\"10.0.0.1\",\"port\":8080}],\"traffic\":{\"lb\":\"LEAST_REQUEST\","
		"\"ejection\":{\"base_ms\":30000,\"max_percent\":10,\"share\":0.1,\"big\":1e300,"
		"\"small\":-2.5e-7,\"whole\":3.0}}}",
		"{\"q\":\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\\u00e9\\ud83d\\ude00/\",\"t\":true,"
		"\"f\":false,\"n\":null,\"e\":{},\"a\":[],\"neg\":-9223372036854775807}",
		"{\"k16\":16,\"k15\":15,\"k14\":14,\"k13\":13,\"k12\":12,\"k11\":11,\"k10\":10,"
		"\"k09\":9,\"k08\":8,\"k07\":7,\"k06\":6,\"k05\":5,\"k04\":4,\"k03\":3,\"k02\":2,"
		"\"k01\":1,\"k00\":0,\"K\":[{\"z\":1,\"y\":{\"b\":2,\"a\":1}}]}",
		"\"just a string\"", "[1,2.5,\"x\"]", "42",
	};

	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		json_t *item = json_loads(items[i], JSON_DECODE_ANY, NULL), *packed, *plain;
		char *sorted, *compact, key[SD_KEY_MAX], key2[SD_KEY_MAX];

		cr_assert_not_null(item, "%s", items[i]);
		sorted = json_dumps(item, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		compact = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
		cr_assert_eq(sd_item_key_packed(item, key, &packed), 0);
		cr_assert_str_eq(json_string_value(packed), sorted);
		cr_assert_eq(sd_item_key(item, key2), 0);
		cr_assert_str_eq(key, key2);
		plain = sd_packed(item);
		cr_assert_not_null(plain);
		if (json_is_string(item))
			cr_assert_eq(plain, item, "a packed item is itself");
		else
			cr_assert_str_eq(json_string_value(plain), compact);
		free(sorted);
		free(compact);
		json_decref(packed);
		json_decref(plain);
		json_decref(item);
	}
}
