// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The CNI path's parsers and decisions: sluice-cni's configuration and
 * environment (cni/conf.c, with the CNI spec's error codes), the control
 * plane's WorkloadGroup authorization of a registration (control/
 * register.c), and the read of podman's BoltDB record (agent/podman.c) on
 * a database podman 4.3 wrote.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "agent/podman.h"
#include "cni/chain.h"
#include "cni/conf.h"
#include "control/register.h"
#include "lib/config/config.h"
#include "lib/core/file.h"

#define PREV04 "\"prevResult\": {\"cniVersion\": \"0.4.0\", \"interfaces\": [{\"name\": \"cni0\"}, " \
	"{\"name\": \"veth1\"}, {\"name\": \"eth0\", \"sandbox\": \"/run/netns/x\"}], " \
	"\"ips\": [{\"version\": \"4\", \"interface\": 2, \"address\": \"10.1.0.2/24\"}]}"

static const struct cni_env add_env = { "ADD", "0123456789abcdef", "/run/netns/x", "eth0", "" };

static int conf(const char *cmd, const char *json, char *err)
{
	struct cni_env env = add_env;
	struct cni_conf c;
	int rc;

	env.command = cmd;
	rc = cni_conf_parse(json, strlen(json), &env, &c, err, 1024);
	cni_conf_free(&c);
	return rc;
}

Test(cni_conf, versions_and_codes)
{
	char err[1024];

	cr_expect_eq(conf("ADD", "{\"cniVersion\": \"0.4.0\", \"name\": \"n\", \"type\": \"sluice-cni\", "
			  PREV04 "}", err), 0, "%s", err);
	cr_expect_eq(conf("ADD", "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", " PREV04 "}",
			  err), 0, "%s", err);
	cr_expect_eq(conf("ADD", "{\"cniVersion\": \"2.0.0\", \"name\": \"n\", \"type\": \"t\"}", err), 1);
	cr_expect(strstr(err, "cniVersion: \"2.0.0\" is not supported"), "%s", err);
	cr_expect_eq(conf("ADD", "{\"cniVersion\": ", err), 6);
	cr_expect(strstr(err, "stdin: not JSON"), "%s", err);
	cr_expect_eq(conf("ADD", "[1]", err), 6);
	cr_expect_eq(conf("ADD", "{\"name\": \"n\", \"type\": \"t\"}", err), 7);
	cr_expect(strstr(err, "cniVersion: required"), "%s", err);
	cr_expect_eq(conf("ADD", "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\"}", err), 7);
	cr_expect(strstr(err, "prevResult: required for ADD"), "%s", err);
	cr_expect_eq(conf("CHECK", "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\"}", err), 7);
	cr_expect_eq(conf("DEL", "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\"}", err), 0,
		     "%s", err);
	cr_expect_eq(conf("CHECK", "{\"cniVersion\": \"0.3.1\", \"name\": \"n\", \"type\": \"t\", " PREV04 "}",
			  err), 1);
	cr_expect_eq(conf("VERSION", "{\"cniVersion\": \"1.0.0\"}", err), 0, "%s", err);
	cr_expect_eq(conf("NOPE", "{\"cniVersion\": \"1.0.0\"}", err), 4);
	cr_expect_eq(conf(NULL, "{}", err), 4);
}

Test(cni_conf, fields_named)
{
	char err[1024];

	cr_expect_eq(conf("ADD", "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", "
			  "\"failOpen\": \"yes\", " PREV04 "}", err), 7);
	cr_expect(strstr(err, "failOpen"), "%s", err);
	cr_expect_eq(conf("ADD", "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", "
			  "\"agentSocket\": \"relative.sock\", " PREV04 "}", err), 7);
	cr_expect(strstr(err, "agentSocket"), "%s", err);
	cr_expect_eq(conf("ADD", "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", "
			  "\"prevResult\": {\"interfaces\": [], \"ips\": [{\"address\": \"10.0.0.1\"}]}}", err), 7);
	cr_expect(strstr(err, "prevResult.ips[0].address"), "%s", err);
	cr_expect_eq(conf("ADD", "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", "
			  "\"prevResult\": {\"interfaces\": [{\"mac\": \"x\"}], \"ips\": []}}", err), 7);
	cr_expect(strstr(err, "prevResult.interfaces[0]"), "%s", err);
}

