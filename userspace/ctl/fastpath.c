// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * fastpath.c - `sluicectl fastpath on|off|force|status`: the same-node fast
 * path's run-time switch in the pinned sl_config map. Off stops new
 * connections from entering the sockhash at once; connections already
 * redirected keep their path until they close.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "lib/bpfmap.h"
#include "lib/polmap.h"
#include "sluice_fast.h"

int cmd_fastpath(const struct ctl_opts *o, int argc, char **argv)
{
	struct sl_config cfg;
	struct polmap m;
	char path[4200];
	__u32 zero = 0;
	int err, fd;

	bool on;

	if (argc != 1 || (strcmp(argv[0], "on") && strcmp(argv[0], "off") &&
			  strcmp(argv[0], "force") && strcmp(argv[0], "status"))) {
		fprintf(stderr, "usage: sluicectl [--node N] fastpath on|off|force|status\n");
		return 2;
	}
	if (!o->pin_root[0]) {
		fprintf(stderr, "sluicectl: fastpath: give --node NAME or --pin-root DIR\n");
		return 2;
	}
	on = !strcmp(argv[0], "on") || !strcmp(argv[0], "force");
	if (!strcmp(argv[0], "on")) {
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
	}
	err = polmap_open(&m, o->pin_root);
	if (err) {
		fprintf(stderr, "sluicectl: %s: %s\n", o->pin_root, strerror(-err));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s", o->pin_root, SL_MAP_FASTSTATE);
	fd = bpf_obj_get(path);
	if (fd < 0 && on) {
		fprintf(stderr, "sluicectl: fastpath: this node has no fast path (see the agent's log)\n");
		polmap_close(&m);
		return 1;
	}
	err = bpf_map_lookup_elem(m.config_fd, &zero, &cfg) ? -errno : 0;
	if (!err && strcmp(argv[0], "status")) {
		cfg.fastpath = on;
		err = bpf_map_update_elem(m.config_fd, &zero, &cfg, BPF_ANY) ? -errno : 0;
	}
	if (err) {
		fprintf(stderr, "sluicectl: fastpath: %s\n", strerror(-err));
	} else if (o->json) {
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
