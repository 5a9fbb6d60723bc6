// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * AuthorizationPolicy -> the kernel's (action, source, destination, proto,
 * port) entries, with Istio's semantics (docs/config.md):
 *
 *  - A policy applies to the workloads of its namespace that its selector
 *    matches (all of them without one); a root-namespace (istio-system)
 *    policy to every namespace. Entries are per destination identity.
 *  - DENY: an entry per (source, port) a rule matches; no rules: nothing.
 *  - ALLOW: the destination becomes default-deny (the kernel's per
 *    destination flag, set by any ALLOW entry) and gets an entry per
 *    (source, port) a rule matches. No rules: nothing matches, so all TCP
 *    is denied; rules: [{}]: one (any, any) entry.
 *  - Sources are sets over every identity the kernel can see (reserved,
 *    workloads, CIDR identities), so not* fields are exact complements;
 *    a set that holds all of them is the wildcard. ipBlocks name CIDR
 *    identities plus the workloads whose addresses fall inside.
 *  - Istio's AuthorizationPolicy governs TCP; UDP to a destination that has
 *    ALLOW policies is allowed by one (any, UDP, any port) entry, so that
 *    the kernel's default-deny does not reach beyond what Istio decides.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "lib/compile/compile_policy.h"
#include "lib/core/addr.h"

#define ERR SL_DIAG_ERROR

/* ---- identity sets: bitmaps over x->uni ---------------------------------------- */

typedef uint64_t *idset;

static size_t set_words(const struct sl_cctx *x)
{
	return (x->nuni + 63) / 64 ?: 1;
}

static idset set_new(const struct sl_cctx *x, bool full)
{
	idset s = calloc(set_words(x), sizeof(uint64_t));

	for (size_t i = 0; s && full && i < x->nuni; i++)
		s[i / 64] |= 1ull << (i % 64);
	return s;
}

static void set_add(idset s, size_t i) { s[i / 64] |= 1ull << (i % 64); }
static bool set_has(const idset s, size_t i) { return s[i / 64] >> (i % 64) & 1; }

static void set_and(const struct sl_cctx *x, idset a, const idset b)
{
	for (size_t i = 0; i < set_words(x); i++)
		a[i] &= b[i];
}

static void set_or(const struct sl_cctx *x, idset a, const idset b)
{
	for (size_t i = 0; i < set_words(x); i++)
		a[i] |= b[i];
}

/* a &= ~b */
static void set_andnot(const struct sl_cctx *x, idset a, const idset b)
{
	for (size_t i = 0; i < set_words(x); i++)
		a[i] &= ~b[i];
}

static size_t set_count(const struct sl_cctx *x, const idset s)
{
	size_t n = 0;

	for (size_t i = 0; i < x->nuni; i++)
		n += set_has(s, i);
	return n;
}

