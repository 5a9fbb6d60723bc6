// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* buf.c - a growable byte queue (buf.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/buf.h"

int buf_add(struct buf *b, const void *d, size_t n)
{
	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *nd;

		if (b->off) {   /* compact first: the room may be at the front */
			memmove(b->d, b->d + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		while (cap < b->len + n)
			cap *= 2;
		if (cap > b->cap) {
			nd = realloc(b->d, cap);
			if (!nd)
				return -ENOMEM;
			b->d = nd;
			b->cap = cap;
		}
	}
	if (n)
		memcpy(b->d + b->len, d, n);
	b->len += n;
	return 0;
}

void buf_free(struct buf *b)
{
	free(b->d);
	memset(b, 0, sizeof(*b));
}
