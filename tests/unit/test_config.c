// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The config layer on real Istio-format YAML: every kind parses, and every
 * error class is refused with FILE:LINE:COLUMN, the resource and the field.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "lib/config/config.h"
#include "lib/config/config_check.h"
#include "lib/config/config_model.h"
#include "lib/config/config_yaml.h"
#include "lib/core/jsonw.h"

#define EXAMPLE "deploy/examples/mesh.yaml"

static int parse(struct sl_config *c, const char *yaml, struct sl_diags *d)
{
	return sl_config_parse(c, "t.yaml", yaml, strlen(yaml), d);
}

static bool has_diag(const struct sl_diags *d, const char *want, enum sl_diag_level level)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].level == level && strstr(d->v[i].msg, want))
			return true;
	return false;
}

static char *all_diags(const struct sl_diags *d)
{
	static char buf[8192];

	buf[0] = '\0';
	for (size_t i = 0; i < d->n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s\n", d->v[i].msg);
	return buf;
}

Test(config, example_mesh_is_valid)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};

	cr_assert_eq(sl_config_parse_file(c, EXAMPLE, &d), 0, "%s", all_diags(&d));
	cr_assert_eq(sl_config_check(c, &d), 0, "%s", all_diags(&d));
	cr_assert_eq(d.nwarnings, 0, "%s", all_diags(&d));
	cr_assert_eq(sl_config_count(c), 15);
	cr_assert_not_null(sl_config_find(c, "workloadentry", "shop", "api-v1"));
	cr_assert_str_eq(sl_resource_kind(sl_config_find(c, "AuthorizationPolicy", "istio-system",
							 "no-admin")), "AuthorizationPolicy");
	sl_diags_free(&d);
	sl_config_free(c);
}

static const char every_kind[] =
	"apiVersion: v1\n"
	"kind: Service\n"
	"metadata: {name: web}\n"
	"spec:\n"
	"  clusterIP: 10.96.0.10\n"
	"  selector: {app: web}\n"
	"  ports: [{port: 80, targetPort: 8080, protocol: TCP}]\n"
	"---\n"
	"apiVersion: networking.istio.io/v1beta1\n"
	"kind: ServiceEntry\n"
	"metadata: {name: ext, namespace: default}\n"
	"spec:\n"
	"  hosts: [ext.example.com]\n"
	"  addresses: [10.97.0.1]\n"
	"  ports: [{number: 443, name: tls, protocol: TLS}]\n"
	"  resolution: STATIC\n"
	"  location: MESH_EXTERNAL\n"
	"  endpoints: [{address: 192.0.2.1, ports: {tls: 8443}, weight: 2}]\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: WorkloadEntry\n"
	"metadata:\n"
	"  name: web-1\n"
	"  annotations: {sluice.io/node: n1, sluice.io/netns: /run/netns/w1, sluice.io/interface: p1}\n"
	"spec: {address: 10.244.1.2, labels: {app: web}, serviceAccount: web, network: n, locality: r/z}\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: DestinationRule\n"
	"metadata: {name: web}\n"
	"spec:\n"
	"  host: web\n"
	"  trafficPolicy:\n"
	"    loadBalancer: {simple: ROUND_ROBIN}\n"
	"    connectionPool: {tcp: {maxConnections: 100}}\n"
	"    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}\n"
	"  subsets: [{name: v1, labels: {app: web}}]\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: VirtualService\n"
	"metadata: {name: web}\n"
	"spec:\n"
	"  hosts: [web]\n"
	"  tcp:\n"
	"  - match: [{port: 80}]\n"
	"    route: [{destination: {host: web, subset: v1, port: {number: 80}}}]\n"
	"---\n"
	"apiVersion: security.istio.io/v1beta1\n"
	"kind: AuthorizationPolicy\n"
	"metadata: {name: web}\n"
	"spec:\n"
	"  selector: {matchLabels: {app: web}}\n"
	"  action: DENY\n"
	"  rules:\n"
	"  - from: [{source: {notNamespaces: [default], ipBlocks: [10.0.0.0/8]}}]\n"
	"    to: [{operation: {notPorts: [\"22\"], ports: [22, \"80\"]}}]\n"
	"    when: [{key: source.principal, values: [\"*/sa/admin\"]}]\n"
	"---\n"
	"apiVersion: security.istio.io/v1\n"
	"kind: PeerAuthentication\n"
	"metadata: {name: web}\n"
	"spec:\n"
	"  selector: {matchLabels: {app: web}}\n"
	"  mtls: {mode: STRICT}\n"
	"  portLevelMtls: {\"8080\": {mode: DISABLE}}\n";

