// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * inspect.c - `sluicectl inspect services`: decode the pinned maps.
 * Weights are read back from the slots: a backend's weight is its number of
 * slots times the service's weight unit. A consistent-hash service's slots
 * are a Maglev table (weight unit 0): its backends show their entries in
 * the table instead. A service with a traffic policy
 * also shows it and its counters (headers/sluice_traffic.h): open
 * connections, refused connects, and per backend its failures and whether
 * it is ejected and for how much longer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <bpf/bpf.h>

#include "ctl/ctl.h"
#include "lib/core/addr.h"
#include "lib/node/lbmap.h"
#include "lib/node/polmap.h"

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

static const char *lb_name(uint8_t lb)
{
	static const char *const n[] = { "RANDOM", "ROUND_ROBIN", "LEAST_REQUEST", "SOURCE_HASH" };

	return lb < sizeof(n) / sizeof(n[0]) ? n[lb] : "?";
}

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t); /* bpf_ktime_get_ns()'s clock */
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* The service's policy and state, or NULL if it has none. */
static json_t *policy_json(const struct lbmap *m, const struct live_svc *s)
{
	struct sl_svc_policy p;
	struct sl_svc_state st = {};
	json_t *j;

	if (!(s->val.flags & SL_SVC_F_POLICY) ||
	    bpf_map_lookup_elem(m->pol_fd, &s->val.svc_id, &p))
		return NULL;
	bpf_map_lookup_elem_flags(m->st_fd, &s->val.svc_id, &st, BPF_F_LOCK);
	j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "lb", lb_name(p.lb),
		      "max_connections", (json_int_t)p.max_conns, "active", (json_int_t)st.active,
		      "overflow", (json_int_t)st.overflow, "ejected", (json_int_t)st.ejected,
		      "ejections", (json_int_t)st.ejections);
	if (p.affinity_ns)
		json_object_set_new(j, "affinity_timeout_s", json_integer((json_int_t)(p.affinity_ns / 1000000000ull)));
	if (p.od_consecutive)
		json_object_set_new(j, "outlier", json_pack("{s:I, s:I, s:I, s:i, s:i}",
			"consecutive_errors", (json_int_t)p.od_consecutive,
			"interval_ms", (json_int_t)(p.od_interval_ns / 1000000),
			"base_ejection_ms", (json_int_t)(p.od_base_ns / 1000000),
			"max_ejection_percent", (int)p.od_max_pct,
			"min_health_percent", (int)p.od_min_health));
	return j;
}

/* A backend's state in a service with a policy, or NULL. */
static json_t *be_state_json(const struct lbmap *m, uint32_t svc_id, uint32_t bid, uint64_t now)
{
	struct sl_be_key k = { .svc_id = svc_id, .backend_id = bid };
	struct sl_be_state v = {};

	if (bpf_map_lookup_elem_flags(m->bst_fd, &k, &v, BPF_F_LOCK))
		return NULL;
	return json_pack("{s:I, s:I, s:I, s:I, s:b, s:f}", "active", (json_int_t)(v.active > 0 ? v.active : 0),
			 "failures", (json_int_t)v.failures, "consecutive_failures", (json_int_t)v.consec,
			 "ejections", (json_int_t)v.ejections, "ejected", v.until > now,
			 "ejected_for_s", v.until > now ? (double)(v.until - now) / 1e9 : 0.0);
}

const struct cli_opt ctl_inspect_opts[] = {
	CTL_OPT_OUTPUT("table|json", "table (default) or json"),
	CTL_OPT_HELP,
	{}
};

