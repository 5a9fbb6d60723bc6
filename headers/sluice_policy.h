/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_policy.h - identity and L4 authorization ABI shared by bpf/ and
 * userspace/.
 *
 * Contract: a workload's identity is a u32 the control plane assigns to its
 * SPIFFE ID. The kernel learns identities from three maps: sl_ipcache (LPM
 * trie, any address in or out of the node), sl_netns (a local pod's network
 * namespace cookie, so connect() knows the client before it has an address)
 * and sl_endpoints (a local pod's host-side veth, for tc).
 *
 * Verdicts follow Istio: a matching DENY wins; otherwise, if the destination
 * has any ALLOW policy, only a matching ALLOW allows; otherwise allow. The
 * compiled entries are looked up at most four times per decision (exact and
 * wildcard source x exact and wildcard port) plus one per-destination lookup:
 * no loops over rules. Policy lives in two generations; the agent writes the
 * inactive one completely and then flips sl_config.policy_gen, a single
 * aligned 4-byte array store, so a decision never sees half a policy.
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SL_MAP_IPCACHE   "sl_ipcache"
#define SL_MAP_NETNS     "sl_netns"
#define SL_MAP_ENDPOINTS "sl_endpoints"
#define SL_MAP_POLICY    "sl_policy"
#define SL_MAP_POLDST    "sl_poldst"
#define SL_MAP_CONFIG    "sl_config"
#define SL_MAP_DROPS     "sl_drops"
#define SL_MAP_UDPFLOW   "sl_udpflow"
#define SL_MAP_MTLS_PORT "sl_mtls_port"

#define SL_MAX_IPCACHE   131072
#define SL_MAX_LOCAL     4096
#define SL_MAX_POLICY    131072
#define SL_MAX_POLDST    65536
#define SL_MAX_UDPFLOW   65536
#define SL_MAX_MTLS_PORT 16384

/* Reserved identities; workloads get SL_ID_FIRST_WORKLOAD and up. */
enum sl_reserved_identity {
	SL_ID_UNKNOWN = 0,   /* a local process the snapshot does not name */
	SL_ID_WORLD = 1,     /* an address outside the mesh */
	SL_ID_HOST = 2,      /* the node itself */
	SL_ID_PROXY = 3,     /* the node's mTLS proxy */
	SL_ID_FIRST_WORKLOAD = 256,
};

/* Wildcard source identity in a policy key: any source. */
#define SL_ID_ANY 0xffffffffu

/* sl_ipcache: LPM trie. IPv4 prefixes are stored IPv4-mapped, so a /24 is
 * prefixlen 96 + 24. */
struct sl_ipcache_key {
	__u32 prefixlen;
	__be32 addr[4];
};

struct sl_ipcache_val {
	__u32 identity;
	__u32 flags;        /* SL_IPC_* */
};

#define SL_IPC_LOCAL 0x1    /* a workload on this node */
#define SL_IPC_MTLS  0x2    /* mesh clients on other nodes reach it through the
			     * node proxies (PeerAuthentication not DISABLE) */

/* sl_netns: network namespace cookie -> identity of the pod in it. */
struct sl_netns_val {
	__u32 identity;
	__u32 pad;
};

/* sl_endpoints: ifindex of a local pod's host-side veth -> the pod. */
struct sl_endpoint {
	__u32 identity;
	__u32 flags;        /* SL_EP_* */
	__be32 addr4;       /* 0: none */
	__be32 addr6[4];    /* all zero: none */
};

#define SL_EP_HAS_V4 0x1
#define SL_EP_HAS_V6 0x2
#define SL_EP_STRICT 0x4    /* PeerAuthentication STRICT: plaintext only from
			     * this node's workloads and its proxy (tc) */

/* sl_mtls_port: hash, PeerAuthentication portLevelMtls: the mode of one
 * port of a workload address, over the workload's own (SL_IPC_MTLS for the
 * capture, SL_EP_STRICT at tc). Any workload's, local or not. */
struct sl_mtls_port_key {
	__be32 addr[4];     /* IPv4-mapped or IPv6 */
	__u16 port;         /* host order */
	__u16 pad;
};

enum sl_mtls_mode {
	SL_MTLS_STRICT = 1,
	SL_MTLS_PERMISSIVE = 2,
	SL_MTLS_DISABLE = 3,
};

/* sl_policy: compiled AuthorizationPolicy entries. */
struct sl_policy_key {
	__u32 gen;          /* 0 or 1, see sl_config */
	__u32 src_id;       /* SL_ID_ANY: any source */
	__u32 dst_id;
	__u16 port;         /* destination (workload) port, host order; 0: any */
	__u8 proto;         /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

struct sl_policy_val {
	__u8 deny;          /* a DENY rule matches this key */
	__u8 allow;         /* an ALLOW rule matches this key */
	__u8 pad[2];
};

/* sl_poldst: per destination identity, in a generation. */
struct sl_poldst_key {
	__u32 gen;
	__u32 dst_id;
};

struct sl_poldst_val {
	__u32 flags;        /* SL_PD_* */
};

#define SL_PD_HAS_ALLOW 0x1 /* default deny: unmatched traffic is denied */

/* sl_config: array of one. */
struct sl_config {
	__u32 policy_gen;
	__u32 fastpath;     /* 1: insert new same-node connections in the sockhash */
};

/* sl_drops: per-CPU array of counters, one per reason. */
enum sl_drop_reason {
	SL_DROP_POLICY_CONNECT = 0, /* connect()/sendmsg() refused with EACCES */
	SL_DROP_POLICY_INGRESS = 1, /* tc: SYN or datagram to a pod denied */
	SL_DROP_SPOOF = 2,          /* tc: pod sent from an address not its own */
	SL_DROP_EVENTS_LOST = 3,    /* flow events lost: ring buffer full */
	SL_DROP_MTLS_STRICT = 4,    /* tc: plaintext SYN to a STRICT workload */
	SL_DROP_MAX,
};

/* sl_udpflow (LRU): UDP datagrams a local pod sent, so that tc lets the
 * replies in without applying the pod's ingress policy to them. Written by
 * tc on the way out of the pod, read on the way in. */
struct sl_udpflow_key {
	__be32 pod_addr[4];
	__be32 peer_addr[4];
	__be16 pod_port;
	__be16 peer_port;
};

_Static_assert(sizeof(struct sl_udpflow_key) == 36, "sl_udpflow_key layout");
_Static_assert(sizeof(struct sl_ipcache_key) == 20, "sl_ipcache_key layout");
_Static_assert(sizeof(struct sl_mtls_port_key) == 20, "sl_mtls_port_key layout");
_Static_assert(sizeof(struct sl_ipcache_val) == 8, "sl_ipcache_val layout");
_Static_assert(sizeof(struct sl_netns_val) == 8, "sl_netns_val layout");
_Static_assert(sizeof(struct sl_endpoint) == 28, "sl_endpoint layout");
_Static_assert(sizeof(struct sl_policy_key) == 16, "sl_policy_key layout");
_Static_assert(sizeof(struct sl_policy_val) == 4, "sl_policy_val layout");
_Static_assert(sizeof(struct sl_poldst_key) == 8, "sl_poldst_key layout");
_Static_assert(sizeof(struct sl_config) == 8, "sl_config layout");

#endif /* SLUICE_POLICY_H */
