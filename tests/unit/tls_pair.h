/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tls_pair.h - test fixtures for lib/wire/pki and lib/wire/h2: a temporary directory,
 * a CA in it, identities it issues, and a server and a client TLS context
 * trusting that CA. Every failure is a Criterion assertion failure.
 */
#ifndef TESTS_UNIT_TLS_PAIR_H
#define TESTS_UNIT_TLS_PAIR_H

#include <stddef.h>
#include <openssl/ssl.h>

#include "lib/wire/pki.h"

/* mkdtemp("/tmp/sluice-TAG-XXXXXX") into dir; tp_rmdir() removes it. */
void tp_tmpdir(char *dir, size_t len, const char *tag);
void tp_rmdir(const char *dir);

/* A CA created as DIR/NAME.crt and DIR/NAME.key. */
void tp_ca(struct pki_ca *ca, const char *dir, const char *name);

struct ident {
	X509 *cert;
	EVP_PKEY *key;
};

/* A fresh key and a one-hour leaf for uri, signed by ca. */
struct ident tp_issue(struct pki_ca *ca, const char *uri);
void tp_ident_free(struct ident *id);

/* A CA, a server and a client identity, and their TLS contexts (ALPN h2). */
struct tls_pair {
	struct pki_ca ca;
	struct ident sid, cid;
	SSL_CTX *sctx, *cctx;
};

void tp_pair_new(struct tls_pair *t, const char *dir, const char *server_uri,
		 const char *client_uri);
void tp_pair_free(struct tls_pair *t);

#endif