Test(config, every_kind_parses_and_warns_about_what_it_does_not_enforce)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	const json_t *j;

	cr_assert_eq(parse(c, every_kind, &d), 0, "%s", all_diags(&d));
	cr_assert_eq(sl_config_count(c), 7);
	cr_assert_eq(sl_config_check(c, &d), 0, "%s", all_diags(&d));
	/* maxConnections and outlierDetection are enforced at connect(): no warning */
	cr_assert_not(has_diag(&d, "maxConnections", SL_DIAG_WARNING), "%s", all_diags(&d));
	cr_assert_not(has_diag(&d, "outlierDetection", SL_DIAG_WARNING), "%s", all_diags(&d));
	/* stored JSON: typed scalars, explicit namespace */
	j = sl_resource_json(sl_config_find(c, "Service", "default", "web"));
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "metadata"),
							   "namespace")), "default");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(
		json_object_get(j, "spec"), "ports"), 0), "targetPort")), 8080);
	sl_diags_free(&d);
	sl_config_free(c);
}

Test(config, storage_round_trip_and_yaml)
{
	struct sl_config *c = sl_config_new(), *c2 = sl_config_new(), *c3;
	struct sl_diags d = {};
	json_t *docs, *docs2;
	const json_t *se;
	char *yaml;

	cr_assert_eq(parse(c, every_kind, &d), 0, "%s", all_diags(&d));
	docs = sl_config_to_json(c);
	cr_assert_eq(sl_config_from_json(c2, "state.json", docs, &d), 0, "%s", all_diags(&d));
	docs2 = sl_config_to_json(c2);
	cr_assert(json_equal(docs, docs2));
	/* get -o yaml reads back as the same document */
	se = sl_resource_json(sl_config_find(c, "ServiceEntry", "default", "ext"));
	yaml = sl_json_to_yaml(se);
	cr_assert_not_null(yaml);
	c3 = sl_config_dup(c);
	cr_assert_eq(parse(c3, yaml, &d), 0, "%s\n%s", all_diags(&d), yaml);
	cr_assert_eq(sl_config_count(c3), 7);
	cr_assert(json_equal(sl_resource_json(sl_config_find(c3, "ServiceEntry", "default", "ext")),
			     se), "%s", yaml);
	cr_assert_eq(sl_config_remove(c3, "serviceentry", "default", "ext"), 0);
	cr_assert_eq(sl_config_remove(c3, "serviceentry", "default", "ext"), -ENOENT);
	cr_assert_eq(sl_config_count(c3), 6);
	cr_assert_eq(sl_config_count(c), 7, "dup shares nothing mutable");
	free(yaml);
	json_decref(docs);
	json_decref(docs2);
	sl_diags_free(&d);
	sl_config_free(c);
	sl_config_free(c2);
	sl_config_free(c3);
}

Test(config, storage_errors_name_the_stored_position)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	json_t *docs = json_loads("[{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": "
				  "{\"name\": \"a\"}, \"spec\": {\"clusterIP\": \"10.96.0.1\", "
				  "\"ports\": [{\"port\": 0}]}}]", 0, NULL);

	cr_assert_eq(sl_config_from_json(c, "state.json", docs, &d), -EINVAL);
	/* the file a control plane writes with SL_CONFIG_JSON_FLAGS */
	cr_assert(has_diag(&d, "state.json:12:19: Service default/a: spec.ports[0].port: 0 is "
			   "out of range 1..65535", SL_DIAG_ERROR), "%s", all_diags(&d));
	cr_assert_eq(sl_config_count(c), 0);
	json_decref(docs);
	sl_diags_free(&d);
	sl_config_free(c);
}

Test(config, apply_replaces_and_a_bad_document_adds_nothing)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	const char *v1 = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
			 "spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n";
	const char *v2 = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
			 "spec: {clusterIP: 10.96.0.2, ports: [{port: 80}]}\n---\n"
			 "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n"
			 "spec: {clusterIP: 10.96.0.3, ports: [{port: 0}]}\n";
	const char *v3 = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
			 "spec: {clusterIP: 10.96.0.2, ports: [{port: 80}]}\n";
	const json_t *spec;

	cr_assert_eq(parse(c, v1, &d), 0);
	cr_assert_eq(parse(c, v2, &d), -EINVAL);
	cr_assert_eq(sl_config_count(c), 1);
	spec = json_object_get(sl_resource_json(sl_config_at(c, 0)), "spec");
	cr_assert_str_eq(json_string_value(json_object_get(spec, "clusterIP")), "10.96.0.1");
	cr_assert_eq(parse(c, v3, &d), 0);
	cr_assert_eq(sl_config_count(c), 1);
	spec = json_object_get(sl_resource_json(sl_config_at(c, 0)), "spec");
	cr_assert_str_eq(json_string_value(json_object_get(spec, "clusterIP")), "10.96.0.2");
	sl_diags_free(&d);
	sl_config_free(c);
}

Test(config, analyze_json_output_and_printing)
{
	struct sl_diags d = {};
	json_t *j;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct sl_config *c = sl_config_new();

	parse(c, "apiVersion: networking.istio.io/v1\nkind: Nope\n", &d);
	j = sl_diags_json(&d);
	cr_assert_eq(json_array_size(j), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "level")), "error");
	sl_diags_print(&d, f);
	fclose(f);
	cr_assert(strstr(text, "error: t.yaml:2:7: kind: unknown kind \"Nope\" in networking.istio.io"),
		  "%s", text);
	free(text);
	json_decref(j);
	sl_diags_free(&d);
	sl_config_free(c);
}

