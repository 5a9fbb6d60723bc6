/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * store.h - the control plane's state directory: its CA and credentials,
 * the config with its version, the numeric identities, and join tokens.
 *
 *   DIR/ca.crt ca.key              root CA (key 0600), created on first start
 *   DIR/server.crt server.key      the API's certificate, reissued at start
 *   DIR/admin.crt admin.key        sluicectl's credentials (with ca.crt)
 *   DIR/config.json                {"version", "trust_domain", "resources"}
 *   DIR/ids.json                   SPIFFE ID -> number (lib/compile/ids.h)
 *   DIR/tokens/HASH.json           unused join tokens (SHA-256 of the token)
 *   DIR/tokens/used/HASH.json      consumed ones
 *
 * Contract: every file is replaced atomically (lib/core/file.h). store_save()
 * writes ids.json, if the table differs from the stored one (s->ids),
 * before config.json: identities only grow, so a crash
 * between the two leaves a config whose identities are all known. The
 * version lives in config.json with the resources it describes. Functions
 * return 0 or -1 with a one-line reason in err.
 */
#ifndef SL_CONTROL_STORE_H
#define SL_CONTROL_STORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/compile/ids.h"
#include "lib/config/config.h"
#include "lib/wire/pki.h"

#define STORE_TOKEN_MAX   128

struct store {
	char dir[PATH_MAX];
	char td[256];              /* trust domain */
	struct pki_ca ca;
	struct sl_config *cfg;
	struct sl_ids *ids;
	uint64_t version;
};

/*
 * Open (and on first use create) DIR. ca_cert/ca_key: an operator's CA to
 * use (copied into DIR on first use; a different CA already in DIR is an
 * error). td: the trust domain, or NULL for the stored one (default
 * cluster.local); a different one than stored is an error.
 */
int store_open(struct store *s, const char *dir, const char *td, const char *ca_cert,
	       const char *ca_key, char *err, size_t errlen);
void store_close(struct store *s);
int store_save(struct store *s, const struct sl_config *cfg, const struct sl_ids *ids,
	       uint64_t version, char *err, size_t errlen);
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
/* Is `token` valid for `node` now? consume: mark it used (atomically: of
 * two concurrent joins with one token, one wins). */
int store_token_use(const char *dir, const char *node, const char *token, bool consume,
		    char *err, size_t errlen);

#endif /* SL_CONTROL_STORE_H */
