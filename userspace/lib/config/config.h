/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * config.h - users' configuration: Istio and Kubernetes resources in YAML,
 * parsed with their source positions and validated (the Galley role).
 *
 * Accepted kinds (docs/config.md): v1 Service; networking.istio.io/v1 (and
 * v1beta1) ServiceEntry, WorkloadEntry, DestinationRule, VirtualService;
 * security.istio.io/v1 (and v1beta1) AuthorizationPolicy, PeerAuthentication.
 *
 * Contract:
 *  - Every diagnostic is one line "FILE:LINE:COLUMN: KIND NS/NAME: FIELD: TEXT"
 *    (KIND NS/NAME omitted when the document has none yet), FIELD a dotted
 *    path such as spec.rules[0].to[0].operation.methods.
 *  - A parse that reports any error adds nothing to the config: the documents
 *    of one buffer are accepted together or not at all.
 *  - Warnings (a selector that matches nothing) never block.
 *  - Functions return 0 or -errno (errors in the diags): -EINVAL for input
 *    that does not validate, -ENOMEM (an error diagnostic too), a file's
 *    -errno (-ENOENT, -EFBIG past SL_CONFIG_MAX_BYTES, ...).
 */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "lib/config/diag.h"

/* One stored resource. */
struct sl_resource;

/* A diagnostic about resource `r` at its dotted `field` (position looked
 * up in the document it was read from). */
__attribute__((format(printf, 5, 6)))
void sl_diag_res(struct sl_diags *d, enum sl_diag_level level, const struct sl_resource *r,
		 const char *field, const char *fmt, ...);
/* A set of resources, unique by (kind, namespace, name). */
struct sl_config;

struct sl_config *sl_config_new(void);
void sl_config_free(struct sl_config *c);
struct sl_config *sl_config_dup(const struct sl_config *c);
/*
 * The resources (and every config sharing them) let go of what a config
 * at rest does not need: the YAML trees they were parsed from (diagnostics
 * about them then name kind, name and field without a position; resources
 * loaded from the storage form keep none), and the JSON tree of each
 * resource that has a memo (its parsed form stands for it; the tree is
 * read again from the text if asked for). For a stored config, between
 * requests: a tree sl_resource_json() returned before is gone after.
 */
void sl_config_trim(struct sl_config *c);
/* The same resources with the same documents. */
bool sl_config_same(const struct sl_config *a, const struct sl_config *b);

/*
 * Parse a multi-document YAML buffer. `name` is the file name used in
 * messages. A document whose kind/namespace/name is already in `c` replaces
 * it (apply semantics). Namespace defaults to "default".
 */
int sl_config_parse(struct sl_config *c, const char *name, const char *buf,
		    size_t len, struct sl_diags *d);
int sl_config_parse_file(struct sl_config *c, const char *path, struct sl_diags *d);

/* Remove one resource; kind is matched case-insensitively. 0, or -ENOENT
 * if absent. */
int sl_config_remove(struct sl_config *c, const char *kind, const char *ns,
		     const char *name);

size_t sl_config_count(const struct sl_config *c);
const struct sl_resource *sl_config_at(const struct sl_config *c, size_t i);
const struct sl_resource *sl_config_find(const struct sl_config *c, const char *kind,
					 const char *ns, const char *name);
/* The order of keys (kind, namespace, name) that sl_config_at() follows. */
int sl_resource_cmp(const struct sl_resource *a, const struct sl_resource *b);

const char *sl_resource_kind(const struct sl_resource *r);       /* "AuthorizationPolicy" */
const char *sl_resource_namespace(const struct sl_resource *r);
const char *sl_resource_name(const struct sl_resource *r);
/* The document as given (apiVersion, kind, metadata, spec), as a JSON
 * tree, valid until sl_config_trim() of a config holding r (NULL if out of
 * memory, or r NULL). */
const json_t *sl_resource_json(const struct sl_resource *r);
/* The same tree as a reference the caller owns: the one held if one is,
 * else made and not held (from the YAML tree while r keeps it, else from
 * the text), for a reader that needs it once and keeps what it needs.
 * NULL if out of memory, or r NULL. */
json_t *sl_resource_json_ref(const struct sl_resource *r);
/* The document's stored form: its compact JSON text, as a JSON string.
 * Equal texts (json_equal) are equal documents. */
const json_t *sl_resource_stored(const struct sl_resource *r);

/* What a reader derived from the resource alone (its parsed form), kept
 * with it for as long as any config holds it: a resource never changes,
 * so neither does what follows from it. Setting frees the previous memo.
 * A memo must not point into the tree sl_resource_json() returns without
 * holding a reference to what it points to: sl_config_trim() drops the
 * tree of a resource with a memo. */
void *sl_resource_memo(const struct sl_resource *r);
void sl_resource_set_memo(const struct sl_resource *r, void *memo, void (*memo_free)(void *));

/*
 * json_dumps() flags for the storage form: a file written with them gives
 * sl_config_from_json()'s diagnostics the file's own lines and columns.
 */
#define SL_CONFIG_JSON_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER)

/*
 * Storage form: a JSON array of the documents, and back. Loading runs the
 * same validation as parsing; `name` is used in messages.
 */
json_t *sl_config_to_json(const struct sl_config *c);
int sl_config_from_json(struct sl_config *c, const char *name, const json_t *docs,
			struct sl_diags *d);

#endif
