// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What the agent writes into the load balancer's maps (lib/node/lbmap.h),
 * on the real kernel with the whole datapath loaded (dpt.h): only the
 * difference, the same whether an apply starts from what the last one left
 * or from the maps, capacity checked first, Maglev tables for SOURCE_HASH,
 * ids that rotate, traffic-policy states given back. Needs root; skips
 * without it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>

#include "bpf/sock.skel.h"
#include "bpft.h"
#include "dpt.h"
#include "lib/core/bpfmap.h"
#include "lib/core/sys.h"
#include "lib/node/snapshot.h"

TestSuite(lbmap, .init = dpt_setup, .fini = dpt_teardown, .timeout = 60);

Test(lbmap, reconcile_writes_only_the_difference)
{
	struct lb_apply_stats st = {};
	struct lb_live live;
	struct snapshot s;
	char err[256];
	const char *two = SNAP_WEB;
	const char *one = "{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80,"
			  " \"backends\": [{\"address\": \"127.0.0.3\", \"port\": 8080}]}]}";
	int l[2];

	DPT_REQUIRE_ROOT();
	l[0] = dpt_listener("127.0.0.2", 8080, SOCK_STREAM);
	l[1] = dpt_listener("127.0.0.3", 8080, SOCK_STREAM);
	dpt_apply(two);
	cr_assert_eq(lbmap_read(&dpt.dp.maps, &live), 0);
	cr_assert_eq(live.nsvc, 1);
	cr_assert_eq(live.svc[0].val.count, 4);
	cr_assert_eq(live.svc[0].val.gen, 0);
	cr_assert_eq(live.nbe, 2);
	lb_live_free(&live);

	/* the same snapshot again: nothing written */
	cr_assert_eq(snapshot_parse(two, strlen(two), "t", &s, err, sizeof(err)), 0);
	cr_assert_eq(lbmap_apply(&dpt.dp.maps, &s, &st, err, sizeof(err)), 0);
	cr_assert_eq(st.svc_unchanged, 1);
	cr_assert_eq(st.svc_added + st.svc_updated + st.svc_removed + st.be_added + st.be_removed, 0);
	snapshot_free(&s);

	/* drop a backend: the service flips generation, old slots and the
	 * unused backend are gone, and no connection reaches it any more */
	cr_assert_eq(snapshot_parse(one, strlen(one), "t", &s, err, sizeof(err)), 0);
	cr_assert_eq(lbmap_apply(&dpt.dp.maps, &s, &st, err, sizeof(err)), 0);
	cr_assert_eq(st.svc_updated, 1);
	cr_assert_eq(st.be_removed, 1);
	snapshot_free(&s);
	cr_assert_eq(lbmap_read(&dpt.dp.maps, &live), 0);
	cr_assert_eq(live.svc[0].val.gen, 1);
	cr_assert_eq(live.svc[0].val.count, 1);
	cr_assert_eq(live.nbe, 1);
	cr_assert_eq(live.nslotkeys, 1, "stale slots left: %zu", live.nslotkeys);
	lb_live_free(&live);
	for (int i = 0; i < 50; i++) {
		int fd = dpt_connect(AF_INET, "10.96.0.10", 80);

		cr_assert_geq(fd, 0);
		cr_assert_eq(dpt_accepted_by(l, 2), 1, "connection %d went to the removed backend", i);
		close(fd);
	}

	/* remove everything */
	dpt_apply("{\"services\": []}");
	cr_assert_eq(map_count_keys(dpt.dp.maps.svc_fd, sizeof(struct sl_svc_key)), 0);
	cr_assert_eq(map_count_keys(dpt.dp.maps.slot_fd, sizeof(struct sl_slot_key)), 0);
	cr_assert_eq(map_count_keys(dpt.dp.maps.be_fd, sizeof(__u32)), 0);
}

