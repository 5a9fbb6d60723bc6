// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sync.c - join and the watch connection (sync.h). States: IDLE
 * (waiting for the next attempt), JOIN (a connection without a client
 * certificate, one POST /v1/join), WATCH (a connection with the node
 * certificate, GET /v1/watch held open, POST /v1/ack on the same
 * connection).
 *
 * Replicas: --control may list several control plane URLs. The agent talks
 * to one at a time (cur). When the connection is lost or cannot be made,
 * the next attempt goes to the next URL at once; only after every URL of a
 * round has failed does it wait (backoff). A watch that starts ends the
 * round. The version held goes with every watch (x-sluice-have), whichever
 * replica gets it: all of them read one store, so a replica at that version
 * sends nothing, and one behind or ahead sends a delta or the whole
 * snapshot.
 *
 * The watch stream's messages, snapshots and deltas, are handled in
 * sync_watch.c; struct sync is in sync_int.h.
 */
#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <jansson.h>

#include "agent/sync.h"
#include "agent/sync_int.h"
#include "agent/sync_watch.h"
#include "lib/core/file.h"
#include "lib/wire/h2.h"
#include "lib/wire/h2_client.h"
#include "lib/core/log.h"
#include "lib/wire/pki.h"
#include "lib/core/loop.h"
#include "lib/core/sys.h"
#include "lib/wire/snapdelta.h"

#define BACKOFF_MIN_MS  500
#define BACKOFF_MAX_MS  30000

struct post {
	struct sync *s;
	sync_resp_fn fn;
	void *arg;
	int status;
	char *body;
	size_t len;
	struct post *next;
};

static void check(const struct sync *s)
{
	if (!s || s->magic != SYNC_MAGIC) {
		log_err("sync: bad object %p", (const void *)s);
		abort();
	}
}

static uint64_t backoff_ms(unsigned int attempt)
{
	uint64_t d = BACKOFF_MIN_MS;
	uint32_t r = 0;

	while (attempt-- > 0 && d < BACKOFF_MAX_MS)
		d *= 2;
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)getpid();
	return d / 2 + r % (d / 2 + 1);   /* uniform in [d/2, d] */
}

