// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF program tests for bpf/sock.bpf.c, on the real kernel with real sockets.
 *
 * cgroup sock_addr programs have no BPF_PROG_TEST_RUN, so each test loads
 * the datapath into its own cgroup and pin directory, moves itself into a
 * pod cgroup below it, enters a fresh network namespace (loopback only), and
 * exercises connect/sendmsg/recvmsg/getpeername. Backends are listeners on
 * 127.0.0.x and ::1; a connect() completes against the listen backlog, so
 * which backend got a connection is read with a non-blocking accept().
 * Criterion runs each test in its own process; teardown removes the cgroups
 * and the pins whatever the outcome. Needs root; skips without it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>

#include "agent/datapath.h"
#include "bpf/sock.skel.h"
#include "lib/core/bpfmap.h"
#include "lib/node/snapshot.h"
#include "lib/core/sys.h"

static struct {
	bool ready;
	int open_rc;      /* datapath_open() in setup; tests check it */
	char cgroot[PATH_MAX];
	char cg[PATH_MAX];
	char pod[PATH_MAX];
	char pin[PATH_MAX];
	struct datapath dp;
} E;

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

static void setup(void)
{
	if (geteuid() != 0)
		return; /* each test skips with the reason */
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
	lo_up();
	cr_assert_eq(sys_cgroup2_root(E.cgroot, sizeof(E.cgroot)), 0, "no cgroup2 mount");
	snprintf(E.cg, sizeof(E.cg), "%s/sluice-bpft-%d", E.cgroot, getpid());
	snprintf(E.pod, sizeof(E.pod), "%s/pod", E.cg);
	snprintf(E.pin, sizeof(E.pin), SL_BPFFS "/sluice-bpft-%d", getpid());
	cr_assert_eq(sys_mkdir_p(E.pod, 0755), 0);
	E.ready = true;
	/* From here on nothing asserts: Criterion skips .fini when .init
	 * fails, which would leak the cgroups and pins. Tests check open_rc. */
	E.open_rc = join_cgroup(E.pod);
	if (!E.open_rc)
		E.open_rc = datapath_open(&E.dp, E.pin, E.cg, true);
}

static void teardown(void)
{
	if (!E.ready)
		return;
	if (!E.open_rc)
		datapath_close(&E.dp);
	datapath_uninstall(E.pin);
	join_cgroup(E.cgroot);
	rmdir(E.pod);
	rmdir(E.cg);
}

#define REQUIRE_ROOT()                                                  \
	do {                                                            \
		if (geteuid() != 0)                                     \
			cr_skip_test("needs root (BPF, cgroups, netns)"); \
		cr_assert_eq(E.open_rc, 0, "datapath_open: %s",         \
			     strerror(-E.open_rc));                     \
	} while (0)

TestSuite(sock, .init = setup, .fini = teardown, .timeout = 60);

static void apply(const char *json)
{
	struct lb_apply_stats st = {};
	struct snapshot s;
	char err[512];

	cr_assert_eq(snapshot_parse(json, strlen(json), "test", &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lbmap_apply(&E.dp.maps, &s, &st, err, sizeof(err)), 0, "%s", err);
	snapshot_free(&s);
}

static socklen_t sa_make(struct sockaddr_storage *ss, const char *ip, int port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return sizeof(*s4);
	}
	cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1, "bad address %s", ip);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	return sizeof(*s6);
}

static void sa_fmt(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
	}
	snprintf(buf, len, "%s:%d", ip, port);
}

static int listener(const char *ip, int port, int type)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_make(&ss, ip, port);
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

/* connect() with socket family `family` to ip:port; -errno on failure. */
static int tcp_connect(int family, const char *ip, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_make(&ss, ip, port);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	cr_assert_geq(fd, 0);
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Which of the listeners has a connection waiting: its index, or -1. */
static int accepted_by(const int *lfds, int n)
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

static void assert_peer(int fd, const char *want)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char got[80];

	cr_assert_eq(getpeername(fd, (struct sockaddr *)&ss, &len), 0);
	sa_fmt(&ss, got, sizeof(got));
	cr_assert_str_eq(got, want, "getpeername: %s, want %s", got, want);
}

#define SNAP_WEB                                                                    \
	"{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80," \
	" \"backends\": [{\"address\": \"127.0.0.2\", \"port\": 8080},"               \
	"              {\"address\": \"127.0.0.3\", \"port\": 8080, \"weight\": 3}]}]}"

Test(sock, tcp_v4_weighted_and_getpeername)
{
	int l[2], hits[2] = {}, fd;

	REQUIRE_ROOT();
	l[0] = listener("127.0.0.2", 8080, SOCK_STREAM);
	l[1] = listener("127.0.0.3", 8080, SOCK_STREAM);
	apply(SNAP_WEB);
	for (int i = 0; i < 400; i++) {
		int who;

		fd = tcp_connect(AF_INET, "10.96.0.10", 80);
		cr_assert_geq(fd, 0, "connect %d: %s", i, strerror(-fd));
		if (i == 0)
			assert_peer(fd, "10.96.0.10:80");
		who = accepted_by(l, 2);
		cr_assert_geq(who, 0, "connection %d reached no backend", i);
		hits[who]++;
		close(fd);
	}
	/* 1:3 over 400 draws: expect 100:300; 60..140 is > 6 sigma wide */
	cr_assert(hits[0] > 60 && hits[0] < 140, "weights 1:3 gave %d:%d", hits[0], hits[1]);
	/* getpeername() found the VIP through sl_conns and sl_svc_vip */
	cr_assert_eq(map_count_keys(E.dp.maps.rev_fd, sizeof(struct sl_revnat_key)), 0,
		     "TCP connections through a VIP wrote sl_revnat entries");
}

