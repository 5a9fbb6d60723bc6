// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The per-node compiler: Istio's AuthorizationPolicy semantics as kernel
 * entries, selectors to backends, VirtualService weights, PeerAuthentication
 * modes, identity stability.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "lib/compile/compile.h"
#include "lib/compile/compile_services.h"
#include "lib/config/config_check.h"
#include "sluice_policy.h"

/* Three workloads: a (ns x, sa a) on n1, b (ns x, sa b) on n1, c (ns y, sa c)
 * on n2; a and b serve 8080. */
#define MESH \
	"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: a\n  namespace: x\n" \
	"  annotations: {sluice.io/node: n1, sluice.io/netns: /run/netns/a, sluice.io/interface: pa}\n" \
	"spec: {address: 10.1.0.1, labels: {app: a}, serviceAccount: a, ports: {http: 8080}}\n---\n" \
	"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: b\n  namespace: x\n" \
	"  annotations: {sluice.io/node: n1, sluice.io/netns: /run/netns/b, sluice.io/interface: pb}\n" \
	"spec: {address: 10.1.0.2, labels: {app: b}, serviceAccount: b, ports: {http: 8080}}\n---\n" \
	"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: c\n  namespace: y\n" \
	"  annotations: {sluice.io/node: n2, sluice.io/netns: /run/netns/c, sluice.io/interface: pc}\n" \
	"spec: {address: 10.2.0.1, labels: {app: c}, serviceAccount: c}\n---\n"

#define AP(name, ns, body) "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n" \
	"metadata: {name: " name ", namespace: " ns "}\nspec:\n" body "---\n"

struct env {
	struct sl_config *c;
	struct sl_ids *ids;
	struct sl_diags d;
	json_t *snap;
	uint32_t a, b, c_, world;
};

static void compile(struct env *e, const char *yaml, const char *node)
{
	char *msgs = NULL;
	size_t len = 0;
	FILE *f;

	e->c = sl_config_new();
	e->ids = sl_ids_new();
	memset(&e->d, 0, sizeof(e->d));
	sl_config_parse(e->c, "t.yaml", yaml, strlen(yaml), &e->d);
	if (!e->d.nerrors)
		sl_config_check(e->c, &e->d);
	if (!e->d.nerrors)
		e->snap = sl_compile_node(e->c, e->ids, "cluster.local", node, 3, &e->d);
	f = open_memstream(&msgs, &len);
	sl_diags_print(&e->d, f);
	fclose(f);
	cr_assert_eq(e->d.nerrors, 0, "%s", msgs);
	free(msgs);
	cr_assert_not_null(e->snap);
	e->a = sl_ids_get(e->ids, "spiffe://cluster.local/ns/x/sa/a");
	e->b = sl_ids_get(e->ids, "spiffe://cluster.local/ns/x/sa/b");
	e->c_ = sl_ids_get(e->ids, "spiffe://cluster.local/ns/y/sa/c");
	e->world = SL_ID_WORLD;
}

static void env_free(struct env *e)
{
	json_decref(e->snap);
	sl_ids_free(e->ids);
	sl_config_free(e->c);
	sl_diags_free(&e->d);
}

/* Does the snapshot hold the entry? src 0xffffffff: "*"; port 0: any. */
static bool has(const struct env *e, const char *action, uint32_t src, uint32_t dst,
		const char *proto, int port)
{
	const json_t *p;
	size_t i;

	json_array_foreach(json_object_get(e->snap, "policies"), i, p) {
		const json_t *s = json_object_get(p, "source");
		bool src_ok = src == SL_ID_ANY ? json_is_string(s) : json_integer_value(s) == src;

		if (!strcmp(json_string_value(json_object_get(p, "action")), action) && src_ok &&
		    json_integer_value(json_object_get(p, "destination")) == dst &&
		    !strcmp(json_string_value(json_object_get(p, "protocol")), proto) &&
		    json_integer_value(json_object_get(p, "port")) == port)
			return true;
	}
	return false;
}

static size_t npolicies(const struct env *e)
{
	return json_array_size(json_object_get(e->snap, "policies"));
}

