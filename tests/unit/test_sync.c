// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's link to a list of control plane replicas (agent/sync.c):
 * stand-in replicas on loopback (HTTP/2 over mutual TLS, the node's
 * certificate from their CA) serve /v1/watch. A replica that goes away
 * sends the agent to the next one at once, past one that refuses, with the
 * version it holds (x-sluice-have); only a whole round of failures waits.
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
#include "lib/core/loop.h"
#include "lib/wire/h2.h"
#include "tls_pair.h"

struct replica {
	int lfd;                   /* -1: down (connections refused) */
	int port;
	struct h2_conn *c;
	int watches;
	char have[24];             /* x-sluice-have of the last watch */
	SSL_CTX *ctx;
};

static int applied;

static int apply_ok(void *arg, const char *text, size_t len, json_t *doc, const char *src,
		    char *err, size_t errlen)
{
	applied++;
	return 0;
}

static void on_request(struct h2_conn *c, const struct h2_req *r, void *arg)
{
	static const char line[] = "{\"version\":1,\"snapshot\":{\"version\":1,\"services\":[]}}\n";
	struct replica *rp = arg;

	if (strcmp(r->path, "/v1/watch")) {
		h2_respond(c, r->stream_id, 200, "application/json", "{}", 2);
		return;
	}
	rp->watches++;
	rp->have[0] = '\0';
	for (size_t i = 0; i < r->nhdrs; i++)
		if (!strcmp(r->hdrs[i].name, "x-sluice-have"))
			snprintf(rp->have, sizeof(rp->have), "%s", r->hdrs[i].value);
	h2_respond_stream(c, r->stream_id, 200, "application/x-ndjson");
	if (!rp->have[0])   /* a resumed watch gets nothing: it is current */
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

Test(sync, moves_to_the_next_replica_at_once_and_backs_off_after_a_round)
{
	struct replica r[3] = {};
	struct tls_pair t;
	char dir[64], sd[96], path[160], ca[96], urls[200];
	struct sync_opts o = { .node = "n1" };
	struct sync *s;
	uint64_t t0, took;

	tp_tmpdir(dir, sizeof(dir), "sync");
	tp_pair_new(&t, dir, "spiffe://td/sluice/control", "spiffe://td/sluice/node/n1");
	snprintf(sd, sizeof(sd), "%s/agent", dir);
	cr_assert_eq(mkdir(sd, 0700), 0);
	snprintf(path, sizeof(path), "%s/node.key", sd);
	cr_assert_eq(pki_key_save(path, t.cid.key), 0);
	snprintf(path, sizeof(path), "%s/node.crt", sd);
	cr_assert_eq(pki_cert_save(path, t.cid.cert), 0);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
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
