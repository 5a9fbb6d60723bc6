// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lib/pki and lib/h2: the CA on disk, CSR signing, TLS 1.3 mutual
 * authentication over socketpairs, and HTTP/2 requests through both ends
 * of lib/h2 (limits included).
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "lib/h2.h"
#include "lib/pki.h"

static char dir[64];

static void mkdir_tmp(void)
{
	snprintf(dir, sizeof(dir), "/tmp/sluice-pki-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static void path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

TestSuite(pki, .init = mkdir_tmp, .fini = rm_tmp);

Test(pki, ca_created_with_0600_key_and_reloaded_identical)
{
	char cp[128], kp[128], err[256];
	struct pki_ca a, b;
	struct stat st;

	path(cp, sizeof(cp), "ca.crt");
	path(kp, sizeof(kp), "ca.key");
	cr_assert_eq(pki_ca_open(&a, cp, kp, "test CA", true, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(kp, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "key mode %o", st.st_mode & 0777);
	cr_assert_geq(X509_check_ca(a.cert), 1);
	cr_assert_eq(pki_ca_open(&b, cp, kp, "test CA", false, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(X509_cmp(a.cert, b.cert), 0, "reloaded CA differs");
	cr_assert(EVP_PKEY_eq(a.key, b.key) == 1);
	pki_ca_close(&a);
	pki_ca_close(&b);
}

Test(pki, ca_with_one_file_missing_or_foreign_key_is_refused)
{
	char cp[128], kp[128], cp2[128], kp2[128], err[256];
	struct pki_ca a, b;

	path(cp, sizeof(cp), "a.crt");
	path(kp, sizeof(kp), "a.key");
	path(cp2, sizeof(cp2), "b.crt");
	path(kp2, sizeof(kp2), "b.key");
	cr_assert_eq(pki_ca_open(&a, cp, kp, "A", true, err, sizeof(err)), 0);
	cr_assert_eq(pki_ca_open(&b, cp2, kp2, "B", true, err, sizeof(err)), 0);
	pki_ca_close(&a);
	pki_ca_close(&b);
	/* A's certificate with B's key */
	cr_assert_eq(pki_ca_open(&a, cp, kp2, "A", false, err, sizeof(err)), -1);
	cr_assert(strstr(err, "does not hold the key"), "%s", err);
	cr_assert_null(a.cert);
	unlink(kp);
	cr_assert_eq(pki_ca_open(&a, cp, kp, "A", true, err, sizeof(err)), -1);
	cr_assert(strstr(err, "is missing"), "%s", err);
	ERR_clear_error();
}

/* A CA in memory only. */
static void mem_ca(struct pki_ca *ca, const char *name)
{
	char cp[128], kp[128], err[256], c[64], k[64];

	snprintf(c, sizeof(c), "%s.crt", name);
	snprintf(k, sizeof(k), "%s.key", name);
	path(cp, sizeof(cp), c);
	path(kp, sizeof(kp), k);
	cr_assert_eq(pki_ca_open(ca, cp, kp, name, true, err, sizeof(err)), 0, "%s", err);
}

Test(pki, csr_signed_with_the_cas_names_not_the_csrs)
{
	const char *ips[] = { "127.0.0.1", NULL };
	struct pki_names n = { .cn = "node1", .uri = "spiffe://td/sluice/node/node1", .ips = ips };
	char uri[256], cn[64], err[256];
	struct pki_ca ca;
	EVP_PKEY *k = pki_key_new();
	char *csr = pki_csr_pem(k, "admin");   /* asks for another name */
	X509 *c;

	mem_ca(&ca, "ca");
	cr_assert_not_null(csr);
	c = pki_sign_csr(&ca, csr, strlen(csr), &n, 3600, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(pki_cert_uri(c, uri, sizeof(uri)), 0);
	cr_assert_str_eq(uri, "spiffe://td/sluice/node/node1");
	X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof(cn));
	cr_assert_str_eq(cn, "node1");
	cr_assert(pki_cert_matches_key(c, k));
	cr_assert_eq(X509_verify(c, ca.key), 1, "not signed by the CA");
	cr_assert_eq(X509_check_ca(c), 0, "a leaf must not be a CA");
	cr_assert(pki_cert_seconds_left(c) > 3500 && pki_cert_seconds_left(c) <= 3600);
	cr_assert(X509_get_extended_key_usage(c) & XKU_SSL_CLIENT);
	cr_assert(X509_get_extended_key_usage(c) & XKU_SSL_SERVER);
	X509_free(c);
	free(csr);
	EVP_PKEY_free(k);
	pki_ca_close(&ca);
}

Test(pki, bad_csrs_are_refused_with_a_reason)
{
	struct pki_names n = { .cn = "x", .uri = "spiffe://td/sluice/node/x" };
	char err[256];
	struct pki_ca ca;
	EVP_PKEY *k384 = EVP_EC_gen("P-384");
	char *csr384 = pki_csr_pem(k384, "x");
	const char *junk = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
	struct pki_names comma = { .cn = "x", .uri = "spiffe://td/x,URI:spiffe://td/sluice/admin" };
	EVP_PKEY *k = pki_key_new();
	char *csr = pki_csr_pem(k, "x");

	mem_ca(&ca, "ca");
	cr_assert_null(pki_sign_csr(&ca, junk, strlen(junk), &n, 60, err, sizeof(err)));
	cr_assert(strstr(err, "not a PEM certificate signing request"), "%s", err);
	cr_assert_null(pki_sign_csr(&ca, csr384, strlen(csr384), &n, 60, err, sizeof(err)));
	cr_assert(strstr(err, "P-256"), "%s", err);
	/* a name cannot smuggle a second SAN in */
	cr_assert_null(pki_sign_csr(&ca, csr, strlen(csr), &comma, 60, err, sizeof(err)));
	cr_assert(strstr(err, "SAN"), "%s", err);
	free(csr);
	free(csr384);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k384);
	pki_ca_close(&ca);
	ERR_clear_error();
}

/* ---- TLS over a socketpair ----------------------------------------------- */

struct ident {
	X509 *cert;
	EVP_PKEY *key;
};

static struct ident issue(struct pki_ca *ca, const char *uri)
{
	struct pki_names n = { .cn = "t", .uri = uri };
	struct ident id = { .key = pki_key_new() };
	char err[256];

	id.cert = pki_issue(ca, id.key, &n, 3600, err, sizeof(err));
	cr_assert_not_null(id.cert, "%s", err);
	return id;
}

static void ident_free(struct ident *id)
{
	X509_free(id->cert);
	EVP_PKEY_free(id->key);
}

/* A CA, a server and a client identity, and their TLS contexts. */
struct tls_pair {
	struct pki_ca ca;
	struct ident sid, cid;
	SSL_CTX *sctx, *cctx;
};

static void pair_new(struct tls_pair *t, const char *server_uri, const char *client_uri)
{
	mem_ca(&t->ca, "ca");
	t->sid = issue(&t->ca, server_uri);
	t->cid = issue(&t->ca, client_uri);
	t->sctx = pki_tls_ctx(&(struct pki_tls_opts){ .server = true, .ca = t->ca.cert,
						       .cert = t->sid.cert, .key = t->sid.key, .alpn = "h2" });
	t->cctx = pki_tls_ctx(&(struct pki_tls_opts){ .ca = t->ca.cert, .cert = t->cid.cert,
						       .key = t->cid.key, .alpn = "h2" });
	cr_assert(t->sctx && t->cctx);
}

static void pair_free(struct tls_pair *t)
{
	SSL_CTX_free(t->sctx);
	SSL_CTX_free(t->cctx);
	ident_free(&t->sid);
	ident_free(&t->cid);
	pki_ca_close(&t->ca);
}

/* Drive both handshakes to the end; 1 when both succeeded. */
static int handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL **sp, SSL **cp)
{
	int sv[2], sdone = 0, cdone = 0, sfail = 0, cfail = 0;
	SSL *s, *c;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	s = SSL_new(sctx);
	c = SSL_new(cctx);
	SSL_set_fd(s, sv[0]);
	SSL_set_fd(c, sv[1]);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (int i = 0; i < 100 && !(sdone && cdone) && !sfail && !cfail; i++) {
		int r;

		if (!sdone) {
			r = SSL_do_handshake(s);
			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ &&
				 SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE)
				sfail = 1;
		}
		if (!cdone) {
			r = SSL_do_handshake(c);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ &&
				 SSL_get_error(c, r) != SSL_ERROR_WANT_WRITE)
				cfail = 1;
		}
	}
	ERR_clear_error();
	*sp = s;
	*cp = c;
	return sdone && cdone && !sfail && !cfail;
}

static void ssl_close(SSL *s)
{
	int fd = SSL_get_fd(s);

	SSL_free(s);
	close(fd);
}

Test(pki, tls13_mutual_auth_gives_both_peers_uri_and_h2)
{
	struct tls_pair t;
	SSL *s, *c;
	char uri[256];
	const unsigned char *alpn;
	unsigned int alen;

	pair_new(&t, "spiffe://td/sluice/control", "spiffe://td/sluice/node/n1");
	cr_assert(handshake(t.sctx, t.cctx, &s, &c));
	cr_assert_eq(SSL_version(s), TLS1_3_VERSION);
	cr_assert_eq(pki_peer_uri(s, uri, sizeof(uri)), 0);
	cr_assert_str_eq(uri, "spiffe://td/sluice/node/n1");
	cr_assert_eq(pki_peer_uri(c, uri, sizeof(uri)), 0);
	cr_assert_str_eq(uri, "spiffe://td/sluice/control");
	SSL_get0_alpn_selected(s, &alpn, &alen);
	cr_assert(alen == 2 && memcmp(alpn, "h2", 2) == 0);
	ssl_close(s);
	ssl_close(c);
	pair_free(&t);
}

Test(pki, tls_refuses_other_ca_missing_cert_and_tls12)
{
	struct pki_ca ca, other;
	struct ident sid, cid, foreign;
	SSL_CTX *sctx, *sreq, *cforeign, *cnone, *c12;
	SSL *s, *c;
	char uri[256];

	mem_ca(&ca, "ca");
	mem_ca(&other, "other");
	sid = issue(&ca, "spiffe://td/sluice/control");
	cid = issue(&ca, "spiffe://td/sluice/node/n1");
	foreign = issue(&other, "spiffe://td/sluice/admin");
	sctx = pki_tls_ctx(&(struct pki_tls_opts){ .server = true, .ca = ca.cert, .cert = sid.cert,
						    .key = sid.key, .alpn = "h2" });
	sreq = pki_tls_ctx(&(struct pki_tls_opts){ .server = true, .ca = ca.cert, .cert = sid.cert,
						    .key = sid.key, .alpn = "h2", .require_peer_cert = true });
	/* trusts the right CA but presents another CA's certificate */
	cforeign = pki_tls_ctx(&(struct pki_tls_opts){ .ca = ca.cert, .cert = foreign.cert,
						       .key = foreign.key, .alpn = "h2" });
	cnone = pki_tls_ctx(&(struct pki_tls_opts){ .ca = ca.cert, .alpn = "h2" });
	c12 = pki_tls_ctx(&(struct pki_tls_opts){ .ca = ca.cert, .cert = cid.cert, .key = cid.key,
						   .alpn = "h2" });
	cr_assert(sctx && sreq && cforeign && cnone && c12);
	cr_assert_not(handshake(sctx, cforeign, &s, &c), "a certificate from another CA was accepted");
	ssl_close(s);
	ssl_close(c);
	/* no certificate: accepted where optional (join), with no identity */
	cr_assert(handshake(sctx, cnone, &s, &c));
	cr_assert_eq(pki_peer_uri(s, uri, sizeof(uri)), -1);
	ssl_close(s);
	ssl_close(c);
	cr_assert_not(handshake(sreq, cnone, &s, &c), "no certificate accepted where required");
	ssl_close(s);
	ssl_close(c);
	SSL_CTX_set_min_proto_version(c12, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(c12, TLS1_2_VERSION);
	cr_assert_not(handshake(sctx, c12, &s, &c), "TLS 1.2 accepted");
	ssl_close(s);
	ssl_close(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(sreq);
	SSL_CTX_free(cforeign);
	SSL_CTX_free(cnone);
	SSL_CTX_free(c12);
	ident_free(&sid);
	ident_free(&cid);
	ident_free(&foreign);
	pki_ca_close(&ca);
	pki_ca_close(&other);
}

/* ---- HTTP/2 through lib/h2 ----------------------------------------------- */

struct srv_state {
	int requests;
	char last_path[128], last_query[128], last_hdr[64];
	size_t last_len;
	int32_t stream_id;
	int closed;
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

Test(pki, h2_request_response_stream_and_413)
{
	struct tls_pair t;
	struct h2_limits lim = h2_default_limits;
	struct srv_state ss = {};
	struct cli_state c1 = {}, c2 = {}, c3 = {};
	struct h2_header xh = { "x-test", "yes" };
	struct h2_conn *sc, *cc;
	char *big;
	int sv[2];

	pair_new(&t, "spiffe://td/sluice/control", "spiffe://td/sluice/node/n1");
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
	cr_assert_eq(h2_stream_write(sc, ss.stream_id, "two\n", 4), 0);
	PUMP(sc, cc, c3.len == 8);
	cr_assert_eq(memcmp(c3.body, "one\ntwo\n", 8), 0);
	cr_assert_eq(h2_stream_end(sc, ss.stream_id), 0);
	PUMP(sc, cc, c3.done);
	cr_assert_eq(c3.code, 0);

	h2_conn_free(cc);
	h2_conn_free(sc);
	pair_free(&t);
}

Test(pki, h2_client_refuses_a_server_with_the_wrong_role)
{
	struct tls_pair t;
	struct srv_state ss = {};
	struct cli_state c1 = {};
	struct h2_conn *sc, *cc;
	int sv[2], sr = 0, cr = 0;

	pair_new(&t, "spiffe://td/sluice/node/impostor", "spiffe://td/sluice/admin");
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
	cr_assert_eq(cr, -1, "client talked to a server that is not the control plane");
	cr_assert(strstr(h2_conn_error(cc), "not *\/sluice/control"), "%s", h2_conn_error(cc));
	cr_assert_eq(ss.requests, 0, "the request reached the impostor");
	h2_conn_free(cc);
	h2_conn_free(sc);
	pair_free(&t);
}

Test(pki, h2_server_cuts_off_a_client_that_stops_reading)
{
	struct tls_pair t;
	struct h2_limits lim = h2_default_limits;
	struct srv_state ss = {};
	struct cli_state c1 = {};
	struct h2_conn *sc, *cc;
	char *chunk = calloc(1, 1 << 20);
	uint64_t t0;
	int sv[2], rc = 0, over = 0;

	pair_new(&t, "spiffe://td/sluice/control", "spiffe://td/sluice/node/n1");
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
	t0 = h2_now_ms();
	while (!rc && h2_now_ms() - t0 < 3000) {
		struct pollfd p = { sv[0], (short)h2_conn_events(sc), 0 };

		poll(&p, 1, 20);
		rc = h2_conn_io(sc, (unsigned int)p.revents) ?: h2_conn_tick(sc);
	}
	cr_assert_eq(rc, -1, "a client that stopped reading was not cut off");
	cr_assert_geq(h2_now_ms() - t0, 250);
	cr_assert(strstr(h2_conn_error(sc), "stopped reading"), "%s", h2_conn_error(sc));
	/* and queueing past max_pending is refused */
	for (int i = 0; i < 8 && !over; i++)
		over = h2_stream_write(sc, ss.stream_id, chunk, 1 << 20) == -1;
	cr_assert(over, "8 MiB more queued under a 6 MiB max_pending");
	free(chunk);
	h2_conn_free(cc);
	h2_conn_free(sc);
	pair_free(&t);
}
