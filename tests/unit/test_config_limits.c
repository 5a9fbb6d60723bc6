// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Hostile YAML against the limits of one input (lib/config/config.h, docs/config.md
 * "Limits"): each is refused with FILE:LINE:COLUMN, quickly and in bounded
 * memory, and leaves the config as it was. The inputs are generated here.
 * Also: keys and values checked as Kubernetes checks them, and diagnostics
 * that quote a hostile value quote only its start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "lib/config/config.h"

/* One valid resource, there before each hostile input. */
static const char base[] =
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
	"spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Peak memory of this test's process (Criterion forks one per test). */
static long peak_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

/*
 * Parse `text` into a config holding `base`: it must be refused with a
 * message containing `want`, within `max_s` seconds (generous: the machine
 * may be busy; a quadratic path would take minutes), and leave the config
 * with exactly the base resource. The time and peak memory are printed
 * (docs/config.md quotes them).
 */
static void refused(const char *what, const char *text, size_t len, const char *want,
		    double max_s)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	double t0, secs;
	bool found = false;
	/* past the size limit -EFBIG, as a file's; every other limit -EINVAL */
	int want_rc = strstr(want, "the input goes on past") ? -EFBIG : -EINVAL;

	cr_assert_not_null(c);
	cr_assert_eq(sl_config_parse(c, "base.yaml", base, strlen(base), &d), 0);
	t0 = now_s();
	cr_assert_eq(sl_config_parse(c, "t.yaml", text, len, &d), want_rc, "%s was accepted", what);
	secs = now_s() - t0;
	for (size_t i = 0; i < d.n; i++) {
		cr_assert_lt(strlen(d.v[i].msg), 400, "%s: a %zu-byte message", what,
			     strlen(d.v[i].msg));
		found = found || strstr(d.v[i].msg, want);
	}
	cr_assert(found, "%s: no \"%s\" in: %s", what, want, d.n ? d.v[0].msg : "(nothing)");
	cr_assert_eq(sl_config_count(c), 1, "%s changed the config", what);
	cr_assert_not_null(sl_config_find(c, "Service", "shop", "web"));
	cr_assert_lt(secs, max_s, "%s took %.2f s", what, secs);
	cr_log_info("%s: refused in %.3f s, peak %ld MB: %s", what, secs, peak_mb(), d.v[0].msg);
	sl_diags_free(&d);
	sl_config_free(c);
}

/* `unit` repeated n times, then `tail`: malloc'd, length in *len. */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail, size_t *len)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1), *p;

	cr_assert_not_null(s);
	memcpy(s, head, hl);
	p = s + hl;
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	*len = hl + ul * n + tl;
	return s;
}

/* refused() on head + n x unit + tail. */
static void refused_repeat(const char *what, const char *head, const char *unit, size_t n,
			   const char *tail, const char *want, double max_s)
{
	size_t len;
	char *text = repeat(head, unit, n, tail, &len);

	refused(what, text, len, want, max_s);
	free(text);
}

/* Nine levels of nine references each: 9^9 strings if expanded. */
static const char laughs[] =
	"a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
	"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	"h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
	"i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";

Test(config_limits, alias_bomb)
{
	refused("alias bomb", laughs, strlen(laughs),
		"t.yaml:2:8: YAML aliases are not supported", 1);
}

/* sl_config_parse_file() on a temporary file holding `text`, or (text
 * NULL) `size` bytes of holes. */
static int parse_temp_file(const char *text, off_t size, struct sl_config *c, struct sl_diags *d)
{
	char path[] = "/tmp/sluice-limits.XXXXXX";
	int fd = mkstemp(path), rc;

	cr_assert_geq(fd, 0);
	if (text)
		cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	else
		cr_assert_eq(ftruncate(fd, size), 0);
	close(fd);
	rc = sl_config_parse_file(c, path, d);
	unlink(path);
	return rc;
}

/* What `sluicectl analyze -f` runs on a file: refused at once. */
Test(config_limits, alias_bomb_file_as_analyze_reads_it)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	double t0 = now_s();

	cr_assert_eq(parse_temp_file(laughs, 0, c, &d), -EINVAL);
	cr_assert_lt(now_s() - t0, 1.0);
	cr_assert_eq(d.nerrors, 1);
	cr_assert(strstr(d.v[0].msg, ":2:8: YAML aliases are not supported"), "%s", d.v[0].msg);
	cr_assert_eq(sl_config_count(c), 0);
	sl_diags_free(&d);
	sl_config_free(c);
}

Test(config_limits, nesting_10000_deep)
{
	refused_repeat("10,000 nested flow lists", "", "[", 10000, "",
		       "t.yaml:1:65: nesting deeper than 64 levels", 10);
	refused_repeat("10,000 nested flow mappings", "", "{a: ", 10000, "",
		       "t.yaml:1:257: nesting deeper than 64 levels", 10);
	refused_repeat("10,000 nested block lists", "", "- ", 10000, "x\n",
		       "t.yaml:1:129: nesting deeper than 64 levels", 10);
}

/* 16 bytes a line: the limit falls at the start of line 1048577 */
Test(config_limits, input_of_100_mb)
{
	refused_repeat("a 100 MB input", "", "k: 0123456789ab\n", (100u << 20) / 16, "",
		       "t.yaml:1048577:1: the input goes on past 16777216 bytes (104857600 in all)", 10);
}

