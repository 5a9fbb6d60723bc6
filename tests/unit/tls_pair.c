// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tls_pair.c - the test fixtures of tls_pair.h.
 */
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls_pair.h"

void tp_tmpdir(char *dir, size_t len, const char *tag)
{
	snprintf(dir, len, "/tmp/sluice-%s-XXXXXX", tag);
	cr_assert_not_null(mkdtemp(dir));
}

void tp_rmdir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

void tp_ca(struct pki_ca *ca, const char *dir, const char *name)
{
	char cp[128], kp[128], err[256];

	snprintf(cp, sizeof(cp), "%s/%s.crt", dir, name);
	snprintf(kp, sizeof(kp), "%s/%s.key", dir, name);
	cr_assert_eq(pki_ca_open(ca, cp, kp, name, true, err, sizeof(err)), 0, "%s", err);
}

struct ident tp_issue(struct pki_ca *ca, const char *uri)
{
	struct pki_names n = { .cn = "t", .uri = uri };
	struct ident id = { .key = pki_key_new() };
	char err[256];

	id.cert = pki_issue(ca, id.key, &n, 3600, err, sizeof(err));
	cr_assert_not_null(id.cert, "%s", err);
	return id;
}

void tp_ident_free(struct ident *id)
{
	X509_free(id->cert);
	EVP_PKEY_free(id->key);
}

void tp_pair_new(struct tls_pair *t, const char *dir, const char *server_uri,
		 const char *client_uri)
{
	tp_ca(&t->ca, dir, "ca");
	t->sid = tp_issue(&t->ca, server_uri);
	t->cid = tp_issue(&t->ca, client_uri);
	t->sctx = pki_tls_ctx(&(struct pki_tls_opts){ .server = true, .ca = t->ca.cert,
						       .cert = t->sid.cert, .key = t->sid.key, .alpn = "h2" });
	t->cctx = pki_tls_ctx(&(struct pki_tls_opts){ .ca = t->ca.cert, .cert = t->cid.cert,
						       .key = t->cid.key, .alpn = "h2" });
	cr_assert(t->sctx && t->cctx);
}

void tp_pair_free(struct tls_pair *t)
{
	SSL_CTX_free(t->sctx);
	SSL_CTX_free(t->cctx);
	tp_ident_free(&t->sid);
	tp_ident_free(&t->cid);
	pki_ca_close(&t->ca);
}