/* Maps of a version without sl_svc_vip entries (an upgrade, before the
 * first apply): connect() writes sl_revnat as before, and getpeername()
 * shows the VIP all the same. */
Test(sock, getpeername_without_the_vip_entry_uses_revnat)
{
	struct sl_svc_key none = {};
	struct lb_live live;
	int l[2], fd;
	__u32 id;

	REQUIRE_ROOT();
	l[0] = listener("127.0.0.2", 8080, SOCK_STREAM);
	l[1] = listener("127.0.0.3", 8080, SOCK_STREAM);
	apply(SNAP_WEB);
	cr_assert_eq(lbmap_read(&E.dp.maps, &live), 0);
	id = live.svc[0].val.svc_id;
	lb_live_free(&live);
	cr_assert_eq(bpf_map_update_elem(E.dp.maps.vip_fd, &id, &none, BPF_ANY), 0);
	fd = tcp_connect(AF_INET, "10.96.0.10", 80);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	assert_peer(fd, "10.96.0.10:80");
	cr_assert_eq(map_count_keys(E.dp.maps.rev_fd, sizeof(struct sl_revnat_key)), 1);
	cr_assert_geq(accepted_by(l, 2), 0);
	close(fd);
}

Test(sock, no_backends_refuses)
{
	int fd;

	REQUIRE_ROOT();
	apply("{\"services\": [{\"name\": \"e\", \"vip\": \"10.96.0.11\", \"port\": 80, \"backends\": []}]}");
	fd = tcp_connect(AF_INET, "10.96.0.11", 80);
	if (E.dp.has_set_retval)
		cr_assert_eq(fd, -ECONNREFUSED, "got %s", strerror(-fd));
	else
		cr_assert_eq(fd, -EPERM, "got %s", strerror(-fd));
}

Test(sock, other_port_and_direct_pass_through)
{
	int l, fd;

	REQUIRE_ROOT();
	l = listener("127.0.0.2", 8080, SOCK_STREAM);
	apply(SNAP_WEB);
	fd = tcp_connect(AF_INET, "127.0.0.2", 8080);
	cr_assert_geq(fd, 0);
	assert_peer(fd, "127.0.0.2:8080");
	cr_assert_eq(accepted_by(&l, 1), 0);
	close(fd);
	/* same VIP, a port with no service: untouched, so unroutable here */
	fd = tcp_connect(AF_INET, "10.96.0.10", 81);
	cr_assert_eq(fd, -ENETUNREACH, "got %s", strerror(-fd));
}

static void udp_roundtrip(int family, const char *vip, int vport, int backend_fd,
			  bool connected, const char *want_from)
{
	struct sockaddr_storage to, from, cl;
	socklen_t tolen = sa_make(&to, vip, vport), flen = sizeof(from), cllen = sizeof(cl);
	struct timeval tv = { .tv_sec = 2 };
	char buf[64], got[80];
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connected) {
		cr_assert_eq(connect(fd, (struct sockaddr *)&to, tolen), 0, "%s", strerror(errno));
		cr_assert_eq(send(fd, "ping", 4, 0), 4);
	} else {
		cr_assert_eq(sendto(fd, "ping", 4, 0, (struct sockaddr *)&to, tolen), 4,
			     "sendto: %s", strerror(errno));
	}
	usleep(10000);
	n = recvfrom(backend_fd, buf, sizeof(buf), 0, (struct sockaddr *)&cl, &cllen);
	cr_assert_eq(n, 4, "backend got nothing: %s", strerror(errno));
	cr_assert_eq(sendto(backend_fd, "pong", 4, 0, (struct sockaddr *)&cl, cllen), 4);
	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	cr_assert_eq(n, 4, "no reply: %s", strerror(errno));
	sa_fmt(&from, got, sizeof(got));
	cr_assert_str_eq(got, want_from, "reply came from %s, want %s", got, want_from);
	if (connected)
		assert_peer(fd, want_from);
	close(fd);
}

Test(sock, udp_v4_reply_from_vip)
{
	int b;

	REQUIRE_ROOT();
	b = listener("127.0.0.2", 5353, SOCK_DGRAM);
	apply("{\"services\": [{\"name\": \"dns\", \"vip\": \"10.96.0.53\", \"port\": 53, \"protocol\": \"UDP\","
	      " \"backends\": [{\"address\": \"127.0.0.2\", \"port\": 5353}]}]}");
	udp_roundtrip(AF_INET, "10.96.0.53", 53, b, false, "10.96.0.53:53");
	udp_roundtrip(AF_INET, "10.96.0.53", 53, b, true, "10.96.0.53:53");
	udp_roundtrip(AF_INET6, "::ffff:10.96.0.53", 53, b, false, "::ffff:10.96.0.53:53");
}

