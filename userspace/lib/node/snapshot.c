// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * snapshot.c - the node snapshot parser (snapshot.h, docs/snapshot.md):
 * JSON in, struct snapshot out, or a message naming the field.
 *
 * About 900 lines in one file: it is one parser for one document. Each
 * section (services, identities, cidrs, workloads, nodes, policies) has
 * its own small parse_* function, and the checks across sections at the
 * end (duplicate VIPs, CIDR identities against workloads) need them all;
 * the section parsers share only the error helpers at the top. The
 * parsed-service cache (snap_cache) is here because it stands in for
 * parse_service() and the packed-item decoder, which stay private.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <jansson.h>

#include "lib/core/addr.h"
#include "lib/node/snapshot.h"

struct perr {
	const char *src;
	char *buf;
	size_t len;
};

/* Report "src: path.field: message"; field may be NULL. */
__attribute__((format(printf, 4, 5)))
static int fail(struct perr *pe, const char *path, const char *field, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	n = (size_t)snprintf(pe->buf, pe->len, "%s: %s%s%s%s", pe->src, path,
			     field && path[0] ? "." : "", field ?: "",
			     path[0] || field ? ": " : "");
	if (n < pe->len) {
		va_start(ap, fmt);
		vsnprintf(pe->buf + n, pe->len - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Refuse any key of `obj` not in the NULL-terminated `allowed` list. */
static int check_fields(struct perr *pe, const char *path, json_t *obj,
			const char *const *allowed)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		const char *const *a;

		for (a = allowed; *a; a++)
			if (strcmp(*a, k) == 0)
				break;
		if (!*a)
			return fail(pe, path, k, "unknown field");
	}
	return 0;
}

static int get_int(struct perr *pe, const char *path, json_t *obj, const char *name,
		   bool required, json_int_t lo, json_int_t hi, json_int_t dflt,
		   json_int_t *out)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		if (required)
			return fail(pe, path, name, "missing required field");
		*out = dflt;
		return 0;
	}
	if (!json_is_integer(v))
		return fail(pe, path, name, "must be an integer");
	*out = json_integer_value(v);
	if (*out < lo || *out > hi)
		return fail(pe, path, name, "%lld is out of range %lld..%lld",
			    (long long)*out, (long long)lo, (long long)hi);
	return 0;
}

static int get_str(struct perr *pe, const char *path, json_t *obj, const char *name,
		   bool required, const char *dflt, const char **out)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		if (required)
			return fail(pe, path, name, "missing required field");
		*out = dflt;
		return 0;
	}
	if (!json_is_string(v))
		return fail(pe, path, name, "must be a string");
	*out = json_string_value(v);
	return 0;
}

static int get_addr(struct perr *pe, const char *path, json_t *obj,
		    const char *name, __be32 out[4])
{
	const char *s = NULL;
	int err;

	err = get_str(pe, path, obj, name, true, NULL, &s);
	if (err)
		return err;
	if (addr_parse(s, out))
		return fail(pe, path, name, "\"%s\" is not an IPv4 or IPv6 address", s);
	return 0;
}

static int parse_backend(struct perr *pe, const char *path, json_t *jb,
			 const struct sl_svc_key *vip, struct snap_backend *b)
{
	static const char *const fields[] = { "address", "port", "weight", NULL };
	json_int_t port, weight;
	int err;

	if (!json_is_object(jb))
		return fail(pe, path, NULL, "must be an object");
	err = check_fields(pe, path, jb, fields);
	err = err ?: get_addr(pe, path, jb, "address", b->be.addr);
	err = err ?: get_int(pe, path, jb, "port", true, 1, 65535, 0, &port);
	err = err ?: get_int(pe, path, jb, "weight", false, 1, SL_WEIGHT_MAX, 1, &weight);
	if (err)
		return err;
	if (addr_is_v4(b->be.addr) != addr_is_v4(vip->addr))
		return fail(pe, path, "address", "address family differs from the service's vip");
	b->be.port = htons((uint16_t)port);
	b->be.proto = vip->proto;
	b->weight = (uint32_t)weight;
	return 0;
}

/* "traffic": {"lb", "affinity_timeout_s", "max_connections", "outlier":
 * {"consecutive_errors", "interval_ms", "base_ejection_ms",
 * "max_ejection_percent"}}; all optional. */
