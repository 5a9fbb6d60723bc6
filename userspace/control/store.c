// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "control/store.h"
#include "lib/core/file.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"

#define STATE_MAX (512u << 20)

static void path_of(const struct store *s, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", s->dir, name);
}

void store_role_uri(const struct store *s, const char *role, char *buf, size_t len)
{
	snprintf(buf, len, "spiffe://%s/sluice/%s", s->td, role);
}

bool store_node_name_ok(const char *node)
{
	size_t n = strlen(node);

	if (n < 1 || n > 63 || !isalnum((unsigned char)node[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)node[i]) && !isdigit((unsigned char)node[i]) &&
		    !strchr(".-_", node[i]))
			return false;
	return true;
}

static bool td_ok(const char *td)
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

/* The CA: the operator's (copied into DIR once) or DIR's own. */
static int open_ca(struct store *s, const char *ca_cert, const char *ca_key, char *err, size_t errlen)
{
	char cp[PATH_MAX + 16], kp[PATH_MAX + 16], cn[300];
	struct pki_ca mine = {};
	struct stat st;

	path_of(s, "ca.crt", cp, sizeof(cp));
	path_of(s, "ca.key", kp, sizeof(kp));
	snprintf(cn, sizeof(cn), "sluice root CA %s", s->td);
	if (!ca_cert && !ca_key)
		return pki_ca_open(&s->ca, cp, kp, cn, true, err, errlen);
	if (!ca_cert || !ca_key) {
		snprintf(err, errlen, "--ca-cert and --ca-key go together");
		return -1;
	}
	if (pki_ca_open(&s->ca, ca_cert, ca_key, cn, false, err, errlen))
		return -1;
	if (stat(cp, &st) == 0) {
		if (pki_ca_open(&mine, cp, kp, cn, false, err, errlen))
			goto fail;
		if (X509_cmp(mine.cert, s->ca.cert) != 0) {
			snprintf(err, errlen, "%s holds another CA than %s: every certificate issued "
				 "so far depends on it; use a new --state-dir to change CAs", cp, ca_cert);
			goto fail;
		}
		pki_ca_close(&mine);
		return 0;
	}
	if (pki_key_save(kp, s->ca.key) || pki_cert_save(cp, s->ca.cert)) {
		snprintf(err, errlen, "copying the CA into %s failed", s->dir);
		goto fail;
	}
	log_info("using the operator's CA %s (copied to %s)", ca_cert, cp);
	return 0;
fail:
	pki_ca_close(&mine);
	pki_ca_close(&s->ca);
	return -1;
}