/* ---- every error class, with its position and field ---------------------------- */

struct bad {
	char yaml[700];
	char want[240];   /* substring of one error */
};

#define SVC_HEAD "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n"
#define AP_HEAD "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n" \
	"metadata: {name: p, namespace: shop}\nspec:\n"
#define VS_HEAD "apiVersion: networking.istio.io/v1\nkind: VirtualService\n" \
	"metadata: {name: v, namespace: shop}\nspec:\n"
#define RULE_FROM(src) AP_HEAD "  rules:\n  - from:\n    - source:\n        " src "\n"

ParameterizedTestParameters(config, refused)
{
	static struct bad cases[] = {
		/* YAML itself */
		{ "a: [1, 2\n", "t.yaml:2:1: YAML syntax:" },
		{ "kind: Service\nkind: Service\n", "t.yaml:2:1: duplicate key \"kind\" (first at line 1)" },
		{ "a: &x 1\nb: *x\n", "t.yaml:2:4: YAML aliases are not supported" },
		{ "- 1\n", "t.yaml:1:1: a document must be a mapping" },
		/* kind and apiVersion */
		{ "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {}\n",
		  "t.yaml:2:7: kind: unknown kind \"Gateway\" in networking.istio.io (sluice reads: "
		  "Namespace, Service, ServiceEntry, WorkloadEntry, WorkloadGroup, DestinationRule, "
		  "VirtualService, AuthorizationPolicy, PeerAuthentication)" },
		{ "apiVersion: security.istio.io/v1\nkind: AuthorisationPolicy\nmetadata: {name: g}\n"
		  "spec: {}\n",
		  "t.yaml:2:7: kind: unknown kind \"AuthorisationPolicy\" in security.istio.io" },
		{ "apiVersion: apps/v1\nmetadata: {name: web}\nspec: {}\n",
		  "t.yaml:1:1: kind: required field missing" },
		{ "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
		  "spec: {hosts: [a]}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: w}\nspec: {hosts: 7}\n",
		  "t.yaml:9:15: VirtualService default/w: spec.hosts: must be" },
		{ "apiVersion: networking.istio.io/v2\nkind: ServiceEntry\nmetadata: {name: g}\nspec: {}\n",
		  "t.yaml:1:13: apiVersion: \"networking.istio.io/v2\" is not an apiVersion of ServiceEntry" },
		{ "apiVersion: v1\nmetadata: {name: g}\n", "t.yaml:1:1: kind: required field missing" },
		/* unknown field, wrong type, missing field */
		{ SVC_HEAD "  clusterIP: 10.96.0.1\n  ports: [{port: 80, prot: TCP}]\n",
		  "t.yaml:6:22: Service shop/web: spec.ports[0].prot: unknown field (known: name, port," },
		{ SVC_HEAD "  clusterIP: 10.96.0.1\n  ports: [{port: \"80\"}]\n",
		  "t.yaml:6:18: Service shop/web: spec.ports[0].port: must be an integer" },
		{ SVC_HEAD "  clusterIP: 10.96.0.1\n  ports: {port: 80}\n",
		  "t.yaml:6:10: Service shop/web: spec.ports: must be a list" },
		{ SVC_HEAD "  ports: [{port: 80}]\n",
		  "t.yaml:5:3: Service shop/web: spec: clusterIP: required field missing" },
		{ "apiVersion: v1\nkind: Service\nmetadata: {namespace: shop}\nspec: {}\n",
		  "t.yaml:3:11: metadata: name: required field missing" },
		{ "apiVersion: v1\nkind: Service\nmetadata: {name: Web_1}\nspec: {}\n",
		  "t.yaml:3:18: Service default/Web_1: metadata.name: \"Web_1\" is not a DNS-1123 name" },
		/* bad ports, addresses and CIDRs */
		{ SVC_HEAD "  clusterIP: 10.96.0.1\n  ports: [{port: 70000}]\n",
		  "t.yaml:6:18: Service shop/web: spec.ports[0].port: 70000 is out of range 1..65535" },
		{ SVC_HEAD "  clusterIP: 10.96.0.300\n  ports: [{port: 80}]\n",
		  "t.yaml:5:14: Service shop/web: spec.clusterIP: \"10.96.0.300\" is not an IPv4 or IPv6 address" },
		{ SVC_HEAD "  clusterIP: 10.96.0.1\n  type: NodePort\n  ports: [{port: 80}]\n",
		  "t.yaml:6:9: Service shop/web: spec.type: \"NodePort\" is refused: only ClusterIP" },
		{ SVC_HEAD "  clusterIP: None\n  ports: [{port: 80}]\n",
		  "spec.clusterIP: headless services (None) are refused" },
		{ RULE_FROM("ipBlocks: [10.0.0.1/8]"),
		  "t.yaml:8:20: AuthorizationPolicy shop/p: spec.rules[0].from[0].source.ipBlocks[0]: "
		  "\"10.0.0.1/8\" is not an address or CIDR with zero host bits" },
		{ RULE_FROM("notIpBlocks: [10.0.0.0/33]"), "source.notIpBlocks[0]: \"10.0.0.0/33\" is not" },
		{ AP_HEAD "  rules:\n  - to:\n    - operation:\n        ports: [\"http\"]\n",
		  "t.yaml:8:17: AuthorizationPolicy shop/p: spec.rules[0].to[0].operation.ports[0]: "
		  "\"http\" is not a port" },
		/* principals */
		{ RULE_FROM("principals: [spiffe://cluster.local/ns/a/sa/b]"),
		  "t.yaml:8:22: AuthorizationPolicy shop/p: spec.rules[0].from[0].source.principals[0]: "
		  "\"spiffe://cluster.local/ns/a/sa/b\": write principals without \"spiffe://\"" },
		{ RULE_FROM("principals: [cluster.local/ns/a]"),
		  "source.principals[0]: \"cluster.local/ns/a\" is not a principal TRUST-DOMAIN/ns/NAMESPACE/sa/ACCOUNT" },
		{ RULE_FROM("notPrincipals: [cluster.local/*/sa/b]"),
		  "source.notPrincipals[0]: \"cluster.local/*/sa/b\": a principal may hold one '*', as its prefix or suffix" },
		/* L7 refused, with why */
		{ AP_HEAD "  rules:\n  - to:\n    - operation:\n        methods: [GET]\n",
		  "t.yaml:8:9: AuthorizationPolicy shop/p: spec.rules[0].to[0].operation.methods: methods "
		  "(HTTP methods) is an L7 attribute: an L4 data plane cannot enforce it, and an ALLOW "
		  "rule holding it would otherwise allow too much" },
		{ AP_HEAD "  rules:\n  - to:\n    - operation:\n        paths: [/admin]\n",
		  "spec.rules[0].to[0].operation.paths: paths (HTTP paths) is an L7 attribute" },
		{ AP_HEAD "  rules:\n  - to:\n    - operation:\n        hosts: [a.com]\n",
		  "spec.rules[0].to[0].operation.hosts: hosts (the HTTP Host header) is an L7 attribute" },
		{ RULE_FROM("requestPrincipals: [\"*\"]"),
		  "t.yaml:8:9: AuthorizationPolicy shop/p: spec.rules[0].from[0].source.requestPrincipals: "
		  "requestPrincipals (JWT identities) is an L7 attribute" },
		{ AP_HEAD "  rules:\n  - when:\n    - key: request.headers[x-user]\n      values: [a]\n",
		  "t.yaml:7:12: AuthorizationPolicy shop/p: spec.rules[0].when[0].key: "
		  "\"request.headers[x-user]\" is an L7 attribute" },
		{ AP_HEAD "  rules:\n  - when:\n    - key: source.ip\n      values: [nope]\n",
		  "t.yaml:8:16: AuthorizationPolicy shop/p: spec.rules[0].when[0].values[0]: \"nope\" is not" },
		{ AP_HEAD "  action: CUSTOM\n  provider: {name: x}\n",
		  "t.yaml:6:3: AuthorizationPolicy shop/p: spec.provider: provider goes with action CUSTOM" },
		{ AP_HEAD "  action: CUSTOM\n",
		  "t.yaml:5:11: AuthorizationPolicy shop/p: spec.action: CUSTOM is refused: it delegates" },
		{ AP_HEAD "  action: AUDIT\n", "spec.action: AUDIT is refused" },
		{ VS_HEAD "  hosts: [web]\n  http:\n  - route: [{destination: {host: web}}]\n",
		  "t.yaml:6:3: VirtualService shop/v: spec.http: an http route (matching on URIs, headers "
		  "or methods) is an L7 attribute" },
		{ VS_HEAD "  hosts: [web]\n  tls: []\n", "spec.tls: tls routes match the TLS SNI" },
		/* VirtualService weights */
		{ VS_HEAD "  hosts: [web]\n  tcp:\n  - route:\n    - destination: {host: a}\n"
		  "      weight: 60\n    - destination: {host: b}\n      weight: 30\n",
		  "t.yaml:8:5: VirtualService shop/v: spec.tcp[0].route: weights add up to 90, not 100" },
		{ VS_HEAD "  hosts: [web]\n  tcp:\n  - route:\n    - destination: {host: a, port: {number: 0}}\n",
		  "spec.tcp[0].route[0].destination.port.number: 0 is out of range" },
		/* PeerAuthentication */
		{ "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\n"
		  "spec:\n  mtls: {mode: STRICTER}\n",
		  "t.yaml:5:16: PeerAuthentication default/p: spec.mtls.mode: \"STRICTER\" is not one of "
		  "UNSET, DISABLE, PERMISSIVE, STRICT" },
		{ "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\n"
		  "spec:\n  portLevelMtls: {\"80\": {mode: DISABLE}}\n",
		  "t.yaml:5:18: PeerAuthentication default/p: spec.portLevelMtls: needs a selector" },
		/* DestinationRule */
		{ "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
		  "spec:\n  host: web\n  trafficPolicy:\n    loadBalancer: {simple: FASTEST}\n",
		  "t.yaml:7:28: DestinationRule default/d: spec.trafficPolicy.loadBalancer.simple: "
		  "\"FASTEST\" is not one of RANDOM, ROUND_ROBIN" },
		{ "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
		  "spec:\n  host: web\n  trafficPolicy:\n    connectionPool: {http: {http1MaxPendingRequests: 1}}\n",
		  "spec.trafficPolicy.connectionPool.http: connectionPool.http" },
		/* ServiceEntry */
		{ "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: e}\n"
		  "spec:\n  hosts: [a.com]\n  resolution: DNS\n",
		  "t.yaml:6:15: ServiceEntry default/e: spec.resolution: \"DNS\" is refused" },
		/* WorkloadEntry placement */
		{ "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
		  "metadata:\n  name: w\n  annotations: {sluice.io/node: n1}\nspec: {address: 10.0.0.1}\n",
		  "t.yaml:5:33: WorkloadEntry default/w: metadata.annotations.sluice.io/node: a workload "
		  "placed on a node needs sluice.io/netns and sluice.io/interface too" },
		{ "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
		  "metadata:\n  name: w\n  annotations: {sluice.io/nod: n1}\nspec: {address: 10.0.0.1}\n",
		  "metadata.annotations: unknown annotation \"sluice.io/nod\"" },
		{ "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w}\n"
		  "spec: {address: db.example.com}\n",
		  "t.yaml:4:17: WorkloadEntry default/w: spec.address: \"db.example.com\" is not an IPv4 or IPv6 address" },
		/* two documents, one name */
		{ SVC_HEAD "  clusterIP: 10.96.0.1\n  ports: [{port: 80}]\n---\n"
		  SVC_HEAD "  clusterIP: 10.96.0.2\n  ports: [{port: 80}]\n",
		  "t.yaml:8:1: Service shop/web: defined twice in this input" },
		/* a cluster-scoped resource is named without a namespace */
		{ "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
		  "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
		  "t.yaml:5:1: Namespace shop: defined twice in this input" },
		{ "apiVersion: v1\nkind: Namespace\nmetadata: {name: Shop}\n",
		  "t.yaml:3:18: Namespace Shop: metadata.name:" },
	};

	return cr_make_param_array(struct bad, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad *b, config, refused)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};

	cr_assert_eq(parse(c, b->yaml, &d), -EINVAL, "accepted:\n%s", b->yaml);
	cr_assert(has_diag(&d, b->want, SL_DIAG_ERROR), "no error with\n  %s\ngot:\n%s", b->want,
		  all_diags(&d));
	cr_assert_eq(sl_config_count(c), 0);
	sl_diags_free(&d);
	sl_config_free(c);
}

