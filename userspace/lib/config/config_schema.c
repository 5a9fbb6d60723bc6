// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Per-document validation (docs/config.md): each kind's fields as a table
 * walked by one checker, so every kind reports unknown fields, wrong types,
 * missing fields and refused (L7) fields the same way, at the line and
 * column of the offending key or value. What one field cannot say alone
 * (weights adding up, a selector needed by portLevelMtls) is checked by the
 * kind's post function.
 *
 * One file of some 1,100 lines on purpose: most of it is the schema
 * itself, the field tables read top-down like the kinds' specs, and they
 * point at the value checks, the walker and the post functions beside
 * them. All of those share the private struct field and struct vctx and
 * are static; split, that vocabulary and some twenty checkers would have
 * to be exported only so that a table in another file could name them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/config/config_schema.h"
#include "lib/core/addr.h"

struct vctx {
	const char *file;
	struct sl_diags *d;
	const char *kind, *ns, *name;  /* NULL until known */
};

/* An error diagnostic at n (path: the field): -EINVAL. */
__attribute__((format(printf, 4, 5)))
static int verr(struct vctx *v, const struct ynode *n, const char *path, const char *fmt, ...)
{
	char *text = NULL;
	char who[200] = "";
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	if (v->kind && v->name)
		snprintf(who, sizeof(who), "%s: ", SL_RES_ID(v->kind, SL_CLIP(v->ns), SL_CLIP(v->name)));
	sl_diag_add(v->d, SL_DIAG_ERROR, "%s:%d:%d: %s%s%s%s", v->file, n->line, n->col, who,
		    path, *path ? ": " : "", text ?: "(out of memory)");
	free(text);
	return -EINVAL;
}

/* ---- value checks ------------------------------------------------------------ */

/*
 * Does s match pattern (one of the literals below)? Each pattern is
 * compiled once, on first use, and kept for the life of the process:
 * compiling took more time than validating a 10,000-Service config.
 * Not thread-safe, as the config code is not.
 */
static bool matches(const char *pattern, const char *s)
{
	static struct { const char *pattern; regex_t re; } cache[16];
	static size_t n;
	regex_t once;
	bool hit;
	size_t i;

	for (i = 0; i < n && cache[i].pattern != pattern; i++)
		;
	if (i == n && n < sizeof(cache) / sizeof(cache[0])) {
		if (regcomp(&cache[n].re, pattern, REG_EXTENDED | REG_NOSUB))
			return false;
		cache[n++].pattern = pattern;
	}
	if (i < n)
		return regexec(&cache[i].re, s, 0, NULL, 0) == 0;
	if (regcomp(&once, pattern, REG_EXTENDED | REG_NOSUB))   /* cache full */
		return false;
	hit = regexec(&once, s, 0, NULL, 0) == 0;
	regfree(&once);
	return hit;
}

typedef int (*check_fn)(struct vctx *v, const struct ynode *n, const char *path);

static int check_ip(struct vctx *v, const struct ynode *n, const char *path)
{
	__be32 a[4];

	if (addr_parse(n->str, a))
		return verr(v, n, path, "\"%s\" is not an IPv4 or IPv6 address", SL_CLIP(n->str));
	return 0;
}

static int check_cidr(struct vctx *v, const struct ynode *n, const char *path)
{
	struct sl_ipcache_key k;

	if (cidr_parse(n->str, &k))
		return verr(v, n, path, "\"%s\" is not an address or CIDR with zero host bits "
			    "(10.0.0.0/8, fd00::/8)", SL_CLIP(n->str));
	return 0;
}

static int check_port_value(struct vctx *v, const struct ynode *n, const char *path)
{
	char *end;
	long p = strtol(n->str, &end, 10);

	if (!*n->str || *end || p < 1 || p > 65535)
		return verr(v, n, path, "\"%s\" is not a port (1..65535)", SL_CLIP(n->str));
	return 0;
}

static int check_dns_label(struct vctx *v, const struct ynode *n, const char *path)
{
	if (strlen(n->str) > 63 || !matches("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", n->str))
		return verr(v, n, path, "\"%s\" is not a DNS label (lower case letters, digits "
			    "and '-', at most 63)", SL_CLIP(n->str));
	return 0;
}

static int check_dns_name(struct vctx *v, const struct ynode *n, const char *path)
{
	if (strlen(n->str) > 253 ||
	    !matches("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", n->str))
		return verr(v, n, path, "\"%s\" is not a DNS-1123 name", SL_CLIP(n->str));
	return 0;
}

/* A Service's name, as Kubernetes has it: a DNS-1035 label (a letter
 * first, at most 63), so NAME.NAMESPACE.svc.cluster.local is a host name. */
static int check_dns1035(struct vctx *v, const struct ynode *n, const char *path)
{
	if (strlen(n->str) > 63 || !matches("^[a-z]([-a-z0-9]*[a-z0-9])?$", n->str))
		return verr(v, n, path, "\"%s\" is not a Service name (a DNS-1035 label: lower "
			    "case letters, digits and '-', a letter first, at most 63)", SL_CLIP(n->str));
	return 0;
}

/* A host in VirtualService/DestinationRule/ServiceEntry: a DNS name, a
 * short name, or one leading "*." wildcard. */
static int check_host(struct vctx *v, const struct ynode *n, const char *path)
{
	const char *s = n->str;

	if (!strcmp(s, "*"))
		return 0;
	if (!strncmp(s, "*.", 2))
		s += 2;
	if (strlen(s) > 253 ||
	    !matches("^[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?)*$", s))
		return verr(v, n, path, "\"%s\" is not a host name", SL_CLIP(n->str));
	return 0;
}

static int check_duration(struct vctx *v, const struct ynode *n, const char *path)
{
	if (!matches("^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$", n->str))
		return verr(v, n, path, "\"%s\" is not a duration (10s, 1m30s, 500ms)", SL_CLIP(n->str));
	return 0;
}

/* Istio's wildcard rule: one '*', as a prefix or a suffix, or "*" alone.
 * 1 when the pattern holds its '*', 0 when it has none, or -EINVAL. */
static int check_wildcard(struct vctx *v, const struct ynode *n, const char *path,
			  const char *what)
{
	const char *s = n->str, *star = strchr(s, '*');

	if (!*s)
		return verr(v, n, path, "empty %s", what);
	if (star && (strchr(star + 1, '*') || (star != s && star[1])))
		return verr(v, n, path, "\"%s\": a %s may hold one '*', as its prefix or suffix",
			    SL_CLIP(s), what);
	return star ? 1 : 0;
}

/* Principals are "TRUST-DOMAIN/ns/NAMESPACE/sa/ACCOUNT", as in Istio (no
 * "spiffe://"); "*", "prefix*" and "*suffix" are allowed. */
