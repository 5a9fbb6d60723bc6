/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxy.h - the node's mTLS proxy, sluice-proxy's core (docs/architecture.md,
 * "The node proxy").
 *
 * Outbound: connections captured to SL_PROXY_OUTBOUND_PORT are looked up
 * in sl_origdst by their client address and port (nothing the client sends
 * is trusted), then carried as an HBONE CONNECT to the original destination
 * over a TLS 1.3 connection to the destination node's proxy, pooled per
 * (source identity, node, destination identity), presenting the client
 * workload's certificate. The SNI names the destination's identity and the
 * server must present exactly that identity's certificate (secure naming).
 *
 * The inbound side presents the certificate of the identity the client's
 * SNI names when this node holds it (else the node's), and then takes
 * CONNECTs to workloads of that identity only.
 *
 * Inbound: HBONE on --hbone-addr (15008): TLS 1.3, ALPN h2, a client
 * certificate of the mesh CA with a workload SPIFFE ID of our trust domain;
 * each CONNECT must name a local workload of the snapshot and be allowed by
 * its compiled policies for the authenticated identity (a matching DENY
 * wins; with any ALLOW only a matching one allows), then it is connected.
 *
 * Contract: its sockets are handlers in the proxy's one event loop
 * (hbone.h's hb_loop, given in proxy_opts); nothing blocks. The listening
 * sockets are given (bound by the proxy's main, or inherited from the
 * process it succeeds) and accepted from only between proxy_accept(on)
 * and proxy_accept(off) or proxy_drain(). The snapshot and the
 * certificates change between two events, never during one. What it sees
 * (flow events, refusals) goes to the agent over the link.
 */
#ifndef SL_PROXY_PROXY_H
#define SL_PROXY_PROXY_H

#include <stdbool.h>

#include "lib/wire/proxylink.h"
#include "lib/node/snapshot.h"
#include "proxy/certs.h"

struct hb_loop;
struct link;

struct proxy_opts {
	const char *node;
	const char *pin_root;        /* sl_origdst is created and pinned here */
	unsigned int handshake_ms;   /* HBONE TLS handshake limit */
	int fds[PL_LS_MAX];          /* listening sockets (owned); -1: none */
	struct pcerts *certs;        /* node and workload credentials */
	struct link *link;           /* to the agent: reports */
	struct hb_loop *loop;        /* not owned */
};

struct proxy;

struct proxy *proxy_new(const struct proxy_opts *o);
void proxy_free(struct proxy *p);
/* Copy what the proxy needs from a snapshot. */
void proxy_set_snapshot(struct proxy *p, const struct snapshot *s);
/* Take connections from the listeners, or stop (they wait in the backlog).
 * 0 or -errno. */
int proxy_accept(struct proxy *p, bool on);
/* For a successor: stop accepting, close the listeners, tell HBONE peers
 * to open new streams elsewhere; open tunnels go on. */
void proxy_drain(struct proxy *p);
void proxy_stats(const struct proxy *p, struct pl_status *st);
/* Local workloads of the snapshot whose identity has no certificate yet. */
size_t proxy_certs_missing(const struct proxy *p);

#endif /* SL_PROXY_PROXY_H */
