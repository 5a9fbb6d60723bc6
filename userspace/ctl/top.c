// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * top.c - `sluicectl top`: a live table of the mesh's traffic on this
 * machine, from the flow logs of the agents install runs here: one row per
 * source workload and destination, with connections opened, bytes of the
 * closed ones, denials, and whether the connection went over mutual TLS
 * (HBONE). The destination is the service the kernel balanced to, or, for
 * a connection through the node proxies (which see identities, not
 * services), the identity it reached: "sa:NAMESPACE/SERVICE-ACCOUNT".
 *
 * Each connection is counted once, from its source's report (a
 * connection through the node proxies is reported by both proxies); a
 * denial from the report of whoever denied it (the source's node at
 * connect(), or, where connect() cannot know the client, the destination's
 * tc).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "ctl/plan.h"
#include "ctl/profile.h"

#define TOP_ROWS 256

struct row {
	char src[96], dst[128];
	bool mtls;
	unsigned long long conns, bytes, denied;
};

struct top {
	struct row rows[TOP_ROWS];
	int nrows;
	off_t pos[PLAN_MAX_NODES];
};

static struct row *row_get(struct top *t, const char *src, const char *dst, bool mtls)
{
	for (int i = 0; i < t->nrows; i++)
		if (t->rows[i].mtls == mtls && !strcmp(t->rows[i].src, src) && !strcmp(t->rows[i].dst, dst))
			return &t->rows[i];
	if (t->nrows == TOP_ROWS)
		return NULL;
	struct row *r = &t->rows[t->nrows++];

	memset(r, 0, sizeof(*r));
	snprintf(r->src, sizeof(r->src), "%s", src);
	snprintf(r->dst, sizeof(r->dst), "%s", dst);
	r->mtls = mtls;
	return r;
}

static void endpoint(json_t *e, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", json_string_value(json_object_get(e, "namespace")) ?: "?",
		 json_string_value(json_object_get(e, "workload")) ?: "?");
}

/* A proxy knows the peer's identity, not the service the client called:
 * "sa:NS/SERVICE-ACCOUNT", from the SPIFFE ID. */
static void principal(json_t *e, char *out, size_t len)
{
	const char *p = json_string_value(json_object_get(e, "principal")) ?: "";
	const char *ns = strstr(p, "/ns/"), *sa = strstr(p, "/sa/");

	if (ns && sa && sa > ns)
		snprintf(out, len, "sa:%.*s/%s", (int)(sa - ns - 4), ns + 4, sa + 4);
	else
		endpoint(e, out, len);
}

static void add_event(struct top *t, json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type")) ?: "";
	const char *svc = json_string_value(json_object_get(ev, "service")) ?: "unknown";
	bool mtls = !strcmp(json_string_value(json_object_get(ev, "path")) ?: "", "hbone");
	char src[96], dst[128];
	struct row *r;

	/* a denial is reported once, by whoever denied it: the source's node
	 * at connect(), or the destination's tc */
	if (strcmp(type, "deny") &&
	    strcmp(json_string_value(json_object_get(ev, "reporter")) ?: "", "source"))
		return;
	endpoint(json_object_get(ev, "source"), src, sizeof(src));
	if (strcmp(svc, "unknown"))
		snprintf(dst, sizeof(dst), "%s", svc);
	else
		principal(json_object_get(ev, "destination"), dst, sizeof(dst));
	r = row_get(t, src, dst, mtls);
	if (!r)
		return;
	if (!strcmp(type, "open"))
		r->conns++;
	else if (!strcmp(type, "deny"))
		r->denied++;
	else if (!strcmp(type, "close"))
		r->bytes += (unsigned long long)json_integer_value(json_object_get(ev, "bytes_sent")) +
			    (unsigned long long)json_integer_value(json_object_get(ev, "bytes_received"));
}

/* Read what the node's flow log gained since the last read. */
static void poll_log(struct top *t, const struct plan_node *nd, int i)
{
	char path[PATH_MAX + 16], *line = NULL;
	size_t cap = 0;
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/flows.jsonl", nd->run_dir);
	if (stat(path, &st))
		return;
	if (st.st_size < t->pos[i])
		t->pos[i] = 0;   /* rotated */
	f = fopen(path, "r");
	if (!f)
		return;
	fseeko(f, t->pos[i], SEEK_SET);
	while (getline(&line, &cap, f) > 0 && line[strlen(line) - 1] == '\n') {
		json_t *ev = json_loads(line, 0, NULL);

		t->pos[i] = ftello(f);
		if (ev)
			add_event(t, ev);
		json_decref(ev);
	}
	free(line);
	fclose(f);
}