/* A file over the limit is refused before it is read. */
Test(config_limits, file_of_100_mb)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};

	cr_assert_eq(parse_temp_file(NULL, 100 << 20, c, &d), -EFBIG);
	cr_assert(strstr(d.v[0].msg, "larger than 16777216 bytes, the limit for one input"),
		  "%s", d.v[0].msg);
	cr_assert_lt(peak_mb(), 100);
	sl_diags_free(&d);
	sl_config_free(c);
}

/* document 10,001 starts at line 20,001 */
Test(config_limits, documents_100000)
{
	refused_repeat("100,000 documents", "", "---\nx: 1\n", 100000, "",
		       "t.yaml:20001:1: more than 10000 documents in one input: the limit is 10000", 20);
}

#define SVC_HEAD "apiVersion: v1\nkind: Service\nmetadata:\n  name: "
#define SVC_TAIL "\nspec: {clusterIP: 10.96.0.11, ports: [{port: 80}]}\n"

Test(config_limits, scalar_of_1_mb)
{
	refused_repeat("a 1 MB value", SVC_HEAD, "a", 1u << 20, SVC_TAIL,
		       "t.yaml:4:9: a value of 1048576 bytes: the limit is 65536", 10);
}

Test(config_limits, nodes_over_a_million)
{
	refused_repeat("1,100,000 list items", "x: [", "1,", 1100000, "1]\n",
		       "more than 1000000 nodes", 30);
}

/* 100,000 keys in one mapping: the duplicate check is not quadratic. */
Test(config_limits, mapping_of_100000_keys)
{
	char *s = malloc(100000 * 16 + 64), *p = s;

	cr_assert_not_null(s);
	for (int i = 0; i < 100000; i++)
		p += sprintf(p, "k%d: 1\n", i);
	p += sprintf(p, "k77: 2\n");
	refused("100,000 keys and a duplicate", s, (size_t)(p - s),
		"t.yaml:100001:1: duplicate key \"k77\" (first at line 78)", 30);
	free(s);
}

/* A long (but not over the limit) name is quoted by its first 64 bytes. */
Test(config_limits, long_name_quoted_short)
{
	refused_repeat("a 60,000-byte name", SVC_HEAD, "A", 60000, SVC_TAIL,
		       "metadata.name: \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		       "AAAA...\" is not a DNS-1123 name", 10);
}

Test(config_limits, not_utf8)
{
	static const char text[] = "a: 1\nb: caf\xc3\xa9\nc: \xe9t\xe9\n";

	refused("Latin-1 text", text, strlen(text), "t.yaml:3:4: byte 0xe9 is not UTF-8 text", 1);
}

/* Arrays, not pointers: Criterion copies the parameters to the test's
 * process, where the binary may sit at another address. */
struct k8s_case {
	char yaml[160];      /* metadata lines */
	char want[96];       /* "": accepted */
};

ParameterizedTestParameters(config_limits, kubernetes_names)
{
	static struct k8s_case cases[] = {
		{ "  name: web\n  labels: {app: web, app.kubernetes.io/part-of: shop, v: ''}\n", "" },
		{ "  name: web\n  labels: {example.com/a_b.c-d: A-1.b_2}\n", "" },
		{ "  name: web\n  annotations: {sluice.io/anything: 'any text: at all'}\n", "" },
		{ "  name: Web\n", "metadata.name: \"Web\" is not a DNS-1123 name" },
		{ "  name: 1web\n", "metadata.name: \"1web\" is not a Service name (a DNS-1035 label" },
		{ "  name: web.shop\n", "\"web.shop\" is not a Service name" },
		{ "  name: web\n  namespace: a.b\n", "metadata.namespace: \"a.b\" is not a DNS label" },
		{ "  name: web\n  labels: {-app: web}\n",
		  "metadata.labels.-app: \"-app\" is not a key Kubernetes accepts" },
		{ "  name: web\n  labels: {Example.com/app: web}\n", "is not a key Kubernetes accepts" },
		{ "  name: web\n  labels: {example.com/: web}\n", "is not a key Kubernetes accepts" },
		{ "  name: web\n  labels: {app: -web}\n",
		  "metadata.labels.app: \"-web\" is not a label value" },
		{ "  name: web\n  labels: {app: 'a b'}\n", "\"a b\" is not a label value" },
		{ "  name: web\n  labels: {app: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n",
		  "is not a label value" },
		{ "  name: web\n  annotations: {'a b': x}\n",
		  "metadata.annotations.a b: \"a b\" is not a key Kubernetes accepts" },
	};

	return cr_make_param_array(struct k8s_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct k8s_case *k, config_limits, kubernetes_names)
{
	struct sl_config *c = sl_config_new();
	struct sl_diags d = {};
	char doc[1024];
	int rc;

	snprintf(doc, sizeof(doc), "apiVersion: v1\nkind: Service\nmetadata:\n%s"
		 "spec: {clusterIP: 10.96.0.11, ports: [{port: 80}]}\n", k->yaml);
	rc = sl_config_parse(c, "t.yaml", doc, strlen(doc), &d);
	if (!k->want[0]) {
		cr_assert_eq(rc, 0, "%s", d.n ? d.v[0].msg : "");
	} else {
		cr_assert_eq(rc, -EINVAL, "accepted: %s", k->yaml);
		cr_assert(strstr(d.v[0].msg, k->want), "%s", d.v[0].msg);
		cr_assert_eq(sl_config_count(c), 0);
	}
	sl_diags_free(&d);
	sl_config_free(c);
}