Test(compile, no_policy_no_entries_and_local_netns_only)
{
	struct env e = {};
	const json_t *w;
	size_t i, local = 0;

	compile(&e, MESH, "n1");
	cr_assert_eq(npolicies(&e), 0);
	cr_assert_eq(json_array_size(json_object_get(e.snap, "workloads")), 3);
	json_array_foreach(json_object_get(e.snap, "workloads"), i, w)
		local += json_object_get(w, "netns") != NULL;
	cr_assert_eq(local, 2, "only n1's workloads carry netns/interface");
	env_free(&e);
}

Test(compile, allow_with_principals_makes_destination_default_deny)
{
	struct env e = {};

	compile(&e, MESH AP("p", "x", "  selector: {matchLabels: {app: a}}\n  rules:\n"
			    "  - from: [{source: {principals: [cluster.local/ns/x/sa/b]}}]\n"
			    "    to: [{operation: {ports: [\"8080\"]}}]\n"), "n1");
	cr_assert(has(&e, "ALLOW", e.b, e.a, "TCP", 8080));
	cr_assert(has(&e, "ALLOW", SL_ID_ANY, e.a, "UDP", 0), "UDP stays outside, as in Istio");
	cr_assert_eq(npolicies(&e), 2);
	env_free(&e);
}

Test(compile, allow_without_rules_denies_all_and_empty_rule_allows_all)
{
	struct env e = {};

	compile(&e, MESH AP("none", "x", "  selector: {matchLabels: {app: a}}\n  action: ALLOW\n")
		    AP("all", "x", "  selector: {matchLabels: {app: b}}\n  rules: [{}]\n"), "n1");
	/* a: the destination has an ALLOW (the UDP one) and no TCP entry: all TCP denied */
	cr_assert(has(&e, "ALLOW", SL_ID_ANY, e.a, "UDP", 0));
	cr_assert_not(has(&e, "ALLOW", SL_ID_ANY, e.a, "TCP", 0));
	cr_assert(has(&e, "ALLOW", SL_ID_ANY, e.b, "TCP", 0));
	env_free(&e);
}

Test(compile, deny_without_rules_matches_nothing)
{
	struct env e = {};

	compile(&e, MESH AP("d", "x", "  action: DENY\n"), "n1");
	cr_assert_eq(npolicies(&e), 0);
	env_free(&e);
}

Test(compile, namespace_wide_and_root_namespace_scope)
{
	struct env e = {};

	/* x-wide DENY from y; a mesh-wide DENY on port 22 */
	compile(&e, MESH AP("d", "x", "  action: DENY\n  rules: [{from: [{source: {namespaces: [y]}}]}]\n")
		    AP("root", "istio-system", "  action: DENY\n  rules: [{to: [{operation: {ports: [\"22\"]}}]}]\n"),
		"n1");
	cr_assert(has(&e, "DENY", e.c_, e.a, "TCP", 0));
	cr_assert(has(&e, "DENY", e.c_, e.b, "TCP", 0));
	cr_assert(has(&e, "DENY", SL_ID_ANY, e.a, "TCP", 22));
	cr_assert(has(&e, "DENY", SL_ID_ANY, e.b, "TCP", 22));
	/* and, for c on n2, the entry that can concern a client on n1 */
	cr_assert(has(&e, "DENY", SL_ID_ANY, e.c_, "TCP", 22));
	cr_assert_eq(npolicies(&e), 5);
	env_free(&e);
}

Test(compile, remote_destinations_keep_the_entries_of_local_clients)
{
	struct env e = {};

	/* c (on n2) allows a (on n1) only; a DENY on c from y concerns n2 */
	compile(&e, MESH AP("al", "y", "  rules: [{from: [{source: {principals: [\"cluster.local/ns/x/sa/a\"]}}]}]\n")
		    AP("dn", "y", "  action: DENY\n  rules: [{from: [{source: {namespaces: [y]}}]}]\n"),
		"n1");
	/* n1 decides at connect() for a and b: a is allowed, and c is
	 * default-deny (the UDP entry from "*" marks an ALLOW destination) */
	cr_assert(has(&e, "ALLOW", e.a, e.c_, "TCP", 0));
	cr_assert(has(&e, "ALLOW", SL_ID_ANY, e.c_, "UDP", 0));
	cr_assert_not(has(&e, "DENY", e.c_, e.c_, "TCP", 0), "a source on n2 is n2's business");
	cr_assert_eq(npolicies(&e), 2);
	env_free(&e);

	compile(&e, MESH AP("al", "y", "  rules: [{from: [{source: {principals: [\"cluster.local/ns/x/sa/a\"]}}]}]\n")
		    AP("dn", "y", "  action: DENY\n  rules: [{from: [{source: {namespaces: [y]}}]}]\n"),
		"n2");
	cr_assert(has(&e, "ALLOW", e.a, e.c_, "TCP", 0));
	cr_assert(has(&e, "DENY", e.c_, e.c_, "TCP", 0));
	env_free(&e);
}

