// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Telemetry labels: the names taken from each applied snapshot, including
 * one with nothing in it (its arrays are NULL), and the services' names by
 * the id the maps gave them. Under ASan+UBSan
 * (unit-asan) a NULL passed to memcpy aborts the test. And the flow log's
 * lines: JSON, each field where docs/operations.md says.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "agent/flowlog.h"
#include "agent/telemetry.h"
#include "lib/node/snapshot.h"
#include "sluice_flow.h"
#include "sluice_policy.h"

/* no maps and no service ids: every service id stays 0 */
static struct datapath dp = { .maps = { -1, -1, -1, -1 } };

Test(telemetry, labels_from_empty_then_full_snapshot)
{
	struct telemetry t = { .dp = &dp, .listen_fd = -1 };
	struct snapshot empty = { .version = 1 };
	struct snap_identity id = { .id = 7 };
	struct snapshot one = { .version = 2, .identities = &id, .nidentities = 1 };

	strcpy(id.spiffe, "spiffe://cluster.local/ns/default/sa/web");
	telemetry_set_labels(&t, &empty, NULL);
	cr_assert_eq(t.version, 1);
	cr_assert_eq(t.labels.nidentities, 0);
	cr_assert_not_null(t.labels.identities);
	cr_assert_eq(t.nsvc_named, 0);

	telemetry_set_labels(&t, &one, NULL);
	cr_assert_eq(t.version, 2);
	cr_assert_eq(t.labels.nidentities, 1);
	cr_assert_eq(t.labels.identities[0].id, 7);
	cr_assert_str_eq(t.labels.identities[0].spiffe, id.spiffe);
	telemetry_fini(&t);
}

/* A service's name follows its id across snapshots; an id no service has
 * any more has no name; no ids (NULL): no names. */
Test(telemetry, service_names_by_id)
{
	struct telemetry t = { .dp = &dp, .listen_fd = -1 };
	struct snap_service sv[3] = {};
	struct snapshot a = { .version = 1, .services = sv, .nservices = 3 };
	struct snapshot b = { .version = 2, .services = sv, .nservices = 2 };
	uint32_t ida[3] = { 5, 9, 2 }, idb[2] = { 5, 2 };

	sv[0].name = "default/web";
	sv[1].name = "default/db";
	sv[2].name = "default/api";
	telemetry_set_labels(&t, &a, ida);
	cr_assert_eq(t.nsvc_named, 3);
	cr_assert_str_eq(t.svc_names[5], "default/web");
	cr_assert_str_eq(t.svc_names[9], "default/db");
	cr_assert_str_eq(t.svc_names[2], "default/api");

	/* db goes; api (id 2) is now the second service and renamed */
	sv[1].name = "default/api-v2";
	telemetry_set_labels(&t, &b, idb);
	cr_assert_eq(t.nsvc_named, 2);
	cr_assert_str_eq(t.svc_names[5], "default/web");
	cr_assert_str_eq(t.svc_names[2], "default/api-v2");
	cr_assert_null(t.svc_names[9]);

	telemetry_set_labels(&t, &b, NULL);
	cr_assert_eq(t.nsvc_named, 0);
	cr_assert_null(t.svc_names[5]);
	cr_assert_null(t.svc_names[2]);
	telemetry_fini(&t);
}

static void v4(__be32 a[4], const char *ip)
{
	a[0] = a[1] = 0;
	a[2] = htonl(0xffff);
	cr_assert_eq(inet_pton(AF_INET, ip, &a[3]), 1);
}

