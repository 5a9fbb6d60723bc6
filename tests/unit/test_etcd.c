// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * control/etcd: the etcd v3 client against real etcd members
 * (etcd_cluster.h): reads and writes, transactions racing, the watch, a
 * three-member cluster losing one member then quorum, and endpoint
 * failover. Skipped, with the reason, where etcd is not installed.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "control/etcd.h"
#include "control/etcd_msg.h"
#include "deadline.h"
#include "etcd_cluster.h"

static struct etcd_cluster ec;

static void stop(void)
{
	ec_stop(&ec);
}

static void start(void)
{
	test_deadline(60);
}

TestSuite(etcd, .init = start, .fini = stop);

static void need_etcd(void)
{
	const char *why = ec_missing();

	if (why)
		cr_skip("%s", why);
}

static struct etcd *client(const char *url, unsigned int timeout_ms)
{
	struct etcd *e;
	char err[512];

	cr_assert_eq(etcd_open(&e, url, &(struct etcd_opts){ .timeout_ms = timeout_ms },
			       err, sizeof(err)), 0, "%s", err);
	return e;
}

static double secs_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

Test(etcd, url_parsing)
{
	struct etcd *e;
	char err[256];

	cr_assert_eq(etcd_open(&e, "etcd://a:1,[::1]:2379,b.example:65535", NULL, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(etcd_endpoint(e), "a:1");
	etcd_close(e);
	cr_assert_eq(etcd_open(&e, "http://a:1", NULL, err, sizeof(err)), -EINVAL);
	cr_assert_eq(etcd_open(&e, "etcd://a", NULL, err, sizeof(err)), -EINVAL);
	cr_assert_eq(etcd_open(&e, "etcd://a:1,", NULL, err, sizeof(err)), -EINVAL);
	cr_assert_eq(etcd_open(&e, "etcd://a:0", NULL, err, sizeof(err)), -EINVAL);
	cr_assert_eq(etcd_open(&e, "etcd://a:1/x", NULL, err, sizeof(err)), -EINVAL);
	cr_assert_eq(etcd_open(&e, "etcd://", NULL, err, sizeof(err)), -EINVAL);
}

Test(etcd, base64_round_trip_and_strict_decoding)
{
	static const char *const bad[] = { "A", "AB=", "A===", "AB=C", "AB C", "ABC*", NULL };
	unsigned char bytes[256];
	char *s, *d;
	size_t n;

	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	for (size_t len = 0; len < 7; len++) {
		s = etcd_b64_encode(bytes + 250 - len, len);
		cr_assert_eq(etcd_b64_decode(s, strlen(s), &d, &n), 0, "%s", s);
		cr_assert_eq(n, len);
		cr_assert_eq(memcmp(d, bytes + 250 - len, len), 0);
		free(s);
		free(d);
	}
	for (int i = 0; bad[i]; i++)
		cr_assert_eq(etcd_b64_decode(bad[i], strlen(bad[i]), &d, &n), -EINVAL, "%s", bad[i]);
}

Test(etcd, put_get_range_delete)
{
	char err[512], *v;
	struct etcd_kv *kvs;
	int64_t mr, rev, rev2, del;
	struct etcd *e;
	size_t n, vl;

	need_etcd();
	ec_start(&ec, 1);
	e = client(ec.url, 0);
	cr_assert_eq(etcd_get(e, "/t/absent", &v, &vl, &mr, &rev, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(v);
	cr_assert_eq(mr, 0);
	cr_assert_gt(rev, 0);
	/* values are bytes */
	cr_assert_eq(etcd_put(e, "/t/a", "x\0y", 3, &rev, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_put(e, "/t/b", "", 0, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_put(e, "/t/c/d", "deep", 4, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_put(e, "/tx", "sibling", 7, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_get(e, "/t/a", &v, &vl, &mr, &rev2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(vl, 3);
	cr_assert_eq(memcmp(v, "x\0y", 3), 0);
	cr_assert_eq(mr, rev);
	cr_assert_geq(rev2, rev + 3);
	free(v);
	cr_assert_eq(etcd_range(e, "/t/", &kvs, &n, &rev, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(kvs[0].key, "/t/a");
	cr_assert_str_eq(kvs[1].key, "/t/b");
	cr_assert_eq(kvs[1].vlen, 0);
	cr_assert_str_eq(kvs[2].key, "/t/c/d");
	cr_assert_str_eq(kvs[2].value, "deep");
	etcd_kvs_free(kvs, n);
	cr_assert_eq(etcd_delete(e, "/t/a", false, &del, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(del, 1);
	cr_assert_eq(etcd_delete(e, "/t/a", false, &del, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(del, 0, "deleting what is absent is no error");
	cr_assert_eq(etcd_delete(e, "/t/", true, &del, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(del, 2);
	cr_assert_eq(etcd_range(e, "/t", &kvs, &n, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 1, "only /tx is left");
	etcd_kvs_free(kvs, n);
	etcd_close(e);
}

struct racer {
	struct etcd *e;
	pthread_barrier_t *b;
	int64_t mr;
	const char *val;
	bool won;
	int rc;
	char err[256];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct etcd_cmp c = { "/race/k", r->mr };
	struct etcd_op ops[] = {
		{ ETCD_OP_PUT, "/race/k", r->val, strlen(r->val) },
		{ ETCD_OP_PUT, "/race/winner", r->val, strlen(r->val) },
	};

	pthread_barrier_wait(r->b);
	r->rc = etcd_txn(r->e, &c, 1, ops, 2, &r->won, NULL, r->err, sizeof(r->err));
	return NULL;
}

Test(etcd, txn_success_conflict_and_a_race_one_wins)
{
	struct etcd_cmp absent = { "/race/k", 0 };
	struct etcd_op put = { ETCD_OP_PUT, "/race/k", "v0", 2 };
	struct racer r[2] = { { .val = "one" }, { .val = "two" } };
	pthread_barrier_t b;
	pthread_t th[2];
	int64_t rev, mr;
	char err[512], *v;
	bool ok;
	size_t vl;

	need_etcd();
	ec_start(&ec, 1);
	r[0].e = client(ec.url, 0);
	r[1].e = client(ec.url, 0);
	/* create only if absent: once */
	cr_assert_eq(etcd_txn(r[0].e, &absent, 1, &put, 1, &ok, &rev, err, sizeof(err)), 0, "%s", err);
	cr_assert(ok);
	cr_assert_eq(etcd_txn(r[1].e, &absent, 1, &put, 1, &ok, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(ok, "the key exists: the second create fails");
	cr_assert_eq(etcd_get(r[0].e, "/race/k", &v, &vl, &mr, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mr, rev);
	free(v);
	/* both read revision mr, both write against it at once */
	for (int round = 0; round < 5; round++) {
		cr_assert_eq(etcd_get(r[0].e, "/race/k", &v, &vl, &mr, NULL, err, sizeof(err)), 0);
		free(v);
		pthread_barrier_init(&b, NULL, 2);
		for (int i = 0; i < 2; i++) {
			r[i].b = &b;
			r[i].mr = mr;
			pthread_create(&th[i], NULL, race, &r[i]);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&b);
		cr_assert_eq(r[0].rc, 0, "%s", r[0].err);
		cr_assert_eq(r[1].rc, 0, "%s", r[1].err);
		cr_assert_neq(r[0].won, r[1].won, "round %d: exactly one wins", round);
		cr_assert_eq(etcd_get(r[0].e, "/race/winner", &v, &vl, &mr, NULL, err, sizeof(err)), 0);
		cr_assert_str_eq(v, r[0].won ? "one" : "two", "the winner's writes, all of them");
		free(v);
	}
	etcd_close(r[0].e);
	etcd_close(r[1].e);
}

/* Wait up to ms for the watch to signal; its revision. */
static int64_t wait_watch(struct etcd_watch *w, int ms, bool *compacted)
{
	struct pollfd p = { .fd = etcd_watch_fd(w), .events = POLLIN };

	cr_assert_eq(poll(&p, 1, ms), 1, "the watch did not signal within %d ms", ms);
	return etcd_watch_take(w, compacted);
}

Test(etcd, watch_sees_another_clients_put)
{
	struct etcd *a, *b;
	struct etcd_watch *w;
	int64_t rev, put_rev;
	char err[512], *v;
	bool compacted;
	size_t vl;
	struct pollfd p;

	need_etcd();
	ec_start(&ec, 1);
	a = client(ec.url, 0);
	b = client(ec.url, 0);
	cr_assert_eq(etcd_get(a, "/w/x", &v, &vl, &rev, &rev, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_watch_start(a, "/w/", rev + 1, &w, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_put(b, "/w/x", "1", 1, &put_rev, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(wait_watch(w, 3000, &compacted), put_rev);
	cr_assert_not(compacted);
	/* outside the prefix: no signal */
	cr_assert_eq(etcd_put(b, "/wx", "1", 1, NULL, err, sizeof(err)), 0, "%s", err);
	p = (struct pollfd){ .fd = etcd_watch_fd(w), .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 300), 0, "a key outside the prefix signalled");
	cr_assert_eq(etcd_delete(b, "/w/x", false, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_gt(wait_watch(w, 3000, NULL), put_rev);
	etcd_watch_stop(w);
	etcd_close(a);
	etcd_close(b);
}

Test(etcd, failover_first_endpoint_dead)
{
	char url[300], err[512], *v;
	struct timespec t0;
	struct etcd *e;
	int64_t mr;
	size_t vl;

	need_etcd();
	ec_start(&ec, 1);
	snprintf(url, sizeof(url), "etcd://127.0.0.1:%d,%s", ec_free_port(), ec.url + 7);
	e = client(url, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(etcd_put(e, "/f", "1", 1, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_lt(secs_since(&t0), 1.0, "a refused endpoint costs no time");
	cr_assert_str_eq(etcd_endpoint(e), ec.url + 7, "the one that works is kept");
	cr_assert_eq(etcd_get(e, "/f", &v, &vl, &mr, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v, "1");
	free(v);
	etcd_close(e);
	/* nothing answers: a bounded, clear failure */
	snprintf(url, sizeof(url), "etcd://127.0.0.1:%d", ec_free_port());
	e = client(url, 500);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(etcd_put(e, "/f", "1", 1, NULL, err, sizeof(err)), -ETIMEDOUT);
	cr_assert_lt(secs_since(&t0), 1.0);
	cr_assert(strstr(err, "etcd: no endpoint answered within 1 s: 127.0.0.1:"), "%s", err);
	cr_log_info("nothing listening: %s", err);
	etcd_close(e);
}

Test(etcd, three_members_survive_one_loss_and_fail_clearly_without_quorum)
{
	struct etcd *e, *b;
	struct etcd_watch *w;
	struct timespec t0;
	char err[512], *v;
	int64_t mr, rev, put_rev;
	double took;
	size_t vl;
	int rc;

	need_etcd();
	ec_start(&ec, 3);
	e = client(ec.url, 0);
	b = client(ec.url, 0);
	cr_assert_eq(etcd_put(e, "/c/k", "1", 1, &rev, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_watch_start(e, "/c/", rev + 1, &w, err, sizeof(err)), 0, "%s", err);
	usleep(200 * 1000);     /* the stream is on member 0 */
	ec_kill(&ec, 0);
	/* the first endpoint is dead: both clients move on */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(etcd_put(e, "/c/k", "2", 1, &put_rev, err, sizeof(err)), 0, "%s", err);
	cr_log_info("put after losing member 0: %.3f s", secs_since(&t0));
	cr_assert_eq(etcd_get(b, "/c/k", &v, &vl, &mr, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v, "2");
	free(v);
	/* the watch reconnected to another member and saw it */
	cr_assert_geq(wait_watch(w, 5000, NULL), put_rev);
	/* two of three down: no quorum, a write fails within the bound */
	ec_kill(&ec, 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = etcd_put(e, "/c/k", "3", 1, NULL, err, sizeof(err));
	took = secs_since(&t0);
	cr_assert_neq(rc, 0, "a write without quorum succeeded");
	cr_assert_lt(took, 3.5, "took %.2f s", took);
	cr_assert(strstr(err, "etcd: no endpoint answered within 3 s") || strstr(err, "etcdserver:"),
		  "%s", err);
	/* the surviving member got it and could not commit it: in doubt,
	 * not refused (it commits if that member's log wins later) */
	cr_assert(rc == -EINPROGRESS ? strstr(err, "may still take effect") != NULL
				     : strstr(err, "may still") == NULL, "%d: %s", rc, err);
	cr_log_info("write without quorum: %d after %.2f s: %s", rc, took, err);
	etcd_watch_stop(w);
	etcd_close(e);
	etcd_close(b);
}

/* Not a bound, a figure: what a request costs on this machine. */
Test(etcd, latency_figures)
{
	struct etcd_cmp c = { "/lat/k", 0 };
	struct etcd_op op = { ETCD_OP_PUT, "/lat/k", "v", 1 };
	double put, txn, get;
	struct timespec t0;
	struct etcd *e;
	char err[512], *v;
	int64_t rev;
	size_t vl;
	bool ok;

	need_etcd();
	ec_start(&ec, 1);
	e = client(ec.url, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(etcd_put(e, "/lat/k", "v", 1, &rev, err, sizeof(err)), 0, "%s", err);
	put = secs_since(&t0) * 10;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100; i++) {
		c.mod_revision = rev;
		cr_assert_eq(etcd_txn(e, &c, 1, &op, 1, &ok, &rev, err, sizeof(err)), 0, "%s", err);
		cr_assert(ok);
	}
	txn = secs_since(&t0) * 10;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(etcd_get(e, "/lat/k", &v, &vl, &rev, NULL, err, sizeof(err)), 0, "%s", err);
		free(v);
	}
	get = secs_since(&t0) * 10;
	cr_log_info("one member, 100 each: put %.2f ms, txn %.2f ms, get %.2f ms", put, txn, get);
	etcd_close(e);
}

Test(etcd, watch_from_a_compacted_revision_signals_compacted)
{
	char err[512], cmd[256];
	struct etcd_watch *w;
	int64_t r1, r3, put_rev;
	struct etcd *e;
	bool compacted;

	need_etcd();
	if (access("/usr/bin/etcdctl", X_OK))
		cr_skip("etcdctl is not installed (Debian: etcd-client)");
	ec_start(&ec, 1);
	e = client(ec.url, 0);
	cr_assert_eq(etcd_put(e, "/cw/x", "1", 1, &r1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_put(e, "/cw/x", "2", 1, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_put(e, "/cw/x", "3", 1, &r3, err, sizeof(err)), 0, "%s", err);
	snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 etcdctl --endpoints %s compact %lld >/dev/null",
		 ec.url + 7, (long long)r3);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	cr_assert_eq(etcd_watch_start(e, "/cw/", r1, &w, err, sizeof(err)), 0, "%s", err);
	wait_watch(w, 3000, &compacted);
	cr_assert(compacted, "a watch from a compacted revision says so");
	/* and goes on from what is left */
	cr_assert_eq(etcd_put(e, "/cw/x", "4", 1, &put_rev, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 3 && etcd_watch_take(w, NULL) < put_rev; i++)
		wait_watch(w, 3000, NULL);
	cr_assert_geq(etcd_watch_take(w, &compacted), put_rev);
	cr_assert_not(compacted);
	etcd_watch_stop(w);
	etcd_close(e);
}

Test(etcd, tls_with_a_client_certificate)
{
	struct etcd_opts o;
	struct etcd *e;
	char err[512], *v;
	int64_t mr;
	size_t vl;

	need_etcd();
	ec_start_tls(&ec);
	o = ec_opts(&ec, 0);
	cr_assert_eq(etcd_open(&e, ec.url, &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_put(e, "/tls", "1", 1, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_get(e, "/tls", &v, &vl, &mr, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v, "1");
	free(v);
	etcd_close(e);
	/* without the client certificate: refused, clearly and in time */
	o.cert_file = o.key_file = NULL;
	o.timeout_ms = 1000;
	cr_assert_eq(etcd_open(&e, ec.url, &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_neq(etcd_put(e, "/tls", "2", 1, NULL, err, sizeof(err)), 0);
	cr_log_info("no client certificate: %s", err);
	etcd_close(e);
	/* not trusting its CA: refused */
	o = ec_opts(&ec, 1000);
	o.ca_file = ec.cert;      /* a leaf, not etcd's CA */
	cr_assert_eq(etcd_open(&e, ec.url, &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_neq(etcd_put(e, "/tls", "2", 1, NULL, err, sizeof(err)), 0);
	cr_log_info("wrong CA: %s", err);
	etcd_close(e);
}
