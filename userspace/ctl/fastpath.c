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
	CTL_OPT_OUTPUT("table|json", "table (default) or json"),
	CTL_OPT_HELP,
	{}
};

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

static int fastpath(const struct ctl_opts *go, enum fp_mode mode, int argc, char **argv)
{
	struct ctl_opts o = *go;
	bool on = mode == FP_ON || mode == FP_FORCE;
	struct sl_config cfg;
	struct polmap m;
	char path[4200];
	__u32 zero = 0;
	int err, fd;

	err = ctl_args_output(&o, CTL_FASTPATH_HELP, ctl_fastpath_opts, argc, argv);
	if (err >= 0)
		return err;
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
	return fastpath(o, FP_STATUS, argc, argv);
}

static int fp_off(const struct ctl_opts *o, int argc, char **argv)
{
	return fastpath(o, FP_OFF, argc, argv);
}

static int fp_on(const struct ctl_opts *o, int argc, char **argv)
{
	return fastpath(o, FP_ON, argc, argv);
}

static int fp_force(const struct ctl_opts *o, int argc, char **argv)
{
	return fastpath(o, FP_FORCE, argc, argv);
}

int cmd_fastpath(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct ctl_cmd sub[] = {
		{ .name = "on", .fn = fp_on },
		{ .name = "off", .fn = fp_off },
		{ .name = "force", .fn = fp_force },
		{ .name = "status", .fn = fp_status },
		{}
	};

	return ctl_dispatch(sub, "fastpath", CTL_FASTPATH_HELP, ctl_fastpath_opts, o, argc, argv);
}
