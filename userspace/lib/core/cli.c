// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cli.c - getopt_long() arguments, --help, man page and bash completion
 * from one table per program (cli.h).
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "gen/version.h"
#include "lib/core/cli.h"

const char sluice_version[] = SLUICE_VERSION;

#define WIDTH   79      /* the last column --help writes to */
#define MAX_COL 23      /* where option help starts, at the most */

static int has_arg(const struct cli_opt *o)
{
	return o->has_arg & ~CLI_SHORT;
}

int cli_getopt_init(struct cli_getopt *g, const struct cli_opt *t, const char *prefix)
{
	size_t n = 0, s = strlen(prefix);

	if (s >= sizeof(g->so))
		return -E2BIG;
	memset(g, 0, sizeof(*g));
	memcpy(g->so, prefix, s);
	for (; t->name; t++, n++) {
		if (n == CLI_MAX_OPTS || s + 3 > sizeof(g->so))
			return -E2BIG;
		g->lo[n] = (struct option){ t->name, has_arg(t), NULL, t->val };
		if (t->has_arg & CLI_SHORT) {
			g->so[s++] = (char)t->val;
			if (has_arg(t) == required_argument)
				g->so[s++] = ':';
		}
	}
	return 0;
}

int cli_getopt(struct cli_getopt *g, int argc, char **argv)
{
	return getopt_long(argc, argv, g->so, g->lo, NULL);
}

/* "-o, --output FORMAT" */
static int opt_label(const struct cli_opt *o, char *buf, size_t len)
{
	char s[8] = "";

	if (o->has_arg & CLI_SHORT)
		snprintf(s, sizeof(s), "-%c, ", o->val);
	return snprintf(buf, len, "%s--%s%s%s", s, o->name, o->arg ? " " : "", o->arg ?: "");
}

/* The length of the next word of s; in a usage (brackets), a bracketed
 * group is one word. */
static size_t word_len(const char *s, bool brackets)
{
	size_t n = 0;
	int depth = 0;

	for (; s[n] && (depth || !isspace((unsigned char)s[n])); n++) {
		if (brackets && s[n] == '[')
			depth++;
		else if (brackets && s[n] == ']' && depth)
			depth--;
	}
	return n;
}

/* Print text's words from column `at`, wrapping to column `col`. */
static void wrap(FILE *f, const char *text, int col, int at, bool brackets)
{
	bool first = true;

	while (*text) {
		size_t n;

		while (isspace((unsigned char)*text))
			text++;
		if (!*text)
			break;
		n = word_len(text, brackets);
		if (!first && at + 1 + (int)n > WIDTH) {
			fprintf(f, "\n%*s", col, "");
			at = col;
		} else if (!first) {
			fputc(' ', f);
			at++;
		}
		fwrite(text, 1, n, f);
		at += (int)n;
		text += n;
		first = false;
	}
	fputc('\n', f);
}

/* The visible options of t, a line each, their help wrapped. */
static void help_opts(FILE *f, const struct cli_opt *t)
{
	const struct cli_opt *o;
	int col = 0;
	char label[128];

	for (o = t; o->name; o++) {
		int n = opt_label(o, label, sizeof(label)) + 4;

		if (o->help && n > col)
			col = n > MAX_COL ? MAX_COL : n;
	}
	for (o = t; o->name; o++) {
		int at;

		if (!o->help)
			continue;
		opt_label(o, label, sizeof(label));
		at = fprintf(f, "  %s", label);
		at += fprintf(f, "%*s", at + 2 <= col ? col - at : 2, "");
		wrap(f, o->help, col, at, false);
	}
}

void cli_help(FILE *f, const struct cli_prog *p)
{
	int ucol = (int)strlen(p->name) + 8;

	for (size_t i = 0; p->usage[i]; i++) {
		fprintf(f, "%s %s ", i ? "      " : "usage:", p->name);
		wrap(f, p->usage[i], ucol, ucol, true);
	}
	fputc('\n', f);
	help_opts(f, p->opts);
	if (p->cmds) {
		fprintf(f, "\n%s:\n", p->cmds_title);
		for (size_t i = 0; p->cmds[i]; i++)
			fprintf(f, "  %s\n", p->cmds[i]);
	}
}

