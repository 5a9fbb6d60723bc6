// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * store_etcd.c - the store in etcd (store.h has the layout and contract;
 * store_etcd.h what store.c calls here): the store key and the sealed CA
 * key, the CA stored once for every replica, config and ids read together
 * and saved in a transaction on the config's revision, the reload.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "control/etcd.h"
#include "control/etcd_msg.h"
#include "control/store.h"
#include "control/store_common.h"
#include "control/store_etcd.h"
#include "lib/core/log.h"

/* PREFIX + name */
void store_etcd_key(const char *prefix, const char *name, char *buf, size_t len)
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
		return -EINVAL;
	}
	snprintf(buf, len, "%s%s", prefix, prefix[n - 1] == '/' ? "" : "/");
	return 0;
}

int store_etcd_client(struct etcd **e, const struct store_opts *o, char *prefix,
		      size_t plen, char *err, size_t errlen)
{
	char e2[512];
	int rc;

	rc = prefix_set(prefix, plen, o->prefix, err, errlen);
	if (rc)
		return rc;
	rc = etcd_open(e, o->etcd_url, &o->etcd, e2, sizeof(e2));
	if (rc)
		snprintf(err, errlen, "--store: %s", e2);
	return rc;
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
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		int e = errno;

		snprintf(err, errlen, "--store-key %s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
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
	return -EINVAL;
}

int store_key_create(const char *path, char *err, size_t errlen)
{
	unsigned char key[STORE_KEY_BYTES];
	char hex[2 * STORE_KEY_BYTES + 2];
	int fd, rc;

	if (RAND_bytes(key, sizeof(key)) != 1) {
		pki_log_errors("random bytes for the store key", err, errlen);
		return -EIO;
	}
	for (int i = 0; i < STORE_KEY_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	hex[2 * STORE_KEY_BYTES] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s%s", path, strerror(-rc),
			 rc == -EEXIST ? " (a store key is never overwritten)" : "");
		goto out;
	}
	if (write(fd, hex, 2 * STORE_KEY_BYTES + 1) != 2 * STORE_KEY_BYTES + 1 || fsync(fd)) {
		rc = errno ? -errno : -EIO;
		snprintf(err, errlen, "writing %s: %s", path, strerror(-rc));
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
	int rc;

	store_etcd_key(s->prefix, "ca/cert", kc, sizeof(kc));
	store_etcd_key(s->prefix, "ca/key", kk, sizeof(kk));
	store_etcd_key(s->prefix, "ca/trust_domain", kt, sizeof(kt));
	if ((o->ca_cert != NULL) != (o->ca_key != NULL)) {
		snprintf(err, errlen, "--ca-cert and --ca-key go together");
		return -EINVAL;
	}
	for (int round = 0; round < 2; round++) {
		char ca_dir[192];
		bool won;

		store_etcd_key(s->prefix, "ca/", ca_dir, sizeof(ca_dir));
		etcd_kvs_free(kvs, n);
		kvs = NULL;
		rc = etcd_range(s->etcd, ca_dir, &kvs, &n, NULL, e2, sizeof(e2));
		if (rc) {
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
		rc = o->ca_cert ? pki_ca_open(&cand, o->ca_cert, o->ca_key, cn, false, err, errlen) :
				  pki_ca_new(&cand, cn, err, errlen);
		if (rc)
			goto out;
		cert_pem = pki_cert_pem(cand.cert);
		key_pem = pki_key_pem(cand.key);
		sealed = key_pem ? seal(key, key_pem, strlen(key_pem)) : NULL;
		if (!cert_pem || !sealed) {
			snprintf(err, errlen, "encoding the CA failed");
			rc = -ENOMEM;
			goto out;
		}
		const char *tdv = o->td ?: "cluster.local";
		struct etcd_cmp cmp = { kc, 0 };
		struct etcd_op ops[] = {
			{ ETCD_OP_PUT, kc, cert_pem, strlen(cert_pem) },
			{ ETCD_OP_PUT, kk, sealed, strlen(sealed) },
			{ ETCD_OP_PUT, kt, tdv, strlen(tdv) },
		};
		rc = etcd_txn(s->etcd, &cmp, 1, ops, 3, &won, NULL, e2, sizeof(e2));
		if (rc) {
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
	rc = -EINVAL;
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
	if (!store_td_ok(vt)) {
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
		rc = pki_ca_open(&cand, o->ca_cert, o->ca_key, "?", false, err, errlen);
		if (rc) {
			pki_ca_close(&s->ca);
			goto out;
		}
		if (X509_cmp(cand.cert, s->ca.cert) != 0) {
			snprintf(err, errlen, "etcd %s holds another CA than %s: every certificate issued "
				 "so far depends on it", kc, o->ca_cert);
			pki_ca_close(&s->ca);
			rc = -EINVAL;
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

	store_etcd_key(s->prefix, "config", kc, sizeof(kc));
	store_etcd_key(s->prefix, "ids", ki, sizeof(ki));
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
		rc = store_config_from_json(s, cfg, version, j, kc, s->td, err, errlen);
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

int store_etcd_open(struct store *s, const struct store_opts *o, char *err, size_t errlen)
{
	unsigned char key[STORE_KEY_BYTES];
	char kc[192], cp[PATH_MAX + 16], e2[512];
	int64_t hdr = 0;
	int rc;

	rc = store_key_load(o->store_key, key, err, errlen);
	if (rc)
		return rc;
	rc = store_etcd_client(&s->etcd, o, s->prefix, sizeof(s->prefix), err, errlen);
	rc = rc ?: ca_etcd(s, o, key, err, errlen);
	if (rc)
		goto out;
	s->cfg = sl_config_new();
	s->ids = sl_ids_new();
	if (!s->cfg || !s->ids) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	rc = read_etcd(s, s->cfg, s->ids, &s->version, &s->cfg_rev, &hdr, err, errlen);
	if (rc)
		goto out;
	store_path_of(s, "config.json", cp, sizeof(cp));
	if (!s->cfg_rev && access(cp, F_OK) == 0)
		log_warn("%s holds a config, etcd (%sconfig) none: the state dir's config is not "
			 "imported; apply it again", cp, s->prefix);
	/* the CA certificate beside the admin credentials, for sluicectl */
	store_path_of(s, "ca.crt", cp, sizeof(cp));
	rc = pki_cert_save(cp, s->ca.cert);
	if (rc) {
		snprintf(err, errlen, "writing %s failed", cp);
		goto out;
	}
	rc = store_admin_creds(s, err, errlen);
	if (rc)
		goto out;
	store_etcd_key(s->prefix, "config", kc, sizeof(kc));
	rc = etcd_watch_start(s->etcd, kc, hdr + 1, &s->watch, e2, sizeof(e2));
	if (rc) {
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

int store_etcd_save(struct store *s, const struct sl_config *cfg, const struct sl_ids *ids,
		    uint64_t version, char *err, size_t errlen)
{
	char kc[192], ki[192], e2[512], *tc = NULL, *ti = NULL, *v = NULL;
	json_t *ji, *jo;
	struct etcd_op ops[2];
	size_t nops = 0, vl, tl = 0;
	int64_t rev, mr;
	bool won, want_ids;
	int rc;

	store_etcd_key(s->prefix, "config", kc, sizeof(kc));
	store_etcd_key(s->prefix, "ids", ki, sizeof(ki));
	/* ids only when the table differs from the one stored (in s) */
	ji = sl_ids_to_json(ids);
	jo = ids == s->ids ? NULL : sl_ids_to_json(s->ids);
	want_ids = ji && (!jo || !json_equal(ji, jo));
	if (want_ids) {
		ti = json_dumps(ji, JSON_COMPACT);
		if (ti)
			ops[nops++] = (struct etcd_op){ ETCD_OP_PUT, ki, ti, strlen(ti) };
	}
	tc = store_config_text(s, cfg, version, &tl);
	if (!tc || !ji || (want_ids && !ti)) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	ops[nops++] = (struct etcd_op){ ETCD_OP_PUT, kc, tc, tl };
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
