// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lbmap_apply.c - make the load balancer's maps hold a snapshot
 * (lbmap_apply(), lbmap.h): ids, slots (weighted runs, or a Maglev table
 * for SOURCE_HASH), traffic-policy states, in the write order of
 * headers/sluice_lb.h, starting from what the last apply left.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "lib/core/bpfmap.h"
#include "lib/node/lbmap.h"
#include "lib/node/maglev.h"

#define BITS_WORDS(n) (((n) + 63) / 64)

struct idset {
	uint64_t w[BITS_WORDS(SL_MAX_BACKENDS + 1) > BITS_WORDS(SL_MAX_SERVICES + 1) ?
		   BITS_WORDS(SL_MAX_BACKENDS + 1) : BITS_WORDS(SL_MAX_SERVICES + 1)];
	uint32_t max;   /* ids are 1..max */
	uint32_t next;  /* allocation hint */
};

static bool idset_has(const struct idset *s, uint32_t id)
{
	return id <= s->max && (s->w[id / 64] >> (id % 64)) & 1;
}

static void idset_add(struct idset *s, uint32_t id)
{
	if (id && id <= s->max)
		s->w[id / 64] |= 1ull << (id % 64);
}

/* The first free id from the hint on, wrapping around: ids rotate, so
 * that one freed is taken again only after all the others. */
static uint32_t idset_alloc(struct idset *s)
{
	uint32_t start = s->next && s->next <= s->max ? s->next : 1;

	for (uint32_t n = 0, id = start; n < s->max; n++, id = id == s->max ? 1 : id + 1) {
		if (!idset_has(s, id)) {
			idset_add(s, id);
			s->next = id == s->max ? 1 : id + 1;
			return id;
		}
	}
	return 0;
}

/* Where allocation goes on from: the last apply's hint, or after the
 * highest id in use (a restarted agent). */
static uint32_t idset_hint(const struct idset *s, uint32_t kept)
{
	uint32_t top = 0;

	if (kept)
		return kept;
	for (uint32_t id = s->max; id > 0 && !top; id--)
		if (idset_has(s, id))
			top = id;
	return top + 1;
}

struct apply_ctx {
	const struct lbmap *m;
	struct lb_live live;
	struct lb_live next;        /* what the maps hold after it (lbmap.known) */
	struct live_be *newbe;      /* backends written by this apply, sorted */
	size_t nnewbe, capnewbe;
	struct idset svc_ids;       /* live, stale and freed-this-apply ids */
	struct idset be_ids;
	struct idset be_ref;        /* backends referenced after the apply */
	uint32_t *final_count;      /* by svc_id: slots live after the apply */
	uint8_t *final_gen;         /* by svc_id: 0/1, 2 = no service */
	bool tp_held;               /* sl_tp_config.held written by this apply */
	bool from_read;             /* live was read from the maps, not known */
	long *pos;                  /* by wanted service: its index in live, -1 if new */
	struct sl_be_key *bekeys;   /* (service, backend) of services with a policy */
	size_t nbekeys, capbekeys;
	/* new and changed services' writes, made in batches in the order of
	 * sluice_lb.h (flush_services): backends, VIPs, slots, entries; then
	 * what the new entries replace goes (`after`) */
	struct map_writes bew, vipw, slotw, svcw;
	struct after { uint32_t svc_id, count; uint8_t gen, policy_gone; } *after;
	size_t nafter, capafter;
	struct lb_apply_stats st;
};

