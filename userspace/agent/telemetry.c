// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "agent/telemetry.h"
#include "lib/core/addr.h"
#include "lib/core/bpfmap.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"
#include "sluice_flow.h"

/* ---- labels -------------------------------------------------------------- */

struct names {
	const char *workload, *ns, *principal;
};

/* The names of one identity, for the flow log: t->names, sorted by id.
 * NULL where the labels have none. */
struct tm_name {
	uint32_t id;
	size_t order;   /* the workload's place in the labels; SIZE_MAX: none */
	const char *workload, *ns, *principal;
};

static int tm_name_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct tm_name *)a)->id, y = ((const struct tm_name *)b)->id;

	return x < y ? -1 : x > y;
}

static int tm_name_order(const void *a, const void *b)
{
	const struct tm_name *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Index the labels by identity: its principal (SPIFFE id), and the
 * workload and namespace of the first workload that has it. */
static void names_index(struct telemetry *t)
{
	const struct snapshot *s = &t->labels;
	size_t n = 0, k = 0;

	t->names = calloc(s->nidentities + s->nworkloads + 1, sizeof(*t->names));
	if (!t->names)
		return;
	for (size_t i = 0; i < s->nidentities; i++)
		t->names[n++] = (struct tm_name){ .id = s->identities[i].id, .order = SIZE_MAX,
						  .principal = s->identities[i].spiffe };
	for (size_t i = 0; i < s->nworkloads; i++)
		t->names[n++] = (struct tm_name){ .id = s->workloads[i].identity, .order = i,
						  .workload = s->workloads[i].name,
						  .ns = s->workloads[i].ns };
	/* by id, and within an id the first workload first */
	qsort(t->names, n, sizeof(*t->names), tm_name_order);
	for (size_t i = 0, j; i < n; i = j) {
		struct tm_name m = t->names[i];

		for (j = i + 1; j < n && t->names[j].id == m.id; j++)
			if (!m.principal)
				m.principal = t->names[j].principal;
		t->names[k++] = m;
	}
	t->nnames = k;
}

static struct names id_names(const struct telemetry *t, uint32_t id)
{
	struct names n = { "unknown", "unknown", "unknown" };
	const struct tm_name key = { .id = id }, *f;

	if (id == SL_ID_WORLD)
		n.workload = n.ns = n.principal = "world";
	f = t->names ? bsearch(&key, t->names, t->nnames, sizeof(*t->names), tm_name_cmp) : NULL;
	if (f && f->principal)
		n.principal = f->principal;
	if (f && f->workload) {
		n.workload = f->workload;
		n.ns = f->ns;
	}
	return n;
}

static const char *svc_name(const struct telemetry *t, uint32_t svc_id)
{
	if (!svc_id || svc_id > SL_MAX_SERVICES || !t->svc_names || !t->svc_names[svc_id])
		return "unknown";
	return t->svc_names[svc_id];
}

static void labels_free(struct telemetry *t)
{
	free(t->names);
	t->names = NULL;
	t->nnames = 0;
	free(t->labels.identities);
	free(t->labels.workloads);
	memset(&t->labels, 0, sizeof(t->labels));
}

static void svc_names_free(struct telemetry *t)
{
	for (size_t i = 0; t->svc_names && i < t->nsvc_named; i++)
		free(t->svc_names[t->svc_named[i]]);
	free(t->svc_names);
	free(t->svc_named);
	t->svc_names = NULL;
	t->svc_named = NULL;
	t->nsvc_named = 0;
}

/* an empty array may be NULL, which memcpy must not be passed even for 0 bytes */
#define DUP_ARRAY(dst, src, n) \
	((dst) = malloc(((n) ?: 1) * sizeof(*(src))), \
	 (dst) && (n) ? memcpy((dst), (src), (n) * sizeof(*(src))) : NULL)

/* Service names by id: only a name that changed is written, and ids no
 * service has any more lose theirs. */
static void svc_names_set(struct telemetry *t, const struct snapshot *s, const uint32_t *svc_ids)
{
	uint64_t *now = calloc((SL_MAX_SERVICES + 64) / 64, sizeof(*now));
	uint32_t *named = malloc((s->nservices ?: 1) * sizeof(*named));
	size_t n = 0;

	if (!t->svc_names)
		t->svc_names = calloc(SL_MAX_SERVICES + 1, sizeof(*t->svc_names));
	if (!now || !named || !t->svc_names) {
		log_err("telemetry: out of memory for service names");
		svc_names_free(t);
		goto out;
	}
	for (size_t i = 0; svc_ids && i < s->nservices; i++) {
		uint32_t id = svc_ids[i];
		char **name;

		if (!id || id > SL_MAX_SERVICES || (now[id / 64] >> (id % 64)) & 1)
			continue;
		now[id / 64] |= 1ull << (id % 64);
		named[n++] = id;
		name = &t->svc_names[id];
		if (*name && strcmp(*name, s->services[i].name) == 0)
			continue;
		free(*name);
		*name = strdup(s->services[i].name);
	}
	for (size_t i = 0; i < t->nsvc_named; i++) {
		uint32_t id = t->svc_named[i];

		if (!((now[id / 64] >> (id % 64)) & 1)) {
			free(t->svc_names[id]);
			t->svc_names[id] = NULL;
		}
	}
	free(t->svc_named);
	t->svc_named = named;
	t->nsvc_named = n;
	named = NULL;
out:
	free(now);
	free(named);
}

void telemetry_set_labels(struct telemetry *t, const struct snapshot *s, const uint32_t *svc_ids)
{
	labels_free(t);
	t->version = s->version;
	t->labels.nidentities = s->nidentities;
	t->labels.nworkloads = s->nworkloads;
	DUP_ARRAY(t->labels.identities, s->identities, s->nidentities);
	DUP_ARRAY(t->labels.workloads, s->workloads, s->nworkloads);
	if (!t->labels.identities || !t->labels.workloads) {
		log_err("telemetry: out of memory for labels");
		labels_free(t);
	}
	names_index(t);
	svc_names_set(t, s, svc_ids);
}

/* ---- flow log ------------------------------------------------------------ */

#define RING_BATCH 4096

static const char *const ev_names[] = { "?", "open", "close", "deny", "eject" };
static const char *const deny_names[] = { "", "policy_connect", "policy_ingress", "spoof",
					   "mtls_strict", "overflow" };

static void flow_open(struct telemetry *t)
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
	flow_open(t);
	log_debug("flow log rotated: %s -> %s", t->flow_path, old);
}

