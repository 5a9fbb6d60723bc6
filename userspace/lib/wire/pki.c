// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "lib/core/file.h"
#include "lib/core/log.h"
#include "lib/wire/pki.h"

void pki_log_errors_at(int level, const char *what, char *err, size_t errlen)
{
	const char *data, *reason = NULL;
	unsigned long e, last = 0;
	int flags;

	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		char buf[256];

		ERR_error_string_n(e, buf, sizeof(buf));
		log_msg((enum log_level)level, "%s: %s%s%s", what, buf,
			(flags & ERR_TXT_STRING) ? ": " : "", (flags & ERR_TXT_STRING) ? data : "");
		last = e;
	}
	if (last)
		reason = ERR_reason_error_string(last);
	if (err && errlen)
		snprintf(err, errlen, "%s%s%s", what, reason ? ": " : "", reason ?: "");
}

void pki_log_errors(const char *what, char *err, size_t errlen)
{
	pki_log_errors_at(LOG_WARN, what, err, errlen);
}

/* ---- keys and PEM -------------------------------------------------------- */

EVP_PKEY *pki_key_new(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!k)
		pki_log_errors("generating an EC P-256 key", NULL, 0);
	return k;
}

static void *rd_key(BIO *b) { return PEM_read_bio_PrivateKey(b, NULL, NULL, NULL); }
static void *rd_cert(BIO *b) { return PEM_read_bio_X509(b, NULL, NULL, NULL); }

/* One PEM object from a file, or NULL after logging why. */
static void *read_pem_file(const char *path, const char *what, void *(*rd)(BIO *))
{
	BIO *b = BIO_new_file(path, "r");
	void *obj = b ? rd(b) : NULL;

	if (!obj) {
		char msg[512];

		snprintf(msg, sizeof(msg), "reading %s %s", what, path);
		pki_log_errors(msg, NULL, 0);
	}
	BIO_free(b);
	return obj;
}

EVP_PKEY *pki_key_load(const char *path)
{
	return read_pem_file(path, "private key", rd_key);
}

X509 *pki_cert_load(const char *path)
{
	return read_pem_file(path, "certificate", rd_cert);
}

/* One PEM object from memory, or NULL after logging why. */
static void *read_pem_mem(const char *pem, size_t len, const char *what, void *(*rd)(BIO *))
{
	BIO *b = len <= INT_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
	void *obj = b ? rd(b) : NULL;

	if (!obj)
		pki_log_errors(what, NULL, 0);
	BIO_free(b);
	return obj;
}

X509 *pki_cert_from_pem(const char *pem, size_t len)
{
	return read_pem_mem(pem, len, "parsing a PEM certificate", rd_cert);
}

EVP_PKEY *pki_key_from_pem(const char *pem, size_t len)
{
	return read_pem_mem(pem, len, "parsing a PEM private key", rd_key);
}

/* The memory BIO's content as a malloc'd string. */
static char *bio_string(BIO *b)
{
	char *data, *s;
	long n = BIO_get_mem_data(b, &data);

	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

char *pki_cert_pem(X509 *cert)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b && PEM_write_bio_X509(b, cert))
		s = bio_string(b);
	if (!s)
		pki_log_errors("writing a certificate as PEM", NULL, 0);
	BIO_free(b);
	return s;
}

char *pki_key_pem(EVP_PKEY *key)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
		s = bio_string(b);
	if (!s)
		pki_log_errors("writing a private key as PEM", NULL, 0);
	BIO_free_all(b);
	return s;
}

static int save_pem(const char *path, char *pem, mode_t mode, bool secret)
{
	size_t len;
	int err;

	if (!pem)
		return -ENOMEM;
	len = strlen(pem);
	err = file_write_atomic(path, pem, len, mode);
	if (err)
		log_err("writing %s: %s", path, strerror(-err));
	if (secret)
		OPENSSL_cleanse(pem, len);
	free(pem);
	return err;
}

int pki_key_save(const char *path, EVP_PKEY *key)
{
	return save_pem(path, pki_key_pem(key), 0600, true);
}

int pki_cert_save(const char *path, X509 *cert)
{
	return save_pem(path, pki_cert_pem(cert), 0644, false);
}

/* ---- certificates -------------------------------------------------------- */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return -EINVAL;
	ok = X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -ENOMEM;
}

