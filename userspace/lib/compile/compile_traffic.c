// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A destination's traffic policy as the snapshot's "traffic" object
 * (docs/snapshot.md): DestinationRule loadBalancer, connectionPool.tcp.
 * maxConnections and outlierDetection, and a Kubernetes Service's
 * sessionAffinity. Istio's precedence: the host's trafficPolicy, its
 * portLevelSettings entry for the port, the subset's trafficPolicy, the
 * subset's portLevelSettings entry; each of loadBalancer, connectionPool
 * and outlierDetection is taken whole from the most specific level that
 * sets it. What each field becomes is in docs/config.md.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/compile/compile_traffic.h"

/* The trafficPolicy's part `key` for `port`: its portLevelSettings entry
 * for the port if that sets it, else the policy's own (NULL: neither). */
static const json_t *part(const json_t *tp, const char *key, long port)
{
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(tp, "portLevelSettings"), i, e)
		if (json_integer_value(json_object_get(json_object_get(e, "port"), "number")) == port &&
		    json_object_get(e, key))
			return json_object_get(e, key);
	return json_object_get(tp, key);
}

/* A duration the schema accepted ("10s", "1m30s", "1.5s", "500ms") in ms. */
static long long dur_ms(const json_t *j, long long dflt)
{
	const char *s = json_string_value(j);
	double total = 0;

	if (!s)
		return dflt;
	while (*s) {
		char *end;
		double v = strtod(s, &end);

		s = end;
		if (!strncmp(s, "ms", 2))
			total += v, s += 2;
		else if (!strncmp(s, "us", 2))
			total += v / 1e3, s += 2;
		else if (!strncmp(s, "ns", 2))
			total += v / 1e6, s += 2;
		else if (*s == 's')
			total += v * 1e3, s++;
		else if (*s == 'm')
			total += v * 60e3, s++;
		else if (*s == 'h')
			total += v * 3600e3, s++;
		else
			return dflt;
	}
	return total < 1 ? 1 : (long long)total;
}

static long long int_or(const json_t *o, const char *key, long long dflt)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/*
 * Connect failures are what Envoy calls local-origin failures; with
 * splitExternalLocalOriginErrors false (the default) they count as 5xx
 * (and gateway) errors, so the smallest enabled threshold of
 * consecutive5xxErrors (default 5, consecutiveErrors is its old name) and
 * consecutiveGatewayErrors ejects; split, consecutiveLocalOriginFailures
 * (default 5) does. 0: no detector is on.
 */
static long long od_threshold(const json_t *od)
{
	const json_t *split = json_object_get(od, "splitExternalLocalOriginErrors");
	long long x, g;

	if (json_is_true(split))
		return int_or(od, "consecutiveLocalOriginFailures", 5);
	x = int_or(od, "consecutive5xxErrors", int_or(od, "consecutiveErrors", 5));
	g = int_or(od, "consecutiveGatewayErrors", 0);
	if (x && g)
		return x < g ? x : g;
	return x ?: g;
}

json_t *sl_compile_traffic(const struct sl_cctx *x, const struct sl_svc *s, const char *subset,
			   long port, uint8_t proto)
{
	const struct sl_resource *dr = s->dr;
	const json_t *spec = json_object_get(sl_resource_json(dr), "spec");
	const json_t *tp = json_object_get(spec, "trafficPolicy");
	const json_t *sp = subset ? json_object_get(sl_dr_subset(dr, subset), "trafficPolicy") : NULL;
	const json_t *lb, *pool, *od, *svc_spec, *hash;
	const char *simple, *aff;
	json_t *t = json_object();

	if (!t)
		return NULL;
	lb = part(sp, "loadBalancer", port) ?: part(tp, "loadBalancer", port);
	pool = part(sp, "connectionPool", port) ?: part(tp, "connectionPool", port);
	od = part(sp, "outlierDetection", port) ?: part(tp, "outlierDetection", port);

	simple = json_string_value(json_object_get(lb, "simple"));
	hash = json_object_get(lb, "consistentHash");
	if (json_is_true(json_object_get(hash, "useSourceIp")))
		json_object_set_new(t, "lb", json_string("SOURCE_HASH"));
	else if (simple && !strcmp(simple, "ROUND_ROBIN"))
		json_object_set_new(t, "lb", json_string("ROUND_ROBIN"));
	else if (simple && (!strcmp(simple, "LEAST_REQUEST") || !strcmp(simple, "LEAST_CONN")))
		json_object_set_new(t, "lb", json_string("LEAST_REQUEST"));

	if (json_object_get(json_object_get(pool, "tcp"), "maxConnections"))
		json_object_set_new(t, "max_connections", json_integer(json_integer_value(
			json_object_get(json_object_get(pool, "tcp"), "maxConnections"))));

	/* connect failures are a TCP signal: nothing to detect for UDP */
	if (od && proto == 6 && od_threshold(od) > 0) {
		json_t *o = json_pack("{s:I, s:I, s:I, s:I}",
			"consecutive_errors", (json_int_t)od_threshold(od),
			"interval_ms", (json_int_t)dur_ms(json_object_get(od, "interval"), 10000),
			"base_ejection_ms", (json_int_t)dur_ms(json_object_get(od, "baseEjectionTime"), 30000),
			"max_ejection_percent", (json_int_t)int_or(od, "maxEjectionPercent", 10));

		if (o && int_or(od, "minHealthPercent", 0))
			json_object_set_new(o, "min_health_percent",
					    json_integer(int_or(od, "minHealthPercent", 0)));
		json_object_set_new(t, "outlier", o);
	}

	/* Kubernetes Service: sessionAffinity ClientIP, 10800 s by default */
	svc_spec = s->entry ? NULL : json_object_get(sl_resource_json(s->r), "spec");
	aff = json_string_value(json_object_get(svc_spec, "sessionAffinity"));
	if (aff && !strcmp(aff, "ClientIP"))
		json_object_set_new(t, "affinity_timeout_s", json_integer(int_or(json_object_get(
			json_object_get(svc_spec, "sessionAffinityConfig"), "clientIP"),
			"timeoutSeconds", 10800)));

	if (!json_object_size(t)) {
		json_decref(t);
		return json_null();
	}
	return t;
}
