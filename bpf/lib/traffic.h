/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * traffic.h - a service's traffic policy at connect() time: load-balancing
 * algorithm, session affinity, outlier ejection and the connection cap
 * (headers/sluice_traffic.h). Shared by the socket programs (choose and
 * admit) and sockops (connect failures and successes, release).
 *
 * A service without SL_SVC_F_POLICY costs what lb.h costs. With a policy,
 * the choice stays bounded: at most SL_PICK_TRIES random picks that skip
 * ejected backends (rejection sampling keeps the weights of the others),
 * then a linear scan of SL_PICK_SCAN slots; if every backend it sees is
 * ejected the first pick stands, and when every backend of the service is
 * ejected nothing is skipped at all (Envoy's panic mode).
 *
 * Helpers return 0 or -errno; locks are held only around plain loads and
 * stores (the verifier allows no calls under a bpf_spin_lock).
 */
#ifndef SL_BPF_TRAFFIC_H
#define SL_BPF_TRAFFIC_H

#include "common.h"
#include "lb.h"
#include "flow.h"
#include "sluice_traffic.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct sl_svc_policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svc_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct sl_svc_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svc_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_BE_STATE);
	__type(key, struct sl_be_key);
	__type(value, struct sl_be_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_be_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SL_MAX_HELD);
	__type(key, __u64);
	__type(value, struct sl_held);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_held SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_AFFINITY);
	__type(key, struct sl_aff_key);
	__type(value, struct sl_aff_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sl_tp_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_tp_config SEC(".maps");

/* May any socket hold a slot? An array lookup the verifier inlines. */
static __always_inline bool tp_maybe_held(void)
{
	__u32 zero = 0;
	struct sl_tp_config *c = bpf_map_lookup_elem(&sl_tp_config, &zero);

	return c && c->held;
}

#define SL_PICK_TRIES 8
#define SL_PICK_SCAN  16
#define SL_NS_PER_SEC 1000000000ull

/* What the choice found, for the admission that follows authorization. */
struct tp_choice {
	const struct sl_svc_policy *pol; /* NULL: the service has no policy */
	__u32 svc_id;
	__u32 bid;
};

/* splitmix64's finalizer: spreads sequential netns cookies */
static __always_inline __u64 tp_mix(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* The agent creates both states for every service with a policy and its
 * backends before the service entry points at them (sluice_traffic.h). */
static __always_inline struct sl_svc_state *tp_svc_state(__u32 svc_id)
{
	return bpf_map_lookup_elem(&sl_svc_state, &svc_id);
}

static __always_inline struct sl_be_state *tp_be_state(__u32 svc_id, __u32 bid)
{
	struct sl_be_key k = { .svc_id = svc_id, .backend_id = bid };

	return bpf_map_lookup_elem(&sl_be_state, &k);
}

/* One backend fewer in the service's count of ejected ones. */
static __always_inline void tp_uneject(struct sl_svc_state *st)
{
	bpf_spin_lock(&st->lock);
	if (st->ejected)
		st->ejected--;
	bpf_spin_unlock(&st->lock);
}

/* Is the backend ejected now? An ejection that has ended is cleared by
 * the first connect that sees it, which also gives its place back in the
 * service's count of ejected backends (maxEjectionPercent). */
static __always_inline bool tp_ejected(struct sl_be_state *bs, struct sl_svc_state *st, __u64 now)
{
	__u64 until = bs->until;
	bool cleared = false;

	if (!until)
		return false;
	if (now < until)
		return true;
	bpf_spin_lock(&bs->lock);
	if (bs->until && now >= bs->until) {
		bs->last_until = bs->until;
		bs->until = 0;
		cleared = true;
	}
	bpf_spin_unlock(&bs->lock);
	if (cleared)
		tp_uneject(st);
	return false;
}

static __always_inline __u32 tp_slot(__u32 svc_id, __u8 gen, __u32 idx)
{
	struct sl_slot_key k = { .svc_id = svc_id, .gen = gen, .idx = idx };
	struct sl_slot_val *v = bpf_map_lookup_elem(&sl_slots, &k);

	return v ? v->backend_id : 0;
}

/* tp_choose()'s flags argument */
#define TP_OD   0x100 /* the service has outlier detection */
#define TP_SKIP 0x200 /* skip ejected backends (not in panic) */
#define TP_GEN  0x400 /* the live slot generation is 1 */

/* Is slot idx's backend usable (or the choice over)? Its id in *bid, 0
 * if the slot is missing. */
static __always_inline bool tp_usable(__u32 svc_id, __u8 gen, __u32 idx, struct sl_svc_state *st,
				      bool skip, __u64 now, __u32 *bid)
{
	struct sl_be_state *bs;

	*bid = tp_slot(svc_id, gen, idx);
	if (!*bid || !st)
		return true;
	bs = tp_be_state(svc_id, *bid);
	/* an expired ejection is cleared here even in panic */
	return !bs || !tp_ejected(bs, st, now) || !skip;
}

/*
 * A backend from slot idx on, skipping ejected ones when asked: the
 * retries follow a pseudo-random sequence (the client's own for
 * SOURCE_HASH), then scan on linearly. 0 if a slot is missing (the
 * service flipped generation under us). A global function: the verifier
 * checks it once, not once per path of its callers; and the loops' bodies
 * have one way to go on, so that old verifiers (5.10), which prune loop
 * states less, stay linear. flags: the lb algorithm | TP_*.
 */
__noinline int tp_choose(__u32 svc_id, __u32 flags, __u32 count, __u32 idx, __u64 client)
{
	__u8 gen = flags & TP_GEN ? 1 : 0;
	bool skip = flags & TP_SKIP;
	struct sl_svc_state *st = NULL;
	__u32 first, bid;
	__u64 now = 0, seed;

	if (!count)
		return 0;
	if (flags & TP_OD) {
		st = bpf_map_lookup_elem(&sl_svc_state, &svc_id);
		now = bpf_ktime_get_ns();
	}
	idx %= count;
	if (tp_usable(svc_id, gen, idx, st, skip, now, &first))
		return (int)first;
	seed = (flags & 0xff) == SL_LB_SOURCE_HASH ? client :
		((__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32());
	for (__u32 i = 1; i < SL_PICK_TRIES; i++) {
		idx = (__u32)(tp_mix(seed + i) % count);
		if (tp_usable(svc_id, gen, idx, st, skip, now, &bid))
			return bid ? (int)bid : 0;
	}
	/* (idx + i) % count, not a running idx: a running value's bounds
	 * change every iteration, and 5.10 then verifies each path apart */
	for (__u32 i = 1; i <= SL_PICK_SCAN; i++) {
		if (tp_usable(svc_id, gen, (idx + i) % count, st, skip, now, &bid))
			return bid ? (int)bid : 0;
	}
	return (int)first;
}

/* Open connections from this node to backend bid of the service. */
static __always_inline __s32 tp_active(__u32 svc_id, __u32 bid)
{
	struct sl_be_key k = { .svc_id = svc_id, .backend_id = bid };
	struct sl_be_state *bs = bpf_map_lookup_elem(&sl_be_state, &k);

	return bs ? bs->active : 0;
}

/* A backend id for service svc_id (policy, state, slots as in the maps),
 * 0 as tp_choose(). Global, as tp_choose(). */
__noinline int tp_pick(__u32 svc_id, __u32 count, __u32 gen, __u64 client)
{
	const struct sl_svc_policy *pol = bpf_map_lookup_elem(&sl_svc_policy, &svc_id);
	__u32 tag = count << 1 | (gen & 1), idx, idx2, flags, bid, bid2;
	struct sl_aff_key ak = { .client = client, .svc_id = svc_id };
	struct sl_aff_val av = {}, *a = NULL;
	struct sl_svc_state *st;
	struct sl_be_state *bs;
	__u64 now = 0, aff;
	bool od;
	__u8 lb;

	if (!pol || !count)
		return 0;
	lb = pol->lb;
	aff = pol->affinity_ns;
	od = pol->od_consecutive != 0;
	st = tp_svc_state(svc_id);
	flags = lb | (gen & 1 ? TP_GEN : 0);
	if (od && st) {
		__u32 nb = pol->nbackends, ej = st->ejected;

		flags |= TP_OD;
		/* panic (Envoy's): with every backend ejected, or fewer healthy
		 * than minHealthPercent, none is skipped */
		if (ej < nb && (nb - ej) * 100 >= (__u32)pol->od_min_health * nb)
			flags |= TP_SKIP;
	}
	if (aff) {
		now = bpf_ktime_get_ns();
		a = bpf_map_lookup_elem(&sl_affinity, &ak);
		if (a && a->tag == tag && now - a->last_ns < aff) {
			bid = a->backend_id;
			bs = tp_be_state(svc_id, bid);
			if (!(flags & TP_SKIP) || !bs || !st || !tp_ejected(bs, st, now)) {
				/* the timeout counts from the last use, to the second */
				if (now - a->last_ns > SL_NS_PER_SEC)
					a->last_ns = now;
				return (int)bid;
			}
		}
	}

	if (lb == SL_LB_ROUND_ROBIN && st)
		idx = st->rr++; /* racy on purpose: two CPUs may share a turn */
	else if (lb == SL_LB_SOURCE_HASH)
		idx = (__u32)(tp_mix(client) % count);
	else
		idx = bpf_get_prandom_u32();
	idx %= count;
	bid = (__u32)tp_choose(svc_id, flags, count, idx, client);
	idx2 = lb == SL_LB_LEAST_REQUEST ? bpf_get_prandom_u32() % count : idx;
	if (bid && idx2 != idx) {
		/* power of two choices: the second candidate wins only if it
		 * has fewer connections open from this node (the same slot
		 * twice, always so with one, is no second candidate) */
		bid2 = (__u32)tp_choose(svc_id, flags, count, idx2, client);
		if (!bid2)
			return 0;
		if (bid2 != bid && tp_active(svc_id, bid2) < tp_active(svc_id, bid))
			bid = bid2;
	}
	if (bid && aff && (!a || a->backend_id != bid || a->tag != tag)) {
		av.backend_id = bid;
		av.tag = tag;
		av.last_ns = now;
		bpf_map_update_elem(&sl_affinity, &ak, &av, BPF_ANY);
	}
	return (int)bid;
}

/* Pick a backend for VIP `key`, with the service's traffic policy when it
 * has one; NULL with *err = -ENOENT (not a service) or -ECONNREFUSED (a
 * service without backends). The agent deletes the old generation's slots
 * and unused backends right after flipping a service, so a reader that
 * loaded the old service value may find them gone: it then reads the
 * service again, which by then points at the new generation. The returned
 * map value stays valid for the rest of the program (RCU). */
static __always_inline struct sl_backend *tp_select(const struct sl_svc_key *key, __u64 client,
						    int *err, struct tp_choice *ch)
{
	struct sl_svc_val *svc;
	struct sl_backend *be;
	__u32 bid;

	/* twice at most; the second time without the policy */
	for (int attempt = 0; attempt < 2; attempt++) {
		svc = bpf_map_lookup_elem(&sl_services, key);
		if (!svc) {
			*err = -ENOENT;
			return NULL;
		}
		if (svc->count == 0) {
			*err = -ECONNREFUSED;
			return NULL;
		}
		ch->svc_id = svc->svc_id;
		ch->pol = NULL;
		if (attempt == 0 && (svc->flags & SL_SVC_F_POLICY)) {
			bid = (__u32)tp_pick(svc->svc_id, svc->count, svc->gen, client);
			ch->pol = bpf_map_lookup_elem(&sl_svc_policy, &ch->svc_id);
		} else {
			bid = tp_slot(svc->svc_id, svc->gen, bpf_get_prandom_u32() % svc->count);
		}
		be = bid ? bpf_map_lookup_elem(&sl_backends, &bid) : NULL;
		if (be) {
			ch->bid = bid;
			*err = 0;
			return be;
		}
	}
	*err = -ECONNREFUSED;
	return NULL;
}

/* Give back what socket `cookie` holds, once (see sluice_traffic.h). */
static __always_inline void tp_release(__u64 cookie)
{
	struct sl_held *hp, h;
	struct sl_svc_state *st;
	struct sl_be_state *bs;
	struct sl_be_key bk;

	if (!tp_maybe_held())
		return;
	hp = bpf_map_lookup_elem(&sl_held, &cookie);
	if (!hp)
		return;
	h = *hp;
	if (bpf_map_delete_elem(&sl_held, &cookie))
		return; /* released by the other path */
	if (h.flags & SL_HELD_POOL) {
		st = bpf_map_lookup_elem(&sl_svc_state, &h.svc_id);
		if (st) {
			bpf_spin_lock(&st->lock);
			if (st->active)
				st->active--;
			bpf_spin_unlock(&st->lock);
		}
	}
	bk.svc_id = h.svc_id;
	bk.backend_id = h.backend_id;
	bs = bpf_map_lookup_elem(&sl_be_state, &bk);
	if (bs)
		__sync_fetch_and_add(&bs->active, -1);
}

/* Take one of the service's maxConnections slots (exact: under its lock). */
static __always_inline bool tp_take(struct sl_svc_state *st, __u32 max)
{
	bool over;

	bpf_spin_lock(&st->lock);
	over = st->active >= max;
	if (!over)
		st->active++;
	bpf_spin_unlock(&st->lock);
	return !over;
}

/*
 * Admit a connect() to the chosen backend: take a maxConnections slot
 * and record what the socket holds. 0, or -ECONNREFUSED when the pool is
 * full (counted). Unconnected UDP (sendmsg) holds nothing.
 *
 * A socket that connects again (UDP; TCP after a connect that failed
 * before its SYN) may still hold a slot: that one is given back where the
 * new record cannot be added (BPF_NOEXIST fails), and the record written
 * again with BPF_ANY; or before the take when the pool is full. A first
 * connect, the common case, looks nothing up in sl_held. (Retrying only
 * on -EEXIST, with BPF_NOEXIST again, refused such a socket on 5.10; this
 * form passes on every kernel of the VM matrix.)
 */
static __always_inline int tp_admit(__u64 cookie, const struct tp_choice *ch, bool connect)
{
	const struct sl_svc_policy *pol = ch->pol;
	struct sl_svc_state *st;
	struct sl_be_state *bs;
	struct sl_be_key bk;
	struct sl_held h = {};
	__u32 max;
	long err;

	if (!pol || !connect)
		return 0;
	max = pol->max_conns;
	if (!max && pol->lb != SL_LB_LEAST_REQUEST && !pol->od_consecutive)
		return 0;
	st = bpf_map_lookup_elem(&sl_svc_state, &ch->svc_id);
	if (max) {
		if (!st)
			return -ECONNREFUSED;
		if (!tp_take(st, max)) {
			/* full, but for a slot this socket may hold */
			if (!bpf_map_lookup_elem(&sl_held, &cookie))
				goto overflow;
			tp_release(cookie);
			if (!tp_take(st, max))
				goto overflow;
		}
		h.flags = SL_HELD_POOL;
	}
	h.svc_id = ch->svc_id;
	h.backend_id = ch->bid;
	err = bpf_map_update_elem(&sl_held, &cookie, &h, BPF_NOEXIST);
	if (err) {
		tp_release(cookie);
		err = bpf_map_update_elem(&sl_held, &cookie, &h, BPF_ANY);
	}
	if (err) {
		if (max) {
			bpf_spin_lock(&st->lock);
			if (st->active)
				st->active--;
			bpf_spin_unlock(&st->lock);
		}
		return -ECONNREFUSED;
	}
	bk.svc_id = ch->svc_id;
	bk.backend_id = ch->bid;
	bs = bpf_map_lookup_elem(&sl_be_state, &bk);
	if (bs)
		__sync_fetch_and_add(&bs->active, 1);
	return 0;
overflow:
	__sync_fetch_and_add(&st->overflow, 1);
	return -ECONNREFUSED;
}

/* One flow event per ejection: the backend, the ejection count (reason)
 * and how long it lasts (duration_ns). */
static __always_inline void tp_eject_event(__u32 svc_id, __u32 bid, __u32 n, __u64 dur)
{
	struct sl_backend *be;
	struct sl_event *e;

	if (!cfg_flow_events)
		return;
	be = bpf_map_lookup_elem(&sl_backends, &bid);
	e = bpf_ringbuf_reserve(&sl_events, sizeof(*e), 0);
	if (!e) {
		count_drop(SL_DROP_EVENTS_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->type = SL_EV_EJECT;
	e->reason = n;
	e->duration_ns = dur;
	e->key.svc_id = svc_id;
	e->key.proto = IPPROTO_TCP;
	e->key.reporter = SL_REPORTER_SOURCE;
	if (be) {
		__builtin_memcpy(e->daddr, be->addr, 16);
		e->dport = be->port;
		e->key.port = bpf_ntohs(be->port);
	}
	bpf_ringbuf_submit(e, flow_wakeup());
}

/*
 * A connect failure of socket `cookie` (RST to its SYN, its SYN
 * unanswered for an RTO, the SYN retries exhausted), counted once per
 * socket. The backend's consecutive failures reach the threshold: eject it
 * for baseEjectionTime times its ejection count (less one per healthy
 * interval since its last ejection), unless that would eject more than
 * maxEjectionPercent of the service's backends.
 */
static __always_inline void tp_failed(__u64 cookie)
{
	struct sl_held *hp = tp_maybe_held() ? bpf_map_lookup_elem(&sl_held, &cookie) : NULL;
	const struct sl_svc_policy *pol;
	__u64 now, interval, base, maxd, dur = 0, decay;
	__u32 thr, pct, nb, consec, n = 0, svc_id, bid;
	struct sl_svc_state *st;
	struct sl_be_state *bs;
	struct sl_be_key bk;
	bool hit, ok, won;

	if (!hp || (hp->flags & SL_HELD_FAILED))
		return;
	hp->flags |= SL_HELD_FAILED;
	svc_id = hp->svc_id;
	bid = hp->backend_id;
	pol = bpf_map_lookup_elem(&sl_svc_policy, &svc_id);
	if (!pol || !pol->od_consecutive)
		return;
	thr = pol->od_consecutive;
	pct = pol->od_max_pct;
	nb = pol->nbackends;
	interval = pol->od_interval_ns;
	base = pol->od_base_ns;
	maxd = pol->od_max_ns;
	bk.svc_id = svc_id;
	bk.backend_id = bid;
	bs = bpf_map_lookup_elem(&sl_be_state, &bk);
	st = bpf_map_lookup_elem(&sl_svc_state, &svc_id);
	if (!bs || !st)
		return;
	now = bpf_ktime_get_ns();

	bpf_spin_lock(&bs->lock);
	bs->failures++;
	consec = ++bs->consec;
	hit = consec >= thr && !bs->until;
	bpf_spin_unlock(&bs->lock);
	if (!hit)
		return;

	bpf_spin_lock(&st->lock);
	ok = (st->ejected + 1) * 100 <= pct * nb;
	if (ok)
		st->ejected++;
	bpf_spin_unlock(&st->lock);
	if (!ok)
		return; /* stays at the threshold: the next failure tries again */

	bpf_spin_lock(&bs->lock);
	won = !bs->until;
	if (won) {
		n = bs->ejections;
		decay = bs->last_until && interval && now > bs->last_until ?
			(now - bs->last_until) / interval : 0;
		n = decay >= n ? 1 : n - (__u32)decay + 1;
		bs->ejections = n;
		dur = base * n;
		if (dur > maxd)
			dur = maxd;
		bs->until = now + dur;
		bs->consec = 0;
	}
	bpf_spin_unlock(&bs->lock);
	if (!won) {
		tp_uneject(st);
		return;
	}
	__sync_fetch_and_add(&st->ejections, 1);
	tp_eject_event(svc_id, bid, n, dur);
}

/* The handshake completed: the backend's failures are no longer in a row. */
static __always_inline bool tp_established(__u64 cookie)
{
	struct sl_held *hp;
	struct sl_be_state *bs;
	struct sl_be_key bk;

	if (!tp_maybe_held())
		return false;
	hp = bpf_map_lookup_elem(&sl_held, &cookie);
	if (!hp)
		return false;
	bk.svc_id = hp->svc_id;
	bk.backend_id = hp->backend_id;
	bs = bpf_map_lookup_elem(&sl_be_state, &bk);
	if (bs && bs->consec)
		bs->consec = 0;
	return true;
}

#endif /* SL_BPF_TRAFFIC_H */
