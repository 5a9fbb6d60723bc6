// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * PEM and CSR handling and URI SAN (SPIFFE ID) extraction: what the
 * control plane does with a CSR from /v1/join and /v1/certs (read its URI
 * SAN, check its signature and key, sign it) and what a node does with a
 * certificate it is given (read its URI SAN, serial, expiry).
 *
 * An input that is not PEM already is taken as DER and wrapped in PEM, as
 * a CSR and as a certificate, so the fuzzer explores ASN.1 rather than
 * base64.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fuzz.h"
#include "lib/wire/pki.h"

static struct pki_ca ca;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	fuzz_quiet();
	ca.key = pki_key_new();
	if (!ca.key)
		abort();
	/* a CA is any certificate with the key: a self-issued leaf will do */
	ca.cert = pki_issue(&(struct pki_ca){ .key = ca.key }, ca.key,
			    &(struct pki_names){ .cn = "fuzz-ca" }, 3600, err, sizeof(err));
	if (!ca.cert)
		abort();
	return 0;
}

/* DER as PEM with the given label; malloc'd, length in *len. */
static char *pem_wrap(const uint8_t *der, size_t n, const char *label, size_t *len)
{
	size_t b64 = 4 * ((n + 2) / 3), cap = b64 + b64 / 64 + 2 * strlen(label) + 64;
	char *p = malloc(cap);
	size_t off;

	if (!p)
		abort();
	off = (size_t)sprintf(p, "-----BEGIN %s-----\n", label);
	for (size_t i = 0; i < n; i += 48) {
		size_t k = n - i < 48 ? n - i : 48;

		off += (size_t)EVP_EncodeBlock((unsigned char *)p + off, der + i, (int)k);
		p[off++] = '\n';
	}
	off += (size_t)sprintf(p + off, "-----END %s-----\n", label);
	*len = off;
	return p;
}

static void one_csr(const char *pem, size_t len)
{
	struct pki_names names = { .cn = "node1", .uri = "spiffe://cluster.local/ns/a/sa/b" };
	char uri[600], err[512];
	X509 *x;

	pki_csr_uri(pem, len, uri, sizeof(uri));
	x = pki_sign_csr(&ca, pem, len, &names, 3600, err, sizeof(err));
	X509_free(x);
}

static void one_cert(const char *pem, size_t len)
{
	X509 *x = pki_cert_from_pem(pem, len);
	char uri[600], serial[80];

	if (!x)
		return;
	pki_cert_uri(x, uri, sizeof(uri));
	pki_cert_serial(x, serial, sizeof(serial));
	pki_cert_not_after(x);
	pki_cert_seconds_left(x);
	pki_cert_matches_key(x, ca.key);
	X509_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	char *pem;

	if (size >= 5 && memcmp(data, "-----", 5) == 0) {
		one_csr((const char *)data, size);
		one_cert((const char *)data, size);
		return 0;
	}
	pem = pem_wrap(data, size, "CERTIFICATE REQUEST", &len);
	one_csr(pem, len);
	free(pem);
	pem = pem_wrap(data, size, "CERTIFICATE", &len);
	one_cert(pem, len);
	free(pem);
	return 0;
}