static json_t *endpoint_json(const struct telemetry *t, uint32_t id, const __be32 addr[4],
			     __be16 port)
{
	struct names n = id_names(t, id);
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
static void flow_flush(struct telemetry *t)
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
		flow_flush(t);
		if (buf_add(&t->flowq, line, n + 1))
			log_debug("flow log: out of memory: a line dropped");
	}
	free(line);
	if (t->flow_max && t->flow_bytes + buf_avail(&t->flowq) >= t->flow_max) {
		flow_flush(t);
		flow_rotate(t);
	} else if (buf_avail(&t->flowq) >= FLOWQ_MAX) {
		flow_flush(t);
	}
}

static int on_event(void *ctx, void *data, size_t len)
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
		      "service", svc_name(t, e->key.svc_id), "protocol", proto_name(e->key.proto),
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

/* ---- metrics --------------------------------------------------------------- */

static void label_set(FILE *f, const struct telemetry *t, const struct sl_metric_key *k)
{
	struct names s = id_names(t, k->src_id), d = id_names(t, k->dst_id);

	fprintf(f, "{reporter=\"%s\",source_workload=\"%s\",source_workload_namespace=\"%s\","
		"source_principal=\"%s\",destination_service=\"%s\",destination_workload=\"%s\","
		"destination_workload_namespace=\"%s\",destination_principal=\"%s\","
		"destination_port=\"%u\",request_protocol=\"%s\"}",
		k->reporter == SL_REPORTER_DESTINATION ? "destination" : "source",
		s.workload, s.ns, s.principal, svc_name(t, k->svc_id), d.workload, d.ns,
		d.principal, k->port, k->proto == IPPROTO_UDP ? "udp" : "tcp");
}

/* The proxy's rows: the same families (TYPE lines were printed with the
 * kernel's), plus connection_security_policy as Istio labels it. */
