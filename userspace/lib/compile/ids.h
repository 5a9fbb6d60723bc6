/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ids.h - numeric identities for SPIFFE IDs, shared by the compiler and
 * the store that persists them. Functions return 0 or -errno (from_json:
 * -EINVAL), a pointer or NULL on ENOMEM.
 */
#ifndef SL_IDS_H
#define SL_IDS_H

#include <stdint.h>

#include <jansson.h>

/* SPIFFE ID -> numeric identity, stable across restarts (persisted by the
 * control plane); numbers are never reused for another SPIFFE ID. */
struct sl_ids;

struct sl_ids *sl_ids_new(void);
void sl_ids_free(struct sl_ids *ids);
/* {"next": N, "ids": {"spiffe://...": N, ...}} */
json_t *sl_ids_to_json(const struct sl_ids *ids);
int sl_ids_from_json(struct sl_ids *ids, const json_t *j);
/* The identity of `spiffe`, allocated (>= 256) if new. 0 on allocation failure. */
uint32_t sl_ids_get(struct sl_ids *ids, const char *spiffe);

#endif /* SL_IDS_H */
