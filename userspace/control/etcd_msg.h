/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * etcd_msg.h - what etcd answers, read: the parsers of its JSON gateway's
 * responses (an error body, a range, a write, a watch stream's line) and
 * the gateway's base64, for the client (etcd.h).
 *
 * Contract: these functions are the only readers of etcd's responses and
 * touch no network (the fuzz harness tests/fuzz/fuzz_etcd.c calls them on
 * arbitrary bytes). The response parsers return 0 or -errno (-EPROTO:
 * not a response of that kind) with a one-line reason in err (the watch
 * line's: in m->error); so does etcd_parse_error(), without a reason.
 */
#ifndef SL_CONTROL_ETCD_MSG_H
#define SL_CONTROL_ETCD_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A key and its value as a range response holds them. */
struct etcd_kv {
	char *key;                 /* NUL-terminated */
	char *value;               /* vlen bytes, then a NUL */
	size_t vlen;
	int64_t mod_revision, create_revision, version;
};

void etcd_kvs_free(struct etcd_kv *kvs, size_t n);

/* etcd's error body {"error","message","code"} -> message; 0, or -EPROTO
 * if not one. */
int etcd_parse_error(const char *body, size_t len, char *msg, size_t msglen, int *code);
/* A range response. */
int etcd_parse_range(const char *body, size_t len, struct etcd_kv **kvs, size_t *n,
		     int64_t *rev, char *err, size_t errlen);
/* A put, deleterange or txn response: header revision, "deleted", "succeeded". */
int etcd_parse_write(const char *body, size_t len, int64_t *rev, int64_t *deleted,
		     bool *succeeded, char *err, size_t errlen);

/* One line of the watch stream. */
struct etcd_watch_msg {
	int64_t revision;          /* header revision (0 if absent) */
	int64_t compact_revision;  /* > 0: compacted */
	int64_t last_event_rev;    /* the highest event mod_revision */
	size_t nevents;
	bool created, canceled;
	char error[256];           /* an {"error":...} line or a cancel reason */
};
int etcd_parse_watch(const char *line, size_t len, struct etcd_watch_msg *m);

/* Standard base64 with padding. Encode: malloc'd, NUL-terminated.
 * Decode: malloc'd, NUL after *outlen bytes; -EINVAL on bad input. */
char *etcd_b64_encode(const void *data, size_t len);
int etcd_b64_decode(const char *s, size_t slen, char **out, size_t *outlen);

#endif /* SL_CONTROL_ETCD_MSG_H */