static void post_done(struct sync *s, struct post *p, int status)
{
	for (struct post **pp = &s->posts; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	p->fn(p->arg, status, p->body ?: "", p->len);
	free(p->body);
	free(p);
}

/*
 * The connection is gone (or was never made). Again at once on the same
 * URL when asked (after a join, for a resync); else the next URL of the
 * list, at once while this round has URLs left untried, after the backoff
 * once all of them failed.
 */
static void drop_conn(struct sync *s, const char *why)
{
	const char *from = s->ep[s->cur].url;

	while (s->posts)
		post_done(s, s->posts, -1);
	if (s->h) {
		if (why)
			log_warn("control plane %s: %s; retrying", from, why);
		h2_conn_free(s->h);
		s->h = NULL;
	}
	s->in_len = 0;
	s->status = 0;
	if (s->reconnect_now) {
		s->reconnect_now = false;
		s->next_ms = loop_now_ms();
	} else {
		bool round_over = ++s->failed >= s->nep;

		if (s->nep > 1) {
			s->cur = (s->cur + 1) % s->nep;
			log_info("control plane: moving from %s to replica %s (%u of %u)%s", from,
				 s->ep[s->cur].url, s->cur + 1, s->nep,
				 round_over ? " after a backoff: every replica failed" : "");
		}
		if (round_over) {
			uint64_t d = backoff_ms(s->attempt++);

			s->failed = 0;
			s->next_ms = loop_now_ms() + d;
			log_debug("next attempt in %llu ms", (unsigned long long)d);
		} else {
			s->next_ms = loop_now_ms();
		}
	}
	s->state = S_IDLE;
}

static int make_ctx(struct sync *s)
{
	struct pki_tls_opts to = { .ca = s->ca, .cert = s->cert, .key = s->cert ? s->key : NULL,
				   .alpn = "h2" };

	SSL_CTX_free(s->ctx);
	s->ctx = pki_tls_ctx(&to);
	return s->ctx ? 0 : -EIO;
}

/* ---- join ---------------------------------------------------------------- */

static void join_headers(struct h2_conn *c, int32_t id, int status, void *arg)
{
	((struct sync *)arg)->status = status;
}

static void join_data(struct h2_conn *c, int32_t id, const uint8_t *d, size_t n, void *arg)
{
	struct sync *s = arg;

	if (sync_in_add(s, d, n))
		s->in_len = 0;
}

static void join_close(struct h2_conn *c, int32_t id, uint32_t code, void *arg)
{
	struct sync *s = arg;
	json_t *j = NULL;
	const char *pem, *msg;
	X509 *cert = NULL;
	char uri[512];

	if (s->status == 401 || s->status == 403 || s->status == 400) {
		j = json_loadb(s->in ?: "", s->in_len, 0, NULL);
		msg = json_string_value(json_object_get(j, "error"));
		log_err("join refused by %s (HTTP %d): %s", s->ep[s->cur].url, s->status,
			msg ?: "(no reason given)");
		s->fatal = true;
		goto out;
	}
	if (s->status != 200) {
		log_warn("join: control plane answered HTTP %d", s->status);
		goto out;
	}
	j = json_loadb(s->in ?: "", s->in_len, 0, NULL);
	pem = json_string_value(json_object_get(j, "certificate"));
	cert = pem ? pki_cert_from_pem(pem, strlen(pem)) : NULL;
	if (!cert || !pki_cert_matches_key(cert, s->key) || pki_cert_uri(cert, uri, sizeof(uri))) {
		log_err("join: the certificate received is not for this node's key");
		goto out;
	}
	if (X509_verify(cert, X509_get0_pubkey(s->ca)) != 1) {
		log_err("join: the certificate received is not signed by %s", s->o.ca_file);
		goto out;
	}
	if (pki_cert_save(s->crt_path, cert))
		goto out;
	X509_free(s->cert);
	s->cert = cert;
	cert = NULL;
	if (make_ctx(s))
		goto out;
	log_info("joined as %s; certificate saved to %s", uri, s->crt_path);
	s->attempt = 0;
	s->reconnect_now = true;
out:
	X509_free(cert);
	json_decref(j);
	s->status = -1;
}

static const struct h2_resp_ops join_ops = { join_headers, join_data, join_close };

/* ---- life cycle ---------------------------------------------------------- */

static void connect_now(struct sync *s)
{
	struct h2_header hb[2];
	size_t nhb = 0;
	char err[512];
	int fd;

	if (h2_connect(s->ep[s->cur].host, s->ep[s->cur].port, &fd, err, sizeof(err))) {
		log_warn("control plane: %s; retrying", err);
		drop_conn(s, NULL);
		return;
	}
	s->h = h2_client_conn(fd, s->ctx, NULL);
	s->serial++;
	if (!s->h) {
		drop_conn(s, NULL);
		return;
	}
	h2_conn_expect_peer(s->h, "/sluice/control");
	s->in_len = 0;
	s->status = 0;
	if (!s->cert) {
		struct h2_header ct = { "content-type", "application/json" };
		char *csr = pki_csr_pem(s->key, s->o.node), *body = NULL;
		json_t *j = csr ? json_pack("{s:s, s:s, s:s}", "node", s->o.node,
					    "token", s->o.token, "csr", csr) : NULL;

		body = j ? json_dumps(j, JSON_COMPACT) : NULL;
		if (!body || h2_request(s->h, "POST", s->ep[s->cur].host, "/v1/join", &ct, 1, body,
					strlen(body), &join_ops, s) < 0)
			drop_conn(s, "could not submit the join request");
		else
			s->state = S_JOIN;
		free(csr);
		free(body);
		json_decref(j);
		return;
	}
	if (s->o.hbone_port) {
		/* where our proxy takes HBONE: the address we reach the control
		 * plane from is a node address, unless told otherwise */
		struct sockaddr_storage ss = {};
		socklen_t sl = sizeof(ss);
		char a[64] = "";

		if (s->o.hbone_host)
			snprintf(a, sizeof(a), "%s", s->o.hbone_host);
		else if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
		else if (ss.ss_family == AF_INET6 &&
			 inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a + 1, sizeof(a) - 2))
			a[0] = '[', strcat(a, "]");
		snprintf(s->hbone, sizeof(s->hbone), "%s:%u", a, s->o.hbone_port);
		hb[0] = (struct h2_header){ "x-sluice-hbone", s->hbone };
		nhb = a[0] ? 1 : 0;
	}
	if (s->idx) {
		/* what we have: the control plane sends a delta from it, or
		 * nothing if it is the newest */
		snprintf(s->have, sizeof(s->have), "%llu", (unsigned long long)s->version);
		hb[nhb++] = (struct h2_header){ "x-sluice-have", s->have };
	}
	if (h2_request(s->h, "GET", s->ep[s->cur].host, "/v1/watch", hb, nhb, NULL, 0, &sync_watch_ops, s) < 0)
		drop_conn(s, "could not submit the watch request");
	else
		s->state = S_WATCH;
}

