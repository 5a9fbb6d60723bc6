// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * options.c - sluice-agent's command line (options.h): the option table,
 * the help and man page text, defaults and validation.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/options.h"
#include "agent/podman.h"
#include "lib/core/addr.h"
#include "lib/core/cli.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"

static const struct cli_opt agent_options[] = {
	{ "node", required_argument, 'n', "NAME",
	  "this node's name (default pin root " SL_PIN_BASE "/NAME)" },
	{ "cgroup", required_argument, 'c', "PATH",
	  "cgroup v2 directory whose descendants are the node's pods; absolute, or "
	  "relative to the cgroup2 mount" },
	{ "snapshot", required_argument, 's', "FILE",
	  "the node's desired state (JSON, docs/snapshot.md); watched" },
	{ "control", required_argument, 'C', "URL[,URL...]",
	  "take snapshots from sluice-control at https://HOST:PORT instead; a list "
	  "names replicas, tried in order, the next one at once when one goes away "
	  "(docs/control-plane.md)" },
	{ "ca-file", required_argument, 'A', "FILE", "the control plane's CA certificate" },
	{ "join-token", required_argument, 'J', "TOKEN",
	  "single-use token for the first join (sluice-control token create)" },
	{ "state-dir", required_argument, 'D', "DIR",
	  "node key, certificate, last good snapshot (default " SYNC_DEFAULT_STATE_BASE "/NAME)" },
	{ "pin-root", required_argument, 'p', "DIR",
	  "where maps and links are pinned (a bpffs directory)" },
	{ "once", no_argument, 'o', NULL,
	  "apply the snapshot and exit (programs stay attached)" },
	{ "metrics-addr", required_argument, 'm', "A:P",
	  "serve Prometheus metrics on http://A:P/metrics" },
	{ "flow-log", required_argument, 'f', "FILE",
	  "flow events as JSON lines: FILE, - (stdout) or none (default " SL_RUN_BASE
	  "/NAME/flows.jsonl; sluicectl observe reads it)" },
	{ "flow-log-max-bytes", required_argument, 'F', "N",
	  "rotate FILE to FILE.1 at N bytes (default 64 MiB)" },
	{ "sockmap", required_argument, 'S', "off|on|force",
	  "same-node fast path for new connections: off (default), on (unless the kernel "
	  "breaks half-close, which a probe checks at start) or force (even then); "
	  "`sluicectl fastpath on|off|force` flips it at run time" },
	{ "tc-attach", required_argument, 'X', "auto|tcx|cls",
	  "how the tc programs sit on pod veths: tcx (kernels 6.6 and later), cls (a "
	  "cls_bpf filter under a clsact qdisc, every kernel) or auto (default: tcx "
	  "where the kernel has it); a restart in another mode moves them without a gap" },
	{ "proxy", required_argument, 'P', "on|off",
	  "the node's mTLS proxy (--control mode only; default on)" },
	{ "hbone-addr", required_argument, 'H', "A:P",
	  "HBONE listener (default 0.0.0.0:15008); a specific address is also what other "
	  "nodes are told to dial, else the address this node reaches the control plane from" },
	{ "outbound-addr", required_argument, 'O', "A:P",
	  "listener for captured connections (default 0.0.0.0:15001)" },
	{ "capture-addr", required_argument, 'K', "IP",
	  "an address pods reach this node's outbound listener at (default: "
	  "--outbound-addr's, if specific); once for IPv4, once for IPv6 destinations; "
	  "capture of connections that must be mutual TLS is off for a family without one" },
	{ "hbone-handshake-timeout", required_argument, 'T', "MS",
	  "TLS handshake limit for HBONE (default 10000)" },
	{ "proxy-bin", required_argument, 'B', "FILE",
	  "the sluice-proxy to start (default: beside this program)" },
	{ "proxy-drain-timeout", required_argument, 'W', "MS",
	  "how long a proxy replaced by a successor (upgrade, SIGUSR2) lets its open "
	  "tunnels run (default 30000)" },
	{ "cni-socket", required_argument, 'N', "PATH",
	  "where the sluice CNI plugin hands containers over (--control mode; default "
	  SL_RUN_BASE "/NAME/cni.sock; docs/cni.md)" },
	{ "runtime-db", required_argument, 'R', "FILE",
	  "podman's state database, the record containers' identities are read from "
	  "(default " PODMAN_DEFAULT_DB ")" },
	{ "uninstall", no_argument, 'u', NULL,
	  "detach the programs and remove the pinned state" },
	{ "log-level", required_argument, 'l', "L", "error|warn|info|debug (default info)" },
	{ "version", no_argument, 'V', NULL, "print the version and exit" },
	{ "help", no_argument | CLI_SHORT, 'h', NULL, "print this help and exit" },
	{ "man", no_argument, 'M', NULL, NULL },
	{}
};

