// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* maglev.c - the slot table of a consistent-hash service (maglev.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "maglev.h"

#define EMPTY UINT32_MAX

uint32_t maglev_size(size_t n)
{
	static const uint32_t primes[] = { 1021, 2039, 4093, 8191, 16381, 32749, 65521 };
	size_t i;

	for (i = 0; i < sizeof(primes) / sizeof(primes[0]) - 1; i++)
		if (primes[i] / 64 >= n)
			break;
	return primes[i];
}

/* FNV-1a over the backend's bytes, then splitmix64's finalizer */
static uint64_t be_hash(const struct sl_backend *be, uint64_t seed)
{
	const unsigned char *p = (const unsigned char *)be;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < sizeof(*be); i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

struct turn {
	const struct maglev_backend *b;
	uint32_t idx;     /* in the caller's array */
	uint32_t offset;  /* first preferred entry */
	uint32_t skip;    /* step through the table: 1..m-1, coprime with m */
	uint32_t next;    /* how far along its permutation */
	uint32_t credit;  /* weight not yet spent on turns */
};

static int cmp_turn(const void *a, const void *b)
{
	const struct turn *x = a, *y = b;

	return memcmp(x->b->be, y->b->be, sizeof(*x->b->be));
}

int maglev_fill(const struct maglev_backend *b, size_t n, uint32_t *table, uint32_t m)
{
	struct turn *t = calloc(n ?: 1, sizeof(*t));
	uint32_t wmax = 1, filled = 0;

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		t[i].b = &b[i];
		t[i].idx = (uint32_t)i;
		t[i].offset = (uint32_t)(be_hash(b[i].be, 0) % m);
		t[i].skip = (uint32_t)(be_hash(b[i].be, 0x5bd1e995) % (m - 1)) + 1;
		if (b[i].weight > wmax)
			wmax = b[i].weight;
	}
	/* the turns' order decides contested entries: make it the addresses' */
	qsort(t, n, sizeof(*t), cmp_turn);
	for (uint32_t i = 0; i < m; i++)
		table[i] = EMPTY;
	/* a round gives each backend weight/wmax turns (the heaviest one
	 * exactly one), so shares follow the weights; m is prime and each
	 * skip below it, so a permutation reaches every entry */
	while (n && filled < m) {
		for (size_t i = 0; i < n && filled < m; i++) {
			t[i].credit += t[i].b->weight ?: 1;
			while (t[i].credit >= wmax && filled < m) {
				uint32_t c;

				t[i].credit -= wmax;
				do {
					c = (uint32_t)((t[i].offset + (uint64_t)t[i].next * t[i].skip) % m);
					t[i].next++;
				} while (table[c] != EMPTY);
				table[c] = t[i].idx;
				filled++;
			}
		}
	}
	free(t);
	return 0;
}