static int check_principal(struct vctx *v, const struct ynode *n, const char *path)
{
	int w = check_wildcard(v, n, path, "principal");

	if (w)
		return w < 0 ? w : 0;
	if (!strncmp(n->str, "spiffe://", 9))
		return verr(v, n, path, "\"%s\": write principals without \"spiffe://\" "
			    "(\"%s\"), as Istio does", SL_CLIP(n->str), SL_CLIP(n->str + 9));
	if (!matches("^[^/]+/ns/[^/]+/sa/[^/]+$", n->str))
		return verr(v, n, path, "\"%s\" is not a principal TRUST-DOMAIN/ns/NAMESPACE/sa/ACCOUNT",
			    SL_CLIP(n->str));
	return 0;
}

static int check_ns_pattern(struct vctx *v, const struct ynode *n, const char *path)
{
	int w = check_wildcard(v, n, path, "namespace");

	if (w)
		return w < 0 ? w : 0;
	return check_dns_label(v, n, path);
}

/* ---- the field tables -------------------------------------------------------- */

enum ftype {
	F_STR,       /* a string (quoted or not; not a number, bool or null) */
	F_INT,       /* an integer in lo..hi */
	F_BOOL,
	F_OBJ,       /* a mapping with `sub` fields */
	F_LIST,      /* a sequence of `elem` */
	F_LABELS,    /* label key -> label value (labels, selectors) */
	F_STRMAP,    /* label key -> any string (annotations) */
	F_PORTMAP,   /* string -> port (WorkloadEntry.ports) */
	F_KEYMAP,    /* `check`ed key -> F_OBJ `sub` (portLevelMtls) */
	F_INTSTR,    /* an integer in lo..hi or a string (targetPort) */
	F_PORTSTR,   /* a port as an integer or a string of digits (Istio ports) */
	F_ANY,       /* anything: accepted and not interpreted (metadata.managedFields) */
	F_REFUSED,   /* present at all: an error, `why` */
};

struct field {
	const char *name;
	enum ftype type;
	enum ftype elem;             /* F_LIST */
	const struct field *sub;     /* F_OBJ, F_KEYMAP, F_LIST of F_OBJ */
	bool req;
	long lo, hi;                 /* F_INT, F_INTSTR */
	const char *const *oneof;    /* F_STR and lists of it */
	check_fn check;              /* F_STR and lists of it; F_KEYMAP keys */
	const char *why;             /* F_REFUSED */
};

#define END { .name = NULL }
#define L7(f, what) { .name = f, .type = F_REFUSED, .why = what " is an L7 attribute: an L4 data plane cannot " \
	"enforce it, and an ALLOW rule holding it would otherwise allow too much (a DENY, too " \
	"little); remove it or enforce it in an L7 proxy" }
#define PORT(f, r) { .name = f, .type = F_INT, .req = r, .lo = 1, .hi = 65535 }
#define STRS(f, chk) { .name = f, .type = F_LIST, .elem = F_STR, .check = chk }

static const char *const protocols_k8s[] = { "TCP", "UDP", NULL };
static const char *const protocols_istio[] = { "TCP", "UDP", "HTTP", "HTTPS", "HTTP2", "GRPC",
					       "GRPC-WEB", "TLS", "MONGO", "MYSQL", "REDIS", NULL };
static const char *const lb_simple[] = { "RANDOM", "ROUND_ROBIN", "LEAST_REQUEST",
					 "LEAST_CONN", "PASSTHROUGH", "UNSPECIFIED", NULL };
static const char *const mtls_modes[] = { "UNSET", "DISABLE", "PERMISSIVE", "STRICT", NULL };
static const char *const locations[] = { "MESH_EXTERNAL", "MESH_INTERNAL", NULL };
static const char *const ip_families[] = { "IPv4", "IPv6", NULL };
static const char *const family_policies[] = { "SingleStack", "PreferDualStack",
					       "RequireDualStack", NULL };
static const char *const affinity[] = { "None", "ClientIP", NULL };
static const char *const traffic_policies[] = { "Cluster", NULL };

static const struct field metadata_f[] = {
	{ .name = "name", .type = F_STR, .req = true, .check = check_dns_name },
	{ .name = "namespace", .type = F_STR, .check = check_dns_label },
	{ .name = "labels", .type = F_LABELS },
	{ .name = "annotations", .type = F_STRMAP },
	/* written by an API server; kept, never interpreted */
	{ .name = "uid", .type = F_ANY }, { .name = "resourceVersion", .type = F_ANY }, { .name = "generation", .type = F_ANY },
	{ .name = "creationTimestamp", .type = F_ANY }, { .name = "managedFields", .type = F_ANY },
	END
};

/* v1 Service */
static const struct field svc_port_f[] = {
	{ .name = "name", .type = F_STR, .check = check_dns_label },
	PORT("port", true),
	{ .name = "targetPort", .type = F_INTSTR, .lo = 1, .hi = 65535 },
	{ .name = "protocol", .type = F_STR, .oneof = protocols_k8s },
	{ .name = "appProtocol", .type = F_STR },
	{ .name = "nodePort", .type = F_REFUSED, .why = "node ports are not supported: sluice balances "
	  "cluster IPs only" },
	END
};
static const struct field svc_client_ip_f[] = {
	{ .name = "timeoutSeconds", .type = F_INT, .lo = 1, .hi = 86400 },
	END
};
static const struct field svc_affinity_f[] = {
	{ .name = "clientIP", .type = F_OBJ, .sub = svc_client_ip_f },
	END
};
static const struct field svc_spec_f[] = {
	{ .name = "type", .type = F_STR },           /* checked in svc_post, with the reason */
	{ .name = "clusterIP", .type = F_STR, .req = true },
	STRS("clusterIPs", check_ip),
	{ .name = "selector", .type = F_LABELS },
	{ .name = "ports", .type = F_LIST, .elem = F_OBJ, .sub = svc_port_f, .req = true },
	{ .name = "ipFamilies", .type = F_LIST, .elem = F_STR, .oneof = ip_families },
	{ .name = "ipFamilyPolicy", .type = F_STR, .oneof = family_policies },
	{ .name = "sessionAffinity", .type = F_STR, .oneof = affinity },
	{ .name = "sessionAffinityConfig", .type = F_OBJ, .sub = svc_affinity_f },
	{ .name = "internalTrafficPolicy", .type = F_STR, .oneof = traffic_policies },
	{ .name = "externalIPs", .type = F_REFUSED, .why = "external IPs are not supported; use a ServiceEntry" },
	{ .name = "loadBalancerIP", .type = F_REFUSED, .why = "only type ClusterIP is supported" },
	END
};

/* WorkloadEntry spec, also ServiceEntry endpoints[] */
static const struct field we_spec_f[] = {
	{ .name = "address", .type = F_STR, .req = true, .check = check_ip },
	{ .name = "ports", .type = F_PORTMAP },
	{ .name = "labels", .type = F_LABELS },
	{ .name = "network", .type = F_STR },
	{ .name = "locality", .type = F_STR },
	{ .name = "weight", .type = F_INT, .lo = 1, .hi = 1000000 },
	{ .name = "serviceAccount", .type = F_STR, .check = check_dns_name },
	END
};

/* WorkloadGroup: the template of workloads that register themselves
 * (the sluice CNI plugin); the control plane authorizes a registration
 * by the group's namespace and template.serviceAccount. */
