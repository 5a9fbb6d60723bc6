/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ctl.h - sluicectl's command table. One file per noun; each command gets
 * argv after its own name and the global options.
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
};

/* Run the command of `table` that `argv[0]` names or uniquely prefixes. */
int ctl_dispatch(const struct ctl_cmd *table, const char *what,
		 const struct ctl_opts *o, int argc, char **argv);

/* The node agent's <run dir>/status.json, or NULL after saying why. */
struct json_t;
struct json_t *ctl_agent_status(const struct ctl_opts *o, const char *cmd);

int cmd_inspect(const struct ctl_opts *o, int argc, char **argv);
/* fastpath on|off|force|status: the same-node fast path's switch
 * (fastpath.c); its help and options, for the command table. */
#define CTL_FASTPATH_HELP "fastpath on|off|force|status [-o table|json]\n" \
			  "                       the same-node fast path's run-time switch"
extern const struct cli_opt ctl_fastpath_opts[];
int cmd_fastpath(const struct ctl_opts *o, int argc, char **argv);
int cmd_status(const struct ctl_opts *o, int argc, char **argv);
int cmd_observe(const struct ctl_opts *o, int argc, char **argv);
int cmd_analyze(const struct ctl_opts *o, int argc, char **argv);
int cmd_proxy(const struct ctl_opts *o, int argc, char **argv);
int cmd_profile(const struct ctl_opts *o, int argc, char **argv);
int cmd_install(const struct ctl_opts *o, int argc, char **argv);
int cmd_uninstall(const struct ctl_opts *o, int argc, char **argv);
int cmd_verify_install(const struct ctl_opts *o, int argc, char **argv);
int cmd_top(const struct ctl_opts *o, int argc, char **argv);
int cmd_manifest(const struct ctl_opts *o, int argc, char **argv);

#endif /* SL_CTL_H */
