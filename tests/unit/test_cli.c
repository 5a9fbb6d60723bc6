// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* lib/core/cli: getopt arguments, --help, the man page and bash completion
 * from one table; sluicectl's commands parsing their arguments by theirs
 * (ctl/ctl.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "ctl/ctl.h"
#include "lib/core/cli.h"

static const struct cli_opt opts[] = {
	{ "node", required_argument, 'n', "NAME", "this node's name" },
	{ "pin-root", required_argument, 'p', "DIR", "where the maps are pinned" },
	{ "output", required_argument | CLI_SHORT, 'o', "table|json", "table or json" },
	{ "once", no_argument, '1', NULL, ".starts with a dot, has a \\ backslash" },
	{ "quote", no_argument, 'q', NULL, "'starts with a quote, wraps: "
	  "0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789" },
	{ "help", no_argument | CLI_SHORT, 'h', NULL, "print this help" },
	{ "man", no_argument, 'M', NULL, NULL },
	{}
};

static const struct cli_opt get_opts[] = {
	{ "namespace", required_argument | CLI_SHORT, 'n', "NS", "the namespace" },
	{ "output", required_argument | CLI_SHORT, 'o', "table|yaml|json", "the format" },
	{ "credentials", required_argument, 'C', "DIR", "the admin's" },
	{ "hidden", no_argument, 'H', NULL, NULL },
	{}
};

static const struct cli_prog prog = {
	.name = "prog",
	.section = 8,
	.summary = "a test program",
	.usage = (const char *const[]){ "--node NAME [options]", "COMMAND ...", NULL },
	.description = "First paragraph.\n\n.Second paragraph, which starts with a dot.",
	.opts = opts,
	.cmds_title = "commands",
	.cmds = (const char *const[]){
		"fastpath on|off|force   the switch",
		"observe [--pod P]\n"
		"                       [--count N]\n"
		"                       stream flow events",
		"get KIND [NAME]   resources",
		NULL },
	.cmd_opts = (const struct cli_opt *const[]){ NULL, NULL, get_opts },
};

typedef void (*print_fn)(FILE *f, const struct cli_prog *p);

static char *render(print_fn fn)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	fn(f, &prog);
	fclose(f);
	return buf;
}

/* The text starts a line of s. */
static bool starts_line(const char *s, const char *text)
{
	size_t n = strlen(text);

	for (const char *l = s; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, text, n) == 0)
			return true;
	return false;
}

Test(cli, getopt_from_table)
{
	char *argv[] = { "prog", "--node", "n1", "-o", "json", "--man", "-h", "rest", NULL };
	struct cli_getopt g;
	int got[8], n = 0, c;

	cr_assert_eq(cli_getopt_init(&g, opts, "+"), 0);
	cr_assert_str_eq(g.so, "+o:h");
	optind = 0;
	opterr = 0;
	while ((c = cli_getopt(&g, 8, argv)) != -1 && n < 8)
		got[n++] = c;
	cr_assert_eq(n, 4);
	cr_assert_eq(got[0], 'n');
	cr_assert_eq(got[1], 'o');
	cr_assert_eq(got[2], 'M');
	cr_assert_eq(got[3], 'h');
	cr_assert_str_eq(argv[optind], "rest");
}

Test(cli, getopt_table_too_long)
{
	static struct cli_opt big[CLI_MAX_OPTS + 2];
	struct cli_getopt g;

	for (int i = 0; i < CLI_MAX_OPTS + 1; i++)
		big[i] = (struct cli_opt){ "x", no_argument, 'x', NULL, "x" };
	cr_assert_eq(cli_getopt_init(&g, big, ""), -E2BIG);
}

Test(cli, help_lists_every_visible_option)
{
	char *h = render(cli_help);

	cr_assert(starts_line(h, "usage: prog --node NAME [options]"), "%s", h);
	cr_assert(starts_line(h, "       prog COMMAND ..."), "%s", h);
	for (const struct cli_opt *o = opts; o->name; o++) {
		char flag[64], help[16];

		snprintf(flag, sizeof(flag), "--%s", o->name);
		snprintf(help, sizeof(help), "%s", o->help ?: "");
		if (o->help)
			cr_assert(strstr(h, flag) && strstr(h, help), "%s missing:\n%s", flag, h);
		else
			cr_assert_null(strstr(h, flag), "hidden %s shown:\n%s", flag, h);
	}
	cr_assert(strstr(h, "  -o, --output table|json"), "%s", h);
	cr_assert(strstr(h, "\ncommands:\n  fastpath on|off|force   the switch\n"), "%s", h);
	/* wrapped to 80 columns */
	for (const char *l = h; *l; l += strcspn(l, "\n") + 1)
		cr_assert_leq(strcspn(l, "\n"), 79, "line too long: %.*s", (int)strcspn(l, "\n"), l);
	cr_assert(strstr(h, "0123456789\n                       0123456789"), "not wrapped:\n%s", h);
	free(h);
}