/* ---- cross-resource checks -------------------------------------------------------- */

struct xbad {
	char yaml[900];
	char want[240];
	bool warning;
};

#define WE(name, addr, labels, sa) "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n" \
	"metadata: {name: " name "}\nspec: {address: " addr ", labels: " labels \
	", serviceAccount: " sa "}\n---\n"

ParameterizedTestParameters(config, check)
{
	static struct xbad cases[] = {
		{ "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
		  "spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n---\n"
		  "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n"
		  "spec: {clusterIP: 10.96.0.1, ports: [{port: 81}]}\n",
		  "t.yaml:9:19: Service default/b: spec.clusterIP: 10.96.0.1 is also used by Service "
		  "default/a (spec.clusterIP): VIPs and workload addresses must not overlap", false },
		{ WE("w1", "10.0.0.1", "{app: a}", "a") WE("w2", "10.0.0.1", "{app: b}", "b"),
		  "t.yaml:9:17: WorkloadEntry default/w2: spec.address: 10.0.0.1 is also used by WorkloadEntry default/w1", false },
		{ WE("w1", "10.0.0.1", "{app: a}", "a")
		  "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
		  "spec: {clusterIP: 10.96.0.1, selector: {app: nope}, ports: [{port: 80}]}\n",
		  "t.yaml:9:40: Service default/a: spec.selector: selects no workload in namespace default",
		  true },
		{ WE("w1", "10.0.0.1", "{app: a}", "a")
		  "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\n"
		  "spec: {selector: {matchLabels: {app: b}}}\n",
		  "t.yaml:9:32: AuthorizationPolicy default/p: spec.selector.matchLabels: selects no workload",
		  true },
		{ WE("w1", "10.0.0.1", "{app: a, v: '1'}", "a") WE("w2", "10.0.0.2", "{app: a, v: '2'}", "a")
		  "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\n"
		  "spec: {selector: {matchLabels: {v: '1'}}}\n",
		  "t.yaml:14:18: AuthorizationPolicy default/p: spec.selector: selects WorkloadEntry "
		  "default/w1 but not default/w2, which share the identity default/sa/a", false },
		{ "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
		  "spec: {hosts: [nowhere], tcp: [{route: [{destination: {host: nowhere}}]}]}\n",
		  "t.yaml:4:16: VirtualService default/v: spec.hosts[0]: [IST0101] referenced host not "
		  "found: \"nowhere\" (nowhere.default.svc.cluster.local)", true },
		{ "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
		  "spec: {hosts: [nowhere], tcp: [{route: [{destination: {host: nowhere}}]}]}\n",
		  "t.yaml:4:62: VirtualService default/v: spec.tcp[0].route[0].destination.host: "
		  "[IST0101] referenced host not found: \"nowhere\"", true },
		{ "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
		  "spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n---\n"
		  "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
		  "spec:\n  hosts: [a]\n  tcp:\n  - route:\n    - destination: {host: a, port: {number: 81}}\n",
		  "t.yaml:13:45: VirtualService default/v: spec.tcp[0].route[0].destination.port.number: "
		  "[IST0101] referenced port not found: a.default.svc.cluster.local has no port 81", true },
		{ "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
		  "spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n---\n"
		  "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
		  "spec:\n  hosts: [a]\n  tcp:\n  - route:\n    - destination: {host: a, subset: v9}\n",
		  "t.yaml:13:38: VirtualService default/v: spec.tcp[0].route[0].destination.subset: "
		  "[IST0101] referenced subset not found: no DestinationRule for "
		  "a.default.svc.cluster.local defines subset \"v9\"", true },
		{ "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\n"
		  "spec: {host: ghost.example.com}\n",
		  "t.yaml:4:14: DestinationRule default/d: spec.host: [IST0101] referenced host not "
		  "found: \"ghost.example.com\"", true },
		{ "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: a}\n"
		  "spec: {mtls: {mode: STRICT}}\n---\n"
		  "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: b}\n"
		  "spec: {mtls: {mode: DISABLE}}\n",
		  "PeerAuthentication default/b: spec: namespace default has a namespace-wide "
		  "PeerAuthentication already (a)", false },
	};

	return cr_make_param_array(struct xbad, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct xbad *b, config, check)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};

	cr_assert_eq(parse(c, b->yaml, &d), 0, "%s", all_diags(&d));
	cr_assert_eq(sl_config_check(c, &d), b->warning ? 0 : -EINVAL, "%s", all_diags(&d));
	cr_assert(has_diag(&d, b->want, b->warning ? SL_DIAG_WARNING : SL_DIAG_ERROR),
		  "no %s with\n  %s\ngot:\n%s", b->warning ? "warning" : "error", b->want,
		  all_diags(&d));
	sl_diags_free(&d);
	sl_config_free(c);
}

