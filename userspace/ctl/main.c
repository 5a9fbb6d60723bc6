// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluicectl - the user's tool: inspect what the kernel holds.
 *
 *   sluicectl [--node NAME | --pin-root DIR] [-o table|json] COMMAND ...
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl/control.h"
#include "ctl/ctl.h"
#include "lib/log.h"
#include "lib/sys.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

static int cmd_version(const struct ctl_opts *o, int argc, char **argv)
{
	if (o->json)
		printf("{\"version\":\"%s\"}\n", SLUICE_VERSION);
	else
		printf("sluicectl %s\n", SLUICE_VERSION);
	return 0;
}

static const struct ctl_cmd commands[] = {
	{ "analyze", cmd_analyze, "analyze -f FILE... [-o json] [--snapshot NODE]   validate config offline, as the control plane does" },
	{ "apply", cmd_apply, "apply -f FILE...     send Istio/Kubernetes YAML to the control plane (one change)" },
	{ "delete", cmd_delete, "delete -f FILE | delete KIND NAME [-n NS]   remove resources from the control plane" },
	{ "fastpath", cmd_fastpath, "fastpath on|off|status\n"
				    "                       the same-node fast path's run-time switch" },
	{ "get", cmd_get, "get KIND [NAME] [-n NS|-A] [-o table|yaml|json]   resources held by the control plane" },
	{ "install", cmd_install, "install [--set KEY=VALUE]... [-f OVERLAY]... [--profile NAME] [-y] [--dry-run]\n"
				  "                       check the node and install a profile (docs/install.md)" },
	{ "inspect", cmd_inspect, "inspect services|identities|policy\n"
				  "                       decode the pinned maps (policy: with drop counters)" },
	{ "manifest", cmd_manifest, "manifest generate [--set KEY=VALUE]... [-f OVERLAY]...\n"
				    "                       Kubernetes YAML for a profile (docs/install.md)" },
	{ "observe", cmd_observe, "observe [--pod P] [--service S] [--verdict allowed|denied] [--type T]\n"
				  "                       [--since-start] [--count N] [--timeout S] [--flow-log F]\n"
				  "                       stream flow events (follows the agent's flow log)" },
	{ "profile", cmd_profile, "profile list|dump|keys   installation profiles (dump: --set K=V, -f FILE)" },
	{ "proxy", cmd_proxy, "proxy certs [-o json]   the node proxy's workload certificates (identity, serial, expiry)" },
	{ "status", cmd_status, "status               the agent's kernel, probes (what is off and why), snapshot\n"
				"                       status --control [URL]: the control plane, its agents and their ACKs" },
	{ "top", cmd_top, "top [--interval S] [--count N] [--since-start] [--set paths.prefix=DIR]\n"
			  "                       live table of the traffic of this machine's agents (flow logs)" },
	{ "uninstall", cmd_uninstall, "uninstall [-y] [--purge] [--set paths.prefix=DIR]   remove what install made" },
	{ "verify-install", cmd_verify_install, "verify-install [-o json] [--set paths.prefix=DIR]\n"
						"                       check what install set up, and a live probe" },
	{ "version", cmd_version, "version              print the version" },
	{}
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sluicectl [--node NAME | --pin-root DIR] [-o table|json] COMMAND\n\n"
		   "  --node NAME     read the node's maps under " SL_PIN_BASE "/NAME\n"
		   "  --pin-root DIR  read the maps pinned under DIR\n"
		   "  -o FORMAT       table (default) or json\n\ncommands (any unique prefix):\n");
	for (const struct ctl_cmd *c = commands; c->name; c++)
		fprintf(f, "  %s\n", c->help);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "pin-root", required_argument, NULL, 'p' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct ctl_opts o = {};
	int c;

	log_init("sluicectl", LOG_WARN);
	/* '+': stop at the first command word, so its own flags are its own */
	while ((c = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			snprintf(o.pin_root, sizeof(o.pin_root), SL_PIN_BASE "/%s", optarg);
			break;
		case 'p':
			snprintf(o.pin_root, sizeof(o.pin_root), "%s", optarg);
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0) {
				o.json = true;
			} else if (strcmp(optarg, "table") != 0) {
				fprintf(stderr, "sluicectl: -o: unknown format '%s' (table, json)\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	return ctl_dispatch(commands, "sluicectl", &o, argc - optind, argv + optind);
}
