// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sync_watch.c - the watch stream (sync_watch.h): the lines the control
 * plane pushes on GET /v1/watch, whole snapshots and deltas, applied
 * through the caller's apply function, and the ACK or NACK for each.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/sync_int.h"
#include "agent/sync_watch.h"
#include "lib/core/log.h"
#include "lib/core/loop.h"
#include "lib/wire/h2.h"
#include "lib/wire/snapdelta.h"

/* The receive buffer's size between messages: one that grew for a large
 * snapshot (megabytes) goes back to it once the snapshot is handled. */
#define IN_KEEP 65536

int sync_in_add(struct sync *s, const uint8_t *d, size_t n)
{
	if (s->in_len + n > MSG_MAX)
		return -EMSGSIZE;
	if (s->in_len + n + 1 > s->in_cap) {
		size_t cap = s->in_cap ? s->in_cap : IN_KEEP;
		char *p;

		while (cap < s->in_len + n + 1)
			cap *= 2;
		p = realloc(s->in, cap);
		if (!p)
			return -ENOMEM;
		s->in = p;
		s->in_cap = cap;
	}
	memcpy(s->in + s->in_len, d, n);
	s->in_len += n;
	s->in[s->in_len] = '\0';
	return 0;
}

static void ack_headers(struct h2_conn *c, int32_t id, int status, void *arg)
{
	if (status != 200)
		log_warn("control plane answered %d to an ACK/NACK", status);
}

static const struct h2_resp_ops ack_ops = { ack_headers, NULL, NULL };

static void send_ack(struct sync *s, uint64_t version, const char *error)
{
	json_t *j = json_pack("{s:I, s:s, s:s}", "version", (json_int_t)version,
			      "status", error ? "NACK" : "ACK", "error", error ?: "");
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	struct h2_header ct = { "content-type", "application/json" };

	if (!body || !s->h || h2_request(s->h, "POST", s->ep[s->cur].host, "/v1/ack", &ct, 1, body, strlen(body),
				&ack_ops, s) < 0)
		log_warn("could not send the %s for version %llu", error ? "NACK" : "ACK",
			 (unsigned long long)version);
	free(body);
	json_decref(j);
}

/*
 * The snapshot inside a watch message {"version":V,"snapshot":{...}}
 * without parsing it twice: the control plane writes exactly this prefix,
 * and snapshot_parse() checks the rest strictly anyway. 1 with *text
 * pointing into line and *v; 0 if the line is not of that form.
 */
static int split_full(const char *line, size_t len, const char **text, size_t *tlen,
		      long long *v)
{
	static const char pre[] = "{\"version\":", mid[] = ",\"snapshot\":";
	const char *p = line + sizeof(pre) - 1;
	char *end;

	if (len <= sizeof(pre) + sizeof(mid) || memcmp(line, pre, sizeof(pre) - 1) ||
	    line[len - 1] != '}')
		return 0;
	*v = strtoll(p, &end, 10);
	if (end == p || *v < 0 || (size_t)(end - line) + sizeof(mid) >= len ||
	    memcmp(end, mid, sizeof(mid) - 1) || end[sizeof(mid) - 1] != '{')
		return 0;
	*text = end + sizeof(mid) - 1;
	*tlen = (size_t)(line + len - 1 - *text);
	return 1;
}

/* The sections the node proxy does not read, written empty in its text:
 * it keeps identities, workloads, policies and nodes (proxy_set_snapshot);
 * cidrs stay, as the parser checks them against workloads and policies. */
static const char *const proxy_skips[] = { "services", NULL };