Test(compile, not_principals_and_not_namespaces_are_exact_complements)
{
	struct env e = {};

	compile(&e, MESH AP("d", "x", "  selector: {matchLabels: {app: a}}\n  action: DENY\n  rules:\n"
			    "  - from: [{source: {notNamespaces: [x]}}]\n"), "n1");
	/* everyone whose namespace is not x: c, world, unknown, host, proxy; not a, not b */
	cr_assert(has(&e, "DENY", e.c_, e.a, "TCP", 0));
	cr_assert(has(&e, "DENY", SL_ID_WORLD, e.a, "TCP", 0));
	cr_assert(has(&e, "DENY", SL_ID_UNKNOWN, e.a, "TCP", 0));
	cr_assert_not(has(&e, "DENY", e.b, e.a, "TCP", 0));
	cr_assert_not(has(&e, "DENY", e.a, e.a, "TCP", 0));
	env_free(&e);

	compile(&e, MESH AP("al", "x", "  selector: {matchLabels: {app: a}}\n  rules:\n"
			    "  - from: [{source: {notPrincipals: [\"*/sa/c\"], principals: [\"cluster.local/*\"]}}]\n"),
		"n1");
	cr_assert(has(&e, "ALLOW", e.a, e.a, "TCP", 0));
	cr_assert(has(&e, "ALLOW", e.b, e.a, "TCP", 0));
	cr_assert_not(has(&e, "ALLOW", e.c_, e.a, "TCP", 0));
	cr_assert_not(has(&e, "ALLOW", SL_ID_WORLD, e.a, "TCP", 0), "principals need a principal");
	env_free(&e);
}

Test(compile, ip_blocks_are_cidr_identities_plus_workloads_inside)
{
	struct env e = {};
	const json_t *cidrs;
	uint32_t office, all;

	compile(&e, MESH AP("al", "x", "  selector: {matchLabels: {app: a}}\n  rules:\n"
			    "  - from: [{source: {ipBlocks: [10.2.0.0/16, 203.0.113.0/24]}}]\n")
		    AP("dn", "x", "  selector: {matchLabels: {app: a}}\n  action: DENY\n  rules:\n"
		       "  - from: [{source: {notIpBlocks: [10.0.0.0/8]}}]\n"), "n1");
	cidrs = json_object_get(e.snap, "cidrs");
	cr_assert_eq(json_array_size(cidrs), 3);
	office = sl_ids_get(e.ids, "cidr:203.0.113.0/24");
	all = sl_ids_get(e.ids, "cidr:10.0.0.0/8");
	/* ALLOW from 10.2/16: its CIDR identity and workload c inside it */
	cr_assert(has(&e, "ALLOW", sl_ids_get(e.ids, "cidr:10.2.0.0/16"), e.a, "TCP", 0));
	cr_assert(has(&e, "ALLOW", e.c_, e.a, "TCP", 0));
	cr_assert(has(&e, "ALLOW", office, e.a, "TCP", 0));
	cr_assert_not(has(&e, "ALLOW", e.b, e.a, "TCP", 0));
	/* DENY from outside 10/8: the office and the world, nobody inside */
	cr_assert(has(&e, "DENY", office, e.a, "TCP", 0));
	cr_assert(has(&e, "DENY", SL_ID_WORLD, e.a, "TCP", 0));
	cr_assert_not(has(&e, "DENY", all, e.a, "TCP", 0));
	cr_assert_not(has(&e, "DENY", e.c_, e.a, "TCP", 0));
	cr_assert_not(has(&e, "DENY", e.b, e.a, "TCP", 0));
	env_free(&e);
}

