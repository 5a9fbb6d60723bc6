// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * h2_client.c - HTTP/2 client helpers over h2.h's public API (h2_client.h):
 * URLs, a non-blocking connect, one request on a connection of its own.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/core/loop.h"
#include "lib/wire/h2_client.h"

int h2_parse_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *p = url, *h, *e, *colon;
	size_t hl;

	if (strncmp(p, "https://", 8) != 0)
		return -EINVAL;
	p += 8;
	if (*p == '[') {
		h = p + 1;
		e = strchr(h, ']');
		if (!e)
			return -EINVAL;
		hl = (size_t)(e - h);
		colon = e[1] == ':' ? e + 1 : NULL;
		if (!colon && e[1] && e[1] != '/')
			return -EINVAL;
	} else {
		h = p;
		e = h + strcspn(h, ":/");
		hl = (size_t)(e - h);
		colon = *e == ':' ? e : NULL;
	}
	if (!hl || hl >= hostlen)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (colon) {
		size_t pl = strcspn(colon + 1, "/");

		if (!pl || pl >= portlen || strspn(colon + 1, "0123456789") != pl)
			return -EINVAL;
		memcpy(port, colon + 1, pl);
		port[pl] = '\0';
	} else {
		snprintf(port, portlen, "15012");
	}
	return 0;
}

int h2_connect(const char *host, const char *port, int *fdp, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int fd = -1, rc;

	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "%s:%s: %s", host, port, gai_strerror(rc));
		return rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	rc = 0;
	if (fd < 0 || (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS)) {
		rc = -errno;
		snprintf(err, errlen, "connecting to %s:%s: %s", host, port, strerror(-rc));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	*fdp = fd;
	return rc;
}

struct fetch {
	struct h2_result *res;
	bool done;
	uint32_t code;
	size_t max;
	bool too_big;
	FILE *m;
};

static void fetch_headers(struct h2_conn *c, int32_t id, int status, void *arg)
{
	((struct fetch *)arg)->res->status = status;
}

static void fetch_data(struct h2_conn *c, int32_t id, const uint8_t *d, size_t n, void *arg)
{
	struct fetch *f = arg;

	if (f->res->len + n > f->max) {
		f->too_big = true;
		return;
	}
	fwrite(d, 1, n, f->m);
	f->res->len += n;
}

static void fetch_close(struct h2_conn *c, int32_t id, uint32_t code, void *arg)
{
	struct fetch *f = arg;

	f->done = true;
	f->code = code;
}

int h2_fetch(SSL_CTX *ctx, const char *url, const char *expect_peer, const char *method,
	     const char *path, const struct h2_header *hdrs, size_t nhdrs, const void *body,
	     size_t len, unsigned int timeout_ms, struct h2_result *res, char *err, size_t errlen)
{
	static const struct h2_resp_ops ops = { fetch_headers, fetch_data, fetch_close };
	struct fetch f = { .res = res, .max = 512u << 20 };
	char host[256], port[16], *mbuf = NULL;
	size_t mlen = 0;
	struct h2_limits lim = h2_default_limits;
	struct h2_conn *c = NULL;
	uint64_t deadline = loop_now_ms() + timeout_ms;
	int fd, rc;

	memset(res, 0, sizeof(*res));
	if (h2_parse_url(url, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, errlen, "'%s' is not https://HOST:PORT", url);
		return -EINVAL;
	}
	f.m = open_memstream(&mbuf, &mlen);
	if (!f.m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = h2_connect(host, port, &fd, err, errlen);
	if (rc)
		goto out;
	rc = -EPROTO;	/* what goes wrong from here is said in err */
	lim.handshake_ms = timeout_ms;
	c = h2_client_conn(fd, ctx, &lim);
	if (!c) {
		snprintf(err, errlen, "setting up the connection failed");
		goto out;
	}
	if (expect_peer)
		h2_conn_expect_peer(c, expect_peer);
	if (h2_request(c, method, host, path, hdrs, nhdrs, body, len, &ops, &f) < 0) {
		snprintf(err, errlen, "submitting the request failed");
		goto out;
	}
	while (!f.done) {
		struct pollfd p = { .fd = fd, .events = (short)h2_conn_events(c) };
		uint64_t now = loop_now_ms();
		int n;

		if (now >= deadline) {
			snprintf(err, errlen, "%s: no answer within %u ms", url, timeout_ms);
			goto out;
		}
		n = poll(&p, 1, (int)(deadline - now));
		if (n < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		if (n > 0 && h2_conn_io(c, (unsigned int)p.revents) && !f.done) {
			snprintf(err, errlen, "%s: %s", url, h2_conn_error(c));
			goto out;
		}
	}
	if (f.code && !res->status) {
		snprintf(err, errlen, "%s: stream reset by the server (HTTP/2 error %u)", url, f.code);
		goto out;
	}
	if (f.too_big) {
		snprintf(err, errlen, "%s: response over %zu bytes", url, f.max);
		goto out;
	}
	if (h2_conn_peer(c))
		snprintf(res->peer, sizeof(res->peer), "%s", h2_conn_peer(c));
	rc = 0;
out:
	fclose(f.m);
	if (rc == 0) {
		res->body = mbuf;
		res->len = mlen;
	} else {
		free(mbuf);
		res->len = 0;
	}
	h2_conn_free(c);
	return rc;
}