static int parse_traffic(struct perr *pe, const char *path, json_t *jt, struct snap_service *s)
{
	static const char *const fields[] = { "lb", "affinity_timeout_s", "max_connections",
					      "outlier", NULL };
	static const char *const ofields[] = { "consecutive_errors", "interval_ms",
					       "base_ejection_ms", "max_ejection_percent",
					       "min_health_percent", NULL };
	static const char *const algs[] = { [SL_LB_RANDOM] = "RANDOM",
					    [SL_LB_ROUND_ROBIN] = "ROUND_ROBIN",
					    [SL_LB_LEAST_REQUEST] = "LEAST_REQUEST",
					    [SL_LB_SOURCE_HASH] = "SOURCE_HASH" };
	struct sl_svc_policy *t = &s->traffic;
	json_int_t aff, maxc, consec, interval, base, pct, minh;
	const char *lb;
	char p[300];
	json_t *jo;
	int err;

	if (!json_is_object(jt))
		return fail(pe, path, "traffic", "must be an object");
	snprintf(p, sizeof(p), "%s.traffic", path);
	err = check_fields(pe, p, jt, fields);
	err = err ?: get_str(pe, p, jt, "lb", false, "RANDOM", &lb);
	err = err ?: get_int(pe, p, jt, "affinity_timeout_s", false, 0, 86400, 0, &aff);
	err = err ?: get_int(pe, p, jt, "max_connections", false, 0, UINT32_MAX, 0, &maxc);
	if (err)
		return err;
	t->lb = 0xff;
	for (uint8_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (!strcmp(lb, algs[i]))
			t->lb = i;
	if (t->lb == 0xff)
		return fail(pe, p, "lb", "\"%s\" is not RANDOM, ROUND_ROBIN, LEAST_REQUEST or "
			    "SOURCE_HASH", lb);
	t->affinity_ns = (uint64_t)aff * 1000000000ull;
	t->max_conns = (uint32_t)maxc;
	jo = json_object_get(jt, "outlier");
	if (jo) {
		if (!json_is_object(jo))
			return fail(pe, p, "outlier", "must be an object");
		snprintf(p, sizeof(p), "%s.traffic.outlier", path);
		err = check_fields(pe, p, jo, ofields);
		err = err ?: get_int(pe, p, jo, "consecutive_errors", true, 1, UINT32_MAX, 0, &consec);
		err = err ?: get_int(pe, p, jo, "interval_ms", false, 1, 86400000, 10000, &interval);
		err = err ?: get_int(pe, p, jo, "base_ejection_ms", false, 1, 86400000, 30000, &base);
		err = err ?: get_int(pe, p, jo, "max_ejection_percent", false, 0, 100, 10, &pct);
		err = err ?: get_int(pe, p, jo, "min_health_percent", false, 0, 100, 0, &minh);
		if (err)
			return err;
		t->od_min_health = (uint8_t)minh;
		t->od_consecutive = (uint32_t)consec;
		t->od_interval_ns = (uint64_t)interval * 1000000ull;
		t->od_base_ns = (uint64_t)base * 1000000ull;
		t->od_max_ns = t->od_base_ns > SL_OD_MAX_EJECT_NS ? t->od_base_ns : SL_OD_MAX_EJECT_NS;
		t->od_max_pct = (uint8_t)pct;
	}
	s->has_traffic = true;
	return 0;
}

static int parse_service(struct perr *pe, const char *path, json_t *js,
			 struct snap_service *s)
{
	static const char *const fields[] = { "name", "vip", "port", "protocol",
					      "backends", "traffic", NULL };
	const char *name, *proto;
	json_int_t port;
	json_t *jbs, *jb;
	size_t i;
	int err;

	if (!json_is_object(js))
		return fail(pe, path, NULL, "must be an object");
	err = check_fields(pe, path, js, fields);
	err = err ?: get_str(pe, path, js, "name", true, NULL, &name);
	err = err ?: get_addr(pe, path, js, "vip", s->key.addr);
	err = err ?: get_int(pe, path, js, "port", true, 1, 65535, 0, &port);
	err = err ?: get_str(pe, path, js, "protocol", false, "TCP", &proto);
	if (err)
		return err;
	if (name[0] == '\0' || strlen(name) > SL_NAME_MAX)
		return fail(pe, path, "name", "must be 1..%d characters", SL_NAME_MAX);
	s->name = strdup(name);
	if (!s->name)
		return -ENOMEM;
	s->key.port = htons((uint16_t)port);
	if (proto_parse(proto, &s->key.proto))
		return fail(pe, path, "protocol", "\"%s\" is not TCP or UDP", proto);

	jbs = json_object_get(js, "backends");
	if (!jbs)
		return fail(pe, path, "backends", "missing required field (use [] for none)");
	if (!json_is_array(jbs) || json_array_size(jbs) > SL_MAX_BACKENDS_PER_SVC)
		return fail(pe, path, "backends", "must be an array of at most %d backends",
			    SL_MAX_BACKENDS_PER_SVC);
	s->nbackends = json_array_size(jbs);
	s->backends = calloc(s->nbackends ?: 1, sizeof(*s->backends));
	if (!s->backends)
		return -ENOMEM;
	json_array_foreach(jbs, i, jb) {
		char p[256];

		snprintf(p, sizeof(p), "%s.backends[%zu]", path, i);
		err = parse_backend(pe, p, jb, &s->key, &s->backends[i]);
		if (err)
			return err;
		for (size_t j = 0; j < i; j++) {
			if (memcmp(&s->backends[j].be, &s->backends[i].be,
				   sizeof(struct sl_backend)) == 0)
				return fail(pe, p, NULL, "duplicate of backends[%zu]", j);
		}
	}
	if (json_object_get(js, "traffic"))
		return parse_traffic(pe, path, json_object_get(js, "traffic"), s);
	return 0;
}

const struct snap_identity *snapshot_identity(const struct snapshot *s, uint32_t id)
{
	for (size_t i = 0; i < s->nidentities; i++)
		if (s->identities[i].id == id)
			return &s->identities[i];
	return NULL;
}

/* spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/SERVICE-ACCOUNT */
static bool spiffe_valid(const char *s)
{
	const char *td, *p;

	if (strncmp(s, "spiffe://", 9) != 0)
		return false;
	td = s + 9;
	p = strchr(td, '/');
	if (!p || p == td || strncmp(p, "/ns/", 4) != 0)
		return false;
	p += 4;
	if (*p == '/' || !*p)
		return false;
	p = strchr(p, '/');
	if (!p || strncmp(p, "/sa/", 4) != 0 || !p[4] || strchr(p + 4, '/'))
		return false;
	return true;
}

static const struct snap_cidr *snapshot_cidr_id(const struct snapshot *s, uint32_t id)
{
	for (size_t i = 0; i < s->ncidrs; i++)
		if (s->cidrs[i].identity == id)
			return &s->cidrs[i];
	return NULL;
}

static int parse_cidr(struct perr *pe, const char *path, json_t *j, struct snapshot *s,
		      size_t i)
{
	static const char *const fields[] = { "cidr", "identity", NULL };
	struct snap_cidr *c = &s->cidrs[i];
	const char *cidr;
	json_int_t v;
	int err;

	if (!json_is_object(j))
		return fail(pe, path, NULL, "must be an object");
	err = check_fields(pe, path, j, fields);
	err = err ?: get_str(pe, path, j, "cidr", true, NULL, &cidr);
	err = err ?: get_int(pe, path, j, "identity", true, SL_ID_FIRST_WORKLOAD, UINT32_MAX - 1,
			     0, &v);
	if (err)
		return err;
	if (cidr_parse(cidr, &c->key))
		return fail(pe, path, "cidr", "\"%s\" is not a CIDR with zero host bits", cidr);
	c->identity = (uint32_t)v;
	if (snapshot_identity(s, c->identity))
		return fail(pe, path, "identity", "%u is a SPIFFE identity in identities[]",
			    c->identity);
	for (size_t k = 0; k < i; k++) {
		if (!memcmp(&s->cidrs[k].key, &c->key, sizeof(c->key)))
			return fail(pe, path, "cidr", "duplicates cidrs[%zu]", k);
		if (s->cidrs[k].identity == c->identity)
			return fail(pe, path, "identity", "%u duplicates cidrs[%zu]", c->identity, k);
	}
	return 0;
}

static int parse_identity(struct perr *pe, const char *path, json_t *j,
			  struct snapshot *s, size_t i)
{
	static const char *const fields[] = { "id", "spiffe", NULL };
	struct snap_identity *id = &s->identities[i];
	const char *spiffe;
	json_int_t v;
	int err;

	if (!json_is_object(j))
		return fail(pe, path, NULL, "must be an object");
	err = check_fields(pe, path, j, fields);
	err = err ?: get_int(pe, path, j, "id", true, SL_ID_FIRST_WORKLOAD, UINT32_MAX - 1, 0, &v);
	err = err ?: get_str(pe, path, j, "spiffe", true, NULL, &spiffe);
	if (err)
		return err;
	if (strlen(spiffe) >= sizeof(id->spiffe) || !spiffe_valid(spiffe))
		return fail(pe, path, "spiffe", "\"%s\" is not spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/ACCOUNT",
			    spiffe);
	id->id = (uint32_t)v;
	strcpy(id->spiffe, spiffe);
	for (size_t k = 0; k < i; k++) {
		if (s->identities[k].id == id->id)
			return fail(pe, path, "id", "%u duplicates identities[%zu]", id->id, k);
		if (strcmp(s->identities[k].spiffe, id->spiffe) == 0)
			return fail(pe, path, "spiffe", "duplicates identities[%zu]", k);
	}
	return 0;
}

static int get_identity_ref(struct perr *pe, const char *path, json_t *j, const char *name,
			    const struct snapshot *s, bool allow_any, uint32_t *out)
{
	json_t *v = json_object_get(j, name);

	if (!v)
		return fail(pe, path, name, "missing required field");
	if (allow_any && json_is_string(v) && strcmp(json_string_value(v), "*") == 0) {
		*out = SL_ID_ANY;
		return 0;
	}
	if (!json_is_integer(v))
		return fail(pe, path, name, allow_any ? "must be an identity number or \"*\"" :
			    "must be an identity number");
	/* a source may also be a CIDR identity or a reserved one (unknown,
	 * world, host, proxy) */
	if (json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX ||
	    (!snapshot_identity(s, (uint32_t)json_integer_value(v)) &&
	     !(allow_any && (snapshot_cidr_id(s, (uint32_t)json_integer_value(v)) ||
			     json_integer_value(v) <= SL_ID_PROXY))))
		return fail(pe, path, name, "%lld is not in identities[]%s",
			    (long long)json_integer_value(v),
			    allow_any ? ", cidrs[] or the reserved 0..3" : "");
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int parse_mtls(struct perr *pe, const char *path, const char *field, const char *s,
		      enum snap_mtls *out)
{
	static const char *const names[] = { [SNAP_MTLS_STRICT] = "STRICT",
					     [SNAP_MTLS_PERMISSIVE] = "PERMISSIVE",
					     [SNAP_MTLS_DISABLE] = "DISABLE" };

	*out = SNAP_MTLS_UNSET;
	if (!s)
		return 0;
	for (int m = SNAP_MTLS_STRICT; m <= SNAP_MTLS_DISABLE; m++) {
		if (!strcmp(s, names[m])) {
			*out = (enum snap_mtls)m;
			return 0;
		}
	}
	return fail(pe, path, field, "\"%s\" is not STRICT, PERMISSIVE or DISABLE", s);
}

/* "mtls_ports": [{"port": 8080, "mode": "DISABLE"}] */
static int parse_mtls_ports(struct perr *pe, const char *path, json_t *j, struct snap_workload *w)
{
	static const char *const fields[] = { "port", "mode", NULL };
	json_t *a = json_object_get(j, "mtls_ports"), *e;
	size_t i;
	int err;

	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > 1024)
		return fail(pe, path, "mtls_ports", "must be an array of at most 1024");
	w->mtls_ports = calloc(json_array_size(a) ?: 1, sizeof(*w->mtls_ports));
	if (!w->mtls_ports)
		return -ENOMEM;
	json_array_foreach(a, i, e) {
		struct snap_mtls_port *mp = &w->mtls_ports[i];
		const char *mode;
		json_int_t port;
		char p[300];

		snprintf(p, sizeof(p), "%s.mtls_ports[%zu]", path, i);
		if (!json_is_object(e))
			return fail(pe, p, NULL, "must be an object");
		err = check_fields(pe, p, e, fields);
		err = err ?: get_int(pe, p, e, "port", true, 1, 65535, 0, &port);
		err = err ?: get_str(pe, p, e, "mode", true, NULL, &mode);
		err = err ?: parse_mtls(pe, p, "mode", mode, &mp->mode);
		if (err)
			return err;
		mp->port = (uint16_t)port;
		w->nmtls_ports = i + 1;
		for (size_t k = 0; k < i; k++)
			if (w->mtls_ports[k].port == mp->port)
				return fail(pe, p, "port", "%u duplicates mtls_ports[%zu]", mp->port, k);
	}
	return 0;
}

static int parse_workload(struct perr *pe, const char *path, json_t *j,
			  struct snapshot *s, struct snap_workload *w)
{
	static const char *const fields[] = { "name", "namespace", "identity", "ipv4", "ipv6",
					      "netns", "interface", "cgroup", "mtls",
					      "mtls_ports", "node", NULL };
	const char *name, *ns, *a4, *a6, *netns, *ifname, *cgroup, *mtls, *node;
	int err;

	if (!json_is_object(j))
		return fail(pe, path, NULL, "must be an object");
	err = check_fields(pe, path, j, fields);
	err = err ?: get_str(pe, path, j, "name", true, NULL, &name);
	err = err ?: get_str(pe, path, j, "namespace", false, "default", &ns);
	err = err ?: get_identity_ref(pe, path, j, "identity", s, false, &w->identity);
	err = err ?: get_str(pe, path, j, "ipv4", false, NULL, &a4);
	err = err ?: get_str(pe, path, j, "ipv6", false, NULL, &a6);
	err = err ?: get_str(pe, path, j, "netns", false, NULL, &netns);
	err = err ?: get_str(pe, path, j, "interface", false, NULL, &ifname);
	err = err ?: get_str(pe, path, j, "cgroup", false, NULL, &cgroup);
	err = err ?: get_str(pe, path, j, "mtls", false, NULL, &mtls);
	err = err ?: get_str(pe, path, j, "node", false, NULL, &node);
	err = err ?: parse_mtls(pe, path, "mtls", mtls, &w->mtls);
	err = err ?: parse_mtls_ports(pe, path, j, w);
	if (err)
		return err;
	if (cgroup && (cgroup[0] != '/' || strlen(cgroup) >= sizeof(w->cgroup) || !netns))
		return fail(pe, path, "cgroup", "\"%s\": a local workload's absolute cgroup path",
			    cgroup);
	if (cgroup)
		strcpy(w->cgroup, cgroup);
	if (node && (!*node || strlen(node) >= sizeof(w->node)))
		return fail(pe, path, "node", "must be 1..%zu characters", sizeof(w->node) - 1);
	if (node)
		strcpy(w->node, node);
	if (!*name || strlen(name) > SL_NAME_MAX)
		return fail(pe, path, "name", "must be 1..%d characters", SL_NAME_MAX);
	if (!*ns || strlen(ns) > SL_NAME_MAX)
		return fail(pe, path, "namespace", "must be 1..%d characters", SL_NAME_MAX);
	strcpy(w->name, name);
	strcpy(w->ns, ns);
	if (a4) {
		if (addr_parse(a4, w->addr4) || !addr_is_v4(w->addr4))
			return fail(pe, path, "ipv4", "\"%s\" is not an IPv4 address", a4);
		w->has_v4 = true;
	}
	if (a6) {
		if (addr_parse(a6, w->addr6) || addr_is_v4(w->addr6))
			return fail(pe, path, "ipv6", "\"%s\" is not an IPv6 address", a6);
		w->has_v6 = true;
	}
	if (!w->has_v4 && !w->has_v6)
		return fail(pe, path, NULL, "needs ipv4 or ipv6");
	if (!netns != !ifname)
		return fail(pe, path, netns ? "interface" : "netns",
			    "a local workload needs both netns and interface");
	if (netns) {
		if (netns[0] != '/' || strlen(netns) >= sizeof(w->netns))
			return fail(pe, path, "netns", "\"%s\" is not an absolute path", netns);
		if (!*ifname || strlen(ifname) >= sizeof(w->ifname) || strchr(ifname, '/'))
			return fail(pe, path, "interface", "\"%s\" is not an interface name", ifname);
		strcpy(w->netns, netns);
		strcpy(w->ifname, ifname);
		w->local = true;
	}
	return 0;
}

static int parse_node(struct perr *pe, const char *path, json_t *j, struct snapshot *s, size_t i)
{
	static const char *const fields[] = { "name", "hbone", NULL };
	struct snap_node *n = &s->nodes[i];
	const char *name, *hbone;
	int err;

	if (!json_is_object(j))
		return fail(pe, path, NULL, "must be an object");
	err = check_fields(pe, path, j, fields);
	err = err ?: get_str(pe, path, j, "name", true, NULL, &name);
	err = err ?: get_str(pe, path, j, "hbone", true, NULL, &hbone);
	if (err)
		return err;
	if (!*name || strlen(name) >= sizeof(n->name))
		return fail(pe, path, "name", "must be 1..%zu characters", sizeof(n->name) - 1);
	if (addr_hostport_parse(hbone, NULL, NULL))
		return fail(pe, path, "hbone", "\"%s\" is not IP:PORT or [IPv6]:PORT", hbone);
	strcpy(n->name, name);
	strcpy(n->hbone, hbone);
	for (size_t k = 0; k < i; k++)
		if (!strcmp(s->nodes[k].name, name))
			return fail(pe, path, "name", "duplicates nodes[%zu]", k);
	return 0;
}

const struct snap_node *snapshot_node(const struct snapshot *s, const char *name)
{
	for (size_t i = 0; i < s->nnodes; i++)
		if (!strcmp(s->nodes[i].name, name))
			return &s->nodes[i];
	return NULL;
}

static int parse_policy(struct perr *pe, const char *path, json_t *j,
			const struct snapshot *s, struct snap_policy *p)
{
	static const char *const fields[] = { "action", "source", "destination", "protocol",
					      "port", NULL };
	const char *action, *proto;
	json_int_t port;
	int err;

	if (!json_is_object(j))
		return fail(pe, path, NULL, "must be an object");
	err = check_fields(pe, path, j, fields);
	err = err ?: get_str(pe, path, j, "action", true, NULL, &action);
	err = err ?: get_identity_ref(pe, path, j, "source", s, true, &p->src);
	err = err ?: get_identity_ref(pe, path, j, "destination", s, false, &p->dst);
	err = err ?: get_str(pe, path, j, "protocol", false, "TCP", &proto);
	err = err ?: get_int(pe, path, j, "port", false, 0, 65535, 0, &port);
	if (err)
		return err;
	if (strcmp(action, "ALLOW") == 0)
		p->action = SNAP_ALLOW;
	else if (strcmp(action, "DENY") == 0)
		p->action = SNAP_DENY;
	else
		return fail(pe, path, "action", "\"%s\" is not ALLOW or DENY", action);
	if (proto_parse(proto, &p->proto))
		return fail(pe, path, "protocol", "\"%s\" is not TCP or UDP", proto);
	p->port = (uint16_t)port;
	return 0;
}

/* An item, or the object a packed item (lib/wire/snapdelta.h: a string of
 * its JSON text) holds, then owned by *tmp. Text that is not JSON stays
 * the string, which the item's parser refuses as not an object. */
static json_t *unpack(json_t *j, json_t **tmp)
{
	*tmp = NULL;
	if (!json_is_string(j))
		return j;
	*tmp = json_loadb(json_string_value(j), json_string_length(j), 0, NULL);
	return *tmp ?: j;
}

/* Parse the optional array `name` of root with `fn`, one element each. */
#define PARSE_ARRAY(pe, root, name, s, arr, n, max, ...)                                 \
	({                                                                               \
		json_t *ja_ = json_object_get(root, name);                               \
		int rc_ = 0;                                                             \
		if (ja_ && (!json_is_array(ja_) || json_array_size(ja_) > (max))) {      \
			rc_ = fail(pe, name, NULL, "must be an array of at most %d", (max)); \
		} else if (ja_) {                                                        \
			json_t *je_;                                                     \
			size_t i_;                                                       \
			(s)->n = json_array_size(ja_);                                   \
			(s)->arr = calloc((s)->n ?: 1, sizeof(*(s)->arr));               \
			if (!(s)->arr)                                                   \
				rc_ = -ENOMEM;                                           \
			json_array_foreach(ja_, i_, je_) {                               \
				char p_[64];                                             \
				json_t *pk_;                                             \
				if (rc_)                                                 \
					break;                                           \
				snprintf(p_, sizeof(p_), "%s[%zu]", name, i_);           \
				je_ = unpack(je_, &pk_);                                 \
				rc_ = __VA_ARGS__;                                       \
				json_decref(pk_);                                        \
			}                                                                \
		}                                                                        \
		rc_;                                                                     \
	})

static int cmp_key(const void *a, const void *b)
{
	const struct snap_service *x = *(struct snap_service *const *)a;
	const struct snap_service *y = *(struct snap_service *const *)b;

	return memcmp(&x->key, &y->key, sizeof(x->key));
}

/* Duplicate VIP:port/proto, found by sorting pointers (O(n log n) for the
 * 10,000-service snapshots the benchmarks load). */
static int check_dup_vips(struct perr *pe, struct snapshot *s)
{
	struct snap_service **v;
	int err = 0;

	if (s->nservices < 2)
		return 0;
	v = calloc(s->nservices, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < s->nservices; i++)
		v[i] = &s->services[i];
	qsort(v, s->nservices, sizeof(*v), cmp_key);
	for (size_t i = 1; i < s->nservices; i++) {
		if (memcmp(&v[i - 1]->key, &v[i]->key, sizeof(v[i]->key)) == 0) {
			struct snap_service *a = v[i - 1] < v[i] ? v[i - 1] : v[i];
			struct snap_service *b = v[i - 1] < v[i] ? v[i] : v[i - 1];
			char p[64], ab[SL_ADDRSTRLEN];

			snprintf(p, sizeof(p), "services[%td]", b - s->services);
			err = fail(pe, p, NULL, "vip %s port %u/%s duplicates services[%td] (\"%s\")",
				   addr_fmt(b->key.addr, ab), ntohs(b->key.port),
				   proto_name(b->key.proto), a - s->services, a->name);
			break;
		}
	}
	free(v);
	return err;
}

/* A CIDR that is a single address must not be a workload's (one ipcache
 * key, two identities). Checked once workloads are parsed. */
static int check_cidr_workloads(struct perr *pe, const struct snapshot *s)
{
	size_t keys = s->ncidrs;

	for (size_t k = 0; k < s->nworkloads; k++)
		keys += s->workloads[k].has_v4 + s->workloads[k].has_v6;
	if (keys > SL_MAX_IPCACHE)
		return fail(pe, "cidrs", NULL, "workload addresses and cidrs need %zu ipcache "
			    "entries, more than %d", keys, SL_MAX_IPCACHE);
	for (size_t i = 0; i < s->ncidrs; i++) {
		const struct snap_cidr *c = &s->cidrs[i];

		for (size_t k = 0; c->key.prefixlen == 128 && k < s->nworkloads; k++) {
			const struct snap_workload *w = &s->workloads[k];
			char p[32];

			if ((w->has_v4 && !memcmp(w->addr4, c->key.addr, 16)) ||
			    (w->has_v6 && !memcmp(w->addr6, c->key.addr, 16))) {
				snprintf(p, sizeof(p), "cidrs[%zu]", i);
				return fail(pe, p, "cidr", "is the address of workloads[%zu]", k);
			}
		}
	}
	return 0;
}

int snapshot_parse(const char *text, size_t len, const char *src,
		   struct snapshot *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	int rc;

	if (!root) {
		snprintf(err, errlen, "%s:%d:%d: %s", src, jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	rc = snapshot_from_json(root, src, out, err, errlen);
	json_decref(root);
	return rc;
}

/* ---- the parsed-service cache (snap_cache) ------------------------- */

/* An entry without svc moved to another cache: item is only its place
 * in the order, no reference. */
static void cached_free(struct snap_cached *e)
{
	if (e->svc) {
		json_decref(e->item);
		free(e->svc->name);
		free(e->svc->backends);
		free(e->svc);
	}
	e->item = NULL;
	e->svc = NULL;
}

void snap_cache_free(struct snap_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		cached_free(&c->e[i]);
	free(c->e);
	memset(c, 0, sizeof(*c));
}

static int cmp_item(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct snap_cached *)a)->item;
	uintptr_t y = (uintptr_t)((const struct snap_cached *)b)->item;

	return x < y ? -1 : x > y;
}

/* Service i of the array, a packed item or an object, into *out;
 * decoded: the packed item's object, if the caller has it. */
static int service_parse(struct perr *pe, json_t *js, size_t i, json_t *decoded,
			 struct snap_service *out)
{
	json_t *packed = NULL;
	char p[64];
	int rc;

	snprintf(p, sizeof(p), "services[%zu]", i);
	rc = parse_service(pe, p, decoded ?: unpack(js, &packed), out);
	json_decref(packed);
	return rc;
}

static int cmp_fresh(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct snap_fresh *)a)->packed;
	uintptr_t y = (uintptr_t)((const struct snap_fresh *)b)->packed;

	return x < y ? -1 : x > y;
}