Test(cli, man_has_every_option_and_escapes_roff)
{
	char *m = render(cli_man);

	cr_assert(starts_line(m, ".TH PROG 8 "), "%s", m);
	cr_assert(strstr(m, "\n.SH NAME\nprog \\- a test program\n"), "%s", m);
	cr_assert(strstr(m, "\\fB\\-\\-node\\fR \\fINAME\\fR\n"), "%s", m);
	cr_assert(strstr(m, "\\fB\\-\\-pin\\-root\\fR \\fIDIR\\fR\n"), "%s", m);
	cr_assert(strstr(m, "\\fB\\-o\\fR, \\fB\\-\\-output\\fR \\fItable|json\\fR\n"), "%s", m);
	cr_assert(strstr(m, "\\fB\\-\\-once\\fR\n"), "%s", m);
	cr_assert(strstr(m, "\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n"), "%s", m);
	cr_assert_null(strstr(m, "\\-\\-man"), "the hidden option is documented:\n%s", m);
	/* a leading '.' or '\'' is text, not a request; '\' is printed */
	cr_assert(starts_line(m, "\\&.starts with a dot, has a \\e backslash"), "%s", m);
	cr_assert(starts_line(m, "\\&'starts with a quote"), "%s", m);
	cr_assert(starts_line(m, "\\&.Second paragraph"), "%s", m);
	cr_assert_not(starts_line(m, ".starts"), "%s", m);
	cr_assert_not(starts_line(m, ".Second"), "%s", m);
	cr_assert_not(starts_line(m, "'"), "%s", m);
	/* commands: usage as the tag, its continuation joined, the rest below */
	cr_assert(strstr(m, ".SH COMMANDS\n.TP\n\\fBfastpath\\fR on|off|force\nthe switch\n"), "%s", m);
	cr_assert(strstr(m, "\\fBobserve\\fR [\\-\\-pod P] [\\-\\-count N]\nstream flow events\n"),
		  "%s", m);
	free(m);
}

Test(cli, cmd_split)
{
	char u[128], w[128];

	cli_cmd_split("status [--control [URL]]\n      the agent's;\n      --control: the plane",
		      u, sizeof(u), w, sizeof(w));
	cr_assert_str_eq(u, "status [--control [URL]]");
	cr_assert_str_eq(w, "the agent's; --control: the plane");
	cli_cmd_split("version", u, sizeof(u), w, sizeof(w));
	cr_assert_str_eq(u, "version");
	cr_assert_str_eq(w, "");
	cli_cmd_split("apply -f FILE...     send  it", u, 8, w, sizeof(w));
	cr_assert_str_eq(u, "apply -");
	cr_assert_str_eq(w, "send it");
}

Test(cli, bash_completion_words)
{
	char *b = render(cli_bash);

	cr_assert(strstr(b, "_prog()\n"), "%s", b);
	cr_assert(strstr(b, "complete -F _prog prog\n"), "%s", b);
	cr_assert(strstr(b, "compgen -W \"--node --pin-root -o --output --once --quote -h --help "
			    "fastpath observe get\""), "%s", b);
	cr_assert(strstr(b, "\tfastpath)\n\t\tCOMPREPLY=($(compgen -W \"on off force\""), "%s", b);
	cr_assert_null(strstr(b, "\tget)\n\t\tCOMPREPLY"), "KIND is not a subcommand:\n%s", b);
	cr_assert_null(strstr(b, "\tobserve)"), "an option is not a subcommand:\n%s", b);
	cr_assert(strstr(b, "--pin-root)\n\t\tCOMPREPLY=($(compgen -d"), "%s", b);
	cr_assert(strstr(b, "-o|--output)\n\t\tCOMPREPLY=($(compgen -W \"table json\""), "%s", b);
	cr_assert(strstr(b, "--node|--pin-root|-o|--output) ((i++));;"), "%s", b);
	free(b);
}

Test(cli, command_options_in_man_page_completion_and_command_help)
{
	char *m = render(cli_man), *b = render(cli_bash), *h = NULL;
	size_t len = 0;
	FILE *f;

	/* man: under the command, indented; hidden ones left out */
	cr_assert(strstr(m, "\\fBget\\fR KIND [NAME]\nresources\n.RS\n.TP\n"
			    "\\fB\\-n\\fR, \\fB\\-\\-namespace\\fR \\fINS\\fR\nthe namespace\n"), "%s", m);
	cr_assert(strstr(m, "\\fB\\-\\-credentials\\fR \\fIDIR\\fR\nthe admin's\n.RE\n"), "%s", m);
	cr_assert_null(strstr(m, "hidden"), "%s", m);
	cr_assert_null(strstr(m, "the switch\n.RS"), "a command without options got some:\n%s", m);
	/* completion: after get, its options' values and, for a '-', its options */
	cr_assert(strstr(b, "\tcase $cmd in\n\tget)\n\t\tcase $prev in\n"
			    "\t\t-n|--namespace)\n\t\t\treturn 0;;\n"
			    "\t\t-o|--output)\n\t\t\tCOMPREPLY=($(compgen -W \"table yaml json\""), "%s", b);
	cr_assert(strstr(b, "\t\t--credentials)\n\t\t\tCOMPREPLY=($(compgen -d"), "%s", b);
	cr_assert(strstr(b, "if [[ $cur == -* ]]; then\n\t\t\tCOMPREPLY=($(compgen -W "
			    "\"-n --namespace -o --output --credentials\" -- \"$cur\"))"), "%s", b);
	cr_assert_null(strstr(b, "\tfastpath)\n\t\tcase $prev"), "%s", b);
	/* the command's own --help */
	f = open_memstream(&h, &len);
	cr_assert_not_null(f);
	cli_cmd_help(f, "prog", prog.cmds[2], get_opts);
	fclose(f);
	cr_assert(starts_line(h, "usage: prog get KIND [NAME]"), "%s", h);
	cr_assert(starts_line(h, "resources"), "%s", h);
	cr_assert(strstr(h, "  -o, --output table|yaml|json  the format\n"), "%s", h);
	cr_assert_null(strstr(h, "hidden"), "%s", h);
	free(h);
	free(m);
	free(b);
}