static int set_serial(X509 *x)
{
	unsigned char b[16];
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn = NULL;
	int rc = -ENOMEM;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[0] &= 0x7f;           /* positive */
	b[0] |= 0x01;           /* and 16 bytes long */
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (bn)
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	if (ai && X509_set_serialNumber(x, ai))
		rc = 0;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return rc;
}

/* No separator may sneak into a SAN list from a name. */
static bool san_safe(const char *s)
{
	return s && *s && !strpbrk(s, ",\n\r");
}

static int san_value(const struct pki_names *n, char *buf, size_t len)
{
	size_t off = 0;

	if (!san_safe(n->uri))
		return -EINVAL;
	off += (size_t)snprintf(buf + off, len - off, "URI:%s", n->uri);
	for (const char *const *d = n->dns; d && *d && off < len; d++) {
		if (!san_safe(*d))
			return -EINVAL;
		off += (size_t)snprintf(buf + off, len - off, ",DNS:%s", *d);
	}
	for (const char *const *i = n->ips; i && *i && off < len; i++) {
		if (!san_safe(*i))
			return -EINVAL;
		off += (size_t)snprintf(buf + off, len - off, ",IP:%s", *i);
	}
	return off < len ? 0 : -ERANGE;
}

/* issuer == NULL: self-signed CA. */
static X509 *make_cert(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pub,
		       const struct pki_names *n, long seconds, char *err, size_t errlen)
{
	X509 *x = X509_new();
	X509_NAME *name;
	char san[2048];
	bool ca = !issuer;

	if (!x)
		goto fail;
	if (!X509_set_version(x, X509_VERSION_3) || set_serial(x) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), seconds) || !X509_set_pubkey(x, pub))
		goto fail;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"sluice", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)n->cn, -1, -1, 0))
		goto fail;
	if (!X509_set_issuer_name(x, ca ? name : X509_get_subject_name(issuer)))
		goto fail;
	if (ca) {
		if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
		    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
		    add_ext(x, x, NID_subject_key_identifier, "hash") ||
		    add_ext(x, x, NID_authority_key_identifier, "keyid:always"))
			goto fail;
	} else {
		if (san_value(n, san, sizeof(san))) {
			snprintf(err, errlen, "a name for the certificate has a character a SAN cannot hold");
			goto fail_quiet;
		}
		if (add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
		    add_ext(x, issuer, NID_key_usage, "critical,digitalSignature,keyAgreement") ||
		    add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth") ||
		    add_ext(x, issuer, NID_subject_key_identifier, "hash") ||
		    add_ext(x, issuer, NID_authority_key_identifier, "keyid:always") ||
		    add_ext(x, issuer, NID_subject_alt_name, san))
			goto fail;
	}
	if (!X509_sign(x, issuer_key, EVP_sha256()))
		goto fail;
	return x;
fail:
	pki_log_errors(ca ? "creating the CA certificate" : "issuing a certificate", err, errlen);
fail_quiet:
	X509_free(x);
	return NULL;
}

X509 *pki_issue(const struct pki_ca *ca, EVP_PKEY *pub, const struct pki_names *n,
		long seconds, char *err, size_t errlen)
{
	return make_cert(ca->cert, ca->key, pub, n, seconds, err, errlen);
}

void pki_ca_close(struct pki_ca *ca)
{
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	ca->cert = NULL;
	ca->key = NULL;
}

int pki_ca_new(struct pki_ca *ca, const char *cn, char *err, size_t errlen)
{
	struct pki_names n = { .cn = cn };

	ca->cert = NULL;
	ca->key = pki_key_new();
	if (!ca->key) {
		snprintf(err, errlen, "generating the CA key failed");
		return -EIO;
	}
	ca->cert = make_cert(NULL, ca->key, ca->key, &n, PKI_CA_DAYS * 86400L, err, errlen);
	if (!ca->cert) {
		pki_ca_close(ca);
		return -EIO;
	}
	return 0;
}