/* A SOURCE_HASH service over backends 127.0.0.FIRST.. (n of them). */
static void apply_hash(int first, int n)
{
	char json[2048];
	size_t k;

	k = (size_t)snprintf(json, sizeof(json), "{\"services\": [{\"name\": \"h\", "
			     "\"vip\": \"10.96.0.30\", \"port\": 80, \"traffic\": "
			     "{\"lb\": \"SOURCE_HASH\"}, \"backends\": [");
	for (int i = 0; i < n; i++)
		k += (size_t)snprintf(json + k, sizeof(json) - k, "%s{\"address\": \"127.0.0.%d\", "
				      "\"port\": 8080}", i ? ", " : "", first + i);
	snprintf(json + k, sizeof(json) - k, "]}]}");
	dpt_apply(json);
}

/* The hash table's backends, by address, from the maps. */
static uint32_t *hash_table(uint32_t *count)
{
	struct lb_live live;
	uint32_t *t;

	cr_assert_eq(lbmap_read(&dpt.dp.maps, &live), 0);
	cr_assert_eq(live.nsvc, 1);
	cr_assert_eq(live.svc[0].val.wunit, 0, "not a table: weight unit %u", live.svc[0].val.wunit);
	*count = live.svc[0].val.count;
	t = calloc(*count, sizeof(*t));
	cr_assert(t);
	for (uint32_t i = 0; i < *count; i++) {
		const struct live_be *b = lb_live_backend(&live, live.svc[0].slots[i]);

		cr_assert(b, "slot %u: backend %u missing", i, live.svc[0].slots[i]);
		t[i] = ntohl(b->be.addr[3]);
	}
	lb_live_free(&live);
	return t;
}

/* Clients of the backends that stay keep them when one goes (what the
 * BPF side hashes a client to is an index into this table), and every
 * client of a service still reaches one of its backends. */
Test(lbmap, source_hash_slots_are_a_table_that_keeps_clients)
{
	uint32_t na, nb, stay = 0, kept = 0, *a, *b;
	int l[6], fd, who;

	DPT_REQUIRE_ROOT();
	for (int i = 0; i < 6; i++) {
		char ip[16];

		snprintf(ip, sizeof(ip), "127.0.0.%d", 2 + i);
		l[i] = dpt_listener(ip, 8080, SOCK_STREAM);
	}
	apply_hash(2, 6);
	a = hash_table(&na);
	apply_hash(2, 5);   /* 127.0.0.7 goes */
	b = hash_table(&nb);
	cr_assert_eq(na, nb, "the table's size changed: %u -> %u", na, nb);
	for (uint32_t i = 0; i < na; i++) {
		if (a[i] == 0x7f000007)
			continue;
		stay++;
		kept += a[i] == b[i];
	}
	cr_assert_geq(kept, stay * 95 / 100, "%u of %u entries of the other backends kept", kept,
		      stay);
	for (int i = 0; i < 20; i++) {
		fd = dpt_connect(AF_INET, "10.96.0.30", 80);
		cr_assert_geq(fd, 0);
		who = dpt_accepted_by(l, 6);
		cr_assert(who >= 0 && who < 5, "connection %d: accepted by listener %d", i, who);
		close(fd);
	}
	free(a);
	free(b);
}

/* A removed service's id is not the next new service's: open connections
 * may still count against it (traffic policy states). */
Test(lbmap, service_ids_rotate)
{
	struct lb_live live;
	uint32_t first;

	DPT_REQUIRE_ROOT();
	dpt_apply(SNAP_WEB);
	cr_assert_eq(lbmap_read(&dpt.dp.maps, &live), 0);
	first = live.svc[0].val.svc_id;
	lb_live_free(&live);
	dpt_apply("{\"services\": []}");
	apply_hash(2, 2);
	cr_assert_eq(lbmap_read(&dpt.dp.maps, &live), 0);
	cr_assert_neq(live.svc[0].val.svc_id, first, "id %u given again at once", first);
	lb_live_free(&live);
}

#define SNAP_OD(bad)                                                                \
	"{\"services\": [{\"name\": \"od\", \"vip\": \"10.96.0.40\", \"port\": 80,"     \
	" \"traffic\": {\"outlier\": {\"consecutive_errors\": 1, \"max_ejection_percent\": 50,"\
	" \"base_ejection_ms\": 600000}},"                                               \
	" \"backends\": [{\"address\": \"" bad "\", \"port\": 8081},"                    \
	"              {\"address\": \"127.0.0.3\", \"port\": 8081}]}]}"

