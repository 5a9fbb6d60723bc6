// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A validated config as typed workloads and services (config_model.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/addr.h"
#include "lib/config/config_model.h"

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const json_t *jobj(const json_t *o, const char *key)
{
	const json_t *x = json_object_get(o, key);

	return json_is_object(x) ? x : NULL;
}

/* A memo points into the document it was read from only where it holds a
 * reference (config.h: the document's tree goes when the config is
 * trimmed): the parts it points to, and whether keeping one failed (then
 * the memo is not made). */
struct keep {
	json_t *refs;
	bool failed;
};

/* x, kept */
static const json_t *kept(struct keep *k, const json_t *x)
{
	if (x && json_array_append(k->refs, (json_t *)x))
		k->failed = true;
	return x;
}

static const char *kstr(struct keep *k, const json_t *o, const char *key)
{
	return json_string_value(kept(k, json_object_get(o, key)));
}

static const json_t *kobj(struct keep *k, const json_t *o, const char *key)
{
	return kept(k, jobj(o, key));
}

bool sl_labels_match(const json_t *selector, const json_t *labels)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)selector, k, v) {
		const char *have = jstr(labels, k);

		if (!have || strcmp(have, json_string_value(v)))
			return false;
	}
	return true;
}

void sl_host_fqdn(const char *host, const char *ns, char *out, size_t len)
{
	if (strchr(host, '.') || !strcmp(host, "*"))
		snprintf(out, len, "%s", host);
	else
		snprintf(out, len, "%s.%s." SL_DNS_SUFFIX, host, ns);
}

static uint64_t host_hash(const char *h)
{
	uint64_t x = 0xcbf29ce484222325ull;   /* FNV-1a */

	for (; *h; h++)
		x = (x ^ (unsigned char)*h) * 0x100000001b3ull;
	return x;
}

/* The first service (in config order) with this host. */
const struct sl_svc *sl_model_host(const struct sl_model *m, const char *fqdn)
{
	size_t mask = m->nhostix - 1, i;

	if (!m->nhostix)
		return NULL;
	for (i = host_hash(fqdn) & mask; m->hostix[i].host; i = (i + 1) & mask)
		if (!strcmp(m->hostix[i].host, fqdn))
			return m->hostix[i].svc;
	return NULL;
}

/* Open addressing, at most half full; a host taken stays with the first
 * service (config order) that has it. */
static int build_host_index(struct sl_model *m)
{
	size_t n = 0, cap = 16;

	for (size_t i = 0; i < m->nsvc; i++)
		n += m->svc[i].nhosts;
	while (cap < 2 * n)
		cap *= 2;
	m->hostix = calloc(cap, sizeof(*m->hostix));
	if (!m->hostix)
		return -ENOMEM;
	m->nhostix = cap;
	for (size_t i = 0; i < m->nsvc; i++)
		for (size_t k = 0; k < m->svc[i].nhosts; k++) {
			const char *h = m->svc[i].hosts[k];
			size_t at = host_hash(h) & (cap - 1);

			while (m->hostix[at].host && strcmp(m->hostix[at].host, h))
				at = (at + 1) & (cap - 1);
			if (!m->hostix[at].host)
				m->hostix[at] = (struct sl_host_ix){ h, &m->svc[i] };
		}
	return 0;
}

uint16_t sl_wl_port(const struct sl_wl *w, const char *name)
{
	return name ? (uint16_t)json_integer_value(json_object_get(w->ports, name)) : 0;
}

void sl_wl_spiffe(const struct sl_wl *w, const char *trust_domain, char *out, size_t len)
{
	snprintf(out, len, "spiffe://%s/ns/%s/sa/%s", trust_domain, w->ns, w->sa);
}

