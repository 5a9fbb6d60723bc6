// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF program tests for bpf/skmsg.bpf.c through its skeleton, with real
 * sockets: sk_msg has no BPF_PROG_TEST_RUN.
 *
 * As in production, sockops puts the sockets in the sockhash and sl_msg
 * decides each sendmsg(): each test enters a network namespace and a cgroup
 * of its own, loads private copies of both objects (sl_msg's sl_sockhash
 * and sl_faststate are sockops' maps, by fd), attaches sl_sockops to the
 * cgroup and sl_msg to the sockhash, switches the fast path on and makes
 * TCP connections over loopback between two workloads of this node.
 * Whether bytes were redirected or went through TCP is read from both
 * ends' sl_faststate and from TCP itself (tcpi_bytes_acked counts only
 * what TCP carried); every byte must arrive, in order. Needs root and
 * cgroup v2; skips without them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/tcp.h>

#include <criterion/criterion.h>

#include <bpf/bpf.h>

#include "bpf/skmsg.skel.h"
#include "bpf/sockops.skel.h"
#include "bpft.h"
#include "sluice_policy.h"

#define SERVER "127.0.0.2"
#define CLIENT "127.0.0.3"
#define SERVER_ID 300
#define CLIENT_ID 301

static struct sockops_bpf *ops;
static struct skmsg_bpf *msg;
static struct bpft_cg cg = { .fd = -1 };
static struct bpf_link *ops_link;
static bool verdict_attached;

static void setup(void)
{
	if (geteuid() != 0)
		return; /* each test skips with the reason */
	bpft_netns();
	bpft_cg_enter(&cg, "skmsg");
	ops = sockops_bpf__open();
	cr_assert_not_null(ops, "open sockops: %s", strerror(errno));
	bpft_private_maps(ops->obj, 256);
	cr_assert_eq(sockops_bpf__load(ops), 0, "load sockops: %s", strerror(errno));
	msg = skmsg_bpf__open();
	cr_assert_not_null(msg, "open skmsg: %s", strerror(errno));
	bpft_private_maps(msg->obj, 256);
	cr_assert_eq(bpf_map__reuse_fd(msg->maps.sl_sockhash, bpf_map__fd(ops->maps.sl_sockhash)), 0);
	cr_assert_eq(bpf_map__reuse_fd(msg->maps.sl_faststate,
				       bpf_map__fd(ops->maps.sl_faststate)), 0);
	cr_assert_eq(skmsg_bpf__load(msg), 0, "load skmsg: %s", strerror(errno));
	cr_assert_eq(bpf_prog_attach(bpf_program__fd(msg->progs.sl_msg),
				     bpf_map__fd(ops->maps.sl_sockhash), BPF_SK_MSG_VERDICT, 0), 0,
		     "attach sl_msg: %s", strerror(errno));
	verdict_attached = true;
	ops_link = bpf_program__attach_cgroup(ops->progs.sl_sockops, cg.fd);
	cr_assert_not_null(ops_link, "attach to %s: %s", cg.path, strerror(errno));
	bpft_ipcache(ops->maps.sl_ipcache, SERVER, SERVER_ID, SL_IPC_LOCAL);
	bpft_ipcache(ops->maps.sl_ipcache, CLIENT, CLIENT_ID, SL_IPC_LOCAL);
	bpft_config(ops->maps.sl_config, 0, 1);
}

static void teardown(void)
{
	bpf_link__destroy(ops_link);
	ops_link = NULL;
	if (verdict_attached)
		bpf_prog_detach2(bpf_program__fd(msg->progs.sl_msg),
				 bpf_map__fd(ops->maps.sl_sockhash), BPF_SK_MSG_VERDICT);
	verdict_attached = false;
	skmsg_bpf__destroy(msg);
	msg = NULL;
	sockops_bpf__destroy(ops);
	ops = NULL;
	bpft_cg_leave(&cg);
}

TestSuite(skmsg, .init = setup, .fini = teardown, .timeout = 30);

struct pair {
	int l, c, s;			/* listener, client, server */
	struct sl_sock_key ck, sk;	/* their sockhash keys */
};

/* A connection from a pod's connect() (the connect hook's sl_conns entry
 * written by hand), with both ends in the sockhash. */
static void pair_open(struct pair *p, uint32_t server_id)
{
	struct sl_fast_state st;

	bpft_ipcache(ops->maps.sl_ipcache, SERVER, server_id, SL_IPC_LOCAL);
	p->l = bpft_listen(SERVER);
	p->c = bpft_client(CLIENT, p->l);
	bpft_conn_recorded(ops->maps.sl_conns, p->c, p->l, CLIENT_ID, server_id);
	bpft_connect(p->c, p->l);
	p->s = bpft_accept(p->l);
	p->ck = bpft_sock_key(p->c);
	p->sk = bpft_sock_key(p->s);
	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(ops->maps.sl_faststate), &p->ck, &st), 0,
		     "the client is not in the fast path");
}

static struct sl_fast_state state(const struct sl_sock_key *k)
{
	struct sl_fast_state st;

