// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluicectl analyze -f FILE [-f FILE...] [-o json] [--snapshot NODE]
 *
 * Validates config offline with the control plane's own code: every file
 * parsed (lib/config/config.h), then the cross-resource checks. Prints each
 * diagnostic; exits 1 if there is any error, 0 otherwise (warnings do not
 * fail). --snapshot NODE also compiles and prints the snapshot NODE would
 * get (identities numbered from scratch, trust domain cluster.local).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/compile/compile.h"
#include "ctl/ctl.h"
#include "lib/config/config.h"
#include "lib/config/config_check.h"
#include "lib/core/file.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: sluicectl analyze -f FILE|DIR [-f FILE|DIR...] [-o json] [--snapshot NODE]\n");
}

/* Compile NODE's snapshot and print it; 0 or -1 (errors in d). */
static int print_snapshot(const struct sl_config *c, const char *node, struct sl_diags *d)
{
	struct sl_ids *ids = sl_ids_new();
	json_t *snap = ids ? sl_compile_node(c, ids, "cluster.local", node, 1, d) : NULL;
	int rc = snap ? 0 : -1;

	if (snap) {
		json_dumpf(snap, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	}
	json_decref(snap);
	sl_ids_free(ids);
	return rc;
}

int cmd_analyze(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "filename", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	const char *node = NULL;
	bool json = o->json, any = false;
	int opt, rc = 2;

	if (!c)
		return 2;
	optind = 0; /* getopt again, over the command's own arguments */
	while ((opt = getopt_long(argc + 1, argv - 1, "f:o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': {
			char **paths;
			size_t np;
			int e = file_list_inputs(optarg, &paths, &np);

			if (e)
				sl_diag_add(&d, SL_DIAG_ERROR, "%s: %s", optarg, e == -ENOENT ?
					    "no .yaml, .yml or .json file in the directory" : strerror(-e));
			for (size_t k = 0; !e && k < np; k++) {
				sl_config_parse_file(c, paths[k], &d);
				free(paths[k]);
			}
			if (!e)
				free(paths);
			any = true;
			break;
		}
		case 'o':
			json = !strcmp(optarg, "json");
			break;
		case 's':
			node = optarg;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (!any || optind < argc + 1) {
		usage(stderr);
		goto out;
	}
	if (!d.nerrors)
		sl_config_check(c, &d);
	if (!d.nerrors && node && !json)
		print_snapshot(c, node, &d);
	if (json) {
		json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:o}", "errors", (json_int_t)d.nerrors,
				      "warnings", (json_int_t)d.nwarnings, "ignored",
				      (json_int_t)d.ninfos, "resources",
				      (json_int_t)sl_config_count(c), "diagnostics", sl_diags_json(&d));

		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(j);
	} else {
		sl_diags_print(&d, stderr);
		fprintf(stderr, "%zu resources: %zu errors, %zu warnings", sl_config_count(c),
			d.nerrors, d.nwarnings);
		if (d.ninfos)
			fprintf(stderr, ", %zu documents of other APIs ignored", d.ninfos);
		fputc('\n', stderr);
	}
	rc = d.nerrors ? 1 : 0;
out:
	sl_diags_free(&d);
	sl_config_free(c);
	return rc;
}
