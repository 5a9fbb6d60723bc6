/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* bpfmap.h - small helpers over any BPF map fd. */
#ifndef SL_BPFMAP_H
#define SL_BPFMAP_H

#include <stddef.h>

#define SL_MAX_KEY_SIZE 64

/* Number of keys in a hash-like map whose keys are key_size bytes
 * (<= SL_MAX_KEY_SIZE); counts while iterating, so it is a snapshot. */
size_t map_count_keys(int fd, size_t key_size);

#endif /* SL_BPFMAP_H */
