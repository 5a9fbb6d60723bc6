// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The config set (lib/config/config.h): diagnostics naming a resource's field,
 * resources kept sorted by
 * (kind, namespace, name), parsing a buffer all-or-nothing, and the JSON
 * storage form. Per-document validation is in config_schema.c, the
 * cross-resource checks in config_check.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/config/config.h"
#include "lib/config/config_schema.h"
#include "lib/config/config_yaml.h"
#include "lib/core/file.h"
#include "lib/core/jsonw.h"

/* One stored resource: its document as compact JSON text, the same as a
 * tree while someone reads it (a JSON tree takes some 12 times the text's
 * memory), and, for diagnostics, the YAML tree it was read from (shared by
 * copies). */
/* A resource never changes once made (a change is a new resource), so
 * configs share it: sl_config_dup() takes a reference, the last
 * sl_config_free() or remove frees it. Not thread-safe: a config and its
 * copies belong to one thread. */
struct sl_resource {
	unsigned int refs;
	char *kind, *ns, *name;
	json_t *text;              /* a JSON string: the stored form */
	json_t *doc;               /* its tree; NULL until read, and after a trim */
	struct ydoc *src;
	const struct ynode *node;  /* this document's root inside src */
	void *memo;                /* sl_resource_set_memo() */
	void (*memo_free)(void *);
};

struct sl_config {
	size_t n, cap;
	struct sl_resource **v;   /* sorted by res_cmp */
};

/* ---- diagnostics about resources ------------------------------------------ */

void sl_diag_res(struct sl_diags *d, enum sl_diag_level level, const struct sl_resource *r,
		 const char *field, const char *fmt, ...)
{
	const struct ynode *n = r->src ? ynode_at(r->node, field) : NULL;
	char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	if (n)
		sl_diag_add(d, level, "%s:%d:%d: %s: %s: %s", r->src->file, n->line, n->col,
			    SL_RES_ID(r->kind, r->ns, r->name), field, text ?: "(out of memory)");
	else
		sl_diag_add(d, level, "%s: %s: %s", SL_RES_ID(r->kind, r->ns, r->name), field,
			    text ?: "(out of memory)");
	free(text);
}

/* ---- resources ------------------------------------------------------------- */

static void res_free(struct sl_resource *r)
{
	if (!r || --r->refs)
		return;
	if (r->memo_free)
		r->memo_free(r->memo);
	free(r->kind);
	free(r->ns);
	free(r->name);
	json_decref(r->text);
	json_decref(r->doc);
	ydoc_unref(r->src);
	free(r);
}

void sl_config_trim(struct sl_config *c)
{
	for (size_t i = 0; i < c->n; i++) {
		struct sl_resource *r = c->v[i];

		ydoc_unref(r->src);
		r->src = NULL;
		r->node = NULL;
		if (r->memo) {
			json_decref(r->doc);
			r->doc = NULL;
		}
	}
}

bool sl_config_same(const struct sl_config *a, const struct sl_config *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i] != b->v[i] && (sl_resource_cmp(a->v[i], b->v[i]) ||
					   !json_equal(a->v[i]->text, b->v[i]->text)))
			return false;
	return true;
}

static int key_cmp(const char *kind, const char *ns, const char *name,
		   const struct sl_resource *r)
{
	int c = strcasecmp(kind, r->kind);

	c = c ?: strcmp(ns, r->ns);
	return c ?: strcmp(name, r->name);
}

int sl_resource_cmp(const struct sl_resource *a, const struct sl_resource *b)
{
	return key_cmp(a->kind, a->ns, a->name, b);
}

