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

/*
 * Writes to one map, gathered and made in batches of a few thousand
 * entries per system call (BPF_MAP_UPDATE_BATCH: 5.6 for hash maps),
 * or one entry at a time where a batch fails (a kernel or map type
 * without it; an entry that fails, whose own error is then returned).
 * Entries are written in the order they were added, so a key added
 * twice ends with its last value. Nothing reaches the map before
 * map_writes_flush(); a caller that orders writes across maps flushes
 * each in that order.
 *
 * map_writes_add: 0, or -ENOMEM (nothing written: a write made out of
 * turn could break the order the caller keeps).
 * map_writes_flush: 0 or -errno (the first failure; what was written
 * before it stays); the queue is empty after it either way.
 */
struct map_writes {
	int fd;
	size_t ksz, vsz, n, cap;
	char *k, *v;
};

void map_writes_init(struct map_writes *w, int fd, size_t key_size, size_t val_size);
int map_writes_add(struct map_writes *w, const void *key, const void *val);
int map_writes_flush(struct map_writes *w);
void map_writes_free(struct map_writes *w);

#endif /* SL_BPFMAP_H */
