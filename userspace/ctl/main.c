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

#define CTL_VERSION_HELP "version [-o json] [--control [URL]]\n" \
			 "                       this build's version, the agent's (--node) and the control plane's"
static const struct cli_opt version_opts[] = {
	CTL_OPT_OUTPUT("table|json", "table (default) or json"),
	CTL_OPT_CONTROL_URL,
	CTL_OPT_CREDENTIALS_DIR,
	CTL_OPT_HELP,
	{}
};

/* This build's version, and those of the agent and the control plane
 * that run; what does not run is left out. */
static int cmd_version(const struct ctl_opts *o, int argc, char **argv)
{
	struct ctl_control_args a;
	json_t *out, *agent, *cp;
	char err[256], key[PATH_MAX + 16];
	const char *url;
	bool json;
	int status;

	status = ctl_control_args(&a, CTL_VERSION_HELP, version_opts, argc, argv);
	if (status >= 0)
		return status;
	if (a.npos)
		return ctl_usage_error(&a.args, "unexpected '%s'", a.pos[0]);
	json = a.out ? !strcmp(a.out, "json") : o->json;
	url = a.url;
	out = json_pack("{s:s}", "version", sluice_version);
	agent = running_agent(o);
	if (agent)
		json_object_set_new(out, "agent", json_pack("{s:O?, s:O?}",
			"node", json_object_get(agent, "node"),
			"version", json_object_get(agent, "version")));
	/* quietly: no admin credentials means no control plane to ask */
	snprintf(key, sizeof(key), "%s/admin.key", a.creds);
	cp = access(key, R_OK) ? NULL :
	     ctl_api(url, a.creds, "GET", "/v1/status", NULL, 0, &status, err, sizeof(err));
	if (cp && status == 200)
		json_object_set_new(out, "control_plane", json_pack("{s:s, s:O?}", "url", url,
			"version", json_object_get(cp, "control_plane_version")));
	json_decref(agent);
	json_decref(cp);
	if (json) {
		json_dumpf(out, stdout, JSON_COMPACT);
		printf("\n");
	} else {
		json_t *ag = json_object_get(out, "agent"), *c = json_object_get(out, "control_plane");

		printf("sluicectl %s\n", sluice_version);
		if (ag)
			printf("agent %s (node %s)\n",
			       json_string_value(json_object_get(ag, "version")) ?: "unknown",
			       json_string_value(json_object_get(ag, "node")) ?: "?");
		if (c)
			printf("control plane %s (%s)\n",
			       json_string_value(json_object_get(c, "version")) ?: "unknown", url);
	}
	json_decref(out);
	return 0;
}

static int cmd_completion(const struct ctl_opts *o, int argc, char **argv);

#define CTL_COMPLETION_HELP "completion bash      a bash completion script: source <(sluicectl completion bash)"
static const struct cli_opt completion_opts[] = {
	CTL_OPT_HELP,
	{}
};

static const struct ctl_cmd commands[] = {
	{ "analyze", cmd_analyze, CTL_ANALYZE_HELP, ctl_analyze_opts },
	{ "apply", cmd_apply, CTL_APPLY_HELP, ctl_apply_opts },
	{ "delete", cmd_delete, CTL_DELETE_HELP, ctl_delete_opts },
	{ "completion", cmd_completion, CTL_COMPLETION_HELP, completion_opts },
	{ "fastpath", cmd_fastpath, CTL_FASTPATH_HELP, ctl_fastpath_opts },
	{ "get", cmd_get, CTL_GET_HELP, ctl_get_opts },
	{ "install", cmd_install, CTL_INSTALL_HELP, ctl_install_opts },
	{ "inspect", cmd_inspect, CTL_INSPECT_HELP, ctl_inspect_opts },
	{ "manifest", cmd_manifest, CTL_MANIFEST_HELP, ctl_manifest_opts },
	{ "observe", cmd_observe, CTL_OBSERVE_HELP, ctl_observe_opts },
	{ "profile", cmd_profile, CTL_PROFILE_HELP, ctl_profile_opts },
	{ "proxy", cmd_proxy, CTL_PROXY_HELP, ctl_proxy_opts },
	{ "status", cmd_status, CTL_STATUS_HELP, ctl_status_opts },
	{ "top", cmd_top, CTL_TOP_HELP, ctl_top_opts },
	{ "uninstall", cmd_uninstall, CTL_UNINSTALL_HELP, ctl_uninstall_opts },
	{ "verify-install", cmd_verify_install, CTL_VERIFY_HELP, ctl_verify_opts },
	{ "version", cmd_version, CTL_VERSION_HELP, version_opts },
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
		opts[i] = commands[i].opts;
	}
	return &p;
}

static int cmd_completion(const struct ctl_opts *o, int argc, char **argv)
{
	struct ctl_args a;
	int c;

	ctl_args_init(&a, "sluicectl", CTL_COMPLETION_HELP, completion_opts, argc, argv);
	while ((c = ctl_args_next(&a)) >= 0)
		;
	if (c == CTL_ARGS_EXIT)
		return a.status;
	if (a.npos != 1 || strcmp(a.pos[0], "bash"))
		return ctl_usage_error(&a, "bash is the one shell it writes for");
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
	return ctl_dispatch(commands, "sluicectl", NULL, NULL, &o, argc - optind, argv + optind);
}
