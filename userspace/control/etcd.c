// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * etcd.c - etcd v3 through its JSON gateway (etcd.h has the contract;
 * the messages are built here and read by etcd_msg.c).
 *
 * Errors come as HTTP 4xx/5xx with {"error", "message", "code"} (a gRPC
 * code: 14 is Unavailable, which is what a member without a leader or
 * quorum answers). The watch is one POST whose response never ends: one
 * JSON object per line, {"result": WatchResponse} or {"error": {...}}.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "control/etcd.h"
#include "lib/core/log.h"

#define BODY_MAX      (256u << 20)   /* a response or a watch line */
#define GRPC_UNAVAILABLE 14
#define GRPC_DEADLINE    4

/* What a request and a watch need to reach the cluster (the watch copies it). */
struct etcd_conf {
	bool tls;
	size_t n;
	char ep[ETCD_MAX_ENDPOINTS][128];    /* "host:port" */
	unsigned int timeout_ms;
	char *ca_file, *cert_file, *key_file;
};

struct etcd {
	struct etcd_conf c;
	size_t cur;                          /* the endpoint tried first */
	CURL *curl;
};

/* ---- URL and handle -------------------------------------------------------- */

static int conf_parse(struct etcd_conf *c, const char *url, const struct etcd_opts *o,
		      char *err, size_t errlen)
{
	const char *p;
	size_t i = 0;

	memset(c, 0, sizeof(*c));
	if (strncmp(url, "etcd://", 7) == 0)
		p = url + 7;
	else if (strncmp(url, "etcds://", 8) == 0) {
		p = url + 8;
		c->tls = true;
	} else {
		snprintf(err, errlen, "'%s': etcd://HOST:PORT[,HOST:PORT...] or etcds://...", url);
		return -EINVAL;
	}
	while (*p) {
		size_t l = strcspn(p, ",");
		const char *colon = memrchr(p, ':', l);
		char *end = NULL;
		long port;

		if (i == ETCD_MAX_ENDPOINTS) {
			snprintf(err, errlen, "'%s': at most %d endpoints", url, ETCD_MAX_ENDPOINTS);
			return -EINVAL;
		}
		port = colon ? strtol(colon + 1, &end, 10) : 0;
		if (!colon || colon == p || l >= sizeof(c->ep[0]) || port < 1 || port > 65535 ||
		    end != p + l || memchr(p, '/', l) || memchr(p, '@', l)) {
			snprintf(err, errlen, "'%s': endpoint '%.*s' is not HOST:PORT", url, (int)l, p);
			return -EINVAL;
		}
		memcpy(c->ep[i], p, l);
		c->ep[i][l] = '\0';
		i++;
		p += l;
		if (*p == ',' && !*++p) {
			snprintf(err, errlen, "'%s': empty endpoint", url);
			return -EINVAL;
		}
	}
	if (!i) {
		snprintf(err, errlen, "'%s': no endpoint", url);
		return -EINVAL;
	}
	c->n = i;
	c->timeout_ms = o && o->timeout_ms ? o->timeout_ms : ETCD_TIMEOUT_MS;
	if (o && ((o->ca_file && !(c->ca_file = strdup(o->ca_file))) ||
		  (o->cert_file && !(c->cert_file = strdup(o->cert_file))) ||
		  (o->key_file && !(c->key_file = strdup(o->key_file))))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void conf_free(struct etcd_conf *c)
{
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	c->ca_file = c->cert_file = c->key_file = NULL;
}

static int conf_copy(struct etcd_conf *dst, const struct etcd_conf *src)
{
	*dst = *src;
	dst->ca_file = src->ca_file ? strdup(src->ca_file) : NULL;
	dst->cert_file = src->cert_file ? strdup(src->cert_file) : NULL;
	dst->key_file = src->key_file ? strdup(src->key_file) : NULL;
	if ((src->ca_file && !dst->ca_file) || (src->cert_file && !dst->cert_file) ||
	    (src->key_file && !dst->key_file)) {
		conf_free(dst);
		return -ENOMEM;
	}
	return 0;
}

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int etcd_open(struct etcd **out, const char *url, const struct etcd_opts *o,
	      char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct etcd *e = calloc(1, sizeof(*e));
	int rc;

	*out = NULL;
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = conf_parse(&e->c, url, o, err, errlen);
	if (rc) {
		etcd_close(e);
		return rc;
	}
	pthread_once(&once, curl_init_once);
	e->curl = curl_easy_init();
	if (!e->curl) {
		snprintf(err, errlen, "etcd: curl_easy_init failed");
		etcd_close(e);
		return -ENOMEM;
	}
	*out = e;
	return 0;
}

void etcd_close(struct etcd *e)
{
	if (!e)
		return;
	if (e->curl)
		curl_easy_cleanup(e->curl);
	conf_free(&e->c);
	free(e);
}

const char *etcd_endpoint(const struct etcd *e)
{
	return e->c.ep[e->cur];
}

/* ---- requests -------------------------------------------------------------- */

struct body {
	char *p;
	size_t len, cap;
};

static size_t body_write(char *data, size_t sz, size_t nm, void *arg)
{
	struct body *b = arg;
	size_t n = sz * nm;

	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > BODY_MAX || !(p = realloc(b->p, cap)))
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The options every request to endpoint i of c shares. */
static void curl_setup(CURL *h, const struct etcd_conf *c, size_t i, const char *path,
		       char *url, size_t urllen)
{
	snprintf(url, urllen, "%s://%s%s", c->tls ? "https" : "http", c->ep[i], path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");     /* never http_proxy from the environment */
	if (c->tls) {
		if (c->ca_file)
			curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
		if (c->cert_file)
			curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
		if (c->key_file)
			curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
	}
}

static void append(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t l = strnlen(buf, len);
	va_list ap;

	if (l + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + l, len - l, fmt, ap);
	va_end(ap);
}

/*
 * POST json to path on the first endpoint that answers, within the
 * request's time bound (each try a third of it, at least 500 ms); passes
 * over the list again (after 100 ms) while time is left. An answer other than 200 is final unless it says
 * "unavailable". body->p holds the 200 response. A write that reached a
 * member which then did not answer in time (curl timed out after sending
 * it, or etcd's "request timed out") may be in that member's log, and
 * commit when a quorum returns: then -EINPROGRESS, and err says so.
 */
static int request(struct etcd *e, const char *path, json_t *req, struct body *b,
		   char *err, size_t errlen)
{
	char *text = json_dumps(req, JSON_COMPACT);
	uint64_t deadline = now_ms() + e->c.timeout_ms;
	long per_try = e->c.timeout_ms / 3 > 500 ? (long)e->c.timeout_ms / 3 : 500;
	char why[ETCD_MAX_ENDPOINTS][160] = {};
	struct curl_slist *hdr = NULL;
	char url[200], msg[512], ebuf[CURL_ERROR_SIZE];
	int rc = -ETIMEDOUT, code;
	bool write = !strstr(path, "/range"), doubt = false;

	memset(b, 0, sizeof(*b));
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	hdr = curl_slist_append(NULL, "Content-Type: application/json");
	for (size_t k = 0;; k++) {
		size_t i = (e->cur + k) % e->c.n;
		uint64_t now = now_ms();
		long left, status = 0;
		CURLcode cc;

		if (k && k % e->c.n == 0) {
			if (now + 100 >= deadline)
				break;
			usleep(100 * 1000);
			now = now_ms();
		}
		if (now >= deadline)
			break;
		left = (long)(deadline - now);
		/* a member electing a leader holds a write until its own
		 * timeout (seconds): a third of the bound each, so that the
		 * others are asked in time */
		if (left > per_try)
			left = per_try;
		curl_easy_reset(e->curl);
		curl_setup(e->curl, &e->c, i, path, url, sizeof(url));
		curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, left);
		/* a black-holed member must leave time for the others */
		curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS,
				 left < 1000 ? left : 1000L);
		curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, body_write);
		curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, b);
		curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, ebuf);
		ebuf[0] = '\0';
		b->len = 0;
		cc = curl_easy_perform(e->curl);
		if (cc == CURLE_OPERATION_TIMEDOUT) {
			long sent = 0;

			if (curl_easy_getinfo(e->curl, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK &&
			    sent > 0)
				doubt = true;
		}
		if (cc != CURLE_OK) {
			/* curl's own detail ("SSL certificate problem: ...") if any */
			snprintf(why[i], sizeof(why[i]), "%s", cc == CURLE_OPERATION_TIMEDOUT ?
				 "timed out" : cc != CURLE_COULDNT_CONNECT && ebuf[0] ? ebuf :
				 curl_easy_strerror(cc));
			if (cc == CURLE_WRITE_ERROR) {
				snprintf(err, errlen, "etcd %s: response too large or out of memory",
					 e->c.ep[i]);
				rc = -EMSGSIZE;
				goto out;
			}
			continue;
		}
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200) {
			e->cur = i;
			rc = 0;
			goto out;
		}
		if (etcd_parse_error(b->p ?: "", b->len, msg, sizeof(msg), &code))
			snprintf(msg, sizeof(msg), "HTTP %ld", status);
		if (code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE || status == 503) {
			if (code == GRPC_DEADLINE)
				doubt = true;
			snprintf(why[i], sizeof(why[i]), "%s", msg);
			continue;
		}
		snprintf(err, errlen, "%s", msg);
		rc = code == 3 ? -EINVAL : -EIO;      /* 3: InvalidArgument */
		goto out;
	}
	snprintf(err, errlen, "etcd: no endpoint answered within %u s:",
		 (e->c.timeout_ms + 999) / 1000);
	for (size_t i = 0; i < e->c.n; i++)
		append(err, errlen, "%s %s: %s", i ? ";" : "", e->c.ep[i],
		       why[i][0] ? why[i] : "not reached in time");
	if (write && doubt) {
		append(err, errlen, "; a member got the write without answering: it may still "
		       "take effect once etcd has a quorum again");
		rc = -EINPROGRESS;
	}
