// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The HBONE server's input path without TLS: the bytes a client sends
 * after the handshake (the HTTP/2 preface is added here) go through
 * nghttp2 with hbone.c's own callbacks, in read batches staged as
 * pump_in() stages them, with flush_dirty() and the flood check after
 * each batch. CONNECT requests are answered as the node proxy answers
 * them: the authority must parse as IP:PORT (addr_hostport_parse), and a
 * tunnel gets a connected socket pair; after each batch the output is
 * taken as pump_out() takes it, and the loop runs, so tunnels become
 * established and DATA reaches their sockets. hbone.c is
 * included to reach the connection's session and its static callbacks.
 */
#include "proxy/hbone.c"

#include "fuzz.h"
#include "lib/core/addr.h"

static SSL_CTX *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	ctx = fuzz_server_ctx();
	return 0;
}

/* The tunnels' far ends, closed after the input. */
static int peers[256];
static size_t npeers;

static int on_connect(struct hb_conn *c, int32_t sid, const char *authority, void **targ,
		      void *arg)
{
	__be32 dst[4];
	uint16_t port;
	int sp[2];

	if (addr_hostport_parse(authority, dst, &port))
		return -400;
	if (port % 7 == 0)
		return -403;   /* a policy refusal */
	if (npeers == sizeof(peers) / sizeof(peers[0]) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp))
		return -503;
	peers[npeers++] = sp[1];
	return sp[0];
}

static const struct hb_ops ops = { .on_connect = on_connect };

static const struct hb_limits lim = {
	.handshake_ms = 10000, .stall_ms = 30000, .connect_ms = 10000, .max_streams = 4,
	.stream_window = 65535, .conn_window = 1u << 20, .tcp_buf = 4096,
};

/* What pump_out() would encrypt and send (responses, resets, GOAWAY),
 * taken and dropped. DATA frames would go through send_data() and TLS:
 * none are due, as the tunnels' far ends never write. */
static void drain(struct hb_conn *c)
{
	const uint8_t *d;
	ssize_t n;

	while ((n = nghttp2_session_mem_send(c->ng, &d)) > 0)
		;
	if (n < 0)
		conn_die(c, HB_CLOSE_HTTP2, "HTTP/2 error");
}

/* One read batch as pump_in() has it: plaintext staged, then parsed. */
static void batch(struct hb_conn *c, const uint8_t *d, size_t n)
{
	size_t used = 0;

	c->in_io = true;
	while (n && !c->dead) {
		size_t k = n < 16384 ? n : 16384;
		ssize_t taken;

		if (STAGE_LEN - used < 16384) {
			flush_dirty(c);
			used = 0;
		}
		memcpy(c->l->stage + used, d, k);
		taken = nghttp2_session_mem_recv(c->ng, c->l->stage + used, k);
		if (taken < 0) {
			c->in_io = false;
			conn_die(c, HB_CLOSE_HTTP2, "HTTP/2 error");
			return;
		}
		used += k;
		d += k;
		n -= k;
	}
	c->in_io = false;
	if (c->dead)
		return;
	flush_dirty(c);
	if (!c->dead && !flooded(c))
		drain(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = NGHTTP2_CLIENT_MAGIC;
	struct hb_loop *l = hb_loop_new();
	struct hb_conn *c;
	size_t chunk;
	int sp[2];

	if (!l || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp))
		abort();
	l->stage = malloc(STAGE_LEN);
	c = hb_server_conn(l, sp[0], ctx, &lim, &ops, NULL);
	/* the session a completed handshake makes */
	if (!c || !l->stage || session_new(c))
		abort();
	npeers = 0;
	/* the first byte sets how the input is cut into read batches */
	chunk = size ? 1 + (size_t)data[0] * 64 : 1;
	batch(c, (const uint8_t *)preface, sizeof(preface) - 1);
	for (size_t off = size ? 1 : 0; off < size && !c->dead; off += chunk) {
		batch(c, data + off, size - off < chunk ? size - off : chunk);
		/* a connection that died is freed by the loop's next run */
		if (c->dead || hb_loop_run(l, 0) || !hb_loop_conns(l))
			break;
	}
	hb_loop_free(l);
	for (size_t i = 0; i < npeers; i++)
		close(peers[i]);
	close(sp[1]);
	return 0;
}
