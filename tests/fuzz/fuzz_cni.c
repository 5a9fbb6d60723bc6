// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluice-cni's input (cni/conf.c): the network configuration a runtime
 * writes to its stdin, with prevResult, and the request built from it.
 * The first byte picks CNI_COMMAND and which CNI_* variables are set;
 * with 0x40 set, the rest is a node's CNI configuration file instead, as
 * `sluice-cni install-chain` chains into it (cni/chain.c).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "cni/chain.c"
#include "cni/conf.c"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const cmds[] = { "ADD", "DEL", "CHECK", "VERSION", "BOGUS", NULL };
	struct cni_env env = { .container_id = "0123456789abcdef", .netns = "/run/netns/x",
			       .ifname = "eth0", .args = "IgnoreUnknown=1;K8S_POD_NAME=x" };
	struct cni_conf c;
	char err[1024];

	if (!size)
		return 0;
	if (data[0] & 0x40) {
		json_t *doc = json_loadb((const char *)data + 1, size - 1, 0, NULL);

		doc = doc ? chain_add(doc, "f.conflist", "/run/sluice/n/cni.sock", err, sizeof(err)) : NULL;
		doc = doc ? chain_remove(doc) : NULL;
		json_decref(doc);
		return 0;
	}
	env.command = cmds[data[0] % 6];
	if (data[0] & 0x10)
		env.netns = NULL;
	if (data[0] & 0x20)
		env.container_id = "";
	if (cni_conf_parse((const char *)data + 1, size - 1, &env, &c, err, sizeof(err)) == 0 &&
	    env.command && strcmp(env.command, "VERSION")) {
		json_t *r = cni_request(&c, &env);

		free(json_dumps(r, JSON_COMPACT));
		json_decref(r);
	}
	cni_conf_free(&c);
	return 0;
}
