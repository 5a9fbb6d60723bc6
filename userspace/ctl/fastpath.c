// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * fastpath.c - `sluicectl fastpath on|off|force|status`: the same-node fast
 * path's run-time switch in the pinned sl_config map. Off stops new
 * connections from entering the sockhash at once; connections already
 * redirected keep their path until they close. On refuses where the
 * agent's probe found the kernel's half-close bug; force does not.
 * Subcommands by the command table (any unique prefix), options by
 * ctl_fastpath_opts.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "lib/core/bpfmap.h"
#include "lib/node/polmap.h"
#include "sluice_fast.h"

enum fp_mode { FP_STATUS, FP_OFF, FP_ON, FP_FORCE };

const struct cli_opt ctl_fastpath_opts[] = {
	{ "output", required_argument | CLI_SHORT, 'o', "table|json", "table (default) or json" },
	{ "help", no_argument | CLI_SHORT, 'h', NULL, "print this help" },
	{}
};

static void usage(FILE *f)
{
	cli_cmd_help(f, "sluicectl [--node N]", CTL_FASTPATH_HELP,
		     ctl_fastpath_opts);
}

/* The subcommand's options into o: 0, or the exit status (-1: 0, help). */
static int fp_args(struct ctl_opts *o, const char *sub, int argc, char **argv)
{
	struct cli_getopt g;
	int c;

	if (cli_getopt_init(&g, ctl_fastpath_opts, ""))
		return 2;
	optind = 0;	/* glibc: start over; argv[-1] is the subcommand */
	opterr = 0;
	while ((c = cli_getopt(&g, argc + 1, argv - 1)) != -1) {
		switch (c) {
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "table")) {
				fprintf(stderr, "sluicectl: fastpath: -o: unknown format '%s' "
					"(table, json)\n", optarg);
				return 2;
			}
			o->json = !strcmp(optarg, "json");
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			fprintf(stderr, "sluicectl: fastpath %s: unknown option or missing value: "
				"'%s'\n", sub, argv[optind - 2]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc + 1) {
		fprintf(stderr, "sluicectl: fastpath %s: unexpected '%s'\n", sub, argv[optind - 1]);
		usage(stderr);
		return 2;
	}
	return 0;
}

/* on (unless the kernel has the half-close bug): 0, else the exit status */
static int fp_may_turn_on(const struct ctl_opts *o)
{
	json_t *st = ctl_agent_status(o, "fastpath");
	bool bug = json_is_true(json_object_get(json_object_get(st, "features"),
						"fastpath_halfclose_bug"));

	json_decref(st);
	if (!st)
		return 1;
	if (bug) {
		fprintf(stderr, "sluicectl: fastpath: not turned on: this node's kernel returns "
			"EAGAIN to a blocking recv() of a half-closed socket in a sockhash "
			"(see `sluicectl status`); `fastpath force` turns it on anyway\n");
		return 1;
	}
	return 0;
}

static int fastpath(const struct ctl_opts *go, enum fp_mode mode, const char *sub, int argc,
		    char **argv)
{
	struct ctl_opts o = *go;
	bool on = mode == FP_ON || mode == FP_FORCE;
	struct sl_config cfg;
	struct polmap m;
	char path[4200];
	__u32 zero = 0;
	int err, fd;

	err = fp_args(&o, sub, argc, argv);
	if (err)
		return err < 0 ? 0 : err;
	if (!o.pin_root[0]) {
		fprintf(stderr, "sluicectl: fastpath: give --node NAME or --pin-root DIR\n");
		return 2;
	}
	if (mode == FP_ON) {
		err = fp_may_turn_on(&o);
		if (err)
			return err;
	}
	err = polmap_open(&m, o.pin_root);
	if (err) {
		fprintf(stderr, "sluicectl: %s: %s\n", o.pin_root, strerror(-err));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s", o.pin_root, SL_MAP_FASTSTATE);
	fd = bpf_obj_get(path);
	if (fd < 0 && on) {
		fprintf(stderr, "sluicectl: fastpath: this node has no fast path (see the agent's log)\n");
		polmap_close(&m);
		return 1;
	}
	err = bpf_map_lookup_elem(m.config_fd, &zero, &cfg) ? -errno : 0;
	if (!err && mode != FP_STATUS) {
		cfg.fastpath = on;
		err = bpf_map_update_elem(m.config_fd, &zero, &cfg, BPF_ANY) ? -errno : 0;
	}
	if (err) {
		fprintf(stderr, "sluicectl: fastpath: %s\n", strerror(-err));
	} else if (o.json) {
		printf("{\"fastpath\":%s,\"sockets\":%zu}\n", cfg.fastpath ? "true" : "false",
		       fd >= 0 ? map_count_keys(fd, sizeof(struct sl_sock_key)) : 0);
	} else {
		printf("fast path %s, %zu sockets in the sockhash\n", cfg.fastpath ? "on" : "off",
		       fd >= 0 ? map_count_keys(fd, sizeof(struct sl_sock_key)) : 0);
	}
	if (fd >= 0)
		close(fd);
	polmap_close(&m);
	return err ? 1 : 0;
}

static int fp_status(const struct ctl_opts *o, int argc, char **argv)
{
	return fastpath(o, FP_STATUS, "status", argc, argv);
}

static int fp_off(const struct ctl_opts *o, int argc, char **argv)
{
	return fastpath(o, FP_OFF, "off", argc, argv);
}

static int fp_on(const struct ctl_opts *o, int argc, char **argv)
{
	return fastpath(o, FP_ON, "on", argc, argv);
}

static int fp_force(const struct ctl_opts *o, int argc, char **argv)
{
	return fastpath(o, FP_FORCE, "force", argc, argv);
}

int cmd_fastpath(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct ctl_cmd sub[] = {
		{ "on", fp_on, "on" },
		{ "off", fp_off, "off" },
		{ "force", fp_force, "force" },
		{ "status", fp_status, "status" },
		{}
	};

	if (argc == 1 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	return ctl_dispatch(sub, "fastpath", o, argc, argv);
}