static const struct field wg_meta_f[] = {
	{ .name = "labels", .type = F_LABELS },
	{ .name = "annotations", .type = F_STRMAP },
	END
};
static const struct field wg_template_f[] = {
	{ .name = "serviceAccount", .type = F_STR, .req = true, .check = check_dns_name },
	{ .name = "ports", .type = F_PORTMAP },
	{ .name = "labels", .type = F_LABELS },
	{ .name = "network", .type = F_STR },
	{ .name = "locality", .type = F_STR },
	{ .name = "weight", .type = F_INT, .lo = 1, .hi = 1000000 },
	{ .name = "address", .type = F_REFUSED, .why = "a WorkloadGroup's members register their own "
	  "addresses; remove it" },
	END
};
static const struct field wg_spec_f[] = {
	{ .name = "metadata", .type = F_OBJ, .sub = wg_meta_f },
	{ .name = "template", .type = F_OBJ, .sub = wg_template_f, .req = true },
	{ .name = "probe", .type = F_REFUSED, .why = "health probes are not run: a registered "
	  "workload stays until its runtime removes it; remove it" },
	END
};

static const struct field se_port_f[] = {
	PORT("number", true),
	{ .name = "protocol", .type = F_STR, .oneof = protocols_istio },
	{ .name = "name", .type = F_STR, .req = true },
	PORT("targetPort", false),
	END
};
static const struct field labels_only_f[] = { { .name = "labels", .type = F_LABELS }, END };
static const struct field se_spec_f[] = {
	{ .name = "hosts", .type = F_LIST, .elem = F_STR, .req = true, .check = check_host },
	STRS("addresses", check_cidr),
	{ .name = "ports", .type = F_LIST, .elem = F_OBJ, .sub = se_port_f },
	{ .name = "location", .type = F_STR, .oneof = locations },
	{ .name = "resolution", .type = F_STR },     /* se_post */
	{ .name = "endpoints", .type = F_LIST, .elem = F_OBJ, .sub = we_spec_f },
	{ .name = "workloadSelector", .type = F_OBJ, .sub = labels_only_f },
	{ .name = "exportTo", .type = F_LIST, .elem = F_STR },  /* checked: only "*" */
	{ .name = "subjectAltNames", .type = F_REFUSED, .why = "subjectAltNames verifies TLS that sluice does "
	  "not originate; remove it" },
	END
};

/* DestinationRule */
#define RING(f) { .name = f, .type = F_REFUSED, .why = "the hash table is not configurable: a client's " \
	"source hashes into a Maglev table of about 64 entries per backend (at least 1021); " \
	"remove it" }
static const struct field dr_hash_f[] = {
	{ .name = "useSourceIp", .type = F_BOOL },
	L7("httpHeaderName", "consistentHash.httpHeaderName"),
	L7("httpCookie", "consistentHash.httpCookie"),
	L7("httpQueryParameterName", "consistentHash.httpQueryParameterName"),
	RING("ringHash"), RING("maglev"), RING("minimumRingSize"),
	END
};
static const struct field dr_lb_f[] = {
	{ .name = "simple", .type = F_STR, .oneof = lb_simple },
	{ .name = "consistentHash", .type = F_OBJ, .sub = dr_hash_f },
	{ .name = "localityLbSetting", .type = F_REFUSED, .why = "locality-aware load balancing is not supported" },
	{ .name = "warmupDurationSecs", .type = F_REFUSED, .why = "slow start is not supported" },
	END
};
static const struct field dr_keepalive_f[] = {
	{ .name = "probes", .type = F_INT, .lo = 1, .hi = 1000 },
	{ .name = "time", .type = F_STR, .check = check_duration },
	{ .name = "interval", .type = F_STR, .check = check_duration },
	END
};
static const struct field dr_tcp_f[] = {
	{ .name = "maxConnections", .type = F_INT, .lo = 1, .hi = 2147483647 },
	{ .name = "connectTimeout", .type = F_STR, .check = check_duration },
	{ .name = "tcpKeepalive", .type = F_OBJ, .sub = dr_keepalive_f },
	END
};
static const struct field dr_pool_f[] = {
	{ .name = "tcp", .type = F_OBJ, .sub = dr_tcp_f },
	L7("http", "connectionPool.http (requests, retries, HTTP/2 settings)"),
	END
};
static const struct field dr_outlier_f[] = {
	{ .name = "consecutiveErrors", .type = F_INT, .lo = 0, .hi = 2147483647 },
	{ .name = "consecutive5xxErrors", .type = F_INT, .lo = 0, .hi = 2147483647 },
	{ .name = "consecutiveGatewayErrors", .type = F_INT, .lo = 0, .hi = 2147483647 },
	{ .name = "consecutiveLocalOriginFailures", .type = F_INT, .lo = 0, .hi = 2147483647 },
	{ .name = "splitExternalLocalOriginErrors", .type = F_BOOL },
	{ .name = "interval", .type = F_STR, .check = check_duration },
	{ .name = "baseEjectionTime", .type = F_STR, .check = check_duration },
	{ .name = "maxEjectionPercent", .type = F_INT, .lo = 0, .hi = 100 },
	{ .name = "minHealthPercent", .type = F_INT, .lo = 0, .hi = 100 },
	END
};
#define DR_TLS { .name = "tls", .type = F_REFUSED, .why = "client TLS settings are not supported: mTLS " \
	"between workloads is decided by PeerAuthentication" }
static const struct field dr_port_sel_f[] = { PORT("number", true), END };
static const struct field dr_port_policy_f[] = {
	{ .name = "port", .type = F_OBJ, .sub = dr_port_sel_f, .req = true },
	{ .name = "loadBalancer", .type = F_OBJ, .sub = dr_lb_f },
	{ .name = "connectionPool", .type = F_OBJ, .sub = dr_pool_f },
	{ .name = "outlierDetection", .type = F_OBJ, .sub = dr_outlier_f },
	DR_TLS,
	END
};
static const struct field dr_policy_f[] = {
	{ .name = "loadBalancer", .type = F_OBJ, .sub = dr_lb_f },
	{ .name = "connectionPool", .type = F_OBJ, .sub = dr_pool_f },
	{ .name = "outlierDetection", .type = F_OBJ, .sub = dr_outlier_f },
	DR_TLS,
	{ .name = "portLevelSettings", .type = F_LIST, .elem = F_OBJ, .sub = dr_port_policy_f },
	{ .name = "tunnel", .type = F_REFUSED, .why = "tunnel settings are not supported" },
	{ .name = "proxyProtocol", .type = F_REFUSED, .why = "the PROXY protocol needs a proxy" },
	END
};
static const struct field dr_subset_f[] = {
	{ .name = "name", .type = F_STR, .req = true },
	{ .name = "labels", .type = F_LABELS },
	{ .name = "trafficPolicy", .type = F_OBJ, .sub = dr_policy_f },
	END
};
static const struct field dr_spec_f[] = {
	{ .name = "host", .type = F_STR, .req = true, .check = check_host },
	{ .name = "trafficPolicy", .type = F_OBJ, .sub = dr_policy_f },
	{ .name = "subsets", .type = F_LIST, .elem = F_OBJ, .sub = dr_subset_f },
	{ .name = "exportTo", .type = F_LIST, .elem = F_STR },
	{ .name = "workloadSelector", .type = F_REFUSED, .why = "DestinationRule.workloadSelector chooses "
	  "sidecars; sluice has none" },
	END
};