int sync_apply_whole(struct sync *s, const char *text, size_t len, const char *src,
		     json_t **idx, uint64_t *version, char *err, size_t errlen)
{
	json_t *snap = json_loadb(text, len, 0, NULL), *x;
	uint64_t v = (uint64_t)json_integer_value(json_object_get(snap, "version"));
	struct sync_snap sn = { .text = text, .len = len };
	char *ptext = NULL;
	int rc;

	/* not JSON: no index, and the apply below refuses it with the reason */
	x = snap ? sd_index(snap, NULL) : NULL;
	if (x && sd_pack(x))
		log_warn("packing the indexed snapshot: out of memory (kept partly unpacked)");
	/* without it (memory ran out), the proxy takes the whole text */
	ptext = x ? sd_text_without(x, v, proxy_skips, &sn.proxy_len) : NULL;
	sn.proxy_text = ptext;
	rc = s->apply(s->arg, &sn, src, err, errlen);
	free(ptext);
	/* the parse goes last, in one piece (see keep_items) */
	json_decref(snap);
	if (rc) {
		json_decref(x);
		x = NULL;
	}
	*idx = x;
	*version = v;
	return rc;
}

/* What applied is now the state: version v, indexed idx (taken, unless it
 * is s->idx already), text (malloc'd, taken: sync_persist saves and frees
 * it; a copy would double the peak of a large snapshot), or NULL: the
 * state is idx, whose text sync_persist writes after the ACK. */
static void applied(struct sync *s, uint64_t v, json_t *idx, char *text, size_t tlen)
{
	s->version = v;
	if (idx != s->idx) {
		json_decref(s->idx);
		s->idx = idx;
	}
	if (!idx)
		log_warn("version %llu applied, but the next change will need the whole snapshot "
			 "(out of memory indexing it)", (unsigned long long)v);
	/* saved by sync_persist(), after the enrollments waiting for this
	 * version are answered; a burst of messages is saved once */
	free(s->unsaved);
	s->unsaved = text;
	s->unsaved_len = tlen;
	s->dirty_last = loop_now_ms();
	if (!s->dirty)
		s->dirty_first = s->dirty_last;
	s->dirty = true;
	send_ack(s, v, NULL);
}

/* A whole snapshot (text: malloc'd, taken): apply, ACK; or NACK. */
static void on_full(struct sync *s, long long v, char *text, size_t tlen)
{
	char err[1024], src[64];
	uint64_t sv;
	json_t *idx;

	snprintf(src, sizeof(src), "control plane version %lld", v);
	if (sync_apply_whole(s, text, tlen, src, &idx, &sv, err, sizeof(err))) {
		log_err("NACK version %lld: %s", v, err);
		send_ack(s, (uint64_t)v, err);
		free(text);
		return;
	}
	applied(s, (uint64_t)v, idx, text, tlen);
}

/* Ask for the whole snapshot: watch again without saying what we have. */
static void resync(struct sync *s, const char *why)
{
	log_warn("%s; asking the control plane for the whole snapshot", why);
	if (s->dirty && !s->unsaved && s->idx) {
		/* the state applied last is not saved yet and only the index
		 * has it: its text now, before the index goes */
		s->unsaved = sd_text(s->idx, s->version, &s->unsaved_len);
		if (!s->unsaved) {
			log_warn("the last good snapshot (version %llu) cannot be saved: out of "
				 "memory", (unsigned long long)s->version);
			s->dirty = false;
		}
	}
	json_decref(s->idx);
	s->idx = NULL;
	s->reconnect_now = true;
	s->status = -1;   /* handled after io: reconnect */
}

/*
 * The items a delta sets, held (in a new array) until the whole message
 * is freed. Packing replaces each item by its text; freed there one by
 * one, a large delta's parse would leave small holes that the index's
 * new blocks fill, and those then keep the parse's pages resident after
 * it is gone (half the heap of an agent that loaded 10,000 services in
 * five deltas). Freed last and at once, the parse is one free region,
 * which malloc_trim() returns.
 */
static json_t *keep_items(const json_t *delta)
{
	json_t *keep = json_array(), *part, *item;
	const char *sec, *key;

	json_object_foreach((json_t *)delta, sec, part)
		json_object_foreach(json_object_get(part, "set"), key, item)
			if (keep && json_array_append(keep, item)) {
				json_decref(keep);
				return NULL;
			}
	return keep;
}