static uint32_t gcd(uint32_t a, uint32_t b)
{
	while (b) {
		uint32_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* A consistent-hash service's slots are a Maglev table (maglev.h). */
static bool is_table(const struct snap_service *s)
{
	return s->has_traffic && s->traffic.lb == SL_LB_SOURCE_HASH && s->nbackends;
}

/* Slots of the service, and the weight of one slot: the gcd of the weights
 * (each backend owns weight/unit consecutive slots), 0 for a table. */
static int slot_count(const struct snap_service *s, uint32_t *unit)
{
	uint32_t g = 0, n = 0;
	size_t ones = 0;

	if (is_table(s)) {
		*unit = 0;
		return (int)maglev_size(s->nbackends);
	}
	/* the common case, every weight 1, without a division */
	while (ones < s->nbackends && s->backends[ones].weight == 1)
		ones++;
	if (ones == s->nbackends) {
		*unit = 1;
		return (int)ones;
	}
	for (size_t i = 0; i < s->nbackends; i++)
		g = gcd(g, s->backends[i].weight);
	for (size_t i = 0; i < s->nbackends; i++)
		n += s->backends[i].weight / g;
	*unit = g ?: 1;
	return (int)n;
}

/* The Maglev table of the service's backends, as backend ids. */
static int table_slots(const struct snap_service *s, const uint32_t *ids, uint32_t *slots, uint32_t n)
{
	struct maglev_backend *mb = calloc(s->nbackends, sizeof(*mb));
	int err;

	if (!mb)
		return -ENOMEM;
	for (size_t i = 0; i < s->nbackends; i++)
		mb[i] = (struct maglev_backend){ .be = &s->backends[i].be, .weight = s->backends[i].weight };
	err = maglev_fill(mb, s->nbackends, slots, n);
	for (uint32_t i = 0; !err && i < n; i++)
		slots[i] = ids[slots[i]];
	free(mb);
	return err;
}

static struct live_be *find_be(const struct live_be *arr, size_t n, const struct sl_backend *be)
{
	struct live_be k = { .be = *be };

	return n ? bsearch(&k, arr, n, sizeof(*arr), lb_cmp_be) : NULL;
}

/* Backend id for `be`, writing a new backend entry if it has none yet. */
static int backend_id(struct apply_ctx *c, const struct sl_backend *be, uint32_t *id)
{
	struct live_be *lb = find_be(c->live.be, c->live.nbe, be);
	size_t pos;
	int err;

	if (!lb)
		lb = find_be(c->newbe, c->nnewbe, be);
	if (lb) {
		*id = lb->id;
		return 0;
	}
	*id = idset_alloc(&c->be_ids);
	if (!*id)
		return -E2BIG;
	err = map_writes_add(&c->bew, id, be);
	if (err)
		return err;
	c->st.be_added++;
	if (c->nnewbe == c->capnewbe) {
		struct live_be *nb = realloc(c->newbe, (c->capnewbe = c->capnewbe * 2 + 64) *
					     sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		c->newbe = nb;
	}
	/* keep sorted: insertion, new backends per apply are few */
	for (pos = c->nnewbe; pos > 0 && lb_cmp_be(&c->newbe[pos - 1], &(struct live_be){ .be = *be }) > 0; pos--)
		c->newbe[pos] = c->newbe[pos - 1];
	c->newbe[pos] = (struct live_be){ .id = *id, .be = *be };
	c->nnewbe++;
	return 0;
}

static void delete_slots(struct apply_ctx *c, uint32_t svc_id, uint8_t gen, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		struct sl_slot_key k = { .svc_id = svc_id, .gen = gen, .idx = i };

		bpf_map_delete_elem(c->m->slot_fd, &k);
	}
}

/* The state entries the BPF side counts in (sluice_traffic.h), created
 * empty where missing: existing ones keep their counters. */
static int ensure_states(struct apply_ctx *c, uint32_t svc_id, const uint32_t *ids, size_t n)
{
	struct sl_svc_state st0 = {};
	struct sl_be_state bs0 = {};

	if (bpf_map_update_elem(c->m->st_fd, &svc_id, &st0, BPF_NOEXIST) && errno != EEXIST)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		struct sl_be_key k = { .svc_id = svc_id, .backend_id = ids[i] };

		if (bpf_map_update_elem(c->m->bst_fd, &k, &bs0, BPF_NOEXIST) && errno != EEXIST)
			return -errno;
		if (c->nbekeys == c->capbekeys) {
			struct sl_be_key *nk = realloc(c->bekeys, (c->capbekeys = c->capbekeys * 2 + 64) *
						       sizeof(*nk));
			if (!nk)
				return -ENOMEM;
			c->bekeys = nk;
		}
		c->bekeys[c->nbekeys++] = k;
	}
	return 0;
}

/* Write the service's policy if it differs from what the map holds. */
static int write_policy(struct apply_ctx *c, uint32_t svc_id, const struct sl_svc_policy *p)
{
	struct sl_svc_policy live;

	if (bpf_map_lookup_elem(c->m->pol_fd, &svc_id, &live) == 0 && !memcmp(&live, p, sizeof(live)))
		return 0;
	return bpf_map_update_elem(c->m->pol_fd, &svc_id, p, BPF_ANY) ? -errno : 0;
}

/* The service as the maps hold it after this apply; takes slots. ids:
 * its backends' ids, kept with the serial of its parse or, without one, a
 * copy of its backends (one block, the copy after the ids). Without
 * memory for them, the next apply rebuilds the service to compare it. */
static void next_service(struct apply_ctx *c, const struct snap_service *s,
			 const struct sl_svc_val *val, uint32_t *slots, const uint32_t *ids)
{
	struct live_svc *l = &c->next.svc[c->next.nsvc++];
	size_t n = s->nbackends, copy = s->serial ? 0 : n * sizeof(*l->in);

	*l = (struct live_svc){ .key = s->key, .val = *val, .slots = slots };
	l->in_ids = malloc((n ?: 1) * sizeof(*l->in_ids) + copy);
	if (!l->in_ids)
		return;
	l->nin = (uint32_t)n;
	l->in_serial = s->serial;
	memcpy(l->in_ids, ids, n * sizeof(*l->in_ids));
	if (copy) {
		l->in = (struct snap_backend *)(l->in_ids + n);
		memcpy(l->in, s->backends, copy);
	}
}

/* Is s what the last apply was given for the service? The same parse (one
 * serial), or backends equal to its copy. */
static bool same_input(const struct snap_service *s, const struct live_svc *live)
{
	if (!live->in_ids || live->nin != s->nbackends)
		return false;
	if (s->serial || live->in_serial)
		return s->serial == live->in_serial;
	return live->in && !memcmp(live->in, s->backends, s->nbackends * sizeof(*s->backends));
}

/* A service without a traffic policy given exactly as the last apply
 * wrote it: its entries stay, its backends stay referenced. */
static bool carry_over(struct apply_ctx *c, const struct snap_service *s, struct live_svc *live,
		       uint32_t *svc_id)
{
	uint32_t id = live->val.svc_id;

	if (s->has_traffic || live->val.flags || !same_input(s, live))
		return false;
	for (uint32_t i = 0; i < live->nin; i++)
		idset_add(&c->be_ref, live->in_ids[i]);
	c->final_gen[id] = live->val.gen;
	c->final_count[id] = live->val.count;
	c->st.svc_unchanged++;
	*svc_id = id;
	c->next.svc[c->next.nsvc++] = *live;   /* slots and input move */
	live->slots = NULL;
	live->in_ids = NULL;
	live->in = NULL;
	return true;
}

/* What goes once the new entries are in: the `count` slots of
 * generation `gen` the service's old entry pointed at (none for a new
 * service), and its policy if the new entry has none. */
static int after_entry(struct apply_ctx *c, uint32_t svc_id, uint8_t gen, uint32_t count,
		       bool policy_gone)
{
	if (c->nafter == c->capafter) {
		struct after *na = realloc(c->after, (c->capafter = c->capafter * 2 + 64) *
					   sizeof(*na));
		if (!na)
			return -ENOMEM;
		c->after = na;
	}
	c->after[c->nafter++] = (struct after){ .svc_id = svc_id, .gen = gen, .count = count,
						.policy_gone = policy_gone };
	return 0;
}

/* The queued writes of new and changed services, in the order a
 * connect() reading them needs: backends and VIPs before the slots that
 * name them, slots before the entries that count them; then the slots and
 * policies those entries no longer use. */
static int flush_services(struct apply_ctx *c)
{
	int err = map_writes_flush(&c->bew);

	err = err ?: map_writes_flush(&c->vipw);
	err = err ?: map_writes_flush(&c->slotw);
	err = err ?: map_writes_flush(&c->svcw);
	for (size_t i = 0; !err && i < c->nafter; i++) {
		const struct after *a = &c->after[i];

		if (a->policy_gone)
			bpf_map_delete_elem(c->m->pol_fd, &a->svc_id);
		delete_slots(c, a->svc_id, a->gen, a->count);
	}
	c->nafter = 0;
	return err;
}

static int upsert_service(struct apply_ctx *c, const struct snap_service *s,
			  struct live_svc *live, uint32_t *svc_id)
{
	struct sl_svc_val val = {};
	struct sl_svc_policy pol = s->traffic;
	uint32_t unit, n, *slots, *ids, k = 0;
	uint8_t flags = s->has_traffic ? SL_SVC_F_POLICY : 0;
	int err = 0;

	if (live && carry_over(c, s, live, svc_id))
		return 0;
	n = (uint32_t)slot_count(s, &unit);
	slots = calloc(n ?: 1, sizeof(*slots));
	ids = calloc(s->nbackends ?: 1, sizeof(*ids));
	if (!slots || !ids) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->nbackends; i++) {
		uint32_t id;

		err = backend_id(c, &s->backends[i].be, &id);
		if (err)
			goto out;
		ids[i] = id;
		idset_add(&c->be_ref, id);
		for (uint32_t j = 0; unit && j < s->backends[i].weight / unit; j++)
			slots[k++] = id;
	}
	if (!unit && n) {
		err = table_slots(s, ids, slots, n);
		if (err)
			goto out;
	}

	val.svc_id = live ? live->val.svc_id : idset_alloc(&c->svc_ids);
	if (!val.svc_id) {
		err = -E2BIG;
		goto out;
	}
	*svc_id = val.svc_id;
	/* before the service entry that carries the id; after a read, the
	 * maps may be an older version's, which had no sl_svc_vip */
	if ((!live || c->from_read) && c->m->vip_fd >= 0) {
		err = map_writes_add(&c->vipw, &val.svc_id, &s->key);
		if (err)
			goto out;
	}
	if (s->has_traffic && !c->tp_held) {
		/* before any socket can hold a slot: sockops and sock_release
		 * look for held slots from now on (sluice_traffic.h) */
		struct sl_tp_config tc = { .held = 1 };
		__u32 zero = 0;

		if (bpf_map_update_elem(c->m->tpc_fd, &zero, &tc, BPF_ANY)) {
			err = -errno;
			goto out;
		}
		c->tp_held = true;
	}
	if (s->has_traffic) {
		c->st.policies++;
		pol.nbackends = (uint32_t)s->nbackends;
		err = ensure_states(c, val.svc_id, ids, s->nbackends);
		err = err ?: write_policy(c, val.svc_id, &pol);
		if (err)
			goto out;
	}

	if (live && live->val.wunit == unit && live->val.count == n &&
	    memcmp(live->slots, slots, n * sizeof(*slots)) == 0) {
		c->final_gen[live->val.svc_id] = live->val.gen;
		c->final_count[live->val.svc_id] = n;
		val = live->val;
		if (live->val.flags == flags) {
			c->st.svc_unchanged++;
			goto done;
		}
		/* same slots, the policy flag turns on or off: in place */
		val.flags = flags;
		if (bpf_map_update_elem(c->m->svc_fd, &s->key, &val, BPF_ANY)) {
			err = -errno;
			goto out;
		}
		if (!flags)
			bpf_map_delete_elem(c->m->pol_fd, &val.svc_id);
		c->st.svc_updated++;
		goto done;
	}

	val.gen = live ? !live->val.gen : 0;
	val.count = n;
	val.wunit = (uint16_t)unit;
	val.flags = flags;
	for (uint32_t i = 0; i < n && !err; i++) {
		struct sl_slot_key sk = { .svc_id = val.svc_id, .gen = val.gen, .idx = i };
		struct sl_slot_val sv = { .backend_id = slots[i] };

		err = map_writes_add(&c->slotw, &sk, &sv);
	}
	err = err ?: map_writes_add(&c->svcw, &s->key, &val);
	/* a policy a new service's id might still have (maps read after a
	 * failed apply), or the one this service had */
	if (!err && live)
		err = after_entry(c, val.svc_id, live->val.gen, live->val.count, !flags);
	else if (!err && !flags && c->from_read)
		err = after_entry(c, val.svc_id, 0, 0, true);
	if (err)
		goto out;
	c->final_gen[val.svc_id] = val.gen;
	c->final_count[val.svc_id] = n;
	if (live)
		c->st.svc_updated++;
	else
		c->st.svc_added++;
done:
	next_service(c, s, &val, slots, ids);
	slots = NULL;
out:
	free(slots);
	free(ids);
	return err;
}

