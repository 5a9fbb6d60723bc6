// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ctl.c - the command table's dispatch (ctl.h), shared by every noun with
 * subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

int ctl_dispatch(const struct ctl_cmd *table, const char *what,
		 const struct ctl_opts *o, int argc, char **argv)
{
	const struct ctl_cmd *hit = NULL;

	if (argc < 1) {
		fprintf(stderr, "sluicectl: %s: missing command\n", what);
		return 2;
	}
	for (const struct ctl_cmd *c = table; c->name; c++) {
		if (strcmp(c->name, argv[0]) == 0) {
			hit = c;
			break;
		}
		if (strncmp(c->name, argv[0], strlen(argv[0])) == 0) {
			if (hit) {
				fprintf(stderr, "sluicectl: %s: '%s' is ambiguous\n", what, argv[0]);
				return 2;
			}
			hit = c;
		}
	}
	if (!hit) {
		fprintf(stderr, "sluicectl: %s: unknown command '%s'\n", what, argv[0]);
		return 2;
	}
	return hit->fn(o, argc - 1, argv + 1);
}