/* Append n bytes of s to buf, whitespace runs as one space, and a space
 * to join what comes next (trim() takes the last one off). */
static void append(char *buf, size_t len, const char *s, size_t n)
{
	size_t at = strlen(buf);

	for (size_t i = 0; i < n && at + 1 < len; i++) {
		bool sp = isspace((unsigned char)s[i]);

		if (sp && (!at || buf[at - 1] == ' '))
			continue;
		buf[at++] = sp ? ' ' : s[i];
	}
	if (at && buf[at - 1] != ' ' && at + 1 < len)
		buf[at++] = ' ';
	buf[at] = '\0';
}

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && s[n - 1] == ' ')
		s[--n] = '\0';
}

void cli_cmd_split(const char *help, char *usage, size_t ulen, char *what, size_t wlen)
{
	const char *eol = strchr(help, '\n') ?: help + strlen(help);
	const char *gap = strstr(help, "  ");

	usage[0] = what[0] = '\0';
	if (gap && gap < eol) {
		append(usage, ulen, help, (size_t)(gap - help));
		append(what, wlen, gap, (size_t)(eol - gap));
	} else {
		append(usage, ulen, help, (size_t)(eol - help));
	}
	while (*eol) {
		const char *line = eol + 1;

		while (*line == ' ')
			line++;
		eol = strchr(line, '\n') ?: line + strlen(line);
		if (!what[0] && (*line == '[' || *line == '-'))
			append(usage, ulen, line, (size_t)(eol - line));
		else
			append(what, wlen, line, (size_t)(eol - line));
	}
	trim(usage);
	trim(what);
}

void cli_cmd_help(FILE *f, const char *prog, const char *help, const struct cli_opt *opts)
{
	char usage[512], what[1024];
	int ucol = (int)strlen(prog) + 8;

	cli_cmd_split(help, usage, sizeof(usage), what, sizeof(what));
	fprintf(f, "usage: %s ", prog);
	wrap(f, usage, ucol, ucol, true);
	if (what[0]) {
		fputc('\n', f);
		wrap(f, what, 0, 0, false);
	}
	if (opts && opts->name) {
		fputc('\n', f);
		help_opts(f, opts);
	}
}

/* roff text: whitespace runs as one space, '\' and '-' escaped, and a
 * '.' or '\'' that would start the line made plain text. */
static void roff_n(FILE *f, const char *s, size_t n, bool bol)
{
	const char *end = s + n;
	bool sp = false;

	while (s < end && isspace((unsigned char)*s))
		s++;
	for (; s < end; s++) {
		if (isspace((unsigned char)*s)) {
			sp = true;
			continue;
		}
		if (sp)
			fputc(' ', f);
		sp = false;
		if (bol && (*s == '.' || *s == '\''))
			fputs("\\&", f);
		bol = false;
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
	}
}

static void roff(FILE *f, const char *s, bool bol)
{
	roff_n(f, s, strlen(s), bol);
}

static void roff_font(FILE *f, char font, const char *s)
{
	fprintf(f, "\\f%c", font);
	roff(f, s, false);
	fputs("\\fR", f);
}

/* Paragraphs separated by "\n\n", each on its own line. */
static void roff_paras(FILE *f, const char *s)
{
	while (*s) {
		const char *end = strstr(s, "\n\n") ?: s + strlen(s);

		roff_n(f, s, (size_t)(end - s), true);
		fputc('\n', f);
		s = *end ? end + 2 : end;
		if (*s)
			fputs(".PP\n", f);
	}
}

/* The visible options of t, a tagged paragraph each. */
static void man_opts(FILE *f, const struct cli_opt *t)
{
	for (const struct cli_opt *o = t; o->name; o++) {
		if (!o->help)
			continue;
		fputs(".TP\n", f);
		if (o->has_arg & CLI_SHORT)
			fprintf(f, "\\fB\\-%c\\fR, ", o->val);
		fputs("\\fB\\-\\-", f);
		roff(f, o->name, false);
		fputs("\\fR", f);
		if (o->arg) {
			fputc(' ', f);
			roff_font(f, 'I', o->arg);
		}
		fputc('\n', f);
		roff(f, o->help, true);
		fputc('\n', f);
	}
}

