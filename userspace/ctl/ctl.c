// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ctl.c - the command table's dispatch and the parsing of a command's own
 * arguments by its option table (ctl.h), shared by every command.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

int ctl_dispatch(const struct ctl_cmd *table, const char *what, const char *help,
		 const struct cli_opt *opts, const struct ctl_opts *o, int argc, char **argv)
{
	const struct ctl_cmd *hit = NULL;

	if (help && argc >= 1 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
		cli_cmd_help(stdout, "sluicectl", help, opts);
		return 0;
	}
	if (argc < 1) {
		fprintf(stderr, "sluicectl: %s: missing command\n", what);
		if (help)
			cli_cmd_help(stderr, "sluicectl", help, opts);
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

void ctl_args_init(struct ctl_args *a, const char *prog, const char *help,
		   const struct cli_opt *opts, int argc, char **argv)
{
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	a->prog = prog;
	a->help = help;
	a->opts = opts;
	a->argc = argc;
	a->argv = argv;
	a->status = -1;	/* not started */
	/* the usage's leading words of lower-case letters and '-' */
	for (const char *w = help; *w && *w != '\n';) {
		size_t len = strcspn(w, " \n");

		if (!len || !islower((unsigned char)*w) ||
		    strspn(w, "abcdefghijklmnopqrstuvwxyz-") != len ||
		    n + len + 2 > sizeof(a->cmd))
			break;
		n += (size_t)snprintf(a->cmd + n, sizeof(a->cmd) - n, "%s%.*s", n ? " " : "",
				      (int)len, w);
		w += len;
		if (*w != ' ' || w[1] == ' ')
			break;
		w++;
	}
}

int ctl_usage_error(const struct ctl_args *a, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sluicectl: %s: ", a->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cli_cmd_help(stderr, a->prog, a->help, a->opts);
	return 2;
}

/* optarg is one of the words of o's argument "a|b|c", if it is a list. */
static bool in_list(const struct cli_opt *o, const char *v)
{
	const char *w = o->arg;
	size_t n = strlen(v);

	if (!w || !strchr(w, '|') || strspn(w, "abcdefghijklmnopqrstuvwxyz-|") != strlen(w))
		return true;
	while (*w) {
		size_t len = strcspn(w, "|");

		if (len == n && !strncmp(w, v, n))
			return true;
		w += len + (w[len] == '|');
	}
	return false;
}

int ctl_args_next(struct ctl_args *a)
{
	const struct cli_opt *o;
	int c;

	if (a->status == -1) {
		if (cli_getopt_init(&a->g, a->opts, "")) {
			a->status = 2;
			return CTL_ARGS_EXIT;
		}
		a->status = 0;
		optind = 0;	/* glibc: start over; argv[-1] is the command's name */
		opterr = 0;
	}
	c = cli_getopt(&a->g, a->argc + 1, a->argv - 1);
	if (c == -1) {
		a->pos = a->argv + optind - 1;
		a->npos = a->argc - (optind - 1);
		return CTL_ARGS_END;
	}
	if (c == 'h') {
		cli_cmd_help(stdout, a->prog, a->help, a->opts);
		a->status = 0;
		return CTL_ARGS_EXIT;
	}
	for (o = a->opts; o->name && o->val != c; o++)
		;
	if (!o->name) {
		a->status = ctl_usage_error(a, "unknown option or missing value: '%s'",
					    a->argv[optind - 2]);
		return CTL_ARGS_EXIT;
	}
	if (optarg && !in_list(o, optarg)) {
		a->status = ctl_usage_error(a, "--%s: unknown value '%s' (%s)", o->name, optarg,
					    o->arg);
		return CTL_ARGS_EXIT;
	}
	return c;
}

int ctl_args_output(struct ctl_opts *o, const char *help, const struct cli_opt *opts, int argc,
		    char **argv)
{
	struct ctl_args a;
	int c;

	ctl_args_init(&a, "sluicectl", help, opts, argc, argv);
	while ((c = ctl_args_next(&a)) >= 0)
		if (c == 'o')
			o->json = !strcmp(optarg, "json");
	if (c == CTL_ARGS_EXIT)
		return a.status;
	if (a.npos)
		return ctl_usage_error(&a, "unexpected '%s'", a.pos[0]);
	return -1;
}

char *ctl_args_next_word(struct ctl_args *a)
{
	if (optind > a->argc || a->argv[optind - 1][0] == '-')
		return NULL;
	return a->argv[optind++ - 1];
}