Test(sock, tcp_and_udp_v6)
{
	int l, u, fd;

	REQUIRE_ROOT();
	l = listener("::1", 8080, SOCK_STREAM);
	u = listener("::1", 5353, SOCK_DGRAM);
	apply("{\"services\": ["
	      "{\"name\": \"w6\", \"vip\": \"fd00:96::10\", \"port\": 80, \"backends\": [{\"address\": \"::1\", \"port\": 8080}]},"
	      "{\"name\": \"d6\", \"vip\": \"fd00:96::53\", \"port\": 53, \"protocol\": \"UDP\","
	      " \"backends\": [{\"address\": \"::1\", \"port\": 5353}]}]}");
	fd = tcp_connect(AF_INET6, "fd00:96::10", 80);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	assert_peer(fd, "fd00:96::10:80");
	cr_assert_eq(accepted_by(&l, 1), 0);
	close(fd);
	udp_roundtrip(AF_INET6, "fd00:96::53", 53, u, false, "fd00:96::53:53");
}

Test(sock, dual_stack_socket_to_v4_vip)
{
	int l[2], fd;

	REQUIRE_ROOT();
	l[0] = listener("127.0.0.2", 8080, SOCK_STREAM);
	l[1] = listener("127.0.0.3", 8080, SOCK_STREAM);
	apply(SNAP_WEB);
	fd = tcp_connect(AF_INET6, "::ffff:10.96.0.10", 80);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	assert_peer(fd, "::ffff:10.96.0.10:80");
	cr_assert_geq(accepted_by(l, 2), 0);
	close(fd);
}

Test(sock, reconcile_writes_only_the_difference)
{
	struct lb_apply_stats st = {};
	struct lb_live live;
	struct snapshot s;
	char err[256];
	const char *two = SNAP_WEB;
	const char *one = "{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80,"
			  " \"backends\": [{\"address\": \"127.0.0.3\", \"port\": 8080}]}]}";
	int l[2];

	REQUIRE_ROOT();
	l[0] = listener("127.0.0.2", 8080, SOCK_STREAM);
	l[1] = listener("127.0.0.3", 8080, SOCK_STREAM);
	apply(two);
	cr_assert_eq(lbmap_read(&E.dp.maps, &live), 0);
	cr_assert_eq(live.nsvc, 1);
	cr_assert_eq(live.svc[0].val.count, 4);
	cr_assert_eq(live.svc[0].val.gen, 0);
	cr_assert_eq(live.nbe, 2);
	lb_live_free(&live);

	/* the same snapshot again: nothing written */
	cr_assert_eq(snapshot_parse(two, strlen(two), "t", &s, err, sizeof(err)), 0);
	cr_assert_eq(lbmap_apply(&E.dp.maps, &s, &st, err, sizeof(err)), 0);
	cr_assert_eq(st.svc_unchanged, 1);
	cr_assert_eq(st.svc_added + st.svc_updated + st.svc_removed + st.be_added + st.be_removed, 0);
	snapshot_free(&s);

	/* drop a backend: the service flips generation, old slots and the
	 * unused backend are gone, and no connection reaches it any more */
	cr_assert_eq(snapshot_parse(one, strlen(one), "t", &s, err, sizeof(err)), 0);
	cr_assert_eq(lbmap_apply(&E.dp.maps, &s, &st, err, sizeof(err)), 0);
	cr_assert_eq(st.svc_updated, 1);
	cr_assert_eq(st.be_removed, 1);
	snapshot_free(&s);
	cr_assert_eq(lbmap_read(&E.dp.maps, &live), 0);
	cr_assert_eq(live.svc[0].val.gen, 1);
	cr_assert_eq(live.svc[0].val.count, 1);
	cr_assert_eq(live.nbe, 1);
	cr_assert_eq(live.nslotkeys, 1, "stale slots left: %zu", live.nslotkeys);
	lb_live_free(&live);
	for (int i = 0; i < 50; i++) {
		int fd = tcp_connect(AF_INET, "10.96.0.10", 80);

		cr_assert_geq(fd, 0);
		cr_assert_eq(accepted_by(l, 2), 1, "connection %d went to the removed backend", i);
		close(fd);
	}

	/* remove everything */
	apply("{\"services\": []}");
	cr_assert_eq(map_count_keys(E.dp.maps.svc_fd, sizeof(struct sl_svc_key)), 0);
	cr_assert_eq(map_count_keys(E.dp.maps.slot_fd, sizeof(struct sl_slot_key)), 0);
	cr_assert_eq(map_count_keys(E.dp.maps.be_fd, sizeof(__u32)), 0);
}

