/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compile_traffic.h - a destination's traffic policy (DestinationRule,
 * Service annotations) as the snapshot's "traffic" object
 * (docs/snapshot.md), from compile_traffic.c.
 */
#ifndef SL_COMPILE_TRAFFIC_H
#define SL_COMPILE_TRAFFIC_H

#include <stdint.h>

#include <jansson.h>

#include "lib/compile/compile_ctx.h"

/* The snapshot "traffic" object of destination s (its subset or NULL, its
 * port and protocol): a new reference, json_null() when the destination
 * has no traffic policy, NULL when out of memory. */
json_t *sl_compile_traffic(const struct sl_cctx *x, const struct sl_svc *s, const char *subset,
			   long port, uint8_t proto);

#endif /* SL_COMPILE_TRAFFIC_H */