out:
	if (rc) {
		free(b->p);
		memset(b, 0, sizeof(*b));
	}
	curl_slist_free_all(hdr);
	free(text);
	return rc;
}

/* A JSON string of the base64 of len bytes (jansson steals it). */
static json_t *b64(const void *p, size_t len)
{
	char *s = etcd_b64_encode(p, len);
	json_t *j = s ? json_string(s) : NULL;

	free(s);
	return j;
}

static json_t *i64(int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRId64, v);
	return json_string(s);
}

/* The range end that makes [prefix, end) every key starting with prefix;
 * "\0" (all keys) for an empty prefix or one of 0xff bytes. */
static json_t *prefix_end(const char *prefix)
{
	size_t n = strlen(prefix);
	char *end = strdup(prefix);
	json_t *j;

	if (!end)
		return NULL;
	while (n && (unsigned char)end[n - 1] == 0xff)
		n--;
	if (!n) {
		free(end);
		return b64("", 1);
	}
	end[n - 1]++;
	j = b64(end, n);
	free(end);
	return j;
}

static int range(struct etcd *e, const char *key, bool prefix, struct etcd_kv **kvs, size_t *n,
		 int64_t *rev, char *err, size_t errlen)
{
	json_t *req = json_pack("{s:o}", "key", b64(key, strlen(key)));
	struct body b;
	int64_t r = 0;
	int rc;

	if (req && prefix)
		json_object_set_new(req, "range_end", prefix_end(key));
	if (!req || (prefix && !json_object_get(req, "range_end"))) {
		json_decref(req);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = request(e, "/v3/kv/range", req, &b, err, errlen);
	json_decref(req);
	if (rc)
		return rc;
	rc = etcd_parse_range(b.p, b.len, kvs, n, &r, err, errlen);
	free(b.p);
	if (rev)
		*rev = r;
	return rc;
}

int etcd_get(struct etcd *e, const char *key, char **val, size_t *vlen, int64_t *mod_rev,
	     int64_t *rev, char *err, size_t errlen)
{
	struct etcd_kv *kvs;
	size_t n;
	int rc = range(e, key, false, &kvs, &n, rev, err, errlen);

	*val = NULL;
	*vlen = 0;
	*mod_rev = 0;
	if (rc)
		return rc;
	if (n) {
		*val = kvs[0].value;
		*vlen = kvs[0].vlen;
		*mod_rev = kvs[0].mod_revision;
		kvs[0].value = NULL;
	}
	etcd_kvs_free(kvs, n);
	return 0;
}

int etcd_range(struct etcd *e, const char *prefix, struct etcd_kv **kvs, size_t *n,
	       int64_t *rev, char *err, size_t errlen)
{
	return range(e, prefix, true, kvs, n, rev, err, errlen);
}

static int write_req(struct etcd *e, const char *path, json_t *req, int64_t *rev,
		     int64_t *deleted, bool *succeeded, char *err, size_t errlen)
{
	struct body b;
	int64_t r = 0;
	int rc;

	if (!req) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = request(e, path, req, &b, err, errlen);
	json_decref(req);
	if (rc)
		return rc;
	rc = etcd_parse_write(b.p, b.len, &r, deleted, succeeded, err, errlen);
	free(b.p);
	if (rev)
		*rev = r;
	return rc;
}

int etcd_put(struct etcd *e, const char *key, const void *val, size_t vlen, int64_t *rev,
	     char *err, size_t errlen)
{
	return write_req(e, "/v3/kv/put", json_pack("{s:o, s:o}", "key", b64(key, strlen(key)),
						     "value", b64(val, vlen)),
			 rev, NULL, NULL, err, errlen);
}

int etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted,
		char *err, size_t errlen)
{
	json_t *req = json_pack("{s:o}", "key", b64(key, strlen(key)));

	if (req && prefix && json_object_set_new(req, "range_end", prefix_end(key))) {
		json_decref(req);
		req = NULL;
	}
	return write_req(e, "/v3/kv/deleterange", req, NULL, deleted, NULL, err, errlen);
}

