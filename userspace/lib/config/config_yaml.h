/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * config_yaml.h - YAML text to a tree that remembers where every node came
 * from (for lib/config and the install profiles of sluicectl:
 * config_yaml.c), the tree written out as JSON, and JSON back to YAML text
 * (config_yaml_out.c).
 *
 * Contract: yaml_parse_stream() reads a multi-document buffer with
 * libfyaml's event parser and builds one tree per document; every node
 * carries its 1-based line and column. Syntax errors, duplicate mapping
 * keys, non-scalar keys, aliases, text that is not UTF-8 and inputs over
 * the limits below are reported to the diags as
 * "FILE:LINE:COLUMN: TEXT" and yield no trees at all. Scalars keep their
 * text and whether they were plain (unquoted): YAML 1.2 core-schema typing
 * (null, bool, int, float) applies to plain scalars only.
 */
#ifndef SL_CONFIG_YAML_H
#define SL_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/config/diag.h"

/*
 * Limits on one input (a file, an apply body, each file of a JSON apply),
 * so that hostile YAML costs bounded time and memory (docs/config.md,
 * "Limits"). Over any of them the input is refused with FILE:LINE:COLUMN.
 * YAML aliases are refused outright, so nothing is ever expanded.
 */
#define SL_CONFIG_MAX_BYTES  (16u << 20)  /* the text */
#define SL_CONFIG_MAX_DOCS   10000        /* documents ("---") */
#define SL_CONFIG_MAX_DEPTH  64           /* nested mappings and lists */
#define SL_CONFIG_MAX_SCALAR (64u << 10)  /* one key or value */
#define SL_CONFIG_MAX_NODES  1000000      /* keys, values, mappings and lists */
enum ynode_type { YN_SCALAR, YN_MAP, YN_SEQ };

/* What a scalar means under the YAML 1.2 core schema. */
enum yscalar { YS_NULL, YS_BOOL, YS_INT, YS_FLOAT, YS_STR };

struct ynode {
	char *str;                 /* scalar text, NUL-terminated */
	struct ynode **items;      /* seq: items; map: key, value, key, value... */
	uint32_t n, cap;           /* seq: n items; map: n pairs (at most
				    * SL_CONFIG_MAX_NODES) */
	int line, col;             /* 1-based */
	uint8_t type;              /* enum ynode_type */
	bool plain;                /* unquoted scalar */
};

/* A document tree shared by every copy of a resource (sl_config_dup). It,
 * its nodes, their item arrays and their texts live in the memory of the
 * input it was read from, freed whole with the input's last document. */
struct yarena;
struct ydoc {
	int refs;
	char *file;
	struct ynode *root;
	struct yarena *arena;
};

/* Parse `buf`, one input within the limits above; on success *docs
 * holds *ndocs documents (empty documents are skipped). 0, or -errno
 * with errors in d and nothing in *docs: -EINVAL for text that is not
 * valid YAML or breaks a limit, -EFBIG past the size limit, -ENOMEM. */
int yaml_parse_stream(const char *file, const char *buf, size_t len,
		      struct ydoc ***docs, size_t *ndocs, struct sl_diags *d);
/* The same for the stored config (sl_config_from_json): every resource
 * accepted so far, so only the nesting depth is limited. */
int yaml_parse_stored(const char *file, const char *buf, size_t len,
		      struct ydoc ***docs, size_t *ndocs, struct sl_diags *d);

struct ydoc *ydoc_ref(struct ydoc *y);
void ydoc_unref(struct ydoc *y);

enum yscalar yscalar_kind(const struct ynode *n);
/* A mapping's value for `key`, or NULL. */
const struct ynode *ymap_get(const struct ynode *map, const char *key);
/* The node at a dotted path ("spec.rules[0].from"), or the deepest node on
 * the way that exists. Never NULL for a non-NULL root. */
const struct ynode *ynode_at(const struct ynode *root, const char *path);

/* The tree as JSON, scalars typed by the core schema. NULL on ENOMEM. */
json_t *ynode_to_json(const struct ynode *n);
/* The tree as compact JSON text (jsonw.h: jansson's bytes), scalars
 * typed by the core schema; w->err for a string that is not UTF-8 or a
 * float out of range, as jansson refuses them. */
struct jsonw;
void ynode_write_json(const struct ynode *n, struct jsonw *w);

/* A JSON document as YAML text (malloc'd, NUL-terminated), for
 * `sluicectl get -o yaml`; NULL on ENOMEM. */
char *sl_json_to_yaml(const json_t *doc);

#endif /* SL_CONFIG_YAML_H */
