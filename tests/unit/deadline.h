/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A time limit for a test that waits on real peers (etcd, sockets).
 *
 * Criterion's own .timeout (its sandbox's watchdog) can leave a 48-byte
 * watchdog entry unfreed in the runner in a parallel run (seen here with
 * libcriterion 2.4.1), and LeakSanitizer reports it against the whole
 * unit-asan suite. An alarm in the test's own process does the same job:
 * SIGALRM's default action ends the worker and Criterion reports the test
 * as crashed by signal 14.
 */
#ifndef SLUICE_TEST_DEADLINE_H
#define SLUICE_TEST_DEADLINE_H

#include <unistd.h>

static inline void test_deadline(unsigned int seconds)
{
	alarm(seconds);
}

#endif