int etcd_txn(struct etcd *e, const struct etcd_cmp *cmps, size_t ncmps,
	     const struct etcd_op *ops, size_t nops, bool *succeeded, int64_t *rev,
	     char *err, size_t errlen)
{
	json_t *c = json_array(), *s = json_array(), *req;
	bool ok = c && s;

	for (size_t i = 0; ok && i < ncmps; i++)
		ok = !json_array_append_new(c, json_pack("{s:o, s:s, s:s, s:o}",
			"key", b64(cmps[i].key, strlen(cmps[i].key)), "target", "MOD",
			"result", "EQUAL", "mod_revision", i64(cmps[i].mod_revision)));
	for (size_t i = 0; ok && i < nops; i++) {
		json_t *k = b64(ops[i].key, strlen(ops[i].key));

		if (ops[i].kind == ETCD_OP_PUT)
			ok = !json_array_append_new(s, json_pack("{s:{s:o, s:o}}", "request_put",
				"key", k, "value", b64(ops[i].val, ops[i].vlen)));
		else
			ok = !json_array_append_new(s, json_pack("{s:{s:o}}",
				"request_delete_range", "key", k));
	}
	req = ok ? json_pack("{s:o, s:o}", "compare", c, "success", s) : NULL;
	if (!req) {
		json_decref(c);
		json_decref(s);
	}
	*succeeded = false;
	return write_req(e, "/v3/kv/txn", req, rev, NULL, succeeded, err, errlen);
}

