// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * labels.c - the names metrics and flow events carry: each identity's
 * workload, namespace and principal, each service id's name, taken from
 * every applied snapshot (agent/labels.h).
 */
#include <stdlib.h>
#include <string.h>

#include "agent/labels.h"
#include "agent/telemetry.h"
#include "lib/core/log.h"
#include "sluice_lb.h"
#include "sluice_policy.h"

/* The names of one identity: t->names, sorted by id.
 * NULL where the labels have none. */
struct tm_name {
	uint32_t id;
	size_t order;   /* the workload's place in the labels; SIZE_MAX: none */
	const char *workload, *ns, *principal;
};

static int tm_name_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct tm_name *)a)->id, y = ((const struct tm_name *)b)->id;

	return x < y ? -1 : x > y;
}

static int tm_name_order(const void *a, const void *b)
{
	const struct tm_name *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Index the labels by identity: its principal (SPIFFE id), and the
 * workload and namespace of the first workload that has it. */
static void names_index(struct telemetry *t)
{
	const struct snapshot *s = &t->labels;
	size_t n = 0, k = 0;

	t->names = calloc(s->nidentities + s->nworkloads + 1, sizeof(*t->names));
	if (!t->names)
		return;
	for (size_t i = 0; i < s->nidentities; i++)
		t->names[n++] = (struct tm_name){ .id = s->identities[i].id, .order = SIZE_MAX,
						  .principal = s->identities[i].spiffe };
	for (size_t i = 0; i < s->nworkloads; i++)
		t->names[n++] = (struct tm_name){ .id = s->workloads[i].identity, .order = i,
						  .workload = s->workloads[i].name,
						  .ns = s->workloads[i].ns };
	/* by id, and within an id the first workload first */
	qsort(t->names, n, sizeof(*t->names), tm_name_order);
	for (size_t i = 0, j; i < n; i = j) {
		struct tm_name m = t->names[i];

		for (j = i + 1; j < n && t->names[j].id == m.id; j++)
			if (!m.principal)
				m.principal = t->names[j].principal;
		t->names[k++] = m;
	}
	t->nnames = k;
}

struct tm_names labels_of(const struct telemetry *t, uint32_t id)
{
	struct tm_names n = { "unknown", "unknown", "unknown" };
	const struct tm_name key = { .id = id }, *f;

	if (id == SL_ID_WORLD)
		n.workload = n.ns = n.principal = "world";
	f = t->names ? bsearch(&key, t->names, t->nnames, sizeof(*t->names), tm_name_cmp) : NULL;
	if (f && f->principal)
		n.principal = f->principal;
	if (f && f->workload) {
		n.workload = f->workload;
		n.ns = f->ns;
	}
	return n;
}

const char *labels_service(const struct telemetry *t, uint32_t svc_id)
{
	if (!svc_id || svc_id > SL_MAX_SERVICES || !t->svc_names || !t->svc_names[svc_id])
		return "unknown";
	return t->svc_names[svc_id];
}

static void labels_drop(struct telemetry *t)
{
	free(t->names);
	t->names = NULL;
	t->nnames = 0;
	free(t->labels.identities);
	free(t->labels.workloads);
	memset(&t->labels, 0, sizeof(t->labels));
}

static void svc_names_free(struct telemetry *t)
{
	for (size_t i = 0; t->svc_names && i < t->nsvc_named; i++)
		free(t->svc_names[t->svc_named[i]]);
	free(t->svc_names);
	free(t->svc_named);
	t->svc_names = NULL;
	t->svc_named = NULL;
	t->nsvc_named = 0;
}

/* an empty array may be NULL, which memcpy must not be passed even for 0 bytes */
#define DUP_ARRAY(dst, src, n) \
	((dst) = malloc(((n) ?: 1) * sizeof(*(src))), \
	 (dst) && (n) ? memcpy((dst), (src), (n) * sizeof(*(src))) : NULL)

/* Service names by id: only a name that changed is written, and ids no
 * service has any more lose theirs. */
static void svc_names_set(struct telemetry *t, const struct snapshot *s, const uint32_t *svc_ids)
{
	uint64_t *now = calloc((SL_MAX_SERVICES + 64) / 64, sizeof(*now));
	uint32_t *named = malloc((s->nservices ?: 1) * sizeof(*named));
	size_t n = 0;

	if (!t->svc_names)
		t->svc_names = calloc(SL_MAX_SERVICES + 1, sizeof(*t->svc_names));
	if (!now || !named || !t->svc_names) {
		log_err("telemetry: out of memory for service names");
		svc_names_free(t);
		goto out;
	}
	for (size_t i = 0; svc_ids && i < s->nservices; i++) {
		uint32_t id = svc_ids[i];
		char **name;

		if (!id || id > SL_MAX_SERVICES || (now[id / 64] >> (id % 64)) & 1)
			continue;
		now[id / 64] |= 1ull << (id % 64);
		named[n++] = id;
		name = &t->svc_names[id];
		if (*name && strcmp(*name, s->services[i].name) == 0)
			continue;
		free(*name);
		*name = strdup(s->services[i].name);
	}
	for (size_t i = 0; i < t->nsvc_named; i++) {
		uint32_t id = t->svc_named[i];

		if (!((now[id / 64] >> (id % 64)) & 1)) {
			free(t->svc_names[id]);
			t->svc_names[id] = NULL;
		}
	}
	free(t->svc_named);
	t->svc_named = named;
	t->nsvc_named = n;
	named = NULL;
out:
	free(now);
	free(named);
}

void labels_set(struct telemetry *t, const struct snapshot *s, const uint32_t *svc_ids)
{
	labels_drop(t);
	t->labels.nidentities = s->nidentities;
	t->labels.nworkloads = s->nworkloads;
	DUP_ARRAY(t->labels.identities, s->identities, s->nidentities);
	DUP_ARRAY(t->labels.workloads, s->workloads, s->nworkloads);
	if (!t->labels.identities || !t->labels.workloads) {
		log_err("telemetry: out of memory for labels");
		labels_drop(t);
	}
	names_index(t);
	svc_names_set(t, s, svc_ids);
}

void labels_free(struct telemetry *t)
{
	labels_drop(t);
	svc_names_free(t);
}