/* VirtualService */
static const struct field vs_port_sel_f[] = { PORT("number", true), END };
static const struct field vs_dest_f[] = {
	{ .name = "host", .type = F_STR, .req = true, .check = check_host },
	{ .name = "subset", .type = F_STR },
	{ .name = "port", .type = F_OBJ, .sub = vs_port_sel_f },
	END
};
static const struct field vs_route_f[] = {
	{ .name = "destination", .type = F_OBJ, .sub = vs_dest_f, .req = true },
	{ .name = "weight", .type = F_INT, .lo = 0, .hi = 100 },
	END
};
static const struct field vs_match_f[] = {
	PORT("port", false),
	{ .name = "sourceLabels", .type = F_LABELS },
	{ .name = "sourceNamespace", .type = F_STR, .check = check_dns_label },
	{ .name = "gateways", .type = F_LIST, .elem = F_STR },
	{ .name = "destinationSubnets", .type = F_REFUSED, .why = "destinationSubnets is not supported: a "
	  "route applies to the host's VIP" },
	END
};
static const struct field vs_tcp_f[] = {
	{ .name = "match", .type = F_LIST, .elem = F_OBJ, .sub = vs_match_f },
	{ .name = "route", .type = F_LIST, .elem = F_OBJ, .sub = vs_route_f, .req = true },
	END
};
static const struct field vs_spec_f[] = {
	{ .name = "hosts", .type = F_LIST, .elem = F_STR, .req = true, .check = check_host },
	{ .name = "gateways", .type = F_LIST, .elem = F_STR },
	{ .name = "exportTo", .type = F_LIST, .elem = F_STR },
	{ .name = "tcp", .type = F_LIST, .elem = F_OBJ, .sub = vs_tcp_f },
	L7("http", "an http route (matching on URIs, headers or methods)"),
	{ .name = "tls", .type = F_REFUSED, .why = "tls routes match the TLS SNI, which an L4 data plane does "
	  "not read; use tcp routes" },
	END
};

/* AuthorizationPolicy */
static const struct field ap_source_f[] = {
	STRS("principals", check_principal),
	STRS("notPrincipals", check_principal),
	L7("requestPrincipals", "requestPrincipals (JWT identities)"),
	L7("notRequestPrincipals", "notRequestPrincipals (JWT identities)"),
	STRS("namespaces", check_ns_pattern),
	STRS("notNamespaces", check_ns_pattern),
	STRS("ipBlocks", check_cidr),
	STRS("notIpBlocks", check_cidr),
	STRS("remoteIpBlocks", check_cidr),
	STRS("notRemoteIpBlocks", check_cidr),
	END
};
static const struct field ap_from_f[] = { { .name = "source", .type = F_OBJ, .sub = ap_source_f }, END };
static const struct field ap_op_f[] = {
	{ .name = "ports", .type = F_LIST, .elem = F_PORTSTR },
	{ .name = "notPorts", .type = F_LIST, .elem = F_PORTSTR },
	L7("hosts", "hosts (the HTTP Host header)"),
	L7("notHosts", "notHosts (the HTTP Host header)"),
	L7("methods", "methods (HTTP methods)"),
	L7("notMethods", "notMethods (HTTP methods)"),
	L7("paths", "paths (HTTP paths)"),
	L7("notPaths", "notPaths (HTTP paths)"),
	END
};
static const struct field ap_to_f[] = { { .name = "operation", .type = F_OBJ, .sub = ap_op_f }, END };
static const struct field ap_when_f[] = {
	{ .name = "key", .type = F_STR, .req = true },   /* ap_when_post */
	{ .name = "values", .type = F_LIST, .elem = F_STR },
	{ .name = "notValues", .type = F_LIST, .elem = F_STR },
	END
};
static const struct field ap_rule_f[] = {
	{ .name = "from", .type = F_LIST, .elem = F_OBJ, .sub = ap_from_f },
	{ .name = "to", .type = F_LIST, .elem = F_OBJ, .sub = ap_to_f },
	{ .name = "when", .type = F_LIST, .elem = F_OBJ, .sub = ap_when_f },
	END
};
static const struct field match_labels_f[] = { { .name = "matchLabels", .type = F_LABELS }, END };
static const struct field ap_spec_f[] = {
	{ .name = "selector", .type = F_OBJ, .sub = match_labels_f },
	{ .name = "action", .type = F_STR },             /* ap_post, with the reason */
	{ .name = "rules", .type = F_LIST, .elem = F_OBJ, .sub = ap_rule_f },
	{ .name = "provider", .type = F_REFUSED, .why = "provider goes with action CUSTOM (external "
	  "authorization), which an L4 data plane cannot call" },
	{ .name = "targetRef", .type = F_REFUSED, .why = "targetRef attaches policies to gateways; use selector" },
	{ .name = "targetRefs", .type = F_REFUSED, .why = "targetRefs attaches policies to gateways; use selector" },
	END
};

/* PeerAuthentication */
static const struct field pa_mtls_f[] = { { .name = "mode", .type = F_STR, .oneof = mtls_modes }, END };
static const struct field pa_spec_f[] = {
	{ .name = "selector", .type = F_OBJ, .sub = match_labels_f },
	{ .name = "mtls", .type = F_OBJ, .sub = pa_mtls_f },
	{ .name = "portLevelMtls", .type = F_KEYMAP, .sub = pa_mtls_f, .check = check_port_value },
	END
};

/* ---- the walker -------------------------------------------------------------- */

static const char *type_name(enum ftype t)
{
	switch (t) {
	case F_STR: return "a string";
	case F_INT: return "an integer";
	case F_BOOL: return "true or false";
	case F_OBJ: case F_LABELS: case F_STRMAP: case F_PORTMAP: case F_KEYMAP: return "a mapping";
	case F_LIST: return "a list";
	case F_INTSTR: return "an integer or a string";
	case F_PORTSTR: return "a port number";
	default: return "a value";
	}
}

static int walk_obj(struct vctx *v, const struct ynode *n, const char *path,
		    const struct field *fields);

static int check_scalar_kind(struct vctx *v, const struct ynode *n, const char *path,
			     enum ftype t, long lo, long hi)
{
	enum yscalar k = n->type == YN_SCALAR ? yscalar_kind(n) : YS_NULL;
	bool ok;

	switch (t) {
	case F_STR: ok = n->type == YN_SCALAR && k == YS_STR; break;
	case F_INT: ok = n->type == YN_SCALAR && k == YS_INT; break;
	case F_BOOL: ok = n->type == YN_SCALAR && k == YS_BOOL; break;
	case F_INTSTR: ok = n->type == YN_SCALAR && (k == YS_INT || k == YS_STR); break;
	case F_PORTSTR:
		if (n->type == YN_SCALAR && (k == YS_INT || k == YS_STR))
			return check_port_value(v, n, path);
		ok = false;
		break;
	default: ok = true;
	}
	if (!ok)
		return verr(v, n, path, "must be %s", type_name(t));
	if ((t == F_INT || (t == F_INTSTR && k == YS_INT)) && hi) {
		long long x = strtoll(n->str, NULL, 10);

		if (x < lo || x > hi)
			return verr(v, n, path, "%lld is out of range %ld..%ld", x, lo, hi);
	}
	return 0;
}