static void render_proxy(const struct telemetry *t, FILE *f)
{
	static const char *const fam[] = { "istio_tcp_connections_opened_total",
		"istio_tcp_connections_closed_total", "istio_tcp_sent_bytes_total",
		"istio_tcp_received_bytes_total", "sluice_connections_denied_total" };

	for (size_t i = 0; i < 5; i++) {
		for (size_t j = 0; j < t->nprows; j++) {
			const struct tm_proxy_row *r = &t->prows[j];
			struct names s = id_names(t, r->src_id), d = id_names(t, r->dst_id);
			uint64_t v = i == 0 ? r->opened : i == 1 ? r->closed : i == 2 ? r->received :
				     i == 3 ? r->sent : r->denied;

			fprintf(f, "%s{reporter=\"%s\",source_workload=\"%s\",source_workload_namespace=\"%s\","
				"source_principal=\"%s\",destination_service=\"unknown\",destination_workload=\"%s\","
				"destination_workload_namespace=\"%s\",destination_principal=\"%s\","
				"destination_port=\"%u\",request_protocol=\"tcp\","
				"connection_security_policy=\"mutual_tls\"} %llu\n", fam[i],
				r->reporter == SL_REPORTER_DESTINATION ? "destination" : "source",
				s.workload, s.ns, r->src_principal, d.workload, d.ns, r->dst_principal,
				r->port, (unsigned long long)v);
		}
	}
	fprintf(f, "# HELP sluice_proxy_refused_total Connections, handshakes and CONNECTs the "
		   "node proxy refused or cut off, by reason.\n# TYPE sluice_proxy_refused_total counter\n");
	for (size_t i = 0; i < TM_PROXY_REASONS && t->preason[i]; i++)
		fprintf(f, "sluice_proxy_refused_total{reason=\"%s\"} %llu\n", t->preason[i],
			(unsigned long long)t->pcount[i]);
	fprintf(f, "# HELP sluice_proxy_tunnels Tunnels open in the node proxy.\n"
		   "# TYPE sluice_proxy_tunnels gauge\nsluice_proxy_tunnels %llu\n",
		(unsigned long long)t->proxy_tunnels);
	fprintf(f, "# HELP sluice_hbone_identity_mismatch_total HBONE connections the node proxy "
		   "refused because the server presented another identity than the destination's.\n"
		   "# TYPE sluice_hbone_identity_mismatch_total counter\n"
		   "sluice_hbone_identity_mismatch_total %llu\n",
		(unsigned long long)t->hbone_identity_mismatch);
	fprintf(f, "# HELP sluice_proxy_restarts_total Node proxy processes started in place of "
		   "another, by reason (crash: it died; upgrade: a hot restart).\n"
		   "# TYPE sluice_proxy_restarts_total counter\n"
		   "sluice_proxy_restarts_total{reason=\"crash\"} %llu\n"
		   "sluice_proxy_restarts_total{reason=\"upgrade\"} %llu\n"
		   "# HELP sluice_proxy_drains_total Node proxies that drained for a successor.\n"
		   "# TYPE sluice_proxy_drains_total counter\nsluice_proxy_drains_total %llu\n"
		   "# HELP sluice_proxy_events_dropped_total Flow events the node proxy dropped while "
		   "the agent was away.\n# TYPE sluice_proxy_events_dropped_total counter\n"
		   "sluice_proxy_events_dropped_total %llu\n",
		(unsigned long long)t->proxy_restarts[TM_RESTART_CRASH],
		(unsigned long long)t->proxy_restarts[TM_RESTART_UPGRADE],
		(unsigned long long)t->proxy_drains, (unsigned long long)t->proxy_events_dropped);
}

/* Traffic policy counters (headers/sluice_traffic.h), per service with a
 * policy: connects refused by maxConnections (Envoy's upstream_cx_overflow),
 * connections holding a slot, ejections, and the backends ejected now. */