/* Each packed item of the delta's services with the object it was packed
 * from (keep: keep_items() of the delta before sd_pack_delta(), which
 * keeps the order), sorted for snapshot_from_json_cached(); NULL (none:
 * each is decoded from its text) without memory. */
static struct snap_fresh *fresh_services(const json_t *delta, const json_t *keep, size_t *n)
{
	json_t *set = json_object_get(json_object_get(delta, "services"), "set"), *part, *item;
	struct snap_fresh *f = malloc((json_object_size(set) ?: 1) * sizeof(*f));
	const char *sec, *key;
	size_t k = 0;

	*n = 0;
	if (!f)
		return NULL;
	json_object_foreach((json_t *)delta, sec, part) {
		json_object_foreach(json_object_get(part, "set"), key, item) {
			json_t *was = json_array_get(keep, k++);

			if (strcmp(sec, "services") == 0 && json_is_string(item) &&
			    json_is_object(was))
				f[(*n)++] = (struct snap_fresh){ .packed = item, .decoded = was };
		}
	}
	snap_fresh_sort(f, *n);
	return f;
}

/*
 * A delta {"version":V,"base":B,"delta":{...}} to the snapshot of version
 * B: applied to the indexed snapshot, which the data plane then takes
 * whole (it writes only what differs) and the proxy as text without
 * services. Refused by the data plane: NACK, the index goes back, what
 * runs stays. A delta to another version than ours, or one that does not
 * fit our snapshot: resync. The whole text, for the last good snapshot on
 * disk, is written by sync_persist after the ACK.
 */
static void on_delta(struct sync *s, json_t *m)
{
	json_int_t v = json_integer_value(json_object_get(m, "version"));
	json_int_t base = json_integer_value(json_object_get(m, "base"));
	json_t *delta = json_object_get(m, "delta"), *undo = NULL, *keep = NULL;
	struct snap_fresh *fresh = NULL;
	struct sync_snap sn = {};
	char err[1024], src[96], *ptext = NULL;
	int e;

	if (!s->idx || (uint64_t)base != s->version) {
		snprintf(err, sizeof(err), "a delta from version %lld, and we have %llu%s",
			 (long long)base, (unsigned long long)s->version,
			 s->idx ? "" : " without its index");
		resync(s, err);
		return;
	}
	/* the index keeps items packed: so must what the delta sets */
	keep = keep_items(delta);
	e = sd_pack_delta(delta) ? -ENOMEM : 0;
	if (e)
		snprintf(err, sizeof(err), "packing the delta: out of memory");
	e = e ?: sd_apply(s->idx, delta, &undo, err, sizeof(err));
	if (e) {
		log_err("version %lld: %s", (long long)v, err);
		if (e != -ENOMEM)
			resync(s, "the delta does not fit our snapshot");
		json_decref(keep);
		return;
	}
	sn.doc = sd_snapshot(s->idx, (uint64_t)v);
	fresh = keep ? fresh_services(delta, keep, &sn.nfresh) : NULL;
	sn.fresh = fresh;
	ptext = sn.doc ? sd_text_without(s->idx, (uint64_t)v, proxy_skips, &sn.proxy_len) : NULL;
	sn.proxy_text = ptext;
	snprintf(src, sizeof(src), "control plane version %lld (delta from %lld, %zu sections)",
		 (long long)v, (long long)base, json_object_size(delta));
	if (!ptext)
		snprintf(err, sizeof(err), "out of memory");
	if (!ptext || s->apply(s->arg, &sn, src, err, sizeof(err))) {
		char uerr[256];

		log_err("NACK version %lld: %s", (long long)v, err);
		if (sd_apply(s->idx, undo, NULL, uerr, sizeof(uerr))) {
			/* cannot be: undo is the exact inverse. The index is then
			 * not the state that runs: nothing is saved from it */
			s->dirty = s->dirty && s->unsaved;
			resync(s, uerr);
		}
		send_ack(s, (uint64_t)v, err);
		goto out;
	}
	applied(s, (uint64_t)v, s->idx, NULL, 0);
out:
	json_decref(sn.doc);
	json_decref(undo);
	free(ptext);
	free(fresh);
	json_decref(keep);   /* with the message (on_message), in one piece */
}

