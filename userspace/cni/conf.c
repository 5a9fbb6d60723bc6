// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * conf.c - sluice-cni's input: the network configuration and the CNI_*
 * environment (conf.h).
 */
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "cni/conf.h"

const char *const cni_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", NULL };

static bool version_known(const char *v)
{
	for (const char *const *x = cni_versions; *x; x++)
		if (!strcmp(*x, v))
			return true;
	return false;
}

static int need_env(const char *v, const char *name, char *err, size_t errlen)
{
	if (v && *v)
		return 0;
	snprintf(err, errlen, "%s: required for this command and not set", name);
	return CNI_ERR_ENV;
}

/* prevResult: interfaces[] of {name (string), sandbox?} and ips[] of
 * {address (a CIDR string), interface?}. */
static int check_prev(const json_t *p, char *err, size_t errlen)
{
	const json_t *ifs = json_object_get(p, "interfaces"), *ips = json_object_get(p, "ips"), *x;
	size_t i;

	if (!json_is_object(p)) {
		snprintf(err, errlen, "prevResult: must be an object");
		return CNI_ERR_CONFIG;
	}
	if (!json_is_array(ifs) || !json_is_array(ips)) {
		snprintf(err, errlen, "prevResult: interfaces and ips (arrays) are required: "
			 "sluice-cni runs after the plugin that creates the interface (bridge, ptp)");
		return CNI_ERR_CONFIG;
	}
	json_array_foreach(ifs, i, x) {
		const json_t *sb = json_object_get(x, "sandbox");

		if (!json_is_string(json_object_get(x, "name")) || (sb && !json_is_string(sb))) {
			snprintf(err, errlen, "prevResult.interfaces[%zu]: name (a string) is required, "
				 "sandbox is a string", i);
			return CNI_ERR_CONFIG;
		}
	}
	json_array_foreach(ips, i, x) {
		const char *a = json_string_value(json_object_get(x, "address"));

		if (!a || !strchr(a, '/') || strlen(a) > 64) {
			snprintf(err, errlen, "prevResult.ips[%zu].address: a CIDR string is required", i);
			return CNI_ERR_CONFIG;
		}
	}
	return 0;
}

int cni_conf_parse(const char *buf, size_t len, const struct cni_env *env, struct cni_conf *c,
		   char *err, size_t errlen)
{
	const char *cmd = env->command;
	json_error_t je;
	json_t *v;
	bool add_check;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((rc = need_env(cmd, "CNI_COMMAND", err, errlen)))
		return rc;
	if (strcmp(cmd, "ADD") && strcmp(cmd, "DEL") && strcmp(cmd, "CHECK") && strcmp(cmd, "VERSION")) {
		snprintf(err, errlen, "CNI_COMMAND: \"%.32s\" is not ADD, DEL, CHECK or VERSION", cmd);
		return CNI_ERR_ENV;
	}
	c->doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(c->doc)) {
		snprintf(err, errlen, c->doc ? "stdin: the network configuration must be a JSON object" :
			 "stdin: not JSON: %s (line %d, column %d)", je.text, je.line, je.column);
		return CNI_ERR_DECODE;
	}
	v = json_object_get(c->doc, "cniVersion");
	c->version = json_string_value(v);
	if (!c->version) {
		snprintf(err, errlen, "cniVersion: required (a string)");
		return CNI_ERR_CONFIG;
	}
	if (!version_known(c->version)) {
		snprintf(err, errlen, "cniVersion: \"%.32s\" is not supported (0.3.0, 0.3.1, 0.4.0, 1.0.0)",
			 c->version);
		return CNI_ERR_VERSION;
	}
	if (!strcmp(cmd, "VERSION"))
		return 0;
	if (!json_is_string(json_object_get(c->doc, "name")) ||
	    !json_is_string(json_object_get(c->doc, "type"))) {
		snprintf(err, errlen, "name and type: required (strings)");
		return CNI_ERR_CONFIG;
	}
	if (!strcmp(cmd, "CHECK") && !strncmp(c->version, "0.3.", 4)) {
		snprintf(err, errlen, "cniVersion: CHECK needs 0.4.0 or later, the config says %s",
			 c->version);
		return CNI_ERR_VERSION;
	}
	v = json_object_get(c->doc, "agentSocket");
	c->socket = v ? json_string_value(v) : CNI_DEFAULT_SOCKET;
	if (!c->socket || c->socket[0] != '/' ||
	    strlen(c->socket) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "agentSocket: an absolute path shorter than %zu bytes is required",
			 sizeof(((struct sockaddr_un *)0)->sun_path));
		return CNI_ERR_CONFIG;
	}
	v = json_object_get(c->doc, "failOpen");
	if (v && !json_is_boolean(v)) {
		snprintf(err, errlen, "failOpen: must be true or false");
		return CNI_ERR_CONFIG;
	}
	c->fail_open = json_is_true(v);
	if ((rc = need_env(env->container_id, "CNI_CONTAINERID", err, errlen)) ||
	    (rc = need_env(env->ifname, "CNI_IFNAME", err, errlen)))
		return rc;
	add_check = strcmp(cmd, "DEL") != 0;
	if (add_check && (rc = need_env(env->netns, "CNI_NETNS", err, errlen)))
		return rc;
	c->prev = json_object_get(c->doc, "prevResult");
	if (!c->prev && add_check) {
		snprintf(err, errlen, "prevResult: required for %s: sluice-cni is a chained plugin; "
			 "list it after the plugin that creates the interface (bridge, ptp)", cmd);
		return CNI_ERR_CONFIG;
	}
	if (c->prev && (rc = check_prev(c->prev, err, errlen)))
		return rc;
	return 0;
}

void cni_conf_free(struct cni_conf *c)
{
	json_decref(c->doc);
	memset(c, 0, sizeof(*c));
}

json_t *cni_request(const struct cni_conf *c, const struct cni_env *env)
{
	json_t *ifs = json_array(), *ips = json_array(), *x, *r;
	size_t i;

	json_array_foreach(json_object_get(c->prev, "interfaces"), i, x) {
		json_t *o = json_pack("{s:O}", "name", json_object_get(x, "name"));

		if (o && json_object_get(x, "sandbox"))
			json_object_set(o, "sandbox", json_object_get(x, "sandbox"));
		json_array_append_new(ifs, o);
	}
	json_array_foreach(json_object_get(c->prev, "ips"), i, x)
		json_array_append(ips, json_object_get(x, "address"));
	r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "command", env->command,
		      "containerId", env->container_id, "netns", env->netns ?: "",
		      "ifname", env->ifname, "args", env->args ?: "", "network",
		      json_string_value(json_object_get(c->doc, "name")), "interfaces", ifs, "ips", ips);
	return r;
}
