// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * YAML text -> position-carrying trees (config_yaml.h), and the queries
 * on them.
 *
 * The builder (libfyaml's events into ynodes, with the limits and sluice's
 * own decoding of single-quoted scalars) is most of it and one piece; the
 * queries after it read the tree it builds. The trees written out (as
 * JSON) and JSON written as YAML are in config_yaml_out.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

#include "lib/config/config_yaml.h"
#include "lib/core/jsonw.h"

/* What one input may hold (config.h); the stored config is bounded by what
 * was accepted, so it is read with the depth limit only. */
struct ylimits {
	size_t bytes, docs, nodes, scalar;
};

static const struct ylimits input_limits = {
	.bytes = SL_CONFIG_MAX_BYTES, .docs = SL_CONFIG_MAX_DOCS,
	.nodes = SL_CONFIG_MAX_NODES, .scalar = SL_CONFIG_MAX_SCALAR,
};
static const struct ylimits stored_limits = {
	.bytes = SIZE_MAX, .docs = SIZE_MAX, .nodes = SIZE_MAX, .scalar = SIZE_MAX,
};

/*
 * The memory of one input's documents: blocks that grow in size, carved in
 * order and freed all at once when the last document of the input goes.
 * One malloc per block rather than per node, text or document: 10,000
 * documents of some 75 nodes each take about 20 blocks, and their memory
 * is what the nodes use (a block per document would leave half of each
 * unused).
 */
struct yblock {
	struct yblock *next;
	size_t used, cap;
	void *data[];
};

struct yarena {
	int refs;                     /* documents that live in it */
	struct yblock *blocks;
};

#define YBLOCK_MIN (16u << 10)
#define YBLOCK_MAX (1u << 20)

