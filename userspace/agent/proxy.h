/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxy.h - the node's mTLS proxy inside sluice-agent (docs/architecture.md,
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
 * Contract: its sockets are handlers in the agent's one event loop
 * (lib/hbone.h's hb_loop, given in proxy_opts); nothing blocks. The
 * snapshot and the certificates change between two events, never during
 * one.
 */
#ifndef SL_AGENT_PROXY_H
#define SL_AGENT_PROXY_H

#include "agent/certs.h"
#include "agent/telemetry.h"
#include "lib/snapshot.h"

struct proxy_opts {
	const char *node;
	const char *hbone_addr;      /* ADDR:PORT to listen on for HBONE */
	const char *outbound_addr;   /* ADDR:PORT for captured connections */
	const char *outbound_addr6;  /* and [ADDR]:PORT for IPv6 ones; NULL: none */
	const char *pin_root;        /* sl_origdst is created and pinned here */
	unsigned int handshake_ms;   /* HBONE TLS handshake limit */
	struct sync *sy;             /* node certificate, CA */
	struct certs *certs;
	struct telemetry *tm;
	struct hb_loop *loop;        /* the agent's event loop (not owned) */
};

struct proxy;
struct hb_loop;

struct proxy *proxy_new(const struct proxy_opts *o);
void proxy_free(struct proxy *p);
/* Copy what the proxy needs from a snapshot that was just applied. */
void proxy_set_snapshot(struct proxy *p, const struct snapshot *s);

#endif /* SL_AGENT_PROXY_H */
