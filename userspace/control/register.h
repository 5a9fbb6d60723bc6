/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * register.h - workload auto-registration (POST /v1/workloads), as Istio's
 * WorkloadGroup auto-registration: a node's agent registers a container
 * the runtime started on it; the control plane turns it into a
 * WorkloadEntry made from a WorkloadGroup's template.
 *
 * Request bodies (JSON), from a node's certificate:
 *   {"op": "register", "container": ID, "namespace": NS, "serviceAccount": SA,
 *    "labels": {..}, "address": IP, "netns": PATH, "interface": IFNAME,
 *    "cgroup": PATH}
 *   {"op": "deregister", "container": ID}
 *
 * Authorization: a node registers workloads only on itself (the entry's
 * sluice.io/node is the node of the certificate, never the body's), only
 * in a namespace holding a WorkloadGroup whose template.serviceAccount is
 * SA, and replaces or removes only entries it registered itself (they
 * carry sluice.io/container and its node). The entry is named
 * GROUP-<first 12 hex digits of the container id>; its labels are the
 * group's spec.metadata.labels, the template's labels and the container's
 * labels (sluice.io/ ones excepted), in that order of precedence, lowest
 * first.
 *
 * Contract: pure; `cur` is never changed. Returns an HTTP status: 200 with
 * *out the new config (NULL: nothing to change, e.g. deregistering an
 * entry that is gone) and `name` the entry's name (when there is one); else 400 (malformed
 * body), 403 (not allowed) or 422 (the entry does not validate), with the
 * reason in err, and *out NULL.
 */
#ifndef SL_CONTROL_REGISTER_H
#define SL_CONTROL_REGISTER_H

#include <stddef.h>

#include <jansson.h>

#include "lib/config/config.h"

#define REG_ID_CHARS 12   /* container id digits in the entry's name */

int reg_change(const struct sl_config *cur, const char *node, const json_t *body,
	       struct sl_config **out, char *name, size_t namelen, char *err, size_t errlen);

#endif /* SL_CONTROL_REGISTER_H */
