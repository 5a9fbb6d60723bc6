/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cli.h - a program's command line defined once: one table of options
 * (and, for programs with commands, one help string per command) from
 * which getopt_long()'s arguments, --help, the man page and a bash
 * completion script are all generated.
 *
 * Contract:
 * - A struct cli_opt table ends with an entry whose name is NULL. An
 *   option whose help is NULL is hidden: parsed, but in no help, man page
 *   or completion (e.g. --man itself).
 * - A command's help string is its usage, then what it does: after a run
 *   of at least two spaces on the first line, or on a following line.
 *   Following lines are indented to line up in --help; a following line
 *   that starts with '[' or '-' before any description continues the
 *   usage. The usage's second word, if it is made of lower-case letters,
 *   digits, '-' and '|' only, lists the command's subcommands
 *   ("fastpath on|off|force|status", "proxy certs").
 * - cli_help() prints the help strings of commands as they are; the man
 *   page and completion split them as above. A command's own options
 *   (cmd_opts) are listed by its --help (cli_cmd_help()) and in the man
 *   page under it, and completed after it. Text in the man page is
 *   escaped for roff: no line of it can start a request.
 * - sluice_version is the build's version (git describe, or 0.1.0 without
 *   git), defined here once for every program.
 */
#ifndef SL_CLI_H
#define SL_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

extern const char sluice_version[];

struct cli_opt {
	const char *name;    /* long option, without "--"; NULL ends the table */
	int has_arg;         /* no_argument or required_argument, | CLI_SHORT: -VAL too */
	int val;             /* what cli_getopt() returns for it */
	const char *arg;     /* its argument in help ("FILE", "on|off"), or NULL */
	const char *help;    /* one paragraph; NULL hides the option */
};

#define CLI_SHORT 0x100     /* the option's val is a letter, its short form */

struct cli_prog {
	const char *name;            /* "sluice-agent" */
	int section;                 /* of its man page: 1 or 8 */
	const char *summary;         /* what it is, for the man page's NAME */
	const char *const *usage;    /* synopsis lines after the name, NULL-terminated */
	const char *description;     /* paragraphs separated by "\n\n" (man page only) */
	const struct cli_opt *opts;
	const char *cmds_title;      /* heading of the commands in --help */
	const char *const *cmds;     /* a help string per command, NULL-terminated, or NULL */
	/* each command's own options, in cmds' order (the array or an entry
	 * NULL: none): in the man page under the command, and completed
	 * after it */
	const struct cli_opt *const *cmd_opts;
};

#define CLI_MAX_OPTS 48

/* getopt_long()'s arguments built from a table. */
struct cli_getopt {
	struct option lo[CLI_MAX_OPTS + 1];
	char so[2 * CLI_MAX_OPTS + 4];
};

/* Build g from table t; prefix starts the short option string ("+" to
 * stop at the first non-option, or ""). 0, or -E2BIG if t is too long. */
int cli_getopt_init(struct cli_getopt *g, const struct cli_opt *t, const char *prefix);
/* getopt_long() with g: the next option's val, '?' or -1. */
int cli_getopt(struct cli_getopt *g, int argc, char **argv);

/* --help: usage, options (wrapped to 80 columns), commands. */
void cli_help(FILE *f, const struct cli_prog *p);
/* A command's --help: "usage: PROG" and the command's usage, what it
 * does, then its options (help is a cmds entry, opts its options). */
void cli_cmd_help(FILE *f, const char *prog, const char *help, const struct cli_opt *opts);
/* The man page, in roff (man macros). */
void cli_man(FILE *f, const struct cli_prog *p);
/* A bash completion script: commands, their subcommands, options and the
 * values of options whose argument is a list ("table|json"), a DIR or a
 * FILE. Defines _NAME (with '-' as '_') and registers it for NAME. */
void cli_bash(FILE *f, const struct cli_prog *p);

/* One command's help split into its usage and what it does, whitespace
 * runs made single spaces (both truncated to their buffer). */
void cli_cmd_split(const char *help, char *usage, size_t ulen, char *what, size_t wlen);

#endif /* SL_CLI_H */