/* ---- watch ----------------------------------------------------------------- */

struct etcd_watch {
	struct etcd_conf c;
	char *prefix;
	int efd;
	CURLM *multi;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t mu;        /* rev, compacted */
	int64_t rev;
	bool compacted;
	/* the thread's own */
	size_t cur;
	int64_t next_rev;          /* where a new stream starts */
	struct body line;
	bool restart;              /* drop this stream, open another */
	unsigned int fails;        /* streams in a row that never started */
};

static void watch_signal(struct etcd_watch *w, int64_t rev, bool compacted)
{
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	if (rev > w->rev)
		w->rev = rev;
	w->compacted |= compacted;
	pthread_mutex_unlock(&w->mu);
	if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("etcd watch: signalling: %s", strerror(errno));
}

/* One complete line of the stream. */
static void watch_line(struct etcd_watch *w, const char *p, size_t len)
{
	struct etcd_watch_msg m;

	if (etcd_parse_watch(p, len, &m)) {
		log_warn("etcd watch %s: %s", w->c.ep[w->cur], m.error);
		w->restart = true;
		return;
	}
	if (m.compact_revision > 0) {
		/* the revisions we wanted are gone: say so, start again from
		 * the oldest that is left */
		log_warn("etcd watch %s: revision %" PRId64 " compacted (oldest left %" PRId64
			 "); re-reading", w->c.ep[w->cur], w->next_rev, m.compact_revision);
		w->next_rev = m.compact_revision;
		watch_signal(w, m.revision, true);
		w->restart = true;
		return;
	}
	if (m.error[0]) {
		log_warn("etcd watch %s: %s", w->c.ep[w->cur], m.error);
		w->restart = true;
		return;
	}
	if (m.created)
		w->fails = 0;
	if (m.nevents) {
		if (m.last_event_rev >= w->next_rev)
			w->next_rev = m.last_event_rev + 1;
		watch_signal(w, m.last_event_rev > m.revision ? m.last_event_rev : m.revision, false);
	}
}

static size_t watch_write(char *data, size_t sz, size_t nm, void *arg)
{
	struct etcd_watch *w = arg;
	/* what was held had no newline: only the new bytes are searched */
	size_t n = sz * nm, start = 0, from = w->line.len;
	char *nl;

	if (!body_write(data, 1, n, &w->line))
		return 0;
	while (!w->restart && (nl = memchr(w->line.p + from, '\n', w->line.len - from))) {
		size_t l = (size_t)(nl - (w->line.p + start));

		if (l)
			watch_line(w, w->line.p + start, l);
		start = from = start + l + 1;
	}
	memmove(w->line.p, w->line.p + start, w->line.len - start);
	w->line.len -= start;
	return w->restart ? 0 : n;
}