static struct sl_svc_state svc_state(uint32_t *svc_id)
{
	struct sl_svc_state st = {};
	struct lb_live live;

	cr_assert_eq(lbmap_read(&dpt.dp.maps, &live), 0);
	cr_assert_eq(live.nsvc, 1);
	*svc_id = live.svc[0].val.svc_id;
	lb_live_free(&live);
	cr_assert_eq(bpf_map_lookup_elem(dpt.dp.maps.st_fd, svc_id, &st), 0);
	return st;
}

/* A backend removed while ejected gives its place in the service's count
 * of ejected backends back (bpf/admin.bpf.c): otherwise each crashing pod
 * replaced while ejected would use up maxEjectionPercent for good. */
Test(lbmap, a_backend_removed_while_ejected_is_no_longer_counted)
{
	struct sl_svc_state st;
	struct sl_be_key k = {};
	struct sl_be_state bs;
	uint32_t id, bid = 0;
	struct lb_live live;
	int l, i;

	DPT_REQUIRE_ROOT();
	l = dpt_listener("127.0.0.3", 8081, SOCK_STREAM);
	dpt_apply(SNAP_OD("127.0.0.2"));   /* nothing listens there: RST to the SYN */
	for (i = 0; i < 50 && svc_state(&id).ejected == 0; i++) {
		int fd = dpt_connect(AF_INET, "10.96.0.40", 80);

		if (fd >= 0)
			close(fd);
		dpt_accepted_by(&l, 1);
	}
	st = svc_state(&id);
	cr_assert_eq(st.ejected, 1, "127.0.0.2 not ejected after %d connects", i);
	cr_assert_eq(lbmap_read(&dpt.dp.maps, &live), 0);
	for (size_t j = 0; j < live.nbe; j++)
		if (live.be[j].be.addr[3] == htonl(0x7f000002))
			bid = live.be[j].id;
	lb_live_free(&live);
	k = (struct sl_be_key){ .svc_id = id, .backend_id = bid };
	cr_assert_eq(bpf_map_lookup_elem(dpt.dp.maps.bst_fd, &k, &bs), 0);
	cr_assert_neq(bs.until, 0);

	dpt_apply(SNAP_OD("127.0.0.4"));   /* the ejected pod is replaced */
	st = svc_state(&id);
	cr_assert_eq(st.ejected, 0, "the removed backend still counts as ejected");
	cr_assert_eq(st.ejections, 1);
	cr_assert_neq(bpf_map_lookup_elem(dpt.dp.maps.bst_fd, &k, &bs), 0, "its state is still there");
	close(l);
}

#define SNAP_POOL_UDP                                                               \
	"{\"services\": [{\"name\": \"pool\", \"vip\": \"10.96.0.41\", \"port\": 53,"     \
	" \"protocol\": \"UDP\", \"traffic\": {\"max_connections\": 2},"                   \
	" \"backends\": [{\"address\": \"127.0.0.2\", \"port\": 5353}]}]}"

static int udp_connect(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = bpft_sockaddr("10.96.0.41", 53, &ss);

	return connect(fd, (struct sockaddr *)&ss, len) ? -errno : 0;
}

static uint32_t pool_active(void)
{
	uint32_t id;

	return svc_state(&id).active;
}

/* A socket that connects again holds one slot, not two: the one it held
 * is given back, with room in the pool and with the pool full; a refused
 * socket is counted as an overflow; close gives the slot back. */
