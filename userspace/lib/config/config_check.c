// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sl_config_check(): what no single document can say. Errors: two
 * services on one VIP, a VIP that is a workload's address, two workloads on
 * one address or one node interface, two VirtualServices or
 * DestinationRules for one host, a policy that selects part of an identity
 * (the kernel decides per identity), conflicting PeerAuthentications.
 * Warnings: routes and rules naming hosts, subsets and ports that do not
 * exist yet (order-free apply: the rule is stored and inert until they
 * do), selectors that match nothing, DestinationRule settings the data
 * plane does not enforce.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config/config_check.h"
#include "lib/config/config_model.h"
#include "lib/core/addr.h"

#define ERR SL_DIAG_ERROR
#define WARN SL_DIAG_WARNING

struct addr_use {
	__be32 a[4];
	const struct sl_resource *r;
	const char *field;      /* where r names the address */
	size_t idx;
};

static int use_cmp(const void *x, const void *y)
{
	return memcmp(((const struct addr_use *)x)->a, ((const struct addr_use *)y)->a, 16);
}

static int push_use(struct addr_use **v, size_t *n, size_t *cap, const __be32 a[4],
		    const struct sl_resource *r, const char *field, size_t idx)
{
	if (*n == *cap) {
		struct addr_use *nv = realloc(*v, (*cap = *cap * 2 + 64) * sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
	}
	memcpy((*v)[*n].a, a, 16);
	(*v)[*n].r = r;
	(*v)[*n].field = field;
	(*v)[(*n)++].idx = idx;
	return 0;
}

/* VIPs and workload addresses: each used once. */
static int check_addresses(const struct sl_model *m, struct sl_diags *d)
{
	struct addr_use *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	for (size_t i = 0; i < m->nsvc; i++)
		for (size_t k = 0; k < m->svc[i].nvips; k++)
			if (push_use(&v, &n, &cap, m->svc[i].vips[k], m->svc[i].r,
				     m->svc[i].entry ? "spec.addresses" : "spec.clusterIP", k))
				goto nomem;
	for (size_t i = 0; i < m->nwl; i++) {
		if ((m->wl[i].has4 && push_use(&v, &n, &cap, m->wl[i].addr4, m->wl[i].r,
					       "spec.address", 0)) ||
		    (m->wl[i].has6 && push_use(&v, &n, &cap, m->wl[i].addr6, m->wl[i].r,
					       "spec.address", 1)))
			goto nomem;
	}
	if (n)
		qsort(v, n, sizeof(*v), use_cmp);
	for (size_t i = 1; i < n; i++) {
		char buf[SL_ADDRSTRLEN], field[64];
		const struct addr_use *a = &v[i - 1], *b = &v[i];

		if (memcmp(a->a, b->a, 16) || a->r == b->r)
			continue;
		if (!strcmp(b->field, "spec.addresses"))
			snprintf(field, sizeof(field), "spec.addresses[%zu]", b->idx);
		else
			snprintf(field, sizeof(field), "%s", b->field);
		sl_diag_res(d, ERR, b->r, field, "%s is also used by %s (%s): VIPs and "
			    "workload addresses must not overlap", addr_fmt(b->a, buf),
			    SL_RES_ID(sl_resource_kind(a->r), sl_resource_namespace(a->r),
				      sl_resource_name(a->r)), a->field);
		rc = -EINVAL;
	}
	free(v);
	return rc;
nomem:
	free(v);
	sl_diag_add(d, ERR, "out of memory");
	return -ENOMEM;
}

static int place_cmp(const void *x, const void *y)
{
	const struct sl_wl *a = *(const struct sl_wl *const *)x, *b = *(const struct sl_wl *const *)y;
	int c = strcmp(a->node, b->node);

	c = c ?: strcmp(a->ifname, b->ifname);
	return c ?: (a > b) - (a < b);
}

/* Two workloads placed on one node's interface (sorted: O(n log n)). */
static int check_placement(const struct sl_model *m, struct sl_diags *d)
{
	const struct sl_wl **v = calloc(m->nwl + 1, sizeof(*v));
	size_t n = 0;
	int rc = 0;

	if (!v) {
		sl_diag_add(d, ERR, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->nwl; i++)
		if (m->wl[i].node)
			v[n++] = &m->wl[i];
	if (n)
		qsort(v, n, sizeof(*v), place_cmp);
	for (size_t i = 1; i < n; i++) {
		const struct sl_wl *a = v[i - 1], *b = v[i];

		if (strcmp(a->node, b->node) || strcmp(a->ifname, b->ifname))
			continue;
		sl_diag_res(d, ERR, b->r, "metadata.annotations.sluice.io/interface",
			    "%s on node %s is also WorkloadEntry %s/%s's", b->ifname, b->node,
			    a->ns, a->name);
		rc = -EINVAL;
	}
	free(v);
	return rc;
}

static void warn_no_match(const struct sl_model *m, struct sl_diags *d,
			  const struct sl_resource *r, const char *ns, const json_t *sel,
			  const char *field)
{
	const struct sl_wl **v;
	long n;

	if (!json_object_size(sel))
		return;
	n = sl_model_select(m, ns, sel, &v);
	free(v);
	if (n == 0)
		sl_diag_res(d, WARN, r, field, "selects no workload%s%s", ns ? " in namespace " : "",
			    ns ?: "");
}

static void check_service_selectors(const struct sl_model *m, struct sl_diags *d)
{
	for (size_t i = 0; i < m->nsvc; i++) {
		const struct sl_svc *s = &m->svc[i];

		warn_no_match(m, d, s->r, sl_resource_namespace(s->r), s->selector,
			      s->entry ? "spec.workloadSelector.labels" : "spec.selector");
		if (s->entry && !s->passthrough && !s->nvips)
			sl_diag_res(d, WARN, s->r, "spec.addresses", "a STATIC ServiceEntry without "
				    "addresses has no VIP: the L4 data plane has nothing to balance");
	}
}

/* The service a VirtualService or DestinationRule names; NULL with a
 * warning when there is none yet (it may be applied later: the rule is
 * stored, and inert for that host until then). */
static const struct sl_svc *named_service(const struct sl_model *m, struct sl_diags *d,
					  const struct sl_resource *r, const char *host,
					  const char *field)
{
	char fqdn[512];
	const struct sl_svc *s;

	sl_host_fqdn(host, sl_resource_namespace(r), fqdn, sizeof(fqdn));
	s = sl_model_host(m, fqdn);
	if (!s)
		sl_diag_res(d, WARN, r, field, "[IST0101] referenced host not found: \"%s\" (%s); "
			    "the %s is stored and takes effect for it once it is applied", host, fqdn,
			    sl_resource_kind(r));
	return s;
}

static int check_vs(const struct sl_model *m, const struct sl_resource *r,
		    const struct sl_resource **owner, struct sl_diags *d)
{
	const json_t *spec = json_object_get(sl_resource_json(r), "spec");
	const json_t *h;
	size_t i;
	int rc = 0;

	json_array_foreach(json_object_get(spec, "hosts"), i, h) {
		char field[64];
		const struct sl_svc *s;

		snprintf(field, sizeof(field), "spec.hosts[%zu]", i);
		s = named_service(m, d, r, json_string_value(h), field);
		if (!s)
			continue;
		if (owner[s - m->svc]) {
			sl_diag_res(d, ERR, r, field, "host is routed by VirtualService %s/%s already",
				    sl_resource_namespace(owner[s - m->svc]),
				    sl_resource_name(owner[s - m->svc]));
			rc = -EINVAL;
		}
		owner[s - m->svc] = r;
	}
	sl_vs_missing(m, r, d);
	return rc;
}

/* What a connect-time choice does not do is said, never implied. */
static void warn_unenforced(const struct sl_resource *r, const json_t *tp, const char *base,
			    struct sl_diags *d)
{
	const json_t *tcp = json_object_get(json_object_get(tp, "connectionPool"), "tcp");
	const json_t *od = json_object_get(tp, "outlierDetection"), *pl;
	char field[160];
	size_t i;

	if (json_object_get(tcp, "connectTimeout") || json_object_get(tcp, "tcpKeepalive")) {
		snprintf(field, sizeof(field), "%s.connectionPool.tcp", base);
		sl_diag_res(d, WARN, r, field, "connectTimeout and tcpKeepalive are not enforced: "
			    "the client's own socket options apply");
	}
	if (json_object_get(od, "splitExternalLocalOriginErrors") &&
	    !json_is_true(json_object_get(od, "splitExternalLocalOriginErrors")) &&
	    json_object_get(od, "consecutiveLocalOriginFailures")) {
		snprintf(field, sizeof(field), "%s.outlierDetection.consecutiveLocalOriginFailures", base);
		sl_diag_res(d, WARN, r, field, "ignored without splitExternalLocalOriginErrors: "
			    "connect failures count as consecutive5xxErrors, as in Envoy");
	}
	json_array_foreach(json_object_get(tp, "portLevelSettings"), i, pl) {
		char b[128];

		snprintf(b, sizeof(b), "%s.portLevelSettings[%zu]", base, i);
		warn_unenforced(r, pl, b, d);
	}
}

static int check_dr(const struct sl_model *m, const struct sl_resource *r,
		    const struct sl_resource **owner, struct sl_diags *d)
{
	const json_t *spec = json_object_get(sl_resource_json(r), "spec"), *sub;
	const struct sl_svc *s = named_service(m, d, r, json_string_value(json_object_get(spec, "host")),
					       "spec.host");
	size_t i;

	if (!s)
		return 0;
	if (owner[s - m->svc]) {
		sl_diag_res(d, ERR, r, "spec.host", "%s has DestinationRule %s/%s already",
			    s->hosts[0], sl_resource_namespace(owner[s - m->svc]),
			    sl_resource_name(owner[s - m->svc]));
		return -EINVAL;
	}
	owner[s - m->svc] = r;
	warn_unenforced(r, json_object_get(spec, "trafficPolicy"), "spec.trafficPolicy", d);
	json_array_foreach(json_object_get(spec, "subsets"), i, sub) {
		char field[96];

		snprintf(field, sizeof(field), "spec.subsets[%zu].trafficPolicy", i);
		warn_unenforced(r, json_object_get(sub, "trafficPolicy"), field, d);
		snprintf(field, sizeof(field), "spec.subsets[%zu].labels", i);
		if (s->selector && !s->entry) {
			json_t *both = json_deep_copy(s->selector);

			json_object_update(both, json_object_get(sub, "labels"));
			warn_no_match(m, d, r, sl_resource_namespace(s->r), both, field);
			json_decref(both);
		}
	}
	return 0;
}

static int ident_cmp(const void *x, const void *y)
{
	const struct sl_wl *a = *(const struct sl_wl *const *)x, *b = *(const struct sl_wl *const *)y;
	int c = strcmp(a->ns, b->ns);

	c = c ?: strcmp(a->sa, b->sa);
	return c ?: (a > b) - (a < b);
}

/* The kernel decides per identity (namespace + service account): a policy
 * must select all of an identity's workloads or none. Workloads sorted by
 * identity once (`byid`), then one pass per policy. */
static int check_identity_split(const struct sl_wl **byid, size_t n,
				const struct sl_resource *r, struct sl_diags *d)
{
	for (size_t i = 0; i < n;) {
		const struct sl_wl *yes = NULL, *no = NULL;
		size_t k;

		for (k = i; k < n && !strcmp(byid[k]->ns, byid[i]->ns) &&
		     !strcmp(byid[k]->sa, byid[i]->sa); k++) {
			if (sl_policy_selects(r, byid[k]))
				yes = yes ?: byid[k];
			else
				no = no ?: byid[k];
		}
		if (yes && no) {
			sl_diag_res(d, ERR, r, "spec.selector", "selects WorkloadEntry %s/%s but not "
				    "%s/%s, which share the identity %s/sa/%s: sluice enforces per "
				    "identity, so give them different service accounts", yes->ns,
				    yes->name, no->ns, no->name, yes->ns, yes->sa);
			return -EINVAL;
		}
		i = k;
	}
	return 0;
}

/* One namespace-wide PeerAuthentication per namespace, one per workload. */
static int check_pa(const struct sl_config *c, const struct sl_model *m, size_t idx,
		    struct sl_diags *d)
{
	const struct sl_resource *r = sl_config_at(c, idx);
	const json_t *sel = sl_policy_selector(r);

	for (size_t i = 0; i < idx; i++) {
		const struct sl_resource *o = sl_config_at(c, i);
		const json_t *osel;

		if (strcmp(sl_resource_kind(o), "PeerAuthentication") ||
		    strcmp(sl_resource_namespace(o), sl_resource_namespace(r)))
			continue;
		osel = sl_policy_selector(o);
		if (!json_object_size(sel) && !json_object_size(osel)) {
			sl_diag_res(d, ERR, r, "spec", "namespace %s has a namespace-wide "
				    "PeerAuthentication already (%s)", sl_resource_namespace(r),
				    sl_resource_name(o));
			return -EINVAL;
		}
		for (size_t k = 0; json_object_size(sel) && json_object_size(osel) && k < m->nwl; k++) {
			if (!strcmp(m->wl[k].ns, sl_resource_namespace(r)) &&
			    sl_labels_match(sel, m->wl[k].labels) &&
			    sl_labels_match(osel, m->wl[k].labels)) {
				sl_diag_res(d, ERR, r, "spec.selector", "WorkloadEntry %s/%s is "
					    "selected by PeerAuthentication %s too", m->wl[k].ns,
					    m->wl[k].name, sl_resource_name(o));
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int check_resources(const struct sl_config *c, const struct sl_model *m,
			   struct sl_diags *d)
{
	const struct sl_resource **vs_owner = calloc(m->nsvc + 1, sizeof(*vs_owner));
	const struct sl_resource **dr_owner = calloc(m->nsvc + 1, sizeof(*dr_owner));
	const struct sl_wl **byid = calloc(m->nwl + 1, sizeof(*byid));
	int rc = 0;

	if (!vs_owner || !dr_owner || !byid) {
		sl_diag_add(d, ERR, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->nwl; i++)
		byid[i] = &m->wl[i];
	if (m->nwl)
		qsort(byid, m->nwl, sizeof(*byid), ident_cmp);
	for (size_t i = 0; i < sl_config_count(c); i++) {
		const struct sl_resource *r = sl_config_at(c, i);
		const char *kind = sl_resource_kind(r);
		const char *ns = !strcmp(sl_resource_namespace(r), SL_ROOT_NAMESPACE) ? NULL :
			sl_resource_namespace(r);

		if (!strcmp(kind, "VirtualService")) {
			rc |= check_vs(m, r, vs_owner, d);
		} else if (!strcmp(kind, "DestinationRule")) {
			rc |= check_dr(m, r, dr_owner, d);
		} else if (!strcmp(kind, "AuthorizationPolicy") ||
			   !strcmp(kind, "PeerAuthentication")) {
			warn_no_match(m, d, r, ns, sl_policy_selector(r), "spec.selector.matchLabels");
			rc |= check_identity_split(byid, m->nwl, r, d);
			if (kind[0] == 'P')
				rc |= check_pa(c, m, i, d);
		}
	}
out:
	free(vs_owner);
	free(dr_owner);
	free(byid);
	return rc;
}

int sl_config_check_keep(const struct sl_config *c, struct sl_diags *d, struct sl_model **keep)
{
	struct sl_model *m = malloc(sizeof(*m));
	size_t errors = d->nerrors;

	if (keep)
		*keep = NULL;
	if (!m || sl_model_build(c, m)) {
		free(m);
		sl_diag_add(d, ERR, "out of memory");
		return -ENOMEM;
	}
	check_addresses(m, d);
	check_placement(m, d);
	check_service_selectors(m, d);
	check_resources(c, m, d);
	if (keep && d->nerrors == errors) {
		*keep = m;
		return 0;
	}
	sl_model_free(m);
	free(m);
	return d->nerrors > errors ? -EINVAL : 0;
}

int sl_config_check(const struct sl_config *c, struct sl_diags *d)
{
	return sl_config_check_keep(c, d, NULL);
}
