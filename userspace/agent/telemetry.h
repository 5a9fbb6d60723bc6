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
#include "lib/snapshot.h"

struct ring_buffer;

struct telemetry {
	struct datapath *dp;
	struct ring_buffer *rb;
	unsigned int batch;       /* events handled in this poll round */
	/* flow log */
	const char *flow_path;    /* NULL: none, "-": stdout */
	FILE *flow;
	uint64_t flow_bytes, flow_max;
	/* labels, rebuilt at every applied snapshot */
	struct snapshot labels;   /* identities, workloads, services */
	uint32_t *svc_ids;        /* svc_ids[i] is labels.services[i]'s id */
	uint64_t version;
	/* metrics server */
	int listen_fd;
	uint64_t scrapes;
	/* /readyz: programs attached (always, once telemetry runs) and a
	 * snapshot applied; set by the agent */
	bool ready;
};

int telemetry_init(struct telemetry *t, struct datapath *dp, const char *flow_path,
		   uint64_t flow_max, const char *metrics_addr);
/* Take the names for labels from a snapshot that was just applied. */
void telemetry_set_labels(struct telemetry *t, const struct snapshot *s);
int telemetry_ring_fd(const struct telemetry *t);
void telemetry_poll_ring(struct telemetry *t);
/* Serve one HTTP request on the metrics socket (call when readable):
 * /metrics, /healthz (200 while the agent runs), /readyz (200 once ready). */
void telemetry_serve(struct telemetry *t);
void telemetry_fini(struct telemetry *t);

#endif /* SL_TELEMETRY_H */
