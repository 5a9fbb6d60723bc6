// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xfer_client.c - sltest xfer: the bulk transfer client.
 */
#include "xfer.h"

enum xc_stage {
	XC_START, XC_CONNECT, XC_HEADER, XC_DOWN, XC_TRAILER, XC_EOF, XC_UP,
	XC_SERVER, XC_DONE,
};

static const char *const xc_stages[] = {
	"start", "connect", "header", "down", "trailer", "eof", "up",
	"server", "done",
};

struct xfer_conn {
	pthread_t tid;
	const struct opts *o;
	int idx;
	uint32_t seed;
	int stage;		/* atomic, enum xc_stage: where it is */
	struct sha256 up_sha;
	struct xfer_tx tx;
	struct xfer_rx rx;
	unsigned char sha_up[32], sha_down[32];
	struct xfer_trailer tr;
	bool have_trailer;
	int eof;		/* XFER_OK/EXTRA/EOF_ERROR, -1: not reached */
	int eof_err;
	/* The first failure, in protocol order. */
	bool failed;
	int fail_stage;		/* enum xc_stage */
	int fail_err;		/* errno, when fail_what is NULL */
	const char *fail_what;
	uint64_t fail_offset;	/* UINT64_MAX: none */
};

static struct xfer_conn *xfer_conns;
static long long xfer_nconns;

static void xc_stage(struct xfer_conn *c, enum xc_stage stage)
{
	__atomic_store_n(&c->stage, stage, __ATOMIC_RELEASE);
}

static void xc_fail(struct xfer_conn *c, enum xc_stage stage, int err,
		    const char *what)
{
	if (c->failed)
		return;
	c->failed = true;
	c->fail_stage = stage;
	c->fail_err = err;
	c->fail_what = what;
}

/*
 * The checks once both directions are over, in protocol order, except that
 * a sender failing after our shutdown() on a failed receive is no cause.
 */
static void xc_judge(struct xfer_conn *c, int down_err, int trl_err,
		     bool shut)
{
	const struct xfer_trailer *tr = &c->tr;

	if (c->tx.err && !shut)
		xc_fail(c, XC_UP, -c->tx.err, NULL);
	if (down_err)
		xc_fail(c, XC_DOWN, -down_err, NULL);
	if (c->rx.bad_at != UINT64_MAX) {
		xc_fail(c, XC_DOWN, EBADMSG, NULL);
		c->fail_offset = c->rx.bad_at;
	}
	if (trl_err)
		xc_fail(c, XC_TRAILER, -trl_err, NULL);
	if (c->eof == XFER_EOF_ERROR)
		xc_fail(c, XC_EOF, c->eof_err, NULL);
	else if (c->eof == XFER_EXTRA)
		xc_fail(c, XC_EOF, 0, "extra");
	if (c->tx.err)
		xc_fail(c, XC_UP, -c->tx.err, NULL);
	if (!c->have_trailer)
		return;
	if (tr->status >= sizeof(xfer_status_names) / sizeof(xfer_status_names[0]))
		xc_fail(c, XC_SERVER, 0, "status");
	else if (tr->status)
		xc_fail(c, XC_SERVER, 0, xfer_status_names[tr->status]);
	else if (tr->count != (uint64_t)c->o->up)
		xc_fail(c, XC_SERVER, 0, "count");
	else if (memcmp(tr->sha, c->sha_up, 32))
		xc_fail(c, XC_SERVER, 0, "sha256");
}

/* --bind-port: the client's own port, any address of its family. */
static int xfer_bind_port(int fd, int family, uint16_t port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		return bind(fd, (struct sockaddr *)&a6, sizeof(a6));
	return bind(fd, (struct sockaddr *)&a4, sizeof(a4));
}

