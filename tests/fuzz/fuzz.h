/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * fuzz.h - what the harnesses share (tests/fuzz/README.md).
 */
#ifndef SL_FUZZ_H
#define SL_FUZZ_H

#include <stdlib.h>

#include <openssl/ssl.h>

#include "lib/core/log.h"

/* Errors only: every refused input would otherwise log a line. */
static inline void fuzz_quiet(void)
{
	log_init("fuzz", LOG_ERR);
}

/* A server context for connections that never handshake (the harnesses
 * feed HTTP/2 to them directly): SSL_new() needs one. */
static inline SSL_CTX *fuzz_server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		abort();
	return ctx;
}

#endif /* SL_FUZZ_H */
