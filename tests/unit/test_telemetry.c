// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Telemetry labels: the names taken from each applied snapshot, including
 * one with nothing in it (its arrays are NULL), and the services' names by
 * the id the maps gave them. Under ASan+UBSan
 * (unit-asan) a NULL passed to memcpy aborts the test.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "agent/telemetry.h"
#include "lib/node/snapshot.h"

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
