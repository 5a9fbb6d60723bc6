// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * status.c - `sluicectl status`: what the node's agent runs with, what its
 * feature probes turned off on this kernel and why, the snapshot it last
 * applied, and the node proxies it supervises with their connections in
 * flight (the agent's <run dir>/status.json).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl/control.h"
#include "ctl/ctl.h"
#include "lib/core/sys.h"

json_t *ctl_agent_status(const struct ctl_opts *o, const char *cmd)
{
	char run[PATH_MAX], path[PATH_MAX + 16];
	json_error_t jerr;
	json_t *j;

	if (!o->pin_root[0] || sys_run_dir(o->pin_root, run, sizeof(run))) {
		fprintf(stderr, "sluicectl: %s: give --node NAME or --pin-root DIR\n", cmd);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/status.json", run);
	j = json_load_file(path, 0, &jerr);
	if (!j)
		fprintf(stderr, "sluicectl: %s: %s: %s (is the agent running?)\n", cmd, path, jerr.text);
	return j;
}

/* "3d4h", "5m12s", "40s" since a CLOCK_REALTIME time in ms. */
static const char *uptime(json_int_t started_ms, char *buf, size_t len)
{
	long long s = (long long)time(NULL) - started_ms / 1000;

	if (started_ms <= 0 || s < 0)
		snprintf(buf, len, "?");
	else if (s >= 86400)
		snprintf(buf, len, "%lldd%lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%lldh%lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm%llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%llds", s);
	return buf;
}

static bool alive(json_t *pid)
{
	json_int_t v = json_integer_value(pid);

	return v > 0 && kill((pid_t)v, 0) == 0;
}

static void print_proxies(json_t *a)
{
	char up[32];
	size_t i;

	printf("node proxies:%s\n", json_array_size(a) ? "" : " none");
	for (i = 0; i < json_array_size(a); i++) {
		json_t *p = json_array_get(a, i);

		printf("  - pid %lld%s, version %s, %s, up %s: %lld tunnels, %lld inbound and %lld "
		       "outbound HBONE connections, %lld accepted, %lld certificates\n",
		       (long long)json_integer_value(json_object_get(p, "pid")),
		       alive(json_object_get(p, "pid")) ? "" : " (gone)",
		       json_string_value(json_object_get(p, "version")) ?: "?",
		       json_string_value(json_object_get(p, "state")) ?: "?",
		       uptime(json_integer_value(json_object_get(p, "started_ms")), up, sizeof(up)),
		       (long long)json_integer_value(json_object_get(p, "tunnels")),
		       (long long)json_integer_value(json_object_get(p, "inbound")),
		       (long long)json_integer_value(json_object_get(p, "outbound")),
		       (long long)json_integer_value(json_object_get(p, "accepted")),
		       (long long)json_integer_value(json_object_get(p, "certificates")));
	}
}

int ctl_agent_status_print(const struct ctl_opts *o, bool json)
{
	char up[32];
	json_t *j, *d, *f;
	size_t i;

	j = ctl_agent_status(o, "status");
	if (!j)
		return 1;
	if (json) {
		json_dumpf(j, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(j);
		return 0;
	}
	f = json_object_get(j, "features");
	printf("node %s, kernel %s\n", json_string_value(json_object_get(j, "node")),
	       json_string_value(json_object_get(j, "kernel")));
	printf("agent pid %lld%s, version %s, up %s\n",
	       (long long)json_integer_value(json_object_get(j, "pid")),
	       alive(json_object_get(j, "pid")) ? "" : " (not running)",
	       json_string_value(json_object_get(j, "version")) ?: "?",
	       uptime(json_integer_value(json_object_get(j, "started_ms")), up, sizeof(up)));
	printf("pin root %s, cgroup %s\n", json_string_value(json_object_get(j, "pin_root")),
	       json_string_value(json_object_get(j, "cgroup")));
	printf("snapshot version %lld\n",
	       (long long)json_integer_value(json_object_get(json_object_get(j, "snapshot"), "version")));
	printf("fast path: %s\n", json_is_true(json_object_get(f, "fastpath_on")) ? "on" :
	       json_is_true(json_object_get(f, "fastpath_available")) ? "off" : "unavailable");
	if (json_object_get(f, "tc_attach"))
		printf("tc programs on pod veths: %s\n", json_string_value(json_object_get(f, "tc_attach")));
	d = json_object_get(j, "disabled");
	printf("disabled on this kernel:%s\n", json_array_size(d) ? "" : " nothing");
	for (i = 0; i < json_array_size(d); i++)
		printf("  - %s: %s\n", json_string_value(json_object_get(json_array_get(d, i), "feature")),
		       json_string_value(json_object_get(json_array_get(d, i), "reason")));
	if (json_object_get(j, "proxies"))
		print_proxies(json_object_get(j, "proxies"));
	json_decref(j);
	return 0;
}