static size_t uni_index(const struct sl_cctx *x, uint32_t id)
{
	size_t lo = 0, hi = x->nuni;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (x->uni[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Istio's match: exact, "*", "prefix*" or "*suffix". */
static bool wild_match(const char *pat, const char *s)
{
	size_t lp = strlen(pat), ls = strlen(s);

	if (!strcmp(pat, "*"))
		return true;
	if (pat[0] == '*')
		return ls >= lp - 1 && !strcmp(s + ls - (lp - 1), pat + 1);
	if (lp && pat[lp - 1] == '*')
		return !strncmp(s, pat, lp - 1);
	return !strcmp(pat, s);
}

/* Identities whose principal (what = 0) or namespace (what = 1) matches
 * any pattern of the list. */
static idset match_set(const struct sl_cctx *x, const json_t *patterns, int what)
{
	idset s = set_new(x, false);
	const json_t *p;
	size_t k;

	for (size_t i = 0; s && i < x->nuni; i++) {
		const char *v = what ? x->uni[i].ns : x->uni[i].principal;

		json_array_foreach(patterns, k, p)
			if (v && wild_match(json_string_value(p), v))
				set_add(s, i);
	}
	return s;
}

/* Is w's address of family v6 in one of `cidrs` (*fam: the list has a
 * CIDR of that family and w an address of it)? */
static bool wl_in(const struct sl_wl *w, bool v6, const json_t *cidrs, bool *fam)
{
	struct sl_ipcache_key a = { .prefixlen = 128 }, c;
	const json_t *x;
	bool hit = false;
	size_t k;

	*fam = false;
	if (!(v6 ? w->has6 : w->has4))
		return false;
	memcpy(a.addr, v6 ? w->addr6 : w->addr4, 16);
	json_array_foreach(cidrs, k, x) {
		if (cidr_parse(json_string_value(x), &c) ||
		    (addr_is_v4(c.addr) && c.prefixlen >= 96) == v6)
			continue;
		*fam = true;
		hit |= cidr_contains(&c, &a);
	}
	return hit;
}

/*
 * The identities the addresses of `cidrs` have in the kernel: the CIDR
 * identities inside them and the workloads inside them. A workload identity
 * with addresses both in and out (in one family) cannot be split: error.
 */
static idset cover_set(const struct sl_cctx *x, const json_t *cidrs,
		       const struct sl_resource *ap, const char *field)
{
	idset s = set_new(x, false), in = set_new(x, false), out = set_new(x, false);
	const json_t *c;
	size_t k;

	if (!s || !in || !out)
		goto fail;
	json_array_foreach(cidrs, k, c) {
		struct sl_ipcache_key key;

		if (cidr_parse(json_string_value(c), &key))
			continue; /* validated already */
		for (size_t i = 0; i < x->nuni; i++)
			if (x->uni[i].cidr && cidr_contains(&key, &x->uni[i].key))
				set_add(s, i);
	}
	for (size_t i = 0; i < x->m.nwl; i++) {
		size_t u = uni_index(x, x->wl_id[i]);

		for (int v6 = 0; v6 < 2; v6++) {
			bool fam, hit = wl_in(&x->m.wl[i], v6, cidrs, &fam);

			if (fam)
				set_add(hit ? in : out, u);
		}
	}
	for (size_t i = 0; i < x->nuni; i++) {
		if (!set_has(in, i))
			continue;
		if (set_has(out, i)) {
			sl_diag_res(x->d, ERR, ap, field, "covers some but not all addresses of "
				    "identity spiffe://%s: the kernel decides per identity, so an "
				    "ipBlock must hold all of an identity's addresses or none",
				    x->uni[i].principal);
			goto fail;
		}
		set_add(s, i);
	}
	free(in);
	free(out);
	return s;
fail:
	free(s);
	free(in);
	free(out);
	return NULL;
}

/* s &= the set of `values`, s &= ~the set of `notValues`, for one kind.
 * 0, -EINVAL (an error diagnostic) or -ENOMEM. */
static int narrow(const struct sl_cctx *x, idset s, const json_t *values, const json_t *not,
		  int kind, const struct sl_resource *ap, const char *field)
{
	size_t errors = x->d->nerrors;

	for (int pass = 0; pass < 2; pass++) {
		const json_t *list = pass ? not : values;
		idset m;

		if (!list)
			continue;
		m = kind == 2 ? cover_set(x, list, ap, field) : match_set(x, list, kind);
		if (!m)
			return x->d->nerrors > errors ? -EINVAL : -ENOMEM;
		if (pass)
			set_andnot(x, s, m);
		else
			set_and(x, s, m);
		free(m);
	}
	return 0;
}

/* The sources one from[].source matches. */
static idset source_set(const struct sl_cctx *x, const json_t *src,
			const struct sl_resource *ap, const char *path)
{
	static const struct { const char *yes, *no; int kind; } f[] = {
		{ "principals", "notPrincipals", 0 },
		{ "namespaces", "notNamespaces", 1 },
		{ "ipBlocks", "notIpBlocks", 2 },
		{ "remoteIpBlocks", "notRemoteIpBlocks", 2 },
	};
	idset s = set_new(x, true);

	for (size_t i = 0; s && i < sizeof(f) / sizeof(f[0]); i++) {
		char field[160];

		snprintf(field, sizeof(field), "%s.%s", path, f[i].yes);
		if (narrow(x, s, json_object_get(src, f[i].yes), json_object_get(src, f[i].no),
			   f[i].kind, ap, field)) {
			free(s);
			return NULL;
		}
	}
	return s;
}

/* ---- port sets --------------------------------------------------------------------- */

struct pset {
	bool any;
	size_t n;
	uint16_t v[64];  /* beyond that: refused below */
};

static long port_of(const json_t *v)
{
	return json_is_integer(v) ? (long)json_integer_value(v) :
		strtol(json_string_value(v) ?: "0", NULL, 10);
}

static bool pset_has(const struct pset *p, long port)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i] == port)
			return true;
	return false;
}

