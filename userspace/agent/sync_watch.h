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

#include "lib/wire/h2.h"

struct sync;

/* Append received bytes to s->in (NUL-terminated). 0, -EMSGSIZE past
 * MSG_MAX, or -ENOMEM. */
int sync_in_add(struct sync *s, const uint8_t *d, size_t n);
/* The GET /v1/watch response's handlers (arg: the struct sync). */
extern const struct h2_resp_ops sync_watch_ops;

#endif /* SL_AGENT_SYNC_WATCH_H */
