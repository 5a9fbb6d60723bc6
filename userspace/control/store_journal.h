/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * store_journal.h - the state dir's config as a base and a log of the
 * changes since:
 *
 *   DIR/config.json   {"version", "trust_domain", "resources"}: the base
 *   DIR/config.log    one line per save since the base:
 *                     {"version":V,"set":[DOC...],"del":[[KIND,NS,NAME]...]}
 *
 * A save appends the resources it sets and the keys it deletes against the
 * config saved before (resources are shared between configs and never
 * change, so an unchanged one is the same pointer), and fdatasyncs: a
 * change costs what it changes, not what the config holds. Once the log
 * outgrows the base (and JOURNAL_MIN_BYTES), the save writes a new base
 * instead (atomically, with its version) and removes the log.
 *
 * Loading replays, onto the base, each record whose version is above the
 * base's (a crash between a new base and the log's removal leaves records
 * the base already holds). A torn last line (a crash inside an append,
 * which the save never reported done) is cut off with a warning; any other
 * line that does not load refuses the store, as a bad base does.
 *
 * Contract: s->saved is the config the base and log describe; every
 * function returns 0 or -errno with a one-line reason in err.
 */
#ifndef SL_CONTROL_STORE_JOURNAL_H
#define SL_CONTROL_STORE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "control/store.h"

#define JOURNAL_MIN_BYTES (1u << 20)

/* After the base is in s->cfg and s->version (base_bytes: its size, 0 if
 * there is none): replay config.log onto them. */
int journal_load(struct store *s, size_t base_bytes, char *err, size_t errlen);
/* cfg at version, as a record or a new base. */
int journal_save(struct store *s, const struct sl_config *cfg, uint64_t version, char *err,
		 size_t errlen);

#endif /* SL_CONTROL_STORE_JOURNAL_H */