/* ---- a sluicectl command's own arguments (ctl_args) --------------------- */

static const struct cli_opt cmd_opts[] = {
	{ "filename", required_argument | CLI_SHORT, 'f', "FILE", "a file" },
	CTL_OPT_OUTPUT("table|json", "the format"),
	{ "control", optional_argument, 'C', "URL", "where" },
	{ "type", required_argument, 't', "TYPE", "free text, not a list" },
	CTL_OPT_HELP,
	{}
};
#define CMD_HELP "profile dump [NAME] [-f FILE]   a test command"

/* The commands' help and usage errors out of the test's log. */
static void quiet(void)
{
	cr_redirect_stdout();
	cr_redirect_stderr();
}

/* Run ctl_args over words (argv after the command's name): the options
 * seen as "val=arg " into seen, the positional ones into pos; returns
 * the last ctl_args_next() and a. */
static int run_args(struct ctl_args *a, char **words, int n, char *seen, size_t len)
{
	int c;

	seen[0] = '\0';
	ctl_args_init(a, "sluicectl", CMD_HELP, cmd_opts, n, words);
	while ((c = ctl_args_next(a)) >= 0) {
		char *next = c == 'C' && !optarg ? ctl_args_next_word(a) : NULL;

		snprintf(seen + strlen(seen), len - strlen(seen), "%c=%s ", c,
			 optarg ?: next ?: "-");
	}
	return c;
}

Test(ctl_args, options_before_and_after_the_arguments, .init = quiet)
{
	char *w[] = { "cmd", "-f", "a.yaml", "NAME", "--output=json", "--control", "URL",
		      "--type", "whatever", "-f", "b", "LAST", NULL };
	struct ctl_args a;
	char seen[256];

	cr_assert_eq(run_args(&a, w + 1, 11, seen, sizeof(seen)), CTL_ARGS_END);
	cr_assert_str_eq(seen, "f=a.yaml o=json C=URL t=whatever f=b ");
	cr_assert_eq(a.npos, 2);
	cr_assert_str_eq(a.pos[0], "NAME");
	cr_assert_str_eq(a.pos[1], "LAST");
	cr_assert_str_eq(a.cmd, "profile dump", "the usage's command words: '%s'", a.cmd);
}

Test(ctl_args, control_takes_no_option_as_its_url, .init = quiet)
{
	char *w[] = { "cmd", "--control", "-o", "table", NULL };
	struct ctl_args a;
	char seen[256];

	cr_assert_eq(run_args(&a, w + 1, 3, seen, sizeof(seen)), CTL_ARGS_END);
	cr_assert_str_eq(seen, "C=- o=table ");
	cr_assert_eq(a.npos, 0);
}

Test(ctl_args, help_exits_0_and_lists_the_options, .init = quiet)
{
	char *w[] = { "cmd", "NAME", "--help", NULL };
	struct ctl_args a;
	char seen[256];

	cr_assert_eq(run_args(&a, w + 1, 2, seen, sizeof(seen)), CTL_ARGS_EXIT);
	cr_assert_eq(a.status, 0);
	fflush(stdout);
	{
		char *want = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&want, &len);

		cli_cmd_help(f, "sluicectl", CMD_HELP, cmd_opts);
		fclose(f);
		cr_assert(strstr(want, "  -o, --output table|json  the format\n"), "%s", want);
		cr_assert_stdout_eq_str(want);
		free(want);
	}
}

Test(ctl_args, usage_errors_exit_2, .init = quiet)
{
	char *bad[][3] = {
		{ "--bogus", NULL },		/* unknown */
		{ "-f", NULL },			/* missing value */
		{ "-o", "yaml", NULL },		/* not in the list */
		{ "--output=", NULL },		/* empty is not in it either */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *w[4] = { "cmd", bad[i][0], bad[i][1], NULL };
		struct ctl_args a;
		char seen[256];
		int n = bad[i][1] ? 2 : 1;

		cr_assert_eq(run_args(&a, w + 1, n, seen, sizeof(seen)), CTL_ARGS_EXIT, "%s", bad[i][0]);
		cr_assert_eq(a.status, 2, "%s: status %d", bad[i][0], a.status);
	}
}
