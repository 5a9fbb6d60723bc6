// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* dpt.c - the datapath tests' fixture and sockets (dpt.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "bpft.h"
#include "dpt.h"
#include "lib/core/sys.h"
#include "lib/node/snapshot.h"

struct dpt dpt;

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int join_cgroup(const char *dir)
{
	char path[PATH_MAX + 16], pid[16];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return write_file(path, pid);
}

static void lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	cr_assert_eq(ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
	close(fd);
}

void dpt_setup(void)
{
	if (geteuid() != 0)
		return; /* each test skips with the reason */
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
	lo_up();
	cr_assert_eq(sys_cgroup2_root(dpt.cgroot, sizeof(dpt.cgroot)), 0, "no cgroup2 mount");
	snprintf(dpt.cg, sizeof(dpt.cg), "%s/sluice-bpft-%d", dpt.cgroot, getpid());
	snprintf(dpt.pod, sizeof(dpt.pod), "%s/pod", dpt.cg);
	snprintf(dpt.pin, sizeof(dpt.pin), SL_BPFFS "/sluice-bpft-%d", getpid());
	cr_assert_eq(sys_mkdir_p(dpt.pod, 0755), 0);
	dpt.ready = true;
	/* From here on nothing asserts: Criterion skips .fini when .init
	 * fails, which would leak the cgroups and pins. Tests check open_rc. */
	dpt.open_rc = join_cgroup(dpt.pod);
	if (!dpt.open_rc)
		dpt.open_rc = datapath_open(&dpt.dp, dpt.pin, dpt.cg, true);
}

void dpt_teardown(void)
{
	if (!dpt.ready)
		return;
	if (!dpt.open_rc)
		datapath_close(&dpt.dp);
	datapath_uninstall(dpt.pin);
	join_cgroup(dpt.cgroot);
	rmdir(dpt.pod);
	rmdir(dpt.cg);
}

void dpt_apply(const char *json)
{
	struct lb_apply_stats st = {};
	struct snapshot s;
	char err[512];

	cr_assert_eq(snapshot_parse(json, strlen(json), "test", &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lbmap_apply(&dpt.dp.maps, &s, &st, err, sizeof(err)), 0, "%s", err);
	snapshot_free(&s);
}

void dpt_sockaddr_fmt(const void *ss, char *buf, size_t len)
{
	const struct sockaddr_storage *st = ss;
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (st->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	} else if (st->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
	}
	snprintf(buf, len, "%s:%d", ip, port);
}

int dpt_listener(const char *ip, int port, int type)
{
	struct sockaddr_storage ss;
	socklen_t len = bpft_sockaddr(ip, port, &ss);
	int one = 1, fd = socket(ss.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&ss, len), 0, "bind %s:%d: %s", ip, port, strerror(errno));
	if (type == SOCK_STREAM)
		cr_assert_eq(listen(fd, 1024), 0);
	return fd;
}

int dpt_connect(int family, const char *ip, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = bpft_sockaddr(ip, port, &ss);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	cr_assert_geq(fd, 0);
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int dpt_accepted_by(const int *lfds, int n)
{
	for (int i = 0; i < n; i++) {
		int c = accept4(lfds[i], NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0) {
			close(c);
			return i;
		}
	}
	return -1;
}

void dpt_assert_peer(int fd, const char *want)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char got[80];

	cr_assert_eq(getpeername(fd, (struct sockaddr *)&ss, &len), 0);
	dpt_sockaddr_fmt(&ss, got, sizeof(got));
	cr_assert_str_eq(got, want, "getpeername: %s, want %s", got, want);
}