static int cmp_bekey(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sl_be_key));
}

/* A backend state goes; the service's count of ejected backends gives
 * back the place it held, if any (bpf/admin.bpf.c: under the BPF side's
 * locks, which userspace cannot take). */
static void be_forget(const struct lbmap *m, const struct sl_be_key *k)
{
	unsigned char frame[64] = {};   /* a frame: at least ETH_HLEN */
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = sizeof(frame));

	memcpy(frame, k, sizeof(*k));
	if (m->forget_fd >= 0 && bpf_prog_test_run_opts(m->forget_fd, &o) == 0)
		return;
	bpf_map_delete_elem(m->bst_fd, k);
}

/* Backend states of no service with a policy go, unless a connection still
 * holds one (its release would find it gone and change nothing, but
 * LEAST_REQUEST should not forget it while it is open). Service states and
 * policies of services that no longer exist go too. */
static void gc_states(struct apply_ctx *c)
{
	struct sl_be_key k, *prev = NULL;
	struct sl_be_key *dead = NULL;
	size_t ndead = 0, cap = 0;
	__u32 id, *pid = NULL;
	__u32 *deadsvc = NULL;
	size_t nds = 0, capds = 0;

	if (c->nbekeys)
		qsort(c->bekeys, c->nbekeys, sizeof(*c->bekeys), cmp_bekey);
	while (bpf_map_get_next_key(c->m->bst_fd, prev, &k) == 0) {
		struct sl_be_state v;

		prev = &k;
		if (c->nbekeys && bsearch(&k, c->bekeys, c->nbekeys, sizeof(k), cmp_bekey))
			continue;
		if (bpf_map_lookup_elem(c->m->bst_fd, &k, &v) || v.active > 0)
			continue;
		if (ndead == cap) {
			struct sl_be_key *nd = realloc(dead, (cap = cap * 2 + 64) * sizeof(*nd));

			if (!nd)
				break;
			dead = nd;
		}
		dead[ndead++] = k;
	}
	for (size_t i = 0; i < ndead; i++)
		be_forget(c->m, &dead[i]);
	free(dead);

	for (int fd_i = 0; fd_i < 2; fd_i++) {
		int fd = fd_i ? c->m->pol_fd : c->m->st_fd;

		pid = NULL;
		nds = 0;
		while (bpf_map_get_next_key(fd, pid, &id) == 0) {
			pid = &id;
			if (id <= SL_MAX_SERVICES && c->final_gen[id] != 2)
				continue;
			if (nds == capds) {
				__u32 *nd = realloc(deadsvc, (capds = capds * 2 + 64) * sizeof(*nd));

				if (!nd)
					break;
				deadsvc = nd;
			}
			deadsvc[nds++] = id;
		}
		for (size_t i = 0; i < nds; i++)
			bpf_map_delete_elem(fd, &deadsvc[i]);
	}
	free(deadsvc);
}