static const struct cli_prog agent_cli = {
	.name = "sluice-agent",
	.section = 8,
	.summary = "the sluice node agent: the eBPF data plane and its maps",
	.usage = (const char *const[]){
		"--node NAME --cgroup PATH --snapshot FILE [options]",
		"--node NAME --cgroup PATH --control URL --ca-file FILE [--join-token TOKEN] "
		"[--state-dir DIR] [options]",
		"--node NAME --uninstall [--pin-root DIR]",
		NULL },
	.description =
		"The node agent loads and attaches the data plane, pins its maps, and keeps "
		"them equal to the node's snapshot: a file (--snapshot) or what the control "
		"plane pushes (--control).\n\n"
		"The snapshot file is watched (inotify on its directory, so both in-place "
		"writes and atomic renames are seen); each change is parsed in full and only "
		"then reconciled into the maps, so an invalid file changes nothing. The "
		"agent can be stopped and started again without dropping a connection; "
		"--uninstall removes what it pinned.",
	.opts = agent_options,
};

int options_parse(struct agent_opts *o, int argc, char **argv)
{
	static char default_flow[PATH_MAX + 16];
	enum log_level level = LOG_INFO;
	const char *pin_root = NULL;
	char run_dir[PATH_MAX];
	struct cli_getopt g;
	int c;

	*o = (struct agent_opts){ .flow_log_max = 64ull << 20, .sockmap = SOCKMAP_OFF, .proxy = true,
				  .proxy_drain_ms = 30000,
				  .hbone_addr = "0.0.0.0:15008", .outbound_addr = "0.0.0.0:15001" };

	if (cli_getopt_init(&g, agent_options, ""))
		return 2;
	while ((c = cli_getopt(&g, argc, argv)) != -1) {
		switch (c) {
		case 'n': o->node = optarg; break;
		case 'c': o->cgroup = optarg; break;
		case 's': o->snapshot = optarg; break;
		case 'p': pin_root = optarg; break;
		case 'u': o->uninstall = true; break;
		case 'o': o->once = true; break;
		case 'm': o->metrics_addr = optarg; break;
		case 'C': o->control.url = optarg; break;
		case 'A': o->control.ca_file = optarg; break;
		case 'J': o->control.token = optarg; break;
		case 'D': o->control.state_dir = optarg; break;
		case 'P':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "sluice-agent: --proxy: on or off\n");
				return 2;
			}
			o->proxy = !strcmp(optarg, "on");
			break;
		case 'H': o->hbone_addr = optarg; break;
		case 'B': o->proxy_bin = optarg; break;
		case 'W': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || !v || v > 3600000) {
				fprintf(stderr, "sluice-agent: --proxy-drain-timeout: milliseconds, 1 to 3600000\n");
				return 2;
			}
			o->proxy_drain_ms = (unsigned int)v;
			break;
		}
		case 'N': o->cni.socket = optarg; break;
		case 'R': o->cni.podman_db = optarg; break;
		case 'O': o->outbound_addr = optarg; break;
		case 'K':
			if (strchr(optarg, ':'))
				o->capture_addr6 = optarg;
			else
				o->capture_addr = optarg;
			break;
		case 'T':
			o->hbone_handshake_ms = (unsigned int)strtoul(optarg, NULL, 10);
			if (!o->hbone_handshake_ms) {
				fprintf(stderr, "sluice-agent: --hbone-handshake-timeout: milliseconds > 0\n");
				return 2;
			}
			break;
		case 'S':
			if (!strcmp(optarg, "off")) {
				o->sockmap = SOCKMAP_OFF;
			} else if (!strcmp(optarg, "on")) {
				o->sockmap = SOCKMAP_ON;
			} else if (!strcmp(optarg, "force")) {
				o->sockmap = SOCKMAP_FORCE;
			} else {
				fprintf(stderr, "sluice-agent: --sockmap: off, on or force\n");
				return 2;
			}
			break;
		case 'X':
			if (tchook_mode_parse(optarg, &o->tc_attach)) {
				fprintf(stderr, "sluice-agent: --tc-attach: auto, tcx or cls\n");
				return 2;
			}
			break;
		case 'f': o->flow_log = optarg; break;
		case 'F': {
			char *end;

			o->flow_log_max = strtoull(optarg, &end, 10);
			if (*end || !o->flow_log_max) {
				fprintf(stderr, "sluice-agent: --flow-log-max-bytes: '%s' is not a positive number\n", optarg);
				return 2;
			}
			break;
		}
		case 'l':
			o->log_level = optarg;
			if (log_level_parse(optarg, &level)) {
				fprintf(stderr, "sluice-agent: --log-level: unknown level '%s'\n", optarg);
				return 2;
			}
			break;
		case 'V': printf("sluice-agent %s\n", sluice_version); return 0;
		case 'h': cli_help(stdout, &agent_cli); return 0;
		case 'M': cli_man(stdout, &agent_cli); return 0;
		default: cli_help(stderr, &agent_cli); return 2;
		}
	}
	log_init("sluice-agent", level);
	log_hook_libbpf();
	if (!o->node || (!o->uninstall && (!o->cgroup || !o->snapshot == !o->control.url))) {
		cli_help(stderr, &agent_cli);
		return 2;
	}
	if (strchr(o->node, '/') || o->node[0] == '.') {
		log_err("--node: '%s' is not a valid node name", o->node);
		return 2;
	}
	if (o->control.url && (!o->control.ca_file || o->once)) {
		log_err("--control needs --ca-file (the control plane's CA) and cannot go with --once");
		return 2;
	}
	o->control.node = o->node;
	if (o->control.url && o->proxy) {
		__be32 a[4];
		uint16_t port;

		if (addr_hostport_parse(o->hbone_addr, a, &port)) {
			log_err("--hbone-addr '%s': not IP:PORT or [IPv6]:PORT", o->hbone_addr);
			return 2;
		}
		o->control.hbone_port = port;
		if (a[0] | a[1] | (a[2] != htonl(0xffff) ? a[2] : 0) | a[3]) {
			/* a specific address: that is what peers dial */
			static char host[64];
			const char *colon = strrchr(o->hbone_addr, ':');

			snprintf(host, sizeof(host), "%.*s", (int)(colon - o->hbone_addr), o->hbone_addr);
			o->control.hbone_host = host;
		}
	}
	if (!o->control.state_dir) {
		static char sd[PATH_MAX];

		snprintf(sd, sizeof(sd), SYNC_DEFAULT_STATE_BASE "/%s", o->node);
		o->control.state_dir = sd;
	}
	if (pin_root)
		snprintf(o->pin_root, sizeof(o->pin_root), "%s", pin_root);
	else
		snprintf(o->pin_root, sizeof(o->pin_root), SL_PIN_BASE "/%s", o->node);
	if (sys_run_dir(o->pin_root, o->run_dir, sizeof(o->run_dir))) {
		log_err("--pin-root %s: no directory name to derive the run directory from", o->pin_root);
		return 2;
	}
	snprintf(run_dir, sizeof(run_dir), "%s", o->run_dir);
	if (!o->cni.socket) {
		static char sock[PATH_MAX + 16];

		snprintf(sock, sizeof(sock), "%s/cni.sock", run_dir);
		o->cni.socket = sock;
	}
	o->cni.node = o->node;
	o->cni.run_dir = o->run_dir;
	o->cni.podman_db = o->cni.podman_db ?: PODMAN_DEFAULT_DB;
	if (!o->flow_log) {
		snprintf(default_flow, sizeof(default_flow), "%s/flows.jsonl", run_dir);
		o->flow_log = default_flow;
	} else if (strcmp(o->flow_log, "none") == 0) {
		o->flow_log = NULL;
	}
	return -1;
}

int options_proxy_bin(struct agent_opts *o)
{
	if (!o->proxy_bin) {
		static char bin[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", bin, sizeof(bin) - 32);
		char *slash = n > 0 ? memrchr(bin, '/', (size_t)n) : NULL;

		if (!slash) {
			log_err("cannot tell where this program is; give --proxy-bin");
			return 2;
		}
		strcpy(slash + 1, "sluice-proxy");
		o->proxy_bin = bin;
	}
	return 0;
}
