/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * control.h - sluicectl's control-plane commands (control.c): apply, get,
 * delete, and status --control. They talk to sluice-control over mutual
 * TLS with the admin credentials (docs/control-plane.md).
 */
#ifndef SL_CTL_CONTROL_H
#define SL_CTL_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl/ctl.h"

/* Where the control plane is when neither --control nor SLUICE_CONTROL
 * says. */
#define CONTROL_DEFAULT_URL "https://127.0.0.1:15012"

/* The commands' help (lib/core/cli.h says how it reads) for sluicectl's
 * command table and their own --help, and their options. */
#define CTL_APPLY_HELP "apply -f FILE...     send Istio/Kubernetes YAML to the control plane (one change)"
#define CTL_GET_HELP                                                                  \
	"get KIND [NAME] [-n NS|-A] [-o table|yaml|json]   resources held by the control plane"
#define CTL_DELETE_HELP "delete -f FILE | delete KIND NAME [-n NS]   remove resources from the control plane"
#define CTL_STATUS_HELP                                                                     \
	"status [-o table|json] [--control [URL]]\n"                                       \
	"                       the agent's kernel, probes (what is off and why), snapshot;\n" \
	"                       --control: the control plane, its agents and their ACKs"
extern const struct cli_opt ctl_apply_opts[];
extern const struct cli_opt ctl_get_opts[];
extern const struct cli_opt ctl_delete_opts[];
extern const struct cli_opt ctl_status_opts[];

/* The options of every command that talks to the control plane: where
 * it is, the admin's credentials, how long to wait. */
enum { CTL_OPT_CONTROL = 0x200, CTL_OPT_CREDENTIALS, CTL_OPT_TIMEOUT };
#define CTL_OPT_CONTROL_URL                                                                  \
	{ "control", optional_argument, CTL_OPT_CONTROL, "URL",                              \
	  "the control plane's API (environment SLUICE_CONTROL, default "                    \
	  CONTROL_DEFAULT_URL "); the URL may also be the next word" }
#define CTL_OPT_CREDENTIALS_DIR                                                              \
	{ "credentials", required_argument, CTL_OPT_CREDENTIALS, "DIR",                      \
	  "the admin's ca.crt, admin.crt and admin.key (environment SLUICE_CREDENTIALS, "     \
	  "default " SL_CONTROL_DIR ")" }
#define CTL_CONNECTION_OPTS                                                                  \
	CTL_OPT_CONTROL_URL, CTL_OPT_CREDENTIALS_DIR,                                        \
	{ "timeout", required_argument, CTL_OPT_TIMEOUT, "SECONDS",                          \
	  "give up on the control plane after this long (default 60)" }

#define CTL_MAX_FILES 64

/* A control-plane command's arguments, parsed by its table (any of the
 * options above, and -f, -n, -A, -o). */
struct ctl_control_args {
	struct ctl_args args;
	const char *url, *creds, *ns, *out;
	const char *files[CTL_MAX_FILES];
	size_t nfiles;
	char **pos;                /* the other arguments */
	int npos;
	bool all_ns, control_flag, creds_flag;
	unsigned int timeout_ms;
};

/* argv (after the command's name) by opts into a: -1 to go on (a value,
 * not an error code), else the command's exit status (0 after --help; 2
 * after a usage error, said). */
int ctl_control_args(struct ctl_control_args *a, const char *help, const struct cli_opt *opts,
		     int argc, char **argv);

int cmd_apply(const struct ctl_opts *o, int argc, char **argv);
int cmd_get(const struct ctl_opts *o, int argc, char **argv);
int cmd_delete(const struct ctl_opts *o, int argc, char **argv);
/* `status` without --control: the agent's status.json, as a table or
 * JSON (status.c); the exit status. */
int ctl_agent_status_print(const struct ctl_opts *o, bool json);

#include <jansson.h>

/* One API call with the admin credentials in creds: the JSON body and the
 * HTTP status, or NULL with the reason in err. */
json_t *ctl_api(const char *url, const char *creds, const char *method, const char *path,
		const char *body, size_t len, int *status, char *err, size_t errlen);

#endif /* SL_CTL_CONTROL_H */
