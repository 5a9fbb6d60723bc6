// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The snapshot JSON decoder (docs/snapshot.md), as the agent runs it on a
 * --snapshot file or a pushed snapshot.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "lib/node/snapshot.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot s;
	char err[512];

	memset(&s, 0, sizeof(s));
	if (snapshot_parse((const char *)data, size, "fuzz.json", &s, err, sizeof(err)) == 0)
		snapshot_free(&s);
	return 0;
}
