// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Traffic policy from config to snapshot: DestinationRule loadBalancer,
 * connectionPool.tcp.maxConnections, outlierDetection (with Istio's
 * defaults and the subset/port precedence) and Service sessionAffinity as
 * the snapshot's "traffic"; the snapshot parser's checks of it; a VIP
 * whose destinations disagree on their policy refused with the field.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lib/compile/compile.h"
#include "lib/config/config_check.h"
#include "lib/node/snapshot.h"

#define WL(n, ip, ver) \
	"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: " n "\n" \
	"  annotations: {sluice.io/node: n1, sluice.io/netns: /run/netns/" n ", sluice.io/interface: p" n "}\n" \
	"spec: {address: " ip ", labels: {app: web, version: " ver "}, serviceAccount: web}\n---\n"
#define SVC(extra) \
	"apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.10\n" \
	"  selector: {app: web}\n  ports: [{name: web, port: 80, targetPort: 8080}, {name: dns, port: 53, targetPort: 53, protocol: UDP}]\n" \
	extra "---\n" WL("w1", "10.1.0.1", "v1") WL("w2", "10.1.0.2", "v2")
#define DR(body) "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web}\n" \
	"spec:\n  host: web\n" body "---\n"
#define VS_SPLIT "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\n" \
	"spec:\n  hosts: [web]\n  tcp:\n  - match: [{port: 80}]\n    route:\n" \
	"    - {destination: {host: web, subset: v1}, weight: 90}\n" \
	"    - {destination: {host: web, subset: v2}, weight: 10}\n---\n"
#define SUBSETS(v2extra) "  subsets:\n  - {name: v1, labels: {version: v1}}\n" \
	"  - {name: v2, labels: {version: v2}" v2extra "}\n"

/* Compile for n1; the snapshot, or NULL with the messages in *msgs. */
static json_t *compile(const char *yaml, char **msgs)
{
	struct sl_config *c = sl_config_new();
	struct sl_ids *ids = sl_ids_new();
	struct sl_diags d = {};
	json_t *snap = NULL;
	size_t len = 0;
	FILE *f;

	sl_config_parse(c, "t.yaml", yaml, strlen(yaml), &d);
	if (!d.nerrors)
		sl_config_check(c, &d);
	if (!d.nerrors)
		snap = sl_compile_node(c, ids, "cluster.local", "n1", 1, &d);
	f = open_memstream(msgs, &len);
	sl_diags_print(&d, f);
	fclose(f);
	sl_diags_free(&d);
	sl_ids_free(ids);
	sl_config_free(c);
	return snap;
}

/* The "traffic" of the service at VIP port `port`, as compact JSON ("null"
 * if it has none). */
