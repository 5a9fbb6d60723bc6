/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_proxy.h - the hand-off from the kernel's capture to the node's
 * mTLS proxy.
 *
 * Contract:
 * - The connect hooks rewrite a connection that must be mutual TLS to the
 *   proxy's outbound listener (SL_PROXY_OUTBOUND_PORT on the node address
 *   the agent configures) and record, keyed by the client socket's own
 *   address and port as the proxy's accept() will see them, the original
 *   destination and the client's identity. The proxy trusts nothing the
 *   client sends: what it needs is in sl_origdst.
 * - The proxy's own sockets are never captured (they live in the agent's
 *   cgroup, outside the pods' cgroup).
 * - Addresses are IPv4-mapped like everywhere else. An IPv4 destination is
 *   sent to the IPv4 listener, an IPv6 one to the IPv6 listener.
 * - Each connection is accounted once (istio_tcp_*, flow events), by the
 *   proxy, which knows the principals from the certificates: the kernel
 *   leaves out a captured connection (source side) and the proxy's
 *   delivery to the destination workload (destination side, sl_proxied).
 */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SL_MAP_ORIGDST "sl_origdst"
#define SL_MAX_ORIGDST 65536

#define SL_PROXY_OUTBOUND_PORT 15001   /* captured connections (Istio's) */
#define SL_PROXY_HBONE_PORT    15008   /* HBONE between nodes */

/* SO_MARK of the proxy's sockets to local workloads: tc lets what the
 * proxy delivers through (the proxy authorized the authenticated peer). */
#define SL_PROXY_MARK 0x5100

#define SL_MAP_PROXY "sl_proxy"

/* sl_proxy and sl_proxy6: arrays of one, written by the agent: the
 * outbound listener for IPv4 destinations, and for IPv6 ones (a map of
 * its own, so that an agent upgraded in place reuses sl_proxy as pinned). */
#define SL_MAP_PROXY6 "sl_proxy6"
#define SL_PROXY_V4 0   /* the agent's names for the two */
#define SL_PROXY_V6 1

struct sl_proxy_cfg {
	__be32 addr[4];     /* the outbound listener (IPv4-mapped in sl_proxy) */
	__u16 port;         /* host order */
	__u8 enabled;       /* 0: capture nothing */
	__u8 pad;
};

struct sl_origdst_key {
	__be32 client[4];   /* the client socket's address (IPv4-mapped) */
	__u16 client_port;  /* host order */
	__u16 pad;
};

struct sl_origdst_val {
	__be32 dst[4];      /* the original destination (after service LB) */
	__u16 dst_port;     /* host order */
	__u16 pad;
	__u32 src_identity; /* the client workload's numeric identity */
	__u64 cookie;       /* the client socket's cookie (flow events) */
};

/*
 * sl_proxied: LRU hash, the proxy's connections to local workloads, put
 * in by tc when their SYN (SL_PROXY_MARK) goes into the pod and taken out
 * by sockops when the workload's socket is established, which then is
 * not accounted. An entry whose handshake never completes ages out.
 */
#define SL_MAP_PROXIED "sl_proxied"
#define SL_MAX_PROXIED 16384

struct sl_proxied_key {
	__be32 proxy[4];    /* the proxy socket's address (IPv4-mapped) */
	__be32 workload[4]; /* the workload's */
	__u16 proxy_port;   /* host order */
	__u16 workload_port;
};

_Static_assert(sizeof(struct sl_proxied_key) == 36, "sl_proxied_key layout");
_Static_assert(sizeof(struct sl_origdst_key) == 20, "sl_origdst_key layout");
_Static_assert(sizeof(struct sl_proxy_cfg) == 20, "sl_proxy_cfg layout");
_Static_assert(sizeof(struct sl_origdst_val) == 32, "sl_origdst_val layout");

#endif /* SLUICE_PROXY_H */