int pki_ca_open(struct pki_ca *ca, const char *cert_path, const char *key_path,
		const char *cn, bool create, char *err, size_t errlen)
{
	struct stat sc, sk;
	bool have_c = stat(cert_path, &sc) == 0, have_k = stat(key_path, &sk) == 0;
	int rc = -EINVAL;

	ca->cert = NULL;
	ca->key = NULL;
	if (!have_c && !have_k && create) {
		rc = pki_ca_new(ca, cn, err, errlen);
		if (rc)
			return rc;
		rc = pki_key_save(key_path, ca->key);
		if (!rc)
			rc = pki_cert_save(cert_path, ca->cert);
		if (rc) {
			snprintf(err, errlen, "saving the new CA to %s and %s failed", cert_path, key_path);
			goto fail;
		}
		log_info("created a root CA (EC P-256, CN %s): %s", cn, cert_path);
		return 0;
	}
	if (!have_c || !have_k) {
		snprintf(err, errlen, "%s %s but %s %s: give both or neither", cert_path,
			 have_c ? "exists" : "is missing", key_path, have_k ? "exists" : "is missing");
		rc = -ENOENT;
		goto fail;
	}
	if (sk.st_mode & 077)
		log_warn("CA key %s is readable by others (mode %03o); it should be 0600",
			 key_path, sk.st_mode & 0777);
	ca->cert = pki_cert_load(cert_path);
	ca->key = pki_key_load(key_path);
	if (!ca->cert || !ca->key) {
		snprintf(err, errlen, "cannot read the CA from %s and %s", cert_path, key_path);
		goto fail;
	}
	if (X509_check_ca(ca->cert) < 1) {
		snprintf(err, errlen, "%s is not a CA certificate", cert_path);
		goto fail;
	}
	if (!pki_cert_matches_key(ca->cert, ca->key)) {
		snprintf(err, errlen, "%s does not hold the key of %s", key_path, cert_path);
		goto fail;
	}
	return 0;
fail:
	pki_ca_close(ca);
	return rc;
}

char *pki_csr_pem(EVP_PKEY *key, const char *cn)
{
	return pki_csr_pem_uri(key, cn, NULL);
}

char *pki_csr_pem_uri(EVP_PKEY *key, const char *cn, const char *uri)
{
	X509_REQ *r = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = NULL;
	BIO *b = NULL;
	char *s = NULL, san[600];

	if (!r || !X509_REQ_set_version(r, X509_REQ_VERSION_1) || !X509_REQ_set_pubkey(r, key) ||
	    !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_UTF8,
					(const unsigned char *)cn, -1, -1, 0))
		goto out;
	if (uri) {
		X509_EXTENSION *e;

		if (!san_safe(uri) || strlen(uri) > 512)
			goto out;
		snprintf(san, sizeof(san), "URI:%s", uri);
		e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		exts = sk_X509_EXTENSION_new_null();
		if (!e || !exts || !sk_X509_EXTENSION_push(exts, e)) {
			X509_EXTENSION_free(e);
			goto out;
		}
		if (!X509_REQ_add_extensions(r, exts))
			goto out;
	}
	if (!X509_REQ_sign(r, key, EVP_sha256()))
		goto out;
	b = BIO_new(BIO_s_mem());
	if (b && PEM_write_bio_X509_REQ(b, r))
		s = bio_string(b);
out:
	if (!s)
		pki_log_errors("creating a CSR", NULL, 0);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	BIO_free(b);
	X509_REQ_free(r);
	return s;
}

/* The first URI of a SAN list into buf: 0, -ENOENT if there is none,
 * -EINVAL if it does not fit or holds a NUL. */
static int gens_uri(const GENERAL_NAMES *gens, char *buf, size_t len)
{
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *d;
		int n;

		if (g->type != GEN_URI)
			continue;
		d = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		n = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (n <= 0 || (size_t)n >= len || memchr(d, '\0', (size_t)n))
			return -EINVAL;
		memcpy(buf, d, (size_t)n);
		buf[n] = '\0';
		return 0;
	}
	return -ENOENT;
}

int pki_csr_uri(const char *csr_pem, size_t len, char *buf, size_t blen)
{
	BIO *b = BIO_new_mem_buf(csr_pem, (int)len);
	X509_REQ *r = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	STACK_OF(X509_EXTENSION) *exts = r ? X509_REQ_get_extensions(r) : NULL;
	GENERAL_NAMES *gens = NULL;
	int rc;

	for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);

		if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name) {
			gens = X509V3_EXT_d2i(e);
			break;
		}
	}
	rc = gens_uri(gens, buf, blen);
	if (!r)
		ERR_clear_error();
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(r);
	BIO_free(b);
	return rc;
}