/* A WorkloadEntry spec (or ServiceEntry endpoint) into w. */
static void read_wl(struct sl_wl *w, const struct sl_resource *r, const json_t *spec,
		    const json_t *ann, struct keep *keep)
{
	const char *v6 = jstr(ann, "sluice.io/ipv6");
	__be32 a[4];

	w->r = r;
	w->ns = sl_resource_namespace(r);
	w->name = sl_resource_name(r);
	w->sa = kstr(keep, spec, "serviceAccount") ?: "default";
	w->labels = kobj(keep, spec, "labels");
	w->ports = kobj(keep, spec, "ports");
	w->weight = json_integer_value(json_object_get(spec, "weight")) ?: 1;
	if (!addr_parse(jstr(spec, "address"), a)) {
		if (addr_is_v4(a)) {
			w->has4 = true;
			memcpy(w->addr4, a, sizeof(a));
		} else {
			w->has6 = true;
			memcpy(w->addr6, a, sizeof(a));
		}
	}
	if (v6 && !addr_parse(v6, a)) {
		w->has6 = true;
		memcpy(w->addr6, a, sizeof(a));
	}
	w->node = kstr(keep, ann, "sluice.io/node");
	w->netns = kstr(keep, ann, "sluice.io/netns");
	w->ifname = kstr(keep, ann, "sluice.io/interface");
	w->cgroup = kstr(keep, ann, "sluice.io/cgroup");
}

static int add_vip(struct sl_svc *s, const char *ip)
{
	__be32 a[4];

	if (!ip || addr_parse(ip, a))
		return 0;
	for (size_t i = 0; i < s->nvips; i++)
		if (!memcmp(s->vips[i], a, sizeof(a)))
			return 0;
	memcpy(s->vips[s->nvips++], a, sizeof(a));
	return 0;
}

static int read_ports(struct sl_svc *s, const json_t *ports, bool entry, struct keep *keep)
{
	const json_t *p;
	size_t i;

	s->ports = calloc(json_array_size(ports) ?: 1, sizeof(*s->ports));
	if (!s->ports)
		return -ENOMEM;
	json_array_foreach(ports, i, p) {
		struct sl_svc_port *sp = &s->ports[s->nports++];
		const json_t *tp = json_object_get(p, "targetPort");
		const char *proto = jstr(p, "protocol");

		sp->name = kstr(keep, p, "name");
		sp->port = (uint16_t)json_integer_value(json_object_get(p, entry ? "number" : "port"));
		sp->target = json_is_integer(tp) ? (uint16_t)json_integer_value(tp) : 0;
		sp->target_name = json_is_string(tp) ? json_string_value(kept(keep, tp)) : NULL;
		sp->proto = proto && !strcmp(proto, "UDP") ? IPPROTO_UDP : IPPROTO_TCP;
	}
	return 0;
}

static int read_service(struct sl_svc *s, const struct sl_resource *r, const json_t *spec,
			struct keep *keep)
{
	const json_t *ips = json_object_get(spec, "clusterIPs"), *x;
	char fqdn[512];
	size_t i;

	s->r = r;
	s->hosts = calloc(1, sizeof(*s->hosts));
	s->vips = calloc(3, sizeof(*s->vips));
	if (!s->hosts || !s->vips)
		return -ENOMEM;
	sl_host_fqdn(sl_resource_name(r), sl_resource_namespace(r), fqdn, sizeof(fqdn));
	s->hosts[0] = strdup(fqdn);
	if (!s->hosts[0])
		return -ENOMEM;
	s->nhosts = 1;
	add_vip(s, jstr(spec, "clusterIP"));
	json_array_foreach(ips, i, x)
		if (i < 2)
			add_vip(s, json_string_value(x));
	/* an empty selector is no selector, as in Kubernetes */
	s->selector = json_object_size(jobj(spec, "selector")) ? kobj(keep, spec, "selector") : NULL;
	return read_ports(s, json_object_get(spec, "ports"), false, keep);
}

static int read_entry(struct sl_svc *s, const struct sl_resource *r, const json_t *spec,
		      struct keep *keep)
{
	const json_t *hosts = json_object_get(spec, "hosts");
	const json_t *addrs = json_object_get(spec, "addresses");
	const json_t *eps = json_object_get(spec, "endpoints"), *x;
	const char *res = jstr(spec, "resolution");
	size_t i;

	s->r = r;
	s->entry = true;
	s->passthrough = !res || !strcmp(res, "NONE");
	s->hosts = calloc(json_array_size(hosts) ?: 1, sizeof(*s->hosts));
	s->vips = calloc(json_array_size(addrs) ?: 1, sizeof(*s->vips));
	s->eps = calloc(json_array_size(eps) ?: 1, sizeof(*s->eps));
	if (!s->hosts || !s->vips || !s->eps)
		return -ENOMEM;
	json_array_foreach(hosts, i, x) {
		s->hosts[s->nhosts] = strdup(json_string_value(x));
		if (!s->hosts[s->nhosts++])
			return -ENOMEM;
	}
	if (!s->passthrough)
		json_array_foreach(addrs, i, x)
			add_vip(s, json_string_value(x));
	json_array_foreach(eps, i, x)
		read_wl(&s->eps[s->neps++], r, x, NULL, keep);
	s->selector = kobj(keep, jobj(spec, "workloadSelector"), "labels");
	return read_ports(s, json_object_get(spec, "ports"), true, keep);
}