Test(lbmap, a_socket_that_connects_again_holds_one_slot)
{
	int l, fd[3], err;
	uint32_t id;

	DPT_REQUIRE_ROOT();
	l = dpt_listener("127.0.0.2", 5353, SOCK_DGRAM);
	dpt_apply(SNAP_POOL_UDP);
	for (int i = 0; i < 3; i++) {
		fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fd[i], 0);
	}
	cr_assert_eq(udp_connect(fd[0]), 0);
	err = udp_connect(fd[0]);
	cr_assert_eq(err, 0, "connecting again, room in the pool: %s", strerror(-err));
	cr_assert_eq(pool_active(), 1, "a socket that connected twice holds %u slots", pool_active());
	cr_assert_eq(udp_connect(fd[1]), 0);
	/* EPERM where the kernel lacks bpf_set_retval (before 5.18) */
	err = udp_connect(fd[2]);
	cr_assert(err == -ECONNREFUSED || err == -EPERM, "third socket, pool full: %s", strerror(-err));
	cr_assert_eq(svc_state(&id).overflow, 1);
	err = udp_connect(fd[0]);
	cr_assert_eq(err, 0, "connecting again, the pool full: %s", strerror(-err));
	cr_assert_eq(pool_active(), 2);
	close(fd[0]);
	cr_assert_eq(pool_active(), 1, "close left %u slots held", pool_active());
	close(fd[1]);
	cr_assert_eq(pool_active(), 0, "close left %u slots held", pool_active());
	cr_assert_eq(udp_connect(fd[2]), 0);
	cr_assert_eq(pool_active(), 1);
	close(fd[2]);
	close(l);
}