static bool key_acceptable(EVP_PKEY *k, char *err, size_t errlen)
{
	char group[64];

	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), NULL) &&
		    strcmp(group, "prime256v1") == 0)
			return true;
		snprintf(err, errlen, "the CSR's EC key is not on P-256");
		return false;
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(k) >= 2048)
			return true;
		snprintf(err, errlen, "the CSR's RSA key is shorter than 2048 bits");
		return false;
	default:
		snprintf(err, errlen, "the CSR's key type is not EC P-256 or RSA");
		return false;
	}
}

X509 *pki_sign_csr(const struct pki_ca *ca, const char *csr_pem, size_t len,
		   const struct pki_names *n, long seconds, char *err, size_t errlen)
{
	BIO *b = BIO_new_mem_buf(csr_pem, (int)len);
	X509_REQ *r = NULL;
	EVP_PKEY *pub;
	X509 *x = NULL;

	if (b)
		r = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	if (!r) {
		pki_log_errors("parsing a CSR", NULL, 0);
		snprintf(err, errlen, "csr: not a PEM certificate signing request");
		goto out;
	}
	pub = X509_REQ_get0_pubkey(r);
	if (!pub || X509_REQ_verify(r, pub) != 1) {
		pki_log_errors("verifying a CSR", NULL, 0);
		snprintf(err, errlen, "csr: its signature does not verify");
		goto out;
	}
	if (!key_acceptable(pub, err, errlen))
		goto out;
	x = pki_issue(ca, pub, n, seconds, err, errlen);
out:
	X509_REQ_free(r);
	BIO_free(b);
	return x;
}

bool pki_cert_matches_key(X509 *cert, EVP_PKEY *key)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);

	return pub && EVP_PKEY_eq(pub, key) == 1;
}

int pki_cert_uri(X509 *cert, char *buf, size_t len)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int rc = gens_uri(gens, buf, len);

	GENERAL_NAMES_free(gens);
	return rc;
}

long pki_cert_seconds_left(X509 *cert)
{
	int days = 0, secs = 0;

	if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)))
		return -1;
	return days * 86400L + secs;
}

/* ---- TLS ----------------------------------------------------------------- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	const char *want = arg;
	size_t wl = strlen(want);

	for (unsigned int i = 0; i < inlen;) {
		unsigned int l = in[i];

		if (i + 1 + l > inlen)
			break;
		if (l == wl && memcmp(in + i + 1, want, wl) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)l;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int pki_tls_ctx_set_identity(SSL_CTX *ctx, X509 *cert, EVP_PKEY *key)
{
	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		pki_log_errors("setting the TLS certificate and key", NULL, 0);
		return -EINVAL;
	}
	return 0;
}

SSL_CTX *pki_tls_ctx(const struct pki_tls_opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());

	if (!ctx)
		goto fail;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
		goto fail;
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_verify_depth(ctx, 2);
	if (!o->ca || X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), o->ca) != 1)
		goto fail;
	if (o->cert && pki_tls_ctx_set_identity(ctx, o->cert, o->key))
		goto fail_logged;
	if (o->server) {
		/* no resumption: every connection shows its certificate */
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		if (SSL_CTX_add_client_CA(ctx, o->ca) != 1)
			goto fail;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
				   (o->require_peer_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
		if (o->alpn)
			SSL_CTX_set_alpn_select_cb(ctx, alpn_select, (void *)o->alpn);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (o->alpn) {
			unsigned char wire[256];
			size_t l = strlen(o->alpn);

			if (l == 0 || l > 255)
				goto fail;
			wire[0] = (unsigned char)l;
			memcpy(wire + 1, o->alpn, l);
			if (SSL_CTX_set_alpn_protos(ctx, wire, (unsigned int)l + 1) != 0)
				goto fail;
		}
	}
	return ctx;
fail:
	pki_log_errors("creating a TLS context", NULL, 0);
fail_logged:
	SSL_CTX_free(ctx);
	return NULL;
}

int pki_peer_uri(SSL *ssl, char *buf, size_t len)
{
	X509 *c = SSL_get0_peer_certificate(ssl);

	if (!c)
		return -ENOENT;
	if (SSL_get_verify_result(ssl) != X509_V_OK)
		return -EPERM;
	return pki_cert_uri(c, buf, len);
}

int pki_cert_serial(X509 *cert, char *buf, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	int rc = hex ? -ERANGE : -ENOMEM;

	if (hex && strlen(hex) < len) {
		snprintf(buf, len, "%s", hex);
		rc = 0;
	}
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

long long pki_cert_not_after(X509 *cert)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
		return 0;
	return (long long)timegm(&tm);
}
