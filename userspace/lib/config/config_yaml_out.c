// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Trees written out (config_yaml.h): a YAML tree as a JSON tree or as
 * compact JSON text, scalars typed by the core schema; and a JSON document
 * as YAML text for `sluicectl get -o yaml`.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config/config_yaml.h"
#include "lib/core/jsonw.h"

json_t *ynode_to_json(const struct ynode *n)
{
	json_t *j = NULL;

	switch (n->type) {
	case YN_SCALAR:
		switch (yscalar_kind(n)) {
		case YS_NULL:
			return json_null();
		case YS_BOOL:
			return json_boolean(n->str[0] == 't' || n->str[0] == 'T');
		case YS_INT:
			return json_integer(strtoll(n->str, NULL, 10));
		case YS_FLOAT:
			return json_real(strtod(n->str, NULL));
		case YS_STR:
			return json_string(n->str);
		}
		return NULL;
	case YN_SEQ:
		j = json_array();
		for (size_t i = 0; j && i < n->n; i++) {
			if (json_array_append_new(j, ynode_to_json(n->items[i]))) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	case YN_MAP:
		j = json_object();
		for (size_t i = 0; j && i < n->n; i++) {
			if (json_object_set_new(j, n->items[2 * i]->str,
						ynode_to_json(n->items[2 * i + 1]))) {
				json_decref(j);
				return NULL;
			}
		}
		return j;
	}
	return NULL;
}

void ynode_write_json(const struct ynode *n, struct jsonw *w)
{
	switch (n->type) {
	case YN_SCALAR:
		switch (yscalar_kind(n)) {
		case YS_NULL:
			jw_raw(w, "null", 4);
			return;
		case YS_BOOL:
			jw_lit(w, n->str[0] == 't' || n->str[0] == 'T' ? "true" : "false");
			return;
		case YS_INT:
			jw_int(w, strtoll(n->str, NULL, 10));
			return;
		case YS_FLOAT:
			jw_real(w, strtod(n->str, NULL));
			return;
		case YS_STR:
			jw_str(w, n->str);
			return;
		}
		return;
	case YN_SEQ:
		jw_raw(w, "[", 1);
		for (size_t i = 0; i < n->n; i++) {
			if (i)
				jw_raw(w, ",", 1);
			ynode_write_json(n->items[i], w);
		}
		jw_raw(w, "]", 1);
		return;
	case YN_MAP:
		jw_raw(w, "{", 1);
		for (size_t i = 0; i < n->n; i++) {
			if (i)
				jw_raw(w, ",", 1);
			jw_str(w, n->items[2 * i]->str);
			jw_raw(w, ":", 1);
			ynode_write_json(n->items[2 * i + 1], w);
		}
		jw_raw(w, "}", 1);
		return;
	}
}

/* ---- JSON -> YAML text ------------------------------------------------------ */

/* A scalar as YAML: plain when it reads back as the same string, else
 * double-quoted with JSON's escapes (a JSON string is a YAML one). */
static int emit_scalar(FILE *f, const json_t *j)
{
	char *s;

	if (json_is_string(j)) {
		struct ynode probe = { .type = YN_SCALAR, .str = (char *)json_string_value(j),
				       .plain = true };
		const char *t = probe.str;

		if (yscalar_kind(&probe) == YS_STR && *t && !strpbrk(t, ":#{}[],&*!|>'\"%@`\n\t") &&
		    !strchr("-? ", t[0]) && t[strlen(t) - 1] != ' ')
			return fputs(t, f) < 0 ? -ENOMEM : 0;
	}
	s = json_dumps(j, JSON_ENCODE_ANY);
	if (!s)
		return -ENOMEM;
	fputs(s, f);
	free(s);
	return 0;
}

static bool is_empty_coll(const json_t *j)
{
	return (json_is_object(j) && json_object_size(j) == 0) ||
	       (json_is_array(j) && json_array_size(j) == 0);
}

static int emit(FILE *f, const json_t *j, int indent, int first);

/* The value after "key:" or "- ": inline for scalars, else on new lines. */
static int emit_value(FILE *f, const json_t *v, int indent, bool in_seq)
{
	int rc;

	if (is_empty_coll(v))
		return fputs(json_is_object(v) ? " {}\n" : " []\n", f) < 0 ? -ENOMEM : 0;
	if (in_seq && json_is_object(v)) {
		fputc(' ', f); /* "- key: value" with the other keys below it */
		return emit(f, v, indent + 2, 0);
	}
	if (json_is_object(v) || json_is_array(v)) {
		fputc('\n', f);
		indent += in_seq || json_is_object(v) ? 2 : 0;
		return emit(f, v, indent, indent);
	}
	fputc(' ', f);
	rc = emit_scalar(f, v);
	if (rc)
		return rc;
	fputc('\n', f);
	return 0;
}

/* `first`: the indentation of the first line (0 after "- "). */
static int emit(FILE *f, const json_t *j, int indent, int first)
{
	const char *k;
	json_t *v;
	size_t i;
	int rc;

	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v) {
			json_t *key = json_string(k);

			fprintf(f, "%*s", first, "");
			first = indent;
			rc = key ? emit_scalar(f, key) : -ENOMEM;
			json_decref(key);
			fputc(':', f);
			if (!rc)
				rc = emit_value(f, v, indent, false);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			fprintf(f, "%*s-", first, "");
			first = indent;
			rc = emit_value(f, v, indent, true);
			if (rc)
				return rc;
		}
		return 0;
	}
	rc = emit_scalar(f, j);
	if (rc)
		return rc;
	fputc('\n', f);
	return 0;
}

char *sl_json_to_yaml(const json_t *doc)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	int rc;

	if (!f)
		return NULL;
	rc = is_empty_coll(doc) ? (fputs(json_is_object(doc) ? "{}\n" : "[]\n", f) < 0)
				: emit(f, doc, 0, 0);
	if (fclose(f) || rc) {
		free(out);
		return NULL;
	}
	return out;
}