/* Single-quoted values as YAML 1.2 reads them (PyYAML agrees): '' is one
 * quote, a line break folds to a space, a blank line is a newline, blanks
 * around breaks go. libfyaml 0.7.12 reads runs of '' wrong and leaks its
 * buffer for six or more; unit-asan sees no leak. */
Test(config, resource_ids)
{
	cr_assert_str_eq(SL_RES_ID("Service", "shop", "web"), "Service shop/web");
	cr_assert_str_eq(SL_RES_ID("Namespace", "", "shop"), "Namespace shop");
	cr_assert_str_eq(SL_RES_ID("Namespace", NULL, "shop"), "Namespace shop");
}

Test(config, single_quoted_values)
{
	static const char yaml[] =
		"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations:\n"
		"    a: 'it''s'\n"
		"    b: ''''''''''''''''''''''''''''''''''\n"
		"    c: 'x  \n      y'\n"
		"    d: '''''  '\n"
		"    e: 'p\n\n      q  \n       \n      r '''''''''''''' '\n"
		"spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}\n";
	static const char *const want[][2] = {
		{ "a", "it's" }, { "b", "''''''''''''''''" }, { "c", "x y" }, { "d", "''  " },
		{ "e", "p\nq\nr ''''''' " },
	};
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	const json_t *ann;

	cr_assert_eq(parse(c, yaml, &d), 0, "%s", all_diags(&d));
	ann = json_object_get(json_object_get(sl_resource_json(sl_config_find(c, "Service",
		"default", "web")), "metadata"), "annotations");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_str_eq(json_string_value(json_object_get(ann, want[i][0])), want[i][1],
				 "annotation %s", want[i][0]);
	sl_diags_free(&d);
	sl_config_free(c);
}

