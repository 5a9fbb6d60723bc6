// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * supervise.c - daemons kept running without systemd (install.h).
 *
 * daemon_start() forks a supervisor: a session leader of its own that
 * writes DAEMONS/NAME.pid, starts the daemon (in its netns and cgroup, its
 * output appended to LOG/NAME.log), records its pid in DAEMONS/NAME.child,
 * and starts it again, one second later, whenever it exits. SIGTERM to the
 * supervisor stops the daemon (SIGTERM, then SIGKILL after 10 s), removes
 * both pid files and ends the supervisor. The supervisor writes its own
 * lines to the daemon's log, prefixed "supervisor:".
 *
 * Where systemd is PID 1 (or the profile's supervisor says systemd), a
 * daemon that needs no cgroup of its own is a unit instead,
 * ETC/../systemd/system/sluice-NAME.service (Restart=always, its output
 * appended to the same log), enabled and started with systemctl; the demo's
 * workloads, which join a pod's cgroup, keep the supervisor above.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl/plan.h"
#include "ctl/supervise.h"
#include "ctl/profile.h"
#include "lib/core/file.h"
#include "lib/core/sys.h"

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	stopping = 1;
}

static void pid_path(const struct plan *p, const char *name, const char *ext, char *out,
		     size_t len)
{
	snprintf(out, len, "%s/%s.%s", p->daemons, name, ext);
}

/* Whether pid runs: a process that exited but is not reaped yet (a
 * supervisor is reaped by init, which may take its time) does not. */
static bool pid_alive(int pid)
{
	char path[64], buf[256], *rp;
	int fd, n;

	if (pid <= 0 || kill(pid, 0))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	rp = strrchr(buf, ')');     /* "pid (comm) S ..." */
	return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static int read_pid(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC), pid;

	if (fd < 0)
		return 0;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	pid = atoi(buf);
	return pid_alive(pid) ? pid : 0;
}

static void write_pid(const char *path, int pid)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d\n", pid);
	file_write_atomic(path, buf, strlen(buf), 0644);
}

__attribute__((format(printf, 3, 4)))
static void sv_log(int fd, const char *name, const char *fmt, ...)
{
	va_list ap;

	dprintf(fd, "supervisor: %s: ", name);
	va_start(ap, fmt);
	vdprintf(fd, fmt, ap);
	va_end(ap);
	dprintf(fd, "\n");
}

/* In the daemon's child, before exec: its cgroup, its netns, its log. */
static void child_exec(const struct daemon *d, int logfd)
{
	if (d->cgroup[0]) {
		char procs[PATH_MAX + 16];

		int fd;

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", d->cgroup);
		fd = open(procs, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1) {
			dprintf(logfd, "supervisor: %s: cannot join cgroup %s\n", d->name, d->cgroup);
			_exit(126);
		}
	}
	if (d->netns[0]) {
		int fd = open(d->netns, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			dprintf(logfd, "supervisor: %s: cannot enter netns %s: %s\n", d->name, d->netns,
				strerror(errno));
			_exit(126);
		}
		close(fd);
	}
	dup2(logfd, 1);
	dup2(logfd, 2);
	signal(SIGTERM, SIG_DFL);
	execv(d->argv[0], d->argv);
	dprintf(logfd, "supervisor: %s: exec %s: %s\n", d->name, d->argv[0], strerror(errno));
	_exit(127);
}

