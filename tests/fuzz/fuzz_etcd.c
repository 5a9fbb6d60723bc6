// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluice-control's etcd client (control/etcd_msg.c): every reader of what an
 * etcd member sends. The first byte picks one: an error body, a range
 * response, a put/deleterange/txn response, the watch stream (split into
 * lines as the watch thread splits it), or base64.
 */
#include <stdint.h>
#include <string.h>

#include "control/etcd_msg.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1;
	size_t n = size ? size - 1 : 0, vl, start = 0;
	struct etcd_watch_msg m;
	struct etcd_kv *kvs;
	int64_t rev, del;
	char err[256], *v;
	const char *nl;
	bool ok;
	int code;

	if (!size)
		return 0;
	switch (data[0] % 5) {
	case 0:
		etcd_parse_error(p, n, err, sizeof(err), &code);
		break;
	case 1:
		if (etcd_parse_range(p, n, &kvs, &vl, &rev, err, sizeof(err)) == 0) {
			for (size_t i = 0; i < vl; i++)
				if (strlen(kvs[i].key) == 0 || kvs[i].value[kvs[i].vlen] != '\0')
					__builtin_trap();
			etcd_kvs_free(kvs, vl);
		}
		break;
	case 2:
		etcd_parse_write(p, n, &rev, &del, &ok, err, sizeof(err));
		break;
	case 3:
		while ((nl = memchr(p + start, '\n', n - start)) != NULL) {
			size_t l = (size_t)(nl - (p + start));

			if (l)
				etcd_parse_watch(p + start, l, &m);
			start += l + 1;
		}
		if (start < n)
			etcd_parse_watch(p + start, n - start, &m);
		break;
	case 4:
		if (etcd_b64_decode(p, n, &v, &vl) == 0) {
			char *again = etcd_b64_encode(v, vl), *back;
			size_t bl;

			/* what decodes encodes and decodes back to the same bytes */
			if (!again || etcd_b64_decode(again, strlen(again), &back, &bl) ||
			    bl != vl || memcmp(back, v, vl) != 0)
				__builtin_trap();
			free(back);
			free(again);
			free(v);
		}
		break;
	}
	return 0;
}
