// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * h2.c - HTTP/2 over TLS on non-blocking sockets (see h2.h).
 *
 * Data flow: socket -> SSL_read -> nghttp2_session_mem_recv -> callbacks;
 * nghttp2_session_mem_send -> obuf (bounded) -> SSL_write -> socket. A
 * stream's outgoing body sits in its own buffer until nghttp2's data
 * provider takes it (flow control permitting); an empty buffer defers the
 * provider, h2_stream_write() resumes it.
 *
 * One file of some 850 lines on purpose: the streams, the nghttp2
 * callbacks, the TLS pump and the response/request calls all work on the
 * private struct h2_conn and its streams' buffers, and call each other
 * per frame; apart, that struct would have to be shared. What only uses
 * the public API (URLs, connect, one-shot fetch) is h2_client.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "lib/core/buf.h"
#include "lib/wire/h2.h"
#include "lib/core/log.h"
#include "lib/core/loop.h"
#include "lib/wire/pki.h"

#define H2_MAGIC     0x68326331u   /* "h2c1" */
#define OBUF_SOFT    (64 * 1024)
#define H2_KEEP_OUT  (256 * 1024)  /* a drained stream queue keeps up to this */
#define READ_BUDGET  (1024 * 1024)

const struct h2_limits h2_default_limits = {
	.max_body = 4u << 20,
	.max_pending = 256u << 20,
	.max_streams = 32,
	.handshake_ms = 10000,
	.stall_ms = 30000,
	.window = 16u << 20,
};

struct h2_stream {
	struct h2_stream *prev, *next;
	int32_t id;
	/* request as received (server) */
	char method[16];
	char path[1024];
	char ctype[128];
	size_t nhdrs;
	char hname[H2_MAX_HDRS][64];
	char hval[H2_MAX_HDRS][512];
	long long content_length;
	struct buf body;
	bool dispatched;           /* on_request was called */
	bool refused;              /* answered with an error; discard data */
	bool remote_done;          /* END_STREAM received */
	bool rst_after;            /* reset if the upload goes on too long */
	size_t discarded;          /* body bytes dropped after a refusal */
	bool answered;             /* our END_STREAM is out */
	/* outgoing body (response, or client request) */
	struct buf out;
	bool out_eof, deferred, has_provider;
	/* client */
	const struct h2_resp_ops *ops;
	void *arg;
};

struct h2_conn {
	uint32_t magic;
	int fd;
	bool server, connecting, handshaken, dead;
	SSL *ssl;
	nghttp2_session *ng;
	struct h2_limits lim;
	const struct h2_server_ops *sops;
	void *sarg;
	void *user;
	struct buf obuf;
	bool want_write;           /* SSL_write said WANT_WRITE */
	bool in_recv;              /* inside pump_in: its callbacks run */
	size_t pending;            /* bytes in streams' out buffers */
	uint64_t created_ms, progress_ms;
	struct h2_stream *streams;
	char peer[256];
	bool has_peer;
	char expect[128];          /* required suffix of the peer's URI SAN */
	char err[256];
};


static void check(const struct h2_conn *c)
{
	if (!c || c->magic != H2_MAGIC) {
		log_err("h2: bad connection object %p", (const void *)c);
		abort();
	}
}

static void set_err(struct h2_conn *c, const char *fmt, const char *what)
{
	if (!c->err[0])
		snprintf(c->err, sizeof(c->err), fmt, what);
}

/* ---- streams ------------------------------------------------------------- */

static struct h2_stream *stream_new(struct h2_conn *c, int32_t id)
{
	struct h2_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->id = id;
	s->content_length = -1;
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	return s;
}

static void stream_free(struct h2_conn *c, struct h2_stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	c->pending -= s->out.len - s->out.off;
	buf_free(&s->body);
	buf_free(&s->out);
	free(s);
}

static struct h2_stream *stream_get(struct h2_conn *c, int32_t id)
{
	/* a server has no session before its handshake: no streams either */
	return c->ng ? nghttp2_session_get_stream_user_data(c->ng, id) : NULL;
}

/* The request body a server takes on c: more from a client whose
 * certificate it verified, when the limits say so. */
static size_t body_max(const struct h2_conn *c)
{
	return c->has_peer && c->lim.max_body_peer ? c->lim.max_body_peer : c->lim.max_body;
}

