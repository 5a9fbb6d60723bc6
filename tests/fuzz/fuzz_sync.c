// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's push decoder: the watch stream's newline-delimited messages,
 * whole snapshots {"version":V,"snapshot":{...}} and deltas
 * {"version":V,"base":B,"delta":{...}}, handled by sync_watch.c's own
 * on_message() (its fast path, its jansson path, deltas applied to the
 * indexed snapshot and undone when refused), each resulting snapshot then
 * decoded as the agent's apply function decodes it. sync_watch.c is
 * included for its static functions; there is no connection, so ACKs go
 * nowhere, and the BPF maps are left out.
 */
#include "agent/sync_watch.c"

#include "fuzz.h"
#include "lib/node/snapshot.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

/* The agent's apply function without the maps: decode (a delta's result
 * with the services of the one before, as the agent does), or refuse; then
 * the node proxy's text, decoded as the proxy does. */
static int decode(void *arg, const struct sync_snap *sn, const char *src, char *err,
		  size_t errlen)
{
	struct snapshot snap = {}, px = {};
	int rc = sn->doc ? snapshot_from_json_cached(sn->doc, src, &snap, arg, err, errlen) :
		 snapshot_parse(sn->text, sn->len, src, &snap, err, errlen);
	char perr[256];

	if (rc)
		return rc;
	snapshot_free(&snap);
	/* the proxy may refuse it (it keeps what it has); it never gets a service */
	if (sn->proxy_text &&
	    !snapshot_parse(sn->proxy_text, sn->proxy_len, "proxy", &px, perr, sizeof(perr))) {
		if (px.nservices)
			abort();
		snapshot_free(&px);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_cache cache = {};
	struct sync s = { .magic = SYNC_MAGIC, .apply = decode, .arg = &cache };
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
			on_message(&s, buf + start, l);
		start += l + 1;
	}
	json_decref(s.idx);
	free(s.unsaved);
	snap_cache_free(&cache);
	free(buf);
	return 0;
}
