// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <string.h>

#include <bpf/bpf.h>

#include "lib/core/bpfmap.h"

size_t map_count_keys(int fd, size_t key_size)
{
	char key[SL_MAX_KEY_SIZE] = {}, next[SL_MAX_KEY_SIZE];
	size_t n = 0;

	if (key_size > SL_MAX_KEY_SIZE)
		return 0;
	while (bpf_map_get_next_key(fd, n ? key : NULL, next) == 0) {
		memcpy(key, next, key_size);
		n++;
	}
	return n;
}
