/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_traffic.h - the traffic-policy ABI shared by bpf/ and userspace/:
 * DestinationRule's loadBalancer, connectionPool.tcp.maxConnections and
 * outlierDetection, and Service sessionAffinity, decided at connect() time.
 *
 * Contract: a service whose sl_svc_val has SL_SVC_F_POLICY has an entry in
 * sl_svc_policy under its svc_id; the agent writes that entry before the
 * service entry that sets the flag and removes it after the service entry
 * (headers/sluice_lb.h's write order). Everything else here is written by
 * the BPF programs only and read by userspace for display and metrics:
 *
 * - sl_svc_state: per service, open connections counted against
 *   maxConnections, backends ejected now, refused connects. Changed under
 *   its spin lock, so the cap is exact however many CPUs connect at once.
 * - sl_be_state: per (service, backend), open connections (LEAST_REQUEST),
 *   consecutive connect failures, ejections and when the current one ends
 *   (bpf_ktime_get_ns(), CLOCK_MONOTONIC in userspace). Created by the
 *   agent; removed by it through bpf/admin.bpf.c's sl_be_forget, which
 *   gives back an ejection's place in sl_svc_state.ejected.
 * - sl_held: per socket (cookie) that holds a slot: which service and
 *   backend it counts against. Released exactly once, by whichever comes
 *   first of sockops seeing the socket reach TCP_CLOSE (RST, timeout, end
 *   of a normal close) and cgroup/sock_release (the application closed it
 *   or was killed): both delete the entry and only the deleter decrements.
 * - sl_affinity (LRU): ClientIP session affinity, (service, client) ->
 *   backend and when it was last used.
 *
 * - sl_tp_config: array of one; `held` is set by the agent before the
 *   first service with a policy is written and never cleared: until then
 *   no socket can hold a slot, and sockops and sock_release skip their
 *   sl_held lookups (a plain node pays nothing for the feature).
 *
 * All maps are pinned, so counters, ejections and held slots survive an
 * agent restart. Addresses are as in sluice_lb.h.
 */
#ifndef SLUICE_TRAFFIC_H
#define SLUICE_TRAFFIC_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#include <linux/bpf.h>      /* struct bpf_spin_lock */
#endif

#define SL_MAP_SVC_POLICY "sl_svc_policy"
#define SL_MAP_SVC_STATE  "sl_svc_state"
#define SL_MAP_BE_STATE   "sl_be_state"
#define SL_MAP_HELD       "sl_held"
#define SL_MAP_AFFINITY   "sl_affinity"
#define SL_MAP_TP_CONFIG  "sl_tp_config"

#define SL_MAX_HELD     262144
#define SL_MAX_BE_STATE 131072
#define SL_MAX_AFFINITY 262144

/* sl_svc_val.flags */
#define SL_SVC_F_POLICY 0x1 /* sl_svc_policy has an entry for svc_id */

/* sl_svc_policy.lb */
enum sl_lb_alg {
	SL_LB_RANDOM = 0,        /* a weighted slot at random */
	SL_LB_ROUND_ROBIN = 1,   /* the next weighted slot */
	SL_LB_LEAST_REQUEST = 2, /* two random slots, the one with fewer open connections */
	SL_LB_SOURCE_HASH = 3,   /* consistentHash.useSourceIp: the client's slot */
};

/* The cap on one ejection when baseEjectionTime * ejections grows past it
 * (Envoy's max_ejection_time default, 300 s), unless baseEjectionTime is
 * longer. */
#define SL_OD_MAX_EJECT_NS (300ull * 1000000000ull)

/* sl_svc_policy: svc_id -> the service's traffic policy (agent-written). */
struct sl_svc_policy {
	__u32 max_conns;      /* connectionPool.tcp.maxConnections; 0: no cap */
	__u32 od_consecutive; /* failures in a row that eject; 0: no outlier detection */
	__u64 od_interval_ns; /* outlierDetection.interval: one healthy interval forgives one ejection */
	__u64 od_base_ns;     /* baseEjectionTime: an ejection lasts base * ejections */
	__u64 od_max_ns;      /* longest ejection */
	__u64 affinity_ns;    /* sessionAffinity ClientIP timeout; 0: no affinity */
	__u32 nbackends;      /* distinct backends, for maxEjectionPercent */
	__u8 lb;              /* enum sl_lb_alg */
	__u8 od_max_pct;      /* maxEjectionPercent */
	__u8 od_min_health;   /* minHealthPercent: fewer healthy backends than this (percent), none is skipped */
	__u8 pad;
};

/* sl_svc_state: svc_id -> what this node's connections to it do now. */
struct sl_svc_state {
	struct bpf_spin_lock lock;
	__u32 active;         /* connections holding a maxConnections slot */
	__u32 ejected;        /* backends ejected now (an expired one is counted until a connect sees it) */
	__u32 rr;             /* ROUND_ROBIN cursor */
	__u64 overflow;       /* connects refused by maxConnections */
	__u64 ejections;      /* ejections so far */
};

struct sl_be_key {
	__u32 svc_id;
	__u32 backend_id;     /* sl_backends key */
};

/* sl_be_state: (service, backend) -> health and load seen from this node. */
struct sl_be_state {
	struct bpf_spin_lock lock;
	__s32 active;         /* open connections (held sockets) */
	__u32 consec;         /* connect failures in a row */
	__u32 ejections;      /* ejection count, less one per healthy interval */
	__u64 until;          /* end of the current ejection (ktime ns); 0: not ejected */
	__u64 last_until;     /* end of the previous ejection */
	__u64 failures;       /* connect failures so far */
};

/* sl_held.flags */
#define SL_HELD_POOL   0x1 /* counted in sl_svc_state.active */
#define SL_HELD_FAILED 0x2 /* its connect failure was counted already */

/* sl_held: socket cookie -> the slot the socket holds. */
struct sl_held {
	__u32 svc_id;
	__u32 backend_id;
	__u8 flags;           /* SL_HELD_* */
	__u8 pad[7];
};

/* sl_affinity (LRU): (client, service) -> backend. The client is its
 * network namespace cookie: one pod, one netns, one source address. */
struct sl_aff_key {
	__u64 client;
	__u32 svc_id;
	__u32 pad;
};

struct sl_aff_val {
	__u32 backend_id;
	__u32 tag;            /* count << 1 | gen of the service when chosen: a change of its backends re-picks */
	__u64 last_ns;        /* last connect through this entry */
};

/* sl_tp_config[0] */
struct sl_tp_config {
	__u32 held;           /* 1: sockets may hold slots (a policy was ever applied) */
	__u32 pad;
};

_Static_assert(sizeof(struct sl_tp_config) == 8, "sl_tp_config layout");
_Static_assert(sizeof(struct sl_svc_policy) == 48, "sl_svc_policy layout");
_Static_assert(sizeof(struct sl_svc_state) == 32, "sl_svc_state layout");
_Static_assert(sizeof(struct sl_be_key) == 8, "sl_be_key layout");
_Static_assert(sizeof(struct sl_be_state) == 40, "sl_be_state layout");
_Static_assert(sizeof(struct sl_held) == 16, "sl_held layout");
_Static_assert(sizeof(struct sl_aff_key) == 16, "sl_aff_key layout");
_Static_assert(sizeof(struct sl_aff_val) == 16, "sl_aff_val layout");

#endif /* SLUICE_TRAFFIC_H */
