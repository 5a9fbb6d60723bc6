/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * h2_client.h - what a one-shot HTTP/2 client needs beyond h2.h: the
 * control plane's URL form, a non-blocking connect, and one request on a
 * connection of its own (sluicectl; the agent keeps its own connection).
 *
 * Contract: 0, or -errno with the reason in err; h2_fetch() never blocks
 * longer than its timeout and frees the connection it made.
 */
#ifndef SL_H2_CLIENT_H
#define SL_H2_CLIENT_H

#include <stddef.h>

#include "lib/wire/h2.h"

/* "https://HOST:PORT" (HOST may be [IPv6]); port defaults to 15012.
 * -EINVAL for any other form. */
int h2_parse_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen);
/* A non-blocking TCP connect to host:port started; -errno with err. */
int h2_connect(const char *host, const char *port, int *fd, char *err, size_t errlen);

struct h2_result {
	int status;
	char *body;                /* NUL-terminated, malloc'd */
	size_t len;
	char peer[256];            /* the server's URI SAN */
};

/* One request over a new connection, waiting at most timeout_ms. 0 with
 * res filled (any HTTP status), or -errno with err (-EPROTO: the TLS or
 * HTTP/2 exchange failed or timed out). */
int h2_fetch(SSL_CTX *ctx, const char *url, const char *expect_peer, const char *method,
	     const char *path, const struct h2_header *hdrs, size_t nhdrs, const void *body,
	     size_t len, unsigned int timeout_ms, struct h2_result *res, char *err, size_t errlen);

#endif /* SL_H2_CLIENT_H */
