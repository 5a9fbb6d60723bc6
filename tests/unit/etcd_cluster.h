/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * etcd_cluster.h - real etcd members for the tests of control/etcd.c and
 * the etcd store: started on 127.0.0.1 on ports probed free, with a
 * temporary data directory, killed (SIGKILL, by PID) and removed by
 * ec_stop() and, should the test process die first, by the kernel
 * (PR_SET_PDEATHSIG). Fast elections (heartbeat 50 ms, election 500 ms).
 */
#ifndef TESTS_UNIT_ETCD_CLUSTER_H
#define TESTS_UNIT_ETCD_CLUSTER_H

#include <stdbool.h>
#include <sys/types.h>

#define EC_MAX 3

struct ec_member {
	pid_t pid;
	int cport, pport;
};

struct etcd_cluster {
	int n;
	struct ec_member m[EC_MAX];
	char dir[64];
	char url[256];      /* etcd://127.0.0.1:P1,127.0.0.1:P2,... (etcds:// with TLS) */
	bool tls;
	char ca[96], cert[96], key[96];   /* TLS: what a client needs (ec_opts) */
	char srv_cert[96], srv_key[96];
};

/* NULL if the etcd binary is there, else why not (for cr_skip). */
const char *ec_missing(void);
/* Start n members and wait until a write succeeds (assertion failure if
 * not within 15 s). */
void ec_start(struct etcd_cluster *c, int n);
/* One member serving clients over HTTPS only, with a certificate for
 * 127.0.0.1 from a CA of the test's and client certificates required. */
void ec_start_tls(struct etcd_cluster *c);
/* The client options for c: its CA and a client certificate (TLS). */
struct etcd_opts ec_opts(const struct etcd_cluster *c, unsigned int timeout_ms);
/* SIGKILL member i (by its PID) and reap it. */
void ec_kill(struct etcd_cluster *c, int i);
/* Kill every member left, remove the data directory. */
void ec_stop(struct etcd_cluster *c);
/* A port nothing listens on (bound, then closed). */
int ec_free_port(void);

#endif