void cli_man(FILE *f, const struct cli_prog *p)
{
	char usage[512], what[1024];

	fputs(".TH ", f);
	for (const char *c = p->name; *c; c++)
		fputc(toupper((unsigned char)*c), f);
	fprintf(f, " %d \"\" \"sluice %s\" \"sluice\"\n.SH NAME\n", p->section, sluice_version);
	roff(f, p->name, true);
	fputs(" \\- ", f);
	roff(f, p->summary, false);
	fputs("\n.SH SYNOPSIS\n", f);
	for (size_t i = 0; p->usage[i]; i++) {
		if (i)
			fputs(".br\n", f);
		roff_font(f, 'B', p->name);
		fputc(' ', f);
		roff(f, p->usage[i], false);
		fputc('\n', f);
	}
	if (p->description) {
		fputs(".SH DESCRIPTION\n", f);
		roff_paras(f, p->description);
	}
	fputs(".SH OPTIONS\n", f);
	man_opts(f, p->opts);
	if (!p->cmds)
		return;
	fputs(".SH COMMANDS\n", f);
	for (size_t i = 0; p->cmds[i]; i++) {
		const char *rest;
		size_t n;

		cli_cmd_split(p->cmds[i], usage, sizeof(usage), what, sizeof(what));
		n = strcspn(usage, " ");
		rest = usage[n] ? usage + n + 1 : "";
		usage[n] = '\0';
		fputs(".TP\n", f);
		roff_font(f, 'B', usage);
		if (*rest) {
			fputc(' ', f);
			roff(f, rest, false);
		}
		fputc('\n', f);
		roff(f, what, true);
		fputc('\n', f);
		if (p->cmd_opts && p->cmd_opts[i] && p->cmd_opts[i]->name) {
			fputs(".RS\n", f);
			man_opts(f, p->cmd_opts[i]);
			fputs(".RE\n", f);
		}
	}
}

/* The usage's second word if it lists subcommands ("on|off"), else "". */
static void subcommands(const char *usage, char *buf, size_t len)
{
	const char *w = strchr(usage, ' ');
	size_t n;

	buf[0] = '\0';
	if (!w)
		return;
	n = strcspn(++w, " ");
	if (!n || *w == '-' || n >= len)
		return;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)w[i]) && !isdigit((unsigned char)w[i]) &&
		    w[i] != '-' && w[i] != '|')
			return;
	for (size_t i = 0; i < n; i++)
		buf[i] = w[i] == '|' ? ' ' : w[i];
	buf[n] = '\0';
}

/* One option's forms, "-o|--output" (sep '|') or "-o --output". */
static void opt_forms(FILE *f, const struct cli_opt *o, char sep)
{
	if (o->has_arg & CLI_SHORT)
		fprintf(f, "-%c%c", o->val, sep);
	fprintf(f, "--%s", o->name);
}

/* The forms of the options that take an argument (with_arg), or of the
 * visible ones; the number printed. */
static int opts_forms(FILE *f, const struct cli_opt *o, char sep, bool with_arg)
{
	int n = 0;

	for (; o->name; o++) {
		if (with_arg ? has_arg(o) != required_argument : !o->help)
			continue;
		if (n++)
			fputc(sep, f);
		opt_forms(f, o, sep);
	}
	return n;
}

/* The case arms completing the values of t's options that take one, at
 * indent `in`: a list's words, a DIR or a FILE. */
static void value_cases(FILE *f, const struct cli_opt *t, const char *in)
{
	for (const struct cli_opt *o = t; o->name; o++) {
		if (has_arg(o) != required_argument)
			continue;
		fputs(in, f);
		opt_forms(f, o, '|');
		fputs(")\n", f);
		if (o->arg && strchr(o->arg, '|')) {
			fprintf(f, "%s\tCOMPREPLY=($(compgen -W \"", in);
			for (const char *c = o->arg; *c; c++)
				fputc(*c == '|' ? ' ' : *c, f);
			fputs("\" -- \"$cur\"))\n", f);
		} else if (o->arg && strstr(o->arg, "DIR")) {
			fprintf(f, "%s\tCOMPREPLY=($(compgen -d -- \"$cur\"))\n", in);
		} else if (o->arg && strstr(o->arg, "FILE")) {
			fprintf(f, "%s\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n", in);
		}
		fprintf(f, "%s\treturn 0;;\n", in);
	}
}