/* The value at a jq-like path of "a.b" keys, as text ("" where missing). */
static const char *at(json_t *j, const char *path, char *buf, size_t len)
{
	char p[64], *save = NULL;

	snprintf(p, sizeof(p), "%s", path);
	for (char *k = strtok_r(p, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
		j = json_object_get(j, k);
	if (!j)
		return "";
	if (json_is_string(j))
		return json_string_value(j);
	if (json_is_integer(j))
		snprintf(buf, len, "%lld", (long long)json_integer_value(j));
	else if (json_is_real(j))
		snprintf(buf, len, "%.3f", json_real_value(j));
	else
		snprintf(buf, len, "?");
	return buf;
}

#define FIELD(j, path, want)                                                        \
	do {                                                                        \
		char b_[64];                                                        \
		cr_assert_str_eq(at(j, path, b_, sizeof(b_)), want, "%s", path);    \
	} while (0)

/* Kernel events (close, deny, ejection) and a proxy event, written in one
 * batch: each line parses as JSON, with names from the labels (a name
 * that needs escaping too), and the fields of its type. */
Test(telemetry, flow_log_lines)
{
	struct telemetry t = { .dp = &dp, .listen_fd = -1 };
	struct snap_identity ids[2] = { { .id = 300 }, { .id = 301 } };
	struct snap_workload wl = { .identity = 300 };
	struct snap_service sv = { .name = "default/web" };
	struct snapshot s = { .version = 1, .identities = ids, .nidentities = 2,
			      .workloads = &wl, .nworkloads = 1, .services = &sv, .nservices = 1 };
	uint32_t svc_ids[1] = { 5 };
	struct sl_event e[3] = {};
	struct tm_proxy_flow pf = { .type = "close", .reporter = SL_REPORTER_DESTINATION,
				    .src_id = 301, .dst_id = 300, .src_principal = "spiffe://x/ns/a/sa/b",
				    .sport = 41000, .dport = 8080, .sent = 7, .received = 9,
				    .duration_ms = 2.5 };
	char path[] = "/tmp/sluice-flowlog-XXXXXX", line[4096];
	json_t *j[4];
	FILE *f;
	int fd = mkstemp(path), n = 0;

	cr_assert_geq(fd, 0);
	close(fd);
	strcpy(ids[0].spiffe, "spiffe://cluster.local/ns/default/sa/web");
	strcpy(ids[1].spiffe, "spiffe://cluster.local/ns/default/sa/db");
	strcpy(wl.name, "web\"1\\");
	strcpy(wl.ns, "default");
	telemetry_set_labels(&t, &s, svc_ids);
	t.flow_path = path;
	flowlog_open(&t);
	cr_assert_not_null(t.flow);

	for (int i = 0; i < 3; i++) {
		e[i].key = (struct sl_metric_key){ .src_id = 300, .dst_id = 301, .svc_id = 5,
						   .port = 8080, .proto = 6 };
		v4(e[i].saddr, "10.0.0.1");
		v4(e[i].daddr, "10.0.0.2");
		e[i].sport = htons(40000);
		e[i].dport = htons(8080);
	}
	e[0].type = SL_EV_CLOSE;
	e[0].bytes_sent = 5;
	e[0].bytes_received = 10;
	e[0].duration_ns = 1500000;
	e[1].type = SL_EV_DENY;
	e[1].reason = 1;
	e[1].key.dst_id = SL_ID_WORLD;
	memset(e[1].saddr, 0, sizeof(e[1].saddr)); /* denied at connect(): no address */
	e[2].type = SL_EV_EJECT;
	e[2].reason = 3;
	e[2].duration_ns = 60000000000ull;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(flowlog_on_event(&t, &e[i], sizeof(e[i])), 0);
	v4(pf.saddr, "10.0.0.3");
	v4(pf.daddr, "10.0.0.1");
	flowlog_proxy(&t, &pf);
	telemetry_fini(&t);

	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		json_error_t err;

		cr_assert_lt(n, 4, "more than 4 lines");
		j[n] = json_loads(line, 0, &err);
		cr_assert_not_null(j[n], "line %d is not JSON (%s): %s", n + 1, err.text, line);
		n++;
	}
	fclose(f);
	unlink(path);
	cr_assert_eq(n, 4);

	FIELD(j[0], "type", "close");
	FIELD(j[0], "reporter", "source");
	FIELD(j[0], "source.identity", "300");
	FIELD(j[0], "source.workload", "web\"1\\");
	FIELD(j[0], "source.namespace", "default");
	FIELD(j[0], "source.principal", "spiffe://cluster.local/ns/default/sa/web");
	FIELD(j[0], "source.address", "10.0.0.1:40000");
	FIELD(j[0], "destination.workload", "unknown");
	FIELD(j[0], "destination.principal", "spiffe://cluster.local/ns/default/sa/db");
	FIELD(j[0], "destination.address", "10.0.0.2:8080");
	FIELD(j[0], "service", "default/web");
	FIELD(j[0], "protocol", "TCP");
	FIELD(j[0], "port", "8080");
	FIELD(j[0], "verdict", "allowed");
	FIELD(j[0], "bytes_sent", "5");
	FIELD(j[0], "bytes_received", "10");
	FIELD(j[0], "duration_ms", "1.500");
	cr_assert(json_is_real(json_object_get(j[0], "time")));
	cr_assert_gt(json_real_value(json_object_get(j[0], "time")), 1.7e9);

	FIELD(j[1], "type", "deny");
	FIELD(j[1], "verdict", "denied");
	FIELD(j[1], "reason", "policy_connect");
	FIELD(j[1], "source.address", "");
	FIELD(j[1], "destination.workload", "world");
	FIELD(j[1], "destination.principal", "world");
	FIELD(j[1], "bytes_sent", "");

	FIELD(j[2], "type", "eject");
	FIELD(j[2], "verdict", "ejected");
	FIELD(j[2], "ejections", "3");
	FIELD(j[2], "ejection_ms", "60000.000");
	cr_assert(json_is_real(json_object_get(j[2], "ejection_ms")), "ejection_ms is not a real");

	FIELD(j[3], "type", "close");
	FIELD(j[3], "reporter", "destination");
	FIELD(j[3], "path", "hbone");
	FIELD(j[3], "service", "unknown");
	FIELD(j[3], "source.principal", "spiffe://x/ns/a/sa/b");
	FIELD(j[3], "source.address", "10.0.0.3:41000");
	FIELD(j[3], "destination.workload", "web\"1\\");
	FIELD(j[3], "destination.address", "10.0.0.1:8080");
	FIELD(j[3], "port", "8080");
	FIELD(j[3], "duration_ms", "2.500");
	for (int i = 0; i < n; i++)
		json_decref(j[i]);
}
