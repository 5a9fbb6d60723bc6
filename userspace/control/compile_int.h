/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compile_int.h - what compile.c, compile_policy.c and compile_traffic.c share: one node's
 * compilation state. Private to userspace/control/compile*.c (and the unit
 * tests, which check sl_normalise_weights directly).
 */
#ifndef SL_COMPILE_INT_H
#define SL_COMPILE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "control/compile.h"
#include "lib/config/config_model.h"
#include "lib/node/snapshot.h"

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
	const struct sl_resource **vs_of, **dr_of;  /* per m.svc[i] */
	size_t npas, naps;
	const struct sl_resource **pas, **aps;      /* PeerAuthentications, AuthorizationPolicies */
};

/* Weights in 1..SL_WEIGHT_MAX as close as they can be to shares p[] (sum 1). */
void sl_normalise_weights(const double *p, size_t n, uint32_t *out);

/* The snapshot "traffic" object of destination s (its subset or NULL, its
 * port and protocol): a new reference, json_null() when the destination
 * has no traffic policy, NULL when out of memory (compile_traffic.c). */
json_t *sl_compile_traffic(const struct sl_cctx *x, const struct sl_svc *s, const char *subset,
			   long port, uint8_t proto);

/* Allocate CIDR identities for every ipBlock of every AuthorizationPolicy
 * (all nodes get the same ones) and fill x->uni and x->cidrs. 0 or -1. */
int sl_compile_universe(struct sl_cctx *x);
/* The policies[] entries whose destination is a workload on x->node. */
json_t *sl_compile_policies(struct sl_cctx *x);

#endif /* SL_COMPILE_INT_H */
