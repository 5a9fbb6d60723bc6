// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF program tests for bpf/sockops.bpf.c through its skeleton, with real
 * sockets: sockops has no BPF_PROG_TEST_RUN.
 *
 * Each test enters a network namespace and a cgroup of its own, loads a
 * private copy of the object (nothing pinned), attaches sl_sockops to the
 * cgroup and makes TCP connections over loopback: client 127.0.0.3, server
 * 127.0.0.2, two workloads of this node as the ipcache says. What the
 * connect hook would have written for a client (its sl_conns entry) is
 * written by the test under the socket's cookie before connect(). Checked:
 * the counters and flow events of both ends (payload bytes, not sequence
 * space), the clean-up of sl_conns, and the fast path's sockhash
 * insertion and half-close. Needs root and cgroup v2; skips without them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>

#include "bpf/sockops.skel.h"
#include "bpft.h"
#include "sluice_fast.h"
#include "sluice_policy.h"

#ifndef ENOTSUPP
#define ENOTSUPP 524	/* the kernel's, not in userspace errno.h */
#endif

#define SERVER "127.0.0.2"
#define CLIENT "127.0.0.3"
#define SERVER_ID 300
#define CLIENT_ID 301

static struct sockops_bpf *skel;
static struct bpft_cg cg = { .fd = -1 };
static struct bpf_link *ops_link;

/* A fresh copy of the object, attached to the test's cgroup; flow events
 * written or not (as the agent with and without a flow log). */
static void load(bool flow_events)
{
	skel = sockops_bpf__open();
	cr_assert_not_null(skel, "open: %s", strerror(errno));
	skel->rodata->cfg_flow_events = flow_events;
	bpft_private_maps(skel->obj, 256);
	cr_assert_eq(sockops_bpf__load(skel), 0, "load: %s", strerror(errno));
	ops_link = bpf_program__attach_cgroup(skel->progs.sl_sockops, cg.fd);
	cr_assert_not_null(ops_link, "attach to %s: %s", cg.path, strerror(errno));
}

static void unload(void)
{
	bpf_link__destroy(ops_link);
	ops_link = NULL;
	sockops_bpf__destroy(skel);
	skel = NULL;
}

static void setup(void)
{
	if (geteuid() != 0)
		return; /* each test skips with the reason */
	bpft_netns();
	bpft_cg_enter(&cg, "sockops");
	load(true);
}

static void teardown(void)
{
	unload();
	bpft_cg_leave(&cg);
}

TestSuite(sockops, .init = setup, .fini = teardown, .timeout = 30);

/* the client and the server, two workloads of this node */
static void workloads(void)
{
	bpft_ipcache(skel->maps.sl_ipcache, SERVER, SERVER_ID, SL_IPC_LOCAL);
	bpft_ipcache(skel->maps.sl_ipcache, CLIENT, CLIENT_ID, SL_IPC_LOCAL);
}

static struct sl_metric_key mkey(__u32 src, __u32 dst, int port, __u8 reporter)
{
	return (struct sl_metric_key){ .src_id = src, .dst_id = dst, .port = port,
				       .proto = IPPROTO_TCP, .reporter = reporter };
}

static bool closed_once(const struct sl_metric_key *k, struct sl_metric_val *v)
{
	return bpft_metric(skel->maps.sl_metrics, k, v) && v->closed == 1;
}

/* A connection that carries up bytes to the server and down bytes back,
 * then closes, the client first; every byte is read. */
static void exchange(int cfd, int sfd, size_t up, size_t down)
{
	static char buf[1 << 16];

	cr_assert_leq(up, sizeof(buf));
	cr_assert_leq(down, sizeof(buf));
	memset(buf, 'u', up);
	bpft_send(cfd, buf, up);
	bpft_recv(sfd, buf, up);
	memset(buf, 'd', down);
	bpft_send(sfd, buf, down);
	bpft_recv(cfd, buf, down);
	close(cfd);
	bpft_eof(sfd);
	close(sfd);
}

