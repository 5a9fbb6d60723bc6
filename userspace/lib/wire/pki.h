/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pki.h - the mesh's certificates and TLS contexts (OpenSSL 3), shared by
 * the control plane (CA, API server), the agent (node credentials, and the
 * per-node mTLS proxy) and sluicectl.
 *
 * Contract: keys are ECDSA P-256; a CA signs leaf certificates whose
 * identity is one URI SAN (a SPIFFE ID) and never copies names from a
 * CSR (the CSR contributes its public key, after its signature is checked).
 * TLS contexts speak TLS 1.3 only, verify the peer's chain against the
 * given CA, and offer/select exactly the given ALPN protocol; the peer's
 * identity is read back with pki_peer_uri(). Private keys are written with
 * mode 0600, atomically. Every function that fails drains OpenSSL's error
 * queue into the log with what it was doing, and returns NULL or -errno
 * (with a one-line reason in `err` where it takes one).
 */
#ifndef SL_PKI_H
#define SL_PKI_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#define PKI_CA_DAYS        3650
#define PKI_LEAF_SECONDS   (365L * 24 * 3600)

struct pki_ca {
	X509 *cert;
	EVP_PKEY *key;
};

/* Drain OpenSSL's error queue into the log as "WHAT: lib:reason" lines;
 * the last reason (if any) is also copied to err. */
void pki_log_errors(const char *what, char *err, size_t errlen);
/* The same at a log level of lib/core/log.h (a peer's failed handshake is
 * routine for a server: debug). */
void pki_log_errors_at(int level, const char *what, char *err, size_t errlen);

EVP_PKEY *pki_key_new(void);
EVP_PKEY *pki_key_load(const char *path);
X509 *pki_cert_load(const char *path);
X509 *pki_cert_from_pem(const char *pem, size_t len);
EVP_PKEY *pki_key_from_pem(const char *pem, size_t len);
/* PEM text, malloc'd and NUL-terminated. */
char *pki_cert_pem(X509 *cert);
char *pki_key_pem(EVP_PKEY *key);
int pki_key_save(const char *path, EVP_PKEY *key);      /* 0600 */
int pki_cert_save(const char *path, X509 *cert);        /* 0644 */

/*
 * The CA at cert_path/key_path. When neither file exists and `create` is
 * set, a new self-signed root (CN `cn`) is made and saved; one file
 * without the other, a key that does not match, or a certificate that is
 * not a CA is an error. 0 or -errno (-ENOENT for one file without the
 * other, -EINVAL for a CA that does not load or match, the write's -errno).
 */
int pki_ca_open(struct pki_ca *ca, const char *cert_path, const char *key_path,
		const char *cn, bool create, char *err, size_t errlen);
void pki_ca_close(struct pki_ca *ca);
/* A new self-signed root (CN `cn`) in memory only. 0 or -EIO. */
int pki_ca_new(struct pki_ca *ca, const char *cn, char *err, size_t errlen);

/* Names a CA writes into a leaf: CN, one URI SAN, optional DNS and IP SANs
 * (NULL-terminated lists). */
struct pki_names {
	const char *cn;
	const char *uri;
	const char *const *dns;
	const char *const *ips;
};

/* A leaf certificate for `pub`, valid from now (minus a minute of clock
 * skew) for `seconds`, usable for TLS client and server auth. */
X509 *pki_issue(const struct pki_ca *ca, EVP_PKEY *pub, const struct pki_names *n,
		long seconds, char *err, size_t errlen);

/* A PEM CSR for `key` (subject CN only). */
char *pki_csr_pem(EVP_PKEY *key, const char *cn);
/* The same with one URI SAN (a workload's SPIFFE ID), for POST /v1/certs. */
char *pki_csr_pem_uri(EVP_PKEY *key, const char *cn, const char *uri);
/* The first URI SAN a PEM CSR asks for; -ENOENT if none (or not a CSR),
 * -EINVAL if it does not fit buf. The
 * signature is not checked here: pki_sign_csr() does. */
int pki_csr_uri(const char *csr_pem, size_t len, char *buf, size_t blen);
/* The certificate's serial number as hex; -ERANGE if it does not fit. */
int pki_cert_serial(X509 *cert, char *buf, size_t len);
/* notAfter as seconds since the epoch. */
long long pki_cert_not_after(X509 *cert);
/* Check a PEM CSR's signature and key type (EC P-256, or RSA >= 2048
 * bits) and issue a certificate for its key with the CA's names. */
X509 *pki_sign_csr(const struct pki_ca *ca, const char *csr_pem, size_t len,
		   const struct pki_names *n, long seconds, char *err, size_t errlen);

/* Does `cert` carry `key`'s public key? */
bool pki_cert_matches_key(X509 *cert, EVP_PKEY *key);
/* The first URI SAN of `cert` into buf; -ENOENT if none, -EINVAL if it
 * does not fit. */
int pki_cert_uri(X509 *cert, char *buf, size_t len);
/* Seconds until `cert` expires (negative once it has). A value, not an
 * error code: -1 also when notAfter cannot be read. */
long pki_cert_seconds_left(X509 *cert);

struct pki_tls_opts {
	bool server;
	X509 *ca;                 /* trust anchor for the peer's chain */
	X509 *cert;               /* our certificate (NULL: none, client only) */
	EVP_PKEY *key;
	const char *alpn;         /* one protocol, e.g. "h2"; NULL: none */
	bool require_peer_cert;   /* server: refuse a client without one */
};

/* A TLS 1.3-only context. A server context always asks for a client
 * certificate and fails the handshake on one that does not verify; with
 * require_peer_cert it also fails when none is sent. */
SSL_CTX *pki_tls_ctx(const struct pki_tls_opts *o);
/* Swap the context's certificate and key (rotation): new handshakes use
 * them, established ones are untouched. */
int pki_tls_ctx_set_identity(SSL_CTX *ctx, X509 *cert, EVP_PKEY *key);
/* The verified peer certificate's first URI SAN; -ENOENT when the peer
 * sent no certificate, -EPERM when it did not verify. */
int pki_peer_uri(SSL *ssl, char *buf, size_t len);

#endif /* SL_PKI_H */
