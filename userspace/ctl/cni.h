/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cni.h - the podman network files install writes when cni.enabled is
 * set (docs/cni.md).
 */
#ifndef SL_CTL_CNI_H
#define SL_CTL_CNI_H

#include <stddef.h>

#include <jansson.h>

#include "ctl/plan.h"

/* cni.subnet's gateway (its first address); -EINVAL with the reason. */
int cni_subnet(const json_t *prof, char *gw, size_t gwlen, char *err, size_t errlen);
/* With cni.enabled: ETC/cni/NET.conflist chaining sluice-cni, and
 * ETC/containers.conf pointing podman at it. 0 or -errno (printed). */
int cni_files_write(const struct plan *p);

#endif /* SL_CTL_CNI_H */
