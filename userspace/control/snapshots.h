/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * snapshots.h - the control plane's per-node state and its snapshots:
 * each node's compiled snapshot (indexed, lib/wire/snapdelta.h), the
 * watch streams it goes down, and installing a newly compiled set of
 * them (pushing a delta, or the whole snapshot, to each stream). The
 * HTTP side of nodes (join, watch, ACK, status) and the config change
 * path are in nodes.c.
 */
#ifndef SL_CONTROL_SNAPSHOTS_H
#define SL_CONTROL_SNAPSHOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "control/server_state.h"
#include "lib/config/diag.h"

struct node_st {
	char name[64];
	uint64_t version;          /* of its current snapshot; 0: none */
	json_t *idx;               /* the snapshot, indexed (lib/wire/snapdelta.h) */
	char *full;                /* its watch message, made when first needed */
	size_t full_len;
	unsigned int watchers;
	bool ever_connected;
	bool has_acked, has_nacked;
	uint64_t acked, nacked;
	char reason[1024];
	time_t since;              /* connected / disconnected at */
	char hbone[64];            /* its proxy's HBONE address, as it reported it */
};

struct watcher {
	struct conn *cn;
	int32_t id;
	struct node_st *node;
	uint64_t have;             /* the version its stream has been sent */
	struct watcher *next;
};

struct compiled {
	char name[64];
	json_t *idx;
};

/* The node called name, created (empty) if `create`; NULL if absent or
 * out of memory. */
struct node_st *node_get(struct server *s, const char *name, bool create);
void compiled_free(struct compiled *cc, size_t n);

/* One node's snapshot from the mesh, indexed, its items shared with the
 * other nodes' through s->pool. 0, -EINVAL (errors in d) or -ENOMEM. */
struct sl_mesh;
int compile_one(struct server *s, const struct sl_mesh *mesh, const char *name,
		uint64_t version, struct compiled *out, struct sl_diags *d);
/* Every node the config places workloads on, and every node known:
 * *out (n of them). model: cfg read already (taken), or NULL. */
struct sl_model;
struct sl_ids;
struct sl_config;
int compile_all(struct server *s, const struct sl_config *cfg, struct sl_model *model,
		struct sl_ids *ids, uint64_t version, struct compiled **out, size_t *nout,
		struct sl_diags *d);

/* n->full: the node's whole snapshot as a watch message. 0 or -ENOMEM. */
int full_line(struct node_st *n);
/* A delta message {"version":V,"base":B,"delta":{...}}, newline-ended,
 * malloc'd (*len its length). NULL on allocation failure. */
char *delta_line(uint64_t version, uint64_t base, json_t *delta, size_t *len);

/* Take the compiled snapshots in (they stay the caller's to free) and
 * push those that changed; the number that changed. */
unsigned int install(struct server *s, struct compiled *cc, size_t n, uint64_t version);

#endif /* SL_CONTROL_SNAPSHOTS_H */
