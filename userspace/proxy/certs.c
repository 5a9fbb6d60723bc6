// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * certs.c - the node proxy's credentials in memory (certs.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/log.h"
#include "lib/wire/pki.h"
#include "proxy/certs.h"

static void pcert_free(struct pcert *w)
{
	if (!w)
		return;
	EVP_PKEY_free(w->key);
	X509_free(w->cert);
	SSL_CTX_free(w->ctx);   /* live connections hold their own reference */
	free(w);
}

int pcerts_set_node(struct pcerts *c, const char *ca, size_t ca_len, const char *cert,
		    size_t cert_len, const char *key, size_t key_len)
{
	X509 *xca = pki_cert_from_pem(ca, ca_len), *xcert = pki_cert_from_pem(cert, cert_len);
	EVP_PKEY *k = pki_key_from_pem(key, key_len);
	char uri[300], *slash;
	SSL_CTX *ctx = NULL;
	int rc = -EINVAL;

	if (!xca || !xcert || !k || !pki_cert_matches_key(xcert, k)) {
		log_err("proxy: the node credentials from the agent do not parse or do not match");
		goto fail;
	}
	if (pki_cert_uri(xcert, uri, sizeof(uri)) || strncmp(uri, "spiffe://", 9) ||
	    !(slash = strchr(uri + 9, '/'))) {
		log_err("proxy: the node certificate has no spiffe://TD/... URI");
		goto fail;
	}
	{
		struct pki_tls_opts to = { .server = true, .ca = xca, .cert = xcert, .key = k,
					   .alpn = "h2", .require_peer_cert = true };

		ctx = pki_tls_ctx(&to);
	}
	if (!ctx) {
		rc = -EIO;
		goto fail;
	}
	X509_free(c->ca);
	X509_free(c->node_cert);
	EVP_PKEY_free(c->node_key);
	SSL_CTX_free(c->server_ctx);
	c->ca = xca;
	c->node_cert = xcert;
	c->node_key = k;
	c->server_ctx = ctx;
	snprintf(c->td, sizeof(c->td), "%.*s", (int)(slash - (uri + 9)), uri + 9);
	c->node_gen++;
	return 0;
fail:
	X509_free(xca);
	X509_free(xcert);
	EVP_PKEY_free(k);
	return rc;
}

static struct pcert **slot(const struct pcerts *c, uint32_t id)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i]->id == id)
			return &c->v[i];
	return NULL;
}

int pcerts_set(struct pcerts *c, uint32_t id, const char *spiffe, const char *key, size_t key_len,
	       const char *cert, size_t cert_len)
{
	struct pcert *w = calloc(1, sizeof(*w)), **old;
	char uri[300];
	int rc = -ENOMEM;

	if (!w || !c->ca) {
		rc = w ? -EINVAL : -ENOMEM;
		goto fail;
	}
	w->id = id;
	snprintf(w->spiffe, sizeof(w->spiffe), "%s", spiffe);
	w->key = pki_key_from_pem(key, key_len);
	w->cert = pki_cert_from_pem(cert, cert_len);
	if (!w->key || !w->cert || !pki_cert_matches_key(w->cert, w->key) ||
	    pki_cert_uri(w->cert, uri, sizeof(uri)) || strcmp(uri, w->spiffe)) {
		log_err("proxy: the certificate for %s from the agent is not one for its key "
			"and identity", w->spiffe);
		rc = -EINVAL;
		goto fail;
	}
	{
		struct pki_tls_opts o = { .ca = c->ca, .cert = w->cert, .key = w->key,
					  .alpn = "h2" };

		w->ctx = pki_tls_ctx(&o);
	}
	if (!w->ctx) {
		rc = -EIO;
		goto fail;
	}
	w->gen = ++c->gen_seq;
	old = slot(c, id);
	if (old) {
		pcert_free(*old);
		*old = w;
		return 0;
	}
	{
		struct pcert **nv = realloc(c->v, (c->n + 1) * sizeof(*nv));

		if (!nv) {
			rc = -ENOMEM;
			goto fail;
		}
		c->v = nv;
		c->v[c->n++] = w;
	}
	return 0;
fail:
	pcert_free(w);
	return rc;
}

void pcerts_forget(struct pcerts *c, uint32_t id)
{
	struct pcert **w = slot(c, id);

	if (!w)
		return;
	pcert_free(*w);
	*w = c->v[--c->n];
}

const struct pcert *pcerts_get(const struct pcerts *c, uint32_t id)
{
	struct pcert **w = slot(c, id);

	return w ? *w : NULL;
}

void pcerts_free(struct pcerts *c)
{
	for (size_t i = 0; i < c->n; i++)
		pcert_free(c->v[i]);
	free(c->v);
	X509_free(c->ca);
	X509_free(c->node_cert);
	EVP_PKEY_free(c->node_key);
	SSL_CTX_free(c->server_ctx);
	memset(c, 0, sizeof(*c));
}