Test(compile, ports_not_ports_and_when)
{
	struct env e = {};

	compile(&e, MESH AP("al", "x", "  selector: {matchLabels: {app: a}}\n  rules:\n"
			    "  - to: [{operation: {notPorts: [\"9000\"]}}]\n"
			    "    when: [{key: source.namespace, values: [y]}]\n"
			    "  - to: [{operation: {ports: [\"80\", \"443\"]}}]\n"
			    "    when: [{key: destination.port, notValues: [\"443\"]}, "
			    "{key: source.principal, values: [cluster.local/ns/x/sa/b]}]\n"), "n1");
	/* notPorts in an ALLOW: a's known ports but 9000 (8080, from its ports map) */
	cr_assert(has(&e, "ALLOW", e.c_, e.a, "TCP", 8080));
	cr_assert_not(has(&e, "ALLOW", e.c_, e.a, "TCP", 0));
	cr_assert(has(&e, "ALLOW", e.b, e.a, "TCP", 80));
	cr_assert_not(has(&e, "ALLOW", e.b, e.a, "TCP", 443));
	cr_assert_eq(npolicies(&e), 3);
	env_free(&e);
}

Test(compile, deny_on_every_port_but_some_is_refused)
{
	struct sl_config *c = sl_config_new();
	struct sl_ids *ids = sl_ids_new();
	struct sl_diags d = {};
	const char *y = MESH AP("dn", "x", "  action: DENY\n  rules:\n"
				"  - to: [{operation: {notPorts: [\"22\"]}}]\n");

	cr_assert_eq(sl_config_parse(c, "t.yaml", y, strlen(y), &d), 0);
	cr_assert_null(sl_compile_node(c, ids, "cluster.local", "n1", 1, &d));
	cr_assert_eq(d.nerrors, 1);
	cr_assert(strstr(d.v[0].msg, "AuthorizationPolicy x/dn: spec.rules[0].to[0].operation.notPorts: "
			 "a DENY on every port but some"), "%s", d.v[0].msg);
	sl_diags_free(&d);
	sl_ids_free(ids);
	sl_config_free(c);
}

Test(compile, services_selectors_named_target_ports_and_vs_weights)
{
	struct env e = {};
	const json_t *s, *b;
	size_t i, k;
	int seen = 0;

	compile(&e, MESH
		"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x}\n"
		"spec: {clusterIP: 10.96.0.1, selector: {app: a}, ports: [{name: web, port: 80, targetPort: http}]}\n---\n"
		"apiVersion: v1\nkind: Service\nmetadata: {name: web2, namespace: x}\n"
		"spec: {clusterIP: 10.96.0.2, selector: {app: b}, ports: [{name: web, port: 80, targetPort: 9090}]}\n---\n"
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: split, namespace: x}\n"
		"spec:\n  hosts: [web]\n  tcp:\n  - route:\n"
		"    - {destination: {host: web}, weight: 67}\n"
		"    - {destination: {host: web2, port: {number: 80}}, weight: 33}\n", "n2");
	json_array_foreach(json_object_get(e.snap, "services"), i, s) {
		const char *name = json_string_value(json_object_get(s, "name"));

		if (!strcmp(name, "x/web")) {
			/* 67:33 exactly, within 1..100 */
			cr_assert_eq(json_array_size(json_object_get(s, "backends")), 2);
			json_array_foreach(json_object_get(s, "backends"), k, b) {
				const char *a = json_string_value(json_object_get(b, "address"));
				int w = (int)json_integer_value(json_object_get(b, "weight"));

				if (!strcmp(a, "10.1.0.1"))
					cr_assert(w == 67 && json_integer_value(json_object_get(b, "port")) == 8080);
				else
					cr_assert(w == 33 && json_integer_value(json_object_get(b, "port")) == 9090);
			}
			seen++;
		}
		if (!strcmp(name, "x/web2")) {
			b = json_array_get(json_object_get(s, "backends"), 0);
			cr_assert_eq(json_integer_value(json_object_get(b, "port")), 9090);
			seen++;
		}
	}
	cr_assert_eq(seen, 2);
	env_free(&e);
}

