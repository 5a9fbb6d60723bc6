/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * server_state.h - the state server.c's loop shares with its route
 * handlers (nodes.c, api_config.c, api_certs.c): the server's options,
 * the server and one client connection. main.c sets the options and
 * calls server_run() (server.h); the rest is for the handlers.
 *
 * Contract: one thread. A handler replies on cn->h before it returns (or
 * keeps the stream, as a watch does); it never closes a connection but
 * sets cn->kill, and sets cn->dirty when it queued output on a connection
 * other than its own, so that the loop flushes it after the batch.
 */
#ifndef SL_CONTROL_SERVER_STATE_H
#define SL_CONTROL_SERVER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "control/store.h"
#include "lib/wire/h2.h"

/* how long after the last config change the freed heap goes back to the
 * system (server.c's tick, each second) */
#define TRIM_AFTER_MS 2000

/* what an epoll event's data.ptr points at: the first field of each */
enum src_kind { SRC_LISTEN = 1, SRC_SIGNAL, SRC_CONN, SRC_STORE };

struct conn {
	enum src_kind kind;
	struct server *srv;
	struct h2_conn *h;
	unsigned int events;
	bool dirty, kill;
	char addr[64];
	struct conn *prev, *next;
};

struct server_opts {
	const char *listen;        /* ADDR:PORT, [V6]:PORT */
	const char *const *sans;   /* extra DNS/IP names for the server cert */
	unsigned int stall_ms;     /* cut off a client that stops reading */
	long workload_cert_ttl;    /* seconds, POST /v1/certs */
	bool push_full;            /* send whole snapshots, never deltas */
};

struct node_st;   /* snapshots.h */
struct sl_svc_cache;
struct watcher;   /* snapshots.h */

struct server {
	struct store *st;
	const struct server_opts *o;
	SSL_CTX *tls;
	struct h2_limits lim;
	int efd, lfd, sfd;
	enum src_kind lsrc, ssrc, wsrc;   /* wsrc: the store's watch (etcd) */
	struct node_st **nodes;
	size_t nnodes;
	struct watcher *watchers;
	json_t *pool;              /* snapshot items shared by the nodes */
	struct sl_svc_cache *svc_cache; /* services compiled last (compile_cache.h) */
	size_t last_compiled, last_services; /* services compiled again, in all */
	size_t last_push_bytes;    /* sent by the last change, to all nodes */
	size_t last_push_items;    /* items it set or removed, all nodes */
	uint64_t trim_at;          /* trim the config and give freed heap back to the
				    * system then; 0: no need */
	struct conn *conns;
	size_t nconns;
	char admin_uri[512], node_prefix[512];
	time_t started;
};

#endif /* SL_CONTROL_SERVER_STATE_H */