/* One scalar of a F_STR field (or list element): type, oneof, check. */
static int check_str(struct vctx *v, const struct ynode *n, const char *path,
		     const struct field *f)
{
	if (check_scalar_kind(v, n, path, F_STR, 0, 0))
		return -EINVAL;
	if (f->oneof) {
		const char *const *o;
		char list[256] = "";

		for (o = f->oneof; *o; o++)
			if (!strcmp(*o, n->str))
				return f->check ? f->check(v, n, path) : 0;
		for (o = f->oneof; *o; o++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 o == f->oneof ? "" : ", ", *o);
		return verr(v, n, path, "\"%s\" is not one of %s", SL_CLIP(n->str), list);
	}
	return f->check ? f->check(v, n, path) : 0;
}

/* Kubernetes' label value, and the NAME of a key: at most 63 of letters,
 * digits, '-', '_' and '.', starting and ending with a letter or digit
 * (empty: `empty_ok`). */
static bool k8s_name_ok(const char *s, size_t n, bool empty_ok)
{
	if (!n)
		return empty_ok;
	if (n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

/* A label or annotation key: [PREFIX/]NAME, PREFIX a DNS-1123 subdomain. */
static bool k8s_key_ok(const char *s)
{
	const char *slash = strchr(s, '/');

	if (!slash)
		return k8s_name_ok(s, strlen(s), false);
	return slash - s <= 253 && k8s_name_ok(slash + 1, strlen(slash + 1), false) &&
	       matches("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/",
		       s);
}

/* path, sep and key (as diagnostics quote it) into p, as snprintf would
 * write "%s%s%s" but without reading a format: every key of every
 * document passes here. */
static void path_key(char *p, size_t len, const char *path, const char *sep, const char *key)
{
	char clip[SL_CONFIG_QUOTE_MAX + 4];
	const char *part[3] = { path, sep, sl_clip(key, clip) };
	size_t at = 0;

	for (int i = 0; i < 3; i++) {
		size_t n = strnlen(part[i], len - 1 - at);

		memcpy(p + at, part[i], n);
		at += n;
	}
	p[at] = '\0';
}

/* A mapping whose values are all `vt` (strings or ports); labels and
 * annotations have their keys (and labels their values) checked as
 * Kubernetes checks them. */
static int check_map(struct vctx *v, const struct ynode *n, const char *path, enum ftype t)
{
	enum ftype vt = t == F_PORTMAP ? F_INT : F_STR;
	int rc = 0;

	if (n->type != YN_MAP)
		return verr(v, n, path, "must be a mapping");
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->items[2 * i], *val = n->items[2 * i + 1];
		char p[512];

		path_key(p, sizeof(p), path, ".", k->str);
		if (t != F_PORTMAP && !k8s_key_ok(k->str))
			rc |= verr(v, k, p, "\"%s\" is not a key Kubernetes accepts ([PREFIX/]NAME: "
				   "NAME at most 63 of letters, digits, '-', '_', '.', starting and "
				   "ending with a letter or digit; PREFIX a DNS-1123 subdomain)",
				   SL_CLIP(k->str));
		else if (check_scalar_kind(v, val, p, vt, 1, 65535))
			rc = -EINVAL;
		else if (t == F_LABELS && !k8s_name_ok(val->str, strlen(val->str), true))
			rc |= verr(v, val, p, "\"%s\" is not a label value (at most 63 of letters, "
				   "digits, '-', '_', '.', starting and ending with a letter or digit)",
				   SL_CLIP(val->str));
	}
	return rc;
}

static int walk_value(struct vctx *v, const struct ynode *n, const char *path,
		      const struct field *f, enum ftype t)
{
	int rc = 0;

	switch (t) {
	case F_STR:
		return check_str(v, n, path, f);
	case F_INT: case F_BOOL: case F_INTSTR: case F_PORTSTR:
		return check_scalar_kind(v, n, path, t, f->lo, f->hi);
	case F_OBJ:
		return walk_obj(v, n, path, f->sub);
	case F_LABELS: case F_STRMAP: case F_PORTMAP:
		return check_map(v, n, path, t);
	case F_KEYMAP:
		if (n->type != YN_MAP)
			return verr(v, n, path, "must be a mapping");
		for (size_t i = 0; i < n->n; i++) {
			char p[512];

			path_key(p, sizeof(p), path, ".", n->items[2 * i]->str);
			rc |= f->check(v, n->items[2 * i], p);
			rc |= walk_obj(v, n->items[2 * i + 1], p, f->sub);
		}
		return rc;
	case F_LIST:
		if (n->type != YN_SEQ)
			return verr(v, n, path, "must be a list");
		for (size_t i = 0; i < n->n; i++) {
			char p[512];

			snprintf(p, sizeof(p), "%s[%zu]", path, i);
			rc |= walk_value(v, n->items[i], p, f, f->elem);
		}
		return rc;
	case F_ANY:
		return 0;
	case F_REFUSED:
		return verr(v, n, path, "%s", f->why);
	}
	return 0;
}

static bool is_null(const struct ynode *n)
{
	return n->type == YN_SCALAR && yscalar_kind(n) == YS_NULL;
}

static int walk_obj(struct vctx *v, const struct ynode *n, const char *path,
		    const struct field *fields)
{
	const struct field *f;
	int rc = 0;

	if (n->type != YN_MAP)
		return verr(v, n, path, "must be a mapping");
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->items[2 * i], *val = n->items[2 * i + 1];
		char p[512];

		path_key(p, sizeof(p), path, *path ? "." : "", k->str);
		for (f = fields; f->name; f++)
			if (!strcmp(f->name, k->str))
				break;
		if (!f->name) {
			char known[400] = "";

			for (f = fields; f->name; f++)
				if (f->type != F_REFUSED && f->type != F_ANY)
					snprintf(known + strlen(known), sizeof(known) - strlen(known),
						 "%s%s", known[0] ? ", " : "", f->name);
			rc |= verr(v, k, p, "unknown field (known: %s)", known);
			continue;
		}
		if (f->type == F_REFUSED)
			rc |= verr(v, k, p, "%s", f->why);
		else if (!is_null(val) || f->req)
			rc |= walk_value(v, val, p, f, f->type);
	}
	for (f = fields; f->name; f++) {
		const struct ynode *val = ymap_get(n, f->name);

		if (f->req && (!val || is_null(val)))
			rc |= verr(v, val ?: n, path, "%s: required field missing", f->name);
	}
	return rc ? -EINVAL : 0;
}

/* ---- per-kind checks beyond single fields ------------------------------------ */

static const char *str_at(const struct ynode *n, const char *key)
{
	const struct ynode *x = ymap_get(n, key);

	return x && x->type == YN_SCALAR && yscalar_kind(x) == YS_STR ? x->str : NULL;
}