/* The stored form is written from the YAML tree without a JSON tree: it
 * must be the text jansson writes for the document (stored texts are
 * compared as text, against ones written by earlier versions too), with
 * status dropped and the namespace set in its place or added last. */
static void assert_stored(const char *yaml, const char *kind, const char *ns, const char *want)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	const struct sl_resource *r;
	const json_t *text;
	json_t *tree;
	char *again;

	cr_assert_eq(parse(c, yaml, &d), 0, "%s", all_diags(&d));
	r = sl_config_find(c, kind, ns, "web");
	text = sl_resource_stored(r);
	cr_assert_not_null(text);
	cr_assert_str_eq(json_string_value(text), want);
	tree = json_loads(json_string_value(text), 0, NULL);
	cr_assert_not_null(tree);
	again = json_dumps(tree, JSON_COMPACT | JSON_PRESERVE_ORDER);
	cr_assert_str_eq(again, want, "jansson writes the same text");
	free(again);
	json_decref(tree);
	/* the tree a reader gets while the YAML tree is kept is made from it,
	 * not from the text: the same document, members in the same order */
	again = json_dumps(sl_resource_json(r), JSON_COMPACT | JSON_PRESERVE_ORDER);
	cr_assert_str_eq(again, want, "the tree made from the YAML tree");
	free(again);
	sl_diags_free(&d);
	sl_config_free(c);
}

