/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * polmap.h - the identity and policy maps: reconcile them with a snapshot.
 *
 * Order (headers/sluice_policy.h): the policy first, written whole into the
 * inactive generation and switched on by one store to sl_config (the old
 * generation is deleted only by the next change, so no decision ever reads
 * a generation being deleted); then the
 * identity maps (ipcache, netns, endpoints) are upserted; entries nothing
 * wants any more go last. An unchanged snapshot writes nothing.
 */
#ifndef SL_POLMAP_H
#define SL_POLMAP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/node/snapshot.h"

struct ns_cookie;

struct polmap {
	int ipcache_fd;
	int netns_fd;
	int ep_fd;
	int policy_fd;
	int poldst_fd;
	int config_fd;
	int drops_fd;
	int mtls_port_fd;
	bool netns_cookies;   /* fill sl_netns: the kernel has SO_NETNS_COOKIE */
	/* The cookies of the local workloads' network namespaces, as of the
	 * last apply (polmap.c): finding one takes a thread and a setns(),
	 * so an apply does that only for a namespace it has not seen.
	 * Zeroed by polmap_open(), freed by polmap_close(). */
	struct {
		struct ns_cookie *v;
		size_t n, cap;
		uint64_t gen;   /* applies so far */
	} ns_cache;
};

struct pol_apply_stats {
	unsigned int policy_entries;   /* entries in the live generation */
	bool policy_flipped;
	unsigned int ids_written, ids_removed;
	unsigned int local_endpoints;
};

/* A local endpoint as applied: the caller attaches tc to these. */
struct pol_endpoint {
	uint32_t ifindex;
	char ifname[16];
};

/* Opens the maps; netns_cookies starts true (the caller's probe may clear it). */
int polmap_open(struct polmap *m, const char *pin_root);
void polmap_close(struct polmap *m);

/* Make the maps hold the snapshot's identities and policy. `eps` (may be
 * NULL) receives the local endpoints' interfaces, *neps their count. 0 or
 * -errno with a message in err. Local workloads' network namespaces and
 * interfaces are resolved before anything is written: a snapshot naming
 * one that is not there changes nothing. */
int polmap_apply(struct polmap *m, const struct snapshot *s,
		 struct pol_endpoint **eps, size_t *neps,
		 struct pol_apply_stats *st, char *err, size_t errlen);

/* The network namespace cookie of the netns at `path` (SO_NETNS_COOKIE,
 * 5.14+). 0 or -errno. */
int netns_cookie(const char *path, uint64_t *cookie);

/* Sum of a per-CPU drop counter. */
uint64_t polmap_drops(const struct polmap *m, uint32_t reason);

#endif /* SL_POLMAP_H */