static int svc_post(struct vctx *v, const struct ynode *spec)
{
	const struct ynode *type = ymap_get(spec, "type"), *ip = ymap_get(spec, "clusterIP");
	const struct ynode *ips = ymap_get(spec, "clusterIPs"), *ports = ymap_get(spec, "ports");
	__be32 a[4], b[4];
	int rc = 0;

	if (type && type->type == YN_SCALAR && strcmp(type->str, "ClusterIP"))
		rc |= verr(v, type, "spec.type", "\"%s\" is refused: only ClusterIP services are "
			   "supported (NodePort, LoadBalancer and ExternalName need what sluice "
			   "does not do)", SL_CLIP(type->str));
	if (ip && ip->type == YN_SCALAR && !strcmp(ip->str, "None"))
		rc |= verr(v, ip, "spec.clusterIP", "headless services (None) are refused: "
			   "there is no VIP to balance");
	else if (ip && ip->type == YN_SCALAR && addr_parse(ip->str, a))
		rc |= verr(v, ip, "spec.clusterIP", "\"%s\" is not an IPv4 or IPv6 address", SL_CLIP(ip->str));
	else if (ips && ips->type == YN_SEQ && ips->n > 0 && ip &&
		 (addr_parse(ips->items[0]->str, b) || memcmp(a, b, sizeof(a))))
		rc |= verr(v, ips->items[0], "spec.clusterIPs[0]", "must equal spec.clusterIP");
	if (ips && ips->type == YN_SEQ && ips->n > 2)
		rc |= verr(v, ips, "spec.clusterIPs", "at most two addresses (one per family)");
	if (ips && ips->type == YN_SEQ && ips->n == 2 && !addr_parse(ips->items[0]->str, a) &&
	    !addr_parse(ips->items[1]->str, b) && addr_is_v4(a) == addr_is_v4(b))
		rc |= verr(v, ips->items[1], "spec.clusterIPs[1]", "must be of the other family");
	for (size_t i = 0; ports && ports->type == YN_SEQ && i < ports->n; i++) {
		const char *name = str_at(ports->items[i], "name");

		if (ports->n > 1 && !name)
			rc |= verr(v, ports->items[i], "spec.ports", "[%zu]: a Service with more "
				   "than one port must name each", i);
	}
	return rc;
}

static int se_post(struct vctx *v, const struct ynode *spec)
{
	const struct ynode *res = ymap_get(spec, "resolution"), *addrs = ymap_get(spec, "addresses");
	const struct ynode *exp = ymap_get(spec, "exportTo");
	bool none = !res || !strcmp(res->str, "NONE");
	int rc = 0;

	if (res && strcmp(res->str, "NONE") && strcmp(res->str, "STATIC"))
		return verr(v, res, "spec.resolution", "\"%s\" is refused: only STATIC and NONE; "
			    "the control plane does not resolve DNS names", SL_CLIP(res->str));
	if (ymap_get(spec, "endpoints") && ymap_get(spec, "workloadSelector"))
		rc |= verr(v, ymap_get(spec, "workloadSelector"), "spec.workloadSelector",
			   "give endpoints or workloadSelector, not both");
	for (size_t i = 0; !none && addrs && addrs->type == YN_SEQ && i < addrs->n; i++) {
		struct sl_ipcache_key k;

		if (!cidr_parse(addrs->items[i]->str, &k) && k.prefixlen != 128)
			rc |= verr(v, addrs->items[i], "spec.addresses", "[%zu]: \"%s\": a STATIC "
				   "ServiceEntry's addresses are VIPs and must be single addresses",
				   i, SL_CLIP(addrs->items[i]->str));
	}
	for (size_t i = 0; exp && exp->type == YN_SEQ && i < exp->n; i++)
		if (strcmp(exp->items[i]->str, "*"))
			rc |= verr(v, exp->items[i], "spec.exportTo", "[%zu]: \"%s\" is refused: "
				   "every node sees every service; only \"*\"", i, SL_CLIP(exp->items[i]->str));
	return rc;
}

static const char *const sluice_annotations[] = { "sluice.io/node", "sluice.io/netns",
						  "sluice.io/interface", "sluice.io/cgroup",
						  "sluice.io/ipv6", "sluice.io/container", NULL };

/* sluice.io/ annotations of a WorkloadEntry: where it runs. */
static int we_annotations(struct vctx *v, const struct ynode *doc)
{
	const struct ynode *ann = ymap_get(ymap_get(doc, "metadata"), "annotations");
	const struct ynode *node, *netns, *ifname, *cg, *v6, *addr;
	__be32 a[4], b[4];
	int rc = 0;

	if (!ann || ann->type != YN_MAP)
		return 0;
	for (size_t i = 0; i < ann->n; i++) {
		const char *k = ann->items[2 * i]->str;
		const char *const *s;

		if (strncmp(k, "sluice.io/", 10))
			continue;
		for (s = sluice_annotations; *s && strcmp(*s, k); s++)
			;
		if (!*s)
			rc |= verr(v, ann->items[2 * i], "metadata.annotations", "unknown annotation "
				   "\"%s\" (known: sluice.io/node, netns, interface, cgroup, ipv6, container)", SL_CLIP(k));
	}
	node = ymap_get(ann, "sluice.io/node");
	netns = ymap_get(ann, "sluice.io/netns");
	ifname = ymap_get(ann, "sluice.io/interface");
	cg = ymap_get(ann, "sluice.io/cgroup");
	v6 = ymap_get(ann, "sluice.io/ipv6");
	if (node && check_dns_name(v, node, "metadata.annotations.sluice.io/node"))
		rc = -EINVAL;
	if ((netns || ifname || cg) && !node)
		rc |= verr(v, netns ?: ifname ?: cg, "metadata.annotations",
			   "sluice.io/netns, interface and cgroup need sluice.io/node");
	if (node && (!netns || !ifname))
		rc |= verr(v, node, "metadata.annotations.sluice.io/node", "a workload placed on "
			   "a node needs sluice.io/netns and sluice.io/interface too");
	if (netns && (netns->str[0] != '/' || strlen(netns->str) > 255))
		rc |= verr(v, netns, "metadata.annotations.sluice.io/netns", "\"%s\" is not an "
			   "absolute path", SL_CLIP(netns->str));
	if (cg && (cg->str[0] != '/' || strlen(cg->str) > 255))
		rc |= verr(v, cg, "metadata.annotations.sluice.io/cgroup", "\"%s\" is not an "
			   "absolute path", SL_CLIP(cg->str));
	if (ifname && (!*ifname->str || strlen(ifname->str) > 15 || strchr(ifname->str, '/')))
		rc |= verr(v, ifname, "metadata.annotations.sluice.io/interface", "\"%s\" is not an "
			   "interface name (1..15 characters)", SL_CLIP(ifname->str));
	addr = ymap_get(ymap_get(doc, "spec"), "address");
	if (v6 && (addr_parse(v6->str, a) || addr_is_v4(a)))
		rc |= verr(v, v6, "metadata.annotations.sluice.io/ipv6", "\"%s\" is not an IPv6 "
			   "address", SL_CLIP(v6->str));
	else if (v6 && addr && !addr_parse(addr->str, b) && !addr_is_v4(b))
		rc |= verr(v, v6, "metadata.annotations.sluice.io/ipv6", "spec.address is IPv6 "
			   "already; sluice.io/ipv6 adds an IPv6 address to an IPv4 workload");
	return rc;
}

