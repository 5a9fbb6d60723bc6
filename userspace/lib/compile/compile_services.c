// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * compile_services.c - a snapshot's services (compile_services.h): each
 * VIP and port of a Service or ServiceEntry, its backends resolved from
 * the workloads (or the entry's endpoints), routed by the VirtualService
 * bound to it with weights and subsets, and the traffic policy of the
 * destination (compile_traffic.c).
 */
#include <errno.h>
#include <float.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/compile/compile_services.h"
#include "lib/compile/compile_traffic.h"
#include "lib/core/addr.h"
#include "lib/node/snapshot.h"

/* ---- weights ------------------------------------------------------------------ */

/*
 * Integer weights in 1..SL_WEIGHT_MAX for the shares p[] (sum 1): try every
 * largest weight M in 1..SL_WEIGHT_MAX, scale so the largest share gets M,
 * round (at least 1), and keep the set whose realised shares are closest to
 * the wanted ones (least total variation distance); ties go to the smaller
 * total (fewer slots). Exact whenever the shares are ratios of integers up
 * to 100 (VirtualService weights are).
 */
void sl_normalise_weights(const double *p, size_t n, uint32_t *out)
{
	double pmax = 0, best = DBL_MAX;
	uint32_t bestsum = UINT32_MAX;
	uint32_t *w = calloc(n ?: 1, sizeof(*w));

	for (size_t i = 0; i < n; i++) {
		pmax = p[i] > pmax ? p[i] : pmax;
		out[i] = 1;
	}
	if (!w || pmax <= 0) {
		free(w);
		return;
	}
	for (uint32_t M = 1; M <= SL_WEIGHT_MAX; M++) {
		double scale = M / pmax, dist = 0;
		uint32_t sum = 0;

		for (size_t i = 0; i < n; i++) {
			double x = p[i] * scale + 0.5; /* no libm: positive, so truncating rounds */

			w[i] = x < 1 ? 1 : x > SL_WEIGHT_MAX ? SL_WEIGHT_MAX : (uint32_t)x;
			sum += w[i];
		}
		for (size_t i = 0; i < n; i++)
			dist += (double)w[i] / sum > p[i] ? (double)w[i] / sum - p[i] :
				p[i] - (double)w[i] / sum;
		if (dist < best - 1e-12 || (dist < best + 1e-12 && sum < bestsum)) {
			best = dist;
			bestsum = sum;
			memcpy(out, w, n * sizeof(*w));
		}
		/* exact: every exact set is a multiple of the first one found,
		 * so none after it has a smaller total (equal shares stop at
		 * M = 1, all weights 1) */
		if (best < 1e-12)
			break;
	}
	free(w);
}

/* ---- services ------------------------------------------------------------------ */

struct be {
	__be32 addr[4];
	uint16_t port;
	double share;
};

struct belist {
	size_t n, cap;
	struct be *v;
};

static int be_add(struct belist *l, const __be32 addr[4], uint16_t port, double share)
{
	for (size_t i = 0; i < l->n; i++) {
		if (!memcmp(l->v[i].addr, addr, 16) && l->v[i].port == port) {
			l->v[i].share += share; /* one backend reached by two routes */
			return 0;
		}
	}
	if (l->n == l->cap) {
		struct be *v = realloc(l->v, (l->cap = l->cap * 2 + 16) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
	}
	memcpy(l->v[l->n].addr, addr, 16);
	l->v[l->n].port = port;
	l->v[l->n++].share = share;
	return 0;
}

/* Backends of service s for port sp and the VIP's family, restricted to
 * `subset` labels, sharing `total` among them by their weights. */
static int add_backends(const struct sl_cctx *x, const struct sl_svc *s,
			const struct sl_svc_port *sp, bool v4, const json_t *subset,
			double total, struct belist *out)
{
	const struct sl_wl **sel = NULL, **eps;
	size_t n = 0;
	double wsum = 0;
	int rc = 0;

	if (s->entry && !s->selector) {
		eps = calloc(s->neps ?: 1, sizeof(*eps));
		if (!eps)
			return -ENOMEM;
		for (size_t i = 0; i < s->neps; i++)
			eps[n++] = &s->eps[i];
		sel = eps;
	} else if (s->selector) {
		long k = sl_model_select(&x->m, sl_resource_namespace(s->r), s->selector, &sel);

		if (k < 0)
			return -ENOMEM;
		n = (size_t)k;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const struct sl_wl *w = sel[i];
			uint16_t port = sl_backend_port(w, sp);

			if (!port || !(v4 ? w->has4 : w->has6) || !sl_labels_match(subset, w->labels))
				continue;
			if (pass == 0)
				wsum += w->weight;
			else
				rc = rc ?: be_add(out, v4 ? w->addr4 : w->addr6, port,
						  total * w->weight / wsum);
		}
	}
	free(sel);
	return rc;
}


static const json_t *subset_labels(const struct sl_svc *s, const char *subset)
{
	return subset && s->dr ? json_object_get(sl_dr_subset(s->dr, subset), "labels") : NULL;
}

/*
 * Does a route's match hold for this node's clients? The VIP table is one
 * per node, so sourceLabels/sourceNamespace can be honoured only when all
 * of the node's workloads match or none does: 1, 0, or -EINVAL (an error
 * diagnostic).
 */
static int match_source(const struct sl_cctx *x, const struct sl_resource *vs,
			const json_t *m, const char *field)
{
	const json_t *labels = json_object_get(m, "sourceLabels");
	const char *ns = json_string_value(json_object_get(m, "sourceNamespace"));
	size_t yes = 0, no = 0;

	if (!labels && !ns)
		return 1;
	/* the answer depends on the node: sl_compile_mesh() must know */
	((struct sl_cctx *)x)->node_dependent = true;
	for (size_t i = 0; i < x->m.nwl; i++) {
		const struct sl_wl *w = &x->m.wl[i];

		if (!w->node || strcmp(w->node, x->node))
			continue;
		if (sl_labels_match(labels, w->labels) && (!ns || !strcmp(ns, w->ns)))
			yes++;
		else
			no++;
	}
	if (yes && no) {
		sl_diag_res(x->d, SL_DIAG_ERROR, vs, field, "matches %zu of node %s's %zu "
			    "workloads: a node has one VIP table for all its workloads, so a "
			    "source match must hold for all of them or none", yes, x->node, yes + no);
		return -EINVAL;
	}
	return yes > 0;
}

/* The tcp route of VirtualService vs for VIP port `port`, or NULL. */
static const json_t *pick_route(const struct sl_cctx *x, const struct sl_resource *vs,
				uint16_t port, int *err)
{
	const json_t *tcp, *m;
	size_t i, k;

	json_array_foreach(json_object_get(json_object_get(sl_resource_json(vs), "spec"), "tcp"),
			   i, tcp) {
		const json_t *match = json_object_get(tcp, "match");

		if (!json_array_size(match))
			return json_object_get(tcp, "route");
		json_array_foreach(match, k, m) {
			const json_t *mp = json_object_get(m, "port");
			char field[64];
			int src;

			if (mp && json_integer_value(mp) != port)
				continue;
			snprintf(field, sizeof(field), "spec.tcp[%zu].match[%zu]", i, k);
			src = match_source(x, vs, m, field);
			if (src < 0)
				*err = src;
			if (src > 0)
				return json_object_get(tcp, "route");
		}
	}
	return NULL;
}

static const struct sl_svc_port *svc_port(const struct sl_svc *s, long port)
{
	for (size_t i = 0; i < s->nports; i++)
		if (s->ports[i].port == port)
			return &s->ports[i];
	return s->nports == 1 && port < 0 ? &s->ports[0] : NULL;
}

/* A VirtualService route's destinations, each with its share. */
/* One VIP and port has one traffic policy: every destination of its route
 * must resolve to the same one (*traffic holds the first's). */
static int same_traffic(const struct sl_cctx *x, const struct sl_resource *vs, size_t i,
			json_t *t, json_t **traffic)
{
	char field[96];

	if (!t)
		return -ENOMEM;
	if (!*traffic) {
		*traffic = t;
		return 0;
	}
	if (json_equal(*traffic, t)) {
		json_decref(t);
		return 0;
	}
	json_decref(t);
	snprintf(field, sizeof(field), "spec.tcp.route[%zu].destination", i);
	sl_diag_res(x->d, SL_DIAG_ERROR, vs, field, "its traffic policy (DestinationRule "
		    "trafficPolicy, subset or port settings) differs from route[0]'s: a VIP and port "
		    "has one policy, decided at connect() before any destination is chosen");
	return -EINVAL;
}

static int route_backends(const struct sl_cctx *x, const struct sl_resource *vs,
			  const json_t *route, const struct sl_svc_port *vp, bool v4,
			  struct belist *out, json_t **traffic)
{
	const json_t *r;
	size_t i;

	json_array_foreach(route, i, r) {
		const json_t *dst = json_object_get(r, "destination");
		const json_t *w = json_object_get(r, "weight");
		const json_t *pn = json_object_get(json_object_get(dst, "port"), "number");
		const char *subset = json_string_value(json_object_get(dst, "subset"));
		const struct sl_svc *ds;
		const struct sl_svc_port *dp;
		char fqdn[512], field[96];
		int rc;

		sl_host_fqdn(json_string_value(json_object_get(dst, "host")),
			     sl_resource_namespace(vs), fqdn, sizeof(fqdn));
		ds = sl_model_host(&x->m, fqdn);
		dp = !ds ? NULL : pn ? svc_port(ds, json_integer_value(pn)) :
			svc_port(ds, vp->port) ?: svc_port(ds, -1);
		if (!ds || !dp) {
			snprintf(field, sizeof(field), "spec.tcp.route[%zu].destination", i);
			sl_diag_res(x->d, SL_DIAG_ERROR, vs, field, "%s: no such host or port for "
				    "VIP port %u (give destination.port.number)", fqdn, vp->port);
			return -EINVAL;
		}
		if (w && json_integer_value(w) == 0)
			continue;
		rc = same_traffic(x, vs, i, sl_compile_traffic(x, ds, subset, dp->port, vp->proto),
				  traffic);
		rc = rc ?: add_backends(x, ds, dp, v4, subset_labels(ds, subset),
					w ? json_integer_value(w) / 100.0 : 1.0, out);
		if (rc)
			return rc;
	}
	return 0;
}

/* obj[key] = value, taking value; false if out of memory (obj or value
 * NULL: jansson frees value then) */
static bool set_new(json_t *obj, const char *key, json_t *value)
{
	return !json_object_set_new_nocheck(obj, key, value);
}

/* A snapshot service. Built field by field: json_pack() reads its format
 * again for every object, 11 of them for a service of 10 backends. */
static json_t *service_json(const struct sl_svc *s, const __be32 vip[4],
			    const struct sl_svc_port *sp, const struct belist *l,
			    const uint32_t *weights, json_t *traffic)
{
	char buf[SL_ADDRSTRLEN], name[SL_NAME_MAX + 1];
	json_t *bes = json_array(), *j = json_object();
	bool ok = bes && j;

	for (size_t i = 0; ok && i < l->n; i++) {
		json_t *be = json_object();

		ok = set_new(be, "address", json_string(addr_fmt(l->v[i].addr, buf))) &&
		     set_new(be, "port", json_integer(l->v[i].port)) &&
		     set_new(be, "weight", json_integer(weights[i]));
		if (!ok)
			json_decref(be);
		else
			ok = !json_array_append_new(bes, be);   /* taken, even on failure */
	}
	snprintf(name, sizeof(name), "%s/%s", sl_resource_namespace(s->r), sl_resource_name(s->r));
	ok = ok && set_new(j, "name", json_string(name)) &&
	     set_new(j, "vip", json_string(addr_fmt(vip, buf))) &&
	     set_new(j, "port", json_integer(sp->port)) &&
	     set_new(j, "protocol", json_string(proto_name(sp->proto))) &&
	     set_new(j, "backends", json_incref(bes)) &&
	     (!json_is_object(traffic) || !json_object_set_nocheck(j, "traffic", traffic));
	json_decref(bes);
	if (!ok) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* One snapshot service: a VIP and port of s. */
static int compile_vip(struct sl_cctx *x, const struct sl_svc *s, const __be32 vip[4],
		       const struct sl_svc_port *sp, const struct sl_resource *vs, json_t *out)
{
	struct belist l = {};
	const json_t *route = NULL;
	json_t *traffic = NULL;
	double *shares = NULL;
	uint32_t *weights = NULL;
	bool v4 = addr_is_v4(vip);
	double sum = 0;
	int rc = 0;

	if (vs)
		route = pick_route(x, vs, sp->port, &rc);
	if (!rc && route) {
		rc = route_backends(x, vs, route, sp, v4, &l, &traffic);
	} else if (!rc) {
		traffic = sl_compile_traffic(x, s, NULL, sp->port, sp->proto);
		rc = traffic ? add_backends(x, s, sp, v4, NULL, 1.0, &l) : -ENOMEM;
	}
	if (rc)
		goto out;
	if (l.n > SL_MAX_BACKENDS_PER_SVC) {
		sl_diag_res(x->d, SL_DIAG_ERROR, s->r, "spec", "%zu backends for port %u: more "
			    "than the %d a service may have", l.n, sp->port, SL_MAX_BACKENDS_PER_SVC);
		rc = -E2BIG;
		goto out;
	}
	shares = calloc(l.n ?: 1, sizeof(*shares));
	weights = calloc(l.n ?: 1, sizeof(*weights));
	if (!shares || !weights) {
		rc = -ENOMEM;
		goto out;
	}
	/* shares of the whole; exact integer ratios come back exactly */
	for (size_t i = 0; i < l.n; i++)
		sum += l.v[i].share;
	for (size_t i = 0; i < l.n; i++)
		shares[i] = l.v[i].share / sum;
	sl_normalise_weights(shares, l.n, weights);
	if (json_array_append_new(out, service_json(s, vip, sp, &l, weights, traffic)))
		rc = -ENOMEM;
out:
	json_decref(traffic);
	free(l.v);
	free(shares);
	free(weights);
	return rc;
}

int sl_compile_services(struct sl_cctx *x, json_t *out)
{
	for (size_t i = 0; i < x->m.nsvc; i++) {
		const struct sl_svc *s = &x->m.svc[i];
		const struct sl_resource *dr = s->dr, *vs = s->vs;
		const char *lb = json_string_value(json_object_get(json_object_get(json_object_get(
			json_object_get(sl_resource_json(dr), "spec"), "trafficPolicy"),
			"loadBalancer"), "simple"));

		/* PASSTHROUGH: connections go where the client sent them */
		if (s->passthrough || (lb && !strcmp(lb, "PASSTHROUGH")))
			continue;
		for (size_t v = 0; v < s->nvips; v++)
			for (size_t p = 0; p < s->nports; p++) {
				int rc = compile_vip(x, s, s->vips[v], &s->ports[p], vs, out);

				if (rc)
					return rc;
			}
	}
	return 0;
}

