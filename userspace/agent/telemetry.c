// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/telemetry.h"
#include "agent/flowlog.h"
#include "agent/labels.h"
#include "lib/core/addr.h"
#include "lib/core/bpfmap.h"
#include "lib/core/log.h"
#include "sluice_flow.h"


/* ---- labels -------------------------------------------------------------- */

void telemetry_set_labels(struct telemetry *t, const struct snapshot *s, const uint32_t *svc_ids)
{
	t->version = s->version;
	labels_set(t, s, svc_ids);
}

/* ---- metrics --------------------------------------------------------------- */

static void label_set(FILE *f, const struct telemetry *t, const struct sl_metric_key *k)
{
	struct tm_names s = labels_of(t, k->src_id), d = labels_of(t, k->dst_id);

	fprintf(f, "{reporter=\"%s\",source_workload=\"%s\",source_workload_namespace=\"%s\","
		"source_principal=\"%s\",destination_service=\"%s\",destination_workload=\"%s\","
		"destination_workload_namespace=\"%s\",destination_principal=\"%s\","
		"destination_port=\"%u\",request_protocol=\"%s\"}",
		k->reporter == SL_REPORTER_DESTINATION ? "destination" : "source",
		s.workload, s.ns, s.principal, labels_service(t, k->svc_id), d.workload, d.ns,
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
			struct tm_names s = labels_of(t, r->src_id), d = labels_of(t, r->dst_id);
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
				labels_service(t, id), (unsigned long long)st.overflow, labels_service(t, id),
				st.active, labels_service(t, id), (unsigned long long)st.ejections);
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
			labels_service(t, bk.svc_id), addr_fmt(be.addr, addr), ntohs(be.port));
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
	flowlog_open(t);
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
	t->rb = ring_buffer__new(fd, flowlog_on_event, t, NULL);
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
		flowlog_flush(t);
}

void telemetry_proxy_event(struct telemetry *t, const struct tm_proxy_flow *f)
{
	flowlog_proxy(t, f);
}

void telemetry_proxy_count(struct telemetry *t, const struct tm_proxy_flow *f, bool opened,
			   bool closed, bool denied)
{
	const char *sp = f->src_principal ?: labels_of(t, f->src_id).principal;
	const char *dp = f->dst_principal ?: labels_of(t, f->dst_id).principal;
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
	flowlog_close(t);
	if (t->listen_fd >= 0)
		close(t->listen_fd);
	t->listen_fd = -1;
	labels_free(t);
	free(t->prows);
	t->prows = NULL;
	t->nprows = 0;
}