Test(cni_conf, env_required)
{
	struct cni_env env = add_env;
	struct cni_conf c;
	char err[1024];
	const char *j = "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"t\", " PREV04 "}";

	env.container_id = NULL;
	cr_expect_eq(cni_conf_parse(j, strlen(j), &env, &c, err, sizeof(err)), 4);
	cr_expect(strstr(err, "CNI_CONTAINERID"), "%s", err);
	cni_conf_free(&c);
	env = add_env;
	env.netns = "";
	cr_expect_eq(cni_conf_parse(j, strlen(j), &env, &c, err, sizeof(err)), 4);
	cr_expect(strstr(err, "CNI_NETNS"), "%s", err);
	cni_conf_free(&c);
}

Test(cni_conf, request)
{
	const char *j = "{\"cniVersion\": \"0.4.0\", \"name\": \"net1\", \"type\": \"t\", " PREV04 "}";
	struct cni_conf c;
	char err[1024];
	json_t *r;

	cr_assert_eq(cni_conf_parse(j, strlen(j), &add_env, &c, err, sizeof(err)), 0, "%s", err);
	r = cni_request(&c, &add_env);
	cr_assert(r);
	cr_expect_str_eq(json_string_value(json_object_get(r, "command")), "ADD");
	cr_expect_str_eq(json_string_value(json_object_get(r, "network")), "net1");
	cr_expect_eq(json_array_size(json_object_get(r, "interfaces")), 3);
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(r, "ips"), 0)), "10.1.0.2/24");
	cr_expect(json_object_get(json_array_get(json_object_get(r, "interfaces"), 2), "sandbox"));
	json_decref(r);
	cni_conf_free(&c);
}

/* ---- registration ------------------------------------------------------ */

static const char groups[] =
	"apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\n"
	"metadata: {name: ledger, namespace: bank}\n"
	"spec:\n  metadata: {labels: {tier: backend}}\n  template: {serviceAccount: ledger, weight: 3}\n"
	"---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\n"
	"metadata: {name: vm1, namespace: bank}\nspec: {address: 10.9.0.9, serviceAccount: ledger}\n";

#define ID "0123456789abcdef0123"

static struct sl_config *base(void)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};

	cr_assert(c);
	cr_assert_eq(sl_config_parse(c, "t.yaml", groups, strlen(groups), &d), 0);
	sl_diags_free(&d);
	return c;
}

static int reg(const struct sl_config *c, const char *node, const char *body, struct sl_config **out,
	       char *err)
{
	char name[300];
	json_t *j = json_loads(body, 0, NULL);
	int st;

	cr_assert(j, "bad test body %s", body);
	st = reg_change(c, node, j, out, name, sizeof(name), err, 1024);
	json_decref(j);
	return st;
}

