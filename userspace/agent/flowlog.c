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

#include "agent/flowlog.h"
#include "agent/labels.h"
#include "agent/telemetry.h"
#include "lib/core/addr.h"
#include "lib/core/jsonw.h"
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
 * A flow event as the flow log writes it (docs/operations.md has the
 * fields). The line is formatted straight into the queue, in the order
 * and number formats jansson's compact dump gave it (reals as %.17g, with
 * ".0" when integral): a jansson tree per event cost the agent more than
 * the kernel's side of the connection.
 */
struct flow_line {
	double time;
	const char *type, *reporter;
	uint32_t src_id, dst_id;
	const __be32 *saddr, *daddr;
	uint16_t sport, dport;           /* host order */
	const char *src_principal, *dst_principal; /* NULL: the labels' */
	const char *service, *protocol;
	unsigned int port;
	const char *path;                /* NULL: not through a proxy */
	const char *verdict, *reason;    /* reason NULL: none */
	bool eject, close;
	uint32_t ejections;
	double ejection_ms;
	uint64_t sent, received;
	double duration_ms;
};

static void put_key(struct jsonw *w, const char *key)
{
	jw_raw(w, ",\"", 2);
	jw_lit(w, key);
	jw_raw(w, "\":", 2);
}

/* ,"key":value */
static void put_kstr(struct jsonw *w, const char *key, const char *v)
{
	put_key(w, key);
	jw_str(w, v);
}

static void put_ku64(struct jsonw *w, const char *key, uint64_t v)
{
	put_key(w, key);
	jw_u64(w, v);
}

static void put_kreal(struct jsonw *w, const char *key, double v)
{
	put_key(w, key);
	jw_real(w, v);
}

static void put_endpoint(struct jsonw *w, const struct telemetry *t, uint32_t id,
			 const char *principal, const __be32 addr[4], uint16_t port)
{
	struct tm_names n = labels_of(t, id);
	char a[SL_ADDRSTRLEN], ap[SL_ADDRSTRLEN + 8];

	jw_lit(w, "{\"identity\":");
	jw_u64(w, id);
	put_kstr(w, "workload", n.workload);
	put_kstr(w, "namespace", n.ns);
	put_kstr(w, "principal", principal ?: n.principal);
	/* a client denied at connect() has no address yet */
	if (addr[0] | addr[1] | addr[2] | addr[3]) {
		addr_fmt(addr, a);
		snprintf(ap, sizeof(ap), addr_is_v4(addr) ? "%s:%u" : "[%s]:%u", a, port);
		put_kstr(w, "address", ap);
	}
	jw_raw(w, "}", 1);
}

/* Queue one line; written at the end of the poll round (flowlog_flush),
 * once FLOWQ_MAX bytes wait, or with the line that takes the file to its
 * size limit, after which it rotates: a file ends with a whole line, the
 * first at or past the limit, as when every line had its own write(). */
#define FLOWQ_MAX (256u << 10)
static void flow_write(struct telemetry *t, const struct flow_line *l)
{
	struct jsonw w = { .q = &t->flowq };
	size_t start = t->flowq.len;

	jw_lit(&w, "{\"time\":");
	jw_real(&w, l->time);
	put_kstr(&w, "type", l->type);
	put_kstr(&w, "reporter", l->reporter);
	put_key(&w, "source");
	put_endpoint(&w, t, l->src_id, l->src_principal, l->saddr, l->sport);
	put_key(&w, "destination");
	put_endpoint(&w, t, l->dst_id, l->dst_principal, l->daddr, l->dport);
	put_kstr(&w, "service", l->service);
	put_kstr(&w, "protocol", l->protocol);
	put_ku64(&w, "port", l->port);
	if (l->path)
		put_kstr(&w, "path", l->path);
	put_kstr(&w, "verdict", l->verdict);
	if (l->reason)
		put_kstr(&w, "reason", l->reason);
	if (l->eject) {
		put_ku64(&w, "ejections", l->ejections);
		put_kreal(&w, "ejection_ms", l->ejection_ms);
	}
	if (l->close) {
		put_ku64(&w, "bytes_sent", l->sent);
		put_ku64(&w, "bytes_received", l->received);
		put_kreal(&w, "duration_ms", l->duration_ms);
	}
	jw_raw(&w, "}\n", 2);
	if (w.err) {
		/* out of memory (or a name that is not UTF-8): no half line
		 * stays queued */
		t->flowq.len = start;
		log_debug("flow log: an event dropped (out of memory or a name not UTF-8)");
		return;
	}
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
	struct flow_line l;

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
	l = (struct flow_line){
		.time = real.tv_sec + real.tv_nsec / 1e9 -
			((mono.tv_sec * 1e9 + mono.tv_nsec) - (double)e->ts_ns) / 1e9,
		.type = ev_names[e->type < 5 ? e->type : 0],
		.reporter = e->key.reporter == SL_REPORTER_DESTINATION ? "destination" : "source",
		.src_id = e->key.src_id, .dst_id = e->key.dst_id,
		.saddr = e->saddr, .daddr = e->daddr,
		.sport = ntohs(e->sport), .dport = ntohs(e->dport),
		.service = labels_service(t, e->key.svc_id), .protocol = proto_name(e->key.proto),
		.port = e->key.port,
		.verdict = e->type == SL_EV_DENY ? "denied" : e->type == SL_EV_EJECT ? "ejected" : "allowed",
	};
	if (e->type == SL_EV_DENY)
		l.reason = deny_names[e->reason < sizeof(deny_names) / sizeof(deny_names[0]) ? e->reason : 0];
	if (e->type == SL_EV_EJECT) {
		/* outlier detection (headers/sluice_traffic.h): the destination
		 * is the ejected backend */
		l.eject = true;
		l.ejections = e->reason;
		l.ejection_ms = e->duration_ns / 1e6;
	}
	if (e->type == SL_EV_CLOSE) {
		l.close = true;
		l.sent = e->bytes_sent;
		l.received = e->bytes_received;
		l.duration_ms = e->duration_ns / 1e6;
	}
	flow_write(t, &l);
	return 0;
}

void flowlog_proxy(struct telemetry *t, const struct tm_proxy_flow *f)
{
	struct timespec real;

	if (!t->flow)
		return;
	clock_gettime(CLOCK_REALTIME, &real);
	flow_write(t, &(struct flow_line){
		.time = real.tv_sec + real.tv_nsec / 1e9, .type = f->type,
		.reporter = f->reporter == SL_REPORTER_DESTINATION ? "destination" : "source",
		.src_id = f->src_id, .dst_id = f->dst_id,
		.src_principal = f->src_principal, .dst_principal = f->dst_principal,
		.saddr = f->saddr, .daddr = f->daddr, .sport = f->sport, .dport = f->dport,
		.service = "unknown", .protocol = "TCP", .port = f->dport, .path = "hbone",
		.verdict = strcmp(f->type, "deny") ? "allowed" : "denied", .reason = f->reason,
		.close = !strcmp(f->type, "close"), .sent = f->sent, .received = f->received,
		.duration_ms = f->duration_ms,
	});
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