void snap_fresh_sort(struct snap_fresh *f, size_t n)
{
	qsort(f, n, sizeof(*f), cmp_fresh);
}

/* The object the caller still has for packed item js, or NULL. */
static json_t *fresh_of(const struct snap_cache *cache, const json_t *js)
{
	struct snap_fresh key = { .packed = js };
	const struct snap_fresh *f = cache->nfresh && json_is_string(js) ?
		bsearch(&key, cache->fresh, cache->nfresh, sizeof(key), cmp_fresh) : NULL;

	return f && json_is_object(f->decoded) ? f->decoded : NULL;
}

/* Service i of the array into *out, its backends borrowed from `next`,
 * which holds it after the call: the cache's entry for its packed item
 * if there is one (the entry moves), else parsed. */
/* The number of the last service parse the cache kept (snap_service.serial). */
static uint64_t serial_last;

static int service_from(struct perr *pe, json_t *js, size_t i, struct snap_cache *cache,
			struct snap_cache *next, struct snap_service *out)
{
	struct snap_cached key = { .item = js }, *hit = NULL, *to = &next->e[next->n];
	int rc;

	if (cache->n && json_is_string(js))
		hit = bsearch(&key, cache->e, cache->n, sizeof(*cache->e), cmp_item);
	if (hit && hit->svc) {
		*to = *hit;   /* moves, reference and all; hit keeps its place */
		hit->svc = NULL;
		*out = *to->svc;
		next->n++;
		return 0;
	}
	rc = service_parse(pe, js, i, fresh_of(cache, js), out);
	out->serial = ++serial_last;
	to->svc = rc ? NULL : malloc(sizeof(*to->svc));
	if (!to->svc) {
		free(out->name);
		free(out->backends);
		out->name = NULL;
		out->backends = NULL;
		return rc ?: -ENOMEM;
	}
	*to->svc = *out;
	to->item = json_incref(js);
	next->n++;
	return 0;
}