Test(cni_register, workloadgroup_authorizes)
{
	struct sl_config *c = base(), *nc = NULL, *nc2 = NULL;
	const struct sl_resource *r;
	const json_t *doc;
	char err[1024];

	cr_assert_eq(reg(c, "n1", "{\"op\": \"register\", \"container\": \"" ID "\", \"namespace\": \"bank\", "
			 "\"serviceAccount\": \"ledger\", \"labels\": {\"app\": \"ledger\", \"tier\": \"x\", "
			 "\"sluice.io/node\": \"n9\"}, \"address\": \"10.1.0.2\", \"netns\": \"/run/netns/a\", "
			 "\"interface\": \"veth1\", \"cgroup\": \"/libpod_parent/libpod-" ID "\"}", &nc, err), 200, "%s", err);
	cr_assert(nc);
	r = sl_config_find(nc, "WorkloadEntry", "bank", "ledger-0123456789ab");
	cr_assert(r);
	doc = sl_resource_json(r);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(doc, "metadata"),
		"annotations"), "sluice.io/node")), "n1");
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(doc, "spec"),
		"labels"), "tier")), "x", "the container's labels come last");
	cr_expect_null(json_object_get(json_object_get(json_object_get(doc, "spec"), "labels"), "sluice.io/node"));
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(doc, "spec"), "weight")), 3);
	cr_expect_null(sl_config_find(c, "WorkloadEntry", "bank", "ledger-0123456789ab"), "cur changed");

	/* another node may neither take nor remove it */
	cr_expect_eq(reg(nc, "n2", "{\"op\": \"register\", \"container\": \"" ID "\", \"namespace\": \"bank\", "
			 "\"serviceAccount\": \"ledger\", \"address\": \"10.1.0.3\", \"netns\": \"/run/netns/a\", "
			 "\"interface\": \"veth1\"}", &nc2, err), 403);
	cr_expect_eq(reg(nc, "n2", "{\"op\": \"deregister\", \"container\": \"" ID "\"}", &nc2, err), 403);
	cr_expect(strstr(err, "registered by node n1"), "%s", err);
	cr_expect_null(nc2);
	/* the owner removes it; again: nothing to do */
	cr_expect_eq(reg(nc, "n1", "{\"op\": \"deregister\", \"container\": \"" ID "\"}", &nc2, err), 200);
	cr_assert(nc2);
	cr_expect_null(sl_config_find(nc2, "WorkloadEntry", "bank", "ledger-0123456789ab"));
	sl_config_free(nc2);
	cr_expect_eq(reg(c, "n1", "{\"op\": \"deregister\", \"container\": \"" ID "\"}", &nc2, err), 200);
	cr_expect_null(nc2);
	/* an operator's entry is not a node's to remove, even by a name match */
	sl_config_free(nc);
	sl_config_free(c);
}

Test(cni_register, refusals)
{
	struct sl_config *c = base(), *nc = NULL;
	char err[1024];

	cr_expect_eq(reg(c, "n1", "{\"op\": \"register\", \"container\": \"" ID "\", \"namespace\": \"bank\", "
			 "\"serviceAccount\": \"admin\", \"address\": \"10.1.0.2\", \"netns\": \"/run/netns/a\", "
			 "\"interface\": \"veth1\"}", &nc, err), 403);
	cr_expect_str_eq(err, "no WorkloadGroup in namespace bank allows service account admin "
			 "(allowed there: ledger)");
	cr_expect_eq(reg(c, "n1", "{\"op\": \"register\", \"container\": \"" ID "\", \"serviceAccount\": "
			 "\"ledger\", \"address\": \"10.1.0.2\", \"netns\": \"/run/netns/a\", \"interface\": \"v\"}",
			 &nc, err), 403, "namespace default has no group");
	cr_expect_eq(reg(c, "n1", "{\"op\": \"register\", \"container\": \"XYZ\", \"namespace\": \"bank\", "
			 "\"serviceAccount\": \"ledger\", \"address\": \"10.1.0.2\", \"netns\": \"/n\", "
			 "\"interface\": \"v\"}", &nc, err), 400);
	cr_expect_eq(reg(c, "n1", "{\"op\": \"register\", \"container\": \"" ID "\", \"namespace\": \"bank\", "
			 "\"serviceAccount\": \"ledger\", \"netns\": \"/n\", \"interface\": \"v\"}", &nc, err), 400);
	cr_expect(strstr(err, "address"), "%s", err);
	/* the address of an existing workload: the config check refuses it */
	cr_expect_eq(reg(c, "n1", "{\"op\": \"register\", \"container\": \"" ID "\", \"namespace\": \"bank\", "
			 "\"serviceAccount\": \"ledger\", \"address\": \"10.9.0.9\", \"netns\": \"/n\", "
			 "\"interface\": \"v\"}", &nc, err), 422, "%s", err);
	cr_expect_eq(reg(c, "n1", "{\"op\": \"register\", \"container\": \"" ID "\", \"namespace\": \"bank\", "
			 "\"serviceAccount\": \"ledger\", \"address\": \"10.1.0.2\", \"netns\": \"relative\", "
			 "\"interface\": \"v\"}", &nc, err), 422);
	cr_expect(strstr(err, "sluice.io/netns"), "%s", err);
	cr_expect_eq(reg(c, "n1", "{\"op\": \"rename\"}", &nc, err), 400);
	cr_expect_null(nc);
	sl_config_free(c);
}