static void supervise(const struct plan *p, const struct daemon *d, int logfd)
{
	char pidf[PATH_MAX], childf[PATH_MAX];
	struct sigaction sa = { .sa_handler = on_term };
	int restarts = 0;

	pid_path(p, d->name, "pid", pidf, sizeof(pidf));
	pid_path(p, d->name, "child", childf, sizeof(childf));
	prctl(PR_SET_NAME, "sluice-sv", 0, 0, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	write_pid(pidf, getpid());
	while (!stopping) {
		int status = 0;
		pid_t c = fork();

		if (c == 0)
			child_exec(d, logfd);
		if (c < 0) {
			sleep(1);
			continue;
		}
		write_pid(childf, c);
		sv_log(logfd, d->name, "started pid %d (start %d)", c, restarts + 1);
		while (waitpid(c, &status, 0) < 0 && errno == EINTR && !stopping)
			;
		if (stopping) {
			/* SIGTERM, and SIGKILL if it is still there after 10 s */
			kill(c, SIGTERM);
			for (int i = 0; i < 500 && waitpid(c, &status, WNOHANG) == 0; i++)
				usleep(20000);
			if (waitpid(c, &status, WNOHANG) == 0) {
				kill(c, SIGKILL);
				waitpid(c, &status, 0);
			}
		}
		unlink(childf);
		if (stopping)
			break;
		if (WIFSIGNALED(status))
			sv_log(logfd, d->name, "pid %d killed by signal %d; restarting in 1 s", c,
			       WTERMSIG(status));
		else
			sv_log(logfd, d->name, "pid %d exited with status %d; restarting in 1 s", c,
			       WEXITSTATUS(status));
		restarts++;
		sleep(1);
	}
	sv_log(logfd, d->name, "stopped");
	unlink(pidf);
	_exit(0);
}

/* Whether the log has `what` after byte offset `from`. */
static bool log_has(const char *path, off_t from, const char *what)
{
	char *buf = NULL;
	size_t len = 0;
	bool hit;

	if (file_read(path, &buf, &len, 64u << 20))
		return false;
	hit = (size_t)from < len && memmem(buf + from, len - (size_t)from, what, strlen(what));
	free(buf);
	return hit;
}

static bool by_systemd(const struct plan *p, const struct daemon *d)
{
	return p->systemd && !d->cgroup[0];
}

static void unit_path(const struct plan *p, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/etc/systemd/system/sluice-%s.service",
		 prof_str(p->prof, "paths.prefix"), name);
}

int daemon_unit(const struct plan *p, const struct daemon *d, FILE *f)
{
	fprintf(f, "[Unit]\nDescription=sluice %s\nAfter=network-online.target\n\n[Service]\nExecStart=",
		d->name);
	for (int i = 0; d->argv[i]; i++)
		fprintf(f, "%s\"%s\"", i ? " " : "", d->argv[i]);
	fprintf(f, "\nRestart=always\nRestartSec=1\n");
	if (d->netns[0])
		fprintf(f, "NetworkNamespacePath=%s\n", d->netns);
	fprintf(f, "StandardOutput=append:%s/%s.log\nStandardError=append:%s/%s.log\n"
		"\n[Install]\nWantedBy=multi-user.target\n", p->log, d->name, p->log, d->name);
	return ferror(f) ? -EIO : 0;
}

static int systemctl(const char *verb, const char *name)
{
	char unit[128];
	char *argv[] = { "/bin/systemctl", "--quiet", (char *)verb, "--now", unit, NULL };

	snprintf(unit, sizeof(unit), "sluice-%s.service", name);
	if (!strcmp(verb, "daemon-reload")) {
		argv[2] = "daemon-reload";
		argv[3] = NULL;
	}
	return run_cmd(argv, NULL) ? -EIO : 0;
}

static int unit_start(const struct plan *p, const struct daemon *d)
{
	char path[PATH_MAX + 64], dir[PATH_MAX + 32];
	FILE *f;
	int rc;

	snprintf(dir, sizeof(dir), "%s/etc/systemd/system", prof_str(p->prof, "paths.prefix"));
	unit_path(p, d->name, path, sizeof(path));
	rc = sys_mkdir_p(dir, 0755);
	f = rc ? NULL : fopen(path, "w");
	if (!f)
		return rc ?: -errno;
	rc = daemon_unit(p, d, f);
	if (fclose(f) || rc)
		return -EIO;
	return systemctl("daemon-reload", d->name) ?: systemctl("enable", d->name);
}