static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *dst, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2_stream *s = src->ptr;
	struct h2_conn *c = ud;
	size_t avail = s->out.len - s->out.off, n = avail < len ? avail : len;

	if (!avail && !s->out_eof) {
		s->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n)   /* an empty body has no buffer: s->out.d is NULL */
		memcpy(dst, s->out.d + s->out.off, n);
	s->out.off += n;
	c->pending -= n;
	/* a drained queue that grew for a large message (a node's whole
	 * snapshot: megabytes) gives its memory back: the next small one
	 * starts a small buffer again */
	if (s->out.off == s->out.len && s->out.cap > H2_KEEP_OUT)
		buf_free(&s->out);
	if (s->out.off == s->out.len && s->out_eof)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int stream_queue(struct h2_conn *c, struct h2_stream *s, const void *d, size_t n)
{
	if (c->pending + n > c->lim.max_pending) {
		set_err(c, "%s", "peer is not reading: pending output over the limit");
		return -ENOBUFS;
	}
	if (!c->pending && n)
		c->progress_ms = loop_now_ms();   /* the stall clock starts now */
	if (n && buf_add(&s->out, d, n))
		return -ENOMEM;
	c->pending += n;
	if (s->deferred && s->has_provider) {
		s->deferred = false;
		nghttp2_session_resume_data(c->ng, s->id);
	}
	return 0;
}

/* ---- nghttp2 callbacks --------------------------------------------------- */

static int refuse(struct h2_conn *c, struct h2_stream *s, int status, const char *msg)
{
	char body[512];
	int n;

	s->refused = true;
	buf_free(&s->body);
	if (!s->remote_done)
		s->rst_after = true;
	n = snprintf(body, sizeof(body), "{\"error\": \"%s\"}\n", msg);
	return h2_respond(c, s->id, status, "application/json", body, (size_t)n);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s;

	if (!c->server || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = stream_new(c, f->hd.stream_id);
	if (!s)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, s);
	return 0;
}

static void copy_field(char *dst, size_t cap, const uint8_t *v, size_t vl)
{
	size_t n = vl < cap - 1 ? vl : cap - 1;

	memcpy(dst, v, n);
	dst[n] = '\0';
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
		     size_t nl, const uint8_t *val, size_t vl, uint8_t flags, void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s = stream_get(c, f->hd.stream_id);

#define IS(lit) (nl == sizeof(lit) - 1 && memcmp(name, lit, nl) == 0)
	if (!s)
		return 0;
	if (!c->server) {
		if (IS(":status") && s->ops && s->ops->on_headers && vl == 3) {
			int st = (val[0] - '0') * 100 + (val[1] - '0') * 10 + (val[2] - '0');

			s->ops->on_headers(c, s->id, st, s->arg);
		}
		return 0;
	}
	if (IS(":method")) {
		copy_field(s->method, sizeof(s->method), val, vl);
	} else if (IS(":path")) {
		if (vl >= sizeof(s->path))
			s->refused = true;  /* answered once the headers are in */
		copy_field(s->path, sizeof(s->path), val, vl);
	} else if (IS("content-type")) {
		copy_field(s->ctype, sizeof(s->ctype), val, vl);
	} else if (IS("content-length")) {
		char tmp[32];

		copy_field(tmp, sizeof(tmp), val, vl);
		s->content_length = strtoll(tmp, NULL, 10);
	} else if (nl && name[0] != ':' && s->nhdrs < H2_MAX_HDRS && nl < 64) {
		copy_field(s->hname[s->nhdrs], 64, name, nl);
		copy_field(s->hval[s->nhdrs], 512, val, vl);
		s->nhdrs++;
	}
#undef IS
	return 0;
}