Test(cni_config, workloadgroup_schema)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	const char *bad = "apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata: {name: g}\n"
			  "spec:\n  template: {serviceAccount: a, address: 10.0.0.1}\n";

	cr_assert(c);
	cr_expect_eq(sl_config_parse(c, "g.yaml", bad, strlen(bad), &d), -EINVAL);
	cr_expect(d.n && strstr(d.v[0].msg, "template.address"), "%s", d.n ? d.v[0].msg : "");
	sl_diags_free(&d);
	sl_config_free(c);
}

/* ---- podman's record ---------------------------------------------------- */

#define SEED_ID "b12923fc325638a6f934aac65326d324b55e4dcfacdbcc56b719d1d6d3c05536"

static char *seed(size_t *len)
{
	char path[512], *buf = NULL;
	const char *f = __FILE__, *slash = strrchr(f, '/');

	snprintf(path, sizeof(path), "%.*s/../fuzz/corpus/podman/podman-4.3-one-container.db",
		 (int)(slash - f), f);
	cr_assert_eq(file_read(path, &buf, len, 1 << 20), 0, "%s", path);
	return buf;
}

Test(cni_podman, record_by_id)
{
	size_t len;
	char *b = seed(&len), err[512];
	json_t *j = NULL;

	cr_assert_eq(podman_container_mem((unsigned char *)b, len, SEED_ID, &j, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "labels"),
		"sluice.io/service-account")), "ledger");
	cr_expect_str_eq(json_string_value(json_object_get(j, "name")), "seed1");
	json_decref(j);
	cr_expect_eq(podman_container_mem((unsigned char *)b, len, "00" SEED_ID, &j, err, sizeof(err)), -ENOENT);
	cr_expect(strstr(err, "no container"), "%s", err);
	/* damaged: both meta pages' checksums broken */
	b[16 + 20] ^= 1;
	b[4096 + 16 + 20] ^= 1;
	cr_expect_eq(podman_container_mem((unsigned char *)b, len, SEED_ID, &j, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "not a BoltDB"), "%s", err);
	cr_expect_eq(podman_container_mem((unsigned char *)b, 40, SEED_ID, &j, err, sizeof(err)), -EINVAL);
	free(b);
}

/* ---- the Kubernetes installer's chaining --------------------------------- */

Test(cni_chain, add_is_idempotent_and_converts_conf)
{
	char err[600];
	json_t *d = json_loads("{\"cniVersion\": \"0.4.0\", \"name\": \"k8s\", \"plugins\": "
			       "[{\"type\": \"ptp\"}, {\"type\": \"portmap\"}]}", 0, NULL);
	json_t *s;

	d = chain_add(d, "10.conflist", "/run/sluice/n1/cni.sock", err, sizeof(err));
	cr_assert(d, "%s", err);
	d = chain_add(d, "10.conflist", "/run/sluice/n1/cni.sock", err, sizeof(err));
	cr_assert(d, "%s", err);
	cr_expect_eq(json_array_size(json_object_get(d, "plugins")), 3, "chained twice");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(d, "plugins"), 2),
		"type")), "sluice-cni");
	d = chain_remove(d);
	cr_expect_eq(json_array_size(json_object_get(d, "plugins")), 2);
	json_decref(d);

	s = json_loads("{\"cniVersion\": \"0.3.1\", \"name\": \"b\", \"type\": \"bridge\"}", 0, NULL);
	s = chain_add(s, "20.conf", "/s", err, sizeof(err));
	cr_assert(s, "%s", err);
	cr_expect_str_eq(json_string_value(json_object_get(s, "name")), "b");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(s, "plugins"), 0),
		"type")), "bridge");
	cr_expect_null(json_object_get(json_array_get(json_object_get(s, "plugins"), 0), "cniVersion"));
	json_decref(s);

	cr_expect_null(chain_add(json_loads("{\"cniVersion\": \"1.0.0\", \"name\": \"x\", \"plugins\": []}",
					    0, NULL), "30.conflist", "/s", err, sizeof(err)));
	cr_expect(strstr(err, "30.conflist: plugins"), "%s", err);
	cr_expect_null(chain_add(json_loads("{\"name\": \"x\", \"type\": \"t\"}", 0, NULL), "40.conf", "/s",
				 err, sizeof(err)));
	cr_expect(strstr(err, "40.conf: cniVersion"), "%s", err);
}
