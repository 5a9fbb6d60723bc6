/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * buf.h - a growable byte queue for the non-blocking protocol code (lib/h2,
 * lib/hbone): bytes are appended at the end and taken from the front
 * (`off`), so a partial send() only advances `off`.
 *
 * Contract: buf_add() compacts and grows as needed (capacity doubles from
 * 4 KiB) and returns 0 or -ENOMEM, leaving `b` as it was;
 * buf_avail() is what is left to take; buf_free() releases the memory and
 * leaves an empty queue that can be used again.
 */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *d;
	size_t off, len, cap;
};

int buf_add(struct buf *b, const void *d, size_t n);
void buf_free(struct buf *b);

static inline size_t buf_avail(const struct buf *b) { return b->len - b->off; }

#endif /* SL_BUF_H */
