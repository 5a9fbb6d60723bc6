/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bpft.h - what the skeleton-driven BPF tests (test_tc.c, test_sockops.c,
 * test_skmsg.c) share: a private copy of a program's maps, a private network
 * namespace and cgroup, and readers for the counters and flow events the
 * programs write.
 *
 * A test loads its object through the skeleton after bpft_private_maps():
 * nothing is pinned, so no test sees another's state or the agent's, and
 * the maps go away with the skeleton. Setup may assert (Criterion then
 * skips .fini, but nothing needs undoing before the cgroup exists);
 * bpft_cg_leave() undoes bpft_cg_enter() and asserts nothing, so it is safe
 * in .fini whatever the test did.
 */
#ifndef TESTS_BPF_BPFT_H
#define TESTS_BPF_BPFT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "sluice_fast.h"
#include "sluice_flow.h"

/* Skip the test unless it can load BPF programs. */
#define BPFT_REQUIRE_ROOT()                                                   \
	do {                                                                  \
		if (geteuid() != 0)                                           \
			cr_skip_test("needs root (BPF, cgroups, netns)");     \
	} while (0)

/* Before load: no map of obj is pinned, and every hash-like map is cut to
 * max_entries entries (the tests use a handful; loading stays fast under
 * TCG). Arrays keep their size: they are indexed by meaning. */
void bpft_private_maps(struct bpf_object *obj, unsigned int max_entries);

/* A fresh network namespace with lo up. */
void bpft_netns(void);

/* A cgroup of its own below the cgroup2 root, named sluice-bpft-TAG-PID,
 * with the calling process in it. */
struct bpft_cg {
	char root[PATH_MAX];
	char path[PATH_MAX];
	int fd;			/* open on path, for attaching; -1 if none */
	bool made;
};

void bpft_cg_enter(struct bpft_cg *cg, const char *tag);
void bpft_cg_leave(struct bpft_cg *cg);

/* ip:port into ss, its length; asserts the address parses. */
socklen_t bpft_sockaddr(const char *ip, int port, struct sockaddr_storage *ss);

/* addr in the maps' 16-byte form (IPv4 as IPv4-mapped); asserts it parses. */
void bpft_addr16(const char *addr, uint32_t out[4]);

/* sl_metrics (per-CPU): key's counters summed over the CPUs; false if the
 * key is absent. */
bool bpft_metric(struct bpf_map *metrics, const struct sl_metric_key *key,
		 struct sl_metric_val *out);

/* sl_drops (per-CPU array): reason's count summed over the CPUs. */
uint64_t bpft_drops(struct bpf_map *drops, uint32_t reason);

/* The flow events waiting in the sl_events ring buffer, in order: at most
 * max into out; returns how many. */
int bpft_events(struct bpf_map *events, struct sl_event *out, int max);

/* Map entries as the agent (or, for sl_conns, the connect hook) writes
 * them. bpft_ipcache(): addr/128 -> id with SL_IPC_* flags. bpft_config():
 * sl_config's one entry. bpft_conn_recorded(): the sl_conns entry the
 * connect hook makes for a pod's connect() from fd (bound, not connected)
 * to listener, under fd's cookie; src_id SL_ID_UNKNOWN is what kernels
 * before 5.14 leave for sockops to fill in. */
void bpft_ipcache(struct bpf_map *ipcache, const char *addr, uint32_t id, uint32_t flags);
void bpft_config(struct bpf_map *config, uint32_t policy_gen, uint32_t fastpath);
void bpft_conn_recorded(struct bpf_map *conns, int fd, int listener, uint32_t src_id,
			uint32_t dst_id);

/* A connected socket's key in sl_sockhash and sl_faststate. */
struct sl_sock_key bpft_sock_key(int fd);

/* Entries in a hash-like map. */
unsigned int bpft_map_count(struct bpf_map *m);

/* Loopback TCP, every step asserted. bpft_listen(): a listener on ip, any
 * port. bpft_client(): a socket bound to from_ip (any port), not connected
 * yet, so that its cookie can be known before connect(); bpft_connect():
 * connect it to the listener. bpft_send() and bpft_recv() move exactly len
 * bytes within 2 s; bpft_eof() waits for the peer's FIN. */
int bpft_listen(const char *ip);
int bpft_client(const char *from_ip, int listener);
void bpft_connect(int fd, int listener);
int bpft_accept(int listener);
int bpft_port(int fd);
uint64_t bpft_cookie(int fd);
void bpft_send(int fd, const void *buf, size_t len);
void bpft_recv(int fd, void *buf, size_t len);
void bpft_eof(int fd);

/* Poll cond every 10 ms for up to 3 s; true once it holds. */
#define BPFT_WAIT(cond)                                                       \
	({                                                                    \
		bool ok_ = false;                                             \
		for (int i_ = 0; i_ < 300 && !(ok_ = (cond)); i_++)           \
			usleep(10000);                                        \
		ok_;                                                          \
	})

#endif