static int cmp_backend(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sl_backend));
}

/* Refuse a snapshot the maps cannot hold before writing anything. */
/* Room for `want` in the maps that hold `live` now, checked before
 * anything is written. Distinct backends: those the maps hold already
 * count by id, the others are sorted to count their repeats once. */
static int check_capacity(const struct lbmap *m, const struct snapshot *want,
			  const struct lb_live *live, char *err, size_t errlen)
{
	struct sl_backend *fresh = NULL;
	struct idset *seen = NULL;
	size_t nall = 0, nfresh = 0, ndistinct = 0;
	uint64_t slots = 0;
	int rc = 0;

	for (size_t i = 0; i < want->nservices; i++) {
		uint32_t unit;

		nall += want->services[i].nbackends;
		slots += (uint64_t)slot_count(&want->services[i], &unit);
	}
	if (want->nservices > m->max_svc) {
		snprintf(err, errlen, "snapshot has %zu services, more than the %u the maps hold",
			 want->nservices, m->max_svc);
		return -E2BIG;
	}
	/* Two generations of one service may coexist for a moment. */
	if (slots > m->max_slots / 2) {
		snprintf(err, errlen, "snapshot needs %llu backend slots, more than the %u the maps hold",
			 (unsigned long long)slots, m->max_slots / 2);
		return -E2BIG;
	}
	if (nall <= m->max_be)
		return 0;   /* fewer references than room */
	fresh = calloc(nall, sizeof(*fresh));
	seen = calloc(1, sizeof(*seen));
	if (!fresh || !seen) {
		rc = -ENOMEM;
		goto out;
	}
	seen->max = SL_MAX_BACKENDS;
	for (size_t i = 0; i < want->nservices; i++)
		for (size_t j = 0; j < want->services[i].nbackends; j++) {
			const struct sl_backend *be = &want->services[i].backends[j].be;
			const struct live_be *lb = find_be(live->be, live->nbe, be);

			if (!lb)
				fresh[nfresh++] = *be;
			else if (!idset_has(seen, lb->id) && lb->id <= SL_MAX_BACKENDS)
				idset_add(seen, lb->id), ndistinct++;
		}
	qsort(fresh, nfresh, sizeof(*fresh), cmp_backend);
	for (size_t i = 0; i < nfresh; i++)
		if (i == 0 || memcmp(&fresh[i - 1], &fresh[i], sizeof(*fresh)))
			ndistinct++;
	if (ndistinct > m->max_be) {
		snprintf(err, errlen, "snapshot has %zu distinct backends, more than the %u the maps hold",
			 ndistinct, m->max_be);
		rc = -E2BIG;
	}
out:
	free(fresh);
	free(seen);
	return rc;
}

