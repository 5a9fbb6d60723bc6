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
