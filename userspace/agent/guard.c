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
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/guard.h"
#include "lib/core/sys.h"

/* "another sluice-agent (pid N) runs for WHAT ..." */
static void busy(char *err, size_t errlen, int pid, const char *what)
{
	char p[16] = "?";

	if (pid > 0)
		snprintf(p, sizeof(p), "%d", pid);
	snprintf(err, errlen, "another sluice-agent (pid %s) runs for %s: one agent per node; "
		 "stop it first", p, what);
}

/* The node: an abstract unix socket, which belongs to this network
 * namespace and goes away with the process that holds it. The pid of a
 * holder comes from connecting to it (SO_PEERCRED). */
static int lock_node(struct guard *g, const char *node, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 +
			(socklen_t)snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
					    "sluice-agent/node/%s", node);
	char what[128];

	/* a killed agent may hold it a moment longer: wait up to 2 s */
	for (int i = 0; i < 40; i++) {
		g->fds[0] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (g->fds[0] < 0)
			return -errno;
		if (bind(g->fds[0], (struct sockaddr *)&sa, len) == 0 && listen(g->fds[0], 4) == 0)
			return 0;
		close(g->fds[0]);
		g->fds[0] = -1;
		if (errno != EADDRINUSE)
			return -errno;
		usleep(50000);
	}
	snprintf(what, sizeof(what), "node %s in this network namespace", node);
	{
		int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct ucred cred = {};
		socklen_t cl = sizeof(cred);

		if (c >= 0 && connect(c, (struct sockaddr *)&sa, len) == 0)
			getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
		if (c >= 0)
			close(c);
		busy(err, errlen, cred.pid, what);
	}
	return -EBUSY;
}

/* The pin root: a file lock in its run directory (bpffs holds no files). */
static int lock_pins(struct guard *g, const char *run_dir, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], pid[32] = "", what[PATH_MAX + 32];
	ssize_t n;
	int rc = sys_mkdir_p(run_dir, 0755);

	snprintf(path, sizeof(path), "%s/agent.lock", run_dir);
	g->fds[1] = rc ? -1 : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (g->fds[1] < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(rc ? -rc : errno));
		return rc ?: -errno;
	}
	for (int i = 0; i < 40; i++) {
		if (flock(g->fds[1], LOCK_EX | LOCK_NB) == 0) {
			snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
			/* the pid is only for a second agent's message */
			if (ftruncate(g->fds[1], 0) == 0)
				n = pwrite(g->fds[1], pid, strlen(pid), 0);
			return 0;
		}
		usleep(50000);
	}
	n = pread(g->fds[1], pid, sizeof(pid) - 1, 0);
	pid[n > 0 ? n : 0] = 0;
	snprintf(what, sizeof(what), "the pin root of %s (%s)", run_dir, path);
	busy(err, errlen, atoi(pid), what);
	close(g->fds[1]);
	g->fds[1] = -1;
	return -EBUSY;
}

int guard_lock(struct guard *g, const char *node, const char *run_dir, char *err, size_t errlen)
{
	int rc;

	g->fds[0] = g->fds[1] = -1;
	rc = lock_node(g, node, err, errlen);
	rc = rc ?: lock_pins(g, run_dir, err, errlen);
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