/* admin.crt/admin.key: kept while signed by our CA and valid for 30 more days. */
static int admin_creds(struct store *s, char *err, size_t errlen)
{
	char cp[PATH_MAX + 16], kp[PATH_MAX + 16], uri[512], have[512];
	struct pki_names n = { .cn = "admin", .uri = uri };
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc = -1;

	path_of(s, "admin.crt", cp, sizeof(cp));
	path_of(s, "admin.key", kp, sizeof(kp));
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
	if (!cert || pki_key_save(kp, key) || pki_cert_save(cp, cert)) {
		snprintf(err, errlen, "issuing the admin credentials %s failed", cp);
		goto out;
	}
	rc = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

static int load_state(struct store *s, const char *td, char *err, size_t errlen)
{
	char cp[PATH_MAX + 16], ip[PATH_MAX + 16];
	struct sl_diags d = {};
	json_error_t jerr;
	json_t *j = NULL, *ids = NULL;
	const char *stored_td;
	int rc = -1;

	path_of(s, "config.json", cp, sizeof(cp));
	path_of(s, "ids.json", ip, sizeof(ip));
	s->cfg = sl_config_new();
	s->ids = sl_ids_new();
	if (!s->cfg || !s->ids) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (access(ip, F_OK) == 0) {
		ids = json_load_file(ip, JSON_REJECT_DUPLICATES, &jerr);
		if (!ids || sl_ids_from_json(s->ids, ids)) {
			snprintf(err, errlen, "%s:%d:%d: %s", ip, jerr.line, jerr.column,
				 ids ? "not an identity table" : jerr.text);
			goto out;
		}
	}
	if (access(cp, F_OK) != 0) {
		snprintf(s->td, sizeof(s->td), "%s", td ?: "cluster.local");
		rc = 0;
		goto out;
	}
	j = json_load_file(cp, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		snprintf(err, errlen, "%s:%d:%d: %s", cp, jerr.line, jerr.column, jerr.text);
		goto out;
	}
	stored_td = json_string_value(json_object_get(j, "trust_domain"));
	if (!stored_td || !json_is_integer(json_object_get(j, "version")) ||
	    !json_is_array(json_object_get(j, "resources"))) {
		snprintf(err, errlen, "%s: not a sluice-control store (version, trust_domain, resources)", cp);
		goto out;
	}
	if (td && strcmp(td, stored_td) != 0) {
		snprintf(err, errlen, "--trust-domain %s differs from %s's %s: identities depend on it",
			 td, cp, stored_td);
		goto out;
	}
	snprintf(s->td, sizeof(s->td), "%s", stored_td);
	s->version = (uint64_t)json_integer_value(json_object_get(j, "version"));
	if (sl_config_from_json(s->cfg, cp, json_object_get(j, "resources"), &d)) {
		snprintf(err, errlen, "%s: the stored config does not load (%zu errors; first: %s)",
			 cp, d.nerrors, d.n ? d.v[0].msg : "?");
		goto out;
	}
	rc = 0;
out:
	sl_diags_free(&d);
	json_decref(j);
	json_decref(ids);
	return rc;
}

int store_open(struct store *s, const char *dir, const char *td, const char *ca_cert,
	       const char *ca_key, char *err, size_t errlen)
{
	char tdir[PATH_MAX + 16];
	int e;

	memset(s, 0, sizeof(*s));
	if (snprintf(s->dir, sizeof(s->dir), "%s", dir) >= (int)sizeof(s->dir)) {
		snprintf(err, errlen, "--state-dir: path too long");
		return -1;
	}
	if (td && !td_ok(td)) {
		snprintf(err, errlen, "--trust-domain '%s': lower-case letters, digits, '.', '-', '_'", td);
		return -1;
	}
	path_of(s, "tokens/used", tdir, sizeof(tdir));
	e = sys_mkdir_p(s->dir, 0700);
	e = e ?: sys_mkdir_p(tdir, 0700);
	if (e) {
		snprintf(err, errlen, "creating %s: %s", tdir, strerror(-e));
		return -1;
	}
	if (load_state(s, td, err, errlen) || open_ca(s, ca_cert, ca_key, err, errlen) ||
	    admin_creds(s, err, errlen)) {
		store_close(s);
		return -1;
	}
	return 0;
}

void store_close(struct store *s)
{
	pki_ca_close(&s->ca);
	sl_config_free(s->cfg);
	sl_ids_free(s->ids);
	s->cfg = NULL;
	s->ids = NULL;
}

#ifndef SL_CONFIG_JSON_FLAGS
#define SL_CONFIG_JSON_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER)
#endif

static int save_json(const char *path, json_t *j, char *err, size_t errlen)
{
	char *text = j ? json_dumps(j, SL_CONFIG_JSON_FLAGS) : NULL;
	int e = text ? file_write_atomic(path, text, strlen(text), 0600) : -ENOMEM;

	free(text);
	if (e)
		snprintf(err, errlen, "writing %s: %s", path, strerror(-e));
	return e ? -1 : 0;
}

int store_save(struct store *s, const struct sl_config *cfg, const struct sl_ids *ids,
	       uint64_t version, char *err, size_t errlen)
{
	char cp[PATH_MAX + 16], ip[PATH_MAX + 16];
	json_t *jc, *ji, *jo;
	int rc;

	path_of(s, "config.json", cp, sizeof(cp));
	path_of(s, "ids.json", ip, sizeof(ip));
	/* most changes (a registration of a known service account) give no
	 * new identity: ids.json is rewritten, and synced, only when the
	 * table differs from the one stored (the one in s) */
	ji = sl_ids_to_json(ids);
	jo = ids == s->ids ? NULL : sl_ids_to_json(s->ids);
	rc = ji && jo && json_equal(ji, jo) ? 0 : save_json(ip, ji, err, errlen);
	json_decref(ji);
	json_decref(jo);
	if (rc)
		return rc;
	jc = json_pack("{s:I, s:s, s:o}", "version", (json_int_t)version, "trust_domain", s->td,
		       "resources", sl_config_to_json(cfg));
	rc = save_json(cp, jc, err, errlen);
	json_decref(jc);
	return rc;
}

struct sl_ids *store_ids_copy(const struct sl_ids *ids)
{
	struct sl_ids *c = sl_ids_new();
	json_t *j = sl_ids_to_json(ids);

	if (!c || !j || sl_ids_from_json(c, j)) {
		sl_ids_free(c);
		c = NULL;
	}
	json_decref(j);
	return c;
}

/* ---- join tokens --------------------------------------------------------- */

static int token_hash(const char *token, char *hex, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;

	if (!EVP_Q_digest(NULL, "SHA256", NULL, token, strlen(token), md, &mdlen) || len < mdlen * 2 + 1)
		return -1;
	for (size_t i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

int store_token_create(const char *dir, const char *node, long ttl, char *token,
		       size_t len, char *err, size_t errlen)
{
	char hash[65], path[PATH_MAX + 128], tdir[PATH_MAX + 16];
	unsigned char rnd[32];
	json_t *j;
	char *text;
	int e;

	if (!store_node_name_ok(node)) {
		snprintf(err, errlen, "--node '%s': 1..63 of a-z, 0-9, '.', '-', '_'", node);
		return -1;
	}
	if (ttl <= 0 || len < 2 * sizeof(rnd) + 1) {
		snprintf(err, errlen, "--ttl must be positive");
		return -1;
	}
	snprintf(tdir, sizeof(tdir), "%s/tokens/used", dir);
	e = sys_mkdir_p(tdir, 0700);
	if (e) {
		snprintf(err, errlen, "creating %s: %s", tdir, strerror(-e));
		return -1;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		pki_log_errors("random bytes for a join token", err, errlen);
		return -1;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	if (token_hash(token, hash, sizeof(hash))) {
		snprintf(err, errlen, "hashing the token failed");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/tokens/%s.json", dir, hash);
	j = json_pack("{s:s, s:I, s:I}", "node", node, "created", (json_int_t)time(NULL),
		      "expires", (json_int_t)(time(NULL) + ttl));
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	e = text ? file_write_atomic(path, text, strlen(text), 0600) : -ENOMEM;
	free(text);
	json_decref(j);
	if (e) {
		snprintf(err, errlen, "writing %s: %s", path, strerror(-e));
		return -1;
	}
	return 0;
}

int store_token_use(const char *dir, const char *node, const char *token, bool consume,
		    char *err, size_t errlen)
{
	char hash[65], path[PATH_MAX + 128], used[PATH_MAX + 128], when[32];
	json_error_t jerr;
	json_t *j = NULL;
	const char *for_node;
	time_t exp;
	struct tm tm;
	int rc = -1;

	if (!*token || strlen(token) > STORE_TOKEN_MAX || token_hash(token, hash, sizeof(hash))) {
		snprintf(err, errlen, "join token refused: malformed");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/tokens/%s.json", dir, hash);
	snprintf(used, sizeof(used), "%s/tokens/used/%s.json", dir, hash);
	j = json_load_file(path, 0, &jerr);
	if (!j) {
		snprintf(err, errlen, "join token refused: %s", access(used, F_OK) == 0 ?
			 "already used (tokens are single-use)" : "unknown token");
		goto out;
	}
	for_node = json_string_value(json_object_get(j, "node"));
	exp = (time_t)json_integer_value(json_object_get(j, "expires"));
	if (!for_node || strcmp(for_node, node) != 0) {
		snprintf(err, errlen, "join token refused: issued for node %s, not %s",
			 for_node ?: "?", node);
		goto out;
	}
	if (time(NULL) >= exp) {
		gmtime_r(&exp, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(err, errlen, "join token refused: expired at %s", when);
		goto out;
	}
	if (consume && rename(path, used)) {
		snprintf(err, errlen, "join token refused: %s", errno == ENOENT ?
			 "already used (tokens are single-use)" : strerror(errno));
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}
