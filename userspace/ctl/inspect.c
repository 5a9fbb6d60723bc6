// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * inspect.c - `sluicectl inspect services`: decode the pinned maps.
 * Weights are read back from the slots: a backend's weight is its number of
 * slots times the service's weight unit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl/ctl.h"
#include "lib/addr.h"
#include "lib/lbmap.h"

struct be_weight {
	uint32_t id;
	uint32_t slots;
};

/* Backends of one service in slot order, with their slot counts. */
static size_t weights(const struct live_svc *s, struct be_weight *out)
{
	size_t n = 0;

	for (uint32_t i = 0; i < s->val.count; i++) {
		size_t j;

		for (j = 0; j < n && out[j].id != s->slots[i]; j++)
			;
		if (j == n)
			out[n++] = (struct be_weight){ .id = s->slots[i] };
		out[j].slots++;
	}
	return n;
}

static int inspect_services(const struct ctl_opts *o, int argc, char **argv)
{
	struct lb_live live;
	struct lbmap m;
	json_t *arr = NULL;
	int err;

	if (!o->pin_root[0]) {
		fprintf(stderr, "sluicectl: inspect services: give --node NAME or --pin-root DIR\n");
		return 2;
	}
	err = lbmap_open(&m, o->pin_root);
	if (err) {
		fprintf(stderr, "sluicectl: %s: %s (is the agent installed on this node?)\n",
			o->pin_root, strerror(-err));
		return 1;
	}
	err = lbmap_read(&m, &live);
	lbmap_close(&m);
	if (err) {
		fprintf(stderr, "sluicectl: reading maps: %s\n", strerror(-err));
		return 1;
	}

	if (o->json)
		arr = json_array();
	else
		printf("%-40s %-6s %-5s %-6s %s\n", "VIP", "PORT", "PROTO", "SVCID", "BACKENDS (address:port weight)");
	for (size_t i = 0; i < live.nsvc; i++) {
		const struct live_svc *s = &live.svc[i];
		struct be_weight *w = calloc(s->val.count ?: 1, sizeof(*w));
		size_t nw = w ? weights(s, w) : 0;
		char vip[SL_ADDRSTRLEN], ba[SL_ADDRSTRLEN];
		json_t *js = NULL, *jbs = NULL;

		addr_fmt(s->key.addr, vip);
		if (o->json) {
			jbs = json_array();
			js = json_pack("{s:s, s:i, s:s, s:i, s:i, s:o}", "vip", vip,
				       "port", ntohs(s->key.port), "protocol",
				       proto_name(s->key.proto), "svc_id", s->val.svc_id,
				       "slots", s->val.count, "backends", jbs);
			json_array_append_new(arr, js);
		} else {
			printf("%-40s %-6u %-5s %-6u", vip, ntohs(s->key.port),
			       proto_name(s->key.proto), s->val.svc_id);
			if (!nw)
				printf(" (none: connect() is refused)");
		}
		for (size_t j = 0; j < nw; j++) {
			const struct live_be *b = lb_live_backend(&live, w[j].id);
			unsigned int weight = w[j].slots * s->val.wunit;

			if (!b) {
				if (o->json)
					json_array_append_new(jbs, json_pack("{s:i, s:b}", "backend_id",
								 w[j].id, "missing", 1));
				else
					printf(" #%u(missing)", w[j].id);
				continue;
			}
			addr_fmt(b->be.addr, ba);
			if (o->json)
				json_array_append_new(jbs, json_pack("{s:s, s:i, s:i, s:i}",
					"address", ba, "port", ntohs(b->be.port),
					"weight", weight, "backend_id", b->id));
			else
				printf(addr_is_v4(b->be.addr) ? " %s:%u %u" : " [%s]:%u %u",
				       ba, ntohs(b->be.port), weight);
		}
		if (!o->json)
			printf("\n");
		free(w);
	}
	if (o->json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(arr);
	}
	lb_live_free(&live);
	return 0;
}

int cmd_inspect(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct ctl_cmd sub[] = {
		{ "services", inspect_services, "services" },
		{}
	};

	return ctl_dispatch(sub, "inspect", o, argc, argv);
}