Test(sockops, server_side_counts_payload_bytes_and_reports_open_and_close)
{
	struct sl_metric_key k;
	struct sl_metric_val v;
	struct sl_event ev[8];
	struct sl_conn c;
	__u64 cookie;
	int l, cfd, sfd, n;

	BPFT_REQUIRE_ROOT();
	workloads();
	l = bpft_listen(SERVER);
	cfd = bpft_client(CLIENT, l);
	bpft_connect(cfd, l);
	sfd = bpft_accept(l);
	cookie = bpft_cookie(sfd);
	/* established: the server's socket is in the connection table, as
	 * the destination sees it */
	cr_assert(BPFT_WAIT(!bpf_map_lookup_elem(bpf_map__fd(skel->maps.sl_conns), &cookie, &c)),
		  "the accepted socket is not in sl_conns");
	cr_assert_eq(c.key.src_id, CLIENT_ID);
	cr_assert_eq(c.key.dst_id, SERVER_ID);
	cr_assert_eq(c.key.reporter, SL_REPORTER_DESTINATION);
	cr_assert_eq(ntohs(c.sport), bpft_port(cfd));
	cr_assert_eq(ntohs(c.dport), bpft_port(l));
	exchange(cfd, sfd, 5000, 1200);
	k = mkey(CLIENT_ID, SERVER_ID, bpft_port(l), SL_REPORTER_DESTINATION);
	cr_assert(BPFT_WAIT(closed_once(&k, &v)), "no close counted (closed %llu)",
		  (unsigned long long)v.closed);
	cr_assert_eq(v.opened, 1);
	/* from the client's point of view: sent is what the server got */
	cr_assert_eq(v.bytes_sent, 5000, "bytes_sent %llu", (unsigned long long)v.bytes_sent);
	cr_assert_eq(v.bytes_received, 1200, "bytes_received %llu",
		     (unsigned long long)v.bytes_received);
	cr_assert_neq(bpf_map_lookup_elem(bpf_map__fd(skel->maps.sl_conns), &cookie, &c), 0,
		      "sl_conns keeps a closed socket");
	/* the client's socket was not recorded by a connect hook: no entry */
	cr_assert_eq(bpft_map_count(skel->maps.sl_metrics), 1);
	n = bpft_events(skel->maps.sl_events, ev, 8);
	cr_assert_eq(n, 2, "events: %d", n);
	cr_assert_eq(ev[0].type, SL_EV_OPEN);
	cr_assert_eq(ev[1].type, SL_EV_CLOSE);
	cr_assert_eq(ev[1].cookie, cookie);
	cr_assert_eq(ev[1].bytes_sent, 5000);
	cr_assert_eq(ev[1].bytes_received, 1200);
}

Test(sockops, without_flow_events_counts_and_writes_no_event)
{
	struct sl_metric_key k;
	struct sl_metric_val v;
	struct sl_event ev[4];
	int l, cfd, sfd;

	BPFT_REQUIRE_ROOT();
	unload();
	load(false);
	workloads();
	l = bpft_listen(SERVER);
	cfd = bpft_client(CLIENT, l);
	bpft_connect(cfd, l);
	sfd = bpft_accept(l);
	exchange(cfd, sfd, 700, 300);
	k = mkey(CLIENT_ID, SERVER_ID, bpft_port(l), SL_REPORTER_DESTINATION);
	cr_assert(BPFT_WAIT(closed_once(&k, &v)), "no close counted");
	cr_assert_eq(v.opened, 1);
	cr_assert_eq(v.bytes_sent, 700);
	cr_assert_eq(v.bytes_received, 300);
	cr_assert_eq(bpft_events(skel->maps.sl_events, ev, 4), 0);
}

