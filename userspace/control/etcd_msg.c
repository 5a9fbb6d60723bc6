// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * etcd_msg.c - the readers of etcd's answers and base64 (etcd_msg.h has
 * the contract); no network.
 *
 * etcd 3.4's gateway speaks the gRPC messages as JSON: bytes fields
 * (keys, values) in base64, int64 fields as JSON strings, and fields at
 * their zero value left out ("succeeded": false, "kvs": [], "deleted":
 * "0" are absent). Errors come as {"error", "message", "code"}; a watch
 * stream's lines as {"result": WatchResponse} or {"error": {...}}.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "control/etcd_msg.h"

/* ---- base64 --------------------------------------------------------------- */

char *etcd_b64_encode(const void *data, size_t len)
{
	size_t olen = 4 * ((len + 2) / 3) + 1;
	char *out;

	if (len > INT_MAX / 2)
		return NULL;
	out = malloc(olen);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int etcd_b64_decode(const char *s, size_t slen, char **out, size_t *outlen)
{
	size_t pad = 0;
	char *buf;
	int n;

	*out = NULL;
	*outlen = 0;
	/* EVP_DecodeBlock skips white space and counts the padding as zero
	 * bytes: the input is checked strictly here and the padding taken off */
	if (slen % 4 || slen > INT_MAX / 2)
		return -EINVAL;
	while (pad < 2 && pad < slen && s[slen - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < slen - pad; i++)
		if (!b64_char(s[i]))
			return -EINVAL;
	buf = malloc(slen / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	n = slen ? EVP_DecodeBlock((unsigned char *)buf, (const unsigned char *)s, (int)slen) : 0;
	if (n < 0 || (size_t)n < pad) {
		free(buf);
		return -EINVAL;
	}
	*outlen = (size_t)n - pad;
	buf[*outlen] = '\0';
	*out = buf;
	return 0;
}

/* ---- response parsers ------------------------------------------------------ */

/* An int64 field: a JSON string of digits (the gateway's form) or an
 * integer; absent is 0. -EPROTO if malformed. */
static int get_i64(const json_t *obj, const char *name, int64_t *v)
{
	json_t *f = json_object_get(obj, name);
	const char *s;
	char *end;
	long long x;

	*v = 0;
	if (!f)
		return 0;
	if (json_is_integer(f)) {
		*v = json_integer_value(f);
		return 0;
	}
	s = json_string_value(f);
	if (!s || !*s || strlen(s) != json_string_length(f))
		return -EPROTO;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || *end)
		return -EPROTO;
	*v = x;
	return 0;
}

static int header_rev(const json_t *j, int64_t *rev)
{
	json_t *h = json_object_get(j, "header");

	*rev = 0;
	if (h && !json_is_object(h))
		return -EPROTO;
	return h ? get_i64(h, "revision", rev) : 0;
}

static json_t *load(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j = json_loadb(body, len, 0, &jerr);

	if (!j)
		snprintf(err, errlen, "etcd: unreadable response: %s", jerr.text);
	else if (!json_is_object(j)) {
		snprintf(err, errlen, "etcd: unreadable response: not an object");
		json_decref(j);
		j = NULL;
	}
	return j;
}

int etcd_parse_error(const char *body, size_t len, char *msg, size_t msglen, int *code)
{
	json_t *j = json_loadb(body, len, 0, NULL), *e;
	const char *m = NULL;
	int64_t c = 0;

	*code = 0;
	if (!json_is_object(j)) {
		json_decref(j);
		return -EPROTO;
	}
	e = json_object_get(j, "error");
	if (json_is_object(e)) {             /* a stream's error */
		m = json_string_value(json_object_get(e, "message"));
		if (get_i64(e, "grpc_code", &c))
			c = 0;
	} else {
		m = json_string_value(json_object_get(j, "message")) ?: json_string_value(e);
		if (get_i64(j, "code", &c))
			c = 0;
	}
	if (m)
		snprintf(msg, msglen, "%s", m);
	*code = c >= 0 && c < 64 ? (int)c : 0;
	json_decref(j);
	return m ? 0 : -EPROTO;
}

void etcd_kvs_free(struct etcd_kv *kvs, size_t n)
{
	for (size_t i = 0; kvs && i < n; i++) {
		free(kvs[i].key);
		free(kvs[i].value);
	}
	free(kvs);
}

/* One base64 string field into a malloc'd buffer; absent is empty. */
static int get_bytes(const json_t *obj, const char *name, char **out, size_t *len)
{
	json_t *f = json_object_get(obj, name);

	if (f && !json_is_string(f))
		return -EINVAL;
	return etcd_b64_decode(f ? json_string_value(f) : "", f ? json_string_length(f) : 0,
			       out, len);
}

static int parse_kv(const json_t *o, struct etcd_kv *kv)
{
	size_t klen;

	if (!json_is_object(o) || get_bytes(o, "key", &kv->key, &klen))
		return -EPROTO;
	if (klen == 0 || strlen(kv->key) != klen)   /* keys are C strings here */
		return -EPROTO;
	if (get_bytes(o, "value", &kv->value, &kv->vlen) ||
	    get_i64(o, "mod_revision", &kv->mod_revision) ||
	    get_i64(o, "create_revision", &kv->create_revision) ||
	    get_i64(o, "version", &kv->version))
		return -EPROTO;
	return 0;
}

int etcd_parse_range(const char *body, size_t len, struct etcd_kv **kvs, size_t *n,
		     int64_t *rev, char *err, size_t errlen)
{
	json_t *j = load(body, len, err, errlen), *a;
	struct etcd_kv *v = NULL;
	size_t i = 0, cnt;

	*kvs = NULL;
	*n = 0;
	if (!j)
		return -EPROTO;
	a = json_object_get(j, "kvs");
	if (header_rev(j, rev) || (a && !json_is_array(a)))
		goto bad;
	cnt = json_array_size(a);
	if (cnt) {
		v = calloc(cnt, sizeof(*v));
		if (!v) {
			snprintf(err, errlen, "out of memory");
			json_decref(j);
			return -ENOMEM;
		}
	}
	for (i = 0; i < cnt; i++)
		if (parse_kv(json_array_get(a, i), &v[i])) {
			i++;     /* its half-parsed fields are freed too */
			goto bad;
		}
	json_decref(j);
	*kvs = v;
	*n = cnt;
	return 0;
bad:
	etcd_kvs_free(v, i);
	json_decref(j);
	snprintf(err, errlen, "etcd: unreadable range response");
	return -EPROTO;
}

int etcd_parse_write(const char *body, size_t len, int64_t *rev, int64_t *deleted,
		     bool *succeeded, char *err, size_t errlen)
{
	json_t *j = load(body, len, err, errlen), *s;
	int64_t d = 0;

	if (!j)
		return -EPROTO;
	s = json_object_get(j, "succeeded");
	if (header_rev(j, rev) || get_i64(j, "deleted", &d) || (s && !json_is_boolean(s))) {
		json_decref(j);
		snprintf(err, errlen, "etcd: unreadable response");
		return -EPROTO;
	}
	if (deleted)
		*deleted = d;
	if (succeeded)
		*succeeded = json_is_true(s);
	json_decref(j);
	return 0;
}

int etcd_parse_watch(const char *line, size_t len, struct etcd_watch_msg *m)
{
	json_t *j = json_loadb(line, len, 0, NULL), *r, *ev;
	int code;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(j))
		goto bad;
	r = json_object_get(j, "result");
	if (!r) {
		if (etcd_parse_error(line, len, m->error, sizeof(m->error), &code))
			goto bad;
		json_decref(j);
		return 0;
	}
	ev = json_object_get(r, "events");
	if (!json_is_object(r) || header_rev(r, &m->revision) ||
	    get_i64(r, "compact_revision", &m->compact_revision) || (ev && !json_is_array(ev)))
		goto bad;
	m->created = json_is_true(json_object_get(r, "created"));
	m->canceled = json_is_true(json_object_get(r, "canceled"));
	if (m->canceled)
		snprintf(m->error, sizeof(m->error), "%s",
			 json_string_value(json_object_get(r, "cancel_reason")) ?: "watch canceled");
	m->nevents = json_array_size(ev);
	for (size_t i = 0; i < m->nevents; i++) {
		json_t *kv = json_object_get(json_array_get(ev, i), "kv");
		int64_t mr;

		if (!json_is_object(kv) || get_i64(kv, "mod_revision", &mr))
			goto bad;
		if (mr > m->last_event_rev)
			m->last_event_rev = mr;
	}
	json_decref(j);
	return 0;
bad:
	json_decref(j);
	snprintf(m->error, sizeof(m->error), "etcd: unreadable watch response");
	return -EPROTO;
}
