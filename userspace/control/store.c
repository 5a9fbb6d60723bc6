// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "control/store.h"
#include "lib/core/file.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"

#define STATE_MAX (512u << 20)

/* The store opened with etcd, for store_token_use() callers that name it
 * by its state dir: its tokens are in etcd, not there. */

static int open_etcd(struct store *s, const struct store_opts *o, char *err, size_t errlen);
static int save_etcd(struct store *s, const struct sl_config *cfg, const struct sl_ids *ids,
		     uint64_t version, char *err, size_t errlen);

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

/* config.json's content j (from `where`) into cfg and *version; s->td
 * from it (td, if given, must be the same). */
static int config_from_json(struct store *s, struct sl_config *cfg, uint64_t *version,
			    json_t *j, const char *where, const char *td, char *err, size_t errlen)
{
	const char *stored_td = json_string_value(json_object_get(j, "trust_domain"));
	struct sl_diags d = {};
	int rc = -1;

	if (!stored_td || !json_is_integer(json_object_get(j, "version")) ||
	    !json_is_array(json_object_get(j, "resources"))) {
		snprintf(err, errlen, "%s: not a sluice-control store (version, trust_domain, resources)",
			 where);
		return -1;
	}
	if (td && strcmp(td, stored_td) != 0) {
		snprintf(err, errlen, "--trust-domain %s differs from %s's %s: identities depend on it",
			 td, where, stored_td);
		return -1;
	}
	snprintf(s->td, sizeof(s->td), "%s", stored_td);
	*version = (uint64_t)json_integer_value(json_object_get(j, "version"));
	if (sl_config_from_json(cfg, where, json_object_get(j, "resources"), &d)) {
		snprintf(err, errlen, "%s: the stored config does not load (%zu errors; first: %s)",
			 where, d.nerrors, d.n ? d.v[0].msg : "?");
		goto out;
	}
	rc = 0;
out:
	sl_diags_free(&d);
	return rc;
}

static int load_state(struct store *s, const char *td, char *err, size_t errlen)
{
	char cp[PATH_MAX + 16], ip[PATH_MAX + 16];
	json_error_t jerr;
	json_t *j = NULL, *ids = NULL;
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
	rc = config_from_json(s, s->cfg, &s->version, j, cp, td, err, errlen);
out:
	json_decref(j);
	json_decref(ids);
	return rc;
}

int store_open(struct store *s, const char *dir, const char *td, const char *ca_cert,
	       const char *ca_key, char *err, size_t errlen)
{
	struct store_opts o = { .dir = dir, .td = td, .ca_cert = ca_cert, .ca_key = ca_key };

	return store_open_opts(s, &o, err, errlen);
}

int store_open_opts(struct store *s, const struct store_opts *o, char *err, size_t errlen)
{
	const char *td = o->td;
	char tdir[PATH_MAX + 16];
	int e;

	memset(s, 0, sizeof(*s));
	if (snprintf(s->dir, sizeof(s->dir), "%s", o->dir) >= (int)sizeof(s->dir)) {
		snprintf(err, errlen, "--state-dir: path too long");
		return -1;
	}
	if (td && !td_ok(td)) {
		snprintf(err, errlen, "--trust-domain '%s': lower-case letters, digits, '.', '-', '_'", td);
		return -1;
	}
	path_of(s, "tokens/used", tdir, sizeof(tdir));
	e = sys_mkdir_p(s->dir, 0700);
	e = e ?: o->etcd_url ? 0 : sys_mkdir_p(tdir, 0700);
	if (e) {
		snprintf(err, errlen, "creating %s: %s", o->etcd_url ? s->dir : tdir, strerror(-e));
		return -1;
	}
	if (o->etcd_url) {
		if (open_etcd(s, o, err, errlen)) {
			store_close(s);
			return -1;
		}
		return 0;
	}
	if (load_state(s, td, err, errlen) || open_ca(s, o->ca_cert, o->ca_key, err, errlen) ||
	    admin_creds(s, err, errlen)) {
		store_close(s);
		return -1;
	}
	return 0;
}

