// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * store_common.c - what both backends of the store use (store_common.h):
 * the state dir's paths and admin credentials, role URIs, the trust
 * domain's form, the config document.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "control/store.h"
#include "control/store_common.h"
#include "lib/core/log.h"

void store_path_of(const struct store *s, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", s->dir, name);
}

void store_role_uri(const struct store *s, const char *role, char *buf, size_t len)
{
	snprintf(buf, len, "spiffe://%s/sluice/%s", s->td, role);
}

bool store_td_ok(const char *td)
{
	size_t n = strlen(td);

	if (n < 1 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)td[i]) && !isdigit((unsigned char)td[i]) &&
		    !strchr(".-_", td[i]))
			return false;
	return true;
}

/* admin.crt/admin.key: kept while signed by our CA and valid for 30 more days. */
int store_admin_creds(struct store *s, char *err, size_t errlen)
{
	char cp[PATH_MAX + 16], kp[PATH_MAX + 16], uri[512], have[512];
	struct pki_names n = { .cn = "admin", .uri = uri };
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc;

	store_path_of(s, "admin.crt", cp, sizeof(cp));
	store_path_of(s, "admin.key", kp, sizeof(kp));
	store_role_uri(s, "admin", uri, sizeof(uri));
	if (access(cp, R_OK) == 0 && access(kp, R_OK) == 0) {
		cert = pki_cert_load(cp);
		key = pki_key_load(kp);
		if (cert && key && pki_cert_matches_key(cert, key) &&
		    X509_verify(cert, s->ca.key) == 1 &&
		    pki_cert_uri(cert, have, sizeof(have)) == 0 && strcmp(have, uri) == 0 &&
		    pki_cert_seconds_left(cert) > 30L * 86400) {
			rc = 0;
			goto out;
		}
		ERR_clear_error();
		log_info("reissuing %s (not from this CA, wrong identity or expiring)", cp);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	key = pki_key_new();
	cert = key ? pki_issue(&s->ca, key, &n, PKI_LEAF_SECONDS, err, errlen) : NULL;
	rc = cert ? pki_key_save(kp, key) ?: pki_cert_save(cp, cert) : -EIO;
	if (rc)
		snprintf(err, errlen, "issuing the admin credentials %s failed", cp);
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

/* config.json's content j (from `where`) into cfg and *version; s->td
 * from it (td, if given, must be the same). */
int store_config_from_json(struct store *s, struct sl_config *cfg, uint64_t *version,
			   json_t *j, const char *where, const char *td, char *err, size_t errlen)
{
	const char *stored_td = json_string_value(json_object_get(j, "trust_domain"));
	struct sl_diags d = {};
	int rc;

	if (!stored_td || !json_is_integer(json_object_get(j, "version")) ||
	    !json_is_array(json_object_get(j, "resources"))) {
		snprintf(err, errlen, "%s: not a sluice-control store (version, trust_domain, resources)",
			 where);
		return -EINVAL;
	}
	if (td && strcmp(td, stored_td) != 0) {
		snprintf(err, errlen, "--trust-domain %s differs from %s's %s: identities depend on it",
			 td, where, stored_td);
		return -EINVAL;
	}
	snprintf(s->td, sizeof(s->td), "%s", stored_td);
	*version = (uint64_t)json_integer_value(json_object_get(j, "version"));
	rc = sl_config_from_json(cfg, where, json_object_get(j, "resources"), &d);
	if (rc)
		snprintf(err, errlen, "%s: the stored config does not load (%zu errors; first: %s)",
			 where, d.nerrors, d.n ? d.v[0].msg : "?");
	sl_diags_free(&d);
	return rc;
}

/* ---- the config's text ----------------------------------------------------- */

char *store_config_text(const struct store *s, const struct sl_config *cfg, uint64_t version,
			size_t *len)
{
	size_t n = sl_config_count(cfg), total = 0, at;
	json_t *tdj = json_string(s->td);
	char *td = tdj ? json_dumps(tdj, JSON_ENCODE_ANY) : NULL, *out = NULL;

	if (!td)
		goto out;
	/* every document's text is kept with it (config.h): copied, not dumped */
	for (size_t i = 0; i < n; i++)
		total += json_string_length(sl_resource_stored(sl_config_at(cfg, i))) + 2;
	total += strlen(td) + 96;
	out = malloc(total);
	if (!out)
		goto out;
	at = (size_t)snprintf(out, total, "{\"version\":%llu,\"trust_domain\":%s,\"resources\":[",
			      (unsigned long long)version, td);
	for (size_t i = 0; i < n; i++) {
		const json_t *t = sl_resource_stored(sl_config_at(cfg, i));

		out[at++] = '\n';
		memcpy(out + at, json_string_value(t), json_string_length(t));
		at += json_string_length(t);
		if (i + 1 < n)
			out[at++] = ',';
	}
	memcpy(out + at, "\n]}\n", 5);
	at += 4;
	*len = at;
out:
	free(td);
	json_decref(tdj);
	return out;
}
