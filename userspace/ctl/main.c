// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluicectl - the user's tool: inspect what the kernel holds.
 *
 *   sluicectl [--node NAME | --pin-root DIR] [-o table|json] COMMAND ...
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl/control.h"
#include "ctl/ctl.h"
#include "ctl/install.h"
#include "lib/core/cli.h"
#include "lib/core/log.h"
#include "lib/core/sys.h"

/* The status.json of the agent --node/--pin-root names, if it runs. */
static json_t *running_agent(const struct ctl_opts *o)
{
	char run[PATH_MAX], path[PATH_MAX + 16];
	json_int_t pid;
	json_t *j;

	if (!o->pin_root[0] || sys_run_dir(o->pin_root, run, sizeof(run)))
		return NULL;
	snprintf(path, sizeof(path), "%s/status.json", run);
	j = json_load_file(path, 0, NULL);
	pid = json_integer_value(json_object_get(j, "pid"));
	if (j && (pid <= 0 || (kill((pid_t)pid, 0) && errno != EPERM))) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* This build's version, and those of the agent and the control plane
 * that run; what does not run is left out. */
static int cmd_version(const struct ctl_opts *o, int argc, char **argv)
{
	const char *url = getenv("SLUICE_CONTROL") ?: CONTROL_DEFAULT_URL;
	const char *creds = getenv("SLUICE_CREDENTIALS") ?: SL_CONTROL_DIR;
	json_t *out, *agent, *cp;
	char err[256], key[PATH_MAX + 16];
	bool json = o->json;
	int status;

	for (int i = 0; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && v &&
		    (!strcmp(v, "json") || !strcmp(v, "table"))) {
			json = !strcmp(v, "json");
			i++;
		} else if (!strncmp(argv[i], "--control=", 10)) {
			url = argv[i] + 10;
		} else if (!strcmp(argv[i], "--control")) {
			if (v && v[0] != '-')      /* as status --control: the URL is optional */
				url = argv[++i];
		} else if (!strcmp(argv[i], "--credentials") && v) {
			creds = argv[++i];
		} else {
			fprintf(stderr, "usage: sluicectl [--node N] version [-o json] [--control [URL]] "
				"[--credentials DIR]\n");
			return 2;
		}
	}
	out = json_pack("{s:s}", "version", sluice_version);
	agent = running_agent(o);
	if (agent)
		json_object_set_new(out, "agent", json_pack("{s:O?, s:O?}",
			"node", json_object_get(agent, "node"),
			"version", json_object_get(agent, "version")));
	/* quietly: no admin credentials means no control plane to ask */
	snprintf(key, sizeof(key), "%s/admin.key", creds);
	cp = access(key, R_OK) ? NULL :
	     ctl_api(url, creds, "GET", "/v1/status", NULL, 0, &status, err, sizeof(err));
	if (cp && status == 200)
		json_object_set_new(out, "control_plane", json_pack("{s:s, s:O?}", "url", url,
			"version", json_object_get(cp, "control_plane_version")));
	json_decref(agent);
	json_decref(cp);
	if (json) {
		json_dumpf(out, stdout, JSON_COMPACT);
		printf("\n");
	} else {
		json_t *a = json_object_get(out, "agent"), *c = json_object_get(out, "control_plane");

		printf("sluicectl %s\n", sluice_version);
		if (a)
			printf("agent %s (node %s)\n",
			       json_string_value(json_object_get(a, "version")) ?: "unknown",
			       json_string_value(json_object_get(a, "node")) ?: "?");
		if (c)
			printf("control plane %s (%s)\n",
			       json_string_value(json_object_get(c, "version")) ?: "unknown", url);
	}
	json_decref(out);
	return 0;
}

static int cmd_completion(const struct ctl_opts *o, int argc, char **argv);

