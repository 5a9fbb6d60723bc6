// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxy/hbone: CONNECT tunnels over mutual TLS 1.3 between a client and a
 * server connection in one loop, over real loopback TCP sockets with real
 * certificates: bytes both ways, half-close, resets, a refused CONNECT,
 * flow control that bounds what a slow reader makes the tunnel hold,
 * handshakes that fail (no certificate, another CA, garbage, stall), a
 * peer that opens streams past the limit, eviction of the oldest
 * unfinished handshake, and secure naming: the server
 * picks its certificate by SNI, the client accepts exactly the expected
 * identities.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "deadline.h"
#include "proxy/hbone.h"
#include "lib/wire/pki.h"

#define TD "spiffe://hb.test"

struct fx {
	struct pki_ca ca, other;
	EVP_PKEY *skey, *ckey, *okey, *wkey;
	X509 *scert, *ccert, *ocert, *wcert;   /* wcert: the "server" workload's */
	SSL_CTX *sctx, *cctx, *nocert_ctx, *other_ctx;
	struct hb_loop *l;
	int lfd, echo_lfd;            /* HBONE listener, destination listener */
	unsigned short port, echo_port;
	/* server side record */
	char peer[256], authority[128];
	char sni[128], local[256];    /* the SNI received, what the server presented */
	bool by_sni;                  /* present wcert for SNI "w.test" */
	enum hb_close client_why;
	char client_msg[700];
	int refuse_status;            /* on_connect answers this (negative) */
	int conn_closes, tunnel_closes, client_closes;   /* server side, and client */
	int pair_lfd;
	unsigned short pair_port;
	enum hb_close last_why;
	struct hb_tunnel_stats last_st;
	int dest_fd;                  /* the destination's accepted socket */
	bool no_accept_dest;
};

static struct fx F;

static int listen_lo(unsigned short *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 1024), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int connect_lo(unsigned short port, bool nonblock)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);

	cr_assert_geq(fd, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS)
		cr_assert_fail("connect: %s", strerror(errno));
	return fd;
}

static X509 *leaf(struct pki_ca *ca, EVP_PKEY *k, const char *uri, long secs)
{
	char err[256];
	struct pki_names n = { .cn = "t", .uri = uri };
	X509 *x = pki_issue(ca, k, &n, secs, err, sizeof(err));

	cr_assert_not_null(x, "%s", err);
	return x;
}

static SSL_CTX *ctx(bool server, X509 *ca, X509 *cert, EVP_PKEY *key)
{
	struct pki_tls_opts o = { .server = server, .ca = ca, .cert = cert, .key = key,
				  .alpn = "h2", .require_peer_cert = server };
	SSL_CTX *c = pki_tls_ctx(&o);

	cr_assert_not_null(c);
	return c;
}

static int on_peer(struct hb_conn *c, const char *uri, void *arg)
{
	snprintf(F.peer, sizeof(F.peer), "%s", uri);
	return strncmp(uri, TD "/ns/", strlen(TD "/ns/")) == 0 ? 0 : -1;
}

static int on_connect(struct hb_conn *c, int32_t sid, const char *authority, void **targ, void *arg)
{
	snprintf(F.authority, sizeof(F.authority), "%s", authority);
	snprintf(F.local, sizeof(F.local), "%s", hb_conn_local(c) ?: "");
	if (F.refuse_status)
		return F.refuse_status;
	return connect_lo(F.echo_port, true);
}

static void on_tunnel_close(struct hb_conn *c, const struct hb_tunnel_stats *st, void *targ, void *arg)
{
	F.tunnel_closes++;
	F.last_st = *st;
}

static void on_conn_close(struct hb_conn *c, enum hb_close why, const char *msg, void *arg)
{
	F.conn_closes++;
	F.last_why = why;
}

static int on_sni(struct hb_conn *c, SSL *ssl, const char *sni, void *arg)
{
	snprintf(F.sni, sizeof(F.sni), "%s", sni ?: "");
	if (F.by_sni && sni && !strcmp(sni, "w.test"))
		return SSL_use_cert_and_key(ssl, F.wcert, F.wkey, NULL, 1) == 1 ? 0 : -1;
	return 0;
}

