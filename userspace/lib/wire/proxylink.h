/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxylink.h - the local link between sluice-agent and its node proxy
 * (sluice-proxy): a SOCK_SEQPACKET unix socket at <run dir>/proxy.sock,
 * owned by the agent (mode 0600), to which every running proxy connects.
 * One message per packet: struct pl_hdr, then the type's body, then its
 * variable part; descriptors ride along as SCM_RIGHTS.
 *
 * Agent -> proxy: the node's credentials, each workload certificate with
 * its key, the applied snapshot (a sealed memfd), and "drain". Proxy ->
 * agent: hello (pid, version and its listening sockets, which the agent
 * keeps so that a crashed proxy's successor takes the same sockets and
 * nothing is refused meanwhile), a status every second, and its flow
 * events and counters, which the agent exports with its own.
 *
 * Both ends are the same build's or one build apart (an upgrade): a
 * message of an unknown type is ignored, a known one of the wrong size
 * is a protocol error that ends the link.
 */
#ifndef SL_PROXYLINK_H
#define SL_PROXYLINK_H

#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#define PL_SOCK_NAME   "proxy.sock"
#define PL_MAX_MSG     (64u << 10)
#define PL_MAX_FDS     4

enum pl_type {
	PL_HELLO = 1,   /* proxy: struct pl_hello + listening fds */
	PL_STATUS,      /* proxy: struct pl_status */
	PL_FLOW,        /* proxy: struct pl_flow */
	PL_REFUSED,     /* proxy: struct pl_reason */
	PL_MISMATCH,    /* proxy: (no body) a server presented the wrong identity */
	PL_NODE,        /* agent: struct pl_node + CA, cert, key PEM */
	PL_CERT,        /* agent: struct pl_cert + key, cert PEM */
	PL_FORGET,      /* agent: struct pl_forget */
	PL_SNAPSHOT,    /* agent: struct pl_snapshot + a sealed memfd */
	PL_DRAIN,       /* agent: struct pl_drain */
};

struct pl_hdr {
	__u32 type;
	__u32 len;      /* of the whole message, header included */
};

/* Listening sockets, in this order in the SCM_RIGHTS array; a role
 * without a socket is absent from the array and from `fds`. */
enum pl_listener { PL_LS_HBONE, PL_LS_OUT, PL_LS_OUT6, PL_LS_MAX };

struct pl_hello {
	__s32 pid;
	__u32 fds;            /* bit i: role i is in the fd array */
	__u64 started_ms;     /* CLOCK_REALTIME */
	char version[64];
	__u32 draining;
	__u32 pad;
};

struct pl_status {
	__u64 tunnels;        /* open now */
	__u64 inbound;        /* HBONE connections from other nodes */
	__u64 outbound;       /* HBONE connections to other nodes */
	__u64 accepted;       /* connections accepted since start */
	__u64 events_dropped; /* flow events lost while the agent was away */
	__u32 ready;          /* has credentials and a snapshot: accepting */
	__u32 draining;
	__u32 certs;          /* workload certificates held */
	__u32 pad;
	__u64 snapshot_version;
};

struct pl_flow {
	char type[8];         /* open, close, deny */
	__u8 reporter;        /* SL_REPORTER_* */
	__u8 pad[3];
	__u32 src_id, dst_id;
	__be32 saddr[4], daddr[4];
	__u16 sport, dport;   /* host order */
	__u32 pad2;
	__u64 sent, received;
	double duration_ms;
	char src_principal[256];   /* "": from the snapshot */
	char dst_principal[256];
	char reason[64];
};

struct pl_reason {
	char reason[64];
};

struct pl_node {
	__u32 ca_len, cert_len, key_len, pad;
};

struct pl_cert {
	__u32 id;
	__u32 key_len, cert_len, pad;
	char spiffe[256];
};

struct pl_forget {
	__u32 id, pad;
};

struct pl_snapshot {
	__u64 version;
	__u64 len;
};

struct pl_drain {
	__u32 drain_ms;
	__u32 pad;
};

/* Send one message without blocking: body and an optional variable tail
 * (up to three parts, each may be NULL/0), with `nfds` descriptors.
 * 0, or -errno (-EAGAIN: the peer's queue is full; nothing was sent). */
int pl_send(int fd, enum pl_type type, const void *body, size_t body_len,
	    const void *const tail[3], const size_t tail_len[3], const int *fds, int nfds);
/* Receive one message into buf (PL_MAX_MSG bytes): its length, 0 at EOF,
 * or -errno (-EAGAIN: none now; -EPROTO: truncated, or not a message).
 * Descriptors received are put in fds (PL_MAX_FDS) and counted in
 * *nfds; on any error they are closed. */
long pl_recv(int fd, void *buf, int *fds, int *nfds);
/* The body of a received message of `type` at least `body_len` long,
 * else NULL. */
const void *pl_body(const void *msg, long len, enum pl_type type, size_t body_len);

#endif /* SL_PROXYLINK_H */
