// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * certs.c - workload keys and certificates of the node proxy (certs.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "agent/certs.h"
#include "lib/core/file.h"
#include "lib/core/loop.h"
#include "lib/core/log.h"
#include "lib/wire/pki.h"
#include "lib/core/sys.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000

struct certs {
	struct sync *sy;
	certs_fn fn;
	void *arg;
	char path[PATH_MAX];
	struct wcert **v;
	size_t n;
};

/* A request in flight; the wcert may be dropped before the answer. */
struct req {
	struct certs *c;
	uint32_t id;
	EVP_PKEY *key;
};

static void write_json(struct certs *c)
{
	json_t *a = json_array();
	char *text;

	for (size_t i = 0; a && i < c->n; i++) {
		const struct wcert *w = c->v[i];

		json_array_append_new(a, json_pack("{s:s, s:I, s:s, s:I, s:I, s:b}",
			"identity", w->spiffe, "id", (json_int_t)w->id, "serial", w->serial,
			"not_after", (json_int_t)w->not_after,
			"renew_in_s", (json_int_t)(w->cert ? ((int64_t)w->renew_ms -
				(int64_t)loop_now_ms()) / 1000 : 0),
			"valid", w->cert && pki_cert_seconds_left(w->cert) > 0));
	}
	text = a ? json_dumps(a, JSON_INDENT(2)) : NULL;
	if (text && file_write_atomic(c->path, text, strlen(text), 0644))
		log_warn("writing %s failed", c->path);
	free(text);
	json_decref(a);
}

static struct wcert *find(const struct certs *c, uint32_t id)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i]->id == id)
			return c->v[i];
	return NULL;
}

const struct wcert *certs_get(const struct certs *c, uint32_t id)
{
	const struct wcert *w = find(c, id);

	return w && w->cert ? w : NULL;
}

static void wcert_free(struct wcert *w)
{
	EVP_PKEY_free(w->key);
	X509_free(w->cert);
	free(w);
}

static void failed(struct wcert *w)
{
	uint64_t d = RETRY_MIN_MS;

	for (unsigned int i = 0; i < w->failures && d < RETRY_MAX_MS; i++)
		d *= 2;
	w->failures++;
	w->renew_ms = loop_now_ms() + (d < RETRY_MAX_MS ? d : RETRY_MAX_MS);
}

static void on_answer(void *arg, int status, const char *body, size_t len)
{
	struct req *r = arg;
	struct certs *c = r->c;
	struct wcert *w = find(c, r->id);
	json_t *j = status > 0 ? json_loadb(body, len, 0, NULL) : NULL;
	const char *pem = json_string_value(json_object_get(j, "certificate"));
	X509 *cert = pem ? pki_cert_from_pem(pem, strlen(pem)) : NULL;
	char uri[300];

	if (!w)
		goto out;   /* no longer wanted */
	w->inflight = false;
	if (status != 200) {
		const char *e = json_string_value(json_object_get(j, "error"));

		log_warn("certificate for %s: %s%s", w->spiffe,
			 status < 0 ? "connection to the control plane lost" : "refused: ",
			 status < 0 ? "" : e ? e : "(no reason given)");
		failed(w);
		goto out;
	}
	if (!cert || !pki_cert_matches_key(cert, r->key) || pki_cert_uri(cert, uri, sizeof(uri)) ||
	    strcmp(uri, w->spiffe) || X509_verify(cert, X509_get0_pubkey(sync_ca(c->sy))) != 1) {
		log_err("certificate for %s: the answer is not a certificate of the mesh CA for "
			"this key and identity", w->spiffe);
		failed(w);
		goto out;
	}
	EVP_PKEY_free(w->key);
	X509_free(w->cert);
	w->key = r->key;
	r->key = NULL;
	w->cert = cert;
	cert = NULL;
	w->failures = 0;
	pki_cert_serial(w->cert, w->serial, sizeof(w->serial));
	w->not_after = pki_cert_not_after(w->cert);
	{
		long left = pki_cert_seconds_left(w->cert);

		w->renew_ms = loop_now_ms() + (uint64_t)(left > 2 ? left : 2) * 500;
		log_info("workload certificate for %s: serial %s, expires in %ld s, renewal in %ld s",
			 w->spiffe, w->serial, left, (left > 2 ? left : 2) / 2);
	}
	c->fn(c->arg, w->id, w->spiffe, w->key, w->cert);
	write_json(c);
out:
	X509_free(cert);
	EVP_PKEY_free(r->key);
	json_decref(j);
	free(r);
}

static void request(struct certs *c, struct wcert *w)
{
	struct req *r = calloc(1, sizeof(*r));
	char *csr = NULL, *body = NULL;
	json_t *j = NULL;

	if (!r)
		return;
	r->c = c;
	r->id = w->id;
	r->key = pki_key_new();
	csr = r->key ? pki_csr_pem_uri(r->key, "workload", w->spiffe) : NULL;
	j = csr ? json_pack("{s:s}", "csr", csr) : NULL;
	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!body || sync_post(c->sy, "/v1/certs", body, on_answer, r)) {
		EVP_PKEY_free(r->key);
		free(r);
		failed(w);
	} else {
		w->inflight = true;
	}
	free(csr);
	free(body);
	json_decref(j);
}

void certs_tick(struct certs *c)
{
	uint64_t now = loop_now_ms();

	if (!sync_connected(c->sy))
		return;
	for (size_t i = 0; i < c->n; i++)
		if (!c->v[i]->inflight && now >= c->v[i]->renew_ms)
			request(c, c->v[i]);
}

void certs_set_wanted(struct certs *c, const struct snapshot *s)
{
	bool changed = false;
	size_t k = 0;

	for (size_t i = 0; i < c->n; i++)
		c->v[i]->wanted = false;
	for (size_t i = 0; i < s->nworkloads; i++) {
		const struct snap_workload *wl = &s->workloads[i];
		const struct snap_identity *si;
		struct wcert *w, **nv;

		if (!wl->local || !(si = snapshot_identity(s, wl->identity)))
			continue;
		w = find(c, wl->identity);
		if (w && strcmp(w->spiffe, si->spiffe) == 0) {
			w->wanted = true;
			continue;
		}
		w = calloc(1, sizeof(*w));
		nv = w ? realloc(c->v, (c->n + 1) * sizeof(*nv)) : NULL;
		if (!nv) {
			free(w);
			log_err("certs: out of memory");
			continue;
		}
		c->v = nv;
		w->id = wl->identity;
		snprintf(w->spiffe, sizeof(w->spiffe), "%s", si->spiffe);
		w->wanted = true;
		c->v[c->n++] = w;
		changed = true;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i]->wanted) {
			c->v[k++] = c->v[i];
		} else {
			log_info("workload certificate for %s dropped: no local workload has it",
				 c->v[i]->spiffe);
			c->fn(c->arg, c->v[i]->id, c->v[i]->spiffe, NULL, NULL);
			wcert_free(c->v[i]);
			changed = true;
		}
	}
	c->n = k;
	if (changed)
		write_json(c);
	certs_tick(c);
}

struct certs *certs_new(struct sync *sy, const char *run_dir, certs_fn fn, void *arg)
{
	struct certs *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->sy = sy;
	c->fn = fn;
	c->arg = arg;
	snprintf(c->path, sizeof(c->path), "%s/certs.json", run_dir);
	sys_mkdir_p(run_dir, 0755);
	write_json(c);
	return c;
}

void certs_free(struct certs *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		wcert_free(c->v[i]);
	free(c->v);
	free(c);
}
