// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Order-free apply, as Kubernetes users expect: a rule naming a host,
 * subset or port not applied yet is a warning and stays inert until its
 * target exists; applying documents one by one in any order, or deleting
 * and re-applying them in any order, ends in the same compiled state.
 * And documents of other APIs beside the mesh's are skipped, one line each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lib/compile/compile.h"
#include "lib/config/config_check.h"

#define NDOCS 7

/* A Service over two versions, their subsets, a 90/10 split, a policy,
 * and a ServiceEntry the split's second route names by port. */
static const char *const docs[NDOCS] = {
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
	"spec: {clusterIP: 10.96.0.10, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n",
	"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: web-1\n"
	"  namespace: shop\n  annotations: {sluice.io/node: n1, sluice.io/netns: /run/netns/w1, "
	"sluice.io/interface: w1}\nspec: {address: 10.1.0.1, labels: {app: web, version: v1}, "
	"serviceAccount: web}\n",
	"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: web-2\n"
	"  namespace: shop\n  annotations: {sluice.io/node: n1, sluice.io/netns: /run/netns/w2, "
	"sluice.io/interface: w2}\nspec: {address: 10.1.0.2, labels: {app: web, version: v2}, "
	"serviceAccount: web}\n",
	"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web, namespace: shop}\n"
	"spec:\n  host: web\n  subsets:\n  - {name: v1, labels: {version: v1}}\n"
	"  - {name: v2, labels: {version: v2}}\n",
	"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web, namespace: shop}\n"
	"spec:\n  hosts: [web]\n  tcp:\n  - route:\n"
	"    - {destination: {host: web, subset: v1}, weight: 90}\n"
	"    - {destination: {host: legacy.example.com, port: {number: 80}}, weight: 10}\n",
	"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: legacy, namespace: shop}\n"
	"spec:\n  hosts: [legacy.example.com]\n  addresses: [10.96.0.20]\n  resolution: STATIC\n"
	"  ports: [{number: 80, name: tcp, protocol: TCP}]\n  endpoints: [{address: 10.9.0.1}]\n",
	"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow, namespace: shop}\n"
	"spec:\n  selector: {matchLabels: {app: web}}\n  action: ALLOW\n"
	"  rules: [{from: [{source: {namespaces: [shop]}}]}]\n",
};

struct key { const char *kind, *ns, *name; };

static const struct key keys[NDOCS] = {
	{ "Service", "shop", "web" }, { "WorkloadEntry", "shop", "web-1" },
	{ "WorkloadEntry", "shop", "web-2" }, { "DestinationRule", "shop", "web" },
	{ "VirtualService", "shop", "web" }, { "ServiceEntry", "shop", "legacy" },
	{ "AuthorizationPolicy", "shop", "allow" },
};

/* apply one document as sluicectl apply does: parse into the running
 * config, then check the whole; an error would refuse the apply */
static void apply(struct sl_config *c, int i)
{
	struct sl_diags d = {};

	cr_assert_eq(sl_config_parse(c, "t.yaml", docs[i], strlen(docs[i]), &d), 0, "doc %d", i);
	cr_assert_eq(sl_config_check(c, &d), 0, "doc %d refused: %s", i,
		     d.n ? d.v[0].msg : "");
	sl_diags_free(&d);
}

static void delete(struct sl_config *c, int i)
{
	struct sl_diags d = {};

	cr_assert_eq(sl_config_remove(c, keys[i].kind, keys[i].ns, keys[i].name), 0);
	cr_assert_eq(sl_config_check(c, &d), 0, "delete of doc %d refused: %s", i,
		     d.n ? d.v[0].msg : "");
	sl_diags_free(&d);
}

/* node n1's snapshot, from identities numbered afresh */
static json_t *state(const struct sl_config *c)
{
	struct sl_ids *ids = sl_ids_new();
	struct sl_diags d = {};
	json_t *s = sl_compile_node(c, ids, "cluster.local", "n1", 1, &d);

	cr_assert_not_null(s, "%s", d.n ? d.v[0].msg : "");
	json_object_del(s, "version");
	sl_diags_free(&d);
	sl_ids_free(ids);
	return s;
}

/* the next permutation of p[0..n) in lexicographic order; false after the last */
static bool next_perm(int *p, int n)
{
	int i = n - 2, j = n - 1, t;

	while (i >= 0 && p[i] >= p[i + 1])
		i--;
	if (i < 0)
		return false;
	while (p[j] <= p[i])
		j--;
	t = p[i], p[i] = p[j], p[j] = t;
	for (i++, j = n - 1; i < j; i++, j--)
		t = p[i], p[i] = p[j], p[j] = t;
	return true;
}

