// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * snapdelta.c - snapshots as item sets and the deltas between them
 * (snapdelta.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "lib/core/jsonw.h"
#include "lib/wire/snapdelta.h"

/* The key of an item: 16 bytes of SHA-256 of its canonical text (compact,
 * keys sorted), in hex. */
static void key_of_text(const char *text, size_t len, char key[SD_KEY_MAX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)text, len, md);
	for (int i = 0; i < 16; i++) {
		key[2 * i] = hex[md[i] >> 4];
		key[2 * i + 1] = hex[md[i] & 15];
	}
	key[32] = '\0';
}

/* An item's canonical text (compact, keys sorted) into q, emptied first:
 * 0 or -ENOMEM. */
static int canonical(const json_t *item, struct buf *q)
{
	struct jsonw w = { .q = q };

	q->off = q->len = 0;
	jw_json(&w, item, true);
	return w.err ? -ENOMEM : 0;
}

/* The text of one item at a time is written into one buffer per thread,
 * kept between items: a fresh 4 KiB block for each of 10,000 services
 * cost glibc a walk of its free lists every time. A buffer an unusually
 * large item grew is given back. */
static __thread struct buf scratch;

static void scratch_done(void)
{
	if (scratch.cap > 64u << 10)
		buf_free(&scratch);
}

int sd_item_key(const json_t *item, char key[SD_KEY_MAX])
{
	int e = canonical(item, &scratch);

	if (!e)
		key_of_text((const char *)scratch.d, scratch.len, key);
	scratch_done();
	return e;
}

int sd_item_key_packed(const json_t *item, char key[SD_KEY_MAX], json_t **packed)
{
	int e = canonical(item, &scratch);

	*packed = e ? NULL : json_stringn_nocheck((const char *)scratch.d, scratch.len);
	if (*packed)
		key_of_text((const char *)scratch.d, scratch.len, key);
	scratch_done();
	return *packed ? 0 : -ENOMEM;
}

int sd_set_add(json_t *set, const char *key, json_t *item)
{
	size_t before = json_object_size(set), n;
	char k[SD_KEY_MAX];

	/* keys are the hex of the item's text: an item found under its key
	 * is an equal one, which the set takes in its place */
	if (json_object_set_nocheck(set, key, item))
		return -ENOMEM;
	if (json_object_size(set) > before)
		return 0;
	/* a repeat of an item already in this array: KEY#2, KEY#3, ... */
	n = (size_t)snprintf(k, sizeof(k), "%s", key);
	for (unsigned int r = 2; n < sizeof(k); r++) {
		snprintf(k + n, SD_KEY_MAX - n, "#%u", r);
		if (!json_object_get(set, k))
			return json_object_set_nocheck(set, k, item) ? -ENOMEM : 0;
	}
	return -EINVAL;
}

static json_t *index_array(const json_t *arr, json_t *pool)
{
	json_t *set = json_object(), *item;
	char key[SD_KEY_MAX];
	size_t i;

	json_array_foreach(arr, i, item) {
		json_t *shared;

		if (!set || sd_item_key(item, key))
			goto fail;
		shared = pool ? json_object_get(pool, key) : NULL;
		if (!shared) {
			shared = item;
			if (pool && json_object_set(pool, key, item))
				goto fail;
		}
		if (sd_set_add(set, key, shared))
			goto fail;
	}
	return set;
fail:
	json_decref(set);
	return NULL;
}

json_t *sd_index_with(const json_t *snap, json_t *pool, const json_t *given)
{
	json_t *idx = json_object(), *v, *g;
	const char *sec;

	if (!idx || !json_is_object(snap))
		goto fail;
	json_object_foreach((json_t *)snap, sec, v) {
		if (strcmp(sec, "version") == 0)
			continue;
		if (json_is_object(v))   /* no section is an object (snapdelta.h) */
			goto fail;
		g = given ? json_object_get(given, sec) : NULL;
		if (json_object_set_new(idx, sec, g ? json_incref(g) : json_is_array(v) ?
					index_array(v, pool) : json_incref(v)))
			goto fail;
	}
	return idx;
fail:
	json_decref(idx);
	return NULL;
}

json_t *sd_index(const json_t *snap, json_t *pool)
{
	return sd_index_with(snap, pool, NULL);
}

void sd_pool_prune(json_t *pool)
{
	const char *key;
	json_t *item;
	void *tmp;

	json_object_foreach_safe(pool, tmp, key, item)
		if (item->refcount == 1)
			json_object_del(pool, key);
}

