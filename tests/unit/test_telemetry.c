// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Telemetry labels: the names taken from each applied snapshot, including
 * one with nothing in it (its arrays are NULL). Under ASan+UBSan
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
	cr_assert_not_null(t.svc_ids);

	telemetry_set_labels(&t, &one, NULL);
	cr_assert_eq(t.version, 2);
	cr_assert_eq(t.labels.nidentities, 1);
	cr_assert_eq(t.labels.identities[0].id, 7);
	cr_assert_str_eq(t.labels.identities[0].spiffe, id.spiffe);
	telemetry_fini(&t);
}
