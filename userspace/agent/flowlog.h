/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * flowlog.h - the flow log (t->flow_path; NULL: none, "-": stdout): JSON
 * lines of flow events (docs/operations.md has the fields), written in
 * batches, the file rotated to PATH.1 once it reaches t->flow_max bytes.
 */
#ifndef SL_AGENT_FLOWLOG_H
#define SL_AGENT_FLOWLOG_H

#include <stddef.h>

struct telemetry;
struct tm_proxy_flow;

/* Open (append to) the flow log; logs and leaves t->flow NULL on error. */
void flowlog_open(struct telemetry *t);
/* The ring buffer's callback (ctx: the telemetry): one kernel event. At
 * most a batch of events per poll round (t->batch). */
int flowlog_on_event(void *ctx, void *data, size_t len);
/* One event of the node proxy, written at once. */
void flowlog_proxy(struct telemetry *t, const struct tm_proxy_flow *f);
/* Write what waits; the end of every poll round calls it. */
void flowlog_flush(struct telemetry *t);
/* Flush and close. */
void flowlog_close(struct telemetry *t);

#endif /* SL_AGENT_FLOWLOG_H */