static int show_services(const struct ctl_opts *o)
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
	if (err) {
		lbmap_close(&m);
		fprintf(stderr, "sluicectl: reading maps: %s\n", strerror(-err));
		return 1;
	}

	if (o->json)
		arr = json_array();
	else
		printf("%-40s %-6s %-5s %-6s %s\n", "VIP", "PORT", "PROTO", "SVCID", "BACKENDS (address:port weight, or entries/size of a hash table)");
	for (size_t i = 0; i < live.nsvc; i++) {
		const struct live_svc *s = &live.svc[i];
		struct be_weight *w = calloc(s->val.count ?: 1, sizeof(*w));
		size_t nw = w ? weights(s, w) : 0;
		char vip[SL_ADDRSTRLEN], ba[SL_ADDRSTRLEN];
		json_t *js = NULL, *jbs = NULL, *jp = policy_json(&m, s);
		uint64_t now = mono_ns();

		addr_fmt(s->key.addr, vip);
		if (o->json) {
			jbs = json_array();
			js = json_pack("{s:s, s:i, s:s, s:i, s:i, s:o}", "vip", vip,
				       "port", ntohs(s->key.port), "protocol",
				       proto_name(s->key.proto), "svc_id", s->val.svc_id,
				       "slots", s->val.count, "backends", jbs);
			if (jp)
				json_object_set(js, "policy", jp);
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
			bool table = !s->val.wunit;

			if (!b) {
				if (o->json)
					json_array_append_new(jbs, json_pack("{s:i, s:b}", "backend_id",
								 w[j].id, "missing", 1));
				else
					printf(" #%u(missing)", w[j].id);
				continue;
			}
			addr_fmt(b->be.addr, ba);
			json_t *jst = jp ? be_state_json(&m, s->val.svc_id, b->id, now) : NULL;

			if (o->json) {
				json_t *jb = json_pack("{s:s, s:i, s:i, s:i}", "address", ba,
						       "port", ntohs(b->be.port),
						       table ? "entries" : "weight",
						       table ? w[j].slots : weight, "backend_id", b->id);

				if (jst)
					json_object_set(jb, "state", jst);
				json_array_append_new(jbs, jb);
			} else {
				printf(addr_is_v4(b->be.addr) ? " %s:%u %u" : " [%s]:%u %u",
				       ba, ntohs(b->be.port), table ? w[j].slots : weight);
				if (table)
					printf("/%u", s->val.count);
				if (jst && json_is_true(json_object_get(jst, "ejected")))
					printf(" (ejected for %.1f s)",
					       json_real_value(json_object_get(jst, "ejected_for_s")));
				else if (jst && json_integer_value(json_object_get(jst, "active")))
					printf(" (%lld open)",
					       (long long)json_integer_value(json_object_get(jst, "active")));
			}
			json_decref(jst);
		}
		if (!o->json) {
			printf("\n");
			if (jp)
				printf("%-40s policy: lb %s, max_connections %lld (%lld open, %lld "
				       "refused), %lld ejected now, %lld ejections\n", "",
				       json_string_value(json_object_get(jp, "lb")),
				       (long long)json_integer_value(json_object_get(jp, "max_connections")),
				       (long long)json_integer_value(json_object_get(jp, "active")),
				       (long long)json_integer_value(json_object_get(jp, "overflow")),
				       (long long)json_integer_value(json_object_get(jp, "ejected")),
				       (long long)json_integer_value(json_object_get(jp, "ejections")));
		}
		json_decref(jp);
		free(w);
	}
	lbmap_close(&m);
	if (o->json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(arr);
	}
	lb_live_free(&live);
	return 0;
}

static int open_pol(const struct ctl_opts *o, struct polmap *m)
{
	int err;

	if (!o->pin_root[0]) {
		fprintf(stderr, "sluicectl: inspect: give --node NAME or --pin-root DIR\n");
		return 2;
	}
	err = polmap_open(m, o->pin_root);
	if (err) {
		fprintf(stderr, "sluicectl: %s: %s (is the agent installed on this node?)\n",
			o->pin_root, strerror(-err));
		return 1;
	}
	return 0;
}

static const char *id_name(uint32_t id, char *buf, size_t len)
{
	switch (id) {
	case SL_ID_UNKNOWN: return "unknown";
	case SL_ID_WORLD: return "world";
	case SL_ID_HOST: return "host";
	case SL_ID_PROXY: return "proxy";
	case SL_ID_ANY: return "*";
	}
	snprintf(buf, len, "%u", id);
	return buf;
}

