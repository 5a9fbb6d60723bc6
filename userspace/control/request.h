/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * request.h - what every route handler of the control plane's API uses to
 * read a request and answer it.
 *
 * Contract: replies are JSON objects ending in a newline; an error reply
 * is {"error": MESSAGE}. A function that answers a request itself says so
 * (parse_body's NULL): the caller then only frees what it holds.
 */
#ifndef SL_CONTROL_REQUEST_H
#define SL_CONTROL_REQUEST_H

#include <stdint.h>

#include <jansson.h>

#include "lib/wire/h2.h"

/* Answer stream `id` with `j` (taken; NULL: 500 out of memory). */
void reply(struct h2_conn *c, int32_t id, int status, json_t *j);

/* Answer stream `id` with {"error": the formatted message}. */
void __attribute__((format(printf, 4, 5)))
reply_err(struct h2_conn *c, int32_t id, int status, const char *fmt, ...);

/* The value of request header `name` (lower case), or NULL. */
const char *req_header(const struct h2_req *r, const char *name);

/* The body as a JSON object; NULL after answering 400. */
json_t *parse_body(struct h2_conn *c, const struct h2_req *r);

#endif /* SL_CONTROL_REQUEST_H */
