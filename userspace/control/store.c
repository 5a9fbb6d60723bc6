// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * store.c - the store (store.h has the contract): open, save and close
 * over either backend, the state dir's CA, config and ids, and the node
 * addresses and join tokens in the state dir or in etcd. The rest of the
 * etcd backend is in store_etcd.c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "control/store.h"
#include "control/store_common.h"
#include "control/store_etcd.h"
#include "control/store_journal.h"
#include "lib/core/file.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"
#include "lib/config/config.h"

#define STATE_MAX (512u << 20)

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

/* The CA: the operator's (copied into DIR once) or DIR's own. */
static int open_ca(struct store *s, const char *ca_cert, const char *ca_key, char *err, size_t errlen)
{
	char cp[PATH_MAX + 16], kp[PATH_MAX + 16], cn[300];
	struct pki_ca mine = {};
	struct stat st;
	int rc;

	store_path_of(s, "ca.crt", cp, sizeof(cp));
	store_path_of(s, "ca.key", kp, sizeof(kp));
	snprintf(cn, sizeof(cn), "sluice root CA %s", s->td);
	if (!ca_cert && !ca_key)
		return pki_ca_open(&s->ca, cp, kp, cn, true, err, errlen);
	if (!ca_cert || !ca_key) {
		snprintf(err, errlen, "--ca-cert and --ca-key go together");
		return -EINVAL;
	}
	rc = pki_ca_open(&s->ca, ca_cert, ca_key, cn, false, err, errlen);
	if (rc)
		return rc;
	if (stat(cp, &st) == 0) {
		rc = pki_ca_open(&mine, cp, kp, cn, false, err, errlen);
		if (rc)
			goto fail;
		if (X509_cmp(mine.cert, s->ca.cert) != 0) {
			snprintf(err, errlen, "%s holds another CA than %s: every certificate issued "
				 "so far depends on it; use a new --state-dir to change CAs", cp, ca_cert);
			rc = -EINVAL;
			goto fail;
		}
		pki_ca_close(&mine);
		return 0;
	}
	rc = pki_key_save(kp, s->ca.key) ?: pki_cert_save(cp, s->ca.cert);
	if (rc) {
		snprintf(err, errlen, "copying the CA into %s failed", s->dir);
		goto fail;
	}
	log_info("using the operator's CA %s (copied to %s)", ca_cert, cp);
	return 0;
fail:
	pki_ca_close(&mine);
	pki_ca_close(&s->ca);
	return rc;
}

static int load_state(struct store *s, const char *td, char *err, size_t errlen)
{
	char cp[PATH_MAX + 16], ip[PATH_MAX + 16];
	json_error_t jerr;
	json_t *j = NULL, *ids = NULL;
	struct stat st;
	int rc = -ENOMEM;

	store_path_of(s, "config.json", cp, sizeof(cp));
	store_path_of(s, "ids.json", ip, sizeof(ip));
	s->cfg = sl_config_new();
	s->ids = sl_ids_new();
	if (!s->cfg || !s->ids) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = -EINVAL;
	if (access(ip, F_OK) == 0) {
		ids = json_load_file(ip, JSON_REJECT_DUPLICATES, &jerr);
		if (!ids || sl_ids_from_json(s->ids, ids)) {
			snprintf(err, errlen, "%s:%d:%d: %s", ip, jerr.line, jerr.column,
				 ids ? "not an identity table" : jerr.text);
			goto out;
		}
	}
	if (stat(cp, &st) != 0) {
		char lp[PATH_MAX + 16];

		/* a log holds changes to a base: without one it means nothing */
		store_path_of(s, "config.log", lp, sizeof(lp));
		if (access(lp, F_OK) == 0) {
			log_warn("%s without %s: removed", lp, cp);
			file_remove_sync(lp);
		}
		snprintf(s->td, sizeof(s->td), "%s", td ?: "cluster.local");
		rc = journal_load(s, 0, err, errlen);
		goto out;
	}
	j = json_load_file(cp, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		snprintf(err, errlen, "%s:%d:%d: %s", cp, jerr.line, jerr.column, jerr.text);
		goto out;
	}
	rc = store_config_from_json(s, s->cfg, &s->version, j, cp, td, err, errlen);
	rc = rc ?: journal_load(s, (size_t)st.st_size, err, errlen);
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
		return -ENAMETOOLONG;
	}
	if (td && !store_td_ok(td)) {
		snprintf(err, errlen, "--trust-domain '%s': lower-case letters, digits, '.', '-', '_'", td);
		return -EINVAL;
	}
	store_path_of(s, "tokens/used", tdir, sizeof(tdir));
	e = sys_mkdir_p(s->dir, 0700);
	e = e ?: o->etcd_url ? 0 : sys_mkdir_p(tdir, 0700);
	if (e) {
		snprintf(err, errlen, "creating %s: %s", o->etcd_url ? s->dir : tdir, strerror(-e));
		return e;
	}
	if (o->etcd_url) {
		e = store_etcd_open(s, o, err, errlen);
		if (e)
			store_close(s);
		return e;
	}
	e = load_state(s, td, err, errlen);
	e = e ?: open_ca(s, o->ca_cert, o->ca_key, err, errlen);
	e = e ?: store_admin_creds(s, err, errlen);
	if (e)
		store_close(s);
	return e;
}