/* After a command with options of its own: their values, and the options
 * themselves for a word that starts with '-'. */
static void cmd_opt_cases(FILE *f, const struct cli_prog *p)
{
	char usage[512], what[1024];

	if (!p->cmd_opts)
		return;
	fputs("\tcase $cmd in\n", f);
	for (size_t i = 0; p->cmds[i]; i++) {
		const struct cli_opt *t = p->cmd_opts[i];

		if (!t || !t->name)
			continue;
		cli_cmd_split(p->cmds[i], usage, sizeof(usage), what, sizeof(what));
		fprintf(f, "\t%.*s)\n\t\tcase $prev in\n", (int)strcspn(usage, " "), usage);
		value_cases(f, t, "\t\t");
		fputs("\t\tesac\n\t\tif [[ $cur == -* ]]; then\n"
		      "\t\t\tCOMPREPLY=($(compgen -W \"", f);
		opts_forms(f, t, ' ', false);
		fputs("\" -- \"$cur\"))\n\t\t\treturn 0\n\t\tfi;;\n", f);
	}
	fputs("\tesac\n", f);
}

void cli_bash(FILE *f, const struct cli_prog *p)
{
	char fn[64], usage[512], what[1024], sub[256];
	const char *sep;
	size_t i;

	snprintf(fn, sizeof(fn), "_%s", p->name);
	for (char *c = fn; *c; c++)
		if (!isalnum((unsigned char)*c))
			*c = '_';
	fprintf(f, "# bash completion for %s, generated from its option and command tables\n"
		   "%s()\n{\n"
		   "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev= cmd= i\n"
		   "\tCOMPREPLY=()\n"
		   "\t((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD-1]}\n", p->name, fn);
	/* the command: the first word that is neither an option nor its argument */
	fputs("\tfor ((i = 1; i < COMP_CWORD; i++)); do\n\t\tcase ${COMP_WORDS[i]} in\n\t\t", f);
	if (opts_forms(f, p->opts, '|', true))
		fputs(") ((i++));;\n\t\t", f);
	fputs("-*) ;;\n\t\t*) cmd=${COMP_WORDS[i]}; break;;\n\t\tesac\n\tdone\n", f);
	/* the command's own options first: its -o may not be the program's */
	cmd_opt_cases(f, p);
	fputs("\tcase $prev in\n", f);
	value_cases(f, p->opts, "\t");
	fputs("\tesac\n\tif [[ -z $cmd ]]; then\n\t\tCOMPREPLY=($(compgen -W \"", f);
	sep = opts_forms(f, p->opts, ' ', false) ? " " : "";
	for (i = 0; p->cmds && p->cmds[i]; i++) {
		cli_cmd_split(p->cmds[i], usage, sizeof(usage), what, sizeof(what));
		fprintf(f, "%s%.*s", sep, (int)strcspn(usage, " "), usage);
		sep = " ";
	}
	fputs("\" -- \"$cur\"))\n\t\treturn 0\n\tfi\n", f);
	fputs("\t((i + 1 == COMP_CWORD)) || return 0\n\tcase $cmd in\n", f);
	for (i = 0; p->cmds && p->cmds[i]; i++) {
		cli_cmd_split(p->cmds[i], usage, sizeof(usage), what, sizeof(what));
		subcommands(usage, sub, sizeof(sub));
		if (sub[0])
			fprintf(f, "\t%.*s)\n\t\tCOMPREPLY=($(compgen -W \"%s\" -- \"$cur\"));;\n",
				(int)strcspn(usage, " "), usage, sub);
	}
	fprintf(f, "\tesac\n\treturn 0\n}\ncomplete -F %s %s\n", fn, p->name);
}
