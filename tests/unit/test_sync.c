// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's link to a list of control plane replicas (agent/sync.c):
 * stand-in replicas on loopback (HTTP/2 over mutual TLS, the node's
 * certificate from their CA) serve /v1/watch. A replica that goes away
 * sends the agent to the next one at once, past one that refuses, with the
 * version it holds (x-sluice-have); only a whole round of failures waits.
 * Deltas: the node proxy's text has no services, the last good snapshot is
 * written from the agent's index when sync_persist() runs (after the ACK),
 * and a refused delta is NACKed and changes nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "agent/sync.h"
#include "lib/core/file.h"
#include "lib/core/loop.h"
#include "lib/wire/h2.h"
#include "lib/wire/snapdelta.h"
#include "tls_pair.h"

struct replica {
	int lfd;                   /* -1: down (connections refused) */
	int port;
	struct h2_conn *c;
	int watches;
	char have[24];             /* x-sluice-have of the last watch */
	SSL_CTX *ctx;
	const char *lines;         /* what a new watch gets; NULL: one empty snapshot */
	int acks, nacks;           /* POST /v1/ack received */
};

static int applied;
static char proxy_text[4096];      /* the node proxy's text of the last apply */
static const char *refuse;         /* an apply whose source has this refuses */

static int apply_ok(void *arg, const struct sync_snap *sn, const char *src, char *err,
		    size_t errlen)
{
	if (refuse && strstr(src, refuse)) {
		snprintf(err, errlen, "refused by the test");
		return -EINVAL;
	}
	applied++;
	snprintf(proxy_text, sizeof(proxy_text), "%.*s", (int)(sn->proxy_text ? sn->proxy_len : 0),
		 sn->proxy_text ? sn->proxy_text : "");
	return 0;
}

static void on_request(struct h2_conn *c, const struct h2_req *r, void *arg)
{
	static const char line[] = "{\"version\":1,\"snapshot\":{\"version\":1,\"services\":[]}}\n";
	struct replica *rp = arg;

	if (strcmp(r->path, "/v1/watch")) {
		if (!strcmp(r->path, "/v1/ack")) {
			rp->acks += strstr(r->body, "\"ACK\"") != NULL;
			rp->nacks += strstr(r->body, "\"NACK\"") != NULL;
		}
		h2_respond(c, r->stream_id, 200, "application/json", "{}", 2);
		return;
	}
	rp->watches++;
	rp->have[0] = '\0';
	for (size_t i = 0; i < r->nhdrs; i++)
		if (!strcmp(r->hdrs[i].name, "x-sluice-have"))
			snprintf(rp->have, sizeof(rp->have), "%s", r->hdrs[i].value);
	h2_respond_stream(c, r->stream_id, 200, "application/x-ndjson");
	if (rp->lines)
		h2_stream_write(c, r->stream_id, rp->lines, strlen(rp->lines));
	else if (!rp->have[0])   /* a resumed watch gets nothing: it is current */
		h2_stream_write(c, r->stream_id, line, sizeof(line) - 1);
}

static void on_stream_close(struct h2_conn *c, int32_t id, void *arg) {}

static const struct h2_server_ops ops = { on_request, on_stream_close };