/* by service id, generation, index */
static int cmp_slotkey(const void *a, const void *b)
{
	const struct sl_slot_key *x = a, *y = b;

	if (x->svc_id != y->svc_id)
		return x->svc_id < y->svc_id ? -1 : 1;
	if (x->gen != y->gen)
		return x->gen < y->gen ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* What lbmap_apply() keeps as known is what the maps hold: the same
 * services (key, value, slots) and backends (and ids), and no slot but
 * the services' own. */
static void assert_known_is_the_maps(int round)
{
	const struct lb_live *k = dpt.dp.maps.known;
	size_t nslots = 0;
	struct lb_live r;

	cr_assert(k, "round %d: nothing known after a successful apply", round);
	cr_assert_eq(lbmap_read(&dpt.dp.maps, &r), 0);
	cr_assert_eq(k->nsvc, r.nsvc, "round %d: %zu services known, %zu in the map", round,
		     k->nsvc, r.nsvc);
	for (size_t i = 0; i < r.nsvc; i++) {
		cr_assert(!memcmp(&k->svc[i].key, &r.svc[i].key, sizeof(r.svc[i].key)));
		cr_assert(!memcmp(&k->svc[i].val, &r.svc[i].val, sizeof(r.svc[i].val)),
			  "round %d: service %zu: other value", round, i);
		cr_assert(!memcmp(k->svc[i].slots, r.svc[i].slots,
				  r.svc[i].val.count * sizeof(*r.svc[i].slots)),
			  "round %d: service %zu: other slots", round, i);
	}
	cr_assert_eq(k->nbe, r.nbe, "round %d: %zu backends known, %zu in the map", round,
		     k->nbe, r.nbe);
	for (size_t i = 0; i < r.nbe; i++)
		cr_assert(!memcmp(&k->be[i], &r.be[i], sizeof(r.be[i])),
			  "round %d: backend %zu differs", round, i);
	/* the map holds the known services' slots and nothing else */
	cr_assert_eq(k->nslotkeys, 0);
	for (size_t i = 0; i < r.nsvc; i++)
		nslots += r.svc[i].val.count;
	cr_assert_eq(r.nslotkeys, nslots, "round %d: %zu slots in the map, the services have %zu",
		     round, r.nslotkeys, nslots);
	qsort(r.slotkeys, r.nslotkeys, sizeof(*r.slotkeys), cmp_slotkey);
	for (size_t j = 0; j < r.nslotkeys;) {
		const struct live_svc *sv = NULL;

		/* by id: the order of the sorted keys */
		for (size_t x = 0; x < r.nsvc; x++)
			if (r.svc[x].val.svc_id == r.slotkeys[j].svc_id)
				sv = &r.svc[x];
		cr_assert(sv, "round %d: slot of no service (id %u)", round, r.slotkeys[j].svc_id);
		for (uint32_t n = 0; n < sv->val.count; n++, j++)
			cr_assert(r.slotkeys[j].svc_id == sv->val.svc_id &&
				  r.slotkeys[j].gen == sv->val.gen && r.slotkeys[j].idx == n,
				  "round %d: slot %zu is not service %u's slot %u of generation %u",
				  round, j, sv->val.svc_id, n, sv->val.gen);
	}
	lb_live_free(&r);
}

/* Applies from what the last one left (the agent's path at every change)
 * leave the maps as applies that read them back do: snapshots of up to 40
 * services over a pool of 12 shared backends with weights, each service
 * changing (or coming and going) in a quarter of the rounds, so most are
 * carried over as they are; some rounds start from a read (a restarted
 * agent). */
/* The maps hold what `want` asks for: each service with each of its
 * backends in weight / gcd slots (no traffic policies here). */
static void assert_maps_hold(const struct snapshot *want, int round)
{
	struct lb_live r;

	cr_assert_eq(lbmap_read(&dpt.dp.maps, &r), 0);
	cr_assert_eq(r.nsvc, want->nservices, "round %d: %zu services in the map, want %zu", round,
		     r.nsvc, want->nservices);
	for (size_t i = 0; i < want->nservices; i++) {
		const struct snap_service *ws = &want->services[i];
		struct live_svc k = { .key = ws->key };
		const struct live_svc *ls = bsearch(&k, r.svc, r.nsvc, sizeof(k), lb_cmp_svc);
		uint32_t g = 0, total = 0;

		cr_assert(ls, "round %d: %s missing", round, ws->name);
		for (size_t b = 0; b < ws->nbackends; b++) {
			uint32_t w = ws->backends[b].weight, x = g;

			for (uint32_t y = w; y; ) { uint32_t t = x % y; x = y; y = t; }
			g = x;
		}
		for (size_t b = 0; b < ws->nbackends; b++) {
			uint32_t have = 0;

			total += ws->backends[b].weight / g;
			for (uint32_t j = 0; j < ls->val.count; j++) {
				const struct live_be *be = lb_live_backend(&r, ls->slots[j]);

				have += be && !memcmp(&be->be, &ws->backends[b].be, sizeof(be->be));
			}
			cr_assert_eq(have, ws->backends[b].weight / g,
				     "round %d: %s: backend %zu has %u slots, want %u", round, ws->name,
				     b, have, ws->backends[b].weight / g);
		}
		cr_assert_eq(ls->val.count, total, "round %d: %s: %u slots, want %u", round, ws->name,
			     ls->val.count, total);
	}
	lb_live_free(&r);
}

static void known_rounds(bool cached)
{
	struct { bool on; int nb; unsigned int start, w[4]; json_t *item; } svc[40] = {};
	unsigned int seed = 7, carried = 0;
	struct snap_cache cache = {};
	char json[16384], one[1024], err[256];

	for (int round = 0; round < 120; round++) {
		struct lb_apply_stats st = {};
		json_t *root = json_pack("{s:[]}", "services");
		struct snapshot s;
		size_t n = 0;
		bool first = true;

		n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"services\": [");
		for (int i = 0; i < 40; i++) {
			size_t k = 0;

			if (round == 0 || rand_r(&seed) % 4 == 0) {
				svc[i].on = rand_r(&seed) % 3 != 0;
				svc[i].nb = (int)(rand_r(&seed) % 4);
				svc[i].start = rand_r(&seed) % 12;
				for (int b = 0; b < 4; b++)
					svc[i].w[b] = rand_r(&seed) % 3 + 1;
				json_decref(svc[i].item);
				svc[i].item = NULL;
			}
			if (!svc[i].on)
				continue;
			k += (size_t)snprintf(one + k, sizeof(one) - k,
				"{\"name\": \"s%d\", \"vip\": \"10.96.1.%d\", \"port\": 80, "
				"\"backends\": [", i, i);
			for (int b = 0; b < svc[i].nb; b++)
				k += (size_t)snprintf(one + k, sizeof(one) - k,
					"%s{\"address\": \"127.0.1.%u\", \"port\": 8080, \"weight\": %u}",
					b ? ", " : "", (svc[i].start + (unsigned int)b) % 12 + 1,
					svc[i].w[b]);
			k += (size_t)snprintf(one + k, sizeof(one) - k, "]}");
			n += (size_t)snprintf(json + n, sizeof(json) - n, "%s%s", first ? "" : ", ", one);
			first = false;
			/* an unchanged service keeps its item, as the agent's
			 * index keeps it across deltas (packed: a string) */
			if (!svc[i].item)
				svc[i].item = json_string(one);
			json_array_append(json_object_get(root, "services"), svc[i].item);
		}
		n += (size_t)snprintf(json + n, sizeof(json) - n, "]}");
		cr_assert_lt(n, sizeof(json));
		if (round % 10 == 9 && dpt.dp.maps.known) {
			/* a restart: the next apply reads the maps */
			lb_live_free(dpt.dp.maps.known);
			free(dpt.dp.maps.known);
			dpt.dp.maps.known = NULL;
		}
		if (cached)
			cr_assert_eq(snapshot_from_json_cached(root, "t", &s, &cache, err, sizeof(err)),
				     0, "%s", err);
		else
			cr_assert_eq(snapshot_parse(json, n, "t", &s, err, sizeof(err)), 0, "%s", err);
		json_decref(root);
		cr_assert_eq(lbmap_apply(&dpt.dp.maps, &s, &st, err, sizeof(err)), 0, "%s", err);
		assert_maps_hold(&s, round);
		snapshot_free(&s);
		carried += st.svc_unchanged;
		assert_known_is_the_maps(round);
	}
	cr_assert_gt(carried, 1000, "only %u services carried over unchanged", carried);
	snap_cache_free(&cache);
	for (int i = 0; i < 40; i++)
		json_decref(svc[i].item);
	dpt_apply("{\"services\": []}");
	cr_assert_eq(map_count_keys(dpt.dp.maps.be_fd, sizeof(__u32)), 0);
	cr_assert_eq(map_count_keys(dpt.dp.maps.slot_fd, sizeof(struct sl_slot_key)), 0);
}