static void dispatch(struct h2_conn *c, struct h2_stream *s)
{
	struct h2_req r = { .stream_id = s->id, .method = s->method, .path = s->path,
			    .content_type = s->ctype, .nhdrs = s->nhdrs };
	char *q = strchr(s->path, '?');

	if (q)
		*q++ = '\0';
	r.query = q ? q : "";
	for (size_t i = 0; i < s->nhdrs; i++)
		r.hdrs[i] = (struct h2_header){ s->hname[i], s->hval[i] };
	if (buf_add(&s->body, "", 1)) {  /* NUL terminator */
		refuse(c, s, 500, "out of memory");
		return;
	}
	r.body = (const char *)s->body.d;
	r.body_len = s->body.len - 1;
	s->dispatched = true;
	if (c->sops && c->sops->on_request)
		c->sops->on_request(c, &r, c->sarg);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s;

	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	s = stream_get(c, f->hd.stream_id);
	if (!s || !c->server)
		return 0;
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
		s->remote_done = true;
	if (s->refused && !s->dispatched && f->hd.type == NGHTTP2_HEADERS) {
		s->dispatched = true;  /* only the 414 below; never on_request */
		refuse(c, s, 414, "request path too long");
		return 0;
	}
	if (s->refused)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && s->content_length > (long long)body_max(c)) {
		char msg[128];

		snprintf(msg, sizeof(msg), "request body of %lld bytes is over the limit of %zu",
			 s->content_length, body_max(c));
		refuse(c, s, 413, msg);
		return 0;
	}
	if (s->remote_done)
		dispatch(c, s);
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *d,
			 size_t n, void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s = stream_get(c, id);

	if (!s)
		return 0;
	if (!c->server) {
		if (s->ops && s->ops->on_data)
			s->ops->on_data(c, id, d, n, s->arg);
		return 0;
	}
	if (s->refused) {
		/* Answered already. Clients (curl among them) drop a response
		 * whose stream is reset while they upload, so let a declared
		 * body finish and reset only an upload that goes on well past
		 * the limit. */
		s->discarded += n;
		if (s->rst_after && s->answered && s->discarded > 2 * body_max(c)) {
			s->rst_after = false;
			nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
		}
		return 0;
	}
	if (s->body.len + n > body_max(c)) {
		char msg[128];

		snprintf(msg, sizeof(msg), "request body is over the limit of %zu bytes",
			 body_max(c));
		refuse(c, s, 413, msg);
		return 0;
	}
	if (buf_add(&s->body, d, n))
		refuse(c, s, 500, "out of memory");
	return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2_stream *s;

	if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	s = stream_get(ud, f->hd.stream_id);
	if (s)
		s->answered = true;
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
	struct h2_conn *c = ud;
	struct h2_stream *s = stream_get(c, id);

	if (!s)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	if (c->server) {
		if (s->dispatched && !s->refused && c->sops && c->sops->on_stream_close)
			c->sops->on_stream_close(c, id, c->sarg);
	} else if (s->ops && s->ops->on_close) {
		s->ops->on_close(c, id, code, s->arg);
	}
	stream_free(c, s);
	return 0;
}

/* ---- connection ---------------------------------------------------------- */

static void tcp_tune(int fd)
{
	int one = 1, idle = 30, intvl = 10, cnt = 3;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* The HTTP/2 session, with our SETTINGS queued. 0 or -ENOMEM. */
static int session_new(struct h2_conn *c)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_settings_entry iv[3];
	int rc;

	if (nghttp2_session_callbacks_new(&cbs))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	rc = c->server ? nghttp2_session_server_new(&c->ng, cbs, c)
		       : nghttp2_session_client_new(&c->ng, cbs, c);
	nghttp2_session_callbacks_del(cbs);
	if (rc)
		return -ENOMEM;
	iv[0] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
					  c->server ? c->lim.max_streams : 100 };
	iv[1] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->lim.window };
	iv[2] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 };
	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 3) ||
	    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)c->lim.window))
		return -ENOMEM;
	return 0;
}

static struct h2_conn *conn_new(int fd, SSL_CTX *ctx, const struct h2_limits *l, bool server)
{
	struct h2_conn *c = calloc(1, sizeof(*c));