struct sl_label_ix {
	const char *ns, *key, *value;
	const struct sl_wl *w;
};

static int ix_cmp(const void *a, const void *b)
{
	const struct sl_label_ix *x = a, *y = b;
	int c = strcmp(x->ns, y->ns);

	c = c ?: strcmp(x->key, y->key);
	c = c ?: strcmp(x->value, y->value);
	return c ?: (x->w > y->w) - (x->w < y->w);
}

static int build_index(struct sl_model *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nwl; i++)
		n += json_object_size(m->wl[i].labels);
	m->ix = calloc(n ?: 1, sizeof(*m->ix));
	if (!m->ix)
		return -ENOMEM;
	for (size_t i = 0; i < m->nwl; i++) {
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)m->wl[i].labels, k, v)
			m->ix[m->nix++] = (struct sl_label_ix){ m->wl[i].ns, k,
								json_string_value(v), &m->wl[i] };
	}
	qsort(m->ix, m->nix, sizeof(*m->ix), ix_cmp);
	return 0;
}

static int wl_ptr_cmp(const void *a, const void *b)
{
	const struct sl_wl *x = *(const struct sl_wl *const *)a;
	const struct sl_wl *y = *(const struct sl_wl *const *)b;

	return (x > y) - (x < y);
}

long sl_model_select(const struct sl_model *m, const char *ns, const json_t *selector,
		     const struct sl_wl ***out)
{
	const struct sl_wl **v = NULL;
	const char *k0 = NULL;
	json_t *v0 = NULL;
	size_t n = 0, cap = 0;

	*out = NULL;
	json_object_foreach((json_t *)selector, k0, v0)
		break;
	/* candidates: the index range of the selector's first label, or all */
	size_t lo = 0, hi = k0 ? m->nix : m->nwl;

	if (k0 && ns) {
		struct sl_label_ix key = { ns, k0, json_string_value(v0), NULL };
		size_t a = 0, b = m->nix;

		while (a < b) { /* lower bound; w NULL sorts first */
			size_t mid = (a + b) / 2;

			if (ix_cmp(&m->ix[mid], &key) < 0)
				a = mid + 1;
			else
				b = mid;
		}
		lo = a;
		for (hi = lo; hi < m->nix && !strcmp(m->ix[hi].ns, ns) &&
		     !strcmp(m->ix[hi].key, k0) && !strcmp(m->ix[hi].value, key.value); hi++)
			;
	}
	for (size_t i = lo; i < hi; i++) {
		const struct sl_wl *w = k0 ? m->ix[i].w : &m->wl[i];

		if (k0 && (strcmp(m->ix[i].key, k0) || strcmp(m->ix[i].value, json_string_value(v0)) ||
			   (ns && strcmp(m->ix[i].ns, ns))))
			continue;
		if ((ns && strcmp(w->ns, ns)) || !sl_labels_match(selector, w->labels))
			continue;
		if (n == cap) {
			const struct sl_wl **nv = realloc(v, (cap = cap * 2 + 16) * sizeof(*v));

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = w;
	}
	if (k0 && n > 1)
		qsort(v, n, sizeof(*v), wl_ptr_cmp); /* model order */
	*out = v;
	return (long)n;
}

const json_t *sl_policy_selector(const struct sl_resource *r)
{
	const json_t *spec = json_object_get(sl_resource_json(r), "spec");

	return jobj(jobj(spec, "selector"), "matchLabels");
}

bool sl_policy_selects(const struct sl_resource *r, const struct sl_wl *w)
{
	const char *ns = sl_resource_namespace(r);

	if (strcmp(ns, SL_ROOT_NAMESPACE) && strcmp(ns, w->ns))
		return false;
	return sl_labels_match(sl_policy_selector(r), w->labels);
}

const json_t *sl_dr_subset(const struct sl_resource *dr, const char *name)
{
	const json_t *sub;
	size_t i;

	json_array_foreach(json_object_get(jobj(sl_resource_json(dr), "spec"), "subsets"), i, sub)
		if (!strcmp(jstr(sub, "name") ?: "", name))
			return sub;
	return NULL;
}

static bool svc_has_port(const struct sl_svc *s, long port)
{
	for (size_t i = 0; i < s->nports; i++)
		if (s->ports[i].port == port)
			return true;
	return false;
}

/* A route's destination `part` (host, subset, port) names nothing: an
 * IST0101 warning at spec.tcp[k].route[j].destination.FIELD, if d. */
__attribute__((format(printf, 7, 8)))
static void missing(struct sl_diags *d, const struct sl_resource *vs, size_t k, size_t j,
		    const char *part, const char *field, const char *fmt, ...)
{
	char path[96], *text = NULL;
	va_list ap;

	if (!d)
		return;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	snprintf(path, sizeof(path), "spec.tcp[%zu].route[%zu].destination.%s", k, j, field);
	sl_diag_res(d, SL_DIAG_WARNING, vs, path, "[IST0101] referenced %s not found: %s; the "
		    "VirtualService is stored, and inert until it exists", part,
		    text ?: "(out of memory)");
	free(text);
}

size_t sl_vs_missing(const struct sl_model *m, const struct sl_resource *vs, struct sl_diags *d)
{
	const json_t *tcp, *rt;
	size_t k, j, n = 0;

	json_array_foreach(json_object_get(jobj(sl_resource_json(vs), "spec"), "tcp"), k, tcp) {
		json_array_foreach(json_object_get(tcp, "route"), j, rt) {
			const json_t *dst = jobj(rt, "destination");
			const char *host = jstr(dst, "host") ?: "", *subset = jstr(dst, "subset");
			const json_t *port = json_object_get(jobj(dst, "port"), "number");
			const struct sl_svc *s;
			char fqdn[512];

			sl_host_fqdn(host, sl_resource_namespace(vs), fqdn, sizeof(fqdn));
			s = sl_model_host(m, fqdn);
			if (!s) {
				n++;
				missing(d, vs, k, j, "host", "host", "\"%s\" (%s)", host, fqdn);
				continue;
			}
			if (subset && !(s->dr && sl_dr_subset(s->dr, subset))) {
				n++;
				missing(d, vs, k, j, "subset", "subset", "no DestinationRule for %s "
					"defines subset \"%s\"", s->hosts[0], subset);
			}
			if (port && !svc_has_port(s, json_integer_value(port))) {
				n++;
				missing(d, vs, k, j, "port", "port.number", "%s has no port %lld",
					s->hosts[0], (long long)json_integer_value(port));
			}
		}
	}
	return n;
}

/* Each service's DestinationRule, then its VirtualService (whose routes may
 * name subsets of any service's DestinationRule): the first in config order
 * that names one of its hosts. Only these two kinds' documents are read
 * (a mesh at scale is mostly services, whose memos the model has). */
static void bind_rules(const struct sl_config *c, struct sl_model *m)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < sl_config_count(c); i++) {
			const struct sl_resource *r = sl_config_at(c, i);
			const char *kind = sl_resource_kind(r);
			const json_t *spec, *h;
			char fqdn[512];
			const struct sl_svc *s;
			size_t k;

			if (pass == 0 && !strcmp(kind, "DestinationRule")) {
				spec = jobj(sl_resource_json(r), "spec");
				sl_host_fqdn(jstr(spec, "host") ?: "", sl_resource_namespace(r), fqdn,
					     sizeof(fqdn));
				s = sl_model_host(m, fqdn);
				if (s && !s->dr)
					m->svc[s - m->svc].dr = r;
			}
			if (pass == 1 && !strcmp(kind, "VirtualService") && !sl_vs_missing(m, r, NULL)) {
				spec = jobj(sl_resource_json(r), "spec");
				json_array_foreach(json_object_get(spec, "hosts"), k, h) {
					sl_host_fqdn(json_string_value(h) ?: "", sl_resource_namespace(r),
						     fqdn, sizeof(fqdn));
					s = sl_model_host(m, fqdn);
					if (s && !s->vs)
						m->svc[s - m->svc].vs = r;
				}
			}
		}
	}
}

