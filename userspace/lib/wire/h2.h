/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * h2.h - HTTP/2 over TLS 1.3 (nghttp2 + OpenSSL) on non-blocking sockets,
 * for the control plane's API server, the agent's watch client and
 * sluicectl (and later HBONE).
 *
 * Contract: a struct h2_conn owns its socket, TLS session and nghttp2
 * session; the caller polls h2_conn_fd() for h2_conn_events() and calls
 * h2_conn_io() with what it got, and h2_conn_tick() about once a second.
 * Neither ever blocks. Memory per connection is bounded: a request body
 * larger than max_body is answered 413 and its data discarded; response
 * data queued and not yet taken by the peer is bounded by max_pending
 * (h2_stream_write() fails past it); a connection that has output pending
 * and makes no write progress for stall_ms, or whose TLS handshake takes
 * longer than handshake_ms, is closed. h2_conn_io() and h2_conn_tick()
 * return 0 or -errno (-ETIMEDOUT for a handshake or stall past its limit,
 * -ECONNRESET when the peer closed, -EPROTO for a TLS or HTTP/2 protocol
 * error, -ENOTCONN once dead): on -errno the connection is dead
 * (h2_conn_error() says why) and the caller frees it; h2_conn_free() reports every server stream still open
 * through on_stream_close first. Callbacks run inside h2_conn_io() and may
 * respond, write or submit at once.
 */
#ifndef SL_H2_H
#define SL_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct h2_conn;

#define H2_MAX_HDRS 8

struct h2_header {
	const char *name;
	const char *value;
};

/* A complete request as the server sees it. */
struct h2_req {
	int32_t stream_id;
	const char *method;
	const char *path;          /* without the query */
	const char *query;         /* after '?', or "" */
	const char *content_type;  /* "" when absent */
	size_t nhdrs;              /* other headers (lower-case names) */
	struct h2_header hdrs[H2_MAX_HDRS];
	const char *body;          /* NUL-terminated; body_len excludes the NUL */
	size_t body_len;
};

struct h2_server_ops {
	void (*on_request)(struct h2_conn *c, const struct h2_req *r, void *arg);
	/* a stream that reached on_request is gone (either side ended it) */
	void (*on_stream_close)(struct h2_conn *c, int32_t stream_id, void *arg);
};

struct h2_resp_ops {
	void (*on_headers)(struct h2_conn *c, int32_t id, int status, void *arg);
	void (*on_data)(struct h2_conn *c, int32_t id, const uint8_t *d, size_t n, void *arg);
	/* error_code: 0 after a complete response, else the HTTP/2 code */
	void (*on_close)(struct h2_conn *c, int32_t id, uint32_t error_code, void *arg);
};

struct h2_limits {
	size_t max_body;           /* request body a server accepts */
	size_t max_body_peer;      /* ... from a client whose certificate it
				    * verified (0: max_body) */
	size_t max_pending;        /* queued response bytes per connection */
	unsigned int max_streams;  /* concurrent streams a server allows */
	unsigned int handshake_ms;
	unsigned int stall_ms;
	unsigned int window;       /* our receive window, bytes */
};

extern const struct h2_limits h2_default_limits;

/* The control plane's API takes a request body this large from a client
 * with a certificate of its CA (an apply of a whole mesh: 10,000
 * ServiceEntries are some 6 MB), and h2_default_limits' 4 MiB from anyone
 * else. sluicectl reads no file larger. */
#define H2_CONTROL_BODY_MAX (64u << 20)

/* fd: an accepted socket (server) or a connect() under way (client);
 * made non-blocking here. The connection owns it from now on, even when
 * NULL is returned. */
struct h2_conn *h2_server_conn(int fd, SSL_CTX *ctx, const struct h2_limits *l,
			       const struct h2_server_ops *ops, void *arg);
struct h2_conn *h2_client_conn(int fd, SSL_CTX *ctx, const struct h2_limits *l);
void h2_conn_free(struct h2_conn *c);

int h2_conn_fd(const struct h2_conn *c);
/* POLLIN/POLLOUT (equal to EPOLLIN/EPOLLOUT) */
unsigned int h2_conn_events(const struct h2_conn *c);
int h2_conn_io(struct h2_conn *c, unsigned int revents);
int h2_conn_tick(struct h2_conn *c);
/* Write what is queued now, reading nothing (no callback runs): for a
 * connection other than the one whose callback is running, so that what
 * that callback queued leaves before the callback's remaining work. 0, or
 * -errno with the connection dead (h2_conn_io then fails too). Does
 * nothing for a connection inside its own h2_conn_io. */
int h2_conn_flush(struct h2_conn *c);
const char *h2_conn_error(const struct h2_conn *c);
bool h2_conn_established(const struct h2_conn *c);
/* The verified peer certificate's URI SAN, or NULL (none, not yet). */
const char *h2_conn_peer(const struct h2_conn *c);
SSL *h2_conn_ssl(const struct h2_conn *c);
/* Fail the handshake unless the peer's URI SAN ends with `suffix`
 * (checked before any request leaves). */
void h2_conn_expect_peer(struct h2_conn *c, const char *suffix);
void h2_conn_set_user(struct h2_conn *c, void *user);
void *h2_conn_user(const struct h2_conn *c);

/* Server: a whole response. 0 or -errno (-ENOENT: no such stream,
 * -ENOBUFS past max_pending). */
int h2_respond(struct h2_conn *c, int32_t id, int status, const char *content_type,
	       const void *body, size_t len);
/* Server: a response whose body follows in h2_stream_write() calls.
 * 0 or -errno. */
int h2_respond_stream(struct h2_conn *c, int32_t id, int status, const char *content_type);
/* Queue body bytes (server response or client request opened with
 * body == NULL and `stream` set). 0 or -errno: -ENOBUFS past max_pending
 * (close the conn), -ENOENT for no such stream, -ENOMEM. h2_stream_end()
 * likewise. */
int h2_stream_write(struct h2_conn *c, int32_t id, const void *d, size_t n);
int h2_stream_end(struct h2_conn *c, int32_t id);

/* Client: submit a request; the body (may be NULL) is copied. Returns the
 * stream id (> 0) or -errno (-EINVAL: more than H2_MAX_HDRS headers). */
int32_t h2_request(struct h2_conn *c, const char *method, const char *authority,
		   const char *path, const struct h2_header *hdrs, size_t nhdrs,
		   const void *body, size_t len, const struct h2_resp_ops *ops, void *arg);

#endif /* SL_H2_H */