static int show_identities(const struct ctl_opts *o)
{
	struct sl_ipcache_key k, *prev = NULL;
	__u64 ck, *cprev = NULL;
	__u32 ifx, *iprev = NULL;
	json_t *root = json_object(), *ipc = json_array(), *nss = json_array(), *eps = json_array();
	struct polmap m;
	int rc = open_pol(o, &m);

	if (rc)
		goto out;
	if (!o->json)
		printf("%-44s %-10s %s\n", "ADDRESS", "IDENTITY", "WHERE");
	while (bpf_map_get_next_key(m.ipcache_fd, prev, &k) == 0) {
		struct sl_ipcache_val v;
		char a[SL_ADDRSTRLEN], cidr[64];
		unsigned int plen;

		prev = &k;
		if (bpf_map_lookup_elem(m.ipcache_fd, &k, &v))
			continue;
		plen = addr_is_v4(k.addr) && k.prefixlen >= 96 ? k.prefixlen - 96 : k.prefixlen;
		snprintf(cidr, sizeof(cidr), "%s/%u", addr_fmt(k.addr, a), plen);
		if (o->json)
			json_array_append_new(ipc, json_pack("{s:s, s:i, s:b}", "cidr", cidr,
							     "identity", v.identity,
							     "local", !!(v.flags & SL_IPC_LOCAL)));
		else
			printf("%-44s %-10u %s\n", cidr, v.identity,
			       v.flags & SL_IPC_LOCAL ? "local" : "remote");
	}
	if (!o->json)
		printf("\n%-20s %-10s\n", "NETNS COOKIE", "IDENTITY");
	while (bpf_map_get_next_key(m.netns_fd, cprev, &ck) == 0) {
		struct sl_netns_val v;

		cprev = &ck;
		if (bpf_map_lookup_elem(m.netns_fd, &ck, &v))
			continue;
		if (o->json)
			json_array_append_new(nss, json_pack("{s:I, s:i}", "cookie", (json_int_t)ck,
							     "identity", v.identity));
		else
			printf("%-20llu %-10u\n", (unsigned long long)ck, v.identity);
	}
	if (!o->json)
		printf("\n%-8s %-10s %-16s %s\n", "IFINDEX", "IDENTITY", "IPV4", "IPV6");
	while (bpf_map_get_next_key(m.ep_fd, iprev, &ifx) == 0) {
		struct sl_endpoint ep;
		__be32 a4[4] = { 0, 0, htonl(0xffff), 0 };
		char s4[SL_ADDRSTRLEN] = "-", s6[SL_ADDRSTRLEN] = "-";

		iprev = &ifx;
		if (bpf_map_lookup_elem(m.ep_fd, &ifx, &ep))
			continue;
		a4[3] = ep.addr4;
		if (ep.flags & SL_EP_HAS_V4)
			addr_fmt(a4, s4);
		if (ep.flags & SL_EP_HAS_V6)
			addr_fmt(ep.addr6, s6);
		if (o->json)
			json_array_append_new(eps, json_pack("{s:i, s:i, s:s, s:s}", "ifindex", ifx,
							     "identity", ep.identity, "ipv4", s4, "ipv6", s6));
		else
			printf("%-8u %-10u %-16s %s\n", ifx, ep.identity, s4, s6);
	}
	if (o->json) {
		json_object_set(root, "ipcache", ipc);
		json_object_set(root, "netns", nss);
		json_object_set(root, "endpoints", eps);
		json_dumpf(root, stdout, JSON_INDENT(2));
		printf("\n");
	}
	polmap_close(&m);
out:
	json_decref(ipc);
	json_decref(nss);
	json_decref(eps);
	json_decref(root);
	return rc;
}