Test(lbmap, apply_from_what_is_known_matches_the_maps)
{
	DPT_REQUIRE_ROOT();
	known_rounds(false);
}

/* The same with the agent's decode of deltas: a service whose item did
 * not change is the same parse (one serial), carried over uncompared. */
Test(lbmap, cached_decodes_carry_unchanged_services_over)
{
	DPT_REQUIRE_ROOT();
	known_rounds(true);
}

/* nsvc services of 1024 backends each: backend j of service i is
 * 10.(first + (i * 1024 + j) / 65536).x.y, or 10.first.0.j for every
 * service when shared. */
static void many_backends(struct snapshot *s, size_t nsvc, int first, bool shared)
{
	memset(s, 0, sizeof(*s));
	s->nservices = nsvc;
	s->services = calloc(nsvc, sizeof(*s->services));
	cr_assert(s->services);
	for (size_t i = 0; i < nsvc; i++) {
		struct snap_service *v = &s->services[i];

		cr_assert_gt(asprintf(&v->name, "s%zu", i), 0);
		v->key.addr[2] = htonl(0xffff);
		v->key.addr[3] = htonl(0x0a600000u + (uint32_t)i);   /* 10.96.x.y */
		v->key.port = htons(80);
		v->key.proto = IPPROTO_TCP;
		v->nbackends = 1024;
		v->backends = calloc(1024, sizeof(*v->backends));
		cr_assert(v->backends);
		for (uint32_t j = 0; j < 1024; j++) {
			uint32_t n = shared ? j : (uint32_t)i * 1024 + j;

			v->backends[j].be.addr[2] = htonl(0xffff);
			v->backends[j].be.addr[3] = htonl((10u << 24) + ((uint32_t)first << 16) + n);
			v->backends[j].be.port = htons(8080);
			v->backends[j].be.proto = IPPROTO_TCP;
			v->backends[j].weight = 1;
		}
	}
}

/* More references than the backends map has room for are fine when they
 * are few distinct backends; more distinct ones than room are refused
 * before anything is written, counted with those the maps hold already. */