/*
 * The parsed form of one Service, ServiceEntry or WorkloadEntry, kept as
 * the resource's memo (sl_resource_set_memo): it follows from the resource
 * alone, and configs share resources, so a model build after a change
 * reads only the documents that change brought and copies the rest. A
 * model's services point to their memo's arrays (hosts, VIPs, ports,
 * endpoints); the memo owns them and lives as long as the resource. Where
 * they point into the document (labels, selectors, names), the memo holds
 * a reference to that part (`keep`): the rest of the tree may go.
 */
struct model_memo {
	bool is_svc;
	struct sl_svc svc;
	struct sl_wl wl;
	struct keep keep;
};

static void memo_free(void *p)
{
	struct model_memo *mm = p;

	if (!mm)
		return;
	for (size_t k = 0; k < mm->svc.nhosts; k++)
		free(mm->svc.hosts[k]);
	free(mm->svc.hosts);
	free(mm->svc.vips);
	free(mm->svc.ports);
	free(mm->svc.eps);
	json_decref(mm->keep.refs);
	free(mm);
}

/* r's parsed form (kind: "WorkloadEntry", "Service" or "ServiceEntry"),
 * read now if it was not before; NULL if out of memory. The tree it is
 * read from is not kept (sl_resource_json_ref): the memo holds what it
 * needs of it, and a config of 10,000 resources would otherwise hold
 * 10,000 trees until it is trimmed. */
