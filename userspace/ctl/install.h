/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * install.h - `sluicectl install`'s waits, which verify-install shares:
 * the agents in sync with the control plane, and the node proxy serving.
 */
#ifndef SL_CTL_INSTALL_H
#define SL_CTL_INSTALL_H

#include <stddef.h>

#include <jansson.h>

#include "ctl/plan.h"

/* Every agent of the plan connected to the control plane and in sync:
 * 0, or -ETIMEDOUT with what was seen in why. */
int wait_in_sync(const struct plan *p, int timeout_ms, char *why, size_t wlen);

/* The node proxy that serves for the agent whose status.json is `status`
 * (a live process in state "serving"), or NULL. */
json_t *serving_proxy(json_t *status);

#endif /* SL_CTL_INSTALL_H */