/* An array section's part of a delta: what `to` has that `from` lacks, and
 * the keys of what `from` has that `to` lacks. Two indexes of one sender
 * list most keys in the same order (both were built in the order of the
 * items), so the sets are walked side by side: a key at the same place in
 * both is in both, and only where they differ is a key looked up in the
 * other set. Any order gives the right part; this one makes it cheap. */
static json_t *array_delta(const json_t *from, const json_t *to, size_t *items)
{
	json_t *set = json_object(), *del = json_array(), *out = NULL;
	void *ia = json_object_iter((json_t *)from), *ib = json_object_iter((json_t *)to);

	if (!set || !del)
		goto done;
	while (ia || ib) {
		const char *ka = ia ? json_object_iter_key(ia) : NULL;
		const char *kb = ib ? json_object_iter_key(ib) : NULL;
		bool a_kept, b_old;

		if (ka && kb && strcmp(ka, kb) == 0) {
			ia = json_object_iter_next((json_t *)from, ia);
			ib = json_object_iter_next((json_t *)to, ib);
			continue;
		}
		b_old = kb && json_object_get(from, kb);
		a_kept = ka && json_object_get(to, ka);
		if (kb && !b_old) {
			if (json_object_set(set, kb, json_object_iter_value(ib)))
				goto done;
			(*items)++;
		}
		if (ka && !a_kept) {
			if (json_array_append_new(del, json_string(ka)))
				goto done;
			(*items)++;
		}
		/* a side moves on past a key found missing in the other; both
		 * when each key is in the other set (or a side has ended) */
		if (kb && (!b_old || a_kept || !ka))
			ib = json_object_iter_next((json_t *)to, ib);
		if (ka && (!a_kept || b_old || !kb))
			ia = json_object_iter_next((json_t *)from, ia);
	}
	if (json_object_size(set) == 0 && json_array_size(del) == 0)
		out = json_null();
	else
		out = json_pack("{s:O, s:O}", "set", set, "del", del);
done:
	json_decref(set);
	json_decref(del);
	return out;
}

/* An array section in indexed form is an object; any other value stays
 * what it was. Tell them apart by what the section was in `to`/`from`. */
static bool is_set(const json_t *v)
{
	return json_is_object(v);
}

void sd_memo_free(struct sd_memo *m)
{
	for (unsigned int i = 0; i < SD_MEMO_MAX; i++) {
		json_decref(m->e[i].from);
		json_decref(m->e[i].to);
		json_decref(m->e[i].part);
	}
	memset(m, 0, sizeof(*m));
}

void sd_memo_put(struct sd_memo *m, json_t *from, json_t *to, json_t *part, size_t items)
{
	unsigned int i = m->next++ % SD_MEMO_MAX;

	json_decref(m->e[i].from);
	json_decref(m->e[i].to);
	json_decref(m->e[i].part);
	m->e[i].from = json_incref(from);
	m->e[i].to = json_incref(to);
	m->e[i].part = json_incref(part);
	m->e[i].items = items;
}

/* array_delta(), or the memo's part if it has one for these very sets.
 * Only a part between sets that other indexes hold too is remembered: a
 * node's own sections would push the shared ones out of the memo. */
static json_t *array_delta_shared(json_t *from, json_t *to, size_t *items, struct sd_memo *m)
{
	unsigned int i;
	size_t n = 0;
	json_t *part;

	for (i = 0; m && i < SD_MEMO_MAX; i++)
		if (m->e[i].part && m->e[i].from == from && m->e[i].to == to) {
			*items += m->e[i].items;
			return json_incref(m->e[i].part);
		}
	part = array_delta(from, to, &n);
	*items += n;
	if (part && m && from->refcount > 1 && to->refcount > 1)
		sd_memo_put(m, from, to, part, n);
	return part;
}

json_t *sd_delta(const json_t *from, const json_t *to, size_t *items)
{
	return sd_delta_shared(from, to, items, NULL);
}

