/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * hbone.h - HBONE: TCP connections tunnelled as HTTP/2 CONNECT streams over
 * mutual TLS 1.3 (OpenSSL 3 + nghttp2), as Istio ambient's ztunnel speaks
 * it on port 15008. Both ends of the per-node proxy use it: the outbound
 * side opens a client connection and one tunnel per captured TCP
 * connection; the inbound side accepts, authenticates and hands each
 * CONNECT to the caller, which answers with a TCP socket or a refusal.
 *
 * Contract:
 * - One thread, one epoll set (struct hb_loop, built on lib/core/loop.h). Nothing
 *   blocks but hb_loop_run()'s wait, the proxy's one event loop. Other fds
 *   (listeners, the caller's own) join the same set through hb_loop_base()
 *   and struct loop_handler.
 * - A tunnel joins one HTTP/2 stream to one TCP socket. Bytes move in both
 *   directions as they arrive; END_STREAM becomes shutdown(SHUT_WR) and a
 *   TCP EOF becomes END_STREAM (half-close carried across); RST_STREAM
 *   becomes a TCP reset (SO_LINGER 0) and a TCP reset or error becomes
 *   RST_STREAM(CONNECT_ERROR).
 * - Memory is bounded by flow control, not by the peers' goodwill: HTTP/2
 *   receive windows are handed back (nghttp2_session_consume) only for
 *   bytes written to the TCP side, so a slow TCP reader holds at most one
 *   stream window per tunnel (and one connection window per connection);
 *   a TCP socket is read only while its tunnel's buffer (limits.tcp_buf)
 *   has room, so a slow HTTP/2 peer stops the TCP sender.
 * - Hostile or broken peers cost themselves: a TLS handshake that fails or
 *   takes longer than handshake_ms, bytes that are not HTTP/2, a peer
 *   whose streams are refused (past max_streams, or by on_connect) or
 *   cancelled before our answer more than max_streams times in a burst
 *   (the count drains at 10 a second), or one that stops reading while we
 *   have output for stall_ms, ends that one connection with a reason
 *   (enum hb_close) given to on_conn_close.
 * - Server connections take a verified client certificate only
 *   (SSL_VERIFY_FAIL_IF_NO_PEER_CERT in the caller's context); the peer's
 *   URI SAN is offered to on_peer, which may refuse it. The client's SNI is
 *   offered to on_sni before our certificate goes out, so the server can
 *   present another one than its context's (secure naming).
 * - Client connections send the SNI they are given and accept a server
 *   whose verified URI SAN is exactly one of the expected ones; any other
 *   ends the connection (HB_CLOSE_PEER) before a tunnel carries a byte.
 */
#ifndef SL_PROXY_HBONE_H
#define SL_PROXY_HBONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "lib/core/loop.h"

struct hb_loop;
struct hb_conn;
struct hb_tunnel;

struct hb_limits {
	unsigned int handshake_ms;   /* TLS handshake must finish by then */
	unsigned int stall_ms;       /* output pending, no write progress */
	unsigned int connect_ms;     /* server: TCP connect to the destination */
	unsigned int max_streams;    /* concurrent tunnels per connection */
	unsigned int stream_window;  /* our HTTP/2 receive window per stream */
	unsigned int conn_window;    /* and per connection */
	unsigned int tcp_buf;        /* TCP -> HTTP/2 bytes held per tunnel */
};

extern const struct hb_limits hb_default_limits;

/* Why a connection ended (counters and flow events). */
enum hb_close {
	HB_CLOSE_NORMAL = 0,   /* peer closed, GOAWAY, or we retired it */
	HB_CLOSE_TLS,          /* the handshake failed (not TLS, bad or no cert) */
	HB_CLOSE_HANDSHAKE_TIMEOUT,
	HB_CLOSE_PEER,         /* server: on_peer refused the authenticated identity;
				* client: the server is not an expected identity */
	HB_CLOSE_HTTP2,        /* not HTTP/2, or a protocol error */
	HB_CLOSE_STREAM_FLOOD, /* streams past max_streams, again and again */
	HB_CLOSE_STALL,        /* stopped reading what we send */
	HB_CLOSE_IO,           /* socket or TLS error after the handshake */
	HB_CLOSE_MAX
};
const char *hb_close_name(enum hb_close r);

/* What a tunnel did, given to on_tunnel_close. */
struct hb_tunnel_stats {
	uint64_t bytes_to_tcp;       /* HTTP/2 -> TCP side */
	uint64_t bytes_from_tcp;     /* TCP -> HTTP/2 side */
	uint64_t opened_ms, closed_ms;
	int status;                  /* CONNECT answer: 200, 403, ...; 0: none */
	bool reset;                  /* ended by a reset (either side) */
	bool established;
};

struct hb_ops {
	/* Server: the peer's verified URI SAN after the handshake; return 0
	 * to accept, -errno (-EACCES) to close the connection (HB_CLOSE_PEER). */
	int (*on_peer)(struct hb_conn *c, const char *uri, void *arg);
	/*
	 * Server: a CONNECT to `authority` ("IP:PORT" as sent). Return a TCP
	 * socket (non-blocking, connect() started) that the tunnel then owns,
	 * with *targ the tunnel's user pointer; or a negative HTTP status
	 * (-400, -403, -503) to refuse: the stream is answered with it.
	 */
	int (*on_connect)(struct hb_conn *c, int32_t stream_id, const char *authority,
			  void **targ, void *arg);
	/* A tunnel is gone (both sides); `targ` as given at creation. */
	void (*on_tunnel_close)(struct hb_conn *c, const struct hb_tunnel_stats *st, void *targ,
				void *arg);
	/* The connection is gone; called once, before it is freed. Its
	 * tunnels were closed (and reported) first. */
	void (*on_conn_close)(struct hb_conn *c, enum hb_close why, const char *msg, void *arg);
	/* Server, optional: the client's SNI host name (NULL: none sent),
	 * during the handshake before our certificate is chosen. Return 0 to
	 * go on, having called SSL_use_cert_and_key(ssl, ...) to present
	 * another certificate than the context's, or -errno to fail the
	 * handshake (HB_CLOSE_TLS). */
	int (*on_sni)(struct hb_conn *c, SSL *ssl, const char *sni, void *arg);
};

/* ---- the loop ----------------------------------------------------------- */

struct hb_loop *hb_loop_new(void);
void hb_loop_free(struct hb_loop *l);   /* frees every connection left */
/* End every connection (tunnels reset and reported) and free them; the
 * loop and its other fds stay. */
void hb_loop_close_conns(struct hb_loop *l);
/* Every server connection gets hb_conn_drain(), every client one
 * hb_conn_retire(): tunnels open go on, new ones go elsewhere. */
void hb_loop_drain(struct hb_loop *l);
/* The epoll set, for the caller's own fds. */
struct loop *hb_loop_base(struct hb_loop *l);
/* Wait at most timeout_ms (0: do not wait) and dispatch; timers run at
 * most every 100 ms. 0, or -errno on an epoll failure. */
int hb_loop_run(struct hb_loop *l, int timeout_ms);
size_t hb_loop_conns(const struct hb_loop *l);
/* Server connections still in their TLS handshake. */
size_t hb_loop_handshaking(const struct hb_loop *l);
/* At a connection limit: end the server connection that has waited
 * longest in its TLS handshake (HB_CLOSE_HANDSHAKE_TIMEOUT), so that
 * peers that never finish one cannot keep a new peer out for long. False
 * if there is none. */
bool hb_loop_evict_handshaking(struct hb_loop *l);

/* ---- connections -------------------------------------------------------- */

/* fd: an accepted socket (server) or a non-blocking connect() under way
 * (client); owned by the connection from now on, even on NULL. `ctx`
 * must be TLS 1.3 with ALPN h2 (lib/wire/pki.h). */
struct hb_conn *hb_server_conn(struct hb_loop *l, int fd, SSL_CTX *ctx,
			       const struct hb_limits *lim, const struct hb_ops *ops, void *arg);
/* Client: `sni` is sent as the TLS server name (NULL: none); `expect` is
 * the NULL-terminated list of URI SANs the server may present (secure
 * naming; copied): anything else, or an empty list, ends the connection
 * with HB_CLOSE_PEER and a message naming both. */
struct hb_conn *hb_client_conn(struct hb_loop *l, int fd, SSL_CTX *ctx,
			       const struct hb_limits *lim, const char *sni,
			       const char *const *expect, const struct hb_ops *ops, void *arg);
/* Whether `presented` is exactly one of the NULL-terminated `expect`. */
bool hb_peer_expected(const char *presented, const char *const *expect);
/* Close now: tunnels are reset. on_conn_close runs with HB_CLOSE_NORMAL. */
void hb_conn_close(struct hb_conn *c);
/* No new tunnels; close once the last one ends (rotation, pool retire). */
void hb_conn_retire(struct hb_conn *c);
/* Server: tell the client to open no new streams here (a GOAWAY shutdown
 * notice: streams already on their way are still served); the client
 * retires the connection. For a proxy that drains for its successor. */
void hb_conn_drain(struct hb_conn *c);
bool hb_conn_retired(const struct hb_conn *c);
bool hb_conn_usable(const struct hb_conn *c);   /* not retired or dying, room for a tunnel */
unsigned int hb_conn_tunnels(const struct hb_conn *c);
const char *hb_conn_peer(const struct hb_conn *c);   /* verified URI SAN or NULL */
/* The URI SAN of the certificate we presented (after the handshake; NULL
 * before, or when it has none). */
const char *hb_conn_local(const struct hb_conn *c);
/* Why the connection is ending (in on_tunnel_close and on_conn_close);
 * HB_CLOSE_NORMAL while it lives. */
enum hb_close hb_conn_why(const struct hb_conn *c);
const char *hb_conn_addr(const struct hb_conn *c);   /* the peer's IP:PORT */
void hb_conn_set_user(struct hb_conn *c, void *u);
void *hb_conn_user(const struct hb_conn *c);

/*
 * Client: tunnel the TCP socket `fd` (connected, non-blocking; owned by
 * the tunnel from now on, even on failure) through a CONNECT to
 * `authority`. Bytes are read from fd once the answer is 200; any other
 * answer resets fd. 0, or -errno (fd closed with a reset): -ENOTCONN on
 * a connection dead or retired, -ENOMEM.
 */
int hb_tunnel_open(struct hb_conn *c, const char *authority, int fd, void *targ);

#endif /* SL_PROXY_HBONE_H */
