// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/file.h"

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	int fd, err = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int write_replace(const char *path, const void *data, size_t len, mode_t mode, bool sync)
{
	char tmp[PATH_MAX];
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	/* an existing temp file keeps its old mode; the key files must not */
	if (fchmod(fd, mode)) {
		err = -errno;
		goto out_close;
	}
	err = write_all(fd, data, len);
	if (!err && sync && fsync(fd))
		err = -errno;
out_close:
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	return sync ? fsync_dir_of(path) : 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_replace(path, data, len, mode, true);
}

int file_write_replace(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_replace(path, data, len, mode, false);
}

int file_append_sync(const char *path, const void *data, size_t len, mode_t mode)
{
	bool created = access(path, F_OK) != 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode), err;

	if (fd < 0)
		return -errno;
	err = write_all(fd, data, len);
	if (!err && fdatasync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	return err ?: created ? fsync_dir_of(path) : 0;
}

int file_remove_sync(const char *path)
{
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return fsync_dir_of(path);
}

int file_read(const char *path, char **buf, size_t *len, size_t max)
{
	struct stat st;
	char *b = NULL;
	size_t n = 0, cap;
	int fd, err = 0;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		err = -EFBIG;
		goto out;
	}
	cap = (size_t)st.st_size + 1;
	b = malloc(cap);
	if (!b) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap) {
			char *nb;

			if (cap > max + 1) {
				err = -EFBIG;
				goto out;
			}
			nb = realloc(b, cap * 2);
			if (!nb) {
				err = -ENOMEM;
				goto out;
			}
			b = nb;
			cap *= 2;
		}
		r = read(fd, b + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		err = -EFBIG;
		goto out;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
out:
	free(b);
	close(fd);
	return err;
}

static bool config_name(const char *name)
{
	const char *dot = strrchr(name, '.');

	return name[0] != '.' && dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") ||
					 !strcmp(dot, ".json"));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int file_list_inputs(const char *path, char ***out, size_t *n)
{
	struct dirent **ents = NULL;
	struct stat st;
	int k, err = 0;

	*out = NULL;
	*n = 0;
	if (strcmp(path, "-") == 0 || stat(path, &st) || !S_ISDIR(st.st_mode)) {
		*out = calloc(1, sizeof(**out));
		if (!*out || !((*out)[0] = strdup(path))) {
			free(*out);
			*out = NULL;
			return -ENOMEM;
		}
		*n = 1;
		return 0;
	}
	k = scandir(path, &ents, NULL, NULL);
	if (k < 0)
		return -errno;
	*out = calloc(k + 1, sizeof(**out));
	if (!*out)
		err = -ENOMEM;
	for (int i = 0; i < k; i++) {
		char *p = NULL;

		if (!err && config_name(ents[i]->d_name)) {
			if (asprintf(&p, "%s/%s", path, ents[i]->d_name) < 0)
				err = -ENOMEM;
			else if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
				(*out)[(*n)++] = p;
			else
				free(p);
		}
		free(ents[i]);
	}
	free(ents);
	if (!err && *n == 0)
		err = -ENOENT;
	if (err) {
		for (size_t i = 0; i < *n; i++)
			free((*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
		return err;
	}
	qsort(*out, *n, sizeof(**out), name_cmp);
	return 0;
}