	if (!c || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		goto fail;
	c->magic = H2_MAGIC;
	c->fd = fd;
	c->server = server;
	c->lim = *(l ? l : &h2_default_limits);
	c->created_ms = c->progress_ms = loop_now_ms();
	tcp_tune(fd);
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
		pki_log_errors("creating a TLS session", NULL, 0);
		goto fail;
	}
	if (server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	/* a server's session waits for the handshake: a peer that never
	 * finishes one does not hold it (26 KiB) */
	if (!server && session_new(c))
		goto fail;
	return c;
fail:
	if (c) {
		c->magic = H2_MAGIC;
		c->fd = fd;
		h2_conn_free(c);
	} else {
		close(fd);
	}
	return NULL;
}

struct h2_conn *h2_server_conn(int fd, SSL_CTX *ctx, const struct h2_limits *l,
			       const struct h2_server_ops *ops, void *arg)
{
	struct h2_conn *c = conn_new(fd, ctx, l, true);

	if (c) {
		c->sops = ops;
		c->sarg = arg;
	}
	return c;
}

struct h2_conn *h2_client_conn(int fd, SSL_CTX *ctx, const struct h2_limits *l)
{
	struct h2_conn *c = conn_new(fd, ctx, l, false);

	if (c)
		c->connecting = true;
	return c;
}

void h2_conn_free(struct h2_conn *c)
{
	if (!c)
		return;
	check(c);
	/* report the server streams still open, then drop them all */
	while (c->streams) {
		struct h2_stream *s = c->streams;

		if (c->server && s->dispatched && !s->refused && c->sops && c->sops->on_stream_close)
			c->sops->on_stream_close(c, s->id, c->sarg);
		if (c->ng)
			nghttp2_session_set_stream_user_data(c->ng, s->id, NULL);
		stream_free(c, s);
	}
	nghttp2_session_del(c->ng);
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	buf_free(&c->obuf);
	c->magic = 0;
	free(c);
}

int h2_conn_fd(const struct h2_conn *c) { return c->fd; }
const char *h2_conn_error(const struct h2_conn *c) { return c->err[0] ? c->err : "connection closed"; }
bool h2_conn_established(const struct h2_conn *c) { return c->handshaken; }
const char *h2_conn_peer(const struct h2_conn *c) { return c->has_peer ? c->peer : NULL; }
SSL *h2_conn_ssl(const struct h2_conn *c) { return c->ssl; }
void h2_conn_set_user(struct h2_conn *c, void *user) { c->user = user; }
void *h2_conn_user(const struct h2_conn *c) { return c->user; }

unsigned int h2_conn_events(const struct h2_conn *c)
{
	unsigned int ev = POLLIN;

	if (c->connecting || c->want_write || c->obuf.len > c->obuf.off ||
	    (c->handshaken && nghttp2_session_want_write(c->ng)))
		ev |= POLLOUT;
	return ev;
}

/* A fatal TLS error: record why. */
static int tls_fail(struct h2_conn *c, const char *what, int ret)
{
	int e = SSL_get_error(c->ssl, ret), err = errno;
	char msg[200];

	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		snprintf(msg, sizeof(msg), "%s: %s", what,
			 ret == 0 || !err ? "connection closed by peer" : strerror(err));
		set_err(c, "%s", msg);
		return ret == 0 || !err ? -ECONNRESET : -err;
	}
	if (e == SSL_ERROR_ZERO_RETURN) {
		set_err(c, "%s", "connection closed by peer");
		return -ECONNRESET;
	}
	pki_log_errors_at(LOG_DEBUG, what, msg, sizeof(msg));
	set_err(c, "%s", msg);
	return -EPROTO;
}

static int do_handshake(struct h2_conn *c)
{
	const unsigned char *alpn = NULL;
	unsigned int alen = 0;
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r != 1) {
		int e = SSL_get_error(c->ssl, r);

		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			c->want_write = e == SSL_ERROR_WANT_WRITE;
			return 0;
		}
		return tls_fail(c, "TLS handshake", r);
	}
	c->want_write = false;
	if (c->server && session_new(c)) {
		set_err(c, "%s", "out of memory for the HTTP/2 session");
		return -ENOMEM;
	}
	c->handshaken = true;
	SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
	if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
		set_err(c, "%s", "the peer did not negotiate ALPN h2");
		return -EPROTO;
	}
	c->has_peer = pki_peer_uri(c->ssl, c->peer, sizeof(c->peer)) == 0;
	if (c->expect[0]) {
		size_t pl = c->has_peer ? strlen(c->peer) : 0, el = strlen(c->expect);

		if (pl < el || strcmp(c->peer + pl - el, c->expect) != 0) {
			char msg[512];

			snprintf(msg, sizeof(msg), "the peer's certificate names %s, not *%s",
				 c->has_peer ? c->peer : "no URI", c->expect);
			set_err(c, "%s", msg);
			return -EACCES;
		}
	}
	return 0;
}

