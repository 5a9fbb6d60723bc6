/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_flow.h - accounting and flow events shared by bpf/ and userspace/.
 *
 * Per-CPU counters are keyed by (source identity, destination identity,
 * destination service, port, protocol, reporter), the dimensions of Istio's
 * L4 telemetry. A TCP connection is tracked in sl_conns from the socket
 * hook (client side) or sockops (server side) until sockops sees it close;
 * bytes are payload bytes as the applications see them, always from the
 * client's point of view. They come from the closing socket's bytes_acked
 * and bytes_received, which also count sequence space that is not payload:
 * the SYN (active side, removed with acked_base), the socket's own FIN once
 * acked, and the peer's FIN once received (see bpf/sockops.bpf.c). Then: bytes_sent went client -> server (Istio's received bytes: the
 * request), bytes_received went server -> client (Istio's sent bytes: the
 * response), whichever side reports.
 */
#ifndef SLUICE_FLOW_H
#define SLUICE_FLOW_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SL_MAP_METRICS "sl_metrics"
#define SL_MAP_CONNS   "sl_conns"
#define SL_MAP_EVENTS  "sl_events"

#define SL_MAX_METRICS 65536
#define SL_MAX_CONNS   262144
/* The ring buffer: 2 MiB, some 18,000 events (112 bytes with the kernel's
 * header), 0.3 s of four events per connection at 15,000 connections a
 * second; libbpf maps it twice, so it is 4 MB of the agent's RSS. A ring
 * pinned by an earlier install keeps its size (datapath.c). */
#define SL_EVENTS_BYTES (1u << 21)
/* A producer wakes the reader only each time this much is waiting: a wakeup
 * per event (the ring buffer's default while the reader keeps up) is an
 * irq_work and a context switch, about 10 us of the producing socket's
 * time on a virtual machine. The reader drains the ring at least every
 * SL_EVENTS_POLL_MS on its own while anybody reads the events. */
#define SL_EVENTS_WAKE_BYTES (SL_EVENTS_BYTES / 16)
#define SL_EVENTS_HDR_BYTES 8 /* the kernel's header before each record */
#define SL_EVENTS_POLL_MS 100

enum sl_reporter {
	SL_REPORTER_SOURCE = 1,      /* counted at the client's socket */
	SL_REPORTER_DESTINATION = 2, /* counted at the server's socket or veth */
};

struct sl_metric_key {
	__u32 src_id;
	__u32 dst_id;
	__u32 svc_id;   /* 0: not through a service VIP */
	__u16 port;     /* destination (workload) port, host order */
	__u8 proto;
	__u8 reporter;  /* enum sl_reporter */
};

struct sl_metric_val {
	__u64 opened;
	__u64 closed;
	__u64 denied;
	__u64 bytes_sent;     /* client -> server */
	__u64 bytes_received; /* server -> client */
};

/* sl_conns (LRU): socket cookie -> what the socket's connection is. */
struct sl_conn {
	struct sl_metric_key key;
	__u64 start_ns;
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u16 acked_base;   /* bytes_acked at ESTABLISHED: the SYN, on the active side */
	__u8 flags;         /* SL_CONN_F_* */
	__u8 captured;      /* connect() rewrote it to the node proxy (sl_origdst) */
};

/* sl_conn.flags. 0x1 was "queued its FIN" (FIN_WAIT1 or LAST_ACK seen), a
 * map write per closing socket: sockops now reads it off the state the
 * socket closes from, and the bit is neither written nor read. */
#define SL_CONN_F_FAST 0x2 /* went into the sockhash: sl_faststate may hold its state */

enum sl_event_type {
	SL_EV_OPEN = 1,
	SL_EV_CLOSE = 2,
	SL_EV_DENY = 3,
	SL_EV_EJECT = 4,  /* outlier detection ejected a backend (headers/sluice_traffic.h):
			   * daddr/dport the backend, key.svc_id the service, reason the
			   * ejection count, duration_ns how long it lasts */
};

/* deny reasons (sl_event.reason) */
enum sl_deny_reason {
	SL_DENY_POLICY_CONNECT = 1, /* connect()/sendmsg() refused */
	SL_DENY_POLICY_INGRESS = 2, /* tc dropped a SYN or datagram */
	SL_DENY_SPOOF = 3,          /* tc dropped a forged source */
	SL_DENY_MTLS_STRICT = 4,    /* tc dropped plaintext to a STRICT workload */
	SL_DENY_OVERFLOW = 5,       /* connect() refused: the service's maxConnections are open */
};

struct sl_event {
	__u64 ts_ns;          /* bpf_ktime_get_ns() */
	__u64 cookie;
	__u64 bytes_sent;     /* close: client -> server payload bytes */
	__u64 bytes_received; /* close: server -> client */
	__u64 duration_ns;    /* close */
	__u32 type;           /* enum sl_event_type */
	__u32 reason;         /* deny: enum sl_deny_reason */
	struct sl_metric_key key;
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u32 pad;
};

_Static_assert(sizeof(struct sl_metric_key) == 16, "sl_metric_key layout");
_Static_assert(sizeof(struct sl_metric_val) == 40, "sl_metric_val layout");
_Static_assert(sizeof(struct sl_conn) == 64, "sl_conn layout");
_Static_assert(sizeof(struct sl_event) == 104, "sl_event layout");

#endif /* SLUICE_FLOW_H */