/* A SOURCE_HASH service over backends 127.0.0.FIRST.. (n of them). */
static void apply_hash(int first, int n)
{
	char json[2048];
	size_t k;

	k = (size_t)snprintf(json, sizeof(json), "{\"services\": [{\"name\": \"h\", "
			     "\"vip\": \"10.96.0.30\", \"port\": 80, \"traffic\": "
			     "{\"lb\": \"SOURCE_HASH\"}, \"backends\": [");
	for (int i = 0; i < n; i++)
		k += (size_t)snprintf(json + k, sizeof(json) - k, "%s{\"address\": \"127.0.0.%d\", "
				      "\"port\": 8080}", i ? ", " : "", first + i);
	snprintf(json + k, sizeof(json) - k, "]}]}");
	apply(json);
}

/* The hash table's backends, by address, from the maps. */
static uint32_t *hash_table(uint32_t *count)
{
	struct lb_live live;
	uint32_t *t;

	cr_assert_eq(lbmap_read(&E.dp.maps, &live), 0);
	cr_assert_eq(live.nsvc, 1);
	cr_assert_eq(live.svc[0].val.wunit, 0, "not a table: weight unit %u", live.svc[0].val.wunit);
	*count = live.svc[0].val.count;
	t = calloc(*count, sizeof(*t));
	cr_assert(t);
	for (uint32_t i = 0; i < *count; i++) {
		const struct live_be *b = lb_live_backend(&live, live.svc[0].slots[i]);

		cr_assert(b, "slot %u: backend %u missing", i, live.svc[0].slots[i]);
		t[i] = ntohl(b->be.addr[3]);
	}
	lb_live_free(&live);
	return t;
}

/* Clients of the backends that stay keep them when one goes (what the
 * BPF side hashes a client to is an index into this table), and every
 * client of a service still reaches one of its backends. */
Test(sock, source_hash_slots_are_a_table_that_keeps_clients)
{
	uint32_t na, nb, stay = 0, kept = 0, *a, *b;
	int l[6], fd, who;

	REQUIRE_ROOT();
	for (int i = 0; i < 6; i++) {
		char ip[16];

		snprintf(ip, sizeof(ip), "127.0.0.%d", 2 + i);
		l[i] = listener(ip, 8080, SOCK_STREAM);
	}
	apply_hash(2, 6);
	a = hash_table(&na);
	apply_hash(2, 5);   /* 127.0.0.7 goes */
	b = hash_table(&nb);
	cr_assert_eq(na, nb, "the table's size changed: %u -> %u", na, nb);
	for (uint32_t i = 0; i < na; i++) {
		if (a[i] == 0x7f000007)
			continue;
		stay++;
		kept += a[i] == b[i];
	}
	cr_assert_geq(kept, stay * 95 / 100, "%u of %u entries of the other backends kept", kept,
		      stay);
	for (int i = 0; i < 20; i++) {
		fd = tcp_connect(AF_INET, "10.96.0.30", 80);
		cr_assert_geq(fd, 0);
		who = accepted_by(l, 6);
		cr_assert(who >= 0 && who < 5, "connection %d: accepted by listener %d", i, who);
		close(fd);
	}
	free(a);
	free(b);
}

/* A removed service's id is not the next new service's: open connections
 * may still count against it (traffic policy states). */
Test(sock, service_ids_rotate)
{
	struct lb_live live;
	uint32_t first;

	REQUIRE_ROOT();
	apply(SNAP_WEB);
	cr_assert_eq(lbmap_read(&E.dp.maps, &live), 0);
	first = live.svc[0].val.svc_id;
	lb_live_free(&live);
	apply("{\"services\": []}");
	apply_hash(2, 2);
	cr_assert_eq(lbmap_read(&E.dp.maps, &live), 0);
	cr_assert_neq(live.svc[0].val.svc_id, first, "id %u given again at once", first);
	lb_live_free(&live);
}

#define SNAP_OD(bad)                                                                \
	"{\"services\": [{\"name\": \"od\", \"vip\": \"10.96.0.40\", \"port\": 80,"     \
	" \"traffic\": {\"outlier\": {\"consecutive_errors\": 1, \"max_ejection_percent\": 50,"\
	" \"base_ejection_ms\": 600000}},"                                               \
	" \"backends\": [{\"address\": \"" bad "\", \"port\": 8081},"                    \
	"              {\"address\": \"127.0.0.3\", \"port\": 8081}]}]}"

static struct sl_svc_state svc_state(uint32_t *svc_id)
{
	struct sl_svc_state st = {};
	struct lb_live live;

	cr_assert_eq(lbmap_read(&E.dp.maps, &live), 0);
	cr_assert_eq(live.nsvc, 1);
	*svc_id = live.svc[0].val.svc_id;
	lb_live_free(&live);
	cr_assert_eq(bpf_map_lookup_elem(E.dp.maps.st_fd, svc_id, &st), 0);
	return st;
}

/* A backend removed while ejected gives its place in the service's count
 * of ejected backends back (bpf/admin.bpf.c): otherwise each crashing pod
 * replaced while ejected would use up maxEjectionPercent for good. */
