/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * config_schema.h - per-document validation (docs/config.md): one YAML
 * document of an accepted kind checked field by field, each error at the
 * line and column of the offending key or value (config_schema.c). The
 * config set (config.c) runs it on every document it is given.
 */
#ifndef SL_CONFIG_SCHEMA_H
#define SL_CONFIG_SCHEMA_H

#include <stdbool.h>

#include "lib/config/config_yaml.h"
#include "lib/config/diag.h"

/* Validate one document. On success *kind, *ns, *name are the resource's
 * (ns defaulted; "" for a cluster-scoped kind), pointing into the tree.
 * 0; 1 for a document of a kind that is not the mesh's (apps/v1
 * Deployment, v1 ConfigMap: one informational line in d, nothing to add);
 * -EINVAL (errors in d). */
int sl_validate_doc(const char *file, const struct ynode *doc, struct sl_diags *d,
		    const char **kind, const char **ns, const char **name);

/* The kinds sluice reads, as a list for messages. */
const char *sl_kind_list(void);
/* A kind as a user names it on the command line (any case, plural, short
 * alias: "vs", "virtualservices") -> its own spelling, or NULL. */
const char *sl_kind_canon(const char *k);
/* Namespace: no metadata.namespace, stored with namespace "". */
bool sl_kind_cluster_scoped(const char *kind);

#endif /* SL_CONFIG_SCHEMA_H */
