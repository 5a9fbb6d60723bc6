/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * flow.h - per-CPU connection counters, the connection table and flow
 * events, shared by the socket, sockops and tc programs.
 */
#ifndef SL_BPF_FLOW_H
#define SL_BPF_FLOW_H

#include "common.h"
#include "policy.h"
#include "sluice_flow.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SL_MAX_METRICS);
	__type(key, struct sl_metric_key);
	__type(value, struct sl_metric_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SL_MAX_CONNS);
	__type(key, __u64);
	__type(value, struct sl_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_conns SEC(".maps");

/* Set by the agent: false when nothing reads flow events (no flow log).
 * Then no program writes one, open, close, deny or ejection alike, and
 * the agent does not map the ring; the counters (sl_metrics) are kept
 * either way. */
const volatile bool cfg_flow_events = true;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SL_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_events SEC(".maps");

static __always_inline struct sl_metric_val *metric(const struct sl_metric_key *k)
{
	struct sl_metric_val *v = bpf_map_lookup_elem(&sl_metrics, k);
	struct sl_metric_val zero = {};

	if (v)
		return v;
	bpf_map_update_elem(&sl_metrics, k, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sl_metrics, k);
}

/* Wake the reader when what waits (this event included) crosses a
 * multiple of SL_EVENTS_WAKE_BYTES (sluice_flow.h): once per batch
 * however far behind the reader is, where "wake while a batch waits" would
 * wake it for every event of a backlog. A crossing two CPUs step over
 * together is missed; the reader's timer drains the ring anyway. */
static __always_inline __u64 flow_wakeup(void)
{
	__u64 avail = bpf_ringbuf_query(&sl_events, BPF_RB_AVAIL_DATA);

	return avail >= SL_EVENTS_WAKE_BYTES &&
	       avail % SL_EVENTS_WAKE_BYTES < sizeof(struct sl_event) + SL_EVENTS_HDR_BYTES ?
	       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* Emit a flow event; a full ring buffer is counted, never waited on. */
static __always_inline void flow_event(__u32 type, __u32 reason, __u64 cookie,
				       const struct sl_conn *c, __u64 sent, __u64 rcvd)
{
	struct sl_event *e;
	__u64 now;

	if (!cfg_flow_events)
		return;
	e = bpf_ringbuf_reserve(&sl_events, sizeof(*e), 0);
	now = bpf_ktime_get_ns();
	if (!e) {
		count_drop(SL_DROP_EVENTS_LOST);
		return;
	}
	e->ts_ns = now;
	e->cookie = cookie;
	e->bytes_sent = sent;
	e->bytes_received = rcvd;
	e->duration_ns = type == SL_EV_CLOSE && c->start_ns ? now - c->start_ns : 0;
	e->type = type;
	e->reason = reason;
	e->key = c->key;
	__builtin_memcpy(e->saddr, c->saddr, 16);
	__builtin_memcpy(e->daddr, c->daddr, 16);
	e->sport = c->sport;
	e->dport = c->dport;
	e->pad = 0;
	bpf_ringbuf_submit(e, flow_wakeup());
}

/* A denied connection or datagram: counted and reported. */
static __always_inline void flow_deny(const struct sl_conn *c, __u32 reason)
{
	struct sl_metric_val *v = metric(&c->key);

	if (v)
		v->denied++;
	flow_event(SL_EV_DENY, reason, 0, c, 0, 0);
}

#endif /* SL_BPF_FLOW_H */