int daemon_start(const struct plan *p, const struct daemon *d, int timeout_ms)
{
	char logf[PATH_MAX], pidf[PATH_MAX];
	struct stat st;
	off_t from;
	int logfd, rc;
	pid_t sv;

	rc = sys_mkdir_p(p->daemons, 0755) ?: sys_mkdir_p(p->log, 0755);
	if (rc)
		return rc;
	snprintf(logf, sizeof(logf), "%s/%s.log", p->log, d->name);
	pid_path(p, d->name, "pid", pidf, sizeof(pidf));
	if (read_pid(pidf))
		return -EEXIST;
	logfd = open(logf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (logfd < 0)
		return -errno;
	from = fstat(logfd, &st) ? 0 : st.st_size;
	if (by_systemd(p, d)) {
		close(logfd);
		rc = unit_start(p, d);
		for (int t = 0; !rc && t < timeout_ms; t += 20) {
			int unit, child;

			daemon_pids(p, d->name, &unit, &child);
			if (child && (!d->ready[0] || log_has(logf, from, d->ready)))
				return 0;
			usleep(20000);
		}
		return rc ?: -ETIMEDOUT;
	}
	unlink(pidf);
	sv = fork();
	if (sv < 0) {
		rc = -errno;
		close(logfd);
		return rc;
	}
	if (sv == 0) {
		int null = open("/dev/null", O_RDWR);

		setsid();
		if (null >= 0) {
			dup2(null, 0);
			dup2(logfd, 1);
			dup2(logfd, 2);
		}
		/* a second fork: the supervisor is not our child, nobody waits */
		if (fork() != 0)
			_exit(0);
		supervise(p, d, logfd);
	}
	waitpid(sv, NULL, 0);
	close(logfd);
	for (int t = 0; t < timeout_ms; t += 20) {
		if (read_pid(pidf) && (!d->ready[0] || log_has(logf, from, d->ready)))
			return 0;
		usleep(20000);
	}
	return -ETIMEDOUT;
}

/* systemd's MainPID of a unit, 0 if none. */
static int unit_pid(const char *name)
{
	char unit[128], *out = NULL;
	char *argv[] = { "/bin/systemctl", "show", "-p", "MainPID", "--value", unit, NULL };
	int pid = 0;

	snprintf(unit, sizeof(unit), "sluice-%s.service", name);
	if (run_cmd(argv, &out) == 0 && out)
		pid = atoi(out);
	free(out);
	return pid;
}

int daemon_pids(const struct plan *p, const char *name, int *sv, int *child)
{
	char f[PATH_MAX];
	const struct daemon *d = plan_daemon(p, name);

	if (d && by_systemd(p, d)) {
		*sv = *child = unit_pid(name);
		if (*child)
			*sv = 1;   /* systemd */
		return 0;
	}
	pid_path(p, name, "pid", f, sizeof(f));
	*sv = read_pid(f);
	pid_path(p, name, "child", f, sizeof(f));
	*child = *sv ? read_pid(f) : 0;
	return 0;
}

int daemon_stop(const struct plan *p, const char *name)
{
	const struct daemon *d = plan_daemon(p, name);
	int sv, child;

	if (d && by_systemd(p, d)) {
		char path[PATH_MAX + 64];
		int rc = systemctl("disable", name);

		unit_path(p, name, path, sizeof(path));
		unlink(path);
		return rc;
	}
	daemon_pids(p, name, &sv, &child);
	if (!sv)
		return 0;
	if (kill(sv, SIGTERM))
		return -errno;
	/* the supervisor gives its daemon 10 s, then kills it */
	for (int i = 0; i < 600 && pid_alive(sv); i++)
		usleep(20000);
	if (pid_alive(sv)) {
		if (child)
			kill(child, SIGKILL);
		kill(sv, SIGKILL);
		return -ETIMEDOUT;
	}
	return 0;
}

int run_cmd(char *const argv[], char **out)
{
	return run_cmd_in(NULL, argv, out);
}

int run_cmd_in(const char *netns, char *const argv[], char **out)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int pfd[2], status;
	pid_t c;

	if (out)
		*out = NULL;
	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	c = fork();
	if (c < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (c == 0) {
		int nfd = netns && *netns ? open(netns, O_RDONLY | O_CLOEXEC) : -1;

		if (netns && *netns && (nfd < 0 || setns(nfd, CLONE_NEWNET))) {
			fprintf(stderr, "sluicectl: netns %s: %s\n", netns, strerror(errno));
			_exit(126);
		}
		dup2(pfd[1], 1);
		execv(argv[0], argv);
		fprintf(stderr, "sluicectl: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t n;

		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb)
				break;
			buf = nb;
			cap += 65536;
		}
		n = read(pfd[0], buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(pfd[0]);
	if (buf)
		buf[len] = 0;
	while (waitpid(c, &status, 0) < 0 && errno == EINTR)
		;
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
