// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The consistent-hash table of a SOURCE_HASH service (lib/node/maglev.h):
 * shares follow the weights, a backend that comes or goes moves few
 * clients of the others, and the table depends on the backends only.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lib/node/maglev.h"

#define NB 12

static struct sl_backend be[NB];

static void backends(void)
{
	for (int i = 0; i < NB; i++) {
		memset(&be[i], 0, sizeof(be[i]));
		be[i].addr[2] = htonl(0xffff);
		be[i].addr[3] = htonl(0x0af40000u + 7 * (uint32_t)i + 1); /* 10.244.0.x */
		be[i].port = htons(8080);
		be[i].proto = 6;
	}
}

/* The table of backends idx[0..n-1] with weights w (NULL: all 1), as
 * indexes into be[] */
static uint32_t *table(const int *idx, size_t n, const uint32_t *w, uint32_t m)
{
	struct maglev_backend mb[NB];
	uint32_t *t = calloc(m, sizeof(*t));

	cr_assert(t);
	for (size_t i = 0; i < n; i++)
		mb[i] = (struct maglev_backend){ .be = &be[idx[i]], .weight = w ? w[i] : 1 };
	cr_assert_eq(maglev_fill(mb, n, t, m), 0);
	for (uint32_t i = 0; i < m; i++) {
		cr_assert_lt(t[i], n, "entry %u empty or out of range: %u", i, t[i]);
		t[i] = (uint32_t)idx[t[i]];
	}
	return t;
}

static bool prime(uint32_t m)
{
	for (uint32_t d = 2; d * d <= m; d++)
		if (m % d == 0)
			return false;
	return m > 1;
}

Test(maglev, size_is_prime_stable_in_steps_and_64_per_backend)
{
	cr_assert_eq(maglev_size(1), 1021);
	cr_assert_eq(maglev_size(15), 1021);
	cr_assert_eq(maglev_size(16), 2039);
	for (size_t n = 1; n <= 1024; n++) {
		uint32_t m = maglev_size(n);

		cr_assert_geq(m, 63 * n, "%zu backends: %u entries", n, m);
		if (n == 1 || maglev_size(n - 1) != m)
			cr_assert(prime(m), "%u is not prime", m);
	}
}

Test(maglev, shares_follow_the_weights, .init = backends)
{
	const int idx[] = { 0, 1, 2, 3, 4 };
	const uint32_t w[] = { 1, 2, 3, 4, 100 };
	uint32_t m = maglev_size(5), count[NB] = {}, *t = table(idx, 5, w, m);

	for (uint32_t i = 0; i < m; i++)
		count[t[i]]++;
	for (int i = 0; i < 5; i++) {
		double want = (double)m * w[i] / 110;

		cr_assert(count[i] >= want - 0.01 * m && count[i] <= want + 0.01 * m,
			  "backend %d (weight %u): %u entries of %u, want about %.0f", i, w[i],
			  count[i], m, want);
	}
	free(t);
}

/* Entries of the backends that stay which point elsewhere afterwards. */
static double moved(const uint32_t *a, const uint32_t *b, uint32_t m, int gone)
{
	uint32_t kept = 0, stay = 0;

	for (uint32_t i = 0; i < m; i++) {
		if ((int)a[i] == gone)
			continue;
		stay++;
		kept += a[i] == b[i];
	}
	return 1.0 - (double)kept / stay;
}

Test(maglev, a_backend_that_goes_moves_few_clients_of_the_others, .init = backends)
{
	const int all[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	const int less[] = { 0, 1, 2, 4, 5, 6, 7, 8, 9 };   /* 3 gone */
	uint32_t m = maglev_size(10), *a = table(all, 10, NULL, m), *b = table(less, 9, NULL, m);
	double f = moved(a, b, m, 3), mod;
	uint32_t stay = 0, mv = 0;

	/* what a modulo over the backends would do: client h on h % n */
	for (uint32_t h = 0; h < 90000; h++) {
		int x = all[h % 10], y = less[h % 9];

		if (x == 3)
			continue;
		stay++;
		mv += x != y;
	}
	mod = (double)mv / stay;
	cr_log_info("moved when 1 of 10 goes: %.1f%% (modulo: %.1f%%)", 100 * f, 100 * mod);
	cr_assert_lt(f, 0.05, "%.1f%% of the other backends' entries moved", 100 * f);
	cr_assert_gt(mod, 0.5, "the modulo baseline should move most clients");
	free(a);
	free(b);
}

Test(maglev, a_backend_that_comes_takes_about_its_share, .init = backends)
{
	const int some[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	const int more[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	uint32_t m = maglev_size(11), *a = table(some, 10, NULL, m), *b = table(more, 11, NULL, m);
	uint32_t changed = 0, taken = 0;

	for (uint32_t i = 0; i < m; i++) {
		changed += a[i] != b[i];
		taken += b[i] == 10;
	}
	/* the newcomer's share is 1/11: little more than that may change */
	cr_assert_lt((double)changed / m, 1.0 / 11 + 0.05, "%u of %u entries changed, %u to the new one",
		     changed, m, taken);
	free(a);
	free(b);
}

Test(maglev, the_order_of_the_backends_does_not_matter, .init = backends)
{
	const int fwd[] = { 0, 1, 2, 3, 4, 5 };
	const int rev[] = { 5, 4, 3, 2, 1, 0 };
	const uint32_t wf[] = { 1, 2, 3, 1, 2, 3 }, wr[] = { 3, 2, 1, 3, 2, 1 };
	uint32_t m = maglev_size(6), *a = table(fwd, 6, wf, m), *b = table(rev, 6, wr, m);

	cr_assert(!memcmp(a, b, m * sizeof(*a)), "the table depends on the backends' order");
	free(a);
	free(b);
}
