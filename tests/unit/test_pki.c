// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lib/wire/pki: the CA on disk, CSR signing and TLS 1.3 mutual authentication
 * over socketpairs (HTTP/2 over it: test_h2.c).
 */
#include <errno.h>
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

#include "lib/wire/pki.h"
#include "tls_pair.h"

static char dir[64];

static void mkdir_tmp(void)
{
	tp_tmpdir(dir, sizeof(dir), "pki");
}

static void rm_tmp(void)
{
	tp_rmdir(dir);
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
	cr_assert_eq(pki_ca_open(&a, cp, kp2, "A", false, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "does not hold the key"), "%s", err);
	cr_assert_null(a.cert);
	unlink(kp);
	cr_assert_eq(pki_ca_open(&a, cp, kp, "A", true, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "is missing"), "%s", err);
	ERR_clear_error();
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

	tp_ca(&ca, dir, "ca");
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

	tp_ca(&ca, dir, "ca");
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

	tp_pair_new(&t, dir, "spiffe://td/sluice/control", "spiffe://td/sluice/node/n1");
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
	tp_pair_free(&t);
}

Test(pki, tls_refuses_other_ca_missing_cert_and_tls12)
{
	struct pki_ca ca, other;
	struct ident sid, cid, foreign;
	SSL_CTX *sctx, *sreq, *cforeign, *cnone, *c12;
	SSL *s, *c;
	char uri[256];

	tp_ca(&ca, dir, "ca");
	tp_ca(&other, dir, "other");
	sid = tp_issue(&ca, "spiffe://td/sluice/control");
	cid = tp_issue(&ca, "spiffe://td/sluice/node/n1");
	foreign = tp_issue(&other, "spiffe://td/sluice/admin");
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
	cr_assert_eq(pki_peer_uri(s, uri, sizeof(uri)), -ENOENT);
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
	tp_ident_free(&sid);
	tp_ident_free(&cid);
	tp_ident_free(&foreign);
	pki_ca_close(&ca);
	pki_ca_close(&other);
}