Test(sock, a_backend_removed_while_ejected_is_no_longer_counted)
{
	struct sl_svc_state st;
	struct sl_be_key k = {};
	struct sl_be_state bs;
	uint32_t id, bid = 0;
	struct lb_live live;
	int l, i;

	REQUIRE_ROOT();
	l = listener("127.0.0.3", 8081, SOCK_STREAM);
	apply(SNAP_OD("127.0.0.2"));   /* nothing listens there: RST to the SYN */
	for (i = 0; i < 50 && svc_state(&id).ejected == 0; i++) {
		int fd = tcp_connect(AF_INET, "10.96.0.40", 80);

		if (fd >= 0)
			close(fd);
		accepted_by(&l, 1);
	}
	st = svc_state(&id);
	cr_assert_eq(st.ejected, 1, "127.0.0.2 not ejected after %d connects", i);
	cr_assert_eq(lbmap_read(&E.dp.maps, &live), 0);
	for (size_t j = 0; j < live.nbe; j++)
		if (live.be[j].be.addr[3] == htonl(0x7f000002))
			bid = live.be[j].id;
	lb_live_free(&live);
	k = (struct sl_be_key){ .svc_id = id, .backend_id = bid };
	cr_assert_eq(bpf_map_lookup_elem(E.dp.maps.bst_fd, &k, &bs), 0);
	cr_assert_neq(bs.until, 0);

	apply(SNAP_OD("127.0.0.4"));   /* the ejected pod is replaced */
	st = svc_state(&id);
	cr_assert_eq(st.ejected, 0, "the removed backend still counts as ejected");
	cr_assert_eq(st.ejections, 1);
	cr_assert_neq(bpf_map_lookup_elem(E.dp.maps.bst_fd, &k, &bs), 0, "its state is still there");
	close(l);
}