Test(sockops, client_side_counts_what_the_connect_hook_recorded)
{
	struct sl_metric_key k;
	struct sl_metric_val v;
	struct sl_conn c;
	uint32_t a[4];
	__u64 cookie;
	int l, cfd, sfd;

	BPFT_REQUIRE_ROOT();
	/* the server is no workload: only the client's end counts */
	bpft_ipcache(skel->maps.sl_ipcache, CLIENT, CLIENT_ID, SL_IPC_LOCAL);
	l = bpft_listen(SERVER);
	cfd = bpft_client(CLIENT, l);
	cookie = bpft_cookie(cfd);
	bpft_conn_recorded(skel->maps.sl_conns, cfd, l, SL_ID_UNKNOWN, SERVER_ID);
	bpft_connect(cfd, l);
	sfd = bpft_accept(l);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(skel->maps.sl_conns), &cookie, &c), 0);
	/* filled in at ACTIVE_ESTABLISHED: the source identity from the
	 * bound address, the source address and port; the SYN as baseline */
	cr_assert_eq(c.key.src_id, CLIENT_ID);
	bpft_addr16(CLIENT, a);
	cr_assert_arr_eq(c.saddr, a, 16);
	cr_assert_eq(ntohs(c.sport), bpft_port(cfd));
	cr_assert_eq(c.acked_base, 1);
	exchange(cfd, sfd, 3000, 65536);
	k = mkey(CLIENT_ID, SERVER_ID, bpft_port(l), SL_REPORTER_SOURCE);
	cr_assert(BPFT_WAIT(closed_once(&k, &v)), "no close counted");
	cr_assert_eq(v.opened, 1);
	cr_assert_eq(v.bytes_sent, 3000, "bytes_sent %llu", (unsigned long long)v.bytes_sent);
	cr_assert_eq(v.bytes_received, 65536, "bytes_received %llu",
		     (unsigned long long)v.bytes_received);
	cr_assert_eq(bpft_map_count(skel->maps.sl_metrics), 1);
	cr_assert_eq(bpft_map_count(skel->maps.sl_conns), 0);
}

Test(sockops, connections_outside_the_mesh_leave_no_trace)
{
	struct sl_event ev[4];
	int l, cfd, sfd;

	BPFT_REQUIRE_ROOT();
	bpft_config(skel->maps.sl_config, 0, 1);
	l = bpft_listen(SERVER);
	cfd = bpft_client(CLIENT, l);
	bpft_connect(cfd, l);
	sfd = bpft_accept(l);
	exchange(cfd, sfd, 100, 100);
	usleep(100000);
	cr_assert_eq(bpft_map_count(skel->maps.sl_conns), 0);
	cr_assert_eq(bpft_map_count(skel->maps.sl_metrics), 0);
	cr_assert_eq(bpft_map_count(skel->maps.sl_faststate), 0);
	cr_assert_eq(bpft_events(skel->maps.sl_events, ev, 4), 0);
}

/* ---- the same-node fast path: sockhash insertion ----------------------- */

static int faststate(const struct sl_sock_key *k, struct sl_fast_state *st)
{
	return bpf_map_lookup_elem(bpf_map__fd(skel->maps.sl_faststate), k, st);
}

/* 0 and the socket's cookie in *cookie, or -errno */
static int in_sockhash(const struct sl_sock_key *k, __u64 *cookie)
{
	return bpf_map_lookup_elem(bpf_map__fd(skel->maps.sl_sockhash), k, cookie) ? -errno : 0;
}