Test(compile, weight_normalisation_is_least_distortion)
{
	double p3[] = { 1.0 / 3, 1.0 / 3, 1.0 / 3 };
	double p2[] = { 0.995, 0.005 };
	double p4[] = { 0.5, 0.25, 0.125, 0.125 };
	uint32_t w[4];

	sl_normalise_weights(p3, 3, w);
	cr_assert(w[0] == 1 && w[1] == 1 && w[2] == 1, "fewest slots when exact");
	sl_normalise_weights(p2, 2, w);
	cr_assert(w[0] == 100 && w[1] == 1, "%u %u: the closest 1..100 can get", w[0], w[1]);
	sl_normalise_weights(p4, 4, w);
	cr_assert(w[0] == 4 && w[1] == 2 && w[2] == 1 && w[3] == 1);
}

Test(compile, peer_authentication_precedence)
{
	struct env e = {};
	const json_t *w;
	size_t i;

	compile(&e, MESH
		"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
		"metadata: {name: mesh, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n---\n"
		"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
		"metadata: {name: x, namespace: x}\nspec: {mtls: {mode: PERMISSIVE}}\n---\n"
		"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: a, namespace: x}\n"
		"spec: {selector: {matchLabels: {app: a}}, mtls: {mode: UNSET}, portLevelMtls: {\"9000\": {mode: DISABLE}}}\n",
		"n1");
	json_array_foreach(json_object_get(e.snap, "workloads"), i, w) {
		const char *name = json_string_value(json_object_get(w, "name"));
		const char *mode = json_string_value(json_object_get(w, "mtls"));

		if (!strcmp(name, "a")) {
			cr_assert_str_eq(mode, "PERMISSIVE", "UNSET inherits the namespace's");
			cr_assert_str_eq(json_string_value(json_object_get(json_array_get(
				json_object_get(w, "mtls_ports"), 0), "mode")), "DISABLE");
		} else if (!strcmp(name, "b")) {
			cr_assert_str_eq(mode, "PERMISSIVE");
		} else {
			cr_assert_str_eq(mode, "STRICT", "y has no policy: the mesh's");
		}
	}
	env_free(&e);
}

Test(compile, identities_are_stable_across_save_and_load_and_never_reused)
{
	struct sl_ids *ids = sl_ids_new(), *back = sl_ids_new();
	uint32_t a = sl_ids_get(ids, "spiffe://cluster.local/ns/x/sa/a");
	uint32_t b = sl_ids_get(ids, "spiffe://cluster.local/ns/x/sa/b");
	json_t *j = sl_ids_to_json(ids);

	cr_assert_eq(a, SL_ID_FIRST_WORKLOAD);
	cr_assert_eq(b, a + 1);
	cr_assert_eq(sl_ids_from_json(back, j), 0);
	cr_assert_eq(sl_ids_get(back, "spiffe://cluster.local/ns/x/sa/b"), b);
	cr_assert_eq(sl_ids_get(back, "spiffe://cluster.local/ns/x/sa/c"), b + 1, "next survives");
	json_decref(j);
	sl_ids_free(ids);
	sl_ids_free(back);
}

Test(compile, nodes_are_sorted_and_unique)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	json_t *n;

	sl_config_parse(c, "t.yaml", MESH, strlen(MESH), &d);
	n = sl_compile_nodes(c);
	cr_assert_eq(json_array_size(n), 2);
	cr_assert_str_eq(json_string_value(json_array_get(n, 0)), "n1");
	cr_assert_str_eq(json_string_value(json_array_get(n, 1)), "n2");
	/* the control plane reads them from the mesh it compiled */
	{
		struct sl_ids *ids = sl_ids_new();
		struct sl_mesh *m = sl_compile_mesh(c, ids, "cluster.local", NULL, &d);
		json_t *mn;

		cr_assert(m);
		mn = sl_mesh_nodes(m);
		cr_assert(json_equal(mn, n));
		json_decref(mn);
		sl_mesh_free(m);
		sl_ids_free(ids);
	}
	json_decref(n);
	sl_diags_free(&d);
	sl_config_free(c);
}
