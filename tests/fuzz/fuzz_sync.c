// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's push decoder: the watch stream's newline-delimited messages
 * {"version":V,"snapshot":{...}} split as sync.c splits them (its fast
 * path and its jansson path), each snapshot then decoded as the agent's
 * apply function decodes it. sync.c is included for its static
 * split_message(); ACKs, saving and the BPF maps are left out.
 */
#include "agent/sync.c"

#include "fuzz.h"
#include "lib/node/snapshot.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

static void one_message(const char *line, size_t len)
{
	struct snapshot snap = {};
	char err[1024], *owned;
	const char *text;
	size_t tlen;
	long long v;

	if (split_message(line, len, &text, &tlen, &owned, &v))
		return;
	if (snapshot_parse(text, tlen, "control plane", &snap, err, sizeof(err)) == 0)
		snapshot_free(&snap);
	free(owned);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the stream's buffer as watch_data() keeps it: NUL-terminated */
	char *buf = malloc(size + 1);
	size_t start = 0;
	char *nl;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	while ((nl = memchr(buf + start, '\n', size - start)) != NULL) {
		size_t l = (size_t)(nl - (buf + start));

		if (l)
			one_message(buf + start, l);
		start += l + 1;
	}
	free(buf);
	return 0;
}