static const struct hb_ops sops = { on_peer, on_connect, on_tunnel_close, on_conn_close, on_sni };
static void on_client_close(struct hb_conn *c, enum hb_close why, const char *msg, void *arg)
{
	F.client_closes++;
	F.client_why = why;
	snprintf(F.client_msg, sizeof(F.client_msg), "%s", msg);
}

static const struct hb_ops cops = { NULL, NULL, NULL, on_client_close, NULL };

static struct hb_limits lim;

static void setup(void)
{
	char err[256], dir[] = "/tmp/sluice-hb-XXXXXX", cp[64], kp[64], cp2[64], kp2[64];

	test_deadline(60);
	memset(&F, 0, sizeof(F));
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cp, sizeof(cp), "%s/ca.crt", dir);
	snprintf(kp, sizeof(kp), "%s/ca.key", dir);
	snprintf(cp2, sizeof(cp2), "%s/o.crt", dir);
	snprintf(kp2, sizeof(kp2), "%s/o.key", dir);
	cr_assert_eq(pki_ca_open(&F.ca, cp, kp, "mesh", true, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pki_ca_open(&F.other, cp2, kp2, "other", true, err, sizeof(err)), 0, "%s", err);
	unlink(cp); unlink(kp); unlink(cp2); unlink(kp2); rmdir(dir);
	F.skey = pki_key_new();
	F.ckey = pki_key_new();
	F.okey = pki_key_new();
	F.wkey = pki_key_new();
	F.wcert = leaf(&F.ca, F.wkey, TD "/ns/default/sa/server", 3600);
	F.scert = leaf(&F.ca, F.skey, TD "/sluice/node/n2", 3600);
	F.ccert = leaf(&F.ca, F.ckey, TD "/ns/default/sa/client", 3600);
	F.ocert = leaf(&F.other, F.okey, TD "/ns/default/sa/client", 3600);
	F.sctx = ctx(true, F.ca.cert, F.scert, F.skey);
	F.cctx = ctx(false, F.ca.cert, F.ccert, F.ckey);
	F.nocert_ctx = ctx(false, F.ca.cert, NULL, NULL);
	F.other_ctx = ctx(false, F.ca.cert, F.ocert, F.okey);
	F.l = hb_loop_new();
	cr_assert_not_null(F.l);
	F.lfd = listen_lo(&F.port);
	F.echo_lfd = listen_lo(&F.echo_port);
	F.pair_lfd = listen_lo(&F.pair_port);
	F.dest_fd = -1;
	lim = hb_default_limits;
}

static void teardown(void)
{
	hb_loop_free(F.l);
	close(F.lfd);
	close(F.echo_lfd);
	close(F.pair_lfd);
	if (F.dest_fd >= 0)
		close(F.dest_fd);
	SSL_CTX_free(F.sctx); SSL_CTX_free(F.cctx); SSL_CTX_free(F.nocert_ctx); SSL_CTX_free(F.other_ctx);
	X509_free(F.scert); X509_free(F.ccert); X509_free(F.ocert); X509_free(F.wcert);
	EVP_PKEY_free(F.skey); EVP_PKEY_free(F.ckey); EVP_PKEY_free(F.okey); EVP_PKEY_free(F.wkey);
	pki_ca_close(&F.ca);
	pki_ca_close(&F.other);
}

TestSuite(hbone, .init = setup, .fini = teardown);