static int show_policy(const struct ctl_opts *o)
{
	static const char *const reasons[SL_DROP_MAX] = { "policy_connect", "policy_ingress", "spoof",
							  "events_lost", "mtls_strict" };
	struct sl_policy_key k, *prev = NULL;
	struct sl_poldst_key dk, *dprev = NULL;
	json_t *root = json_object(), *ents = json_array(), *dd = json_array(), *drops = json_object();
	struct sl_config cfg = {};
	struct polmap m;
	__u32 zero = 0;
	int rc = open_pol(o, &m);

	if (rc)
		goto out;
	bpf_map_lookup_elem(m.config_fd, &zero, &cfg);
	if (!o->json)
		printf("live generation %u\n%-10s %-10s %-5s %-6s %s\n", cfg.policy_gen,
		       "SOURCE", "DEST", "PROTO", "PORT", "VERDICT");
	while (bpf_map_get_next_key(m.policy_fd, prev, &k) == 0) {
		struct sl_policy_val v;
		char b1[16], b2[16], b3[16];
		const char *verdict;

		prev = &k;
		if (k.gen != cfg.policy_gen || bpf_map_lookup_elem(m.policy_fd, &k, &v))
			continue;
		verdict = v.deny ? (v.allow ? "DENY (and ALLOW)" : "DENY") : "ALLOW";
		if (o->json)
			json_array_append_new(ents, json_pack("{s:s, s:s, s:s, s:i, s:b, s:b}",
				"source", id_name(k.src_id, b1, sizeof(b1)),
				"destination", id_name(k.dst_id, b2, sizeof(b2)),
				"protocol", proto_name(k.proto), "port", k.port,
				"allow", v.allow, "deny", v.deny));
		else
			printf("%-10s %-10s %-5s %-6s %s\n", id_name(k.src_id, b1, sizeof(b1)),
			       id_name(k.dst_id, b2, sizeof(b2)), proto_name(k.proto),
			       k.port ? (snprintf(b3, sizeof(b3), "%u", k.port), b3) : "*", verdict);
	}
	if (!o->json)
		printf("\ndefault deny (has ALLOW policies):");
	while (bpf_map_get_next_key(m.poldst_fd, dprev, &dk) == 0) {
		dprev = &dk;
		if (dk.gen != cfg.policy_gen)
			continue;
		if (o->json)
			json_array_append_new(dd, json_integer(dk.dst_id));
		else
			printf(" %u", dk.dst_id);
	}
	if (!o->json)
		printf("\n\ndrops:");
	for (__u32 r = 0; r < SL_DROP_MAX; r++) {
		uint64_t n = polmap_drops(&m, r);

		if (o->json)
			json_object_set_new(drops, reasons[r], json_integer((json_int_t)n));
		else
			printf(" %s=%llu", reasons[r], (unsigned long long)n);
	}
	if (o->json) {
		json_object_set_new(root, "generation", json_integer(cfg.policy_gen));
		json_object_set(root, "entries", ents);
		json_object_set(root, "default_deny", dd);
		json_object_set(root, "drops", drops);
		json_dumpf(root, stdout, JSON_INDENT(2));
	}
	printf("\n");
	polmap_close(&m);
out:
	json_decref(ents);
	json_decref(dd);
	json_decref(drops);
	json_decref(root);
	return rc;
}

/* Each subcommand: its arguments (-o), then what it shows. */
static int inspect_services(const struct ctl_opts *go, int argc, char **argv)
{
	struct ctl_opts o = *go;
	int rc = ctl_args_output(&o, CTL_INSPECT_HELP, ctl_inspect_opts, argc, argv);

	return rc >= 0 ? rc : show_services(&o);
}

static int inspect_identities(const struct ctl_opts *go, int argc, char **argv)
{
	struct ctl_opts o = *go;
	int rc = ctl_args_output(&o, CTL_INSPECT_HELP, ctl_inspect_opts, argc, argv);

	return rc >= 0 ? rc : show_identities(&o);
}

static int inspect_policy(const struct ctl_opts *go, int argc, char **argv)
{
	struct ctl_opts o = *go;
	int rc = ctl_args_output(&o, CTL_INSPECT_HELP, ctl_inspect_opts, argc, argv);

	return rc >= 0 ? rc : show_policy(&o);
}

int cmd_inspect(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct ctl_cmd sub[] = {
		{ .name = "services", .fn = inspect_services },
		{ .name = "identities", .fn = inspect_identities },
		{ .name = "policy", .fn = inspect_policy },
		{}
	};

	return ctl_dispatch(sub, "inspect", CTL_INSPECT_HELP, ctl_inspect_opts, o, argc, argv);
}
