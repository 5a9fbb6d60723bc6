/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * apply.h - the agent's one apply path, for both --snapshot and --control:
 * a snapshot parsed in full, then applied to the identity and policy maps,
 * tc on the local pods' veths, the service maps, and handed to the proxy
 * (as the caller's text for it: without services, see struct sync_snap);
 * the capture switch; and <run dir>/status.json after each apply.
 *
 * Contract: a snapshot that does not parse changes nothing; one that
 * parses is applied as far as it goes and the failure logged (the next
 * apply reconciles again from the whole snapshot).
 */
#ifndef SL_AGENT_APPLY_H
#define SL_AGENT_APPLY_H

#include <stdbool.h>

#include <jansson.h>
#include <stddef.h>

#include "agent/certs.h"
#include "agent/datapath.h"
#include "agent/options.h"
#include "agent/proxysup.h"
#include "agent/sync.h"
#include "agent/telemetry.h"
#include "lib/node/snapshot.h"
#include "lib/core/loop.h"

/* What an apply hands on to the node proxy (--control mode; all NULL
 * without one). */
struct proxy_side {
	struct psup *ps;
	struct certs *certs;
	struct loop *loop;
};

struct pushed_ctx {
	const struct agent_opts *o;
	struct datapath *dp;
	struct telemetry *tm;
	struct proxy_side ps;
	struct snap_cache cache;   /* services of the last pushed snapshot */
};

/* Whether --sockmap turns the fast path on, given what the probes found. */
bool fastpath_wanted(const struct agent_opts *o, const struct datapath *dp);

/* <run dir>/status.json, for `sluicectl status` and `version`. */
void write_status(const struct agent_opts *o, const struct datapath *dp,
		  const struct telemetry *tm, const struct psup *ps);

/* sync.c's apply function (sync_new's arg is a struct pushed_ctx):
 * 0, or -errno with the reason in err. */
int apply_pushed(void *arg, const struct sync_snap *sn, const char *src, char *err,
		 size_t errlen);

/* Apply the snapshot file at `path` if its content differs from *last
 * (the text last applied, which it then replaces). */
void apply_file(struct datapath *dp, struct telemetry *tm, const char *path,
		char **last, size_t *last_len);

/* Capture on (at --capture-addr or the outbound listener's address, per
 * family) or off. */
void capture_set(const struct agent_opts *o, struct datapath *dp, bool on);

#endif /* SL_AGENT_APPLY_H */