	cr_assert_eq(bpf_map_lookup_elem(bpf_map__fd(ops->maps.sl_faststate), k, &st), 0,
		     "no sl_faststate entry");
	return st;
}

/* Payload bytes TCP carried from fd (its SYN counts one). */
static uint64_t tcp_acked(int fd)
{
	struct tcp_info ti = {};
	socklen_t len = sizeof(ti);

	cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	cr_assert_geq(len, offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked),
		      "TCP_INFO without tcpi_bytes_acked");
	return ti.tcpi_bytes_acked;
}

/* n bytes of a pattern that differs per offset and per seed, sent from
 * `from` and checked at `to`. */
static void stream(int from, int to, size_t off, size_t n, char seed)
{
	char out[4096], in[4096];

	cr_assert_leq(n, sizeof(out));
	for (size_t i = 0; i < n; i++)
		out[i] = (char)((off + i) * 7 + seed);
	bpft_send(from, out, n);
	bpft_recv(to, in, n);
	cr_assert_arr_eq(in, out, n, "bytes %zu..%zu differ", off, off + n);
}

Test(skmsg, both_directions_redirected_and_accounted)
{
	struct sl_metric_key k = { .src_id = CLIENT_ID, .dst_id = SERVER_ID, .proto = IPPROTO_TCP,
				   .reporter = SL_REPORTER_SOURCE };
	struct sl_fast_state st;
	struct sl_metric_val v;
	struct pair p;

	BPFT_REQUIRE_ROOT();
	pair_open(&p, SERVER_ID);
	for (int i = 0; i < 4; i++)
		stream(p.c, p.s, i * 4000, 4000, 'u');
	stream(p.s, p.c, 0, 3000, 'd');
	st = state(&p.ck);
	cr_assert_eq(st.path, SL_PATH_REDIRECT, "client path %u", st.path);
	cr_assert_eq(st.bytes_out, 16000);
	cr_assert_eq(st.bytes_in, 3000);
	st = state(&p.sk);
	cr_assert_eq(st.path, SL_PATH_REDIRECT, "server path %u", st.path);
	cr_assert_eq(st.bytes_out, 3000);
	cr_assert_eq(st.bytes_in, 16000);
	/* nothing of it went through TCP */
	cr_assert_lt(tcp_acked(p.c), 1000, "TCP carried %llu bytes of the client's",
		     (unsigned long long)tcp_acked(p.c));
	cr_assert_lt(tcp_acked(p.s), 1000);
	/* and sockops counts the redirected bytes at close */
	close(p.c);
	bpft_eof(p.s);
	close(p.s);
	k.port = bpft_port(p.l);
	cr_assert(BPFT_WAIT(bpft_metric(ops->maps.sl_metrics, &k, &v) && v.closed == 1),
		  "no close counted");
	cr_assert_eq(v.bytes_sent, 16000, "bytes_sent %llu", (unsigned long long)v.bytes_sent);
	cr_assert_eq(v.bytes_received, 3000, "bytes_received %llu",
		     (unsigned long long)v.bytes_received);
}

Test(skmsg, peer_never_in_the_sockhash_means_tcp_for_good)
{
	struct sl_fast_state st;
	struct pair p;

	BPFT_REQUIRE_ROOT();
	/* the server's address is local but no workload's: sockops leaves
	 * its socket out, so the client's first message finds no peer */
	pair_open(&p, 5);
	st = state(&p.ck);
	cr_assert_eq(st.peer_ready, 0);
	stream(p.c, p.s, 0, 2000, 'u');
	stream(p.c, p.s, 2000, 2000, 'u');
	st = state(&p.ck);
	cr_assert_eq(st.path, SL_PATH_TCP, "client path %u", st.path);
	cr_assert_eq(st.bytes_out, 0);
	cr_assert(BPFT_WAIT(tcp_acked(p.c) >= 4000), "TCP carried %llu bytes, want 4000",
		  (unsigned long long)tcp_acked(p.c));
	close(p.c);
	bpft_eof(p.s);
	close(p.s);
}

Test(skmsg, half_closed_peer_gets_the_rest_by_tcp_in_order)
{
	struct sl_fast_state st;
	struct pair p;

	BPFT_REQUIRE_ROOT();
	pair_open(&p, SERVER_ID);
	stream(p.c, p.s, 0, 1000, 'u');		/* redirected */
	cr_assert_eq(shutdown(p.s, SHUT_WR), 0);
	bpft_eof(p.c);
	st = state(&p.sk);
	cr_assert_eq(st.rx_closed, 1);
	cr_assert_eq(st.left, 0, "left the sockhash with redirected bytes claimed");
	/* from now on TCP, read after what was redirected */
	stream(p.c, p.s, 1000, 1000, 'u');
	st = state(&p.ck);
	cr_assert_eq(st.path, SL_PATH_TCP, "client path %u", st.path);
	cr_assert_eq(st.bytes_out, 1000);
	cr_assert_eq(state(&p.sk).bytes_in, 1000);
	close(p.c);
	bpft_eof(p.s);
	close(p.s);
}
