// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * guard.c - one agent per node and pin root, and never inside the cgroup
 * it manages (guard.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/guard.h"
#include "lib/sys.h"

/* Lock path; on -EBUSY, the holder's pid (written in the file) in err. */
static int lock_one(const char *path, const char *what, int *fd, char *err, size_t errlen)
{
	char pid[32] = "";
	ssize_t n;

	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	/* an agent killed just now may still hold it for a moment while the
	 * kernel tears the process down: a restart waits up to 2 s */
	for (int i = 0; i < 40; i++) {
		if (flock(*fd, LOCK_EX | LOCK_NB) == 0) {
			snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
			/* the pid is only for a second agent's message */
			if (ftruncate(*fd, 0) == 0)
				n = pwrite(*fd, pid, strlen(pid), 0);
			return 0;
		}
		usleep(50000);
	}
	n = pread(*fd, pid, sizeof(pid) - 1, 0);
	pid[n > 0 ? n : 0] = 0;
	pid[strcspn(pid, "\n")] = 0;
	snprintf(err, errlen, "another sluice-agent (pid %s) runs for %s (lock %s): one agent "
		 "per node; stop it first", *pid ? pid : "?", what, path);
	close(*fd);
	*fd = -1;
	return -EBUSY;
}

int guard_lock(struct guard *g, const char *node, const char *run_dir, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], what[PATH_MAX + 32];
	struct stat ns;
	int rc;

	g->fds[0] = g->fds[1] = -1;
	rc = sys_mkdir_p(SL_RUN_BASE "/locks", 0755);
	if (rc) {
		snprintf(err, errlen, SL_RUN_BASE "/locks: %s", strerror(-rc));
		return rc;
	}
	/* a node is a name in a network namespace: simulated clusters on one
	 * machine have their own node1 each */
	if (stat("/proc/self/ns/net", &ns))
		ns.st_ino = 0;
	snprintf(path, sizeof(path), SL_RUN_BASE "/locks/node-%s.%lu.lock", node,
		 (unsigned long)ns.st_ino);
	snprintf(what, sizeof(what), "node %s", node);
	rc = lock_one(path, what, &g->fds[0], err, errlen);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s.lock", run_dir);
	snprintf(what, sizeof(what), "the pin root named %s", strrchr(run_dir, '/') + 1);
	rc = lock_one(path, what, &g->fds[1], err, errlen);
	if (rc)
		guard_unlock(g);
	return rc;
}

void guard_unlock(struct guard *g)
{
	for (int i = 0; i < 2; i++) {
		if (g->fds[i] >= 0)
			close(g->fds[i]);
		g->fds[i] = -1;
	}
}

int guard_outside(const char *cgroup, char *err, size_t errlen)
{
	char root[PATH_MAX], line[PATH_MAX + 8], mine[2 * PATH_MAX + 8];
	FILE *f = fopen("/proc/self/cgroup", "r");
	size_t n;
	int rc = 0;

	if (!f || sys_cgroup2_root(root, sizeof(root))) {
		if (f)
			fclose(f);
		return 0;   /* no cgroup v2 here: the cgroup itself was refused already */
	}
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(mine, sizeof(mine), "%s%s", root, line + 3);
		n = strlen(cgroup);
		if (!strncmp(mine, cgroup, n) && (mine[n] == '/' || !mine[n])) {
			snprintf(err, errlen, "this agent runs in cgroup %s, inside %s whose workloads it "
				 "manages: start it outside (its own connections would be a workload's)",
				 mine, cgroup);
			rc = -EINVAL;
		}
	}
	fclose(f);
	return rc;
}