/* 0, or -ENOSPC past 64 ports. */
static int pset_add(struct pset *p, long port)
{
	if (pset_has(p, port))
		return 0;
	if (p->n == sizeof(p->v) / sizeof(p->v[0]))
		return -ENOSPC;
	p->v[p->n++] = (uint16_t)port;
	return 0;
}

/* The ports the destination identity's workloads are known to serve. */
static void known_ports(const struct sl_cctx *x, uint32_t dst, struct pset *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < x->m.nwl; i++) {
		const struct sl_wl *w = &x->m.wl[i];
		const char *k;
		json_t *v;

		if (x->wl_id[i] != dst)
			continue;
		json_object_foreach((json_t *)w->ports, k, v)
			pset_add(out, json_integer_value(v));
		for (size_t s = 0; s < x->m.nsvc; s++) {
			const struct sl_svc *svc = &x->m.svc[s];

			if (!svc->selector || strcmp(sl_resource_namespace(svc->r), w->ns) ||
			    !sl_labels_match(svc->selector, w->labels))
				continue;
			for (size_t p = 0; p < svc->nports; p++)
				if (sl_backend_port(w, &svc->ports[p]))
					pset_add(out, sl_backend_port(w, &svc->ports[p]));
		}
	}
}

/*
 * p = p minus `not`. "Any port but these" has no exact form in the kernel
 * (a wildcard cannot be carved): for ALLOW it becomes the destination's
 * known ports but these (allows less, never more); for DENY it is refused.
 */
static int pset_minus(const struct sl_cctx *x, struct pset *p, const json_t *not, bool deny,
		      uint32_t dst, const struct sl_resource *ap, const char *field)
{
	struct pset keep = { .any = false };
	const json_t *v;
	size_t i;

	if (!not)
		return 0;
	if (p->any) {
		if (deny) {
			sl_diag_res(x->d, ERR, ap, field, "a DENY on every port but some cannot be "
				    "compiled to the kernel's exact entries without leaving ports "
				    "open; list the ports to deny");
			return -EINVAL;
		}
		known_ports(x, dst, p);
	}
	for (size_t k = 0; k < p->n; k++) {
		bool drop = false;

		json_array_foreach(not, i, v)
			drop |= port_of(v) == p->v[k];
		if (!drop)
			pset_add(&keep, p->v[k]);
	}
	*p = keep;
	return 0;
}

static int pset_values(struct pset *p, const json_t *values, const struct sl_cctx *x,
		       const struct sl_resource *ap, const char *field)
{
	const json_t *v;
	size_t i;

	json_array_foreach(values, i, v) {
		if (pset_add(p, port_of(v))) {
			sl_diag_res(x->d, ERR, ap, field, "more than 64 ports in one rule");
			return -EINVAL;
		}
	}
	return 0;
}