/* Index of the resource with this key, or where it would go (*found false). */
static size_t find_slot(const struct sl_config *c, const char *kind, const char *ns,
			const char *name, bool *found)
{
	size_t lo = 0, hi = c->n;

	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = key_cmp(kind, ns, name, c->v[mid]);

		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Insert or replace; takes ownership of r. */
static int config_put(struct sl_config *c, struct sl_resource *r)
{
	bool found;
	size_t i = find_slot(c, r->kind, r->ns, r->name, &found);

	if (found) {
		res_free(c->v[i]);
		c->v[i] = r;
		return 0;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap * 2 + 16;
		struct sl_resource **v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof(*c->v));
	c->v[i] = r;
	c->n++;
	return 0;
}

struct sl_config *sl_config_new(void)
{
	return calloc(1, sizeof(struct sl_config));
}

void sl_config_free(struct sl_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		res_free(c->v[i]);
	free(c->v);
	free(c);
}

static struct sl_resource *res_ref(struct sl_resource *r)
{
	r->refs++;
	return r;
}

void *sl_resource_memo(const struct sl_resource *r)
{
	return r->memo;
}

void sl_resource_set_memo(const struct sl_resource *r, void *memo, void (*memo_free)(void *))
{
	struct sl_resource *w = (struct sl_resource *)r;   /* derived, not a change */

	if (w->memo_free)
		w->memo_free(w->memo);
	w->memo = memo;
	w->memo_free = memo_free;
}

struct sl_config *sl_config_dup(const struct sl_config *c)
{
	struct sl_config *x = sl_config_new();

	if (!x)
		return NULL;
	x->v = calloc(c->n ?: 1, sizeof(*x->v));
	if (!x->v)
		goto fail;
	x->cap = c->n ?: 1;
	for (; x->n < c->n; x->n++)
		x->v[x->n] = res_ref(c->v[x->n]);
	return x;
fail:
	sl_config_free(x);
	return NULL;
}

int sl_config_remove(struct sl_config *c, const char *kind, const char *ns, const char *name)
{
	bool found;
	size_t i = find_slot(c, kind, ns, name, &found);

	if (!found)
		return -ENOENT;
	res_free(c->v[i]);
	memmove(&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof(*c->v));
	c->n--;
	return 0;
}

size_t sl_config_count(const struct sl_config *c)
{
	return c->n;
}

const struct sl_resource *sl_config_at(const struct sl_config *c, size_t i)
{
	return i < c->n ? c->v[i] : NULL;
}

const struct sl_resource *sl_config_find(const struct sl_config *c, const char *kind,
					 const char *ns, const char *name)
{
	bool found;
	size_t i = find_slot(c, kind, ns, name, &found);

	return found ? c->v[i] : NULL;
}

const char *sl_resource_kind(const struct sl_resource *r) { return r->kind; }
const char *sl_resource_namespace(const struct sl_resource *r) { return r->ns; }
const char *sl_resource_name(const struct sl_resource *r) { return r->name; }
const json_t *sl_resource_stored(const struct sl_resource *r) { return r->text; }

/* The stored form's tree, from the YAML tree (quicker than reading the
 * text again): status dropped, namespace as write_stored() sets it. */
static json_t *stored_tree(const struct ynode *doc, const char *ns)
{
	json_t *j = ynode_to_json(doc);
	json_t *meta = json_object_get(j, "metadata");

	if (!meta)
		goto fail;
	if (!*ns)
		json_object_del(meta, "namespace");
	else if (json_object_set_new(meta, "namespace", json_string(ns)))
		goto fail;
	json_object_del(j, "status");
	return j;
fail:
	json_decref(j);
	return NULL;
}

/* r's document as a new tree: from the YAML tree while r keeps it, else
 * from the text. NULL if out of memory. */
static json_t *make_tree(const struct sl_resource *r)
{
	if (r->node)
		return stored_tree(r->node, r->ns);
	return json_loadb(json_string_value(r->text), json_string_length(r->text), 0, NULL);
}

const json_t *sl_resource_json(const struct sl_resource *r)
{
	struct sl_resource *w = (struct sl_resource *)r;   /* read, not a change */

	if (!r)
		return NULL;
	if (!r->doc)
		w->doc = make_tree(r);
	return r->doc;
}

json_t *sl_resource_json_ref(const struct sl_resource *r)
{
	if (!r)
		return NULL;
	return r->doc ? json_incref(r->doc) : make_tree(r);
}

/* ---- parsing --------------------------------------------------------------- */

/* A document's metadata, its namespace `ns` (in the place the document
 * gave it, else last; none for a cluster-scoped kind, ns ""). */
static void write_meta(const struct ynode *meta, const char *ns, struct jsonw *w)
{
	bool set = false;
	size_t out = 0;

	jw_raw(w, "{", 1);
	for (size_t i = 0; i < meta->n; i++) {
		const struct ynode *k = meta->items[2 * i];
		bool is_ns = !strcmp(k->str, "namespace");

		if (is_ns && !*ns)
			continue;
		if (out++)
			jw_raw(w, ",", 1);
		jw_str(w, k->str);
		jw_raw(w, ":", 1);
		if (is_ns)
			jw_str(w, ns);
		else
			ynode_write_json(meta->items[2 * i + 1], w);
		set |= is_ns;
	}
	if (*ns && !set) {
		if (out)
			jw_raw(w, ",", 1);
		jw_lit(w, "\"namespace\":");
		jw_str(w, ns);
	}
	jw_raw(w, "}", 1);
}

/* The stored form of a validated document, written into w: status
 * dropped, the namespace explicit (write_meta). It does not become a tree
 * here: a tree takes some 12 times the text's memory, and is made when
 * asked for (sl_resource_json: from the YAML tree while the resource keeps
 * it, else from the text). */
static void write_stored(const struct ynode *doc, const char *ns, struct jsonw *w)
{
	const struct ynode *meta = ymap_get(doc, "metadata");
	size_t out = 0;

	if (!meta || meta->type != YN_MAP) {
		w->err = true;
		return;
	}
	jw_raw(w, "{", 1);
	for (size_t i = 0; i < doc->n; i++) {
		const struct ynode *k = doc->items[2 * i], *v = doc->items[2 * i + 1];

		if (!strcmp(k->str, "status"))
			continue;
		if (out++)
			jw_raw(w, ",", 1);
		jw_str(w, k->str);
		jw_raw(w, ":", 1);
		if (v == meta)
			write_meta(meta, ns, w);
		else
			ynode_write_json(v, w);
	}
	jw_raw(w, "}", 1);
}

/* keep: the resource keeps its tree (src) for diagnostics' positions;
 * text: room for the stored form, used again by the next call */
static struct sl_resource *res_new(struct ydoc *src, const struct ynode *node, bool keep,
				   const char *kind, const char *ns, const char *name,
				   struct buf *text)
{
	struct sl_resource *r = calloc(1, sizeof(*r));
	struct jsonw w = { .q = text };

	if (!r)
		return NULL;
	r->refs = 1;
	r->kind = strdup(kind);
	r->ns = strdup(ns);
	r->name = strdup(name);
	text->off = text->len = 0;
	write_stored(node, ns, &w);
	if (!w.err)
		r->text = json_stringn_nocheck((const char *)text->d, text->len);
	r->src = keep ? ydoc_ref(src) : NULL;
	r->node = keep ? node : NULL;
	if (!r->kind || !r->ns || !r->name || !r->text) {
		res_free(r);
		return NULL;
	}
	return r;
}

/* Validate every document of `nodes` and add them all, or none; keep:
 * the resources keep their trees (res_new). */
static int add_documents(struct sl_config *c, struct ydoc **srcs, const struct ynode **nodes,
			 size_t n, bool keep, struct sl_diags *d)
{
	struct sl_config *batch = sl_config_new();
	struct buf text = {};
	size_t errors = d->nerrors;
	int rc = -EINVAL;

	if (!batch)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const char *kind, *ns, *name;
		struct sl_resource *r;

		if (sl_validate_doc(srcs[i]->file, nodes[i], d, &kind, &ns, &name))
			continue;
		if (sl_config_find(batch, kind, ns, name)) {
			sl_diag_add(d, SL_DIAG_ERROR, "%s:%d:%d: %s: defined twice in this input",
				    srcs[i]->file, nodes[i]->line, nodes[i]->col,
				    SL_RES_ID(kind, ns, name));
			continue;
		}
		r = res_new(srcs[i], nodes[i], keep, kind, ns, name, &text);
		if (!r || config_put(batch, r)) {
			res_free(r);
			goto nomem;
		}
	}
	if (d->nerrors > errors)
		goto out;
	/* all valid: move them over (cannot fail half way: reserve first) */
	if (c->cap < c->n + batch->n) {
		struct sl_resource **v = realloc(c->v, (c->n + batch->n) * sizeof(*v));

		if (!v)
			goto nomem;
		c->v = v;
		c->cap = c->n + batch->n;
	}
	for (size_t i = 0; i < batch->n; i++)
		config_put(c, batch->v[i]);
	batch->n = 0;
	rc = 0;
	goto out;
nomem:
	rc = -ENOMEM;
	sl_diag_add(d, SL_DIAG_ERROR, "out of memory");
out:
	buf_free(&text);
	sl_config_free(batch);
	return rc;
}