static void *ya_alloc(struct yarena *a, size_t n)
{
	struct yblock *b = a->blocks;

	n = (n + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
	if (!b || b->cap - b->used < n) {
		size_t cap = b ? (b->cap < YBLOCK_MAX ? b->cap * 2 : b->cap) : YBLOCK_MIN;

		while (cap < n)
			cap *= 2;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = a->blocks;
		b->used = 0;
		b->cap = cap;
		a->blocks = b;
	}
	b->used += n;
	return (char *)b->data + b->used - n;
}

static void yarena_unref(struct yarena *a)
{
	if (!a || __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	while (a->blocks) {
		struct yblock *next = a->blocks->next;

		free(a->blocks);
		a->blocks = next;
	}
	free(a);
}

static char *ya_strndup(struct yarena *a, const char *s, size_t len)
{
	char *out = ya_alloc(a, len + 1);

	if (out) {
		memcpy(out, s, len);
		out[len] = '\0';
	}
	return out;
}

struct ydoc *ydoc_ref(struct ydoc *y)
{
	__atomic_add_fetch(&y->refs, 1, __ATOMIC_RELAXED);
	return y;
}

void ydoc_unref(struct ydoc *y)
{
	if (!y || __atomic_sub_fetch(&y->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	yarena_unref(y->arena);   /* y lives in it */
}

/* Builder state: a stack of open collections. For a mapping, `pending`
 * holds the key read and waiting for its value. */
struct ybuild {
	const char *file;
	const char *buf;              /* the input, for scalars decoded here */
	size_t len;
	struct sl_diags *d;
	const struct ylimits *lim;
	struct ynode *stack[SL_CONFIG_MAX_DEPTH];
	struct ynode *pending[SL_CONFIG_MAX_DEPTH];
	int depth;
	struct ynode *root;
	struct yarena *mem;           /* the input's (struct ydoc) */
	char *file_copy;              /* file, in mem: the documents' */
	size_t docs, nodes;
	int err;
};

static int items_append(struct ybuild *b, struct ynode *c, struct ynode *x)
{
	if (c->n + 2 > c->cap) { /* room for a pair; the old array stays unused */
		size_t cap = c->cap * 2 + 8;
		struct ynode **v = ya_alloc(b->mem, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		if (c->n)
			memcpy(v, c->items, c->n * sizeof(*v));
		c->items = v;
		c->cap = cap;
	}
	c->items[c->n++] = x;
	return 0;
}

/* Attach a finished node to the open collection (or make it the root). */
static int attach(struct ybuild *b, struct ynode *x)
{
	struct ynode *top;

	if (b->depth == 0) {
		b->root = x;
		return 0;
	}
	top = b->stack[b->depth - 1];
	if (top->type == YN_SEQ)
		return items_append(b, top, x);
	if (!b->pending[b->depth - 1]) {
		if (x->type != YN_SCALAR) {
			sl_diag_add(b->d, SL_DIAG_ERROR, "%s:%d:%d: mapping keys must be scalars",
				    b->file, x->line, x->col);
			return -EINVAL;
		}
		b->pending[b->depth - 1] = x;
		return 0;
	}
	if (items_append(b, top, b->pending[b->depth - 1]))
		return -ENOMEM;
	b->pending[b->depth - 1] = NULL;
	return items_append(b, top, x);
}

/* An error at the event's start: -EINVAL. */
__attribute__((format(printf, 3, 4)))
static int event_err(struct ybuild *b, struct fy_event *e, const char *fmt, ...)
{
	const struct fy_mark *m = fy_event_start_mark(e);
	char text[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	sl_diag_add(b->d, SL_DIAG_ERROR, "%s:%d:%d: %s", b->file, m ? m->line + 1 : 0,
		    m ? m->column + 1 : 0, text);
	return -EINVAL;
}

/* A new node, counted against the input's limit: NULL with *err set. */
static struct ynode *ynode_new(struct ybuild *b, enum ynode_type t, struct fy_event *e, int *err)
{
	const struct fy_mark *m = fy_event_start_mark(e);
	struct ynode *n;

	if (++b->nodes > b->lim->nodes) {
		*err = event_err(b, e, "more than %zu nodes (values, keys, lists and mappings) "
				 "in one input: the limit is %zu", b->lim->nodes, b->lim->nodes);
		return NULL;
	}
	n = ya_alloc(b->mem, sizeof(*n));
	*err = n ? 0 : -ENOMEM;
	if (!n)
		return NULL;
	*n = (struct ynode){ .type = t };
	n->line = m ? m->line + 1 : 0;
	n->col = m ? m->column + 1 : 0;
	return n;
}

static int key_order(const void *a, const void *b)
{
	const struct ynode *x = *(const struct ynode *const *)a, *y = *(const struct ynode *const *)b;
	int c = strcmp(x->str, y->str);

	if (c)
		return c;
	return x->line != y->line ? (x->line < y->line ? -1 : 1) : (x->col > y->col) - (x->col < y->col);
}

/*
 * Duplicate keys of a finished mapping (libfyaml's event parser does not
 * check them). Sorted, equal keys sit side by side: a mapping of 100,000
 * keys costs n log n, not n^2. The duplicate that comes first in the text
 * is reported.
 */
static int check_dup_keys(struct ybuild *b, const struct ynode *map)
{
	const struct ynode **k, *dup = NULL, *first = NULL;

	if (map->n < 2)
		return 0;
	k = malloc(map->n * sizeof(*k));
	if (!k)
		return -ENOMEM;
	for (size_t i = 0; i < map->n; i++)
		k[i] = map->items[2 * i];
	qsort(k, map->n, sizeof(*k), key_order);
	for (size_t i = 1; i < map->n; i++) {
		if (strcmp(k[i - 1]->str, k[i]->str) == 0 &&
		    (!dup || k[i]->line < dup->line || (k[i]->line == dup->line && k[i]->col < dup->col))) {
			dup = k[i];
			first = k[i - 1];
		}
	}
	free(k);
	if (!dup)
		return 0;
	sl_diag_add(b->d, SL_DIAG_ERROR, "%s:%d:%d: duplicate key \"%s\" (first at line %d)",
		    b->file, dup->line, dup->col, SL_CLIP(dup->str), first->line);
	return -EINVAL;
}

static bool is_break(char c)
{
	return c == '\n' || c == '\r';
}

/* [p, stop) of a single-quoted scalar's line, '' as one quote, to out. */
static size_t unquote(char *out, const char *p, const char *stop)
{
	size_t n = 0;

	while (p < stop) {
		out[n++] = *p;
		p += *p == '\'' && p + 1 < stop ? 2 : 1;
	}
	return n;
}

/*
 * A single-quoted scalar's text from its source between the quotes, as
 * YAML 1.2 reads it: '' is a quote; a line break folds to a space, n
 * breaks with only blanks between them to n - 1 newlines, and the blanks
 * around a break go. libfyaml 0.7.12 reads runs of '' wrong (the value
 * of k: '''''  ' comes out as three quotes and a space, not two quotes
 * and two spaces) and leaks its buffer for a run of six or more, so
 * single-quoted text is decoded here. The output is never longer than
 * the input.
 */
static char *single_quoted(const char *p, const char *end, size_t *len)
{
	char *out = malloc(end - p + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	while (p < end) {
		const char *eol = p, *t;
		int breaks = 0;

		while (eol < end && !is_break(*eol))
			eol++;
		if (eol == end) {
			o += unquote(out + o, p, end);
			break;
		}
		for (t = eol; t > p && (t[-1] == ' ' || t[-1] == '\t'); t--)
			;
		o += unquote(out + o, p, t);
		for (p = eol; p < end && is_break(*p); breaks++) {
			p += *p == '\r' && p + 1 < end && p[1] == '\n' ? 2 : 1;
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
		}
		if (breaks == 1)
			out[o++] = ' ';
		while (--breaks > 0)
			out[o++] = '\n';
	}
	out[o] = '\0';
	*len = o;
	return out;
}

/* A scalar's text, in the document's memory. */
static char *scalar_text(struct ybuild *b, struct fy_event *e, size_t *len)
{
	const struct fy_mark *s = fy_event_start_mark(e), *end = fy_event_end_mark(e);
	const char *text;

	if (fy_token_scalar_style(e->scalar.value) == FYSS_SINGLE_QUOTED && s && end &&
	    s->input_pos <= end->input_pos && end->input_pos <= b->len) {
		char *q = single_quoted(b->buf + s->input_pos, b->buf + end->input_pos, len);
		char *out = q ? ya_strndup(b->mem, q, *len) : NULL;

		free(q);
		return out;
	}
	text = fy_token_get_text(e->scalar.value, len);
	if (!text)
		*len = 0;
	return ya_strndup(b->mem, text ?: "", *len);
}

static int on_event(struct ybuild *b, struct fy_event *e)
{
	struct ynode *n;
	const struct fy_mark *m;
	char *text;
	size_t len;
	int err;

	switch (e->type) {
	case FYET_DOCUMENT_START:
		if (++b->docs > b->lim->docs)
			return event_err(b, e, "more than %zu documents in one input: the limit "
					 "is %zu", b->lim->docs, b->lim->docs);
		return 0;
	case FYET_SCALAR:
		len = 0;
		text = scalar_text(b, e, &len);
		if (!text)
			return -ENOMEM;
		if (len > b->lim->scalar)
			return event_err(b, e, "a value of %zu bytes: the limit is %zu", len,
					 b->lim->scalar);
		n = ynode_new(b, YN_SCALAR, e, &err);
		if (!n)
			return err;
		n->str = text;
		n->plain = fy_token_scalar_style(e->scalar.value) == FYSS_PLAIN;
		/* libfyaml marks a quoted scalar at its text; point at the quote */
		if ((fy_token_scalar_style(e->scalar.value) == FYSS_SINGLE_QUOTED ||
		     fy_token_scalar_style(e->scalar.value) == FYSS_DOUBLE_QUOTED) && n->col > 1)
			n->col--;
		n->n = 0;
		/* a map keeps pairs in items[]; count pairs, not items */
		return attach(b, n);
	case FYET_MAPPING_START:
	case FYET_SEQUENCE_START:
		if (b->depth == SL_CONFIG_MAX_DEPTH)
			return event_err(b, e, "nesting deeper than %d levels", SL_CONFIG_MAX_DEPTH);
		n = ynode_new(b, e->type == FYET_MAPPING_START ? YN_MAP : YN_SEQ, e, &err);
		if (!n)
			return err;
		b->pending[b->depth] = NULL;
		b->stack[b->depth++] = n;
		return 0;
	case FYET_MAPPING_END:
	case FYET_SEQUENCE_END:
		n = b->stack[--b->depth];
		if (n->type == YN_MAP)
			n->n /= 2; /* items were appended one by one */
		err = n->type == YN_MAP ? check_dup_keys(b, n) : 0;
		if (err)
			return err;
		if (!n->line && n->n) { /* no mark for an implicit start: its first item's */
			n->line = n->items[0]->line;
			n->col = n->items[0]->col;
		}
		return attach(b, n);
	case FYET_ALIAS:
		m = fy_event_start_mark(e);
		sl_diag_add(b->d, SL_DIAG_ERROR,
			    "%s:%d:%d: YAML aliases are not supported; write the value out",
			    b->file, m ? m->line + 1 : 0, m ? m->column : 0); /* at the '*' */
		return -EINVAL;
	default:
		return 0;
	}
}

/* Drop what a build left open (its memory goes with the input's). */
static void build_abort(struct ybuild *b)
{
	b->depth = 0;
	b->root = NULL;
}

/* The finished document (root, in b->mem) to *docs: it holds a reference
 * to the input's memory. */
static int docs_append(struct ydoc ***docs, size_t *n, struct ybuild *b)
{
	struct ydoc **v = *docs, *y;

	/* room doubles at each power of two: 10,000 documents, 14 copies */
	if (*n >= 8 && (*n & (*n - 1)) == 0)
		v = realloc(*docs, 2 * *n * sizeof(*v));
	else if (*n == 0)
		v = malloc(8 * sizeof(*v));
	if (!v)
		return -ENOMEM;
	*docs = v;
	y = ya_alloc(b->mem, sizeof(*y));
	if (!y)
		return -ENOMEM;
	*y = (struct ydoc){ .refs = 1, .file = b->file_copy, .root = b->root, .arena = b->mem };
	b->mem->refs++;
	b->root = NULL;
	v[(*n)++] = y;
	return 0;
}

/* Move libfyaml's collected errors into d. */
static void drain_fy_errors(struct fy_diag *diag, const char *file, struct sl_diags *d)
{
	struct fy_diag_error *de;
	void *it = NULL;
	bool any = false;

	while ((de = fy_diag_errors_iterate(diag, &it)) != NULL) {
		if (de->type < FYET_ERROR)
			continue;
		sl_diag_add(d, SL_DIAG_ERROR, "%s:%d:%d: YAML syntax: %s", file, de->line,
			    de->column, de->msg);
		any = true;
	}
	if (!any)
		sl_diag_add(d, SL_DIAG_ERROR, "%s: YAML syntax error", file);
}

/* Line and column (1-based) of byte `off` of buf. */
static void position(const char *buf, size_t off, int *line, int *col)
{
	const char *p = buf, *nl;

	*line = 1;
	while ((nl = memchr(p, '\n', (size_t)(buf + off - p))) != NULL) {
		p = nl + 1;
		(*line)++;
	}
	*col = (int)(buf + off - p) + 1;
}

/*
 * What is refused before libfyaml sees the text: an input over the size
 * limit, and bytes that are not UTF-8 (YAML text is Unicode; libfyaml
 * 0.7.12 also loops forever on some of them, in a directive).
 */
static int check_text(const char *file, const char *buf, size_t len, const struct ylimits *lim,
		      struct sl_diags *d)
{
	size_t off = 0, k;
	int line, col;

	if (len > lim->bytes) {
		position(buf, lim->bytes, &line, &col);
		sl_diag_add(d, SL_DIAG_ERROR, "%s:%d:%d: the input goes on past %zu bytes (%zu in "
			    "all): the limit is %zu", file, line, col, lim->bytes, len, lim->bytes);
		return -EFBIG;
	}
	while (off < len) {
		if ((unsigned char)buf[off] < 0x80) {
			off++;
			continue;
		}
		k = utf8_seq((const unsigned char *)buf + off, len - off);
		if (!k) {
			position(buf, off, &line, &col);
			sl_diag_add(d, SL_DIAG_ERROR, "%s:%d:%d: byte 0x%02x is not UTF-8 text", file,
				    line, col, (unsigned char)buf[off]);
			return -EINVAL;
		}
		off += k;
	}
	return 0;
}

static int parse_stream(const char *file, const char *buf, size_t len, const struct ylimits *lim,
			struct ydoc ***docs, size_t *ndocs, struct sl_diags *d)
{
	struct fy_diag_cfg dcfg;
	struct fy_diag *diag = NULL;
	struct fy_parser *fyp = NULL;
	struct ybuild b = { .file = file, .buf = buf, .len = len, .d = d, .lim = lim };
	struct fy_event *e;
	int rc;

	*docs = NULL;
	*ndocs = 0;
	rc = check_text(file, buf, len, lim, d);
	if (rc)
		return rc;
	rc = -EINVAL;
	b.mem = calloc(1, sizeof(*b.mem));
	if (!b.mem)
		goto nomem;
	b.mem->refs = 1;            /* the build's, dropped at the end */
	b.file_copy = ya_strndup(b.mem, file, strlen(file));
	if (!b.file_copy)
		goto nomem;
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.colorize = false;
	diag = fy_diag_create(&dcfg);
	if (!diag)
		goto nomem;
	fy_diag_set_collect_errors(diag, true);
	{
		struct fy_parse_cfg cfg = { .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2,
					    .diag = diag };

		fyp = fy_parser_create(&cfg);
	}
	if (!fyp || fy_parser_set_string(fyp, buf, len))
		goto nomem;
	while ((e = fy_parser_parse(fyp)) != NULL) {
		int err = on_event(&b, e);

		/* an empty document ("---" and nothing) is a null scalar: skip it */
		if (!err && e->type == FYET_DOCUMENT_END && b.root && b.root->type == YN_SCALAR &&
		    yscalar_kind(b.root) == YS_NULL)
			build_abort(&b);
		if (!err && e->type == FYET_DOCUMENT_END && b.root)
			err = docs_append(docs, ndocs, &b);
		fy_parser_event_free(fyp, e);
		if (err == -ENOMEM)
			goto nomem;
		if (err) {
			rc = err;
			goto out;
		}
	}
	if (fy_parser_get_stream_error(fyp)) {
		drain_fy_errors(diag, file, d);
		goto out;
	}
	rc = 0;
	goto out;
nomem:
	rc = -ENOMEM;
	sl_diag_add(d, SL_DIAG_ERROR, "%s: out of memory", file);
out:
	if (rc) {
		build_abort(&b);
		for (size_t i = 0; i < *ndocs; i++)
			ydoc_unref((*docs)[i]);
		free(*docs);
		*docs = NULL;
		*ndocs = 0;
	}
	if (fyp)
		fy_parser_destroy(fyp);
	if (diag)
		fy_diag_destroy(diag);
	yarena_unref(b.mem);
	return rc;
}

int yaml_parse_stream(const char *file, const char *buf, size_t len,
		      struct ydoc ***docs, size_t *ndocs, struct sl_diags *d)
{
	return parse_stream(file, buf, len, &input_limits, docs, ndocs, d);
}

int yaml_parse_stored(const char *file, const char *buf, size_t len,
		      struct ydoc ***docs, size_t *ndocs, struct sl_diags *d)
{
	return parse_stream(file, buf, len, &stored_limits, docs, ndocs, d);
}

/* ---- queries ------------------------------------------------------------ */

/* [-+]?[0-9]+ */
static bool is_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float(const char *s)
{
	size_t digits = 0;

	if (*s == '-' || *s == '+')
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		digits++;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			digits++;
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E')
		return is_int(s + 1);
	return !*s;
}

enum yscalar yscalar_kind(const struct ynode *n)
{
	const char *s = n->str;

	if (!n->plain)
		return YS_STR;
	switch (*s) {   /* the first byte rules out all but a few words */
	case '\0':
		return YS_NULL;
	case '~': case 'n': case 'N':
		return !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
		       !strcmp(s, "NULL") ? YS_NULL : YS_STR;
	case 't': case 'T': case 'f': case 'F':
		return !strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") ||
		       !strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE") ?
		       YS_BOOL : YS_STR;
	case '-': case '+': case '.':
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return is_int(s) ? YS_INT : is_float(s) ? YS_FLOAT : YS_STR;
	default:
		return YS_STR;
	}
}

const struct ynode *ymap_get(const struct ynode *map, const char *key)
{
	if (!map || map->type != YN_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->items[2 * i]->str, key) == 0)
			return map->items[2 * i + 1];
	return NULL;
}

const struct ynode *ynode_at(const struct ynode *root, const char *path)
{
	const struct ynode *n = root;
	const char *p = path;

	while (n && *p) {
		char key[128];
		size_t k = strcspn(p, ".[");
		const struct ynode *next;

		if (k) {
			snprintf(key, sizeof(key), "%.*s", (int)k, p);
			next = ymap_get(n, key);
			if (!next)
				return n;
			n = next;
			p += k;
		}
		while (*p == '[') {
			unsigned long i = strtoul(p + 1, (char **)&p, 10);

			if (*p == ']')
				p++;
			if (n->type != YN_SEQ || i >= n->n)
				return n;
			n = n->items[i];
		}
		if (*p == '.')
			p++;
	}
	return n;
}