Test(apply_order, every_order_of_apply_and_of_delete_and_reapply_ends_the_same)
{
	struct sl_config *all = sl_config_new();
	int p[NDOCS];
	json_t *want;
	char *text;
	size_t perms = 0;

	for (int i = 0; i < NDOCS; i++) {
		p[i] = i;
		apply(all, i);
	}
	want = state(all);
	/* the split is in force: 90 to web-1 (subset v1), 10 to legacy */
	text = json_dumps(want, JSON_COMPACT);
	cr_assert(text && strstr(text, "10.9.0.1"));
	free(text);
	do {
		struct sl_config *c = sl_config_new();
		json_t *got;

		for (int i = 0; i < NDOCS; i++)
			apply(c, p[i]);
		got = state(c);
		cr_assert(json_equal(got, want), "order %d%d%d%d%d%d%d gives another state",
			  p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
		json_decref(got);
		/* every 5th order: delete in this order, re-apply in reverse */
		if (perms % 5 == 0) {
			for (int i = 0; i < NDOCS; i++)
				delete(c, p[i]);
			cr_assert_eq(sl_config_count(c), 0);
			for (int i = NDOCS - 1; i >= 0; i--)
				apply(c, p[i]);
			got = state(c);
			cr_assert(json_equal(got, want));
			json_decref(got);
		}
		sl_config_free(c);
		perms++;
	} while (next_perm(p, NDOCS));
	cr_assert_eq(perms, 5040);
	json_decref(want);
	sl_config_free(all);
}

/* the backends of VIP 10.96.0.10 port 80 in a snapshot, as "addr:port/weight" */
static void backends(const json_t *snap, char *out, size_t len)
{
	const json_t *s, *b;
	size_t i, k;

	out[0] = '\0';
	json_array_foreach(json_object_get(snap, "services"), i, s) {
		if (strcmp(json_string_value(json_object_get(s, "vip")), "10.96.0.10"))
			continue;
		json_array_foreach(json_object_get(s, "backends"), k, b)
			snprintf(out + strlen(out), len - strlen(out), "%s%s:%lld/%lld", k ? " " : "",
				 json_string_value(json_object_get(b, "address")),
				 (long long)json_integer_value(json_object_get(b, "port")),
				 (long long)json_integer_value(json_object_get(b, "weight")));
	}
}

Test(apply_order, a_route_to_a_missing_subset_is_inert_until_the_subset_exists)
{
	struct sl_config *c = sl_config_new();
	char got[256];
	json_t *s;

	apply(c, 0);
	apply(c, 1);
	apply(c, 2);
	apply(c, 5);
	apply(c, 4);      /* the VirtualService: no DestinationRule, so no subset v1 */
	s = state(c);
	backends(s, got, sizeof(got));
	cr_assert_str_eq(got, "10.1.0.1:8080/1 10.1.0.2:8080/1", "inert VirtualService: %s", got);
	json_decref(s);
	apply(c, 3);      /* the subsets: now the split holds */
	s = state(c);
	backends(s, got, sizeof(got));
	cr_assert_str_eq(got, "10.1.0.1:8080/9 10.9.0.1:80/1", "%s", got);
	json_decref(s);
	delete(c, 0);     /* the Service goes: allowed, with the rules kept */
	cr_assert_not_null(sl_config_find(c, "VirtualService", "shop", "web"));
	sl_config_free(c);
}

Test(apply_order, deleting_a_routed_service_warns)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};

	for (int i = 0; i < NDOCS; i++)
		apply(c, i);
	sl_config_remove(c, "ServiceEntry", "shop", "legacy");
	cr_assert_eq(sl_config_check(c, &d), 0);
	cr_assert_eq(d.nerrors, 0);
	cr_assert(d.nwarnings >= 1);
	cr_assert(strstr(d.v[0].msg, "[IST0101] referenced host not found: \"legacy.example.com\""),
		  "%s", d.v[0].msg);
	sl_diags_free(&d);
	sl_config_free(c);
}

Test(apply_order, other_apis_beside_the_mesh_are_skipped_and_a_namespace_is_recorded)
{
	static const char yaml[] =
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a}}\n---\n"
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n"
		"spec: {replicas: 2, template: {spec: {containers: [{name: web, image: nginx}]}}}\n---\n"
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-conf}\ndata: {a: b}\n---\n"
		"apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: fn, namespace: shop}\n"
		"spec: {template: {}}\n---\n"
		"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
		"spec: {clusterIP: 10.96.0.10, selector: {app: web}, ports: [{port: 80}]}\n---\n"
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web, namespace: shop}\n"
		"spec: {hosts: [web], tcp: [{route: [{destination: {host: web}}]}]}\n";
	struct sl_config *c = sl_config_new(), *back = sl_config_new();
	struct sl_diags d = {};
	json_t *j;

	cr_assert_eq(sl_config_parse(c, "app.yaml", yaml, strlen(yaml), &d), 0);
	cr_assert_eq(d.nerrors, 0);
	cr_assert_eq(d.ninfos, 3);
	cr_assert_str_eq(d.v[0].msg, "app.yaml:5:1: apps/v1 Deployment shop/web: not a mesh kind, ignored");
	cr_assert_str_eq(d.v[1].msg, "app.yaml:10:1: v1 ConfigMap default/web-conf: not a mesh kind, ignored");
	cr_assert_str_eq(d.v[2].msg, "app.yaml:15:1: serving.knative.dev/v1 Service shop/fn: not a "
			 "mesh kind, ignored");
	cr_assert_eq(sl_config_count(c), 3);
	cr_assert_not_null(sl_config_find(c, "Namespace", "", "shop"));
	cr_assert_eq(sl_config_check(c, &d), 0);
	/* the store's JSON loads back (no namespace on the Namespace) */
	j = sl_config_to_json(c);
	cr_assert_eq(sl_config_from_json(back, "config.json", j, &d), 0);
	cr_assert_eq(sl_config_count(back), 3);
	cr_assert_null(json_object_get(json_object_get(sl_resource_json(sl_config_find(back,
		"Namespace", "", "shop")), "metadata"), "namespace"));
	json_decref(j);
	sl_diags_free(&d);
	sl_config_free(c);
	sl_config_free(back);
}
