/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compile.h - from a validated config (lib/config/config.h) to one snapshot per
 * node (docs/snapshot.md), the Pilot role: identities, Service selectors
 * resolved to endpoints, VirtualService weights, AuthorizationPolicy
 * compiled to the kernel's (action, source, destination, proto, port)
 * entries with Istio's evaluation order.
 *
 * A node's snapshot holds only what that node needs: every service (any pod
 * may connect to any VIP), every workload's address and identity (to know
 * peers) but netns/interface only for its own workloads, and the policy
 * entries a decision on this node can need: every entry whose destination
 * is one of its workloads (tc decides there), and for destinations on other
 * nodes the entries whose source is "*" or one of its workloads (connect()
 * decides for its own clients).
 */
#ifndef SL_COMPILE_H
#define SL_COMPILE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/compile/ids.h"
#include "lib/config/config.h"

/* Sorted, unique names of the nodes that run at least one workload. */
json_t *sl_compile_nodes(const struct sl_config *c);

/*
 * The snapshot for `node` with the given version, or NULL with errors in d
 * (a config that validates but cannot be compiled, e.g. more slots than the
 * maps hold). trust_domain is e.g. "cluster.local".
 */
json_t *sl_compile_node(const struct sl_config *c, struct sl_ids *ids,
			const char *trust_domain, const char *node,
			uint64_t version, struct sl_diags *d);

/*
 * The same in two steps, for many nodes: sl_compile_mesh() does what every
 * node's snapshot shares (the model, identities, and the services, unless a
 * route matches on its source and so differs by node) once, and
 * sl_compile_node_in() each node's part. cache (compile_cache.h; NULL:
 * none) holds the services compiled last time: only those whose inputs
 * changed are compiled again, and a node's services are packed items
 * (lib/wire/snapdelta.h: each its compact text). The mesh refers to c and
 * ids, which must outlive it. NULL with errors in d.
 */
struct sl_mesh;
struct sl_svc_cache;
struct sl_mesh *sl_compile_mesh(const struct sl_config *c, struct sl_ids *ids,
				const char *trust_domain, struct sl_svc_cache *cache,
				struct sl_diags *d);
/* sl_compile_mesh() of c read as `model` (sl_config_check_keep() of this
 * very c; taken, freed with the mesh or on failure; NULL: read c now). */
struct sl_model;
struct sl_mesh *sl_compile_mesh_with(const struct sl_config *c, struct sl_model *model,
				     struct sl_ids *ids, const char *trust_domain,
				     struct sl_svc_cache *cache, struct sl_diags *d);
json_t *sl_compile_node_in(const struct sl_mesh *m, const char *node, uint64_t version,
			   struct sl_diags *d);
/* The sections every node shares, already indexed (snapdelta.h's
 * sd_index_with()), or NULL. */
const json_t *sl_mesh_indexed(const struct sl_mesh *m);
/* sl_compile_nodes() of the mesh's config, from the model it built. */
json_t *sl_mesh_nodes(const struct sl_mesh *m);
/* Services the last sl_compile_mesh() took from the cache, and compiled. */
void sl_mesh_cache_stats(const struct sl_mesh *m, size_t *hits, size_t *misses);
void sl_mesh_free(struct sl_mesh *m);


#endif
