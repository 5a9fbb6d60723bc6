/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * api_certs.h - the certificate endpoints of the control plane's API.
 *
 * Contract: a node's certificate only for a valid single-use join token
 * issued for that node (401 otherwise); a node gets workload certificates
 * only for the identities of the workloads the current config places on
 * it (the node is the one its own client certificate names); anything
 * else is refused (400, 403).
 */
#ifndef SL_CONTROL_API_CERTS_H
#define SL_CONTROL_API_CERTS_H

#include "control/server_state.h"

/* POST /v1/join {node, token, csr}: a node's certificate for a one-time token. */
void h_join(struct server *s, struct conn *cn, const struct h2_req *r, const char *caller);
/* POST /v1/certs {csr}: a workload certificate for the calling node's proxy. */
void h_certs(struct server *s, struct conn *cn, const struct h2_req *r, const char *node);

#endif /* SL_CONTROL_API_CERTS_H */