static void render_traffic(const struct telemetry *t, FILE *f)
{
	const struct lbmap *m = &t->dp->maps;
	__u32 id, *prev = NULL;
	struct sl_be_key bk, *bprev = NULL;
	struct timespec now;
	uint64_t now_ns;
	char addr[SL_ADDRSTRLEN];

	clock_gettime(CLOCK_MONOTONIC, &now);
	now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	fprintf(f, "# HELP sluice_tcp_connections_overflow_total Connects refused because the "
		   "service's connectionPool.tcp.maxConnections were open.\n"
		   "# TYPE sluice_tcp_connections_overflow_total counter\n");
	while (bpf_map_get_next_key(m->pol_fd, prev, &id) == 0) {
		struct sl_svc_state st = {};

		prev = &id;
		if (bpf_map_lookup_elem_flags(m->st_fd, &id, &st, BPF_F_LOCK) == 0)
			fprintf(f, "sluice_tcp_connections_overflow_total{destination_service=\"%s\"} %llu\n"
				"sluice_tcp_connections_pooled{destination_service=\"%s\"} %u\n"
				"sluice_outlier_ejections_total{destination_service=\"%s\"} %llu\n",
				svc_name(t, id), (unsigned long long)st.overflow, svc_name(t, id),
				st.active, svc_name(t, id), (unsigned long long)st.ejections);
	}
	fprintf(f, "# HELP sluice_outlier_ejected Backends outlier detection has ejected now.\n"
		   "# TYPE sluice_outlier_ejected gauge\n");
	while (bpf_map_get_next_key(m->bst_fd, bprev, &bk) == 0) {
		struct sl_be_state bs = {};
		struct sl_backend be;

		bprev = &bk;
		if (bpf_map_lookup_elem_flags(m->bst_fd, &bk, &bs, BPF_F_LOCK) || bs.until <= now_ns ||
		    bpf_map_lookup_elem(m->be_fd, &bk.backend_id, &be))
			continue;
		fprintf(f, addr_is_v4(be.addr) ?
			"sluice_outlier_ejected{destination_service=\"%s\",backend=\"%s:%u\"} 1\n" :
			"sluice_outlier_ejected{destination_service=\"%s\",backend=\"[%s]:%u\"} 1\n",
			svc_name(t, bk.svc_id), addr_fmt(be.addr, addr), ntohs(be.port));
	}
}

static void render(struct telemetry *t, FILE *f)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} fam[] = {
		{ "istio_tcp_connections_opened_total", "TCP connections opened.", offsetof(struct sl_metric_val, opened) },
		{ "istio_tcp_connections_closed_total", "TCP connections closed.", offsetof(struct sl_metric_val, closed) },
		{ "istio_tcp_sent_bytes_total", "Response bytes (destination to source) of closed TCP connections.", offsetof(struct sl_metric_val, bytes_received) },
		{ "istio_tcp_received_bytes_total", "Request bytes (source to destination) of closed TCP connections.", offsetof(struct sl_metric_val, bytes_sent) },
		{ "sluice_connections_denied_total", "Connections and datagrams denied by L4 policy.", offsetof(struct sl_metric_val, denied) },
	};
	static const char *const reasons[SL_DROP_MAX] = { "policy_connect", "policy_ingress", "spoof",
							  "events_lost", "mtls_strict" };
	int ncpu = libbpf_num_possible_cpus();
	struct sl_metric_key *keys = NULL;
	struct sl_metric_val *sums = NULL, *pc = NULL;
	size_t n = 0, cap = 0;
	int mfd;
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", t->dp->pin_root, SL_MAP_METRICS);
	mfd = bpf_obj_get(path);
	pc = calloc((size_t)(ncpu > 0 ? ncpu : 1), sizeof(*pc));
	if (mfd >= 0 && pc) {
		struct sl_metric_key k, *prev = NULL;

		while (bpf_map_get_next_key(mfd, prev, &k) == 0) {
			if (n == cap) {
				void *nk = realloc(keys, (cap = cap * 2 + 64) * sizeof(*keys));
				void *ns = nk ? realloc(sums, cap * sizeof(*sums)) : NULL;

				if (nk)
					keys = nk;
				if (!ns)
					break;
				sums = ns;
			}
			keys[n] = k;
			prev = &keys[n];
			memset(&sums[n], 0, sizeof(sums[n]));
			if (bpf_map_lookup_elem(mfd, &k, pc) == 0) {
				for (int c = 0; c < ncpu; c++) {
					sums[n].opened += pc[c].opened;
					sums[n].closed += pc[c].closed;
					sums[n].denied += pc[c].denied;
					sums[n].bytes_sent += pc[c].bytes_sent;
					sums[n].bytes_received += pc[c].bytes_received;
				}
				n++;
			}
		}
	}
	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", fam[i].name, fam[i].help, fam[i].name);
		for (size_t j = 0; j < n; j++) {
			uint64_t v = *(uint64_t *)((char *)&sums[j] + fam[i].off);

			if (i < 4 && keys[j].proto != IPPROTO_TCP)
				continue; /* Istio's tcp metrics are TCP only */
			fprintf(f, "%s", fam[i].name);
			label_set(f, t, &keys[j]);
			fprintf(f, " %llu\n", (unsigned long long)v);
		}
	}
	render_proxy(t, f);
	render_traffic(t, f);
	fprintf(f, "# HELP sluice_drops_total Packets and calls dropped by the data plane, by reason.\n"
		   "# TYPE sluice_drops_total counter\n");
	for (uint32_t r = 0; r < SL_DROP_MAX; r++)
		if (r != SL_DROP_EVENTS_LOST)
			fprintf(f, "sluice_drops_total{reason=\"%s\"} %llu\n", reasons[r],
				(unsigned long long)polmap_drops(&t->dp->pol, r));
	fprintf(f, "# HELP sluice_flow_events_lost_total Flow events lost because the ring buffer was full.\n"
		   "# TYPE sluice_flow_events_lost_total counter\n"
		   "sluice_flow_events_lost_total %llu\n",
		(unsigned long long)polmap_drops(&t->dp->pol, SL_DROP_EVENTS_LOST));
	fprintf(f, "# HELP sluice_snapshot_version Version of the last applied snapshot.\n"
		   "# TYPE sluice_snapshot_version gauge\nsluice_snapshot_version %llu\n",
		(unsigned long long)t->version);
	fprintf(f, "# HELP sluice_map_entries Entries in the data plane's maps.\n"
		   "# TYPE sluice_map_entries gauge\n");
	fprintf(f, "sluice_map_entries{map=\"%s\"} %zu\n", SL_MAP_SERVICES,
		map_count_keys(t->dp->maps.svc_fd, sizeof(struct sl_svc_key)));
	fprintf(f, "sluice_map_entries{map=\"%s\"} %zu\n", SL_MAP_BACKENDS,
		map_count_keys(t->dp->maps.be_fd, sizeof(__u32)));
	fprintf(f, "sluice_map_entries{map=\"%s\"} %zu\n", SL_MAP_POLICY,
		map_count_keys(t->dp->pol.policy_fd, sizeof(struct sl_policy_key)));
	fprintf(f, "sluice_map_entries{map=\"%s\"} %zu\n", SL_MAP_METRICS, n);
	fprintf(f, "# HELP sluice_metrics_scrapes_total Scrapes of this endpoint.\n"
		   "# TYPE sluice_metrics_scrapes_total counter\nsluice_metrics_scrapes_total %llu\n",
		(unsigned long long)++t->scrapes);
	if (mfd >= 0)
		close(mfd);
	free(keys);
	free(sums);
	free(pc);
}

