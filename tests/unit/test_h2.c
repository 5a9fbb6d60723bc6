// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lib/wire/h2: HTTP/2 requests through both ends over TLS on socketpairs:
 * request and response, a streamed response, the body limit (413), the
 * client's check of the server's role, and a server cutting off a client
 * that stops reading.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lib/core/loop.h"
#include "lib/wire/h2.h"
#include "tls_pair.h"

static char dir[64];

static void mkdir_tmp(void)
{
	tp_tmpdir(dir, sizeof(dir), "h2");
}

static void rm_tmp(void)
{
	tp_rmdir(dir);
}

TestSuite(h2, .init = mkdir_tmp, .fini = rm_tmp);

struct srv_state {
	int requests;
	char last_path[128], last_query[128], last_hdr[64];
	size_t last_len;
	int32_t stream_id;
	int closed, flush_rc;
};

static void srv_request(struct h2_conn *c, const struct h2_req *r, void *arg)
{
	struct srv_state *st = arg;

	st->requests++;
	snprintf(st->last_path, sizeof(st->last_path), "%s", r->path);
	snprintf(st->last_query, sizeof(st->last_query), "%s", r->query);
	st->last_len = r->body_len;
	for (size_t i = 0; i < r->nhdrs; i++)
		if (strcmp(r->hdrs[i].name, "x-test") == 0)
			snprintf(st->last_hdr, sizeof(st->last_hdr), "%s", r->hdrs[i].value);
	if (strcmp(r->path, "/stream") == 0) {
		st->stream_id = r->stream_id;
		h2_respond_stream(c, r->stream_id, 200, "application/x-ndjson");
		h2_stream_write(c, r->stream_id, "one\n", 4);
		/* inside its own callback: nothing is sent from here (nghttp2
		 * forbids it), the io that runs this callback sends it */
		st->flush_rc = h2_conn_flush(c);
		return;
	}
	h2_respond(c, r->stream_id, 200, "text/plain", "pong", 4);
}

static void srv_close(struct h2_conn *c, int32_t id, void *arg)
{
	((struct srv_state *)arg)->closed++;
}

struct cli_state {
	int status, done;
	uint32_t code;
	char body[256];
	size_t len;
};

static void cli_headers(struct h2_conn *c, int32_t id, int status, void *arg)
{
	((struct cli_state *)arg)->status = status;
}

static void cli_data(struct h2_conn *c, int32_t id, const uint8_t *d, size_t n, void *arg)
{
	struct cli_state *st = arg;

	if (st->len + n < sizeof(st->body)) {
		memcpy(st->body + st->len, d, n);
		st->len += n;
	}
}

static void cli_close(struct h2_conn *c, int32_t id, uint32_t code, void *arg)
{
	((struct cli_state *)arg)->done = 1;
	((struct cli_state *)arg)->code = code;
}

static const struct h2_server_ops sops = { srv_request, srv_close };
static const struct h2_resp_ops cops = { cli_headers, cli_data, cli_close };

/* Run both ends until `cond` holds or 2 s pass. */
#define PUMP(sc, cc, cond) do { \
	for (int _i = 0; _i < 400 && !(cond); _i++) { \
		struct pollfd _p[2] = { { h2_conn_fd(sc), (short)h2_conn_events(sc), 0 }, \
					{ h2_conn_fd(cc), (short)h2_conn_events(cc), 0 } }; \
		poll(_p, 2, 5); \
		cr_assert_eq(h2_conn_io(sc, (unsigned int)_p[0].revents), 0, "server: %s", h2_conn_error(sc)); \
		cr_assert_eq(h2_conn_io(cc, (unsigned int)_p[1].revents), 0, "client: %s", h2_conn_error(cc)); \
	} \
	cr_assert(cond, "timed out waiting for " #cond); \
} while (0)

