/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compile_services.h - the services part of the per-node compiler: each
 * VIP and port of every service of x's model as a snapshot entry
 * (docs/snapshot.md), appended to `out`. 0, or -errno with errors in
 * x->d (a route that names nothing, a source match that splits a node's
 * workloads, more backends than a service may have). Sets
 * x->node_dependent when a route matched on its source.
 */
#ifndef SL_COMPILE_SERVICES_H
#define SL_COMPILE_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/compile/compile_ctx.h"

int sl_compile_services(struct sl_cctx *x, json_t *out);

/* Weights in 1..SL_WEIGHT_MAX as close as they can be to shares p[] (sum 1)
 * (exposed for the unit tests). */
void sl_normalise_weights(const double *p, size_t n, uint32_t *out);

#endif /* SL_COMPILE_SERVICES_H */