/* Run the loop, accepting HBONE connections and destination connections. */
static void spin(int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p[2] = { { F.lfd, POLLIN, 0 }, { F.echo_lfd, POLLIN, 0 } };

		poll(p, 2, 0);
		if (p[0].revents) {
			int fd = accept4(F.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (fd >= 0)
				hb_server_conn(F.l, fd, F.sctx, &lim, &sops, NULL);
		}
		if (p[1].revents && F.dest_fd < 0 && !F.no_accept_dest)
			F.dest_fd = accept4(F.echo_lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		hb_loop_run(F.l, 5);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
			return;
	}
}

/* A connected loopback TCP pair (resets need TCP, not AF_UNIX). */
static void tcp_pair(int sv[2])
{
	sv[0] = connect_lo(F.pair_port, false);
	sv[1] = accept4(F.pair_lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(sv[1], 0);
}

/* A client connection (SNI `sni`, accepting the servers in `expect`) and
 * one tunnel; returns the application's end. */
static int tunnel_named(SSL_CTX *c, const char *sni, const char *const *expect,
			struct hb_conn **hc)
{
	int sv[2];
	struct hb_conn *h = hb_client_conn(F.l, connect_lo(F.port, true), c, &lim, sni, expect,
					   &cops, NULL);

	cr_assert_not_null(h);
	tcp_pair(sv);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	cr_assert_eq(hb_tunnel_open(h, "10.0.0.9:8080", sv[1], NULL), 0);
	if (hc)
		*hc = h;
	return sv[0];
}

static int tunnel(SSL_CTX *c, struct hb_conn **hc)
{
	static const char *const expect[] = { TD "/sluice/node/n2", NULL };

	return tunnel_named(c, NULL, expect, hc);
}

/* Read what is there within ms; returns bytes read, -1 at EOF with none,
 * -2 on error (errno kept). */
static ssize_t drain(int fd, char *buf, size_t len, int ms, bool *eof)
{
	size_t got = 0;

	*eof = false;
	for (int i = 0; i < ms && got < len; i++) {
		ssize_t r = recv(fd, buf + got, len - got, MSG_DONTWAIT);

		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0) {
			*eof = true;
			break;
		}
		if (errno != EAGAIN)
			return -2;
		spin(1);
	}
	return (ssize_t)got;
}

Test(hbone, bytes_both_ways_and_half_close)
{
	char buf[64];
	bool eof;
	int app = tunnel(F.cctx, NULL);

	spin(200);
	cr_assert_geq(F.dest_fd, 0, "the destination got no connection");
	cr_assert_str_eq(F.peer, TD "/ns/default/sa/client");
	cr_assert_str_eq(F.authority, "10.0.0.9:8080");
	cr_assert_eq(send(app, "ping", 4, 0), 4);
	cr_assert_eq(drain(F.dest_fd, buf, 4, 1000, &eof), 4);
	cr_assert_eq(memcmp(buf, "ping", 4), 0);
	cr_assert_eq(send(F.dest_fd, "pong!", 5, 0), 5);
	cr_assert_eq(drain(app, buf, 5, 1000, &eof), 5);
	cr_assert_eq(memcmp(buf, "pong!", 5), 0);
	/* client half-closes: the destination sees EOF and can still answer */
	shutdown(app, SHUT_WR);
	cr_assert_eq(drain(F.dest_fd, buf, sizeof(buf), 1000, &eof), 0);
	cr_assert(eof, "END_STREAM did not become a FIN");
	cr_assert_eq(send(F.dest_fd, "late", 4, 0), 4);
	cr_assert_eq(drain(app, buf, 4, 1000, &eof), 4);
	cr_assert_eq(memcmp(buf, "late", 4), 0);
	shutdown(F.dest_fd, SHUT_WR);
	cr_assert_eq(drain(app, buf, sizeof(buf), 1000, &eof), 0);
	cr_assert(eof);
	spin(100);
	cr_assert_eq(F.tunnel_closes, 1);
	cr_assert(!F.last_st.reset);
	cr_assert_eq(F.last_st.bytes_to_tcp, 4);
	cr_assert_eq(F.last_st.bytes_from_tcp, 9);
	close(app);
}

Test(hbone, reset_carried_across)
{
	char buf[16];
	bool eof;
	int app = tunnel(F.cctx, NULL);
	struct linger lg = { 1, 0 };

	spin(200);
	cr_assert_geq(F.dest_fd, 0);
	cr_assert_eq(send(app, "x", 1, 0), 1);
	cr_assert_eq(drain(F.dest_fd, buf, 1, 1000, &eof), 1);
	/* the destination resets: the client gets a reset, not an EOF */
	setsockopt(F.dest_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(F.dest_fd);
	F.dest_fd = -1;
	F.no_accept_dest = true;
	cr_assert_eq(drain(app, buf, sizeof(buf), 1000, &eof), -2);
	cr_assert(errno == ECONNRESET, "expected ECONNRESET, got %s", strerror(errno));
	spin(50);
	cr_assert_eq(F.tunnel_closes, 1);
	cr_assert(F.last_st.reset);
	close(app);
}

Test(hbone, refused_connect_resets_the_client_and_is_reported)
{
	char buf[16];
	bool eof;
	int app;

	F.refuse_status = -403;
	app = tunnel(F.cctx, NULL);
	spin(200);
	cr_assert_eq(drain(app, buf, sizeof(buf), 500, &eof), -2);
	cr_assert(errno == ECONNRESET, "%s", strerror(errno));
	cr_assert_lt(F.dest_fd, 0);
	close(app);
}

/* The byte at stream offset k: a pattern in which a lost, repeated or
 * reordered piece shows. */
static uint8_t pat(size_t k)
{
	return (uint8_t)(k ^ (k >> 8) ^ (k >> 16) ^ 0x5a);
}

Test(hbone, slow_reader_bounds_what_the_tunnel_holds)
{
	static uint8_t chunk[65536];
	size_t sent = 0;
	int app;

	lim.stream_window = 256 << 10;
	lim.tcp_buf = 64 << 10;
	app = tunnel(F.cctx, NULL);
	spin(200);
	cr_assert_geq(F.dest_fd, 0);
	/* the destination never reads: after the windows, socket buffers and
	 * the tunnel buffer fill, the sender must be stopped */
	for (int i = 0; i < 2000; i++) {
		ssize_t w;

		for (size_t k = 0; k < sizeof(chunk); k++)
			chunk[k] = pat(sent + k);
		w = send(app, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (w > 0)
			sent += (size_t)w;
		spin(1);
	}
	cr_assert_lt(sent, 32u << 20, "%zu bytes accepted from a client whose reader is stuck", sent);
	cr_assert_gt(sent, 256u << 10);
	/* and all of it arrives, in order, once the destination reads (the
	 * proxy's writes to it were partial again and again meanwhile) */
	{
		size_t got = 0;
		bool eof;

		for (int i = 0; i < 5000 && got < sent; i++) {
			ssize_t r = drain(F.dest_fd, (char *)chunk, sizeof(chunk), 1, &eof);

			for (ssize_t k = 0; k < r; k++)
				cr_assert_eq(chunk[k], pat(got + (size_t)k), "byte %zu differs",
					     got + (size_t)k);
			if (r > 0)
				got += (size_t)r;
		}
		cr_assert_eq(got, sent);
	}
	close(app);
}

Test(hbone, client_without_certificate_is_refused)
{
	int app = tunnel(F.nocert_ctx, NULL);

	spin(300);
	cr_assert_lt(F.dest_fd, 0);
	cr_assert_geq(F.conn_closes, 1);
	cr_assert_eq(F.last_why, HB_CLOSE_TLS);
	close(app);
}

Test(hbone, client_from_another_ca_is_refused)
{
	int app = tunnel(F.other_ctx, NULL);

	spin(300);
	cr_assert_lt(F.dest_fd, 0);
	cr_assert_eq(F.last_why, HB_CLOSE_TLS);
	close(app);
}

Test(hbone, garbage_and_stalled_handshakes_are_cut_off)
{
	int g, s;

	lim.handshake_ms = 300;
	g = connect_lo(F.port, false);
	s = connect_lo(F.port, false);
	cr_assert_eq(send(g, "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
	for (int i = 0; i < 100 && !F.conn_closes; i++)
		spin(5);   /* long before the handshake limit (300 ms) */
	cr_assert_eq(F.conn_closes, 1);
	cr_assert_eq(F.last_why, HB_CLOSE_TLS);
	for (int i = 0; i < 400 && F.conn_closes < 2; i++)
		spin(5);   /* s sends nothing */
	cr_assert_eq(F.conn_closes, 2);
	cr_assert_eq(F.last_why, HB_CLOSE_HANDSHAKE_TIMEOUT);
	cr_assert_eq(hb_loop_conns(F.l), 0);
	close(g);
	close(s);
}

Test(hbone, streams_past_the_limit_cut_the_connection_off)
{
	struct hb_conn *h;
	int apps[12];

	lim.max_streams = 2;
	apps[0] = tunnel(F.cctx, &h);
	for (int i = 1; i < 12; i++) {
		int sv[2];

		tcp_pair(sv);
		/* the client's own limit comes from our settings; raise it by
		 * opening before the server's SETTINGS arrive */
		hb_tunnel_open(h, "10.0.0.9:8080", sv[1], NULL);
		apps[i] = sv[0];
	}
	spin(300);
	cr_assert_geq(F.conn_closes, 1);
	cr_assert(F.last_why == HB_CLOSE_STREAM_FLOOD || F.last_why == HB_CLOSE_HTTP2 ||
		  F.last_why == HB_CLOSE_NORMAL, "why %d", F.last_why);
	for (int i = 0; i < 12; i++)
		close(apps[i]);
}

Test(hbone, peer_expected_is_exact_and_only_the_listed)
{
	const char *const two[] = { TD "/ns/a/sa/x", TD "/ns/b/sa/y", NULL };
	const char *const none[] = { NULL };

	cr_assert(hb_peer_expected(TD "/ns/a/sa/x", two));
	cr_assert(hb_peer_expected(TD "/ns/b/sa/y", two));
	cr_assert(!hb_peer_expected(TD "/ns/a/sa/xx", two), "a longer ID is another identity");
	cr_assert(!hb_peer_expected(TD "/ns/a/sa/", two), "a prefix is another identity");
	cr_assert(!hb_peer_expected(TD "/ns/b/sa/x", two), "namespace and account go together");
	cr_assert(!hb_peer_expected("spiffe://other.td/ns/a/sa/x", two));
	cr_assert(!hb_peer_expected(TD "/sluice/node/n2", two), "a node is not a workload");
	cr_assert(!hb_peer_expected(TD "/ns/a/sa/x", none), "an empty list accepts nothing");
	cr_assert(!hb_peer_expected(TD "/ns/a/sa/x", NULL));
	cr_assert(!hb_peer_expected(NULL, two));
}

Test(hbone, server_presents_the_named_workload_and_the_client_accepts_it)
{
	static const char *const expect[] = { TD "/ns/default/sa/other", TD "/ns/default/sa/server",
					      NULL };
	struct hb_conn *h;
	char buf[8];
	bool eof;
	int app;

	F.by_sni = true;
	app = tunnel_named(F.cctx, "w.test", expect, &h);
	spin(200);
	cr_assert_str_eq(F.sni, "w.test");
	cr_assert_geq(F.dest_fd, 0, "the tunnel did not open: %s", F.client_msg);
	cr_assert_str_eq(hb_conn_peer(h), TD "/ns/default/sa/server");
	cr_assert_str_eq(F.local, TD "/ns/default/sa/server", "the server's side of it");
	cr_assert_eq(send(app, "ping", 4, 0), 4);
	cr_assert_eq(drain(F.dest_fd, buf, 4, 1000, &eof), 4);
	cr_assert_eq(F.client_closes, 0);
	close(app);
}

Test(hbone, server_presenting_another_identity_is_refused_by_the_client)
{
	static const char *const expect[] = { TD "/ns/default/sa/server", NULL };
	char buf[8];
	bool eof;
	int app;

	/* the server ignores the SNI and presents its node certificate */
	app = tunnel_named(F.cctx, "w.test", expect, NULL);
	spin(300);
	cr_assert_str_eq(F.sni, "w.test");
	cr_assert_eq(F.client_closes, 1);
	cr_assert_eq(F.client_why, HB_CLOSE_PEER);
	cr_assert(strstr(F.client_msg, TD "/sluice/node/n2") &&
		  strstr(F.client_msg, TD "/ns/default/sa/server"),
		  "the message names neither side: %s", F.client_msg);
	cr_assert_str_empty(F.authority, "a CONNECT went to a server not verified");
	cr_assert_lt(F.dest_fd, 0);
	cr_assert_eq(drain(app, buf, sizeof(buf), 500, &eof), -2);
	cr_assert(errno == ECONNRESET, "the application's connection: %s", strerror(errno));
	close(app);
}

Test(hbone, eviction_takes_the_oldest_unfinished_handshake)
{
	static const char *const expect[] = { TD "/sluice/node/n2", NULL };
	int raw[3], app;
	char b;

	/* three peers that never send a byte, accepted in this order */
	for (int i = 0; i < 3; i++) {
		raw[i] = connect_lo(F.port, false);
		spin(20);
	}
	cr_assert_eq(hb_loop_handshaking(F.l), 3);
	/* a real client: its handshake completes, it is not a candidate */
	app = tunnel_named(F.cctx, NULL, expect, NULL);
	spin(200);
	cr_assert_geq(F.dest_fd, 0, "the real client's tunnel did not open");
	cr_assert_eq(hb_loop_handshaking(F.l), 3);
	cr_assert(hb_loop_evict_handshaking(F.l));
	cr_assert_eq(F.last_why, HB_CLOSE_HANDSHAKE_TIMEOUT);
	cr_assert_eq(hb_loop_handshaking(F.l), 2);
	spin(20);
	cr_assert_eq(recv(raw[0], &b, 1, MSG_DONTWAIT), 0, "the oldest was not the one closed");
	for (int i = 1; i < 3; i++)
		cr_assert(recv(raw[i], &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN,
			  "a newer one (%d) was closed", i);
	cr_assert(hb_loop_evict_handshaking(F.l));
	cr_assert(hb_loop_evict_handshaking(F.l));
	cr_assert(!hb_loop_evict_handshaking(F.l), "nothing is left to evict");
	{
		bool eof;

		cr_assert_eq(send(app, "x", 1, 0), 1);
		cr_assert_eq(drain(F.dest_fd, &b, 1, 1000, &eof), 1, "the real client was evicted");
	}
	for (int i = 0; i < 3; i++)
		close(raw[i]);
	close(app);
}

/* A TLS client of our own that writes raw HTTP/2 (the library's client
 * would never send a bad request). */
static SSL *raw_h2(int *fd)
{
	SSL *s = SSL_new(F.cctx);
	int r;

	*fd = connect_lo(F.port, true);
	cr_assert_not_null(s);
	SSL_set_fd(s, *fd);
	SSL_set_connect_state(s);
	for (int i = 0; i < 400 && (r = SSL_do_handshake(s)) != 1; i++)
		spin(5);
	cr_assert_eq(SSL_do_handshake(s), 1, "handshake");
	return s;
}

Test(hbone, a_method_that_spells_our_magic_is_only_a_bad_request)
{
	/* HEADERS on stream 1, END_STREAM | END_HEADERS: :method (static
	 * name 2) "AAAAAAAA1tbh" (bytes 8-11 are TUN_MAGIC in memory order),
	 * :scheme https (static 7), and neither :path nor :authority: nghttp2
	 * refuses the request after our header callbacks saw it */
	static const unsigned char hb[] = { 0x02, 12, 'A', 'A', 'A', 'A', 'A', 'A', 'A', 'A',
					    '1', 't', 'b', 'h', 0x87 };
	unsigned char out[128];
	size_t n = 0;
	int fd;
	SSL *s = raw_h2(&fd);

	memcpy(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
	n = 24;
	memcpy(out + n, "\0\0\0\x04\0\0\0\0\0", 9);   /* SETTINGS, empty */
	n += 9;
	out[n++] = 0;
	out[n++] = 0;
	out[n++] = sizeof(hb);
	out[n++] = 1;      /* HEADERS */
	out[n++] = 0x5;    /* END_STREAM | END_HEADERS */
	memcpy(out + n, "\0\0\0\x01", 4);
	n += 4;
	memcpy(out + n, hb, sizeof(hb));
	n += sizeof(hb);
	cr_assert_eq(SSL_write(s, out, (int)n), (int)n);
	spin(200);
	/* the stream was refused and the request freed (ASan: no read of it
	 * as a tunnel); the connection lives on */
	cr_assert_str_empty(F.authority, "a request without :authority reached on_connect");
	cr_assert_eq(F.conn_closes, 0, "the connection was cut off (why %d)", F.last_why);
	SSL_free(s);
	close(fd);
}