static int vs_post(struct vctx *v, const struct ynode *spec)
{
	const struct ynode *tcp = ymap_get(spec, "tcp"), *gw = ymap_get(spec, "gateways");
	int rc = 0;

	for (size_t i = 0; gw && gw->type == YN_SEQ && i < gw->n; i++)
		if (strcmp(gw->items[i]->str, "mesh"))
			rc |= verr(v, gw->items[i], "spec.gateways", "[%zu]: \"%s\" is refused: sluice "
				   "has no gateways; only \"mesh\"", i, SL_CLIP(gw->items[i]->str));
	for (size_t i = 0; tcp && tcp->type == YN_SEQ && i < tcp->n; i++) {
		const struct ynode *route = ymap_get(tcp->items[i], "route");
		long sum = 0;
		bool any = false;
		char p[64];

		if (!route || route->type != YN_SEQ)
			continue;
		for (size_t k = 0; k < route->n; k++) {
			const struct ynode *w = ymap_get(route->items[k], "weight");

			if (w && w->type == YN_SCALAR && yscalar_kind(w) == YS_INT) {
				sum += strtol(w->str, NULL, 10);
				any = true;
			}
		}
		snprintf(p, sizeof(p), "spec.tcp[%zu].route", i);
		if ((route->n > 1 || any) && sum != 100)
			rc |= verr(v, route, p, "weights add up to %ld, not 100%s", sum,
				   route->n > 1 && !any ? " (give every destination a weight)" : "");
	}
	return rc;
}

static const char *const when_keys[] = { "source.ip", "remote.ip", "source.namespace",
					  "source.principal", "destination.ip", "destination.port",
					  NULL };

static int ap_when(struct vctx *v, const struct ynode *w, const char *path)
{
	const struct ynode *key = ymap_get(w, "key");
	const char *const *k;
	check_fn chk = NULL;
	int rc = 0;

	if (!key || key->type != YN_SCALAR)
		return 0;
	for (k = when_keys; *k && strcmp(*k, key->str); k++)
		;
	if (!*k) {
		char p[512];

		snprintf(p, sizeof(p), "%s.key", path);
		if (!strncmp(key->str, "request.", 8) || !strncmp(key->str, "connection.sni", 14) ||
		    !strncmp(key->str, "experimental.", 13))
			return verr(v, key, p, "\"%s\" is an L7 attribute: an L4 data plane cannot "
				    "enforce it, and an ALLOW rule holding it would otherwise allow too "
				    "much (a DENY, too little); remove it or enforce it in an L7 proxy",
				    SL_CLIP(key->str));
		return verr(v, key, p, "\"%s\" is not a condition key sluice knows (source.ip, "
			    "remote.ip, source.namespace, source.principal, destination.ip, "
			    "destination.port)", SL_CLIP(key->str));
	}
	if (!strcmp(*k, "source.ip") || !strcmp(*k, "remote.ip") || !strcmp(*k, "destination.ip"))
		chk = check_cidr;
	else if (!strcmp(*k, "source.namespace"))
		chk = check_ns_pattern;
	else if (!strcmp(*k, "source.principal"))
		chk = check_principal;
	else
		chk = check_port_value;
	if (!ymap_get(w, "values") && !ymap_get(w, "notValues"))
		return verr(v, w, path, "a condition needs values or notValues");
	for (int pass = 0; pass < 2; pass++) {
		const char *name = pass ? "notValues" : "values";
		const struct ynode *vals = ymap_get(w, name);

		for (size_t i = 0; vals && vals->type == YN_SEQ && i < vals->n; i++) {
			char p[512];

			snprintf(p, sizeof(p), "%s.%s[%zu]", path, name, i);
			if (vals->items[i]->type == YN_SCALAR)
				rc |= chk(v, vals->items[i], p);
		}
	}
	return rc;
}

static int ap_post(struct vctx *v, const struct ynode *spec)
{
	const struct ynode *action = ymap_get(spec, "action"), *rules = ymap_get(spec, "rules");
	int rc = 0;

	if (action && action->type == YN_SCALAR && (!strcmp(action->str, "CUSTOM") ||
						    !strcmp(action->str, "AUDIT")))
		rc |= verr(v, action, "spec.action", "%s is refused: %s", action->str,
			   !strcmp(action->str, "CUSTOM") ?
			   "it delegates to an external authorizer that an L4 data plane cannot call" :
			   "auditing needs an L7 proxy's access log; sluice's flow events already "
			   "record every connection");
	else if (action && action->type == YN_SCALAR && strcmp(action->str, "ALLOW") &&
		 strcmp(action->str, "DENY"))
		rc |= verr(v, action, "spec.action", "\"%s\" is not one of ALLOW, DENY", SL_CLIP(action->str));
	for (size_t i = 0; rules && rules->type == YN_SEQ && i < rules->n; i++) {
		const struct ynode *when = ymap_get(rules->items[i], "when");

		for (size_t k = 0; when && when->type == YN_SEQ && k < when->n; k++) {
			char p[64];

			snprintf(p, sizeof(p), "spec.rules[%zu].when[%zu]", i, k);
			rc |= ap_when(v, when->items[k], p);
		}
	}
	return rc;
}

static int pa_post(struct vctx *v, const struct ynode *spec)
{
	const struct ynode *plm = ymap_get(spec, "portLevelMtls");

	if (plm && !is_null(plm) && !ymap_get(ymap_get(spec, "selector"), "matchLabels"))
		return verr(v, plm, "spec.portLevelMtls", "needs a selector with matchLabels "
			    "(as in Istio)");
	return 0;
}

/* ---- kinds -------------------------------------------------------------------- */

struct kind {
	const char *kind;
	const char *alias;             /* sluicectl get/delete's short name */
	const char *group;             /* "" for the core group */
	const char *const *versions;
	const struct field *spec;
	int (*post)(struct vctx *v, const struct ynode *spec);
	bool we;                       /* WorkloadEntry: sluice.io annotations */
	bool cluster;                  /* cluster-scoped: no namespace, spec optional */
	check_fn name;                 /* metadata.name beyond DNS-1123, if stricter */
};

static const char *const v_core[] = { "v1", NULL };
static const char *const v_net[] = { "v1", "v1beta1", "v1alpha3", NULL };
static const char *const v_sec[] = { "v1", "v1beta1", NULL };

/* A Namespace is recorded; what Kubernetes keeps in its spec is not read. */
static const struct field ns_spec_f[] = {
	{ .name = "finalizers", .type = F_ANY },
	END
};

