// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * control/store with etcd: two stores on one etcd are two replicas. They
 * share one CA (created once, its key encrypted), a save made against a
 * stale config is refused with -ESTALE and works after store_reload, a
 * join token is consumed by exactly one of two racing replicas, and a
 * wrong store key is refused at open. Real etcd (etcd_cluster.h); skipped
 * where it is not installed.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "control/etcd.h"
#include "control/store.h"
#include "deadline.h"
#include "etcd_cluster.h"
#include "lib/core/log.h"
#include "tls_pair.h"

static struct etcd_cluster ec;
static char dir[64];

static void setup(void)
{
	test_deadline(60);
	log_init("test", LOG_ERR);
	tp_tmpdir(dir, sizeof(dir), "store-etcd");
}

static void teardown(void)
{
	ec_stop(&ec);
	tp_rmdir(dir);
}

TestSuite(store_etcd, .init = setup, .fini = teardown);

static void need_etcd(void)
{
	const char *why = ec_missing();

	if (why)
		cr_skip("%s", why);
	ec_start(&ec, 1);
}

static void key_file(const char *name, char *path, size_t len)
{
	char err[256];

	snprintf(path, len, "%s/%s", dir, name);
	cr_assert_eq(store_key_create(path, err, sizeof(err)), 0, "%s", err);
}

/* A replica: its own state dir, the shared etcd and store key. */
static int replica(struct store *s, const char *name, const char *keyf, char *err, size_t errlen)
{
	char d[128];
	struct store_opts o = { .dir = d, .etcd_url = ec.url, .store_key = keyf,
				.prefix = "/test/" };

	snprintf(d, sizeof(d), "%s/%s", dir, name);
	return store_open_opts(s, &o, err, errlen);
}

static struct sl_config *config_of(const char *yaml)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};

	cr_assert_not_null(c);
	cr_assert_eq(sl_config_parse(c, "t.yaml", yaml, strlen(yaml), &d), 0);
	sl_diags_free(&d);
	return c;
}

static const char svc_a[] =
	"apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  namespace: default\n"
	"spec:\n  clusterIP: 10.96.0.10\n  ports:\n  - port: 80\n";
static const char svc_b[] =
	"apiVersion: v1\nkind: Service\nmetadata:\n  name: b\n  namespace: default\n"
	"spec:\n  clusterIP: 10.96.0.11\n  ports:\n  - port: 80\n";

Test(store_etcd, key_file_is_0600_and_never_overwritten)
{
	char p[128], err[256];
	struct stat st;

	key_file("k", p, sizeof(p));
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(st.st_size, 65, "hex and a newline");
	cr_assert_neq(store_key_create(p, err, sizeof(err)), 0);
	cr_assert(strstr(err, "never overwritten"), "%s", err);
}

struct opener {
	struct store s;
	const char *name, *kf;
	pthread_barrier_t *b;
	int rc;
	char err[512];
};

static void *open_one(void *arg)
{
	struct opener *o = arg;

	pthread_barrier_wait(o->b);
	o->rc = replica(&o->s, o->name, o->kf, o->err, sizeof(o->err));
	return NULL;
}