json_t *sd_delta_shared(const json_t *from, const json_t *to, size_t *items, struct sd_memo *m)
{
	json_t *d = json_object(), *tv, *fv;
	const char *sec;
	size_t dummy = 0;

	if (!items)
		items = &dummy;
	*items = 0;
	if (!d)
		return NULL;
	json_object_foreach((json_t *)to, sec, tv) {
		json_t *part;

		fv = from ? json_object_get(from, sec) : NULL;
		if (is_set(tv) && (!fv || is_set(fv))) {
			json_t *empty = fv ? NULL : json_object();

			part = fv ? array_delta_shared(fv, tv, items, m) :
				array_delta(empty, tv, items);
			json_decref(empty);
			if (!part)
				goto fail;
			if (json_is_null(part)) {
				json_decref(part);
				continue;
			}
		} else if (fv && json_equal(fv, tv)) {
			continue;
		} else {
			part = json_pack("{s:O}", "value", tv);
			(*items)++;
		}
		if (json_object_set_new(d, sec, part))
			goto fail;
	}
	json_object_foreach((json_t *)from, sec, fv)
		if (!json_object_get(to, sec)) {
			if (json_object_set_new(d, sec, json_pack("{s:b}", "drop", 1)))
				goto fail;
			(*items)++;
		}
	return d;
fail:
	json_decref(d);
	return NULL;
}

/* Is `part` (a delta's entry for section `sec`) applicable to idx? */
static int check_part(const json_t *idx, const char *sec, const json_t *part, char *err,
		      size_t errlen)
{
	const json_t *cur = json_object_get(idx, sec), *set, *del, *k;
	const char *key;
	json_t *item;
	size_t i;

	if (!json_is_object(part))
		goto bad;
	if (json_object_get(part, "value") || json_object_get(part, "drop")) {
		if (json_object_size(part) != 1 || json_is_object(json_object_get(part, "value")) ||
		    (json_object_get(part, "drop") && !json_is_true(json_object_get(part, "drop"))))
			goto bad;
		return 0;
	}
	set = json_object_get(part, "set");
	del = json_object_get(part, "del");
	if (!json_is_object(set) || !json_is_array(del) || json_object_size(part) != 2)
		goto bad;
	if (cur && !is_set(cur)) {
		if (json_array_size(del) == 0)
			return 0;   /* a list again: it replaces the value */
		snprintf(err, errlen, "delta: %s: items for a section that is not a list", sec);
		return -EINVAL;
	}
	json_array_foreach(del, i, k)
		if (!json_is_string(k) || !json_object_get(cur, json_string_value(k))) {
			snprintf(err, errlen, "delta: %s.del[%zu]: %s%s", sec, i,
				 json_is_string(k) ? json_string_value(k) : "not a string",
				 json_is_string(k) ? " is not in the snapshot it applies to" : "");
			return -ENOENT;
		}
	json_object_foreach((json_t *)set, key, item) {
		bool deleted = false;

		if (strlen(key) >= SD_KEY_MAX) {
			snprintf(err, errlen, "delta: %s.set: a key of %zu characters", sec, strlen(key));
			return -EINVAL;
		}
		json_array_foreach(del, i, k)
			deleted |= strcmp(json_string_value(k), key) == 0;
		if (cur && json_object_get(cur, key) && !deleted) {
			snprintf(err, errlen, "delta: %s.set: %s is already in the snapshot it "
				 "applies to", sec, key);
			return -EEXIST;
		}
	}
	return 0;
bad:
	snprintf(err, errlen, "delta: %s: not {set, del}, {value} or {drop: true}", sec);
	return -EINVAL;
}

/* Undo entry for section `sec` before `part` changes it. */
static int undo_part(json_t *undo, const json_t *idx, const char *sec, const json_t *part)
{
	const json_t *cur = json_object_get(idx, sec), *set = json_object_get(part, "set");
	json_t *uset, *udel, *k, *item;
	const char *key;
	size_t i;

	if (!cur)   /* a new section: drop it */
		return json_object_set_new(undo, sec, json_pack("{s:b}", "drop", 1));
	if (!is_set(cur))   /* a value: put it back */
		return json_object_set_new(undo, sec, json_pack("{s:O}", "value", cur));
	if (!set)   /* a list replaced or dropped: all its items back */
		return json_object_set_new(undo, sec, json_pack("{s:O, s:[]}", "set", cur, "del"));
	uset = json_object();
	udel = json_array();
	if (!uset || !udel)
		goto fail;
	json_array_foreach(json_object_get(part, "del"), i, k)
		if (json_object_set(uset, json_string_value(k),
				    json_object_get(cur, json_string_value(k))))
			goto fail;
	json_object_foreach((json_t *)set, key, item)
		if (json_array_append_new(udel, json_string(key)))
			goto fail;
	return json_object_set_new(undo, sec, json_pack("{s:o, s:o}", "set", uset, "del", udel));
fail:
	json_decref(uset);
	json_decref(udel);
	return -ENOMEM;
}