Test(config, stored_form_is_janssons_text)
{
	assert_stored("apiVersion: v1\nkind: Service\nmetadata:\n  namespace: shop\n  name: web\n"
		      "  annotations:\n    q: \"a\\\"b\\\\c\\td\\ne\\x01\\x1f\\u00e9\\U0001F600/\"\n"
		      "    n: '12'\nspec: {clusterIP: 10.96.0.1, ports: [{port: 80, name: http}]}\n"
		      "status: {loadBalancer: {}}\n", "Service", "shop",
		      "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"namespace\":\"shop\","
		      "\"name\":\"web\",\"annotations\":{\"q\":\"a\\\"b\\\\c\\td\\ne\\u0001\\u001F"
		      "\xc3\xa9\xf0\x9f\x98\x80/\",\"n\":\"12\"}},\"spec\":{\"clusterIP\":\"10.96.0.1\","
		      "\"ports\":[{\"port\":80,\"name\":\"http\"}]}}");
	/* no namespace given: the default one, added last */
	assert_stored("apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
		      "metadata: {name: web, labels: {a: b}}\n"
		      "spec:\n  host: web\n  trafficPolicy:\n    outlierDetection:\n"
		      "      consecutive5xxErrors: 5\n      interval: 1.5s\n      maxEjectionPercent: +50\n",
		      "DestinationRule", "default",
		      "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"DestinationRule\","
		      "\"metadata\":{\"name\":\"web\",\"labels\":{\"a\":\"b\"},\"namespace\":\"default\"},"
		      "\"spec\":{\"host\":\"web\",\"trafficPolicy\":{\"outlierDetection\":"
		      "{\"consecutive5xxErrors\":5,\"interval\":\"1.5s\",\"maxEjectionPercent\":50}}}}");
}