int snapshot_from_json(json_t *root, const char *src, struct snapshot *out, char *err,
		       size_t errlen)
{
	return snapshot_from_json_cached(root, src, out, NULL, err, errlen);
}

int snapshot_from_json_cached(json_t *root, const char *src, struct snapshot *out,
			      struct snap_cache *cache, char *err, size_t errlen)
{
	static const char *const fields[] = { "version", "services", "identities",
					      "cidrs", "workloads", "policies", "nodes", NULL };
	struct perr pe = { .src = src, .buf = err, .len = errlen };
	struct snap_cache next = {};
	struct snapshot s = {};
	json_int_t version;
	json_t *jss, *js;
	size_t i;
	int rc;

	if (!json_is_object(root)) {
		rc = fail(&pe, "", NULL, "top level must be an object");
		goto out;
	}
	rc = check_fields(&pe, "", root, fields);
	rc = rc ?: get_int(&pe, "", root, "version", false, 0, INT64_MAX, 0, &version);
	if (rc)
		goto out;
	s.version = (uint64_t)version;
	jss = json_object_get(root, "services");
	if (!jss || !json_is_array(jss)) {
		rc = fail(&pe, "services", NULL, jss ? "must be an array" : "missing required field");
		goto out;
	}
	if (json_array_size(jss) > SL_MAX_SERVICES) {
		rc = fail(&pe, "services", NULL, "%zu services exceed the limit of %d",
			  json_array_size(jss), SL_MAX_SERVICES);
		goto out;
	}
	s.nservices = json_array_size(jss);
	s.services = calloc(s.nservices ?: 1, sizeof(*s.services));
	if (cache)
		next.e = calloc(s.nservices ?: 1, sizeof(*next.e));
	if (!s.services || (cache && !next.e)) {
		rc = -ENOMEM;
		goto out;
	}
	s.services_borrowed = cache != NULL;
	json_array_foreach(jss, i, js) {
		rc = cache ? service_from(&pe, js, i, cache, &next, &s.services[i]) :
			service_parse(&pe, js, i, NULL, &s.services[i]);
		if (rc)
			goto out;
	}
	if (cache)
		qsort(next.e, next.n, sizeof(*next.e), cmp_item);
	rc = check_dup_vips(&pe, &s);
	rc = rc ?: PARSE_ARRAY(&pe, root, "identities", &s, identities, nidentities, 65536,
			       parse_identity(&pe, p_, je_, &s, i_));
	rc = rc ?: PARSE_ARRAY(&pe, root, "cidrs", &s, cidrs, ncidrs, SL_MAX_IPCACHE / 2,
			       parse_cidr(&pe, p_, je_, &s, i_));
	rc = rc ?: PARSE_ARRAY(&pe, root, "workloads", &s, workloads, nworkloads, SL_MAX_IPCACHE / 2,
			       parse_workload(&pe, p_, je_, &s, &s.workloads[i_]));
	rc = rc ?: PARSE_ARRAY(&pe, root, "policies", &s, policies, npolicies, SL_MAX_POLICY / 4,
			       parse_policy(&pe, p_, je_, &s, &s.policies[i_]));
	rc = rc ?: PARSE_ARRAY(&pe, root, "nodes", &s, nodes, nnodes, 65536,
			       parse_node(&pe, p_, je_, &s, i_));
	rc = rc ?: check_cidr_workloads(&pe, &s);
out:
	if (cache)
		snap_cache_free(cache);
	if (rc) {
		if (rc == -ENOMEM)
			snprintf(err, errlen, "%s: out of memory", src);
		snap_cache_free(&next);
		snapshot_free(&s);
		return rc;
	}
	if (cache)
		*cache = next;
	*out = s;
	return 0;
}

int snapshot_load(const char *path, struct snapshot *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;
	int rc;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	do {
		if (cap - len < 65536) {
			char *nb = realloc(buf, cap = cap * 2 + 65536);

			if (!nb) {
				free(buf);
				fclose(f);
				snprintf(err, errlen, "%s: out of memory", path);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	rc = ferror(f) ? -EIO : 0;
	fclose(f);
	if (rc)
		snprintf(err, errlen, "%s: read error", path);
	else
		rc = snapshot_parse(buf, len, path, out, err, errlen);
	free(buf);
	return rc;
}

void snapshot_free(struct snapshot *s)
{
	for (size_t i = 0; i < s->nservices && !s->services_borrowed; i++) {
		free(s->services[i].name);
		free(s->services[i].backends);
	}
	free(s->services);
	free(s->identities);
	for (size_t i = 0; i < s->nworkloads; i++)
		free(s->workloads[i].mtls_ports);
	free(s->workloads);
	free(s->policies);
	free(s->cidrs);
	free(s->nodes);
	memset(s, 0, sizeof(*s));
}