void h2_conn_expect_peer(struct h2_conn *c, const char *suffix)
{
	check(c);
	snprintf(c->expect, sizeof(c->expect), "%s", suffix);
}

static int pump_out(struct h2_conn *c)
{
	for (;;) {
		if (c->obuf.len > c->obuf.off) {
			int w;

			if (!c->handshaken)
				return 0;
			ERR_clear_error();
			w = SSL_write(c->ssl, c->obuf.d + c->obuf.off, (int)(c->obuf.len - c->obuf.off));
			if (w > 0) {
				c->obuf.off += (size_t)w;
				c->progress_ms = loop_now_ms();
				c->want_write = false;
				continue;
			}
			switch (SSL_get_error(c->ssl, w)) {
			case SSL_ERROR_WANT_WRITE:
				c->want_write = true;
				return 0;
			case SSL_ERROR_WANT_READ:
				return 0;
			default:
				return tls_fail(c, "TLS write", w);
			}
		}
		c->obuf.off = c->obuf.len = 0;
		while (c->obuf.len < OBUF_SOFT) {
			const uint8_t *d;
			ssize_t n = nghttp2_session_mem_send(c->ng, &d);

			if (n < 0) {
				set_err(c, "HTTP/2: %s", nghttp2_strerror((int)n));
				return -EPROTO;
			}
			if (n == 0)
				break;
			if (buf_add(&c->obuf, d, (size_t)n)) {
				set_err(c, "%s", "out of memory");
				return -ENOMEM;
			}
		}
		if (c->obuf.len == 0)
			return 0;
	}
}

static int pump_in(struct h2_conn *c)
{
	uint8_t b[16384];
	size_t total = 0;

	while (total < READ_BUDGET) {
		int r;
		ssize_t used;

		ERR_clear_error();
		r = SSL_read(c->ssl, b, sizeof(b));
		if (r <= 0) {
			int e = SSL_get_error(c->ssl, r);

			if (e == SSL_ERROR_WANT_READ)
				return 0;
			if (e == SSL_ERROR_WANT_WRITE) {
				c->want_write = true;
				return 0;
			}
			return tls_fail(c, "TLS read", r);
		}
		total += (size_t)r;
		c->in_recv = true;
		used = nghttp2_session_mem_recv(c->ng, b, (size_t)r);
		c->in_recv = false;
		if (used < 0) {
			set_err(c, "HTTP/2: %s", nghttp2_strerror((int)used));
			return -EPROTO;
		}
	}
	return 0;
}

int h2_conn_io(struct h2_conn *c, unsigned int revents)
{
	int rc;

	check(c);
	if (c->dead)
		return -ENOTCONN;
	if (c->connecting) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return 0;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
			rc = -(soerr ? soerr : errno);
			set_err(c, "connect: %s", strerror(-rc));
			goto dead;
		}
		c->connecting = false;
	}
	if (!c->handshaken) {
		rc = do_handshake(c);
		if (rc)
			goto dead;
		if (!c->handshaken)
			return 0;
	}
	rc = pump_in(c);
	if (!rc)
		rc = pump_out(c);
	if (rc)
		goto dead;
	if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
	    c->obuf.len == c->obuf.off) {
		set_err(c, "%s", "HTTP/2 session ended");
		rc = -ECONNRESET;
		goto dead;
	}
	return 0;
dead:
	c->dead = true;
	return rc;
}

int h2_conn_flush(struct h2_conn *c)
{
	int rc;

	check(c);
	if (c->dead)
		return -ENOTCONN;
	/* nghttp2 sends nothing from within its own callbacks: the
	 * connection whose input is being read is flushed by its io */
	if (c->connecting || !c->handshaken || c->in_recv)
		return 0;
	rc = pump_out(c);
	if (rc)
		c->dead = true;
	return rc;
}

