/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compile_cache.h - the compiled services of the last compile, kept so that
 * the next one compiles again only the services whose inputs changed.
 *
 * A service's snapshot entries (one per VIP and port) are a function of
 * its inputs: its own Service or ServiceEntry, the VirtualService and
 * DestinationRule bound to it, the workloads its selector picks, and for
 * each destination its VirtualService routes to, that service, its
 * DestinationRule and its workloads. The inputs are held as the stored
 * texts of the config's documents (sl_resource_stored): equal texts are
 * equal documents, and configs share a resource's text, so an unchanged
 * input is the same pointer. Anything else the compiler reads (the trust
 * domain, identities) does not reach a service's entries.
 *
 * The cache belongs to the caller (sluice-control keeps one across
 * changes); sl_compile_mesh() reads and refreshes it. Not thread-safe.
 */
#ifndef SL_COMPILE_CACHE_H
#define SL_COMPILE_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "lib/compile/compile_ctx.h"

struct sl_svc_cache;

struct sl_svc_cache *sl_svc_cache_new(void);
void sl_svc_cache_free(struct sl_svc_cache *c);

/*
 * The services set (snapdelta.h: key -> packed item) of every node is
 * kept here between compiles, and a compile whose services changed little
 * makes its set as a change to the last committed one instead of building
 * 10,000 keys anew: sl_mesh_indexed() then gives that set as it is, the
 * change waiting for sl_svc_cache_commit(). A compile that is never
 * committed (its config was refused, or not saved) leaves the set as it
 * was, and the next compile starts from that.
 */

/* The set the waiting change applies to, or NULL (none waits, or the last
 * compile built its set whole). The caller commits in place only if it
 * holds every other reference to this set, in the snapshots it installs. */
json_t *sl_svc_cache_base(const struct sl_svc_cache *c);

/* The last compile's set becomes the kept one. in_place: the change is
 * made to the base itself (*part: what changed, as a delta's part for
 * that set, json null if nothing did; *items its items); else to a copy
 * (*part NULL), which replaces the base wherever the caller put it. *set:
 * the set now kept (the cache's reference), NULL if no compile waited.
 * 0, or -ENOMEM with the base unchanged and nothing kept. */
int sl_svc_cache_commit(struct sl_svc_cache *c, bool in_place, json_t **set, json_t **part,
			size_t *items);

/* What one compile did with the cache: services taken from it, compiled. */
struct sl_svc_cache_stats {
	size_t hits, misses;
};

/* ---- for the compiler (compile.c) ---- */

/* The inputs of service s as a new array (documents' texts and markers),
 * or NULL (ENOMEM). */
json_t *svc_inputs(const struct sl_cctx *x, const struct sl_svc *s);

/* The entries compiled last time for s with exactly these inputs (packed),
 * and the keys of each (lib/wire/snapdelta.h); NULL if none. *node_dependent: a
 * route of s matched on its source (see compile_ctx.h). *in_set: the kept
 * set (below) has these very items under these keys. */
const json_t *svc_cache_get(struct sl_svc_cache *c, const struct sl_svc *s,
			    const json_t *inputs, const json_t **keys, bool *node_dependent,
			    bool *in_set);

/* Remember s's entries `items` (their keys computed here) for `inputs`,
 * packed (snapdelta.h: the cache holds each service's entries as text,
 * a tenth of the memory of the objects); *keys and *packed get them, the
 * cache's own. 0 or -ENOMEM. */
int svc_cache_put(struct sl_svc_cache *c, const struct sl_svc *s, json_t *inputs,
		  const json_t *items, bool node_dependent, const json_t **keys,
		  const json_t **packed);

/* Start a compile (every entry unused) / end it: drop what it did not use. */
void svc_cache_begin(struct sl_svc_cache *c);
void svc_cache_end(struct sl_svc_cache *c, struct sl_svc_cache_stats *st);

/* Between begin and end: one item of the compile's services set, under
 * `key` (the cache's own string, from svc_cache_get/put); in_set as
 * svc_cache_get said. 0 or -ENOMEM. */
int svc_set_add(struct sl_svc_cache *c, const char *key, json_t *item, bool in_set);
/* After end: the compile's services set (a new reference), or NULL
 * (ENOMEM): the base, to be changed by sl_svc_cache_commit(), or one
 * built whole. */
json_t *svc_set_done(struct sl_svc_cache *c);

#endif /* SL_COMPILE_CACHE_H */