/* by service id, generation, index */
static int cmp_slotkey(const void *a, const void *b)
{
	const struct sl_slot_key *x = a, *y = b;

	if (x->svc_id != y->svc_id)
		return x->svc_id < y->svc_id ? -1 : 1;
	if (x->gen != y->gen)
		return x->gen < y->gen ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* What lbmap_apply() keeps as known is what the maps hold: the same
 * services (key, value, slots) and backends (and ids), and no slot but
 * the services' own. */
static void assert_known_is_the_maps(int round)
{
	const struct lb_live *k = E.dp.maps.known;
	size_t nslots = 0;
	struct lb_live r;

	cr_assert(k, "round %d: nothing known after a successful apply", round);
	cr_assert_eq(lbmap_read(&E.dp.maps, &r), 0);
	cr_assert_eq(k->nsvc, r.nsvc, "round %d: %zu services known, %zu in the map", round,
		     k->nsvc, r.nsvc);
	for (size_t i = 0; i < r.nsvc; i++) {
		cr_assert(!memcmp(&k->svc[i].key, &r.svc[i].key, sizeof(r.svc[i].key)));
		cr_assert(!memcmp(&k->svc[i].val, &r.svc[i].val, sizeof(r.svc[i].val)),
			  "round %d: service %zu: other value", round, i);
		cr_assert(!memcmp(k->svc[i].slots, r.svc[i].slots,
				  r.svc[i].val.count * sizeof(*r.svc[i].slots)),
			  "round %d: service %zu: other slots", round, i);
	}
	cr_assert_eq(k->nbe, r.nbe, "round %d: %zu backends known, %zu in the map", round,
		     k->nbe, r.nbe);
	for (size_t i = 0; i < r.nbe; i++)
		cr_assert(!memcmp(&k->be[i], &r.be[i], sizeof(r.be[i])),
			  "round %d: backend %zu differs", round, i);
	/* the map holds the known services' slots and nothing else */
	cr_assert_eq(k->nslotkeys, 0);
	for (size_t i = 0; i < r.nsvc; i++)
		nslots += r.svc[i].val.count;
	cr_assert_eq(r.nslotkeys, nslots, "round %d: %zu slots in the map, the services have %zu",
		     round, r.nslotkeys, nslots);
	qsort(r.slotkeys, r.nslotkeys, sizeof(*r.slotkeys), cmp_slotkey);
	for (size_t j = 0; j < r.nslotkeys;) {
		const struct live_svc *sv = NULL;

		/* by id: the order of the sorted keys */
		for (size_t x = 0; x < r.nsvc; x++)
			if (r.svc[x].val.svc_id == r.slotkeys[j].svc_id)
				sv = &r.svc[x];
		cr_assert(sv, "round %d: slot of no service (id %u)", round, r.slotkeys[j].svc_id);
		for (uint32_t n = 0; n < sv->val.count; n++, j++)
			cr_assert(r.slotkeys[j].svc_id == sv->val.svc_id &&
				  r.slotkeys[j].gen == sv->val.gen && r.slotkeys[j].idx == n,
				  "round %d: slot %zu is not service %u's slot %u of generation %u",
				  round, j, sv->val.svc_id, n, sv->val.gen);
	}
	lb_live_free(&r);
}

/* Applies from what the last one left (the agent's path at every change)
 * leave the maps as applies that read them back do: snapshots of up to 40
 * services over a pool of 12 shared backends with weights, each service
 * changing (or coming and going) in a quarter of the rounds, so most are
 * carried over as they are; some rounds start from a read (a restarted
 * agent). */
/* The maps hold what `want` asks for: each service with each of its
 * backends in weight / gcd slots (no traffic policies here). */
static void assert_maps_hold(const struct snapshot *want, int round)
{
	struct lb_live r;

	cr_assert_eq(lbmap_read(&E.dp.maps, &r), 0);
	cr_assert_eq(r.nsvc, want->nservices, "round %d: %zu services in the map, want %zu", round,
		     r.nsvc, want->nservices);
	for (size_t i = 0; i < want->nservices; i++) {
		const struct snap_service *ws = &want->services[i];
		struct live_svc k = { .key = ws->key };
		const struct live_svc *ls = bsearch(&k, r.svc, r.nsvc, sizeof(k), lb_cmp_svc);
		uint32_t g = 0, total = 0;

		cr_assert(ls, "round %d: %s missing", round, ws->name);
		for (size_t b = 0; b < ws->nbackends; b++) {
			uint32_t w = ws->backends[b].weight, x = g;

			for (uint32_t y = w; y; ) { uint32_t t = x % y; x = y; y = t; }
			g = x;
		}
		for (size_t b = 0; b < ws->nbackends; b++) {
			uint32_t have = 0;

			total += ws->backends[b].weight / g;
			for (uint32_t j = 0; j < ls->val.count; j++) {
				const struct live_be *be = lb_live_backend(&r, ls->slots[j]);

				have += be && !memcmp(&be->be, &ws->backends[b].be, sizeof(be->be));
			}
			cr_assert_eq(have, ws->backends[b].weight / g,
				     "round %d: %s: backend %zu has %u slots, want %u", round, ws->name,
				     b, have, ws->backends[b].weight / g);
		}
		cr_assert_eq(ls->val.count, total, "round %d: %s: %u slots, want %u", round, ws->name,
			     ls->val.count, total);
	}
	lb_live_free(&r);
}

static void known_rounds(bool cached)
{
	struct { bool on; int nb; unsigned int start, w[4]; json_t *item; } svc[40] = {};
	unsigned int seed = 7, carried = 0;
	struct snap_cache cache = {};
	char json[16384], one[1024], err[256];

	for (int round = 0; round < 120; round++) {
		struct lb_apply_stats st = {};
		json_t *root = json_pack("{s:[]}", "services");
		struct snapshot s;
		size_t n = 0;
		bool first = true;

		n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"services\": [");
		for (int i = 0; i < 40; i++) {
			size_t k = 0;

			if (round == 0 || rand_r(&seed) % 4 == 0) {
				svc[i].on = rand_r(&seed) % 3 != 0;
				svc[i].nb = (int)(rand_r(&seed) % 4);
				svc[i].start = rand_r(&seed) % 12;
				for (int b = 0; b < 4; b++)
					svc[i].w[b] = rand_r(&seed) % 3 + 1;
				json_decref(svc[i].item);
				svc[i].item = NULL;
			}
			if (!svc[i].on)
				continue;
			k += (size_t)snprintf(one + k, sizeof(one) - k,
				"{\"name\": \"s%d\", \"vip\": \"10.96.1.%d\", \"port\": 80, "
				"\"backends\": [", i, i);
			for (int b = 0; b < svc[i].nb; b++)
				k += (size_t)snprintf(one + k, sizeof(one) - k,
					"%s{\"address\": \"127.0.1.%u\", \"port\": 8080, \"weight\": %u}",
					b ? ", " : "", (svc[i].start + (unsigned int)b) % 12 + 1,
					svc[i].w[b]);
			k += (size_t)snprintf(one + k, sizeof(one) - k, "]}");
			n += (size_t)snprintf(json + n, sizeof(json) - n, "%s%s", first ? "" : ", ", one);
			first = false;
			/* an unchanged service keeps its item, as the agent's
			 * index keeps it across deltas (packed: a string) */
			if (!svc[i].item)
				svc[i].item = json_string(one);
			json_array_append(json_object_get(root, "services"), svc[i].item);
		}
		n += (size_t)snprintf(json + n, sizeof(json) - n, "]}");
		cr_assert_lt(n, sizeof(json));
		if (round % 10 == 9 && E.dp.maps.known) {
			/* a restart: the next apply reads the maps */
			lb_live_free(E.dp.maps.known);
			free(E.dp.maps.known);
			E.dp.maps.known = NULL;
		}
		if (cached)
			cr_assert_eq(snapshot_from_json_cached(root, "t", &s, &cache, err, sizeof(err)),
				     0, "%s", err);
		else
			cr_assert_eq(snapshot_parse(json, n, "t", &s, err, sizeof(err)), 0, "%s", err);
		json_decref(root);
		cr_assert_eq(lbmap_apply(&E.dp.maps, &s, &st, err, sizeof(err)), 0, "%s", err);
		assert_maps_hold(&s, round);
		snapshot_free(&s);
		carried += st.svc_unchanged;
		assert_known_is_the_maps(round);
	}
	cr_assert_gt(carried, 1000, "only %u services carried over unchanged", carried);
	snap_cache_free(&cache);
	for (int i = 0; i < 40; i++)
		json_decref(svc[i].item);
	apply("{\"services\": []}");
	cr_assert_eq(map_count_keys(E.dp.maps.be_fd, sizeof(__u32)), 0);
	cr_assert_eq(map_count_keys(E.dp.maps.slot_fd, sizeof(struct sl_slot_key)), 0);
}