static void *xc_run(void *arg)
{
	struct xfer_conn *c = arg;
	const struct opts *o = c->o;
	const struct xfer_hdr h = {
		.up = o->up, .down = o->down, .seed = c->seed, .msg = o->msg,
		.flags = o->no_half_close ? XFER_F_NO_HALF_CLOSE : 0,
	};
	unsigned char hb[XFER_HDR_LEN], tb[XFER_TRL_LEN];
	int fd, err, down_err, trl_err = 0;
	pthread_t tid;
	bool shut;

	xc_stage(c, XC_CONNECT);
	fd = socket(o->t.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		xc_fail(c, XC_CONNECT, errno, NULL);
		goto out;
	}
	if (o->bind_port && xfer_bind_port(fd, o->t.ss.ss_family, (uint16_t)o->bind_port)) {
		xc_fail(c, XC_CONNECT, errno, NULL);
		goto out_close;
	}
	if (connect(fd, (const struct sockaddr *)&o->t.ss, o->t.len)) {
		xc_fail(c, XC_CONNECT, errno, NULL);
		goto out_close;
	}
	xc_stage(c, XC_HEADER);
	xfer_hdr_put(hb, &h);
	err = bsend_all(fd, hb, sizeof(hb));
	if (err) {
		xc_fail(c, XC_HEADER, -err, NULL);
		goto out_close;
	}
	sha256_init(&c->up_sha);
	c->tx.fd = fd;
	c->tx.total = o->up;
	c->tx.seed = c->seed;
	c->tx.msg = o->msg;
	c->tx.shut_wr = !o->no_half_close;
	c->tx.sha = &c->up_sha;
	err = xfer_thread(&tid, xfer_tx_run, &c->tx, false);
	if (err) {
		xc_fail(c, XC_UP, -err, NULL);
		goto out_close;
	}

	xc_stage(c, XC_DOWN);
	c->rx.fd = fd;
	c->rx.total = o->down;
	c->rx.seed = c->seed ^ XFER_SERVER_XOR;
	down_err = xfer_recv(&c->rx);
	sha256_final(&c->rx.sha, c->sha_down);
	if (!down_err) {
		xc_stage(c, XC_TRAILER);
		trl_err = brecv_exact(fd, tb, sizeof(tb));
	}
	if (!down_err && !trl_err) {
		xfer_trl_get(tb, &c->tr);
		c->have_trailer = true;
		xc_stage(c, XC_EOF);
		c->eof = xfer_eof(fd, &c->eof_err);
	}
	/* The sender may be blocked on a peer that stopped reading. */
	shut = down_err || trl_err || c->eof > 0;
	if (shut)
		shutdown(fd, SHUT_RDWR);
	xc_stage(c, XC_UP);
	pthread_join(tid, NULL);
	sha256_final(&c->up_sha, c->sha_up);
	xc_judge(c, down_err, trl_err, shut);
out_close:
	close(fd);
out:
	xc_stage(c, XC_DONE);
	return NULL;
}

/* Async-signal-safe formatting for the alarm handler. */
static char *xfer_cat(char *p, const char *end, const char *s)
{
	while (*s && p < end)
		*p++ = *s++;
	return p;
}

static char *xfer_catu(char *p, const char *end, unsigned long long v)
{
	char buf[24], *q = buf + sizeof(buf);

	*--q = '\0';
	do
		*--q = '0' + v % 10;
	while (v /= 10);
	return xfer_cat(p, end, q);
}

/* --timeout-s: report the first unfinished connection and where it is. */
static void xfer_alarm(int sig)
{
	char line[512], *p = line, *end = line + sizeof(line) - 2;
	long long i, first = -1, pending = 0;
	struct xfer_conn *c;
	int stage;

	for (i = 0; i < xfer_nconns; i++) {
		stage = __atomic_load_n(&xfer_conns[i].stage, __ATOMIC_ACQUIRE);
		if (stage == XC_DONE)
			continue;
		if (first < 0)
			first = i;
		pending++;
	}
	p = xfer_cat(p, end, "{\"ok\":false,\"connections\":");
	p = xfer_catu(p, end, xfer_nconns);
	p = xfer_cat(p, end, ",\"error\":\"ETIMEDOUT\",\"pending\":");
	p = xfer_catu(p, end, pending);
	if (first >= 0) {
		c = &xfer_conns[first];
		p = xfer_cat(p, end, ",\"connection\":");
		p = xfer_catu(p, end, first);
		stage = __atomic_load_n(&c->stage, __ATOMIC_ACQUIRE);
		p = xfer_cat(p, end, ",\"stage\":\"");
		p = xfer_cat(p, end, xc_stages[stage]);
		p = xfer_cat(p, end, "\",\"up_sent\":");
		p = xfer_catu(p, end, __atomic_load_n(&c->tx.sent,
						      __ATOMIC_RELAXED));
		p = xfer_cat(p, end, ",\"down_received\":");
		p = xfer_catu(p, end, __atomic_load_n(&c->rx.received,
						      __ATOMIC_RELAXED));
	}
	p = xfer_cat(p, end, "}\n");
	if (write(STDOUT_FILENO, line, p - line) < 0)
		_exit(1);
	_exit(1);
}

static const char *xc_eof_name(const struct xfer_conn *c)
{
	if (c->eof == XFER_OK)
		return "ok";
	if (c->eof == XFER_EXTRA)
		return "extra";
	if (c->eof == XFER_EOF_ERROR)
		return errname(c->eof_err);
	return "none";
}

