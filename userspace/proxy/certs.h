/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * certs.h - the credentials the node proxy holds in memory: the node's
 * certificate and key with the mesh CA (its HBONE server context), and one
 * certificate and key per local workload identity (a client context that
 * presents it). The agent sends them over the link (lib/wire/proxylink.h); they
 * are never written anywhere, and a proxy that starts takes them from the
 * agent again.
 *
 * Contract: a certificate replaced for an identity gets a new `gen`, so
 * the proxy stops pooling new tunnels on connections made with the old
 * one; established connections keep theirs (SSL objects hold their
 * context). Functions return 0 or -errno after logging why (-EINVAL:
 * credentials that do not parse or match, or no CA yet; -EIO: no TLS
 * context from them; -ENOMEM); on error nothing changes.
 */
#ifndef SL_PROXY_CERTS_H
#define SL_PROXY_CERTS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct pcert {
	uint32_t id;               /* numeric identity */
	char spiffe[256];
	EVP_PKEY *key;
	X509 *cert;
	SSL_CTX *ctx;              /* client context presenting cert */
	unsigned int gen;          /* unique among the certificates held */
};

struct pcerts {
	X509 *ca;
	X509 *node_cert;
	EVP_PKEY *node_key;
	SSL_CTX *server_ctx;       /* HBONE server: the node's certificate */
	char td[256];              /* trust domain, from the node certificate */
	unsigned int node_gen;     /* +1 per node credential change */
	unsigned int gen_seq;      /* the last pcert.gen given */
	struct pcert **v;
	size_t n;
};

int pcerts_set_node(struct pcerts *c, const char *ca, size_t ca_len, const char *cert,
		    size_t cert_len, const char *key, size_t key_len);
int pcerts_set(struct pcerts *c, uint32_t id, const char *spiffe, const char *key, size_t key_len,
	       const char *cert, size_t cert_len);
void pcerts_forget(struct pcerts *c, uint32_t id);
/* The identity's certificate, or NULL (none yet). */
const struct pcert *pcerts_get(const struct pcerts *c, uint32_t id);
void pcerts_free(struct pcerts *c);

#endif /* SL_PROXY_CERTS_H */
