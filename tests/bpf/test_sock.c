// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF program tests for bpf/sock.bpf.c, on the real kernel with real sockets.
 *
 * cgroup sock_addr programs have no BPF_PROG_TEST_RUN, so each test loads
 * the datapath into a cgroup of its own (dpt.h) and exercises
 * connect/sendmsg/recvmsg/getpeername, and the datapath's own life:
 * restart, adoption, uninstall. What the agent writes into the load
 * balancer's maps is test_lbmap.c's. Needs root; skips without it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>

#include "agent/datapath.h"
#include "bpft.h"
#include "dpt.h"
#include "lib/core/bpfmap.h"

TestSuite(sock, .init = dpt_setup, .fini = dpt_teardown, .timeout = 60);

Test(sock, tcp_v4_weighted_and_getpeername)
{
	int l[2], hits[2] = {}, fd;

	DPT_REQUIRE_ROOT();
	l[0] = dpt_listener("127.0.0.2", 8080, SOCK_STREAM);
	l[1] = dpt_listener("127.0.0.3", 8080, SOCK_STREAM);
	dpt_apply(SNAP_WEB);
	for (int i = 0; i < 400; i++) {
		int who;

		fd = dpt_connect(AF_INET, "10.96.0.10", 80);
		cr_assert_geq(fd, 0, "connect %d: %s", i, strerror(-fd));
		if (i == 0)
			dpt_assert_peer(fd, "10.96.0.10:80");
		who = dpt_accepted_by(l, 2);
		cr_assert_geq(who, 0, "connection %d reached no backend", i);
		hits[who]++;
		close(fd);
	}
	/* 1:3 over 400 draws: expect 100:300; 60..140 is > 6 sigma wide */
	cr_assert(hits[0] > 60 && hits[0] < 140, "weights 1:3 gave %d:%d", hits[0], hits[1]);
	/* getpeername() found the VIP through sl_conns and sl_svc_vip */
	cr_assert_eq(map_count_keys(dpt.dp.maps.rev_fd, sizeof(struct sl_revnat_key)), 0,
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

	DPT_REQUIRE_ROOT();
	l[0] = dpt_listener("127.0.0.2", 8080, SOCK_STREAM);
	l[1] = dpt_listener("127.0.0.3", 8080, SOCK_STREAM);
	dpt_apply(SNAP_WEB);
	cr_assert_eq(lbmap_read(&dpt.dp.maps, &live), 0);
	id = live.svc[0].val.svc_id;
	lb_live_free(&live);
	cr_assert_eq(bpf_map_update_elem(dpt.dp.maps.vip_fd, &id, &none, BPF_ANY), 0);
	fd = dpt_connect(AF_INET, "10.96.0.10", 80);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	dpt_assert_peer(fd, "10.96.0.10:80");
	cr_assert_eq(map_count_keys(dpt.dp.maps.rev_fd, sizeof(struct sl_revnat_key)), 1);
	cr_assert_geq(dpt_accepted_by(l, 2), 0);
	close(fd);
}

Test(sock, no_backends_refuses)
{
	int fd;

	DPT_REQUIRE_ROOT();
	dpt_apply("{\"services\": [{\"name\": \"e\", \"vip\": \"10.96.0.11\", \"port\": 80, \"backends\": []}]}");
	fd = dpt_connect(AF_INET, "10.96.0.11", 80);
	if (dpt.dp.has_set_retval)
		cr_assert_eq(fd, -ECONNREFUSED, "got %s", strerror(-fd));
	else
		cr_assert_eq(fd, -EPERM, "got %s", strerror(-fd));
}

Test(sock, other_port_and_direct_pass_through)
{
	int l, fd;

	DPT_REQUIRE_ROOT();
	l = dpt_listener("127.0.0.2", 8080, SOCK_STREAM);
	dpt_apply(SNAP_WEB);
	fd = dpt_connect(AF_INET, "127.0.0.2", 8080);
	cr_assert_geq(fd, 0);
	dpt_assert_peer(fd, "127.0.0.2:8080");
	cr_assert_eq(dpt_accepted_by(&l, 1), 0);
	close(fd);
	/* same VIP, a port with no service: untouched, so unroutable here */
	fd = dpt_connect(AF_INET, "10.96.0.10", 81);
	cr_assert_eq(fd, -ENETUNREACH, "got %s", strerror(-fd));
}

static void udp_roundtrip(int family, const char *vip, int vport, int backend_fd,
			  bool connected, const char *want_from)
{
	struct sockaddr_storage to, from, cl;
	socklen_t tolen = bpft_sockaddr(vip, vport, &to), flen = sizeof(from), cllen = sizeof(cl);
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
	dpt_sockaddr_fmt(&from, got, sizeof(got));
	cr_assert_str_eq(got, want_from, "reply came from %s, want %s", got, want_from);
	if (connected)
		dpt_assert_peer(fd, want_from);
	close(fd);
}

Test(sock, udp_v4_reply_from_vip)
{
	int b;

	DPT_REQUIRE_ROOT();
	b = dpt_listener("127.0.0.2", 5353, SOCK_DGRAM);
	dpt_apply("{\"services\": [{\"name\": \"dns\", \"vip\": \"10.96.0.53\", \"port\": 53, \"protocol\": \"UDP\","
	      " \"backends\": [{\"address\": \"127.0.0.2\", \"port\": 5353}]}]}");
	udp_roundtrip(AF_INET, "10.96.0.53", 53, b, false, "10.96.0.53:53");
	udp_roundtrip(AF_INET, "10.96.0.53", 53, b, true, "10.96.0.53:53");
	udp_roundtrip(AF_INET6, "::ffff:10.96.0.53", 53, b, false, "::ffff:10.96.0.53:53");
}

Test(sock, tcp_and_udp_v6)
{
	int l, u, fd;

	DPT_REQUIRE_ROOT();
	l = dpt_listener("::1", 8080, SOCK_STREAM);
	u = dpt_listener("::1", 5353, SOCK_DGRAM);
	dpt_apply("{\"services\": ["
	      "{\"name\": \"w6\", \"vip\": \"fd00:96::10\", \"port\": 80, \"backends\": [{\"address\": \"::1\", \"port\": 8080}]},"
	      "{\"name\": \"d6\", \"vip\": \"fd00:96::53\", \"port\": 53, \"protocol\": \"UDP\","
	      " \"backends\": [{\"address\": \"::1\", \"port\": 5353}]}]}");
	fd = dpt_connect(AF_INET6, "fd00:96::10", 80);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	dpt_assert_peer(fd, "fd00:96::10:80");
	cr_assert_eq(dpt_accepted_by(&l, 1), 0);
	close(fd);
	udp_roundtrip(AF_INET6, "fd00:96::53", 53, u, false, "fd00:96::53:53");
}

Test(sock, dual_stack_socket_to_v4_vip)
{
	int l[2], fd;

	DPT_REQUIRE_ROOT();
	l[0] = dpt_listener("127.0.0.2", 8080, SOCK_STREAM);
	l[1] = dpt_listener("127.0.0.3", 8080, SOCK_STREAM);
	dpt_apply(SNAP_WEB);
	fd = dpt_connect(AF_INET6, "::ffff:10.96.0.10", 80);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	dpt_assert_peer(fd, "::ffff:10.96.0.10:80");
	cr_assert_geq(dpt_accepted_by(l, 2), 0);
	close(fd);
}

Test(sock, restart_adopts_pinned_links_and_maps)
{
	struct datapath again;
	int l[2], fd;

	DPT_REQUIRE_ROOT();
	l[0] = dpt_listener("127.0.0.2", 8080, SOCK_STREAM);
	l[1] = dpt_listener("127.0.0.3", 8080, SOCK_STREAM);
	dpt_apply(SNAP_WEB);
	datapath_close(&dpt.dp);

	/* programs stay attached with no agent at all */
	fd = dpt_connect(AF_INET, "10.96.0.10", 80);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert_geq(dpt_accepted_by(l, 2), 0);
	close(fd);

	cr_assert_eq(datapath_open(&again, dpt.pin, dpt.cg, true), 0);
	cr_assert_eq(again.adopted, 10);
	cr_assert_eq(again.attached, 0);
	cr_assert_eq(map_count_keys(again.maps.svc_fd, sizeof(struct sl_svc_key)), 1);
	dpt.dp = again;
	fd = dpt_connect(AF_INET, "10.96.0.10", 80);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert_geq(dpt_accepted_by(l, 2), 0);
	close(fd);
}

Test(sock, pinned_links_of_another_cgroup_are_refused)
{
	char other[PATH_MAX + 8];
	struct datapath dp2;
	int rc;

	DPT_REQUIRE_ROOT();
	snprintf(other, sizeof(other), "%s/other", dpt.cg);
	cr_assert_eq(mkdir(other, 0755), 0);
	rc = datapath_open(&dp2, dpt.pin, other, true);
	rmdir(other);
	cr_assert_eq(rc, -EEXIST);
}

Test(sock, uninstall_detaches)
{
	struct stat st;
	int fd;

	DPT_REQUIRE_ROOT();
	dpt_apply(SNAP_WEB);
	datapath_close(&dpt.dp);
	cr_assert_eq(datapath_uninstall(dpt.pin), 0);
	cr_assert_neq(stat(dpt.pin, &st), 0, "pin root still there");
	fd = dpt_connect(AF_INET, "10.96.0.10", 80);
	cr_assert_eq(fd, -ENETUNREACH, "VIP still translated after uninstall: %d", fd);
	/* datapath_open again so teardown has something to close */
	cr_assert_eq(datapath_open(&dpt.dp, dpt.pin, dpt.cg, true), 0);
}
