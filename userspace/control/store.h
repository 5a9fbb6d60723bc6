/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * store.h - the control plane's state directory: its CA and credentials,
 * the config with its version, the numeric identities, and join tokens.
 *
 *   DIR/ca.crt ca.key              root CA (key 0600), created on first start
 *   DIR/server.crt server.key      the API's certificate, reissued at start
 *   DIR/admin.crt admin.key        sluicectl's credentials (with ca.crt)
 *   DIR/config.json                {"version", "trust_domain", "resources"}
 *   DIR/config.log                 the changes since (store_journal.h)
 *   DIR/ids.json                   SPIFFE ID -> number (lib/compile/ids.h)
 *   DIR/tokens/HASH.json           unused join tokens (SHA-256 of the token)
 *   DIR/tokens/used/HASH.json      consumed ones
 *
 *   DIR/nodes.json                 node -> its HBONE address, IP:PORT
 *
 * Contract: every file is replaced atomically (lib/core/file.h). store_save()
 * writes ids.json, if the table differs from the stored one (s->ids),
 * before the config: identities only grow, so a crash
 * between the two leaves a config whose identities are all known. The
 * version lives in config.json and config.log with the resources it
 * describes. Functions
 * return 0 or -errno with a one-line reason in err: -EINVAL for a bad
 * option or stored state that does not load, -EACCES for a join token
 * refused (malformed, unknown, used, expired, another node's), etcd's or
 * a file's -errno.
 *
 * With etcd (store_opts.etcd_url), several replicas share one store; the
 * shared state is in etcd under a prefix (default /sluice/), the rest
 * stays in DIR (server.crt/key, admin.crt/key, ca.crt: this replica's):
 *
 *   PREFIX/config               config.json's content
 *   PREFIX/ids                  ids.json's content
 *   PREFIX/ca/cert              the CA certificate, PEM
 *   PREFIX/ca/key               the CA key, AES-256-GCM with the store key:
 *                               "v1:" base64(nonce[12] ciphertext tag[16])
 *   PREFIX/ca/trust_domain      fixed with the CA
 *   PREFIX/nodes/NAME           the node's HBONE address
 *   PREFIX/tokens/HASH          unused join tokens
 *   PREFIX/tokens/used/HASH     consumed ones
 *
 * The first replica creates the CA (a transaction: only if absent), the
 * others load it. store_save() is a transaction on PREFIX/config's
 * mod_revision as this replica last read or wrote it (s->cfg_rev): ids and
 * config are written together or not at all, and a replica that missed
 * another's change gets -ESTALE and must store_reload() and redo its
 * change. Consuming a token is a transaction on its mod_revision.
 */
#ifndef SL_CONTROL_STORE_H
#define SL_CONTROL_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "control/etcd.h"
#include "lib/compile/ids.h"
#include "lib/config/config.h"
#include "lib/wire/pki.h"

#define STORE_TOKEN_MAX   128
#define STORE_PREFIX      "/sluice/"
#define STORE_KEY_BYTES   32

struct store {
	char dir[PATH_MAX];
	char td[256];              /* trust domain */
	struct pki_ca ca;
	struct sl_config *cfg;
	struct sl_ids *ids;
	uint64_t version;
	/* etcd only (etcd NULL: the state dir keeps everything) */
	struct etcd *etcd;
	struct etcd_watch *watch;  /* PREFIX/config */
	char prefix[128];
	int64_t cfg_rev;           /* PREFIX/config's mod_revision as last read or written */
	/* the state dir only: the config that config.json and config.log
	 * hold, and their sizes (store_journal.h) */
	struct sl_config *saved;
	size_t base_bytes, log_bytes;
};

struct store_opts {
	const char *dir;           /* the state dir (always) */
	const char *td;            /* NULL: the stored one (default cluster.local) */
	const char *ca_cert, *ca_key;   /* an operator's CA, or NULL */
	const char *etcd_url;      /* etcd://H:P,... or etcds://...; NULL: no etcd */
	const char *prefix;        /* NULL: STORE_PREFIX */
	const char *store_key;     /* a file of STORE_KEY_BYTES (raw or hex): etcd only */
	struct etcd_opts etcd;     /* timeout and TLS to etcd */
};

/*
 * Open (and on first use create) DIR. ca_cert/ca_key: an operator's CA to
 * use (copied into DIR on first use; a different CA already in DIR is an
 * error). td: the trust domain, or NULL for the stored one (default
 * cluster.local); a different one than stored is an error.
 */
int store_open(struct store *s, const char *dir, const char *td, const char *ca_cert,
	       const char *ca_key, char *err, size_t errlen);
/* The same with every option; with o->etcd_url the shared state is in etcd. */
int store_open_opts(struct store *s, const struct store_opts *o, char *err, size_t errlen);
void store_close(struct store *s);
/* 0 or -errno: -ESTALE when another replica changed the config since this
 * one read it ("config changed by another replica (version N); retry"). */
int store_save(struct store *s, const struct sl_config *cfg, const struct sl_ids *ids,
	       uint64_t version, char *err, size_t errlen);

/* Re-read config and ids (etcd; the state dir: nothing to do) into s when
 * PREFIX/config changed; *changed says whether it did. Clears the watch
 * fd. 0 or -errno (nothing changed in s). */
int store_reload(struct store *s, bool *changed, char *err, size_t errlen);
/* Readable when PREFIX/config changed (call store_reload()); the fd, or -1
 * (no fd, not an error code) without etcd. */
int store_watch_fd(const struct store *s);

/* The nodes' HBONE addresses: an object node -> "IP:PORT" (new reference;
 * empty when none are stored). */
int store_nodes_load(struct store *s, json_t **addrs, char *err, size_t errlen);
/* Store these addresses; in etcd, each node's key is written only when
 * its address changed, and nodes not in addrs are left as they are (other
 * replicas' nodes). */
int store_nodes_save(struct store *s, const json_t *addrs, char *err, size_t errlen);

/* `sluice-control store-key create FILE`: 32 random bytes, as hex, into a
 * new FILE of mode 0600 (an existing one is refused). */
int store_key_create(const char *path, char *err, size_t errlen);
/* A copy of ids (through their JSON form); NULL on allocation failure. */
struct sl_ids *store_ids_copy(const struct sl_ids *ids);

/* spiffe://TD/sluice/{admin,control,node/NAME} */
void store_role_uri(const struct store *s, const char *role, char *buf, size_t len);

/* Node names: 1..63 of [a-z0-9.-_], starting with a letter or digit. */
bool store_node_name_ok(const char *node);

/* A new single-use token for `node`, valid for ttl seconds (only its hash
 * is stored). */
int store_token_create(const char *dir, const char *node, long ttl, char *token,
		       size_t len, char *err, size_t errlen);
/* Is `token` valid for `node` now, in state dir `dir`? consume: mark it
 * used (atomically: of two concurrent joins with one token, one wins). */
int store_token_use(const char *dir, const char *node, const char *token, bool consume,
		    char *err, size_t errlen);
/* The same for either backend: a token into o's store (etcd when
 * o->etcd_url is set; no CA or config is opened), and a token checked or
 * consumed in s. */
int store_token_new(const struct store_opts *o, const char *node, long ttl, char *token,
		    size_t len, char *err, size_t errlen);
int store_token_check(struct store *s, const char *node, const char *token, bool consume,
		      char *err, size_t errlen);

#endif /* SL_CONTROL_STORE_H */
