/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * server.h - the control plane's API: HTTP/2 over mutual TLS 1.3 on one
 * epoll loop (docs/control-plane.md).
 *
 * Contract: one thread, non-blocking sockets, so a stalled client costs a
 * bounded buffer and is cut off, never blocks another agent's push. A
 * request is authorized by the role in its client certificate's URI SAN
 * (admin, node/NAME); a refused request (400, 401, 403, 404, 405, 413,
 * 422) changes nothing. A config change is validated, compiled for every
 * node and persisted before it is swapped in; each node's watch stream
 * then gets the new snapshot only if what that node needs changed.
 */
#ifndef SL_CONTROL_SERVER_H
#define SL_CONTROL_SERVER_H

#include "control/server_state.h"
#include "control/store.h"

/* Serve until SIGINT/SIGTERM. 0 on a clean stop. */
int server_run(struct store *st, const struct server_opts *o);

#endif /* SL_CONTROL_SERVER_H */