Test(h2, h2_request_response_stream_and_413)
{
	struct tls_pair t;
	struct h2_limits lim = h2_default_limits;
	struct srv_state ss = {};
	struct cli_state c1 = {}, c2 = {}, c3 = {};
	struct h2_header xh = { "x-test", "yes" };
	struct h2_conn *sc, *cc;
	char *big;
	int sv[2];

	tp_pair_new(&t, dir, "spiffe://td/sluice/control", "spiffe://td/sluice/node/n1");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	lim.max_body = 1000;
	sc = h2_server_conn(sv[0], t.sctx, &lim, &sops, &ss);
	cc = h2_client_conn(sv[1], t.cctx, &lim);
	cr_assert(sc && cc);
	h2_conn_expect_peer(cc, "/sluice/control");

	cr_assert_geq(h2_request(cc, "POST", "t", "/ping?a=1", &xh, 1, "hello", 5, &cops, &c1), 1);
	PUMP(sc, cc, c1.done);
	cr_assert_eq(c1.status, 200);
	cr_assert_eq(c1.len, 4);
	cr_assert_eq(memcmp(c1.body, "pong", 4), 0);
	cr_assert_str_eq(ss.last_path, "/ping");
	cr_assert_str_eq(ss.last_query, "a=1");
	cr_assert_str_eq(ss.last_hdr, "yes");
	cr_assert_eq(ss.last_len, 5);
	cr_assert_str_eq(h2_conn_peer(sc), "spiffe://td/sluice/node/n1");

	/* over max_body: 413 and the handler never runs */
	big = calloc(1, 5000);
	cr_assert_geq(h2_request(cc, "POST", "t", "/big", NULL, 0, big, 5000, &cops, &c2), 1);
	PUMP(sc, cc, c2.done);
	cr_assert_eq(c2.status, 413);
	cr_assert(strstr(c2.body, "over the limit"), "%.*s", (int)c2.len, c2.body);
	cr_assert_eq(ss.requests, 1);
	free(big);

	/* a streamed response: data arrives as the server writes it */
	cr_assert_geq(h2_request(cc, "GET", "t", "/stream", NULL, 0, NULL, 0, &cops, &c3), 1);
	PUMP(sc, cc, c3.len == 4);
	cr_assert_eq(c3.status, 200);
	cr_assert_eq(ss.flush_rc, 0);
	/* flushed: on the wire with no io of the server's end */
	cr_assert_eq(h2_stream_write(sc, ss.stream_id, "two\n", 4), 0);
	cr_assert_eq(h2_conn_flush(sc), 0);
	for (int i = 0; i < 400 && c3.len < 8; i++) {
		struct pollfd p = { h2_conn_fd(cc), (short)h2_conn_events(cc), 0 };

		poll(&p, 1, 5);
		cr_assert_eq(h2_conn_io(cc, (unsigned int)p.revents), 0, "client: %s", h2_conn_error(cc));
	}
	cr_assert_eq(memcmp(c3.body, "one\ntwo\n", 8), 0);
	cr_assert_eq(h2_stream_end(sc, ss.stream_id), 0);
	PUMP(sc, cc, c3.done);
	cr_assert_eq(c3.code, 0);

	h2_conn_free(cc);
	h2_conn_free(sc);
	tp_pair_free(&t);
}

/* max_body_peer: a client with a certificate the server verified may send
 * more; one without, max_body. */
Test(h2, h2_body_limit_by_client_certificate)
{
	struct tls_pair t;
	struct h2_limits lim = h2_default_limits;
	struct srv_state ss = {};
	struct cli_state ok = {}, over = {}, anon = {};
	struct h2_conn *sc, *cc, *sa, *ca;
	SSL_CTX *actx;
	char *big = calloc(1, 9000);
	int sv[2], av[2];

	tp_pair_new(&t, dir, "spiffe://td/sluice/control", "spiffe://td/sluice/admin");
	actx = pki_tls_ctx(&(struct pki_tls_opts){ .ca = t.ca.cert, .alpn = "h2" });
	cr_assert(big && actx);
	lim.max_body = 1000;
	lim.max_body_peer = 8000;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, av), 0);
	sc = h2_server_conn(sv[0], t.sctx, &lim, &sops, &ss);
	cc = h2_client_conn(sv[1], t.cctx, &lim);
	sa = h2_server_conn(av[0], t.sctx, &lim, &sops, &ss);
	ca = h2_client_conn(av[1], actx, &lim);
	cr_assert(sc && cc && sa && ca);

	cr_assert_geq(h2_request(cc, "POST", "t", "/ok", NULL, 0, big, 5000, &cops, &ok), 1);
	PUMP(sc, cc, ok.done);
	cr_assert_eq(ok.status, 200, "5000 bytes with a certificate: %d", ok.status);
	cr_assert_eq(ss.last_len, 5000);
	cr_assert_geq(h2_request(cc, "POST", "t", "/over", NULL, 0, big, 9000, &cops, &over), 1);
	PUMP(sc, cc, over.done);
	cr_assert_eq(over.status, 413);
	cr_assert(strstr(over.body, "limit of 8000"), "%.*s", (int)over.len, over.body);

	cr_assert_geq(h2_request(ca, "POST", "t", "/anon", NULL, 0, big, 5000, &cops, &anon), 1);
	PUMP(sa, ca, anon.done);
	cr_assert_eq(anon.status, 413, "5000 bytes without a certificate: %d", anon.status);
	cr_assert(strstr(anon.body, "limit of 1000"), "%.*s", (int)anon.len, anon.body);
	cr_assert_eq(ss.requests, 1);

	free(big);
	h2_conn_free(ca);
	h2_conn_free(sa);
	h2_conn_free(cc);
	h2_conn_free(sc);
	SSL_CTX_free(actx);
	tp_pair_free(&t);
}

