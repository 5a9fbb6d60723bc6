// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The HTTP/2 server's input path without TLS (the control plane's API):
 * the bytes a client sends after the handshake (the preface is added
 * here) go through nghttp2 with h2.c's callbacks, cut into reads; after
 * each read the output is taken as pump_out() takes it, so responses,
 * refusals (413, 414) and streamed bodies are produced and sent. Requests
 * are answered by echoing the body, streamed for path /stream. h2.c is
 * included to reach the connection's session.
 */
#include "lib/wire/h2.c"

#include "fuzz.h"
static SSL_CTX *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	ctx = fuzz_server_ctx();
	return 0;
}

static void on_request(struct h2_conn *c, const struct h2_req *r, void *arg)
{
	if (strcmp(r->path, "/stream") == 0) {
		if (h2_respond_stream(c, r->stream_id, 200, "application/x-ndjson") == 0 &&
		    h2_stream_write(c, r->stream_id, r->body, r->body_len) == 0 &&
		    strcmp(r->query, "end") == 0)
			h2_stream_end(c, r->stream_id);
		return;
	}
	h2_respond(c, r->stream_id, r->body_len ? 200 : 404, r->content_type, r->body,
		   r->body_len);
}

static void on_stream_closed(struct h2_conn *c, int32_t id, void *arg)
{
}

static const struct h2_server_ops ops = { on_request, on_stream_closed };

static const struct h2_limits lim = {
	.max_body = 4096, .max_pending = 65536, .max_streams = 4, .handshake_ms = 10000,
	.stall_ms = 30000, .window = 65535,
};

/* What pump_out() would encrypt and send; 0, or -1 when the session is done. */
static int drain(struct h2_conn *c)
{
	const uint8_t *d;
	ssize_t n;

	while ((n = nghttp2_session_mem_send(c->ng, &d)) > 0)
		;
	return n < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = NGHTTP2_CLIENT_MAGIC;
	struct h2_conn *c;
	size_t chunk;
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp))
		abort();
	c = h2_server_conn(sp[0], ctx, &lim, &ops, NULL);
	/* the session a completed handshake makes */
	if (!c || session_new(c))
		abort();
	/* the first byte sets how the input is cut into reads */
	chunk = size ? 1 + (size_t)data[0] * 64 : 1;
	if (nghttp2_session_mem_recv(c->ng, (const uint8_t *)preface, sizeof(preface) - 1) < 0)
		abort();
	for (size_t off = size ? 1 : 0; off < size; off += chunk) {
		size_t k = size - off < chunk ? size - off : chunk;

		if (nghttp2_session_mem_recv(c->ng, data + off, k) < 0 || drain(c))
			break;
	}
	h2_conn_free(c);
	close(sp[1]);
	return 0;
}
