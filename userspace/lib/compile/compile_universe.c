// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * compile_universe.c - every identity a policy can name as a source, for
 * one compilation (compile_universe.h): the reserved ones, one per
 * workload identity, and one per CIDR an AuthorizationPolicy lists.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/compile/compile_universe.h"
#include "lib/core/addr.h"

static int uni_cmp(const void *a, const void *b)
{
	const struct sl_idinfo *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static int uni_add(struct sl_cctx *x, size_t *cap, struct sl_idinfo info)
{
	if (x->nuni == *cap) {
		struct sl_idinfo *v = realloc(x->uni, (*cap = *cap * 2 + 64) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->uni = v;
	}
	x->uni[x->nuni++] = info;
	return 0;
}

/* A CIDR of some policy: its identity, unless it is one workload address
 * (then the workload's identity is what the kernel sees). */
static int add_cidr(struct sl_cctx *x, size_t *cap, const char *text)
{
	struct sl_ipcache_key k;
	char canon[80], key[96];
	uint32_t id;

	if (cidr_parse(text, &k))
		return 0;
	for (size_t i = 0; k.prefixlen == 128 && i < x->m.nwl; i++)
		if ((x->m.wl[i].has4 && !memcmp(x->m.wl[i].addr4, k.addr, 16)) ||
		    (x->m.wl[i].has6 && !memcmp(x->m.wl[i].addr6, k.addr, 16)))
			return 0;
	for (size_t i = 0; i < x->nuni; i++)
		if (x->uni[i].cidr && !memcmp(&x->uni[i].key, &k, sizeof(k)))
			return 0;
	cidr_fmt(&k, canon, sizeof(canon));
	snprintf(key, sizeof(key), "cidr:%s", canon);
	id = sl_ids_get(x->ids, key);
	if (!id || uni_add(x, cap, (struct sl_idinfo){ .id = id, .cidr = true, .key = k }))
		return -ENOMEM;
	return json_array_append_new(x->cidrs, json_pack("{s:s, s:I}", "cidr", canon,
							 "identity", (json_int_t)id)) ? -ENOMEM : 0;
}

/* Every CIDR any policy names, wherever it stands. */
static int collect_cidrs(struct sl_cctx *x, size_t *cap, const json_t *j)
{
	static const char *const keys[] = { "ipBlocks", "notIpBlocks", "remoteIpBlocks",
					    "notRemoteIpBlocks", NULL };
	const char *k, *key;
	json_t *v;
	size_t i;
	int rc;

	if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			rc = collect_cidrs(x, cap, v);
			if (rc)
				return rc;
		}
		return 0;
	}
	key = json_string_value(json_object_get(j, "key"));
	json_object_foreach((json_t *)j, k, v) {
		bool lists = false;

		for (const char *const *c = keys; *c; c++)
			lists |= !strcmp(*c, k);
		lists |= key && (!strcmp(key, "source.ip") || !strcmp(key, "remote.ip")) &&
			(!strcmp(k, "values") || !strcmp(k, "notValues"));
		if (lists) {
			json_t *c;

			json_array_foreach(v, i, c) {
				rc = add_cidr(x, cap, json_string_value(c));
				if (rc)
					return rc;
			}
		} else if (json_is_object(v) || json_is_array(v)) {
			rc = collect_cidrs(x, cap, v);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int sl_compile_universe(struct sl_cctx *x)
{
	size_t cap = 0;

	x->wl_id = calloc(x->m.nwl + 1, sizeof(*x->wl_id));
	x->principals = calloc(x->m.nwl + 1, sizeof(*x->principals));
	x->cidrs = json_array();
	if (!x->wl_id || !x->principals || !x->cidrs)
		return -ENOMEM;
	for (uint32_t id = SL_ID_UNKNOWN; id <= SL_ID_PROXY; id++)
		if (uni_add(x, &cap, (struct sl_idinfo){ .id = id }))
			return -ENOMEM;
	for (size_t i = 0; i < x->m.nwl; i++) {
		char spiffe[600];

		sl_wl_spiffe(&x->m.wl[i], x->td, spiffe, sizeof(spiffe));
		x->wl_id[i] = sl_ids_get(x->ids, spiffe);
		x->principals[i] = strdup(spiffe + strlen("spiffe://"));
		if (!x->wl_id[i] || !x->principals[i])
			return -ENOMEM;
	}
	for (size_t i = 0; i < x->m.nwl; i++)
		if (uni_add(x, &cap, (struct sl_idinfo){ .id = x->wl_id[i],
			    .principal = x->principals[i], .ns = x->m.wl[i].ns }))
			return -ENOMEM;
	/* one entry per identity, not per workload */
	qsort(x->uni, x->nuni, sizeof(*x->uni), uni_cmp);
	{
		size_t k = 0;

		for (size_t i = 0; i < x->nuni; i++)
			if (!k || x->uni[k - 1].id != x->uni[i].id)
				x->uni[k++] = x->uni[i];
		x->nuni = k;
	}
	for (size_t i = 0; i < x->naps; i++)
		if (collect_cidrs(x, &cap, json_object_get(sl_resource_json(x->aps[i]), "spec")))
			return -ENOMEM;
	qsort(x->uni, x->nuni, sizeof(*x->uni), uni_cmp);
	return 0;
}
