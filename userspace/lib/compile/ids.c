// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ids.c - SPIFFE ID -> numeric identity (ids.h): a sorted array, looked up
 * by binary search, persisted by the control plane as JSON.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/compile/ids.h"
#include "sluice_policy.h"

struct sl_ids {
	size_t n, cap;
	struct id_ent { char *key; uint32_t id; } *v;  /* sorted by key */
	uint32_t next;
};

struct sl_ids *sl_ids_new(void)
{
	struct sl_ids *ids = calloc(1, sizeof(*ids));

	if (ids)
		ids->next = SL_ID_FIRST_WORKLOAD;
	return ids;
}

void sl_ids_free(struct sl_ids *ids)
{
	if (!ids)
		return;
	for (size_t i = 0; i < ids->n; i++)
		free(ids->v[i].key);
	free(ids->v);
	free(ids);
}

static size_t ids_slot(const struct sl_ids *ids, const char *key, bool *found)
{
	size_t lo = 0, hi = ids->n;

	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(key, ids->v[mid].key);

		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int ids_insert(struct sl_ids *ids, const char *key, uint32_t id)
{
	bool found;
	size_t i = ids_slot(ids, key, &found);
	char *k;

	if (found)
		return -EEXIST;
	if (ids->n == ids->cap) {
		size_t cap = ids->cap * 2 + 64;
		struct id_ent *v = realloc(ids->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ids->v = v;
		ids->cap = cap;
	}
	k = strdup(key);
	if (!k)
		return -ENOMEM;
	memmove(&ids->v[i + 1], &ids->v[i], (ids->n - i) * sizeof(*ids->v));
	ids->v[i] = (struct id_ent){ k, id };
	ids->n++;
	return 0;
}

uint32_t sl_ids_get(struct sl_ids *ids, const char *spiffe)
{
	bool found;
	size_t i = ids_slot(ids, spiffe, &found);

	if (found)
		return ids->v[i].id;
	if (ids->next >= SL_ID_ANY - 1 || ids_insert(ids, spiffe, ids->next))
		return 0;
	return ids->next++;
}

json_t *sl_ids_to_json(const struct sl_ids *ids)
{
	json_t *m = json_object(), *j;

	for (size_t i = 0; m && i < ids->n; i++) {
		if (json_object_set_new(m, ids->v[i].key, json_integer(ids->v[i].id))) {
			json_decref(m);
			return NULL;
		}
	}
	j = m ? json_pack("{s:I, s:o}", "next", (json_int_t)ids->next, "ids", m) : NULL;
	return j;
}

int sl_ids_from_json(struct sl_ids *ids, const json_t *j)
{
	const json_t *m = json_object_get(j, "ids"), *next = json_object_get(j, "next");
	const char *k;
	json_t *v;

	if (!json_is_object(m) || !json_is_integer(next) ||
	    json_integer_value(next) < SL_ID_FIRST_WORKLOAD ||
	    json_integer_value(next) >= SL_ID_ANY)
		return -EINVAL;
	ids->next = (uint32_t)json_integer_value(next);
	json_object_foreach((json_t *)m, k, v) {
		json_int_t id = json_integer_value(v);

		if (!json_is_integer(v) || id < SL_ID_FIRST_WORKLOAD || id >= ids->next)
			return -EINVAL;
		if (ids_insert(ids, k, (uint32_t)id))
			return -EINVAL;
	}
	/* numbers are never reused: refuse two keys with one number */
	for (size_t i = 0; i < ids->n; i++)
		for (size_t x = i + 1; x < ids->n && ids->n < 4096; x++)
			if (ids->v[i].id == ids->v[x].id)
				return -EINVAL;
	return 0;
}