Test(config, yaml_scalars_as_json_text)
{
	static const struct { const char *yaml, *json; } cases[] = {
		{ "[1.5, 1e5, 1.0e-7, -0.0, .5, 2., 1e300, 123456789012345678]",
		  "[1.5,100000.0,9.9999999999999995e-8,-0.0,0.5,2.0,1.0000000000000001e300,"
		  "123456789012345678]" },
		{ "[~, null, true, False, 0x10, 007, -3, '5', \"x\"]",
		  "[null,null,true,false,\"0x10\",7,-3,\"5\",\"x\"]" },
		{ "{a: {b: [[], {}]}, c: \"\\b\\f\\r\\x7f\"}",
		  "{\"a\":{\"b\":[[],{}]},\"c\":\"\\b\\f\\r\x7f\"}" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sl_diags d = {};
		struct ydoc **docs = NULL;
		struct buf q = {};
		struct jsonw w = { .q = &q };
		json_t *tree;
		char *again;
		size_t n = 0;

		cr_assert_eq(yaml_parse_stream("t.yaml", cases[i].yaml, strlen(cases[i].yaml), &docs,
					       &n, &d), 0, "%s", all_diags(&d));
		cr_assert_eq(n, 1);
		ynode_write_json(docs[0]->root, &w);
		cr_assert_not(w.err);
		cr_assert_eq(q.len, strlen(cases[i].json), "%.*s", (int)q.len, (char *)q.d);
		cr_assert_arr_eq(q.d, cases[i].json, q.len, "%.*s", (int)q.len, (char *)q.d);
		tree = json_loadb((const char *)q.d, q.len, 0, NULL);
		again = json_dumps(tree, JSON_COMPACT | JSON_PRESERVE_ORDER);
		cr_assert_str_eq(again, cases[i].json, "jansson writes the same text");
		free(again);
		json_decref(tree);
		buf_free(&q);
		ydoc_unref(docs[0]);
		free(docs);
		sl_diags_free(&d);
	}
}

/* Positions come from the text a resource was parsed from, kept until the
 * config forgets its sources (copies too: they share resources); then a
 * diagnostic names the resource and field only. */
Test(config, forgotten_sources_give_no_position)
{
	static const char yaml[] =
		"apiVersion: networking.istio.io/v1\n"
		"kind: ServiceEntry\n"
		"metadata: {name: db}\n"
		"spec:\n"
		"  hosts: [db.example.com]\n";
	struct sl_config *c = sl_config_new(), *copy;
	struct sl_diags d = {};

	cr_assert_eq(parse(c, yaml, &d), 0, "%s", all_diags(&d));
	copy = sl_config_dup(c);
	cr_assert_not_null(copy);
	sl_diag_res(&d, SL_DIAG_WARNING, sl_config_at(c, 0), "spec.hosts", "x");
	cr_assert(has_diag(&d, "t.yaml:5:", SL_DIAG_WARNING), "%s", all_diags(&d));
	sl_diags_free(&d);

	sl_config_trim(c);
	sl_diag_res(&d, SL_DIAG_WARNING, sl_config_at(copy, 0), "spec.hosts", "x");
	cr_assert_eq(d.n, 1);
	cr_assert_str_eq(d.v[0].msg, "ServiceEntry default/db: spec.hosts: x");
	sl_diags_free(&d);
	sl_config_free(copy);
	sl_config_free(c);
}

/* A config at rest keeps each document as text. A trim lets go of the
 * tree of every resource with a parsed form (a model's memo) and keeps the
 * others'; the parsed form stays whole (labels, names, selectors it holds),
 * and the tree read again equals the document. Run under ASan (unit-asan),
 * a memo pointing into a freed tree fails here. */
Test(config, a_trim_keeps_parsed_forms_and_texts)
{
	static const char yaml[] =
		"apiVersion: v1\n"
		"kind: Service\n"
		"metadata: {name: web}\n"
		"spec:\n"
		"  clusterIP: 10.96.0.10\n"
		"  selector: {app: web}\n"
		"  ports: [{name: http, port: 80, targetPort: http-alt}]\n"
		"---\n"
		"apiVersion: networking.istio.io/v1\n"
		"kind: WorkloadEntry\n"
		"metadata:\n"
		"  name: web-1\n"
		"  annotations: {sluice.io/node: node1, sluice.io/netns: /run/netns/w1,\n"
		"                sluice.io/interface: veth-w1}\n"
		"spec:\n"
		"  address: 10.1.0.1\n"
		"  serviceAccount: web-sa\n"
		"  labels: {app: web}\n"
		"  ports: {http-alt: 8080}\n"
		"---\n"
		"apiVersion: networking.istio.io/v1\n"
		"kind: DestinationRule\n"
		"metadata: {name: web}\n"
		"spec: {host: web}\n";
	struct sl_config *c = sl_config_new(), *same, *other;
	struct sl_diags d = {};
	const struct sl_resource *svc, *we, *dr;
	const struct sl_wl **sel = NULL;
	const json_t *dr_tree;
	json_t *before;
	struct sl_model m;

	cr_assert_eq(parse(c, yaml, &d), 0, "%s", all_diags(&d));
	svc = sl_config_find(c, "Service", "default", "web");
	we = sl_config_find(c, "WorkloadEntry", "default", "web-1");
	dr = sl_config_find(c, "DestinationRule", "default", "web");
	before = json_deep_copy(sl_resource_json(we));
	cr_assert_eq(sl_model_build(c, &m), 0);
	dr_tree = sl_resource_json(dr);

	sl_config_trim(c);
	cr_assert_eq(sl_resource_json(dr), dr_tree, "a resource without a memo keeps its tree");
	cr_assert_eq(m.nsvc, 1);
	cr_assert_eq(m.nwl, 1);
	cr_assert_str_eq(m.wl[0].sa, "web-sa");
	cr_assert_str_eq(m.wl[0].node, "node1");
	cr_assert_eq(sl_wl_port(&m.wl[0], "http-alt"), 8080);
	cr_assert_str_eq(m.svc[0].ports[0].name, "http");
	cr_assert_str_eq(m.svc[0].ports[0].target_name, "http-alt");
	cr_assert_eq(sl_backend_port(&m.wl[0], &m.svc[0].ports[0]), 8080);
	cr_assert_eq(sl_model_select(&m, "default", m.svc[0].selector, &sel), 1);
	cr_assert_eq(sel[0], &m.wl[0]);
	free(sel);
	cr_assert(json_equal(sl_resource_json(we), before), "read again from its text");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
		sl_resource_json(svc), "metadata"), "name")), "web");
	sl_model_free(&m);

	/* the same documents, parsed again: the same config */
	same = sl_config_new();
	other = sl_config_new();
	cr_assert_eq(parse(same, yaml, &d), 0, "%s", all_diags(&d));
	cr_assert(sl_config_same(c, same));
	cr_assert(json_equal(sl_resource_stored(svc),
			     sl_resource_stored(sl_config_find(same, "Service", "default", "web"))));
	cr_assert_eq(parse(other, yaml, &d), 0, "%s", all_diags(&d));
	cr_assert_eq(parse(other, "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
			   "metadata: {name: web}\nspec: {host: web.default.svc.cluster.local}\n",
			   &d), 0, "%s", all_diags(&d));
	cr_assert_not(sl_config_same(c, other), "a changed document");
	cr_assert_eq(sl_config_remove(same, "DestinationRule", "default", "web"), 0);
	cr_assert_not(sl_config_same(c, same), "a removed one");
	json_decref(before);
	sl_diags_free(&d);
	sl_config_free(other);
	sl_config_free(same);
	sl_config_free(c);
}
