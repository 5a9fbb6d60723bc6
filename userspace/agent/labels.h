/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * labels.h - the names metrics and flow events carry (telemetry's labels):
 * an identity's workload, namespace and principal ("unknown" where the
 * snapshot has none, "world" for addresses outside the mesh), a service
 * id's name. Set from every applied snapshot; lookups are binary searches
 * and array reads, cheap enough for every flow event.
 */
#ifndef SL_AGENT_LABELS_H
#define SL_AGENT_LABELS_H

#include <stdint.h>

#include "lib/node/snapshot.h"

struct telemetry;

struct tm_names {
	const char *workload, *ns, *principal;
};

/* Take the names of s (svc_ids: the service ids lbmap gave s's services,
 * in order; may be NULL). */
void labels_set(struct telemetry *t, const struct snapshot *s, const uint32_t *svc_ids);
struct tm_names labels_of(const struct telemetry *t, uint32_t identity);
const char *labels_service(const struct telemetry *t, uint32_t svc_id);
void labels_free(struct telemetry *t);

#endif /* SL_AGENT_LABELS_H */
