/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * etcd.h - a small etcd v3 client: the JSON gateway (POST /v3/kv/range,
 * put, deleterange, txn and the streaming /v3/watch) over HTTP/1.1 or
 * HTTPS with libcurl, for sluice-control's replicated store (store.h).
 *
 *   etcd://HOST:PORT[,HOST:PORT...]    plain HTTP
 *   etcds://HOST:PORT[,HOST:PORT...]   HTTPS (opts: CA file, client cert/key)
 *
 * Contract:
 * - Every function returns 0 or -errno and, on failure, writes a one-line
 *   reason into err: etcd's own error text ("etcdserver: request timed
 *   out") when a member answered with one, else "etcd: no endpoint
 *   answered within 3 s: HOST:PORT: why; ..." (-ETIMEDOUT or
 *   -ECONNREFUSED). A write (put, delete, txn) that a member received but
 *   did not answer in time is in doubt, not refused: it may commit when a
 *   quorum returns (Raft keeps the leader's log); -EINPROGRESS, and err
 *   says so.
 * - Each request is bounded by opts.timeout_ms in total (default 3000),
 *   across endpoints, and each try by a third of it (at least 500 ms): a
 *   member in an election holds a write for seconds. An endpoint that refuses, times out or answers
 *   "unavailable" (no leader, lost quorum) is skipped for the next one in
 *   the list, within that bound; the endpoint that answered is tried first
 *   next time. A txn retried on another endpoint may have been applied by
 *   the first: its compares then fail, which reads as a conflict.
 * - Keys and values are bytes (values may hold NULs; keys are C strings).
 *   Revisions are etcd's int64 revisions; a key's mod_revision 0 means it
 *   does not exist. Absent keys are not errors.
 * - An etcd handle is used by one thread at a time. A watch runs in a
 *   thread of its own with its own connection; it only signals (its fd
 *   becomes readable) and records the latest revision: the caller re-reads
 *   what it needs with the handle. On a broken stream it reconnects (next
 *   endpoint) from the last revision seen + 1; when etcd has compacted that
 *   revision away it signals with `compacted` set (re-read everything).
 * - etcd's responses are read by etcd_msg.h's parsers only.
 */
#ifndef SL_CONTROL_ETCD_H
#define SL_CONTROL_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/etcd_msg.h"

#define ETCD_MAX_ENDPOINTS  16
#define ETCD_TIMEOUT_MS     3000

struct etcd;
struct etcd_watch;

struct etcd_opts {
	unsigned int timeout_ms;   /* per request, all endpoints (0: 3000) */
	const char *ca_file;       /* etcds://: trust anchors (NULL: the system's) */
	const char *cert_file;     /* etcds://: client certificate, with key_file */
	const char *key_file;
};

/* Parse the URL (no network). */
int etcd_open(struct etcd **out, const char *url, const struct etcd_opts *o,
	      char *err, size_t errlen);
void etcd_close(struct etcd *e);
/* "HOST:PORT" of the endpoint tried first. */
const char *etcd_endpoint(const struct etcd *e);

/* One key. Absent: *val NULL, *mod_rev 0. *val is malloc'd, NUL-terminated
 * after vlen bytes. rev (may be NULL): the store's revision. */
int etcd_get(struct etcd *e, const char *key, char **val, size_t *vlen, int64_t *mod_rev,
	     int64_t *rev, char *err, size_t errlen);
/* Every key starting with prefix, in key order; free with etcd_kvs_free. */
int etcd_range(struct etcd *e, const char *prefix, struct etcd_kv **kvs, size_t *n,
	       int64_t *rev, char *err, size_t errlen);
/* rev (may be NULL): the revision of the write, the key's new mod_revision. */
int etcd_put(struct etcd *e, const char *key, const void *val, size_t vlen, int64_t *rev,
	     char *err, size_t errlen);
/* One key, or with prefix every key starting with it. deleted may be NULL. */
int etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted,
		char *err, size_t errlen);

/* A transaction: if every compare holds (key's mod_revision == mod_revision;
 * 0: the key does not exist), the ops are applied together; *succeeded
 * tells which. rev: the store's revision after it (the ops' mod_revision
 * when it succeeded). */
struct etcd_cmp {
	const char *key;
	int64_t mod_revision;
};
enum etcd_op_kind { ETCD_OP_PUT = 1, ETCD_OP_DELETE };
struct etcd_op {
	enum etcd_op_kind kind;
	const char *key;
	const void *val;           /* PUT */
	size_t vlen;
};
int etcd_txn(struct etcd *e, const struct etcd_cmp *cmps, size_t ncmps,
	     const struct etcd_op *ops, size_t nops, bool *succeeded, int64_t *rev,
	     char *err, size_t errlen);

/* Watch every key starting with prefix, from revision from_rev (0: now),
 * in a thread of its own. */
int etcd_watch_start(struct etcd *e, const char *prefix, int64_t from_rev,
		     struct etcd_watch **out, char *err, size_t errlen);
/* Readable (an eventfd) when something changed since etcd_watch_take(). */
int etcd_watch_fd(const struct etcd_watch *w);
/* Clear the fd; the latest revision seen, and whether a compaction made
 * the watch skip revisions since the last take (re-read everything). */
int64_t etcd_watch_take(struct etcd_watch *w, bool *compacted);
/* Stop the thread (promptly: it is woken) and free. */
void etcd_watch_stop(struct etcd_watch *w);

#endif /* SL_CONTROL_ETCD_H */
