/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dpt.h - what the datapath tests (test_sock.c, test_lbmap.c) share: the
 * agent's whole datapath (agent/datapath.h) loaded into a cgroup and pin
 * directory of the test's own, the test process in a pod cgroup below it
 * and in a fresh network namespace (loopback only), and the sockets the
 * tests talk through. Backends are listeners on 127.0.0.x and ::1; a
 * connect() completes against the listen backlog, so which backend got a
 * connection is read with a non-blocking accept().
 *
 * Criterion runs each test in its own process. dpt_setup() asserts
 * nothing once the cgroups exist (Criterion skips .fini when .init fails,
 * which would leak them): tests check the datapath through
 * DPT_REQUIRE_ROOT(). dpt_teardown() removes the cgroups and the pins
 * whatever the outcome.
 */
#ifndef TESTS_BPF_DPT_H
#define TESTS_BPF_DPT_H

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "agent/datapath.h"

struct dpt {
	bool ready;
	int open_rc;      /* datapath_open() in setup; tests check it */
	char cgroot[PATH_MAX];
	char cg[PATH_MAX];
	char pod[PATH_MAX];
	char pin[PATH_MAX];
	struct datapath dp;
};

extern struct dpt dpt;

void dpt_setup(void);
void dpt_teardown(void);

/* Skip without root; fail if the datapath did not load. */
#define DPT_REQUIRE_ROOT()                                                  \
	do {                                                                \
		if (geteuid() != 0)                                         \
			cr_skip_test("needs root (BPF, cgroups, netns)");   \
		cr_assert_eq(dpt.open_rc, 0, "datapath_open: %s",           \
			     strerror(-dpt.open_rc));                       \
	} while (0)

/* Parse the snapshot and apply it to the maps; asserts both succeed. */
void dpt_apply(const char *json);

/* A non-blocking listener (SOCK_STREAM) or bound socket (SOCK_DGRAM) on
 * ip:port; asserts. */
int dpt_listener(const char *ip, int port, int type);
/* connect() with socket family `family` to ip:port; -errno on failure. */
int dpt_connect(int family, const char *ip, int port);
/* Which of the listeners has a connection waiting: its index, or -1. */
int dpt_accepted_by(const int *lfds, int n);
/* getpeername(fd) is "ip:port"; asserts. */
void dpt_assert_peer(int fd, const char *want);
/* ss as "ip:port". */
void dpt_sockaddr_fmt(const void *ss, char *buf, size_t len);

/* One service, two backends weighted 1:3. */
#define SNAP_WEB                                                                    \
	"{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80," \
	" \"backends\": [{\"address\": \"127.0.0.2\", \"port\": 8080},"               \
	"              {\"address\": \"127.0.0.3\", \"port\": 8080, \"weight\": 3}]}]}"

#endif /* TESTS_BPF_DPT_H */
