/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* bpfmap.h - small helpers over any BPF map fd. */
#ifndef SL_BPFMAP_H
#define SL_BPFMAP_H

#include <stddef.h>

#define SL_MAX_KEY_SIZE 64

/* Number of keys in a hash-like map whose keys are key_size bytes
 * (<= SL_MAX_KEY_SIZE); counts while iterating, so it is a snapshot. */
size_t map_count_keys(int fd, size_t key_size);

/*
 * Every entry of a map: *keys and *vals (malloc'd, *n of each, key_size
 * and val_size bytes apiece; vals may be NULL to read keys only). Read
 * in batches of a few thousand entries per system call where the kernel
 * has BPF_MAP_LOOKUP_BATCH for the map's type (5.6 for hash maps), one
 * entry at a time otherwise. An entry deleted while it runs is left out.
 * 0 or -errno.
 */
int map_dump(int fd, size_t key_size, size_t val_size, void **keys, void **vals, size_t *n);

#endif /* SL_BPFMAP_H */
