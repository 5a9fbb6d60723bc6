// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * proxyproc.c - the node proxy as a process (proxyproc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/proxyproc.h"
#include "lib/core/file.h"
#include "lib/core/log.h"

pid_t proxyproc_spawn(const struct psup_opts *o, const int fds[PL_LS_MAX])
{
	static const char *const role[PL_LS_MAX] = { "hbone", "out", "out6" };
	char hs[16], dr[16], lf[PL_LS_MAX][24];
	const char *argv[32];
	int n = 0, hi[PL_LS_MAX];
	pid_t pid;

	argv[n++] = o->bin;
	argv[n++] = "--node", argv[n++] = o->node;
	argv[n++] = "--pin-root", argv[n++] = o->pin_root;
	argv[n++] = "--hbone-addr", argv[n++] = o->hbone_addr;
	argv[n++] = "--outbound-addr", argv[n++] = o->outbound_addr;
	if (o->outbound_addr6)
		argv[n++] = "--outbound-addr6", argv[n++] = o->outbound_addr6;
	if (o->handshake_ms) {
		snprintf(hs, sizeof(hs), "%u", o->handshake_ms);
		argv[n++] = "--hbone-handshake-timeout", argv[n++] = hs;
	}
	snprintf(dr, sizeof(dr), "%u", o->drain_ms);
	argv[n++] = "--drain-timeout", argv[n++] = dr;
	if (o->log_level)
		argv[n++] = "--log-level", argv[n++] = o->log_level;
	for (int i = 0; i < PL_LS_MAX; i++) {
		hi[i] = -1;
		if (fds[i] < 0)
			continue;
		snprintf(lf[i], sizeof(lf[i]), "%s=%d", role[i], 3 + i);
		argv[n++] = "--listen-fd", argv[n++] = lf[i];
	}
	argv[n] = NULL;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t all;

		setsid();   /* not in the agent's process group: it outlives the agent */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		/* out of the way of 3..5 first, then into place (dup2 clears CLOEXEC) */
		for (int i = 0; i < PL_LS_MAX; i++)
			if (fds[i] >= 0)
				hi[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64);
		for (int i = 0; i < PL_LS_MAX; i++)
			if (hi[i] >= 0 && dup2(hi[i], 3 + i) < 0)
				_exit(126);
		execv(o->bin, (char *const *)argv);
		fprintf(stderr, "sluice-agent: exec %s: %s\n", o->bin, strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Is pid a live sluice-proxy (not a zombie waiting for init)? */
static bool is_proxy(pid_t pid)
{
	char path[64], buf[512], *rp;
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = pid > 0 ? fopen(path, "r") : NULL;
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return n && strstr(buf, "(sluice-proxy)") && rp && rp[1] == ' ' && rp[2] != 'Z';
}

/* The pid in <run dir>/proxy.pid, if that process is a live sluice-proxy. */
pid_t proxyproc_running(const char *run_dir)
{
	char path[PATH_MAX + 16], *buf = NULL;
	size_t n;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/proxy.pid", run_dir);
	if (file_read(path, &buf, &n, 64))
		return 0;
	pid = (pid_t)atoi(buf);
	free(buf);
	return is_proxy(pid) ? pid : 0;
}

void proxyproc_stop(const char *run_dir)
{
	char path[PATH_MAX + 16];
	pid_t pid = proxyproc_running(run_dir);

	if (pid && !kill(pid, SIGINT)) {
		for (int i = 0; i < 200 && is_proxy(pid); i++)
			usleep(10000);
		log_info("node proxy pid %d %s", (int)pid, is_proxy(pid) ? "still runs after 2 s" :
			 "stopped");
	}
	snprintf(path, sizeof(path), "%s/proxy.pid", run_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" PL_SOCK_NAME, run_dir);
	unlink(path);
}

/* An upgrade renamed a new binary over the one the process runs. */
bool proxyproc_replaced(pid_t pid)
{
	char path[64], exe[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	return n > 10 && !strcmp(exe + n - 10, " (deleted)");
}

