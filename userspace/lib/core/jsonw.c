// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* jsonw.c - JSON text straight into a byte queue, as jansson writes it
 * (jsonw.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/core/jsonw.h"

void jw_raw(struct jsonw *w, const char *s, size_t n)
{
	if (!w->err && buf_add(w->q, s, n))
		w->err = true;
}

void jw_lit(struct jsonw *w, const char *s)
{
	jw_raw(w, s, strlen(s));
}

size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 :
		     s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;

	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong forms, surrogates and code points past U+10FFFF */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return len;
}

void jw_str(struct jsonw *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *run = p;
	size_t left = strlen(s);
	char esc[8];

	jw_raw(w, "\"", 1);
	while (*p) {
		unsigned char c = *p;
		size_t k;

		if (c >= 0x80) {
			k = utf8_seq(p, left);
			if (!k) {
				w->err = true;
				return;
			}
			p += k;
			left -= k;
			continue;
		}
		if (c >= 0x20 && c != '"' && c != '\\') {
			p++;
			left--;
			continue;
		}
		jw_raw(w, (const char *)run, (size_t)(p - run));
		switch (c) {
		case '"':  jw_raw(w, "\\\"", 2); break;
		case '\\': jw_raw(w, "\\\\", 2); break;
		case '\b': jw_raw(w, "\\b", 2); break;
		case '\f': jw_raw(w, "\\f", 2); break;
		case '\n': jw_raw(w, "\\n", 2); break;
		case '\r': jw_raw(w, "\\r", 2); break;
		case '\t': jw_raw(w, "\\t", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04X", c);
			jw_raw(w, esc, 6);
		}
		run = ++p;
		left--;
	}
	jw_raw(w, (const char *)run, (size_t)(p - run));
	jw_raw(w, "\"", 1);
}

/* Digits by hand: a compiled service's text holds dozens of numbers, and
 * snprintf parses its format for each. */
static void jw_digits(struct jsonw *w, bool neg, uint64_t v)
{
	char b[24], *p = b + sizeof(b);

	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	if (neg)
		*--p = '-';
	jw_raw(w, p, (size_t)(b + sizeof(b) - p));
}

void jw_int(struct jsonw *w, long long v)
{
	jw_digits(w, v < 0, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

void jw_u64(struct jsonw *w, uint64_t v)
{
	jw_digits(w, false, v);
}

void jw_real(struct jsonw *w, double v)
{
	char b[48], *e;
	int n;

	if (!isfinite(v)) {
		w->err = true;
		return;
	}
	n = snprintf(b, sizeof(b) - 2, "%.17g", v);
	if (n <= 0 || (size_t)n >= sizeof(b) - 2) {
		w->err = true;
		return;
	}
	if (!strpbrk(b, ".e")) {
		b[n++] = '.';
		b[n++] = '0';
		b[n] = '\0';
	}
	e = strchr(b, 'e');
	if (e) {   /* "1e+20" -> "1e20", "1e-05" -> "1e-5" */
		char *from = e + 1, *to = e + 1;

		if (*from == '-')
			from = ++to;
		else if (*from == '+')
			from++;
		while (*from == '0' && from[1])
			from++;
		memmove(to, from, strlen(from) + 1);
		n = (int)strlen(b);
	}
	jw_raw(w, b, (size_t)n);
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An object's members, keys sorted or in their order. */
static void jw_object(struct jsonw *w, const json_t *j, bool sorted)
{
	const char *small[16], **keys = small, *key;
	size_t n = json_object_size(j), i = 0;
	json_t *v;

	if (!sorted || n < 2) {
		jw_raw(w, "{", 1);
		json_object_foreach((json_t *)j, key, v) {
			if (i++)
				jw_raw(w, ",", 1);
			jw_str(w, key);
			jw_raw(w, ":", 1);
			jw_json(w, v, sorted);
		}
		jw_raw(w, "}", 1);
		return;
	}
	if (n > sizeof(small) / sizeof(small[0]) && !(keys = malloc(n * sizeof(*keys)))) {
		w->err = true;
		return;
	}
	json_object_foreach((json_t *)j, key, v)
		keys[i++] = key;
	qsort(keys, n, sizeof(*keys), key_cmp);
	jw_raw(w, "{", 1);
	for (i = 0; i < n; i++) {
		if (i)
			jw_raw(w, ",", 1);
		jw_str(w, keys[i]);
		jw_raw(w, ":", 1);
		jw_json(w, json_object_get(j, keys[i]), sorted);
	}
	jw_raw(w, "}", 1);
	if (keys != small)
		free(keys);
}

void jw_json(struct jsonw *w, const json_t *j, bool sorted)
{
	size_t i;

	if (w->err)
		return;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		jw_object(w, j, sorted);
		return;
	case JSON_ARRAY:
		jw_raw(w, "[", 1);
		for (i = 0; i < json_array_size(j); i++) {
			if (i)
				jw_raw(w, ",", 1);
			jw_json(w, json_array_get(j, i), sorted);
		}
		jw_raw(w, "]", 1);
		return;
	case JSON_STRING:
		jw_str(w, json_string_value(j));
		return;
	case JSON_INTEGER:
		jw_int(w, (long long)json_integer_value(j));
		return;
	case JSON_REAL:
		jw_real(w, json_real_value(j));
		return;
	case JSON_TRUE:
		jw_raw(w, "true", 4);
		return;
	case JSON_FALSE:
		jw_raw(w, "false", 5);
		return;
	case JSON_NULL:
		jw_raw(w, "null", 4);
		return;
	}
}
