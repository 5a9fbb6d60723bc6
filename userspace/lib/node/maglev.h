/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * maglev.h - the slot table of a consistent-hash service (Maglev, Eisenbud
 * et al., NSDI 2016, with weights).
 *
 * A SOURCE_HASH service's slots are a lookup table of a prime size: the
 * BPF side hashes the client to an index (bpf/lib/traffic.h), so which
 * backend a client reaches depends only on the table. Each backend fills
 * the table in its own order (a permutation from the hash of its address),
 * taking turns in proportion to its weight. When a backend comes or goes,
 * most entries of the others stay where they were: a client keeps its
 * backend unless its own went away or its entry went to a new one. The
 * table depends on the backends' addresses and weights only, not on their
 * order or ids, so every node and every restart builds the same one.
 */
#ifndef SLUICE_MAGLEV_H
#define SLUICE_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

#include "sluice_lb.h"

struct maglev_backend {
	const struct sl_backend *be;  /* hashed: its address, port and protocol */
	uint32_t weight;              /* 1..SL_WEIGHT_MAX */
};

/* Table size for n backends: a prime with about 64 entries per backend
 * or more, the same for every n up to 15 (1,021 entries), up to 31 (2,039),
 * and so on: a change of the backends that stays within one of these
 * steps moves few clients; one across a step builds the table anew. At
 * most 65,521 entries (1,024 backends). The slots of every service share
 * one map (SL_MAX_SLOTS), hence no larger fixed size. */
uint32_t maglev_size(size_t n);

/* Fill table[0..m-1] with indexes into b[0..n-1] (m from maglev_size(n),
 * n >= 1). 0, or -ENOMEM. */
int maglev_fill(const struct maglev_backend *b, size_t n, uint32_t *table, uint32_t m);

#endif /* SLUICE_MAGLEV_H */