Test(sock, apply_from_what_is_known_matches_the_maps)
{
	REQUIRE_ROOT();
	known_rounds(false);
}

/* The same with the agent's decode of deltas: a service whose item did
 * not change is the same parse (one serial), carried over uncompared. */
Test(sock, cached_decodes_carry_unchanged_services_over)
{
	REQUIRE_ROOT();
	known_rounds(true);
}

/* nsvc services of 1024 backends each: backend j of service i is
 * 10.(first + (i * 1024 + j) / 65536).x.y, or 10.first.0.j for every
 * service when shared. */
static void many_backends(struct snapshot *s, size_t nsvc, int first, bool shared)
{
	memset(s, 0, sizeof(*s));
	s->nservices = nsvc;
	s->services = calloc(nsvc, sizeof(*s->services));
	cr_assert(s->services);
	for (size_t i = 0; i < nsvc; i++) {
		struct snap_service *v = &s->services[i];

		cr_assert_gt(asprintf(&v->name, "s%zu", i), 0);
		v->key.addr[2] = htonl(0xffff);
		v->key.addr[3] = htonl(0x0a600000u + (uint32_t)i);   /* 10.96.x.y */
		v->key.port = htons(80);
		v->key.proto = IPPROTO_TCP;
		v->nbackends = 1024;
		v->backends = calloc(1024, sizeof(*v->backends));
		cr_assert(v->backends);
		for (uint32_t j = 0; j < 1024; j++) {
			uint32_t n = shared ? j : (uint32_t)i * 1024 + j;

			v->backends[j].be.addr[2] = htonl(0xffff);
			v->backends[j].be.addr[3] = htonl((10u << 24) + ((uint32_t)first << 16) + n);
			v->backends[j].be.port = htons(8080);
			v->backends[j].be.proto = IPPROTO_TCP;
			v->backends[j].weight = 1;
		}
	}
}

/* More references than the backends map has room for are fine when they
 * are few distinct backends; more distinct ones than room are refused
 * before anything is written, counted with those the maps hold already. */
Test(sock, backend_room_counts_distinct_backends)
{
	struct lb_apply_stats st = {};
	uint32_t max = E.dp.maps.max_be, nsvc = max / 1024;
	struct snapshot s;
	char err[256], want[64];

	REQUIRE_ROOT();
	cr_assert_eq(max, SL_MAX_BACKENDS, "the maps are this version's");
	many_backends(&s, nsvc + 1, 1, true); /* more references than room, 1,024 backends */
	cr_assert_eq(lbmap_apply(&E.dp.maps, &s, &st, err, sizeof(err)), 0, "%s", err);
	snapshot_free(&s);
	cr_assert_eq(map_count_keys(E.dp.maps.be_fd, sizeof(__u32)), 1024);

	/* those 1,024 again and max - 1,023 new ones: one more than room */
	many_backends(&s, nsvc, 2, false);
	s.services[nsvc - 1].nbackends = 1;   /* (nsvc - 1) * 1024 + 1 new */
	s.services = realloc(s.services, (nsvc + 1) * sizeof(*s.services));
	cr_assert(s.services);
	s.nservices = nsvc + 1;
	{
		struct snapshot shared;

		many_backends(&shared, 1, 1, true);
		s.services[nsvc] = shared.services[0];
		s.services[nsvc].key.addr[3] = htonl(0x0a600000u + nsvc);
		free(shared.services);
	}
	cr_assert_eq(lbmap_apply(&E.dp.maps, &s, &st, err, sizeof(err)), -E2BIG);
	snprintf(want, sizeof(want), "%u distinct backends", max + 1);
	cr_assert(strstr(err, want), "%s", err);
	snapshot_free(&s);
	cr_assert_eq(map_count_keys(E.dp.maps.be_fd, sizeof(__u32)), 1024, "nothing written");
	cr_assert_eq(map_count_keys(E.dp.maps.svc_fd, sizeof(struct sl_svc_key)), nsvc + 1);
}

/* Maps an earlier install pinned with other sizes are kept as they are (what
 * they hold survives an upgrade), and the room check counts with their sizes:
 * a snapshot that does not fit them is refused before anything is written. */