Test(store_etcd, two_replicas_started_at_once_share_one_ca_not_in_etcd_in_clear)
{
	struct opener op[2] = { { .name = "a" }, { .name = "b" } };
	char kf[128], err[512], *v, *pem;
	struct store *a = &op[0].s, *b = &op[1].s;
	pthread_barrier_t bar;
	pthread_t th[2];
	struct etcd *e;
	int64_t mr;
	size_t vl;

	need_etcd();
	key_file("key", kf, sizeof(kf));
	pthread_barrier_init(&bar, NULL, 2);
	for (int i = 0; i < 2; i++) {
		op[i].kf = kf;
		op[i].b = &bar;
		pthread_create(&th[i], NULL, open_one, &op[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(op[i].rc, 0, "%s", op[i].err);
	}
	pthread_barrier_destroy(&bar);
	cr_assert_eq(X509_cmp(a->ca.cert, b->ca.cert), 0, "one CA");
	cr_assert(EVP_PKEY_eq(a->ca.key, b->ca.key) == 1);
	cr_assert_str_eq(a->td, "cluster.local");
	/* in etcd: the certificate in clear, the key sealed */
	cr_assert_eq(etcd_open(&e, ec.url, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(etcd_get(e, "/test/ca/key", &v, &vl, &mr, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(v);
	cr_assert_eq(strncmp(v, "v1:", 3), 0);
	pem = pki_key_pem(a->ca.key);
	cr_assert_null(strstr(v, "PRIVATE KEY"));
	cr_assert_null(memmem(v, vl, pem + 40, 20), "a piece of the PEM key in etcd");
	free(pem);
	free(v);
	cr_assert_eq(etcd_get(e, "/test/ca/cert", &v, &vl, &mr, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert(strstr(v, "BEGIN CERTIFICATE"));
	free(v);
	etcd_close(e);
	store_close(a);
	store_close(b);
	/* a replica with another trust domain is refused */
	{
		char d[128];
		struct store c;
		struct store_opts o = { .dir = d, .etcd_url = ec.url, .store_key = kf,
					.prefix = "/test/", .td = "other.example" };

		snprintf(d, sizeof(d), "%s/c", dir);
		cr_assert_neq(store_open_opts(&c, &o, err, sizeof(err)), 0);
		cr_assert(strstr(err, "--trust-domain other.example differs"), "%s", err);
	}
}

Test(store_etcd, wrong_store_key_is_refused_at_open)
{
	char k1[128], k2[128], err[512];
	struct store a, b;

	need_etcd();
	key_file("k1", k1, sizeof(k1));
	key_file("k2", k2, sizeof(k2));
	cr_assert_eq(replica(&a, "a", k1, err, sizeof(err)), 0, "%s", err);
	store_close(&a);
	cr_assert_neq(replica(&b, "b", k2, err, sizeof(err)), 0);
	cr_assert(strstr(err, "does not decrypt with this --store-key"), "%s", err);
	cr_log_info("wrong key: %s", err);
	cr_assert_neq(replica(&b, "b", NULL, err, sizeof(err)), 0);
	cr_assert(strstr(err, "needs --store-key"), "%s", err);
}

Test(store_etcd, stale_save_is_refused_then_reload_and_retry_work)
{
	struct store a, b;
	struct sl_config *ca, *cb;
	char kf[128], err[512];
	struct pollfd p;
	bool changed;

	need_etcd();
	key_file("key", kf, sizeof(kf));
	cr_assert_eq(replica(&a, "a", kf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(replica(&b, "b", kf, err, sizeof(err)), 0, "%s", err);
	cr_assert_geq(store_watch_fd(&b), 0);
	ca = config_of(svc_a);
	cb = config_of(svc_b);
	cr_assert_eq(store_save(&a, ca, a.ids, a.version + 1, err, sizeof(err)), 0, "%s", err);
	a.version++;
	/* b has not seen version 1: refused, and says so */
	cr_assert_eq(store_save(&b, cb, b.ids, b.version + 1, err, sizeof(err)), -ESTALE);
	cr_assert_str_eq(err, "config changed by another replica (version 1); retry");
	/* b's watch fired; it reloads and gets a's config */
	p = (struct pollfd){ .fd = store_watch_fd(&b), .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 3000), 1, "b's watch did not fire");
	cr_assert_eq(store_reload(&b, &changed, err, sizeof(err)), 0, "%s", err);
	cr_assert(changed);
	cr_assert_eq(b.version, 1);
	cr_assert_eq(sl_config_count(b.cfg), 1);
	cr_assert_eq(store_reload(&b, &changed, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(changed, "nothing new");
	/* now b's change goes in, at version 2 */
	cr_assert_eq(store_save(&b, cb, b.ids, b.version + 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_reload(&a, &changed, err, sizeof(err)), 0, "%s", err);
	cr_assert(changed);
	cr_assert_eq(a.version, 2);
	sl_config_free(ca);
	sl_config_free(cb);
	store_close(&a);
	store_close(&b);
	/* a third replica starts with what is stored */
	cr_assert_eq(replica(&a, "c", kf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.version, 2);
	store_close(&a);
}

struct joiner {
	struct store *s;
	const char *token;
	pthread_barrier_t *b;
	int rc;
	char err[256];
};

static void *join(void *arg)
{
	struct joiner *j = arg;

	pthread_barrier_wait(j->b);
	j->rc = store_token_check(j->s, "node1", j->token, true, j->err, sizeof(j->err));
	return NULL;
}

Test(store_etcd, a_token_is_consumed_by_one_of_two_racing_replicas)
{
	char kf[128], d[128], err[512], token[STORE_TOKEN_MAX];
	struct store a, b;
	struct store_opts o = { .dir = d, .etcd_url = NULL, .prefix = "/test/" };
	struct joiner j[2];
	pthread_barrier_t bar;
	pthread_t th[2];

	need_etcd();
	key_file("key", kf, sizeof(kf));
	cr_assert_eq(replica(&a, "a", kf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(replica(&b, "b", kf, err, sizeof(err)), 0, "%s", err);
	snprintf(d, sizeof(d), "%s/a", dir);
	o.etcd_url = ec.url;
	for (int round = 0; round < 5; round++) {
		cr_assert_eq(store_token_new(&o, "node1", 60, token, sizeof(token), err, sizeof(err)), 0,
			     "%s", err);
		cr_assert_neq(store_token_check(&b, "node2", token, false, err, sizeof(err)), 0);
		cr_assert(strstr(err, "issued for node node1"), "%s", err);
		cr_assert_eq(store_token_check(&b, "node1", token, false, err, sizeof(err)), 0, "%s", err);
		pthread_barrier_init(&bar, NULL, 2);
		j[0] = (struct joiner){ .s = &a, .token = token, .b = &bar };
		j[1] = (struct joiner){ .s = &b, .token = token, .b = &bar };
		for (int i = 0; i < 2; i++)
			pthread_create(&th[i], NULL, join, &j[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&bar);
		cr_assert((j[0].rc == 0) != (j[1].rc == 0), "round %d: exactly one wins (%s | %s)",
			  round, j[0].err, j[1].err);
		cr_assert(strstr(j[j[0].rc ? 0 : 1].err, "already used"), "%s",
			  j[j[0].rc ? 0 : 1].err);
	}
	cr_assert_neq(store_token_check(&a, "node1", "ff", false, err, sizeof(err)), 0);
	cr_assert(strstr(err, "unknown token"), "%s", err);
	/* consumed through one replica, refused by the other */
	cr_assert_eq(store_token_new(&o, "node1", 60, token, sizeof(token), err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(store_token_check(&b, "node1", token, true, err, sizeof(err)), 0, "%s", err);
	cr_assert_neq(store_token_check(&a, "node1", token, false, err, sizeof(err)), 0);
	cr_assert(strstr(err, "already used"), "%s", err);
	store_close(&a);
	store_close(&b);
}

Test(store_etcd, node_addresses_are_shared_and_merged)
{
	char kf[128], err[512];
	struct store a, b;
	json_t *m;

	need_etcd();
	key_file("key", kf, sizeof(kf));
	cr_assert_eq(replica(&a, "a", kf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(replica(&b, "b", kf, err, sizeof(err)), 0, "%s", err);
	m = json_pack("{s:s}", "n1", "10.0.0.1:15008");
	cr_assert_eq(store_nodes_save(&a, m, err, sizeof(err)), 0, "%s", err);
	json_decref(m);
	m = json_pack("{s:s}", "n2", "10.0.0.2:15008");
	cr_assert_eq(store_nodes_save(&b, m, err, sizeof(err)), 0, "%s", err);
	json_decref(m);
	cr_assert_eq(store_nodes_load(&a, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(json_object_size(m), 2, "b's save kept a's node");
	cr_assert_str_eq(json_string_value(json_object_get(m, "n1")), "10.0.0.1:15008");
	cr_assert_str_eq(json_string_value(json_object_get(m, "n2")), "10.0.0.2:15008");
	json_decref(m);
	store_close(&a);
	store_close(&b);
}
