/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compile_universe.h - the identities the policy compiler may name as
 * sources (x->uni, sorted by id, one entry per identity) and the
 * snapshot's cidrs[]; compile.c builds it before compiling policies.
 */
#ifndef SL_COMPILE_UNIVERSE_H
#define SL_COMPILE_UNIVERSE_H

#include "lib/compile/compile_ctx.h"

/* Allocate CIDR identities for every ipBlock of every AuthorizationPolicy
 * (all nodes get the same ones) and fill x->uni and x->cidrs. 0 or -ENOMEM. */
int sl_compile_universe(struct sl_cctx *x);

#endif /* SL_COMPILE_UNIVERSE_H */
