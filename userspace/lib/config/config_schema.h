/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * config_schema.h - per-document validation (docs/config.md): one YAML
 * document of an accepted kind checked field by field, each error at the
 * line and column of the offending key or value (config_schema.c). The
 * config set (config.c) runs it on every document it is given.
 */
#ifndef SL_CONFIG_SCHEMA_H
#define SL_CONFIG_SCHEMA_H

#include "lib/config/config_yaml.h"
#include "lib/config/diag.h"

/* Validate one document. On success *kind, *ns, *name are the resource's
 * (ns defaulted), pointing into the tree; 0 or -1 (errors in d). */
int sl_validate_doc(const char *file, const struct ynode *doc, struct sl_diags *d,
		    const char **kind, const char **ns, const char **name);

#endif /* SL_CONFIG_SCHEMA_H */
