// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sl-watchers - many map-less agents in one process, for the control
 * plane's fan-out bench (bench/fanout.sh).
 *
 *   sl-watchers --control URL --ca-file FILE --state-dir DIR
 *               --nodes PREFIX --count N --tokens FILE
 *
 * Watcher i is node PREFIX-i: the agent's own link to the control plane
 * (userspace/agent/sync.c: join with the i-th line of FILE as its token,
 * watch, deltas, ACK/NACK), whose apply function decodes each snapshot as
 * the agent does (lib/node/snapshot.h) and writes no map. So the control
 * plane sees N real agents; what it cannot see is the maps, which are
 * what a real agent spends its own time on. Runs until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/sync.h"
#include "lib/core/log.h"
#include "lib/node/snapshot.h"

#define MAX_WATCHERS 1024

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

/* The agent's apply function without the maps: decode (a delta's result
 * with the watcher's cache of the services it decoded last, as the agent
 * does), or refuse. */
static int decode(void *arg, const struct sync_snap *sn, const char *src, char *err,
		  size_t errlen)
{
	struct snapshot snap = {};

	if (sn->doc ? snapshot_from_json_cached(sn->doc, src, &snap, arg, err, errlen) :
	    snapshot_parse(sn->text, sn->len, src, &snap, err, errlen))
		return -1;
	snapshot_free(&snap);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: sl-watchers --control URL --ca-file FILE --state-dir DIR "
		"--nodes PREFIX --count N --tokens FILE\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'c' },
		{ "ca-file", required_argument, NULL, 'a' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "count", required_argument, NULL, 'N' },
		{ "tokens", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL, *ca = NULL, *dir = NULL, *prefix = NULL, *tokens = NULL;
	static struct sync *sy[MAX_WATCHERS];
	static struct snap_cache cache[MAX_WATCHERS];
	static char names[MAX_WATCHERS][64], dirs[MAX_WATCHERS][4096], toks[MAX_WATCHERS][256];
	struct pollfd pfd[MAX_WATCHERS];
	long count = 0;
	FILE *f;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': url = optarg; break;
		case 'a': ca = optarg; break;
		case 'd': dir = optarg; break;
		case 'n': prefix = optarg; break;
		case 'N': count = strtol(optarg, NULL, 10); break;
		case 't': tokens = optarg; break;
		default: return usage();
		}
	}
	if (!url || !ca || !dir || !prefix || !tokens || count < 1 || count > MAX_WATCHERS)
		return usage();
	log_init("sl-watchers", LOG_WARN);
	f = fopen(tokens, "r");
	if (!f) {
		fprintf(stderr, "sl-watchers: %s: %s\n", tokens, strerror(errno));
		return 1;
	}
	for (long i = 0; i < count; i++) {
		struct sync_opts o = { .ca_file = ca };

		if (!fgets(toks[i], sizeof(toks[i]), f)) {
			fprintf(stderr, "sl-watchers: %s: %ld tokens for %ld watchers\n", tokens, i,
				count);
			return 1;
		}
		toks[i][strcspn(toks[i], "\n")] = '\0';
		snprintf(names[i], sizeof(names[i]), "%s-%ld", prefix, i);
		snprintf(dirs[i], sizeof(dirs[i]), "%s/%s", dir, names[i]);
		o.node = names[i];
		o.url = url;
		o.token = toks[i];
		o.state_dir = dirs[i];
		sy[i] = sync_new(&o, decode, &cache[i]);
		if (!sy[i])
			return 1;
	}
	fclose(f);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	while (!stop) {
		int timeout = 1000;

		for (long i = 0; i < count; i++) {
			int t = sync_timeout_ms(sy[i]);

			pfd[i] = (struct pollfd){ .fd = sync_fd(sy[i]), .events = sync_events(sy[i]) };
			if (t >= 0 && t < timeout)
				timeout = t;
		}
		if (poll(pfd, (nfds_t)count, timeout) < 0 && errno != EINTR)
			break;
		for (long i = 0; i < count; i++) {
			if (sync_fatal(sy[i])) {
				fprintf(stderr, "sl-watchers: %s: refused for good\n", names[i]);
				return 1;
			}
			/* as the agent's loop: every turn (timers, reconnects) */
			sync_handle(sy[i], pfd[i].revents);
		}
	}
	for (long i = 0; i < count; i++) {
		sync_free(sy[i]);
		snap_cache_free(&cache[i]);
	}
	return 0;
}