int sd_apply(json_t *idx, const json_t *delta, json_t **undo, char *err, size_t errlen)
{
	json_t *u = NULL, *part, *k, *item;
	const char *sec, *key;
	size_t i;
	int rc;

	if (undo)
		*undo = NULL;
	if (!json_is_object(idx) || !json_is_object(delta)) {
		snprintf(err, errlen, "delta: not an object");
		return -EINVAL;
	}
	json_object_foreach((json_t *)delta, sec, part) {
		rc = check_part(idx, sec, part, err, errlen);
		if (rc)
			return rc;
	}
	if (undo) {
		u = json_object();
		if (!u)
			goto oom;
		json_object_foreach((json_t *)delta, sec, part)
			if (undo_part(u, idx, sec, part))
				goto oom;
	}
	/* checked: from here only allocation can fail, and each step leaves
	 * idx a valid snapshot */
	json_object_foreach((json_t *)delta, sec, part) {
		json_t *cur = json_object_get(idx, sec);

		if (json_object_get(part, "drop")) {
			json_object_del(idx, sec);
			continue;
		}
		if (json_object_get(part, "value")) {
			if (json_object_set(idx, sec, json_object_get(part, "value")))
				goto oom;
			continue;
		}
		if (!cur || !is_set(cur)) {
			cur = json_object();
			if (json_object_set_new(idx, sec, cur))
				goto oom;
		}
		json_array_foreach(json_object_get(part, "del"), i, k)
			json_object_del(cur, json_string_value(k));
		json_object_foreach(json_object_get(part, "set"), key, item)
			if (json_object_set(cur, key, item))
				goto oom;
	}
	if (undo)
		*undo = u;
	return 0;
oom:
	json_decref(u);
	snprintf(err, errlen, "delta: out of memory");
	return -ENOMEM;
}

json_t *sd_snapshot(const json_t *idx, uint64_t version)
{
	json_t *snap = json_pack("{s:I}", "version", (json_int_t)version), *v, *item;
	const char *sec, *key;

	if (!snap)
		return NULL;
	json_object_foreach((json_t *)idx, sec, v) {
		json_t *arr;

		if (!is_set(v)) {
			if (json_object_set(snap, sec, v))
				goto fail;
			continue;
		}
		arr = json_array();
		if (json_object_set_new(snap, sec, arr))
			goto fail;
		json_object_foreach(v, key, item)
			if (json_array_append(arr, item))
				goto fail;
	}
	return snap;
fail:
	json_decref(snap);
	return NULL;
}

json_t *sd_packed(json_t *item)
{
	struct buf q = {};
	struct jsonw w = { .q = &q };
	json_t *packed = NULL;

	if (json_is_string(item))
		return json_incref(item);
	jw_json(&w, item, false);
	if (!w.err)
		packed = json_stringn_nocheck((const char *)q.d, q.len);
	buf_free(&q);
	return packed;
}

/* Each item of `set` as its compact text (a JSON string), in place. */
static int pack_set(json_t *set)
{
	const char *key;
	json_t *item;

	json_object_foreach(set, key, item) {
		json_t *packed;

		if (json_is_string(item))
			continue;
		packed = sd_packed(item);
		/* replacing the value in place keeps the iteration valid */
		if (!packed || json_object_iter_set_new(set, json_object_key_to_iter(key), packed))
			return -ENOMEM;
	}
	return 0;
}

int sd_pack(json_t *idx)
{
	const char *sec;
	json_t *v;
	int e;

	json_object_foreach(idx, sec, v)
		if (is_set(v) && (e = pack_set(v)))
			return e;
	return 0;
}

int sd_pack_delta(json_t *delta)
{
	const char *sec;
	json_t *part, *set;
	int e;

	json_object_foreach(delta, sec, part)
		if ((set = json_object_get(part, "set")) && json_is_object(set) &&
		    (e = pack_set(set)))
			return e;
	return 0;
}

/* Append n bytes to the growing text t (len, cap); -ENOMEM. */
static int put(char **t, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t nc = (*cap ? *cap * 2 : 4096) + n;
		char *nt = realloc(*t, nc);

		if (!nt)
			return -ENOMEM;
		*t = nt;
		*cap = nc;
	}
	memcpy(*t + *len, s, n);
	*len += n;
	(*t)[*len] = '\0';
	return 0;
}

