// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * status.c - `sluicectl status`: what the node's agent runs with, what its
 * feature probes turned off on this kernel and why, and the snapshot it
 * last applied (the agent's <run dir>/status.json).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ctl/control.h"
#include "ctl/ctl.h"
#include "lib/sys.h"

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

int cmd_status(const struct ctl_opts *o, int argc, char **argv)
{
	json_t *j, *d, *f;
	size_t i;

	if (ctl_control_args(argc, argv))
		return cmd_control_status(o, argc, argv);
	j = ctl_agent_status(o, "status");
	if (!j)
		return 1;
	if (o->json) {
		json_dumpf(j, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(j);
		return 0;
	}
	f = json_object_get(j, "features");
	printf("node %s (agent pid %lld), kernel %s\n", json_string_value(json_object_get(j, "node")),
	       (long long)json_integer_value(json_object_get(j, "pid")),
	       json_string_value(json_object_get(j, "kernel")));
	printf("pin root %s, cgroup %s\n", json_string_value(json_object_get(j, "pin_root")),
	       json_string_value(json_object_get(j, "cgroup")));
	printf("snapshot version %lld\n",
	       (long long)json_integer_value(json_object_get(json_object_get(j, "snapshot"), "version")));
	printf("fast path: %s\n", json_is_true(json_object_get(f, "fastpath_on")) ? "on" :
	       json_is_true(json_object_get(f, "fastpath_available")) ? "off" : "unavailable");
	d = json_object_get(j, "disabled");
	printf("disabled on this kernel:%s\n", json_array_size(d) ? "" : " nothing");
	for (i = 0; i < json_array_size(d); i++)
		printf("  - %s: %s\n", json_string_value(json_object_get(json_array_get(d, i), "feature")),
		       json_string_value(json_object_get(json_array_get(d, i), "reason")));
	json_decref(j);
	return 0;
}
