// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * podman.c - a read-only BoltDB lookup of podman's container record
 * (podman.h). The BoltDB layout (go.etcd.io/bbolt): pages of the size
 * the meta page gives; two meta pages (0 and 1), the valid one with the
 * higher transaction id is current; a bucket is a B+tree of branch and
 * leaf pages, or, when small, an "inline" leaf page stored in its
 * parent's value. All integers are little-endian (x86 and arm64 hosts).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/podman.h"

#define PAGE_HDR       16
#define F_BRANCH       0x01
#define F_LEAF         0x02
#define F_META         0x04
#define BUCKET_LEAF    0x01
#define BOLT_MAGIC     0xED0CDAEDu
#define META_CSUM_OFF  56           /* bytes of meta covered by the checksum */
#define MAX_DEPTH      16
#define LOCK_WAIT_MS   2000
#define DB_MAX         (1ull << 32) /* 4 GiB: larger is not a podman state db */

struct db {
	const unsigned char *b;
	size_t len;
	uint32_t psz;
};

/* a page: where it starts and how many bytes it may use */
struct page {
	const unsigned char *p;
	size_t len;
};

static uint16_t rd16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint64_t fnv64a(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Page `id` with its overflow pages, if inside the file: 0 or -EINVAL. */
static int page_at(const struct db *d, uint64_t id, struct page *pg)
{
	uint64_t off, n;

	if (id > d->len / d->psz)
		return -EINVAL;
	off = id * d->psz;
	if (off + PAGE_HDR > d->len)
		return -EINVAL;
	n = ((uint64_t)rd32(d->b + off + 12) + 1) * d->psz;
	if (n > d->len - off)
		n = d->len - off;
	pg->p = d->b + off;
	pg->len = (size_t)n;
	return 0;
}

/* The current root bucket's page, from the valid meta with the highest txid. */
static int meta_root(struct db *d, uint64_t *root, char *err, size_t errlen)
{
	uint64_t best_tx = 0;
	bool found = false;

	if (d->len < PAGE_HDR + 64) {
		snprintf(err, errlen, "too short for a BoltDB (%zu bytes)", d->len);
		return -EINVAL;
	}
	for (int i = 0; i < 2; i++) {
		/* meta 0 gives the page size that places meta 1 (else 4096) */
		size_t off = i == 0 ? 0 : found ? d->psz : 4096;
		const unsigned char *m;
		uint32_t psz;

		if (off + PAGE_HDR + 64 > d->len)
			continue;
		m = d->b + off + PAGE_HDR;
		psz = rd32(m + 8);
		if (!(rd16(d->b + off + 8) & F_META) || rd32(m) != BOLT_MAGIC || rd32(m + 4) != 2 ||
		    psz < 512 || psz > (1u << 20) || (psz & (psz - 1)) ||
		    rd64(m + META_CSUM_OFF) != fnv64a(m, META_CSUM_OFF))
			continue;
		if (!found || rd64(m + 48) > best_tx) {
			d->psz = psz;
			*root = rd64(m + 16);
			best_tx = rd64(m + 48);
		}
		found = true;
	}
	if (!found) {
		snprintf(err, errlen, "not a BoltDB file (no valid meta page)");
		return -EINVAL;
	}
	return 0;
}

/*
 * Look `key` up in the B+tree whose root is page `root` (or, when root is
 * 0, the inline page `in`). On a hit, *val and *vlen are the value and
 * *flags the leaf flags. 0, -ENOENT, or -EINVAL for a damaged tree.
 */
static int tree_get(const struct db *d, uint64_t root, const struct page *in, const char *key,
		    const unsigned char **val, size_t *vlen, uint32_t *flags)
{
	size_t klen = strlen(key);
	struct page pg;

	if (root == 0) {
		pg = *in;
	} else if (page_at(d, root, &pg)) {
		return -EINVAL;
	}
	for (int depth = 0; depth < MAX_DEPTH; depth++) {
		uint16_t pf = rd16(pg.p + 8), count = rd16(pg.p + 10);
		uint64_t next = 0;
		bool have = false;

		if (pg.len < PAGE_HDR || (size_t)count * 16 > pg.len - PAGE_HDR)
			return -EINVAL;
		for (uint16_t i = 0; i < count; i++) {
			const unsigned char *e = pg.p + PAGE_HDR + (size_t)i * 16;
			uint64_t pos = (pf & F_BRANCH) ? rd32(e) : rd32(e + 4);
			uint64_t ks = (pf & F_BRANCH) ? rd32(e + 4) : rd32(e + 8);
			uint64_t vs = (pf & F_BRANCH) ? 0 : rd32(e + 12);
			size_t at = (size_t)(e - pg.p);
			int c;

			if (at + pos + ks + vs > pg.len)
				return -EINVAL;
			c = memcmp(e + pos, key, ks < klen ? ks : klen);
			if (!c)
				c = ks < klen ? -1 : ks > klen;
			if (pf & F_BRANCH) {
				/* the last child whose first key is <= key */
				if (c <= 0 || !have) {
					next = rd64(e + 8);
					have = true;
				}
				if (c >= 0)
					break;
			} else if (pf & F_LEAF) {
				if (c == 0) {
					*flags = rd32(e);
					*val = e + pos + ks;
					*vlen = (size_t)vs;
					return 0;
				}
				if (c > 0)
					break;
			} else {
				return -EINVAL;
			}
		}
		if (!(pf & F_BRANCH))
			return -ENOENT;
		if (!have || page_at(d, next, &pg))
			return -EINVAL;
	}
	return -EINVAL;
}

/* The bucket named `key` inside the bucket (root, in). */
static int bucket_get(const struct db *d, uint64_t root, const struct page *in, const char *key,
		      uint64_t *broot, struct page *bin)
{
	const unsigned char *v;
	size_t vl;
	uint32_t fl;
	int rc = tree_get(d, root, in, key, &v, &vl, &fl);

	if (rc)
		return rc;
	if (!(fl & BUCKET_LEAF) || vl < 16)
		return -EINVAL;
	*broot = rd64(v);
	bin->p = v + 16;
	bin->len = vl - 16;
	if (*broot == 0 && bin->len < PAGE_HDR)
		return -EINVAL;
	return 0;
}

int podman_container_mem(const unsigned char *buf, size_t len, const char *id, json_t **config,
			 char *err, size_t errlen)
{
	struct db d = { .b = buf, .len = len, .psz = 4096 };
	struct page none = {}, ctr_in, c_in;
	uint64_t root = 0, ctr_root = 0, c_root = 0;
	const unsigned char *v;
	size_t vl;
	uint32_t fl;
	json_error_t je;
	int rc;

	*config = NULL;
	rc = meta_root(&d, &root, err, errlen);
	if (rc)
		return rc;
	rc = bucket_get(&d, root, &none, "ctr", &ctr_root, &ctr_in);
	if (rc == -ENOENT) {
		snprintf(err, errlen, "no container %.64s in podman's database (it has no containers)", id);
		return -ENOENT;
	}
	rc = rc ?: bucket_get(&d, ctr_root, &ctr_in, id, &c_root, &c_in);
	if (rc == -ENOENT) {
		snprintf(err, errlen, "no container %.64s in podman's database", id);
		return rc;
	}
	rc = rc ?: tree_get(&d, c_root, &c_in, "config", &v, &vl, &fl);
	if (rc || (fl & BUCKET_LEAF)) {
		snprintf(err, errlen, "podman's database: container %.64s: %s", id,
			 rc == -ENOENT ? "no config record" : "damaged page");
		return rc ?: -EINVAL;
	}
	*config = json_loadb((const char *)v, vl, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(*config)) {
		json_decref(*config);
		*config = NULL;
		snprintf(err, errlen, "podman's database: container %.64s: config is not a JSON "
			 "object: %s", id, je.text);
		return -EINVAL;
	}
	return 0;
}

static int lock_shared(int fd)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	for (int waited = 0; waited < LOCK_WAIT_MS; waited += 10) {
		if (!flock(fd, LOCK_SH | LOCK_NB))
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

int podman_container(const char *db, const char *id, json_t **config, char *err, size_t errlen)
{
	int fd = open(db, O_RDONLY | O_CLOEXEC), rc;
	void *m = MAP_FAILED;
	struct stat st;

	*config = NULL;
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "podman's database %s: %s", db, strerror(errno));
		return rc;
	}
	rc = lock_shared(fd);
	if (rc) {
		snprintf(err, errlen, "podman's database %s: shared lock: %s", db, strerror(-rc));
		goto out;
	}
	if (fstat(fd, &st) || st.st_size <= 0 || (unsigned long long)st.st_size > DB_MAX) {
		rc = -EINVAL;
		snprintf(err, errlen, "podman's database %s: unusable size", db);
		goto out;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		snprintf(err, errlen, "podman's database %s: mmap: %s", db, strerror(errno));
		goto out;
	}
	rc = podman_container_mem(m, (size_t)st.st_size, id, config, err, errlen);
out:
	if (m != MAP_FAILED)
		munmap(m, (size_t)st.st_size);
	close(fd);   /* drops the lock */
	return rc;
}
