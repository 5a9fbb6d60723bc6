// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowlog.c - the flow log: one JSON line per flow event, from the kernel's
 * ring buffer (headers/sluice_flow.h) and from the node proxy, appended to
 * a file that rotates by size (agent/flowlog.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/flowlog.h"
#include "agent/labels.h"
#include "agent/telemetry.h"
#include "lib/core/addr.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"
#include "sluice_flow.h"
#include "sluice_policy.h"

#define RING_BATCH 4096

static const char *const ev_names[] = { "?", "open", "close", "deny", "eject" };
static const char *const deny_names[] = { "", "policy_connect", "policy_ingress", "spoof",
					   "mtls_strict", "overflow" };

void flowlog_open(struct telemetry *t)
{
	if (!t->flow_path)
		return;
	if (strcmp(t->flow_path, "-") == 0) {
		t->flow = stdout;
		return;
	}
	{
		char dir[4096], *slash;

		snprintf(dir, sizeof(dir), "%s", t->flow_path);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			sys_mkdir_p(dir, 0755);
		}
	}
	t->flow = fopen(t->flow_path, "a");
	if (!t->flow) {
		log_err("flow log %s: %s", t->flow_path, strerror(errno));
		return;
	}
	{
		struct stat st;

		t->flow_bytes = fstat(fileno(t->flow), &st) == 0 ? (uint64_t)st.st_size : 0;
	}
}

/* Keep one previous file: PATH.1. */
static void flow_rotate(struct telemetry *t)
{
	char old[4096];

	if (t->flow == stdout || !t->flow)
		return;
	fclose(t->flow);
	snprintf(old, sizeof(old), "%s.1", t->flow_path);
	if (rename(t->flow_path, old))
		log_warn("rotating flow log %s: %s", t->flow_path, strerror(errno));
	t->flow_bytes = 0;
	flowlog_open(t);
	log_debug("flow log rotated: %s -> %s", t->flow_path, old);
}

static json_t *endpoint_json(const struct telemetry *t, uint32_t id, const __be32 addr[4],
			     __be16 port)
{
	struct tm_names n = labels_of(t, id);
	char a[SL_ADDRSTRLEN], ap[SL_ADDRSTRLEN + 8];

	json_t *j = json_pack("{s:i, s:s, s:s, s:s}", "identity", id, "workload", n.workload,
			      "namespace", n.ns, "principal", n.principal);

	/* a client denied at connect() has no address yet */
	if (j && (addr[0] | addr[1] | addr[2] | addr[3])) {
		addr_fmt(addr, a);
		snprintf(ap, sizeof(ap), addr_is_v4(addr) ? "%s:%u" : "[%s]:%u", a, ntohs(port));
		json_object_set_new(j, "address", json_string(ap));
	}
	return j;
}

/* Write the pending lines, in one write() where the kernel takes it. */
void flowlog_flush(struct telemetry *t)
{
	struct buf *q = &t->flowq;

	if (buf_avail(q))
		fflush(t->flow); /* stdout: what stdio holds goes first */
	while (buf_avail(q)) {
		ssize_t n = write(fileno(t->flow), q->d + q->off, buf_avail(q));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_debug("flow log %s: %s: %zu bytes dropped", t->flow_path,
				  n < 0 ? strerror(errno) : "short write", buf_avail(q));
			break;
		}
		q->off += (size_t)n;
		t->flow_bytes += (uint64_t)n;
	}
	q->off = q->len = 0;
}

/*
 * One JSON line to the flow log (takes j). Lines wait in t->flowq and
 * are written together at the end of a poll round (telemetry_poll_ring),
 * once FLOWQ_MAX bytes wait, or with the line that takes the file to its
 * size limit, after which it rotates: a file ends with a whole line, the
 * first at or past the limit, as when every line had its own write().
 */
#define FLOWQ_MAX (256u << 10)
static void flow_write(struct telemetry *t, json_t *j)
{
	char *line;
	size_t n;

	if (!j)
		return;
	line = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!line)
		return;
	n = strlen(line);
	line[n] = '\n'; /* over the terminating NUL: the length is n + 1 */
	if (buf_add(&t->flowq, line, n + 1)) {
		flowlog_flush(t);
		if (buf_add(&t->flowq, line, n + 1))
			log_debug("flow log: out of memory: a line dropped");
	}
	free(line);
	if (t->flow_max && t->flow_bytes + buf_avail(&t->flowq) >= t->flow_max) {
		flowlog_flush(t);
		flow_rotate(t);
	} else if (buf_avail(&t->flowq) >= FLOWQ_MAX) {
		flowlog_flush(t);
	}
}

