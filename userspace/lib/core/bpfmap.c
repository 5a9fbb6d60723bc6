// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
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

#define DUMP_BATCH 4096u
#ifndef ENOTSUPP
#define ENOTSUPP 524   /* the kernel's own, seen by user space */
#endif

static int grow(char **arr, size_t *cap, size_t need, size_t size)
{
	char *na;

	if (need <= *cap)
		return 0;
	while (*cap < need)
		*cap = *cap ? *cap * 2 : DUMP_BATCH;
	na = realloc(*arr, *cap * (size ?: 1));
	if (!na)
		return -ENOMEM;
	*arr = na;
	return 0;
}

/* One entry at a time: get_next_key from the last key seen, then lookup. */
static int dump_each(int fd, size_t ks, size_t vs, char **k, char **v, size_t *n)
{
	char cur[SL_MAX_KEY_SIZE];
	size_t kcap = 0, vcap = 0;
	bool started = false;

	for (*n = 0;;) {
		if (grow(k, &kcap, *n + 1, ks) || (vs && grow(v, &vcap, *n + 1, vs)))
			return -ENOMEM;
		if (bpf_map_get_next_key(fd, started ? cur : NULL, *k + *n * ks))
			return errno == ENOENT ? 0 : -errno;
		memcpy(cur, *k + *n * ks, ks);
		started = true;
		if (vs && bpf_map_lookup_elem(fd, cur, *v + *n * vs))
			continue;   /* deleted under us */
		(*n)++;
	}
}

int map_dump(int fd, size_t key_size, size_t val_size, void **keys, void **vals, size_t *n)
{
	char *k = NULL, *v = NULL, *scratch = NULL;
	size_t kcap = 0, vcap = 0;
	/* batch cursors: a key's size, and at least 4 bytes for hash maps */
	char in[SL_MAX_KEY_SIZE + 8], out[SL_MAX_KEY_SIZE + 8];
	bool first = true;
	int rc = 0;

	*n = 0;
	if (key_size > SL_MAX_KEY_SIZE)
		return -EINVAL;
	if (!val_size) {
		/* the batch call always copies values: read them, drop them */
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(fd, &info, &len))
			return -errno;
		val_size = info.value_size;
		vals = NULL;
	}
	for (;;) {
		__u32 count = DUMP_BATCH;
		int e;

		if (grow(&k, &kcap, *n + DUMP_BATCH, key_size) ||
		    grow(vals ? &v : &scratch, &vcap, (vals ? *n : 0) + DUMP_BATCH,
			 val_size)) {
			rc = -ENOMEM;
			goto out;
		}
		e = bpf_map_lookup_batch(fd, first ? NULL : in, out, k + *n * key_size,
					 vals ? v + *n * val_size : scratch, &count, NULL);
		if (e && errno != ENOENT) {
			if (first && (errno == EINVAL || errno == ENOTSUPP || errno == EOPNOTSUPP)) {
				/* no batch for this map type or kernel */
				free(scratch);
				scratch = NULL;
				rc = dump_each(fd, key_size, vals ? val_size : 0, &k, vals ? &v : NULL, n);
				goto out;
			}
			rc = -errno;
			goto out;
		}
		*n += count;
		if (e)   /* ENOENT: that was the last batch */
			break;
		memcpy(in, out, sizeof(in));
		first = false;
	}
out:
	free(scratch);
	if (rc) {
		free(k);
		free(v);
		*n = 0;
		return rc;
	}
	*keys = k;
	if (vals)
		*vals = v;
	else
		free(v);
	return 0;
}

void map_writes_init(struct map_writes *w, int fd, size_t key_size, size_t val_size)
{
	*w = (struct map_writes){ .fd = fd, .ksz = key_size, .vsz = val_size };
}

int map_writes_add(struct map_writes *w, const void *key, const void *val)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		char *k = realloc(w->k, cap * w->ksz), *v = k ? realloc(w->v, cap * w->vsz) : NULL;

		if (k)
			w->k = k;
		if (v)
			w->v = v;
		if (!k || !v)
			return -ENOMEM;   /* what is queued stays, unwritten */
		w->cap = cap;
	}
	memcpy(w->k + w->n * w->ksz, key, w->ksz);
	memcpy(w->v + w->n * w->vsz, val, w->vsz);
	w->n++;
	return 0;
}

int map_writes_flush(struct map_writes *w)
{
	size_t done = 0;
	int rc = 0;

	while (done < w->n) {
		__u32 count = w->n - done < DUMP_BATCH ? (__u32)(w->n - done) : DUMP_BATCH;

		if (bpf_map_update_batch(w->fd, w->k + done * w->ksz, w->v + done * w->vsz, &count,
					 NULL) == 0) {
			done += count;
			continue;
		}
		/* no batch for this map type or kernel (each names it its own
		 * way: EINVAL, ENOTSUPP, ...), or an entry that failed: one at
		 * a time from the first entry of this batch (written again if
		 * the batch got to it: the same value), so the error is the
		 * entry's own */
		for (; done < w->n; done++)
			if (bpf_map_update_elem(w->fd, w->k + done * w->ksz, w->v + done * w->vsz,
						BPF_ANY)) {
				rc = -errno;
				break;
			}
		break;
	}
	w->n = 0;
	return rc;
}

void map_writes_free(struct map_writes *w)
{
	free(w->k);
	free(w->v);
	*w = (struct map_writes){ .fd = w->fd, .ksz = w->ksz, .vsz = w->vsz };
}
