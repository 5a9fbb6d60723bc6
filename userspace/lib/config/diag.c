// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * diag.c - diagnostics (diag.h): a growing list of lines, each an error,
 * a warning or an informational line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config/diag.h"

static void diag_vadd(struct sl_diags *d, enum sl_diag_level level, const char *fmt,
		      va_list ap)
{
	char *msg = NULL;

	if (d->n == d->cap) {
		size_t cap = d->cap * 2 + 8;
		struct sl_diag *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			goto count;
		d->v = v;
		d->cap = cap;
	}
	if (vasprintf(&msg, fmt, ap) < 0)
		goto count;
	d->v[d->n++] = (struct sl_diag){ .level = level, .msg = msg };
count:
	/* an error is counted even when memory ran out to record it */
	if (level == SL_DIAG_ERROR)
		d->nerrors++;
	else if (level == SL_DIAG_WARNING)
		d->nwarnings++;
	else
		d->ninfos++;
}

void sl_diag_add(struct sl_diags *d, enum sl_diag_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, level, fmt, ap);
	va_end(ap);
}

const char *sl_clip(const char *s, char *buf)
{
	size_t n = SL_CONFIG_QUOTE_MAX;

	if (strnlen(s, n + 1) <= n)
		return s;
	/* whole UTF-8 characters only: messages go into JSON too */
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

void sl_diags_free(struct sl_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static const char *level_name(enum sl_diag_level l)
{
	return l == SL_DIAG_ERROR ? "error" : l == SL_DIAG_WARNING ? "warning" : "info";
}

void sl_diags_print(const struct sl_diags *d, FILE *f)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(f, "%s: %s\n", level_name(d->v[i].level), d->v[i].msg);
}

json_t *sl_diags_json(const struct sl_diags *d)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < d->n; i++) {
		if (json_array_append_new(a, json_pack("{s:s, s:s}", "level",
						       level_name(d->v[i].level),
						       "message", d->v[i].msg))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

const char *sl_res_id(const char *kind, const char *ns, const char *name, char *buf)
{
	snprintf(buf, SL_RES_ID_MAX, "%s %s%s%s", kind, ns ?: "", ns && *ns ? "/" : "", name);
	return buf;
}
