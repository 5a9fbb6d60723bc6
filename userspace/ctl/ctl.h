/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ctl.h - sluicectl's command table and its commands' argument parsing.
 * One file per noun; each command gets argv after its own name and the
 * global options, and parses it with ctl_args over its own cli_opt table
 * (the table the command table names, so that --help, the man page and
 * the completion list exactly what the command accepts).
 */
#ifndef SL_CTL_H
#define SL_CTL_H

#include <limits.h>
#include <stdbool.h>

#include "lib/core/cli.h"

struct ctl_opts {
	char pin_root[PATH_MAX];
	bool json;
};

/* A command's help is its usage, then what it does (lib/core/cli.h says how
 * the two are told apart): the one text --help, the man page and the
 * bash completion (`completion bash`) are made from. */
struct ctl_cmd {
	const char *name;
	int (*fn)(const struct ctl_opts *o, int argc, char **argv);
	const char *help;
	const struct cli_opt *opts;   /* its own options (or NULL: none) */
};

/* The options most commands share, for their tables. */
#define CTL_OPT_OUTPUT(values, help) \
	{ "output", required_argument | CLI_SHORT, 'o', values, help }
#define CTL_OPT_HELP { "help", no_argument | CLI_SHORT, 'h', NULL, "print this help" }

/* A command's own arguments (argv after its name), parsed by its table:
 *
 *	struct ctl_args a;
 *	int c;
 *
 *	ctl_args_init(&a, "sluicectl", CTL_X_HELP, ctl_x_opts, argc, argv);
 *	while ((c = ctl_args_next(&a)) >= 0)
 *		switch (c) { ... }
 *	if (c == CTL_ARGS_EXIT)
 *		return a.status;
 *
 * ctl_args_next() returns each option's val, CTL_ARGS_END after the last
 * (a.pos/a.npos: the other arguments, in order), or CTL_ARGS_EXIT when
 * the command is to exit with a.status: 0 after -h/--help printed the
 * command's help (val 'h'), 2 after an unknown option, a missing value or
 * a value not in the option's list ("table|json") was said, with the
 * usage. Options may come before and after the other arguments. */
struct ctl_args {
	struct cli_getopt g;
	const char *prog;              /* "sluicectl", for --help's usage line */
	const char *help;              /* the command's help string */
	const struct cli_opt *opts;
	int argc;
	char **argv;
	char **pos;
	int npos;
	int status;
	char cmd[64];                  /* the usage's first words: "profile dump" */
};

#define CTL_ARGS_END  (-1)
#define CTL_ARGS_EXIT (-2)

void ctl_args_init(struct ctl_args *a, const char *prog, const char *help,
		   const struct cli_opt *opts, int argc, char **argv);
int ctl_args_next(struct ctl_args *a);
/* The word after the current option if it is not an option itself (an
 * optional value given as the next word: "--control URL"), consumed;
 * else NULL. */
char *ctl_args_next_word(struct ctl_args *a);
/* The arguments of a command whose only options are -o table|json and
 * --help (opts), and that takes no other: -1 to go on (a value, not an
 * error code), o->json set by -o, else the exit status. */
int ctl_args_output(struct ctl_opts *o, const char *help, const struct cli_opt *opts, int argc,
		    char **argv);
/* A usage error: "sluicectl: CMD: " and the message, then the usage, on
 * stderr; returns 2, the exit status. */
