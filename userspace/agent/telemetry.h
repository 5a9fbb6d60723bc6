/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * telemetry.h - what the agent tells the world about traffic: flow events
 * from the ring buffer as JSON lines (rotated by size), and the per-CPU
 * counters as Prometheus text on /metrics with Istio's L4 metric names and
 * labels, so existing dashboards work.
 */
#ifndef SL_TELEMETRY_H
#define SL_TELEMETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/datapath.h"
#include "lib/core/buf.h"
#include "lib/node/snapshot.h"

struct ring_buffer;

/* The proxy's counters (userspace, next to the kernel's per-CPU ones):
 * one row per label set, principals from the certificates. */
struct tm_proxy_row {
	uint8_t reporter;          /* SL_REPORTER_SOURCE / _DESTINATION */
	uint16_t port;
	uint32_t src_id, dst_id;
	char src_principal[256], dst_principal[256];
	uint64_t opened, closed, sent, received, denied;
};

/* Why the proxy refused or cut something off (sluice_proxy_refused_total). */
#define TM_PROXY_REASONS 16

struct tm_proxy_flow {
	const char *type;          /* "open", "close", "deny" */
	uint8_t reporter;
	uint32_t src_id, dst_id;
	const char *src_principal, *dst_principal;  /* NULL: from the snapshot */
	__be32 saddr[4], daddr[4];
	uint16_t sport, dport;     /* host order */
	uint64_t sent, received;   /* source -> destination, and back */
	double duration_ms;
	const char *reason;        /* deny: why */
};

/* Why the node proxy was restarted (sluice_proxy_restarts_total). */
enum tm_restart { TM_RESTART_CRASH, TM_RESTART_UPGRADE };

struct tm_name;

struct telemetry {
	struct datapath *dp;
	struct ring_buffer *rb;
	unsigned int batch;       /* events handled in this poll round */
	/* flow log */
	const char *flow_path;    /* NULL: none, "-": stdout */
	FILE *flow;
	struct buf flowq;         /* lines not written yet (telemetry.c) */
	uint64_t flow_bytes, flow_max;
	/* labels, taken from every applied snapshot */
	struct snapshot labels;   /* identities and workloads */
	struct tm_name *names;    /* by identity, sorted (telemetry.c) */
	size_t nnames;
	char **svc_names;         /* by service id (lbmap), SL_MAX_SERVICES + 1 */
	uint32_t *svc_named;      /* the ids named in svc_names */
	size_t nsvc_named;
	uint64_t version;
	/* metrics server */
	int listen_fd;
	uint64_t scrapes;
	/* proxy */
	struct tm_proxy_row *prows;
	size_t nprows;
	const char *preason[TM_PROXY_REASONS];
	uint64_t pcount[TM_PROXY_REASONS];
	uint64_t proxy_tunnels;    /* open now */
	/* the node proxy's life (agent/proxysup.c) */
	uint64_t proxy_restarts[2];   /* by enum tm_restart */
	uint64_t proxy_drains;        /* proxies drained for a successor */
	uint64_t proxy_events_dropped;
	/* HBONE servers that presented another identity than the destination's
	 * (sluice_hbone_identity_mismatch_total); set by the proxy */
	uint64_t hbone_identity_mismatch;
	/* /readyz: programs attached (always, once telemetry runs) and a
	 * snapshot applied; set by the agent */
	bool ready;
};

int telemetry_init(struct telemetry *t, struct datapath *dp, const char *flow_path,
		   uint64_t flow_max, const char *metrics_addr);
/* Take the names for labels from a snapshot that was just applied, with
 * the id lbmap_apply() gave each of its services (NULL: ids unknown, 0). */
void telemetry_set_labels(struct telemetry *t, const struct snapshot *s, const uint32_t *svc_ids);
int telemetry_ring_fd(const struct telemetry *t);
/* How long the event loop may wait before it drains the ring on its own,
 * -1 for as long as it likes: producers wake the reader only once a batch
 * is waiting (SL_EVENTS_WAKE_BYTES), so a flow log also needs a timer. */
int telemetry_ring_timeout_ms(const struct telemetry *t);
void telemetry_poll_ring(struct telemetry *t);
/* Serve one HTTP request on the metrics socket (call when readable):
 * /metrics, /healthz (200 while the agent runs), /readyz (200 once ready). */
void telemetry_serve(struct telemetry *t);
void telemetry_fini(struct telemetry *t);

/* The proxy's side: a flow event (the same JSON lines as the kernel's,
 * with "path": "hbone"), a counter update and a refusal by reason. */
void telemetry_proxy_event(struct telemetry *t, const struct tm_proxy_flow *f);
void telemetry_proxy_count(struct telemetry *t, const struct tm_proxy_flow *f, bool opened,
			   bool closed, bool denied);
void telemetry_proxy_refused(struct telemetry *t, const char *reason);

#endif /* SL_TELEMETRY_H */
