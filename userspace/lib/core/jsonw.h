/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * jsonw.h - JSON text written straight into a byte queue (buf.h), for hot
 * paths that would otherwise build a jansson tree only to print it, or
 * print one with jansson's slower writer (the flow log, the stored form of
 * a parsed resource, snapshot items' keys and packed texts).
 *
 * Contract: the text is byte for byte what jansson's json_dumps() with
 * JSON_COMPACT writes for the same values: strings escape '"', '\\' and
 * control characters (\b \f \n \r \t, else \u and four hex digits in
 * capitals, as \u001F); reals are "%.17g" with ".0" added to an integral
 * value and the exponent without '+' or leading zeros. A failure (out of
 * memory, a string that is not UTF-8, a real that is not finite: what
 * jansson refuses) sets `err` and the writer then writes nothing more.
 */
#ifndef SL_JSONW_H
#define SL_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/core/buf.h"

struct jsonw {
	struct buf *q;
	bool err;
};

/* Bytes as they are (punctuation, a key already known to need no escape). */
void jw_raw(struct jsonw *w, const char *s, size_t n);
void jw_lit(struct jsonw *w, const char *s);
/* A string (NUL-terminated) in quotes, escaped. */
void jw_str(struct jsonw *w, const char *s);
void jw_int(struct jsonw *w, long long v);
void jw_u64(struct jsonw *w, uint64_t v);
void jw_real(struct jsonw *w, double v);

/* A jansson value as json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) writes
 * it (members in their order), or with JSON_SORT_KEYS too (sorted: by
 * strcmp). For hot paths: jansson's writer allocates per object and
 * grows its buffer from 16 bytes. Strings end at their first NUL (trees
 * parsed without JSON_ALLOW_NUL, or built from C strings, hold none). */
void jw_json(struct jsonw *w, const json_t *j, bool sorted);

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0:
 * overlong forms, surrogates and code points past U+10FFFF are not. */
size_t utf8_seq(const unsigned char *s, size_t n);

#endif /* SL_JSONW_H */
