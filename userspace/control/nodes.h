/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nodes.h - the control plane's side of its nodes: join, one compiled
 * snapshot per node, watch streams, ACK/NACK, and the one path by which
 * the config changes (docs/control-plane.md).
 *
 * Contract: a node's snapshot is compiled from the config and every
 * node's HBONE address; it is pushed down the node's watch streams only
 * when its canonical text changed. A change is compiled for every node
 * and persisted before it is swapped in; on any failure nothing changes.
 */
#ifndef SL_CONTROL_NODES_H
#define SL_CONTROL_NODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/server_state.h"
#include "lib/config/config.h"

/* <state dir>/nodes.json: the HBONE addresses the nodes last reported.
 * 0, or -errno with a message in err. */
int node_addrs_load(struct server *s, char *err, size_t errlen);

/* Compile the stored config for every known node. 0, or -errno with err
 * (-EINVAL: the config does not compile). */
int startup_compile(struct server *s, char *err, size_t errlen);

/* The store says another replica changed the config: reload it and the
 * node addresses, compile, push (logs what fails). */
void node_store_changed(struct server *s);

/* Free every node's state. */
void nodes_free(struct server *s);

/* The one way the config changes: `nc` (checked already) is compiled
 * for every node, persisted, swapped in, pushed, and the request on
 * stream `id` of `c` answered. Takes nc, and model: nc as the check read
 * it (sl_config_check_keep), or NULL; `what` names it in the log. */
struct sl_model;
void config_change(struct server *s, struct h2_conn *c, int32_t id, struct sl_config *nc,
		   struct sl_model *model, struct sl_diags *d, const char *what);

/* Is `uri` the identity of a workload the config places on `node`? */
bool node_runs(struct server *s, const char *node, const char *uri);

/* A watch stream closed: its watcher goes. */
void watch_closed(struct server *s, struct conn *cn, int32_t id);

/* GET /v1/watch: the node's snapshot now and at every change, one JSON line each. */
void h_watch(struct server *s, struct conn *cn, const struct h2_req *r, const char *node);
/* POST /v1/ack {version, status, error}: whether a node applied a snapshot. */
void h_ack(struct server *s, struct conn *cn, const struct h2_req *r, const char *node);
/* GET /v1/status: the config version and every node's sync state. */
void h_status(struct server *s, struct conn *cn, const struct h2_req *r, const char *node);

#endif /* SL_CONTROL_NODES_H */