int flowlog_on_event(void *ctx, void *data, size_t len)
{
	struct telemetry *t = ctx;
	const struct sl_event *e = data;
	struct timespec mono, real;
	double when;
	json_t *j;

	/* Bound the work per poll: under a flood of events the agent must
	 * still get to its snapshot and its scrapes. Returning <0 stops
	 * libbpf's loop after this record (which counts as consumed); what
	 * stays in the ring is read on the next round, and what does not fit
	 * is counted by the producers as lost. */
	if (++t->batch > RING_BATCH)
		return -EAGAIN;
	if (len < sizeof(*e) || !t->flow)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	when = real.tv_sec + real.tv_nsec / 1e9 -
	       ((mono.tv_sec * 1e9 + mono.tv_nsec) - (double)e->ts_ns) / 1e9;
	j = json_pack("{s:f, s:s, s:s, s:o, s:o, s:s, s:s, s:i}",
		      "time", when, "type", ev_names[e->type < 5 ? e->type : 0],
		      "reporter", e->key.reporter == SL_REPORTER_DESTINATION ? "destination" : "source",
		      "source", endpoint_json(t, e->key.src_id, e->saddr, e->sport),
		      "destination", endpoint_json(t, e->key.dst_id, e->daddr, e->dport),
		      "service", labels_service(t, e->key.svc_id), "protocol", proto_name(e->key.proto),
		      "port", e->key.port);
	if (!j)
		return 0;
	json_object_set_new(j, "verdict", json_string(e->type == SL_EV_DENY ? "denied" : "allowed"));
	if (e->type == SL_EV_DENY)
		json_object_set_new(j, "reason", json_string(deny_names[e->reason < sizeof(deny_names) / sizeof(deny_names[0]) ? e->reason : 0]));
	if (e->type == SL_EV_EJECT) {
		/* outlier detection (headers/sluice_traffic.h): the destination
		 * is the ejected backend */
		json_object_set_new(j, "verdict", json_string("ejected"));
		json_object_set_new(j, "ejections", json_integer(e->reason));
		json_object_set_new(j, "ejection_ms", json_real(e->duration_ns / 1e6));
	}
	if (e->type == SL_EV_CLOSE) {
		json_object_set_new(j, "bytes_sent", json_integer((json_int_t)e->bytes_sent));
		json_object_set_new(j, "bytes_received", json_integer((json_int_t)e->bytes_received));
		json_object_set_new(j, "duration_ms", json_real(e->duration_ns / 1e6));
	}
	flow_write(t, j);
	return 0;
}

void flowlog_proxy(struct telemetry *t, const struct tm_proxy_flow *f)
{
	struct timespec real;
	json_t *j, *src, *dst;

	if (!t->flow)
		return;
	clock_gettime(CLOCK_REALTIME, &real);
	src = endpoint_json(t, f->src_id, f->saddr, htons(f->sport));
	dst = endpoint_json(t, f->dst_id, f->daddr, htons(f->dport));
	if (src && f->src_principal)
		json_object_set_new(src, "principal", json_string(f->src_principal));
	if (dst && f->dst_principal)
		json_object_set_new(dst, "principal", json_string(f->dst_principal));
	j = json_pack("{s:f, s:s, s:s, s:o, s:o, s:s, s:s, s:i, s:s, s:s}",
		      "time", real.tv_sec + real.tv_nsec / 1e9, "type", f->type,
		      "reporter", f->reporter == SL_REPORTER_DESTINATION ? "destination" : "source",
		      "source", src, "destination", dst, "service", "unknown", "protocol", "TCP",
		      "port", f->dport, "path", "hbone", "verdict",
		      strcmp(f->type, "deny") ? "allowed" : "denied");
	if (j && f->reason)
		json_object_set_new(j, "reason", json_string(f->reason));
	if (j && !strcmp(f->type, "close")) {
		json_object_set_new(j, "bytes_sent", json_integer((json_int_t)f->sent));
		json_object_set_new(j, "bytes_received", json_integer((json_int_t)f->received));
		json_object_set_new(j, "duration_ms", json_real(f->duration_ms));
	}
	flow_write(t, j);
	flowlog_flush(t);
}

void flowlog_close(struct telemetry *t)
{
	if (t->flow)
		flowlog_flush(t);
	buf_free(&t->flowq);
	if (t->flow && t->flow != stdout)
		fclose(t->flow);
	t->flow = NULL;
}