static void xc_verbose(const struct xfer_conn *c)
{
	char up[65], down[65];

	sha256_hex(c->sha_up, up);
	sha256_hex(c->sha_down, down);
	fprintf(stderr, "sltest: xfer: connection %d seed %u: %s", c->idx,
		c->seed, c->failed ? "FAILED" : "ok");
	if (c->failed)
		fprintf(stderr, " at %s: %s", xc_stages[c->fail_stage],
			c->fail_what ? c->fail_what : errname(c->fail_err));
	fprintf(stderr, "; up %llu sent, down %llu received",
		(unsigned long long)c->tx.sent,
		(unsigned long long)c->rx.received);
	if (c->rx.bad_at != UINT64_MAX)
		fprintf(stderr, " (first wrong byte %llu)",
			(unsigned long long)c->rx.bad_at);
	if (c->have_trailer)
		fprintf(stderr, "; server: %llu received, status %u",
			(unsigned long long)c->tr.count, c->tr.status);
	fprintf(stderr, "; eof %s; sha256 up %s down %s\n", xc_eof_name(c),
		up, down);
}

static double mbps(double bytes, long long ms)
{
	return ms > 0 ? bytes * 8 / 1000.0 / ms : 0.0;
}

int run_xfer(const struct opts *o)
{
	struct sigaction sa = { .sa_handler = xfer_alarm };
	long long start, up_ms = 0, down_ms = 0, i, started, failed = 0;
	char up[65], down[65];
	struct xfer_conn *c, *bad = NULL;
	const struct xfer_conn *r;
	double secs;
	int err = 0;

	raise_nofile();
	c = calloc(o->parallel, sizeof(*c));
	if (!c) {
		fprintf(stderr, "sltest: xfer: %s\n", errname(ENOMEM));
		return 1;
	}
	for (i = 0; i < o->parallel; i++) {
		c[i].o = o;
		c[i].idx = i;
		c[i].seed = (uint32_t)(o->seed + i);
		c[i].eof = -1;
		c[i].fail_offset = UINT64_MAX;
		c[i].rx.bad_at = UINT64_MAX;
	}
	xfer_conns = c;
	xfer_nconns = o->parallel;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(o->timeout_s);

	start = now_ms();
	for (started = 0; started < o->parallel; started++) {
		err = xfer_thread(&c[started].tid, xc_run, &c[started], false);
		if (err)
			break;
	}
	for (i = 0; i < started; i++)
		pthread_join(c[i].tid, NULL);
	alarm(0);
	secs = (now_ms() - start) / 1000.0;
	for (i = started; i < o->parallel; i++)
		xc_fail(&c[i], XC_START, -err, NULL);

	for (i = 0; i < o->parallel; i++) {
		if (c[i].tx.done_ms - start > up_ms)
			up_ms = c[i].tx.done_ms - start;
		if (c[i].rx.done_ms - start > down_ms)
			down_ms = c[i].rx.done_ms - start;
		if (c[i].failed) {
			failed++;
			if (!bad)
				bad = &c[i];
		}
		if (o->verbose && i < started)
			xc_verbose(&c[i]);
	}

	printf("{\"ok\":%s,\"connections\":%lld", failed ? "false" : "true",
	       o->parallel);
	if (bad) {
		printf(",\"failed\":%lld,\"connection\":%d,\"stage\":\"%s\"",
		       failed, bad->idx, xc_stages[bad->fail_stage]);
		if (bad->fail_what)
			printf(",\"error\":\"%s\"", bad->fail_what);
		else
			printf(",\"error\":\"%s\"", errname(bad->fail_err));
		if (bad->fail_offset != UINT64_MAX)
			printf(",\"offset\":%llu",
			       (unsigned long long)bad->fail_offset);
		if (bad->have_trailer)
			printf(",\"server_status\":%u,\"server_count\":%llu",
			       bad->tr.status,
			       (unsigned long long)bad->tr.count);
	}
	printf(",\"up\":%lld,\"down\":%lld", o->up, o->down);
	if (!bad) {
		sha256_hex(c[0].sha_up, up);
		sha256_hex(c[0].sha_down, down);
		printf(",\"sha256_up\":\"%s\",\"sha256_down\":\"%s\"", up, down);
	}
	/* The connection reported: the failed one, else connection 0. */
	r = bad ? bad : c;
	if (r->have_trailer)
		printf(",\"server_sha256_ok\":%s",
		       memcmp(r->tr.sha, r->sha_up, 32) ? "false" : "true");
	printf(",\"eof\":\"%s\",\"seconds\":%.3f", xc_eof_name(r), secs);
	printf(",\"mbps_up\":%.1f,\"mbps_down\":%.1f}\n",
	       mbps((double)o->up * o->parallel, up_ms),
	       mbps((double)o->down * o->parallel, down_ms));
	xfer_conns = NULL;
	xfer_nconns = 0;
	free(c);
	return failed ? 1 : 0;
}

