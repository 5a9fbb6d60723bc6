// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * api_certs.c - the certificate endpoints (api_certs.h): node certificates
 * for join tokens, and workload certificates signed for the proxies of a
 * node's own workloads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "control/api_certs.h"
#include "control/nodes.h"
#include "control/request.h"
#include "lib/core/log.h"

/* POST /v1/join {node, token, csr}: a node's certificate for a one-time token. */
void h_join(struct server *s, struct conn *cn, const struct h2_req *r, const char *caller)
{
	struct h2_conn *c = cn->h;
	const char *node, *token, *csr;
	char err[512], uri[512];
	struct pki_names names = { .uri = uri };
	char *cert_pem = NULL, *ca_pem = NULL;
	X509 *cert = NULL;
	json_t *j = parse_body(c, r);

	if (!j)
		return;
	node = json_string_value(json_object_get(j, "node"));
	token = json_string_value(json_object_get(j, "token"));
	csr = json_string_value(json_object_get(j, "csr"));
	if (!node || !token || !csr) {
		reply_err(c, r->stream_id, 400, "body: node, token and csr (strings) are required");
		goto out;
	}
	if (!store_node_name_ok(node)) {
		reply_err(c, r->stream_id, 400, "node: '%s' is not a node name "
			  "(1..63 of a-z, 0-9, '.', '-', '_')", node);
		goto out;
	}
	if (store_token_check(s->st, node, token, false, err, sizeof(err))) {
		log_warn("join from %s as node %s refused: %s", cn->addr, node, err);
		reply_err(c, r->stream_id, 401, "%s", err);
		goto out;
	}
	store_role_uri(s->st, "node/", uri, sizeof(uri));
	snprintf(uri + strlen(uri), sizeof(uri) - strlen(uri), "%s", node);
	names.cn = node;
	cert = pki_sign_csr(&s->st->ca, csr, strlen(csr), &names, PKI_LEAF_SECONDS, err, sizeof(err));
	if (!cert) {
		reply_err(c, r->stream_id, 400, "%s", err);
		goto out;
	}
	if (store_token_check(s->st, node, token, true, err, sizeof(err))) {
		reply_err(c, r->stream_id, 401, "%s", err);
		goto out;
	}
	cert_pem = pki_cert_pem(cert);
	ca_pem = pki_cert_pem(s->st->ca.cert);
	if (!cert_pem || !ca_pem) {
		reply_err(c, r->stream_id, 500, "encoding the certificate failed");
		goto out;
	}
	log_info("node %s joined from %s: certificate for %s issued", node, cn->addr, uri);
	reply(c, r->stream_id, 200, json_pack("{s:s, s:s}", "certificate", cert_pem, "ca", ca_pem));
out:
	free(cert_pem);
	free(ca_pem);
	X509_free(cert);
	json_decref(j);
}

/*
 * POST /v1/certs {csr}: a workload certificate for a node's proxy. The
 * CSR's URI SAN names the identity; it must be one of a workload the
 * config places on the calling node (the node comes from its certificate).
 */
void h_certs(struct server *s, struct conn *cn, const struct h2_req *r, const char *node)
{
	struct h2_conn *c = cn->h;
	char uri[600], prefix[600], err[512], serial[80];
	struct pki_names names = { .cn = node, .uri = uri };
	const char *csr;
	char *pem = NULL, *ca = NULL;
	X509 *cert = NULL;
	json_t *j = parse_body(c, r);

	if (!j)
		return;
	csr = json_string_value(json_object_get(j, "csr"));
	if (!csr) {
		reply_err(c, r->stream_id, 400, "body: csr (a PEM string) is required");
		goto out;
	}
	if (pki_csr_uri(csr, strlen(csr), uri, sizeof(uri))) {
		reply_err(c, r->stream_id, 400, "csr: no URI SAN naming the workload identity "
			  "(spiffe://%s/ns/NS/sa/SA)", s->st->td);
		goto out;
	}
	snprintf(prefix, sizeof(prefix), "spiffe://%s/ns/", s->st->td);
	if (strncmp(uri, prefix, strlen(prefix)) != 0 || !strstr(uri + strlen(prefix), "/sa/")) {
		reply_err(c, r->stream_id, 400, "csr: %s is not a workload identity of trust domain "
			  "%s (spiffe://%s/ns/NS/sa/SA)", uri, s->st->td, s->st->td);
		goto out;
	}
	if (!node_runs(s, node, uri)) {
		log_warn("node %s (%s) asked for a certificate for %s, which has no workload on it",
			 node, cn->addr, uri);
		reply_err(c, r->stream_id, 403, "node %s runs no workload with identity %s in config "
			  "version %llu; only the identities of its own workloads are signed for it",
			  node, uri, (unsigned long long)s->st->version);
		goto out;
	}
	cert = pki_sign_csr(&s->st->ca, csr, strlen(csr), &names,
			    s->o->workload_cert_ttl > 0 ? s->o->workload_cert_ttl : 24 * 3600,
			    err, sizeof(err));
	if (!cert) {
		reply_err(c, r->stream_id, 400, "%s", err);
		goto out;
	}
	pem = pki_cert_pem(cert);
	ca = pki_cert_pem(s->st->ca.cert);
	if (!pem || !ca || pki_cert_serial(cert, serial, sizeof(serial))) {
		reply_err(c, r->stream_id, 500, "encoding the certificate failed");
		goto out;
	}
	log_info("node %s: workload certificate for %s issued (serial %s, %ld s)", node, uri,
		 serial, s->o->workload_cert_ttl);
	reply(c, r->stream_id, 200, json_pack("{s:s, s:s, s:s, s:I}", "certificate", pem, "ca", ca,
					      "serial", serial,
					      "not_after", (json_int_t)pki_cert_not_after(cert)));
out:
	free(pem);
	free(ca);
	X509_free(cert);
	json_decref(j);
}
