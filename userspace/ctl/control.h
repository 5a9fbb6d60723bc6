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
	"status [--control [URL]]\n"                                                       \
	"                       the agent's kernel, probes (what is off and why), snapshot;\n" \
	"                       --control: the control plane, its agents and their ACKs"
extern const struct cli_opt ctl_apply_opts[];
extern const struct cli_opt ctl_get_opts[];
extern const struct cli_opt ctl_delete_opts[];
extern const struct cli_opt ctl_control_status_opts[];

int cmd_apply(const struct ctl_opts *o, int argc, char **argv);
int cmd_get(const struct ctl_opts *o, int argc, char **argv);
int cmd_delete(const struct ctl_opts *o, int argc, char **argv);
/* `status --control [URL]`: the control plane's view instead of the agent's. */
bool ctl_control_args(int argc, char **argv);
int cmd_control_status(const struct ctl_opts *o, int argc, char **argv);

#include <jansson.h>

/* One API call with the admin credentials in creds: the JSON body and the
 * HTTP status, or NULL with the reason in err. */
json_t *ctl_api(const char *url, const char *creds, const char *method, const char *path,
		const char *body, size_t len, int *status, char *err, size_t errlen);

#endif /* SL_CTL_CONTROL_H */