/* One stream on endpoint w->cur, until it ends, fails or we stop. */
static void watch_stream(struct etcd_watch *w)
{
	json_t *req = json_pack("{s:{s:o, s:o, s:o}}", "create_request", "key",
				b64(w->prefix, strlen(w->prefix)), "range_end", prefix_end(w->prefix),
				"start_revision", i64(w->next_rev));
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	CURL *h = curl_easy_init();
	char url[200];
	int running = 1;
	CURLMsg *msg;
	int left;

	json_decref(req);
	if (!text || !h)
		goto out;
	w->line.len = 0;
	w->restart = false;
	curl_setup(h, &w->c, w->cur, "/v3/watch", url, sizeof(url));
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)w->c.timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
	curl_multi_add_handle(w->multi, h);
	while (running && !atomic_load(&w->stop)) {
		if (curl_multi_perform(w->multi, &running) != CURLM_OK)
			break;
		if (running)
			curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
	}
	while ((msg = curl_multi_info_read(w->multi, &left)))
		if (msg->msg == CURLMSG_DONE && !atomic_load(&w->stop) && !w->restart)
			log_warn("etcd watch %s: %s", w->c.ep[w->cur],
				 msg->data.result == CURLE_OK ? "stream ended" :
				 curl_easy_strerror(msg->data.result));
	curl_multi_remove_handle(w->multi, h);
out:
	if (h)
		curl_easy_cleanup(h);
	free(text);
}

static void *watch_main(void *arg)
{
	struct etcd_watch *w = arg;

	while (!atomic_load(&w->stop)) {
		unsigned int pause;

		watch_stream(w);
		if (atomic_load(&w->stop))
			break;
		/* the next endpoint, after a pause (200 ms, doubling while no
		 * stream starts, up to 3.2 s) that a stop cuts short; whatever
		 * happened meanwhile comes from next_rev on */
		w->cur = (w->cur + 1) % w->c.n;
		pause = 200u << (w->fails < 4 ? w->fails : 4);
		w->fails++;
		curl_multi_poll(w->multi, NULL, 0, (int)pause, NULL);
	}
	return NULL;
}

int etcd_watch_start(struct etcd *e, const char *prefix, int64_t from_rev,
		     struct etcd_watch **out, char *err, size_t errlen)
{
	struct etcd_watch *w = calloc(1, sizeof(*w));
	int rc;

	*out = NULL;
	if (!w || conf_copy(&w->c, &e->c)) {
		free(w);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->prefix = strdup(prefix);
	w->multi = curl_multi_init();
	w->cur = e->cur;
	w->next_rev = from_rev;
	w->rev = from_rev > 0 ? from_rev - 1 : 0;
	pthread_mutex_init(&w->mu, NULL);
	if (w->efd < 0 || !w->prefix || !w->multi) {
		snprintf(err, errlen, "etcd watch: %s", w->efd < 0 ? strerror(errno) : "out of memory");
		rc = w->efd < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	rc = -pthread_create(&w->thread, NULL, watch_main, w);
	if (rc) {
		snprintf(err, errlen, "etcd watch: thread: %s", strerror(-rc));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	if (w->multi)
		curl_multi_cleanup(w->multi);
	if (w->efd >= 0)
		close(w->efd);
	pthread_mutex_destroy(&w->mu);
	free(w->prefix);
	conf_free(&w->c);
	free(w);
	return rc;
}

int etcd_watch_fd(const struct etcd_watch *w)
{
	return w->efd;
}

int64_t etcd_watch_take(struct etcd_watch *w, bool *compacted)
{
	uint64_t v;
	int64_t rev;

	if (read(w->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("etcd watch: reading its eventfd: %s", strerror(errno));
	pthread_mutex_lock(&w->mu);
	rev = w->rev;
	if (compacted)
		*compacted = w->compacted;
	w->compacted = false;
	pthread_mutex_unlock(&w->mu);
	return rev;
}

void etcd_watch_stop(struct etcd_watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	curl_multi_wakeup(w->multi);
	pthread_join(w->thread, NULL);
	curl_multi_cleanup(w->multi);
	close(w->efd);
	pthread_mutex_destroy(&w->mu);
	free(w->line.p);
	free(w->prefix);
	conf_free(&w->c);
	free(w);
}
