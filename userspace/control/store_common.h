/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * store_common.h - internal to store*.c: what both backends of the store
 * (the state dir in store.c, etcd in store_etcd.c) use. The public function
 * defined in store_common.c, store_role_uri(), is declared in store.h.
 * Functions return 0 or -errno with a one-line reason in err.
 */
#ifndef SL_CONTROL_STORE_COMMON_H
#define SL_CONTROL_STORE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/config/config.h"

struct store;

/* DIR/name */
void store_path_of(const struct store *s, const char *name, char *buf, size_t len);
/* Trust domains: 1..253 of [a-z0-9.-_]. */
bool store_td_ok(const char *td);
/* admin.crt/admin.key: kept while signed by our CA and valid for 30 more days. */
int store_admin_creds(struct store *s, char *err, size_t errlen);
/* config.json's content j (from `where`) into cfg and *version; s->td
 * from it (td, if given, must be the same). */
int store_config_from_json(struct store *s, struct sl_config *cfg, uint64_t *version,
			   json_t *j, const char *where, const char *td, char *err, size_t errlen);

/* What config.json (and etcd's PREFIX/config) hold for cfg at version:
 * {"version":V,"trust_domain":TD,"resources":[...]}, one document a line
 * (its stored text), malloc'd. NULL on allocation failure. */
char *store_config_text(const struct store *s, const struct sl_config *cfg, uint64_t version,
			size_t *len);

#endif /* SL_CONTROL_STORE_COMMON_H */