/* The ports the to[] list matches. */
static int to_ports(const struct sl_cctx *x, const json_t *to, bool deny, uint32_t dst,
		    const struct sl_resource *ap, const char *path, struct pset *out)
{
	const json_t *t;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	out->any = !json_array_size(to);
	json_array_foreach(to, i, t) {
		const json_t *op = json_object_get(t, "operation");
		const json_t *ports = json_object_get(op, "ports");
		struct pset p = { .any = !ports };
		char field[160];

		snprintf(field, sizeof(field), "%s.to[%zu].operation.ports", path, i);
		rc = pset_values(&p, ports, x, ap, field);
		if (rc)
			return rc;
		snprintf(field, sizeof(field), "%s.to[%zu].operation.notPorts", path, i);
		rc = pset_minus(x, &p, json_object_get(op, "notPorts"), deny, dst, ap, field);
		if (rc)
			return rc;
		if (p.any)
			out->any = true;
		for (size_t k = 0; k < p.n; k++) {
			rc = pset_add(out, p.v[k]);
			if (rc)
				return rc;
		}
	}
	if (out->any)
		out->n = 0;
	return 0;
}

/* ---- entries --------------------------------------------------------------------- */

struct pent {
	uint32_t dst, src;
	uint16_t port;
	uint8_t proto, deny;
};

struct pents {
	size_t n, cap;
	struct pent *v;
};