int h2_conn_tick(struct h2_conn *c)
{
	uint64_t now = loop_now_ms();
	int rc = -ETIMEDOUT;

	check(c);
	if (c->dead)
		return -ENOTCONN;
	if (!c->handshaken && now - c->created_ms > c->lim.handshake_ms) {
		set_err(c, "%s", c->connecting ? "connect timed out" : "TLS handshake timed out");
		goto dead;
	}
	if ((c->obuf.len > c->obuf.off || c->pending) && now - c->progress_ms > c->lim.stall_ms) {
		set_err(c, "%s", "peer stopped reading: no write progress, connection cut off");
		goto dead;
	}
	return 0;
dead:
	c->dead = true;
	return rc;
}

/* ---- responses and requests ---------------------------------------------- */

static nghttp2_nv nv(const char *n, const char *v)
{
	return (nghttp2_nv){ (uint8_t *)n, (uint8_t *)v, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE };
}

static int respond(struct h2_conn *c, int32_t id, int status, const char *ctype,
		   const void *body, size_t len, bool stream)
{
	struct h2_stream *s = stream_get(c, id);
	nghttp2_data_provider prd = { .source.ptr = s, .read_callback = data_read };
	char st[8], cl[24];
	nghttp2_nv hdr[3];
	size_t n = 0;
	int rc;

	check(c);
	if (!s)
		return -ENOENT;
	snprintf(st, sizeof(st), "%d", status);
	hdr[n++] = nv(":status", st);
	if (ctype)
		hdr[n++] = nv("content-type", ctype);
	if (!stream) {
		snprintf(cl, sizeof(cl), "%zu", len);
		hdr[n++] = nv("content-length", cl);
		rc = stream_queue(c, s, body, len);
		if (rc)
			return rc;
		s->out_eof = true;
	}
	s->has_provider = true;
	if (nghttp2_submit_response(c->ng, id, hdr, n, &prd)) {
		set_err(c, "%s", "HTTP/2: submitting a response failed");
		return -EIO;
	}
	return 0;
}

int h2_respond(struct h2_conn *c, int32_t id, int status, const char *content_type,
	       const void *body, size_t len)
{
	return respond(c, id, status, content_type, body, len, false);
}

int h2_respond_stream(struct h2_conn *c, int32_t id, int status, const char *content_type)
{
	return respond(c, id, status, content_type, NULL, 0, true);
}

int h2_stream_write(struct h2_conn *c, int32_t id, const void *d, size_t n)
{
	struct h2_stream *s;

	check(c);
	s = stream_get(c, id);
	return s ? stream_queue(c, s, d, n) : -ENOENT;
}

int h2_stream_end(struct h2_conn *c, int32_t id)
{
	struct h2_stream *s;

	check(c);
	s = stream_get(c, id);
	if (!s)
		return -ENOENT;
	s->out_eof = true;
	return stream_queue(c, s, NULL, 0);
}

int32_t h2_request(struct h2_conn *c, const char *method, const char *authority,
		   const char *path, const struct h2_header *hdrs, size_t nhdrs,
		   const void *body, size_t len, const struct h2_resp_ops *ops, void *arg)
{
	nghttp2_nv hv[4 + H2_MAX_HDRS + 1];
	nghttp2_data_provider prd = { .read_callback = data_read };
	struct h2_stream *s;
	char cl[24];
	size_t n = 0;
	int32_t id;
	int rc;

	check(c);
	if (nhdrs > H2_MAX_HDRS)
		return -EINVAL;
	s = stream_new(c, 0);
	if (!s)
		return -ENOMEM;
	s->ops = ops;
	s->arg = arg;
	hv[n++] = nv(":method", method);
	hv[n++] = nv(":scheme", "https");
	hv[n++] = nv(":authority", authority);
	hv[n++] = nv(":path", path);
	for (size_t i = 0; i < nhdrs; i++)
		hv[n++] = nv(hdrs[i].name, hdrs[i].value);
	if (body) {
		snprintf(cl, sizeof(cl), "%zu", len);
		hv[n++] = nv("content-length", cl);
		rc = stream_queue(c, s, body, len);
		if (rc)
			goto fail;
		s->out_eof = true;
		s->has_provider = true;
		prd.source.ptr = s;
	}
	id = nghttp2_submit_request(c->ng, NULL, hv, n, body ? &prd : NULL, s);
	if (id < 0) {
		rc = id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EIO;
		goto fail;
	}
	s->id = id;
	return id;
fail:
	stream_free(c, s);
	return rc;
}