/* The services of c->next (one per wanted service, in want's order) in
 * key order, without sorting them all: those the maps had are in live's
 * order already (live is sorted), the new ones (few, after a first apply)
 * are sorted and merged in. 0 or -ENOMEM. */
static int next_sort(struct apply_ctx *c)
{
	struct lb_live *l = &c->next;
	long *at = malloc((c->live.nsvc ?: 1) * sizeof(*at));
	struct live_svc *fresh = malloc((l->nsvc ?: 1) * sizeof(*fresh));
	struct live_svc *out = malloc((l->nsvc ?: 1) * sizeof(*out));
	size_t nfresh = 0, n = 0, b = 0;

	if (!at || !fresh || !out) {
		free(at);
		free(fresh);
		free(out);
		return -ENOMEM;
	}
	for (size_t j = 0; j < c->live.nsvc; j++)
		at[j] = -1;
	for (size_t i = 0; i < l->nsvc; i++) {
		if (c->pos[i] >= 0)
			at[c->pos[i]] = (long)i;
		else
			fresh[nfresh++] = l->svc[i];
	}
	qsort(fresh, nfresh, sizeof(*fresh), lb_cmp_svc);
	for (size_t j = 0; j < c->live.nsvc; j++) {
		if (at[j] < 0)
			continue;
		while (b < nfresh && lb_cmp_svc(&fresh[b], &l->svc[at[j]]) < 0)
			out[n++] = fresh[b++];
		out[n++] = l->svc[at[j]];
	}
	while (b < nfresh)
		out[n++] = fresh[b++];
	free(l->svc);
	l->svc = out;
	free(at);
	free(fresh);
	return 0;
}

