// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's read of podman's state database (agent/podman.c): a BoltDB
 * file written by another program, looked up by container id. The input
 * is the file; the seeds are real podman databases.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "agent/podman.c"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the container of the seed database, and one that is not there */
	static const char *const ids[] = {
		"b12923fc325638a6f934aac65326d324b55e4dcfacdbcc56b719d1d6d3c05536",
		"0000000000000000000000000000000000000000000000000000000000000000",
	};
	char err[512];

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		json_t *j = NULL;

		if (podman_container_mem(data, size, ids[i], &j, err, sizeof(err)) == 0)
			json_decref(j);
	}
	return 0;
}
