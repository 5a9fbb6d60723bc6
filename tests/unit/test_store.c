// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * control/store with its state dir (store_journal.h): the first save writes
 * a base, the next ones a record of what changed; a reopened store reads
 * back the config and version it saved, after a torn last record too; the
 * log becomes a new base once it outgrows its room, and a crash between the
 * two replays nothing twice.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "control/store.h"
#include "control/store_common.h"
#include "control/store_journal.h"
#include "lib/core/file.h"
#include "lib/core/log.h"
#include "tls_pair.h"

static char dir[64];

static void setup(void)
{
	log_init("test", LOG_ERR);
	tp_tmpdir(dir, sizeof(dir), "store");
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "%s failed\n", cmd);
}

TestSuite(store, .init = setup, .fini = teardown);

/* ServiceEntry s<i> (i < 65,536): VIP 10.96.<i / 256>.<i % 256>, endpoint
 * 10.<v>.<i / 256>.<i % 256>. */
static void entry(struct sl_config *c, int i, int v)
{
	char y[512];
	struct sl_diags d = {};

	snprintf(y, sizeof(y),
		 "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
		 "metadata: {name: s%d, namespace: default}\n"
		 "spec: {hosts: [s%d.example], addresses: [10.96.%d.%d], location: MESH_INTERNAL,\n"
		 "  resolution: STATIC, ports: [{number: 80, name: http, protocol: TCP}],\n"
		 "  endpoints: [{address: 10.%d.%d.%d}]}\n", i, i, i / 256, i % 256, v, i / 256,
		 i % 256);
	cr_assert_eq(sl_config_parse(c, "t.yaml", y, strlen(y), &d), 0, "%s", d.n ? d.v[0].msg : "");
	sl_diags_free(&d);
}

static char *read_state(const char *name, size_t *len)
{
	char path[128], *text = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read(path, &text, &n, 64u << 20))
		return NULL;
	if (len)
		*len = n;
	return text;
}

static void write_state(const char *name, const char *text, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(file_write_atomic(path, text, len, 0600), 0);
}

/* A reopened store holds `want` at `version`. */
static void reopens_as(const struct sl_config *want, uint64_t version)
{
	struct store s = {};
	char err[256];
	json_t *a, *b;

	cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.version, version);
	a = sl_config_to_json(s.cfg);
	b = sl_config_to_json(want);
	cr_assert(json_equal(a, b), "reopened: %zu resources, want %zu", sl_config_count(s.cfg),
		  sl_config_count(want));
	json_decref(a);
	json_decref(b);
	store_close(&s);
}

/* next := c with services from..to-1 at endpoint variant v (and saved). */
static struct sl_config *changed(struct store *s, const struct sl_config *c, int from, int to,
				 int v, uint64_t version)
{
	struct sl_config *next = sl_config_dup(c);
	char err[256];

	for (int i = from; i < to; i++)
		entry(next, i, v);
	cr_assert_eq(store_save(s, next, s->ids, version, err, sizeof(err)), 0, "%s", err);
	return next;
}

Test(store, a_save_appends_what_changed_and_reopens_as_saved)
{
	struct store s = {}, fresh = {};
	struct sl_config *c = sl_config_new(), *next;
	char err[256], *a, *b, *log, *f;
	size_t flen = 0, loglen = 0;

	cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 20; i++)
		entry(c, i, 1);
	cr_assert_eq(store_save(&s, c, s.ids, 1, err, sizeof(err)), 0, "%s", err);
	a = read_state("config.json", NULL);
	cr_assert(a && strstr(a, "10.1.0.19"), "the first save writes a base");
	cr_assert_null(read_state("config.log", NULL));

	/* one changed, one removed, one added: one line, with only those */
	next = sl_config_dup(c);
	entry(next, 3, 2);
	cr_assert_eq(sl_config_remove(next, "ServiceEntry", "default", "s7"), 0);
	entry(next, 20, 1);
	cr_assert_eq(store_save(&s, next, s.ids, 2, err, sizeof(err)), 0, "%s", err);
	b = read_state("config.json", NULL);
	cr_assert_str_eq(a, b, "the base is not rewritten");
	log = read_state("config.log", &loglen);
	cr_assert(log);
	cr_assert_eq(strchr(log, '\n'), log + loglen - 1, "one line: %s", log);
	cr_assert(strstr(log, "\"version\":2") && strstr(log, "10.2.0.3") &&
		  strstr(log, "\"s20\"") && strstr(log, "[\"ServiceEntry\",\"default\",\"s7\"]"),
		  "%s", log);
	cr_assert_null(strstr(log, "\"s4\""), "an unchanged resource is not in the record");
	store_close(&s);
	reopens_as(next, 2);

	/* the base writer writes what a store that saw nothing writes */
	snprintf(fresh.td, sizeof(fresh.td), "%s", "cluster.local");
	f = store_config_text(&fresh, c, 1, &flen);
	cr_assert(f);
	cr_assert_str_eq(f, a);
	cr_assert_eq(flen, strlen(a));
	free(a);
	free(b);
	free(f);
	free(log);
	sl_config_free(next);
	sl_config_free(c);
}

