/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * options.h - sluice-agent's command line: what it runs with, parsed,
 * checked and completed with its defaults (sluice-agent(8)).
 *
 * Contract: after options_parse() returned -1 every field the agent reads
 * is set (the pin root, run dir, state dir, CNI socket and flow log have
 * their defaults filled in) and the log is set up at --log-level; any
 * other value is the program's exit status (0 after --help/--version, 2
 * after a usage error, which has been printed).
 */
#ifndef SL_AGENT_OPTIONS_H
#define SL_AGENT_OPTIONS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/enroll.h"
#include "agent/sync.h"
#include "lib/node/tchook.h"

struct agent_opts {
	const char *node;
	const char *cgroup;
	const char *snapshot;
	struct sync_opts control;  /* url == NULL: --snapshot mode */
	char pin_root[PATH_MAX];
	bool uninstall;
	bool once;
	const char *metrics_addr;
	const char *flow_log;
	uint64_t flow_log_max;
	enum sockmap_mode { SOCKMAP_OFF, SOCKMAP_ON, SOCKMAP_FORCE } sockmap;
	enum tchook_mode tc_attach;  /* as asked (TCHOOK_AUTO by default) */
	char run_dir[PATH_MAX];
	/* the node proxy (--control mode) */
	bool proxy;
	const char *hbone_addr, *outbound_addr;
	const char *capture_addr;    /* where pods reach the outbound listener: IPv4 */
	const char *capture_addr6;   /* and IPv6 */
	unsigned int hbone_handshake_ms;
	unsigned int proxy_drain_ms;
	const char *proxy_bin;
	const char *log_level;
	uint64_t started_ms;         /* CLOCK_REALTIME */
	struct enroll_opts cni;      /* --control mode: the CNI plugin's socket */
};

/* Parse argv into o: -1 to go on (a value, not an error code), else the
 * exit status (0 or 2). */
int options_parse(struct agent_opts *o, int argc, char **argv);

/* The sluice-proxy beside this program, unless --proxy-bin gave one:
 * 0, or 2 (logged) when this program's own path is unknown. */
int options_proxy_bin(struct agent_opts *o);

#endif /* SL_AGENT_OPTIONS_H */