Test(sockops, fast_path_puts_both_local_ends_in_the_sockhash)
{
	struct sl_sock_key ck, sk;
	struct sl_fast_state st;
	__u64 cookie;
	int l, cfd, sfd, err;

	BPFT_REQUIRE_ROOT();
	bpft_config(skel->maps.sl_config, 0, 1);
	workloads();
	l = bpft_listen(SERVER);
	cfd = bpft_client(CLIENT, l);
	bpft_conn_recorded(skel->maps.sl_conns, cfd, l, CLIENT_ID, SERVER_ID);
	bpft_connect(cfd, l);
	sfd = bpft_accept(l);
	ck = bpft_sock_key(cfd);
	sk = bpft_sock_key(sfd);
	cr_assert(BPFT_WAIT(faststate(&sk, &st) == 0), "the server is not in sl_faststate");
	cr_assert_eq(faststate(&ck, &st), 0, "the client is not in sl_faststate");
	cr_assert_eq(st.path, SL_PATH_UNDECIDED);
	cr_assert_eq(st.peer_ready, 1, "the server's insertion did not tell the client");
	cr_assert_eq(faststate(&sk, &st), 0, "the server is not in sl_faststate");
	cr_assert_eq(st.peer_ready, 1);
	err = in_sockhash(&ck, &cookie);
	if (err == -EOPNOTSUPP || err == -ENOTSUPP)
		cr_skip_test("this kernel cannot read a sockhash from userspace (5.6+)");
	cr_assert_eq(err, 0, "client not in sl_sockhash: %s", strerror(-err));
	cr_assert_eq(cookie, bpft_cookie(cfd));
	cr_assert_eq(in_sockhash(&sk, &cookie), 0, "server not in sl_sockhash");
	cr_assert_eq(cookie, bpft_cookie(sfd));
	exchange(cfd, sfd, 10, 10);
	/* closed: the state goes with the connection */
	cr_assert(BPFT_WAIT(bpft_map_count(skel->maps.sl_faststate) == 0),
		  "sl_faststate keeps closed sockets");
}

Test(sockops, fast_path_only_with_the_switch_on_and_both_ends_local)
{
	int l, cfd, sfd;

	BPFT_REQUIRE_ROOT();
	workloads();
	l = bpft_listen(SERVER);
	cfd = bpft_client(CLIENT, l);
	bpft_conn_recorded(skel->maps.sl_conns, cfd, l, CLIENT_ID, SERVER_ID);
	bpft_connect(cfd, l);
	sfd = bpft_accept(l);
	cr_assert_eq(bpft_map_count(skel->maps.sl_faststate), 0,
		     "inserted with the fast path off");
	exchange(cfd, sfd, 1, 1);

	bpft_config(skel->maps.sl_config, 0, 1);
	bpft_ipcache(skel->maps.sl_ipcache, SERVER, SERVER_ID, 0);	/* a workload on another node */
	cfd = bpft_client(CLIENT, l);
	bpft_conn_recorded(skel->maps.sl_conns, cfd, l, CLIENT_ID, SERVER_ID);
	bpft_connect(cfd, l);
	sfd = bpft_accept(l);
	cr_assert_eq(bpft_map_count(skel->maps.sl_faststate), 0,
		     "inserted with a remote end");
	exchange(cfd, sfd, 1, 1);
}

Test(sockops, half_closing_socket_never_sent_to_leaves_the_sockhash)
{
	struct sl_sock_key ck, sk;
	struct sl_fast_state st;
	__u64 cookie;
	char c = 'x';
	int l, cfd, sfd;

	BPFT_REQUIRE_ROOT();
	bpft_config(skel->maps.sl_config, 0, 1);
	workloads();
	l = bpft_listen(SERVER);
	cfd = bpft_client(CLIENT, l);
	bpft_conn_recorded(skel->maps.sl_conns, cfd, l, CLIENT_ID, SERVER_ID);
	bpft_connect(cfd, l);
	sfd = bpft_accept(l);
	ck = bpft_sock_key(cfd);
	sk = bpft_sock_key(sfd);
	cr_assert(BPFT_WAIT(faststate(&sk, &st) == 0), "the server is not in sl_faststate");
	cr_assert_eq(shutdown(sfd, SHUT_WR), 0);
	bpft_eof(cfd);
	cr_assert_eq(faststate(&sk, &st), 0);
	cr_assert_eq(st.rx_closed, 1, "the half-close was not seen");
	cr_assert_eq(st.left, 1, "the half-closed socket stayed in the sockhash");
	cr_assert_neq(in_sockhash(&sk, &cookie), 0);
	/* the client, untouched, is still in; the server still reads */
	cr_assert_eq(faststate(&ck, &st), 0);
	cr_assert_eq(st.rx_closed, 0);
	bpft_send(cfd, &c, 1);
	bpft_recv(sfd, &c, 1);
	cr_assert_eq(c, 'x');
	close(cfd);
	bpft_eof(sfd);
	close(sfd);
}
