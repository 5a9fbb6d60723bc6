/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compile_policy.h - AuthorizationPolicy to the kernel's (action, source,
 * destination, proto, port) entries for one node (compile_policy.c), with
 * the CIDR identities its ipBlocks need.
 */
#ifndef SL_COMPILE_POLICY_H
#define SL_COMPILE_POLICY_H

#include <jansson.h>

#include "lib/compile/compile_ctx.h"

/* Allocate CIDR identities for every ipBlock of every AuthorizationPolicy
 * (all nodes get the same ones) and fill x->uni and x->cidrs. 0 or -1. */
int sl_compile_universe(struct sl_cctx *x);
/* The policies[] entries whose destination is a workload on x->node. */
json_t *sl_compile_policies(struct sl_cctx *x);

#endif /* SL_COMPILE_POLICY_H */
