/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sync_snap.h - what the agent's link to the control plane (sync.h) hands
 * the function that applies a snapshot, and that function's type. Its own
 * header, since both halves of the link (sync.c, sync_watch.c) and the
 * apply side (apply.c) use it.
 */
#ifndef SL_AGENT_SYNC_SNAP_H
#define SL_AGENT_SYNC_SNAP_H

#include <stddef.h>

#include <jansson.h>

#include "lib/node/snapshot.h"

/* A snapshot to apply: its text (a whole snapshot received or read) or
 * its document (a delta applied to the one before; text NULL), and the
 * text the node proxy gets: the same without services, which the proxy
 * does not read (NULL: `text`, whole). */
struct sync_snap {
	const char *text;
	size_t len;
	json_t *doc;
	const char *proxy_text;
	size_t proxy_len;
	/* with a doc: the items the delta added, as received (before they
	 * were packed), for snapshot_from_json_cached() */
	const struct snap_fresh *fresh;
	size_t nfresh;
};

/* 0: applied; -errno: refused, nothing changed, reason in err. */
typedef int (*sync_apply_fn)(void *arg, const struct sync_snap *sn, const char *src,
			     char *err, size_t errlen);

#endif /* SL_AGENT_SYNC_SNAP_H */
