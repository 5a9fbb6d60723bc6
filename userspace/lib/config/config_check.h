/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * config_check.h - cross-resource checks on a whole config: what no single
 * document can say (config_check.c). Run after every change that parsed,
 * before the config is stored or compiled.
 */
#ifndef SL_CONFIG_CHECK_H
#define SL_CONFIG_CHECK_H

#include "lib/config/config.h"

/*
 * Overlapping VIPs, VirtualService hosts and DestinationRule hosts that
 * name no service, selectors that match no workload (warning), duplicate
 * workload addresses. 0 if no errors, else -EINVAL (errors in d), or
 * -ENOMEM.
 */
int sl_config_check(const struct sl_config *c, struct sl_diags *d);

/* The same, and on success the model it read c as (config_model.h) in
 * *keep, for the compile of the same c (sl_compile_mesh_with), which then
 * need not read it again; the caller frees it (sl_model_free and free)
 * or hands it on. */
struct sl_model;
int sl_config_check_keep(const struct sl_config *c, struct sl_diags *d, struct sl_model **keep);

#endif /* SL_CONFIG_CHECK_H */
