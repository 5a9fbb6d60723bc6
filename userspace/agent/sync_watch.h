/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sync_watch.h - internal to sync*.c: the watch stream (sync_watch.c),
 * what sync.c calls in it. Each line the control plane pushes is a whole
 * snapshot or a delta, applied through the caller's apply function and
 * answered with an ACK or a NACK on the same connection.
 */
#ifndef SL_AGENT_SYNC_WATCH_H
#define SL_AGENT_SYNC_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/wire/h2.h"

struct sync;

/* Append received bytes to s->in (NUL-terminated). 0, -EMSGSIZE past
 * MSG_MAX, or -ENOMEM. */
int sync_in_add(struct sync *s, const uint8_t *d, size_t n);
/* The GET /v1/watch response's handlers (arg: the struct sync). */
extern const struct h2_resp_ops sync_watch_ops;

/*
 * Apply the text of a whole snapshot through s->apply, indexed first so
 * that the node proxy's text (without services) is written from the index
 * instead of parsed out of the text. 0: applied; *idx its index, items
 * packed (NULL if memory ran out: the next change needs the whole snapshot
 * again), *version its version. -errno: refused with the reason in err;
 * nothing changed, s->idx included.
 */
int sync_apply_whole(struct sync *s, const char *text, size_t len, const char *src,
		     json_t **idx, uint64_t *version, char *err, size_t errlen);

/* malloc_trim() (by sync_handle) once SYNC_TRIM_AFTER_MS pass without
 * another call. */
void sync_trim_later(struct sync *s);

#endif /* SL_AGENT_SYNC_WATCH_H */