void store_close(struct store *s)
{
	etcd_watch_stop(s->watch);
	etcd_close(s->etcd);
	s->watch = NULL;
	s->etcd = NULL;
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

	if (s->etcd)
		return save_etcd(s, cfg, ids, version, err, errlen);
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
		return -EIO;
	jc = json_pack("{s:I, s:s, s:o}", "version", (json_int_t)version, "trust_domain", s->td,
		       "resources", sl_config_to_json(cfg));
	rc = save_json(cp, jc, err, errlen);
	json_decref(jc);
	return rc ? -EIO : 0;
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

/* A new token for node: the token, its hash and its record's text (malloc'd). */
static int token_mint(const char *node, long ttl, char *token, size_t len, char *hash,
		      char **text, char *err, size_t errlen)
{
	unsigned char rnd[32];
	json_t *j;

	*text = NULL;
	if (!store_node_name_ok(node)) {
		snprintf(err, errlen, "--node '%s': 1..63 of a-z, 0-9, '.', '-', '_'", node);
		return -1;
	}
	if (ttl <= 0 || len < 2 * sizeof(rnd) + 1) {
		snprintf(err, errlen, "--ttl must be positive");
		return -1;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		pki_log_errors("random bytes for a join token", err, errlen);
		return -1;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	if (token_hash(token, hash, 65)) {
		snprintf(err, errlen, "hashing the token failed");
		return -1;
	}
	j = json_pack("{s:s, s:I, s:I}", "node", node, "created", (json_int_t)time(NULL),
		      "expires", (json_int_t)(time(NULL) + ttl));
	*text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!*text) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Is the token's record j (NULL: none) good for node now? */
static int token_record_ok(json_t *j, const char *node, char *err, size_t errlen)
{
	const char *for_node = json_string_value(json_object_get(j, "node"));
	time_t exp = (time_t)json_integer_value(json_object_get(j, "expires"));
	char when[32];
	struct tm tm;

	if (!for_node || strcmp(for_node, node) != 0) {
		snprintf(err, errlen, "join token refused: issued for node %s, not %s",
			 for_node ?: "?", node);
		return -1;
	}
	if (time(NULL) >= exp) {
		gmtime_r(&exp, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(err, errlen, "join token refused: expired at %s", when);
		return -1;
	}
	return 0;
}

int store_token_create(const char *dir, const char *node, long ttl, char *token,
		       size_t len, char *err, size_t errlen)
{
	char hash[65], path[PATH_MAX + 128], tdir[PATH_MAX + 16], *text;
	int e;

	if (token_mint(node, ttl, token, len, hash, &text, err, errlen))
		return -1;
	snprintf(tdir, sizeof(tdir), "%s/tokens/used", dir);
	e = sys_mkdir_p(tdir, 0700);
	if (e) {
		snprintf(err, errlen, "creating %s: %s", tdir, strerror(-e));
		free(text);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/tokens/%s.json", dir, hash);
	e = file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	if (e) {
		snprintf(err, errlen, "writing %s: %s", path, strerror(-e));
		return -1;
	}
	return 0;
}

int store_token_use(const char *dir, const char *node, const char *token, bool consume,
		    char *err, size_t errlen)
{
	char hash[65], path[PATH_MAX + 128], used[PATH_MAX + 128];
	json_error_t jerr;
	json_t *j = NULL;
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
	if (token_record_ok(j, node, err, errlen))
		goto out;
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

/* ---- etcd ------------------------------------------------------------------ */

/* PREFIX + name */
static void key_of(const char *prefix, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", prefix, name);
}

static int prefix_set(char *buf, size_t len, const char *prefix, char *err, size_t errlen)
{
	size_t n;

	prefix = prefix ?: STORE_PREFIX;
	n = strlen(prefix);
	if (!n || prefix[0] != '/' || n + 2 > len || strspn(prefix, "/") == n + 1) {
		snprintf(err, errlen, "--store-prefix '%s': a key prefix starting with '/' "
			 "(at most %zu characters)", prefix, len - 2);
		return -1;
	}
	snprintf(buf, len, "%s%s", prefix, prefix[n - 1] == '/' ? "" : "/");
	return 0;
}

static int open_etcd_client(struct etcd **e, const struct store_opts *o, char *prefix,
			    size_t plen, char *err, size_t errlen)
{
	char e2[512];

	if (prefix_set(prefix, plen, o->prefix, err, errlen))
		return -1;
	if (etcd_open(e, o->etcd_url, &o->etcd, e2, sizeof(e2))) {
		snprintf(err, errlen, "--store: %s", e2);
		return -1;
	}
	return 0;
}

/* The store key: STORE_KEY_BYTES raw, or as hex (a newline after it allowed). */
static int store_key_load(const char *path, unsigned char *key, char *err, size_t errlen)
{
	char buf[2 * STORE_KEY_BYTES + 4];
	struct stat st;
	ssize_t n;
	int fd;

	if (!path) {
		snprintf(err, errlen, "--store etcd needs --store-key FILE: the CA key is kept in etcd "
			 "encrypted with it (sluice-control store-key create FILE makes one)");
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		snprintf(err, errlen, "--store-key %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (st.st_mode & 077)
		log_warn("--store-key %s is readable by others (mode %03o); it should be 0600",
			 path, st.st_mode & 0777);
	if (n == STORE_KEY_BYTES) {
		memcpy(key, buf, STORE_KEY_BYTES);
		return 0;
	}
	if (n == 2 * STORE_KEY_BYTES || (n == 2 * STORE_KEY_BYTES + 1 && buf[n - 1] == '\n')) {
		for (int i = 0; i < STORE_KEY_BYTES; i++) {
			unsigned int b;

			if (!isxdigit((unsigned char)buf[2 * i]) ||
			    !isxdigit((unsigned char)buf[2 * i + 1]) ||
			    sscanf(buf + 2 * i, "%2x", &b) != 1)
				goto bad;
			key[i] = (unsigned char)b;
		}
		OPENSSL_cleanse(buf, sizeof(buf));
		return 0;
	}
bad:
	OPENSSL_cleanse(buf, sizeof(buf));
	snprintf(err, errlen, "--store-key %s: not %d bytes, raw or as hex", path, STORE_KEY_BYTES);
	return -1;
}

int store_key_create(const char *path, char *err, size_t errlen)
{
	unsigned char key[STORE_KEY_BYTES];
	char hex[2 * STORE_KEY_BYTES + 2];
	int fd, rc = -1;

	if (RAND_bytes(key, sizeof(key)) != 1) {
		pki_log_errors("random bytes for the store key", err, errlen);
		return -1;
	}
	for (int i = 0; i < STORE_KEY_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	hex[2 * STORE_KEY_BYTES] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
			 errno == EEXIST ? " (a store key is never overwritten)" : "");
		goto out;
	}
	if (write(fd, hex, 2 * STORE_KEY_BYTES + 1) != 2 * STORE_KEY_BYTES + 1 || fsync(fd)) {
		snprintf(err, errlen, "writing %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		goto out;
	}
	close(fd);
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(hex, sizeof(hex));
	return rc;
}

#define SEAL_AAD    "sluice CA key v1"
#define SEAL_NONCE  12
#define SEAL_TAG    16

/* AES-256-GCM of text: "v1:" base64(nonce ciphertext tag), malloc'd. */
static char *seal(const unsigned char *key, const char *text, size_t len)
{
	size_t blen = SEAL_NONCE + len + SEAL_TAG;
	unsigned char *b = malloc(blen);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	char *b64 = NULL, *out = NULL;
	int n, f;

	if (!b || !c || RAND_bytes(b, SEAL_NONCE) != 1 ||
	    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, b) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)SEAL_AAD, strlen(SEAL_AAD)) != 1 ||
	    EVP_EncryptUpdate(c, b + SEAL_NONCE, &n, (const unsigned char *)text, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(c, b + SEAL_NONCE + n, &f) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, b + SEAL_NONCE + len) != 1)
		goto out;
	b64 = etcd_b64_encode(b, blen);
	if (b64 && asprintf(&out, "v1:%s", b64) < 0)
		out = NULL;
out:
	if (!out)
		pki_log_errors("encrypting the CA key", NULL, 0);
	EVP_CIPHER_CTX_free(c);
	free(b);
	free(b64);
	return out;
}

/* The inverse: the text, malloc'd and NUL-terminated; NULL with err. */
static char *unseal(const unsigned char *key, const char *sealed, size_t slen, char *err,
		    size_t errlen)
{
	EVP_CIPHER_CTX *c = NULL;
	char *b = NULL, *out = NULL;
	size_t blen, len;
	int n, f;

	if (slen < 3 || memcmp(sealed, "v1:", 3) ||
	    etcd_b64_decode(sealed + 3, slen - 3, &b, &blen) || blen < SEAL_NONCE + SEAL_TAG) {
		snprintf(err, errlen, "not an encrypted key (v1:BASE64)");
		goto out;
	}
	len = blen - SEAL_NONCE - SEAL_TAG;
	out = malloc(len + 1);
	c = EVP_CIPHER_CTX_new();
	if (!out || !c ||
	    EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, (unsigned char *)b) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, (const unsigned char *)SEAL_AAD, strlen(SEAL_AAD)) != 1 ||
	    EVP_DecryptUpdate(c, (unsigned char *)out, &n, (unsigned char *)b + SEAL_NONCE,
			      (int)len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG,
				b + SEAL_NONCE + len) != 1 ||
	    EVP_DecryptFinal_ex(c, (unsigned char *)out + n, &f) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "it does not decrypt with this --store-key (wrong key: every "
			 "replica needs the one the CA was stored with)");
		if (out)
			OPENSSL_cleanse(out, len);
		free(out);
		out = NULL;
		goto out;
	}
	out[len] = '\0';
out:
	EVP_CIPHER_CTX_free(c);
	free(b);
	return out;
}

/* The CA in PREFIX/ca/: stored by the first replica (only if absent),
 * loaded by the others; also fixes the trust domain. */
static int ca_etcd(struct store *s, const struct store_opts *o, const unsigned char *key,
		   char *err, size_t errlen)
{
	char kc[192], kk[192], kt[192], cn[300], e2[512];
	struct pki_ca cand = {};
	struct etcd_kv *kvs = NULL;
	char *cert_pem = NULL, *key_pem = NULL, *sealed = NULL;
	const char *vc = NULL, *vk = NULL, *vt = NULL;
	size_t n = 0;
	int rc = -1;

	key_of(s->prefix, "ca/cert", kc, sizeof(kc));
	key_of(s->prefix, "ca/key", kk, sizeof(kk));
	key_of(s->prefix, "ca/trust_domain", kt, sizeof(kt));
	if ((o->ca_cert != NULL) != (o->ca_key != NULL)) {
		snprintf(err, errlen, "--ca-cert and --ca-key go together");
		return -1;
	}
	for (int round = 0; round < 2; round++) {
		char ca_dir[192];
		bool won;

		key_of(s->prefix, "ca/", ca_dir, sizeof(ca_dir));
		etcd_kvs_free(kvs, n);
		kvs = NULL;
		if (etcd_range(s->etcd, ca_dir, &kvs, &n, NULL, e2, sizeof(e2))) {
			snprintf(err, errlen, "reading the CA from etcd: %s", e2);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			if (!strcmp(kvs[i].key, kc))
				vc = kvs[i].value;
			else if (!strcmp(kvs[i].key, kk))
				vk = kvs[i].value;
			else if (!strcmp(kvs[i].key, kt))
				vt = kvs[i].value;
		}
		if (vc || round)
			break;
		/* none yet: ours, if no other replica's gets there first */
		snprintf(cn, sizeof(cn), "sluice root CA %s", o->td ?: "cluster.local");
		if (o->ca_cert ? pki_ca_open(&cand, o->ca_cert, o->ca_key, cn, false, err, errlen) :
				 pki_ca_new(&cand, cn, err, errlen))
			goto out;
		cert_pem = pki_cert_pem(cand.cert);
		key_pem = pki_key_pem(cand.key);
		sealed = key_pem ? seal(key, key_pem, strlen(key_pem)) : NULL;
		if (!cert_pem || !sealed) {
			snprintf(err, errlen, "encoding the CA failed");
			goto out;
		}
		const char *tdv = o->td ?: "cluster.local";
		struct etcd_cmp cmp = { kc, 0 };
		struct etcd_op ops[] = {
			{ ETCD_OP_PUT, kc, cert_pem, strlen(cert_pem) },
			{ ETCD_OP_PUT, kk, sealed, strlen(sealed) },
			{ ETCD_OP_PUT, kt, tdv, strlen(tdv) },
		};
		if (etcd_txn(s->etcd, &cmp, 1, ops, 3, &won, NULL, e2, sizeof(e2))) {
			snprintf(err, errlen, "storing the CA in etcd: %s", e2);
			goto out;
		}
		if (won) {
			log_info("%s the CA (CN %s) in etcd %s, its key encrypted with the store key",
				 o->ca_cert ? "stored the operator's" : "created", cn, kc);
			s->ca = cand;
			cand = (struct pki_ca){};
			snprintf(s->td, sizeof(s->td), "%s", tdv);
			rc = 0;
			goto out;
		}
		pki_ca_close(&cand);
		log_info("another replica stored the CA first: using it");
	}
	if (!vc || !vk || !vt) {
		snprintf(err, errlen, "etcd %sca/: cert, key and trust_domain go together; %s is missing",
			 s->prefix, !vc ? "cert" : !vk ? "key" : "trust_domain");
		goto out;
	}
	if (o->td && strcmp(o->td, vt) != 0) {
		snprintf(err, errlen, "--trust-domain %s differs from the stored %s (%s): identities "
			 "depend on it", o->td, vt, kt);
		goto out;
	}
	if (!td_ok(vt)) {
		snprintf(err, errlen, "%s: '%s' is not a trust domain", kt, vt);
		goto out;
	}
	snprintf(s->td, sizeof(s->td), "%s", vt);
	free(key_pem);
	key_pem = unseal(key, vk, strlen(vk), e2, sizeof(e2));
	if (!key_pem) {
		snprintf(err, errlen, "the CA key in etcd (%s): %s", kk, e2);
		goto out;
	}
	s->ca.cert = pki_cert_from_pem(vc, strlen(vc));
	s->ca.key = pki_key_from_pem(key_pem, strlen(key_pem));
	if (!s->ca.cert || !s->ca.key || X509_check_ca(s->ca.cert) < 1 ||
	    !pki_cert_matches_key(s->ca.cert, s->ca.key)) {
		snprintf(err, errlen, "etcd %s and %s are not a CA and its key", kc, kk);
		pki_ca_close(&s->ca);
		goto out;
	}
	if (o->ca_cert) {
		if (pki_ca_open(&cand, o->ca_cert, o->ca_key, "?", false, err, errlen)) {
			pki_ca_close(&s->ca);
			goto out;
		}
		if (X509_cmp(cand.cert, s->ca.cert) != 0) {
			snprintf(err, errlen, "etcd %s holds another CA than %s: every certificate issued "
				 "so far depends on it", kc, o->ca_cert);
			pki_ca_close(&s->ca);
			goto out;
		}
	}
	rc = 0;
out:
	if (key_pem)
		OPENSSL_cleanse(key_pem, strlen(key_pem));
	free(key_pem);
	free(cert_pem);
	free(sealed);
	pki_ca_close(&cand);
	etcd_kvs_free(kvs, n);
	return rc;
}

/* PREFIX/config then PREFIX/ids (in that order: ids only grow, and are
 * written with the config, so the ids read after a config know all of
 * its identities) into cfg, ids, *version, *rev (its mod_revision; 0:
 * absent); *hdr: the store's revision when the config was read. */
static int read_etcd(struct store *s, struct sl_config *cfg, struct sl_ids *ids,
		     uint64_t *version, int64_t *rev, int64_t *hdr, char *err, size_t errlen)
{
	char kc[192], ki[192], e2[512], *v = NULL;
	json_error_t jerr;
	json_t *j = NULL;
	int64_t mr;
	size_t vl;
	int rc;

	key_of(s->prefix, "config", kc, sizeof(kc));
	key_of(s->prefix, "ids", ki, sizeof(ki));
	*version = 0;
	rc = etcd_get(s->etcd, kc, &v, &vl, rev, hdr, e2, sizeof(e2));
	if (rc) {
		snprintf(err, errlen, "reading %s from etcd: %s", kc, e2);
		return rc;
	}
	if (v) {
		j = json_loadb(v, vl, JSON_REJECT_DUPLICATES, &jerr);
		free(v);
		v = NULL;
		if (!j) {
			snprintf(err, errlen, "etcd %s:%d:%d: %s", kc, jerr.line, jerr.column, jerr.text);
			return -EINVAL;
		}
		rc = config_from_json(s, cfg, version, j, kc, s->td, err, errlen) ? -EINVAL : 0;
		json_decref(j);
		if (rc)
			return rc;
	}
	rc = etcd_get(s->etcd, ki, &v, &vl, &mr, NULL, e2, sizeof(e2));
	if (rc) {
		snprintf(err, errlen, "reading %s from etcd: %s", ki, e2);
		return rc;
	}
	if (v) {
		j = json_loadb(v, vl, JSON_REJECT_DUPLICATES, &jerr);
		free(v);
		if (!j || sl_ids_from_json(ids, j)) {
			snprintf(err, errlen, "etcd %s: %s", ki, j ? "not an identity table" : jerr.text);
			json_decref(j);
			return -EINVAL;
		}
		json_decref(j);
	}
	return 0;
}

static int open_etcd(struct store *s, const struct store_opts *o, char *err, size_t errlen)
{
	unsigned char key[STORE_KEY_BYTES];
	char kc[192], cp[PATH_MAX + 16], e2[512];
	int64_t hdr = 0;
	int rc = -1;

	if (store_key_load(o->store_key, key, err, errlen))
		return -1;
	if (open_etcd_client(&s->etcd, o, s->prefix, sizeof(s->prefix), err, errlen) ||
	    ca_etcd(s, o, key, err, errlen))
		goto out;
	s->cfg = sl_config_new();
	s->ids = sl_ids_new();
	if (!s->cfg || !s->ids) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (read_etcd(s, s->cfg, s->ids, &s->version, &s->cfg_rev, &hdr, err, errlen))
		goto out;
	path_of(s, "config.json", cp, sizeof(cp));
	if (!s->cfg_rev && access(cp, F_OK) == 0)
		log_warn("%s holds a config, etcd (%sconfig) none: the state dir's config is not "
			 "imported; apply it again", cp, s->prefix);
	/* the CA certificate beside the admin credentials, for sluicectl */
	path_of(s, "ca.crt", cp, sizeof(cp));
	if (pki_cert_save(cp, s->ca.cert)) {
		snprintf(err, errlen, "writing %s failed", cp);
		goto out;
	}
	if (admin_creds(s, err, errlen))
		goto out;
	key_of(s->prefix, "config", kc, sizeof(kc));
	if (etcd_watch_start(s->etcd, kc, hdr + 1, &s->watch, e2, sizeof(e2))) {
		snprintf(err, errlen, "%s", e2);
		goto out;
	}
	log_info("store: etcd %s, prefix %s: config version %llu (revision %lld)",
		 etcd_endpoint(s->etcd), s->prefix, (unsigned long long)s->version,
		 (long long)s->cfg_rev);
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

static int save_etcd(struct store *s, const struct sl_config *cfg, const struct sl_ids *ids,
		     uint64_t version, char *err, size_t errlen)
{
	char kc[192], ki[192], e2[512], *tc = NULL, *ti = NULL, *v = NULL;
	json_t *jc, *ji, *jo;
	struct etcd_op ops[2];
	size_t nops = 0, vl;
	int64_t rev, mr;
	bool won, want_ids;
	int rc;

	key_of(s->prefix, "config", kc, sizeof(kc));
	key_of(s->prefix, "ids", ki, sizeof(ki));
	/* ids only when the table differs from the one stored (in s) */
	ji = sl_ids_to_json(ids);
	jo = ids == s->ids ? NULL : sl_ids_to_json(s->ids);
	want_ids = ji && (!jo || !json_equal(ji, jo));
	if (want_ids) {
		ti = json_dumps(ji, JSON_COMPACT);
		if (ti)
			ops[nops++] = (struct etcd_op){ ETCD_OP_PUT, ki, ti, strlen(ti) };
	}
	jc = json_pack("{s:I, s:s, s:o}", "version", (json_int_t)version, "trust_domain", s->td,
		       "resources", sl_config_to_json(cfg));
	tc = jc ? json_dumps(jc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(jc);
	if (!tc || !ji || (want_ids && !ti)) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	ops[nops++] = (struct etcd_op){ ETCD_OP_PUT, kc, tc, strlen(tc) };
	rc = etcd_txn(s->etcd, &(struct etcd_cmp){ kc, s->cfg_rev }, 1, ops, nops, &won, &rev,
		      e2, sizeof(e2));
	if (rc) {
		snprintf(err, errlen, "writing %s to etcd: %s", kc, e2);
		goto out;
	}
	if (!won) {
		json_t *j = NULL;

		if (etcd_get(s->etcd, kc, &v, &vl, &mr, NULL, e2, sizeof(e2)) == 0 && v)
			j = json_loadb(v, vl, 0, NULL);
		snprintf(err, errlen, "config changed by another replica (version %lld); retry",
			 (long long)json_integer_value(json_object_get(j, "version")));
		json_decref(j);
		rc = -ESTALE;
		goto out;
	}
	s->cfg_rev = rev;
out:
	json_decref(ji);
	json_decref(jo);
	free(v);
	free(ti);
	free(tc);
	return rc;
}

int store_reload(struct store *s, bool *changed, char *err, size_t errlen)
{
	struct sl_config *cfg = NULL;
	struct sl_ids *ids = NULL;
	uint64_t version;
	int64_t rev, hdr;
	int rc;

	*changed = false;
	if (!s->etcd)
		return 0;
	if (s->watch)
		etcd_watch_take(s->watch, NULL);
	cfg = sl_config_new();
	ids = sl_ids_new();
	if (!cfg || !ids) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	rc = read_etcd(s, cfg, ids, &version, &rev, &hdr, err, errlen);
	if (rc || rev == s->cfg_rev)
		goto out;
	if (version < s->version) {
		snprintf(err, errlen, "etcd %sconfig went back from version %llu to %llu: refused",
			 s->prefix, (unsigned long long)s->version, (unsigned long long)version);
		rc = -ERANGE;
		goto out;
	}
	sl_config_free(s->cfg);
	sl_ids_free(s->ids);
	s->cfg = cfg;
	s->ids = ids;
	s->version = version;
	s->cfg_rev = rev;
	cfg = NULL;
	ids = NULL;
	*changed = true;
out:
	sl_config_free(cfg);
	sl_ids_free(ids);
	return rc;
}

int store_watch_fd(const struct store *s)
{
	return s->watch ? etcd_watch_fd(s->watch) : -1;
}

/* ---- node addresses -------------------------------------------------------- */

int store_nodes_load(struct store *s, json_t **addrs, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], pre[192], e2[512];
	struct etcd_kv *kvs;
	json_error_t jerr;
	size_t n, pl;
	json_t *j;

	*addrs = NULL;
	if (!s->etcd) {
		path_of(s, "nodes.json", path, sizeof(path));
		if (access(path, F_OK)) {
			*addrs = json_object();
			return *addrs ? 0 : -1;
		}
		j = json_load_file(path, 0, &jerr);
		if (!json_is_object(j)) {
			snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column,
				 j ? "not an object" : jerr.text);
			json_decref(j);
			return -1;
		}
		*addrs = j;
		return 0;
	}
	key_of(s->prefix, "nodes/", pre, sizeof(pre));
	pl = strlen(pre);
	if (etcd_range(s->etcd, pre, &kvs, &n, NULL, e2, sizeof(e2))) {
		snprintf(err, errlen, "reading %s from etcd: %s", pre, e2);
		return -1;
	}
	j = json_object();
	for (size_t i = 0; j && i < n; i++)
		if (store_node_name_ok(kvs[i].key + pl) &&
		    json_object_set_new(j, kvs[i].key + pl, json_string(kvs[i].value))) {
			json_decref(j);
			j = NULL;
		}
	etcd_kvs_free(kvs, n);
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*addrs = j;
	return 0;
}

int store_nodes_save(struct store *s, const json_t *addrs, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], key[256], e2[512], *text;
	json_t *have = NULL, *v;
	const char *name;
	int e, rc = 0;

	if (!s->etcd) {
		text = json_dumps(addrs, JSON_SORT_KEYS | JSON_INDENT(2));
		path_of(s, "nodes.json", path, sizeof(path));
		e = text ? file_write_atomic(path, text, strlen(text), 0644) : -ENOMEM;
		free(text);
		if (e)
			snprintf(err, errlen, "writing %s: %s", path, strerror(-e));
		return e ? -1 : 0;
	}
	if (store_nodes_load(s, &have, err, errlen))
		return -1;
	json_object_foreach((json_t *)addrs, name, v) {
		const char *a = json_string_value(v), *was;

		if (!a || !store_node_name_ok(name))
			continue;
		was = json_string_value(json_object_get(have, name));
		if (was && strcmp(was, a) == 0)
			continue;
		key_of(s->prefix, "nodes/", key, sizeof(key));
		snprintf(key + strlen(key), sizeof(key) - strlen(key), "%s", name);
		if (etcd_put(s->etcd, key, a, strlen(a), NULL, e2, sizeof(e2))) {
			snprintf(err, errlen, "writing %s to etcd: %s", key, e2);
			rc = -1;
			break;
		}
	}
	json_decref(have);
	return rc;
}

