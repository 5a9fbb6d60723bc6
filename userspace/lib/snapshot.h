/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * snapshot.h - a node's desired state, the JSON document the agent reads
 * from --snapshot (and the control plane will push). Format: docs/snapshot.md.
 *
 * Parsing is strict: unknown fields, wrong types, bad addresses, duplicate
 * VIPs and out-of-range numbers are refused with a message naming the source
 * and the field ("snap.json: services[1].backends[0].weight: ..."). A refused
 * snapshot produces no struct snapshot, so nothing downstream can apply half
 * of it.
 */
#ifndef SL_SNAPSHOT_H
#define SL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "sluice_lb.h"

#define SL_NAME_MAX 254

struct snap_backend {
	struct sl_backend be;     /* address, port, proto as the map holds them */
	uint32_t weight;          /* 1 .. SL_WEIGHT_MAX */
};

struct snap_service {
	char name[SL_NAME_MAX + 1];
	struct sl_svc_key key;
	size_t nbackends;
	struct snap_backend *backends;
};

struct snapshot {
	uint64_t version;
	size_t nservices;
	struct snap_service *services;
};

/* 0, or -EINVAL with a message in err. `src` names the input in messages. */
int snapshot_parse(const char *text, size_t len, const char *src,
		   struct snapshot *out, char *err, size_t errlen);
int snapshot_load(const char *path, struct snapshot *out, char *err, size_t errlen);
void snapshot_free(struct snapshot *s);

#endif /* SL_SNAPSHOT_H */