int ctl_usage_error(const struct ctl_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Run the command of `table` that `argv[0]` names or uniquely prefixes;
 * `what` names the table in messages. With help (a noun's subcommands):
 * -h or --help instead of a subcommand prints help and opts, and a
 * missing subcommand the same on stderr. */
int ctl_dispatch(const struct ctl_cmd *table, const char *what, const char *help,
		 const struct cli_opt *opts, const struct ctl_opts *o, int argc, char **argv);

/* The node agent's <run dir>/status.json, or NULL after saying why. */
struct json_t;
struct json_t *ctl_agent_status(const struct ctl_opts *o, const char *cmd);

/* Each command: its help (lib/core/cli.h says how it reads), its option
 * table, its function. */
#define CTL_ANALYZE_HELP "analyze -f FILE|DIR... [-o json] [--snapshot NODE]   validate config offline, as the control plane does"
extern const struct cli_opt ctl_analyze_opts[];
int cmd_analyze(const struct ctl_opts *o, int argc, char **argv);

#define CTL_INSPECT_HELP "inspect services|identities|policy [-o table|json]\n" \
			 "                       decode the pinned maps (policy: with drop counters)"
extern const struct cli_opt ctl_inspect_opts[];
int cmd_inspect(const struct ctl_opts *o, int argc, char **argv);

/* fastpath on|off|force|status: the same-node fast path's switch
 * (fastpath.c). */
#define CTL_FASTPATH_HELP "fastpath on|off|force|status [-o table|json]\n" \
			  "                       the same-node fast path's run-time switch"
extern const struct cli_opt ctl_fastpath_opts[];
int cmd_fastpath(const struct ctl_opts *o, int argc, char **argv);

/* status: the agent's (status.c), or with --control the control plane's
 * (control.c); its help and options are in control.h. */
int cmd_status(const struct ctl_opts *o, int argc, char **argv);

#define CTL_OBSERVE_HELP "observe [--pod P] [--service S] [--verdict allowed|denied] [--type T] [-o json]\n" \
			 "                       [--since-start] [--count N] [--timeout S] [--flow-log F]\n" \
			 "                       stream flow events (follows the agent's flow log)"
extern const struct cli_opt ctl_observe_opts[];
int cmd_observe(const struct ctl_opts *o, int argc, char **argv);

#define CTL_PROXY_HELP "proxy certs [-o table|json]   the node proxy's workload certificates (identity, serial, expiry)"
extern const struct cli_opt ctl_proxy_opts[];
int cmd_proxy(const struct ctl_opts *o, int argc, char **argv);

/* profile, install, uninstall, verify-install, manifest: profile.c,
 * install.c, uninstall.c, verify.c, manifest.c; they share
 * profile_args_parse() (profile.h). */
#define CTL_PROFILE_HELP "profile list|dump|keys   installation profiles (dump [NAME]: --set K=V, -f FILE)"
#define CTL_PROFILE_DUMP_HELP "profile dump [NAME] [--set K=V]... [-f FILE]... [-o yaml|json]   a resolved profile"
extern const struct cli_opt ctl_profile_opts[];   /* profile dump's */
int cmd_profile(const struct ctl_opts *o, int argc, char **argv);
#define CTL_INSTALL_HELP "install [--set KEY=VALUE]... [-f OVERLAY]... [--profile NAME] [-y] [--dry-run]\n" \
			 "                       check the node and install a profile (docs/install.md)"
extern const struct cli_opt ctl_install_opts[];
int cmd_install(const struct ctl_opts *o, int argc, char **argv);
#define CTL_UNINSTALL_HELP "uninstall [-y] [--purge] [--set paths.prefix=DIR]   remove what install made"
extern const struct cli_opt ctl_uninstall_opts[];
int cmd_uninstall(const struct ctl_opts *o, int argc, char **argv);
#define CTL_VERIFY_HELP "verify-install [-o json] [--set paths.prefix=DIR]\n" \
			"                       check what install set up, and a live probe"
extern const struct cli_opt ctl_verify_opts[];
int cmd_verify_install(const struct ctl_opts *o, int argc, char **argv);
#define CTL_MANIFEST_HELP "manifest generate [--set KEY=VALUE]... [-f OVERLAY]... [--profile NAME]\n" \
			  "                       Kubernetes YAML for a profile (docs/install.md)"
extern const struct cli_opt ctl_manifest_opts[];
int cmd_manifest(const struct ctl_opts *o, int argc, char **argv);

#define CTL_TOP_HELP "top [--interval S] [--count N] [--since-start] [--set paths.prefix=DIR]\n" \
		     "                       live table of the traffic of this machine's agents (flow logs)"
extern const struct cli_opt ctl_top_opts[];
int cmd_top(const struct ctl_opts *o, int argc, char **argv);

#endif /* SL_CTL_H */