void telemetry_serve(struct telemetry *t)
{
	struct timeval tv = { .tv_sec = 1 };
	char req[1024], *body = NULL, hdr[256];
	size_t blen = 0;
	ssize_t r;
	FILE *m;
	int c;

	c = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	/* a scraper that stalls costs at most a second */
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	r = recv(c, req, sizeof(req) - 1, 0);
	if (r <= 0)
		goto out;
	req[r] = '\0';
	if (strncmp(req, "GET /healthz ", 13) == 0 || strncmp(req, "GET /readyz ", 12) == 0) {
		const char *h = req[5] == 'h' || t->ready ?
			"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nok\n" :
			"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
			"Connection: close\r\n\r\nnot ready: no snapshot applied yet\n";

		if (send(c, h, strlen(h), MSG_NOSIGNAL) < 0)
			goto out;
		goto out;
	}
	if (strncmp(req, "GET /metrics ", 13) != 0 && strncmp(req, "GET /metrics?", 13) != 0) {
		const char *nf = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
				 "Connection: close\r\n\r\nonly /metrics, /healthz and /readyz are served here\n";

		if (send(c, nf, strlen(nf), MSG_NOSIGNAL) < 0)
			goto out;
		goto out;
	}
	m = open_memstream(&body, &blen);
	if (!m)
		goto out;
	render(t, m);
	fclose(m);
	snprintf(hdr, sizeof(hdr), "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n", blen);
	if (send(c, hdr, strlen(hdr), MSG_NOSIGNAL) > 0)
		for (size_t off = 0; off < blen;) {
			ssize_t w = send(c, body + off, blen - off, MSG_NOSIGNAL);

			if (w <= 0)
				break;
			off += (size_t)w;
		}
out:
	free(body);
	close(c);
}

/* ---- life cycle ---------------------------------------------------------- */

