/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compile_ctx.h - one node's compilation state, shared by the compiler's
 * parts: compile.c fills it and calls compile_universe.c (which adds
 * the identity universe and the CIDR identities), compile_policy.c and
 * compile_traffic.c, which read it. Only a data definition: the parts
 * call each other through their own headers.
 */
#ifndef SL_COMPILE_CTX_H
#define SL_COMPILE_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/compile/ids.h"
#include "lib/config/config_model.h"
#include "sluice_policy.h"

/* An identity the policy compiler can name as a source. */
struct sl_idinfo {
	uint32_t id;
	const char *principal;    /* "TD/ns/NS/sa/SA" for workloads, else NULL */
	const char *ns;           /* workloads, else NULL */
	bool cidr;                /* a CIDR identity */
	struct sl_ipcache_key key;  /* cidr: the prefix */
};

struct sl_cctx {
	const struct sl_config *c;
	struct sl_model m;
	struct sl_ids *ids;
	const char *td, *node;
	struct sl_diags *d;
	uint32_t *wl_id;          /* identity of m.wl[i] */
	char **principals;        /* "TD/ns/NS/sa/SA" of m.wl[i] */
	size_t nuni;
	struct sl_idinfo *uni;    /* sorted by id: reserved, workloads, CIDRs */
	json_t *cidrs;            /* the snapshot's cidrs[] */
	size_t npas, naps;
	const struct sl_resource **pas, **aps;      /* PeerAuthentications, AuthorizationPolicies */
	bool node_dependent;      /* a route matched on its source: services differ by node */
};

#endif /* SL_COMPILE_CTX_H */