static void human(unsigned long long b, char *out, size_t len)
{
	if (b >= 10ull << 20)
		snprintf(out, len, "%llu MiB", b >> 20);
	else if (b >= 10ull << 10)
		snprintf(out, len, "%llu KiB", b >> 10);
	else
		snprintf(out, len, "%llu B", b);
}

static void print_table(const struct top *t, bool json, double secs)
{
	if (json) {
		json_t *a = json_array();

		for (int i = 0; i < t->nrows; i++) {
			const struct row *r = &t->rows[i];

			json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I, s:I, s:b}", "source", r->src,
							   "destination", r->dst, "connections", (json_int_t)r->conns,
							   "bytes", (json_int_t)r->bytes, "denied",
							   (json_int_t)r->denied, "mtls", r->mtls));
		}
		json_dumpf(a, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(a);
		fflush(stdout);
		return;
	}
	printf("\n%-24s %-32s %7s %10s %7s %5s   (%.0f s)\n", "SOURCE", "DESTINATION", "CONNS", "BYTES",
	       "DENIED", "MTLS", secs);
	for (int i = 0; i < t->nrows; i++) {
		const struct row *r = &t->rows[i];
		char b[32];

		human(r->bytes, b, sizeof(b));
		printf("%-24s %-32s %7llu %10s %7llu %5s\n", r->src, r->dst, r->conns, b, r->denied,
		       r->mtls ? "yes" : "no");
	}
	if (!t->nrows)
		printf("(no flows yet)\n");
	fflush(stdout);
}

const struct cli_opt ctl_top_opts[] = {
	{ "interval", required_argument | CLI_SHORT, 'i', "SECONDS",
	  "between two tables, 0.1 to 3600 (default 1)" },
	{ "count", required_argument | CLI_SHORT, 'c', "N", "print N tables, then exit (default: until ^C)" },
	{ "since-start", no_argument, 'S', NULL, "count the flow logs from their start, not from now" },
	PROFILE_OPT_PREFIX,
	CTL_OPT_OUTPUT("table|json", "table (default) or json"),
	CTL_OPT_HELP,
	{}
};

int cmd_top(const struct ctl_opts *o, int argc, char **argv)
{
	struct profile_args a = {};
	struct ctl_args g;
	const char *sets[1];
	struct plan p = {};
	struct top *t = calloc(1, sizeof(*t));
	double interval = 1, t0;
	long count = 0;
	bool since_start = false, json = o->json;
	char err[512];
	struct timespec ts;
	int c, rc = 1;

	if (!t)
		return 1;
	ctl_args_init(&g, "sluicectl", CTL_TOP_HELP, ctl_top_opts, argc, argv);
	while ((c = ctl_args_next(&g)) >= 0) {
		switch (c) {
		case 'i': interval = atof(optarg); break;
		case 'c': count = atol(optarg); break;
		case 'S': since_start = true; break;
		case 'o': json = !strcmp(optarg, "json"); break;
		case 's':
			sets[0] = optarg;
			a.src.sets = sets;
			a.src.nsets = 1;
			break;
		}
	}
	if (c == CTL_ARGS_EXIT || g.npos || interval < 0.1 || interval > 3600) {
		free(t);
		if (c == CTL_ARGS_EXIT)
			return g.status;
		return g.npos ? ctl_usage_error(&g, "unexpected '%s'", g.pos[0]) :
				ctl_usage_error(&g, "--interval: 0.1 to 3600 seconds");
	}
	if (plan_installed(&p, &a, err, sizeof(err))) {
		fprintf(stderr, "sluicectl top: %s\n", err);
		free(t);
		return 1;
	}
	if (!prof_bool(p.prof, "agent.flowLog")) {
		fprintf(stderr, "sluicectl top: the flow log is off: install with --set agent.flowLog=true\n");
		goto out;
	}
	for (int i = 0; i < p.nnodes; i++) {
		char path[PATH_MAX + 16];
		struct stat st;

		snprintf(path, sizeof(path), "%s/flows.jsonl", p.nodes[i].run_dir);
		t->pos[i] = since_start || stat(path, &st) ? 0 : st.st_size;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec + ts.tv_nsec / 1e9;
	for (long n = 0; !count || n < count; n++) {
		usleep((useconds_t)(interval * 1e6));
		for (int i = 0; i < p.nnodes; i++)
			poll_log(t, &p.nodes[i], i);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		print_table(t, json, ts.tv_sec + ts.tv_nsec / 1e9 - t0);
	}
	rc = 0;
out:
	plan_free(&p);
	free(t);
	return rc;
}