Test(h2, h2_client_refuses_a_server_with_the_wrong_role)
{
	struct tls_pair t;
	struct srv_state ss = {};
	struct cli_state c1 = {};
	struct h2_conn *sc, *cc;
	int sv[2], sr = 0, cr = 0;

	tp_pair_new(&t, dir, "spiffe://td/sluice/node/impostor", "spiffe://td/sluice/admin");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	sc = h2_server_conn(sv[0], t.sctx, NULL, &sops, &ss);
	cc = h2_client_conn(sv[1], t.cctx, NULL);
	h2_conn_expect_peer(cc, "/sluice/control");
	cr_assert_geq(h2_request(cc, "POST", "t", "/apply", NULL, 0, "secret", 6, &cops, &c1), 1);
	for (int i = 0; i < 200 && !cr; i++) {
		struct pollfd p[2] = { { sv[0], (short)h2_conn_events(sc), 0 },
				       { sv[1], (short)h2_conn_events(cc), 0 } };

		poll(p, 2, 5);
		if (!sr)
			sr = h2_conn_io(sc, (unsigned int)p[0].revents);
		cr = h2_conn_io(cc, (unsigned int)p[1].revents);
	}
	cr_assert_eq(cr, -EACCES, "client talked to a server that is not the control plane");
	cr_assert(strstr(h2_conn_error(cc), "not *\/sluice/control"), "%s", h2_conn_error(cc));
	cr_assert_eq(ss.requests, 0, "the request reached the impostor");
	h2_conn_free(cc);
	h2_conn_free(sc);
	tp_pair_free(&t);
}

Test(h2, h2_server_cuts_off_a_client_that_stops_reading)
{
	struct tls_pair t;
	struct h2_limits lim = h2_default_limits;
	struct srv_state ss = {};
	struct cli_state c1 = {};
	struct h2_conn *sc, *cc;
	char *chunk = calloc(1, 1 << 20);
	uint64_t t0;
	int sv[2], rc = 0, over = 0;

	tp_pair_new(&t, dir, "spiffe://td/sluice/control", "spiffe://td/sluice/node/n1");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	lim.stall_ms = 300;
	lim.max_pending = 6u << 20;
	sc = h2_server_conn(sv[0], t.sctx, &lim, &sops, &ss);
	cc = h2_client_conn(sv[1], t.cctx, NULL);
	cr_assert(sc && cc && chunk);
	cr_assert_geq(h2_request(cc, "GET", "t", "/stream", NULL, 0, NULL, 0, &cops, &c1), 1);
	PUMP(sc, cc, c1.len == 4);
	/* the client stops reading; the server queues a lot */
	for (int i = 0; i < 5; i++)
		if (h2_stream_write(sc, ss.stream_id, chunk, 1 << 20))
			over++;
	cr_assert_eq(over, 0, "5 MiB refused under a 6 MiB max_pending");
	t0 = loop_now_ms();
	while (!rc && loop_now_ms() - t0 < 3000) {
		struct pollfd p = { sv[0], (short)h2_conn_events(sc), 0 };

		poll(&p, 1, 20);
		rc = h2_conn_io(sc, (unsigned int)p.revents) ?: h2_conn_tick(sc);
	}
	cr_assert_eq(rc, -ETIMEDOUT, "a client that stopped reading was not cut off");
	cr_assert_geq(loop_now_ms() - t0, 250);
	cr_assert(strstr(h2_conn_error(sc), "stopped reading"), "%s", h2_conn_error(sc));
	/* and queueing past max_pending is refused */
	for (int i = 0; i < 8 && !over; i++)
		over = h2_stream_write(sc, ss.stream_id, chunk, 1 << 20) == -ENOBUFS;
	cr_assert(over, "8 MiB more queued under a 6 MiB max_pending");
	free(chunk);
	h2_conn_free(cc);
	h2_conn_free(sc);
	tp_pair_free(&t);
}
