// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxy.c - `sluicectl proxy certs`: the workload certificates the node's
 * proxy holds (the agent's <run dir>/certs.json): identity, serial, expiry
 * and when it renews.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "lib/core/sys.h"

const struct cli_opt ctl_proxy_opts[] = {
	CTL_OPT_OUTPUT("table|json", "table (default) or json"),
	CTL_OPT_HELP,
	{}
};

static int proxy_certs(const struct ctl_opts *go, int argc, char **argv)
{
	struct ctl_opts opts = *go, *o = &opts;
	char run[PATH_MAX], path[PATH_MAX + 16];
	json_error_t jerr;
	json_t *j, *e;
	size_t i;
	int rc = ctl_args_output(o, CTL_PROXY_HELP, ctl_proxy_opts, argc, argv);

	if (rc >= 0)
		return rc;

	if (!o->pin_root[0] || sys_run_dir(o->pin_root, run, sizeof(run))) {
		fprintf(stderr, "sluicectl: proxy certs: give --node NAME or --pin-root DIR\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/certs.json", run);
	j = json_load_file(path, 0, &jerr);
	if (!json_is_array(j)) {
		fprintf(stderr, "sluicectl: proxy certs: %s: %s (is the agent running with "
			"--control and its proxy on?)\n", path, j ? "not a list" : jerr.text);
		json_decref(j);
		return 1;
	}
	if (o->json) {
		json_dumpf(j, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(j);
		return 0;
	}
	printf("%-50s %-34s %-20s %s\n", "IDENTITY", "SERIAL", "NOT AFTER (UTC)", "RENEWS IN");
	json_array_foreach(j, i, e) {
		time_t na = (time_t)json_integer_value(json_object_get(e, "not_after"));
		char when[32] = "-";
		struct tm tm;

		if (na && gmtime_r(&na, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("%-50s %-34s %-20s %s\n", json_string_value(json_object_get(e, "identity")),
		       json_string_value(json_object_get(e, "serial"))[0] ?
		       json_string_value(json_object_get(e, "serial")) : "(pending)", when,
		       na ? ({ static char b[32]; snprintf(b, sizeof(b), "%llds",
			       (long long)json_integer_value(json_object_get(e, "renew_in_s"))); b; })
			  : "-");
	}
	json_decref(j);
	return 0;
}

int cmd_proxy(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct ctl_cmd sub[] = {
		{ .name = "certs", .fn = proxy_certs },
		{}
	};

	return ctl_dispatch(sub, "proxy", CTL_PROXY_HELP, ctl_proxy_opts, o, argc, argv);
}
