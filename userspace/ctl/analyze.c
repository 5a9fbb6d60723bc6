// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluicectl analyze -f FILE|DIR [-f FILE|DIR...] [-o json] [--snapshot NODE]
 *
 * Validates config offline with the control plane's own code: every file
 * parsed (lib/config/config.h), then the cross-resource checks. Prints each
 * diagnostic; exits 1 if there is any error, 0 otherwise (warnings do not
 * fail). --snapshot NODE also compiles and prints the snapshot NODE would
 * get (identities numbered from scratch, trust domain cluster.local).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/compile/compile.h"
#include "ctl/ctl.h"
#include "lib/config/config.h"
#include "lib/config/config_check.h"
#include "lib/core/file.h"

const struct cli_opt ctl_analyze_opts[] = {
	{ "filename", required_argument | CLI_SHORT, 'f', "FILE",
	  "a YAML file or a directory (its .yaml, .yml and .json files); repeat for more "
	  "(all are one config)" },
	CTL_OPT_OUTPUT("table|json", "table (default) or json: the counts and every diagnostic"),
	{ "snapshot", required_argument, 's', "NODE",
	  "also compile and print the snapshot NODE would get (not with -o json)" },
	CTL_OPT_HELP,
	{}
};

/* -f PATH: the file, or the directory's files, parsed into c. */
static void parse_input(struct sl_config *c, const char *path, struct sl_diags *d)
{
	char **paths;
	size_t np;
	int e = file_list_inputs(path, &paths, &np);

	if (e) {
		sl_diag_add(d, SL_DIAG_ERROR, "%s: %s", path, e == -ENOENT ?
			    "no .yaml, .yml or .json file in the directory" : strerror(-e));
		return;
	}
	for (size_t k = 0; k < np; k++) {
		sl_config_parse_file(c, paths[k], d);
		free(paths[k]);
	}
	free(paths);
}

/* The counts and the diagnostics: a JSON object on stdout, or the
 * diagnostics and a summary line on stderr. */
static void report(const struct sl_config *c, const struct sl_diags *d, bool json)
{
	if (json) {
		json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:o}", "errors", (json_int_t)d->nerrors,
				      "warnings", (json_int_t)d->nwarnings, "ignored",
				      (json_int_t)d->ninfos, "resources",
				      (json_int_t)sl_config_count(c), "diagnostics", sl_diags_json(d));

		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(j);
		return;
	}
	sl_diags_print(d, stderr);
	fprintf(stderr, "%zu resources: %zu errors, %zu warnings", sl_config_count(c),
		d->nerrors, d->nwarnings);
	if (d->ninfos)
		fprintf(stderr, ", %zu documents of other APIs ignored", d->ninfos);
	fputc('\n', stderr);
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
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	struct ctl_args a;
	const char *node = NULL;
	bool json = o->json, any = false;
	int opt, rc;

	if (!c)
		return 2;
	ctl_args_init(&a, "sluicectl", CTL_ANALYZE_HELP, ctl_analyze_opts, argc, argv);
	while ((opt = ctl_args_next(&a)) >= 0) {
		switch (opt) {
		case 'f':
			parse_input(c, optarg, &d);
			any = true;
			break;
		case 'o':
			json = !strcmp(optarg, "json");
			break;
		case 's':
			node = optarg;
			break;
		}
	}
	if (opt == CTL_ARGS_EXIT) {
		rc = a.status;
		goto out;
	}
	if (!any || a.npos) {
		rc = ctl_usage_error(&a, a.npos ? "unexpected '%s'" : "no -f FILE%s",
				     a.npos ? a.pos[0] : "");
		goto out;
	}
	if (!d.nerrors)
		sl_config_check(c, &d);
	if (!d.nerrors && node && !json)
		print_snapshot(c, node, &d);
	report(c, &d, json);
	rc = d.nerrors ? 1 : 0;
out:
	sl_diags_free(&d);
	sl_config_free(c);
	return rc;
}