/* A crash inside an append leaves part of a line: the save never returned,
 * so the reopened store drops it, and later appends start clean. */
Test(store, a_torn_last_record_is_dropped)
{
	static const char torn[] = "{\"version\":3,\"set\":[{\"apiVersion\":\"networking.istio.io/v1\"";
	struct store s = {};
	struct sl_config *c = sl_config_new(), *v2, *v3;
	char err[256], *log, *log2;
	size_t len = 0, len2 = 0;

	cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 5; i++)
		entry(c, i, 1);
	cr_assert_eq(store_save(&s, c, s.ids, 1, err, sizeof(err)), 0, "%s", err);
	v2 = changed(&s, c, 0, 1, 2, 2);
	store_close(&s);
	log = read_state("config.log", &len);
	cr_assert(log);
	log = realloc(log, len + sizeof(torn));
	memcpy(log + len, torn, sizeof(torn) - 1);
	write_state("config.log", log, len + sizeof(torn) - 1);
	reopens_as(v2, 2);
	log2 = read_state("config.log", &len2);
	cr_assert_eq(len2, len, "the torn part is cut off");

	cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	v3 = changed(&s, v2, 1, 2, 3, 3);
	store_close(&s);
	reopens_as(v3, 3);
	free(log);
	free(log2);
	sl_config_free(v3);
	sl_config_free(v2);
	sl_config_free(c);
}

/* Records accumulate until the log outgrows the base (and 1 MiB); then a
 * save writes a new base and removes the log. A crash between the two
 * leaves records the base holds already: they are not replayed. */
Test(store, a_log_that_outgrows_its_room_becomes_a_new_base)
{
	struct store s = {};
	struct sl_config *c = sl_config_new(), *next;
	char err[256], *base, *now, *log = NULL, *before = NULL;
	size_t len = 0, before_len = 0;
	int k, records = 0;

	cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 2500; i++)
		entry(c, i, 1);
	cr_assert_eq(store_save(&s, c, s.ids, 1, err, sizeof(err)), 0, "%s", err);
	base = read_state("config.json", NULL);
	cr_assert(base && strlen(base) < JOURNAL_MIN_BYTES, "a base smaller than the least room");
	for (k = 2;; k++) {
		cr_assert_lt(k, 20, "no new base after %d saves", k);
		free(before);
		before = read_state("config.log", &before_len);
		/* 1,000 of the 2,500 services change at each save */
		next = changed(&s, c, (k * 1000) % 2500, (k * 1000) % 2500 + 1000 > 2500 ? 2500 :
			       (k * 1000) % 2500 + 1000, k, (uint64_t)k);
		sl_config_free(c);
		c = next;
		now = read_state("config.json", NULL);
		log = read_state("config.log", &len);
		if (strcmp(now, base)) {
			free(now);
			break;
		}
		free(now);
		cr_assert(log && len > before_len, "save %d appends", k);
		free(log);
		records++;
	}
	cr_assert_geq(records, 2, "records accumulate first (%d)", records);
	cr_assert_null(log, "a new base removes the log");
	cr_assert_gt(before_len + (before_len / records), JOURNAL_MIN_BYTES - JOURNAL_MIN_BYTES / 8,
		     "the base came when the log was about to outgrow its room (%zu)", before_len);
	store_close(&s);
	reopens_as(c, (uint64_t)k);

	/* a crash after the new base, before the log's removal */
	write_state("config.log", before, before_len);
	reopens_as(c, (uint64_t)k);
	free(before);
	free(base);
	sl_config_free(c);
}