int sl_config_parse(struct sl_config *c, const char *name, const char *buf, size_t len,
		    struct sl_diags *d)
{
	struct ydoc **docs = NULL;
	const struct ynode **nodes = NULL;
	size_t n = 0;
	int rc;

	rc = yaml_parse_stream(name, buf, len, &docs, &n, d);
	if (rc)
		return rc;
	nodes = calloc(n ?: 1, sizeof(*nodes));
	if (!nodes) {
		sl_diag_add(d, SL_DIAG_ERROR, "%s: out of memory", name);
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		nodes[i] = docs[i]->root;
	rc = add_documents(c, docs, nodes, n, true, d);
out:
	for (size_t i = 0; i < n; i++)
		ydoc_unref(docs[i]);
	free(docs);
	free(nodes);
	return rc;
}

int sl_config_parse_file(struct sl_config *c, const char *path, struct sl_diags *d)
{
	char *buf = NULL;
	size_t len = 0;
	int rc, err;

	err = file_read(path, &buf, &len, SL_CONFIG_MAX_BYTES);
	if (err == -EFBIG) {
		sl_diag_add(d, SL_DIAG_ERROR, "%s: larger than %u bytes, the limit for one input",
			    path, SL_CONFIG_MAX_BYTES);
		return err;
	}
	if (err) {
		sl_diag_add(d, SL_DIAG_ERROR, "%s: %s", path, strerror(-err));
		return err;
	}
	rc = sl_config_parse(c, path, buf, len, d);
	free(buf);
	return rc;
}

json_t *sl_config_to_json(const struct sl_config *c)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < c->n; i++) {
		const json_t *doc = sl_resource_json(c->v[i]);

		if (!doc || json_array_append(a, (json_t *)doc)) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int sl_config_from_json(struct sl_config *c, const char *name, const json_t *docs,
			struct sl_diags *d)
{
	struct ydoc **ys = NULL, **srcs = NULL;
	const struct ynode **nodes = NULL;
	size_t ny = 0, n = 0;
	char *text;
	int rc;

	if (!json_is_array(docs)) {
		sl_diag_add(d, SL_DIAG_ERROR, "%s: must be an array of documents", name);
		return -EINVAL;
	}
	/* Validate through the YAML path (JSON is YAML): positions are those of
	 * this text, which is the file if it was written with the same flags. */
	text = json_dumps(docs, SL_CONFIG_JSON_FLAGS);
	if (!text) {
		sl_diag_add(d, SL_DIAG_ERROR, "%s: out of memory", name);
		return -ENOMEM;
	}
	rc = yaml_parse_stored(name, text, strlen(text), &ys, &ny, d);
	if (rc)
		goto out;
	n = ny == 1 ? ys[0]->root->n : 0;
	nodes = calloc(n ?: 1, sizeof(*nodes));
	srcs = calloc(n ?: 1, sizeof(*srcs));
	if (!nodes || !srcs) {
		sl_diag_add(d, SL_DIAG_ERROR, "%s: out of memory", name);
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		nodes[i] = ys[0]->root->items[i];
		srcs[i] = ys[0];
	}
	/* positions in this text, which no one wrote, are not kept */
	rc = add_documents(c, srcs, nodes, n, false, d);
out:
	for (size_t i = 0; i < ny; i++)
		ydoc_unref(ys[i]);
	free(ys);
	free(srcs);
	free(nodes);
	free(text);
	return rc;
}
