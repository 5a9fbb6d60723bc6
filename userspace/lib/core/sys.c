// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "lib/core/sys.h"

int sys_ensure_bpffs(void)
{
	struct statfs st;

	if (statfs(SL_BPFFS, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir(SL_BPFFS, 0700) && errno != EEXIST)
		return -errno;
	if (mount("bpf", SL_BPFFS, "bpf", 0, "mode=0700"))
		return -errno;
	return 0;
}

int sys_cgroup2_root(char *buf, size_t len)
{
	struct mntent *me;
	FILE *f = setmntent("/proc/self/mounts", "r");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while ((me = getmntent(f))) {
		if (strcmp(me->mnt_type, "cgroup2") == 0) {
			if ((size_t)snprintf(buf, len, "%s", me->mnt_dir) >= len)
				err = -ENAMETOOLONG;
			else
				err = 0;
			break;
		}
	}
	endmntent(f);
	return err;
}

int sys_cgroup_path(const char *arg, char *buf, size_t len)
{
	char root[PATH_MAX];
	int err;

	if (arg[0] == '/') {
		if ((size_t)snprintf(buf, len, "%s", arg) >= len)
			return -ENAMETOOLONG;
		return 0;
	}
	err = sys_cgroup2_root(root, sizeof(root));
	if (err)
		return err;
	if ((size_t)snprintf(buf, len, "%s/%s", root, arg) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int sys_mkdir_p(const char *path, unsigned int mode)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

int sys_run_dir(const char *pin_root, char *buf, size_t len)
{
	const char *base = strrchr(pin_root, '/');

	base = base ? base + 1 : pin_root;
	if (!*base)
		return -EINVAL;
	if ((size_t)snprintf(buf, len, SL_RUN_BASE "/%s", base) >= len)
		return -ENAMETOOLONG;
	return 0;
}

unsigned long sys_raise_fd_limit(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r))
		return 0;
	if (r.rlim_cur < r.rlim_max) {
		struct rlimit want = { r.rlim_max, r.rlim_max };

		if (!setrlimit(RLIMIT_NOFILE, &want))
			r.rlim_cur = r.rlim_max;
	}
	return r.rlim_cur;
}
