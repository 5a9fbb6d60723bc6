/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compile_policy.h - AuthorizationPolicy to the kernel's (action, source,
 * destination, proto, port) entries for one node (compile_policy.c), over
 * the identities compile_universe.h collected into x->uni.
 */
#ifndef SL_COMPILE_POLICY_H
#define SL_COMPILE_POLICY_H

#include <jansson.h>

#include "lib/compile/compile_ctx.h"

/* The policies[] entries whose destination is a workload on x->node. */
json_t *sl_compile_policies(struct sl_cctx *x);

#endif /* SL_COMPILE_POLICY_H */