static int put_json(char **t, size_t *len, size_t *cap, const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	int e = s ? put(t, len, cap, s, strlen(s)) : -ENOMEM;

	free(s);
	return e;
}

/* `,"key":` (no comma before the first member) */
static int put_key(char **t, size_t *len, size_t *cap, const char *key, bool first)
{
	json_t *name = json_string(key);
	int e = name ? 0 : -ENOMEM;

	e = e ?: first ? 0 : put(t, len, cap, ",", 1);
	e = e ?: put_json(t, len, cap, name);
	e = e ?: put(t, len, cap, ":", 1);
	json_decref(name);
	return e;
}

/* t, its length in *len, or NULL after error e (t freed) */
static char *text_done(char *t, size_t n, int e, size_t *len)
{
	if (e) {
		free(t);
		return NULL;
	}
	if (len)
		*len = n;
	return t;
}

/* Is `sec` one of the sections of the NULL-terminated list (NULL: none)? */
static bool named(const char *sec, const char *const *list)
{
	for (; list && *list; list++)
		if (strcmp(sec, *list) == 0)
			return true;
	return false;
}

/* The size of the packed items of idx plus a comma each, but those of
 * the sections written empty: sd_text()'s buffer is that and some,
 * allocated once (megabytes at 10,000 services). */
static size_t packed_size(const json_t *idx, const char *const *empty)
{
	const char *sec, *key;
	json_t *v, *item;
	size_t n = 0;

	json_object_foreach((json_t *)idx, sec, v) {
		if (!is_set(v) || named(sec, empty))
			continue;
		json_object_foreach(v, key, item)
			n += json_is_string(item) ? json_string_length(item) + 1 : 0;
	}
	return n;
}

char *sd_text_without(const json_t *idx, uint64_t version, const char *const *empty,
		      size_t *len)
{
	size_t cap = packed_size(idx, empty) + 4096, n = 0;
	char *t = malloc(cap), num[32];
	const char *sec, *key;
	json_t *v, *item;
	int e;

	if (!t)
		return NULL;
	snprintf(num, sizeof(num), "{\"version\":%llu", (unsigned long long)version);
	e = put(&t, &n, &cap, num, strlen(num));
	json_object_foreach((json_t *)idx, sec, v) {
		bool first = true;

		e = e ?: put_key(&t, &n, &cap, sec, false);
		if (!e && named(sec, empty)) {
			e = put(&t, &n, &cap, "[]", 2);
			continue;
		}
		if (!e && !is_set(v)) {
			e = put_json(&t, &n, &cap, v);
			continue;
		}
		e = e ?: put(&t, &n, &cap, "[", 1);
		json_object_foreach(v, key, item) {
			(void)key;
			e = e ?: first ? 0 : put(&t, &n, &cap, ",", 1);
			first = false;
			if (e)
				break;
			e = json_is_string(item) ?
				put(&t, &n, &cap, json_string_value(item), json_string_length(item)) :
				put_json(&t, &n, &cap, item);
		}
		e = e ?: put(&t, &n, &cap, "]", 1);
	}
	e = e ?: put(&t, &n, &cap, "}", 1);
	return text_done(t, n, e, len);
}

char *sd_text(const json_t *idx, uint64_t version, size_t *len)
{
	return sd_text_without(idx, version, NULL, len);
}

/* Delta object o at depth 0 (sections), 1 (a section's part) or 2 (the
 * items of a part's "set": packed ones written as their text). */
static int put_delta(char **t, size_t *len, size_t *cap, const json_t *o, int depth)
{
	const char *k;
	json_t *v;
	bool first = true;
	int e = put(t, len, cap, "{", 1);

	json_object_foreach((json_t *)o, k, v) {
		e = e ?: put_key(t, len, cap, k, first);
		first = false;
		if (e)
			break;
		if (depth == 2 && json_is_string(v))
			e = put(t, len, cap, json_string_value(v), json_string_length(v));
		else if ((depth == 0 || (depth == 1 && strcmp(k, "set") == 0)) && json_is_object(v))
			e = put_delta(t, len, cap, v, depth + 1);
		else
			e = put_json(t, len, cap, v);
	}
	return e ?: put(t, len, cap, "}", 1);
}

char *sd_delta_text(const json_t *delta, size_t *len)
{
	size_t n = 0, cap = 4096;
	char *t = malloc(cap);

	return t ? text_done(t, n, put_delta(&t, &n, &cap, delta, 0), len) : NULL;
}
