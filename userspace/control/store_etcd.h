/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * store_etcd.h - internal to store*.c: what store.c calls in the etcd
 * backend (store_etcd.c; the layout in etcd is in store.h). The public
 * functions defined in store_etcd.c (store_key_create(), store_reload(),
 * store_watch_fd()) are declared in store.h. Functions return 0 or -errno
 * with a one-line reason in err.
 */
#ifndef SL_CONTROL_STORE_ETCD_H
#define SL_CONTROL_STORE_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "control/etcd.h"
#include "lib/compile/ids.h"
#include "lib/config/config.h"

struct store;
struct store_opts;

/* PREFIX + name */
void store_etcd_key(const char *prefix, const char *name, char *buf, size_t len);
/* A client of o->etcd_url; prefix: o->prefix (or STORE_PREFIX), ending in '/'. */
int store_etcd_client(struct etcd **e, const struct store_opts *o, char *prefix,
		      size_t plen, char *err, size_t errlen);
/* store_open_opts() with o->etcd_url: the CA, config and ids from etcd,
 * this replica's admin credentials and ca.crt in DIR, the config watched. */
int store_etcd_open(struct store *s, const struct store_opts *o, char *err, size_t errlen);
/* store_save() in etcd: 0 or -errno (-ESTALE: another replica's change). */
int store_etcd_save(struct store *s, const struct sl_config *cfg, const struct sl_ids *ids,
		    uint64_t version, char *err, size_t errlen);

#endif /* SL_CONTROL_STORE_ETCD_H */
