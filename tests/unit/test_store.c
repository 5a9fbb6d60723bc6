// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * control/store with its state dir: config.json is written from the texts
 * of the documents a save has seen before plus the new ones, and is what
 * a save from nothing writes; a reopened store reads back the config and
 * version it saved.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "control/store.h"
#include "control/store_common.h"
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

/* ServiceEntry s<i> with endpoint address 10.1.<i>.<v>. */
static void entry(struct sl_config *c, int i, int v)
{
	char y[512];
	struct sl_diags d = {};

	snprintf(y, sizeof(y),
		 "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
		 "metadata: {name: s%d, namespace: default}\n"
		 "spec: {hosts: [s%d.example], addresses: [10.96.7.%d], location: MESH_INTERNAL,\n"
		 "  resolution: STATIC, ports: [{number: 80, name: http, protocol: TCP}],\n"
		 "  endpoints: [{address: 10.1.%d.%d}]}\n", i, i, i, i, v);
	cr_assert_eq(sl_config_parse(c, "t.yaml", y, strlen(y), &d), 0);
	sl_diags_free(&d);
}

static char *config_json(void)
{
	char path[128], *text = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	cr_assert_eq(file_read(path, &text, &len, 1 << 20), 0);
	return text;
}

Test(store, saves_reuse_document_texts_and_write_what_a_fresh_save_writes)
{
	struct store s = {}, fresh = {};
	struct sl_config *c = sl_config_new(), *next;
	char err[256], *a, *b, *f;
	size_t flen = 0;

	cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 20; i++)
		entry(c, i, 1);
	cr_assert_eq(store_save(&s, c, s.ids, 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.ntexts, 20);
	a = config_json();

	/* one changed, one removed, one added: the others' texts are reused */
	next = sl_config_dup(c);
	entry(next, 3, 2);
	cr_assert_eq(sl_config_remove(next, "ServiceEntry", "default", "s7"), 0);
	entry(next, 20, 1);
	cr_assert_eq(store_save(&s, next, s.ids, 2, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.ntexts, 20);
	b = config_json();
	cr_assert(strcmp(a, b));
	cr_assert(strstr(b, "10.1.3.2") && !strstr(b, "10.1.3.1"), "the change is saved");
	cr_assert(!strstr(b, "\"s7\""), "the removal is saved");

	/* a store that never saw these documents writes the same text */
	fresh.td[0] = '\0';
	snprintf(fresh.td, sizeof(fresh.td), "%s", s.td);
	f = store_config_text(&fresh, next, 2, &flen);
	cr_assert(f);
	cr_assert_str_eq(f, b);
	cr_assert_eq(flen, strlen(b));
	store_texts_free(&fresh);

	/* and it reads back */
	store_close(&s);
	cr_assert_eq(store_open(&s, dir, NULL, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.version, 2);
	cr_assert_eq(sl_config_count(s.cfg), 20);
	cr_assert(sl_config_find(s.cfg, "ServiceEntry", "default", "s20"));
	cr_assert_null(sl_config_find(s.cfg, "ServiceEntry", "default", "s7"));
	store_close(&s);
	free(a);
	free(b);
	free(f);
	sl_config_free(next);
	sl_config_free(c);
}
