// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * observe.c - `sluicectl observe`: stream flow events live.
 *
 * The agent is the ring buffer's only consumer (a BPF ring buffer has one
 * consumer position; a second reader would steal events), and it writes
 * every event to its flow log. observe follows that file the way `tail -F`
 * does, across the agent's size-based rotation (as long as it is never a
 * whole file behind, which the default 64 MiB makes a non-issue), and
 * filters and formats each event.
 *
 *   sluicectl [--node N | --pin-root DIR] [-o json] observe [--flow-log FILE]
 *             [--pod NAME] [--service NAME] [--verdict allowed|denied]
 *             [--type open|close|deny] [--since-start] [--count N] [--timeout S]
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "lib/core/sys.h"

struct filter {
	const char *pod, *service, *verdict, *type;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static const char *jstr(json_t *o, const char *path1, const char *path2)
{
	json_t *v = json_object_get(o, path1);

	if (path2)
		v = json_object_get(v, path2);
	return json_is_string(v) ? json_string_value(v) : "";
}

static bool match(json_t *e, const struct filter *f)
{
	if (f->pod && strcmp(jstr(e, "source", "workload"), f->pod) &&
	    strcmp(jstr(e, "destination", "workload"), f->pod))
		return false;
	if (f->service && strcmp(jstr(e, "service", NULL), f->service))
		return false;
	if (f->verdict && strcmp(jstr(e, "verdict", NULL), f->verdict))
		return false;
	if (f->type && strcmp(jstr(e, "type", NULL), f->type))
		return false;
	return true;
}

static void print_table(json_t *e)
{
	double t = json_real_value(json_object_get(e, "time"));
	time_t secs = (time_t)t;
	struct tm tm;
	char when[32], extra[96] = "";

	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	if (!strcmp(jstr(e, "type", NULL), "close"))
		snprintf(extra, sizeof(extra), " sent=%lld received=%lld %.1fms",
			 (long long)json_integer_value(json_object_get(e, "bytes_sent")),
			 (long long)json_integer_value(json_object_get(e, "bytes_received")),
			 json_real_value(json_object_get(e, "duration_ms")));
	else if (!strcmp(jstr(e, "type", NULL), "deny"))
		snprintf(extra, sizeof(extra), " reason=%s", jstr(e, "reason", NULL));
	printf("%s.%03d %-5s %-7s %s/%s (%s) -> %s/%s (%s) %s %s/%lld%s\n", when,
	       (int)((t - (double)secs) * 1000), jstr(e, "type", NULL), jstr(e, "verdict", NULL),
	       jstr(e, "source", "namespace"), jstr(e, "source", "workload"),
	       jstr(e, "source", "address"), jstr(e, "destination", "namespace"),
	       jstr(e, "destination", "workload"), jstr(e, "destination", "address"),
	       jstr(e, "service", NULL), jstr(e, "protocol", NULL),
	       (long long)json_integer_value(json_object_get(e, "port")), extra);
}

const struct cli_opt ctl_observe_opts[] = {
	{ "flow-log", required_argument, 'f', "FILE",
	  "the flow log to follow (default: the agent's, under --node or --pin-root)" },
	{ "pod", required_argument, 'p', "NAME", "events whose source or destination is this workload" },
	{ "service", required_argument, 's', "NAME", "events to this service" },
	{ "verdict", required_argument, 'v', "allowed|denied", "allowed or denied connections" },
	{ "type", required_argument, 't', "TYPE", "events of this type: open, close, deny, eject" },
	{ "since-start", no_argument, 'a', NULL, "from the flow log's start, not from now" },
	{ "count", required_argument, 'n', "N", "exit after N events (exit 1 if fewer came)" },
	{ "timeout", required_argument, 'T', "SECONDS", "exit after this long without an event" },
	CTL_OPT_OUTPUT("table|json", "table (default) or json: the flow log's lines as they are"),
	CTL_OPT_HELP,
	{}
};

int cmd_observe(const struct ctl_opts *o, int argc, char **argv)
{
	struct filter f = {};
	struct ctl_args g;
	char path[PATH_MAX] = "", *line = NULL;
	long count = -1, matched = 0;
	double timeout = 0, waited = 0;
	bool from_start = false, draining = false, json = o->json;
	static char partial[65536];
	size_t partial_len = 0;
	size_t cap = 0;
	struct stat st;
	FILE *in = NULL;
	ino_t ino = 0;
	int c;

	ctl_args_init(&g, "sluicectl", CTL_OBSERVE_HELP, ctl_observe_opts, argc, argv);
	while ((c = ctl_args_next(&g)) >= 0) {
		switch (c) {
		case 'f': snprintf(path, sizeof(path), "%s", optarg); break;
		case 'p': f.pod = optarg; break;
		case 's': f.service = optarg; break;
		case 'v': f.verdict = optarg; break;
		case 't': f.type = optarg; break;
		case 'a': from_start = true; break;
		case 'n': count = atol(optarg); break;
		case 'T': timeout = atof(optarg); break;
		case 'o': json = !strcmp(optarg, "json"); break;
		}
	}
	if (c == CTL_ARGS_EXIT)
		return g.status;
	if (g.npos)
		return ctl_usage_error(&g, "unexpected '%s'", g.pos[0]);
	if (!path[0]) {
		char run[PATH_MAX];

		if (!o->pin_root[0] || sys_run_dir(o->pin_root, run, sizeof(run))) {
			fprintf(stderr, "sluicectl: observe: give --node NAME, --pin-root DIR or --flow-log FILE\n");
			return 2;
		}
		snprintf(path, sizeof(path), "%s/flows.jsonl", run);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);

	while (!stop && (count < 0 || matched < count)) {
		ssize_t n;

		if (!in) {
			in = fopen(path, "r");
			if (!in) {
				if (errno != ENOENT) {
					fprintf(stderr, "sluicectl: observe: %s: %s\n", path, strerror(errno));
					return 1;
				}
			} else {
				fstat(fileno(in), &st);
				ino = st.st_ino;
				if (!from_start)
					fseek(in, 0, SEEK_END);
				from_start = true; /* a rotated-in file is read whole */
			}
		}
		n = in ? getline(&line, &cap, in) : -1;
		if (n > 0 && line[n - 1] != '\n') {
			/* the agent is mid-write: keep the start, read the rest */
			if (partial_len + (size_t)n + 1 > sizeof(partial))
				partial_len = 0; /* not a line of ours: drop it */
			memcpy(partial + partial_len, line, (size_t)n);
			partial_len += (size_t)n;
			n = -1;
		} else if (n > 0 && partial_len) {
			if (partial_len + (size_t)n + 1 <= sizeof(partial)) {
				memcpy(partial + partial_len, line, (size_t)n + 1);
				free(line);
				line = strdup(partial);
				cap = line ? strlen(line) + 1 : 0;
				n = line ? (ssize_t)strlen(line) : -1;
			}
			partial_len = 0;
		}
		if (n > 0) {
			json_t *e = json_loads(line, 0, NULL);

			if (e && match(e, &f)) {
				if (json)
					fputs(line, stdout);
				else
					print_table(e);
				matched++;
			}
			json_decref(e);
			waited = 0;
			draining = false;
			continue;
		}
		/* at the end: has the agent rotated the file? Lines it wrote
		 * between our last read and the rename are still in the old
		 * file: drain it, then switch. */
		if (in) {
			clearerr(in);
			if (stat(path, &st) == 0 && st.st_ino != ino) {
				if (draining) {
					char old[PATH_MAX + 4];
					struct stat ost;

					/* our file should now be FILE.1; if not, the
					 * agent rotated more than once in between */
					snprintf(old, sizeof(old), "%s.1", path);
					if (stat(old, &ost) || ost.st_ino != ino)
						fprintf(stderr, "sluicectl: observe: the flow log rotated "
							"faster than it was read; events were missed\n");
					fclose(in);
					in = NULL;
					draining = false;
				} else {
					draining = true;
				}
				continue;
			}
		}
		if (timeout > 0 && waited >= timeout)
			break;
		usleep(20000);
		waited += 0.02;
	}
	free(line);
	if (in)
		fclose(in);
	return count > 0 && matched < count ? 1 : 0;
}