void store_close(struct store *s)
{
	etcd_watch_stop(s->watch);
	etcd_close(s->etcd);
	s->watch = NULL;
	s->etcd = NULL;
	pki_ca_close(&s->ca);
	sl_config_free(s->cfg);
	sl_config_free(s->saved);
	sl_ids_free(s->ids);
	s->cfg = NULL;
	s->saved = NULL;
	s->ids = NULL;
}

static int save_json(const char *path, json_t *j, char *err, size_t errlen)
{
	char *text = j ? json_dumps(j, SL_CONFIG_JSON_FLAGS) : NULL;
	int e = text ? file_write_atomic(path, text, strlen(text), 0600) : -ENOMEM;

	free(text);
	if (e)
		snprintf(err, errlen, "writing %s: %s", path, strerror(-e));
	return e;
}

int store_save(struct store *s, const struct sl_config *cfg, const struct sl_ids *ids,
	       uint64_t version, char *err, size_t errlen)
{
	char ip[PATH_MAX + 16];
	json_t *ji, *jo;
	int rc;

	if (s->etcd)
		return store_etcd_save(s, cfg, ids, version, err, errlen);
	store_path_of(s, "ids.json", ip, sizeof(ip));
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
	return journal_save(s, cfg, version, err, errlen);
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
		return -EINVAL;
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
		return -EINVAL;
	}
	if (ttl <= 0 || len < 2 * sizeof(rnd) + 1) {
		snprintf(err, errlen, "--ttl must be positive");
		return -EINVAL;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		pki_log_errors("random bytes for a join token", err, errlen);
		return -EIO;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	if (token_hash(token, hash, 65)) {
		snprintf(err, errlen, "hashing the token failed");
		return -EIO;
	}
	j = json_pack("{s:s, s:I, s:I}", "node", node, "created", (json_int_t)time(NULL),
		      "expires", (json_int_t)(time(NULL) + ttl));
	*text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!*text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Is the token's record j (NULL: none) good for node now? 0 or -EACCES. */
static int token_record_ok(json_t *j, const char *node, char *err, size_t errlen)
{
	const char *for_node = json_string_value(json_object_get(j, "node"));
	time_t exp = (time_t)json_integer_value(json_object_get(j, "expires"));
	char when[32];
	struct tm tm;

	if (!for_node || strcmp(for_node, node) != 0) {
		snprintf(err, errlen, "join token refused: issued for node %s, not %s",
			 for_node ?: "?", node);
		return -EACCES;
	}
	if (time(NULL) >= exp) {
		gmtime_r(&exp, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(err, errlen, "join token refused: expired at %s", when);
		return -EACCES;
	}
	return 0;
}

int store_token_create(const char *dir, const char *node, long ttl, char *token,
		       size_t len, char *err, size_t errlen)
{
	char hash[65], path[PATH_MAX + 128], tdir[PATH_MAX + 16], *text;
	int e;

	e = token_mint(node, ttl, token, len, hash, &text, err, errlen);
	if (e)
		return e;
	snprintf(tdir, sizeof(tdir), "%s/tokens/used", dir);
	e = sys_mkdir_p(tdir, 0700);
	if (e) {
		snprintf(err, errlen, "creating %s: %s", tdir, strerror(-e));
		free(text);
		return e;
	}
	snprintf(path, sizeof(path), "%s/tokens/%s.json", dir, hash);
	e = file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	if (e)
		snprintf(err, errlen, "writing %s: %s", path, strerror(-e));
	return e;
}

int store_token_use(const char *dir, const char *node, const char *token, bool consume,
		    char *err, size_t errlen)
{
	char hash[65], path[PATH_MAX + 128], used[PATH_MAX + 128];
	json_error_t jerr;
	json_t *j = NULL;
	int rc = -EACCES;

	if (!*token || strlen(token) > STORE_TOKEN_MAX || token_hash(token, hash, sizeof(hash))) {
		snprintf(err, errlen, "join token refused: malformed");
		return -EACCES;
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
		rc = errno == ENOENT ? -EACCES : -errno;
		snprintf(err, errlen, "join token refused: %s", rc == -EACCES ?
			 "already used (tokens are single-use)" : strerror(-rc));
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	return rc;
}

/* ---- node addresses -------------------------------------------------------- */

int store_nodes_load(struct store *s, json_t **addrs, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], pre[192], e2[512];
	struct etcd_kv *kvs;
	json_error_t jerr;
	size_t n, pl;
	json_t *j;
	int rc;

	*addrs = NULL;
	if (!s->etcd) {
		store_path_of(s, "nodes.json", path, sizeof(path));
		if (access(path, F_OK)) {
			*addrs = json_object();
			return *addrs ? 0 : -ENOMEM;
		}
		j = json_load_file(path, 0, &jerr);
		if (!json_is_object(j)) {
			snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column,
				 j ? "not an object" : jerr.text);
			json_decref(j);
			return -EINVAL;
		}
		*addrs = j;
		return 0;
	}
	store_etcd_key(s->prefix, "nodes/", pre, sizeof(pre));
	pl = strlen(pre);
	rc = etcd_range(s->etcd, pre, &kvs, &n, NULL, e2, sizeof(e2));
	if (rc) {
		snprintf(err, errlen, "reading %s from etcd: %s", pre, e2);
		return rc;
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
		return -ENOMEM;
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
		store_path_of(s, "nodes.json", path, sizeof(path));
		e = text ? file_write_atomic(path, text, strlen(text), 0644) : -ENOMEM;
		free(text);
		if (e)
			snprintf(err, errlen, "writing %s: %s", path, strerror(-e));
		return e;
	}
	rc = store_nodes_load(s, &have, err, errlen);
	if (rc)
		return rc;
	json_object_foreach((json_t *)addrs, name, v) {
		const char *a = json_string_value(v), *was;

		if (!a || !store_node_name_ok(name))
			continue;
		was = json_string_value(json_object_get(have, name));
		if (was && strcmp(was, a) == 0)
			continue;
		store_etcd_key(s->prefix, "nodes/", key, sizeof(key));
		snprintf(key + strlen(key), sizeof(key) - strlen(key), "%s", name);
		rc = etcd_put(s->etcd, key, a, strlen(a), NULL, e2, sizeof(e2));
		if (rc) {
			snprintf(err, errlen, "writing %s to etcd: %s", key, e2);
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
	int rc;

	if (!o->etcd_url)
		return store_token_create(o->dir, node, ttl, token, len, err, errlen);
	rc = store_etcd_client(&e, o, prefix, sizeof(prefix), err, errlen);
	if (rc)
		return rc;
	rc = token_mint(node, ttl, token, len, hash, &text, err, errlen);
	if (rc)
		goto out;
	snprintf(key, sizeof(key), "%stokens/%s", prefix, hash);
	rc = etcd_put(e, key, text, strlen(text), NULL, e2, sizeof(e2));
	if (rc)
		snprintf(err, errlen, "writing %s to etcd: %s", key, e2);
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
	int rc;

	if (!s->etcd)
		return store_token_use(s->dir, node, token, consume, err, errlen);
	if (!*token || strlen(token) > STORE_TOKEN_MAX || token_hash(token, hash, sizeof(hash))) {
		snprintf(err, errlen, "join token refused: malformed");
		return -EACCES;
	}
	snprintf(key, sizeof(key), "%stokens/%s", s->prefix, hash);
	snprintf(used, sizeof(used), "%stokens/used/%s", s->prefix, hash);
	rc = etcd_get(s->etcd, key, &v, &vl, &mr, NULL, e2, sizeof(e2));
	if (rc) {
		snprintf(err, errlen, "join token not checked: %s", e2);
		return rc;
	}
	if (!v) {
		char *u = NULL;

		rc = etcd_get(s->etcd, used, &u, &vl, &umr, NULL, e2, sizeof(e2));
		if (rc) {
			snprintf(err, errlen, "join token not checked: %s", e2);
			return rc;
		}
		snprintf(err, errlen, "join token refused: %s", u ?
			 "already used (tokens are single-use)" : "unknown token");
		free(u);
		return -EACCES;
	}
	j = json_loadb(v, vl, 0, NULL);
	rc = token_record_ok(j, node, err, errlen);
	if (rc)
		goto out;
	if (consume) {
		struct etcd_op ops[] = {
			{ ETCD_OP_DELETE, key, NULL, 0 },
			{ ETCD_OP_PUT, used, v, vl },
		};

		rc = etcd_txn(s->etcd, &(struct etcd_cmp){ key, mr }, 1, ops, 2, &won, NULL,
			      e2, sizeof(e2));
		if (rc) {
			snprintf(err, errlen, "join token not consumed: %s", e2);
			goto out;
		}
		if (!won) {
			snprintf(err, errlen, "join token refused: already used (tokens are single-use)");
			rc = -EACCES;
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(j);
	free(v);
	return rc;
}