Test(sock, pinned_maps_keep_their_size)
{
	struct lb_apply_stats st = {};
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = E.pin);
	struct sock_bpf *old;
	struct snapshot s;
	char err[256];

	REQUIRE_ROOT();
	datapath_close(&E.dp);
	E.open_rc = -ENOENT;   /* teardown: nothing to close until it opens again */
	cr_assert_eq(datapath_uninstall(E.pin), 0);
	cr_assert_eq(sys_mkdir_p(E.pin, 0700), 0);
	/* the maps as a version with smaller ones would have pinned them */
	old = sock_bpf__open_opts(&oopts);
	cr_assert_not_null(old);
	cr_assert_eq(bpf_map__set_max_entries(old->maps.sl_services, 64), 0);
	cr_assert_eq(bpf_map__set_max_entries(old->maps.sl_backends, 2048), 0);
	cr_assert_eq(bpf_map__set_max_entries(old->maps.sl_slots, 8192), 0);
	cr_assert_eq(sock_bpf__load(old), 0);
	sock_bpf__destroy(old);   /* the pins stay */

	E.open_rc = datapath_open(&E.dp, E.pin, E.cg, true);
	cr_assert_eq(E.open_rc, 0, "datapath_open over smaller pinned maps: %s",
		     strerror(-E.open_rc));
	cr_assert_eq(E.dp.maps.max_svc, 64);
	cr_assert_eq(E.dp.maps.max_be, 2048);
	cr_assert_eq(E.dp.maps.max_slots, 8192);

	many_backends(&s, 3, 1, false);       /* 3,072 distinct backends */
	cr_assert_eq(lbmap_apply(&E.dp.maps, &s, &st, err, sizeof(err)), -E2BIG);
	cr_assert(strstr(err, "3072 distinct backends, more than the 2048"), "%s", err);
	snapshot_free(&s);
	many_backends(&s, 65, 1, true);
	cr_assert_eq(lbmap_apply(&E.dp.maps, &s, &st, err, sizeof(err)), -E2BIG);
	cr_assert(strstr(err, "65 services, more than the 64"), "%s", err);
	snapshot_free(&s);
	cr_assert_eq(map_count_keys(E.dp.maps.svc_fd, sizeof(struct sl_svc_key)), 0,
		     "nothing written");
	cr_assert_eq(map_count_keys(E.dp.maps.be_fd, sizeof(__u32)), 0, "nothing written");

	many_backends(&s, 2, 1, false);       /* 2,048: exactly room */
	cr_assert_eq(lbmap_apply(&E.dp.maps, &s, &st, err, sizeof(err)), 0, "%s", err);
	snapshot_free(&s);
	cr_assert_eq(map_count_keys(E.dp.maps.be_fd, sizeof(__u32)), 2048);
}

Test(sock, garbage_slots_from_a_crash_are_collected)
{
	struct sl_slot_key k = { .svc_id = 77, .gen = 1, .idx = 3 };
	struct sl_slot_val v = { .backend_id = 9 };

	REQUIRE_ROOT();
	cr_assert_eq(bpf_map_update_elem(E.dp.maps.slot_fd, &k, &v, BPF_ANY), 0);
	apply(SNAP_WEB);
	cr_assert_eq(map_count_keys(E.dp.maps.slot_fd, sizeof(k)), 4);
	cr_assert_neq(bpf_map_lookup_elem(E.dp.maps.slot_fd, &k, &v), 0);
}

Test(sock, restart_adopts_pinned_links_and_maps)
{
	struct datapath again;
	int l[2], fd;

	REQUIRE_ROOT();
	l[0] = listener("127.0.0.2", 8080, SOCK_STREAM);
	l[1] = listener("127.0.0.3", 8080, SOCK_STREAM);
	apply(SNAP_WEB);
	datapath_close(&E.dp);

	/* programs stay attached with no agent at all */
	fd = tcp_connect(AF_INET, "10.96.0.10", 80);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert_geq(accepted_by(l, 2), 0);
	close(fd);

	cr_assert_eq(datapath_open(&again, E.pin, E.cg, true), 0);
	cr_assert_eq(again.adopted, 10);
	cr_assert_eq(again.attached, 0);
	cr_assert_eq(map_count_keys(again.maps.svc_fd, sizeof(struct sl_svc_key)), 1);
	E.dp = again;
	fd = tcp_connect(AF_INET, "10.96.0.10", 80);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert_geq(accepted_by(l, 2), 0);
	close(fd);
}

Test(sock, pinned_links_of_another_cgroup_are_refused)
{
	char other[PATH_MAX + 8];
	struct datapath dp2;
	int rc;

	REQUIRE_ROOT();
	snprintf(other, sizeof(other), "%s/other", E.cg);
	cr_assert_eq(mkdir(other, 0755), 0);
	rc = datapath_open(&dp2, E.pin, other, true);
	rmdir(other);
	cr_assert_eq(rc, -EEXIST);
}

Test(sock, uninstall_detaches)
{
	struct stat st;
	int fd;

	REQUIRE_ROOT();
	apply(SNAP_WEB);
	datapath_close(&E.dp);
	cr_assert_eq(datapath_uninstall(E.pin), 0);
	cr_assert_neq(stat(E.pin, &st), 0, "pin root still there");
	fd = tcp_connect(AF_INET, "10.96.0.10", 80);
	cr_assert_eq(fd, -ENETUNREACH, "VIP still translated after uninstall: %d", fd);
	/* datapath_open again so teardown has something to close */
	cr_assert_eq(datapath_open(&E.dp, E.pin, E.cg, true), 0);
}