/* Listen on port (0: any free one). */
static void replica_up(struct replica *rp, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int one = 1;

	rp->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cr_assert_geq(rp->lfd, 0);
	setsockopt(rp->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(rp->lfd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	cr_assert_eq(listen(rp->lfd, 8), 0);
	cr_assert_eq(getsockname(rp->lfd, (struct sockaddr *)&a, &l), 0);
	rp->port = ntohs(a.sin_port);
}

/* Gone: its connection closed, its port refusing. */
static void replica_down(struct replica *rp)
{
	h2_conn_free(rp->c);
	rp->c = NULL;
	if (rp->lfd >= 0)
		close(rp->lfd);
	rp->lfd = -1;
}

/* Run the agent's link and the replicas for up to ms, or until *cond. */
static void pump(struct sync *s, struct replica *r, int n, unsigned int ms, const int *cond, int want)
{
	uint64_t end = loop_now_ms() + ms;

	while (loop_now_ms() < end && (!cond || *cond < want)) {
		struct pollfd p[1 + 2 * 3];
		int t = sync_timeout_ms(s);

		p[0] = (struct pollfd){ sync_fd(s), sync_events(s), 0 };
		for (int i = 0; i < n; i++) {
			p[1 + 2 * i] = (struct pollfd){ r[i].lfd, POLLIN, 0 };
			p[2 + 2 * i] = (struct pollfd){ r[i].c ? h2_conn_fd(r[i].c) : -1,
							r[i].c ? (short)h2_conn_events(r[i].c) : 0, 0 };
		}
		poll(p, (nfds_t)(1 + 2 * n), t < 0 || t > 5 ? 5 : t);
		sync_handle(s, p[0].revents);
		for (int i = 0; i < n; i++) {
			if (r[i].lfd >= 0 && (p[1 + 2 * i].revents & POLLIN)) {
				int fd = accept4(r[i].lfd, NULL, NULL, SOCK_CLOEXEC);

				if (fd >= 0) {
					h2_conn_free(r[i].c);
					r[i].c = h2_server_conn(fd, r[i].ctx, NULL, &ops, &r[i]);
				}
			}
			if (r[i].c && (h2_conn_io(r[i].c, (unsigned int)p[2 + 2 * i].revents) ||
				       h2_conn_tick(r[i].c))) {
				h2_conn_free(r[i].c);
				r[i].c = NULL;
			}
		}
	}
}

/* A temporary dir with a CA, the control plane's and node n1's
 * credentials, and n1's state dir (sd) holding its key and certificate. */
static void node_n1(struct tls_pair *t, char *dir, size_t dlen, char sd[96], char ca[96])
{
	char path[160];

	tp_tmpdir(dir, dlen, "sync");
	tp_pair_new(t, dir, "spiffe://td/sluice/control", "spiffe://td/sluice/node/n1");
	snprintf(sd, 96, "%s/agent", dir);
	cr_assert_eq(mkdir(sd, 0700), 0);
	snprintf(path, sizeof(path), "%s/node.key", sd);
	cr_assert_eq(pki_key_save(path, t->cid.key), 0);
	snprintf(path, sizeof(path), "%s/node.crt", sd);
	cr_assert_eq(pki_cert_save(path, t->cid.cert), 0);
	snprintf(ca, 96, "%s/ca.crt", dir);
}

Test(sync, moves_to_the_next_replica_at_once_and_backs_off_after_a_round)
{
	struct replica r[3] = {};
	struct tls_pair t;
	char dir[64], sd[96], ca[96], urls[200];
	struct sync_opts o = { .node = "n1" };
	struct sync *s;
	uint64_t t0, took;

	node_n1(&t, dir, sizeof(dir), sd, ca);
	/* A and C serve; B's port refuses */
	for (int i = 0; i < 3; i++) {
		r[i].ctx = t.sctx;
		replica_up(&r[i], 0);
	}
	close(r[1].lfd);
	r[1].lfd = -1;
	snprintf(urls, sizeof(urls), "https://127.0.0.1:%d,https://127.0.0.1:%d,https://127.0.0.1:%d",
		 r[0].port, r[1].port, r[2].port);
	o.url = urls;
	o.ca_file = ca;
	o.state_dir = sd;
	applied = 0;
	s = sync_new(&o, apply_ok, NULL);
	cr_assert_not_null(s);

	pump(s, r, 3, 3000, &applied, 1);
	cr_assert_eq(r[0].watches, 1, "the first URL is the first tried");
	cr_assert_eq(applied, 1);
	cr_assert_eq(sync_version(s), 1);

	/* A goes away: B refuses, C takes the watch with no wait between */
	replica_down(&r[0]);
	t0 = loop_now_ms();
	pump(s, r, 3, 3000, &r[2].watches, 1);
	took = loop_now_ms() - t0;
	cr_assert_eq(r[2].watches, 1, "the agent did not reach C");
	cr_assert_lt(took, 200, "moving took %llu ms: a backoff (at least 250 ms) came first",
		     (unsigned long long)took);
	cr_assert_str_eq(r[2].have, "1", "the watch does not resume from version 1");
	cr_assert_eq(applied, 1, "a resumed watch applied a snapshot again");
	cr_log_info("A gone -> watching C (past B, refused) in %llu ms", (unsigned long long)took);

	/* C goes too: a whole round fails (C, A, B), then the backoff */
	replica_down(&r[2]);
	pump(s, r, 3, 100, NULL, 0);
	cr_assert_eq(sync_fd(s), -1);
	cr_assert_gt(sync_timeout_ms(s), 100, "no backoff after every replica failed");
	/* A comes back on its port: taken after the backoff, resumed */
	replica_up(&r[0], r[0].port);
	t0 = loop_now_ms();
	pump(s, r, 3, 3000, &r[0].watches, 2);
	took = loop_now_ms() - t0;
	cr_assert_eq(r[0].watches, 2);
	cr_assert_str_eq(r[0].have, "1");
	cr_log_info("every replica down, A back: watching A again %llu ms later", (unsigned long long)took);

	sync_free(s);
	for (int i = 0; i < 3; i++)
		replica_down(&r[i]);
	tp_pair_free(&t);
	tp_rmdir(dir);
}

/* Snapshot v of services 0..n-1 (one backend each) and one node. */
static json_t *snap_of(int v, int n)
{
	json_t *svcs = json_array();

	for (int i = 0; i < n; i++) {
		char vip[32], name[32];

		snprintf(vip, sizeof(vip), "10.96.0.%d", 10 + i);
		snprintf(name, sizeof(name), "default/s%d", i);
		json_array_append_new(svcs, json_pack("{s:s, s:s, s:i, s:[{s:s, s:i}]}", "name", name,
						      "vip", vip, "port", 80, "backends",
						      "address", "10.244.1.2", "port", 8080 + v));
	}
	return json_pack("{s:i, s:o, s:[{s:s, s:s}]}", "version", v, "services", svcs, "nodes",
			 "name", "n1", "hbone", "192.0.2.1:15008");
}

/* The watch line of the delta from snapshot a (version v - 1) to b (v). */
static char *delta_line(const json_t *a, const json_t *b, int v)
{
	json_t *ia = sd_index(a, NULL), *ib = sd_index(b, NULL);
	json_t *m = json_pack("{s:i, s:i, s:o}", "version", v, "base", v - 1, "delta",
			      sd_delta(ia, ib, NULL));
	char *line = json_dumps(m, JSON_COMPACT);

	json_decref(m);
	json_decref(ia);
	json_decref(ib);
	return line;
}

/* A whole snapshot, a delta that applies and one the data plane refuses:
 * the proxy's text is the snapshot without its services; the last good
 * snapshot is the delta's result, written from the index only when
 * sync_persist() runs, once the ACK is out; the refused delta is NACKed
 * and leaves the version and the index (what is saved) as they were. */
Test(sync, delta_saved_after_the_ack_and_refused_delta_changes_nothing)
{
	struct replica r = {};
	struct tls_pair t;
	char dir[64], sd[96], ca[96], url[64], path[160], *d2, *d3, *full, *lines, *saved;
	json_t *s1 = snap_of(1, 3), *s2 = snap_of(2, 4), *s3 = snap_of(3, 5), *got, *ig, *i2, *px;
	struct sync_opts o = { .node = "n1" };
	struct sync *s;
	size_t len;

	node_n1(&t, dir, sizeof(dir), sd, ca);
	r.ctx = t.sctx;
	replica_up(&r, 0);
	full = json_dumps(s1, JSON_COMPACT);
	d2 = delta_line(s1, s2, 2);
	d3 = delta_line(s2, s3, 3);
	cr_assert(asprintf(&lines, "{\"version\":1,\"snapshot\":%s}\n%s\n%s\n", full, d2, d3) > 0);
	r.lines = lines;
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", r.port);
	o.url = url;
	o.ca_file = ca;
	o.state_dir = sd;
	applied = 0;
	refuse = "version 3 ";
	s = sync_new(&o, apply_ok, NULL);
	cr_assert_not_null(s);
	pump(s, &r, 1, 3000, &r.nacks, 1);
	cr_assert_eq(r.acks, 2, "ACKs: %d", r.acks);
	cr_assert_eq(r.nacks, 1);
	cr_assert_eq(applied, 2);
	cr_assert_eq(sync_version(s), 2, "version %llu after version 3 was refused",
		     (unsigned long long)sync_version(s));

	/* the proxy's text of version 2: no services, the rest as it is */
	px = json_loads(proxy_text, 0, NULL);
	cr_assert(px, "the proxy's text is not JSON: %s", proxy_text);
	cr_assert_eq(json_integer_value(json_object_get(px, "version")), 2);
	cr_assert_eq(json_array_size(json_object_get(px, "services")), 0, "%s", proxy_text);
	cr_assert(json_equal(json_object_get(px, "nodes"), json_object_get(s2, "nodes")));

	/* nothing on disk until sync_persist(); then version 2, whole */
	snprintf(path, sizeof(path), "%s/snapshot.json", sd);
	cr_assert_neq(access(path, F_OK), 0, "saved before sync_persist()");
	sync_persist(s);
	cr_assert_eq(file_read(path, &saved, &len, 1 << 20), 0);
	got = json_loadb(saved, len, 0, NULL);
	cr_assert(got, "the saved snapshot is not JSON");
	cr_assert_eq(json_integer_value(json_object_get(got, "version")), 2);
	ig = sd_index(got, NULL);
	i2 = sd_index(s2, NULL);
	cr_assert(json_equal(ig, i2), "saved: %s", saved);

	json_decref(i2);
	json_decref(ig);
	json_decref(got);
	json_decref(px);
	free(saved);
	sync_free(s);
	replica_down(&r);
	refuse = NULL;
	free(lines);
	free(full);
	free(d2);
	free(d3);
	json_decref(s1);
	json_decref(s2);
	json_decref(s3);
	tp_pair_free(&t);
	tp_rmdir(dir);
}