static int pent_add(struct pents *e, uint32_t dst, uint32_t src, uint16_t port, uint8_t proto,
		    bool deny)
{
	if (e->n == e->cap) {
		struct pent *v = realloc(e->v, (e->cap = e->cap * 2 + 64) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		e->v = v;
	}
	e->v[e->n++] = (struct pent){ dst, src, port, proto, deny };
	return 0;
}

/* destination.ip: does it hold for all of the destination's addresses
 * (1), none (0), or some (-EINVAL, an error diagnostic)? */
static int dst_ip_holds(const struct sl_cctx *x, uint32_t dst, const json_t *w,
			const struct sl_resource *ap, const char *field)
{
	size_t yes = 0, no = 0;

	for (size_t i = 0; i < x->m.nwl; i++) {
		const struct sl_wl *wl = &x->m.wl[i];

		if (x->wl_id[i] != dst)
			continue;
		for (int fam = 0; fam < 2; fam++) {
			struct sl_ipcache_key a = { .prefixlen = 128 };
			bool in_v = false, in_n = false;
			const json_t *c;
			size_t k;

			if (!(fam ? wl->has6 : wl->has4))
				continue;
			memcpy(a.addr, fam ? wl->addr6 : wl->addr4, 16);
			json_array_foreach(json_object_get(w, "values"), k, c) {
				struct sl_ipcache_key ck;

				in_v |= !cidr_parse(json_string_value(c), &ck) && cidr_contains(&ck, &a);
			}
			json_array_foreach(json_object_get(w, "notValues"), k, c) {
				struct sl_ipcache_key ck;

				in_n |= !cidr_parse(json_string_value(c), &ck) && cidr_contains(&ck, &a);
			}
			if ((!json_object_get(w, "values") || in_v) && !in_n)
				yes++;
			else
				no++;
		}
	}
	if (yes && no) {
		sl_diag_res(x->d, ERR, ap, field, "holds for some addresses of the destination "
			    "identity but not all: the kernel decides per identity");
		return -EINVAL;
	}
	return yes > 0;
}

/* when[]: narrow the sources and ports; 1, 0 if the rule can never match,
 * or -errno. */
static int apply_when(const struct sl_cctx *x, const json_t *when, idset s, struct pset *p,
		      bool deny, uint32_t dst, const struct sl_resource *ap, const char *path)
{
	const json_t *w;
	size_t i;

	json_array_foreach(when, i, w) {
		const char *key = json_string_value(json_object_get(w, "key"));
		const json_t *vals = json_object_get(w, "values"), *nots = json_object_get(w, "notValues");
		char field[160];
		int kind = -1, rc;

		snprintf(field, sizeof(field), "%s.when[%zu]", path, i);
		if (!strcmp(key, "source.principal"))
			kind = 0;
		else if (!strcmp(key, "source.namespace"))
			kind = 1;
		else if (!strcmp(key, "source.ip") || !strcmp(key, "remote.ip"))
			kind = 2;
		if (kind >= 0) {
			rc = narrow(x, s, vals, nots, kind, ap, field);
			if (rc)
				return rc;
		} else if (!strcmp(key, "destination.port")) {
			struct pset v = { .any = !vals };

			rc = pset_values(&v, vals, x, ap, field);
			if (rc)
				return rc;
			if (!p->any && !v.any) { /* intersect */
				struct pset both = { .any = false };

				for (size_t k = 0; k < p->n; k++)
					if (pset_has(&v, p->v[k]))
						pset_add(&both, p->v[k]);
				v = both;
			} else if (v.any) {
				v = *p;
			}
			rc = pset_minus(x, &v, nots, deny, dst, ap, field);
			if (rc)
				return rc;
			*p = v;
		} else { /* destination.ip */
			int h = dst_ip_holds(x, dst, w, ap, field);

			if (h <= 0)
				return h;
		}
	}
	return 1;
}

/* One rule of policy ap for destination identity dst. */
static int compile_rule(const struct sl_cctx *x, const struct sl_resource *ap,
			const json_t *rule, const char *path, uint32_t dst, bool deny,
			struct pents *out)
{
	const json_t *from = json_object_get(rule, "from"), *f;
	idset s = set_new(x, !json_array_size(from));
	struct pset p;
	size_t i, errors = x->d->nerrors;
	int rc;

	if (!s)
		return -ENOMEM;
	json_array_foreach(from, i, f) {
		char field[160];
		idset one;

		snprintf(field, sizeof(field), "%s.from[%zu].source", path, i);
		one = source_set(x, json_object_get(f, "source"), ap, field);
		if (!one) {
			rc = x->d->nerrors > errors ? -EINVAL : -ENOMEM;
			goto out;
		}
		set_or(x, s, one);
		free(one);
	}
	rc = to_ports(x, json_object_get(rule, "to"), deny, dst, ap, path, &p);
	if (rc)
		goto out;
	rc = apply_when(x, json_object_get(rule, "when"), s, &p, deny, dst, ap, path);
	if (rc <= 0)
		goto out;
	rc = 0;
	if (!p.any && !p.n)
		goto out;
	/* a set holding every identity the kernel knows is the wildcard */
	if (set_count(x, s) == x->nuni) {
		for (size_t k = 0; k < (p.any ? 1 : p.n) && !rc; k++)
			rc = pent_add(out, dst, SL_ID_ANY, p.any ? 0 : p.v[k], IPPROTO_TCP, deny);
		goto out;
	}
	for (size_t u = 0; u < x->nuni && !rc; u++) {
		if (!set_has(s, u))
			continue;
		for (size_t k = 0; k < (p.any ? 1 : p.n) && !rc; k++)
			rc = pent_add(out, dst, x->uni[u].id, p.any ? 0 : p.v[k], IPPROTO_TCP, deny);
	}
out:
	free(s);
	return rc;
}

/* Is destination identity dst selected by ap? (All of an identity's
 * workloads are, or none: sl_config_check.) */
static bool selects_identity(const struct sl_cctx *x, const struct sl_resource *ap, uint32_t dst)
{
	for (size_t i = 0; i < x->m.nwl; i++)
		if (x->wl_id[i] == dst && sl_policy_selects(ap, &x->m.wl[i]))
			return true;
	return false;
}

static int pent_cmp(const void *a, const void *b)
{
	const struct pent *x = a, *y = b;

	if (x->dst != y->dst)
		return x->dst < y->dst ? -1 : 1;
	if (x->src != y->src)
		return x->src < y->src ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	return (int)x->deny - (int)y->deny;
}

static json_t *entries_json(struct pents *e)
{
	json_t *a = json_array();

	if (e->n)
		qsort(e->v, e->n, sizeof(*e->v), pent_cmp);
	for (size_t i = 0; a && i < e->n; i++) {
		const struct pent *p = &e->v[i];
		json_t *j;

		if (i && !pent_cmp(p, &e->v[i - 1]))
			continue;
		j = json_pack("{s:s, s:o, s:I, s:s}", "action", p->deny ? "DENY" : "ALLOW",
			      "source", p->src == SL_ID_ANY ? json_string("*") :
			      json_integer(p->src), "destination", (json_int_t)p->dst,
			      "protocol", p->proto == IPPROTO_UDP ? "UDP" : "TCP");
		if (p->port)
			json_object_set_new(j, "port", json_integer(p->port));
		if (json_array_append_new(a, j)) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static int compile_policy(const struct sl_cctx *x, const struct sl_resource *ap, uint32_t dst,
			  struct pents *out)
{
	const json_t *spec = json_object_get(sl_resource_json(ap), "spec"), *rule;
	const char *action = json_string_value(json_object_get(spec, "action")) ?: "ALLOW";
	bool deny = !strcmp(action, "DENY");
	size_t i;
	int rc;

	/* ALLOW makes the destination default-deny for TCP; UDP stays outside
	 * AuthorizationPolicy, as in Istio */
	if (!deny && pent_add(out, dst, SL_ID_ANY, 0, IPPROTO_UDP, false))
		return -ENOMEM;
	json_array_foreach(json_object_get(spec, "rules"), i, rule) {
		char path[64];

		snprintf(path, sizeof(path), "spec.rules[%zu]", i);
		rc = compile_rule(x, ap, rule, path, dst, deny, out);
		if (rc)
			return rc;
	}
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Sort and drop duplicates; the new count. */
static size_t ids_unique(uint32_t *ids, size_t n)
{
	size_t m = 0;

	qsort(ids, n, sizeof(*ids), u32_cmp);
	for (size_t i = 0; i < n; i++)
		if (!m || ids[m - 1] != ids[i])
			ids[m++] = ids[i];
	return m;
}

static bool id_in(const uint32_t *ids, size_t n, uint32_t id)
{
	return n && bsearch(&id, ids, n, sizeof(*ids), u32_cmp);
}

/*
 * Every workload identity is a destination here, wherever it runs:
 * connect() on this node decides for this node's clients (EACCES at once),
 * tc at the destination for everyone else. Entries for a destination on
 * another node are kept only when they can concern a client on this one:
 * source "*" (which also keeps the UDP ALLOW entry that makes a
 * destination default-deny) or a local identity.
 */
json_t *sl_compile_policies(struct sl_cctx *x)
{
	struct pents e = {};
	uint32_t *all = calloc(x->m.nwl + 1, sizeof(*all));
	uint32_t *local = calloc(x->m.nwl + 1, sizeof(*local));
	size_t nall = 0, nlocal = 0, n = 0;
	json_t *out = NULL;

	if (!all || !local)
		goto out;
	for (size_t i = 0; i < x->m.nwl; i++) {
		all[nall++] = x->wl_id[i];
		if (x->m.wl[i].node && !strcmp(x->m.wl[i].node, x->node))
			local[nlocal++] = x->wl_id[i];
	}
	nall = ids_unique(all, nall);
	nlocal = ids_unique(local, nlocal);
	for (size_t p = 0; p < x->naps; p++)
		for (size_t k = 0; k < nall; k++)
			if (selects_identity(x, x->aps[p], all[k]) &&
			    compile_policy(x, x->aps[p], all[k], &e))
				goto out;
	for (size_t i = 0; i < e.n; i++)
		if (id_in(local, nlocal, e.v[i].dst) || e.v[i].src == SL_ID_ANY ||
		    id_in(local, nlocal, e.v[i].src))
			e.v[n++] = e.v[i];
	e.n = n;
	out = entries_json(&e);
out:
	free(all);
	free(local);
	free(e.v);
	return out;
}