/* c->next complete: the backends referenced now (the live ones and the
 * new ones, both sorted: merged), services sorted (as lbmap_read() leaves
 * them). No slot keys: they are the services' own (lbmap.h). */
static int next_finish(struct apply_ctx *c)
{
	struct lb_live *l = &c->next;
	size_t a = 0, b = 0;

	if (next_sort(c))
		return -ENOMEM;
	l->be = malloc((c->live.nbe + c->nnewbe ?: 1) * sizeof(*l->be));
	if (!l->be)
		return -ENOMEM;
	while (a < c->live.nbe || b < c->nnewbe) {
		const struct live_be *x = a < c->live.nbe ? &c->live.be[a] : NULL;
		const struct live_be *y = b < c->nnewbe ? &c->newbe[b] : NULL;
		const struct live_be *e = !y || (x && lb_cmp_be(x, y) < 0) ? x : y;

		if (e == x)
			a++;
		else
			b++;
		if (idset_has(&c->be_ref, e->id))
			l->be[l->nbe++] = *e;
	}
	return 0;
}

int lbmap_apply(struct lbmap *m, const struct snapshot *want,
		struct lb_apply_stats *st, char *err, size_t errlen)
{
	struct apply_ctx *c;
	bool *wanted = NULL;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->m = m;
	c->svc_ids.max = SL_MAX_SERVICES;
	c->be_ids.max = SL_MAX_BACKENDS;
	c->be_ref.max = SL_MAX_BACKENDS;
	c->final_count = calloc(SL_MAX_SERVICES + 1, sizeof(*c->final_count));
	c->final_gen = malloc(SL_MAX_SERVICES + 1);
	c->pos = malloc((want->nservices ?: 1) * sizeof(*c->pos));
	c->next.svc = calloc(want->nservices ?: 1, sizeof(*c->next.svc));
	if (!c->final_count || !c->final_gen || !c->pos || !c->next.svc) {
		rc = -ENOMEM;
		goto out;
	}
	memset(c->final_gen, 2, SL_MAX_SERVICES + 1);
	map_writes_init(&c->bew, m->be_fd, sizeof(__u32), sizeof(struct sl_backend));
	map_writes_init(&c->vipw, m->vip_fd, sizeof(__u32), sizeof(struct sl_svc_key));
	map_writes_init(&c->slotw, m->slot_fd, sizeof(struct sl_slot_key), sizeof(struct sl_slot_val));
	map_writes_init(&c->svcw, m->svc_fd, sizeof(struct sl_svc_key), sizeof(struct sl_svc_val));

