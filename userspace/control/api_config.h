/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * api_config.h - the config API's route handlers (docs/control-plane.md).
 *
 * Contract: a request that would leave the config invalid is refused
 * (400, 404, 422) and changes nothing; a valid one goes through
 * config_change() (nodes.h) and is answered with the new version.
 */
#ifndef SL_CONTROL_API_CONFIG_H
#define SL_CONTROL_API_CONFIG_H

#include "control/server_state.h"

/* POST /v1/apply: resources added or replaced, checked, compiled and pushed. */
void h_apply(struct server *s, struct conn *cn, const struct h2_req *r, const char *node);
/* POST /v1/delete: resources removed, by ?kind&name or by a file naming them. */
void h_delete(struct server *s, struct conn *cn, const struct h2_req *r, const char *node);
/* GET /v1/resources: the stored resources, filtered by kind, namespace, name. */
void h_resources(struct server *s, struct conn *cn, const struct h2_req *r, const char *node);
/* POST /v1/workloads: a node registers or deregisters a container (register.h). */
void h_workloads(struct server *s, struct conn *cn, const struct h2_req *r, const char *node);

#endif /* SL_CONTROL_API_CONFIG_H */