/* One watch message: a whole snapshot or a delta. */
static void on_message(struct sync *s, const char *line, size_t len)
{
	json_error_t jerr;
	const char *text;
	size_t tlen;
	long long v;
	json_t *m;

	s->attempt = 0;   /* the control plane talks to us: reset the backoff */
	if (split_full(line, len, &text, &tlen, &v)) {
		/* the snapshot stays as text until it is saved: one copy */
		char *copy = malloc(tlen ? tlen : 1);

		if (copy) {
			memcpy(copy, text, tlen);
			on_full(s, v, copy, tlen);
		} else {
			log_err("NACK version %lld: out of memory", v);
			send_ack(s, (uint64_t)v, "out of memory");
		}
		goto out;
	}
	m = json_loadb(line, len, 0, &jerr);
	if (json_is_integer(json_object_get(m, "version")) &&
	    json_integer_value(json_object_get(m, "version")) >= 0 &&
	    json_is_object(json_object_get(m, "snapshot"))) {
		char *owned = json_dumps(json_object_get(m, "snapshot"), JSON_COMPACT);

		if (owned)
			on_full(s, json_integer_value(json_object_get(m, "version")), owned,
				strlen(owned));
	} else if (json_is_integer(json_object_get(m, "version")) &&
		   json_is_integer(json_object_get(m, "base")) &&
		   json_is_object(json_object_get(m, "delta"))) {
		on_delta(s, m);
	} else {
		log_err("control plane sent a message that is neither {version, snapshot} nor "
			"{version, base, delta}: %s", m ? "missing fields" : jerr.text);
	}
	json_decref(m);
out:
	sync_trim_later(s);   /* parsing a large snapshot leaves many freed blocks */
}

static void watch_headers(struct h2_conn *c, int32_t id, int status, void *arg)
{
	struct sync *s = arg;

	s->status = status;
	if (status == 200) {
		s->failed = 0;   /* this replica answers: a new round starts */
		log_info("watching %s as node %s", s->ep[s->cur].url, s->o.node);
	}
}

static void watch_data(struct h2_conn *c, int32_t id, const uint8_t *d, size_t n, void *arg)
{
	struct sync *s = arg;
	/* what was held had no newline: only the new bytes are searched (a
	 * message of megabytes comes in thousands of frames) */
	size_t start = 0, from = s->in_len;
	char *nl;

	if (sync_in_add(s, d, n)) {
		log_err("watch message over %u bytes", MSG_MAX);
		s->in_len = 0;
		return;
	}
	if (s->status != 200)
		return;   /* an error body: shown at close */
	while ((nl = memchr(s->in + from, '\n', s->in_len - from)) != NULL) {
		size_t l = (size_t)(nl - (s->in + start));

		if (l)
			on_message(s, s->in + start, l);
		start = from = start + l + 1;
	}
	memmove(s->in, s->in + start, s->in_len - start);
	s->in_len -= start;
	if (s->in_cap > IN_KEEP && s->in_len < IN_KEEP) {
		char *p = realloc(s->in, IN_KEEP);

		if (p) {
			s->in = p;
			s->in_cap = IN_KEEP;
		}
	}
}

static void watch_close(struct h2_conn *c, int32_t id, uint32_t code, void *arg)
{
	struct sync *s = arg;

	if (s->status != 200)
		log_err("control plane refused the watch (HTTP %d): %.*s", s->status,
			(int)(s->in_len > 500 ? 500 : s->in_len), s->in ? s->in : "");
	else
		log_warn("control plane ended the watch stream (HTTP/2 code %u)", code);
	s->reconnect_now = false;
	s->status = -1;   /* handled after io: reconnect */
}

const struct h2_resp_ops sync_watch_ops = { watch_headers, watch_data, watch_close };

void sync_trim_later(struct sync *s)
{
	s->trim_at = loop_now_ms() + SYNC_TRIM_AFTER_MS;
}