	/* what the last apply left, or the maps themselves; until this
	 * apply succeeds, nothing is known */
	if (m->known) {
		c->live = *m->known;
		free(m->known);
		m->known = NULL;
	} else {
		c->from_read = true;
		rc = lbmap_read(m, &c->live);
		if (rc) {
			snprintf(err, errlen, "reading pinned maps: %s", strerror(-rc));
			goto out;
		}
	}
	rc = check_capacity(c->m, want, &c->live, err, errlen);
	if (rc)
		goto out;
	for (size_t i = 0; i < c->live.nsvc; i++)
		idset_add(&c->svc_ids, c->live.svc[i].val.svc_id);
	for (size_t i = 0; i < c->live.nslotkeys; i++)
		idset_add(&c->svc_ids, c->live.slotkeys[i].svc_id);
	for (size_t i = 0; i < c->live.nbe; i++)
		idset_add(&c->be_ids, c->live.be[i].id);
	c->svc_ids.next = idset_hint(&c->svc_ids, m->svc_next);
	c->be_ids.next = idset_hint(&c->be_ids, m->be_next);

	/* each wanted service's place in live (sorted; the snapshot's keys
	 * are unique), and the live ones wanted */
	wanted = calloc(c->live.nsvc ?: 1, sizeof(*wanted));
	if (!wanted) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < want->nservices; i++) {
		struct live_svc key = { .key = want->services[i].key }, *l = c->live.nsvc ?
			bsearch(&key, c->live.svc, c->live.nsvc, sizeof(key), lb_cmp_svc) : NULL;

		c->pos[i] = l ? l - c->live.svc : -1;
		if (l)
			wanted[l - c->live.svc] = true;
	}

	/* 1. services that go away: entry first, then its slots. Their ids
	 * stay reserved for this apply, so a connect() that read the old
	 * entry never finds a new service's slots under the same id. */
	for (size_t i = 0; i < c->live.nsvc; i++) {
		struct live_svc *l = &c->live.svc[i];

		if (wanted[i])
			continue;
		bpf_map_delete_elem(m->svc_fd, &l->key);
		delete_slots(c, l->val.svc_id, l->val.gen, l->val.count);
		c->st.svc_removed++;
	}

	/* 2. services that are new or changed */
	for (size_t i = 0; i < want->nservices; i++) {
		uint32_t id;

		rc = upsert_service(c, &want->services[i],
				    c->pos[i] >= 0 ? &c->live.svc[c->pos[i]] : NULL, &id);
		if (rc == 0 && st && st->svc_ids)
			st->svc_ids[i] = id;
		if (rc) {
			snprintf(err, errlen, "writing service \"%s\": %s",
				 want->services[i].name, strerror(-rc));
			goto out;
		}
	}
	rc = flush_services(c);
	if (rc) {
		snprintf(err, errlen, "writing services: %s", strerror(-rc));
		goto out;
	}

	/* 3. what nothing points at any more */
	for (size_t i = 0; i < c->live.nbe; i++) {
		if (idset_has(&c->be_ref, c->live.be[i].id))
			continue;
		bpf_map_delete_elem(m->be_fd, &c->live.be[i].id);
		c->st.be_removed++;
	}
	/* slots of no live generation: only a read finds any (what an apply
	 * leaves has none: it deletes the slots it replaces) */
	for (size_t i = 0; i < c->live.nslotkeys; i++) {
		struct sl_slot_key *k = &c->live.slotkeys[i];

		if (c->final_gen[k->svc_id] == k->gen && k->idx < c->final_count[k->svc_id])
			continue;
		if (bpf_map_delete_elem(m->slot_fd, k) == 0)
			c->st.slots_gc++;
	}
	gc_states(c);
	m->svc_next = c->svc_ids.next;
	m->be_next = c->be_ids.next;
	rc = next_finish(c);
	if (!rc) {
		m->known = malloc(sizeof(*m->known));
		if (m->known) {
			*m->known = c->next;
			c->next = (struct lb_live){};
		}
	}
	rc = 0;   /* the maps hold `want`; only what is known was lost */
out:
	if (st) {
		uint32_t *ids = st->svc_ids;

		*st = c->st;
		st->svc_ids = ids;
	}
	lb_live_free(&c->live);
	lb_live_free(&c->next);
	map_writes_free(&c->bew);
	map_writes_free(&c->vipw);
	map_writes_free(&c->slotw);
	map_writes_free(&c->svcw);
	free(c->after);
	free(c->newbe);
	free(c->bekeys);
	free(c->final_count);
	free(c->final_gen);
	free(wanted);
	free(c->pos);
	free(c);
	return rc;
}