/* ---- join tokens in either backend ------------------------------------------ */

int store_token_new(const struct store_opts *o, const char *node, long ttl, char *token,
		    size_t len, char *err, size_t errlen)
{
	char hash[65], prefix[128], key[256], e2[512], *text;
	struct etcd *e = NULL;
	int rc = -1;

	if (!o->etcd_url)
		return store_token_create(o->dir, node, ttl, token, len, err, errlen);
	if (open_etcd_client(&e, o, prefix, sizeof(prefix), err, errlen))
		return -1;
	if (token_mint(node, ttl, token, len, hash, &text, err, errlen))
		goto out;
	snprintf(key, sizeof(key), "%stokens/%s", prefix, hash);
	if (etcd_put(e, key, text, strlen(text), NULL, e2, sizeof(e2)))
		snprintf(err, errlen, "writing %s to etcd: %s", key, e2);
	else
		rc = 0;
	free(text);
out:
	etcd_close(e);
	return rc;
}

int store_token_check(struct store *s, const char *node, const char *token, bool consume,
		      char *err, size_t errlen)
{
	char hash[65], key[256], used[256], e2[512], *v = NULL;
	json_t *j = NULL;
	int64_t mr, umr;
	size_t vl;
	bool won;
	int rc = -1;

	if (!s->etcd)
		return store_token_use(s->dir, node, token, consume, err, errlen);
	if (!*token || strlen(token) > STORE_TOKEN_MAX || token_hash(token, hash, sizeof(hash))) {
		snprintf(err, errlen, "join token refused: malformed");
		return -1;
	}
	snprintf(key, sizeof(key), "%stokens/%s", s->prefix, hash);
	snprintf(used, sizeof(used), "%stokens/used/%s", s->prefix, hash);
	if (etcd_get(s->etcd, key, &v, &vl, &mr, NULL, e2, sizeof(e2))) {
		snprintf(err, errlen, "join token not checked: %s", e2);
		return -1;
	}
	if (!v) {
		char *u = NULL;

		if (etcd_get(s->etcd, used, &u, &vl, &umr, NULL, e2, sizeof(e2))) {
			snprintf(err, errlen, "join token not checked: %s", e2);
			return -1;
		}
		snprintf(err, errlen, "join token refused: %s", u ?
			 "already used (tokens are single-use)" : "unknown token");
		free(u);
		return -1;
	}
	j = json_loadb(v, vl, 0, NULL);
	if (token_record_ok(j, node, err, errlen))
		goto out;
	if (consume) {
		struct etcd_op ops[] = {
			{ ETCD_OP_DELETE, key, NULL, 0 },
			{ ETCD_OP_PUT, used, v, vl },
		};

		if (etcd_txn(s->etcd, &(struct etcd_cmp){ key, mr }, 1, ops, 2, &won, NULL,
			     e2, sizeof(e2))) {
			snprintf(err, errlen, "join token not consumed: %s", e2);
			goto out;
		}
		if (!won) {
			snprintf(err, errlen, "join token refused: already used (tokens are single-use)");
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(j);
	free(v);
	return rc;
}
