/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * diag.h - diagnostics: what a parser or checker found, one line each
 * ("FILE:LINE:COLUMN: ..." for config), as an error, a warning, or an
 * informational line (a document that is not the mesh's, skipped).
 * Adding never fails: a line that memory could not hold is still counted.
 */
#ifndef SL_DIAG_H
#define SL_DIAG_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* A value quoted in a diagnostic is cut to this many bytes and "...". */
#define SL_CONFIG_QUOTE_MAX  64

enum sl_diag_level { SL_DIAG_WARNING, SL_DIAG_ERROR, SL_DIAG_INFO };

struct sl_diag {
	enum sl_diag_level level;
	char *msg;                 /* the whole line, without "error: " */
};

struct sl_diags {
	size_t n, cap;
	size_t nerrors, nwarnings, ninfos;
	struct sl_diag *v;
};

void sl_diags_free(struct sl_diags *d);
/* "error: MSG" / "warning: MSG" / "info: MSG", one per line. */
void sl_diags_print(const struct sl_diags *d, FILE *f);
/* All diagnostics as a JSON array of {"level": ..., "message": ...}. */
json_t *sl_diags_json(const struct sl_diags *d);

/* Append a diagnostic (the whole line). */
__attribute__((format(printf, 3, 4)))
void sl_diag_add(struct sl_diags *d, enum sl_diag_level level, const char *fmt, ...);

/* `s` as a diagnostic quotes it: at most SL_CONFIG_QUOTE_MAX bytes, then
 * "..." (a hostile 8 MB name must not make an 8 MB message). buf holds
 * SL_CONFIG_QUOTE_MAX + 4 bytes; SL_CLIP() gives one that lives as long
 * as the enclosing block. */
const char *sl_clip(const char *s, char *buf);
#define SL_CLIP(s) sl_clip((s), (char[SL_CONFIG_QUOTE_MAX + 4]){ 0 })

/* How every message names a resource: "Kind ns/name", or "Kind name" for
 * a cluster-scoped one (ns "" or NULL: a Namespace). buf holds
 * SL_RES_ID_MAX bytes (a longer id is cut); SL_RES_ID() gives one that
 * lives as long as the enclosing block. The parts are as given: quote
 * untrusted ones with SL_CLIP(). */
#define SL_RES_ID_MAX 640
const char *sl_res_id(const char *kind, const char *ns, const char *name, char *buf);
#define SL_RES_ID(kind, ns, name) sl_res_id((kind), (ns), (name), (char[SL_RES_ID_MAX]){ 0 })

#endif /* SL_DIAG_H */