static const struct model_memo *memo_of(const struct sl_resource *r, const char *kind)
{
	struct model_memo *mm = sl_resource_memo(r);
	json_t *doc;
	const json_t *spec;

	if (mm)
		return mm;
	doc = sl_resource_json_ref(r);
	spec = json_object_get(doc, "spec");
	mm = calloc(1, sizeof(*mm));
	if (!mm || !doc || !(mm->keep.refs = json_array())) {
		memo_free(mm);
		json_decref(doc);
		return NULL;
	}
	mm->is_svc = strcmp(kind, "WorkloadEntry") != 0;
	if (!mm->is_svc)
		read_wl(&mm->wl, r, spec, jobj(jobj(doc, "metadata"), "annotations"), &mm->keep);
	else if (kind[7] ? read_entry(&mm->svc, r, spec, &mm->keep) :
		 read_service(&mm->svc, r, spec, &mm->keep))
		mm->keep.failed = true;
	json_decref(doc);
	if (mm->keep.failed) {
		memo_free(mm);
		return NULL;
	}
	sl_resource_set_memo(r, mm, memo_free);
	return mm;
}

int sl_model_build(const struct sl_config *c, struct sl_model *m)
{
	size_t n = sl_config_count(c);

	memset(m, 0, sizeof(*m));
	m->wl = calloc(n ?: 1, sizeof(*m->wl));
	m->svc = calloc(n ?: 1, sizeof(*m->svc));
	if (!m->wl || !m->svc)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct sl_resource *r = sl_config_at(c, i);
		const char *kind = sl_resource_kind(r);
		const struct model_memo *mm;

		if (strcmp(kind, "WorkloadEntry") && strcmp(kind, "Service") &&
		    strcmp(kind, "ServiceEntry"))
			continue;
		mm = memo_of(r, kind);
		if (!mm)
			goto fail;
		if (mm->is_svc)
			m->svc[m->nsvc++] = mm->svc;   /* vs and dr: bound below */
		else
			m->wl[m->nwl++] = mm->wl;
	}
	if (build_index(m) || build_host_index(m))
		goto fail;
	bind_rules(c, m);
	return 0;
fail:
	sl_model_free(m);
	return -ENOMEM;
}

void sl_model_free(struct sl_model *m)
{
	free(m->svc);
	free(m->wl);
	free(m->ix);
	free(m->hostix);
	memset(m, 0, sizeof(*m));
}

/* The port a workload serves a service port on, or 0 if it does not:
 * its ports map entry for the service port's name, else a numeric
 * targetPort, else its entry for a named targetPort, else the port. */
uint16_t sl_backend_port(const struct sl_wl *w, const struct sl_svc_port *sp)
{
	uint16_t p = sl_wl_port(w, sp->name);

	if (p)
		return p;
	if (sp->target)
		return sp->target;
	if (sp->target_name)
		return sl_wl_port(w, sp->target_name);
	return sp->port;
}