/* --control URL[,URL...] into s->ep; -1 (logged) if one is not https://HOST:PORT. */
static int parse_urls(struct sync *s, const char *list)
{
	const char *p = list;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		struct endpoint *e = &s->ep[s->nep];

		if (s->nep == MAX_CONTROL) {
			log_err("--control: at most %d URLs", MAX_CONTROL);
			return -EINVAL;
		}
		if (len >= sizeof(e->url)) {
			log_err("--control: '%.*s...' is too long", 40, p);
			return -EINVAL;
		}
		memcpy(e->url, p, len);
		e->url[len] = '\0';
		if (h2_parse_url(e->url, e->host, sizeof(e->host), e->port, sizeof(e->port))) {
			log_err("--control '%s': not https://HOST:PORT", e->url);
			return -EINVAL;
		}
		s->nep++;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

struct sync *sync_new(const struct sync_opts *o, sync_apply_fn apply, void *arg)
{
	struct sync *s = calloc(1, sizeof(*s));
	char want[300], have[512];
	int e;

	if (!s)
		return NULL;
	s->magic = SYNC_MAGIC;
	s->o = *o;
	s->apply = apply;
	s->arg = arg;
	if (parse_urls(s, o->url))
		goto fail;
	e = sys_mkdir_p(o->state_dir, 0700);
	if (e) {
		log_err("--state-dir %s: %s", o->state_dir, strerror(-e));
		goto fail;
	}
	snprintf(s->key_path, sizeof(s->key_path), "%s/node.key", o->state_dir);
	snprintf(s->crt_path, sizeof(s->crt_path), "%s/node.crt", o->state_dir);
	snprintf(s->snap_path, sizeof(s->snap_path), "%s/snapshot.json", o->state_dir);
	s->ca = pki_cert_load(o->ca_file);
	if (!s->ca) {
		log_err("--ca-file %s: cannot read a certificate from it", o->ca_file);
		goto fail;
	}
	if (access(s->key_path, F_OK) == 0) {
		s->key = pki_key_load(s->key_path);
	} else {
		s->key = pki_key_new();
		if (s->key && pki_key_save(s->key_path, s->key)) {
			EVP_PKEY_free(s->key);
			s->key = NULL;
		}
	}
	if (!s->key) {
		log_err("node key %s: cannot read or create it", s->key_path);
		goto fail;
	}
	if (access(s->crt_path, F_OK) == 0) {
		s->cert = pki_cert_load(s->crt_path);
		snprintf(want, sizeof(want), "/sluice/node/%s", o->node);
		if (!s->cert || !pki_cert_matches_key(s->cert, s->key) ||
		    pki_cert_uri(s->cert, have, sizeof(have)) ||
		    strlen(have) < strlen(want) || strcmp(have + strlen(have) - strlen(want), want)) {
			log_err("%s is not this node's certificate (node %s, key %s); remove it "
				"to join again", s->crt_path, o->node, s->key_path);
			goto fail;
		}
		if (pki_cert_seconds_left(s->cert) <= 0)
			log_warn("%s has expired; the control plane will refuse it", s->crt_path);
	} else if (!o->token) {
		log_err("no node certificate in %s yet: give --join-token (sluice-control token "
			"create --node %s)", o->state_dir, o->node);
		goto fail;
	}
	if (make_ctx(s))
		goto fail;
	s->next_ms = loop_now_ms();
	return s;
fail:
	sync_free(s);
	return NULL;
}

void sync_persist(struct sync *s)
{
	size_t len = s->unsaved_len;
	char *text;
	int e;

	check(s);
	if (!s->dirty)
		return;
	/* a whole snapshot is saved as it came; a delta's result is written
	 * from the index now, after its ACK went out */
	text = s->unsaved ?: s->idx ? sd_text(s->idx, s->version, &len) : NULL;
	e = text ? file_write_atomic(s->snap_path, text, len, 0600) : -ENOMEM;
	if (e)
		log_warn("saving the last good snapshot (version %llu) to %s: %s",
			 (unsigned long long)s->version, s->snap_path, strerror(-e));
	free(text);
	s->unsaved = NULL;
	s->dirty = false;
	sync_trim_later(s);   /* the text of a large snapshot was the largest block */
}

/* When the unsaved state is due on disk (sync_persist_due). */
static uint64_t save_at(const struct sync *s)
{
	uint64_t quiet = s->dirty_last + SYNC_SAVE_QUIET_MS;
	uint64_t latest = s->dirty_first + SYNC_SAVE_LATEST_MS;

	return quiet < latest ? quiet : latest;
}

void sync_persist_due(struct sync *s)
{
	check(s);
	if (s->dirty && loop_now_ms() >= save_at(s))
		sync_persist(s);
}

bool sync_start(struct sync *s)
{
	char err[1024], *text = NULL;
	uint64_t v;
	json_t *idx;
	size_t len = 0;
	int e;

	check(s);
	sync_persist(s);   /* the last good snapshot is the last applied */
	e = file_read(s->snap_path, &text, &len, MSG_MAX);
	if (e) {
		if (e != -ENOENT)
			log_warn("last good snapshot %s: %s", s->snap_path, strerror(-e));
		return false;
	}
	e = sync_apply_whole(s, text, len, s->snap_path, &idx, &v, err, sizeof(err));
	free(text);
	if (e) {
		log_err("last good snapshot %s refused: %s", s->snap_path, err);
		return false;
	}
	log_info("applied the last good snapshot %s until the control plane answers", s->snap_path);
	/* the control plane resumes from it if it has no newer one */
	json_decref(s->idx);
	s->idx = idx;
	if (idx)
		s->version = v;
	return true;
}

int sync_fd(const struct sync *s)
{
	return s->h ? h2_conn_fd(s->h) : -1;
}

unsigned int sync_fd_serial(const struct sync *s)
{
	return s->serial;
}

short sync_events(const struct sync *s)
{
	return s->h ? (short)h2_conn_events(s->h) : 0;
}

int sync_timeout_ms(const struct sync *s)
{
	uint64_t now = loop_now_ms();

	uint64_t at;

	if (s->fatal)
		return -1;
	/* handshake, stall and trim timers: checked every second */
	at = s->h ? now + 1000 : s->trim_at && s->trim_at < s->next_ms ? s->trim_at : s->next_ms;
	if (s->dirty && save_at(s) < at)
		at = save_at(s);
	return at > now ? (int)(at - now) : 0;
}

void sync_handle(struct sync *s, short revents)
{
	check(s);
	if (s->trim_at && loop_now_ms() >= s->trim_at) {
		s->trim_at = 0;
		malloc_trim(0);
	}
	if (s->fatal)
		return;
	if (!s->h) {
		if (loop_now_ms() >= s->next_ms)
			connect_now(s);
		return;   /* a fresh connect: poll tells when it is done */
	}
	if ((revents && h2_conn_io(s->h, (unsigned int)revents)) || h2_conn_tick(s->h)) {
		drop_conn(s, h2_conn_error(s->h));
		return;
	}
	if (s->status == -1)
		drop_conn(s, NULL);
	if (s->fatal && s->h)
		drop_conn(s, NULL);
}

bool sync_fatal(const struct sync *s) { return s->fatal; }
uint64_t sync_version(const struct sync *s) { return s->version; }

void sync_free(struct sync *s)
{
	if (!s)
		return;
	check(s);
	sync_persist(s);
	while (s->posts)
		post_done(s, s->posts, -1);
	h2_conn_free(s->h);
	SSL_CTX_free(s->ctx);
	X509_free(s->ca);
	X509_free(s->cert);
	EVP_PKEY_free(s->key);
	json_decref(s->idx);
	free(s->in);
	s->magic = 0;
	free(s);
}

bool sync_connected(const struct sync *s)
{
	return s->h && s->state == S_WATCH && s->status == 200;
}

static void post_headers(struct h2_conn *c, int32_t id, int status, void *arg)
{
	((struct post *)arg)->status = status;
}

static void post_data(struct h2_conn *c, int32_t id, const uint8_t *d, size_t n, void *arg)
{
	struct post *p = arg;
	char *nb;

	if (p->len + n > (1u << 20))
		return;   /* answers here are small; a huge one is cut */
	nb = realloc(p->body, p->len + n + 1);
	if (!nb)
		return;
	memcpy(nb + p->len, d, n);
	p->body = nb;
	p->len += n;
	nb[p->len] = '\0';
}

static void post_close(struct h2_conn *c, int32_t id, uint32_t code, void *arg)
{
	struct post *p = arg;

	post_done(p->s, p, code && !p->status ? -1 : p->status);
}

static const struct h2_resp_ops post_ops = { post_headers, post_data, post_close };

int sync_post(struct sync *s, const char *path, const char *body, sync_resp_fn fn, void *arg)
{
	struct h2_header ct = { "content-type", "application/json" };
	struct post *p;
	int32_t id;

	check(s);
	if (!sync_connected(s))
		return -ENOTCONN;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->s = s;
	p->fn = fn;
	p->arg = arg;
	id = h2_request(s->h, "POST", s->ep[s->cur].host, path, &ct, 1, body, strlen(body), &post_ops, p);
	if (id < 0) {
		free(p);
		return id;
	}
	p->next = s->posts;
	s->posts = p;
	return 0;
}

X509 *sync_ca(const struct sync *s) { return s->ca; }
X509 *sync_node_cert(const struct sync *s) { return s->cert; }
EVP_PKEY *sync_node_key(const struct sync *s) { return s->key; }
