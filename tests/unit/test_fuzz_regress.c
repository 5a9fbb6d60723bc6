// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Inputs the fuzzers (tests/fuzz/) found to crash or misbehave, each
 * replayed through the public API that met it. The same inputs are in
 * tests/fuzz/corpus/ for the harnesses; these tests keep the fixes under
 * the unit suites (ASan+UBSan included) too.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "deadline.h"
#include "lib/config/config.h"
#include "lib/wire/h2.h"
#include "lib/wire/pki.h"

/* ---- lib/wire/h2: a response without a body ------------------------------- */

struct tls_ends {
	struct pki_ca ca;
	EVP_PKEY *key;
	X509 *cert;
	SSL_CTX *sctx, *cctx;
};

/* A CA (in a temporary directory), a server certificate from it, and a
 * client without one that trusts the CA. */
static void tls_ends_new(struct tls_ends *t)
{
	struct pki_names n = { .cn = "ctl", .uri = "spiffe://td/sluice/control" };
	char dir[] = "/tmp/sluice-regress.XXXXXX", cp[64], kp[64], err[256];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(cp, sizeof(cp), "%s/ca.crt", dir);
	snprintf(kp, sizeof(kp), "%s/ca.key", dir);
	cr_assert_eq(pki_ca_open(&t->ca, cp, kp, "ca", true, err, sizeof(err)), 0, "%s", err);
	unlink(cp);
	unlink(kp);
	rmdir(dir);
	t->key = pki_key_new();
	cr_assert_not_null(t->key);
	t->cert = pki_issue(&t->ca, t->key, &n, 3600, err, sizeof(err));
	cr_assert_not_null(t->cert, "%s", err);
	t->sctx = pki_tls_ctx(&(struct pki_tls_opts){ .server = true, .ca = t->ca.cert,
						       .cert = t->cert, .key = t->key, .alpn = "h2" });
	t->cctx = pki_tls_ctx(&(struct pki_tls_opts){ .ca = t->ca.cert, .alpn = "h2" });
	cr_assert(t->sctx && t->cctx);
}

static void tls_ends_free(struct tls_ends *t)
{
	SSL_CTX_free(t->sctx);
	SSL_CTX_free(t->cctx);
	X509_free(t->cert);
	EVP_PKEY_free(t->key);
	pki_ca_close(&t->ca);
}

static void answer_empty(struct h2_conn *c, const struct h2_req *r, void *arg)
{
	h2_respond(c, r->stream_id, 404, NULL, NULL, 0);
}

static void got_status(struct h2_conn *c, int32_t id, int status, void *arg)
{
	*(int *)arg = status;
}

static void got_close(struct h2_conn *c, int32_t id, uint32_t code, void *arg)
{
	if (!*(int *)arg)
		*(int *)arg = -1;
}

/* tests/fuzz/corpus/h2/get: a request answered with no body made the data
 * provider copy from the body buffer, which does not exist (NULL): UB that
 * UBSan stops on. */
Test(fuzz_regress, h2_response_without_body)
{
	static const struct h2_server_ops sops = { answer_empty, NULL };
	static const struct h2_resp_ops cops = { got_status, NULL, got_close };
	struct tls_ends t;
	struct h2_conn *sc, *cc;
	int sv[2], status = 0;

	tls_ends_new(&t);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	sc = h2_server_conn(sv[0], t.sctx, NULL, &sops, NULL);
	cc = h2_client_conn(sv[1], t.cctx, NULL);
	cr_assert(sc && cc);
	cr_assert_geq(h2_request(cc, "GET", "ctl", "/nothing", NULL, 0, NULL, 0, &cops, &status), 1);
	for (int i = 0; i < 400 && !status; i++) {
		struct pollfd p[2] = { { sv[0], (short)h2_conn_events(sc), 0 },
				       { sv[1], (short)h2_conn_events(cc), 0 } };

		poll(p, 2, 5);
		cr_assert_eq(h2_conn_io(sc, (unsigned int)p[0].revents), 0, "%s", h2_conn_error(sc));
		cr_assert_eq(h2_conn_io(cc, (unsigned int)p[1].revents), 0, "%s", h2_conn_error(cc));
	}
	cr_assert_eq(status, 404);
	h2_conn_free(cc);
	h2_conn_free(sc);
	tls_ends_free(&t);
}

/* ---- lib/config/config: a directive that is not UTF-8 --------------------- */

/* tests/fuzz/corpus/config/regress-directive-not-utf8 (shortened): libfyaml
 * 0.7.12 scans "%k\xdf..." forever. The text is refused as not UTF-8
 * before libfyaml sees it. */
Test(fuzz_regress, config_directive_not_utf8)
{
	static const char text[] = "apiVersion: v1\n%kind: S\xdfrvice\n";
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};

	test_deadline(10);
	cr_assert_eq(sl_config_parse(c, "t.yaml", text, strlen(text), &d), -EINVAL);
	cr_assert_eq(d.nerrors, 1);
	cr_assert_str_eq(d.v[0].msg, "t.yaml:2:9: byte 0xdf is not UTF-8 text");
	cr_assert_eq(sl_config_count(c), 0);
	sl_diags_free(&d);
	sl_config_free(c);
}