static const struct kind kinds[] = {
	{ "Namespace", "ns", "", v_core, ns_spec_f, NULL, false, true, check_dns_label },
	{ "Service", "svc", "", v_core, svc_spec_f, svc_post, false, false, check_dns1035 },
	{ "ServiceEntry", "se", "networking.istio.io", v_net, se_spec_f, se_post, false, false, NULL },
	{ "WorkloadEntry", "we", "networking.istio.io", v_net, we_spec_f, NULL, true, false, NULL },
	{ "WorkloadGroup", "wg", "networking.istio.io", v_net, wg_spec_f, NULL, false, false, NULL },
	{ "DestinationRule", "dr", "networking.istio.io", v_net, dr_spec_f, NULL, false, false, NULL },
	{ "VirtualService", "vs", "networking.istio.io", v_net, vs_spec_f, vs_post, false, false, NULL },
	{ "AuthorizationPolicy", "ap", "security.istio.io", v_sec, ap_spec_f, ap_post, false, false, NULL },
	{ "PeerAuthentication", "pa", "security.istio.io", v_sec, pa_spec_f, pa_post, false, false, NULL },
	{}
};

/* The kinds' names in the table's order, ", " between, made once from
 * kinds[] (test_config checks it whole: a kind added must fit list[]). */
const char *sl_kind_list(void)
{
	static char list[256];

	if (!list[0])
		for (const struct kind *k = kinds; k->kind; k++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 k == kinds ? "" : ", ", k->kind);
	return list;
}

const char *sl_kind_canon(const char *k)
{
	for (const struct kind *x = kinds; x->kind; x++) {
		size_t l = strlen(x->kind);
		bool y = x->kind[l - 1] == 'y';

		if (strcasecmp(k, x->kind) == 0 || strcasecmp(k, x->alias) == 0 ||
		    (strncasecmp(k, x->kind, l) == 0 && strcasecmp(k + l, "s") == 0) ||
		    (y && strncasecmp(k, x->kind, l - 1) == 0 && strcasecmp(k + l - 1, "ies") == 0))
			return x->kind;
	}
	return NULL;
}

bool sl_kind_cluster_scoped(const char *kind)
{
	for (const struct kind *x = kinds; x->kind; x++)
		if (!strcmp(x->kind, kind))
			return x->cluster;
	return false;
}

/* The API groups whose kinds are all the mesh's: an unknown kind there is
 * an error (a typo, or a kind sluice does not implement), never skipped. */
static bool mesh_group(const char *group)
{
	return !strcmp(group, "networking.istio.io") || !strcmp(group, "security.istio.io");
}

static const char *scalar_str(const struct ynode *n)
{
	return n && n->type == YN_SCALAR && yscalar_kind(n) == YS_STR ? n->str : NULL;
}

/* A document of another API (apps/v1 Deployment, v1 ConfigMap, a
 * Knative Service): one informational line, and the document is left out. */
static int skip_doc(struct vctx *v, const struct ynode *doc, const char *api, const char *kind)
{
	const struct ynode *meta = ymap_get(doc, "metadata");
	const char *ns = scalar_str(ymap_get(meta, "namespace")) ?: "default";
	const char *name = scalar_str(ymap_get(meta, "name")) ?: "(no name)";

	sl_diag_add(v->d, SL_DIAG_INFO, "%s:%d:%d: %s %s %s/%s: not a mesh kind, ignored", v->file,
		    doc->line, doc->col, SL_CLIP(api), SL_CLIP(kind), SL_CLIP(ns), SL_CLIP(name));
	return 1;
}

/* kind and apiVersion: which table; 1 for a document that is not the mesh's. */
static int find_kind(struct vctx *v, const struct ynode *doc, const struct kind **out)
{
	const struct ynode *kn = ymap_get(doc, "kind"), *av = ymap_get(doc, "apiVersion");
	const struct kind *k;
	char group[128] = "";
	const char *ver;

	if (!scalar_str(kn))
		return verr(v, kn ?: doc, "kind", kn ? "must be a string" : "required field missing");
	if (!scalar_str(av))
		return verr(v, av ?: doc, "apiVersion", av ? "must be a string" :
			    "required field missing");
	ver = strrchr(av->str, '/');
	if (ver)
		snprintf(group, sizeof(group), "%.*s", (int)(ver - av->str), av->str);
	ver = ver ? ver + 1 : av->str;
	for (k = kinds; k->kind && strcmp(k->kind, kn->str); k++)
		;
	if (!k->kind && mesh_group(group))
		return verr(v, kn, "kind", "unknown kind \"%s\" in %s (sluice reads: %s)",
			    SL_CLIP(kn->str), group, sl_kind_list());
	/* a kind of another group, or of the core group that sluice does not read */
	if (!k->kind || (strcmp(group, k->group) && !mesh_group(group) && *k->group == '\0'))
		return skip_doc(v, doc, av->str, kn->str);
	for (const char *const *x = k->versions; *x; x++)
		if (!strcmp(group, k->group) && !strcmp(*x, ver)) {
			*out = k;
			return 0;
		}
	return verr(v, av, "apiVersion", "\"%s\" is not an apiVersion of %s (%s%s%s)",
		    SL_CLIP(av->str), k->kind, k->group, *k->group ? "/" : "",
		    !strcmp(k->group, "security.istio.io") ? "v1 or v1beta1" :
		    *k->group ? "v1, v1beta1 or v1alpha3" : "v1");
}

int sl_validate_doc(const char *file, const struct ynode *doc, struct sl_diags *d,
		    const char **kind, const char **ns, const char **name)
{
	const struct field top[] = {
		{ .name = "apiVersion", .type = F_ANY }, { .name = "kind", .type = F_ANY },
		{ .name = "metadata", .type = F_OBJ, .sub = metadata_f, .req = true },
		{ .name = "spec", .type = F_OBJ, .req = true },
		{ .name = "status", .type = F_ANY },
		END
	};
	struct field topk[sizeof(top) / sizeof(top[0])];
	struct vctx v = { .file = file, .d = d };
	const struct ynode *meta, *x, *spec;
	const struct kind *k = NULL;
	int rc;

	if (doc->type != YN_MAP)
		return verr(&v, doc, "", "a document must be a mapping (apiVersion, kind, "
			    "metadata, spec)");
	rc = find_kind(&v, doc, &k);
	if (rc)
		return rc;
	/* the resource's identity first, so that later messages can name it */
	meta = ymap_get(doc, "metadata");
	x = ymap_get(meta, "name");
	if (scalar_str(x)) {
		v.kind = k->kind;
		v.name = x->str;
		v.ns = k->cluster ? "" : scalar_str(ymap_get(meta, "namespace")) ?: "default";
	}
	memcpy(topk, top, sizeof(top));
	topk[3].sub = k->spec;
	topk[3].req = !k->cluster;
	rc = walk_obj(&v, doc, "", topk);
	spec = ymap_get(doc, "spec");
	/* cross-field checks run on a spec whose fields have the right types */
	if (!rc && k->post)
		rc = k->post(&v, spec);
	if (!rc && k->we)
		rc = we_annotations(&v, doc);
	if (!rc && k->name)
		rc = k->name(&v, x, "metadata.name");
	if (rc || !v.name)
		return -EINVAL;
	*kind = k->kind;
	*ns = v.ns;
	*name = v.name;
	return 0;
}