Test(lbmap, backend_room_counts_distinct_backends)
{
	struct lb_apply_stats st = {};
	uint32_t max = dpt.dp.maps.max_be, nsvc = max / 1024;
	struct snapshot s;
	char err[256], want[64];

	DPT_REQUIRE_ROOT();
	cr_assert_eq(max, SL_MAX_BACKENDS, "the maps are this version's");
	many_backends(&s, nsvc + 1, 1, true); /* more references than room, 1,024 backends */
	cr_assert_eq(lbmap_apply(&dpt.dp.maps, &s, &st, err, sizeof(err)), 0, "%s", err);
	snapshot_free(&s);
	cr_assert_eq(map_count_keys(dpt.dp.maps.be_fd, sizeof(__u32)), 1024);

	/* those 1,024 again and max - 1,023 new ones: one more than room */
	many_backends(&s, nsvc, 2, false);
	s.services[nsvc - 1].nbackends = 1;   /* (nsvc - 1) * 1024 + 1 new */
	s.services = realloc(s.services, (nsvc + 1) * sizeof(*s.services));
	cr_assert(s.services);
	s.nservices = nsvc + 1;
	{
		struct snapshot shared;

		many_backends(&shared, 1, 1, true);
		s.services[nsvc] = shared.services[0];
		s.services[nsvc].key.addr[3] = htonl(0x0a600000u + nsvc);
		free(shared.services);
	}
	cr_assert_eq(lbmap_apply(&dpt.dp.maps, &s, &st, err, sizeof(err)), -E2BIG);
	snprintf(want, sizeof(want), "%u distinct backends", max + 1);
	cr_assert(strstr(err, want), "%s", err);
	snapshot_free(&s);
	cr_assert_eq(map_count_keys(dpt.dp.maps.be_fd, sizeof(__u32)), 1024, "nothing written");
	cr_assert_eq(map_count_keys(dpt.dp.maps.svc_fd, sizeof(struct sl_svc_key)), nsvc + 1);
}

/* Maps an earlier install pinned with other sizes are kept as they are (what
 * they hold survives an upgrade), and the room check counts with their sizes:
 * a snapshot that does not fit them is refused before anything is written. */
Test(lbmap, pinned_maps_keep_their_size)
{
	struct lb_apply_stats st = {};
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = dpt.pin);
	struct sock_bpf *old;
	struct snapshot s;
	char err[256];

	DPT_REQUIRE_ROOT();
	datapath_close(&dpt.dp);
	dpt.open_rc = -ENOENT;   /* teardown: nothing to close until it opens again */
	cr_assert_eq(datapath_uninstall(dpt.pin), 0);
	cr_assert_eq(sys_mkdir_p(dpt.pin, 0700), 0);
	/* the maps as a version with smaller ones would have pinned them */
	old = sock_bpf__open_opts(&oopts);
	cr_assert_not_null(old);
	cr_assert_eq(bpf_map__set_max_entries(old->maps.sl_services, 64), 0);
	cr_assert_eq(bpf_map__set_max_entries(old->maps.sl_backends, 2048), 0);
	cr_assert_eq(bpf_map__set_max_entries(old->maps.sl_slots, 8192), 0);
	cr_assert_eq(sock_bpf__load(old), 0);
	sock_bpf__destroy(old);   /* the pins stay */

	dpt.open_rc = datapath_open(&dpt.dp, dpt.pin, dpt.cg, true);
	cr_assert_eq(dpt.open_rc, 0, "datapath_open over smaller pinned maps: %s",
		     strerror(-dpt.open_rc));
	cr_assert_eq(dpt.dp.maps.max_svc, 64);
	cr_assert_eq(dpt.dp.maps.max_be, 2048);
	cr_assert_eq(dpt.dp.maps.max_slots, 8192);

	many_backends(&s, 3, 1, false);       /* 3,072 distinct backends */
	cr_assert_eq(lbmap_apply(&dpt.dp.maps, &s, &st, err, sizeof(err)), -E2BIG);
	cr_assert(strstr(err, "3072 distinct backends, more than the 2048"), "%s", err);
	snapshot_free(&s);
	many_backends(&s, 65, 1, true);
	cr_assert_eq(lbmap_apply(&dpt.dp.maps, &s, &st, err, sizeof(err)), -E2BIG);
	cr_assert(strstr(err, "65 services, more than the 64"), "%s", err);
	snapshot_free(&s);
	cr_assert_eq(map_count_keys(dpt.dp.maps.svc_fd, sizeof(struct sl_svc_key)), 0,
		     "nothing written");
	cr_assert_eq(map_count_keys(dpt.dp.maps.be_fd, sizeof(__u32)), 0, "nothing written");

	many_backends(&s, 2, 1, false);       /* 2,048: exactly room */
	cr_assert_eq(lbmap_apply(&dpt.dp.maps, &s, &st, err, sizeof(err)), 0, "%s", err);
	snapshot_free(&s);
	cr_assert_eq(map_count_keys(dpt.dp.maps.be_fd, sizeof(__u32)), 2048);
}