static const struct ctl_cmd commands[] = {
	{ "analyze", cmd_analyze, "analyze -f FILE|DIR... [-o json] [--snapshot NODE]   validate config offline, as the control plane does" },
	{ "apply", cmd_apply, CTL_APPLY_HELP },
	{ "delete", cmd_delete, CTL_DELETE_HELP },
	{ "completion", cmd_completion, "completion bash      a bash completion script: source <(sluicectl completion bash)" },
	{ "fastpath", cmd_fastpath, CTL_FASTPATH_HELP },
	{ "get", cmd_get, CTL_GET_HELP },
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
	{ "status", cmd_status, CTL_STATUS_HELP },
	{ "top", cmd_top, "top [--interval S] [--count N] [--since-start] [--set paths.prefix=DIR]\n"
			  "                       live table of the traffic of this machine's agents (flow logs)" },
	{ "uninstall", cmd_uninstall, "uninstall [-y] [--purge] [--set paths.prefix=DIR]   remove what install made" },
	{ "verify-install", cmd_verify_install, "verify-install [-o json] [--set paths.prefix=DIR]\n"
						"                       check what install set up, and a live probe" },
	{ "version", cmd_version, "version [-o json] [--control [URL]]\n"
				  "                       this build's version, the agent's (--node) and the control plane's" },
	{}
};

static const struct cli_opt ctl_options[] = {
	{ "node", required_argument, 'n', "NAME", "read the node's maps under " SL_PIN_BASE "/NAME" },
	{ "pin-root", required_argument, 'p', "DIR", "read the maps pinned under DIR" },
	{ "output", required_argument | CLI_SHORT, 'o', "table|json", "table (default) or json" },
	{ "help", no_argument | CLI_SHORT, 'h', NULL, "print this help" },
	{ "man", no_argument, 'M', NULL, NULL },
	{}
};

/* The commands that parse options of their own from lib/core/cli tables: the
 * man page lists them under the command, and the completion offers them. */
static const struct {
	const char *cmd;
	const struct cli_opt *opts;
} own_opts[] = {
	{ "apply", ctl_apply_opts },
	{ "delete", ctl_delete_opts },
	{ "fastpath", ctl_fastpath_opts },
	{ "get", ctl_get_opts },
	{ "status", ctl_control_status_opts },
	{}
};

/* The program's documentation: its options, and its commands' help. */
static const struct cli_prog *ctl_cli(void)
{
	static const char *helps[sizeof(commands) / sizeof(commands[0])];
	static const struct cli_opt *opts[sizeof(commands) / sizeof(commands[0])];
	static const char *const usage[] = {
		"[--node NAME | --pin-root DIR] [-o table|json] COMMAND ...", NULL };
	static const struct cli_prog p = {
		.name = "sluicectl",
		.section = 1,
		.summary = "inspect and configure a sluice mesh",
		.usage = usage,
		.description =
			"sluicectl reads what the kernel holds on a node (the maps the agent "
			"pinned, under --node or --pin-root), the agent's status and flow log, "
			"and talks to the control plane: apply, get, delete, status --control. "
			"Commands may be abbreviated to any unique prefix.\n\n"
			"Commands that talk to the control plane take --control URL (environment "
			"SLUICE_CONTROL, default " CONTROL_DEFAULT_URL ") and --credentials DIR, "
			"where the admin's certificate and key are (environment SLUICE_CREDENTIALS, "
			"default " SL_CONTROL_DIR ").",
		.opts = ctl_options,
		.cmds_title = "commands (any unique prefix)",
		.cmds = helps,
		.cmd_opts = opts,
	};

	for (size_t i = 0; commands[i].name; i++) {
		helps[i] = commands[i].help;
		for (size_t j = 0; own_opts[j].cmd; j++)
			if (!strcmp(own_opts[j].cmd, commands[i].name))
				opts[i] = own_opts[j].opts;
	}
	return &p;
}

static int cmd_completion(const struct ctl_opts *o, int argc, char **argv)
{
	if (argc != 1 || strcmp(argv[0], "bash")) {
		fprintf(stderr, "usage: sluicectl completion bash\n");
		return 2;
	}
	cli_bash(stdout, ctl_cli());
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl_opts o = {};
	struct cli_getopt g;
	int c;

	log_init("sluicectl", LOG_WARN);
	/* '+': stop at the first command word, so its own flags are its own */
	if (cli_getopt_init(&g, ctl_options, "+"))
		return 2;
	while ((c = cli_getopt(&g, argc, argv)) != -1) {
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
			cli_help(stdout, ctl_cli());
			return 0;
		case 'M':
			cli_man(stdout, ctl_cli());
			return 0;
		default:
			cli_help(stderr, ctl_cli());
			return 2;
		}
	}
	if (optind >= argc) {
		cli_help(stderr, ctl_cli());
		return 2;
	}
	return ctl_dispatch(commands, "sluicectl", &o, argc - optind, argv + optind);
}
