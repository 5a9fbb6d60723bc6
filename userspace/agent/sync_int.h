/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sync_int.h - internal to sync*.c: the state of the agent's link to the
 * control plane (struct sync), shared by the connection's life cycle and
 * join (sync.c) and the watch stream's handling (sync_watch.c). The fuzz
 * harness tests/fuzz/fuzz_sync.c builds one to drive sync_watch.c.
 */
#ifndef SL_AGENT_SYNC_INT_H
#define SL_AGENT_SYNC_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "agent/sync.h"

#define SYNC_MAGIC      0x73796e63u
#define MSG_MAX         (512u << 20)
#define MAX_CONTROL     16       /* control plane URLs in --control */
/* Freed heap goes back to the system this long after the last snapshot:
 * given back after every one, the next faults the same pages in again. */
#define SYNC_TRIM_AFTER_MS 2000
/* The last good snapshot is saved once changes pause this long, and at
 * the latest this long after the first unsaved one: at 10,000 services
 * its text is megabytes, which a burst of one-service changes would
 * otherwise write once each. */
#define SYNC_SAVE_QUIET_MS 500
#define SYNC_SAVE_LATEST_MS 3000

enum state { S_IDLE, S_JOIN, S_WATCH };

struct endpoint {
	char url[300];             /* one https://HOST:PORT of the list */
	char host[256], port[16];
};

struct sync {
	uint32_t magic;
	struct sync_opts o;
	char key_path[PATH_MAX + 16], crt_path[PATH_MAX + 16], snap_path[PATH_MAX + 16];
	bool dirty;                /* `version` applied, not yet in snap_path (sync_persist) */
	uint64_t dirty_first, dirty_last;   /* when the first and last unsaved one applied */
	char *unsaved;             /* its text if it came whole; NULL: written from idx */
	size_t unsaved_len;
	struct endpoint ep[MAX_CONTROL];
	unsigned int nep;          /* URLs in the list */
	unsigned int cur;          /* the one connected or tried next */
	unsigned int failed;       /* attempts failed in a row this round */
	X509 *ca;
	EVP_PKEY *key;
	X509 *cert;
	SSL_CTX *ctx;
	struct h2_conn *h;
	unsigned int serial;         /* connections made: tells a new fd from an old one */
	enum state state;
	uint64_t next_ms;
	uint64_t trim_at;          /* sync_trim_later(); 0: nothing to give back */
	unsigned int attempt;
	bool fatal, reconnect_now, got_message;
	int status;                /* of the join or watch response */
	char hbone[80];
	char *in;                  /* received, not yet a whole line */
	size_t in_len, in_cap;
	uint64_t version;
	json_t *idx;               /* the snapshot of `version`, indexed; NULL: none */
	char have[24];             /* x-sluice-have: the version idx holds */
	sync_apply_fn apply;
	void *arg;
	struct post *posts;        /* sync_post() requests waiting for answers */
};

#endif /* SL_AGENT_SYNC_INT_H */