int telemetry_init(struct telemetry *t, struct datapath *dp, const char *flow_path,
		   uint64_t flow_max, const char *metrics_addr)
{
	char path[4096];
	int fd;

	memset(t, 0, sizeof(*t));
	t->dp = dp;
	t->listen_fd = -1;
	t->flow_path = flow_path;
	t->flow_max = flow_max;
	flow_open(t);
	/* no flow log: the programs write no events (datapath_open), and the
	 * ring (SL_EVENTS_BYTES, which libbpf maps twice) stays unmapped */
	if (!flow_path)
		goto metrics;
	snprintf(path, sizeof(path), "%s/%s", dp->pin_root, SL_MAP_EVENTS);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		log_err("opening %s: %s", path, strerror(errno));
		return -errno;
	}
	t->rb = ring_buffer__new(fd, on_event, t, NULL);
	close(fd); /* the ring buffer holds its own reference */
	if (!t->rb) {
		log_err("flow events ring buffer: %s", strerror(errno));
		return -errno;
	}
metrics:
	if (metrics_addr) {
		t->listen_fd = addr_listen(metrics_addr, 64);
		if (t->listen_fd < 0) {
			int err = t->listen_fd;

			log_err("--metrics-addr %s: %s", metrics_addr,
				err == -EINVAL ? "not ADDRESS:PORT" : strerror(-err));
			return err;
		}
		log_info("serving metrics on http://%s/metrics", metrics_addr);
	}
	return 0;
}

int telemetry_ring_fd(const struct telemetry *t)
{
	return t->rb ? ring_buffer__epoll_fd(t->rb) : -1;
}

int telemetry_ring_timeout_ms(const struct telemetry *t)
{
	return t->rb && t->flow ? SL_EVENTS_POLL_MS : -1;
}

void telemetry_poll_ring(struct telemetry *t)
{
	t->batch = 0;
	if (t->rb)
		ring_buffer__consume(t->rb);
	if (t->flow)
		flow_flush(t);
}

void telemetry_proxy_event(struct telemetry *t, const struct tm_proxy_flow *f)
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
	flow_flush(t);
}

void telemetry_proxy_count(struct telemetry *t, const struct tm_proxy_flow *f, bool opened,
			   bool closed, bool denied)
{
	const char *sp = f->src_principal ?: id_names(t, f->src_id).principal;
	const char *dp = f->dst_principal ?: id_names(t, f->dst_id).principal;
	struct tm_proxy_row *r = NULL;

	for (size_t i = 0; i < t->nprows && !r; i++) {
		struct tm_proxy_row *x = &t->prows[i];

		if (x->reporter == f->reporter && x->port == f->dport && x->src_id == f->src_id &&
		    x->dst_id == f->dst_id && !strcmp(x->src_principal, sp) &&
		    !strcmp(x->dst_principal, dp))
			r = x;
	}
	if (!r) {
		struct tm_proxy_row *nv;

		if (t->nprows >= 65536)
			return;   /* bounded: a label explosion stops counting new sets */
		nv = realloc(t->prows, (t->nprows + 1) * sizeof(*nv));
		if (!nv)
			return;
		t->prows = nv;
		r = &t->prows[t->nprows++];
		memset(r, 0, sizeof(*r));
		r->reporter = f->reporter;
		r->port = f->dport;
		r->src_id = f->src_id;
		r->dst_id = f->dst_id;
		snprintf(r->src_principal, sizeof(r->src_principal), "%s", sp);
		snprintf(r->dst_principal, sizeof(r->dst_principal), "%s", dp);
	}
	r->opened += opened;
	r->closed += closed;
	r->denied += denied;
	if (closed) {
		r->sent += f->sent;
		r->received += f->received;
	}
}

void telemetry_proxy_refused(struct telemetry *t, const char *reason)
{
	for (size_t i = 0; i < TM_PROXY_REASONS; i++) {
		if (!t->preason[i])
			t->preason[i] = reason;   /* static strings only */
		if (!strcmp(t->preason[i], reason)) {
			t->pcount[i]++;
			return;
		}
	}
}

void telemetry_fini(struct telemetry *t)
{
	ring_buffer__free(t->rb);
	t->rb = NULL;
	if (t->flow)
		flow_flush(t);
	buf_free(&t->flowq);
	if (t->flow && t->flow != stdout)
		fclose(t->flow);
	t->flow = NULL;
	if (t->listen_fd >= 0)
		close(t->listen_fd);
	t->listen_fd = -1;
	labels_free(t);
	svc_names_free(t);
	free(t->prows);
	t->prows = NULL;
	t->nprows = 0;
}