static char *traffic_of(json_t *snap, int port)
{
	json_t *s;
	size_t i;

	json_array_foreach(json_object_get(snap, "services"), i, s)
		if (json_integer_value(json_object_get(s, "port")) == port)
			return json_dumps(json_object_get(s, "traffic") ?: json_null(),
					  JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	return NULL;
}

Test(traffic, destination_rule_and_service_affinity_with_defaults)
{
	char *msgs = NULL, *t;
	json_t *snap = compile(SVC("  sessionAffinity: ClientIP\n")
		DR("  trafficPolicy:\n    loadBalancer: {simple: LEAST_CONN}\n"
		   "    connectionPool: {tcp: {maxConnections: 7}}\n"
		   "    outlierDetection: {consecutiveGatewayErrors: 2, baseEjectionTime: 1m30s}\n"), &msgs);

	cr_assert_not_null(snap, "%s", msgs);
	t = traffic_of(snap, 80);
	/* gateway 2 beats the 5xx default 5; interval 10 s and 10% are Istio's defaults */
	cr_assert_str_eq(t, "{\"affinity_timeout_s\":10800,\"lb\":\"LEAST_REQUEST\",\"max_connections\":7,"
			 "\"outlier\":{\"base_ejection_ms\":90000,\"consecutive_errors\":2,"
			 "\"interval_ms\":10000,\"max_ejection_percent\":10}}");
	free(t);
	/* UDP: no connect failures to detect; the pool and affinity apply */
	t = traffic_of(snap, 53);
	cr_assert_str_eq(t, "{\"affinity_timeout_s\":10800,\"lb\":\"LEAST_REQUEST\",\"max_connections\":7}");
	free(t);
	json_decref(snap);
	free(msgs);
}

Test(traffic, no_policy_no_traffic_and_source_ip_hash)
{
	char *msgs = NULL, *t;
	json_t *snap = compile(SVC(""), &msgs);

	cr_assert_not_null(snap, "%s", msgs);
	t = traffic_of(snap, 80);
	cr_assert_str_eq(t, "null");
	free(t);
	json_decref(snap);
	free(msgs);
	snap = compile(SVC("") DR("  trafficPolicy:\n    loadBalancer: {consistentHash: {useSourceIp: true}}\n"),
		       &msgs);
	cr_assert_not_null(snap, "%s", msgs);
	t = traffic_of(snap, 80);
	cr_assert_str_eq(t, "{\"lb\":\"SOURCE_HASH\"}");
	free(t);
	json_decref(snap);
	free(msgs);
}

Test(traffic, port_level_settings_and_subsets_take_precedence)
{
	char *msgs = NULL, *t;
	json_t *snap = compile(SVC("") DR(
		"  trafficPolicy:\n    connectionPool: {tcp: {maxConnections: 7}}\n"
		"    portLevelSettings:\n    - {port: {number: 80}, connectionPool: {tcp: {maxConnections: 3}}}\n"
		SUBSETS(", trafficPolicy: {connectionPool: {tcp: {maxConnections: 3}}}")) VS_SPLIT, &msgs);

	/* v1 gets 3 from the port's entry, v2 from its own: one policy */
	cr_assert_not_null(snap, "%s", msgs);
	t = traffic_of(snap, 80);
	cr_assert_str_eq(t, "{\"max_connections\":3}");
	free(t);
	json_decref(snap);
	free(msgs);
}

Test(traffic, destinations_with_different_policies_are_refused)
{
	char *msgs = NULL;
	json_t *snap = compile(SVC("") DR(
		"  trafficPolicy:\n    connectionPool: {tcp: {maxConnections: 7}}\n"
		SUBSETS(", trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}")) VS_SPLIT, &msgs);

	cr_assert_null(snap);
	cr_assert(strstr(msgs, "VirtualService default/web: spec.tcp.route[1].destination: its traffic "
			 "policy"), "%s", msgs);
	free(msgs);
}

Test(traffic, l7_hash_keys_are_refused_with_the_field)
{
	char *msgs = NULL;
	json_t *snap = compile(SVC("") DR("  trafficPolicy:\n    loadBalancer: {consistentHash: "
					   "{httpHeaderName: x-user}}\n"), &msgs);

	cr_assert_null(snap);
	cr_assert(strstr(msgs, "t.yaml:29:37: DestinationRule default/web: spec.trafficPolicy."
			 "loadBalancer.consistentHash.httpHeaderName:"), "%s", msgs);
	free(msgs);
}

static int parse(const char *traffic, char *err, size_t len)
{
	char text[1024];
	struct snapshot s;
	int rc;

	snprintf(text, sizeof(text), "{\"services\": [{\"name\": \"w\", \"vip\": \"10.96.0.1\", "
		 "\"port\": 80, \"backends\": [{\"address\": \"10.1.0.1\", \"port\": 80}], "
		 "\"traffic\": %s}]}", traffic);
	rc = snapshot_parse(text, strlen(text), "s.json", &s, err, len);
	if (!rc)
		snapshot_free(&s);
	return rc;
}

Test(traffic, snapshot_parse)
{
	char text[512], err[256];
	struct snapshot s;

	snprintf(text, sizeof(text), "{\"services\": [{\"name\": \"w\", \"vip\": \"10.96.0.1\", "
		 "\"port\": 80, \"backends\": [{\"address\": \"10.1.0.1\", \"port\": 80}], "
		 "\"traffic\": {\"lb\": \"ROUND_ROBIN\", \"max_connections\": 4, \"affinity_timeout_s\": 9, "
		 "\"outlier\": {\"consecutive_errors\": 2, \"min_health_percent\": 50}}}]}");
	cr_assert_eq(snapshot_parse(text, strlen(text), "s.json", &s, err, sizeof(err)), 0, "%s", err);
	cr_assert(s.services[0].has_traffic);
	cr_assert_eq(s.services[0].traffic.lb, SL_LB_ROUND_ROBIN);
	cr_assert_eq(s.services[0].traffic.max_conns, 4);
	cr_assert_eq(s.services[0].traffic.affinity_ns, 9000000000ull);
	cr_assert_eq(s.services[0].traffic.od_consecutive, 2);
	cr_assert_eq(s.services[0].traffic.od_interval_ns, 10000000000ull);
	cr_assert_eq(s.services[0].traffic.od_base_ns, 30000000000ull);
	cr_assert_eq(s.services[0].traffic.od_max_ns, SL_OD_MAX_EJECT_NS);
	cr_assert_eq(s.services[0].traffic.od_max_pct, 10);
	cr_assert_eq(s.services[0].traffic.od_min_health, 50);
	snapshot_free(&s);

	cr_assert_neq(parse("{\"lb\": \"MAGLEV\"}", err, sizeof(err)), 0);
	cr_assert_str_eq(err, "s.json: services[0].traffic.lb: \"MAGLEV\" is not RANDOM, ROUND_ROBIN, "
			 "LEAST_REQUEST or SOURCE_HASH");
	cr_assert_neq(parse("{\"outlier\": {}}", err, sizeof(err)), 0);
	cr_assert_str_eq(err, "s.json: services[0].traffic.outlier.consecutive_errors: missing required field");
	cr_assert_neq(parse("{\"outlier\": {\"consecutive_errors\": 1, \"max_ejection_percent\": 101}}",
			    err, sizeof(err)), 0);
	cr_assert(strstr(err, "max_ejection_percent: 101 is out of range 0..100"), "%s", err);
	cr_assert_neq(parse("{\"pool\": 1}", err, sizeof(err)), 0);
	cr_assert_str_eq(err, "s.json: services[0].traffic.pool: unknown field");
}