Test(lbmap, garbage_slots_from_a_crash_are_collected)
{
	struct sl_slot_key k = { .svc_id = 77, .gen = 1, .idx = 3 };
	struct sl_slot_val v = { .backend_id = 9 };

	DPT_REQUIRE_ROOT();
	cr_assert_eq(bpf_map_update_elem(dpt.dp.maps.slot_fd, &k, &v, BPF_ANY), 0);
	dpt_apply(SNAP_WEB);
	cr_assert_eq(map_count_keys(dpt.dp.maps.slot_fd, sizeof(k)), 4);
	cr_assert_neq(bpf_map_lookup_elem(dpt.dp.maps.slot_fd, &k, &v), 0);
}


/* map_writes (lib/core/bpfmap.h): nothing before the flush, every entry
 * after it, a key added twice with its last value; in batches where the
 * map type has them (hash), one at a time where it has none (LPM trie);
 * a full map's error comes back and the queue is empty after it. */
Test(lbmap, queued_map_writes_land_in_order)
{
	struct { __u32 prefixlen, addr; } tk;
	int fds[2], full, rc;

	DPT_REQUIRE_ROOT();
	LIBBPF_OPTS(bpf_map_create_opts, trie, .map_flags = BPF_F_NO_PREALLOC);
	/* room to spare: on older kernels (5.10 here) a full LPM trie
	 * refuses even to replace an entry it has (ENOSPC) */
	fds[0] = bpf_map_create(BPF_MAP_TYPE_HASH, "sl_t_wq", 8, 4, 16384, NULL);
	fds[1] = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "sl_t_wqt", 8, 4, 16384, &trie);
	full = bpf_map_create(BPF_MAP_TYPE_HASH, "sl_t_wqf", 8, 4, 10, NULL);
	cr_assert(fds[0] >= 0 && fds[1] >= 0 && full >= 0, "bpf_map_create: %s", strerror(errno));
	for (int m = 0; m < 2; m++) {
		struct map_writes w;
		__u32 v;

		map_writes_init(&w, fds[m], 8, 4);
		for (__u32 i = 0; i < 10000; i++) {
			tk = (typeof(tk)){ 32, i };
			v = i + 1;
			cr_assert_eq(map_writes_add(&w, &tk, &v), 0);
		}
		tk = (typeof(tk)){ 32, 7 };
		v = 70000;
		cr_assert_eq(map_writes_add(&w, &tk, &v), 0);
		cr_assert_eq(map_count_keys(fds[m], 8), 0, "map %d: nothing before the flush", m);
		rc = map_writes_flush(&w);
		cr_assert_eq(rc, 0, "map %d: %s", m, strerror(-rc));
		cr_assert_eq(w.n, 0);
		cr_assert_eq(map_count_keys(fds[m], 8), 10000, "map %d", m);
		for (__u32 i = 0; i < 10000; i += 997) {
			tk = (typeof(tk)){ 32, i };
			cr_assert_eq(bpf_map_lookup_elem(fds[m], &tk, &v), 0);
			cr_assert_eq(v, i == 7 ? 70000 : i + 1, "map %d key %u: %u", m, i, v);
		}
		map_writes_free(&w);
	}
	{
		struct map_writes w;
		__u32 v = 1;

		map_writes_init(&w, full, 8, 4);
		for (__u32 i = 0; i < 11; i++) {
			tk = (typeof(tk)){ 32, i };
			cr_assert_eq(map_writes_add(&w, &tk, &v), 0);
		}
		cr_assert_eq(map_writes_flush(&w), -E2BIG);
		cr_assert_eq(w.n, 0);
		cr_assert_eq(map_count_keys(full, 8), 10, "what fitted was written");
		map_writes_free(&w);
	}
	close(fds[0]);
	close(fds[1]);
	close(full);
}
